/*
 * fg_sse.h -- a scanner for streamed (text/event-stream) model responses
 * that reads their token usage as the bytes go by.
 *
 * The stream is fed in chunks split anywhere (mid-line, mid-"\r\n",
 * mid-UTF-8 sequence) and parsed as the HTML Living Standard's
 * event-stream rules say: one UTF-8 BOM at the start is skipped; lines end
 * in "\r\n", "\n" or "\r"; a line starting with ':' is a comment; "data"
 * field values are joined with "\n"; a blank line dispatches the event;
 * an event the stream ends inside (no blank line after it) is discarded.
 * Fields other than "data" ("event", "id", "retry") are not needed and
 * are ignored: every provider also names the event type inside the data.
 *
 * Memory is bounded: only the current event's data is held, up to
 * FG_SSE_EVENT_MAX bytes in one buffer that is reused from event to event;
 * an event with more data is skipped and counted in `oversize`.
 *
 * The data of a dispatched event is:
 *   "[DONE]"           the end of an OpenAI chat stream (ended = 1);
 *   a JSON object      parsed with jansson, but only when it can tell us
 *                      something: it contains "usage", the response model
 *                      is not known yet, or it contains "message_stop" --
 *                      other events (the many token deltas) are not parsed;
 *   anything else      counted in `malformed` (so is JSON that does not
 *                      parse); a malformed event is never fatal.
 *
 * What is read, by endpoint:
 *   chat_completions   "model" of the first chunk that names one; "usage"
 *                      of the chunk that carries it (OpenAI sends it last,
 *                      only with stream_options.include_usage)
 *   responses          "response.model" and "response.usage" of the
 *                      events that carry them (response.created,
 *                      response.completed / incomplete / failed); ended
 *                      on "response.completed"
 *   messages           message_start: message.model, message.usage;
 *                      message_delta: usage (output_tokens is cumulative,
 *                      the last one counts); ended on message_stop
 */

#ifndef FG_SSE_H
#define FG_SSE_H

#include <stdint.h>

#include "fg_adapter.h"

/* The most data one event may carry (its "data" lines joined). */
#define FG_SSE_EVENT_MAX   (1024 * 1024)

#define FG_SSE_NAME_MAX    8    /* enough to tell "data" from the rest */

typedef struct {
    /* read after fg_sse_finish() (they are counted as the stream goes) */
    uint64_t        bytes;          /* bytes fed */
    uint64_t        events;         /* events dispatched, oversize included */
    uint64_t        malformed;      /* data neither [DONE] nor JSON object */
    uint64_t        oversize;       /* events skipped: data over the bound */
    uint64_t        parsed;         /* events parsed as JSON */
    int             ended;          /* [DONE], message_stop or
                                       response.completed was seen */

    /* private */
    fg_provider_t   provider;
    fg_endpoint_t   endpoint;
    fg_usage_t      usage;
    int             state;
    int             bom;            /* BOM bytes matched; -1 when past */
    int             cr;             /* the last byte was '\r' */
    int             is_data;        /* the current line is a "data" field */
    int             skip;           /* the current event is oversize */
    int             nomem;
    size_t          name_len;
    char            name[FG_SSE_NAME_MAX];
    unsigned char  *data;
    size_t          len;
    size_t          cap;
} fg_sse_t;

/* Start scanning a stream of provider's endpoint. */
void fg_sse_init(fg_sse_t *sse, fg_provider_t provider,
    fg_endpoint_t endpoint);

/*
 * Feed the next n bytes of the stream.  Returns FG_OK, or FG_ERR_NOMEM
 * when the event buffer could not grow: that event is then skipped (and
 * counted as oversize) and scanning goes on, so a caller may ignore it.
 */
int fg_sse_feed(fg_sse_t *sse, const unsigned char *p, size_t n);

/*
 * The stream is over: discard an unfinished event, write the usage found
 * (counts unknown where the stream did not say; total completed as
 * fg_usage_complete() does) to out, and free the event buffer.  The
 * counters in sse stay readable.  Safe to call more than once.
 */
void fg_sse_finish(fg_sse_t *sse, fg_usage_t *out);

#endif /* FG_SSE_H */

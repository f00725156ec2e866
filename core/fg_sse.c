/*
 * fg_sse.c -- the event-stream scanner: a byte-at-a-time state machine
 * over lines and fields (runs of field values are copied at once), one
 * reusable bounded buffer for the current event's data, and the usage
 * rules of fg_sse.h for each dispatched event.
 */

#include <stdlib.h>
#include <string.h>

#include "fg_sse.h"

enum {
    FG_SSE_LINE_START = 0,      /* nothing of this line read yet */
    FG_SSE_NAME,                /* in the field name */
    FG_SSE_VALUE_FIRST,         /* just after the ':' (one space skipped) */
    FG_SSE_VALUE,               /* in the field value */
    FG_SSE_COMMENT              /* in a ':' comment line */
};

#define FG_SSE_BUF_MIN  1024

static const unsigned char  fg_sse_bom[3] = { 0xef, 0xbb, 0xbf };


void
fg_sse_init(fg_sse_t *sse, fg_provider_t provider, fg_endpoint_t endpoint)
{
    memset(sse, 0, sizeof(fg_sse_t));

    sse->provider = provider;
    sse->endpoint = endpoint;
    sse->state = FG_SSE_LINE_START;
    fg_usage_init(&sse->usage);
}


/* append to the event's data; an event over the bound is skipped */
static void
fg_sse_append(fg_sse_t *sse, const unsigned char *p, size_t n)
{
    unsigned char  *data;
    size_t          cap;

    if (sse->skip) {
        return;
    }

    /* the buffer holds a '\n' after every line: the last one is dropped */
    if (n > FG_SSE_EVENT_MAX + 1 - sse->len) {
        sse->skip = 1;
        sse->len = 0;
        return;
    }

    if (sse->len + n > sse->cap) {
        cap = sse->cap ? sse->cap : FG_SSE_BUF_MIN;
        while (cap < sse->len + n) {
            cap *= 2;
        }
        if (cap > FG_SSE_EVENT_MAX + 1) {
            cap = FG_SSE_EVENT_MAX + 1;
        }

        data = realloc(sse->data, cap);
        if (data == NULL) {
            sse->nomem = 1;
            sse->skip = 1;
            sse->len = 0;
            return;
        }

        sse->data = data;
        sse->cap = cap;
    }

    memcpy(sse->data + sse->len, p, n);
    sse->len += n;
}


static int
fg_sse_type_is(const json_t *obj, const char *type)
{
    const json_t  *t = json_object_get(obj, "type");

    return json_is_string(t) && strcmp(json_string_value(t), type) == 0;
}


/* the usage rules of fg_sse.h for one parsed event */
static void
fg_sse_event_json(fg_sse_t *sse, const json_t *obj)
{
    const json_t  *r;

    switch (sse->endpoint) {

    case FG_ENDPOINT_RESPONSES:
        r = json_object_get(obj, "response");
        if (json_is_object(r)) {
            fg_adapter_response_model(json_object_get(r, "model"),
                                      &sse->usage);
            fg_adapter_usage_merge(sse->provider, sse->endpoint,
                                   json_object_get(r, "usage"),
                                   &sse->usage);
        }
        if (fg_sse_type_is(obj, "response.completed")) {
            sse->ended = 1;
        }
        break;

    case FG_ENDPOINT_MESSAGES:
        if (fg_sse_type_is(obj, "message_start")) {
            r = json_object_get(obj, "message");
            if (json_is_object(r)) {
                fg_adapter_response_model(json_object_get(r, "model"),
                                          &sse->usage);
                fg_adapter_usage_merge(sse->provider, sse->endpoint,
                                       json_object_get(r, "usage"),
                                       &sse->usage);
            }

        } else if (fg_sse_type_is(obj, "message_delta")) {
            fg_adapter_usage_merge(sse->provider, sse->endpoint,
                                   json_object_get(obj, "usage"),
                                   &sse->usage);

        } else if (fg_sse_type_is(obj, "message_stop")) {
            sse->ended = 1;
        }
        break;

    default:
        /* chat completions (and anything shaped like its chunks) */
        fg_adapter_response_model(json_object_get(obj, "model"),
                                  &sse->usage);
        fg_adapter_usage_merge(sse->provider, sse->endpoint,
                               json_object_get(obj, "usage"), &sse->usage);
        break;
    }
}


/* a blank line: the event is complete */
static void
fg_sse_dispatch(fg_sse_t *sse)
{
    const unsigned char  *d;
    json_error_t          jerr;
    json_t               *obj;
    size_t                i, n;

    if (!sse->skip && sse->len == 0) {
        return;                 /* no data field: no event */
    }

    sse->events++;

    if (sse->skip) {
        sse->oversize++;
        sse->skip = 0;
        sse->len = 0;
        return;
    }

    d = sse->data;
    n = sse->len - 1;           /* the last line's '\n' */
    sse->len = 0;

    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        sse->ended = 1;
        return;
    }

    for (i = 0; i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n'); i++) {
        /* void */
    }

    if (i == n || d[i] != '{') {
        sse->malformed++;
        return;
    }

    if (sse->usage.response_model[0] != '\0'
        && memmem(d, n, "usage", 5) == NULL
        && memmem(d, n, "message_stop", 12) == NULL)
    {
        return;                 /* cannot tell us anything: not parsed */
    }

    sse->parsed++;

    obj = json_loadb((const char *) d, n, 0, &jerr);
    if (!json_is_object(obj)) {
        sse->malformed++;
        json_decref(obj);
        return;
    }

    fg_sse_event_json(sse, obj);
    json_decref(obj);
}


/* the end of a line */
static void
fg_sse_eol(fg_sse_t *sse)
{
    switch (sse->state) {

    case FG_SSE_LINE_START:
        fg_sse_dispatch(sse);
        break;

    case FG_SSE_NAME:
        /* a line without ':' is a field name with an empty value */
        sse->is_data = (sse->name_len == 4
                        && memcmp(sse->name, "data", 4) == 0);
        /* fall through */

    case FG_SSE_VALUE_FIRST:
    case FG_SSE_VALUE:
        if (sse->is_data) {
            fg_sse_append(sse, (const unsigned char *) "\n", 1);
        }
        break;

    default:
        break;
    }

    sse->state = FG_SSE_LINE_START;
    sse->is_data = 0;
}


/* the stream's bytes after the BOM */
static void
fg_sse_bytes(fg_sse_t *sse, const unsigned char *p, size_t n)
{
    const unsigned char  *end, *q;
    unsigned char         c;

    end = p + n;

    while (p < end) {
        c = *p;

        if (sse->cr) {
            sse->cr = 0;
            if (c == '\n') {
                p++;            /* the second half of "\r\n" */
                continue;
            }
        }

        if (c == '\r' || c == '\n') {
            fg_sse_eol(sse);
            sse->cr = (c == '\r');
            p++;
            continue;
        }

        switch (sse->state) {

        case FG_SSE_LINE_START:
            if (c == ':') {
                sse->state = FG_SSE_COMMENT;
                p++;
                break;
            }
            sse->state = FG_SSE_NAME;
            sse->name_len = 0;
            /* fall through */

        case FG_SSE_NAME:
            if (c == ':') {
                sse->is_data = (sse->name_len == 4
                                && memcmp(sse->name, "data", 4) == 0);
                sse->state = FG_SSE_VALUE_FIRST;
                p++;
                break;
            }
            if (sse->name_len < FG_SSE_NAME_MAX) {
                sse->name[sse->name_len] = (char) c;
            }
            if (sse->name_len <= FG_SSE_NAME_MAX) {
                sse->name_len++;
            }
            p++;
            break;

        case FG_SSE_VALUE_FIRST:
            sse->state = FG_SSE_VALUE;
            if (c == ' ') {
                p++;
                break;
            }
            /* fall through */

        case FG_SSE_VALUE:
        default:
            for (q = p; q < end && *q != '\r' && *q != '\n'; q++) {
                /* void */
            }
            if (sse->is_data) {
                fg_sse_append(sse, p, (size_t) (q - p));
            }
            p = q;
            break;
        }
    }
}


int
fg_sse_feed(fg_sse_t *sse, const unsigned char *p, size_t n)
{
    int  matched;

    sse->nomem = 0;
    sse->bytes += n;

    while (sse->bom >= 0 && n > 0) {
        if (p[0] == fg_sse_bom[sse->bom]) {
            sse->bom = (sse->bom == 2) ? -1 : sse->bom + 1;
            p++;
            n--;
            continue;
        }

        /* not a BOM after all: its start was stream content */
        matched = sse->bom;
        sse->bom = -1;
        fg_sse_bytes(sse, fg_sse_bom, (size_t) matched);
    }

    if (n > 0) {
        fg_sse_bytes(sse, p, n);
    }

    return sse->nomem ? FG_ERR_NOMEM : FG_OK;
}


void
fg_sse_finish(fg_sse_t *sse, fg_usage_t *out)
{
    /* an event the stream ended inside is not dispatched */
    sse->len = 0;
    sse->skip = 0;
    sse->state = FG_SSE_LINE_START;
    sse->bom = -1;

    free(sse->data);
    sse->data = NULL;
    sse->cap = 0;

    fg_usage_complete(&sse->usage);
    *out = sse->usage;
}

/*
 * test_adapter.c -- model call adapters: request paths and bodies (known
 * endpoints, Azure deployments, refusals), usage of complete JSON
 * responses per provider and endpoint, and the SSE usage scanner fed
 * real-shaped OpenAI chat, OpenAI responses and Anthropic messages streams
 * whole, byte by byte and in random splits, with every line ending,
 * comments, oversize events and malformed data.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_adapter.h"
#include "fg_json_scan.h"
#include "fg_sse.h"

/* ------------------------------------------------------------ streams */

static const char  openai_chat_usage[] =
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\" w\\u00f6rld \xc3\xa9\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,"
    "\"total_tokens\":21,\"prompt_tokens_details\":{\"cached_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static const char  openai_chat_plain[] =
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-2024-08-06\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null}]}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-2024-08-06\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
    "\"finish_reason\":null}]}\n"
    "\n"
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
    "\"created\":1694268190,\"model\":\"gpt-4o-2024-08-06\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static const char  anthropic_messages[] =
    "event: message_start\n"
    "data: {\"type\": \"message_start\", \"message\": {\"id\": "
    "\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", "
    "\"role\": \"assistant\", \"content\": [], \"model\": "
    "\"claude-sonnet-4-20250514\", \"stop_reason\": null, "
    "\"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, "
    "\"cache_creation_input_tokens\": 0, \"cache_read_input_tokens\": 7, "
    "\"output_tokens\": 1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 0, "
    "\"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": "
    "{\"type\": \"text_delta\", \"text\": \"Hello\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": "
    "{\"type\": \"text_delta\", \"text\": \"! How is the usage?\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": "
    "{\"type\": \"text_delta\", \"text\": \" \xe2\x9c\x93\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": "
    "\"end_turn\", \"stop_sequence\":null}, \"usage\": "
    "{\"output_tokens\": 8}}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": "
    "\"end_turn\", \"stop_sequence\":null}, \"usage\": "
    "{\"output_tokens\": 15}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\": \"message_stop\"}\n"
    "\n";

static const char  openai_responses[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,"
    "\"response\":{\"id\":\"resp_67c9fdcecf\",\"object\":\"response\","
    "\"created_at\":1741290958,\"status\":\"in_progress\","
    "\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n"
    "\n"
    "event: response.in_progress\n"
    "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,"
    "\"response\":{\"id\":\"resp_67c9fdcecf\",\"object\":\"response\","
    "\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\","
    "\"output\":[],\"usage\":null}}\n"
    "\n"
    "event: response.output_item.added\n"
    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,"
    "\"output_index\":0,\"item\":{\"id\":\"msg_67c9\",\"type\":\"message\","
    "\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n"
    "\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,"
    "\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,"
    "\"delta\":\"Hi\"}\n"
    "\n"
    "event: response.output_text.done\n"
    "data: {\"type\":\"response.output_text.done\",\"sequence_number\":4,"
    "\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,"
    "\"text\":\"Hi\"}\n"
    "\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"sequence_number\":5,"
    "\"response\":{\"id\":\"resp_67c9fdcecf\",\"object\":\"response\","
    "\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\","
    "\"output\":[{\"id\":\"msg_67c9\",\"type\":\"message\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],"
    "\"usage\":{\"input_tokens\":37,\"input_tokens_details\":"
    "{\"cached_tokens\":0},\"output_tokens\":11,\"output_tokens_details\":"
    "{\"reasoning_tokens\":0},\"total_tokens\":48}}}\n"
    "\n";


/* ------------------------------------------------------------ helpers */

typedef struct {
    fg_usage_t  usage;
    uint64_t    events;
    uint64_t    malformed;
    uint64_t    oversize;
    int         ended;
} scan_t;

enum { SPLIT_WHOLE = 0, SPLIT_BYTES, SPLIT_RANDOM };


static void
scan(fg_provider_t provider, fg_endpoint_t endpoint, const unsigned char *p,
    size_t n, int split, unsigned seed, scan_t *out)
{
    fg_sse_t  sse;
    size_t    k, off;
    unsigned  r;

    fg_sse_init(&sse, provider, endpoint);

    r = seed;
    off = 0;

    while (off < n) {
        switch (split) {
        case SPLIT_WHOLE:
            k = n;
            break;
        case SPLIT_BYTES:
            k = 1;
            break;
        default:
            r = r * 1103515245u + 12345u;
            k = 1 + (r >> 16) % 97;
            break;
        }
        if (k > n - off) {
            k = n - off;
        }
        assert_int_equal(fg_sse_feed(&sse, p + off, k), FG_OK);
        off += k;
    }

    fg_sse_finish(&sse, &out->usage);
    out->events = sse.events;
    out->malformed = sse.malformed;
    out->oversize = sse.oversize;
    out->ended = sse.ended;

    /* finishing twice is harmless */
    fg_sse_finish(&sse, &out->usage);
}


static void
assert_same_scan(const scan_t *a, const scan_t *b)
{
    assert_int_equal(a->usage.input_tokens, b->usage.input_tokens);
    assert_int_equal(a->usage.output_tokens, b->usage.output_tokens);
    assert_int_equal(a->usage.total_tokens, b->usage.total_tokens);
    assert_int_equal(a->usage.cache_creation_input_tokens,
                     b->usage.cache_creation_input_tokens);
    assert_int_equal(a->usage.cache_read_input_tokens,
                     b->usage.cache_read_input_tokens);
    assert_string_equal(a->usage.response_model, b->usage.response_model);
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->malformed, b->malformed);
    assert_int_equal(a->oversize, b->oversize);
    assert_int_equal(a->ended, b->ended);
}


/* scan whole, byte by byte and in 20 random splits; all must agree */
static void
scan_all(fg_provider_t provider, fg_endpoint_t endpoint,
    const unsigned char *p, size_t n, scan_t *out)
{
    scan_t    other;
    unsigned  seed;

    scan(provider, endpoint, p, n, SPLIT_WHOLE, 0, out);

    scan(provider, endpoint, p, n, SPLIT_BYTES, 0, &other);
    assert_same_scan(out, &other);

    for (seed = 1; seed <= 20; seed++) {
        scan(provider, endpoint, p, n, SPLIT_RANDOM, seed * 7919u, &other);
        assert_same_scan(out, &other);
    }
}


static void
scan_text(fg_provider_t provider, fg_endpoint_t endpoint, const char *s,
    scan_t *out)
{
    scan_all(provider, endpoint, (const unsigned char *) s, strlen(s), out);
}


/* s with every "\n" replaced by eol (malloc'd) */
static char *
with_eol(const char *s, const char *eol)
{
    size_t  n, e, i, j;
    char   *t;

    n = strlen(s);
    e = strlen(eol);
    t = malloc(n * e + 1);
    assert_non_null(t);

    for (i = 0, j = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(t + j, eol, e);
            j += e;
        } else {
            t[j++] = s[i];
        }
    }
    t[j] = '\0';

    return t;
}


static void
assert_usage(const fg_usage_t *u, int64_t in, int64_t out, int64_t total,
    const char *model)
{
    assert_int_equal(u->input_tokens, in);
    assert_int_equal(u->output_tokens, out);
    assert_int_equal(u->total_tokens, total);
    assert_string_equal(u->response_model, model);
}


/* ---------------------------------------------------------- SSE tests */

static void
test_sse_openai_chat(void **state)
{
    scan_t  s;

    (void) state;

    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              openai_chat_usage, &s);
    assert_usage(&s.usage, 9, 12, 21, "gpt-4o-mini-2024-07-18");
    assert_int_equal(s.events, 6);
    assert_int_equal(s.malformed, 0);
    assert_int_equal(s.oversize, 0);
    assert_true(s.ended);

    /* without include_usage the stream says nothing about usage */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              openai_chat_plain, &s);
    assert_usage(&s.usage, -1, -1, -1, "gpt-4o-2024-08-06");
    assert_int_equal(s.events, 4);
    assert_true(s.ended);

    /* Azure streams the same shape */
    scan_text(FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              openai_chat_usage, &s);
    assert_usage(&s.usage, 9, 12, 21, "gpt-4o-mini-2024-07-18");
}


static void
test_sse_azure_filter_chunk(void **state)
{
    scan_t  s;

    (void) state;

    /* Azure's first chunk carries prompt_filter_results and model "" */
    scan_text(FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\","
              "\"object\":\"\",\"prompt_filter_results\":[]}\n\n"
              "data: {\"choices\":[],\"model\":\"gpt-4o-2024-11-20\"}\n\n"
              "data: {\"choices\":[],\"model\":\"gpt-4o-2024-11-20\","
              "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
              "\"total_tokens\":7}}\n\n"
              "data: [DONE]\n\n", &s);
    assert_usage(&s.usage, 3, 4, 7, "gpt-4o-2024-11-20");
    assert_true(s.ended);
}


static void
test_sse_anthropic(void **state)
{
    scan_t  s;

    (void) state;

    scan_text(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES,
              anthropic_messages, &s);
    assert_usage(&s.usage, 25, 15, 40, "claude-sonnet-4-20250514");
    assert_int_equal(s.usage.cache_creation_input_tokens, 0);
    assert_int_equal(s.usage.cache_read_input_tokens, 7);
    assert_int_equal(s.events, 10);
    assert_int_equal(s.malformed, 0);
    assert_true(s.ended);
}


static void
test_sse_openai_responses(void **state)
{
    scan_t  s;

    (void) state;

    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_RESPONSES, openai_responses,
              &s);
    assert_usage(&s.usage, 37, 11, 48, "gpt-4.1-2025-04-14");
    assert_int_equal(s.events, 6);
    assert_int_equal(s.malformed, 0);
    assert_true(s.ended);

    scan_text(FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_RESPONSES,
              openai_responses, &s);
    assert_usage(&s.usage, 37, 11, 48, "gpt-4.1-2025-04-14");
}


static void
test_sse_line_endings(void **state)
{
    static const char  *eols[] = { "\r\n", "\r", "\n" };
    const char         *streams[3];
    scan_t              ref, s;
    char               *t;
    int                 i, j;
    fg_endpoint_t       ep[3] = {
        FG_ENDPOINT_CHAT_COMPLETIONS, FG_ENDPOINT_MESSAGES,
        FG_ENDPOINT_RESPONSES
    };
    fg_provider_t       pr[3] = {
        FG_PROVIDER_OPENAI, FG_PROVIDER_ANTHROPIC, FG_PROVIDER_OPENAI
    };

    (void) state;

    streams[0] = openai_chat_usage;
    streams[1] = anthropic_messages;
    streams[2] = openai_responses;

    for (i = 0; i < 3; i++) {
        scan_text(pr[i], ep[i], streams[i], &ref);
        for (j = 0; j < 3; j++) {
            t = with_eol(streams[i], eols[j]);
            scan_text(pr[i], ep[i], t, &s);
            assert_same_scan(&ref, &s);
            free(t);
        }
    }
}


static void
test_sse_comments_and_fields(void **state)
{
    scan_t  s;

    (void) state;

    /* comments anywhere, other fields ignored, "data:" without a space,
     * data over two lines joined with "\n", a BOM at the start */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "\xef\xbb\xbf: OPENROUTER PROCESSING\n"
              ":\n"
              "\n"
              "id: 1\n"
              "retry: 3000\n"
              "event: chunk\n"
              "data:{\"model\":\"m-1\",\n"
              ": keep-alive in the middle\n"
              "data: \"usage\":{\"prompt_tokens\":3,"
              "\"completion_tokens\":4}}\n"
              "\n"
              ": trailing comment\n"
              "\n"
              "data: [DONE]\n"
              "\n", &s);
    assert_usage(&s.usage, 3, 4, 7, "m-1");
    assert_int_equal(s.events, 2);
    assert_int_equal(s.malformed, 0);
    assert_true(s.ended);

    /* a field named like data but longer is not data; "data" alone is an
     * empty data line (an event with empty data: malformed, not JSON) */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "database: {\"usage\":{\"prompt_tokens\":1}}\n\n"
              "data\n\n"
              "Data: {\"usage\":{\"prompt_tokens\":1}}\n\n", &s);
    assert_usage(&s.usage, -1, -1, -1, "");
    assert_int_equal(s.events, 1);
    assert_int_equal(s.malformed, 1);

    /* "data:  x" keeps the second space; a bad BOM start is content */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "\xef\xbb" "data: {\"model\":\"x\"}\n\n"
              "data:  {\"model\":\"m\",\"usage\":{\"prompt_tokens\":2,"
              "\"total_tokens\":2}}\n\n", &s);
    assert_usage(&s.usage, 2, -1, 2, "m");
    assert_int_equal(s.events, 1);
    assert_false(s.ended);
}


static void
test_sse_unfinished_event(void **state)
{
    scan_t  s;

    (void) state;

    /* an event the stream ends inside is discarded */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "data: {\"model\":\"a\"}\n\n"
              "data: {\"usage\":{\"prompt_tokens\":1,"
              "\"completion_tokens\":1}}\n", &s);
    assert_usage(&s.usage, -1, -1, -1, "a");
    assert_int_equal(s.events, 1);
    assert_false(s.ended);

    /* an empty stream */
    scan_text(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES, "", &s);
    assert_usage(&s.usage, -1, -1, -1, "");
    assert_int_equal(s.events, 0);
    assert_false(s.ended);
}


static void
test_sse_malformed(void **state)
{
    scan_t  s;

    (void) state;

    scan_text(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES,
              "event: message_start\n"
              "data: {\"type\":\"message_start\",\"message\":{\"model\":"
              "\"claude-x\",\"usage\":{\"input_tokens\":10,"
              "\"output_tokens\":1}}}\n\n"
              "data: {\"type\":\"message_delta\",\"usage\":{\n\n"
              "data: not json at all\n\n"
              "data: {\"type\":\"message_delta\",\"usage\":"
              "{\"output_tokens\":\"many\"}}\n\n"
              "data: {\"type\":\"message_delta\",\"usage\":"
              "{\"output_tokens\":-5}}\n\n"
              "data: {\"type\":\"message_delta\",\"usage\":"
              "{\"output_tokens\":6}}\n\n"
              "data: {\"type\":\"message_stop\"}\n\n", &s);
    assert_usage(&s.usage, 10, 6, 16, "claude-x");
    assert_int_equal(s.events, 7);
    assert_int_equal(s.malformed, 2);
    assert_true(s.ended);

    /* an invalid UTF-8 byte inside JSON: malformed, not fatal */
    scan_text(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
              "data: {\"model\":\"\xff\"}\n\n"
              "data: {\"model\":\"ok\"}\n\n", &s);
    assert_int_equal(s.malformed, 1);
    assert_string_equal(s.usage.response_model, "ok");
}


/* a stream of one event whose data is exactly size bytes, then usage */
static unsigned char *
big_stream(size_t size, size_t *len)
{
    static const char   head[] = "data: {\"usage\":{\"prompt_tokens\":1},"
                                 "\"model\":\"big\",\"pad\":\"";
    static const char   tail[] = "\"}\n\n";
    static const char   next[] = "data: {\"model\":\"m\",\"usage\":"
                                 "{\"prompt_tokens\":5,"
                                 "\"completion_tokens\":6}}\n\n";
    unsigned char      *p;
    size_t              fixed, pad, off;

    fixed = (sizeof(head) - 1 - 6) + 2;     /* the data, without "data: " */
    pad = size - fixed;

    *len = sizeof(head) - 1 + pad + sizeof(tail) - 1 + sizeof(next) - 1;
    p = malloc(*len);
    assert_non_null(p);

    off = 0;
    memcpy(p, head, sizeof(head) - 1);
    off += sizeof(head) - 1;
    memset(p + off, 'a', pad);
    off += pad;
    memcpy(p + off, tail, sizeof(tail) - 1);
    off += sizeof(tail) - 1;
    memcpy(p + off, next, sizeof(next) - 1);

    return p;
}


static void
test_sse_oversize(void **state)
{
    unsigned char  *p;
    scan_t          s, other;
    size_t          n;

    (void) state;

    /* exactly at the bound: read */
    p = big_stream(FG_SSE_EVENT_MAX, &n);
    scan(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS, p, n,
         SPLIT_WHOLE, 0, &s);
    assert_int_equal(s.oversize, 0);
    assert_int_equal(s.events, 2);
    assert_usage(&s.usage, 5, 6, 11, "big");
    free(p);

    /* one byte over: skipped and counted, the next event still read */
    p = big_stream(FG_SSE_EVENT_MAX + 1, &n);
    scan(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS, p, n,
         SPLIT_WHOLE, 0, &s);
    assert_int_equal(s.oversize, 1);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.malformed, 0);
    assert_usage(&s.usage, 5, 6, 11, "m");

    scan(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS, p, n,
         SPLIT_RANDOM, 42, &other);
    assert_same_scan(&s, &other);
    free(p);
}


/* ------------------------------------------------ JSON response usage */

static json_t *
parse(const char *s)
{
    json_error_t  jerr;
    json_t       *v;

    v = json_loads(s, 0, &jerr);
    if (v == NULL) {
        fail_msg("bad test JSON: %s", jerr.text);
    }

    return v;
}


/*
 * Usage of the response s read both ways: from its jansson document and
 * from its text (only "model" and "usage" parsed); they must agree.
 */
static void
usage_of(fg_provider_t p, fg_endpoint_t e, const char *s, fg_usage_t *u)
{
    json_t      *v = parse(s);
    fg_usage_t   t;
    int          object;

    assert_int_equal(fg_adapter_usage_json(p, e, v, u), FG_OK);
    object = json_is_object(v);
    json_decref(v);

    assert_int_equal(fg_adapter_usage_text(p, e, s, strlen(s), &t),
                     object ? FG_OK : FG_ERR_SYNTAX);
    assert_usage(&t, u->input_tokens, u->output_tokens, u->total_tokens,
                 u->response_model);
    assert_int_equal(t.cache_creation_input_tokens,
                     u->cache_creation_input_tokens);
    assert_int_equal(t.cache_read_input_tokens, u->cache_read_input_tokens);
}


/* Usage read from the text s, which must scan as rc says. */
static void
usage_text(const char *s, int rc, fg_usage_t *u)
{
    assert_int_equal(fg_adapter_usage_text(FG_PROVIDER_OPENAI,
                     FG_ENDPOINT_CHAT_COMPLETIONS, s, strlen(s), u), rc);
}


/* fg_json_members() for one key: 1 with the span, 0 absent, -1 malformed */
static int
member(const char *text, size_t len, const char *key, size_t *off,
    size_t *n)
{
    fg_json_span_t  span;

    if (fg_json_members(text, len, &key, 1, &span) != FG_JSON_FOUND) {
        return -1;
    }
    *off = span.off;
    *n = span.len;
    return span.found;
}


static void
test_usage_text_hostile(void **state)
{
    fg_usage_t  u;
    size_t      off, n;

    (void) state;

    /* "usage" inside a string, nested deeper, or escaped: not the member */
    usage_text("{\"choices\":[{\"message\":{\"content\":"
               "\"\\\"usage\\\":{\\\"prompt_tokens\\\":7}\","
               "\"usage\":{\"prompt_tokens\":99}}}],"
               "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
               FG_OK, &u);
    assert_usage(&u, 3, 4, 7, "");

    usage_text("{\"x\":{\"usage\":{\"prompt_tokens\":9}}}", FG_OK, &u);
    assert_usage(&u, -1, -1, -1, "");

    usage_text("{\"\\u0075sage\":{\"prompt_tokens\":9}}", FG_OK, &u);
    assert_usage(&u, -1, -1, -1, "");

    /* a string ending in an escaped backslash, then the real member */
    usage_text("{\"a\":\"x\\\\\",\"usage\":{\"prompt_tokens\":2,"
               "\"completion_tokens\":2}}", FG_OK, &u);
    assert_usage(&u, 2, 2, 4, "");

    /* twice, truncated, trailing bytes, not an object: nothing known */
    usage_text("{\"usage\":{\"prompt_tokens\":1},\"usage\":"
               "{\"prompt_tokens\":2}}", FG_ERR_SYNTAX, &u);
    assert_usage(&u, -1, -1, -1, "");
    usage_text("{\"usage\":{\"prompt_tokens\":1}", FG_ERR_SYNTAX, &u);
    usage_text("{\"usage\":{\"prompt_tokens\":1}} x", FG_ERR_SYNTAX, &u);
    usage_text("{\"usage\":{\"prompt_tokens\":1}}{}", FG_ERR_SYNTAX, &u);
    usage_text("{\"usage\" {}}", FG_ERR_SYNTAX, &u);
    usage_text("{\"usage\":}", FG_ERR_SYNTAX, &u);
    usage_text("{\"a\":1,}", FG_ERR_SYNTAX, &u);
    usage_text("{\"a\":\"open", FG_ERR_SYNTAX, &u);
    usage_text("", FG_ERR_SYNTAX, &u);
    usage_text("\"usage\"", FG_ERR_SYNTAX, &u);
    assert_usage(&u, -1, -1, -1, "");

    /* a malformed usage value is jansson's to refuse: unknown, not wrong */
    usage_text("{\"usage\":{\"prompt_tokens\":1,}}", FG_OK, &u);
    assert_usage(&u, -1, -1, -1, "");

    /* the span is the value exactly, whitespace around it left out */
    assert_int_equal(member(" { \"a\" : [1, {\"b\": \"]\"}] ,"
                     " \"c\":true } ", 38, "a", &off, &n), 1);
    assert_int_equal(off, 9);
    assert_int_equal(n, 15);
    assert_int_equal(member("{}", 2, "a", &off, &n), 0);
    assert_int_equal(member("{\"ab\":1}", 8, "a", &off, &n), 0);
    assert_int_equal(member("{\"a\":1,\"a\":2}", 13, "a", &off, &n), -1);
}


static void
test_usage_json(void **state)
{
    fg_usage_t  u;

    (void) state;

    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
             "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],"
             "\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,"
             "\"total_tokens\":29,\"prompt_tokens_details\":"
             "{\"cached_tokens\":0}}}", &u);
    assert_usage(&u, 19, 10, 29, "gpt-4o-2024-08-06");

    usage_of(FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"model\":\"gpt-4o-2024-11-20\",\"usage\":{"
             "\"prompt_tokens\":5,\"completion_tokens\":7,"
             "\"total_tokens\":12}}", &u);
    assert_usage(&u, 5, 7, 12, "gpt-4o-2024-11-20");

    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_RESPONSES,
             "{\"id\":\"resp_1\",\"object\":\"response\",\"model\":"
             "\"gpt-4.1-2025-04-14\",\"usage\":{\"input_tokens\":36,"
             "\"output_tokens\":87,\"total_tokens\":123}}", &u);
    assert_usage(&u, 36, 87, 123, "gpt-4.1-2025-04-14");

    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_EMBEDDINGS,
             "{\"object\":\"list\",\"data\":[],\"model\":"
             "\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,"
             "\"total_tokens\":8}}", &u);
    assert_usage(&u, 8, -1, 8, "text-embedding-3-small");

    usage_of(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES,
             "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":"
             "\"claude-sonnet-4-20250514\",\"usage\":{\"input_tokens\":"
             "2095,\"output_tokens\":503,\"cache_creation_input_tokens\":"
             "100,\"cache_read_input_tokens\":2000}}", &u);
    assert_usage(&u, 2095, 503, 2598, "claude-sonnet-4-20250514");
    assert_int_equal(u.cache_creation_input_tokens, 100);
    assert_int_equal(u.cache_read_input_tokens, 2000);
}


static void
test_usage_json_unknown(void **state)
{
    fg_usage_t  u;

    (void) state;

    /* an error response: nothing known, nothing guessed */
    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"error\":{\"message\":\"x\",\"type\":\"invalid_request\"}}",
             &u);
    assert_usage(&u, -1, -1, -1, "");
    assert_int_equal(u.cache_read_input_tokens, -1);

    /* a count absent: no total is made up from one side */
    usage_of(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES,
             "{\"model\":\"claude\",\"usage\":{\"input_tokens\":3}}", &u);
    assert_usage(&u, 3, -1, -1, "claude");

    /* counts of the wrong type or range, a bad model name */
    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"model\":\"has space\",\"usage\":{\"prompt_tokens\":\"3\","
             "\"completion_tokens\":-1,\"total_tokens\":1.5}}", &u);
    assert_usage(&u, -1, -1, -1, "");

    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"usage\":{\"prompt_tokens\":9007199254740992,"
             "\"completion_tokens\":9007199254740991}}", &u);
    assert_usage(&u, -1, 9007199254740991LL, -1, "");

    /* the provider's total is kept as it said */
    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS,
             "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,"
             "\"total_tokens\":5}}", &u);
    assert_usage(&u, 1, 1, 5, "");

    usage_of(FG_PROVIDER_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS, "[1]", &u);
    assert_usage(&u, -1, -1, -1, "");

    assert_int_equal(fg_adapter_usage_json(FG_PROVIDERS,
                     FG_ENDPOINT_MESSAGES, NULL, &u), FG_ERR_INVALID);
    assert_int_equal(fg_adapter_usage_json(FG_PROVIDER_OPENAI,
                     FG_ENDPOINTS, NULL, &u), FG_ERR_INVALID);
}


/* --------------------------------------------------- request adapter */

static int
request(fg_provider_t p, const char *path, const char *body,
    fg_model_request_t *out, fg_error_t *err)
{
    json_t  *v;
    int      rc;

    v = parse(body);
    rc = fg_adapter_model_request(p, path, strlen(path), v, out, err);
    json_decref(v);

    return rc;
}


static void
expect_endpoint(fg_provider_t p, const char *path, const char *body,
    fg_endpoint_t e, const char *name, const char *model)
{
    fg_model_request_t  r;
    fg_error_t          err;

    if (request(p, path, body, &r, &err) != FG_OK) {
        fail_msg("%s refused: %s", path, err.msg);
    }

    assert_int_equal(r.provider, p);
    assert_int_equal(r.endpoint, e);
    assert_string_equal(r.endpoint_name, name);
    assert_string_equal(r.model, model);
}


static void
test_request_endpoints(void **state)
{
    const char  *m = "{\"model\":\"gpt-4o\"}";

    (void) state;

    expect_endpoint(FG_PROVIDER_OPENAI, "/v1/chat/completions", m,
                    FG_ENDPOINT_CHAT_COMPLETIONS, "chat_completions",
                    "gpt-4o");
    expect_endpoint(FG_PROVIDER_OPENAI, "/chat/completions", m,
                    FG_ENDPOINT_CHAT_COMPLETIONS, "chat_completions",
                    "gpt-4o");
    expect_endpoint(FG_PROVIDER_OPENAI, "/v1/responses?x=1", m,
                    FG_ENDPOINT_RESPONSES, "responses", "gpt-4o");
    expect_endpoint(FG_PROVIDER_OPENAI, "/v1/embeddings", m,
                    FG_ENDPOINT_EMBEDDINGS, "embeddings", "gpt-4o");
    expect_endpoint(FG_PROVIDER_OPENAI, "/embeddings", m,
                    FG_ENDPOINT_EMBEDDINGS, "embeddings", "gpt-4o");

    expect_endpoint(FG_PROVIDER_AZURE_OPENAI,
                    "/openai/deployments/prod-gpt4o/chat/completions"
                    "?api-version=2024-10-21", "{\"messages\":[]}",
                    FG_ENDPOINT_CHAT_COMPLETIONS, "chat_completions",
                    "prod-gpt4o");
    expect_endpoint(FG_PROVIDER_AZURE_OPENAI,
                    "/openai/deployments/emb/embeddings",
                    "{\"input\":\"x\",\"model\":null}",
                    FG_ENDPOINT_EMBEDDINGS, "embeddings", "emb");
    /* the deployment runs, whatever the body's model says */
    expect_endpoint(FG_PROVIDER_AZURE_OPENAI,
                    "/openai/deployments/dep/chat/completions", m,
                    FG_ENDPOINT_CHAT_COMPLETIONS, "chat_completions",
                    "dep");
    expect_endpoint(FG_PROVIDER_AZURE_OPENAI, "/openai/v1/responses", m,
                    FG_ENDPOINT_RESPONSES, "responses", "gpt-4o");
    expect_endpoint(FG_PROVIDER_AZURE_OPENAI, "/openai/responses", m,
                    FG_ENDPOINT_RESPONSES, "responses", "gpt-4o");
    expect_endpoint(FG_PROVIDER_AZURE_OPENAI, "/openai/v1/chat/completions",
                    m, FG_ENDPOINT_CHAT_COMPLETIONS, "chat_completions",
                    "gpt-4o");

    expect_endpoint(FG_PROVIDER_ANTHROPIC, "/v1/messages",
                    "{\"model\":\"claude-sonnet-4-20250514\","
                    "\"max_tokens\":1024,\"messages\":[]}",
                    FG_ENDPOINT_MESSAGES, "messages",
                    "claude-sonnet-4-20250514");
    expect_endpoint(FG_PROVIDER_ANTHROPIC, "/messages",
                    "{\"model\":\"claude\"}", FG_ENDPOINT_MESSAGES,
                    "messages", "claude");

    assert_string_equal(fg_provider_name(FG_PROVIDER_AZURE_OPENAI),
                        "azure_openai");
    assert_int_equal(fg_provider_from_name("anthropic"),
                     FG_PROVIDER_ANTHROPIC);
    assert_int_equal(fg_provider_from_name("bedrock"), -1);
    assert_null(fg_provider_name(FG_PROVIDERS));
    assert_null(fg_endpoint_name(FG_ENDPOINTS));
}


static void
test_request_stream(void **state)
{
    fg_model_request_t  r;
    fg_error_t          err;

    (void) state;

    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                     "{\"model\":\"m\"}", &r, &err), FG_OK);
    assert_false(r.stream);
    assert_false(r.include_usage);

    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                     "{\"model\":\"m\",\"stream\":null}", &r, &err), FG_OK);
    assert_false(r.stream);

    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                     "{\"model\":\"m\",\"stream\":true}", &r, &err), FG_OK);
    assert_true(r.stream);
    assert_false(r.include_usage);

    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                     "{\"model\":\"m\",\"stream\":true,\"stream_options\":"
                     "{\"include_usage\":true}}", &r, &err), FG_OK);
    assert_true(r.stream);
    assert_true(r.include_usage);

    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                     "{\"model\":\"m\",\"stream\":false,\"stream_options\":"
                     "{\"include_usage\":true}}", &r, &err), FG_OK);
    assert_false(r.include_usage);

    assert_int_equal(request(FG_PROVIDER_AZURE_OPENAI,
                     "/openai/deployments/d/chat/completions",
                     "{\"stream\":true,\"stream_options\":"
                     "{\"include_usage\":1}}", &r, &err), FG_OK);
    assert_true(r.stream);
    assert_false(r.include_usage);
    assert_true(r.model_from_path);

    assert_int_equal(request(FG_PROVIDER_ANTHROPIC, "/v1/messages",
                     "{\"model\":\"c\",\"stream\":true}", &r, &err), FG_OK);
    assert_true(r.stream);
    assert_false(r.model_from_path);
}


static void
expect_refusal(fg_provider_t p, const char *path, const char *body,
    const char *says)
{
    fg_model_request_t  r;
    fg_error_t          err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(request(p, path, body, &r, &err), FG_ERR_INVALID);
    assert_int_equal(err.code, FG_ERR_INVALID);
    if (strstr(err.msg, says) == NULL) {
        fail_msg("%s: \"%s\" does not say \"%s\"", path, err.msg, says);
    }
}


static void
test_request_refusals(void **state)
{
    fg_model_request_t  r;
    fg_error_t          err;
    char                body[400];
    const char         *ok = "{\"model\":\"m\"}";

    (void) state;

    /* unknown endpoints */
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions/", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/models", ok, "endpoint");
    expect_refusal(FG_PROVIDER_OPENAI, "/v2/chat/completions", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/messages", ok, "endpoint");
    expect_refusal(FG_PROVIDER_OPENAI, "", ok, "endpoint");
    expect_refusal(FG_PROVIDER_ANTHROPIC, "/v1/chat/completions", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_ANTHROPIC, "/v1/messages/count_tokens", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI, "/v1/chat/completions", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI,
                   "/openai/deployments//chat/completions", ok, "endpoint");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI,
                   "/openai/deployments/d/completions", ok, "endpoint");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI,
                   "/openai/deployments/a/b/chat/completions", ok,
                   "endpoint");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI,
                   "/openai/deployments/a b/chat/completions", ok,
                   "deployment name");

    /* bodies */
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions", "[]",
                   "not a JSON object");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions", "{}",
                   "names no \"model\"");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                   "{\"model\":null}", "names no \"model\"");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI, "/openai/v1/responses", "{}",
                   "names no \"model\"");
    expect_refusal(FG_PROVIDER_ANTHROPIC, "/v1/messages",
                   "{\"model\":42}", "not a string");
    expect_refusal(FG_PROVIDER_AZURE_OPENAI,
                   "/openai/deployments/d/chat/completions",
                   "{\"model\":[\"x\"]}", "not a string");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                   "{\"model\":\"\"}", "printable");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                   "{\"model\":\"gpt 4\"}", "printable");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                   "{\"model\":\"gpt\\n4\"}", "printable");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/chat/completions",
                   "{\"model\":\"m\",\"stream\":\"true\"}",
                   "\"stream\" is not a boolean");
    expect_refusal(FG_PROVIDER_ANTHROPIC, "/v1/messages",
                   "{\"model\":\"m\",\"stream\":1}",
                   "\"stream\" is not a boolean");

    /* the model bound: 256 is fine, 257 is not */
    memset(body, 0, sizeof(body));
    strcpy(body, "{\"model\":\"");
    memset(body + 10, 'a', 256);
    strcpy(body + 266, "\"}");
    assert_int_equal(request(FG_PROVIDER_OPENAI, "/v1/embeddings", body, &r,
                     &err), FG_OK);
    assert_int_equal(strlen(r.model), 256);

    memset(body, 0, sizeof(body));
    strcpy(body, "{\"model\":\"");
    memset(body + 10, 'a', 257);
    strcpy(body + 267, "\"}");
    expect_refusal(FG_PROVIDER_OPENAI, "/v1/embeddings", body, "printable");

    /* a NULL body or provider out of range */
    assert_int_equal(fg_adapter_model_request(FG_PROVIDER_OPENAI,
                     "/v1/embeddings", 14, NULL, &r, &err), FG_ERR_INVALID);
    assert_int_equal(fg_adapter_model_request(FG_PROVIDERS,
                     "/v1/embeddings", 14, NULL, &r, &err), FG_ERR_INVALID);
    assert_int_equal(fg_adapter_model_request(FG_PROVIDER_OPENAI,
                     NULL, 0, NULL, &r, &err), FG_ERR_INVALID);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sse_openai_chat),
        cmocka_unit_test(test_sse_azure_filter_chunk),
        cmocka_unit_test(test_sse_anthropic),
        cmocka_unit_test(test_sse_openai_responses),
        cmocka_unit_test(test_sse_line_endings),
        cmocka_unit_test(test_sse_comments_and_fields),
        cmocka_unit_test(test_sse_unfinished_event),
        cmocka_unit_test(test_sse_malformed),
        cmocka_unit_test(test_sse_oversize),
        cmocka_unit_test(test_usage_json),
        cmocka_unit_test(test_usage_json_unknown),
        cmocka_unit_test(test_usage_text_hostile),
        cmocka_unit_test(test_request_endpoints),
        cmocka_unit_test(test_request_stream),
        cmocka_unit_test(test_request_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

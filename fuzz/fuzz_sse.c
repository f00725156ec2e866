/*
 * fuzz_sse.c -- libFuzzer target for the SSE usage scanner.
 *
 * The first byte picks the provider/endpoint (low 3 bits) and the chunk
 * size (the high 5 bits, 1..32); the rest is the stream.  Besides "does
 * not crash", it checks on every input:
 *   - split independence: the stream fed in chunks (alternately of the
 *     chosen size and of one byte) and fed whole give the same usage,
 *     response model and counters;
 *   - the counters are consistent (malformed + oversize <= events, no
 *     more events than line ends) and every count is unknown or in
 *     0..2^53-1.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    fg_provider_t  provider;
    fg_endpoint_t  endpoint;
} fuzz_kinds[8] = {
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_CHAT_COMPLETIONS },
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_RESPONSES },
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_EMBEDDINGS },
    { FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS },
    { FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_RESPONSES },
    { FG_PROVIDER_ANTHROPIC,    FG_ENDPOINT_MESSAGES },
    { FG_PROVIDER_ANTHROPIC,    FG_ENDPOINT_MESSAGES },
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_CHAT_COMPLETIONS }
};


static void
fuzz_check_count(int64_t n)
{
    if (n != FG_USAGE_UNKNOWN && (n < 0 || n > FG_USAGE_MAX)) {
        fprintf(stderr, "count out of range: %lld\n", (long long) n);
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_usage_t  ua, ub;
    fg_sse_t    a, b;
    size_t      split, k, off, i, eols;
    int         kind;

    if (size < 1) {
        return 0;
    }

    kind = data[0] & 7;
    split = 1 + (data[0] >> 3);
    data++;
    size--;

    fg_sse_init(&a, fuzz_kinds[kind].provider, fuzz_kinds[kind].endpoint);
    fg_sse_init(&b, fuzz_kinds[kind].provider, fuzz_kinds[kind].endpoint);

    for (off = 0, i = 0; off < size; off += k, i++) {
        k = (i & 1) ? 1 : split;
        if (k > size - off) {
            k = size - off;
        }
        if (fg_sse_feed(&a, data + off, k) != FG_OK) {
            abort();
        }
    }

    if (fg_sse_feed(&b, data, size) != FG_OK) {
        abort();
    }

    fg_sse_finish(&a, &ua);
    fg_sse_finish(&b, &ub);

    if (ua.input_tokens != ub.input_tokens
        || ua.output_tokens != ub.output_tokens
        || ua.total_tokens != ub.total_tokens
        || ua.cache_creation_input_tokens != ub.cache_creation_input_tokens
        || ua.cache_read_input_tokens != ub.cache_read_input_tokens
        || strcmp(ua.response_model, ub.response_model) != 0
        || a.events != b.events || a.malformed != b.malformed
        || a.oversize != b.oversize || a.parsed != b.parsed
        || a.ended != b.ended || a.bytes != b.bytes)
    {
        fprintf(stderr, "chunked and whole scans disagree\n");
        abort();
    }

    for (i = 0, eols = 0; i < size; i++) {
        eols += (data[i] == '\n' || data[i] == '\r');
    }

    if (a.malformed + a.oversize > a.events || a.events > eols
        || a.parsed > a.events || a.bytes != size)
    {
        fprintf(stderr, "inconsistent counters\n");
        abort();
    }

    fuzz_check_count(ua.input_tokens);
    fuzz_check_count(ua.output_tokens);
    fuzz_check_count(ua.total_tokens);
    fuzz_check_count(ua.cache_creation_input_tokens);
    fuzz_check_count(ua.cache_read_input_tokens);

    if (strlen(ua.response_model) > FG_MODEL_MAX) {
        abort();
    }

    return 0;
}

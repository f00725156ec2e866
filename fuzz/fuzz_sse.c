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
 *     0..2^53-1;
 *   - the ModelCallRecord written with that usage and response model,
 *     when the stream reported any (and the stream's first line as the
 *     upstream request id, which the builder drops when it is not a
 *     token), is valid against its schema.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_call.h"
#include "fg_record.h"
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


static fg_records_t  *fuzz_records;


/* the record of a streamed call with usage u: valid, or refused */
static void
fuzz_record(int kind, const fg_usage_t *u, const uint8_t *data, size_t size)
{
    fg_call_record_args_t   a;
    fg_schema_report_t      r;
    fg_blobref_t            req;
    fg_error_t              err;
    fg_trace_t              tr;
    json_t                 *rec;
    char                    rid[65];
    const uint8_t          *nl;
    size_t                  n;

    if (fuzz_records == NULL && (fuzz_records = fg_records_new(&err)) == NULL)
    {
        abort();
    }

    nl = memchr(data, '\n', size);
    n = nl != NULL ? (size_t) (nl - data) : size;
    if (n > 64) {
        n = 64;
    }
    memcpy(rid, data, n);
    rid[n] = '\0';

    memset(&tr, 0, sizeof(tr));
    memcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(tr.span_id, "00f067aa0ba902b7", 17);

    memset(&req, 0, sizeof(req));
    req.size_bytes = 12;
    strcpy(req.content_type, "application/json");

    memset(&a, 0, sizeof(a));
    a.kind = FG_CALL_MODEL;
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.policy_decision_sha256 =
        "df38bbc4e863b41f19c6fd3889bffdab8f95c120f62b0fedb88dc5213e77a9af";
    a.provider = fuzz_kinds[kind].provider;
    a.endpoint = fuzz_kinds[kind].endpoint;
    a.model = "gpt-4o";
    a.stream = 1;
    a.usage = u;
    a.upstream_request_id = rid;
    a.request = &req;
    a.response = &req;
    a.status = 200;
    a.outcome = FG_OUTCOME_COMPLETED;
    a.started_sec = 1764000000;
    a.finished_sec = 1764000001;

    rec = fg_call_record(&a, &err);
    if (rec != NULL && fg_record_validate(fuzz_records, rec, &r) != FG_OK) {
        fprintf(stderr, "ModelCallRecord not valid: %s\n",
                r.count ? r.line[0] : "?");
        abort();
    }
    json_decref(rec);
}


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

    /* what a stream can change in the record: its usage and model */
    if (ua.input_tokens != FG_USAGE_UNKNOWN
        || ua.output_tokens != FG_USAGE_UNKNOWN
        || ua.total_tokens != FG_USAGE_UNKNOWN
        || ua.cache_creation_input_tokens != FG_USAGE_UNKNOWN
        || ua.cache_read_input_tokens != FG_USAGE_UNKNOWN
        || ua.response_model[0] != '\0')
    {
        fuzz_record(kind, &ua, data, size);
    }

    return 0;
}

/*
 * fuzz_usage.c -- libFuzzer target for the JSON member scanner behind
 * fg_adapter_usage_text() (the usage of JSON model responses).
 *
 * Besides "does not crash", it checks on every input, against jansson
 * reading the whole text strictly (duplicates refused):
 *   - a found span lies inside the text, and parses to the very value
 *     jansson has for that member;
 *   - a text jansson reads as an object is never called malformed;
 *   - fg_adapter_usage_text() keeps every count unknown or in 0..2^53-1;
 *   - for every provider and endpoint, fg_adapter_usage_text() (the
 *     members only) reads the usage and model fg_adapter_usage_json()
 *     reads from the whole document jansson parsed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fg_adapter.h"
#include "fg_json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fuzz_check_member(const char *text, size_t size, const json_t *doc,
    const char *key)
{
    int             rc;
    size_t          off, n;
    json_t         *v;
    json_error_t    jerr;
    fg_json_span_t  span;

    rc = fg_json_members(text, size, &key, 1, &span);
    if (rc == FG_JSON_FOUND && !span.found) {
        rc = 0;                         /* absent */
    }
    off = span.off;
    n = span.len;

    if (rc == FG_JSON_FOUND && (off > size || n > size - off || n == 0)) {
        abort();
    }

    if (!json_is_object(doc)) {
        return;
    }

    if (rc == FG_JSON_MALFORMED) {
        abort();
    }

    if (rc == FG_JSON_FOUND) {
        v = json_loadb(text + off, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES
                       | JSON_ALLOW_NUL, &jerr);
        if (v == NULL || !json_equal(v, json_object_get(doc, key))) {
            abort();
        }
        json_decref(v);
    }
}


static void
fuzz_check_count(int64_t n)
{
    if (n != -1 && (n < 0 || n > 9007199254740991LL)) {
        abort();
    }
}


static const struct {
    fg_provider_t  provider;
    fg_endpoint_t  endpoint;
} fuzz_kinds[] = {
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_CHAT_COMPLETIONS },
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_RESPONSES },
    { FG_PROVIDER_OPENAI,       FG_ENDPOINT_EMBEDDINGS },
    { FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_CHAT_COMPLETIONS },
    { FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_RESPONSES },
    { FG_PROVIDER_AZURE_OPENAI, FG_ENDPOINT_EMBEDDINGS },
    { FG_PROVIDER_ANTHROPIC,    FG_ENDPOINT_MESSAGES }
};


/* the members-only reading and the whole document's agree */
static void
fuzz_check_kinds(const char *text, size_t size, const json_t *doc)
{
    fg_usage_t  a, b;
    size_t      i;
    int         rc;

    for (i = 0; i < sizeof(fuzz_kinds) / sizeof(fuzz_kinds[0]); i++) {
        rc = fg_adapter_usage_text(fuzz_kinds[i].provider,
                                   fuzz_kinds[i].endpoint, text, size, &a);
        fuzz_check_count(a.input_tokens);
        fuzz_check_count(a.output_tokens);
        fuzz_check_count(a.total_tokens);
        fuzz_check_count(a.cache_creation_input_tokens);
        fuzz_check_count(a.cache_read_input_tokens);

        if (!json_is_object(doc)) {
            continue;
        }

        if (rc != FG_OK
            || fg_adapter_usage_json(fuzz_kinds[i].provider,
                                     fuzz_kinds[i].endpoint, doc, &b)
               != FG_OK
            || a.input_tokens != b.input_tokens
            || a.output_tokens != b.output_tokens
            || a.total_tokens != b.total_tokens
            || a.cache_creation_input_tokens != b.cache_creation_input_tokens
            || a.cache_read_input_tokens != b.cache_read_input_tokens
            || strcmp(a.response_model, b.response_model) != 0)
        {
            fprintf(stderr, "usage: text and document disagree (kind %zu)\n",
                    i);
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t        *strict;
    json_t        *doc;
    fg_usage_t     u;
    json_error_t   jerr;
    const char    *text = (const char *) data;

    doc = json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                     &jerr);

    fuzz_check_member(text, size, doc, "usage");
    fuzz_check_member(text, size, doc, "model");

    (void) fg_adapter_usage_text(FG_PROVIDER_ANTHROPIC, FG_ENDPOINT_MESSAGES,
                                 text, size, &u);
    fuzz_check_count(u.input_tokens);
    fuzz_check_count(u.output_tokens);
    fuzz_check_count(u.total_tokens);

    json_decref(doc);

    /* what the usage reading parses: no NUL in a string */
    strict = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
    fuzz_check_kinds(text, size, strict);
    json_decref(strict);

    return 0;
}

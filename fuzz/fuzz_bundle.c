/*
 * fuzz_bundle.c -- libFuzzer target for the bundle loader: the input is
 * fed as .tar.gz bytes to fg_bundle_load_tar_gz() (verified against a
 * fixed Ed25519 public key, whose private half signed the seeds in
 * fuzz/corpus/bundle/) and to fg_bundle_load_tar_gz_unverified().
 *
 * An input starting with 'T' is a plain tar after that byte: it is
 * gzip'd here first, so the fuzzer can mutate tar headers and file
 * contents directly rather than through the compression.
 *
 * Besides "does not crash or leak", it checks on every input:
 *   - a refusal always carries a message;
 *   - what loads verified also loads unverified, with the same digest;
 *   - what loads unverified, written back with fg_bundle_tar_gz(), loads
 *     again with the same digest and files (the writer round-trips);
 *   - then as the gateway takes a bundle in: policy.json compiled, and
 *     prices.json read and priced (fg_call_cost) for a few usages; a cost
 *     is a whole number of micros in 0..2^53-1.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "fg_bundle.h"
#include "fg_call.h"
#include "fg_policy.h"

#define FUZZ_JWKS \
    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fuzz\"," \
    "\"x\":\"s2Cz8d_KrU3rsTTcDhc0mHfh4xF3-aaINnCWOcz-B9g\"}]}"

static fg_keyset_t  *fuzz_keys;


static void
fuzz_fail(const char *what, const char *msg)
{
    fprintf(stderr, "%s: %s\n", what, msg);
    abort();
}


static void
fuzz_roundtrip(const fg_bundle_t *b, const fg_bundle_limits_t *lim)
{
    fg_bundle_t  *again;
    fg_buffer_t   out;
    fg_error_t    err;
    size_t        i;

    fg_buffer_init(&out, 0);

    if (fg_bundle_tar_gz(b, &out, &err) != FG_OK) {
        fuzz_fail("write", err.msg);
    }

    if (fg_bundle_load_tar_gz_unverified(out.data, out.len, lim, &again,
                                         &err) != FG_OK)
    {
        fuzz_fail("reload", err.msg);
    }

    if (strcmp(fg_bundle_sha256(b), fg_bundle_sha256(again)) != 0
        || fg_bundle_file_count(b) != fg_bundle_file_count(again))
    {
        fuzz_fail("reload", "a different bundle");
    }

    for (i = 0; i < fg_bundle_file_count(b); i++) {
        if (strcmp(fg_bundle_file_at(b, i)->name,
                   fg_bundle_file_at(again, i)->name) != 0)
        {
            fuzz_fail("reload", "names differ");
        }
    }

    fg_bundle_free(again);
    fg_buffer_free(&out);
}


static la_ssize_t
fuzz_write_cb(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void) a;
    return fg_buffer_append(ctx, p, n) == FG_OK ? (la_ssize_t) n : -1;
}


/* p[0..n) gzip'd into out, with libarchive's raw format. */
static void
fuzz_gzip(const uint8_t *p, size_t n, fg_buffer_t *out)
{
    struct archive_entry  *e;
    struct archive        *a;

    a = archive_write_new();
    e = archive_entry_new();
    if (a == NULL || e == NULL
        || archive_write_add_filter_gzip(a) != ARCHIVE_OK
        || archive_write_set_filter_option(a, "gzip", "compression-level",
                                           "1") != ARCHIVE_OK
        || archive_write_set_format_raw(a) != ARCHIVE_OK
        || archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK
        || archive_write_open(a, out, NULL, fuzz_write_cb, NULL)
           != ARCHIVE_OK)
    {
        fuzz_fail("gzip", "cannot set up the writer");
    }

    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t) n);

    if (archive_write_header(a, e) != ARCHIVE_OK
        || (n > 0 && archive_write_data(a, p, n) != (la_ssize_t) n)
        || archive_write_close(a) != ARCHIVE_OK)
    {
        fuzz_fail("gzip", archive_error_string(a));
    }

    archive_entry_free(e);
    archive_write_free(a);
}


/* what the gateway does with a bundle it loaded */
static void
fuzz_take(const fg_bundle_t *b)
{
    const fg_bundle_file_t  *f;
    fg_policy_t             *p;
    json_error_t             jerr;
    fg_error_t               err;
    fg_usage_t               u;
    json_t                  *prices, *cost, *amount;
    int                      i;

    f = fg_bundle_file(b, FG_BUNDLE_POLICY);
    if (f != NULL) {
        p = fg_policy_compile((const char *) f->data, f->len, &err);
        fg_policy_free(p);
    }

    f = fg_bundle_file(b, FG_BUNDLE_PRICES);
    if (f == NULL) {
        return;
    }

    prices = json_loadb((const char *) f->data, f->len,
                        JSON_REJECT_DUPLICATES, &jerr);
    if (prices == NULL) {
        return;
    }

    for (i = 0; i < 3; i++) {
        fg_usage_init(&u);
        u.input_tokens = i == 0 ? 1000 : i == 1 ? FG_USAGE_MAX : 0;
        u.output_tokens = i == 0 ? 200 : i == 1 ? FG_USAGE_MAX : 0;
        u.cache_read_input_tokens = i == 1 ? FG_USAGE_MAX : 5;
        u.cache_creation_input_tokens = 7;
        if (i == 2) {
            strcpy(u.response_model, "gpt-4o-2024-08-06");
        }

        cost = fg_call_cost(prices, fg_bundle_revision(b), "gpt-4o", &u);
        if (cost != NULL) {
            amount = json_object_get(cost, "amount_micros");
            if (!json_is_integer(amount) || json_integer_value(amount) < 0
                || json_integer_value(amount) > FG_USAGE_MAX)
            {
                fuzz_fail("cost", "amount out of bounds");
            }
            json_decref(cost);
        }
    }

    json_decref(prices);
}


static void
fuzz_one(const uint8_t *data, size_t size)
{
    fg_bundle_limits_t   lim;
    fg_bundle_t         *b, *u;
    fg_error_t           err;
    int                  rc, urc;

    if (fuzz_keys == NULL) {
        fuzz_keys = fg_keyset_from_jwks(FUZZ_JWKS, strlen(FUZZ_JWKS), &err);
        if (fuzz_keys == NULL) {
            fuzz_fail("keys", err.msg);
        }
    }

    memset(&lim, 0, sizeof(lim));
    lim.max_files = 32;
    lim.max_file_size = 256 * 1024;
    lim.max_total = 1024 * 1024;

    memset(&err, 0, sizeof(err));
    rc = fg_bundle_load_tar_gz(data, size, fuzz_keys, &lim, &b, &err);
    if (rc != FG_OK && (err.msg[0] == '\0' || b != NULL)) {
        fuzz_fail("verified", "a refusal without a message");
    }

    memset(&err, 0, sizeof(err));
    urc = fg_bundle_load_tar_gz_unverified(data, size, &lim, &u, &err);
    if (urc != FG_OK && (err.msg[0] == '\0' || u != NULL)) {
        fuzz_fail("unverified", "a refusal without a message");
    }

    if (rc == FG_OK) {
        if (urc != FG_OK) {
            fuzz_fail("verified but not unverified", err.msg);
        }
        if (!fg_bundle_verified(b)
            || strcmp(fg_bundle_sha256(b), fg_bundle_sha256(u)) != 0)
        {
            fuzz_fail("verified", "digests differ");
        }
        fg_bundle_free(b);
    }

    if (urc == FG_OK) {
        fuzz_roundtrip(u, &lim);
        fuzz_take(u);
        fg_bundle_free(u);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_buffer_t  gz;

    if (size > 0 && data[0] == 'T') {
        fg_buffer_init(&gz, 0);
        fuzz_gzip(data + 1, size - 1, &gz);
        fuzz_one(gz.data, gz.len);
        fg_buffer_free(&gz);
        return 0;
    }

    fuzz_one(data, size);

    return 0;
}

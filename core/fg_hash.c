/*
 * fg_hash.c -- SHA-256 through OpenSSL's EVP interface, lowercase hex,
 * hashing sinks, BlobRefs and envelope hashes.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fg_hash.h"

struct fg_sha256_s {
    EVP_MD_CTX  *ctx;
    EVP_MD      *md;        /* fetched once: no per-hash algorithm lookup */
};


fg_sha256_t *
fg_sha256_new(void)
{
    fg_sha256_t  *h;

    h = calloc(1, sizeof(fg_sha256_t));
    if (h == NULL) {
        return NULL;
    }

    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();

    if (h->md == NULL || h->ctx == NULL
        || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1)
    {
        fg_sha256_free(h);
        return NULL;
    }

    return h;
}


void
fg_sha256_free(fg_sha256_t *h)
{
    if (h == NULL) {
        return;
    }

    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}


int
fg_sha256_init(fg_sha256_t *h)
{
    return EVP_DigestInit_ex(h->ctx, h->md, NULL) == 1 ? FG_OK
                                                       : FG_ERR_CRYPTO;
}


int
fg_sha256_update(fg_sha256_t *h, const void *p, size_t n)
{
    return EVP_DigestUpdate(h->ctx, p, n) == 1 ? FG_OK : FG_ERR_CRYPTO;
}


int
fg_sha256_final(fg_sha256_t *h, unsigned char md[FG_SHA256_LEN])
{
    unsigned int  n = 0;

    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != FG_SHA256_LEN) {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


int
fg_sha256(const void *p, size_t n, unsigned char md[FG_SHA256_LEN])
{
    unsigned int  len = 0;

    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1
        || len != FG_SHA256_LEN)
    {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


void
fg_hex_encode(const unsigned char *p, size_t n, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


void
fg_hex_sha256(const unsigned char md[FG_SHA256_LEN],
    char hex[FG_SHA256_HEX_LEN + 1])
{
    fg_hex_encode(md, FG_SHA256_LEN, hex);
}


/* The value of a lowercase hex digit, or -1: one look-up a character. */
static const signed char  fg_hex_value[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6,
    ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16
};                                      /* value + 1; 0 is "not a digit" */


int
fg_sha256_hex_valid(const char *s, size_t n)
{
    size_t  i;
    int     all;

    if (s == NULL || n != FG_SHA256_HEX_LEN) {
        return 0;
    }

    /* no early exit: the table is hot and 64 look-ups are cheap */
    all = 1;
    for (i = 0; i < FG_SHA256_HEX_LEN; i++) {
        all &= fg_hex_value[(unsigned char) s[i]] != 0;
    }

    return all;
}


int
fg_unhex_sha256(const char *hex, size_t len, unsigned char md[FG_SHA256_LEN])
{
    int  i, hi, lo, bad;

    if (hex == NULL || len != FG_SHA256_HEX_LEN) {
        return FG_ERR_SYNTAX;
    }

    bad = 0;
    for (i = 0; i < FG_SHA256_LEN; i++) {
        hi = fg_hex_value[(unsigned char) hex[2 * i]];
        lo = fg_hex_value[(unsigned char) hex[2 * i + 1]];
        bad |= (hi == 0) | (lo == 0);
        md[i] = (unsigned char) ((((unsigned) hi - 1) & 0x0f) << 4
                                 | (((unsigned) lo - 1) & 0x0f));
    }

    return bad ? FG_ERR_SYNTAX : FG_OK;
}


static int
fg_sink_sha256_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    return fg_sha256_update(sink->ctx, p, n);
}


void
fg_sink_to_sha256(fg_sink_t *sink, fg_sha256_t *h, unsigned char *stage,
    size_t stage_len)
{
    sink->buf = stage;
    sink->len = 0;
    sink->cap = stage_len;
    sink->total = 0;
    sink->flush = fg_sink_sha256_flush;
    sink->ctx = h;
}


/* ------------------------------------------------------------- BlobRef */

static int
fg_blobref_set_type(fg_blobref_t *ref, const char *content_type,
    fg_error_t *err)
{
    size_t  n = strlen(content_type);

    if (n == 0 || n >= FG_CONTENT_TYPE_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "content type of %zu bytes (1..%d allowed)",
                            n, FG_CONTENT_TYPE_MAX - 1);
    }

    memcpy(ref->content_type, content_type, n + 1);

    return FG_OK;
}


int
fg_blobref_raw(const void *p, size_t n, const char *content_type,
    fg_blobref_t *ref, fg_error_t *err)
{
    if (fg_blobref_set_type(ref, content_type, err) != FG_OK) {
        return FG_ERR_LIMIT;
    }

    if (fg_sha256(p, n, ref->sha256) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    ref->size_bytes = n;

    return FG_OK;
}


int
fg_blobref_json(fg_jcs_t *jcs, fg_sha256_t *h, const void *p, size_t n,
    const char *content_type, fg_blobref_t *ref, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;
    int            rc;

    if (fg_blobref_set_type(ref, content_type, err) != FG_OK) {
        return FG_ERR_LIMIT;
    }

    if (fg_sha256_init(h) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    fg_sink_to_sha256(&sink, h, stage, sizeof(stage));

    rc = fg_jcs_canonicalize(jcs, p, n, &sink, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (fg_sha256_final(h, ref->sha256) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    ref->size_bytes = sink.total;

    return FG_OK;
}


static int
fg_hash_json_value(fg_sha256_t *h, const json_t *value,
    unsigned char md[FG_SHA256_LEN], uint64_t *size, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;
    int            rc;

    if (fg_sha256_init(h) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    fg_sink_to_sha256(&sink, h, stage, sizeof(stage));

    rc = fg_jcs_canonicalize_json(value, 0, &sink, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (fg_sha256_final(h, md) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    if (size != NULL) {
        *size = sink.total;
    }

    return FG_OK;
}


int
fg_blobref_json_value(fg_sha256_t *h, const json_t *value,
    const char *content_type, fg_blobref_t *ref, fg_error_t *err)
{
    if (fg_blobref_set_type(ref, content_type, err) != FG_OK) {
        return FG_ERR_LIMIT;
    }

    return fg_hash_json_value(h, value, ref->sha256, &ref->size_bytes, err);
}


json_t *
fg_blobref_to_json(const fg_blobref_t *ref)
{
    char     hex[FG_SHA256_HEX_LEN + 1];
    json_t  *o;

    fg_hex_sha256(ref->sha256, hex);

    /* built directly: json_pack parses its format string on every call */
    o = json_object();

    if (o == NULL
        || json_object_set_new(o, "sha256", json_string(hex)) != 0
        || json_object_set_new(o, "size_bytes",
                               json_integer((json_int_t) ref->size_bytes))
           != 0
        || json_object_set_new(o, "content_type",
                               json_string(ref->content_type)) != 0)
    {
        json_decref(o);
        return NULL;
    }

    return o;
}


int
fg_envelope_hash(fg_sha256_t *h, const json_t *record,
    unsigned char md[FG_SHA256_LEN], fg_error_t *err)
{
    return fg_hash_json_value(h, record, md, NULL, err);
}

/*
 * fg_hash.h -- SHA-256 (OpenSSL EVP), lowercase hex, and BlobRef: the
 * (sha256, size_bytes, content_type) triple by which records reference
 * content they do not hold.
 */

#ifndef FG_HASH_H
#define FG_HASH_H

#include <jansson.h>

#include "fg_core.h"
#include "fg_jcs.h"

#define FG_SHA256_LEN       32
#define FG_SHA256_HEX_LEN   64
#define FG_CONTENT_TYPE_MAX 128

/* An incremental SHA-256; reusable after fg_sha256_final(). */
typedef struct fg_sha256_s  fg_sha256_t;

fg_sha256_t *fg_sha256_new(void);
void fg_sha256_free(fg_sha256_t *h);
int  fg_sha256_init(fg_sha256_t *h);
int  fg_sha256_update(fg_sha256_t *h, const void *p, size_t n);
int  fg_sha256_final(fg_sha256_t *h, unsigned char md[FG_SHA256_LEN]);

/* One-shot SHA-256 of p[0..n).  Returns FG_OK or FG_ERR_CRYPTO. */
int fg_sha256(const void *p, size_t n, unsigned char md[FG_SHA256_LEN]);

/* Lowercase hex of p[0..n) into out (2 * n + 1 bytes, NUL-ended). */
void fg_hex_encode(const unsigned char *p, size_t n, char *out);

/* 1 if s[0..n) is exactly 64 lowercase hex digits (a SHA-256 as records
 * write it), else 0. */
int fg_sha256_hex_valid(const char *s, size_t n);

/* Lowercase hex of md into hex (FG_SHA256_HEX_LEN + 1 bytes, NUL-ended). */
void fg_hex_sha256(const unsigned char md[FG_SHA256_LEN],
    char hex[FG_SHA256_HEX_LEN + 1]);

/* Parse 64 lowercase hex digits.  Returns FG_OK or FG_ERR_SYNTAX. */
int fg_unhex_sha256(const char *hex, size_t len,
    unsigned char md[FG_SHA256_LEN]);

/* A sink that feeds h; stage is its staging buffer. */
void fg_sink_to_sha256(fg_sink_t *sink, fg_sha256_t *h, unsigned char *stage,
    size_t stage_len);


/* ------------------------------------------------------------- BlobRef */

typedef struct {
    unsigned char  sha256[FG_SHA256_LEN];
    uint64_t       size_bytes;      /* length of the bytes hashed */
    char           content_type[FG_CONTENT_TYPE_MAX];
} fg_blobref_t;

/* BlobRef of raw bytes: sha256 and size of p[0..n) as they are. */
int fg_blobref_raw(const void *p, size_t n, const char *content_type,
    fg_blobref_t *ref, fg_error_t *err);

/*
 * BlobRef of JSON text: sha256 and size of its canonical (JCS) bytes, so
 * the same document hashes the same whatever its whitespace or key order.
 * Fails, with err saying where, when the text is not canonicalizable JSON.
 */
int fg_blobref_json(fg_jcs_t *jcs, fg_sha256_t *h, const void *p, size_t n,
    const char *content_type, fg_blobref_t *ref, fg_error_t *err);

/* BlobRef of a jansson value (its canonical bytes). */
int fg_blobref_json_value(fg_sha256_t *h, const json_t *value,
    const char *content_type, fg_blobref_t *ref, fg_error_t *err);

/* The BlobRef as the JSON object records carry; NULL when out of memory. */
json_t *fg_blobref_to_json(const fg_blobref_t *ref);

/* envelope_hash = sha256(JCS(record)). */
int fg_envelope_hash(fg_sha256_t *h, const json_t *record,
    unsigned char md[FG_SHA256_LEN], fg_error_t *err);

#endif /* FG_HASH_H */

/*
 * fg_jose.h -- JSON Web Keys and compact JWS/JWT, with OpenSSL: the one
 * implementation behind caller tokens (AuthContext), bundle signatures
 * (.signatures.json) and approval tokens.
 *
 * Algorithms: EdDSA (Ed25519), ES256 (P-256, JOSE r||s signatures),
 * RS256 (RSA >= 2048 bits), HS256 (oct keys >= 32 bytes).  Refused, each
 * with a clear message: alg "none" or any other alg, an alg that does not
 * fit the key's type (RS256 against an oct key, HS256 against an RSA key),
 * an unknown kid (or no kid when the set holds several keys that fit), a
 * bad signature, malformed base64url (padding, whitespace, bad alphabet),
 * a header or payload that is not a JSON object, duplicate JSON keys,
 * tokens longer than the bound, exp in the past or nbf or iat in the
 * future beyond the leeway, crit headers.
 *
 * Header members jku, x5u, jwk and x5c are ignored: keys come only from
 * the set the caller loaded.
 */

#ifndef FG_JOSE_H
#define FG_JOSE_H

#include <time.h>

#include <jansson.h>
#include <openssl/types.h>

#include "fg_core.h"

typedef enum {
    FG_JWS_NONE = 0,            /* not a supported algorithm */
    FG_JWS_EDDSA,
    FG_JWS_ES256,
    FG_JWS_RS256,
    FG_JWS_HS256
} fg_jws_alg_t;

#define FG_JWS_MAX_TOKEN   16384    /* bytes of a compact JWS */
#define FG_JWK_MAX_KEYS    64       /* keys in one set */
#define FG_JWK_KID_MAX     128      /* bytes of a kid */
#define FG_JWKS_MAX_TEXT   (1024 * 1024)   /* bytes of a JWKS, PEM or file */

/* One key (public, private, or secret), owned by its set. */
typedef struct fg_jwk_s     fg_jwk_t;

/* A set of keys, read-only once loaded: shareable between threads. */
typedef struct fg_keyset_s  fg_keyset_t;

/*
 * Load a JWKS document ({"keys":[...]}, 1 to FG_JWK_MAX_KEYS keys) or a
 * single JWK, at most FG_JWKS_MAX_TEXT bytes, duplicate JSON keys
 * refused.  Keys of types OKP/Ed25519, EC/P-256, RSA (2048 to 8192 bits)
 * and oct (32 to 1024 bytes); each kty fits exactly one alg, and a key's
 * "alg", when present, must be that one; "use" other than "sig" and
 * unknown kty are refused.  Private members (d, ...) are loaded when
 * present and must match the public ones (a private RSA key needs all of
 * d, p, q, dp, dq, qi).  Two keys with the same kid are refused: a kid
 * always names one key.  Returns NULL with err naming the key (by index
 * and kid, never its material) and the reason.
 */
fg_keyset_t *fg_keyset_from_jwks(const char *text, size_t len,
    fg_error_t *err);

/*
 * Load one PEM key (PKCS#8 or traditional private key, or SPKI public
 * key; Ed25519, P-256, RSA 2048 to 8192 bits) with kid (may be NULL: no
 * kid).  Encrypted PEM is refused (no pass phrase is ever asked for).
 * Returns NULL with err set.
 */
fg_keyset_t *fg_keyset_from_pem(const char *pem, size_t len, const char *kid,
    fg_error_t *err);

/*
 * Read a file of either form (JWKS if its first non-space byte is '{',
 * else PEM), at most FG_JWKS_MAX_TEXT bytes.  Returns NULL with err set.
 */
fg_keyset_t *fg_keyset_load_file(const char *path, const char *pem_kid,
    fg_error_t *err);

void fg_keyset_free(fg_keyset_t *set);

/* Keys of set; get() returns NULL past the end, find() for an unknown kid. */
size_t fg_keyset_count(const fg_keyset_t *set);
const fg_jwk_t *fg_keyset_get(const fg_keyset_t *set, size_t i);
const fg_jwk_t *fg_keyset_find(const fg_keyset_t *set, const char *kid);

const char *fg_jwk_kid(const fg_jwk_t *key);      /* "" when it has none */
fg_jws_alg_t fg_jwk_alg(const fg_jwk_t *key);     /* the alg the key fits */
int fg_jwk_is_private(const fg_jwk_t *key);       /* can sign */

/*
 * The key's OpenSSL key, borrowed (owned by its set: never free it), for
 * signature formats other than JWS (signed checkpoints); NULL for an oct
 * key or NULL key.
 */
EVP_PKEY *fg_jwk_pkey(const fg_jwk_t *key);

/*
 * The public JWK of key as JSON: kty, crv, x, y / n, e (RFC 7518, 8037),
 * kid (when the key has one), alg and "use":"sig"; never private members.
 * Returns a new reference, or NULL for an oct key (a secret has no public
 * form) or when out of memory.
 */
json_t *fg_jwk_public_json(const fg_jwk_t *key);

const char *fg_jws_alg_name(fg_jws_alg_t alg);    /* "EdDSA", ... */
fg_jws_alg_t fg_jws_alg_from_name(const char *name);


/* ------------------------------------------------------------ verify */

typedef struct {
    time_t    now;           /* the time exp/nbf are checked against */
    unsigned  leeway;        /* seconds of clock skew allowed */
    unsigned  require_exp;   /* refuse a token without exp */
    size_t    max_len;       /* 0: FG_JWS_MAX_TOKEN */
    const char *typ;         /* when not NULL, header typ must equal it */
} fg_jws_verify_opts_t;

typedef struct {
    fg_jws_alg_t   alg;
    const fg_jwk_t *key;     /* the key that verified it */
    json_t        *header;   /* owned by the caller when returned */
    json_t        *claims;   /* owned by the caller when returned */
} fg_jws_t;

/*
 * Verify a compact JWS (three base64url parts) against the keys of set;
 * on success fill out (the caller json_decref()s header and claims, or
 * calls fg_jws_release()) and return FG_OK.  Otherwise out is zeroed and
 * the return is FG_ERR_INVALID (refused: err says why, without quoting
 * the token), FG_ERR_LIMIT (too long), FG_ERR_SYNTAX (malformed) or
 * FG_ERR_CRYPTO.
 *
 * The key: the one named by the header's kid (whose type must fit alg),
 * or without kid the only key of the set that fits alg.  Header and
 * payload must be JSON objects without duplicate keys.  Claims
 * exp/nbf/iat, when present, must be integers; refused when
 * exp <= now - leeway, nbf > now + leeway or iat > now + leeway.  The
 * signature is checked before the payload is parsed.  opts NULL: now is
 * time(NULL), no leeway, exp not required, typ not checked.  typ is
 * compared without regard to case (RFC 7515 4.1.9).
 */
int fg_jws_verify(const fg_keyset_t *set, const char *token, size_t len,
    const fg_jws_verify_opts_t *opts, fg_jws_t *out, fg_error_t *err);

/* Release what fg_jws_verify() returned in out (safe after a failure). */
void fg_jws_release(fg_jws_t *jws);


/* -------------------------------------------------------------- sign */

/*
 * Sign claims with key (which must be private or oct) as a compact JWS
 * with header {"alg":..,"kid":..} plus the members of extra_header (may
 * be NULL, e.g. {"typ":"JWT"}; it may not hold alg, kid or crit).  The
 * key's kid is left out when it has none.  Header and payload are the JCS
 * (RFC 8785) forms, so tokens are deterministic for EdDSA, RS256 and
 * HS256.  Appends the token to out (nothing is appended on error).
 * Returns FG_OK, or FG_ERR_INVALID (public key, bad arguments),
 * FG_ERR_CRYPTO, FG_ERR_NOMEM with err set.
 */
int fg_jws_sign(const fg_jwk_t *key, const json_t *extra_header,
    const json_t *claims, fg_buffer_t *out, fg_error_t *err);


/* ------------------------------------------------------------ keygen */

/*
 * Make a new key pair (EdDSA, ES256, RS256 with 3072 bits) with kid
 * (required).  Appends the private key as PEM (PKCS#8) to pem (may be
 * NULL) and returns the set holding it.  HS256 is refused: write an oct
 * JWK.  Returns NULL with err set.
 */
fg_keyset_t *fg_keyset_generate(fg_jws_alg_t alg, const char *kid,
    fg_buffer_t *pem, fg_error_t *err);


/* ---------------------------------------------------------- base64url */

/*
 * base64url without padding (RFC 7515 section 2), via OpenSSL; appends to
 * out.  Returns FG_OK, FG_ERR_LIMIT or FG_ERR_NOMEM.
 */
int fg_b64url_encode(const unsigned char *in, size_t len, fg_buffer_t *out);

/*
 * Strict decode, appended to out: only the url alphabet, no padding, no
 * whitespace, and zero unused trailing bits (one encoding per byte
 * string).  Returns FG_OK, FG_ERR_SYNTAX, FG_ERR_LIMIT or FG_ERR_NOMEM.
 */
int fg_b64url_decode(const char *in, size_t len, fg_buffer_t *out);

#endif /* FG_JOSE_H */

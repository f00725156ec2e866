/*
 * fg_jose.c -- JSON Web Keys (RFC 7517, 7518, 8037) and compact JWS
 * (RFC 7515) with JWT time claims (RFC 7519), on OpenSSL 3 EVP and
 * jansson.
 *
 * Sections: base64url; key sets (from JWK/JWKS, from PEM, accessors,
 * public JWK); signing and verifying primitives per algorithm; compact
 * JWS verify; sign; keygen.  A key set is built once and never changed,
 * so it can be shared between threads.  Nothing here keeps global state.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fg_jcs.h"
#include "fg_jose.h"

#define FG_JWK_RSA_MIN_BITS   2048
#define FG_JWK_RSA_MAX_BITS   8192
#define FG_JWK_RSA_KEYGEN     3072
#define FG_JWK_OCT_MIN        32
#define FG_JWK_OCT_MAX        1024
#define FG_JWK_MEMBER_MAX     2048      /* decoded bytes of one member */
#define FG_JWS_SIG_MAX        1024      /* decoded bytes of a signature */
#define FG_JWT_TIME_MAX       (1LL << 62)

struct fg_jwk_s {
    char           kid[FG_JWK_KID_MAX + 1];   /* "" when the key has none */
    fg_jws_alg_t   alg;
    int            is_private;
    EVP_PKEY      *pkey;                      /* NULL for oct keys */
    unsigned char *secret;                    /* oct keys only */
    size_t         secret_len;
};

struct fg_keyset_s {
    size_t     n;
    fg_jwk_t   keys[FG_JWK_MAX_KEYS];
};


/* ------------------------------------------------------------ base64url */

int
fg_b64url_encode(const unsigned char *in, size_t len, fg_buffer_t *out)
{
    unsigned char  *tmp;
    size_t          cap, i, n;
    int             w, rc;

    if (len > (size_t) INT_MAX / 2) {
        return FG_ERR_LIMIT;
    }

    cap = 4 * ((len + 2) / 3) + 1;
    tmp = malloc(cap);
    if (tmp == NULL) {
        return FG_ERR_NOMEM;
    }

    w = EVP_EncodeBlock(tmp, in, (int) len);
    n = (w < 0) ? 0 : (size_t) w;

    while (n > 0 && tmp[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        if (tmp[i] == '+') {
            tmp[i] = '-';
        } else if (tmp[i] == '/') {
            tmp[i] = '_';
        }
    }

    rc = fg_buffer_append(out, tmp, n);
    free(tmp);
    return rc;
}


static int
fg_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}


/*
 * The text must use only the url alphabet, have no padding and (so that
 * each byte string has exactly one encoding) zero unused trailing bits.
 */
static int
fg_b64url_check(const char *in, size_t len)
{
    size_t  i;
    int     last;

    if (len % 4 == 1) {
        return FG_ERR_SYNTAX;
    }

    for (i = 0; i < len; i++) {
        if (fg_b64url_value((unsigned char) in[i]) < 0) {
            return FG_ERR_SYNTAX;
        }
    }

    if (len == 0) {
        return FG_OK;
    }

    last = fg_b64url_value((unsigned char) in[len - 1]);

    if ((len % 4 == 2 && (last & 0x0f) != 0)
        || (len % 4 == 3 && (last & 0x03) != 0))
    {
        return FG_ERR_SYNTAX;
    }

    return FG_OK;
}


int
fg_b64url_decode(const char *in, size_t len, fg_buffer_t *out)
{
    unsigned char  *std, *raw;
    size_t          i, pad, slen;
    int             n, rc;

    if (len > (size_t) INT_MAX / 2) {
        return FG_ERR_LIMIT;
    }

    rc = fg_b64url_check(in, len);
    if (rc != FG_OK) {
        return rc;
    }

    pad = (4 - len % 4) % 4;
    slen = len + pad;

    std = malloc(slen + 1);
    raw = malloc(slen / 4 * 3 + 1);
    if (std == NULL || raw == NULL) {
        free(std);
        free(raw);
        return FG_ERR_NOMEM;
    }

    for (i = 0; i < len; i++) {
        std[i] = (in[i] == '-') ? '+' : (in[i] == '_') ? '/' : in[i];
    }
    memset(std + len, '=', pad);
    std[slen] = '\0';

    n = EVP_DecodeBlock(raw, std, (int) slen);

    if (n < 0 || (size_t) n != slen / 4 * 3) {
        rc = FG_ERR_SYNTAX;
    } else {
        rc = fg_buffer_append(out, raw, slen / 4 * 3 - pad);
    }

    free(std);
    free(raw);
    return rc;
}


/* -------------------------------------------------------- names, access */

const char *
fg_jws_alg_name(fg_jws_alg_t alg)
{
    switch (alg) {
    case FG_JWS_EDDSA:
        return "EdDSA";
    case FG_JWS_ES256:
        return "ES256";
    case FG_JWS_RS256:
        return "RS256";
    case FG_JWS_HS256:
        return "HS256";
    default:
        return "none";
    }
}


fg_jws_alg_t
fg_jws_alg_from_name(const char *name)
{
    if (name == NULL) {
        return FG_JWS_NONE;
    }
    if (strcmp(name, "EdDSA") == 0) {
        return FG_JWS_EDDSA;
    }
    if (strcmp(name, "ES256") == 0) {
        return FG_JWS_ES256;
    }
    if (strcmp(name, "RS256") == 0) {
        return FG_JWS_RS256;
    }
    if (strcmp(name, "HS256") == 0) {
        return FG_JWS_HS256;
    }
    return FG_JWS_NONE;
}


size_t
fg_keyset_count(const fg_keyset_t *set)
{
    return (set == NULL) ? 0 : set->n;
}


const fg_jwk_t *
fg_keyset_get(const fg_keyset_t *set, size_t i)
{
    if (set == NULL || i >= set->n) {
        return NULL;
    }
    return &set->keys[i];
}


const fg_jwk_t *
fg_keyset_find(const fg_keyset_t *set, const char *kid)
{
    size_t  i;

    if (set == NULL || kid == NULL || kid[0] == '\0') {
        return NULL;
    }

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->keys[i].kid, kid) == 0) {
            return &set->keys[i];
        }
    }

    return NULL;
}


const char *
fg_jwk_kid(const fg_jwk_t *key)
{
    return (key == NULL) ? "" : key->kid;
}


fg_jws_alg_t
fg_jwk_alg(const fg_jwk_t *key)
{
    return (key == NULL) ? FG_JWS_NONE : key->alg;
}


int
fg_jwk_is_private(const fg_jwk_t *key)
{
    return key != NULL && key->is_private;
}


EVP_PKEY *
fg_jwk_pkey(const fg_jwk_t *key)
{
    return (key == NULL) ? NULL : key->pkey;
}


static void
fg_jwk_clear(fg_jwk_t *key)
{
    EVP_PKEY_free(key->pkey);
    if (key->secret != NULL) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }
    memset(key, 0, sizeof(fg_jwk_t));
}


void
fg_keyset_free(fg_keyset_t *set)
{
    size_t  i;

    if (set == NULL) {
        return;
    }

    for (i = 0; i < set->n; i++) {
        fg_jwk_clear(&set->keys[i]);
    }

    free(set);
}


/* ------------------------------------------------------ JWK -> EVP_PKEY */

/*
 * A key is named in errors by its index and, when it is printable, its
 * kid: never by its material.
 */
typedef struct {
    size_t       index;
    const char  *kid;
    fg_error_t  *err;
} fg_jwk_where_t;


static int
fg_jwk_fail(const fg_jwk_where_t *w, int code, const char *why)
{
    const char  *p;
    int          printable = (w->kid != NULL && w->kid[0] != '\0');

    for (p = w->kid; printable && *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') {
            printable = 0;
        }
    }

    if (printable) {
        return fg_error_set(w->err, code, FG_NO_OFFSET,
                            "JWK %zu (kid \"%.64s\"): %s", w->index, w->kid,
                            why);
    }

    return fg_error_set(w->err, code, FG_NO_OFFSET, "JWK %zu: %s", w->index,
                        why);
}


/* Decode member name of jwk into b; it must hold min..max bytes. */
static int
fg_jwk_member(const json_t *jwk, const char *name, size_t min, size_t max,
    fg_buffer_t *b, const fg_jwk_where_t *w)
{
    const json_t  *v;
    char           why[96];

    fg_buffer_init(b, FG_JWK_MEMBER_MAX);

    v = json_object_get(jwk, name);
    if (!json_is_string(v)) {
        snprintf(why, sizeof(why), "member \"%s\" is missing or not a string",
                 name);
        return fg_jwk_fail(w, FG_ERR_INVALID, why);
    }

    if (json_string_length(v) > FG_JWK_MEMBER_MAX * 4 / 3 + 4
        || fg_b64url_decode(json_string_value(v), json_string_length(v), b)
           != FG_OK)
    {
        fg_buffer_free(b);
        snprintf(why, sizeof(why), "member \"%s\" is not valid base64url",
                 name);
        return fg_jwk_fail(w, FG_ERR_SYNTAX, why);
    }

    if (b->len < min || b->len > max) {
        fg_buffer_free(b);
        snprintf(why, sizeof(why), "member \"%s\" has the wrong length",
                 name);
        return fg_jwk_fail(w, FG_ERR_INVALID, why);
    }

    return FG_OK;
}


/* Build a key of type from params (public or key pair). */
static EVP_PKEY *
fg_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int selection)
{
    EVP_PKEY_CTX  *ctx;
    OSSL_PARAM    *params;
    EVP_PKEY      *pkey = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, selection, params) != 1)
    {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}


/* Public (and, for a pair, pairwise) consistency checks of OpenSSL. */
static int
fg_pkey_check(EVP_PKEY *pkey, int is_private)
{
    EVP_PKEY_CTX  *ctx;
    int            ok;

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL) {
        return 0;
    }

    ok = is_private ? EVP_PKEY_pairwise_check(ctx)
                    : EVP_PKEY_public_check(ctx);

    EVP_PKEY_CTX_free(ctx);
    return ok == 1;
}


static int
fg_jwk_load_okp(fg_jwk_t *key, const json_t *jwk, const fg_jwk_where_t *w)
{
    OSSL_PARAM_BLD  *bld;
    fg_buffer_t      x, d;
    unsigned char    pub[32];
    size_t           publen = 0;
    int              rc;

    if (!json_is_string(json_object_get(jwk, "crv"))
        || strcmp(json_string_value(json_object_get(jwk, "crv")), "Ed25519")
           != 0)
    {
        return fg_jwk_fail(w, FG_ERR_INVALID,
                           "OKP key whose crv is not \"Ed25519\"");
    }

    rc = fg_jwk_member(jwk, "x", 32, 32, &x, w);
    if (rc != FG_OK) {
        return rc;
    }

    fg_buffer_init(&d, 0);
    key->is_private = (json_object_get(jwk, "d") != NULL);
    if (key->is_private) {
        rc = fg_jwk_member(jwk, "d", 32, 32, &d, w);
        if (rc != FG_OK) {
            fg_buffer_free(&x);
            return rc;
        }
    }

    /* a private key is built from d alone; x must then be its public key */
    bld = OSSL_PARAM_BLD_new();
    if (bld != NULL
        && (key->is_private
            ? OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PRIV_KEY,
                                               d.data, d.len)
            : OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                               x.data, x.len)) == 1)
    {
        key->pkey = fg_pkey_fromdata("ED25519", bld,
                                     key->is_private ? EVP_PKEY_KEYPAIR
                                                     : EVP_PKEY_PUBLIC_KEY);
    }
    OSSL_PARAM_BLD_free(bld);

    if (d.data != NULL) {
        OPENSSL_cleanse(d.data, d.len);
    }
    fg_buffer_free(&d);

    rc = FG_OK;
    if (key->pkey == NULL) {
        rc = fg_jwk_fail(w, FG_ERR_INVALID, "not a usable Ed25519 key");

    } else if (key->is_private
               && (EVP_PKEY_get_octet_string_param(key->pkey,
                        OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen)
                   != 1
                   || publen != 32
                   || CRYPTO_memcmp(pub, x.data, 32) != 0))
    {
        rc = fg_jwk_fail(w, FG_ERR_INVALID, "x is not the public key of d");
    }

    fg_buffer_free(&x);
    key->alg = FG_JWS_EDDSA;
    return rc;
}


static int
fg_jwk_load_ec(fg_jwk_t *key, const json_t *jwk, const fg_jwk_where_t *w)
{
    OSSL_PARAM_BLD  *bld;
    fg_buffer_t      x, y, d;
    unsigned char    point[65];
    BIGNUM          *bn = NULL;
    int              ok, rc;

    if (!json_is_string(json_object_get(jwk, "crv"))
        || strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256")
           != 0)
    {
        return fg_jwk_fail(w, FG_ERR_INVALID,
                           "EC key whose crv is not \"P-256\"");
    }

    rc = fg_jwk_member(jwk, "x", 32, 32, &x, w);
    if (rc != FG_OK) {
        return rc;
    }
    rc = fg_jwk_member(jwk, "y", 32, 32, &y, w);
    if (rc != FG_OK) {
        fg_buffer_free(&x);
        return rc;
    }

    point[0] = 0x04;
    memcpy(point + 1, x.data, 32);
    memcpy(point + 33, y.data, 32);
    fg_buffer_free(&x);
    fg_buffer_free(&y);

    fg_buffer_init(&d, 0);
    key->is_private = (json_object_get(jwk, "d") != NULL);
    if (key->is_private) {
        rc = fg_jwk_member(jwk, "d", 32, 32, &d, w);
        if (rc != FG_OK) {
            return rc;
        }
        bn = BN_secure_new();
        if (bn == NULL || BN_bin2bn(d.data, (int) d.len, bn) == NULL) {
            BN_clear_free(bn);
            bn = NULL;
        }
        OPENSSL_cleanse(d.data, d.len);
        fg_buffer_free(&d);
    }

    bld = OSSL_PARAM_BLD_new();
    ok = bld != NULL
         && (!key->is_private || bn != NULL)
         && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            "P-256", 0) == 1
         && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             point, sizeof(point)) == 1
         && (!key->is_private
             || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn)
                == 1);
    if (ok) {
        key->pkey = fg_pkey_fromdata("EC", bld,
                                     key->is_private ? EVP_PKEY_KEYPAIR
                                                     : EVP_PKEY_PUBLIC_KEY);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(bn);

    key->alg = FG_JWS_ES256;

    if (key->pkey == NULL || !fg_pkey_check(key->pkey, key->is_private)) {
        return fg_jwk_fail(w, FG_ERR_INVALID,
                           "not a valid P-256 key (point or key pair)");
    }

    return FG_OK;
}


static const struct {
    const char  *member;
    const char  *param;
} fg_rsa_private_members[] = {
    { "d",  OSSL_PKEY_PARAM_RSA_D },
    { "p",  OSSL_PKEY_PARAM_RSA_FACTOR1 },
    { "q",  OSSL_PKEY_PARAM_RSA_FACTOR2 },
    { "dp", OSSL_PKEY_PARAM_RSA_EXPONENT1 },
    { "dq", OSSL_PKEY_PARAM_RSA_EXPONENT2 },
    { "qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1 }
};

#define FG_RSA_NPRIV  (sizeof(fg_rsa_private_members) \
                       / sizeof(fg_rsa_private_members[0]))


/* Decode member into a new BIGNUM pushed to bld (kept in bns[]). */
static int
fg_jwk_push_bn(OSSL_PARAM_BLD *bld, const json_t *jwk, const char *member,
    const char *param, size_t max, BIGNUM **bn, const fg_jwk_where_t *w)
{
    fg_buffer_t  b;
    int          rc;

    rc = fg_jwk_member(jwk, member, 1, max, &b, w);
    if (rc != FG_OK) {
        return rc;
    }

    *bn = BN_secure_new();
    if (*bn == NULL || BN_bin2bn(b.data, (int) b.len, *bn) == NULL
        || OSSL_PARAM_BLD_push_BN(bld, param, *bn) != 1)
    {
        rc = fg_jwk_fail(w, FG_ERR_CRYPTO, "cannot build the RSA key");
    }

    OPENSSL_cleanse(b.data, b.len);
    fg_buffer_free(&b);
    return rc;
}


static int
fg_jwk_load_rsa(fg_jwk_t *key, const json_t *jwk, const fg_jwk_where_t *w)
{
    OSSL_PARAM_BLD  *bld;
    BIGNUM          *bns[2 + FG_RSA_NPRIV];
    size_t           i, nbn = 0;
    int              rc, bits;

    memset(bns, 0, sizeof(bns));
    key->alg = FG_JWS_RS256;
    key->is_private = (json_object_get(jwk, "d") != NULL);

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        return fg_jwk_fail(w, FG_ERR_NOMEM, "out of memory");
    }

    rc = fg_jwk_push_bn(bld, jwk, "n", OSSL_PKEY_PARAM_RSA_N,
                        FG_JWK_RSA_MAX_BITS / 8, &bns[nbn++], w);
    if (rc == FG_OK) {
        rc = fg_jwk_push_bn(bld, jwk, "e", OSSL_PKEY_PARAM_RSA_E, 8,
                            &bns[nbn++], w);
    }

    /* a private RSA JWK must carry all CRT members (RFC 7518 6.3.2) */
    for (i = 0; rc == FG_OK && key->is_private && i < FG_RSA_NPRIV; i++) {
        rc = fg_jwk_push_bn(bld, jwk, fg_rsa_private_members[i].member,
                            fg_rsa_private_members[i].param,
                            FG_JWK_RSA_MAX_BITS / 8, &bns[nbn++], w);
    }

    if (rc == FG_OK) {
        key->pkey = fg_pkey_fromdata("RSA", bld,
                                     key->is_private ? EVP_PKEY_KEYPAIR
                                                     : EVP_PKEY_PUBLIC_KEY);
    }

    OSSL_PARAM_BLD_free(bld);
    for (i = 0; i < nbn; i++) {
        BN_clear_free(bns[i]);
    }

    if (rc != FG_OK) {
        return rc;
    }

    if (key->pkey == NULL) {
        return fg_jwk_fail(w, FG_ERR_INVALID, "not a usable RSA key");
    }

    bits = EVP_PKEY_get_bits(key->pkey);
    if (bits < FG_JWK_RSA_MIN_BITS) {
        return fg_jwk_fail(w, FG_ERR_INVALID, "RSA key below 2048 bits");
    }

    if (!fg_pkey_check(key->pkey, key->is_private)) {
        return fg_jwk_fail(w, FG_ERR_INVALID, "not a valid RSA key");
    }

    return FG_OK;
}


static int
fg_jwk_load_oct(fg_jwk_t *key, const json_t *jwk, const fg_jwk_where_t *w)
{
    fg_buffer_t  k;
    int          rc;

    rc = fg_jwk_member(jwk, "k", 0, FG_JWK_OCT_MAX, &k, w);
    if (rc != FG_OK) {
        return rc;
    }

    if (k.len < FG_JWK_OCT_MIN) {
        OPENSSL_cleanse(k.data, k.len);
        fg_buffer_free(&k);
        return fg_jwk_fail(w, FG_ERR_INVALID,
                           "oct key shorter than 32 bytes");
    }

    key->alg = FG_JWS_HS256;
    key->is_private = 1;
    key->secret = k.data;               /* the buffer's memory is ours */
    key->secret_len = k.len;
    return FG_OK;
}


/* Check kid, use and alg of jwk, then load its material by kty. */
static int
fg_jwk_load(fg_jwk_t *key, const json_t *jwk, fg_jwk_where_t *w)
{
    const json_t  *kid, *use, *alg, *kty;
    const char    *t;
    fg_jws_alg_t   want;
    int            rc;

    if (!json_is_object(jwk)) {
        return fg_jwk_fail(w, FG_ERR_SYNTAX, "not a JSON object");
    }

    kid = json_object_get(jwk, "kid");
    if (kid != NULL) {
        if (!json_is_string(kid) || json_string_length(kid) == 0
            || json_string_length(kid) > FG_JWK_KID_MAX
            || strlen(json_string_value(kid)) != json_string_length(kid))
        {
            return fg_jwk_fail(w, FG_ERR_INVALID,
                               "kid is not a string of 1 to 128 bytes");
        }
        memcpy(key->kid, json_string_value(kid), json_string_length(kid));
        w->kid = key->kid;
    }

    use = json_object_get(jwk, "use");
    if (use != NULL && (!json_is_string(use)
                        || strcmp(json_string_value(use), "sig") != 0))
    {
        return fg_jwk_fail(w, FG_ERR_INVALID, "use is not \"sig\"");
    }

    kty = json_object_get(jwk, "kty");
    t = json_is_string(kty) ? json_string_value(kty) : "";

    if (strcmp(t, "OKP") == 0) {
        want = FG_JWS_EDDSA;
        rc = fg_jwk_load_okp(key, jwk, w);
    } else if (strcmp(t, "EC") == 0) {
        want = FG_JWS_ES256;
        rc = fg_jwk_load_ec(key, jwk, w);
    } else if (strcmp(t, "RSA") == 0) {
        want = FG_JWS_RS256;
        rc = fg_jwk_load_rsa(key, jwk, w);
    } else if (strcmp(t, "oct") == 0) {
        want = FG_JWS_HS256;
        rc = fg_jwk_load_oct(key, jwk, w);
    } else {
        return fg_jwk_fail(w, FG_ERR_INVALID, "missing or unknown kty");
    }

    if (rc != FG_OK) {
        return rc;
    }

    alg = json_object_get(jwk, "alg");
    if (alg != NULL && (!json_is_string(alg)
                        || fg_jws_alg_from_name(json_string_value(alg))
                           != want))
    {
        return fg_jwk_fail(w, FG_ERR_INVALID,
                           "alg is not the algorithm of its kty");
    }

    return FG_OK;
}


/* Add one JWK to set; duplicate kids are refused. */
static int
fg_keyset_add_jwk(fg_keyset_t *set, const json_t *jwk, size_t index,
    fg_error_t *err)
{
    fg_jwk_where_t  w;
    fg_jwk_t       *key;
    int             rc;

    w.index = index;
    w.kid = NULL;
    w.err = err;

    key = &set->keys[set->n];
    memset(key, 0, sizeof(fg_jwk_t));

    ERR_set_mark();
    rc = fg_jwk_load(key, jwk, &w);
    ERR_pop_to_mark();
    if (rc == FG_OK && key->kid[0] != '\0'
        && fg_keyset_find(set, key->kid) != NULL)
    {
        rc = fg_jwk_fail(&w, FG_ERR_INVALID, "duplicate kid in the set");
    }

    if (rc != FG_OK) {
        fg_jwk_clear(key);
        return rc;
    }

    set->n++;
    return FG_OK;
}


static json_t *
fg_json_load_strict(const char *text, size_t len, fg_error_t *err,
    const char *what)
{
    json_error_t  jerr;
    json_t       *v;

    v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        fg_error_set(err, FG_ERR_SYNTAX,
                     jerr.position >= 0 ? (size_t) jerr.position
                                        : FG_NO_OFFSET,
                     "%s is not valid JSON (or has duplicate keys)", what);
        return NULL;
    }

    if (!json_is_object(v)) {
        json_decref(v);
        fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                     "%s is not a JSON object", what);
        return NULL;
    }

    return v;
}


fg_keyset_t *
fg_keyset_from_jwks(const char *text, size_t len, fg_error_t *err)
{
    fg_keyset_t  *set;
    json_t       *doc, *keys;
    size_t        i;

    if (text == NULL || len > FG_JWKS_MAX_TEXT) {
        fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                     "JWKS document missing or larger than %u bytes",
                     (unsigned) FG_JWKS_MAX_TEXT);
        return NULL;
    }

    doc = fg_json_load_strict(text, len, err, "JWKS document");
    if (doc == NULL) {
        return NULL;
    }

    keys = json_object_get(doc, "keys");
    if (keys == NULL && json_object_get(doc, "kty") == NULL) {
        json_decref(doc);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "neither a JWKS (no \"keys\") nor a JWK (no \"kty\")");
        return NULL;
    }

    if (keys != NULL && (!json_is_array(keys) || json_array_size(keys) == 0
                         || json_array_size(keys) > FG_JWK_MAX_KEYS))
    {
        json_decref(doc);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "\"keys\" is not an array of 1 to %d keys",
                     FG_JWK_MAX_KEYS);
        return NULL;
    }

    set = calloc(1, sizeof(fg_keyset_t));
    if (set == NULL) {
        json_decref(doc);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    if (keys == NULL) {
        if (fg_keyset_add_jwk(set, doc, 0, err) != FG_OK) {
            goto failed;
        }
    } else {
        for (i = 0; i < json_array_size(keys); i++) {
            if (fg_keyset_add_jwk(set, json_array_get(keys, i), i, err)
                != FG_OK)
            {
                goto failed;
            }
        }
    }

    json_decref(doc);
    return set;

failed:

    json_decref(doc);
    fg_keyset_free(set);
    return NULL;
}


/* ------------------------------------------------------ PEM -> key set */

/* Never prompt for a pass phrase: encrypted PEM is refused. */
static int
fg_pem_no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1;
}


/* The alg an EVP_PKEY fits, or FG_JWS_NONE with err set. */
static fg_jws_alg_t
fg_pkey_alg(EVP_PKEY *pkey, fg_error_t *err)
{
    char    group[32];
    size_t  glen = 0;

    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        return FG_JWS_EDDSA;
    }

    if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &glen) == 1
            && (strcmp(group, "prime256v1") == 0
                || strcmp(group, "P-256") == 0))
        {
            return FG_JWS_ES256;
        }
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "PEM key: EC key not on P-256");
        return FG_JWS_NONE;
    }

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < FG_JWK_RSA_MIN_BITS
            || EVP_PKEY_get_bits(pkey) > FG_JWK_RSA_MAX_BITS)
        {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "PEM key: RSA key not of 2048 to 8192 bits");
            return FG_JWS_NONE;
        }
        return FG_JWS_RS256;
    }

    fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                 "PEM key: not an Ed25519, P-256 or RSA key");
    return FG_JWS_NONE;
}


/* A set of one key; takes pkey over (freed on failure). */
static fg_keyset_t *
fg_keyset_single(EVP_PKEY *pkey, fg_jws_alg_t alg, int priv,
    const char *kid, fg_error_t *err)
{
    fg_keyset_t  *set;

    set = calloc(1, sizeof(fg_keyset_t));
    if (set == NULL) {
        EVP_PKEY_free(pkey);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    set->n = 1;
    set->keys[0].pkey = pkey;
    set->keys[0].alg = alg;
    set->keys[0].is_private = priv;
    if (kid != NULL) {
        memcpy(set->keys[0].kid, kid, strlen(kid));
    }

    return set;
}


fg_keyset_t *
fg_keyset_from_pem(const char *pem, size_t len, const char *kid,
    fg_error_t *err)
{
    fg_jws_alg_t  alg;
    EVP_PKEY     *pkey;
    BIO          *bio;
    int           priv = 1;

    if (pem == NULL || len > FG_JWKS_MAX_TEXT) {
        fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                     "PEM text missing or too long");
        return NULL;
    }

    if (kid != NULL && (kid[0] == '\0' || strlen(kid) > FG_JWK_KID_MAX)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "kid is not a string of 1 to 128 bytes");
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    ERR_set_mark();
    pkey = PEM_read_bio_PrivateKey(bio, NULL, fg_pem_no_password, NULL);
    if (pkey == NULL) {
        priv = 0;
        (void) BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, fg_pem_no_password, NULL);
    }
    ERR_pop_to_mark();
    BIO_free(bio);

    if (pkey == NULL) {
        fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                     "not a PEM private key or public key (or encrypted)");
        return NULL;
    }

    alg = fg_pkey_alg(pkey, err);
    if (alg == FG_JWS_NONE) {
        EVP_PKEY_free(pkey);
        return NULL;
    }

    /* as for a JWK: a private key's public half must be its own */
    if (!fg_pkey_check(pkey, priv)) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "PEM %s key fails OpenSSL's consistency check%s",
                     priv ? "private" : "public",
                     priv ? " (its public key does not match it)" : "");
        return NULL;
    }

    return fg_keyset_single(pkey, alg, priv, kid, err);
}


fg_keyset_t *
fg_keyset_load_file(const char *path, const char *pem_kid, fg_error_t *err)
{
    fg_keyset_t  *set;
    fg_buffer_t   b;
    char          chunk[4096];
    size_t        n, i;
    FILE         *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "cannot open %s: %s",
                     path, strerror(errno));
        return NULL;
    }

    fg_buffer_init(&b, FG_JWKS_MAX_TEXT);

    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (fg_buffer_append(&b, chunk, n) != FG_OK) {
            fclose(f);
            fg_buffer_free(&b);
            fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                         "%s is larger than %u bytes", path,
                         (unsigned) FG_JWKS_MAX_TEXT);
            return NULL;
        }
    }

    if (ferror(f)) {
        fclose(f);
        fg_buffer_free(&b);
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "cannot read %s", path);
        return NULL;
    }
    fclose(f);

    for (i = 0; i < b.len && isspace(b.data[i]); i++) {
        /* void */
    }

    if (i < b.len && b.data[i] == '{') {
        set = fg_keyset_from_jwks((char *) b.data, b.len, err);
    } else {
        set = fg_keyset_from_pem(b.data ? (char *) b.data : "", b.len,
                                 pem_kid, err);
    }

    if (b.data != NULL) {
        OPENSSL_cleanse(b.data, b.len);
    }
    fg_buffer_free(&b);
    return set;
}


/* -------------------------------------------------------- key -> JWK */

static int
fg_json_set_b64(json_t *obj, const char *name, const unsigned char *p,
    size_t len)
{
    fg_buffer_t  b;
    int          rc;

    fg_buffer_init(&b, 0);

    rc = fg_b64url_encode(p, len, &b);
    if (rc == FG_OK) {
        rc = json_object_set_new(obj, name,
                                 json_stringn(b.data ? (char *) b.data : "",
                                              b.len)) == 0
             ? FG_OK : FG_ERR_NOMEM;
    }

    fg_buffer_free(&b);
    return rc;
}


static int
fg_json_set_bn(json_t *obj, const char *name, EVP_PKEY *pkey,
    const char *param, int pad)
{
    unsigned char  buf[FG_JWK_RSA_MAX_BITS / 8];
    BIGNUM        *bn = NULL;
    int            n, rc;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
        return FG_ERR_CRYPTO;
    }

    n = (pad > 0) ? BN_bn2binpad(bn, buf, pad)
                  : (BN_num_bytes(bn) <= (int) sizeof(buf)
                     ? BN_bn2bin(bn, buf) : -1);
    BN_free(bn);

    if (n <= 0) {
        return FG_ERR_CRYPTO;
    }

    rc = fg_json_set_b64(obj, name, buf, (size_t) n);
    return rc;
}


static int
fg_jwk_public_members(const fg_jwk_t *key, json_t *o)
{
    unsigned char  pub[32];
    size_t         publen = 0;

    switch (key->alg) {
    case FG_JWS_EDDSA:
        if (EVP_PKEY_get_octet_string_param(key->pkey,
                OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen) != 1
            || publen != 32)
        {
            return FG_ERR_CRYPTO;
        }
        if (json_object_set_new(o, "kty", json_string("OKP")) != 0
            || json_object_set_new(o, "crv", json_string("Ed25519")) != 0)
        {
            return FG_ERR_NOMEM;
        }
        return fg_json_set_b64(o, "x", pub, 32);

    case FG_JWS_ES256:
        if (json_object_set_new(o, "kty", json_string("EC")) != 0
            || json_object_set_new(o, "crv", json_string("P-256")) != 0)
        {
            return FG_ERR_NOMEM;
        }
        if (fg_json_set_bn(o, "x", key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32)
            != FG_OK)
        {
            return FG_ERR_CRYPTO;
        }
        return fg_json_set_bn(o, "y", key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y,
                              32);

    case FG_JWS_RS256:
        if (json_object_set_new(o, "kty", json_string("RSA")) != 0) {
            return FG_ERR_NOMEM;
        }
        if (fg_json_set_bn(o, "n", key->pkey, OSSL_PKEY_PARAM_RSA_N, 0)
            != FG_OK)
        {
            return FG_ERR_CRYPTO;
        }
        return fg_json_set_bn(o, "e", key->pkey, OSSL_PKEY_PARAM_RSA_E, 0);

    default:
        return FG_ERR_INVALID;
    }
}


json_t *
fg_jwk_public_json(const fg_jwk_t *key)
{
    json_t  *o;

    if (key == NULL || key->pkey == NULL) {
        return NULL;                    /* oct keys have no public form */
    }

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    if (fg_jwk_public_members(key, o) != FG_OK
        || (key->kid[0] != '\0'
            && json_object_set_new(o, "kid", json_string(key->kid)) != 0)
        || json_object_set_new(o, "alg",
                               json_string(fg_jws_alg_name(key->alg))) != 0
        || json_object_set_new(o, "use", json_string("sig")) != 0)
    {
        json_decref(o);
        return NULL;
    }

    return o;
}


/* ----------------------------------------------- algorithms, one by one */

/* r||s (64 bytes) from a DER ECDSA-Sig-Value. */
static int
fg_es256_der_to_jose(const unsigned char *der, size_t len,
    unsigned char rs[64])
{
    const unsigned char  *p = der;
    const BIGNUM         *r, *s;
    ECDSA_SIG            *sig;
    int                   ok;

    sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
    if (sig == NULL) {
        return FG_ERR_CRYPTO;
    }

    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32;
    ECDSA_SIG_free(sig);

    return ok ? FG_OK : FG_ERR_CRYPTO;
}


/* DER ECDSA-Sig-Value (malloc'd in *der) from r||s. */
static int
fg_es256_jose_to_der(const unsigned char rs[64], unsigned char **der,
    size_t *len)
{
    ECDSA_SIG  *sig;
    BIGNUM     *r, *s;
    int         n;

    sig = ECDSA_SIG_new();
    r = BN_bin2bn(rs, 32, NULL);
    s = BN_bin2bn(rs + 32, 32, NULL);

    if (sig == NULL || r == NULL || s == NULL
        || ECDSA_SIG_set0(sig, r, s) != 1)
    {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return FG_ERR_CRYPTO;
    }

    *der = NULL;
    n = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);

    if (n <= 0) {
        return FG_ERR_CRYPTO;
    }

    *len = (size_t) n;
    return FG_OK;
}


static int
fg_hs256(const fg_jwk_t *key, const unsigned char *in, size_t len,
    unsigned char mac[32])
{
    size_t  outlen = 0;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->secret,
                  key->secret_len, in, len, mac, 32, &outlen) == NULL
        || outlen != 32)
    {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


/* An EVP_MD_CTX set up to sign or verify with key (NULL on failure). */
static EVP_MD_CTX *
fg_digest_ctx(const fg_jwk_t *key, int sign)
{
    EVP_PKEY_CTX  *pctx = NULL;
    EVP_MD_CTX    *ctx;
    const char    *md;
    int            ok;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NULL;
    }

    md = (key->alg == FG_JWS_EDDSA) ? NULL : "SHA256";

    ok = sign ? EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey,
                                      NULL)
              : EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL,
                                        key->pkey, NULL);

    if (ok == 1 && key->alg == FG_JWS_RS256) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
    }

    if (ok != 1) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }

    return ctx;
}


/* Sign in[0..len) with key; append the JOSE signature to sig. */
static int
fg_jws_sign_raw(const fg_jwk_t *key, const unsigned char *in, size_t len,
    fg_buffer_t *sig)
{
    unsigned char   buf[FG_JWK_RSA_MAX_BITS / 8];
    unsigned char   rs[64];
    EVP_MD_CTX     *ctx;
    size_t          n = sizeof(buf);
    int             rc;

    if (key->alg == FG_JWS_HS256) {
        rc = fg_hs256(key, in, len, rs);
        return (rc == FG_OK) ? fg_buffer_append(sig, rs, 32) : rc;
    }

    ctx = fg_digest_ctx(key, 1);
    if (ctx == NULL) {
        return FG_ERR_CRYPTO;
    }

    rc = EVP_DigestSign(ctx, buf, &n, in, len) == 1 ? FG_OK : FG_ERR_CRYPTO;
    EVP_MD_CTX_free(ctx);

    if (rc != FG_OK) {
        return rc;
    }

    if (key->alg == FG_JWS_ES256) {
        rc = fg_es256_der_to_jose(buf, n, rs);
        return (rc == FG_OK) ? fg_buffer_append(sig, rs, 64) : rc;
    }

    return fg_buffer_append(sig, buf, n);
}


/*
 * Verify a JOSE signature.  Returns FG_OK, FG_ERR_INVALID (bad signature
 * or wrong length, with err set) or FG_ERR_CRYPTO.
 */
static int
fg_jws_verify_raw(const fg_jwk_t *key, const unsigned char *in, size_t len,
    const unsigned char *sig, size_t siglen, fg_error_t *err)
{
    unsigned char  mac[32];
    unsigned char *der = NULL;
    size_t         derlen = 0, want;
    EVP_MD_CTX    *ctx;
    int            ok, rc;

    switch (key->alg) {
    case FG_JWS_HS256:
        want = 32;
        break;
    case FG_JWS_EDDSA:
    case FG_JWS_ES256:
        want = 64;
        break;
    default:
        want = (size_t) EVP_PKEY_get_size(key->pkey);
        break;
    }

    if (siglen != want) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s signature is not %zu bytes long",
                            fg_jws_alg_name(key->alg), want);
    }

    if (key->alg == FG_JWS_HS256) {
        rc = fg_hs256(key, in, len, mac);
        if (rc != FG_OK) {
            return fg_error_set(err, rc, FG_NO_OFFSET, "HMAC failed");
        }
        ok = CRYPTO_memcmp(mac, sig, 32) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        goto done;
    }

    if (key->alg == FG_JWS_ES256) {
        if (fg_es256_jose_to_der(sig, &der, &derlen) != FG_OK) {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "cannot encode the ES256 signature");
        }
        sig = der;
        siglen = derlen;
    }

    ctx = fg_digest_ctx(key, 0);
    if (ctx == NULL) {
        OPENSSL_free(der);
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "cannot set up signature verification");
    }

    ok = EVP_DigestVerify(ctx, sig, siglen, in, len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);

done:

    if (!ok) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "bad %s signature", fg_jws_alg_name(key->alg));
    }

    return FG_OK;
}


/* ------------------------------------------------------------- verify */

/* The three parts of a compact JWS, decoded. */
typedef struct {
    const char   *text[3];
    size_t        len[3];
    fg_buffer_t   raw[3];
} fg_jws_parts_t;


static void
fg_jws_parts_free(fg_jws_parts_t *p)
{
    fg_buffer_free(&p->raw[0]);
    fg_buffer_free(&p->raw[1]);
    fg_buffer_free(&p->raw[2]);
}


static int
fg_jws_split(const char *token, size_t len, fg_jws_parts_t *p,
    fg_error_t *err)
{
    static const char  *names[3] = { "header", "payload", "signature" };
    const char         *dot;
    size_t              i, start = 0, end;

    for (i = 0; i < 3; i++) {
        fg_buffer_init(&p->raw[i], 0);
    }

    /* the shape first: three parts, none empty */
    for (i = 0; i < 3; i++) {
        dot = memchr(token + start, '.', len - start);
        if (i < 2 && dot == NULL) {
            return fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                                "token does not have three parts");
        }
        if (i == 2 && dot != NULL) {
            return fg_error_set(err, FG_ERR_SYNTAX, (size_t) (dot - token),
                                "token has more than three parts");
        }
        end = (i < 2) ? (size_t) (dot - token) : len;

        p->text[i] = token + start;
        p->len[i] = end - start;
        start = end + 1;
    }

    for (i = 0; i < 3; i++) {
        if (p->len[i] == 0) {
            return fg_error_set(err, FG_ERR_SYNTAX,
                                (size_t) (p->text[i] - token),
                                "token %s is empty", names[i]);
        }
    }

    for (i = 0; i < 3; i++) {
        start = (size_t) (p->text[i] - token);

        if (fg_b64url_decode(p->text[i], p->len[i], &p->raw[i]) != FG_OK) {
            return fg_error_set(err, FG_ERR_SYNTAX, start,
                                "token %s is not strict base64url",
                                names[i]);
        }
    }

    if (p->raw[2].len > FG_JWS_SIG_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, start,
                            "token signature is too long");
    }

    return FG_OK;
}


/* Check alg, crit and typ of the header; returns the alg or NONE. */
static fg_jws_alg_t
fg_jws_check_header(const json_t *hdr, const fg_jws_verify_opts_t *opts,
    fg_error_t *err)
{
    const json_t  *v;
    fg_jws_alg_t   alg;

    v = json_object_get(hdr, "alg");
    if (!json_is_string(v)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "token header has no alg");
        return FG_JWS_NONE;
    }

    alg = fg_jws_alg_from_name(json_string_value(v));
    if (alg == FG_JWS_NONE) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     strcmp(json_string_value(v), "none") == 0
                     ? "token alg \"none\" is refused"
                     : "token alg is not EdDSA, ES256, RS256 or HS256");
        return FG_JWS_NONE;
    }

    if (json_object_get(hdr, "crit") != NULL) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "token header has crit, which is not supported");
        return FG_JWS_NONE;
    }

    v = json_object_get(hdr, "kid");
    if (v != NULL && !json_is_string(v)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "token kid is not a string");
        return FG_JWS_NONE;
    }

    if (opts->typ != NULL) {
        v = json_object_get(hdr, "typ");
        if (!json_is_string(v)
            || strcasecmp(json_string_value(v), opts->typ) != 0)
        {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "token typ is not the expected one");
            return FG_JWS_NONE;
        }
    }

    return alg;
}


/* The key of set that verifies a token of alg with kid (may be NULL). */
static const fg_jwk_t *
fg_jws_select_key(const fg_keyset_t *set, fg_jws_alg_t alg,
    const char *kid, fg_error_t *err)
{
    const fg_jwk_t  *key = NULL;
    size_t           i, n = 0;

    if (kid != NULL) {
        key = fg_keyset_find(set, kid);
        if (key == NULL) {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "token kid names no known key");
            return NULL;
        }
        if (key->alg != alg) {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "token alg %s does not fit the key's type (%s)",
                         fg_jws_alg_name(alg), fg_jws_alg_name(key->alg));
            return NULL;
        }
        return key;
    }

    for (i = 0; i < set->n; i++) {
        if (set->keys[i].alg == alg) {
            key = &set->keys[i];
            n++;
        }
    }

    if (n == 0) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "token has no kid and no key fits alg %s",
                     fg_jws_alg_name(alg));
        return NULL;
    }

    if (n > 1) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "token has no kid and several keys fit alg %s",
                     fg_jws_alg_name(alg));
        return NULL;
    }

    return key;
}


/* Read integer claim name into *v; 0 absent, 1 present, -1 bad. */
static int
fg_jwt_int_claim(const json_t *claims, const char *name, long long *v,
    fg_error_t *err)
{
    const json_t  *c;

    c = json_object_get(claims, name);
    if (c == NULL) {
        return 0;
    }

    if (!json_is_integer(c)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "claim %s is not an integer", name);
        return -1;
    }

    *v = (long long) json_integer_value(c);
    return 1;
}


static int
fg_jwt_check_times(const json_t *claims, const fg_jws_verify_opts_t *opts,
    fg_error_t *err)
{
    long long  exp = 0, nbf = 0, iat = 0, now, lee;
    int        has_exp, has_nbf, has_iat;

    has_exp = fg_jwt_int_claim(claims, "exp", &exp, err);
    has_nbf = fg_jwt_int_claim(claims, "nbf", &nbf, err);
    has_iat = fg_jwt_int_claim(claims, "iat", &iat, err);

    if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
        return FG_ERR_INVALID;
    }

    /* clamped so that now +- leeway cannot overflow */
    now = (long long) opts->now;
    now = (now > FG_JWT_TIME_MAX) ? FG_JWT_TIME_MAX
        : (now < -FG_JWT_TIME_MAX) ? -FG_JWT_TIME_MAX : now;
    lee = (long long) opts->leeway;

    if (!has_exp && opts->require_exp) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "token has no exp claim");
    }

    /* exp and nbf are compared with care for overflow at the extremes */
    if (has_exp && exp <= now - lee) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "token has expired");
    }

    if (has_nbf && nbf > now + lee) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "token is not valid yet (nbf)");
    }

    if (has_iat && iat > now + lee) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "token was issued in the future (iat)");
    }

    return FG_OK;
}


/* Header checks and key choice; on success *hdr and *key are set. */
static int
fg_jws_verify_header(const fg_keyset_t *set, const fg_jws_parts_t *p,
    const fg_jws_verify_opts_t *opts, json_t **hdr, const fg_jwk_t **key,
    fg_error_t *err)
{
    const json_t  *kid;
    fg_jws_alg_t   alg;

    *hdr = fg_json_load_strict((const char *) p->raw[0].data, p->raw[0].len,
                               err, "token header");
    if (*hdr == NULL) {
        return FG_ERR_SYNTAX;
    }

    alg = fg_jws_check_header(*hdr, opts, err);
    if (alg == FG_JWS_NONE) {
        return FG_ERR_INVALID;
    }

    kid = json_object_get(*hdr, "kid");
    *key = fg_jws_select_key(set, alg,
                             kid != NULL ? json_string_value(kid) : NULL,
                             err);

    return (*key == NULL) ? FG_ERR_INVALID : FG_OK;
}


int
fg_jws_verify(const fg_keyset_t *set, const char *token, size_t len,
    const fg_jws_verify_opts_t *opts, fg_jws_t *out, fg_error_t *err)
{
    fg_jws_parts_t         parts;
    fg_jws_verify_opts_t   defaults;
    const fg_jwk_t        *key = NULL;
    json_t                *hdr = NULL, *claims = NULL;
    size_t                 max;
    int                    rc;

    if (out != NULL) {
        memset(out, 0, sizeof(fg_jws_t));
    }

    if (set == NULL || token == NULL || out == NULL) {
        return fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                            "fg_jws_verify: missing argument");
    }

    if (opts == NULL) {
        memset(&defaults, 0, sizeof(defaults));
        defaults.now = time(NULL);
        opts = &defaults;
    }

    max = opts->max_len ? opts->max_len : FG_JWS_MAX_TOKEN;
    if (len > max) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "token longer than %zu bytes", max);
    }

    /* what OpenSSL queues while refusing a token is not left to the caller */
    ERR_set_mark();

    rc = fg_jws_split(token, len, &parts, err);
    if (rc == FG_OK) {
        rc = fg_jws_verify_header(set, &parts, opts, &hdr, &key, err);
    }

    /* the signing input is the text of the first two parts and the dot */
    if (rc == FG_OK) {
        rc = fg_jws_verify_raw(key, (const unsigned char *) token,
                               parts.len[0] + 1 + parts.len[1],
                               parts.raw[2].data, parts.raw[2].len, err);
    }

    if (rc == FG_OK) {
        claims = fg_json_load_strict((const char *) parts.raw[1].data,
                                     parts.raw[1].len, err, "token payload");
        rc = (claims == NULL) ? FG_ERR_SYNTAX
                              : fg_jwt_check_times(claims, opts, err);
    }

    fg_jws_parts_free(&parts);
    ERR_pop_to_mark();

    if (rc != FG_OK) {
        json_decref(hdr);
        json_decref(claims);
        return rc;
    }

    out->alg = key->alg;
    out->key = key;
    out->header = hdr;
    out->claims = claims;
    return FG_OK;
}


void
fg_jws_release(fg_jws_t *jws)
{
    if (jws == NULL) {
        return;
    }

    json_decref(jws->header);
    json_decref(jws->claims);
    memset(jws, 0, sizeof(fg_jws_t));
}


/* --------------------------------------------------------------- sign */

/* Append base64url(JCS(value)) to out. */
static int
fg_jws_encode_json(const json_t *value, fg_buffer_t *out, fg_error_t *err)
{
    unsigned char  stage[1024];
    fg_buffer_t    canon;
    fg_sink_t      sink;
    int            rc;

    fg_buffer_init(&canon, 0);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));

    rc = fg_jcs_canonicalize_json(value, 0, &sink, err);
    if (rc == FG_OK) {
        rc = fg_sink_drain(&sink);
    }
    if (rc == FG_OK) {
        rc = fg_b64url_encode(canon.data ? canon.data
                                         : (const unsigned char *) "",
                              canon.len, out);
        if (rc != FG_OK) {
            fg_error_set(err, rc, FG_NO_OFFSET, "cannot encode the token");
        }
    }

    fg_buffer_free(&canon);
    return rc;
}


/* {"alg","kid"} plus the members of extra (which may not set those). */
static json_t *
fg_jws_make_header(const fg_jwk_t *key, const json_t *extra,
    fg_error_t *err)
{
    const char  *name;
    json_t      *hdr, *v;

    if (extra != NULL
        && (!json_is_object(extra) || json_object_get(extra, "alg") != NULL
            || json_object_get(extra, "kid") != NULL
            || json_object_get(extra, "crit") != NULL))
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "extra header is not an object without alg, kid, crit");
        return NULL;
    }

    hdr = json_object();
    if (hdr == NULL
        || json_object_set_new(hdr, "alg",
                               json_string(fg_jws_alg_name(key->alg))) != 0
        || (key->kid[0] != '\0'
            && json_object_set_new(hdr, "kid", json_string(key->kid)) != 0))
    {
        json_decref(hdr);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    json_object_foreach((json_t *) extra, name, v) {
        if (json_object_set(hdr, name, v) != 0) {
            json_decref(hdr);
            fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
            return NULL;
        }
    }

    return hdr;
}


/* Append "<b64 header>.<b64 payload>" for key to tok. */
static int
fg_jws_signing_input(const fg_jwk_t *key, const json_t *extra_header,
    const json_t *claims, fg_buffer_t *tok, fg_error_t *err)
{
    json_t  *hdr;
    int      rc;

    hdr = fg_jws_make_header(key, extra_header, err);
    if (hdr == NULL) {
        return FG_ERR_INVALID;
    }

    rc = fg_jws_encode_json(hdr, tok, err);
    json_decref(hdr);

    if (rc == FG_OK && fg_buffer_append(tok, ".", 1) != FG_OK) {
        rc = fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    if (rc == FG_OK) {
        rc = fg_jws_encode_json(claims, tok, err);
    }

    return rc;
}


int
fg_jws_sign(const fg_jwk_t *key, const json_t *extra_header,
    const json_t *claims, fg_buffer_t *out, fg_error_t *err)
{
    fg_buffer_t   tok, sig;
    int           rc;

    if (key == NULL || out == NULL || !json_is_object(claims)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "fg_jws_sign: no key, or claims not an object");
    }

    if (!key->is_private) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "key is public only: it cannot sign");
    }

    fg_buffer_init(&tok, 0);
    fg_buffer_init(&sig, 0);

    rc = fg_jws_signing_input(key, extra_header, claims, &tok, err);

    if (rc == FG_OK) {
        ERR_set_mark();
        rc = fg_jws_sign_raw(key, tok.data, tok.len, &sig);
        ERR_pop_to_mark();
        if (rc == FG_OK) {
            rc = fg_buffer_append(&tok, ".", 1);
        }
        if (rc == FG_OK) {
            rc = fg_b64url_encode(sig.data, sig.len, &tok);
        }
        if (rc == FG_OK) {
            rc = fg_buffer_append(out, tok.data, tok.len);
        }
        if (rc != FG_OK) {
            fg_error_set(err, rc, FG_NO_OFFSET, "%s signing failed",
                         fg_jws_alg_name(key->alg));
        }
    }

    fg_buffer_free(&tok);
    fg_buffer_free(&sig);
    return rc;
}


/* ------------------------------------------------------------- keygen */

static EVP_PKEY *
fg_keygen(fg_jws_alg_t alg)
{
    switch (alg) {
    case FG_JWS_EDDSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case FG_JWS_ES256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case FG_JWS_RS256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
                                 (size_t) FG_JWK_RSA_KEYGEN);
    default:
        return NULL;
    }
}


static int
fg_pem_write(EVP_PKEY *pkey, fg_buffer_t *pem)
{
    BIO   *bio;
    char  *p = NULL;
    long   n;
    int    rc = FG_ERR_CRYPTO;

    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        return FG_ERR_NOMEM;
    }

    if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        n = BIO_get_mem_data(bio, &p);
        if (n > 0 && p != NULL) {
            rc = fg_buffer_append(pem, p, (size_t) n);
        }
    }

    BIO_free(bio);
    return rc;
}


fg_keyset_t *
fg_keyset_generate(fg_jws_alg_t alg, const char *kid, fg_buffer_t *pem,
    fg_error_t *err)
{
    EVP_PKEY  *pkey;

    if (alg != FG_JWS_EDDSA && alg != FG_JWS_ES256 && alg != FG_JWS_RS256) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "keygen makes EdDSA, ES256 or RS256 keys only");
        return NULL;
    }

    if (kid == NULL || kid[0] == '\0' || strlen(kid) > FG_JWK_KID_MAX) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "kid is not a string of 1 to 128 bytes");
        return NULL;
    }

    pkey = fg_keygen(alg);
    if (pkey == NULL) {
        fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET, "%s keygen failed",
                     fg_jws_alg_name(alg));
        return NULL;
    }

    if (pem != NULL && fg_pem_write(pkey, pem) != FG_OK) {
        EVP_PKEY_free(pkey);
        fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                     "cannot write the private key as PEM");
        return NULL;
    }

    return fg_keyset_single(pkey, alg, 1, kid, err);
}

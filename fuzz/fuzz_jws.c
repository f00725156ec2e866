/*
 * fuzz_jws.c -- libFuzzer target for compact JWS verification and JWKS
 * loading.
 *
 * The first byte picks the mode; the rest is the input:
 *   - even: the input is a token, verified against a fixed set (an oct
 *     key "hs1" and an Ed25519 key "ed1", the RFC 7515 A.1 and RFC 8037
 *     A.1 keys).  It must never succeed unless it is correctly signed:
 *     each success is checked again with OpenSSL directly.
 *   - odd: the input is a JWKS document.  A set that loads must give
 *     public JWKs, and every private key with a kid must sign a token the
 *     same set verifies.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fg_jose.h"

#define FUZZ_NOW  1300819379

static const char  fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"hs1\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMk"
    "oqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

/* the raw keys again, for the independent check */
static const char  fuzz_hs_k[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcg"
    "UuTwjAzZr1Z9CAow";
static const char  fuzz_ed_x[] =
    "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

static fg_keyset_t  *fuzz_set;


/* Does sig sign input[0..n) under the named fixed key?  OpenSSL only. */
static int
fuzz_signed(fg_jws_alg_t alg, const unsigned char *in, size_t n,
    const fg_buffer_t *sig)
{
    unsigned char  mac[32];
    fg_buffer_t    k;
    EVP_PKEY      *pkey;
    EVP_MD_CTX    *ctx;
    size_t         maclen = 0;
    int            ok = 0;

    fg_buffer_init(&k, 0);

    if (alg == FG_JWS_HS256) {
        if (fg_b64url_decode(fuzz_hs_k, strlen(fuzz_hs_k), &k) == FG_OK
            && EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k.data, k.len,
                         in, n, mac, sizeof(mac), &maclen) != NULL)
        {
            ok = sig->len == 32 && CRYPTO_memcmp(mac, sig->data, 32) == 0;
        }

    } else if (alg == FG_JWS_EDDSA) {
        if (fg_b64url_decode(fuzz_ed_x, strlen(fuzz_ed_x), &k) == FG_OK) {
            pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
                                               k.data, k.len);
            ctx = EVP_MD_CTX_new();
            ok = pkey != NULL && ctx != NULL
                 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1
                 && EVP_DigestVerify(ctx, sig->data, sig->len, in, n) == 1;
            EVP_MD_CTX_free(ctx);
            EVP_PKEY_free(pkey);
        }
    }

    fg_buffer_free(&k);
    return ok;
}


static void
fuzz_token(const char *p, size_t n)
{
    fg_jws_verify_opts_t  opts;
    const char           *d1, *d2;
    fg_buffer_t           sig;
    fg_error_t            err;
    fg_jws_t              out;
    int                   rc;

    memset(&opts, 0, sizeof(opts));
    opts.now = FUZZ_NOW;
    opts.leeway = 60;

    rc = fg_jws_verify(fuzz_set, p, n, &opts, &out, &err);

    if (rc != FG_OK) {
        if (out.header != NULL || out.claims != NULL || err.code != rc
            || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
        {
            abort();
        }
        return;
    }

    if (out.key == NULL || !json_is_object(out.header)
        || !json_is_object(out.claims))
    {
        abort();
    }

    /* a success: exactly three parts, and OpenSSL agrees on the signature */
    d1 = memchr(p, '.', n);
    d2 = (d1 == NULL) ? NULL : memchr(d1 + 1, '.', n - (d1 + 1 - p));
    if (d2 == NULL || memchr(d2 + 1, '.', n - (d2 + 1 - p)) != NULL) {
        abort();
    }

    fg_buffer_init(&sig, 0);
    if (fg_b64url_decode(d2 + 1, n - (d2 + 1 - p), &sig) != FG_OK
        || !fuzz_signed(out.alg, (const unsigned char *) p,
                        (size_t) (d2 - p), &sig))
    {
        abort();
    }
    fg_buffer_free(&sig);

    fg_jws_release(&out);
}


/* Sign with key and verify with set: the round trip must hold. */
static void
fuzz_sign_back(const fg_keyset_t *set, const fg_jwk_t *key)
{
    fg_jws_verify_opts_t  opts;
    fg_buffer_t           tok;
    fg_error_t            err;
    fg_jws_t              out;
    json_t               *claims;

    claims = json_pack("{si}", "iat", FUZZ_NOW);
    if (claims == NULL) {
        return;
    }

    memset(&opts, 0, sizeof(opts));
    opts.now = FUZZ_NOW;

    fg_buffer_init(&tok, 0);
    if (fg_jws_sign(key, NULL, claims, &tok, &err) == FG_OK) {
        if (fg_jws_verify(set, (char *) tok.data, tok.len, &opts, &out,
                          &err) != FG_OK
            || out.key != key)
        {
            abort();
        }
        fg_jws_release(&out);
    }

    fg_buffer_free(&tok);
    json_decref(claims);
}


static void
fuzz_jwks_doc(const char *p, size_t n)
{
    const fg_jwk_t  *key;
    fg_keyset_t     *set;
    fg_error_t       err;
    json_t          *pub;
    size_t           i;

    set = fg_keyset_from_jwks(p, n, &err);
    if (set == NULL) {
        return;
    }

    if (fg_keyset_count(set) == 0 || fg_keyset_count(set) > FG_JWK_MAX_KEYS) {
        abort();
    }

    for (i = 0; i < fg_keyset_count(set); i++) {
        key = fg_keyset_get(set, i);
        pub = fg_jwk_public_json(key);
        if (pub == NULL ? fg_jwk_alg(key) != FG_JWS_HS256
                        : json_object_get(pub, "d") != NULL)
        {
            abort();
        }
        json_decref(pub);

        if (fg_jwk_is_private(key) && fg_jwk_kid(key)[0] != '\0') {
            fuzz_sign_back(set, key);
        }
    }

    fg_keyset_free(set);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_error_t  err;

    if (fuzz_set == NULL) {
        fuzz_set = fg_keyset_from_jwks(fuzz_jwks, strlen(fuzz_jwks), &err);
        if (fuzz_set == NULL) {
            fprintf(stderr, "fuzz_jws: %s\n", err.msg);
            abort();
        }
    }

    if (size == 0) {
        return 0;
    }

    if (data[0] % 2 == 0) {
        fuzz_token((const char *) data + 1, size - 1);
    } else {
        fuzz_jwks_doc((const char *) data + 1, size - 1);
    }

    return 0;
}

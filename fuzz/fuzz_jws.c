/*
 * fuzz_jws.c -- libFuzzer target for compact JWS verification and JWKS
 * loading.
 *
 * The first byte picks the mode; the rest is the input:
 *   - even: the input is a token, verified against a fixed set (an oct
 *     key "hs1" and an Ed25519 key "ed1", the RFC 7515 A.1 and RFC 8037
 *     A.1 keys; a P-256 key "es1" and an RSA key "rs1", so ES256 and
 *     RS256 signatures are read too).  It must never succeed unless it is
 *     correctly signed: each success is checked again with OpenSSL.
 *   - 'S' or 'E': the input is "<header> NUL <claims>", taken as bytes
 *     (not re-serialized), signed here with hs1 (HS256) or ed1 (EdDSA)
 *     into a compact token, so hostile headers and claims get past the
 *     signature: the token is verified, then read as the gateway reads
 *     a caller's token (fg_auth_check_claims, the AuthContext record,
 *     which must be valid against its schema, fg_auth_subject, the
 *     capability gate) and as an approval (fg_approval_verify, whose
 *     acceptance must be bound to the call asked for).
 *   - 'Q': the input is a PEM key (fg_keyset_from_pem), checked as a
 *     JWKS is below (one key, the kid given).
 *   - other odd: the input is a JWKS document.  A set that loads must
 *     give public JWKs, and every private key with a kid must sign a
 *     token the same set verifies.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "fg_auth.h"
#include "fg_jose.h"
#include "fg_record.h"

#define FUZZ_NOW  1300819379

static const char  fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"hs1\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMk"
    "oqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
    "{\"kty\":\"EC\",\"kid\":\"es1\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rs1\",\"e\":\"AQAB\",\"n\":\"2NYE-gR4Lappag"
    "R7ElZk2pq9ZAv4o0-m7VVQpvd2rNv39xItBhN2zwqF-RSFyeiOdA6eGvXlDdyr2futpdvJs9"
    "j2Kx932xar-RpnBhTJJdmjNtRbiBonVKXJgFBYN-YeJcExkJCkKFfnorRiribAL-ZBZi5ojs"
    "WpHrNmisJkBNuTbwrlCfH7SH7sxQEeZqJj_6Un96mzJvILW787aEvO7zcJT01-FtFb3itWpx"
    "s3ip8T178ydJhE3vqVPvu_3OW8B7Gk4Ec2xezo7GIQbQGjKFoRnEO4KW7Lvp7Vk7AgTZ8nA0"
    "fB4RR1WURNOZYllzWqg3G-QDFJCRGBu2D3jF4VNw\"}]}";

/* ed1's private half (RFC 8037 A.1), to sign in the 'S'/'E' modes */
static const char  fuzz_ed_priv[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\","
    "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

/* the raw keys again, for the independent check */
static const char  fuzz_hs_k[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcg"
    "UuTwjAzZr1Z9CAow";
static const char  fuzz_ed_x[] =
    "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

static fg_keyset_t   *fuzz_set;
static fg_keyset_t   *fuzz_ed_set;
static fg_records_t  *fuzz_records;


/* ES256 (raw r||s) or RS256 sig of in[0..n) under pkey?  OpenSSL only. */
static int
fuzz_pkey_signed(fg_jws_alg_t alg, EVP_PKEY *pkey, const unsigned char *in,
    size_t n, const fg_buffer_t *sig)
{
    unsigned char  *der;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *ctx;
    BIGNUM         *r, *s;
    int             ok, len;

    der = NULL;
    len = 0;

    if (alg == FG_JWS_ES256) {
        if (sig->len != 64) {
            return 0;
        }
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig->data, 32, NULL);
        s = BN_bin2bn(sig->data + 32, 32, NULL);
        if (es == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            abort();
        }
        len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (len <= 0) {
            abort();
        }
    }

    ctx = EVP_MD_CTX_new();
    ok = pkey != NULL && ctx != NULL
         && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1
         && EVP_DigestVerify(ctx, der != NULL ? der : sig->data,
                             der != NULL ? (size_t) len : sig->len, in, n)
            == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);

    return ok;
}


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
        || !((out.alg == FG_JWS_ES256 || out.alg == FG_JWS_RS256)
             ? fuzz_pkey_signed(out.alg, fg_jwk_pkey(out.key),
                                (const unsigned char *) p,
                                (size_t) (d2 - p), &sig)
             : fuzz_signed(out.alg, (const unsigned char *) p,
                           (size_t) (d2 - p), &sig)))
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
fuzz_jwks_doc(const char *p, size_t n, int pem)
{
    const fg_jwk_t  *key;
    fg_keyset_t     *set;
    fg_error_t       err;
    json_t          *pub;
    size_t           i;

    set = pem ? fg_keyset_from_pem(p, n, "pem1", &err)
              : fg_keyset_from_jwks(p, n, &err);
    if (set == NULL) {
        return;
    }

    if (fg_keyset_count(set) == 0 || fg_keyset_count(set) > FG_JWK_MAX_KEYS
        || (pem && (fg_keyset_count(set) != 1
                    || strcmp(fg_jwk_kid(fg_keyset_get(set, 0)), "pem1")
                       != 0)))
    {
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


static const char *
fuzz_str(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}


/* A verified token read as a caller's token and as an approval. */
static void
fuzz_use(const fg_jws_t *jws, const char *tok, size_t n)
{
    fg_approval_binding_t   b;
    fg_schema_report_t      r;
    fg_auth_args_t          args;
    unsigned char           md[FG_SHA256_LEN];
    fg_error_t              err, err2;
    fg_trace_t              tr;
    json_t                 *rec, *subj, *appr;
    char                    hex[FG_SHA256_HEX_LEN + 1];
    int                     rc;

    if (fg_sha256(tok, n, md) != FG_OK) {
        abort();
    }
    fg_hex_sha256(md, hex);

    memset(&tr, 0, sizeof(tr));
    memcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(tr.span_id, "00f067aa0ba902b7", 17);

    memset(&args, 0, sizeof(args));
    args.token_source = FG_AUTH_SOURCE_AUTHORIZATION;
    args.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    args.trace = &tr;
    args.now_sec = FUZZ_NOW;

    rc = fg_auth_check_claims(jws->claims, &err);
    rec = fg_auth_context_record(jws, hex, &args, &err2);
    subj = fg_auth_subject(jws, &err2);

    if (rc == FG_OK) {
        if (rec == NULL || subj == NULL) {
            fprintf(stderr, "claims checked, but no record: %s\n", err2.msg);
            abort();
        }
        if (fg_record_validate(fuzz_records, rec, &r) != FG_OK) {
            fprintf(stderr, "AuthContext not valid: %s\n",
                    r.count ? r.line[0] : "?");
            abort();
        }
        (void) fg_auth_capable(json_object_get(subj, "capabilities"),
                               "model:gpt-4o");
        (void) fg_auth_capable(json_object_get(subj, "capabilities"),
                               "tool:servicenow.incident:write");

    } else if (rec != NULL || err.msg[0] == '\0') {
        abort();
    }
    json_decref(rec);
    json_decref(subj);

    b.tenant_id = "acme";
    b.tool = "servicenow.incident";
    b.action = "write";
    b.input_sha256 =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    appr = fg_approval_verify(fuzz_set, tok, n, &b, FUZZ_NOW, 60, &err);
    if (appr != NULL) {
        if (strcasecmp(fuzz_str(json_object_get(jws->header, "typ")),
                       FG_APPROVAL_TYP) != 0
            || strcmp(fuzz_str(json_object_get(jws->claims, "tenant_id")),
                      b.tenant_id) != 0
            || strcmp(fuzz_str(json_object_get(jws->claims, "tool")),
                      b.tool) != 0
            || strcmp(fuzz_str(json_object_get(jws->claims, "action")),
                      b.action) != 0
            || strcmp(fuzz_str(json_object_get(appr, "input_sha256")),
                      b.input_sha256) != 0)
        {
            fprintf(stderr, "approval accepted for another call\n");
            abort();
        }
        json_decref(appr);

    } else if (err.msg[0] == '\0') {
        abort();
    }
}


/* "<header> NUL <claims>" signed here (HS256 or EdDSA), then verified. */
static void
fuzz_sign_mode(int ed, const uint8_t *p, size_t n)
{
    fg_jws_verify_opts_t   opts;
    const uint8_t         *nul;
    unsigned char          mac[64];
    fg_buffer_t            tok, k;
    EVP_MD_CTX            *ctx;
    fg_error_t             err;
    fg_jws_t               out;
    size_t                 maclen;

    nul = memchr(p, 0, n);
    if (nul == NULL) {
        return;
    }

    fg_buffer_init(&tok, 0);
    if (fg_b64url_encode(p, (size_t) (nul - p), &tok) != FG_OK
        || fg_buffer_append(&tok, ".", 1) != FG_OK
        || fg_b64url_encode(nul + 1, n - (size_t) (nul - p) - 1, &tok)
           != FG_OK)
    {
        fg_buffer_free(&tok);
        return;
    }

    maclen = 0;
    if (ed) {
        ctx = EVP_MD_CTX_new();
        maclen = sizeof(mac);
        if (ctx == NULL
            || EVP_DigestSignInit(ctx, NULL, NULL, NULL,
                   fg_jwk_pkey(fg_keyset_get(fuzz_ed_set, 0))) != 1
            || EVP_DigestSign(ctx, mac, &maclen, tok.data, tok.len) != 1)
        {
            abort();
        }
        EVP_MD_CTX_free(ctx);

    } else {
        fg_buffer_init(&k, 0);
        if (fg_b64url_decode(fuzz_hs_k, strlen(fuzz_hs_k), &k) != FG_OK
            || EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k.data, k.len,
                         tok.data, tok.len, mac, sizeof(mac), &maclen)
               == NULL)
        {
            abort();
        }
        fg_buffer_free(&k);
    }

    if (fg_buffer_append(&tok, ".", 1) != FG_OK
        || fg_b64url_encode(mac, maclen, &tok) != FG_OK)
    {
        fg_buffer_free(&tok);
        return;
    }

    /* what any token gets, then the signed one's reading */
    fuzz_token((const char *) tok.data, tok.len);

    memset(&opts, 0, sizeof(opts));
    opts.now = FUZZ_NOW;
    opts.leeway = 60;

    if (fg_jws_verify(fuzz_set, (const char *) tok.data, tok.len, &opts,
                      &out, &err) == FG_OK)
    {
        fuzz_use(&out, (const char *) tok.data, tok.len);
        fg_jws_release(&out);
    }

    fg_buffer_free(&tok);
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
        fuzz_ed_set = fg_keyset_from_jwks(fuzz_ed_priv,
                                          sizeof(fuzz_ed_priv) - 1, &err);
        fuzz_records = fg_records_new(&err);
        if (fuzz_ed_set == NULL || fuzz_records == NULL) {
            fprintf(stderr, "fuzz_jws: %s\n", err.msg);
            abort();
        }
    }

    if (size == 0) {
        return 0;
    }

    if (data[0] == 'S' || data[0] == 'E') {
        fuzz_sign_mode(data[0] == 'E', data + 1, size - 1);

    } else if (data[0] % 2 == 0) {
        fuzz_token((const char *) data + 1, size - 1);
    } else {
        fuzz_jwks_doc((const char *) data + 1, size - 1, data[0] == 'Q');
    }

    return 0;
}

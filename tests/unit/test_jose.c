/*
 * test_jose.c -- JWK sets, compact JWS sign/verify for EdDSA, ES256,
 * RS256 and HS256, the RFC 7515 A.1 and RFC 8037 A.4 examples, and every
 * refusal fg_jose.h promises (alg none, key confusion, unknown kid, bad
 * signatures, malformed base64url and JSON, crit, length, time claims).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fg_jose.h"
#include "test_util.h"

#define NOW  1700000000

/* The HS256 secret of the oct test key (32 bytes). */
static const unsigned char  hs_secret[] = "0123456789abcdef0123456789abcdef";

/* RFC 7515 appendix A.1 */
static const char  rfc7515_jwk[] =
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
    "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}";
static const char  rfc7515_jws[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* RFC 7515 appendix A.3 (ES256) */
static const char  rfc7515_a3_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
    "\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}";
static const char  rfc7515_a3_jws[] =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQ"
    "xfKTUJqPP3-Kg6NU1Q";

/* RFC 8037 appendix A.1, A.4 */
static const char  rfc8037_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char  rfc8037_jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVs"
    "Pt9g7sVvpAr_MuM0KAg";


typedef struct {
    fg_keyset_t  *ed;           /* kid "ed1", private */
    fg_keyset_t  *es;           /* kid "es1", private */
    fg_keyset_t  *rs;           /* kid "rs1", private */
    fg_keyset_t  *oct;          /* kid "hs1" */
    fg_keyset_t  *pub;          /* public JWKS of ed, es, rs */
    fg_buffer_t   ed_pem;
    fg_buffer_t   rs_pem;
    fg_buffer_t   oct_jwk;      /* text of the oct JWK */
} fx_t;


/* ---------------------------------------------------------------- helpers */

static fg_jws_verify_opts_t
opts_at(time_t now, unsigned leeway)
{
    fg_jws_verify_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.now = now;
    o.leeway = leeway;
    return o;
}


static void
b64(const void *p, size_t n, fg_buffer_t *out)
{
    assert_int_equal(fg_b64url_encode(p, n, out), FG_OK);
}


/* A JWK text {"kty":"oct","kid":kid,"k":b64(secret)}. */
static void
oct_jwk_text(const unsigned char *secret, size_t n, const char *kid,
    fg_buffer_t *out)
{
    fg_buffer_t  k;
    char         text[4096];

    fg_buffer_init(&k, 0);
    b64(secret, n, &k);
    snprintf(text, sizeof(text),
             "{\"kty\":\"oct\",\"kid\":\"%s\",\"k\":\"%s\"}", kid,
             (char *) k.data);
    fg_buffer_init(out, 0);
    assert_int_equal(fg_buffer_append(out, text, strlen(text)), FG_OK);
    fg_buffer_free(&k);
}


/* Sign claims (JSON text) with the only key of set; token in out. */
static int
sign_text(const fg_keyset_t *set, const char *claims, const char *extra,
    fg_buffer_t *out)
{
    json_t      *c, *x = NULL;
    fg_error_t   err;
    int          rc;

    c = json_loads(claims, 0, NULL);
    assert_non_null(c);
    if (extra != NULL) {
        x = json_loads(extra, 0, NULL);
        assert_non_null(x);
    }

    fg_buffer_init(out, 0);
    rc = fg_jws_sign(fg_keyset_get(set, 0), x, c, out, &err);

    json_decref(c);
    json_decref(x);
    return rc;
}


/* A token made by hand: raw header and payload texts, HMAC with key. */
static void
raw_hs(const char *hdr, const char *payload, const unsigned char *key,
    size_t keylen, fg_buffer_t *out)
{
    unsigned char  mac[32];
    size_t         n = 0;

    fg_buffer_init(out, 0);
    b64(hdr, strlen(hdr), out);
    assert_int_equal(fg_buffer_append(out, ".", 1), FG_OK);
    b64(payload, strlen(payload), out);

    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key,
                              keylen, out->data, out->len, mac, 32, &n));
    assert_int_equal(fg_buffer_append(out, ".", 1), FG_OK);
    b64(mac, n, out);
}


static void
raw_hs_default(const char *hdr, const char *payload, fg_buffer_t *out)
{
    raw_hs(hdr, payload, hs_secret, 32, out);
}


/*
 * Verify must fail with code and a message containing what; the message
 * never holds the token text.
 */
static void
expect_refused(const fg_keyset_t *set, const char *token, size_t len,
    const fg_jws_verify_opts_t *opts, int code, const char *what)
{
    fg_error_t  err;
    fg_jws_t    out;
    int         rc;

    memset(&err, 0, sizeof(err));
    rc = fg_jws_verify(set, token, len, opts, &out, &err);
    if (rc != code || strstr(err.msg, what) == NULL) {
        print_error("rc %d (want %d), msg \"%s\" (want \"%s\")\n", rc, code,
                    err.msg, what);
        fail();
    }
    assert_null(out.header);
    assert_null(out.claims);
    if (len > 12) {
        char  head[13];

        memcpy(head, token, 12);
        head[12] = '\0';
        assert_null(strstr(err.msg, head));
    }
    fg_jws_release(&out);
}


static void
expect_ok(const fg_keyset_t *set, const char *token,
    const fg_jws_verify_opts_t *opts, fg_jws_t *out)
{
    fg_error_t  err;
    int         rc;

    memset(&err, 0, sizeof(err));
    rc = fg_jws_verify(set, token, strlen(token), opts, out, &err);
    if (rc != FG_OK) {
        print_error("verify: %d %s\n", rc, err.msg);
        fail();
    }
}


/* Load a JWKS from text, expecting success. */
static fg_keyset_t *
jwks(const char *text)
{
    fg_keyset_t  *set;
    fg_error_t    err;

    set = fg_keyset_from_jwks(text, strlen(text), &err);
    if (set == NULL) {
        print_error("jwks: %s\n", err.msg);
        fail();
    }
    return set;
}


/* Loading text must fail with a message containing what. */
static void
expect_jwks_refused(const char *text, const char *what)
{
    fg_keyset_t  *set;
    fg_error_t    err;

    memset(&err, 0, sizeof(err));
    set = fg_keyset_from_jwks(text, strlen(text), &err);
    if (set != NULL || strstr(err.msg, what) == NULL) {
        print_error("jwks: msg \"%s\" (want \"%s\")\n", err.msg, what);
        fg_keyset_free(set);
        fail();
    }
}


/* ---------------------------------------------------------------- fixture */

static int
group_setup(void **state)
{
    fx_t        *fx;
    fg_error_t   err;
    json_t      *keys, *doc;
    char        *text;

    fx = calloc(1, sizeof(fx_t));
    if (fx == NULL) {
        return -1;
    }

    fg_buffer_init(&fx->ed_pem, 0);
    fg_buffer_init(&fx->rs_pem, 0);
    fx->ed = fg_keyset_generate(FG_JWS_EDDSA, "ed1", &fx->ed_pem, &err);
    fx->es = fg_keyset_generate(FG_JWS_ES256, "es1", NULL, &err);
    fx->rs = fg_keyset_generate(FG_JWS_RS256, "rs1", &fx->rs_pem, &err);
    if (fx->ed == NULL || fx->es == NULL || fx->rs == NULL) {
        return -1;
    }

    oct_jwk_text(hs_secret, 32, "hs1", &fx->oct_jwk);
    fx->oct = fg_keyset_from_jwks((char *) fx->oct_jwk.data,
                                  fx->oct_jwk.len, &err);
    if (fx->oct == NULL) {
        return -1;
    }

    keys = json_array();
    json_array_append_new(keys, fg_jwk_public_json(fg_keyset_get(fx->ed, 0)));
    json_array_append_new(keys, fg_jwk_public_json(fg_keyset_get(fx->es, 0)));
    json_array_append_new(keys, fg_jwk_public_json(fg_keyset_get(fx->rs, 0)));
    doc = json_pack("{so}", "keys", keys);
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        return -1;
    }

    fx->pub = fg_keyset_from_jwks(text, strlen(text), &err);
    free(text);
    if (fx->pub == NULL) {
        return -1;
    }

    *state = fx;
    return 0;
}


static int
group_teardown(void **state)
{
    fx_t  *fx = *state;

    fg_keyset_free(fx->ed);
    fg_keyset_free(fx->es);
    fg_keyset_free(fx->rs);
    fg_keyset_free(fx->oct);
    fg_keyset_free(fx->pub);
    fg_buffer_free(&fx->ed_pem);
    fg_buffer_free(&fx->rs_pem);
    fg_buffer_free(&fx->oct_jwk);
    free(fx);
    return 0;
}


/* ----------------------------------------------------------------- base64 */

static void
test_b64url(void **state)
{
    static const unsigned char  ff[] = { 0xfb, 0xff };
    static const char          *bad[] = {
        "Zg==", "Zm8=", "Zm9v Zm9v", "Zm9v\n", "Zm+v", "Zm/v", "Z",
        "Zh", "Zm9", "Zm!v", "Zm9v="
    };
    fg_buffer_t  b;
    size_t       i;

    (void) state;

    fg_buffer_init(&b, 0);
    b64("", 0, &b);
    assert_int_equal(b.len, 0);
    b64("f", 1, &b);
    b64("fo", 2, &b);
    b64("foo", 3, &b);
    b64(ff, 2, &b);
    assert_string_equal((char *) b.data, "ZgZm8Zm9v-_8");
    fg_buffer_free(&b);

    assert_int_equal(fg_b64url_decode("-_8", 3, &b), FG_OK);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, ff, 2);
    fg_buffer_free(&b);

    assert_int_equal(fg_b64url_decode("Zm9vYg", 6, &b), FG_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "foob", 4);
    fg_buffer_free(&b);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fg_b64url_decode(bad[i], strlen(bad[i]), &b) != FG_ERR_SYNTAX) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
        fg_buffer_free(&b);
    }
}


/* ------------------------------------------------------------ round trips */

static void
round_trip(const fg_keyset_t *signer, const fg_keyset_t *verifier,
    fg_jws_alg_t alg, int deterministic)
{
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t1, t2;
    fg_jws_t              out;

    assert_int_equal(sign_text(signer,
                               "{\"sub\":\"alice\",\"exp\":1700000600,"
                               "\"iat\":1700000000,\"tenant_id\":\"t1\"}",
                               "{\"typ\":\"JWT\"}", &t1), FG_OK);
    assert_int_equal(sign_text(signer,
                               "{\"tenant_id\":\"t1\",\"iat\":1700000000,"
                               "\"exp\":1700000600,\"sub\":\"alice\"}",
                               "{\"typ\":\"JWT\"}", &t2), FG_OK);
    if (deterministic) {
        assert_string_equal((char *) t1.data, (char *) t2.data);
    }

    o.typ = "JWT";
    o.require_exp = 1;
    expect_ok(verifier, (char *) t1.data, &o, &out);
    assert_int_equal(out.alg, alg);
    assert_string_equal(fg_jwk_kid(out.key),
                        fg_jwk_kid(fg_keyset_get(signer, 0)));
    assert_string_equal(json_string_value(json_object_get(out.claims,
                                                          "sub")), "alice");
    assert_string_equal(json_string_value(json_object_get(out.header,
                                                          "typ")), "JWT");
    fg_jws_release(&out);

    expect_ok(verifier, (char *) t2.data, &o, &out);
    fg_jws_release(&out);

    fg_buffer_free(&t1);
    fg_buffer_free(&t2);
}


static void
test_round_trips(void **state)
{
    fx_t  *fx = *state;

    round_trip(fx->ed, fx->ed, FG_JWS_EDDSA, 1);
    round_trip(fx->es, fx->es, FG_JWS_ES256, 0);
    round_trip(fx->rs, fx->rs, FG_JWS_RS256, 1);
    round_trip(fx->oct, fx->oct, FG_JWS_HS256, 1);
}


static void
test_public_jwks(void **state)
{
    fx_t          *fx = *state;
    fg_buffer_t    t;
    fg_error_t     err;
    json_t        *pub, *c;
    size_t         i;

    assert_int_equal(fg_keyset_count(fx->pub), 3);
    for (i = 0; i < 3; i++) {
        assert_false(fg_jwk_is_private(fg_keyset_get(fx->pub, i)));
        pub = fg_jwk_public_json(fg_keyset_get(fx->pub, i));
        assert_non_null(pub);
        assert_null(json_object_get(pub, "d"));
        assert_null(json_object_get(pub, "p"));
        assert_string_equal(json_string_value(json_object_get(pub, "use")),
                            "sig");
        json_decref(pub);
    }

    pub = fg_jwk_public_json(fg_keyset_get(fx->es, 0));
    assert_string_equal(json_string_value(json_object_get(pub, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(pub, "crv")),
                        "P-256");
    assert_int_equal(json_string_length(json_object_get(pub, "x")), 43);
    assert_int_equal(json_string_length(json_object_get(pub, "y")), 43);
    json_decref(pub);

    pub = fg_jwk_public_json(fg_keyset_get(fx->rs, 0));
    assert_string_equal(json_string_value(json_object_get(pub, "e")), "AQAB");
    assert_string_equal(json_string_value(json_object_get(pub, "alg")),
                        "RS256");
    json_decref(pub);

    /* oct keys have no public form */
    assert_null(fg_jwk_public_json(fg_keyset_get(fx->oct, 0)));

    round_trip(fx->ed, fx->pub, FG_JWS_EDDSA, 1);
    round_trip(fx->es, fx->pub, FG_JWS_ES256, 0);
    round_trip(fx->rs, fx->pub, FG_JWS_RS256, 1);

    /* a public key cannot sign */
    c = json_pack("{si}", "exp", NOW + 10);
    fg_buffer_init(&t, 0);
    assert_int_equal(fg_jws_sign(fg_keyset_get(fx->pub, 0), NULL, c, &t,
                                 &err), FG_ERR_INVALID);
    assert_int_equal(t.len, 0);
    json_decref(c);
}


static void
test_pem(void **state)
{
    fx_t          *fx = *state;
    fg_keyset_t   *set;
    fg_buffer_t    t;
    fg_error_t     err;
    fg_jws_t       out;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    char           path[] = "/tmp/test_jose_XXXXXX";
    int            fd;

    assert_non_null(strstr((char *) fx->ed_pem.data,
                           "-----BEGIN PRIVATE KEY-----"));

    set = fg_keyset_from_pem((char *) fx->ed_pem.data, fx->ed_pem.len,
                             "ed1", &err);
    assert_non_null(set);
    assert_true(fg_jwk_is_private(fg_keyset_get(set, 0)));
    assert_int_equal(fg_jwk_alg(fg_keyset_get(set, 0)), FG_JWS_EDDSA);
    assert_int_equal(sign_text(set, "{\"a\":1}", NULL, &t), FG_OK);
    fg_keyset_free(set);
    expect_ok(fx->pub, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);

    /* the same through a file */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, fx->rs_pem.data, fx->rs_pem.len),
                     (ssize_t) fx->rs_pem.len);
    close(fd);
    set = fg_keyset_load_file(path, "rs1", &err);
    assert_non_null(set);
    assert_int_equal(fg_jwk_alg(fg_keyset_get(set, 0)), FG_JWS_RS256);
    assert_int_equal(sign_text(set, "{\"a\":1}", NULL, &t), FG_OK);
    fg_keyset_free(set);
    expect_ok(fx->pub, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);

    /* and a JWKS file */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\n ", 2), 2);
    assert_int_equal(write(fd, fx->oct_jwk.data, fx->oct_jwk.len),
                     (ssize_t) fx->oct_jwk.len);
    close(fd);
    set = fg_keyset_load_file(path, NULL, &err);
    assert_non_null(set);
    assert_int_equal(fg_jwk_alg(fg_keyset_get(set, 0)), FG_JWS_HS256);
    fg_keyset_free(set);
    unlink(path);

    assert_null(fg_keyset_load_file("/nonexistent/keys.json", NULL, &err));
    assert_int_equal(err.code, FG_ERR_IO);

    assert_null(fg_keyset_from_pem("not a pem", 9, "x", &err));
    assert_int_equal(err.code, FG_ERR_SYNTAX);
}


/* ------------------------------------------------------------ RFC vectors */

static void
test_rfc7515_a1(void **state)
{
    fg_jws_verify_opts_t  o = opts_at(1300819379, 0);
    fg_keyset_t          *set;
    fg_jws_t              out;

    (void) state;

    set = jwks(rfc7515_jwk);
    o.typ = "JWT";
    expect_ok(set, rfc7515_jws, &o, &out);
    assert_int_equal(out.alg, FG_JWS_HS256);
    assert_string_equal(json_string_value(json_object_get(out.claims,
                                                          "iss")), "joe");
    assert_true(json_is_true(json_object_get(out.claims,
                                             "http://example.com/is_root")));
    fg_jws_release(&out);

    /* one second later it has expired */
    o.now = 1300819380;
    expect_refused(set, rfc7515_jws, strlen(rfc7515_jws), &o, FG_ERR_INVALID,
                   "expired");
    o.leeway = 1;
    expect_ok(set, rfc7515_jws, &o, &out);
    fg_jws_release(&out);

    fg_keyset_free(set);
}


static void
test_rfc7515_a3(void **state)
{
    fg_jws_verify_opts_t  o = opts_at(1300819379, 0);
    fg_keyset_t          *set;
    fg_buffer_t           t;
    fg_jws_t              out;

    (void) state;

    set = jwks(rfc7515_a3_jwk);
    assert_true(fg_jwk_is_private(fg_keyset_get(set, 0)));
    expect_ok(set, rfc7515_a3_jws, &o, &out);
    assert_int_equal(out.alg, FG_JWS_ES256);
    fg_jws_release(&out);

    assert_int_equal(sign_text(set, "{\"sub\":\"x\"}", NULL, &t), FG_OK);
    expect_ok(set, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);

    /* d that is not the private key of (x, y) */
    expect_jwks_refused(
        "{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
        "\"d\":\"kpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}",
        "not a valid P-256 key");

    fg_keyset_free(set);
}


static void
test_rfc8037_a4(void **state)
{
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_keyset_t          *set;
    fg_buffer_t           t;
    fg_jws_t              out;
    json_t               *pub;
    char                  tampered[sizeof(rfc8037_jws)];

    (void) state;

    set = jwks(rfc8037_jwk);
    assert_true(fg_jwk_is_private(fg_keyset_get(set, 0)));
    pub = fg_jwk_public_json(fg_keyset_get(set, 0));
    assert_string_equal(json_string_value(json_object_get(pub, "x")),
                        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_string_equal(json_string_value(json_object_get(pub, "crv")),
                        "Ed25519");
    json_decref(pub);

    /*
     * The example's payload is plain text, not a JWT claims object: the
     * signature verifies (it is checked first) and the payload is then
     * refused for what it is.
     */
    expect_refused(set, rfc8037_jws, strlen(rfc8037_jws), &o, FG_ERR_SYNTAX,
                   "payload is not valid JSON");

    memcpy(tampered, rfc8037_jws, sizeof(rfc8037_jws));
    tampered[sizeof(rfc8037_jws) - 5] ^= 0x01;   /* 'K' -> 'J' */
    expect_refused(set, tampered, strlen(tampered), &o, FG_ERR_INVALID,
                   "bad EdDSA signature");

    /* the key signs and verifies claims */
    assert_int_equal(sign_text(set, "{\"sub\":\"x\"}", NULL, &t), FG_OK);
    expect_ok(set, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);

    /* x that is not d's public key */
    expect_jwks_refused(
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
        "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
        "\"x\":\"21qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
        "x is not the public key of d");

    fg_keyset_free(set);
}


/* ------------------------------------------------------------ refusals */

static void
test_alg_none_and_unknown(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t;
    char                  tok[256];

    fg_buffer_init(&t, 0);
    b64("{\"alg\":\"none\"}", 14, &t);
    snprintf(tok, sizeof(tok), "%s.eyJzdWIiOiJ4In0.", (char *) t.data);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "signature is empty");
    snprintf(tok, sizeof(tok), "%s.eyJzdWIiOiJ4In0.AAAA", (char *) t.data);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_INVALID,
                   "alg \"none\" is refused");
    fg_buffer_free(&t);

    raw_hs_default("{\"alg\":\"HS512\",\"kid\":\"hs1\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "alg is not EdDSA, ES256, RS256 or HS256");
    fg_buffer_free(&t);

    raw_hs_default("{\"kid\":\"hs1\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "header has no alg");
    fg_buffer_free(&t);

    assert_int_equal(fg_jws_alg_from_name("none"), FG_JWS_NONE);
    assert_int_equal(fg_jws_alg_from_name("hs256"), FG_JWS_NONE);
    assert_string_equal(fg_jws_alg_name(FG_JWS_ES256), "ES256");
}


static void
test_key_confusion(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_keyset_t          *fake;
    fg_buffer_t           jwk, t, pem;
    json_t               *pub;
    char                 *pubtext;
    EVP_PKEY             *pkey;
    BIO                  *bio;
    char                 *p;
    long                  n;

    /* the RSA public key as PEM, the attacker's HMAC secret */
    bio = BIO_new_mem_buf(fx->rs_pem.data, (int) fx->rs_pem.len);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    n = BIO_get_mem_data(bio, &p);
    fg_buffer_init(&pem, 0);
    assert_int_equal(fg_buffer_append(&pem, p, (size_t) n), FG_OK);
    BIO_free(bio);
    EVP_PKEY_free(pkey);

    oct_jwk_text(pem.data, pem.len, "rs1", &jwk);
    fake = jwks((char *) jwk.data);
    assert_int_equal(sign_text(fake, "{\"sub\":\"mallory\"}", NULL, &t),
                     FG_OK);
    expect_refused(fx->pub, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "alg HS256 does not fit the key's type (RS256)");
    expect_refused(fx->rs, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "does not fit");
    fg_buffer_free(&t);
    fg_keyset_free(fake);
    fg_buffer_free(&jwk);

    /* the same with the public JWK text as the secret, and no kid */
    pub = fg_jwk_public_json(fg_keyset_get(fx->rs, 0));
    pubtext = json_dumps(pub, JSON_COMPACT);
    raw_hs("{\"alg\":\"HS256\"}", "{\"sub\":\"mallory\"}",
           (unsigned char *) pubtext, strlen(pubtext), &t);
    expect_refused(fx->pub, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "no kid and no key fits alg HS256");
    fg_buffer_free(&t);
    free(pubtext);
    json_decref(pub);
    fg_buffer_free(&pem);

    /* RS256 named against an oct key */
    raw_hs_default("{\"alg\":\"RS256\",\"kid\":\"hs1\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "alg RS256 does not fit the key's type (HS256)");
    fg_buffer_free(&t);

    /* an EdDSA token presented to the ES256 key */
    assert_int_equal(sign_text(fx->ed, "{}", NULL, &t), FG_OK);
    expect_refused(fx->es, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "kid names no known key");
    fg_buffer_free(&t);
}


static void
test_kid_selection(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_keyset_t          *two, *mixed;
    fg_buffer_t           t;
    fg_jws_t              out;
    char                  text[1024];

    raw_hs_default("{\"alg\":\"HS256\",\"kid\":\"nope\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "kid names no known key");
    fg_buffer_free(&t);

    raw_hs_default("{\"alg\":\"HS256\",\"kid\":7}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "kid is not a string");
    fg_buffer_free(&t);

    /* no kid, one fitting key: fine */
    raw_hs_default("{\"alg\":\"HS256\"}", "{\"a\":1}", &t);
    expect_ok(fx->oct, (char *) t.data, &o, &out);
    fg_jws_release(&out);

    /* no kid, two oct keys: refused; an oct and an RSA key: fine */
    snprintf(text, sizeof(text), "{\"keys\":[%s,{\"kty\":\"oct\","
             "\"kid\":\"hs2\",\"k\":\"%s\"}]}", (char *) fx->oct_jwk.data,
             "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3"
             "Yj0iPS4hcgUuTwjAzZr1Z9CAow");
    two = jwks(text);
    expect_refused(two, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "no kid and several keys fit alg HS256");
    fg_keyset_free(two);

    snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", rfc8037_jwk,
             (char *) fx->oct_jwk.data);
    mixed = jwks(text);
    expect_ok(mixed, (char *) t.data, &o, &out);
    assert_string_equal(fg_jwk_kid(out.key), "hs1");
    fg_jws_release(&out);
    assert_null(fg_keyset_find(mixed, "nope"));
    assert_null(fg_keyset_get(mixed, 2));
    assert_string_equal(fg_jwk_kid(fg_keyset_get(mixed, 0)), "");
    fg_keyset_free(mixed);
    fg_buffer_free(&t);
}


static void
test_bad_signatures(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t, t2, sig;
    char                 *dot;
    unsigned char         junk[70];
    char                  tok[2048];

    /* tampered payload, for each algorithm */
    const fg_keyset_t    *sets[4] = { fx->ed, fx->es, fx->rs, fx->oct };
    const char           *msgs[4] = { "bad EdDSA signature",
                                      "bad ES256 signature",
                                      "bad RS256 signature",
                                      "bad HS256 signature" };
    size_t                i;

    for (i = 0; i < 4; i++) {
        assert_int_equal(sign_text(sets[i], "{\"sub\":\"alice\"}", NULL, &t),
                         FG_OK);
        assert_int_equal(sign_text(sets[i], "{\"sub\":\"admin\"}", NULL,
                                   &t2), FG_OK);
        /* header of t, payload of t2, signature of t */
        dot = strchr((char *) t.data, '.');
        snprintf(tok, sizeof(tok), "%.*s%.*s%s",
                 (int) (dot - (char *) t.data), (char *) t.data,
                 (int) (strrchr((char *) t2.data, '.')
                        - strchr((char *) t2.data, '.')),
                 strchr((char *) t2.data, '.'),
                 strrchr((char *) t.data, '.'));
        expect_refused(sets[i], tok, strlen(tok), &o, FG_ERR_INVALID,
                       msgs[i]);
        fg_buffer_free(&t);
        fg_buffer_free(&t2);
    }

    /* ES256 signatures must be the 64-byte r||s, not DER or other sizes */
    memset(junk, 0x11, sizeof(junk));
    assert_int_equal(sign_text(fx->es, "{}", NULL, &t), FG_OK);
    dot = strrchr((char *) t.data, '.');
    for (i = 63; i <= 70; i += 7) {
        fg_buffer_init(&sig, 0);
        b64(junk, i, &sig);
        snprintf(tok, sizeof(tok), "%.*s.%s", (int) (dot - (char *) t.data),
                 (char *) t.data, (char *) sig.data);
        expect_refused(fx->es, tok, strlen(tok), &o, FG_ERR_INVALID,
                       "ES256 signature is not 64 bytes long");
        fg_buffer_free(&sig);
    }
    /* all-zero r and s */
    memset(junk, 0, sizeof(junk));
    fg_buffer_init(&sig, 0);
    b64(junk, 64, &sig);
    snprintf(tok, sizeof(tok), "%.*s.%s", (int) (dot - (char *) t.data),
             (char *) t.data, (char *) sig.data);
    expect_refused(fx->es, tok, strlen(tok), &o, FG_ERR_INVALID,
                   "bad ES256 signature");
    fg_buffer_free(&sig);
    fg_buffer_free(&t);

    /* truncated HS256 and RS256 signatures */
    raw_hs_default("{\"alg\":\"HS256\"}", "{}", &t);
    dot = strrchr((char *) t.data, '.');
    fg_buffer_init(&sig, 0);
    b64(junk, 31, &sig);
    snprintf(tok, sizeof(tok), "%.*s.%s", (int) (dot - (char *) t.data),
             (char *) t.data, (char *) sig.data);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_INVALID,
                   "HS256 signature is not 32 bytes long");
    fg_buffer_free(&sig);
    fg_buffer_free(&t);

    assert_int_equal(sign_text(fx->rs, "{}", NULL, &t), FG_OK);
    expect_refused(fx->rs, (char *) t.data, t.len - 4, &o, FG_ERR_INVALID,
                   "RS256 signature is not 384 bytes long");
    fg_buffer_free(&t);

    /* refusals leave nothing on OpenSSL's error queue */
    assert_int_equal(ERR_peek_error(), 0);
}


static void
test_malformed(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t;
    char                  tok[1024];
    char                 *d1, *d2;
    size_t                i;
    static const char    *parts[] = {
        "", "abc", "a.b", "a.b.c.d", "..", "a..c", ".b.c", "a.b."
    };
    static const char    *parts_msg[] = {
        "three parts", "three parts", "three parts", "more than three",
        "header is empty", "payload is empty", "header is empty",
        "signature is empty"
    };

    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        expect_refused(fx->oct, parts[i], strlen(parts[i]), &o,
                       FG_ERR_SYNTAX, parts_msg[i]);
    }

    /* a good token, spoiled in base64url ways */
    raw_hs_default("{\"alg\":\"HS256\"}", "{\"sub\":\"abc\"}", &t);
    d1 = strchr((char *) t.data, '.');
    d2 = strrchr((char *) t.data, '.');

    snprintf(tok, sizeof(tok), "%.*s=%s", (int) (d2 - (char *) t.data),
             (char *) t.data, d2);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "payload is not strict base64url");
    snprintf(tok, sizeof(tok), "%s=", (char *) t.data);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "signature is not strict base64url");
    snprintf(tok, sizeof(tok), "%.*s %s", (int) (d1 - (char *) t.data),
             (char *) t.data, d1);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "header is not strict base64url");
    snprintf(tok, sizeof(tok), "%s\n", (char *) t.data);
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "signature is not strict base64url");

    memcpy(tok, t.data, t.len + 1);
    tok[d2 - (char *) t.data + 3] = '+';
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "signature is not strict base64url");
    memcpy(tok, t.data, t.len + 1);
    tok[d1 - (char *) t.data + 2] = '/';
    expect_refused(fx->oct, tok, strlen(tok), &o, FG_ERR_SYNTAX,
                   "payload is not strict base64url");
    fg_buffer_free(&t);

    /* header and payload JSON */
    raw_hs_default("[\"alg\",\"HS256\"]", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "header is not a JSON object");
    fg_buffer_free(&t);
    raw_hs_default("{\"alg\":\"HS256\"", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "header is not valid JSON");
    fg_buffer_free(&t);
    raw_hs_default("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "duplicate keys");
    fg_buffer_free(&t);
    raw_hs_default("{\"alg\":\"HS256\"}", "[1]", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "payload is not a JSON object");
    fg_buffer_free(&t);
    raw_hs_default("{\"alg\":\"HS256\"}", "{\"sub\":1,\"sub\":2}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "payload is not valid JSON (or has duplicate keys)");
    fg_buffer_free(&t);
    raw_hs_default("{\"alg\":\"HS256\"}", "{} x", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_SYNTAX,
                   "payload is not valid JSON");
    fg_buffer_free(&t);

    /* crit */
    raw_hs_default("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{}",
                   &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "crit");
    fg_buffer_free(&t);
}


static void
test_length(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t;
    fg_jws_t              out;
    char                 *big;
    char                  claims[FG_JWS_MAX_TOKEN];

    big = malloc(FG_JWS_MAX_TOKEN + 1);
    assert_non_null(big);
    memset(big, 'A', FG_JWS_MAX_TOKEN + 1);
    expect_refused(fx->oct, big, FG_JWS_MAX_TOKEN + 1, &o, FG_ERR_LIMIT,
                   "token longer than 16384 bytes");
    free(big);

    /* a real token over a caller's bound, accepted under a larger one */
    memset(claims, 0, sizeof(claims));
    strcpy(claims, "{\"pad\":\"");
    memset(claims + 8, 'x', 600);
    strcat(claims, "\"}");
    raw_hs_default("{\"alg\":\"HS256\"}", claims, &t);
    o.max_len = 500;
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_LIMIT,
                   "token longer than 500 bytes");
    o.max_len = t.len;
    expect_ok(fx->oct, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);
}


/* HS256 token with claims, verified at NOW with leeway: rc and message. */
static void
check_time(const fg_keyset_t *set, const char *claims, unsigned leeway,
    int code, const char *what)
{
    fg_jws_verify_opts_t  o = opts_at(NOW, leeway);
    fg_buffer_t           t;
    fg_jws_t              out;

    raw_hs_default("{\"alg\":\"HS256\"}", claims, &t);
    if (code == FG_OK) {
        expect_ok(set, (char *) t.data, &o, &out);
        fg_jws_release(&out);
    } else {
        expect_refused(set, (char *) t.data, t.len, &o, code, what);
    }
    fg_buffer_free(&t);
}


static void
test_time_claims(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t;
    const fg_keyset_t    *s = fx->oct;

    /* exp: valid while now < exp + leeway */
    check_time(s, "{\"exp\":1700000001}", 0, FG_OK, NULL);
    check_time(s, "{\"exp\":1700000000}", 0, FG_ERR_INVALID, "expired");
    check_time(s, "{\"exp\":1700000000}", 60, FG_OK, NULL);
    check_time(s, "{\"exp\":1699999941}", 60, FG_OK, NULL);
    check_time(s, "{\"exp\":1699999940}", 60, FG_ERR_INVALID, "expired");
    check_time(s, "{\"exp\":-9223372036854775807}", 60, FG_ERR_INVALID,
               "expired");

    /* nbf: valid from nbf - leeway */
    check_time(s, "{\"nbf\":1700000000}", 0, FG_OK, NULL);
    check_time(s, "{\"nbf\":1700000001}", 0, FG_ERR_INVALID, "not valid yet");
    check_time(s, "{\"nbf\":1700000060}", 60, FG_OK, NULL);
    check_time(s, "{\"nbf\":1700000061}", 60, FG_ERR_INVALID,
               "not valid yet");
    check_time(s, "{\"nbf\":9223372036854775807}", 60, FG_ERR_INVALID,
               "not valid yet");

    /* iat in the future beyond the leeway */
    check_time(s, "{\"iat\":1700000060}", 60, FG_OK, NULL);
    check_time(s, "{\"iat\":1700000061}", 60, FG_ERR_INVALID,
               "issued in the future");
    check_time(s, "{\"iat\":1}", 0, FG_OK, NULL);

    /* not integers */
    check_time(s, "{\"exp\":1700000600.5}", 0, FG_ERR_INVALID,
               "claim exp is not an integer");
    check_time(s, "{\"exp\":\"1700000600\"}", 0, FG_ERR_INVALID,
               "claim exp is not an integer");
    check_time(s, "{\"nbf\":null}", 0, FG_ERR_INVALID,
               "claim nbf is not an integer");
    check_time(s, "{\"iat\":1e9}", 0, FG_ERR_INVALID,
               "claim iat is not an integer");

    /* require_exp */
    raw_hs_default("{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}", &t);
    o.require_exp = 1;
    expect_refused(s, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "no exp claim");
    fg_buffer_free(&t);
}


static void
test_typ(void **state)
{
    fx_t                 *fx = *state;
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_buffer_t           t;
    fg_jws_t              out;

    o.typ = "JWT";

    raw_hs_default("{\"alg\":\"HS256\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "typ is not the expected one");
    fg_buffer_free(&t);

    raw_hs_default("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{}", &t);
    expect_refused(fx->oct, (char *) t.data, t.len, &o, FG_ERR_INVALID,
                   "typ is not the expected one");
    fg_buffer_free(&t);

    raw_hs_default("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{}", &t);
    expect_ok(fx->oct, (char *) t.data, &o, &out);
    fg_jws_release(&out);
    fg_buffer_free(&t);
}


/* --------------------------------------------------------------- key sets */

/* A JWKS text of an RSA public key of bits. */
static void
rsa_jwk_text(unsigned bits, fg_buffer_t *out)
{
    EVP_PKEY       *pkey;
    BIGNUM         *n = NULL, *e = NULL;
    unsigned char   buf[1024];
    fg_buffer_t     nb, eb;
    char            text[2048];
    int             len;

    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) bits);
    assert_non_null(pkey);
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n),
                     1);
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e),
                     1);
    fg_buffer_init(&nb, 0);
    fg_buffer_init(&eb, 0);
    len = BN_bn2bin(n, buf);
    b64(buf, (size_t) len, &nb);
    len = BN_bn2bin(e, buf);
    b64(buf, (size_t) len, &eb);
    snprintf(text, sizeof(text),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"%s\","
             "\"e\":\"%s\"}]}", (char *) nb.data, (char *) eb.data);
    fg_buffer_init(out, 0);
    assert_int_equal(fg_buffer_append(out, text, strlen(text)), FG_OK);

    fg_buffer_free(&nb);
    fg_buffer_free(&eb);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pkey);
}


/* Append "name":"b64(param)" of pkey to out, with a leading comma. */
static void
jwk_member(EVP_PKEY *pkey, const char *name, const char *param,
    fg_buffer_t *out)
{
    unsigned char  buf[512];
    BIGNUM        *bn = NULL;
    char           head[16];
    int            n;

    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    snprintf(head, sizeof(head), ",\"%s\":\"", name);
    assert_int_equal(fg_buffer_append(out, head, strlen(head)), FG_OK);
    b64(buf, (size_t) n, out);
    assert_int_equal(fg_buffer_append(out, "\"", 1), FG_OK);
}


static void
test_rsa_private_jwk(void **state)
{
    static const char  *names[] = { "n", "e", "d", "p", "q", "dp", "dq",
                                    "qi" };
    static const char  *params[] = {
        OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
        OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
        OSSL_PKEY_PARAM_RSA_COEFFICIENT1
    };
    fg_jws_verify_opts_t  o = opts_at(NOW, 0);
    fg_keyset_t          *set;
    fg_buffer_t           text, t;
    fg_jws_t              out;
    EVP_PKEY             *pkey;
    size_t                i;

    (void) state;

    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    assert_non_null(pkey);

    /* all members but qi: refused */
    fg_buffer_init(&text, 0);
    assert_int_equal(fg_buffer_append(&text, "{\"kty\":\"RSA\"", 12), FG_OK);
    for (i = 0; i < 7; i++) {
        jwk_member(pkey, names[i], params[i], &text);
    }
    assert_int_equal(fg_buffer_append(&text, "}", 1), FG_OK);
    expect_jwks_refused((char *) text.data,
                        "member \"qi\" is missing or not a string");

    /* with qi: signs, and the public JWK verifies */
    text.len--;
    jwk_member(pkey, names[7], params[7], &text);
    assert_int_equal(fg_buffer_append(&text, ",\"kid\":\"r2\"}", 12), FG_OK);
    set = jwks((char *) text.data);
    assert_true(fg_jwk_is_private(fg_keyset_get(set, 0)));
    assert_int_equal(sign_text(set, "{\"a\":1}", NULL, &t), FG_OK);
    expect_ok(set, (char *) t.data, &o, &out);
    assert_int_equal(out.alg, FG_JWS_RS256);
    fg_jws_release(&out);
    fg_buffer_free(&t);
    fg_keyset_free(set);

    /* d of another key: the pair does not match */
    text.len = 12;
    jwk_member(pkey, names[0], params[0], &text);
    EVP_PKEY_free(pkey);
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    assert_non_null(pkey);
    for (i = 1; i < 8; i++) {
        jwk_member(pkey, names[i], params[i], &text);
    }
    assert_int_equal(fg_buffer_append(&text, "}", 1), FG_OK);
    expect_jwks_refused((char *) text.data, "not a valid RSA key");

    EVP_PKEY_free(pkey);
    fg_buffer_free(&text);
}


static void
test_keyset_refusals(void **state)
{
    fx_t          *fx = *state;
    fg_buffer_t    b;
    fg_keyset_t   *set;
    fg_error_t     err;
    EVP_PKEY      *pkey;
    BIO           *bio;
    char          *p;
    long           n;
    char           text[1024];

    /* RSA below 2048 bits, as a JWK and as PEM */
    rsa_jwk_text(1024, &b);
    expect_jwks_refused((char *) b.data, "RSA key below 2048 bits");
    fg_buffer_free(&b);

    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    assert_non_null(pkey);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    n = BIO_get_mem_data(bio, &p);
    set = fg_keyset_from_pem(p, (size_t) n, "r", &err);
    assert_null(set);
    assert_non_null(strstr(err.msg, "RSA key not of 2048 to 8192 bits"));
    BIO_free(bio);
    EVP_PKEY_free(pkey);

    /* a 2048-bit public key is fine */
    rsa_jwk_text(2048, &b);
    set = jwks((char *) b.data);
    assert_int_equal(fg_jwk_alg(fg_keyset_get(set, 0)), FG_JWS_RS256);
    assert_false(fg_jwk_is_private(fg_keyset_get(set, 0)));
    fg_keyset_free(set);
    fg_buffer_free(&b);

    /* short oct key */
    oct_jwk_text(hs_secret, 31, "short", &b);
    expect_jwks_refused((char *) b.data, "oct key shorter than 32 bytes");
    fg_buffer_free(&b);

    /* duplicate kids: refused, whatever the key types */
    snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}",
             (char *) fx->oct_jwk.data, (char *) fx->oct_jwk.data);
    expect_jwks_refused(text, "JWK 1 (kid \"hs1\"): duplicate kid");

    /* alg and use that do not fit, unknown kty and curves */
    expect_jwks_refused("{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":"
                        "\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0g"
                        "ZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}",
                        "alg is not the algorithm of its kty");
    expect_jwks_refused("{\"kty\":\"oct\",\"use\":\"enc\",\"k\":"
                        "\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0g"
                        "ZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}",
                        "use is not \"sig\"");
    expect_jwks_refused("{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzK="
                        "\"}", "member \"k\" is not valid base64url");
    expect_jwks_refused("{\"keys\":[{\"kty\":\"XYZ\"}]}",
                        "JWK 0: missing or unknown kty");
    expect_jwks_refused("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}",
                        "crv is not \"Ed25519\"");
    expect_jwks_refused("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\","
                        "\"y\":\"AA\"}", "crv is not \"P-256\"");
    /* a point not on the curve */
    expect_jwks_refused("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                        "\"y\":"
                        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                        "not a valid P-256 key");
    expect_jwks_refused("{\"keys\":[]}", "array of 1 to 64 keys");
    expect_jwks_refused("{\"keys\":{}}", "array of 1 to 64 keys");
    expect_jwks_refused("{\"foo\":1}", "neither a JWKS");
    expect_jwks_refused("[]", "not a JSON object");
    expect_jwks_refused("{\"keys\":[1]}", "JWK 0: not a JSON object");
    expect_jwks_refused("{\"keys\":[],\"keys\":[]}", "duplicate keys");
    expect_jwks_refused("{\"kty\":\"oct\",\"kid\":\"\",\"k\":\"AA\"}",
                        "kid is not a string of 1 to 128 bytes");

    /* keygen refuses HS256 and a missing kid */
    assert_null(fg_keyset_generate(FG_JWS_HS256, "h", NULL, &err));
    assert_null(fg_keyset_generate(FG_JWS_EDDSA, NULL, NULL, &err));

    /* the set is bounded */
    {
        fg_buffer_t  big;
        int          i;

        fg_buffer_init(&big, 0);
        assert_int_equal(fg_buffer_append(&big, "{\"keys\":[", 9), FG_OK);
        for (i = 0; i <= FG_JWK_MAX_KEYS; i++) {
            snprintf(text, sizeof(text), "%s{\"kty\":\"oct\",\"kid\":\"k%d\","
                     "\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1q"
                     "S0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}",
                     i ? "," : "", i);
            assert_int_equal(fg_buffer_append(&big, text, strlen(text)),
                             FG_OK);
        }
        assert_int_equal(fg_buffer_append(&big, "]}", 3), FG_OK);
        expect_jwks_refused((char *) big.data, "array of 1 to 64 keys");
        fg_buffer_free(&big);
    }
}


static void
test_sign_refusals(void **state)
{
    fx_t         *fx = *state;
    fg_buffer_t   t;

    assert_int_equal(sign_text(fx->oct, "{}", "{\"alg\":\"none\"}", &t),
                     FG_ERR_INVALID);
    fg_buffer_free(&t);
    assert_int_equal(sign_text(fx->oct, "{}", "{\"crit\":[]}", &t),
                     FG_ERR_INVALID);
    fg_buffer_free(&t);
    assert_int_equal(sign_text(fx->oct, "[]", NULL, &t), FG_ERR_INVALID);
    fg_buffer_free(&t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_public_jwks),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_rfc7515_a1),
        cmocka_unit_test(test_rfc7515_a3),
        cmocka_unit_test(test_rfc8037_a4),
        cmocka_unit_test(test_alg_none_and_unknown),
        cmocka_unit_test(test_key_confusion),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_bad_signatures),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_typ),
        cmocka_unit_test(test_rsa_private_jwk),
        cmocka_unit_test(test_keyset_refusals),
        cmocka_unit_test(test_sign_refusals),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

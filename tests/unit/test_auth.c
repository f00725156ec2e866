/*
 * test_auth.c -- the caller's identity: a signed token verified and turned
 * into an AuthContext record that validates against its schema and holds
 * the token's hash but never the token; each claim refusal; the
 * capability gate and the glob matcher; the token cache (hit, miss,
 * expiry at exp, eviction, stats); approval tokens bound to one call.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_auth.h"
#include "fg_glob.h"
#include "fg_jcs.h"
#include "test_util.h"

#define NOW       1700000000
#define EXP       (NOW + 3600)
#define APPROVAL  "foxgov-approval+jwt"

#define INPUT_SHA256 \
    "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
#define OTHER_SHA256 \
    "0000000000000000000000000000000000000000000000000000000000000001"

typedef struct {
    fg_keyset_t   *caller;      /* kid "caller1", EdDSA */
    fg_keyset_t   *approver;    /* kid "appr1", EdDSA */
    fg_keyset_t   *stranger;    /* kid "appr1" too, another key */
    fg_records_t  *records;
} fx_t;

static fx_t  fx;


/* ---------------------------------------------------------------- helpers */

static int
setup(void **state)
{
    fg_error_t  err;

    (void) state;
    fx.caller = fg_keyset_generate(FG_JWS_EDDSA, "caller1", NULL, &err);
    fx.approver = fg_keyset_generate(FG_JWS_EDDSA, "appr1", NULL, &err);
    fx.stranger = fg_keyset_generate(FG_JWS_EDDSA, "appr1", NULL, &err);
    fx.records = fg_records_new(&err);
    return (fx.caller && fx.approver && fx.stranger && fx.records) ? 0 : -1;
}


static int
teardown(void **state)
{
    (void) state;
    fg_keyset_free(fx.caller);
    fg_keyset_free(fx.approver);
    fg_keyset_free(fx.stranger);
    fg_records_free(fx.records);
    return 0;
}


/* The claims of a good caller token. */
static json_t *
good_claims(void)
{
    json_t  *c;

    c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s,s,s], s:s, s:s,"
                  " s:I, s:I}",
                  "iss", "https://idp.example.com",
                  "sub", "alice@example.com",
                  "tenant_id", "acme",
                  "workspace_id", "ws-01",
                  "environment", "prod",
                  "capabilities", "model:gpt-4o*", "tool:servicenow.*:write",
                  "model:gpt-4o*", "tool:github.repo:read",
                  "acr", "urn:acr:mfa",
                  "jti", "tok-123",
                  "iat", (json_int_t) NOW - 60,
                  "exp", (json_int_t) EXP);
    assert_non_null(c);
    return c;
}


/* Sign claims with the only key of set, header typ (may be NULL). */
static void
sign(const fg_keyset_t *set, const char *typ, const json_t *claims,
    fg_buffer_t *out)
{
    json_t      *extra;
    fg_error_t   err;

    extra = typ ? json_pack("{s:s}", "typ", typ) : NULL;
    fg_buffer_init(out, 0);
    if (fg_jws_sign(fg_keyset_get(set, 0), extra, claims, out, &err)
        != FG_OK)
    {
        fail_msg("sign: %s", err.msg);
    }
    assert_int_equal(fg_buffer_append(out, "", 1), FG_OK);
    out->len--;
    json_decref(extra);
}


static void
trace_init(fg_trace_t *t)
{
    strcpy(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(t->span_id, "00f067aa0ba902b7");
    t->parent_span_id[0] = '\0';
}


static fg_auth_args_t
args_init(const fg_trace_t *t)
{
    fg_auth_args_t  a;

    memset(&a, 0, sizeof(a));
    a.token_source = FG_AUTH_SOURCE_AUTHORIZATION;
    a.execution_id = "01890a5d-ac96-774b-bcce-b302099a8057";
    a.trace = t;
    a.now_sec = NOW;
    a.now_nsec = 118000000;
    return a;
}


static void
assert_valid(const json_t *rec)
{
    fg_schema_report_t  report;
    unsigned            i;

    if (fg_record_validate(fx.records, rec, &report) != FG_OK) {
        for (i = 0; i < report.count && i < FG_SCHEMA_MAX_REPORT; i++) {
            print_error("%s\n", report.line[i]);
        }
        fail_msg("record does not validate");
    }
}


/* Verify token with the caller keys; fails the test on refusal. */
static void
verify_caller(const fg_buffer_t *tok, fg_jws_t *jws)
{
    fg_jws_verify_opts_t  o;
    fg_error_t            err;

    memset(&o, 0, sizeof(o));
    o.now = NOW;
    o.require_exp = 1;
    if (fg_jws_verify(fx.caller, (const char *) tok->data, tok->len, &o, jws,
                      &err) != FG_OK)
    {
        fail_msg("verify: %s", err.msg);
    }
}


/* fg_auth_check_claims() refuses c with a message containing want. */
static void
assert_refused(json_t *c, const char *want)
{
    fg_error_t  err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(fg_auth_check_claims(c, &err), FG_ERR_INVALID);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("got \"%s\", want \"%s\"", err.msg, want);
    }
    json_decref(c);
}


static json_t *
with(const char *name, json_t *v)
{
    json_t  *c;

    c = good_claims();
    assert_int_equal(json_object_set_new(c, name, v), 0);
    return c;
}


static json_t *
without(const char *name)
{
    json_t  *c;

    c = good_claims();
    assert_int_equal(json_object_del(c, name), 0);
    return c;
}


static char *
repeat(char ch, size_t n)
{
    char  *s;

    s = malloc(n + 1);
    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}


/* ---------------------------------------------------------- AuthContext */

static void
test_record_from_token(void **state)
{
    fg_buffer_t     tok, canon;
    fg_jws_t        jws;
    fg_trace_t      t;
    fg_auth_args_t  a;
    fg_error_t      err;
    fg_sink_t       sink;
    unsigned char   md[FG_SHA256_LEN], stage[256];
    char            hex[FG_SHA256_HEX_LEN + 1];
    json_t         *claims, *rec, *caps;
    const char     *dot;

    (void) state;
    claims = good_claims();
    sign(fx.caller, "JWT", claims, &tok);
    verify_caller(&tok, &jws);

    assert_int_equal(fg_sha256(tok.data, tok.len, md), FG_OK);
    fg_hex_sha256(md, hex);
    trace_init(&t);
    a = args_init(&t);

    rec = fg_auth_context_record(&jws, hex, &a, &err);
    if (rec == NULL) {
        fail_msg("record: %s", err.msg);
    }
    assert_valid(rec);

    assert_string_equal(json_string_value(json_object_get(rec,
                        "token_sha256")), hex);
    assert_string_equal(json_string_value(json_object_get(rec, "tenant_id")),
                        "acme");
    assert_string_equal(json_string_value(json_object_get(rec, "principal")),
                        "alice@example.com");
    assert_string_equal(json_string_value(json_object_get(rec, "kid")),
                        "caller1");
    assert_string_equal(json_string_value(json_object_get(rec, "alg")),
                        "EdDSA");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "token_source")), "authorization");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "authenticated_at")), "2023-11-14T22:13:20.118Z");
    assert_string_equal(json_string_value(json_object_get(rec, "issued_at")),
                        "2023-11-14T22:12:20Z");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "expires_at")), "2023-11-14T23:13:20Z");
    assert_string_equal(json_string_value(json_object_get(rec, "acr")),
                        "urn:acr:mfa");
    assert_string_equal(json_string_value(json_object_get(rec, "jti")),
                        "tok-123");

    /* duplicates removed, first occurrence kept, token order */
    caps = json_object_get(rec, "capabilities");
    assert_int_equal(json_array_size(caps), 3);
    assert_string_equal(json_string_value(json_array_get(caps, 0)),
                        "model:gpt-4o*");
    assert_string_equal(json_string_value(json_array_get(caps, 1)),
                        "tool:servicenow.*:write");
    assert_string_equal(json_string_value(json_array_get(caps, 2)),
                        "tool:github.repo:read");

    /* no part of the token in the canonical bytes */
    fg_buffer_init(&canon, 0);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));
    assert_int_equal(fg_jcs_canonicalize_json(rec, 0, &sink, &err), FG_OK);
    assert_int_equal(fg_sink_drain(&sink), FG_OK);
    assert_null(memmem(canon.data, canon.len, tok.data, tok.len));
    dot = strrchr((const char *) tok.data, '.');
    assert_non_null(dot);
    assert_null(memmem(canon.data, canon.len, dot + 1, strlen(dot + 1)));
    dot = strchr((const char *) tok.data, '.');
    assert_null(memmem(canon.data, canon.len, tok.data,
                       (size_t) (dot - (const char *) tok.data)));

    fg_buffer_free(&canon);
    json_decref(rec);
    fg_jws_release(&jws);
    fg_buffer_free(&tok);
    json_decref(claims);
}


static void
test_record_nulls(void **state)
{
    fg_buffer_t     tok;
    fg_jws_t        jws;
    fg_trace_t      t;
    fg_auth_args_t  a;
    fg_error_t      err;
    json_t         *claims, *rec;

    (void) state;
    claims = good_claims();
    json_object_del(claims, "iat");
    json_object_del(claims, "acr");
    json_object_del(claims, "jti");
    sign(fx.caller, NULL, claims, &tok);
    verify_caller(&tok, &jws);
    trace_init(&t);
    strcpy(t.parent_span_id, "b7ad6b7169203331");
    a = args_init(&t);
    a.token_source = FG_AUTH_SOURCE_X_API_KEY;

    rec = fg_auth_context_record(&jws, INPUT_SHA256, &a, &err);
    assert_non_null(rec);
    assert_valid(rec);
    assert_true(json_is_null(json_object_get(rec, "issued_at")));
    assert_true(json_is_null(json_object_get(rec, "acr")));
    assert_true(json_is_null(json_object_get(rec, "jti")));
    json_decref(rec);

    /* no kid in the header: kid null */
    json_object_del(jws.header, "kid");
    rec = fg_auth_context_record(&jws, INPUT_SHA256, &a, &err);
    assert_non_null(rec);
    assert_valid(rec);
    assert_true(json_is_null(json_object_get(rec, "kid")));
    json_decref(rec);

    /* unknown token source, bad hash */
    a.token_source = "cookie";
    assert_null(fg_auth_context_record(&jws, INPUT_SHA256, &a, &err));
    assert_non_null(strstr(err.msg, "token source"));
    a.token_source = FG_AUTH_SOURCE_API_KEY;
    assert_null(fg_auth_context_record(&jws, "ABC", &a, &err));
    assert_non_null(strstr(err.msg, "token_sha256"));

    /* claims that do not pass */
    json_object_set_new(jws.claims, "tenant_id", json_string("ACME"));
    assert_null(fg_auth_context_record(&jws, INPUT_SHA256, &a, &err));
    assert_non_null(strstr(err.msg, "claim tenant_id"));

    fg_jws_release(&jws);
    fg_buffer_free(&tok);
    json_decref(claims);
}


static void
test_claims_ok(void **state)
{
    json_t      *c;
    fg_error_t   err;
    char        *s;

    (void) state;
    c = good_claims();
    assert_int_equal(fg_auth_check_claims(c, &err), FG_OK);
    json_decref(c);

    /* at the bounds */
    s = repeat('a', 63);
    c = with("tenant_id", json_string(s));
    assert_int_equal(fg_auth_check_claims(c, &err), FG_OK);
    json_decref(c);
    free(s);

    /* 512 characters of two bytes each: within the character bound */
    s = malloc(1025);
    assert_non_null(s);
    for (size_t i = 0; i < 512; i++) {
        s[2 * i] = (char) 0xc3;
        s[2 * i + 1] = (char) 0xa9;
    }
    s[1024] = '\0';
    c = with("iss", json_string(s));
    assert_int_equal(fg_auth_check_claims(c, &err), FG_OK);
    json_decref(c);
    free(s);
}


static void
test_claims_refused(void **state)
{
    json_t  *caps;
    char    *s;
    size_t   i;

    (void) state;
    assert_refused(with("tenant_id", json_string("../etc")),
                   "claim tenant_id does not match "
                   "^[a-z0-9][a-z0-9_-]{0,62}$");
    assert_refused(with("tenant_id", json_string("Acme")),
                   "claim tenant_id does not match");
    s = repeat('a', 64);
    assert_refused(with("tenant_id", json_string(s)),
                   "claim tenant_id is longer than 63 characters");
    free(s);
    assert_refused(with("tenant_id", json_integer(7)),
                   "claim tenant_id is not a string");

    assert_refused(with("capabilities", json_string("model:*")),
                   "claim capabilities is not an array");
    assert_refused(with("capabilities",
                        json_pack("[s,s,s,i]", "model:a", "model:b",
                                  "tool:c:read", 4)),
                   "claim capabilities: item 3 is not a string");
    caps = json_array();
    for (i = 0; i < 257; i++) {
        json_array_append_new(caps, json_string("model:x"));
    }
    assert_refused(with("capabilities", caps),
                   "claim capabilities has more than 256 items");
    assert_refused(with("capabilities", json_pack("[s]", "admin:*")),
                   "claim capabilities: item 0 does not match "
                   "^(model|tool):[!-~]+$");
    assert_refused(with("capabilities", json_pack("[s]", "model:")),
                   "claim capabilities: item 0 does not match");
    assert_refused(with("capabilities", json_pack("[s]", "model:gpt 4")),
                   "claim capabilities: item 0 does not match");

    assert_refused(without("sub"), "claim sub missing");
    assert_refused(with("sub", json_string("")), "claim sub is empty");
    assert_refused(with("sub", json_string("al\nice")),
                   "claim sub has a control character");
    assert_refused(without("exp"), "claim exp missing");
    assert_refused(with("exp", json_real(1.5)),
                   "claim exp is not an integer");
    assert_refused(with("exp", json_integer(253402300800LL)),
                   "claim exp is out of range");
    assert_refused(with("iat", json_integer(-1)), "claim iat is out of range");
    s = repeat('i', 513);
    assert_refused(with("iss", json_string(s)),
                   "claim iss is longer than 512 characters");
    free(s);
    assert_refused(without("iss"), "claim iss missing");
    assert_refused(with("workspace_id", json_string("ws/1")),
                   "claim workspace_id does not match");
    assert_refused(without("environment"), "claim environment missing");
    assert_refused(with("acr", json_null()), "claim acr is not a string");
    assert_refused(with("jti", json_string("a b")),
                   "claim jti is not printable ASCII");
    assert_refused(json_array(), "claims are not an object");
}


/* ------------------------------------------------------------ capability */

static void
test_capable(void **state)
{
    json_t  *caps;

    (void) state;
    caps = json_pack("[s,s,s]", "model:gpt-4o*", "tool:servicenow.*:write",
                     "tool:github.repo:read");

    /* exact and glob */
    assert_true(fg_auth_capable(caps, "model:gpt-4o"));
    assert_true(fg_auth_capable(caps, "model:gpt-4o-2024-08-06"));
    assert_true(fg_auth_capable(caps, "tool:servicenow.incident:write"));
    assert_true(fg_auth_capable(caps, "tool:github.repo:read"));
    assert_false(fg_auth_capable(caps, "model:gpt-3.5-turbo"));
    assert_false(fg_auth_capable(caps, "model:xgpt-4o"));

    /* tool action mismatch */
    assert_false(fg_auth_capable(caps, "tool:servicenow.incident:read"));
    assert_false(fg_auth_capable(caps, "tool:github.repo:write"));

    /* kinds do not cross */
    assert_false(fg_auth_capable(caps, "tool:gpt-4o"));
    json_array_append_new(caps, json_string("tool:*"));
    assert_true(fg_auth_capable(caps, "tool:anything.at:all"));
    assert_false(fg_auth_capable(caps, "model:claude-3"));
    assert_false(fg_auth_capable(caps, "other:x"));
    assert_false(fg_auth_capable(caps, "gpt-4o"));
    assert_false(fg_auth_capable(caps, NULL));
    json_decref(caps);

    /* a malformed glob matches nothing */
    caps = json_pack("[s,s]", "model:gpt-[4", "tool:x\\");
    assert_false(fg_auth_capable(caps, "model:gpt-[4"));
    assert_false(fg_auth_capable(caps, "model:gpt-4"));
    assert_false(fg_auth_capable(caps, "tool:x\\"));
    json_decref(caps);

    caps = json_pack("[i,s]", 3, "model:claude-*");
    assert_true(fg_auth_capable(caps, "model:claude-3"));
    json_decref(caps);
    assert_false(fg_auth_capable(NULL, "model:x"));
}


static void
test_glob(void **state)
{
    (void) state;
#define G(p, s)  fg_glob_match(p, strlen(p), s, strlen(s))
    assert_int_equal(G("abc", "abc"), 1);
    assert_int_equal(G("a*c", "abbbc"), 1);
    assert_int_equal(G("a*c", "abbb"), 0);
    assert_int_equal(G("a?c", "abc"), 1);
    assert_int_equal(G("[a-c]x", "bx"), 1);
    assert_int_equal(G("[!a-c]x", "bx"), 0);
    assert_int_equal(G("[^a-c]x", "dx"), 1);
    assert_int_equal(G("\\*", "*"), 1);
    assert_int_equal(G("\\*", "a"), 0);
    assert_int_equal(G("[]]", "]"), 1);
    assert_int_equal(G("*", ""), 1);
    assert_int_equal(G("[a", "a"), -1);
    assert_int_equal(G("a\\", "a"), -1);
    assert_int_equal(G("[z-a]", "b"), -1);
#undef G
    assert_null(fg_glob_check("a*[b-c]", 7));
    assert_non_null(fg_glob_check("[", 1));
}


/* ----------------------------------------------------------- token cache */

/* A fake verification: header and claims objects naming n. */
static fg_jws_t
fake_jws(int n)
{
    fg_jws_t  j;

    memset(&j, 0, sizeof(j));
    j.alg = FG_JWS_EDDSA;
    j.header = json_pack("{s:s}", "alg", "EdDSA");
    j.claims = json_pack("{s:i}", "n", n);
    assert_non_null(j.header);
    assert_non_null(j.claims);
    return j;
}


static void
key_of(int n, unsigned char key[FG_SHA256_LEN])
{
    char  text[32];

    snprintf(text, sizeof(text), "token-%d", n);
    assert_int_equal(fg_sha256(text, strlen(text), key), FG_OK);
}


static int
cached_n(fg_token_cache_t *c, int n, time_t now)
{
    unsigned char    key[FG_SHA256_LEN];
    const fg_jws_t  *j;

    key_of(n, key);
    j = fg_token_cache_get(c, key, now);
    if (j == NULL) {
        return -1;
    }
    return (int) json_integer_value(json_object_get(j->claims, "n"));
}


static void
put_n(fg_token_cache_t *c, int n, time_t exp, time_t now)
{
    unsigned char  key[FG_SHA256_LEN];
    fg_jws_t       j;

    key_of(n, key);
    j = fake_jws(n);
    assert_int_equal(fg_token_cache_put(c, key, &j, exp, now), FG_OK);
    assert_null(j.header);
    assert_null(j.claims);
}


static void
test_cache_basic(void **state)
{
    fg_token_cache_t    *c;
    size_t               entries;
    unsigned long long   hits, misses;

    (void) state;
    assert_null(fg_token_cache_new(0));
    c = fg_token_cache_new(8);
    assert_non_null(c);

    assert_int_equal(cached_n(c, 1, NOW), -1);          /* miss */
    put_n(c, 1, NOW + 10, NOW);
    assert_int_equal(cached_n(c, 1, NOW), 1);           /* hit */
    assert_int_equal(cached_n(c, 1, NOW + 9), 1);
    assert_int_equal(cached_n(c, 2, NOW), -1);

    fg_token_cache_stats(c, &entries, &hits, &misses);
    assert_int_equal(entries, 1);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 2);

    /* expiry at exp: never returned at or after it, then dropped */
    assert_int_equal(cached_n(c, 1, NOW + 10), -1);
    fg_token_cache_stats(c, &entries, &hits, &misses);
    assert_int_equal(entries, 0);
    assert_int_equal(misses, 3);
    assert_int_equal(cached_n(c, 1, NOW), -1);

    /* already expired: not kept */
    put_n(c, 3, NOW, NOW);
    fg_token_cache_stats(c, &entries, NULL, NULL);
    assert_int_equal(entries, 0);

    /* replace */
    put_n(c, 4, NOW + 5, NOW);
    put_n(c, 4, NOW + 50, NOW);
    fg_token_cache_stats(c, &entries, NULL, NULL);
    assert_int_equal(entries, 1);
    assert_int_equal(cached_n(c, 4, NOW + 20), 4);

    fg_token_cache_clear(c);
    fg_token_cache_stats(c, &entries, NULL, NULL);
    assert_int_equal(entries, 0);
    assert_int_equal(cached_n(c, 4, NOW), -1);

    put_n(c, 5, NOW + 5, NOW);      /* freed with the cache */
    fg_token_cache_free(c);
    fg_token_cache_free(NULL);
}


static void
test_cache_eviction(void **state)
{
    fg_token_cache_t  *c;
    size_t             entries;

    (void) state;
    c = fg_token_cache_new(3);
    assert_non_null(c);
    put_n(c, 1, NOW + 300, NOW);
    put_n(c, 2, NOW + 100, NOW);    /* closest to expiry */
    put_n(c, 3, NOW + 200, NOW);
    put_n(c, 4, NOW + 400, NOW);    /* full: 2 goes */

    fg_token_cache_stats(c, &entries, NULL, NULL);
    assert_int_equal(entries, 3);
    assert_int_equal(cached_n(c, 2, NOW), -1);
    assert_int_equal(cached_n(c, 1, NOW), 1);
    assert_int_equal(cached_n(c, 3, NOW), 3);
    assert_int_equal(cached_n(c, 4, NOW), 4);

    put_n(c, 5, NOW + 50, NOW);     /* 3 goes */
    assert_int_equal(cached_n(c, 3, NOW), -1);
    assert_int_equal(cached_n(c, 5, NOW), 5);
    fg_token_cache_free(c);
}


/* Many puts, gets and expiries: the table stays consistent. */
static void
test_cache_churn(void **state)
{
    fg_token_cache_t  *c;
    size_t             entries;
    int                i, n, found;

    (void) state;
    c = fg_token_cache_new(100);
    assert_non_null(c);
    for (i = 0; i < 5000; i++) {
        put_n(c, i, NOW + 1 + (i * 7919) % 500, NOW);
        fg_token_cache_stats(c, &entries, NULL, NULL);
        assert_true(entries <= 100);
        if (i % 3 == 0) {
            (void) cached_n(c, i / 2, NOW + (i % 400));
        }
    }

    /* every entry left is found, and returns its own token */
    found = 0;
    for (n = 0; n < 5000; n++) {
        i = cached_n(c, n, NOW);
        if (i >= 0) {
            assert_int_equal(i, n);
            found++;
        }
    }
    fg_token_cache_stats(c, &entries, NULL, NULL);
    assert_int_equal((size_t) found, entries);
    assert_true(found > 0);
    fg_token_cache_free(c);
}


/* ------------------------------------------------------------- approvals */

static json_t *
approval_claims(void)
{
    json_t  *c;

    c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
                  "approval_request_id",
                  "01890a5d-ac96-774b-bcce-b302099a8057",
                  "tenant_id", "acme",
                  "tool", "servicenow.incident",
                  "action", "write",
                  "input_sha256", INPUT_SHA256,
                  "sub", "bob@example.com",
                  "jti", "appr-jti-1",
                  "iat", (json_int_t) NOW - 10,
                  "exp", (json_int_t) NOW + 600);
    assert_non_null(c);
    return c;
}


static fg_approval_binding_t
binding(void)
{
    fg_approval_binding_t  b;

    b.tenant_id = "acme";
    b.tool = "servicenow.incident";
    b.action = "write";
    b.input_sha256 = INPUT_SHA256;
    return b;
}


/* Verify the approval of claims signed by set with typ; returns it. */
static json_t *
approve(const fg_keyset_t *set, const char *typ, json_t *claims,
    const fg_approval_binding_t *b, time_t now, fg_error_t *err)
{
    fg_buffer_t  tok;
    json_t      *a;

    sign(set, typ, claims, &tok);
    a = fg_approval_verify(fx.approver, (const char *) tok.data, tok.len, b,
                           now, 30, err);
    fg_buffer_free(&tok);
    json_decref(claims);
    return a;
}


static void
assert_approval_refused(json_t *a, const fg_error_t *err, const char *want)
{
    assert_null(a);
    if (strstr(err->msg, want) == NULL) {
        fail_msg("got \"%s\", want \"%s\"", err->msg, want);
    }
}


static void
test_approval_valid(void **state)
{
    fg_approval_binding_t  b;
    fg_error_t             err;
    fg_buffer_t            text;
    json_t                *a, *pdr;

    (void) state;
    b = binding();
    a = approve(fx.approver, APPROVAL, approval_claims(), &b, NOW, &err);
    if (a == NULL) {
        fail_msg("approval: %s", err.msg);
    }
    assert_string_equal(json_string_value(json_object_get(a, "approval_id")),
                        "01890a5d-ac96-774b-bcce-b302099a8057");
    assert_string_equal(json_string_value(json_object_get(a, "jti")),
                        "appr-jti-1");
    assert_string_equal(json_string_value(json_object_get(a, "approver")),
                        "bob@example.com");
    assert_string_equal(json_string_value(json_object_get(a,
                        "input_sha256")), INPUT_SHA256);
    assert_int_equal(json_object_size(a), 4);

    /* it is the decision input's approval object: put it in a golden
     * PolicyDecisionRecord and validate that */
    assert_int_equal(test_read_file(FG_SOURCE_DIR "/vectors/records/"
                     "PolicyDecisionRecord/valid-servicenow-write-approved"
                     ".json", &text), 0);
    pdr = json_loadb((const char *) text.data, text.len, 0, NULL);
    assert_non_null(pdr);
    assert_int_equal(json_object_set_new(json_object_get(pdr, "input"),
                                         "approval", a), 0);
    assert_valid(pdr);
    json_decref(pdr);
    fg_buffer_free(&text);

    /* within the leeway after exp */
    a = approve(fx.approver, APPROVAL, approval_claims(), &b, NOW + 620,
                &err);
    assert_non_null(a);
    json_decref(a);

    /* the typ is compared without regard to case */
    a = approve(fx.approver, "Foxgov-Approval+JWT", approval_claims(), &b,
                NOW, &err);
    assert_non_null(a);
    json_decref(a);
}


static void
test_approval_refused(void **state)
{
    fg_approval_binding_t  b;
    fg_error_t             err;
    json_t                *c;

    (void) state;
    b = binding();

    /* expired (beyond the leeway) */
    assert_approval_refused(approve(fx.approver, APPROVAL, approval_claims(),
                                    &b, NOW + 700, &err), &err,
                            "token has expired");
    /* no exp */
    c = approval_claims();
    json_object_del(c, "exp");
    assert_approval_refused(approve(fx.approver, APPROVAL, c, &b, NOW, &err),
                            &err, "token has no exp claim");

    /* a caller JWT presented as an approval */
    assert_approval_refused(approve(fx.approver, "JWT", approval_claims(),
                                    &b, NOW, &err), &err, "typ");
    assert_approval_refused(approve(fx.approver, NULL, approval_claims(),
                                    &b, NOW, &err), &err, "typ");

    /* not an approval at all: refused as invalid, not as a mismatch */
    assert_null(approve(fx.approver, "JWT", approval_claims(), &b, NOW,
                        &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    /* bound to another call: authentic, but a mismatch */
    b.tenant_id = "other";
    assert_null(approve(fx.approver, APPROVAL, approval_claims(), &b, NOW,
                        &err));
    assert_int_equal(err.code, FG_ERR_MISMATCH);
    assert_approval_refused(approve(fx.approver, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "approval is for another tenant");
    b = binding();
    b.tool = "github.repo";
    assert_approval_refused(approve(fx.approver, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "approval is for another tool");
    b = binding();
    b.action = "read";
    assert_approval_refused(approve(fx.approver, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "approval is for another action");
    b = binding();
    b.input_sha256 = OTHER_SHA256;
    assert_null(approve(fx.approver, APPROVAL, approval_claims(), &b, NOW,
                        &err));
    assert_int_equal(err.code, FG_ERR_MISMATCH);
    assert_approval_refused(approve(fx.approver, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "approval is for other input");

    /* signed by a key not among the approvers (same kid, other key) */
    b = binding();
    assert_approval_refused(approve(fx.stranger, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "bad EdDSA signature");
    assert_approval_refused(approve(fx.caller, APPROVAL, approval_claims(),
                                    &b, NOW, &err), &err,
                            "token kid names no known key");

    /* claims missing or out of bounds */
    c = approval_claims();
    json_object_del(c, "jti");
    assert_approval_refused(approve(fx.approver, APPROVAL, c, &b, NOW, &err),
                            &err, "approval claim jti missing");
    c = approval_claims();
    json_object_set_new(c, "input_sha256", json_string("ABCDEF"));
    assert_approval_refused(approve(fx.approver, APPROVAL, c, &b, NOW, &err),
                            &err, "approval claim input_sha256 is not 64 "
                            "lowercase hex digits");
    c = approval_claims();
    json_object_set_new(c, "approval_request_id", json_string("a/b"));
    assert_approval_refused(approve(fx.approver, APPROVAL, c, &b, NOW, &err),
                            &err, "approval claim approval_request_id does "
                            "not match");
    c = approval_claims();
    json_object_del(c, "sub");
    assert_approval_refused(approve(fx.approver, APPROVAL, c, &b, NOW, &err),
                            &err, "approval claim sub missing");
    assert_null(fg_approval_verify(fx.approver, "x", 1, NULL, NOW, 0, &err));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_record_from_token),
        cmocka_unit_test(test_record_nulls),
        cmocka_unit_test(test_claims_ok),
        cmocka_unit_test(test_claims_refused),
        cmocka_unit_test(test_capable),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_cache_basic),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_cache_churn),
        cmocka_unit_test(test_approval_valid),
        cmocka_unit_test(test_approval_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

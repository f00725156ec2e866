/*
 * test_record.c -- evidence records: the embedded schemas compile; each
 * record type is built, validated and hashed to the golden vector's
 * envelope hash; links between records are the hashes of their targets;
 * strict parsing refuses what must not reach a ledger; ids and times have
 * the forms the schemas demand.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fg_record.h"
#include "fg_record_write.h"
#include "test_util.h"

typedef struct {
    fg_records_t  *records;
    fg_sha256_t   *h;
    fg_jcs_t      *jcs;
} fixture_t;

static const char  *types[] = {
    "AuthContext", "PolicyDecisionRecord", "ModelCallRecord",
    "ToolCallRecord"
};


static json_t *
load_record(fixture_t *fx, const char *path)
{
    fg_buffer_t  b;
    fg_error_t   err;
    json_t      *v;

    if (test_read_file(path, &b) != 0) {
        fail_msg("cannot read %s", path);
    }

    v = fg_record_parse(fx->jcs, b.data, b.len, &err);
    if (v == NULL) {
        fail_msg("%s: %s", path, err.msg);
    }

    fg_buffer_free(&b);

    return v;
}


static void
read_hash(const char *json_path, char hex[FG_SHA256_HEX_LEN + 1])
{
    char         path[1024];
    fg_buffer_t  b;

    snprintf(path, sizeof(path), "%.*s.sha256",
             (int) (strlen(json_path) - 5), json_path);
    assert_int_equal(test_read_file(path, &b), 0);
    assert_true(b.len >= FG_SHA256_HEX_LEN);
    memcpy(hex, b.data, FG_SHA256_HEX_LEN);
    hex[FG_SHA256_HEX_LEN] = '\0';
    fg_buffer_free(&b);
}


/* call fn for each vectors/records/<type>/<prefix>*.json */
static size_t
each_vector(fixture_t *fx, const char *type, const char *prefix,
    void (*fn)(fixture_t *, const char *, const char *))
{
    char            dir[512], path[1024];
    DIR            *d;
    struct dirent  *e;
    size_t          n = 0, len;

    snprintf(dir, sizeof(dir), "%s/vectors/records/%s", FG_SOURCE_DIR, type);
    d = opendir(dir);
    assert_non_null(d);

    while ((e = readdir(d)) != NULL) {
        len = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0
            || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
        {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        fn(fx, type, path);
        n++;
    }

    closedir(d);

    return n;
}


/* --------------------------------------------------------------- build */

/*
 * Rebuild a vector from its parts: the envelope from fg_record_new(), the
 * rest copied field by field.  Its hash must be the vector's.
 */
static void
check_rebuild(fixture_t *fx, const char *type, const char *path)
{
    char                 want[FG_SHA256_HEX_LEN + 1];
    char                 got[FG_SHA256_HEX_LEN + 1];
    fg_schema_report_t   report;
    fg_trace_t           trace;
    fg_error_t           err;
    json_t              *vec, *rec, *t, *value;
    const char          *key, *parent;

    vec = load_record(fx, path);
    t = json_object_get(vec, "trace");

    snprintf(trace.trace_id, sizeof(trace.trace_id), "%s",
             json_string_value(json_object_get(t, "trace_id")));
    snprintf(trace.span_id, sizeof(trace.span_id), "%s",
             json_string_value(json_object_get(t, "span_id")));
    parent = json_string_value(json_object_get(t, "parent_span_id"));
    snprintf(trace.parent_span_id, sizeof(trace.parent_span_id), "%s",
             parent ? parent : "");

    rec = fg_record_new(fg_record_type_from_name(type),
                        json_string_value(json_object_get(vec, "tenant_id")),
                        json_string_value(json_object_get(vec,
                                                          "execution_id")),
                        &trace);
    assert_non_null(rec);

    json_object_foreach(vec, key, value) {
        if (json_object_get(rec, key) == NULL) {
            json_object_set(rec, key, value);
        }
    }

    if (fg_record_validate(fx->records, rec, &report) != FG_OK) {
        fail_msg("%s: %s", path, report.count ? report.line[0] : "invalid");
    }
    assert_int_equal(fg_record_hash(fx->h, rec, got, &err), FG_OK);

    read_hash(path, want);
    if (strcmp(got, want) != 0) {
        fail_msg("%s: rebuilt hash %s, vector says %s", path, got, want);
    }

    /* reading the text strictly yields the same hash in the same pass */
    {
        unsigned char  md[FG_SHA256_LEN];
        fg_buffer_t    text;
        json_t        *again;

        assert_int_equal(test_read_file(path, &text), 0);
        again = fg_record_parse_hashed(fx->jcs, fx->h, text.data, text.len,
                                       md, &err);
        assert_non_null(again);
        fg_hex_sha256(md, got);
        assert_string_equal(got, want);
        json_decref(again);
        fg_buffer_free(&text);
    }

    json_decref(rec);
    json_decref(vec);
}


static void
test_build_each_type(void **state)
{
    size_t  i;

    for (i = 0; i < 4; i++) {
        assert_true(each_vector(*state, types[i], "valid-", check_rebuild)
                    >= 2);
    }
}


static void
test_build_from_scratch(void **state)
{
    fixture_t           *fx = *state;
    fg_schema_report_t   report;
    fg_trace_t           trace;
    fg_blobref_t         ref;
    fg_error_t           err;
    char                 exec_id[FG_UUID_LEN + 1];
    char                 hex[FG_SHA256_HEX_LEN + 1];
    json_t              *auth;

    assert_int_equal(fg_trace_id_new(trace.trace_id), FG_OK);
    assert_int_equal(fg_span_id_new(trace.span_id), FG_OK);
    trace.parent_span_id[0] = '\0';
    assert_int_equal(fg_uuidv7(1763800000000ULL, exec_id), FG_OK);

    auth = fg_record_new(FG_RECORD_AUTH_CONTEXT, "acme", exec_id, &trace);
    assert_non_null(auth);
    assert_true(json_is_null(json_object_get(
        json_object_get(auth, "trace"), "parent_span_id")));

    /* what the gateway adds for an AuthContext */
    assert_int_equal(fg_record_set_time(auth, "authenticated_at",
                                        1763800000, 123456789), FG_OK);
    assert_int_equal(fg_record_set_time(auth, "issued_at", 1763799000, 0),
                     FG_OK);
    assert_int_equal(fg_record_set_time(auth, "expires_at", 1763803600, 0),
                     FG_OK);
    assert_string_equal(json_string_value(json_object_get(auth,
                            "authenticated_at")),
                        "2025-11-22T08:26:40.123Z");
    assert_int_equal(fg_blobref_raw("token", 5, "application/jwt", &ref,
                                    &err), FG_OK);
    fg_hex_sha256(ref.sha256, hex);
    json_object_set_new(auth, "token_sha256", json_string(hex));
    json_object_set_new(auth, "issuer", json_string("https://idp.example"));
    json_object_set_new(auth, "principal", json_string("svc-triage"));
    json_object_set_new(auth, "workspace_id", json_string("itsm"));
    json_object_set_new(auth, "environment", json_string("prod"));
    json_object_set_new(auth, "capabilities",
                        json_pack("[s]", "model:gpt-4o*"));
    json_object_set_new(auth, "acr", json_null());
    json_object_set_new(auth, "token_source", json_string("authorization"));
    json_object_set_new(auth, "jti", json_string("j1"));
    json_object_set_new(auth, "kid", json_string("k1"));
    json_object_set_new(auth, "alg", json_string("EdDSA"));

    if (fg_record_validate(fx->records, auth, &report) != FG_OK) {
        fail_msg("built AuthContext: %s",
                 report.count ? report.line[0] : "invalid");
    }
    assert_int_equal(fg_record_hash(fx->h, auth, hex, &err), FG_OK);

    /* the envelope_hash covers every field (INV-INT-002) */
    {
        char  again[FG_SHA256_HEX_LEN + 1];

        json_object_set_new(auth, "environment", json_string("prod2"));
        assert_int_equal(fg_record_hash(fx->h, auth, again, &err), FG_OK);
        assert_string_not_equal(hex, again);
    }

    /* a missing field makes it invalid, with the pointer */
    json_object_del(auth, "principal");
    assert_int_equal(fg_record_validate(fx->records, auth, &report),
                     FG_ERR_INVALID);
    assert_string_equal(report.line[0],
                        "(root): missing required property \"principal\"");

    json_decref(auth);
}


/* --------------------------------------------------------------- links */

static void
check_links(fixture_t *fx, const char *type, const char *path)
{
    static const struct { const char *field, *target; } links[] = {
        { "auth_context_sha256", "AuthContext" },
        { "policy_decision_sha256", "PolicyDecisionRecord" },
    };
    char         target[1024], want[FG_SHA256_HEX_LEN + 1];
    const char  *base = strrchr(path, '/') + 1;
    fg_error_t   err;
    json_t      *rec, *linked, *copy;
    size_t       i;

    (void) type;

    rec = load_record(fx, path);

    for (i = 0; i < 2; i++) {
        if (json_object_get(rec, links[i].field) == NULL) {
            continue;
        }

        /* flows share the file name across types */
        snprintf(target, sizeof(target), "%s/vectors/records/%s/%s",
                 FG_SOURCE_DIR, links[i].target, base);
        linked = load_record(fx, target);

        copy = json_deep_copy(rec);
        assert_int_equal(fg_record_link(fx->h, copy, links[i].field, linked,
                                        &err), FG_OK);
        assert_string_equal(json_string_value(json_object_get(rec,
                                                 links[i].field)),
                            json_string_value(json_object_get(copy,
                                                 links[i].field)));
        read_hash(target, want);
        assert_string_equal(json_string_value(json_object_get(rec,
                                                 links[i].field)), want);

        /* the whole flow carries one trace_id (INV-INT-003) */
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(rec, "trace"),
                                              "trace_id")),
            json_string_value(json_object_get(json_object_get(linked,
                                                              "trace"),
                                              "trace_id")));

        json_decref(copy);
        json_decref(linked);
    }

    json_decref(rec);
}


static void
test_links(void **state)
{
    assert_true(each_vector(*state, "PolicyDecisionRecord", "valid-",
                            check_links) >= 2);
    assert_true(each_vector(*state, "ModelCallRecord", "valid-",
                            check_links) >= 2);
    assert_true(each_vector(*state, "ToolCallRecord", "valid-",
                            check_links) >= 2);
}


/* ------------------------------------------------------------ validate */

static void
check_invalid(fixture_t *fx, const char *type, const char *path)
{
    char                 errpath[1024];
    fg_schema_report_t   report;
    fg_buffer_t          want;
    json_t              *rec;

    rec = load_record(fx, path);

    snprintf(errpath, sizeof(errpath), "%.*s.err",
             (int) (strlen(path) - 5), path);
    assert_int_equal(test_read_file(errpath, &want), 0);
    while (want.len > 0 && want.data[want.len - 1] == '\n') {
        want.data[--want.len] = '\0';
    }

    assert_int_equal(fg_record_validate_as(fx->records, type, rec, &report),
                     FG_ERR_INVALID);
    assert_true(report.count >= 1);
    if (strcmp(report.line[0], (char *) want.data) != 0) {
        fail_msg("%s: \"%s\", expected \"%s\"", path, report.line[0],
                 want.data);
    }

    fg_buffer_free(&want);
    json_decref(rec);
}


static void
test_invalid_vectors(void **state)
{
    size_t  i, n = 0;

    for (i = 0; i < 4; i++) {
        n += each_vector(*state, types[i], "invalid-", check_invalid);
    }

    assert_true(n >= 40);
}


static void
test_validate_by_record_type(void **state)
{
    fixture_t           *fx = *state;
    fg_schema_report_t   report;
    json_t              *v;

    v = json_pack("{s:s}", "record_type", "Nope");
    assert_int_equal(fg_record_validate(fx->records, v, &report),
                     FG_ERR_INVALID);
    assert_string_equal(report.line[0],
                        "/record_type: not a known record type");
    json_decref(v);

    v = json_pack("{s:i}", "record_type", 1);
    assert_int_equal(fg_record_validate(fx->records, v, &report),
                     FG_ERR_INVALID);
    json_decref(v);

    v = json_pack("{s:s, s:s, s:n}", "trace_id",
                  "4bf92f3577b34da6a3ce929d0e0e4736", "span_id",
                  "00f067aa0ba902b7", "parent_span_id");
    assert_int_equal(fg_record_validate_as(fx->records, "TraceContext", v,
                                           &report), FG_OK);
    json_object_set_new(v, "trace_id",
                        json_string("00000000000000000000000000000000"));
    assert_int_equal(fg_record_validate_as(fx->records, "TraceContext", v,
                                           &report), FG_ERR_INVALID);
    assert_string_equal(report.line[0], "/trace_id: does not match "
                        "^(?!0{32}$)[0-9a-f]{32}$");
    json_decref(v);

    assert_null(fg_records_schema(fx->records, "NoSuchSchema"));
}


/* --------------------------------------------------------------- parse */

static void
test_parse_refusals(void **state)
{
    fixture_t   *fx = *state;
    fg_error_t   err;
    char        *big;

    assert_null(fg_record_parse(fx->jcs,
                                (const unsigned char *) "{\"a\":1,\"a\":2}",
                                13, &err));
    assert_string_equal(err.msg, "duplicate object key \"a\" at byte 7");

    assert_null(fg_record_parse(fx->jcs,
                                (const unsigned char *) "{\"a\":\"\\udc00\"}",
                                14, &err));
    assert_non_null(strstr(err.msg, "lone low surrogate"));

    /* JSON allows it, no record field does: refused, not wrapped */
    assert_null(fg_record_parse(fx->jcs, (const unsigned char *)
                                "{\"n\":123456789012345678901234567890}",
                                36, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    /*
     * Reals whose canonical form is an integer beyond 64 bits (found by
     * fuzz_record): read as reals, they were written back as integers
     * that no reader takes.  Both readers refuse them; 1e21 and -2^63,
     * whose canonical forms read back, are kept.
     */
    {
        static const char  *refused[] = {
            "{\"n\":120000000000000000e03}", "{\"n\":1.2e20}",
            "{\"n\":9223372036854775808.0}", "{\"n\":-9.3e18}",
            "{\"n\":999999999999999900000.5}",
        };
        static const char  *kept[] = {
            "{\"n\":1e21}", "{\"n\":-1.5e21}", "{\"n\":9.2e18}",
            "{\"n\":-9223372036854775808.0}", "{\"n\":1e300}",
        };
        unsigned char       md[FG_SHA256_LEN];
        json_t             *v;
        size_t              i;

        for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
            assert_null(fg_record_parse(fx->jcs, (const unsigned char *)
                                        refused[i], strlen(refused[i]),
                                        &err));
            assert_int_equal(err.code, FG_ERR_INVALID);
            assert_non_null(strstr(err.msg, "beyond 64 bits"));
        }
        assert_int_equal(fg_record_parse_canonical(fx->jcs,
                             (const unsigned char *)
                             "{\"n\":120000000000000000000}", 27, md, &v,
                             &err), FG_ERR_INVALID);

        for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
            v = fg_record_parse(fx->jcs, (const unsigned char *) kept[i],
                                strlen(kept[i]), &err);
            assert_non_null(v);
            json_decref(v);
        }
    }

    big = malloc(FG_RECORD_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, ' ', FG_RECORD_MAX_BYTES + 1);
    big[0] = '{';
    big[FG_RECORD_MAX_BYTES] = '}';
    assert_null(fg_record_parse(fx->jcs, (unsigned char *) big,
                                FG_RECORD_MAX_BYTES + 1, &err));
    assert_int_equal(err.code, FG_ERR_LIMIT);
    free(big);
}


/* ----------------------------------------------------------- ids, time */

static void
test_ids(void **state)
{
    char  u[FG_UUID_LEN + 1], t[FG_TRACE_ID_LEN + 1], s[FG_SPAN_ID_LEN + 1];
    int   i;

    (void) state;

    assert_int_equal(fg_uuidv7(0x0123456789abULL, u), FG_OK);
    assert_int_equal(strlen(u), 36);
    assert_memory_equal(u, "01234567-89ab-7", 15);
    assert_true(strchr("89ab", u[19]) != NULL);
    assert_int_equal(u[23], '-');

    for (i = 0; i < 100; i++) {
        char  u2[FG_UUID_LEN + 1];
        assert_int_equal(fg_uuidv7(0x0123456789abULL, u2), FG_OK);
        assert_string_not_equal(u, u2);
    }

    assert_int_equal(fg_trace_id_new(t), FG_OK);
    assert_int_equal(strlen(t), 32);
    assert_int_equal(strspn(t, "0123456789abcdef"), 32);
    assert_int_equal(fg_span_id_new(s), FG_OK);
    assert_int_equal(strlen(s), 16);
    assert_int_equal(strspn(s, "0123456789abcdef"), 16);

    /*
     * A forked child (an nginx worker) and its parent never draw the
     * same ids: the parent's pool of random bytes is not the child's.
     */
    {
        int    fd[2];
        pid_t  pid;
        char   mine[FG_TRACE_ID_LEN + 1], theirs[FG_TRACE_ID_LEN + 1];

        assert_int_equal(fg_trace_id_new(t), FG_OK);    /* pool filled */
        assert_int_equal(pipe(fd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fd[0]);
            if (fg_trace_id_new(theirs) != FG_OK
                || write(fd[1], theirs, FG_TRACE_ID_LEN) != FG_TRACE_ID_LEN)
            {
                _exit(1);
            }
            _exit(0);
        }
        close(fd[1]);
        memset(theirs, 0, sizeof(theirs));
        assert_int_equal(read(fd[0], theirs, FG_TRACE_ID_LEN),
                         FG_TRACE_ID_LEN);
        close(fd[0]);
        assert_int_equal(waitpid(pid, &i, 0), pid);
        assert_int_equal(i, 0);
        assert_int_equal(fg_trace_id_new(mine), FG_OK);
        assert_string_not_equal(mine, theirs);
    }
}


/* one tenant check for records, stream keys, paths and tokens */
/* Redis Cluster's own figures (CLUSTER KEYSLOT) for the stream keys */
static void
test_stream_slot(void **state)
{
    (void) state;

    /* CRC16-XMODEM("123456789") is 0x31C3, the reference check value */
    assert_int_equal(fg_stream_slot("123456789", 9), 0x31C3 & 16383);
    assert_int_equal(fg_stream_slot("foo", 3), 12182);  /* KEYSLOT foo */
    assert_int_equal(fg_stream_slot("", 0), 0);
    assert_true(fg_stream_slot("acme", 4) < FG_CLUSTER_SLOTS);
}


static void
test_tenant_ids(void **state)
{
    static const char  *good[] = { "acme", "a", "0", "acme-eu", "a_b-c9" };
    static const char  *bad[] = {
        "", "../etc", "acme/..", "-acme", "_acme", "Acme", "acme eu",
        "acme\n", "caf\xc3\xa9", "acme.eu", "acme{x}", "a:b"
    };
    char    longest[FG_TENANT_ID_MAX + 2];
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(fg_tenant_id_valid(good[i], strlen(good[i])));
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fg_tenant_id_valid(bad[i], strlen(bad[i]))) {
            fail_msg("tenant \"%s\" accepted", bad[i]);
        }
    }

    memset(longest, 'a', sizeof(longest));
    assert_true(fg_tenant_id_valid(longest, FG_TENANT_ID_MAX));
    assert_false(fg_tenant_id_valid(longest, FG_TENANT_ID_MAX + 1));
    /* a NUL inside is not a shorter tenant */
    assert_false(fg_tenant_id_valid("acme\0x", 6));
    assert_false(fg_tenant_id_valid(NULL, 4));
}


static void
test_time_format(void **state)
{
    char  buf[FG_TIME_MAX];

    (void) state;

    assert_int_equal(fg_time_format(0, 0, buf), FG_OK);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(fg_time_format(1795305600, 999999999, buf), FG_OK);
    assert_string_equal(buf, "2026-11-22T00:00:00.999Z");
    assert_int_equal(fg_time_format(0, 1000000000, buf), FG_ERR_INVALID);
    assert_int_equal(fg_time_format(0, -1, buf), FG_ERR_INVALID);

    /* the same second again (formatted once, then reused), and the one
     * before the epoch, which a cache keyed by -1 would get wrong */
    assert_int_equal(fg_time_format(1795305600, 5000000, buf), FG_OK);
    assert_string_equal(buf, "2026-11-22T00:00:00.005Z");
    assert_int_equal(fg_time_format(-1, 0, buf), FG_OK);
    assert_string_equal(buf, "1969-12-31T23:59:59.000Z");
    assert_int_equal(fg_time_format(1795305601, 120000000, buf), FG_OK);
    assert_string_equal(buf, "2026-11-22T00:00:01.120Z");

    /* years the records cannot write in four digits */
    assert_int_equal(fg_time_format(-62167219201LL, 0, buf),
                     FG_ERR_INVALID);
    assert_int_equal(fg_time_format(253402300800LL, 0, buf),
                     FG_ERR_INVALID);
}


/* ------------------------------------------------------------ writer */

/* The canonical record writer: what it writes, and what it refuses. */
static void
test_writer(void **state)
{
    fg_rw_t         w;
    fg_rw_buffer_t  b;
    fg_error_t      err;
    fg_sink_t      *sink;
    json_t         *v, *sub;
    fg_trace_t      tr;

    (void) state;

    /* commas, nesting, numbers, strings escaped, null, booleans */
    sub = json_pack("{s:i, s:s}", "z", 1, "a", "\u00e9\n");
    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_object(&w);
    fg_rw_key(&w, "a");
    fg_rw_array(&w);
    fg_rw_int(&w, -9007199254740991LL);
    fg_rw_int(&w, 0);
    fg_rw_array(&w);
    fg_rw_close(&w);
    fg_rw_object(&w);
    fg_rw_close(&w);
    fg_rw_bool(&w, 1);
    fg_rw_null(&w);
    fg_rw_close(&w);
    fg_rw_key(&w, "b");
    fg_rw_string(&w, "q\"\\\x01");
    fg_rw_key(&w, "c");
    fg_rw_json(&w, sub);
    fg_rw_close(&w);
    assert_int_equal(fg_rw_finish(&w), FG_OK);
    fg_buffer_append(&b.buf, "", 0);
    b.buf.data[b.buf.len] = '\0';
    assert_string_equal((char *) b.buf.data,
        "{\"a\":[-9007199254740991,0,[],{},true,null],"
        "\"b\":\"q\\\"\\\\\\u0001\",\"c\":{\"a\":\"\u00e9\\n\",\"z\":1}}");
    v = fg_rw_buffer_json(&b, FG_OK, &err);
    assert_non_null(v);
    json_decref(v);
    json_decref(sub);

    /* a member out of canonical order is a defect, not written */
    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_object(&w);
    fg_rw_key(&w, "tenant_id");
    fg_rw_string(&w, "acme");
    fg_rw_key(&w, "record_type");
    fg_rw_string(&w, "x");
    fg_rw_close(&w);
    assert_int_equal(fg_rw_finish(&w), FG_ERR_INVALID);
    assert_string_equal(err.msg,
                        "record: member out of canonical order at "
                        "record_type");
    assert_null(fg_rw_buffer_json(&b, FG_ERR_INVALID, &err));

    /* the same key twice, a string that is not UTF-8, a big integer,
     * a container left open */
    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_object(&w);
    fg_rw_key(&w, "a");
    fg_rw_null(&w);
    fg_rw_key(&w, "a");
    assert_int_equal(fg_rw_finish(&w), FG_ERR_INVALID);
    assert_null(fg_rw_buffer_json(&b, FG_ERR_INVALID, &err));

    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_object(&w);
    fg_rw_key(&w, "path");
    fg_rw_stringn(&w, "/\xff", 2);
    fg_rw_close(&w);
    assert_int_equal(fg_rw_finish(&w), FG_ERR_INVALID);
    assert_string_equal(err.msg, "record: a string is not UTF-8 at path");
    assert_null(fg_rw_buffer_json(&b, FG_ERR_INVALID, &err));

    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_int(&w, 9007199254740992LL);
    assert_int_equal(fg_rw_finish(&w), FG_ERR_INVALID);
    assert_null(fg_rw_buffer_json(&b, FG_ERR_INVALID, &err));

    sink = fg_rw_buffer_open(&b);
    fg_rw_init(&w, sink, &err);
    fg_rw_object(&w);
    memset(&tr, 0, sizeof(tr));
    strcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(tr.span_id, "00f067aa0ba902b7");
    fg_rw_trace(&w, &tr);
    assert_int_equal(fg_rw_finish(&w), FG_ERR_INVALID);
    assert_string_equal(err.msg, "record: a container left open");
    assert_null(fg_rw_buffer_json(&b, FG_ERR_INVALID, &err));

    /* bytes that are JSON but not canonical do not read back */
    sink = fg_rw_buffer_open(&b);
    assert_int_equal(fg_sink_write(sink, "{\"b\":1,\"a\":2}", 13), FG_OK);
    assert_int_equal(fg_sink_drain(sink), FG_OK);
    assert_null(fg_rw_buffer_json(&b, FG_OK, &err));
    assert_string_equal(err.msg, "record: written bytes are not canonical");
}


static int
setup(void **state)
{
    fixture_t   *fx = calloc(1, sizeof(fixture_t));
    fg_error_t   err;

    if (fx == NULL) {
        return -1;
    }

    fx->records = fg_records_new(&err);
    fx->h = fg_sha256_new();
    fx->jcs = fg_jcs_new(0);

    if (fx->records == NULL) {
        fprintf(stderr, "schemas: %s\n", err.msg);
        return -1;
    }

    *state = fx;

    return (fx->h == NULL || fx->jcs == NULL) ? -1 : 0;
}


static int
teardown(void **state)
{
    fixture_t  *fx = *state;

    fg_records_free(fx->records);
    fg_sha256_free(fx->h);
    fg_jcs_free(fx->jcs);
    free(fx);

    return 0;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_build_each_type),
        cmocka_unit_test(test_build_from_scratch),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_invalid_vectors),
        cmocka_unit_test(test_validate_by_record_type),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_stream_slot),
        cmocka_unit_test(test_tenant_ids),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_writer),
    };

    return cmocka_run_group_tests_name("record", tests, setup, teardown);
}

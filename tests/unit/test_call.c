/*
 * test_call.c -- one governed call without nginx: Content-Type rules,
 * strict body reading and hashing, FoxGov-Labels (every refusal), the
 * DecisionInput of model and tool calls with body pointers, THROTTLE
 * counters, Model/ToolCallRecords (completed and refused), cost from a
 * price list, error bodies and approval requests.  Every record built
 * here is validated against the schemas compiled into the library, and a
 * PolicyDecisionRecord made from each DecisionInput too.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg_call.h"
#include "test_util.h"

#define NOW      1764000000     /* 2025-11-24T16:00:00Z */

#define SHA_A \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define EXEC_ID  "01936f4e-7c2a-7b3d-8e4f-0123456789ab"
#define HITL_ID  "01936f4e-7c2a-7b3d-8e4f-0123456789ac"

#define AUTH_VECTOR  FG_SOURCE_DIR \
    "/vectors/records/AuthContext/valid-servicenow-write-held.json"

static fg_records_t  *records;


/* ------------------------------------------------------------- helpers */

static int
setup(void **state)
{
    fg_error_t  err;

    (void) state;
    records = fg_records_new(&err);
    return records != NULL ? 0 : -1;
}


static int
teardown(void **state)
{
    (void) state;
    fg_records_free(records);
    return 0;
}


static void
assert_valid(const json_t *rec)
{
    fg_schema_report_t  rep;
    char               *text;
    size_t              i;

    if (fg_record_validate(records, rec, &rep) != FG_OK) {
        for (i = 0; i < rep.count; i++) {
            print_error("%s\n", rep.line[i]);
        }
        text = json_dumps(rec, JSON_INDENT(2));
        print_error("%s\n", text != NULL ? text : "?");
        free(text);
        fail_msg("record does not validate");
    }
}


static void
make_trace(fg_trace_t *tr)
{
    memset(tr, 0, sizeof(*tr));
    strcpy(tr->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(tr->span_id, "00f067aa0ba902b7");
    strcpy(tr->parent_span_id, "5e2a9c41d07b36f8");
}


/* The AuthContext of the servicenow-write-held flow (a valid record). */
static json_t *
load_auth(void)
{
    fg_buffer_t   b;
    json_error_t  jerr;
    json_t       *auth;

    assert_int_equal(test_read_file(AUTH_VECTOR, &b), 0);
    auth = json_loadb((const char *) b.data, b.len, 0, &jerr);
    fg_buffer_free(&b);
    assert_non_null(auth);
    assert_valid(auth);
    return auth;
}


static fg_policy_t *
compile_ok(const char *text)
{
    fg_policy_t  *p;
    fg_error_t    err;

    p = fg_policy_compile(text, strlen(text), &err);
    if (p == NULL) {
        fail_msg("compile failed: %s\n%s", err.msg, text);
    }
    return p;
}


/*
 * Decide in with p and build the PolicyDecisionRecord; assert it is
 * valid.  Returns the decision kind.
 */
static fg_decision_kind_t
decide_and_record(const fg_policy_t *p, const json_t *in)
{
    fg_policy_record_args_t   a;
    fg_decision_t             d;
    fg_trace_t                tr;
    fg_error_t                err;
    json_t                   *gates, *perms, *rec;

    if (fg_policy_decide(p, in, NOW, &d, &err) != FG_OK) {
        fail_msg("decide failed: %s", err.msg);
    }

    make_trace(&tr);
    gates = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
                      "gate", "authn", "result", "pass",
                      "gate", "schema", "result", "pass",
                      "gate", "capability", "result", "pass");
    perms = json_pack("[s]", "tool:servicenow.incident:write");
    assert_non_null(gates);
    assert_non_null(perms);

    memset(&a, 0, sizeof(a));
    a.tenant_id = "acme";
    a.execution_id = EXEC_ID;
    a.trace = &tr;
    a.auth_context_sha256 = SHA_B;
    a.bundle_revision = "rev-42";
    a.bundle_sha256 = SHA_A;
    a.gates_before = gates;
    a.permissions_checked = perms;
    a.approval_request_id = HITL_ID;
    a.now_sec = NOW;
    a.now_nsec = 118000000;

    rec = fg_policy_decision_record(&d, in, &a, &err);
    if (rec == NULL) {
        fail_msg("decision record: %s", err.msg);
    }
    assert_valid(rec);

    json_decref(rec);
    json_decref(gates);
    json_decref(perms);
    return d.decision;
}


/* Parse a JSON body with fg_call_body(); asserts success. */
static json_t *
body_of(const char *text, fg_blobref_t *ref)
{
    fg_jcs_t     *jcs;
    fg_sha256_t  *h;
    fg_error_t    err;
    json_t       *v;

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();
    assert_non_null(jcs);
    assert_non_null(h);
    if (fg_call_body(jcs, h, (const unsigned char *) text, strlen(text), 1,
                     "application/json", 16, ref, &v, &err) != FG_OK)
    {
        fail_msg("body refused: %s", err.msg);
    }
    fg_sha256_free(h);
    fg_jcs_free(jcs);
    return v;
}


/* The usual tool-call arguments of the decision input. */
static void
tool_input_args(fg_call_input_args_t *a, const json_t *auth)
{
    memset(a, 0, sizeof(*a));
    a->kind = FG_CALL_TOOL;
    a->auth = auth;
    a->tool = "servicenow.incident";
    a->action = "write";
    a->risk = "high";
    a->method = "PATCH";
    a->method_len = 5;
    a->host = "acme.service-now.com";
    a->host_len = strlen(a->host);
    a->path = "/api/now/table/incident/42";
    a->path_len = strlen(a->path);
}


static void
model_input_args(fg_call_input_args_t *a, const json_t *auth)
{
    memset(a, 0, sizeof(*a));
    a->kind = FG_CALL_MODEL;
    a->auth = auth;
    a->provider = "openai";
    a->model = "gpt-4o";
    a->method = "POST";
    a->method_len = 4;
    a->host = "api.openai.com";
    a->host_len = strlen(a->host);
    a->path = "/v1/chat/completions";
    a->path_len = strlen(a->path);
}


/* ------------------------------------------------------- content types */

static void
test_content_type(void **state)
{
    static const struct {
        const char  *v;
        int          json;
    } cases[] = {
        { "application/json", 1 },
        { "application/json; charset=utf-8", 1 },
        { "Application/JSON;charset=UTF-8", 1 },
        { "  application/json\t", 1 },
        { "application/vnd.api+json", 1 },
        { "application/problem+JSON; x=1", 1 },
        { "application/+json", 0 },
        { "application/jsonx", 0 },
        { "application/json-patch", 0 },
        { "application/x-json-stream", 0 },
        { "text/json", 0 },
        { "text/plain", 0 },
        { "application", 0 },
        { "application/", 0 },
        { "json", 0 },
        { "application/js on", 0 },
        { "", 0 }
    };
    static const struct {
        const char  *v;
        const char  *want;
    } rec[] = {
        { "application/json", "application/json" },
        { "application/json; charset=utf-8",
          "application/json; charset=utf-8" },
        { "Text/Event-Stream", "Text/Event-Stream" },
        { "application/json ;charset=utf-8",
          "application/json ;charset=utf-8" },
        /* parameters the pattern refuses: the media type, lowercased */
        { "Application/JSON\t; charset=utf-8", "application/json" },
        { "application/json; x=\x01", "application/json" },
        { "application/json; x=\xc3\xa9", "application/json" },
        { " text/plain ", "text/plain" },
        { "application/json ", "application/json" },
        /* no usable media type */
        { "", "application/octet-stream" },
        { "garbage", "application/octet-stream" },
        { "a b/c", "application/octet-stream" },
        { "/json", "application/octet-stream" },
        { "text/\xc3\xa9", "application/octet-stream" },
        { ";charset=utf-8", "application/octet-stream" }
    };
    char    out[FG_CONTENT_TYPE_MAX], big[300];
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (fg_content_type_is_json(cases[i].v, strlen(cases[i].v))
            != cases[i].json)
        {
            fail_msg("is_json(\"%s\") is not %d", cases[i].v, cases[i].json);
        }
    }
    assert_int_equal(fg_content_type_is_json(NULL, 0), 0);
    /* a length, not a C string: the NUL ends nothing */
    assert_int_equal(fg_content_type_is_json("application/json\0x", 18), 0);
    assert_int_equal(fg_content_type_is_json("application/jsonXYZ", 16), 1);

    for (i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
        fg_content_type_record(rec[i].v, strlen(rec[i].v), out);
        assert_string_equal(out, rec[i].want);
    }
    fg_content_type_record(NULL, 0, out);
    assert_string_equal(out, "application/octet-stream");

    /* 127 bytes are kept, 128 fall back to the media type */
    memset(big, 0, sizeof(big));
    memcpy(big, "text/plain; x=", 14);
    memset(big + 14, 'a', 127 - 14);
    fg_content_type_record(big, 127, out);
    assert_int_equal(strlen(out), 127);
    big[127] = 'a';
    fg_content_type_record(big, 128, out);
    assert_string_equal(out, "text/plain");

    /* a media type alone too long: octet-stream */
    memcpy(big, "text/", 5);
    memset(big + 5, 'a', 200);
    fg_content_type_record(big, 205, out);
    assert_string_equal(out, "application/octet-stream");
}


/* ---------------------------------------------------------------- body */

static void
test_body(void **state)
{
    static const char  doc[] =
        "{ \"b\" : 1.50, \"a\": [true, null, \"x\\u00e9\"], \"c\": 1e2 }";
    unsigned char      stage[FG_SINK_STAGE], md[FG_SHA256_LEN];
    fg_blobref_t       ref;
    fg_buffer_t        canon;
    fg_sink_t          sink;
    fg_error_t         err;
    fg_jcs_t          *jcs;
    fg_sha256_t       *h;
    json_t            *v;
    int                rc;

    (void) state;

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();
    assert_non_null(jcs);
    assert_non_null(h);

    /* JSON: the hash and size of the canonical bytes */
    rc = fg_call_body(jcs, h, (const unsigned char *) doc, strlen(doc), 1,
                      "application/json; charset=utf-8", 31, &ref, &v, &err);
    assert_int_equal(rc, FG_OK);
    assert_non_null(v);
    assert_true(json_is_object(v));
    assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
    assert_string_equal(ref.content_type, "application/json; charset=utf-8");

    fg_buffer_init(&canon, 0);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));
    assert_int_equal(fg_jcs_canonicalize(jcs, (const unsigned char *) doc,
                                         strlen(doc), &sink, &err), FG_OK);
    assert_int_equal(fg_sink_drain(&sink), FG_OK);
    assert_string_equal((const char *) canon.data,
                        "{\"a\":[true,null,\"x\xc3\xa9\"],"
                        "\"b\":1.5,\"c\":100}");
    assert_int_equal(ref.size_bytes, canon.len);
    assert_int_equal(fg_sha256(canon.data, canon.len, md), FG_OK);
    assert_memory_equal(ref.sha256, md, FG_SHA256_LEN);
    fg_buffer_free(&canon);
    json_decref(v);

    /* the same document spelled otherwise hashes the same */
    {
        static const char  other[] =
            "{\"c\":100,\"a\":[true,null,\"x\xc3\xa9\"],\"b\":15e-1}";
        fg_blobref_t       ref2;

        rc = fg_call_body(jcs, h, (const unsigned char *) other,
                          strlen(other), 1, "application/json", 16, &ref2,
                          &v, &err);
        assert_int_equal(rc, FG_OK);
        assert_memory_equal(ref2.sha256, md, FG_SHA256_LEN);
        assert_int_equal(ref2.size_bytes, ref.size_bytes);
        json_decref(v);
    }

    /* a JSON scalar is a document too */
    rc = fg_call_body(jcs, h, (const unsigned char *) " 42 ", 4, 1, "", 0,
                      &ref, &v, &err);
    assert_int_equal(rc, FG_OK);
    assert_int_equal(json_integer_value(v), 42);
    assert_int_equal(ref.size_bytes, 2);
    assert_string_equal(ref.content_type, "application/octet-stream");
    json_decref(v);

    /* duplicate key: refused with the offset */
    memset(&err, 0, sizeof(err));
    v = (json_t *) 1;
    rc = fg_call_body(jcs, h, (const unsigned char *) "{\"a\":1,\"a\":2}", 13,
                      1, "application/json", 16, &ref, &v, &err);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_null(v);
    assert_int_equal(err.offset, 7);
    assert_string_equal(err.msg, "duplicate object key \"a\" at byte 7");

    /* invalid UTF-8 */
    rc = fg_call_body(jcs, h, (const unsigned char *) "{\"a\":\"\xff\"}", 9,
                      1, "application/json", 16, &ref, &v, &err);
    assert_int_equal(rc, FG_ERR_SYNTAX);
    assert_null(v);
    assert_int_equal(err.offset, 6);

    /* a lone surrogate, trailing garbage, an empty body */
    rc = fg_call_body(jcs, h, (const unsigned char *) "[\"\\ud800\"]", 10,
                      1, "application/json", 16, &ref, &v, &err);
    assert_true(rc < 0);
    rc = fg_call_body(jcs, h, (const unsigned char *) "{} x", 4, 1,
                      "application/json", 16, &ref, &v, &err);
    assert_int_equal(rc, FG_ERR_SYNTAX);
    rc = fg_call_body(jcs, h, NULL, 0, 1, "application/json", 16, &ref, &v,
                      &err);
    assert_true(rc < 0);
    assert_null(v);

    /* an integer jansson cannot hold */
    rc = fg_call_body(jcs, h,
                      (const unsigned char *) "{\"n\":100000000000000000000}",
                      27, 1, "application/json", 16, &ref, &v, &err);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_null(v);

    /* not JSON: the raw bytes */
    rc = fg_call_body(jcs, h, (const unsigned char *) "hello, world", 12, 0,
                      "text/plain", 10, &ref, &v, &err);
    assert_int_equal(rc, FG_OK);
    assert_null(v);
    assert_int_equal(ref.size_bytes, 12);
    assert_int_equal(fg_sha256("hello, world", 12, md), FG_OK);
    assert_memory_equal(ref.sha256, md, FG_SHA256_LEN);
    assert_string_equal(ref.content_type, "text/plain");

    /* raw bytes need not be anything: invalid JSON, NUL, bad UTF-8 */
    rc = fg_call_body(jcs, h, (const unsigned char *) "{\"a\":1,\"a\"\0\xff",
                      13, 0, NULL, 0, &ref, &v, &err);
    assert_int_equal(rc, FG_OK);
    assert_int_equal(ref.size_bytes, 13);
    assert_string_equal(ref.content_type, "application/octet-stream");

    /* an empty raw body */
    rc = fg_call_body(jcs, h, NULL, 0, 0, "text/plain", 10, &ref, &v, &err);
    assert_int_equal(rc, FG_OK);
    assert_int_equal(ref.size_bytes, 0);
    assert_int_equal(fg_sha256("", 0, md), FG_OK);
    assert_memory_equal(ref.sha256, md, FG_SHA256_LEN);

    /* missing arguments */
    assert_int_equal(fg_call_body(NULL, h, (const unsigned char *) "{}", 2, 1,
                                  NULL, 0, &ref, &v, &err), FG_ERR_INVALID);
    assert_int_equal(fg_call_body(jcs, h, NULL, 3, 0, NULL, 0, &ref, &v,
                                  &err), FG_ERR_INVALID);
    assert_int_equal(fg_call_body(jcs, h, (const unsigned char *) "{}", 2, 1,
                                  NULL, 0, NULL, &v, &err), FG_ERR_INVALID);

    fg_sha256_free(h);
    fg_jcs_free(jcs);
}


/* -------------------------------------------------------------- labels */

static void
labels_fail(const char *v, size_t len, int code, size_t offset,
    const char *want)
{
    fg_error_t  err;
    json_t     *out = (json_t *) 1;
    int         rc;

    memset(&err, 0, sizeof(err));
    rc = fg_labels_parse(v, len, &out, &err);
    if (rc != code) {
        fail_msg("labels \"%.*s\": %d, expected %d (%s)", (int) len, v, rc,
                 code, err.msg);
    }
    assert_null(out);
    assert_int_equal(err.code, code);
    if (offset != FG_NO_OFFSET) {
        assert_int_equal(err.offset, offset);
    }
    if (strstr(err.msg, want) == NULL) {
        fail_msg("labels error \"%s\" does not say \"%s\"", err.msg, want);
    }
}


static json_t *
labels_ok(const char *v)
{
    fg_error_t  err;
    json_t     *out;

    if (fg_labels_parse(v, strlen(v), &out, &err) != FG_OK) {
        fail_msg("labels \"%s\" refused: %s", v, err.msg);
    }
    assert_true(json_is_object(out));
    return out;
}


static void
test_labels(void **state)
{
    char     buf[FG_CALL_LABELS_TEXT_MAX + 16], *p;
    json_t  *l;
    size_t   i;

    (void) state;

    l = labels_ok("team=service-desk, ticket=INC0012345 ,"
                  " use_case = itsm triage ,, ,\t");
    assert_int_equal(json_object_size(l), 3);
    assert_string_equal(json_string_value(json_object_get(l, "team")),
                        "service-desk");
    assert_string_equal(json_string_value(json_object_get(l, "ticket")),
                        "INC0012345");
    assert_string_equal(json_string_value(json_object_get(l, "use_case")),
                        "itsm triage");
    json_decref(l);

    l = labels_ok("");
    assert_int_equal(json_object_size(l), 0);
    json_decref(l);
    assert_int_equal(fg_labels_parse(NULL, 0, &l, NULL), FG_OK);
    assert_int_equal(json_object_size(l), 0);
    json_decref(l);

    l = labels_ok(" , ,,");
    assert_int_equal(json_object_size(l), 0);
    json_decref(l);

    /* empty value, '=' inside a value, every allowed key byte */
    l = labels_ok("a=,b=x=y,k.0_-9=~!\"#$%&'()*+-./:;<=>?@[\\]^_`{|}");
    assert_string_equal(json_string_value(json_object_get(l, "a")), "");
    assert_string_equal(json_string_value(json_object_get(l, "b")), "x=y");
    assert_string_equal(json_string_value(json_object_get(l, "k.0_-9")),
                        "~!\"#$%&'()*+-./:;<=>?@[\\]^_`{|}");
    json_decref(l);

    /* 16 members, a 64-byte key and a 256-byte value are the bounds */
    p = buf;
    for (i = 0; i < 16; i++) {
        p += sprintf(p, "%sk%zu=v", i ? "," : "", i);
    }
    l = labels_ok(buf);
    assert_int_equal(json_object_size(l), 16);
    json_decref(l);

    memset(buf, 'k', 64);
    buf[64] = '=';
    memset(buf + 65, 'v', 256);
    buf[321] = '\0';
    l = labels_ok(buf);
    assert_int_equal(json_string_length(json_object_iter_value(
        json_object_iter(l))), 256);
    json_decref(l);

    /* missing '=' */
    labels_fail("team", 4, FG_ERR_INVALID, 0, "member 1 at byte 0 is not "
                "key=value");
    labels_fail("a=1, team ", 10, FG_ERR_INVALID, 5, "member 2");
    /* empty key */
    labels_fail("=v", 2, FG_ERR_INVALID, 0, "empty key");
    labels_fail(" \t= v", 5, FG_ERR_INVALID, 2, "empty key");
    /* bad key bytes */
    labels_fail("Team=x", 6, FG_ERR_INVALID, 0, "is not one of a-z 0-9");
    labels_fail("a=1,te am=x", 11, FG_ERR_INVALID, 6, "member 2: key byte");
    labels_fail("t:x=1", 5, FG_ERR_INVALID, 1, "key byte at 1");
    labels_fail("t\xc3\xa9=1", 6, FG_ERR_INVALID, 1, "key byte");
    labels_fail("t\x01=1", 4, FG_ERR_INVALID, 1, "key byte");
    /* duplicate */
    labels_fail("a=1,b=2, a = 3", 14, FG_ERR_INVALID, 9,
                "label \"a\" appears twice (member 3)");
    /* too many */
    p = buf;
    for (i = 0; i < 17; i++) {
        p += sprintf(p, "%sk%zu=v", i ? "," : "", i);
    }
    labels_fail(buf, strlen(buf), FG_ERR_LIMIT, FG_NO_OFFSET,
                "more than 16 labels (member 17");
    /* key and value too long */
    memset(buf, 'k', 65);
    buf[65] = '=';
    buf[66] = '\0';
    labels_fail(buf, 66, FG_ERR_LIMIT, 0, "key of 65 bytes (at most 64)");
    memset(buf, 'v', sizeof(buf));
    memcpy(buf, "k=", 2);
    labels_fail(buf, 2 + 257, FG_ERR_LIMIT, 2,
                "value of 257 bytes (at most 256)");
    /* control characters and non-ASCII in values */
    labels_fail("k=a\x01z", 5, FG_ERR_INVALID, 3,
                "label \"k\": value byte at 3 is not printable ASCII");
    labels_fail("k=a\tz", 5, FG_ERR_INVALID, 3, "not printable ASCII");
    labels_fail("k=a\x7fz", 5, FG_ERR_INVALID, 3, "not printable ASCII");
    labels_fail("k=caf\xc3\xa9", 7, FG_ERR_INVALID, 5, "not printable");
    labels_fail("k=a\0z", 5, FG_ERR_INVALID, 3, "not printable ASCII");
    labels_fail("k=a\r\nX-Evil: 1", 15, FG_ERR_INVALID, 3, "not printable");
    /* the whole value too long, even when it is only separators */
    memset(buf, ',', sizeof(buf));
    labels_fail(buf, FG_CALL_LABELS_TEXT_MAX + 1, FG_ERR_LIMIT,
                FG_CALL_LABELS_TEXT_MAX, "longer than 8192");
    l = NULL;
    assert_int_equal(fg_labels_parse(buf, FG_CALL_LABELS_TEXT_MAX, &l, NULL),
                     FG_OK);
    json_decref(l);
    /* bad arguments */
    assert_int_equal(fg_labels_parse(NULL, 3, &l, NULL), FG_ERR_INVALID);
    assert_int_equal(fg_labels_parse("a=b", 3, NULL, NULL), FG_ERR_INVALID);
}


/* -------------------------------------------------------- small checks */

static void
test_small_checks(void **state)
{
    char  buf[300];

    (void) state;

    assert_true(fg_call_token_valid("a", 1));
    assert_true(fg_call_token_valid("req_8f3b!~", 10));
    assert_false(fg_call_token_valid("", 0));
    assert_false(fg_call_token_valid(NULL, 0));
    assert_false(fg_call_token_valid("a b", 3));
    assert_false(fg_call_token_valid("a\x7f", 2));
    assert_false(fg_call_token_valid("\xc3\xa9", 2));
    assert_false(fg_call_token_valid("a\0b", 3));
    memset(buf, 'x', sizeof(buf));
    assert_true(fg_call_token_valid(buf, 256));
    assert_false(fg_call_token_valid(buf, 257));

    assert_true(fg_call_tool_id_valid("servicenow.incident", 19));
    assert_true(fg_call_tool_id_valid("0", 1));
    assert_true(fg_call_tool_id_valid("a_b-c.d", 7));
    assert_false(fg_call_tool_id_valid("", 0));
    assert_false(fg_call_tool_id_valid(NULL, 0));
    assert_false(fg_call_tool_id_valid("_a", 2));
    assert_false(fg_call_tool_id_valid("Slack", 5));
    assert_false(fg_call_tool_id_valid("a:b", 3));
    assert_false(fg_call_tool_id_valid("a b", 3));
    assert_true(fg_call_tool_id_valid(buf, 128));
    assert_false(fg_call_tool_id_valid(buf, 129));
}


/* ------------------------------------------------------ decision input */

static const char  model_policy[] =
    "{\"rules\":["
    "{\"id\":\"big\",\"match\":{\"body:/max_tokens\":{\"gt\":1000}},"
    "\"decision\":\"DENY\"},"
    "{\"id\":\"tools\",\"match\":{\"body:/tools\":{\"exists\":true}},"
    "\"decision\":\"REQUIRE_STEP_UP\",\"acr_values\":\"mfa\"},"
    "{\"id\":\"meta\",\"match\":{\"body:/metadata\":{\"exists\":true},"
    "\"body:/messages/0/role\":\"system\"},\"decision\":\"DENY\"},"
    "{\"id\":\"esc\",\"match\":{\"body:/a~1b\":true,\"body:/m~0n\":"
    "{\"exists\":true}},\"decision\":\"DENY\"},"
    "{\"id\":\"arr\",\"match\":{\"body:/arr/1\":2,\"body:/arr/01\":2,"
    "\"body:/arr/-\":2,\"body:/arr/9\":2,\"body:/model/0\":2,"
    "\"body:/\":1,\"body:/messages/0/content\":\"x\"},"
    "\"decision\":\"DENY\"},"
    "{\"id\":\"gpt\",\"match\":{\"model\":{\"glob\":\"gpt-4o*\"}},"
    "\"decision\":\"ALLOW\"}]}";

static const char  model_body[] =
    "{\"model\":\"gpt-4o\",\"max_tokens\":100,\"temperature\":0.5,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"metadata\":{\"x\":1},\"a/b\":true,\"m~n\":null,\"arr\":[1,2],"
    "\"\":1}";


/* ------------------------------------------------------- body view */

/*
 * The decision input of body read whole (fg_call_body()) and read as a
 * view (fg_call_body_view()) with the policy's pointers: the same.
 */
static void
assert_view_same(const char *body, const char *policy)
{
    fg_call_input_args_t   a;
    const char *const     *ptrs;
    fg_blobref_t           ref, vref;
    fg_policy_t           *p;
    fg_error_t             err;
    fg_jcs_t              *jcs;
    fg_sha256_t           *h;
    json_t                *auth, *whole, *view, *in1, *in2;
    size_t                 n;

    auth = load_auth();
    whole = body_of(body, &ref);
    p = compile_ok(policy);
    n = fg_policy_body_pointers(p, &ptrs);

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();
    if (fg_call_body_view(jcs, h, (const unsigned char *) body, strlen(body),
                          "application/json", 16, ptrs, n, &vref, &view,
                          &err) != FG_OK)
    {
        fail_msg("view refused: %s", err.msg);
    }
    assert_memory_equal(ref.sha256, vref.sha256, FG_SHA256_LEN);
    assert_int_equal(ref.size_bytes, vref.size_bytes);
    assert_string_equal(ref.content_type, vref.content_type);

    model_input_args(&a, auth);
    a.request = &ref;
    a.pointers = ptrs;
    a.npointers = n;

    a.body = whole;
    in1 = fg_call_decision_input(&a, &err);
    assert_non_null(in1);
    a.body = view;
    in2 = fg_call_decision_input(&a, &err);
    assert_non_null(in2);

    if (!json_equal(in1, in2)) {
        char  *t1 = json_dumps(json_object_get(in1, "body"), JSON_SORT_KEYS);
        char  *t2 = json_dumps(json_object_get(in2, "body"), JSON_SORT_KEYS);

        print_error("whole: %s\nview:  %s\n", t1, t2);
        free(t1);
        free(t2);
        fail_msg("the view's decision input differs");
    }

    json_decref(in1);
    json_decref(in2);
    json_decref(view);
    json_decref(whole);
    json_decref(auth);
    fg_policy_free(p);
    fg_sha256_free(h);
    fg_jcs_free(jcs);
}


static void
test_body_view(void **state)
{
    fg_blobref_t   ref;
    fg_error_t     err;
    fg_jcs_t      *jcs;
    fg_sha256_t   *h;
    json_t        *v;
    const char    *ptrs[] = { "/model", "/stream_options/include_usage",
                              "/n/2/x", "/big" };
    const char    *body;

    (void) state;

    assert_view_same(model_body, model_policy);

    /* escaped keys, pointers through arrays of objects, absent parts */
    assert_view_same(
        "{\"\\u0061/b\":true,\"m~n\":[],\"messages\":[{\"role\":\"system\","
        "\"content\":\"x\"},{\"role\":\"user\"}],\"arr\":[1,2,3],"
        "\"max_tokens\":1e3,\"tools\":[]}", model_policy);
    assert_view_same("{\"messages\":{\"0\":{\"role\":\"system\"}},"
                     "\"arr\":\"12\",\"model\":[5]}", model_policy);
    assert_view_same("[1,2]", model_policy);
    assert_view_same("\"text\"", model_policy);

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();

    /* only what the pointers name is there; a later index is padded */
    body = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\"}],"
           "\"stream_options\":{\"include_usage\":true,\"x\":1},"
           "\"n\":[0,1,{\"x\":-0.5,\"y\":2}],\"big\":12345678901234567,"
           "\"huge\":123456789012345678901234567890}";
    assert_int_equal(fg_call_body_view(jcs, h, (const unsigned char *) body,
                     strlen(body), "application/json", 16, ptrs, 4, &ref, &v,
                     &err), FG_OK);
    assert_int_equal(json_object_size(v), 4);
    assert_null(json_object_get(v, "messages"));
    assert_null(json_object_get(v, "huge"));
    assert_int_equal(json_object_size(json_object_get(v, "stream_options")),
                     1);
    assert_true(json_is_null(json_array_get(json_object_get(v, "n"), 0)));
    assert_true(json_real_value(json_object_get(json_array_get(
                json_object_get(v, "n"), 2), "x")) == -0.5);
    assert_int_equal(json_integer_value(json_object_get(v, "big")),
                     12345678901234567LL);
    json_decref(v);

    /* an integer beyond 64 bits where a pointer reads it: refused */
    body = "{\"big\":123456789012345678901234567890}";
    assert_int_equal(fg_call_body_view(jcs, h, (const unsigned char *) body,
                     strlen(body), "application/json", 16, ptrs, 4, &ref, &v,
                     &err), FG_ERR_INVALID);
    assert_null(v);

    /* what the canonicalizer refuses is refused */
    body = "{\"model\":1,\"model\":2}";
    assert_int_equal(fg_call_body_view(jcs, h, (const unsigned char *) body,
                     strlen(body), "", 0, ptrs, 4, &ref, &v, &err),
                     FG_ERR_INVALID);
    assert_null(v);

    fg_sha256_free(h);
    fg_jcs_free(jcs);
}


static void
test_input_model(void **state)
{
    fg_call_input_args_t   a;
    const char *const     *ptrs;
    fg_blobref_t           ref;
    fg_policy_t           *p;
    fg_error_t             err;
    json_t                *auth, *body, *in, *b, *labels, *appr;
    size_t                 n;

    (void) state;

    auth = load_auth();
    body = body_of(model_body, &ref);
    p = compile_ok(model_policy);
    n = fg_policy_body_pointers(p, &ptrs);
    assert_int_equal(n, 13);
    assert_int_equal(fg_labels_parse("team=sd", 7, &labels, &err), FG_OK);
    appr = json_pack("{s:s, s:s, s:s, s:s}", "approval_id", HITL_ID,
                     "jti", "j1", "approver", "bob", "input_sha256", SHA_A);

    model_input_args(&a, auth);
    a.request = &ref;
    a.body = body;
    a.pointers = ptrs;
    a.npointers = n;
    a.labels = labels;
    a.approval = appr;      /* model calls have none: recorded null */

    in = fg_call_decision_input(&a, &err);
    if (in == NULL) {
        fail_msg("decision input: %s", err.msg);
    }

    assert_string_equal(json_string_value(json_object_get(in, "kind")),
                        "model");
    assert_string_equal(json_string_value(json_object_get(in, "tenant_id")),
                        "acme");
    assert_string_equal(json_string_value(json_object_get(in,
                        "workspace_id")), "itsm-triage");
    assert_string_equal(json_string_value(json_object_get(in,
                        "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(in, "principal")),
                        "svc-itsm-triage-agent@acme.example");
    assert_true(json_is_null(json_object_get(in, "acr")));
    assert_int_equal(json_array_size(json_object_get(in, "capabilities")), 4);
    assert_string_equal(json_string_value(json_object_get(in, "provider")),
                        "openai");
    assert_string_equal(json_string_value(json_object_get(in, "model")),
                        "gpt-4o");
    assert_true(json_is_null(json_object_get(in, "tool")));
    assert_true(json_is_null(json_object_get(in, "action")));
    assert_true(json_is_null(json_object_get(in, "risk")));
    assert_true(json_is_null(json_object_get(in, "approval")));
    assert_true(json_is_object(json_object_get(in, "request")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        in, "labels"), "team")), "sd");
    assert_int_equal(json_object_size(json_object_get(in, "counters")), 0);
    assert_int_equal(json_object_size(in), 20);

    b = json_object_get(in, "body");
    /* scalars as they are */
    assert_int_equal(json_integer_value(json_object_get(b, "/max_tokens")),
                     100);
    assert_string_equal(json_string_value(json_object_get(b,
                        "/messages/0/role")), "user");
    assert_string_equal(json_string_value(json_object_get(b,
                        "/messages/0/content")), "hi");
    assert_true(json_is_true(json_object_get(b, "/a~1b")));
    assert_true(json_is_null(json_object_get(b, "/m~0n")));
    assert_int_equal(json_integer_value(json_object_get(b, "/arr/1")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "/")), 1);
    /* containers as {} and [] */
    assert_true(json_is_object(json_object_get(b, "/metadata")));
    assert_int_equal(json_object_size(json_object_get(b, "/metadata")), 0);
    /* missing pointers are absent */
    assert_null(json_object_get(b, "/tools"));
    assert_null(json_object_get(b, "/arr/01"));
    assert_null(json_object_get(b, "/arr/-"));
    assert_null(json_object_get(b, "/arr/9"));
    assert_null(json_object_get(b, "/model/0"));
    assert_int_equal(json_object_size(b), 8);

    assert_int_equal(decide_and_record(p, in), FG_DECISION_ALLOW);
    json_decref(in);

    /* an array read by a pointer is recorded as [] and exists sees it */
    json_object_set_new(body, "tools", json_pack("[{s:s}]", "type", "x"));
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    b = json_object_get(json_object_get(in, "body"), "/tools");
    assert_true(json_is_array(b));
    assert_int_equal(json_array_size(b), 0);
    assert_int_equal(decide_and_record(p, in), FG_DECISION_REQUIRE_STEP_UP);
    json_decref(in);

    /* a policy's body predicate decides from the recorded value */
    json_object_del(body, "tools");
    json_object_set_new(body, "max_tokens", json_integer(4000));
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_int_equal(decide_and_record(p, in), FG_DECISION_DENY);
    json_decref(in);

    /* no model (a malformed request), no body, no labels */
    a.model = NULL;
    a.body = NULL;
    a.request = NULL;
    a.labels = NULL;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_true(json_is_null(json_object_get(in, "model")));
    assert_true(json_is_null(json_object_get(in, "request")));
    assert_int_equal(json_object_size(json_object_get(in, "body")), 0);
    assert_int_equal(json_object_size(json_object_get(in, "labels")), 0);
    assert_int_equal(decide_and_record(p, in), FG_DECISION_DENY);
    json_decref(in);

    json_decref(appr);
    json_decref(labels);
    json_decref(body);
    json_decref(auth);
    fg_policy_free(p);
}


static void
test_input_tool(void **state)
{
    static const char      pol[] =
        "{\"rules\":["
        "{\"id\":\"rpm\",\"match\":{\"tool\":\"servicenow.incident\"},"
        "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":10,"
        "\"window_seconds\":60}},"
        "{\"id\":\"tpm\",\"match\":{\"action\":\"write\"},"
        "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":5,"
        "\"tokens\":1000,\"window_seconds\":3600}},"
        "{\"id\":\"hitl\",\"match\":{\"body:/state\":\"closed\","
        "\"risk\":\"high\"},\"decision\":\"REQUIRE_HITL\"},"
        "{\"id\":\"ok\",\"match\":{\"kind\":\"tool\"},"
        "\"decision\":\"ALLOW\"}]}";
    fg_call_input_args_t   a;
    const char *const     *ptrs;
    fg_throttle_t          t[8];
    long long              req[8], tok[8];
    fg_blobref_t           ref;
    fg_policy_t           *p;
    fg_error_t             err;
    json_t                *auth, *body, *in, *c, *appr;
    char                   hex[FG_SHA256_HEX_LEN + 1];
    long                   nt;
    size_t                 n;

    (void) state;

    auth = load_auth();
    body = body_of("{\"state\":\"closed\",\"short_description\":\"x\"}",
                   &ref);
    p = compile_ok(pol);
    n = fg_policy_body_pointers(p, &ptrs);
    assert_int_equal(n, 1);

    tool_input_args(&a, auth);
    a.request = &ref;
    a.body = body;
    a.pointers = ptrs;
    a.npointers = n;

    in = fg_call_decision_input(&a, &err);
    if (in == NULL) {
        fail_msg("decision input: %s", err.msg);
    }
    assert_string_equal(json_string_value(json_object_get(in, "kind")),
                        "tool");
    assert_true(json_is_null(json_object_get(in, "provider")));
    assert_true(json_is_null(json_object_get(in, "model")));
    assert_string_equal(json_string_value(json_object_get(in, "tool")),
                        "servicenow.incident");
    assert_string_equal(json_string_value(json_object_get(in, "action")),
                        "write");
    assert_string_equal(json_string_value(json_object_get(in, "risk")),
                        "high");
    assert_string_equal(json_string_value(json_object_get(in, "method")),
                        "PATCH");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        in, "body"), "/state")), "closed");
    assert_int_equal(json_object_size(in), 20);

    /* the throttles that hold, their counters, then the decision */
    nt = fg_policy_throttles(p, in, t, 8, &err);
    assert_int_equal(nt, 2);
    req[0] = 3;
    tok[0] = 99;        /* not limited: recorded null */
    req[1] = 5;
    tok[1] = 12;
    c = fg_call_counters(t, (size_t) nt, req, tok);
    assert_non_null(c);
    json_decref(in);

    a.counters = c;
    a.risk = "medium";          /* the REQUIRE_HITL would win */
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_int_equal(json_object_size(json_object_get(in, "counters")), 2);
    assert_int_equal(decide_and_record(p, in), FG_DECISION_THROTTLE);
    json_decref(in);
    json_decref(c);
    a.risk = "high";

    /* under the limits: the approval satisfies the REQUIRE_HITL */
    req[1] = 0;
    c = fg_call_counters(t, (size_t) nt, req, tok);
    fg_hex_sha256(ref.sha256, hex);
    appr = json_pack("{s:s, s:s, s:s, s:s}", "approval_id", HITL_ID,
                     "jti", "j1", "approver", "bob", "input_sha256", hex);
    a.counters = c;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_true(json_is_null(json_object_get(in, "approval")));
    assert_int_equal(decide_and_record(p, in), FG_DECISION_REQUIRE_HITL);
    json_decref(in);
    a.approval = appr;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        in, "approval"), "approver")), "bob");
    assert_int_equal(decide_and_record(p, in), FG_DECISION_ALLOW);
    json_decref(in);

    /* a GET without body or risk: {} and nulls */
    a.approval = NULL;
    a.risk = NULL;
    a.action = "read";
    a.method = "GET";
    a.method_len = 3;
    a.body = NULL;
    a.request = NULL;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_true(json_is_null(json_object_get(in, "risk")));
    assert_true(json_is_null(json_object_get(in, "request")));
    assert_int_equal(json_object_size(json_object_get(in, "body")), 0);
    assert_int_equal(decide_and_record(p, in), FG_DECISION_ALLOW);
    json_decref(in);

    json_decref(c);
    json_decref(appr);
    json_decref(body);
    json_decref(auth);
    fg_policy_free(p);
}


static void
input_fails(const fg_call_input_args_t *a, int code, const char *want)
{
    fg_error_t  err;
    json_t     *in;

    memset(&err, 0, sizeof(err));
    in = fg_call_decision_input(a, &err);
    if (in != NULL) {
        json_decref(in);
        fail_msg("decision input built but should not (%s)", want);
    }
    assert_int_equal(err.code, code);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, want);
    }
}


static void
test_input_refusals(void **state)
{
    static const char *const  ptrs[] = { "/s" };
    static const char *const  bad_ptr[] = { "s" };
    static const char *const  bad_tilde[] = { "/a~2" };
    const char                *many[FG_POLICY_MAX_BODY_POINTERS + 1];
    fg_call_input_args_t       a;
    fg_policy_t               *p;
    fg_error_t                 err;
    json_t                    *auth, *body, *in, *bad, *s;
    char                      *big;
    size_t                     i;

    (void) state;

    auth = load_auth();
    model_input_args(&a, auth);
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    json_decref(in);

    /* a body string of 4096 characters is recorded; 4097 is not */
    big = malloc(4097 * 2 + 1);
    assert_non_null(big);
    for (i = 0; i < 4096; i++) {
        memcpy(big + 2 * i, "\xc3\xa9", 2);     /* 2 bytes, 1 character */
    }
    big[2 * 4096] = '\0';
    body = json_pack("{s:s}", "s", big);
    assert_non_null(body);
    a.body = body;
    a.pointers = ptrs;
    a.npointers = 1;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    assert_int_equal(json_string_length(json_object_get(json_object_get(
        in, "body"), "/s")), 8192);
    p = compile_ok("{\"rules\":[{\"id\":\"s\",\"match\":{\"body:/s\":"
                   "{\"exists\":true}},\"decision\":\"DENY\"}]}");
    assert_int_equal(decide_and_record(p, in), FG_DECISION_DENY);
    fg_policy_free(p);
    json_decref(in);

    memcpy(big + 2 * 4096, "x", 2);
    s = json_string(big);
    json_object_set_new(body, "s", s);
    input_fails(&a, FG_ERR_LIMIT, "body:/s reads a string of 4097 "
                "characters (at most 4096 can be recorded)");
    free(big);

    /* pointers */
    a.pointers = bad_ptr;
    input_fails(&a, FG_ERR_INVALID, "not a JSON pointer");
    a.pointers = bad_tilde;
    input_fails(&a, FG_ERR_INVALID, "not a JSON pointer");
    for (i = 0; i < FG_POLICY_MAX_BODY_POINTERS + 1; i++) {
        many[i] = "/s";
    }
    a.pointers = many;
    a.npointers = FG_POLICY_MAX_BODY_POINTERS + 1;
    input_fails(&a, FG_ERR_INVALID, "65 body pointers");
    a.pointers = NULL;
    a.npointers = 1;
    input_fails(&a, FG_ERR_INVALID, "body pointers");
    a.npointers = 0;
    a.body = NULL;

    /* the request target */
    a.method = "get";
    a.method_len = 3;
    input_fails(&a, FG_ERR_INVALID, "method");
    a.method = "POST ";
    a.method_len = 5;
    input_fails(&a, FG_ERR_INVALID, "method");
    a.method = "POST";
    a.method_len = 4;
    a.host = "API.openai.com";
    input_fails(&a, FG_ERR_INVALID, "host");
    a.host = "api openai";
    a.host_len = 10;
    input_fails(&a, FG_ERR_INVALID, "host");
    a.host = "a\0b";
    a.host_len = 3;
    input_fails(&a, FG_ERR_INVALID, "host");
    a.host = "[::1]:8080";
    a.host_len = 10;
    a.path = "/v1/chat\x01";
    a.path_len = 9;
    input_fails(&a, FG_ERR_INVALID, "path");
    a.path = "/v1/\xff";
    a.path_len = 5;
    input_fails(&a, FG_ERR_INVALID, "path");
    a.path = "v1/chat";
    a.path_len = 7;
    input_fails(&a, FG_ERR_INVALID, "path");
    a.path = "/v1\0x";
    a.path_len = 5;
    input_fails(&a, FG_ERR_INVALID, "path");
    a.path = "/caf\xc3\xa9";
    a.path_len = 6;
    in = fg_call_decision_input(&a, &err);
    assert_non_null(in);
    json_decref(in);

    /* kind-specific fields */
    a.provider = "openaix";
    input_fails(&a, FG_ERR_INVALID, "provider");
    a.provider = "openai";
    a.model = "gpt 4o";
    input_fails(&a, FG_ERR_INVALID, "model");
    a.model = "gpt-4o";
    a.kind = (fg_call_kind_t) 7;
    input_fails(&a, FG_ERR_INVALID, "kind");

    tool_input_args(&a, auth);
    a.tool = "ServiceNow";
    input_fails(&a, FG_ERR_INVALID, "tool");
    a.tool = "servicenow.incident";
    a.action = "delete";
    input_fails(&a, FG_ERR_INVALID, "action");
    a.action = NULL;
    input_fails(&a, FG_ERR_INVALID, "action");
    a.action = "read";
    a.risk = "critical";
    input_fails(&a, FG_ERR_INVALID, "risk");
    a.risk = NULL;
    bad = json_array();
    a.labels = bad;
    input_fails(&a, FG_ERR_INVALID, "not an object");
    a.labels = NULL;
    a.counters = bad;
    input_fails(&a, FG_ERR_INVALID, "not an object");
    a.counters = NULL;
    a.approval = bad;
    input_fails(&a, FG_ERR_INVALID, "not an object");
    a.approval = NULL;
    json_decref(bad);

    /* the AuthContext */
    a.auth = NULL;
    input_fails(&a, FG_ERR_INVALID, "AuthContext");
    bad = json_deep_copy(auth);
    a.auth = bad;
    json_object_del(bad, "principal");
    input_fails(&a, FG_ERR_INVALID, "principal");
    json_object_set_new(bad, "principal", json_string("p"));
    json_object_set_new(bad, "tenant_id", json_string("ACME"));
    input_fails(&a, FG_ERR_INVALID, "tenant_id");
    json_object_set_new(bad, "tenant_id", json_string("acme"));
    json_object_set_new(bad, "acr", json_integer(2));
    input_fails(&a, FG_ERR_INVALID, "acr");
    json_object_set_new(bad, "acr", json_string("urn:mfa"));
    json_object_del(bad, "capabilities");
    input_fails(&a, FG_ERR_INVALID, "capabilities");
    json_decref(bad);

    assert_null(fg_call_decision_input(NULL, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    json_decref(body);
    json_decref(auth);
}


static void
test_counters(void **state)
{
    fg_throttle_t  t[3];
    long long      req[3] = { 7, -5, 9007199254740993LL };
    long long      tok[3] = { 1, 250, 3 };
    json_t        *c, *e;

    (void) state;

    memset(t, 0, sizeof(t));
    t[0].rule_id = "rpm";
    t[0].requests = 10;
    t[0].tokens = -1;
    t[0].window_seconds = 60;
    t[1].rule_id = "tpm";
    t[1].requests = 1;
    t[1].tokens = 1000;
    t[1].window_seconds = 3600;
    t[2].rule_id = "big";
    t[2].requests = 5;
    t[2].tokens = -1;
    t[2].window_seconds = 1;

    c = fg_call_counters(t, 3, req, tok);
    assert_non_null(c);
    assert_int_equal(json_object_size(c), 3);
    e = json_object_get(c, "rpm");
    assert_int_equal(json_integer_value(json_object_get(e, "requests")), 7);
    assert_true(json_is_null(json_object_get(e, "tokens")));
    assert_int_equal(json_integer_value(json_object_get(e, "window_seconds")),
                     60);
    e = json_object_get(c, "tpm");
    assert_int_equal(json_integer_value(json_object_get(e, "requests")), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "tokens")), 250);
    e = json_object_get(c, "big");
    assert_int_equal(json_integer_value(json_object_get(e, "requests")),
                     9007199254740991LL);
    json_decref(c);

    /* no values read: zeros */
    c = fg_call_counters(t, 2, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c,
                     "tpm"), "tokens")), 0);
    json_decref(c);

    c = fg_call_counters(NULL, 0, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(json_object_size(c), 0);
    json_decref(c);
    assert_null(fg_call_counters(NULL, 1, NULL, NULL));
}


/* -------------------------------------------------------- call records */

static void
model_record_args(fg_call_record_args_t *a, const fg_trace_t *tr)
{
    memset(a, 0, sizeof(*a));
    a->kind = FG_CALL_MODEL;
    a->tenant_id = "acme";
    a->execution_id = EXEC_ID;
    a->trace = tr;
    a->policy_decision_sha256 = SHA_B;
    a->provider = FG_PROVIDER_OPENAI;
    a->endpoint = FG_ENDPOINT_CHAT_COMPLETIONS;
    a->model = "gpt-4o";
    a->outcome = FG_OUTCOME_COMPLETED;
    a->started_sec = NOW;
    a->started_nsec = 530000000;
    a->finished_sec = NOW + 3;
    a->finished_nsec = 902000000;
}


static void
tool_record_args(fg_call_record_args_t *a, const fg_trace_t *tr)
{
    memset(a, 0, sizeof(*a));
    a->kind = FG_CALL_TOOL;
    a->tenant_id = "acme";
    a->execution_id = EXEC_ID;
    a->trace = tr;
    a->policy_decision_sha256 = SHA_B;
    a->tool = "servicenow.incident";
    a->action = "write";
    a->risk = "high";
    a->method = "PATCH";
    a->method_len = 5;
    a->host = "acme.service-now.com";
    a->host_len = strlen(a->host);
    a->path = "/api/now/table/incident/42";
    a->path_len = strlen(a->path);
    a->outcome = FG_OUTCOME_COMPLETED;
    a->started_sec = NOW;
    a->finished_sec = NOW;
    a->finished_nsec = 1000000;
}


static json_t *
record_ok(const fg_call_record_args_t *a)
{
    fg_error_t  err;
    json_t     *rec;

    rec = fg_call_record(a, &err);
    if (rec == NULL) {
        fail_msg("call record: %s", err.msg);
    }
    assert_valid(rec);
    return rec;
}


static void
record_fails(const fg_call_record_args_t *a, int code, const char *want)
{
    fg_error_t  err;
    json_t     *rec;

    memset(&err, 0, sizeof(err));
    rec = fg_call_record(a, &err);
    if (rec != NULL) {
        json_decref(rec);
        fail_msg("call record built but should not (%s)", want);
    }
    assert_int_equal(err.code, code);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, want);
    }
}


static void
test_model_record(void **state)
{
    static const char *const  red[] = {
        "header:x-api-key", "header:authorization", "header:foxgov-labels",
        "header:x-api-key", "header:authorization"
    };
    fg_call_record_args_t      a;
    fg_blobref_t               req, resp;
    fg_usage_t                 u;
    fg_trace_t                 tr;
    fg_sha256_t               *h;
    fg_error_t                 err;
    json_t                    *rec, *perms, *labels, *cost, *prices, *v;
    char                       hex[FG_SHA256_HEX_LEN + 1];

    (void) state;

    make_trace(&tr);
    h = fg_sha256_new();
    assert_non_null(h);
    assert_int_equal(fg_blobref_raw("{}", 2, "application/json", &req, &err),
                     FG_OK);
    assert_int_equal(fg_blobref_raw("data: x\n\n", 9, "text/event-stream",
                                    &resp, &err), FG_OK);
    fg_usage_init(&u);
    u.input_tokens = 1234;
    u.output_tokens = 187;
    fg_usage_complete(&u);
    strcpy(u.response_model, "gpt-4o-2024-08-06");
    perms = json_pack("[s]", "model:gpt-4o");
    assert_int_equal(fg_labels_parse("use_case=itsm-triage,ticket=INC1", 32,
                                     &labels, &err), FG_OK);
    prices = json_loads("{\"currency\":\"USD\",\"unit\":\"per_million_tokens\","
                        "\"models\":{\"gpt-4o-2024-08-06\":{\"input\":2.5,"
                        "\"output\":10}}}", 0, NULL);
    assert_non_null(prices);
    cost = fg_call_cost(prices, "2025-06-02.1", "gpt-4o", &u);
    assert_non_null(cost);

    /* a completed streamed call with everything */
    model_record_args(&a, &tr);
    a.stream = 1;
    a.usage = &u;
    a.upstream_request_id = "req_8f3b2c1d9e4a4f6b";
    a.request = &req;
    a.response = &resp;
    a.status = 200;
    a.permissions_checked = perms;
    a.redactions = red;
    a.nredactions = 5;
    a.labels = labels;
    a.cost = cost;

    rec = record_ok(&a);
    assert_string_equal(json_string_value(json_object_get(rec,
                        "record_type")), "ModelCallRecord");
    assert_string_equal(json_string_value(json_object_get(rec, "provider")),
                        "openai");
    assert_string_equal(json_string_value(json_object_get(rec, "endpoint")),
                        "chat_completions");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "response_model")), "gpt-4o-2024-08-06");
    assert_true(json_is_true(json_object_get(rec, "stream")));
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 200);
    v = json_object_get(rec, "usage");
    assert_int_equal(json_integer_value(json_object_get(v, "input_tokens")),
                     1234);
    assert_int_equal(json_integer_value(json_object_get(v, "total_tokens")),
                     1421);
    v = json_object_get(rec, "redactions_applied");
    assert_int_equal(json_array_size(v), 3);
    assert_string_equal(json_string_value(json_array_get(v, 0)),
                        "header:authorization");
    assert_string_equal(json_string_value(json_array_get(v, 1)),
                        "header:foxgov-labels");
    assert_string_equal(json_string_value(json_array_get(v, 2)),
                        "header:x-api-key");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
        rec, "labels"), "ticket")), "INC1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
        rec, "cost"), "amount_micros")), 4955);
    assert_string_equal(json_string_value(json_object_get(rec,
                        "started_at")), "2025-11-24T16:00:00.530Z");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "finished_at")), "2025-11-24T16:00:03.902Z");
    assert_int_equal(json_object_size(rec), 24);
    assert_valid(rec);
    assert_int_equal(fg_record_hash(h, rec, hex, &err), FG_OK);
    json_decref(rec);

    /* refused (429): no response, usage unknown, no cost */
    model_record_args(&a, &tr);
    a.request = &req;
    a.status = 429;
    a.outcome = FG_OUTCOME_DENIED;
    a.permissions_checked = perms;
    rec = record_ok(&a);
    assert_true(json_is_null(json_object_get(rec, "response")));
    assert_true(json_is_null(json_object_get(rec, "response_model")));
    assert_true(json_is_null(json_object_get(rec, "upstream_request_id")));
    assert_true(json_is_null(json_object_get(rec, "cost")));
    assert_true(json_is_false(json_object_get(rec, "stream")));
    v = json_object_get(rec, "usage");
    assert_true(json_is_null(json_object_get(v, "input_tokens")));
    assert_true(json_is_null(json_object_get(v, "output_tokens")));
    assert_true(json_is_null(json_object_get(v, "total_tokens")));
    assert_int_equal(json_array_size(json_object_get(rec,
                     "redactions_applied")), 0);
    assert_int_equal(json_object_size(json_object_get(rec, "labels")), 0);
    json_decref(rec);

    /* usage all unknown, explicitly; nothing sent back at all */
    fg_usage_init(&u);
    model_record_args(&a, &tr);
    a.usage = &u;
    a.model = NULL;
    a.outcome = FG_OUTCOME_UPSTREAM_ERROR;
    rec = record_ok(&a);
    assert_true(json_is_null(json_object_get(rec, "model")));
    assert_true(json_is_null(json_object_get(rec, "status")));
    assert_true(json_is_null(json_object_get(rec, "request")));
    assert_int_equal(json_array_size(json_object_get(rec,
                     "permissions_checked")), 0);
    assert_true(json_is_null(json_object_get(json_object_get(rec, "usage"),
                                             "total_tokens")));
    json_decref(rec);

    /* embeddings: output unknown, the others known */
    u.input_tokens = 8;
    u.total_tokens = 8;
    a.endpoint = FG_ENDPOINT_EMBEDDINGS;
    a.outcome = FG_OUTCOME_COMPLETED;
    rec = record_ok(&a);
    v = json_object_get(rec, "usage");
    assert_int_equal(json_integer_value(json_object_get(v, "input_tokens")),
                     8);
    assert_true(json_is_null(json_object_get(v, "output_tokens")));
    json_decref(rec);

    /* what the upstream said that is not a token is not recorded */
    strcpy(u.response_model, "bad model");
    a.upstream_request_id = "req id\n";
    a.provider = FG_PROVIDER_ANTHROPIC;
    a.endpoint = FG_ENDPOINT_MESSAGES;
    a.outcome = FG_OUTCOME_CLIENT_ABORTED;
    rec = record_ok(&a);
    assert_true(json_is_null(json_object_get(rec, "response_model")));
    assert_true(json_is_null(json_object_get(rec, "upstream_request_id")));
    json_decref(rec);

    /* refusals */
    model_record_args(&a, &tr);
    a.provider = FG_PROVIDERS;
    record_fails(&a, FG_ERR_INVALID, "provider");
    a.provider = FG_PROVIDER_AZURE_OPENAI;
    a.endpoint = (fg_endpoint_t) 9;
    record_fails(&a, FG_ERR_INVALID, "endpoint");
    a.endpoint = FG_ENDPOINT_RESPONSES;
    a.model = "a model";
    record_fails(&a, FG_ERR_INVALID, "model");
    a.model = "gpt-4o";
    a.outcome = "done";
    record_fails(&a, FG_ERR_INVALID, "outcome");
    a.outcome = NULL;
    record_fails(&a, FG_ERR_INVALID, "outcome");
    a.outcome = FG_OUTCOME_TIMEOUT;
    a.status = 600;
    record_fails(&a, FG_ERR_INVALID, "status");
    a.status = 99;
    record_fails(&a, FG_ERR_INVALID, "status");
    a.status = 504;
    a.started_nsec = 1000000000;
    record_fails(&a, FG_ERR_INVALID, "time");
    a.started_nsec = 0;
    a.tenant_id = "Acme";
    record_fails(&a, FG_ERR_INVALID, "tenant_id");
    a.tenant_id = "acme";
    a.policy_decision_sha256 = "ABC";
    record_fails(&a, FG_ERR_INVALID, "policy_decision_sha256");
    a.policy_decision_sha256 = NULL;
    record_fails(&a, FG_ERR_INVALID, "missing");
    a.policy_decision_sha256 = SHA_B;
    a.trace = NULL;
    record_fails(&a, FG_ERR_INVALID, "missing");
    a.trace = &tr;
    a.cost = perms;
    record_fails(&a, FG_ERR_INVALID, "cost");
    a.cost = NULL;
    a.permissions_checked = labels;
    record_fails(&a, FG_ERR_INVALID, "permissions_checked");
    a.permissions_checked = NULL;
    a.labels = perms;
    record_fails(&a, FG_ERR_INVALID, "labels");
    a.labels = NULL;
    rec = record_ok(&a);
    json_decref(rec);
    assert_null(fg_call_record(NULL, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    json_decref(perms);
    json_decref(labels);
    json_decref(cost);
    json_decref(prices);
    fg_sha256_free(h);
}


static void
test_tool_record(void **state)
{
    static const char *const  red[] = { "header:foxgov-auth" };
    static const char *const  bad_red[] = { "Header:Authorization" };
    const char                *many[FG_CALL_REDACTIONS_MAX + 1];
    char                       names[FG_CALL_REDACTIONS_MAX + 1][32];
    fg_call_record_args_t      a;
    fg_blobref_t               req, resp;
    fg_trace_t                 tr;
    json_t                    *rec, *perms, *labels;
    size_t                     i;

    (void) state;

    make_trace(&tr);
    memset(&req, 0, sizeof(req));
    strcpy(req.content_type, "application/json");
    req.size_bytes = 42;
    resp = req;
    perms = json_pack("[s]", "tool:servicenow.incident:write");
    labels = json_pack("{s:s}", "team", "service-desk");

    /* completed */
    tool_record_args(&a, &tr);
    a.query_sha256 = SHA_A;
    a.idempotency_key = "idem-42";
    a.input_schema_sha256 = SHA_B;
    a.request = &req;
    a.response = &resp;
    a.status = 200;
    a.permissions_checked = perms;
    a.redactions = red;
    a.nredactions = 1;
    a.labels = labels;
    rec = record_ok(&a);
    assert_string_equal(json_string_value(json_object_get(rec,
                        "record_type")), "ToolCallRecord");
    assert_string_equal(json_string_value(json_object_get(rec, "tool")),
                        "servicenow.incident");
    assert_string_equal(json_string_value(json_object_get(rec, "method")),
                        "PATCH");
    assert_string_equal(json_string_value(json_object_get(rec,
                        "query_sha256")), SHA_A);
    assert_string_equal(json_string_value(json_object_get(rec,
                        "idempotency_key")), "idem-42");
    assert_true(json_is_null(json_object_get(rec, "cost")));
    assert_null(json_object_get(rec, "usage"));
    assert_null(json_object_get(rec, "model"));
    assert_int_equal(json_object_size(rec), 26);
    json_decref(rec);

    /* refused with 428: no response, nulls where nothing was sent */
    tool_record_args(&a, &tr);
    a.risk = NULL;
    a.request = &req;
    a.status = 428;
    a.outcome = FG_OUTCOME_DENIED;
    a.permissions_checked = perms;
    rec = record_ok(&a);
    assert_true(json_is_null(json_object_get(rec, "response")));
    assert_true(json_is_null(json_object_get(rec, "risk")));
    assert_true(json_is_null(json_object_get(rec, "query_sha256")));
    assert_true(json_is_null(json_object_get(rec, "idempotency_key")));
    assert_true(json_is_null(json_object_get(rec, "input_schema_sha256")));
    assert_int_equal(json_integer_value(json_object_get(rec, "status")), 428);
    assert_string_equal(json_string_value(json_object_get(rec, "outcome")),
                        "denied");
    json_decref(rec);

    /* a cost on a tool call is recorded as given */
    a.cost = json_pack("{s:s, s:i, s:s}", "currency", "EUR",
                       "amount_micros", 12, "price_source",
                       "bundle:r1/prices.json");
    rec = record_ok(&a);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
        rec, "cost"), "amount_micros")), 12);
    json_decref(rec);
    json_decref((json_t *) a.cost);
    a.cost = NULL;

    /* 64 distinct redactions fit, with duplicates; 65 do not */
    for (i = 0; i <= FG_CALL_REDACTIONS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "header:x-%02zu",
                 FG_CALL_REDACTIONS_MAX - i);
        many[i] = names[i];
    }
    many[0] = names[1];
    a.redactions = many;
    a.nredactions = FG_CALL_REDACTIONS_MAX + 1;
    rec = record_ok(&a);
    assert_int_equal(json_array_size(json_object_get(rec,
                     "redactions_applied")), FG_CALL_REDACTIONS_MAX);
    assert_string_equal(json_string_value(json_array_get(json_object_get(
        rec, "redactions_applied"), 0)), "header:x-00");
    json_decref(rec);
    many[0] = names[0];
    record_fails(&a, FG_ERR_INVALID, "more than 64 distinct");
    a.nredactions = 0;

    /* refusals */
    a.redactions = bad_red;
    a.nredactions = 1;
    record_fails(&a, FG_ERR_INVALID, "redaction 0");
    a.redactions = NULL;
    record_fails(&a, FG_ERR_INVALID, "redactions");
    a.nredactions = 0;
    a.tool = "Bad Tool";
    record_fails(&a, FG_ERR_INVALID, "tool");
    a.tool = NULL;
    record_fails(&a, FG_ERR_INVALID, "tool");
    a.tool = "servicenow.incident";
    a.action = "execute";
    record_fails(&a, FG_ERR_INVALID, "action");
    a.action = "read";
    a.risk = "extreme";
    record_fails(&a, FG_ERR_INVALID, "risk");
    a.risk = "low";
    a.query_sha256 = "nothex";
    record_fails(&a, FG_ERR_INVALID, "query_sha256");
    a.query_sha256 = NULL;
    a.input_schema_sha256 = SHA_A "0";
    record_fails(&a, FG_ERR_INVALID, "input_schema_sha256");
    a.input_schema_sha256 = NULL;
    a.idempotency_key = "has space";
    record_fails(&a, FG_ERR_INVALID, "idempotency key");
    a.idempotency_key = NULL;
    a.method_len = 0;
    record_fails(&a, FG_ERR_INVALID, "method");
    a.method_len = 5;
    a.path = "/a\x7f";
    a.path_len = 3;
    record_fails(&a, FG_ERR_INVALID, "path");
    a.path = "/a";
    a.path_len = 2;
    a.host_len = 0;
    record_fails(&a, FG_ERR_INVALID, "host");
    a.host_len = strlen(a.host);
    a.finished_sec = (time_t) 400000000000LL;   /* year > 9999 */
    record_fails(&a, FG_ERR_INVALID, "time");
    a.finished_sec = NOW;
    a.kind = (fg_call_kind_t) 5;
    record_fails(&a, FG_ERR_INVALID, "missing");
    a.kind = FG_CALL_TOOL;
    rec = record_ok(&a);
    json_decref(rec);

    json_decref(perms);
    json_decref(labels);
}


/* ---------------------------------------------------------------- cost */

static json_int_t
micros(const char *prices_text, const char *model, const fg_usage_t *u)
{
    json_t      *prices, *cost;
    json_int_t   v;

    prices = json_loads(prices_text, 0, NULL);
    assert_non_null(prices);
    cost = fg_call_cost(prices, "r1", model, u);
    json_decref(prices);
    if (cost == NULL) {
        return -1;
    }
    v = json_integer_value(json_object_get(cost, "amount_micros"));
    json_decref(cost);
    return v;
}


#define PRICES(models) \
    "{\"currency\":\"USD\",\"unit\":\"per_million_tokens\",\"models\":{" \
    models "}}"

static void
test_cost(void **state)
{
    fg_buffer_t   b;
    fg_usage_t    u;
    json_t       *prices, *cost;
    char          rev[300];

    (void) state;

    /* the bundle shipped in conf/ */
    assert_int_equal(test_read_file(FG_SOURCE_DIR
                     "/conf/bundles/itsm-triage/prices.json", &b), 0);
    prices = json_loadb((const char *) b.data, b.len, 0, NULL);
    fg_buffer_free(&b);
    assert_non_null(prices);

    fg_usage_init(&u);
    u.input_tokens = 1234;
    u.output_tokens = 187;
    strcpy(u.response_model, "gpt-4o-2024-08-06");
    cost = fg_call_cost(prices, "2025-06-02.1", "gpt-4o", &u);
    assert_non_null(cost);
    assert_string_equal(json_string_value(json_object_get(cost, "currency")),
                        "USD");
    assert_int_equal(json_integer_value(json_object_get(cost,
                     "amount_micros")), 4955);
    assert_string_equal(json_string_value(json_object_get(cost,
                        "price_source")), "bundle:2025-06-02.1/prices.json");
    assert_int_equal(json_object_size(cost), 3);
    json_decref(cost);

    /* the requested model when the response names none or an unpriced one */
    u.response_model[0] = '\0';
    assert_null(fg_call_cost(prices, "r", "gpt-4o", &u));
    cost = fg_call_cost(prices, "r", "gpt-4o-mini-2024-07-18", &u);
    assert_non_null(cost);
    /* 1234 * 0.15 + 187 * 0.60 = 185.1 + 112.2 = 297.3 */
    assert_int_equal(json_integer_value(json_object_get(cost,
                     "amount_micros")), 297);
    json_decref(cost);
    strcpy(u.response_model, "o1-unlisted");
    cost = fg_call_cost(prices, "r", "gpt-4o-mini-2024-07-18", &u);
    assert_non_null(cost);
    json_decref(cost);

    /* no price list, no price, no usage, no revision: null */
    assert_null(fg_call_cost(NULL, "r", "gpt-4o", &u));
    assert_null(fg_call_cost(prices, "r", "claude-3-opus", &u));
    assert_null(fg_call_cost(prices, "r", NULL, &u));
    assert_null(fg_call_cost(prices, NULL, "gpt-4o-2024-08-06", &u));
    assert_null(fg_call_cost(prices, "r", "gpt-4o-2024-08-06", NULL));
    fg_usage_init(&u);
    assert_null(fg_call_cost(prices, "r", "gpt-4o-2024-08-06", &u));
    json_decref(prices);

    /* the response model is looked up first */
    fg_usage_init(&u);
    u.input_tokens = 1000000;
    u.output_tokens = 0;
    strcpy(u.response_model, "m-2");
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1,\"output\":1},"
                                   "\"m-2\":{\"input\":2,\"output\":2}"),
                            "m", &u), 2000000);
    u.response_model[0] = '\0';
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1,\"output\":1},"
                                   "\"m-2\":{\"input\":2,\"output\":2}"),
                            "m", &u), 1000000);

    /* per million tokens: one token at 1.0 is one micro; rounding */
    fg_usage_init(&u);
    u.input_tokens = 1;
    u.output_tokens = 0;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1,\"output\":0}"),
                            "m", &u), 1);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":2.5,\"output\":0}"),
                            "m", &u), 3);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":2.49,\"output\":0}"),
                            "m", &u), 2);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":0.4,\"output\":0}"),
                            "m", &u), 0);
    u.input_tokens = 3;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":0.5,\"output\":0}"),
                            "m", &u), 2);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":0,\"output\":0}"),
                            "m", &u), 0);

    /* an unknown count counts 0 (embeddings report no output) */
    fg_usage_init(&u);
    u.input_tokens = 10;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":3,\"output\":15}"),
                            "m", &u), 30);
    fg_usage_init(&u);
    u.output_tokens = 10;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":3,\"output\":15}"),
                            "m", &u), 150);

    /* cache tokens at their own prices, not charged without one */
    u.input_tokens = 100;
    u.output_tokens = 10;
    u.cache_read_input_tokens = 1000;
    u.cache_creation_input_tokens = 200;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":3,\"output\":15,"
                                   "\"cache_read\":0.3,"
                                   "\"cache_creation\":3.75}"),
                            "m", &u), 300 + 150 + 300 + 750);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":3,\"output\":15}"),
                            "m", &u), 450);

    /* malformed price lists */
    fg_usage_init(&u);
    u.input_tokens = 10;
    u.output_tokens = 10;
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1}"), "m", &u), -1);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1,\"output\":\"2\"}"),
                            "m", &u), -1);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":-1,\"output\":1}"),
                            "m", &u), -1);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1,\"output\":1,"
                                   "\"cache_read\":null}"), "m", &u), -1);
    assert_int_equal(micros(PRICES("\"m\":[1,2]"), "m", &u), -1);
    assert_int_equal(micros(PRICES("\"m\":{\"input\":1e300,\"output\":1}"),
                            "m", &u), -1);
    assert_int_equal(micros("{\"currency\":\"usd\",\"unit\":"
                            "\"per_million_tokens\",\"models\":{\"m\":"
                            "{\"input\":1,\"output\":1}}}", "m", &u), -1);
    assert_int_equal(micros("{\"currency\":\"USDX\",\"unit\":"
                            "\"per_million_tokens\",\"models\":{\"m\":"
                            "{\"input\":1,\"output\":1}}}", "m", &u), -1);
    assert_int_equal(micros("{\"currency\":\"USD\",\"unit\":"
                            "\"per_token\",\"models\":{\"m\":"
                            "{\"input\":1,\"output\":1}}}", "m", &u), -1);
    assert_int_equal(micros("{\"currency\":\"USD\",\"models\":{\"m\":"
                            "{\"input\":1,\"output\":1}}}", "m", &u), -1);
    assert_int_equal(micros("{\"currency\":\"USD\",\"unit\":"
                            "\"per_million_tokens\",\"models\":[]}", "m", &u),
                     -1);
    assert_int_equal(micros("[]", "m", &u), -1);

    /* a revision too long for price_source */
    prices = json_loads(PRICES("\"m\":{\"input\":1,\"output\":1}"), 0, NULL);
    memset(rev, 'r', sizeof(rev));
    rev[256 - 19] = '\0';            /* "bundle:" + rev + "/prices.json" */
    cost = fg_call_cost(prices, rev, "m", &u);
    assert_non_null(cost);
    assert_int_equal(json_string_length(json_object_get(cost,
                     "price_source")), 256);
    json_decref(cost);
    rev[256 - 19] = 'r';
    rev[256 - 18] = '\0';
    assert_null(fg_call_cost(prices, rev, "m", &u));
    assert_null(fg_call_cost(prices, "has space", "m", &u));
    json_decref(prices);
}


/* -------------------------------------------------------- error bodies */

static json_t *
parse_error_body(const fg_buffer_t *b)
{
    json_t  *v;

    assert_true(b->len > 0);
    assert_int_equal(b->data[b->len - 1], '\n');
    v = json_loadb((const char *) b->data, b->len - 1,
                   JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 1);
    return v;
}


static void
test_error_body(void **state)
{
    fg_buffer_t   b;
    json_t       *v, *e, *appr;

    (void) state;

    /* 403 with everything: the exact text */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_call_error_body("policy_denied",
                                        "rule deny-prod: DENY", EXEC_ID,
                                        SHA_A, NULL, &b), FG_OK);
    assert_string_equal((const char *) b.data,
        "{\"error\":{\"type\":\"foxgov_error\",\"code\":\"policy_denied\","
        "\"message\":\"rule deny-prod: DENY\",\"param\":null,"
        "\"execution_id\":\"" EXEC_ID "\",\"decision_hash\":\"" SHA_A
        "\"}}\n");
    v = parse_error_body(&b);
    e = json_object_get(v, "error");
    assert_int_equal(json_object_size(e), 6);
    assert_string_equal(json_string_value(json_object_get(e, "type")),
                        "foxgov_error");
    json_decref(v);
    fg_buffer_free(&b);

    /* 401: no decision, no id */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_call_error_body("invalid_token", "token has expired",
                                        NULL, NULL, NULL, &b), FG_OK);
    v = parse_error_body(&b);
    e = json_object_get(v, "error");
    assert_true(json_is_null(json_object_get(e, "execution_id")));
    assert_true(json_is_null(json_object_get(e, "decision_hash")));
    assert_true(json_is_null(json_object_get(e, "param")));
    assert_null(json_object_get(e, "approval"));
    json_decref(v);

    /* 428 with the approval request, appended to what is there */
    appr = fg_call_approval_request(HITL_ID, "acme", "servicenow.incident",
                                    "write", SHA_A, NOW + 900);
    assert_non_null(appr);
    assert_int_equal(json_object_size(appr), 6);
    assert_string_equal(json_string_value(json_object_get(appr,
                        "expires_at")), "2025-11-24T16:15:00.000Z");
    assert_string_equal(json_string_value(json_object_get(appr,
                        "input_sha256")), SHA_A);
    fg_buffer_free(&b);
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_call_error_body("approval_required",
                                        "rule hitl: REQUIRE_HITL", EXEC_ID,
                                        SHA_B, appr, &b), FG_OK);
    v = parse_error_body(&b);
    e = json_object_get(v, "error");
    assert_int_equal(json_object_size(e), 7);
    assert_true(json_equal(json_object_get(e, "approval"), appr));
    json_decref(v);
    json_decref(appr);
    fg_buffer_free(&b);

    /* hostile text: cut, bad UTF-8 replaced; bad ids written null */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_call_error_body("bad_request",
                                        "caf\xc3\xa9 \xff\xc3 \"x\"\n",
                                        "id with space", "ABC", NULL, &b),
                     FG_OK);
    v = parse_error_body(&b);
    e = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "caf\xc3\xa9 ?? \"x\"\n");
    assert_true(json_is_null(json_object_get(e, "execution_id")));
    assert_true(json_is_null(json_object_get(e, "decision_hash")));
    json_decref(v);
    fg_buffer_free(&b);

    {
        char  msg[3000];

        memset(msg, 'm', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        memcpy(msg + 1023, "\xc3\xa9", 2);      /* cut inside: '?' */
        fg_buffer_init(&b, 0);
        assert_int_equal(fg_call_error_body("x", msg, NULL, NULL, NULL, &b),
                         FG_OK);
        v = parse_error_body(&b);
        e = json_object_get(v, "error");
        assert_int_equal(json_string_length(json_object_get(e, "message")),
                         1024);
        json_decref(v);
        fg_buffer_free(&b);
    }

    /* out's bound: nothing appended */
    fg_buffer_init(&b, 64);
    assert_int_equal(fg_buffer_append(&b, "x", 1), FG_OK);
    assert_int_equal(fg_call_error_body("policy_denied", "m", EXEC_ID, SHA_A,
                                        NULL, &b), FG_ERR_LIMIT);
    assert_int_equal(b.len, 1);
    fg_buffer_free(&b);
    fg_buffer_init(&b, 200);     /* the body fits, its newline does not */
    assert_int_equal(fg_call_error_body("c", "m", NULL, NULL, NULL, &b),
                     FG_OK);
    {
        size_t  one = b.len;

        fg_buffer_free(&b);
        fg_buffer_init(&b, one - 1);
        assert_int_equal(fg_call_error_body("c", "m", NULL, NULL, NULL, &b),
                         FG_ERR_LIMIT);
        assert_int_equal(b.len, 0);
    }
    fg_buffer_free(&b);

    assert_int_equal(fg_call_error_body(NULL, "m", NULL, NULL, NULL, &b),
                     FG_ERR_INVALID);
    assert_int_equal(fg_call_error_body("c", NULL, NULL, NULL, NULL, &b),
                     FG_ERR_INVALID);
    assert_int_equal(fg_call_error_body("c", "m", NULL, NULL, NULL, NULL),
                     FG_ERR_INVALID);

    assert_null(fg_call_approval_request(NULL, "acme", "t", "write", SHA_A,
                                         NOW));
    assert_null(fg_call_approval_request(HITL_ID, "acme", "t", "write", NULL,
                                         NOW));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_body_view),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_small_checks),
        cmocka_unit_test(test_input_model),
        cmocka_unit_test(test_input_tool),
        cmocka_unit_test(test_input_refusals),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_model_record),
        cmocka_unit_test(test_tool_record),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_error_body),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

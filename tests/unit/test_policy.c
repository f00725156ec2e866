/*
 * test_policy.c -- the rule language: every compile refusal, each
 * decision, the precedence between every pair, the default, exceptions
 * before and after expiry, THROTTLE counters, ROUTE and REQUIRE_STEP_UP
 * payloads, body pointer predicates, glob and regex (a pathological regex
 * is bounded), approvals, deterministic records that validate against the
 * schema, and a 1,000-rule bundle decided through the index (timed).
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

#include "fg_policy.h"

#define NOW  1764000000     /* 2025-11-24T16:00:00Z */

#define SHA_A \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


/* ------------------------------------------------------------- helpers */

/* A valid tool-call DecisionInput. */
static json_t *
base_input(void)
{
    json_t  *in;

    in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:[s], s:n, s:n, s:s,"
                   " s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s}, s:{}, s:{},"
                   " s:n, s:{}}",
                   "kind", "tool", "tenant_id", "acme",
                   "workspace_id", "ws1", "environment", "prod",
                   "principal", "alice", "acr",
                   "capabilities", "tool:servicenow.incident:write",
                   "provider", "model",
                   "tool", "servicenow.incident", "action", "write",
                   "risk", "high", "method", "POST",
                   "host", "api.example.com", "path", "/v1/incident",
                   "request", "sha256", SHA_A, "size_bytes", 42,
                   "content_type", "application/json",
                   "body", "labels", "approval", "counters");
    assert_non_null(in);
    return in;
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


static void
compile_fails(const char *text, const char *want)
{
    fg_policy_t  *p;
    fg_error_t    err;

    memset(&err, 0, sizeof(err));
    p = fg_policy_compile(text, strlen(text), &err);
    if (p != NULL) {
        fg_policy_free(p);
        fail_msg("compiled but should not: %s", text);
    }
    assert_true(err.code < 0);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, want);
    }
}


/* Decide text's policy for in at t; returns the decision kind. */
static fg_decision_kind_t
decide_at(const char *text, const json_t *in, time_t t, fg_decision_t *d)
{
    fg_policy_t  *p;
    fg_error_t    err;
    int           rc;

    p = compile_ok(text);
    rc = fg_policy_decide(p, in, t, d, &err);
    if (rc != FG_OK) {
        fail_msg("decide failed: %s", err.msg);
    }
    fg_policy_free(p);      /* d's strings are not read after this */
    d->route = NULL;
    d->acr_values = NULL;
    return d->decision;
}


static fg_decision_kind_t
decide(const char *text, const json_t *in)
{
    fg_decision_t  d;

    return decide_at(text, in, NOW, &d);
}


/* ------------------------------------------------------------- compile */

static void
test_compile_refusals(void **state)
{
    (void) state;

    compile_fails("not json", "not JSON");
    compile_fails("[]", "must be an object");
    compile_fails("{\"rules\":[],\"x\":1}", "unknown key x");
    compile_fails("{\"rules\":[],\"default\":1}", "default must be");
    compile_fails("{\"rules\":[],\"description\":1}",
                  "description must be a string");
    compile_fails("{}", "rules must be an array");
    compile_fails("{\"default\":\"ROUTE\",\"rules\":[]}", "default must be");
    compile_fails("{\"rules\":[1]}", "rules[0]: a rule is an object");
    compile_fails("{\"rules\":[{\"match\":{},\"decision\":\"ALLOW\"}]}",
                  "rules[0]: id must match");
    compile_fails("{\"rules\":[{\"id\":\"-x\",\"match\":{},"
                  "\"decision\":\"ALLOW\"}]}", "id must match");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"ALLOW\",\"bogus\":1}]}",
                  "rules[0] (a): unknown rule key bogus");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"decision\":\"ALLOW\"}]}",
                  "match is required");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":[],"
                  "\"decision\":\"ALLOW\"}]}", "match must be an object");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"colour\":\"x\"},"
                  "\"decision\":\"ALLOW\"}]}", "unknown match key colour");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"like\":\"x\"}},\"decision\":\"ALLOW\"}]}",
                  "unknown operator like");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"glob\":\"x\",\"regex\":\"y\"}},\"decision\":\"ALLOW\"}]}",
                  "exactly one key");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":null},"
                  "\"decision\":\"ALLOW\"}]}", "value must be");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"regex\":\"(\"}},\"decision\":\"ALLOW\"}]}",
                  "rules[0] (a): tool: bad regex");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"regex\":1}},\"decision\":\"ALLOW\"}]}",
                  "regex must be a string");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"glob\":\"x[ab\"}},\"decision\":\"ALLOW\"}]}",
                  "bad glob: glob has an unclosed");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"glob\":\"x\\\\\"}},\"decision\":\"ALLOW\"}]}",
                  "lone backslash");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"glob\":\"[z-a]\"}},\"decision\":\"ALLOW\"}]}",
                  "reversed range");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"in\":[]}},\"decision\":\"ALLOW\"}]}", "in/not_in");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"not_in\":[{}]}},\"decision\":\"ALLOW\"}]}",
                  "in/not_in items");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"body:/n\":"
                  "{\"lt\":\"5\"}},\"decision\":\"ALLOW\"}]}",
                  "lt/gt needs a number");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"tool\":"
                  "{\"exists\":1}},\"decision\":\"ALLOW\"}]}",
                  "exists needs true or false");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"body:n\":1},"
                  "\"decision\":\"ALLOW\"}]}", "is not a JSON pointer");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{\"body:/a~2\":1},"
                  "\"decision\":\"ALLOW\"}]}", "is not a JSON pointer");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"MAYBE\"}]}", "decision must be");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{}}]}",
                  "decision must be");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"ALLOW\"},{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"DENY\"}]}",
                  "rules[1] (a): duplicate rule id");
    compile_fails("{\"rules\":[{\"id\":\"t\",\"match\":{},"
                  "\"decision\":\"THROTTLE\"}]}", "THROTTLE without limits");
    compile_fails("{\"rules\":[{\"id\":\"t\",\"match\":{},"
                  "\"decision\":\"THROTTLE\",\"limits\":{\"window_seconds\":"
                  "60}}]}", "limits need window_seconds and requests");
    compile_fails("{\"rules\":[{\"id\":\"t\",\"match\":{},"
                  "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":0,"
                  "\"window_seconds\":60}}]}", "limits.requests");
    compile_fails("{\"rules\":[{\"id\":\"t\",\"match\":{},"
                  "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":5,"
                  "\"per\":60}}]}", "unknown limits key per");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"ALLOW\",\"limits\":{\"requests\":5,"
                  "\"window_seconds\":60}}]}", "limits on a rule");
    compile_fails("{\"rules\":[{\"id\":\"r\",\"match\":{},"
                  "\"decision\":\"ROUTE\"}]}", "ROUTE without a valid route");
    compile_fails("{\"rules\":[{\"id\":\"r\",\"match\":{},"
                  "\"decision\":\"ROUTE\",\"route\":\"bad route\"}]}",
                  "ROUTE without a valid route");
    compile_fails("{\"rules\":[{\"id\":\"r\",\"match\":{},"
                  "\"decision\":\"ALLOW\",\"route\":\"x\"}]}",
                  "route on a rule");
    compile_fails("{\"rules\":[{\"id\":\"s\",\"match\":{},"
                  "\"decision\":\"REQUIRE_STEP_UP\"}]}",
                  "REQUIRE_STEP_UP without valid acr_values");
    compile_fails("{\"rules\":[{\"id\":\"s\",\"match\":{},"
                  "\"decision\":\"REQUIRE_STEP_UP\",\"acr_values\":\" x\"}]}",
                  "REQUIRE_STEP_UP without valid acr_values");
    compile_fails("{\"rules\":[{\"id\":\"s\",\"match\":{},"
                  "\"decision\":\"DENY\",\"acr_values\":\"x\"}]}",
                  "acr_values on a rule");
    compile_fails("{\"rules\":[{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[\"nope\"],"
                  "\"expires_at\":\"2030-01-01T00:00:00Z\"}]}",
                  "rules[0] (e): exception_for names an unknown rule nope");
    compile_fails("{\"rules\":[{\"id\":\"d\",\"match\":{},"
                  "\"decision\":\"DENY\"},{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[\"d\"]}]}", "exception needs expires_at");
    compile_fails("{\"rules\":[{\"id\":\"d\",\"match\":{},"
                  "\"decision\":\"DENY\"},{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[\"d\"],"
                  "\"expires_at\":\"2030-02-30T00:00:00Z\"}]}",
                  "exception needs expires_at");
    compile_fails("{\"rules\":[{\"id\":\"d\",\"match\":{},"
                  "\"decision\":\"DENY\"},{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[\"d\"],"
                  "\"expires_at\":\"2030-01-01T00:00:00+01:00\"}]}",
                  "exception needs expires_at");
    compile_fails("{\"rules\":[{\"id\":\"d\",\"match\":{},"
                  "\"decision\":\"DENY\"},{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[],"
                  "\"expires_at\":\"2030-01-01T00:00:00Z\"}]}",
                  "exception_for must be an array");
    compile_fails("{\"rules\":[{\"id\":\"d\",\"match\":{},"
                  "\"decision\":\"DENY\"},{\"id\":\"e\",\"match\":{},"
                  "\"exception_for\":[\"d\"],\"decision\":\"ALLOW\","
                  "\"expires_at\":\"2030-01-01T00:00:00Z\"}]}",
                  "an exception rule has no decision");
    compile_fails("{\"rules\":[{\"id\":\"e1\",\"match\":{},"
                  "\"exception_for\":[\"e1\"],"
                  "\"expires_at\":\"2030-01-01T00:00:00Z\"}]}",
                  "names an exception rule e1");
    compile_fails("{\"rules\":[{\"id\":\"a\",\"match\":{},"
                  "\"decision\":\"DENY\","
                  "\"expires_at\":\"2030-01-01T00:00:00Z\"}]}",
                  "expires_at without exception_for");
}


static void
test_compile_limits(void **state)
{
    fg_buffer_t   b;
    char          rule[128];
    int           i;
    fg_policy_t  *p;
    const char *const *ptrs;

    (void) state;

    /* 65 distinct body pointers */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, "{\"rules\":[", 10), FG_OK);
    for (i = 0; i < 65; i++) {
        snprintf(rule, sizeof(rule), "%s{\"id\":\"r%d\",\"match\":"
                 "{\"body:/f%d\":1},\"decision\":\"DENY\"}", i ? "," : "",
                 i, i);
        assert_int_equal(fg_buffer_append(&b, rule, strlen(rule)), FG_OK);
    }
    assert_int_equal(fg_buffer_append(&b, "]}", 3), FG_OK);
    compile_fails((char *) b.data, "rules[64] (r64): more than 64 distinct");
    fg_buffer_free(&b);

    /* 10,001 rules */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, "{\"rules\":[", 10), FG_OK);
    for (i = 0; i < 10001; i++) {
        snprintf(rule, sizeof(rule), "%s{\"id\":\"r%d\",\"match\":{},"
                 "\"decision\":\"DENY\"}", i ? "," : "", i);
        assert_int_equal(fg_buffer_append(&b, rule, strlen(rule)), FG_OK);
    }
    assert_int_equal(fg_buffer_append(&b, "]}", 3), FG_OK);
    compile_fails((char *) b.data, "more than 10000 rules");
    fg_buffer_free(&b);

    /* the pointer list is exposed, distinct, in first-use order */
    p = compile_ok("{\"rules\":[{\"id\":\"a\",\"match\":{\"body:/x\":1,"
                   "\"body:/y/0\":2},\"decision\":\"DENY\"},{\"id\":\"b\","
                   "\"match\":{\"body:/x\":{\"gt\":3}},"
                   "\"decision\":\"DENY\"}]}");
    assert_int_equal(fg_policy_body_pointers(p, &ptrs), 2);
    assert_string_equal(ptrs[0], "/x");
    assert_string_equal(ptrs[1], "/y/0");
    assert_int_equal(fg_policy_rule_count(p), 2);
    fg_policy_free(p);
}


/* ----------------------------------------------------------- decisions */

static void
test_default(void **state)
{
    json_t         *in = base_input();
    fg_decision_t   d;

    (void) state;

    assert_int_equal(decide_at("{\"rules\":[]}", in, NOW, &d),
                     FG_DECISION_DENY);
    assert_true(d.by_default);
    assert_string_equal(d.justification, "default: DENY");
    assert_int_equal(d.ngates, 1);
    assert_string_equal(d.gates[0].result, "fail");

    assert_int_equal(decide("{\"default\":\"DENY\",\"rules\":[{\"id\":\"a\","
                            "\"match\":{\"tool\":\"other\"},"
                            "\"decision\":\"ALLOW\"}]}", in),
                     FG_DECISION_DENY);

    assert_int_equal(decide_at("{\"default\":\"ALLOW\",\"rules\":[]}", in,
                               NOW, &d), FG_DECISION_ALLOW);
    assert_string_equal(d.justification, "default: ALLOW");
    assert_int_equal(d.nrule_ids, 0);
    assert_int_equal(d.ngates, 3);
    assert_string_equal(d.gates[1].result, "not_applicable");

    json_decref(in);
}


static const char  *kinds[] = {
    "ALLOW", "DENY", "REQUIRE_HITL", "REQUIRE_STEP_UP", "THROTTLE", "ROUTE"
};

/* a rule of the given kind that matches base_input (THROTTLE at limit) */
static void
rule_of(char *buf, size_t size, const char *id, int kind)
{
    const char  *extra = "";

    switch (kind) {
    case FG_DECISION_REQUIRE_STEP_UP:
        extra = ",\"acr_values\":\"phr mfa\"";
        break;
    case FG_DECISION_THROTTLE:
        extra = ",\"limits\":{\"requests\":10,\"window_seconds\":60}";
        break;
    case FG_DECISION_ROUTE:
        extra = ",\"route\":\"eu-pool\"";
        break;
    }
    snprintf(buf, size, "{\"id\":\"%s\",\"match\":{\"tool\":"
             "\"servicenow.incident\"},\"decision\":\"%s\"%s}", id,
             kinds[kind], extra);
}


static void
test_each_decision(void **state)
{
    json_t         *in = base_input();
    fg_decision_t   d;
    char            rule[256], pol[512];
    int             k;

    (void) state;

    json_object_set_new(json_object_get(in, "counters"), "r",
                        json_pack("{s:i, s:n, s:i}", "requests", 10,
                                  "tokens", "window_seconds", 60));

    for (k = 0; k <= FG_DECISION_ROUTE; k++) {
        rule_of(rule, sizeof(rule), "r", k);
        snprintf(pol, sizeof(pol), "{\"rules\":[%s]}", rule);
        assert_int_equal(decide_at(pol, in, NOW, &d), k);
        assert_int_equal(d.nrule_ids, 1);
        assert_false(d.by_default);
    }
    json_decref(in);
}


static void
test_payloads(void **state)
{
    json_t         *in = base_input();
    fg_policy_t    *p;
    fg_decision_t   d;
    fg_error_t      err;

    (void) state;

    p = compile_ok("{\"rules\":["
        "{\"id\":\"route1\",\"match\":{\"tool\":\"servicenow.incident\"},"
        "\"decision\":\"ROUTE\",\"route\":\"eu-pool\"},"
        "{\"id\":\"route2\",\"match\":{},"
        "\"decision\":\"ROUTE\",\"route\":\"us-pool\"}]}");
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
    assert_int_equal(d.decision, FG_DECISION_ROUTE);
    assert_string_equal(d.route, "eu-pool");
    assert_int_equal(d.nrule_ids, 2);
    assert_string_equal(d.justification, "rules route1, route2: ROUTE");
    fg_policy_free(p);

    p = compile_ok("{\"rules\":[{\"id\":\"step\",\"match\":{\"risk\":"
        "\"high\"},\"decision\":\"REQUIRE_STEP_UP\",\"acr_values\":"
        "\"urn:acr:mfa phr\"}]}");
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
    assert_int_equal(d.decision, FG_DECISION_REQUIRE_STEP_UP);
    assert_string_equal(d.acr_values, "urn:acr:mfa phr");
    assert_string_equal(d.justification, "rule step: REQUIRE_STEP_UP");
    assert_string_equal(d.gates[0].gate, "policy");
    assert_string_equal(d.gates[0].result, "fail");
    fg_policy_free(p);

    json_decref(in);
}


static void
test_precedence_pairs(void **state)
{
    json_t         *in = base_input();
    fg_decision_t   d;
    char            r1[256], r2[256], pol[1024];
    int             a, b, want;
    /* rank: lower wins */
    static const int rank[] = { 5, 0, 2, 1, 3, 4 };

    (void) state;

    json_object_set_new(json_object_get(in, "counters"), "x",
                        json_pack("{s:i, s:n, s:i}", "requests", 10,
                                  "tokens", "window_seconds", 60));
    json_object_set_new(json_object_get(in, "counters"), "y",
                        json_pack("{s:i, s:n, s:i}", "requests", 10,
                                  "tokens", "window_seconds", 60));

    for (a = 0; a <= FG_DECISION_ROUTE; a++) {
        for (b = 0; b <= FG_DECISION_ROUTE; b++) {
            if (a == b) {
                continue;
            }
            rule_of(r1, sizeof(r1), "x", a);
            rule_of(r2, sizeof(r2), "y", b);
            snprintf(pol, sizeof(pol), "{\"rules\":[%s,%s]}", r1, r2);
            want = rank[a] < rank[b] ? a : b;
            if ((int) decide_at(pol, in, NOW, &d) != want) {
                fail_msg("%s vs %s: got %s", kinds[a], kinds[b],
                         kinds[d.decision]);
            }
            /* both matched rules are listed, in bundle order */
            assert_int_equal(d.nrule_ids, 2);
        }
    }
    json_decref(in);
}


static void
test_exceptions(void **state)
{
    static const char  pol[] = "{\"default\":\"ALLOW\",\"rules\":["
        "{\"id\":\"deny-write\",\"match\":{\"action\":\"write\"},"
        "\"decision\":\"DENY\"},"
        "{\"id\":\"exc-1\",\"match\":{\"principal\":\"alice\"},"
        "\"exception_for\":[\"deny-write\"],"
        "\"expires_at\":\"2025-11-24T16:00:00.500Z\"}]}";
    json_t         *in = base_input();
    fg_decision_t   d;

    (void) state;

    /* before expiry: lifted, recorded as applied, default decides */
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_ALLOW);
    assert_int_equal(d.nrule_ids, 0);
    assert_int_equal(d.nexceptions, 1);
    assert_true(d.exceptions[0].applied);
    assert_string_equal(d.justification, "default: ALLOW");

    /* at/after expiry: recorded as expired and ignored */
    assert_int_equal(decide_at(pol, in, NOW + 1, &d), FG_DECISION_DENY);
    assert_int_equal(d.nrule_ids, 1);
    assert_int_equal(d.nexceptions, 1);
    assert_false(d.exceptions[0].applied);
    assert_string_equal(d.justification, "rule deny-write: DENY");

    /* an exception whose match does not hold is not recorded */
    json_object_set_new(in, "principal", json_string("bob"));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_DENY);
    assert_int_equal(d.nexceptions, 0);

    json_decref(in);
}


static void
test_throttle(void **state)
{
    static const char  pol[] = "{\"default\":\"ALLOW\",\"rules\":["
        "{\"id\":\"rpm\",\"match\":{\"tenant_id\":\"acme\"},"
        "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":100,"
        "\"window_seconds\":60}},"
        "{\"id\":\"tpd\",\"match\":{\"tenant_id\":\"acme\"},"
        "\"decision\":\"THROTTLE\",\"limits\":{\"tokens\":1000,"
        "\"window_seconds\":86400}}]}";
    json_t         *in = base_input(), *c;
    fg_decision_t   d;
    fg_policy_t    *p;
    fg_throttle_t   th[4];
    fg_error_t      err;

    (void) state;

    /* the gateway asks which counters to read */
    p = compile_ok(pol);
    assert_int_equal(fg_policy_throttles(p, in, th, 4, &err), 2);
    assert_string_equal(th[0].rule_id, "rpm");
    assert_int_equal(th[0].requests, 100);
    assert_int_equal(th[0].tokens, -1);
    assert_int_equal(th[1].window_seconds, 86400);
    fg_policy_free(p);

    /* no counters: never fires */
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_ALLOW);
    assert_string_equal(d.gates[2].gate, "throttle");
    assert_string_equal(d.gates[2].result, "pass");

    c = json_object_get(in, "counters");
    json_object_set_new(c, "rpm", json_pack("{s:i, s:n, s:i}", "requests",
                                            99, "tokens", "window_seconds",
                                            60));
    json_object_set_new(c, "tpd", json_pack("{s:n, s:i, s:i}", "requests",
                                            "tokens", 999, "window_seconds",
                                            86400));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_ALLOW);
    assert_int_equal(d.nrule_ids, 0);

    /* at the limit */
    json_object_set_new(json_object_get(c, "rpm"), "requests",
                        json_integer(100));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_THROTTLE);
    assert_int_equal(d.retry_after_seconds, 60);
    assert_int_equal(d.nrule_ids, 1);
    assert_string_equal(d.justification, "rule rpm: THROTTLE");
    assert_string_equal(d.gates[2].result, "fail");

    json_object_set_new(json_object_get(c, "tpd"), "tokens",
                        json_integer(5000));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_THROTTLE);
    assert_int_equal(d.retry_after_seconds, 86400);
    assert_int_equal(d.nrule_ids, 2);

    json_decref(in);
}


static void
test_approval(void **state)
{
    static const char  pol[] = "{\"rules\":["
        "{\"id\":\"hitl\",\"match\":{\"action\":\"write\"},"
        "\"decision\":\"REQUIRE_HITL\"}]}";
    static const char  pol2[] = "{\"rules\":["
        "{\"id\":\"hitl\",\"match\":{\"action\":\"write\"},"
        "\"decision\":\"REQUIRE_HITL\"},"
        "{\"id\":\"r\",\"match\":{},\"decision\":\"ROUTE\","
        "\"route\":\"slow\"}]}";
    json_t         *in = base_input();
    fg_decision_t   d;

    (void) state;

    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_REQUIRE_HITL);
    assert_string_equal(d.gates[1].gate, "approval");
    assert_string_equal(d.gates[1].result, "fail");
    assert_int_equal(d.ngates, 2);

    /* approval bound to another input: still required */
    json_object_set_new(in, "approval",
                        json_pack("{s:s, s:s, s:s, s:s}", "approval_id",
                                  "ap-1", "jti", "j1", "approver", "bob",
                                  "input_sha256", SHA_B));
    assert_int_equal(decide(pol, in), FG_DECISION_REQUIRE_HITL);

    /* bound to this input: ALLOW, the rule still listed */
    json_object_set_new(json_object_get(in, "approval"), "input_sha256",
                        json_string(SHA_A));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_ALLOW);
    assert_int_equal(d.nrule_ids, 1);
    assert_string_equal(d.gates[1].result, "pass");
    assert_string_equal(d.justification,
                        "rule hitl: REQUIRE_HITL satisfied by approval, "
                        "ALLOW");

    assert_int_equal(decide_at(pol2, in, NOW, &d), FG_DECISION_ROUTE);
    assert_string_equal(d.justification,
                        "rule r: ROUTE (REQUIRE_HITL satisfied by approval)");

    /* a call without a body: approved for no bytes of input */
    json_object_set_new(in, "request", json_null());
    assert_int_equal(decide(pol, in), FG_DECISION_REQUIRE_HITL);
    json_object_set_new(json_object_get(in, "approval"), "input_sha256",
                        json_string("e3b0c44298fc1c149afbf4c8996fb924"
                                    "27ae41e4649b934ca495991b7852b855"));
    assert_int_equal(decide(pol, in), FG_DECISION_ALLOW);
    json_decref(in);
}


/* ---------------------------------------------------------- predicates */

static int
one(const char *match, const json_t *in)
{
    char  pol[1024];

    snprintf(pol, sizeof(pol), "{\"rules\":[{\"id\":\"m\",\"match\":%s,"
             "\"decision\":\"ALLOW\"}]}", match);
    return decide(pol, in) == FG_DECISION_ALLOW;
}


/* REQUIRE_STEP_UP is satisfied by the token's acr: the rule names the
 * callers it asks with an "acr" condition, a missing acr among them. */
static void
test_step_up_acr(void **state)
{
    static const char  *policy =
        "{\"rules\":["
        "{\"id\":\"allow\",\"match\":{\"kind\":\"tool\"},"
        "\"decision\":\"ALLOW\"},"
        "{\"id\":\"mfa\",\"match\":{\"risk\":\"high\","
        "\"acr\":{\"not_in\":[\"urn:foxgov:acr:mfa\"]}},"
        "\"decision\":\"REQUIRE_STEP_UP\","
        "\"acr_values\":\"urn:foxgov:acr:mfa\"}]}";
    json_t         *in = base_input();
    fg_decision_t   d;

    (void) state;

    /* no acr: asked */
    assert_int_equal(decide_at(policy, in, NOW, &d),
                     FG_DECISION_REQUIRE_STEP_UP);
    json_object_set_new(in, "acr", json_string("urn:foxgov:acr:pwd"));
    assert_int_equal(decide(policy, in), FG_DECISION_REQUIRE_STEP_UP);

    /* the acr asked for: the other rules decide */
    json_object_set_new(in, "acr", json_string("urn:foxgov:acr:mfa"));
    assert_int_equal(decide_at(policy, in, NOW, &d), FG_DECISION_ALLOW);
    assert_int_equal(d.nrule_ids, 1);

    /* an exact acr is an indexed key like any other */
    assert_true(one("{\"acr\":\"urn:foxgov:acr:mfa\"}", in));
    assert_false(one("{\"acr\":\"urn:foxgov:acr:pwd\"}", in));
    assert_true(one("{\"acr\":{\"exists\":true}}", in));

    json_decref(in);
}


static void
test_body_predicates(void **state)
{
    json_t  *in = base_input(), *body;

    (void) state;

    body = json_object_get(in, "body");
    json_object_set_new(body, "/max_tokens", json_integer(512));
    json_object_set_new(body, "/temperature", json_real(0.5));
    json_object_set_new(body, "/state", json_string("closed"));
    json_object_set_new(body, "/stream", json_true());
    json_object_set_new(body, "/messages", json_array());
    json_object_set_new(body, "/nil", json_null());

    assert_true(one("{\"body:/max_tokens\":{\"lt\":1000}}", in));
    assert_false(one("{\"body:/max_tokens\":{\"lt\":512}}", in));
    assert_true(one("{\"body:/max_tokens\":{\"gt\":511}}", in));
    assert_true(one("{\"body:/temperature\":{\"lt\":0.75}}", in));
    assert_true(one("{\"body:/max_tokens\":512}", in));
    assert_true(one("{\"body:/max_tokens\":512.0}", in));
    assert_false(one("{\"body:/max_tokens\":\"512\"}", in));
    assert_false(one("{\"body:/state\":{\"gt\":1}}", in));
    assert_true(one("{\"body:/stream\":true}", in));
    assert_false(one("{\"body:/stream\":false}", in));

    assert_true(one("{\"body:/state\":{\"in\":[\"open\",\"closed\"]}}", in));
    assert_false(one("{\"body:/state\":{\"not_in\":[\"closed\"]}}", in));
    assert_true(one("{\"body:/max_tokens\":{\"in\":[1,512]}}", in));
    assert_true(one("{\"body:/state\":{\"not_in\":[\"open\"]}}", in));

    assert_true(one("{\"body:/messages\":{\"exists\":true}}", in));
    assert_false(one("{\"body:/messages\":{\"lt\":1}}", in));
    assert_true(one("{\"body:/absent\":{\"exists\":false}}", in));
    assert_false(one("{\"body:/absent\":{\"exists\":true}}", in));
    assert_true(one("{\"body:/nil\":{\"exists\":false}}", in));

    /* a missing value matches nothing but exists:false and not_in */
    assert_false(one("{\"body:/absent\":\"x\"}", in));
    assert_false(one("{\"body:/absent\":{\"in\":[\"x\"]}}", in));
    assert_false(one("{\"body:/absent\":{\"gt\":0}}", in));
    assert_false(one("{\"body:/absent\":{\"glob\":\"*\"}}", in));
    assert_false(one("{\"body:/absent\":{\"regex\":\".*\"}}", in));
    assert_true(one("{\"body:/absent\":{\"not_in\":[\"x\"]}}", in));
    assert_false(one("{\"model\":{\"glob\":\"*\"}}", in));
    assert_true(one("{\"model\":{\"exists\":false}}", in));
    assert_true(one("{\"model\":{\"not_in\":[\"gpt-4o\"]}}", in));

    /* all keys must hold */
    assert_true(one("{\"tool\":\"servicenow.incident\","
                    "\"body:/state\":\"closed\"}", in));
    assert_false(one("{\"tool\":\"servicenow.incident\","
                     "\"body:/state\":\"open\"}", in));

    /* no body object at all */
    json_object_set_new(in, "body", json_string("x"));
    assert_true(one("{\"body:/state\":{\"exists\":false}}", in));

    json_decref(in);
}


static void
test_glob_regex(void **state)
{
    json_t         *in = base_input();
    fg_policy_t    *p;
    fg_decision_t   d;
    fg_error_t      err;
    clock_t         t0;
    double          secs;

    (void) state;

    json_object_set_new(in, "model", json_string("gpt-4o-mini"));

    assert_true(one("{\"model\":{\"glob\":\"gpt-4o*\"}}", in));
    assert_true(one("{\"model\":{\"glob\":\"gpt-?o-mini\"}}", in));
    assert_true(one("{\"model\":{\"glob\":\"gpt-[0-9]o*\"}}", in));
    assert_false(one("{\"model\":{\"glob\":\"gpt-[!0-9]o*\"}}", in));
    assert_true(one("{\"model\":{\"glob\":\"*mini\"}}", in));
    assert_false(one("{\"model\":{\"glob\":\"gpt-4o\"}}", in));
    assert_true(one("{\"path\":{\"glob\":\"/v1/*\"}}", in));
    assert_true(one("{\"path\":{\"glob\":\"*incident\"}}", in));
    assert_true(one("{\"tool\":{\"glob\":\"servicenow\\\\.incident\"}}",
                    in));
    assert_true(one("{\"model\":{\"glob\":\"*-*-*\"}}", in));
    assert_false(one("{\"model\":{\"glob\":\"*-*-*-*\"}}", in));
    json_object_set_new(in, "host", json_string("]*x"));
    assert_true(one("{\"host\":{\"glob\":\"[]]\\\\*x\"}}", in));
    assert_true(one("{\"host\":{\"glob\":\"[!a]?[\\\\x]\"}}", in));
    assert_false(one("{\"host\":{\"glob\":\"[!]]*\"}}", in));
    assert_false(one("{\"host\":{\"glob\":\"\\\\**\"}}", in));

    /* regexes match the whole value */
    assert_true(one("{\"model\":{\"regex\":\"gpt-4o(-mini)?\"}}", in));
    assert_false(one("{\"model\":{\"regex\":\"gpt\"}}", in));
    assert_true(one("{\"model\":{\"regex\":\"gpt.*\"}}", in));
    assert_false(one("{\"model\":{\"regex\":\"4o.*\"}}", in));
    assert_true(one("{\"principal\":{\"regex\":\"(?i)ALICE\"}}", in));

    /* a pathological regex stops at its limit: an error, not a hang */
    json_object_set_new(in, "principal",
                        json_string("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"));
    p = compile_ok("{\"rules\":[{\"id\":\"evil\",\"match\":{\"principal\":"
                   "{\"regex\":\"(a|aa|a)*\"}},\"decision\":\"DENY\"}]}");
    t0 = clock();
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_ERR_LIMIT);
    secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 2.0);
    assert_non_null(strstr(err.msg, "rule evil"));
    assert_int_equal(d.decision, FG_DECISION_DENY);     /* fails closed */
    assert_string_equal(d.gates[0].result, "error");
    print_message("pathological regex stopped after %.3f ms\n", secs * 1e3);
    fg_policy_free(p);

    json_decref(in);
}


static void
test_bad_input(void **state)
{
    fg_policy_t    *p;
    fg_decision_t   d;
    fg_error_t      err;
    json_t         *v;

    (void) state;

    p = compile_ok("{\"default\":\"ALLOW\",\"rules\":[]}");
    v = json_array();
    assert_int_equal(fg_policy_decide(p, v, NOW, &d, &err), FG_ERR_INVALID);
    assert_int_equal(d.decision, FG_DECISION_DENY);
    json_decref(v);

    /* an empty object: every field missing; the default still decides */
    v = json_object();
    assert_int_equal(fg_policy_decide(p, v, NOW, &d, &err), FG_OK);
    assert_int_equal(d.decision, FG_DECISION_ALLOW);
    json_decref(v);
    fg_policy_free(p);
}


static fg_policy_t *
many_rules(int n, const char *fmt)
{
    fg_buffer_t   b;
    fg_policy_t  *p;
    char          rule[256];
    int           i;

    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, "{\"rules\":[", 10), FG_OK);
    for (i = 0; i < n; i++) {
        assert_int_equal(fg_buffer_append(&b, i ? "," : "", i ? 1 : 0),
                         FG_OK);
        snprintf(rule, sizeof(rule), fmt, i, i);
        assert_int_equal(fg_buffer_append(&b, rule, strlen(rule)), FG_OK);
    }
    assert_int_equal(fg_buffer_append(&b, "]}", 3), FG_OK);
    p = compile_ok((char *) b.data);
    fg_buffer_free(&b);
    return p;
}


static void
test_decide_bounds(void **state)
{
    json_t         *in = base_input();
    fg_policy_t    *p;
    fg_decision_t   d;
    fg_error_t      err;

    (void) state;

    /* 256 counting rules fit a record; 257 do not: fail closed */
    p = many_rules(256, "{\"id\":\"a%d\",\"match\":{\"tool\":"
                   "\"servicenow.incident\"},\"decision\":\"ALLOW\"}");
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
    assert_int_equal(d.nrule_ids, 256);
    assert_string_equal(d.justification,
                        "rules a0, a1, a2 and 253 more: ALLOW");
    fg_policy_free(p);

    p = many_rules(257, "{\"id\":\"a%d\",\"match\":{},"
                   "\"decision\":\"ALLOW\"}");
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_ERR_LIMIT);
    assert_int_equal(d.decision, FG_DECISION_DENY);
    fg_policy_free(p);

    p = many_rules(1025, "{\"id\":\"a%d\",\"match\":{\"kind\":"
                   "\"tool\"},\"decision\":\"DENY\"}");
    assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_ERR_LIMIT);
    assert_int_equal(d.decision, FG_DECISION_DENY);
    fg_policy_free(p);

    /* NULL and non-object inputs */
    assert_int_equal(fg_policy_decide(NULL, in, NOW, &d, &err),
                     FG_ERR_INVALID);
    assert_int_equal(fg_policy_decide(NULL, in, NOW, NULL, NULL),
                     FG_ERR_INVALID);
    assert_true(fg_policy_throttles(NULL, in, NULL, 0, &err) < 0);

    json_decref(in);
}


static void
test_exception_lifts_any(void **state)
{
    static const char  pol[] = "{\"rules\":["
        "{\"id\":\"ok\",\"match\":{},\"decision\":\"ALLOW\"},"
        "{\"id\":\"h\",\"match\":{},\"decision\":\"REQUIRE_HITL\"},"
        "{\"id\":\"t\",\"match\":{},\"decision\":\"THROTTLE\","
        "\"limits\":{\"requests\":1,\"window_seconds\":5}},"
        "{\"id\":\"x\",\"match\":{\"tool\":{\"glob\":\"servicenow.*\"}},"
        "\"exception_for\":[\"h\",\"t\"],"
        "\"expires_at\":\"2025-11-24T16:00:01Z\"}]}";
    json_t         *in = base_input();
    fg_decision_t   d;

    (void) state;

    json_object_set_new(json_object_get(in, "counters"), "t",
                        json_pack("{s:i, s:n, s:i}", "requests", 3,
                                  "tokens", "window_seconds", 5));
    assert_int_equal(decide_at(pol, in, NOW, &d), FG_DECISION_ALLOW);
    assert_int_equal(d.nexceptions, 2);
    assert_int_equal(d.nrule_ids, 1);
    assert_int_equal(decide_at(pol, in, NOW + 1, &d),
                     FG_DECISION_REQUIRE_HITL);
    assert_int_equal(d.nrule_ids, 3);
    json_decref(in);
}


/* -------------------------------------------------------------- record */

static json_t *
make_record(const fg_policy_t *p, const json_t *in, fg_decision_t *d,
    time_t t)
{
    fg_policy_record_args_t   a;
    fg_trace_t                tr;
    fg_error_t                err;
    json_t                   *gates, *perms, *rec;

    assert_int_equal(fg_policy_decide(p, in, t, d, &err), FG_OK);

    memset(&tr, 0, sizeof(tr));
    strcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(tr.span_id, "00f067aa0ba902b7");

    gates = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
                      "gate", "authn", "result", "pass",
                      "gate", "schema", "result", "pass",
                      "gate", "capability", "result", "pass");
    perms = json_pack("[s]", "tool:servicenow.incident:write");

    memset(&a, 0, sizeof(a));
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.auth_context_sha256 = SHA_B;
    a.bundle_revision = "rev-42";
    a.bundle_sha256 = SHA_A;
    a.gates_before = gates;
    a.permissions_checked = perms;
    a.approval_request_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ac";
    a.now_sec = t;
    a.now_nsec = 118000000;

    rec = fg_policy_decision_record(d, in, &a, &err);
    if (rec == NULL) {
        fail_msg("record: %s", err.msg);
    }
    json_decref(gates);
    json_decref(perms);
    return rec;
}


static void
test_record(void **state)
{
    static const char  pol[] = "{\"rules\":["
        "{\"id\":\"allow-read\",\"match\":{\"tool\":\"servicenow.incident\"},"
        "\"decision\":\"ALLOW\"},"
        "{\"id\":\"hitl-write\",\"match\":{\"action\":\"write\","
        "\"environment\":\"prod\"},\"decision\":\"REQUIRE_HITL\"},"
        "{\"id\":\"deny-high\",\"match\":{\"risk\":\"high\"},"
        "\"decision\":\"DENY\"},"
        "{\"id\":\"exc-high\",\"match\":{\"body:/state\":\"closed\"},"
        "\"exception_for\":[\"deny-high\"],"
        "\"expires_at\":\"2030-01-01T00:00:00Z\"},"
        "{\"id\":\"exc-old\",\"match\":{},"
        "\"exception_for\":[\"allow-read\"],"
        "\"expires_at\":\"2020-01-01T00:00:00Z\"},"
        "{\"id\":\"step\",\"match\":{\"principal\":\"mallory\"},"
        "\"decision\":\"REQUIRE_STEP_UP\",\"acr_values\":\"mfa\"},"
        "{\"id\":\"rpm\",\"match\":{\"principal\":\"carol\"},"
        "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":1,"
        "\"window_seconds\":60}},"
        "{\"id\":\"eu\",\"match\":{\"principal\":\"dave\"},"
        "\"decision\":\"ROUTE\",\"route\":\"eu-pool\"}]}";
    static const char  *principals[] = {
        "alice", "mallory", "carol", "dave"
    };
    fg_records_t        *records;
    fg_policy_t         *p;
    fg_sha256_t         *h;
    fg_decision_t        d;
    fg_error_t           err;
    fg_schema_report_t   rep;
    json_t              *in, *r1, *r2;
    char                 hex1[FG_SHA256_HEX_LEN + 1];
    char                 hex2[FG_SHA256_HEX_LEN + 1];
    size_t               i, k;

    (void) state;

    records = fg_records_new(&err);
    assert_non_null(records);
    h = fg_sha256_new();
    assert_non_null(h);
    p = compile_ok(pol);

    in = base_input();
    json_object_set_new(json_object_get(in, "body"), "/state",
                        json_string("closed"));
    json_object_set_new(json_object_get(in, "counters"), "rpm",
                        json_pack("{s:i, s:n, s:i}", "requests", 1,
                                  "tokens", "window_seconds", 60));

    for (k = 0; k < 4; k++) {
        json_object_set_new(in, "principal", json_string(principals[k]));
        if (k == 1) {
            json_object_set_new(json_object_get(in, "body"), "/state",
                                json_string("open"));
        }

        r1 = make_record(p, in, &d, NOW);
        r2 = make_record(p, in, &d, NOW);

        if (fg_record_validate(records, r1, &rep) != FG_OK) {
            for (i = 0; i < rep.count; i++) {
                print_error("%s\n", rep.line[i]);
            }
            fail_msg("record for %s does not validate", principals[k]);
        }
        assert_int_equal(fg_record_hash(h, r1, hex1, &err), FG_OK);
        assert_int_equal(fg_record_hash(h, r2, hex2, &err), FG_OK);
        assert_string_equal(hex1, hex2);
        json_decref(r1);
        json_decref(r2);
    }

    /* dave reading a closed incident: ROUTE; both exceptions recorded */
    json_object_set_new(in, "action", json_string("read"));
    json_object_set_new(json_object_get(in, "body"), "/state",
                        json_string("closed"));
    r1 = make_record(p, in, &d, NOW);
    assert_string_equal(json_string_value(json_object_get(r1, "decision")),
                        "ROUTE");
    assert_string_equal(json_string_value(json_object_get(r1, "route")),
                        "eu-pool");
    assert_int_equal(json_array_size(json_object_get(r1, "gates_evaluated")),
                     6);
    r2 = json_object_get(r1, "exceptions_applied");
    assert_int_equal(json_array_size(r2), 2);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(r2, 0), "status")), "applied");
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(r2, 1), "status")), "expired");
    r2 = json_object_get(r1, "rule_ids");
    assert_int_equal(json_array_size(r2), 2);
    assert_string_equal(json_string_value(json_array_get(r2, 0)),
                        "allow-read");
    assert_string_equal(json_string_value(json_array_get(r2, 1)), "eu");
    json_decref(r1);
    fg_policy_free(p);

    /* every decision kind makes a valid record */
    for (k = 0; k <= FG_DECISION_ROUTE; k++) {
        char  rule[256], text[512];

        rule_of(rule, sizeof(rule), "rpm", (int) k);
        snprintf(text, sizeof(text), "{\"rules\":[%s]}", rule);
        json_object_set_new(in, "tool", json_string("servicenow.incident"));
        p = compile_ok(text);
        json_object_set_new(json_object_get(in, "counters"), "rpm",
                            json_pack("{s:i, s:n, s:i}", "requests", 10,
                                      "tokens", "window_seconds", 60));
        r1 = make_record(p, in, &d, NOW);
        assert_int_equal(d.decision, k);
        if (fg_record_validate(records, r1, &rep) != FG_OK) {
            for (i = 0; i < rep.count; i++) {
                print_error("%s\n", rep.line[i]);
            }
            fail_msg("record for %s does not validate", kinds[k]);
        }
        json_decref(r1);
        fg_policy_free(p);
    }

    json_decref(in);
    fg_sha256_free(h);
    fg_records_free(records);
}


static void
test_record_without_bundle(void **state)
{
    fg_records_t              *records;
    fg_decision_t              d;
    fg_policy_record_args_t    a;
    fg_trace_t                 tr;
    fg_error_t                 err;
    fg_schema_report_t         rep;
    json_t                    *in, *rec, *gates;

    (void) state;

    records = fg_records_new(&err);
    assert_non_null(records);
    in = base_input();

    fg_decision_init(&d, FG_DECISION_DENY, "no usable policy bundle");
    memset(&tr, 0, sizeof(tr));
    strcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(tr.span_id, "00f067aa0ba902b7");
    gates = json_pack("[{s:s, s:s}, {s:s, s:s}]", "gate", "authn",
                      "result", "pass", "gate", "policy", "result", "error");
    memset(&a, 0, sizeof(a));
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.auth_context_sha256 = SHA_B;
    a.gates_before = gates;
    a.now_sec = NOW;

    rec = fg_policy_decision_record(&d, in, &a, &err);
    assert_non_null(rec);
    assert_true(json_is_null(json_object_get(rec, "bundle")));
    assert_int_equal(fg_record_validate(records, rec, &rep), FG_OK);
    json_decref(rec);

    /* REQUIRE_HITL needs an approval request id */
    d.decision = FG_DECISION_REQUIRE_HITL;
    assert_null(fg_policy_decision_record(&d, in, &a, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    json_decref(gates);
    json_decref(in);
    fg_records_free(records);
}


/* ---------------------------------------------------------- big bundle */

static fg_policy_t *
big_policy(int n)
{
    fg_buffer_t   b;
    fg_policy_t  *p;
    char          rule[256];
    int           i;

    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, "{\"rules\":[", 10), FG_OK);
    for (i = 0; i < n; i++) {
        switch (i % 4) {
        case 0:
            snprintf(rule, sizeof(rule), "{\"id\":\"t%d\",\"match\":"
                     "{\"tool\":\"tool%d\",\"action\":\"write\"},"
                     "\"decision\":\"DENY\"}", i, i);
            break;
        case 1:
            snprintf(rule, sizeof(rule), "{\"id\":\"m%d\",\"match\":"
                     "{\"model\":\"model-%d\"},\"decision\":\"ALLOW\"}", i, i);
            break;
        case 2:
            snprintf(rule, sizeof(rule), "{\"id\":\"p%d\",\"match\":"
                     "{\"path\":\"/api/%d\",\"method\":\"POST\"},"
                     "\"decision\":\"REQUIRE_HITL\"}", i, i);
            break;
        default:
            snprintf(rule, sizeof(rule), "{\"id\":\"w%d\",\"match\":"
                     "{\"tenant_id\":\"tenant%d\",\"body:/n\":{\"gt\":%d}},"
                     "\"decision\":\"ROUTE\",\"route\":\"r%d\"}", i, i, i, i);
            break;
        }
        assert_int_equal(fg_buffer_append(&b, i ? "," : "", i ? 1 : 0),
                         FG_OK);
        assert_int_equal(fg_buffer_append(&b, rule, strlen(rule)), FG_OK);
    }
    /* a few unindexed rules */
    snprintf(rule, sizeof(rule), ",{\"id\":\"g\",\"match\":{\"model\":"
             "{\"glob\":\"forbidden-*\"}},\"decision\":\"DENY\"}"
             ",{\"id\":\"h\",\"match\":{\"risk\":{\"in\":[\"critical\"]}},"
             "\"decision\":\"DENY\"}]}");
    assert_int_equal(fg_buffer_append(&b, rule, strlen(rule) + 1), FG_OK);

    p = compile_ok((char *) b.data);
    fg_buffer_free(&b);
    return p;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : (x > y);
}


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


/* median ns per decide over batches of calls */
static double
time_decide(const fg_policy_t *p, const json_t *in)
{
    double          samples[201], t0;
    fg_decision_t   d;
    fg_error_t      err;
    int             i, j;

    for (i = 0; i < 201; i++) {
        t0 = now_ns();
        for (j = 0; j < 100; j++) {
            (void) fg_policy_decide(p, in, NOW, &d, &err);
        }
        samples[i] = (now_ns() - t0) / 100;
    }
    qsort(samples, 201, sizeof(double), cmp_double);
    return samples[100];
}


static void
test_big_bundle(void **state)
{
    static const int  sizes[] = { 10, 100, 1000 };
    fg_policy_t      *p;
    fg_decision_t     d;
    fg_error_t        err;
    json_t           *in;
    size_t            s;
    char              buf[64];

    (void) state;

    for (s = 0; s < 3; s++) {
        p = big_policy(sizes[s]);
        in = base_input();

        /* rule t4 (index 4) DENYs tool4 writes */
        json_object_set_new(in, "tool", json_string("tool4"));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_DENY);
        assert_int_equal(d.nrule_ids, 1);
        assert_string_equal(d.rule_ids[0], "t4");

        /* m5 ALLOWs model-5, p6 asks HITL for POST /api/6, w7 routes */
        json_object_set_new(in, "tool", json_string("tool99999"));
        json_object_set_new(in, "model", json_string("model-5"));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_ALLOW);
        json_object_set_new(in, "path", json_string("/api/6"));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_REQUIRE_HITL);
        assert_int_equal(d.nrule_ids, 2);
        json_object_set_new(in, "path", json_string("/none"));
        json_object_set_new(in, "tenant_id", json_string("tenant7"));
        json_object_set_new(json_object_get(in, "body"), "/n",
                            json_integer(8));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_ROUTE);
        assert_string_equal(d.route, "r7");
        json_object_set_new(in, "model", json_string("forbidden-1"));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_DENY);
        assert_string_equal(d.rule_ids[d.nrule_ids - 1], "g");

        /* the last indexed rule of the bundle */
        snprintf(buf, sizeof(buf), "tool%d", (sizes[s] - 1) / 4 * 4);
        json_object_set_new(in, "tool", json_string(buf));
        json_object_set_new(in, "model", json_string("model-x"));
        assert_int_equal(fg_policy_decide(p, in, NOW, &d, &err), FG_OK);
        assert_int_equal(d.decision, FG_DECISION_DENY);

        print_message("decide, %4d rules: median %.0f ns (deny), ",
                      sizes[s] + 2, time_decide(p, in));
        json_object_set_new(in, "tool", json_string("nomatch"));
        json_object_set_new(in, "tenant_id", json_string("acme"));
        print_message("%.0f ns (default)\n", time_decide(p, in));

        json_decref(in);
        fg_policy_free(p);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_compile_refusals),
        cmocka_unit_test(test_compile_limits),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_each_decision),
        cmocka_unit_test(test_payloads),
        cmocka_unit_test(test_precedence_pairs),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_step_up_acr),
        cmocka_unit_test(test_approval),
        cmocka_unit_test(test_body_predicates),
        cmocka_unit_test(test_glob_regex),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_decide_bounds),
        cmocka_unit_test(test_exception_lifts_any),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_record_without_bundle),
        cmocka_unit_test(test_big_bundle),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * bench_decide.c -- how long one policy decision and one caller-token
 * verification take in libfoxgov.
 *
 *   decide: policy.json bundles of 10, 100 and 1,000 rules, generated in
 *   memory as a large enterprise bundle grown from the ITSM triage example
 *   (conf/bundles/itsm-triage/policy.json), are compiled once; then
 *   fg_policy_decide() is timed over a rotating set of realistic decision
 *   inputs prepared beforehand (model calls and tool calls; ALLOW, DENY,
 *   ROUTE, THROTTLE, REQUIRE_HITL, REQUIRE_STEP_UP, exceptions, defaults).
 *   The clock is read around batches of calls; the figures are the median,
 *   p90 and p99 of the batches' per-call averages.
 *
 *   verify: a realistic caller token per algorithm (EdDSA, ES256, RS256 with
 *   the 3072-bit key fg_keyset_generate makes, HS256 with a 32-byte oct
 *   key), verified "cold" (fg_jws_verify + fg_jws_release against the
 *   public JWKS, as a worker loads it) and, when the library has the token
 *   cache (FG_BENCH_TOKEN_CACHE), "cached" (SHA-256 of the token and a hit
 *   in fg_token_cache_get, what the gateway does per request).
 *
 * Usage: bench_decide [--quick] [-r ROUNDS]
 *   --quick     short run (one round, fewer batches and tokens)
 *   -r ROUNDS   decide: time ROUNDS rounds of 10,000 batches per bundle
 *               and keep the round with the lowest median (default 3)
 *
 * Output: one machine-readable line per measurement, then a human table,
 * then the target line (median decide at 1,000 rules under 2 us: PASS or
 * FAIL) and, for information, how OPA's published figures compare.
 * Exit status: 0 when the run completed (whatever the target says), 1 when
 * something failed.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jose.h"
#include "fg_policy.h"
#ifdef FG_BENCH_TOKEN_CACHE
#include "fg_auth.h"
#endif

/* decision time: 2025-11-24T16:00:00Z, before the exceptions expire */
#define NOW_DECIDE  ((time_t) 1764000000)

#define NSIZES 3
static const int sizes[NSIZES] = { 10, 100, 1000 };

#define TARGET_NS        2000.0    /* median decide at 1,000 rules */
#define OPA_BUDGET_NS    1000000.0 /* OPA's ~1 ms per decision guidance */
#define OPA_ENVOY_LO_NS  207000.0  /* OPA-Envoy measured medians */
#define OPA_ENVOY_HI_NS  312000.0

static int quick;
static int rounds = 3;      /* decide: best of; --quick: 1 */


/* ------------------------------------------------------------ helpers */

static void
die(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fprintf(stderr, "bench_decide: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


/* q-quantile (0..1) of sorted v[0..n) (nearest rank) */
static double
quantile(const double *v, size_t n, double q)
{
    size_t  i;

    i = (size_t) (q * (double) n);
    if (i >= n) {
        i = n - 1;
    }
    return v[i];
}


/* A growable string. */
typedef struct {
    char    *s;
    size_t   len, cap;
} sb_t;

static void
sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    for ( ;; ) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            die("vsnprintf failed");
        }
        if (b->len + (size_t) n < b->cap) {
            b->len += (size_t) n;
            return;
        }
        b->cap = (b->cap + (size_t) n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (b->s == NULL) {
            die("out of memory");
        }
    }
}


/* -------------------------------------------------------- the bundles */

/*
 * The rules of the ITSM triage example (slightly extended): a bundle of n
 * rules takes the first min(n, NSPECIAL) of them, then generated rules.
 */
static const char *const special_rules[] = {
    "{\"id\":\"allow-servicenow-read\","
    "\"description\":\"reading incidents is always allowed\","
    "\"match\":{\"kind\":\"tool\",\"tool\":\"servicenow.incident\","
    "\"action\":\"read\"},\"decision\":\"ALLOW\"}",

    "{\"id\":\"hitl-servicenow-write-prod\","
    "\"match\":{\"kind\":\"tool\",\"tool\":\"servicenow.incident\","
    "\"action\":\"write\",\"environment\":\"prod\"},"
    "\"decision\":\"REQUIRE_HITL\"}",

    "{\"id\":\"allow-servicenow-write-nonprod\","
    "\"match\":{\"kind\":\"tool\",\"tool\":\"servicenow.incident\","
    "\"action\":\"write\",\"environment\":{\"not_in\":[\"prod\"]}},"
    "\"decision\":\"ALLOW\"}",

    "{\"id\":\"allow-pinned-models\","
    "\"match\":{\"kind\":\"model\",\"model\":{\"in\":[\"gpt-4o-2024-08-06\","
    "\"gpt-4o-mini-2024-07-18\",\"claude-3-5-sonnet-20241022\"]}},"
    "\"decision\":\"ALLOW\"}",

    "{\"id\":\"deny-unpinned-models\","
    "\"match\":{\"kind\":\"model\",\"model\":{\"not_in\":["
    "\"gpt-4o-2024-08-06\",\"gpt-4o-mini-2024-07-18\","
    "\"claude-3-5-sonnet-20241022\"]}},\"decision\":\"DENY\"}",

    "{\"id\":\"deny-oversized-completions\","
    "\"match\":{\"kind\":\"model\",\"body:/max_tokens\":{\"gt\":4096}},"
    "\"decision\":\"DENY\"}",

    "{\"id\":\"route-eu-tenants\","
    "\"match\":{\"kind\":\"model\",\"tenant_id\":{\"glob\":\"*-eu\"}},"
    "\"decision\":\"ROUTE\",\"route\":\"azure-openai-westeurope\"}",

    "{\"id\":\"daily-token-budget\",\"match\":{\"kind\":\"model\"},"
    "\"decision\":\"THROTTLE\","
    "\"limits\":{\"tokens\":2000000,\"window_seconds\":86400}}",

    "{\"id\":\"deny-o1-family\","
    "\"match\":{\"kind\":\"model\",\"model\":{\"regex\":\"o1(-.*)?\"}},"
    "\"decision\":\"DENY\"}",

    "{\"id\":\"exc-legacy-model-migration\","
    "\"match\":{\"kind\":\"model\",\"workspace_id\":\"legacy-migration\","
    "\"model\":\"gpt-4-turbo\"},"
    "\"exception_for\":[\"deny-unpinned-models\"],"
    "\"expires_at\":\"2026-06-30T00:00:00Z\"}",

    "{\"id\":\"allow-legacy-migration-model\","
    "\"match\":{\"kind\":\"model\",\"workspace_id\":\"legacy-migration\","
    "\"model\":\"gpt-4-turbo\"},\"decision\":\"ALLOW\"}",

    "{\"id\":\"allow-slack-notify\","
    "\"match\":{\"kind\":\"tool\",\"tool\":\"slack.chat\","
    "\"action\":\"write\"},\"decision\":\"ALLOW\"}",
};
#define NSPECIAL (sizeof(special_rules) / sizeof(special_rules[0]))

static const char *const models[] = {
    "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18",
    "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022",
    "gpt-4.1-2025-04-14", "o3-mini-2025-01-31"
};
#define NMODELS (sizeof(models) / sizeof(models[0]))

/*
 * Generated rule gi: per 20 rules, 8 exact tool+action, 3 tenant+model,
 * 2 tenant+environment+tool, 1 tool glob, 1 model glob, 1 tenant `in`,
 * 1 environment `not_in`, 1 body: predicate, 1 REQUIRE_STEP_UP, and one
 * of: an exception (every 100th), a regex (every 40th), a per-tenant
 * THROTTLE or a ROUTE.
 */
static void
gen_rule(sb_t *b, int gi)
{
    static const char *const ptrs[] = {
        "/priority", "/urgency", "/state", "/assignment_group"
    };
    int  cat = gi % 20;

    if (cat <= 7) {
        sb_printf(b, "{\"id\":\"g%04d-tool\",\"match\":{\"kind\":\"tool\","
                  "\"tool\":\"svc%04d.records\",\"action\":\"%s\"},"
                  "\"decision\":\"ALLOW\"}", gi, gi,
                  gi % 2 ? "write" : "read");
    } else if (cat <= 10) {
        sb_printf(b, "{\"id\":\"g%04d-tenant-model\",\"match\":{"
                  "\"kind\":\"model\",\"tenant_id\":\"tenant%04d\","
                  "\"model\":\"%s\"},\"decision\":\"%s\"}", gi, gi,
                  models[gi % NMODELS], cat == 10 ? "DENY" : "ALLOW");
    } else if (cat <= 12) {
        sb_printf(b, "{\"id\":\"g%04d-admin\",\"match\":{"
                  "\"tenant_id\":\"tenant%04d\",\"environment\":\"prod\","
                  "\"tool\":\"svc%04d.admin\"},\"decision\":\"DENY\"}",
                  gi, gi, gi);
    } else if (cat == 13) {
        sb_printf(b, "{\"id\":\"g%04d-vendor-glob\",\"match\":{"
                  "\"kind\":\"tool\",\"tool\":{\"glob\":\"vendor%04d.*\"},"
                  "\"action\":\"write\"},\"decision\":\"DENY\"}", gi, gi);
    } else if (cat == 14) {
        sb_printf(b, "{\"id\":\"g%04d-claude-glob\",\"match\":{"
                  "\"tenant_id\":\"tenant%04d\","
                  "\"model\":{\"glob\":\"claude-3-5-*\"}},"
                  "\"decision\":\"ALLOW\"}", gi, gi);
    } else if (cat == 15) {
        sb_printf(b, "{\"id\":\"g%04d-files-in\",\"match\":{"
                  "\"kind\":\"tool\",\"tool\":\"svc%04d.files\","
                  "\"tenant_id\":{\"in\":[\"acme\",\"globex-eu\","
                  "\"tenant%04d\",\"tenant%04d\",\"initech\"]}},"
                  "\"decision\":\"ALLOW\"}", gi, gi, gi, gi + 1);
    } else if (cat == 16) {
        sb_printf(b, "{\"id\":\"g%04d-hr-nonprod\",\"match\":{"
                  "\"tool\":\"hr%04d.record\","
                  "\"environment\":{\"not_in\":[\"prod\",\"staging\"]}},"
                  "\"decision\":\"ALLOW\"}", gi, gi);
    } else if (cat == 17) {
        const char  *p = ptrs[(gi / 20) % 4];

        if (p[1] == 'p' || p[1] == 'u') {
            sb_printf(b, "{\"id\":\"g%04d-body\",\"match\":{"
                      "\"tool\":\"itsm%04d.ticket\",\"action\":\"write\","
                      "\"body:%s\":{\"lt\":3}},\"decision\":\"REQUIRE_HITL\"}",
                      gi, gi, p);
        } else {
            sb_printf(b, "{\"id\":\"g%04d-body\",\"match\":{"
                      "\"tool\":\"itsm%04d.ticket\",\"action\":\"write\","
                      "\"body:%s\":\"closed\"},\"decision\":\"REQUIRE_HITL\"}",
                      gi, gi, p);
        }
    } else if (cat == 18) {
        sb_printf(b, "{\"id\":\"g%04d-stepup\",\"match\":{"
                  "\"tool\":\"github%04d.repo\",\"action\":\"write\"},"
                  "\"decision\":\"REQUIRE_STEP_UP\","
                  "\"acr_values\":\"urn:foxgov:acr:mfa\"}", gi, gi);
    } else if (gi % 100 == 99) {
        /* lifts the admin DENY (cat 11) of the same hundred */
        sb_printf(b, "{\"id\":\"g%04d-exc\",\"match\":{"
                  "\"tenant_id\":\"tenant%04d\",\"tool\":\"svc%04d.admin\"},"
                  "\"exception_for\":[\"g%04d-admin\"],"
                  "\"expires_at\":\"2026-06-30T00:00:00Z\"}",
                  gi, gi - 88, gi - 88, gi - 88);
    } else if (gi % 40 == 19) {
        sb_printf(b, "{\"id\":\"g%04d-ft-regex\",\"match\":{"
                  "\"tenant_id\":\"tenant%04d\",\"model\":{\"regex\":"
                  "\"ft:gpt-4o-mini-2024-07-18:team%04d:[a-z0-9-]+:[A-Za-z0-9]+\"}},"
                  "\"decision\":\"ALLOW\"}", gi, gi, gi);
    } else if (gi % 3 == 0) {
        sb_printf(b, "{\"id\":\"g%04d-route\",\"match\":{"
                  "\"kind\":\"model\",\"tenant_id\":\"tenant%04d\"},"
                  "\"decision\":\"ROUTE\",\"route\":\"pool-%d\"}",
                  gi, gi, gi % 8);
    } else {
        sb_printf(b, "{\"id\":\"g%04d-rpm\",\"match\":{"
                  "\"kind\":\"model\",\"tenant_id\":\"tenant%04d\"},"
                  "\"decision\":\"THROTTLE\",\"limits\":{\"requests\":600,"
                  "\"window_seconds\":60}}", gi, gi);
    }
}


static char *
gen_policy(int n, size_t *len)
{
    sb_t    b = { NULL, 0, 0 };
    int     i, gi;

    sb_printf(&b, "{\"default\":\"DENY\",\"description\":\"ITSM triage "
              "grown into an enterprise bundle of %d rules\",\"rules\":[", n);
    for (i = 0; i < n; i++) {
        if (i > 0) {
            sb_printf(&b, ",\n");
        }
        if ((size_t) i < NSPECIAL) {
            sb_printf(&b, "%s", special_rules[i]);
        } else {
            gi = i - (int) NSPECIAL;
            gen_rule(&b, gi);
        }
    }
    sb_printf(&b, "]}\n");
    *len = b.len;
    return b.s;
}


/* ---------------------------------------------------------- the inputs */

#define SHA_REQ \
    "3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"

/* A DecisionInput with every field present, as the gateway builds it. */
static json_t *
make_input(const char *kind, const char *tenant, const char *ws,
    const char *env, const char *name, const char *action)
{
    int      model = strcmp(kind, "model") == 0;
    json_t  *in, *body;

    in = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s,"
                   " s:[s, s, s, s, s], s:n, s:n, s:n, s:n, s:n,"
                   " s:s, s:s, s:s,"
                   " s:{s:s, s:i, s:s}, s:{}, s:{s:s}, s:n, s:{}}",
                   "kind", kind, "tenant_id", tenant, "workspace_id", ws,
                   "environment", env, "principal", "svc-triage-agent@acme",
                   "acr", "urn:foxgov:acr:pwd",
                   "capabilities", "model:gpt-4o*", "model:claude-3-5-*",
                   "tool:servicenow.*:read", "tool:servicenow.*:write",
                   "tool:slack.chat:write",
                   "provider", "model", "tool", "action", "risk",
                   "method", "POST", "host", "gw.acme.internal",
                   "path", model ? "/v1/chat/completions" : "/tools/call",
                   "request", "sha256", SHA_REQ, "size_bytes", 2048,
                   "content_type", "application/json",
                   "body", "labels", "app", "itsm-triage",
                   "approval", "counters");
    if (in == NULL) {
        die("json_pack failed");
    }
    if (model) {
        json_object_set_new(in, "model", json_string(name));
        json_object_set_new(in, "provider", json_string(
            strncmp(name, "claude", 6) == 0 ? "anthropic" : "openai"));
    } else {
        json_object_set_new(in, "tool", json_string(name));
        json_object_set_new(in, "action", json_string(action));
        json_object_set_new(in, "risk", json_string(
            strcmp(action, "write") == 0 ? "high" : "low"));
    }
    /* every pointer the bundles use, as the gateway extracts them */
    body = json_object_get(in, "body");
    json_object_set_new(body, "/max_tokens",
                        model ? json_integer(1024) : json_null());
    json_object_set_new(body, "/priority", json_null());
    json_object_set_new(body, "/urgency", json_null());
    json_object_set_new(body, "/state", json_null());
    json_object_set_new(body, "/assignment_group", json_null());
    /* counters of the THROTTLE rules that hold, below their limits */
    if (model) {
        json_object_set_new(json_object_get(in, "counters"),
                            "daily-token-budget",
                            json_pack("{s:i, s:i, s:i}", "requests", 812,
                                      "tokens", 734211,
                                      "window_seconds", 86400));
    }
    return in;
}


#define MAX_INPUTS 24

static size_t
make_inputs(json_t **in, int nrules)
{
    size_t   n = 0;
    int      ngen = nrules - (int) NSPECIAL, k;
    json_t  *v;
    char     name[64], tenant[32];

    /* model calls */
    in[n++] = make_input("model", "acme", "itsm", "prod",
                         "gpt-4o-2024-08-06", NULL);
    in[n++] = make_input("model", "acme", "itsm", "prod",
                         "gpt-4o-mini-2024-07-18", NULL);
    in[n++] = make_input("model", "globex-eu", "itsm", "prod",
                         "claude-3-5-sonnet-20241022", NULL);
    in[n++] = make_input("model", "acme", "itsm", "prod",
                         "gpt-4-turbo", NULL);
    in[n++] = make_input("model", "acme", "legacy-migration", "staging",
                         "gpt-4-turbo", NULL);
    in[n++] = make_input("model", "acme", "research", "dev",
                         "o1-preview", NULL);
    v = make_input("model", "acme", "itsm", "prod", "gpt-4o-2024-08-06",
                   NULL);
    json_object_set_new(json_object_get(v, "body"), "/max_tokens",
                        json_integer(16384));
    in[n++] = v;
    v = make_input("model", "initech", "itsm", "prod", "gpt-4o-2024-08-06",
                   NULL);
    json_object_set_new(json_object_get(v, "counters"), "daily-token-budget",
                        json_pack("{s:i, s:i, s:i}", "requests", 4100,
                                  "tokens", 2000311,
                                  "window_seconds", 86400));
    in[n++] = v;
    /* a tenant of the generated rules (tenant+model, claude glob, ...) */
    k = ngen > 8 ? 8 : 0;
    snprintf(tenant, sizeof(tenant), "tenant%04d", k);
    in[n++] = make_input("model", tenant, "ws-a", "prod", models[k % NMODELS],
                         NULL);
    k = ngen > 14 ? (ngen / 2 / 20) * 20 + 14 : 14;
    snprintf(tenant, sizeof(tenant), "tenant%04d", k);
    in[n++] = make_input("model", tenant, "ws-b", "prod",
                         "claude-3-5-haiku-20241022", NULL);

    /* tool calls */
    in[n++] = make_input("tool", "acme", "itsm", "prod",
                         "servicenow.incident", "read");
    in[n++] = make_input("tool", "acme", "itsm", "prod",
                         "servicenow.incident", "write");
    v = make_input("tool", "acme", "itsm", "prod", "servicenow.incident",
                   "write");
    json_object_set_new(v, "approval", json_pack("{s:s, s:s, s:s, s:s}",
        "approval_id", "01936f4e-7c2a-7b3d-8e4f-0123456789ab",
        "jti", "appr-5f2c9d", "approver", "bob@acme", "input_sha256",
        SHA_REQ));
    in[n++] = v;
    in[n++] = make_input("tool", "acme", "itsm", "staging",
                         "servicenow.incident", "write");
    in[n++] = make_input("tool", "acme", "itsm", "prod", "slack.chat",
                         "write");
    snprintf(name, sizeof(name), "svc%04d.records", 0);
    in[n++] = make_input("tool", "acme", "itsm", "prod", name, "read");
    k = ngen > 1 ? ((ngen * 3 / 4) / 20) * 20 + 5 : 5;
    snprintf(name, sizeof(name), "svc%04d.records", k);
    in[n++] = make_input("tool", "acme", "itsm", "prod", name, "write");
    snprintf(name, sizeof(name), "github%04d.repo", 18);
    in[n++] = make_input("tool", "acme", "platform", "prod", name, "write");
    snprintf(name, sizeof(name), "itsm%04d.ticket", 17);
    v = make_input("tool", "acme", "itsm", "prod", name, "write");
    json_object_set_new(json_object_get(v, "body"), "/priority",
                        json_integer(1));
    in[n++] = v;
    k = ngen > 111 ? 111 : 11;
    snprintf(name, sizeof(name), "svc%04d.admin", k);
    snprintf(tenant, sizeof(tenant), "tenant%04d", k);
    in[n++] = make_input("tool", tenant, "ops", "prod", name, "write");
    /* nothing matches: the default */
    in[n++] = make_input("tool", "acme", "itsm", "prod", "jira.issue",
                         "write");
    in[n++] = make_input("tool", "acme", "itsm", "prod", "confluence.page",
                         "read");
    return n;
}


/* ------------------------------------------------------------- decide */

typedef struct {
    int     rules;
    double  median, p90, p99, per_sec;
    int     ninputs;
    int     kinds[FG_DECISION_ROUTE + 1];
    int     by_default;
    /* one clock read pair per call: tails of single calls */
    double  call_median, call_p99, clock_ns;
    int     slowest;                /* input with the highest median */
    double  slowest_median;
    char    slowest_what[160];
} decide_result_t;


static void
bench_decide_size(int nrules, decide_result_t *r)
{
    fg_policy_t     *p;
    fg_error_t       err;
    fg_decision_t    d;
    json_t          *in[MAX_INPUTS];
    char            *text;
    size_t           len, nin, i, j, nbatches, batch = 100, at;
    int              round;
    double          *lat, t0, t1, total = 0;
    int              rc;

    text = gen_policy(nrules, &len);
    p = fg_policy_compile(text, len, &err);
    if (p == NULL) {
        die("%d rules: compile failed: %s", nrules, err.msg);
    }
    if ((int) fg_policy_rule_count(p) != nrules) {
        die("%d rules: compiled %zu", nrules, fg_policy_rule_count(p));
    }
    free(text);

    nin = make_inputs(in, nrules);
    memset(r, 0, sizeof(*r));
    r->rules = nrules;
    r->ninputs = (int) nin;

    /* check every input decides, note the mix of outcomes */
    for (i = 0; i < nin; i++) {
        rc = fg_policy_decide(p, in[i], NOW_DECIDE, &d, &err);
        if (rc != FG_OK) {
            die("%d rules: input %zu: decide failed: %s", nrules, i,
                err.msg);
        }
        r->kinds[d.decision]++;
        r->by_default += d.by_default;
        if (getenv("BENCH_DECIDE_VERBOSE") != NULL) {
            fprintf(stderr, "rules=%d input=%zu %s: %s\n", nrules, i,
                    fg_decision_name(d.decision), d.justification);
        }
        fg_decision_release(&d);
    }

    /* warm up */
    for (i = 0; i < 20000; i++) {
        fg_policy_decide(p, in[i % nin], NOW_DECIDE, &d, &err);
        fg_decision_release(&d);
    }

    /* rounds: the one with the lowest median is kept (a neighbour's
       burst of work in one round does not count) */
    nbatches = quick ? 2000 : 10000;
    lat = malloc(nbatches * sizeof(*lat));
    if (lat == NULL) {
        die("out of memory");
    }
    r->median = -1;
    for (round = 0; round < rounds; round++) {
        at = 0;
        total = 0;
        for (j = 0; j < nbatches; j++) {
            t0 = now_ns();
            for (i = 0; i < batch; i++) {
                fg_policy_decide(p, in[at], NOW_DECIDE, &d, &err);
                fg_decision_release(&d);
                if (++at == nin) {
                    at = 0;
                }
            }
            t1 = now_ns();
            lat[j] = (t1 - t0) / (double) batch;
            total += t1 - t0;
        }
        qsort(lat, nbatches, sizeof(*lat), cmp_double);
        if (r->median < 0 || quantile(lat, nbatches, 0.5) < r->median) {
            r->median = quantile(lat, nbatches, 0.5);
            r->p90 = quantile(lat, nbatches, 0.9);
            r->p99 = quantile(lat, nbatches, 0.99);
            r->per_sec = (double) (nbatches * batch) / (total / 1e9);
        }
    }
    free(lat);

    /*
     * Single calls, each between two clock reads (the reads' own cost,
     * clock_ns, is included in these figures): the tail of one call, and
     * the input that is slowest to decide.
     */
    {
        size_t   reps = quick ? 500 : 5000, rr;
        double  *all, *per, m;

        all = malloc(reps * nin * sizeof(*all));
        per = malloc(reps * sizeof(*per));
        if (all == NULL || per == NULL) {
            die("out of memory");
        }
        for (rr = 0; rr < reps; rr++) {
            t0 = now_ns();
            per[rr] = now_ns() - t0;
        }
        qsort(per, reps, sizeof(*per), cmp_double);
        r->clock_ns = quantile(per, reps, 0.5);
        for (rr = 0; rr < reps; rr++) {
            for (i = 0; i < nin; i++) {
                t0 = now_ns();
                fg_policy_decide(p, in[i], NOW_DECIDE, &d, &err);
                t1 = now_ns();
                fg_decision_release(&d);
                all[i * reps + rr] = t1 - t0;
            }
        }
        r->slowest_median = -1;
        for (i = 0; i < nin; i++) {
            qsort(all + i * reps, reps, sizeof(*all), cmp_double);
            m = quantile(all + i * reps, reps, 0.5);
            if (m > r->slowest_median) {
                r->slowest_median = m;
                r->slowest = (int) i;
            }
        }
        qsort(all, reps * nin, sizeof(*all), cmp_double);
        r->call_median = quantile(all, reps * nin, 0.5);
        r->call_p99 = quantile(all, reps * nin, 0.99);
        fg_policy_decide(p, in[r->slowest], NOW_DECIDE, &d, &err);
        {
            const char  *kind = json_string_value(
                              json_object_get(in[r->slowest], "kind"));
            const char  *what = json_string_value(json_object_get(
                              in[r->slowest],
                              strcmp(kind, "model") == 0 ? "model" : "tool"));

            snprintf(r->slowest_what, sizeof(r->slowest_what),
                     "%.8s %.40s -> %.100s", kind, what, d.justification);
        }
        fg_decision_release(&d);
        free(all);
        free(per);
    }

    for (i = 0; i < nin; i++) {
        json_decref(in[i]);
    }
    fg_policy_free(p);
}


/* ------------------------------------------------------------- verify */

typedef struct {
    const char  *alg;
    const char  *mode;
    const char  *note;
    size_t       token_len;
    double       median, p99;
} verify_result_t;

#define MAX_VERIFY 16

/* a 32-byte HS256 secret as an oct JWK (the bytes 0x00..0x1f) */
static const char hs256_jwks[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"gw-hs-2025\",\"alg\":\"HS256\","
    "\"use\":\"sig\",\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}]}";


static fg_keyset_t *
public_set(const fg_keyset_t *priv)
{
    fg_keyset_t  *pub;
    fg_error_t    err;
    json_t       *jwks;
    char         *text;

    jwks = json_pack("{s:[o]}", "keys",
                     fg_jwk_public_json(fg_keyset_get(priv, 0)));
    if (jwks == NULL) {
        die("public JWK failed");
    }
    text = json_dumps(jwks, JSON_COMPACT);
    pub = fg_keyset_from_jwks(text, strlen(text), &err);
    if (pub == NULL) {
        die("public JWKS refused: %s", err.msg);
    }
    free(text);
    json_decref(jwks);
    return pub;
}


static void
time_verify(const char *alg, fg_jws_alg_t a, verify_result_t *res,
    size_t *nres)
{
    fg_keyset_t          *priv, *pub;
    fg_error_t            err;
    fg_buffer_t           tok;
    fg_jws_verify_opts_t  opts;
    fg_jws_t              jws;
    json_t               *claims, *hdr;
    time_t                t = time(NULL);
    size_t                n, i, j, iters;
    double               *lat, t0;
    char                  kid[32];
    verify_result_t      *r;

    snprintf(kid, sizeof(kid), "gw-%s-2025", alg);
    if (a == FG_JWS_HS256) {
        priv = fg_keyset_from_jwks(hs256_jwks, strlen(hs256_jwks), &err);
        if (priv == NULL) {
            die("HS256 key refused: %s", err.msg);
        }
        pub = priv;
    } else {
        priv = fg_keyset_generate(a, kid, NULL, &err);
        if (priv == NULL) {
            die("%s keygen failed: %s", alg, err.msg);
        }
        pub = public_set(priv);
    }

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s,"
                       " s:[s, s, s, s, s], s:s, s:I, s:I, s:s}",
                       "iss", "https://idp.acme.example/oauth2/default",
                       "sub", "svc-triage-agent@acme",
                       "tenant_id", "acme", "workspace_id", "itsm",
                       "environment", "prod",
                       "capabilities", "model:gpt-4o*",
                       "model:claude-3-5-*", "tool:servicenow.*:read",
                       "tool:servicenow.incident:write",
                       "tool:slack.chat:write",
                       "acr", "urn:foxgov:acr:mfa",
                       "iat", (json_int_t) t, "exp", (json_int_t) t + 3600,
                       "jti", "01936f4e-7c2a-7b3d-8e4f-0123456789ab");
    hdr = json_pack("{s:s}", "typ", "JWT");
    fg_buffer_init(&tok, 0);
    if (fg_jws_sign(fg_keyset_get(priv, 0), hdr, claims, &tok, &err)
        != FG_OK)
    {
        die("%s sign failed: %s", alg, err.msg);
    }

    memset(&opts, 0, sizeof(opts));
    opts.now = t;
    opts.leeway = 60;
    opts.require_exp = 1;

    /* cold: the full verification, every time */
    iters = quick ? 300 : 5000;
    lat = malloc(iters * sizeof(*lat));
    if (lat == NULL) {
        die("out of memory");
    }
    for (i = 0; i < iters / 10 + 10; i++) {       /* warm up */
        if (fg_jws_verify(pub, (char *) tok.data, tok.len, &opts, &jws,
                          &err) != FG_OK)
        {
            die("%s verify failed: %s", alg, err.msg);
        }
        fg_jws_release(&jws);
    }
    for (i = 0; i < iters; i++) {
        t0 = now_ns();
        fg_jws_verify(pub, (char *) tok.data, tok.len, &opts, &jws, &err);
        fg_jws_release(&jws);
        lat[i] = now_ns() - t0;
    }
    qsort(lat, iters, sizeof(*lat), cmp_double);
    r = &res[(*nres)++];
    r->alg = alg;
    r->mode = "cold";
    r->note = a == FG_JWS_RS256 ? "rsa_bits=3072" : a == FG_JWS_HS256 ?
              "oct_bytes=32" : a == FG_JWS_ES256 ? "curve=P-256" :
              "curve=Ed25519";
    r->token_len = tok.len;
    r->median = quantile(lat, iters, 0.5);
    r->p99 = quantile(lat, iters, 0.99);
    free(lat);

#ifdef FG_BENCH_TOKEN_CACHE
    {
        fg_token_cache_t     *c;
        const fg_jws_t       *hit;
        unsigned char         md[FG_SHA256_LEN];
        char                  filler[32];
        size_t                batch = 100, nb;

        /* a worker's cache with a few hundred callers in it */
        c = fg_token_cache_new(1024);
        if (c == NULL) {
            die("fg_token_cache_new failed");
        }
        for (i = 0; i < 300; i++) {
            n = (size_t) snprintf(filler, sizeof(filler), "caller-%zu", i);
            fg_sha256(filler, n, md);
            if (fg_jws_verify(pub, (char *) tok.data, tok.len, &opts, &jws,
                              &err) != FG_OK
                || fg_token_cache_put(c, md, &jws, t + 3600, t) != FG_OK)
            {
                die("%s: filling the cache failed", alg);
            }
            fg_jws_release(&jws);
        }
        if (fg_jws_verify(pub, (char *) tok.data, tok.len, &opts, &jws,
                          &err) != FG_OK)
        {
            die("%s verify failed: %s", alg, err.msg);
        }
        fg_sha256(tok.data, tok.len, md);
        if (fg_token_cache_put(c, md, &jws, t + 3600, t) != FG_OK) {
            die("%s: fg_token_cache_put failed", alg);
        }
        fg_jws_release(&jws);

        nb = quick ? 1000 : 20000;
        lat = malloc(nb * sizeof(*lat));
        if (lat == NULL) {
            die("out of memory");
        }
        for (j = 0; j < nb; j++) {
            t0 = now_ns();
            for (i = 0; i < batch; i++) {
                fg_sha256(tok.data, tok.len, md);
                hit = fg_token_cache_get(c, md, t);
                if (hit == NULL || hit->claims == NULL) {
                    die("%s: cache miss", alg);
                }
            }
            lat[j] = (now_ns() - t0) / (double) batch;
        }
        qsort(lat, nb, sizeof(*lat), cmp_double);
        r = &res[(*nres)++];
        r->alg = alg;
        r->mode = "cached";
        r->note = "sha256+cache_get";
        r->token_len = tok.len;
        r->median = quantile(lat, nb, 0.5);
        r->p99 = quantile(lat, nb, 0.99);
        free(lat);

        /* the SHA-256 alone: the part of "cached" that is not the lookup */
        lat = malloc(nb * sizeof(*lat));
        if (lat == NULL) {
            die("out of memory");
        }
        for (j = 0; j < nb; j++) {
            t0 = now_ns();
            for (i = 0; i < batch; i++) {
                fg_sha256(tok.data, tok.len, md);
            }
            lat[j] = (now_ns() - t0) / (double) batch;
        }
        qsort(lat, nb, sizeof(*lat), cmp_double);
        r = &res[(*nres)++];
        r->alg = alg;
        r->mode = "sha256_only";
        r->note = "part_of_cached";
        r->token_len = tok.len;
        r->median = quantile(lat, nb, 0.5);
        r->p99 = quantile(lat, nb, 0.99);
        free(lat);

        /*
         * The same hash with one fg_sha256_t kept per worker (init, update,
         * final): what the one-shot EVP_Digest() of fg_sha256() spends on
         * setting up a context every call.
         */
        {
            fg_sha256_t  *h = fg_sha256_new();

            lat = malloc(nb * sizeof(*lat));
            if (h == NULL || lat == NULL) {
                die("out of memory");
            }
            for (j = 0; j < nb; j++) {
                t0 = now_ns();
                for (i = 0; i < batch; i++) {
                    fg_sha256_init(h);
                    fg_sha256_update(h, tok.data, tok.len);
                    fg_sha256_final(h, md);
                }
                lat[j] = (now_ns() - t0) / (double) batch;
            }
            qsort(lat, nb, sizeof(*lat), cmp_double);
            r = &res[(*nres)++];
            r->alg = alg;
            r->mode = "sha256_reused_ctx";
            r->note = "alternative";
            r->token_len = tok.len;
            r->median = quantile(lat, nb, 0.5);
            r->p99 = quantile(lat, nb, 0.99);
            free(lat);
            fg_sha256_free(h);
        }
        fg_token_cache_free(c);
    }
#else
    (void) j;
    (void) n;
#endif

    fg_buffer_free(&tok);
    json_decref(claims);
    json_decref(hdr);
    if (pub != priv) {
        fg_keyset_free(pub);
    }
    fg_keyset_free(priv);
}


/* --------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    static const struct { const char *name; fg_jws_alg_t a; } algs[] = {
        { "EdDSA", FG_JWS_EDDSA }, { "ES256", FG_JWS_ES256 },
        { "RS256", FG_JWS_RS256 }, { "HS256", FG_JWS_HS256 }
    };
    decide_result_t   dr[NSIZES];
    verify_result_t   vr[MAX_VERIFY];
    size_t            nvr = 0, i;
    int               k, pass;
    double            m1000;

    for (k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--quick") == 0) {
            quick = 1;
            rounds = 1;
        } else if (strcmp(argv[k], "-r") == 0 && k + 1 < argc
                   && atoi(argv[k + 1]) >= 1)
        {
            rounds = atoi(argv[++k]);
        } else {
            fprintf(stderr, "usage: bench_decide [--quick] [-r ROUNDS]\n");
            return 2;
        }
    }
    {
        double  la[3] = { -1, -1, -1 };

        if (getloadavg(la, 3) < 0) {
            la[0] = -1;
        }
        printf("machine nproc=%ld loadavg_1m=%.2f decide_rounds=%d "
               "quick=%d\n", sysconf(_SC_NPROCESSORS_ONLN), la[0], rounds,
               quick);
    }

    for (k = 0; k < NSIZES; k++) {
        bench_decide_size(sizes[k], &dr[k]);
        printf("decide rules=%d inputs=%d median_ns=%.0f p90_ns=%.0f "
               "p99_ns=%.0f per_sec=%.0f\n", dr[k].rules, dr[k].ninputs,
               dr[k].median, dr[k].p90, dr[k].p99, dr[k].per_sec);
        printf("decide_call rules=%d median_ns=%.0f p99_ns=%.0f "
               "clock_read_ns=%.0f slowest_input=%d slowest_median_ns=%.0f\n",
               dr[k].rules, dr[k].call_median, dr[k].call_p99,
               dr[k].clock_ns, dr[k].slowest, dr[k].slowest_median);
        fflush(stdout);
    }
    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        size_t  first = nvr, j;

        time_verify(algs[i].name, algs[i].a, vr, &nvr);
        for (j = first; j < nvr; j++) {
            printf("verify alg=%s mode=%s median_ns=%.0f p99_ns=%.0f "
                   "token_bytes=%zu %s\n", vr[j].alg, vr[j].mode,
                   vr[j].median, vr[j].p99, vr[j].token_len, vr[j].note);
        }
        fflush(stdout);
    }
#ifndef FG_BENCH_TOKEN_CACHE
    printf("verify mode=cached skipped=1 reason=library_without_token_cache\n");
#endif

    /* ------------------------------------------------ human table */
    printf("\n%-24s %10s %10s %10s %14s\n", "decide (ns per call)",
           "median", "p90", "p99", "decides/s");
    for (k = 0; k < NSIZES; k++) {
        char  label[32];

        snprintf(label, sizeof(label), "%d rules", dr[k].rules);
        printf("%-24s %10.0f %10.0f %10.0f %14.0f\n", label, dr[k].median,
               dr[k].p90, dr[k].p99, dr[k].per_sec);
    }
    printf("\n%-24s %10s %10s  %s\n", "single calls (ns)", "median",
           "p99", "slowest input (its median)");
    for (k = 0; k < NSIZES; k++) {
        char  label[32];

        snprintf(label, sizeof(label), "%d rules", dr[k].rules);
        printf("%-24s %10.0f %10.0f  #%d %.0f ns: %s\n", label,
               dr[k].call_median, dr[k].call_p99, dr[k].slowest,
               dr[k].slowest_median, dr[k].slowest_what);
    }
    printf("  (single-call figures include one clock read pair, about "
           "%.0f ns)\n", dr[0].clock_ns);
    printf("  outcomes of the %d inputs (1,000 rules): ALLOW %d, DENY %d "
           "(default %d), REQUIRE_HITL %d, REQUIRE_STEP_UP %d, THROTTLE %d, "
           "ROUTE %d\n", dr[NSIZES - 1].ninputs,
           dr[NSIZES - 1].kinds[FG_DECISION_ALLOW],
           dr[NSIZES - 1].kinds[FG_DECISION_DENY],
           dr[NSIZES - 1].by_default,
           dr[NSIZES - 1].kinds[FG_DECISION_REQUIRE_HITL],
           dr[NSIZES - 1].kinds[FG_DECISION_REQUIRE_STEP_UP],
           dr[NSIZES - 1].kinds[FG_DECISION_THROTTLE],
           dr[NSIZES - 1].kinds[FG_DECISION_ROUTE]);

    printf("\n%-24s %10s %10s %8s  %s\n", "verify (ns per token)",
           "median", "p99", "bytes", "");
    for (i = 0; i < nvr; i++) {
        char  label[32];

        snprintf(label, sizeof(label), "%s %s", vr[i].alg, vr[i].mode);
        printf("%-24s %10.0f %10.0f %8zu  %s\n", label, vr[i].median,
               vr[i].p99, vr[i].token_len, vr[i].note);
    }
#ifndef FG_BENCH_TOKEN_CACHE
    printf("(cached verification not measured: the library has no token "
           "cache yet)\n");
#endif

    /* ------------------------------------------------------ target */
    m1000 = dr[NSIZES - 1].median;
    pass = m1000 < TARGET_NS;
    printf("\ntarget decide_median_1000_rules_under_ns=%.0f median_ns=%.0f "
           "%s\n", TARGET_NS, m1000, pass ? "PASS" : "FAIL");
    printf("compare ref=opa_budget_1ms ref_ns=%.0f ratio=%.0f "
           "(informational)\n", OPA_BUDGET_NS, OPA_BUDGET_NS / m1000);
    printf("compare ref=opa_envoy_median_low ref_ns=%.0f ratio=%.0f "
           "(informational)\n", OPA_ENVOY_LO_NS, OPA_ENVOY_LO_NS / m1000);
    printf("compare ref=opa_envoy_median_high ref_ns=%.0f ratio=%.0f "
           "(informational)\n", OPA_ENVOY_HI_NS, OPA_ENVOY_HI_NS / m1000);
    return 0;
}

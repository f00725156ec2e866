/*
 * fuzz_policy.c -- libFuzzer target for fg_policy.
 *
 * The input is "<policy.json> NUL <decision input JSON>" (no NUL: the
 * whole input is the policy).  The policy is compiled; if it compiles and
 * the decision input parses, the gateway's sequence runs: the THROTTLE
 * rules to count, decide (twice, at two times), and the decision record.
 *
 * Beyond the sanitizers it checks that deciding is deterministic (the same
 * input and time give the same decision), that a failed decide still
 * leaves a DENY, that every rule id of a decision is bounded, that a
 * decision's parts fit its kind (a route only for ROUTE, acr_values only
 * for REQUIRE_STEP_UP, Retry-After only for THROTTLE; counts within their
 * arrays) and that the THROTTLE limits handed to the counters are sane.
 *
 * Build: make fuzz-build (clang -fsanitize=fuzzer,address,undefined).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg_policy.h"

#define FUZZ_NOW  1764000000


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fuzz_check(const fg_decision_t *a, const fg_decision_t *b)
{
    size_t  i;

    if (a->decision != b->decision || a->nrule_ids != b->nrule_ids
        || a->nexceptions != b->nexceptions || a->ngates != b->ngates
        || strcmp(a->justification, b->justification) != 0)
    {
        abort();
    }
    for (i = 0; i < a->nrule_ids; i++) {
        if (a->rule_ids[i] != b->rule_ids[i]
            || strlen(a->rule_ids[i]) > 128)
        {
            abort();
        }
    }
    if (strlen(a->justification) > FG_DECISION_JUSTIFICATION) {
        abort();
    }
    if ((unsigned) a->decision > FG_DECISION_ROUTE
        || a->nrule_ids > FG_DECISION_MAX_RULES
        || a->nexceptions > FG_DECISION_MAX_EXCEPTIONS
        || a->ngates > FG_DECISION_MAX_GATES
        || (a->route != NULL) != (a->decision == FG_DECISION_ROUTE)
        || (a->acr_values != NULL
            && a->decision != FG_DECISION_REQUIRE_STEP_UP)
        || (a->retry_after_seconds != -1
            && a->decision != FG_DECISION_THROTTLE)
        || (a->decision == FG_DECISION_THROTTLE
            && a->retry_after_seconds < 0))
    {
        abort();
    }
}


static void
fuzz_record(const fg_decision_t *d, const json_t *input)
{
    fg_policy_record_args_t   a;
    fg_trace_t                tr;
    fg_error_t                err;
    json_t                   *rec;

    memset(&tr, 0, sizeof(tr));
    memcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(tr.span_id, "00f067aa0ba902b7", 17);

    memset(&a, 0, sizeof(a));
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.auth_context_sha256 =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    a.bundle_revision = "rev-1";
    a.bundle_sha256 = a.auth_context_sha256;
    a.approval_request_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ac";
    a.now_sec = FUZZ_NOW;

    rec = fg_policy_decision_record(d, input, &a, &err);
    json_decref(rec);
}


static void
fuzz_decide(const fg_policy_t *p, const json_t *input)
{
    fg_decision_t   d1, d2;
    fg_throttle_t   th[8];
    fg_error_t      err;
    size_t          i;
    long            n;
    int             rc1, rc2;

    n = fg_policy_throttles(p, input, th, 8, &err);
    for (i = 0; n > 0 && i < (size_t) n && i < 8; i++) {
        if (th[i].rule_id == NULL || th[i].window_seconds <= 0
            || th[i].requests < -1 || th[i].tokens < -1
            || (th[i].requests == -1 && th[i].tokens == -1))
        {
            abort();
        }
    }

    rc1 = fg_policy_decide(p, input, FUZZ_NOW, &d1, &err);
    rc2 = fg_policy_decide(p, input, FUZZ_NOW, &d2, &err);
    if (rc1 != rc2) {
        abort();
    }
    fuzz_check(&d1, &d2);
    if (rc1 != FG_OK && d1.decision != FG_DECISION_DENY) {
        abort();
    }
    if (rc1 == FG_OK) {
        fuzz_record(&d1, input);
    }

    /* far in the future every exception has expired */
    (void) fg_policy_decide(p, input, (time_t) 4102444800LL, &d1, &err);
    fg_decision_release(&d1);
    fg_decision_release(&d2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t  *nul;
    fg_policy_t    *p;
    fg_error_t      err;
    json_t         *input;
    json_error_t    jerr;
    size_t          plen;
    const char *const *ptrs;

    nul = memchr(data, 0, size);
    plen = nul != NULL ? (size_t) (nul - data) : size;

    p = fg_policy_compile((const char *) data, plen, &err);
    if (p == NULL) {
        if (strlen(err.msg) >= FG_ERRMSG_MAX) {
            abort();
        }
        return 0;
    }
    if (fg_policy_body_pointers(p, &ptrs) > FG_POLICY_MAX_BODY_POINTERS) {
        abort();
    }

    if (nul != NULL) {
        input = json_loadb((const char *) nul + 1, size - plen - 1,
                           JSON_REJECT_DUPLICATES, &jerr);
        if (input != NULL) {
            fuzz_decide(p, input);
            json_decref(input);
        }
    }

    fg_policy_free(p);
    return 0;
}

/*
 * fg_policy.h -- the foxgov rule language (DESIGN.md, "Policy bundle"):
 * policy.json compiled once into a read-only fg_policy_t, and the decision
 * made from it for one call:
 *
 *     fg_policy_decide(policy, input, now) -> fg_decision_t
 *
 * The decision is a pure function of (input, policy, now): decide never
 * counts, reads clocks or allocates beyond a regex match block; the caller
 * passes observed THROTTLE counters and a verified approval inside the
 * input (the DecisionInput of schemas/PolicyDecisionRecord.schema.json).
 * fg_policy_decision_record() turns a decision into the
 * PolicyDecisionRecord.  docs/policy.md is the language reference.
 *
 * A compiled policy is immutable: any number of threads may decide with
 * it at once.  A decision borrows strings (rule ids, route, acr_values)
 * from the policy and must not outlive it.
 */

#ifndef FG_POLICY_H
#define FG_POLICY_H

#include <time.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_record.h"

#define FG_POLICY_MAX_RULES         10000
#define FG_POLICY_MAX_BODY_POINTERS 64
#define FG_POLICY_MAX_TEXT          (16 * 1024 * 1024)

/* Bounds of one decision (the record schema's). */
#define FG_DECISION_MAX_RULES       256
#define FG_DECISION_MAX_EXCEPTIONS  64
#define FG_DECISION_MAX_GATES       6
#define FG_DECISION_JUSTIFICATION   1024

typedef struct fg_policy_s  fg_policy_t;

typedef enum {
    FG_DECISION_ALLOW = 0,
    FG_DECISION_DENY,
    FG_DECISION_REQUIRE_HITL,
    FG_DECISION_REQUIRE_STEP_UP,
    FG_DECISION_THROTTLE,
    FG_DECISION_ROUTE
} fg_decision_kind_t;

/* One gate of gates_evaluated; names are the schema's enum strings. */
typedef struct {
    const char  *gate;       /* "policy", "approval", "throttle", ... */
    const char  *result;     /* "pass", "fail", "not_applicable", "error" */
} fg_gate_t;

/* One exceptions_applied entry. */
typedef struct {
    const char  *rule_id;        /* the rule the exception names */
    const char  *exception_id;   /* the exception rule */
    const char  *expires_at;     /* as written in the bundle */
    int          applied;        /* 1 applied, 0 expired (ignored) */
} fg_exception_applied_t;

/*
 * The outcome of one decision.  Arrays are fixed-size so deciding does not
 * allocate; strings point into the policy.
 */
typedef struct {
    fg_decision_kind_t      decision;
    int                     by_default;     /* no rule decided: default */

    size_t                  nrule_ids;      /* in bundle order */
    const char             *rule_ids[FG_DECISION_MAX_RULES];

    size_t                  nexceptions;    /* in bundle order */
    fg_exception_applied_t  exceptions[FG_DECISION_MAX_EXCEPTIONS];

    size_t                  ngates;         /* policy, approval, throttle */
    fg_gate_t               gates[FG_DECISION_MAX_GATES];

    const char             *route;          /* ROUTE, else NULL */
    const char             *acr_values;     /* REQUIRE_STEP_UP, else NULL */
    long                    retry_after_seconds;  /* THROTTLE, else -1 */

    char                    justification[FG_DECISION_JUSTIFICATION + 1];
} fg_decision_t;


/* -------------------------------------------------------------- compile */

/*
 * Compile policy.json text[0..len).  Returns the policy, or NULL with err
 * set: FG_ERR_SYNTAX when the text is not JSON, FG_ERR_INVALID (or
 * FG_ERR_LIMIT for a bound) when it is not a valid policy; the message
 * names the rule by index and id ("rule 3 (deny-prod): ...") and the
 * reason.  FG_ERR_NOMEM when memory runs out.
 */
fg_policy_t *fg_policy_compile(const char *text, size_t len,
    fg_error_t *err);

/* Free a policy (NULL is allowed). */
void fg_policy_free(fg_policy_t *p);

/*
 * The distinct JSON pointers the policy's body:<pointer> keys read, in
 * first-use order: what the gateway must extract into input.body.  Sets
 * *ptrs to an array owned by the policy and returns its length (0..64).
 */
size_t fg_policy_body_pointers(const fg_policy_t *p,
    const char *const **ptrs);

/* Number of rules in the policy. */
size_t fg_policy_rule_count(const fg_policy_t *p);

/* The THROTTLE limits of a rule, for the gateway's counters. */
typedef struct {
    const char  *rule_id;
    long long    requests;         /* -1 when the rule does not limit it */
    long long    tokens;           /* -1 when the rule does not limit it */
    long         window_seconds;
} fg_throttle_t;

/*
 * The THROTTLE rules whose match holds for input (counters are not read
 * and exceptions are not applied): the rules the gateway reads counters
 * for and puts into input.counters before calling fg_policy_decide().
 * Writes at most max entries to out, in bundle order, and returns how
 * many match (which may exceed max), or a negative FG_ERR_* with err set
 * (bad input, regex limit).
 */
long fg_policy_throttles(const fg_policy_t *p, const json_t *input,
    fg_throttle_t *out, size_t max, fg_error_t *err);


/* --------------------------------------------------------------- decide */

/*
 * Decide for input (a DecisionInput object) at time now.  Fills out and
 * returns FG_OK, or returns an error with err set and out holding a DENY
 * (so a caller that ignores the code still fails closed):
 * FG_ERR_INVALID when input is not an object, FG_ERR_LIMIT when a regex
 * hits its match limit or more rules match than a record can hold,
 * FG_ERR_NOMEM.
 */
int fg_policy_decide(const fg_policy_t *p, const json_t *input, time_t now,
    fg_decision_t *out, fg_error_t *err);

/*
 * Make d a decision taken without the bundle (a gate before it stopped
 * the call, or no usable bundle): kind, no rules, the justification
 * given (truncated to fit), gates empty.
 */
void fg_decision_init(fg_decision_t *d, fg_decision_kind_t kind,
    const char *justification);

/* Release what a decision holds (nothing today; kept for the API). */
void fg_decision_release(fg_decision_t *d);

/* "ALLOW", "DENY", ... for a decision kind; "DENY" for an unknown one. */
const char *fg_decision_name(fg_decision_kind_t kind);


/* --------------------------------------------------------------- record */

/*
 * What the PolicyDecisionRecord needs besides the decision and its input.
 * gates_before: the gates the gateway ran before the bundle (authn,
 * schema, capability) as a JSON array of {gate, result}, or NULL; they
 * are written before the decision's own gates.  permissions_checked: a
 * JSON array of capability strings, or NULL for [].
 * approval_request_id: required when the decision is REQUIRE_HITL,
 * ignored otherwise.  bundle_revision NULL writes "bundle": null.
 */
typedef struct {
    const char        *tenant_id;
    const char        *execution_id;
    const fg_trace_t  *trace;
    const char        *auth_context_sha256;
    const char        *bundle_revision;
    const char        *bundle_sha256;
    const json_t      *gates_before;
    const json_t      *permissions_checked;
    const char        *approval_request_id;
    time_t             now_sec;
    long               now_nsec;
} fg_policy_record_args_t;

/*
 * Write the PolicyDecisionRecord of decision d made from input, in its
 * canonical form, into out (the sink is drained): the bytes whose sha256
 * is its envelope_hash, as the gateway sends them.  The record is not
 * validated here (docs/records.md, "Where records are validated").
 * Returns FG_OK, or an error with err set (FG_ERR_INVALID for a missing
 * argument, a bad time or a string that is not UTF-8, the sink's error).
 */
int fg_policy_decision_write(const fg_decision_t *d, const json_t *input,
    const fg_policy_record_args_t *args, fg_sink_t *out, fg_error_t *err);

/*
 * The same record as a jansson value (written, then read back), for the
 * CLI and the tests.  NULL with err set on error.
 */
json_t *fg_policy_decision_record(const fg_decision_t *d,
    const json_t *input, const fg_policy_record_args_t *args,
    fg_error_t *err);

#endif /* FG_POLICY_H */

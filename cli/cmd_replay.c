/*
 * cmd_replay.c -- `foxgov replay`: invariant replay of a tenant's
 * recorded decisions against a candidate bundle.  Every
 * PolicyDecisionRecord of the ledger (read through cli_ledger, so only
 * evidence that verifies) is decided again from its recorded input at its
 * own decided_at; no model or tool is called.  It prints how many
 * decisions of each kind there were before and after, and each decision
 * that changes with the rules that cause the change; --json prints the
 * same as one canonical JSON object named by its comparison_id.
 */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_ledger.h"
#include "fg_bundle.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_jose.h"
#include "fg_policy.h"
#include "fg_record.h"

#define FG_REPLAY_KINDS  6

/* A bundle replay decides with: loaded, compiled, its body pointers. */
typedef struct {
    const char          *path;
    fg_bundle_t         *bundle;
    fg_policy_t         *policy;
    const char *const   *ptrs;
    size_t               nptrs;
} fg_replay_bundle_t;

/*
 * A decision waiting for the rest of the ledger: its input leaves a body
 * pointer unanswered that a later record of the same bundle may show the
 * bundle read (then it was absent from this body, and can be replayed).
 */
typedef struct {
    uint64_t   seq;
    json_t    *call;        /* the change entry's fields, without sides */
    json_t    *input;       /* a copy */
    json_t    *recorded;    /* the recorded side */
    json_t    *bundle_sha;  /* the record's bundle.sha256 (a string) */
    time_t     now;
} fg_replay_pending_t;

typedef struct {
    const char           *ledger;
    const char           *tenant;
    const char           *since;
    time_t                since_sec;
    long                  since_nsec;
    int                   json;

    fg_keyset_t          *keys;
    fg_replay_bundle_t    candidate;
    fg_replay_bundle_t    baseline;     /* bundle NULL: the recorded */

    /* bundle sha256 -> {pointer: true}: pointers seen in its records */
    json_t               *seen;

    fg_replay_pending_t  *pending;
    size_t                npending, cpending;

    json_t               *changed;      /* array of change entries */
    uint64_t              before[FG_REPLAY_KINDS];
    uint64_t              after[FG_REPLAY_KINDS];
    uint64_t              decisions, gate_decided, unchanged;

    char                 *name;         /* the ledger, for messages */
    uint64_t              head_seq;
    char                  head_chain[FG_SHA256_HEX_LEN + 1];
    char                  tenant_id[FG_TENANT_ID_MAX + 1];
} fg_replay_t;


static void
fg_replay_help(void)
{
    printf("usage: foxgov replay LEDGER --bundle CANDIDATE [--keys JWKS] "
           "[--baseline BUNDLE]\n"
           "                     [--tenant T] [--since RFC3339] [--json]\n"
           "\n"
           "Decides every PolicyDecisionRecord of the ledger again from its "
           "recorded\ninput, at its own decided_at, with the candidate "
           "bundle (no model or tool\nis called), and compares with the "
           "recorded decision, or with what the\nbaseline bundle decides.  "
           "Prints the decisions per kind before and after,\neach decision "
           "that changes with the rules that count after but not before\n"
           "(+) and before but not after (-), and the comparison_id.  The "
           "ledger is\nverified as `foxgov verify` does; nothing is printed "
           "unless all of it\nverifies.  With --keys the bundles must "
           "verify; without, they are read as\nunsigned drafts.  --json "
           "prints one canonical JSON object.\n"
           "Exit status: 0 compared (whether or not decisions change), 1 "
           "the ledger does\nnot verify or a recorded input cannot be "
           "re-decided, 2 usage.\n");
}


/* ------------------------------------------------------------ bundles */

/*
 * Load the bundle at path, verified against keys (or, without keys,
 * unverified: a draft), and compile its policy.  Prints the reason and
 * returns -1 on failure.
 */
static int
fg_replay_bundle_open(const char *path, const fg_keyset_t *keys,
    fg_replay_bundle_t *rb)
{
    rb->path = path;

    if (fg_cli_bundle_load("replay", path, keys, &rb->bundle, &rb->policy)
        != 0)
    {
        return -1;
    }

    rb->nptrs = fg_policy_body_pointers(rb->policy, &rb->ptrs);

    return 0;
}


static void
fg_replay_bundle_close(fg_replay_bundle_t *rb)
{
    fg_policy_free(rb->policy);
    fg_bundle_free(rb->bundle);
}


/* {"revision", "sha256", "verified"} of a bundle, or null */
static json_t *
fg_replay_bundle_json(const fg_replay_bundle_t *rb)
{
    if (rb->bundle == NULL) {
        return json_null();
    }

    return json_pack("{s:s, s:s, s:b}",
                     "revision", fg_bundle_revision(rb->bundle),
                     "sha256", fg_bundle_sha256(rb->bundle),
                     "verified", fg_bundle_verified(rb->bundle));
}


/* ----------------------------------------------------- body pointers */

/*
 * Remember the pointers a record's input.body holds: the gateway writes
 * one member for every pointer its bundle reads (when it resolves), so
 * each one seen proves that bundle reads it.
 */
static int
fg_replay_note_body(fg_replay_t *r, const char *sha, const json_t *body)
{
    const char  *key;
    size_t       klen;
    json_t      *set, *v;

    if (json_object_size(body) == 0) {
        return FG_OK;
    }

    set = json_object_get(r->seen, sha);
    if (set == NULL) {
        set = json_object();
        if (set == NULL || json_object_set_new(r->seen, sha, set) != 0) {
            return FG_ERR_NOMEM;
        }
    }

    json_object_keylen_foreach((json_t *) body, key, klen, v) {
        (void) v;
        if (json_object_setn_new(set, key, klen, json_true()) != 0) {
            return FG_ERR_NOMEM;
        }
    }

    return FG_OK;
}


/*
 * 1 when the bundle named sha is known to read pointer p (so its absence
 * from a record's body means it did not resolve), else 0.  A loaded
 * bundle with that digest answers exactly; otherwise what its records
 * have shown.
 */
static int
fg_replay_reads(const fg_replay_t *r, const char *sha, const char *p)
{
    const fg_replay_bundle_t  *known[2];
    size_t                     i, j;

    known[0] = &r->candidate;
    known[1] = &r->baseline;

    for (i = 0; i < 2; i++) {
        if (known[i]->bundle == NULL
            || strcmp(fg_bundle_sha256(known[i]->bundle), sha) != 0)
        {
            continue;
        }
        for (j = 0; j < known[i]->nptrs; j++) {
            if (strcmp(known[i]->ptrs[j], p) == 0) {
                return 1;
            }
        }
        return 0;
    }

    return json_object_getn(json_object_get(r->seen, sha), p, strlen(p))
           != NULL;
}


/*
 * The first body pointer rb reads that the recorded input cannot answer:
 * absent from input.body while the record's bundle is not known to read
 * it.  NULL when every one can be answered.
 */
static const char *
fg_replay_unanswered(const fg_replay_t *r, const fg_replay_bundle_t *rb,
    const json_t *body, const char *sha)
{
    const char  *p;
    size_t       i;

    for (i = 0; i < rb->nptrs; i++) {
        p = rb->ptrs[i];
        if (json_object_getn(body, p, strlen(p)) == NULL
            && !fg_replay_reads(r, sha, p))
        {
            return p;
        }
    }

    return NULL;
}


/* ------------------------------------------------------------ deciding */

/* The kind of a decision name, or -1. */
static int
fg_replay_kind(const char *name)
{
    int  k;

    if (name == NULL) {
        return -1;
    }

    for (k = 0; k < FG_REPLAY_KINDS; k++) {
        if (strcmp(name, fg_decision_name((fg_decision_kind_t) k)) == 0) {
            return k;
        }
    }

    return -1;
}


/*
 * One side of a comparison, as the JSON carries it: {decision, route,
 * rule_ids, exceptions_applied, justification}.
 */
static json_t *
fg_replay_side_decided(const fg_decision_t *d)
{
    json_t  *side, *ids, *exc, *e;
    size_t   i;

    ids = json_array();
    exc = json_array();
    side = json_pack("{s:s, s:s?, s:o, s:o, s:s}",
                     "decision", fg_decision_name(d->decision),
                     "route", d->route,
                     "rule_ids", ids,
                     "exceptions_applied", exc,
                     "justification", d->justification);
    if (side == NULL) {
        return NULL;
    }

    for (i = 0; i < d->nrule_ids; i++) {
        if (json_array_append_new(ids, json_string(d->rule_ids[i])) != 0) {
            goto failed;
        }
    }

    for (i = 0; i < d->nexceptions; i++) {
        e = json_pack("{s:s, s:s, s:s, s:s}",
                      "rule_id", d->exceptions[i].rule_id,
                      "exception_id", d->exceptions[i].exception_id,
                      "expires_at", d->exceptions[i].expires_at,
                      "status", d->exceptions[i].applied ? "applied"
                                                          : "expired");
        if (json_array_append_new(exc, e) != 0) {
            goto failed;
        }
    }

    return side;

failed:

    json_decref(side);
    return NULL;
}


/* The recorded side of a PolicyDecisionRecord (schema-valid). */
static json_t *
fg_replay_side_recorded(const json_t *rec)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O}",
                     "decision", json_object_get(rec, "decision"),
                     "route", json_object_get(rec, "route"),
                     "rule_ids", json_object_get(rec, "rule_ids"),
                     "exceptions_applied",
                     json_object_get(rec, "exceptions_applied"),
                     "justification", json_object_get(rec, "justification"));
}


/* Decide input at now with rb into a side; NULL with err set on error. */
static json_t *
fg_replay_side(const fg_replay_bundle_t *rb, const json_t *input, time_t now,
    fg_error_t *err)
{
    fg_decision_t  d;
    json_t        *side;
    char           why[FG_ERRMSG_MAX];

    if (fg_policy_decide(rb->policy, input, now, &d, err) != FG_OK) {
        if (err->code != FG_ERR_NOMEM) {
            memcpy(why, err->msg, sizeof(why));
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "cannot be re-decided with %.100s: %.120s",
                         rb->path, why);
        }
        return NULL;
    }

    side = fg_replay_side_decided(&d);
    fg_decision_release(&d);

    if (side == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    return side;
}


/* The members of array a that are not in b, in a's order. */
static json_t *
fg_replay_minus(const json_t *a, const json_t *b)
{
    json_t  *out, *x, *y;
    size_t   i, j;
    int      found;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    json_array_foreach(a, i, x) {
        found = 0;
        json_array_foreach(b, j, y) {
            if (json_equal(x, y)) {
                found = 1;
                break;
            }
        }
        if (!found && json_array_append(out, x) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/*
 * Count a compared decision, and keep it when it changed: the decision,
 * or the route of a ROUTE.  Takes the references to call, before, after.
 */
static int
fg_replay_compare(fg_replay_t *r, json_t *call, json_t *before,
    json_t *after)
{
    json_t  *add, *del;
    int      kb, ka, rc = FG_ERR_NOMEM;

    kb = fg_replay_kind(json_string_value(json_object_get(before,
                                                          "decision")));
    ka = fg_replay_kind(json_string_value(json_object_get(after,
                                                          "decision")));
    if (kb < 0 || ka < 0) {
        rc = FG_ERR_INTERNAL;
        goto done;
    }

    r->before[kb]++;
    r->after[ka]++;

    if (kb == ka && json_equal(json_object_get(before, "route"),
                               json_object_get(after, "route")))
    {
        r->unchanged++;
        rc = FG_OK;
        goto done;
    }

    add = fg_replay_minus(json_object_get(after, "rule_ids"),
                          json_object_get(before, "rule_ids"));
    del = fg_replay_minus(json_object_get(before, "rule_ids"),
                          json_object_get(after, "rule_ids"));

    if (add != NULL && del != NULL
        && json_object_set(call, "before", before) == 0
        && json_object_set(call, "after", after) == 0
        && json_object_set(call, "rules_added", add) == 0
        && json_object_set(call, "rules_removed", del) == 0
        && json_array_append(r->changed, call) == 0)
    {
        rc = FG_OK;
    }

    json_decref(add);
    json_decref(del);

done:

    json_decref(call);
    json_decref(before);
    json_decref(after);

    return rc;
}


/*
 * Re-decide one recorded decision: before is the recorded side (taken)
 * or the baseline's decision, after the candidate's.  Returns FG_OK or an
 * error with err set.
 */
static int
fg_replay_one(fg_replay_t *r, json_t *call, const json_t *input, time_t now,
    json_t *recorded, fg_error_t *err)
{
    json_t  *before, *after;
    int      rc;

    if (r->baseline.bundle != NULL) {
        json_decref(recorded);
        before = fg_replay_side(&r->baseline, input, now, err);
        if (before == NULL) {
            json_decref(call);
            return err->code;
        }

    } else {
        before = recorded;
    }

    after = fg_replay_side(&r->candidate, input, now, err);
    if (after == NULL) {
        json_decref(call);
        json_decref(before);
        return err->code;
    }

    rc = fg_replay_compare(r, call, before, after);
    if (rc != FG_OK) {
        fg_error_set(err, rc, FG_NO_OFFSET, "out of memory");
    }

    return rc;
}


/* ----------------------------------------------------------- records */


/*
 * 1 when the record's decision was not made by a bundle: a gate before
 * the bundle stopped the call (no "policy" gate ran), or no usable bundle
 * was loaded ("bundle": null).  A candidate bundle cannot change those.
 */
static int
fg_replay_gate_decided(const json_t *rec)
{
    const json_t  *g;
    const char    *name;
    size_t         i;

    if (!json_is_object(json_object_get(rec, "bundle"))) {
        return 1;
    }

    json_array_foreach(json_object_get(rec, "gates_evaluated"), i, g) {
        name = json_string_value(json_object_get(g, "gate"));
        if (name != NULL && strcmp(name, "policy") == 0) {
            return 0;
        }
    }

    return 1;
}


/* What a change entry says of the call, before its two sides. */
static json_t *
fg_replay_call(uint64_t seq, const json_t *rec, const json_t *input)
{
    return json_pack("{s:I, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}",
                     "seq", (json_int_t) seq,
                     "execution_id", json_object_get(rec, "execution_id"),
                     "trace_id",
                     json_object_get(json_object_get(rec, "trace"),
                                     "trace_id"),
                     "decided_at", json_object_get(rec, "decided_at"),
                     "kind", json_object_get(input, "kind"),
                     "tool", json_object_get(input, "tool"),
                     "action", json_object_get(input, "action"),
                     "model", json_object_get(input, "model"),
                     "provider", json_object_get(input, "provider"));
}


/* The first body pointer of the candidate or the baseline left open. */
static const char *
fg_replay_open_pointer(const fg_replay_t *r, const json_t *body,
    const char *sha, const char **bundle_path)
{
    const char  *p;

    p = fg_replay_unanswered(r, &r->candidate, body, sha);
    *bundle_path = r->candidate.path;

    if (p == NULL && r->baseline.bundle != NULL) {
        p = fg_replay_unanswered(r, &r->baseline, body, sha);
        *bundle_path = r->baseline.path;
    }

    return p;
}


static int
fg_replay_defer(fg_replay_t *r, uint64_t seq, json_t *call,
    const json_t *input, json_t *recorded, const json_t *sha, time_t now)
{
    fg_replay_pending_t  *p;
    size_t                n;

    if (r->npending == r->cpending) {
        n = r->cpending ? 2 * r->cpending : 16;
        p = realloc(r->pending, n * sizeof(*p));
        if (p == NULL) {
            json_decref(call);
            json_decref(recorded);
            return FG_ERR_NOMEM;
        }
        r->pending = p;
        r->cpending = n;
    }

    p = &r->pending[r->npending];
    p->seq = seq;
    p->call = call;
    p->recorded = recorded;
    p->input = json_deep_copy(input);
    p->bundle_sha = json_deep_copy(sha);
    p->now = now;
    r->npending++;

    return (p->input && p->bundle_sha) ? FG_OK : FG_ERR_NOMEM;
}


/*
 * Take one PolicyDecisionRecord: count it, and re-decide it now or, when
 * a body pointer is left open, once the whole ledger has been read.
 * Returns FG_OK or an error with err set.
 */
static int
fg_replay_record(fg_replay_t *r, const fg_cli_ledger_entry_t *e,
    fg_error_t *err)
{
    const json_t  *rec, *input, *sha, *body;
    const char    *decided, *path;
    json_t        *recorded, *call;
    time_t         sec;
    long           nsec;
    int            k;

    rec = e->value;
    decided = json_string_value(json_object_get(rec, "decided_at"));

    if (decided == NULL || !fg_time_parse(decided, strlen(decided), &sec,
                                          &nsec))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "cannot be re-decided: decided_at is not a "
                            "time");
    }

    if (r->since != NULL
        && (sec < r->since_sec
            || (sec == r->since_sec && nsec < r->since_nsec)))
    {
        return FG_OK;
    }

    r->decisions++;

    recorded = fg_replay_side_recorded(rec);
    if (recorded == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (fg_replay_gate_decided(rec)) {
        k = fg_replay_kind(json_string_value(json_object_get(rec,
                                                             "decision")));
        json_decref(recorded);
        if (k < 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "the decision is not one replay knows");
        }
        r->before[k]++;
        r->after[k]++;
        r->gate_decided++;
        return FG_OK;
    }

    input = json_object_get(rec, "input");
    body = json_object_get(input, "body");
    sha = json_object_get(json_object_get(rec, "bundle"), "sha256");

    if (!json_is_string(sha)
        || fg_replay_note_body(r, json_string_value(sha), body) != FG_OK)
    {
        json_decref(recorded);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    call = fg_replay_call(e->seq, rec, input);
    if (call == NULL) {
        json_decref(recorded);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (fg_replay_open_pointer(r, body, json_string_value(sha), &path)
        != NULL)
    {
        if (fg_replay_defer(r, e->seq, call, input, recorded, sha, sec)
            != FG_OK)
        {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        return FG_OK;
    }

    return fg_replay_one(r, call, input, sec, recorded, err);
}


/*
 * Re-decide the deferred decisions now that every record has shown the
 * body pointers its bundle reads.  A pointer still open means the input
 * does not say what the bundle would have read: not replayable.  Returns
 * FG_OK, or an error with err set and *seq the decision's.
 */
static int
fg_replay_settle(fg_replay_t *r, uint64_t *seq, fg_error_t *err)
{
    fg_replay_pending_t  *p;
    const json_t         *body;
    const char           *ptr, *path, *sha;
    size_t                i;
    int                   rc = FG_OK;

    for (i = 0; i < r->npending; i++) {
        p = &r->pending[i];

        if (rc != FG_OK) {
            continue;
        }

        body = json_object_get(p->input, "body");
        sha = json_string_value(p->bundle_sha);
        ptr = fg_replay_open_pointer(r, body, sha, &path);

        if (ptr != NULL) {
            *seq = p->seq;
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "cannot be re-decided: %.64s reads body:%.64s, which "
                     "the recorded input does not hold, and the record's "
                     "bundle (sha256 %.12s...) is not known to read it "
                     "(give that bundle as --baseline)", path, ptr, sha);
            continue;
        }

        /* fg_replay_one takes call and recorded */
        rc = fg_replay_one(r, p->call, p->input, p->now, p->recorded, err);
        p->call = NULL;
        p->recorded = NULL;
        if (rc != FG_OK) {
            *seq = p->seq;
        }
    }

    return rc;
}


static int
fg_replay_seq_cmp(const void *a, const void *b)
{
    json_int_t  x, y;

    x = json_integer_value(json_object_get(*(json_t *const *) a, "seq"));
    y = json_integer_value(json_object_get(*(json_t *const *) b, "seq"));

    return (x > y) - (x < y);
}


/* The changes in seq order (deferred ones were compared last). */
static int
fg_replay_sort(fg_replay_t *r)
{
    json_t  **v;
    size_t    i, n;

    n = json_array_size(r->changed);
    if (n < 2) {
        return FG_OK;
    }

    v = malloc(n * sizeof(*v));
    if (v == NULL) {
        return FG_ERR_NOMEM;
    }

    for (i = 0; i < n; i++) {
        v[i] = json_incref(json_array_get(r->changed, i));
    }
    qsort(v, n, sizeof(*v), fg_replay_seq_cmp);

    json_array_clear(r->changed);
    for (i = 0; i < n; i++) {
        if (json_array_append_new(r->changed, v[i]) != 0) {
            while (++i < n) {
                json_decref(v[i]);
            }
            free(v);
            return FG_ERR_NOMEM;
        }
    }

    free(v);

    return FG_OK;
}


/* ------------------------------------------------------------- reading */

/*
 * Read the whole ledger, re-deciding as it goes, then the deferred
 * decisions.  Returns an exit status; on failure the reason is printed
 * (naming the seq).
 */
static int
fg_replay_read(fg_replay_t *r)
{
    fg_cli_ledger_entry_t   e;
    fg_cli_ledger_t        *l;
    fg_error_t              err;
    unsigned char           chain[FG_SHA256_LEN];
    char                   *name;
    uint64_t                seq = 0;
    int                     got, rc;

    l = fg_cli_ledger_open(r->ledger, r->tenant, &err);
    if (l == NULL) {
        name = fg_cli_ledger_redact(r->ledger);
        fg_cli_error("replay", "%s: %s", name != NULL ? name : "LEDGER",
                     err.msg);
        free(name);
        return FG_EXIT_USAGE;
    }

    while ((got = fg_cli_ledger_next(l, &e, &err)) == 1) {
        if (e.type == FG_RECORD_POLICY_DECISION
            && fg_replay_record(r, &e, &err) != FG_OK)
        {
            got = -1;
            break;
        }
    }

    if (got < 0) {
        rc = fg_cli_ledger_stopped("replay", l, &err);
        fg_cli_ledger_close(l);
        return rc;
    }

    r->head_seq = fg_cli_ledger_head(l, chain);
    fg_hex_sha256(chain, r->head_chain);
    r->name = strdup(fg_cli_ledger_name(l));
    snprintf(r->tenant_id, sizeof(r->tenant_id), "%s",
             r->head_seq ? fg_cli_ledger_tenant(l) : "");
    fg_cli_ledger_close(l);

    if (r->name == NULL) {
        fg_cli_error("replay", "out of memory");
        return FG_EXIT_USAGE;
    }

    if (r->head_seq == 0) {
        fg_cli_error("replay", "%s: the ledger is empty", r->name);
        return FG_EXIT_REFUSED;
    }

    rc = fg_replay_settle(r, &seq, &err);
    if (rc != FG_OK) {
        if (rc == FG_ERR_NOMEM) {
            fg_cli_error("replay", "out of memory");
            return FG_EXIT_USAGE;
        }
        fg_cli_error("replay", "%s: seq %llu: %s", r->name,
                     (unsigned long long) seq, err.msg);
        return FG_EXIT_REFUSED;
    }

    if (fg_replay_sort(r) != FG_OK) {
        fg_cli_error("replay", "out of memory");
        return FG_EXIT_USAGE;
    }

    return FG_EXIT_OK;
}


/* ------------------------------------------------------------- output */

static json_t *
fg_replay_counts(const uint64_t n[FG_REPLAY_KINDS])
{
    json_t  *o;
    int      k;

    o = json_object();
    for (k = 0; o != NULL && k < FG_REPLAY_KINDS; k++) {
        if (json_object_set_new(o, fg_decision_name((fg_decision_kind_t) k),
                                json_integer((json_int_t) n[k])) != 0)
        {
            json_decref(o);
            return NULL;
        }
    }

    return o;
}


/* The comparison, without its comparison_id. */
static json_t *
fg_replay_result(const fg_replay_t *r)
{
    return json_pack("{s:o, s:o, s:O, s:{s:o, s:o}, s:I, s:I, "
                     "s:{s:s, s:I, s:s}, s:s?, s:I}",
                     "baseline", fg_replay_bundle_json(&r->baseline),
                     "candidate", fg_replay_bundle_json(&r->candidate),
                     "changed", r->changed,
                     "counts",
                     "after", fg_replay_counts(r->after),
                     "before", fg_replay_counts(r->before),
                     "decisions", (json_int_t) r->decisions,
                     "gate_decided", (json_int_t) r->gate_decided,
                     "ledger",
                     "chain", r->head_chain,
                     "seq", (json_int_t) r->head_seq,
                     "tenant", r->tenant_id,
                     "since", r->since,
                     "unchanged", (json_int_t) r->unchanged);
}


/* The canonical bytes of v into out (initialized here). */
static int
fg_replay_canon(const json_t *v, fg_buffer_t *out, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;

    fg_buffer_init(out, 0);
    fg_sink_to_buffer(&sink, out, stage, sizeof(stage));

    return fg_jcs_canonicalize_json(v, 0, &sink, err);
}


/*
 * Set res's comparison_id: the sha256 of the canonical form of res
 * without it.  id receives the hex.
 */
static int
fg_replay_id(json_t *res, char id[FG_SHA256_HEX_LEN + 1], fg_error_t *err)
{
    unsigned char  md[FG_SHA256_LEN];
    fg_buffer_t    b;
    int            rc;

    rc = fg_replay_canon(res, &b, err);
    if (rc == FG_OK) {
        rc = fg_sha256(b.data, b.len, md);
    }
    fg_buffer_free(&b);

    if (rc != FG_OK) {
        return rc;
    }

    fg_hex_sha256(md, id);

    if (json_object_set_new(res, "comparison_id", json_string(id)) != 0) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    return FG_OK;
}


static const char *
fg_replay_str(const json_t *o, const char *key)
{
    const char  *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "-";
}


/* "DENY", or "ROUTE <route>" */
static void
fg_replay_print_decision(const json_t *side)
{
    printf("%s", fg_replay_str(side, "decision"));

    if (json_is_string(json_object_get(side, "route"))) {
        printf(" %s", fg_replay_str(side, "route"));
    }
}


/* "a, b, c" of an array of strings, or "none" */
static void
fg_replay_print_list(const json_t *a)
{
    const json_t  *v;
    size_t         i;

    if (json_array_size(a) == 0) {
        printf("none");
    }

    json_array_foreach(a, i, v) {
        printf("%s%s", i ? ", " : "", json_string_value(v));
    }
}


static void
fg_replay_print_exceptions(const char *what, const json_t *side)
{
    const json_t  *x;
    size_t         i;

    printf("    exceptions %s:", what);

    if (json_array_size(json_object_get(side, "exceptions_applied")) == 0) {
        printf(" none");
    }

    json_array_foreach(json_object_get(side, "exceptions_applied"), i, x) {
        printf("%s %s lifts %s (%s)", i ? "," : "",
               fg_replay_str(x, "exception_id"), fg_replay_str(x, "rule_id"),
               fg_replay_str(x, "status"));
    }

    printf("\n");
}


static void
fg_replay_print_change(const json_t *c)
{
    const json_t  *before, *after, *add, *del, *v;
    size_t         i;

    before = json_object_get(c, "before");
    after = json_object_get(c, "after");
    add = json_object_get(c, "rules_added");
    del = json_object_get(c, "rules_removed");

    printf("\nseq %lld at %s, execution %s, trace %s\n",
           (long long) json_integer_value(json_object_get(c, "seq")),
           fg_replay_str(c, "decided_at"), fg_replay_str(c, "execution_id"),
           fg_replay_str(c, "trace_id"));

    if (json_is_string(json_object_get(c, "tool"))) {
        printf("    tool %s %s: ", fg_replay_str(c, "tool"),
               fg_replay_str(c, "action"));
    } else {
        printf("    model %s (%s): ", fg_replay_str(c, "model"),
               fg_replay_str(c, "provider"));
    }
    fg_replay_print_decision(before);
    printf(" -> ");
    fg_replay_print_decision(after);

    printf("\n    before: ");
    (void) fg_cli_print_safe(fg_replay_str(before, "justification"), stdout);
    printf("\n    after:  ");
    (void) fg_cli_print_safe(fg_replay_str(after, "justification"), stdout);
    printf("\n");

    json_array_foreach(add, i, v) {
        printf("    + %s\n", json_string_value(v));
    }
    json_array_foreach(del, i, v) {
        printf("    - %s\n", json_string_value(v));
    }

    if (json_array_size(add) == 0 && json_array_size(del) == 0) {
        printf("    = the same rules count (");
        fg_replay_print_list(json_object_get(after, "rule_ids"));
        printf("): a rule's decision or the default differs\n");
    }

    if (!json_equal(json_object_get(before, "exceptions_applied"),
                    json_object_get(after, "exceptions_applied")))
    {
        fg_replay_print_exceptions("before", before);
        fg_replay_print_exceptions("after", after);
    }
}


static void
fg_replay_print_bundle(const char *what, const fg_replay_bundle_t *rb)
{
    printf("%s: %s, revision %s, sha256 %s, %s\n", what, rb->path,
           fg_bundle_revision(rb->bundle), fg_bundle_sha256(rb->bundle),
           fg_bundle_verified(rb->bundle) ? "signature verified"
                                          : "unsigned draft");
}


static void
fg_replay_print_text(const fg_replay_t *r, const char *id)
{
    const json_t  *c;
    size_t         i;
    int            k;

    printf("ledger %s: tenant %s, seq 1..%llu, chain %s\n", r->name,
           r->tenant_id, (unsigned long long) r->head_seq, r->head_chain);
    fg_replay_print_bundle("candidate", &r->candidate);

    if (r->baseline.bundle != NULL) {
        fg_replay_print_bundle("baseline", &r->baseline);
    } else {
        printf("baseline: the recorded decisions\n");
    }

    if (r->since != NULL) {
        printf("since: %s\n", r->since);
    }

    printf("decisions: %llu (%llu re-decided, %llu decided by a gate "
           "before the bundle), %llu changed\n\n",
           (unsigned long long) r->decisions,
           (unsigned long long) (r->decisions - r->gate_decided),
           (unsigned long long) r->gate_decided,
           (unsigned long long) json_array_size(r->changed));

    printf("%-16s %10s %10s\n", "decision", "before", "after");
    for (k = 0; k < FG_REPLAY_KINDS; k++) {
        printf("%-16s %10llu %10llu\n",
               fg_decision_name((fg_decision_kind_t) k),
               (unsigned long long) r->before[k],
               (unsigned long long) r->after[k]);
    }

    if (json_array_size(r->changed) == 0) {
        printf("\nno decision changes\n");
    }

    json_array_foreach(r->changed, i, c) {
        fg_replay_print_change(c);
    }

    printf("\ncomparison_id %s\n", id);
}


/* Print the comparison (text or canonical JSON).  Returns an exit status. */
static int
fg_replay_print(const fg_replay_t *r)
{
    fg_buffer_t  b;
    fg_error_t   err;
    json_t      *res;
    char         id[FG_SHA256_HEX_LEN + 1];
    int          rc = FG_EXIT_USAGE;

    res = fg_replay_result(r);
    if (res == NULL) {
        fg_cli_error("replay", "out of memory");
        return FG_EXIT_USAGE;
    }

    if (fg_replay_id(res, id, &err) != FG_OK) {
        fg_cli_error("replay", "%s", err.msg);
        json_decref(res);
        return FG_EXIT_USAGE;
    }

    if (!r->json) {
        fg_replay_print_text(r, id);
        json_decref(res);
        return FG_EXIT_OK;
    }

    if (fg_replay_canon(res, &b, &err) == FG_OK) {
        printf("%.*s\n", (int) b.len, (char *) b.data);
        rc = FG_EXIT_OK;
    } else {
        fg_cli_error("replay", "%s", err.msg);
    }

    fg_buffer_free(&b);
    json_decref(res);

    return rc;
}


/* ---------------------------------------------------------- the command */

/* Parse the arguments into r.  Returns -1 (usage, printed), 0, or 1 for
 * --help (printed). */
static int
fg_replay_args(int argc, char **argv, fg_replay_t *r, const char **cand,
    const char **base, const char **keys)
{
    static const struct option  opts[] = {
        { "bundle",   required_argument, NULL, 'b' },
        { "keys",     required_argument, NULL, 'k' },
        { "baseline", required_argument, NULL, 'B' },
        { "tenant",   required_argument, NULL, 't' },
        { "since",    required_argument, NULL, 's' },
        { "json",     no_argument,       NULL, 'j' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': *cand = optarg;     break;
        case 'k': *keys = optarg;     break;
        case 'B': *base = optarg;     break;
        case 't': r->tenant = optarg; break;
        case 's': r->since = optarg;  break;
        case 'j': r->json = 1;        break;
        case 'h':
            fg_replay_help();
            return 1;
        default:
            return -1;
        }
    }

    if (*cand == NULL || optind != argc - 1) {
        fg_cli_error("replay", "expected LEDGER --bundle CANDIDATE (try "
                     "foxgov replay --help)");
        return -1;
    }
    r->ledger = argv[optind];

    if (r->tenant != NULL
        && !fg_tenant_id_valid(r->tenant, strlen(r->tenant)))
    {
        fg_cli_error("replay", "--tenant \"%s\" is not a tenant id",
                     r->tenant);
        return -1;
    }

    if (r->since != NULL
        && !fg_time_parse(r->since, strlen(r->since), &r->since_sec,
                          &r->since_nsec))
    {
        fg_cli_error("replay", "--since \"%s\": expected RFC 3339 UTC, e.g. "
                     "2026-11-22T10:00:00Z", r->since);
        return -1;
    }

    return 0;
}


static void
fg_replay_free(fg_replay_t *r)
{
    size_t  i;

    for (i = 0; i < r->npending; i++) {
        json_decref(r->pending[i].call);
        json_decref(r->pending[i].recorded);
        json_decref(r->pending[i].input);
        json_decref(r->pending[i].bundle_sha);
    }
    free(r->pending);
    free(r->name);
    json_decref(r->seen);
    json_decref(r->changed);
    fg_replay_bundle_close(&r->candidate);
    fg_replay_bundle_close(&r->baseline);
    fg_keyset_free(r->keys);
}


int
fg_cmd_replay(int argc, char **argv)
{
    fg_replay_t   r;
    fg_error_t    err;
    const char   *cand = NULL, *base = NULL, *keys = NULL;
    int           rc;

    memset(&r, 0, sizeof(r));

    rc = fg_replay_args(argc, argv, &r, &cand, &base, &keys);
    if (rc != 0) {
        return rc > 0 ? FG_EXIT_OK : FG_EXIT_USAGE;
    }

    r.seen = json_object();
    r.changed = json_array();
    if (r.seen == NULL || r.changed == NULL) {
        fg_cli_error("replay", "out of memory");
        rc = FG_EXIT_USAGE;
        goto done;
    }

    if (keys != NULL) {
        r.keys = fg_keyset_load_file(keys, NULL, &err);
        if (r.keys == NULL) {
            fg_cli_error("replay", "%s: %s", keys, err.msg);
            rc = FG_EXIT_USAGE;
            goto done;
        }
    }

    if (fg_replay_bundle_open(cand, r.keys, &r.candidate) != 0
        || (base != NULL
            && fg_replay_bundle_open(base, r.keys, &r.baseline) != 0))
    {
        rc = FG_EXIT_USAGE;
        goto done;
    }

    rc = fg_replay_read(&r);
    if (rc == FG_EXIT_OK) {
        rc = fg_replay_print(&r);
    }

done:

    fg_replay_free(&r);

    return rc;
}

/*
 * fg_policy.c -- the rule language: compiling policy.json into an indexed,
 * read-only fg_policy_t, deciding for one DecisionInput, and building the
 * PolicyDecisionRecord of a decision.
 *
 * Compilation checks everything once (keys, operators, globs, regexes,
 * times, exception targets, limits) so deciding cannot meet a bad rule.
 * Rules with an exact string predicate on an input field are indexed by
 * (field, value) in an open-addressing hash table; deciding looks up the
 * input's value of each indexed field and checks only those rules plus
 * the rules without such a predicate.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "fg_glob.h"
#include "fg_policy.h"
#include "fg_record_write.h"

#define FG_RULE_MAX_PREDS      64
#define FG_RULE_MAX_TARGETS    64
#define FG_PRED_MAX_SET        1024
#define FG_PRED_MAX_PATTERN    4096
#define FG_PRED_MAX_STRING     4096
#define FG_POINTER_MAX         256
#define FG_NAME_MAX            128
#define FG_DESCRIPTION_MAX     1024
#define FG_ACR_MAX             256
#define FG_WINDOW_MAX          31622400
#define FG_COUNT_MAX           9007199254740991LL
#define FG_MATCHED_MAX         1024
#define FG_JUSTIFY_NAMES       3

/* regex bounds: a pathological pattern stops here with FG_ERR_LIMIT */
#define FG_REGEX_MATCH_LIMIT   100000
#define FG_REGEX_DEPTH_LIMIT   1000
#define FG_REGEX_HEAP_LIMIT    1024      /* KiB */

/* The input fields a match key names, in DecisionInput order. */
enum {
    F_KIND = 0, F_TENANT_ID, F_WORKSPACE_ID, F_ENVIRONMENT, F_PRINCIPAL,
    F_ACR, F_TOOL, F_ACTION, F_RISK, F_MODEL, F_PROVIDER, F_METHOD, F_HOST,
    F_PATH,
    F_NFIELDS,
    F_BODY = F_NFIELDS
};

static const char  *fg_policy_fields[F_NFIELDS] = {
    "kind", "tenant_id", "workspace_id", "environment", "principal", "acr",
    "tool", "action", "risk", "model", "provider", "method", "host", "path"
};

/* Which exact key indexes a rule: the lowest rank (most selective). */
static const int  fg_policy_rank[F_NFIELDS] = {
    /* kind */ 12, /* tenant_id */ 6, /* workspace_id */ 5,
    /* environment */ 7, /* principal */ 3, /* acr */ 13, /* tool */ 0,
    /* action */ 9,
    /* risk */ 11, /* model */ 1, /* provider */ 8, /* method */ 10,
    /* host */ 4, /* path */ 2
};

typedef enum {
    OP_EQ_STR, OP_EQ_NUM, OP_EQ_BOOL, OP_GLOB, OP_REGEX, OP_IN, OP_NOT_IN,
    OP_LT, OP_GT, OP_EXISTS
} fg_op_t;

typedef struct {
    int           field;      /* F_* or F_BODY */
    int           body;       /* index of the body pointer */
    fg_op_t       op;
    const char   *str;        /* EQ_STR, GLOB: points into the document */
    size_t        len;
    double        num;        /* EQ_NUM, LT, GT */
    int           flag;       /* EQ_BOOL, EXISTS */
    pcre2_code   *re;
    const json_t *set;        /* IN, NOT_IN: the array, in the document */
} fg_pred_t;

#define FG_RULE_EXCEPTION  -1

typedef struct {
    const char   *id;
    int           decision;   /* fg_decision_kind_t, or FG_RULE_EXCEPTION */
    fg_pred_t    *preds;
    size_t        npreds;
    const char   *route;
    const char   *acr;
    long long     lim_requests;   /* -1: none */
    long long     lim_tokens;
    long          window;
    size_t       *targets;        /* exception_for, as rule indexes */
    size_t        ntargets;
    const char   *expires_at;
    time_t        exp_sec;
    long          exp_nsec;
} fg_rule_t;

typedef struct {
    const char   *val;
    size_t        len;
    uint32_t      hash;
    uint32_t      field;
    uint32_t      start;      /* into p->lists */
    uint32_t      count;      /* 0: empty slot */
} fg_slot_t;

struct fg_policy_s {
    json_t               *doc;        /* owns every string we point at */
    fg_decision_kind_t    def;
    fg_rule_t            *rules;
    size_t                nrules;
    const char           *pointers[FG_POLICY_MAX_BODY_POINTERS];
    size_t                npointers;
    pcre2_match_context  *mctx;

    fg_slot_t            *slots;      /* the (field, value) index */
    size_t                nslots;     /* a power of two, or 0 */
    uint32_t             *lists;
    unsigned              indexed;    /* bit per field with entries */
    uint32_t             *always;     /* rules without an indexed key */
    size_t                nalways;
    uint32_t             *throttles;
    size_t                nthrottles;
};

static const char  *fg_decision_names[] = {
    "ALLOW", "DENY", "REQUIRE_HITL", "REQUIRE_STEP_UP", "THROTTLE", "ROUTE"
};


/* ============================================================== helpers */

const char *
fg_decision_name(fg_decision_kind_t kind)
{
    if ((unsigned) kind > FG_DECISION_ROUTE) {
        return "DENY";
    }
    return fg_decision_names[kind];
}


static int
fg_decision_from_name(const char *s)
{
    int  i;

    for (i = 0; i <= FG_DECISION_ROUTE; i++) {
        if (strcmp(s, fg_decision_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


/* ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$ */
static int
fg_name_valid(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > FG_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }
        if (i > 0 && (c == '_' || c == '.' || c == ':' || c == '-')) {
            continue;
        }
        return 0;
    }
    return 1;
}


/* ^(/([^~/]|~[01])*)+$, at most 256 bytes */
static int
fg_pointer_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > FG_POINTER_MAX || s[0] != '/') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '~'
            && (i + 1 == len || (s[i + 1] != '0' && s[i + 1] != '1')))
        {
            return 0;
        }
    }
    return 1;
}


/* ^[!-~]+( [!-~]+)*$, at most 256 bytes: acr_values */
static int
fg_acr_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > FG_ACR_MAX || s[0] == ' ' || s[len - 1] == ' ') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == ' ') {
            if (s[i + 1] == ' ') {
                return 0;
            }
        } else if (s[i] < '!' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}


/* ============================================================= compile */

typedef struct {
    fg_policy_t  *p;
    fg_error_t   *err;
    size_t        index;
    const char   *id;         /* NULL until known */
} fg_cc_t;


static int
fg_cc_fail(fg_cc_t *cc, int code, const char *fmt, const char *a)
{
    char  what[FG_ERRMSG_MAX];

    snprintf(what, sizeof(what), fmt, a);
    if (cc->id != NULL) {
        return fg_error_set(cc->err, code, FG_NO_OFFSET, "rules[%zu] (%s): %s",
                            cc->index, cc->id, what);
    }
    return fg_error_set(cc->err, code, FG_NO_OFFSET, "rules[%zu]: %s",
                        cc->index, what);
}


static int
fg_cc_body_pointer(fg_cc_t *cc, const char *ptr, int *index)
{
    fg_policy_t  *p = cc->p;
    size_t        i;

    if (!fg_pointer_valid(ptr, strlen(ptr))) {
        return fg_cc_fail(cc, FG_ERR_INVALID,
                          "match key body:%.200s is not a JSON pointer", ptr);
    }
    for (i = 0; i < p->npointers; i++) {
        if (strcmp(p->pointers[i], ptr) == 0) {
            *index = (int) i;
            return FG_OK;
        }
    }
    if (p->npointers == FG_POLICY_MAX_BODY_POINTERS) {
        return fg_cc_fail(cc, FG_ERR_LIMIT,
                          "more than 64 distinct body pointers (at %.200s)",
                          ptr);
    }
    p->pointers[p->npointers] = ptr;
    *index = (int) p->npointers++;
    return FG_OK;
}


static int
fg_cc_regex(fg_cc_t *cc, fg_pred_t *pr, const char *key, const json_t *v)
{
    int          ec;
    PCRE2_SIZE   off;
    PCRE2_UCHAR  msg[128];

    if (!json_is_string(v) || json_string_length(v) > FG_PRED_MAX_PATTERN) {
        return fg_cc_fail(cc, FG_ERR_INVALID,
                          "%.200s: regex must be a string of at most 4096 "
                          "bytes", key);
    }

    pr->re = pcre2_compile((PCRE2_SPTR) json_string_value(v),
                           json_string_length(v),
                           PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED
                           | PCRE2_NEVER_BACKSLASH_C,
                           &ec, &off, NULL);
    if (pr->re == NULL) {
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf((char *) msg + strlen((char *) msg),
                 sizeof(msg) - strlen((char *) msg), " at offset %zu",
                 (size_t) off);
        fg_error_set(cc->err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "rules[%zu] (%s): %.100s: bad regex: %.100s", cc->index,
                     cc->id, key, (char *) msg);
        return FG_ERR_INVALID;
    }

    /* JIT when the platform has it; the interpreter otherwise */
    (void) pcre2_jit_compile(pr->re, PCRE2_JIT_COMPLETE);
    pr->op = OP_REGEX;
    return FG_OK;
}


static int
fg_cc_set(fg_cc_t *cc, fg_pred_t *pr, const char *key, const json_t *v)
{
    size_t  i;
    json_t *item;

    if (!json_is_array(v) || json_array_size(v) == 0
        || json_array_size(v) > FG_PRED_MAX_SET)
    {
        return fg_cc_fail(cc, FG_ERR_INVALID,
                          "%.200s: in/not_in needs an array of 1 to 1024 "
                          "strings or numbers", key);
    }
    json_array_foreach(v, i, item) {
        if (!json_is_string(item) && !json_is_number(item)) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "%.200s: in/not_in items must be strings or "
                              "numbers", key);
        }
    }
    pr->set = v;
    return FG_OK;
}


static int
fg_cc_operator(fg_cc_t *cc, fg_pred_t *pr, const char *key, const json_t *o)
{
    const char  *op, *why;
    json_t      *v;

    if (json_object_size(o) != 1) {
        return fg_cc_fail(cc, FG_ERR_INVALID,
                          "%.200s: an operator object has exactly one key",
                          key);
    }
    op = json_object_iter_key(json_object_iter((json_t *) o));
    v = json_object_iter_value(json_object_iter((json_t *) o));

    if (strcmp(op, "glob") == 0) {
        if (!json_is_string(v) || json_string_length(v) > FG_PRED_MAX_PATTERN)
        {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "%.200s: glob must be a string of at most "
                              "4096 bytes", key);
        }
        pr->str = json_string_value(v);
        pr->len = json_string_length(v);
        why = fg_glob_check(pr->str, pr->len);
        if (why != NULL) {
            return fg_cc_fail(cc, FG_ERR_INVALID, "bad glob: %s", why);
        }
        pr->op = OP_GLOB;
        return FG_OK;
    }
    if (strcmp(op, "regex") == 0) {
        return fg_cc_regex(cc, pr, key, v);
    }
    if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
        pr->op = op[0] == 'i' ? OP_IN : OP_NOT_IN;
        return fg_cc_set(cc, pr, key, v);
    }
    if (strcmp(op, "lt") == 0 || strcmp(op, "gt") == 0) {
        if (!json_is_number(v)) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "%.200s: lt/gt needs a number", key);
        }
        pr->op = op[0] == 'l' ? OP_LT : OP_GT;
        pr->num = json_number_value(v);
        return FG_OK;
    }
    if (strcmp(op, "exists") == 0) {
        if (!json_is_boolean(v)) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "%.200s: exists needs true or false", key);
        }
        pr->op = OP_EXISTS;
        pr->flag = json_is_true(v);
        return FG_OK;
    }

    return fg_cc_fail(cc, FG_ERR_INVALID, "unknown operator %.100s", op);
}


static int
fg_cc_pred(fg_cc_t *cc, fg_pred_t *pr, const char *key, const json_t *v)
{
    int  i, rc;

    pr->field = -1;
    if (strncmp(key, "body:", 5) == 0) {
        rc = fg_cc_body_pointer(cc, key + 5, &pr->body);
        if (rc != FG_OK) {
            return rc;
        }
        pr->field = F_BODY;
    } else {
        for (i = 0; i < F_NFIELDS; i++) {
            if (strcmp(key, fg_policy_fields[i]) == 0) {
                pr->field = i;
                break;
            }
        }
        if (pr->field < 0) {
            return fg_cc_fail(cc, FG_ERR_INVALID, "unknown match key %.200s",
                              key);
        }
    }

    if (json_is_string(v)) {
        if (json_string_length(v) > FG_PRED_MAX_STRING) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "%.200s: value longer than 4096 bytes", key);
        }
        pr->op = OP_EQ_STR;
        pr->str = json_string_value(v);
        pr->len = json_string_length(v);
        return FG_OK;
    }
    if (json_is_number(v)) {
        pr->op = OP_EQ_NUM;
        pr->num = json_number_value(v);
        return FG_OK;
    }
    if (json_is_boolean(v)) {
        pr->op = OP_EQ_BOOL;
        pr->flag = json_is_true(v);
        return FG_OK;
    }
    if (json_is_object(v)) {
        return fg_cc_operator(cc, pr, key, v);
    }
    return fg_cc_fail(cc, FG_ERR_INVALID,
                      "%.200s: value must be a string, number, boolean or "
                      "operator object", key);
}


static int
fg_cc_match(fg_cc_t *cc, fg_rule_t *r, const json_t *m)
{
    const char  *key;
    json_t      *v;
    size_t       n;
    int          rc;

    if (!json_is_object(m)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s", "match must be an object");
    }
    n = json_object_size(m);
    if (n > FG_RULE_MAX_PREDS) {
        return fg_cc_fail(cc, FG_ERR_LIMIT, "%s",
                          "match has more than 64 keys");
    }
    if (n == 0) {
        return FG_OK;
    }
    r->preds = calloc(n, sizeof(fg_pred_t));
    if (r->preds == NULL) {
        return fg_cc_fail(cc, FG_ERR_NOMEM, "%s", "out of memory");
    }
    json_object_foreach((json_t *) m, key, v) {
        rc = fg_cc_pred(cc, &r->preds[r->npreds++], key, v);
        if (rc != FG_OK) {
            return rc;
        }
    }
    return FG_OK;
}


static int
fg_cc_count(const json_t *v, long long max, long long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > max)
    {
        return 0;
    }
    *out = json_integer_value(v);
    return 1;
}


static int
fg_cc_limits(fg_cc_t *cc, fg_rule_t *r, const json_t *l)
{
    const char  *key;
    json_t      *v;
    long long    w;

    if (!json_is_object(l)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "THROTTLE needs limits {requests|tokens, "
                          "window_seconds}");
    }
    w = -1;
    json_object_foreach((json_t *) l, key, v) {
        if (strcmp(key, "requests") == 0) {
            if (!fg_cc_count(v, FG_COUNT_MAX, &r->lim_requests)) {
                goto bad;
            }
        } else if (strcmp(key, "tokens") == 0) {
            if (!fg_cc_count(v, FG_COUNT_MAX, &r->lim_tokens)) {
                goto bad;
            }
        } else if (strcmp(key, "window_seconds") == 0) {
            if (!fg_cc_count(v, FG_WINDOW_MAX, &w)) {
                goto bad;
            }
        } else {
            return fg_cc_fail(cc, FG_ERR_INVALID, "unknown limits key %.100s",
                              key);
        }
    }
    if (w < 0 || (r->lim_requests < 0 && r->lim_tokens < 0)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "limits need window_seconds and requests or tokens");
    }
    r->window = (long) w;
    return FG_OK;

bad:
    return fg_cc_fail(cc, FG_ERR_INVALID, "limits.%.100s: out of range", key);
}


/* A string field of the rule object, or NULL (*bad set when not a
 * string). */
static const char *
fg_cc_string(const json_t *rule, const char *key, size_t *len, int *bad)
{
    json_t  *v;

    v = json_object_get(rule, key);
    if (v == NULL) {
        return NULL;
    }
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}


static const char  *fg_rule_keys[] = {
    "id", "description", "match", "decision", "acr_values", "limits",
    "route", "exception_for", "expires_at", NULL
};


static int
fg_cc_keys(fg_cc_t *cc, const json_t *rule)
{
    const char  *key;
    json_t      *v;
    int          i;

    json_object_foreach((json_t *) rule, key, v) {
        for (i = 0; fg_rule_keys[i] != NULL; i++) {
            if (strcmp(key, fg_rule_keys[i]) == 0) {
                break;
            }
        }
        if (fg_rule_keys[i] == NULL) {
            return fg_cc_fail(cc, FG_ERR_INVALID, "unknown rule key %.100s",
                              key);
        }
    }
    (void) v;
    return FG_OK;
}


static int
fg_cc_exception(fg_cc_t *cc, fg_rule_t *r, const json_t *rule)
{
    const char  *s;
    size_t       len;
    int          bad;

    bad = 0;
    if (json_object_get(rule, "decision") != NULL
        || json_object_get(rule, "limits") != NULL
        || json_object_get(rule, "route") != NULL
        || json_object_get(rule, "acr_values") != NULL)
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "an exception rule has no decision, limits, route "
                          "or acr_values");
    }
    s = fg_cc_string(rule, "expires_at", &len, &bad);
    if (s == NULL || bad || !fg_time_parse(s, len, &r->exp_sec, &r->exp_nsec))
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "exception needs expires_at, an RFC 3339 UTC time "
                          "(YYYY-MM-DDTHH:MM:SS[.fff]Z)");
    }
    r->expires_at = s;
    r->decision = FG_RULE_EXCEPTION;
    return FG_OK;
}


static int
fg_cc_decision(fg_cc_t *cc, fg_rule_t *r, const json_t *rule)
{
    const char  *s;
    size_t       len;
    int          bad, rc;

    bad = 0;
    if (json_object_get(rule, "expires_at") != NULL) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "expires_at without exception_for");
    }
    s = fg_cc_string(rule, "decision", &len, &bad);
    if (s == NULL || (r->decision = fg_decision_from_name(s)) < 0) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "decision must be ALLOW, DENY, REQUIRE_HITL, "
                          "REQUIRE_STEP_UP, THROTTLE or ROUTE");
    }

    if ((json_object_get(rule, "limits") != NULL)
        != (r->decision == FG_DECISION_THROTTLE))
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          r->decision == FG_DECISION_THROTTLE
                          ? "THROTTLE without limits"
                          : "limits on a rule that is not THROTTLE");
    }
    if (r->decision == FG_DECISION_THROTTLE) {
        rc = fg_cc_limits(cc, r, json_object_get(rule, "limits"));
        if (rc != FG_OK) {
            return rc;
        }
    }

    r->route = fg_cc_string(rule, "route", &len, &bad);
    if ((r->route != NULL || bad) != (r->decision == FG_DECISION_ROUTE)
        || bad || (r->route != NULL && !fg_name_valid(r->route, len)))
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          r->decision == FG_DECISION_ROUTE
                          ? "ROUTE without a valid route name"
                          : "route on a rule that is not ROUTE");
    }

    r->acr = fg_cc_string(rule, "acr_values", &len, &bad);
    if ((r->acr != NULL || bad) != (r->decision == FG_DECISION_REQUIRE_STEP_UP)
        || bad || (r->acr != NULL && !fg_acr_valid(r->acr, len)))
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          r->decision == FG_DECISION_REQUIRE_STEP_UP
                          ? "REQUIRE_STEP_UP without valid acr_values "
                            "(space-separated printable ASCII, <= 256)"
                          : "acr_values on a rule that is not "
                            "REQUIRE_STEP_UP");
    }
    return FG_OK;
}


static int
fg_cc_rule(fg_cc_t *cc, fg_rule_t *r, const json_t *rule)
{
    const char  *s;
    size_t       len;
    int          bad, rc;
    json_t      *m;

    bad = 0;
    r->lim_requests = -1;
    r->lim_tokens = -1;
    if (!json_is_object(rule)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s", "a rule is an object");
    }
    s = fg_cc_string(rule, "id", &len, &bad);
    if (s == NULL || !fg_name_valid(s, len)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$");
    }
    r->id = s;
    cc->id = s;

    rc = fg_cc_keys(cc, rule);
    if (rc != FG_OK) {
        return rc;
    }
    s = fg_cc_string(rule, "description", &len, &bad);
    if (bad || (s != NULL && len > FG_DESCRIPTION_MAX)) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "description must be a string of at most 1024 "
                          "bytes");
    }

    m = json_object_get(rule, "match");
    if (m == NULL) {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s", "match is required");
    }
    rc = fg_cc_match(cc, r, m);
    if (rc != FG_OK) {
        return rc;
    }

    if (json_object_get(rule, "exception_for") != NULL) {
        return fg_cc_exception(cc, r, rule);
    }
    return fg_cc_decision(cc, r, rule);
}


static int
fg_cmp_rule_id(const void *a, const void *b, void *rules)
{
    const fg_rule_t  *r = rules;

    return strcmp(r[*(const size_t *) a].id, r[*(const size_t *) b].id);
}


static size_t
fg_find_rule(const fg_policy_t *p, const size_t *order, const char *id)
{
    size_t  lo, hi, mid;
    int     c;

    lo = 0;
    hi = p->nrules;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(id, p->rules[order[mid]].id);
        if (c == 0) {
            return order[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return (size_t) -1;
}


/* Resolve one exception rule's exception_for into rule indexes. */
static int
fg_cc_targets(fg_cc_t *cc, const size_t *order, fg_rule_t *r,
    const json_t *list)
{
    size_t   i, t;
    json_t  *item;

    if (!json_is_array(list) || json_array_size(list) == 0
        || json_array_size(list) > FG_RULE_MAX_TARGETS)
    {
        return fg_cc_fail(cc, FG_ERR_INVALID, "%s",
                          "exception_for must be an array of 1 to 64 rule "
                          "ids");
    }
    r->targets = calloc(json_array_size(list), sizeof(size_t));
    if (r->targets == NULL) {
        return fg_cc_fail(cc, FG_ERR_NOMEM, "%s", "out of memory");
    }
    json_array_foreach(list, i, item) {
        t = json_is_string(item)
            ? fg_find_rule(cc->p, order, json_string_value(item))
            : (size_t) -1;
        if (t == (size_t) -1) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "exception_for names an unknown rule %.128s",
                              json_is_string(item) ? json_string_value(item)
                                                   : "(not a string)");
        }
        if (cc->p->rules[t].decision == FG_RULE_EXCEPTION) {
            return fg_cc_fail(cc, FG_ERR_INVALID,
                              "exception_for names an exception rule %.128s",
                              cc->p->rules[t].id);
        }
        r->targets[r->ntargets++] = t;
    }
    return FG_OK;
}


static int
fg_cc_resolve(fg_policy_t *p, const json_t *rules, fg_error_t *err)
{
    size_t   *order, i;
    fg_cc_t   cc;
    int       rc;

    order = malloc((p->nrules ? p->nrules : 1) * sizeof(size_t));
    if (order == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    for (i = 0; i < p->nrules; i++) {
        order[i] = i;
    }
    qsort_r(order, p->nrules, sizeof(size_t), fg_cmp_rule_id, p->rules);

    rc = FG_OK;
    for (i = 1; i < p->nrules; i++) {
        if (strcmp(p->rules[order[i - 1]].id, p->rules[order[i]].id) == 0) {
            cc.p = p;
            cc.err = err;
            cc.index = order[i] > order[i - 1] ? order[i] : order[i - 1];
            cc.id = p->rules[order[i]].id;
            rc = fg_cc_fail(&cc, FG_ERR_INVALID, "%s", "duplicate rule id");
            goto done;
        }
    }

    for (i = 0; i < p->nrules; i++) {
        if (p->rules[i].decision != FG_RULE_EXCEPTION) {
            continue;
        }
        cc.p = p;
        cc.err = err;
        cc.index = i;
        cc.id = p->rules[i].id;
        rc = fg_cc_targets(&cc, order, &p->rules[i],
                           json_object_get(json_array_get(rules, i),
                                           "exception_for"));
        if (rc != FG_OK) {
            goto done;
        }
    }

done:
    free(order);
    return rc;
}


/* ---------------------------------------------------------------- index */

static uint32_t
fg_hash(uint32_t field, const char *s, size_t n)
{
    uint32_t  h;
    size_t    i;

    h = 2166136261u ^ (field * 0x9e3779b1u);
    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }
    return h;
}


typedef struct {
    uint32_t     field;
    uint32_t     rule;
    const char  *val;
    size_t       len;
} fg_key_t;


static int
fg_cmp_key(const void *a, const void *b)
{
    const fg_key_t  *x = a, *y = b;
    int              c;

    if (x->field != y->field) {
        return x->field < y->field ? -1 : 1;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    c = memcmp(x->val, y->val, x->len);
    if (c != 0) {
        return c;
    }
    return x->rule < y->rule ? -1 : (x->rule > y->rule);
}


/* The predicate that indexes r: its best-ranked exact string key. */
static const fg_pred_t *
fg_index_pred(const fg_rule_t *r)
{
    const fg_pred_t  *best;
    size_t            i;

    best = NULL;
    for (i = 0; i < r->npreds; i++) {
        if (r->preds[i].op == OP_EQ_STR && r->preds[i].field < F_NFIELDS
            && (best == NULL
                || fg_policy_rank[r->preds[i].field]
                   < fg_policy_rank[best->field]))
        {
            best = &r->preds[i];
        }
    }
    return best;
}


static void
fg_index_insert(fg_policy_t *p, const fg_key_t *k, uint32_t start,
    uint32_t count)
{
    uint32_t   h;
    size_t     i;
    fg_slot_t *s;

    h = fg_hash(k->field, k->val, k->len);
    for (i = h & (p->nslots - 1); p->slots[i].count != 0;
         i = (i + 1) & (p->nslots - 1))
    {
        /* keys are distinct: keep probing */
    }
    s = &p->slots[i];
    s->val = k->val;
    s->len = k->len;
    s->hash = h;
    s->field = k->field;
    s->start = start;
    s->count = count;
    p->indexed |= 1u << k->field;
}


static int
fg_index_build(fg_policy_t *p, fg_error_t *err)
{
    fg_key_t          *keys;
    const fg_pred_t   *pr;
    size_t             i, j, nkeys, groups;

    keys = malloc((p->nrules ? p->nrules : 1) * sizeof(fg_key_t));
    p->lists = malloc((p->nrules ? p->nrules : 1) * sizeof(uint32_t));
    p->always = malloc((p->nrules ? p->nrules : 1) * sizeof(uint32_t));
    p->throttles = malloc((p->nrules ? p->nrules : 1) * sizeof(uint32_t));
    if (keys == NULL || p->lists == NULL || p->always == NULL
        || p->throttles == NULL)
    {
        free(keys);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    nkeys = 0;
    for (i = 0; i < p->nrules; i++) {
        if (p->rules[i].decision == FG_DECISION_THROTTLE) {
            p->throttles[p->nthrottles++] = (uint32_t) i;
        }
        pr = fg_index_pred(&p->rules[i]);
        if (pr == NULL) {
            p->always[p->nalways++] = (uint32_t) i;
            continue;
        }
        keys[nkeys].field = (uint32_t) pr->field;
        keys[nkeys].rule = (uint32_t) i;
        keys[nkeys].val = pr->str;
        keys[nkeys].len = pr->len;
        nkeys++;
    }
    qsort(keys, nkeys, sizeof(fg_key_t), fg_cmp_key);

    groups = 0;
    for (i = 0; i < nkeys; i++) {
        if (i == 0 || keys[i].field != keys[i - 1].field
            || keys[i].len != keys[i - 1].len
            || memcmp(keys[i].val, keys[i - 1].val, keys[i].len) != 0)
        {
            groups++;
        }
    }
    for (p->nslots = 16; p->nslots < groups * 2; p->nslots *= 2) {
        /* a power of two, at most half full */
    }
    p->slots = calloc(p->nslots, sizeof(fg_slot_t));
    if (p->slots == NULL) {
        free(keys);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    for (i = 0; i < nkeys; i = j) {
        for (j = i; j < nkeys && keys[j].field == keys[i].field
             && keys[j].len == keys[i].len
             && memcmp(keys[j].val, keys[i].val, keys[i].len) == 0; j++)
        {
            p->lists[j] = keys[j].rule;
        }
        fg_index_insert(p, &keys[i], (uint32_t) i, (uint32_t) (j - i));
    }

    free(keys);
    return FG_OK;
}


/* ------------------------------------------------------------ top level */

static int
fg_cc_top(fg_policy_t *p, const json_t *doc, const json_t **rules,
    fg_error_t *err)
{
    const char  *key;
    json_t      *v;
    int          d;

    if (!json_is_object(doc)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "policy: the document must be an object");
    }
    json_object_foreach((json_t *) doc, key, v) {
        if (strcmp(key, "description") == 0 && !json_is_string(v)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "policy: description must be a string");
        }
        if (strcmp(key, "default") != 0 && strcmp(key, "rules") != 0
            && strcmp(key, "description") != 0)
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "policy: unknown key %.100s", key);
        }
    }

    p->def = FG_DECISION_DENY;
    v = json_object_get(doc, "default");
    if (v != NULL) {
        d = json_is_string(v) ? fg_decision_from_name(json_string_value(v))
                              : -1;
        if (d != FG_DECISION_ALLOW && d != FG_DECISION_DENY) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "policy: default must be \"ALLOW\" or "
                                "\"DENY\"");
        }
        p->def = (fg_decision_kind_t) d;
    }

    *rules = json_object_get(doc, "rules");
    if (*rules == NULL || !json_is_array(*rules)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "policy: rules must be an array");
    }
    if (json_array_size(*rules) > FG_POLICY_MAX_RULES) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "policy: more than 10000 rules");
    }
    return FG_OK;
}


static int
fg_policy_build(fg_policy_t *p, fg_error_t *err)
{
    const json_t  *rules = NULL;
    fg_cc_t        cc;
    size_t         i;
    int            rc;

    rc = fg_cc_top(p, p->doc, &rules, err);
    if (rc != FG_OK) {
        return rc;
    }

    p->rules = calloc(json_array_size(rules) + 1, sizeof(fg_rule_t));
    p->mctx = pcre2_match_context_create(NULL);
    if (p->rules == NULL || p->mctx == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    pcre2_set_match_limit(p->mctx, FG_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(p->mctx, FG_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(p->mctx, FG_REGEX_HEAP_LIMIT);

    for (i = 0; i < json_array_size(rules); i++) {
        cc.p = p;
        cc.err = err;
        cc.index = i;
        cc.id = NULL;
        p->nrules = i + 1;
        rc = fg_cc_rule(&cc, &p->rules[i], json_array_get(rules, i));
        if (rc != FG_OK) {
            return rc;
        }
    }

    rc = fg_cc_resolve(p, rules, err);
    if (rc != FG_OK) {
        return rc;
    }
    return fg_index_build(p, err);
}


fg_policy_t *
fg_policy_compile(const char *text, size_t len, fg_error_t *err)
{
    fg_policy_t   *p;
    json_error_t   jerr;

    if (text == NULL || len > FG_POLICY_MAX_TEXT) {
        fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                     "policy: no text, or larger than 16 MiB");
        return NULL;
    }

    p = calloc(1, sizeof(fg_policy_t));
    if (p == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    p->doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (p->doc == NULL) {
        fg_error_set(err, FG_ERR_SYNTAX, (size_t) jerr.position,
                     "policy: not JSON: %.200s (line %d)", jerr.text,
                     jerr.line);
        free(p);
        return NULL;
    }

    if (fg_policy_build(p, err) != FG_OK) {
        fg_policy_free(p);
        return NULL;
    }
    return p;
}


void
fg_policy_free(fg_policy_t *p)
{
    size_t  i, j;

    if (p == NULL) {
        return;
    }
    for (i = 0; p->rules != NULL && i < p->nrules; i++) {
        for (j = 0; j < p->rules[i].npreds; j++) {
            pcre2_code_free(p->rules[i].preds[j].re);
        }
        free(p->rules[i].preds);
        free(p->rules[i].targets);
    }
    free(p->rules);
    free(p->slots);
    free(p->lists);
    free(p->always);
    free(p->throttles);
    pcre2_match_context_free(p->mctx);
    json_decref(p->doc);
    free(p);
}


size_t
fg_policy_body_pointers(const fg_policy_t *p, const char *const **ptrs)
{
    if (p == NULL) {
        *ptrs = NULL;
        return 0;
    }
    *ptrs = p->pointers;
    return p->npointers;
}


size_t
fg_policy_rule_count(const fg_policy_t *p)
{
    return p == NULL ? 0 : p->nrules;
}


/* ============================================================== decide */

typedef struct {
    const fg_policy_t   *p;
    const json_t        *input;
    const json_t        *vals[F_NFIELDS];
    const json_t        *body[FG_POLICY_MAX_BODY_POINTERS];
    pcre2_match_data    *md;
    fg_error_t          *err;
} fg_dc_t;


static const json_t *
fg_present(const json_t *v)
{
    return (v == NULL || json_is_null(v)) ? NULL : v;
}


static void
fg_dc_init(fg_dc_t *dc, const fg_policy_t *p, const json_t *input,
    fg_error_t *err)
{
    const json_t  *body;
    size_t         i;

    dc->p = p;
    dc->input = input;
    dc->md = NULL;
    dc->err = err;
    for (i = 0; i < F_NFIELDS; i++) {
        dc->vals[i] = fg_present(json_object_get(input, fg_policy_fields[i]));
    }
    body = json_object_get(input, "body");
    for (i = 0; i < p->npointers; i++) {
        dc->body[i] = json_is_object(body)
                      ? fg_present(json_object_get(body, p->pointers[i]))
                      : NULL;
    }
}


static int
fg_value_in(const json_t *v, const json_t *set)
{
    size_t   i;
    json_t  *item;

    json_array_foreach(set, i, item) {
        if (json_is_string(v) && json_is_string(item)
            && json_string_length(v) == json_string_length(item)
            && memcmp(json_string_value(v), json_string_value(item),
                      json_string_length(v)) == 0)
        {
            return 1;
        }
        if (json_is_number(v) && json_is_number(item)
            && json_number_value(v) == json_number_value(item))
        {
            return 1;
        }
    }
    return 0;
}


static int
fg_dc_regex(fg_dc_t *dc, const fg_rule_t *r, const fg_pred_t *pr,
    const json_t *v)
{
    int  rc;

    if (dc->md == NULL) {
        dc->md = pcre2_match_data_create(1, NULL);
        if (dc->md == NULL) {
            return fg_error_set(dc->err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
    }
    rc = pcre2_match(pr->re, (PCRE2_SPTR) json_string_value(v),
                     json_string_length(v), 0, 0, dc->md, dc->p->mctx);
    if (rc >= 0) {
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }
    return fg_error_set(dc->err, FG_ERR_LIMIT, FG_NO_OFFSET,
                        "rule %s: regex could not be evaluated (pcre2 error "
                        "%d: match limit or invalid subject)", r->id, rc);
}


/* 1 match, 0 no match, <0 error. */
static int
fg_pred_match(fg_dc_t *dc, const fg_rule_t *r, const fg_pred_t *pr)
{
    const json_t  *v;

    v = pr->field == F_BODY ? dc->body[pr->body] : dc->vals[pr->field];

    switch (pr->op) {
    case OP_EXISTS:
        return (v != NULL) == pr->flag;
    case OP_NOT_IN:
        return v == NULL || !fg_value_in(v, pr->set);
    default:
        break;
    }
    if (v == NULL) {
        return 0;
    }

    switch (pr->op) {
    case OP_EQ_STR:
        return json_is_string(v) && json_string_length(v) == pr->len
               && memcmp(json_string_value(v), pr->str, pr->len) == 0;
    case OP_EQ_NUM:
        return json_is_number(v) && json_number_value(v) == pr->num;
    case OP_EQ_BOOL:
        return json_is_boolean(v) && json_is_true(v) == pr->flag;
    case OP_GLOB:
        return json_is_string(v)
               && fg_glob_match(pr->str, pr->len, json_string_value(v),
                                json_string_length(v)) == 1;
    case OP_REGEX:
        return json_is_string(v) ? fg_dc_regex(dc, r, pr, v) : 0;
    case OP_IN:
        return fg_value_in(v, pr->set);
    case OP_LT:
        return json_is_number(v) && json_number_value(v) < pr->num;
    case OP_GT:
        return json_is_number(v) && json_number_value(v) > pr->num;
    default:
        return 0;
    }
}


/* 1 when every predicate of r holds, 0 when one does not, <0 error. */
static int
fg_rule_match(fg_dc_t *dc, const fg_rule_t *r)
{
    size_t  i;
    int     rc;

    for (i = 0; i < r->npreds; i++) {
        rc = fg_pred_match(dc, r, &r->preds[i]);
        if (rc != 1) {
            return rc;
        }
    }
    return 1;
}


typedef struct {
    uint32_t  idx[FG_MATCHED_MAX];
    size_t    n;
} fg_matched_t;


static int
fg_dc_check(fg_dc_t *dc, const uint32_t *list, size_t n, fg_matched_t *m)
{
    size_t  i;
    int     rc;

    for (i = 0; i < n; i++) {
        rc = fg_rule_match(dc, &dc->p->rules[list[i]]);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        if (m->n == FG_MATCHED_MAX) {
            return fg_error_set(dc->err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "more than %d rules match", FG_MATCHED_MAX);
        }
        m->idx[m->n++] = list[i];
    }
    return FG_OK;
}


static const fg_slot_t *
fg_index_lookup(const fg_policy_t *p, uint32_t field, const json_t *v)
{
    const fg_slot_t  *s;
    const char       *str;
    size_t            len, i;
    uint32_t          h;

    str = json_string_value(v);
    len = json_string_length(v);
    h = fg_hash(field, str, len);
    for (i = h & (p->nslots - 1); p->slots[i].count != 0;
         i = (i + 1) & (p->nslots - 1))
    {
        s = &p->slots[i];
        if (s->hash == h && s->field == field && s->len == len
            && memcmp(s->val, str, len) == 0)
        {
            return s;
        }
    }
    return NULL;
}


static int
fg_cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : (x > y);
}


/* The matching rules, in bundle order. */
static int
fg_dc_collect(fg_dc_t *dc, fg_matched_t *m)
{
    const fg_policy_t  *p = dc->p;
    const fg_slot_t    *s;
    uint32_t            f;
    int                 rc;

    m->n = 0;
    for (f = 0; f < F_NFIELDS; f++) {
        if (!(p->indexed & (1u << f)) || !json_is_string(dc->vals[f])) {
            continue;
        }
        s = fg_index_lookup(p, f, dc->vals[f]);
        if (s != NULL) {
            rc = fg_dc_check(dc, p->lists + s->start, s->count, m);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }
    rc = fg_dc_check(dc, p->always, p->nalways, m);
    if (rc != FG_OK) {
        return rc;
    }
    qsort(m->idx, m->n, sizeof(uint32_t), fg_cmp_u32);
    return FG_OK;
}


/* The exception rules among m: record them, note what they lift. */
static int
fg_dc_exceptions(fg_dc_t *dc, const fg_matched_t *m, time_t now,
    fg_decision_t *d)
{
    const fg_rule_t         *r;
    fg_exception_applied_t  *e;
    size_t                   i, t;
    int                      live;

    for (i = 0; i < m->n; i++) {
        r = &dc->p->rules[m->idx[i]];
        if (r->decision != FG_RULE_EXCEPTION) {
            continue;
        }
        live = now < r->exp_sec || (now == r->exp_sec && r->exp_nsec > 0);
        for (t = 0; t < r->ntargets; t++) {
            if (d->nexceptions == FG_DECISION_MAX_EXCEPTIONS) {
                return fg_error_set(dc->err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                    "more than 64 exception entries apply");
            }
            e = &d->exceptions[d->nexceptions++];
            e->rule_id = dc->p->rules[r->targets[t]].id;
            e->exception_id = r->id;
            e->expires_at = r->expires_at;
            e->applied = live;
        }
    }
    return FG_OK;
}


static int
fg_dc_lifted(const fg_decision_t *d, const char *id)
{
    size_t  i;

    for (i = 0; i < d->nexceptions; i++) {
        if (d->exceptions[i].applied && d->exceptions[i].rule_id == id) {
            return 1;
        }
    }
    return 0;
}


/* Does the counter the caller observed for r reach r's limits? */
static int
fg_throttle_reached(const json_t *input, const fg_rule_t *r)
{
    const json_t  *c, *v;

    c = json_object_get(json_object_get(input, "counters"), r->id);
    if (!json_is_object(c)) {
        return 0;
    }
    v = json_object_get(c, "requests");
    if (r->lim_requests >= 0 && json_is_integer(v)
        && json_integer_value(v) >= r->lim_requests)
    {
        return 1;
    }
    v = json_object_get(c, "tokens");
    return r->lim_tokens >= 0 && json_is_integer(v)
           && json_integer_value(v) >= r->lim_tokens;
}


/*
 * Is a REQUIRE_HITL satisfied: approval.input_sha256 == request.sha256?
 * A call without a body ("request": null) has no bytes of input, and its
 * approval request names the SHA-256 of no bytes.
 */
static int
fg_approval_ok(const json_t *input)
{
    const char    *want;
    const json_t  *a, *req, *r;

    a = json_object_get(json_object_get(input, "approval"), "input_sha256");
    req = json_object_get(input, "request");

    if (json_is_null(req)) {
        want = "e3b0c44298fc1c149afbf4c8996fb924"
               "27ae41e4649b934ca495991b7852b855";

    } else {
        r = json_object_get(req, "sha256");
        if (!json_is_string(r)) {
            return 0;
        }
        want = json_string_value(r);
    }

    return json_is_string(a)
           && json_string_length(a) == strlen(want)
           && strcmp(json_string_value(a), want) == 0;
}


/* What the rules that count say, before precedence is applied. */
typedef struct {
    size_t            first[FG_DECISION_ROUTE + 1];   /* rule index + 1 */
    size_t            count[FG_DECISION_ROUTE + 1];
    unsigned char     kind[FG_DECISION_MAX_RULES];  /* of each rule_id */
    int               throttle_held;
    long              retry;
} fg_tally_t;


static int
fg_dc_tally(fg_dc_t *dc, const fg_matched_t *m, fg_decision_t *d,
    fg_tally_t *t)
{
    const fg_rule_t  *r;
    size_t            i;

    memset(t, 0, sizeof(*t));
    for (i = 0; i < m->n; i++) {
        r = &dc->p->rules[m->idx[i]];
        if (r->decision == FG_RULE_EXCEPTION || fg_dc_lifted(d, r->id)) {
            continue;
        }
        if (r->decision == FG_DECISION_THROTTLE) {
            t->throttle_held = 1;
            if (!fg_throttle_reached(dc->input, r)) {
                continue;
            }
            if (r->window > t->retry) {
                t->retry = r->window;
            }
        }
        if (d->nrule_ids == FG_DECISION_MAX_RULES) {
            return fg_error_set(dc->err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "more than 256 rules decide");
        }
        t->kind[d->nrule_ids] = (unsigned char) r->decision;
        d->rule_ids[d->nrule_ids++] = r->id;
        if (t->count[r->decision]++ == 0) {
            t->first[r->decision] = m->idx[i] + 1;
        }
    }
    return FG_OK;
}


static void
fg_gate(fg_decision_t *d, const char *gate, const char *result)
{
    d->gates[d->ngates].gate = gate;
    d->gates[d->ngates].result = result;
    d->ngates++;
}


/* "rules a, b and 3 more" for the rules of one decision kind. */
static size_t
fg_justify_rules(const fg_decision_t *d, const fg_tally_t *t, int kind,
    char *buf, size_t size)
{
    size_t  i, named, n, count;

    count = t->count[kind];
    n = (size_t) snprintf(buf, size, "%s ", count == 1 ? "rule" : "rules");
    named = 0;
    for (i = 0; i < d->nrule_ids && named < FG_JUSTIFY_NAMES; i++) {
        if (t->kind[i] != kind) {
            continue;
        }
        n += (size_t) snprintf(buf + n, size - n, "%s%s",
                               named ? ", " : "", d->rule_ids[i]);
        named++;
    }
    if (count > named) {
        n += (size_t) snprintf(buf + n, size - n, " and %zu more",
                               count - named);
    }
    return n;
}


static void
fg_dc_justify(fg_decision_t *d, const fg_tally_t *t,
    int kind, int hitl_ok)
{
    char    *buf = d->justification;
    size_t   size = sizeof(d->justification), n;

    if (d->by_default) {
        n = (size_t) snprintf(buf, size, "default: %s",
                              fg_decision_name(d->decision));
    } else if (kind < 0) {
        n = fg_justify_rules(d, t, FG_DECISION_REQUIRE_HITL, buf, size);
        n += (size_t) snprintf(buf + n, size - n,
                               ": REQUIRE_HITL satisfied by approval, ALLOW");
        return;
    } else {
        n = fg_justify_rules(d, t, kind, buf, size);
        n += (size_t) snprintf(buf + n, size - n, ": %s",
                               fg_decision_name(d->decision));
    }
    if (hitl_ok && n < size) {
        snprintf(buf + n, size - n, " (REQUIRE_HITL satisfied by approval)");
    }
}


/* Apply precedence to the tally and fill the decision's outcome. */
static void
fg_dc_outcome(const fg_policy_t *p, const json_t *input, fg_decision_t *d,
    const fg_tally_t *t)
{
    static const int  order[] = {
        FG_DECISION_DENY, FG_DECISION_REQUIRE_STEP_UP,
        FG_DECISION_REQUIRE_HITL, FG_DECISION_THROTTLE, FG_DECISION_ROUTE,
        FG_DECISION_ALLOW
    };
    int     i, kind, has_hitl, hitl_ok;

    has_hitl = t->count[FG_DECISION_REQUIRE_HITL] > 0;
    hitl_ok = has_hitl && fg_approval_ok(input);

    kind = -1;
    for (i = 0; i < 6; i++) {
        if (t->count[order[i]] == 0
            || (order[i] == FG_DECISION_REQUIRE_HITL && hitl_ok))
        {
            continue;
        }
        kind = order[i];
        break;
    }

    d->by_default = 0;
    if (kind >= 0) {
        d->decision = (fg_decision_kind_t) kind;
    } else if (hitl_ok) {
        d->decision = FG_DECISION_ALLOW;
    } else {
        d->decision = p->def;
        d->by_default = 1;
    }

    if (d->decision == FG_DECISION_ROUTE) {
        d->route = p->rules[t->first[FG_DECISION_ROUTE] - 1].route;
    } else if (d->decision == FG_DECISION_REQUIRE_STEP_UP) {
        d->acr_values = p->rules[t->first[FG_DECISION_REQUIRE_STEP_UP] - 1].acr;
    } else if (d->decision == FG_DECISION_THROTTLE) {
        d->retry_after_seconds = t->retry;
    }

    /* gates in the order they run; one that stops the call ends them */
    if (d->decision == FG_DECISION_DENY
        || d->decision == FG_DECISION_REQUIRE_STEP_UP)
    {
        fg_gate(d, "policy", "fail");
    } else {
        fg_gate(d, "policy", "pass");
        fg_gate(d, "approval", !has_hitl ? "not_applicable"
                               : hitl_ok ? "pass" : "fail");
        if (!has_hitl || hitl_ok) {
            fg_gate(d, "throttle", !t->throttle_held ? "not_applicable"
                                   : d->decision == FG_DECISION_THROTTLE
                                   ? "fail" : "pass");
        }
    }

    fg_dc_justify(d, t, kind < 0 && hitl_ok ? -1 : kind,
                  hitl_ok && kind >= 0);
}


void
fg_decision_init(fg_decision_t *d, fg_decision_kind_t kind,
    const char *justification)
{
    memset(d, 0, sizeof(*d));
    d->decision = kind;
    d->retry_after_seconds = -1;
    snprintf(d->justification, sizeof(d->justification), "%s",
             justification != NULL && justification[0] ? justification
                                                        : "no reason given");
}


void
fg_decision_release(fg_decision_t *d)
{
    (void) d;
}


int
fg_policy_decide(const fg_policy_t *p, const json_t *input, time_t now,
    fg_decision_t *out, fg_error_t *err)
{
    fg_dc_t       dc;
    fg_tally_t    t;
    fg_matched_t  m;     /* 4 KiB: deciding does not allocate */
    int           rc;

    if (out == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decide: no decision to fill");
    }
    fg_decision_init(out, FG_DECISION_DENY, "policy error: fail closed");
    if (p == NULL || !json_is_object(input)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decide: no policy, or input is not an object");
    }

    fg_dc_init(&dc, p, input, err);
    rc = fg_dc_collect(&dc, &m);
    if (rc == FG_OK) {
        rc = fg_dc_exceptions(&dc, &m, now, out);
    }
    if (rc == FG_OK) {
        rc = fg_dc_tally(&dc, &m, out, &t);
    }
    if (rc == FG_OK) {
        fg_dc_outcome(p, input, out, &t);
    } else {
        fg_decision_init(out, FG_DECISION_DENY, "policy error: fail closed");
        fg_gate(out, "policy", "error");
    }

    pcre2_match_data_free(dc.md);
    return rc;
}


long
fg_policy_throttles(const fg_policy_t *p, const json_t *input,
    fg_throttle_t *out, size_t max, fg_error_t *err)
{
    fg_dc_t           dc;
    const fg_rule_t  *r;
    size_t            i, n;
    int               rc;

    if (p == NULL || !json_is_object(input)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "throttles: no policy, or input is not an "
                            "object");
    }
    fg_dc_init(&dc, p, input, err);
    n = 0;
    rc = FG_OK;
    for (i = 0; i < p->nthrottles; i++) {
        r = &p->rules[p->throttles[i]];
        rc = fg_rule_match(&dc, r);
        if (rc < 0) {
            break;
        }
        if (rc == 0) {
            continue;
        }
        if (n < max) {
            out[n].rule_id = r->id;
            out[n].requests = r->lim_requests;
            out[n].tokens = r->lim_tokens;
            out[n].window_seconds = r->window;
        }
        n++;
        rc = FG_OK;
    }
    pcre2_match_data_free(dc.md);
    return rc < 0 ? rc : (long) n;
}


/* ============================================================== record */

static void
fg_record_gates(fg_rw_t *w, const fg_decision_t *d, const json_t *before)
{
    size_t  i;

    fg_rw_array(w);
    for (i = 0; json_is_array(before) && i < json_array_size(before); i++) {
        fg_rw_json(w, json_array_get(before, i));
    }
    for (i = 0; i < d->ngates; i++) {
        fg_rw_object(w);
        fg_rw_key(w, "gate");
        fg_rw_string(w, d->gates[i].gate);
        fg_rw_key(w, "result");
        fg_rw_string(w, d->gates[i].result);
        fg_rw_close(w);
    }
    fg_rw_close(w);
}


static void
fg_record_exceptions(fg_rw_t *w, const fg_decision_t *d)
{
    size_t  i;

    fg_rw_array(w);
    for (i = 0; i < d->nexceptions; i++) {
        fg_rw_object(w);
        fg_rw_key(w, "exception_id");
        fg_rw_string(w, d->exceptions[i].exception_id);
        fg_rw_key(w, "expires_at");
        fg_rw_string(w, d->exceptions[i].expires_at);
        fg_rw_key(w, "rule_id");
        fg_rw_string(w, d->exceptions[i].rule_id);
        fg_rw_key(w, "status");
        fg_rw_string(w, d->exceptions[i].applied ? "applied" : "expired");
        fg_rw_close(w);
    }
    fg_rw_close(w);
}


int
fg_policy_decision_write(const fg_decision_t *d, const json_t *input,
    const fg_policy_record_args_t *a, fg_sink_t *out, fg_error_t *err)
{
    size_t   i;
    fg_rw_t  w;

    if (d == NULL || input == NULL || a == NULL || a->tenant_id == NULL
        || a->execution_id == NULL || a->trace == NULL
        || a->auth_context_sha256 == NULL
        || (d->decision == FG_DECISION_REQUIRE_HITL
            && a->approval_request_id == NULL))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision record: a required argument is "
                            "missing");
    }

    /* what the schema bounds and the record's links depend on */
    if (!fg_tenant_id_valid(a->tenant_id,
                            strnlen(a->tenant_id, FG_TENANT_ID_MAX + 1))
        || strnlen(a->execution_id, FG_UUID_LEN + 1) != FG_UUID_LEN
        || !fg_sha256_hex_valid(a->auth_context_sha256,
                                strnlen(a->auth_context_sha256,
                                        FG_SHA256_HEX_LEN + 1))
        || (a->bundle_revision != NULL
            && (a->bundle_sha256 == NULL
                || !fg_sha256_hex_valid(a->bundle_sha256,
                                        strnlen(a->bundle_sha256,
                                                FG_SHA256_HEX_LEN + 1)))))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision record: tenant_id, execution_id, "
                            "auth_context_sha256 or the bundle's sha256 is "
                            "not valid");
    }

    /* the members in canonical order */
    fg_rw_init(&w, out, err);
    fg_rw_object(&w);

    fg_rw_key(&w, "acr_values");
    fg_rw_string_or_null(&w, d->decision == FG_DECISION_REQUIRE_STEP_UP
                             ? d->acr_values : NULL);
    fg_rw_key(&w, "approval_request_id");
    fg_rw_string_or_null(&w, d->decision == FG_DECISION_REQUIRE_HITL
                             ? a->approval_request_id : NULL);
    fg_rw_key(&w, "auth_context_sha256");
    fg_rw_string(&w, a->auth_context_sha256);

    fg_rw_key(&w, "bundle");
    if (a->bundle_revision == NULL) {
        fg_rw_null(&w);
    } else {
        fg_rw_object(&w);
        fg_rw_key(&w, "revision");
        fg_rw_string(&w, a->bundle_revision);
        fg_rw_key(&w, "sha256");
        fg_rw_string(&w, a->bundle_sha256);
        fg_rw_close(&w);
    }

    fg_rw_canon_version(&w);
    fg_rw_key(&w, "decided_at");
    fg_rw_time(&w, a->now_sec, a->now_nsec);
    fg_rw_key(&w, "decision");
    fg_rw_string(&w, fg_decision_name(d->decision));
    fg_rw_key(&w, "exceptions_applied");
    fg_record_exceptions(&w, d);
    fg_rw_key(&w, "execution_id");
    fg_rw_string(&w, a->execution_id);
    fg_rw_key(&w, "gates_evaluated");
    fg_record_gates(&w, d, a->gates_before);
    fg_rw_key(&w, "input");
    fg_rw_json(&w, input);
    fg_rw_key(&w, "justification");
    fg_rw_string(&w, d->justification);

    fg_rw_key(&w, "permissions_checked");
    fg_rw_json_or(&w, json_is_array(a->permissions_checked)
                      ? a->permissions_checked : NULL, FG_RW_EMPTY_ARRAY);

    fg_rw_record_type(&w, FG_RECORD_POLICY_DECISION);

    fg_rw_key(&w, "retry_after_seconds");
    if (d->decision == FG_DECISION_THROTTLE && d->retry_after_seconds >= 0) {
        fg_rw_int(&w, d->retry_after_seconds);
    } else {
        fg_rw_null(&w);
    }

    fg_rw_key(&w, "route");
    fg_rw_string_or_null(&w, d->decision == FG_DECISION_ROUTE ? d->route
                                                              : NULL);
    fg_rw_key(&w, "rule_ids");
    fg_rw_array(&w);
    for (i = 0; i < d->nrule_ids; i++) {
        fg_rw_string(&w, d->rule_ids[i]);
    }
    fg_rw_close(&w);

    fg_rw_spec_version(&w);
    fg_rw_key(&w, "tenant_id");
    fg_rw_string(&w, a->tenant_id);
    fg_rw_trace(&w, a->trace);

    fg_rw_close(&w);

    return fg_rw_finish(&w);
}


json_t *
fg_policy_decision_record(const fg_decision_t *d, const json_t *input,
    const fg_policy_record_args_t *a, fg_error_t *err)
{
    fg_rw_buffer_t  b;

    return fg_rw_buffer_json(&b, fg_policy_decision_write(d, input, a,
                                 fg_rw_buffer_open(&b), err), err);
}

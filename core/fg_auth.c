/*
 * fg_auth.c -- the caller's identity after fg_jws_verify(): the claims
 * check that makes every verified token recordable, the AuthContext
 * record builder, the capability gate and approval tokens.  The token
 * cache lives in fg_token_cache.c.
 *
 * String bounds and patterns are those of schemas/Shared.schema.json and
 * AuthContext.schema.json (and PolicyDecisionRecord's Approval object),
 * checked here in C so no schema runs on the request path; the unit tests
 * validate built records against the schemas themselves.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_auth.h"
#include "fg_record_write.h"
#include "fg_utf8.h"

/* The largest time a record can write: 9999-12-31T23:59:59Z. */
#define FG_AUTH_TIME_MAX       253402300799LL

#define FG_AUTH_ISSUER_MAX     512
#define FG_AUTH_TEXT_MAX       256
#define FG_AUTH_TOKEN_MAX      256
#define FG_AUTH_NAME_MAX       128
#define FG_AUTH_TENANT_MAX     FG_TENANT_ID_MAX
#define FG_AUTH_TOOL_ID_MAX    128
#define FG_AUTH_CAPABILITY_MAX 262



/* ======================================================= string rules */

/* A string claim's bound (characters) and pattern, as the schema has it. */
typedef struct {
    size_t        max;
    int         (*ok)(const unsigned char *s, size_t n);
    const char   *bad;          /* what the refusal says when !ok */
} fg_str_rule_t;


static int
fg_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


static int
fg_is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}


/* ^[^\x00-\x1f\x7f]*$ */
static int
fg_is_text(const unsigned char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}


/* ^[!-~]*$ */
static int
fg_is_token(const unsigned char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < '!' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}


/* ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$ */
static int
fg_is_name(const unsigned char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > FG_AUTH_NAME_MAX || !fg_is_alnum(s[0])) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (!fg_is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != ':'
            && s[i] != '-')
        {
            return 0;
        }
    }
    return 1;
}


/* the shared checks, in the signature of the claim rules below */
static int
fg_is_tenant(const unsigned char *s, size_t n)
{
    return fg_tenant_id_valid((const char *) s, n);
}


/* ^[a-z0-9][a-z0-9_.-]{0,127}$ */
static int
fg_is_tool_id(const unsigned char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > FG_AUTH_TOOL_ID_MAX || !fg_is_lower_alnum(s[0])) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (!fg_is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '.'
            && s[i] != '-')
        {
            return 0;
        }
    }
    return 1;
}


static int
fg_is_sha256(const unsigned char *s, size_t n)
{
    return fg_sha256_hex_valid((const char *) s, n);
}


/* ^(model|tool):[!-~]+$ */
static int
fg_is_capability(const unsigned char *s, size_t n)
{
    if (n > 6 && memcmp(s, "model:", 6) == 0) {
        return fg_is_token(s + 6, n - 6);
    }
    if (n > 5 && memcmp(s, "tool:", 5) == 0) {
        return fg_is_token(s + 5, n - 5);
    }
    return 0;
}


static const fg_str_rule_t  fg_rule_issuer = {
    FG_AUTH_ISSUER_MAX, fg_is_text, "has a control character"
};
static const fg_str_rule_t  fg_rule_text = {
    FG_AUTH_TEXT_MAX, fg_is_text, "has a control character"
};
static const fg_str_rule_t  fg_rule_token = {
    FG_AUTH_TOKEN_MAX, fg_is_token, "is not printable ASCII without spaces"
};
static const fg_str_rule_t  fg_rule_name = {
    FG_AUTH_NAME_MAX, fg_is_name,
    "does not match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
};
static const fg_str_rule_t  fg_rule_tenant = {
    FG_AUTH_TENANT_MAX, fg_is_tenant,
    "does not match ^[a-z0-9][a-z0-9_-]{0,62}$"
};
static const fg_str_rule_t  fg_rule_tool_id = {
    FG_AUTH_TOOL_ID_MAX, fg_is_tool_id,
    "does not match ^[a-z0-9][a-z0-9_.-]{0,127}$"
};
static const fg_str_rule_t  fg_rule_sha256 = {
    FG_SHA256_HEX_LEN, fg_is_sha256, "is not 64 lowercase hex digits"
};
static const fg_str_rule_t  fg_rule_capability = {
    FG_AUTH_CAPABILITY_MAX, fg_is_capability,
    "does not match ^(model|tool):[!-~]+$"
};


/*
 * Check string v against rule; what names it in the refusal ("claim
 * tenant_id", "claim capabilities: item 3").  Returns FG_OK or
 * FG_ERR_INVALID with err set.
 */
static int
fg_check_string(const json_t *v, const fg_str_rule_t *rule, const char *what,
    fg_error_t *err)
{
    const unsigned char  *s;
    size_t                n;

    if (!json_is_string(v)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s is not a string", what);
    }
    s = (const unsigned char *) json_string_value(v);
    n = json_string_length(v);
    if (n == 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s is empty", what);
    }
    if (n > 4 * rule->max || fg_utf8_length(s, n) > rule->max) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s is longer than %zu characters", what,
                            rule->max);
    }
    if (!rule->ok(s, n)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s %s",
                            what, rule->bad);
    }
    return FG_OK;
}


/* Member name of obj checked by rule; absent is refused when required. */
static int
fg_check_member(const json_t *obj, const char *prefix, const char *name,
    const fg_str_rule_t *rule, int required, fg_error_t *err)
{
    const json_t  *v;
    char           what[96];

    snprintf(what, sizeof(what), "%s %s", prefix, name);
    v = json_object_get(obj, name);
    if (v == NULL) {
        return required ? fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                       "%s missing", what)
                        : FG_OK;
    }
    return fg_check_string(v, rule, what, err);
}


/* A NumericDate claim: absent (when optional) or an integer in range. */
static int
fg_check_time_claim(const json_t *claims, const char *name, int required,
    fg_error_t *err)
{
    const json_t  *v;
    json_int_t     t;

    v = json_object_get(claims, name);
    if (v == NULL) {
        return required ? fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                       "claim %s missing", name)
                        : FG_OK;
    }
    if (!json_is_integer(v)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claim %s is not an integer", name);
    }
    t = json_integer_value(v);
    if (t < 0 || t > FG_AUTH_TIME_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claim %s is out of range", name);
    }
    return FG_OK;
}


static int
fg_check_capabilities(const json_t *claims, fg_error_t *err)
{
    const json_t  *caps;
    size_t         i;
    char           what[64];
    int            rc;

    caps = json_object_get(claims, "capabilities");
    if (caps == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claim capabilities missing");
    }
    if (!json_is_array(caps)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claim capabilities is not an array");
    }
    if (json_array_size(caps) > FG_AUTH_MAX_CAPABILITIES) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claim capabilities has more than %d items",
                            FG_AUTH_MAX_CAPABILITIES);
    }
    for (i = 0; i < json_array_size(caps); i++) {
        snprintf(what, sizeof(what), "claim capabilities: item %zu", i);
        rc = fg_check_string(json_array_get(caps, i), &fg_rule_capability,
                             what, err);
        if (rc != FG_OK) {
            return rc;
        }
    }
    return FG_OK;
}


/* ======================================================== AuthContext */

int
fg_auth_check_claims(const json_t *claims, fg_error_t *err)
{
    int  rc;

    if (!json_is_object(claims)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "claims are not an object");
    }

    if ((rc = fg_check_member(claims, "claim", "iss", &fg_rule_issuer, 1,
                              err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "sub", &fg_rule_text, 1,
                                 err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "tenant_id",
                                 &fg_rule_tenant, 1, err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "workspace_id",
                                 &fg_rule_name, 1, err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "environment",
                                 &fg_rule_name, 1, err)) != FG_OK
        || (rc = fg_check_capabilities(claims, err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "acr", &fg_rule_text, 0,
                                 err)) != FG_OK
        || (rc = fg_check_member(claims, "claim", "jti", &fg_rule_token, 0,
                                 err)) != FG_OK
        || (rc = fg_check_time_claim(claims, "iat", 0, err)) != FG_OK
        || (rc = fg_check_time_claim(claims, "exp", 1, err)) != FG_OK)
    {
        return rc;
    }
    return FG_OK;
}


/* The member name of claims as a new reference, or JSON null when absent. */
static json_t *
fg_claim_or_null(const json_t *claims, const char *name)
{
    json_t  *v;

    v = json_object_get(claims, name);
    return v != NULL ? json_incref(v) : json_null();
}


/* 1 when item i of caps is one an item before it already is. */
static int
fg_capability_repeated(const json_t *caps, size_t i)
{
    size_t  j;

    for (j = 0; j < i; j++) {
        if (json_equal(json_array_get(caps, i), json_array_get(caps, j))) {
            return 1;
        }
    }
    return 0;
}


/* The capabilities claim in token order without duplicates. */
static json_t *
fg_dedup_capabilities(const json_t *caps)
{
    json_t  *out;
    size_t   i, n;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }
    n = json_array_size(caps);
    for (i = 0; i < n; i++) {
        if (!fg_capability_repeated(caps, i)
            && json_array_append(out, json_array_get(caps, i)) != 0)
        {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}


static int
fg_is_token_source(const char *s)
{
    return s != NULL
           && (strcmp(s, FG_AUTH_SOURCE_FOXGOV_AUTH) == 0
               || strcmp(s, FG_AUTH_SOURCE_AUTHORIZATION) == 0
               || strcmp(s, FG_AUTH_SOURCE_X_API_KEY) == 0
               || strcmp(s, FG_AUTH_SOURCE_API_KEY) == 0);
}


/* The record's kid: the header's kid, or null when it has none. */
static int
fg_header_kid(const json_t *header, json_t **kid, fg_error_t *err)
{
    const json_t  *v;
    int            rc;

    v = json_object_get(header, "kid");
    if (v == NULL) {
        *kid = json_null();
        return FG_OK;
    }
    rc = fg_check_string(v, &fg_rule_token, "header kid", err);
    if (rc != FG_OK) {
        return rc;
    }
    *kid = json_incref((json_t *) v);
    return FG_OK;
}


/* Check what fg_auth_context_record() is given besides the claims. */
static int
fg_check_record_args(const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_error_t *err)
{
    if (jws == NULL || !json_is_object(jws->header) || args == NULL
        || args->trace == NULL || args->execution_id == NULL)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "auth context: missing argument");
    }
    if (!fg_is_token_source(args->token_source)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "auth context: unknown token source");
    }
    if (token_sha256 == NULL
        || !fg_is_sha256((const unsigned char *) token_sha256,
                         strlen(token_sha256)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "auth context: token_sha256 is not 64 "
                            "lowercase hex digits");
    }
    if (jws->alg == FG_JWS_NONE) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "auth context: token alg is not supported");
    }
    return args->claims_checked ? FG_OK
                                : fg_auth_check_claims(jws->claims, err);
}


/* A NumericDate claim as RFC 3339 UTC without fraction, or null. */
static void
fg_write_jwt_time(fg_rw_t *w, const json_t *v)
{
    struct tm  tm;
    time_t     t;
    char       buf[FG_TIME_MAX];

    if (v == NULL) {
        fg_rw_null(w);
        return;
    }

    t = (time_t) json_integer_value(v);
    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        /* cannot be: fg_auth_check_claims() bounds iat and exp */
        fg_rw_string(w, NULL);
        return;
    }
    fg_rw_string(w, buf);
}


/* A claim as it is, or null when absent. */
static void
fg_write_claim(fg_rw_t *w, const json_t *claims, const char *name)
{
    const json_t  *v = json_object_get(claims, name);

    if (v != NULL) {
        fg_rw_json(w, v);
    } else {
        fg_rw_null(w);
    }
}


/* The capabilities claim in token order without duplicates. */
static void
fg_write_capabilities(fg_rw_t *w, const json_t *caps)
{
    size_t  i, n;

    fg_rw_array(w);
    n = json_array_size(caps);
    for (i = 0; i < n; i++) {
        if (!fg_capability_repeated(caps, i)) {
            fg_rw_json(w, json_array_get(caps, i));
        }
    }
    fg_rw_close(w);
}


int
fg_auth_context_write(const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_sink_t *out, fg_error_t *err)
{
    int            rc;
    char           t[FG_TIME_MAX];
    json_t        *kid;
    fg_rw_t        w;
    const json_t  *c;


    if ((rc = fg_check_record_args(jws, token_sha256, args, err)) != FG_OK) {
        return rc;
    }
    if (fg_time_format(args->now_sec, args->now_nsec, t) != FG_OK) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "auth context: authenticated_at is not a valid "
                            "time");
    }
    if ((rc = fg_header_kid(jws->header, &kid, err)) != FG_OK) {
        return rc;
    }
    c = jws->claims;

    /* the members in canonical order */
    fg_rw_init(&w, out, err);
    fg_rw_object(&w);

    fg_rw_key(&w, "acr");
    fg_write_claim(&w, c, "acr");
    fg_rw_key(&w, "alg");
    fg_rw_string(&w, fg_jws_alg_name(jws->alg));
    fg_rw_key(&w, "authenticated_at");
    fg_rw_time(&w, args->now_sec, args->now_nsec);
    fg_rw_canon_version(&w);
    fg_rw_key(&w, "capabilities");
    fg_write_capabilities(&w, json_object_get(c, "capabilities"));
    fg_rw_key(&w, "environment");
    fg_write_claim(&w, c, "environment");
    fg_rw_key(&w, "execution_id");
    fg_rw_string(&w, args->execution_id);
    fg_rw_key(&w, "expires_at");
    fg_write_jwt_time(&w, json_object_get(c, "exp"));
    fg_rw_key(&w, "issued_at");
    fg_write_jwt_time(&w, json_object_get(c, "iat"));
    fg_rw_key(&w, "issuer");
    fg_write_claim(&w, c, "iss");
    fg_rw_key(&w, "jti");
    fg_write_claim(&w, c, "jti");
    fg_rw_key(&w, "kid");
    fg_rw_json(&w, kid);
    fg_rw_key(&w, "principal");
    fg_write_claim(&w, c, "sub");
    fg_rw_record_type(&w, FG_RECORD_AUTH_CONTEXT);
    fg_rw_spec_version(&w);
    fg_rw_key(&w, "tenant_id");
    fg_write_claim(&w, c, "tenant_id");
    fg_rw_key(&w, "token_sha256");
    fg_rw_string(&w, token_sha256);
    fg_rw_key(&w, "token_source");
    fg_rw_string(&w, args->token_source);
    fg_rw_trace(&w, args->trace);
    fg_rw_key(&w, "workspace_id");
    fg_write_claim(&w, c, "workspace_id");

    fg_rw_close(&w);

    json_decref(kid);

    return fg_rw_finish(&w);
}


json_t *
fg_auth_context_record(const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_error_t *err)
{
    fg_rw_buffer_t  b;

    return fg_rw_buffer_json(&b, fg_auth_context_write(jws, token_sha256,
                                 args, fg_rw_buffer_open(&b), err), err);
}


json_t *
fg_auth_subject(const fg_jws_t *jws, fg_error_t *err)
{
    json_t        *sub, *caps;
    const json_t  *c;
    int            bad;

    if (jws == NULL || !json_is_object(jws->claims)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "auth subject: no verified claims");
        return NULL;
    }
    c = jws->claims;

    sub = json_object();
    caps = fg_dedup_capabilities(json_object_get(c, "capabilities"));
    if (sub == NULL || caps == NULL) {
        json_decref(sub);
        json_decref(caps);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    /* the claims' own values, shared: they do not change once verified */
    bad = json_object_set(sub, "tenant_id", json_object_get(c, "tenant_id"));
    bad |= json_object_set(sub, "workspace_id",
                           json_object_get(c, "workspace_id"));
    bad |= json_object_set(sub, "environment",
                           json_object_get(c, "environment"));
    bad |= json_object_set(sub, "principal", json_object_get(c, "sub"));
    bad |= json_object_set_new(sub, "acr", fg_claim_or_null(c, "acr"));
    bad |= json_object_set_new(sub, "capabilities", caps);

    if (bad) {
        json_decref(sub);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "auth subject: the claims are not checked");
        return NULL;
    }
    return sub;
}


/* ========================================================= capability */

int
fg_auth_capable(const json_t *capabilities, const char *need)
{
    const char  *colon, *c;
    size_t       kind, rest, i, n;

    if (!json_is_array(capabilities) || need == NULL) {
        return 0;
    }
    colon = strchr(need, ':');
    if (colon == NULL) {
        return 0;
    }
    kind = (size_t) (colon - need) + 1;         /* "model:" / "tool:" */
    if (!((kind == 6 && memcmp(need, "model:", 6) == 0)
          || (kind == 5 && memcmp(need, "tool:", 5) == 0)))
    {
        return 0;
    }
    rest = strlen(colon + 1);

    for (i = 0; i < json_array_size(capabilities); i++) {
        c = json_string_value(json_array_get(capabilities, i));
        if (c == NULL) {
            continue;
        }
        n = json_string_length(json_array_get(capabilities, i));
        if (n >= kind && memcmp(c, need, kind) == 0
            && fg_glob_match(c + kind, n - kind, colon + 1, rest) == 1)
        {
            return 1;
        }
    }
    return 0;
}


/* ========================================================== approvals */

/* Each required claim of an approval within its schema bounds. */
static int
fg_check_approval_claims(const json_t *c, fg_error_t *err)
{
    static const struct {
        const char           *name;
        const fg_str_rule_t  *rule;
    } claims[] = {
        { "approval_request_id", &fg_rule_name },
        { "tenant_id",           &fg_rule_tenant },
        { "tool",                &fg_rule_tool_id },
        { "action",              &fg_rule_name },
        { "input_sha256",        &fg_rule_sha256 },
        { "sub",                 &fg_rule_text },
        { "jti",                 &fg_rule_token },
    };
    size_t  i;
    int     rc;

    for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        rc = fg_check_member(c, "approval claim", claims[i].name,
                             claims[i].rule, 1, err);
        if (rc != FG_OK) {
            return rc;
        }
    }
    return FG_OK;
}


/* Does claim name of c equal s exactly? */
static int
fg_claim_is(const json_t *c, const char *name, const char *s)
{
    const json_t  *v;

    v = json_object_get(c, name);
    return json_string_length(v) == strlen(s)
           && memcmp(json_string_value(v), s, strlen(s)) == 0;
}


/* The approval's claims against the call it must be bound to. */
static int
fg_check_binding(const json_t *c, const fg_approval_binding_t *b,
    fg_error_t *err)
{
    if (!fg_claim_is(c, "tenant_id", b->tenant_id)) {
        return fg_error_set(err, FG_ERR_MISMATCH, FG_NO_OFFSET,
                            "approval is for another tenant");
    }
    if (!fg_claim_is(c, "tool", b->tool)) {
        return fg_error_set(err, FG_ERR_MISMATCH, FG_NO_OFFSET,
                            "approval is for another tool");
    }
    if (!fg_claim_is(c, "action", b->action)) {
        return fg_error_set(err, FG_ERR_MISMATCH, FG_NO_OFFSET,
                            "approval is for another action");
    }
    if (!fg_claim_is(c, "input_sha256", b->input_sha256)) {
        return fg_error_set(err, FG_ERR_MISMATCH, FG_NO_OFFSET,
                            "approval is for other input");
    }
    return FG_OK;
}


json_t *
fg_approval_verify(const fg_keyset_t *approvers, const char *token,
    size_t len, const fg_approval_binding_t *b, time_t now, unsigned leeway,
    fg_error_t *err)
{
    return fg_approval_verify_exp(approvers, token, len, b, now, leeway,
                                  NULL, err);
}


json_t *
fg_approval_verify_exp(const fg_keyset_t *approvers, const char *token,
    size_t len, const fg_approval_binding_t *b, time_t now, unsigned leeway,
    time_t *exp, fg_error_t *err)
{
    fg_jws_verify_opts_t  opts;
    fg_jws_t              jws;
    json_t               *out;
    const json_t         *c;

    if (approvers == NULL || token == NULL || b == NULL
        || b->tenant_id == NULL || b->tool == NULL || b->action == NULL
        || b->input_sha256 == NULL)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "approval: missing argument");
        return NULL;
    }

    memset(&opts, 0, sizeof(opts));
    opts.now = now;
    opts.leeway = leeway;
    opts.require_exp = 1;
    opts.typ = FG_APPROVAL_TYP;

    if (fg_jws_verify(approvers, token, len, &opts, &jws, err) != FG_OK) {
        return NULL;
    }
    c = jws.claims;

    if (fg_check_approval_claims(c, err) != FG_OK
        || fg_check_binding(c, b, err) != FG_OK)
    {
        fg_jws_release(&jws);
        return NULL;
    }

    if (exp != NULL) {
        /* fg_jws_verify() required exp and checked it is an integer */
        *exp = (time_t) json_integer_value(json_object_get(c, "exp"));
    }

    out = json_pack("{s:O, s:O, s:O, s:O}",
                    "approval_id", json_object_get(c, "approval_request_id"),
                    "jti", json_object_get(c, "jti"),
                    "approver", json_object_get(c, "sub"),
                    "input_sha256", json_object_get(c, "input_sha256"));
    fg_jws_release(&jws);
    if (out == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    return out;
}

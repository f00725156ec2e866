
/*
 * ngx_http_foxgov_access.c -- the handler of a governed call, run in the
 * precontent phase (registered by ngx_http_foxgov_postconfiguration()),
 * that is after nginx's own access checks (allow/deny, auth_basic,
 * auth_request): a call they refuse never gets here (DESIGN.md
 * "AuthContext", "Trace context", "Calls and adapters", "Decisions and
 * responses"):
 *
 *   1. from the headers: the endpoint, the trace, the token (401 without
 *      any record when it is refused: no AuthContext, no decision), the
 *      labels, the idempotency key, the declared body size;
 *   2. the body, read without blocking (the phase is re-run from the body
 *      handler, as ngx_http_mirror_module does), bounded by
 *      foxgov_body_max;
 *   3. the gates: schema (body, provider request shape, tool schema),
 *      capability, then the bundle's decision with the THROTTLE counters
 *      and, when the rules ask for one, a verified approval;
 *   4. the AuthContext and PolicyDecisionRecord are sealed and handed to
 *      the evidence transport, and then the call is forwarded (ALLOW,
 *      ROUTE) or refused with the status and JSON error of DESIGN.md.
 *
 * Every refusal after authentication leaves an AuthContext, a
 * PolicyDecisionRecord and, in the log phase, a call record.
 */


#include "ngx_http_foxgov_common.h"


/* What the headers of a request hold for the gateway. */
typedef struct {
    ngx_table_elt_t   *token;
    const char        *token_source;
    ngx_table_elt_t   *traceparent;
    ngx_uint_t         ntraceparent;
    ngx_table_elt_t   *tracestate[FG_TRACESTATE_MEMBERS];
    ngx_uint_t         ntracestate;
    ngx_table_elt_t   *labels;
    ngx_uint_t         nlabels;
    ngx_table_elt_t   *approval;
    ngx_table_elt_t   *idempotency;
    ngx_uint_t         nidempotency;
} ngx_http_foxgov_headers_t;


static ngx_http_foxgov_ctx_t *ngx_http_foxgov_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_foxgov_cleanup_ctx(void *data);
static void ngx_http_foxgov_scan_headers(ngx_http_request_t *r,
    ngx_http_foxgov_headers_t *hs);
static ngx_int_t ngx_http_foxgov_trace(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, ngx_http_foxgov_headers_t *hs);
static ngx_int_t ngx_http_foxgov_authenticate(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    ngx_http_foxgov_headers_t *hs);
static ngx_int_t ngx_http_foxgov_evidence_refuse(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);
static json_t *ngx_http_foxgov_auth_context(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_error_t *err);
static ngx_int_t ngx_http_foxgov_begin(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx);
static void ngx_http_foxgov_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_foxgov_decide(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx);
static ngx_int_t ngx_http_foxgov_read_body(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    json_t **body, json_t *gates);
static ngx_int_t ngx_http_foxgov_body_bytes(ngx_http_request_t *r,
    ngx_str_t *out);
static ngx_int_t ngx_http_foxgov_throttles(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, json_t *input, time_t now);
static ngx_int_t ngx_http_foxgov_approval(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    json_t *input, fg_decision_t *d, time_t now);
static ngx_int_t ngx_http_foxgov_record(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_decision_t *d, json_t *input,
    json_t *gates, const char *approval_request_id);
static ngx_int_t ngx_http_foxgov_act(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    fg_decision_t *d, const char *approval_request_id);
static ngx_int_t ngx_http_foxgov_gate_refuse(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, json_t *gates, const char *gate,
    const char *result, ngx_uint_t status, const char *code,
    const char *fmt, ...);
static ngx_int_t ngx_http_foxgov_refuse(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *fmt, ...);
static json_t *ngx_http_foxgov_input(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    json_t *body, json_t *approval, fg_error_t *err);
static ngx_int_t ngx_http_foxgov_gate(json_t *gates, const char *gate,
    const char *result);
static u_char *ngx_http_foxgov_printable(u_char *dst, size_t size,
    const u_char *src, size_t len);
static ngx_http_foxgov_credential_t *ngx_http_foxgov_pick_credential(
    ngx_http_foxgov_loc_conf_t *flcf, ngx_str_t *tenant);
static void ngx_http_foxgov_now(time_t *sec, long *nsec);


#define ngx_http_foxgov_header_is(h, name)                                   \
    ((h)->key.len == sizeof(name) - 1                                        \
     && ngx_strncmp((h)->lowcase_key, name, sizeof(name) - 1) == 0)


ngx_int_t
ngx_http_foxgov_access_handler(ngx_http_request_t *r)
{
    u_char                       uri[256];
    ngx_int_t                    rc;
    ngx_http_foxgov_ctx_t       *ctx;
    ngx_http_foxgov_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_foxgov_module);

    if (!flcf->enable || flcf->kind == NGX_HTTP_FOXGOV_KIND_NONE) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_foxgov_get_ctx(r);

    if (ctx != NULL) {
        /* re-run after the body was read, or a second pass */
        if (ctx->refused && !ctx->replied) {
            return ngx_http_foxgov_reply(r, ctx);
        }

        return ctx->status;
    }

    if (r != r->main) {
        /* a subrequest into a governed location is not a call */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: a subrequest to \"%s\" is refused: it is "
                      "not a call",
                      ngx_http_foxgov_printable(uri, sizeof(uri),
                                                r->uri.data, r->uri.len));
        return NGX_HTTP_FORBIDDEN;
    }

    ctx = ngx_http_foxgov_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_foxgov_begin(r, flcf, ctx);
    if (rc == NGX_OK
        && r->headers_in.content_length_n <= 0 && !r->headers_in.chunked)
    {
        /* no body to wait for */
        rc = ngx_http_foxgov_decide(r, flcf, ctx);
    }

    if (ctx->refused) {
        return ngx_http_foxgov_reply(r, ctx);
    }

    if (rc != NGX_OK || ctx->decision.len > 0) {
        return rc;
    }

    r->request_body_in_single_buf = 1;

    ctx->status = NGX_DONE;
    ctx->waiting = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_foxgov_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->waiting = 0;

        if (ctx->too_large || rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
            (void) ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema",
                           "fail", NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                           "body_too_large",
                           "schema gate: the request body is larger than "
                           "foxgov_body_max (%uz bytes)", flcf->body_max);
        }

        if (ctx->refused) {
            return ngx_http_foxgov_reply(r, ctx);
        }

        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_foxgov_body_handler(ngx_http_request_t *r)
{
    ngx_http_foxgov_ctx_t       *ctx;
    ngx_http_foxgov_loc_conf_t  *flcf;

    ctx = ngx_http_foxgov_get_ctx(r);
    flcf = ngx_http_get_module_loc_conf(r, ngx_http_foxgov_module);

    /* still "waiting": a refusal is answered when the phase is re-run */
    ctx->status = ngx_http_foxgov_decide(r, flcf, ctx);
    ctx->waiting = 0;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


ngx_http_foxgov_ctx_t *
ngx_http_foxgov_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_foxgov_module);

    /* a subrequest shares the pool of its main request, not its call */
    if (ctx != NULL || !r->internal || r != r->main) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_foxgov_cleanup_ctx) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_foxgov_module);
            return ctx;
        }
    }

    return NULL;
}


static ngx_http_foxgov_ctx_t *
ngx_http_foxgov_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_foxgov_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_foxgov_cleanup_ctx;
    cln->data = ctx;

    ngx_http_foxgov_now(&ctx->started_sec, &ctx->started_nsec);

    if (fg_uuidv7((uint64_t) ctx->started_sec * 1000
                  + ctx->started_nsec / 1000000, ctx->execution_id)
        != FG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "foxgov: the random source failed");
        return NULL;
    }

    ctx->conf = ngx_http_get_module_loc_conf(r, ngx_http_foxgov_module);
    ctx->endpoint = -1;
    ctx->status = NGX_DECLINED;

    ngx_http_set_ctx(r, ctx, ngx_http_foxgov_module);

    return ctx;
}


static void
ngx_http_foxgov_cleanup_ctx(void *data)
{
    ngx_http_foxgov_ctx_t  *ctx = data;

    fg_usage_t  u;

    /* a call gone while it waited for Redis (strict): nothing resumes */
    ngx_http_foxgov_redis_wait_cancel(ctx->wait);
    ctx->wait = NULL;

    json_decref(ctx->auth);
    json_decref(ctx->labels);
    json_decref(ctx->permissions);
    json_decref(ctx->refusal.approval);
    fg_sha256_free(ctx->response_hash);
    fg_buffer_free(&ctx->usage_body);

    if (ctx->sse) {
        fg_sse_finish(ctx->sse_scan, &u);
    }

    ngx_http_foxgov_policy_release(ctx->policy);
}


/* ------------------------------------------------------------ headers */

static ngx_int_t
ngx_http_foxgov_begin(ngx_http_request_t *r, ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_ctx_t *ctx)
{
    u_char                     uri[256];
    fg_error_t                 err;
    ngx_int_t                  rc;
    unsigned char              md[FG_SHA256_LEN];
    ngx_http_foxgov_headers_t  hs;

    /* a call to an endpoint the adapter does not know has no record */
    if (flcf->kind == FG_CALL_MODEL) {
        ctx->endpoint = fg_adapter_endpoint_of(flcf->provider,
                                               (char *) r->uri.data,
                                               r->uri.len);
        if (ctx->endpoint < 0) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "foxgov: \"%s\" is not a %s endpoint the gateway "
                          "knows",
                          ngx_http_foxgov_printable(uri, sizeof(uri),
                                                    r->uri.data, r->uri.len),
                          fg_provider_name(flcf->provider));
            return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                           "unknown_endpoint",
                           "this path is not a %s endpoint the gateway "
                           "knows", fg_provider_name(flcf->provider));
        }
    }

    ngx_http_foxgov_scan_headers(r, &hs);

    rc = ngx_http_foxgov_trace(r, ctx, &hs);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_foxgov_authenticate(r, flcf, ctx, &hs);
    if (rc != NGX_OK) {
        return rc;
    }

    /* from here on every refusal is recorded */

    if (ctx->trace_invalid && flcf->trace == NGX_HTTP_FOXGOV_TRACE_REQUIRE) {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "invalid_traceparent",
                           "schema gate: %s traceparent, and this location "
                           "requires one (foxgov_trace require)",
                           hs.ntraceparent ? "an invalid" : "no");
    }

    /*
     * One field each: of several, a record would hold one while the
     * upstream is sent them all (Idempotency-Key passes as sent).
     */

    if (hs.nlabels > 1) {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "invalid_labels",
                           "schema gate: FoxGov-Labels is sent %ui times, "
                           "at most once is allowed", hs.nlabels);
    }

    if (hs.nidempotency > 1) {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "invalid_idempotency_key",
                           "schema gate: Idempotency-Key is sent %ui times, "
                           "at most once is allowed", hs.nidempotency);
    }

    if (fg_labels_parse(hs.labels ? (char *) hs.labels->value.data : "",
                        hs.labels ? hs.labels->value.len : 0, &ctx->labels,
                        &err)
        != FG_OK)
    {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "invalid_labels",
                           "schema gate: %s", err.msg);
    }

    if (hs.idempotency != NULL) {
        if (!fg_call_token_valid((char *) hs.idempotency->value.data,
                                 hs.idempotency->value.len))
        {
            return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema",
                           "fail", NGX_HTTP_BAD_REQUEST,
                           "invalid_idempotency_key",
                           "schema gate: Idempotency-Key is not 1..256 "
                           "printable characters without spaces");
        }

        ctx->idempotency_key = hs.idempotency->value;
    }

    if (r->args.len > 0) {
        if (fg_sha256(r->args.data, r->args.len, md) != FG_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        fg_hex_sha256(md, ctx->query_sha256);
        ctx->has_query = 1;
    }

    if (r->headers_in.content_length_n > (off_t) flcf->body_max) {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                           "body_too_large",
                           "schema gate: the request body of %O bytes is "
                           "larger than foxgov_body_max (%uz bytes)",
                           r->headers_in.content_length_n, flcf->body_max);
    }

    if (hs.approval != NULL) {
        ctx->approval = hs.approval->value;
    }

    return NGX_OK;
}


static void
ngx_http_foxgov_scan_headers(ngx_http_request_t *r,
    ngx_http_foxgov_headers_t *hs)
{
    ngx_uint_t        i, rank, best;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memzero(hs, sizeof(ngx_http_foxgov_headers_t));

    /* the token: FoxGov-Auth, Authorization: Bearer, x-api-key, api-key */
    best = 5;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        rank = 5;

        if (ngx_http_foxgov_header_is(&h[i], "foxgov-auth")) {
            rank = 1;

        } else if (ngx_http_foxgov_header_is(&h[i], "authorization")) {
            if (h[i].value.len > 7
                && ngx_strncasecmp(h[i].value.data, (u_char *) "Bearer ", 7)
                   == 0)
            {
                rank = 2;
            }

        } else if (ngx_http_foxgov_header_is(&h[i], "x-api-key")) {
            rank = 3;

        } else if (ngx_http_foxgov_header_is(&h[i], "api-key")) {
            rank = 4;

        } else if (ngx_http_foxgov_header_is(&h[i], "traceparent")) {
            hs->traceparent = &h[i];
            hs->ntraceparent++;

        } else if (ngx_http_foxgov_header_is(&h[i], "tracestate")) {
            if (hs->ntracestate < FG_TRACESTATE_MEMBERS) {
                hs->tracestate[hs->ntracestate] = &h[i];
            }
            hs->ntracestate++;

        } else if (ngx_http_foxgov_header_is(&h[i], "foxgov-labels")) {
            hs->labels = &h[i];
            hs->nlabels++;

        } else if (ngx_http_foxgov_header_is(&h[i], "foxgov-approval")) {
            hs->approval = &h[i];

        } else if (ngx_http_foxgov_header_is(&h[i], "idempotency-key")) {
            hs->idempotency = &h[i];
            hs->nidempotency++;
        }

        if (rank < best) {
            best = rank;
            hs->token = &h[i];
        }
    }

    switch (best) {
    case 1:
        hs->token_source = FG_AUTH_SOURCE_FOXGOV_AUTH;
        break;
    case 2:
        hs->token_source = FG_AUTH_SOURCE_AUTHORIZATION;
        break;
    case 3:
        hs->token_source = FG_AUTH_SOURCE_X_API_KEY;
        break;
    case 4:
        hs->token_source = FG_AUTH_SOURCE_API_KEY;
        break;
    default:
        hs->token = NULL;
    }
}


/*
 * W3C Trace Context: a valid traceparent is continued with a new span;
 * an absent or invalid one starts a trace here (and its tracestate is
 * dropped).  Several traceparent fields are invalid: the spec allows one.
 */
static ngx_int_t
ngx_http_foxgov_trace(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx,
    ngx_http_foxgov_headers_t *hs)
{
    u_char            *p;
    size_t             len;
    ngx_uint_t         i;
    fg_traceparent_t   tp;
    fg_error_t         err;
    int                rc;

    if (hs->ntraceparent == 1
        && fg_traceparent_parse((char *) hs->traceparent->value.data,
                                hs->traceparent->value.len, &tp, &err)
           == FG_OK)
    {
        rc = fg_trace_continue(&tp, &ctx->trace, ctx->traceparent);
        ctx->trace_continued = (rc == FG_OK);

    } else {
        ctx->trace_invalid = 1;
        rc = FG_ERR_SYNTAX;
    }

    if (rc != FG_OK) {
        ctx->trace_continued = 0;
        if (fg_trace_continue(NULL, &ctx->trace, ctx->traceparent) != FG_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "foxgov: the random source failed");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!ctx->trace_continued || hs->ntracestate == 0
        || hs->ntracestate > FG_TRACESTATE_MEMBERS)
    {
        return NGX_OK;
    }

    /* the combined value of every tracestate field, joined with ',' */
    len = 0;
    for (i = 0; i < hs->ntracestate; i++) {
        len += hs->tracestate[i]->value.len + 1;
    }

    if (len > FG_TRACESTATE_MAX + FG_TRACESTATE_MEMBERS) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->tracestate.data = p;

    for (i = 0; i < hs->ntracestate; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, hs->tracestate[i]->value.data,
                       hs->tracestate[i]->value.len);
    }

    ctx->tracestate.len = p - ctx->tracestate.data;

    if (fg_tracestate_check((char *) ctx->tracestate.data,
                            ctx->tracestate.len) != FG_OK)
    {
        ngx_str_null(&ctx->tracestate);
    }

    return NGX_OK;
}


/*
 * The token, verified against foxgov_auth_keys (or found in this
 * worker's cache of verified tokens), and the call's AuthContext.  A
 * refusal is 401 with no record: no decision without a verified
 * AuthContext (INV-INT-004).  The token itself is never logged.
 */
static ngx_int_t
ngx_http_foxgov_authenticate(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    ngx_http_foxgov_headers_t *hs)
{
    char                          hex[FG_SHA256_HEX_LEN + 1];
    time_t                        now;
    long                          nsec;
    u_char                       *tok;
    size_t                        len;
    json_t                       *v;
    fg_jws_t                      jws;
    fg_error_t                    err;
    fg_auth_args_t                args;
    unsigned char                 md[FG_SHA256_LEN];
    fg_sha256_t                  *h;
    const fg_jws_t               *cached;
    fg_token_cache_t             *cache;
    fg_jws_verify_opts_t          opts;
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (hs->token == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: no token in FoxGov-Auth, Authorization: "
                      "Bearer, x-api-key or api-key");
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                       "missing_token",
                       "no token: send it in FoxGov-Auth, Authorization: "
                       "Bearer, x-api-key or api-key");
    }

    tok = hs->token->value.data;
    len = hs->token->value.len;

    if (ngx_strcmp(hs->token_source, FG_AUTH_SOURCE_AUTHORIZATION) == 0) {
        tok += 7;
        len -= 7;
    }

    while (len > 0 && (*tok == ' ' || *tok == '\t')) {
        tok++;
        len--;
    }

    ngx_http_foxgov_now(&now, &nsec);

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    h = ngx_http_foxgov_sha256();

    if (len > FG_JWS_MAX_TOKEN || h == NULL
        || fg_sha256_init(h) != FG_OK
        || fg_sha256_update(h, tok, len) != FG_OK
        || fg_sha256_final(h, md) != FG_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: token refused: longer than %d bytes",
                      FG_JWS_MAX_TOKEN);
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                       "invalid_token", "token refused: longer than %d "
                       "bytes", FG_JWS_MAX_TOKEN);
    }

    fg_hex_sha256(md, hex);

    ngx_memzero(&args, sizeof(args));
    args.token_source = hs->token_source;
    args.execution_id = ctx->execution_id;
    args.trace = &ctx->trace;
    args.now_sec = now;
    args.now_nsec = nsec;

    cache = ngx_http_foxgov_token_cache(flcf->auth_keys, fmcf->token_cache);
    cached = cache ? fg_token_cache_get(cache, md, now) : NULL;

    if (cache != NULL) {
        ngx_http_foxgov_metrics_add(cached != NULL
                                    ? NGX_HTTP_FOXGOV_METRIC_CACHE_HIT
                                    : NGX_HTTP_FOXGOV_METRIC_CACHE_MISS);
    }

    if (cached != NULL) {
        /* only tokens whose claims were checked are cached (below) */
        args.claims_checked = 1;
        ctx->auth = ngx_http_foxgov_auth_context(r, ctx, cached, hex, &args,
                                                 &err);

    } else {
        ngx_memzero(&opts, sizeof(opts));
        opts.now = now;
        opts.require_exp = 1;
        opts.max_len = FG_JWS_MAX_TOKEN;

        if (fg_jws_verify(flcf->auth_keys->keys, (char *) tok, len, &opts,
                          &jws, &err)
            != FG_OK
            || fg_auth_check_claims(jws.claims, &err) != FG_OK)
        {
            fg_jws_release(&jws);
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "foxgov: token from %s refused: %s",
                          hs->token_source, err.msg);
            return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                           "invalid_token", "token refused: %s", err.msg);
        }

        ctx->auth = ngx_http_foxgov_auth_context(r, ctx, &jws, hex, &args,
                                                 &err);

        v = json_object_get(jws.claims, "exp");

        if (ctx->auth != NULL && cache != NULL) {
            /* the cache takes the verified token over */
            fg_token_cache_put(cache, md, &jws,
                               (time_t) json_integer_value(v), now);
        } else {
            fg_jws_release(&jws);
        }
    }

    if (ctx->auth == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: token refused: %s", err.msg);
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                       "invalid_token", "token refused: %s", err.msg);
    }

    v = json_object_get(ctx->auth, "tenant_id");
    ctx->tenant.data = (u_char *) json_string_value(v);
    ctx->tenant.len = json_string_length(v);

    return NGX_OK;
}


/*
 * The caller's subject (what decisions read of it), and its AuthContext
 * record written now, while the verified token is at hand (a cached one
 * is only valid until the next cache call, and the body is read in
 * between), kept in the request pool until the decision sends it.
 */
static json_t *
ngx_http_foxgov_auth_context(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_error_t *err)
{
    int         rc;
    fg_sink_t  *sink;

    sink = ngx_http_foxgov_evidence_writer();
    rc = sink != NULL
         ? fg_auth_context_write(jws, token_sha256, args, sink, err)
         : fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");

    if (ngx_http_foxgov_evidence_keep(r, rc, err, &ctx->auth_record)
        != NGX_OK)
    {
        return NULL;
    }

    return fg_auth_subject(jws, err);
}


/* ------------------------------------------------------------- decide */

static ngx_int_t
ngx_http_foxgov_decide(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx)
{
    int                           rc;
    time_t                        now;
    long                          nsec;
    char                          need[FG_MODEL_MAX + 160];
    char                          approval_id[FG_UUID_LEN + 1];
    json_t                       *body, *gates, *input, *caps;
    ngx_int_t                     nrc;
    fg_error_t                    err;
    const char                   *why;
    fg_decision_t                 d;
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (ctx->too_large) {
        return ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                           "body_too_large",
                           "schema gate: the request body is larger than "
                           "foxgov_body_max (%uz bytes)", flcf->body_max);
    }

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    gates = json_array();
    if (gates == NULL || ngx_http_foxgov_gate(gates, "authn", "pass")) {
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The bundle generation the call is decided with, taken now: the body
     * is read for its body pointers.  Refused, if there is none, at the
     * policy gate below, after the gates before it.
     */
    why = "no policy bundle";
    if (ctx->policy == NULL) {
        ctx->policy = ngx_http_foxgov_bundle_acquire(fmcf->bundle, &why);
    }

    body = NULL;

    nrc = ngx_http_foxgov_read_body(r, flcf, ctx, &body, gates);
    if (nrc != NGX_OK) {
        json_decref(gates);
        return nrc;
    }

    /* the capability gate: the token must grant what the call needs */
    if (flcf->kind == FG_CALL_MODEL) {
        ngx_snprintf((u_char *) need, sizeof(need), "model:%s%Z",
                     ctx->model.model);
    } else {
        ngx_snprintf((u_char *) need, sizeof(need), "tool:%V:%V%Z",
                     &flcf->tool, &flcf->action);
    }

    ctx->permissions = json_array();
    if (ctx->permissions != NULL
        && json_array_append_new(ctx->permissions, json_string(need)) != 0)
    {
        json_decref(ctx->permissions);
        ctx->permissions = NULL;
    }

    if (ctx->permissions == NULL) {
        json_decref(body);
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    caps = json_object_get(ctx->auth, "capabilities");

    if (!fg_auth_capable(caps, need)) {
        json_decref(body);
        nrc = ngx_http_foxgov_gate_refuse(r, ctx, gates, "capability",
                           "fail", NGX_HTTP_FORBIDDEN, "capability_denied",
                           "capability gate: %s not granted", need);
        json_decref(gates);
        return nrc;
    }

    if (ngx_http_foxgov_gate(gates, "capability", "pass") != NGX_OK) {
        json_decref(body);
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the bundle */
    if (ctx->policy == NULL) {
        json_decref(body);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "foxgov: call refused: %s", why);
        nrc = ngx_http_foxgov_gate_refuse(r, ctx, gates, "policy", "error",
                           NGX_HTTP_SERVICE_UNAVAILABLE, "policy_unavailable",
                           "policy gate: %s", why);
        json_decref(gates);
        return nrc;
    }

    input = ngx_http_foxgov_input(r, flcf, ctx, body, NULL, &err);
    json_decref(body);

    if (input == NULL) {
        json_decref(gates);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: call refused: the decision input cannot be "
                      "recorded: %s", err.msg);
        ctx->recorded = 0;
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                       "invalid_request", "the call cannot be recorded: %s",
                       err.msg);
    }

    ngx_http_foxgov_now(&now, &nsec);

    if (ngx_http_foxgov_throttles(r, ctx, input, now) != NGX_OK) {
        json_decref(input);
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = fg_policy_decide(ctx->policy->policy, input, now, &d, &err);

    if (rc != FG_OK) {
        /* d is a DENY with gate policy = error: the call fails closed */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "foxgov: the decision failed closed: %s", err.msg);
    }

    approval_id[0] = '\0';

    if (rc == FG_OK && d.decision == FG_DECISION_REQUIRE_HITL
        && ctx->approval.len > 0)
    {
        nrc = ngx_http_foxgov_approval(r, flcf, ctx, input, &d, now);
        if (nrc != NGX_OK) {
            json_decref(input);
            json_decref(gates);
            return nrc;
        }
    }

    if (d.decision == FG_DECISION_REQUIRE_HITL
        && fg_uuidv7((uint64_t) now * 1000 + nsec / 1000000, approval_id)
           != FG_OK)
    {
        json_decref(input);
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nrc = ngx_http_foxgov_record(r, ctx, &d, input, gates, approval_id);

    json_decref(input);
    json_decref(gates);

    if (nrc != NGX_OK) {
        return nrc;
    }

    if (rc != FG_OK) {
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                       "policy_error", "the decision could not be made: %s",
                       err.msg);
    }

    if (ctx->zone_full) {
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                       "zone_full", "the shared zone is full: throttle "
                       "counters and used approvals cannot be kept");
    }

    return ngx_http_foxgov_act(r, flcf, ctx, &d, approval_id);
}


/*
 * A model call's body is read only where it is looked at: the adapter's
 * members and the bundle's body pointers (fg_call_body_view()), so the
 * messages, which are most of it, are hashed but never built into a
 * document.
 */
static int
ngx_http_foxgov_model_body(ngx_http_foxgov_ctx_t *ctx, ngx_str_t *bytes,
    ngx_str_t *ctype, json_t **body, fg_error_t *err)
{
    size_t              i, n;
    const char         *ptrs[FG_POLICY_MAX_BODY_POINTERS + 3];
    const char *const  *bundle;

    ptrs[0] = "/model";
    ptrs[1] = "/stream";
    ptrs[2] = "/stream_options/include_usage";
    n = 3;

    if (ctx->policy != NULL) {
        bundle = NULL;
        i = fg_policy_body_pointers(ctx->policy->policy, &bundle);
        if (i > FG_POLICY_MAX_BODY_POINTERS) {
            i = FG_POLICY_MAX_BODY_POINTERS;
        }
        if (i > 0) {
            ngx_memcpy(&ptrs[n], bundle, i * sizeof(const char *));
            n += i;
        }
    }

    return fg_call_body_view(ngx_http_foxgov_jcs(), ngx_http_foxgov_sha256(),
                             bytes->data, bytes->len, (char *) ctype->data,
                             ctype->len, ptrs, n, &ctx->request_ref, body,
                             err);
}


/*
 * The schema gate: the body is read, hashed (JSON by its canonical
 * bytes), the model request's shape or the tool's input schema checked.
 */
static ngx_int_t
ngx_http_foxgov_read_body(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    json_t **body, json_t *gates)
{
    int                  json, rc;
    ngx_str_t            bytes, ctype;
    fg_error_t           err;
    fg_schema_report_t   report;

    if (r->headers_in.content_type != NULL) {
        ctype = r->headers_in.content_type->value;
    } else {
        ngx_str_null(&ctype);
    }

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ngx_str_null(&bytes);

    } else if (ngx_http_foxgov_body_bytes(r, &bytes) != NGX_OK) {
        return ngx_http_foxgov_gate_refuse(r, ctx, gates, "schema", "error",
                           NGX_HTTP_SERVICE_UNAVAILABLE, "body_unavailable",
                           "schema gate: the request body is not in memory");
    }

    json = (flcf->kind == FG_CALL_MODEL || flcf->schema != NULL
            || fg_content_type_is_json((char *) ctype.data, ctype.len));

    if (bytes.data != NULL) {
        ctx->request_read = 1;

        if (flcf->kind == FG_CALL_MODEL) {
            rc = ngx_http_foxgov_model_body(ctx, &bytes, &ctype, body, &err);

        } else {
            rc = fg_call_body(ngx_http_foxgov_jcs(), ngx_http_foxgov_sha256(),
                              bytes.data, bytes.len, json,
                              (char *) ctype.data, ctype.len,
                              &ctx->request_ref, body, &err);
        }

        if (rc != FG_OK) {
            /* what was refused is still identified by its bytes */
            (void) fg_blobref_raw(bytes.data, bytes.len, "application/"
                                  "octet-stream", &ctx->request_ref, NULL);

            return ngx_http_foxgov_gate_refuse(r, ctx, gates, "schema",
                           "fail", NGX_HTTP_BAD_REQUEST, "invalid_request",
                           "schema gate: the request body is not valid "
                           "JSON: %s", err.msg);
        }
    }

    if (flcf->kind == FG_CALL_MODEL) {
        if (fg_adapter_model_request(flcf->provider, (char *) r->uri.data,
                                     r->uri.len, *body, &ctx->model, &err)
            != FG_OK)
        {
            json_decref(*body);
            *body = NULL;
            return ngx_http_foxgov_gate_refuse(r, ctx, gates, "schema",
                           "fail", NGX_HTTP_BAD_REQUEST, "invalid_request",
                           "schema gate: %s", err.msg);
        }

        ctx->model_known = 1;

        return ngx_http_foxgov_gate(gates, "schema", "pass");
    }

    if (flcf->schema == NULL) {
        return ngx_http_foxgov_gate(gates, "schema", "not_applicable");
    }

    if (*body == NULL) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE)) {
            /* a read carries its input in the query, not in a body */
            return ngx_http_foxgov_gate(gates, "schema", "not_applicable");
        }

        return ngx_http_foxgov_gate_refuse(r, ctx, gates, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "schema_violation",
                           "schema gate: the tool's input schema needs a "
                           "JSON body");
    }

    rc = fg_schema_validate(flcf->schema, *body, &report);

    if (rc != FG_OK) {
        json_decref(*body);
        *body = NULL;
        return ngx_http_foxgov_gate_refuse(r, ctx, gates, "schema", "fail",
                           NGX_HTTP_BAD_REQUEST, "schema_violation",
                           "schema gate: the input does not match the "
                           "tool's schema: %s",
                           report.count ? report.line[0] : "invalid");
    }

    return ngx_http_foxgov_gate(gates, "schema", "pass");
}


/*
 * The request body as one run of bytes.  It is in memory (the module
 * raised client_body_buffer_size to foxgov_body_max); when nginx kept it
 * in more than one buffer (the part read with the headers and the rest)
 * it is joined once.
 */
static ngx_int_t
ngx_http_foxgov_body_bytes(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file || !ngx_buf_in_memory_only(cl->buf)) {
            if (ngx_buf_size(cl->buf) == 0) {
                continue;
            }
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "foxgov: the request body was written to a "
                          "temporary file; client_body_in_file_only must "
                          "be off in governed locations");
            return NGX_ERROR;
        }
        len += cl->buf->last - cl->buf->pos;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        out->data = cl->buf->pos;
        out->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        /* an empty buffer may have no memory at all (pos is NULL) */
        if (ngx_buf_size(cl->buf) == 0) {
            continue;
        }

        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static json_t *
ngx_http_foxgov_input(ngx_http_request_t *r, ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_ctx_t *ctx, json_t *body, json_t *approval,
    fg_error_t *err)
{
    fg_call_input_args_t   a;

    ngx_memzero(&a, sizeof(a));

    a.kind = (fg_call_kind_t) flcf->kind;
    a.auth = ctx->auth;

    if (flcf->kind == FG_CALL_MODEL) {
        a.provider = fg_provider_name(flcf->provider);
        a.model = ctx->model_known ? ctx->model.model : NULL;

    } else {
        a.tool = (char *) flcf->tool.data;
        a.action = (char *) flcf->action.data;
        a.risk = flcf->risk.len ? (char *) flcf->risk.data : NULL;
    }

    a.method = (char *) r->method_name.data;
    a.method_len = r->method_name.len;
    a.host = (char *) r->headers_in.server.data;
    a.host_len = r->headers_in.server.len;
    a.path = (char *) r->uri.data;
    a.path_len = r->uri.len;

    a.request = ctx->request_read ? &ctx->request_ref : NULL;
    a.body = body;

    if (ctx->policy != NULL) {
        a.npointers = fg_policy_body_pointers(ctx->policy->policy,
                                              &a.pointers);
    }

    a.labels = ctx->labels;
    a.approval = approval;

    return fg_call_decision_input(&a, err);
}


/*
 * input.counters: the THROTTLE rules that hold for this call and their
 * counters in the shared zone before this call counts.  The call takes
 * its slot now (ngx_http_foxgov_zone_take()); one that is not forwarded
 * gives it back.
 */
static ngx_int_t
ngx_http_foxgov_throttles(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx,
    json_t *input, time_t now)
{
    long            n, i;
    size_t          len;
    json_t         *counters;
    fg_error_t      err;
    fg_throttle_t   t[NGX_HTTP_FOXGOV_MAX_THROTTLES];
    long long       requests[NGX_HTTP_FOXGOV_MAX_THROTTLES];
    long long       tokens[NGX_HTTP_FOXGOV_MAX_THROTTLES];
    ngx_http_foxgov_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    n = fg_policy_throttles(ctx->policy->policy, input, t,
                            NGX_HTTP_FOXGOV_MAX_THROTTLES, &err);
    if (n < 0) {
        /* decide meets the same limit and fails closed */
        return NGX_OK;
    }

    if (n > NGX_HTTP_FOXGOV_MAX_THROTTLES) {
        n = NGX_HTTP_FOXGOV_MAX_THROTTLES;
    }

    ctx->nthrottles = 0;

    if (n > 0) {
        ctx->throttles = ngx_palloc(r->pool,
                                    n * sizeof(ngx_http_foxgov_throttle_t));
        if (ctx->throttles == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < n; i++) {
        len = ngx_strlen(t[i].rule_id);

        ctx->throttles[i].id.data = ngx_pnalloc(r->pool, len);
        if (ctx->throttles[i].id.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->throttles[i].id.data, t[i].rule_id, len);
        ctx->throttles[i].id.len = len;
        ctx->throttles[i].window = t[i].window_seconds;

        if (ngx_http_foxgov_zone_take(fmcf->zone, &ctx->tenant,
                                      &ctx->throttles[i].id,
                                      t[i].window_seconds, now, &requests[i],
                                      &tokens[i])
            != NGX_OK)
        {
            /* decided as usual, then refused: the counts cannot be kept */
            ctx->zone_full = 1;
        }

        ctx->nthrottles = i + 1;
        ctx->throttles_taken = 1;
        ctx->throttled_at = now;
    }

    ctx->nthrottles = n;

    counters = fg_call_counters(t, n, requests, tokens);
    if (counters == NULL) {
        return NGX_ERROR;
    }

    if (json_object_set_new(input, "counters", counters) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The rules ask for a human and the call carries FoxGov-Approval: a valid
 * approval bound to this tenant, tool, action and input is decided with,
 * and used up if the call then goes ahead.  One for other input keeps the
 * call held (428); one that is not a valid approval at all is a 401.
 */
static ngx_int_t
ngx_http_foxgov_approval(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    json_t *input, fg_decision_t *d, time_t now)
{
    char                          input_sha256[FG_SHA256_HEX_LEN + 1];
    int                           rc;
    time_t                        exp;
    json_t                       *approval, *v;
    ngx_str_t                     jti;
    ngx_int_t                     used;
    fg_error_t                    err;
    fg_blobref_t                  empty;
    fg_decision_t                 d2;
    fg_approval_binding_t         b;
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (flcf->kind != FG_CALL_TOOL) {
        return NGX_OK;
    }

    if (flcf->approval_keys == NULL) {
        ctx->approval_note = "no foxgov_approval_keys are configured here";
        return NGX_OK;
    }

    if (ctx->request_read) {
        fg_hex_sha256(ctx->request_ref.sha256, input_sha256);
    } else {
        (void) fg_blobref_raw("", 0, "application/octet-stream", &empty,
                              NULL);
        fg_hex_sha256(empty.sha256, input_sha256);
    }

    b.tenant_id = (char *) ctx->tenant.data;
    b.tool = (char *) flcf->tool.data;
    b.action = (char *) flcf->action.data;
    b.input_sha256 = input_sha256;

    approval = fg_approval_verify_exp(flcf->approval_keys->keys,
                                      (char *) ctx->approval.data,
                                      ctx->approval.len, &b, now, 0, &exp,
                                      &err);

    if (approval == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: FoxGov-Approval refused: %s", err.msg);

        ngx_snprintf((u_char *) ctx->approval_reason,
                     sizeof(ctx->approval_reason) - 1, "%s%Z", err.msg);
        ctx->approval_note = ctx->approval_reason;
        ctx->approval_invalid = (err.code != FG_ERR_MISMATCH);

        return NGX_OK;
    }

    if (json_object_set(input, "approval", approval) != 0) {
        json_decref(approval);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = fg_policy_decide(ctx->policy->policy, input, now, &d2, &err);

    if (rc != FG_OK
        || (d2.decision != FG_DECISION_ALLOW
            && d2.decision != FG_DECISION_ROUTE))
    {
        /* not forwarded: the approval is not used up */
        json_decref(approval);
        if (rc == FG_OK) {
            *d = d2;
        } else {
            json_object_set_new(input, "approval", json_null());
        }
        return NGX_OK;
    }

    v = json_object_get(approval, "jti");
    jti.data = (u_char *) json_string_value(v);
    jti.len = json_string_length(v);

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    used = ngx_http_foxgov_zone_use_once(fmcf->zone, &ctx->tenant, &jti,
                                         exp, now);
    json_decref(approval);

    if (used == NGX_ERROR) {
        /* recorded as held; answered 503 (the id cannot be kept) */
        ctx->zone_full = 1;
        json_object_set_new(input, "approval", json_null());
        return NGX_OK;
    }

    if (used == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: FoxGov-Approval refused: already used");
        ctx->approval_note = "the approval has already been used";
        json_object_set_new(input, "approval", json_null());
        return NGX_OK;
    }

    *d = d2;

    return NGX_OK;
}


/*
 * Send the AuthContext and write and send the PolicyDecisionRecord: after
 * this the call may be forwarded (no forward without a decision record).
 */
static ngx_int_t
ngx_http_foxgov_record(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx,
    fg_decision_t *d, json_t *input, json_t *gates,
    const char *approval_request_id)
{
    int                           rc;
    time_t                        now;
    long                          nsec;
    fg_sink_t                    *sink;
    fg_error_t                    err;
    fg_policy_record_args_t       args;

    ngx_http_foxgov_now(&now, &nsec);

    ngx_memzero(&args, sizeof(args));
    args.tenant_id = (char *) ctx->tenant.data;
    args.execution_id = ctx->execution_id;
    args.trace = &ctx->trace;
    args.auth_context_sha256 = ctx->auth_hash;

    if (ctx->policy != NULL) {
        args.bundle_revision = fg_bundle_revision(ctx->policy->bundle);
        args.bundle_sha256 = fg_bundle_sha256(ctx->policy->bundle);
    }

    args.gates_before = gates;
    args.permissions_checked = ctx->permissions;
    args.approval_request_id = approval_request_id[0]
                               ? approval_request_id : NULL;
    args.now_sec = now;
    args.now_nsec = nsec;

    /*
     * Strict mode, for a call to be forwarded: its two records are
     * followed until Redis acknowledges them (ngx_http_foxgov_act waits).
     */
    if (ctx->conf->evidence == NGX_HTTP_FOXGOV_EVIDENCE_STRICT
        && (d->decision == FG_DECISION_ALLOW
            || d->decision == FG_DECISION_ROUTE))
    {
        ctx->wait = ngx_http_foxgov_redis_wait_begin(r);
    }

    /* no call goes on without room kept for its last record */
    if (ngx_http_foxgov_evidence_hold(r, ctx) != NGX_OK) {
        ngx_http_foxgov_redis_wait_end(ctx->wait);
        ctx->decision_hash[0] = '\0';
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                       "evidence_error", "the evidence cannot be kept");
    }

    /* the two records go to Redis in one write, at batch_end() */
    ngx_http_foxgov_redis_batch_begin();

    /* the AuthContext goes first: the decision links it by its hash */
    rc = ngx_http_foxgov_evidence_emit_bytes(r, ctx, FG_RECORD_AUTH_CONTEXT,
                                             &ctx->auth_record,
                                             ctx->auth_hash);
    if (rc != NGX_OK) {
        ngx_http_foxgov_redis_batch_end();
        ngx_http_foxgov_redis_wait_end(ctx->wait);
        ctx->decision_hash[0] = '\0';
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                       "evidence_error", "the evidence cannot be written");
    }

    sink = ngx_http_foxgov_evidence_writer();
    rc = sink != NULL
         ? fg_policy_decision_write(d, input, &args, sink, &err)
         : fg_error_set(&err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");

    rc = ngx_http_foxgov_evidence_emit_written(r, ctx,
                                               FG_RECORD_POLICY_DECISION, rc,
                                               &err, ctx->decision_hash);
    ngx_http_foxgov_redis_batch_end();
    ngx_http_foxgov_redis_wait_end(ctx->wait);

    if (rc != NGX_OK) {
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                       "evidence_error", "the decision cannot be recorded");
    }

    ctx->decision.data = (u_char *) fg_decision_name(d->decision);
    ctx->decision.len = ngx_strlen(ctx->decision.data);

    ngx_http_foxgov_metrics_decision(ctx->conf->kind, d->decision);

    ctx->recorded = 1;

    return NGX_OK;
}


/* Forward the call, or answer the decision's refusal. */
static ngx_int_t
ngx_http_foxgov_act(ngx_http_request_t *r, ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_ctx_t *ctx, fg_decision_t *d,
    const char *approval_request_id)
{
    size_t                         len;
    char                           input_sha256[FG_SHA256_HEX_LEN + 1];
    fg_blobref_t                   empty;
    ngx_http_foxgov_credential_t  *cred;
    ngx_http_foxgov_main_conf_t   *fmcf;

    switch (d->decision) {

    case FG_DECISION_ALLOW:
    case FG_DECISION_ROUTE:
        break;

    case FG_DECISION_DENY:
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                                      "policy_denied", "%s",
                                      d->justification);

    case FG_DECISION_REQUIRE_STEP_UP:
        ctx->refusal.acr_values = d->acr_values;
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                      "step_up_required", "%s",
                                      d->justification);

    case FG_DECISION_THROTTLE:
        ctx->refusal.retry_after = d->retry_after_seconds;
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "rate_limited", "%s",
                                      d->justification);

    case FG_DECISION_REQUIRE_HITL:
    default:
        if (ctx->approval_invalid) {
            return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                           "invalid_approval", "FoxGov-Approval refused: %s",
                           ctx->approval_note);
        }

        if (flcf->kind != FG_CALL_TOOL) {
            /* approvals are bound to a tool call (docs/records.md) */
            return ngx_http_foxgov_refuse(r, ctx, 428, "approval_required",
                           "%s; a model call cannot be approved call by "
                           "call", d->justification);
        }

        if (ctx->request_read) {
            fg_hex_sha256(ctx->request_ref.sha256, input_sha256);
        } else {
            (void) fg_blobref_raw("", 0, "application/octet-stream",
                                  &empty, NULL);
            fg_hex_sha256(empty.sha256, input_sha256);
        }

        ctx->refusal.approval = fg_call_approval_request(approval_request_id,
                                    (char *) ctx->tenant.data,
                                    (char *) flcf->tool.data,
                                    (char *) flcf->action.data,
                                    input_sha256,
                                    ngx_time() + flcf->approval_ttl);

        return ngx_http_foxgov_refuse(r, ctx, 428, "approval_required",
                                      "%s%s%s", d->justification,
                                      ctx->approval_note ? "; " : "",
                                      ctx->approval_note
                                      ? ctx->approval_note : "");
    }

    cred = ngx_http_foxgov_pick_credential(flcf, &ctx->tenant);

    if (flcf->credentials != NULL && cred == NULL) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "foxgov: no foxgov_credential of this location is "
                      "bound to tenant \"%V\"", &ctx->tenant);
        return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                       "credential_unavailable",
                       "no credential of this location serves tenant %V",
                       &ctx->tenant);
    }

    if (d->decision == FG_DECISION_ROUTE && d->route != NULL) {
        len = ngx_strlen(d->route);
        ctx->route.data = ngx_pnalloc(r->pool, len);
        if (ctx->route.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_memcpy(ctx->route.data, d->route, len);
        ctx->route.len = len;
    }

    if (ngx_http_foxgov_upstream_headers(r, ctx, cred) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->conf->evidence == NGX_HTTP_FOXGOV_EVIDENCE_STRICT) {
        switch (ngx_http_foxgov_redis_wait_state(ctx->wait)) {

        case 1:
            break;

        case 0:
            /*
             * Suspended, not blocking: the acknowledgements resume it.  A
             * timer of the request's own (the transport's are cancelable)
             * bounds the wait and keeps a gracefully exiting worker until
             * the call is answered.
             */
            ngx_http_foxgov_redis_wait_suspend(ctx->wait);
            r->read_event_handler = ngx_http_test_reading;
            r->write_event_handler = ngx_http_foxgov_evidence_resume;
            fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);
            ngx_add_timer(r->connection->write,
                          fmcf->redis->connect_timeout
                          + fmcf->redis->timeout);
            ctx->status = NGX_AGAIN;
            return NGX_AGAIN;

        default:
            return ngx_http_foxgov_evidence_refuse(r, ctx);
        }
    }

    ctx->forwarded = 1;

    return NGX_DECLINED;
}


/* Strict mode: Redis has not acknowledged the call's records. */
static ngx_int_t
ngx_http_foxgov_evidence_refuse(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "foxgov: call refused: foxgov_evidence strict and Redis "
                  "did not acknowledge its records (they are spooled)");

    ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_STRICT_REFUSED);

    return ngx_http_foxgov_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                   "evidence_unavailable", "the call's evidence could not "
                   "be stored (foxgov_evidence strict); retry later");
}


void
ngx_http_foxgov_evidence_resume(ngx_http_request_t *r)
{
    ngx_int_t                state;
    ngx_event_t             *wev;
    ngx_http_foxgov_ctx_t   *ctx;
    ngx_http_foxgov_wait_t  *w;

    ctx = ngx_http_foxgov_get_ctx(r);
    wev = r->connection->write;

    state = (ctx != NULL && ctx->wait != NULL)
            ? ngx_http_foxgov_redis_wait_state(ctx->wait) : 1;

    if (state == 0 && !wev->timedout) {
        return;                 /* a write event of its own: still waiting */
    }

    wev->timedout = 0;
    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    r->write_event_handler = ngx_http_core_run_phases;

    if (ctx != NULL && ctx->wait != NULL) {
        w = ctx->wait;
        ctx->wait = NULL;

        ngx_http_foxgov_redis_wait_cancel(w);

        if (state == 1) {
            ctx->forwarded = 1;
            ctx->status = NGX_DECLINED;

        } else {
            (void) ngx_http_foxgov_evidence_refuse(r, ctx);
        }
    }

    ngx_http_core_run_phases(r);
}


/* The credential bound to the tenant, else one bound to none. */
static ngx_http_foxgov_credential_t *
ngx_http_foxgov_pick_credential(ngx_http_foxgov_loc_conf_t *flcf,
    ngx_str_t *tenant)
{
    ngx_uint_t                     i;
    ngx_http_foxgov_credential_t  *c, *any;

    if (flcf->credentials == NULL) {
        return NULL;
    }

    c = flcf->credentials->elts;
    any = NULL;

    for (i = 0; i < flcf->credentials->nelts; i++) {
        if (c[i].tenant.len == 0) {
            any = &c[i];
            continue;
        }

        if (c[i].tenant.len == tenant->len
            && ngx_strncmp(c[i].tenant.data, tenant->data, tenant->len) == 0)
        {
            return &c[i];
        }
    }

    return any;
}


/* ------------------------------------------------------------ refusals */

void
ngx_http_foxgov_release_throttles(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    ngx_uint_t                    i;
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (!ctx->throttles_taken || ctx->forwarded) {
        return;
    }

    ctx->throttles_taken = 0;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    for (i = 0; i < ctx->nthrottles; i++) {
        ngx_http_foxgov_zone_release(fmcf->zone, &ctx->tenant,
                                     &ctx->throttles[i].id,
                                     ctx->throttles[i].window,
                                     ctx->throttled_at);
    }
}


/*
 * A body without a declared length went past foxgov_body_max after the
 * access phase had stopped waiting for it: nginx answers 413 itself, and
 * the header filter calls this so the refusal is recorded all the same.
 */
void
ngx_http_foxgov_access_too_large(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    ngx_http_foxgov_loc_conf_t  *flcf;

    flcf = ctx->conf;

    (void) ngx_http_foxgov_gate_refuse(r, ctx, NULL, "schema", "fail",
                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                       "schema gate: the request body is larger than "
                       "foxgov_body_max (%uz bytes)", flcf->body_max);
}


/*
 * A gate stopped the call before the bundle decided: the decision is a
 * DENY naming the gate, recorded like any other, then answered.
 */
static ngx_int_t
ngx_http_foxgov_gate_refuse(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx,
    json_t *gates, const char *gate, const char *result, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char                       *p, buf[sizeof(ctx->refusal.message)];
    va_list                       args;
    json_t                       *input;
    ngx_int_t                     rc;
    fg_error_t                    err;
    fg_decision_t                 d;
    ngx_http_foxgov_main_conf_t  *fmcf;
    ngx_http_foxgov_loc_conf_t   *flcf;
    const char                   *why;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf) - 1, fmt, args);
    va_end(args);

    (void) ngx_http_foxgov_printable((u_char *) ctx->refusal.message,
                                     sizeof(ctx->refusal.message), buf,
                                     p - buf);

    flcf = ctx->conf;
    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    if (gates == NULL) {
        gates = json_array();
        if (gates == NULL
            || ngx_http_foxgov_gate(gates, "authn", "pass") != NGX_OK)
        {
            json_decref(gates);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        /* the caller keeps its reference */
        json_incref(gates);
    }

    if (ngx_http_foxgov_gate(gates, gate, result) != NGX_OK) {
        json_decref(gates);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->policy == NULL) {
        ctx->policy = ngx_http_foxgov_bundle_acquire(fmcf->bundle, &why);
    }

    fg_decision_init(&d, FG_DECISION_DENY, ctx->refusal.message);

    input = ngx_http_foxgov_input(r, flcf, ctx, NULL, NULL, &err);
    if (input == NULL) {
        json_decref(gates);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: the refusal cannot be recorded: %s", err.msg);
        return ngx_http_foxgov_refuse(r, ctx, status, code, "%s",
                                      ctx->refusal.message);
    }

    rc = ngx_http_foxgov_record(r, ctx, &d, input, gates, "");

    json_decref(input);
    json_decref(gates);

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "foxgov: call refused (%ui %s): %s", status, code,
                  ctx->refusal.message);

    return ngx_http_foxgov_refuse(r, ctx, status, code, "%s",
                                  ctx->refusal.message);
}


/*
 * Note the refusal; the access phase answers it, once (now, or when it is
 * re-run after the body was read).
 */
static ngx_int_t
ngx_http_foxgov_refuse(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    u_char   *p, buf[sizeof(ctx->refusal.message)];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf) - 1, fmt, args);
    va_end(args);

    (void) ngx_http_foxgov_printable((u_char *) ctx->refusal.message,
                                     sizeof(ctx->refusal.message), buf,
                                     p - buf);

    ctx->refused = 1;
    ctx->refusal.status = status;
    ctx->refusal.code = code;

    return NGX_DONE;
}


/* {"gate": gate, "result": result}, built directly (json_pack parses its
 * format string on every call) */
static ngx_int_t
ngx_http_foxgov_gate(json_t *gates, const char *gate, const char *result)
{
    json_t  *o;

    o = json_object();

    if (o == NULL
        || json_object_set_new(o, "gate", json_string(gate)) != 0
        || json_object_set_new(o, "result", json_string(result)) != 0)
    {
        json_decref(o);
        return NGX_ERROR;
    }

    if (json_array_append_new(gates, o) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * src as a NUL-terminated string for a message or a log line: control
 * characters (a decoded path, a JSON key in a schema error) written as
 * \xHH, as core's messages write them, so that what a client sends
 * cannot start a line of the error log; cut with "..." to fit size.
 */
static u_char *
ngx_http_foxgov_printable(u_char *dst, size_t size, const u_char *src,
    size_t len)
{
    u_char  *p, *last;
    size_t   i;

    p = dst;
    last = dst + size - sizeof("...");

    for (i = 0; i < len; i++) {
        if (src[i] >= 0x20 && src[i] != 0x7f) {
            if (p == last) {
                break;
            }
            *p++ = src[i];
            continue;
        }

        if (last - p < 4) {
            break;
        }
        p = ngx_sprintf(p, "\\x%02xd", (int) src[i]);
    }

    if (i < len) {
        p = ngx_cpymem(p, "...", 3);
    }

    *p = '\0';

    return dst;
}


static void
ngx_http_foxgov_now(time_t *sec, long *nsec)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    *sec = tp->sec;
    *nsec = (long) tp->msec * 1000000;
}

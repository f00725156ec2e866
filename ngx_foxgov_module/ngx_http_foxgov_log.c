
/*
 * ngx_http_foxgov_log.c -- the end of a governed call: its
 * ModelCallRecord or ToolCallRecord, completed once the response is over
 * -- relayed in full, refused by the gateway, or cut short by the client
 * or the upstream (the outcome says which) -- and the tokens it used
 * counted against the THROTTLE rules that held for it.
 *
 * A response relayed in full is recorded by the body filter when its
 * last buffer has been hashed and before that buffer is passed on, so no
 * client ever holds a whole response whose call record is not yet
 * written (a worker killed between the last byte and the log phase would
 * otherwise lose it: with lingering close the client sees the end of the
 * response before nginx frees the request).  Every other call is recorded
 * in the log phase, which runs for every request nginx finishes, aborted
 * ones included, so every call that has a decision record gets its call
 * record, once.
 */


#include "ngx_http_foxgov_common.h"


static const char *ngx_http_foxgov_outcome(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);
static void ngx_http_foxgov_usage(ngx_http_request_t *r,
    ngx_http_foxgov_loc_conf_t *flcf, ngx_http_foxgov_ctx_t *ctx,
    fg_usage_t *u);
static ngx_uint_t ngx_http_foxgov_upstream_answered(ngx_http_request_t *r);


ngx_int_t
ngx_http_foxgov_log_handler(ngx_http_request_t *r)
{
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_http_foxgov_get_ctx(r);

    if (ctx != NULL && r == r->main) {
        ngx_http_foxgov_call_record(r, ctx);
    }

    return NGX_OK;
}


void
ngx_http_foxgov_call_record(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    int                           rc;
    char                          hash[FG_SHA256_HEX_LEN + 1];
    long                          nsec;
    time_t                        now;
    json_t                       *cost;
    fg_sink_t                    *sink;
    ngx_time_t                   *tp;
    ngx_uint_t                    i;
    long long                     tokens;
    fg_usage_t                    usage;
    fg_error_t                    err;
    fg_blobref_t                  response;
    fg_call_record_args_t         a;
    ngx_http_foxgov_loc_conf_t   *flcf;
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (!ctx->recorded || ctx->logged) {
        return;
    }

    ctx->logged = 1;

    ngx_http_foxgov_release_throttles(r, ctx);

    /* the location that decided, also after an internal redirect */
    flcf = ctx->conf;
    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    tp = ngx_timeofday();
    now = tp->sec;
    nsec = (long) tp->msec * 1000000;

    ngx_memzero(&a, sizeof(a));

    a.kind = (fg_call_kind_t) flcf->kind;
    a.tenant_id = (char *) ctx->tenant.data;
    a.execution_id = ctx->execution_id;
    a.trace = &ctx->trace;
    a.policy_decision_sha256 = ctx->decision_hash;

    a.outcome = ngx_http_foxgov_outcome(r, ctx);
    a.status = ctx->status_sent ? (int) ctx->status_sent : 0;

    if (a.status == NGX_HTTP_CLIENT_CLOSED_REQUEST) {
        /* 499 is nginx's note in its log; no status line was sent */
        a.status = 0;
    }

    fg_usage_init(&usage);

    if (ctx->forwarded && ctx->response_hash != NULL
        && ctx->response_size > 0 && ngx_http_foxgov_upstream_answered(r))
    {
        if (fg_sha256_final(ctx->response_hash, response.sha256) == FG_OK) {
            response.size_bytes = ctx->response_size;
            ngx_memcpy(response.content_type, ctx->response_type,
                       FG_CONTENT_TYPE_MAX);
            a.response = &response;
        }
    }

    if (flcf->kind == FG_CALL_MODEL) {
        a.provider = flcf->provider;
        a.endpoint = (fg_endpoint_t) ctx->endpoint;
        a.model = ctx->model_known ? ctx->model.model : NULL;
        a.stream = ctx->model_known ? ctx->model.stream : 0;

        if (ctx->forwarded) {
            ngx_http_foxgov_usage(r, flcf, ctx, &usage);
        }

        a.usage = &usage;
        a.upstream_request_id = ctx->upstream_request_id.len
                                ? (char *) ctx->upstream_request_id.data
                                : NULL;

    } else {
        a.tool = (char *) flcf->tool.data;
        a.action = (char *) flcf->action.data;
        a.risk = flcf->risk.len ? (char *) flcf->risk.data : NULL;
        a.method = (char *) r->method_name.data;
        a.method_len = r->method_name.len;
        a.host = (char *) r->headers_in.server.data;
        a.host_len = r->headers_in.server.len;
        a.path = (char *) r->uri.data;
        a.path_len = r->uri.len;
        a.query_sha256 = ctx->has_query ? ctx->query_sha256 : NULL;
        a.input_schema_sha256 = flcf->schema ? flcf->schema_sha256 : NULL;

        if (ctx->idempotency_key.len > 0) {
            a.idempotency_key = ngx_pnalloc(r->pool,
                                            ctx->idempotency_key.len + 1);
            if (a.idempotency_key != NULL) {
                ngx_memcpy((u_char *) a.idempotency_key,
                           ctx->idempotency_key.data,
                           ctx->idempotency_key.len);
                ((u_char *) a.idempotency_key)[ctx->idempotency_key.len]
                    = '\0';
            }
        }
    }

    a.request = ctx->request_read ? &ctx->request_ref : NULL;
    a.permissions_checked = ctx->permissions;
    a.redactions = ctx->redactions;
    a.nredactions = ctx->nredactions;
    a.labels = ctx->labels;

    cost = NULL;
    if (flcf->kind == FG_CALL_MODEL && ctx->policy != NULL
        && ctx->policy->prices != NULL)
    {
        cost = fg_call_cost(ctx->policy->prices,
                            fg_bundle_revision(ctx->policy->bundle),
                            a.model, &usage);
    }
    a.cost = cost;

    a.started_sec = ctx->started_sec;
    a.started_nsec = ctx->started_nsec;
    a.finished_sec = now;
    a.finished_nsec = nsec;

    sink = ngx_http_foxgov_evidence_writer();
    rc = sink != NULL
         ? fg_call_record_write(&a, sink, &err)
         : fg_error_set(&err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");

    /* on error a defect: the call happened, and the log says so (alert) */
    (void) ngx_http_foxgov_evidence_emit_written(r, ctx,
                                                 flcf->kind == FG_CALL_MODEL
                                                 ? FG_RECORD_MODEL_CALL
                                                 : FG_RECORD_TOOL_CALL,
                                                 rc, &err, hash);
    json_decref(cost);

    /* the tokens it used count against its THROTTLE rules */
    tokens = usage.total_tokens;
    if (tokens < 0 && usage.input_tokens >= 0) {
        tokens = usage.input_tokens
                 + (usage.output_tokens >= 0 ? usage.output_tokens : 0);
    }

    if (ctx->forwarded && tokens > 0) {
        for (i = 0; i < ctx->nthrottles; i++) {
            (void) ngx_http_foxgov_zone_add_count(fmcf->zone, &ctx->tenant,
                                              &ctx->throttles[i].id,
                                              ctx->throttles[i].window,
                                              now, 0, tokens);
        }
    }
}


/* 1 when the response came from the upstream, not from nginx itself. */
static ngx_uint_t
ngx_http_foxgov_upstream_answered(ngx_http_request_t *r)
{
    return r->upstream != NULL && r->upstream->headers_in.status_n != 0;
}


static const char *
ngx_http_foxgov_outcome(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx)
{
    ngx_uint_t  status;

    if (!ctx->forwarded || ctx->refused) {
        return FG_OUTCOME_DENIED;
    }

    status = ctx->status_sent;

    if (r->upstream != NULL && !ngx_http_foxgov_upstream_answered(r)) {
        if (r->connection->error
            || status == NGX_HTTP_CLIENT_CLOSED_REQUEST)
        {
            return FG_OUTCOME_CLIENT_ABORTED;
        }

        return (status == NGX_HTTP_GATEWAY_TIME_OUT) ? FG_OUTCOME_TIMEOUT
                                                     : FG_OUTCOME_UPSTREAM_ERROR;
    }

    if (ctx->response_done || r->header_only) {
        return (status >= 500) ? FG_OUTCOME_UPSTREAM_ERROR
                               : FG_OUTCOME_COMPLETED;
    }

    if (r->connection->error || status == NGX_HTTP_CLIENT_CLOSED_REQUEST) {
        return FG_OUTCOME_CLIENT_ABORTED;
    }

    if (r->upstream != NULL) {
        return FG_OUTCOME_UPSTREAM_ABORTED;
    }

    return FG_OUTCOME_CLIENT_ABORTED;
}


static void
ngx_http_foxgov_usage(ngx_http_request_t *r, ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_ctx_t *ctx, fg_usage_t *u)
{
    if (ctx->sse) {
        fg_sse_finish(ctx->sse_scan, u);
        ctx->sse = 0;
        return;
    }

    if (!ctx->json_response || ctx->usage_overflow || !ctx->response_done
        || ctx->usage_body.len == 0)
    {
        return;
    }

    if (fg_adapter_usage_text(flcf->provider, (fg_endpoint_t) ctx->endpoint,
                              (const char *) ctx->usage_body.data,
                              ctx->usage_body.len, u)
        == FG_ERR_SYNTAX)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "foxgov: the JSON response cannot be read for usage: "
                      "not one object, or \"model\" or \"usage\" twice");
    }
}

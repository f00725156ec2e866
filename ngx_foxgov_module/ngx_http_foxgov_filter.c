
/*
 * ngx_http_foxgov_filter.c -- the filters of a governed call:
 *
 *   header filter        FoxGov-Execution-Id and FoxGov-Decision-Hash on
 *                        every governed response; for a forwarded call,
 *                        the response's hashing and usage reading start;
 *   body filter          the response is hashed as it passes, buffer by
 *                        buffer, and never held back: an SSE stream
 *                        reaches the client chunk by chunk as it arrives
 *                        (its usage read by fg_sse as it goes by), a
 *                        JSON response is also copied, up to a bound, to
 *                        read its usage at the end;
 *   request body filter  foxgov_body_max for bodies without a declared
 *                        length (chunked): reading stops at the bound.
 *
 * The module is a filter placed like any other: after the copy filter
 * (which brings file buffers into memory when filter_need_in_memory is
 * set) and before gzip and chunked, so what is hashed is the body as the
 * upstream sent it.
 */


#include "ngx_http_foxgov_common.h"


static ngx_int_t ngx_http_foxgov_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_foxgov_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_foxgov_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_foxgov_response_start(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;
static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;


ngx_int_t
ngx_http_foxgov_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_foxgov_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_foxgov_body_filter;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_foxgov_request_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_foxgov_header_filter(ngx_http_request_t *r)
{
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_http_foxgov_get_ctx(r);

    if (ctx == NULL || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx->status_sent = r->headers_out.status;

    if (ctx->too_large && ctx->auth != NULL && !ctx->recorded) {
        ngx_http_foxgov_access_too_large(r, ctx);
    }

    if (ngx_http_foxgov_set_header(r, "FoxGov-Execution-Id",
                                   (u_char *) ctx->execution_id,
                                   FG_UUID_LEN)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->decision_hash[0]
        && ngx_http_foxgov_set_header(r, "FoxGov-Decision-Hash",
                                      (u_char *) ctx->decision_hash,
                                      FG_SHA256_HEX_LEN)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->forwarded && !ctx->refused) {
        ngx_http_foxgov_response_start(r, ctx);
    }

    return ngx_http_next_header_filter(r);
}


/*
 * A forwarded call's response begins: hash it, and for a model call read
 * its usage (SSE as it streams, JSON when complete) and the provider's
 * request id.
 */
static void
ngx_http_foxgov_response_start(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    ngx_str_t                   *ct;
    ngx_uint_t                   i, k;
    ngx_list_part_t             *part;
    ngx_table_elt_t             *h;
    ngx_http_foxgov_loc_conf_t  *flcf;

    static ngx_str_t  ids[FG_PROVIDERS][2] = {
        { ngx_string("x-request-id"), ngx_null_string },
        { ngx_string("apim-request-id"), ngx_string("x-request-id") },
        { ngx_string("request-id"), ngx_null_string }
    };

    flcf = ctx->conf;

    ctx->response_started = 1;

    ctx->response_hash = fg_sha256_new();
    if (ctx->response_hash == NULL
        || fg_sha256_init(ctx->response_hash) != FG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "foxgov: no memory to hash the response");
        fg_sha256_free(ctx->response_hash);
        ctx->response_hash = NULL;
        return;
    }

    ct = &r->headers_out.content_type;

    fg_content_type_record((char *) ct->data, ct->len, ctx->response_type);

    /* file buffers (a large proxied response) are read in by copy filter */
    r->filter_need_in_memory = 1;

    if (flcf->kind != FG_CALL_MODEL) {
        return;
    }

    if (ct->len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(ct->data, (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1) == 0)
    {
        ctx->sse_scan = ngx_palloc(r->pool, sizeof(fg_sse_t));
        if (ctx->sse_scan == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "foxgov: no memory to read the stream's usage");
        } else {
            fg_sse_init(ctx->sse_scan, flcf->provider,
                        (fg_endpoint_t) ctx->endpoint);
            ctx->sse = 1;
        }

    } else if (fg_content_type_is_json((char *) ct->data, ct->len)) {
        fg_buffer_init(&ctx->usage_body, NGX_HTTP_FOXGOV_USAGE_BODY_MAX);
        ctx->json_response = 1;
    }

    /* the provider's request id, for support tickets */
    for (k = 0; k < 2 && ids[flcf->provider][k].len; k++) {

        part = &r->headers_out.headers.part;
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

            if (h[i].hash != 0
                && h[i].key.len == ids[flcf->provider][k].len
                && ngx_strncasecmp(h[i].key.data,
                                   ids[flcf->provider][k].data,
                                   h[i].key.len) == 0
                && fg_call_token_valid((char *) h[i].value.data,
                                       h[i].value.len))
            {
                ctx->upstream_request_id.data = ngx_pnalloc(r->pool,
                                                      h[i].value.len + 1);
                if (ctx->upstream_request_id.data == NULL) {
                    return;
                }
                ngx_memcpy(ctx->upstream_request_id.data, h[i].value.data,
                           h[i].value.len);
                ctx->upstream_request_id.data[h[i].value.len] = '\0';
                ctx->upstream_request_id.len = h[i].value.len;
                return;
            }
        }
    }
}


static ngx_int_t
ngx_http_foxgov_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                  n;
    ngx_buf_t              *b;
    ngx_chain_t            *cl;
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_http_foxgov_get_ctx(r);

    if (ctx == NULL || ctx->response_hash == NULL || r != r->main
        || ctx->response_done)
    {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            n = b->last - b->pos;

            if (n > 0) {
                fg_sha256_update(ctx->response_hash, b->pos, n);
                ctx->response_size += n;

                if (ctx->sse) {
                    (void) fg_sse_feed(ctx->sse_scan, b->pos, n);

                } else if (ctx->json_response && !ctx->usage_overflow
                           && fg_buffer_append(&ctx->usage_body, b->pos, n)
                              != FG_OK)
                {
                    /* too big to read for usage: usage stays unknown */
                    ctx->usage_overflow = 1;
                    fg_buffer_free(&ctx->usage_body);
                }
            }

        } else if (ngx_buf_size(b) > 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "foxgov: a response buffer is not in memory; "
                          "the response cannot be hashed");
            fg_sha256_free(ctx->response_hash);
            ctx->response_hash = NULL;
            return ngx_http_next_body_filter(r, in);
        }

        if (b->last_buf) {
            ctx->response_done = 1;
        }
    }

    if (ctx->response_done) {
        /* recorded before the client can have the whole response */
        ngx_http_foxgov_call_record(r, ctx);
    }

    return ngx_http_next_body_filter(r, in);
}


/*
 * foxgov_body_max for a body whose length is not declared: the first
 * byte beyond the bound ends the reading with 413, which the access
 * phase answers (with its evidence) when it is still waiting, or nginx
 * when the body arrived in several reads.
 */
static ngx_int_t
ngx_http_foxgov_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                 *cl;
    ngx_http_foxgov_ctx_t       *ctx;
    ngx_http_foxgov_loc_conf_t  *flcf;

    ctx = ngx_http_foxgov_get_ctx(r);

    if (ctx == NULL || !ctx->waiting) {
        return ngx_http_next_request_body_filter(r, in);
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_foxgov_module);

    for (cl = in; cl; cl = cl->next) {
        ctx->body_seen += ngx_buf_size(cl->buf);
    }

    if (ctx->body_seen > (off_t) flcf->body_max) {
        ctx->too_large = 1;
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    return ngx_http_next_request_body_filter(r, in);
}


/*
 * ngx_http_foxgov_reply.c -- the gateway's own answers: the status of
 * DESIGN.md's table and an OpenAI-shaped JSON error body (built by
 * fg_call_error_body()), with WWW-Authenticate for 401 (RFC 6750, and
 * RFC 9470 for step-up) and Retry-After for 429.  FoxGov-Execution-Id
 * and FoxGov-Decision-Hash are added by the header filter, as on every
 * governed response.
 */


#include "ngx_http_foxgov_common.h"


static ngx_int_t ngx_http_foxgov_send(ngx_http_request_t *r,
    ngx_uint_t status, fg_buffer_t *body);


ngx_int_t
ngx_http_foxgov_reply(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx)
{
    u_char                     *p, buf[512];
    ngx_int_t                   rc;
    fg_buffer_t                 body;
    ngx_http_foxgov_refusal_t  *rf;

    rf = &ctx->refusal;
    ctx->replied = 1;

    ngx_http_foxgov_release_throttles(r, ctx);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    fg_buffer_init(&body, 64 * 1024);

    if (fg_call_error_body(rf->code, rf->message, ctx->execution_id,
                           ctx->decision_hash[0] ? ctx->decision_hash : NULL,
                           rf->approval, &body)
        != FG_OK)
    {
        fg_buffer_free(&body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rf->status == NGX_HTTP_UNAUTHORIZED) {
        if (rf->acr_values != NULL) {
            p = ngx_snprintf(buf, sizeof(buf),
                             "Bearer error=\"insufficient_user_"
                             "authentication\", error_description=\"a "
                             "stronger authentication is required\", "
                             "acr_values=\"%s\"", rf->acr_values);

        } else if (ngx_strcmp(rf->code, "missing_token") == 0) {
            p = ngx_cpymem(buf, "Bearer", sizeof("Bearer") - 1);

        } else if (ngx_strcmp(rf->code, "invalid_approval") == 0) {
            /* the caller's token was fine: the approval was not */
            p = ngx_cpymem(buf, "FoxGov-Approval error=\"invalid_approval\"",
                           sizeof("FoxGov-Approval error=\"invalid_approval\"")
                           - 1);

        } else {
            p = ngx_cpymem(buf, "Bearer error=\"invalid_token\"",
                           sizeof("Bearer error=\"invalid_token\"") - 1);
        }

        if (ngx_http_foxgov_set_header(r, "WWW-Authenticate", buf, p - buf)
            != NGX_OK)
        {
            fg_buffer_free(&body);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (rf->status == NGX_HTTP_TOO_MANY_REQUESTS && rf->retry_after >= 0) {
        p = ngx_sprintf(buf, "%l", rf->retry_after);

        if (ngx_http_foxgov_set_header(r, "Retry-After", buf, p - buf)
            != NGX_OK)
        {
            fg_buffer_free(&body);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_http_foxgov_send(r, rf->status, &body);

    fg_buffer_free(&body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


ngx_int_t
ngx_http_foxgov_reply_plain(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_int_t    rc;
    fg_buffer_t  body;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    fg_buffer_init(&body, 64 * 1024);

    if (fg_call_error_body(code, message, NULL, NULL, NULL, &body) != FG_OK)
    {
        fg_buffer_free(&body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_foxgov_send(r, status, &body);

    fg_buffer_free(&body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_foxgov_send(ngx_http_request_t *r, ngx_uint_t status,
    fg_buffer_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* an answer of ours, not the upstream's: never cached downstream */
    if (ngx_http_foxgov_set_header(r, "Cache-Control", (u_char *) "no-store",
                                   sizeof("no-store") - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, body->len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->pos, body->data, body->len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_foxgov_set_header(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    u_char           *v;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    v = ngx_pnalloc(r->pool, len);
    if (v == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(v, value, len);

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = v;
    h->value.len = len;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}

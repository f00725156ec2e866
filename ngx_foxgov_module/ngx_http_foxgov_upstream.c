
/*
 * ngx_http_foxgov_upstream.c -- what the upstream receives of a governed
 * call's headers: the caller's token and any credential header it sent
 * are removed, the location's credential is set in the provider's own
 * header form, traceparent carries this call's span, tracestate passes
 * only when the trace was continued and it is valid, and the foxgov
 * headers stay here.
 *
 * nginx's proxy module sends r->headers_in.headers as it finds them, so
 * the list is rebuilt without the removed fields (an element cannot be
 * taken out of an ngx_list_t in place).  proxy_set_header still overrides
 * what is set here, as it does for any client header.
 */


#include "ngx_http_foxgov_common.h"


typedef struct {
    ngx_str_t    name;
    ngx_uint_t   redaction;     /* recorded in redactions_applied */
    ngx_uint_t   model_only;
} ngx_http_foxgov_strip_t;


static ngx_http_foxgov_strip_t  ngx_http_foxgov_strip[] = {
    { ngx_string("foxgov-auth"), 1, 0 },
    { ngx_string("authorization"), 1, 0 },
    { ngx_string("x-api-key"), 1, 0 },
    { ngx_string("api-key"), 1, 0 },
    { ngx_string("foxgov-approval"), 1, 0 },
    { ngx_string("foxgov-labels"), 0, 0 },
    { ngx_string("traceparent"), 0, 0 },
    { ngx_string("tracestate"), 0, 0 },
    /* a compressed model response could not be read for its usage */
    { ngx_string("accept-encoding"), 0, 1 },
    { ngx_null_string, 0, 0 }
};


static ngx_int_t ngx_http_foxgov_push_header(ngx_http_request_t *r,
    ngx_list_t *list, ngx_str_t *name, u_char *value, size_t len);
static void ngx_http_foxgov_add_redaction(ngx_http_foxgov_ctx_t *ctx,
    ngx_str_t *name);


void
ngx_http_foxgov_credential_header(ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_credential_t *cred, ngx_str_t *name, ngx_uint_t *bearer)
{
    static ngx_str_t  authorization = ngx_string("authorization");
    static ngx_str_t  x_api_key = ngx_string("x-api-key");
    static ngx_str_t  api_key = ngx_string("api-key");

    if (cred->header.len > 0) {
        *name = cred->header;
        *bearer = (cred->header.len == authorization.len
                   && ngx_strncmp(cred->header.data, authorization.data,
                                  authorization.len) == 0);
        return;
    }

    *bearer = 0;

    if (flcf->kind == FG_CALL_MODEL
        && flcf->provider == FG_PROVIDER_ANTHROPIC)
    {
        *name = x_api_key;

    } else if (flcf->kind == FG_CALL_MODEL
               && flcf->provider == FG_PROVIDER_AZURE_OPENAI)
    {
        *name = api_key;

    } else {
        *name = authorization;
        *bearer = 1;
    }
}


ngx_int_t
ngx_http_foxgov_upstream_headers(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, ngx_http_foxgov_credential_t *cred)
{
    u_char                      *p;
    size_t                       len;
    ngx_str_t                    cname;
    ngx_uint_t                   i, j, bearer, strip;
    ngx_list_t                   headers;
    ngx_list_part_t             *part;
    ngx_table_elt_t             *h, *nh;
    ngx_http_foxgov_loc_conf_t  *flcf;

    static ngx_str_t  traceparent = ngx_string("traceparent");
    static ngx_str_t  tracestate = ngx_string("tracestate");

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_foxgov_module);

    ngx_str_null(&cname);
    bearer = 0;

    if (cred != NULL) {
        ngx_http_foxgov_credential_header(flcf, cred, &cname, &bearer);
    }

    if (ngx_list_init(&headers, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

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

        strip = 0;

        for (j = 0; ngx_http_foxgov_strip[j].name.len; j++) {
            if (ngx_http_foxgov_strip[j].model_only
                && flcf->kind != FG_CALL_MODEL)
            {
                continue;
            }

            if (h[i].key.len == ngx_http_foxgov_strip[j].name.len
                && ngx_strncmp(h[i].lowcase_key,
                               ngx_http_foxgov_strip[j].name.data,
                               h[i].key.len) == 0)
            {
                strip = 1;
                if (ngx_http_foxgov_strip[j].redaction) {
                    ngx_http_foxgov_add_redaction(ctx,
                                             &ngx_http_foxgov_strip[j].name);
                }
                break;
            }
        }

        /* the client's own value of the credential header never passes */
        if (!strip && cname.len > 0 && h[i].key.len == cname.len
            && ngx_strncmp(h[i].lowcase_key, cname.data, cname.len) == 0)
        {
            strip = 1;
            ngx_http_foxgov_add_redaction(ctx, &cname);
        }

        if (strip) {
            continue;
        }

        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    if (ngx_http_foxgov_push_header(r, &headers, &traceparent,
                                    (u_char *) ctx->traceparent,
                                    FG_TRACEPARENT_LEN)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->tracestate.len > 0
        && ngx_http_foxgov_push_header(r, &headers, &tracestate,
                                       ctx->tracestate.data,
                                       ctx->tracestate.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cred != NULL) {
        len = (bearer ? sizeof("Bearer ") - 1 : 0) + cred->secret.len;

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (bearer) {
            ngx_memcpy(p, "Bearer ", sizeof("Bearer ") - 1);
        }

        ngx_memcpy(p + len - cred->secret.len, cred->secret.data,
                   cred->secret.len);

        if (ngx_http_foxgov_push_header(r, &headers, &cname, p, len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    r->headers_in.headers = headers;

    /*
     * The fields nginx keeps pointers to must not bring the token back
     * ($http_authorization).  accept_encoding stays: gzip may still
     * compress the response to the client; only the upstream does not see
     * the header.
     */
    r->headers_in.authorization = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_foxgov_push_header(ngx_http_request_t *r, ngx_list_t *list,
    ngx_str_t *name, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(list);
    if (h == NULL) {
        return NGX_ERROR;
    }

    /* names here are lowercase already: key and lowcase_key are one */
    h->key = *name;
    h->lowcase_key = name->data;
    h->hash = ngx_hash_key(name->data, name->len);
    h->value.data = value;
    h->value.len = len;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static void
ngx_http_foxgov_add_redaction(ngx_http_foxgov_ctx_t *ctx, ngx_str_t *name)
{
    ngx_uint_t   i;
    const char  *r;

    switch (name->len) {
    case sizeof("foxgov-auth") - 1:
        r = "header:foxgov-auth";
        break;
    case sizeof("authorization") - 1:
        r = "header:authorization";
        break;
    case sizeof("x-api-key") - 1:
        r = "header:x-api-key";
        break;
    case sizeof("api-key") - 1:
        r = "header:api-key";
        break;
    case sizeof("foxgov-approval") - 1:
        r = "header:foxgov-approval";
        break;
    default:
        r = NULL;
    }

    if (r == NULL || ngx_strncmp(r + 7, name->data, name->len) != 0) {
        /* a custom credential header= of the location */
        r = "header:credential";
    }

    for (i = 0; i < ctx->nredactions; i++) {
        if (ngx_strcmp(ctx->redactions[i], r) == 0) {
            return;
        }
    }

    if (ctx->nredactions < NGX_HTTP_FOXGOV_MAX_REDACTIONS) {
        ctx->redactions[ctx->nredactions++] = r;
    }
}


/*
 * ngx_http_foxgov_variables.c -- $foxgov_trace_id, $foxgov_span_id,
 * $foxgov_execution_id, $foxgov_tenant, $foxgov_decision, $foxgov_route
 * and $foxgov_decision_hash: what a governed call's access phase found,
 * for proxy_pass (ROUTE), proxy_set_header and access logs.  Empty
 * (not found) outside a governed call or before it is known.
 */


#include "ngx_http_foxgov_common.h"


static ngx_int_t ngx_http_foxgov_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


enum {
    NGX_HTTP_FOXGOV_VAR_TRACE_ID = 0,
    NGX_HTTP_FOXGOV_VAR_SPAN_ID,
    NGX_HTTP_FOXGOV_VAR_EXECUTION_ID,
    NGX_HTTP_FOXGOV_VAR_TENANT,
    NGX_HTTP_FOXGOV_VAR_DECISION,
    NGX_HTTP_FOXGOV_VAR_ROUTE,
    NGX_HTTP_FOXGOV_VAR_DECISION_HASH
};


static ngx_http_variable_t  ngx_http_foxgov_vars[] = {

    { ngx_string("foxgov_trace_id"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_TRACE_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_span_id"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_SPAN_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_execution_id"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_EXECUTION_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_tenant"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_decision"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_DECISION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_route"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_ROUTE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("foxgov_decision_hash"), NULL, ngx_http_foxgov_variable,
      NGX_HTTP_FOXGOV_VAR_DECISION_HASH, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_foxgov_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_foxgov_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_foxgov_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                 *p;
    size_t                  len;
    ngx_http_foxgov_ctx_t  *ctx;

    ctx = ngx_http_foxgov_get_ctx(r->main);

    p = NULL;
    len = 0;

    if (ctx != NULL) {
        switch (data) {

        case NGX_HTTP_FOXGOV_VAR_TRACE_ID:
            p = (u_char *) ctx->trace.trace_id;
            len = ngx_strlen(p);
            break;

        case NGX_HTTP_FOXGOV_VAR_SPAN_ID:
            p = (u_char *) ctx->trace.span_id;
            len = ngx_strlen(p);
            break;

        case NGX_HTTP_FOXGOV_VAR_EXECUTION_ID:
            p = (u_char *) ctx->execution_id;
            len = ngx_strlen(p);
            break;

        case NGX_HTTP_FOXGOV_VAR_TENANT:
            p = ctx->tenant.data;
            len = ctx->tenant.len;
            break;

        case NGX_HTTP_FOXGOV_VAR_DECISION:
            p = ctx->decision.data;
            len = ctx->decision.len;
            break;

        case NGX_HTTP_FOXGOV_VAR_ROUTE:
            p = ctx->route.data;
            len = ctx->route.len;
            break;

        case NGX_HTTP_FOXGOV_VAR_DECISION_HASH:
            p = (u_char *) ctx->decision_hash;
            len = ngx_strlen(p);
            break;
        }
    }

    if (len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * ngx_http_foxgov_module: the execution plane of foxgov, a policy-enforcing
 * egress gateway for AI applications (see docs/ and DESIGN.md).
 *
 * This is the module's skeleton: it registers the HTTP module and its
 * location configuration, with one directive, "foxgov on|off", so that the
 * build, load_module and "nginx -t" can be proven end to end.  Nothing runs
 * per request yet; the request path (authentication, trace context,
 * validation, decision, credential injection, evidence) comes later.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_flag_t    enable;
} ngx_http_foxgov_loc_conf_t;


static void *ngx_http_foxgov_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_foxgov_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_command_t  ngx_http_foxgov_commands[] = {

    { ngx_string("foxgov"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, enable),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_foxgov_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_foxgov_create_loc_conf,       /* create location configuration */
    ngx_http_foxgov_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_foxgov_module = {
    NGX_MODULE_V1,
    &ngx_http_foxgov_module_ctx,           /* module context */
    ngx_http_foxgov_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_foxgov_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_foxgov_loc_conf_t  *flcf;

    flcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_loc_conf_t));
    if (flcf == NULL) {
        return NULL;
    }

    flcf->enable = NGX_CONF_UNSET;

    return flcf;
}


static char *
ngx_http_foxgov_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_foxgov_loc_conf_t *prev = parent;
    ngx_http_foxgov_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


/*
 * ngx_http_foxgov_module: the execution plane of foxgov, a
 * policy-enforcing egress gateway for AI applications (DESIGN.md,
 * docs/directives.md).
 *
 * This file holds the directives, the configuration (created, merged and
 * checked so that "nginx -t" names the file and line of a mistake) and the
 * module's hooks: phase handlers, filters, variables, and the per-worker
 * resources made in init_process and freed in exit_process.
 */


#include "ngx_http_foxgov_common.h"


/*
 * The location configuration as this file makes it: the rest of the module
 * sees its first member.  The place of the location's foxgov_call is kept
 * for the checks that can only be made when the configuration is merged
 * (foxgov_auth_keys may be set above the location, foxgov_policy_bundle
 * after the server blocks), so that their errors name its file and line.
 */
typedef struct {
    ngx_http_foxgov_loc_conf_t   conf;
    u_char                      *call_file;
    ngx_uint_t                   call_line;
} ngx_http_foxgov_loc_conf_ext_t;


static ngx_int_t ngx_http_foxgov_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_foxgov_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_foxgov_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_foxgov_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_foxgov_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_foxgov_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_foxgov_call(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_foxgov_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_foxgov_policy_bundle(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_foxgov_credential(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_foxgov_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_foxgov_token_cache_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_foxgov_body_max_check(ngx_conf_t *cf, void *post,
    void *data);

static ngx_int_t ngx_http_foxgov_read_conf_file(ngx_conf_t *cf,
    ngx_str_t *path, size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_foxgov_load_schema(ngx_conf_t *cf,
    ngx_http_foxgov_loc_conf_t *flcf);
static void ngx_http_foxgov_cleanup_keyset(void *data);
static void ngx_http_foxgov_cleanup_schema(void *data);
static void ngx_http_foxgov_cleanup_token_cache(void *data);

static ngx_int_t ngx_http_foxgov_init_process(ngx_cycle_t *cycle);
static void ngx_http_foxgov_exit_process(ngx_cycle_t *cycle);
static void ngx_http_foxgov_exit_master(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_foxgov_body_max_p =
    ngx_http_foxgov_body_max_check;


static ngx_conf_enum_t  ngx_http_foxgov_trace_modes[] = {
    { ngx_string("ingress"), NGX_HTTP_FOXGOV_TRACE_INGRESS },
    { ngx_string("require"), NGX_HTTP_FOXGOV_TRACE_REQUIRE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_foxgov_evidence_modes[] = {
    { ngx_string("async"), NGX_HTTP_FOXGOV_EVIDENCE_ASYNC },
    { ngx_string("strict"), NGX_HTTP_FOXGOV_EVIDENCE_STRICT },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_foxgov_commands[] = {

    { ngx_string("foxgov"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, enable),
      NULL },

    { ngx_string("foxgov_call"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_foxgov_call,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_auth_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_foxgov_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, auth_keys),
      NULL },

    { ngx_string("foxgov_approval_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_foxgov_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, approval_keys),
      NULL },

    { ngx_string("foxgov_trace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, trace),
      &ngx_http_foxgov_trace_modes },

    { ngx_string("foxgov_evidence"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, evidence),
      &ngx_http_foxgov_evidence_modes },

    { ngx_string("foxgov_policy_bundle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_foxgov_policy_bundle,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_credential"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_foxgov_credential,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_body_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_foxgov_loc_conf_t, body_max),
      &ngx_http_foxgov_body_max_p },

    { ngx_string("foxgov_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_foxgov_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_token_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_foxgov_token_cache_conf,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_foxgov_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_foxgov_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("foxgov_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_foxgov_spool_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_foxgov_module_ctx = {
    ngx_http_foxgov_preconfiguration,      /* preconfiguration */
    ngx_http_foxgov_postconfiguration,     /* postconfiguration */

    ngx_http_foxgov_create_main_conf,      /* create main configuration */
    ngx_http_foxgov_init_main_conf,        /* init main configuration */

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
    ngx_http_foxgov_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_foxgov_exit_process,          /* exit process */
    ngx_http_foxgov_exit_master,           /* exit master */
    NGX_MODULE_V1_PADDING
};


/* per-worker: one canonicalizer and one hasher (a worker is one thread) */
static fg_jcs_t     *ngx_http_foxgov_worker_jcs;
static fg_sha256_t  *ngx_http_foxgov_worker_sha256;


#define NGX_HTTP_FOXGOV_DEFAULT_ZONE_SIZE  (10 * 1024 * 1024)
#define NGX_HTTP_FOXGOV_DEFAULT_BODY_MAX   (1024 * 1024)
#define NGX_HTTP_FOXGOV_BODY_MAX_LIMIT     (64 * 1024 * 1024)
#define NGX_HTTP_FOXGOV_DEFAULT_CACHE      1024
#define NGX_HTTP_FOXGOV_CREDENTIAL_MAX     8192
#define NGX_HTTP_FOXGOV_SCHEMA_MAX         (1024 * 1024)


/* ------------------------------------------------------- module hooks */

static ngx_int_t
ngx_http_foxgov_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_foxgov_add_variables(cf);
}


static ngx_int_t
ngx_http_foxgov_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The precontent phase, as ngx_http_mirror_module reads the body there:
     * after nginx's own access checks (allow, auth_basic, auth_request), so
     * a call they refuse is never decided, counted or recorded as forwarded.
     */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_foxgov_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_foxgov_log_handler;

    return ngx_http_foxgov_filter_init(cf);
}


static ngx_int_t
ngx_http_foxgov_init_process(ngx_cycle_t *cycle)
{
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_http_foxgov_alloc_init(cycle->log);

    /* made here, or already by the configuration (then inherited) */
    if (ngx_http_foxgov_jcs() == NULL || ngx_http_foxgov_sha256() == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "foxgov: no memory for the worker's canonicalizer");
        return NGX_ERROR;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_foxgov_module);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_foxgov_metrics_start();

    if (ngx_http_foxgov_redis_start(cycle, fmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (fmcf->bundle == NULL) {
        return NGX_OK;
    }

    return ngx_http_foxgov_bundle_start(cycle, fmcf->bundle);
}


static void
ngx_http_foxgov_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_foxgov_main_conf_t  *fmcf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_foxgov_module);
    if (fmcf != NULL && fmcf->bundle != NULL) {
        ngx_http_foxgov_bundle_stop(fmcf->bundle);
    }

    ngx_http_foxgov_redis_stop(cycle);
    ngx_http_foxgov_metrics_stop();

    fg_jcs_free(ngx_http_foxgov_worker_jcs);
    fg_sha256_free(ngx_http_foxgov_worker_sha256);
    ngx_http_foxgov_worker_jcs = NULL;
    ngx_http_foxgov_worker_sha256 = NULL;
}


/* the master made them too, reading the configuration (bundle checks) */
static void
ngx_http_foxgov_exit_master(ngx_cycle_t *cycle)
{
    fg_jcs_free(ngx_http_foxgov_worker_jcs);
    fg_sha256_free(ngx_http_foxgov_worker_sha256);
    ngx_http_foxgov_worker_jcs = NULL;
    ngx_http_foxgov_worker_sha256 = NULL;
}


fg_jcs_t *
ngx_http_foxgov_jcs(void)
{
    if (ngx_http_foxgov_worker_jcs == NULL) {
        ngx_http_foxgov_worker_jcs = fg_jcs_new(0);
    }

    return ngx_http_foxgov_worker_jcs;
}


fg_sha256_t *
ngx_http_foxgov_sha256(void)
{
    if (ngx_http_foxgov_worker_sha256 == NULL) {
        ngx_http_foxgov_worker_sha256 = fg_sha256_new();
    }

    return ngx_http_foxgov_worker_sha256;
}


/*
 * A key file's token cache lives in the worker that made it: the cycle
 * pool is destroyed by each worker at exit, so its cleanup frees it there.
 */
fg_token_cache_t *
ngx_http_foxgov_token_cache(ngx_http_foxgov_keys_t *k, ngx_uint_t size)
{
    ngx_pool_cleanup_t  *cln;

    if (k->cache != NULL || size == 0) {
        return k->cache;
    }

    cln = ngx_pool_cleanup_add(ngx_cycle->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    k->cache = fg_token_cache_new(size);
    if (k->cache == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_foxgov_cleanup_token_cache;
    cln->data = k;

    return k->cache;
}


static void
ngx_http_foxgov_cleanup_token_cache(void *data)
{
    ngx_http_foxgov_keys_t  *k = data;

    fg_token_cache_free(k->cache);
    k->cache = NULL;
}


/* ------------------------------------------------------- configuration */

static void *
ngx_http_foxgov_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_foxgov_main_conf_t  *fmcf;

    fmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_main_conf_t));
    if (fmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     fmcf->bundle = NULL;
     *     fmcf->zone = NULL;
     */

    fmcf->token_cache = NGX_CONF_UNSET_UINT;

    return fmcf;
}


static char *
ngx_http_foxgov_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    ngx_str_t  name = ngx_string("foxgov");

    ngx_conf_init_uint_value(fmcf->token_cache,
                             NGX_HTTP_FOXGOV_DEFAULT_CACHE);

    /* records Redis does not take must have somewhere to wait */
    if (fmcf->redis != NULL && fmcf->spool_dir.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"foxgov_redis\" needs \"foxgov_spool\": records "
                      "Redis does not take wait in the spool, in %s:%ui",
                      fmcf->redis->file, fmcf->redis->line);
        return NGX_CONF_ERROR;
    }
    if (fmcf->redis == NULL && fmcf->spool_dir.data != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"foxgov_spool\" without \"foxgov_redis\" in %s:%ui",
                      fmcf->spool_file, fmcf->spool_line);
        return NGX_CONF_ERROR;
    }

    if (fmcf->zone == NULL) {
        fmcf->zone = ngx_http_foxgov_zone_add(cf, &name,
                                        NGX_HTTP_FOXGOV_DEFAULT_ZONE_SIZE);
        if (fmcf->zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_foxgov_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_foxgov_loc_conf_t      *flcf;
    ngx_http_foxgov_loc_conf_ext_t  *ext;

    ext = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_loc_conf_ext_t));
    if (ext == NULL) {
        return NULL;
    }

    flcf = &ext->conf;

    /*
     * set by ngx_pcalloc():
     *
     *     ext->call_file = NULL;
     *     ext->call_line = 0;
     *     flcf->tool = { 0, NULL };
     *     flcf->action = { 0, NULL };
     *     flcf->risk = { 0, NULL };
     *     flcf->schema_path = { 0, NULL };
     *     flcf->schema_set = NULL;
     *     flcf->schema = NULL;
     */

    flcf->enable = NGX_CONF_UNSET;
    flcf->kind = NGX_HTTP_FOXGOV_KIND_NONE;
    flcf->auth_keys = NGX_CONF_UNSET_PTR;
    flcf->approval_keys = NGX_CONF_UNSET_PTR;
    flcf->approval_ttl = NGX_CONF_UNSET;
    flcf->trace = NGX_CONF_UNSET_UINT;
    flcf->evidence = NGX_CONF_UNSET_UINT;
    flcf->body_max = NGX_CONF_UNSET_SIZE;
    flcf->credentials = NGX_CONF_UNSET_PTR;

    return flcf;
}


static char *
ngx_http_foxgov_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_foxgov_loc_conf_t *prev = parent;
    ngx_http_foxgov_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_foxgov_main_conf_t     *fmcf;
    ngx_http_foxgov_loc_conf_ext_t  *ext;

    ngx_conf_merge_ptr_value(conf->auth_keys, prev->auth_keys, NULL);
    ngx_conf_merge_ptr_value(conf->approval_keys, prev->approval_keys,
                             NULL);
    ngx_conf_merge_value(conf->approval_ttl, prev->approval_ttl, 3600);
    ngx_conf_merge_uint_value(conf->trace, prev->trace,
                              NGX_HTTP_FOXGOV_TRACE_INGRESS);
    ngx_conf_merge_size_value(conf->body_max, prev->body_max,
                              NGX_HTTP_FOXGOV_DEFAULT_BODY_MAX);
    ngx_conf_merge_uint_value(conf->evidence, prev->evidence,
                              NGX_HTTP_FOXGOV_EVIDENCE_ASYNC);
    ngx_conf_merge_ptr_value(conf->credentials, prev->credentials, NULL);

    /* foxgov_call governs its location unless "foxgov off" says not */
    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = (conf->kind != NGX_HTTP_FOXGOV_KIND_NONE)
                       ? 1 : (prev->enable == NGX_CONF_UNSET
                              ? 0 : prev->enable);
    }

    if (!conf->enable || conf->kind == NGX_HTTP_FOXGOV_KIND_NONE) {
        return NGX_CONF_OK;
    }

    /*
     * Merged after the whole http{} block was read: cf points at its end,
     * so these errors name the place of the foxgov_call themselves.
     */
    ext = (ngx_http_foxgov_loc_conf_ext_t *) conf;

    if (conf->auth_keys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"foxgov_call\" needs \"foxgov_auth_keys\" in this "
                      "location or above it in %s:%ui",
                      ext->call_file, ext->call_line);
        return NGX_CONF_ERROR;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_foxgov_module);

    if (fmcf->bundle == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"foxgov_call\" needs \"foxgov_policy_bundle\" in "
                      "http{} in %s:%ui", ext->call_file, ext->call_line);
        return NGX_CONF_ERROR;
    }

    /* only Redis acknowledges: the debug log cannot */
    if (conf->evidence == NGX_HTTP_FOXGOV_EVIDENCE_STRICT
        && fmcf->redis == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"foxgov_evidence strict\" needs \"foxgov_redis\" "
                      "in http{}, for the foxgov_call in %s:%ui",
                      ext->call_file, ext->call_line);
        return NGX_CONF_ERROR;
    }

    /*
     * The body is read into memory and bounded by foxgov_body_max (1 to
     * 64m, checked where it is set: the error names its line), which
     * answers 413 itself (with evidence): nginx's own limit would answer
     * before the caller is known, and a body in a temporary file would
     * have to be read back with blocking I/O.
     */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->client_max_body_size = 0;
    if (clcf->client_body_buffer_size < conf->body_max) {
        clcf->client_body_buffer_size = conf->body_max;
    }

    return NGX_CONF_OK;
}


/*
 * foxgov_call model <openai|azure_openai|anthropic>
 * foxgov_call tool <tool_id> action=<read|write> [risk=<low|medium|high>]
 *     [schema=<file>]
 */
static char *
ngx_http_foxgov_call(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_foxgov_loc_conf_t *flcf = conf;

    int                              p;
    ngx_str_t                       *value, v;
    ngx_uint_t                       i;
    ngx_http_foxgov_loc_conf_ext_t  *ext;

    if (flcf->kind != NGX_HTTP_FOXGOV_KIND_NONE) {
        return "is duplicate";
    }

    ext = (ngx_http_foxgov_loc_conf_ext_t *) flcf;
    ext->call_file = cf->conf_file->file.name.data;
    ext->call_line = cf->conf_file->line;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "model") == 0) {
        if (cf->args->nelts != 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"foxgov_call model\" takes one provider: "
                               "openai, azure_openai or anthropic");
            return NGX_CONF_ERROR;
        }

        p = fg_provider_from_name((char *) value[2].data);
        if (p < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown model provider \"%V\" in "
                               "\"foxgov_call\": expected openai, "
                               "azure_openai or anthropic", &value[2]);
            return NGX_CONF_ERROR;
        }

        flcf->kind = FG_CALL_MODEL;
        flcf->provider = (fg_provider_t) p;

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "tool") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid call kind \"%V\" in \"foxgov_call\": "
                           "expected model or tool", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 4) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_call tool\" needs a tool id and "
                           "action=read or action=write");
        return NGX_CONF_ERROR;
    }

    if (!fg_call_tool_id_valid((char *) value[2].data, value[2].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid tool id \"%V\" in \"foxgov_call\": "
                           "expected ^[a-z0-9][a-z0-9_.-]{0,127}$",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    flcf->kind = FG_CALL_TOOL;
    flcf->tool = value[2];

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "action=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

            if ((v.len == 4 && ngx_strncmp(v.data, "read", 4) == 0)
                || (v.len == 5 && ngx_strncmp(v.data, "write", 5) == 0))
            {
                flcf->action = v;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid action \"%V\" in \"foxgov_call\": "
                               "expected read or write", &v);
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "risk=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            if (ngx_strcmp(v.data, "low") == 0
                || ngx_strcmp(v.data, "medium") == 0
                || ngx_strcmp(v.data, "high") == 0)
            {
                flcf->risk = v;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid risk \"%V\" in \"foxgov_call\": "
                               "expected low, medium or high", &v);
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "schema=", 7) == 0) {
            flcf->schema_path.data = value[i].data + 7;
            flcf->schema_path.len = value[i].len - 7;

            if (ngx_conf_full_name(cf->cycle, &flcf->schema_path, 1)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            if (ngx_http_foxgov_load_schema(cf, flcf) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"foxgov_call\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (flcf->action.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_call tool %V\" needs action=read or "
                           "action=write", &flcf->tool);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A tool's input schema, compiled at configuration time; its hash (the
 * SHA-256 of its canonical bytes) goes into every ToolCallRecord.
 */
static ngx_int_t
ngx_http_foxgov_load_schema(ngx_conf_t *cf, ngx_http_foxgov_loc_conf_t *flcf)
{
    ngx_str_t            text;
    fg_jcs_t            *jcs;
    fg_error_t           err;
    fg_sha256_t         *h;
    fg_blobref_t         ref;
    ngx_pool_cleanup_t  *cln;
    int                  rc;

    if (ngx_http_foxgov_read_conf_file(cf, &flcf->schema_path,
                                       NGX_HTTP_FOXGOV_SCHEMA_MAX, &text)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();

    rc = (jcs != NULL && h != NULL)
         ? fg_blobref_json(jcs, h, text.data, text.len, "application/json",
                           &ref, &err)
         : fg_error_set(&err, FG_ERR_NOMEM, FG_NO_OFFSET, "no memory");

    fg_jcs_free(jcs);
    fg_sha256_free(h);

    if (rc != FG_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "input schema \"%V\" is not canonical JSON: %s",
                           &flcf->schema_path, err.msg);
        return NGX_ERROR;
    }

    fg_hex_sha256(ref.sha256, flcf->schema_sha256);

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    flcf->schema_set = fg_schema_set_new();
    if (flcf->schema_set == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_foxgov_cleanup_schema;
    cln->data = flcf->schema_set;

    if (fg_schema_set_add(flcf->schema_set, "input.schema.json",
                          (char *) text.data, text.len, &err) != FG_OK
        || fg_schema_set_compile(flcf->schema_set, &err) != FG_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "input schema \"%V\" does not compile: %s",
                           &flcf->schema_path, err.msg);
        return NGX_ERROR;
    }

    flcf->schema = fg_schema_set_get(flcf->schema_set, "input.schema.json");

    return NGX_OK;
}


/* foxgov_auth_keys <file>; foxgov_approval_keys <file> [ttl=<time>] */
static char *
ngx_http_foxgov_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    time_t                       ttl;
    ngx_str_t                   *value, s;
    fg_error_t                   err;
    ngx_pool_cleanup_t          *cln;
    ngx_http_foxgov_keys_t     **field, *k;
    ngx_http_foxgov_loc_conf_t  *flcf = conf;

    field = (ngx_http_foxgov_keys_t **) (p + cmd->offset);
    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (cmd->offset != offsetof(ngx_http_foxgov_loc_conf_t,
                                    approval_keys)
            || ngx_strncmp(value[2].data, "ttl=", 4) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\"",
                               &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 4;
        s.len = value[2].len - 4;

        ttl = ngx_parse_time(&s, 1);
        if (ttl == (time_t) NGX_ERROR || ttl <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid approval request ttl \"%V\"", &s);
            return NGX_CONF_ERROR;
        }

        flcf->approval_ttl = ttl;
    }

    k = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_keys_t));
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    k->path = value[1];

    if (ngx_conf_full_name(cf->cycle, &k->path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    k->keys = fg_keyset_load_file((char *) k->path.data, NULL, &err);
    if (k->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot load keys from \"%V\": %s",
                           &k->path, err.msg);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_foxgov_cleanup_keyset;
    cln->data = k->keys;

    *field = k;

    return NGX_CONF_OK;
}


/* foxgov_policy_bundle <dir|file.tar.gz> keys=<jwks> [ttl=<t>] [check=<t>] */
static char *
ngx_http_foxgov_policy_bundle(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    time_t                     t;
    ngx_str_t                 *value, s;
    ngx_uint_t                 i;
    ngx_http_foxgov_bundle_t  *b;

    if (fmcf->bundle != NULL) {
        return "is duplicate";
    }

    b = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_bundle_t));
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    b->path = value[1];
    b->ttl = 600;
    b->check = 10000;

    if (ngx_conf_full_name(cf->cycle, &b->path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "keys=", 5) == 0) {
            b->keys_path.data = value[i].data + 5;
            b->keys_path.len = value[i].len - 5;

            if (ngx_conf_full_name(cf->cycle, &b->keys_path, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0
            || ngx_strncmp(value[i].data, "check=", 6) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            t = ngx_parse_time(&s, 1);
            if (t == (time_t) NGX_ERROR || t <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid time in \"%V\" of "
                                   "\"foxgov_policy_bundle\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                b->ttl = t;
            } else {
                b->check = (ngx_msec_t) t * 1000;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in "
                           "\"foxgov_policy_bundle\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (b->keys_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_policy_bundle\" needs keys=<jwks>: "
                           "an unsigned bundle is never used");
        return NGX_CONF_ERROR;
    }

    if ((ngx_msec_t) b->ttl * 1000 < b->check) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_policy_bundle\" ttl is shorter than "
                           "its check interval: the bundle would go stale "
                           "between checks");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_foxgov_bundle_init(cf, b) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    fmcf->bundle = b;

    return NGX_CONF_OK;
}


/* foxgov_credential <name> file=<path> [tenant=<id>] [header=<name>] */
static char *
ngx_http_foxgov_credential(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_foxgov_loc_conf_t *flcf = conf;

    u_char                        *p;
    ngx_str_t                     *value, file, text;
    ngx_uint_t                     i;
    ngx_http_foxgov_credential_t  *cred, *c;

    if (flcf->credentials == NGX_CONF_UNSET_PTR) {
        flcf->credentials = ngx_array_create(cf->pool, 2,
                                   sizeof(ngx_http_foxgov_credential_t));
        if (flcf->credentials == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;
    ngx_str_null(&file);

    cred = ngx_array_push(flcf->credentials);
    if (cred == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(cred, sizeof(ngx_http_foxgov_credential_t));
    cred->name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0) {
            file.data = value[i].data + 5;
            file.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "tenant=", 7) == 0) {
            cred->tenant.data = value[i].data + 7;
            cred->tenant.len = value[i].len - 7;

            if (!fg_tenant_id_valid((char *) cred->tenant.data,
                                    cred->tenant.len))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid tenant id \"%V\" in "
                                   "\"foxgov_credential\": expected "
                                   "^[a-z0-9][a-z0-9_-]{0,62}$",
                                   &cred->tenant);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "header=", 7) == 0) {
            cred->header.data = value[i].data + 7;
            cred->header.len = value[i].len - 7;

            for (p = cred->header.data;
                 p < cred->header.data + cred->header.len;
                 p++)
            {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                      || *p == '-'))
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid header name \"%V\" in "
                                       "\"foxgov_credential\": expected "
                                       "lowercase letters, digits and "
                                       "'-'", &cred->header);
                    return NGX_CONF_ERROR;
                }
            }

            if (cred->header.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty header= in \"foxgov_credential\"");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in "
                           "\"foxgov_credential\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_credential %V\" needs file=<path>",
                           &cred->name);
        return NGX_CONF_ERROR;
    }

    c = flcf->credentials->elts;
    for (i = 0; i + 1 < flcf->credentials->nelts; i++) {
        /* "every tenant" has no data to compare (strncmp(NULL) is UB) */
        if (c[i].tenant.len == cred->tenant.len
            && (cred->tenant.len == 0
                || ngx_strncmp(c[i].tenant.data, cred->tenant.data,
                               cred->tenant.len) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "a second \"foxgov_credential\" for %s%V "
                               "in the same block",
                               cred->tenant.len ? "tenant " : "every tenant",
                               &cred->tenant);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_foxgov_read_secret(cf, &file, "credential",
                                    NGX_HTTP_FOXGOV_CREDENTIAL_MAX, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cred->secret = text;

    return NGX_CONF_OK;
}


/* foxgov_zone <name>:<size> */
static char *
ngx_http_foxgov_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, name, s;

    if (fmcf->zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"foxgov_zone\": "
                           "expected <name>:<size>", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size of zone \"%V\" in \"foxgov_zone\": "
                           "at least %uzk", &value[1],
                           (size_t) (8 * ngx_pagesize / 1024));
        return NGX_CONF_ERROR;
    }

    fmcf->zone = ngx_http_foxgov_zone_add(cf, &name, size);
    if (fmcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* foxgov_body_max <size>: 1 to 64m, at every level it is set at */
static char *
ngx_http_foxgov_body_max_check(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    ngx_str_t  *value;

    if (*sp == 0 || *sp > NGX_HTTP_FOXGOV_BODY_MAX_LIMIT) {
        value = cf->args->elts;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "it must be 1 to 64m", &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* foxgov_token_cache <entries> | off */
static char *
ngx_http_foxgov_token_cache_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (fmcf->token_cache != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        fmcf->token_cache = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n < 1 || n > (1 << 24)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"foxgov_token_cache\" \"%V\": expected "
                           "1 to 16777216 entries, or off", &value[1]);
        return NGX_CONF_ERROR;
    }

    fmcf->token_cache = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/*
 * Read a small file at configuration time into cf->pool (NUL-terminated,
 * not counted in out->len).  Errors name the file.
 */
/*
 * A secret from a file (a provider credential, Redis's password): one
 * line of printable ASCII, trailing white space and newlines dropped.
 * what names it in errors, which never quote the secret.
 */
ngx_int_t
ngx_http_foxgov_read_secret(ngx_conf_t *cf, ngx_str_t *file,
    const char *what, size_t max, ngx_str_t *text)
{
    u_char  *p;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_foxgov_read_conf_file(cf, file, max, text) != NGX_OK) {
        return NGX_ERROR;
    }

    /* one line; trailing white space and newlines are not the secret */
    while (text->len > 0
           && (text->data[text->len - 1] == '\n'
               || text->data[text->len - 1] == '\r'
               || text->data[text->len - 1] == ' '
               || text->data[text->len - 1] == '\t'))
    {
        text->len--;
    }

    if (text->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s file \"%V\" is empty",
                           what, file);
        return NGX_ERROR;
    }

    for (p = text->data; p < text->data + text->len; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            /* never quote the secret, not even in part */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s file \"%V\" holds a byte that cannot be "
                               "sent in a header (at offset %uz)", what,
                               file, (size_t) (p - text->data));
            return NGX_ERROR;
        }
    }

    text->data[text->len] = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_foxgov_read_conf_file(ngx_conf_t *cf, ngx_str_t *path, size_t max,
    ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", path);
        goto failed;
    }

    if (!ngx_is_file(&fi) || (size_t) ngx_file_size(&fi) > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a regular file of at most %uz "
                           "bytes", path, max);
        goto failed;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        goto failed;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *path;
    file.log = cf->log;

    n = ngx_read_file(&file, out->data, out->len, 0);
    if (n == NGX_ERROR || (size_t) n != out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read \"%V\"", path);
        goto failed;
    }

    out->data[out->len] = '\0';

    ngx_close_file(fd);

    return NGX_OK;

failed:

    ngx_close_file(fd);

    return NGX_ERROR;
}


static void
ngx_http_foxgov_cleanup_keyset(void *data)
{
    fg_keyset_free(data);
}


static void
ngx_http_foxgov_cleanup_schema(void *data)
{
    fg_schema_set_free(data);
}




/*
 * ngx_http_foxgov_bundle.c -- the signed policy bundle of
 * foxgov_policy_bundle: loaded when the configuration is read, then
 * re-checked by each worker from a timer on the check interval.
 *
 * A check stats the bundle (the file, or the directory and the files of
 * its layout); when nothing changed it only renews the bundle's
 * freshness.  When something changed it loads, verifies and compiles the
 * new bundle -- off the request path, in the timer -- and swaps it in;
 * a bundle that fails is refused and logged once, and the last good one
 * is kept until it goes stale: ttl after its last successful check,
 * governed calls fail closed (503).  Requests hold a reference to the
 * bundle they decided with, so a swap never frees what one still reads.
 */


#include "ngx_http_foxgov_common.h"


static ngx_int_t ngx_http_foxgov_bundle_fingerprint(
    ngx_http_foxgov_bundle_t *b, u_char md[FG_SHA256_LEN]);
static ngx_http_foxgov_policy_t *ngx_http_foxgov_bundle_load(
    ngx_http_foxgov_bundle_t *b, ngx_log_t *log);
static void ngx_http_foxgov_bundle_check(ngx_http_foxgov_bundle_t *b,
    ngx_log_t *log);
static void ngx_http_foxgov_bundle_timer(ngx_event_t *ev);
static void ngx_http_foxgov_bundle_cleanup(void *data);
static void ngx_http_foxgov_policy_free(ngx_http_foxgov_policy_t *p);


/* the files of a directory bundle whose change means a new bundle */
static const char  *ngx_http_foxgov_bundle_files[] = {
    "", FG_BUNDLE_MANIFEST, FG_BUNDLE_SIGNATURES, FG_BUNDLE_POLICY,
    FG_BUNDLE_PRICES, NULL
};


char *
ngx_http_foxgov_bundle_init(ngx_conf_t *cf, ngx_http_foxgov_bundle_t *b)
{
    fg_error_t           err;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    b->keys = fg_keyset_load_file((char *) b->keys_path.data, NULL, &err);
    if (b->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot load the bundle keys \"%V\": %s",
                           &b->keys_path, err.msg);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_foxgov_bundle_cleanup;
    cln->data = b;

    b->log = cf->cycle->log;

    /*
     * A bundle that cannot be used at start is not a configuration error:
     * nginx starts, governed calls answer 503 until a good bundle is in
     * place, and the worker's check picks it up.
     */
    if (ngx_http_foxgov_bundle_fingerprint(b, b->fingerprint) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, ngx_errno,
                           "policy bundle \"%V\" is not there; governed "
                           "calls answer 503 until it is", &b->path);
        b->refused = 1;
        return NGX_CONF_OK;
    }

    b->current = ngx_http_foxgov_bundle_load(b, cf->log);
    if (b->current == NULL) {
        b->refused = 1;
        return NGX_CONF_OK;
    }

    b->last_ok = ngx_time();

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_foxgov_bundle_start(ngx_cycle_t *cycle, ngx_http_foxgov_bundle_t *b)
{
    b->log = cycle->log;

    b->timer.handler = ngx_http_foxgov_bundle_timer;
    b->timer.data = b;
    b->timer.log = cycle->log;
    b->timer.cancelable = 1;

    /* the bundle read when the configuration was is as fresh as then */
    ngx_add_timer(&b->timer, b->check);

    return NGX_OK;
}


void
ngx_http_foxgov_bundle_stop(ngx_http_foxgov_bundle_t *b)
{
    if (b->timer.timer_set) {
        ngx_del_timer(&b->timer);
    }
}


ngx_http_foxgov_policy_t *
ngx_http_foxgov_bundle_acquire(ngx_http_foxgov_bundle_t *b, const char **why)
{
    if (b->current == NULL) {
        *why = b->refused ? "no valid policy bundle is loaded"
                          : "no policy bundle is loaded";
        return NULL;
    }

    if (ngx_time() - b->last_ok > b->ttl) {
        *why = "the policy bundle is stale: not checked successfully "
               "within its ttl";
        return NULL;
    }

    b->current->refs++;

    return b->current;
}


void
ngx_http_foxgov_policy_release(ngx_http_foxgov_policy_t *p)
{
    if (p != NULL && --p->refs == 0) {
        ngx_http_foxgov_policy_free(p);
    }
}


static void
ngx_http_foxgov_bundle_timer(ngx_event_t *ev)
{
    ngx_http_foxgov_bundle_t  *b = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_foxgov_bundle_check(b, ev->log);

    ngx_add_timer(&b->timer, b->check);
}


static void
ngx_http_foxgov_bundle_check(ngx_http_foxgov_bundle_t *b, ngx_log_t *log)
{
    u_char                     md[FG_SHA256_LEN];
    ngx_http_foxgov_policy_t  *p;

    if (ngx_http_foxgov_bundle_fingerprint(b, md) != NGX_OK) {
        if (!b->refused) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "foxgov: policy bundle \"%V\" is gone; the "
                          "loaded one is used until it is stale",
                          &b->path);
            b->refused = 1;
            ngx_memzero(b->fingerprint, FG_SHA256_LEN);
        }
        return;
    }

    if (ngx_memcmp(md, b->fingerprint, FG_SHA256_LEN) == 0) {
        if (!b->refused && b->current != NULL) {
            b->last_ok = ngx_time();
        }
        return;
    }

    ngx_memcpy(b->fingerprint, md, FG_SHA256_LEN);

    p = ngx_http_foxgov_bundle_load(b, log);
    if (p == NULL) {
        b->refused = 1;
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "foxgov: policy bundle \"%V\" revision \"%s\" loaded "
                  "(%uz rules)", &b->path, fg_bundle_revision(p->bundle),
                  fg_policy_rule_count(p->policy));

    ngx_http_foxgov_policy_release(b->current);

    b->current = p;
    b->refused = 0;
    b->last_ok = ngx_time();
}


/*
 * Load, verify and compile the bundle at b->path.  Errors are logged
 * once, naming the file and the reason; the result has one reference
 * (the bundle state's).
 */
static ngx_http_foxgov_policy_t *
ngx_http_foxgov_bundle_load(ngx_http_foxgov_bundle_t *b, ngx_log_t *log)
{
    json_error_t               jerr;
    fg_error_t                 err;
    const fg_bundle_file_t    *f;
    ngx_http_foxgov_policy_t  *p;

    p = ngx_calloc(sizeof(ngx_http_foxgov_policy_t), log);
    if (p == NULL) {
        return NULL;
    }

    p->refs = 1;

    if (fg_bundle_load((char *) b->path.data, b->keys, NULL, &p->bundle,
                       &err)
        != FG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "foxgov: policy bundle \"%V\" refused: %s",
                      &b->path, err.msg);
        goto failed;
    }

    f = fg_bundle_file(p->bundle, FG_BUNDLE_POLICY);

    p->policy = fg_policy_compile((const char *) f->data, f->len, &err);
    if (p->policy == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "foxgov: policy bundle \"%V\" refused: policy.json: "
                      "%s", &b->path, err.msg);
        goto failed;
    }

    f = fg_bundle_file(p->bundle, FG_BUNDLE_PRICES);
    if (f != NULL) {
        p->prices = json_loadb((const char *) f->data, f->len,
                               JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(p->prices)) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "foxgov: policy bundle \"%V\" refused: "
                          "prices.json is not a JSON object", &b->path);
            goto failed;
        }
    }

    return p;

failed:

    ngx_http_foxgov_policy_free(p);

    return NULL;
}


static void
ngx_http_foxgov_policy_free(ngx_http_foxgov_policy_t *p)
{
    json_decref(p->prices);
    fg_policy_free(p->policy);
    fg_bundle_free(p->bundle);
    ngx_free(p);
}


/*
 * What identifies the bundle now at b->path: a hash of the stat data of
 * the file, or of the directory and the files of its layout (a missing
 * optional file counts as such).  NGX_ERROR when the path itself is gone.
 */
static ngx_int_t
ngx_http_foxgov_bundle_fingerprint(ngx_http_foxgov_bundle_t *b,
    u_char md[FG_SHA256_LEN])
{
    u_char            path[NGX_MAX_PATH];
    uint64_t          v[5];
    fg_sha256_t      *h;
    ngx_uint_t        i;
    ngx_file_info_t   fi;

    if (ngx_file_info(b->path.data, &fi) == NGX_FILE_ERROR) {
        return NGX_ERROR;
    }

    h = ngx_http_foxgov_sha256();
    if (h == NULL || fg_sha256_init(h) != FG_OK) {
        return NGX_ERROR;
    }

    for (i = 0; ngx_http_foxgov_bundle_files[i] != NULL; i++) {

        if (i > 0) {
            if (!ngx_is_dir(&fi) && i == 1) {
                break;
            }

            if (b->path.len + 2 + ngx_strlen(ngx_http_foxgov_bundle_files[i])
                > sizeof(path))
            {
                return NGX_ERROR;
            }

            ngx_sprintf(path, "%V/%s%Z", &b->path,
                        ngx_http_foxgov_bundle_files[i]);

            if (ngx_file_info(path, &fi) == NGX_FILE_ERROR) {
                ngx_memzero(v, sizeof(v));
                fg_sha256_update(h, v, sizeof(v));
                continue;
            }
        }

        v[0] = (uint64_t) fi.st_dev;
        v[1] = (uint64_t) fi.st_ino;
        v[2] = (uint64_t) fi.st_size;
        v[3] = (uint64_t) fi.st_mtim.tv_sec;
        v[4] = (uint64_t) fi.st_mtim.tv_nsec;

        fg_sha256_update(h, v, sizeof(v));
    }

    if (fg_sha256_final(h, md) != FG_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The configuration's pool is destroyed by the master on reload and by
 * each worker at exit: each frees the bundle it holds then.
 */
static void
ngx_http_foxgov_bundle_cleanup(void *data)
{
    ngx_http_foxgov_bundle_t  *b = data;

    ngx_http_foxgov_policy_release(b->current);
    b->current = NULL;

    fg_keyset_free(b->keys);
    b->keys = NULL;
}

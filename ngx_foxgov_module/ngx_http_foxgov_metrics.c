
/*
 * ngx_http_foxgov_metrics.c -- the counters every worker adds to, kept in
 * the shared zone (so they are the gateway's, not one worker's, and
 * survive a reload), and the foxgov_metrics location that shows them in
 * the Prometheus text format (docs/directives.md, "foxgov_metrics").
 *
 * Counters are atomics: no lock is taken on the request path.  Per-worker
 * gauges (spool bytes, Redis connected) live in a slot per worker, taken
 * at start with a compare-and-set; a slot whose worker died is taken over
 * by the next one.
 */


#include "ngx_http_foxgov_common.h"

#include <signal.h>


static ngx_http_foxgov_metrics_t  *ngx_http_foxgov_metrics_sh;
static ngx_http_foxgov_worker_slot_t  *ngx_http_foxgov_metrics_slot;

static const char  *ngx_http_foxgov_metrics_kinds[2] = { "model", "tool" };


static ngx_http_foxgov_metrics_t *
ngx_http_foxgov_metrics_get(void)
{
    ngx_http_foxgov_main_conf_t  *fmcf;

    if (ngx_http_foxgov_metrics_sh == NULL) {
        fmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_foxgov_module);
        if (fmcf != NULL && fmcf->zone != NULL) {
            ngx_http_foxgov_metrics_sh =
                ngx_http_foxgov_zone_metrics(fmcf->zone);
        }
    }

    return ngx_http_foxgov_metrics_sh;
}


void
ngx_http_foxgov_metrics_decision(ngx_int_t kind, ngx_uint_t decision)
{
    ngx_http_foxgov_metrics_t  *m = ngx_http_foxgov_metrics_get();

    if (m != NULL && (kind == FG_CALL_MODEL || kind == FG_CALL_TOOL)
        && decision < NGX_HTTP_FOXGOV_METRIC_DECISIONS)
    {
        (void) ngx_atomic_fetch_add(&m->calls[kind == FG_CALL_TOOL][decision],
                                    1);
    }
}


void
ngx_http_foxgov_metrics_add(ngx_uint_t counter)
{
    ngx_http_foxgov_metrics_t  *m = ngx_http_foxgov_metrics_get();

    if (m != NULL && counter < NGX_HTTP_FOXGOV_METRIC_COUNTERS) {
        (void) ngx_atomic_fetch_add(&m->counters[counter], 1);
    }
}


void
ngx_http_foxgov_metrics_worker(uint64_t spool_bytes, ngx_uint_t connected)
{
    ngx_http_foxgov_worker_slot_t  *s = ngx_http_foxgov_metrics_slot;

    if (s != NULL) {
        s->spool_bytes = (ngx_atomic_uint_t) spool_bytes;
        s->connected = connected;
    }
}


/* The worker takes a slot: a free one, or one whose worker is gone. */
void
ngx_http_foxgov_metrics_start(void)
{
    ngx_uint_t                  i;
    ngx_atomic_uint_t           pid;
    ngx_http_foxgov_metrics_t  *m = ngx_http_foxgov_metrics_get();

    if (m == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_FOXGOV_METRIC_WORKERS; i++) {
        pid = m->workers[i].pid;

        if (pid != 0 && (pid == (ngx_atomic_uint_t) ngx_pid
                         || kill((pid_t) pid, 0) == 0 || errno != ESRCH))
        {
            continue;
        }

        if (ngx_atomic_cmp_set(&m->workers[i].pid, pid,
                               (ngx_atomic_uint_t) ngx_pid))
        {
            m->workers[i].spool_bytes = 0;
            m->workers[i].connected = 0;
            ngx_http_foxgov_metrics_slot = &m->workers[i];
            return;
        }
    }
}


void
ngx_http_foxgov_metrics_stop(void)
{
    if (ngx_http_foxgov_metrics_slot != NULL) {
        ngx_http_foxgov_metrics_slot->connected = 0;
        ngx_http_foxgov_metrics_slot->spool_bytes = 0;
        ngx_http_foxgov_metrics_slot->pid = 0;
        ngx_http_foxgov_metrics_slot = NULL;
    }

    ngx_http_foxgov_metrics_sh = NULL;
}


/* ====================================================== the location */

char *
ngx_http_foxgov_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_foxgov_metrics_handler;

    return NGX_CONF_OK;
}


/* s as a Prometheus label value: backslash, quote and newline escaped. */
static u_char *
ngx_http_foxgov_metrics_label(u_char *p, u_char *last, const char *s)
{
    for ( ; *s != '\0' && p + 2 < last; s++) {
        if (*s == '\\' || *s == '"') {
            *p++ = '\\';
            *p++ = (u_char) *s;
        } else if (*s == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else {
            *p++ = (u_char) *s;
        }
    }
    return p;
}


ngx_int_t
ngx_http_foxgov_metrics_handler(ngx_http_request_t *r)
{
    static const char  *results[NGX_HTTP_FOXGOV_METRIC_COUNTERS] = {
        "sent", "spooled", "drained", "failed"
    };

    u_char                        *p, *last;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, k, workers, connected;
    uint64_t                       spool;
    ngx_chain_t                    out;
    ngx_atomic_uint_t              pid;
    ngx_http_foxgov_metrics_t     *m;
    ngx_http_foxgov_policy_t      *policy;
    ngx_http_foxgov_main_conf_t   *fmcf;
    const char                    *why;
    size_t                         size = 8192;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    m = ngx_http_foxgov_metrics_get();
    fmcf = ngx_http_get_module_main_conf(r, ngx_http_foxgov_module);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL || m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;
    last = b->end;

    p = ngx_slprintf(p, last,
        "# HELP foxgov_calls_total Calls decided, by call kind and "
        "decision.\n# TYPE foxgov_calls_total counter\n");
    for (k = 0; k < 2; k++) {
        for (i = 0; i < NGX_HTTP_FOXGOV_METRIC_DECISIONS; i++) {
            p = ngx_slprintf(p, last,
                             "foxgov_calls_total{kind=\"%s\",decision=\"%s\"}"
                             " %uA\n", ngx_http_foxgov_metrics_kinds[k],
                             fg_decision_name((fg_decision_kind_t) i),
                             m->calls[k][i]);
        }
    }

    p = ngx_slprintf(p, last,
        "# HELP foxgov_evidence_records_total Evidence records: sent to "
        "Redis and acknowledged, put in the spool, drained from it, lost "
        "(neither).\n# TYPE foxgov_evidence_records_total counter\n");
    for (i = 0; i < NGX_HTTP_FOXGOV_METRIC_EVIDENCE_N; i++) {
        p = ngx_slprintf(p, last,
                         "foxgov_evidence_records_total{result=\"%s\"} %uA\n",
                         results[i], m->counters[i]);
    }

    p = ngx_slprintf(p, last,
        "# HELP foxgov_evidence_strict_refused_total Calls answered 503 "
        "because Redis did not acknowledge their records (strict).\n"
        "# TYPE foxgov_evidence_strict_refused_total counter\n"
        "foxgov_evidence_strict_refused_total %uA\n",
        m->counters[NGX_HTTP_FOXGOV_METRIC_STRICT_REFUSED]);

    p = ngx_slprintf(p, last,
        "# HELP foxgov_token_cache_lookups_total Caller tokens looked up in "
        "the verified-token caches.\n"
        "# TYPE foxgov_token_cache_lookups_total counter\n"
        "foxgov_token_cache_lookups_total{result=\"hit\"} %uA\n"
        "foxgov_token_cache_lookups_total{result=\"miss\"} %uA\n",
        m->counters[NGX_HTTP_FOXGOV_METRIC_CACHE_HIT],
        m->counters[NGX_HTTP_FOXGOV_METRIC_CACHE_MISS]);

    workers = 0;
    connected = 0;
    spool = 0;
    for (i = 0; i < NGX_HTTP_FOXGOV_METRIC_WORKERS; i++) {
        pid = m->workers[i].pid;
        if (pid == 0 || (kill((pid_t) pid, 0) != 0 && errno == ESRCH)) {
            continue;                   /* free, or its worker is gone */
        }
        workers++;
        connected += m->workers[i].connected ? 1 : 0;
        spool += m->workers[i].spool_bytes;
    }

    p = ngx_slprintf(p, last,
        "# HELP foxgov_spool_bytes Bytes in the workers' evidence spools.\n"
        "# TYPE foxgov_spool_bytes gauge\nfoxgov_spool_bytes %uL\n"
        "# HELP foxgov_workers Workers running.\n"
        "# TYPE foxgov_workers gauge\nfoxgov_workers %ui\n"
        "# HELP foxgov_redis_connected_workers Workers connected to Redis."
        "\n# TYPE foxgov_redis_connected_workers gauge\n"
        "foxgov_redis_connected_workers %ui\n",
        spool, workers, fmcf->redis != NULL ? connected : 0);

    policy = fmcf->bundle != NULL
             ? ngx_http_foxgov_bundle_acquire(fmcf->bundle, &why) : NULL;

    p = ngx_slprintf(p, last,
        "# HELP foxgov_bundle_info The policy bundle in use (this worker's)."
        "\n# TYPE foxgov_bundle_info gauge\n");
    if (policy != NULL) {
        p = ngx_slprintf(p, last, "foxgov_bundle_info{revision=\"");
        p = ngx_http_foxgov_metrics_label(p, last,
                                          fg_bundle_revision(policy->bundle));
        p = ngx_slprintf(p, last, "\"} 1\n");
    }
    p = ngx_slprintf(p, last,
        "# HELP foxgov_bundle_age_seconds Seconds since the bundle was last "
        "checked and found good.\n# TYPE foxgov_bundle_age_seconds gauge\n"
        "foxgov_bundle_age_seconds %T\n",
        fmcf->bundle != NULL && fmcf->bundle->last_ok
        ? ngx_time() - fmcf->bundle->last_ok : (time_t) -1);

    ngx_http_foxgov_policy_release(policy);

    b->last = p;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}

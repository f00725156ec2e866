
/*
 * ngx_http_foxgov_redis.c -- the evidence transport: each worker's one
 * hiredis async connection to Redis on nginx's event loop, XADD of every
 * record to foxgov:ev:{<tenant>} (DESIGN.md "Evidence transport"), and the
 * spool (core/fg_spool, docs/spool.md) for the records Redis does not
 * take.
 *
 * The rule that keeps every record: a record is sent to Redis directly
 * only while the connection is up (AUTH and SELECT answered) and behind
 * everything the spool holds (it is empty, or the drain has sent all of
 * it); otherwise it is appended to the spool.  A record sent and not
 * acknowledged (the connection drops, a reply times out, Redis answers an
 * error) is appended to the spool too.  When the connection is up the
 * spool is drained in order, and emptied only once Redis has acknowledged
 * every entry of it; until then new records go behind it, into it.  When
 * Redis reads more slowly than records come, what hiredis holds unwritten
 * is bounded by backlog=: past it records go to the spool as if the
 * connection were down, and the drain sends them once Redis caught up.  A
 * record can so reach Redis twice (acknowledged, but the acknowledgement
 * lost), never zero times: the ledger dedupes by envelope_hash.  Order
 * holds but for one case: a record Redis refused (an error reply) is
 * spooled behind records acknowledged after it.
 *
 * hiredis 0.14 on nginx: the adapter is ngx_http_foxgov_hiredis.c,
 * shared with the cluster form; given this transport's send event, a
 * command queued while connected is written by
 * ngx_http_foxgov_redis_flush() (at once, or at the end of a batch, or at
 * the end of the loop's turn), and the write event is added only when the
 * socket did not take it all.  The XADDs are formatted here (RESP,
 * ngx_http_foxgov_xadd_format(), the one writer of the stream's entries
 * for both forms) and queued preformatted.  Connecting again happens from
 * a timer with backoff and jitter, never from inside a callback; hiredis
 * 0.14 has no timeouts of its own, so a timer per connection attempt and
 * per reply waited for frees the context when they pass.
 */


#include "ngx_http_foxgov_common.h"

#include <dirent.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "fg_spool.h"


#define NGX_HTTP_FOXGOV_REDIS_BACKOFF_MIN   100         /* ms */
#define NGX_HTTP_FOXGOV_REDIS_BACKOFF_MAX   5000        /* ms */
#define NGX_HTTP_FOXGOV_DRAIN_BATCH         256
#define NGX_HTTP_FOXGOV_BACKLOG_DEFAULT     (4 * 1024 * 1024)
#define NGX_HTTP_FOXGOV_BACKLOG_MIN         (64 * 1024)



typedef struct ngx_http_foxgov_sent_s  ngx_http_foxgov_sent_t;

/* A record sent directly, kept until Redis acknowledges it. */
struct ngx_http_foxgov_sent_s {
    ngx_http_foxgov_sent_t *next;   /* in the free list */
    size_t              size;       /* bytes of cmd[] */
    size_t              reserved;   /* spool room held for it */
    ngx_http_foxgov_wait_t *wait;   /* strict: the call waiting, or NULL */
    fg_record_type_t    type;
    size_t              tenant_len;
    char                tenant[FG_TENANT_ID_MAX + 1];
    char                hash[FG_SHA256_HEX_LEN + 1];
    size_t              len;
    u_char             *record;     /* len bytes inside cmd */
    u_char              cmd[1];     /* the XADD as sent (RESP) */
};

/*
 * The blocks of records sent and not yet acknowledged are reused (each a
 * few KiB: a malloc and free of that size per record, three per call,
 * made glibc consolidate its small chunks every time): up to this many
 * are kept, of sizes rounded up to the unit, up to the max.
 */
#define NGX_HTTP_FOXGOV_SENT_KEEP       64
#define NGX_HTTP_FOXGOV_SENT_UNIT       4096
#define NGX_HTTP_FOXGOV_SENT_KEEP_MAX   (16 * 1024)


typedef struct {
    ngx_http_foxgov_redis_conf_t  *conf;
    ngx_log_t                     *log;

    ngx_http_foxgov_hiredis_t      h;           /* the connection */
    ngx_uint_t                     connected;
    ngx_uint_t                     exiting;

    ngx_event_t                    reconnect;
    ngx_msec_t                     backoff;
    ngx_event_t                    timeout;     /* connect, or a reply */
    ngx_event_t                    flush;       /* sync the spool */
    ngx_event_t                    adopt;       /* look for left spools */
    ngx_event_t                    send;        /* write what is queued */
    ngx_connection_t               dummy;       /* the timers' data */

    ngx_uint_t                     batch;       /* records wait for _flush */

    u_char                        *scratch;     /* a drained XADD */
    size_t                         scratch_size;

    ngx_http_foxgov_sent_t        *free_sent;   /* blocks to reuse */
    ngx_uint_t                     nfree_sent;

    ngx_uint_t                     inflight;    /* direct XADDs waiting */
    ngx_uint_t                     draining;    /* drain XADDs waiting */
    ngx_uint_t                     drain_failed;
    ngx_uint_t                     drain_tail;  /* the drain read it all */
    ngx_uint_t                     behind;      /* over the backlog: said */
    ngx_uint_t                     setup;       /* AUTH/SELECT waiting */

    fg_spool_t                    *spool;
    u_char                         spool_path[NGX_MAX_PATH];
    ngx_http_foxgov_main_conf_t   *fmcf;        /* foxgov_spool's dir, max */

    ngx_http_foxgov_wait_t        *waiting;     /* the call emitting now */
} ngx_http_foxgov_transport_t;


static ngx_http_foxgov_transport_t  *ngx_http_foxgov_transport;


static void ngx_http_foxgov_redis_connect(ngx_http_foxgov_transport_t *t);
static void ngx_http_foxgov_redis_drop(ngx_http_foxgov_transport_t *t,
    const char *why);
static void ngx_http_foxgov_redis_drain(ngx_http_foxgov_transport_t *t);
static void ngx_http_foxgov_redis_retry(ngx_http_foxgov_transport_t *t);
static void ngx_http_foxgov_redis_ready(ngx_http_foxgov_transport_t *t);
static void ngx_http_foxgov_redis_send_event(ngx_event_t *ev);
static ngx_http_foxgov_sent_t *ngx_http_foxgov_sent_alloc(
    ngx_http_foxgov_transport_t *t, size_t size);
static void ngx_http_foxgov_sent_free(ngx_http_foxgov_transport_t *t,
    ngx_http_foxgov_sent_t *s);
static ngx_int_t ngx_http_foxgov_spool_put(ngx_http_foxgov_transport_t *t,
    fg_record_type_t type, const char *tenant, size_t tenant_len,
    const char *hash, const u_char *rec, size_t len, size_t reserved);


/* ============================================================ config */

char *
ngx_http_foxgov_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    ngx_str_t                     *value, s;
    ngx_url_t                      u;
    ngx_int_t                      n;
    ngx_uint_t                     i;
    ngx_http_foxgov_redis_conf_t  *rc;

    if (fmcf->redis != NULL) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->connect_timeout = 1000;
    rc->timeout = 2000;
    rc->backlog = NGX_HTTP_FOXGOV_BACKLOG_DEFAULT;
    rc->db = -1;
    rc->file = cf->conf_file->file.name.data;
    rc->line = cf->conf_file->line;

    value = cf->args->elts;

    /* the addresses, then "cluster", then the parameters */
    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
            != NULL)
        {
            break;
        }

        if (value[i].len == 7
            && ngx_strncmp(value[i].data, "cluster", 7) == 0)
        {
            rc->cluster = 1;
            i++;
            break;
        }

        if (ngx_strncmp(value[i].data, "unix:", 5) == 0) {
            if (i > 1 || value[i].len <= 5
                || value[i].len - 5 >= NGX_MAX_PATH)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid unix socket \"%V\" in "
                                   "\"foxgov_redis\"", &value[i]);
                return NGX_CONF_ERROR;
            }
            rc->unix_path.len = value[i].len - 5;
            rc->unix_path.data = ngx_pnalloc(cf->pool,
                                             rc->unix_path.len + 1);
            if (rc->unix_path.data == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_memcpy(rc->unix_path.data, value[i].data + 5,
                       rc->unix_path.len);
            rc->unix_path.data[rc->unix_path.len] = '\0';
            rc->nseeds++;
            continue;
        }

        /* an IP address and a port: hiredis resolves names synchronously */
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[i];
        u.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.no_port
            || u.host.len == 0 || u.host.len >= sizeof(rc->ip)
            || ngx_inet_addr(u.host.data, u.host.len) == INADDR_NONE)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address \"%V\" in \"foxgov_redis\": "
                               "an IPv4 address and a port, or unix:<path>",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc->nseeds == NGX_HTTP_FOXGOV_REDIS_SEEDS
            || rc->unix_path.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "too many addresses in \"foxgov_redis\" at "
                               "\"%V\": at most %d, with \"cluster\"",
                               &value[i], NGX_HTTP_FOXGOV_REDIS_SEEDS);
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(rc->seeds[rc->nseeds].ip, u.host.data, u.host.len);
        rc->seeds[rc->nseeds].ip[u.host.len] = '\0';
        rc->seeds[rc->nseeds].port = u.port;
        rc->nseeds++;
    }

    if (rc->nseeds == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no address in \"foxgov_redis\"");
        return NGX_CONF_ERROR;
    }

    if (rc->cluster && rc->unix_path.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"foxgov_redis ... cluster\" takes IP:PORT "
                           "addresses of cluster nodes, not \"unix:%V\"",
                           &rc->unix_path);
        return NGX_CONF_ERROR;
    }

    if (!rc->cluster && rc->nseeds > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "several addresses in \"foxgov_redis\" are the "
                           "seeds of a Redis Cluster: add \"cluster\" after "
                           "them");
        return NGX_CONF_ERROR;
    }

    if (rc->unix_path.len == 0) {
        ngx_memcpy(rc->ip, rc->seeds[0].ip, sizeof(rc->ip));
        rc->port = rc->seeds[0].port;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;
            rc->connect_timeout = ngx_parse_time(&s, 0);
            if (rc->connect_timeout == (ngx_msec_t) NGX_ERROR
                || rc->connect_timeout == 0)
            {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;
            if (s.len == 0) {
                goto invalid;
            }
            if (ngx_http_foxgov_read_secret(cf, &s, "redis password", 512,
                                            &rc->password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            if (rc->cluster) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"foxgov_redis ... cluster\":"
                                   " a Redis Cluster has database 0 only",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
            rc->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rc->db == NGX_ERROR || rc->db > 65535) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "replicas=", 9) == 0) {
            if (!rc->cluster) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"foxgov_redis\" needs "
                                   "\"cluster\"", &value[i]);
                return NGX_CONF_ERROR;
            }
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR || n < 1 || n > 8) {
                goto invalid;
            }
            rc->replicas = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "backlog=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            n = ngx_parse_size(&s);
            if (n == NGX_ERROR || n < NGX_HTTP_FOXGOV_BACKLOG_MIN) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"foxgov_redis\":"
                                   " backlog is at least 64k", &value[i]);
                return NGX_CONF_ERROR;
            }
            rc->backlog = (size_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            rc->timeout = ngx_parse_time(&s, 0);
            if (rc->timeout == (ngx_msec_t) NGX_ERROR || rc->timeout == 0) {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    fmcf->redis = rc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"foxgov_redis\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


char *
ngx_http_foxgov_spool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_foxgov_main_conf_t *fmcf = conf;

    ngx_str_t  *value, s;
    ngx_uint_t  i;
    off_t       max;

    if (fmcf->spool_dir.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len >= NGX_MAX_PATH - 32) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid directory \"%V\" in \"foxgov_spool\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    fmcf->spool_dir = value[1];
    if (ngx_conf_full_name(cf->cycle, &fmcf->spool_dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fmcf->spool_max = 1024 * 1024 * 1024;
    fmcf->spool_file = cf->conf_file->file.name.data;
    fmcf->spool_line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            max = ngx_parse_offset(&s);
            if (max == NGX_ERROR || max < 64 * 1024) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"foxgov_spool\":"
                                   " max_size is at least 64k", &value[i]);
                return NGX_CONF_ERROR;
            }
            fmcf->spool_max = (uint64_t) max;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"foxgov_spool\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ====================================================== connection */

/* Bytes of records in the spool (what the spool_bytes gauge shows). */
uint64_t
ngx_http_foxgov_spool_used(fg_spool_t *spool)
{
    uint64_t  n;

    n = spool != NULL ? fg_spool_bytes(spool) : 0;

    return n > FG_SPOOL_MAGIC_LEN ? n - FG_SPOOL_MAGIC_LEN : 0;
}


static void
ngx_http_foxgov_redis_schedule(ngx_http_foxgov_transport_t *t)
{
    ngx_msec_t  delay;

    /* called whenever the connection is gone */
    ngx_http_foxgov_metrics_worker(ngx_http_foxgov_spool_used(t->spool), 0);

    if (t->exiting || t->reconnect.timer_set) {
        return;
    }

    /* backoff with jitter, so the workers do not come back in step */
    delay = t->backoff + (ngx_msec_t) ngx_random() % (t->backoff / 2 + 1);

    t->backoff *= 2;
    if (t->backoff > NGX_HTTP_FOXGOV_REDIS_BACKOFF_MAX) {
        t->backoff = NGX_HTTP_FOXGOV_REDIS_BACKOFF_MAX;
    }

    ngx_add_timer(&t->reconnect, delay);
}


/* The answer to AUTH or SELECT: refused, the connection is given up. */
static void
ngx_http_foxgov_redis_on_setup(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                   *reply = r;
    ngx_http_foxgov_transport_t  *t = ac->data;

    if (reply == NULL) {
        return;                         /* the connection went */
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* the reply never holds the password; data names the command */
        ngx_log_error(NGX_LOG_ERR, t->log, 0,
                      "foxgov: redis refused %s: %*s", (char *) data,
                      reply->len, reply->str);

        /* from inside a callback only this way: hiredis frees it later */
        t->setup = 0;
        redisAsyncDisconnect(ac);
        return;
    }

    if (--t->setup == 0) {
        /* only now do records go to the database they belong in */
        ngx_http_foxgov_redis_ready(t);
    }
}


static void
ngx_http_foxgov_redis_setup(ngx_http_foxgov_transport_t *t)
{
    u_char       db[NGX_INT_T_LEN], *p;
    const char  *argv[2];
    size_t       argvlen[2];

    t->setup = 0;

    if (t->conf->password.len) {
        t->setup++;
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) t->conf->password.data;
        argvlen[1] = t->conf->password.len;
        (void) redisAsyncCommandArgv(t->h.ac, ngx_http_foxgov_redis_on_setup,
                                     "AUTH", 2, argv, argvlen);
    }

    if (t->conf->db >= 0) {
        t->setup++;
        p = ngx_sprintf(db, "%i", t->conf->db);
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = (size_t) (p - db);
        (void) redisAsyncCommandArgv(t->h.ac, ngx_http_foxgov_redis_on_setup,
                                     "SELECT", 2, argv, argvlen);
    }
}


static void
ngx_http_foxgov_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_foxgov_transport_t  *t = ac->data;

    if (t->timeout.timer_set) {
        ngx_del_timer(&t->timeout);
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "foxgov: redis: cannot connect: %s",
                      ac->errstr[0] ? ac->errstr : "error");
        t->h.ac = NULL;
        t->connected = 0;
        ngx_http_foxgov_redis_schedule(t);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, t->log, 0, "foxgov: redis: connected");

    /* AUTH and SELECT first: records wait (spooled) for their answers */
    ngx_http_foxgov_redis_setup(t);

    if (t->setup == 0) {
        ngx_http_foxgov_redis_ready(t);
    } else {
        ngx_add_timer(&t->timeout, t->conf->timeout);
    }
}


/* Connected, authenticated, in the right database: records may go. */
static void
ngx_http_foxgov_redis_ready(ngx_http_foxgov_transport_t *t)
{
    if (t->timeout.timer_set) {
        ngx_del_timer(&t->timeout);
    }

    t->connected = 1;
    t->backoff = NGX_HTTP_FOXGOV_REDIS_BACKOFF_MIN;
    ngx_http_foxgov_metrics_worker(ngx_http_foxgov_spool_used(t->spool), 1);

    fg_spool_rewind(t->spool);
    ngx_http_foxgov_redis_drain(t);
}


static void
ngx_http_foxgov_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_foxgov_transport_t  *t = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "foxgov: redis: connection lost: %s",
                      ac->errstr[0] ? ac->errstr : "closed");
    }

    t->h.ac = NULL;
    t->connected = 0;
    t->setup = 0;

    if (t->timeout.timer_set) {
        ngx_del_timer(&t->timeout);
    }

    ngx_http_foxgov_redis_schedule(t);
}


static void
ngx_http_foxgov_redis_connect(ngx_http_foxgov_transport_t *t)
{
    redisAsyncContext  *ac;

    if (t->h.ac != NULL || t->exiting) {
        return;
    }

    if (t->conf->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) t->conf->unix_path.data);
    } else {
        ac = redisAsyncConnect(t->conf->ip, (int) t->conf->port);
    }

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_WARN, t->log, 0,
                      "foxgov: redis: cannot connect: %s",
                      ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        ngx_http_foxgov_redis_schedule(t);
        return;
    }

    if (ngx_http_foxgov_hiredis_attach(&t->h, ac, t, t->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_foxgov_redis_schedule(t);
        return;
    }

    (void) redisAsyncSetConnectCallback(ac,
                                        ngx_http_foxgov_redis_on_connect);
    (void) redisAsyncSetDisconnectCallback(ac,
                                        ngx_http_foxgov_redis_on_disconnect);

    ngx_add_timer(&t->timeout, t->conf->connect_timeout);
}


/* Give the connection up (from a timer, never inside a hiredis call). */
static void
ngx_http_foxgov_redis_drop(ngx_http_foxgov_transport_t *t, const char *why)
{
    redisAsyncContext  *ac;

    ac = t->h.ac;
    if (ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, t->log, 0, "foxgov: redis: %s", why);

    /*
     * Every reply waited for is called back with none (its record goes to
     * the spool), then the disconnect callback, then cleanup; the
     * disconnect callback is not called for a connection never made.
     * Not connected any more from here on: nothing is sent while hiredis
     * calls back.
     */
    t->connected = 0;
    t->setup = 0;
    redisAsyncFree(ac);

    t->h.ac = NULL;

    ngx_http_foxgov_redis_schedule(t);
}


static void
ngx_http_foxgov_redis_timeout(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_foxgov_transport_t  *t = c->data;

    ngx_http_foxgov_redis_drop(t, t->connected
                               ? "no reply within timeout= (given up)"
                               : t->setup
                               ? "no answer to AUTH or SELECT within timeout="
                               : "not connected within connect_timeout=");
}


/*
 * The timer of both retries: connecting again when the connection is
 * gone, draining again when it is up but the spool was left holding
 * records (Redis answered an error: nothing else would drain it).
 */
static void
ngx_http_foxgov_redis_reconnect(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_foxgov_transport_t  *t = c->data;

    if (t->h.ac != NULL && t->connected) {
        if (t->draining == 0) {
            fg_spool_rewind(t->spool);
            ngx_http_foxgov_redis_drain(t);
        }
        return;
    }

    ngx_http_foxgov_redis_connect(t);
}


/* Drain again after the backoff: the connection is up, Redis refused. */
static void
ngx_http_foxgov_redis_retry(ngx_http_foxgov_transport_t *t)
{
    ngx_msec_t  delay;

    if (t->exiting || t->reconnect.timer_set) {
        return;
    }

    delay = t->backoff + (ngx_msec_t) ngx_random() % (t->backoff / 2 + 1);

    t->backoff *= 2;
    if (t->backoff > NGX_HTTP_FOXGOV_REDIS_BACKOFF_MAX) {
        t->backoff = NGX_HTTP_FOXGOV_REDIS_BACKOFF_MAX;
    }

    ngx_add_timer(&t->reconnect, delay);
}


/* A reply is waited for: its timer runs while anything is in flight. */
static void
ngx_http_foxgov_redis_waiting(ngx_http_foxgov_transport_t *t)
{
    if (t->inflight + t->draining > 0) {
        ngx_add_timer(&t->timeout, t->conf->timeout);

    } else if (t->timeout.timer_set) {
        ngx_del_timer(&t->timeout);
    }
}


/* ========================================================== records */

/*
 * The XADD of a record to foxgov:ev:{tenant}, in RESP as hiredis would
 * format it, written at p (ngx_http_foxgov_xadd_size() bytes are enough);
 * *record is where the record's bytes are in it.  Returns the end.  The
 * one writer of the stream's entries (DESIGN.md "Evidence transport"),
 * for both transports.
 */
u_char *
ngx_http_foxgov_xadd_format(u_char *p, fg_record_type_t type,
    const char *tenant, size_t tenant_len, const char *hash,
    const u_char *rec, size_t len, u_char **record)
{
    size_t            n;
    const char       *name;
    static u_char     obs[32];          /* the "o" field, per worker */
    static size_t     obs_len;
    static ngx_pid_t  obs_pid;

    if (obs_pid != ngx_pid) {
        obs_len = ngx_sprintf(obs, "{\"gateway_pid\":%P}", ngx_pid) - obs;
        obs_pid = ngx_pid;
    }

    name = fg_record_type_name(type);
    n = ngx_strlen(name);

    p = ngx_sprintf(p, "*11\r\n$4\r\nXADD\r\n$%uz\r\n"
                    "foxgov:ev:{%*s}\r\n$1\r\n*\r\n$1\r\nt\r\n$%uz\r\n",
                    sizeof("foxgov:ev:{}") - 1 + tenant_len, tenant_len,
                    tenant, n);
    p = ngx_cpymem(p, name, n);
    p = ngx_cpymem(p, "\r\n$1\r\nh\r\n$64\r\n",
                   sizeof("\r\n$1\r\nh\r\n$64\r\n") - 1);
    p = ngx_cpymem(p, hash, FG_SHA256_HEX_LEN);
    p = ngx_sprintf(p, "\r\n$1\r\nr\r\n$%uz\r\n", len);
    *record = p;
    p = ngx_cpymem(p, rec, len);
    p = ngx_sprintf(p, "\r\n$1\r\no\r\n$%uz\r\n", obs_len);
    p = ngx_cpymem(p, obs, obs_len);
    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/*
 * Write what hiredis holds into the socket now.  Records are queued by
 * ngx_http_foxgov_redis_send() and written by the first of: this call,
 * the end of the send's own call when no batch is open, the end of this
 * turn of the event loop.
 */
void
ngx_http_foxgov_redis_flush(void)
{
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;

    if (t == NULL) {
        return;
    }

    if (t->send.posted) {
        ngx_delete_posted_event(&t->send);
    }

    if (t->h.ac == NULL || t->h.c == NULL || t->h.c->write->active) {
        return;             /* none, or the write event writes the rest */
    }

    /* a failed write calls back (the records go to the spool) */
    ngx_http_foxgov_hiredis_write(&t->h);
}


static void
ngx_http_foxgov_redis_send_event(ngx_event_t *ev)
{
    (void) ev;

    ngx_http_foxgov_redis_flush();
}


/* Records emitted between _batch_begin() and _batch_end() share a write. */
void
ngx_http_foxgov_redis_batch_begin(void)
{
    if (ngx_http_foxgov_transport != NULL) {
        ngx_http_foxgov_transport->batch = 1;
    }
}


void
ngx_http_foxgov_redis_batch_end(void)
{
    if (ngx_http_foxgov_transport != NULL) {
        ngx_http_foxgov_transport->batch = 0;
        ngx_http_foxgov_redis_flush();
    }
}


static ngx_uint_t
ngx_http_foxgov_redis_acked(redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_STRING;
}


static void
ngx_http_foxgov_redis_on_sent(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                   *reply = r;
    ngx_http_foxgov_sent_t       *s = data;
    ngx_http_foxgov_transport_t  *t = ac->data;

    t->inflight--;

    if (ngx_http_foxgov_redis_acked(reply)) {
        ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_SENT);
        ngx_http_foxgov_redis_release(s->reserved);

    } else {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, t->log, 0,
                          "foxgov: redis refused a %s record: %*s",
                          fg_record_type_name(s->type), reply->len,
                          reply->str);
        }
        /* not acknowledged: kept, to be sent again from the spool */
        (void) ngx_http_foxgov_spool_put(t, s->type, s->tenant, s->tenant_len,
                                  s->hash, s->record, s->len, s->reserved);
    }

    if (s->wait != NULL) {
        ngx_http_foxgov_wait_answered(s->wait,
                                      ngx_http_foxgov_redis_acked(reply));
    }

    ngx_http_foxgov_sent_free(t, s);

    if (!t->exiting) {
        ngx_http_foxgov_redis_waiting(t);
    }
}


static void
ngx_http_foxgov_redis_on_drained(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                   *reply = r;
    ngx_http_foxgov_transport_t  *t = ac->data;
    fg_error_t                    err;

    (void) data;

    t->draining--;

    if (ngx_http_foxgov_redis_acked(reply)) {
        ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_DRAINED);
    } else {
        if (!t->drain_failed && reply != NULL
            && reply->type == REDIS_REPLY_ERROR)
        {
            ngx_log_error(NGX_LOG_ERR, t->log, 0,
                          "foxgov: redis refused a spooled record (the "
                          "spool is sent again later): %*s", reply->len,
                          reply->str);
        }
        /* the spool keeps it: the whole spool is sent again later */
        t->drain_failed = 1;
    }

    if (t->draining > 0 || t->exiting) {
        return;
    }

    if (t->drain_failed) {
        t->drain_failed = 0;
        t->drain_tail = 0;
        fg_spool_rewind(t->spool);
        ngx_http_foxgov_redis_waiting(t);
        ngx_http_foxgov_redis_retry(t);
        return;
    }

    /* read on where this batch ended; when it was the end, empty it */
    ngx_http_foxgov_redis_drain(t);

    if (t->draining == 0 && t->drain_tail && t->spool != NULL
        && fg_spool_entries(t->spool) > 0 && t->h.ac != NULL
        && t->connected)
    {
        /* the drain reached the end and every entry is acknowledged */
        if (fg_spool_truncate(t->spool, &err) != FG_OK) {
            ngx_log_error(NGX_LOG_ALERT, t->log, 0,
                          "foxgov: the spool cannot be emptied: %s", err.msg);
        }
        t->backoff = NGX_HTTP_FOXGOV_REDIS_BACKOFF_MIN;
        t->behind = 0;
        ngx_http_foxgov_metrics_worker(ngx_http_foxgov_spool_used(t->spool), 1);
    }

    ngx_http_foxgov_redis_waiting(t);
}


/*
 * Send the next batch of spool entries.  Leaves t->draining 0 when the
 * spool has no entry left to read (all of it was sent).
 */
static void
ngx_http_foxgov_redis_drain(ngx_http_foxgov_transport_t *t)
{
    fg_spool_entry_t  e;
    fg_error_t        err;
    ngx_uint_t        n;
    size_t            size;
    u_char           *end, *rec;
    int               rc;

    if (t->spool == NULL || !t->connected || t->h.ac == NULL) {
        return;
    }

    t->drain_tail = 0;

    for (n = 0; n < NGX_HTTP_FOXGOV_DRAIN_BATCH; n++) {
        if (ngx_http_foxgov_hiredis_unwritten(&t->h) >= t->conf->backlog) {
            break;              /* Redis is behind: on with its replies */
        }

        rc = fg_spool_next(t->spool, &e, &err);
        if (rc == FG_SPOOL_MORE) {
            /* all of it is on its way: new records may follow directly */
            t->drain_tail = 1;
            break;
        }
        if (rc != FG_OK) {
            ngx_log_error(NGX_LOG_ALERT, t->log, 0,
                          "foxgov: the spool cannot be read: %s", err.msg);
            break;
        }

        size = ngx_http_foxgov_xadd_size(e.tenant_len, e.record_len);

        if (size > t->scratch_size) {
            if (t->scratch != NULL) {
                ngx_free(t->scratch);
            }
            t->scratch_size = 0;
            t->scratch = ngx_alloc(size, t->log);
            if (t->scratch == NULL) {
                t->drain_failed = 1;
                break;
            }
            t->scratch_size = size;
        }

        end = ngx_http_foxgov_xadd_format(t->scratch, e.type, e.tenant,
                                           e.tenant_len, e.hash, e.record,
                                           e.record_len, &rec);

        if (redisAsyncFormattedCommand(t->h.ac,
                                       ngx_http_foxgov_redis_on_drained,
                                       NULL, (char *) t->scratch,
                                       (size_t) (end - t->scratch))
            != REDIS_OK)
        {
            t->drain_failed = 1;
            break;
        }
        t->draining++;
    }

    if (t->draining == 0 && t->drain_failed) {
        t->drain_failed = 0;
        t->drain_tail = 0;
        fg_spool_rewind(t->spool);
        ngx_http_foxgov_redis_retry(t);

    } else if (t->draining == 0 && !t->drain_tail) {
        /* nothing sent, the backlog full: no reply will bring us back */
        ngx_http_foxgov_redis_retry(t);
    }

    ngx_http_foxgov_redis_waiting(t);
}


static void
ngx_http_foxgov_spool_flush(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_foxgov_transport_t  *t = c->data;

    ngx_http_foxgov_spool_sync(t->log, t->spool);
}


/*
 * A record about to be sent directly holds the room it would take in the
 * spool until Redis acknowledges it: should the connection go first, it
 * is spooled into that room, never refused by a spool that filled
 * meanwhile.  A call record comes with its call's room (reserved); a
 * record without room to hold (reserved 0, none to be had) is not sent,
 * and its call is not forwarded: NGX_ERROR, logged and counted as failed.
 * Both transports' sends (this file, cluster.c).
 */
ngx_int_t
ngx_http_foxgov_spool_hold(ngx_log_t *log, fg_spool_t *spool,
    fg_record_type_t type, const char *hash, size_t tenant_len, size_t len,
    size_t reserved, size_t *held)
{
    size_t      need;
    fg_error_t  err;

    *held = reserved;

    if (spool == NULL) {
        return NGX_OK;
    }

    need = (size_t) fg_spool_entry_bytes(tenant_len, len, 0);

    if (reserved > need) {
        fg_spool_release(spool, reserved - need);
        *held = need;
        return NGX_OK;
    }

    if (reserved == need) {
        return NGX_OK;
    }

    if (fg_spool_reserve(spool, need - reserved, &err) == FG_OK) {
        *held = need;
        return NGX_OK;
    }

    if (reserved == 0) {
        ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_FAILED);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "foxgov: a %s record (%s) is neither in redis nor in "
                      "the spool: no room to keep it: %s",
                      fg_record_type_name(type), hash, err.msg);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "foxgov: a %s record (%s) of %uz bytes is larger than the "
                  "room held for it (%uz): %s", fg_record_type_name(type),
                  hash, need, reserved, err.msg);

    return NGX_OK;
}


void
ngx_http_foxgov_spool_sync(ngx_log_t *log, fg_spool_t *spool)
{
    fg_error_t  err;

    if (spool != NULL && fg_spool_sync(spool, &err) != FG_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "foxgov: the spool cannot be written: %s", err.msg);
    }
}


/*
 * Append a record to the spool.  NGX_ERROR when it could not be kept (a
 * full spool, a full disk): it is then logged at alert and counted as
 * failed, and the caller refuses the call if it has not been forwarded.
 */
static ngx_int_t
ngx_http_foxgov_spool_put(ngx_http_foxgov_transport_t *t,
    fg_record_type_t type, const char *tenant, size_t tenant_len,
    const char *hash, const u_char *rec, size_t len, size_t reserved)
{
    if (ngx_http_foxgov_spool_keep(t->log, t->spool, &t->flush, t->exiting,
                                   type, tenant, tenant_len, hash, rec, len,
                                   reserved)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_foxgov_metrics_worker(ngx_http_foxgov_spool_used(t->spool),
                                   t->connected);

    /* the drain has not read this one: nothing goes directly before it */
    t->drain_tail = 0;

    /* spooled while connected (Redis refused it): drain it again later */
    if (t->connected && t->draining == 0) {
        ngx_http_foxgov_redis_retry(t);
    }

    return NGX_OK;
}


/*
 * Append a record to a worker's spool, into the room held for it if any;
 * both transports' spool_put.  NGX_ERROR when it could not be kept (a full
 * spool, a full disk): logged at alert with its envelope_hash and counted
 * as failed.  Its fsync is the flush event's, posted once for every record
 * of this turn of the event loop (at once when the worker is exiting).
 */
ngx_int_t
ngx_http_foxgov_spool_keep(ngx_log_t *log, fg_spool_t *spool,
    ngx_event_t *flush, ngx_uint_t exiting, fg_record_type_t type,
    const char *tenant, size_t tenant_len, const char *hash,
    const u_char *rec, size_t len, size_t reserved)
{
    fg_spool_entry_t  e;
    fg_error_t        err;

    ngx_memzero(&e, sizeof(e));
    e.type = type;
    e.tenant = tenant;
    e.tenant_len = tenant_len;
    e.hash = hash;
    e.record = rec;
    e.record_len = len;

    if (spool == NULL
        || fg_spool_append_reserved(spool, &e, reserved, &err) != FG_OK)
    {
        ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_FAILED);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "foxgov: a %s record (%*s) is neither in redis nor in "
                      "the spool: %s", fg_record_type_name(type),
                      (size_t) FG_SHA256_HEX_LEN, hash,
                      spool == NULL ? "no spool" : err.msg);
        return NGX_ERROR;
    }

    ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_SPOOLED);

    if (exiting) {
        flush->handler(flush);

    } else if (!flush->posted) {
        ngx_post_event(flush, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * May a record go to Redis directly?  Only behind everything the spool
 * holds: when it is empty, or when the drain has read all of it and its
 * XADDs are ahead on the same connection (so a steady flow of records
 * during a drain does not keep the spool from ever being emptied).
 */
static ngx_uint_t
ngx_http_foxgov_redis_direct(ngx_http_foxgov_transport_t *t)
{
    if (!t->connected || t->h.ac == NULL) {
        return 0;
    }

    if (ngx_http_foxgov_hiredis_unwritten(&t->h) >= t->conf->backlog) {
        if (!t->behind) {
            t->behind = 1;
            ngx_log_error(NGX_LOG_WARN, t->log, 0,
                          "foxgov: redis is behind: %uz bytes of records "
                          "wait to be written (backlog=%uz); records go to "
                          "the spool until it catches up",
                          ngx_http_foxgov_hiredis_unwritten(&t->h),
                          t->conf->backlog);
        }
        return 0;
    }

    return fg_spool_entries(t->spool) == 0
           || (t->draining > 0 && t->drain_tail);
}


static ngx_http_foxgov_sent_t *
ngx_http_foxgov_sent_alloc(ngx_http_foxgov_transport_t *t, size_t size)
{
    ngx_http_foxgov_sent_t  *s;

    s = t->free_sent;

    if (s != NULL && s->size >= size) {
        t->free_sent = s->next;
        t->nfree_sent--;
        return s;
    }

    size = ngx_align(size, NGX_HTTP_FOXGOV_SENT_UNIT);

    s = ngx_alloc(sizeof(ngx_http_foxgov_sent_t) + size, t->log);
    if (s == NULL) {
        return NULL;
    }

    s->size = size;

    return s;
}


static void
ngx_http_foxgov_sent_free(ngx_http_foxgov_transport_t *t,
    ngx_http_foxgov_sent_t *s)
{
    if (t->nfree_sent < NGX_HTTP_FOXGOV_SENT_KEEP && !t->exiting
        && s->size <= NGX_HTTP_FOXGOV_SENT_KEEP_MAX)
    {
        s->next = t->free_sent;
        t->free_sent = s;
        t->nfree_sent++;
        return;
    }

    ngx_free(s);
}


/*
 * Hold n bytes of spool room for a record to come (a call's call record):
 * NGX_OK, NGX_ERROR when the spool has no room for it (said in err),
 * NGX_DECLINED when there is no spool to hold room in (no foxgov_redis,
 * or a spool that could not be opened: logged when it happened).
 */
ngx_int_t
ngx_http_foxgov_redis_reserve(size_t n, fg_error_t *err)
{
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;

    if (t == NULL) {
        return ngx_http_foxgov_cluster_running()
               ? ngx_http_foxgov_cluster_reserve(n, err) : NGX_DECLINED;
    }

    if (t->spool == NULL) {
        return NGX_DECLINED;
    }

    return fg_spool_reserve(t->spool, n, err) == FG_OK ? NGX_OK : NGX_ERROR;
}


void
ngx_http_foxgov_redis_release(size_t n)
{
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;

    if (n == 0) {
        return;
    }

    if (t == NULL) {
        ngx_http_foxgov_cluster_release(n);
        return;
    }

    if (t->spool != NULL) {
        fg_spool_release(t->spool, n);
    }
}


ngx_int_t
ngx_http_foxgov_redis_send(ngx_log_t *log, fg_record_type_t type,
    const ngx_str_t *tenant, const char *hash, const u_char *rec,
    size_t len, size_t reserved)
{
    size_t                        held;
    ngx_int_t                     rc;
    u_char                       *end;
    ngx_http_foxgov_sent_t       *s;
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;

    if (t == NULL) {
        if (ngx_http_foxgov_cluster_running()) {
            return ngx_http_foxgov_cluster_send(log, type, tenant, hash, rec,
                                                len, reserved);
        }
        return NGX_DECLINED;            /* no foxgov_redis: the debug log */
    }

    if (tenant->len == 0 || tenant->len > FG_TENANT_ID_MAX) {
        return NGX_ERROR;
    }

    /*
     * A record that is neither sent nor spooled is NGX_ERROR: the caller
     * does not forward a call whose AuthContext or decision is lost.
     */

    if (!ngx_http_foxgov_redis_direct(t)) {
        /* behind what the spool holds, in order */
        if (t->waiting != NULL) {
            t->waiting->failed = 1;     /* not acknowledged: strict 503 */
        }
        return ngx_http_foxgov_spool_put(t, type, (char *) tenant->data,
                                         tenant->len, hash, rec, len,
                                         reserved);
    }

    if (ngx_http_foxgov_spool_hold(t->log, t->spool, type, hash,
                                   tenant->len, len, reserved, &held)
        != NGX_OK)
    {
        if (t->waiting != NULL) {
            t->waiting->failed = 1;
        }
        return NGX_ERROR;
    }

    s = ngx_http_foxgov_sent_alloc(t,
                                   ngx_http_foxgov_xadd_size(tenant->len,
                                                             len));
    if (s == NULL) {
        if (t->waiting != NULL) {
            t->waiting->failed = 1;
        }
        return ngx_http_foxgov_spool_put(t, type, (char *) tenant->data,
                                         tenant->len, hash, rec, len, held);
    }

    s->reserved = held;
    s->wait = t->waiting;
    s->type = type;
    s->tenant_len = tenant->len;
    ngx_memcpy(s->tenant, tenant->data, tenant->len);
    ngx_memcpy(s->hash, hash, FG_SHA256_HEX_LEN);
    s->hash[FG_SHA256_HEX_LEN] = '\0';
    s->len = len;
    end = ngx_http_foxgov_xadd_format(s->cmd, type, s->tenant,
                                       s->tenant_len, s->hash, rec, len,
                                       &s->record);

    if (redisAsyncFormattedCommand(t->h.ac, ngx_http_foxgov_redis_on_sent, s,
                                   (char *) s->cmd, (size_t) (end - s->cmd))
        != REDIS_OK)
    {
        if (s->wait != NULL) {
            s->wait->failed = 1;
        }
        rc = ngx_http_foxgov_spool_put(t, type, s->tenant, s->tenant_len,
                                       s->hash, s->record, len, held);
        ngx_http_foxgov_sent_free(t, s);
        return rc;
    }

    t->inflight++;
    if (t->inflight + t->draining == 1) {
        ngx_http_foxgov_redis_waiting(t);
    }

    if (s->wait != NULL) {
        s->wait->pending++;
    }

    /*
     * Into the socket now rather than on the next write event: bytes in
     * the kernel's buffer reach Redis even if this worker is killed the
     * next moment; bytes still in hiredis's would not.  The records of a
     * batch (a call's AuthContext and decision) go in one write, at its
     * end, before the call goes on.
     */
    if (!t->batch) {
        ngx_http_foxgov_redis_flush();
    }

    return NGX_OK;
}


/* ===================================================== strict mode */

ngx_http_foxgov_wait_t *
ngx_http_foxgov_redis_wait_begin(ngx_http_request_t *r)
{
    ngx_http_foxgov_wait_t       *w;
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;

    if (t == NULL) {
        if (!ngx_http_foxgov_cluster_running()) {
            return NULL;
        }

        /* cluster: each record says whether its node acknowledges it */
        w = ngx_calloc(sizeof(ngx_http_foxgov_wait_t), r->connection->log);
        if (w == NULL) {
            return NULL;
        }

        w->r = r;
        w->open = 1;
        ngx_http_foxgov_cluster_waiting(w, 1);

        return w;
    }

    if (!ngx_http_foxgov_redis_direct(t)) {
        return NULL;                    /* Redis cannot acknowledge now */
    }

    w = ngx_calloc(sizeof(ngx_http_foxgov_wait_t), r->connection->log);
    if (w == NULL) {
        return NULL;
    }

    w->r = r;
    w->open = 1;
    t->waiting = w;

    return w;
}


void
ngx_http_foxgov_redis_wait_end(ngx_http_foxgov_wait_t *w)
{
    if (ngx_http_foxgov_transport != NULL) {
        ngx_http_foxgov_transport->waiting = NULL;
    }

    ngx_http_foxgov_cluster_waiting(w, 0);

    if (w != NULL) {
        w->open = 0;
    }
}


ngx_int_t
ngx_http_foxgov_redis_wait_state(ngx_http_foxgov_wait_t *w)
{
    if (w == NULL || w->failed) {
        return -1;
    }

    return (w->pending == 0 && !w->open) ? 1 : 0;
}


void
ngx_http_foxgov_redis_wait_suspend(ngx_http_foxgov_wait_t *w)
{
    w->suspended = 1;
}


/* A reply to one of the call's records came (or the connection went). */
void
ngx_http_foxgov_wait_answered(ngx_http_foxgov_wait_t *w, ngx_uint_t acked)
{
    ngx_http_request_t  *r;

    w->pending--;
    if (!acked) {
        w->failed = 1;
    }

    if (w->r == NULL) {
        if (w->pending == 0) {
            ngx_free(w);                /* the request went before */
        }
        return;
    }

    if (!w->suspended || w->resumed || (w->pending > 0 && !w->failed)) {
        return;
    }

    /*
     * Known now: the call goes on from a posted event, outside hiredis's
     * callback, as if its connection had become writable.
     */
    w->resumed = 1;
    r = w->r;
    r->write_event_handler = ngx_http_foxgov_evidence_resume;
    ngx_post_event(r->connection->write, &ngx_posted_events);
}


void
ngx_http_foxgov_redis_wait_cancel(ngx_http_foxgov_wait_t *w)
{
    if (w == NULL) {
        return;
    }

    if (ngx_http_foxgov_transport != NULL
        && ngx_http_foxgov_transport->waiting == w)
    {
        ngx_http_foxgov_transport->waiting = NULL;
    }

    ngx_http_foxgov_cluster_waiting(w, 0);

    w->r = NULL;

    if (w->pending == 0) {
        ngx_free(w);
    }
}


/* ===================================================== worker start */

/*
 * Move the entries of spool files no live worker holds into ours; a file
 * whose records do not fit in ours (max bytes) is left for later.
 * Returns the number of records adopted.
 */
uint64_t
ngx_http_foxgov_spool_adopt(ngx_log_t *log, fg_spool_t *spool, u_char *own,
    ngx_str_t *dir, uint64_t max)
{
    DIR               *d;
    struct dirent     *de;
    fg_spool_t        *other;
    fg_spool_entry_t   e;
    fg_error_t         err;
    uint64_t           torn, n, all;
    u_char             path[NGX_MAX_PATH], *p;
    int                rc;

    all = 0;

    d = opendir((char *) dir->data);
    if (d == NULL) {
        return 0;
    }

    while ((de = readdir(d)) != NULL) {
        if (ngx_strncmp(de->d_name, "spool-", 6) != 0
            || ngx_strlen(de->d_name) < 10
            || ngx_strcmp(de->d_name + ngx_strlen(de->d_name) - 4, ".fgs")
               != 0)
        {
            continue;
        }

        p = ngx_snprintf(path, sizeof(path) - 1, "%V/%s", dir, de->d_name);
        *p = '\0';

        if (ngx_strcmp(path, own) == 0) {
            continue;
        }

        other = fg_spool_open((char *) path, 0, &torn, &err);
        if (other == NULL) {
            if (err.code != FG_ERR_IO) {
                ngx_log_error(NGX_LOG_ALERT, log, 0,
                              "foxgov: spool %s left as it is: %s", path,
                              err.msg);
            }
            continue;               /* a live worker's, or not readable */
        }

        if (torn > 0) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "foxgov: spool %s: a torn last entry of %uL "
                          "bytes was cut", path, torn);
        }

        /* the room held for records under way is not the adopted's */
        if (fg_spool_bytes(spool) + fg_spool_reserved(spool)
            + fg_spool_bytes(other) - FG_SPOOL_MAGIC_LEN > max)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "foxgov: spool %s not adopted yet: its records "
                          "do not fit in spool %s now", path, own);
            fg_spool_close(other);
            continue;
        }

        n = 0;
        while ((rc = fg_spool_next(other, &e, &err)) == FG_OK) {
            if (fg_spool_append(spool, &e, &err) != FG_OK) {
                break;
            }
            n++;
        }

        all += n;

        if (rc == FG_SPOOL_MORE && fg_spool_sync(spool, &err) == FG_OK) {
            unlink((char *) path);
            if (n > 0) {
                ngx_log_error(NGX_LOG_NOTICE, log, 0,
                              "foxgov: adopted %uL records from spool %s",
                              n, path);
            }
        } else {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "foxgov: spool %s not adopted: %s", path, err.msg);
        }

        fg_spool_close(other);
    }

    closedir(d);

    return all;
}


/*
 * A worker that exits while Redis has not acknowledged everything (a
 * reload, the WINCH of a binary upgrade, Redis away) leaves its spool
 * file to the workers that run on, which may all have started before it
 * exited.  So each worker looks for such files every second, while it is
 * connected and its own spool is empty, and adopts and drains them as a
 * starting worker does.
 */
static void
ngx_http_foxgov_spool_adopt_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_foxgov_transport_t  *t = c->data;

    if (t->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (t->connected && t->h.ac != NULL && t->draining == 0
        && fg_spool_entries(t->spool) == 0
        && ngx_http_foxgov_spool_adopt(t->log, t->spool, t->spool_path,
                                       &t->fmcf->spool_dir, t->fmcf->spool_max) > 0)
    {
        fg_spool_rewind(t->spool);
        ngx_http_foxgov_redis_drain(t);
    }

    ngx_add_timer(&t->adopt, NGX_HTTP_FOXGOV_ADOPT_EVERY);
}


/*
 * The worker's own spool file.  It is made and locked under a name the
 * adopters of other workers do not look at (".spool-<pid>.new"), and only
 * then given its name, spool-<pid>.fgs, so no sibling starting at the
 * same time can take it for a dead worker's file; if that name is taken
 * (the file of a dead process that had our pid, not adopted yet),
 * spool-<pid>-<n>.fgs.
 */
fg_spool_t *
ngx_http_foxgov_spool_create(ngx_log_t *log, ngx_str_t *dir, uint64_t max,
    u_char *spool_path)
{
    fg_spool_t  *spool;
    fg_error_t   err;
    uint64_t     torn;
    ngx_uint_t   i;
    u_char       path[NGX_MAX_PATH], *p;

    p = ngx_snprintf(path, sizeof(path) - 1, "%V/.spool-%P.new", dir,
                     ngx_pid);
    *p = '\0';

    spool = fg_spool_open((char *) path, max, &torn, &err);
    if (spool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "foxgov: the spool cannot be opened: %s", err.msg);
        return NULL;
    }

    for (i = 0; i < 100; i++) {
        p = i == 0
            ? ngx_snprintf(spool_path, NGX_MAX_PATH - 1,
                           "%V/spool-%P.fgs", dir, ngx_pid)
            : ngx_snprintf(spool_path, NGX_MAX_PATH - 1,
                           "%V/spool-%P-%ui.fgs", dir, ngx_pid, i);
        *p = '\0';

        if (fg_spool_rename(spool, (char *) spool_path, &err)
            == FG_OK)
        {
            return spool;
        }

        if (ngx_errno != NGX_EEXIST) {
            break;
        }
    }

    ngx_log_error(NGX_LOG_EMERG, log, 0,
                  "foxgov: the spool cannot be named: %s", err.msg);
    fg_spool_close(spool);
    (void) unlink((char *) path);
    return NULL;
}


ngx_int_t
ngx_http_foxgov_redis_start(ngx_cycle_t *cycle,
    ngx_http_foxgov_main_conf_t *fmcf)
{
    ngx_http_foxgov_transport_t  *t;

    if (fmcf->redis == NULL) {
        return NGX_OK;
    }

    if (fmcf->redis->cluster) {
        return ngx_http_foxgov_cluster_start(cycle, fmcf);
    }

    t = ngx_pcalloc(cycle->pool, sizeof(ngx_http_foxgov_transport_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->conf = fmcf->redis;
    t->log = cycle->log;
    t->backoff = NGX_HTTP_FOXGOV_REDIS_BACKOFF_MIN;

    t->dummy.fd = (ngx_socket_t) -1;
    t->dummy.data = t;
    t->reconnect.handler = ngx_http_foxgov_redis_reconnect;
    t->reconnect.data = &t->dummy;
    t->reconnect.log = t->log;
    t->reconnect.cancelable = 1;
    t->timeout.handler = ngx_http_foxgov_redis_timeout;
    t->timeout.data = &t->dummy;
    t->timeout.log = t->log;
    t->timeout.cancelable = 1;
    t->flush.handler = ngx_http_foxgov_spool_flush;
    t->flush.data = &t->dummy;
    t->flush.log = t->log;
    t->adopt.handler = ngx_http_foxgov_spool_adopt_handler;
    t->adopt.data = &t->dummy;
    t->adopt.log = t->log;
    t->adopt.cancelable = 1;
    t->fmcf = fmcf;
    t->h.send = &t->send;           /* queued commands: one write a turn */
    t->send.handler = ngx_http_foxgov_redis_send_event;
    t->send.data = &t->dummy;
    t->send.log = t->log;

    t->spool = ngx_http_foxgov_spool_create(t->log, &fmcf->spool_dir,
                                            fmcf->spool_max, t->spool_path);
    if (t->spool == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_foxgov_spool_adopt(t->log, t->spool, t->spool_path,
                                       &t->fmcf->spool_dir, t->fmcf->spool_max);

    ngx_http_foxgov_transport = t;

    ngx_http_foxgov_redis_connect(t);

    ngx_add_timer(&t->adopt, NGX_HTTP_FOXGOV_ADOPT_EVERY);

    return NGX_OK;
}


void
ngx_http_foxgov_redis_stop(ngx_cycle_t *cycle)
{
    ngx_http_foxgov_sent_t       *s;
    ngx_http_foxgov_transport_t  *t = ngx_http_foxgov_transport;
    fg_error_t                    err;

    ngx_http_foxgov_cluster_stop(cycle);

    if (t == NULL) {
        return;
    }

    t->exiting = 1;
    t->connected = 0;

    if (t->send.posted) {
        ngx_delete_posted_event(&t->send);
    }

    if (t->h.ac != NULL) {
        /* what is waited for is spooled, for the next worker to adopt */
        redisAsyncFree(t->h.ac);
        t->h.ac = NULL;
    }

    if (t->spool != NULL) {
        if (fg_spool_sync(t->spool, &err) != FG_OK) {
            ngx_log_error(NGX_LOG_ALERT, t->log, 0,
                          "foxgov: the spool cannot be written: %s", err.msg);
        }
        if (fg_spool_entries(t->spool) == 0) {
            unlink((char *) t->spool_path);
        }
        fg_spool_close(t->spool);
        t->spool = NULL;
    }

    if (t->scratch != NULL) {
        ngx_free(t->scratch);
        t->scratch = NULL;
    }

    while (t->free_sent != NULL) {
        s = t->free_sent;
        t->free_sent = s->next;
        ngx_free(s);
    }
    t->nfree_sent = 0;

    ngx_http_foxgov_transport = NULL;
}


/*
 * ngx_http_foxgov_cluster.c -- the evidence transport to a Redis Cluster
 * (foxgov_redis <seed> ... cluster, docs/directives.md): each worker
 * learns the slot map with CLUSTER SLOTS from any node it reaches, keeps
 * one hiredis async connection per node on nginx's event loop, and sends
 * the XADD of a record to the master owning the CRC16 slot of its
 * stream's hash tag, {<tenant>}.
 *
 * The guarantees of the single-Redis transport (ngx_http_foxgov_redis.c)
 * hold per hash slot instead of for the whole worker:
 *
 *   - A record goes to its node directly only while that node's
 *     connection is up and the spool holds no record of its slot that
 *     is not acknowledged yet, and no record of its slot is in flight to
 *     another node; otherwise it is appended to the spool.  A record sent
 *     and not acknowledged (the connection drops, the reply does not come,
 *     an error reply) is appended to the spool too.  So a node that is
 *     down holds back its own slots only: the tenants of the other
 *     masters go on directly.
 *
 *   - The spool (one file per worker, docs/spool.md) is drained in passes:
 *     each pass reads it from the start and sends each entry not yet
 *     acknowledged whose node is up; an entry acknowledged is marked done
 *     (in memory: a bit per entry) and its slot's count goes down.  Within
 *     a pass, once an entry of a slot is skipped or refused, the later
 *     entries of that slot are skipped too, so a slot's records reach
 *     Redis in the order they were spooled.  The file is emptied when
 *     every entry of it is done.
 *
 *   - MOVED: the slot is given to the node named (the whole map is asked
 *     for again) and the record is sent there at once when nothing of its
 *     slot is spooled or in flight elsewhere (so it cannot overtake
 *     another record of its tenant); otherwise it is spooled, behind.
 *     ASK: ASKING then the XADD to the node named, for that record only,
 *     at once (the records of its tenant in flight behind it get ASK too
 *     and follow it in order), unless records of its slot are spooled.
 *     At most 5 redirections a record, then the spool.
 *
 *   - A node's connection lost or given up asks for the map again (a
 *     failover moves its slots to a replica).
 *
 *   - replicas=N: Redis replicates asynchronously, so an XADD a master
 *     answered can die with it.  After the XADDs of one turn to a node,
 *     one WAIT N (posted event); the XADDs' answers are kept until it
 *     answers, and they count only when N replicas have them.
 *
 * As there: a record can reach Redis twice, never zero times; the ledger
 * dedupes by envelope_hash.  Every reply is hostile: CLUSTER SLOTS is
 * checked whole before anything of it is used, a redirection is parsed
 * within bounds.  Nothing blocks: connects, replies and timers only.
 */


#include "ngx_http_foxgov_common.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_FOXGOV_CLUSTER_SLOTS       FG_CLUSTER_SLOTS
#define NGX_HTTP_FOXGOV_CLUSTER_NODES       64
#define NGX_HTTP_FOXGOV_CLUSTER_REDIRECTS   5
#define NGX_HTTP_FOXGOV_CLUSTER_REFRESH     100         /* ms apart */
#define NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN 100         /* ms */
#define NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MAX 5000        /* ms */
#define NGX_HTTP_FOXGOV_CLUSTER_BATCH       256         /* drain XADDs */
#define NGX_HTTP_FOXGOV_CLUSTER_SCAN        4096        /* entries a turn */
#define NGX_HTTP_FOXGOV_CLUSTER_ERR         129         /* an error kept */


typedef struct ngx_http_foxgov_cluster_s  ngx_http_foxgov_cluster_t;
typedef struct ngx_http_foxgov_csent_s    ngx_http_foxgov_csent_t;


/* A node of the cluster and the worker's connection to it. */
typedef struct {
    ngx_http_foxgov_cluster_t     *cl;
    ngx_int_t                      index;
    char                           ip[NGX_INET_ADDRSTRLEN + 1];
    in_port_t                      port;

    ngx_http_foxgov_hiredis_t      h;           /* the connection */
    ngx_uint_t                     ready;       /* up, AUTH answered */
    ngx_uint_t                     setup;       /* AUTH waiting */
    ngx_uint_t                     waiting;     /* replies waited for */
    ngx_uint_t                     slots;       /* slots it owns */
    ngx_uint_t                     behind;      /* over backlog=: said */

    ngx_event_t                    reconnect;
    ngx_msec_t                     backoff;
    ngx_event_t                    timeout;     /* connect, or a reply */
    ngx_connection_t               dummy;

    /* replicas=: XADDs sent this turn, one WAIT after them (posted) */
    ngx_http_foxgov_csent_t       *unconfirmed;
    ngx_http_foxgov_csent_t      **unconfirmed_last;
    ngx_event_t                    confirm;
} ngx_http_foxgov_node_t;


/* A record sent, kept until its node acknowledges it. */
struct ngx_http_foxgov_csent_s {
    ngx_http_foxgov_csent_t       *next;        /* replicas=: its WAIT's */
    ngx_uint_t                     xadd;        /* replicas=: XADD_* */
    ngx_uint_t                     covered;     /* replicas=: COVER_* */
    size_t                         err_len;
    u_char                         err[NGX_HTTP_FOXGOV_CLUSTER_ERR];
    ngx_http_foxgov_wait_t        *wait;        /* strict: the call */
    ngx_http_foxgov_node_t        *node;        /* where it went */
    uint64_t                       entry;       /* drained: its ordinal */
    ngx_uint_t                     drained:1;   /* from the spool */
    size_t                         reserved;    /* spool room held */
    ngx_uint_t                     redirects;
    ngx_uint_t                     slot;
    fg_record_type_t               type;
    size_t                         tenant_len;
    char                           tenant[FG_TENANT_ID_MAX + 1];
    char                           hash[FG_SHA256_HEX_LEN + 1];
    size_t                         len;
    u_char                        *record;      /* len bytes inside cmd */
    size_t                         cmd_len;
    u_char                         cmd[1];      /* the XADD (RESP) */
};

/* replicas=: the XADD's answer, kept until the WAIT after it answers */
#define NGX_HTTP_FOXGOV_XADD_PENDING    0
#define NGX_HTTP_FOXGOV_XADD_OK         1
#define NGX_HTTP_FOXGOV_XADD_ERROR      2       /* err: what it said */
#define NGX_HTTP_FOXGOV_XADD_NONE       3       /* the connection went */

/* replicas=: whether a WAIT covers it */
#define NGX_HTTP_FOXGOV_COVER_NOT_YET   0       /* on the node's list */
#define NGX_HTTP_FOXGOV_COVER_WAIT      1       /* its WAIT answers it */
#define NGX_HTTP_FOXGOV_COVER_NONE      2       /* no WAIT: its XADD's
                                                   callback ends it */


struct ngx_http_foxgov_cluster_s {
    ngx_http_foxgov_redis_conf_t  *conf;
    ngx_log_t                     *log;
    ngx_uint_t                     exiting;

    ngx_http_foxgov_node_t         nodes[NGX_HTTP_FOXGOV_CLUSTER_NODES];
    ngx_uint_t                     nnodes;

    /* the slot map: a node's index, -1 when no node is known */
    int16_t                        slot[NGX_HTTP_FOXGOV_CLUSTER_SLOTS];
    int16_t                        next[NGX_HTTP_FOXGOV_CLUSTER_SLOTS];
    ngx_uint_t                     mapped;      /* slots with a node */

    /* per slot: spool entries not acknowledged; direct XADDs in flight */
    uint32_t                       spooled[NGX_HTTP_FOXGOV_CLUSTER_SLOTS];
    uint32_t                       inflight[NGX_HTTP_FOXGOV_CLUSTER_SLOTS];
    int16_t                        inflight_node[
                                       NGX_HTTP_FOXGOV_CLUSTER_SLOTS];

    ngx_uint_t                     refreshing;  /* CLUSTER SLOTS waiting */
    ngx_uint_t                     refresh_again;
    ngx_uint_t                     rr;          /* who is asked next */
    ngx_event_t                    refresh;

    fg_spool_t                    *spool;
    u_char                         spool_path[NGX_MAX_PATH];
    ngx_http_foxgov_main_conf_t   *fmcf;        /* foxgov_spool's dir, max */
    uint64_t                       pending;     /* entries not done */
    u_char                        *done;        /* a bit per entry */
    size_t                         done_size;   /* bytes of it */

    /* the drain pass */
    ngx_uint_t                     drain_active;
    ngx_uint_t                     drain_end;   /* read to the end */
    ngx_uint_t                     drain_skipped;
    ngx_uint_t                     drain_again;
    ngx_uint_t                     draining;    /* XADDs waiting */
    uint64_t                       entry;       /* ordinal of the next */
    u_char                         blocked[NGX_HTTP_FOXGOV_CLUSTER_SLOTS
                                           / 8];
    ngx_event_t                    drain;
    ngx_msec_t                     drain_backoff;

    ngx_event_t                    flush;       /* sync the spool */
    ngx_event_t                    adopt;       /* look for left spools */
    ngx_connection_t               dummy;

    ngx_http_foxgov_wait_t        *waiting;     /* the call emitting now */
};


static ngx_http_foxgov_cluster_t  *ngx_http_foxgov_cluster;


static void ngx_http_foxgov_node_connect(ngx_http_foxgov_node_t *n);
static void ngx_http_foxgov_node_drop(ngx_http_foxgov_node_t *n,
    const char *why);
static void ngx_http_foxgov_cluster_refresh_soon(
    ngx_http_foxgov_cluster_t *cl);
static void ngx_http_foxgov_cluster_drain_soon(ngx_http_foxgov_cluster_t *cl,
    ngx_msec_t delay);
static void ngx_http_foxgov_cluster_drain_batch(
    ngx_http_foxgov_cluster_t *cl);
static ngx_int_t ngx_http_foxgov_cluster_spool_put(
    ngx_http_foxgov_cluster_t *cl,
    fg_record_type_t type, const char *tenant, size_t tenant_len,
    const char *hash, const u_char *rec, size_t len, size_t reserved);
static void ngx_http_foxgov_cluster_on_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_foxgov_cluster_on_xadd(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_foxgov_cluster_answer(ngx_http_foxgov_node_t *n,
    ngx_http_foxgov_csent_t *s, redisReply *reply);
static void ngx_http_foxgov_cluster_confirm(ngx_event_t *ev);
static void ngx_http_foxgov_node_unconfirmed(ngx_http_foxgov_node_t *n);


/* ============================================================ slots */

static ngx_http_foxgov_node_t *
ngx_http_foxgov_cluster_owner(ngx_http_foxgov_cluster_t *cl, ngx_uint_t slot)
{
    return cl->slot[slot] >= 0 ? &cl->nodes[cl->slot[slot]] : NULL;
}


/* The node at ip:port, added (and connected) when it is not known. */
static ngx_http_foxgov_node_t *
ngx_http_foxgov_cluster_node(ngx_http_foxgov_cluster_t *cl, const char *ip,
    size_t ip_len, in_port_t port)
{
    ngx_uint_t               i;
    ngx_http_foxgov_node_t  *n;

    for (i = 0; i < cl->nnodes; i++) {
        n = &cl->nodes[i];
        if (n->port == port && ngx_strlen(n->ip) == ip_len
            && ngx_strncmp(n->ip, ip, ip_len) == 0)
        {
            return n;
        }
    }

    if (cl->nnodes == NGX_HTTP_FOXGOV_CLUSTER_NODES
        || ip_len >= sizeof(n->ip))
    {
        return NULL;
    }

    /* its timers were made at the start, for every node there may be */
    n = &cl->nodes[cl->nnodes];
    ngx_memcpy(n->ip, ip, ip_len);
    n->ip[ip_len] = '\0';
    n->port = port;

    cl->nnodes++;

    return n;
}


/* Every slot has a node and every such node is up: the gauge's 1. */
static void
ngx_http_foxgov_cluster_metrics(ngx_http_foxgov_cluster_t *cl)
{
    ngx_uint_t  i, up;

    up = cl->mapped == NGX_HTTP_FOXGOV_CLUSTER_SLOTS && !cl->exiting;

    for (i = 0; up && i < cl->nnodes; i++) {
        if (cl->nodes[i].slots > 0 && !cl->nodes[i].ready) {
            up = 0;
        }
    }

    ngx_http_foxgov_metrics_worker(ngx_http_foxgov_spool_used(cl->spool), up);
}


/* ======================================================= connections */

static void
ngx_http_foxgov_node_schedule(ngx_http_foxgov_node_t *n)
{
    ngx_msec_t  delay;

    ngx_http_foxgov_cluster_metrics(n->cl);

    if (n->cl->exiting || n->reconnect.timer_set) {
        return;
    }

    /* backoff with jitter, so the workers do not come back in step */
    delay = n->backoff + (ngx_msec_t) ngx_random() % (n->backoff / 2 + 1);

    n->backoff *= 2;
    if (n->backoff > NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MAX) {
        n->backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MAX;
    }

    ngx_add_timer(&n->reconnect, delay);
}


/* The reply timer runs while a reply of the node is waited for. */
static void
ngx_http_foxgov_node_waiting(ngx_http_foxgov_node_t *n)
{
    if (n->cl->exiting) {
        return;
    }

    if (n->waiting > 0) {
        ngx_add_timer(&n->timeout, n->cl->conf->timeout);

    } else if (n->timeout.timer_set) {
        ngx_del_timer(&n->timeout);
    }
}


static void
ngx_http_foxgov_node_ready(ngx_http_foxgov_node_t *n)
{
    ngx_http_foxgov_cluster_t  *cl = n->cl;

    if (n->timeout.timer_set) {
        ngx_del_timer(&n->timeout);
    }

    n->ready = 1;
    n->backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN;

    ngx_log_error(NGX_LOG_INFO, cl->log, 0,
                  "foxgov: redis cluster node %s:%d: connected", n->ip,
                  (int) n->port);

    if (cl->mapped == 0 || cl->refresh_again) {
        ngx_http_foxgov_cluster_refresh_soon(cl);
    }

    ngx_http_foxgov_cluster_metrics(cl);

    if (cl->pending > 0) {
        ngx_http_foxgov_cluster_drain_soon(cl, 1);
    }
}


/* The answer to AUTH: refused, the connection is given up. */
static void
ngx_http_foxgov_node_on_setup(redisAsyncContext *ac, void *r, void *data)
{
    redisReply              *reply = r;
    ngx_http_foxgov_node_t  *n = ac->data;

    (void) data;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* the reply never holds the password */
        ngx_log_error(NGX_LOG_ERR, n->cl->log, 0,
                      "foxgov: redis cluster node %s:%d refused AUTH: %*s",
                      n->ip, (int) n->port,
                      ngx_min(reply->len, 200), reply->str);
        n->setup = 0;
        redisAsyncDisconnect(ac);
        return;
    }

    if (--n->setup == 0) {
        ngx_http_foxgov_node_ready(n);
    }
}


static void
ngx_http_foxgov_node_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_foxgov_node_t  *n = ac->data;
    const char              *argv[2];
    size_t                   argvlen[2];

    if (n->timeout.timer_set) {
        ngx_del_timer(&n->timeout);
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        ngx_log_error(NGX_LOG_WARN, n->cl->log, 0,
                      "foxgov: redis cluster node %s:%d: cannot connect: %s",
                      n->ip, (int) n->port,
                      ac->errstr[0] ? ac->errstr : "error");
        n->h.ac = NULL;
        n->ready = 0;
        ngx_http_foxgov_node_schedule(n);
        ngx_http_foxgov_cluster_refresh_soon(n->cl);
        return;
    }

    if (n->cl->conf->password.len == 0) {
        ngx_http_foxgov_node_ready(n);
        return;
    }

    n->setup = 1;
    argv[0] = "AUTH";
    argvlen[0] = 4;
    argv[1] = (char *) n->cl->conf->password.data;
    argvlen[1] = n->cl->conf->password.len;
    (void) redisAsyncCommandArgv(n->h.ac, ngx_http_foxgov_node_on_setup, NULL,
                                 2, argv, argvlen);

    ngx_add_timer(&n->timeout, n->cl->conf->timeout);
}


static void
ngx_http_foxgov_node_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_foxgov_node_t  *n = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_WARN, n->cl->log, 0,
                      "foxgov: redis cluster node %s:%d: connection lost: %s",
                      n->ip, (int) n->port,
                      ac->errstr[0] ? ac->errstr : "closed");
    }

    n->h.ac = NULL;
    n->ready = 0;
    n->setup = 0;
    n->waiting = 0;

    if (n->timeout.timer_set) {
        ngx_del_timer(&n->timeout);
    }

    ngx_http_foxgov_node_unconfirmed(n);
    ngx_http_foxgov_node_schedule(n);

    /* a failover may have given its slots to another node */
    ngx_http_foxgov_cluster_refresh_soon(n->cl);
}


static void
ngx_http_foxgov_node_connect(ngx_http_foxgov_node_t *n)
{
    redisAsyncContext  *ac;

    if (n->h.ac != NULL || n->cl->exiting) {
        return;
    }

    ac = redisAsyncConnect(n->ip, (int) n->port);

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_WARN, n->cl->log, 0,
                      "foxgov: redis cluster node %s:%d: cannot connect: %s",
                      n->ip, (int) n->port,
                      ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        ngx_http_foxgov_node_schedule(n);
        return;
    }

    if (ngx_http_foxgov_hiredis_attach(&n->h, ac, n, n->cl->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_foxgov_node_schedule(n);
        return;
    }

    n->waiting = 0;

    (void) redisAsyncSetConnectCallback(ac, ngx_http_foxgov_node_on_connect);
    (void) redisAsyncSetDisconnectCallback(ac,
                                      ngx_http_foxgov_node_on_disconnect);

    ngx_add_timer(&n->timeout, n->cl->conf->connect_timeout);
}


/* Give the connection up (from a timer, never inside a hiredis call). */
static void
ngx_http_foxgov_node_drop(ngx_http_foxgov_node_t *n, const char *why)
{
    redisAsyncContext  *ac;

    ac = n->h.ac;
    if (ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, n->cl->log, 0,
                  "foxgov: redis cluster node %s:%d: %s", n->ip,
                  (int) n->port, why);

    /* what is waited for is called back with no reply: the spool */
    n->ready = 0;
    n->setup = 0;
    redisAsyncFree(ac);

    n->h.ac = NULL;
    n->waiting = 0;
    ngx_http_foxgov_node_unconfirmed(n);

    ngx_http_foxgov_node_schedule(n);
    ngx_http_foxgov_cluster_refresh_soon(n->cl);
}


static void
ngx_http_foxgov_node_timeout(ngx_event_t *ev)
{
    ngx_connection_t        *c = ev->data;
    ngx_http_foxgov_node_t  *n = c->data;

    ngx_http_foxgov_node_drop(n, n->ready
                              ? "no reply within timeout= (given up)"
                              : n->setup
                              ? "no answer to AUTH within timeout="
                              : "not connected within connect_timeout=");
}


static void
ngx_http_foxgov_node_reconnect(ngx_event_t *ev)
{
    ngx_connection_t        *c = ev->data;
    ngx_http_foxgov_node_t  *n = c->data;

    ngx_http_foxgov_node_connect(n);
}


/* ====================================================== the slot map */

static void
ngx_http_foxgov_cluster_refresh_soon(ngx_http_foxgov_cluster_t *cl)
{
    if (cl->exiting) {
        return;
    }

    if (cl->refreshing) {
        cl->refresh_again = 1;
        return;
    }

    if (!cl->refresh.timer_set) {
        /* at most ten a second, however many redirections come */
        ngx_add_timer(&cl->refresh, cl->mapped == 0
                                    ? 1 : NGX_HTTP_FOXGOV_CLUSTER_REFRESH);
    }
}


/*
 * A CLUSTER SLOTS reply into cl->next, checked whole first: an array of
 * [start, end, [ip, port, ...], replicas...] with 0 <= start <= end <
 * 16384, ip an IPv4 address (empty: the node asked), port 1..65535.
 * NGX_ERROR (nothing changed) when anything is not so.
 */
static ngx_int_t
ngx_http_foxgov_cluster_parse(ngx_http_foxgov_cluster_t *cl,
    ngx_http_foxgov_node_t *asked, redisReply *reply)
{
    redisReply              *e, *m, *ip, *port;
    ngx_uint_t               i, pass;
    long long                s, start, end;
    const char              *a;
    size_t                   alen;
    ngx_http_foxgov_node_t  *n;

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements > NGX_HTTP_FOXGOV_CLUSTER_SLOTS)
    {
        return NGX_ERROR;
    }

    for (pass = 0; pass < 2; pass++) {

        if (pass == 1) {
            for (s = 0; s < NGX_HTTP_FOXGOV_CLUSTER_SLOTS; s++) {
                cl->next[s] = -1;
            }
        }

        for (i = 0; i < reply->elements; i++) {
            e = reply->element[i];

            if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3
                || e->element[0]->type != REDIS_REPLY_INTEGER
                || e->element[1]->type != REDIS_REPLY_INTEGER
                || e->element[2]->type != REDIS_REPLY_ARRAY
                || e->element[2]->elements < 2)
            {
                return NGX_ERROR;
            }

            start = e->element[0]->integer;
            end = e->element[1]->integer;
            m = e->element[2];
            ip = m->element[0];
            port = m->element[1];

            if (start < 0 || end < start
                || end >= NGX_HTTP_FOXGOV_CLUSTER_SLOTS
                || ip->type != REDIS_REPLY_STRING
                || port->type != REDIS_REPLY_INTEGER
                || port->integer < 1 || port->integer > 65535)
            {
                return NGX_ERROR;
            }

            if (ip->len == 0) {
                a = asked->ip;
                alen = ngx_strlen(asked->ip);

            } else {
                a = ip->str;
                alen = ip->len;
            }

            if (alen >= NGX_INET_ADDRSTRLEN
                || ngx_inet_addr((u_char *) a, alen) == INADDR_NONE)
            {
                return NGX_ERROR;
            }

            if (pass == 0) {
                continue;
            }

            n = ngx_http_foxgov_cluster_node(cl, a, alen,
                                             (in_port_t) port->integer);
            if (n == NULL) {
                ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                              "foxgov: redis cluster: more than %d nodes, "
                              "%*s:%d left out", NGX_HTTP_FOXGOV_CLUSTER_NODES,
                              alen, a, (int) port->integer);
                continue;
            }

            for (s = start; s <= end; s++) {
                cl->next[s] = (int16_t) n->index;
            }
        }
    }

    return NGX_OK;
}


static void
ngx_http_foxgov_cluster_on_slots(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                 *reply = r;
    ngx_http_foxgov_node_t     *n = ac->data;
    ngx_http_foxgov_cluster_t  *cl = n->cl;
    ngx_uint_t                  i, s, mapped;

    (void) data;

    cl->refreshing = 0;
    if (n->waiting > 0) {
        n->waiting--;
    }

    if (reply == NULL || cl->exiting) {
        cl->refresh_again = 1;      /* asked again of another node */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        || ngx_http_foxgov_cluster_parse(cl, n, reply) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "foxgov: redis cluster node %s:%d: CLUSTER SLOTS "
                      "answered %s", n->ip, (int) n->port,
                      reply->type == REDIS_REPLY_ERROR
                      ? "an error" : "something unexpected (ignored)");
        cl->refresh_again = 1;

    } else {
        ngx_memcpy(cl->slot, cl->next, sizeof(cl->slot));

        for (i = 0; i < cl->nnodes; i++) {
            cl->nodes[i].slots = 0;
        }

        mapped = 0;
        for (s = 0; s < NGX_HTTP_FOXGOV_CLUSTER_SLOTS; s++) {
            if (cl->slot[s] >= 0) {
                cl->nodes[cl->slot[s]].slots++;
                mapped++;
            }
        }

        if (mapped != cl->mapped || cl->mapped == 0) {
            ngx_log_error(NGX_LOG_INFO, cl->log, 0,
                          "foxgov: redis cluster: %ui of 16384 slots "
                          "mapped", mapped);
        }
        cl->mapped = mapped;

        for (i = 0; i < cl->nnodes; i++) {
            if (cl->nodes[i].slots > 0 && cl->nodes[i].h.ac == NULL
                && !cl->nodes[i].reconnect.timer_set)
            {
                ngx_http_foxgov_node_connect(&cl->nodes[i]);
            }
        }

        ngx_http_foxgov_cluster_metrics(cl);

        if (cl->pending > 0) {
            ngx_http_foxgov_cluster_drain_soon(cl, 1);
        }
    }

    ngx_http_foxgov_node_waiting(n);

    if (cl->refresh_again) {
        cl->refresh_again = 0;
        ngx_http_foxgov_cluster_refresh_soon(cl);
    }
}


static void
ngx_http_foxgov_cluster_refresh_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_cluster_t  *cl = c->data;
    ngx_http_foxgov_node_t     *n;
    ngx_uint_t                  i;

    if (cl->refreshing || cl->exiting) {
        return;
    }

    /* any node that is up may answer: the next one each time */
    for (i = 0; i < cl->nnodes; i++) {
        n = &cl->nodes[(cl->rr + i) % cl->nnodes];

        if (!n->ready || n->h.ac == NULL) {
            continue;
        }

        if (redisAsyncCommand(n->h.ac, ngx_http_foxgov_cluster_on_slots, NULL,
                              "CLUSTER SLOTS")
            != REDIS_OK)
        {
            continue;
        }

        cl->rr = (cl->rr + i + 1) % cl->nnodes;
        cl->refreshing = 1;
        cl->refresh_again = 0;
        n->waiting++;
        ngx_http_foxgov_node_waiting(n);
        return;
    }

    /* none is up: the first that comes up asks */
    cl->refresh_again = 1;
}


/* ========================================================== records */

static ngx_uint_t
ngx_http_foxgov_cluster_acked(redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_STRING;
}


static ngx_int_t
ngx_http_foxgov_cluster_xadd(ngx_http_foxgov_node_t *n,
    ngx_http_foxgov_csent_t *s, ngx_uint_t asking)
{
    if (!n->ready || n->h.ac == NULL) {
        return NGX_ERROR;
    }

    if (asking
        && redisAsyncCommand(n->h.ac, NULL, NULL, "ASKING") != REDIS_OK)
    {
        return NGX_ERROR;
    }

    if (redisAsyncFormattedCommand(n->h.ac,
                                   n->cl->conf->replicas
                                   ? ngx_http_foxgov_cluster_on_xadd
                                   : ngx_http_foxgov_cluster_on_reply,
                                   s, (char *) s->cmd, s->cmd_len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    s->node = n;
    n->waiting++;
    ngx_http_foxgov_node_waiting(n);

    if (n->cl->conf->replicas) {
        /* acknowledged once a WAIT after it says replicas have it */
        s->xadd = NGX_HTTP_FOXGOV_XADD_PENDING;
        s->covered = NGX_HTTP_FOXGOV_COVER_NOT_YET;
        s->next = NULL;
        *n->unconfirmed_last = s;
        n->unconfirmed_last = &s->next;

        if (!n->confirm.posted) {
            ngx_post_event(&n->confirm, &ngx_posted_events);
        }
    }

    return NGX_OK;
}


static ngx_http_foxgov_csent_t *
ngx_http_foxgov_cluster_copy(ngx_log_t *log, fg_record_type_t type,
    const char *tenant, size_t tenant_len, const char *hash,
    const u_char *rec, size_t len)
{
    ngx_http_foxgov_csent_t  *s;

    s = ngx_alloc(sizeof(ngx_http_foxgov_csent_t)
                  + ngx_http_foxgov_xadd_size(tenant_len, len), log);
    if (s == NULL) {
        return NULL;
    }

    ngx_memzero(s, sizeof(ngx_http_foxgov_csent_t));
    s->type = type;
    s->tenant_len = tenant_len;
    ngx_memcpy(s->tenant, tenant, tenant_len);
    ngx_memcpy(s->hash, hash, FG_SHA256_HEX_LEN);
    s->hash[FG_SHA256_HEX_LEN] = '\0';
    s->len = len;
    /* formatted once: a redirected record is sent again as it is */
    s->cmd_len = ngx_http_foxgov_xadd_format(s->cmd, type, s->tenant,
                                             tenant_len, s->hash, rec, len,
                                             &s->record)
                 - s->cmd;
    s->slot = fg_stream_slot(tenant, tenant_len);

    return s;
}


/*
 * "MOVED <slot> <ip>:<port>" or "ASK <slot> <ip>:<port>": the node named,
 * known or added now (connected by the next map), or NULL.
 */
static ngx_http_foxgov_node_t *
ngx_http_foxgov_cluster_redirect(ngx_http_foxgov_cluster_t *cl,
    ngx_http_foxgov_node_t *from, redisReply *reply, ngx_uint_t *ask,
    ngx_int_t *slot)
{
    u_char      *p, *last, *sp, *colon;
    ngx_int_t    port;
    size_t       ip_len;
    const char  *ip;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || reply->len > 128)
    {
        return NULL;
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    if (reply->len > 6 && ngx_strncmp(p, "MOVED ", 6) == 0) {
        *ask = 0;
        p += 6;

    } else if (reply->len > 4 && ngx_strncmp(p, "ASK ", 4) == 0) {
        *ask = 1;
        p += 4;

    } else {
        return NULL;
    }

    sp = ngx_strlchr(p, last, ' ');
    if (sp == NULL) {
        return NULL;
    }

    *slot = ngx_atoi(p, sp - p);
    if (*slot == NGX_ERROR || *slot >= NGX_HTTP_FOXGOV_CLUSTER_SLOTS) {
        return NULL;
    }

    p = sp + 1;
    for (colon = last; colon > p && colon[-1] != ':'; colon--) {
        /* void */
    }
    if (colon == p) {
        return NULL;
    }

    port = ngx_atoi(colon, last - colon);
    if (port == NGX_ERROR || port < 1 || port > 65535) {
        return NULL;
    }

    ip = (const char *) p;
    ip_len = (size_t) (colon - 1 - p);

    if (ip_len == 0) {
        ip = from->ip;                  /* the node that answered */
        ip_len = ngx_strlen(from->ip);
    }

    if (ip_len >= NGX_INET_ADDRSTRLEN
        || ngx_inet_addr((u_char *) ip, ip_len) == INADDR_NONE)
    {
        return NULL;
    }

    return ngx_http_foxgov_cluster_node(cl, ip, ip_len, (in_port_t) port);
}


static ngx_uint_t
ngx_http_foxgov_cluster_blocked(ngx_http_foxgov_cluster_t *cl,
    ngx_uint_t slot)
{
    return cl->blocked[slot >> 3] & (1 << (slot & 7));
}


static void
ngx_http_foxgov_cluster_block(ngx_http_foxgov_cluster_t *cl,
    ngx_uint_t slot)
{
    cl->blocked[slot >> 3] |= (u_char) (1 << (slot & 7));
    cl->drain_skipped = 1;
}


/* A drained entry is in Redis: marked done, its slot's count down. */
static void
ngx_http_foxgov_cluster_done(ngx_http_foxgov_cluster_t *cl,
    ngx_http_foxgov_csent_t *s)
{
    size_t   byte, size;
    u_char  *done;

    byte = (size_t) (s->entry >> 3);

    if (byte >= cl->done_size) {
        size = ngx_max(cl->done_size * 2, 4096);
        while (size <= byte) {
            size *= 2;
        }

        done = ngx_alloc(size, cl->log);
        if (done == NULL) {
            /* not marked: sent again by the next pass (a duplicate) */
            cl->drain_skipped = 1;
            return;
        }

        ngx_memzero(done, size);
        if (cl->done != NULL) {
            ngx_memcpy(done, cl->done, cl->done_size);
            ngx_free(cl->done);
        }
        cl->done = done;
        cl->done_size = size;
    }

    if (cl->done[byte] & (1 << (s->entry & 7))) {
        return;
    }

    cl->done[byte] |= (u_char) (1 << (s->entry & 7));

    if (cl->spooled[s->slot] > 0) {
        cl->spooled[s->slot]--;
    }
    if (cl->pending > 0) {
        cl->pending--;
    }
}


/*
 * Does node n hold more unwritten bytes than backlog= (the node reads
 * more slowly than records come)?  Its slots' records then go to the
 * spool, and the drain holds them back until it has caught up, as the
 * single form does (ngx_http_foxgov_redis.c).
 */
static ngx_uint_t
ngx_http_foxgov_cluster_behind(ngx_http_foxgov_cluster_t *cl,
    ngx_http_foxgov_node_t *n)
{
    size_t  unwritten;

    unwritten = ngx_http_foxgov_hiredis_unwritten(&n->h);

    if (unwritten < cl->conf->backlog) {
        n->behind = 0;
        return 0;
    }

    if (!n->behind) {
        n->behind = 1;
        ngx_log_error(NGX_LOG_WARN, cl->log, 0,
                      "foxgov: redis is behind: %uz bytes of records wait "
                      "to be written to %s:%d (backlog=%uz); its records go "
                      "to the spool until it catches up", unwritten,
                      n->ip, (int) n->port, cl->conf->backlog);
    }

    return 1;
}


/*
 * May a record of slot go to node n directly now?  Not while records of
 * its slot wait in the spool, nor while some are in flight to another
 * node: it would overtake them.
 */
static ngx_uint_t
ngx_http_foxgov_cluster_direct(ngx_http_foxgov_cluster_t *cl,
    ngx_http_foxgov_node_t *n, ngx_uint_t slot)
{
    return n != NULL && n->ready && n->h.ac != NULL && !cl->exiting
           && !ngx_http_foxgov_cluster_behind(cl, n)
           && cl->spooled[slot] == 0
           && (cl->inflight[slot] == 0
               || cl->inflight_node[slot] == n->index);
}


static void
ngx_http_foxgov_cluster_on_reply(redisAsyncContext *ac, void *r, void *data)
{
    ngx_http_foxgov_node_t  *n = ac->data;

    if (n->waiting > 0) {
        n->waiting--;
    }

    if (r == NULL) {
        n->ready = 0;                   /* the connection is going */
    }

    ngx_http_foxgov_cluster_answer(n, data, r);
}


/*
 * replicas=: an XADD's answer is kept in the record until the WAIT after
 * it answers; when no WAIT covers it (it could not be sent), this is the
 * record's last callback and it is answered here.
 */
static void
ngx_http_foxgov_cluster_on_xadd(redisAsyncContext *ac, void *r, void *data)
{
    redisReply               *reply = r;
    ngx_http_foxgov_csent_t  *s = data;
    ngx_http_foxgov_node_t   *n = ac->data;
    redisReply                err;

    if (n->waiting > 0) {
        n->waiting--;
    }

    if (reply == NULL) {
        n->ready = 0;
        s->xadd = NGX_HTTP_FOXGOV_XADD_NONE;

    } else if (reply->type == REDIS_REPLY_STRING) {
        s->xadd = NGX_HTTP_FOXGOV_XADD_OK;

    } else {
        s->xadd = NGX_HTTP_FOXGOV_XADD_ERROR;
        if (reply->type == REDIS_REPLY_ERROR) {
            s->err_len = ngx_min(reply->len, sizeof(s->err) - 1);
            ngx_memcpy(s->err, reply->str, s->err_len);
        } else {
            s->err_len = ngx_sprintf(s->err, "an unexpected reply") - s->err;
        }
    }

    if (s->covered != NGX_HTTP_FOXGOV_COVER_NONE) {
        ngx_http_foxgov_node_waiting(n);
        return;                         /* its WAIT, or the list, has it */
    }

    if (s->xadd == NGX_HTTP_FOXGOV_XADD_ERROR) {
        ngx_memzero(&err, sizeof(redisReply));
        err.type = REDIS_REPLY_ERROR;
        err.str = (char *) s->err;
        err.len = s->err_len;
        ngx_http_foxgov_cluster_answer(n, s, &err);

    } else {
        /* no replica confirmed it: not acknowledged */
        ngx_http_foxgov_cluster_answer(n, s, NULL);
    }
}


/* A record whose XADD and WAIT are answered (or will never be). */
static void
ngx_http_foxgov_cluster_confirmed(ngx_http_foxgov_node_t *n,
    ngx_http_foxgov_csent_t *s, ngx_uint_t confirmed)
{
    redisReply  fake;

    ngx_memzero(&fake, sizeof(redisReply));

    switch (s->xadd) {

    case NGX_HTTP_FOXGOV_XADD_OK:
        if (!confirmed) {
            ngx_http_foxgov_cluster_answer(n, s, NULL);
            return;
        }
        fake.type = REDIS_REPLY_STRING;
        fake.str = (char *) "";
        ngx_http_foxgov_cluster_answer(n, s, &fake);
        return;

    case NGX_HTTP_FOXGOV_XADD_ERROR:
        fake.type = REDIS_REPLY_ERROR;
        fake.str = (char *) s->err;
        fake.len = s->err_len;
        ngx_http_foxgov_cluster_answer(n, s, &fake);
        return;

    default:
        ngx_http_foxgov_cluster_answer(n, s, NULL);
        return;
    }
}


/* The WAIT after a turn's XADDs of a node: how many replicas have them. */
static void
ngx_http_foxgov_cluster_on_wait(redisAsyncContext *ac, void *r, void *data)
{
    redisReply                 *reply = r;
    ngx_http_foxgov_csent_t    *s, *next;
    ngx_http_foxgov_node_t     *n = ac->data;
    ngx_http_foxgov_cluster_t  *cl = n->cl;
    ngx_uint_t                  confirmed;

    if (n->waiting > 0) {
        n->waiting--;
    }

    if (reply == NULL) {
        n->ready = 0;
    }

    confirmed = reply != NULL && reply->type == REDIS_REPLY_INTEGER
                && reply->integer >= (long long) cl->conf->replicas;

    if (reply != NULL && !confirmed) {
        ngx_log_error(NGX_LOG_WARN, cl->log, 0,
                      "foxgov: redis cluster node %s:%d: WAIT %ui: %s; the "
                      "records go through the spool", n->ip, (int) n->port,
                      cl->conf->replicas,
                      reply->type == REDIS_REPLY_INTEGER
                      ? "fewer replicas have them" : "not answered");
    }

    /* the XADDs before it are answered, in order, before it */
    for (s = data; s != NULL; s = next) {
        next = s->next;
        ngx_http_foxgov_cluster_confirmed(n, s, confirmed);
    }

    ngx_http_foxgov_node_waiting(n);
}


/*
 * replicas=: the node's connection is gone and its XADDs are called back:
 * those no WAIT was sent after yet are not confirmed (a WAIT on the next
 * connection would say nothing of them).
 */
static void
ngx_http_foxgov_node_unconfirmed(ngx_http_foxgov_node_t *n)
{
    ngx_http_foxgov_csent_t  *s, *next;

    s = n->unconfirmed;
    n->unconfirmed = NULL;
    n->unconfirmed_last = &n->unconfirmed;

    for ( /* void */ ; s != NULL; s = next) {
        next = s->next;
        s->next = NULL;
        s->covered = NGX_HTTP_FOXGOV_COVER_NONE;
        if (s->xadd != NGX_HTTP_FOXGOV_XADD_PENDING) {
            ngx_http_foxgov_cluster_confirmed(n, s, 0);
        }
    }
}


/* replicas=: one WAIT after the XADDs sent to the node this turn. */
static void
ngx_http_foxgov_cluster_confirm(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_node_t     *n = c->data;
    ngx_http_foxgov_cluster_t  *cl = n->cl;
    ngx_http_foxgov_csent_t    *list, *s;
    u_char                      num[NGX_INT_T_LEN], ms[NGX_INT_T_LEN];
    u_char                     *np, *mp;
    const char                 *argv[3];
    size_t                      argvlen[3];
    ngx_uint_t                  covered;

    list = n->unconfirmed;
    n->unconfirmed = NULL;
    n->unconfirmed_last = &n->unconfirmed;

    if (list == NULL) {
        return;
    }

    /* within the reply timer: half of timeout= for the replicas */
    np = ngx_sprintf(num, "%ui", cl->conf->replicas);
    mp = ngx_sprintf(ms, "%M", cl->conf->timeout / 2 + 1);

    argv[0] = "WAIT";          argvlen[0] = 4;
    argv[1] = (char *) num;    argvlen[1] = (size_t) (np - num);
    argv[2] = (char *) ms;     argvlen[2] = (size_t) (mp - ms);

    covered = n->h.ac != NULL && !cl->exiting
              && redisAsyncCommandArgv(n->h.ac, ngx_http_foxgov_cluster_on_wait,
                                       list, 3, argv, argvlen)
                 == REDIS_OK;

    if (covered) {
        for (s = list; s != NULL; s = s->next) {
            s->covered = NGX_HTTP_FOXGOV_COVER_WAIT;
        }
        n->waiting++;
        ngx_http_foxgov_node_waiting(n);
        return;
    }

    /* no WAIT: each is answered, not confirmed, by its XADD's callback */
    n->unconfirmed = list;
    ngx_http_foxgov_node_unconfirmed(n);
}


static void
ngx_http_foxgov_cluster_answer(ngx_http_foxgov_node_t *n,
    ngx_http_foxgov_csent_t *s, redisReply *reply)
{
    ngx_http_foxgov_cluster_t  *cl = n->cl;
    ngx_http_foxgov_node_t     *to;
    ngx_uint_t                  acked, ask;
    ngx_int_t                   slot;

    if (!s->drained && cl->inflight[s->slot] > 0) {
        cl->inflight[s->slot]--;
    }

    acked = ngx_http_foxgov_cluster_acked(reply);
    ask = 0;
    slot = -1;

    if (acked) {
        if (s->drained) {
            ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_DRAINED);
            ngx_http_foxgov_cluster_done(cl, s);
        } else {
            ngx_http_foxgov_metrics_add(NGX_HTTP_FOXGOV_METRIC_SENT);
            ngx_http_foxgov_cluster_release(s->reserved);
        }
        goto answered;
    }

    to = cl->exiting ? NULL
         : ngx_http_foxgov_cluster_redirect(cl, n, reply, &ask, &slot);

    if (to != NULL && (ngx_uint_t) slot != s->slot) {
        to = NULL;                      /* not this record's slot */
    }

    if (to != NULL) {
        if (!ask) {
            /* the slot is there now; the whole map is asked for again */
            cl->slot[slot] = (int16_t) to->index;
            ngx_http_foxgov_cluster_refresh_soon(cl);
        }

        if (to->h.ac == NULL && !to->reconnect.timer_set) {
            ngx_http_foxgov_node_connect(to);
        }

        /*
         * ASK: the key is not on the node asked (migrated, or not made
         * yet), so the records of its tenant in flight behind this one
         * get ASK too, in order, and follow it: it may go at once.
         * MOVED: only when nothing of its slot is in flight elsewhere.
         */
        if (s->redirects < NGX_HTTP_FOXGOV_CLUSTER_REDIRECTS
            && (s->drained
                ? !ngx_http_foxgov_cluster_blocked(cl, s->slot)
                : ask ? cl->spooled[s->slot] == 0
                : ngx_http_foxgov_cluster_direct(cl, to, s->slot))
            && ngx_http_foxgov_cluster_xadd(to, s, ask) == NGX_OK)
        {
            /* the same record, sent on: still waited for */
            s->redirects++;
            if (!s->drained) {
                cl->inflight[s->slot]++;
                cl->inflight_node[s->slot] = (int16_t) to->index;
            }
            ngx_http_foxgov_node_waiting(n);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, cl->log, 0,
                      "foxgov: redis cluster: %*s for a %s record of %*s: "
                      "it goes through the spool", ngx_min(reply->len, 128),
                      reply->str, fg_record_type_name(s->type),
                      s->tenant_len, s->tenant);

    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, cl->log, 0,
                      "foxgov: redis cluster node %s:%d refused a %s record "
                      "of %*s: %*s", n->ip, (int) n->port,
                      fg_record_type_name(s->type), s->tenant_len, s->tenant,
                      ngx_min(reply->len, 200), reply->str);

        /* CLUSTERDOWN, TRYAGAIN, a redirection not followed: a new map */
        ngx_http_foxgov_cluster_refresh_soon(cl);
    }

    if (s->drained) {
        /* the spool keeps it; later entries of its slot wait too */
        ngx_http_foxgov_cluster_block(cl, s->slot);

    } else {
        /* not acknowledged: kept, to be sent again from the spool */
        (void) ngx_http_foxgov_cluster_spool_put(cl, s->type, s->tenant,
                                                 s->tenant_len, s->hash,
                                                 s->record, s->len,
                                                 s->reserved);
    }

answered:

    if (s->wait != NULL) {
        ngx_http_foxgov_wait_answered(s->wait, acked);
    }

    if (s->drained) {
        cl->draining--;
        if (cl->draining == 0 && !cl->exiting) {
            ngx_http_foxgov_cluster_drain_batch(cl);
        }
    }

    ngx_free(s);

    ngx_http_foxgov_node_waiting(n);
}


/* ============================================================ spool */

static void
ngx_http_foxgov_cluster_flush(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_cluster_t  *cl = c->data;

    ngx_http_foxgov_spool_sync(cl->log, cl->spool);
}


/*
 * Append a record to the spool.  NGX_ERROR when it could not be kept (a
 * full spool, a full disk): it is then logged at alert and counted as
 * failed, and the caller refuses the call if it has not been forwarded.
 */
static ngx_int_t
ngx_http_foxgov_cluster_spool_put(ngx_http_foxgov_cluster_t *cl,
    fg_record_type_t type, const char *tenant, size_t tenant_len,
    const char *hash, const u_char *rec, size_t len, size_t reserved)
{
    if (ngx_http_foxgov_spool_keep(cl->log, cl->spool, &cl->flush,
                                   cl->exiting, type, tenant, tenant_len,
                                   hash, rec, len, reserved)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cl->spooled[fg_stream_slot(tenant, tenant_len)]++;
    cl->pending++;

    ngx_http_foxgov_cluster_metrics(cl);

    if (cl->exiting) {
        return NGX_OK;
    }

    if (cl->drain_active) {
        cl->drain_again = 1;
    } else {
        ngx_http_foxgov_cluster_drain_soon(cl, cl->drain_backoff);
    }

    return NGX_OK;
}


static void
ngx_http_foxgov_cluster_drain_soon(ngx_http_foxgov_cluster_t *cl,
    ngx_msec_t delay)
{
    if (cl->exiting) {
        return;
    }

    if (cl->drain.timer_set) {
        if (delay > 1) {
            return;                     /* a pass is due already */
        }

        /* a node came up: now, not when the backoff says */
        ngx_del_timer(&cl->drain);
        cl->drain_backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN;
    }

    ngx_add_timer(&cl->drain, delay ? delay : 1);
}


/* The pass is over: empty the spool, or go again after a while. */
static void
ngx_http_foxgov_cluster_drain_end(ngx_http_foxgov_cluster_t *cl)
{
    fg_error_t  err;

    cl->drain_active = 0;

    if (cl->pending == 0) {
        if (fg_spool_entries(cl->spool) > 0
            && fg_spool_truncate(cl->spool, &err) != FG_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cl->log, 0,
                          "foxgov: the spool cannot be emptied: %s", err.msg);
        }

        if (cl->done != NULL) {
            ngx_memzero(cl->done, cl->done_size);
        }

        cl->drain_backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN;
        cl->drain_again = 0;
        ngx_http_foxgov_cluster_metrics(cl);
        return;
    }

    if (cl->drain_again && !cl->drain_skipped) {
        /* records came while the pass ran, none held back: at once */
        cl->drain_again = 0;
        ngx_http_foxgov_cluster_drain_soon(cl, 1);
        return;
    }

    /* a node is down or refused: after the backoff (or when it is up) */
    cl->drain_again = 0;
    ngx_http_foxgov_cluster_drain_soon(cl, cl->drain_backoff);

    cl->drain_backoff *= 2;
    if (cl->drain_backoff > NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MAX) {
        cl->drain_backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MAX;
    }
}


/* Send the next batch of the pass's entries. */
static void
ngx_http_foxgov_cluster_drain_batch(ngx_http_foxgov_cluster_t *cl)
{
    fg_spool_entry_t          e;
    fg_error_t                err;
    ngx_uint_t                sent, read, slot;
    uint64_t                  idx;
    ngx_http_foxgov_node_t   *n;
    ngx_http_foxgov_csent_t  *s;
    int                       rc;

    if (!cl->drain_active) {
        return;
    }

    sent = 0;

    for (read = 0;
         !cl->drain_end && sent < NGX_HTTP_FOXGOV_CLUSTER_BATCH
         && read < NGX_HTTP_FOXGOV_CLUSTER_SCAN;
         read++)
    {
        rc = fg_spool_next(cl->spool, &e, &err);

        if (rc == FG_SPOOL_MORE) {
            cl->drain_end = 1;
            break;
        }

        if (rc != FG_OK) {
            ngx_log_error(NGX_LOG_ALERT, cl->log, 0,
                          "foxgov: the spool cannot be read: %s", err.msg);
            cl->drain_end = 1;
            cl->drain_skipped = 1;
            break;
        }

        idx = cl->entry++;

        if ((idx >> 3) < cl->done_size
            && (cl->done[idx >> 3] & (1 << (idx & 7))))
        {
            continue;                   /* in Redis already */
        }

        slot = fg_stream_slot(e.tenant, e.tenant_len);
        n = ngx_http_foxgov_cluster_owner(cl, slot);

        if (ngx_http_foxgov_cluster_blocked(cl, slot)
            || n == NULL || !n->ready || n->h.ac == NULL
            || ngx_http_foxgov_cluster_behind(cl, n)
            || cl->inflight[slot] > 0)
        {
            ngx_http_foxgov_cluster_block(cl, slot);
            continue;
        }

        s = ngx_http_foxgov_cluster_copy(cl->log, e.type, e.tenant,
                                         e.tenant_len, e.hash, e.record,
                                         e.record_len);
        if (s == NULL) {
            ngx_http_foxgov_cluster_block(cl, slot);
            continue;
        }

        s->drained = 1;
        s->entry = idx;

        if (ngx_http_foxgov_cluster_xadd(n, s, 0) != NGX_OK) {
            ngx_free(s);
            ngx_http_foxgov_cluster_block(cl, slot);
            continue;
        }

        cl->draining++;
        sent++;
    }

    if (cl->draining > 0) {
        return;                         /* their replies go on with it */
    }

    if (cl->drain_end) {
        ngx_http_foxgov_cluster_drain_end(cl);
        return;
    }

    /* a long run of entries done or held back: on at the next turn */
    ngx_http_foxgov_cluster_drain_soon(cl, 1);
}


static void
ngx_http_foxgov_cluster_drain_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_cluster_t  *cl = c->data;

    if (cl->exiting || cl->spool == NULL) {
        return;
    }

    if (cl->drain_active) {
        if (cl->draining == 0) {
            ngx_http_foxgov_cluster_drain_batch(cl);   /* read on */
        }
        return;
    }

    if (cl->pending == 0) {
        ngx_http_foxgov_cluster_drain_end(cl);
        return;
    }

    cl->drain_active = 1;
    cl->drain_end = 0;
    cl->drain_skipped = 0;
    cl->drain_again = 0;
    cl->entry = 0;
    ngx_memzero(cl->blocked, sizeof(cl->blocked));
    fg_spool_rewind(cl->spool);

    ngx_http_foxgov_cluster_drain_batch(cl);
}


/* ======================================================= the module */

ngx_uint_t
ngx_http_foxgov_cluster_running(void)
{
    return ngx_http_foxgov_cluster != NULL;
}


void
ngx_http_foxgov_cluster_waiting(ngx_http_foxgov_wait_t *w, ngx_uint_t set)
{
    ngx_http_foxgov_cluster_t  *cl = ngx_http_foxgov_cluster;

    if (cl == NULL) {
        return;
    }

    if (set) {
        cl->waiting = w;

    } else if (w == NULL || cl->waiting == w) {
        cl->waiting = NULL;
    }
}


ngx_int_t
ngx_http_foxgov_cluster_reserve(size_t n, fg_error_t *err)
{
    ngx_http_foxgov_cluster_t  *cl = ngx_http_foxgov_cluster;

    if (cl == NULL || cl->spool == NULL) {
        return NGX_DECLINED;
    }

    return fg_spool_reserve(cl->spool, n, err) == FG_OK ? NGX_OK : NGX_ERROR;
}


void
ngx_http_foxgov_cluster_release(size_t n)
{
    ngx_http_foxgov_cluster_t  *cl = ngx_http_foxgov_cluster;

    if (cl != NULL && cl->spool != NULL && n > 0) {
        fg_spool_release(cl->spool, n);
    }
}


/*
 * As the single form's send (ngx_http_foxgov_redis.c): a record sent
 * directly holds its room in the spool until it is acknowledged.
 */
ngx_int_t
ngx_http_foxgov_cluster_send(ngx_log_t *log, fg_record_type_t type,
    const ngx_str_t *tenant, const char *hash, const u_char *rec,
    size_t len, size_t reserved)
{
    size_t                      held;
    ngx_http_foxgov_csent_t    *s;
    ngx_http_foxgov_node_t     *n;
    ngx_http_foxgov_cluster_t  *cl = ngx_http_foxgov_cluster;
    ngx_uint_t                  slot;

    if (cl == NULL) {
        return NGX_DECLINED;
    }

    if (tenant->len == 0 || tenant->len > FG_TENANT_ID_MAX) {
        return NGX_ERROR;
    }

    slot = fg_stream_slot((char *) tenant->data, tenant->len);
    n = ngx_http_foxgov_cluster_owner(cl, slot);

    s = NULL;
    held = reserved;

    if (ngx_http_foxgov_cluster_direct(cl, n, slot)) {
        if (ngx_http_foxgov_spool_hold(cl->log, cl->spool, type, hash,
                                       tenant->len, len, reserved, &held)
            != NGX_OK)
        {
            if (cl->waiting != NULL) {
                cl->waiting->failed = 1;
            }
            return NGX_ERROR;
        }

        s = ngx_http_foxgov_cluster_copy(log, type, (char *) tenant->data,
                                         tenant->len, hash, rec, len);
        if (s != NULL) {
            s->reserved = held;
        }
    }

    if (s == NULL || ngx_http_foxgov_cluster_xadd(n, s, 0) != NGX_OK) {
        /* behind what the spool holds of its slot, in order */
        if (s != NULL) {
            ngx_free(s);
        }
        if (cl->waiting != NULL) {
            cl->waiting->failed = 1;    /* not acknowledged: strict 503 */
        }
        /* neither sent nor spooled: NGX_ERROR, the call is not forwarded */
        return ngx_http_foxgov_cluster_spool_put(cl, type,
                                                 (char *) tenant->data,
                                                 tenant->len, hash, rec, len,
                                                 held);
    }

    s->wait = cl->waiting;
    if (s->wait != NULL) {
        s->wait->pending++;
    }

    cl->inflight[slot]++;
    cl->inflight_node[slot] = (int16_t) n->index;

    /*
     * Into the socket now rather than on the next write event: bytes in
     * the kernel's buffer reach Redis even if this worker is killed the
     * next moment.  A failed write calls back (the record goes to the
     * spool) and may end the context.
     */
    ngx_http_foxgov_hiredis_write(&n->h);

    return NGX_OK;
}


/* The spool's entries counted per slot (a worker's start, adopted ones). */
static void
ngx_http_foxgov_cluster_count(ngx_http_foxgov_cluster_t *cl)
{
    fg_spool_entry_t  e;
    fg_error_t        err;
    int               rc;

    fg_spool_rewind(cl->spool);

    while ((rc = fg_spool_next(cl->spool, &e, &err)) == FG_OK) {
        cl->spooled[fg_stream_slot(e.tenant, e.tenant_len)]++;
        cl->pending++;
    }

    if (rc != FG_SPOOL_MORE) {
        ngx_log_error(NGX_LOG_ALERT, cl->log, 0,
                      "foxgov: the spool cannot be read: %s", err.msg);
    }

    fg_spool_rewind(cl->spool);
}


/*
 * Move the entries of spool files no live worker holds into ours, and
 * count ours per slot.  The count reads the whole file: ours must hold
 * nothing counted yet (a worker's start, or an empty spool).  Returns the
 * number of records adopted.
 */
static uint64_t
ngx_http_foxgov_cluster_adopt(ngx_http_foxgov_cluster_t *cl)
{
    uint64_t  n;

    n = ngx_http_foxgov_spool_adopt(cl->log, cl->spool, cl->spool_path,
                                    &cl->fmcf->spool_dir, cl->fmcf->spool_max);
    ngx_http_foxgov_cluster_count(cl);

    return n;
}


/*
 * As the single form does (ngx_http_foxgov_redis.c): the file of a worker
 * that exited after this one started (a reload, the WINCH of a binary
 * upgrade) is adopted and drained by a running worker, not left until
 * the next worker starts.  Only while no pass runs and nothing of ours is
 * pending, so the adopted entries are counted alone and the entry
 * ordinals of the done bits start from an empty file; and only once the
 * map is known, as the single form waits to be connected.
 */
static void
ngx_http_foxgov_cluster_adopt_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_cluster_t  *cl = c->data;

    if (cl->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (cl->mapped > 0 && !cl->drain_active && cl->pending == 0
        && fg_spool_entries(cl->spool) == 0
        && ngx_http_foxgov_cluster_adopt(cl) > 0)
    {
        ngx_http_foxgov_cluster_metrics(cl);
        ngx_http_foxgov_cluster_drain_soon(cl, 1);
    }

    ngx_add_timer(&cl->adopt, NGX_HTTP_FOXGOV_ADOPT_EVERY);
}


static void
ngx_http_foxgov_cluster_timer(ngx_http_foxgov_cluster_t *cl, ngx_event_t *ev,
    ngx_event_handler_pt handler, ngx_connection_t *dummy, ngx_uint_t cancel)
{
    ev->handler = handler;
    ev->data = dummy;
    ev->log = cl->log;
    ev->cancelable = cancel;
}


ngx_int_t
ngx_http_foxgov_cluster_start(ngx_cycle_t *cycle,
    ngx_http_foxgov_main_conf_t *fmcf)
{
    ngx_uint_t                  i;
    ngx_http_foxgov_node_t     *n;
    ngx_http_foxgov_cluster_t  *cl;

    cl = ngx_pcalloc(cycle->pool, sizeof(ngx_http_foxgov_cluster_t));
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->conf = fmcf->redis;
    cl->log = cycle->log;
    cl->drain_backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN;

    for (i = 0; i < NGX_HTTP_FOXGOV_CLUSTER_SLOTS; i++) {
        cl->slot[i] = -1;
    }

    cl->dummy.fd = (ngx_socket_t) -1;
    cl->dummy.data = cl;
    ngx_http_foxgov_cluster_timer(cl, &cl->refresh,
                                  ngx_http_foxgov_cluster_refresh_handler,
                                  &cl->dummy, 1);
    ngx_http_foxgov_cluster_timer(cl, &cl->drain,
                                  ngx_http_foxgov_cluster_drain_handler,
                                  &cl->dummy, 1);
    ngx_http_foxgov_cluster_timer(cl, &cl->flush,
                                  ngx_http_foxgov_cluster_flush,
                                  &cl->dummy, 0);
    ngx_http_foxgov_cluster_timer(cl, &cl->adopt,
                                  ngx_http_foxgov_cluster_adopt_handler,
                                  &cl->dummy, 1);

    cl->fmcf = fmcf;

    cl->spool = ngx_http_foxgov_spool_create(cl->log, &cl->fmcf->spool_dir,
                                             cl->fmcf->spool_max, cl->spool_path);
    if (cl->spool == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_foxgov_cluster_adopt(cl);

    for (i = 0; i < NGX_HTTP_FOXGOV_CLUSTER_NODES; i++) {
        n = &cl->nodes[i];
        n->cl = cl;
        n->index = (ngx_int_t) i;
        n->backoff = NGX_HTTP_FOXGOV_CLUSTER_BACKOFF_MIN;
        n->dummy.fd = (ngx_socket_t) -1;
        n->dummy.data = n;
        ngx_http_foxgov_cluster_timer(cl, &n->reconnect,
                                      ngx_http_foxgov_node_reconnect,
                                      &n->dummy, 1);
        ngx_http_foxgov_cluster_timer(cl, &n->timeout,
                                      ngx_http_foxgov_node_timeout,
                                      &n->dummy, 1);
        ngx_http_foxgov_cluster_timer(cl, &n->confirm,
                                      ngx_http_foxgov_cluster_confirm,
                                      &n->dummy, 0);
        n->unconfirmed = NULL;
        n->unconfirmed_last = &n->unconfirmed;
    }

    for (i = 0; i < cl->conf->nseeds; i++) {
        (void) ngx_http_foxgov_cluster_node(cl, cl->conf->seeds[i].ip,
                                            ngx_strlen(cl->conf->seeds[i].ip),
                                            cl->conf->seeds[i].port);
    }

    ngx_http_foxgov_cluster = cl;

    ngx_http_foxgov_cluster_metrics(cl);

    /* the seeds: the first to answer gives the map */
    for (i = 0; i < cl->nnodes; i++) {
        ngx_http_foxgov_node_connect(&cl->nodes[i]);
    }

    ngx_add_timer(&cl->adopt, NGX_HTTP_FOXGOV_ADOPT_EVERY);

    return NGX_OK;
}


void
ngx_http_foxgov_cluster_stop(ngx_cycle_t *cycle)
{
    ngx_http_foxgov_cluster_t  *cl = ngx_http_foxgov_cluster;
    ngx_uint_t                  i;
    redisAsyncContext          *ac;

    (void) cycle;

    if (cl == NULL) {
        return;
    }

    cl->exiting = 1;

    for (i = 0; i < cl->nnodes; i++) {
        ac = cl->nodes[i].h.ac;
        if (ac != NULL) {
            /* what is waited for is spooled, for the next worker */
            cl->nodes[i].ready = 0;
            redisAsyncFree(ac);
            cl->nodes[i].h.ac = NULL;
        }
    }

    for (i = 0; i < cl->nnodes; i++) {
        /* replicas=: XADDs no WAIT was sent after yet: spooled too */
        if (cl->nodes[i].confirm.posted) {
            ngx_delete_posted_event(&cl->nodes[i].confirm);
        }
        ngx_http_foxgov_cluster_confirm(&cl->nodes[i].confirm);
    }

    if (cl->spool != NULL) {
        ngx_http_foxgov_spool_sync(cl->log, cl->spool);
        if (fg_spool_entries(cl->spool) == 0) {
            unlink((char *) cl->spool_path);
        }
        fg_spool_close(cl->spool);
        cl->spool = NULL;
    }

    if (cl->done != NULL) {
        ngx_free(cl->done);
        cl->done = NULL;
    }

    ngx_http_foxgov_cluster = NULL;
}

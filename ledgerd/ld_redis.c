/*
 * ld_redis.c -- foxgov-ledgerd's Redis: the tenant streams, the consumer
 * group, acknowledgements, trimming and the dead-letter stream
 * (ld_redis.h).  Every reply is checked for the shape it must have; an
 * unexpected one is an error, never a guess.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ld_log.h"
#include "ld_redis.h"


#define LD_MIN(a, b)  ((a) < (b) ? (a) : (b))


static int ld_redis_append(ld_redis_t *r, int argc, const char **argv,
    const size_t *lens, fg_error_t *err);
static void ld_redis_redirect(ld_redis_t *r, const redisReply *reply);


/* ------------------------------------------------------------ helpers */

static int
ld_redis_fail(ld_redis_t *r, fg_error_t *err, const char *what)
{
    if (r->c != NULL && r->c->err) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "redis %s: %s", what,
                     r->c->errstr);
        ld_redis_close(r);              /* connect again from the start */
    } else {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "redis %s failed", what);
    }
    return FG_ERR_IO;
}


/*
 * Read the replies of the acknowledgements sent without waiting
 * (ld_redis_ack): before anything else is read from the connection, as
 * replies come in order.  A refused XACK leaves its entries pending: they
 * are read again and found in the ledger (duplicates), so it is logged,
 * not an error.  FG_OK, or FG_ERR_IO (the connection dropped).
 */
static int
ld_redis_settle(ld_redis_t *r, fg_error_t *err)
{
    void        *rp;
    redisReply  *reply;

    while (r->owed > 0 && r->c != NULL) {
        if (redisGetReply(r->c, &rp) != REDIS_OK || rp == NULL) {
            return ld_redis_fail(r, err, "XACK");
        }
        r->owed--;
        reply = rp;
        ld_redis_redirect(r, reply);
        if (reply->type == REDIS_REPLY_ERROR) {
            ld_log(LD_LOG_WARN, "redis XACK: %.*s (the entries are read "
                   "again; the ledger dedupes)",
                   (int) (reply->len < 200 ? reply->len : 200), reply->str);
        }
        freeReplyObject(reply);
    }
    return FG_OK;
}


/*
 * In cluster mode, an error that says the key is not (or not only) here:
 * the daemon reads the cluster's map again and discovers anew.
 */
static void
ld_redis_redirect(ld_redis_t *r, const redisReply *reply)
{
    static const char  *why[] = { "MOVED ", "ASK ", "TRYAGAIN",
                                  "CLUSTERDOWN", NULL };
    size_t              i, n;

    if (!r->cluster || reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return;
    }

    for (i = 0; why[i] != NULL; i++) {
        n = strlen(why[i]);
        if (reply->len >= n && memcmp(reply->str, why[i], n) == 0) {
            r->redirected = 1;
            return;
        }
    }
}


/* Run a command; NULL (err set, the connection dropped) on I/O error. */
static redisReply *
ld_redis_argv(ld_redis_t *r, int argc, const char **argv,
    const size_t *lens, const char *what, fg_error_t *err)
{
    redisReply  *reply;

    if (r->c == NULL) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "redis %s: not "
                     "connected", what);
        return NULL;
    }

    if (ld_redis_settle(r, err) != FG_OK) {
        return NULL;
    }

    if (r->prefetching) {
        /* its reply would be the read's: a defect of the caller */
        fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET, "redis %s: the "
                     "reply of a read sent ahead is not taken yet", what);
        return NULL;
    }

    reply = redisCommandArgv(r->c, argc, argv, lens);
    if (reply == NULL) {
        (void) ld_redis_fail(r, err, what);
    }
    ld_redis_redirect(r, reply);
    return reply;
}


/* A reply that must not be an error. */
static int
ld_redis_ok(redisReply *reply, const char *what, fg_error_t *err)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "redis %s: %.*s", what,
                     (int) (reply->len < 200 ? reply->len : 200),
                     reply->str);
        return FG_ERR_IO;
    }
    return FG_OK;
}


int
ld_redis_connect(ld_redis_t *r, fg_error_t *err)
{
    struct timeval   tv;
    redisReply      *reply;
    const char      *argv[2];
    char             db[16];
    int              rc;

    ld_redis_close(r);

    tv.tv_sec = r->timeout_ms / 1000;
    tv.tv_usec = (r->timeout_ms % 1000) * 1000;

    r->c = r->unix_path != NULL
           ? redisConnectUnixWithTimeout(r->unix_path, tv)
           : redisConnectWithTimeout(r->host, r->port, tv);

    if (r->c == NULL || r->c->err) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "redis connect: %s",
                     r->c ? r->c->errstr : "out of memory");
        ld_redis_close(r);
        return FG_ERR_IO;
    }

    if (redisSetTimeout(r->c, tv) != REDIS_OK) {
        return ld_redis_fail(r, err, "timeout");
    }

    if (r->password != NULL) {
        argv[0] = "AUTH";
        argv[1] = r->password;
        reply = ld_redis_argv(r, 2, argv, NULL, "AUTH", err);
        if (reply == NULL) {
            return FG_ERR_IO;
        }
        rc = ld_redis_ok(reply, "AUTH", err);
        freeReplyObject(reply);
        if (rc != FG_OK) {
            ld_redis_close(r);
            return rc;
        }
    }

    if (r->db >= 0) {
        snprintf(db, sizeof(db), "%d", r->db);
        argv[0] = "SELECT";
        argv[1] = db;
        reply = ld_redis_argv(r, 2, argv, NULL, "SELECT", err);
        if (reply == NULL) {
            return FG_ERR_IO;
        }
        rc = ld_redis_ok(reply, "SELECT", err);
        freeReplyObject(reply);
        if (rc != FG_OK) {
            ld_redis_close(r);
            return rc;
        }
    }

    return FG_OK;
}


void
ld_redis_close(ld_redis_t *r)
{
    fg_error_t  err;

    if (r->c != NULL && !r->c->err && !r->prefetching) {
        (void) ld_redis_settle(r, &err);     /* what was sent is answered */
    }
    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }
    r->prefetching = 0;
    r->owed = 0;
}


/* ---------------------------------------------------------- discovery */

/* The tenant of a stream key, or 0 when the key is not one of ours. */
static int
ld_redis_key_tenant(const char *key, size_t len, char *tenant)
{
    size_t  pre = sizeof(LD_STREAM_PREFIX) - 1, n;

    if (len <= pre + 1 || memcmp(key, LD_STREAM_PREFIX, pre) != 0
        || key[len - 1] != '}')
    {
        return 0;
    }

    n = len - pre - 1;
    if (!fg_tenant_id_valid(key + pre, n)) {
        return 0;
    }

    memcpy(tenant, key + pre, n);
    tenant[n] = '\0';
    return 1;
}


static int
ld_redis_group(ld_redis_t *r, const char *key, fg_error_t *err)
{
    const char  *argv[6] = { "XGROUP", "CREATE", key, r->group, "0",
                             "MKSTREAM" };
    redisReply  *reply;
    int          rc;

    reply = ld_redis_argv(r, 6, argv, NULL, "XGROUP CREATE", err);
    if (reply == NULL) {
        return FG_ERR_IO;
    }

    rc = FG_OK;
    if (reply->type == REDIS_REPLY_ERROR
        && strncmp(reply->str, "BUSYGROUP", 9) != 0)
    {
        rc = ld_redis_ok(reply, "XGROUP CREATE", err);
    }
    freeReplyObject(reply);
    return rc;
}


/* Add key to *streams unless it is there.  1 added, 0 known, -1 nomem. */
static int
ld_redis_add_stream(ld_stream_t **streams, size_t *n, const char *key,
    size_t len, const char *tenant)
{
    ld_stream_t  *grown;
    size_t        i;

    for (i = 0; i < *n; i++) {
        if (strlen((*streams)[i].key) == len
            && memcmp((*streams)[i].key, key, len) == 0)
        {
            (*streams)[i].seen = 1;
            return 0;
        }
    }

    grown = realloc(*streams, (*n + 1) * sizeof(ld_stream_t));
    if (grown == NULL) {
        return -1;
    }
    *streams = grown;

    memset(&grown[*n], 0, sizeof(ld_stream_t));
    memcpy(grown[*n].key, key, len);
    strcpy(grown[*n].tenant, tenant);
    grown[*n].slot = fg_stream_slot(tenant, strlen(tenant));
    grown[*n].seen = 1;
    strcpy(grown[*n].cursor, "0");
    grown[*n].acked = 1;    /* trimmed once: a daemon before may not have */
    (*n)++;
    return 1;
}


int
ld_redis_discover(ld_redis_t *r, ld_stream_t **streams, size_t *n,
    fg_error_t *err)
{
    const char   *argv[8];
    char          cursor[32], tenant[FG_TENANT_ID_MAX + 1];
    redisReply   *reply, *keys, *k;
    size_t        i, rounds;
    size_t        kept;
    int           added;

    strcpy(cursor, "0");

    for (i = 0; i < *n; i++) {
        (*streams)[i].seen = 0;
    }

    for (rounds = 0; rounds < 100000; rounds++) {
        argv[0] = "SCAN";
        argv[1] = cursor;
        argv[2] = "MATCH";
        argv[3] = LD_STREAM_PREFIX "*}";
        argv[4] = "COUNT";
        argv[5] = "1000";
        argv[6] = "TYPE";
        argv[7] = "stream";

        reply = ld_redis_argv(r, 8, argv, NULL, "SCAN", err);
        if (reply == NULL) {
            return FG_ERR_IO;
        }
        if (ld_redis_ok(reply, "SCAN", err) != FG_OK
            || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len >= sizeof(cursor)
            || reply->element[1]->type != REDIS_REPLY_ARRAY)
        {
            freeReplyObject(reply);
            return err->code == FG_ERR_IO ? FG_ERR_IO
                   : fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                  "redis SCAN: an unexpected reply");
        }

        keys = reply->element[1];
        for (i = 0; i < keys->elements; i++) {
            k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING) {
                continue;
            }
            if (!ld_redis_key_tenant(k->str, k->len, tenant)) {
                ld_log(LD_LOG_WARN, "stream \"%.*s\" skipped: not "
                       "foxgov:ev:{<tenant id>}",
                       (int) (k->len < 100 ? k->len : 100), k->str);
                continue;
            }
            added = ld_redis_add_stream(streams, n, k->str, k->len, tenant);
            if (added < 0) {
                freeReplyObject(reply);
                return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                    "out of memory");
            }
            if (added) {
                ld_log(LD_LOG_INFO, "stream %s of tenant %s",
                       (*streams)[*n - 1].key, tenant);
                if (ld_redis_group(r, (*streams)[*n - 1].key, err)
                    != FG_OK)
                {
                    (*n)--;
                    freeReplyObject(reply);
                    return FG_ERR_IO;
                }
            }
        }

        memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
        cursor[reply->element[0]->len] = '\0';
        freeReplyObject(reply);

        if (strcmp(cursor, "0") == 0) {
            break;
        }
    }

    if (r->cluster && strcmp(cursor, "0") == 0) {
        /* a stream this node no longer holds: its slot moved */
        for (i = 0, kept = 0; i < *n; i++) {
            if ((*streams)[i].seen) {
                (*streams)[kept++] = (*streams)[i];
            } else {
                ld_log(LD_LOG_INFO, "stream %s is not on this node any more",
                       (*streams)[i].key);
            }
        }
        *n = kept;
    }

    return FG_OK;
}


/* --------------------------------------------------------------- read */

/* One entry [id, [field, value, ...] | nil] into *e. */
static int
ld_redis_entry(redisReply *x, ld_entry_t *e)
{
    redisReply  *id, *f, *k, *v;
    size_t       i;

    memset(e, 0, sizeof(*e));

    if (x->type != REDIS_REPLY_ARRAY || x->elements != 2) {
        return -1;
    }

    id = x->element[0];
    if (id->type != REDIS_REPLY_STRING || id->len == 0
        || id->len >= LD_ID_MAX)
    {
        return -1;
    }
    memcpy(e->id, id->str, id->len);
    e->id[id->len] = '\0';

    f = x->element[1];
    if (f->type == REDIS_REPLY_NIL) {
        e->deleted = 1;
        return 0;
    }
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2) {
        return -1;
    }

    for (i = 0; i + 1 < f->elements; i += 2) {
        k = f->element[i];
        v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || k->len != 1)
        {
            continue;                   /* not one of ours: ignored */
        }
        switch (k->str[0]) {
        case 't': e->t = v->str; e->t_len = v->len; break;
        case 'h': e->h = v->str; e->h_len = v->len; break;
        case 'r': e->r = v->str; e->r_len = v->len; break;
        case 'o': e->o = v->str; e->o_len = v->len; break;
        default: break;
        }
    }
    return 0;
}


/*
 * The head of an XREADGROUP of this consumer, COUNT cnt, into argv:
 * the number of arguments it takes.  BLOCK and STREAMS follow it.
 */
static size_t
ld_redis_xreadgroup_head(ld_redis_t *r, const char **argv, const char *cnt)
{
    size_t  k = 0;

    argv[k++] = "XREADGROUP";
    argv[k++] = "GROUP";
    argv[k++] = r->group;
    argv[k++] = r->consumer;
    argv[k++] = "COUNT";
    argv[k++] = cnt;

    return k;
}


/* The XREADGROUP command of a read (argv malloc'd; free it). */
static const char **
ld_redis_read_argv(ld_redis_t *r, ld_stream_t *streams, size_t n,
    int pending, char *cnt, int block_ms, char *blk, size_t *argc)
{
    const char  **argv;
    size_t        i, k;

    /* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS keys... ids... */
    argv = malloc((9 + 2 * n) * sizeof(char *));
    if (argv == NULL) {
        return NULL;
    }

    k = ld_redis_xreadgroup_head(r, argv, cnt);
    if (!pending && block_ms > 0) {
        argv[k++] = "BLOCK";
        argv[k++] = blk;
    }
    argv[k++] = "STREAMS";
    for (i = 0; i < n; i++) {
        argv[k++] = streams[i].key;
    }
    for (i = 0; i < n; i++) {
        argv[k++] = pending ? streams[i].cursor : ">";
    }

    *argc = k;
    return argv;
}


/* A batch of at most n streams (the streams read). */
static ld_batch_t *
ld_redis_batch_new(size_t n, size_t nreplies)
{
    ld_batch_t  *b;

    b = calloc(1, sizeof(ld_batch_t) + (n ? n : 1) * sizeof(b->s[0]));
    if (b == NULL) {
        return NULL;
    }
    b->replies = calloc(nreplies ? nreplies : 1, sizeof(redisReply *));
    if (b->replies == NULL) {
        free(b);
        return NULL;
    }
    b->cap = n;
    return b;
}


/*
 * An XREADGROUP reply's entries added to b, which keeps the reply (and
 * frees it with the batch).  FG_OK (an empty reply adds nothing) or
 * FG_ERR_IO (an error reply, or one not shaped as XREADGROUP answers: b
 * is left as it was but for the reply, kept to be freed).
 */
static int
ld_redis_batch_add(ld_batch_t *b, redisReply *reply, ld_stream_t *streams,
    size_t n, fg_error_t *err)
{
    redisReply    *sr, *entries;
    ld_entry_t    *e;
    size_t         i, j, k, len, first;

    b->replies[b->nreplies++] = reply;

    if (ld_redis_ok(reply, "XREADGROUP", err) != FG_OK) {
        return FG_ERR_IO;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        return FG_OK;                   /* nothing within the block time */
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "redis XREADGROUP: an unexpected reply");
    }

    first = b->nstreams;

    for (i = 0; i < reply->elements; i++) {
        /* [key, [entry, ...]] */
        sr = reply->element[i];
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2
            || sr->element[0]->type != REDIS_REPLY_STRING
            || sr->element[1]->type != REDIS_REPLY_ARRAY)
        {
            goto unexpected;
        }

        for (k = 0; k < n; k++) {
            len = strlen(streams[k].key);
            if (sr->element[0]->len == len
                && memcmp(sr->element[0]->str, streams[k].key, len) == 0)
            {
                break;
            }
        }
        entries = sr->element[1];
        if (k == n || entries->elements == 0) {
            continue;
        }

        if (b->nstreams == b->cap) {
            goto unexpected;            /* more streams than were asked */
        }

        e = calloc(entries->elements, sizeof(ld_entry_t));
        if (e == NULL) {
            for (j = first; j < b->nstreams; j++) {
                free(b->s[j].e);
            }
            b->nstreams = first;
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }

        for (j = 0; j < entries->elements; j++) {
            if (ld_redis_entry(entries->element[j], &e[j]) != 0) {
                free(e);
                goto unexpected;
            }
        }

        b->s[b->nstreams].stream = k;
        b->s[b->nstreams].e = e;
        b->s[b->nstreams].n = entries->elements;
        b->nstreams++;
    }

    return FG_OK;

unexpected:

    for (j = first; j < b->nstreams; j++) {
        free(b->s[j].e);
    }
    b->nstreams = first;
    return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                        "redis XREADGROUP: an unexpected reply");
}


/* An XREADGROUP reply into *batch (NULL: nothing read); frees reply. */
static int
ld_redis_parse(redisReply *reply, ld_stream_t *streams, size_t n,
    ld_batch_t **batch, fg_error_t *err)
{
    ld_batch_t  *b;
    int          rc;

    *batch = NULL;

    b = ld_redis_batch_new(n, 1);
    if (b == NULL) {
        freeReplyObject(reply);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    rc = ld_redis_batch_add(b, reply, streams, n, err);
    if (rc != FG_OK || b->nstreams == 0) {
        ld_redis_batch_free(b);
        return rc;
    }

    *batch = b;
    return FG_OK;
}


/*
 * Cluster mode: keys of different hash slots cannot be read by one
 * command (CROSSSLOT), so one XREADGROUP a slot, pipelined (without
 * BLOCK), their entries in one batch.  A slot answered with an error
 * (MOVED, ASK, ...: the node does not hold it any more) is skipped and
 * r->redirected set; its entries are read where the slot is now.
 */
static int
ld_redis_read_cluster(ld_redis_t *r, ld_stream_t *streams, size_t n,
    int pending, const char *cnt, ld_batch_t **batch, fg_error_t *err)
{
    const char   **argv;
    ld_batch_t    *b;
    void          *rp;
    size_t         i, j, k, sent, got;
    int            rc, was, moved;
    unsigned char *done;

    argv = malloc((9 + 2 * n) * sizeof(char *));
    done = calloc(n, 1);
    b = ld_redis_batch_new(n, n);
    if (argv == NULL || done == NULL || b == NULL) {
        free(argv);
        free(done);
        ld_redis_batch_free(b);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    if (ld_redis_settle(r, err) != FG_OK) {
        free(argv);
        free(done);
        ld_redis_batch_free(b);
        return FG_ERR_IO;
    }

    sent = 0;
    rc = FG_OK;

    for (i = 0; i < n && rc == FG_OK; i++) {
        if (done[i]) {
            continue;
        }

        k = ld_redis_xreadgroup_head(r, argv, cnt);
        argv[k++] = "STREAMS";

        /* the streams of this one's slot, then their ids */
        for (j = i; j < n; j++) {
            if (!done[j] && streams[j].slot == streams[i].slot) {
                argv[k++] = streams[j].key;
            }
        }
        for (j = i; j < n; j++) {
            if (!done[j] && streams[j].slot == streams[i].slot) {
                argv[k++] = pending ? streams[j].cursor : ">";
                done[j] = 1;
            }
        }

        rc = ld_redis_append(r, (int) k, argv, NULL, err);
        if (rc == FG_OK) {
            sent++;
        }
    }

    free(argv);
    free(done);

    for (got = 0; got < sent; got++) {
        if (r->c == NULL || redisGetReply(r->c, &rp) != REDIS_OK
            || rp == NULL)
        {
            ld_redis_batch_free(b);
            return ld_redis_fail(r, err, "XREADGROUP");
        }

        was = r->redirected;
        r->redirected = 0;
        ld_redis_redirect(r, rp);
        moved = r->redirected;
        r->redirected |= was;

        if (ld_redis_batch_add(b, rp, streams, n, err) != FG_OK) {
            if (err->code == FG_ERR_NOMEM || !moved) {
                rc = rc == FG_OK ? err->code : rc;
            }
            ld_log(LD_LOG_INFO, "%s (read where the slot is now)", err->msg);
        }
    }

    if (rc != FG_OK) {
        ld_redis_batch_free(b);
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "redis XREADGROUP: a slot's read failed");
    }

    if (b->nstreams == 0) {
        ld_redis_batch_free(b);
        *batch = NULL;
        return FG_OK;
    }

    *batch = b;
    return FG_OK;
}


int
ld_redis_read(ld_redis_t *r, ld_stream_t *streams, size_t n, int pending,
    size_t count, int block_ms, ld_batch_t **batch, fg_error_t *err)
{
    const char   **argv;
    redisReply    *reply;
    char           cnt[24], blk[24];
    size_t         argc;

    *batch = NULL;
    if (n == 0) {
        return FG_OK;
    }

    snprintf(cnt, sizeof(cnt), "%zu", count);
    snprintf(blk, sizeof(blk), "%d", block_ms);

    if (r->cluster) {
        if (r->c == NULL || r->prefetching) {
            return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                "redis XREADGROUP: not connected");
        }
        return ld_redis_read_cluster(r, streams, n, pending, cnt, batch,
                                     err);
    }

    argv = ld_redis_read_argv(r, streams, n, pending, cnt, block_ms, blk,
                              &argc);
    if (argv == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    reply = ld_redis_argv(r, (int) argc, argv, NULL, "XREADGROUP", err);
    free(argv);
    if (reply == NULL) {
        return FG_ERR_IO;
    }

    return ld_redis_parse(reply, streams, n, batch, err);
}


int
ld_redis_read_send(ld_redis_t *r, ld_stream_t *streams, size_t n,
    size_t count, fg_error_t *err)
{
    const char   **argv;
    char           cnt[24];
    size_t         argc;
    int            rc;

    if (r->c == NULL || r->prefetching || n == 0 || r->cluster) {
        return FG_OK;                   /* cluster: one read a slot, now */
    }

    snprintf(cnt, sizeof(cnt), "%zu", count);
    argv = ld_redis_read_argv(r, streams, n, 0, cnt, 0, NULL, &argc);
    if (argv == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    rc = ld_redis_append(r, (int) argc, argv, NULL, err);
    free(argv);
    if (rc == FG_OK) {
        r->prefetching = 1;
    }
    return rc;
}


int
ld_redis_read_recv(ld_redis_t *r, ld_stream_t *streams, size_t n,
    ld_batch_t **batch, fg_error_t *err)
{
    void  *reply;

    *batch = NULL;
    if (!r->prefetching) {
        return FG_OK;
    }
    r->prefetching = 0;

    /* the acknowledgements sent before the read are answered first */
    if (ld_redis_settle(r, err) != FG_OK) {
        return FG_ERR_IO;
    }

    if (r->c == NULL || redisGetReply(r->c, &reply) != REDIS_OK
        || reply == NULL)
    {
        return ld_redis_fail(r, err, "XREADGROUP");
    }

    return ld_redis_parse(reply, streams, n, batch, err);
}


void
ld_redis_batch_free(ld_batch_t *b)
{
    size_t  i;

    if (b == NULL) {
        return;
    }
    for (i = 0; i < b->nstreams; i++) {
        free(b->s[i].e);
    }
    for (i = 0; i < b->nreplies; i++) {
        freeReplyObject(b->replies[i]);
    }
    free(b->replies);
    free(b);
}


/* ---------------------------------------------------------------- ack */

int
ld_redis_ack(ld_redis_t *r, const ld_stream_t *s, const char **ids,
    size_t n, fg_error_t *err)
{
    const char  **argv;
    size_t        i;
    int           rc, done;

    if (n == 0) {
        return FG_OK;
    }

    argv = malloc((3 + n) * sizeof(char *));
    if (argv == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    argv[0] = "XACK";
    argv[1] = s->key;
    argv[2] = r->group;
    for (i = 0; i < n; i++) {
        argv[3 + i] = ids[i];
    }

    /*
     * Sent now, its reply read before the next command's (settle): the
     * daemon does not wait for Redis to fsync its AOF before going on
     * with the next batch.  What matters came before: the append is
     * durable.
     */
    rc = r->c != NULL
         ? ld_redis_append(r, (int) (3 + n), argv, NULL, err)
         : fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                        "redis XACK: not connected");
    free(argv);
    if (rc != FG_OK) {
        return rc;
    }

    for (done = 0; !done; ) {
        if (redisBufferWrite(r->c, &done) != REDIS_OK) {
            return ld_redis_fail(r, err, "XACK");
        }
    }

    r->owed++;
    return FG_OK;
}


/* Append one command to the pipeline. */
static int
ld_redis_append(ld_redis_t *r, int argc, const char **argv,
    const size_t *lens, fg_error_t *err)
{
    if (redisAppendCommandArgv(r->c, argc, argv, lens) != REDIS_OK) {
        return ld_redis_fail(r, err, "pipeline");
    }
    return FG_OK;
}


int
ld_redis_dlq(ld_redis_t *r, const ld_stream_t *s, const ld_dead_t *d,
    size_t n, fg_error_t *err)
{
    const char   *argv[24];
    size_t        lens[24], i, k, replies;
    redisReply   *reply;
    const char   *ack[4];
    char          dlq[LD_DLQ_KEY_MAX];
    int           rc;
    void         *rp;

    if (n == 0) {
        return FG_OK;
    }
    if (r->c == NULL || r->prefetching) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "redis DLQ: not connected, or a read's reply "
                            "is owed");
    }
    if (ld_redis_settle(r, err) != FG_OK) {
        return FG_ERR_IO;
    }

    if (r->cluster) {
        /* the tenant's own: one slot with its stream, one transaction */
        snprintf(dlq, sizeof(dlq), LD_DLQ_PREFIX "%s}", s->tenant);
    } else {
        snprintf(dlq, sizeof(dlq), "%s", LD_DLQ_KEY);
    }

    argv[0] = "MULTI";
    if (ld_redis_append(r, 1, argv, NULL, err) != FG_OK) {
        return FG_ERR_IO;
    }

    for (i = 0; i < n; i++) {
        k = 0;
#define LD_ARG(s, l)  do { argv[k] = (s); lens[k] = (l); k++; } while (0)
        LD_ARG("XADD", 4);
        LD_ARG(dlq, strlen(dlq));
        LD_ARG("*", 1);
        LD_ARG("stream", 6);
        LD_ARG(s->key, strlen(s->key));
        LD_ARG("id", 2);
        LD_ARG(d[i].e->id, strlen(d[i].e->id));
        LD_ARG("reason", 6);
        LD_ARG(d[i].reason, strlen(d[i].reason));
        LD_ARG("detail", 6);
        LD_ARG(d[i].detail, strlen(d[i].detail));
        LD_ARG("consumer", 8);
        LD_ARG(r->consumer, strlen(r->consumer));
        /* the entry as it came, each field bounded: hostile sizes stop */
        if (d[i].e->t) {
            LD_ARG("t", 1);
            LD_ARG(d[i].e->t, LD_MIN(d[i].e->t_len, 256));
        }
        if (d[i].e->h) {
            LD_ARG("h", 1);
            LD_ARG(d[i].e->h, LD_MIN(d[i].e->h_len, 256));
        }
        if (d[i].e->r) {
            LD_ARG("r", 1);
            LD_ARG(d[i].e->r, LD_MIN(d[i].e->r_len, FG_RECORD_MAX_BYTES));
        }
        if (d[i].e->o) {
            LD_ARG("o", 1);
            LD_ARG(d[i].e->o, LD_MIN(d[i].e->o_len, 64 * 1024));
        }
#undef LD_ARG
        if (ld_redis_append(r, (int) k, argv, lens, err) != FG_OK) {
            return FG_ERR_IO;
        }

        ack[0] = "XACK";
        ack[1] = s->key;
        ack[2] = r->group;
        ack[3] = d[i].e->id;
        if (ld_redis_append(r, 4, ack, NULL, err) != FG_OK) {
            return FG_ERR_IO;
        }
    }

    argv[0] = "EXEC";
    if (ld_redis_append(r, 1, argv, NULL, err) != FG_OK) {
        return FG_ERR_IO;
    }

    /* MULTI's +OK, a +QUEUED a command, then EXEC's array */
    replies = 2 + 2 * n;
    rc = FG_OK;
    for (i = 0; i < replies; i++) {
        if (redisGetReply(r->c, &rp) != REDIS_OK) {
            return ld_redis_fail(r, err, "DLQ");
        }
        reply = rp;
        ld_redis_redirect(r, reply);
        if (rc == FG_OK) {
            rc = ld_redis_ok(reply, "DLQ", err);
        }
        if (rc == FG_OK && i == replies - 1
            && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * n))
        {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "redis DLQ: the transaction was not run");
        }
        freeReplyObject(reply);
    }

    return rc;
}


/* -------------------------------------------------------- claim, trim */

int
ld_redis_claim(ld_redis_t *r, const ld_stream_t *s, long min_idle_ms,
    size_t count, size_t *claimed, fg_error_t *err)
{
    const char  *argv[9];
    char         idle[24], cnt[24], start[LD_ID_MAX];
    redisReply  *reply;
    size_t       rounds;
    int          rc;

    *claimed = 0;
    snprintf(idle, sizeof(idle), "%ld", min_idle_ms);
    snprintf(cnt, sizeof(cnt), "%zu", count);
    strcpy(start, "0-0");

    for (rounds = 0; rounds < 1000; rounds++) {
        argv[0] = "XAUTOCLAIM";
        argv[1] = s->key;
        argv[2] = r->group;
        argv[3] = r->consumer;
        argv[4] = idle;
        argv[5] = start;
        argv[6] = "COUNT";
        argv[7] = cnt;
        argv[8] = "JUSTID";

        reply = ld_redis_argv(r, 9, argv, NULL, "XAUTOCLAIM", err);
        if (reply == NULL) {
            return FG_ERR_IO;
        }

        /* [next start, [ids], [deleted ids] (Redis 7)] */
        rc = ld_redis_ok(reply, "XAUTOCLAIM", err);
        if (rc == FG_OK
            && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
                || reply->element[0]->type != REDIS_REPLY_STRING
                || reply->element[0]->len >= sizeof(start)
                || reply->element[1]->type != REDIS_REPLY_ARRAY))
        {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "redis XAUTOCLAIM: an unexpected reply");
        }
        if (rc != FG_OK) {
            freeReplyObject(reply);
            return rc;
        }

        *claimed += reply->element[1]->elements;
        memcpy(start, reply->element[0]->str, reply->element[0]->len);
        start[reply->element[0]->len] = '\0';
        freeReplyObject(reply);

        if (strcmp(start, "0-0") == 0) {
            break;
        }
    }

    return FG_OK;
}


/* The id just after id ("ms-seq" + 1), for MINID. */
static int
ld_redis_id_next(const char *id, size_t len, char *out, size_t size)
{
    unsigned long long  ms, seq;
    char                buf[LD_ID_MAX];

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, id, len);
    buf[len] = '\0';

    if (sscanf(buf, "%llu-%llu", &ms, &seq) != 2) {
        return -1;
    }
    if (seq == ~0ULL) {
        ms++;
        seq = 0;
    } else {
        seq++;
    }
    snprintf(out, size, "%llu-%llu", ms, seq);
    return 0;
}


/* The group's last-delivered-id from XINFO GROUPS, into out. */
static int
ld_redis_last_delivered(ld_redis_t *r, const ld_stream_t *s, char *out,
    size_t size, fg_error_t *err)
{
    const char  *argv[3] = { "XINFO", "GROUPS", s->key };
    redisReply  *reply, *g, *k, *v;
    size_t       i, j;
    int          found, rc;

    reply = ld_redis_argv(r, 3, argv, NULL, "XINFO GROUPS", err);
    if (reply == NULL) {
        return FG_ERR_IO;
    }
    rc = ld_redis_ok(reply, "XINFO GROUPS", err);
    found = 0;

    for (i = 0; rc == FG_OK && reply->type == REDIS_REPLY_ARRAY
                && i < reply->elements; i++)
    {
        g = reply->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            continue;
        }
        /* a flat list of names and values */
        for (j = 0; j + 1 < g->elements; j += 2) {
            k = g->element[j];
            v = g->element[j + 1];
            if (k->type == REDIS_REPLY_STRING && v->type
                == REDIS_REPLY_STRING && strcmp(k->str, "name") == 0
                && strcmp(v->str, r->group) != 0)
            {
                break;                  /* another group */
            }
            if (k->type == REDIS_REPLY_STRING
                && strcmp(k->str, "last-delivered-id") == 0
                && v->type == REDIS_REPLY_STRING && v->len < size)
            {
                memcpy(out, v->str, v->len);
                out[v->len] = '\0';
                found = 1;
            }
        }
        if (found) {
            break;
        }
    }

    freeReplyObject(reply);
    if (rc == FG_OK && !found) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "redis XINFO GROUPS: no group %s on %s", r->group,
                          s->key);
    }
    return rc;
}


int
ld_redis_trim(ld_redis_t *r, const ld_stream_t *s, int exact,
    fg_error_t *err)
{
    const char  *argv[6];
    char         minid[LD_ID_MAX], last[LD_ID_MAX];
    redisReply  *reply, *oldest;
    int          rc;

    argv[0] = "XPENDING";
    argv[1] = s->key;
    argv[2] = r->group;

    reply = ld_redis_argv(r, 3, argv, NULL, "XPENDING", err);
    if (reply == NULL) {
        return FG_ERR_IO;
    }

    /* [count, smallest id, greatest id, [[consumer, count], ...]] */
    rc = ld_redis_ok(reply, "XPENDING", err);
    if (rc == FG_OK
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4
            || reply->element[0]->type != REDIS_REPLY_INTEGER))
    {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "redis XPENDING: an unexpected reply");
    }
    if (rc != FG_OK) {
        freeReplyObject(reply);
        return rc;
    }

    if (reply->element[0]->integer > 0) {
        /* the oldest pending entry and everything after it stay */
        oldest = reply->element[1];
        if (oldest->type != REDIS_REPLY_STRING
            || oldest->len >= sizeof(minid))
        {
            freeReplyObject(reply);
            return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                "redis XPENDING: an unexpected reply");
        }
        memcpy(minid, oldest->str, oldest->len);
        minid[oldest->len] = '\0';
        freeReplyObject(reply);

    } else {
        /* nothing pending: what was delivered was acknowledged */
        freeReplyObject(reply);
        rc = ld_redis_last_delivered(r, s, last, sizeof(last), err);
        if (rc != FG_OK) {
            return rc;
        }
        if (strcmp(last, "0-0") == 0) {
            return FG_OK;               /* nothing delivered yet */
        }
        if (ld_redis_id_next(last, strlen(last), minid, sizeof(minid)) != 0)
        {
            return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                "redis: a last-delivered-id \"%s\" that is "
                                "not an entry id", last);
        }
    }

    argv[0] = "XTRIM";
    argv[1] = s->key;
    argv[2] = "MINID";
    argv[3] = exact ? "=" : "~";        /* "~": whole nodes only, cheaper */
    argv[4] = minid;

    reply = ld_redis_argv(r, 5, argv, NULL, "XTRIM", err);
    if (reply == NULL) {
        return FG_ERR_IO;
    }
    rc = ld_redis_ok(reply, "XTRIM", err);
    freeReplyObject(reply);
    return rc;
}


/* ------------------------------------------------------------ cluster */


/* An IPv4 or IPv6 address as text, bounded; 1 when it is one. */
static int
ld_redis_ip_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len >= LD_HOST_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
              || (s[i] >= 'A' && s[i] <= 'F') || s[i] == '.'
              || s[i] == ':'))
        {
            return 0;
        }
    }
    return 1;
}


int
ld_redis_cluster_masters(ld_redis_t *r, ld_addr_t *out, size_t max,
    size_t *n, fg_error_t *err)
{
    const char  *argv[2] = { "CLUSTER", "SLOTS" };
    redisReply  *reply, *e, *m, *ip, *port;
    size_t       i, j, len;
    const char  *host;
    int          rc;

    *n = 0;

    reply = ld_redis_argv(r, 2, argv, NULL, "CLUSTER SLOTS", err);
    if (reply == NULL) {
        return FG_ERR_IO;
    }

    rc = ld_redis_ok(reply, "CLUSTER SLOTS", err);
    if (rc == FG_OK && (reply->type != REDIS_REPLY_ARRAY
                        || reply->elements > LD_CLUSTER_SLOTS))
    {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "redis CLUSTER SLOTS: an unexpected reply");
    }

    /* [[start, end, [ip, port, id...], replicas...], ...] */
    for (i = 0; rc == FG_OK && i < reply->elements; i++) {
        e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[0]->integer < 0
            || e->element[1]->integer < e->element[0]->integer
            || e->element[1]->integer >= LD_CLUSTER_SLOTS
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2)
        {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "redis CLUSTER SLOTS: an unexpected range");
            break;
        }

        m = e->element[2];
        ip = m->element[0];
        port = m->element[1];
        if (ip->type != REDIS_REPLY_STRING
            || port->type != REDIS_REPLY_INTEGER
            || port->integer < 1 || port->integer > 65535)
        {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "redis CLUSTER SLOTS: an unexpected node");
            break;
        }

        host = ip->len ? ip->str : r->host;
        len = ip->len ? ip->len : (r->host ? strlen(r->host) : 0);
        if (host == NULL || !ld_redis_ip_ok(host, len)) {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "redis CLUSTER SLOTS: a node address that is "
                              "not an IP address");
            break;
        }

        for (j = 0; j < *n; j++) {
            if (out[j].port == (int) port->integer
                && strlen(out[j].host) == len
                && memcmp(out[j].host, host, len) == 0)
            {
                break;
            }
        }
        if (j < *n) {
            continue;                   /* a master of several ranges */
        }
        if (*n == max) {
            rc = fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                              "redis CLUSTER SLOTS: more than %zu masters",
                              max);
            break;
        }
        memcpy(out[*n].host, host, len);
        out[*n].host[len] = '\0';
        out[*n].port = (int) port->integer;
        (*n)++;
    }

    freeReplyObject(reply);
    if (rc != FG_OK) {
        *n = 0;
    }
    return rc;
}

/*
 * ld_ledgerd.c -- the loop of foxgov-ledgerd (ld_ledgerd.h): for the one
 * Redis, or in turn for each master of a Redis Cluster (ld_map(), the
 * nodes' state in ld_node_t), read a batch of stream entries, check each (INV-INT-005: its envelope_hash is
 * recomputed from r; its schema, tenant and trace; the record its link
 * names present before it), append the valid ones to the tenant's ledger
 * durably, dead-letter the invalid ones, and only then acknowledge.
 *
 * Every entry read ends in exactly one of:
 *
 *   appended      in the ledger now (or already: a duplicate) -> XACK
 *   dead-lettered foxgov:dlq (cluster: foxgov:dlq:{<tenant>}) with its
 *                 reason, in the same MULTI/EXEC as its XACK, so exactly
 *                 once
 *   deferred      a call record or decision whose parent is not in the
 *                 ledger yet (another daemon may be appending it): left
 *                 pending and read again, until --orphan-grace after it
 *                 was added to the stream; then dead-lettered as orphan
 *   left pending  the backend or Redis failed: nothing of the batch is
 *                 acknowledged, and the daemon's own pending entries are
 *                 read again (a re-delivered entry the ledger holds is a
 *                 duplicate, so nothing is appended twice)
 *
 * Entries of a consumer that died are claimed after --claim-idle
 * (XAUTOCLAIM) and read as this daemon's own pending entries.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fg_checkpoint.h"
#include "fg_ledger.h"
#include "ld_ledgerd.h"
#include "ld_log.h"


volatile sig_atomic_t  ld_stop;


static void ld_drop_next(ld_daemon_t *d);


/* What becomes of one entry. */
enum {
    LD_APPEND = 0,
    LD_SKIP,            /* gone from the stream: nothing to keep */
    LD_DUPLICATE,       /* earlier in this batch */
    LD_DEAD,
    LD_DEFER
};



static uint64_t
ld_now_ms(clockid_t clock)
{
    struct timespec  ts;

    clock_gettime(clock, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


static void
ld_sleep_ms(long ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    (void) nanosleep(&ts, NULL);
}


/*
 * One Redis: the pause after a batch that failed (the backend refused its
 * append, Redis its reads).  It doubles from 100 ms to 5 s while batches
 * keep failing, so a database that is down for minutes is asked, and
 * logged about, a few times a minute rather than ten times a second; a
 * batch that goes through sets it back.  In cluster mode the loop goes
 * on to the other masters instead.
 */
static void
ld_pause_after_failure(ld_daemon_t *d)
{
    if (d->cluster) {
        return;
    }

    d->failed_ms = d->failed_ms == 0 ? 100
                   : (d->failed_ms * 2 > 5000 ? 5000 : d->failed_ms * 2);
    ld_log(LD_LOG_DEBUG, "again in %ld ms", d->failed_ms);
    ld_sleep_ms(d->failed_ms);
}


/* ---------------------------------------------------------------- init */

/* "IP:PORT" (or, when unix_ok, "unix:PATH") into host and port. */
static int
ld_parse_addr(const char *a, size_t len, int unix_ok, char **host,
    int *port, char **unix_path, fg_error_t *err)
{
    const char  *opt = unix_ok ? "--redis" : "--redis-cluster";
    char        *buf, *colon, *end;
    long         p;
    int          rc;

    if (unix_ok && len >= 5 && strncmp(a, "unix:", 5) == 0) {
        if (len == 5) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "--redis unix: needs a path");
        }
        *unix_path = strndup(a + 5, len - 5);
        return *unix_path ? FG_OK
               : fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                              "out of memory");
    }

    buf = strndup(a, len);
    if (buf == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    rc = FG_OK;
    colon = strrchr(buf, ':');
    if (colon == NULL || colon == buf) {
        rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                          "%s \"%.200s\" is not IP:PORT%s", opt, buf,
                          unix_ok ? " or unix:PATH" : "");
        goto done;
    }

    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end != '\0' || p < 1 || p > 65535) {
        rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                          "%s \"%.200s\": not a port", opt, buf);
        goto done;
    }

    *colon = '\0';
    *host = strdup(buf);
    *port = (int) p;
    if (*host == NULL) {
        rc = fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

done:

    free(buf);
    return rc;
}


/* A node to read, its connection not made yet. */
static void
ld_node_init(ld_daemon_t *d, ld_node_t *n)
{
    memset(n, 0, sizeof(*n));
    n->need_pending = 1;                /* what a crash left us first */
    n->backoff = 100;
    n->redis.db = d->cluster ? -1 : d->conf->redis_db;
    n->redis.timeout_ms = (int) d->conf->redis_timeout_ms;
    n->redis.password = d->password;
    n->redis.cluster = d->cluster;
    snprintf(n->redis.group, sizeof(n->redis.group), "%s", d->conf->group);
    snprintf(n->redis.consumer, sizeof(n->redis.consumer), "%s",
             d->conf->consumer);
}


static void
ld_node_free(ld_node_t *n)
{
    ld_redis_close(&n->redis);
    ld_redis_batch_free(n->next);
    n->next = NULL;
    free(n->redis.host);
    free(n->redis.unix_path);
    free(n->streams);
    n->redis.host = NULL;
    n->redis.unix_path = NULL;
    n->streams = NULL;
}


/* --redis-cluster "IP:PORT,IP:PORT,...": the seeds. */
static int
ld_parse_seeds(ld_daemon_t *d, fg_error_t *err)
{
    const char  *p, *comma;
    char        *host;
    size_t       len;
    int          port;

    d->seeds = calloc(LD_CLUSTER_NODES, sizeof(ld_addr_t));
    if (d->seeds == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    for (p = d->conf->redis_cluster; *p != '\0'; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma == NULL) {
            comma = p + strlen(p);
        }
        len = (size_t) (comma - p);

        if (d->nseeds == LD_CLUSTER_NODES) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "--redis-cluster: more than %d seeds",
                                LD_CLUSTER_NODES);
        }

        host = NULL;
        if (ld_parse_addr(p, len, 0, &host, &port, NULL, err) != FG_OK) {
            return err->code;
        }
        if (strlen(host) >= LD_HOST_MAX) {
            free(host);
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "--redis-cluster: a host too long");
        }
        strcpy(d->seeds[d->nseeds].host, host);
        d->seeds[d->nseeds].port = port;
        d->nseeds++;
        free(host);

        if (*comma == '\0') {
            break;
        }
    }

    if (d->nseeds == 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "--redis-cluster needs IP:PORT[,IP:PORT...]");
    }
    return FG_OK;
}


/* The first line of a file, without its newline (a password). */
static int
ld_read_secret(const char *path, char **out, fg_error_t *err)
{
    FILE    *f;
    char     buf[1024];
    size_t   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                            strerror(errno));
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';

    if (buf[0] == '\0') {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: empty", path);
    }
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? FG_OK
           : fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
}


int
ld_daemon_init(ld_daemon_t *d, ld_conf_t *conf, fg_error_t *err)
{
    const char  *kid, *base;
    char         pem_kid[LD_NAME_MAX];
    size_t       n;

    memset(d, 0, sizeof(*d));
    d->conf = conf;
    d->block_now = conf->block_ms;
    fg_hashset_init(&d->batch_set);

    if (conf->redis_password_file != NULL
        && ld_read_secret(conf->redis_password_file, &d->password, err)
           != FG_OK)
    {
        return err->code;
    }

    if (conf->redis_cluster != NULL) {
        /* the masters come from the cluster's map, read by the loop */
        d->cluster = 1;
        if (ld_parse_seeds(d, err) != FG_OK) {
            return err->code;
        }

    } else {
        d->nodes = calloc(1, sizeof(ld_node_t));
        if (d->nodes == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        d->nnodes = 1;
        d->n = &d->nodes[0];
        ld_node_init(d, d->n);
        if (ld_parse_addr(conf->redis, strlen(conf->redis), 1,
                          &d->n->redis.host, &d->n->redis.port,
                          &d->n->redis.unix_path, err)
            != FG_OK)
        {
            return err->code;
        }
    }

    if (conf->checkpoint_key != NULL) {
        /* a PEM key's kid: --checkpoint-kid, or its file name less .pem,
         * as foxgov keygen names it and the CLI reads it */
        kid = conf->checkpoint_kid;
        if (kid == NULL) {
            base = strrchr(conf->checkpoint_key, '/');
            base = base ? base + 1 : conf->checkpoint_key;
            n = strlen(base);
            if (n > 4 && strcmp(base + n - 4, ".pem") == 0) {
                n -= 4;
            }
            snprintf(pem_kid, sizeof(pem_kid), "%.*s", (int) n, base);
            kid = pem_kid;
        }
        d->keys = fg_keyset_load_file(conf->checkpoint_key, kid, err);
        if (d->keys == NULL) {
            return err->code;
        }
        d->key = conf->checkpoint_kid
                 ? fg_keyset_find(d->keys, conf->checkpoint_kid)
                 : fg_keyset_get(d->keys, 0);
        if (d->key == NULL || !fg_jwk_is_private(d->key)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "--checkpoint-key %s: no private key%s%s",
                                conf->checkpoint_key,
                                conf->checkpoint_kid ? " with kid " : "",
                                conf->checkpoint_kid ? conf->checkpoint_kid
                                                     : "");
        }
    }

    /* jansson's hash seed, once, before two threads make objects */
    json_object_seed(0);

    d->records = fg_records_new(err);
    if (d->records == NULL) {
        return err->code;
    }
    for (n = 0; n < 2; n++) {
        d->workers[n].jcs = fg_jcs_new(0);
        d->workers[n].h = fg_sha256_new();
        if (d->workers[n].jcs == NULL || d->workers[n].h == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
    }

    d->backend = ld_backend_open(conf->ledger, err);
    if (d->backend == NULL) {
        return err->code ? err->code : FG_ERR_INTERNAL;
    }

    return FG_OK;
}


void
ld_daemon_free(ld_daemon_t *d)
{
    size_t  i;

    for (i = 0; i < d->nnodes; i++) {
        ld_node_free(&d->nodes[i]);
    }
    free(d->nodes);
    free(d->seeds);
    if (d->backend != NULL) {
        d->backend->ops->close(d->backend);
    }
    if (d->password != NULL) {
        explicit_bzero(d->password, strlen(d->password));
        free(d->password);
    }
    free(d->tenants);
    fg_keyset_free(d->keys);
    fg_records_free(d->records);
    for (i = 0; i < 2; i++) {
        fg_jcs_free(d->workers[i].jcs);
        fg_sha256_free(d->workers[i].h);
    }
    fg_hashset_free(&d->batch_set);
    free(d->app);
    free(d->ack);
    free(d->dead);
    free(d->jobs[0].x);
    free(d->jobs[1].x);
}


/* Room for a batch of n entries in the scratch arrays. */
static int
ld_scratch(ld_daemon_t *d, size_t n)
{
    void  *a, *c, *e;

    if (n <= d->scratch_cap) {
        return FG_OK;
    }

    a = realloc(d->app, n * sizeof(ld_append_t));
    if (a != NULL) {
        d->app = a;
    }
    c = realloc(d->ack, n * sizeof(char *));
    if (c != NULL) {
        d->ack = c;
    }
    e = realloc(d->dead, n * sizeof(ld_dead_t));
    if (e != NULL) {
        d->dead = e;
    }
    if (a == NULL || c == NULL || e == NULL) {
        return FG_ERR_NOMEM;
    }

    d->scratch_cap = n;
    return FG_OK;
}


/* ------------------------------------------------------------ tenants */

static ld_tenant_t *
ld_tenant(ld_daemon_t *d, const char *tenant)
{
    ld_tenant_t  *grown;
    size_t        i;

    for (i = 0; i < d->ntenants; i++) {
        if (strcmp(d->tenants[i].tenant, tenant) == 0) {
            return &d->tenants[i];
        }
    }

    grown = realloc(d->tenants, (d->ntenants + 1) * sizeof(ld_tenant_t));
    if (grown == NULL) {
        return NULL;
    }
    d->tenants = grown;
    memset(&grown[d->ntenants], 0, sizeof(ld_tenant_t));
    strcpy(grown[d->ntenants].tenant, tenant);
    grown[d->ntenants].checkpoint_at_ms = ld_now_ms(CLOCK_MONOTONIC);
    return &d->tenants[d->ntenants++];
}


/* Sign and keep a checkpoint of t's head, if one is due (or force). */
static void
ld_checkpoint(ld_daemon_t *d, ld_tenant_t *t, int force)
{
    fg_buffer_t  note;
    fg_error_t   err;
    uint64_t     now;

    if (d->key == NULL || t->head_seq <= t->checkpoint_seq) {
        return;
    }

    now = ld_now_ms(CLOCK_MONOTONIC);
    if (!force
        && t->head_seq - t->checkpoint_seq < d->conf->checkpoint_entries
        && now - t->checkpoint_at_ms < (uint64_t) d->conf->checkpoint_ms)
    {
        return;
    }

    fg_buffer_init(&note, 16 * 1024);
    if (fg_checkpoint_sign(d->key, t->tenant, t->head_seq, t->head_chain,
                           &note, &err) != FG_OK
        || d->backend->ops->checkpoint(d->backend, t->tenant, t->head_seq,
                                       (const char *) note.data, note.len,
                                       &err) != FG_OK)
    {
        ld_log(LD_LOG_ERR, "checkpoint of %s at seq %llu: %s", t->tenant,
               (unsigned long long) t->head_seq, err.msg);
    } else {
        ld_log(LD_LOG_INFO, "checkpoint of %s at seq %llu", t->tenant,
               (unsigned long long) t->head_seq);
        t->checkpoint_seq = t->head_seq;
    }
    fg_buffer_free(&note);
    t->checkpoint_at_ms = now;
}


static void
ld_checkpoints(ld_daemon_t *d, int force)
{
    size_t  i;

    for (i = 0; i < d->ntenants; i++) {
        ld_checkpoint(d, &d->tenants[i], force);
    }
}


/* ------------------------------------------------------------- checks */

/* The time an entry was added to its stream (its id's ms), or 0. */
static uint64_t
ld_entry_ms(const ld_entry_t *e)
{
    unsigned long long  ms;

    return sscanf(e->id, "%llu-", &ms) == 1 ? (uint64_t) ms : 0;
}


/* A copy of the string member name of obj (at most size - 1 bytes). */
static void
ld_copy_string(const json_t *obj, const char *name, char *out, size_t size)
{
    const char  *s = json_string_value(json_object_get(obj, name));

    snprintf(out, size, "%s", s ? s : "");
}


/*
 * Examine e for s's tenant with w's scratch, into *x: all that can be
 * known of it alone -- LD_SKIP, LD_DEAD with the fault and its detail, or
 * LD_APPEND with its hash, facts and ids, whose link and repetition
 * ld_decide() checks against the batch and the ledger.  Entries are
 * examined by two threads at once (ld_job_work); this touches nothing
 * but e, x and w, and the schemas, which are read-only.
 */
static void
ld_examine(ld_worker_t *w, const fg_records_t *records, const char *tenant,
    const ld_entry_t *e, ld_exam_t *x)
{
    unsigned char   claimed[FG_SHA256_LEN];
    fg_error_t      err;
    json_t         *rec;
    const char     *name;

    x->verdict = LD_DEAD;
    x->fault = FG_LEDGER_MALFORMED;

    if (e->deleted) {
        x->verdict = LD_SKIP;
        return;
    }

    if (e->t == NULL || e->h == NULL || e->r == NULL) {
        snprintf(x->detail, LD_DETAIL_SIZE, "the entry lacks t, h or r");
        return;
    }
    if (e->r_len > FG_RECORD_MAX_BYTES) {
        snprintf(x->detail, LD_DETAIL_SIZE, "r of %zu bytes is longer than "
                 "%d", e->r_len, FG_RECORD_MAX_BYTES);
        return;
    }
    if (fg_unhex_sha256(e->h, e->h_len, claimed) != FG_OK) {
        snprintf(x->detail, LD_DETAIL_SIZE, "h is not 64 lowercase hex "
                 "digits");
        return;
    }

    /* the ledger keeps r's bytes: they must be the canonical ones */
    if (fg_record_parse_canonical(w->jcs, (const unsigned char *) e->r,
                                  e->r_len, x->md, &rec, &err) != FG_OK)
    {
        snprintf(x->detail, LD_DETAIL_SIZE, "r: %.*s", LD_DETAIL_SIZE - 4,
                 err.msg);
        return;
    }

    /* INV-INT-005: the hash is recomputed, never taken from h */
    if (memcmp(x->md, claimed, FG_SHA256_LEN) != 0) {
        x->fault = FG_LEDGER_HASH_MISMATCH;
        snprintf(x->detail, LD_DETAIL_SIZE, "h is not sha256(JCS(r))");
        goto done;
    }

    x->fault = fg_ledger_check(records, rec, tenant, &x->facts, &err);
    if (x->fault != FG_LEDGER_OK) {
        snprintf(x->detail, LD_DETAIL_SIZE, "%s", err.msg);
        goto done;
    }

    name = fg_record_type_name(x->facts.type);
    if (e->t_len != strlen(name) || memcmp(e->t, name, e->t_len) != 0) {
        x->fault = FG_LEDGER_TYPE_MISMATCH;
        snprintf(x->detail, LD_DETAIL_SIZE, "t is not the record_type %s",
                 name);
        goto done;
    }

    ld_copy_string(json_object_get(rec, "trace"), "trace_id", x->ids,
                   FG_TRACE_ID_LEN + 1);
    ld_copy_string(rec, "execution_id", x->ids + FG_TRACE_ID_LEN + 1,
                   FG_UUID_LEN + 1);
    x->verdict = LD_APPEND;

done:

    json_decref(rec);
}


/* Entries a thread takes from a job at a time. */
#define LD_JOB_CHUNK  32


/*
 * Examine entries of the job's batch, LD_JOB_CHUNK at a time, until none
 * is left: the daemon's thread and the job's own take from the same
 * counter, so the work is shared whoever comes first.
 */
static void
ld_job_work(ld_job_t *job, ld_worker_t *w)
{
    const ld_batch_t  *b = job->b;
    size_t             i, k, from, to, base;

    for ( ;; ) {
        from = atomic_fetch_add(&job->next, LD_JOB_CHUNK);
        if (from >= job->total) {
            return;
        }
        to = from + LD_JOB_CHUNK < job->total ? from + LD_JOB_CHUNK
                                               : job->total;

        /* which stream of the batch entry i is in */
        for (i = from; i < to; i++) {
            base = 0;
            for (k = 0; i >= base + b->s[k].n; k++) {
                base += b->s[k].n;
            }
            ld_examine(w, job->d->records,
                       job->d->n->streams[b->s[k].stream].tenant,
                       &b->s[k].e[i - base], &job->x[i]);
        }
    }
}


static void *
ld_job_thread(void *data)
{
    ld_job_t  *job = data;

    ld_job_work(job, &job->d->workers[1]);
    return NULL;
}


/*
 * Start examining batch b: its entries' examinations go to job->x, and a
 * thread of the job's own starts on them at once.  The daemon's thread
 * joins in with ld_job_finish() when it has nothing else to do: for a
 * batch read ahead, after it has appended and acknowledged the batch
 * before (the examination of the next overlaps that, and the fsync).
 */
static int
ld_job_start(ld_daemon_t *d, ld_job_t *job, ld_batch_t *b)
{
    ld_exam_t  *x;
    ld_job_t   *other;
    size_t      i, total;

    total = 0;
    for (i = 0; i < b->nstreams; i++) {
        total += b->s[i].n;
    }

    if (total > job->cap) {
        x = realloc(job->x, total * sizeof(ld_exam_t));
        if (x == NULL) {
            return FG_ERR_NOMEM;
        }
        job->x = x;
        job->cap = total;
    }

    job->d = d;
    job->b = b;
    job->total = total;
    atomic_store(&job->next, 0);

    /* one job thread at a time: it has the one worker scratch of its own */
    other = &d->jobs[job == &d->jobs[0]];
    job->running = total >= 2 * LD_JOB_CHUNK
                   && other->state != LD_JOB_STARTED
                   && pthread_create(&job->tid, NULL, ld_job_thread, job)
                      == 0;
    job->state = LD_JOB_STARTED;
    return FG_OK;
}


/* The job examining b, or NULL. */
static ld_job_t *
ld_job_of(ld_daemon_t *d, const ld_batch_t *b)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (d->jobs[i].state != LD_JOB_FREE && d->jobs[i].b == b) {
            return &d->jobs[i];
        }
    }
    return NULL;
}


/* A job not in use (there are two: a batch, and the one read ahead). */
static ld_job_t *
ld_job_free(ld_daemon_t *d)
{
    return d->jobs[0].state == LD_JOB_FREE ? &d->jobs[0]
           : d->jobs[1].state == LD_JOB_FREE ? &d->jobs[1] : NULL;
}


/* Examine what is left of the job here, and wait for its thread. */
static void
ld_job_finish(ld_daemon_t *d, ld_job_t *job)
{
    if (job->state != LD_JOB_STARTED) {
        return;
    }

    ld_job_work(job, &d->workers[0]);

    if (job->running) {
        (void) pthread_join(job->tid, NULL);
        job->running = 0;
    }
    job->state = LD_JOB_DONE;           /* its x in use until released */
}


/*
 * What becomes of an examined entry in its batch: a duplicate of one
 * before it in the batch, deferred or dead when its parent is neither
 * earlier in the batch nor in the ledger, else appended (*a filled).
 * FG_OK, or an error when the ledger cannot be asked (the batch is
 * retried).
 */
static int
ld_decide(ld_daemon_t *d, const ld_stream_t *s, const ld_entry_t *e,
    ld_exam_t *x, ld_append_t *a)
{
    fg_error_t  err;
    int         type, rc;

    if (x->verdict != LD_APPEND) {
        return FG_OK;
    }

    if (fg_hashset_get(&d->batch_set, x->md) >= 0) {
        x->verdict = LD_DUPLICATE;
        return FG_OK;
    }

    if (x->facts.has_link) {
        type = fg_hashset_get(&d->batch_set, x->facts.link);
        if (type < 0) {
            rc = d->backend->ops->lookup(d->backend, s->tenant,
                                         x->facts.link, &type, &err);
            if (rc != FG_OK) {
                ld_log(LD_LOG_ERR, "ledger of %s cannot be asked: %s",
                       s->tenant, err.msg);
                return rc;
            }
        }

        if (fg_ledger_link_ok(&x->facts, type, &err) != FG_LEDGER_OK) {
            if (ld_entry_ms(e) + (uint64_t) d->conf->orphan_grace_ms
                > ld_now_ms(CLOCK_REALTIME))
            {
                x->verdict = LD_DEFER;
                return FG_OK;
            }
            x->verdict = LD_DEAD;
            x->fault = FG_LEDGER_ORPHAN;
            snprintf(x->detail, LD_DETAIL_SIZE, "%s", err.msg);
            return FG_OK;
        }
    }

    memset(a, 0, sizeof(*a));
    a->type = x->facts.type;
    memcpy(a->envelope_hash, x->md, FG_SHA256_LEN);
    a->record = (const unsigned char *) e->r;
    a->record_len = e->r_len;
    a->trace_id = x->ids;
    a->execution_id = x->ids + FG_TRACE_ID_LEN + 1;

    if (fg_hashset_put(&d->batch_set, x->md, (int) x->facts.type) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    return FG_OK;
}


/* ------------------------------------------------------------- batch */

/*
 * Take the reply of the read sent ahead (if one was) into d->n->next, before
 * any other command goes to Redis.  On error the entries it delivered are
 * this consumer's pending ones, read again.
 */
static void
ld_collect(ld_daemon_t *d)
{
    fg_error_t   err;
    ld_job_t    *job;

    if (!d->n->redis.prefetching) {
        return;
    }

    if (ld_redis_read_recv(&d->n->redis, d->n->streams, d->n->nstreams,
                           &d->n->next,
                           &err) != FG_OK)
    {
        ld_log(LD_LOG_ERR, "%s (read again as pending)", err.msg);
        d->n->need_pending = 1;
        return;
    }

    /* this batch's job is done: the other one is free for the next */
    job = ld_job_free(d);
    if (d->n->next != NULL && job != NULL
        && ld_job_start(d, job, d->n->next) != FG_OK)
    {
        ld_log(LD_LOG_WARN, "out of memory: the next batch is examined "
               "when its turn comes");
    }
}


/* Forget the batch read ahead (it is pending: read again as such). */
static void
ld_drop_next(ld_daemon_t *d)
{
    ld_job_t  *job;

    job = ld_job_of(d, d->n->next);
    if (job != NULL) {
        ld_job_finish(d, job);
        job->state = LD_JOB_FREE;
    }
    ld_redis_batch_free(d->n->next);
    d->n->next = NULL;
}


/*
 * Everything one stream's entries e[0..n) come to.  FG_OK when each was
 * appended, dead-lettered, deferred or skipped and acknowledged as such;
 * an error when nothing of them may be acknowledged (retried).
 */
static int
ld_process(ld_daemon_t *d, ld_stream_t *s, ld_entry_t *e, size_t n,
    ld_exam_t *exam)
{
    fg_error_t          err;
    ld_exam_t          *x;
    ld_tenant_t        *t;
    size_t              i, napp, nack, ndead, ndefer, dups;
    int                 rc;
    const ld_entry_t  **from;

    if (ld_scratch(d, n) != FG_OK) {
        ld_log(LD_LOG_ERR, "out of memory for a batch of %zu", n);
        return FG_ERR_NOMEM;
    }

    from = calloc(n, sizeof(*from));
    if (from == NULL) {
        return FG_ERR_NOMEM;
    }

    fg_hashset_clear(&d->batch_set);
    napp = nack = ndead = ndefer = 0;

    for (i = 0; i < n; i++) {
        x = &exam[i];
        rc = ld_decide(d, s, &e[i], x, &d->app[napp]);
        if (rc != FG_OK) {
            free(from);
            return rc;
        }

        switch (x->verdict) {
        case LD_APPEND:
            from[napp++] = &e[i];
            break;
        case LD_SKIP:
        case LD_DUPLICATE:
            d->ack[nack++] = e[i].id;
            break;
        case LD_DEFER:
            ndefer++;
            break;
        default:
            d->dead[ndead].e = &e[i];
            d->dead[ndead].reason = fg_ledger_fault_name(x->fault);
            d->dead[ndead].detail = x->detail;
            ndead++;
            break;
        }
    }

    /*
     * The batch read ahead, if one was: its reply is taken now and its
     * examination starts on the other thread, while this batch is made
     * durable and acknowledged.
     */
    ld_collect(d);

    /* durable first ... */
    if (napp > 0) {
        rc = d->backend->ops->append(d->backend, s->tenant, d->app, napp,
                                     &err);
        if (rc != FG_OK) {
            ld_log(LD_LOG_ERR, "append of %zu records to the ledger of %s: "
                   "%s (left pending, read again)", napp, s->tenant,
                   err.msg);
            free(from);
            return rc;
        }
    }

    /* ... then acknowledged */
    dups = 0;
    t = NULL;
    for (i = 0; i < napp; i++) {
        d->ack[nack++] = from[i]->id;
        if (d->app[i].duplicate) {
            dups++;
            continue;
        }
        if (t == NULL && (t = ld_tenant(d, s->tenant)) == NULL) {
            free(from);
            return FG_ERR_NOMEM;
        }
        t->head_seq = d->app[i].seq;
        memcpy(t->head_chain, d->app[i].chain, FG_SHA256_LEN);
    }
    free(from);

    ld_collect(d);

    if (ld_redis_ack(&d->n->redis, s, d->ack, nack, &err) != FG_OK) {
        ld_log(LD_LOG_ERR, "%s (the entries are read again; the ledger "
               "dedupes)", err.msg);
        return FG_ERR_IO;
    }

    for (i = 0; i < ndead; i++) {
        ld_log(LD_LOG_WARN, "%s %s to %s%s%s: %s: %s", s->key,
               d->dead[i].e->id, d->cluster ? LD_DLQ_PREFIX : LD_DLQ_KEY,
               d->cluster ? s->tenant : "", d->cluster ? "}" : "",
               d->dead[i].reason, d->dead[i].detail);
    }
    if (ld_redis_dlq(&d->n->redis, s, d->dead, ndead, &err) != FG_OK) {
        ld_log(LD_LOG_ERR, "%s (read again)", err.msg);
        return FG_ERR_IO;
    }

    s->acked = 1;
    d->appended += napp - dups;
    d->duplicates += dups;
    d->dead_lettered += ndead;
    d->n->deferred += ndefer;

    if (napp - dups > 0 || dups > 0 || ndead > 0) {
        ld_log(LD_LOG_DEBUG, "%s: %zu appended, %zu duplicates, %zu "
               "dead-lettered, %zu deferred", s->tenant, napp - dups, dups,
               ndead, ndefer);
    }

    if (t != NULL) {
        ld_checkpoint(d, t, 0);
    }

    return FG_OK;
}


/* 1 when a stream gave as many entries as a read asks for. */
static int
ld_batch_full(const ld_daemon_t *d, const ld_batch_t *b)
{
    size_t  i;

    for (i = 0; i < b->nstreams; i++) {
        if (b->s[i].n >= d->conf->batch) {
            return 1;
        }
    }
    return 0;
}


/* Process a batch; for a pending one, move each stream's cursor on. */
static int
ld_batch(ld_daemon_t *d, ld_batch_t *b, int pending)
{
    size_t        i, base;
    int           rc, failed;
    ld_job_t     *job;
    ld_stream_t  *s;

    job = ld_job_of(d, b);
    if (job == NULL) {
        job = ld_job_free(d);
        if (job == NULL || ld_job_start(d, job, b) != FG_OK) {
            ld_log(LD_LOG_ERR, "out of memory for a batch");
            return FG_ERR_NOMEM;
        }
    }
    ld_job_finish(d, job);

    failed = 0;
    for (i = 0, base = 0; i < b->nstreams; base += b->s[i].n, i++) {
        s = &d->n->streams[b->s[i].stream];
        rc = ld_process(d, s, b->s[i].e, b->s[i].n, job->x + base);
        if (rc == FG_ERR_INVALID) {
            /*
             * The backend refuses this tenant (a damaged ledger file):
             * its entries stay pending for when an operator has repaired
             * it, and the other tenants go on.
             */
            d->refused++;
            rc = FG_OK;
        }
        if (rc != FG_OK) {
            failed = 1;
            if (d->n->redis.c == NULL) {
                break;                  /* Redis went away: start again */
            }
            continue;
        }
        if (pending) {
            snprintf(s->cursor, LD_ID_MAX, "%s",
                     b->s[i].e[b->s[i].n - 1].id);
        }
    }

    ld_collect(d);
    job->state = LD_JOB_FREE;

    if (failed) {
        /* what it delivered is pending: the pending pass reads it */
        d->n->need_pending = 1;
        ld_drop_next(d);
    }
    return failed ? FG_ERR_IO : FG_OK;
}


/* ---------------------------------------------------------------- loop */

static void
ld_trim(ld_daemon_t *d, int all)
{
    fg_error_t  err;
    uint64_t    now;
    size_t      i;

    if (!d->conf->trim) {
        return;
    }

    now = ld_now_ms(CLOCK_MONOTONIC);
    for (i = 0; i < d->n->nstreams; i++) {
        if (!d->n->streams[i].acked
            || (!all && now - d->n->streams[i].trimmed_ms < 1000))
        {
            continue;
        }
        /* exact when idle; whole stream nodes only while busy */
        if (ld_redis_trim(&d->n->redis, &d->n->streams[i], all, &err)
            != FG_OK)
        {
            ld_log(LD_LOG_WARN, "%s not trimmed: %s", d->n->streams[i].key,
                   err.msg);
            return;
        }
        d->n->streams[i].acked = 0;
        d->n->streams[i].trimmed_ms = now;
    }
}


static void
ld_claim(ld_daemon_t *d)
{
    fg_error_t  err;
    size_t      i, claimed;

    for (i = 0; i < d->n->nstreams; i++) {
        if (ld_redis_claim(&d->n->redis, &d->n->streams[i],
                           d->conf->claim_idle_ms, d->conf->batch, &claimed,
                           &err) != FG_OK)
        {
            ld_log(LD_LOG_WARN, "%s: %s", d->n->streams[i].key, err.msg);
            return;
        }
        if (claimed > 0) {
            ld_log(LD_LOG_NOTICE, "%s: claimed %zu entries of a consumer "
                   "idle for %ld ms", d->n->streams[i].key, claimed,
                   d->conf->claim_idle_ms);
            d->n->need_pending = 1;
        }
    }
}


/*
 * Connect to the node's Redis if not connected.  1 connected, 0 not
 * (yet): after a backoff, slept here with one Redis, and in cluster mode
 * waited for by skipping the node until then (the others go on).
 */
static int
ld_connected(ld_daemon_t *d)
{
    fg_error_t   err;
    ld_node_t   *n = d->n;
    uint64_t     now;

    if (n->redis.c != NULL) {
        return 1;
    }

    now = ld_now_ms(CLOCK_MONOTONIC);
    if (d->cluster && now < n->retry_ms) {
        return 0;
    }

    if (ld_redis_connect(&n->redis, &err) != FG_OK) {
        ld_log(n->backoff == 100 ? LD_LOG_ERR : LD_LOG_DEBUG, "%s (again in "
               "%ld ms)", err.msg, n->backoff);
        if (d->cluster) {
            n->retry_ms = now + (uint64_t) n->backoff;
            d->remap = 1;               /* a failover may have moved it */
        } else {
            ld_sleep_ms(n->backoff);
        }
        n->backoff = n->backoff * 2 > 5000 ? 5000 : n->backoff * 2;
        return 0;
    }

    if (n->redis.unix_path != NULL) {
        ld_log(LD_LOG_NOTICE, "connected to redis unix:%s as %s/%s",
               n->redis.unix_path, n->redis.group, n->redis.consumer);
    } else {
        ld_log(LD_LOG_NOTICE, "connected to redis %s%s:%d as %s/%s",
               d->cluster ? "cluster node " : "", n->redis.host,
               n->redis.port, n->redis.group, n->redis.consumer);
    }
    n->backoff = 100;
    n->need_pending = 1;                /* what we held may still be ours */
    n->discovered_ms = 0;
    n->claimed_ms = 0;
    return 1;
}


/* Read and process our own pending entries.  1 some, 0 none, -1 error. */
static int
ld_pending(ld_daemon_t *d)
{
    ld_batch_t  *b;
    fg_error_t   err;
    size_t       i;
    int          rc;

    rc = ld_redis_read(&d->n->redis, d->n->streams, d->n->nstreams, 1,
                       d->conf->batch, 0, &b, &err);
    if (rc != FG_OK) {
        ld_log(LD_LOG_ERR, "%s", err.msg);
        return -1;
    }

    if (b == NULL) {
        /* the pass is over: the next one starts from the first entry */
        for (i = 0; i < d->n->nstreams; i++) {
            strcpy(d->n->streams[i].cursor, "0");
        }
        d->n->need_pending = 0;
        return 0;
    }

    rc = ld_batch(d, b, 1);
    ld_redis_batch_free(b);
    return rc == FG_OK ? 1 : -1;
}


#define LD_TURN_IDLE    0               /* nothing to do on the node */
#define LD_TURN_WORK    1               /* something done, or to retry */
#define LD_TURN_DONE    2               /* --once: the node is drained */
#define LD_TURN_FAIL    3               /* --once cannot finish */
#define LD_TURN_ERROR   4               /* failed: again, after a pause
                                           in cluster mode */


/* One turn of the loop on the node d->n. */
static int
ld_turn(ld_daemon_t *d, long claim_every)
{
    ld_batch_t  *b;
    fg_error_t   err;
    uint64_t     now;
    ld_node_t   *n = d->n;
    int          rc, got;

    if (!ld_connected(d)) {
        if (d->conf->once && ++n->errors > 20) {
            ld_log(LD_LOG_ERR, "--once: redis cannot be reached");
            return LD_TURN_FAIL;
        }
        return d->cluster ? LD_TURN_IDLE : LD_TURN_WORK;
    }

    now = ld_now_ms(CLOCK_MONOTONIC);

    if (n->discovered_ms == 0 || d->conf->once
        || now - n->discovered_ms >= (uint64_t) d->conf->discover_ms)
    {
        if (ld_redis_discover(&n->redis, &n->streams, &n->nstreams, &err)
            != FG_OK)
        {
            ld_log(LD_LOG_ERR, "%s", err.msg);
            if (d->cluster && d->conf->once && ++n->errors > 20) {
                return LD_TURN_FAIL;
            }
            return LD_TURN_ERROR;
        }
        n->discovered_ms = now;
    }

    if (n->nstreams == 0) {
        if (d->conf->once) {
            return LD_TURN_DONE;
        }
        if (!d->cluster) {
            ld_sleep_ms(d->conf->block_ms);
        }
        return LD_TURN_IDLE;
    }

    if (n->claimed_ms == 0 || now - n->claimed_ms >= (uint64_t) claim_every)
    {
        ld_claim(d);
        n->claimed_ms = now;
    }

    /* our own pending entries first: a crash, a failed batch, orphans */
    if (n->need_pending || (n->deferred > 0 && now >= n->pending_ms)) {
        if (!n->need_pending) {
            n->need_pending = 1;
            n->deferred = 0;            /* counted again in this pass */
        }
        /* what was read ahead is pending too: the pass reads it */
        ld_drop_next(d);
        got = ld_pending(d);
        if (got < 0) {
            if (d->conf->once && ++n->errors > 20) {
                return LD_TURN_FAIL;
            }
            ld_pause_after_failure(d);
            return LD_TURN_ERROR;
        }
        d->failed_ms = 0;
        if (got > 0) {
            return LD_TURN_WORK;
        }
        n->pending_ms = ld_now_ms(CLOCK_MONOTONIC) + 500;
    }

    if (n->next != NULL) {
        b = n->next;
        n->next = NULL;
        rc = FG_OK;
    } else {
        rc = ld_redis_read(&n->redis, n->streams, n->nstreams, 0,
                           d->conf->batch,
                           d->conf->once ? 0 : (int) d->block_now, &b, &err);
    }
    if (rc != FG_OK) {
        ld_log(LD_LOG_ERR, "%s", err.msg);
        if (d->conf->once && ++n->errors > 20) {
            return LD_TURN_FAIL;
        }
        return LD_TURN_ERROR;
    }

    if (b != NULL) {
        /* a full batch: more is likely waiting; Redis prepares it
         * while this one is checked and appended */
        if (ld_batch_full(d, b)
            && ld_redis_read_send(&n->redis, n->streams, n->nstreams,
                                  d->conf->batch, &err) != FG_OK)
        {
            ld_log(LD_LOG_ERR, "%s", err.msg);
        }
        if (ld_batch(d, b, 0) != FG_OK) {
            if (d->conf->once && ++n->errors > 20) {
                ld_redis_batch_free(b);
                return LD_TURN_FAIL;
            }
            ld_pause_after_failure(d);

        } else {
            d->failed_ms = 0;
        }
        ld_redis_batch_free(b);
        ld_trim(d, 0);
        return LD_TURN_WORK;
    }

    /* idle */
    ld_trim(d, 1);
    ld_checkpoints(d, 0);

    if (d->conf->once) {
        if (n->deferred == 0) {
            return LD_TURN_DONE;
        }
        ld_sleep_ms(100);               /* orphans: their grace runs out */
    }

    return LD_TURN_IDLE;
}


/*
 * Cluster mode: the masters from CLUSTER SLOTS, asked of a node already
 * connected or else of each seed in turn.  Nodes still masters keep their
 * state; new ones are added, those gone closed.  After a redirection
 * every node discovers its streams again and reads its pending entries.
 */
static int
ld_map(ld_daemon_t *d)
{
    ld_addr_t    masters[LD_CLUSTER_NODES];
    ld_node_t   *nodes, *o;
    ld_redis_t   tmp;
    fg_error_t   err;
    size_t       i, j, nm;
    int          rc, moved;

    rc = FG_ERR_IO;
    nm = 0;

    for (i = 0; rc != FG_OK && i < d->nnodes; i++) {
        if (d->nodes[i].redis.c != NULL && !d->nodes[i].redis.prefetching) {
            rc = ld_redis_cluster_masters(&d->nodes[i].redis, masters,
                                          LD_CLUSTER_NODES, &nm, &err);
        }
    }

    for (i = 0; rc != FG_OK && i < d->nseeds && !ld_stop; i++) {
        memset(&tmp, 0, sizeof(tmp));
        tmp.host = d->seeds[i].host;
        tmp.port = d->seeds[i].port;
        tmp.db = -1;
        tmp.password = d->password;
        tmp.timeout_ms = (int) d->conf->redis_timeout_ms;
        tmp.cluster = 1;
        rc = ld_redis_connect(&tmp, &err);
        if (rc == FG_OK) {
            rc = ld_redis_cluster_masters(&tmp, masters, LD_CLUSTER_NODES,
                                          &nm, &err);
        }
        ld_redis_close(&tmp);
        if (rc != FG_OK) {
            ld_log(LD_LOG_WARN, "cluster seed %s:%d: %s", d->seeds[i].host,
                   d->seeds[i].port, err.msg);
        }
    }

    if (rc != FG_OK || nm == 0) {
        if (rc == FG_OK) {
            ld_log(LD_LOG_ERR, "redis cluster: no master has slots");
        }
        return FG_ERR_IO;
    }

    nodes = calloc(nm, sizeof(ld_node_t));
    if (nodes == NULL) {
        return FG_ERR_NOMEM;
    }

    for (i = 0; i < nm; i++) {
        o = NULL;
        for (j = 0; j < d->nnodes; j++) {
            if (d->nodes[j].redis.host != NULL
                && d->nodes[j].redis.port == masters[i].port
                && strcmp(d->nodes[j].redis.host, masters[i].host) == 0)
            {
                o = &d->nodes[j];
                break;
            }
        }
        if (o != NULL) {
            nodes[i] = *o;              /* moved, with its connection */
            memset(o, 0, sizeof(*o));
            continue;
        }
        ld_node_init(d, &nodes[i]);
        nodes[i].redis.host = strdup(masters[i].host);
        nodes[i].redis.port = masters[i].port;
        if (nodes[i].redis.host == NULL) {
            for (j = 0; j <= i; j++) {
                ld_node_free(&nodes[j]);
            }
            free(nodes);
            return FG_ERR_NOMEM;
        }
        ld_log(LD_LOG_NOTICE, "redis cluster master %s:%d", masters[i].host,
               masters[i].port);
    }

    for (j = 0; j < d->nnodes; j++) {
        if (d->nodes[j].redis.host != NULL) {
            ld_log(LD_LOG_NOTICE, "redis cluster: %s:%d is not a master any "
                   "more", d->nodes[j].redis.host, d->nodes[j].redis.port);
        }
        ld_node_free(&d->nodes[j]);
    }
    free(d->nodes);

    moved = d->moved;
    d->moved = 0;
    d->nodes = nodes;
    d->nnodes = nm;
    d->n = &d->nodes[0];
    d->remap = 0;
    d->mapped_ms = ld_now_ms(CLOCK_MONOTONIC);

    if (moved) {
        /* streams may have changed nodes: look again, pending first */
        for (i = 0; i < d->nnodes; i++) {
            d->nodes[i].discovered_ms = 0;
            d->nodes[i].need_pending = 1;
        }
    }

    return FG_OK;
}


int
ld_daemon_run(ld_daemon_t *d)
{
    uint64_t     now;
    long         claim_every, backoff, idle_ms;
    size_t       i, done;
    int          rc, work, errors;

    claim_every = d->conf->claim_idle_ms / 2;
    if (claim_every < 100) {
        claim_every = 100;
    }
    backoff = 100;
    errors = 0;
    idle_ms = 10;

    while (!ld_stop) {

        if (d->cluster) {
            now = ld_now_ms(CLOCK_MONOTONIC);
            if (d->nnodes == 0 || d->remap
                || now - d->mapped_ms >= (uint64_t) d->conf->discover_ms)
            {
                if (ld_map(d) != FG_OK) {
                    if (d->nnodes == 0 || d->remap) {
                        ld_log(backoff == 100 ? LD_LOG_ERR : LD_LOG_DEBUG,
                               "redis cluster: no seed gave the map (again "
                               "in %ld ms)", backoff);
                        if (d->conf->once && ++errors > 20) {
                            return 1;
                        }
                        ld_sleep_ms(backoff);
                        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                        d->remap = 0;
                        d->mapped_ms = ld_now_ms(CLOCK_MONOTONIC);
                        if (d->nnodes == 0) {
                            continue;
                        }
                    }
                } else {
                    backoff = 100;
                }
            }
        }

        work = 0;
        done = 0;

        for (i = 0; i < d->nnodes && !ld_stop; i++) {
            d->n = &d->nodes[i];
            rc = ld_turn(d, claim_every);

            if (d->n->redis.redirected) {
                d->n->redis.redirected = 0;
                d->remap = 1;
                d->moved = 1;
            }

            if (rc == LD_TURN_FAIL) {
                return 1;
            }
            if (rc == LD_TURN_WORK || (rc == LD_TURN_ERROR && !d->cluster)) {
                work = 1;
            }
            if (rc == LD_TURN_DONE) {
                done++;
            }
        }

        if (d->conf->once && d->nnodes > 0 && done == d->nnodes) {
            break;
        }

        if (d->cluster && !work && !ld_stop) {
            /*
             * Each master polled (a read a slot, without BLOCK); none had
             * anything: a pause, doubling from 10 ms to --block while the
             * rounds find nothing, so an idle fleet is not polled hard.
             */
            ld_sleep_ms(d->conf->once ? 10 : idle_ms);
            idle_ms = idle_ms * 2 > d->conf->block_ms
                      ? d->conf->block_ms : idle_ms * 2;

        } else {
            idle_ms = 10;
        }
    }

    for (i = 0; i < d->nnodes; i++) {
        /* read ahead and not processed: pending, read again next start */
        d->n = &d->nodes[i];
        ld_collect(d);
        ld_drop_next(d);
    }

    /* what is appended is checkpointed before we go */
    ld_checkpoints(d, 1);

    ld_log(LD_LOG_NOTICE, "stopping: %llu appended, %llu duplicates, %llu "
           "dead-lettered%s", (unsigned long long) d->appended,
           (unsigned long long) d->duplicates,
           (unsigned long long) d->dead_lettered,
           d->refused ? "; a tenant's ledger refused its records" : "");

    /* --once did not finish what it was given */
    return d->conf->once && d->refused ? 1 : 0;
}

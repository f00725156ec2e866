/*
 * ld_ledgerd.h -- foxgov-ledgerd, the single write aperture of the ledger
 * (DESIGN.md "Ledger", INV-INT-001, INV-INT-005): its configuration and
 * the loop that reads the tenant streams, checks every entry, appends the
 * valid ones to the backend, dead-letters the others, and only then
 * acknowledges.
 */

#ifndef LD_LEDGERD_H
#define LD_LEDGERD_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fg_core.h"
#include "fg_hashset.h"
#include "fg_jose.h"
#include "fg_ledger.h"
#include "fg_record.h"
#include "ld_backend.h"
#include "ld_redis.h"

typedef struct {
    const char   *redis;                /* "IP:PORT" or "unix:PATH" */
    const char   *redis_cluster;        /* seeds "IP:PORT,IP:PORT"; or NULL */
    const char   *redis_password_file;
    int           redis_db;             /* -1: none */
    long          redis_timeout_ms;
    const char   *ledger;               /* "file:DIR" or a postgresql URI */
    const char   *group;
    const char   *consumer;
    size_t        batch;                /* entries read a stream at once */
    const char   *checkpoint_key;       /* Ed25519 PEM or JWKS; NULL: none */
    const char   *checkpoint_kid;
    uint64_t      checkpoint_entries;   /* a checkpoint every N entries */
    long          checkpoint_ms;        /* ... or T of appending */
    long          claim_idle_ms;        /* claim others' entries idle so */
    long          orphan_grace_ms;      /* wait so for a missing parent */
    long          block_ms;             /* wait for new entries so */
    long          discover_ms;          /* look for new streams so often */
    int           once;                 /* drain and exit */
    int           trim;                 /* trim acknowledged entries */
} ld_conf_t;

/* Per tenant: where its checkpoints are. */
typedef struct {
    char           tenant[FG_TENANT_ID_MAX + 1];
    uint64_t       head_seq;            /* the last appended by this daemon */
    unsigned char  head_chain[FG_SHA256_LEN];
    uint64_t       checkpoint_seq;      /* the last checkpointed */
    uint64_t       checkpoint_at_ms;
} ld_tenant_t;

#define LD_IDS_SIZE     (FG_TRACE_ID_LEN + 1 + FG_UUID_LEN + 1)
#define LD_DETAIL_SIZE  FG_ERRMSG_MAX

/* What examining one entry of a batch found (ld_ledgerd.c). */
typedef struct {
    int                    verdict;
    fg_ledger_fault_t      fault;
    fg_ledger_facts_t      facts;
    unsigned char          md[FG_SHA256_LEN];
    char                   ids[LD_IDS_SIZE];    /* trace id, execution id */
    char                   detail[LD_DETAIL_SIZE];
} ld_exam_t;

/* A thread's scratch for examining entries. */
typedef struct {
    fg_jcs_t               *jcs;
    fg_sha256_t            *h;
} ld_worker_t;

typedef struct ld_daemon_s  ld_daemon_t;

/* The examination of one batch's entries, shared by two threads. */
typedef struct {
    ld_daemon_t            *d;
    ld_batch_t             *b;
    ld_exam_t              *x;          /* one per entry, in batch order */
    size_t                  cap;
    size_t                  total;
    atomic_size_t           next;       /* the next entry to take */
    pthread_t               tid;
    int                     running;    /* its thread runs */
    int                     state;      /* LD_JOB_* */
} ld_job_t;

#define LD_JOB_FREE     0
#define LD_JOB_STARTED  1               /* being examined */
#define LD_JOB_DONE     2               /* examined, its x in use */

/*
 * A Redis the daemon reads: the one --redis, or a master of the cluster
 * (--redis-cluster), with its streams and where it is in reading them.
 */
typedef struct {
    ld_redis_t              redis;
    ld_stream_t            *streams;
    size_t                  nstreams;
    uint64_t                discovered_ms;
    uint64_t                claimed_ms;
    uint64_t                pending_ms;     /* when to read pending again */
    int                     need_pending;   /* our own PEL may hold work */
    size_t                  deferred;       /* orphans left pending */
    ld_batch_t             *next;           /* read ahead, not processed */
    long                    backoff;        /* connecting again after */
    uint64_t                retry_ms;       /* cluster: not before then */
    int                     errors;         /* --once: failed attempts */
    int                     done;           /* --once: drained */
} ld_node_t;

struct ld_daemon_s {
    ld_conf_t              *conf;
    ld_backend_t           *backend;

    ld_node_t              *nodes;          /* one, or the masters */
    size_t                  nnodes;
    ld_node_t              *n;              /* the one being read */
    int                     cluster;
    ld_addr_t              *seeds;          /* cluster: where to ask */
    size_t                  nseeds;
    uint64_t                mapped_ms;      /* the map last read */
    int                     remap;          /* read the map again now */
    int                     moved;          /* a slot moved: discover */
    char                   *password;
    long                    block_now;      /* this read's block time */
    long                    failed_ms;      /* pause after a failed batch:
                                               100 ms doubling to 5 s */

    ld_tenant_t            *tenants;
    size_t                  ntenants;

    fg_keyset_t            *keys;           /* the checkpoint key */
    const fg_jwk_t         *key;

    /* scratch, reused by every batch */
    fg_records_t           *records;        /* read-only: shared */
    ld_worker_t             workers[2];
    fg_hashset_t            batch_set;
    ld_job_t                jobs[2];        /* this batch, the next */
    ld_append_t            *app;
    const char            **ack;
    ld_dead_t              *dead;
    size_t                  scratch_cap;

    /* counts, for the log */
    uint64_t                appended;
    uint64_t                duplicates;
    uint64_t                dead_lettered;
    uint64_t                refused;        /* batches a backend refused */
};

/* Set when a signal asks the daemon to stop (after its batch). */
extern volatile sig_atomic_t  ld_stop;

/*
 * Open the backend, load the checkpoint key, compile the schemas.  Redis
 * is connected by the loop (and again whenever it drops).  FG_OK or an
 * error with err.
 */
int ld_daemon_init(ld_daemon_t *d, ld_conf_t *conf, fg_error_t *err);

/*
 * Run until ld_stop is set (or, with conf->once, until the streams are
 * drained).  Returns 0, or 1 when --once could not finish (an error).
 */
int ld_daemon_run(ld_daemon_t *d);

void ld_daemon_free(ld_daemon_t *d);

#endif /* LD_LEDGERD_H */

/*
 * ld_redis.h -- foxgov-ledgerd's side of the evidence streams
 * (DESIGN.md "Evidence transport", "Ledger"): one blocking hiredis
 * connection (the daemon has nothing else to do while it waits), the
 * tenant streams foxgov:ev:{<tenant_id>} found with SCAN, read through a
 * consumer group with XREADGROUP, claimed from dead consumers with
 * XAUTOCLAIM, acknowledged with XACK, trimmed below what the group still
 * holds, and the dead-letter stream foxgov:dlq.  In cluster mode
 * (r->cluster) one ld_redis_t a master: reads go one XREADGROUP a hash
 * slot, pipelined; dead letters go to the tenant's foxgov:dlq:{<tenant>};
 * MOVED, ASK, TRYAGAIN and CLUSTERDOWN set r->redirected; the masters come
 * from ld_redis_cluster_masters().
 */

#ifndef LD_REDIS_H
#define LD_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "fg_core.h"
#include "fg_record.h"

#define LD_STREAM_PREFIX    "foxgov:ev:{"
#define LD_STREAM_KEY_MAX   (sizeof(LD_STREAM_PREFIX) + FG_TENANT_ID_MAX + 1)
#define LD_DLQ_KEY          "foxgov:dlq"
/* cluster mode: a tenant's dead letters, in its stream's hash slot */
#define LD_DLQ_PREFIX       "foxgov:dlq:{"
#define LD_DLQ_KEY_MAX      (sizeof(LD_DLQ_PREFIX) + FG_TENANT_ID_MAX + 1)
#define LD_CLUSTER_SLOTS    FG_CLUSTER_SLOTS
#define LD_CLUSTER_NODES    64          /* masters known at most */
#define LD_HOST_MAX         64
#define LD_ID_MAX           48          /* "<ms>-<seq>" of a stream entry */
#define LD_NAME_MAX         128         /* group and consumer names */

typedef struct {
    /* where: host and port, or a unix socket path */
    char           *host;
    int             port;
    char           *unix_path;
    char           *password;           /* from a file; never logged */
    int             db;                 /* -1: no SELECT */
    int             timeout_ms;         /* connect and every reply */

    char            group[LD_NAME_MAX];
    char            consumer[LD_NAME_MAX];

    redisContext   *c;
    int             prefetching;        /* a read sent, its reply not read */
    int             owed;               /* XACKs sent, replies not read */

    int             cluster;            /* a node of a Redis Cluster */
    int             redirected;         /* a key answered MOVED, ASK, ...:
                                           the map is read again */
} ld_redis_t;

/* A master of a Redis Cluster, from CLUSTER SLOTS. */
typedef struct {
    char            host[LD_HOST_MAX];
    int             port;
} ld_addr_t;

/* A tenant's stream. */
typedef struct {
    char            key[LD_STREAM_KEY_MAX];
    char            tenant[FG_TENANT_ID_MAX + 1];
    char            cursor[LD_ID_MAX];  /* where re-reading pending is */
    int             acked;              /* acknowledged since its trim */
    uint64_t        trimmed_ms;
    unsigned        slot;               /* its hash slot (cluster) */
    int             seen;               /* found by the last discovery */
} ld_stream_t;

/* One stream entry as read; the strings point into the reply. */
typedef struct {
    char            id[LD_ID_MAX];
    int             deleted;            /* pending, but gone from the stream */
    const char     *t, *h, *r, *o;
    size_t          t_len, h_len, r_len, o_len;
} ld_entry_t;

/* What one read returned, per stream, until ld_redis_batch_free(). */
typedef struct {
    redisReply    **replies;            /* one a read (a slot, in cluster) */
    size_t          nreplies;
    size_t          cap;                /* of s[] */
    size_t          nstreams;
    struct {
        size_t          stream;         /* its index in the streams */
        ld_entry_t     *e;
        size_t          n;
    } s[1];                             /* nstreams of them */
} ld_batch_t;


/* Connect, AUTH and SELECT.  FG_OK or FG_ERR_IO with err. */
int ld_redis_connect(ld_redis_t *r, fg_error_t *err);
void ld_redis_close(ld_redis_t *r);

/*
 * The masters of the cluster r is connected to (CLUSTER SLOTS, every part
 * of the reply checked: a malformed one is FG_ERR_IO, nothing used), at
 * most max, into out[0..*n).  An empty host is r's.
 */
int ld_redis_cluster_masters(ld_redis_t *r, ld_addr_t *out, size_t max,
    size_t *n, fg_error_t *err);


/*
 * The tenant streams there are now into *streams (n entries, realloc'd;
 * known ones kept in place with their cursor), each with the group made
 * (from the start of the stream: nothing in it is skipped).  Keys whose
 * tenant id is not valid are skipped and logged.  In cluster mode the
 * streams no longer on the node (a slot moved) are dropped from the list.
 * FG_OK or FG_ERR_IO.
 */
int ld_redis_discover(ld_redis_t *r, ld_stream_t **streams, size_t *n,
    fg_error_t *err);

/*
 * Read at most count entries a stream: new ones (pending 0; block_ms > 0
 * waits that long for one, 0 returns at once), or with pending 1 the
 * group's entries delivered to this consumer and not acknowledged, from
 * each stream's cursor.  *batch is NULL when nothing was read.
 */
int ld_redis_read(ld_redis_t *r, ld_stream_t *streams, size_t n,
    int pending, size_t count, int block_ms, ld_batch_t **batch,
    fg_error_t *err);
void ld_redis_batch_free(ld_batch_t *b);

/*
 * The same read of new entries (without blocking), sent now and its reply
 * taken later with ld_redis_read_recv(): Redis prepares the next batch
 * while this one is checked and appended.  No other command may be sent
 * in between (the reply would be the read's): take it first.
 */
int ld_redis_read_send(ld_redis_t *r, ld_stream_t *streams, size_t n,
    size_t count, fg_error_t *err);
int ld_redis_read_recv(ld_redis_t *r, ld_stream_t *streams, size_t n,
    ld_batch_t **batch, fg_error_t *err);

/*
 * XACK ids[0..n) of the stream, without waiting for the reply (it is read
 * before the next command's, and a refusal logged: the entries are then
 * read again and deduped).  FG_OK or FG_ERR_IO.
 */
int ld_redis_ack(ld_redis_t *r, const ld_stream_t *s, const char **ids,
    size_t n, fg_error_t *err);

/*
 * Move entries to foxgov:dlq with their reasons and acknowledge them, in
 * one MULTI/EXEC so each is dead-lettered exactly once.  In cluster mode
 * the dead-letter stream is the tenant's foxgov:dlq:{<tenant>}, in the
 * hash slot of its evidence stream, so the XADD and the XACK are one
 * transaction on one node.
 */
typedef struct {
    const ld_entry_t  *e;
    const char        *reason;      /* fg_ledger_fault_name() */
    const char        *detail;      /* what and where */
} ld_dead_t;

int ld_redis_dlq(ld_redis_t *r, const ld_stream_t *s, const ld_dead_t *d,
    size_t n, fg_error_t *err);

/*
 * Take over the entries of the stream's other consumers idle for at least
 * min_idle_ms (XAUTOCLAIM ... JUSTID); *claimed says how many became
 * ours (they are read again as pending).
 */
int ld_redis_claim(ld_redis_t *r, const ld_stream_t *s, long min_idle_ms,
    size_t count, size_t *claimed, fg_error_t *err);

/*
 * Trim the stream below the oldest entry the group still holds pending,
 * or below what it has not been delivered yet when nothing is pending:
 * nothing unacknowledged is ever trimmed.  Not exact: only the stream's
 * whole nodes below that point go (less work for Redis while it is busy;
 * never more than exact).
 */
int ld_redis_trim(ld_redis_t *r, const ld_stream_t *s, int exact,
    fg_error_t *err);

#endif /* LD_REDIS_H */

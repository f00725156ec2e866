
/*
 * ngx_http_foxgov_common.h -- the structures the files of
 * ngx_http_foxgov_module share: configuration, the per-request context,
 * the policy bundle state and the shared zone, and the functions one file
 * offers the others.
 *
 * The module is split by concern, one .c file each:
 *
 *   ngx_http_foxgov_module.c     directives, configuration, module hooks
 *   ngx_http_foxgov_bundle.c     the signed policy bundle: load, re-check
 *   ngx_http_foxgov_zone.c       shared memory: THROTTLE counters and
 *                                single-use approval ids
 *   ngx_http_foxgov_access.c     the precontent-phase handler: body,
 *                                auth, trace, adapt, gates, decision, act
 *   ngx_http_foxgov_alloc.c      the worker's allocator of jansson's
 *                                small blocks
 *   ngx_http_foxgov_upstream.c   what the upstream receives: tokens out,
 *                                credential in, traceparent rewritten
 *   ngx_http_foxgov_reply.c      refusals: status, headers, JSON body
 *   ngx_http_foxgov_filter.c     response headers, response hashing and
 *                                usage, request body size bound
 *   ngx_http_foxgov_log.c        the log phase: the call record
 *   ngx_http_foxgov_evidence.c   the one exit of every record
 *   ngx_http_foxgov_variables.c  $foxgov_* variables
 *
 * Every rule about canonical bytes, hashes, tokens, records and
 * decisions lives in core/ (libfoxgov); the module only gathers what a
 * request holds and acts on what core/ answers.
 */


#ifndef _NGX_HTTP_FOXGOV_COMMON_H_INCLUDED_
#define _NGX_HTTP_FOXGOV_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "fg_adapter.h"
#include "fg_auth.h"
#include "fg_bundle.h"
#include "fg_call.h"
#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_jose.h"
#include "fg_policy.h"
#include "fg_record.h"
#include "fg_schema.h"
#include "fg_sse.h"
#include "fg_spool.h"
#include "fg_trace.h"


#define NGX_HTTP_FOXGOV_TRACE_INGRESS   0
#define NGX_HTTP_FOXGOV_TRACE_REQUIRE   1

#define NGX_HTTP_FOXGOV_KIND_NONE       -1

/* THROTTLE rules one call can hold counters of */
#define NGX_HTTP_FOXGOV_MAX_THROTTLES   64

/* headers the gateway removes before forwarding */
#define NGX_HTTP_FOXGOV_MAX_REDACTIONS  16

/* bytes of a JSON model response kept for its usage */
#define NGX_HTTP_FOXGOV_USAGE_BODY_MAX  (4 * 1024 * 1024)


/* ------------------------------------------------------- configuration */

/* A key file (foxgov_auth_keys, foxgov_approval_keys). */
typedef struct {
    ngx_str_t                   path;
    fg_keyset_t                *keys;
    fg_token_cache_t           *cache;      /* per worker, made on first use */
} ngx_http_foxgov_keys_t;


/* foxgov_credential <name> file=<path> [tenant=<id>] [header=<name>] */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   tenant;     /* empty: any tenant */
    ngx_str_t                   header;     /* empty: the provider's */
    ngx_str_t                   secret;     /* never logged */
} ngx_http_foxgov_credential_t;


/* One loaded, verified and compiled bundle, shared by the requests that
 * decided with it: freed when the last of them is done and it is no
 * longer current. */
typedef struct {
    fg_bundle_t                *bundle;
    fg_policy_t                *policy;
    json_t                     *prices;     /* prices.json, or NULL */
    ngx_uint_t                  refs;
} ngx_http_foxgov_policy_t;


/* foxgov_policy_bundle <path> keys=<jwks> ttl=<time> check=<time> */
typedef struct {
    ngx_str_t                   path;
    ngx_str_t                   keys_path;
    fg_keyset_t                *keys;
    time_t                      ttl;
    ngx_msec_t                  check;

    ngx_http_foxgov_policy_t   *current;    /* last good bundle, or NULL */
    time_t                      last_ok;    /* its last successful check */
    u_char                      fingerprint[FG_SHA256_LEN];
    ngx_uint_t                  refused;    /* the file now there failed */

    ngx_event_t                 timer;
    ngx_log_t                  *log;
} ngx_http_foxgov_bundle_t;


/* foxgov_redis */
#define NGX_HTTP_FOXGOV_REDIS_SEEDS  16         /* addresses, cluster form */

typedef struct {
    char                        ip[NGX_INET_ADDRSTRLEN + 1];
    in_port_t                   port;
} ngx_http_foxgov_redis_addr_t;

typedef struct {
    char                        ip[NGX_INET_ADDRSTRLEN + 1];
    in_port_t                   port;
    ngx_uint_t                  cluster;    /* the cluster form */
    ngx_uint_t                  replicas;   /* cluster: replicas=, WAIT */
    ngx_uint_t                  nseeds;     /* cluster: addresses given */
    ngx_http_foxgov_redis_addr_t seeds[NGX_HTTP_FOXGOV_REDIS_SEEDS];
    ngx_str_t                   unix_path;  /* NUL-ended; or empty */
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
    size_t                      backlog;    /* backlog=: bytes unwritten */
    ngx_str_t                   password;   /* password_file=; or empty */
    ngx_int_t                   db;         /* db=; -1: the default */
    u_char                     *file;       /* where it was written, for */
    ngx_uint_t                  line;       /* what is checked at merge */
} ngx_http_foxgov_redis_conf_t;


typedef struct {
    ngx_http_foxgov_bundle_t   *bundle;     /* NULL: no bundle directive */
    ngx_shm_zone_t             *zone;
    ngx_uint_t                  token_cache;
    ngx_http_foxgov_redis_conf_t *redis;    /* NULL: no foxgov_redis */
    ngx_str_t                   spool_dir;  /* foxgov_spool */
    uint64_t                    spool_max;
    u_char                     *spool_file; /* where it was written */
    ngx_uint_t                  spool_line;
} ngx_http_foxgov_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;

    ngx_int_t                   kind;       /* FG_CALL_*, or KIND_NONE */
    fg_provider_t               provider;
    ngx_str_t                   tool;       /* NUL-terminated */
    ngx_str_t                   action;
    ngx_str_t                   risk;       /* empty: null */
    ngx_str_t                   schema_path;
    fg_schema_set_t            *schema_set;
    const fg_schema_t          *schema;
    char                        schema_sha256[FG_SHA256_HEX_LEN + 1];

    ngx_http_foxgov_keys_t     *auth_keys;
    ngx_http_foxgov_keys_t     *approval_keys;
    time_t                      approval_ttl;

    ngx_uint_t                  trace;
    size_t                      body_max;
    ngx_uint_t                  evidence;   /* NGX_HTTP_FOXGOV_EVIDENCE_* */

    ngx_array_t                *credentials;
} ngx_http_foxgov_loc_conf_t;


#define NGX_HTTP_FOXGOV_EVIDENCE_ASYNC   0
#define NGX_HTTP_FOXGOV_EVIDENCE_STRICT  1

/* A call waiting for Redis to acknowledge its records (strict mode). */
typedef struct ngx_http_foxgov_wait_s  ngx_http_foxgov_wait_t;


/* ------------------------------------------------------- request context */

/* A THROTTLE rule the call took a slot of. */
typedef struct {
    ngx_str_t                   id;
    time_t                      window;
} ngx_http_foxgov_throttle_t;


/* A refusal being answered. */
typedef struct {
    ngx_uint_t                  status;
    const char                 *code;
    char                        message[FG_ERRMSG_MAX + 64];
    json_t                     *approval;   /* 428 only */
    const char                 *acr_values; /* 401 step-up only */
    long                        retry_after;
} ngx_http_foxgov_refusal_t;


typedef struct {
    ngx_http_foxgov_loc_conf_t *conf;       /* the location that decided */
    ngx_int_t                   status;     /* what the handler answers
                                               when re-run */
    ngx_uint_t                  waiting:1;  /* the body is being read */
    ngx_uint_t                  too_large:1;
    ngx_uint_t                  recorded:1; /* AuthContext + decision out */
    ngx_uint_t                  forwarded:1;
    ngx_uint_t                  refused:1;
    ngx_uint_t                  replied:1;
    ngx_uint_t                  approval_invalid:1;
    ngx_uint_t                  zone_full:1;
    ngx_uint_t                  response_started:1;
    ngx_uint_t                  response_done:1;
    ngx_uint_t                  logged:1;
    ngx_uint_t                  sse:1;
    ngx_uint_t                  json_response:1;
    ngx_uint_t                  usage_overflow:1;

    off_t                       body_seen;  /* bytes of the request body */

    time_t                      started_sec;
    long                        started_nsec;

    char                        execution_id[FG_UUID_LEN + 1];
    fg_trace_t                  trace;
    char                        traceparent[FG_TRACEPARENT_SIZE];
    ngx_uint_t                  trace_continued:1;
    ngx_uint_t                  trace_invalid:1;
    ngx_str_t                   tracestate; /* to pass on, or empty */

    /* authentication */
    json_t                     *auth;       /* the caller's subject
                                               (fg_auth_subject) */
    char                        auth_hash[FG_SHA256_HEX_LEN + 1];
    ngx_str_t                   auth_record;    /* its canonical bytes */
    ngx_str_t                   tenant;

    /* the call */
    fg_model_request_t          model;
    ngx_uint_t                  model_known:1;
    ngx_int_t                   endpoint;
    fg_blobref_t                request_ref;
    ngx_uint_t                  request_read:1;
    json_t                      *labels;
    ngx_str_t                   idempotency_key;
    size_t                      call_room;  /* spool room held for the
                                               call record */
    ngx_str_t                   approval;   /* FoxGov-Approval */
    const char                 *approval_note;
    char                        approval_reason[FG_ERRMSG_MAX];
    char                        query_sha256[FG_SHA256_HEX_LEN + 1];
    ngx_uint_t                  has_query:1;
    json_t                     *permissions;

    /* the decision */
    ngx_http_foxgov_policy_t   *policy;     /* a reference while in use */
    char                        decision_hash[FG_SHA256_HEX_LEN + 1];
    ngx_str_t                   decision;   /* "ALLOW", ... */
    ngx_str_t                   route;
    ngx_uint_t                  nthrottles;
    ngx_uint_t                  throttles_taken:1;
    time_t                      throttled_at;
    ngx_http_foxgov_throttle_t *throttles;  /* nthrottles, request pool */
    ngx_http_foxgov_wait_t     *wait;       /* strict: the records' acks */

    /* what the upstream does not see */
    ngx_uint_t                  nredactions;
    const char                 *redactions[NGX_HTTP_FOXGOV_MAX_REDACTIONS];

    ngx_http_foxgov_refusal_t   refusal;

    /* the response */
    ngx_uint_t                  status_sent;
    fg_sha256_t                *response_hash;
    uint64_t                    response_size;
    char                        response_type[FG_CONTENT_TYPE_MAX];
    fg_sse_t                   *sse_scan;   /* SSE responses only */
    fg_buffer_t                 usage_body;
    ngx_str_t                   upstream_request_id;
} ngx_http_foxgov_ctx_t;


extern ngx_module_t  ngx_http_foxgov_module;


/* -------------------------------------------------- per-worker resources */

/* The canonicalizer and hasher of this worker (one thread). */
fg_jcs_t *ngx_http_foxgov_jcs(void);
fg_sha256_t *ngx_http_foxgov_sha256(void);

/* jansson's small blocks from the worker's own free lists (alloc.c) */
void ngx_http_foxgov_alloc_init(ngx_log_t *log);

/* The token cache of a key file in this worker; NULL when disabled. */
fg_token_cache_t *ngx_http_foxgov_token_cache(ngx_http_foxgov_keys_t *k,
    ngx_uint_t size);


/* ------------------------------------------------------------- bundle */

char *ngx_http_foxgov_bundle_init(ngx_conf_t *cf,
    ngx_http_foxgov_bundle_t *b);
ngx_int_t ngx_http_foxgov_bundle_start(ngx_cycle_t *cycle,
    ngx_http_foxgov_bundle_t *b);
void ngx_http_foxgov_bundle_stop(ngx_http_foxgov_bundle_t *b);

/* The current bundle if it is fresh (a reference the caller releases),
 * else NULL with *why saying what is wrong. */
ngx_http_foxgov_policy_t *ngx_http_foxgov_bundle_acquire(
    ngx_http_foxgov_bundle_t *b, const char **why);
void ngx_http_foxgov_policy_release(ngx_http_foxgov_policy_t *p);


/* ---------------------------------------------------------------- zone */

ngx_shm_zone_t *ngx_http_foxgov_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);

/* Add to the counters of (tenant, rule); NGX_ERROR when the zone is full. */
ngx_int_t ngx_http_foxgov_zone_add_count(ngx_shm_zone_t *zone,
    ngx_str_t *tenant, ngx_str_t *rule, time_t window, time_t now,
    long long requests, long long tokens);

/*
 * Count this call against (tenant, rule) now, before it is decided, and
 * give the counters as they were before it: the decision reads them, and
 * two calls in two workers can never both see the last free slot.  A call
 * that is then not forwarded gives its slot back with _release().
 * NGX_ERROR when the zone is full.
 */
ngx_int_t ngx_http_foxgov_zone_take(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t now, long long *requests,
    long long *tokens);
void ngx_http_foxgov_zone_release(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t taken);

/* NGX_OK the first time (tenant, jti) is used, NGX_DECLINED after, NGX_ERROR
 * when the zone is full.  The id is kept until expires. */
ngx_int_t ngx_http_foxgov_zone_use_once(ngx_shm_zone_t *zone,
    ngx_str_t *tenant, ngx_str_t *jti, time_t expires, time_t now);


/* -------------------------------------------------------------- access */

ngx_int_t ngx_http_foxgov_access_handler(ngx_http_request_t *r);

/*
 * The call's context.  An internal redirect (error_page, try_files)
 * clears every module's context; the call's is found again through its
 * pool cleanup, so the call record is still written and nothing is
 * decided twice.
 */
ngx_http_foxgov_ctx_t *ngx_http_foxgov_get_ctx(ngx_http_request_t *r);

/* Record the 413 nginx answered for a body that outgrew foxgov_body_max. */
void ngx_http_foxgov_access_too_large(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);


/* ------------------------------------------------------------ upstream */

/* Rewrite the request headers for the upstream; NGX_ERROR on no memory. */
ngx_int_t ngx_http_foxgov_upstream_headers(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, ngx_http_foxgov_credential_t *cred);

/* The header a credential is sent in for this call. */
void ngx_http_foxgov_credential_header(ngx_http_foxgov_loc_conf_t *flcf,
    ngx_http_foxgov_credential_t *cred, ngx_str_t *name,
    ngx_uint_t *bearer);


/* --------------------------------------------------------------- reply */

/* Give back the THROTTLE slots a call took and was not forwarded with. */
void ngx_http_foxgov_release_throttles(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);

/* Send ctx->refusal; the return is what the precontent handler returns. */
ngx_int_t ngx_http_foxgov_reply(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);

/* Answer a refusal that happened before any context could be made. */
ngx_int_t ngx_http_foxgov_reply_plain(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);

/* Add a response header; NGX_ERROR on no memory. */
ngx_int_t ngx_http_foxgov_set_header(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);


/* -------------------------------------------------------------- filter */

ngx_int_t ngx_http_foxgov_filter_init(ngx_conf_t *cf);


/* ----------------------------------------------------------------- log */

ngx_int_t ngx_http_foxgov_log_handler(ngx_http_request_t *r);

/*
 * Write the call record of a decided call (once; later calls do nothing):
 * from the body filter as the last buffer of the response goes by, else
 * from the log phase.
 */
void ngx_http_foxgov_call_record(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);


/* ------------------------------------------------------------ evidence */

/*
 * The one exit of evidence records.  A record is written with a core/
 * record writer into the sink ngx_http_foxgov_evidence_writer() returns
 * (NULL when out of memory; one buffer per worker, so nothing else may be
 * written before the record is emitted or kept), and the writer's result
 * handed to ngx_http_foxgov_evidence_emit_written(), which hashes the
 * bytes into hash and sends them; or to ngx_http_foxgov_evidence_keep(),
 * which copies them into the request pool, to be sent later with
 * ngx_http_foxgov_evidence_emit_bytes().  "Sends" is to Redis with
 * foxgov_redis (ngx_http_foxgov_redis_send), and to the error log at
 * debug level in every case.  NGX_ERROR, logged at alert and hash emptied, when the
 * record could not be written (a defect, or no memory).
 */
fg_sink_t *ngx_http_foxgov_evidence_writer(void);
ngx_int_t ngx_http_foxgov_evidence_emit_written(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, int rc,
    fg_error_t *err, char hash[FG_SHA256_HEX_LEN + 1]);
ngx_int_t ngx_http_foxgov_evidence_keep(ngx_http_request_t *r, int rc,
    fg_error_t *err, ngx_str_t *bytes);
ngx_int_t ngx_http_foxgov_evidence_emit_bytes(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, const ngx_str_t *bytes,
    char hash[FG_SHA256_HEX_LEN + 1]);
/*
 * Hold spool room for the call's call record, before its AuthContext and
 * decision are emitted; the call record takes it, or the request's end
 * gives it back.  NGX_ERROR (logged) when the spool has no room.
 */
ngx_int_t ngx_http_foxgov_evidence_hold(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx);


/* A secret read from a file at configuration time (module.c). */
ngx_int_t ngx_http_foxgov_read_secret(ngx_conf_t *cf, ngx_str_t *file,
    const char *what, size_t max, ngx_str_t *text);


/* ------------------------------------------------------------- metrics */

#define NGX_HTTP_FOXGOV_METRIC_DECISIONS      6   /* FG_DECISION_* */
#define NGX_HTTP_FOXGOV_METRIC_WORKERS        64

/* counters[]: the evidence ones first, in the order metrics.c shows them */
#define NGX_HTTP_FOXGOV_METRIC_SENT           0
#define NGX_HTTP_FOXGOV_METRIC_SPOOLED        1
#define NGX_HTTP_FOXGOV_METRIC_DRAINED        2
#define NGX_HTTP_FOXGOV_METRIC_FAILED         3
#define NGX_HTTP_FOXGOV_METRIC_EVIDENCE_N     4   /* how many of them */
#define NGX_HTTP_FOXGOV_METRIC_STRICT_REFUSED 4
#define NGX_HTTP_FOXGOV_METRIC_CACHE_HIT      5
#define NGX_HTTP_FOXGOV_METRIC_CACHE_MISS     6
#define NGX_HTTP_FOXGOV_METRIC_COUNTERS       7

typedef struct {
    ngx_atomic_t                pid;        /* 0: free */
    ngx_atomic_t                spool_bytes;
    ngx_atomic_t                connected;
} ngx_http_foxgov_worker_slot_t;

/* In the shared zone: the gateway's counters, across workers and reloads. */
typedef struct {
    ngx_atomic_t                calls[2][NGX_HTTP_FOXGOV_METRIC_DECISIONS];
    ngx_atomic_t                counters[NGX_HTTP_FOXGOV_METRIC_COUNTERS];
    ngx_http_foxgov_worker_slot_t workers[NGX_HTTP_FOXGOV_METRIC_WORKERS];
} ngx_http_foxgov_metrics_t;

ngx_http_foxgov_metrics_t *ngx_http_foxgov_zone_metrics(ngx_shm_zone_t *zone);

/* kind FG_CALL_MODEL/TOOL, decision FG_DECISION_*: one more decided */
void ngx_http_foxgov_metrics_decision(ngx_int_t kind, ngx_uint_t decision);
/* one more of counters[counter] */
void ngx_http_foxgov_metrics_add(ngx_uint_t counter);
/* this worker's gauges */
void ngx_http_foxgov_metrics_worker(uint64_t spool_bytes,
    ngx_uint_t connected);
void ngx_http_foxgov_metrics_start(void);
void ngx_http_foxgov_metrics_stop(void);

char *ngx_http_foxgov_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_foxgov_metrics_handler(ngx_http_request_t *r);


/* ------------------------------------------------------------ transport */

char *ngx_http_foxgov_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_foxgov_spool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Strict mode: the records a call emits between wait_begin() and
 * wait_end() are followed until Redis acknowledges them.  wait_begin()
 * returns NULL when Redis cannot take them now (not connected, or the
 * spool holds records that go first): the call is then answered 503.
 * wait_state(): 0 still waiting, 1 every one acknowledged, -1 one was not.
 * wait_suspend(): the call waits; when the state is known the request's
 * write event is posted with ngx_http_foxgov_evidence_resume() as its
 * handler.  wait_cancel(): the request is gone (its pool cleanup).
 */
ngx_http_foxgov_wait_t *ngx_http_foxgov_redis_wait_begin(
    ngx_http_request_t *r);
void ngx_http_foxgov_redis_wait_end(ngx_http_foxgov_wait_t *w);
ngx_int_t ngx_http_foxgov_redis_wait_state(ngx_http_foxgov_wait_t *w);
void ngx_http_foxgov_redis_wait_suspend(ngx_http_foxgov_wait_t *w);
void ngx_http_foxgov_redis_wait_cancel(ngx_http_foxgov_wait_t *w);

/* Strict mode: the call's records are acknowledged, or not (access.c). */
void ngx_http_foxgov_evidence_resume(ngx_http_request_t *r);

/* A record sent, kept until Redis acknowledges it (redis.c, cluster.c). */
struct ngx_http_foxgov_wait_s {
    ngx_http_request_t         *r;          /* NULL once the request is gone */
    ngx_uint_t                  pending;    /* records sent, not answered */
    ngx_uint_t                  open:1;     /* between begin and end */
    ngx_uint_t                  failed:1;   /* one was not acknowledged */
    ngx_uint_t                  suspended:1;
    ngx_uint_t                  resumed:1;
};

/* One of the call's records was answered: acknowledged, or not. */
void ngx_http_foxgov_wait_answered(ngx_http_foxgov_wait_t *w,
    ngx_uint_t acked);

/*
 * How often a running worker, of either transport, looks for the spool
 * files of workers that exited after it started (a reload, an upgrade).
 */
#define NGX_HTTP_FOXGOV_ADOPT_EVERY  1000        /* ms */

/*
 * The worker's spool (redis.c), shared by both transports: made and
 * named (path gets its name), the files of dead workers adopted into it,
 * synced, the room a record sent directly holds in it until acknowledged
 * (docs/spool.md, "Room held"), and the bytes of records it holds.
 */
fg_spool_t *ngx_http_foxgov_spool_create(ngx_log_t *log, ngx_str_t *dir,
    uint64_t max, u_char *path);
uint64_t ngx_http_foxgov_spool_adopt(ngx_log_t *log, fg_spool_t *spool,
    u_char *own, ngx_str_t *dir, uint64_t max);
void ngx_http_foxgov_spool_sync(ngx_log_t *log, fg_spool_t *spool);
ngx_int_t ngx_http_foxgov_spool_keep(ngx_log_t *log, fg_spool_t *spool,
    ngx_event_t *flush, ngx_uint_t exiting, fg_record_type_t type,
    const char *tenant, size_t tenant_len, const char *hash,
    const u_char *rec, size_t len, size_t reserved);
ngx_int_t ngx_http_foxgov_spool_hold(ngx_log_t *log, fg_spool_t *spool,
    fg_record_type_t type, const char *hash, size_t tenant_len, size_t len,
    size_t reserved, size_t *held);
uint64_t ngx_http_foxgov_spool_used(fg_spool_t *spool);

/*
 * hiredis's async context on nginx's event loop (hiredis.c), one per
 * connection of either transport.  attach() wraps ac's fd in a connection
 * and sets its callbacks; ac->data is the transport's owner.  send, when
 * set, is posted to write what is queued at the end of the loop's turn
 * instead of a write event per command.  write() writes what is queued
 * now; unwritten() is what hiredis holds that the socket has not taken.
 */
typedef struct {
    struct redisAsyncContext   *ac;
    ngx_connection_t           *c;
    ngx_event_t                *send;       /* or NULL */
    ngx_uint_t                  writing;    /* in a write of ours */
} ngx_http_foxgov_hiredis_t;

ngx_int_t ngx_http_foxgov_hiredis_attach(ngx_http_foxgov_hiredis_t *h,
    struct redisAsyncContext *ac, void *owner, ngx_log_t *log);
void ngx_http_foxgov_hiredis_write(ngx_http_foxgov_hiredis_t *h);
size_t ngx_http_foxgov_hiredis_unwritten(ngx_http_foxgov_hiredis_t *h);

/*
 * The cluster form of foxgov_redis (cluster.c): the same guarantees, per
 * hash slot.  waiting() names the strict call emitting now (or NULL).
 */
ngx_int_t ngx_http_foxgov_cluster_start(ngx_cycle_t *cycle,
    ngx_http_foxgov_main_conf_t *fmcf);
void ngx_http_foxgov_cluster_stop(ngx_cycle_t *cycle);
ngx_int_t ngx_http_foxgov_cluster_send(ngx_log_t *log, fg_record_type_t type,
    const ngx_str_t *tenant, const char *hash, const u_char *rec,
    size_t len, size_t reserved);
ngx_int_t ngx_http_foxgov_cluster_reserve(size_t n, fg_error_t *err);
void ngx_http_foxgov_cluster_release(size_t n);
ngx_uint_t ngx_http_foxgov_cluster_running(void);
void ngx_http_foxgov_cluster_waiting(ngx_http_foxgov_wait_t *w,
    ngx_uint_t set);

/* The worker's connection and spool (init_process), and their end. */
ngx_int_t ngx_http_foxgov_redis_start(ngx_cycle_t *cycle,
    ngx_http_foxgov_main_conf_t *fmcf);
void ngx_http_foxgov_redis_stop(ngx_cycle_t *cycle);

/*
 * Hand a record's canonical bytes to Redis (XADD to foxgov:ev:{tenant}),
 * or to the spool while Redis does not take them.  NGX_DECLINED when no
 * foxgov_redis is configured.  reserved: spool room held for it by
 * _reserve() (a call's call record), which it takes over; 0 for none.
 *
 * Room held (docs/spool.md): every record sent directly holds the room it
 * would take in the spool until Redis acknowledges it, and every call let
 * through holds room for its call record, so that a record already
 * promised is never refused by a spool that filled meanwhile.
 */
ngx_int_t ngx_http_foxgov_redis_send(ngx_log_t *log, fg_record_type_t type,
    const ngx_str_t *tenant, const char *hash, const u_char *rec,
    size_t len, size_t reserved);
ngx_int_t ngx_http_foxgov_redis_reserve(size_t n, fg_error_t *err);

/* an XADD's bytes beyond its record's and tenant's (RESP framing, the
 * type name, the hash, the "o" field): 200 or so, bounded generously */
#define NGX_HTTP_FOXGOV_XADD_EXTRA          512
#define ngx_http_foxgov_xadd_size(tenant_len, len)                            \
    ((len) + (tenant_len) + NGX_HTTP_FOXGOV_XADD_EXTRA)

/* A record's XADD, in RESP, as both transports send it (redis.c). */
u_char *ngx_http_foxgov_xadd_format(u_char *p, fg_record_type_t type,
    const char *tenant, size_t tenant_len, const char *hash,
    const u_char *rec, size_t len, u_char **record);
void ngx_http_foxgov_redis_release(size_t n);

/*
 * A record handed to _send() is written into the socket before _send()
 * returns, but between _batch_begin() and _batch_end() (a call's
 * AuthContext and decision) they are written together by _batch_end(),
 * before the call goes on.  _flush() writes whatever is queued now.
 */
void ngx_http_foxgov_redis_batch_begin(void);
void ngx_http_foxgov_redis_batch_end(void);
void ngx_http_foxgov_redis_flush(void);


/* ----------------------------------------------------------- variables */

ngx_int_t ngx_http_foxgov_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_FOXGOV_COMMON_H_INCLUDED_ */

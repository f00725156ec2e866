
/*
 * ngx_http_foxgov_evidence.c -- the one exit of every evidence record:
 * the AuthContext and PolicyDecisionRecord of the access phase and the
 * call record of the log phase are written here by core/'s record
 * writers, in their canonical form, into the worker's one record buffer;
 * their envelope_hash is the sha256 of those bytes, and the bytes are
 * what is sent.  No record is built as a jansson value and canonicalized
 * afterwards (bench/gateway/README.md says what that cost).
 *
 * With foxgov_redis the bytes go to the Redis stream transport
 * (ngx_http_foxgov_redis.c, foxgov:ev:{tenant}); whether or not, each
 * record is also written to the error log when it is at debug level, as
 *
 *     foxgov evidence <execution_id> <record_type> <envelope_hash>
 *         <part>/<parts> <length> <canonical bytes of this part>
 *
 * in parts short enough for one log line each (nginx appends its
 * ", client: ..." context after them, hence the length), so a test or an
 * operator can put the canonical record back together and check its
 * hash.
 */


#include "ngx_http_foxgov_common.h"


/* canonical bytes per log line: an error log line holds 2048 in all */
#define NGX_HTTP_FOXGOV_EVIDENCE_PART  1200


static fg_buffer_t *ngx_http_foxgov_evidence_buffer(void);
static void ngx_http_foxgov_evidence_buffer_free(void *data);
static void ngx_http_foxgov_evidence_send(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, const u_char *p,
    size_t n, const char *hash);


/*
 * The worker's record buffer, reused by every record: a record is written
 * and then sent (or kept) in one go, so one is enough, and its memory is
 * allocated once instead of per record.
 */
static fg_buffer_t    *ngx_http_foxgov_canon;
static fg_sink_t       ngx_http_foxgov_canon_sink;
static unsigned char   ngx_http_foxgov_canon_stage[4096];


fg_sink_t *
ngx_http_foxgov_evidence_writer(void)
{
    fg_buffer_t  *canon;

    canon = ngx_http_foxgov_evidence_buffer();
    if (canon == NULL) {
        return NULL;
    }

    canon->len = 0;
    fg_sink_to_buffer(&ngx_http_foxgov_canon_sink, canon,
                      ngx_http_foxgov_canon_stage,
                      sizeof(ngx_http_foxgov_canon_stage));

    return &ngx_http_foxgov_canon_sink;
}


ngx_int_t
ngx_http_foxgov_evidence_emit_written(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, int rc,
    fg_error_t *err, char hash[FG_SHA256_HEX_LEN + 1])
{
    ngx_str_t  bytes;

    if (rc != FG_OK) {
        hash[0] = '\0';
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "foxgov: the %s record of %s cannot be written: %s",
                      fg_record_type_name(type), ctx->execution_id,
                      err->msg);
        return NGX_ERROR;
    }

    bytes.data = ngx_http_foxgov_canon->data;
    bytes.len = ngx_http_foxgov_canon->len;

    return ngx_http_foxgov_evidence_emit_bytes(r, ctx, type, &bytes, hash);
}


ngx_int_t
ngx_http_foxgov_evidence_keep(ngx_http_request_t *r, int rc,
    fg_error_t *err, ngx_str_t *bytes)
{
    ngx_str_null(bytes);

    if (rc != FG_OK) {
        return NGX_ERROR;
    }

    bytes->data = ngx_pnalloc(r->pool, ngx_http_foxgov_canon->len);
    if (bytes->data == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NGX_ERROR;
    }

    bytes->len = ngx_http_foxgov_canon->len;
    ngx_memcpy(bytes->data, ngx_http_foxgov_canon->data, bytes->len);

    return NGX_OK;
}


/*
 * The room a call record may take in the spool, held from the decision
 * on: its fixed fields take 2-3 KB (8 KB is ample, the model name and
 * the upstream's request id included: both are bounded), and what the
 * caller sent that it repeats (the path, the host, the idempotency key,
 * the labels) is counted at 6 bytes a byte, the most JSON escaping makes
 * of one.  A record larger than this still goes, with the room there is
 * (a warn says so).
 */
static size_t
ngx_http_foxgov_call_room(ngx_http_request_t *r, ngx_http_foxgov_ctx_t *ctx)
{
    size_t       n;
    const char  *key;
    json_t      *value;

    n = r->uri.len + r->headers_in.server.len + ctx->idempotency_key.len;

    json_object_foreach(ctx->labels, key, value) {
        n += ngx_strlen(key) + json_string_length(value);
    }

    return (size_t) fg_spool_entry_bytes(ctx->tenant.len, 8192 + 6 * n, 0);
}


static void
ngx_http_foxgov_call_room_free(void *data)
{
    ngx_http_foxgov_ctx_t  *ctx = data;

    ngx_http_foxgov_redis_release(ctx->call_room);
    ctx->call_room = 0;
}


/*
 * Hold spool room for the call's call record before its AuthContext and
 * decision go (docs/spool.md, "Room held"): a call let through always
 * has room for its last record, whatever fills the spool while it runs.
 * NGX_ERROR when there is none: the call is refused.
 */
ngx_int_t
ngx_http_foxgov_evidence_hold(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx)
{
    size_t               n;
    fg_error_t           err;
    ngx_int_t            rc;
    ngx_pool_cleanup_t  *cln;

    if (ctx->call_room > 0) {
        return NGX_OK;
    }

    n = ngx_http_foxgov_call_room(r, ctx);

    rc = ngx_http_foxgov_redis_reserve(n, &err);
    if (rc == NGX_DECLINED) {
        return NGX_OK;                  /* no spool: nothing to hold */
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "foxgov: no room in the spool for the evidence of "
                      "%s: %s", ctx->execution_id, err.msg);
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_foxgov_redis_release(n);
        return NGX_ERROR;
    }

    ctx->call_room = n;
    cln->handler = ngx_http_foxgov_call_room_free;
    cln->data = ctx;

    return NGX_OK;
}


ngx_int_t
ngx_http_foxgov_evidence_emit_bytes(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, const ngx_str_t *bytes,
    char hash[FG_SHA256_HEX_LEN + 1])
{
    size_t          room;
    fg_sha256_t    *h;
    unsigned char   md[FG_SHA256_LEN];

    h = ngx_http_foxgov_sha256();

    if (bytes->len == 0 || h == NULL || fg_sha256_init(h) != FG_OK
        || fg_sha256_update(h, bytes->data, bytes->len) != FG_OK
        || fg_sha256_final(h, md) != FG_OK)
    {
        hash[0] = '\0';
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "foxgov: the %s record of %s cannot be hashed",
                      fg_record_type_name(type), ctx->execution_id);
        return NGX_ERROR;
    }

    fg_hex_sha256(md, hash);

    /* a call record takes the room its call held for it (evidence_hold) */
    room = 0;
    if (type == FG_RECORD_MODEL_CALL || type == FG_RECORD_TOOL_CALL) {
        room = ctx->call_room;
        ctx->call_room = 0;
    }

    if (ngx_http_foxgov_redis_send(r->connection->log, type, &ctx->tenant,
                                   hash, bytes->data, bytes->len, room)
        == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "foxgov: the %s record of %s cannot be sent",
                      fg_record_type_name(type), ctx->execution_id);
        return NGX_ERROR;
    }

    ngx_http_foxgov_evidence_send(r, ctx, type, bytes->data, bytes->len,
                                  hash);

    return NGX_OK;
}


static void
ngx_http_foxgov_evidence_send(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, const u_char *p,
    size_t len, const char *hash)
{
    size_t  off, n, parts, i;

    if (r->connection->log->log_level < NGX_LOG_DEBUG) {
        return;
    }

    parts = (len + NGX_HTTP_FOXGOV_EVIDENCE_PART - 1)
            / NGX_HTTP_FOXGOV_EVIDENCE_PART;

    for (i = 0, off = 0; i < parts; i++, off += n) {
        n = ngx_min(len - off, NGX_HTTP_FOXGOV_EVIDENCE_PART);

        ngx_log_error(NGX_LOG_DEBUG, r->connection->log, 0,
                      "foxgov evidence %s %s %s %uz/%uz %uz %*s",
                      ctx->execution_id, fg_record_type_name(type), hash,
                      i + 1, parts, n, n, p + off);
    }
}


static fg_buffer_t *
ngx_http_foxgov_evidence_buffer(void)
{
    fg_buffer_t         *b;
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_foxgov_canon != NULL) {
        return ngx_http_foxgov_canon;
    }

    /* the cycle pool is destroyed by the worker at exit: freed there */
    cln = ngx_pool_cleanup_add(ngx_cycle->pool, sizeof(fg_buffer_t));
    if (cln == NULL) {
        return NULL;
    }

    b = cln->data;
    fg_buffer_init(b, FG_RECORD_MAX_BYTES);
    cln->handler = ngx_http_foxgov_evidence_buffer_free;

    ngx_http_foxgov_canon = b;

    return b;
}


static void
ngx_http_foxgov_evidence_buffer_free(void *data)
{
    fg_buffer_free(data);

    if (ngx_http_foxgov_canon == data) {
        ngx_http_foxgov_canon = NULL;
    }
}

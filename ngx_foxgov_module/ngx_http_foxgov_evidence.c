
/*
 * ngx_http_foxgov_evidence.c -- the one exit of every evidence record:
 * the AuthContext and PolicyDecisionRecord of the access phase and the
 * call record of the log phase are handed here, sealed (validated, and
 * their envelope_hash computed).
 *
 * The Redis stream transport (foxgov:ev:{tenant}, DESIGN.md "Evidence
 * transport") replaces the body of ngx_http_foxgov_evidence_emit(); until
 * it lands each record is written to the error log at debug level, as
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


ngx_int_t
ngx_http_foxgov_evidence_emit(ngx_http_request_t *r,
    ngx_http_foxgov_ctx_t *ctx, fg_record_type_t type, const json_t *record,
    const char *hash)
{
    size_t          off, n, parts, i;
    fg_sink_t       sink;
    fg_error_t      err;
    fg_buffer_t     canon;
    unsigned char   stage[FG_SINK_STAGE];

    if (r->connection->log->log_level < NGX_LOG_DEBUG) {
        return NGX_OK;
    }

    fg_buffer_init(&canon, FG_RECORD_MAX_BYTES);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));

    if (fg_jcs_canonicalize_json(record, 0, &sink, &err) != FG_OK) {
        fg_buffer_free(&canon);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "foxgov: the %s record cannot be written: %s",
                      fg_record_type_name(type), err.msg);
        return NGX_ERROR;
    }

    parts = (canon.len + NGX_HTTP_FOXGOV_EVIDENCE_PART - 1)
            / NGX_HTTP_FOXGOV_EVIDENCE_PART;

    for (i = 0, off = 0; i < parts; i++, off += n) {
        n = ngx_min(canon.len - off, NGX_HTTP_FOXGOV_EVIDENCE_PART);

        ngx_log_error(NGX_LOG_DEBUG, r->connection->log, 0,
                      "foxgov evidence %s %s %s %uz/%uz %uz %*s",
                      ctx->execution_id, fg_record_type_name(type), hash,
                      i + 1, parts, n, n, canon.data + off);
    }

    fg_buffer_free(&canon);

    return NGX_OK;
}

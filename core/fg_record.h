/*
 * fg_record.h -- evidence records: the four record types of DESIGN.md
 * ("Records"), written in canonical form by their builders
 * (fg_record_write.h; fg_auth, fg_policy and fg_call each write theirs),
 * validated against the schemas compiled into the library where they are
 * read (the ledger, the CLI), and hashed:
 *
 *     envelope_hash = lowercase hex sha256(JCS(record))
 *
 * Every record carries record_type, spec_version, canon_version,
 * tenant_id, execution_id and trace; the call records link to their
 * PolicyDecisionRecord and it to its AuthContext by envelope hash.
 */

#ifndef FG_RECORD_H
#define FG_RECORD_H

#include <time.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_schema.h"

typedef enum {
    FG_RECORD_AUTH_CONTEXT = 0,
    FG_RECORD_POLICY_DECISION,
    FG_RECORD_MODEL_CALL,
    FG_RECORD_TOOL_CALL,
    FG_RECORD_TYPES
} fg_record_type_t;

/* The largest record accepted from outside (Redis, a ledger, a file). */
#define FG_RECORD_MAX_BYTES  (1024 * 1024)

#define FG_TRACE_ID_LEN  32
#define FG_SPAN_ID_LEN   16
#define FG_UUID_LEN      36
#define FG_TIME_MAX      32

#define FG_TENANT_ID_MAX 63

/*
 * 1 if s[0..n) is a tenant id, ^[a-z0-9][a-z0-9_-]{0,62}$, else 0.  The
 * one check every place applies before a tenant id becomes part of a
 * record, a stream key, a path or a token.
 */
int fg_tenant_id_valid(const char *s, size_t n);

/*
 * The Redis Cluster hash slot of a tenant's evidence stream: the stream
 * key foxgov:ev:{<tenant>} has the tenant id as its hash tag, so this is
 * the CRC16-CCITT (XMODEM) of the tenant id, modulo 16384, as Redis
 * hashes keys.  The gateway sends a tenant's records to the master owning
 * it and foxgov-ledgerd reads them there: both use this one function.
 */
#define FG_CLUSTER_SLOTS 16384

unsigned fg_stream_slot(const char *tenant, size_t len);

/* A W3C trace context as records carry it; parent_span_id "" is null. */
typedef struct {
    char  trace_id[FG_TRACE_ID_LEN + 1];
    char  span_id[FG_SPAN_ID_LEN + 1];
    char  parent_span_id[FG_SPAN_ID_LEN + 1];
} fg_trace_t;

/* The record schemas, compiled once; shared read-only by any thread. */
typedef struct fg_records_s  fg_records_t;

/*
 * Compile the schemas embedded in the library.  Returns NULL with err set
 * when they do not compile (a build defect) or memory runs out.
 */
fg_records_t *fg_records_new(fg_error_t *err);
void fg_records_free(fg_records_t *records);

/* A schema by name ("TraceContext", "AuthContext", ...), or NULL. */
const fg_schema_t *fg_records_schema(const fg_records_t *records,
    const char *name);

/* "AuthContext" ... for a type; the type for a name, or -1. */
const char *fg_record_type_name(fg_record_type_t type);
int fg_record_type_from_name(const char *name);


/* ---------------------------------------------------------------- build */

/*
 * A new record of type with the fields every record has.  parent_span_id
 * may be empty (null in the record).  The caller adds the type's own
 * fields.  Returns NULL when out of memory.
 */
json_t *fg_record_new(fg_record_type_t type, const char *tenant_id,
    const char *execution_id, const fg_trace_t *trace);

/* Set field to the RFC 3339 UTC time of (sec, nsec), millisecond precision. */
int fg_record_set_time(json_t *record, const char *field, time_t sec,
    long nsec);

/* Format (sec, nsec) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf. */
int fg_time_format(time_t sec, long nsec, char buf[FG_TIME_MAX]);

/*
 * Parse an RFC 3339 UTC time as the records write them:
 * YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z.  Returns 1 with the instant, or 0.
 */
int fg_time_parse(const char *s, size_t len, time_t *sec, long *nsec);

/*
 * Set field (auth_context_sha256, policy_decision_sha256) to the envelope
 * hash of target: the link from one record to the one it depends on.
 */
int fg_record_link(fg_sha256_t *h, json_t *record, const char *field,
    const json_t *target, fg_error_t *err);


/* ------------------------------------------------------------- validate */

/*
 * Validate a record against the schema its record_type names.  Returns
 * FG_OK, or FG_ERR_INVALID with report filled ("<pointer>: <reason>"
 * lines), FG_ERR_LIMIT when it nests too deep.
 */
int fg_record_validate(const fg_records_t *records, const json_t *record,
    fg_schema_report_t *report);

/* Validate against the named schema whatever record_type says. */
int fg_record_validate_as(const fg_records_t *records, const char *name,
    const json_t *record, fg_schema_report_t *report);

/*
 * Parse a record from outside strictly: the text must be canonicalizable
 * (so no duplicate key, lone surrogate or bad UTF-8 gets in) and at most
 * FG_RECORD_MAX_BYTES.  Integers beyond 64 bits are refused (no record
 * field allows them).  Returns the value, or NULL with err saying what
 * and where.
 */
json_t *fg_record_parse(fg_jcs_t *jcs, const unsigned char *text, size_t len,
    fg_error_t *err);

/*
 * fg_record_parse() that also writes the record's envelope_hash into md:
 * the strict reading already produces the canonical bytes, so hashing
 * them costs no second pass (what the ledger does for every entry).
 */
json_t *fg_record_parse_hashed(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, unsigned char md[FG_SHA256_LEN],
    fg_error_t *err);

/*
 * Read a record that must already be in canonical form (what the ledger
 * stores, and the stream's r): canonicalizing text must give text back
 * (FG_ERR_MISMATCH, err naming the byte, when it does not), it must be an
 * object of at most FG_RECORD_MAX_BYTES, and md gets sha256(text), its
 * envelope_hash.  FG_OK with *value the record, or the error.  Cheaper
 * than fg_record_parse_hashed() and a hash of the raw bytes.
 */
int fg_record_parse_canonical(fg_jcs_t *jcs, const unsigned char *text,
    size_t len, unsigned char md[FG_SHA256_LEN], json_t **value,
    fg_error_t *err);

/*
 * Read text[0..len) strictly (at most max bytes; what names it in the
 * size error: "record", "body") and hash its canonical bytes into md when
 * h is not NULL, counting them into *size (may be NULL), without building
 * a document: the document stays on jcs's tape for fg_jcs_node_*()
 * (fg_call_body_view()).
 */
int fg_record_canon_bounded(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, size_t max, const char *what,
    unsigned char md[FG_SHA256_LEN], uint64_t *size, fg_error_t *err);

/*
 * fg_record_canon_bounded(), then the document as a jansson value built
 * from the tape (fg_jcs_tree_json: what json_loadb() would give, read
 * once): the reading behind fg_record_parse_hashed() and fg_call_body().
 * any 0 wants an object or an array, any 1 takes any JSON value.
 * Returns FG_OK with *value the document, or the error with err set and
 * *value NULL.
 */
int fg_record_parse_bounded(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, size_t max, const char *what,
    int any, unsigned char md[FG_SHA256_LEN], uint64_t *size,
    json_t **value, fg_error_t *err);


/* ----------------------------------------------------------------- hash */

/* envelope_hash of record as 64 lowercase hex digits. */
int fg_record_hash(fg_sha256_t *h, const json_t *record,
    char hex[FG_SHA256_HEX_LEN + 1], fg_error_t *err);

/* ------------------------------------------------------------------ ids */

/* A new UUIDv7 (RFC 9562) for unix_ms, lowercase; FG_ERR_CRYPTO if the
 * random source fails. */
int fg_uuidv7(uint64_t unix_ms, char out[FG_UUID_LEN + 1]);

/* A new random, non-zero trace id (32 hex) or span id (16 hex). */
int fg_trace_id_new(char out[FG_TRACE_ID_LEN + 1]);
int fg_span_id_new(char out[FG_SPAN_ID_LEN + 1]);

#endif /* FG_RECORD_H */

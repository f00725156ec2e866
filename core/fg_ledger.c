/*
 * fg_ledger.c -- the ledger's hash chain and its line format (fg_ledger.h
 * says what each is and what reading a line checks).
 */

#include <stdio.h>
#include <string.h>

#include "fg_ledger.h"
#include "fg_record.h"


int
fg_ledger_genesis(fg_sha256_t *h, const char *tenant_id, size_t len,
    unsigned char chain[FG_SHA256_LEN])
{
    if (!fg_tenant_id_valid(tenant_id, len)) {
        return FG_ERR_INVALID;
    }

    if (fg_sha256_init(h) != FG_OK
        || fg_sha256_update(h, FG_LEDGER_GENESIS_PREFIX,
                            sizeof(FG_LEDGER_GENESIS_PREFIX) - 1) != FG_OK
        || fg_sha256_update(h, tenant_id, len) != FG_OK
        || fg_sha256_final(h, chain) != FG_OK)
    {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


int
fg_ledger_chain(fg_sha256_t *h, const unsigned char prev[FG_SHA256_LEN],
    const unsigned char envelope_hash[FG_SHA256_LEN],
    unsigned char chain[FG_SHA256_LEN])
{
    if (fg_sha256_init(h) != FG_OK
        || fg_sha256_update(h, prev, FG_SHA256_LEN) != FG_OK
        || fg_sha256_update(h, envelope_hash, FG_SHA256_LEN) != FG_OK
        || fg_sha256_final(h, chain) != FG_OK)
    {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


int
fg_ledger_line(uint64_t seq, const unsigned char chain[FG_SHA256_LEN],
    const unsigned char envelope_hash[FG_SHA256_LEN],
    const unsigned char *record, size_t len, fg_buffer_t *out,
    fg_error_t *err)
{
    char    c[FG_SHA256_HEX_LEN + 1], e[FG_SHA256_HEX_LEN + 1], tail[40];
    int     n, rc;
    size_t  start;

    if (seq == 0 || seq > 9007199254740991ULL || record == NULL || len == 0
        || len > FG_RECORD_MAX_BYTES || record[0] != '{')
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "ledger line: not a seq and a record");
    }

    fg_hex_sha256(chain, c);
    fg_hex_sha256(envelope_hash, e);
    n = snprintf(tail, sizeof(tail), ",\"seq\":%llu}\n",
                 (unsigned long long) seq);

    start = out->len;

    /* the members in canonical order: chain, envelope_hash, record, seq */
    rc = fg_buffer_append(out, "{\"chain\":\"", 10);
    rc = rc ? rc : fg_buffer_append(out, c, FG_SHA256_HEX_LEN);
    rc = rc ? rc : fg_buffer_append(out, "\",\"envelope_hash\":\"", 19);
    rc = rc ? rc : fg_buffer_append(out, e, FG_SHA256_HEX_LEN);
    rc = rc ? rc : fg_buffer_append(out, "\",\"record\":", 11);
    rc = rc ? rc : fg_buffer_append(out, record, len);
    rc = rc ? rc : fg_buffer_append(out, tail, (size_t) n);

    if (rc != FG_OK) {
        out->len = start;
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "ledger line: cannot be written: %s",
                            fg_strerror(rc));
    }

    return FG_OK;
}


/* The string member name of the root, 64 hex digits, into md. */
static int
fg_ledger_hex(const fg_jcs_t *jcs, const char *name, const unsigned char *line,
    size_t len, unsigned char md[FG_SHA256_LEN], fg_error_t *err)
{
    uint32_t  n;
    size_t    at;

    n = fg_jcs_node_member(jcs, 0, name, strlen(name));
    at = fg_jcs_node_offset(jcs, n);

    /* the string's text: a quote, 64 digits, a quote, inside the line */
    if (fg_jcs_node_kind(jcs, n) != FG_JCS_STRING
        || at + 2 + FG_SHA256_HEX_LEN > len
        || line[at + 1 + FG_SHA256_HEX_LEN] != '"'
        || fg_unhex_sha256((const char *) line + at + 1, FG_SHA256_HEX_LEN,
                           md) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, n == FG_JCS_NO_NODE ? 0 : at,
                            "ledger line: %s is not 64 lowercase hex digits",
                            name);
    }
    return FG_OK;
}


int
fg_ledger_read(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *line,
    size_t len, fg_ledger_entry_t *e, fg_error_t *err)
{
    int                rc;
    uint32_t           rec, seq;
    size_t             from, to;
    json_t            *v;
    fg_sink_t          sink;
    fg_same_t          same;
    unsigned char      stage[FG_SINK_STAGE], md[FG_SHA256_LEN];

    if (len > FG_LEDGER_LINE_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, 0,
                            "ledger line of %zu bytes is longer than %d",
                            len, FG_LEDGER_LINE_MAX);
    }

    /* canonical: canonicalizing it gives back its own bytes */
    fg_sink_to_same(&sink, &same, line, len, stage, sizeof(stage));

    rc = fg_jcs_canonicalize(jcs, line, len, &sink, err);
    if (rc == FG_ERR_MISMATCH || (rc == FG_OK && same.at != len)) {
        return fg_error_set(err, FG_ERR_INVALID, same.at,
                            "ledger line: not in canonical form (at byte "
                            "%zu)", same.at);
    }
    if (rc != FG_OK) {
        return rc;
    }

    if (fg_jcs_node_kind(jcs, 0) != FG_JCS_OBJECT
        || fg_jcs_node_size(jcs, 0) != 4)
    {
        return fg_error_set(err, FG_ERR_INVALID, 0,
                            "ledger line: not an object of chain, "
                            "envelope_hash, record and seq");
    }

    if ((rc = fg_ledger_hex(jcs, "chain", line, len, e->chain, err)) != FG_OK
        || (rc = fg_ledger_hex(jcs, "envelope_hash", line, len,
                               e->envelope_hash, err)) != FG_OK)
    {
        return rc;
    }

    rec = fg_jcs_node_member(jcs, 0, "record", 6);
    seq = fg_jcs_node_member(jcs, 0, "seq", 3);
    if (fg_jcs_node_kind(jcs, rec) != FG_JCS_OBJECT
        || fg_jcs_node_kind(jcs, seq) != FG_JCS_NUMBER)
    {
        return fg_error_set(err, FG_ERR_INVALID, 0,
                            "ledger line: no record object or no seq "
                            "number");
    }

    v = fg_jcs_node_json(jcs, seq, err);
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > 9007199254740991LL)
    {
        json_decref(v);
        return fg_error_set(err, FG_ERR_INVALID,
                            fg_jcs_node_offset(jcs, seq),
                            "ledger line: seq is not a positive integer");
    }
    e->seq = (uint64_t) json_integer_value(v);
    json_decref(v);

    /* canonical, so the record ends where ',"seq":' begins */
    from = fg_jcs_node_offset(jcs, rec);
    to = fg_jcs_node_offset(jcs, seq) - (sizeof(",\"seq\":") - 1);
    e->record = line + from;
    e->record_len = to - from;

    if (fg_sha256_init(h) != FG_OK
        || fg_sha256_update(h, e->record, e->record_len) != FG_OK
        || fg_sha256_final(h, md) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    if (memcmp(md, e->envelope_hash, FG_SHA256_LEN) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, from,
                            "ledger line: envelope_hash is not the sha256 "
                            "of the record");
    }

    return FG_OK;
}


int
fg_ledger_next(fg_sha256_t *h, uint64_t prev_seq,
    const unsigned char prev_chain[FG_SHA256_LEN],
    const fg_ledger_entry_t *e, fg_error_t *err)
{
    unsigned char  chain[FG_SHA256_LEN];

    if (e->seq != prev_seq + 1) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "seq %llu follows seq %llu",
                            (unsigned long long) e->seq,
                            (unsigned long long) prev_seq);
    }

    if (fg_ledger_chain(h, prev_chain, e->envelope_hash, chain) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    if (memcmp(chain, e->chain, FG_SHA256_LEN) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "seq %llu: chain is not sha256(chain of seq "
                            "%llu || envelope_hash)",
                            (unsigned long long) e->seq,
                            (unsigned long long) prev_seq);
    }

    return FG_OK;
}


/* ------------------------------------------------------------- checks */

static const char  *fg_ledger_fault_names[FG_LEDGER_FAULTS] = {
    "ok",
    "malformed",
    "hash_mismatch",
    "missing_trace",
    "schema_violation",
    "type_mismatch",
    "tenant_mismatch",
    "orphan",
};


const char *
fg_ledger_fault_name(fg_ledger_fault_t fault)
{
    return (unsigned) fault < FG_LEDGER_FAULTS
           ? fg_ledger_fault_names[fault] : "unknown";
}


fg_ledger_fault_t
fg_ledger_check(const fg_records_t *records, const json_t *record,
    const char *tenant, fg_ledger_facts_t *facts, fg_error_t *err)
{
    int                  type;
    const char          *field, *hex, *t;
    const json_t        *trace, *id;
    fg_schema_report_t   report;

    memset(facts, 0, sizeof(*facts));

    /* the trace first: a record without one is refused as such (DESIGN.md
     * "Trace context"), whatever else is wrong with it */
    trace = json_object_get(record, "trace");
    id = json_object_get(trace, "trace_id");
    if (!json_is_object(trace) || !json_is_string(id)) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "the record has no trace.trace_id");
        return FG_LEDGER_MISSING_TRACE;
    }

    if (fg_record_validate(records, record, &report) != FG_OK) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s",
                     report.count ? report.line[0] : "not schema-valid");
        return FG_LEDGER_SCHEMA;
    }

    /* schema-valid: record_type, tenant_id and the links are there */
    t = json_string_value(json_object_get(record, "tenant_id"));
    if (tenant != NULL && strcmp(t, tenant) != 0) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "a record of tenant %s, not %s", t, tenant);
        return FG_LEDGER_TENANT_MISMATCH;
    }

    type = fg_record_type_from_name(json_string_value(
               json_object_get(record, "record_type")));
    if (type < 0) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "unknown record_type");
        return FG_LEDGER_SCHEMA;
    }
    facts->type = (fg_record_type_t) type;

    if (type == FG_RECORD_POLICY_DECISION) {
        field = "auth_context_sha256";
        facts->link_type = FG_RECORD_AUTH_CONTEXT;
    } else if (type == FG_RECORD_MODEL_CALL || type == FG_RECORD_TOOL_CALL) {
        field = "policy_decision_sha256";
        facts->link_type = FG_RECORD_POLICY_DECISION;
    } else {
        return FG_LEDGER_OK;
    }

    hex = json_string_value(json_object_get(record, field));
    if (hex == NULL
        || fg_unhex_sha256(hex, strlen(hex), facts->link) != FG_OK)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "%s is not a sha256", field);
        return FG_LEDGER_SCHEMA;
    }
    facts->has_link = 1;

    return FG_LEDGER_OK;
}


fg_ledger_fault_t
fg_ledger_link_ok(const fg_ledger_facts_t *facts, int found_type,
    fg_error_t *err)
{
    if (!facts->has_link || found_type == (int) facts->link_type) {
        return FG_LEDGER_OK;
    }

    fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                 facts->link_type == FG_RECORD_AUTH_CONTEXT
                 ? "its auth_context_sha256 names no AuthContext before it"
                 : "its policy_decision_sha256 names no "
                   "PolicyDecisionRecord before it");
    return FG_LEDGER_ORPHAN;
}

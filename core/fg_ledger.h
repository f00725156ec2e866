/*
 * fg_ledger.h -- the ledger's hash chain and its line format (DESIGN.md
 * "Ledger"): what foxgov-ledgerd appends and what `foxgov verify` checks.
 *
 * A tenant's ledger is a sequence of entries, seq 1, 2, 3, ... without a
 * gap, each holding one record, its envelope_hash and the chain value
 *
 *     chain_0 = sha256("foxgov-ledger-v1:" || tenant_id)     (genesis)
 *     chain_n = sha256(chain_{n-1} || envelope_hash_n)
 *
 * over the raw 32-byte values.  In the file backend an entry is one line,
 * itself in canonical (RFC 8785) form, so the line is its own proof that
 * nothing was added or reordered inside it:
 *
 *     {"chain":"<64 hex>","envelope_hash":"<64 hex>","record":{...},"seq":N}
 *
 * and the record's canonical bytes are exactly the "record" member's text
 * in the line.  Reading a line trusts nothing: it must be canonical JSON
 * with exactly those four members, seq a positive integer, the hashes 64
 * lowercase hex digits, and envelope_hash the sha256 of the record's
 * bytes; whether chain and seq follow the entry before is the caller's
 * check (fg_ledger_next()).
 */

#ifndef FG_LEDGER_H
#define FG_LEDGER_H

#include <stdint.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_record.h"
#include "fg_schema.h"

#define FG_LEDGER_GENESIS_PREFIX  "foxgov-ledger-v1:"

/* The longest line: a record of FG_RECORD_MAX_BYTES and the framing. */
#define FG_LEDGER_LINE_MAX        (FG_RECORD_MAX_BYTES + 256)

/* One entry as read from a line; record points into the line. */
typedef struct {
    uint64_t              seq;
    unsigned char         chain[FG_SHA256_LEN];
    unsigned char         envelope_hash[FG_SHA256_LEN];
    const unsigned char  *record;
    size_t                record_len;
} fg_ledger_entry_t;

/* chain_0 of a tenant (the id must be valid: fg_tenant_id_valid()). */
int fg_ledger_genesis(fg_sha256_t *h, const char *tenant_id, size_t len,
    unsigned char chain[FG_SHA256_LEN]);

/* chain_n from chain_{n-1} and envelope_hash_n. */
int fg_ledger_chain(fg_sha256_t *h, const unsigned char prev[FG_SHA256_LEN],
    const unsigned char envelope_hash[FG_SHA256_LEN],
    unsigned char chain[FG_SHA256_LEN]);

/*
 * Append the line of an entry (with its "\n") to out: the record is its
 * canonical bytes record[0..len), as the gateway sent them.
 */
int fg_ledger_line(uint64_t seq, const unsigned char chain[FG_SHA256_LEN],
    const unsigned char envelope_hash[FG_SHA256_LEN],
    const unsigned char *record, size_t len, fg_buffer_t *out,
    fg_error_t *err);

/*
 * Read one line line[0..len) (without its "\n") into *e, checking all the
 * header says.  Returns FG_OK, or FG_ERR_SYNTAX / FG_ERR_INVALID /
 * FG_ERR_LIMIT with err saying what and at which byte.
 */
int fg_ledger_read(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *line,
    size_t len, fg_ledger_entry_t *e, fg_error_t *err);

/*
 * Check that e follows the entry before it: seq is prev_seq + 1 and chain
 * is fg_ledger_chain(prev_chain, e->envelope_hash).  FG_ERR_INVALID with
 * err saying which does not hold.
 */
int fg_ledger_next(fg_sha256_t *h, uint64_t prev_seq,
    const unsigned char prev_chain[FG_SHA256_LEN],
    const fg_ledger_entry_t *e, fg_error_t *err);


/* ------------------------------------------------------------- checks */

/*
 * Why a record may not enter a tenant's ledger.  The names are the
 * reasons foxgov-ledgerd gives in foxgov:dlq and foxgov verify prints.
 */
typedef enum {
    FG_LEDGER_OK = 0,
    FG_LEDGER_MALFORMED,        /* not strictly readable JSON (canonical) */
    FG_LEDGER_HASH_MISMATCH,    /* h is not the sha256 of r */
    FG_LEDGER_MISSING_TRACE,    /* no trace.trace_id */
    FG_LEDGER_SCHEMA,           /* not valid against its schema */
    FG_LEDGER_TYPE_MISMATCH,    /* t is not the record's record_type */
    FG_LEDGER_TENANT_MISMATCH,  /* of another tenant than the ledger's */
    FG_LEDGER_ORPHAN,           /* its link names nothing before it */
    FG_LEDGER_FAULTS
} fg_ledger_fault_t;

/* "malformed", "hash_mismatch", ... for a fault. */
const char *fg_ledger_fault_name(fg_ledger_fault_t fault);

/* What a checked record is and what must come before it. */
typedef struct {
    fg_record_type_t  type;
    int               has_link;     /* a decision or a call record */
    fg_record_type_t  link_type;    /* the type the link must name */
    unsigned char     link[FG_SHA256_LEN];
} fg_ledger_facts_t;

/*
 * Check a record read strictly (fg_record_parse) for tenant's ledger: it
 * has trace.trace_id, is valid against its schema, and is of tenant; and
 * say in *facts its type and the record it links to (auth_context_sha256
 * of a decision, policy_decision_sha256 of a call record), whose presence
 * before it is the caller's to check against what it holds
 * (fg_ledger_link_ok).  Returns FG_LEDGER_OK, or the fault with err
 * saying what (the first schema error for FG_LEDGER_SCHEMA).
 */
fg_ledger_fault_t fg_ledger_check(const fg_records_t *records,
    const json_t *record, const char *tenant, fg_ledger_facts_t *facts,
    fg_error_t *err);

/*
 * FG_LEDGER_OK when facts' link is satisfied by a record of type
 * found_type (-1: none found), else FG_LEDGER_ORPHAN with err saying so.
 */
fg_ledger_fault_t fg_ledger_link_ok(const fg_ledger_facts_t *facts,
    int found_type, fg_error_t *err);

#endif /* FG_LEDGER_H */

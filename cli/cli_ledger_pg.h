/*
 * cli_ledger_pg.h -- private to the ledger reader (cli_ledger.c) and its
 * backends: the source a fg_cli_ledger_t reads entries from, and the
 * PostgreSQL backend's entry point (cli_ledger_pg.c).
 *
 * A source only hands over rows: seq, chain, envelope_hash and the
 * record's bytes, as stored.  Every check (hash, seq, chain, the record
 * strict, schema-valid and the tenant's, duplicates, links) is the
 * reader's, in cli_ledger.c, the same for every backend.
 */

#ifndef FG_CLI_LEDGER_PG_H
#define FG_CLI_LEDGER_PG_H

#include "cli_ledger.h"

typedef struct {
    /*
     * The next row into *row (its record bytes stay the source's until
     * the next call) and its line (0 when rows have none): 1, 0 at the
     * end, or -1 with err set.  err->code FG_ERR_IO or FG_ERR_NOMEM: the
     * ledger could not be read (a connection lost, a query failed);
     * any other code: a finding about the row after the last one
     * returned, whose own seq could not be read.
     */
    int   (*next)(void *ctx, fg_ledger_entry_t *row, uint64_t *line,
                  fg_error_t *err);

    /*
     * May be NULL: the source keeps no checkpoints.  Otherwise hands
     * each signed checkpoint note kept beside the ledger to each (see
     * fg_cli_ledger_checkpoints() in cli_ledger.h); called before the
     * first row is read.  Returns FG_OK, what each returned, or
     * FG_ERR_IO with err.
     */
    int   (*checkpoints)(void *ctx, fg_cli_ledger_note_f each, void *arg,
                         fg_error_t *err);

    /* Release ctx (the connection, the result); called once. */
    void  (*close)(void *ctx);

    /*
     * 1 when the source has itself checked that each row's record bytes
     * are canonical and that envelope_hash is their sha256 (a file line
     * read with fg_ledger_read()); 0 and the reader checks both (rows of
     * a table).
     */
    int     record_checked;

    /*
     * May be NULL.  The record of the row next() just returned, as a new
     * jansson value built from what next() already read (a file line's
     * canonicalizer tape), so the reader does not read the record's bytes
     * a second time; NULL with err set on error.
     */
    json_t *(*record)(void *ctx, fg_error_t *err);
} fg_cli_ledger_source_t;

/*
 * A reader over rows from src (copied) and ctx, for tenant (required
 * when rows carry no line, as for a table; may be NULL for a source whose
 * first record names it).  name is the ledger's name in messages, copied
 * (may be NULL; fg_cli_ledger_open() names a PostgreSQL ledger by its
 * URI less the password, whatever is given here).  On failure ctx is
 * closed with src->close and NULL returned with err set (FG_ERR_NOMEM,
 * or FG_ERR_INVALID for a tenant that is not a tenant id).
 */
fg_cli_ledger_t *fg_cli_ledger_new(const fg_cli_ledger_source_t *src,
    void *ctx, const char *tenant, const char *name, fg_error_t *err);

/*
 * The PostgreSQL backend: returns an fg_cli_ledger_t * reading the
 * tenant's rows ordered by seq, or NULL with err.  uri is a
 * "postgresql://" or "postgres://" URI; tenant is required.
 */
fg_cli_ledger_t *fg_cli_ledger_pg_open(const char *uri, const char *tenant,
    fg_error_t *err);

#endif /* FG_CLI_LEDGER_PG_H */

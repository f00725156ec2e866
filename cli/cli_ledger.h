/*
 * cli_ledger.h -- reading one tenant's ledger, entry by entry, checking
 * everything as it goes: what `foxgov verify`, `export`, `replay` and
 * `report` read.  A ledger is a file (docs/ledger.md, one canonical line
 * an entry) or a PostgreSQL database (a "postgresql://" or "postgres://"
 * URI; the tenant must then be given).
 *
 * Every entry returned has passed every check `foxgov verify` makes of
 * it and of what came before it: its line canonical (file), its
 * envelope_hash the sha256 of its record's bytes, seq one more than the
 * entry before (from 1), chain the chain of the entry before with this
 * envelope_hash (from the tenant's genesis), the record read strictly,
 * schema-valid and of the tenant (fg_ledger_check), no envelope_hash twice,
 * and its link naming a record of the right type before it.  So a command
 * that reads a ledger through this never reports on evidence that does not
 * verify: the first entry that fails stops the reading with its seq, its
 * line and why.
 *
 * A file is read in chunks, a few batches of lines ahead of the entry
 * returned, each line at most FG_LEDGER_LINE_MAX bytes; a last line
 * without its "\n" is a torn append, a finding.  What can be checked of
 * a line alone (its form and hash, its record's schema and tenant) is
 * checked on two threads; the rest in order, so the entry reported is
 * still the first that fails.  Backends supply rows through the source
 * of cli_ledger_pg.h; the checks are all here, in cli_ledger.c.
 */

#ifndef FG_CLI_LEDGER_H
#define FG_CLI_LEDGER_H

#include <stdint.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_ledger.h"
#include "fg_record.h"

typedef struct fg_cli_ledger_s  fg_cli_ledger_t;

/*
 * One entry as read and checked; valid until the next call (record and
 * value belong to the reader: for a file, to its batch of lines read
 * ahead; json_incref() value to keep it longer).
 */
typedef struct {
    uint64_t               seq;
    uint64_t               line;        /* the file's line; 0 for a table */
    unsigned char          chain[FG_SHA256_LEN];
    unsigned char          envelope_hash[FG_SHA256_LEN];
    const unsigned char   *record;      /* its canonical bytes */
    size_t                 record_len;
    json_t                *value;       /* the record, parsed (borrowed) */
    fg_record_type_t       type;
} fg_cli_ledger_entry_t;

/*
 * Open the ledger src (a file path, or a PostgreSQL URI) of tenant (NULL:
 * for a file, the first record's tenant; required for PostgreSQL).
 * Returns NULL with err set (code FG_ERR_IO for what cannot be opened,
 * read or connected to, FG_ERR_INVALID for a tenant that is not a tenant
 * id, FG_ERR_NOMEM).
 */
fg_cli_ledger_t *fg_cli_ledger_open(const char *src, const char *tenant,
    fg_error_t *err);

/*
 * The next entry into *e: 1, 0 at the end of the ledger, or -1 when an
 * entry fails a check or cannot be read, with err saying why and
 * fg_cli_ledger_where() naming the place.  err->code is FG_ERR_IO (or
 * FG_ERR_NOMEM) when the ledger could not be read: not a finding about
 * the ledger.  After -1 every call returns -1 again.
 */
int fg_cli_ledger_next(fg_cli_ledger_t *l, fg_cli_ledger_entry_t *e,
    fg_error_t *err);

/*
 * Where the reading is: the seq of the entry just read (or of the one
 * that failed: the seq it should have had when its own cannot be read)
 * and its line (0 for a table).
 */
void fg_cli_ledger_where(const fg_cli_ledger_t *l, uint64_t *seq,
    uint64_t *line);

/*
 * Say on stderr, for command cmd, why fg_cli_ledger_next() stopped: a
 * finding about the ledger ("LEDGER: seq N (line L): why") is
 * FG_EXIT_REFUSED; a ledger that could not be read, or memory running
 * out, FG_EXIT_USAGE.  Returns that exit status.
 */
int fg_cli_ledger_stopped(const char *cmd, const fg_cli_ledger_t *l,
    const fg_error_t *err);

/* The tenant (known once the first entry is read, or given), or NULL. */
const char *fg_cli_ledger_tenant(const fg_cli_ledger_t *l);

/* The last entry's seq and chain (0 and the genesis before any). */
uint64_t fg_cli_ledger_head(const fg_cli_ledger_t *l,
    unsigned char chain[FG_SHA256_LEN]);

/* The type of an envelope hash read so far, or -1. */
int fg_cli_ledger_type_of(const fg_cli_ledger_t *l,
    const unsigned char md[FG_SHA256_LEN]);

/*
 * The ledger's name for messages: the file's path, or the URI with its
 * password left out.
 */
const char *fg_cli_ledger_name(const fg_cli_ledger_t *l);

/*
 * src (a path or URI, as given to fg_cli_ledger_open) as it may be shown
 * in a message: a URI's password (user:PASSWORD@, password=) left out.
 * Returns a malloc'd string (free it), or NULL when out of memory.
 */
char *fg_cli_ledger_redact(const char *src);

/*
 * A signed checkpoint note (docs/ledger.md, "Checkpoints") handed over by
 * fg_cli_ledger_checkpoints(); name names it in messages.  Returns FG_OK
 * to go on, or an error (err set) that stops the walk.
 */
typedef int (*fg_cli_ledger_note_f)(void *arg, const char *name,
    const unsigned char *note, size_t len, fg_error_t *err);

/*
 * Hand each checkpoint note the ledger's backend keeps beside the ledger
 * to each, before the first entry is read (a checkpoint seen first is
 * never of a later head than the ledger read after it).  A file ledger
 * keeps none here: its checkpoints are files in a directory (foxgov
 * verify --checkpoints DIR).  Returns FG_OK (also when there are none),
 * what each returned, or FG_ERR_IO with err.
 */
int fg_cli_ledger_checkpoints(fg_cli_ledger_t *l, fg_cli_ledger_note_f each,
    void *arg, fg_error_t *err);

/* Release the reader (NULL is fine). */
void fg_cli_ledger_close(fg_cli_ledger_t *l);

#endif /* FG_CLI_LEDGER_H */

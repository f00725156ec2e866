/*
 * cli_checkpoints.h -- the signed checkpoints a command checks a ledger
 * against (docs/ledger.md, "Checkpoints"): the files of a directory
 * (DIR/<seq>.checkpoint, as foxgov-ledgerd and foxgov checkpoint write
 * them) or the notes a PostgreSQL ledger keeps (fg_cli_ledger_checkpoints),
 * each read strictly, verified against trusted keys when there are some,
 * and kept with its bytes.  Read by foxgov verify and foxgov export.
 */

#ifndef FG_CLI_CHECKPOINTS_H
#define FG_CLI_CHECKPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "fg_checkpoint.h"
#include "fg_core.h"
#include "fg_jose.h"

/* The most checkpoints one command holds. */
#define FG_CLI_CHECKPOINTS_MAX  (1u << 20)

/* One checkpoint as read. */
typedef struct {
    uint64_t        size;
    unsigned char   hash[FG_SHA256_LEN];
    char            tenant[FG_TENANT_ID_MAX + 1];
    char           *name;           /* its file (or row), for messages */
    unsigned char  *note;           /* the signed note's bytes */
    size_t          note_len;
} fg_cli_cp_t;

typedef struct {
    fg_cli_cp_t        *v;
    size_t              n;
    size_t              cap;
    const fg_keyset_t  *trusted;    /* NULL: read, not verified */
} fg_cli_cps_t;

/*
 * Keep one note named name (an fg_cli_ledger_note_f): it must read and,
 * with cps->trusted, carry a good signature of a trusted key.  A note that
 * fails is a finding: FG_ERR_INVALID (FG_ERR_LIMIT past
 * FG_CLI_CHECKPOINTS_MAX) with err naming it and its seq when it has one.
 */
int fg_cli_cps_add(void *cps, const char *name, const unsigned char *note,
    size_t len, fg_error_t *err);

/*
 * Keep every DIR/<name>.checkpoint: a regular file of at most
 * FG_CHECKPOINT_NOTE_MAX bytes, kept as fg_cli_cps_add() does, and named
 * for its seq.  FG_ERR_IO when the directory or a file cannot be read;
 * a finding as fg_cli_cps_add().
 */
int fg_cli_cps_read_dir(fg_cli_cps_t *cps, const char *dir,
    fg_error_t *err);

/* Sort by seq (size), the order a ledger is read in. */
void fg_cli_cps_sort(fg_cli_cps_t *cps);

void fg_cli_cps_free(fg_cli_cps_t *cps);

#endif /* FG_CLI_CHECKPOINTS_H */

/*
 * cli_ledger_pg.c -- PLACEHOLDER for the PostgreSQL ledger backend of the
 * ledger reader (cli_ledger_pg.h).  It is being written separately and
 * replaces this file; until then a "postgresql://" ledger is refused.
 */

#include "cli_ledger_pg.h"


/* Placeholder: always NULL, err saying the backend is not built yet. */
fg_cli_ledger_t *
fg_cli_ledger_pg_open(const char *uri, const char *tenant, fg_error_t *err)
{
    (void) uri;
    (void) tenant;

    fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                 "PostgreSQL ledgers: not built yet");
    return NULL;
}

/*
 * ld_backend.c -- the backend a --ledger value names (ld_backend.h).
 */

#include <string.h>

#include "ld_backend.h"


ld_backend_t *
ld_backend_open(const char *spec, fg_error_t *err)
{
    if (strncmp(spec, "file:", 5) == 0) {
        if (spec[5] == '\0') {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "--ledger file: needs a directory (file:DIR)");
            return NULL;
        }
        return ld_file_open(spec + 5, err);
    }

    if (strncmp(spec, "postgresql://", 13) == 0
        || strncmp(spec, "postgres://", 11) == 0)
    {
        return ld_pg_open(spec, err);
    }

    fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                 "--ledger must be file:DIR or a postgresql:// URI");
    return NULL;
}

/*
 * ld_backend.h -- where foxgov-ledgerd appends a tenant's records: the
 * file backend (ld_file.c, "file:DIR") or PostgreSQL (ld_pg.c,
 * "postgresql://...").  The daemon (ld_ledgerd.c) reads and checks the
 * stream entries; a backend only keeps the chain: it appends what it is
 * given, in order, durably, each envelope_hash at most once per tenant.
 */

#ifndef LD_BACKEND_H
#define LD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_record.h"

/* One record to append, and what became of it. */
typedef struct {
    /* in: a record the daemon checked (hash, schema, tenant, links) */
    fg_record_type_t       type;
    unsigned char          envelope_hash[FG_SHA256_LEN];
    const unsigned char   *record;          /* canonical bytes (the r) */
    size_t                 record_len;
    const char            *trace_id;        /* 32 hex, NUL-ended */
    const char            *execution_id;    /* NUL-ended */

    /* out */
    int                    duplicate;       /* there already: not appended */
    uint64_t               seq;             /* when appended */
    unsigned char          chain[FG_SHA256_LEN];
} ld_append_t;

typedef struct ld_backend_s  ld_backend_t;

typedef struct {
    const char  *name;                      /* "file", "postgresql" */

    /*
     * The record type of envelope hash md in tenant's ledger into *type
     * (-1: not there).  FG_OK, or an error with err set (the backend
     * cannot be asked now: the daemon retries the batch later).
     */
    int   (*lookup)(ld_backend_t *b, const char *tenant,
                    const unsigned char md[FG_SHA256_LEN], int *type,
                    fg_error_t *err);

    /*
     * Append e[0..n) to tenant's ledger in this order, skipping (and
     * marking duplicate) each whose envelope_hash the ledger holds
     * already; fill seq and chain of each appended.  Durable when it
     * returns FG_OK (file: written and fsynced, with its directory when
     * the file is new; PostgreSQL: committed).  All or nothing: on error
     * none of the batch is in the ledger and err says why.  The tenant id
     * is valid (fg_tenant_id_valid) and no envelope_hash occurs twice in
     * e (the daemon drops repeats within a batch).
     */
    int   (*append)(ld_backend_t *b, const char *tenant, ld_append_t *e,
                    size_t n, fg_error_t *err);

    /*
     * Keep a signed checkpoint (a C2SP tlog-checkpoint signed note,
     * note[0..len)) of tenant's ledger at seq, outside the ledger itself.
     */
    int   (*checkpoint)(ld_backend_t *b, const char *tenant, uint64_t seq,
                        const char *note, size_t len, fg_error_t *err);

    void  (*close)(ld_backend_t *b);
} ld_backend_ops_t;

/* Every backend's state starts with this. */
struct ld_backend_s {
    const ld_backend_ops_t  *ops;
};

/*
 * Open the backend a --ledger value names: "file:DIR" or a
 * "postgresql://" / "postgres://" URI.  NULL with err set.
 */
ld_backend_t *ld_backend_open(const char *spec, fg_error_t *err);

ld_backend_t *ld_file_open(const char *dir, fg_error_t *err);
ld_backend_t *ld_pg_open(const char *uri, fg_error_t *err);

#endif /* LD_BACKEND_H */

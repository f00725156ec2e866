/*
 * cli_ledger_pg.c -- the PostgreSQL source of the ledger reader
 * (cli_ledger_pg.h): one tenant's rows of foxgov.ledger (docs/ledger.md,
 * "PostgreSQL backend"), in seq order, and its signed checkpoints from
 * foxgov.checkpoint.
 *
 * Everything is read in one REPEATABLE READ READ ONLY transaction, so the
 * head, the checkpoints and the rows are of one moment while
 * foxgov-ledgerd goes on appending.  Rows are streamed in single-row mode
 * (only the current row is in memory, however long the ledger), in binary,
 * and handed over as they are: every check is the reader's (cli_ledger.c).
 * Only the form of each field is checked here (present, of its type and
 * length), since the database is as untrusted as a file; and at the end,
 * that the last row is the tenant's foxgov.head, so rows deleted from the
 * tail are found too.
 */

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli_ledger_pg.h"


#define FG_PG_NOTE_MAX  65536
#define FG_PG_SEQ_MAX   9007199254740991ULL


typedef struct {
    PGconn         *conn;
    PGresult       *row;            /* the row handed over last */
    char            tenant[FG_TENANT_ID_MAX + 1];
    int             sent;           /* the rows' query is running */
    int             done;

    int             has_head;
    uint64_t        head_seq;
    unsigned char   head_chain[FG_SHA256_LEN];

    uint64_t        last_seq;       /* the last row handed over */
    unsigned char   last_chain[FG_SHA256_LEN];
} fg_cli_ledger_pg_t;


/* FG_ERR_IO with what failed and the server's (or libpq's) reason. */
static int
fg_cli_ledger_pg_fail(fg_cli_ledger_pg_t *pg, const PGresult *res,
    const char *what, fg_error_t *err)
{
    const char  *msg;
    char         text[FG_ERRMSG_MAX];

    msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                      : NULL;
    if (msg == NULL) {
        msg = PQerrorMessage(pg->conn);
    }

    fg_one_line(msg, text, sizeof(text));
    return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "PostgreSQL: %s: %s",
                        what, text);
}


/* Column col of a binary row: not null, exactly len bytes, into out. */
static int
fg_cli_ledger_pg_bytes(const PGresult *res, int col, unsigned char *out,
    size_t len)
{
    if (PQgetisnull(res, 0, col) || PQfformat(res, col) != 1
        || PQgetlength(res, 0, col) != (int) len)
    {
        return FG_ERR_INVALID;
    }
    memcpy(out, PQgetvalue(res, 0, col), len);
    return FG_OK;
}


/* A bigint column of a binary row, 0 .. FG_PG_SEQ_MAX. */
static int
fg_cli_ledger_pg_seq(const PGresult *res, int col, uint64_t *v)
{
    unsigned char  b[8];
    int            i;

    if (fg_cli_ledger_pg_bytes(res, col, b, 8) != FG_OK) {
        return FG_ERR_INVALID;
    }

    *v = 0;
    for (i = 0; i < 8; i++) {
        *v = (*v << 8) | b[i];
    }
    return *v <= FG_PG_SEQ_MAX ? FG_OK : FG_ERR_INVALID;
}


/*
 * Send a query for the tenant's rows of a table in single-row mode,
 * binary results.  FG_OK or FG_ERR_IO.
 */
static int
fg_cli_ledger_pg_send(fg_cli_ledger_pg_t *pg, const char *sql,
    const char *what, fg_error_t *err)
{
    const char  *val[1];
    int          len[1], fmt[1];

    val[0] = pg->tenant;
    len[0] = (int) strlen(pg->tenant);
    fmt[0] = 0;

    if (!PQsendQueryParams(pg->conn, sql, 1, NULL, val, len, fmt, 1)
        || !PQsetSingleRowMode(pg->conn))
    {
        return fg_cli_ledger_pg_fail(pg, NULL, what, err);
    }
    return FG_OK;
}


/* Read what is left of a running query, so the connection is free. */
static void
fg_cli_ledger_pg_drain(fg_cli_ledger_pg_t *pg)
{
    PGresult  *res;

    while ((res = PQgetResult(pg->conn)) != NULL) {
        PQclear(res);
    }
}


/* ---------------------------------------------------------------- rows */

static int
fg_cli_ledger_pg_end(fg_cli_ledger_pg_t *pg, fg_error_t *err)
{
    pg->done = 1;

    if (!pg->has_head) {
        if (pg->last_seq == 0) {
            return 0;
        }
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "foxgov.head has no row for this tenant, "
                            "whose ledger ends at seq %llu",
                            (unsigned long long) pg->last_seq);
    }

    if (pg->head_seq != pg->last_seq) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the ledger ends at seq %llu but foxgov.head "
                            "is at seq %llu",
                            (unsigned long long) pg->last_seq,
                            (unsigned long long) pg->head_seq);
    }

    if (pg->last_seq > 0
        && memcmp(pg->head_chain, pg->last_chain, FG_SHA256_LEN) != 0)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the chain of seq %llu is not the chain of "
                            "foxgov.head",
                            (unsigned long long) pg->last_seq);
    }

    return 0;
}


static int
fg_cli_ledger_pg_next(void *ctx, fg_ledger_entry_t *row, uint64_t *line,
    fg_error_t *err)
{
    fg_cli_ledger_pg_t  *pg = ctx;
    PGresult            *res;
    int                  len, rc;

    *line = 0;

    PQclear(pg->row);
    pg->row = NULL;

    if (pg->done) {
        return 0;
    }

    if (!pg->sent) {
        if (fg_cli_ledger_pg_send(pg,
                "SELECT seq, chain, envelope_hash, record"
                " FROM foxgov.ledger WHERE tenant_id = $1 ORDER BY seq",
                "reading foxgov.ledger", err) != FG_OK)
        {
            return -1;
        }
        pg->sent = 1;
    }

    res = PQgetResult(pg->conn);

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        /* the end: a result without rows, then none */
        PQclear(res);
        fg_cli_ledger_pg_drain(pg);
        rc = fg_cli_ledger_pg_end(pg, err);
        return rc == 0 ? 0 : -1;
    }

    if (PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
        rc = fg_cli_ledger_pg_fail(pg, res, "reading foxgov.ledger", err);
        PQclear(res);
        fg_cli_ledger_pg_drain(pg);
        pg->done = 1;
        return -1;
    }

    pg->row = res;

    if (PQnfields(res) != 4 || PQntuples(res) != 1) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                     "PostgreSQL: a row of foxgov.ledger not as asked");
        return -1;
    }

    if (fg_cli_ledger_pg_seq(res, 0, &row->seq) != FG_OK
        || row->seq == 0)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "a row whose seq is not an integer from 1 to 2^53-1");
        return -1;
    }

    if (fg_cli_ledger_pg_bytes(res, 1, row->chain, FG_SHA256_LEN) != FG_OK
        || fg_cli_ledger_pg_bytes(res, 2, row->envelope_hash, FG_SHA256_LEN)
           != FG_OK)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "chain and envelope_hash must be 32 bytes");
        return -1;
    }

    len = PQgetlength(res, 0, 3);
    if (PQgetisnull(res, 0, 3) || PQfformat(res, 3) != 1 || len <= 0
        || len > FG_RECORD_MAX_BYTES)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "the record must be 1 to %d bytes", FG_RECORD_MAX_BYTES);
        return -1;
    }

    row->record = (const unsigned char *) PQgetvalue(res, 0, 3);
    row->record_len = (size_t) len;

    pg->last_seq = row->seq;
    memcpy(pg->last_chain, row->chain, FG_SHA256_LEN);

    return 1;
}


/* --------------------------------------------------------- checkpoints */

static int
fg_cli_ledger_pg_checkpoints(void *ctx, fg_cli_ledger_note_f each,
    void *arg, fg_error_t *err)
{
    fg_cli_ledger_pg_t  *pg = ctx;
    PGresult            *res;
    uint64_t             seq;
    char                 name[64];
    int                  len, rc;

    if (pg->sent) {
        return fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                            "checkpoints are read before the rows");
    }

    if (fg_cli_ledger_pg_send(pg,
            "SELECT seq, note FROM foxgov.checkpoint"
            " WHERE tenant_id = $1 ORDER BY seq",
            "reading foxgov.checkpoint", err) != FG_OK)
    {
        return FG_ERR_IO;
    }

    rc = FG_OK;

    while ((res = PQgetResult(pg->conn)) != NULL) {

        if (rc != FG_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            continue;
        }

        if (PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
            rc = fg_cli_ledger_pg_fail(pg, res, "reading foxgov.checkpoint",
                                       err);
            PQclear(res);
            continue;
        }

        len = PQgetlength(res, 0, 1);
        if (PQnfields(res) != 2 || PQntuples(res) != 1
            || fg_cli_ledger_pg_seq(res, 0, &seq) != FG_OK
            || PQgetisnull(res, 0, 1) || PQfformat(res, 1) != 1
            || len <= 0 || len > FG_PG_NOTE_MAX)
        {
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "foxgov.checkpoint holds a malformed row");
            PQclear(res);
            continue;
        }

        snprintf(name, sizeof(name), "foxgov.checkpoint seq %llu",
                 (unsigned long long) seq);

        rc = each(arg, name, (const unsigned char *) PQgetvalue(res, 0, 1),
                  (size_t) len, err);
        PQclear(res);
    }

    return rc;
}


/* ---------------------------------------------------------- open, close */

static void
fg_cli_ledger_pg_close(void *ctx)
{
    fg_cli_ledger_pg_t  *pg = ctx;

    if (pg == NULL) {
        return;
    }
    PQclear(pg->row);
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
    }
    free(pg);
}


static const fg_cli_ledger_source_t  fg_cli_ledger_pg_source = {
    fg_cli_ledger_pg_next,
    fg_cli_ledger_pg_checkpoints,
    fg_cli_ledger_pg_close,
    0,                          /* the reader hashes each record */
    NULL                        /* and reads it from the row's bytes */
};


/* Begin the snapshot and read the tenant's head in it. */
static int
fg_cli_ledger_pg_begin(fg_cli_ledger_pg_t *pg, fg_error_t *err)
{
    const char  *val[1];
    int          len[1], rc;
    PGresult    *res;

    res = PQexec(pg->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = fg_cli_ledger_pg_fail(pg, res, "BEGIN", err);
        PQclear(res);
        return rc;
    }
    PQclear(res);

    val[0] = pg->tenant;
    len[0] = (int) strlen(pg->tenant);

    res = PQexecParams(pg->conn,
                       "SELECT seq, chain FROM foxgov.head"
                       " WHERE tenant_id = $1",
                       1, NULL, val, len, NULL, 1);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = fg_cli_ledger_pg_fail(pg, res, "reading foxgov.head", err);
        PQclear(res);
        return rc;
    }

    rc = FG_OK;

    if (PQntuples(res) == 1) {
        if (PQnfields(res) != 2
            || fg_cli_ledger_pg_seq(res, 0, &pg->head_seq) != FG_OK
            || fg_cli_ledger_pg_bytes(res, 1, pg->head_chain, FG_SHA256_LEN)
               != FG_OK)
        {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                              "PostgreSQL: the tenant's foxgov.head row is "
                              "malformed");
        }
        pg->has_head = 1;

    } else if (PQntuples(res) != 0) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "PostgreSQL: foxgov.head has several rows for "
                          "the tenant");
    }

    PQclear(res);
    return rc;
}


fg_cli_ledger_t *
fg_cli_ledger_pg_open(const char *uri, const char *tenant, fg_error_t *err)
{
    static const char *const  keys[] = {
        "connect_timeout", "fallback_application_name", "dbname",
        "client_encoding", NULL
    };
    const char          *vals[5];
    char                 text[FG_ERRMSG_MAX];
    fg_cli_ledger_pg_t  *pg;

    if (tenant == NULL || !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "a PostgreSQL ledger needs a valid tenant id");
        return NULL;
    }

    pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }
    strcpy(pg->tenant, tenant);

    /* the URI may set a connect_timeout of its own; not the encoding */
    vals[0] = "10";
    vals[1] = "foxgov";
    vals[2] = uri;
    vals[3] = "UTF8";
    vals[4] = NULL;

    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (pg->conn == NULL) {
        free(pg);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    if (PQstatus(pg->conn) != CONNECTION_OK) {
        fg_one_line(PQerrorMessage(pg->conn), text, sizeof(text));
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                     "PostgreSQL: cannot connect: %s", text);
        fg_cli_ledger_pg_close(pg);
        return NULL;
    }

    if (fg_cli_ledger_pg_begin(pg, err) != FG_OK) {
        fg_cli_ledger_pg_close(pg);
        return NULL;
    }

    return fg_cli_ledger_new(&fg_cli_ledger_pg_source, pg, tenant, NULL,
                             err);
}

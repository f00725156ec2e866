/*
 * ld_pg.c -- the PostgreSQL backend of foxgov-ledgerd ("--ledger
 * postgresql://..."): every tenant's ledger in one database, in the tables
 * of ld_pg_schema.h (docs/ledger.md, "PostgreSQL backend"), created when
 * missing as the daemon connects.
 *
 * A batch is one READ COMMITTED transaction: the tenant's head row (seq,
 * chain) is created if missing and locked (SELECT ... FOR UPDATE), so
 * several daemons may append to one database: a second daemon's batch for
 * the same tenant waits for the lock, then sees what the first committed.
 * The batch's envelope hashes the tenant has already are found with one
 * query (an array parameter) and marked duplicate; the others get seq and
 * chain after the head and go in with one INSERT over unnest() of array
 * parameters in binary form (a statement for each LD_PG_CHUNK_BYTES of
 * records); the head is moved and the transaction committed.  Durable when
 * COMMIT returns: the server must run with fsync on, and
 * synchronous_commit is set on for the session if it was off.  On any
 * error the transaction is rolled back: none of the batch is in.
 *
 * A connection found lost (PQstatus) is made again, once a call, and the
 * call retried on it.  An append whose COMMIT was sent but not answered
 * may have been committed: retried, its records are found there and
 * marked duplicate, so they are neither lost nor appended twice.
 *
 * The URI is kept only to connect: it may hold a password, and is never
 * put into a message.  What the server sends back is read as hostile:
 * every field's presence, format and length is checked.
 */

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "fg_hashset.h"
#include "fg_ledger.h"
#include "fg_record.h"
#include "ld_backend.h"
#include "ld_pg_schema.h"


/* type oids (pg_type.dat: fixed since PostgreSQL 7) */
#define LD_PG_BYTEA         17
#define LD_PG_INT8          20
#define LD_PG_TEXT          25
#define LD_PG_BYTEA_ARRAY   1001
#define LD_PG_TEXT_ARRAY    1009
#define LD_PG_INT8_ARRAY    1016

/* the largest seq: what the file format (a JSON integer) can hold */
#define LD_PG_SEQ_MAX       9007199254740991ULL

/* records an INSERT carries at most (well below the 1 GB of a message) */
#define LD_PG_CHUNK_BYTES   (64u * 1024 * 1024)
#define LD_PG_CHUNK_ROWS    65536

#define LD_PG_NOTE_MAX      65536
#define LD_PG_ID_MAX        64      /* an execution id, a trace id */

/* the arrays of an INSERT, in its parameters' order after the tenant */
enum {
    LD_PG_A_SEQ = 0,
    LD_PG_A_CHAIN,
    LD_PG_A_HASH,
    LD_PG_A_TYPE,
    LD_PG_A_RECORD,
    LD_PG_A_TRACE,
    LD_PG_A_EXEC,
    LD_PG_ARRAYS
};


typedef struct {
    ld_backend_t    base;
    char           *uri;            /* never in a message: a password */
    PGconn         *conn;
    fg_sha256_t    *h;
    fg_buffer_t     arr[LD_PG_ARRAYS];
    fg_buffer_t     hashes;         /* the duplicate query's array */
    fg_hashset_t    dups;
} ld_pg_t;


/* What an operation is asked, for ld_pg_run(). */
typedef struct {
    const char            *tenant;
    ld_append_t           *e;
    size_t                 n;
    const unsigned char   *md;
    int                   *type;
    uint64_t               seq;
    const char            *note;
    size_t                 len;
} ld_pg_call_t;

typedef int (*ld_pg_op_pt)(ld_pg_t *pg, ld_pg_call_t *c, fg_error_t *err);


static int ld_pg_lookup(ld_backend_t *b, const char *tenant,
    const unsigned char md[FG_SHA256_LEN], int *type, fg_error_t *err);
static int ld_pg_append(ld_backend_t *b, const char *tenant,
    ld_append_t *e, size_t n, fg_error_t *err);
static int ld_pg_checkpoint(ld_backend_t *b, const char *tenant,
    uint64_t seq, const char *note, size_t len, fg_error_t *err);
static void ld_pg_close(ld_backend_t *b);


static const ld_backend_ops_t  ld_pg_ops = {
    "postgresql",
    ld_pg_lookup,
    ld_pg_append,
    ld_pg_checkpoint,
    ld_pg_close
};


/* The statements prepared on each connection. */
typedef struct {
    const char  *name;
    const char  *sql;
    int          nparams;
    Oid          types[LD_PG_ARRAYS + 1];
} ld_pg_stmt_t;

static const ld_pg_stmt_t  ld_pg_stmts[] = {

    { "ld_head",
      "SELECT seq, chain FROM foxgov.head WHERE tenant_id = $1 FOR UPDATE",
      1, { LD_PG_TEXT } },

    { "ld_head_new",
      "INSERT INTO foxgov.head (tenant_id, seq, chain) VALUES ($1, 0, $2)"
      " ON CONFLICT (tenant_id) DO NOTHING",
      2, { LD_PG_TEXT, LD_PG_BYTEA } },

    { "ld_head_set",
      "UPDATE foxgov.head SET seq = $2, chain = $3 WHERE tenant_id = $1",
      3, { LD_PG_TEXT, LD_PG_INT8, LD_PG_BYTEA } },

    { "ld_dups",
      "SELECT envelope_hash FROM foxgov.ledger"
      " WHERE tenant_id = $1 AND envelope_hash = ANY ($2)",
      2, { LD_PG_TEXT, LD_PG_BYTEA_ARRAY } },

    { "ld_insert",
      "INSERT INTO foxgov.ledger (tenant_id, seq, chain, envelope_hash,"
      " record_type, record, trace_id, execution_id)"
      " SELECT $1, u.* FROM unnest($2, $3, $4, $5, $6, $7, $8) AS u",
      8, { LD_PG_TEXT, LD_PG_INT8_ARRAY, LD_PG_BYTEA_ARRAY,
           LD_PG_BYTEA_ARRAY, LD_PG_TEXT_ARRAY, LD_PG_BYTEA_ARRAY,
           LD_PG_TEXT_ARRAY, LD_PG_TEXT_ARRAY } },

    { "ld_lookup",
      "SELECT record_type FROM foxgov.ledger"
      " WHERE tenant_id = $1 AND envelope_hash = $2",
      2, { LD_PG_TEXT, LD_PG_BYTEA } },

    { "ld_checkpoint",
      "INSERT INTO foxgov.checkpoint (tenant_id, seq, note)"
      " VALUES ($1, $2, $3) ON CONFLICT (tenant_id, seq) DO NOTHING",
      3, { LD_PG_TEXT, LD_PG_INT8, LD_PG_TEXT } },

    { NULL, NULL, 0, { 0 } }
};


/* ------------------------------------------------------------- messages */

/* err from a failed result (or the connection's message without one). */
static int
ld_pg_fail(ld_pg_t *pg, const PGresult *res, const char *what,
    fg_error_t *err)
{
    const char  *msg, *state;
    char         text[FG_ERRMSG_MAX];

    msg = NULL;
    state = NULL;

    if (res != NULL) {
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    }
    if (msg == NULL) {
        msg = pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection";
    }

    fg_one_line(msg, text, sizeof(text));

    if (state != NULL && strlen(state) == 5) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "PostgreSQL: %s: %s (SQLSTATE %s)", what, text,
                            state);
    }
    return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "PostgreSQL: %s: %s",
                        what, text);
}


/* A command without rows (BEGIN, ...); FG_OK or FG_ERR_IO with err. */
static int
ld_pg_exec(ld_pg_t *pg, const char *sql, const char *status, fg_error_t *err)
{
    PGresult  *res;
    int        rc;

    res = PQexec(pg->conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = ld_pg_fail(pg, res, sql, err);

    } else if (status != NULL && strcmp(PQcmdStatus(res), status) != 0) {
        /* COMMIT of a transaction that failed answers ROLLBACK */
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "PostgreSQL: %s answered \"%.32s\"", sql,
                          PQcmdStatus(res));
    } else {
        rc = FG_OK;
    }

    PQclear(res);
    return rc;
}


static void
ld_pg_rollback(ld_pg_t *pg)
{
    PGresult  *res;

    if (PQstatus(pg->conn) != CONNECTION_OK
        || PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
    {
        return;
    }

    res = PQexec(pg->conn, "ROLLBACK");
    PQclear(res);
}


/* ------------------------------------------------------ binary values */

static void
ld_pg_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}


static void
ld_pg_put64(unsigned char *p, uint64_t v)
{
    ld_pg_put32(p, (uint32_t) (v >> 32));
    ld_pg_put32(p + 4, (uint32_t) v);
}


/*
 * Start a one-dimensional array of n elements of type elem in PostgreSQL's
 * binary form (array_recv): ndim, has-nulls, element type, then the size
 * and lower bound of the dimension.  The size is patched by ld_pg_end().
 */
static int
ld_pg_array(fg_buffer_t *b, Oid elem)
{
    unsigned char  hdr[20];

    ld_pg_put32(hdr, 1);
    ld_pg_put32(hdr + 4, 0);
    ld_pg_put32(hdr + 8, elem);
    ld_pg_put32(hdr + 12, 0);
    ld_pg_put32(hdr + 16, 1);

    b->len = 0;
    return fg_buffer_append(b, hdr, sizeof(hdr));
}


/* One element: its length, then its bytes. */
static int
ld_pg_elem(fg_buffer_t *b, const void *p, size_t len)
{
    unsigned char  n[4];

    ld_pg_put32(n, (uint32_t) len);
    if (fg_buffer_append(b, n, 4) != FG_OK) {
        return FG_ERR_NOMEM;
    }
    return fg_buffer_append(b, p, len);
}


static void
ld_pg_end(fg_buffer_t *b, size_t n)
{
    ld_pg_put32(b->data + 12, (uint32_t) n);
}


/*
 * Column col of row 0..ntuples of a binary result: not null and of exactly
 * len bytes, into out.  FG_ERR_INVALID when it is not so.
 */
static int
ld_pg_bytes(const PGresult *res, int row, int col, unsigned char *out,
    size_t len)
{
    if (PQgetisnull(res, row, col) || PQfformat(res, col) != 1
        || PQgetlength(res, row, col) != (int) len)
    {
        return FG_ERR_INVALID;
    }
    memcpy(out, PQgetvalue(res, row, col), len);
    return FG_OK;
}


static int
ld_pg_int8(const PGresult *res, int row, int col, uint64_t *v)
{
    unsigned char  b[8];
    int            i;

    if (ld_pg_bytes(res, row, col, b, 8) != FG_OK) {
        return FG_ERR_INVALID;
    }

    *v = 0;
    for (i = 0; i < 8; i++) {
        *v = (*v << 8) | b[i];
    }
    return FG_OK;
}


/* A prepared statement, binary parameters and results. */
static PGresult *
ld_pg_call(ld_pg_t *pg, const char *stmt, int n, const char *const *val,
    const int *len)
{
    static const int  binary[LD_PG_ARRAYS + 1] = {
        1, 1, 1, 1, 1, 1, 1, 1
    };

    return PQexecPrepared(pg->conn, stmt, n, val, len, binary, 1);
}


/* ----------------------------------------------------------- connecting */

/*
 * What the server must be for this daemon: making a commit durable (fsync
 * on, a server setting we cannot change: refused; synchronous_commit not
 * off: set on for this session), and the ledger's rows all visible to our
 * role (the tables' owner or BYPASSRLS: row-level security is for
 * readers).
 */
static int
ld_pg_server(ld_pg_t *pg, fg_error_t *err)
{
    PGresult  *res;
    int        rc, sync_off;

    res = PQexec(pg->conn,
                 "SELECT pg_catalog.current_setting('fsync'),"
                 " pg_catalog.current_setting('synchronous_commit'),"
                 " pg_catalog.row_security_active('foxgov.ledger')");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = ld_pg_fail(pg, res, "reading the server's settings", err);
        PQclear(res);
        return rc;
    }

    if (PQntuples(res) != 1 || PQnfields(res) != 3
        || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)
        || PQgetisnull(res, 0, 2))
    {
        PQclear(res);
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "PostgreSQL: the server's settings could not "
                            "be read");
    }

    if (strcmp(PQgetvalue(res, 0, 0), "on") != 0) {
        PQclear(res);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "PostgreSQL runs with fsync off: a commit would "
                            "not be durable (set fsync = on)");
    }

    if (strcmp(PQgetvalue(res, 0, 2), "f") != 0) {
        PQclear(res);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "PostgreSQL: row-level security applies to this "
                            "role on foxgov.ledger: connect as the tables' "
                            "owner or a role with BYPASSRLS");
    }

    sync_off = strcmp(PQgetvalue(res, 0, 1), "off") == 0;
    PQclear(res);

    if (sync_off) {
        return ld_pg_exec(pg, "SET synchronous_commit TO on", NULL, err);
    }
    return FG_OK;
}


/*
 * Connect (again), make the schema if missing, check durability and
 * prepare the statements.  FG_OK, or an error with err and no connection.
 */
static int
ld_pg_connect(ld_pg_t *pg, fg_error_t *err)
{
    static const char *const  keys[] = {
        "connect_timeout", "fallback_application_name", "dbname",
        "client_encoding", NULL
    };
    const char          *vals[5];
    const ld_pg_stmt_t  *s;
    PGresult            *res;
    char                 text[FG_ERRMSG_MAX];
    int                  rc;

    if (pg->conn != NULL) {
        PQfinish(pg->conn);
    }

    /* the URI may set a connect_timeout of its own; not the encoding */
    vals[0] = "10";
    vals[1] = "foxgov-ledgerd";
    vals[2] = pg->uri;
    vals[3] = "UTF8";
    vals[4] = NULL;

    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (pg->conn == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (PQstatus(pg->conn) != CONNECTION_OK) {
        fg_one_line(PQerrorMessage(pg->conn), text, sizeof(text));
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                          "PostgreSQL: cannot connect: %s", text);
        goto failed;
    }

    res = PQexec(pg->conn, LD_PG_SCHEMA_SQL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        || strcmp(PQcmdStatus(res), "COMMIT") != 0)
    {
        rc = ld_pg_fail(pg, res, "creating the schema", err);
        PQclear(res);
        ld_pg_rollback(pg);
        goto failed;
    }
    PQclear(res);

    rc = ld_pg_server(pg, err);
    if (rc != FG_OK) {
        goto failed;
    }

    for (s = ld_pg_stmts; s->name != NULL; s++) {
        res = PQprepare(pg->conn, s->name, s->sql, s->nparams, s->types);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = ld_pg_fail(pg, res, s->name, err);
            PQclear(res);
            goto failed;
        }
        PQclear(res);
    }

    return FG_OK;

failed:

    PQfinish(pg->conn);
    pg->conn = NULL;
    return rc;
}


/*
 * Run op on a live connection: connect first if there is none or it was
 * lost; when op fails because the connection was lost, connect once more
 * (if this call has not yet) and run it again.
 */
static int
ld_pg_run(ld_pg_t *pg, ld_pg_op_pt op, ld_pg_call_t *c, fg_error_t *err)
{
    int  rc, reconnected;

    reconnected = 0;

    for ( ;; ) {
        if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
            if (reconnected) {
                return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                    "PostgreSQL: the connection was lost");
            }
            reconnected = 1;
            rc = ld_pg_connect(pg, err);
            if (rc != FG_OK) {
                return rc;
            }
        }

        rc = op(pg, c, err);

        if (rc == FG_OK || reconnected
            || PQstatus(pg->conn) == CONNECTION_OK)
        {
            return rc;
        }
    }
}


/* ------------------------------------------------------------- lookup */

static int
ld_pg_lookup_op(ld_pg_t *pg, ld_pg_call_t *c, fg_error_t *err)
{
    const char  *val[2];
    int          len[2], type, rc;
    char         name[32];
    PGresult    *res;

    val[0] = c->tenant;
    len[0] = (int) strlen(c->tenant);
    val[1] = (const char *) c->md;
    len[1] = FG_SHA256_LEN;

    res = ld_pg_call(pg, "ld_lookup", 2, val, len);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = ld_pg_fail(pg, res, "looking up an envelope hash", err);
        PQclear(res);
        return rc;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        *c->type = -1;
        return FG_OK;
    }

    type = -1;
    if (PQntuples(res) == 1 && PQnfields(res) == 1
        && !PQgetisnull(res, 0, 0)
        && PQgetlength(res, 0, 0) > 0
        && (size_t) PQgetlength(res, 0, 0) < sizeof(name))
    {
        memcpy(name, PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
        name[PQgetlength(res, 0, 0)] = '\0';
        type = fg_record_type_from_name(name);
    }
    PQclear(res);

    if (type < 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "PostgreSQL: the ledger of %s holds an envelope "
                            "hash with no known record type", c->tenant);
    }

    *c->type = type;
    return FG_OK;
}


static int
ld_pg_lookup(ld_backend_t *b, const char *tenant,
    const unsigned char md[FG_SHA256_LEN], int *type, fg_error_t *err)
{
    ld_pg_call_t  c;

    memset(&c, 0, sizeof(c));
    c.tenant = tenant;
    c.md = md;
    c.type = type;

    return ld_pg_run((ld_pg_t *) b, ld_pg_lookup_op, &c, err);
}


/* ------------------------------------------------------------- append */

/* Lock the tenant's head row, making it (seq 0, the genesis) if missing. */
static int
ld_pg_head(ld_pg_t *pg, const char *tenant, uint64_t *seq,
    unsigned char chain[FG_SHA256_LEN], fg_error_t *err)
{
    const char     *val[2];
    int             len[2], rc, made;
    unsigned char   genesis[FG_SHA256_LEN];
    PGresult       *res;

    val[0] = tenant;
    len[0] = (int) strlen(tenant);

    for (made = 0; ; made = 1) {
        res = ld_pg_call(pg, "ld_head", 1, val, len);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = ld_pg_fail(pg, res, "locking the head", err);
            PQclear(res);
            return rc;
        }

        if (PQntuples(res) == 1) {
            break;
        }

        if (PQntuples(res) != 0 || made) {
            PQclear(res);
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "PostgreSQL: foxgov.head has no single row "
                                "for %s", tenant);
        }
        PQclear(res);

        /* a new tenant; a daemon making it at the same time wins */
        if (fg_ledger_genesis(pg->h, tenant, len[0], genesis) != FG_OK) {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "SHA-256 failed");
        }

        val[1] = (const char *) genesis;
        len[1] = FG_SHA256_LEN;

        res = ld_pg_call(pg, "ld_head_new", 2, val, len);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            rc = ld_pg_fail(pg, res, "making the head", err);
            PQclear(res);
            return rc;
        }
        PQclear(res);
    }

    rc = (PQnfields(res) == 2
          && ld_pg_int8(res, 0, 0, seq) == FG_OK
          && ld_pg_bytes(res, 0, 1, chain, FG_SHA256_LEN) == FG_OK
          && *seq <= LD_PG_SEQ_MAX)
         ? FG_OK : FG_ERR_INVALID;
    PQclear(res);

    if (rc != FG_OK) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "PostgreSQL: the head of %s is malformed",
                            tenant);
    }

    return FG_OK;
}


/* Mark e[i].duplicate for each envelope hash the tenant has already. */
static int
ld_pg_dups(ld_pg_t *pg, const char *tenant, ld_append_t *e, size_t n,
    fg_error_t *err)
{
    const char     *val[2];
    int             len[2], rows, i, rc;
    size_t          k;
    unsigned char   md[FG_SHA256_LEN];
    PGresult       *res;

    if (ld_pg_array(&pg->hashes, LD_PG_BYTEA) != FG_OK) {
        goto nomem;
    }
    for (k = 0; k < n; k++) {
        if (ld_pg_elem(&pg->hashes, e[k].envelope_hash, FG_SHA256_LEN)
            != FG_OK)
        {
            goto nomem;
        }
    }
    ld_pg_end(&pg->hashes, n);

    val[0] = tenant;
    len[0] = (int) strlen(tenant);
    val[1] = (const char *) pg->hashes.data;
    len[1] = (int) pg->hashes.len;

    res = ld_pg_call(pg, "ld_dups", 2, val, len);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = ld_pg_fail(pg, res, "looking for duplicates", err);
        PQclear(res);
        return rc;
    }

    rows = PQntuples(res);
    if (rows == 0) {
        PQclear(res);
        return FG_OK;
    }

    if (PQnfields(res) != 1 || (size_t) rows > n) {
        PQclear(res);
        goto bad;
    }

    fg_hashset_free(&pg->dups);
    fg_hashset_init(&pg->dups);

    for (i = 0; i < rows; i++) {
        if (ld_pg_bytes(res, i, 0, md, FG_SHA256_LEN) != FG_OK) {
            PQclear(res);
            goto bad;
        }
        if (fg_hashset_put(&pg->dups, md, 0) != FG_OK) {
            PQclear(res);
            goto nomem;
        }
    }
    PQclear(res);

    rows = 0;
    for (k = 0; k < n; k++) {
        if (fg_hashset_get(&pg->dups, e[k].envelope_hash) >= 0) {
            e[k].duplicate = 1;
            rows++;
        }
    }

    if ((size_t) rows != pg->dups.n) {
        /* it answered a hash that was not asked */
        goto bad;
    }

    return FG_OK;

nomem:

    return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");

bad:

    return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                        "PostgreSQL: malformed answer to the duplicate query "
                        "for %s", tenant);
}


/* Insert e[from..to) that are not duplicates, with one statement. */
static int
ld_pg_insert(ld_pg_t *pg, const char *tenant, ld_append_t *e, size_t from,
    size_t to, fg_error_t *err)
{
    const char     *val[LD_PG_ARRAYS + 1], *name;
    int             len[LD_PG_ARRAYS + 1], rc, i;
    size_t          k, rows;
    unsigned char   seq[8];
    PGresult       *res;

    static const Oid  elem[LD_PG_ARRAYS] = {
        LD_PG_INT8, LD_PG_BYTEA, LD_PG_BYTEA, LD_PG_TEXT, LD_PG_BYTEA,
        LD_PG_TEXT, LD_PG_TEXT
    };

    for (i = 0; i < LD_PG_ARRAYS; i++) {
        if (ld_pg_array(&pg->arr[i], elem[i]) != FG_OK) {
            goto nomem;
        }
    }

    rows = 0;
    for (k = from; k < to; k++) {
        if (e[k].duplicate) {
            continue;
        }

        name = fg_record_type_name(e[k].type);
        ld_pg_put64(seq, e[k].seq);

        if (ld_pg_elem(&pg->arr[LD_PG_A_SEQ], seq, 8) != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_CHAIN], e[k].chain,
                          FG_SHA256_LEN) != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_HASH], e[k].envelope_hash,
                          FG_SHA256_LEN) != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_TYPE], name, strlen(name))
               != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_RECORD], e[k].record,
                          e[k].record_len) != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_TRACE], e[k].trace_id,
                          strlen(e[k].trace_id)) != FG_OK
            || ld_pg_elem(&pg->arr[LD_PG_A_EXEC], e[k].execution_id,
                          strlen(e[k].execution_id)) != FG_OK)
        {
            goto nomem;
        }
        rows++;
    }

    if (rows == 0) {
        return FG_OK;
    }

    val[0] = tenant;
    len[0] = (int) strlen(tenant);

    for (i = 0; i < LD_PG_ARRAYS; i++) {
        ld_pg_end(&pg->arr[i], rows);
        val[i + 1] = (const char *) pg->arr[i].data;
        len[i + 1] = (int) pg->arr[i].len;
    }

    res = ld_pg_call(pg, "ld_insert", LD_PG_ARRAYS + 1, val, len);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = ld_pg_fail(pg, res, "inserting", err);
        PQclear(res);
        return rc;
    }

    rc = strtoull(PQcmdTuples(res), NULL, 10) == rows
         ? FG_OK
         : fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                        "PostgreSQL: inserted \"%.20s\" rows of %zu",
                        PQcmdTuples(res), rows);
    PQclear(res);
    return rc;

nomem:

    return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
}


static int
ld_pg_append_op(ld_pg_t *pg, ld_pg_call_t *c, fg_error_t *err)
{
    const char     *val[3];
    int             len[3], rc;
    size_t          k, from, bytes;
    uint64_t        seq;
    unsigned char   chain[FG_SHA256_LEN], seqb[8];
    ld_append_t    *e;
    PGresult       *res;

    e = c->e;
    for (k = 0; k < c->n; k++) {
        e[k].duplicate = 0;
        e[k].seq = 0;
    }
    seq = 0;

    rc = ld_pg_exec(pg, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, err);
    if (rc != FG_OK) {
        return rc;
    }

    rc = ld_pg_head(pg, c->tenant, &seq, chain, err);
    if (rc != FG_OK) {
        goto failed;
    }

    rc = ld_pg_dups(pg, c->tenant, e, c->n, err);
    if (rc != FG_OK) {
        goto failed;
    }

    /* seq and chain of each new one, after the head */
    for (k = 0; k < c->n; k++) {
        if (e[k].duplicate) {
            continue;
        }
        if (seq >= LD_PG_SEQ_MAX) {
            rc = fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                              "the ledger of %s is full", c->tenant);
            goto failed;
        }
        if (fg_ledger_chain(pg->h, chain, e[k].envelope_hash, chain)
            != FG_OK)
        {
            rc = fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                              "SHA-256 failed");
            goto failed;
        }
        e[k].seq = ++seq;
        memcpy(e[k].chain, chain, FG_SHA256_LEN);
    }

    /* inserted a chunk of records at a time */
    from = 0;
    bytes = 0;
    for (k = 0; k < c->n; k++) {
        if (k > from
            && (bytes + e[k].record_len > LD_PG_CHUNK_BYTES
                || k - from == LD_PG_CHUNK_ROWS))
        {
            rc = ld_pg_insert(pg, c->tenant, e, from, k, err);
            if (rc != FG_OK) {
                goto failed;
            }
            from = k;
            bytes = 0;
        }
        bytes += e[k].record_len;
    }

    rc = ld_pg_insert(pg, c->tenant, e, from, c->n, err);
    if (rc != FG_OK) {
        goto failed;
    }

    val[0] = c->tenant;
    len[0] = (int) strlen(c->tenant);
    ld_pg_put64(seqb, seq);
    val[1] = (const char *) seqb;
    len[1] = 8;
    val[2] = (const char *) chain;
    len[2] = FG_SHA256_LEN;

    res = ld_pg_call(pg, "ld_head_set", 3, val, len);
    if (PQresultStatus(res) != PGRES_COMMAND_OK
        || strcmp(PQcmdTuples(res), "1") != 0)
    {
        rc = ld_pg_fail(pg, res, "moving the head", err);
        PQclear(res);
        goto failed;
    }
    PQclear(res);

    rc = ld_pg_exec(pg, "COMMIT", "COMMIT", err);
    if (rc != FG_OK) {
        goto failed;
    }

    return FG_OK;

failed:

    ld_pg_rollback(pg);

    for (k = 0; k < c->n; k++) {
        e[k].duplicate = 0;
        e[k].seq = 0;
    }
    return rc;
}


/* What the schema's checks would refuse, refused before a batch is sent. */
static int
ld_pg_check(const char *tenant, const ld_append_t *e, size_t n,
    fg_error_t *err)
{
    size_t  k, t;

    if (tenant == NULL || !fg_tenant_id_valid(tenant, strlen(tenant))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not a tenant id");
    }

    for (k = 0; k < n; k++) {
        if (fg_record_type_name(e[k].type) == NULL
            || e[k].record == NULL || e[k].record_len < 2
            || e[k].record_len > FG_RECORD_MAX_BYTES
            || e[k].trace_id == NULL || e[k].execution_id == NULL)
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "entry %zu of the batch is malformed", k);
        }

        if (strnlen(e[k].trace_id, FG_TRACE_ID_LEN + 1) != FG_TRACE_ID_LEN) {
            goto trace;
        }
        for (t = 0; t < FG_TRACE_ID_LEN; t++) {
            if (!((e[k].trace_id[t] >= '0' && e[k].trace_id[t] <= '9')
                  || (e[k].trace_id[t] >= 'a' && e[k].trace_id[t] <= 'f')))
            {
                goto trace;
            }
        }

        t = strnlen(e[k].execution_id, LD_PG_ID_MAX + 1);
        if (t == 0 || t > LD_PG_ID_MAX) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "entry %zu of the batch has no execution id "
                                "of 1 to %d bytes", k, LD_PG_ID_MAX);
        }
    }

    return FG_OK;

trace:

    return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                        "entry %zu of the batch has no trace id of 32 "
                        "lowercase hex digits", k);
}


static int
ld_pg_append(ld_backend_t *b, const char *tenant, ld_append_t *e, size_t n,
    fg_error_t *err)
{
    ld_pg_call_t  c;
    int           rc;

    if (n == 0) {
        return FG_OK;
    }

    if (n > INT32_MAX / 2) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "a batch of %zu entries", n);
    }

    rc = ld_pg_check(tenant, e, n, err);
    if (rc != FG_OK) {
        return rc;
    }

    memset(&c, 0, sizeof(c));
    c.tenant = tenant;
    c.e = e;
    c.n = n;

    return ld_pg_run((ld_pg_t *) b, ld_pg_append_op, &c, err);
}


/* --------------------------------------------------------- checkpoint */

static int
ld_pg_checkpoint_op(ld_pg_t *pg, ld_pg_call_t *c, fg_error_t *err)
{
    const char     *val[3];
    int             len[3], rc;
    unsigned char   seq[8];
    PGresult       *res;

    ld_pg_put64(seq, c->seq);

    val[0] = c->tenant;
    len[0] = (int) strlen(c->tenant);
    val[1] = (const char *) seq;
    len[1] = 8;
    val[2] = c->note;
    len[2] = (int) c->len;

    res = ld_pg_call(pg, "ld_checkpoint", 3, val, len);

    rc = FG_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = ld_pg_fail(pg, res, "keeping a checkpoint", err);
    }
    PQclear(res);
    return rc;
}


static int
ld_pg_checkpoint(ld_backend_t *b, const char *tenant, uint64_t seq,
    const char *note, size_t len, fg_error_t *err)
{
    ld_pg_call_t  c;

    if (tenant == NULL || !fg_tenant_id_valid(tenant, strlen(tenant))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not a tenant id");
    }
    if (seq == 0 || seq > LD_PG_SEQ_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "a checkpoint at seq %llu",
                            (unsigned long long) seq);
    }
    if (note == NULL || len == 0 || len > LD_PG_NOTE_MAX
        || memchr(note, '\0', len) != NULL)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "a checkpoint note must be 1 to %d bytes of "
                            "text", LD_PG_NOTE_MAX);
    }

    memset(&c, 0, sizeof(c));
    c.tenant = tenant;
    c.seq = seq;
    c.note = note;
    c.len = len;

    return ld_pg_run((ld_pg_t *) b, ld_pg_checkpoint_op, &c, err);
}


/* ---------------------------------------------------------- open, close */

static void
ld_pg_close(ld_backend_t *b)
{
    ld_pg_t  *pg = (ld_pg_t *) b;
    int       i;

    if (pg == NULL) {
        return;
    }

    if (pg->conn != NULL) {
        PQfinish(pg->conn);
    }
    for (i = 0; i < LD_PG_ARRAYS; i++) {
        fg_buffer_free(&pg->arr[i]);
    }
    fg_buffer_free(&pg->hashes);
    fg_hashset_free(&pg->dups);
    fg_sha256_free(pg->h);

    if (pg->uri != NULL) {
        /* it may hold a password: not left in freed memory */
        memset(pg->uri, 0, strlen(pg->uri));
        free(pg->uri);
    }
    free(pg);
}


ld_backend_t *
ld_pg_open(const char *uri, fg_error_t *err)
{
    ld_pg_t  *pg;
    int       i;

    if (strncmp(uri, "postgresql://", 13) != 0
        && strncmp(uri, "postgres://", 11) != 0)
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "a PostgreSQL ledger is a postgresql:// URI");
        return NULL;
    }

    pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    pg->base.ops = &ld_pg_ops;
    for (i = 0; i < LD_PG_ARRAYS; i++) {
        fg_buffer_init(&pg->arr[i], 0);
    }
    fg_buffer_init(&pg->hashes, 0);
    fg_hashset_init(&pg->dups);

    pg->uri = strdup(uri);
    pg->h = fg_sha256_new();

    if (pg->uri == NULL || pg->h == NULL) {
        ld_pg_close(&pg->base);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    if (ld_pg_connect(pg, err) != FG_OK) {
        ld_pg_close(&pg->base);
        return NULL;
    }

    return &pg->base;
}

/*
 * cmd_ledger.c -- `foxgov ledger init URI`: create the PostgreSQL
 * ledger's schema (docs/ledger.md, "PostgreSQL backend") ahead of
 * foxgov-ledgerd, e.g. as a role that may create it while the daemon's
 * may not.  The SQL is the daemon's own (ledgerd/ld_pg_schema.h): run
 * twice, or at the same time as a daemon, it creates the schema once.
 */

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cli.h"
#include "cli_ledger.h"
#include "../ledgerd/ld_pg_schema.h"


static void
fg_ledger_help(void)
{
    printf("usage: foxgov ledger init postgresql://USER@HOST[:PORT]/DB\n"
           "\n"
           "Creates the PostgreSQL ledger's schema \"foxgov\" (version "
           LD_PG_SCHEMA_VERSION ") if it is\nnot there: the tables ledger, "
           "head, checkpoint, reader and meta, their\nrow-level security "
           "policies and append-only triggers (docs/ledger.md).\n"
           "foxgov-ledgerd creates it too when it connects; this is for a "
           "database\nwhere the daemon's role may not create it.  A schema "
           "of another version\nis refused.\n"
           "\n"
           "The URI is libpq's (a password is better in ~/.pgpass or "
           "PGPASSWORD\nthan in the URI); it is never printed with its "
           "password.\n"
           "Exit status: 0 ready, 1 refused by the server, 2 usage or no "
           "connection.\n");
}


/*
 * 1 when the schema is there (foxgov.meta exists), 0 when not, -1 when
 * that cannot be asked.
 */
static int
fg_ledger_exists(PGconn *conn)
{
    PGresult  *res;
    int        there;

    res = PQexec(conn,
                 "SELECT pg_catalog.to_regclass('foxgov.meta') IS NOT NULL");

    there = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
        && PQnfields(res) == 1 && !PQgetisnull(res, 0, 0))
    {
        there = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    }

    PQclear(res);
    return there;
}


static int
fg_ledger_init(const char *uri)
{
    static const char *const  keys[] = {
        "connect_timeout", "fallback_application_name", "dbname",
        "client_encoding", NULL
    };
    const char  *vals[5], *msg;
    char        *name, text[FG_ERRMSG_MAX];
    PGconn      *conn;
    PGresult    *res;
    int          there, rc;

    if (strncmp(uri, "postgresql://", 13) != 0
        && strncmp(uri, "postgres://", 11) != 0)
    {
        fg_cli_error("ledger", "init needs a postgresql:// URI");
        return FG_EXIT_USAGE;
    }

    name = fg_cli_ledger_redact(uri);
    if (name == NULL) {
        fg_cli_error("ledger", "out of memory");
        return FG_EXIT_USAGE;
    }

    vals[0] = "10";
    vals[1] = "foxgov";
    vals[2] = uri;
    vals[3] = "UTF8";
    vals[4] = NULL;

    conn = PQconnectdbParams(keys, vals, 1);

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        fg_one_line(conn != NULL ? PQerrorMessage(conn) : "out of memory",
                        text, sizeof(text));
        fg_cli_error("ledger", "%s: cannot connect: %s", name, text);
        PQfinish(conn);
        free(name);
        return FG_EXIT_USAGE;
    }

    there = fg_ledger_exists(conn);

    res = PQexec(conn, LD_PG_SCHEMA_SQL);

    if (PQresultStatus(res) != PGRES_COMMAND_OK
        || strcmp(PQcmdStatus(res), "COMMIT") != 0)
    {
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        fg_one_line(msg != NULL ? msg : PQerrorMessage(conn), text,
                        sizeof(text));
        fg_cli_error("ledger", "%s: the schema could not be created: %s",
                     name, text);
        rc = FG_EXIT_REFUSED;

    } else {
        printf("foxgov ledger init: %s: schema foxgov version %s %s\n",
               name, LD_PG_SCHEMA_VERSION,
               there == 1 ? "is there already" : "created");
        rc = FG_EXIT_OK;
    }

    PQclear(res);
    PQfinish(conn);
    free(name);
    return rc;
}


int
fg_cmd_ledger(int argc, char **argv)
{
    if (fg_cli_wants_help(argc, argv)) {
        fg_ledger_help();
        return FG_EXIT_OK;
    }

    if (argc == 3 && strcmp(argv[1], "init") == 0) {
        return fg_ledger_init(argv[2]);
    }

    fg_cli_error("ledger", "expected init URI (try foxgov ledger --help)");
    return FG_EXIT_USAGE;
}

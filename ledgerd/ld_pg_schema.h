/*
 * ld_pg_schema.h -- the PostgreSQL ledger's schema (docs/ledger.md,
 * "PostgreSQL backend"): the one SQL text that foxgov-ledgerd runs when it
 * connects (ld_pg.c) and `foxgov ledger init` runs (cli/cmd_ledger.c).
 *
 * LD_PG_SCHEMA_SQL is a whole transaction for PQexec(): under a
 * transaction-scoped advisory lock (so daemons starting at once create it
 * once), it creates schema "foxgov" unless foxgov.meta says it is there,
 * and refuses a schema of another version.  When it fails the connection
 * is left in an aborted transaction: the caller sends ROLLBACK.
 *
 *   foxgov.ledger      one row an entry: (tenant_id, seq) the primary
 *                      key, (tenant_id, envelope_hash) unique; the record
 *                      as bytea, its canonical bytes exactly as the
 *                      gateway sent them; UPDATE, DELETE and TRUNCATE
 *                      refused by a trigger (append-only)
 *   foxgov.head        a tenant's last seq and chain (seq 0 and the
 *                      genesis before any entry); the row an append locks
 *   foxgov.checkpoint  signed checkpoints (tenant_id, seq, note),
 *                      append-only as the ledger
 *   foxgov.reader      which role may read which tenant (row-level
 *                      security: a role that neither owns the tables nor
 *                      has BYPASSRLS sees the rows of the tenants listed
 *                      for it, or for a role it is a member of, and
 *                      nothing else; it can write nothing)
 *   foxgov.meta        schema_version
 */

#ifndef LD_PG_SCHEMA_H
#define LD_PG_SCHEMA_H

#define LD_PG_SCHEMA_VERSION  "1"

/* pg_advisory_xact_lock key: "foxgov" in ASCII, as a bigint */
#define LD_PG_SCHEMA_LOCK     "112628947447670"

#define LD_PG_TENANT_CHECK                                                    \
    "tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'"

#define LD_PG_SCHEMA_SQL                                                      \
"BEGIN ISOLATION LEVEL READ COMMITTED;\n"                                     \
"SELECT pg_catalog.pg_advisory_xact_lock(" LD_PG_SCHEMA_LOCK ");\n"           \
"DO $foxgov$\n"                                                               \
"DECLARE\n"                                                                   \
"    v text;\n"                                                               \
"BEGIN\n"                                                                     \
"    IF pg_catalog.to_regclass('foxgov.meta') IS NOT NULL THEN\n"             \
"        SELECT value INTO v FROM foxgov.meta\n"                              \
"            WHERE name = 'schema_version';\n"                                \
"        IF v IS DISTINCT FROM '" LD_PG_SCHEMA_VERSION "' THEN\n"             \
"            RAISE EXCEPTION 'foxgov schema version % in this database, "     \
                                "this foxgov knows version "                  \
                                LD_PG_SCHEMA_VERSION "', v;\n"                \
"        END IF;\n"                                                           \
"        RETURN;\n"                                                           \
"    END IF;\n"                                                               \
"\n"                                                                          \
"    -- an administrator may have made it for the daemon's role, which\n"     \
"    -- then needs no CREATE on the database\n"                               \
"    IF pg_catalog.to_regnamespace('foxgov') IS NULL THEN\n"                  \
"        CREATE SCHEMA foxgov;\n"                                             \
"    END IF;\n"                                                               \
"\n"                                                                          \
"    CREATE TABLE foxgov.meta (\n"                                            \
"        name   text PRIMARY KEY,\n"                                          \
"        value  text NOT NULL\n"                                              \
"    );\n"                                                                    \
"\n"                                                                          \
"    CREATE TABLE foxgov.ledger (\n"                                          \
"        tenant_id      text        COLLATE \"C\" NOT NULL,\n"                \
"        seq            bigint      NOT NULL,\n"                              \
"        chain          bytea       NOT NULL,\n"                              \
"        envelope_hash  bytea       NOT NULL,\n"                              \
"        record_type    text        NOT NULL,\n"                              \
"        record         bytea       NOT NULL,\n"                              \
"        trace_id       text        COLLATE \"C\" NOT NULL,\n"                \
"        execution_id   text        NOT NULL,\n"                              \
"        appended_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"     \
"        PRIMARY KEY (tenant_id, seq),\n"                                     \
"        UNIQUE (tenant_id, envelope_hash),\n"                                \
"        CHECK (" LD_PG_TENANT_CHECK "),\n"                                   \
"        CHECK (seq BETWEEN 1 AND 9007199254740991),\n"                       \
"        CHECK (octet_length(chain) = 32),\n"                                 \
"        CHECK (octet_length(envelope_hash) = 32),\n"                         \
"        CHECK (record_type IN ('AuthContext', 'PolicyDecisionRecord',\n"     \
"                               'ModelCallRecord', 'ToolCallRecord')),\n"     \
"        CHECK (octet_length(record) BETWEEN 2 AND 1048576),\n"               \
"        CHECK (trace_id ~ '^[0-9a-f]{32}$'),\n"                              \
"        CHECK (octet_length(execution_id) BETWEEN 1 AND 64)\n"               \
"    );\n"                                                                    \
"    CREATE INDEX ledger_trace ON foxgov.ledger (tenant_id, trace_id);\n"     \
"\n"                                                                          \
"    CREATE TABLE foxgov.head (\n"                                            \
"        tenant_id  text    COLLATE \"C\" PRIMARY KEY,\n"                     \
"        seq        bigint  NOT NULL,\n"                                      \
"        chain      bytea   NOT NULL,\n"                                      \
"        CHECK (" LD_PG_TENANT_CHECK "),\n"                                   \
"        CHECK (seq BETWEEN 0 AND 9007199254740991),\n"                       \
"        CHECK (octet_length(chain) = 32)\n"                                  \
"    );\n"                                                                    \
"\n"                                                                          \
"    CREATE TABLE foxgov.checkpoint (\n"                                      \
"        tenant_id   text        COLLATE \"C\" NOT NULL,\n"                   \
"        seq         bigint      NOT NULL,\n"                                 \
"        note        text        NOT NULL,\n"                                 \
"        created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"        \
"        PRIMARY KEY (tenant_id, seq),\n"                                     \
"        CHECK (" LD_PG_TENANT_CHECK "),\n"                                   \
"        CHECK (seq BETWEEN 1 AND 9007199254740991),\n"                       \
"        CHECK (octet_length(note) BETWEEN 1 AND 65536)\n"                    \
"    );\n"                                                                    \
"\n"                                                                          \
"    CREATE TABLE foxgov.reader (\n"                                          \
"        role_name  name  NOT NULL,\n"                                        \
"        tenant_id  text  COLLATE \"C\" NOT NULL,\n"                          \
"        PRIMARY KEY (role_name, tenant_id),\n"                               \
"        CHECK (" LD_PG_TENANT_CHECK ")\n"                                    \
"    );\n"                                                                    \
"\n"                                                                          \
"    CREATE FUNCTION foxgov.refuse_change() RETURNS trigger\n"                \
"    LANGUAGE plpgsql AS $fn$\n"                                              \
"    BEGIN\n"                                                                 \
"        RAISE EXCEPTION '% on %.% refused: it is append-only',\n"            \
"            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME\n"                         \
"            USING ERRCODE = 'insufficient_privilege';\n"                     \
"    END\n"                                                                   \
"    $fn$;\n"                                                                 \
"    CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON foxgov.ledger\n"   \
"        FOR EACH ROW EXECUTE FUNCTION foxgov.refuse_change();\n"             \
"    CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON foxgov.ledger\n"  \
"        FOR EACH STATEMENT EXECUTE FUNCTION foxgov.refuse_change();\n"       \
"    CREATE TRIGGER append_only BEFORE UPDATE OR DELETE\n"                    \
"        ON foxgov.checkpoint\n"                                              \
"        FOR EACH ROW EXECUTE FUNCTION foxgov.refuse_change();\n"             \
"    CREATE TRIGGER append_only_truncate BEFORE TRUNCATE\n"                   \
"        ON foxgov.checkpoint\n"                                              \
"        FOR EACH STATEMENT EXECUTE FUNCTION foxgov.refuse_change();\n"       \
"\n"                                                                          \
"    ALTER TABLE foxgov.reader ENABLE ROW LEVEL SECURITY;\n"                  \
"    CREATE POLICY reader_own ON foxgov.reader FOR SELECT\n"                  \
"        USING (role_name IN (SELECT r.rolname FROM pg_catalog.pg_roles r\n"  \
"               WHERE pg_catalog.pg_has_role(CURRENT_USER, r.oid,\n"          \
"                                            'USAGE')));\n"                   \
"    ALTER TABLE foxgov.ledger ENABLE ROW LEVEL SECURITY;\n"                  \
"    CREATE POLICY tenant_read ON foxgov.ledger FOR SELECT\n"                 \
"        USING (tenant_id IN (SELECT g.tenant_id FROM foxgov.reader g));\n"   \
"    ALTER TABLE foxgov.head ENABLE ROW LEVEL SECURITY;\n"                    \
"    CREATE POLICY tenant_read ON foxgov.head FOR SELECT\n"                   \
"        USING (tenant_id IN (SELECT g.tenant_id FROM foxgov.reader g));\n"   \
"    ALTER TABLE foxgov.checkpoint ENABLE ROW LEVEL SECURITY;\n"              \
"    CREATE POLICY tenant_read ON foxgov.checkpoint FOR SELECT\n"             \
"        USING (tenant_id IN (SELECT g.tenant_id FROM foxgov.reader g));\n"   \
"\n"                                                                          \
"    REVOKE ALL ON SCHEMA foxgov FROM PUBLIC;\n"                              \
"    REVOKE ALL ON ALL TABLES IN SCHEMA foxgov FROM PUBLIC;\n"                \
"\n"                                                                          \
"    COMMENT ON TABLE foxgov.ledger IS 'foxgov: per-tenant hash-chained "     \
        "evidence ledger, written by foxgov-ledgerd only (docs/ledger.md)';\n"\
"    COMMENT ON TABLE foxgov.reader IS 'foxgov: the tenants a role may "      \
        "read (row-level security)';\n"                                       \
"\n"                                                                          \
"    INSERT INTO foxgov.meta (name, value)\n"                                 \
"        VALUES ('schema_version', '" LD_PG_SCHEMA_VERSION "');\n"            \
"END\n"                                                                       \
"$foxgov$;\n"                                                                 \
"COMMIT;\n"

#endif /* LD_PG_SCHEMA_H */

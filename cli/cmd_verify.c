/*
 * cmd_verify.c -- `foxgov verify`: check a tenant's ledger (docs/ledger.md)
 * through the ledger reader (cli_ledger.h), which checks each entry: its
 * line canonical with its envelope_hash right, seq dense from 1, the chain
 * unbroken from the tenant's genesis, each record schema-valid and the
 * tenant's, no envelope_hash twice, and each decision's AuthContext and
 * each call record's decision earlier in the ledger.  Prints a summary,
 * or the first place a check fails.
 */

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ledger.h"


static void
fg_verify_help(void)
{
    printf("usage: foxgov verify LEDGER [--tenant T]\n"
           "\n"
           "Checks a tenant's ledger file (docs/ledger.md), line by line: "
           "each line\ncanonical and its envelope_hash the sha256 of its "
           "record; seq 1, 2, 3, ...\nwithout a gap; the chain unbroken "
           "from the tenant's genesis; each record\nschema-valid and of the "
           "tenant (--tenant, or the first record's); no\nenvelope_hash "
           "twice; each decision's AuthContext and each call record's\n"
           "decision earlier in the ledger.\n"
           "\n"
           "Prints a summary line when every check holds; otherwise one "
           "line naming\nthe first bad seq (and line) and why.\n"
           "Exit status: 0 verified, 1 a check failed, 2 usage or an "
           "unreadable file.\n");
}


/*
 * Report why the reading stopped: a finding about the ledger (its seq and
 * line) is FG_EXIT_REFUSED; a ledger that could not be read, FG_EXIT_USAGE.
 */
static int
fg_verify_stopped(const fg_cli_ledger_t *l, const fg_error_t *err)
{
    uint64_t  seq, line;

    if (err->code == FG_ERR_NOMEM) {
        fg_cli_error("verify", "out of memory");
        return FG_EXIT_USAGE;
    }
    if (err->code == FG_ERR_IO) {
        fg_cli_error("verify", "%s: %s", fg_cli_ledger_name(l), err->msg);
        return FG_EXIT_USAGE;
    }

    fg_cli_ledger_where(l, &seq, &line);

    if (line == 0) {
        fg_cli_error("verify", "%s: seq %llu: %s", fg_cli_ledger_name(l),
                     (unsigned long long) seq, err->msg);
    } else {
        fg_cli_error("verify", "%s: seq %llu (line %llu): %s",
                     fg_cli_ledger_name(l), (unsigned long long) seq,
                     (unsigned long long) line, err->msg);
    }
    return FG_EXIT_REFUSED;
}


int
fg_cmd_verify(int argc, char **argv)
{
    const char             *path, *tenant;
    char                   *name;
    char                    hex[FG_SHA256_HEX_LEN + 1];
    fg_error_t              err;
    fg_cli_ledger_t        *l;
    fg_cli_ledger_entry_t   e;
    unsigned char           chain[FG_SHA256_LEN];
    uint64_t                seq;
    int                     rc, got;

    if (fg_cli_wants_help(argc, argv)) {
        fg_verify_help();
        return FG_EXIT_OK;
    }

    tenant = NULL;
    if (argc == 4 && strcmp(argv[2], "--tenant") == 0) {
        tenant = argv[3];
    } else if (argc != 2) {
        fg_cli_error("verify", "expected LEDGER [--tenant T] (try foxgov "
                     "verify --help)");
        return FG_EXIT_USAGE;
    }
    path = argv[1];

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("verify", "--tenant \"%s\" is not a tenant id", tenant);
        return FG_EXIT_USAGE;
    }

    l = fg_cli_ledger_open(path, tenant, &err);
    if (l == NULL) {
        name = fg_cli_ledger_redact(path);
        fg_cli_error("verify", "%s: %s", name != NULL ? name : "LEDGER",
                     err.msg);
        free(name);
        return FG_EXIT_USAGE;
    }

    while ((got = fg_cli_ledger_next(l, &e, &err)) > 0) {
        /* every check is the reader's */
    }

    if (got < 0) {
        rc = fg_verify_stopped(l, &err);
        goto done;
    }

    seq = fg_cli_ledger_head(l, chain);
    if (seq == 0) {
        fg_cli_error("verify", "%s: the ledger is empty",
                     fg_cli_ledger_name(l));
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    fg_hex_sha256(chain, hex);
    printf("%s: verified: tenant %s, %llu records, seq 1..%llu, chain %s\n",
           fg_cli_ledger_name(l), fg_cli_ledger_tenant(l),
           (unsigned long long) seq, (unsigned long long) seq, hex);
    rc = FG_EXIT_OK;

done:

    fg_cli_ledger_close(l);
    return rc;
}

/*
 * main.c -- `foxgov`, the operator's and auditor's command line: finds the
 * command and runs it.  Each command lives in its own cmd_*.c file.
 */

#include <string.h>

#include "cli.h"

static const fg_cli_command_t  fg_commands[] = {
    { "canon",    fg_cmd_canon,
      "write the RFC 8785 canonical form of a JSON document" },
    { "hash",     fg_cmd_hash,
      "print the SHA-256 of a JSON document's canonical form (or raw bytes)" },
    { "validate", fg_cmd_validate,
      "validate a record against its schema" },
    { "keygen",   fg_cmd_keygen,
      "make a signing key pair (private PEM, public JWKS)" },
    { "token",    fg_cmd_token,
      "token mint: make a caller token (the app's API key)" },
    { "approve",  fg_cmd_approve,
      "sign an approval token for a held (428) call" },
    { "bundle",   fg_cmd_bundle,
      "build, sign, verify and test policy bundles" },
    { "decide",   fg_cmd_decide,
      "print the PolicyDecisionRecord a bundle gives for an input" },
    { "verify",   fg_cmd_verify,
      "check a tenant's ledger file: hashes, chain, seq, schemas, links" },
    { "checkpoint", fg_cmd_checkpoint,
      "verify a ledger and sign a checkpoint of its head (C2SP note)" },
    { "export",   fg_cmd_export,
      "export a trace's records as an evidence bundle (verify --bundle)" },
    { "replay",   fg_cmd_replay,
      "re-decide a ledger's recorded decisions with a candidate bundle" },
    { "report",   fg_cmd_report,
      "report cost: tokens and cost of a ledger's model calls per group" },
    { "ledger",   fg_cmd_ledger,
      "ledger init: create the PostgreSQL ledger's schema" },
    { NULL, NULL, NULL }
};


static void
fg_usage(FILE *out)
{
    const fg_cli_command_t  *c;

    fprintf(out,
            "usage: foxgov <command> [options] [args]\n"
            "\n"
            "foxgov is the command line of the foxgov AI egress gateway.\n"
            "\n"
            "commands:\n");

    for (c = fg_commands; c->name != NULL; c++) {
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    }

    fprintf(out,
            "\n"
            "`foxgov <command> --help` describes a command.\n"
            "Exit status: 0 ok, 1 input refused or check failed, 2 usage.\n");
}


int
main(int argc, char **argv)
{
    const fg_cli_command_t  *c;

    if (argc < 2) {
        fg_usage(stderr);
        return FG_EXIT_USAGE;
    }

    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "help") == 0)
    {
        fg_usage(stdout);
        return FG_EXIT_OK;
    }

    for (c = fg_commands; c->name != NULL; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            return c->run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "foxgov: unknown command \"%s\" (try foxgov --help)\n",
            argv[1]);

    return FG_EXIT_USAGE;
}

/*
 * cli.h -- what the `foxgov` commands share: reading input, reporting an
 * error in one line, the command table.
 */

#ifndef FG_CLI_H
#define FG_CLI_H

#include <stdio.h>

#include "fg_core.h"
#include "fg_jose.h"

/* Exit statuses of every command. */
#define FG_EXIT_OK       0
#define FG_EXIT_REFUSED  1   /* the input is invalid, or a check failed */
#define FG_EXIT_USAGE    2   /* bad arguments, unreadable file */

/* The largest input a command reads (bodies and records are far smaller). */
#define FG_CLI_INPUT_MAX  (256u * 1024 * 1024)

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *summary;
} fg_cli_command_t;

/* Print "foxgov <cmd>: <message>" on stderr as one line. */
void fg_cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * Read a whole file (or stdin for "-" or NULL) into buf.  Returns FG_OK,
 * or prints the reason and returns an error.
 */
int fg_cli_read_input(const char *cmd, const char *path, fg_buffer_t *buf);

/* The display name of an input path. */
const char *fg_cli_input_name(const char *path);

/*
 * The signing key in FILE (PEM or JWKS): the private key, or with several
 * the one named kid.  A PEM key's kid is kid, or the file name less
 * ".pem" (keygen writes KID.pem).  *set receives the loaded set (free it
 * with fg_keyset_free).  Prints the reason and returns NULL on failure.
 */
const fg_jwk_t *fg_cli_signing_key(const char *cmd, const char *path,
    const char *kid, fg_keyset_t **set);

/*
 * Write s to out (or only count it, out NULL) with what a terminal could
 * take for a command written as \u00XX or \u20XX: control characters,
 * C1 controls and the bidirectional overrides (a record's text excludes
 * only C0 and DEL).  Returns the columns written: one a character, six an
 * escape.  For a record's text in a table.
 */
size_t fg_cli_print_safe(const char *s, FILE *out);

/*
 * Load the bundle at path, verified against keys (NULL: read unverified,
 * a draft), and compile its policy.json into *bundle and *policy (the
 * caller frees both, also on failure).  Prints the reason as cmd and
 * returns -1 on failure.
 */
struct fg_bundle_s;
struct fg_policy_s;

int fg_cli_bundle_load(const char *cmd, const char *path,
    const fg_keyset_t *keys, struct fg_bundle_s **bundle,
    struct fg_policy_s **policy);

/* True if argv holds -h or --help. */
int fg_cli_wants_help(int argc, char **argv);

/* "90", "90s", "15m", "2h", "7d" -> seconds; -1 when malformed. */
long fg_cli_parse_duration(const char *s);

int fg_cmd_canon(int argc, char **argv);
int fg_cmd_verify(int argc, char **argv);
int fg_cmd_checkpoint(int argc, char **argv);
int fg_cmd_hash(int argc, char **argv);
int fg_cmd_validate(int argc, char **argv);
int fg_cmd_keygen(int argc, char **argv);
int fg_cmd_token(int argc, char **argv);
int fg_cmd_approve(int argc, char **argv);
int fg_cmd_bundle(int argc, char **argv);
int fg_cmd_decide(int argc, char **argv);
int fg_cmd_replay(int argc, char **argv);
int fg_cmd_report(int argc, char **argv);
int fg_cmd_ledger(int argc, char **argv);
int fg_cmd_export(int argc, char **argv);

#endif /* FG_CLI_H */

/*
 * cmd_canon.c -- `foxgov canon` and `foxgov hash`: RFC 8785 canonical bytes
 * of a JSON document, and their SHA-256.
 */

#include <string.h>

#include "cli.h"
#include "fg_hash.h"
#include "fg_jcs.h"


static int
fg_stdout_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    (void) sink;

    return fwrite(p, 1, n, stdout) == n ? FG_OK : FG_ERR_IO;
}


/* parse [--raw] [FILE|-]; returns the file or "-" */
static int
fg_canon_args(const char *cmd, int argc, char **argv, int allow_raw,
    int *raw, const char **path)
{
    int  i;

    *path = "-";
    *raw = 0;

    for (i = 1; i < argc; i++) {
        if (allow_raw && strcmp(argv[i], "--raw") == 0) {
            *raw = 1;

        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fg_cli_error(cmd, "unknown option \"%s\"", argv[i]);
            return FG_EXIT_USAGE;

        } else if (i == argc - 1) {
            *path = argv[i];

        } else {
            fg_cli_error(cmd, "one input at most (got \"%s\" and more)",
                         argv[i]);
            return FG_EXIT_USAGE;
        }
    }

    return FG_EXIT_OK;
}


static int
fg_canon_failed(const char *cmd, const char *path, const fg_error_t *err)
{
    fg_cli_error(cmd, "%s: %s", fg_cli_input_name(path), err->msg);

    return FG_EXIT_REFUSED;
}


int
fg_cmd_canon(int argc, char **argv)
{
    unsigned char   stage[FG_SINK_STAGE];
    const char     *path;
    fg_buffer_t     in;
    fg_sink_t       out;
    fg_error_t      err;
    fg_jcs_t       *jcs;
    int             raw, rc;

    if (fg_cli_wants_help(argc, argv)) {
        printf("usage: foxgov canon [FILE|-]\n"
               "\n"
               "Writes the RFC 8785 (JCS) canonical form of the JSON document"
               " in FILE\n(or stdin) to stdout, with no trailing newline.  "
               "Refuses, with the byte\noffset, what JCS refuses: invalid "
               "JSON or UTF-8, duplicate keys, lone\nsurrogates, numbers "
               "beyond the double range, nesting deeper than %d.\n"
               "Exit status: 0 written, 1 refused, 2 usage.\n",
               FG_JCS_DEFAULT_MAX_DEPTH);
        return FG_EXIT_OK;
    }

    if ((rc = fg_canon_args("canon", argc, argv, 0, &raw, &path)) != 0) {
        return rc;
    }

    if (fg_cli_read_input("canon", path, &in) != FG_OK) {
        return FG_EXIT_USAGE;
    }

    jcs = fg_jcs_new(0);
    if (jcs == NULL) {
        fg_buffer_free(&in);
        fg_cli_error("canon", "out of memory");
        return FG_EXIT_USAGE;
    }

    out.buf = stage;
    out.len = 0;
    out.cap = sizeof(stage);
    out.total = 0;
    out.flush = fg_stdout_flush;
    out.ctx = NULL;

    rc = fg_jcs_canonicalize(jcs, in.data, in.len, &out, &err);

    fg_jcs_free(jcs);
    fg_buffer_free(&in);

    if (rc != FG_OK) {
        return fg_canon_failed("canon", path, &err);
    }

    if (fflush(stdout) != 0) {
        fg_cli_error("canon", "cannot write the output");
        return FG_EXIT_USAGE;
    }

    return FG_EXIT_OK;
}


int
fg_cmd_hash(int argc, char **argv)
{
    char            hex[FG_SHA256_HEX_LEN + 1];
    const char     *path;
    fg_buffer_t     in;
    fg_blobref_t    ref;
    fg_error_t      err;
    fg_sha256_t    *h;
    fg_jcs_t       *jcs;
    int             raw, rc;

    if (fg_cli_wants_help(argc, argv)) {
        printf("usage: foxgov hash [--raw] [FILE|-]\n"
               "\n"
               "Prints the lowercase hex SHA-256 of the RFC 8785 canonical "
               "form of the JSON\ndocument in FILE (or stdin): the hash "
               "foxgov records for JSON content and,\nfor a record, its "
               "envelope_hash.  --raw hashes the bytes as they are.\n"
               "Exit status: 0 printed, 1 refused, 2 usage.\n");
        return FG_EXIT_OK;
    }

    if ((rc = fg_canon_args("hash", argc, argv, 1, &raw, &path)) != 0) {
        return rc;
    }

    if (fg_cli_read_input("hash", path, &in) != FG_OK) {
        return FG_EXIT_USAGE;
    }

    h = fg_sha256_new();
    jcs = fg_jcs_new(0);

    if (h == NULL || jcs == NULL) {
        fg_cli_error("hash", "cannot set up SHA-256");
        rc = FG_EXIT_USAGE;

    } else if (raw) {
        rc = fg_blobref_raw(in.data, in.len, "application/octet-stream",
                            &ref, &err);
        rc = (rc == FG_OK) ? FG_EXIT_OK
                           : fg_canon_failed("hash", path, &err);

    } else {
        rc = fg_blobref_json(jcs, h, in.data, in.len, "application/json",
                             &ref, &err);
        rc = (rc == FG_OK) ? FG_EXIT_OK
                           : fg_canon_failed("hash", path, &err);
    }

    if (rc == FG_EXIT_OK) {
        fg_hex_sha256(ref.sha256, hex);
        printf("%s\n", hex);
    }

    fg_jcs_free(jcs);
    fg_sha256_free(h);
    fg_buffer_free(&in);

    return rc;
}

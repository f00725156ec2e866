/*
 * cmd_validate.c -- `foxgov validate`: check a record against its schema.
 */

#include <string.h>

#include "cli.h"
#include "fg_record.h"


static void
fg_validate_help(void)
{
    printf("usage: foxgov validate <RecordType|record> [FILE|-]\n"
           "\n"
           "Validates the JSON record in FILE (or stdin) against the schema "
           "of RecordType:\nAuthContext, PolicyDecisionRecord, "
           "ModelCallRecord, ToolCallRecord, or\nTraceContext; `record` "
           "takes the type from the record's own record_type.\nThe text "
           "must also be canonicalizable (RFC 8785), as every stored record"
           " is.\n"
           "\n"
           "Prints nothing when valid.  Otherwise prints one line per "
           "error, as\n\"<JSON pointer>: <reason>\" (the root is "
           "\"(root)\").\n"
           "Exit status: 0 valid, 1 invalid, 2 usage.\n");
}


static int
fg_validate_known(const char *type)
{
    return strcmp(type, "record") == 0 || strcmp(type, "TraceContext") == 0
           || fg_record_type_from_name(type) >= 0;
}


int
fg_cmd_validate(int argc, char **argv)
{
    const char          *type, *path;
    fg_schema_report_t   report;
    fg_records_t        *records = NULL;
    fg_buffer_t          in;
    fg_error_t           err;
    fg_jcs_t            *jcs = NULL;
    json_t              *record = NULL;
    unsigned             i;
    int                  rc;

    if (fg_cli_wants_help(argc, argv)) {
        fg_validate_help();
        return FG_EXIT_OK;
    }

    if (argc < 2 || argc > 3) {
        fg_cli_error("validate", "expected <RecordType> [FILE|-] "
                     "(try foxgov validate --help)");
        return FG_EXIT_USAGE;
    }

    type = argv[1];
    path = (argc == 3) ? argv[2] : "-";

    if (!fg_validate_known(type)) {
        fg_cli_error("validate", "unknown record type \"%s\" (AuthContext, "
                     "PolicyDecisionRecord, ModelCallRecord, ToolCallRecord,"
                     " TraceContext, record)", type);
        return FG_EXIT_USAGE;
    }

    if (fg_cli_read_input("validate", path, &in) != FG_OK) {
        return FG_EXIT_USAGE;
    }

    rc = FG_EXIT_USAGE;

    records = fg_records_new(&err);
    jcs = fg_jcs_new(0);

    if (records == NULL || jcs == NULL) {
        fg_cli_error("validate", "cannot load the schemas: %s",
                     records == NULL ? err.msg : "out of memory");
        goto done;
    }

    record = fg_record_parse(jcs, in.data, in.len, &err);
    if (record == NULL) {
        fg_cli_error("validate", "%s: %s", fg_cli_input_name(path), err.msg);
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    if (strcmp(type, "record") == 0) {
        rc = fg_record_validate(records, record, &report);
    } else {
        rc = fg_record_validate_as(records, type, record, &report);
    }

    if (rc == FG_OK) {
        rc = FG_EXIT_OK;
        goto done;
    }

    for (i = 0; i < report.count; i++) {
        fprintf(stderr, "%s\n", report.line[i]);
    }

    if (report.truncated) {
        fprintf(stderr, "(and %u more)\n", report.truncated);
    }

    rc = FG_EXIT_REFUSED;

done:

    json_decref(record);
    fg_jcs_free(jcs);
    fg_records_free(records);
    fg_buffer_free(&in);

    return rc;
}

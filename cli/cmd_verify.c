/*
 * cmd_verify.c -- `foxgov verify`: check a tenant's ledger file line by
 * line (docs/ledger.md): each line canonical with its envelope_hash right,
 * seq dense from 1, the chain unbroken from the tenant's genesis, each
 * record schema-valid and the tenant's, no envelope_hash twice, and each
 * decision's AuthContext and each call record's decision earlier in the
 * ledger.  The file is read as a stream, one bounded line at a time.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fg_hashset.h"
#include "fg_ledger.h"
#include "fg_record.h"


/*
 * The next line of f into b (without "\n"): 1, 0 at the end, -1 when it is
 * longer than a ledger line may be.  b holds FG_LEDGER_LINE_MAX bytes
 * (fg_verify_line_buffer), so a line is read without growing anything;
 * the stream is the process's own, so unlocked reads.
 */
static int
fg_verify_line(FILE *f, fg_buffer_t *b, int *unterminated)
{
    int  c;

    b->len = 0;
    *unterminated = 0;

    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            return 1;
        }
        if (b->len == FG_LEDGER_LINE_MAX) {
            return -1;
        }
        b->data[b->len++] = (unsigned char) c;
    }

    if (b->len > 0) {
        *unterminated = 1;
        return 1;
    }
    return 0;
}


static int
fg_verify_line_buffer(fg_buffer_t *b)
{
    b->data = malloc(FG_LEDGER_LINE_MAX);
    b->cap = FG_LEDGER_LINE_MAX;
    b->len = 0;
    b->max = FG_LEDGER_LINE_MAX;
    return b->data != NULL ? FG_OK : FG_ERR_NOMEM;
}


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


int
fg_cmd_verify(int argc, char **argv)
{
    FILE               *f;
    const char         *path, *tenant, *why;
    char                tenant_buf[FG_TENANT_ID_MAX + 1], hex[65];
    fg_buffer_t         line;
    fg_error_t          err;
    fg_ledger_entry_t   e;
    fg_hashset_t        seen;
    fg_ledger_facts_t   facts;
    fg_records_t       *records;
    fg_sha256_t        *h;
    fg_jcs_t           *jcs, *jcs2;
    json_t             *rec;
    const json_t       *t;
    unsigned char       chain[FG_SHA256_LEN];
    uint64_t            seq, lineno;
    int                 rc, got, unterminated;

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

    f = fopen(path, "rb");
    if (f == NULL) {
        fg_cli_error("verify", "%s: %s", path, strerror(errno));
        return FG_EXIT_USAGE;
    }

    records = fg_records_new(&err);
    jcs = fg_jcs_new(0);
    jcs2 = fg_jcs_new(0);
    h = fg_sha256_new();
    fg_hashset_init(&seen);
    fg_buffer_init(&line, 0);
    (void) fg_verify_line_buffer(&line);

    rc = FG_EXIT_REFUSED;
    seq = 0;
    lineno = 0;
    why = NULL;

    if (records == NULL || jcs == NULL || jcs2 == NULL || h == NULL
        || line.data == NULL)
    {
        fg_cli_error("verify", "out of memory");
        rc = FG_EXIT_USAGE;
        goto done;
    }

    for ( ;; ) {
        got = fg_verify_line(f, &line, &unterminated);
        if (got == 0) {
            break;
        }
        lineno++;

        if (got < 0) {
            fg_cli_error("verify", "%s: seq %llu (line %llu): longer than "
                         "%d bytes", path, (unsigned long long) seq + 1,
                         (unsigned long long) lineno, FG_LEDGER_LINE_MAX);
            goto done;
        }
        if (ferror(f)) {
            fg_cli_error("verify", "%s: line %llu: %s", path,
                         (unsigned long long) lineno, strerror(errno));
            rc = FG_EXIT_USAGE;
            goto done;
        }
        if (unterminated) {
            fg_cli_error("verify", "%s: seq %llu (line %llu): the last line "
                         "has no newline (a torn append)", path,
                         (unsigned long long) seq + 1,
                         (unsigned long long) lineno);
            goto done;
        }

        if (fg_ledger_read(jcs, h, line.data, line.len, &e, &err) != FG_OK) {
            fg_cli_error("verify", "%s: seq %llu (line %llu): %s", path,
                         (unsigned long long) seq + 1,
                         (unsigned long long) lineno, err.msg);
            goto done;
        }

        rec = fg_record_parse(jcs2, e.record, e.record_len, &err);
        if (rec == NULL) {
            why = err.msg;
            goto bad;
        }

        if (seq == 0) {
            /* the tenant whose genesis starts the chain */
            if (tenant == NULL) {
                t = json_object_get(rec, "tenant_id");
                if (!json_is_string(t)
                    || json_string_length(t) > FG_TENANT_ID_MAX)
                {
                    json_decref(rec);
                    why = "the first record names no tenant";
                    goto bad;
                }
                strcpy(tenant_buf, json_string_value(t));
                tenant = tenant_buf;
            }
            if (fg_ledger_genesis(h, tenant, strlen(tenant), chain)
                != FG_OK)
            {
                json_decref(rec);
                why = "the tenant id is not valid";
                goto bad;
            }
        }

        if (fg_ledger_next(h, seq, chain, &e, &err) != FG_OK) {
            json_decref(rec);
            why = err.msg;
            goto bad;
        }

        if (fg_hashset_get(&seen, e.envelope_hash) >= 0) {
            json_decref(rec);
            why = "this envelope_hash is in the ledger already";
            goto bad;
        }

        if (fg_ledger_check(records, rec, tenant, &facts, &err)
            != FG_LEDGER_OK
            || fg_ledger_link_ok(&facts,
                   facts.has_link ? fg_hashset_get(&seen, facts.link) : -1,
                   &err) != FG_LEDGER_OK)
        {
            json_decref(rec);
            why = err.msg;
            goto bad;
        }
        json_decref(rec);

        if (fg_hashset_put(&seen, e.envelope_hash, (int) facts.type)
            != FG_OK)
        {
            fg_cli_error("verify", "out of memory");
            rc = FG_EXIT_USAGE;
            goto done;
        }

        memcpy(chain, e.chain, FG_SHA256_LEN);
        seq = e.seq;
    }

    if (ferror(f)) {
        fg_cli_error("verify", "%s: %s", path, strerror(errno));
        rc = FG_EXIT_USAGE;
        goto done;
    }

    if (seq == 0) {
        fg_cli_error("verify", "%s: the ledger is empty", path);
        goto done;
    }

    fg_hex_sha256(chain, hex);
    printf("%s: verified: tenant %s, %llu records, seq 1..%llu, chain %s\n",
           path, tenant, (unsigned long long) seq, (unsigned long long) seq,
           hex);
    rc = FG_EXIT_OK;
    goto done;

bad:

    fg_cli_error("verify", "%s: seq %llu (line %llu): %s", path,
                 (unsigned long long) e.seq, (unsigned long long) lineno,
                 why);

done:

    fclose(f);
    fg_hashset_free(&seen);
    fg_buffer_free(&line);
    fg_sha256_free(h);
    fg_jcs_free(jcs);
    fg_jcs_free(jcs2);
    fg_records_free(records);

    return rc;
}

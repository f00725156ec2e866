/*
 * fuzz_record.c -- libFuzzer target for the record reader (core/fg_record.c)
 * and what foxgov-ledgerd and the CLI do with a record from outside: the
 * strict readings (fg_record_parse_hashed, fg_record_parse_canonical), the
 * envelope hash, validation against the record schemas compiled into the
 * library (hostile instances against the real schemas), and
 * fg_ledger_check.
 *
 * The input is a record's text.  Besides "does not crash or leak", on
 * every input:
 *   - the one-pass hash of fg_record_parse_hashed() is sha256 of
 *     fg_jcs_canonicalize()'s bytes and fg_record_hash() of the value (the
 *     text path and the jansson path agree on the envelope hash);
 *   - the canonical bytes read back with fg_record_parse_canonical() give
 *     the same value (numbers compared by value: 1.0 is written 1) and
 *     hash, and the same validity against the schemas; the input itself
 *     reads as canonical only when it is those bytes;
 *   - validation with and without a report agree, a report's lines are
 *     bounded; fg_ledger_check() says OK only for a record valid against
 *     its type's schema, and names every fault it returns;
 *   - fg_time_parse() of the input, when it reads, formats back to the
 *     same instant (to the millisecond).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_ledger.h"
#include "fg_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char  *fuzz_schemas[] = {
    "AuthContext", "PolicyDecisionRecord", "ModelCallRecord",
    "ToolCallRecord", "TraceContext", "Shared"
};

static fg_jcs_t      *fuzz_jcs;
static fg_sha256_t   *fuzz_h;
static fg_records_t  *fuzz_records;


static void
fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_record: %s\n", what);
    abort();
}


/*
 * json_equal(), but a number equals a number of the same value whatever
 * its kind: the canonical form writes 1.0 as 1, which jansson then reads
 * as an integer.
 */
static int
fuzz_same(const json_t *a, const json_t *b)
{
    const char  *key;
    json_t      *va;
    size_t       i;

    if (json_is_number(a) && json_is_number(b)) {
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        json_object_foreach((json_t *) a, key, va) {
            if (!fuzz_same(va, json_object_get(b, key))) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (i = 0; i < json_array_size(a); i++) {
            if (!fuzz_same(json_array_get(a, i), json_array_get(b, i))) {
                return 0;
            }
        }
        return 1;
    }
    return json_equal(a, b);
}


static void
fuzz_report_ok(const fg_schema_report_t *r)
{
    unsigned  i;

    if (r->count > FG_SCHEMA_MAX_REPORT) {
        fuzz_fail("report too long");
    }
    for (i = 0; i < r->count; i++) {
        if (strnlen(r->line[i], FG_ERRMSG_MAX) == FG_ERRMSG_MAX) {
            fuzz_fail("report line not terminated");
        }
    }
}


static void
fuzz_validate(const json_t *v)
{
    const fg_schema_t   *s;
    fg_schema_report_t   r;
    size_t               i;
    int                  rc;

    for (i = 0; i < sizeof(fuzz_schemas) / sizeof(fuzz_schemas[0]); i++) {
        s = fg_records_schema(fuzz_records, fuzz_schemas[i]);
        if (s == NULL) {
            continue;
        }
        rc = fg_record_validate_as(fuzz_records, fuzz_schemas[i], v, &r);
        if ((rc == FG_OK) != (fg_schema_validate(s, v, NULL) == FG_OK)) {
            fuzz_fail("validate with and without a report disagree");
        }
        if (rc == FG_OK && r.count != 0) {
            fuzz_fail("valid with a report");
        }
        fuzz_report_ok(&r);
    }
}


static void
fuzz_ledger(const json_t *v)
{
    fg_ledger_facts_t   facts;
    fg_ledger_fault_t   f;
    fg_schema_report_t  r;
    fg_error_t          err;
    int                 rc;

    memset(&err, 0, sizeof(err));
    f = fg_ledger_check(fuzz_records, v, "acme", &facts, &err);

    if ((unsigned) f >= FG_LEDGER_FAULTS
        || fg_ledger_fault_name(f) == NULL)
    {
        fuzz_fail("ledger check: unknown fault");
    }

    rc = fg_record_validate(fuzz_records, v, &r);
    fuzz_report_ok(&r);

    if (f != FG_LEDGER_OK) {
        if (err.msg[0] == '\0') {
            fuzz_fail("ledger check: a fault without a message");
        }
        return;
    }

    if (rc != FG_OK || (unsigned) facts.type >= FG_RECORD_TYPES
        || strcmp(json_string_value(json_object_get(v, "record_type")),
                  fg_record_type_name(facts.type)) != 0)
    {
        fuzz_fail("ledger check passed an invalid record");
    }

    if (facts.has_link) {
        if (fg_ledger_link_ok(&facts, -1, &err) != FG_LEDGER_ORPHAN
            || fg_ledger_link_ok(&facts, (int) facts.link_type, &err)
               != FG_LEDGER_OK)
        {
            fuzz_fail("ledger link check");
        }
    }
}


static void
fuzz_time(const uint8_t *data, size_t size)
{
    char    buf[FG_TIME_MAX];
    time_t  sec, sec2;
    long    nsec, nsec2;

    if (!fg_time_parse((const char *) data, size, &sec, &nsec)) {
        return;
    }
    if (nsec < 0 || nsec > 999999999
        || fg_time_format(sec, nsec, buf) != FG_OK
        || !fg_time_parse(buf, strlen(buf), &sec2, &nsec2)
        || sec2 != sec || nsec2 != nsec / 1000000 * 1000000)
    {
        fuzz_fail("time does not round-trip");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char  md1[FG_SHA256_LEN], md2[FG_SHA256_LEN];
    unsigned char  md3[FG_SHA256_LEN], stage[64];
    char           hex[FG_SHA256_HEX_LEN + 1], hex1[FG_SHA256_HEX_LEN + 1];
    fg_buffer_t    canon;
    fg_error_t     err;
    fg_sink_t      sink;
    json_t        *v, *vc, *vi;
    int            rc;

    if (fuzz_jcs == NULL) {
        fuzz_jcs = fg_jcs_new(0);
        fuzz_h = fg_sha256_new();
        fuzz_records = fg_records_new(&err);
        if (fuzz_jcs == NULL || fuzz_h == NULL || fuzz_records == NULL) {
            fuzz_fail("setup");
        }
    }

    fuzz_time(data, size);

    memset(&err, 0, sizeof(err));
    v = fg_record_parse_hashed(fuzz_jcs, fuzz_h, data, size, md1, &err);
    if (v == NULL) {
        if (err.msg[0] == '\0') {
            fuzz_fail("a refusal without a message");
        }
        vi = NULL;
        if (fg_record_parse_canonical(fuzz_jcs, data, size, md3, &vi, &err)
            == FG_OK)
        {
            fuzz_fail("canonical reading accepts what the strict refuses");
        }
        return 0;
    }

    /* the canonical bytes, made apart, and their hash */
    fg_buffer_init(&canon, 0);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));
    if (fg_jcs_canonicalize(fuzz_jcs, data, size, &sink, &err) != FG_OK) {
        fuzz_fail("strictly read, but not canonicalizable");
    }
    if (fg_sha256(canon.data, canon.len, md2) != FG_OK
        || memcmp(md1, md2, FG_SHA256_LEN) != 0)
    {
        fuzz_fail("one-pass hash is not the canonical bytes' hash");
    }

    /* the jansson path */
    fg_hex_sha256(md1, hex1);
    if (fg_record_hash(fuzz_h, v, hex, &err) != FG_OK
        || strcmp(hex, hex1) != 0)
    {
        fprintf(stderr, "text %s, value %s\n", hex1, hex);
        fuzz_fail("the value's envelope hash is not the text's");
    }

    /* the canonical bytes read as the ledger reads them */
    vc = NULL;
    rc = fg_record_parse_canonical(fuzz_jcs, canon.data, canon.len, md3, &vc,
                                   &err);
    if (json_is_object(v) && canon.len <= FG_RECORD_MAX_BYTES) {
        if (rc != FG_OK || memcmp(md1, md3, FG_SHA256_LEN) != 0
            || !fuzz_same(v, vc))
        {
            fuzz_fail("the canonical form reads back otherwise");
        }

        /* validity does not depend on how the record was written */
        if ((fg_record_validate(fuzz_records, v, NULL) == FG_OK)
            != (fg_record_validate(fuzz_records, vc, NULL) == FG_OK))
        {
            fuzz_fail("the record and its canonical form validate apart");
        }
    }

    /* the input itself is canonical only when it is those bytes */
    vi = NULL;
    if (fg_record_parse_canonical(fuzz_jcs, data, size, md3, &vi, &err)
        == FG_OK)
    {
        if (size != canon.len || memcmp(data, canon.data, size) != 0) {
            fuzz_fail("non-canonical bytes read as canonical");
        }
        json_decref(vi);
    }

    fuzz_validate(v);

    if (vc != NULL) {
        fuzz_ledger(vc);
        json_decref(vc);
    }

    json_decref(v);
    fg_buffer_free(&canon);

    return 0;
}

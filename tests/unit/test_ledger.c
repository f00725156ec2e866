/*
 * test_ledger.c -- the ledger's chain and line format: lines written and
 * read back, the chain followed, and every tampering a line can suffer
 * (a byte changed anywhere, a member added or dropped, a line that is not
 * canonical, a record that is not its envelope_hash's) refused.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_ledger.h"

static const char  *records[] = {
    "{\"record_type\":\"AuthContext\",\"tenant_id\":\"acme\"}",
    "{\"record_type\":\"PolicyDecisionRecord\",\"tenant_id\":\"acme\"}",
    "{\"a\":[1,2,{\"b\":\"\xc3\xa9\"}],\"record_type\":\"ModelCallRecord\"}"
};


typedef struct {
    fg_jcs_t     *jcs;
    fg_sha256_t  *h;
} fx_t;


static int
setup(void **state)
{
    fx_t  *fx = calloc(1, sizeof(*fx));

    fx->jcs = fg_jcs_new(0);
    fx->h = fg_sha256_new();
    *state = fx;
    return fx->jcs != NULL && fx->h != NULL ? 0 : -1;
}


static int
teardown(void **state)
{
    fx_t  *fx = *state;

    fg_jcs_free(fx->jcs);
    fg_sha256_free(fx->h);
    free(fx);
    return 0;
}


/* The ledger of the three records for acme, one line each, in b. */
static void
three_lines(fx_t *fx, fg_buffer_t *b, size_t ends[3])
{
    unsigned char  chain[FG_SHA256_LEN], md[FG_SHA256_LEN];
    fg_error_t     err;
    size_t         i, n;

    assert_int_equal(fg_ledger_genesis(fx->h, "acme", 4, chain), FG_OK);

    for (i = 0; i < 3; i++) {
        n = strlen(records[i]);
        assert_int_equal(fg_sha256(records[i], n, md), FG_OK);
        assert_int_equal(fg_ledger_chain(fx->h, chain, md, chain), FG_OK);
        assert_int_equal(fg_ledger_line(i + 1, chain, md,
                         (const unsigned char *) records[i], n, b, &err),
                         FG_OK);
        ends[i] = b->len;
    }
}


static void
test_chain_and_lines(void **state)
{
    fx_t               *fx = *state;
    fg_buffer_t         b;
    fg_error_t          err;
    fg_ledger_entry_t   e;
    unsigned char       prev[FG_SHA256_LEN], g2[FG_SHA256_LEN];
    size_t              ends[3], start, i;
    uint64_t            seq;

    /* genesis differs by tenant and needs a valid one */
    assert_int_equal(fg_ledger_genesis(fx->h, "acme", 4, prev), FG_OK);
    assert_int_equal(fg_ledger_genesis(fx->h, "acme2", 5, g2), FG_OK);
    assert_memory_not_equal(prev, g2, FG_SHA256_LEN);
    assert_int_equal(fg_ledger_genesis(fx->h, "../x", 4, g2),
                     FG_ERR_INVALID);

    fg_buffer_init(&b, 0);
    three_lines(fx, &b, ends);

    /* the first line, byte for byte */
    assert_memory_equal(b.data, "{\"chain\":\"", 10);
    assert_int_equal(b.data[ends[0] - 1], '\n');

    seq = 0;
    start = 0;
    for (i = 0; i < 3; i++) {
        assert_int_equal(fg_ledger_read(fx->jcs, fx->h, b.data + start,
                         ends[i] - start - 1, &e, &err), FG_OK);
        assert_int_equal(e.seq, i + 1);
        assert_int_equal(e.record_len, strlen(records[i]));
        assert_memory_equal(e.record, records[i], e.record_len);
        assert_int_equal(fg_ledger_next(fx->h, seq, prev, &e, &err), FG_OK);
        memcpy(prev, e.chain, FG_SHA256_LEN);
        seq = e.seq;
        start = ends[i];
    }

    /* the chain is the order: the third line cannot follow the first */
    assert_int_equal(fg_ledger_genesis(fx->h, "acme", 4, prev), FG_OK);
    assert_int_equal(fg_ledger_read(fx->jcs, fx->h, b.data + ends[1],
                     ends[2] - ends[1] - 1, &e, &err), FG_OK);
    assert_int_equal(fg_ledger_next(fx->h, 0, prev, &e, &err),
                     FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "seq 3 follows seq 0"));
    assert_int_equal(fg_ledger_next(fx->h, 2, prev, &e, &err),
                     FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "chain is not"));

    fg_buffer_free(&b);
}


/* Any one byte of a line changed: the line is refused, or (a hex digit of
 * chain changed) it reads but no longer follows the line before. */
static void
test_every_byte(void **state)
{
    fx_t               *fx = *state;
    fg_buffer_t         b;
    fg_error_t          err;
    fg_ledger_entry_t   e, first;
    unsigned char       gen[FG_SHA256_LEN];
    size_t              ends[3], i, len;
    unsigned char       c;
    int                 rc;

    fg_buffer_init(&b, 0);
    three_lines(fx, &b, ends);
    assert_int_equal(fg_ledger_genesis(fx->h, "acme", 4, gen), FG_OK);

    len = ends[0] - 1;
    assert_int_equal(fg_ledger_read(fx->jcs, fx->h, b.data, len, &first,
                                    &err), FG_OK);

    for (i = 0; i < len; i++) {
        c = b.data[i];
        b.data[i] = (unsigned char) (c == '1' ? '2' : c ^ 0x01);
        rc = fg_ledger_read(fx->jcs, fx->h, b.data, len, &e, &err);
        if (rc == FG_OK) {
            rc = fg_ledger_next(fx->h, 0, gen, &e, &err);
        }
        if (rc == FG_OK) {
            fail_msg("byte %zu changed (%c), the line still verifies", i, c);
        }
        b.data[i] = c;
    }

    fg_buffer_free(&b);
}


static void
test_refused(void **state)
{
    fx_t               *fx = *state;
    fg_error_t          err;
    fg_ledger_entry_t   e;
    size_t              i;
    const char         *h0 = "0000000000000000000000000000000000000000"
                             "000000000000000000000000";
    char                line[512];
    static const struct {
        const char  *fmt;
        const char  *why;
    } bad[] = {
        /* not canonical: space, key order, escapes */
        { "{\"chain\": \"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"seq\":1}", "canonical" },
        { "{\"envelope_hash\":\"%s\",\"chain\":\"%s\",\"record\":{},"
          "\"seq\":1}", "canonical" },
        /* a member too many, one missing, one renamed */
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"extra\":1,"
          "\"record\":{},\"seq\":1}", "an object of" },
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{}}",
          "an object of" },
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"zzz\":1}", "no record object or no seq" },
        /* seq not a positive integer */
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"seq\":0}", "seq is not a positive" },
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"seq\":1.5}", "seq is not a positive" },
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"seq\":\"1\"}", "no record object or no seq" },
        /* the record not an object; the hash not the record's */
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":[],"
          "\"seq\":1}", "no record object" },
        { "{\"chain\":\"%s\",\"envelope_hash\":\"%s\",\"record\":{},"
          "\"seq\":1}", "not the sha256 of the record" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), bad[i].fmt, h0, h0);
        if (fg_ledger_read(fx->jcs, fx->h, (unsigned char *) line,
                           strlen(line), &e, &err) == FG_OK)
        {
            fail_msg("read: %s", line);
        }
        if (strstr(err.msg, bad[i].why) == NULL) {
            fail_msg("%s: \"%s\", not \"%s\"", line, err.msg, bad[i].why);
        }
    }

    /* short or not hex, without reading past the line */
    snprintf(line, sizeof(line), "{\"chain\":\"a\",\"envelope_hash\":\"b\","
             "\"record\":{},\"seq\":1}");
    assert_int_equal(fg_ledger_read(fx->jcs, fx->h, (unsigned char *) line,
                     strlen(line), &e, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "chain is not 64 lowercase hex"));
    snprintf(line, sizeof(line), "{\"chain\":\"%.63sG\",\"envelope_hash\":"
             "\"%s\",\"record\":{},\"seq\":1}", h0, h0);
    assert_int_equal(fg_ledger_read(fx->jcs, fx->h, (unsigned char *) line,
                     strlen(line), &e, &err), FG_ERR_INVALID);

    /* a record written with an escape JCS does not use */
    snprintf(line, sizeof(line), "{\"chain\":\"%s\",\"envelope_hash\":"
             "\"%s\",\"record\":{\"b\":\"\\u00e9\"},\"seq\":1}", h0, h0);
    assert_int_equal(fg_ledger_read(fx->jcs, fx->h, (unsigned char *) line,
                     strlen(line), &e, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "not in canonical form"));

    /* not JSON at all */
    assert_int_not_equal(fg_ledger_read(fx->jcs, fx->h,
                         (unsigned char *) "{\"chain\"", 8, &e, &err), FG_OK);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_and_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

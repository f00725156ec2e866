/*
 * test_ledger_check.c -- what a record must be to enter a tenant's
 * ledger (fg_ledger_check, fg_ledger_link_ok) and the strict reading of a
 * record that must already be canonical (fg_record_parse_canonical), on
 * the record vectors: each fault the ledger's dead-letter stream names is
 * found, with its name; every record type's link is read.
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
#include "fg_record.h"
#include "test_util.h"


typedef struct {
    fg_records_t  *records;
    fg_jcs_t      *jcs;
} fx_t;


static int
setup(void **state)
{
    fx_t        *fx = calloc(1, sizeof(*fx));
    fg_error_t   err;

    fx->records = fg_records_new(&err);
    fx->jcs = fg_jcs_new(0);
    *state = fx;
    return fx->records == NULL || fx->jcs == NULL;
}


static int
teardown(void **state)
{
    fx_t  *fx = *state;

    fg_records_free(fx->records);
    fg_jcs_free(fx->jcs);
    free(fx);
    return 0;
}


/* A vector record's canonical bytes into b. */
static void
vector(const char *type, fg_buffer_t *b)
{
    char  path[1024];

    snprintf(path, sizeof(path), "%s/vectors/records/%s/"
             "valid-openai-chat-completion.canon", FG_SOURCE_DIR, type);
    assert_int_equal(test_read_file(path, b), 0);
    while (b->len > 0 && b->data[b->len - 1] == '\n') {
        b->len--;
    }
}


static json_t *
parse(fx_t *fx, const fg_buffer_t *b, unsigned char md[FG_SHA256_LEN])
{
    json_t      *v;
    fg_error_t   err;

    assert_int_equal(fg_record_parse_canonical(fx->jcs, b->data, b->len, md,
                                               &v, &err), FG_OK);
    return v;
}


static void
test_valid_and_links(void **state)
{
    fx_t               *fx = *state;
    static const char  *types[] = { "AuthContext", "PolicyDecisionRecord",
                                    "ModelCallRecord" };
    fg_buffer_t         b;
    fg_ledger_facts_t   f;
    fg_error_t          err;
    unsigned char       md[FG_SHA256_LEN], prev[FG_SHA256_LEN], raw[32];
    json_t             *v;
    size_t              i;

    for (i = 0; i < 3; i++) {
        vector(types[i], &b);
        v = parse(fx, &b, md);

        /* its envelope_hash is the sha256 of its bytes */
        assert_int_equal(fg_sha256(b.data, b.len, raw), FG_OK);
        assert_memory_equal(md, raw, FG_SHA256_LEN);

        assert_int_equal(fg_ledger_check(fx->records, v, "acme", &f, &err),
                         FG_LEDGER_OK);
        assert_int_equal(f.type, (fg_record_type_t) i);
        assert_int_equal(f.has_link, i > 0);

        if (i > 0) {
            assert_int_equal(f.link_type, (fg_record_type_t) (i - 1));
            /* the vectors of one call link to each other */
            assert_memory_equal(f.link, prev, FG_SHA256_LEN);
            assert_int_equal(fg_ledger_link_ok(&f, (int) i - 1, &err),
                             FG_LEDGER_OK);
            assert_int_equal(fg_ledger_link_ok(&f, -1, &err),
                             FG_LEDGER_ORPHAN);
            assert_non_null(strstr(err.msg, "before it"));
            assert_int_equal(fg_ledger_link_ok(&f, (int) i, &err),
                             FG_LEDGER_ORPHAN);
        } else {
            assert_int_equal(fg_ledger_link_ok(&f, -1, &err), FG_LEDGER_OK);
        }

        /* another tenant's ledger */
        assert_int_equal(fg_ledger_check(fx->records, v, "beta", &f, &err),
                         FG_LEDGER_TENANT_MISMATCH);

        memcpy(prev, md, FG_SHA256_LEN);
        json_decref(v);
        fg_buffer_free(&b);
    }
}


static void
test_faults(void **state)
{
    fx_t               *fx = *state;
    fg_buffer_t         b;
    fg_ledger_facts_t   f;
    fg_error_t          err;
    unsigned char       md[FG_SHA256_LEN];
    json_t             *v;

    vector("PolicyDecisionRecord", &b);
    v = parse(fx, &b, md);

    /* no trace: named as such before the schema says anything */
    json_object_del(v, "trace");
    assert_int_equal(fg_ledger_check(fx->records, v, "acme", &f, &err),
                     FG_LEDGER_MISSING_TRACE);
    json_object_set_new(v, "trace", json_string("x"));
    assert_int_equal(fg_ledger_check(fx->records, v, "acme", &f, &err),
                     FG_LEDGER_MISSING_TRACE);
    json_decref(v);

    v = parse(fx, &b, md);
    json_object_set_new(v, "zzz", json_integer(1));
    assert_int_equal(fg_ledger_check(fx->records, v, "acme", &f, &err),
                     FG_LEDGER_SCHEMA);
    assert_non_null(strstr(err.msg, "/zzz"));
    json_decref(v);

    v = parse(fx, &b, md);
    json_object_set_new(v, "auth_context_sha256", json_string("AB"));
    assert_int_equal(fg_ledger_check(fx->records, v, "acme", &f, &err),
                     FG_LEDGER_SCHEMA);
    json_decref(v);

    assert_string_equal(fg_ledger_fault_name(FG_LEDGER_HASH_MISMATCH),
                        "hash_mismatch");
    assert_string_equal(fg_ledger_fault_name(FG_LEDGER_ORPHAN), "orphan");
    assert_string_equal(fg_ledger_fault_name((fg_ledger_fault_t) 99),
                        "unknown");

    fg_buffer_free(&b);
}


/* A record that is not in canonical form, or not an object, is refused. */
static void
test_parse_canonical(void **state)
{
    fx_t           *fx = *state;
    fg_buffer_t     b, c;
    fg_error_t      err;
    unsigned char   md[FG_SHA256_LEN];
    json_t         *v;
    size_t          i;

    vector("AuthContext", &b);

    /* a space after the opening brace */
    fg_buffer_init(&c, 0);
    assert_int_equal(fg_buffer_append(&c, "{ ", 2), FG_OK);
    assert_int_equal(fg_buffer_append(&c, b.data + 1, b.len - 1), FG_OK);
    assert_int_equal(fg_record_parse_canonical(fx->jcs, c.data, c.len, md,
                                               &v, &err), FG_ERR_MISMATCH);
    assert_null(v);
    assert_true(err.offset <= 1);
    fg_buffer_free(&c);

    /* an escape JCS does not write, a key out of order, a trailing byte */
    assert_int_equal(fg_record_parse_canonical(fx->jcs,
                     (const unsigned char *) "{\"a\":\"\\u0041\"}", 14, md,
                     &v, &err), FG_ERR_MISMATCH);
    assert_int_equal(fg_record_parse_canonical(fx->jcs,
                     (const unsigned char *) "{\"b\":1,\"a\":2}", 13, md,
                     &v, &err), FG_ERR_MISMATCH);
    assert_int_not_equal(fg_record_parse_canonical(fx->jcs,
                         (const unsigned char *) "{}\n", 3, md, &v, &err),
                         FG_OK);
    assert_int_equal(fg_record_parse_canonical(fx->jcs,
                     (const unsigned char *) "[1]", 3, md, &v, &err),
                     FG_ERR_INVALID);
    assert_int_equal(fg_record_parse_canonical(fx->jcs,
                     (const unsigned char *) "{\"a\":1,\"a\":1}", 13, md,
                     &v, &err), FG_ERR_INVALID);

    /* every truncation of a canonical record is refused */
    for (i = 0; i < b.len; i++) {
        assert_int_not_equal(fg_record_parse_canonical(fx->jcs, b.data, i,
                                                       md, &v, &err), FG_OK);
        assert_null(v);
    }

    fg_buffer_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_and_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_canonical, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

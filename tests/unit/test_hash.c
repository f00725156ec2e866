/*
 * test_hash.c -- SHA-256 (FIPS 180 examples), hex, hashing sinks, BlobRef
 * of raw and JSON content, and the byte sink and buffer of fg_core.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fg_hash.h"


static const char  abc_hex[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char  empty_hex[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/* FIPS 180-2 example: 448-bit message */
static const char  two_block_hex[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";


static void
test_sha256_known_answers(void **state)
{
    unsigned char  md[FG_SHA256_LEN];
    char           hex[FG_SHA256_HEX_LEN + 1];
    fg_sha256_t   *h;

    (void) state;

    assert_int_equal(fg_sha256("abc", 3, md), FG_OK);
    fg_hex_sha256(md, hex);
    assert_string_equal(hex, abc_hex);

    assert_int_equal(fg_sha256("", 0, md), FG_OK);
    fg_hex_sha256(md, hex);
    assert_string_equal(hex, empty_hex);

    /* incremental, reused context */
    h = fg_sha256_new();
    assert_non_null(h);
    assert_int_equal(fg_sha256_init(h), FG_OK);
    assert_int_equal(fg_sha256_update(h, "abcdbcdecdefdefgefghfghighij", 28),
                     FG_OK);
    assert_int_equal(fg_sha256_update(h, "hijkijkljklmklmnlmnomnopnopq", 28),
                     FG_OK);
    assert_int_equal(fg_sha256_final(h, md), FG_OK);
    fg_hex_sha256(md, hex);
    assert_string_equal(hex, two_block_hex);

    assert_int_equal(fg_sha256_init(h), FG_OK);
    assert_int_equal(fg_sha256_update(h, "abc", 3), FG_OK);
    assert_int_equal(fg_sha256_final(h, md), FG_OK);
    fg_hex_sha256(md, hex);
    assert_string_equal(hex, abc_hex);

    fg_sha256_free(h);
}


static void
test_unhex(void **state)
{
    unsigned char  md[FG_SHA256_LEN], back[FG_SHA256_LEN];
    char           hex[FG_SHA256_HEX_LEN + 1];

    (void) state;

    assert_int_equal(fg_unhex_sha256(abc_hex, 64, md), FG_OK);
    fg_hex_sha256(md, hex);
    assert_string_equal(hex, abc_hex);

    assert_true(fg_sha256_hex_valid(abc_hex, 64));
    assert_false(fg_sha256_hex_valid(abc_hex, 63));
    assert_false(fg_sha256_hex_valid(NULL, 64));
    assert_false(fg_sha256_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223"
                                     "B00361A396177A9CB410FF61F20015AD", 64));

    assert_int_equal(fg_unhex_sha256(abc_hex, 63, back), FG_ERR_SYNTAX);
    hex[5] = 'A';                               /* uppercase is refused */
    assert_int_equal(fg_unhex_sha256(hex, 64, back), FG_ERR_SYNTAX);
    hex[5] = 'g';
    assert_int_equal(fg_unhex_sha256(hex, 64, back), FG_ERR_SYNTAX);
}


static void
test_blobref(void **state)
{
    const char     *pretty = "{ \"b\": 1,\n  \"a\": [1.0, \"x\"] }";
    const char     *canon = "{\"a\":[1,\"x\"],\"b\":1}";
    unsigned char   md[FG_SHA256_LEN];
    fg_blobref_t    ref, raw;
    fg_error_t      err;
    fg_sha256_t    *h = fg_sha256_new();
    fg_jcs_t       *jcs = fg_jcs_new(0);
    json_t         *j, *v;
    char            hex[FG_SHA256_HEX_LEN + 1];

    (void) state;

    /* JSON: the hash and size of the canonical bytes */
    assert_int_equal(fg_blobref_json(jcs, h, pretty, strlen(pretty),
                                     "application/json", &ref, &err), FG_OK);
    assert_int_equal(fg_sha256(canon, strlen(canon), md), FG_OK);
    assert_memory_equal(ref.sha256, md, FG_SHA256_LEN);
    assert_int_equal(ref.size_bytes, strlen(canon));
    assert_string_equal(ref.content_type, "application/json");

    /* the same document from a jansson value */
    v = json_loads(pretty, 0, NULL);
    assert_int_equal(fg_blobref_json_value(h, v, "application/json", &raw,
                                           &err), FG_OK);
    assert_memory_equal(raw.sha256, md, FG_SHA256_LEN);
    assert_int_equal(raw.size_bytes, strlen(canon));
    json_decref(v);

    /* raw: the bytes as they are */
    assert_int_equal(fg_blobref_raw(pretty, strlen(pretty), "text/plain",
                                    &raw, &err), FG_OK);
    assert_int_equal(raw.size_bytes, strlen(pretty));
    assert_memory_not_equal(raw.sha256, ref.sha256, FG_SHA256_LEN);

    /* the record form */
    j = fg_blobref_to_json(&ref);
    fg_hex_sha256(md, hex);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), hex);
    assert_int_equal(json_integer_value(json_object_get(j, "size_bytes")),
                     strlen(canon));
    json_decref(j);

    /* invalid JSON: refused with the offset */
    assert_int_equal(fg_blobref_json(jcs, h, "{\"a\":}", 6,
                                     "application/json", &ref, &err),
                     FG_ERR_SYNTAX);
    assert_int_equal(err.offset, 5);

    /* content types are bounded */
    assert_int_equal(fg_blobref_raw("x", 1, "", &raw, &err), FG_ERR_LIMIT);
    {
        char  long_type[FG_CONTENT_TYPE_MAX + 1];
        memset(long_type, 'a', sizeof(long_type) - 1);
        long_type[sizeof(long_type) - 1] = '\0';
        assert_int_equal(fg_blobref_raw("x", 1, long_type, &raw, &err),
                         FG_ERR_LIMIT);
    }

    fg_jcs_free(jcs);
    fg_sha256_free(h);
}


/* ----------------------------------------------------- sinks, buffers */

static int
failing_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    (void) sink;
    (void) p;
    (void) n;

    return FG_ERR_IO;
}


static void
test_sink_and_buffer(void **state)
{
    unsigned char  stage[4];
    unsigned char  big[1000];
    fg_buffer_t    b;
    fg_sink_t      sink;
    fg_jcs_t      *jcs = fg_jcs_new(0);
    fg_error_t     err;
    size_t         i;

    (void) state;

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (unsigned char) i;
    }

    fg_buffer_init(&b, 0);
    fg_sink_to_buffer(&sink, &b, stage, sizeof(stage));
    assert_int_equal(fg_sink_write(&sink, "ab", 2), FG_OK);
    assert_int_equal(fg_sink_byte(&sink, 'c'), FG_OK);
    assert_int_equal(fg_sink_write(&sink, big, sizeof(big)), FG_OK);
    assert_int_equal(fg_sink_write(&sink, "xyz", 3), FG_OK);
    assert_int_equal(fg_sink_drain(&sink), FG_OK);
    assert_int_equal(b.len, 3 + sizeof(big) + 3);
    assert_int_equal(sink.total, b.len);
    assert_memory_equal(b.data, "abc", 3);
    assert_memory_equal(b.data + 3, big, sizeof(big));
    assert_memory_equal(b.data + 3 + sizeof(big), "xyz", 3);
    assert_int_equal(b.data[b.len], '\0');
    fg_buffer_free(&b);

    /* a bounded buffer refuses to grow past its bound */
    fg_buffer_init(&b, 10);
    assert_int_equal(fg_buffer_append(&b, "0123456789", 10), FG_OK);
    assert_int_equal(fg_buffer_append(&b, "x", 1), FG_ERR_LIMIT);
    fg_buffer_free(&b);

    /* a sink error stops the canonicalizer and is returned */
    sink.buf = stage;
    sink.len = 0;
    sink.cap = sizeof(stage);
    sink.total = 0;
    sink.flush = failing_flush;
    sink.ctx = NULL;
    assert_int_equal(fg_jcs_canonicalize(jcs, (const unsigned char *)
                                         "[\"a long string\"]", 17, &sink,
                                         &err), FG_ERR_IO);
    assert_non_null(strstr(err.msg, "output failed"));

    fg_jcs_free(jcs);
}


static void
test_errors(void **state)
{
    fg_error_t  err;

    (void) state;

    assert_int_equal(fg_error_set(&err, FG_ERR_SYNTAX, 7, "bad %s", "thing"),
                     FG_ERR_SYNTAX);
    assert_int_equal(err.offset, 7);
    assert_string_equal(err.msg, "bad thing");
    assert_int_equal(fg_error_set(NULL, FG_ERR_LIMIT, 0, "x"), FG_ERR_LIMIT);
    assert_string_equal(fg_strerror(FG_ERR_NOMEM), "out of memory");
    assert_string_equal(fg_strerror(12345), "internal error");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sha256_known_answers),
        cmocka_unit_test(test_unhex),
        cmocka_unit_test(test_blobref),
        cmocka_unit_test(test_sink_and_buffer),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}

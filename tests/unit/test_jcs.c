/*
 * test_jcs.c -- RFC 8785 canonicalization: the RFC's published vectors,
 * the 10,000 ES6 number lines, our own hard cases in vectors/jcs/, every
 * refusal with its offset, and agreement between the text and jansson
 * canonicalizers.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_utf8.h"
#include "test_util.h"


/* canonicalize text; returns FG_OK and the output, or the error */
static int
canon(fg_jcs_t *jcs, const char *text, size_t len, fg_buffer_t *out,
    fg_error_t *err)
{
    unsigned char  stage[64];       /* small: exercises the sink's flushes */
    fg_sink_t      sink;

    fg_buffer_init(out, 0);
    fg_sink_to_buffer(&sink, out, stage, sizeof(stage));

    return fg_jcs_canonicalize(jcs, (const unsigned char *) text, len, &sink,
                               err);
}


static void
assert_canon(fg_jcs_t *jcs, const char *in, const char *expected)
{
    fg_buffer_t  out;
    fg_error_t   err;
    int          rc;

    rc = canon(jcs, in, strlen(in), &out, &err);
    if (rc != FG_OK) {
        fail_msg("canon(%s) failed: %s", in, err.msg);
    }

    if (out.len != strlen(expected)
        || memcmp(out.data, expected, out.len) != 0)
    {
        fail_msg("canon(%s) = %.*s, expected %s", in, (int) out.len,
                 out.data ? (char *) out.data : "", expected);
    }

    fg_buffer_free(&out);
}


static void
assert_refused(fg_jcs_t *jcs, const char *in, size_t len, int code,
    size_t offset, const char *words)
{
    fg_buffer_t  out;
    fg_error_t   err;
    int          rc;

    rc = canon(jcs, in, len, &out, &err);
    fg_buffer_free(&out);

    if (rc == FG_OK) {
        fail_msg("canon(%.*s) was accepted", (int) len, in);
    }

    if (rc != code || err.offset != offset || strstr(err.msg, words) == NULL)
    {
        fail_msg("canon(%.*s): got code %d offset %zu \"%s\", expected "
                 "code %d offset %zu with \"%s\"", (int) len, in, rc,
                 err.offset, err.msg, code, offset, words);
    }

    /* the message names the place */
    {
        char  at[40];
        snprintf(at, sizeof(at), "at byte %zu", offset);
        assert_non_null(strstr(err.msg, at));
    }
}


/* ------------------------------------------------- RFC 8785 test vectors */

static void
test_rfc8785_vectors(void **state)
{
    static const char  *names[] = {
        "arrays", "french", "structures", "unicode", "values", "weird"
    };
    fg_jcs_t    *jcs = *state;
    fg_buffer_t  in, expected, out;
    fg_error_t   err;
    char         path[512];
    size_t       i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/vectors/rfc8785/input/%s.json",
                 FG_SOURCE_DIR, names[i]);
        assert_int_equal(test_read_file(path, &in), 0);

        snprintf(path, sizeof(path), "%s/vectors/rfc8785/output/%s.json",
                 FG_SOURCE_DIR, names[i]);
        assert_int_equal(test_read_file(path, &expected), 0);

        if (canon(jcs, (char *) in.data, in.len, &out, &err) != FG_OK) {
            fail_msg("%s: %s", names[i], err.msg);
        }

        if (out.len != expected.len
            || memcmp(out.data, expected.data, out.len) != 0)
        {
            fail_msg("%s: output differs from the RFC's", names[i]);
        }

        fg_buffer_free(&in);
        fg_buffer_free(&expected);
        fg_buffer_free(&out);
    }
}


/* outhex/ holds the same bytes as output/, in hex: check that agreement */
static void
test_rfc8785_outhex(void **state)
{
    static const char  *names[] = {
        "arrays", "french", "structures", "unicode", "values", "weird"
    };
    fg_buffer_t  hex, expected;
    char         path[512];
    size_t       i, j, n;
    unsigned     byte;
    int          used;

    (void) state;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/vectors/rfc8785/outhex/%s.txt",
                 FG_SOURCE_DIR, names[i]);
        assert_int_equal(test_read_file(path, &hex), 0);

        snprintf(path, sizeof(path), "%s/vectors/rfc8785/output/%s.json",
                 FG_SOURCE_DIR, names[i]);
        assert_int_equal(test_read_file(path, &expected), 0);

        for (j = 0, n = 0;
             sscanf((char *) hex.data + j, " %2x%n", &byte, &used) == 1;
             j += (size_t) used, n++)
        {
            assert_true(n < expected.len);
            assert_int_equal(byte, expected.data[n]);
        }
        assert_int_equal(n, expected.len);

        fg_buffer_free(&hex);
        fg_buffer_free(&expected);
    }
}


/* --------------------------------------------------------- ES6 numbers */

static void
test_es6_numbers(void **state)
{
    fg_buffer_t  file;
    char         path[512], buf[FG_JCS_NUMBER_MAX], *line, *save, *comma;
    uint64_t     bits;
    double       v;
    size_t       lines = 0;

    (void) state;

    snprintf(path, sizeof(path), "%s/vectors/rfc8785/es6-numbers-10000.txt",
             FG_SOURCE_DIR);
    assert_int_equal(test_read_file(path, &file), 0);

    for (line = strtok_r((char *) file.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        comma = strchr(line, ',');
        assert_non_null(comma);
        *comma = '\0';

        bits = strtoull(line, NULL, 16);
        memcpy(&v, &bits, sizeof(v));

        fg_jcs_format_number(v, buf);
        if (strcmp(buf, comma + 1) != 0) {
            fail_msg("line %zu: %s formats as %s, expected %s", lines + 1,
                     line, buf, comma + 1);
        }
        lines++;
    }

    assert_int_equal(lines, 10000);
    fg_buffer_free(&file);
}


static void
test_number_forms(void **state)
{
    fg_jcs_t  *jcs = *state;

    /* ECMAScript layout: plain, fraction, exponent below 1e-6 and >= 1e21 */
    assert_canon(jcs, "[0,-0,0.0,-0.0,0e10]", "[0,0,0,0,0]");
    assert_canon(jcs, "[1,1.0,1.50,100,1e2,1E+2,10e-1]",
                 "[1,1,1.5,100,100,100,1]");
    assert_canon(jcs, "[1e20,1e21,123e18,1.5e21]",
                 "[100000000000000000000,1e+21,123000000000000000000,"
                 "1.5e+21]");
    assert_canon(jcs, "[0.000001,0.0000001,1e-7,12e-7,-1.5e-7]",
                 "[0.000001,1e-7,1e-7,0.0000012,-1.5e-7]");
    assert_canon(jcs, "[333333333.33333329,1E30,4.50,2e-3,"
                 "0.000000000000000000000000001]",
                 "[333333333.3333333,1e+30,4.5,0.002,1e-27]");
    /* shortest round trip, not the digits written */
    assert_canon(jcs, "[0.1000000000000000055511151231257827]", "[0.1]");
    assert_canon(jcs, "[9007199254740993]", "[9007199254740992]");
    assert_canon(jcs, "[123456789012345678901234567890]",
                 "[1.2345678901234568e+29]");
    assert_canon(jcs, "[1.7976931348623157e308,5e-324,-5e-324]",
                 "[1.7976931348623157e+308,5e-324,-5e-324]");
    assert_canon(jcs, "[2.2250738585072014e-308,4.9406564584124654e-324]",
                 "[2.2250738585072014e-308,5e-324]");
    /* below the smallest double: read as zero, as ECMAScript does */
    assert_canon(jcs, "[1e-400,-1e-400]", "[0,0]");
    /* long digit strings and huge exponents that still land in range */
    assert_canon(jcs, "[0.00000000000000000000000000000000000000001e41]",
                 "[1]");
    assert_canon(jcs, "[100000000000000000000000000000000000000e-38]",
                 "[1]");
}


static void
test_format_number_direct(void **state)
{
    char  buf[FG_JCS_NUMBER_MAX];

    (void) state;

    assert_int_equal(fg_jcs_format_number(NAN, buf), 0);
    assert_int_equal(fg_jcs_format_number(INFINITY, buf), 0);
    assert_int_equal(fg_jcs_format_number(-INFINITY, buf), 0);

    fg_jcs_format_number(-0.0, buf);
    assert_string_equal(buf, "0");
    fg_jcs_format_number(1e21, buf);
    assert_string_equal(buf, "1e+21");
    fg_jcs_format_number(999999999999999900000.0, buf);
    assert_string_equal(buf, "999999999999999900000");
    fg_jcs_format_number(0.000001, buf);
    assert_string_equal(buf, "0.000001");
    fg_jcs_format_number(1e-7, buf);
    assert_string_equal(buf, "1e-7");
    fg_jcs_format_number(-1.7976931348623157e308, buf);
    assert_string_equal(buf, "-1.7976931348623157e+308");
    /* powers of two: the doubles below are closer than those above */
    fg_jcs_format_number(9007199254740992.0, buf);
    assert_string_equal(buf, "9007199254740992");
    fg_jcs_format_number(ldexp(1.0, -1074), buf);
    assert_string_equal(buf, "5e-324");
    fg_jcs_format_number(ldexp(1.0, 1023), buf);
    assert_string_equal(buf, "8.98846567431158e+307");
}


/* fast decimal path and strtod path must agree on every number */
static void
test_number_paths_agree(void **state)
{
    fg_jcs_t  *jcs = *state;
    char       text[64], buf[FG_JCS_NUMBER_MAX], expect[80];
    uint64_t   x = 88172645463325252ULL;
    double     v;
    int        i, digits;

    for (i = 0; i < 20000; i++) {
        /* xorshift: reproducible */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        digits = 1 + (int) (x % 15);
        snprintf(text, sizeof(text), "%.*e", digits - 1,
                 (double) (x >> 11) / 9007199254740992.0
                 * pow(10.0, (double) ((int) ((x >> 3) % 600) - 300)));

        v = strtod(text, NULL);
        fg_jcs_format_number(v, buf);
        snprintf(expect, sizeof(expect), "[%s]", buf);

        {
            char  in[80];
            snprintf(in, sizeof(in), "[%s]", text);
            assert_canon(jcs, in, expect);
        }
    }
}


/* ------------------------------------------------------------- strings */

static void
test_string_escaping(void **state)
{
    fg_jcs_t  *jcs = *state;

    /* RFC 8785 3.2.2.2: only these are escaped, and in these forms */
    assert_canon(jcs, "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\"",
                 "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\"");
    assert_canon(jcs, "\"\\u0022\\u005c\\/\\u007f\\u00e9\\u2028\"",
                 "\"\\\"\\\\/\x7f\xc3\xa9\xe2\x80\xa8\"");
    assert_canon(jcs, "\"\\uD83D\\uDE00 \\ud83d\\ude00\"",
                 "\"\xf0\x9f\x98\x80 \xf0\x9f\x98\x80\"");
    assert_canon(jcs, "\"</script>\"", "\"</script>\"");
    /* escapes already canonical are kept; others are rewritten, also when
     * they follow canonical ones (the reader restarts and decodes) */
    assert_canon(jcs, "[\"line\\none\\t\\\"q\\\" \\u001f\"]",
                 "[\"line\\none\\t\\\"q\\\" \\u001f\"]");
    assert_canon(jcs, "[\"a\\nb\\u001F c\\u000A d\\u00E9 e\\/\"]",
                 "[\"a\\nb\\u001f c\\n d\xc3\xa9 e/\"]");
    assert_canon(jcs, "[\"\\u0008\\u0009\\u000c\\u000d\\u0000\"]",
                 "[\"\\b\\t\\f\\r\\u0000\"]");
    assert_canon(jcs, "{\"k\\n\":\"v\\n\",\"k\":1}",
                 "{\"k\":1,\"k\\n\":\"v\\n\"}");
    assert_canon(jcs, "\"\\u0041BC\"", "\"ABC\"");
    /* long plain strings go through the 8-byte scanner */
    assert_canon(jcs, "\"abcdefghijklmnopqrstuvwxyz0123456789\\nabcdefgh\"",
                 "\"abcdefghijklmnopqrstuvwxyz0123456789\\nabcdefgh\"");
}


static void
test_key_order(void **state)
{
    fg_jcs_t  *jcs = *state;

    /* UTF-16 code units: U+1F600 (D83D DE00) sorts before U+FB33 */
    assert_canon(jcs, "{\"\xef\xac\xb3\":1,\"\xf0\x9f\x98\x80\":2}",
                 "{\"\xf0\x9f\x98\x80\":2,\"\xef\xac\xb3\":1}");
    assert_canon(jcs, "{\"b\":1,\"a\":2,\"\":3,\"aa\":4,\"A\":5}",
                 "{\"\":3,\"A\":5,\"a\":2,\"aa\":4,\"b\":1}");
    /* escaped keys sort by what they decode to */
    assert_canon(jcs, "{\"\\u0062\":1,\"a\":2}", "{\"a\":2,\"b\":1}");
    /* nested objects are sorted too, arrays keep their order */
    assert_canon(jcs, "{\"z\":{\"y\":1,\"x\":[3,1,2]},\"a\":null}",
                 "{\"a\":null,\"z\":{\"x\":[3,1,2],\"y\":1}}");

    assert_true(fg_jcs_key_compare((const unsigned char *) "\xf0\x9f\x98\x80",
                                   4,
                                   (const unsigned char *) "\xef\xac\xb3", 3)
                < 0);
    assert_true(fg_jcs_key_compare((const unsigned char *) "\xc3\xa9", 2,
                                   (const unsigned char *) "z", 1) > 0);
}


static void
test_many_keys(void **state)
{
    fg_jcs_t     *jcs = *state;
    fg_buffer_t   in, out, exp;
    fg_error_t    err;
    char          item[32];
    int           i;

    /* enough members to take the qsort path */
    fg_buffer_init(&in, 0);
    fg_buffer_init(&exp, 0);
    fg_buffer_append(&in, "{", 1);
    for (i = 99; i >= 0; i--) {
        snprintf(item, sizeof(item), "%s\"k%02d\":%d", i == 99 ? "" : ",",
                 i, i);
        fg_buffer_append(&in, item, strlen(item));
    }
    fg_buffer_append(&in, "}", 1);

    fg_buffer_append(&exp, "{", 1);
    for (i = 0; i < 100; i++) {
        snprintf(item, sizeof(item), "%s\"k%02d\":%d", i ? "," : "", i, i);
        fg_buffer_append(&exp, item, strlen(item));
    }
    fg_buffer_append(&exp, "}", 1);

    assert_int_equal(canon(jcs, (char *) in.data, in.len, &out, &err), FG_OK);
    assert_int_equal(out.len, exp.len);
    assert_memory_equal(out.data, exp.data, exp.len);

    fg_buffer_free(&in);
    fg_buffer_free(&out);
    fg_buffer_free(&exp);
}


/* ------------------------------------------------------------ refusals */

static void
test_refuse_duplicate_keys(void **state)
{
    fg_jcs_t  *jcs = *state;
    const char *dup = "{\"a\":1,\"b\":2,\"a\":3}";
    const char *esc = "{\"model\":1,\"\\u006dodel\":2}";
    const char *deep = "{\"x\":{\"k\":1,\"k\":1}}";

    assert_refused(jcs, dup, strlen(dup), FG_ERR_INVALID, 13,
                   "duplicate object key \"a\"");
    assert_refused(jcs, esc, strlen(esc), FG_ERR_INVALID, 11,
                   "duplicate object key \"model\"");
    assert_refused(jcs, deep, strlen(deep), FG_ERR_INVALID, 12,
                   "duplicate object key \"k\"");
}


static void
test_refuse_surrogates(void **state)
{
    fg_jcs_t  *jcs = *state;

    assert_refused(jcs, "[\"\\ud800\"]", 10, FG_ERR_SYNTAX, 2,
                   "lone high surrogate \\uD800");
    assert_refused(jcs, "[\"ab\\udc00\"]", 12, FG_ERR_SYNTAX, 4,
                   "lone low surrogate \\uDC00");
    assert_refused(jcs, "[\"\\ud83d\\u0041\"]", 16, FG_ERR_SYNTAX, 2,
                   "lone high surrogate");
    assert_refused(jcs, "[\"\\ud83dx\"]", 11, FG_ERR_SYNTAX, 2,
                   "lone high surrogate");
}


static void
test_refuse_utf8(void **state)
{
    fg_jcs_t  *jcs = *state;

    assert_refused(jcs, "\"a\xff\"", 4, FG_ERR_SYNTAX, 2,
                   "invalid UTF-8 byte 0xff");
    assert_refused(jcs, "\"\xc0\xaf\"", 4, FG_ERR_SYNTAX, 1, "overlong");
    assert_refused(jcs, "\"\xe0\x80\xaf\"", 5, FG_ERR_SYNTAX, 1, "overlong");
    assert_refused(jcs, "\"\xed\xa0\x80\"", 5, FG_ERR_SYNTAX, 1,
                   "UTF-8 encoded surrogate");
    assert_refused(jcs, "\"\xf4\x90\x80\x80\"", 6, FG_ERR_SYNTAX, 1,
                   "above U+10FFFF");
    assert_refused(jcs, "\"\xe2\x82\"", 4, FG_ERR_SYNTAX, 3,
                   "invalid UTF-8 continuation byte");
    assert_refused(jcs, "\"\xe2\x82", 3, FG_ERR_SYNTAX, 1,
                   "truncated UTF-8");
    assert_refused(jcs, "\"\x80\"", 3, FG_ERR_SYNTAX, 1, "invalid UTF-8");
    /* outside strings, a non-ASCII byte is just not JSON */
    assert_refused(jcs, "[\xc3\xa9]", 4, FG_ERR_SYNTAX, 1,
                   "expected a value");
}


static void
test_refuse_numbers(void **state)
{
    fg_jcs_t  *jcs = *state;

    assert_refused(jcs, "[NaN]", 5, FG_ERR_SYNTAX, 1, "NaN");
    assert_refused(jcs, "[Infinity]", 10, FG_ERR_SYNTAX, 1, "Infinity");
    assert_refused(jcs, "[-Infinity]", 11, FG_ERR_SYNTAX, 1, "-Infinity");
    assert_refused(jcs, "[1e309]", 7, FG_ERR_INVALID, 1,
                   "beyond the double range");
    assert_refused(jcs, "[-1.8e308]", 10, FG_ERR_INVALID, 1,
                   "beyond the double range");
    assert_refused(jcs, "[1e99999999999999999999]", 24, FG_ERR_INVALID, 1,
                   "beyond the double range");
    assert_refused(jcs, "[01]", 4, FG_ERR_SYNTAX, 1, "leading zero");
    assert_refused(jcs, "[1.]", 4, FG_ERR_SYNTAX, 3, "after '.'");
    assert_refused(jcs, "[.5]", 4, FG_ERR_SYNTAX, 1, "expected a value");
    assert_refused(jcs, "[1e]", 4, FG_ERR_SYNTAX, 3, "exponent");
    assert_refused(jcs, "[-]", 3, FG_ERR_SYNTAX, 2, "digit expected");
    assert_refused(jcs, "[+1]", 4, FG_ERR_SYNTAX, 1, "expected a value");
    assert_refused(jcs, "[0x10]", 6, FG_ERR_SYNTAX, 2, "expected ','");
}


static void
test_refuse_syntax(void **state)
{
    fg_jcs_t  *jcs = *state;

    assert_refused(jcs, "", 0, FG_ERR_SYNTAX, 0, "empty input");
    assert_refused(jcs, "  \n", 3, FG_ERR_SYNTAX, 3, "only whitespace");
    assert_refused(jcs, "{} x", 4, FG_ERR_SYNTAX, 3, "trailing data");
    assert_refused(jcs, "{}{}", 4, FG_ERR_SYNTAX, 2, "trailing data");
    assert_refused(jcs, "[1,]", 4, FG_ERR_SYNTAX, 3, "expected a value");
    assert_refused(jcs, "{\"a\":1,}", 8, FG_ERR_SYNTAX, 7,
                   "expected a string key");
    assert_refused(jcs, "{\"a\" 1}", 7, FG_ERR_SYNTAX, 5, "expected ':'");
    assert_refused(jcs, "{'a':1}", 7, FG_ERR_SYNTAX, 1,
                   "expected a string key");
    assert_refused(jcs, "[tru]", 5, FG_ERR_SYNTAX, 1, "invalid literal");
    assert_refused(jcs, "[1", 2, FG_ERR_SYNTAX, 2, "end of input");
    assert_refused(jcs, "\"abc", 4, FG_ERR_SYNTAX, 0, "unterminated");
    assert_refused(jcs, "\"a\tb\"", 5, FG_ERR_SYNTAX, 2,
                   "unescaped control character 0x09");
    assert_refused(jcs, "\"\\x\"", 4, FG_ERR_SYNTAX, 2, "invalid escape");
    assert_refused(jcs, "\"\\u12G4\"", 8, FG_ERR_SYNTAX, 1,
                   "invalid \\u escape");
    assert_refused(jcs, "\xef\xbb\xbf{}", 5, FG_ERR_SYNTAX, 0,
                   "byte order mark");
    /* a NUL byte ends nothing: it is garbage like any other */
    assert_refused(jcs, "{}\0", 3, FG_ERR_SYNTAX, 2, "trailing data");
    assert_refused(jcs, "[1]\v", 4, FG_ERR_SYNTAX, 3, "trailing data");
}


static void
test_refuse_depth(void **state)
{
    fg_jcs_t     *jcs = fg_jcs_new(8);
    fg_buffer_t   out;
    fg_error_t    err;

    (void) state;

    assert_non_null(jcs);

    /* depth 8 is allowed, the ninth level is refused where it opens */
    assert_canon(jcs, "[[[[[[[[1]]]]]]]]", "[[[[[[[[1]]]]]]]]");
    assert_refused(jcs, "[[[[[[[[[1]]]]]]]]]", 19, FG_ERR_LIMIT, 8,
                   "nesting deeper than 8");
    {
        const char *obj = "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                          "{\"a\":{\"a\":{}}}}}}}}}";
        assert_refused(jcs, obj, strlen(obj), FG_ERR_LIMIT, 40,
                       "nesting deeper than 8");
    }
    fg_jcs_free(jcs);

    /* the default bound holds against a deep document without recursion
     * running away */
    jcs = fg_jcs_new(0);
    {
        size_t  n = 100000, i;
        char   *deep = malloc(2 * n);
        assert_non_null(deep);
        for (i = 0; i < n; i++) {
            deep[i] = '[';
            deep[2 * n - 1 - i] = ']';
        }
        assert_int_equal(canon(jcs, deep, 2 * n, &out, &err), FG_ERR_LIMIT);
        assert_int_equal(err.offset, FG_JCS_DEFAULT_MAX_DEPTH);
        fg_buffer_free(&out);
        free(deep);
    }
    fg_jcs_free(jcs);
}


/* ---------------------------------------------- jansson path agreement */

static void
test_json_value_path(void **state)
{
    fg_jcs_t     *jcs = *state;
    static const char *docs[] = {
        "{\"b\":[1,2.5,-0.0,1e21,1e-7,\"x\\u0001\"],\"a\":{\"\xef\xac\xb3\":"
        "true,\"\xf0\x9f\x98\x80\":false,\"c\":null}}",
        "[\"\\u00e9\\u2028\\\"\\\\\",9007199254740993,0.1,123456789012345678]",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"model\":\"gpt-4o\",\"temperature\":0.2}",
    };
    unsigned char  stage[64];
    fg_buffer_t    a, b;
    fg_sink_t      sink;
    fg_error_t     err;
    json_error_t   jerr;
    json_t        *v;
    size_t         i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_int_equal(canon(jcs, docs[i], strlen(docs[i]), &a, &err),
                         FG_OK);

        v = json_loads(docs[i], JSON_DECODE_INT_AS_REAL, &jerr);
        assert_non_null(v);

        fg_buffer_init(&b, 0);
        fg_sink_to_buffer(&sink, &b, stage, sizeof(stage));
        assert_int_equal(fg_jcs_canonicalize_json(v, 0, &sink, &err), FG_OK);

        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            fail_msg("doc %zu: text path %.*s, jansson path %.*s", i,
                     (int) a.len, a.data, (int) b.len, b.data);
        }

        json_decref(v);
        fg_buffer_free(&a);
        fg_buffer_free(&b);
    }

    /* integers: jansson's int64 goes through the double, as JSON does */
    v = json_pack("[I,I,I]", (json_int_t) 9007199254740993LL,
                  (json_int_t) -42, (json_int_t) 9223372036854775807LL);
    fg_buffer_init(&b, 0);
    fg_sink_to_buffer(&sink, &b, stage, sizeof(stage));
    assert_int_equal(fg_jcs_canonicalize_json(v, 0, &sink, &err), FG_OK);
    assert_int_equal(b.len, strlen("[9007199254740992,-42,"
                                   "9223372036854776000]"));
    assert_memory_equal(b.data, "[9007199254740992,-42,9223372036854776000]",
                        b.len);
    json_decref(v);
    fg_buffer_free(&b);
}


static void
test_json_value_depth(void **state)
{
    unsigned char  stage[64];
    fg_buffer_t    b;
    fg_sink_t      sink;
    fg_error_t     err;
    json_t        *v, *inner;
    int            i;

    (void) state;

    v = json_array();
    for (i = 0; i < 10; i++) {
        inner = json_array();
        json_array_append_new(inner, v);
        v = inner;
    }

    fg_buffer_init(&b, 0);
    fg_sink_to_buffer(&sink, &b, stage, sizeof(stage));
    assert_int_equal(fg_jcs_canonicalize_json(v, 5, &sink, &err),
                     FG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "nesting deeper than 5"));
    fg_buffer_free(&b);
    json_decref(v);
}


/* ---------------------------------------------- vectors/jcs (our own) */

static void
test_own_vectors(void **state)
{
    fg_jcs_t       *jcs = *state;
    char            dir[512], path[1024], base[256];
    DIR            *d;
    struct dirent  *e;
    fg_buffer_t     in, want, out;
    fg_error_t      err;
    size_t          n, valid = 0, invalid = 0;
    int             rc;

    /* valid/NAME.json -> valid/NAME.canon */
    snprintf(dir, sizeof(dir), "%s/vectors/jcs/valid", FG_SOURCE_DIR);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) {
            continue;
        }
        snprintf(base, sizeof(base), "%.*s", (int) (n - 5), e->d_name);

        snprintf(path, sizeof(path), "%s/%s.json", dir, base);
        assert_int_equal(test_read_file(path, &in), 0);
        snprintf(path, sizeof(path), "%s/%s.canon", dir, base);
        assert_int_equal(test_read_file(path, &want), 0);

        rc = canon(jcs, (char *) in.data, in.len, &out, &err);
        if (rc != FG_OK) {
            fail_msg("vectors/jcs/valid/%s: %s", base, err.msg);
        }
        if (out.len != want.len || memcmp(out.data, want.data, want.len)) {
            fail_msg("vectors/jcs/valid/%s: got %.*s", base, (int) out.len,
                     out.data);
        }
        valid++;

        fg_buffer_free(&in);
        fg_buffer_free(&want);
        fg_buffer_free(&out);
    }
    closedir(d);

    /* invalid/NAME.json -> invalid/NAME.err holds the message */
    snprintf(dir, sizeof(dir), "%s/vectors/jcs/invalid", FG_SOURCE_DIR);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) {
            continue;
        }
        snprintf(base, sizeof(base), "%.*s", (int) (n - 5), e->d_name);

        snprintf(path, sizeof(path), "%s/%s.json", dir, base);
        assert_int_equal(test_read_file(path, &in), 0);
        snprintf(path, sizeof(path), "%s/%s.err", dir, base);
        assert_int_equal(test_read_file(path, &want), 0);
        while (want.len > 0 && want.data[want.len - 1] == '\n') {
            want.data[--want.len] = '\0';
        }

        rc = canon(jcs, (char *) in.data, in.len, &out, &err);
        if (rc == FG_OK) {
            fail_msg("vectors/jcs/invalid/%s was accepted", base);
        }
        if (strcmp(err.msg, (char *) want.data) != 0) {
            fail_msg("vectors/jcs/invalid/%s: \"%s\", expected \"%s\"", base,
                     err.msg, want.data);
        }
        invalid++;

        fg_buffer_free(&in);
        fg_buffer_free(&want);
        fg_buffer_free(&out);
    }
    closedir(d);

    assert_true(valid >= 10);
    assert_true(invalid >= 10);
}


/* the shared UTF-8 module the reader, bundles and schemas use */
static void
test_utf8_module(void **state)
{
    const unsigned char  ok[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    fg_utf8_error_t      why;
    uint32_t             cp;
    size_t               at;

    (void) state;

    assert_true(fg_utf8_valid(ok, sizeof(ok) - 1));
    assert_int_equal(fg_utf8_length(ok, sizeof(ok) - 1), 4);
    assert_int_equal(fg_utf8_sequence(ok + 6, 4, &cp, &why, &at), 4);
    assert_int_equal(cp, 0x1f600);

    assert_false(fg_utf8_valid((const unsigned char *) "\xc0\xaf", 2));
    assert_false(fg_utf8_valid((const unsigned char *) "\xed\xa0\x80", 3));
    assert_false(fg_utf8_valid((const unsigned char *) "\xf4\x90\x80\x80",
                               4));
    assert_false(fg_utf8_valid((const unsigned char *) "\xe2\x82", 2));
    assert_int_equal(fg_utf8_sequence((const unsigned char *) "\xe2\x82x",
                                      3, &cp, &why, &at), 0);
    assert_int_equal(why, FG_UTF8_BAD_CONTINUATION);
    assert_int_equal(at, 2);
    assert_int_equal(fg_utf8_sequence((const unsigned char *) "\xed\xbf\xbf",
                                      3, &cp, &why, &at), 0);
    assert_int_equal(why, FG_UTF8_SURROGATE);
}


/* a reused canonicalizer gives the same bytes as a fresh one */
static void
test_reuse(void **state)
{
    fg_jcs_t    *jcs = *state;
    fg_buffer_t  a, b;
    fg_error_t   err;
    const char  *doc = "{\"k\\u0031\":\"v\\n\",\"a\":[1,{\"z\":1,\"y\":2}]}";

    assert_int_equal(canon(jcs, doc, strlen(doc), &a, &err), FG_OK);
    assert_int_equal(canon(jcs, "[1,", 3, &b, &err), FG_ERR_SYNTAX);
    fg_buffer_free(&b);
    assert_int_equal(canon(jcs, doc, strlen(doc), &b, &err), FG_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    fg_buffer_free(&a);
    fg_buffer_free(&b);
}


/*
 * fg_jcs_tree_json() gives what json_loadb() gives for the same text:
 * every vector of vectors/jcs/valid and a document of every kind of
 * value (members in input order, NUL in a string and a key, escapes,
 * integers and reals, nesting).
 */
static void
test_tree_json(void **state)
{
    fg_jcs_t       *jcs = *state;
    char            dir[512], path[1024];
    DIR            *d;
    struct dirent  *e;
    fg_buffer_t     in, out;
    fg_error_t      err;
    json_t         *a, *b;
    json_error_t    jerr;
    size_t          n, seen = 0;
    const char     *doc = "{\"z\":[1,-2.5,1e3,true,false,null,\"a\\u0000b\"],"
                          "\"a\\nk\":{\"\\u00e9\":{}},\"m\":[],"
                          "\"big\":9223372036854775807}";
    void           *it;

    snprintf(dir, sizeof(dir), "%s/vectors/jcs/valid", FG_SOURCE_DIR);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        assert_int_equal(test_read_file(path, &in), 0);

        a = json_loadb((char *) in.data, in.len, JSON_DECODE_ANY
                       | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
        if (a != NULL
            && canon(jcs, (char *) in.data, in.len, &out, &err) == FG_OK)
        {
            b = fg_jcs_tree_json(jcs, 0, &err);
            if (b == NULL || !json_equal(a, b)) {
                fail_msg("vectors/jcs/valid/%s: the tree differs",
                         e->d_name);
            }
            json_decref(b);
            fg_buffer_free(&out);
            seen++;
        } else {
            print_message("tree_json: %s skipped (%s)\n", e->d_name,
                          a == NULL ? jerr.text : err.msg);
        }
        json_decref(a);
        fg_buffer_free(&in);
    }
    closedir(d);
    assert_true(seen >= 8);

    /* a NUL in a key is refused, as json_loadb() refuses it */
    assert_int_equal(canon(jcs, "{\"a\\u0000\":1}", 13, &out, &err), FG_OK);
    fg_buffer_free(&out);
    assert_null(fg_jcs_tree_json(jcs, 0, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);

    a = json_loadb(doc, strlen(doc), JSON_ALLOW_NUL, &jerr);
    assert_non_null(a);
    assert_int_equal(canon(jcs, doc, strlen(doc), &out, &err), FG_OK);
    fg_buffer_free(&out);
    b = fg_jcs_tree_json(jcs, 0, &err);
    assert_non_null(b);
    assert_true(json_equal(a, b));

    /* the same member order as the text's, as json_loadb() keeps it */
    it = json_object_iter(b);
    assert_string_equal(json_object_iter_key(it), "z");
    it = json_object_iter_next(b, it);
    assert_int_equal(json_object_iter_key_len(it), 3);
    assert_true(json_is_integer(json_object_get(b, "big")));
    assert_true(json_is_real(json_array_get(json_object_get(b, "z"), 2)));

    json_decref(a);
    json_decref(b);
}


static int
setup(void **state)
{
    *state = fg_jcs_new(0);
    return *state == NULL;
}


static int
teardown(void **state)
{
    fg_jcs_free(*state);
    return 0;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc8785_vectors),
        cmocka_unit_test(test_rfc8785_outhex),
        cmocka_unit_test(test_es6_numbers),
        cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_format_number_direct),
        cmocka_unit_test(test_number_paths_agree),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_refuse_duplicate_keys),
        cmocka_unit_test(test_refuse_surrogates),
        cmocka_unit_test(test_refuse_utf8),
        cmocka_unit_test(test_refuse_numbers),
        cmocka_unit_test(test_refuse_syntax),
        cmocka_unit_test(test_refuse_depth),
        cmocka_unit_test(test_json_value_path),
        cmocka_unit_test(test_json_value_depth),
        cmocka_unit_test(test_own_vectors),
        cmocka_unit_test(test_tree_json),
        cmocka_unit_test(test_utf8_module),
        cmocka_unit_test(test_reuse),
    };

    return cmocka_run_group_tests_name("jcs", tests, setup, teardown);
}

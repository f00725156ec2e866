/*
 * test_trace.c -- W3C Trace Context Level 1: traceparent parsing (the
 * spec's examples, its versioning rules and every malformed case DESIGN.md
 * names), continuing and starting a trace, the outgoing header, and the
 * tracestate check.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fg_trace.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID  "00f067aa0ba902b7"
#define Z32  "00000000000000000000000000000000"
#define Z16  "0000000000000000"


static int
parse(const char *s, fg_traceparent_t *tp, fg_error_t *err)
{
    return fg_traceparent_parse(s, strlen(s), tp, err);
}


static void
test_spec_examples(void **state)
{
    fg_traceparent_t  tp;
    fg_error_t        err;

    (void) state;

    /* 3.2.4: sampled and not sampled */
    assert_int_equal(parse("00-" TID "-" PID "-01", &tp, &err), FG_OK);
    assert_int_equal(tp.version, 0);
    assert_string_equal(tp.trace_id, TID);
    assert_string_equal(tp.parent_id, PID);
    assert_int_equal(tp.flags, 0x01);

    assert_int_equal(parse("00-" TID "-" PID "-00", &tp, &err), FG_OK);
    assert_int_equal(tp.flags, 0x00);

    /* 3.1 */
    assert_int_equal(parse("00-0af7651916cd43dd8448eb211c80319c"
                           "-b7ad6b7169203331-01", &tp, &err), FG_OK);
    assert_string_equal(tp.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(tp.parent_id, "b7ad6b7169203331");
}


static void
test_flags_variants(void **state)
{
    static const struct {
        const char  *flags;
        int          value;
    } ok[] = {
        { "00", 0x00 }, { "01", 0x01 }, { "02", 0x02 }, { "09", 0x09 },
        { "80", 0x80 }, { "fe", 0xfe }, { "ff", 0xff }, { "a5", 0xa5 },
    };
    static const char  *bad[] = { "0", "001", "0g", "0F", "FF", "-1", "  ",
                                  "x1", "" };
    fg_traceparent_t     tp;
    char                 s[80];
    size_t               i;

    (void) state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(s, sizeof(s), "00-" TID "-" PID "-%s", ok[i].flags);
        assert_int_equal(parse(s, &tp, NULL), FG_OK);
        assert_int_equal(tp.flags, ok[i].value);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(s, sizeof(s), "00-" TID "-" PID "-%s", bad[i]);
        assert_int_equal(parse(s, &tp, NULL), FG_ERR_SYNTAX);
    }
}


static void
test_invalid(void **state)
{
    static const char  *bad[] = {
        /* absent / empty */
        "",
        "   ",
        "\t",
        /* all-zero ids */
        "00-" Z32 "-" PID "-01",
        "00-" TID "-" Z16 "-01",
        "00-" Z32 "-" Z16 "-00",
        /* version ff, even well-formed */
        "ff-" TID "-" PID "-01",
        "ff-" TID "-" PID "-01-extra",
        /* version not 2 lowercase hex digits */
        "0-" TID "-" PID "-01",
        "000-" TID "-" PID "-01",
        "0A-" TID "-" PID "-01",
        "FF-" TID "-" PID "-01",
        "xx-" TID "-" PID "-01",
        "0g-" TID "-" PID "-01",
        /* uppercase hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473A-" PID "-01",
        "00-" TID "-00F067AA0BA902B7-01",
        "00-" TID "-" PID "-0A",
        /* wrong lengths */
        "00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47366-" PID "-01",
        "00-" TID "-00f067aa0ba902b-01",
        "00-" TID "-00f067aa0ba902b77-01",
        "00-" TID "-" PID "-1",
        "00-" TID "-" PID "-011",
        "00-" TID "-" PID,
        "00-" TID "-" PID "-",
        "00-" TID,
        "00",
        "00-",
        /* version 00 with anything after the flags */
        "00-" TID "-" PID "-01-",
        "00-" TID "-" PID "-01-what-the-future-will-be-like",
        "00-" TID "-" PID "-01.",
        /* wrong separators */
        "00_" TID "-" PID "-01",
        "00-" TID "_" PID "-01",
        "00-" TID "-" PID "_01",
        "00 " TID "-" PID "-01",
        "00-" TID "." PID "-01",
        "00-" TID "-" PID ".01",
        "00--" TID PID "-01",
        /* non-hex */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-" PID "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47 6-" PID "-01",
        "00-" TID "-00f067aa0ba902bz-01",
        "00-" TID "-00f067aa0ba9-2b7-01",
        "00-" TID "-" PID "-0z",
        "00-" TID "-" PID "-\xc3\xa9",
        /* whitespace inside is not OWS */
        "00 -" TID "-" PID "-01",
        "00-" TID "-" PID " -01",
        /* a higher version shorter than 55 or not '-'-continued */
        "cc-" TID "-" PID,
        "cc-" TID "-" PID "-0",
        "cc-" TID "-" PID "-01.what-the-future-will-be-like",
        "cc-" TID "-" PID "-011",
        "cc-" TID "-" PID "-01x",
        /* a higher version still needs a valid 00 prefix */
        "cc-" Z32 "-" PID "-01-x",
        "cc-" TID "-" Z16 "-01",
        "cc-" TID "-00F067AA0BA902B7-01-x",
        "cc-" TID "_" PID "-01-x",
    };
    fg_traceparent_t     tp;
    fg_error_t           err;
    size_t               i;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (parse(bad[i], &tp, &err) != FG_ERR_SYNTAX) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_int_equal(err.code, FG_ERR_SYNTAX);
        assert_true(err.msg[0] != '\0');
        assert_true(err.offset <= strlen(bad[i]));
    }

    /* NULL is absent */
    assert_int_equal(fg_traceparent_parse(NULL, 0, &tp, NULL), FG_ERR_SYNTAX);

    /* the reason names the problem */
    assert_int_equal(parse("00-" Z32 "-" PID "-01", &tp, &err),
                     FG_ERR_SYNTAX);
    assert_non_null(strstr(err.msg, "all zero"));
    assert_int_equal(err.offset, 3);

    assert_int_equal(parse("ff-" TID "-" PID "-01", &tp, &err),
                     FG_ERR_SYNTAX);
    assert_non_null(strstr(err.msg, "ff"));

    assert_int_equal(parse("00-" TID "-00F067AA0BA902B7-01", &tp, &err),
                     FG_ERR_SYNTAX);
    assert_int_equal(err.offset, 38);
}


static void
test_embedded_nul(void **state)
{
    static const char  s[] = "00-" TID "-" PID "-01";
    char               buf[sizeof(s)];
    fg_traceparent_t   tp;

    (void) state;

    /* len counts, not the NUL: a NUL inside the value is not hex */
    memcpy(buf, s, sizeof(s));
    buf[10] = '\0';
    assert_int_equal(fg_traceparent_parse(buf, sizeof(s) - 1, &tp, NULL),
                     FG_ERR_SYNTAX);

    /* a value that is not NUL-terminated */
    memcpy(buf, s, sizeof(s));
    buf[sizeof(s) - 1] = 'x';
    assert_int_equal(fg_traceparent_parse(buf, sizeof(s) - 1, &tp, NULL),
                     FG_OK);
    assert_int_equal(fg_traceparent_parse(buf, sizeof(s), &tp, NULL),
                     FG_ERR_SYNTAX);
}


static void
test_higher_version(void **state)
{
    fg_traceparent_t  tp;

    (void) state;

    /* exactly 55: parsed by the 00 prefix */
    assert_int_equal(parse("cc-" TID "-" PID "-01", &tp, NULL), FG_OK);
    assert_int_equal(tp.version, 0xcc);
    assert_string_equal(tp.trace_id, TID);
    assert_string_equal(tp.parent_id, PID);
    assert_int_equal(tp.flags, 0x01);

    /* extra fields after '-' are ignored */
    assert_int_equal(parse("cc-" TID "-" PID "-01-what-the-future-will-be"
                           "-like", &tp, NULL), FG_OK);
    assert_int_equal(tp.version, 0xcc);
    assert_string_equal(tp.trace_id, TID);
    assert_string_equal(tp.parent_id, PID);

    assert_int_equal(parse("01-" TID "-" PID "-00-", &tp, NULL), FG_OK);
    assert_int_equal(tp.version, 0x01);
    assert_int_equal(tp.flags, 0x00);

    assert_int_equal(parse("fe-" TID "-" PID "-09-\x01\xff anything",
                           &tp, NULL), FG_OK);
    assert_int_equal(tp.version, 0xfe);
    assert_int_equal(tp.flags, 0x09);
}


static void
test_ows(void **state)
{
    static const char  *ok[] = {
        " 00-" TID "-" PID "-01",
        "\t00-" TID "-" PID "-01",
        "00-" TID "-" PID "-01 ",
        "00-" TID "-" PID "-01\t",
        "\t 00-" TID "-" PID "-01 \t",
        "  cc-" TID "-" PID "-01-x  ",
    };
    fg_traceparent_t     tp;
    fg_error_t           err;
    size_t               i;

    (void) state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(ok[i], &tp, NULL), FG_OK);
        assert_string_equal(tp.trace_id, TID);
        assert_string_equal(tp.parent_id, PID);
    }

    /* only SP and HTAB are OWS; offsets count from the untrimmed value */
    assert_int_equal(parse("\n00-" TID "-" PID "-01", &tp, NULL),
                     FG_ERR_SYNTAX);
    assert_int_equal(parse("00-" TID "-" PID "-01\r", &tp, NULL),
                     FG_ERR_SYNTAX);
    assert_int_equal(parse("  00-" TID "-" PID "-0G", &tp, &err),
                     FG_ERR_SYNTAX);
    assert_int_equal(err.offset, 2 + 54);
}


static void
test_format_roundtrip(void **state)
{
    fg_traceparent_t  tp, back;
    char              out[FG_TRACEPARENT_SIZE];

    (void) state;

    assert_int_equal(parse("cc-" TID "-" PID "-a5-more", &tp, NULL), FG_OK);
    fg_traceparent_format(&tp, out);
    assert_string_equal(out, "00-" TID "-" PID "-a5");
    assert_int_equal(strlen(out), FG_TRACEPARENT_LEN);

    assert_int_equal(parse(out, &back, NULL), FG_OK);
    assert_int_equal(back.version, 0);
    assert_string_equal(back.trace_id, tp.trace_id);
    assert_string_equal(back.parent_id, tp.parent_id);
    assert_int_equal(back.flags, tp.flags);
}


static void
test_continue_valid(void **state)
{
    static const uint8_t  flags[] = { 0x00, 0x01, 0x02, 0x03, 0xff, 0xfe };
    fg_traceparent_t      in, back;
    fg_trace_t            out, out2;
    char                  header[FG_TRACEPARENT_SIZE];
    char                  s[80];
    size_t                i;

    (void) state;

    for (i = 0; i < sizeof(flags); i++) {
        snprintf(s, sizeof(s), "00-" TID "-" PID "-%02x", flags[i]);
        assert_int_equal(parse(s, &in, NULL), FG_OK);

        memset(header, 'x', sizeof(header));
        assert_int_equal(fg_trace_continue(&in, &out, header), FG_OK);

        assert_string_equal(out.trace_id, TID);
        assert_string_equal(out.parent_span_id, PID);
        assert_int_equal(strlen(out.span_id), FG_SPAN_ID_LEN);
        assert_string_not_equal(out.span_id, Z16);
        assert_string_not_equal(out.span_id, PID);

        /* the outgoing header is well-formed: parse it back */
        assert_int_equal(strlen(header), FG_TRACEPARENT_LEN);
        assert_int_equal(parse(header, &back, NULL), FG_OK);
        assert_int_equal(back.version, 0);
        assert_string_equal(back.trace_id, TID);
        assert_string_equal(back.parent_id, out.span_id);
        /* the sampled flag is kept, the reserved ones sent as zero */
        assert_int_equal(back.flags, flags[i] & FG_TRACE_FLAG_SAMPLED);
    }

    /* a fresh span id each call */
    assert_int_equal(fg_trace_continue(&in, &out2, header), FG_OK);
    assert_string_not_equal(out.span_id, out2.span_id);

    /* a higher version is continued as 00 */
    assert_int_equal(parse("cc-" TID "-" PID "-01-future", &in, NULL), FG_OK);
    assert_int_equal(fg_trace_continue(&in, &out, header), FG_OK);
    assert_int_equal(strncmp(header, "00-" TID "-", 36), 0);
    assert_string_equal(header + 52, "-01");
}


static void
test_continue_new(void **state)
{
    fg_traceparent_t  back;
    fg_trace_t        out, out2;
    char              header[FG_TRACEPARENT_SIZE];

    (void) state;

    assert_int_equal(fg_trace_continue(NULL, &out, header), FG_OK);
    assert_int_equal(strlen(out.trace_id), FG_TRACE_ID_LEN);
    assert_int_equal(strlen(out.span_id), FG_SPAN_ID_LEN);
    assert_string_not_equal(out.trace_id, Z32);
    assert_string_not_equal(out.span_id, Z16);
    assert_string_equal(out.parent_span_id, "");

    assert_int_equal(parse(header, &back, NULL), FG_OK);
    assert_int_equal(back.version, 0);
    assert_string_equal(back.trace_id, out.trace_id);
    assert_string_equal(back.parent_id, out.span_id);
    assert_int_equal(back.flags, FG_TRACE_FLAGS_NEW);
    assert_int_equal(back.flags, 0x01);

    assert_int_equal(fg_trace_continue(NULL, &out2, header), FG_OK);
    assert_string_not_equal(out.trace_id, out2.trace_id);
    assert_string_not_equal(out.span_id, out2.span_id);
}


static void
test_continue_refuses_bad_input(void **state)
{
    fg_traceparent_t  in;
    fg_trace_t        out;
    char              header[FG_TRACEPARENT_SIZE];

    (void) state;

    assert_int_equal(parse("00-" TID "-" PID "-01", &in, NULL), FG_OK);
    in.trace_id[0] = 'G';
    assert_int_equal(fg_trace_continue(&in, &out, header), FG_ERR_INVALID);

    assert_int_equal(parse("00-" TID "-" PID "-01", &in, NULL), FG_OK);
    memcpy(in.parent_id, Z16, sizeof(in.parent_id));
    assert_int_equal(fg_trace_continue(&in, &out, header), FG_ERR_INVALID);

    assert_int_equal(parse("00-" TID "-" PID "-01", &in, NULL), FG_OK);
    in.trace_id[5] = '\0';
    assert_int_equal(fg_trace_continue(&in, &out, header), FG_ERR_INVALID);
}


static int
ts(const char *s)
{
    return fg_tracestate_check(s, strlen(s));
}


static void
test_tracestate_valid(void **state)
{
    static const char  *ok[] = {
        "",
        " ",
        ",",
        " , \t, ",
        "congo=t61rcWkgMzE",
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7",
        "vendorname1=opaqueValue1,vendorname2=opaqueValue2",
        "foo=1 , bar=2",
        "\tfoo=1\t,\tbar=2\t",
        "foo=1,,bar=2",
        ",foo=1,",
        "foo= leading spaces kept",
        "foo=a b",
        "a=!\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "b=[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        "abcdefghijklmnopqrstuvwxyz0123456789_-*/=1",
        "t@s=1",
        "0tenant@sys=1",
        "fw529a3039@dt=1,acme@x_-*/y=2",
    };
    size_t               i;

    (void) state;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ts(ok[i]) != FG_OK) {
            fail_msg("refused \"%s\"", ok[i]);
        }
    }

    assert_int_equal(fg_tracestate_check(NULL, 0), FG_OK);
}


static void
test_tracestate_invalid(void **state)
{
    static const char  *bad[] = {
        "foo",
        "foo=",
        "=1",
        "foo=  ",
        "foo=1,bar",
        "Foo=1",
        "fOo=1",
        "1foo=1",
        "_foo=1",
        "foo.bar=1",
        "foo bar=1",
        "foo =1",
        "foo=1=2",
        "foo=a\tb",
        "foo=\x7f",
        "foo=\xc3\xa9",
        "foo=a\nb",
        "@s=1",
        "t@=1",
        "t@1s=1",
        "T@s=1",
        "_t@s=1",
        "t@s@x=1",
        "t@S=1",
        "foo=1,foo=2",
        "foo=1,bar=2,foo=3",
        "t@s=1, t@s=2",
    };
    size_t               i;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ts(bad[i]) != FG_ERR_SYNTAX) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }

    /* a NUL inside the value is not a character a value may hold */
    assert_int_equal(fg_tracestate_check("foo=a\0b", 7), FG_ERR_SYNTAX);
}


static void
test_tracestate_bounds(void **state)
{
    char    s[2048];
    size_t  i, n;

    (void) state;

    /* keys: simple up to 256, tenant up to 241, system up to 14 */
    memset(s, 'k', 256);
    memcpy(s + 256, "=v", 3);
    assert_int_equal(ts(s), FG_OK);
    memset(s, 'k', 257);
    memcpy(s + 257, "=v", 3);
    assert_int_equal(ts(s), FG_ERR_SYNTAX);

    memset(s, 't', 241);
    memcpy(s + 241, "@ssssssssssssss=v", 18);
    assert_int_equal(ts(s), FG_OK);
    memset(s, 't', 242);
    memcpy(s + 242, "@ssssssssssssss=v", 18);
    assert_int_equal(ts(s), FG_ERR_SYNTAX);
    memcpy(s, "t@sssssssssssssss=v", 20);       /* system id of 15 */
    assert_int_equal(ts(s), FG_ERR_SYNTAX);

    /* values: up to 256 */
    memcpy(s, "k=", 2);
    memset(s + 2, 'v', 256);
    s[258] = '\0';
    assert_int_equal(ts(s), FG_OK);
    memset(s + 2, 'v', 257);
    s[259] = '\0';
    assert_int_equal(ts(s), FG_ERR_SYNTAX);

    /* 32 members, not 33 */
    n = 0;
    for (i = 0; i < 32; i++) {
        n += (size_t) sprintf(s + n, "%sk%zu=%zu", i ? "," : "", i, i);
    }
    assert_int_equal(ts(s), FG_OK);
    n += (size_t) sprintf(s + n, ",k32=32");
    assert_int_equal(ts(s), FG_ERR_LIMIT);

    /* empty members do not count */
    n = 0;
    for (i = 0; i < 32; i++) {
        n += (size_t) sprintf(s + n, "%sk%zu=%zu,,", i ? " , " : "", i, i);
    }
    assert_true(n <= FG_TRACESTATE_MAX);
    assert_int_equal(ts(s), FG_OK);

    /* 512 characters in all, not 513 */
    memcpy(s, "a=", 2);
    memset(s + 2, 'x', 251);
    memcpy(s + 253, ",b=", 3);
    memset(s + 256, 'y', 256);
    s[512] = '\0';
    assert_int_equal(strlen(s), 512);
    assert_int_equal(ts(s), FG_OK);
    s[512] = ' ';
    s[513] = '\0';
    assert_int_equal(ts(s), FG_ERR_LIMIT);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_flags_variants),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_higher_version),
        cmocka_unit_test(test_ows),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_continue_valid),
        cmocka_unit_test(test_continue_new),
        cmocka_unit_test(test_continue_refuses_bad_input),
        cmocka_unit_test(test_tracestate_valid),
        cmocka_unit_test(test_tracestate_invalid),
        cmocka_unit_test(test_tracestate_bounds),
    };

    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}

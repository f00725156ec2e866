/*
 * test_schema.c -- unit tests for fg_schema: every keyword accepting and
 * refusing, the exact error lines, $refs, compile-time refusals of bad
 * schemas and the bounds on hostile schemas and instances.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fg_schema.h"

#define DOC  "T.schema.json"


/* ---------------------------------------------------------------- helpers */

static fg_schema_set_t *
compile_ok(const char *text)
{
    fg_schema_set_t  *set;
    fg_error_t        err;
    int               rc;

    set = fg_schema_set_new();
    assert_non_null(set);

    rc = fg_schema_set_add(set, DOC, text, strlen(text), &err);
    if (rc == FG_OK) {
        rc = fg_schema_set_compile(set, &err);
    }
    if (rc != FG_OK) {
        fail_msg("schema refused: %s", err.msg);
    }

    return set;
}


/* Compile text; returns the status, with err->msg. */
static int
compile_rc(const char *text, fg_error_t *err)
{
    fg_schema_set_t  *set;
    int               rc;

    set = fg_schema_set_new();
    assert_non_null(set);

    rc = fg_schema_set_add(set, DOC, text, strlen(text), err);
    if (rc == FG_OK) {
        rc = fg_schema_set_compile(set, err);
        if (rc == FG_OK) {
            assert_non_null(fg_schema_set_get(set, DOC));
        } else {
            assert_null(fg_schema_set_get(set, DOC));
        }
    }

    fg_schema_set_free(set);

    return rc;
}


static void
compile_fails(const char *text, int code, const char *msg)
{
    fg_error_t  err;
    int         rc;

    memset(&err, 0, sizeof(err));
    rc = compile_rc(text, &err);

    if (rc != code || (msg != NULL && strcmp(err.msg, msg) != 0)) {
        fail_msg("schema %s: got %d \"%s\", want %d \"%s\"", text, rc,
                 err.msg, code, msg != NULL ? msg : "*");
    }
}


static json_t *
parse(const char *text)
{
    json_error_t  jerr;
    json_t       *v;

    v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        fail_msg("bad test instance %s: %s", text, jerr.text);
    }

    return v;
}


static int
run(const char *schema, const char *instance, fg_schema_report_t *r)
{
    fg_schema_set_t  *set;
    json_t           *v;
    int               rc;

    set = compile_ok(schema);
    v = parse(instance);

    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, r);

    json_decref(v);
    fg_schema_set_free(set);

    return rc;
}


static void
valid(const char *schema, const char *instance)
{
    fg_schema_report_t  r;
    int                 rc;

    rc = run(schema, instance, &r);
    if (rc != FG_OK) {
        fail_msg("%s against %s: %d, first line \"%s\"", instance, schema,
                 rc, r.count > 0 ? r.line[0] : "");
    }
    assert_int_equal(r.count, 0);
}


/* Invalid, with exactly the lines given (NULL-terminated). */
static void
invalid(const char *schema, const char *instance, ...)
{
    fg_schema_report_t  r;
    const char         *want;
    unsigned            n;
    va_list             ap;
    int                 rc;

    rc = run(schema, instance, &r);
    if (rc != FG_ERR_INVALID) {
        fail_msg("%s against %s: want invalid, got %d", instance, schema, rc);
    }

    va_start(ap, instance);
    for (n = 0; (want = va_arg(ap, const char *)) != NULL; n++) {
        if (n >= r.count) {
            fail_msg("%s against %s: missing line \"%s\"", instance, schema,
                     want);
        }
        if (strcmp(r.line[n], want) != 0) {
            fail_msg("%s against %s: line %u \"%s\", want \"%s\"", instance,
                     schema, n, r.line[n], want);
        }
    }
    va_end(ap);

    if (n != r.count) {
        fail_msg("%s against %s: %u lines, want %u; extra \"%s\"", instance,
                 schema, r.count, n, r.line[n]);
    }

    assert_int_equal(r.truncated, 0);
}


/* ------------------------------------------------------------------- type */

static void
test_type(void **state)
{
    (void) state;

    valid("{\"type\":\"object\"}", "{}");
    valid("{\"type\":\"array\"}", "[]");
    valid("{\"type\":\"string\"}", "\"x\"");
    valid("{\"type\":\"number\"}", "1");
    valid("{\"type\":\"number\"}", "1.5");
    valid("{\"type\":\"integer\"}", "-7");
    valid("{\"type\":\"integer\"}", "1.0");
    valid("{\"type\":\"integer\"}", "1e300");
    valid("{\"type\":\"boolean\"}", "false");
    valid("{\"type\":\"null\"}", "null");
    valid("{\"type\":[\"string\",\"null\"]}", "null");

    invalid("{\"type\":\"object\"}", "[]",
            "(root): expected object, got array", NULL);
    invalid("{\"type\":\"array\"}", "{}",
            "(root): expected array, got object", NULL);
    invalid("{\"type\":\"string\"}", "1",
            "(root): expected string, got integer", NULL);
    invalid("{\"type\":\"number\"}", "\"1\"",
            "(root): expected number, got string", NULL);
    invalid("{\"type\":\"integer\"}", "1.5",
            "(root): expected integer, got number", NULL);
    invalid("{\"type\":\"boolean\"}", "null",
            "(root): expected boolean, got null", NULL);
    invalid("{\"type\":\"null\"}", "true",
            "(root): expected null, got boolean", NULL);
    invalid("{\"type\":[\"string\",\"null\"]}", "3",
            "(root): expected string or null, got integer", NULL);
    invalid("{\"type\":[\"null\",\"boolean\",\"array\"]}", "2.5",
            "(root): expected null or boolean or array, got number", NULL);
}


static void
test_type_failure_stops_value(void **state)
{
    (void) state;

    /* no enum or minLength error after the type error */
    invalid("{\"type\":\"string\",\"enum\":[\"a\"],\"minLength\":3}", "1",
            "(root): expected string, got integer", NULL);

    /* but siblings are still checked */
    invalid("{\"properties\":{\"a\":{\"type\":\"string\"},"
            "\"b\":{\"type\":\"integer\"}}}",
            "{\"a\":1,\"b\":\"x\"}",
            "/a: expected string, got integer",
            "/b: expected integer, got string", NULL);
}


/* ------------------------------------------------------------ const, enum */

static void
test_const(void **state)
{
    (void) state;

    valid("{\"const\":\"a\"}", "\"a\"");
    valid("{\"const\":1}", "1.0");
    valid("{\"const\":1.0}", "1");
    valid("{\"const\":null}", "null");
    valid("{\"const\":{\"a\":[1,2],\"b\":true}}",
          "{\"b\":true,\"a\":[1.0,2]}");

    invalid("{\"const\":\"a\"}", "\"b\"",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":1}", "1.5",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":1}", "\"1\"",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":null}", "false",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":[1,2]}", "[2,1]",
            "(root): does not equal the required constant", NULL);
    invalid("{\"const\":9007199254740993}", "9007199254740992.0",
            "(root): does not equal the required constant", NULL);
}


static void
test_enum(void **state)
{
    (void) state;

    valid("{\"enum\":[\"allow\",\"deny\"]}", "\"deny\"");
    valid("{\"enum\":[1,\"x\",null]}", "1.0");
    valid("{\"enum\":[2.0]}", "2");
    valid("{\"enum\":[[1,{\"k\":0}]]}", "[1,{\"k\":0.0}]");

    invalid("{\"enum\":[\"allow\",\"deny\"]}", "\"Allow\"",
            "(root): not one of the allowed values", NULL);
    invalid("{\"enum\":[1,2]}", "1.25",
            "(root): not one of the allowed values", NULL);
    invalid("{\"enum\":[true]}", "1",
            "(root): not one of the allowed values", NULL);

    /* type, const, enum in that order */
    invalid("{\"type\":\"string\",\"const\":\"a\",\"enum\":[\"b\"]}", "\"c\"",
            "(root): does not equal the required constant",
            "(root): not one of the allowed values", NULL);
}


/* ---------------------------------------------------------------- objects */

static void
test_properties_required(void **state)
{
    const char  *s;

    (void) state;

    s = "{\"type\":\"object\",\"required\":[\"id\",\"ts\"],"
        "\"properties\":{\"id\":{\"type\":\"string\"},"
        "\"ts\":{\"type\":\"integer\"}}}";

    valid(s, "{\"id\":\"x\",\"ts\":1,\"other\":[]}");

    invalid(s, "{}",
            "(root): missing required property \"id\"",
            "(root): missing required property \"ts\"", NULL);

    invalid(s, "{\"ts\":\"now\"}",
            "(root): missing required property \"id\"",
            "/ts: expected integer, got string", NULL);

    invalid("{\"properties\":{\"a\":{\"required\":[\"b\"]}}}",
            "{\"a\":{}}",
            "/a: missing required property \"b\"", NULL);

    /* required applies to objects only */
    valid("{\"required\":[\"a\"]}", "[1]");
}


static void
test_additional_properties(void **state)
{
    const char  *s;

    (void) state;

    s = "{\"properties\":{\"a\":true},\"additionalProperties\":false}";

    valid(s, "{\"a\":1}");
    invalid(s, "{\"a\":1,\"b\":2,\"c\":3}",
            "/b: property not allowed",
            "/c: property not allowed", NULL);

    valid("{\"additionalProperties\":true}", "{\"x\":1}");

    s = "{\"properties\":{\"a\":true},"
        "\"additionalProperties\":{\"type\":\"integer\"}}";
    valid(s, "{\"a\":\"s\",\"b\":1}");
    invalid(s, "{\"a\":\"s\",\"b\":\"t\"}",
            "/b: expected integer, got string", NULL);

    /* a false property schema reads the same */
    invalid("{\"properties\":{\"secret\":false}}", "{\"secret\":1}",
            "/secret: property not allowed", NULL);
}


static void
test_property_names(void **state)
{
    const char  *s;

    (void) state;

    s = "{\"propertyNames\":{\"pattern\":\"^[a-z_]+$\",\"maxLength\":5}}";

    valid(s, "{\"ab\":1,\"c_d\":2}");
    invalid(s, "{\"ok\":1,\"Bad\":2,\"toolong\":3}",
            "/Bad: does not match ^[a-z_]+$",
            "/toolong: length 7 exceeds maxLength 5", NULL);

    invalid("{\"propertyNames\":false}", "{\"a\":1}",
            "/a: property not allowed", NULL);
    valid("{\"propertyNames\":false}", "{}");

    invalid("{\"propertyNames\":{\"enum\":[\"x\",\"y\"]}}",
            "{\"x\":1,\"z\":1}",
            "/z: not one of the allowed values", NULL);
    invalid("{\"propertyNames\":{\"const\":\"x\"}}", "{\"z\":1}",
            "/z: does not equal the required constant", NULL);
    invalid("{\"propertyNames\":{\"type\":\"integer\"}}", "{\"1\":1}",
            "/1: expected integer, got string", NULL);

    /* propertyNames is checked before the value */
    invalid("{\"propertyNames\":{\"minLength\":2},"
            "\"additionalProperties\":{\"type\":\"string\"}}",
            "{\"a\":1}",
            "/a: length 1 is below minLength 2",
            "/a: expected string, got integer", NULL);

    /* names reached through a $ref */
    invalid("{\"$defs\":{\"N\":{\"pattern\":\"^x\"}},"
            "\"propertyNames\":{\"$ref\":\"#/$defs/N\"}}",
            "{\"xa\":1,\"ya\":2}",
            "/ya: does not match ^x", NULL);
}


static void
test_max_properties(void **state)
{
    (void) state;

    valid("{\"maxProperties\":2}", "{\"a\":1,\"b\":2}");
    invalid("{\"maxProperties\":2}", "{\"a\":1,\"b\":2,\"c\":3}",
            "(root): 3 properties, more than maxProperties 2", NULL);
    valid("{\"maxProperties\":0}", "{}");
}


static void
test_object_visiting_order(void **state)
{
    (void) state;

    /* required, then members in the instance's order, then maxProperties */
    invalid("{\"required\":[\"z\"],\"maxProperties\":1,"
            "\"properties\":{\"b\":{\"type\":\"string\"}},"
            "\"additionalProperties\":{\"type\":\"null\"}}",
            "{\"q\":1,\"b\":2}",
            "(root): missing required property \"z\"",
            "/q: expected null, got integer",
            "/b: expected string, got integer",
            "(root): 2 properties, more than maxProperties 1", NULL);
}


/* ---------------------------------------------------------------- strings */

static void
test_string_length(void **state)
{
    (void) state;

    valid("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
    valid("{\"minLength\":2,\"maxLength\":3}", "\"abc\"");
    invalid("{\"minLength\":2}", "\"a\"",
            "(root): length 1 is below minLength 2", NULL);
    invalid("{\"maxLength\":3}", "\"abcd\"",
            "(root): length 4 exceeds maxLength 3", NULL);

    /* code points, not bytes: e-acute is 2 bytes, the emoji 4 */
    valid("{\"maxLength\":5}", "\"h\\u00e9llo\"");
    valid("{\"maxLength\":1}", "\"\\ud83d\\ude00\"");
    valid("{\"minLength\":3,\"maxLength\":3}", "\"\xe6\x97\xa5\xe6\x9c\xac"
          "\xe8\xaa\x9e\"");
    invalid("{\"maxLength\":2}", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"",
            "(root): length 3 exceeds maxLength 2", NULL);

    /* length keywords ignore other types */
    valid("{\"minLength\":5}", "12");

    /* minLength, maxLength, pattern in that order */
    invalid("{\"pattern\":\"^z\",\"maxLength\":1,\"minLength\":0}", "\"abc\"",
            "(root): length 3 exceeds maxLength 1",
            "(root): does not match ^z", NULL);
}


static void
test_pattern(void **state)
{
    (void) state;

    /* not anchored */
    valid("{\"pattern\":\"b\"}", "\"abc\"");
    invalid("{\"pattern\":\"x\"}", "\"abc\"",
            "(root): does not match x", NULL);

    valid("{\"pattern\":\"^sha256:[0-9a-f]{4}$\"}", "\"sha256:00ff\"");
    invalid("{\"pattern\":\"^sha256:[0-9a-f]{4}$\"}", "\"sha256:00FF\"",
            "(root): does not match ^sha256:[0-9a-f]{4}$", NULL);

    /* $ is the very end: no newline slips through */
    invalid("{\"pattern\":\"^[a-z]+$\"}", "\"abc\\n\"",
            "(root): does not match ^[a-z]+$", NULL);

    /* UTF mode: . is one code point; \u escapes as in ECMA-262 */
    valid("{\"pattern\":\"^.$\"}", "\"\\u00e9\"");
    valid("{\"pattern\":\"^\\\\u00e9$\"}", "\"\\u00e9\"");

    /* patterns ignore other types */
    valid("{\"pattern\":\"x\"}", "1");
}


static void
test_pattern_pathological(void **state)
{
    fg_schema_report_t  r;
    char                inst[64];
    clock_t             t0;
    double              secs;
    int                 rc;

    (void) state;

    memset(inst, 0, sizeof(inst));
    inst[0] = '"';
    memset(inst + 1, 'a', 50);
    inst[51] = 'b';
    inst[52] = '"';

    t0 = clock();
    rc = run("{\"pattern\":\"^(a+)+$\"}", inst, &r);
    secs = (double) (clock() - t0) / CLOCKS_PER_SEC;

    assert_int_equal(rc, FG_ERR_INVALID);
    assert_int_equal(r.count, 1);
    assert_true(strcmp(r.line[0], "(root): match limit reached for ^(a+)+$")
                == 0
                || strcmp(r.line[0], "(root): does not match ^(a+)+$") == 0);
    assert_true(secs < 2.0);

    /* nested quantifiers with a backreference */
    t0 = clock();
    rc = run("{\"pattern\":\"^((a|aa)+)+\\\\1c$\"}", inst, &r);
    secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_true(secs < 2.0);
}


static void
test_pattern_long_subject(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    json_t             *v;
    char               *s;
    size_t              n;
    int                 rc;

    (void) state;

    /* a repeated group over a long string overflows the JIT stack; the
     * interpreter finishes the match within its heap bound */
    n = 40000;
    s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'A', n);
    s[n] = '\0';

    set = compile_ok("{\"pattern\":\"^(?:[A-Za-z0-9+/]{4})*$\"}");
    v = json_string(s);
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, &r);
    assert_int_equal(rc, FG_OK);

    json_decref(v);
    fg_schema_set_free(set);
    free(s);
}


/* ---------------------------------------------------------------- numbers */

static void
test_minimum_maximum(void **state)
{
    (void) state;

    valid("{\"minimum\":0,\"maximum\":10}", "0");
    valid("{\"minimum\":0,\"maximum\":10}", "10");
    valid("{\"minimum\":0,\"maximum\":10}", "10.0");
    valid("{\"minimum\":0.5}", "1");
    valid("{\"maximum\":1.5}", "1");

    invalid("{\"minimum\":0}", "-1",
            "(root): -1 is below minimum 0", NULL);
    invalid("{\"maximum\":10}", "11",
            "(root): 11 exceeds maximum 10", NULL);
    invalid("{\"minimum\":0.5}", "0.1",
            "(root): 0.1 is below minimum 0.5", NULL);
    invalid("{\"maximum\":1.5}", "2",
            "(root): 2 exceeds maximum 1.5", NULL);
    invalid("{\"maximum\":1}", "1.0000000000000002",
            "(root): 1.0000000000000002 exceeds maximum 1", NULL);
    invalid("{\"minimum\":1e300}", "9223372036854775807",
            "(root): 9223372036854775807 is below minimum 1e+300", NULL);
    invalid("{\"maximum\":9223372036854775806}", "9223372036854775807",
            "(root): 9223372036854775807 exceeds maximum 9223372036854775806",
            NULL);
    /* 2^53 + 1 as an integer is above the double 2^53 */
    invalid("{\"maximum\":9007199254740992.0}", "9007199254740993",
            "(root): 9007199254740993 exceeds maximum 9007199254740992",
            NULL);
    /* a real with an integral value prints without a fraction */
    invalid("{\"minimum\":3}", "2.0",
            "(root): 2 is below minimum 3", NULL);

    valid("{\"minimum\":5}", "\"string\"");
}


/* ----------------------------------------------------------------- arrays */

static void
test_items_counts(void **state)
{
    (void) state;

    valid("{\"minItems\":1,\"maxItems\":2}", "[1]");
    invalid("{\"minItems\":2}", "[1]",
            "(root): 1 items, fewer than minItems 2", NULL);
    invalid("{\"maxItems\":2}", "[1,2,3]",
            "(root): 3 items, more than maxItems 2", NULL);

    valid("{\"items\":{\"type\":\"integer\"}}", "[1,2.0,3]");
    invalid("{\"items\":{\"type\":\"integer\"}}", "[1,\"x\",3,null]",
            "/1: expected integer, got string",
            "/3: expected integer, got null", NULL);

    invalid("{\"items\":false}", "[1]", "/0: not allowed", NULL);
    valid("{\"items\":false}", "[]");
}


static void
test_unique_items(void **state)
{
    (void) state;

    valid("{\"uniqueItems\":true}", "[1,2,\"1\",[1],{\"a\":1}]");
    valid("{\"uniqueItems\":false}", "[1,1]");
    invalid("{\"uniqueItems\":true}", "[1,2,1.0]",
            "(root): items 0 and 2 are equal", NULL);
    invalid("{\"uniqueItems\":true}",
            "[{\"a\":1,\"b\":[true]},3,{\"b\":[true],\"a\":1.0}]",
            "(root): items 0 and 2 are equal", NULL);
    /* the first pair by the later item */
    invalid("{\"uniqueItems\":true}", "[\"a\",\"b\",\"b\",\"a\"]",
            "(root): items 1 and 2 are equal", NULL);

    /* minItems, maxItems, uniqueItems, then the items */
    invalid("{\"maxItems\":2,\"uniqueItems\":true,"
            "\"items\":{\"type\":\"string\"}}",
            "[1,1,1]",
            "(root): 3 items, more than maxItems 2",
            "(root): items 0 and 1 are equal",
            "/0: expected string, got integer",
            "/1: expected string, got integer",
            "/2: expected string, got integer", NULL);
}


static void
test_unique_items_long(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    json_t             *a;
    int                 i, rc;

    (void) state;

    set = compile_ok("{\"uniqueItems\":true}");

    a = json_array();
    for (i = 0; i < 5000; i++) {
        json_array_append_new(a, json_integer(i));
    }
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), a, &r);
    assert_int_equal(rc, FG_OK);

    /* 4100.0 equals item 4100, then 300 repeats: the pair with the
     * smaller later item is reported */
    json_array_append_new(a, json_real(4100.0));
    json_array_append_new(a, json_integer(300));
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), a, &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.line[0], "(root): items 4100 and 5000 are equal");

    json_decref(a);

    /* objects and arrays on the hashed path */
    a = json_array();
    for (i = 0; i < 100; i++) {
        json_array_append_new(a, json_pack("{s:i,s:[i]}", "k", i, "l", i));
    }
    json_array_append_new(a, json_pack("{s:[f],s:f}", "l", 7.0, "k", 7.0));
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), a, &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_string_equal(r.line[0], "(root): items 7 and 100 are equal");

    json_decref(a);
    fg_schema_set_free(set);
}


/* -------------------------------------------------------- boolean schemas */

static void
test_boolean_schemas(void **state)
{
    (void) state;

    valid("true", "{\"anything\":[1,2]}");
    invalid("false", "1", "(root): not allowed", NULL);
    valid("{}", "null");
    valid("{\"properties\":{\"a\":true}}", "{\"a\":{}}");
}


/* ------------------------------------------------------- reports, pointers */

static void
test_pointer_escaping(void **state)
{
    (void) state;

    invalid("{\"additionalProperties\":false}",
            "{\"a/b\":1,\"m~n\":2,\"\":3}",
            "/a~1b: property not allowed",
            "/m~0n: property not allowed",
            "/: property not allowed", NULL);

    invalid("{\"items\":{\"items\":{\"properties\":{\"x\":"
            "{\"type\":\"string\"}}}}}",
            "[[], [{\"x\":\"ok\"}, {\"x\":1}]]",
            "/1/1/x: expected string, got integer", NULL);
}


static void
test_pointer_truncated(void **state)
{
    fg_schema_report_t  r;
    char                inst[1024];
    char                key[301];
    int                 rc;
    size_t              n;

    (void) state;

    memset(key, 'k', 300);
    key[300] = '\0';
    snprintf(inst, sizeof(inst), "{\"%s\":1}", key);

    rc = run("{\"additionalProperties\":false}", inst, &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_int_equal(r.count, 1);

    /* "/kkk...k" cut to fit, then the ellipsis */
    n = strlen(r.line[0]);
    assert_int_equal(n, FG_SCHEMA_PTR_MAX - 1
                     + strlen(": property not allowed"));
    assert_non_null(strstr(r.line[0], "kk\xe2\x80\xa6: property not allowed"));
    assert_int_equal(strncmp(r.line[0], "/kkk", 4), 0);

    /* a cut never splits a UTF-8 character */
    memset(inst, 0, sizeof(inst));
    strcpy(inst, "{\"kk");
    for (n = 0; n < 150; n++) {
        strcat(inst, "\xc3\xa9");
    }
    strcat(inst, "\":1}");
    rc = run("{\"additionalProperties\":false}", inst, &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_non_null(strstr(r.line[0], "\xc3\xa9\xe2\x80\xa6: property not"));
}


static void
test_line_truncated(void **state)
{
    fg_schema_report_t  r;
    char                schema[1024];
    size_t              n, off;
    int                 rc;

    (void) state;

    /* a long pattern in the reason: the line is cut at a character */
    off = (size_t) sprintf(schema, "{\"pattern\":\"^x");
    for (n = 0; n < 200; n++) {
        memcpy(schema + off, "\xc3\xa9", 2);
        off += 2;
    }
    strcpy(schema + off, "\"}");

    rc = run(schema, "\"y\"", &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    n = strlen(r.line[0]);
    assert_true(n == FG_ERRMSG_MAX - 1 || n == FG_ERRMSG_MAX - 2);
    assert_int_equal(strncmp(r.line[0], "(root): does not match ^x\xc3\xa9",
                             27), 0);
    assert_int_equal((unsigned char) r.line[0][n - 1], 0xa9);
}


static void
test_report_truncated(void **state)
{
    fg_schema_report_t  r;
    int                 rc;

    (void) state;

    rc = run("{\"items\":{\"type\":\"string\"}}",
             "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]", &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_int_equal(r.count, FG_SCHEMA_MAX_REPORT);
    assert_int_equal(r.truncated, 1);
    assert_string_equal(r.line[0], "/0: expected string, got integer");
    assert_string_equal(r.line[15], "/15: expected string, got integer");

    /* exactly 16 errors are not truncated */
    rc = run("{\"items\":{\"type\":\"string\"}}",
             "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]", &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    assert_int_equal(r.count, FG_SCHEMA_MAX_REPORT);
    assert_int_equal(r.truncated, 0);

    /* no report: stops at the first error */
    rc = run("{\"items\":{\"type\":\"string\"}}", "[1,2]", NULL);
    assert_int_equal(rc, FG_ERR_INVALID);
    rc = run("{\"items\":{\"type\":\"string\"}}", "[\"a\"]", NULL);
    assert_int_equal(rc, FG_OK);
}


static void
test_validate_null_args(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    json_t             *v;

    (void) state;

    set = compile_ok("true");
    v = json_null();

    assert_int_equal(fg_schema_validate(NULL, v, &r), FG_ERR_INTERNAL);
    assert_int_equal(fg_schema_validate(fg_schema_set_get(set, DOC), NULL,
                                        &r), FG_ERR_INTERNAL);
    assert_null(fg_schema_set_get(set, "Nope.schema.json"));
    assert_null(fg_schema_set_get(NULL, DOC));

    fg_schema_set_free(set);
    fg_schema_set_free(NULL);
}


/* ------------------------------------------------------------------- refs */

static void
test_ref_local(void **state)
{
    const char  *s;

    (void) state;

    s = "{\"$defs\":{\"Id\":{\"type\":\"string\",\"pattern\":\"^id-\"},"
        "\"a/b\":{\"type\":\"integer\"},\"m~n\":{\"type\":\"null\"},"
        "\"sp ace\":{\"const\":1}},"
        "\"properties\":{"
        "\"id\":{\"$ref\":\"#/$defs/Id\"},"
        "\"n\":{\"$ref\":\"#/$defs/a~1b\"},"
        "\"z\":{\"$ref\":\"#/$defs/m~0n\"},"
        "\"s\":{\"$ref\":\"#/$defs/sp%20ace\"},"
        "\"again\":{\"$ref\":\"#/properties/id\"}}}";

    valid(s, "{\"id\":\"id-1\",\"n\":2,\"z\":null,\"s\":1,"
          "\"again\":\"id-2\"}");
    invalid(s, "{\"id\":\"x\",\"n\":\"2\",\"z\":0,\"s\":2,\"again\":3}",
            "/id: does not match ^id-",
            "/n: expected integer, got string",
            "/z: expected null, got integer",
            "/s: does not equal the required constant",
            "/again: expected string, got integer", NULL);

    /* the $ref's siblings apply too, before the target */
    invalid("{\"$defs\":{\"S\":{\"type\":\"string\"}},"
            "\"$ref\":\"#/$defs/S\",\"maxLength\":2}",
            "\"abc\"",
            "(root): length 3 exceeds maxLength 2", NULL);
    invalid("{\"$defs\":{\"S\":{\"type\":\"string\"}},"
            "\"$ref\":\"#/$defs/S\",\"maxLength\":2}",
            "5",
            "(root): expected string, got integer", NULL);

    /* a $ref to a false schema */
    invalid("{\"$defs\":{\"No\":false},"
            "\"additionalProperties\":{\"$ref\":\"#/$defs/No\"}}",
            "{\"a\":1}", "/a: property not allowed", NULL);

    /* refs into items, additionalProperties, propertyNames; %-escapes */
    s = "{\"properties\":{"
        "\"a\":{\"items\":{\"type\":\"string\"},"
        "\"additionalProperties\":{\"type\":\"null\"},"
        "\"propertyNames\":{\"maxLength\":1}},"
        "\"b\":{\"$ref\":\"#/properties/a/items\"},"
        "\"c\":{\"$ref\":\"#/properties/a/additionalProperties\"},"
        "\"d\":{\"$ref\":\"#/properties/a/propertyNames\"},"
        "\"e/f\":{\"const\":0},"
        "\"g\":{\"$ref\":\"#/properties/e~1f\"},"
        "\"h\":{\"$ref\":\"#%2Fproperties%2fe~1f\"}}}";
    valid(s, "{\"b\":\"s\",\"c\":null,\"d\":\"x\",\"g\":0,\"h\":0}");
    invalid(s, "{\"b\":1,\"c\":1,\"d\":\"xy\",\"g\":1,\"h\":1}",
            "/b: expected string, got integer",
            "/c: expected null, got integer",
            "/d: length 2 exceeds maxLength 1",
            "/g: does not equal the required constant",
            "/h: does not equal the required constant", NULL);

    /* chains of refs */
    valid("{\"$defs\":{\"A\":{\"$ref\":\"#/$defs/B\"},"
          "\"B\":{\"type\":\"null\"}},\"$ref\":\"#/$defs/A\"}", "null");
}


static void
test_ref_recursive(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    json_t             *v, *leaf, *node;
    const char         *s;
    int                 i, rc;

    (void) state;

    s = "{\"$defs\":{\"Node\":{\"type\":\"object\","
        "\"properties\":{\"v\":{\"type\":\"integer\"},"
        "\"next\":{\"$ref\":\"#/$defs/Node\"}},"
        "\"additionalProperties\":false}},"
        "\"$ref\":\"#/$defs/Node\"}";

    valid(s, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}}");
    invalid(s, "{\"v\":1,\"next\":{\"v\":\"two\",\"x\":0}}",
            "/next/v: expected integer, got string",
            "/next/x: property not allowed", NULL);

    /* a chain deeper than the bound stops with FG_ERR_LIMIT */
    set = compile_ok(s);

    v = json_pack("{s:i}", "v", 0);
    for (i = 0; i < 200; i++) {
        node = json_pack("{s:i}", "v", i);
        json_object_set_new(node, "next", v);
        v = node;
    }

    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, &r);
    assert_int_equal(rc, FG_ERR_LIMIT);
    assert_int_equal(r.count, 1);
    assert_non_null(strstr(r.line[0], ": nests deeper than 64 levels"));
    assert_int_equal(strncmp(r.line[0], "/next/next/", 11), 0);

    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, NULL);
    assert_int_equal(rc, FG_ERR_LIMIT);

    /* 64 levels are fine */
    leaf = v;
    for (i = 0; i < 200 - 63; i++) {
        leaf = json_object_get(leaf, "next");
    }
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), leaf, &r);
    assert_int_equal(rc, FG_OK);

    json_decref(v);
    fg_schema_set_free(set);
}


static void
test_ref_cross_document(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    fg_error_t          err;
    json_t             *v;
    const char         *shared, *rec;

    (void) state;

    shared = "{\"$defs\":{\"Hash\":{\"type\":\"string\","
             "\"pattern\":\"^sha256:[0-9a-f]{64}$\"},"
             "\"Back\":{\"$ref\":\"Record.schema.json#/$defs/Kind\"}}}";
    rec = "{\"$defs\":{\"Kind\":{\"enum\":[\"a\",\"b\"]}},"
          "\"type\":\"object\","
          "\"properties\":{"
          "\"h\":{\"$ref\":\"Shared.schema.json#/$defs/Hash\"},"
          "\"k\":{\"$ref\":\"Shared.schema.json#/$defs/Back\"},"
          "\"all\":{\"$ref\":\"Tiny.schema.json\"}}}";

    set = fg_schema_set_new();
    assert_non_null(set);
    assert_int_equal(fg_schema_set_add(set, "Record.schema.json", rec,
                                       strlen(rec), &err), FG_OK);
    assert_int_equal(fg_schema_set_add(set, "Shared.schema.json", shared,
                                       strlen(shared), &err), FG_OK);
    assert_int_equal(fg_schema_set_add(set, "Tiny.schema.json",
                                       "{\"type\":\"null\"}", 15, &err),
                     FG_OK);
    assert_null(fg_schema_set_get(set, "Record.schema.json"));
    assert_int_equal(fg_schema_set_compile(set, &err), FG_OK);

    v = parse("{\"h\":\"sha256:0000000000000000000000000000000000000000000000"
              "000000000000000000\",\"k\":\"a\",\"all\":null}");
    assert_int_equal(fg_schema_validate(fg_schema_set_get(set,
                     "Record.schema.json"), v, &r), FG_OK);
    json_decref(v);

    v = parse("{\"h\":\"md5:00\",\"k\":\"c\",\"all\":0}");
    assert_int_equal(fg_schema_validate(fg_schema_set_get(set,
                     "Record.schema.json"), v, &r), FG_ERR_INVALID);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.line[0],
                        "/h: does not match ^sha256:[0-9a-f]{64}$");
    assert_string_equal(r.line[1], "/k: not one of the allowed values");
    assert_string_equal(r.line[2], "/all: expected null, got integer");
    json_decref(v);

    /* the set is closed once compiled */
    assert_int_equal(fg_schema_set_add(set, "Late.schema.json", "{}", 2,
                                       &err), FG_ERR_INVALID);
    assert_int_equal(fg_schema_set_compile(set, &err), FG_ERR_INVALID);

    fg_schema_set_free(set);
}


static void
test_ref_refused(void **state)
{
    (void) state;

    compile_fails("{\"$ref\":\"#/$defs/Missing\"}", FG_ERR_INVALID,
                  DOC "#/$ref: $ref \"#/$defs/Missing\" does not resolve to "
                  "a schema");
    compile_fails("{\"properties\":{\"a\":"
                  "{\"$ref\":\"Other.schema.json#/$defs/X\"}}}",
                  FG_ERR_INVALID,
                  DOC "#/properties/a/$ref: $ref "
                  "\"Other.schema.json#/$defs/X\" names an unknown document");
    compile_fails("{\"$ref\":\"#/type\",\"type\":\"string\"}", FG_ERR_INVALID,
                  DOC "#/$ref: $ref \"#/type\" does not resolve to a schema");
    compile_fails("{\"$ref\":\"#foo\"}", FG_ERR_INVALID,
                  DOC "#/$ref: $ref \"#foo\" is not a JSON pointer fragment");
    compile_fails("{\"$ref\":\"#/%zz\"}", FG_ERR_INVALID, NULL);
    compile_fails("{\"$ref\":\"#/$defs/a~2\",\"$defs\":{\"a~2\":true}}",
                  FG_ERR_INVALID, NULL);
    compile_fails("{\"$ref\":\"#/$defs\",\"$defs\":{}}", FG_ERR_INVALID,
                  NULL);
    compile_fails("{\"$ref\":\"https://example.com/x.json\"}", FG_ERR_INVALID,
                  NULL);
    compile_fails("{\"$ref\":5}", FG_ERR_INVALID,
                  DOC "#/$ref: must be a string");
}


static void
test_ref_cycles(void **state)
{
    fg_schema_set_t  *set;
    fg_error_t        err;
    const char       *a, *b;

    (void) state;

    compile_fails("{\"$ref\":\"#\"}", FG_ERR_INVALID,
                  DOC "#/$ref: $ref \"#\" is part of a cycle that never "
                  "descends into the instance");
    compile_fails("{\"$defs\":{\"A\":{\"$ref\":\"#/$defs/B\"},"
                  "\"B\":{\"type\":\"object\",\"$ref\":\"#/$defs/A\"}}}",
                  FG_ERR_INVALID, NULL);

    /* across documents */
    a = "{\"$ref\":\"B.schema.json\"}";
    b = "{\"$defs\":{\"X\":{\"$ref\":\"A.schema.json#\"}},"
        "\"$ref\":\"#/$defs/X\"}";

    set = fg_schema_set_new();
    assert_int_equal(fg_schema_set_add(set, "A.schema.json", a, strlen(a),
                                       &err), FG_OK);
    assert_int_equal(fg_schema_set_add(set, "B.schema.json", b, strlen(b),
                                       &err), FG_OK);
    assert_int_equal(fg_schema_set_compile(set, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "is part of a cycle"));
    assert_null(fg_schema_set_get(set, "A.schema.json"));
    fg_schema_set_free(set);

    /* recursion through properties or items is legal */
    assert_int_equal(compile_rc("{\"items\":{\"$ref\":\"#\"}}", &err), FG_OK);
    assert_int_equal(compile_rc("{\"properties\":{\"a\":{\"$ref\":\"#\"}}}",
                                &err), FG_OK);
}


/* ---------------------------------------------------- hostile schemas */

static void
test_unsupported_keyword(void **state)
{
    (void) state;

    compile_fails("{\"type\":\"string\",\"format\":\"email\"}", FG_ERR_INVALID,
                  DOC "#/format: unsupported keyword");
    compile_fails("{\"properties\":{\"a\":{\"anyOf\":[]}}}", FG_ERR_INVALID,
                  DOC "#/properties/a/anyOf: unsupported keyword");
    compile_fails("{\"$defs\":{\"x/y\":{\"exclusiveMinimum\":1}}}",
                  FG_ERR_INVALID,
                  DOC "#/$defs/x~1y/exclusiveMinimum: unsupported keyword");
    compile_fails("{\"items\":{\"Type\":\"string\"}}", FG_ERR_INVALID,
                  DOC "#/items/Type: unsupported keyword");
}


static void
test_bad_pattern(void **state)
{
    fg_error_t  err;
    char        big[FG_SCHEMA_MAX_PATTERN + 64];

    (void) state;

    assert_int_equal(compile_rc("{\"pattern\":\"(a\"}", &err),
                     FG_ERR_INVALID);
    assert_int_equal(strncmp(err.msg, DOC "#/pattern: bad pattern: ",
                             strlen(DOC "#/pattern: bad pattern: ")), 0);

    compile_fails("{\"pattern\":\"[z-a]\"}", FG_ERR_INVALID, NULL);
    compile_fails("{\"pattern\":\"\\\\C\"}", FG_ERR_INVALID, NULL);
    compile_fails("{\"pattern\":1}", FG_ERR_INVALID,
                  DOC "#/pattern: must be a string");

    snprintf(big, sizeof(big), "{\"pattern\":\"%0*d\"}",
             FG_SCHEMA_MAX_PATTERN + 1, 0);
    compile_fails(big, FG_ERR_LIMIT, DOC "#/pattern: pattern is longer than "
                  "4096 bytes");
}


static void
test_wrong_keyword_types(void **state)
{
    (void) state;

    compile_fails("{\"type\":\"str\"}", FG_ERR_INVALID,
                  DOC "#/type: unknown type \"str\"");
    compile_fails("{\"type\":[\"string\",\"string\"]}", FG_ERR_INVALID,
                  DOC "#/type: type \"string\" is listed twice");
    compile_fails("{\"type\":[]}", FG_ERR_INVALID,
                  DOC "#/type: must not be an empty array");
    compile_fails("{\"type\":7}", FG_ERR_INVALID,
                  DOC "#/type: must be a type name or an array of them");
    compile_fails("{\"properties\":[]}", FG_ERR_INVALID,
                  DOC "#/properties: must be an object of schemas");
    compile_fails("{\"properties\":{\"a\":1}}", FG_ERR_INVALID,
                  DOC "#/properties/a: a schema must be an object or a "
                  "boolean");
    compile_fails("{\"required\":\"a\"}", FG_ERR_INVALID,
                  DOC "#/required: must be an array of strings");
    compile_fails("{\"required\":[\"a\",1]}", FG_ERR_INVALID,
                  DOC "#/required: must be an array of strings");
    compile_fails("{\"required\":[\"a\",\"b\",\"a\"]}", FG_ERR_INVALID,
                  DOC "#/required: \"a\" is listed twice");
    compile_fails("{\"enum\":[]}", FG_ERR_INVALID,
                  DOC "#/enum: must be a non-empty array");
    compile_fails("{\"enum\":\"a\"}", FG_ERR_INVALID,
                  DOC "#/enum: must be a non-empty array");
    compile_fails("{\"items\":[{}]}", FG_ERR_INVALID,
                  DOC "#/items: a schema must be an object or a boolean");
    compile_fails("{\"additionalProperties\":null}", FG_ERR_INVALID, NULL);
    compile_fails("{\"uniqueItems\":1}", FG_ERR_INVALID,
                  DOC "#/uniqueItems: must be a boolean");
    compile_fails("{\"minimum\":\"0\"}", FG_ERR_INVALID,
                  DOC "#/minimum: must be a number");
    compile_fails("{\"title\":1}", FG_ERR_INVALID,
                  DOC "#/title: must be a string");
    compile_fails("{\"$defs\":true}", FG_ERR_INVALID,
                  DOC "#/$defs: must be an object of schemas");
    compile_fails("[]", FG_ERR_INVALID,
                  DOC "#: a schema must be an object or a boolean");
    compile_fails("\"x\"", FG_ERR_INVALID, NULL);
}


static void
test_bad_counts(void **state)
{
    fg_error_t  err;

    (void) state;

    compile_fails("{\"minLength\":-1}", FG_ERR_INVALID,
                  DOC "#/minLength: must be a non-negative integer");
    compile_fails("{\"maxItems\":1.5}", FG_ERR_INVALID,
                  DOC "#/maxItems: must be a non-negative integer");
    compile_fails("{\"maxProperties\":\"3\"}", FG_ERR_INVALID,
                  DOC "#/maxProperties: must be a non-negative integer");
    compile_fails("{\"minItems\":-0.5}", FG_ERR_INVALID, NULL);
    compile_fails("{\"minLength\":9223372036854775807}", FG_ERR_LIMIT,
                  DOC "#/minLength: must be at most 2147483647");
    compile_fails("{\"maxLength\":1e300}", FG_ERR_LIMIT,
                  DOC "#/maxLength: must be at most 2147483647");
    compile_fails("{\"minLength\":5,\"maxLength\":4}", FG_ERR_INVALID,
                  DOC "#: minLength 5 exceeds maxLength 4");
    compile_fails("{\"minItems\":2,\"maxItems\":1}", FG_ERR_INVALID,
                  DOC "#: minItems 2 exceeds maxItems 1");
    compile_fails("{\"minimum\":2,\"maximum\":1.5}", FG_ERR_INVALID,
                  DOC "#: minimum 2 exceeds maximum 1.5");

    /* integral reals are integers */
    assert_int_equal(compile_rc("{\"minLength\":2.0}", &err), FG_OK);
    valid("{\"maxLength\":2147483647}", "\"x\"");
}


static void
test_schema_depth_bound(void **state)
{
    char    *s;
    size_t   i, n, off;

    (void) state;

    /* 70 nested "items" */
    n = 70;
    s = malloc(n * 12 + 16);
    assert_non_null(s);

    off = 0;
    for (i = 0; i < n; i++) {
        off += (size_t) sprintf(s + off, "{\"items\":");
    }
    off += (size_t) sprintf(s + off, "true");
    for (i = 0; i < n; i++) {
        s[off++] = '}';
    }
    s[off] = '\0';

    compile_fails(s, FG_ERR_LIMIT, NULL);
    free(s);

    /* deep const values */
    s = malloc(300);
    assert_non_null(s);
    off = (size_t) sprintf(s, "{\"const\":");
    for (i = 0; i < 100; i++) {
        s[off++] = '[';
    }
    for (i = 0; i < 100; i++) {
        s[off++] = ']';
    }
    s[off++] = '}';
    s[off] = '\0';
    compile_fails(s, FG_ERR_LIMIT, DOC "#/const: nests deeper than 64 levels");
    free(s);
}


static void
test_set_bounds(void **state)
{
    fg_schema_set_t  *set;
    fg_error_t        err;
    char             *s, name[32];
    size_t            off;
    int               i;

    (void) state;

    /* more subschemas than FG_SCHEMA_MAX_NODES */
    s = malloc((FG_SCHEMA_MAX_NODES + 1) * 16 + 64);
    assert_non_null(s);
    off = (size_t) sprintf(s, "{\"properties\":{");
    for (i = 0; i <= FG_SCHEMA_MAX_NODES; i++) {
        off += (size_t) sprintf(s + off, "%s\"p%d\":true", i ? "," : "", i);
    }
    strcpy(s + off, "}}");
    compile_fails(s, FG_ERR_LIMIT, NULL);
    free(s);

    /* more documents than FG_SCHEMA_MAX_DOCS */
    set = fg_schema_set_new();
    assert_non_null(set);
    for (i = 0; i < FG_SCHEMA_MAX_DOCS; i++) {
        snprintf(name, sizeof(name), "D%d.schema.json", i);
        assert_int_equal(fg_schema_set_add(set, name, "true", 4, &err),
                         FG_OK);
    }
    assert_int_equal(fg_schema_set_add(set, "X.schema.json", "true", 4, &err),
                     FG_ERR_LIMIT);
    assert_int_equal(fg_schema_set_compile(set, &err), FG_OK);
    assert_non_null(fg_schema_set_get(set, "D255.schema.json"));
    fg_schema_set_free(set);

    /* enum values are bounded in depth like const */
    s = malloc(256);
    assert_non_null(s);
    off = (size_t) sprintf(s, "{\"enum\":[1,");
    for (i = 0; i < 70; i++) {
        s[off++] = '[';
    }
    for (i = 0; i < 70; i++) {
        s[off++] = ']';
    }
    strcpy(s + off, "]}");
    compile_fails(s, FG_ERR_LIMIT,
                  DOC "#/enum: value 1 nests deeper than 64 levels");
    free(s);
}


static void
test_set_add_refused(void **state)
{
    fg_schema_set_t  *set;
    fg_error_t        err;
    char             *big;
    char              name[FG_SCHEMA_MAX_NAME + 2];

    (void) state;

    set = fg_schema_set_new();
    assert_non_null(set);

    assert_int_equal(fg_schema_set_add(set, "A.schema.json", "{", 1, &err),
                     FG_ERR_SYNTAX);
    assert_int_equal(fg_schema_set_add(set, "A.schema.json",
                                       "{\"type\":1,\"type\":2}", 19, &err),
                     FG_ERR_SYNTAX);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(fg_schema_set_add(set, "A.schema.json", "{} x", 4,
                                       &err), FG_ERR_SYNTAX);
    assert_true(err.offset >= 3 && err.offset <= 4);

    assert_int_equal(fg_schema_set_add(set, "", "{}", 2, &err),
                     FG_ERR_INVALID);
    assert_int_equal(fg_schema_set_add(set, "a#b", "{}", 2, &err),
                     FG_ERR_INVALID);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(fg_schema_set_add(set, name, "{}", 2, &err),
                     FG_ERR_INVALID);

    assert_int_equal(fg_schema_set_add(set, "A.schema.json", "{}", 2, &err),
                     FG_OK);
    assert_int_equal(fg_schema_set_add(set, "A.schema.json", "{}", 2, &err),
                     FG_ERR_INVALID);

    big = malloc(FG_SCHEMA_MAX_TEXT + 1);
    assert_non_null(big);
    memset(big, ' ', FG_SCHEMA_MAX_TEXT + 1);
    assert_int_equal(fg_schema_set_add(set, "B.schema.json", big,
                                       FG_SCHEMA_MAX_TEXT + 1, &err),
                     FG_ERR_LIMIT);
    free(big);

    assert_int_equal(fg_schema_set_add(set, NULL, "{}", 2, &err),
                     FG_ERR_INTERNAL);
    assert_int_equal(fg_schema_set_add(set, "C.schema.json", "{}", 2, NULL),
                     FG_OK);

    assert_int_equal(fg_schema_set_compile(set, NULL), FG_OK);
    assert_non_null(fg_schema_set_get(set, "A.schema.json"));

    fg_schema_set_free(set);
}


static void
test_instance_depth_bound(void **state)
{
    fg_schema_report_t  r;
    fg_schema_set_t    *set;
    json_t             *v, *a;
    int                 i, rc;

    (void) state;

    set = compile_ok("{\"$defs\":{\"A\":{\"items\":{\"$ref\":\"#/$defs/A\"}}},"
                     "\"$ref\":\"#/$defs/A\"}");

    v = json_array();
    for (i = 0; i < 100; i++) {
        a = json_array();
        json_array_append_new(a, v);
        v = a;
    }

    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, &r);
    assert_int_equal(rc, FG_ERR_LIMIT);
    fg_schema_set_free(set);

    /* an unchecked deep value is not walked */
    set = compile_ok("{\"items\":true}");
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, &r);
    assert_int_equal(rc, FG_OK);
    fg_schema_set_free(set);

    /* uniqueItems comparing deep items is bounded too */
    set = compile_ok("{\"uniqueItems\":true}");
    a = json_array();
    json_array_append(a, v);
    json_array_append(a, v);
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), a, &r);
    assert_int_equal(rc, FG_ERR_LIMIT);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.line[0], "(root): nests deeper than 64 levels");
    json_decref(a);
    fg_schema_set_free(set);

    /* const comparison bounded as well */
    set = compile_ok("{\"const\":[[[[1]]]]}");
    rc = fg_schema_validate(fg_schema_set_get(set, DOC), v, &r);
    assert_int_equal(rc, FG_ERR_INVALID);
    fg_schema_set_free(set);

    json_decref(v);
}


static void
test_metadata_keywords(void **state)
{
    (void) state;

    valid("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
          "\"$id\":\"https://foxgov.dev/T.schema.json\","
          "\"title\":\"t\",\"description\":\"d\",\"$comment\":\"c\","
          "\"type\":\"object\"}", "{}");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_type_failure_stops_value),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_properties_required),
        cmocka_unit_test(test_additional_properties),
        cmocka_unit_test(test_property_names),
        cmocka_unit_test(test_max_properties),
        cmocka_unit_test(test_object_visiting_order),
        cmocka_unit_test(test_string_length),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_pattern_pathological),
        cmocka_unit_test(test_pattern_long_subject),
        cmocka_unit_test(test_minimum_maximum),
        cmocka_unit_test(test_items_counts),
        cmocka_unit_test(test_unique_items),
        cmocka_unit_test(test_unique_items_long),
        cmocka_unit_test(test_boolean_schemas),
        cmocka_unit_test(test_pointer_escaping),
        cmocka_unit_test(test_pointer_truncated),
        cmocka_unit_test(test_line_truncated),
        cmocka_unit_test(test_report_truncated),
        cmocka_unit_test(test_validate_null_args),
        cmocka_unit_test(test_ref_local),
        cmocka_unit_test(test_ref_recursive),
        cmocka_unit_test(test_ref_cross_document),
        cmocka_unit_test(test_ref_refused),
        cmocka_unit_test(test_ref_cycles),
        cmocka_unit_test(test_unsupported_keyword),
        cmocka_unit_test(test_bad_pattern),
        cmocka_unit_test(test_wrong_keyword_types),
        cmocka_unit_test(test_bad_counts),
        cmocka_unit_test(test_schema_depth_bound),
        cmocka_unit_test(test_set_bounds),
        cmocka_unit_test(test_set_add_refused),
        cmocka_unit_test(test_instance_depth_bound),
        cmocka_unit_test(test_metadata_keywords),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

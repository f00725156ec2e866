/*
 * fuzz_schema.c -- libFuzzer target for fg_schema.
 *
 * Two modes, chosen by the first byte:
 *   0x01  the rest is an instance, validated against a fixed record-like
 *         schema (compiled once);
 *   else  the input is "<schema document> NUL <instance>": the schema is
 *         compiled as "F.schema.json" and, if it compiles and the
 *         instance parses, the instance is validated.
 *
 * Beyond the sanitizers it checks that validating with and without a
 * report agree on validity and that every report line is a bounded,
 * valid UTF-8 string.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore
 *        core/fg_core.c core/fg_schema.c fuzz/fuzz_schema.c
 *        -ljansson -lpcre2-8 -o /tmp/fuzz_schema
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg_schema.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  record_schema[] =
    "{"
    "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"$id\":\"https://foxgov.dev/schemas/Record.schema.json\","
    "\"title\":\"evidence record\","
    "\"$defs\":{"
      "\"Hash\":{\"type\":\"string\",\"pattern\":\"^sha256:[0-9a-f]{64}$\"},"
      "\"Decision\":{\"enum\":[\"allow\",\"deny\",\"redact\"]},"
      "\"Span\":{\"type\":\"object\",\"required\":[\"start\",\"end\"],"
        "\"properties\":{\"start\":{\"type\":\"integer\",\"minimum\":0},"
        "\"end\":{\"type\":\"integer\",\"minimum\":0}},"
        "\"additionalProperties\":false},"
      "\"Finding\":{\"type\":\"object\",\"required\":[\"rule\"],"
        "\"properties\":{"
          "\"rule\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,"
            "\"pattern\":\"^[a-z0-9_.-]+$\"},"
          "\"score\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
          "\"spans\":{\"type\":\"array\",\"maxItems\":32,"
            "\"items\":{\"$ref\":\"#/$defs/Span\"}},"
          "\"detail\":{\"$ref\":\"#/$defs/Detail\"}},"
        "\"additionalProperties\":false},"
      "\"Detail\":{\"type\":[\"object\",\"string\",\"null\"],"
        "\"maxProperties\":8,"
        "\"additionalProperties\":{\"$ref\":\"#/$defs/Detail\"}}"
    "},"
    "\"type\":\"object\","
    "\"required\":[\"spec\",\"id\",\"ts\",\"decision\",\"request\"],"
    "\"properties\":{"
      "\"spec\":{\"const\":\"1.0.0\"},"
      "\"id\":{\"type\":\"string\",\"pattern\":\"^[0-9A-HJKMNP-TV-Z]{26}$\"},"
      "\"ts\":{\"type\":\"integer\",\"minimum\":0},"
      "\"decision\":{\"$ref\":\"#/$defs/Decision\"},"
      "\"request\":{\"type\":\"object\",\"required\":[\"body_hash\"],"
        "\"properties\":{"
          "\"body_hash\":{\"$ref\":\"#/$defs/Hash\"},"
          "\"bytes\":{\"type\":\"integer\",\"minimum\":0,"
            "\"maximum\":1e12},"
          "\"model\":{\"type\":[\"string\",\"null\"],\"maxLength\":128},"
          "\"tools\":{\"type\":\"array\",\"uniqueItems\":true,"
            "\"items\":{\"type\":\"string\"}}},"
        "\"additionalProperties\":false},"
      "\"findings\":{\"type\":\"array\",\"uniqueItems\":true,"
        "\"items\":{\"$ref\":\"#/$defs/Finding\"}},"
      "\"labels\":{\"type\":\"object\",\"maxProperties\":16,"
        "\"propertyNames\":{\"pattern\":\"^[a-z][a-z0-9_]*$\","
          "\"maxLength\":32},"
        "\"additionalProperties\":{\"type\":\"string\"}},"
      "\"prev\":{\"type\":[\"null\",\"string\"]},"
      "\"$comment\":true"
    "},"
    "\"additionalProperties\":false"
    "}";


static int
utf8_ok(const unsigned char *s, size_t n)
{
    size_t  i, k, want;

    for (i = 0; i < n; i += want) {
        want = s[i] < 0x80 ? 1 : s[i] < 0xc0 ? 0
               : s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : s[i] < 0xf8 ? 4 : 0;
        if (want == 0 || i + want > n) {
            return 0;
        }
        for (k = 1; k < want; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
        }
    }

    return 1;
}


static void
check(const fg_schema_t *schema, const json_t *instance)
{
    fg_schema_report_t  r;
    unsigned            i;
    size_t              n;
    int                 rc, rc2;

    rc = fg_schema_validate(schema, instance, &r);
    rc2 = fg_schema_validate(schema, instance, NULL);

    if ((rc == FG_OK) != (rc2 == FG_OK)) {
        abort();
    }

    if (rc == FG_OK && r.count != 0) {
        abort();
    }

    if (r.count > FG_SCHEMA_MAX_REPORT) {
        abort();
    }

    for (i = 0; i < r.count; i++) {
        n = strnlen(r.line[i], FG_ERRMSG_MAX);
        if (n == FG_ERRMSG_MAX
            || !utf8_ok((const unsigned char *) r.line[i], n))
        {
            abort();
        }
    }
}


static const fg_schema_t *
record(void)
{
    static fg_schema_set_t  *set;
    fg_error_t               err;

    if (set == NULL) {
        set = fg_schema_set_new();
        if (set == NULL
            || fg_schema_set_add(set, "Record.schema.json", record_schema,
                                 sizeof(record_schema) - 1, &err) != FG_OK
            || fg_schema_set_compile(set, &err) != FG_OK)
        {
            abort();
        }
    }

    return fg_schema_set_get(set, "Record.schema.json");
}


static void
fuzz_record(const uint8_t *data, size_t size)
{
    json_error_t  jerr;
    json_t       *v;

    v = json_loadb((const char *) data, size, JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        return;
    }

    check(record(), v);
    json_decref(v);
}


static void
fuzz_schema(const uint8_t *data, size_t size)
{
    fg_schema_set_t  *set;
    const uint8_t    *nul;
    json_error_t      jerr;
    fg_error_t        err;
    json_t           *v;
    size_t            slen;

    nul = memchr(data, 0, size);
    slen = nul != NULL ? (size_t) (nul - data) : size;

    set = fg_schema_set_new();
    if (set == NULL) {
        return;
    }

    if (fg_schema_set_add(set, "F.schema.json", (const char *) data, slen,
                          &err) != FG_OK
        || fg_schema_set_compile(set, &err) != FG_OK)
    {
        if (strnlen(err.msg, FG_ERRMSG_MAX) == FG_ERRMSG_MAX) {
            abort();
        }
        fg_schema_set_free(set);
        return;
    }

    if (fg_schema_set_get(set, "F.schema.json") == NULL) {
        abort();
    }

    if (nul != NULL) {
        v = json_loadb((const char *) nul + 1, size - slen - 1,
                       JSON_DECODE_ANY, &jerr);
        if (v != NULL) {
            check(fg_schema_set_get(set, "F.schema.json"), v);
            json_decref(v);
        }
    }

    fg_schema_set_free(set);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 0x01) {
        fuzz_record(data + 1, size - 1);
    } else {
        fuzz_schema(data, size);
    }

    return 0;
}

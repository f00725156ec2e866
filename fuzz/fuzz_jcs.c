/*
 * fuzz_jcs.c -- libFuzzer target for the RFC 8785 canonicalizer.
 *
 * Besides "does not crash", it checks three properties on every input:
 *   - idempotence: canonicalizing canonical bytes gives the same bytes;
 *   - agreement with jansson (an independent parser): what we accept,
 *     jansson accepts, and canonicalizing jansson's value gives the same
 *     bytes; what we refuse as a syntax error, jansson refuses too;
 *   - the error always carries an offset inside the input;
 *   - the document built from the tape (fg_jcs_tree_json), for the input
 *     and for its canonical form, equals what json_loadb() reads.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_jcs.h"

#define FUZZ_DEPTH  32

static fg_jcs_t  *fuzz_jcs;


static int
fuzz_canon(fg_jcs_t *jcs, const unsigned char *p, size_t n, fg_buffer_t *out,
    fg_error_t *err)
{
    unsigned char  stage[17];       /* odd and small: flushes everywhere */
    fg_sink_t      sink;

    fg_buffer_init(out, 0);
    fg_sink_to_buffer(&sink, out, stage, sizeof(stage));

    return fg_jcs_canonicalize(jcs, p, n, &sink, err);
}


/* jansson refuses NUL in object keys; such documents are not compared */
static int
fuzz_has_nul_key_escape(const unsigned char *p, size_t n)
{
    return memmem(p, n, "\\u0000", 6) != NULL;
}


/*
 * Does v hold a real whose canonical form is an integer beyond 64 bits
 * (1.2e20 is 120000000000000000000)?  jansson reads it as a real; the
 * tree refuses it on purpose, as it refuses that integer (fg_jcs.c,
 * fg_jcs_real_reads_back: a record holding it could not be read back).
 */
static int
fuzz_unreadable_real(const json_t *v)
{
    size_t       i;
    double       d;
    const char  *key;
    json_t      *m;

    switch (json_typeof(v)) {

    case JSON_REAL:
        d = json_real_value(v);
        return (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
               && fabs(d) < 1e21;

    case JSON_OBJECT:
        json_object_foreach((json_t *) v, key, m) {
            if (fuzz_unreadable_real(m)) {
                return 1;
            }
        }
        return 0;

    case JSON_ARRAY:
        for (i = 0; i < json_array_size(v); i++) {
            if (fuzz_unreadable_real(json_array_get(v, i))) {
                return 1;
            }
        }
        return 0;

    default:
        return 0;
    }
}


/* The tape's tree must be what jansson read (want), when jansson read it. */
static void
fuzz_tree_check(const json_t *want, const char *what)
{
    fg_error_t  err;
    json_t     *tree;

    tree = fg_jcs_tree_json(fuzz_jcs, 0, &err);
    if (want != NULL && tree == NULL && fuzz_unreadable_real(want)
        && strstr(err.msg, "beyond 64 bits") != NULL)
    {
        return;                         /* refused on purpose */
    }
    if (want != NULL && (tree == NULL || !json_equal(want, tree))) {
        fprintf(stderr, "the tree of the %s is not jansson's: %s\n", what,
                tree == NULL ? err.msg : "differs");
        abort();
    }
    json_decref(tree);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char  stage[64];
    fg_buffer_t    a, b, c;
    fg_error_t     err;
    fg_sink_t      sink;
    json_error_t   jerr;
    json_t        *v, *t;
    int            rc;

    if (fuzz_jcs == NULL) {
        fuzz_jcs = fg_jcs_new(FUZZ_DEPTH);
        if (fuzz_jcs == NULL) {
            abort();
        }
    }

    rc = fuzz_canon(fuzz_jcs, data, size, &a, &err);

    v = json_loadb((const char *) data, size,
                   JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL
                   | JSON_REJECT_DUPLICATES, &jerr);

    if (rc != FG_OK) {
        if (err.offset > size || err.msg[0] == '\0') {
            fprintf(stderr, "bad error report: %zu \"%s\"\n", err.offset,
                    err.msg);
            abort();
        }

        /* jansson reads a raw NUL byte as the end of the text */
        if (rc == FG_ERR_SYNTAX && v != NULL
            && memchr(data, '\0', size) == NULL)
        {
            fprintf(stderr, "we refused what jansson accepts: %s\n",
                    err.msg);
            abort();
        }

        json_decref(v);
        fg_buffer_free(&a);
        return 0;
    }

    /* the tree, from the input's tape */
    t = json_loadb((const char *) data, size, JSON_DECODE_ANY
                   | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    fuzz_tree_check(t, "input");

    /* idempotence */
    if (fuzz_canon(fuzz_jcs, a.data, a.len, &b, &err) != FG_OK
        || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
    {
        fprintf(stderr, "not idempotent\n");
        abort();
    }

    /* the tree from the canonical form's tape (strings kept as written),
     * against jansson's reading of the canonical form */
    json_decref(t);
    t = json_loadb((const char *) a.data, a.len, JSON_DECODE_ANY
                   | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    fuzz_tree_check(t, "canonical form");
    json_decref(t);

    if (v == NULL) {
        if (!fuzz_has_nul_key_escape(data, size)) {
            fprintf(stderr, "jansson refused what we accept: %s\n",
                    jerr.text);
            abort();
        }

    } else {
        fg_buffer_init(&c, 0);
        fg_sink_to_buffer(&sink, &c, stage, sizeof(stage));

        if (fg_jcs_canonicalize_json(v, FUZZ_DEPTH + 1, &sink, &err) != FG_OK
            || c.len != a.len || memcmp(a.data, c.data, a.len) != 0)
        {
            fprintf(stderr, "text and jansson paths disagree\n");
            abort();
        }

        fg_buffer_free(&c);
        json_decref(v);
    }

    fg_buffer_free(&a);
    fg_buffer_free(&b);

    return 0;
}

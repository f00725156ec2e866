/*
 * fg_jcs.c -- RFC 8785 canonicalization of JSON text.
 *
 * Two passes over the input:
 *
 *   1. read: a strict RFC 8259 reader checks the text and records every
 *      value as a node of a flat tape (type, source span, children).
 *      Strings with escapes are decoded into a scratch area, so keys can
 *      be compared and escapes re-written canonically; strings without
 *      escapes are left where they are, since such a string is already in
 *      canonical form (it holds no control character, quote or backslash).
 *   2. write: the tape is walked, object members sorted by their keys'
 *      UTF-16 code units, duplicate keys refused, numbers written as
 *      ECMAScript writes them, and the output streamed into a sink.
 *
 * Why not jansson, which the rest of core/ uses for JSON: canonicalization
 * hashes every request body on the gateway's hot path, and a DOM parser
 * measured at about 100 MB/s on a 16 KiB chat body cannot meet that
 * budget; jansson also refuses integers beyond 64 bits that JSON and JCS
 * accept, and cannot bound nesting at run time.  docs/canonicalization.md
 * says more.  jansson values (what records embed) go through
 * fg_jcs_canonicalize_json() in fg_jcs_json.c, which shares the number
 * and string writers below.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_jcs.h"
#include "fg_jcs_write.h"
#include "fg_utf8.h"


enum {
    FG_JT_NULL = 1,
    FG_JT_FALSE,
    FG_JT_TRUE,
    FG_JT_NUMBER,
    FG_JT_STRING,
    FG_JT_ARRAY,
    FG_JT_OBJECT
};

/* a string whose decoded bytes live in the scratch area */
#define FG_JN_DECODED  0x01
/* a number whose text is the shortest form already (see read_number) */
#define FG_JN_SHORT    0x02

/*
 * Exponents are read exactly up to this; beyond it the number is far
 * outside the double range whatever its digits (there are fewer than
 * 2^31 of them), and strtod() has the last word.
 */
#define FG_JCS_EXP_SATURATE  INT64_C(1000000000000)

/*
 * One value on the tape.  Strings: off/len is the content between the
 * quotes (already canonical), or the decoded bytes in scratch
 * (FG_JN_DECODED), which the writer escapes.  Numbers:
 * off/len is the number's text, and end indexes its value in nums unless
 * it is FG_JN_SHORT.  Containers: len is the number of
 * elements (or members) and end the index of the first node after the
 * container.  An object's children are key, value, key, value, ...
 */
typedef struct {
    uint8_t   type;
    uint8_t   flags;
    uint32_t  src;       /* byte offset of the value in the input */
    uint32_t  off;
    uint32_t  len;
    uint32_t  end;
} fg_jnode_t;

struct fg_jcs_s {
    unsigned       max_depth;

    /* the tape */
    fg_jnode_t    *nodes;
    size_t         nnodes;
    size_t         cap_nodes;

    /* decoded strings */
    unsigned char *scratch;
    size_t         scratch_len;
    size_t         cap_scratch;

    /* the values of numbers that are not FG_JN_SHORT, read once */
    double        *nums;
    size_t         nnums;
    size_t         cap_nums;

    /* member order while writing objects: a stack of node indices */
    uint32_t      *order;
    size_t         cap_order;

    /* the input of the current call */
    const unsigned char  *in;
    size_t                in_len;
    fg_error_t           *err;
};


/* ------------------------------------------------------------ lifetime */

fg_jcs_t *
fg_jcs_new(unsigned max_depth)
{
    fg_jcs_t  *jcs;

    if (max_depth == 0) {
        max_depth = FG_JCS_DEFAULT_MAX_DEPTH;
    }

    if (max_depth > FG_JCS_MAX_DEPTH_LIMIT) {
        max_depth = FG_JCS_MAX_DEPTH_LIMIT;
    }

    jcs = calloc(1, sizeof(fg_jcs_t));
    if (jcs == NULL) {
        return NULL;
    }

    jcs->max_depth = max_depth;

    return jcs;
}


void
fg_jcs_free(fg_jcs_t *jcs)
{
    if (jcs == NULL) {
        return;
    }

    free(jcs->nodes);
    free(jcs->scratch);
    free(jcs->nums);
    free(jcs->order);
    free(jcs);
}


static int
fg_jcs_grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t  ncap;
    void   *np;

    if (need <= *cap) {
        return FG_OK;
    }

    ncap = *cap ? *cap : 64;
    while (ncap < need) {
        ncap *= 2;
    }

    if (ncap > SIZE_MAX / size) {
        return FG_ERR_NOMEM;
    }

    np = realloc(*p, ncap * size);
    if (np == NULL) {
        return FG_ERR_NOMEM;
    }

    *p = np;
    *cap = ncap;

    return FG_OK;
}


/* -------------------------------------------------------------- errors */

static int
fg_jcs_fail(fg_jcs_t *jcs, int code, size_t at, const char *what)
{
    return fg_error_set(jcs->err, code, at, "%s at byte %zu", what, at);
}


static int
fg_jcs_fail_byte(fg_jcs_t *jcs, int code, size_t at, const char *what)
{
    unsigned char  c = jcs->in[at];

    if (c >= 0x21 && c < 0x7f) {
        return fg_error_set(jcs->err, code, at, "%s '%c' at byte %zu",
                            what, c, at);
    }

    return fg_error_set(jcs->err, code, at, "%s 0x%02x at byte %zu",
                        what, c, at);
}


/* ---------------------------------------------------------------- read */

static int fg_jcs_read_value(fg_jcs_t *jcs, size_t *pos, unsigned depth);


static inline size_t
fg_jcs_skip_ws(const unsigned char *in, size_t len, size_t pos)
{
    while (pos < len
           && (in[pos] == ' ' || in[pos] == '\n' || in[pos] == '\r'
               || in[pos] == '\t'))
    {
        pos++;
    }

    return pos;
}


static int
fg_jcs_push(fg_jcs_t *jcs, int type, size_t src, uint32_t *index)
{
    fg_jnode_t  *n;

    if (jcs->nnodes == jcs->cap_nodes
        && fg_jcs_grow((void **) &jcs->nodes, &jcs->cap_nodes,
                       jcs->nnodes + 1, sizeof(fg_jnode_t)) != FG_OK)
    {
        return fg_error_set(jcs->err, FG_ERR_NOMEM, src, "out of memory");
    }

    n = &jcs->nodes[jcs->nnodes];
    n->type = (uint8_t) type;
    n->flags = 0;
    n->src = (uint32_t) src;
    n->off = 0;
    n->len = 0;
    n->end = 0;

    *index = (uint32_t) jcs->nnodes++;

    return FG_OK;
}


static int
fg_jcs_read_literal(fg_jcs_t *jcs, size_t *pos, const char *word, int type)
{
    size_t    n = strlen(word);
    uint32_t  index;

    if (jcs->in_len - *pos < n || memcmp(jcs->in + *pos, word, n) != 0) {
        return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, *pos,
                                "invalid literal starting with");
    }

    if (fg_jcs_push(jcs, type, *pos, &index) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    *pos += n;

    return FG_OK;
}


/*
 * A number: RFC 8259's grammar, then its value's range.  Numbers with at
 * most 15 significant digits whose magnitude lies well inside the normal
 * double range are marked FG_JN_SHORT: no other decimal of at most 15
 * digits rounds to the same double (such decimals are further apart than
 * a double's spacing), so the digits as written, less leading and trailing
 * zeros, are the shortest form ECMAScript would print, and writing them
 * needs neither strtod() nor printf().  Every other number is converted
 * with strtod(), refused when it overflows, and printed from its double.
 */
static int
fg_jcs_read_number(fg_jcs_t *jcs, size_t *pos)
{
    const unsigned char  *in = jcs->in;
    size_t                len = jcs->in_len, p = *pos, start = *pos;
    size_t                sig = 0, zeros = 0;
    int                   seen_nonzero = 0;
    int64_t               exp10 = 0, int_digits = 0, lead_frac_zeros = 0;
    int64_t               e = 0;
    int                   eneg = 0;
    uint32_t              index;
    fg_jnode_t           *node;

    if (in[p] == '-') {
        p++;
        if (p == len) {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "digit expected after '-'");
        }
        if (in[p] == 'I') {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, start,
                               "-Infinity is not a JSON number");
        }
    }

    if (p == len || in[p] < '0' || in[p] > '9') {
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "digit expected");
    }

    if (in[p] == '0') {
        p++;
        if (p < len && in[p] >= '0' && in[p] <= '9') {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, start,
                               "number with a leading zero");
        }

    } else {
        while (p < len && in[p] >= '0' && in[p] <= '9') {
            /* count significant digits; trailing zeros are held back */
            if (in[p] == '0') {
                zeros++;
            } else {
                sig += zeros + 1;
                zeros = 0;
            }
            int_digits++;
            p++;
        }
        seen_nonzero = 1;
    }

    if (p < len && in[p] == '.') {
        p++;
        if (p == len || in[p] < '0' || in[p] > '9') {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "digit expected after '.'");
        }

        while (p < len && in[p] >= '0' && in[p] <= '9') {
            if (in[p] == '0') {
                if (seen_nonzero) {
                    zeros++;
                } else {
                    lead_frac_zeros++;
                }
            } else {
                seen_nonzero = 1;
                sig += zeros + 1;
                zeros = 0;
            }
            p++;
        }
    }

    if (p < len && (in[p] == 'e' || in[p] == 'E')) {
        p++;
        if (p < len && (in[p] == '+' || in[p] == '-')) {
            eneg = (in[p] == '-');
            p++;
        }
        if (p == len || in[p] < '0' || in[p] > '9') {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "digit expected in exponent");
        }
        while (p < len && in[p] >= '0' && in[p] <= '9') {
            if (e < FG_JCS_EXP_SATURATE) {
                e = e * 10 + (in[p] - '0');
            }
            p++;
        }
        if (eneg) {
            e = -e;
        }
    }

    if (p - start > UINT32_MAX) {
        return fg_jcs_fail(jcs, FG_ERR_LIMIT, start, "number too long");
    }

    if (fg_jcs_push(jcs, FG_JT_NUMBER, start, &index) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    node = &jcs->nodes[index];
    node->off = (uint32_t) start;
    node->len = (uint32_t) (p - start);

    /*
     * The value is 0.D x 10^exp10 where D is the significant digits: the
     * integer digits (if any) set the point, leading fraction zeros move
     * it left.  A digit count that overflows "long" is far from the fast
     * path anyway.
     */
    if (sig == 0) {
        node->flags |= FG_JN_SHORT;                 /* zero, or -0 */

    } else if (sig <= 15 && e < FG_JCS_EXP_SATURATE
               && e > -FG_JCS_EXP_SATURATE)
    {
        exp10 = (int_digits > 0 ? int_digits : -lead_frac_zeros) + e;
        if (exp10 >= -306 && exp10 <= 308) {
            node->flags |= FG_JN_SHORT;
        }
    }

    if (!(node->flags & FG_JN_SHORT)) {
        char    stack[64], *text;
        double  v;
        size_t  n = p - start;

        text = (n < sizeof(stack)) ? stack : malloc(n + 1);
        if (text == NULL) {
            return fg_error_set(jcs->err, FG_ERR_NOMEM, start,
                                "out of memory");
        }

        memcpy(text, in + start, n);
        text[n] = '\0';

        errno = 0;
        v = strtod(text, NULL);

        if (text != stack) {
            free(text);
        }

        if (isinf(v)) {
            return fg_jcs_fail(jcs, FG_ERR_INVALID, start,
                               "number beyond the double range");
        }

        if (jcs->nnums == jcs->cap_nums
            && fg_jcs_grow((void **) &jcs->nums, &jcs->cap_nums,
                           jcs->nnums + 1, sizeof(double)) != FG_OK)
        {
            return fg_error_set(jcs->err, FG_ERR_NOMEM, start,
                                "out of memory");
        }

        node->end = (uint32_t) jcs->nnums;
        jcs->nums[jcs->nnums++] = v;
    }

    *pos = p;

    return FG_OK;
}


/* decode 4 hex digits; -1 if one is not hex */
static long
fg_jcs_hex4(const unsigned char *p)
{
    long  v = 0;
    int   i, c;

    for (i = 0; i < 4; i++) {
        c = p[i];
        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if (c >= 'a' && c <= 'f') {
            c -= 'a' - 10;
        } else if (c >= 'A' && c <= 'F') {
            c -= 'A' - 10;
        } else {
            return -1;
        }
        v = (v << 4) | c;
    }

    return v;
}


/*
 * Check one UTF-8 sequence starting at in[p] (a byte >= 0x80), per RFC
 * 3629's table: no overlong forms, no encoded surrogates, nothing above
 * U+10FFFF.  Returns its length, or 0 after setting the error.
 */
static size_t
fg_jcs_check_utf8(fg_jcs_t *jcs, size_t p)
{
    const unsigned char  *s = jcs->in + p;
    fg_utf8_error_t       why;
    size_t                n, at;

    n = fg_utf8_sequence(s, jcs->in_len - p, NULL, &why, &at);
    if (n > 0) {
        return n;
    }

    switch (why) {
    case FG_UTF8_BAD_LEAD:
        fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                         (s[0] == 0xc0 || s[0] == 0xc1)
                         ? "overlong UTF-8 lead byte" : "invalid UTF-8 byte");
        break;
    case FG_UTF8_TRUNCATED:
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "truncated UTF-8 sequence");
        break;
    case FG_UTF8_SURROGATE:
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "UTF-8 encoded surrogate");
        break;
    case FG_UTF8_TOO_BIG:
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "code point above U+10FFFF");
        break;
    case FG_UTF8_OVERLONG:
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "overlong UTF-8 sequence");
        break;
    default:
        fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p + at,
                         "invalid UTF-8 continuation byte");
    }

    return 0;
}


static int
fg_jcs_scratch_put(fg_jcs_t *jcs, const void *p, size_t n)
{
    if (n == 0) {
        return FG_OK;
    }

    if (jcs->scratch_len + n > jcs->cap_scratch
        && fg_jcs_grow((void **) &jcs->scratch, &jcs->cap_scratch,
                       jcs->scratch_len + n, 1) != FG_OK)
    {
        return FG_ERR_NOMEM;
    }

    memcpy(jcs->scratch + jcs->scratch_len, p, n);
    jcs->scratch_len += n;

    return FG_OK;
}


/*
 * One escape sequence at in[p] ('\\'), decoded as UTF-8 into scratch.
 * Returns the number of input bytes it took, or 0 after setting the error.
 */
static size_t
fg_jcs_read_escape(fg_jcs_t *jcs, size_t p)
{
    const unsigned char  *in = jcs->in;
    unsigned char         u[4];
    long                  cp, lo;
    size_t                n, used = 6;
    char                  c;

    if (p + 1 >= jcs->in_len) {
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "unterminated string");
        return 0;
    }

    switch (in[p + 1]) {
    case '"':  c = '"';  break;
    case '\\': c = '\\'; break;
    case '/':  c = '/';  break;
    case 'b':  c = '\b'; break;
    case 'f':  c = '\f'; break;
    case 'n':  c = '\n'; break;
    case 'r':  c = '\r'; break;
    case 't':  c = '\t'; break;
    case 'u':  c = 0;    break;
    default:
        fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p + 1, "invalid escape");
        return 0;
    }

    if (c != 0) {
        if (fg_jcs_scratch_put(jcs, &c, 1) != FG_OK) {
            fg_error_set(jcs->err, FG_ERR_NOMEM, p, "out of memory");
            return 0;
        }
        return 2;
    }

    if (jcs->in_len - p < 6 || (cp = fg_jcs_hex4(in + p + 2)) < 0) {
        fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "invalid \\u escape");
        return 0;
    }

    if (cp >= 0xdc00 && cp <= 0xdfff) {
        fg_error_set(jcs->err, FG_ERR_SYNTAX, p,
                     "lone low surrogate \\u%04lX at byte %zu", cp, p);
        return 0;
    }

    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (jcs->in_len - p < 12 || in[p + 6] != '\\' || in[p + 7] != 'u'
            || (lo = fg_jcs_hex4(in + p + 8)) < 0xdc00 || lo > 0xdfff)
        {
            fg_error_set(jcs->err, FG_ERR_SYNTAX, p,
                         "lone high surrogate \\u%04lX at byte %zu", cp, p);
            return 0;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        used = 12;
    }

    n = fg_jcs_utf8_encode((uint32_t) cp, u);

    if (fg_jcs_scratch_put(jcs, u, n) != FG_OK) {
        fg_error_set(jcs->err, FG_ERR_NOMEM, p, "out of memory");
        return 0;
    }

    return used;
}


/*
 * The length of the escape at s (a backslash) if it is already in the form
 * RFC 8785 writes: \" \\ \b \t \n \f \r, or \u00xx in lowercase hex
 * for the other control characters.  0 for any other escape.
 */
static size_t
fg_jcs_canonical_escape(const unsigned char *s, size_t avail)
{
    unsigned  v;

    if (avail < 2) {
        return 0;
    }

    switch (s[1]) {
    case '"': case '\\': case 'b': case 't': case 'n': case 'f': case 'r':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }

    if (avail < 6 || s[2] != '0' || s[3] != '0'
        || (s[4] != '0' && s[4] != '1'))
    {
        return 0;
    }

    if (s[5] >= '0' && s[5] <= '9') {
        v = s[5] - '0';
    } else if (s[5] >= 'a' && s[5] <= 'f') {
        v = s[5] - 'a' + 10;
    } else {
        return 0;
    }

    v += (s[4] - '0') * 16;

    /* these five have short forms */
    return (v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r')
           ? 0 : 6;
}


/*
 * A string at in[*pos] ('"').  A string without escapes, or (as a value)
 * with only escapes already in canonical form, is recorded in place: its
 * bytes are its canonical form.  Keys with escapes (they are compared
 * decoded) and values with other escapes are decoded into scratch; the
 * first such escape restarts the scan in decoding mode.
 */
static int
fg_jcs_read_string(fg_jcs_t *jcs, size_t *pos, int is_key)
{
    const unsigned char  *in = jcs->in;
    size_t                len = jcs->in_len, start = *pos, p = start + 1;
    size_t                run, n, scratch_start = 0;
    int                   decoding = 0;
    uint32_t              index;
    fg_jnode_t           *node;
    uint64_t              x;

    for ( ;; ) {
        run = p;

        /* skip ordinary ASCII eight bytes at a time */
        while (len - p >= 8) {
            memcpy(&x, in + p, 8);
            if (fg_jcs_special8(x, 1)) {
                break;
            }
            p += 8;
        }

        while (p < len && in[p] >= 0x20 && in[p] < 0x80
               && in[p] != '"' && in[p] != '\\')
        {
            p++;
        }

        if (p == len) {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, start,
                               "unterminated string starting");
        }

        if (in[p] >= 0x80) {
            n = fg_jcs_check_utf8(jcs, p);
            if (n == 0) {
                return jcs->err ? jcs->err->code : FG_ERR_SYNTAX;
            }
            p += n;
            if (decoding
                && fg_jcs_scratch_put(jcs, in + run, p - run) != FG_OK)
            {
                goto nomem;
            }
            continue;
        }

        if (decoding && p > run
            && fg_jcs_scratch_put(jcs, in + run, p - run) != FG_OK)
        {
            goto nomem;
        }

        if (in[p] == '"') {
            break;
        }

        if (in[p] < 0x20) {
            return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                    "unescaped control character");
        }

        /* a backslash */
        if (!decoding) {
            if (!is_key) {
                n = fg_jcs_canonical_escape(in + p, len - p);
                if (n > 0) {
                    p += n;
                    continue;
                }
            }

            decoding = 1;
            scratch_start = jcs->scratch_len;
            p = start + 1;
            continue;
        }

        n = fg_jcs_read_escape(jcs, p);
        if (n == 0) {
            return jcs->err ? jcs->err->code : FG_ERR_SYNTAX;
        }
        p += n;
    }

    if (fg_jcs_push(jcs, FG_JT_STRING, start, &index) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    node = &jcs->nodes[index];

    if (decoding) {
        node->flags = FG_JN_DECODED;
        node->off = (uint32_t) scratch_start;
        node->len = (uint32_t) (jcs->scratch_len - scratch_start);

    } else {
        node->off = (uint32_t) (start + 1);
        node->len = (uint32_t) (p - start - 1);
    }

    *pos = p + 1;

    return FG_OK;

nomem:

    return fg_error_set(jcs->err, FG_ERR_NOMEM, p, "out of memory");
}


static int
fg_jcs_read_array(fg_jcs_t *jcs, size_t *pos, unsigned depth)
{
    size_t    p = *pos + 1, count = 0;
    uint32_t  index;
    int       rc;

    if (fg_jcs_push(jcs, FG_JT_ARRAY, *pos, &index) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

    if (p < jcs->in_len && jcs->in[p] == ']') {
        p++;
        goto done;
    }

    for ( ;; ) {
        rc = fg_jcs_read_value(jcs, &p, depth + 1);
        if (rc != FG_OK) {
            return rc;
        }
        count++;

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

        if (p == jcs->in_len) {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "unexpected end of input in array");
        }

        if (jcs->in[p] == ']') {
            p++;
            break;
        }

        if (jcs->in[p] != ',') {
            return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                    "expected ',' or ']' but found");
        }

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p + 1);
    }

done:

    jcs->nodes[index].len = (uint32_t) count;
    jcs->nodes[index].end = (uint32_t) jcs->nnodes;
    *pos = p;

    return FG_OK;
}


static int
fg_jcs_read_object(fg_jcs_t *jcs, size_t *pos, unsigned depth)
{
    size_t    p = *pos + 1, count = 0;
    uint32_t  index;
    int       rc;

    if (fg_jcs_push(jcs, FG_JT_OBJECT, *pos, &index) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

    if (p < jcs->in_len && jcs->in[p] == '}') {
        p++;
        goto done;
    }

    for ( ;; ) {
        if (p == jcs->in_len) {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "unexpected end of input in object");
        }

        if (jcs->in[p] != '"') {
            return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                    "expected a string key but found");
        }

        rc = fg_jcs_read_string(jcs, &p, 1);
        if (rc != FG_OK) {
            return rc;
        }

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

        if (p == jcs->in_len || jcs->in[p] != ':') {
            return (p == jcs->in_len)
                   ? fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                                 "unexpected end of input in object")
                   : fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                      "expected ':' but found");
        }

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p + 1);

        rc = fg_jcs_read_value(jcs, &p, depth + 1);
        if (rc != FG_OK) {
            return rc;
        }
        count++;

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

        if (p == jcs->in_len) {
            return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                               "unexpected end of input in object");
        }

        if (jcs->in[p] == '}') {
            p++;
            break;
        }

        if (jcs->in[p] != ',') {
            return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                    "expected ',' or '}' but found");
        }

        p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p + 1);
    }

done:

    jcs->nodes[index].len = (uint32_t) count;
    jcs->nodes[index].end = (uint32_t) jcs->nnodes;
    *pos = p;

    return FG_OK;
}


static int
fg_jcs_read_value(fg_jcs_t *jcs, size_t *pos, unsigned depth)
{
    size_t  p = *pos;

    if (p == jcs->in_len) {
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                           "unexpected end of input, value expected");
    }

    switch (jcs->in[p]) {

    case '{':
    case '[':
        if (depth >= jcs->max_depth) {
            return fg_error_set(jcs->err, FG_ERR_LIMIT, p,
                                "nesting deeper than %u at byte %zu",
                                jcs->max_depth, p);
        }
        return (jcs->in[p] == '{') ? fg_jcs_read_object(jcs, pos, depth)
                                   : fg_jcs_read_array(jcs, pos, depth);

    case '"':
        return fg_jcs_read_string(jcs, pos, 0);

    case 't':
        return fg_jcs_read_literal(jcs, pos, "true", FG_JT_TRUE);

    case 'f':
        return fg_jcs_read_literal(jcs, pos, "false", FG_JT_FALSE);

    case 'n':
        return fg_jcs_read_literal(jcs, pos, "null", FG_JT_NULL);

    case 'N':
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p, "NaN is not a JSON number");

    case 'I':
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                           "Infinity is not a JSON number");

    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return fg_jcs_read_number(jcs, pos);

    default:
        return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                "expected a value but found");
    }
}


static int
fg_jcs_read(fg_jcs_t *jcs)
{
    size_t  p;
    int     rc;

    jcs->nnodes = 0;
    jcs->scratch_len = 0;
    jcs->nnums = 0;

    if (jcs->in_len >= 3 && memcmp(jcs->in, "\xef\xbb\xbf", 3) == 0) {
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, 0,
                           "byte order mark is not allowed");
    }

    p = fg_jcs_skip_ws(jcs->in, jcs->in_len, 0);

    if (p == jcs->in_len) {
        return fg_jcs_fail(jcs, FG_ERR_SYNTAX, p,
                           jcs->in_len ? "no JSON value, only whitespace,"
                                       : "empty input");
    }

    rc = fg_jcs_read_value(jcs, &p, 0);
    if (rc != FG_OK) {
        return rc;
    }

    p = fg_jcs_skip_ws(jcs->in, jcs->in_len, p);

    if (p != jcs->in_len) {
        return fg_jcs_fail_byte(jcs, FG_ERR_SYNTAX, p,
                                "trailing data after the JSON value:");
    }

    return FG_OK;
}


/* --------------------------------------------------------------- write */

static inline const unsigned char *
fg_jcs_str(const fg_jcs_t *jcs, const fg_jnode_t *n)
{
    return (n->flags & FG_JN_DECODED) ? jcs->scratch + n->off
                                      : jcs->in + n->off;
}


static int
fg_jcs_write_number(fg_jcs_t *jcs, const fg_jnode_t *n, fg_sink_t *out)
{
    char    buf[FG_JCS_NUMBER_MAX];
    size_t  len;

    if (n->flags & FG_JN_SHORT) {
        return fg_jcs_write_decimal(jcs->in + n->off, n->len, out);
    }

    len = fg_jcs_format_number(jcs->nums[n->end], buf);

    return fg_sink_write(out, buf, len);
}


/* order two members of one object by key; used by the sort below */
static inline int
fg_jcs_member_cmp(const fg_jcs_t *jcs, uint32_t a, uint32_t b)
{
    const fg_jnode_t  *ka = &jcs->nodes[a], *kb = &jcs->nodes[b];

    return fg_jcs_key_compare(fg_jcs_str(jcs, ka), ka->len,
                              fg_jcs_str(jcs, kb), kb->len);
}


static int
fg_jcs_member_qcmp(const void *a, const void *b, void *jcs)
{
    return fg_jcs_member_cmp(jcs, *(const uint32_t *) a,
                             *(const uint32_t *) b);
}


static void
fg_jcs_sort_members(fg_jcs_t *jcs, uint32_t *keys, size_t n)
{
    size_t    i, j;
    uint32_t  k;

    if (n > 16) {
        /* canonical input (a ledger line, a stream's record) is sorted
         * already: one pass says so, instead of a merge sort */
        for (i = 1; i < n; i++) {
            if (fg_jcs_member_cmp(jcs, keys[i - 1], keys[i]) > 0) {
                qsort_r(keys, n, sizeof(uint32_t), fg_jcs_member_qcmp, jcs);
                return;
            }
        }
        return;
    }

    for (i = 1; i < n; i++) {
        k = keys[i];
        for (j = i; j > 0 && fg_jcs_member_cmp(jcs, keys[j - 1], k) > 0; j--)
        {
            keys[j] = keys[j - 1];
        }
        keys[j] = k;
    }
}


static int
fg_jcs_duplicate(fg_jcs_t *jcs, uint32_t a, uint32_t b)
{
    const fg_jnode_t  *k = &jcs->nodes[a];
    size_t             at = jcs->nodes[a].src;
    char               name[48];

    if (jcs->nodes[b].src > at) {
        at = jcs->nodes[b].src;
    }

    fg_jcs_printable(fg_jcs_str(jcs, k), k->len, name, sizeof(name));

    return fg_error_set(jcs->err, FG_ERR_INVALID, at,
                        "duplicate object key \"%s\" at byte %zu", name, at);
}


static int fg_jcs_write_value(fg_jcs_t *jcs, uint32_t i, size_t top,
    fg_sink_t *out, uint32_t *next);


static int
fg_jcs_write_object(fg_jcs_t *jcs, uint32_t i, size_t top, fg_sink_t *out)
{
    const fg_jnode_t  *obj = &jcs->nodes[i];
    uint32_t          *keys = jcs->order + top;
    uint32_t           k, m, next;
    const fg_jnode_t  *key;
    int                rc;

    /* gather the key nodes: key, value subtree, key, ... */
    k = i + 1;
    for (m = 0; m < obj->len; m++) {
        keys[m] = k;
        k++;
        k = (jcs->nodes[k].type >= FG_JT_ARRAY) ? jcs->nodes[k].end : k + 1;
    }

    fg_jcs_sort_members(jcs, keys, obj->len);

    if ((rc = fg_sink_byte(out, '{')) != FG_OK) {
        return rc;
    }

    for (m = 0; m < obj->len; m++) {
        if (m > 0) {
            if (fg_jcs_member_cmp(jcs, keys[m - 1], keys[m]) == 0) {
                return fg_jcs_duplicate(jcs, keys[m - 1], keys[m]);
            }
            if ((rc = fg_sink_byte(out, ',')) != FG_OK) {
                return rc;
            }
        }

        key = &jcs->nodes[keys[m]];
        rc = fg_jcs_write_string(fg_jcs_str(jcs, key), key->len,
                                 !(key->flags & FG_JN_DECODED), out);
        if (rc != FG_OK || (rc = fg_sink_byte(out, ':')) != FG_OK) {
            return rc;
        }

        rc = fg_jcs_write_value(jcs, keys[m] + 1, top + obj->len, out,
                                &next);
        if (rc != FG_OK) {
            return rc;
        }
    }

    return fg_sink_byte(out, '}');
}


static int
fg_jcs_write_value(fg_jcs_t *jcs, uint32_t i, size_t top, fg_sink_t *out,
    uint32_t *next)
{
    const fg_jnode_t  *n = &jcs->nodes[i];
    uint32_t           k, m;
    int                rc;

    *next = (n->type >= FG_JT_ARRAY) ? n->end : i + 1;

    switch (n->type) {

    case FG_JT_NULL:
        return fg_sink_write(out, "null", 4);

    case FG_JT_FALSE:
        return fg_sink_write(out, "false", 5);

    case FG_JT_TRUE:
        return fg_sink_write(out, "true", 4);

    case FG_JT_NUMBER:
        return fg_jcs_write_number(jcs, n, out);

    case FG_JT_STRING:
        return fg_jcs_write_string(fg_jcs_str(jcs, n), n->len,
                                   !(n->flags & FG_JN_DECODED), out);

    case FG_JT_ARRAY:
        if ((rc = fg_sink_byte(out, '[')) != FG_OK) {
            return rc;
        }
        for (m = 0, k = i + 1; m < n->len; m++) {
            if (m > 0 && (rc = fg_sink_byte(out, ',')) != FG_OK) {
                return rc;
            }
            rc = fg_jcs_write_value(jcs, k, top, out, &k);
            if (rc != FG_OK) {
                return rc;
            }
        }
        return fg_sink_byte(out, ']');

    default:
        return fg_jcs_write_object(jcs, i, top, out);
    }
}


int
fg_jcs_canonicalize(fg_jcs_t *jcs, const unsigned char *in, size_t len,
    fg_sink_t *out, fg_error_t *err)
{
    uint32_t  next;
    int       rc;

    if (len > FG_JCS_MAX_INPUT) {
        return fg_error_set(err, FG_ERR_LIMIT, 0,
                            "input of %zu bytes is larger than %zu",
                            len, FG_JCS_MAX_INPUT);
    }

    if (err != NULL) {
        err->code = FG_OK;
        err->offset = FG_NO_OFFSET;
        err->msg[0] = '\0';
    }

    jcs->in = in;
    jcs->in_len = len;
    jcs->err = err;

    rc = fg_jcs_read(jcs);

    if (rc == FG_OK
        && fg_jcs_grow((void **) &jcs->order, &jcs->cap_order, jcs->nnodes,
                       sizeof(uint32_t)) != FG_OK)
    {
        rc = fg_error_set(err, FG_ERR_NOMEM, 0, "out of memory");
    }

    if (rc == FG_OK) {
        rc = fg_jcs_write_value(jcs, 0, 0, out, &next);
    }

    if (rc == FG_OK) {
        rc = fg_sink_drain(out);
    }

    if (rc != FG_OK && err != NULL && err->msg[0] == '\0') {
        fg_error_set(err, rc, FG_NO_OFFSET, "output failed: %s",
                     fg_strerror(rc));
    }

    /* the tape and its input stay for fg_jcs_node_*(), when they are whole */
    if (rc != FG_OK) {
        jcs->nnodes = 0;
        jcs->in = NULL;
    }
    jcs->err = NULL;

    return rc;
}


/* ---------------------------------------------------------------- view */

fg_jcs_kind_t
fg_jcs_node_kind(const fg_jcs_t *jcs, uint32_t node)
{
    if (node >= jcs->nnodes) {
        return FG_JCS_NONE;
    }

    /* the tape's types are numbered as the kinds are */
    return (fg_jcs_kind_t) jcs->nodes[node].type;
}


size_t
fg_jcs_node_offset(const fg_jcs_t *jcs, uint32_t node)
{
    return node < jcs->nnodes ? jcs->nodes[node].src : 0;
}


size_t
fg_jcs_node_size(const fg_jcs_t *jcs, uint32_t node)
{
    fg_jcs_kind_t  k = fg_jcs_node_kind(jcs, node);

    return (k == FG_JCS_ARRAY || k == FG_JCS_OBJECT) ? jcs->nodes[node].len
                                                      : 0;
}


/* The node after node and everything inside it. */
static uint32_t
fg_jcs_node_next(const fg_jcs_t *jcs, uint32_t node)
{
    const fg_jnode_t  *n = &jcs->nodes[node];

    return (n->type == FG_JT_ARRAY || n->type == FG_JT_OBJECT) ? n->end
                                                                : node + 1;
}


uint32_t
fg_jcs_node_member(const fg_jcs_t *jcs, uint32_t node, const char *key,
    size_t klen)
{
    size_t             i;
    uint32_t           k;
    const fg_jnode_t  *kn;

    if (fg_jcs_node_kind(jcs, node) != FG_JCS_OBJECT) {
        return FG_JCS_NO_NODE;
    }

    k = node + 1;

    for (i = 0; i < jcs->nodes[node].len; i++) {
        kn = &jcs->nodes[k];

        if (kn->len == klen && memcmp(fg_jcs_str(jcs, kn), key, klen) == 0) {
            return k + 1;
        }

        k = fg_jcs_node_next(jcs, k + 1);
    }

    return FG_JCS_NO_NODE;
}


uint32_t
fg_jcs_node_element(const fg_jcs_t *jcs, uint32_t node, size_t index)
{
    size_t    i;
    uint32_t  e;

    if (fg_jcs_node_kind(jcs, node) != FG_JCS_ARRAY
        || index >= jcs->nodes[node].len)
    {
        return FG_JCS_NO_NODE;
    }

    e = node + 1;

    for (i = 0; i < index; i++) {
        e = fg_jcs_node_next(jcs, e);
    }

    return e;
}


/*
 * A real whose canonical form is an integer that 64 bits do not hold:
 * ECMAScript writes an integral double below 1e21 without an exponent, so
 * 1.2e20 is canonically 120000000000000000000, which jansson and this
 * reader refuse as an integer beyond 64 bits.  Read as a real it would be
 * written into a record that no reader could read back, so it is refused
 * here as that integer is.  -2^63 itself is written as an integer that fits.
 */
static int
fg_jcs_real_reads_back(double d)
{
    return !(d >= 9223372036854775808.0 || d < -9223372036854775808.0)
           || fabs(d) >= 1e21;
}


static json_t *
fg_jcs_number_json(const fg_jcs_t *jcs, const fg_jnode_t *n, fg_error_t *err)
{
    char          stack[64], *text, *end;
    size_t        k;
    double        d;
    json_t       *v;
    long long     i;
    int           integer;
    const char   *t = (const char *) jcs->in + n->off;

    /* as jansson reads numbers: no fraction and no exponent, an integer */
    integer = 1;
    for (k = 0; k < n->len; k++) {
        if (t[k] == '.' || t[k] == 'e' || t[k] == 'E') {
            integer = 0;
            break;
        }
    }

    if (!integer && !(n->flags & FG_JN_SHORT)) {
        d = jcs->nums[n->end];                      /* read once already */
        if (!fg_jcs_real_reads_back(d)) {
            goto too_big;
        }
        return json_real(d);
    }

    if (integer && n->len > 20) {
        goto too_big;                   /* more digits than 64 bits hold */
    }

    /* the number's text, NUL-ended for strtoll/strtod */
    text = (n->len < sizeof(stack)) ? stack : malloc(n->len + 1);
    if (text == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }
    memcpy(text, t, n->len);
    text[n->len] = '\0';

    if (integer) {
        errno = 0;
        i = strtoll(text, &end, 10);
        if (errno == ERANGE || *end != '\0') {
            goto too_big;               /* text is stack: nothing to free */
        }
        v = json_integer((json_int_t) i);

    } else {
        /* at most 15 significant digits: strtod reads it exactly */
        d = strtod(text, NULL);
        if (!fg_jcs_real_reads_back(d)) {
            if (text != stack) {
                free(text);
            }
            goto too_big;
        }
        v = json_real(d);
    }

    if (text != stack) {
        free(text);
    }
    if (v == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    return v;

too_big:

    fg_error_set(err, FG_ERR_INVALID, n->src,
                 "an integer beyond 64 bits cannot be read, at byte %u",
                 (unsigned) n->src);
    return NULL;
}


/*
 * A string the reader kept as it was written because its escapes are
 * already the canonical ones (\" \\ \b \f \n \r \t \u00xx, nothing
 * else: anything else was decoded into scratch), as a jansson string of
 * the characters it stands for.
 */
static int fg_jcs_hexval(unsigned char c);


static json_t *
fg_jcs_string_json(const unsigned char *s, size_t len, fg_error_t *err)
{
    char    stack[256], *buf;
    size_t  i, k;
    json_t *v;

    buf = len <= sizeof(stack) ? stack : malloc(len);
    if (buf == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    for (i = 0, k = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 == len) {
            buf[k++] = (char) s[i];
            continue;
        }
        switch (s[++i]) {
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u':
            /* \u00xx, lowercase hex: a control character */
            if (i + 4 < len) {
                buf[k++] = (char) ((fg_jcs_hexval(s[i + 3]) << 4)
                                   | fg_jcs_hexval(s[i + 4]));
                i += 4;
            }
            break;
        default:  buf[k++] = (char) s[i]; break;     /* \" and \\ */
        }
    }

    v = json_stringn_nocheck(buf, k);
    if (buf != stack) {
        free(buf);
    }
    if (v == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    return v;
}


static int
fg_jcs_hexval(unsigned char c)
{
    return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}


json_t *
fg_jcs_node_json(const fg_jcs_t *jcs, uint32_t node, fg_error_t *err)
{
    json_t            *v;
    const fg_jnode_t  *n;

    switch (fg_jcs_node_kind(jcs, node)) {
    case FG_JCS_NULL:
        v = json_null();
        break;
    case FG_JCS_FALSE:
        v = json_false();
        break;
    case FG_JCS_TRUE:
        v = json_true();
        break;
    case FG_JCS_NUMBER:
        return fg_jcs_number_json(jcs, &jcs->nodes[node], err);
    case FG_JCS_STRING:
        n = &jcs->nodes[node];
        /* the reader checked the UTF-8 */
        if (!(n->flags & FG_JN_DECODED)
            && memchr(jcs->in + n->off, '\\', n->len) != NULL)
        {
            return fg_jcs_string_json(jcs->in + n->off, n->len, err);
        }
        v = json_stringn_nocheck((const char *) fg_jcs_str(jcs, n), n->len);
        break;
    case FG_JCS_ARRAY:
        v = json_array();
        break;
    case FG_JCS_OBJECT:
        v = json_object();
        break;
    default:
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "no such node");
        return NULL;
    }

    if (v == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    return v;
}


json_t *
fg_jcs_tree_json(const fg_jcs_t *jcs, uint32_t node, fg_error_t *err)
{
    json_t            *v, *child;
    uint32_t           k, i;
    fg_jcs_kind_t      kind;
    const fg_jnode_t  *n, *kn;

    v = fg_jcs_node_json(jcs, node, err);
    if (v == NULL) {
        return NULL;
    }

    kind = fg_jcs_node_kind(jcs, node);
    if (kind != FG_JCS_ARRAY && kind != FG_JCS_OBJECT) {
        return v;
    }
    n = &jcs->nodes[node];

    /* children follow in input order, as json_loadb() would insert them;
     * depth is the reader's, which bounded it */
    k = node + 1;
    for (i = 0; i < n->len; i++) {
        kn = NULL;
        if (kind == FG_JCS_OBJECT) {
            kn = &jcs->nodes[k++];
            /* as json_loadb(): jansson keys are C strings */
            if (memchr(fg_jcs_str(jcs, kn), '\0', kn->len) != NULL) {
                json_decref(v);
                fg_error_set(err, FG_ERR_INVALID, kn->src,
                             "NUL byte in object key at byte %u", kn->src);
                return NULL;
            }
        }

        child = fg_jcs_tree_json(jcs, k, err);
        if (child == NULL) {
            json_decref(v);
            return NULL;
        }

        if ((kn != NULL
             ? json_object_setn_new_nocheck(v, (const char *)
                                            fg_jcs_str(jcs, kn), kn->len,
                                            child)
             : json_array_append_new(v, child)) != 0)
        {
            json_decref(v);
            fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
            return NULL;
        }

        k = fg_jcs_node_next(jcs, k);
    }

    return v;
}

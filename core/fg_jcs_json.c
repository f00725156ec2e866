/*
 * fg_jcs_json.c -- RFC 8785 canonical bytes of a jansson value: the
 * records core/ builds are jansson objects, and their envelope hash is the
 * hash of these bytes.  Strings and numbers are written by the same code
 * as fg_jcs.c uses, so both ways in agree byte for byte.
 */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_jcs.h"
#include "fg_jcs_write.h"

#define FG_JSON_SORT_STACK  32

typedef struct {
    const char  *key;
    size_t       len;
    json_t      *value;
} fg_jcs_member_t;


static int fg_jcs_write_json(const json_t *v, unsigned depth,
    unsigned max_depth, fg_sink_t *out, fg_error_t *err);


/* v in decimal into buf (at least 21 bytes), without snprintf's cost. */
static size_t
fg_jcs_format_int(int64_t v, char *buf)
{
    char      tmp[24], *p;
    uint64_t  u;
    size_t    n;

    p = tmp + sizeof(tmp);
    u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }

    n = (size_t) (tmp + sizeof(tmp) - p);
    memcpy(buf, p, n);
    return n;
}


static int
fg_jcs_member_order(const void *a, const void *b)
{
    const fg_jcs_member_t  *ma = a, *mb = b;

    return fg_jcs_key_compare((const unsigned char *) ma->key, ma->len,
                              (const unsigned char *) mb->key, mb->len);
}


static int
fg_jcs_write_json_object(const json_t *obj, unsigned depth,
    unsigned max_depth, fg_sink_t *out, fg_error_t *err)
{
    fg_jcs_member_t   stack[FG_JSON_SORT_STACK], *m;
    size_t            n = json_object_size(obj), i = 0, len;
    const char       *key;
    json_t           *value;
    int               rc = FG_OK;

    m = (n <= FG_JSON_SORT_STACK) ? stack : malloc(n * sizeof(*m));
    if (m == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    json_object_keylen_foreach((json_t *) obj, key, len, value) {
        m[i].key = key;
        m[i].len = len;
        m[i].value = value;
        i++;
    }

    qsort(m, n, sizeof(*m), fg_jcs_member_order);

    rc = fg_sink_byte(out, '{');

    for (i = 0; rc == FG_OK && i < n; i++) {
        if (i > 0 && (rc = fg_sink_byte(out, ',')) != FG_OK) {
            break;
        }

        rc = fg_jcs_write_string((const unsigned char *) m[i].key, m[i].len,
                                 0, out);
        if (rc == FG_OK) {
            rc = fg_sink_byte(out, ':');
        }
        if (rc == FG_OK) {
            rc = fg_jcs_write_json(m[i].value, depth + 1, max_depth, out,
                                   err);
        }
    }

    if (rc == FG_OK) {
        rc = fg_sink_byte(out, '}');
    }

    if (m != stack) {
        free(m);
    }

    return rc;
}


static int
fg_jcs_write_json(const json_t *v, unsigned depth, unsigned max_depth,
    fg_sink_t *out, fg_error_t *err)
{
    char        buf[FG_JCS_NUMBER_MAX];
    size_t      i, n;
    json_int_t  iv;
    int         rc;

    switch (json_typeof(v)) {

    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= max_depth) {
            return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "nesting deeper than %u", max_depth);
        }

        if (json_is_object(v)) {
            return fg_jcs_write_json_object(v, depth, max_depth, out, err);
        }

        if ((rc = fg_sink_byte(out, '[')) != FG_OK) {
            return rc;
        }
        n = json_array_size(v);
        for (i = 0; i < n; i++) {
            if (i > 0 && (rc = fg_sink_byte(out, ',')) != FG_OK) {
                return rc;
            }
            rc = fg_jcs_write_json(json_array_get(v, i), depth + 1,
                                   max_depth, out, err);
            if (rc != FG_OK) {
                return rc;
            }
        }
        return fg_sink_byte(out, ']');

    case JSON_STRING:
        return fg_jcs_write_string(
                   (const unsigned char *) json_string_value(v),
                   json_string_length(v), 0, out);

    case JSON_INTEGER:
        iv = json_integer_value(v);
        if (iv > -9007199254740992LL && iv < 9007199254740992LL) {
            n = fg_jcs_format_int((int64_t) iv, buf);
            return fg_sink_write(out, buf, n);
        }
        /* beyond 2^53 a JSON number is the double nearest to it */
        n = fg_jcs_format_number((double) iv, buf);
        return fg_sink_write(out, buf, n);

    case JSON_REAL:
        n = fg_jcs_format_number(json_real_value(v), buf);
        if (n == 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "NaN or Infinity is not a JSON number");
        }
        return fg_sink_write(out, buf, n);

    case JSON_TRUE:
        return fg_sink_write(out, "true", 4);

    case JSON_FALSE:
        return fg_sink_write(out, "false", 5);

    case JSON_NULL:
        return fg_sink_write(out, "null", 4);
    }

    return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                        "not a JSON value");
}


int
fg_jcs_canonicalize_json(const json_t *value, unsigned max_depth,
    fg_sink_t *out, fg_error_t *err)
{
    int  rc;

    if (max_depth == 0) {
        max_depth = FG_JCS_DEFAULT_MAX_DEPTH;
    }

    if (value == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "no value");
    }

    rc = fg_jcs_write_json(value, 0, max_depth, out, err);

    if (rc == FG_OK) {
        rc = fg_sink_drain(out);
    }

    return rc;
}

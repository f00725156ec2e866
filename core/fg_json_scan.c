/*
 * fg_json_scan.c -- find one top-level member of a JSON object text
 * without building the document (fg_json_scan.h says why and what is
 * checked).
 */

#include <string.h>

#include "fg_json_scan.h"


static size_t
fg_json_ws(const char *t, size_t len, size_t p)
{
    while (p < len
           && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'))
    {
        p++;
    }
    return p;
}


/* p at the opening quote; returns the index after the closing one, or 0. */
static size_t
fg_json_string_end(const char *t, size_t len, size_t p)
{
    const char  *q;

    for (p++; p < len; p++) {
        /* most bytes of a string are neither: let memchr find the next */
        q = memchr(t + p, '"', len - p);
        if (q == NULL) {
            return 0;
        }
        while (p < (size_t) (q - t)) {
            if (t[p] == '\\') {
                p++;                /* the escaped byte is never the end */
            }
            p++;
        }
        if (p == (size_t) (q - t)) {
            return p + 1;
        }
        /* the quote was escaped: p is past it, go on from there */
        p--;
    }
    return 0;
}


/* p at the value's first byte; returns the index after it, or 0. */
static size_t
fg_json_value_end(const char *t, size_t len, size_t p)
{
    size_t  depth;

    if (p >= len) {
        return 0;
    }

    if (t[p] == '"') {
        return fg_json_string_end(t, len, p);
    }

    if (t[p] != '{' && t[p] != '[') {
        /* a number or literal: up to the next delimiter */
        while (p < len && t[p] != ',' && t[p] != '}' && t[p] != ']'
               && t[p] != ' ' && t[p] != '\t' && t[p] != '\n'
               && t[p] != '\r' && t[p] != '"' && t[p] != '{'
               && t[p] != '[' && t[p] != ':')
        {
            p++;
        }
        return p;
    }

    depth = 0;
    while (p < len) {
        switch (t[p]) {
        case '"':
            p = fg_json_string_end(t, len, p);
            if (p == 0) {
                return 0;
            }
            continue;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (--depth == 0) {
                return p + 1;
            }
            break;
        default:
            break;
        }
        p++;
    }
    return 0;
}


int
fg_json_member(const char *text, size_t len, const char *key, size_t klen,
    size_t *off, size_t *vlen)
{
    int     found;
    size_t  p, k, kend, v, vend;

    found = FG_JSON_ABSENT;

    p = fg_json_ws(text, len, 0);
    if (p >= len || text[p] != '{') {
        return FG_JSON_MALFORMED;
    }
    p = fg_json_ws(text, len, p + 1);

    if (p < len && text[p] == '}') {
        p++;
        goto end;
    }

    for ( ;; ) {
        if (p >= len || text[p] != '"') {
            return FG_JSON_MALFORMED;
        }
        k = p + 1;
        kend = fg_json_string_end(text, len, p);
        if (kend == 0) {
            return FG_JSON_MALFORMED;
        }

        p = fg_json_ws(text, len, kend);
        if (p >= len || text[p] != ':') {
            return FG_JSON_MALFORMED;
        }
        v = fg_json_ws(text, len, p + 1);
        vend = fg_json_value_end(text, len, v);
        if (vend == 0 || vend == v) {
            return FG_JSON_MALFORMED;
        }

        if (kend - 1 - k == klen && memcmp(text + k, key, klen) == 0) {
            if (found == FG_JSON_FOUND) {
                return FG_JSON_MALFORMED;
            }
            found = FG_JSON_FOUND;
            *off = v;
            *vlen = vend - v;
        }

        p = fg_json_ws(text, len, vend);
        if (p < len && text[p] == ',') {
            p = fg_json_ws(text, len, p + 1);
            continue;
        }
        if (p < len && text[p] == '}') {
            p++;
            break;
        }
        return FG_JSON_MALFORMED;
    }

end:

    if (fg_json_ws(text, len, p) != len) {
        return FG_JSON_MALFORMED;
    }
    return found;
}

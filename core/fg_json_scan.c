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


/*
 * p at the opening quote; returns the index after the closing one, or 0.
 * Only quotes are looked at (memchr finds them): a quote is the end
 * unless an odd number of backslashes stands right before it.
 */
static size_t
fg_json_string_end(const char *t, size_t len, size_t p)
{
    const char  *q, *b;

    for (p++; p < len; p = (size_t) (q - t) + 1) {
        q = memchr(t + p, '"', len - p);
        if (q == NULL) {
            return 0;
        }
        for (b = q; b > t + p && b[-1] == '\\'; b--) {
            /* void */
        }
        if (((q - b) & 1) == 0) {
            return (size_t) (q - t) + 1;
        }
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
fg_json_members(const char *text, size_t len, const char *const *keys,
    size_t nkeys, fg_json_span_t *spans)
{
    size_t  p, k, kend, v, vend, i;

    for (i = 0; i < nkeys; i++) {
        spans[i].found = 0;
    }

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

        for (i = 0; i < nkeys; i++) {
            if (kend - 1 - k == strlen(keys[i])
                && memcmp(text + k, keys[i], kend - 1 - k) == 0)
            {
                if (spans[i].found) {
                    return FG_JSON_MALFORMED;
                }
                spans[i].found = 1;
                spans[i].off = v;
                spans[i].len = vend - v;
            }
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

    return fg_json_ws(text, len, p) == len ? FG_JSON_FOUND : FG_JSON_MALFORMED;
}

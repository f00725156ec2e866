/*
 * fg_utf8.c -- UTF-8 checking and counting (RFC 3629, table 3-7 of the
 * Unicode standard).
 */

#include <stdint.h>
#include <string.h>

#include "fg_utf8.h"


size_t
fg_utf8_sequence(const unsigned char *s, size_t avail, uint32_t *cp,
    fg_utf8_error_t *why, size_t *at)
{
    unsigned char  lo = 0x80, hi = 0xbf;
    uint32_t       v;
    size_t         n, i;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2; v = s[0] & 0x1f;
    } else if (s[0] == 0xe0) {
        n = 3; v = 0; lo = 0xa0;
    } else if (s[0] == 0xed) {
        n = 3; v = 0x0d; hi = 0x9f;
    } else if (s[0] >= 0xe1 && s[0] <= 0xef) {
        n = 3; v = s[0] & 0x0f;
    } else if (s[0] == 0xf0) {
        n = 4; v = 0; lo = 0x90;
    } else if (s[0] >= 0xf1 && s[0] <= 0xf3) {
        n = 4; v = s[0] & 0x07;
    } else if (s[0] == 0xf4) {
        n = 4; v = 4; hi = 0x8f;
    } else {
        *why = FG_UTF8_BAD_LEAD;
        *at = 0;
        return 0;
    }

    if (avail < n) {
        *why = FG_UTF8_TRUNCATED;
        *at = 0;
        return 0;
    }

    if (s[1] < lo || s[1] > hi) {
        if (s[1] >= 0x80 && s[1] <= 0xbf) {
            *why = (s[0] == 0xed) ? FG_UTF8_SURROGATE
                   : (s[0] == 0xf4) ? FG_UTF8_TOO_BIG : FG_UTF8_OVERLONG;
            *at = 0;
        } else {
            *why = FG_UTF8_BAD_CONTINUATION;
            *at = 1;
        }
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *why = FG_UTF8_BAD_CONTINUATION;
            *at = i;
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }

    if (cp != NULL) {
        *cp = v;
    }

    return n;
}


int
fg_utf8_valid(const unsigned char *s, size_t n)
{
    fg_utf8_error_t  why;
    size_t           i = 0, k, at;

    while (i < n) {
        /* ASCII eight bytes at a time */
        while (n - i >= 8) {
            uint64_t  x;

            memcpy(&x, s + i, 8);
            if (x & 0x8080808080808080ULL) {
                break;
            }
            i += 8;
        }
        if (i == n) {
            break;
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = fg_utf8_sequence(s + i, n - i, NULL, &why, &at);
        if (k == 0) {
            return 0;
        }
        i += k;
    }

    return 1;
}


size_t
fg_utf8_length(const unsigned char *s, size_t n)
{
    size_t  i, chars = 0;

    for (i = 0; i < n; i++) {
        chars += (s[i] & 0xc0) != 0x80;
    }

    return chars;
}

/*
 * fg_jcs_write.c -- canonical strings (RFC 8785 section 3.2.2.2), UTF-8
 * encoding, and the UTF-16 key order of section 3.2.3.
 */

#include <stdio.h>
#include <string.h>

#include "fg_jcs.h"
#include "fg_jcs_write.h"


static const char  fg_hex[] = "0123456789abcdef";


int
fg_jcs_write_string(const unsigned char *s, size_t len, int verbatim,
    fg_sink_t *out)
{
    const unsigned char  *run, *end = s + len;
    unsigned char         esc[6];
    size_t                n;
    int                   rc;

    if ((rc = fg_sink_byte(out, '"')) != FG_OK) {
        return rc;
    }

    if (verbatim) {
        if ((rc = fg_sink_write(out, s, len)) != FG_OK) {
            return rc;
        }
        return fg_sink_byte(out, '"');
    }

    while (s < end) {
        run = s;

        while (end - s >= 8) {
            uint64_t  x;

            memcpy(&x, s, 8);
            if (fg_jcs_special8(x, 0)) {
                break;
            }
            s += 8;
        }

        while (s < end && *s >= 0x20 && *s != '"' && *s != '\\') {
            s++;
        }

        if (s > run && (rc = fg_sink_write(out, run, s - run)) != FG_OK) {
            return rc;
        }

        if (s == end) {
            break;
        }

        esc[0] = '\\';
        n = 2;

        switch (*s) {
        case '"':  esc[1] = '"';  break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b';  break;
        case '\t': esc[1] = 't';  break;
        case '\n': esc[1] = 'n';  break;
        case '\f': esc[1] = 'f';  break;
        case '\r': esc[1] = 'r';  break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = (unsigned char) fg_hex[*s >> 4];
            esc[5] = (unsigned char) fg_hex[*s & 0x0f];
            n = 6;
        }

        if ((rc = fg_sink_write(out, esc, n)) != FG_OK) {
            return rc;
        }
        s++;
    }

    return fg_sink_byte(out, '"');
}


size_t
fg_jcs_utf8_encode(uint32_t cp, unsigned char u[4])
{
    if (cp < 0x80) {
        u[0] = (unsigned char) cp;
        return 1;
    }

    if (cp < 0x800) {
        u[0] = (unsigned char) (0xc0 | (cp >> 6));
        u[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        u[0] = (unsigned char) (0xe0 | (cp >> 12));
        u[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }

    u[0] = (unsigned char) (0xf0 | (cp >> 18));
    u[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
    u[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
    u[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}


void
fg_jcs_printable(const unsigned char *s, size_t len, char *buf, size_t size)
{
    size_t  i, o = 0;

    for (i = 0; i < len && o + 8 < size; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') {
            buf[o++] = (char) s[i];
        } else {
            o += (size_t) snprintf(buf + o, size - o, "\\x%02x", s[i]);
        }
    }

    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }

    buf[o] = '\0';
}


/* decode the (valid) UTF-8 sequence at s */
static uint32_t
fg_utf8_decode(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return s[0];
    }

    if (s[0] < 0xe0) {
        return ((uint32_t) (s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    }

    if (s[0] < 0xf0) {
        return ((uint32_t) (s[0] & 0x0f) << 12)
               | ((uint32_t) (s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }

    return ((uint32_t) (s[0] & 0x07) << 18) | ((uint32_t) (s[1] & 0x3f) << 12)
           | ((uint32_t) (s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}


/*
 * UTF-8 byte order is code point order; UTF-16 order differs only where a
 * supplementary character (a surrogate pair, D800..DBFF first) meets one
 * of U+E000..U+FFFF.  So compare bytes, and where they first differ,
 * compare the two characters' first UTF-16 code units, then (same high
 * surrogate) their code points, which order the low surrogates.
 */
int
fg_jcs_key_compare(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen)
{
    size_t    i, n = (alen < blen) ? alen : blen;
    uint32_t  ca, cb, ua, ub;

    for (i = 0; i < n && a[i] == b[i]; i++) {
        /* void */
    }

    if (i == n) {
        return (alen < blen) ? -1 : (alen > blen);
    }

    /* the shared prefix is whole bytes of the same characters */
    while (i > 0 && (a[i] & 0xc0) == 0x80) {
        i--;
    }

    ca = fg_utf8_decode(a + i);
    cb = fg_utf8_decode(b + i);

    ua = (ca >= 0x10000) ? 0xd800 + ((ca - 0x10000) >> 10) : ca;
    ub = (cb >= 0x10000) ? 0xd800 + ((cb - 0x10000) >> 10) : cb;

    if (ua != ub) {
        return (ua < ub) ? -1 : 1;
    }

    return (ca < cb) ? -1 : 1;
}

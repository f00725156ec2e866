/*
 * fg_jcs_number.c -- numbers as ECMAScript writes them (RFC 8785 section
 * 3.2.2.3, ECMA-262 Number::toString).
 *
 * A number is reduced to its significant digits D (k of them, no leading
 * or trailing zeros) and an exponent n with value = 0.D x 10^n; the
 * layout rules of ECMA-262 then choose plain, fractional or exponent form.
 * D is the shortest digit string that reads back as the same double:
 * integers below 2^53 are exact; other values try 15, 16 and 17 digits
 * with correctly rounded printf("%.*e") and a strtod() round trip (15
 * digits, when they read back, are the shortest padded with zeros:
 * distinct decimals of 15 digits lie further apart than doubles do);
 * subnormals, which are coarser, try every length from 1 up.
 */

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_jcs.h"
#include "fg_jcs_write.h"

#define FG_DIGITS_MAX  20


/*
 * Lay out sign, digits d[0..k) and exponent n as ECMA-262 does, into buf
 * (at least FG_JCS_NUMBER_MAX bytes).  Returns the length.
 */
static size_t
fg_jcs_layout(int neg, const char *d, int k, int n, char *buf)
{
    char  *p = buf;
    int    i, e;

    if (neg) {
        *p++ = '-';
    }

    if (k <= n && n <= 21) {
        memcpy(p, d, k);
        p += k;
        for (i = k; i < n; i++) {
            *p++ = '0';
        }

    } else if (0 < n && n <= 21) {
        memcpy(p, d, n);
        p += n;
        *p++ = '.';
        memcpy(p, d + n, k - n);
        p += k - n;

    } else if (-6 < n && n <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (i = n; i < 0; i++) {
            *p++ = '0';
        }
        memcpy(p, d, k);
        p += k;

    } else {
        *p++ = d[0];
        if (k > 1) {
            *p++ = '.';
            memcpy(p, d + 1, k - 1);
            p += k - 1;
        }
        e = n - 1;
        *p++ = 'e';
        *p++ = (e < 0) ? '-' : '+';
        p += sprintf(p, "%d", e < 0 ? -e : e);
    }

    *p = '\0';

    return (size_t) (p - buf);
}


/*
 * printf v (positive, finite) with prec+1 significant digits; put the
 * digits less trailing zeros in d and return k, with n set.  Returns 0 if
 * the text does not read back as v.
 */
static int
fg_jcs_try_digits(double v, int prec, char *d, int *n)
{
    char   text[40], *e;
    int    k = 0, i;

    snprintf(text, sizeof(text), "%.*e", prec, v);

    if (strtod(text, NULL) != v) {
        return 0;
    }

    /* text is "D.DDDDe[+-]XX" */
    for (i = 0; text[i] != 'e'; i++) {
        if (text[i] != '.') {
            d[k++] = text[i];
        }
    }

    e = text + i + 1;
    *n = atoi(e) + 1;

    while (k > 1 && d[k - 1] == '0') {
        k--;
    }

    return k;
}


/*
 * For a power of two the doubles below are half as far as those above, so
 * the nearest 16-digit decimal may miss while the next one up reads back:
 * try it.
 */
static int
fg_jcs_try_up(double v, char *d, int *n)
{
    char  text[40], cand[48];
    int   i, k = 0, len;

    snprintf(text, sizeof(text), "%.15e", v);

    for (i = 0; text[i] != 'e'; i++) {
        if (text[i] != '.') {
            d[k++] = text[i];
        }
    }
    *n = atoi(text + i + 1) + 1;

    /* add one in the last place */
    for (i = k - 1; i >= 0 && d[i] == '9'; i--) {
        d[i] = '0';
    }
    if (i < 0) {
        return 0;       /* 9999999999999999 -> 1e16: not a 16-digit case */
    }
    d[i]++;

    len = snprintf(cand, sizeof(cand), "%c.%.*se%d", d[0], k - 1, d + 1,
                   *n - 1);
    if (len <= 0 || strtod(cand, NULL) != v) {
        return 0;
    }

    while (k > 1 && d[k - 1] == '0') {
        k--;
    }

    return k;
}


size_t
fg_jcs_format_number(double v, char buf[FG_JCS_NUMBER_MAX])
{
    char      d[FG_DIGITS_MAX + 8];
    int       neg = 0, k, n, i;
    uint64_t  u;
    int       mexp;

    if (isnan(v) || isinf(v)) {
        buf[0] = '\0';
        return 0;
    }

    if (v == 0) {               /* 0 and -0 */
        buf[0] = '0';
        buf[1] = '\0';
        return 1;
    }

    if (v < 0) {
        neg = 1;
        v = -v;
    }

    if (v < 9007199254740992.0 && v == floor(v)) {
        u = (uint64_t) v;
        k = 0;
        while (u > 0) {
            d[k++] = (char) ('0' + u % 10);
            u /= 10;
        }
        for (i = 0; i < k / 2; i++) {
            char c = d[i];
            d[i] = d[k - 1 - i];
            d[k - 1 - i] = c;
        }
        n = k;
        while (k > 1 && d[k - 1] == '0') {
            k--;
        }
        return fg_jcs_layout(neg, d, k, n, buf);
    }

    if (v < DBL_MIN) {
        /*
         * Subnormals carry fewer than 53 bits, so a shorter decimal than
         * 15 digits may read back: search upward for the shortest.
         */
        for (i = 0, k = 0; k == 0 && i <= 16; i++) {
            k = fg_jcs_try_digits(v, i, d, &n);
        }
        return fg_jcs_layout(neg, d, k, n, buf);
    }

    k = fg_jcs_try_digits(v, 14, d, &n);

    if (k == 0) {
        k = fg_jcs_try_digits(v, 15, d, &n);
    }

    if (k == 0 && frexp(v, &mexp) == 0.5) {
        k = fg_jcs_try_up(v, d, &n);
    }

    if (k == 0) {
        k = fg_jcs_try_digits(v, 16, d, &n);
    }

    return fg_jcs_layout(neg, d, k, n, buf);
}


int
fg_jcs_write_decimal(const unsigned char *text, size_t len, fg_sink_t *out)
{
    char    d[FG_DIGITS_MAX], buf[FG_JCS_NUMBER_MAX];
    size_t  p = 0;
    int     neg = 0, k = 0, zeros = 0, int_digits = 0, lead = 0;
    int64_t e = 0, n;
    int     eneg = 0, in_frac = 0;

    if (text[p] == '-') {
        neg = 1;
        p++;
    }

    for ( ; p < len; p++) {
        unsigned char c = text[p];

        if (c == '.') {
            in_frac = 1;
            continue;
        }

        if (c == 'e' || c == 'E') {
            break;
        }

        if (!in_frac && (k > 0 || c != '0')) {
            int_digits++;
        }

        if (c == '0') {
            if (k == 0) {
                if (in_frac) {
                    lead++;
                }
            } else {
                zeros++;
            }
            continue;
        }

        /* a significant digit: the reader bounded these to 15 */
        while (zeros > 0) {
            d[k++] = '0';
            zeros--;
        }
        d[k++] = (char) c;
    }

    if (k == 0) {
        return fg_sink_byte(out, '0');
    }

    if (p < len) {
        p++;
        if (text[p] == '+' || text[p] == '-') {
            eneg = (text[p] == '-');
            p++;
        }
        for ( ; p < len; p++) {
            e = e * 10 + (text[p] - '0');
        }
        if (eneg) {
            e = -e;
        }
    }

    n = (int_digits > 0 ? int_digits : -lead) + e;

    return fg_sink_write(out, buf, fg_jcs_layout(neg, d, k, (int) n, buf));
}

/*
 * fg_glob.c -- the glob matcher (see fg_glob.h): a well-formedness check
 * and a backtracking matcher over bytes with one star remembered, so
 * matching is O(pattern * subject) and never recursive.
 */

#include <stddef.h>

#include "fg_glob.h"

/* Walks the pattern exactly as fg_glob_class() and fg_glob_run() do. */
const char *
fg_glob_check(const char *p, size_t n)
{
    size_t         i, start;
    unsigned char  lo;

    for (i = 0; i < n; i++) {
        if (p[i] == '\\') {
            if (++i == n) {
                return "glob ends with a lone backslash";
            }
            continue;
        }
        if (p[i] != '[') {
            continue;
        }
        i++;
        if (i < n && (p[i] == '!' || p[i] == '^')) {
            i++;
        }
        start = i;
        while (i < n && (p[i] != ']' || i == start)) {
            if (p[i] == '\\' && ++i == n) {
                return "glob ends with a lone backslash";
            }
            lo = (unsigned char) p[i];
            if (i + 2 < n && p[i + 1] == '-' && p[i + 2] != ']') {
                i += 2;
                if (p[i] == '\\' && ++i == n) {
                    return "glob ends with a lone backslash";
                }
                if ((unsigned char) p[i] < lo) {
                    return "glob has a reversed range";
                }
            }
            i++;
        }
        if (i >= n) {
            return "glob has an unclosed '['";
        }
    }
    return NULL;
}


/* Does byte c fall in the class at p[*i] (just after '[')?  Advances *i
 * past the closing ']'.  The pattern was checked. */
static int
fg_glob_class(const char *p, size_t n, size_t *i, unsigned char c)
{
    size_t         k, start;
    int            neg, in;
    unsigned char  lo, hi;

    k = *i;
    neg = 0;
    in = 0;
    if (k < n && (p[k] == '!' || p[k] == '^')) {
        neg = 1;
        k++;
    }
    start = k;
    while (k < n && (p[k] != ']' || k == start)) {
        if (p[k] == '\\' && k + 1 < n) {
            k++;
        }
        lo = (unsigned char) p[k];
        hi = lo;
        if (k + 2 < n && p[k + 1] == '-' && p[k + 2] != ']') {
            k += 2;
            if (p[k] == '\\' && k + 1 < n) {
                k++;
            }
            hi = (unsigned char) p[k];
        }
        if (c >= lo && c <= hi) {
            in = 1;
        }
        k++;
    }
    *i = k + 1;
    return in != neg;
}


/* Match s[0..sn) against the checked glob p[0..pn).  O(pn * sn). */
static int
fg_glob_run(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t  pi, si, star_p, star_s, k;
    int     star;

    pi = 0;
    si = 0;
    star = 0;
    star_p = 0;
    star_s = 0;

    while (si < sn) {
        if (pi < pn) {
            if (p[pi] == '*') {
                star = 1;
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (p[pi] == '?') {
                pi++;
                si++;
                continue;
            }
            if (p[pi] == '[') {
                k = pi + 1;
                if (fg_glob_class(p, pn, &k, (unsigned char) s[si])) {
                    pi = k;
                    si++;
                    continue;
                }
            } else {
                k = pi;
                if (p[k] == '\\') {
                    k++;
                }
                if (p[k] == s[si]) {
                    pi = k + 1;
                    si++;
                    continue;
                }
            }
        }
        if (!star) {
            return 0;
        }
        pi = star_p;
        si = ++star_s;
    }

    while (pi < pn && p[pi] == '*') {
        pi++;
    }
    return pi == pn;
}


int
fg_glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    if (pat == NULL || s == NULL || fg_glob_check(pat, plen) != NULL) {
        return -1;
    }
    return fg_glob_run(pat, plen, s, slen);
}

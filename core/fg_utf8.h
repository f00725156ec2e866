/*
 * fg_utf8.h -- UTF-8 as RFC 3629 defines it, in one place: sequence
 * checking (no overlong forms, no encoded surrogates, nothing above
 * U+10FFFF), whole-string validity and code-point counting.
 */

#ifndef FG_UTF8_H
#define FG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Why a sequence is not UTF-8. */
typedef enum {
    FG_UTF8_OK = 0,
    FG_UTF8_BAD_LEAD,         /* 0x80..0xc1 (0xc0/0xc1: overlong) or >= 0xf5 */
    FG_UTF8_TRUNCATED,        /* the input ends inside the sequence */
    FG_UTF8_OVERLONG,         /* e0 80..9f, f0 80..8f */
    FG_UTF8_SURROGATE,        /* ed a0..bf */
    FG_UTF8_TOO_BIG,          /* f4 90..bf: above U+10FFFF */
    FG_UTF8_BAD_CONTINUATION  /* a byte that should continue does not */
} fg_utf8_error_t;

/*
 * Check the sequence starting at s[0] (a byte >= 0x80) with avail bytes
 * available.  Returns its length (2..4) and stores the code point in *cp
 * (may be NULL), or 0 with *why set and *at the offset (from s) of the
 * offending byte.
 */
size_t fg_utf8_sequence(const unsigned char *s, size_t avail, uint32_t *cp,
    fg_utf8_error_t *why, size_t *at);

/* 1 if s[0..n) is entirely valid UTF-8, else 0. */
int fg_utf8_valid(const unsigned char *s, size_t n);

/* Code points in valid UTF-8 s[0..n) (JSON Schema's string length). */
size_t fg_utf8_length(const unsigned char *s, size_t n);

#endif /* FG_UTF8_H */

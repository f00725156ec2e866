/*
 * fg_jcs_write.h -- the writers both canonicalizers share (JSON text in
 * fg_jcs.c, jansson values in fg_jcs_json.c): strings, numbers, UTF-8.
 * Internal to core/.
 */

#ifndef FG_JCS_WRITE_H
#define FG_JCS_WRITE_H

#include <string.h>

#include "fg_core.h"

/*
 * Write s[0..len) (valid UTF-8) as a canonical JSON string.  verbatim says
 * the bytes hold no control character, quote or backslash (a string read
 * without escapes), so they are copied as they are.
 */
int fg_jcs_write_string(const unsigned char *s, size_t len, int verbatim,
    fg_sink_t *out);

/*
 * Write the JSON number text[0..len) in canonical form without converting
 * it to a double.  Only for numbers of at most 15 significant digits
 * inside the normal double range (the reader checks), whose digits are
 * then already the shortest round-trip form.
 */
int fg_jcs_write_decimal(const unsigned char *text, size_t len,
    fg_sink_t *out);

/*
 * True if any of the eight bytes in x is a control character, '"' or
 * '\\' (or, when high is set, >= 0x80): the word cannot be copied as it
 * is.  May also be true for a byte above one that matters (borrows carry
 * upward), never false when one matters.
 */
static inline int
fg_jcs_special8(uint64_t x, int high)
{
    const uint64_t  ones = 0x0101010101010101ULL;
    const uint64_t  top = 0x8080808080808080ULL;
    uint64_t        q = x ^ (ones * '"');
    uint64_t        b = x ^ (ones * '\\');
    uint64_t        hit;

    hit = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);

    if (high) {
        hit |= x;
    }

    return (hit & top) != 0;
}

/* Encode a code point as UTF-8 into u; returns 1..4. */
size_t fg_jcs_utf8_encode(uint32_t cp, unsigned char u[4]);

/* A short, printable, NUL-ended rendering of s for error messages. */
void fg_jcs_printable(const unsigned char *s, size_t len, char *buf,
    size_t size);

#endif /* FG_JCS_WRITE_H */

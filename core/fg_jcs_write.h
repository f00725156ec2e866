/*
 * fg_jcs_write.h -- the writers both canonicalizers share (JSON text in
 * fg_jcs.c, jansson values in fg_jcs_json.c): strings, numbers, UTF-8.
 * Internal to core/.
 */

#ifndef FG_JCS_WRITE_H
#define FG_JCS_WRITE_H

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

/* Encode a code point as UTF-8 into u; returns 1..4. */
size_t fg_jcs_utf8_encode(uint32_t cp, unsigned char u[4]);

/* A short, printable, NUL-ended rendering of s for error messages. */
void fg_jcs_printable(const unsigned char *s, size_t len, char *buf,
    size_t size);

#endif /* FG_JCS_WRITE_H */

/*
 * fg_json_scan.h -- find one member of a JSON object text without
 * building the document.
 *
 * The gateway reads two members of every JSON model response, "model"
 * and "usage", and nothing else; parsing a whole 1 KiB..16 KiB response
 * into jansson for them costs more than the rest of the log phase.  This
 * scanner walks the top-level object only as far as it must to step over
 * member values (strings with their escapes, nested brackets counted,
 * scalars up to the next delimiter) and returns where the wanted value
 * lies; the caller parses that span alone with jansson.  It checks the
 * structure it walks (quotes, colons, commas, the depth of brackets, not
 * whether a "]" closes a "["), not the tokens inside values: a malformed
 * value inside the span is refused by jansson when the span is parsed,
 * one elsewhere is not looked at.
 *
 * Keys are compared byte for byte as they are written: a key spelled
 * with escapes ("\u0075sage") is not the same key.  The documents read
 * this way are upstream responses, whose usage the upstream reports as
 * it likes anyway; a response hiding its usage behind an escape only
 * leaves its usage unknown, as an unreadable response does.
 */

#ifndef FG_JSON_SCAN_H
#define FG_JSON_SCAN_H

#include <stddef.h>

#define FG_JSON_FOUND       1
#define FG_JSON_MALFORMED  -1

/* Where a wanted member's value lies in the text, if it is there. */
typedef struct {
    int     found;
    size_t  off;
    size_t  len;
} fg_json_span_t;

/*
 * Look for the top-level members keys[0..nkeys) (NUL-ended) of the object
 * text[0..len), in one pass: spans[i] says whether keys[i] is there and
 * where its value lies.  Returns FG_JSON_FOUND when text is one object
 * (trailing bytes after it make it malformed) without a wanted member
 * twice, whether or not any was found; FG_JSON_MALFORMED otherwise
 * (jansson, reading duplicates strictly, would refuse the document, so
 * the scanner does not pick one).
 */
int fg_json_members(const char *text, size_t len, const char *const *keys,
    size_t nkeys, fg_json_span_t *spans);

#endif /* FG_JSON_SCAN_H */

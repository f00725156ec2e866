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
 * structure it walks (quotes, colons, commas, balanced brackets), not
 * the tokens inside values: a malformed value inside the span is refused
 * by jansson when the span is parsed, one elsewhere is not looked at.
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
#define FG_JSON_ABSENT      0
#define FG_JSON_MALFORMED  -1

/*
 * Look for the top-level member key[0..klen) (at most 63 bytes; a longer
 * key is never found) of the object text[0..len).
 * Returns FG_JSON_FOUND with *off and *vlen the span of its value,
 * FG_JSON_ABSENT when the object has no such member, FG_JSON_MALFORMED
 * when text is not one object (trailing bytes after it are malformed
 * too) or has the member twice (jansson, reading duplicates strictly,
 * would refuse the document, so the scanner does not pick one).
 */
int fg_json_member(const char *text, size_t len, const char *key,
    size_t klen, size_t *off, size_t *vlen);

/*
 * fg_json_member() for several keys (NUL-ended) in one pass: spans[i]
 * says whether keys[i] was found and where its value lies.  Returns
 * FG_JSON_FOUND when text is one object without a wanted member twice
 * (whether or not any was found), else FG_JSON_MALFORMED.
 */
typedef struct {
    int     found;
    size_t  off;
    size_t  len;
} fg_json_span_t;

int fg_json_members(const char *text, size_t len, const char *const *keys,
    size_t nkeys, fg_json_span_t *spans);

#endif /* FG_JSON_SCAN_H */

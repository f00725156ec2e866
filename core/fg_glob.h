/*
 * fg_glob.h -- the one glob matcher of core/: policy rules (op "glob")
 * and token capabilities ("model:gpt-4o*", "tool:servicenow.*:write").
 *
 * Globs are matched over bytes, as fnmatch(3) with flags 0 would in the C
 * locale, but without depending on the locale: '*' any run of bytes
 * (including '/'), '?' one byte, '[...]' one byte of a set ('!' or '^'
 * negates, a-z ranges, ']' first is literal), '\' escapes the next byte.
 */

#ifndef FG_GLOB_H
#define FG_GLOB_H

#include <stddef.h>

/*
 * Check a glob p[0..n).  Returns NULL when it is well-formed, else the
 * reason it is not ("glob has an unclosed '['", ...), a static string.
 */
const char *fg_glob_check(const char *p, size_t n);

/*
 * Glob match over bytes, whole value: does s[0..slen) match
 * pat[0..plen)?  Returns 1 match, 0 no match, -1 malformed pattern (as
 * fg_glob_check() says).  O(plen * slen) time, no allocation.
 */
int fg_glob_match(const char *pat, size_t plen, const char *s, size_t slen);

#endif /* FG_GLOB_H */

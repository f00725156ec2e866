/*
 * fg_schema.h -- a JSON Schema (2020-12 subset) validator for jansson
 * values: our evidence records now, tool-call inputs against
 * operator-supplied schemas later.  Schemas are treated as hostile input.
 *
 * A schema set is a registry of documents, each under a name such as
 * "Shared.schema.json".  Documents are added as JSON text, then compiled
 * together: every keyword is checked, patterns are compiled (PCRE2, UTF,
 * JIT when available) and every $ref is resolved, so validation never
 * fails for a reason that is the schema's fault.
 *
 * Keywords (any other is a compile error "unsupported keyword"):
 *   $schema $id $defs $ref title description $comment
 *   type enum const
 *   properties required additionalProperties propertyNames maxProperties
 *   pattern minLength maxLength          (lengths in code points)
 *   minimum maximum
 *   items minItems maxItems uniqueItems
 * and the boolean schemas true and false wherever a schema may be.
 *
 * $ref is "#<pointer>" within the same document or
 * "<name>#<pointer>" / "<name>" into another registered document, where
 * <pointer> is an RFC 6901 pointer (percent-decoded first) that must land
 * on a schema (through $defs, properties, items, additionalProperties or
 * propertyNames).  A chain of $refs that comes back to where it started
 * without descending into the instance is refused at compile time.  A $ref
 * may have sibling keywords: the schema's own keywords are applied first,
 * then those of the schema it refers to.
 *
 * Semantics: a jansson integer is an "integer" and a "number"; a real with
 * an integral value (1.0) is an "integer" too.  enum, const and
 * uniqueItems compare numbers by value, so 1 equals 1.0; object members
 * compare regardless of order.  Patterns are ECMA-262 flavoured PCRE2
 * (UTF, not anchored, $ only at the very end, \uXXXX escapes, no \C) and
 * their matching is bounded (match, depth and heap limits); a match that
 * hits a bound refuses the value.  $schema, $id, title, description and
 * $comment must be strings and are otherwise ignored ($id does not change
 * how $refs resolve).
 *
 * Schemas that contradict themselves (minLength above maxLength, minItems
 * above maxItems, minimum above maximum) are refused at compile time, as
 * are counts above FG_SCHEMA_MAX_BOUND and duplicate names in type or
 * required.
 *
 * Error lines (exact; "<ptr>" is the instance's RFC 6901 pointer, "(root)"
 * for the root, ending in an ellipsis U+2026 when longer than
 * FG_SCHEMA_PTR_MAX - 4 bytes; a line is cut to FG_ERRMSG_MAX - 1 bytes at
 * a character boundary):
 *   <ptr>: expected <type>[ or <type>...], got <actual>
 *   <ptr>: does not equal the required constant
 *   <ptr>: not one of the allowed values
 *   <obj>: missing required property "<name>"
 *   <obj>/<name>: property not allowed     (additionalProperties false, a
 *                                           false property schema, or
 *                                           propertyNames false)
 *   <ptr>: not allowed                      (any other false schema)
 *   <obj>: <n> properties, more than maxProperties <m>
 *   <ptr>: length <n> is below minLength <m>
 *   <ptr>: length <n> exceeds maxLength <m>
 *   <ptr>: does not match <pattern>
 *   <ptr>: match limit reached for <pattern>
 *   <ptr>: is not valid UTF-8               (a string jansson did not check)
 *   <ptr>: <value> is below minimum <m>
 *   <ptr>: <value> exceeds maximum <m>
 *   <arr>: <n> items, fewer than minItems <m>
 *   <arr>: <n> items, more than maxItems <m>
 *   <arr>: items <i> and <j> are equal      (smallest j, then smallest i)
 *   <ptr>: nests deeper than 64 levels      (with FG_ERR_LIMIT)
 *   <arr>: uniqueItems needs more comparisons than allowed  (FG_ERR_LIMIT)
 * <actual> is object, array, string, integer (a jansson integer), number
 * (a jansson real), boolean or null.  Numbers print as integers, or reals
 * in the shortest of %.15g, %.16g, %.17g that reads back exactly.  A
 * propertyNames failure is reported at the property's pointer.
 *
 * Thread safety: a compiled set is read-only; any number of threads may
 * validate against it at once.  Validation allocates nothing on the heap
 * except when PCRE2 interprets a pattern (no JIT, or a JIT stack overflow)
 * or uniqueItems is asked of an array of more than 32 items.
 */

#ifndef FG_SCHEMA_H
#define FG_SCHEMA_H

#include <jansson.h>

#include "fg_core.h"

/* Compile bounds: beyond them FG_ERR_LIMIT (a bad name: FG_ERR_INVALID). */
#define FG_SCHEMA_MAX_DEPTH     64          /* subschema nesting */
#define FG_SCHEMA_MAX_TEXT      (1 << 20)   /* bytes of one document */
#define FG_SCHEMA_MAX_DOCS      256         /* documents in a set */
#define FG_SCHEMA_MAX_NODES     20000       /* subschemas in a set */
#define FG_SCHEMA_MAX_NAME      128         /* bytes of a document name */
#define FG_SCHEMA_MAX_PATTERN   4096        /* bytes of one pattern */
#define FG_SCHEMA_MAX_BOUND     0x7fffffff  /* minLength ... maxProperties */

/* Validation bound: instance levels below the root, else FG_ERR_LIMIT. */
#define FG_SCHEMA_MAX_INSTANCE_DEPTH  64

/* Bytes (with the NUL) of an instance pointer in an error line. */
#define FG_SCHEMA_PTR_MAX       192

typedef struct fg_schema_set_s  fg_schema_set_t;
typedef struct fg_schema_s      fg_schema_t;

/* A new, empty set.  Returns NULL when out of memory. */
fg_schema_set_t *fg_schema_set_new(void);

/* Free a set and every schema compiled in it.  NULL is accepted. */
void fg_schema_set_free(fg_schema_set_t *set);

/*
 * Parse text[0..len) as a schema document and register it under name
 * (1..FG_SCHEMA_MAX_NAME bytes, no '#').  Nothing is compiled yet.
 * Returns FG_OK, FG_ERR_SYNTAX (text is not JSON or has duplicate keys;
 * err->offset is the byte offset), FG_ERR_LIMIT (text or set too big),
 * FG_ERR_INVALID (bad or duplicate name, or the set is already compiled),
 * FG_ERR_NOMEM, or FG_ERR_INTERNAL for a NULL set, name or text.
 */
int fg_schema_set_add(fg_schema_set_t *set, const char *name,
    const char *text, size_t len, fg_error_t *err);

/*
 * Compile every added document and resolve the $refs across them.  Once
 * called, the set takes no more documents.  Returns FG_OK, or
 * FG_ERR_INVALID / FG_ERR_LIMIT / FG_ERR_NOMEM with err->msg of the form
 * "<name>#<schema pointer>: <reason>"; after a failure no schema of the set
 * can be got.
 */
int fg_schema_set_compile(fg_schema_set_t *set, fg_error_t *err);

/*
 * The root schema of the document registered under name, or NULL when
 * there is none or the set is not (successfully) compiled.  It lives as
 * long as the set.
 */
const fg_schema_t *fg_schema_set_get(const fg_schema_set_t *set,
    const char *name);


#define FG_SCHEMA_MAX_REPORT  16

/*
 * What an invalid instance got wrong: the first errors in visiting order,
 * one "<instance pointer>: <reason>" line each, the root pointer written
 * "(root)".  truncated is 1 when there were more errors than lines (the
 * validator stops at the first error that does not fit).
 */
typedef struct {
    unsigned  count;
    unsigned  truncated;
    char      line[FG_SCHEMA_MAX_REPORT][FG_ERRMSG_MAX];
} fg_schema_report_t;

/*
 * Validate instance against schema.  Visiting order: the value's type,
 * const, enum; for an object its required properties (schema order), then
 * each member in the object's own order (jansson iterates in insertion
 * order) against propertyNames and then properties[name] or
 * additionalProperties, then maxProperties; for a string minLength,
 * maxLength, pattern; for a number minimum, maximum; for an array
 * minItems, maxItems, uniqueItems, then items in order.  A type failure
 * stops the checks of that value.
 *
 * Returns FG_OK when valid; FG_ERR_INVALID when not, with report (if not
 * NULL; when NULL validation stops at the first error) filled;
 * FG_ERR_LIMIT when the instance nests deeper than
 * FG_SCHEMA_MAX_INSTANCE_DEPTH or uniqueItems exceeds its work bound (a
 * line says so); FG_ERR_NOMEM; FG_ERR_INTERNAL for a NULL argument.
 */
int fg_schema_validate(const fg_schema_t *schema, const json_t *instance,
    fg_schema_report_t *report);

#endif /* FG_SCHEMA_H */

/*
 * fg_jcs.h -- RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * Two ways in, one canonical form out:
 *   - fg_jcs_canonicalize() reads JSON text (a request body, a record
 *     read from Redis or a ledger) strictly and writes its canonical bytes;
 *   - fg_jcs_canonicalize_json() writes the canonical bytes of a jansson
 *     value (what the records we build embed: fg_record_write.h).
 * Both write through an fg_sink_t, so the output can be hashed as it is
 * produced without being held in memory.
 *
 * What is refused, each with the byte offset where it was found: anything
 * RFC 8259 does not allow (including NaN, Infinity, leading zeros, bare
 * control characters in strings, trailing garbage), invalid UTF-8
 * (overlong forms, encoded surrogates, code points above U+10FFFF,
 * truncated sequences), escaped lone surrogates, duplicate object keys,
 * numbers whose magnitude is beyond the double range, and nesting deeper
 * than the bound given at creation.
 */

#ifndef FG_JCS_H
#define FG_JCS_H

#include <jansson.h>

#include "fg_core.h"

#define FG_JCS_DEFAULT_MAX_DEPTH  64
#define FG_JCS_MAX_DEPTH_LIMIT    1024
#define FG_JCS_MAX_INPUT          ((size_t) 0x7fffffff)

/* The longest text fg_jcs_format_number() writes, with its NUL. */
#define FG_JCS_NUMBER_MAX         32

typedef struct fg_jcs_s  fg_jcs_t;

/*
 * A canonicalizer.  It keeps its working memory between calls, so a caller
 * that canonicalizes many documents (a worker, the daemon) allocates only
 * while the largest document seen so far grows.  Not thread-safe: one per
 * thread.  max_depth bounds nesting (0 means FG_JCS_DEFAULT_MAX_DEPTH, at
 * most FG_JCS_MAX_DEPTH_LIMIT).  Returns NULL when out of memory.
 */
fg_jcs_t *fg_jcs_new(unsigned max_depth);
void fg_jcs_free(fg_jcs_t *jcs);

/*
 * Canonicalize the JSON text in[0..len) into out (the sink is drained
 * before return).  Returns FG_OK, or FG_ERR_SYNTAX / FG_ERR_INVALID /
 * FG_ERR_LIMIT / FG_ERR_NOMEM with err saying what and at which byte
 * offset, or the sink's own error.  Nothing useful is in out on error.
 */
int fg_jcs_canonicalize(fg_jcs_t *jcs, const unsigned char *in, size_t len,
    fg_sink_t *out, fg_error_t *err);


/*
 * The document fg_jcs_canonicalize() last read, looked into without
 * parsing it again: valid after it returned FG_OK and until the next call
 * on jcs, while its input is still there (strings not decoded are read
 * from it).  Nodes are numbered from the root, 0.  The gateway reads the
 * few members of a request body it needs this way (fg_call_body_view())
 * instead of building the whole body with jansson.
 */
#define FG_JCS_NO_NODE  UINT32_MAX

typedef enum {
    FG_JCS_NONE = 0,            /* FG_JCS_NO_NODE, or no document */
    FG_JCS_NULL,
    FG_JCS_FALSE,
    FG_JCS_TRUE,
    FG_JCS_NUMBER,
    FG_JCS_STRING,
    FG_JCS_ARRAY,
    FG_JCS_OBJECT
} fg_jcs_kind_t;

fg_jcs_kind_t fg_jcs_node_kind(const fg_jcs_t *jcs, uint32_t node);

/* The byte offset in the input where the node's value starts. */
size_t fg_jcs_node_offset(const fg_jcs_t *jcs, uint32_t node);

/* Elements of an array, members of an object; 0 for anything else. */
size_t fg_jcs_node_size(const fg_jcs_t *jcs, uint32_t node);

/* The value of the member key[0..klen) of an object, or FG_JCS_NO_NODE. */
uint32_t fg_jcs_node_member(const fg_jcs_t *jcs, uint32_t node,
    const char *key, size_t klen);

/* Element index of an array, or FG_JCS_NO_NODE. */
uint32_t fg_jcs_node_element(const fg_jcs_t *jcs, uint32_t node,
    size_t index);

/*
 * The node as a new jansson value: a scalar as jansson reads it (an
 * integer without fraction or exponent as an integer, FG_ERR_INVALID when
 * it does not fit 64 bits; other numbers as reals), an array or object as
 * an empty one of its kind (the caller adds what it needs).  NULL with
 * err set on error.
 */
json_t *fg_jcs_node_json(const fg_jcs_t *jcs, uint32_t node, fg_error_t *err);

/*
 * The node and everything under it as a new jansson value, built from the
 * tape without reading the text again: what json_loadb() gives for the
 * same text (members in their input order, strings with NUL allowed,
 * numbers as fg_jcs_node_json() reads them).  NULL with err set on error.
 */
json_t *fg_jcs_tree_json(const fg_jcs_t *jcs, uint32_t node,
    fg_error_t *err);

/*
 * Canonicalize a jansson value.  Integers are written as JSON numbers
 * (IEEE-754 doubles) are, so an integer beyond 2^53 is written as the
 * double nearest to it.  Returns FG_OK or an error (FG_ERR_LIMIT when
 * nesting exceeds max_depth, FG_ERR_INVALID for a value that is not JSON).
 */
int fg_jcs_canonicalize_json(const json_t *value, unsigned max_depth,
    fg_sink_t *out, fg_error_t *err);

/*
 * Write v as ECMAScript's Number.prototype.toString() does (the shortest
 * text that reads back as v; exponent form below 1e-6 and from 1e21; -0 as
 * 0) into buf, NUL-terminated.  Returns its length, or 0 when v is NaN or
 * infinite (which JSON cannot hold).
 */
size_t fg_jcs_format_number(double v, char buf[FG_JCS_NUMBER_MAX]);

/*
 * Compare two UTF-8 strings by their UTF-16 code units, the key order of
 * RFC 8785 section 3.2.3.  The strings must be valid UTF-8.  Returns <0, 0
 * or >0.
 */
int fg_jcs_key_compare(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen);

#endif /* FG_JCS_H */

/*
 * fg_record_write.h -- write a record's canonical (RFC 8785) bytes in one
 * pass, as it is built, instead of building a jansson object and then
 * canonicalizing it.
 *
 * Records are built by code with fixed, ASCII member names, so their
 * canonical key order (UTF-16 code units, which for ASCII is byte order)
 * is known when the code is written: the builder writes the members in
 * that order, and the writer checks it (a member out of order is a
 * defect, reported as FG_ERR_INVALID, never silently written).  Values
 * are written canonically: strings escaped as JCS says (and refused when
 * they are not UTF-8), integers as JSON numbers, jansson values of the
 * caller (a decision input, gates) through fg_jcs_canonicalize_json()'s
 * writer.
 *
 * Errors are sticky: the first one is kept, later calls do nothing, and
 * fg_rw_finish() returns it, so a builder writes its fields without an
 * error check after each.
 */

#ifndef FG_RECORD_WRITE_H
#define FG_RECORD_WRITE_H

#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_record.h"

#define FG_RW_MAX_DEPTH  8

typedef struct {
    fg_sink_t    *out;
    int           rc;
    unsigned      depth;
    fg_error_t   *err;
    /* per open container: an array?, nothing written in it yet?, the
     * last key written (objects) */
    unsigned char array[FG_RW_MAX_DEPTH];
    unsigned char empty[FG_RW_MAX_DEPTH];
    const char   *last[FG_RW_MAX_DEPTH];
} fg_rw_t;

void fg_rw_init(fg_rw_t *w, fg_sink_t *out, fg_error_t *err);

void fg_rw_object(fg_rw_t *w);
void fg_rw_array(fg_rw_t *w);
void fg_rw_close(fg_rw_t *w);

/* The next member's name: greater than the one before (ASCII). */
void fg_rw_key(fg_rw_t *w, const char *key);

void fg_rw_string(fg_rw_t *w, const char *s);
void fg_rw_stringn(fg_rw_t *w, const char *s, size_t n);
void fg_rw_string_or_null(fg_rw_t *w, const char *s);   /* NULL -> null */
void fg_rw_int(fg_rw_t *w, int64_t v);                  /* |v| < 2^53 */
void fg_rw_bool(fg_rw_t *w, int v);
void fg_rw_null(fg_rw_t *w);
void fg_rw_json(fg_rw_t *w, const json_t *v);

/* v, or when v is NULL: null, {} or [] (what the field's absence means). */
typedef enum { FG_RW_NULL, FG_RW_EMPTY_OBJECT, FG_RW_EMPTY_ARRAY } fg_rw_none_t;
void fg_rw_json_or(fg_rw_t *w, const json_t *v, fg_rw_none_t none);
void fg_rw_time(fg_rw_t *w, time_t sec, long nsec);     /* fg_time_format */

/*
 * The members every record starts with, in their places among the
 * others: write the record's own members around them with
 * fg_rw_common_head() (canon_version) and fg_rw_common_tail()
 * (record_type, spec_version, tenant_id, trace), and execution_id with
 * fg_rw_key()/fg_rw_string() where it sorts.
 */
void fg_rw_canon_version(fg_rw_t *w);
void fg_rw_record_type(fg_rw_t *w, fg_record_type_t type);
void fg_rw_spec_version(fg_rw_t *w);
void fg_rw_trace(fg_rw_t *w, const fg_trace_t *trace);

/* Close what is open, drain the sink; the first error, or FG_OK. */
int fg_rw_finish(fg_rw_t *w);


/*
 * A record written into memory and read back as a jansson value, for the
 * callers that want one (the CLI, the tests; the gateway sends the bytes):
 *
 *     fg_rw_buffer_t  b;
 *     rec = fg_rw_buffer_json(&b, fg_xxx_write(..., fg_rw_buffer_open(&b),
 *                             err), err);
 *
 * fg_rw_buffer_json() parses the bytes when rc is FG_OK, frees them in
 * any case, and returns the record or NULL (err set).
 */
typedef struct {
    fg_buffer_t    buf;
    fg_sink_t      sink;
    unsigned char  stage[1024];
} fg_rw_buffer_t;

fg_sink_t *fg_rw_buffer_open(fg_rw_buffer_t *b);
json_t *fg_rw_buffer_json(fg_rw_buffer_t *b, int rc, fg_error_t *err);

#endif /* FG_RECORD_WRITE_H */

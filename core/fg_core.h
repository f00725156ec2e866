/*
 * fg_core.h -- what every area of libfoxgov shares: status codes, the
 * error report a caller can print, and the byte sink that canonical output
 * is written to.
 *
 * core/ is plain C (OpenSSL, jansson, PCRE2); no nginx type appears here so
 * the module, the daemon, the CLI and the tests use the same code.
 */

#ifndef FG_CORE_H
#define FG_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FG_SPEC_VERSION   "1.0.0"
#define FG_CANON_VERSION  1

/* Status codes returned by every core function that can fail. */
#define FG_OK             0
#define FG_ERR_SYNTAX    -1   /* input is not well-formed */
#define FG_ERR_LIMIT     -2   /* a length, depth or size bound was exceeded */
#define FG_ERR_INVALID   -3   /* well-formed, but refused (schema, range) */
#define FG_ERR_NOMEM     -4
#define FG_ERR_IO        -5
#define FG_ERR_CRYPTO    -6   /* OpenSSL failed */
#define FG_ERR_INTERNAL  -7
#define FG_ERR_MISMATCH  -8   /* authentic, but issued for something else */

#define FG_ERRMSG_MAX     256

/*
 * An error report: the code, where in the input it was found (a byte
 * offset, or FG_NO_OFFSET when the error is not about a position) and one
 * sentence saying what is wrong.  Functions fill it only when they fail.
 */
#define FG_NO_OFFSET      ((size_t) -1)

typedef struct {
    int     code;
    size_t  offset;
    char    msg[FG_ERRMSG_MAX];
} fg_error_t;

/* Fill err (if not NULL) and return code.  msg is a printf format. */
int fg_error_set(fg_error_t *err, int code, size_t offset,
    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/*
 * Copy text s (may be NULL) into out[size] as one printable line for a
 * log or an error: control characters become spaces, runs of spaces one,
 * the ends trimmed (what a server or a library says may span lines).
 */
void fg_one_line(const char *s, char *out, size_t size);

/* "what it was" for a status code, for logs. */
const char *fg_strerror(int code);


/*
 * A byte sink: canonical output is staged in buf and handed to flush()
 * whenever buf fills, so a caller can hash it, append it to a buffer or
 * write it to a file without holding the whole output in memory.
 * flush() returns FG_OK or an error code, which stops the writer.
 */
typedef struct fg_sink_s fg_sink_t;

struct fg_sink_s {
    unsigned char  *buf;
    size_t          len;
    size_t          cap;
    size_t          total;      /* bytes written through this sink */
    int           (*flush)(fg_sink_t *sink, const unsigned char *p,
                           size_t n);
    void           *ctx;
};

#define FG_SINK_STAGE  8192

/* Push the staged bytes to flush(). */
int fg_sink_drain(fg_sink_t *sink);

/* Write n bytes; stages them and flushes as buf fills. */
int fg_sink_write_staged(fg_sink_t *sink, const void *p, size_t n);

static inline int
fg_sink_write(fg_sink_t *sink, const void *p, size_t n)
{
    /* the writers write many short pieces: those fit the stage */
    if (n <= sink->cap - sink->len) {
        memcpy(sink->buf + sink->len, p, n);
        sink->len += n;
        sink->total += n;
        return FG_OK;
    }
    return fg_sink_write_staged(sink, p, n);
}

static inline int
fg_sink_byte(fg_sink_t *sink, unsigned char c)
{
    if (sink->len == sink->cap) {
        int rc = fg_sink_drain(sink);
        if (rc != FG_OK) {
            return rc;
        }
    }
    sink->buf[sink->len++] = c;
    sink->total++;
    return FG_OK;
}


/*
 * A growable byte buffer (malloc'd), used where a whole output is wanted:
 * the CLI, tests, record builders.  fg_sink_to_buffer() makes a sink that
 * appends to it.
 */
typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
    size_t          max;        /* refuse to grow beyond this; 0 = no bound */
} fg_buffer_t;

void fg_buffer_init(fg_buffer_t *b, size_t max);
void fg_buffer_free(fg_buffer_t *b);

/*
 * Free a block jansson allocated for the caller (the text of json_dumps)
 * with the allocator jansson was given (json_set_alloc_funcs: the nginx
 * module gives it its own), not necessarily free().
 */
void fg_json_free(void *p);
int  fg_buffer_append(fg_buffer_t *b, const void *p, size_t n);

/* A sink appending to b, staging in stage[stage_len]. */
void fg_sink_to_buffer(fg_sink_t *sink, fg_buffer_t *b,
    unsigned char *stage, size_t stage_len);

/*
 * A sink that checks that what is written is want[0..len) byte for byte:
 * its flush returns FG_ERR_MISMATCH at the first difference, and same->at
 * counts the bytes that matched (all of them when it equals len).  How
 * a text is shown to be canonical: canonicalizing it gives it back.
 */
typedef struct {
    const unsigned char  *want;
    size_t                len;
    size_t                at;
} fg_same_t;

void fg_sink_to_same(fg_sink_t *sink, fg_same_t *same,
    const unsigned char *want, size_t len, unsigned char *stage,
    size_t stage_len);

#endif /* FG_CORE_H */

/*
 * fg_core.c -- error reports, byte sinks and growable buffers shared by
 * every area of libfoxgov.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fg_core.h"


int
fg_error_set(fg_error_t *err, int code, size_t offset, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return code;
    }

    err->code = code;
    err->offset = offset;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    return code;
}


const char *
fg_strerror(int code)
{
    switch (code) {
    case FG_OK:           return "ok";
    case FG_ERR_SYNTAX:   return "syntax error";
    case FG_ERR_LIMIT:    return "limit exceeded";
    case FG_ERR_INVALID:  return "invalid";
    case FG_ERR_NOMEM:    return "out of memory";
    case FG_ERR_IO:       return "i/o error";
    case FG_ERR_CRYPTO:   return "crypto error";
    case FG_ERR_MISMATCH: return "does not match";
    default:              return "internal error";
    }
}


/* ---------------------------------------------------------------- sinks */

int
fg_sink_drain(fg_sink_t *sink)
{
    int  rc;

    if (sink->len == 0) {
        return FG_OK;
    }

    rc = sink->flush(sink, sink->buf, sink->len);
    sink->len = 0;

    return rc;
}


int
fg_sink_write_staged(fg_sink_t *sink, const void *p, size_t n)
{
    const unsigned char  *s = p;
    size_t                room;
    int                   rc;

    sink->total += n;

    while (n > 0) {
        room = sink->cap - sink->len;

        if (room == 0) {
            rc = fg_sink_drain(sink);
            if (rc != FG_OK) {
                return rc;
            }
            room = sink->cap;
        }

        /* a large write bypasses the stage once it is empty */
        if (sink->len == 0 && n >= sink->cap) {
            return sink->flush(sink, s, n);
        }

        if (room > n) {
            room = n;
        }

        memcpy(sink->buf + sink->len, s, room);
        sink->len += room;
        s += room;
        n -= room;
    }

    return FG_OK;
}


/* -------------------------------------------------------------- buffers */

void
fg_buffer_init(fg_buffer_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}


void
fg_json_free(void *p)
{
    json_malloc_t  m;
    json_free_t    f;

    json_get_alloc_funcs(&m, &f);
    f(p);
}


void
fg_buffer_free(fg_buffer_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


int
fg_buffer_append(fg_buffer_t *b, const void *p, size_t n)
{
    unsigned char  *data;
    size_t          cap;

    if (n > SIZE_MAX - b->len - 1) {
        return FG_ERR_LIMIT;
    }

    if (b->max != 0 && b->len + n > b->max) {
        return FG_ERR_LIMIT;
    }

    /* one spare byte so callers may NUL-terminate */
    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap = (cap > SIZE_MAX / 2) ? b->len + n + 1 : cap * 2;
        }

        data = realloc(b->data, cap);
        if (data == NULL) {
            return FG_ERR_NOMEM;
        }

        b->data = data;
        b->cap = cap;
    }

    /* p may be NULL when n is 0 (an empty field): memcpy must not see it */
    if (n != 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }

    b->data[b->len] = '\0';

    return FG_OK;
}


static int
fg_sink_buffer_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    return fg_buffer_append(sink->ctx, p, n);
}


void
fg_sink_to_buffer(fg_sink_t *sink, fg_buffer_t *b, unsigned char *stage,
    size_t stage_len)
{
    sink->buf = stage;
    sink->len = 0;
    sink->cap = stage_len;
    sink->total = 0;
    sink->flush = fg_sink_buffer_flush;
    sink->ctx = b;
}


static int
fg_sink_same_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    fg_same_t  *s = sink->ctx;

    if (n > s->len - s->at || memcmp(s->want + s->at, p, n) != 0) {
        return FG_ERR_MISMATCH;
    }

    s->at += n;
    return FG_OK;
}


void
fg_sink_to_same(fg_sink_t *sink, fg_same_t *same, const unsigned char *want,
    size_t len, unsigned char *stage, size_t stage_len)
{
    same->want = want;
    same->len = len;
    same->at = 0;

    sink->buf = stage;
    sink->len = 0;
    sink->cap = stage_len;
    sink->total = 0;
    sink->flush = fg_sink_same_flush;
    sink->ctx = same;
}


void
fg_one_line(const char *s, char *out, size_t size)
{
    size_t          n;
    int             space;
    unsigned char   c;

    if (size == 0) {
        return;
    }

    n = 0;
    space = 1;

    for ( /* void */ ; s != NULL && *s != '\0' && n + 1 < size; s++) {
        c = (unsigned char) *s;

        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space) {
                out[n++] = ' ';
            }
            space = 1;
            continue;
        }
        out[n++] = (char) c;
        space = 0;
    }

    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
}

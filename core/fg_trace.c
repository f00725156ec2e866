/*
 * fg_trace.c -- W3C Trace Context Level 1: traceparent parsing and
 * formatting, continuing or starting the trace of a call, and the
 * tracestate check that decides whether the header is passed through.
 *
 * Decisions where the spec leaves room (see fg_trace.h):
 *   - spaces and tabs around a header value are HTTP OWS and ignored;
 *   - a trace this gateway starts is sent with flags 01 (it records every
 *     call); continued traces keep the caller's sampled flag, reserved
 *     flags are sent as zero;
 *   - a tracestate above 512 characters or 32 members is dropped whole
 *     rather than truncated; a duplicated key makes it invalid.
 */

#include <string.h>

#include "fg_trace.h"


/* ------------------------------------------------------------ helpers */

static int
fg_trace_is_ows(char c)
{
    return c == ' ' || c == '\t';
}


/* 0..15 for a lowercase hex digit, -1 otherwise. */
static int
fg_trace_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


/*
 * Check n lowercase hex digits at p, not all zero (when nonzero is set).
 * Returns -1 when they are fine, else the index of the first bad digit, or
 * n when they are all zero.
 */
static long
fg_trace_check_hex(const char *p, size_t n, int nonzero)
{
    size_t  i;
    int     any;

    any = 0;
    for (i = 0; i < n; i++) {
        if (fg_trace_hexval(p[i]) < 0) {
            return (long) i;
        }
        if (p[i] != '0') {
            any = 1;
        }
    }

    if (nonzero && !any) {
        return (long) n;
    }

    return -1;
}


/* Check one hex field of the traceparent at v[off]; fill err on failure. */
static int
fg_trace_field(const char *v, size_t off, size_t n, const char *name,
    int nonzero, fg_error_t *err)
{
    long  bad;

    bad = fg_trace_check_hex(v + off, n, nonzero);
    if (bad < 0) {
        return FG_OK;
    }

    if ((size_t) bad == n) {
        return fg_error_set(err, FG_ERR_SYNTAX, off,
                            "traceparent %s is all zero", name);
    }

    return fg_error_set(err, FG_ERR_SYNTAX, off + (size_t) bad,
                        "traceparent %s is not lowercase hex", name);
}


/* ------------------------------------------------------- traceparent */

/* Offsets of the fields in the version 00 form. */
#define FG_TP_TRACE   3
#define FG_TP_PARENT  (FG_TP_TRACE + FG_TRACE_ID_LEN + 1)     /* 36 */
#define FG_TP_FLAGS   (FG_TP_PARENT + FG_SPAN_ID_LEN + 1)     /* 53 */


int
fg_traceparent_parse(const char *v, size_t len, fg_traceparent_t *out,
    fg_error_t *err)
{
    size_t  start, end, n;
    int     rc;

    if (v == NULL) {
        len = 0;
    }

    start = 0;
    end = len;
    while (start < end && fg_trace_is_ows(v[start])) {
        start++;
    }
    while (end > start && fg_trace_is_ows(v[end - 1])) {
        end--;
    }

    n = end - start;
    if (n == 0) {
        return fg_error_set(err, FG_ERR_SYNTAX, start,
                            "traceparent is empty");
    }

    v += start;

    /* version: 2 lowercase hex digits and '-', ff forbidden */
    if (n < 3 || fg_trace_check_hex(v, 2, 0) >= 0 || v[2] != '-') {
        return fg_error_set(err, FG_ERR_SYNTAX, start,
                            "traceparent version is not 2 lowercase hex "
                            "digits and '-'");
    }

    out->version = (uint8_t) (fg_trace_hexval(v[0]) * 16
                              + fg_trace_hexval(v[1]));

    if (out->version == 0xff) {
        return fg_error_set(err, FG_ERR_SYNTAX, start,
                            "traceparent version ff is invalid");
    }

    if (out->version == 0x00 && n != FG_TRACEPARENT_LEN) {
        return fg_error_set(err, FG_ERR_SYNTAX, start,
                            "traceparent version 00 is %zu characters, "
                            "not %d", n, FG_TRACEPARENT_LEN);
    }

    if (n < FG_TRACEPARENT_LEN) {
        return fg_error_set(err, FG_ERR_SYNTAX, start,
                            "traceparent is %zu characters, fewer than %d",
                            n, FG_TRACEPARENT_LEN);
    }

    /* a higher version may carry more fields, after a '-' */
    if (n > FG_TRACEPARENT_LEN && v[FG_TRACEPARENT_LEN] != '-') {
        return fg_error_set(err, FG_ERR_SYNTAX, start + FG_TRACEPARENT_LEN,
                            "traceparent flags are not followed by '-'");
    }

    if (v[FG_TP_PARENT - 1] != '-' || v[FG_TP_FLAGS - 1] != '-') {
        return fg_error_set(err, FG_ERR_SYNTAX,
                            start + (v[FG_TP_PARENT - 1] != '-'
                                     ? FG_TP_PARENT - 1 : FG_TP_FLAGS - 1),
                            "traceparent field separator is not '-'");
    }

    rc = fg_trace_field(v, FG_TP_TRACE, FG_TRACE_ID_LEN, "trace-id", 1, err);
    if (rc == FG_OK) {
        rc = fg_trace_field(v, FG_TP_PARENT, FG_SPAN_ID_LEN, "parent-id", 1,
                            err);
    }
    if (rc == FG_OK) {
        rc = fg_trace_field(v, FG_TP_FLAGS, 2, "trace-flags", 0, err);
    }
    if (rc != FG_OK) {
        if (err != NULL) {
            err->offset += start;
        }
        return rc;
    }

    memcpy(out->trace_id, v + FG_TP_TRACE, FG_TRACE_ID_LEN);
    out->trace_id[FG_TRACE_ID_LEN] = '\0';
    memcpy(out->parent_id, v + FG_TP_PARENT, FG_SPAN_ID_LEN);
    out->parent_id[FG_SPAN_ID_LEN] = '\0';
    out->flags = (uint8_t) (fg_trace_hexval(v[FG_TP_FLAGS]) * 16
                            + fg_trace_hexval(v[FG_TP_FLAGS + 1]));

    return FG_OK;
}


/* Write "00-<trace_id>-<span_id>-<flags>" into out; ids are trusted. */
static void
fg_trace_write(const char *trace_id, const char *span_id, uint8_t flags,
    char out[FG_TRACEPARENT_SIZE])
{
    static const char  hex[] = "0123456789abcdef";

    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    memcpy(out + FG_TP_TRACE, trace_id, FG_TRACE_ID_LEN);
    out[FG_TP_PARENT - 1] = '-';
    memcpy(out + FG_TP_PARENT, span_id, FG_SPAN_ID_LEN);
    out[FG_TP_FLAGS - 1] = '-';
    out[FG_TP_FLAGS] = hex[flags >> 4];
    out[FG_TP_FLAGS + 1] = hex[flags & 0x0f];
    out[FG_TRACEPARENT_LEN] = '\0';
}


void
fg_traceparent_format(const fg_traceparent_t *tp,
    char out[FG_TRACEPARENT_SIZE])
{
    fg_trace_write(tp->trace_id, tp->parent_id, tp->flags, out);
}


int
fg_trace_continue(const fg_traceparent_t *in, fg_trace_t *out,
    char header[FG_TRACEPARENT_SIZE])
{
    uint8_t  flags;
    int      rc;

    if (in != NULL) {
        if (strnlen(in->trace_id, sizeof(in->trace_id)) != FG_TRACE_ID_LEN
            || strnlen(in->parent_id, sizeof(in->parent_id))
               != FG_SPAN_ID_LEN
            || fg_trace_check_hex(in->trace_id, FG_TRACE_ID_LEN, 1) >= 0
            || fg_trace_check_hex(in->parent_id, FG_SPAN_ID_LEN, 1) >= 0)
        {
            return FG_ERR_INVALID;
        }

        memcpy(out->trace_id, in->trace_id, sizeof(out->trace_id));
        memcpy(out->parent_span_id, in->parent_id,
               sizeof(out->parent_span_id));
        flags = in->flags & FG_TRACE_FLAG_SAMPLED;

    } else {
        rc = fg_trace_id_new(out->trace_id);
        if (rc != FG_OK) {
            return rc;
        }
        out->parent_span_id[0] = '\0';
        flags = FG_TRACE_FLAGS_NEW;
    }

    rc = fg_span_id_new(out->span_id);
    if (rc != FG_OK) {
        return rc;
    }

    fg_trace_write(out->trace_id, out->span_id, flags, header);

    return FG_OK;
}


/* -------------------------------------------------------- tracestate */

static int
fg_trace_is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}


/* lcalpha / DIGIT / "_" / "-" / "*" / "/" */
static int
fg_trace_is_keychar(char c)
{
    return fg_trace_is_lcalpha(c) || (c >= '0' && c <= '9')
           || c == '_' || c == '-' || c == '*' || c == '/';
}


/* nblk-chr = %x21-2B / %x2D-3C / %x3E-7E */
static int
fg_trace_is_nblk(char c)
{
    return c >= 0x21 && c <= 0x7e && c != ',' && c != '=';
}


/*
 * key = simple-key / multi-tenant-key
 * simple-key = lcalpha 0*255( keychar )
 * multi-tenant-key = tenant-id "@" system-id
 * tenant-id = ( lcalpha / DIGIT ) 0*240( keychar )
 * system-id = lcalpha 0*13( keychar )
 */
static int
fg_trace_key_ok(const char *k, size_t n)
{
    const char  *at;
    size_t       i, t, s;

    if (n == 0) {
        return 0;
    }

    at = memchr(k, '@', n);

    if (at == NULL) {
        if (n > 256 || !fg_trace_is_lcalpha(k[0])) {
            return 0;
        }
        for (i = 1; i < n; i++) {
            if (!fg_trace_is_keychar(k[i])) {
                return 0;
            }
        }
        return 1;
    }

    t = (size_t) (at - k);
    s = n - t - 1;

    if (t == 0 || t > 241 || s == 0 || s > 14
        || !(fg_trace_is_lcalpha(k[0]) || (k[0] >= '0' && k[0] <= '9'))
        || !fg_trace_is_lcalpha(at[1]))
    {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (i != t && !fg_trace_is_keychar(k[i])) {
            return 0;               /* also refuses a second '@' */
        }
    }

    return 1;
}


/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr */
static int
fg_trace_value_ok(const char *p, size_t n)
{
    size_t  i;

    if (n == 0 || n > 256 || !fg_trace_is_nblk(p[n - 1])) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (p[i] != ' ' && !fg_trace_is_nblk(p[i])) {
            return 0;
        }
    }

    return 1;
}


int
fg_tracestate_check(const char *v, size_t len)
{
    const char  *key[FG_TRACESTATE_MEMBERS];
    size_t       klen[FG_TRACESTATE_MEMBERS];
    const char  *p, *end, *m, *me, *eq;
    size_t       members, i;

    if (v == NULL || len == 0) {
        return FG_OK;
    }

    if (len > FG_TRACESTATE_MAX) {
        return FG_ERR_LIMIT;
    }

    members = 0;
    p = v;
    end = v + len;

    for ( ;; ) {
        me = memchr(p, ',', (size_t) (end - p));
        if (me == NULL) {
            me = end;
        }

        /* the member, without the OWS around it */
        m = p;
        while (m < me && fg_trace_is_ows(*m)) {
            m++;
        }
        while (me > m && fg_trace_is_ows(me[-1])) {
            me--;
        }

        if (m < me) {
            eq = memchr(m, '=', (size_t) (me - m));
            if (eq == NULL
                || !fg_trace_key_ok(m, (size_t) (eq - m))
                || !fg_trace_value_ok(eq + 1, (size_t) (me - eq - 1)))
            {
                return FG_ERR_SYNTAX;
            }

            if (members == FG_TRACESTATE_MEMBERS) {
                return FG_ERR_LIMIT;
            }

            for (i = 0; i < members; i++) {
                if (klen[i] == (size_t) (eq - m)
                    && memcmp(key[i], m, klen[i]) == 0)
                {
                    return FG_ERR_SYNTAX;   /* one entry per key */
                }
            }

            key[members] = m;
            klen[members] = (size_t) (eq - m);
            members++;
        }

        p = memchr(p, ',', (size_t) (end - p));
        if (p == NULL) {
            break;
        }
        p++;
    }

    return FG_OK;
}

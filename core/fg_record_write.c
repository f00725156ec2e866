/*
 * fg_record_write.c -- a record's canonical bytes written in one pass
 * (fg_record_write.h says why and what is checked).
 */

#include <inttypes.h>
#include <string.h>

#include "fg_jcs.h"
#include "fg_jcs_write.h"
#include "fg_record_write.h"
#include "fg_utf8.h"


void
fg_rw_init(fg_rw_t *w, fg_sink_t *out, fg_error_t *err)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->err = err;
}


static void
fg_rw_fail(fg_rw_t *w, int rc, const char *what, const char *key)
{
    if (w->rc == FG_OK) {
        w->rc = rc;
        fg_error_set(w->err, rc, FG_NO_OFFSET, "record: %s%s%s", what,
                     key ? " at " : "", key ? key : "");
    }
}


static void
fg_rw_put(fg_rw_t *w, const char *p, size_t n)
{
    int  rc;

    if (w->rc == FG_OK && (rc = fg_sink_write(w->out, p, n)) != FG_OK) {
        fg_rw_fail(w, rc, fg_strerror(rc), NULL);
    }
}


/* Before a value: the comma between array elements. */
static void
fg_rw_value(fg_rw_t *w)
{
    if (w->depth > 0 && w->array[w->depth - 1]) {
        if (!w->empty[w->depth - 1]) {
            fg_rw_put(w, ",", 1);
        }
        w->empty[w->depth - 1] = 0;
    }
}


static void
fg_rw_open(fg_rw_t *w, int array)
{
    fg_rw_value(w);

    if (w->depth == FG_RW_MAX_DEPTH) {
        fg_rw_fail(w, FG_ERR_LIMIT, "nested too deep", NULL);
        return;
    }

    w->array[w->depth] = (unsigned char) array;
    w->empty[w->depth] = 1;
    w->last[w->depth] = NULL;
    w->depth++;

    fg_rw_put(w, array ? "[" : "{", 1);
}


void
fg_rw_object(fg_rw_t *w)
{
    fg_rw_open(w, 0);
}


void
fg_rw_array(fg_rw_t *w)
{
    fg_rw_open(w, 1);
}


void
fg_rw_close(fg_rw_t *w)
{
    if (w->depth == 0) {
        fg_rw_fail(w, FG_ERR_INVALID, "close without open", NULL);
        return;
    }

    w->depth--;
    fg_rw_put(w, w->array[w->depth] ? "]" : "}", 1);
}


void
fg_rw_key(fg_rw_t *w, const char *key)
{
    unsigned  d;

    if (w->depth == 0 || w->array[w->depth - 1]) {
        fg_rw_fail(w, FG_ERR_INVALID, "member outside an object", key);
        return;
    }

    d = w->depth - 1;

    /* JCS order: for the ASCII names records use, byte order */
    if (w->last[d] != NULL && strcmp(w->last[d], key) >= 0) {
        fg_rw_fail(w, FG_ERR_INVALID, "member out of canonical order", key);
        return;
    }
    w->last[d] = key;

    if (!w->empty[d]) {
        fg_rw_put(w, ",", 1);
    }
    w->empty[d] = 0;

    fg_rw_put(w, "\"", 1);
    fg_rw_put(w, key, strlen(key));
    fg_rw_put(w, "\":", 2);
}


void
fg_rw_stringn(fg_rw_t *w, const char *s, size_t n)
{
    int  rc;

    fg_rw_value(w);

    if (w->rc != FG_OK) {
        return;
    }

    if (!fg_utf8_valid((const unsigned char *) s, n)) {
        fg_rw_fail(w, FG_ERR_INVALID, "a string is not UTF-8",
                   w->depth ? w->last[w->depth - 1] : NULL);
        return;
    }

    rc = fg_jcs_write_string((const unsigned char *) s, n, 0, w->out);
    if (rc != FG_OK) {
        fg_rw_fail(w, rc, fg_strerror(rc), NULL);
    }
}


void
fg_rw_string(fg_rw_t *w, const char *s)
{
    if (s == NULL) {
        fg_rw_fail(w, FG_ERR_INVALID, "a string is missing",
                   w->depth ? w->last[w->depth - 1] : NULL);
        return;
    }

    fg_rw_stringn(w, s, strlen(s));
}


void
fg_rw_string_or_null(fg_rw_t *w, const char *s)
{
    if (s == NULL) {
        fg_rw_null(w);
    } else {
        fg_rw_string(w, s);
    }
}


void
fg_rw_int(fg_rw_t *w, int64_t v)
{
    char      buf[24], *p;
    uint64_t  u;

    fg_rw_value(w);

    if (v <= -9007199254740992LL || v >= 9007199254740992LL) {
        /* no record field holds one; a JSON number would round it */
        fg_rw_fail(w, FG_ERR_INVALID, "an integer beyond 2^53",
                   w->depth ? w->last[w->depth - 1] : NULL);
        return;
    }

    p = buf + sizeof(buf);
    u = v < 0 ? (uint64_t) -v : (uint64_t) v;
    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }

    fg_rw_put(w, p, (size_t) (buf + sizeof(buf) - p));
}


void
fg_rw_bool(fg_rw_t *w, int v)
{
    fg_rw_value(w);
    fg_rw_put(w, v ? "true" : "false", v ? 4 : 5);
}


void
fg_rw_null(fg_rw_t *w)
{
    fg_rw_value(w);
    fg_rw_put(w, "null", 4);
}


void
fg_rw_json(fg_rw_t *w, const json_t *v)
{
    int         rc;
    fg_error_t  e;

    fg_rw_value(w);

    if (w->rc != FG_OK) {
        return;
    }

    if (v == NULL) {
        fg_rw_fail(w, FG_ERR_INVALID, "a value is missing",
                   w->depth ? w->last[w->depth - 1] : NULL);
        return;
    }

    e.msg[0] = '\0';
    rc = fg_jcs_canonicalize_json(v, 0, w->out, &e);
    if (rc != FG_OK) {
        fg_rw_fail(w, rc, e.msg[0] ? e.msg : fg_strerror(rc),
                   w->depth ? w->last[w->depth - 1] : NULL);
    }
}


void
fg_rw_json_or(fg_rw_t *w, const json_t *v, fg_rw_none_t none)
{
    if (v != NULL) {
        fg_rw_json(w, v);
        return;
    }

    switch (none) {
    case FG_RW_EMPTY_OBJECT:
        fg_rw_object(w);
        fg_rw_close(w);
        break;
    case FG_RW_EMPTY_ARRAY:
        fg_rw_array(w);
        fg_rw_close(w);
        break;
    default:
        fg_rw_null(w);
    }
}


void
fg_rw_time(fg_rw_t *w, time_t sec, long nsec)
{
    char  buf[FG_TIME_MAX];

    if (fg_time_format(sec, nsec, buf) != FG_OK) {
        fg_rw_value(w);
        fg_rw_fail(w, FG_ERR_INVALID, "not a valid time",
                   w->depth ? w->last[w->depth - 1] : NULL);
        return;
    }

    fg_rw_stringn(w, buf, strlen(buf));
}


void
fg_rw_canon_version(fg_rw_t *w)
{
    fg_rw_key(w, "canon_version");
    fg_rw_int(w, FG_CANON_VERSION);
}


void
fg_rw_record_type(fg_rw_t *w, fg_record_type_t type)
{
    fg_rw_key(w, "record_type");
    fg_rw_string(w, fg_record_type_name(type));
}


void
fg_rw_spec_version(fg_rw_t *w)
{
    fg_rw_key(w, "spec_version");
    fg_rw_string(w, FG_SPEC_VERSION);
}


void
fg_rw_trace(fg_rw_t *w, const fg_trace_t *trace)
{
    fg_rw_key(w, "trace");
    fg_rw_object(w);
    fg_rw_key(w, "parent_span_id");
    fg_rw_string_or_null(w, trace->parent_span_id[0] ? trace->parent_span_id
                                                     : NULL);
    fg_rw_key(w, "span_id");
    fg_rw_string(w, trace->span_id);
    fg_rw_key(w, "trace_id");
    fg_rw_string(w, trace->trace_id);
    fg_rw_close(w);
}


int
fg_rw_finish(fg_rw_t *w)
{
    int  rc;

    if (w->rc == FG_OK && w->depth != 0) {
        fg_rw_fail(w, FG_ERR_INVALID, "a container left open", NULL);
    }

    if (w->rc == FG_OK && (rc = fg_sink_drain(w->out)) != FG_OK) {
        fg_rw_fail(w, rc, fg_strerror(rc), NULL);
    }

    return w->rc;
}


fg_sink_t *
fg_rw_buffer_open(fg_rw_buffer_t *b)
{
    fg_buffer_init(&b->buf, FG_RECORD_MAX_BYTES);
    fg_sink_to_buffer(&b->sink, &b->buf, b->stage, sizeof(b->stage));

    return &b->sink;
}


/*
 * 1 if bytes are JCS(rec).  This way out is not the gateway's (it sends
 * the bytes it wrote), so it can afford to check the writer every time.
 */
static int
fg_rw_canonical(const json_t *rec, const fg_buffer_t *bytes)
{
    int             same;
    fg_sink_t       sink;
    fg_error_t      e;
    fg_buffer_t     canon;
    unsigned char   stage[1024];

    fg_buffer_init(&canon, FG_RECORD_MAX_BYTES);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));

    same = fg_jcs_canonicalize_json(rec, 0, &sink, &e) == FG_OK
           && canon.len == bytes->len
           && memcmp(canon.data, bytes->data, canon.len) == 0;

    fg_buffer_free(&canon);

    return same;
}


json_t *
fg_rw_buffer_json(fg_rw_buffer_t *b, int rc, fg_error_t *err)
{
    json_t        *rec;
    json_error_t   jerr;

    rec = NULL;

    if (rc == FG_OK) {
        rec = json_loadb((const char *) b->buf.data, b->buf.len,
                         JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (rec == NULL) {
            /* the writer wrote something jansson cannot read: a defect */
            fg_error_set(err, FG_ERR_INVALID, (size_t) jerr.position,
                         "record: written bytes do not read back: %s",
                         jerr.text);

        } else if (!fg_rw_canonical(rec, &b->buf)) {
            /* nor may it write anything but the canonical form */
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "record: written bytes are not canonical");
            json_decref(rec);
            rec = NULL;
        }
    }

    fg_buffer_free(&b->buf);

    return rec;
}

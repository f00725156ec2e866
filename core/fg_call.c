/*
 * fg_call.c -- one governed call without nginx: the request body read
 * strictly and hashed, the FoxGov-Labels header, the DecisionInput, the
 * ModelCallRecord and ToolCallRecord, the cost of a model call and the
 * error body of a refusal.  See fg_call.h for the contract.
 *
 * Every string that enters a record is checked here against the bound
 * and pattern of schemas/Shared.schema.json, in C, so that no schema
 * runs on the request path and no jansson call fails on bytes it cannot
 * hold; the unit tests validate the built records against the schemas.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_call.h"
#include "fg_record_write.h"
#include "fg_utf8.h"

#define FG_CALL_POINTER_MAX   256     /* bytes of an input.body key */
#define FG_CALL_CODE_MAX      64      /* bytes of an error body's code */
#define FG_CALL_MESSAGE_MAX   1024    /* bytes of an error body's message */
#define FG_CALL_SOURCE_MAX    256     /* characters of cost.price_source */

static const char  *fg_call_outcomes[] = {
    FG_OUTCOME_COMPLETED,
    FG_OUTCOME_DENIED,
    FG_OUTCOME_UPSTREAM_ERROR,
    FG_OUTCOME_CLIENT_ABORTED,
    FG_OUTCOME_UPSTREAM_ABORTED,
    FG_OUTCOME_TIMEOUT,
    NULL
};

static const char  *fg_call_actions[] = { "read", "write", NULL };
static const char  *fg_call_risks[] = { "low", "medium", "high", NULL };


/* ======================================================== small checks */

static int
fg_call_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


static int
fg_call_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}


static unsigned char
fg_call_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c - 'A' + 'a') : c;
}


/* 1 if s is one of the NULL-ended list */
static int
fg_call_one_of(const char *s, const char **list)
{
    if (s == NULL) {
        return 0;
    }

    for ( /* void */ ; *list != NULL; list++) {
        if (strcmp(s, *list) == 0) {
            return 1;
        }
    }

    return 0;
}


int
fg_call_token_valid(const char *s, size_t n)
{
    size_t  i;

    if (s == NULL || n == 0 || n > FG_CALL_TOKEN_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < '!' || (unsigned char) s[i] > '~') {
            return 0;
        }
    }

    return 1;
}


int
fg_call_tool_id_valid(const char *s, size_t n)
{
    size_t  i;

    if (s == NULL || n == 0 || n > FG_CALL_TOOL_ID_MAX
        || !fg_call_lower_alnum((unsigned char) s[0]))
    {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if (!fg_call_lower_alnum((unsigned char) s[i]) && s[i] != '_'
            && s[i] != '.' && s[i] != '-')
        {
            return 0;
        }
    }

    return 1;
}


/* 1 if s is a C string of at most max bytes that is a token */
static int
fg_call_ctoken(const char *s)
{
    return s != NULL
           && fg_call_token_valid(s, strnlen(s, FG_CALL_TOKEN_MAX + 1));
}


/* ^[A-Z][A-Z_-]{0,31}$ */
static int
fg_call_method_valid(const char *s, size_t n)
{
    size_t  i;

    if (s == NULL || n == 0 || n > FG_CALL_METHOD_MAX
        || s[0] < 'A' || s[0] > 'Z')
    {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] < 'A' || s[i] > 'Z') && s[i] != '_' && s[i] != '-') {
            return 0;
        }
    }

    return 1;
}


/* ^[a-z0-9._:\[\]-]+$, at most 255 bytes */
static int
fg_call_host_valid(const char *s, size_t n)
{
    size_t  i;

    if (s == NULL || n == 0 || n > FG_CALL_HOST_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (s[i] == '\0'
            || (!fg_call_lower_alnum((unsigned char) s[i])
                && strchr("._:[]-", s[i]) == NULL))
        {
            return 0;
        }
    }

    return 1;
}


/* ^/[^\x00-\x1f\x7f]*$, UTF-8, at most 2048 characters */
static int
fg_call_path_valid(const char *s, size_t n)
{
    const unsigned char  *p = (const unsigned char *) s;
    size_t                i;

    if (s == NULL || n == 0 || p[0] != '/') {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 0;
        }
    }

    return fg_utf8_valid(p, n) && fg_utf8_length(p, n) <= FG_CALL_PATH_MAX;
}


/* ^[a-z0-9][a-z0-9_.:-]{0,127}$: one redactions_applied item */
static int
fg_call_redaction_valid(const char *s)
{
    size_t  i;

    if (s == NULL || !fg_call_lower_alnum((unsigned char) s[0])) {
        return 0;
    }

    for (i = 1; s[i] != '\0'; i++) {
        if (i >= 128
            || (!fg_call_lower_alnum((unsigned char) s[i]) && s[i] != '_'
                && s[i] != '.' && s[i] != ':' && s[i] != '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* method, host and path of a call as the schema's patterns allow */
static int
fg_call_target_check(const char *method, size_t method_len,
    const char *host, size_t host_len, const char *path, size_t path_len,
    fg_error_t *err)
{
    if (!fg_call_method_valid(method, method_len)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "method is not ^[A-Z][A-Z_-]{0,31}$");
    }

    if (!fg_call_host_valid(host, host_len)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "host is not a host name of at most %d bytes",
                            FG_CALL_HOST_MAX);
    }

    if (!fg_call_path_valid(path, path_len)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "path is not an absolute UTF-8 path of at most "
                            "%d characters without control characters",
                            FG_CALL_PATH_MAX);
    }

    return FG_OK;
}


/* Set key of o to v (stolen; NULL is out of memory). */
static int
fg_call_set(json_t *o, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(o, key, v) == 0
           ? FG_OK : FG_ERR_NOMEM;
}


static json_t *
fg_call_string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}


static json_t *
fg_call_blobref_or_null(const fg_blobref_t *ref)
{
    return ref != NULL ? fg_blobref_to_json(ref) : json_null();
}


/* a copy of v when it is an object, {} when v is NULL, NULL otherwise */
static json_t *
fg_call_object_or_empty(const json_t *v)
{
    if (v == NULL) {
        return json_object();
    }

    /* shared: labels are not changed once parsed */
    return json_is_object(v) ? json_incref((json_t *) v) : NULL;
}


/* ======================================================= content types */

/* [A-Za-z0-9!#$&^_.+-] */
static int
fg_ct_char(unsigned char c)
{
    return fg_call_alnum(c) || (c != '\0' && strchr("!#$&^_.+-", c) != NULL);
}


/* length of [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]* at s[0..n), 0 if none */
static size_t
fg_ct_name(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || !fg_call_alnum((unsigned char) s[0])) {
        return 0;
    }

    for (i = 1; i < n && fg_ct_char((unsigned char) s[i]); i++) {
        /* void */
    }

    return i;
}


/*
 * 1 if s[0..n) fits the schema's content_type (at most 127 bytes):
 * type/subtype, followed (params set) by an optional " *;[ -~]*".
 */
static int
fg_ct_fits(const char *s, size_t n, int params)
{
    size_t  i, k;

    if (n == 0 || n >= FG_CONTENT_TYPE_MAX) {
        return 0;
    }

    i = fg_ct_name(s, n);
    if (i == 0 || i == n || s[i] != '/') {
        return 0;
    }

    i++;
    k = fg_ct_name(s + i, n - i);
    if (k == 0) {
        return 0;
    }

    i += k;
    if (i == n) {
        return 1;
    }

    if (!params) {
        return 0;
    }

    while (i < n && s[i] == ' ') {
        i++;
    }

    if (i == n || s[i] != ';') {
        return 0;
    }

    for (i++; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


/* The media type of v[0..len) (len > 0): before any ';', SP/HT trimmed. */
static void
fg_ct_media(const char *v, size_t len, const char **s, size_t *n)
{
    const char  *semi;
    size_t       b, e;

    semi = memchr(v, ';', len);
    e = semi != NULL ? (size_t) (semi - v) : len;
    b = 0;

    while (b < e && (v[b] == ' ' || v[b] == '\t')) {
        b++;
    }

    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
        e--;
    }

    *s = v + b;
    *n = e - b;
}


/* ASCII case-insensitive equality of s[0..n) and the lowercase lit */
static int
fg_ct_ieq(const char *s, size_t n, const char *lit)
{
    size_t  i;

    if (n != strlen(lit)) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (fg_call_lower((unsigned char) s[i]) != (unsigned char) lit[i]) {
            return 0;
        }
    }

    return 1;
}


int
fg_content_type_is_json(const char *v, size_t len)
{
    const char  *s;
    size_t       n;

    if (v == NULL || len == 0) {
        return 0;
    }

    fg_ct_media(v, len, &s, &n);

    /* "application/" and at least one subtype character */
    if (!fg_ct_fits(s, n, 0) || n <= 12 || !fg_ct_ieq(s, 12, "application/"))
    {
        return 0;
    }

    s += 12;
    n -= 12;

    return fg_ct_ieq(s, n, "json")
           || (n > 5 && fg_ct_ieq(s + n - 5, 5, "+json"));
}


void
fg_content_type_record(const char *v, size_t len,
    char out[FG_CONTENT_TYPE_MAX])
{
    const char  *s;
    size_t       n, i;

    if (v != NULL && len > 0) {
        if (fg_ct_fits(v, len, 1)) {
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }

        fg_ct_media(v, len, &s, &n);

        if (fg_ct_fits(s, n, 0)) {
            for (i = 0; i < n; i++) {
                out[i] = (char) fg_call_lower((unsigned char) s[i]);
            }
            out[n] = '\0';
            return;
        }
    }

    memcpy(out, "application/octet-stream",
           sizeof("application/octet-stream"));
}


/* ================================================================ body */

int
fg_call_body(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *p,
    size_t n, int json, const char *ctype, size_t ctype_len,
    fg_blobref_t *ref, json_t **value, fg_error_t *err)
{
    char      ct[FG_CONTENT_TYPE_MAX];
    uint64_t  size;
    int       rc;

    if (value != NULL) {
        *value = NULL;
    }

    if (ref == NULL || value == NULL || (p == NULL && n > 0)
        || (json && (jcs == NULL || h == NULL)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "body: a required argument is missing");
    }

    if (p == NULL) {
        p = (const unsigned char *) "";
    }

    fg_content_type_record(ctype, ctype_len, ct);

    if (!json) {
        return fg_blobref_raw(p, n, ct, ref, err);
    }

    size = 0;
    rc = fg_record_parse_bounded(jcs, h, p, n, FG_JCS_MAX_INPUT, "body", 1,
                                 ref->sha256, &size, value, err);
    if (rc != FG_OK) {
        return rc;
    }

    ref->size_bytes = size;
    memcpy(ref->content_type, ct, sizeof(ct));

    return FG_OK;
}


/* ============================================================== labels */

static int
fg_call_ows(char c)
{
    return c == ' ' || c == '\t';
}


/* One non-empty member v[b..e) (trimmed), the nth; added to labels. */
static int
fg_label_member(json_t *labels, const char *v, size_t b, size_t e,
    size_t nth, fg_error_t *err)
{
    const char  *eq;
    size_t       kb, ke, vb, ve, i;
    json_t      *s;

    if (nth > FG_CALL_LABELS_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, b,
                            "FoxGov-Labels: more than %d labels (member %zu "
                            "at byte %zu)", FG_CALL_LABELS_MAX, nth, b);
    }

    eq = memchr(v + b, '=', e - b);
    if (eq == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, b,
                            "FoxGov-Labels: member %zu at byte %zu is not "
                            "key=value", nth, b);
    }

    kb = b;
    ke = (size_t) (eq - v);
    vb = ke + 1;
    ve = e;

    while (ke > kb && fg_call_ows(v[ke - 1])) {
        ke--;
    }
    while (vb < ve && fg_call_ows(v[vb])) {
        vb++;
    }

    if (ke == kb) {
        return fg_error_set(err, FG_ERR_INVALID, b,
                            "FoxGov-Labels: member %zu at byte %zu has an "
                            "empty key", nth, b);
    }

    if (ke - kb > FG_CALL_LABEL_KEY_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, kb,
                            "FoxGov-Labels: member %zu at byte %zu has a key "
                            "of %zu bytes (at most %d)", nth, kb, ke - kb,
                            FG_CALL_LABEL_KEY_MAX);
    }

    for (i = kb; i < ke; i++) {
        if (!fg_call_lower_alnum((unsigned char) v[i]) && v[i] != '_'
            && v[i] != '.' && v[i] != '-')
        {
            return fg_error_set(err, FG_ERR_INVALID, i,
                                "FoxGov-Labels: member %zu: key byte at %zu "
                                "is not one of a-z 0-9 _ . -", nth, i);
        }
    }

    /* the key is now plain ASCII and may be quoted */

    if (json_object_getn(labels, v + kb, ke - kb) != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, kb,
                            "FoxGov-Labels: label \"%.*s\" appears twice "
                            "(member %zu)", (int) (ke - kb), v + kb, nth);
    }

    if (ve - vb > FG_CALL_LABEL_VALUE_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, vb,
                            "FoxGov-Labels: label \"%.*s\" has a value of "
                            "%zu bytes (at most %d)", (int) (ke - kb),
                            v + kb, ve - vb, FG_CALL_LABEL_VALUE_MAX);
    }

    for (i = vb; i < ve; i++) {
        if ((unsigned char) v[i] < 0x20 || (unsigned char) v[i] > 0x7e) {
            return fg_error_set(err, FG_ERR_INVALID, i,
                                "FoxGov-Labels: label \"%.*s\": value byte "
                                "at %zu is not printable ASCII",
                                (int) (ke - kb), v + kb, i);
        }
    }

    s = json_stringn(v + vb, ve - vb);
    if (s == NULL
        || json_object_setn_new(labels, v + kb, ke - kb, s) != 0)
    {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    return FG_OK;
}


int
fg_labels_parse(const char *v, size_t len, json_t **out, fg_error_t *err)
{
    json_t  *labels;
    size_t   start, end, b, e, nth;
    int      rc;

    if (out == NULL || (v == NULL && len > 0)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "FoxGov-Labels: a required argument is missing");
    }

    *out = NULL;

    if (len > FG_CALL_LABELS_TEXT_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_CALL_LABELS_TEXT_MAX,
                            "FoxGov-Labels of %zu bytes is longer than %d",
                            len, FG_CALL_LABELS_TEXT_MAX);
    }

    labels = json_object();
    if (labels == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    nth = 0;

    for (start = 0; start <= len; start = end + 1) {
        end = start;
        while (end < len && v[end] != ',') {
            end++;
        }

        b = start;
        e = end;
        while (b < e && fg_call_ows(v[b])) {
            b++;
        }
        while (e > b && fg_call_ows(v[e - 1])) {
            e--;
        }

        if (b == e) {
            continue;               /* an empty member */
        }

        rc = fg_label_member(labels, v, b, e, ++nth, err);
        if (rc != FG_OK) {
            json_decref(labels);
            return rc;
        }
    }

    *out = labels;

    return FG_OK;
}


/* ====================================================== decision input */

/* ^(/([^~/]|~[01])*)+$, UTF-8, at most FG_CALL_POINTER_MAX bytes */
static int
fg_call_pointer_valid(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > FG_CALL_POINTER_MAX || s[0] != '/') {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (s[i] == '~'
            && (i + 1 == n || (s[i + 1] != '0' && s[i + 1] != '1')))
        {
            return 0;
        }
    }

    return fg_utf8_valid((const unsigned char *) s, n);
}


/* An array index: "0" or [1-9][0-9]*, below size.  1 with *index, or 0. */
static int
fg_call_pointer_index(const char *s, size_t n, size_t size, size_t *index)
{
    size_t  i, v;

    if (n == 0 || (n > 1 && s[0] == '0')) {
        return 0;
    }

    v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (SIZE_MAX - 9) / 10) {
            return 0;
        }
        v = v * 10 + (size_t) (s[i] - '0');
        if (v >= size) {
            return 0;
        }
    }

    *index = v;
    return 1;
}


/*
 * The value the RFC 6901 pointer ptr[0..n) (valid, so not "") names in
 * doc, or NULL when it does not resolve.
 */
static const json_t *
fg_call_pointer_get(const json_t *doc, const char *ptr, size_t n)
{
    char     seg[FG_CALL_POINTER_MAX];
    size_t   i, len, index;

    i = 0;

    while (doc != NULL && i < n) {
        /* ptr[i] is '/': unescape the segment after it */
        len = 0;
        for (i++; i < n && ptr[i] != '/'; i++) {
            if (ptr[i] == '~') {
                seg[len++] = ptr[++i] == '0' ? '~' : '/';
            } else {
                seg[len++] = ptr[i];
            }
        }

        if (json_is_object(doc)) {
            doc = json_object_getn(doc, seg, len);

        } else if (json_is_array(doc)) {
            doc = fg_call_pointer_index(seg, len, json_array_size(doc),
                                        &index)
                  ? json_array_get(doc, index) : NULL;

        } else {
            doc = NULL;
        }
    }

    return doc;
}


/* The error of a failed step: fg_jcs_node_json()'s, or out of memory. */
static int
fg_call_prune_error(const json_t *child, const fg_error_t *err)
{
    return (child == NULL && err != NULL && err->code != FG_OK) ? err->code
                                                                : FG_ERR_NOMEM;
}


/*
 * Add to the pruned document mirror what the pointer ptr[0..n) names in
 * the body on jcs's tape, and the containers on the way to it: each
 * container as an empty one of its kind until another pointer goes into
 * it, array elements before an index as null placeholders (a pointer that
 * reads one puts the real value there: the tape has the last word).
 * Stops, adding nothing more, where the pointer stops resolving.
 */
static int
fg_call_prune(const fg_jcs_t *jcs, json_t *mirror, const char *ptr, size_t n,
    fg_error_t *err)
{
    char      seg[FG_CALL_POINTER_MAX];
    size_t    i, len, index, k;
    json_t   *child;
    uint32_t  node, next;

    node = 0;
    i = 0;

    while (i < n) {
        len = 0;
        for (i++; i < n && ptr[i] != '/'; i++) {
            if (ptr[i] == '~') {
                seg[len++] = ptr[++i] == '0' ? '~' : '/';
            } else {
                seg[len++] = ptr[i];
            }
        }

        if (json_is_object(mirror)) {
            next = fg_jcs_node_member(jcs, node, seg, len);
            if (next == FG_JCS_NO_NODE) {
                return FG_OK;
            }
            child = json_object_getn(mirror, seg, len);
            if (child == NULL || json_is_null(child)) {
                child = fg_jcs_node_json(jcs, next, err);
                if (child == NULL
                    || json_object_setn_new_nocheck(mirror, seg, len, child))
                {
                    return fg_call_prune_error(child, err);
                }
            }

        } else if (json_is_array(mirror)) {
            if (!fg_call_pointer_index(seg, len,
                                       fg_jcs_node_size(jcs, node), &index))
            {
                return FG_OK;
            }
            next = fg_jcs_node_element(jcs, node, index);
            for (k = json_array_size(mirror); k <= index; k++) {
                if (json_array_append_new(mirror, json_null())) {
                    return FG_ERR_NOMEM;
                }
            }
            child = json_array_get(mirror, index);
            if (json_is_null(child)) {
                child = fg_jcs_node_json(jcs, next, err);
                if (child == NULL || json_array_set_new(mirror, index, child))
                {
                    return fg_call_prune_error(child, err);
                }
            }

        } else {
            return FG_OK;
        }

        mirror = child;
        node = next;
    }

    return FG_OK;
}


int
fg_call_body_view(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *p,
    size_t n, const char *ctype, size_t ctype_len,
    const char *const *pointers, size_t npointers, fg_blobref_t *ref,
    json_t **value, fg_error_t *err)
{
    char      ct[FG_CONTENT_TYPE_MAX];
    size_t    i, len;
    uint64_t  size;
    int       rc;

    if (value != NULL) {
        *value = NULL;
    }

    if (ref == NULL || value == NULL || jcs == NULL || h == NULL
        || (p == NULL && n > 0) || (npointers > 0 && pointers == NULL))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "body: a required argument is missing");
    }

    fg_content_type_record(ctype, ctype_len, ct);

    size = 0;
    rc = fg_record_canon_bounded(jcs, h, p != NULL ? p
                                 : (const unsigned char *) "", n,
                                 FG_JCS_MAX_INPUT, "body", ref->sha256,
                                 &size, err);
    if (rc != FG_OK) {
        return rc;
    }

    ref->size_bytes = size;
    memcpy(ref->content_type, ct, sizeof(ct));

    *value = fg_jcs_node_json(jcs, 0, err);
    if (*value == NULL) {
        return fg_call_prune_error(NULL, err);
    }

    for (i = 0; i < npointers; i++) {
        len = strlen(pointers[i]);

        if (!fg_call_pointer_valid(pointers[i], len)) {
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "body pointer %zu is not a JSON pointer of at "
                              "most %d bytes", i, FG_CALL_POINTER_MAX);
        } else {
            rc = fg_call_prune(jcs, *value, pointers[i], len, err);
            if (rc == FG_ERR_NOMEM) {
                fg_error_set(err, rc, FG_NO_OFFSET, "out of memory");
            }
        }

        if (rc != FG_OK) {
            json_decref(*value);
            *value = NULL;
            return rc;
        }
    }

    return FG_OK;
}


/* input.body: one entry per pointer that resolves in the parsed body */
static int
fg_input_body(json_t *in, const fg_call_input_args_t *a, fg_error_t *err)
{
    const json_t  *v;
    const char    *ptr;
    json_t        *body, *copy;
    size_t         i, n, chars;

    if (a->npointers > FG_POLICY_MAX_BODY_POINTERS
        || (a->npointers > 0 && a->pointers == NULL))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: %zu body pointers (at most %d)",
                            a->npointers, FG_POLICY_MAX_BODY_POINTERS);
    }

    body = json_object();
    if (body == NULL || json_object_set_new(in, "body", body) != 0) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    for (i = 0; i < a->npointers; i++) {
        ptr = a->pointers[i];
        n = ptr != NULL ? strnlen(ptr, FG_CALL_POINTER_MAX + 1) : 0;

        if (!fg_call_pointer_valid(ptr, n)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: body pointer %zu is not a "
                                "JSON pointer of at most %d bytes", i,
                                FG_CALL_POINTER_MAX);
        }

        v = a->body != NULL ? fg_call_pointer_get(a->body, ptr, n) : NULL;
        if (v == NULL) {
            continue;               /* absent: what exists:false sees */
        }

        if (json_is_object(v)) {
            copy = json_object();

        } else if (json_is_array(v)) {
            copy = json_array();

        } else {
            if (json_is_string(v)) {
                chars = fg_utf8_length(
                    (const unsigned char *) json_string_value(v),
                    json_string_length(v));
                if (chars > FG_CALL_BODY_VALUE_MAX) {
                    return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                        "body:%s reads a string of %zu "
                                        "characters (at most %d can be "
                                        "recorded)", ptr, chars,
                                        FG_CALL_BODY_VALUE_MAX);
                }
            }
            copy = json_copy((json_t *) v);
        }

        if (copy == NULL || json_object_set_new(body, ptr, copy) != 0) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
    }

    return FG_OK;
}


/* the AuthContext fields the decision reads */
static int
fg_input_auth(json_t *in, const json_t *auth, fg_error_t *err)
{
    static const char  *names[] = {
        "tenant_id", "workspace_id", "environment", "principal"
    };
    const json_t       *v;
    const char         *tenant;
    size_t              i;
    int                 rc;

    if (!json_is_object(auth)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: no AuthContext");
    }

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!json_is_string(json_object_get(auth, names[i]))) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: the AuthContext has no "
                                "%s string", names[i]);
        }
    }

    tenant = json_string_value(json_object_get(auth, "tenant_id"));
    if (!fg_tenant_id_valid(tenant, strlen(tenant))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: the AuthContext's tenant_id is "
                            "not valid");
    }

    v = json_object_get(auth, "acr");
    if (v != NULL && !json_is_string(v) && !json_is_null(v)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: the AuthContext's acr is not a "
                            "string or null");
    }

    if (!json_is_array(json_object_get(auth, "capabilities"))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: the AuthContext has no "
                            "capabilities array");
    }

    rc = FG_OK;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rc |= fg_call_set(in, names[i],
                          json_copy(json_object_get(auth, names[i])));
    }
    rc |= fg_call_set(in, "acr", v != NULL ? json_copy((json_t *) v)
                                           : json_null());
    rc |= fg_call_set(in, "capabilities",
                      json_incref(json_object_get(auth, "capabilities")));

    if (rc != FG_OK) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    return FG_OK;
}


/* kind, provider, model, tool, action, risk */
static int
fg_input_kind(json_t *in, const fg_call_input_args_t *a, fg_error_t *err)
{
    int  rc;

    if (a->kind == FG_CALL_MODEL) {
        if (a->provider == NULL || fg_provider_from_name(a->provider) < 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: no known provider");
        }
        if (a->model != NULL && !fg_call_ctoken(a->model)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: model is not 1..%d "
                                "printable bytes", FG_MODEL_MAX);
        }

        rc = fg_call_set(in, "kind", json_string("model"));
        rc |= fg_call_set(in, "provider", json_string(a->provider));
        rc |= fg_call_set(in, "model", fg_call_string_or_null(a->model));
        rc |= fg_call_set(in, "tool", json_null());
        rc |= fg_call_set(in, "action", json_null());
        rc |= fg_call_set(in, "risk", json_null());

    } else if (a->kind == FG_CALL_TOOL) {
        if (a->tool == NULL
            || !fg_call_tool_id_valid(a->tool,
                                      strnlen(a->tool,
                                              FG_CALL_TOOL_ID_MAX + 1)))
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: tool is not a tool id");
        }
        if (!fg_call_one_of(a->action, fg_call_actions)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: action is not read or "
                                "write");
        }
        if (a->risk != NULL && !fg_call_one_of(a->risk, fg_call_risks)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "decision input: risk is not low, medium or "
                                "high");
        }

        rc = fg_call_set(in, "kind", json_string("tool"));
        rc |= fg_call_set(in, "provider", json_null());
        rc |= fg_call_set(in, "model", json_null());
        rc |= fg_call_set(in, "tool", json_string(a->tool));
        rc |= fg_call_set(in, "action", json_string(a->action));
        rc |= fg_call_set(in, "risk", fg_call_string_or_null(a->risk));

    } else {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "decision input: unknown call kind");
    }

    if (rc != FG_OK) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    return FG_OK;
}


json_t *
fg_call_decision_input(const fg_call_input_args_t *a, fg_error_t *err)
{
    json_t  *in, *labels, *counters;
    int      rc;

    if (a == NULL) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "decision input: a required argument is missing");
        return NULL;
    }

    rc = fg_call_target_check(a->method, a->method_len, a->host, a->host_len,
                              a->path, a->path_len, err);
    if (rc != FG_OK) {
        return NULL;
    }

    if ((a->labels != NULL && !json_is_object(a->labels))
        || (a->counters != NULL && !json_is_object(a->counters))
        || (a->approval != NULL && !json_is_object(a->approval)))
    {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "decision input: labels, counters or approval is not "
                     "an object");
        return NULL;
    }

    labels = fg_call_object_or_empty(a->labels);
    counters = fg_call_object_or_empty(a->counters);
    in = json_object();
    if (in == NULL || labels == NULL || counters == NULL) {
        json_decref(in);
        json_decref(labels);
        json_decref(counters);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    /* the schema's order, which only the eye cares about */
    rc = fg_input_kind(in, a, err);
    if (rc == FG_OK) {
        rc = fg_input_auth(in, a->auth, err);
    }
    if (rc == FG_OK) {
        rc = fg_call_set(in, "method",
                         json_stringn(a->method, a->method_len));
        rc |= fg_call_set(in, "host", json_stringn(a->host, a->host_len));
        rc |= fg_call_set(in, "path", json_stringn(a->path, a->path_len));
        rc |= fg_call_set(in, "request",
                          fg_call_blobref_or_null(a->request));
        if (rc != FG_OK) {
            rc = fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                              "out of memory");
        }
    }
    if (rc == FG_OK) {
        rc = fg_input_body(in, a, err);
    }
    if (rc == FG_OK) {
        rc = fg_call_set(in, "labels", labels);
        labels = NULL;
        rc |= fg_call_set(in, "approval",
                          a->kind == FG_CALL_TOOL && a->approval != NULL
                          ? json_deep_copy(a->approval) : json_null());
        rc |= fg_call_set(in, "counters", counters);
        counters = NULL;
        if (rc != FG_OK) {
            rc = fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                              "out of memory");
        }
    }

    json_decref(labels);
    json_decref(counters);

    if (rc != FG_OK) {
        json_decref(in);
        return NULL;
    }

    return in;
}


/* a count as the record holds it: 0..2^53-1 */
static json_int_t
fg_call_count(long long v)
{
    if (v < 0) {
        return 0;
    }

    return v > FG_USAGE_MAX ? (json_int_t) FG_USAGE_MAX : (json_int_t) v;
}


json_t *
fg_call_counters(const fg_throttle_t *t, size_t n,
    const long long *requests, const long long *tokens)
{
    json_t  *counters, *c;
    size_t   i;
    int      rc;

    counters = json_object();
    if (counters == NULL || (t == NULL && n > 0)) {
        json_decref(counters);
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if (t[i].rule_id == NULL) {
            continue;
        }

        c = json_object();
        if (c == NULL || json_object_set_new(counters, t[i].rule_id, c) != 0)
        {
            json_decref(counters);
            return NULL;
        }

        rc = fg_call_set(c, "requests",
                         t[i].requests < 0 ? json_null()
                         : json_integer(fg_call_count(
                               requests != NULL ? requests[i] : 0)));
        rc |= fg_call_set(c, "tokens",
                          t[i].tokens < 0 ? json_null()
                          : json_integer(fg_call_count(
                                tokens != NULL ? tokens[i] : 0)));
        rc |= fg_call_set(c, "window_seconds",
                          json_integer(t[i].window_seconds));
        if (rc != FG_OK) {
            json_decref(counters);
            return NULL;
        }
    }

    return counters;
}


/* ======================================================== call records */

static int
fg_call_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


/*
 * redactions_applied: checked, sorted, duplicates dropped, into
 * set[0..*count).
 */
static int
fg_call_redactions(const char *const *r, size_t n,
    const char *set[FG_CALL_REDACTIONS_MAX], size_t *count, fg_error_t *err)
{
    size_t  i, k;

    *count = 0;

    if (r == NULL && n > 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: redactions missing");
    }

    for (i = 0; i < n; i++) {
        if (!fg_call_redaction_valid(r[i])) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "call record: redaction %zu is not "
                                "^[a-z0-9][a-z0-9_.:-]{0,127}$", i);
        }
        for (k = 0; k < *count && strcmp(set[k], r[i]) != 0; k++) {
            /* void */
        }
        if (k < *count) {
            continue;
        }
        if (*count == FG_CALL_REDACTIONS_MAX) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "call record: more than %d distinct "
                                "redactions", FG_CALL_REDACTIONS_MAX);
        }
        set[(*count)++] = r[i];
    }

    qsort(set, *count, sizeof(set[0]), fg_call_cmp_str);

    return FG_OK;
}


/* an optional sha256 argument: NULL is null, anything else must be one */
static int
fg_call_opt_sha256(const char *field, const char *hex, fg_error_t *err)
{
    if (hex != NULL
        && !fg_sha256_hex_valid(hex, strnlen(hex, FG_SHA256_HEX_LEN + 1)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: %s is not 64 lowercase hex digits",
                            field);
    }

    return FG_OK;
}


/* What every call record is given, checked as its schema says. */
static int
fg_call_check_common(const fg_call_record_args_t *a, fg_error_t *err)
{
    char  t[FG_TIME_MAX];

    if (a == NULL || a->tenant_id == NULL || a->execution_id == NULL
        || a->trace == NULL || a->policy_decision_sha256 == NULL
        || (a->kind != FG_CALL_MODEL && a->kind != FG_CALL_TOOL))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: a required argument is missing");
    }

    if (!fg_tenant_id_valid(a->tenant_id,
                            strnlen(a->tenant_id, FG_TENANT_ID_MAX + 1))
        || !fg_call_ctoken(a->execution_id)
        || !fg_sha256_hex_valid(a->policy_decision_sha256,
                                strnlen(a->policy_decision_sha256,
                                        FG_SHA256_HEX_LEN + 1)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: tenant_id, execution_id or "
                            "policy_decision_sha256 is not valid");
    }

    if (!fg_call_one_of(a->outcome, fg_call_outcomes)
        || (a->status != 0 && (a->status < 100 || a->status > 599)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: outcome or status is not valid");
    }

    if (a->permissions_checked != NULL
        && !json_is_array(a->permissions_checked))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: permissions_checked is not an "
                            "array");
    }
    if (a->cost != NULL && !json_is_object(a->cost)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: cost is not an object");
    }
    if (a->labels != NULL && !json_is_object(a->labels)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: labels is not an object");
    }

    if (fg_time_format(a->started_sec, a->started_nsec, t) != FG_OK
        || fg_time_format(a->finished_sec, a->finished_nsec, t) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: started_at or finished_at is not "
                            "a valid time");
    }

    return FG_OK;
}


static int
fg_call_check_model(const fg_call_record_args_t *a, fg_error_t *err)
{
    if (fg_provider_name(a->provider) == NULL
        || fg_endpoint_name(a->endpoint) == NULL)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: unknown provider or endpoint");
    }

    if (a->model != NULL && !fg_call_ctoken(a->model)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: model is not 1..%d printable "
                            "bytes", FG_MODEL_MAX);
    }

    return FG_OK;
}


static int
fg_call_check_tool(const fg_call_record_args_t *a, fg_error_t *err)
{
    int  rc;

    if (a->tool == NULL
        || !fg_call_tool_id_valid(a->tool,
                                  strnlen(a->tool, FG_CALL_TOOL_ID_MAX + 1)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: tool is not a tool id");
    }
    if (!fg_call_one_of(a->action, fg_call_actions)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: action is not read or write");
    }
    if (a->risk != NULL && !fg_call_one_of(a->risk, fg_call_risks)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: risk is not low, medium or high");
    }
    if (a->idempotency_key != NULL && !fg_call_ctoken(a->idempotency_key)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "call record: idempotency key is not 1..%d "
                            "printable bytes", FG_CALL_TOKEN_MAX);
    }

    rc = fg_call_target_check(a->method, a->method_len, a->host, a->host_len,
                              a->path, a->path_len, err);
    if (rc != FG_OK) {
        return rc;
    }

    rc = fg_call_opt_sha256("query_sha256", a->query_sha256, err);
    if (rc == FG_OK) {
        rc = fg_call_opt_sha256("input_schema_sha256",
                                a->input_schema_sha256, err);
    }
    return rc;
}


static void
fg_call_write_blobref(fg_rw_t *w, const fg_blobref_t *ref)
{
    char  hex[FG_SHA256_HEX_LEN + 1];

    if (ref == NULL) {
        fg_rw_null(w);
        return;
    }

    fg_hex_sha256(ref->sha256, hex);

    fg_rw_object(w);
    fg_rw_key(w, "content_type");
    fg_rw_string(w, ref->content_type);
    fg_rw_key(w, "sha256");
    fg_rw_string(w, hex);
    fg_rw_key(w, "size_bytes");
    fg_rw_int(w, (int64_t) ref->size_bytes);
    fg_rw_close(w);
}


static void
fg_call_write_count(fg_rw_t *w, const char *key, int64_t v)
{
    fg_rw_key(w, key);
    if (v < 0 || v > FG_USAGE_MAX) {
        fg_rw_null(w);
    } else {
        fg_rw_int(w, v);
    }
}


static void
fg_call_write_status(fg_rw_t *w, const fg_call_record_args_t *a)
{
    fg_rw_key(w, "status");
    if (a->status) {
        fg_rw_int(w, a->status);
    } else {
        fg_rw_null(w);
    }
}


/* cost, after canon_version in both kinds (and action in a tool's) */
static void
fg_call_write_cost(fg_rw_t *w, const fg_call_record_args_t *a)
{
    fg_rw_key(w, "cost");
    fg_rw_json_or(w, a->cost, FG_RW_NULL);
}


/* execution_id .. finished_at, in both kinds */
static void
fg_call_write_head(fg_rw_t *w, const fg_call_record_args_t *a)
{
    fg_rw_key(w, "execution_id");
    fg_rw_string(w, a->execution_id);
    fg_rw_key(w, "finished_at");
    fg_rw_time(w, a->finished_sec, a->finished_nsec);
}


static void
fg_call_write_labels(fg_rw_t *w, const fg_call_record_args_t *a)
{
    fg_rw_key(w, "labels");
    fg_rw_json_or(w, a->labels, FG_RW_EMPTY_OBJECT);
}


/* permissions_checked, policy_decision_sha256 */
static void
fg_call_write_checks(fg_rw_t *w, const fg_call_record_args_t *a)
{
    fg_rw_key(w, "permissions_checked");
    fg_rw_json_or(w, a->permissions_checked, FG_RW_EMPTY_ARRAY);
    fg_rw_key(w, "policy_decision_sha256");
    fg_rw_string(w, a->policy_decision_sha256);
}


static void
fg_call_write_redactions(fg_rw_t *w, const char *const *set, size_t n)
{
    size_t  i;

    fg_rw_key(w, "redactions_applied");
    fg_rw_array(w);
    for (i = 0; i < n; i++) {
        fg_rw_string(w, set[i]);
    }
    fg_rw_close(w);
}


static void
fg_call_write_model(fg_rw_t *w, const fg_call_record_args_t *a,
    const char *const *red, size_t nred)
{
    const fg_usage_t  *u;
    const char        *rid, *rmodel;
    fg_usage_t         none;

    fg_usage_init(&none);
    u = a->usage != NULL ? a->usage : &none;

    /* both come from the upstream: what is not a token is not recorded */
    rmodel = fg_call_ctoken(u->response_model) ? u->response_model : NULL;
    rid = fg_call_ctoken(a->upstream_request_id) ? a->upstream_request_id
                                                 : NULL;

    fg_rw_canon_version(w);
    fg_call_write_cost(w, a);
    fg_rw_key(w, "endpoint");
    fg_rw_string(w, fg_endpoint_name(a->endpoint));
    fg_call_write_head(w, a);
    fg_call_write_labels(w, a);
    fg_rw_key(w, "model");
    fg_rw_string_or_null(w, a->model);
    fg_rw_key(w, "outcome");
    fg_rw_string(w, a->outcome);
    fg_call_write_checks(w, a);
    fg_rw_key(w, "provider");
    fg_rw_string(w, fg_provider_name(a->provider));
    fg_rw_record_type(w, FG_RECORD_MODEL_CALL);
    fg_call_write_redactions(w, red, nred);
    fg_rw_key(w, "request");
    fg_call_write_blobref(w, a->request);
    fg_rw_key(w, "response");
    fg_call_write_blobref(w, a->response);
    fg_rw_key(w, "response_model");
    fg_rw_string_or_null(w, rmodel);
    fg_rw_spec_version(w);
    fg_rw_key(w, "started_at");
    fg_rw_time(w, a->started_sec, a->started_nsec);
    fg_call_write_status(w, a);
    fg_rw_key(w, "stream");
    fg_rw_bool(w, a->stream);
    fg_rw_key(w, "tenant_id");
    fg_rw_string(w, a->tenant_id);
    fg_rw_trace(w, a->trace);
    fg_rw_key(w, "upstream_request_id");
    fg_rw_string_or_null(w, rid);
    fg_rw_key(w, "usage");
    fg_rw_object(w);
    fg_call_write_count(w, "input_tokens", u->input_tokens);
    fg_call_write_count(w, "output_tokens", u->output_tokens);
    fg_call_write_count(w, "total_tokens", u->total_tokens);
    fg_rw_close(w);
}


static void
fg_call_write_tool(fg_rw_t *w, const fg_call_record_args_t *a,
    const char *const *red, size_t nred)
{
    fg_rw_key(w, "action");
    fg_rw_string(w, a->action);
    fg_rw_canon_version(w);
    fg_call_write_cost(w, a);
    fg_call_write_head(w, a);
    fg_rw_key(w, "host");
    fg_rw_stringn(w, a->host, a->host_len);
    fg_rw_key(w, "idempotency_key");
    fg_rw_string_or_null(w, a->idempotency_key);
    fg_rw_key(w, "input_schema_sha256");
    fg_rw_string_or_null(w, a->input_schema_sha256);
    fg_call_write_labels(w, a);
    fg_rw_key(w, "method");
    fg_rw_stringn(w, a->method, a->method_len);
    fg_rw_key(w, "outcome");
    fg_rw_string(w, a->outcome);
    fg_rw_key(w, "path");
    fg_rw_stringn(w, a->path, a->path_len);
    fg_call_write_checks(w, a);
    fg_rw_key(w, "query_sha256");
    fg_rw_string_or_null(w, a->query_sha256);
    fg_rw_record_type(w, FG_RECORD_TOOL_CALL);
    fg_call_write_redactions(w, red, nred);
    fg_rw_key(w, "request");
    fg_call_write_blobref(w, a->request);
    fg_rw_key(w, "response");
    fg_call_write_blobref(w, a->response);
    fg_rw_key(w, "risk");
    fg_rw_string_or_null(w, a->risk);
    fg_rw_spec_version(w);
    fg_rw_key(w, "started_at");
    fg_rw_time(w, a->started_sec, a->started_nsec);
    fg_call_write_status(w, a);
    fg_rw_key(w, "tenant_id");
    fg_rw_string(w, a->tenant_id);
    fg_rw_key(w, "tool");
    fg_rw_string(w, a->tool);
    fg_rw_trace(w, a->trace);
}


int
fg_call_record_write(const fg_call_record_args_t *a, fg_sink_t *out,
    fg_error_t *err)
{
    int          rc;
    size_t       nred;
    fg_rw_t      w;
    const char  *red[FG_CALL_REDACTIONS_MAX];

    rc = fg_call_check_common(a, err);
    if (rc == FG_OK) {
        rc = a->kind == FG_CALL_MODEL ? fg_call_check_model(a, err)
                                      : fg_call_check_tool(a, err);
    }
    if (rc == FG_OK) {
        rc = fg_call_redactions(a->redactions, a->nredactions, red, &nred,
                                err);
    }
    if (rc != FG_OK) {
        return rc;
    }

    /* the members in canonical order */
    fg_rw_init(&w, out, err);
    fg_rw_object(&w);

    if (a->kind == FG_CALL_MODEL) {
        fg_call_write_model(&w, a, red, nred);
    } else {
        fg_call_write_tool(&w, a, red, nred);
    }

    fg_rw_close(&w);

    return fg_rw_finish(&w);
}


json_t *
fg_call_record(const fg_call_record_args_t *a, fg_error_t *err)
{
    fg_rw_buffer_t  b;

    return fg_rw_buffer_json(&b, fg_call_record_write(a, fg_rw_buffer_open(&b),
                                                      err), err);
}


/* ================================================================ cost */

/*
 * The price name of entry (a number >= 0): 1 with *price, 0 when absent
 * (*price 0), -1 when malformed.
 */
static int
fg_call_price(const json_t *entry, const char *name, double *price)
{
    const json_t  *v;

    *price = 0;
    v = json_object_get(entry, name);
    if (v == NULL) {
        return 0;
    }

    if (!json_is_number(v)) {
        return -1;
    }

    *price = json_number_value(v);

    return isfinite(*price) && *price >= 0 ? 1 : -1;
}


/* the count times its price (0 for an unknown count) */
static double
fg_call_term(int64_t count, double price)
{
    return count > 0 && count <= FG_USAGE_MAX ? (double) count * price : 0;
}


json_t *
fg_call_cost(const json_t *prices, const char *revision,
    const char *model, const fg_usage_t *u)
{
    const json_t  *models, *entry;
    const char    *currency, *unit;
    double         pin, pout, pread, pcreate, sum;
    char           source[FG_CALL_SOURCE_MAX + 2];
    int            n;

    if (!json_is_object(prices) || revision == NULL || u == NULL
        || ((u->input_tokens < 0 || u->input_tokens > FG_USAGE_MAX)
            && (u->output_tokens < 0 || u->output_tokens > FG_USAGE_MAX)))
    {
        return NULL;
    }

    currency = json_string_value(json_object_get(prices, "currency"));
    unit = json_string_value(json_object_get(prices, "unit"));
    models = json_object_get(prices, "models");

    if (currency == NULL || strlen(currency) != 3
        || currency[0] < 'A' || currency[0] > 'Z'
        || currency[1] < 'A' || currency[1] > 'Z'
        || currency[2] < 'A' || currency[2] > 'Z'
        || unit == NULL || strcmp(unit, "per_million_tokens") != 0
        || !json_is_object(models))
    {
        return NULL;
    }

    entry = NULL;
    if (u->response_model[0] != '\0') {
        entry = json_object_get(models, u->response_model);
    }
    if (entry == NULL && model != NULL) {
        entry = json_object_get(models, model);
    }

    if (!json_is_object(entry)
        || fg_call_price(entry, "input", &pin) != 1
        || fg_call_price(entry, "output", &pout) != 1
        || fg_call_price(entry, "cache_read", &pread) < 0
        || fg_call_price(entry, "cache_creation", &pcreate) < 0)
    {
        return NULL;
    }

    /* prices per million tokens: one token at 1.0 is one micro-unit */
    sum = fg_call_term(u->input_tokens, pin)
          + fg_call_term(u->output_tokens, pout)
          + fg_call_term(u->cache_read_input_tokens, pread)
          + fg_call_term(u->cache_creation_input_tokens, pcreate);
    sum = floor(sum + 0.5);

    if (!isfinite(sum) || sum < 0 || sum > (double) FG_USAGE_MAX) {
        return NULL;
    }

    n = snprintf(source, sizeof(source), "bundle:%s/prices.json", revision);
    if (n < 0 || (size_t) n > FG_CALL_SOURCE_MAX
        || !fg_call_token_valid(source, (size_t) n))
    {
        return NULL;
    }

    return json_pack("{s:s, s:I, s:s}", "currency", currency,
                     "amount_micros", (json_int_t) sum,
                     "price_source", source);
}


/* ======================================================== error bodies */

/*
 * s as a JSON string of at most max bytes: cut at a character boundary,
 * every byte that is not part of valid UTF-8 written as '?', so no
 * message a caller passes can make the body fail.
 */
static json_t *
fg_call_clean_string(const char *s, size_t max)
{
    const unsigned char  *p = (const unsigned char *) s;
    fg_utf8_error_t       why;
    json_t               *v;
    size_t                n, i, o, k, at;
    char                 *buf;

    n = strnlen(s, max + 1);
    if (n > max) {
        n = max;
    }

    buf = malloc(n + 1);
    if (buf == NULL) {
        return NULL;
    }

    for (i = 0, o = 0; i < n; /* void */ ) {
        if (p[i] < 0x80) {
            buf[o++] = (char) p[i++];
            continue;
        }
        k = fg_utf8_sequence(p + i, n - i, NULL, &why, &at);
        if (k == 0) {
            buf[o++] = '?';
            i++;
            continue;
        }
        memcpy(buf + o, p + i, k);
        o += k;
        i += k;
    }

    v = json_stringn(buf, o);
    free(buf);

    return v;
}


int
fg_call_error_body(const char *code, const char *message,
    const char *execution_id, const char *decision_hash,
    const json_t *approval, fg_buffer_t *out)
{
    json_t  *body, *e;
    char    *text;
    size_t   len;
    int      rc;

    if (code == NULL || message == NULL || out == NULL) {
        return FG_ERR_INVALID;
    }

    if (execution_id != NULL && !fg_call_ctoken(execution_id)) {
        execution_id = NULL;
    }
    if (decision_hash != NULL
        && !fg_sha256_hex_valid(decision_hash,
                                strnlen(decision_hash,
                                        FG_SHA256_HEX_LEN + 1)))
    {
        decision_hash = NULL;
    }

    body = json_object();
    e = json_object();
    if (body == NULL || e == NULL
        || json_object_set_new(body, "error", e) != 0)
    {
        json_decref(body);
        return FG_ERR_NOMEM;
    }

    rc = fg_call_set(e, "type", json_string("foxgov_error"));
    rc |= fg_call_set(e, "code", fg_call_clean_string(code,
                                                      FG_CALL_CODE_MAX));
    rc |= fg_call_set(e, "message",
                      fg_call_clean_string(message, FG_CALL_MESSAGE_MAX));
    rc |= fg_call_set(e, "param", json_null());
    rc |= fg_call_set(e, "execution_id",
                      fg_call_string_or_null(execution_id));
    rc |= fg_call_set(e, "decision_hash",
                      fg_call_string_or_null(decision_hash));
    if (approval != NULL) {
        rc |= fg_call_set(e, "approval", json_deep_copy(approval));
    }

    text = rc == FG_OK ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)
                       : NULL;
    json_decref(body);
    if (text == NULL) {
        return FG_ERR_NOMEM;
    }

    len = strlen(text);
    rc = fg_buffer_append(out, text, len);
    fg_json_free(text);
    if (rc != FG_OK) {
        return rc;
    }

    rc = fg_buffer_append(out, "\n", 1);
    if (rc != FG_OK) {
        out->len -= len;            /* all or nothing */
        out->data[out->len] = '\0';
        return rc;
    }

    return FG_OK;
}


json_t *
fg_call_approval_request(const char *approval_request_id,
    const char *tenant_id, const char *tool, const char *action,
    const char *input_sha256, time_t expires)
{
    char  at[FG_TIME_MAX];

    if (approval_request_id == NULL || tenant_id == NULL || tool == NULL
        || action == NULL || input_sha256 == NULL
        || fg_time_format(expires, 0, at) != FG_OK)
    {
        return NULL;
    }

    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
                     "approval_request_id", approval_request_id,
                     "tenant_id", tenant_id,
                     "tool", tool,
                     "action", action,
                     "input_sha256", input_sha256,
                     "expires_at", at);
}

/*
 * fg_schema.c -- compiling JSON Schema documents into a tree of checks and
 * validating jansson values against it.
 *
 * Compile: each document is parsed when added and compiled when the set is
 * compiled.  Every subschema becomes one fg_schema_t; all of them are kept
 * on one list of the set, so freeing never recurses.  Strings and values a
 * schema refers to (property names, enum values, pattern sources) point
 * into the parsed documents, which live as long as the set.  Once every
 * document is compiled the $refs are resolved by walking the compiled
 * trees, and the chains of $refs are checked for cycles.
 *
 * Validate: a walk over the instance guided by the schema, carrying the
 * instance's JSON pointer in a fixed buffer.  The compiled set is never
 * written; the only per-call state (pointer, report, PCRE2 match data
 * allocated from a small arena on the stack) lives in fg_vctx_t.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fg_schema.h"
#include "fg_utf8.h"


/* PCRE2 bounds for one match: backtracking steps, depth, heap KiB */
#define FG_SCHEMA_MATCH_LIMIT   1000000
#define FG_SCHEMA_DEPTH_LIMIT   100000
#define FG_SCHEMA_HEAP_LIMIT    8192

/* uniqueItems: pairwise up to this many items, else hashed */
#define FG_SCHEMA_UNIQUE_SMALL  32
/* uniqueItems: value comparisons allowed in one validation */
#define FG_SCHEMA_UNIQUE_WORK   (1UL << 20)

/* longest number fg_num_format() writes, with its NUL */
#define FG_NUM_MAX              32

/* bytes of the stack arena PCRE2's contexts are allocated from */
#define FG_SCHEMA_ARENA         512

/* room in a pointer buffer, keeping 3 bytes for an ellipsis and the NUL */
#define FG_PTR_ROOM             (FG_SCHEMA_PTR_MAX - 4)

#define FG_ELLIPSIS             "\xe2\x80\xa6"

enum {
    FG_SK_SCHEMA = 0,
    FG_SK_TRUE,
    FG_SK_FALSE
};

/* type names, in the order of their bits */
enum {
    FG_ST_OBJECT = 0,
    FG_ST_ARRAY,
    FG_ST_STRING,
    FG_ST_NUMBER,
    FG_ST_INTEGER,
    FG_ST_BOOLEAN,
    FG_ST_NULL,
    FG_ST_COUNT
};

static const char *const  fg_schema_type_names[FG_ST_COUNT] = {
    "object", "array", "string", "number", "integer", "boolean", "null"
};

/* which of the optional counted keywords a schema has */
#define FG_SH_MIN_LENGTH   0x01
#define FG_SH_MAX_LENGTH   0x02
#define FG_SH_MIN_ITEMS    0x04
#define FG_SH_MAX_ITEMS    0x08
#define FG_SH_MAX_PROPS    0x10
#define FG_SH_UNIQUE       0x20

/* a name and its schema: properties and $defs, sorted by name */
typedef struct {
    const char   *name;
    size_t        len;
    fg_schema_t  *schema;
} fg_schema_member_t;

struct fg_schema_s {
    fg_schema_t          *next;         /* every node of the set */
    unsigned              kind;
    unsigned              doc;          /* index of its document */
    unsigned              has;          /* FG_SH_* */
    unsigned              mark;         /* ref cycle check, compile only */

    unsigned              type_mask;    /* 0: any type */
    unsigned              ntypes;
    unsigned char         types[FG_ST_COUNT];   /* in schema order */

    const fg_schema_t    *ref;
    const char           *ref_text;
    char                 *ref_at;       /* "<doc>#<pointer>" of the $ref */

    fg_schema_member_t   *props;
    size_t                nprops;
    fg_schema_member_t   *defs;
    size_t                ndefs;
    const json_t         *required;     /* array of strings */
    const fg_schema_t    *additional;
    const fg_schema_t    *names;
    const fg_schema_t    *items;

    const json_t         *enum_values;
    const json_t         *const_value;
    const json_t         *minimum;
    const json_t         *maximum;

    pcre2_code           *pattern;
    const char           *pattern_text;

    size_t                min_length;
    size_t                max_length;
    size_t                min_items;
    size_t                max_items;
    size_t                max_props;
};

typedef struct {
    char         *name;
    json_t       *json;
    fg_schema_t  *root;
} fg_schema_doc_t;

struct fg_schema_set_s {
    fg_schema_doc_t  *docs;
    size_t            ndocs;
    size_t            cap_docs;
    fg_schema_t      *nodes;
    size_t            nnodes;
    int               state;        /* 0 open, 1 compiled, -1 failed */
};

/* a JSON pointer being built, truncated with an ellipsis if too long */
typedef struct {
    size_t  len;
    int     full;
    char    buf[FG_SCHEMA_PTR_MAX];
} fg_ptr_t;

typedef struct {
    size_t  len;
    int     full;
} fg_ptr_mark_t;

/* compile state */
typedef struct {
    fg_schema_set_t  *set;
    unsigned          doc;
    fg_ptr_t          ptr;
    fg_error_t       *err;
} fg_cctx_t;

/* a bump allocator for PCRE2's per-call contexts, falling back to malloc */
typedef struct {
    size_t  used;
    union {
        long double    ld;
        long long      ll;
        void          *p;
        unsigned char  b[FG_SCHEMA_ARENA];
    } u;
} fg_arena_t;

/* validation state */
typedef struct {
    fg_schema_report_t     *report;
    unsigned                errors;
    unsigned long           work;
    fg_ptr_t                ptr;
    fg_arena_t              arena;
    pcre2_general_context  *gctx;
    pcre2_match_context    *mctx;
    pcre2_match_data       *mdata;
} fg_vctx_t;


/* ----------------------------------------------------- text and pointers */

/* Drop an incomplete UTF-8 sequence from the end of s[0..len). */
static size_t
fg_utf8_trim(char *s, size_t len)
{
    size_t          k, lead, want;
    unsigned char   c;

    k = 0;
    while (k < 3 && k < len && ((unsigned char) s[len - 1 - k] & 0xc0) == 0x80)
    {
        k++;
    }

    if (k == len) {
        s[len] = '\0';
        return len;
    }

    lead = len - 1 - k;
    c = (unsigned char) s[lead];
    want = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

    if (k + 1 < want) {
        len = lead;
    }

    s[len] = '\0';
    return len;
}


static void
fg_ptr_init(fg_ptr_t *p)
{
    p->len = 0;
    p->full = 0;
    p->buf[0] = '\0';
}


/*
 * Append s[0..n).  When it does not fit, as much as fits (if split is
 * allowed, cut at a character boundary) and an ellipsis end the pointer;
 * returns -1 then.
 */
static int
fg_ptr_put(fg_ptr_t *p, const char *s, size_t n, int split)
{
    size_t  room;

    room = FG_PTR_ROOM - p->len;

    if (n <= room) {
        memcpy(p->buf + p->len, s, n);
        p->len += n;
        p->buf[p->len] = '\0';
        return 0;
    }

    if (split) {
        memcpy(p->buf + p->len, s, room);
        p->len = fg_utf8_trim(p->buf, p->len + room);
    }

    memcpy(p->buf + p->len, FG_ELLIPSIS, sizeof(FG_ELLIPSIS));
    p->len += sizeof(FG_ELLIPSIS) - 1;
    p->full = 1;

    return -1;
}


/* Append "/" and seg escaped per RFC 6901; returns how to undo it. */
static fg_ptr_mark_t
fg_ptr_push(fg_ptr_t *p, const char *seg, size_t n)
{
    fg_ptr_mark_t  mark;
    size_t         i, run;

    mark.len = p->len;
    mark.full = p->full;

    if (p->full || fg_ptr_put(p, "/", 1, 0) != 0) {
        return mark;
    }

    for (i = 0; i < n; i += run) {
        run = 0;
        while (i + run < n && seg[i + run] != '~' && seg[i + run] != '/') {
            run++;
        }

        if (run > 0) {
            if (fg_ptr_put(p, seg + i, run, 1) != 0) {
                return mark;
            }
            continue;
        }

        if (fg_ptr_put(p, seg[i] == '~' ? "~0" : "~1", 2, 0) != 0) {
            return mark;
        }
        run = 1;
    }

    return mark;
}


static fg_ptr_mark_t
fg_ptr_push_index(fg_ptr_t *p, size_t i)
{
    char  tmp[24];
    int   n;

    n = snprintf(tmp, sizeof(tmp), "%zu", i);

    return fg_ptr_push(p, tmp, (size_t) n);
}


static void
fg_ptr_pop(fg_ptr_t *p, fg_ptr_mark_t mark)
{
    p->len = mark.len;
    p->full = mark.full;
    p->buf[p->len] = '\0';
}


/* ------------------------------------------------------------ JSON values */

static int
fg_real_is_integral(double d)
{
    double  a = d < 0 ? -d : d;

    /* every double of magnitude 2^52 or more is an integer */
    if (a >= 4503599627370496.0) {
        return 1;
    }

    return (double) (long long) d == d;
}


/* Compare an integer with a real exactly: -1, 0 or 1. */
static int
fg_cmp_int_real(json_int_t i, double d)
{
    json_int_t  t;
    double      frac;

    if (d >= 9223372036854775808.0) {
        return -1;
    }

    if (d < -9223372036854775808.0) {
        return 1;
    }

    t = (json_int_t) d;
    if (i != t) {
        return i < t ? -1 : 1;
    }

    frac = d - (double) t;

    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}


/* Compare two jansson numbers by value: -1, 0 or 1. */
static int
fg_num_cmp(const json_t *a, const json_t *b)
{
    json_int_t  ia, ib;
    double      da, db;

    if (json_is_integer(a) && json_is_integer(b)) {
        ia = json_integer_value(a);
        ib = json_integer_value(b);
        return ia < ib ? -1 : ia > ib;
    }

    if (json_is_integer(a)) {
        return fg_cmp_int_real(json_integer_value(a), json_real_value(b));
    }

    if (json_is_integer(b)) {
        return -fg_cmp_int_real(json_integer_value(b), json_real_value(a));
    }

    da = json_real_value(a);
    db = json_real_value(b);

    return da < db ? -1 : da > db;
}


/* Write a number: integers as integers, reals in the shortest %.Ng form
 * (N from 15 to 17) that reads back to the same double. */
static void
fg_num_format(const json_t *v, char *buf, size_t size)
{
    double  d;
    int     prec;

    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }

    d = json_real_value(v);

    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            return;
        }
    }

    snprintf(buf, size, "%.17g", d);
}


/*
 * JSON equality where 1 equals 1.0.  depth is the level of a and b below
 * the instance root.  Returns 1 equal, 0 not, -1 nested too deep.
 */
static int
fg_json_eq(const json_t *a, const json_t *b, unsigned depth)
{
    const char  *key;
    size_t       i, n, klen;
    json_t      *bv;
    void        *it;
    int          rc;

    if (json_is_number(a) && json_is_number(b)) {
        return fg_num_cmp(a, b) == 0;
    }

    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }

    switch (json_typeof(a)) {

    case JSON_STRING:
        n = json_string_length(a);
        return n == json_string_length(b)
               && memcmp(json_string_value(a), json_string_value(b), n) == 0;

    case JSON_ARRAY:
        n = json_array_size(a);
        if (n != json_array_size(b)) {
            return 0;
        }
        if (n > 0 && depth >= FG_SCHEMA_MAX_INSTANCE_DEPTH) {
            return -1;
        }
        for (i = 0; i < n; i++) {
            rc = fg_json_eq(json_array_get(a, i), json_array_get(b, i),
                            depth + 1);
            if (rc != 1) {
                return rc;
            }
        }
        return 1;

    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        if (json_object_size(a) > 0 && depth >= FG_SCHEMA_MAX_INSTANCE_DEPTH)
        {
            return -1;
        }
        for (it = json_object_iter((json_t *) a); it != NULL;
             it = json_object_iter_next((json_t *) a, it))
        {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            bv = json_object_getn(b, key, klen);
            if (bv == NULL) {
                return 0;
            }
            rc = fg_json_eq(json_object_iter_value(it), bv, depth + 1);
            if (rc != 1) {
                return rc;
            }
        }
        return 1;

    default:
        /* true, false, null: same type is equal */
        return 1;
    }
}


static uint64_t
fg_hash_mix(uint64_t h)
{
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;

    return h;
}


static uint64_t
fg_hash_bytes(uint64_t h, const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= UINT64_C(0x100000001b3);
    }

    return h;
}


static uint64_t
fg_hash_double(double d)
{
    uint64_t  bits;

    if (d == 0) {
        d = 0.0;    /* -0.0 equals 0 */
    }

    memcpy(&bits, &d, sizeof(bits));

    return fg_hash_mix(bits ^ 0x3);
}


/*
 * A hash consistent with fg_json_eq (equal numbers hash alike, objects
 * hash independently of member order).  Returns 0, or -1 when nested too
 * deep.
 */
static int
fg_json_hash(const json_t *v, unsigned depth, uint64_t *out)
{
    uint64_t  h, sub, sum;
    size_t    i, n;
    void     *it;

    switch (json_typeof(v)) {

    case JSON_STRING:
        *out = fg_hash_mix(fg_hash_bytes(UINT64_C(0xcbf29ce484222325),
                           json_string_value(v), json_string_length(v)));
        return 0;

    case JSON_INTEGER:
        *out = fg_hash_double((double) json_integer_value(v));
        return 0;

    case JSON_REAL:
        *out = fg_hash_double(json_real_value(v));
        return 0;

    case JSON_ARRAY:
        n = json_array_size(v);
        if (n > 0 && depth >= FG_SCHEMA_MAX_INSTANCE_DEPTH) {
            return -1;
        }
        h = 0x5;
        for (i = 0; i < n; i++) {
            if (fg_json_hash(json_array_get(v, i), depth + 1, &sub) != 0) {
                return -1;
            }
            h = fg_hash_mix(h * 31 + sub);
        }
        *out = h;
        return 0;

    case JSON_OBJECT:
        if (json_object_size(v) > 0 && depth >= FG_SCHEMA_MAX_INSTANCE_DEPTH)
        {
            return -1;
        }
        sum = 0;
        for (it = json_object_iter((json_t *) v); it != NULL;
             it = json_object_iter_next((json_t *) v, it))
        {
            if (fg_json_hash(json_object_iter_value(it), depth + 1, &sub)
                != 0)
            {
                return -1;
            }
            h = fg_hash_bytes(UINT64_C(0xcbf29ce484222325),
                              json_object_iter_key(it),
                              json_object_iter_key_len(it));
            sum += fg_hash_mix(h ^ (sub * 0x9e3779b97f4a7c15ULL));
        }
        *out = fg_hash_mix(sum ^ 0x7);
        return 0;

    default:
        *out = fg_hash_mix((uint64_t) json_typeof(v) + 0x100);
        return 0;
    }
}


/* How deep v nests is at most max levels. */
static int
fg_json_depth_ok(const json_t *v, unsigned max)
{
    size_t  i, n;
    void   *it;

    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > 0 && max == 0) {
            return 0;
        }
        for (i = 0; i < n; i++) {
            if (!fg_json_depth_ok(json_array_get(v, i), max - 1)) {
                return 0;
            }
        }
        return 1;
    }

    if (json_is_object(v)) {
        if (json_object_size(v) > 0 && max == 0) {
            return 0;
        }
        for (it = json_object_iter((json_t *) v); it != NULL;
             it = json_object_iter_next((json_t *) v, it))
        {
            if (!fg_json_depth_ok(json_object_iter_value(it), max - 1)) {
                return 0;
            }
        }
    }

    return 1;
}


/* The type name an instance value reports. */
static const char *
fg_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:   return "object";
    case JSON_ARRAY:    return "array";
    case JSON_STRING:   return "string";
    case JSON_INTEGER:  return "integer";
    case JSON_REAL:     return "number";
    case JSON_TRUE:
    case JSON_FALSE:    return "boolean";
    default:            return "null";
    }
}


static int
fg_type_matches(unsigned mask, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return (mask & (1u << FG_ST_OBJECT)) != 0;
    case JSON_ARRAY:
        return (mask & (1u << FG_ST_ARRAY)) != 0;
    case JSON_STRING:
        return (mask & (1u << FG_ST_STRING)) != 0;
    case JSON_INTEGER:
        return (mask & (1u << FG_ST_NUMBER | 1u << FG_ST_INTEGER)) != 0;
    case JSON_REAL:
        if (mask & (1u << FG_ST_NUMBER)) {
            return 1;
        }
        return (mask & (1u << FG_ST_INTEGER))
               && fg_real_is_integral(json_real_value(v));
    case JSON_TRUE:
    case JSON_FALSE:
        return (mask & (1u << FG_ST_BOOLEAN)) != 0;
    default:
        return (mask & (1u << FG_ST_NULL)) != 0;
    }
}


/* ---------------------------------------------------------------- members */

static int
fg_member_cmp(const void *a, const void *b)
{
    const fg_schema_member_t  *x = a, *y = b;
    size_t                     n;
    int                        rc;

    n = x->len < y->len ? x->len : y->len;
    rc = memcmp(x->name, y->name, n);
    if (rc != 0) {
        return rc;
    }

    return x->len < y->len ? -1 : x->len > y->len;
}


static fg_schema_t *
fg_member_find(const fg_schema_member_t *m, size_t n, const char *name,
    size_t len)
{
    fg_schema_member_t   key;
    fg_schema_member_t  *found;

    if (n == 0) {
        return NULL;
    }

    key.name = name;
    key.len = len;
    key.schema = NULL;

    found = bsearch(&key, m, n, sizeof(fg_schema_member_t), fg_member_cmp);

    return found != NULL ? found->schema : NULL;
}


/* ------------------------------------------------------------------- sets */

fg_schema_set_t *
fg_schema_set_new(void)
{
    return calloc(1, sizeof(fg_schema_set_t));
}


void
fg_schema_set_free(fg_schema_set_t *set)
{
    fg_schema_t  *s, *next;
    size_t        i;

    if (set == NULL) {
        return;
    }

    for (s = set->nodes; s != NULL; s = next) {
        next = s->next;
        free(s->props);
        free(s->defs);
        free(s->ref_at);
        pcre2_code_free(s->pattern);
        free(s);
    }

    for (i = 0; i < set->ndocs; i++) {
        free(set->docs[i].name);
        json_decref(set->docs[i].json);
    }

    free(set->docs);
    free(set);
}


static fg_schema_doc_t *
fg_schema_doc_find(const fg_schema_set_t *set, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < set->ndocs; i++) {
        if (strlen(set->docs[i].name) == len
            && memcmp(set->docs[i].name, name, len) == 0)
        {
            return &set->docs[i];
        }
    }

    return NULL;
}


static int
fg_schema_set_check_name(fg_schema_set_t *set, const char *name,
    fg_error_t *err)
{
    size_t  len;

    len = strlen(name);

    if (len == 0 || len > FG_SCHEMA_MAX_NAME || strchr(name, '#') != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "schema name must be 1 to %d bytes without '#'",
                            FG_SCHEMA_MAX_NAME);
    }

    if (fg_schema_doc_find(set, name, len) != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: a schema of that name is already added",
                            name);
    }

    return FG_OK;
}


static int
fg_schema_parse(const char *name, const char *text, size_t len,
    json_t **out, fg_error_t *err)
{
    json_error_t  jerr;

    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                      &jerr);
    if (*out != NULL) {
        return FG_OK;
    }

    if (json_error_code(&jerr) == json_error_out_of_memory) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "%s: out of memory", name);
    }

    return fg_error_set(err, FG_ERR_SYNTAX, (size_t) jerr.position,
                        "%s: %s at line %d, column %d", name, jerr.text,
                        jerr.line, jerr.column);
}


int
fg_schema_set_add(fg_schema_set_t *set, const char *name, const char *text,
    size_t len, fg_error_t *err)
{
    fg_schema_doc_t  *docs, *doc;
    json_t           *json;
    size_t            cap;
    int               rc;

    if (set == NULL || name == NULL || (text == NULL && len > 0)) {
        return fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                            "fg_schema_set_add: NULL argument");
    }

    if (set->state != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: the schema set is already compiled", name);
    }

    rc = fg_schema_set_check_name(set, name, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (set->ndocs >= FG_SCHEMA_MAX_DOCS) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "%s: more than %d schema documents", name,
                            FG_SCHEMA_MAX_DOCS);
    }

    if (len > FG_SCHEMA_MAX_TEXT) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "%s: schema text is longer than %d bytes", name,
                            FG_SCHEMA_MAX_TEXT);
    }

    if (set->ndocs == set->cap_docs) {
        cap = set->cap_docs ? set->cap_docs * 2 : 4;
        docs = realloc(set->docs, cap * sizeof(fg_schema_doc_t));
        if (docs == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "%s: out of memory", name);
        }
        set->docs = docs;
        set->cap_docs = cap;
    }

    rc = fg_schema_parse(name, text != NULL ? text : "", len, &json, err);
    if (rc != FG_OK) {
        return rc;
    }

    doc = &set->docs[set->ndocs];
    doc->name = strdup(name);
    if (doc->name == NULL) {
        json_decref(json);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "%s: out of memory", name);
    }

    doc->json = json;
    doc->root = NULL;
    set->ndocs++;

    return FG_OK;
}


const fg_schema_t *
fg_schema_set_get(const fg_schema_set_t *set, const char *name)
{
    fg_schema_doc_t  *doc;

    if (set == NULL || name == NULL || set->state != 1) {
        return NULL;
    }

    doc = fg_schema_doc_find(set, name, strlen(name));

    return doc != NULL ? doc->root : NULL;
}


/* ---------------------------------------------------------------- compile */

static int fg_c_schema(fg_cctx_t *cc, json_t *j, unsigned depth,
    fg_schema_t **out);

typedef struct fg_keyword_s  fg_keyword_t;

typedef int (*fg_keyword_pt)(fg_cctx_t *cc, const fg_keyword_t *kw,
    fg_schema_t *s, json_t *v, unsigned depth);

struct fg_keyword_s {
    const char     *name;
    fg_keyword_pt   compile;
    unsigned        flag;       /* FG_SH_* for counted keywords */
    size_t          offset;     /* of the field the keyword sets */
};


/* Fail compiling: "<doc>#<pointer>: <reason>". */
static int
fg_c_fail(fg_cctx_t *cc, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int
fg_c_fail(fg_cctx_t *cc, int code, const char *fmt, ...)
{
    char     reason[FG_ERRMSG_MAX];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    return fg_error_set(cc->err, code, FG_NO_OFFSET, "%s#%s: %s",
                        cc->set->docs[cc->doc].name, cc->ptr.buf, reason);
}


static int
fg_c_string(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    (void) kw;
    (void) s;
    (void) depth;

    if (!json_is_string(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a string");
    }

    return FG_OK;
}


/* properties and $defs: an object of schemas, kept sorted by name */
static int
fg_c_members(fg_cctx_t *cc, json_t *v, unsigned depth,
    fg_schema_member_t **out, size_t *nout)
{
    fg_schema_member_t  *m;
    fg_ptr_mark_t        mark;
    size_t               n;
    void                *it;
    int                  rc;

    if (!json_is_object(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be an object of schemas");
    }

    n = json_object_size(v);
    if (n == 0) {
        return FG_OK;
    }

    m = calloc(n, sizeof(fg_schema_member_t));
    if (m == NULL) {
        return fg_c_fail(cc, FG_ERR_NOMEM, "out of memory");
    }

    *out = m;

    for (it = json_object_iter(v); it != NULL;
         it = json_object_iter_next(v, it))
    {
        m->name = json_object_iter_key(it);
        m->len = json_object_iter_key_len(it);

        mark = fg_ptr_push(&cc->ptr, m->name, m->len);
        rc = fg_c_schema(cc, json_object_iter_value(it), depth + 1,
                         &m->schema);
        fg_ptr_pop(&cc->ptr, mark);

        if (rc != FG_OK) {
            return rc;
        }

        m++;
        (*nout)++;
    }

    qsort(*out, *nout, sizeof(fg_schema_member_t), fg_member_cmp);

    return FG_OK;
}


static int
fg_c_properties(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    (void) kw;

    return fg_c_members(cc, v, depth, &s->props, &s->nprops);
}


static int
fg_c_defs(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    (void) kw;

    return fg_c_members(cc, v, depth, &s->defs, &s->ndefs);
}


/* items, additionalProperties, propertyNames: one schema at kw->offset */
static int
fg_c_subschema(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    fg_schema_t  *sub;
    int           rc;

    rc = fg_c_schema(cc, v, depth + 1, &sub);
    if (rc != FG_OK) {
        return rc;
    }

    *(const fg_schema_t **) ((char *) s + kw->offset) = sub;

    return FG_OK;
}


static int
fg_c_ref(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    const char  *doc;
    size_t       n;

    (void) kw;
    (void) depth;

    if (!json_is_string(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a string");
    }

    doc = cc->set->docs[cc->doc].name;
    n = strlen(doc) + cc->ptr.len + 2;

    s->ref_at = malloc(n);
    if (s->ref_at == NULL) {
        return fg_c_fail(cc, FG_ERR_NOMEM, "out of memory");
    }

    snprintf(s->ref_at, n, "%s#%s", doc, cc->ptr.buf);
    s->ref_text = json_string_value(v);

    return FG_OK;
}


static int
fg_c_type_name(fg_cctx_t *cc, fg_schema_t *s, json_t *v)
{
    const char  *name;
    unsigned     t;

    if (!json_is_string(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID,
                         "must be a type name or an array of them");
    }

    name = json_string_value(v);

    for (t = 0; t < FG_ST_COUNT; t++) {
        if (strcmp(name, fg_schema_type_names[t]) == 0) {
            break;
        }
    }

    if (t == FG_ST_COUNT) {
        return fg_c_fail(cc, FG_ERR_INVALID, "unknown type \"%s\"", name);
    }

    if (s->type_mask & (1u << t)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "type \"%s\" is listed twice",
                         name);
    }

    s->type_mask |= 1u << t;
    s->types[s->ntypes++] = (unsigned char) t;

    return FG_OK;
}


static int
fg_c_type(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    size_t  i;
    int     rc;

    (void) kw;
    (void) depth;

    if (!json_is_array(v)) {
        return fg_c_type_name(cc, s, v);
    }

    if (json_array_size(v) == 0) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must not be an empty array");
    }

    for (i = 0; i < json_array_size(v); i++) {
        rc = fg_c_type_name(cc, s, json_array_get(v, i));
        if (rc != FG_OK) {
            return rc;
        }
    }

    return FG_OK;
}


static int
fg_c_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


static int
fg_c_required(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    const char  **names;
    size_t        i, n;
    int           rc;

    (void) kw;
    (void) depth;

    if (!json_is_array(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be an array of strings");
    }

    n = json_array_size(v);
    if (n == 0) {
        return FG_OK;
    }

    names = malloc(n * sizeof(const char *));
    if (names == NULL) {
        return fg_c_fail(cc, FG_ERR_NOMEM, "out of memory");
    }

    rc = FG_OK;

    for (i = 0; i < n; i++) {
        if (!json_is_string(json_array_get(v, i))) {
            rc = fg_c_fail(cc, FG_ERR_INVALID, "must be an array of strings");
            goto done;
        }
        names[i] = json_string_value(json_array_get(v, i));
    }

    qsort(names, n, sizeof(const char *), fg_c_strcmp);

    for (i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            rc = fg_c_fail(cc, FG_ERR_INVALID,
                           "\"%s\" is listed twice", names[i]);
            goto done;
        }
    }

    s->required = v;

done:

    free(names);
    return rc;
}


static int
fg_c_enum(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    size_t  i;

    (void) kw;
    (void) depth;

    if (!json_is_array(v) || json_array_size(v) == 0) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a non-empty array");
    }

    for (i = 0; i < json_array_size(v); i++) {
        if (!fg_json_depth_ok(json_array_get(v, i), FG_SCHEMA_MAX_DEPTH)) {
            return fg_c_fail(cc, FG_ERR_LIMIT,
                             "value %zu nests deeper than %d levels", i,
                             FG_SCHEMA_MAX_DEPTH);
        }
    }

    s->enum_values = v;

    return FG_OK;
}


static int
fg_c_const(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    (void) kw;
    (void) depth;

    if (!fg_json_depth_ok(v, FG_SCHEMA_MAX_DEPTH)) {
        return fg_c_fail(cc, FG_ERR_LIMIT, "nests deeper than %d levels",
                         FG_SCHEMA_MAX_DEPTH);
    }

    s->const_value = v;

    return FG_OK;
}


static int
fg_c_pattern(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    PCRE2_UCHAR   msg[120];
    PCRE2_SIZE    erroff;
    const char   *p;
    size_t        len;
    int           code;

    (void) kw;
    (void) depth;

    if (!json_is_string(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a string");
    }

    p = json_string_value(v);
    len = json_string_length(v);

    if (len > FG_SCHEMA_MAX_PATTERN) {
        return fg_c_fail(cc, FG_ERR_LIMIT, "pattern is longer than %d bytes",
                         FG_SCHEMA_MAX_PATTERN);
    }

    /*
     * ECMA-262 flavour where PCRE2 differs by default: $ only at the very
     * end, \u escapes; \C could split a UTF-8 character, so never.
     */
    s->pattern = pcre2_compile((PCRE2_SPTR) p, len,
                               PCRE2_UTF | PCRE2_DOLLAR_ENDONLY
                               | PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C,
                               &code, &erroff, NULL);
    if (s->pattern == NULL) {
        if (code == PCRE2_ERROR_NOMEMORY) {
            return fg_c_fail(cc, FG_ERR_NOMEM, "out of memory");
        }
        pcre2_get_error_message(code, msg, sizeof(msg));
        return fg_c_fail(cc, FG_ERR_INVALID, "bad pattern: %s at offset %zu",
                         (const char *) msg, (size_t) erroff);
    }

    /* without JIT the interpreter is used */
    (void) pcre2_jit_compile(s->pattern, PCRE2_JIT_COMPLETE);

    s->pattern_text = p;

    return FG_OK;
}


/* minLength, maxLength, minItems, maxItems, maxProperties */
static int
fg_c_count(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    double  d;
    size_t  n;

    (void) depth;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            goto bad;
        }
        if (json_integer_value(v) > FG_SCHEMA_MAX_BOUND) {
            goto big;
        }
        n = (size_t) json_integer_value(v);

    } else if (json_is_real(v)) {
        d = json_real_value(v);
        if (d < 0 || !fg_real_is_integral(d)) {
            goto bad;
        }
        if (d > FG_SCHEMA_MAX_BOUND) {
            goto big;
        }
        n = (size_t) d;

    } else {
        goto bad;
    }

    *(size_t *) ((char *) s + kw->offset) = n;
    s->has |= kw->flag;

    return FG_OK;

bad:

    return fg_c_fail(cc, FG_ERR_INVALID, "must be a non-negative integer");

big:

    return fg_c_fail(cc, FG_ERR_LIMIT, "must be at most %d",
                     FG_SCHEMA_MAX_BOUND);
}


/* minimum, maximum: a number at kw->offset */
static int
fg_c_bound(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s, json_t *v,
    unsigned depth)
{
    (void) depth;

    if (!json_is_number(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a number");
    }

    *(const json_t **) ((char *) s + kw->offset) = v;

    return FG_OK;
}


static int
fg_c_unique(fg_cctx_t *cc, const fg_keyword_t *kw, fg_schema_t *s,
    json_t *v, unsigned depth)
{
    (void) kw;
    (void) depth;

    if (!json_is_boolean(v)) {
        return fg_c_fail(cc, FG_ERR_INVALID, "must be a boolean");
    }

    if (json_is_true(v)) {
        s->has |= FG_SH_UNIQUE;
    }

    return FG_OK;
}


#define FG_COUNT(name, flag, field) \
    { name, fg_c_count, flag, offsetof(fg_schema_t, field) }
#define FG_FIELD(name, compile, field) \
    { name, compile, 0, offsetof(fg_schema_t, field) }

static const fg_keyword_t  fg_keywords[] = {
    { "$schema",              fg_c_string,     0, 0 },
    { "$id",                  fg_c_string,     0, 0 },
    { "$comment",             fg_c_string,     0, 0 },
    { "title",                fg_c_string,     0, 0 },
    { "description",          fg_c_string,     0, 0 },
    { "$defs",                fg_c_defs,       0, 0 },
    { "$ref",                 fg_c_ref,        0, 0 },
    { "type",                 fg_c_type,       0, 0 },
    { "enum",                 fg_c_enum,       0, 0 },
    { "const",                fg_c_const,      0, 0 },
    { "properties",           fg_c_properties, 0, 0 },
    { "required",             fg_c_required,   0, 0 },
    FG_FIELD("additionalProperties", fg_c_subschema, additional),
    FG_FIELD("propertyNames", fg_c_subschema,  names),
    FG_FIELD("items",         fg_c_subschema,  items),
    { "pattern",              fg_c_pattern,    0, 0 },
    FG_FIELD("minimum",       fg_c_bound,      minimum),
    FG_FIELD("maximum",       fg_c_bound,      maximum),
    { "uniqueItems",          fg_c_unique,     0, 0 },
    FG_COUNT("minLength",     FG_SH_MIN_LENGTH, min_length),
    FG_COUNT("maxLength",     FG_SH_MAX_LENGTH, max_length),
    FG_COUNT("minItems",      FG_SH_MIN_ITEMS,  min_items),
    FG_COUNT("maxItems",      FG_SH_MAX_ITEMS,  max_items),
    FG_COUNT("maxProperties", FG_SH_MAX_PROPS,  max_props),
    { NULL, NULL, 0, 0 }
};


static const fg_keyword_t *
fg_keyword_find(const char *name, size_t len)
{
    const fg_keyword_t  *kw;

    for (kw = fg_keywords; kw->name != NULL; kw++) {
        if (strlen(kw->name) == len && memcmp(kw->name, name, len) == 0) {
            return kw;
        }
    }

    return NULL;
}


/* Bounds that contradict each other are an operator's mistake. */
static int
fg_c_check(fg_cctx_t *cc, const fg_schema_t *s)
{
    char      lo[FG_NUM_MAX], hi[FG_NUM_MAX];
    unsigned  both;

    both = FG_SH_MIN_LENGTH | FG_SH_MAX_LENGTH;
    if ((s->has & both) == both && s->min_length > s->max_length) {
        return fg_c_fail(cc, FG_ERR_INVALID,
                         "minLength %zu exceeds maxLength %zu",
                         s->min_length, s->max_length);
    }

    both = FG_SH_MIN_ITEMS | FG_SH_MAX_ITEMS;
    if ((s->has & both) == both && s->min_items > s->max_items) {
        return fg_c_fail(cc, FG_ERR_INVALID,
                         "minItems %zu exceeds maxItems %zu",
                         s->min_items, s->max_items);
    }

    if (s->minimum != NULL && s->maximum != NULL
        && fg_num_cmp(s->minimum, s->maximum) > 0)
    {
        fg_num_format(s->minimum, lo, sizeof(lo));
        fg_num_format(s->maximum, hi, sizeof(hi));
        return fg_c_fail(cc, FG_ERR_INVALID, "minimum %s exceeds maximum %s",
                         lo, hi);
    }

    return FG_OK;
}


static int
fg_c_node(fg_cctx_t *cc, unsigned depth, fg_schema_t **out)
{
    fg_schema_set_t  *set = cc->set;
    fg_schema_t      *s;

    *out = NULL;

    if (depth > FG_SCHEMA_MAX_DEPTH) {
        return fg_c_fail(cc, FG_ERR_LIMIT,
                         "schema nests deeper than %d levels",
                         FG_SCHEMA_MAX_DEPTH);
    }

    if (set->nnodes >= FG_SCHEMA_MAX_NODES) {
        return fg_c_fail(cc, FG_ERR_LIMIT, "more than %d subschemas",
                         FG_SCHEMA_MAX_NODES);
    }

    s = calloc(1, sizeof(fg_schema_t));
    if (s == NULL) {
        return fg_c_fail(cc, FG_ERR_NOMEM, "out of memory");
    }

    s->doc = cc->doc;
    s->next = set->nodes;
    set->nodes = s;
    set->nnodes++;
    *out = s;

    return FG_OK;
}


/* Compile the schema j (depth levels below its document's root). */
static int
fg_c_schema(fg_cctx_t *cc, json_t *j, unsigned depth, fg_schema_t **out)
{
    const fg_keyword_t  *kw;
    fg_ptr_mark_t        mark;
    fg_schema_t         *s;
    const char          *key;
    size_t               klen;
    void                *it;
    int                  rc;

    rc = fg_c_node(cc, depth, out);
    if (rc != FG_OK) {
        return rc;
    }

    s = *out;

    if (json_is_boolean(j)) {
        s->kind = json_is_true(j) ? FG_SK_TRUE : FG_SK_FALSE;
        return FG_OK;
    }

    if (!json_is_object(j)) {
        return fg_c_fail(cc, FG_ERR_INVALID,
                         "a schema must be an object or a boolean");
    }

    for (it = json_object_iter(j); it != NULL;
         it = json_object_iter_next(j, it))
    {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);

        mark = fg_ptr_push(&cc->ptr, key, klen);

        kw = fg_keyword_find(key, klen);
        if (kw == NULL) {
            rc = fg_c_fail(cc, FG_ERR_INVALID, "unsupported keyword");
        } else {
            rc = kw->compile(cc, kw, s, json_object_iter_value(it), depth);
        }

        fg_ptr_pop(&cc->ptr, mark);

        if (rc != FG_OK) {
            return rc;
        }
    }

    return fg_c_check(cc, s);
}


/* ------------------------------------------------------------------- refs */

static int
fg_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


/* Percent-decode s[0..n) into out (n + 1 bytes); returns the length or -1. */
static long
fg_ref_decode(const char *s, size_t n, char *out)
{
    size_t  i, o;
    int     hi, lo;

    for (i = 0, o = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n) {
            return -1;
        }
        hi = fg_hex((unsigned char) s[i + 1]);
        lo = fg_hex((unsigned char) s[i + 2]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[o++] = (char) (hi << 4 | lo);
        i += 2;
    }

    out[o] = '\0';

    return (long) o;
}


/* Unescape one pointer segment in place (~0 ~1); returns length or -1. */
static long
fg_ref_unescape(char *seg, size_t n)
{
    size_t  i, o;

    for (i = 0, o = 0; i < n; i++, o++) {
        if (seg[i] != '~') {
            seg[o] = seg[i];
            continue;
        }
        if (i + 1 >= n || (seg[i + 1] != '0' && seg[i + 1] != '1')) {
            return -1;
        }
        seg[o] = seg[i + 1] == '0' ? '~' : '/';
        i++;
    }

    return (long) o;
}


/*
 * Walk the compiled tree from root along the pointer p[0..n) (decoded,
 * starting with '/').  Returns the schema it names, or NULL.
 */
static const fg_schema_t *
fg_ref_walk(const fg_schema_t *cur, char *p, size_t n)
{
    char    *seg, *end, *stop;
    long     len;
    int      want;      /* 0: a keyword, 1: a $defs name, 2: a property */

    want = 0;
    seg = p + 1;
    stop = p + n;

    while (cur != NULL && seg <= stop) {
        end = memchr(seg, '/', (size_t) (stop - seg));
        if (end == NULL) {
            end = stop;
        }

        len = fg_ref_unescape(seg, (size_t) (end - seg));
        if (len < 0 || cur->kind != FG_SK_SCHEMA) {
            return NULL;
        }

        if (want == 1) {
            cur = fg_member_find(cur->defs, cur->ndefs, seg, (size_t) len);
            want = 0;
        } else if (want == 2) {
            cur = fg_member_find(cur->props, cur->nprops, seg, (size_t) len);
            want = 0;
        } else if (len == 5 && memcmp(seg, "$defs", 5) == 0) {
            want = 1;
        } else if (len == 10 && memcmp(seg, "properties", 10) == 0) {
            want = 2;
        } else if (len == 5 && memcmp(seg, "items", 5) == 0) {
            cur = cur->items;
        } else if (len == 20 && memcmp(seg, "additionalProperties", 20) == 0)
        {
            cur = cur->additional;
        } else if (len == 13 && memcmp(seg, "propertyNames", 13) == 0) {
            cur = cur->names;
        } else {
            return NULL;
        }

        seg = end + 1;
    }

    return want == 0 ? cur : NULL;
}


static int
fg_ref_fail(fg_schema_t *s, fg_error_t *err, int code, const char *why)
{
    return fg_error_set(err, code, FG_NO_OFFSET, "%s: $ref \"%s\" %s",
                        s->ref_at, s->ref_text, why);
}


/* Resolve s->ref_text to s->ref. */
static int
fg_ref_resolve(fg_schema_set_t *set, fg_schema_t *s, fg_error_t *err)
{
    const fg_schema_doc_t  *doc;
    const char             *hash;
    char                   *frag;
    size_t                  n;
    long                    len;

    hash = strchr(s->ref_text, '#');
    n = hash != NULL ? (size_t) (hash - s->ref_text) : strlen(s->ref_text);

    if (n == 0) {
        doc = &set->docs[s->doc];
    } else {
        doc = fg_schema_doc_find(set, s->ref_text, n);
        if (doc == NULL) {
            return fg_ref_fail(s, err, FG_ERR_INVALID,
                               "names an unknown document");
        }
    }

    if (hash == NULL || hash[1] == '\0') {
        s->ref = doc->root;
        return FG_OK;
    }

    n = strlen(hash + 1);
    frag = malloc(n + 1);
    if (frag == NULL) {
        return fg_ref_fail(s, err, FG_ERR_NOMEM, "cannot be resolved: "
                           "out of memory");
    }

    len = fg_ref_decode(hash + 1, n, frag);
    if (len <= 0 || frag[0] != '/') {
        free(frag);
        return fg_ref_fail(s, err, FG_ERR_INVALID,
                           "is not a JSON pointer fragment");
    }

    s->ref = fg_ref_walk(doc->root, frag, (size_t) len);
    free(frag);

    if (s->ref == NULL) {
        return fg_ref_fail(s, err, FG_ERR_INVALID,
                           "does not resolve to a schema");
    }

    return FG_OK;
}


/*
 * A chain of $refs that comes back to a schema already on it never
 * descends into the instance: refuse it.  Marks: 0 unseen, 1 on the chain
 * being walked, 2 known to end.
 */
static int
fg_ref_check_cycles(fg_schema_set_t *set, fg_error_t *err)
{
    fg_schema_t  *s, *t;

    for (s = set->nodes; s != NULL; s = s->next) {
        if (s->mark != 0) {
            continue;
        }

        for (t = s; t != NULL && t->mark == 0; t = (fg_schema_t *) t->ref) {
            t->mark = 1;
        }

        if (t != NULL && t->mark == 1) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "%s: $ref \"%s\" is part of a cycle that "
                                "never descends into the instance",
                                t->ref_at, t->ref_text);
        }

        for (t = s; t != NULL && t->mark == 1; t = (fg_schema_t *) t->ref) {
            t->mark = 2;
        }
    }

    return FG_OK;
}


int
fg_schema_set_compile(fg_schema_set_t *set, fg_error_t *err)
{
    fg_cctx_t     cc;
    fg_schema_t  *s;
    size_t        i;
    int           rc;

    if (set == NULL) {
        return fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                            "fg_schema_set_compile: NULL set");
    }

    if (set->state != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the schema set is already compiled");
    }

    set->state = -1;

    cc.set = set;
    cc.err = err;

    for (i = 0; i < set->ndocs; i++) {
        cc.doc = (unsigned) i;
        fg_ptr_init(&cc.ptr);

        rc = fg_c_schema(&cc, set->docs[i].json, 0, &set->docs[i].root);
        if (rc != FG_OK) {
            return rc;
        }
    }

    for (s = set->nodes; s != NULL; s = s->next) {
        if (s->ref_text != NULL) {
            rc = fg_ref_resolve(set, s, err);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    rc = fg_ref_check_cycles(set, err);
    if (rc != FG_OK) {
        return rc;
    }

    set->state = 1;

    return FG_OK;
}


/* --------------------------------------------------------------- validate */

static int fg_v_value(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth, int member);


static void
fg_v_line(fg_vctx_t *c, const char *fmt, va_list ap)
{
    char   reason[FG_ERRMSG_MAX];
    char  *line;
    int    n;

    n = vsnprintf(reason, sizeof(reason), fmt, ap);
    if (n >= (int) sizeof(reason)) {
        fg_utf8_trim(reason, sizeof(reason) - 1);
    }

    line = c->report->line[c->report->count++];

    n = snprintf(line, FG_ERRMSG_MAX, "%s: %s",
                 c->ptr.len > 0 ? c->ptr.buf : "(root)", reason);
    if (n >= FG_ERRMSG_MAX) {
        fg_utf8_trim(line, FG_ERRMSG_MAX - 1);
    }
}


/*
 * Record an error at the current pointer.  Returns FG_OK to go on, or
 * FG_ERR_INVALID when validation stops (no report, or the report is full).
 */
static int
fg_v_fail(fg_vctx_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int
fg_v_fail(fg_vctx_t *c, const char *fmt, ...)
{
    va_list  ap;

    c->errors++;

    if (c->report == NULL) {
        return FG_ERR_INVALID;
    }

    if (c->report->count == FG_SCHEMA_MAX_REPORT) {
        c->report->truncated = 1;
        return FG_ERR_INVALID;
    }

    va_start(ap, fmt);
    fg_v_line(c, fmt, ap);
    va_end(ap);

    return FG_OK;
}


/* Record why validation gave up; returns FG_ERR_LIMIT. */
static int
fg_v_limit(fg_vctx_t *c, const char *reason)
{
    if (c->report == NULL) {
        return FG_ERR_LIMIT;
    }

    if (c->report->count == FG_SCHEMA_MAX_REPORT) {
        c->report->truncated = 1;
        return FG_ERR_LIMIT;
    }

    fg_v_fail(c, "%s", reason);

    return FG_ERR_LIMIT;
}


static int
fg_v_too_deep(fg_vctx_t *c)
{
    char  reason[64];

    snprintf(reason, sizeof(reason), "nests deeper than %d levels",
             FG_SCHEMA_MAX_INSTANCE_DEPTH);

    return fg_v_limit(c, reason);
}


static int
fg_v_type(fg_vctx_t *c, const fg_schema_t *s, const char *got)
{
    char      want[96];
    size_t    off;
    unsigned  i;

    off = 0;
    want[0] = '\0';

    for (i = 0; i < s->ntypes; i++) {
        off += snprintf(want + off, sizeof(want) - off, "%s%s",
                        i > 0 ? " or " : "",
                        fg_schema_type_names[s->types[i]]);
    }

    return fg_v_fail(c, "expected %s, got %s", want, got);
}


/* const, then enum: a too deep comparison gives up (FG_ERR_LIMIT). */
static int
fg_v_equality(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth)
{
    size_t  i;
    int     eq, rc;

    if (s->const_value != NULL) {
        eq = fg_json_eq(v, s->const_value, depth);
        if (eq < 0) {
            return fg_v_too_deep(c);
        }
        if (!eq) {
            rc = fg_v_fail(c, "does not equal the required constant");
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    if (s->enum_values == NULL) {
        return FG_OK;
    }

    for (i = 0; i < json_array_size(s->enum_values); i++) {
        eq = fg_json_eq(v, json_array_get(s->enum_values, i), depth);
        if (eq < 0) {
            return fg_v_too_deep(c);
        }
        if (eq) {
            return FG_OK;
        }
    }

    return fg_v_fail(c, "not one of the allowed values");
}


/* --------------------------------------------------------------- patterns */

static void *
fg_arena_malloc(PCRE2_SIZE size, void *data)
{
    fg_arena_t  *a = data;
    size_t       n;
    void        *p;

    n = (size + 15) & ~(size_t) 15;

    if (n >= size && n <= sizeof(a->u.b) - a->used) {
        p = a->u.b + a->used;
        a->used += n;
        return p;
    }

    return malloc(size);
}


static void
fg_arena_free(void *p, void *data)
{
    fg_arena_t  *a = data;

    if ((unsigned char *) p >= a->u.b
        && (unsigned char *) p < a->u.b + sizeof(a->u.b))
    {
        return;
    }

    free(p);
}


static int
fg_v_pcre_init(fg_vctx_t *c)
{
    c->gctx = pcre2_general_context_create(fg_arena_malloc, fg_arena_free,
                                           &c->arena);
    if (c->gctx == NULL) {
        return FG_ERR_NOMEM;
    }

    c->mctx = pcre2_match_context_create(c->gctx);
    c->mdata = pcre2_match_data_create(1, c->gctx);
    if (c->mctx == NULL || c->mdata == NULL) {
        return FG_ERR_NOMEM;
    }

    pcre2_set_match_limit(c->mctx, FG_SCHEMA_MATCH_LIMIT);
    pcre2_set_depth_limit(c->mctx, FG_SCHEMA_DEPTH_LIMIT);
    pcre2_set_heap_limit(c->mctx, FG_SCHEMA_HEAP_LIMIT);

    return FG_OK;
}


static void
fg_v_pcre_free(fg_vctx_t *c)
{
    pcre2_match_data_free(c->mdata);
    pcre2_match_context_free(c->mctx);
    pcre2_general_context_free(c->gctx);
}


static int
fg_v_pattern(fg_vctx_t *c, const fg_schema_t *s, const char *str, size_t len)
{
    int  rc;

    if (c->mdata == NULL) {
        rc = fg_v_pcre_init(c);
        if (rc != FG_OK) {
            return rc;
        }
    }

    rc = pcre2_match(s->pattern, (PCRE2_SPTR) str, len, 0, 0, c->mdata,
                     c->mctx);

    /* the JIT stack is small; the interpreter's frames are heap-bounded */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(s->pattern, (PCRE2_SPTR) str, len, 0, PCRE2_NO_JIT,
                         c->mdata, c->mctx);
    }

    if (rc >= 0) {
        return FG_OK;
    }

    switch (rc) {

    case PCRE2_ERROR_NOMATCH:
        return fg_v_fail(c, "does not match %s", s->pattern_text);

    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return fg_v_fail(c, "match limit reached for %s", s->pattern_text);

    case PCRE2_ERROR_NOMEMORY:
        return FG_ERR_NOMEM;

    default:
        if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) {
            return fg_v_fail(c, "is not valid UTF-8");
        }
        return fg_v_fail(c, "cannot be matched against %s (PCRE2 error %d)",
                         s->pattern_text, rc);
    }
}


/* ------------------------------------------------------------- by type */

static int
fg_v_string(fg_vctx_t *c, const fg_schema_t *s, const char *str, size_t len)
{
    size_t  n;
    int     rc;

    if (s->has & (FG_SH_MIN_LENGTH | FG_SH_MAX_LENGTH)) {
        n = fg_utf8_length((const unsigned char *) str, len);

        if ((s->has & FG_SH_MIN_LENGTH) && n < s->min_length) {
            rc = fg_v_fail(c, "length %zu is below minLength %zu", n,
                           s->min_length);
            if (rc != FG_OK) {
                return rc;
            }
        }

        if ((s->has & FG_SH_MAX_LENGTH) && n > s->max_length) {
            rc = fg_v_fail(c, "length %zu exceeds maxLength %zu", n,
                           s->max_length);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    if (s->pattern != NULL) {
        return fg_v_pattern(c, s, str, len);
    }

    return FG_OK;
}


static int
fg_v_number(fg_vctx_t *c, const fg_schema_t *s, const json_t *v)
{
    char  a[FG_NUM_MAX], b[FG_NUM_MAX];
    int   rc;

    if (s->minimum != NULL && fg_num_cmp(v, s->minimum) < 0) {
        fg_num_format(v, a, sizeof(a));
        fg_num_format(s->minimum, b, sizeof(b));
        rc = fg_v_fail(c, "%s is below minimum %s", a, b);
        if (rc != FG_OK) {
            return rc;
        }
    }

    if (s->maximum != NULL && fg_num_cmp(v, s->maximum) > 0) {
        fg_num_format(v, a, sizeof(a));
        fg_num_format(s->maximum, b, sizeof(b));
        return fg_v_fail(c, "%s exceeds maximum %s", a, b);
    }

    return FG_OK;
}


/* A property name against propertyNames (and what it refers to). */
static int
fg_v_name(fg_vctx_t *c, const fg_schema_t *s, const char *name, size_t len)
{
    const json_t  *cv;
    size_t         i;
    int            rc;

    for ( /* void */ ; s != NULL; s = s->ref) {
        if (s->kind == FG_SK_TRUE) {
            return FG_OK;
        }

        if (s->kind == FG_SK_FALSE) {
            return fg_v_fail(c, "property not allowed");
        }

        if (s->type_mask != 0 && !(s->type_mask & (1u << FG_ST_STRING))) {
            return fg_v_type(c, s, "string");
        }

        cv = s->const_value;
        if (cv != NULL
            && !(json_is_string(cv) && json_string_length(cv) == len
                 && memcmp(json_string_value(cv), name, len) == 0))
        {
            rc = fg_v_fail(c, "does not equal the required constant");
            if (rc != FG_OK) {
                return rc;
            }
        }

        if (s->enum_values != NULL) {
            for (i = 0; i < json_array_size(s->enum_values); i++) {
                cv = json_array_get(s->enum_values, i);
                if (json_is_string(cv) && json_string_length(cv) == len
                    && memcmp(json_string_value(cv), name, len) == 0)
                {
                    break;
                }
            }
            if (i == json_array_size(s->enum_values)) {
                rc = fg_v_fail(c, "not one of the allowed values");
                if (rc != FG_OK) {
                    return rc;
                }
            }
        }

        rc = fg_v_string(c, s, name, len);
        if (rc != FG_OK) {
            return rc;
        }
    }

    return FG_OK;
}


static int
fg_v_member(fg_vctx_t *c, const fg_schema_t *s, void *it, unsigned depth)
{
    const fg_schema_t  *sub;
    fg_ptr_mark_t       mark;
    const char         *key;
    size_t              klen;
    int                 rc;

    key = json_object_iter_key(it);
    klen = json_object_iter_key_len(it);

    sub = fg_member_find(s->props, s->nprops, key, klen);
    if (sub == NULL) {
        sub = s->additional;
    }

    mark = fg_ptr_push(&c->ptr, key, klen);

    rc = FG_OK;

    if (s->names != NULL) {
        rc = fg_v_name(c, s->names, key, klen);
    }

    if (rc == FG_OK && sub != NULL) {
        rc = fg_v_value(c, sub, json_object_iter_value(it), depth + 1, 1);
    }

    fg_ptr_pop(&c->ptr, mark);

    return rc;
}


static int
fg_v_object(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth)
{
    const char  *name;
    size_t       i, n;
    void        *it;
    int          rc;

    if (s->required != NULL) {
        for (i = 0; i < json_array_size(s->required); i++) {
            name = json_string_value(json_array_get(s->required, i));
            if (json_object_get(v, name) == NULL) {
                rc = fg_v_fail(c, "missing required property \"%s\"", name);
                if (rc != FG_OK) {
                    return rc;
                }
            }
        }
    }

    if (s->nprops > 0 || s->additional != NULL || s->names != NULL) {
        for (it = json_object_iter((json_t *) v); it != NULL;
             it = json_object_iter_next((json_t *) v, it))
        {
            rc = fg_v_member(c, s, it, depth);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    n = json_object_size(v);

    if ((s->has & FG_SH_MAX_PROPS) && n > s->max_props) {
        return fg_v_fail(c, "%zu properties, more than maxProperties %zu", n,
                         s->max_props);
    }

    return FG_OK;
}


typedef struct {
    uint64_t  hash;
    size_t    index;
} fg_hashed_t;


static int
fg_hashed_cmp(const void *a, const void *b)
{
    const fg_hashed_t  *x = a, *y = b;

    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }

    return x->index < y->index ? -1 : x->index > y->index;
}


/*
 * Compare items i < j of v; 1 equal, 0 not, or a negative status.  Items
 * are one level below depth.
 */
static int
fg_v_same(fg_vctx_t *c, const json_t *v, size_t i, size_t j, unsigned depth)
{
    int  eq;

    if (++c->work > FG_SCHEMA_UNIQUE_WORK) {
        return fg_v_limit(c, "uniqueItems needs more comparisons than "
                          "allowed");
    }

    eq = fg_json_eq(json_array_get(v, i), json_array_get(v, j), depth + 1);
    if (eq < 0) {
        return fg_v_too_deep(c);
    }

    return eq;
}


/*
 * Find the first equal pair (smallest j, then smallest i < j) of a long
 * array by sorting hashes.  Returns 1 found, 0 none, or a status.
 */
static int
fg_v_unique_hashed(fg_vctx_t *c, const json_t *v, unsigned depth,
    size_t *pi, size_t *pj)
{
    fg_hashed_t  *h;
    size_t        n, a, b, x, y, best;
    int           rc;

    n = json_array_size(v);
    h = malloc(n * sizeof(fg_hashed_t));
    if (h == NULL) {
        return FG_ERR_NOMEM;
    }

    rc = 0;

    for (x = 0; x < n; x++) {
        h[x].index = x;
        if (fg_json_hash(json_array_get(v, x), depth + 1, &h[x].hash) != 0) {
            rc = fg_v_too_deep(c);
            goto done;
        }
    }

    qsort(h, n, sizeof(fg_hashed_t), fg_hashed_cmp);

    best = n;

    for (a = 0; a < n; a = b) {
        for (b = a + 1; b < n && h[b].hash == h[a].hash; b++) {
            /* void */
        }

        for (x = a + 1; x < b && h[x].index < best; x++) {
            for (y = a; y < x; y++) {
                rc = fg_v_same(c, v, h[y].index, h[x].index, depth);
                if (rc < 0) {
                    goto done;
                }
                if (rc == 1) {
                    best = h[x].index;
                    *pi = h[y].index;
                    *pj = best;
                    break;
                }
            }
        }
    }

    rc = best < n;

done:

    free(h);
    return rc;
}


static int
fg_v_unique(fg_vctx_t *c, const json_t *v, unsigned depth, size_t *pi,
    size_t *pj)
{
    size_t  i, j, n;
    int     rc;

    n = json_array_size(v);

    if (n > FG_SCHEMA_UNIQUE_SMALL) {
        return fg_v_unique_hashed(c, v, depth, pi, pj);
    }

    for (j = 1; j < n; j++) {
        for (i = 0; i < j; i++) {
            rc = fg_v_same(c, v, i, j, depth);
            if (rc != 0) {
                *pi = i;
                *pj = j;
                return rc;
            }
        }
    }

    return 0;
}


static int
fg_v_array(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth)
{
    fg_ptr_mark_t  mark;
    size_t         i, j, n;
    int            rc;

    n = json_array_size(v);
    i = 0;
    j = 0;

    if ((s->has & FG_SH_MIN_ITEMS) && n < s->min_items) {
        rc = fg_v_fail(c, "%zu items, fewer than minItems %zu", n,
                       s->min_items);
        if (rc != FG_OK) {
            return rc;
        }
    }

    if ((s->has & FG_SH_MAX_ITEMS) && n > s->max_items) {
        rc = fg_v_fail(c, "%zu items, more than maxItems %zu", n,
                       s->max_items);
        if (rc != FG_OK) {
            return rc;
        }
    }

    if (s->has & FG_SH_UNIQUE) {
        rc = fg_v_unique(c, v, depth, &i, &j);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1) {
            rc = fg_v_fail(c, "items %zu and %zu are equal", i, j);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    if (s->items == NULL || s->items->kind == FG_SK_TRUE) {
        return FG_OK;
    }

    for (i = 0; i < n; i++) {
        mark = fg_ptr_push_index(&c->ptr, i);
        rc = fg_v_value(c, s->items, json_array_get(v, i), depth + 1, 0);
        fg_ptr_pop(&c->ptr, mark);

        if (rc != FG_OK) {
            return rc;
        }
    }

    return FG_OK;
}


/* One schema's own keywords; *stop when the type is wrong. */
static int
fg_v_node(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth, int *stop)
{
    int  rc;

    if (s->type_mask != 0 && !fg_type_matches(s->type_mask, v)) {
        *stop = 1;
        return fg_v_type(c, s, fg_json_type_name(v));
    }

    rc = fg_v_equality(c, s, v, depth);
    if (rc != FG_OK) {
        return rc;
    }

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return fg_v_object(c, s, v, depth);
    case JSON_ARRAY:
        return fg_v_array(c, s, v, depth);
    case JSON_STRING:
        return fg_v_string(c, s, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL:
        return fg_v_number(c, s, v);
    default:
        return FG_OK;
    }
}


/*
 * v (depth levels below the instance root) against s and the chain of
 * schemas its $refs lead to.  member: v is an object member's value.
 */
static int
fg_v_value(fg_vctx_t *c, const fg_schema_t *s, const json_t *v,
    unsigned depth, int member)
{
    int  rc, stop;

    if (s->kind == FG_SK_TRUE) {
        return FG_OK;
    }

    if (depth > FG_SCHEMA_MAX_INSTANCE_DEPTH) {
        return fg_v_too_deep(c);
    }

    stop = 0;

    for ( /* void */ ; s != NULL && !stop; s = s->ref) {
        if (s->kind == FG_SK_TRUE) {
            break;
        }

        if (s->kind == FG_SK_FALSE) {
            return fg_v_fail(c, member ? "property not allowed"
                                       : "not allowed");
        }

        rc = fg_v_node(c, s, v, depth, &stop);
        if (rc != FG_OK) {
            return rc;
        }
    }

    return FG_OK;
}


int
fg_schema_validate(const fg_schema_t *schema, const json_t *instance,
    fg_schema_report_t *report)
{
    fg_vctx_t  c;
    int        rc;

    if (report != NULL) {
        report->count = 0;
        report->truncated = 0;
    }

    if (schema == NULL || instance == NULL) {
        return FG_ERR_INTERNAL;
    }

    c.report = report;
    c.errors = 0;
    c.work = 0;
    c.arena.used = 0;
    c.gctx = NULL;
    c.mctx = NULL;
    c.mdata = NULL;
    fg_ptr_init(&c.ptr);

    rc = fg_v_value(&c, schema, instance, 0, 0);

    if (c.gctx != NULL) {
        fg_v_pcre_free(&c);
    }

    if (rc == FG_OK && c.errors > 0) {
        rc = FG_ERR_INVALID;
    }

    return rc;
}

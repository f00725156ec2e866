/*
 * fg_record.c -- building, parsing, validating and hashing evidence
 * records; the schemas come from the table fg_embed generated from
 * schemas/ at build time.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "fg_embedded.h"
#include "fg_record.h"

static const char  *fg_record_names[FG_RECORD_TYPES] = {
    "AuthContext",
    "PolicyDecisionRecord",
    "ModelCallRecord",
    "ToolCallRecord"
};

struct fg_records_s {
    fg_schema_set_t  *set;
};


/* ------------------------------------------------------------- schemas */

fg_records_t *
fg_records_new(fg_error_t *err)
{
    const fg_embedded_file_t  *f;
    fg_records_t              *records;

    records = calloc(1, sizeof(fg_records_t));
    if (records == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    records->set = fg_schema_set_new();
    if (records->set == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        goto failed;
    }

    for (f = fg_embedded_schemas; f->name != NULL; f++) {
        if (fg_schema_set_add(records->set, f->name, f->data, f->len, err)
            != FG_OK)
        {
            goto failed;
        }
    }

    if (fg_schema_set_compile(records->set, err) != FG_OK) {
        goto failed;
    }

    return records;

failed:

    fg_records_free(records);
    return NULL;
}


void
fg_records_free(fg_records_t *records)
{
    if (records == NULL) {
        return;
    }

    fg_schema_set_free(records->set);
    free(records);
}


const fg_schema_t *
fg_records_schema(const fg_records_t *records, const char *name)
{
    char  file[FG_SCHEMA_MAX_NAME];

    if ((size_t) snprintf(file, sizeof(file), "%s.schema.json", name)
        >= sizeof(file))
    {
        return NULL;
    }

    return fg_schema_set_get(records->set, file);
}


const char *
fg_record_type_name(fg_record_type_t type)
{
    return ((unsigned) type < FG_RECORD_TYPES) ? fg_record_names[type] : NULL;
}


int
fg_record_type_from_name(const char *name)
{
    int  i;

    for (i = 0; i < FG_RECORD_TYPES; i++) {
        if (strcmp(name, fg_record_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


/* ------------------------------------------------------------- tenants */

unsigned
fg_stream_slot(const char *tenant, size_t len)
{
    uint16_t  crc;
    size_t    i;
    int       b;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) ((unsigned char) tenant[i] << 8);
        for (b = 0; b < 8; b++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc & (FG_CLUSTER_SLOTS - 1);
}


int
fg_tenant_id_valid(const char *s, size_t n)
{
    size_t  i;

    if (s == NULL || n == 0 || n > FG_TENANT_ID_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')) {
            continue;
        }
        if (i > 0 && (s[i] == '_' || s[i] == '-')) {
            continue;
        }
        return 0;
    }

    return 1;
}


/* --------------------------------------------------------------- build */

json_t *
fg_record_new(fg_record_type_t type, const char *tenant_id,
    const char *execution_id, const fg_trace_t *trace)
{
    json_t  *parent;

    if ((unsigned) type >= FG_RECORD_TYPES) {
        return NULL;
    }

    parent = trace->parent_span_id[0] ? json_string(trace->parent_span_id)
                                      : json_null();

    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:{s:s, s:s, s:o}}",
                     "record_type", fg_record_names[type],
                     "spec_version", FG_SPEC_VERSION,
                     "canon_version", FG_CANON_VERSION,
                     "tenant_id", tenant_id,
                     "execution_id", execution_id,
                     "trace",
                         "trace_id", trace->trace_id,
                         "span_id", trace->span_id,
                         "parent_span_id", parent);
}


/*
 * The "YYYY-MM-DDTHH:MM:SS" of the last second formatted, per thread: a
 * call writes several times of the same second, and gmtime_r + strftime
 * cost more than the rest of a time field.
 */
static __thread time_t  fg_time_sec;
static __thread int     fg_time_cached;
static __thread char    fg_time_text[20];


int
fg_time_format(time_t sec, long nsec, char buf[FG_TIME_MAX])
{
    struct tm  tm;
    long       ms;

    if (nsec < 0 || nsec > 999999999) {
        return FG_ERR_INVALID;
    }

    if (!fg_time_cached || sec != fg_time_sec) {
        /* not strftime: its %Y writes the years before 1000 unpadded */
        if (gmtime_r(&sec, &tm) == NULL || tm.tm_year + 1900 > 9999
            || tm.tm_year + 1900 < 0
            || snprintf(fg_time_text, sizeof(fg_time_text),
                        "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec) != 19)
        {
            fg_time_cached = 0;
            return FG_ERR_INVALID;
        }
        fg_time_sec = sec;
        fg_time_cached = 1;
    }

    ms = nsec / 1000000;

    memcpy(buf, fg_time_text, 19);
    buf[19] = '.';
    buf[20] = (char) ('0' + ms / 100);
    buf[21] = (char) ('0' + ms / 10 % 10);
    buf[22] = (char) ('0' + ms % 10);
    buf[23] = 'Z';
    buf[24] = '\0';

    return FG_OK;
}


static int
fg_digits(const char *s, size_t n, int *v)
{
    size_t  i;

    *v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}


/*
 * Parse an RFC 3339 UTC time as the record schema's "time" allows:
 * YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z.  Returns 1 and the instant, or 0.
 */
int
fg_time_parse(const char *s, size_t len, time_t *sec, long *nsec)
{
    struct tm  tm, back;
    int        y, mo, d, h, mi, se, frac;
    size_t     i, nf;
    time_t     t;

    if (len < 20 || len > 30 || s[4] != '-' || s[7] != '-' || s[10] != 'T'
        || s[13] != ':' || s[16] != ':' || s[len - 1] != 'Z')
    {
        return 0;
    }
    if (!fg_digits(s, 4, &y) || !fg_digits(s + 5, 2, &mo)
        || !fg_digits(s + 8, 2, &d) || !fg_digits(s + 11, 2, &h)
        || !fg_digits(s + 14, 2, &mi) || !fg_digits(s + 17, 2, &se))
    {
        return 0;
    }
    frac = 0;
    if (len > 20) {
        nf = len - 21;
        if (s[19] != '.' || nf < 1 || nf > 9 || !fg_digits(s + 20, nf, &frac))
        {
            return 0;
        }
        for (i = nf; i < 9; i++) {
            frac *= 10;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59
        || se > 60)
    {
        return 0;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);

    /* timegm normalizes Feb 30 into March: refuse such dates */
    if (gmtime_r(&t, &back) == NULL
        || (se != 60 && (back.tm_mday != d || back.tm_mon != mo - 1)))
    {
        return 0;
    }

    *sec = t;
    *nsec = frac;
    return 1;
}


int
fg_record_set_time(json_t *record, const char *field, time_t sec, long nsec)
{
    char  buf[FG_TIME_MAX];

    if (fg_time_format(sec, nsec, buf) != FG_OK) {
        return FG_ERR_INVALID;
    }

    return json_object_set_new(record, field, json_string(buf)) == 0
           ? FG_OK : FG_ERR_NOMEM;
}


int
fg_record_link(fg_sha256_t *h, json_t *record, const char *field,
    const json_t *target, fg_error_t *err)
{
    char  hex[FG_SHA256_HEX_LEN + 1];
    int   rc;

    rc = fg_record_hash(h, target, hex, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (json_object_set_new(record, field, json_string(hex)) != 0) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    return FG_OK;
}


/* ------------------------------------------------------------ validate */

int
fg_record_validate_as(const fg_records_t *records, const char *name,
    const json_t *record, fg_schema_report_t *report)
{
    const fg_schema_t  *schema;

    schema = fg_records_schema(records, name);
    if (schema == NULL) {
        if (report != NULL) {
            report->count = 1;
            report->truncated = 0;
            snprintf(report->line[0], sizeof(report->line[0]),
                     "(root): no schema named \"%.64s\"", name);
        }
        return FG_ERR_INVALID;
    }

    return fg_schema_validate(schema, record, report);
}


int
fg_record_validate(const fg_records_t *records, const json_t *record,
    fg_schema_report_t *report)
{
    const char  *type;

    type = json_string_value(json_object_get(record, "record_type"));

    if (type == NULL || fg_record_type_from_name(type) < 0) {
        if (report != NULL) {
            report->count = 1;
            report->truncated = 0;
            snprintf(report->line[0], sizeof(report->line[0]), "%s",
                     type == NULL
                     ? "/record_type: missing, or not a string"
                     : "/record_type: not a known record type");
        }
        return FG_ERR_INVALID;
    }

    return fg_record_validate_as(records, type, record, report);
}


static int
fg_record_null_flush(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    (void) sink;
    (void) p;
    (void) n;

    return FG_OK;
}


int
fg_record_canon_bounded(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, size_t max, const char *what,
    unsigned char md[FG_SHA256_LEN], uint64_t *size, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;
    int            rc;

    if (len > max) {
        return fg_error_set(err, FG_ERR_LIMIT, 0,
                            "%s of %zu bytes is larger than %zu", what, len,
                            max);
    }

    /*
     * The canonicalizer is the strict reader (it names the byte); its
     * output is hashed when the caller wants the hash, and dropped
     * otherwise.
     */
    if (h != NULL) {
        if (fg_sha256_init(h) != FG_OK) {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "SHA-256 failed");
        }
        fg_sink_to_sha256(&sink, h, stage, sizeof(stage));

    } else {
        sink.buf = stage;
        sink.len = 0;
        sink.cap = sizeof(stage);
        sink.total = 0;
        sink.flush = fg_record_null_flush;
        sink.ctx = NULL;
    }

    rc = fg_jcs_canonicalize(jcs, text, len, &sink, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (h != NULL && fg_sha256_final(h, md) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    if (size != NULL) {
        *size = sink.total;
    }

    return FG_OK;
}


int
fg_record_parse_bounded(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, size_t max, const char *what,
    int any, unsigned char md[FG_SHA256_LEN], uint64_t *size,
    json_t **value, fg_error_t *err)
{
    int  rc;

    *value = NULL;

    rc = fg_record_canon_bounded(jcs, h, text, len, max, what, md, size, err);
    if (rc != FG_OK) {
        return rc;
    }

    /*
     * The document from the reader's tape: the text was read once, and
     * reading it again with json_loadb() cost more than all the rest of
     * a record's checks (bench/ledger).  The tape holds what json_loadb()
     * would: no duplicate keys, NULs in strings, 64-bit integers.
     */
    if (!any
        && fg_jcs_node_kind(jcs, 0) != FG_JCS_OBJECT
        && fg_jcs_node_kind(jcs, 0) != FG_JCS_ARRAY)
    {
        return fg_error_set(err, FG_ERR_INVALID, 0,
                            "%s: not an object or an array", what);
    }

    *value = fg_jcs_tree_json(jcs, 0, err);
    if (*value == NULL) {
        return err != NULL && err->code ? err->code : FG_ERR_NOMEM;
    }

    return FG_OK;
}


json_t *
fg_record_parse_hashed(fg_jcs_t *jcs, fg_sha256_t *h,
    const unsigned char *text, size_t len, unsigned char md[FG_SHA256_LEN],
    fg_error_t *err)
{
    json_t  *v;

    (void) fg_record_parse_bounded(jcs, h, text, len, FG_RECORD_MAX_BYTES,
                                   "record", 0, md, NULL, &v, err);
    return v;
}


int
fg_record_parse_canonical(fg_jcs_t *jcs, const unsigned char *text,
    size_t len, unsigned char md[FG_SHA256_LEN], json_t **value,
    fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;
    fg_same_t      same;
    int            rc;

    *value = NULL;

    if (len > FG_RECORD_MAX_BYTES) {
        return fg_error_set(err, FG_ERR_LIMIT, 0,
                            "record of %zu bytes is larger than %d", len,
                            FG_RECORD_MAX_BYTES);
    }

    /* canonicalizing it must give it back; then its hash is the text's */
    fg_sink_to_same(&sink, &same, text, len, stage, sizeof(stage));

    rc = fg_jcs_canonicalize(jcs, text, len, &sink, err);
    if (rc == FG_ERR_MISMATCH || (rc == FG_OK && same.at != len)) {
        return fg_error_set(err, FG_ERR_MISMATCH, same.at,
                            "not in canonical form (at byte %zu)", same.at);
    }
    if (rc != FG_OK) {
        return rc;
    }

    if (fg_jcs_node_kind(jcs, 0) != FG_JCS_OBJECT) {
        return fg_error_set(err, FG_ERR_INVALID, 0, "not an object");
    }

    if (fg_sha256(text, len, md) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    *value = fg_jcs_tree_json(jcs, 0, err);
    if (*value == NULL) {
        /* an integer beyond 64 bits is refused there, not only memory */
        return err != NULL && err->code ? err->code : FG_ERR_NOMEM;
    }

    return FG_OK;
}


json_t *
fg_record_parse(fg_jcs_t *jcs, const unsigned char *text, size_t len,
    fg_error_t *err)
{
    return fg_record_parse_hashed(jcs, NULL, text, len, NULL, err);
}


/* ---------------------------------------------------------------- hash */

int
fg_record_hash(fg_sha256_t *h, const json_t *record,
    char hex[FG_SHA256_HEX_LEN + 1], fg_error_t *err)
{
    unsigned char  md[FG_SHA256_LEN];
    int            rc;

    rc = fg_envelope_hash(h, record, md, err);
    if (rc != FG_OK) {
        return rc;
    }

    fg_hex_sha256(md, hex);

    return FG_OK;
}


/* ----------------------------------------------------------------- ids */

/*
 * Random bytes for ids, drawn from a small per-thread pool that RAND_bytes
 * refills: OpenSSL 3's per-call overhead (finding the DRBG, its locks and
 * parameters) costs more than the bytes of one id, and a call makes
 * several ids.  The ids are unique and unpredictable, not secrets.  A
 * forked child must not hand out what its parent's pool holds (an nginx
 * worker is a fork of its master): the child empties the pool at fork.
 */
#define FG_RAND_POOL  256

static __thread unsigned char  fg_rand_pool[FG_RAND_POOL];
static __thread size_t         fg_rand_left;
static pthread_once_t          fg_rand_once = PTHREAD_ONCE_INIT;


static void
fg_rand_forked(void)
{
    fg_rand_left = 0;
}


static void
fg_rand_init(void)
{
    (void) pthread_atfork(NULL, NULL, fg_rand_forked);
}


static int
fg_rand(unsigned char *b, size_t n)
{
    if (n > FG_RAND_POOL) {
        return RAND_bytes(b, (int) n) == 1 ? FG_OK : FG_ERR_CRYPTO;
    }

    (void) pthread_once(&fg_rand_once, fg_rand_init);

    if (fg_rand_left < n) {
        if (RAND_bytes(fg_rand_pool, FG_RAND_POOL) != 1) {
            fg_rand_left = 0;
            return FG_ERR_CRYPTO;
        }
        fg_rand_left = FG_RAND_POOL;
    }

    /* each byte is handed out once, then wiped */
    fg_rand_left -= n;
    memcpy(b, fg_rand_pool + fg_rand_left, n);
    memset(fg_rand_pool + fg_rand_left, 0, n);

    return FG_OK;
}


int
fg_uuidv7(uint64_t unix_ms, char out[FG_UUID_LEN + 1])
{
    unsigned char  b[16];
    char           hex[33];
    int            i;

    if (fg_rand(b + 6, 10) != FG_OK) {
        return FG_ERR_CRYPTO;
    }

    for (i = 0; i < 6; i++) {
        b[i] = (unsigned char) (unix_ms >> (40 - 8 * i));
    }

    b[6] = (unsigned char) (0x70 | (b[6] & 0x0f));      /* version 7 */
    b[8] = (unsigned char) (0x80 | (b[8] & 0x3f));      /* variant 10 */

    fg_hex_encode(b, 16, hex);

    /* 8-4-4-4-12 */
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';

    return FG_OK;
}


static int
fg_random_id(unsigned char *b, size_t n, char *out)
{
    size_t  i;

    do {
        if (fg_rand(b, n) != FG_OK) {
            return FG_ERR_CRYPTO;
        }
        for (i = 0; i < n && b[i] == 0; i++) {
            /* void */
        }
    } while (i == n);               /* all zero is an invalid id */

    fg_hex_encode(b, n, out);

    return FG_OK;
}


int
fg_trace_id_new(char out[FG_TRACE_ID_LEN + 1])
{
    unsigned char  b[FG_TRACE_ID_LEN / 2];

    return fg_random_id(b, sizeof(b), out);
}


int
fg_span_id_new(char out[FG_SPAN_ID_LEN + 1])
{
    unsigned char  b[FG_SPAN_ID_LEN / 2];

    return fg_random_id(b, sizeof(b), out);
}

/*
 * cli_ledger.c -- the ledger reader of cli_ledger.h: one tenant's
 * entries, each checked against everything before it (hash, dense seq,
 * chain from the tenant's genesis, the record strict, schema-valid and
 * the tenant's, no envelope_hash twice, links to records before it).
 *
 * The checks are here, once, for every backend; a backend is a source of
 * rows (cli_ledger_pg.h).  The file source is here too: one canonical
 * line an entry (docs/ledger.md), read as a stream through one buffer of
 * FG_LEDGER_LINE_MAX bytes allocated once.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_ledger.h"
#include "cli_ledger_pg.h"
#include "fg_hashset.h"

struct fg_cli_ledger_s {
    fg_cli_ledger_source_t   src;
    void                    *ctx;
    char                    *name;

    char                     tenant[FG_TENANT_ID_MAX + 1];
    int                      started;       /* genesis in chain */
    int                      failed;
    fg_error_t               fail;          /* why, repeated after */

    fg_records_t            *records;
    fg_jcs_t                *jcs;           /* reads records */
    fg_sha256_t             *h;
    fg_hashset_t             seen;
    json_t                  *value;         /* the last entry's record */

    uint64_t                 seq;           /* the last good entry */
    unsigned char            chain[FG_SHA256_LEN];
    uint64_t                 where_seq;
    uint64_t                 where_line;
};


/* ------------------------------------------------------------ the file */

typedef struct {
    FILE         *f;
    fg_buffer_t   line;         /* FG_LEDGER_LINE_MAX bytes, once */
    uint64_t      lineno;
    fg_jcs_t     *jcs;          /* reads lines */
    fg_sha256_t  *h;
} fg_cli_ledger_file_t;


/*
 * The next line of f into b (without "\n"): 1, 0 at the end, -1 when it
 * is longer than a ledger line may be.  b holds FG_LEDGER_LINE_MAX bytes,
 * so a line is read without growing anything; the stream is the
 * process's own, so unlocked reads.
 */
static int
fg_cli_ledger_line(FILE *f, fg_buffer_t *b, int *unterminated)
{
    int  c;

    b->len = 0;
    *unterminated = 0;

    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            return 1;
        }
        if (b->len == FG_LEDGER_LINE_MAX) {
            return -1;
        }
        b->data[b->len++] = (unsigned char) c;
    }

    if (b->len > 0) {
        *unterminated = 1;
        return 1;
    }
    return 0;
}


static int
fg_cli_ledger_file_next(void *ctx, fg_ledger_entry_t *row, uint64_t *line,
    fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl = ctx;
    int                    got, unterminated;

    got = fg_cli_ledger_line(fl->f, &fl->line, &unterminated);
    if (got == 0) {
        if (ferror(fl->f)) {
            fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s", strerror(errno));
            return -1;
        }
        return 0;
    }

    *line = ++fl->lineno;

    if (got < 0) {
        fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                     "longer than %d bytes", FG_LEDGER_LINE_MAX);
        return -1;
    }
    if (ferror(fl->f)) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "line %llu: %s",
                     (unsigned long long) fl->lineno, strerror(errno));
        return -1;
    }
    if (unterminated) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "the last line has no newline (a torn append)");
        return -1;
    }

    if (fg_ledger_read(fl->jcs, fl->h, fl->line.data, fl->line.len, row, err)
        != FG_OK)
    {
        /* a finding, even when SHA-256 failed: never FG_ERR_IO here */
        if (err->code == FG_ERR_IO || err->code == FG_ERR_NOMEM) {
            err->code = FG_ERR_INVALID;
        }
        return -1;
    }

    return 1;
}


static void
fg_cli_ledger_file_close(void *ctx)
{
    fg_cli_ledger_file_t  *fl = ctx;

    if (fl == NULL) {
        return;
    }
    if (fl->f != NULL) {
        fclose(fl->f);
    }
    fg_buffer_free(&fl->line);
    fg_jcs_free(fl->jcs);
    fg_sha256_free(fl->h);
    free(fl);
}


/* The record of the line just read, from the tape fg_ledger_read left. */
static json_t *
fg_cli_ledger_file_record(void *ctx, fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl = ctx;

    return fg_jcs_tree_json(fl->jcs,
                            fg_jcs_node_member(fl->jcs, 0, "record", 6), err);
}


static const fg_cli_ledger_source_t  fg_cli_ledger_file_source = {
    fg_cli_ledger_file_next,
    NULL,                       /* checkpoints are files: --checkpoints */
    fg_cli_ledger_file_close,
    1,                          /* fg_ledger_read checked hash and form */
    fg_cli_ledger_file_record
};


static fg_cli_ledger_file_t *
fg_cli_ledger_file_open(const char *path, fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl;

    fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    fl->f = fopen(path, "rb");
    if (fl->f == NULL) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s", strerror(errno));
        free(fl);
        return NULL;
    }

    fg_buffer_init(&fl->line, FG_LEDGER_LINE_MAX);
    fl->line.data = malloc(FG_LEDGER_LINE_MAX);
    fl->line.cap = FG_LEDGER_LINE_MAX;
    fl->jcs = fg_jcs_new(0);
    fl->h = fg_sha256_new();

    if (fl->line.data == NULL || fl->jcs == NULL || fl->h == NULL) {
        fg_cli_ledger_file_close(fl);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    return fl;
}


/* ------------------------------------------------------------- the name */

char *
fg_cli_ledger_redact(const char *src)
{
    const char  *scheme, *auth, *end, *at, *colon, *p;
    fg_buffer_t  b;
    size_t       n;
    int          rc;

    scheme = strstr(src, "://");
    if (scheme == NULL) {
        return strdup(src);
    }

    fg_buffer_init(&b, 0);
    auth = scheme + 3;
    end = auth + strcspn(auth, "/?#");

    /* the authority: [user[:password]@]host[:port] */
    at = NULL;
    for (p = auth; p < end; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    colon = (at != NULL) ? memchr(auth, ':', (size_t) (at - auth)) : NULL;

    if (colon != NULL) {
        rc = fg_buffer_append(&b, src, (size_t) (colon - src));
        rc = rc ? rc : fg_buffer_append(&b, at, (size_t) (end - at));
    } else {
        rc = fg_buffer_append(&b, src, (size_t) (end - src));
    }

    /* the rest, with a password= parameter's value left out */
    p = end;
    while (rc == FG_OK && *p != '\0') {
        n = strcspn(p + 1, "?&#") + 1;
        if (strncmp(p + 1, "password=", 9) == 0) {
            rc = fg_buffer_append(&b, p, 10);
            rc = rc ? rc : fg_buffer_append(&b, "(hidden)", 8);
        } else {
            rc = fg_buffer_append(&b, p, n);
        }
        p += n;
    }

    rc = rc ? rc : fg_buffer_append(&b, "", 1);
    if (rc != FG_OK) {
        fg_buffer_free(&b);
        return NULL;
    }

    return (char *) b.data;
}


/* ----------------------------------------------------------- the reader */

fg_cli_ledger_t *
fg_cli_ledger_new(const fg_cli_ledger_source_t *src, void *ctx,
    const char *tenant, const char *name, fg_error_t *err)
{
    fg_cli_ledger_t  *l;

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        src->close(ctx);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "\"%s\" is not a tenant id", tenant);
        return NULL;
    }

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        src->close(ctx);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    l->src = *src;
    l->ctx = ctx;
    fg_hashset_init(&l->seen);

    l->records = fg_records_new(err);
    if (l->records == NULL) {
        fg_cli_ledger_close(l);
        return NULL;
    }

    l->name = strdup(name != NULL ? name : "");
    l->jcs = fg_jcs_new(0);
    l->h = fg_sha256_new();

    if (l->name == NULL || l->jcs == NULL || l->h == NULL) {
        fg_cli_ledger_close(l);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    if (tenant != NULL) {
        strcpy(l->tenant, tenant);
        if (fg_ledger_genesis(l->h, l->tenant, strlen(l->tenant), l->chain)
            != FG_OK)
        {
            fg_cli_ledger_close(l);
            fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET, "SHA-256 failed");
            return NULL;
        }
        l->started = 1;
    }

    return l;
}


fg_cli_ledger_t *
fg_cli_ledger_open(const char *src, const char *tenant, fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl;
    fg_cli_ledger_t       *l;
    char                  *name;

    if (strncmp(src, "postgresql://", 13) == 0
        || strncmp(src, "postgres://", 11) == 0)
    {
        if (tenant == NULL) {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "a PostgreSQL ledger needs its tenant (--tenant)");
            return NULL;
        }

        l = fg_cli_ledger_pg_open(src, tenant, err);
        if (l == NULL) {
            return NULL;
        }

        /* whatever the backend named it, never show a password */
        name = fg_cli_ledger_redact(src);
        if (name == NULL) {
            fg_cli_ledger_close(l);
            fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
            return NULL;
        }
        free(l->name);
        l->name = name;
        return l;
    }

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "\"%s\" is not a tenant id", tenant);
        return NULL;
    }

    fl = fg_cli_ledger_file_open(src, err);
    if (fl == NULL) {
        return NULL;
    }

    return fg_cli_ledger_new(&fg_cli_ledger_file_source, fl, tenant, src,
                             err);
}


/* Stop the reading: every later call fails the same way. */
static int
fg_cli_ledger_fail(fg_cli_ledger_t *l, fg_error_t *err)
{
    l->failed = 1;
    l->fail = *err;
    return -1;
}


/*
 * The tenant of the first record, when none was given, and its genesis.
 * FG_ERR_INVALID with err when it names none.
 */
static int
fg_cli_ledger_start(fg_cli_ledger_t *l, const json_t *rec, fg_error_t *err)
{
    const json_t  *t;

    t = json_object_get(rec, "tenant_id");
    if (!json_is_string(t) || json_string_length(t) > FG_TENANT_ID_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the first record names no tenant");
    }

    if (fg_ledger_genesis(l->h, json_string_value(t), json_string_length(t),
                          l->chain) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the tenant id is not valid");
    }

    strcpy(l->tenant, json_string_value(t));
    l->started = 1;
    return FG_OK;
}


/*
 * A row's record read strictly into *rec; for a source that has not
 * checked it, also that its bytes are canonical and envelope_hash their
 * sha256.
 */
static int
fg_cli_ledger_record(fg_cli_ledger_t *l, const fg_ledger_entry_t *row,
    json_t **rec, fg_error_t *err)
{
    unsigned char  md[FG_SHA256_LEN];

    if (l->src.record_checked) {
        *rec = l->src.record != NULL
               ? l->src.record(l->ctx, err)
               : fg_record_parse(l->jcs, row->record, row->record_len, err);
        return *rec != NULL ? FG_OK : FG_ERR_INVALID;
    }

    if (row->record == NULL || row->record_len == 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the row holds no record");
    }

    *rec = fg_record_parse_hashed(l->jcs, l->h, row->record, row->record_len,
                                  md, err);
    if (*rec == NULL) {
        return FG_ERR_INVALID;
    }

    if (memcmp(md, row->envelope_hash, FG_SHA256_LEN) != 0) {
        json_decref(*rec);
        *rec = NULL;
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "envelope_hash is not the sha256 of the record");
    }

    /* the canonical bytes hash to it: the stored ones must be those */
    if (fg_sha256(row->record, row->record_len, md) != FG_OK
        || memcmp(md, row->envelope_hash, FG_SHA256_LEN) != 0)
    {
        json_decref(*rec);
        *rec = NULL;
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record's bytes are not its canonical form");
    }

    return FG_OK;
}


int
fg_cli_ledger_next(fg_cli_ledger_t *l, fg_cli_ledger_entry_t *e,
    fg_error_t *err)
{
    fg_ledger_entry_t   row;
    fg_ledger_facts_t   facts;
    json_t             *rec;
    uint64_t            line;
    int                 got;

    if (l->failed) {
        *err = l->fail;
        return -1;
    }

    json_decref(l->value);
    l->value = NULL;

    line = 0;
    got = l->src.next(l->ctx, &row, &line, err);

    l->where_seq = l->seq + 1;
    l->where_line = line;

    if (got == 0) {
        l->where_seq = l->seq;
        return 0;
    }
    if (got < 0) {
        return fg_cli_ledger_fail(l, err);
    }

    /* from here on the entry has a seq of its own: findings name it */
    l->where_seq = row.seq;

    if (fg_cli_ledger_record(l, &row, &rec, err) != FG_OK) {
        return fg_cli_ledger_fail(l, err);
    }

    if (!l->started && fg_cli_ledger_start(l, rec, err) != FG_OK) {
        json_decref(rec);
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_ledger_next(l->h, l->seq, l->chain, &row, err) != FG_OK) {
        json_decref(rec);
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_hashset_get(&l->seen, row.envelope_hash) >= 0) {
        json_decref(rec);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "this envelope_hash is in the ledger already");
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_ledger_check(l->records, rec, l->tenant, &facts, err)
        != FG_LEDGER_OK
        || fg_ledger_link_ok(&facts,
               facts.has_link ? fg_hashset_get(&l->seen, facts.link) : -1,
               err) != FG_LEDGER_OK)
    {
        json_decref(rec);
        err->code = FG_ERR_INVALID;
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_hashset_put(&l->seen, row.envelope_hash, (int) facts.type)
        != FG_OK)
    {
        json_decref(rec);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return fg_cli_ledger_fail(l, err);
    }

    memcpy(l->chain, row.chain, FG_SHA256_LEN);
    l->seq = row.seq;
    l->value = rec;

    e->seq = row.seq;
    e->line = line;
    memcpy(e->chain, row.chain, FG_SHA256_LEN);
    memcpy(e->envelope_hash, row.envelope_hash, FG_SHA256_LEN);
    e->record = row.record;
    e->record_len = row.record_len;
    e->value = rec;
    e->type = facts.type;

    return 1;
}


void
fg_cli_ledger_where(const fg_cli_ledger_t *l, uint64_t *seq, uint64_t *line)
{
    if (seq != NULL) {
        *seq = l->where_seq;
    }
    if (line != NULL) {
        *line = l->where_line;
    }
}


const char *
fg_cli_ledger_tenant(const fg_cli_ledger_t *l)
{
    return l->tenant[0] != '\0' ? l->tenant : NULL;
}


uint64_t
fg_cli_ledger_head(const fg_cli_ledger_t *l,
    unsigned char chain[FG_SHA256_LEN])
{
    if (chain != NULL) {
        memcpy(chain, l->chain, FG_SHA256_LEN);
    }
    return l->seq;
}


int
fg_cli_ledger_type_of(const fg_cli_ledger_t *l,
    const unsigned char md[FG_SHA256_LEN])
{
    return fg_hashset_get(&l->seen, md);
}


const char *
fg_cli_ledger_name(const fg_cli_ledger_t *l)
{
    return l->name;
}


int
fg_cli_ledger_checkpoints(fg_cli_ledger_t *l, fg_cli_ledger_note_f each,
    void *arg, fg_error_t *err)
{
    if (l->src.checkpoints == NULL) {
        return FG_OK;
    }
    return l->src.checkpoints(l->ctx, each, arg, err);
}


void
fg_cli_ledger_close(fg_cli_ledger_t *l)
{
    if (l == NULL) {
        return;
    }

    if (l->src.close != NULL) {
        l->src.close(l->ctx);
    }
    json_decref(l->value);
    fg_hashset_free(&l->seen);
    fg_sha256_free(l->h);
    fg_jcs_free(l->jcs);
    fg_records_free(l->records);
    free(l->name);
    free(l);
}

/*
 * cmd_export.c -- `foxgov export --trace ID LEDGER`: every record of one
 * trace, with its seq, chain and envelope_hash, and what an auditor needs
 * to tie them to a signed checkpoint without the ledger, as one canonical
 * JSON (RFC 8785) evidence bundle (docs/ledger.md, "Evidence bundles"):
 * the chain before the first exported entry, the envelope_hash of every
 * entry from there to the anchor, and the anchor (a checkpoint from
 * --checkpoints DIR, one of the head signed now with --key, or the
 * unsigned head).  `foxgov verify --bundle` checks a bundle offline
 * (cmd_verify.c, which holds the same format constants).
 *
 * The ledger is read through the reader (cli_ledger.h), so a ledger that
 * does not verify gives no bundle; the checkpoints of DIR are checked
 * against it as `foxgov verify --checkpoints` does, but for their
 * signature, which is the auditor's to check with their trusted keys.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_checkpoints.h"
#include "cli_ledger.h"
#include "fg_checkpoint.h"

/* The bundle's format (cmd_verify.c checks the same). */
#define FG_EXPORT_FORMAT       "foxgov-evidence-bundle"
#define FG_EXPORT_VERSION      1
#define FG_EXPORT_ENTRIES_MAX  (1u << 16)     /* records of one trace */
#define FG_EXPORT_HASHES_MAX   (1u << 20)     /* envelope_hashes listed */
#define FG_EXPORT_DEPTH        (FG_JCS_DEFAULT_MAX_DEPTH + 4)

/* The most checkpoints read from DIR (a few dozen bytes each, and a note). */

/* One exported entry. */
typedef struct {
    uint64_t        seq;
    unsigned char   chain[FG_SHA256_LEN];
    unsigned char   envelope_hash[FG_SHA256_LEN];
    json_t         *record;
} fg_export_entry_t;

/* A checkpoint of DIR: read, named for its size, not yet trusted. */
typedef struct {
    const char         *trace;

    fg_export_entry_t  *v;          /* the trace's entries, in seq order */
    size_t              n;
    size_t              cap;

    unsigned char       before[FG_SHA256_LEN];  /* chain before v[0] */
    unsigned char       prev[FG_SHA256_LEN];    /* chain before the next */
    unsigned char      *hashes;     /* envelope hashes from v[0].seq */
    size_t              nhashes;
    size_t              hcap;

    fg_cli_cps_t        cps;        /* DIR's, sorted by size */
    size_t              next_cp;

    fg_sha256_t        *h;
} fg_export_t;


static void
fg_export_help(void)
{
    printf("usage: foxgov export --trace TRACE_ID LEDGER [--tenant T] "
           "[--checkpoints DIR]\n"
           "                     [--key FILE [--kid K]] [-o FILE]\n"
           "\n"
           "Writes every record of the trace, with its seq, chain and "
           "envelope_hash, as\none canonical JSON evidence bundle an "
           "auditor verifies offline (foxgov\nverify --bundle; "
           "docs/ledger.md, \"Evidence bundles\").  The ledger is read\n"
           "as foxgov verify reads it: nothing is written unless it "
           "verifies.\n"
           "\n"
           "--trace ID         the trace: 32 lowercase hex digits, not all "
           "zero\n"
           "--tenant T         the ledger's tenant (default: its first "
           "record's)\n"
           "--checkpoints DIR  anchor the bundle at the smallest checkpoint "
           "of\n"
           "                   DIR/*.checkpoint at or after the trace's last "
           "seq\n"
           "--key FILE         otherwise sign a checkpoint of the head now "
           "with this\n"
           "                   Ed25519 key (PEM or JWKS); --kid K picks "
           "one\n"
           "-o FILE            write the bundle to FILE and print a summary "
           "(default:\n"
           "                   the bundle on stdout)\n"
           "\n"
           "Without a checkpoint the bundle is anchored at the unsigned "
           "head\n(\"checkpoint\": null).\n"
           "Exit status: 0 written, 1 the ledger does not verify or holds "
           "no record of\nthe trace, 2 usage or a file that cannot be read "
           "or written.\n");
}


/* 1 if s is a trace id: 32 lowercase hex digits, not all zero. */
static int
fg_export_trace_valid(const char *s)
{
    size_t  i;
    int     nonzero;

    if (strlen(s) != FG_TRACE_ID_LEN) {
        return 0;
    }

    nonzero = 0;
    for (i = 0; i < FG_TRACE_ID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
        nonzero |= s[i] != '0';
    }

    return nonzero;
}


static void
fg_export_free(fg_export_t *x)
{
    size_t  i;

    for (i = 0; i < x->n; i++) {
        json_decref(x->v[i].record);
    }
    fg_cli_cps_free(&x->cps);
    free(x->v);
    free(x->hashes);
    fg_sha256_free(x->h);
}


/* ------------------------------------------------------- checkpoints */

/* 1 if every checkpoint is of tenant t; else says which is not. */
static int
fg_cli_cp_tenant(const fg_export_t *x, const fg_cli_ledger_t *l)
{
    const char  *t;
    size_t       i;

    t = fg_cli_ledger_tenant(l);

    for (i = 0; i < x->cps.n; i++) {
        if (t == NULL || strcmp(x->cps.v[i].tenant, t) != 0) {
            fg_cli_error("export", "%s: checkpoint at seq %llu (%s): of "
                         "tenant %s, not of this ledger's tenant %s",
                         fg_cli_ledger_name(l),
                         (unsigned long long) x->cps.v[i].size,
                         x->cps.v[i].name, x->cps.v[i].tenant,
                         t != NULL ? t : "(none)");
            return 0;
        }
    }

    return 1;
}


/*
 * The checkpoints at e's seq: each hash must be e's chain.  1 if so;
 * else says which is not (as foxgov verify says it).
 */
static int
fg_export_cp_check(fg_export_t *x, const fg_cli_ledger_t *l,
    const fg_cli_ledger_entry_t *e)
{
    fg_cli_cp_t  *cp;

    for ( ; x->next_cp < x->cps.n && x->cps.v[x->next_cp].size == e->seq;
         x->next_cp++)
    {
        cp = &x->cps.v[x->next_cp];
        if (memcmp(cp->hash, e->chain, FG_SHA256_LEN) == 0) {
            continue;
        }
        if (e->line == 0) {
            fg_cli_error("export", "%s: seq %llu: chain is not the hash of "
                         "its checkpoint (%s)", fg_cli_ledger_name(l),
                         (unsigned long long) e->seq, cp->name);
        } else {
            fg_cli_error("export", "%s: seq %llu (line %llu): chain is not "
                         "the hash of its checkpoint (%s)",
                         fg_cli_ledger_name(l), (unsigned long long) e->seq,
                         (unsigned long long) e->line, cp->name);
        }
        return 0;
    }

    return 1;
}


/* ------------------------------------------------------- collecting */

/* 1 if the record's trace.trace_id is the one exported. */
static int
fg_export_of_trace(const fg_export_t *x, const json_t *record)
{
    const char  *id;

    id = json_string_value(json_object_get(json_object_get(record, "trace"),
                                           "trace_id"));
    return id != NULL && strcmp(id, x->trace) == 0;
}


/*
 * Keep e as an exported entry.  Its record is put in the bundle as a
 * jansson value, so its canonical form must be the ledger's bytes again
 * (an entry whose would not cannot be verified from the bundle).
 */
static int
fg_export_entry(fg_export_t *x, const fg_cli_ledger_entry_t *e,
    fg_error_t *err)
{
    unsigned char       stage[FG_SINK_STAGE];
    fg_export_entry_t  *v;
    fg_sink_t           sink;
    fg_same_t           same;
    size_t              cap;
    int                 rc;

    fg_sink_to_same(&sink, &same, e->record, e->record_len, stage,
                    sizeof(stage));
    rc = fg_jcs_canonicalize_json(e->value, FG_EXPORT_DEPTH, &sink, err);
    if (rc != FG_OK || same.at != e->record_len) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record's canonical form cannot be written "
                            "again as the ledger holds it");
    }

    if (x->n == x->cap) {
        if (x->cap == FG_EXPORT_ENTRIES_MAX) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "trace %s has more than %u records: too "
                                "many for one bundle", x->trace,
                                FG_EXPORT_ENTRIES_MAX);
        }
        cap = x->cap ? x->cap * 2 : 16;
        v = realloc(x->v, cap * sizeof(*v));
        if (v == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        x->v = v;
        x->cap = cap;
    }

    v = &x->v[x->n++];
    v->seq = e->seq;
    memcpy(v->chain, e->chain, FG_SHA256_LEN);
    memcpy(v->envelope_hash, e->envelope_hash, FG_SHA256_LEN);
    v->record = json_incref(e->value);

    return FG_OK;
}


/*
 * List e's envelope_hash (from the first exported entry on), at most
 * FG_EXPORT_HASHES_MAX: those after that are not kept, and an anchor or
 * an entry of the trace beyond them is refused (fg_export_too_far).
 */
static int
fg_export_hash(fg_export_t *x, const fg_cli_ledger_entry_t *e,
    fg_error_t *err)
{
    unsigned char  *p;
    size_t          cap;

    if (x->nhashes == FG_EXPORT_HASHES_MAX) {
        return FG_OK;
    }

    if (x->nhashes == x->hcap) {
        cap = x->hcap ? x->hcap * 2 : 1024;
        p = realloc(x->hashes, cap * FG_SHA256_LEN);
        if (p == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        x->hashes = p;
        x->hcap = cap;
    }

    memcpy(x->hashes + x->nhashes * FG_SHA256_LEN, e->envelope_hash,
           FG_SHA256_LEN);
    x->nhashes++;

    return FG_OK;
}


/* 1 (and says so) if seq is beyond what one bundle lists from v[0]. */
static int
fg_export_too_far(const fg_export_t *x, uint64_t seq, const char *what)
{
    if (seq - x->v[0].seq < FG_EXPORT_HASHES_MAX) {
        return 0;
    }

    fg_cli_error("export", "%s at seq %llu is more than %u entries after "
                 "the trace's first record (seq %llu): too far for one "
                 "bundle%s", what, (unsigned long long) seq,
                 FG_EXPORT_HASHES_MAX, (unsigned long long) x->v[0].seq,
                 what[0] == 'a' ? " (give --checkpoints with a closer "
                                  "checkpoint)" : "");
    return 1;
}


/*
 * Read the whole ledger: every entry checked by the reader, the
 * checkpoints of DIR at their seq, the trace's entries and the hashes
 * from its first.  Returns FG_EXIT_OK, or prints why and returns the
 * exit status.
 */
static int
fg_export_read(fg_export_t *x, fg_cli_ledger_t *l, const char *tenant)
{
    fg_cli_ledger_entry_t  e;
    fg_error_t             err;
    const char            *t;
    int                    got;

    if (tenant != NULL && !fg_cli_cp_tenant(x, l)) {
        return FG_EXIT_REFUSED;
    }

    while ((got = fg_cli_ledger_next(l, &e, &err)) > 0) {

        if (e.seq == 1) {
            t = fg_cli_ledger_tenant(l);
            if (tenant == NULL && !fg_cli_cp_tenant(x, l)) {
                return FG_EXIT_REFUSED;
            }
            if (fg_ledger_genesis(x->h, t, strlen(t), x->prev) != FG_OK) {
                fg_cli_error("export", "SHA-256 failed");
                return FG_EXIT_USAGE;
            }
        }

        if (!fg_export_cp_check(x, l, &e)) {
            return FG_EXIT_REFUSED;
        }

        if (fg_export_of_trace(x, e.value)) {
            if (x->n > 0 && fg_export_too_far(x, e.seq, "the record")) {
                return FG_EXIT_REFUSED;
            }
            if (x->n == 0) {
                memcpy(x->before, x->prev, FG_SHA256_LEN);
            }
            if (fg_export_entry(x, &e, &err) != FG_OK) {
                break;
            }
        }

        if (x->n > 0 && fg_export_hash(x, &e, &err) != FG_OK) {
            break;
        }

        memcpy(x->prev, e.chain, FG_SHA256_LEN);
    }

    if (got > 0) {
        /* stopped by the exporter, not the reader: name the seq too */
        if (err.code == FG_ERR_NOMEM) {
            fg_cli_error("export", "out of memory");
            return FG_EXIT_USAGE;
        }
        fg_cli_error("export", "%s: seq %llu: %s", fg_cli_ledger_name(l),
                     (unsigned long long) e.seq, err.msg);
        return FG_EXIT_REFUSED;
    }

    if (got < 0) {
        return fg_cli_ledger_stopped("export", l, &err);
    }

    return FG_EXIT_OK;
}


/* ---------------------------------------------------------- the bundle */

/* The anchor: where the listed hashes end and what vouches for it. */
typedef struct {
    uint64_t              seq;
    unsigned char         chain[FG_SHA256_LEN];
    const unsigned char  *note;     /* the signed note, or NULL */
    size_t                note_len;
    const char           *from;     /* the checkpoint's file, or NULL */
} fg_export_anchor_t;


static json_t *
fg_export_hex(const unsigned char md[FG_SHA256_LEN])
{
    char  hex[FG_SHA256_HEX_LEN + 1];

    fg_hex_sha256(md, hex);
    return json_stringn(hex, FG_SHA256_HEX_LEN);
}


static json_t *
fg_export_entries(const fg_export_t *x)
{
    json_t  *a, *o;
    size_t   i;

    a = json_array();

    for (i = 0; a != NULL && i < x->n; i++) {
        o = json_pack("{s:o, s:o, s:O, s:I}",
                      "chain", fg_export_hex(x->v[i].chain),
                      "envelope_hash", fg_export_hex(x->v[i].envelope_hash),
                      "record", x->v[i].record,
                      "seq", (json_int_t) x->v[i].seq);
        if (json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }

    return a;
}


/* The envelope hashes from v[0].seq to the anchor's seq. */
static json_t *
fg_export_hashes(const fg_export_t *x, uint64_t to)
{
    json_t  *a;
    size_t   i, n;

    n = (size_t) (to - x->v[0].seq + 1);
    a = json_array();

    for (i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a,
                fg_export_hex(x->hashes + i * FG_SHA256_LEN)) != 0)
        {
            json_decref(a);
            return NULL;
        }
    }

    return a;
}


/* The bundle without its bundle_id; NULL when out of memory. */
static json_t *
fg_export_json(const fg_export_t *x, const char *tenant,
    const fg_export_anchor_t *a)
{
    json_t  *cp;

    cp = a->note != NULL ? json_stringn((const char *) a->note, a->note_len)
                         : json_null();
    if (cp == NULL) {
        return NULL;
    }

    return json_pack("{s:{s:o, s:I, s:s}, s:o, s:o, s:o, s:o, s:s, s:s, "
                     "s:s, s:i}",
                     "anchor",
                     "chain", fg_export_hex(a->chain),
                     "seq", (json_int_t) a->seq,
                     "type", a->note != NULL ? "checkpoint" : "unsigned_head",
                     "chain_before", fg_export_hex(x->before),
                     "checkpoint", cp,
                     "entries", fg_export_entries(x),
                     "envelope_hashes", fg_export_hashes(x, a->seq),
                     "format", FG_EXPORT_FORMAT,
                     "tenant", tenant,
                     "trace_id", x->trace,
                     "version", FG_EXPORT_VERSION);
}


/*
 * The bundle's canonical bytes into out (at most FG_CLI_INPUT_MAX, what
 * foxgov verify reads, with the final newline), its bundle_id into id:
 * the sha256 of the canonical form without bundle_id.  Returns FG_OK,
 * or FG_ERR_LIMIT / FG_ERR_NOMEM / another error with err set.
 */
static int
fg_export_bytes(json_t *b, fg_buffer_t *out, char id[FG_SHA256_HEX_LEN + 1],
    fg_error_t *err)
{
    unsigned char   stage[FG_SINK_STAGE], md[FG_SHA256_LEN];
    fg_sha256_t    *h;
    fg_sink_t       sink;
    int             rc;

    fg_buffer_init(out, FG_CLI_INPUT_MAX);

    h = fg_sha256_new();
    if (h == NULL || fg_sha256_init(h) != FG_OK) {
        fg_sha256_free(h);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    fg_sink_to_sha256(&sink, h, stage, sizeof(stage));
    rc = fg_jcs_canonicalize_json(b, FG_EXPORT_DEPTH, &sink, err);
    if (rc == FG_OK && fg_sha256_final(h, md) != FG_OK) {
        rc = fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET, "SHA-256 failed");
    }
    fg_sha256_free(h);
    if (rc != FG_OK) {
        return rc;
    }

    fg_hex_sha256(md, id);
    if (json_object_set_new(b, "bundle_id", json_string(id)) != 0) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    fg_sink_to_buffer(&sink, out, stage, sizeof(stage));
    rc = fg_jcs_canonicalize_json(b, FG_EXPORT_DEPTH, &sink, err);
    rc = rc ? rc : fg_buffer_append(out, "\n", 1);
    if (rc == FG_ERR_LIMIT) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "the bundle would be larger than 256 MiB");
    }
    if (rc != FG_OK && err->msg[0] == '\0') {
        fg_error_set(err, rc, FG_NO_OFFSET, "%s", fg_strerror(rc));
    }
    return rc;
}


/*
 * Write b to path: a temporary file beside it, fsynced, renamed over it.
 * Prints why and returns FG_EXIT_USAGE on failure.
 */
static int
fg_export_write(const char *path, const fg_buffer_t *b)
{
    char   tmp[4096];
    FILE  *f;
    int    ok;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
                          (long) getpid()) >= sizeof(tmp))
    {
        fg_cli_error("export", "%s: path too long", path);
        return FG_EXIT_USAGE;
    }

    f = fopen(tmp, "wbx");
    if (f == NULL) {
        fg_cli_error("export", "%s: %s", tmp, strerror(errno));
        return FG_EXIT_USAGE;
    }

    ok = fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0
         && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;

    if (!ok) {
        fg_cli_error("export", "%s: %s", path, strerror(errno));
        (void) unlink(tmp);
        return FG_EXIT_USAGE;
    }

    return FG_EXIT_OK;
}


/*
 * The anchor: the smallest checkpoint of DIR at or after the last
 * exported seq; else, with key, a checkpoint of the head signed now into
 * note; else the unsigned head.  Prints why and returns the exit status
 * on failure.
 */
static int
fg_export_anchor(const fg_export_t *x, fg_cli_ledger_t *l,
    const fg_jwk_t *key, fg_buffer_t *note, fg_export_anchor_t *a)
{
    fg_error_t  err;
    uint64_t    last;
    size_t      i;

    memset(a, 0, sizeof(*a));
    last = x->v[x->n - 1].seq;

    for (i = 0; i < x->cps.n; i++) {
        if (x->cps.v[i].size >= last) {
            a->seq = x->cps.v[i].size;
            memcpy(a->chain, x->cps.v[i].hash, FG_SHA256_LEN);
            a->note = x->cps.v[i].note;
            a->note_len = x->cps.v[i].note_len;
            a->from = x->cps.v[i].name;
            break;
        }
    }

    if (a->note == NULL) {
        a->seq = fg_cli_ledger_head(l, a->chain);
    }

    if (fg_export_too_far(x, a->seq, "an anchor")) {
        return FG_EXIT_REFUSED;
    }

    if (a->note == NULL && key != NULL) {
        if (fg_checkpoint_sign(key, fg_cli_ledger_tenant(l), a->seq,
                               a->chain, note, &err) != FG_OK)
        {
            fg_cli_error("export", "%s", err.msg);
            return FG_EXIT_USAGE;
        }
        a->note = note->data;
        a->note_len = note->len;
    }

    return FG_EXIT_OK;
}


/* Make the bundle and write it (to path, or stdout). */
static int
fg_export_out(const fg_export_t *x, fg_cli_ledger_t *l,
    const fg_export_anchor_t *a, const fg_jwk_t *key, const char *path)
{
    char         id[FG_SHA256_HEX_LEN + 1];
    json_t      *b;
    fg_buffer_t  out;
    fg_error_t   err;
    int          rc;

    b = fg_export_json(x, fg_cli_ledger_tenant(l), a);
    if (b == NULL) {
        fg_cli_error("export", "out of memory");
        return FG_EXIT_USAGE;
    }

    memset(&err, 0, sizeof(err));
    rc = fg_export_bytes(b, &out, id, &err);
    json_decref(b);

    if (rc != FG_OK) {
        fg_cli_error("export", "%s", err.msg);
        fg_buffer_free(&out);
        return rc == FG_ERR_LIMIT ? FG_EXIT_REFUSED : FG_EXIT_USAGE;
    }

    if (path == NULL) {
        rc = fwrite(out.data, 1, out.len, stdout) == out.len
             && fflush(stdout) == 0 ? FG_EXIT_OK : FG_EXIT_USAGE;
        fg_buffer_free(&out);
        return rc;
    }

    rc = fg_export_write(path, &out);
    fg_buffer_free(&out);
    if (rc != FG_EXIT_OK) {
        return rc;
    }

    printf("%s: bundle of tenant %s, trace %s: %zu record%s (seq "
           "%llu..%llu), ", path, fg_cli_ledger_tenant(l), x->trace, x->n,
           x->n == 1 ? "" : "s", (unsigned long long) x->v[0].seq,
           (unsigned long long) x->v[x->n - 1].seq);
    if (a->from != NULL) {
        printf("anchored by checkpoint at seq %llu (%s)",
               (unsigned long long) a->seq, a->from);
    } else if (key != NULL) {
        printf("anchored by checkpoint at seq %llu signed now by %s",
               (unsigned long long) a->seq, fg_jwk_kid(key));
    } else {
        printf("not anchored by a signed checkpoint (the head at seq %llu)",
               (unsigned long long) a->seq);
    }
    printf(", bundle_id %s\n", id);

    return FG_EXIT_OK;
}


/* ------------------------------------------------------------- export */

int
fg_cmd_export(int argc, char **argv)
{
    const char          *path, *trace, *tenant, *dir, *keyfile, *kid, *out;
    const fg_jwk_t      *key;
    char                *shown;
    fg_keyset_t         *set;
    fg_cli_ledger_t     *l;
    fg_export_t          x;
    fg_export_anchor_t   a;
    fg_buffer_t          note;
    fg_error_t           err;
    uint64_t             head;
    uint32_t             id;
    int                  i, rc;

    if (fg_cli_wants_help(argc, argv)) {
        fg_export_help();
        return FG_EXIT_OK;
    }

    path = trace = tenant = dir = keyfile = kid = out = NULL;

    for (i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--trace") == 0) {
            trace = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--tenant") == 0) {
            tenant = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--checkpoints") == 0) {
            dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--key") == 0) {
            keyfile = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--kid") == 0) {
            kid = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "-o") == 0) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }

    if (path == NULL || trace == NULL || (kid != NULL && keyfile == NULL)) {
        fg_cli_error("export", "expected --trace TRACE_ID LEDGER [--tenant "
                     "T] [--checkpoints DIR] [--key FILE [--kid K]] [-o "
                     "FILE] (try foxgov export --help)");
        return FG_EXIT_USAGE;
    }

    if (!fg_export_trace_valid(trace)) {
        fg_cli_error("export", "--trace \"%s\" is not a trace id (32 "
                     "lowercase hex digits, not all zero)", trace);
        return FG_EXIT_USAGE;
    }

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("export", "--tenant \"%s\" is not a tenant id", tenant);
        return FG_EXIT_USAGE;
    }

    memset(&x, 0, sizeof(x));
    x.trace = trace;
    set = NULL;
    key = NULL;
    l = NULL;
    fg_buffer_init(&note, FG_CHECKPOINT_NOTE_MAX);

    /* a key that cannot sign checkpoints is refused before any reading */
    if (keyfile != NULL) {
        key = fg_cli_signing_key("export", keyfile, kid, &set);
        if (key == NULL) {
            rc = FG_EXIT_USAGE;
            goto done;
        }
        if (fg_checkpoint_key_id(key, &id, &err) != FG_OK) {
            fg_cli_error("export", "%s: %s", keyfile, err.msg);
            rc = FG_EXIT_USAGE;
            goto done;
        }
    }

    x.h = fg_sha256_new();
    if (x.h == NULL) {
        fg_cli_error("export", "out of memory");
        rc = FG_EXIT_USAGE;
        goto done;
    }

    /* checkpoints first: none can then be of a head the ledger lacks */
    if (dir != NULL && fg_cli_cps_read_dir(&x.cps, dir, &err) != FG_OK) {
        shown = fg_cli_ledger_redact(path);
        if (err.code == FG_ERR_INVALID || err.code == FG_ERR_LIMIT) {
            fg_cli_error("export", "%s: %s", shown ? shown : "LEDGER",
                         err.msg);
            rc = FG_EXIT_REFUSED;
        } else {
            fg_cli_error("export", "%s", err.msg);
            rc = FG_EXIT_USAGE;
        }
        free(shown);
        goto done;
    }
    fg_cli_cps_sort(&x.cps);

    l = fg_cli_ledger_open(path, tenant, &err);
    if (l == NULL) {
        shown = fg_cli_ledger_redact(path);
        fg_cli_error("export", "%s: %s", shown ? shown : "LEDGER", err.msg);
        free(shown);
        rc = FG_EXIT_USAGE;
        goto done;
    }

    rc = fg_export_read(&x, l, tenant);
    if (rc != FG_EXIT_OK) {
        goto done;
    }

    head = fg_cli_ledger_head(l, NULL);
    if (x.next_cp < x.cps.n) {
        fg_cli_error("export", "%s: the ledger ends at seq %llu, below its "
                     "checkpoint at seq %llu (%s): entries were removed",
                     fg_cli_ledger_name(l), (unsigned long long) head,
                     (unsigned long long) x.cps.v[x.cps.n - 1].size,
                     x.cps.v[x.cps.n - 1].name);
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    if (x.n == 0) {
        fg_cli_error("export", "no record of trace %s in %s", trace,
                     fg_cli_ledger_name(l));
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    rc = fg_export_anchor(&x, l, key, &note, &a);
    if (rc == FG_EXIT_OK) {
        rc = fg_export_out(&x, l, &a, key, out);
    }

done:

    fg_cli_ledger_close(l);
    fg_export_free(&x);
    fg_buffer_free(&note);
    fg_keyset_free(set);
    return rc;
}

/*
 * cmd_verify.c -- `foxgov verify`: check a tenant's ledger (docs/ledger.md)
 * through the ledger reader (cli_ledger.h), which checks each entry: its
 * line canonical with its envelope_hash right, seq dense from 1, the chain
 * unbroken from the tenant's genesis, each record schema-valid and the
 * tenant's, no envelope_hash twice, and each decision's AuthContext and
 * each call record's decision earlier in the ledger.
 *
 * With signed checkpoints (--checkpoints DIR, --trusted-key; or those a
 * PostgreSQL ledger keeps): each must be a trusted key's signature for
 * this tenant, the chain at each checkpoint's seq must be its hash, and
 * the ledger may not end below the largest.  Prints a summary, or the
 * first place a check fails.
 *
 * With --bundle FILE: an evidence bundle of `foxgov export` checked
 * offline, without the ledger (the "bundles" section below).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_checkpoints.h"
#include "cli_ledger.h"
#include "fg_checkpoint.h"



static void
fg_verify_help(void)
{
    printf("usage: foxgov verify LEDGER [--tenant T] [--checkpoints DIR "
           "--trusted-key JWKS]\n"
           "       foxgov verify --bundle FILE [--tenant T] [--trusted-key "
           "JWKS]\n"
           "\n"
           "Checks a tenant's ledger file (docs/ledger.md), line by line: "
           "each line\ncanonical and its envelope_hash the sha256 of its "
           "record; seq 1, 2, 3, ...\nwithout a gap; the chain unbroken "
           "from the tenant's genesis; each record\nschema-valid and of the "
           "tenant (--tenant, or the first record's); no\nenvelope_hash "
           "twice; each decision's AuthContext and each call record's\n"
           "decision earlier in the ledger.\n"
           "\n"
           "--checkpoints DIR    the signed checkpoints (DIR/*.checkpoint): "
           "each must be\n"
           "                     signed by a key of --trusted-key, for this "
           "tenant; the\n"
           "                     chain at its seq must be its hash, and the "
           "ledger may\n"
           "                     not end below it\n"
           "--trusted-key FILE   the keys checkpoints must be signed with "
           "(JWKS or PEM;\n"
           "                     a PEM key's kid is its file name less "
           "\".pem\")\n"
           "\n"
           "Prints a summary line when every check holds; otherwise one "
           "line naming\nthe first bad seq (and line) and why.\n"
           "\n"
           "foxgov verify --bundle FILE [--tenant T] [--trusted-key JWKS]\n"
           "\n"
           "Checks an evidence bundle of foxgov export offline: canonical, "
           "each record\nschema-valid, of the tenant and the trace and its "
           "envelope_hash right, the\nchain recomputed from chain_before "
           "through envelope_hashes (each entry's\nhash and chain at its "
           "seq) to the anchor, the checkpoint of the tenant at\nthe anchor "
           "and signed by a key of --trusted-key (required when the bundle"
           "\nhas a checkpoint; with it, a bundle without one is refused), "
           "the links\nbetween the records, the bundle_id.\n"
           "Exit status: 0 verified, 1 a check failed, 2 usage or an "
           "unreadable file.\n");
}


/* ------------------------------------------------------- checkpoints */

/* fg_checkpoint's reason without its "checkpoint: " (we say it). */
static const char *
fg_verify_why(const char *msg)
{
    return strncmp(msg, "checkpoint: ", 12) == 0 ? msg + 12 : msg;
}


/*
 * The trusted keys in path (JWKS, or a PEM whose kid is its file name
 * less ".pem"), with at least one Ed25519 key.  Prints why and returns
 * NULL otherwise.
 */
static fg_keyset_t *
fg_verify_trusted(const char *path)
{
    const char   *base;
    fg_keyset_t  *set;
    fg_error_t    err;
    char          kid[FG_JWK_KID_MAX + 1];
    size_t        i, n;

    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".pem") == 0) {
        n -= 4;
    }
    snprintf(kid, sizeof(kid), "%.*s", (int) n, base);

    set = fg_keyset_load_file(path, kid, &err);
    if (set == NULL) {
        fg_cli_error("verify", "--trusted-key %s: %s", path, err.msg);
        return NULL;
    }

    for (i = 0; i < fg_keyset_count(set); i++) {
        if (fg_jwk_alg(fg_keyset_get(set, i)) == FG_JWS_EDDSA) {
            return set;
        }
    }

    fg_cli_error("verify", "--trusted-key %s: no Ed25519 key (checkpoints "
                 "are signed with Ed25519)", path);
    fg_keyset_free(set);
    return NULL;
}


/* Print a checkpoint finding or failure; the exit status it means. */
static int
fg_verify_cp_failed(const char *ledger, const fg_error_t *err)
{
    if (err->code == FG_ERR_INVALID || err->code == FG_ERR_LIMIT) {
        fg_cli_error("verify", "%s: %s", ledger, err->msg);
        return FG_EXIT_REFUSED;
    }
    fg_cli_error("verify", "%s", err->msg);
    return FG_EXIT_USAGE;
}


/* 1 if every checkpoint is of the ledger's tenant; else says which not. */
static int
fg_verify_tenant(const fg_cli_ledger_t *l, const fg_cli_cps_t *cps)
{
    const char  *t;
    size_t       i;

    t = fg_cli_ledger_tenant(l);

    for (i = 0; i < cps->n; i++) {
        if (t == NULL || strcmp(cps->v[i].tenant, t) != 0) {
            fg_cli_error("verify", "%s: checkpoint at seq %llu (%s): of "
                         "tenant %s, not of this ledger's tenant %s",
                         fg_cli_ledger_name(l),
                         (unsigned long long) cps->v[i].size,
                         cps->v[i].name, cps->v[i].tenant,
                         t != NULL ? t : "(none)");
            return 0;
        }
    }

    return 1;
}


/* ------------------------------------------------------------ bundles */

/*
 * `foxgov verify --bundle FILE`: an evidence bundle written by foxgov
 * export (cmd_export.c, which writes the same format; docs/ledger.md,
 * "Evidence bundles") checked offline: canonical JSON of the documented
 * shape, every record strict, schema-valid, of the tenant and trace and
 * hashed to its envelope_hash, the chain recomputed from chain_before
 * through envelope_hashes (each entry's hash at its seq's place, its
 * chain on the way) to the anchor, the checkpoint of the tenant at the
 * anchor and signed by a trusted key, the links between the records,
 * and the bundle_id.
 */

#define FG_BUNDLE_FORMAT       "foxgov-evidence-bundle"
#define FG_BUNDLE_VERSION      1
#define FG_BUNDLE_ENTRIES_MAX  (1u << 16)     /* records of one trace */
#define FG_BUNDLE_HASHES_MAX   (1u << 20)     /* envelope_hashes listed */
#define FG_BUNDLE_DEPTH        (FG_JCS_DEFAULT_MAX_DEPTH + 4)
#define FG_BUNDLE_SEQ_MAX      9007199254740991ULL

/* A listed hash and its place, sorted by hash to be looked up. */
typedef struct {
    unsigned char  md[FG_SHA256_LEN];
    uint32_t       at;
} fg_bundle_hash_t;

/* A link from an entry to a record the bundle does not reach. */
typedef struct {
    uint64_t     seq;
    const char  *field;
} fg_bundle_out_t;

typedef struct {
    const char        *name;        /* the file, for messages */
    json_t            *doc;         /* the bundle as read */
    const json_t      *entries;
    const json_t      *hashes;

    fg_records_t      *records;
    fg_jcs_t          *jcs;         /* reads each record */
    fg_sha256_t       *h;
    fg_buffer_t        rec;         /* a record's canonical bytes */

    char               tenant[FG_TENANT_ID_MAX + 1];
    char               trace[FG_TRACE_ID_LEN + 1];
    unsigned char      before[FG_SHA256_LEN];
    unsigned char      anchor[FG_SHA256_LEN];
    uint64_t           anchor_seq;
    int                has_cp;
    fg_checkpoint_t    cp;

    uint64_t          *seqs;        /* of the entries, increasing */
    signed char       *types;       /* of the entries checked, else -1 */
    size_t             n;
    uint64_t           first;       /* the seq of envelope_hashes[0] */
    unsigned char     *list;        /* envelope_hashes, raw */
    size_t             nlist;

    /*
     * The listed hashes sorted, looked up in O(log n) whatever they are:
     * those of entries the bundle does not hold are anyone's choice, so
     * no table keyed on their bytes
     */
    fg_bundle_hash_t  *sorted;

    fg_bundle_out_t   *out;         /* links outside the bundle */
    size_t             nout;
} fg_bundle_t;


/* 1 if s[0..n) is a trace id: 32 lowercase hex digits, not all zero. */
static int
fg_bundle_trace_valid(const char *s, size_t n)
{
    size_t  i;
    int     nonzero;

    if (n != FG_TRACE_ID_LEN) {
        return 0;
    }

    nonzero = 0;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
        nonzero |= s[i] != '0';
    }

    return nonzero;
}


/* 64 lowercase hex digits into md: FG_OK, else FG_ERR_INVALID. */
static int
fg_bundle_hex(const json_t *v, unsigned char md[FG_SHA256_LEN])
{
    if (!json_is_string(v)
        || fg_unhex_sha256(json_string_value(v), json_string_length(v), md)
           != FG_OK)
    {
        return FG_ERR_INVALID;
    }
    return FG_OK;
}


/* A seq, 1 to 2^53-1, into *seq: FG_OK, else FG_ERR_INVALID. */
static int
fg_bundle_seq(const json_t *v, uint64_t *seq)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1
        || (uint64_t) json_integer_value(v) > FG_BUNDLE_SEQ_MAX)
    {
        return FG_ERR_INVALID;
    }
    *seq = (uint64_t) json_integer_value(v);
    return FG_OK;
}


/* 1 if o is an object of exactly the n members named. */
static int
fg_bundle_members(const json_t *o, const char *const *names, size_t n)
{
    size_t  i;

    if (!json_is_object(o) || json_object_size(o) != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (json_object_get(o, names[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}


/*
 * Read text[0..len) (one final "\n" allowed): canonical JSON, nested at
 * most FG_BUNDLE_DEPTH deep, into b->doc.
 */
static int
fg_bundle_load(fg_bundle_t *b, const unsigned char *text, size_t len,
    fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_jcs_t      *jcs;
    fg_sink_t      sink;
    fg_same_t      same;
    fg_error_t     why;
    int            rc;

    if (len > 0 && text[len - 1] == '\n') {
        len--;
    }

    jcs = fg_jcs_new(FG_BUNDLE_DEPTH);
    if (jcs == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    /* canonical: canonicalizing it gives back its own bytes */
    fg_sink_to_same(&sink, &same, text, len, stage, sizeof(stage));
    memset(&why, 0, sizeof(why));
    rc = fg_jcs_canonicalize(jcs, text, len, &sink, &why);

    if (rc == FG_ERR_MISMATCH || (rc == FG_OK && same.at != len)) {
        rc = fg_error_set(err, FG_ERR_INVALID, same.at,
                          "not in canonical form (at byte %zu)", same.at);
    } else if (rc == FG_ERR_NOMEM) {
        rc = fg_error_set(err, rc, FG_NO_OFFSET, "out of memory");
    } else if (rc != FG_OK) {
        rc = fg_error_set(err, FG_ERR_INVALID, why.offset,
                          "not JSON as a bundle must be: %s", why.msg);
    } else {
        b->doc = fg_jcs_tree_json(jcs, 0, &why);
        if (b->doc == NULL) {
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "cannot be read: %s", why.msg);
        }
    }

    fg_jcs_free(jcs);
    return rc;
}


/* The anchor and the checkpoint: consistent with each other. */
static int
fg_bundle_anchor(fg_bundle_t *b, fg_error_t *err)
{
    static const char *const  names[] = { "chain", "seq", "type" };
    const json_t             *a, *cp;
    const char               *type;
    fg_error_t                why;

    a = json_object_get(b->doc, "anchor");
    type = json_string_value(json_object_get(a, "type"));

    if (!fg_bundle_members(a, names, 3)
        || fg_bundle_hex(json_object_get(a, "chain"), b->anchor) != FG_OK
        || fg_bundle_seq(json_object_get(a, "seq"), &b->anchor_seq) != FG_OK
        || type == NULL
        || (strcmp(type, "checkpoint") != 0
            && strcmp(type, "unsigned_head") != 0))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "anchor is not {chain, seq, type} with type "
                            "checkpoint or unsigned_head");
    }

    cp = json_object_get(b->doc, "checkpoint");
    b->has_cp = strcmp(type, "checkpoint") == 0;

    if (!b->has_cp) {
        return json_is_null(cp) ? FG_OK
               : fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "the anchor is the unsigned head, but "
                              "checkpoint is not null");
    }

    if (!json_is_string(cp)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the anchor is a checkpoint, but checkpoint is "
                            "not a signed note");
    }

    if (fg_checkpoint_parse((const unsigned char *) json_string_value(cp),
                            json_string_length(cp), &b->cp, &why) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint: %s", fg_verify_why(why.msg));
    }

    if (strcmp(b->cp.tenant, b->tenant) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint at seq %llu: of tenant %s, not of "
                            "the bundle's tenant %s",
                            (unsigned long long) b->cp.size, b->cp.tenant,
                            b->tenant);
    }

    if (b->cp.size != b->anchor_seq
        || memcmp(b->cp.hash, b->anchor, FG_SHA256_LEN) != 0)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the anchor (seq %llu) is not the checkpoint's "
                            "seq %llu and hash",
                            (unsigned long long) b->anchor_seq,
                            (unsigned long long) b->cp.size);
    }

    return FG_OK;
}


/* The members besides entries and envelope_hashes. */
static int
fg_bundle_head(fg_bundle_t *b, fg_error_t *err)
{
    static const char *const  names[] = {
        "anchor", "bundle_id", "chain_before", "checkpoint", "entries",
        "envelope_hashes", "format", "tenant", "trace_id", "version"
    };
    const json_t             *v;
    unsigned char             md[FG_SHA256_LEN];

    if (!fg_bundle_members(b->doc, names, 10)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not an evidence bundle: an object of anchor, "
                            "bundle_id, chain_before, checkpoint, entries, "
                            "envelope_hashes, format, tenant, trace_id and "
                            "version");
    }

    v = json_object_get(b->doc, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), FG_BUNDLE_FORMAT)
        || !json_is_integer(json_object_get(b->doc, "version"))
        || json_integer_value(json_object_get(b->doc, "version"))
           != FG_BUNDLE_VERSION)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not a %s of version %d", FG_BUNDLE_FORMAT,
                            FG_BUNDLE_VERSION);
    }

    v = json_object_get(b->doc, "tenant");
    if (!json_is_string(v)
        || !fg_tenant_id_valid(json_string_value(v), json_string_length(v)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "tenant is not a tenant id");
    }
    strcpy(b->tenant, json_string_value(v));

    v = json_object_get(b->doc, "trace_id");
    if (!json_is_string(v)
        || !fg_bundle_trace_valid(json_string_value(v), json_string_length(v)))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "trace_id is not a trace id (32 lowercase hex "
                            "digits, not all zero)");
    }
    strcpy(b->trace, json_string_value(v));

    if (fg_bundle_hex(json_object_get(b->doc, "bundle_id"), md) != FG_OK
        || fg_bundle_hex(json_object_get(b->doc, "chain_before"), b->before)
           != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "bundle_id or chain_before is not 64 lowercase "
                            "hex digits");
    }

    b->entries = json_object_get(b->doc, "entries");
    b->hashes = json_object_get(b->doc, "envelope_hashes");
    if (!json_is_array(b->entries) || json_array_size(b->entries) == 0
        || json_array_size(b->entries) > FG_BUNDLE_ENTRIES_MAX
        || !json_is_array(b->hashes) || json_array_size(b->hashes) == 0
        || json_array_size(b->hashes) > FG_BUNDLE_HASHES_MAX)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "entries must hold 1 to %u entries and "
                            "envelope_hashes 1 to %u hashes",
                            FG_BUNDLE_ENTRIES_MAX, FG_BUNDLE_HASHES_MAX);
    }

    return fg_bundle_anchor(b, err);
}


/* By hash, then by place. */
static int
fg_bundle_hash_cmp(const void *a, const void *b)
{
    const fg_bundle_hash_t  *x = a, *y = b;
    int                      c;

    c = memcmp(x->md, y->md, FG_SHA256_LEN);
    return c != 0 ? c : (x->at > y->at) - (x->at < y->at);
}


/* The place of md in envelope_hashes (from 0), or -1. */
static long
fg_bundle_find(const fg_bundle_t *b, const unsigned char *md)
{
    size_t  lo, hi, mid;
    int     c;

    lo = 0;
    hi = b->nlist;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = memcmp(b->sorted[mid].md, md, FG_SHA256_LEN);
        if (c == 0) {
            return (long) b->sorted[mid].at;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}


/*
 * The entries' form and seqs (increasing), and envelope_hashes: no hash
 * twice, from the first entry's seq to the anchor's.
 */
static int
fg_bundle_lists(fg_bundle_t *b, fg_error_t *err)
{
    static const char *const  names[] = {
        "chain", "envelope_hash", "record", "seq"
    };
    const json_t             *e;
    unsigned char            *md;
    fg_bundle_hash_t         *x;
    size_t                    i;

    b->n = json_array_size(b->entries);
    b->nlist = json_array_size(b->hashes);
    b->seqs = malloc(b->n * sizeof(*b->seqs));
    b->types = malloc(b->n);
    b->list = malloc(b->nlist * FG_SHA256_LEN);
    b->sorted = malloc(b->nlist * sizeof(*b->sorted));
    if (b->seqs == NULL || b->types == NULL || b->list == NULL
        || b->sorted == NULL)
    {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    memset(b->types, -1, b->n);

    for (i = 0; i < b->n; i++) {
        e = json_array_get(b->entries, i);
        if (!fg_bundle_members(e, names, 4)
            || !json_is_object(json_object_get(e, "record"))
            || fg_bundle_seq(json_object_get(e, "seq"), &b->seqs[i]) != FG_OK)
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "entries[%zu]: not an entry of chain, "
                                "envelope_hash, record and seq", i);
        }
        if (i > 0 && b->seqs[i] <= b->seqs[i - 1]) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "seq %llu follows seq %llu: entries not in "
                                "seq order",
                                (unsigned long long) b->seqs[i],
                                (unsigned long long) b->seqs[i - 1]);
        }
    }

    b->first = b->seqs[0];

    for (i = 0; i < b->nlist; i++) {
        md = b->list + i * FG_SHA256_LEN;
        if (fg_bundle_hex(json_array_get(b->hashes, i), md) != FG_OK) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "envelope_hashes[%zu] is not 64 lowercase "
                                "hex digits", i);
        }
        memcpy(b->sorted[i].md, md, FG_SHA256_LEN);
        b->sorted[i].at = (uint32_t) i;
    }

    /* a ledger holds no hash twice: neither may the list */
    qsort(b->sorted, b->nlist, sizeof(*b->sorted), fg_bundle_hash_cmp);

    for (i = 1; i < b->nlist; i++) {
        x = &b->sorted[i];
        if (memcmp(x[-1].md, x->md, FG_SHA256_LEN) == 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "envelope_hashes list the same hash at seq "
                                "%llu and seq %llu",
                                (unsigned long long) (b->first + x[-1].at),
                                (unsigned long long) (b->first + x->at));
        }
    }

    if (b->seqs[b->n - 1] - b->first >= b->nlist) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "seq %llu: beyond envelope_hashes, which end at "
                            "seq %llu", (unsigned long long) b->seqs[b->n - 1],
                            (unsigned long long) (b->first + b->nlist - 1));
    }

    if (b->first + b->nlist - 1 != b->anchor_seq) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "envelope_hashes end at seq %llu, not at the "
                            "anchor's seq %llu",
                            (unsigned long long) (b->first + b->nlist - 1),
                            (unsigned long long) b->anchor_seq);
    }

    return FG_OK;
}


/* The entry of seq (its index), or -1. */
static long
fg_bundle_entry_at(const fg_bundle_t *b, uint64_t seq)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = b->n;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (b->seqs[mid] == seq) {
            return (long) mid;
        }
        if (b->seqs[mid] < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}


/*
 * The link of the entry at seq (facts): to an entry before it of the
 * type it must name; to a record the bundle lists but does not hold, or
 * to an entry of another type or after it, refused; to a hash the bundle
 * does not list (a record before its first seq), kept to be reported.
 */
static int
fg_bundle_link(fg_bundle_t *b, uint64_t seq, const fg_ledger_facts_t *f,
    fg_error_t *err)
{
    const char        *field, *want;
    fg_bundle_out_t   *o;
    uint64_t           at;
    long               k, j;

    if (!f->has_link) {
        return FG_OK;
    }

    field = f->link_type == FG_RECORD_AUTH_CONTEXT ? "auth_context_sha256"
                                                   : "policy_decision_sha256";
    want = fg_record_type_name(f->link_type);

    k = fg_bundle_find(b, f->link);

    if (k >= 0) {
        at = b->first + (uint64_t) k;
        j = fg_bundle_entry_at(b, at);

        /* an entry checked before this one has its type */
        if (j >= 0 && b->types[j] == (signed char) f->link_type) {
            return FG_OK;
        }
        if (j >= 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "seq %llu: its %s names seq %llu, not a "
                                "record of type %s before it",
                                (unsigned long long) seq, field,
                                (unsigned long long) at, want);
        }
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "seq %llu: its %s names the record at seq %llu, "
                            "which is not in the bundle: a record of the "
                            "trace was left out", (unsigned long long) seq,
                            field, (unsigned long long) at);
    }

    /* one link a record at most, so FG_BUNDLE_ENTRIES_MAX at most */
    o = realloc(b->out, (b->nout + 1) * sizeof(*o));
    if (o == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    b->out = o;
    b->out[b->nout].seq = seq;
    b->out[b->nout].field = field;
    b->nout++;

    return FG_OK;
}


/*
 * The canonical bytes of the entry's record, read again strictly as the
 * ledger reads a record (at most 1 MiB, canonical, an object), into
 * *value with md its sha256.
 */
static int
fg_bundle_record(fg_bundle_t *b, const json_t *record,
    unsigned char md[FG_SHA256_LEN], json_t **value, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;
    fg_error_t     why;
    int            rc;

    b->rec.len = 0;
    fg_sink_to_buffer(&sink, &b->rec, stage, sizeof(stage));
    memset(&why, 0, sizeof(why));

    rc = fg_jcs_canonicalize_json(record, 0, &sink, &why);
    if (rc == FG_ERR_LIMIT && sink.total > FG_RECORD_MAX_BYTES) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record is larger than %d bytes",
                            FG_RECORD_MAX_BYTES);
    }
    if (rc == FG_OK) {
        rc = fg_record_parse_canonical(b->jcs, b->rec.data, b->rec.len, md,
                                       value, &why);
    }

    if (rc == FG_ERR_NOMEM) {
        return fg_error_set(err, rc, FG_NO_OFFSET, "out of memory");
    }
    if (rc != FG_OK) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record: %s", why.msg);
    }

    return FG_OK;
}


/* The trace_id of a record fg_ledger_check passed (it has one). */
static const char *
fg_bundle_trace_of(const json_t *record)
{
    const char  *t;

    t = json_string_value(json_object_get(json_object_get(record, "trace"),
                                          "trace_id"));
    return t != NULL ? t : "";
}


/*
 * Entry i, whose place in envelope_hashes gives chain: its record read
 * and checked (hash, schema, tenant, trace, link), its hash the listed
 * one, its chain the one recomputed.  err names its seq.
 */
static int
fg_bundle_entry(fg_bundle_t *b, size_t i, const unsigned char *chain,
    fg_error_t *err)
{
    const json_t       *e;
    const char         *tr;
    json_t             *value;
    fg_ledger_facts_t   facts;
    fg_error_t          why;
    unsigned char       md[FG_SHA256_LEN], eh[FG_SHA256_LEN];
    unsigned char       ch[FG_SHA256_LEN];
    unsigned long long  seq;
    int                 rc;

    e = json_array_get(b->entries, i);
    seq = (unsigned long long) b->seqs[i];

    if (fg_bundle_hex(json_object_get(e, "chain"), ch) != FG_OK
        || fg_bundle_hex(json_object_get(e, "envelope_hash"), eh) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "seq %llu: chain or envelope_hash is not 64 "
                            "lowercase hex digits", seq);
    }

    rc = fg_bundle_record(b, json_object_get(e, "record"), md, &value, &why);
    if (rc != FG_OK) {
        return fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: %s", seq,
                            why.msg);
    }

    rc = FG_ERR_INVALID;

    if (memcmp(md, eh, FG_SHA256_LEN) != 0) {
        fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: envelope_hash is not "
                     "the sha256 of the record", seq);

    } else if (memcmp(eh, b->list + (b->seqs[i] - b->first) * FG_SHA256_LEN,
                      FG_SHA256_LEN) != 0)
    {
        fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: envelope_hash is not "
                     "the one envelope_hashes list at seq %llu", seq, seq);

    } else if (memcmp(ch, chain, FG_SHA256_LEN) != 0) {
        fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: chain is not the "
                     "chain recomputed from chain_before through "
                     "envelope_hashes", seq);

    } else if (fg_ledger_check(b->records, value, b->tenant, &facts, &why)
               != FG_LEDGER_OK)
    {
        fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: %s", seq, why.msg);

    } else if (strcmp(tr = fg_bundle_trace_of(value), b->trace) != 0) {
        fg_error_set(err, rc, FG_NO_OFFSET, "seq %llu: a record of trace "
                     "%.32s, not of the bundle's trace %s", seq, tr,
                     b->trace);

    } else if ((rc = fg_bundle_link(b, b->seqs[i], &facts, err)) == FG_OK) {
        b->types[i] = (signed char) facts.type;
    }

    json_decref(value);
    return rc;
}


/*
 * The chain from chain_before through envelope_hashes, each entry
 * checked at its place, to the anchor's chain.
 */
static int
fg_bundle_chain(fg_bundle_t *b, fg_error_t *err)
{
    unsigned char  c[FG_SHA256_LEN];
    size_t         i, j;
    int            rc;

    if (b->first == 1) {
        if (fg_ledger_genesis(b->h, b->tenant, strlen(b->tenant), c) != FG_OK)
        {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "SHA-256 failed");
        }
        if (memcmp(c, b->before, FG_SHA256_LEN) != 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "chain_before is not the genesis of tenant "
                                "%s, and the first entry is at seq 1",
                                b->tenant);
        }
    }

    memcpy(c, b->before, FG_SHA256_LEN);

    for (i = 0, j = 0; i < b->nlist; i++) {
        if (fg_ledger_chain(b->h, c, b->list + i * FG_SHA256_LEN, c)
            != FG_OK)
        {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "SHA-256 failed");
        }
        if (j < b->n && b->seqs[j] == b->first + i) {
            rc = fg_bundle_entry(b, j++, c, err);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    if (memcmp(c, b->anchor, FG_SHA256_LEN) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the chain recomputed through envelope_hashes "
                            "to seq %llu is not %s",
                            (unsigned long long) b->anchor_seq,
                            b->has_cp ? "the checkpoint's hash"
                                      : "the anchor's chain");
    }

    return FG_OK;
}


/* bundle_id: the sha256 of the canonical bundle without bundle_id. */
static int
fg_bundle_id(fg_bundle_t *b, fg_error_t *err)
{
    unsigned char  stage[FG_SINK_STAGE], md[FG_SHA256_LEN];
    unsigned char  id[FG_SHA256_LEN];
    fg_sink_t      sink;
    int            rc;

    (void) fg_bundle_hex(json_object_get(b->doc, "bundle_id"), id);
    if (json_object_del(b->doc, "bundle_id") != 0
        || fg_sha256_init(b->h) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    fg_sink_to_sha256(&sink, b->h, stage, sizeof(stage));
    rc = fg_jcs_canonicalize_json(b->doc, FG_BUNDLE_DEPTH, &sink, err);
    if (rc == FG_OK && fg_sha256_final(b->h, md) != FG_OK) {
        rc = fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET, "SHA-256 failed");
    }
    if (rc != FG_OK) {
        return rc;
    }

    if (memcmp(md, id, FG_SHA256_LEN) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "bundle_id is not the sha256 of the bundle "
                            "without it");
    }

    return FG_OK;
}


static void
fg_bundle_free(fg_bundle_t *b)
{
    json_decref(b->doc);
    fg_records_free(b->records);
    fg_jcs_free(b->jcs);
    fg_sha256_free(b->h);
    fg_buffer_free(&b->rec);
    free(b->seqs);
    free(b->types);
    free(b->list);
    free(b->sorted);
    free(b->out);
}


/* The summary, after a note for each link outside the bundle. */
static void
fg_bundle_summary(const fg_bundle_t *b, const fg_jwk_t *by)
{
    size_t  i;

    for (i = 0; i < b->nout; i++) {
        printf("%s: seq %llu: its %s names a record outside the bundle\n",
               b->name, (unsigned long long) b->out[i].seq, b->out[i].field);
    }

    printf("%s: verified bundle: tenant %s, trace %s, %zu record%s (seq "
           "%llu..%llu)", b->name, b->tenant, b->trace, b->n,
           b->n == 1 ? "" : "s", (unsigned long long) b->first,
           (unsigned long long) b->seqs[b->n - 1]);
    if (b->nout > 0) {
        printf(", %zu link%s outside the bundle", b->nout,
               b->nout == 1 ? "" : "s");
    }
    if (by != NULL) {
        printf(", anchored by checkpoint at seq %llu signed by %s\n",
               (unsigned long long) b->anchor_seq, fg_jwk_kid(by));
    } else {
        printf(", not anchored by a signed checkpoint\n");
    }
}


/*
 * Every check but the signature, in order; the exit status.  The
 * checkpoint's signature needs trusted keys: without them a bundle that
 * has one is a usage error, and with them one without is refused.
 */
static int
fg_bundle_check(fg_bundle_t *b, const fg_buffer_t *in, const char *tenant,
    const fg_keyset_t *trusted, fg_error_t *err)
{
    int  rc;

    rc = fg_bundle_load(b, in->data, in->len, err);
    rc = rc ? rc : fg_bundle_head(b, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (tenant != NULL && strcmp(tenant, b->tenant) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "a bundle of tenant %s, not of %s", b->tenant,
                            tenant);
    }
    if (b->has_cp && trusted == NULL) {
        /* FG_ERR_IO: a usage error, exit status 2 */
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "the bundle's checkpoint is worth its signature: "
                            "give --trusted-key");
    }
    if (!b->has_cp && trusted != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not anchored by a signed checkpoint "
                            "(\"checkpoint\": null), but --trusted-key asks "
                            "for one");
    }

    rc = fg_bundle_lists(b, err);
    rc = rc ? rc : fg_bundle_chain(b, err);
    return rc;
}


static int
fg_verify_bundle(int argc, char **argv)
{
    const char      *path, *tenant, *keys;
    const fg_jwk_t  *by;
    fg_keyset_t     *trusted;
    fg_buffer_t      in;
    fg_bundle_t      b;
    fg_error_t       err, why;
    int              i, rc;

    path = tenant = keys = NULL;

    for (i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--bundle") == 0 && !path) {
            path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--tenant") == 0) {
            tenant = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--trusted-key") == 0) {
            keys = argv[++i];
        } else {
            path = NULL;
            break;
        }
    }

    if (path == NULL) {
        fg_cli_error("verify", "expected --bundle FILE [--tenant T] "
                     "[--trusted-key JWKS] (try foxgov verify --help)");
        return FG_EXIT_USAGE;
    }
    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("verify", "--tenant \"%s\" is not a tenant id", tenant);
        return FG_EXIT_USAGE;
    }

    trusted = NULL;
    if (keys != NULL && (trusted = fg_verify_trusted(keys)) == NULL) {
        return FG_EXIT_USAGE;
    }

    if (fg_cli_read_input("verify", path, &in) != FG_OK) {
        fg_keyset_free(trusted);
        return FG_EXIT_USAGE;
    }

    memset(&b, 0, sizeof(b));
    b.name = fg_cli_input_name(path);
    fg_buffer_init(&b.rec, FG_RECORD_MAX_BYTES);
    b.records = fg_records_new(&err);
    b.jcs = fg_jcs_new(0);
    b.h = fg_sha256_new();
    by = NULL;

    if (b.records == NULL || b.jcs == NULL || b.h == NULL) {
        rc = fg_error_set(&err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    } else {
        rc = fg_bundle_check(&b, &in, tenant, trusted, &err);
    }

    if (rc == FG_OK && b.has_cp) {
        rc = fg_checkpoint_verify(&b.cp, trusted, &by, &why);
        if (rc != FG_OK) {
            fg_error_set(&err, rc, FG_NO_OFFSET, "checkpoint at seq %llu: %s",
                         (unsigned long long) b.cp.size,
                         fg_verify_why(why.msg));
        }
    }

    rc = rc ? rc : fg_bundle_id(&b, &err);

    if (rc == FG_OK) {
        fg_bundle_summary(&b, by);
    } else if (rc == FG_ERR_NOMEM) {
        fg_cli_error("verify", "out of memory");
    } else {
        fg_cli_error("verify", "%s: %s", b.name, err.msg);
    }

    fg_bundle_free(&b);
    fg_buffer_free(&in);
    fg_keyset_free(trusted);

    if (rc == FG_OK) {
        return FG_EXIT_OK;
    }
    return rc == FG_ERR_NOMEM || rc == FG_ERR_IO || rc == FG_ERR_CRYPTO
           ? FG_EXIT_USAGE : FG_EXIT_REFUSED;
}


/* ------------------------------------------------------------ verify */

int
fg_cmd_verify(int argc, char **argv)
{
    const char             *path, *tenant, *dir, *keys;
    char                    hex[FG_SHA256_HEX_LEN + 1];
    char                   *name;
    fg_error_t              err;
    fg_keyset_t            *trusted;
    fg_cli_ledger_t        *l;
    fg_cli_ledger_entry_t   e;
    fg_cli_cps_t         cps;
    fg_cli_cp_t         *cp;
    unsigned char           chain[FG_SHA256_LEN];
    uint64_t                seq;
    size_t                  i, next;
    int                     rc, got, pg;

    if (fg_cli_wants_help(argc, argv)) {
        fg_verify_help();
        return FG_EXIT_OK;
    }

    for (i = 1; i < (size_t) argc; i++) {
        if (strcmp(argv[i], "--bundle") == 0) {
            return fg_verify_bundle(argc, argv);
        }
    }

    path = NULL;
    tenant = NULL;
    dir = NULL;
    keys = NULL;

    for (i = 1; i < (size_t) argc; i++) {
        if (i + 1 < (size_t) argc && strcmp(argv[i], "--tenant") == 0) {
            tenant = argv[++i];
        } else if (i + 1 < (size_t) argc
                   && strcmp(argv[i], "--checkpoints") == 0)
        {
            dir = argv[++i];
        } else if (i + 1 < (size_t) argc
                   && strcmp(argv[i], "--trusted-key") == 0)
        {
            keys = argv[++i];
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }

    if (path == NULL) {
        fg_cli_error("verify", "expected LEDGER [--tenant T] [--checkpoints "
                     "DIR --trusted-key JWKS] (try foxgov verify --help)");
        return FG_EXIT_USAGE;
    }

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("verify", "--tenant \"%s\" is not a tenant id", tenant);
        return FG_EXIT_USAGE;
    }

    pg = strncmp(path, "postgresql://", 13) == 0
         || strncmp(path, "postgres://", 11) == 0;

    if (dir != NULL && keys == NULL) {
        fg_cli_error("verify", "--checkpoints needs --trusted-key: a "
                     "checkpoint is worth its signature");
        return FG_EXIT_USAGE;
    }
    if (keys != NULL && dir == NULL && !pg) {
        fg_cli_error("verify", "--trusted-key needs --checkpoints DIR");
        return FG_EXIT_USAGE;
    }

    memset(&cps, 0, sizeof(cps));
    trusted = NULL;
    l = NULL;

    if (keys != NULL) {
        trusted = fg_verify_trusted(keys);
        if (trusted == NULL) {
            return FG_EXIT_USAGE;
        }
        cps.trusted = trusted;
    }

    /* checkpoints first: none can then be of a head the ledger lacks */
    if (dir != NULL && fg_cli_cps_read_dir(&cps, dir, &err) != FG_OK) {
        name = fg_cli_ledger_redact(path);
        rc = fg_verify_cp_failed(name != NULL ? name : "LEDGER", &err);
        free(name);
        goto done;
    }

    l = fg_cli_ledger_open(path, tenant, &err);
    if (l == NULL) {
        name = fg_cli_ledger_redact(path);
        fg_cli_error("verify", "%s: %s", name != NULL ? name : "LEDGER",
                     err.msg);
        free(name);
        rc = FG_EXIT_USAGE;
        goto done;
    }

    if (trusted != NULL
        && fg_cli_ledger_checkpoints(l, fg_cli_cps_add, &cps, &err) != FG_OK)
    {
        rc = fg_verify_cp_failed(fg_cli_ledger_name(l), &err);
        goto done;
    }

    fg_cli_cps_sort(&cps);

    /* the checkpoints' tenant: given, or as soon as a record names it */
    if (tenant != NULL && !fg_verify_tenant(l, &cps)) {
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    next = 0;

    while ((got = fg_cli_ledger_next(l, &e, &err)) > 0) {

        if (tenant == NULL && e.seq == 1 && !fg_verify_tenant(l, &cps)) {
            rc = FG_EXIT_REFUSED;
            goto done;
        }

        for ( ; next < cps.n && cps.v[next].size == e.seq; next++) {
            if (memcmp(cps.v[next].hash, e.chain, FG_SHA256_LEN) != 0) {
                if (e.line == 0) {
                    fg_cli_error("verify", "%s: seq %llu: chain is not the "
                                 "hash of its checkpoint (%s)",
                                 fg_cli_ledger_name(l),
                                 (unsigned long long) e.seq,
                                 cps.v[next].name);
                } else {
                    fg_cli_error("verify", "%s: seq %llu (line %llu): chain "
                                 "is not the hash of its checkpoint (%s)",
                                 fg_cli_ledger_name(l),
                                 (unsigned long long) e.seq,
                                 (unsigned long long) e.line,
                                 cps.v[next].name);
                }
                rc = FG_EXIT_REFUSED;
                goto done;
            }
        }
    }

    if (got < 0) {
        rc = fg_cli_ledger_stopped("verify", l, &err);
        goto done;
    }

    seq = fg_cli_ledger_head(l, chain);

    if (next < cps.n) {
        cp = &cps.v[cps.n - 1];
        fg_cli_error("verify", "%s: the ledger ends at seq %llu, below its "
                     "checkpoint at seq %llu (%s): entries were removed",
                     fg_cli_ledger_name(l), (unsigned long long) seq,
                     (unsigned long long) cp->size, cp->name);
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    if (seq == 0) {
        fg_cli_error("verify", "%s: the ledger is empty",
                     fg_cli_ledger_name(l));
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    fg_hex_sha256(chain, hex);
    printf("%s: verified: tenant %s, %llu records, seq 1..%llu, chain %s",
           fg_cli_ledger_name(l), fg_cli_ledger_tenant(l),
           (unsigned long long) seq, (unsigned long long) seq, hex);
    if (trusted != NULL) {
        printf(", %zu checkpoint%s verified", cps.n, cps.n == 1 ? "" : "s");
        if (cps.n > 0) {
            printf(" (latest seq %llu)",
                   (unsigned long long) cps.v[cps.n - 1].size);
        }
    }
    printf("\n");
    rc = FG_EXIT_OK;

done:

    fg_cli_ledger_close(l);
    fg_cli_cps_free(&cps);
    fg_keyset_free(trusted);
    return rc;
}

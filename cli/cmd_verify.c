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
 */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_ledger.h"
#include "fg_checkpoint.h"

/* The most checkpoints one verification holds (a few dozen bytes each). */
#define FG_VERIFY_CHECKPOINTS_MAX  (1u << 20)

/* A checkpoint read and verified: what the ledger is checked against. */
typedef struct {
    uint64_t        size;
    unsigned char   hash[FG_SHA256_LEN];
    char            tenant[FG_TENANT_ID_MAX + 1];
    char           *name;           /* its file, for messages */
} fg_verify_cp_t;

typedef struct {
    fg_verify_cp_t     *v;
    size_t              n;
    size_t              cap;
    const fg_keyset_t  *trusted;
} fg_verify_cps_t;


static void
fg_verify_help(void)
{
    printf("usage: foxgov verify LEDGER [--tenant T] [--checkpoints DIR "
           "--trusted-key JWKS]\n"
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
           "Exit status: 0 verified, 1 a check failed, 2 usage or an "
           "unreadable file.\n");
}


/*
 * Report why the reading stopped: a finding about the ledger (its seq and
 * line) is FG_EXIT_REFUSED; a ledger that could not be read, FG_EXIT_USAGE.
 */
static int
fg_verify_stopped(const fg_cli_ledger_t *l, const fg_error_t *err)
{
    uint64_t  seq, line;

    if (err->code == FG_ERR_NOMEM) {
        fg_cli_error("verify", "out of memory");
        return FG_EXIT_USAGE;
    }
    if (err->code == FG_ERR_IO) {
        fg_cli_error("verify", "%s: %s", fg_cli_ledger_name(l), err->msg);
        return FG_EXIT_USAGE;
    }

    fg_cli_ledger_where(l, &seq, &line);

    if (line == 0) {
        fg_cli_error("verify", "%s: seq %llu: %s", fg_cli_ledger_name(l),
                     (unsigned long long) seq, err->msg);
    } else {
        fg_cli_error("verify", "%s: seq %llu (line %llu): %s",
                     fg_cli_ledger_name(l), (unsigned long long) seq,
                     (unsigned long long) line, err->msg);
    }
    return FG_EXIT_REFUSED;
}


/* ------------------------------------------------------- checkpoints */

/* fg_checkpoint's reason without its "checkpoint: " (we say it). */
static const char *
fg_verify_why(const char *msg)
{
    return strncmp(msg, "checkpoint: ", 12) == 0 ? msg + 12 : msg;
}


/*
 * One checkpoint note (fg_cli_ledger_note_f): read, verified against the
 * trusted keys and kept.  A note that fails is a finding: FG_ERR_INVALID
 * with err naming it (and its seq when it has one).
 */
static int
fg_verify_note(void *arg, const char *name, const unsigned char *note,
    size_t len, fg_error_t *err)
{
    fg_verify_cps_t  *cps = arg;
    fg_verify_cp_t   *v;
    fg_checkpoint_t   cp;
    fg_error_t        why;
    size_t            cap;

    if (fg_checkpoint_parse(note, len, &cp, &why) != FG_OK) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint %s: %s", name,
                            fg_verify_why(why.msg));
    }

    if (fg_checkpoint_verify(&cp, cps->trusted, NULL, &why) != FG_OK) {
        return fg_error_set(err, why.code == FG_ERR_CRYPTO ? FG_ERR_CRYPTO
                                                           : FG_ERR_INVALID,
                            FG_NO_OFFSET, "checkpoint at seq %llu (%s): %s",
                            (unsigned long long) cp.size, name,
                            fg_verify_why(why.msg));
    }

    if (cps->n == cps->cap) {
        if (cps->cap == FG_VERIFY_CHECKPOINTS_MAX) {
            return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "more than %u checkpoints",
                                FG_VERIFY_CHECKPOINTS_MAX);
        }
        cap = cps->cap ? cps->cap * 2 : 64;
        v = realloc(cps->v, cap * sizeof(*v));
        if (v == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        cps->v = v;
        cps->cap = cap;
    }

    v = &cps->v[cps->n];
    v->name = strdup(name);
    if (v->name == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    v->size = cp.size;
    memcpy(v->hash, cp.hash, FG_SHA256_LEN);
    memcpy(v->tenant, cp.tenant, sizeof(v->tenant));
    cps->n++;

    return FG_OK;
}


/*
 * One file of the checkpoint directory: at most FG_CHECKPOINT_NOTE_MAX
 * bytes, named for its seq.  FG_ERR_IO when it cannot be read.
 */
static int
fg_verify_file(fg_verify_cps_t *cps, const char *path, const char *base,
    fg_error_t *err)
{
    unsigned char  note[FG_CHECKPOINT_NOTE_MAX + 1];
    char           want[FG_CHECKPOINT_FILE_NAME_LEN + 1];
    struct stat    st;
    FILE          *f;
    size_t         n;
    int            rc;

    f = fopen(path, "rb");
    if (f == NULL) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                            strerror(errno));
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint %s: not a regular file", path);
    }

    n = fread(note, 1, sizeof(note), f);
    rc = ferror(f);
    fclose(f);

    if (rc) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: read error",
                            path);
    }
    if (n > FG_CHECKPOINT_NOTE_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint %s: longer than %d bytes", path,
                            FG_CHECKPOINT_NOTE_MAX);
    }

    rc = fg_verify_note(cps, path, note, n, err);
    if (rc != FG_OK) {
        return rc;
    }

    /* the name says the seq: one that says another is not to be trusted */
    fg_checkpoint_file_name(cps->v[cps->n - 1].size, want);
    if (strcmp(base, want) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint at seq %llu (%s): its file should "
                            "be named %s",
                            (unsigned long long) cps->v[cps->n - 1].size,
                            path, want);
    }

    return FG_OK;
}


/* Every file of dir whose name ends in ".checkpoint" into cps. */
static int
fg_verify_dir(fg_verify_cps_t *cps, const char *dir, fg_error_t *err)
{
    struct dirent  *d;
    DIR            *dp;
    fg_buffer_t     path;
    size_t          n, sfx;
    int             rc;

    dp = opendir(dir);
    if (dp == NULL) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", dir,
                            strerror(errno));
    }

    sfx = sizeof(FG_CHECKPOINT_FILE_SUFFIX) - 1;
    fg_buffer_init(&path, 0);
    rc = FG_OK;

    while (rc == FG_OK && (errno = 0, d = readdir(dp)) != NULL) {
        n = strlen(d->d_name);
        if (d->d_name[0] == '.' || n <= sfx
            || strcmp(d->d_name + n - sfx, FG_CHECKPOINT_FILE_SUFFIX) != 0)
        {
            continue;
        }

        path.len = 0;
        rc = fg_buffer_append(&path, dir, strlen(dir));
        rc = rc ? rc : fg_buffer_append(&path, "/", 1);
        rc = rc ? rc : fg_buffer_append(&path, d->d_name, n + 1);
        if (rc != FG_OK) {
            fg_error_set(err, rc, FG_NO_OFFSET, "out of memory");
            break;
        }

        rc = fg_verify_file(cps, (char *) path.data, d->d_name, err);
    }

    if (rc == FG_OK && errno != 0) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", dir,
                          strerror(errno));
    }

    closedir(dp);
    fg_buffer_free(&path);
    return rc;
}


static int
fg_verify_cp_cmp(const void *a, const void *b)
{
    const fg_verify_cp_t  *x = a, *y = b;

    return (x->size > y->size) - (x->size < y->size);
}


static void
fg_verify_cps_free(fg_verify_cps_t *cps)
{
    size_t  i;

    for (i = 0; i < cps->n; i++) {
        free(cps->v[i].name);
    }
    free(cps->v);
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
fg_verify_tenant(const fg_cli_ledger_t *l, const fg_verify_cps_t *cps)
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
    fg_verify_cps_t         cps;
    fg_verify_cp_t         *cp;
    unsigned char           chain[FG_SHA256_LEN];
    uint64_t                seq;
    size_t                  i, next;
    int                     rc, got, pg;

    if (fg_cli_wants_help(argc, argv)) {
        fg_verify_help();
        return FG_EXIT_OK;
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
    if (dir != NULL && fg_verify_dir(&cps, dir, &err) != FG_OK) {
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
        && fg_cli_ledger_checkpoints(l, fg_verify_note, &cps, &err) != FG_OK)
    {
        rc = fg_verify_cp_failed(fg_cli_ledger_name(l), &err);
        goto done;
    }

    if (cps.n > 0) {
        qsort(cps.v, cps.n, sizeof(*cps.v), fg_verify_cp_cmp);
    }

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
        rc = fg_verify_stopped(l, &err);
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
    fg_verify_cps_free(&cps);
    fg_keyset_free(trusted);
    return rc;
}

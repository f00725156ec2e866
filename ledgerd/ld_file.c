/*
 * ld_file.c -- the file backend of foxgov-ledgerd ("--ledger file:DIR"):
 * one append-only ledger file a tenant, DIR/<tenant_id>/ledger.jsonl, in
 * the line format of docs/ledger.md, and its signed checkpoints beside it
 * in DIR/<tenant_id>/checkpoints/<seq>.checkpoint.
 *
 * One daemon a directory: DIR/.lock is held (flock) for as long as the
 * backend is open, so a second daemon on the same DIR refuses to start.
 *
 * A tenant's file is read through when the tenant is first appended to:
 * every line is checked as `foxgov verify` checks it (canonical, its
 * envelope_hash the record's, seq and chain following), and its envelope
 * hashes and record types are kept in memory (fg_hashset) for the daemon's
 * duplicate and link checks.  A last line that is not whole or does not
 * end in "\n" (a crash in the middle of an append) is a torn tail: it is
 * cut off, back to the last whole verified entry, and logged.  A whole
 * line that does not check is not a torn tail but damage: the tenant is
 * refused (nothing more is appended to it) until an operator looks.
 *
 * A batch is written with one write and made durable with fsync before
 * append() returns: the file's, and the directories' when the file or the
 * tenant's directory is new.  A failed write is cut back, so the file
 * never holds half a batch that the daemon did not acknowledge.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg_hashset.h"
#include "fg_jcs.h"
#include "fg_ledger.h"
#include "ld_backend.h"
#include "ld_log.h"


#define LD_FILE_LEDGER      "ledger.jsonl"
#define LD_FILE_CHECKPOINTS "checkpoints"


typedef struct {
    char            tenant[FG_TENANT_ID_MAX + 1];
    int             fd;             /* -1: refused (damaged) */
    uint64_t        size;           /* bytes of whole, verified entries */
    uint64_t        seq;
    unsigned char   chain[FG_SHA256_LEN];
    fg_hashset_t    known;          /* envelope hash -> record type */
} ld_file_tenant_t;


typedef struct {
    ld_backend_t        base;
    char               *dir;
    int                 dir_fd;
    int                 lock_fd;

    ld_file_tenant_t  **tenants;
    size_t              ntenants;
    size_t              cap;

    fg_buffer_t         out;        /* the lines of a batch */
    fg_buffer_t         line;       /* a line read back */
    fg_jcs_t           *jcs;
    fg_sha256_t        *h;
} ld_file_t;


static int ld_file_lookup(ld_backend_t *b, const char *tenant,
    const unsigned char md[FG_SHA256_LEN], int *type, fg_error_t *err);
static int ld_file_append(ld_backend_t *b, const char *tenant,
    ld_append_t *e, size_t n, fg_error_t *err);
static int ld_file_checkpoint(ld_backend_t *b, const char *tenant,
    uint64_t seq, const char *note, size_t len, fg_error_t *err);
static void ld_file_close(ld_backend_t *b);


static const ld_backend_ops_t  ld_file_ops = {
    "file",
    ld_file_lookup,
    ld_file_append,
    ld_file_checkpoint,
    ld_file_close
};


static int
ld_file_sys(fg_error_t *err, const char *what, const char *path)
{
    return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s %s: %s", what,
                        path, strerror(errno));
}


/* fsync a directory by its path relative to the ledger directory. */
static int
ld_file_sync_dir(ld_file_t *f, const char *rel, fg_error_t *err)
{
    int  fd, rc;

    fd = openat(f->dir_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return ld_file_sys(err, "open", rel);
    }
    rc = fsync(fd);
    close(fd);
    if (rc != 0) {
        return ld_file_sys(err, "fsync", rel);
    }
    return FG_OK;
}


ld_backend_t *
ld_file_open(const char *dir, fg_error_t *err)
{
    ld_file_t  *f;

    f = calloc(1, sizeof(*f));
    if (f == NULL || (f->dir = strdup(dir)) == NULL
        || (f->jcs = fg_jcs_new(0)) == NULL
        || (f->h = fg_sha256_new()) == NULL
        || (f->line.data = malloc(FG_LEDGER_LINE_MAX)) == NULL)
    {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        goto failed;
    }
    f->base.ops = &ld_file_ops;
    f->dir_fd = -1;
    f->lock_fd = -1;
    f->line.cap = FG_LEDGER_LINE_MAX;
    f->line.max = FG_LEDGER_LINE_MAX;
    fg_buffer_init(&f->out, 0);

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ld_file_sys(err, "mkdir", dir);
        goto failed;
    }

    f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd == -1) {
        ld_file_sys(err, "open", dir);
        goto failed;
    }

    f->lock_fd = openat(f->dir_fd, ".lock",
                        O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f->lock_fd == -1) {
        ld_file_sys(err, "open the lock of", dir);
        goto failed;
    }

    if (flock(f->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                         "ledger %s is held by another foxgov-ledgerd "
                         "(%s/.lock)", dir, dir);
        } else {
            ld_file_sys(err, "lock", dir);
        }
        goto failed;
    }

    return &f->base;

failed:

    if (f != NULL) {
        ld_file_close(&f->base);
    }
    return NULL;
}


static void
ld_file_close(ld_backend_t *b)
{
    ld_file_t  *f = (ld_file_t *) b;
    size_t      i;

    for (i = 0; i < f->ntenants; i++) {
        if (f->tenants[i]->fd != -1) {
            close(f->tenants[i]->fd);
        }
        fg_hashset_free(&f->tenants[i]->known);
        free(f->tenants[i]);
    }
    free(f->tenants);

    if (f->lock_fd != -1) {
        close(f->lock_fd);              /* and the lock with it */
    }
    if (f->dir_fd != -1) {
        close(f->dir_fd);
    }

    fg_buffer_free(&f->out);
    free(f->line.data);
    fg_jcs_free(f->jcs);
    fg_sha256_free(f->h);
    free(f->dir);
    free(f);
}


/* ------------------------------------------------------ reading back */

/* The record type of the line just read by fg_ledger_read(), or -1. */
static int
ld_file_line_type(ld_file_t *f, const unsigned char *line, size_t len)
{
    static const char  *names[] = {
        "\"AuthContext\"", "\"PolicyDecisionRecord\"",
        "\"ModelCallRecord\"", "\"ToolCallRecord\""
    };
    uint32_t  rec, t;
    size_t    at, i, n;

    rec = fg_jcs_node_member(f->jcs, 0, "record", 6);
    t = fg_jcs_node_member(f->jcs, rec, "record_type", 11);
    if (fg_jcs_node_kind(f->jcs, t) != FG_JCS_STRING) {
        return -1;
    }

    /* canonical, so the name is written as it is, without escapes */
    at = fg_jcs_node_offset(f->jcs, t);
    for (i = 0; i < FG_RECORD_TYPES; i++) {
        n = strlen(names[i]);
        if (at + n <= len && memcmp(line + at, names[i], n) == 0) {
            return (int) i;
        }
    }
    return -1;
}


/*
 * Read the next line of fp into f->line: 1 a line ending in "\n", 2 a
 * last line without it, -1 a line longer than a ledger line may be, 0 at
 * the end.
 */
static int
ld_file_next_line(ld_file_t *f, FILE *fp, uint64_t *bytes)
{
    int  c;

    f->line.len = 0;
    *bytes = 0;

    while ((c = getc_unlocked(fp)) != EOF) {
        (*bytes)++;
        if (c == '\n') {
            return 1;
        }
        if (f->line.len == FG_LEDGER_LINE_MAX) {
            return -1;
        }
        f->line.data[f->line.len++] = (unsigned char) c;
    }

    return *bytes ? 2 : 0;
}


/*
 * Read t's ledger file from its start, checking each entry and keeping its
 * hash; cut a torn tail.  FG_OK, or an error (the tenant is damaged).
 */
static int
ld_file_load(ld_file_t *f, ld_file_tenant_t *t, fg_error_t *err)
{
    FILE               *fp;
    fg_ledger_entry_t   e;
    fg_error_t          bad;
    uint64_t            bytes, good;
    int                 got, fd, type;

    fd = dup(t->fd);
    if (fd == -1 || (fp = fdopen(fd, "rb")) == NULL) {
        if (fd != -1) {
            close(fd);
        }
        return ld_file_sys(err, "read the ledger of", t->tenant);
    }

    good = 0;
    bad.code = FG_OK;

    for ( ;; ) {
        got = ld_file_next_line(f, fp, &bytes);
        if (got == 0) {
            break;
        }

        if (got == -1) {
            fg_error_set(&bad, FG_ERR_LIMIT, FG_NO_OFFSET,
                         "a line longer than %d bytes", FG_LEDGER_LINE_MAX);
        } else if (got == 2) {
            fg_error_set(&bad, FG_ERR_SYNTAX, FG_NO_OFFSET,
                         "the last line is not whole");
        } else if (fg_ledger_read(f->jcs, f->h, f->line.data, f->line.len,
                                  &e, &bad) == FG_OK
                   && fg_ledger_next(f->h, t->seq, t->chain, &e, &bad)
                      == FG_OK)
        {
            type = ld_file_line_type(f, f->line.data, f->line.len);
            if (type < 0) {
                fg_error_set(&bad, FG_ERR_INVALID, FG_NO_OFFSET,
                             "the record has no known record_type");
            } else if (fg_hashset_get(&t->known, e.envelope_hash) >= 0) {
                fg_error_set(&bad, FG_ERR_INVALID, FG_NO_OFFSET,
                             "an envelope_hash appended twice");
            } else if (fg_hashset_put(&t->known, e.envelope_hash, type)
                       != FG_OK)
            {
                fclose(fp);
                return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                    "out of memory");
            } else {
                t->seq = e.seq;
                memcpy(t->chain, e.chain, FG_SHA256_LEN);
                good += bytes;
                continue;
            }
        }

        /*
         * A last line without its "\n" is a torn append (a batch is one
         * write, so a crash leaves whole lines and then at most a part of
         * one, or bytes the file system had not written yet).  A whole
         * line that does not check was not torn but changed: damage.
         */
        if (got == 2) {
            break;
        }

        fclose(fp);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "ledger of %s damaged at seq %llu: %s (run "
                            "foxgov verify; nothing is appended to it)",
                            t->tenant, (unsigned long long) t->seq + 1,
                            bad.msg);
    }

    if (ferror(fp)) {
        fclose(fp);
        return ld_file_sys(err, "read the ledger of", t->tenant);
    }
    fclose(fp);

    if (bad.code != FG_OK) {
        ld_log(LD_LOG_WARN, "ledger of %s: a torn last entry after seq %llu "
               "(%s) cut off: %llu bytes kept", t->tenant,
               (unsigned long long) t->seq, bad.msg,
               (unsigned long long) good);
        if (ftruncate(t->fd, (off_t) good) != 0 || fsync(t->fd) != 0) {
            return ld_file_sys(err, "cut the torn tail of the ledger of",
                               t->tenant);
        }
    }

    t->size = good;
    return FG_OK;
}


/* ------------------------------------------------------------ tenants */

/* The tenant's state, opened (and read back) on first use; NULL on error. */
static ld_file_tenant_t *
ld_file_tenant(ld_file_t *f, const char *tenant, fg_error_t *err)
{
    ld_file_tenant_t   *t, **grown;
    char                path[FG_TENANT_ID_MAX + sizeof("/" LD_FILE_LEDGER)];
    size_t              i;
    int                 made_dir, made_file, rc;
    struct stat         st;

    for (i = 0; i < f->ntenants; i++) {
        if (strcmp(f->tenants[i]->tenant, tenant) == 0) {
            t = f->tenants[i];
            if (t->fd == -1) {
                fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                             "the ledger of %s is damaged; nothing is "
                             "appended to it", tenant);
                return NULL;
            }
            return t;
        }
    }

    /* the id becomes a path: checked here too, whatever the caller did */
    if (!fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "not a tenant id");
        return NULL;
    }

    if (f->ntenants == f->cap) {
        grown = realloc(f->tenants, (f->cap ? f->cap * 2 : 16)
                                    * sizeof(*grown));
        if (grown == NULL) {
            fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
            return NULL;
        }
        f->tenants = grown;
        f->cap = f->cap ? f->cap * 2 : 16;
    }

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }
    strcpy(t->tenant, tenant);
    fg_hashset_init(&t->known);
    (void) fg_ledger_genesis(f->h, tenant, strlen(tenant), t->chain);

    made_dir = mkdirat(f->dir_fd, tenant, 0700) == 0;
    if (!made_dir && errno != EEXIST) {
        ld_file_sys(err, "mkdir", tenant);
        free(t);
        return NULL;
    }

    snprintf(path, sizeof(path), "%s/" LD_FILE_LEDGER, tenant);
    made_file = fstatat(f->dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) != 0;

    t->fd = openat(f->dir_fd, path,
                   O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (t->fd == -1) {
        ld_file_sys(err, "open", path);
        free(t);
        return NULL;
    }

    /* the new names are durable before anything is appended under them */
    rc = FG_OK;
    if (made_dir) {
        rc = ld_file_sync_dir(f, ".", err);
    }
    if (rc == FG_OK && made_file) {
        rc = ld_file_sync_dir(f, tenant, err);
    }
    if (rc == FG_OK) {
        rc = ld_file_load(f, t, err);
    }

    f->tenants[f->ntenants++] = t;

    if (rc != FG_OK) {
        ld_log(LD_LOG_ERR, "%s", err->msg);
        close(t->fd);
        t->fd = -1;                     /* refused from now on */
        return NULL;
    }

    if (t->seq > 0) {
        ld_log(LD_LOG_INFO, "ledger of %s: %llu entries", tenant,
               (unsigned long long) t->seq);
    }
    return t;
}


/* ---------------------------------------------------------- the ops */

static int
ld_file_lookup(ld_backend_t *b, const char *tenant,
    const unsigned char md[FG_SHA256_LEN], int *type, fg_error_t *err)
{
    ld_file_t         *f = (ld_file_t *) b;
    ld_file_tenant_t  *t;

    t = ld_file_tenant(f, tenant, err);
    if (t == NULL) {
        return err->code ? err->code : FG_ERR_INTERNAL;
    }

    *type = fg_hashset_get(&t->known, md);
    return FG_OK;
}


/* Write buf[0..n) at off, all of it. */
static int
ld_file_pwrite_all(int fd, const unsigned char *buf, size_t n, uint64_t off)
{
    ssize_t  w;
    size_t   done;

    for (done = 0; done < n; done += (size_t) w) {
        w = pwrite(fd, buf + done, n - done, (off_t) (off + done));
        if (w < 0) {
            if (errno == EINTR) {
                w = 0;
                continue;
            }
            return -1;
        }
    }
    return 0;
}


static int
ld_file_append(ld_backend_t *b, const char *tenant, ld_append_t *e,
    size_t n, fg_error_t *err)
{
    ld_file_t         *f = (ld_file_t *) b;
    ld_file_tenant_t  *t;
    unsigned char      chain[FG_SHA256_LEN];
    uint64_t           seq;
    size_t             i;
    int                rc, saved;

    t = ld_file_tenant(f, tenant, err);
    if (t == NULL) {
        return err->code ? err->code : FG_ERR_INTERNAL;
    }

    /* the lines of the batch, from the head as it is */
    f->out.len = 0;
    seq = t->seq;
    memcpy(chain, t->chain, FG_SHA256_LEN);

    for (i = 0; i < n; i++) {
        e[i].duplicate = fg_hashset_get(&t->known, e[i].envelope_hash) >= 0;
        if (e[i].duplicate) {
            continue;
        }

        seq++;
        if (fg_ledger_chain(f->h, chain, e[i].envelope_hash, chain) != FG_OK)
        {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "SHA-256 failed");
        }
        e[i].seq = seq;
        memcpy(e[i].chain, chain, FG_SHA256_LEN);

        rc = fg_ledger_line(seq, chain, e[i].envelope_hash, e[i].record,
                            e[i].record_len, &f->out, err);
        if (rc != FG_OK) {
            return rc;
        }
    }

    if (f->out.len == 0) {
        return FG_OK;
    }

    if (ld_file_pwrite_all(t->fd, f->out.data, f->out.len, t->size) != 0
        || fsync(t->fd) != 0)
    {
        saved = errno;
        /* cut back what was written, so no half batch stays behind */
        if (ftruncate(t->fd, (off_t) t->size) != 0 || fsync(t->fd) != 0) {
            ld_log(LD_LOG_ERR, "ledger of %s: a failed append cannot be "
                   "cut back: %s; nothing more is appended to it", tenant,
                   strerror(errno));
            close(t->fd);
            t->fd = -1;
        }
        errno = saved;
        return ld_file_sys(err, "append to the ledger of", tenant);
    }

    /* durable: now the head moves */
    for (i = 0; i < n; i++) {
        if (!e[i].duplicate
            && fg_hashset_put(&t->known, e[i].envelope_hash, (int) e[i].type)
               != FG_OK)
        {
            /* the file is right; only memory is short: start again */
            ld_log(LD_LOG_ERR, "out of memory after an append to the ledger "
                   "of %s; exiting (a restart reads the ledger back)",
                   tenant);
            exit(1);
        }
    }

    t->size += f->out.len;
    t->seq = seq;
    memcpy(t->chain, chain, FG_SHA256_LEN);

    if (f->out.cap > 64 * 1024 * 1024) {
        fg_buffer_free(&f->out);            /* a rare huge batch */
    }

    return FG_OK;
}


static int
ld_file_checkpoint(ld_backend_t *b, const char *tenant, uint64_t seq,
    const char *note, size_t len, fg_error_t *err)
{
    ld_file_t  *f = (ld_file_t *) b;
    char        dir[FG_TENANT_ID_MAX + sizeof("/" LD_FILE_CHECKPOINTS)];
    char        tmp[sizeof(dir) + 48], path[sizeof(dir) + 48];
    int         fd, made;

    if (!fg_tenant_id_valid(tenant, strlen(tenant))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "not a tenant id");
    }

    snprintf(dir, sizeof(dir), "%s/" LD_FILE_CHECKPOINTS, tenant);
    made = mkdirat(f->dir_fd, dir, 0700) == 0;
    if (!made && errno != EEXIST) {
        return ld_file_sys(err, "mkdir", dir);
    }
    if (made && ld_file_sync_dir(f, tenant, err) != FG_OK) {
        return err->code;
    }

    snprintf(path, sizeof(path), "%s/%020llu.checkpoint", dir,
             (unsigned long long) seq);
    snprintf(tmp, sizeof(tmp), "%s/.%020llu.tmp", dir,
             (unsigned long long) seq);

    /* written whole under a temporary name, then renamed: never half */
    fd = openat(f->dir_fd, tmp,
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        return ld_file_sys(err, "open", tmp);
    }
    if (ld_file_pwrite_all(fd, (const unsigned char *) note, len, 0) != 0
        || fsync(fd) != 0)
    {
        close(fd);
        (void) unlinkat(f->dir_fd, tmp, 0);
        return ld_file_sys(err, "write", tmp);
    }
    close(fd);

    if (renameat(f->dir_fd, tmp, f->dir_fd, path) != 0) {
        (void) unlinkat(f->dir_fd, tmp, 0);
        return ld_file_sys(err, "rename", tmp);
    }

    return ld_file_sync_dir(f, dir, err);
}

/*
 * fg_spool.c -- the evidence spool file (fg_spool.h has the format and
 * what is checked).
 */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg_hash.h"
#include "fg_spool.h"

#define FG_SPOOL_FIXED  (1 + 1 + 64 + 4 + 4)   /* payload without its data */

/* blocks allocated ahead of the appends, so not every append allocates */
#define FG_SPOOL_BACK_AHEAD  (64 * 1024)


struct fg_spool_s {
    int            fd;
    char          *path;
    uint64_t       max_bytes;
    uint64_t       size;         /* bytes in the file */
    uint64_t       entries;      /* entries in the file */
    uint64_t       read_off;     /* where fg_spool_next() reads */
    int            dir_synced;
    int            dirty;        /* written since the last fsync */
    int            broken;       /* a failed write could not be cut */
    uint64_t       reserved;     /* room held (fg_spool_reserve) */
    uint64_t       backed;       /* blocks allocated up to this offset */
    int            no_fallocate; /* the file system cannot allocate */
    fg_sha256_t   *h;
    fg_buffer_t    queue;        /* the entry being written */
    fg_buffer_t    in;           /* the entry fg_spool_next() read */
};


static uint32_t
fg_spool_get32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}


static void
fg_spool_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


/* check = first half of sha256(length bytes || payload) */
static int
fg_spool_check(fg_sha256_t *h, const unsigned char *len4,
    const unsigned char *payload, size_t n,
    unsigned char check[FG_SPOOL_CHECK_LEN])
{
    unsigned char  md[FG_SHA256_LEN];

    if (fg_sha256_init(h) != FG_OK || fg_sha256_update(h, len4, 4) != FG_OK
        || fg_sha256_update(h, payload, n) != FG_OK
        || fg_sha256_final(h, md) != FG_OK)
    {
        return FG_ERR_CRYPTO;
    }

    memcpy(check, md, FG_SPOOL_CHECK_LEN);
    return FG_OK;
}


/* The payload fields of p[0..n) into *e; the check has passed. */
static int
fg_spool_fields(const unsigned char *p, size_t n, fg_spool_entry_t *e,
    fg_error_t *err)
{
    size_t    off, tl;
    uint32_t  rl, ol;

    if (n < FG_SPOOL_FIXED || p[0] >= FG_RECORD_TYPES) {
        return fg_error_set(err, FG_ERR_INVALID, 0,
                            "spool entry: no record type");
    }

    tl = p[1];
    if (n < FG_SPOOL_FIXED + tl
        || !fg_tenant_id_valid((const char *) p + 2, tl))
    {
        return fg_error_set(err, FG_ERR_INVALID, 1,
                            "spool entry: the tenant id is not valid");
    }
    off = 2 + tl;

    if (!fg_sha256_hex_valid((const char *) p + off, 64)) {
        return fg_error_set(err, FG_ERR_INVALID, off,
                            "spool entry: the envelope hash is not 64 "
                            "lowercase hex digits");
    }
    e->hash = (const char *) p + off;
    off += 64;

    rl = fg_spool_get32(p + off);
    off += 4;
    if (rl == 0 || rl > FG_RECORD_MAX_BYTES || rl > n - off - 4) {
        return fg_error_set(err, FG_ERR_INVALID, off - 4,
                            "spool entry: the record length is not valid");
    }
    e->record = p + off;
    e->record_len = rl;
    off += rl;

    ol = fg_spool_get32(p + off);
    off += 4;
    if (ol > FG_SPOOL_OBS_MAX || ol != n - off) {
        return fg_error_set(err, FG_ERR_INVALID, off - 4,
                            "spool entry: the observational length is not "
                            "valid");
    }
    e->obs = p + off;
    e->obs_len = ol;

    e->type = (fg_record_type_t) p[0];
    e->tenant = (const char *) p + 2;
    e->tenant_len = tl;

    return FG_OK;
}


int
fg_spool_parse(fg_sha256_t *h, const unsigned char *p, size_t n,
    fg_spool_entry_t *e, size_t *used, fg_error_t *err)
{
    uint32_t       len;
    unsigned char  check[FG_SPOOL_CHECK_LEN];
    int            rc;

    if (n < 8) {
        /* a torn header is still checked as far as it goes */
        if (memcmp(p, FG_SPOOL_ENTRY_MAGIC, n < 4 ? n : 4) != 0) {
            return fg_error_set(err, FG_ERR_INVALID, 0,
                                "spool entry: no entry magic");
        }
        return FG_SPOOL_MORE;
    }

    if (memcmp(p, FG_SPOOL_ENTRY_MAGIC, 4) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, 0,
                            "spool entry: no entry magic");
    }

    len = fg_spool_get32(p + 4);
    if (len < FG_SPOOL_FIXED || len > FG_SPOOL_PAYLOAD_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, 4,
                            "spool entry: a payload of %u bytes is out of "
                            "bounds", (unsigned) len);
    }

    if (n < FG_SPOOL_FRAME + (size_t) len) {
        return FG_SPOOL_MORE;
    }

    rc = fg_spool_check(h, p + 4, p + 8, len, check);
    if (rc != FG_OK) {
        return fg_error_set(err, rc, FG_NO_OFFSET, "SHA-256 failed");
    }
    if (memcmp(check, p + 8 + len, FG_SPOOL_CHECK_LEN) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, 8 + len,
                            "spool entry: the check does not match");
    }

    rc = fg_spool_fields(p + 8, len, e, err);
    if (rc != FG_OK) {
        if (err != NULL && err->offset != FG_NO_OFFSET) {
            err->offset += 8;
        }
        return rc;
    }

    *used = FG_SPOOL_FRAME + len;
    return FG_OK;
}


int
fg_spool_encode(fg_sha256_t *h, const fg_spool_entry_t *e, fg_buffer_t *out,
    fg_error_t *err)
{
    size_t         start, len;
    unsigned char  b4[4], check[FG_SPOOL_CHECK_LEN], tl, type;
    int            rc;

    if (e == NULL || (unsigned) e->type >= FG_RECORD_TYPES
        || e->tenant == NULL || !fg_tenant_id_valid(e->tenant, e->tenant_len)
        || e->hash == NULL || !fg_sha256_hex_valid(e->hash, 64)
        || e->record == NULL || e->record_len == 0
        || e->record_len > FG_RECORD_MAX_BYTES
        || (e->obs == NULL && e->obs_len > 0) || e->obs_len > FG_SPOOL_OBS_MAX)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "spool entry: not a valid record to spool");
    }

    len = FG_SPOOL_FIXED + e->tenant_len + e->record_len + e->obs_len;
    start = out->len;
    tl = (unsigned char) e->tenant_len;
    type = (unsigned char) e->type;

    fg_spool_put32(b4, (uint32_t) len);

    rc = fg_buffer_append(out, FG_SPOOL_ENTRY_MAGIC, 4);
    rc = rc ? rc : fg_buffer_append(out, b4, 4);
    rc = rc ? rc : fg_buffer_append(out, &type, 1);
    rc = rc ? rc : fg_buffer_append(out, &tl, 1);
    rc = rc ? rc : fg_buffer_append(out, e->tenant, e->tenant_len);
    rc = rc ? rc : fg_buffer_append(out, e->hash, 64);
    fg_spool_put32(b4, (uint32_t) e->record_len);
    rc = rc ? rc : fg_buffer_append(out, b4, 4);
    rc = rc ? rc : fg_buffer_append(out, e->record, e->record_len);
    fg_spool_put32(b4, (uint32_t) e->obs_len);
    rc = rc ? rc : fg_buffer_append(out, b4, 4);
    rc = rc ? rc : fg_buffer_append(out, e->obs, e->obs_len);

    if (rc == FG_OK) {
        rc = fg_spool_check(h, out->data + start + 4, out->data + start + 8,
                            len, check);
        rc = rc ? rc : fg_buffer_append(out, check, sizeof(check));
    }

    if (rc != FG_OK) {
        out->len = start;
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "spool entry: cannot be encoded: %s",
                            fg_strerror(rc));
    }

    return FG_OK;
}


/* ------------------------------------------------------------- a file */

static int
fg_spool_sys(fg_error_t *err, const fg_spool_t *s, const char *what)
{
    return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "spool %s: %s: %s",
                        s->path, what, strerror(errno));
}


/* Read up to n bytes at off into s->in (replacing what it held). */
static int
fg_spool_pread(fg_spool_t *s, uint64_t off, size_t n, fg_error_t *err)
{
    ssize_t         got;
    size_t          done;
    unsigned char  *p;

    if (s->in.cap < n) {
        p = realloc(s->in.data, n);
        if (p == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        s->in.data = p;
        s->in.cap = n;
    }

    for (done = 0; done < n; done += (size_t) got) {
        got = pread(s->fd, s->in.data + done, n - done,
                    (off_t) (off + done));
        if (got < 0) {
            if (errno == EINTR) {
                got = 0;
                continue;
            }
            return fg_spool_sys(err, s, "read");
        }
        if (got == 0) {
            break;
        }
    }

    s->in.len = done;
    return FG_OK;
}


/*
 * The entry at s->read_off: FG_OK with *e and *used, FG_SPOOL_MORE when the
 * file ends inside it, or an error.
 */
static int
fg_spool_read_at(fg_spool_t *s, fg_spool_entry_t *e, size_t *used,
    fg_error_t *err)
{
    uint64_t  left;
    size_t    want;
    int       rc;

    left = s->size - s->read_off;
    if (left == 0) {
        return FG_SPOOL_MORE;
    }

    want = left < 8 ? (size_t) left : 8;
    rc = fg_spool_pread(s, s->read_off, want, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (want == 8 && memcmp(s->in.data, FG_SPOOL_ENTRY_MAGIC, 4) == 0) {
        want = FG_SPOOL_FRAME + fg_spool_get32(s->in.data + 4);
        if (want <= FG_SPOOL_FRAME + (size_t) FG_SPOOL_PAYLOAD_MAX) {
            if (want > left) {
                want = (size_t) left;
            }
            rc = fg_spool_pread(s, s->read_off, want, err);
            if (rc != FG_OK) {
                return rc;
            }
        }
    }

    rc = fg_spool_parse(s->h, s->in.data, s->in.len, e, used, err);
    if (rc != FG_OK && rc != FG_SPOOL_MORE && err != NULL
        && err->offset != FG_NO_OFFSET)
    {
        err->offset += (size_t) s->read_off;
    }
    return rc;
}


/* Read the whole file: count its entries, cut a torn tail. */
static int
fg_spool_scan(fg_spool_t *s, uint64_t *torn, fg_error_t *err)
{
    fg_spool_entry_t  e;
    size_t            used;
    int               rc;

    s->read_off = FG_SPOOL_MAGIC_LEN;
    s->entries = 0;

    for ( ;; ) {
        rc = fg_spool_read_at(s, &e, &used, err);
        if (rc == FG_SPOOL_MORE) {
            break;
        }
        if (rc != FG_OK) {
            if (rc == FG_ERR_INVALID
                && s->read_off + FG_SPOOL_FRAME > s->size)
            {
                break;              /* a torn header: garbage, cut it */
            }
            return rc;
        }
        s->read_off += used;
        s->entries++;
    }

    *torn = s->size - s->read_off;

    if (*torn > 0) {
        if (ftruncate(s->fd, (off_t) s->read_off) != 0
            || fsync(s->fd) != 0)
        {
            return fg_spool_sys(err, s, "cutting the torn tail");
        }
        s->size = s->read_off;
    }

    s->read_off = FG_SPOOL_MAGIC_LEN;
    return FG_OK;
}


fg_spool_t *
fg_spool_open(const char *path, uint64_t max_bytes, uint64_t *torn,
    fg_error_t *err)
{
    fg_spool_t     *s;
    struct stat     st;
    unsigned char   magic[FG_SPOOL_MAGIC_LEN];
    uint64_t        cut;
    int             rc;

    *torn = 0;

    s = calloc(1, sizeof(*s));
    if (s != NULL) {
        s->fd = -1;
    }
    if (s == NULL || (s->path = strdup(path)) == NULL
        || (s->h = fg_sha256_new()) == NULL)
    {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        goto failed;
    }
    s->fd = -1;
    s->max_bytes = max_bytes;
    fg_buffer_init(&s->queue, 0);
    fg_buffer_init(&s->in, 0);

    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->fd == -1) {
        fg_spool_sys(err, s, "open");
        goto failed;
    }

    if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                         "spool %s: in use by another process", path);
        } else {
            fg_spool_sys(err, s, "lock");
        }
        goto failed;
    }

    if (fstat(s->fd, &st) != 0) {
        fg_spool_sys(err, s, "stat");
        goto failed;
    }
    if (!S_ISREG(st.st_mode)) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                     "spool %s: not a regular file", path);
        goto failed;
    }
    s->size = (uint64_t) st.st_size;

    if (s->size < FG_SPOOL_MAGIC_LEN) {
        /* new, or torn before its magic was whole: start it */
        if (s->size > 0
            && (pread(s->fd, magic, (size_t) s->size, 0) != (ssize_t) s->size
                || memcmp(magic, FG_SPOOL_MAGIC, (size_t) s->size) != 0))
        {
            fg_error_set(err, FG_ERR_INVALID, 0,
                         "spool %s: not a spool file (no FGSPOOL1 magic)",
                         path);
            goto failed;
        }
        *torn = s->size;
        if (ftruncate(s->fd, 0) != 0
            || pwrite(s->fd, FG_SPOOL_MAGIC, FG_SPOOL_MAGIC_LEN, 0)
               != FG_SPOOL_MAGIC_LEN
            || fsync(s->fd) != 0)
        {
            fg_spool_sys(err, s, "write");
            goto failed;
        }
        s->size = FG_SPOOL_MAGIC_LEN;
        s->read_off = FG_SPOOL_MAGIC_LEN;
        return s;
    }

    if (pread(s->fd, magic, sizeof(magic), 0) != (ssize_t) sizeof(magic)
        || memcmp(magic, FG_SPOOL_MAGIC, FG_SPOOL_MAGIC_LEN) != 0)
    {
        fg_error_set(err, FG_ERR_INVALID, 0,
                     "spool %s: not a spool file (no FGSPOOL1 magic)", path);
        goto failed;
    }

    rc = fg_spool_scan(s, &cut, err);
    if (rc != FG_OK) {
        goto failed;
    }
    *torn = cut;

    return s;

failed:

    fg_spool_close(s);
    return NULL;
}


/* Write the entry in s->queue at the end of the file. */
static int
fg_spool_write(fg_spool_t *s, fg_error_t *err)
{
    ssize_t  n;
    size_t   done;

    for (done = 0; done < s->queue.len; done += (size_t) n) {
        n = pwrite(s->fd, s->queue.data + done, s->queue.len - done,
                   (off_t) (s->size + done));
        if (n < 0) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }
            /*
             * Cut what was written of it, so the next entry does not
             * follow half of this one; if even that fails, the part left
             * is a torn tail, and nothing more is appended after it.
             */
            s->queue.len = 0;
            (void) fg_spool_sys(err, s, "write");
            if (done > 0 && ftruncate(s->fd, (off_t) s->size) != 0) {
                s->broken = 1;
            }
            return FG_ERR_IO;
        }
    }

    s->size += s->queue.len;
    s->queue.len = 0;
    s->dirty = 1;

    return FG_OK;
}


static int
fg_spool_full(const fg_spool_t *s, fg_error_t *err)
{
    if (s->reserved == 0) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "spool %s is full (max_size %llu bytes)",
                            s->path, (unsigned long long) s->max_bytes);
    }

    return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                        "spool %s is full (max_size %llu bytes, %llu of "
                        "them held for records under way)", s->path,
                        (unsigned long long) s->max_bytes,
                        (unsigned long long) s->reserved);
}


/*
 * Have the file system allocate the file's blocks up to end (beyond its
 * size: FALLOC_FL_KEEP_SIZE, so a reader sees no new bytes), with some
 * ahead when there is room: room held is then room on the disk too, not
 * only under max_size.  A file system that cannot allocate ahead
 * (EOPNOTSUPP) is left to the accounting alone.
 */
static int
fg_spool_back(fg_spool_t *s, uint64_t end, fg_error_t *err)
{
    uint64_t  want;

    if (s->backed < s->size) {
        s->backed = s->size;
    }

    if (end <= s->backed || s->no_fallocate) {
        return FG_OK;
    }

    want = end + FG_SPOOL_BACK_AHEAD;
    if (s->max_bytes != 0 && want > s->max_bytes) {
        want = end > s->max_bytes ? end : s->max_bytes;
    }

    if (fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t) s->size,
                  (off_t) (want - s->size)) == 0)
    {
        s->backed = want;
        return FG_OK;
    }

    if (errno == EOPNOTSUPP || errno == ENOSYS) {
        s->no_fallocate = 1;
        return FG_OK;
    }

    if (errno == ENOSPC && want > end
        && fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t) s->size,
                     (off_t) (end - s->size)) == 0)
    {
        s->backed = end;
        return FG_OK;
    }

    return fg_spool_sys(err, s, "allocating room");
}


uint64_t
fg_spool_entry_bytes(size_t tenant_len, size_t record_len, size_t obs_len)
{
    return FG_SPOOL_FRAME + FG_SPOOL_FIXED + (uint64_t) tenant_len
           + record_len + obs_len;
}


int
fg_spool_reserve(fg_spool_t *s, uint64_t n, fg_error_t *err)
{
    int  rc;

    if (s->broken) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "spool %s: a failed write left a part of an "
                            "entry that could not be cut", s->path);
    }

    if (s->max_bytes != 0 && s->size + s->reserved + n > s->max_bytes) {
        return fg_spool_full(s, err);
    }

    rc = fg_spool_back(s, s->size + s->reserved + n, err);
    if (rc != FG_OK) {
        return rc;
    }

    s->reserved += n;

    return FG_OK;
}


void
fg_spool_release(fg_spool_t *s, uint64_t n)
{
    s->reserved = n < s->reserved ? s->reserved - n : 0;
}


uint64_t
fg_spool_reserved(const fg_spool_t *s)
{
    return s->reserved;
}


int
fg_spool_append_reserved(fg_spool_t *s, const fg_spool_entry_t *e,
    uint64_t reserved, fg_error_t *err)
{
    /* the entry takes the room held for it (and more, if there is) */
    fg_spool_release(s, reserved);

    return fg_spool_append(s, e, err);
}


int
fg_spool_append(fg_spool_t *s, const fg_spool_entry_t *e, fg_error_t *err)
{
    int  rc;

    if (s->broken) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                            "spool %s: a failed write left a part of an "
                            "entry that could not be cut", s->path);
    }

    s->queue.len = 0;

    rc = fg_spool_encode(s->h, e, &s->queue, err);
    if (rc != FG_OK) {
        return rc;
    }

    /* the room held for records under way is not this entry's */
    if (s->max_bytes != 0
        && s->size + s->queue.len + s->reserved > s->max_bytes)
    {
        s->queue.len = 0;
        return fg_spool_full(s, err);
    }

    rc = fg_spool_back(s, s->size + s->queue.len + s->reserved, err);
    if (rc != FG_OK) {
        s->queue.len = 0;
        return rc;
    }

    /*
     * Written at once, so the entry outlives the process (a SIGKILL, a
     * crash of the worker); fg_spool_sync() makes it outlive the machine.
     */
    rc = fg_spool_write(s, err);
    if (rc != FG_OK) {
        return rc;
    }

    s->entries++;
    return FG_OK;
}


int
fg_spool_rename(fg_spool_t *s, const char *path, fg_error_t *err)
{
    char  *copy;
    int    e;

    copy = strdup(path);
    if (copy == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }

    if (renameat2(AT_FDCWD, s->path, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
        e = errno;
        free(copy);
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                     "spool %s: cannot be renamed %s: %s", s->path, path,
                     strerror(e));
        errno = e;                  /* the caller tells EEXIST apart */
        return FG_ERR_IO;
    }

    free(s->path);
    s->path = copy;
    s->dir_synced = 0;
    return FG_OK;
}


int
fg_spool_sync(fg_spool_t *s, fg_error_t *err)
{
    char  *dir;
    int    dfd;

    if (s->dirty && fsync(s->fd) != 0) {
        return fg_spool_sys(err, s, "fsync");
    }
    s->dirty = 0;

    if (!s->dir_synced) {
        /* the file's name is durable too, once */
        dir = strdup(s->path);
        if (dir == NULL) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (dfd == -1 || fsync(dfd) != 0) {
            if (dfd != -1) {
                close(dfd);
            }
            return fg_spool_sys(err, s, "fsync of its directory");
        }
        close(dfd);
        s->dir_synced = 1;
    }

    return FG_OK;
}


uint64_t
fg_spool_bytes(const fg_spool_t *s)
{
    return s->size;
}


uint64_t
fg_spool_entries(const fg_spool_t *s)
{
    return s->entries;
}


int
fg_spool_next(fg_spool_t *s, fg_spool_entry_t *e, fg_error_t *err)
{
    size_t  used;
    int     rc;

    rc = fg_spool_read_at(s, e, &used, err);
    if (rc == FG_OK) {
        s->read_off += used;
    }
    return rc;
}


void
fg_spool_rewind(fg_spool_t *s)
{
    s->read_off = FG_SPOOL_MAGIC_LEN;
}


int
fg_spool_truncate(fg_spool_t *s, fg_error_t *err)
{
    fg_error_t  ignored;

    /* only what was read (and so sent) may go */
    if (s->read_off != s->size) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "spool %s: not emptied, %llu bytes not read yet",
                            s->path,
                            (unsigned long long) (s->size - s->read_off));
    }

    if (ftruncate(s->fd, FG_SPOOL_MAGIC_LEN) != 0 || fsync(s->fd) != 0) {
        return fg_spool_sys(err, s, "truncate");
    }

    s->size = FG_SPOOL_MAGIC_LEN;
    s->entries = 0;
    s->queue.len = 0;
    s->read_off = FG_SPOOL_MAGIC_LEN;

    /*
     * Cutting the file freed the blocks allocated ahead: allocate the room
     * still held again.  If the disk has none left now, the next append
     * or reservation finds out and is refused.
     */
    s->backed = s->size;
    (void) fg_spool_back(s, s->size + s->reserved, &ignored);

    return FG_OK;
}


void
fg_spool_close(fg_spool_t *s)
{
    if (s == NULL) {
        return;
    }

    if (s->fd != -1) {
        close(s->fd);               /* the lock goes with it */
    }

    fg_buffer_free(&s->queue);
    fg_buffer_free(&s->in);
    fg_sha256_free(s->h);
    free(s->path);
    free(s);
}

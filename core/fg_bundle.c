/*
 * fg_bundle.c -- policy bundles: reading a bundle from a directory or a
 * .tar.gz (libarchive), the layout checks, OPA-format signature
 * verification (fg_jose), the bundle digest, and signing and writing
 * bundles for the CLI.
 *
 * Nothing of a bundle is interpreted before its signature is verified
 * but the names and sizes of its files; `.manifest` is read after.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fg_bundle.h"
#include "fg_utf8.h"

#define FG_BUNDLE_SHOW_MAX   96         /* bytes of a name in a message */
#define FG_BUNDLE_LEEWAY     60         /* seconds, for exp/nbf if present */
#define FG_BUNDLE_TOKEN_MAX  (1024 * 1024)  /* a JWS listing many files */

typedef struct {
    fg_bundle_file_t  pub;
    char              hex[FG_SHA256_HEX_LEN + 1];
} fg_bundle_entry_t;

struct fg_bundle_s {
    fg_bundle_entry_t   *files;
    size_t               nfiles;
    size_t               cap;
    size_t               total;         /* bytes of all files */
    fg_bundle_limits_t   limits;
    json_t              *manifest;
    int                  verified;
    char                 revision[FG_BUNDLE_REVISION_MAX + 1];
    char                 kid[FG_JWK_KID_MAX + 1];
    char                 sha256[FG_SHA256_HEX_LEN + 1];
};

/* A name made safe to print: no control bytes, bounded. */
typedef struct {
    char  s[FG_BUNDLE_SHOW_MAX + 4];
} fg_bundle_show_t;


/* -------------------------------------------------------------- names */

static const char *
fg_bundle_show(fg_bundle_show_t *out, const char *name, size_t len)
{
    size_t         i, n;
    unsigned char  c;

    n = len < FG_BUNDLE_SHOW_MAX ? len : FG_BUNDLE_SHOW_MAX;

    for (i = 0; i < n; i++) {
        c = (unsigned char) name[i];
        out->s[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char) c;
    }

    if (n < len) {
        memcpy(out->s + n, "...", 3);
        n += 3;
    }

    out->s[n] = '\0';

    return out->s;
}


/* 1 when s[0..n) is UTF-8 without C1 controls (U+0080..U+009F); else 0. */
static int
fg_bundle_utf8_ok(const unsigned char *s, size_t n)
{
    fg_utf8_error_t  why;
    uint32_t         cp;
    size_t           i = 0, k, at;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }

        k = fg_utf8_sequence(s + i, n - i, &cp, &why, &at);
        if (k == 0 || (cp >= 0x80 && cp <= 0x9f)) {
            return 0;
        }

        i += k;
    }

    return 1;
}


/*
 * Why name[0..len) cannot be a path in a bundle, or NULL when it can:
 * relative, '/'-separated segments that are neither empty, "." nor "..".
 */
static const char *
fg_bundle_name_problem(const char *name, size_t len)
{
    size_t  i, seg;

    if (len == 0) {
        return "empty name";
    }

    if (len > FG_BUNDLE_NAME_MAX) {
        return "name too long";
    }

    if (name[0] == '/') {
        return "absolute path";
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) name[i] < 0x20 || name[i] == 0x7f) {
            return "name has control characters";
        }
        if (name[i] == '\\') {
            return "name has a backslash";
        }
    }

    if (!fg_bundle_utf8_ok((const unsigned char *) name, len)) {
        return "name is not UTF-8 (or has control characters)";
    }

    seg = 0;
    for (i = 0; i <= len; i++) {
        if (i < len && name[i] != '/') {
            continue;
        }
        if (i - seg == 2 && name[seg] == '.' && name[seg + 1] == '.') {
            return "path escapes the bundle";
        }
        if (i == seg) {
            return "empty path segment";
        }
        if (i - seg == 1 && name[seg] == '.') {
            return "'.' path segment";
        }
        seg = i + 1;
    }

    return NULL;
}


/* ------------------------------------------------------- bundle object */

static fg_bundle_t *
fg_bundle_alloc(const fg_bundle_limits_t *limits)
{
    fg_bundle_t  *b;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }

    if (limits != NULL) {
        b->limits = *limits;
    }
    if (b->limits.max_files == 0) {
        b->limits.max_files = FG_BUNDLE_DEFAULT_MAX_FILES;
    }
    if (b->limits.max_file_size == 0) {
        b->limits.max_file_size = FG_BUNDLE_DEFAULT_MAX_FILE_SIZE;
    }
    if (b->limits.max_total == 0) {
        b->limits.max_total = FG_BUNDLE_DEFAULT_MAX_TOTAL;
    }

    return b;
}


void
fg_bundle_free(fg_bundle_t *b)
{
    size_t  i;

    if (b == NULL) {
        return;
    }

    for (i = 0; i < b->nfiles; i++) {
        free((void *) b->files[i].pub.name);
        free((void *) b->files[i].pub.data);
    }

    free(b->files);
    json_decref(b->manifest);
    free(b);
}


/* Would a file of len bytes fit the size limits?  Sets err if not. */
static int
fg_bundle_check_size(const fg_bundle_t *b, const char *name, size_t nlen,
    uint64_t len, fg_error_t *err)
{
    fg_bundle_show_t  show;

    if (len > b->limits.max_file_size) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "%s: larger than %zu bytes",
                            fg_bundle_show(&show, name, nlen),
                            b->limits.max_file_size);
    }

    if (len > b->limits.max_total - b->total
        || b->total > b->limits.max_total)
    {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "%s: the bundle exceeds %zu bytes in all",
                            fg_bundle_show(&show, name, nlen),
                            b->limits.max_total);
    }

    return FG_OK;
}


/*
 * Append the file name[0..nlen) with data[0..len) (malloc'd, len + 1
 * bytes, NUL-terminated; owned by b from now on, freed on error).
 */
static int
fg_bundle_push(fg_bundle_t *b, const char *name, size_t nlen,
    unsigned char *data, size_t len, fg_error_t *err)
{
    fg_bundle_show_t    show;
    fg_bundle_entry_t  *e, *files;
    unsigned char       md[FG_SHA256_LEN];
    char               *copy;
    size_t              cap;

    if (b->nfiles >= b->limits.max_files) {
        free(data);
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "%s: the bundle has more than %zu files",
                            fg_bundle_show(&show, name, nlen),
                            b->limits.max_files);
    }

    if (b->nfiles == b->cap) {
        cap = b->cap == 0 ? 16 : b->cap * 2;
        files = realloc(b->files, cap * sizeof(*files));
        if (files == NULL) {
            free(data);
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
        b->files = files;
        b->cap = cap;
    }

    copy = malloc(nlen + 1);
    if (copy == NULL) {
        free(data);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }
    memcpy(copy, name, nlen);
    copy[nlen] = '\0';

    if (fg_sha256(data, len, md) != FG_OK) {
        free(copy);
        free(data);
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    e = &b->files[b->nfiles++];
    e->pub.name = copy;
    e->pub.data = data;
    e->pub.len = len;
    fg_hex_sha256(md, e->hex);
    b->total += len;

    return FG_OK;
}


static int
fg_bundle_entry_cmp(const void *x, const void *y)
{
    const fg_bundle_entry_t  *a = x, *b = y;

    return strcmp(a->pub.name, b->pub.name);
}


/* Sort the files by name; refuse a name that appears twice. */
static int
fg_bundle_sort(fg_bundle_t *b, fg_error_t *err)
{
    fg_bundle_show_t  show;
    const char       *name;
    size_t            i;

    if (b->nfiles > 1) {
        qsort(b->files, b->nfiles, sizeof(b->files[0]), fg_bundle_entry_cmp);
    }

    for (i = 1; i < b->nfiles; i++) {
        name = b->files[i].pub.name;
        if (strcmp(b->files[i - 1].pub.name, name) == 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "%s: appears twice in the bundle",
                                fg_bundle_show(&show, name, strlen(name)));
        }
    }

    return FG_OK;
}


static fg_bundle_entry_t *
fg_bundle_find(const fg_bundle_t *b, const char *name)
{
    fg_bundle_entry_t  key;

    if (b->nfiles == 0) {
        return NULL;
    }

    key.pub.name = name;

    return bsearch(&key, b->files, b->nfiles, sizeof(b->files[0]),
                   fg_bundle_entry_cmp);
}


/* ------------------------------------------------------------ archives */

/* Read the data of the current entry (size bytes) into a new buffer. */
static int
fg_bundle_read_entry(struct archive *a, const char *name, size_t nlen,
    size_t size, unsigned char **out, fg_error_t *err)
{
    fg_bundle_show_t  show;
    unsigned char    *buf;
    size_t            got = 0;
    la_ssize_t        n;

    buf = malloc(size + 1);
    if (buf == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    while (got < size) {
        n = archive_read_data(a, buf + got, size - got);
        if (n < 0) {
            free(buf);
            return fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                                "%s: archive truncated or corrupt: %s",
                                fg_bundle_show(&show, name, nlen),
                                archive_error_string(a));
        }
        if (n == 0) {
            break;
        }
        got += (size_t) n;
    }

    if (got != size) {
        free(buf);
        return fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                            "%s: archive truncated",
                            fg_bundle_show(&show, name, nlen));
    }

    buf[size] = '\0';
    *out = buf;

    return FG_OK;
}


/* Check and take one archive entry. */
static int
fg_bundle_take_entry(fg_bundle_t *b, struct archive *a,
    struct archive_entry *e, fg_error_t *err)
{
    fg_bundle_show_t  show;
    const char       *name, *why;
    unsigned char    *data = NULL;
    size_t            nlen;
    la_int64_t        size;
    unsigned          type;
    int               rc;

    name = archive_entry_pathname(e);
    if (name == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "archive: an entry without a usable name");
    }

    while (name[0] == '.' && name[1] == '/') {
        name += 2;
    }

    nlen = strlen(name);
    type = archive_entry_filetype(e);

    if (type == AE_IFDIR) {
        while (nlen > 0 && name[nlen - 1] == '/') {
            nlen--;
        }
        if (nlen == 0 || (nlen == 1 && name[0] == '.')) {
            return FG_OK;                       /* the bundle's root */
        }
    }

    why = fg_bundle_name_problem(name, nlen);
    if (why != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s: %s",
                            fg_bundle_show(&show, name, nlen), why);
    }

    if (archive_entry_hardlink(e) != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: hard links are not allowed",
                            fg_bundle_show(&show, name, nlen));
    }

    if (type == AE_IFDIR) {
        return FG_OK;
    }

    if (type != AE_IFREG) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: %s", fg_bundle_show(&show, name, nlen),
                            type == AE_IFLNK
                            ? "symbolic links are not allowed"
                            : "not a regular file or a directory");
    }

    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: size unknown",
                            fg_bundle_show(&show, name, nlen));
    }

    size = archive_entry_size(e);

    rc = fg_bundle_check_size(b, name, nlen, (uint64_t) size, err);
    if (rc != FG_OK) {
        return rc;
    }

    rc = fg_bundle_read_entry(a, name, nlen, (size_t) size, &data, err);
    if (rc != FG_OK) {
        return rc;
    }

    return fg_bundle_push(b, name, nlen, data, (size_t) size, err);
}


/* Read every entry of the .tar.gz in data[0..len) into b. */
static int
fg_bundle_read_archive(fg_bundle_t *b, const unsigned char *data,
    size_t len, fg_error_t *err)
{
    struct archive        *a;
    struct archive_entry  *e;
    size_t                 entries = 0, max_entries;
    int                    r, rc = FG_OK;

    a = archive_read_new();
    if (a == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    max_entries = b->limits.max_files * 2 + 16;

    if (archive_read_support_filter_gzip(a) != ARCHIVE_OK
        || archive_read_support_format_tar(a) != ARCHIVE_OK)
    {
        rc = fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                          "archive: %s", archive_error_string(a));
        goto done;
    }

    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                          "archive: not a gzip archive");
        goto done;
    }

    if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
        rc = fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                          "archive: not a gzip archive");
        goto done;
    }

    for ( ;; ) {
        r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r != ARCHIVE_OK) {
            rc = fg_error_set(err, FG_ERR_SYNTAX, FG_NO_OFFSET,
                              "archive: truncated or corrupt: %s",
                              archive_error_string(a));
            goto done;
        }
        if (++entries > max_entries) {
            rc = fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                              "archive: more than %zu entries",
                              max_entries);
            goto done;
        }
        rc = fg_bundle_take_entry(b, a, e, err);
        if (rc != FG_OK) {
            goto done;
        }
    }

done:

    archive_read_free(a);

    return rc;
}


/* --------------------------------------------------------- directories */

/* Read the regular file fd (size bytes per fstat) into a new buffer. */
static int
fg_bundle_read_fd(int fd, const char *name, size_t size, unsigned char **out,
    fg_error_t *err)
{
    unsigned char  *buf;
    size_t          got = 0;
    ssize_t         n;

    buf = malloc(size + 1);
    if (buf == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    while (got < size) {
        n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            free(buf);
            return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                "%s: read failed: %s", name,
                                n == 0 ? "file shrank" : strerror(errno));
        }
        got += (size_t) n;
    }

    buf[size] = '\0';
    *out = buf;

    return FG_OK;
}


static int fg_bundle_read_dir(fg_bundle_t *b, int dfd, char *name,
    size_t plen, unsigned depth, fg_error_t *err);


/* Take the entry `name` (its last segment is leaf, in directory dfd). */
static int
fg_bundle_take_path(fg_bundle_t *b, int dfd, const char *leaf, char *name,
    size_t nlen, unsigned depth, fg_error_t *err)
{
    fg_bundle_show_t  show;
    struct stat       st;
    unsigned char    *data = NULL;
    const char       *why, *shown;
    int               fd, rc;

    shown = fg_bundle_show(&show, name, nlen);

    why = fg_bundle_name_problem(name, nlen);
    if (why != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s: %s",
                            shown, why);
    }

    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", shown,
                            strerror(errno));
    }

    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s: %s",
                            shown, S_ISLNK(st.st_mode)
                            ? "symbolic links are not allowed"
                            : "not a regular file or a directory");
    }

    fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
                | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", shown,
                          strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }

    if (S_ISDIR(st.st_mode)) {
        if (depth >= FG_BUNDLE_DEPTH_MAX) {
            close(fd);
            return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "%s: directories nested deeper than %d",
                                shown, FG_BUNDLE_DEPTH_MAX);
        }
        return fg_bundle_read_dir(b, fd, name, nlen, depth + 1, err);
    }

    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: not a regular file or a directory", shown);
    }

    rc = fg_bundle_check_size(b, name, nlen, (uint64_t) st.st_size, err);
    if (rc == FG_OK) {
        rc = fg_bundle_read_fd(fd, shown, (size_t) st.st_size, &data, err);
    }

    close(fd);

    if (rc != FG_OK) {
        return rc;
    }

    return fg_bundle_push(b, name, nlen, data, (size_t) st.st_size, err);
}


/*
 * Read the directory dfd (taken: closed here) whose path in the bundle is
 * name[0..plen) ("" for the root); name has FG_BUNDLE_NAME_MAX + 1 bytes.
 */
static int
fg_bundle_read_dir(fg_bundle_t *b, int dfd, char *name, size_t plen,
    unsigned depth, fg_error_t *err)
{
    fg_bundle_show_t  show;
    struct dirent    *de;
    DIR              *d;
    size_t            nlen, len;
    int               rc = FG_OK;

    d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s",
                            plen ? fg_bundle_show(&show, name, plen) : ".",
                            strerror(errno));
    }

    for ( ;; ) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET,
                                  "%s: %s", plen
                                  ? fg_bundle_show(&show, name, plen) : ".",
                                  strerror(errno));
            }
            break;
        }

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }

        len = strlen(de->d_name);
        nlen = plen + (plen ? 1 : 0) + len;
        if (nlen > FG_BUNDLE_NAME_MAX) {
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "%s: name too long",
                              fg_bundle_show(&show, de->d_name, len));
            break;
        }

        if (plen) {
            name[plen] = '/';
        }
        memcpy(name + nlen - len, de->d_name, len);
        name[nlen] = '\0';

        rc = fg_bundle_take_path(b, dirfd(d), de->d_name, name, nlen, depth,
                                 err);
        name[plen] = '\0';
        if (rc != FG_OK) {
            break;
        }
    }

    closedir(d);

    return rc;
}


/* ----------------------------------------------------------- signature */

/* Check one entry of the signed `files` list against the bundle. */
static int
fg_bundle_match_one(fg_bundle_t *b, json_t *item, unsigned char *seen,
    fg_error_t *err)
{
    fg_bundle_show_t    show;
    fg_bundle_entry_t  *e;
    const char         *name, *hash, *alg, *key;
    json_t             *v;

    if (!json_is_object(item)
        || !json_is_string(json_object_get(item, "name")))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: a files entry without a name",
                            FG_BUNDLE_SIGNATURES);
    }

    name = json_string_value(json_object_get(item, "name"));
    fg_bundle_show(&show, name, strlen(name));

    json_object_foreach(item, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "hash") != 0
            && strcmp(key, "algorithm") != 0)
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "%s: unexpected member in its files entry",
                                show.s);
        }
    }

    alg = json_string_value(json_object_get(item, "algorithm"));
    if (alg == NULL || strcmp(alg, "SHA-256") != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: hash algorithm not supported "
                            "(SHA-256 only)", show.s);
    }

    hash = json_string_value(json_object_get(item, "hash"));
    if (hash == NULL || !fg_sha256_hex_valid(hash, strlen(hash))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: hash is not 64 lowercase hex digits",
                            show.s);
    }

    e = strcmp(name, FG_BUNDLE_SIGNATURES) == 0 ? NULL
                                                : fg_bundle_find(b, name);
    if (e == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: listed in the signature but not in the "
                            "bundle", show.s);
    }

    if (seen[e - b->files]) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: listed twice in the signature", show.s);
    }
    seen[e - b->files] = 1;

    if (strcmp(hash, e->hex) != 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: sha256 does not match the signature",
                            show.s);
    }

    return FG_OK;
}


/* The signed `files` list must name each file but the signatures once. */
static int
fg_bundle_match_files(fg_bundle_t *b, json_t *files, fg_error_t *err)
{
    fg_bundle_show_t  show;
    unsigned char    *seen;
    const char       *name;
    size_t            i;
    int               rc = FG_OK;

    if (!json_is_array(files)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: the signature has no files list",
                            FG_BUNDLE_SIGNATURES);
    }

    seen = calloc(b->nfiles + 1, 1);
    if (seen == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    for (i = 0; i < json_array_size(files) && rc == FG_OK; i++) {
        rc = fg_bundle_match_one(b, json_array_get(files, i), seen, err);
    }

    for (i = 0; i < b->nfiles && rc == FG_OK; i++) {
        name = b->files[i].pub.name;
        if (!seen[i] && strcmp(name, FG_BUNDLE_SIGNATURES) != 0) {
            rc = fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                              "%s: not listed in the signature",
                              fg_bundle_show(&show, name, strlen(name)));
        }
    }

    free(seen);

    return rc;
}


/* The one JWS of .signatures.json, or an error. */
static int
fg_bundle_signature_token(const fg_bundle_entry_t *sig, json_t **doc,
    const char **token, fg_error_t *err)
{
    json_error_t  jerr;
    json_t       *list;
    const char   *key;
    json_t       *v;

    *doc = json_loadb((const char *) sig->pub.data, sig->pub.len,
                      JSON_REJECT_DUPLICATES, &jerr);
    if (*doc == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: not JSON: %s", FG_BUNDLE_SIGNATURES,
                            jerr.text);
    }

    json_object_foreach(*doc, key, v) {
        if (strcmp(key, "signatures") != 0) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "%s: unexpected member (only "
                                "\"signatures\")", FG_BUNDLE_SIGNATURES);
        }
    }

    list = json_object_get(*doc, "signatures");
    if (!json_is_array(list)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: no \"signatures\" array",
                            FG_BUNDLE_SIGNATURES);
    }

    if (json_array_size(list) != 1) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: %zu signatures, exactly one is required",
                            FG_BUNDLE_SIGNATURES, json_array_size(list));
    }

    *token = json_string_value(json_array_get(list, 0));
    if (*token == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: the signature is not a string",
                            FG_BUNDLE_SIGNATURES);
    }

    return FG_OK;
}


/* Claims the signature carries besides files: keyid must name the key. */
static int
fg_bundle_check_claims(const fg_jws_t *jws, const char *kid,
    fg_error_t *err)
{
    json_t  *keyid;

    if (jws->alg != FG_JWS_EDDSA && jws->alg != FG_JWS_ES256
        && jws->alg != FG_JWS_RS256)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: signature not valid: %s is not accepted "
                            "for bundles (EdDSA, ES256, RS256)",
                            FG_BUNDLE_SIGNATURES,
                            fg_jws_alg_name(jws->alg));
    }

    keyid = json_object_get(jws->claims, "keyid");
    if (keyid != NULL && (!json_is_string(keyid)
                          || strcmp(json_string_value(keyid), kid) != 0))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: the keyid claim does not name the key "
                            "that verified the signature",
                            FG_BUNDLE_SIGNATURES);
    }

    return FG_OK;
}


static int
fg_bundle_verify(fg_bundle_t *b, const fg_keyset_t *keys, fg_error_t *err)
{
    fg_jws_verify_opts_t  opts;
    fg_bundle_entry_t    *sig;
    fg_error_t            jerr;
    fg_jws_t              jws;
    const char           *token = NULL, *kid;
    json_t               *doc = NULL;
    int                   rc;

    sig = fg_bundle_find(b, FG_BUNDLE_SIGNATURES);
    if (sig == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: missing: the bundle is not signed",
                            FG_BUNDLE_SIGNATURES);
    }

    rc = fg_bundle_signature_token(sig, &doc, &token, err);
    if (rc != FG_OK) {
        json_decref(doc);
        return rc;
    }

    memset(&opts, 0, sizeof(opts));
    memset(&jws, 0, sizeof(jws));
    opts.now = time(NULL);
    opts.leeway = FG_BUNDLE_LEEWAY;
    opts.max_len = FG_BUNDLE_TOKEN_MAX;

    rc = fg_jws_verify(keys, token, strlen(token), &opts, &jws, &jerr);
    json_decref(doc);

    if (rc != FG_OK) {
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "%s: signature not valid: %s",
                            FG_BUNDLE_SIGNATURES, jerr.msg);
    }

    kid = jws.key != NULL ? fg_jwk_kid(jws.key) : NULL;
    if (kid == NULL) {
        kid = "";
    }

    rc = fg_bundle_check_claims(&jws, kid, err);
    if (rc == FG_OK) {
        rc = fg_bundle_match_files(b, json_object_get(jws.claims, "files"),
                                   err);
    }

    if (rc == FG_OK) {
        strncpy(b->kid, kid, FG_JWK_KID_MAX);
        b->kid[FG_JWK_KID_MAX] = '\0';
        b->verified = 1;
    }

    fg_jws_release(&jws);

    return rc;
}


/* ------------------------------------------------------------ manifest */

/* Parse .manifest text; on success *out is its object (checked). */
static int
fg_bundle_parse_manifest(const unsigned char *p, size_t len, json_t **out,
    fg_error_t *err)
{
    json_error_t  jerr;
    json_t       *m, *v;
    const char   *rev;
    size_t        n, i;

    m = json_loadb((const char *) p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (m == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: not JSON: %s", FG_BUNDLE_MANIFEST,
                            jerr.text);
    }

    rev = json_string_value(json_object_get(m, "revision"));
    n = json_string_length(json_object_get(m, "revision"));

    if (!json_is_object(m) || rev == NULL) {
        json_decref(m);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: no revision string", FG_BUNDLE_MANIFEST);
    }

    if (n == 0 || n > FG_BUNDLE_REVISION_MAX) {
        json_decref(m);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: revision must have 1..%d characters",
                            FG_BUNDLE_MANIFEST, FG_BUNDLE_REVISION_MAX);
    }

    for (i = 0; i < n; i++) {
        if (rev[i] <= 0x20 || rev[i] >= 0x7f) {
            json_decref(m);
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "%s: revision must be printable ASCII "
                                "without spaces", FG_BUNDLE_MANIFEST);
        }
    }

    v = json_object_get(m, "roots");
    for (i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        if (!json_is_string(json_array_get(v, i))) {
            break;
        }
    }

    if ((v != NULL && (!json_is_array(v) || i != json_array_size(v)))
        || (json_object_get(m, "metadata") != NULL
            && !json_is_object(json_object_get(m, "metadata"))))
    {
        json_decref(m);
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: roots must be an array of strings and "
                            "metadata an object", FG_BUNDLE_MANIFEST);
    }

    *out = m;

    return FG_OK;
}


static void
fg_bundle_set_manifest(fg_bundle_t *b, json_t *m)
{
    json_decref(b->manifest);
    b->manifest = m;
    snprintf(b->revision, sizeof(b->revision), "%s",
             json_string_value(json_object_get(m, "revision")));
}


/* -------------------------------------------------------------- digest */

json_t *
fg_bundle_files_claims(const fg_bundle_t *b)
{
    const fg_bundle_entry_t  *e;
    json_t                   *list, *item;
    size_t                    i;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i < b->nfiles; i++) {
        e = &b->files[i];
        if (strcmp(e->pub.name, FG_BUNDLE_SIGNATURES) == 0) {
            continue;
        }
        item = json_pack("{s:s,s:s,s:s}", "name", e->pub.name,
                         "hash", e->hex, "algorithm", "SHA-256");
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}


static int
fg_bundle_digest(fg_bundle_t *b, fg_error_t *err)
{
    unsigned char   stage[1024], md[FG_SHA256_LEN];
    fg_sha256_t    *h;
    fg_sink_t       sink;
    json_t         *list;
    int             rc;

    b->sha256[0] = '\0';

    list = fg_bundle_files_claims(b);
    h = fg_sha256_new();
    if (list == NULL || h == NULL) {
        json_decref(list);
        fg_sha256_free(h);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    rc = fg_sha256_init(h);
    if (rc == FG_OK) {
        fg_sink_to_sha256(&sink, h, stage, sizeof(stage));
        rc = fg_jcs_canonicalize_json(list, 0, &sink, err);
        if (rc == FG_OK && fg_sha256_final(h, md) != FG_OK) {
            rc = fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                              "SHA-256 failed");
        }
    } else {
        rc = fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                          "SHA-256 failed");
    }

    if (rc == FG_OK) {
        fg_hex_sha256(md, b->sha256);
    }

    json_decref(list);
    fg_sha256_free(h);

    return rc;
}


/* ------------------------------------------------------------- loading */

/* After the files are read: duplicates, signature, manifest, policy. */
static int
fg_bundle_finish(fg_bundle_t *b, const fg_keyset_t *keys, int verify,
    fg_error_t *err)
{
    fg_bundle_entry_t  *e;
    json_t             *m;
    int                 rc;

    rc = fg_bundle_sort(b, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (verify) {
        rc = fg_bundle_verify(b, keys, err);
        if (rc != FG_OK) {
            return rc;
        }
    }

    e = fg_bundle_find(b, FG_BUNDLE_MANIFEST);
    if (e == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: missing", FG_BUNDLE_MANIFEST);
    }

    rc = fg_bundle_parse_manifest(e->pub.data, e->pub.len, &m, err);
    if (rc != FG_OK) {
        return rc;
    }
    fg_bundle_set_manifest(b, m);

    if (fg_bundle_find(b, FG_BUNDLE_POLICY) == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: missing", FG_BUNDLE_POLICY);
    }

    return fg_bundle_digest(b, err);
}


/* Read a whole file of at most max bytes. */
static int
fg_bundle_slurp(const char *path, size_t max, unsigned char **out,
    size_t *len, fg_error_t *err)
{
    struct stat  st;
    int          fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                          strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }

    if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > max) {
        close(fd);
        return fg_error_set(err, S_ISREG(st.st_mode) ? FG_ERR_LIMIT
                                                     : FG_ERR_INVALID,
                            FG_NO_OFFSET, "%s: %s", path,
                            S_ISREG(st.st_mode) ? "archive too large"
                            : "not a directory or a regular file");
    }

    rc = fg_bundle_read_fd(fd, path, (size_t) st.st_size, out, err);
    close(fd);
    *len = (size_t) st.st_size;

    return rc;
}


static int
fg_bundle_load_any(const char *path, const unsigned char *data, size_t len,
    const fg_keyset_t *keys, int verify, const fg_bundle_limits_t *limits,
    fg_bundle_t **out, fg_error_t *err)
{
    char            name[FG_BUNDLE_NAME_MAX + 1];
    unsigned char  *file = NULL;
    struct stat     st;
    fg_bundle_t    *b;
    size_t          max;
    int             fd, rc;

    *out = NULL;

    if (verify && keys == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "%s: no keys to verify the bundle with",
                            FG_BUNDLE_SIGNATURES);
    }

    b = fg_bundle_alloc(limits);
    if (b == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (path == NULL) {
        rc = fg_bundle_read_archive(b, data, len, err);

    } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        name[0] = '\0';
        rc = fd < 0 ? fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s",
                                   path, strerror(errno))
                    : fg_bundle_read_dir(b, fd, name, 0, 0, err);

    } else {
        max = b->limits.max_total + (b->limits.max_files * 2 + 16) * 1024;
        max = max < b->limits.max_total ? (size_t) -1 / 2 : max;
        rc = fg_bundle_slurp(path, max, &file, &len, err);
        if (rc == FG_OK) {
            rc = fg_bundle_read_archive(b, file, len, err);
        }
        free(file);
    }

    if (rc == FG_OK) {
        rc = fg_bundle_finish(b, keys, verify, err);
    }

    if (rc != FG_OK) {
        fg_bundle_free(b);
        return rc;
    }

    *out = b;

    return FG_OK;
}


int
fg_bundle_load(const char *path, const fg_keyset_t *keys,
    const fg_bundle_limits_t *limits, fg_bundle_t **out, fg_error_t *err)
{
    return fg_bundle_load_any(path, NULL, 0, keys, 1, limits, out, err);
}


int
fg_bundle_load_tar_gz(const unsigned char *data, size_t len,
    const fg_keyset_t *keys, const fg_bundle_limits_t *limits,
    fg_bundle_t **out, fg_error_t *err)
{
    return fg_bundle_load_any(NULL, data, len, keys, 1, limits, out, err);
}


int
fg_bundle_load_unverified(const char *path, const fg_bundle_limits_t *limits,
    fg_bundle_t **out, fg_error_t *err)
{
    return fg_bundle_load_any(path, NULL, 0, NULL, 0, limits, out, err);
}


int
fg_bundle_load_tar_gz_unverified(const unsigned char *data, size_t len,
    const fg_bundle_limits_t *limits, fg_bundle_t **out, fg_error_t *err)
{
    return fg_bundle_load_any(NULL, data, len, NULL, 0, limits, out, err);
}


/* ----------------------------------------------------------- accessors */

const char *
fg_bundle_revision(const fg_bundle_t *b)
{
    return b->revision;
}


const json_t *
fg_bundle_manifest(const fg_bundle_t *b)
{
    return b->manifest;
}


const char *
fg_bundle_sha256(const fg_bundle_t *b)
{
    return b->sha256;
}


int
fg_bundle_verified(const fg_bundle_t *b)
{
    return b->verified;
}


const char *
fg_bundle_kid(const fg_bundle_t *b)
{
    return b->kid;
}


size_t
fg_bundle_file_count(const fg_bundle_t *b)
{
    return b->nfiles;
}


const fg_bundle_file_t *
fg_bundle_file_at(const fg_bundle_t *b, size_t i)
{
    return i < b->nfiles ? &b->files[i].pub : NULL;
}


const fg_bundle_file_t *
fg_bundle_file(const fg_bundle_t *b, const char *name)
{
    fg_bundle_entry_t  *e = fg_bundle_find(b, name);

    return e != NULL ? &e->pub : NULL;
}


/* ---------------------------------------------- building and signing */

/* Replace the bytes of e with data (len + 1 bytes, taken). */
static int
fg_bundle_replace(fg_bundle_t *b, fg_bundle_entry_t *e, unsigned char *data,
    size_t len, fg_error_t *err)
{
    unsigned char  md[FG_SHA256_LEN];

    if (fg_sha256(data, len, md) != FG_OK) {
        free(data);
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    b->total = b->total - e->pub.len + len;
    free((void *) e->pub.data);
    e->pub.data = data;
    e->pub.len = len;
    fg_hex_sha256(md, e->hex);

    return FG_OK;
}


int
fg_bundle_set_file(fg_bundle_t *b, const char *name,
    const unsigned char *data, size_t len, fg_error_t *err)
{
    fg_bundle_show_t    show;
    fg_bundle_entry_t  *e;
    unsigned char      *copy;
    json_t             *m = NULL;
    const char         *why;
    size_t              nlen = strlen(name);
    int                 rc;

    why = fg_bundle_name_problem(name, nlen);
    if (why != NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET, "%s: %s",
                            fg_bundle_show(&show, name, nlen), why);
    }

    e = fg_bundle_find(b, name);

    b->total -= e != NULL ? e->pub.len : 0;
    rc = fg_bundle_check_size(b, name, nlen, len, err);
    b->total += e != NULL ? e->pub.len : 0;
    if (rc != FG_OK) {
        return rc;
    }

    if (strcmp(name, FG_BUNDLE_MANIFEST) == 0) {
        rc = fg_bundle_parse_manifest(data, len, &m, err);
        if (rc != FG_OK) {
            return rc;
        }
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        json_decref(m);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    copy[len] = '\0';

    rc = e != NULL ? fg_bundle_replace(b, e, copy, len, err)
                   : fg_bundle_push(b, name, nlen, copy, len, err);
    if (rc != FG_OK) {
        json_decref(m);
        return rc;
    }

    if (e == NULL && b->nfiles > 1) {
        qsort(b->files, b->nfiles, sizeof(b->files[0]), fg_bundle_entry_cmp);
    }

    if (m != NULL) {
        fg_bundle_set_manifest(b, m);
    }

    if (strcmp(name, FG_BUNDLE_SIGNATURES) == 0) {
        return FG_OK;
    }

    b->verified = 0;
    b->kid[0] = '\0';

    return fg_bundle_digest(b, err);
}


int
fg_bundle_sign(const fg_bundle_t *b, const fg_jwk_t *key,
    fg_buffer_t *signatures_json, fg_error_t *err)
{
    fg_jws_alg_t   alg = fg_jwk_alg(key);
    fg_buffer_t    tok;
    json_t        *claims, *doc;
    char          *text;
    int            rc;

    if (!fg_jwk_is_private(key)
        || (alg != FG_JWS_EDDSA && alg != FG_JWS_ES256
            && alg != FG_JWS_RS256))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "bundles are signed with a private EdDSA, "
                            "ES256 or RS256 key");
    }

    claims = json_pack("{s:o*}", "files", fg_bundle_files_claims(b));
    if (claims == NULL || json_object_get(claims, "files") == NULL) {
        json_decref(claims);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    fg_buffer_init(&tok, FG_BUNDLE_TOKEN_MAX);
    rc = fg_jws_sign(key, NULL, claims, &tok, err);
    json_decref(claims);
    if (rc != FG_OK) {
        fg_buffer_free(&tok);
        return rc;
    }

    doc = json_pack("{s:[s%]}", "signatures", (const char *) tok.data,
                    tok.len);
    fg_buffer_free(&tok);

    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);

    if (text == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    rc = fg_buffer_append(signatures_json, text, strlen(text));
    fg_json_free(text);

    if (rc != FG_OK) {
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "cannot hold the signatures");
    }

    return FG_OK;
}


/* ------------------------------------------------------------- writing */

static la_ssize_t
fg_bundle_write_cb(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void) a;

    if (fg_buffer_append(ctx, p, n) != FG_OK) {
        return -1;
    }

    return (la_ssize_t) n;
}


static int
fg_bundle_write_entry(struct archive *a, const fg_bundle_file_t *f)
{
    struct archive_entry  *e;
    size_t                 off = 0;
    la_ssize_t             n;
    int                    rc = FG_OK;

    e = archive_entry_new();
    if (e == NULL) {
        return FG_ERR_NOMEM;
    }

    archive_entry_set_pathname(e, f->name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t) f->len);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);

    if (archive_write_header(a, e) != ARCHIVE_OK) {
        rc = FG_ERR_IO;
    }

    while (rc == FG_OK && off < f->len) {
        n = archive_write_data(a, f->data + off, f->len - off);
        if (n <= 0) {
            rc = FG_ERR_IO;
            break;
        }
        off += (size_t) n;
    }

    archive_entry_free(e);

    return rc;
}


int
fg_bundle_tar_gz(const fg_bundle_t *b, fg_buffer_t *out, fg_error_t *err)
{
    struct archive  *a;
    size_t           i;
    int              rc = FG_OK;

    a = archive_write_new();
    if (a == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK
        || archive_write_set_filter_option(a, "gzip", "timestamp", NULL)
           != ARCHIVE_OK
        || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK
        || archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK
        || archive_write_open(a, out, NULL, fg_bundle_write_cb, NULL)
           != ARCHIVE_OK)
    {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "archive: %s",
                          archive_error_string(a));
        archive_write_free(a);
        return rc;
    }

    for (i = 0; i < b->nfiles && rc == FG_OK; i++) {
        rc = fg_bundle_write_entry(a, &b->files[i].pub);
        if (rc != FG_OK) {
            rc = fg_error_set(err, rc, FG_NO_OFFSET, "%s: %s",
                              b->files[i].pub.name,
                              rc == FG_ERR_NOMEM ? "out of memory"
                              : archive_error_string(a));
        }
    }

    if (archive_write_close(a) != ARCHIVE_OK && rc == FG_OK) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "archive: %s",
                          archive_error_string(a));
    }

    archive_write_free(a);

    return rc;
}


int
fg_bundle_write_tar_gz(const fg_bundle_t *b, const char *path,
    fg_error_t *err)
{
    fg_buffer_t  buf;
    size_t       off = 0;
    ssize_t      n;
    int          fd, rc;

    fg_buffer_init(&buf, 0);

    rc = fg_bundle_tar_gz(b, &buf, err);
    if (rc != FG_OK) {
        fg_buffer_free(&buf);
        return rc;
    }

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fg_buffer_free(&buf);
        return fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                            strerror(errno));
    }

    while (off < buf.len) {
        n = write(fd, buf.data + off, buf.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                              strerror(errno));
            break;
        }
        off += (size_t) n;
    }

    if (close(fd) != 0 && rc == FG_OK) {
        rc = fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s: %s", path,
                          strerror(errno));
    }

    fg_buffer_free(&buf);

    return rc;
}

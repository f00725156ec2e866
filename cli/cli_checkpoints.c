/*
 * cli_checkpoints.c -- reading the checkpoints a ledger is checked
 * against (cli_checkpoints.h).
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_checkpoints.h"


/* fg_checkpoint's reason without its "checkpoint: " (we say it). */
static const char *
fg_cli_cps_why(const char *msg)
{
    return strncmp(msg, "checkpoint: ", 12) == 0 ? msg + 12 : msg;
}


int
fg_cli_cps_add(void *arg, const char *name, const unsigned char *note,
    size_t len, fg_error_t *err)
{
    fg_cli_cps_t     *cps = arg;
    fg_cli_cp_t      *v;
    fg_checkpoint_t   cp;
    fg_error_t        why;
    size_t            cap;

    if (fg_checkpoint_parse(note, len, &cp, &why) != FG_OK) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint %s: %s", name,
                            fg_cli_cps_why(why.msg));
    }

    if (cps->trusted != NULL
        && fg_checkpoint_verify(&cp, cps->trusted, NULL, &why) != FG_OK)
    {
        return fg_error_set(err, why.code == FG_ERR_CRYPTO ? FG_ERR_CRYPTO
                                                           : FG_ERR_INVALID,
                            FG_NO_OFFSET, "checkpoint at seq %llu (%s): %s",
                            (unsigned long long) cp.size, name,
                            fg_cli_cps_why(why.msg));
    }

    if (cps->n == cps->cap) {
        if (cps->cap == FG_CLI_CHECKPOINTS_MAX) {
            return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                                "more than %u checkpoints",
                                FG_CLI_CHECKPOINTS_MAX);
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
    v->note = malloc(len);
    if (v->name == NULL || v->note == NULL) {
        free(v->name);
        free(v->note);
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
    }
    memcpy(v->note, note, len);
    v->note_len = len;
    v->size = cp.size;
    memcpy(v->hash, cp.hash, FG_SHA256_LEN);
    memcpy(v->tenant, cp.tenant, sizeof(v->tenant));
    cps->n++;

    return FG_OK;
}


/* One file of the directory, whose base name is base. */
static int
fg_cli_cps_file(fg_cli_cps_t *cps, const char *path, const char *base,
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

    rc = fg_cli_cps_add(cps, path, note, n, err);
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


int
fg_cli_cps_read_dir(fg_cli_cps_t *cps, const char *dir, fg_error_t *err)
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

        rc = fg_cli_cps_file(cps, (char *) path.data, d->d_name, err);
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
fg_cli_cps_cmp(const void *a, const void *b)
{
    const fg_cli_cp_t  *x = a, *y = b;

    return (x->size > y->size) - (x->size < y->size);
}


void
fg_cli_cps_sort(fg_cli_cps_t *cps)
{
    if (cps->n > 1) {
        qsort(cps->v, cps->n, sizeof(*cps->v), fg_cli_cps_cmp);
    }
}


void
fg_cli_cps_free(fg_cli_cps_t *cps)
{
    size_t  i;

    for (i = 0; i < cps->n; i++) {
        free(cps->v[i].name);
        free(cps->v[i].note);
    }
    free(cps->v);
    memset(cps, 0, sizeof(*cps));
}

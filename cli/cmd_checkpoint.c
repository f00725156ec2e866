/*
 * cmd_checkpoint.c -- `foxgov checkpoint`: verify a tenant's ledger
 * through the ledger reader (cli_ledger.h) and sign a checkpoint of its
 * head (core/fg_checkpoint.h, docs/ledger.md "Checkpoints"): printed, or
 * written as DIR/<seq, 20 digits>.checkpoint beside the daemon's.  For
 * auditors who keep their own checkpoints, and for tests.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_ledger.h"
#include "fg_checkpoint.h"


static void
fg_checkpoint_help(void)
{
    printf("usage: foxgov checkpoint LEDGER --key FILE [--kid K] "
           "[--tenant T] [-o DIR]\n"
           "\n"
           "Verifies the ledger (every check of foxgov verify) and signs a "
           "checkpoint of\nits head: the C2SP signed note \"foxgov-ledger/"
           "<tenant>\", seq, chain\n(docs/ledger.md, \"Checkpoints\").\n"
           "\n"
           "--key FILE   the Ed25519 signing key (PEM or JWKS); its kid is "
           "the key name\n"
           "--kid K      which key of a JWKS; a PEM key's kid (default: its "
           "file name\n"
           "             less \".pem\")\n"
           "--tenant T   the ledger's tenant (default: its first record's)\n"
           "-o DIR       write DIR/<seq, 20 digits>.checkpoint (never "
           "overwriting one\n"
           "             that differs) instead of printing the note\n"
           "\n"
           "Exit status: 0 signed, 1 the ledger does not verify, 2 usage, "
           "a key or\nfile that cannot be used.\n");
}


/* 1 if the file at path holds exactly note[0..len), else 0. */
static int
fg_checkpoint_same(const char *path, const fg_buffer_t *note)
{
    unsigned char  buf[FG_CHECKPOINT_NOTE_MAX + 1];
    FILE          *f;
    size_t         n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);

    return n == note->len && memcmp(buf, note->data, n) == 0;
}


/*
 * Write note as dir/name, durably and without overwriting: a temporary
 * file written and fsynced, then linked to its name (which fails if the
 * name exists), then the directory fsynced.  A file already there with
 * the same bytes is fine (Ed25519 signs the same head the same way).
 * Prints why and returns FG_EXIT_USAGE on failure.
 */
static int
fg_checkpoint_write(const char *dir, const char *name,
    const fg_buffer_t *note, int *existed)
{
    char     tmp[4096], path[4096];
    ssize_t  w;
    int      fd, rc;

    *existed = 0;

    if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name)
            >= sizeof(path)
        || (size_t) snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name,
                             (long) getpid()) >= sizeof(tmp))
    {
        fg_cli_error("checkpoint", "%s: path too long", dir);
        return FG_EXIT_USAGE;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        fg_cli_error("checkpoint", "%s: %s", tmp, strerror(errno));
        return FG_EXIT_USAGE;
    }

    rc = 0;
    w = write(fd, note->data, note->len);
    if (w < 0 || fsync(fd) != 0) {
        fg_cli_error("checkpoint", "%s: %s", tmp, strerror(errno));
        rc = -1;
    } else if ((size_t) w != note->len) {
        fg_cli_error("checkpoint", "%s: short write", tmp);
        rc = -1;
    }
    if (close(fd) != 0 && rc == 0) {
        fg_cli_error("checkpoint", "%s: %s", tmp, strerror(errno));
        rc = -1;
    }

    if (rc == 0 && link(tmp, path) != 0) {
        if (errno == EEXIST && fg_checkpoint_same(path, note)) {
            *existed = 1;
        } else if (errno == EEXIST) {
            fg_cli_error("checkpoint", "%s exists and differs: not "
                         "overwritten", path);
            rc = -1;
        } else {
            fg_cli_error("checkpoint", "%s: %s", path, strerror(errno));
            rc = -1;
        }
    }

    (void) unlink(tmp);

    if (rc == 0 && !*existed) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            fg_cli_error("checkpoint", "%s: %s", dir, strerror(errno));
            rc = -1;
        }
        if (fd >= 0) {
            close(fd);
        }
    }

    return rc == 0 ? FG_EXIT_OK : FG_EXIT_USAGE;
}


int
fg_cmd_checkpoint(int argc, char **argv)
{
    const char             *path, *tenant, *keyfile, *kid, *dir;
    const fg_jwk_t         *key;
    char                    hex[FG_SHA256_HEX_LEN + 1];
    char                    name[FG_CHECKPOINT_FILE_NAME_LEN + 1];
    char                   *shown;
    fg_keyset_t            *set;
    fg_cli_ledger_t        *l;
    fg_cli_ledger_entry_t   e;
    fg_buffer_t             note;
    fg_error_t              err;
    unsigned char           chain[FG_SHA256_LEN];
    uint64_t                seq;
    uint32_t                id;
    int                     i, rc, got, existed;

    if (fg_cli_wants_help(argc, argv)) {
        fg_checkpoint_help();
        return FG_EXIT_OK;
    }

    path = NULL;
    tenant = NULL;
    keyfile = NULL;
    kid = NULL;
    dir = NULL;

    for (i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--key") == 0) {
            keyfile = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--kid") == 0) {
            kid = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--tenant") == 0) {
            tenant = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "-o") == 0) {
            dir = argv[++i];
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }

    if (path == NULL || keyfile == NULL) {
        fg_cli_error("checkpoint", "expected LEDGER --key FILE [--kid K] "
                     "[--tenant T] [-o DIR] (try foxgov checkpoint --help)");
        return FG_EXIT_USAGE;
    }

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("checkpoint", "--tenant \"%s\" is not a tenant id",
                     tenant);
        return FG_EXIT_USAGE;
    }

    key = fg_cli_signing_key("checkpoint", keyfile, kid, &set);
    if (key == NULL) {
        fg_keyset_free(set);
        return FG_EXIT_USAGE;
    }

    /* a key that cannot sign checkpoints is refused before any reading */
    if (fg_checkpoint_key_id(key, &id, &err) != FG_OK) {
        fg_cli_error("checkpoint", "%s: %s", keyfile, err.msg);
        fg_keyset_free(set);
        return FG_EXIT_USAGE;
    }

    fg_buffer_init(&note, FG_CHECKPOINT_NOTE_MAX);
    rc = FG_EXIT_USAGE;

    l = fg_cli_ledger_open(path, tenant, &err);
    if (l == NULL) {
        shown = fg_cli_ledger_redact(path);
        fg_cli_error("checkpoint", "%s: %s", shown != NULL ? shown
                                                            : "LEDGER",
                     err.msg);
        free(shown);
        goto done;
    }

    while ((got = fg_cli_ledger_next(l, &e, &err)) > 0) {
        /* every check is the reader's */
    }

    if (got < 0) {
        rc = fg_cli_ledger_stopped("checkpoint", l, &err);
        goto done;
    }

    seq = fg_cli_ledger_head(l, chain);
    if (seq == 0) {
        fg_cli_error("checkpoint", "%s: the ledger is empty: nothing to "
                     "checkpoint", fg_cli_ledger_name(l));
        rc = FG_EXIT_REFUSED;
        goto done;
    }

    if (fg_checkpoint_sign(key, fg_cli_ledger_tenant(l), seq, chain, &note,
                           &err) != FG_OK)
    {
        fg_cli_error("checkpoint", "%s", err.msg);
        goto done;
    }

    if (dir == NULL) {
        rc = fwrite(note.data, 1, note.len, stdout) == note.len
             && fflush(stdout) == 0 ? FG_EXIT_OK : FG_EXIT_USAGE;
        goto done;
    }

    fg_checkpoint_file_name(seq, name);
    rc = fg_checkpoint_write(dir, name, &note, &existed);
    if (rc == FG_EXIT_OK) {
        fg_hex_sha256(chain, hex);
        printf("%s/%s: %scheckpoint of tenant %s at seq %llu, chain %s, "
               "signed by %s\n", dir, name, existed ? "already there: " : "",
               fg_cli_ledger_tenant(l), (unsigned long long) seq, hex,
               fg_jwk_kid(key));
    }

done:

    fg_cli_ledger_close(l);
    fg_buffer_free(&note);
    fg_keyset_free(set);
    return rc;
}

/*
 * cli_util.c -- input reading and error reporting for the foxgov commands.
 */

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "cli.h"
#include "fg_jose.h"


void
fg_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "foxgov %s: ", cmd);

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);

    fputc('\n', stderr);
}


const char *
fg_cli_input_name(const char *path)
{
    return (path == NULL || strcmp(path, "-") == 0) ? "<stdin>" : path;
}


int
fg_cli_read_input(const char *cmd, const char *path, fg_buffer_t *buf)
{
    unsigned char  chunk[65536];
    FILE          *f;
    size_t         n;
    int            rc = FG_OK, is_stdin;

    is_stdin = (path == NULL || strcmp(path, "-") == 0);

    f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fg_cli_error(cmd, "%s: %s", path, strerror(errno));
        return FG_ERR_IO;
    }

    fg_buffer_init(buf, FG_CLI_INPUT_MAX);

    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = fg_buffer_append(buf, chunk, n);
        if (rc != FG_OK) {
            fg_cli_error(cmd, "%s: %s", fg_cli_input_name(path),
                         rc == FG_ERR_LIMIT ? "input larger than 256 MiB"
                                            : "out of memory");
            break;
        }
    }

    if (rc == FG_OK && ferror(f)) {
        fg_cli_error(cmd, "%s: read error: %s", fg_cli_input_name(path),
                     strerror(errno));
        rc = FG_ERR_IO;
    }

    if (!is_stdin) {
        fclose(f);
    }

    if (rc != FG_OK) {
        fg_buffer_free(buf);
    }

    return rc;
}


int
fg_cli_wants_help(int argc, char **argv)
{
    int  i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        }
        if (strcmp(argv[i], "--") == 0) {
            break;
        }
    }

    return 0;
}


/*
 * The signing key: the private key in FILE (PEM or JWKS); with several,
 * the one named kid.  A PEM key's kid is --kid, or the file name less
 * ".pem" (keygen's KID.pem).  Prints the reason and returns NULL on failure.
 */
const fg_jwk_t *
fg_cli_signing_key(const char *cmd, const char *path, const char *kid,
    fg_keyset_t **set)
{
    const fg_jwk_t  *key = NULL, *k;
    const char      *base;
    fg_error_t       err;
    char             pem_kid[FG_JWK_KID_MAX + 1];
    size_t           i, n;

    /* a PEM file has no kid: it is the file's name, as keygen writes it */
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".pem") == 0 && n - 4 <= FG_JWK_KID_MAX)
    {
        n -= 4;
    }
    snprintf(pem_kid, sizeof(pem_kid), "%.*s", (int) n, base);

    *set = fg_keyset_load_file(path, kid != NULL ? kid : pem_kid, &err);
    if (*set == NULL) {
        fg_cli_error(cmd, "%s: %s", path, err.msg);
        return NULL;
    }

    for (i = 0; i < fg_keyset_count(*set); i++) {
        k = fg_keyset_get(*set, i);
        if (!fg_jwk_is_private(k)) {
            continue;
        }
        if (kid != NULL && strcmp(fg_jwk_kid(k), kid) != 0) {
            continue;
        }
        if (key != NULL) {
            fg_cli_error(cmd, "%s: several signing keys, choose one with "
                         "--kid", path);
            return NULL;
        }
        key = k;
    }

    if (key == NULL) {
        fg_cli_error(cmd, "%s: no private key%s%s", path,
                     kid ? " with kid " : "", kid ? kid : "");
    }

    return key;
}


size_t
fg_cli_print_safe(const char *s, FILE *out)
{
    const unsigned char  *p = (const unsigned char *) s;
    unsigned              cp;
    size_t                n = 0, len;

    while (*p != '\0') {
        if (*p < 0x20 || *p == 0x7f) {
            cp = *p;
            len = 1;

        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            cp = p[1];
            len = 2;

        } else if (p[0] == 0xe2
                   && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae)
                       || (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
        {
            cp = 0x2000 | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
            len = 3;

        } else {
            if (out != NULL) {
                fputc(*p, out);
            }
            n += ((*p & 0xc0) != 0x80);
            p++;
            continue;
        }

        if (out != NULL) {
            fprintf(out, "\\u%04x", cp);
        }
        n += 6;
        p += len;
    }

    return n;
}

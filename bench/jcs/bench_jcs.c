/*
 * bench_jcs.c -- canonicalize+SHA-256 throughput of libfoxgov's JCS.
 *
 *   bench_jcs [-t SECONDS] [-w SECONDS] [-x] FILE...
 *
 * For each file: read it into memory, then run what the gateway runs on a
 * request body -- fg_blobref_json(): one streaming pass that reads the
 * JSON text strictly, writes its RFC 8785 canonical bytes and hashes them
 * with SHA-256 as they are produced -- in a loop for SECONDS of wall time
 * (default 2) after a warmup (default a quarter of SECONDS, at most 0.5 s).
 * One fg_jcs_t and one fg_sha256_t are reused throughout, as a worker
 * would.
 *
 * One line per file on stdout:
 *
 *   c NAME bytes=N canon_bytes=M mbps=X ops=Y cpu_mbps=Z iters=I secs=S
 *     cpu_secs=C sha256=HEX
 *
 * NAME is the file's base name; N its size, M the canonical size; X is
 * millions of INPUT bytes per second of wall time (1 MB = 10^6 bytes); Y
 * operations per second of wall time; Z millions of input bytes per
 * second of the process's CPU time (what the machine's other load does
 * not change); I the operations timed over S seconds of wall time and C
 * of CPU time; HEX the SHA-256 of the canonical bytes, to compare with
 * another implementation's.
 *
 * With -x, two more fields break the CPU time down: canon_cpu_mbps=
 * (canonicalize into a sink that discards, no hashing) and sha_cpu_mbps=
 * (SHA-256 alone of the canonical bytes, rated per INPUT byte so the three
 * rates compare).
 *
 * Exit status: 0, or 1 when a file cannot be read or canonicalized.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jcs.h"


typedef struct {
    const unsigned char  *in;
    size_t                len;
    fg_jcs_t             *jcs;
    fg_sha256_t          *h;
    fg_buffer_t          *canon;     /* canonical bytes, for the sha-only op */
    fg_blobref_t          ref;
    fg_error_t            err;
} bench_ctx_t;

typedef int (*bench_op_t)(bench_ctx_t *ctx);


static double
clock_secs(clockid_t id)
{
    struct timespec  ts;

    clock_gettime(id, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static double
now(void)
{
    return clock_secs(CLOCK_MONOTONIC);
}


/* CPU time of the process: what it ran, however busy the machine was */
static double
cpu_now(void)
{
    return clock_secs(CLOCK_PROCESS_CPUTIME_ID);
}


/* what the gateway does: canonicalize and hash in one pass */
static int
op_blobref(bench_ctx_t *ctx)
{
    return fg_blobref_json(ctx->jcs, ctx->h, ctx->in, ctx->len,
                           "application/json", &ctx->ref, &ctx->err);
}


static int
discard(fg_sink_t *sink, const unsigned char *p, size_t n)
{
    (void) sink;
    (void) p;
    (void) n;

    return FG_OK;
}


/* canonicalize only, into a sink that discards */
static int
op_canon(bench_ctx_t *ctx)
{
    unsigned char  stage[FG_SINK_STAGE];
    fg_sink_t      sink;

    memset(&sink, 0, sizeof(sink));
    sink.buf = stage;
    sink.cap = sizeof(stage);
    sink.flush = discard;

    return fg_jcs_canonicalize(ctx->jcs, ctx->in, ctx->len, &sink, &ctx->err);
}


/* SHA-256 only, of the canonical bytes */
static int
op_sha(bench_ctx_t *ctx)
{
    unsigned char  md[FG_SHA256_LEN];

    if (fg_sha256_init(ctx->h) != FG_OK
        || fg_sha256_update(ctx->h, ctx->canon->data, ctx->canon->len)
           != FG_OK
        || fg_sha256_final(ctx->h, md) != FG_OK)
    {
        return FG_ERR_CRYPTO;
    }

    return FG_OK;
}


/*
 * Run op for warm seconds untimed, then for secs seconds in batches sized
 * to about a millisecond each, so reading the clock costs nothing that
 * shows.  Returns operations per second of wall time, or -1 on error;
 * *cpu_out is the CPU time the timed part took.
 */
static double
run(bench_ctx_t *ctx, bench_op_t op, double warm, double secs,
    unsigned long *iters_out, double *secs_out, double *cpu_out)
{
    unsigned long  batch, iters = 0, i;
    double         t0, t, start, elapsed, cpu0;

    /* warmup (at least one operation), which also sizes the batch */
    t0 = now();
    do {
        if (op(ctx) != FG_OK) {
            return -1;
        }
        iters++;
        t = now();
    } while (t - t0 < warm);

    batch = (unsigned long) ((double) iters / (t - t0) / 1000.0);
    if (batch == 0) {
        batch = 1;
    }

    iters = 0;
    cpu0 = cpu_now();
    start = now();
    do {
        for (i = 0; i < batch; i++) {
            if (op(ctx) != FG_OK) {
                return -1;
            }
        }
        iters += batch;
        elapsed = now() - start;
    } while (elapsed < secs);

    *cpu_out = cpu_now() - cpu0;
    *iters_out = iters;
    *secs_out = elapsed;

    return (double) iters / elapsed;
}


static int
read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE           *f;
    unsigned char  *buf = NULL, *nb;
    size_t          n = 0, cap = 0, r;

    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }

    for ( ;; ) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            break;
        }
    }

    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -1;
    }

    fclose(f);
    *data = buf;
    *len = n;

    return 0;
}


static void
usage(void)
{
    fprintf(stderr,
            "usage: bench_jcs [-t SECONDS] [-w SECONDS] [-x] FILE...\n"
            "  -t  timed seconds per file (default 2)\n"
            "  -w  warmup seconds per file (default t/4, at most 0.5)\n"
            "  -x  also time canonicalize alone and SHA-256 alone\n");
}


int
main(int argc, char **argv)
{
    double          secs = 2.0, warm = -1.0, ops, s, cpu, canon_ops, sha_ops;
    int             i, extra = 0, status = 0;
    unsigned long   iters, it2;
    fg_jcs_t       *jcs;
    fg_sha256_t    *h;
    char            hex[FG_SHA256_HEX_LEN + 1], *end;
    const char     *name;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if ((strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "-w") == 0)
            && i + 1 < argc)
        {
            double  v = strtod(argv[i + 1], &end);

            if (*end != '\0' || !(v >= 0.0) || v > 3600.0) {
                usage();
                return 2;
            }
            if (argv[i][1] == 't') {
                secs = v;
            } else {
                warm = v;
            }
            i++;
        } else if (strcmp(argv[i], "-x") == 0) {
            extra = 1;
        } else {
            usage();
            return 2;
        }
    }

    if (i == argc) {
        usage();
        return 2;
    }

    if (warm < 0.0) {
        warm = secs / 4.0 < 0.5 ? secs / 4.0 : 0.5;
    }

    jcs = fg_jcs_new(0);
    h = fg_sha256_new();
    if (jcs == NULL || h == NULL) {
        fprintf(stderr, "bench_jcs: out of memory\n");
        return 1;
    }

    for ( ; i < argc; i++) {
        unsigned char  *data;
        size_t          len;
        bench_ctx_t     ctx;
        fg_buffer_t     canon;
        unsigned char   stage[FG_SINK_STAGE];
        fg_sink_t       sink;

        if (read_file(argv[i], &data, &len) != 0) {
            fprintf(stderr, "bench_jcs: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }

        name = strrchr(argv[i], '/');
        name = name ? name + 1 : argv[i];

        memset(&ctx, 0, sizeof(ctx));
        ctx.in = data;
        ctx.len = len;
        ctx.jcs = jcs;
        ctx.h = h;

        /* once, to check the input and keep its canonical bytes */
        fg_buffer_init(&canon, 0);
        fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));
        if (fg_jcs_canonicalize(jcs, data, len, &sink, &ctx.err) != FG_OK) {
            fprintf(stderr, "bench_jcs: %s: %s\n", argv[i], ctx.err.msg);
            fg_buffer_free(&canon);
            free(data);
            status = 1;
            continue;
        }
        ctx.canon = &canon;

        ops = run(&ctx, op_blobref, warm, secs, &iters, &s, &cpu);
        if (ops < 0) {
            fprintf(stderr, "bench_jcs: %s: %s\n", argv[i], ctx.err.msg);
            fg_buffer_free(&canon);
            free(data);
            status = 1;
            continue;
        }

        if (ctx.ref.size_bytes != canon.len) {
            fprintf(stderr, "bench_jcs: %s: hashed %llu bytes, canonical "
                    "form has %zu\n", argv[i],
                    (unsigned long long) ctx.ref.size_bytes, canon.len);
            status = 1;
        }

        fg_hex_sha256(ctx.ref.sha256, hex);

        printf("c %s bytes=%zu canon_bytes=%zu mbps=%.1f ops=%.0f "
               "cpu_mbps=%.1f iters=%lu secs=%.3f cpu_secs=%.3f sha256=%s",
               name, len, canon.len, ops * (double) len / 1e6, ops,
               cpu > 0 ? (double) iters * (double) len / cpu / 1e6 : 0.0,
               iters, s, cpu, hex);

        if (extra) {
            /* these two are rated by CPU time, like cpu_mbps */
            canon_ops = run(&ctx, op_canon, warm, secs, &it2, &s, &cpu);
            canon_ops = cpu > 0 ? (double) it2 / cpu : canon_ops;
            sha_ops = run(&ctx, op_sha, warm, secs, &it2, &s, &cpu);
            sha_ops = cpu > 0 ? (double) it2 / cpu : sha_ops;
            printf(" canon_cpu_mbps=%.1f sha_cpu_mbps=%.1f",
                   canon_ops * (double) len / 1e6,
                   sha_ops * (double) len / 1e6);
        }

        printf("\n");
        fflush(stdout);

        fg_buffer_free(&canon);
        free(data);
    }

    fg_jcs_free(jcs);
    fg_sha256_free(h);

    return status;
}

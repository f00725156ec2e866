/*
 * cli_ledger.c -- the ledger reader of cli_ledger.h: one tenant's
 * entries, each checked against everything before it (hash, dense seq,
 * chain from the tenant's genesis, the record strict, schema-valid and
 * the tenant's, no envelope_hash twice, links to records before it).
 *
 * The checks are here, once, for every backend; a backend is a source of
 * rows (cli_ledger_pg.h).  The file source is here too: one canonical
 * line an entry (docs/ledger.md), read in chunks, its lines examined in
 * batches on two threads before the reader takes them in order (see
 * "the file" below).
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ledger.h"
#include "cli_ledger_pg.h"
#include "fg_hashset.h"

typedef struct fg_cli_ledger_file_s  fg_cli_ledger_file_t;

struct fg_cli_ledger_s {
    fg_cli_ledger_source_t   src;
    void                    *ctx;
    fg_cli_ledger_file_t    *file;          /* ctx, when a file */
    char                    *name;

    char                     tenant[FG_TENANT_ID_MAX + 1];
    int                      started;       /* genesis in chain */
    int                      failed;
    fg_error_t               fail;          /* why, repeated after */

    fg_records_t            *records;
    fg_jcs_t                *jcs;           /* reads a table's records */
    fg_sha256_t             *h;
    fg_hashset_t             seen;
    json_t                  *value;         /* the last entry's record */

    uint64_t                 seq;           /* the last good entry */
    unsigned char            chain[FG_SHA256_LEN];
    uint64_t                 where_seq;
    uint64_t                 where_line;
};


/* ------------------------------------------------------------ the file */

/*
 * A file is read in chunks (a line found with memchr, not byte by byte)
 * into batches of up to FG_CLI_LEDGER_BATCH lines, up to
 * FG_CLI_LEDGER_RING batches ahead of the line handed out.  All that is
 * known of a line without the lines before it (its form and hash,
 * fg_ledger_read(); its record's tree; fg_ledger_check() against the
 * tenant) is found by two threads, where most of the time goes: a second
 * thread examines the lines read ahead, a few at a time, in order, and
 * this one, the reader's, takes its share whenever the batch it is to
 * hand out next is not examined yet.  The reader takes the lines one by
 * one, as from any source, and makes the checks that depend on order
 * (seq, chain, duplicates, links) in order: a finding about a later line,
 * made early by a thread, waits its turn, so the first bad line is the
 * one reported.
 *
 * The trees a thread builds for a place in the ring are freed by that
 * thread when it next examines lines in that place (the entries handed
 * out borrow them until then): from its own malloc arena, and while
 * still in its cache, where small batches keep them.
 */
#define FG_CLI_LEDGER_CHUNK   (2 * 1024 * 1024)
#define FG_CLI_LEDGER_BATCH   8
#define FG_CLI_LEDGER_RING    4
#define FG_CLI_LEDGER_GRAIN   2         /* lines a thread takes at once */
#define FG_CLI_LEDGER_THREADS 2

/* What reading found where a line should be. */
typedef enum {
    FG_CLI_LINE_WHOLE = 0,      /* a line and its "\n": examined */
    FG_CLI_LINE_LONG,           /* longer than FG_LEDGER_LINE_MAX */
    FG_CLI_LINE_TORN,           /* the last, without its "\n" */
    FG_CLI_LINE_IO,             /* reading failed within it */
    FG_CLI_LINE_IO_AFTER        /* reading failed after the last line */
} fg_cli_line_state_t;

/* One line of a batch and what a thread found about it. */
typedef struct {
    const unsigned char  *data;         /* in a chunk, without "\n" */
    size_t                len;
    uint64_t              lineno;
    fg_cli_line_state_t   state;
    int                   errnum;       /* of FG_CLI_LINE_IO* */

    int                   read;         /* fg_ledger_read()'s return */
    fg_ledger_entry_t     row;
    json_t               *rec;          /* the record; NULL: err says */
    int                   checked;      /* fault and facts are set */
    fg_ledger_fault_t     fault;
    fg_ledger_facts_t     facts;
    fg_error_t            err;          /* of the step that failed */
} fg_cli_ledger_line_t;

/* A place in the ring: a batch of lines and the trees built for them. */
typedef struct {
    fg_cli_ledger_line_t   lines[FG_CLI_LEDGER_BATCH];
    size_t                 n;
    size_t                 done;        /* lines examined (lock) */
    uint64_t               seq;         /* the file's batch it holds */
    json_t                *built[FG_CLI_LEDGER_THREADS]
                                [FG_CLI_LEDGER_BATCH];
    size_t                 nbuilt[FG_CLI_LEDGER_THREADS];
} fg_cli_ledger_batch_t;

/* A thread's own: jcs and h are not shareable, nor are its trees. */
typedef struct {
    fg_cli_ledger_file_t   *fl;
    int                     t;
    fg_jcs_t               *jcs;
    fg_sha256_t            *h;

    /* the batch it examines lines of, and its trees there */
    fg_cli_ledger_batch_t  *b;
    uint64_t                seq;
    size_t                  nold;       /* built[nfreed..nold): the old */
    size_t                  nfreed;
    size_t                  nbuilt;     /* built[0..nbuilt): the new */
} fg_cli_ledger_worker_t;

struct fg_cli_ledger_file_s {
    FILE                    *f;

    /*
     * Two chunks: reading more copies the bytes not yet a line to the
     * other chunk, and reads after them there.  The lines of the batches
     * read since the last time stay where they are, in this one; reading
     * more again waits until those read before (in the other) are all
     * handed out.
     */
    unsigned char           *chunk[2];
    unsigned                 c;         /* the chunk read from */
    size_t                   pos;       /* the first byte not yet a line */
    size_t                   end;
    uint64_t                 since;     /* the first batch in chunk c */
    int                      eof;
    int                      errnum;    /* reading failed: errno */
    int                      stopped;   /* a reading error is in a batch */
    uint64_t                 lineno;

    /* batch s is ring[s % RING]; those before out are handed out */
    fg_cli_ledger_batch_t    ring[FG_CLI_LEDGER_RING];
    uint64_t                 out;       /* the batch being handed out */
    uint64_t                 filled;    /* batches read (lock) */
    uint64_t                 cseq;      /* the first line no thread took: */
    size_t                   cline;     /* ... (lock) */
    fg_cli_ledger_batch_t   *cur;       /* ring[out % RING], or NULL */
    size_t                   next;      /* cur's next line to hand out */
    fg_cli_ledger_line_t    *x;         /* the line handed out last */

    /* the reader's, read by both threads */
    const fg_records_t      *records;
    const char              *tenant;    /* "" until known */

    fg_cli_ledger_worker_t   workers[FG_CLI_LEDGER_THREADS];

    /* the second thread, made for the first batch worth sharing */
    pthread_mutex_t          lock;
    pthread_cond_t           more;      /* lines to examine, or quit */
    pthread_cond_t           done;      /* a batch is examined */
    int                      quit;      /* (lock) */
    int                      sync;      /* lock, more, done initialized */
    int                      thread;    /* 1 running, -1 not made */
    pthread_t                tid;
};


/*
 * Read from the file until the chunk is full, the end or an error, after
 * copying the bytes not yet a line to the other chunk (see above).  0
 * when the other chunk still holds lines not handed out.
 */
static int
fg_cli_ledger_file_more(fg_cli_ledger_file_t *fl, uint64_t seq)
{
    size_t  got;

    if (fl->out < fl->since) {
        return 0;
    }

    fl->end -= fl->pos;
    memcpy(fl->chunk[fl->c ^ 1], fl->chunk[fl->c] + fl->pos, fl->end);
    fl->c ^= 1;
    fl->pos = 0;
    fl->since = seq;

    while (fl->end < FG_CLI_LEDGER_CHUNK && !fl->eof && fl->errnum == 0) {
        got = fread(fl->chunk[fl->c] + fl->end, 1,
                    FG_CLI_LEDGER_CHUNK - fl->end, fl->f);
        fl->end += got;
        if (got == 0) {
            if (ferror(fl->f)) {
                fl->errnum = errno != 0 ? errno : EIO;
            } else {
                fl->eof = 1;
            }
        }
    }

    return 1;
}


/* Add to b what stands where the next line should be. */
static fg_cli_ledger_line_t *
fg_cli_ledger_file_add(fg_cli_ledger_file_t *fl, fg_cli_ledger_batch_t *b,
    fg_cli_line_state_t state)
{
    fg_cli_ledger_line_t  *x;

    x = &b->lines[b->n++];
    x->state = state;
    x->errnum = fl->errnum;
    x->data = NULL;
    x->len = 0;
    x->lineno = (state == FG_CLI_LINE_IO_AFTER) ? 0 : ++fl->lineno;

    /* what cannot be read ends the reading: nothing is read after it */
    if (state != FG_CLI_LINE_WHOLE) {
        fl->stopped = 1;
    }
    return x;
}


/*
 * Fill b, the file's batch seq, with up to max lines, reading more only
 * while it has none.  A line is at most FG_LEDGER_LINE_MAX bytes before
 * its "\n", which a chunk always has room for, so a longer one is known
 * without reading it all.  b->n is 0 at the end, or when no more can be
 * read before a batch is handed out.
 */
static void
fg_cli_ledger_file_fill(fg_cli_ledger_file_t *fl, fg_cli_ledger_batch_t *b,
    uint64_t seq, size_t max)
{
    fg_cli_ledger_line_t  *x;
    unsigned char         *p, *nl;
    size_t                 avail;

    b->n = 0;
    b->done = 0;
    b->seq = seq;

    while (b->n < max && !fl->stopped) {
        p = fl->chunk[fl->c] + fl->pos;
        avail = fl->end - fl->pos;
        nl = memchr(p, '\n', avail);

        if (nl != NULL && (size_t) (nl - p) <= FG_LEDGER_LINE_MAX) {
            x = fg_cli_ledger_file_add(fl, b, FG_CLI_LINE_WHOLE);
            x->data = p;
            x->len = (size_t) (nl - p);
            fl->pos += x->len + 1;
            continue;
        }

        if (nl != NULL || avail > FG_LEDGER_LINE_MAX) {
            (void) fg_cli_ledger_file_add(fl, b, FG_CLI_LINE_LONG);
            break;
        }

        if (fl->errnum != 0) {
            (void) fg_cli_ledger_file_add(fl, b,
                       avail > 0 ? FG_CLI_LINE_IO : FG_CLI_LINE_IO_AFTER);
            break;
        }

        if (fl->eof) {
            if (avail > 0) {
                (void) fg_cli_ledger_file_add(fl, b, FG_CLI_LINE_TORN);
            }
            break;
        }

        if (b->n > 0 || !fg_cli_ledger_file_more(fl, seq)) {
            break;
        }
    }
}


/* The trees w built for the batch it examined last, counted there. */
static void
fg_cli_ledger_worker_leave(fg_cli_ledger_worker_t *w)
{
    json_t  **built;
    size_t    i;

    if (w->b == NULL) {
        return;
    }

    built = w->b->built[w->t];
    for (i = w->nfreed; i < w->nold; i++) {
        json_decref(built[i]);
    }
    w->b->nbuilt[w->t] = w->nbuilt;
    w->b = NULL;
}


/*
 * w is to examine lines of b: the trees it built for b's last lines
 * (handed out, done with) are freed as it builds the new ones.
 */
static void
fg_cli_ledger_worker_enter(fg_cli_ledger_worker_t *w,
    fg_cli_ledger_batch_t *b)
{
    if (w->b == b && w->seq == b->seq) {
        return;
    }

    fg_cli_ledger_worker_leave(w);

    w->b = b;
    w->seq = b->seq;
    w->nold = b->nbuilt[w->t];
    w->nfreed = 0;
    w->nbuilt = 0;
}


/*
 * All that is known of one line of w->b without the lines before it:
 * its form and hash, its record's tree (from the tape fg_ledger_read()
 * left, not read again), and, once the tenant is known,
 * fg_ledger_check().  Runs on either thread: writes only w and x.  An
 * old tree is freed first: malloc then hands the new one the chunks
 * just freed, still in the cache.
 */
static void
fg_cli_ledger_examine(fg_cli_ledger_worker_t *w, fg_cli_ledger_line_t *x)
{
    const fg_cli_ledger_file_t  *fl = w->fl;
    json_t                     **built = w->b->built[w->t];

    x->rec = NULL;
    x->checked = 0;

    if (x->state != FG_CLI_LINE_WHOLE) {
        return;
    }

    if (w->nfreed < w->nold) {
        json_decref(built[w->nfreed++]);
    }

    x->read = fg_ledger_read(w->jcs, w->h, x->data, x->len, &x->row,
                             &x->err);
    if (x->read != FG_OK) {
        return;
    }

    x->rec = fg_jcs_tree_json(w->jcs,
                              fg_jcs_node_member(w->jcs, 0, "record", 6),
                              &x->err);
    if (x->rec == NULL) {
        return;
    }

    /* nbuilt <= nfreed while old ones are left: a free place */
    built[w->nbuilt++] = x->rec;

    if (fl->tenant[0] != '\0') {
        x->fault = fg_ledger_check(fl->records, x->rec, fl->tenant,
                                   &x->facts, &x->err);
        x->checked = 1;
    }
}


/*
 * Under the lock: take the next lines no thread took, up to GRAIN of one
 * batch, into *b and *from.  Returns how many (0: none now).
 */
static size_t
fg_cli_ledger_claim(fg_cli_ledger_file_t *fl, fg_cli_ledger_batch_t **b,
    size_t *from)
{
    fg_cli_ledger_batch_t  *cb;
    size_t                  k;

    if (fl->quit || fl->cseq == fl->filled) {
        return 0;
    }

    cb = &fl->ring[fl->cseq % FG_CLI_LEDGER_RING];
    k = cb->n - fl->cline;
    if (k > FG_CLI_LEDGER_GRAIN) {
        k = FG_CLI_LEDGER_GRAIN;
    }

    *b = cb;
    *from = fl->cline;

    fl->cline += k;
    if (fl->cline == cb->n) {
        fl->cseq++;
        fl->cline = 0;
    }
    return k;
}


/*
 * Under the lock: take lines and examine them (the lock released
 * meanwhile).  Returns 0 when there were none to take.
 */
static int
fg_cli_ledger_take(fg_cli_ledger_file_t *fl, fg_cli_ledger_worker_t *w)
{
    fg_cli_ledger_batch_t  *b;
    size_t                  i, from, k;

    k = fg_cli_ledger_claim(fl, &b, &from);
    if (k == 0) {
        return 0;
    }

    (void) pthread_mutex_unlock(&fl->lock);

    fg_cli_ledger_worker_enter(w, b);
    for (i = from; i < from + k; i++) {
        fg_cli_ledger_examine(w, &b->lines[i]);
    }

    (void) pthread_mutex_lock(&fl->lock);

    b->done += k;
    if (b->done == b->n) {
        (void) pthread_cond_signal(&fl->done);
    }
    return 1;
}


/* The second thread: the lines read ahead, until told to quit. */
static void *
fg_cli_ledger_thread(void *arg)
{
    fg_cli_ledger_worker_t  *w = arg;
    fg_cli_ledger_file_t    *fl = w->fl;

    (void) pthread_mutex_lock(&fl->lock);

    while (!fl->quit) {
        if (!fg_cli_ledger_take(fl, w)) {
            (void) pthread_cond_wait(&fl->more, &fl->lock);
        }
    }

    (void) pthread_mutex_unlock(&fl->lock);
    return NULL;
}


/*
 * Read batches ahead into the ring's free places, for the second thread
 * (made here the first time a batch is worth sharing).  Only the first
 * line is read until the tenant is known: its record names the tenant
 * the threads check against.
 */
static void
fg_cli_ledger_file_ahead(fg_cli_ledger_file_t *fl)
{
    fg_cli_ledger_batch_t  *b;
    size_t                  max;

    while (fl->filled < fl->out + FG_CLI_LEDGER_RING && !fl->stopped) {

        if (fl->tenant[0] != '\0') {
            max = FG_CLI_LEDGER_BATCH;
        } else if (fl->filled == 0) {
            max = 1;
        } else {
            break;
        }

        b = &fl->ring[fl->filled % FG_CLI_LEDGER_RING];
        fg_cli_ledger_file_fill(fl, b, fl->filled, max);
        if (b->n == 0) {
            break;
        }

        if (fl->thread == 0 && b->n > FG_CLI_LEDGER_GRAIN) {
            fl->thread = pthread_create(&fl->tid, NULL, fg_cli_ledger_thread,
                                        &fl->workers[1]) == 0 ? 1 : -1;
        }

        (void) pthread_mutex_lock(&fl->lock);
        fl->filled++;
        (void) pthread_cond_signal(&fl->more);
        (void) pthread_mutex_unlock(&fl->lock);
    }
}


/*
 * The next batch becomes the one handed out (NULL at the end), examined:
 * this thread takes lines too until it is.
 */
static void
fg_cli_ledger_file_advance(fg_cli_ledger_file_t *fl)
{
    fg_cli_ledger_batch_t  *b;

    if (fl->cur != NULL) {
        fl->out++;
        fl->cur = NULL;
    }
    fl->next = 0;

    fg_cli_ledger_file_ahead(fl);

    if (fl->out == fl->filled) {
        return;
    }

    b = &fl->ring[fl->out % FG_CLI_LEDGER_RING];

    (void) pthread_mutex_lock(&fl->lock);
    while (b->done < b->n) {
        if (!fg_cli_ledger_take(fl, &fl->workers[0])) {
            (void) pthread_cond_wait(&fl->done, &fl->lock);
        }
    }
    (void) pthread_mutex_unlock(&fl->lock);

    fl->cur = b;
}


/*
 * The next line's row, with the finding about it when it could not be
 * read (a reading error, or fg_ledger_read()'s).
 */
static int
fg_cli_ledger_file_next(void *ctx, fg_ledger_entry_t *row, uint64_t *line,
    fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl = ctx;
    fg_cli_ledger_line_t  *x;

    if (fl->cur == NULL || fl->next == fl->cur->n) {
        fg_cli_ledger_file_advance(fl);
        if (fl->cur == NULL) {
            return 0;
        }
    }

    x = &fl->cur->lines[fl->next++];
    fl->x = x;

    switch (x->state) {

    case FG_CLI_LINE_IO_AFTER:
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s",
                     strerror(x->errnum));
        return -1;

    case FG_CLI_LINE_IO:
        *line = x->lineno;
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "line %llu: %s",
                     (unsigned long long) x->lineno, strerror(x->errnum));
        return -1;

    case FG_CLI_LINE_LONG:
        *line = x->lineno;
        fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                     "longer than %d bytes", FG_LEDGER_LINE_MAX);
        return -1;

    case FG_CLI_LINE_TORN:
        *line = x->lineno;
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "the last line has no newline (a torn append)");
        return -1;

    case FG_CLI_LINE_WHOLE:
        break;
    }

    *line = x->lineno;

    if (x->read != FG_OK) {
        *err = x->err;
        /* a finding, even when SHA-256 failed: never FG_ERR_IO here */
        if (err->code == FG_ERR_IO || err->code == FG_ERR_NOMEM) {
            err->code = FG_ERR_INVALID;
        }
        return -1;
    }

    *row = x->row;
    return 1;
}


/* Stop the second thread, if made (after the lines it is examining). */
static void
fg_cli_ledger_file_stop(fg_cli_ledger_file_t *fl)
{
    if (fl->thread != 1) {
        return;
    }

    (void) pthread_mutex_lock(&fl->lock);
    fl->quit = 1;
    (void) pthread_cond_signal(&fl->more);
    (void) pthread_mutex_unlock(&fl->lock);

    (void) pthread_join(fl->tid, NULL);
    fl->thread = 0;
}


static void
fg_cli_ledger_file_close(void *ctx)
{
    fg_cli_ledger_file_t   *fl = ctx;
    fg_cli_ledger_batch_t  *b;
    size_t                  i, k, t;

    if (fl == NULL) {
        return;
    }

    fg_cli_ledger_file_stop(fl);

    if (fl->f != NULL) {
        fclose(fl->f);
    }

    for (t = 0; t < FG_CLI_LEDGER_THREADS; t++) {
        fg_cli_ledger_worker_leave(&fl->workers[t]);
        fg_jcs_free(fl->workers[t].jcs);
        fg_sha256_free(fl->workers[t].h);
    }
    for (k = 0; k < FG_CLI_LEDGER_RING; k++) {
        b = &fl->ring[k];
        for (t = 0; t < FG_CLI_LEDGER_THREADS; t++) {
            for (i = 0; i < b->nbuilt[t]; i++) {
                json_decref(b->built[t][i]);
            }
        }
    }

    if (fl->sync) {
        (void) pthread_cond_destroy(&fl->done);
        (void) pthread_cond_destroy(&fl->more);
        (void) pthread_mutex_destroy(&fl->lock);
    }
    free(fl->chunk[0]);
    free(fl->chunk[1]);
    free(fl);
}


/*
 * The record of the line just handed out, built by a thread already: a
 * new reference to it (the batch keeps its own, see the top).
 */
static json_t *
fg_cli_ledger_file_record(void *ctx, fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl = ctx;

    if (fl->x->rec == NULL) {
        *err = fl->x->err;
        return NULL;
    }
    return json_incref(fl->x->rec);
}


static const fg_cli_ledger_source_t  fg_cli_ledger_file_source = {
    fg_cli_ledger_file_next,
    NULL,                       /* checkpoints are files: --checkpoints */
    fg_cli_ledger_file_close,
    1,                          /* fg_ledger_read checked hash and form */
    fg_cli_ledger_file_record
};


/* The lock and conditions the two threads share: 1, or 0 when none. */
static int
fg_cli_ledger_file_sync(fg_cli_ledger_file_t *fl)
{
    if (pthread_mutex_init(&fl->lock, NULL) != 0) {
        return 0;
    }
    if (pthread_cond_init(&fl->more, NULL) != 0) {
        (void) pthread_mutex_destroy(&fl->lock);
        return 0;
    }
    if (pthread_cond_init(&fl->done, NULL) != 0) {
        (void) pthread_cond_destroy(&fl->more);
        (void) pthread_mutex_destroy(&fl->lock);
        return 0;
    }

    fl->sync = 1;
    return 1;
}


static fg_cli_ledger_file_t *
fg_cli_ledger_file_open(const char *path, fg_error_t *err)
{
    fg_cli_ledger_file_t    *fl;
    fg_cli_ledger_worker_t  *w;
    int                      ok, t;

    fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    fl->f = fopen(path, "rb");
    if (fl->f == NULL) {
        fg_error_set(err, FG_ERR_IO, FG_NO_OFFSET, "%s", strerror(errno));
        free(fl);
        return NULL;
    }

    /* jansson's hash seed, once, before two threads make objects */
    json_object_seed(0);

    fl->tenant = "";
    fl->chunk[0] = malloc(FG_CLI_LEDGER_CHUNK);
    fl->chunk[1] = malloc(FG_CLI_LEDGER_CHUNK);
    ok = fl->chunk[0] != NULL && fl->chunk[1] != NULL
         && fg_cli_ledger_file_sync(fl);

    for (t = 0; t < FG_CLI_LEDGER_THREADS; t++) {
        w = &fl->workers[t];
        w->fl = fl;
        w->t = t;
        w->jcs = fg_jcs_new(0);
        w->h = fg_sha256_new();
        ok = ok && w->jcs != NULL && w->h != NULL;
    }

    if (!ok) {
        fg_cli_ledger_file_close(fl);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    return fl;
}


/* ------------------------------------------------------------- the name */

char *
fg_cli_ledger_redact(const char *src)
{
    const char  *scheme, *auth, *end, *at, *colon, *p;
    fg_buffer_t  b;
    size_t       n;
    int          rc;

    scheme = strstr(src, "://");
    if (scheme == NULL) {
        return strdup(src);
    }

    fg_buffer_init(&b, 0);
    auth = scheme + 3;
    end = auth + strcspn(auth, "/?#");

    /* the authority: [user[:password]@]host[:port] */
    at = NULL;
    for (p = auth; p < end; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    colon = (at != NULL) ? memchr(auth, ':', (size_t) (at - auth)) : NULL;

    if (colon != NULL) {
        rc = fg_buffer_append(&b, src, (size_t) (colon - src));
        rc = rc ? rc : fg_buffer_append(&b, at, (size_t) (end - at));
    } else {
        rc = fg_buffer_append(&b, src, (size_t) (end - src));
    }

    /* the rest, with a password= parameter's value left out */
    p = end;
    while (rc == FG_OK && *p != '\0') {
        n = strcspn(p + 1, "?&#") + 1;
        if (strncmp(p + 1, "password=", 9) == 0) {
            rc = fg_buffer_append(&b, p, 10);
            rc = rc ? rc : fg_buffer_append(&b, "(hidden)", 8);
        } else {
            rc = fg_buffer_append(&b, p, n);
        }
        p += n;
    }

    rc = rc ? rc : fg_buffer_append(&b, "", 1);
    if (rc != FG_OK) {
        fg_buffer_free(&b);
        return NULL;
    }

    return (char *) b.data;
}


/* ----------------------------------------------------------- the reader */

fg_cli_ledger_t *
fg_cli_ledger_new(const fg_cli_ledger_source_t *src, void *ctx,
    const char *tenant, const char *name, fg_error_t *err)
{
    fg_cli_ledger_t  *l;

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        src->close(ctx);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "\"%s\" is not a tenant id", tenant);
        return NULL;
    }

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        src->close(ctx);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    l->src = *src;
    l->ctx = ctx;
    fg_hashset_init(&l->seen);

    l->records = fg_records_new(err);
    if (l->records == NULL) {
        fg_cli_ledger_close(l);
        return NULL;
    }

    l->name = strdup(name != NULL ? name : "");
    l->jcs = fg_jcs_new(0);
    l->h = fg_sha256_new();

    if (l->name == NULL || l->jcs == NULL || l->h == NULL) {
        fg_cli_ledger_close(l);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return NULL;
    }

    if (tenant != NULL) {
        strcpy(l->tenant, tenant);
        if (fg_ledger_genesis(l->h, l->tenant, strlen(l->tenant), l->chain)
            != FG_OK)
        {
            fg_cli_ledger_close(l);
            fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET, "SHA-256 failed");
            return NULL;
        }
        l->started = 1;
    }

    return l;
}


fg_cli_ledger_t *
fg_cli_ledger_open(const char *src, const char *tenant, fg_error_t *err)
{
    fg_cli_ledger_file_t  *fl;
    fg_cli_ledger_t       *l;
    char                  *name;

    if (strncmp(src, "postgresql://", 13) == 0
        || strncmp(src, "postgres://", 11) == 0)
    {
        if (tenant == NULL) {
            fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                         "a PostgreSQL ledger needs its tenant (--tenant)");
            return NULL;
        }

        l = fg_cli_ledger_pg_open(src, tenant, err);
        if (l == NULL) {
            return NULL;
        }

        /* whatever the backend named it, never show a password */
        name = fg_cli_ledger_redact(src);
        if (name == NULL) {
            fg_cli_ledger_close(l);
            fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
            return NULL;
        }
        free(l->name);
        l->name = name;
        return l;
    }

    if (tenant != NULL && !fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "\"%s\" is not a tenant id", tenant);
        return NULL;
    }

    fl = fg_cli_ledger_file_open(src, err);
    if (fl == NULL) {
        return NULL;
    }

    l = fg_cli_ledger_new(&fg_cli_ledger_file_source, fl, tenant, src, err);
    if (l == NULL) {
        return NULL;
    }

    /* its threads check records as the reader would: with its schemas,
     * for its tenant (set here before any thread runs) */
    fl->records = l->records;
    fl->tenant = l->tenant;
    l->file = fl;

    return l;
}


/* Stop the reading: every later call fails the same way. */
static int
fg_cli_ledger_fail(fg_cli_ledger_t *l, fg_error_t *err)
{
    l->failed = 1;
    l->fail = *err;
    return -1;
}


/*
 * The tenant of the first record, when none was given, and its genesis.
 * FG_ERR_INVALID with err when it names none.
 */
static int
fg_cli_ledger_start(fg_cli_ledger_t *l, const json_t *rec, fg_error_t *err)
{
    const json_t  *t;

    t = json_object_get(rec, "tenant_id");
    if (!json_is_string(t) || json_string_length(t) > FG_TENANT_ID_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the first record names no tenant");
    }

    if (fg_ledger_genesis(l->h, json_string_value(t), json_string_length(t),
                          l->chain) != FG_OK)
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the tenant id is not valid");
    }

    strcpy(l->tenant, json_string_value(t));
    l->started = 1;
    return FG_OK;
}


/*
 * A row's record read strictly into *rec; for a source that has not
 * checked it, also that its bytes are canonical and envelope_hash their
 * sha256.
 */
static int
fg_cli_ledger_record(fg_cli_ledger_t *l, const fg_ledger_entry_t *row,
    json_t **rec, fg_error_t *err)
{
    unsigned char  md[FG_SHA256_LEN];

    if (l->src.record_checked) {
        *rec = l->src.record != NULL
               ? l->src.record(l->ctx, err)
               : fg_record_parse(l->jcs, row->record, row->record_len, err);
        return *rec != NULL ? FG_OK : FG_ERR_INVALID;
    }

    if (row->record == NULL || row->record_len == 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the row holds no record");
    }

    *rec = fg_record_parse_hashed(l->jcs, l->h, row->record, row->record_len,
                                  md, err);
    if (*rec == NULL) {
        return FG_ERR_INVALID;
    }

    if (memcmp(md, row->envelope_hash, FG_SHA256_LEN) != 0) {
        json_decref(*rec);
        *rec = NULL;
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "envelope_hash is not the sha256 of the record");
    }

    /* the canonical bytes hash to it: the stored ones must be those */
    if (fg_sha256(row->record, row->record_len, md) != FG_OK
        || memcmp(md, row->envelope_hash, FG_SHA256_LEN) != 0)
    {
        json_decref(*rec);
        *rec = NULL;
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record's bytes are not its canonical form");
    }

    return FG_OK;
}


/*
 * fg_ledger_check() of the entry's record: a file's threads ran it
 * already, with the same schemas and tenant, once the tenant was known;
 * any other record is checked here.
 */
static fg_ledger_fault_t
fg_cli_ledger_check(fg_cli_ledger_t *l, const json_t *rec,
    fg_ledger_facts_t *facts, fg_error_t *err)
{
    const fg_cli_ledger_line_t  *x;

    x = (l->file != NULL) ? l->file->x : NULL;

    if (x != NULL && x->checked) {
        *facts = x->facts;
        if (x->fault != FG_LEDGER_OK) {
            *err = x->err;
        }
        return x->fault;
    }

    return fg_ledger_check(l->records, rec, l->tenant, facts, err);
}


int
fg_cli_ledger_next(fg_cli_ledger_t *l, fg_cli_ledger_entry_t *e,
    fg_error_t *err)
{
    fg_ledger_entry_t   row;
    fg_ledger_facts_t   facts;
    json_t             *rec;
    uint64_t            line;
    int                 got;

    if (l->failed) {
        *err = l->fail;
        return -1;
    }

    json_decref(l->value);
    l->value = NULL;

    line = 0;
    got = l->src.next(l->ctx, &row, &line, err);

    l->where_seq = l->seq + 1;
    l->where_line = line;

    if (got == 0) {
        l->where_seq = l->seq;
        return 0;
    }
    if (got < 0) {
        return fg_cli_ledger_fail(l, err);
    }

    /* from here on the entry has a seq of its own: findings name it */
    l->where_seq = row.seq;

    if (fg_cli_ledger_record(l, &row, &rec, err) != FG_OK) {
        return fg_cli_ledger_fail(l, err);
    }

    if (!l->started && fg_cli_ledger_start(l, rec, err) != FG_OK) {
        json_decref(rec);
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_ledger_next(l->h, l->seq, l->chain, &row, err) != FG_OK) {
        json_decref(rec);
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_hashset_get(&l->seen, row.envelope_hash) >= 0) {
        json_decref(rec);
        fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                     "this envelope_hash is in the ledger already");
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_cli_ledger_check(l, rec, &facts, err) != FG_LEDGER_OK
        || fg_ledger_link_ok(&facts,
               facts.has_link ? fg_hashset_get(&l->seen, facts.link) : -1,
               err) != FG_LEDGER_OK)
    {
        json_decref(rec);
        err->code = FG_ERR_INVALID;
        return fg_cli_ledger_fail(l, err);
    }

    if (fg_hashset_put(&l->seen, row.envelope_hash, (int) facts.type)
        != FG_OK)
    {
        json_decref(rec);
        fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET, "out of memory");
        return fg_cli_ledger_fail(l, err);
    }

    memcpy(l->chain, row.chain, FG_SHA256_LEN);
    l->seq = row.seq;
    l->value = rec;

    e->seq = row.seq;
    e->line = line;
    memcpy(e->chain, row.chain, FG_SHA256_LEN);
    memcpy(e->envelope_hash, row.envelope_hash, FG_SHA256_LEN);
    e->record = row.record;
    e->record_len = row.record_len;
    e->value = rec;
    e->type = facts.type;

    return 1;
}


void
fg_cli_ledger_where(const fg_cli_ledger_t *l, uint64_t *seq, uint64_t *line)
{
    if (seq != NULL) {
        *seq = l->where_seq;
    }
    if (line != NULL) {
        *line = l->where_line;
    }
}


const char *
fg_cli_ledger_tenant(const fg_cli_ledger_t *l)
{
    return l->tenant[0] != '\0' ? l->tenant : NULL;
}


uint64_t
fg_cli_ledger_head(const fg_cli_ledger_t *l,
    unsigned char chain[FG_SHA256_LEN])
{
    if (chain != NULL) {
        memcpy(chain, l->chain, FG_SHA256_LEN);
    }
    return l->seq;
}


int
fg_cli_ledger_type_of(const fg_cli_ledger_t *l,
    const unsigned char md[FG_SHA256_LEN])
{
    return fg_hashset_get(&l->seen, md);
}


const char *
fg_cli_ledger_name(const fg_cli_ledger_t *l)
{
    return l->name;
}


int
fg_cli_ledger_checkpoints(fg_cli_ledger_t *l, fg_cli_ledger_note_f each,
    void *arg, fg_error_t *err)
{
    if (l->src.checkpoints == NULL) {
        return FG_OK;
    }
    return l->src.checkpoints(l->ctx, each, arg, err);
}


void
fg_cli_ledger_close(fg_cli_ledger_t *l)
{
    if (l == NULL) {
        return;
    }

    if (l->src.close != NULL) {
        l->src.close(l->ctx);
    }
    json_decref(l->value);
    fg_hashset_free(&l->seen);
    fg_sha256_free(l->h);
    fg_jcs_free(l->jcs);
    fg_records_free(l->records);
    free(l->name);
    free(l);
}


int
fg_cli_ledger_stopped(const char *cmd, const fg_cli_ledger_t *l,
    const fg_error_t *err)
{
    uint64_t  seq, line;

    if (err->code == FG_ERR_NOMEM) {
        fg_cli_error(cmd, "out of memory");
        return FG_EXIT_USAGE;
    }
    if (err->code == FG_ERR_IO) {
        fg_cli_error(cmd, "%s: %s", fg_cli_ledger_name(l), err->msg);
        return FG_EXIT_USAGE;
    }

    fg_cli_ledger_where(l, &seq, &line);

    if (line == 0) {
        fg_cli_error(cmd, "%s: seq %llu: %s", fg_cli_ledger_name(l),
                     (unsigned long long) seq, err->msg);
    } else {
        fg_cli_error(cmd, "%s: seq %llu (line %llu): %s",
                     fg_cli_ledger_name(l), (unsigned long long) seq,
                     (unsigned long long) line, err->msg);
    }
    return FG_EXIT_REFUSED;
}

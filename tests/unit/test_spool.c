/*
 * test_spool.c -- the evidence spool: entries as written and read back,
 * a torn tail cut, corruption refused, the lock, the bound, adoption of a
 * dead owner's file, and every field of a hostile entry.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fg_hash.h"
#include "fg_spool.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


typedef struct {
    char          dir[64];
    char          path[96];
    fg_sha256_t  *h;
} fx_t;


static int
setup(void **state)
{
    fx_t  *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) {
        return -1;
    }
    strcpy(fx->dir, "/tmp/fg-spool-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/spool-1.fgs", fx->dir);
    fx->h = fg_sha256_new();
    *state = fx;
    return fx->h != NULL ? 0 : -1;
}


static int
teardown(void **state)
{
    fx_t  *fx = *state;

    unlink(fx->path);
    rmdir(fx->dir);
    fg_sha256_free(fx->h);
    free(fx);
    return 0;
}


/* The i-th test entry: record {"n":i}, tenant acme or t-<i%3>. */
static fg_spool_entry_t
entry(int i, char *rec, size_t cap)
{
    static const char  *tenants[] = { "acme", "t-1", "t-2" };
    fg_spool_entry_t    e;

    memset(&e, 0, sizeof(e));
    e.type = (fg_record_type_t) (i % FG_RECORD_TYPES);
    e.tenant = tenants[i % 3];
    e.tenant_len = strlen(e.tenant);
    e.hash = HASH_A;
    e.record_len = (size_t) snprintf(rec, cap, "{\"n\":%d}", i);
    e.record = (const unsigned char *) rec;
    e.obs = (const unsigned char *) (i % 2 ? "{\"ms\":3}" : "");
    e.obs_len = i % 2 ? 8 : 0;
    return e;
}


static void
assert_entry(const fg_spool_entry_t *got, int i)
{
    char              rec[32];
    fg_spool_entry_t  want = entry(i, rec, sizeof(rec));

    assert_int_equal(got->type, want.type);
    assert_int_equal(got->tenant_len, want.tenant_len);
    assert_memory_equal(got->tenant, want.tenant, want.tenant_len);
    assert_memory_equal(got->hash, HASH_A, 64);
    assert_int_equal(got->record_len, want.record_len);
    assert_memory_equal(got->record, want.record, want.record_len);
    assert_int_equal(got->obs_len, want.obs_len);
    if (want.obs_len) {
        assert_memory_equal(got->obs, want.obs, want.obs_len);
    }
}


static void
write_entries(fx_t *fx, int n)
{
    fg_spool_t        *s;
    fg_spool_entry_t   e;
    fg_error_t         err;
    uint64_t           torn;
    char               rec[32];
    int                i;

    s = fg_spool_open(fx->path, 0, &torn, &err);
    assert_non_null(s);
    for (i = 0; i < n; i++) {
        e = entry(i, rec, sizeof(rec));
        assert_int_equal(fg_spool_append(s, &e, &err), FG_OK);
    }
    assert_int_equal(fg_spool_sync(s, &err), FG_OK);
    fg_spool_close(s);
}


static off_t
file_size(const char *path)
{
    struct stat  st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}


static void
test_roundtrip(void **state)
{
    fx_t              *fx = *state;
    fg_spool_t        *s;
    fg_spool_entry_t   e;
    fg_error_t         err;
    uint64_t           torn;
    int                i;

    write_entries(fx, 10);

    s = fg_spool_open(fx->path, 0, &torn, &err);
    assert_non_null(s);
    assert_int_equal(torn, 0);
    assert_int_equal(fg_spool_entries(s), 10);
    assert_int_equal(fg_spool_bytes(s), (uint64_t) file_size(fx->path));

    for (i = 0; i < 10; i++) {
        assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
        assert_entry(&e, i);
    }
    assert_int_equal(fg_spool_next(s, &e, &err), FG_SPOOL_MORE);

    /* again from the start: nothing was consumed by reading */
    fg_spool_rewind(s);
    assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
    assert_entry(&e, 0);

    /* not all read (so not all sent): not emptied */
    assert_int_equal(fg_spool_truncate(s, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "not read yet"));
    assert_int_equal(fg_spool_entries(s), 10);

    /* drained: empty, and still the owner's */
    for (i = 1; i < 10; i++) {
        assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
    }
    assert_int_equal(fg_spool_truncate(s, &err), FG_OK);
    assert_int_equal(fg_spool_entries(s), 0);
    assert_int_equal(fg_spool_next(s, &e, &err), FG_SPOOL_MORE);
    assert_int_equal(file_size(fx->path), FG_SPOOL_MAGIC_LEN);
    fg_spool_close(s);
}


/* A crash while an entry was written: every cut of it is a torn tail. */
static void
test_torn_tail(void **state)
{
    fx_t              *fx = *state;
    fg_spool_t        *s;
    fg_spool_entry_t   e;
    fg_buffer_t        b;
    fg_error_t         err;
    uint64_t           torn;
    off_t              whole;
    size_t             cut;
    char               rec[32];
    int                fd, i;

    e = entry(7, rec, sizeof(rec));
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_OK);

    for (cut = 1; cut < b.len; cut += (cut < 12 ? 1 : 9)) {
        unlink(fx->path);
        write_entries(fx, 3);
        whole = file_size(fx->path);

        fd = open(fx->path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b.data, cut), (ssize_t) cut);
        close(fd);

        s = fg_spool_open(fx->path, 0, &torn, &err);
        if (s == NULL) {
            fail_msg("cut at %zu: %s", cut, err.msg);
        }
        assert_int_equal(torn, cut);
        assert_int_equal(file_size(fx->path), whole);
        assert_int_equal(fg_spool_entries(s), 3);
        for (i = 0; i < 3; i++) {
            assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
            assert_entry(&e, i);
        }
        assert_int_equal(fg_spool_next(s, &e, &err), FG_SPOOL_MORE);

        /* appending goes on after the last whole entry */
        e = entry(3, rec, sizeof(rec));
        assert_int_equal(fg_spool_append(s, &e, &err), FG_OK);
        assert_int_equal(fg_spool_sync(s, &err), FG_OK);
        fg_spool_rewind(s);
        for (i = 0; i < 4; i++) {
            assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
            assert_entry(&e, i);
        }
        fg_spool_close(s);
    }

    fg_buffer_free(&b);
}


/* A whole entry that fails its check is corruption: the file is refused. */
static void
test_corruption(void **state)
{
    fx_t        *fx = *state;
    fg_error_t   err;
    uint64_t     torn;
    off_t        size;
    int          fd;
    char         c;

    write_entries(fx, 3);
    size = file_size(fx->path);

    /* a byte of the second entry's record */
    fd = open(fx->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, size / 2), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, size / 2), 1);
    close(fd);

    assert_null(fg_spool_open(fx->path, 0, &torn, &err));
    assert_int_equal(err.code, FG_ERR_INVALID);
    assert_true(err.offset != FG_NO_OFFSET && err.offset < (size_t) size);
    assert_int_equal(file_size(fx->path), size);    /* nothing cut */

    /* not a spool at all */
    fd = open(fx->path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "GARBAGE!and more", 16), 16);
    close(fd);
    assert_null(fg_spool_open(fx->path, 0, &torn, &err));
    assert_non_null(strstr(err.msg, "not a spool file (no FGSPOOL1 magic)"));
}


static void
test_lock_and_adoption(void **state)
{
    fx_t        *fx = *state;
    fg_spool_t  *s, *s2;
    fg_error_t   err;
    uint64_t     torn;
    pid_t        pid;
    int          status, fd[2];
    char         c;

    write_entries(fx, 2);

    s = fg_spool_open(fx->path, 0, &torn, &err);
    assert_non_null(s);
    s2 = fg_spool_open(fx->path, 0, &torn, &err);
    assert_null(s2);
    assert_int_equal(err.code, FG_ERR_IO);
    assert_non_null(strstr(err.msg, "in use by another process"));
    fg_spool_close(s);

    /* a worker that dies holding its spool: the next one adopts it */
    assert_int_equal(pipe(fd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        s = fg_spool_open(fx->path, 0, &torn, &err);
        if (s == NULL || write(fd[1], "l", 1) != 1) {
            _exit(1);
        }
        pause();                    /* killed with its lock held */
        _exit(0);
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], &c, 1), 1);
    close(fd[0]);

    assert_null(fg_spool_open(fx->path, 0, &torn, &err));
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);

    s = fg_spool_open(fx->path, 0, &torn, &err);
    assert_non_null(s);
    assert_int_equal(fg_spool_entries(s), 2);
    fg_spool_close(s);
}


static void
test_full(void **state)
{
    fx_t              *fx = *state;
    fg_spool_t        *s;
    fg_spool_entry_t   e;
    fg_error_t         err;
    uint64_t           torn, before;
    char               rec[32];
    int                i;

    s = fg_spool_open(fx->path, 200, &torn, &err);
    assert_non_null(s);

    for (i = 0; ; i++) {
        e = entry(i, rec, sizeof(rec));
        before = fg_spool_bytes(s);
        if (fg_spool_append(s, &e, &err) != FG_OK) {
            break;
        }
    }
    assert_true(i > 0);
    assert_int_equal(err.code, FG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "is full (max_size 200 bytes)"));
    assert_int_equal(fg_spool_bytes(s), before);     /* nothing queued */
    assert_true(fg_spool_bytes(s) <= 200);
    assert_int_equal(fg_spool_entries(s), (uint64_t) i);

    assert_int_equal(fg_spool_sync(s, &err), FG_OK);
    assert_int_equal(file_size(fx->path), (off_t) before);
    fg_spool_close(s);
}


/*
 * Room held for records under way: appends do not take it, a reserved
 * append does, and it is room on the disk (allocated ahead), also after
 * the file is cut back.
 */
static void
test_reserve(void **state)
{
    fx_t              *fx = *state;
    fg_spool_t        *s;
    fg_spool_entry_t   e;
    fg_error_t         err;
    uint64_t           torn, one;
    struct stat        st;
    char               rec[32];
    int                fd, can_allocate;

    s = fg_spool_open(fx->path, 1000, &torn, &err);
    assert_non_null(s);

    e = entry(0, rec, sizeof(rec));
    one = fg_spool_entry_bytes(e.tenant_len, e.record_len, e.obs_len);

    assert_int_equal(fg_spool_reserve(s, 1000 - 8 - one + 1, &err),
                     FG_OK);
    /* it would fit under max_size, but for the room held */
    assert_int_equal(fg_spool_append(s, &e, &err), FG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "held for records under way"));
    assert_int_equal(fg_spool_bytes(s), 8);
    /* its own reservation lets it in, and is used up by it */
    assert_int_equal(fg_spool_append_reserved(s, &e, one, &err), FG_OK);
    assert_int_equal(fg_spool_bytes(s), 8 + one);
    assert_int_equal(fg_spool_reserved(s), 1000 - 8 - 2 * one + 1);
    /* no more than max_size can be held */
    assert_int_equal(fg_spool_reserve(s, one, &err), FG_ERR_LIMIT);
    assert_int_equal(fg_spool_reserve(s, one - 1, &err), FG_OK);
    /* given back, it is anyone's */
    fg_spool_release(s, 10 * 1000);
    assert_int_equal(fg_spool_reserved(s), 0);
    assert_int_equal(fg_spool_append(s, &e, &err), FG_OK);
    fg_spool_close(s);

    /* held room is allocated on the disk, after a cut too */
    fd = open(fx->path, O_RDWR);
    assert_true(fd >= 0);
    can_allocate = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    close(fd);
    if (!can_allocate) {
        return;                 /* this file system cannot: accounting only */
    }

    assert_int_equal(unlink(fx->path), 0);
    s = fg_spool_open(fx->path, 0, &torn, &err);
    assert_non_null(s);
    assert_int_equal(fg_spool_reserve(s, 4 * 1024 * 1024, &err), FG_OK);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_size, 8);                /* nothing to read */
    assert_true((uint64_t) st.st_blocks * 512 >= 8 + 4 * 1024 * 1024);

    assert_int_equal(fg_spool_append(s, &e, &err), FG_OK);
    assert_int_equal(fg_spool_next(s, &e, &err), FG_OK);
    assert_int_equal(fg_spool_truncate(s, &err), FG_OK);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_size, 8);
    assert_true((uint64_t) st.st_blocks * 512 >= 8 + 4 * 1024 * 1024);
    fg_spool_close(s);
}


/* Each field of an entry, made wrong, is refused and named. */
static void
test_hostile_entries(void **state)
{
    fx_t              *fx = *state;
    fg_spool_entry_t   e, got;
    fg_buffer_t        b;
    fg_error_t         err;
    size_t             used, i;
    char               rec[32];
    unsigned char      len4[4], md[FG_SHA256_LEN];
    static const char *bad_tenants[] = { "", "../x", "Acme", "a/b" };

    e = entry(1, rec, sizeof(rec));
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_OK);

    assert_int_equal(fg_spool_parse(fx->h, b.data, b.len, &got, &used,
                                    &err), FG_OK);
    assert_int_equal(used, b.len);

    /* every prefix is "more", none is an entry */
    for (i = 0; i < b.len; i++) {
        assert_int_equal(fg_spool_parse(fx->h, b.data, i, &got, &used,
                                        &err), FG_SPOOL_MORE);
    }

    /* any byte flipped: refused (the check or the framing) */
    for (i = 0; i < b.len; i++) {
        b.data[i] ^= 0x01;
        if (fg_spool_parse(fx->h, b.data, b.len, &got, &used, &err)
            == FG_OK)
        {
            fail_msg("byte %zu flipped, still read as an entry", i);
        }
        b.data[i] ^= 0x01;
    }

    /* a length beyond the bound, with a matching check: refused early */
    memcpy(len4, "\xff\xff\xff\x7f", 4);
    memcpy(b.data + 4, len4, 4);
    assert_int_equal(fg_spool_parse(fx->h, b.data, b.len, &got, &used,
                                    &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "out of bounds"));

    /* fields refused even when the check is right (a writer's bug, or a
     * forger who knows the format: the check is not a signature) */
    b.len = 0;
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_OK);
    b.data[8 + 2] = 'A';                        /* tenant "acme" -> "Acme" */
    assert_int_equal(fg_sha256_init(fx->h), FG_OK);
    assert_int_equal(fg_sha256_update(fx->h, b.data + 4, b.len - 4 - 16),
                     FG_OK);
    assert_int_equal(fg_sha256_final(fx->h, md), FG_OK);
    memcpy(b.data + b.len - 16, md, 16);
    assert_int_equal(fg_spool_parse(fx->h, b.data, b.len, &got, &used,
                                    &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "tenant id is not valid"));

    /* what cannot be spooled is not encoded */
    for (i = 0; i < sizeof(bad_tenants) / sizeof(bad_tenants[0]); i++) {
        e = entry(1, rec, sizeof(rec));
        e.tenant = bad_tenants[i];
        e.tenant_len = strlen(bad_tenants[i]);
        assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err),
                         FG_ERR_INVALID);
    }
    e = entry(1, rec, sizeof(rec));
    e.hash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_ERR_INVALID);
    e = entry(1, rec, sizeof(rec));
    e.record_len = 0;
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_ERR_INVALID);
    e = entry(1, rec, sizeof(rec));
    e.type = FG_RECORD_TYPES;
    assert_int_equal(fg_spool_encode(fx->h, &e, &b, &err), FG_ERR_INVALID);

    fg_buffer_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_adoption, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_entries, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

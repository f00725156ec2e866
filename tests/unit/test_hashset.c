/*
 * test_hashset.c -- the set of envelope hashes with their types
 * (core/fg_hashset): members found with their tags, absent ones not,
 * the set grown well past its first size without losing any, a tag
 * replaced, cleared and reused.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fg_hash.h"
#include "fg_hashset.h"


/* A distinct sha256 for i. */
static void
md_of(unsigned i, unsigned char md[FG_SHA256_LEN])
{
    char  s[32];
    int   n;

    n = snprintf(s, sizeof(s), "member-%u", i);
    assert_int_equal(fg_sha256(s, (size_t) n, md), FG_OK);
}


static void
test_put_get_grow(void **state)
{
    fg_hashset_t   s;
    unsigned char  md[FG_SHA256_LEN];
    unsigned       i;

    (void) state;
    fg_hashset_init(&s);

    md_of(0, md);
    assert_int_equal(fg_hashset_get(&s, md), -1);       /* empty, no memory */

    for (i = 0; i < 50000; i++) {
        md_of(i, md);
        assert_int_equal(fg_hashset_put(&s, md, (int) (i % 4)), FG_OK);
    }
    assert_int_equal(s.n, 50000);
    assert_true(s.cap >= 100000);                       /* at most half full */

    for (i = 0; i < 50000; i++) {
        md_of(i, md);
        assert_int_equal(fg_hashset_get(&s, md), (int) (i % 4));
    }
    for (i = 50000; i < 51000; i++) {
        md_of(i, md);
        assert_int_equal(fg_hashset_get(&s, md), -1);
    }

    /* a member put again keeps one place and takes the new tag */
    md_of(7, md);
    assert_int_equal(fg_hashset_put(&s, md, 3), FG_OK);
    assert_int_equal(s.n, 50000);
    assert_int_equal(fg_hashset_get(&s, md), 3);

    /* cleared: empty, memory kept, usable again */
    fg_hashset_clear(&s);
    assert_int_equal(s.n, 0);
    assert_int_equal(fg_hashset_get(&s, md), -1);
    assert_int_equal(fg_hashset_put(&s, md, 1), FG_OK);
    assert_int_equal(fg_hashset_get(&s, md), 1);

    fg_hashset_free(&s);
    assert_int_equal(fg_hashset_get(&s, md), -1);
}


/* Hashes that share their first 8 bytes collide in the table: all kept. */
static void
test_collisions(void **state)
{
    fg_hashset_t   s;
    unsigned char  md[FG_SHA256_LEN];
    unsigned       i;

    (void) state;
    fg_hashset_init(&s);

    memset(md, 0xab, sizeof(md));
    for (i = 0; i < 3000; i++) {
        md[31] = (unsigned char) i;
        md[30] = (unsigned char) (i >> 8);
        assert_int_equal(fg_hashset_put(&s, md, 2), FG_OK);
    }
    for (i = 0; i < 3000; i++) {
        md[31] = (unsigned char) i;
        md[30] = (unsigned char) (i >> 8);
        assert_int_equal(fg_hashset_get(&s, md), 2);
    }
    md[29] = 0;
    assert_int_equal(fg_hashset_get(&s, md), -1);

    fg_hashset_free(&s);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_put_get_grow),
        cmocka_unit_test(test_collisions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

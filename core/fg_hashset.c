/*
 * fg_hashset.c -- a set of SHA-256 values with a tag each (fg_hashset.h).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fg_hashset.h"


void
fg_hashset_init(fg_hashset_t *s)
{
    memset(s, 0, sizeof(*s));
}


void
fg_hashset_free(fg_hashset_t *s)
{
    free(s->keys);
    free(s->tags);
    fg_hashset_init(s);
}


void
fg_hashset_clear(fg_hashset_t *s)
{
    if (s->n > 0) {
        memset(s->tags, -1, s->cap);
        s->n = 0;
    }
}


/* The slot of md, or of the empty slot where it would go. */
static size_t
fg_hashset_slot(const fg_hashset_t *s, const unsigned char *md)
{
    uint64_t  v;
    size_t    i;

    memcpy(&v, md, sizeof(v));
    for (i = (size_t) (v & (s->cap - 1)); s->tags[i] >= 0
         && memcmp(s->keys + i * FG_SHA256_LEN, md, FG_SHA256_LEN) != 0;
         i = (i + 1) & (s->cap - 1))
    {
        /* void */
    }
    return i;
}


int
fg_hashset_get(const fg_hashset_t *s, const unsigned char *md)
{
    return s->cap ? s->tags[fg_hashset_slot(s, md)] : -1;
}


static int
fg_hashset_grow(fg_hashset_t *s)
{
    fg_hashset_t  bigger;
    size_t        i, j;

    bigger.cap = s->cap ? s->cap * 2 : 1024;
    bigger.n = s->n;
    bigger.keys = malloc(bigger.cap * FG_SHA256_LEN);
    bigger.tags = malloc(bigger.cap);
    if (bigger.keys == NULL || bigger.tags == NULL) {
        free(bigger.keys);
        free(bigger.tags);
        return FG_ERR_NOMEM;
    }
    memset(bigger.tags, -1, bigger.cap);

    for (i = 0; i < s->cap; i++) {
        if (s->tags[i] >= 0) {
            j = fg_hashset_slot(&bigger, s->keys + i * FG_SHA256_LEN);
            memcpy(bigger.keys + j * FG_SHA256_LEN,
                   s->keys + i * FG_SHA256_LEN, FG_SHA256_LEN);
            bigger.tags[j] = s->tags[i];
        }
    }

    free(s->keys);
    free(s->tags);
    *s = bigger;
    return FG_OK;
}


int
fg_hashset_put(fg_hashset_t *s, const unsigned char *md, int tag)
{
    size_t  i;

    if ((s->n + 1) * 2 > s->cap && fg_hashset_grow(s) != FG_OK) {
        return FG_ERR_NOMEM;
    }

    i = fg_hashset_slot(s, md);
    if (s->tags[i] < 0) {
        memcpy(s->keys + i * FG_SHA256_LEN, md, FG_SHA256_LEN);
        s->n++;
    }
    s->tags[i] = (signed char) tag;
    return FG_OK;
}

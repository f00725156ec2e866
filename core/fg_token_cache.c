/*
 * fg_token_cache.c -- a bounded cache of verified tokens for one worker:
 * an open-addressing hash table with linear probing, keyed by the
 * token's SHA-256 (its first 8 bytes are the hash: the key is already a
 * uniform digest).  The table has a power-of-two number of slots, at
 * least twice max_entries, so probes stay short; removal shifts the
 * following entries back, so there are no tombstones.
 *
 * Expiry: an entry is never returned at or after its exp; get drops it.
 * Eviction when full: among up to FG_TOKEN_CACHE_SAMPLE entries found
 * walking the table from the new key's slot, the one closest to its exp
 * (an expired one first) is dropped -- an approximation in the manner of
 * Redis' sampled eviction, O(1) per put; when the cache holds no more
 * than FG_TOKEN_CACHE_SAMPLE entries it is exactly the entry closest to
 * expiry.  Nothing is allocated by get.
 */

#include <stdlib.h>
#include <string.h>

#include "fg_auth.h"

#define FG_TOKEN_CACHE_SAMPLE   16
#define FG_TOKEN_CACHE_MAX      (1u << 24)     /* entries */

typedef struct {
    unsigned char  sha256[FG_SHA256_LEN];
    time_t         exp;
    fg_jws_t       jws;
    int            used;
} fg_tc_entry_t;

struct fg_token_cache_s {
    fg_tc_entry_t       *slots;
    size_t               mask;          /* slots - 1 */
    size_t               count;
    size_t               max;
    unsigned long long   hits;
    unsigned long long   misses;
};


/* The home slot of a key: its first 8 bytes. */
static size_t
fg_tc_home(const fg_token_cache_t *c, const unsigned char *sha256)
{
    uint64_t  h;

    memcpy(&h, sha256, sizeof(h));
    return (size_t) h & c->mask;
}


fg_token_cache_t *
fg_token_cache_new(size_t max_entries)
{
    fg_token_cache_t  *c;
    size_t             slots;

    if (max_entries == 0 || max_entries > FG_TOKEN_CACHE_MAX) {
        return NULL;
    }
    slots = 4;
    while (slots < 2 * max_entries) {
        slots <<= 1;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->slots = calloc(slots, sizeof(fg_tc_entry_t));
    if (c->slots == NULL) {
        free(c);
        return NULL;
    }
    c->mask = slots - 1;
    c->max = max_entries;
    return c;
}


void
fg_token_cache_free(fg_token_cache_t *c)
{
    if (c == NULL) {
        return;
    }

    fg_token_cache_clear(c);
    free(c->slots);
    free(c);
}


/* The slot holding sha256, or the empty slot where it would go. */
static size_t
fg_tc_find(const fg_token_cache_t *c, const unsigned char *sha256)
{
    size_t  i;

    i = fg_tc_home(c, sha256);
    while (c->slots[i].used
           && memcmp(c->slots[i].sha256, sha256, FG_SHA256_LEN) != 0)
    {
        i = (i + 1) & c->mask;
    }
    return i;
}


/* Drop the entry at slot i and shift the following run back over it. */
static void
fg_tc_remove(fg_token_cache_t *c, size_t i)
{
    size_t  j, home;

    fg_jws_release(&c->slots[i].jws);
    c->slots[i].used = 0;
    c->count--;

    j = i;
    for ( ;; ) {
        j = (j + 1) & c->mask;
        if (!c->slots[j].used) {
            break;
        }
        home = fg_tc_home(c, c->slots[j].sha256);
        /* may the entry at j move to i?  only if home is not in (i, j] */
        if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
            c->slots[i] = c->slots[j];
            c->slots[j].used = 0;
            memset(&c->slots[j].jws, 0, sizeof(fg_jws_t));
            i = j;
        }
    }
}


const fg_jws_t *
fg_token_cache_get(fg_token_cache_t *c,
    const unsigned char sha256[FG_SHA256_LEN], time_t now)
{
    size_t  i;

    if (c == NULL || sha256 == NULL) {
        return NULL;
    }
    i = fg_tc_find(c, sha256);
    if (!c->slots[i].used) {
        c->misses++;
        return NULL;
    }
    if (now >= c->slots[i].exp) {
        fg_tc_remove(c, i);
        c->misses++;
        return NULL;
    }
    c->hits++;
    return &c->slots[i].jws;
}


/* Make room for one entry near slot start: drop the sampled entry
 * closest to its exp. */
static void
fg_tc_evict(fg_token_cache_t *c, size_t start)
{
    size_t  i, seen, victim;

    victim = start;
    seen = 0;
    for (i = start; seen < FG_TOKEN_CACHE_SAMPLE && seen < c->count;
         i = (i + 1) & c->mask)
    {
        if (!c->slots[i].used) {
            continue;
        }
        if (seen == 0 || c->slots[i].exp < c->slots[victim].exp) {
            victim = i;
        }
        seen++;
    }
    fg_tc_remove(c, victim);
}


int
fg_token_cache_put(fg_token_cache_t *c,
    const unsigned char sha256[FG_SHA256_LEN], fg_jws_t *jws, time_t exp,
    time_t now)
{
    size_t  i;

    if (c == NULL || sha256 == NULL || jws == NULL) {
        fg_jws_release(jws);
        return FG_ERR_INVALID;
    }
    if (now >= exp) {
        fg_jws_release(jws);            /* would never be returned */
        return FG_OK;
    }

    i = fg_tc_find(c, sha256);
    if (c->slots[i].used) {
        fg_jws_release(&c->slots[i].jws);
        c->count--;
    } else if (c->count >= c->max) {
        fg_tc_evict(c, fg_tc_home(c, sha256));
        i = fg_tc_find(c, sha256);
    }

    memcpy(c->slots[i].sha256, sha256, FG_SHA256_LEN);
    c->slots[i].exp = exp;
    c->slots[i].jws = *jws;
    c->slots[i].used = 1;
    c->count++;
    memset(jws, 0, sizeof(*jws));
    return FG_OK;
}


void
fg_token_cache_stats(const fg_token_cache_t *c, size_t *entries,
    unsigned long long *hits, unsigned long long *misses)
{
    if (entries != NULL) {
        *entries = (c != NULL) ? c->count : 0;
    }
    if (hits != NULL) {
        *hits = (c != NULL) ? c->hits : 0;
    }
    if (misses != NULL) {
        *misses = (c != NULL) ? c->misses : 0;
    }
}


void
fg_token_cache_clear(fg_token_cache_t *c)
{
    size_t  i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i <= c->mask; i++) {
        if (c->slots[i].used) {
            fg_jws_release(&c->slots[i].jws);
            c->slots[i].used = 0;
        }
    }
    c->count = 0;
}

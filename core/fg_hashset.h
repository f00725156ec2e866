/*
 * fg_hashset.h -- a set of SHA-256 values, each with a small tag: the
 * envelope hashes a ledger holds and their record types, which the
 * ledger's readers (foxgov verify) and its writer (foxgov-ledgerd) look up
 * to refuse a record twice and to check that a record's link names one
 * before it.
 *
 * Open addressing over the hashes' own first 8 bytes (a sha256 is already
 * spread evenly); 33 bytes a member at most half full.
 */

#ifndef FG_HASHSET_H
#define FG_HASHSET_H

#include <stddef.h>

#include "fg_core.h"
#include "fg_hash.h"

typedef struct {
    unsigned char  *keys;       /* cap * FG_SHA256_LEN bytes */
    signed char    *tags;       /* cap tags; -1 is an empty slot */
    size_t          cap;        /* a power of two, or 0 */
    size_t          n;
} fg_hashset_t;

/* An empty set (no memory until the first put). */
void fg_hashset_init(fg_hashset_t *s);
void fg_hashset_free(fg_hashset_t *s);

/* Empty the set, keeping its memory for reuse. */
void fg_hashset_clear(fg_hashset_t *s);

/* The tag of md (0..127), or -1 when md is not in the set. */
int fg_hashset_get(const fg_hashset_t *s, const unsigned char *md);

/*
 * Put md with tag (0..127); a member already there gets the new tag.
 * Returns FG_OK or FG_ERR_NOMEM (the set is unchanged).
 */
int fg_hashset_put(fg_hashset_t *s, const unsigned char *md, int tag);

#endif /* FG_HASHSET_H */

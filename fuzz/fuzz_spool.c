/*
 * fuzz_spool.c -- libFuzzer target for the spool entry reader.
 *
 * The input is read as a spool's entries, one after the other, until the
 * reader refuses or wants more.  Besides "does not crash", on every input:
 *   - an entry read lies inside the input, and its fields inside the entry;
 *   - encoding the entry read gives back exactly the bytes it was read
 *     from (nothing in an entry is ignored, so nothing can be smuggled).
 * The check (a SHA-256) keeps mutations from reaching the fields often:
 * the seeds are whole entries, and an input starting with '!' is entries
 * whose checks this target first sets right (each framed entry, as far as
 * its length says), so mutated payloads get past the check to the field
 * parsing behind it.
 */

#include <stdlib.h>
#include <string.h>

#include "fg_hash.h"
#include "fg_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fg_sha256_t  *h;


/* p[0..n) with each whole entry's check set to what its bytes hash to */
static void
fuzz_seal(unsigned char *p, size_t n)
{
    unsigned char  md[FG_SHA256_LEN];
    size_t         off, len;

    for (off = 0; n - off >= FG_SPOOL_FRAME; off += FG_SPOOL_FRAME + len) {
        if (memcmp(p + off, FG_SPOOL_ENTRY_MAGIC, 4) != 0) {
            return;
        }
        len = (size_t) p[off + 4] | (size_t) p[off + 5] << 8
              | (size_t) p[off + 6] << 16 | (size_t) p[off + 7] << 24;
        if (len > n - off - FG_SPOOL_FRAME) {
            return;
        }
        if (fg_sha256_init(h) != FG_OK
            || fg_sha256_update(h, p + off + 4, 4 + len) != FG_OK
            || fg_sha256_final(h, md) != FG_OK)
        {
            abort();
        }
        memcpy(p + off + 8 + len, md, FG_SPOOL_CHECK_LEN);
    }
}


static int
fuzz_inside(const void *p, size_t n, const uint8_t *start, size_t len)
{
    const uint8_t  *q = p;

    return q >= start && n <= len && q - start <= (ptrdiff_t) (len - n);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_spool_entry_t  e;
    unsigned char    *copy;
    fg_buffer_t       b;
    fg_error_t        err;
    size_t            off, used;
    int               rc;

    if (h == NULL && (h = fg_sha256_new()) == NULL) {
        abort();
    }

    copy = NULL;
    if (size > 0 && data[0] == '!') {
        copy = malloc(size);
        if (copy == NULL) {
            return 0;
        }
        memcpy(copy, data + 1, size - 1);
        size--;
        fuzz_seal(copy, size);
        data = copy;
    }

    fg_buffer_init(&b, 0);

    for (off = 0; off < size; off += used) {
        rc = fg_spool_parse(h, data + off, size - off, &e, &used, &err);
        if (rc != FG_OK) {
            break;
        }

        if (used == 0 || used > size - off
            || !fuzz_inside(e.tenant, e.tenant_len, data + off, used)
            || !fuzz_inside(e.hash, 64, data + off, used)
            || !fuzz_inside(e.record, e.record_len, data + off, used)
            || (e.obs_len > 0
                && !fuzz_inside(e.obs, e.obs_len, data + off, used)))
        {
            abort();
        }

        b.len = 0;
        if (fg_spool_encode(h, &e, &b, &err) != FG_OK || b.len != used
            || memcmp(b.data, data + off, used) != 0)
        {
            abort();
        }
    }

    fg_buffer_free(&b);
    free(copy);

    return 0;
}

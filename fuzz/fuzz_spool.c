/*
 * fuzz_spool.c -- libFuzzer target for the spool entry reader.
 *
 * The input is read as a spool's entries, one after the other, until the
 * reader refuses or wants more.  Besides "does not crash", on every input:
 *   - an entry read lies inside the input, and its fields inside the entry;
 *   - encoding the entry read gives back exactly the bytes it was read
 *     from (nothing in an entry is ignored, so nothing can be smuggled).
 * The check (a SHA-256) keeps mutations from reaching the fields often:
 * the seeds are whole entries, and test_spool.c forges checked ones.
 */

#include <stdlib.h>
#include <string.h>

#include "fg_hash.h"
#include "fg_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fg_sha256_t  *h;


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
    fg_buffer_t       b;
    fg_error_t        err;
    size_t            off, used;
    int               rc;

    if (h == NULL && (h = fg_sha256_new()) == NULL) {
        abort();
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

    return 0;
}

/*
 * fuzz_ledger.c -- libFuzzer target for the ledger line reader.
 *
 * Besides "does not crash", on every input: a line that reads is written
 * back, from the entry read, to exactly its own bytes (nothing in a line
 * goes unchecked), and its record lies inside it.  Reading needs a
 * matching envelope_hash, so the seeds are whole lines.
 */

#include <stdlib.h>
#include <string.h>

#include "fg_ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fg_jcs_t     *jcs;
static fg_sha256_t  *h;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_ledger_entry_t  e;
    fg_error_t         err;
    fg_buffer_t        b;

    if (jcs == NULL && ((jcs = fg_jcs_new(0)) == NULL
                        || (h = fg_sha256_new()) == NULL))
    {
        abort();
    }

    if (fg_ledger_read(jcs, h, data, size, &e, &err) != FG_OK) {
        return 0;
    }

    if (e.record < data || e.record_len > size
        || (size_t) (e.record - data) > size - e.record_len)
    {
        abort();
    }

    fg_buffer_init(&b, 0);
    if (fg_ledger_line(e.seq, e.chain, e.envelope_hash, e.record,
                       e.record_len, &b, &err) != FG_OK
        || b.len != size + 1 || memcmp(b.data, data, size) != 0
        || b.data[size] != '\n')
    {
        abort();
    }
    fg_buffer_free(&b);

    return 0;
}

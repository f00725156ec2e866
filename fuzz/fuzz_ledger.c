/*
 * fuzz_ledger.c -- libFuzzer target for the ledger line reader and what
 * `foxgov verify` does with a line it read (a ledger file is outside
 * bytes to the verifier: it may have been tampered with).
 *
 * Besides "does not crash", on every input: a line that reads is written
 * back, from the entry read, to exactly its own bytes (nothing in a line
 * goes unchecked), and its record lies inside it; the record read as the
 * ledger's canonical bytes hashes to the line's envelope_hash, and
 * fg_ledger_check names every fault it finds.
 *
 * Reading needs a matching envelope_hash, which mutations rarely keep: an
 * input starting with '!' is a line whose envelope_hash this target first
 * sets to sha256 of its "record" member's bytes, so mutated records get
 * past the hash to the checks behind it.  The seeds are whole lines.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_json_scan.h"
#include "fg_ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fg_jcs_t      *jcs;
static fg_sha256_t   *h;
static fg_records_t  *records;


/* line[0..n) with envelope_hash set to the sha256 of its record's bytes */
static void
fuzz_seal(unsigned char *line, size_t n)
{
    static const char  *keys[2] = { "record", "envelope_hash" };
    fg_json_span_t      spans[2];
    unsigned char       md[FG_SHA256_LEN];
    char                hex[FG_SHA256_HEX_LEN + 1];

    if (fg_json_members((const char *) line, n, keys, 2, spans)
        != FG_JSON_FOUND
        || !spans[0].found || !spans[1].found
        || spans[1].len != FG_SHA256_HEX_LEN + 2
        || fg_sha256(line + spans[0].off, spans[0].len, md) != FG_OK)
    {
        return;
    }

    fg_hex_sha256(md, hex);
    memcpy(line + spans[1].off + 1, hex, FG_SHA256_HEX_LEN);
}


static void
fuzz_verify(const fg_ledger_entry_t *e)
{
    unsigned char       md[FG_SHA256_LEN], prev[FG_SHA256_LEN];
    fg_ledger_facts_t   facts;
    fg_ledger_fault_t   f;
    fg_error_t          err;
    json_t             *rec;

    rec = NULL;
    if (fg_record_parse_canonical(jcs, e->record, e->record_len, md, &rec,
                                  &err) != FG_OK)
    {
        return;
    }

    if (memcmp(md, e->envelope_hash, FG_SHA256_LEN) != 0) {
        fprintf(stderr, "the record read does not hash to the line's\n");
        abort();
    }

    memset(&err, 0, sizeof(err));
    f = fg_ledger_check(records, rec, "acme", &facts, &err);
    if ((unsigned) f >= FG_LEDGER_FAULTS
        || (f != FG_LEDGER_OK && err.msg[0] == '\0'))
    {
        abort();
    }

    /* the entry follows a genesis only as the first one */
    if (fg_ledger_genesis(h, "acme", 4, prev) == FG_OK
        && fg_ledger_next(h, 0, prev, e, &err) == FG_OK
        && e->seq != 1)
    {
        abort();
    }

    json_decref(rec);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_ledger_entry_t  e;
    unsigned char     *copy;
    fg_error_t         err;
    fg_buffer_t        b;

    if (jcs == NULL && ((jcs = fg_jcs_new(0)) == NULL
                        || (h = fg_sha256_new()) == NULL
                        || (records = fg_records_new(&err)) == NULL))
    {
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

    if (fg_ledger_read(jcs, h, data, size, &e, &err) != FG_OK) {
        free(copy);
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

    fuzz_verify(&e);

    free(copy);

    return 0;
}

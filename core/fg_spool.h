/*
 * fg_spool.h -- the evidence spool: where a gateway worker keeps the
 * records it could not hand to Redis, until Redis takes them (DESIGN.md
 * "Evidence transport", docs/spool.md).
 *
 * A spool file is append-only and owned by one process at a time (an
 * exclusive flock on it, so a file whose owner died can be adopted by
 * another: the lock goes with the process).  It starts with the 8 bytes
 * "FGSPOOL1"; every entry after that is
 *
 *     "FGE1"                       4 bytes
 *     payload length               4 bytes, little endian, at most
 *                                  FG_SPOOL_PAYLOAD_MAX
 *     payload                      as long as it says
 *     check                        16 bytes: the first half of
 *                                  sha256(length bytes || payload)
 *
 * and the payload is one record as the transport sends it:
 *
 *     record type                  1 byte, fg_record_type_t
 *     tenant id length             1 byte, then the tenant id
 *                                  (fg_tenant_id_valid)
 *     envelope_hash                64 lowercase hex digits
 *     record length                4 bytes LE, then the canonical record
 *     observational length         4 bytes LE, then the observational
 *                                  JSON (may be empty)
 *
 * Nothing in a spool is trusted when it is read back: every field is
 * checked, and the record is hashed again by whoever reads it (the ledger
 * recomputes every envelope_hash).  An entry the file ends inside of (a
 * crash while it was written) is a torn tail: it is reported and never
 * read as a record; opening the file for appending cuts it off.  An entry
 * that is whole but fails its check is corruption, not a torn tail: the
 * reader stops there with the byte offset and the caller keeps the file
 * for an operator.
 */

#ifndef FG_SPOOL_H
#define FG_SPOOL_H

#include <stdint.h>

#include "fg_core.h"
#include "fg_record.h"

#define FG_SPOOL_MAGIC          "FGSPOOL1"
#define FG_SPOOL_MAGIC_LEN      8
#define FG_SPOOL_ENTRY_MAGIC    "FGE1"
#define FG_SPOOL_CHECK_LEN      16
#define FG_SPOOL_OBS_MAX        (64 * 1024)
#define FG_SPOOL_PAYLOAD_MAX    (1 + 1 + FG_TENANT_ID_MAX + 64 + 4 \
                                 + FG_RECORD_MAX_BYTES + 4 + FG_SPOOL_OBS_MAX)
/* the framing around a payload: magic, length, check */
#define FG_SPOOL_FRAME          (4 + 4 + FG_SPOOL_CHECK_LEN)

/* What fg_spool_parse() says besides FG_OK and the FG_ERR_* codes. */
#define FG_SPOOL_MORE           100     /* the bytes end inside an entry */

/* One record in a spool; the pointers point into the bytes it was read
 * from (or, for fg_spool_append(), into the caller's memory). */
typedef struct {
    fg_record_type_t      type;
    const char           *tenant;
    size_t                tenant_len;
    const char           *hash;          /* 64 hex digits, not NUL-ended */
    const unsigned char  *record;
    size_t                record_len;
    const unsigned char  *obs;
    size_t                obs_len;
} fg_spool_entry_t;


/* ------------------------------------------------------------- parsing */

/*
 * Read the entry at p[0..n) (the bytes after the file's magic, or after
 * the entry before).  Returns FG_OK with *e and *used (the entry's whole
 * length); FG_SPOOL_MORE when p ends inside the entry (at the end of a
 * file: a torn tail); FG_ERR_INVALID with err saying what is wrong (bad
 * magic, a length beyond the bounds, a check that fails, a field that is
 * not what it must be).  Allocates nothing.
 */
int fg_spool_parse(fg_sha256_t *h, const unsigned char *p, size_t n,
    fg_spool_entry_t *e, size_t *used, fg_error_t *err);

/* The bytes of e as an entry (framed, checked) appended to out. */
int fg_spool_encode(fg_sha256_t *h, const fg_spool_entry_t *e,
    fg_buffer_t *out, fg_error_t *err);


/* ------------------------------------------------------------- a file */

typedef struct fg_spool_s  fg_spool_t;

/*
 * Open (creating it, mode 0600) the spool file path for appending, and
 * lock it: FG_ERR_IO with "in use" when another process holds it.  An
 * existing file is read through first: a torn tail is cut off (*torn set
 * to the bytes cut, 0 when none; the caller logs it), corruption refuses
 * the file (FG_ERR_INVALID, err naming the offset; the caller moves it
 * aside).  max_bytes bounds the file (0: no bound).  NULL with err set on
 * error.
 */
fg_spool_t *fg_spool_open(const char *path, uint64_t max_bytes,
    uint64_t *torn, fg_error_t *err);

/*
 * Give the open spool the name path, in the same directory, without ever
 * replacing a file already there (renameat2 RENAME_NOREPLACE): FG_ERR_IO
 * with err saying "exists" (errno EEXIST) when path is taken.  The lock
 * goes with the file, so a spool created under a name no reader looks at
 * and renamed once locked is never seen unlocked (docs/spool.md).  The
 * directory is synced again at the next fg_spool_sync().
 */
int fg_spool_rename(fg_spool_t *s, const char *path, fg_error_t *err);

/*
 * Append e to the file: written at once (it outlives the process, a
 * SIGKILL of it included), made durable by the next fg_spool_sync().
 * FG_ERR_LIMIT when the file would grow beyond max_bytes (the spool is
 * full: nothing is written), FG_ERR_INVALID for an entry that is not
 * valid, FG_ERR_IO when the write fails (a part written is cut again; if
 * that fails too, the spool refuses every later append).
 */
int fg_spool_append(fg_spool_t *s, const fg_spool_entry_t *e,
    fg_error_t *err);

/*
 * Room held for records under way (docs/spool.md, "Room held"): the
 * gateway holds, for each record it sends to Redis, the room it would take
 * here until Redis acknowledges it, and for each call it lets through the
 * room of its call record, so that a record already promised never finds
 * the spool full.  fg_spool_reserve() holds n bytes: FG_ERR_LIMIT when the
 * file and what is held would pass max_bytes, FG_ERR_IO when the file
 * system has no room for them (the blocks are allocated ahead, so held
 * room is room on the disk).  fg_spool_append() takes only room nobody
 * holds; fg_spool_append_reserved() first gives back the reserved bytes
 * held for e.  fg_spool_release() gives back n bytes held.
 */
uint64_t fg_spool_entry_bytes(size_t tenant_len, size_t record_len,
    size_t obs_len);
int fg_spool_reserve(fg_spool_t *s, uint64_t n, fg_error_t *err);
void fg_spool_release(fg_spool_t *s, uint64_t n);
uint64_t fg_spool_reserved(const fg_spool_t *s);
int fg_spool_append_reserved(fg_spool_t *s, const fg_spool_entry_t *e,
    uint64_t reserved, fg_error_t *err);

/* fsync what was appended (and, once, the file's directory). */
int fg_spool_sync(fg_spool_t *s, fg_error_t *err);

/* Bytes in the file; entries in it. */
uint64_t fg_spool_bytes(const fg_spool_t *s);
uint64_t fg_spool_entries(const fg_spool_t *s);

/*
 * The entries of the file, in order, one per call: FG_OK with *e (valid
 * until the next call), FG_SPOOL_MORE at the end (a torn tail was cut when
 * the file was opened), or an error.
 * fg_spool_rewind() starts again from the first entry.
 */
int fg_spool_next(fg_spool_t *s, fg_spool_entry_t *e, fg_error_t *err);
void fg_spool_rewind(fg_spool_t *s);

/*
 * Every entry is in Redis: empty the file (keeping it, and its lock) and
 * fsync.  Refused (FG_ERR_INVALID) unless every entry has been read since
 * the last rewind: what was not read was not sent.
 */
int fg_spool_truncate(fg_spool_t *s, fg_error_t *err);

/* Unlock and close (what was appended is in the file; sync first to make
 * it durable). */
void fg_spool_close(fg_spool_t *s);

#endif /* FG_SPOOL_H */

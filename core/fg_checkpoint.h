/*
 * fg_checkpoint.h -- signed checkpoints of a tenant's ledger (DESIGN.md
 * "Ledger"): a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint) in C2SP
 * signed-note form (c2sp.org/signed-note), Ed25519 only.  A checkpoint
 * says "the ledger of this tenant had size entries and its chain at seq
 * size was hash", so a verifier that has seen it refuses a ledger that
 * was cut below it or rewritten up to it.
 *
 * The note, byte for byte (docs/ledger.md, "Checkpoints"):
 *
 *     foxgov-ledger/<tenant_id>\n             origin
 *     <size>\n                                seq, decimal, 1..2^53-1
 *     <base64(chain at seq size)>\n           standard base64, 44 chars
 *     \n
 *     — <kid> <base64(key id || signature)>\n   1 to 16 signature lines
 *
 * where the signature is Ed25519 over the three lines of text (the
 * "note text", with its last "\n") and the key id is the first 4 bytes,
 * big-endian, of sha256(kid || "\n" || 0x01 || 32-byte public key).  The
 * hash line holds the ledger's chain value (fg_ledger.h), not an RFC 6962
 * Merkle root: C2SP tools can check the signature, not inclusion proofs.
 *
 * Reading is strict: at most FG_CHECKPOINT_NOTE_MAX bytes, exactly that
 * grammar, the origin's tenant a tenant id, no leading zero, canonical
 * base64, and no extension lines (foxgov writes none; the spec allows
 * them but they are not auditable, so a note carrying one is refused).
 * Signature lines of other signers (witnesses, a rotated key) are kept
 * and ignored by verification unless their name and key id are a
 * trusted key's.
 */

#ifndef FG_CHECKPOINT_H
#define FG_CHECKPOINT_H

#include <stdint.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jose.h"
#include "fg_record.h"

#define FG_CHECKPOINT_ORIGIN_PREFIX  "foxgov-ledger/"
#define FG_CHECKPOINT_ORIGIN_MAX     \
    (sizeof(FG_CHECKPOINT_ORIGIN_PREFIX) - 1 + FG_TENANT_ID_MAX)

#define FG_CHECKPOINT_NOTE_MAX       4096   /* bytes of a signed note */
#define FG_CHECKPOINT_SIGS_MAX       16     /* signature lines in a note */
#define FG_CHECKPOINT_NAME_MAX       255    /* bytes of a key name */
#define FG_CHECKPOINT_SIZE_MAX       9007199254740991ULL   /* 2^53-1 */
#define FG_CHECKPOINT_ED25519_SIG    64     /* bytes of a signature */

/* The file one checkpoint is kept in: "<size, 20 digits>.checkpoint". */
#define FG_CHECKPOINT_FILE_SUFFIX    ".checkpoint"
#define FG_CHECKPOINT_FILE_NAME_LEN  \
    (20 + sizeof(FG_CHECKPOINT_FILE_SUFFIX) - 1)

/* One signature line as read. */
typedef struct {
    char           name[FG_CHECKPOINT_NAME_MAX + 1];   /* the key name */
    uint32_t       key_id;
    size_t         sig_len;     /* bytes after the key id */
    unsigned char  sig[FG_CHECKPOINT_ED25519_SIG];     /* when sig_len 64 */
} fg_checkpoint_sig_t;

/* A checkpoint as read; nothing in it is trusted before verify. */
typedef struct {
    char                 tenant[FG_TENANT_ID_MAX + 1];
    uint64_t             size;
    unsigned char        hash[FG_SHA256_LEN];

    /* the signed note text: origin, size and hash lines */
    unsigned char        text[FG_CHECKPOINT_ORIGIN_MAX + 80];
    size_t               text_len;

    size_t               nsigs;
    fg_checkpoint_sig_t  sigs[FG_CHECKPOINT_SIGS_MAX];
} fg_checkpoint_t;

/*
 * The signed-note key id of an Ed25519 key whose key name is its kid.
 * Returns FG_OK, or FG_ERR_INVALID (not an Ed25519 key, or its kid is not
 * a key name: 1 to FG_JWK_KID_MAX printable ASCII bytes, no space, no
 * '+') or FG_ERR_CRYPTO, with err set.
 */
int fg_checkpoint_key_id(const fg_jwk_t *key, uint32_t *id, fg_error_t *err);

/*
 * Sign the checkpoint (tenant, size, hash) with key (a private Ed25519
 * key; its kid is the key name) and append the whole signed note to
 * note.  Returns FG_OK, or FG_ERR_INVALID (the key cannot sign
 * checkpoints, the tenant is not a tenant id, size is not 1..2^53-1),
 * FG_ERR_CRYPTO or FG_ERR_NOMEM with err set; nothing is appended then.
 */
int fg_checkpoint_sign(const fg_jwk_t *key, const char *tenant,
    uint64_t size, const unsigned char hash[FG_SHA256_LEN], fg_buffer_t *note,
    fg_error_t *err);

/*
 * Read the signed note text[0..len) into *cp, strictly (above).  Returns
 * FG_OK, or FG_ERR_LIMIT (longer than FG_CHECKPOINT_NOTE_MAX, more than
 * FG_CHECKPOINT_SIGS_MAX signatures) or FG_ERR_SYNTAX (anything else off
 * the grammar) with err saying what and at which byte.  A note that
 * reads is not yet trusted: verify it.
 */
int fg_checkpoint_parse(const unsigned char *text, size_t len,
    fg_checkpoint_t *cp, fg_error_t *err);

/*
 * Verify cp against the trusted keys: at least one signature line whose
 * name is the kid of an Ed25519 key of trusted and whose key id is that
 * key's must verify, and every such line must (a signature from a
 * trusted key that fails refuses the whole note, as the spec advises).
 * Lines of other keys are ignored.  *by (may be NULL) gets the first key
 * that verified.  Returns FG_OK, FG_ERR_INVALID with err saying why (no
 * trusted signature, naming the note's signers; or whose signature
 * failed), or FG_ERR_CRYPTO.
 */
int fg_checkpoint_verify(const fg_checkpoint_t *cp,
    const fg_keyset_t *trusted, const fg_jwk_t **by, fg_error_t *err);

/* The file name of the checkpoint at size: "%020llu.checkpoint". */
void fg_checkpoint_file_name(uint64_t size,
    char name[FG_CHECKPOINT_FILE_NAME_LEN + 1]);

#endif /* FG_CHECKPOINT_H */

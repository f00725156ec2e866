/*
 * fg_bundle.h -- policy bundles: loading a bundle from a directory or a
 * .tar.gz, checking its layout, verifying its OPA-format signature, and
 * building, signing and writing bundles for the CLI.
 *
 * A bundle holds `.manifest` (a JSON object with a non-empty `revision`),
 * `policy.json` (the rules; handed over as bytes, compiled elsewhere),
 * optionally `prices.json` and `tests/<name>.json`, and
 * `.signatures.json` = {"signatures": ["<compact JWS>"]} as OPA documents
 * it: the JWS payload's `files` lists every other file of the bundle once,
 * as {"name", "hash" (lowercase hex SHA-256 of its bytes), "algorithm":
 * "SHA-256"}.
 *
 * Archives are read and written with libarchive (gzip + tar).  Refused,
 * each with one message naming the file and the reason: absolute paths,
 * `..`, `.` or empty path segments, names with control characters or a
 * backslash, names that are not UTF-8, symlinks, hard links, devices and
 * fifos, duplicate names, more files or more bytes than the limits allow;
 * a signature list that is not exactly one JWS; a JWS that does not verify
 * against the keys, or is signed with HS256 (see fg_bundle_load()); a
 * `files` list that does not match the files exactly; a missing or invalid
 * `.manifest`; a missing `policy.json`.
 */

#ifndef FG_BUNDLE_H
#define FG_BUNDLE_H

#include <jansson.h>

#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jose.h"

#define FG_BUNDLE_MANIFEST          ".manifest"
#define FG_BUNDLE_POLICY            "policy.json"
#define FG_BUNDLE_PRICES            "prices.json"
#define FG_BUNDLE_SIGNATURES        ".signatures.json"

#define FG_BUNDLE_NAME_MAX          255     /* bytes of a path in a bundle */
#define FG_BUNDLE_REVISION_MAX      256     /* as the records' `token` */
#define FG_BUNDLE_DEPTH_MAX         16      /* directory nesting */

#define FG_BUNDLE_DEFAULT_MAX_FILES      256
#define FG_BUNDLE_DEFAULT_MAX_FILE_SIZE  (16u * 1024 * 1024)
#define FG_BUNDLE_DEFAULT_MAX_TOTAL      (64u * 1024 * 1024)

/* Bounds on what a bundle may hold; a 0 field takes the default. */
typedef struct {
    size_t  max_files;      /* regular files, .signatures.json included */
    size_t  max_file_size;  /* bytes of one file */
    size_t  max_total;      /* bytes of all files together */
} fg_bundle_limits_t;

/* One file of a bundle; data is NUL-terminated (not counted in len). */
typedef struct {
    const char           *name;     /* relative, '/'-separated */
    const unsigned char  *data;
    size_t                len;
} fg_bundle_file_t;

typedef struct fg_bundle_s  fg_bundle_t;


/* ------------------------------------------------------------- loading */

/*
 * Load the bundle at path (a directory, or else a .tar.gz file), check its
 * layout and verify its signature against keys.  The signature must be
 * EdDSA, ES256 or RS256; HS256 is refused even when keys hold an oct key,
 * because whoever can verify with a shared secret could also sign a
 * bundle.  An `exp`/`nbf` in the token, when present, is checked against
 * the current time; none is required.  limits may be NULL (defaults).
 * On success *out is the bundle (free it with fg_bundle_free()) and
 * FG_OK is returned.  Otherwise *out is NULL and the return is
 * FG_ERR_INVALID (refused), FG_ERR_LIMIT, FG_ERR_SYNTAX (a corrupt
 * archive), FG_ERR_IO, FG_ERR_NOMEM or FG_ERR_CRYPTO, with err saying
 * "<file>: <reason>".  keys == NULL is refused (FG_ERR_INVALID).
 */
int fg_bundle_load(const char *path, const fg_keyset_t *keys,
    const fg_bundle_limits_t *limits, fg_bundle_t **out, fg_error_t *err);

/* As fg_bundle_load(), for a .tar.gz held in data[0..len). */
int fg_bundle_load_tar_gz(const unsigned char *data, size_t len,
    const fg_keyset_t *keys, const fg_bundle_limits_t *limits,
    fg_bundle_t **out, fg_error_t *err);

/*
 * Load without verifying any signature (for `foxgov bundle build` and
 * tests): the layout, the limits, `.manifest` and `policy.json` are
 * checked as by fg_bundle_load(); `.signatures.json` may be absent and,
 * when present, is kept as a file but not read.  The result reports
 * fg_bundle_verified() == 0.  Returns as fg_bundle_load().
 */
int fg_bundle_load_unverified(const char *path,
    const fg_bundle_limits_t *limits, fg_bundle_t **out, fg_error_t *err);

/* As fg_bundle_load_unverified(), for a .tar.gz in data[0..len). */
int fg_bundle_load_tar_gz_unverified(const unsigned char *data, size_t len,
    const fg_bundle_limits_t *limits, fg_bundle_t **out, fg_error_t *err);

void fg_bundle_free(fg_bundle_t *b);


/* ----------------------------------------------------------- accessors */

/* The `.manifest` revision. */
const char *fg_bundle_revision(const fg_bundle_t *b);

/* The parsed `.manifest` object (borrowed). */
const json_t *fg_bundle_manifest(const fg_bundle_t *b);

/*
 * The bundle digest recorded in every PolicyDecisionRecord: lowercase hex
 * SHA-256 of the JCS bytes of the `files` list (name, hash, algorithm of
 * each file but .signatures.json) sorted by name.  For a verified bundle
 * this is the signed list, which equals the list of its files.
 */
const char *fg_bundle_sha256(const fg_bundle_t *b);

/* 1 when the signature was verified at load, else 0. */
int fg_bundle_verified(const fg_bundle_t *b);

/* The kid of the key that verified the signature; "" when unverified. */
const char *fg_bundle_kid(const fg_bundle_t *b);

/* The files, sorted by name (byte order), .signatures.json included. */
size_t fg_bundle_file_count(const fg_bundle_t *b);
const fg_bundle_file_t *fg_bundle_file_at(const fg_bundle_t *b, size_t i);

/* The file called name, or NULL. */
const fg_bundle_file_t *fg_bundle_file(const fg_bundle_t *b,
    const char *name);


/* ---------------------------------------------- building and signing */

/*
 * Add the file name (or replace its bytes) in b; the name is checked as a
 * loaded one is.  Replacing `.manifest` re-reads the revision.  Any change
 * but to .signatures.json marks b unverified and recomputes its digest.
 * Returns FG_OK, or FG_ERR_INVALID / FG_ERR_LIMIT / FG_ERR_NOMEM with err
 * set; b is unchanged on error.
 */
int fg_bundle_set_file(fg_bundle_t *b, const char *name,
    const unsigned char *data, size_t len, fg_error_t *err);

/*
 * The `files` claim for b's current files (all but .signatures.json),
 * sorted by name: [{"name":..,"hash":..,"algorithm":"SHA-256"},...].
 * A new reference, or NULL when out of memory.
 */
json_t *fg_bundle_files_claims(const fg_bundle_t *b);

/*
 * Sign b's files with key (private EdDSA, ES256 or RS256) and append the
 * `.signatures.json` text ({"signatures":["<JWS>"]}) to signatures_json.
 * The caller adds it with fg_bundle_set_file().  Returns FG_OK or an
 * error (FG_ERR_INVALID for an HS256 or public key) with err set.
 */
int fg_bundle_sign(const fg_bundle_t *b, const fg_jwk_t *key,
    fg_buffer_t *signatures_json, fg_error_t *err);

/*
 * b as a .tar.gz appended to out: ustar (pax when a name needs it) with
 * gzip, names sorted, mtime 0, uid/gid 0, no owner names, mode 0644, no
 * gzip timestamp, so the same files always give the same bytes.
 * Returns FG_OK, FG_ERR_NOMEM or FG_ERR_IO with err set.
 */
int fg_bundle_tar_gz(const fg_bundle_t *b, fg_buffer_t *out,
    fg_error_t *err);

/* As fg_bundle_tar_gz(), written to the file path (created mode 0644). */
int fg_bundle_write_tar_gz(const fg_bundle_t *b, const char *path,
    fg_error_t *err);

#endif /* FG_BUNDLE_H */

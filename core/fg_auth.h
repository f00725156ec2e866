/*
 * fg_auth.h -- the caller's identity: from a verified token (fg_jose) to
 * the AuthContext record, the capability gate, a bounded per-worker cache
 * of verified tokens, and approval tokens bound to one call.
 *
 * Nothing here reads the network or the disk; the gateway, the daemon and
 * the CLI call it with what they already hold.
 */

#ifndef FG_AUTH_H
#define FG_AUTH_H

#include <time.h>

#include <jansson.h>

#include "fg_core.h"
#include "fg_glob.h"
#include "fg_hash.h"
#include "fg_jose.h"
#include "fg_record.h"

/* Where the gateway found the token, in the order it looks. */
#define FG_AUTH_SOURCE_FOXGOV_AUTH   "foxgov-auth"
#define FG_AUTH_SOURCE_AUTHORIZATION "authorization"
#define FG_AUTH_SOURCE_X_API_KEY     "x-api-key"
#define FG_AUTH_SOURCE_API_KEY       "api-key"

#define FG_AUTH_MAX_CAPABILITIES  256


/* ---------------------------------------------------------- AuthContext */

typedef struct {
    const char        *token_source;   /* one of FG_AUTH_SOURCE_* */
    const char        *execution_id;
    const fg_trace_t  *trace;
    time_t             now_sec;        /* authenticated_at */
    long               now_nsec;
    int                claims_checked; /* the caller has checked the claims
                                          with fg_auth_check_claims() (a
                                          token cache entry): not again */
} fg_auth_args_t;

/*
 * Check that the claims of a verified token carry what an AuthContext
 * needs -- iss, sub, tenant_id matching ^[a-z0-9][a-z0-9_-]{0,62}$,
 * workspace_id, environment, capabilities (an array of at most
 * FG_AUTH_MAX_CAPABILITIES "model:..."/"tool:..." strings), exp; acr, jti,
 * iat optional -- each within the record schema's bounds (lengths in
 * characters, as JSON Schema counts them).  An optional claim present as
 * null is refused like any other non-string; iat and exp are integers
 * from 0 to 253402300799 (9999-12-31T23:59:59Z).  Returns FG_OK, or
 * FG_ERR_INVALID with err naming the claim and the reason ("claim exp
 * missing", "claim capabilities: item 3 is not a string", items counted
 * from 0; the gateway answers 401), never quoting the token.
 */
int fg_auth_check_claims(const json_t *claims, fg_error_t *err);

/*
 * Write the AuthContext record of a verified token, in its canonical form,
 * into out (the sink is drained): the envelope, the claims as
 * the schema names them (capabilities in token order, duplicates
 * removed), token_sha256 (the token itself never enters a record), kid
 * (the header's, null when it has none), alg, the times (issued_at and
 * expires_at from iat and exp without fraction, issued_at null without
 * iat; authenticated_at from args with milliseconds).  token_sha256 is
 * the lowercase hex SHA-256 of the compact token.  Returns FG_OK, or an
 * error with err set: FG_ERR_INVALID when the claims do not pass
 * fg_auth_check_claims(),
 * token_source is not one of FG_AUTH_SOURCE_*, token_sha256 is not 64
 * lowercase hex digits or the header kid is not printable ASCII; or
 * (FG_ERR_NOMEM) when memory runs out.
 */
int fg_auth_context_write(const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_sink_t *out, fg_error_t *err);

/*
 * The same record as a jansson value (written, then read back), for the
 * CLI and the tests.  NULL with err set on error.
 */
json_t *fg_auth_context_record(const fg_jws_t *jws, const char *token_sha256,
    const fg_auth_args_t *args, fg_error_t *err);

/*
 * What a decision reads of the caller, from a verified token's claims
 * (checked by fg_auth_check_claims()): {tenant_id, workspace_id,
 * environment, principal, acr (null when absent), capabilities (token
 * order, duplicates removed)}, the same values as its AuthContext record
 * holds, without the per-call members.  The decision input and the
 * capability gate take it where they took the AuthContext.  NULL with err
 * set on error.
 */
json_t *fg_auth_subject(const fg_jws_t *jws, fg_error_t *err);

/*
 * The capability gate: 1 when one of capabilities (globs, e.g.
 * "model:gpt-4o*", "tool:servicenow.*:write") matches need in whole
 * ("model:gpt-4o-2024-08-06", "tool:servicenow.incident:write"), else 0.
 * A capability covers a need of its own kind only ("model:" or "tool:");
 * its rest is one glob matched against the need's whole rest, so
 * "tool:*" covers every tool call.  Glob syntax is the policy language's
 * (fg_glob_match); a malformed glob or a non-string item matches nothing.
 */
int fg_auth_capable(const json_t *capabilities, const char *need);

/*
 * fg_glob_match() (fg_glob.h, included above): glob match over bytes,
 * whole value: * any run, ? one byte, [set], [!set]/[^set], \x literal.
 * The one matcher of core/ (policy rules and capabilities).  Returns 1
 * match, 0 no match, -1 malformed pattern.
 */


/* ------------------------------------------------------ token cache */

/*
 * A bounded cache of verified tokens, keyed by the token's SHA-256, for
 * one worker (not thread-safe).  An entry lives until its token's exp
 * (never returned at or after it); when full, the entry closest to expiry
 * among up to 16 sampled near the new key's slot is evicted (exactly the
 * one closest to expiry while the cache holds at most 16 entries).
 * Verification results only enter it after fg_jws_verify() and
 * fg_auth_check_claims() succeeded.  A cached fg_jws_t points at the key
 * that verified it: fg_token_cache_clear() before the key set is freed
 * or replaced.
 */
typedef struct fg_token_cache_s  fg_token_cache_t;

/* A cache of 1 to 2^24 entries; NULL for another bound or out of memory. */
fg_token_cache_t *fg_token_cache_new(size_t max_entries);
void fg_token_cache_free(fg_token_cache_t *c);

/* Drop every entry (keys reloaded); the stats are kept. */
void fg_token_cache_clear(fg_token_cache_t *c);

/*
 * The cached verification of a token with this SHA-256, if any and not
 * expired at now (an expired entry is dropped and counts as a miss).  The
 * returned fg_jws_t is owned by the cache and valid until the next call
 * on c (get, put, clear or free: entries move in the table).  Allocates
 * nothing.
 */
const fg_jws_t *fg_token_cache_get(fg_token_cache_t *c,
    const unsigned char sha256[FG_SHA256_LEN], time_t now);

/*
 * Keep jws (its header and claims are taken over by the cache; the
 * caller's jws is emptied) until exp, replacing an entry of the same
 * SHA-256.  A jws already expired at now (exp <= now) is released and not
 * kept.  Allocates nothing.  Returns FG_OK, or FG_ERR_INVALID for NULL
 * arguments (jws is then released).
 */
int fg_token_cache_put(fg_token_cache_t *c,
    const unsigned char sha256[FG_SHA256_LEN], fg_jws_t *jws, time_t exp,
    time_t now);

/* Entries, hits and misses so far, for metrics. */
void fg_token_cache_stats(const fg_token_cache_t *c, size_t *entries,
    unsigned long long *hits, unsigned long long *misses);


/* ------------------------------------------------------------ approvals */

/* The call an approval must be bound to. */
typedef struct {
    const char  *tenant_id;
    const char  *tool;
    const char  *action;
    const char  *input_sha256;     /* the request BlobRef's sha256 */
} fg_approval_binding_t;

/* The typ header an approval token must carry. */
#define FG_APPROVAL_TYP  "foxgov-approval+jwt"

/*
 * Verify an approval token (typ foxgov-approval+jwt, exp required) with
 * the approvers' keys and check it is bound to exactly this call: its
 * tenant_id, tool, action and input_sha256 claims equal b's.  Claims
 * approval_request_id (a name), tenant_id, tool (a tool_id), action,
 * input_sha256 (64 lowercase hex), sub (the approver) and jti are
 * required within the bounds of the Approval object of the
 * PolicyDecisionRecord schema.  Returns the decision input's `approval`
 * object {approval_id, jti, approver, input_sha256}, or NULL with err
 * saying why: fg_jws_verify()'s refusal ("token typ is not the expected
 * one", "token has expired", ...), "approval claim <name> ...", or
 * "approval is for another tenant" / "another tool" / "another action" /
 * "other input".  err->code tells the gateway what to answer: a binding
 * refusal is FG_ERR_MISMATCH (an authentic approval for another call: the
 * call stays held, 428 again); anything else is FG_ERR_INVALID,
 * FG_ERR_SYNTAX or FG_ERR_LIMIT (not a valid approval at all: 401).
 * Single use (the jti) is the caller's to
 * enforce: it holds the shared store.
 */
json_t *fg_approval_verify(const fg_keyset_t *approvers, const char *token,
    size_t len, const fg_approval_binding_t *b, time_t now, unsigned leeway,
    fg_error_t *err);

/*
 * fg_approval_verify() that also writes the approval's exp to *exp (when
 * not NULL): how long the gateway must remember its jti as used.
 */
json_t *fg_approval_verify_exp(const fg_keyset_t *approvers,
    const char *token, size_t len, const fg_approval_binding_t *b,
    time_t now, unsigned leeway, time_t *exp, fg_error_t *err);

#endif /* FG_AUTH_H */

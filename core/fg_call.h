/*
 * fg_call.h -- one governed call as the gateway sees it, without nginx:
 * the request body read strictly and hashed, the FoxGov-Labels header,
 * the DecisionInput of the PolicyDecisionRecord, the call records
 * (ModelCallRecord, ToolCallRecord), the cost of a model call, and the
 * OpenAI-shaped error body every refusal carries (DESIGN.md, "Calls and
 * adapters", "Decisions and responses"; docs/records.md).
 *
 * The module collects bytes and header values and hands them here; what
 * they mean, how they are bounded and how they are recorded is decided in
 * this file, once, and unit-tested (tests/unit/test_call.c).
 */

#ifndef FG_CALL_H
#define FG_CALL_H

#include <time.h>

#include <jansson.h>

#include "fg_adapter.h"
#include "fg_core.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_policy.h"
#include "fg_record.h"

typedef enum {
    FG_CALL_MODEL = 0,
    FG_CALL_TOOL
} fg_call_kind_t;

/* Bounds of what a call record holds (the record schemas'). */
#define FG_CALL_LABELS_MAX        16
#define FG_CALL_LABEL_KEY_MAX     64
#define FG_CALL_LABEL_VALUE_MAX   256
#define FG_CALL_LABELS_TEXT_MAX   8192    /* bytes of a FoxGov-Labels value */
#define FG_CALL_BODY_VALUE_MAX    4096    /* chars of an input.body string */
#define FG_CALL_REDACTIONS_MAX    64
#define FG_CALL_TOKEN_MAX         256     /* a schema `token` */
#define FG_CALL_TOOL_ID_MAX       128     /* a schema `tool_id` */
#define FG_CALL_METHOD_MAX        32      /* a schema `http_method` */
#define FG_CALL_HOST_MAX          255
#define FG_CALL_PATH_MAX          2048    /* characters */


/* ----------------------------------------------------------------- body */

/*
 * 1 when the media type v[0..len) (parameters allowed, any case) is JSON:
 * application/json or application/<anything>+json.  0 otherwise (also for
 * len 0).
 */
int fg_content_type_is_json(const char *v, size_t len);

/*
 * The content_type a BlobRef records for a Content-Type value
 * v[0..len): v itself when it fits the schema's content_type pattern
 * and is at most 127 bytes; else its media type (before any ';',
 * spaces trimmed, lowercased) when that fits; else
 * "application/octet-stream" (also for len 0).  out is NUL-ended.
 */
void fg_content_type_record(const char *v, size_t len,
    char out[FG_CONTENT_TYPE_MAX]);

/*
 * Read a request body p[0..n) whose Content-Type is ctype[0..ctype_len).
 *
 * json set (a model call, a tool call with an input schema, or a JSON
 * Content-Type): the body must be canonicalizable JSON (fg_jcs rules: no
 * duplicate key, lone surrogate, invalid UTF-8, ...); *value is the parsed
 * document (the caller json_decref()s it; any JSON value, a scalar too)
 * and ref the sha256 and size of its canonical bytes.  Canonicalizing,
 * hashing and parsing take one pass of the canonicalizer plus jansson's
 * parse (fg_record_parse_bounded()).  An integer beyond 64 bits, which
 * JCS reads but jansson cannot hold, is refused (FG_ERR_INVALID).
 *
 * json not set: ref is sha256/size of the raw bytes and *value is NULL.
 *
 * ref->content_type is fg_content_type_record(ctype) in both cases.
 * Returns FG_OK, or FG_ERR_SYNTAX / FG_ERR_INVALID / FG_ERR_LIMIT with err
 * saying what and at which byte (the gateway answers 400), FG_ERR_NOMEM,
 * FG_ERR_CRYPTO.
 */
int fg_call_body(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *p,
    size_t n, int json, const char *ctype, size_t ctype_len,
    fg_blobref_t *ref, json_t **value, fg_error_t *err);


/*
 * fg_call_body() for a JSON body of which only some values are ever read
 * (a model call: the adapter's members and the bundle's body pointers,
 * which the decision input records): the body is canonicalized and hashed
 * as fg_call_body() does (same refusals, same ref), but *value is not the
 * whole document.  It is the body pruned to what pointers[0..npointers)
 * name (RFC 6901, NUL-ended), read off the canonicalizer's tape: the
 * values they name, the containers on the way to them (a container a
 * pointer ends at stays empty: the decision input records only its
 * kind), null placeholders before an array index read, and nothing else.
 * A pointer, or the part of one, that does not resolve adds nothing, so
 * every pointer resolves in *value exactly as in the whole body.  A read
 * value that is an integer beyond 64 bits is refused (FG_ERR_INVALID) as
 * fg_call_body() refuses one anywhere; one elsewhere is hashed, not read.
 */
int fg_call_body_view(fg_jcs_t *jcs, fg_sha256_t *h, const unsigned char *p,
    size_t n, const char *ctype, size_t ctype_len,
    const char *const *pointers, size_t npointers, fg_blobref_t *ref,
    json_t **value, fg_error_t *err);


/* --------------------------------------------------------------- labels */

/*
 * Parse a FoxGov-Labels header value: comma-separated key=value members
 * (split at the first '='), spaces and tabs around members, keys and
 * values ignored; empty members (",,") ignored.  Keys
 * ^[a-z0-9_.-]{1,64}$, each at most once; values 0..256 bytes of
 * printable ASCII (0x20..0x7e) without ','; at most 16 members; the
 * value at most FG_CALL_LABELS_TEXT_MAX bytes.  len 0 gives {}.
 *
 * Returns FG_OK with *out a new JSON object of strings, or FG_ERR_INVALID
 * (no '=', a bad key byte, a duplicate key, a value byte outside
 * 0x20..0x7e) / FG_ERR_LIMIT (more than 16 members, a key or value or the
 * whole value too long) with err saying which member is wrong and at
 * which byte (the gateway answers 400 rather than record something else
 * than the app sent).
 */
int fg_labels_parse(const char *v, size_t len, json_t **out,
    fg_error_t *err);


/* ----------------------------------------------------------- small checks */

/* 1 if s[0..n) is a schema `token`: 1..256 bytes of 0x21..0x7e. */
int fg_call_token_valid(const char *s, size_t n);

/* 1 if s[0..n) is a schema `tool_id`: ^[a-z0-9][a-z0-9_.-]{0,127}$. */
int fg_call_tool_id_valid(const char *s, size_t n);


/* -------------------------------------------------------- decision input */

typedef struct {
    fg_call_kind_t        kind;
    const json_t         *auth;          /* the call's AuthContext record */

    /* model calls (NULL for tool calls) */
    const char           *provider;      /* "openai", ... */
    const char           *model;         /* NULL: null */

    /* tool calls (NULL for model calls) */
    const char           *tool;
    const char           *action;        /* "read" | "write" */
    const char           *risk;          /* NULL: null */

    const char           *method;
    size_t                method_len;
    const char           *host;          /* lowercase, no port */
    size_t                host_len;
    const char           *path;          /* normalized, no query */
    size_t                path_len;

    const fg_blobref_t   *request;       /* NULL: no body read */
    const json_t         *body;          /* the parsed body, or NULL */
    const char *const    *pointers;      /* fg_policy_body_pointers() */
    size_t                npointers;

    const json_t         *labels;        /* NULL: {} */
    const json_t         *approval;      /* fg_approval_verify(), or NULL */
    const json_t         *counters;      /* fg_call_counters(), or NULL: {} */
} fg_call_input_args_t;

/*
 * The DecisionInput of docs/records.md for this call: every field
 * present, those that do not apply to kind null; tenant_id,
 * workspace_id, environment, principal, acr and capabilities copied from
 * the AuthContext; body holding one entry per pointer that resolves in
 * the parsed body (RFC 6901; a scalar as it is, an object as {}, an array
 * as []); method, host and path checked against the schema's patterns;
 * approval always null for a model call.
 * Returns a new object, or NULL with err: FG_ERR_INVALID when a field does
 * not fit the schema (a path with a control character or not UTF-8, a
 * host that is not a host name, a method that is not a token, an
 * AuthContext without the fields, an unknown provider, a bad tool id,
 * action or risk, labels/counters/approval not objects, more than 64
 * pointers or one that is not a JSON pointer), FG_ERR_LIMIT when a body
 * string read by a pointer is longer than FG_CALL_BODY_VALUE_MAX
 * characters (the call cannot be recorded: the gateway refuses it),
 * FG_ERR_NOMEM.
 */
json_t *fg_call_decision_input(const fg_call_input_args_t *a,
    fg_error_t *err);

/*
 * input.counters for the THROTTLE rules t[0..n) that hold for a call,
 * with the values requests[i] / tokens[i] read from the shared counters
 * before this call is counted (either array may be NULL: 0; values are
 * clamped to 0..2^53-1): {rule_id: {requests, tokens, window_seconds}},
 * requests (tokens) null when the rule does not limit requests (tokens).
 * NULL when out of memory.
 */
json_t *fg_call_counters(const fg_throttle_t *t, size_t n,
    const long long *requests, const long long *tokens);


/* ---------------------------------------------------------- call records */

/* outcome values (docs/records.md "ModelCallRecord") */
#define FG_OUTCOME_COMPLETED         "completed"
#define FG_OUTCOME_DENIED            "denied"
#define FG_OUTCOME_UPSTREAM_ERROR    "upstream_error"
#define FG_OUTCOME_CLIENT_ABORTED    "client_aborted"
#define FG_OUTCOME_UPSTREAM_ABORTED  "upstream_aborted"
#define FG_OUTCOME_TIMEOUT           "timeout"

typedef struct {
    fg_call_kind_t        kind;
    const char           *tenant_id;
    const char           *execution_id;
    const fg_trace_t     *trace;
    const char           *policy_decision_sha256;

    /* model calls */
    fg_provider_t         provider;
    fg_endpoint_t         endpoint;
    const char           *model;             /* NULL: null */
    int                   stream;
    const fg_usage_t     *usage;             /* NULL: all unknown */
    const char           *upstream_request_id;  /* NULL or not a token:
                                                   null */

    /* tool calls */
    const char           *tool;
    const char           *action;
    const char           *risk;              /* NULL: null */
    const char           *method;
    size_t                method_len;
    const char           *host;
    size_t                host_len;
    const char           *path;
    size_t                path_len;
    const char           *query_sha256;      /* NULL: null */
    const char           *idempotency_key;   /* NULL: null */
    const char           *input_schema_sha256;  /* NULL: null */

    const fg_blobref_t   *request;           /* NULL: null */
    const fg_blobref_t   *response;          /* NULL: null */
    int                   status;            /* 0: null */
    const char           *outcome;           /* FG_OUTCOME_* */

    const json_t         *permissions_checked;  /* array, NULL: [] */
    const char *const    *redactions;        /* sorted and deduplicated
                                                by the builder */
    size_t                nredactions;
    const json_t         *labels;            /* NULL: {} */
    const json_t         *cost;              /* fg_call_cost(), NULL: null */

    time_t                started_sec;
    long                  started_nsec;
    time_t                finished_sec;
    long                  finished_nsec;
} fg_call_record_args_t;

/*
 * Write the ModelCallRecord (kind FG_CALL_MODEL) or ToolCallRecord
 * (FG_CALL_TOOL) of a finished call, in its canonical form, into out (the
 * sink is drained): the bytes whose sha256 is its envelope_hash.  Every
 * argument is checked as the schema says (docs/records.md, "Where records
 * are validated").  response_model comes from usage (dropped to null when
 * it is not a token, like upstream_request_id).  Returns FG_OK, or an
 * error with err set (FG_ERR_INVALID for a missing argument, a bad
 * time, or an argument the schema refuses: tenant id, decision hash,
 * outcome, status outside 100..599, model, tool id, action, risk, method,
 * host, path, a query/schema hash that is not 64 lowercase hex, an
 * idempotency key that is not a token, a redaction that is not
 * ^[a-z0-9][a-z0-9_.:-]{0,127}$ or more than 64 distinct ones;
 * FG_ERR_NOMEM).
 */
int fg_call_record_write(const fg_call_record_args_t *a, fg_sink_t *out,
    fg_error_t *err);

/*
 * The same record as a jansson value (written, then read back), for the
 * CLI and the tests.  NULL with err set on error.
 */
json_t *fg_call_record(const fg_call_record_args_t *a, fg_error_t *err);

/*
 * The cost of a model call from a bundle's prices.json (parsed; may be
 * NULL) of revision: {"currency","unit":"per_million_tokens","models":
 * {name:{"input":p,"output":p[,"cache_read":p,"cache_creation":p]}}},
 * looked up by the response model, then by the requested model.
 * amount_micros = round(input_tokens * input + output_tokens * output
 * [+ cache tokens * their prices]) with prices per million tokens, so
 * one token at 1.0 per million is 1 micro-unit (computed in doubles,
 * halves rounded up; an unknown count counts 0; cache tokens without a
 * price of their own are not charged).  price_source
 * "bundle:<revision>/prices.json".  Returns a new {currency,
 * amount_micros, price_source} object, or NULL when there is no price
 * list, no price for the model, no usage (input and output unknown), a
 * malformed list, or no memory: the record then says null.
 */
json_t *fg_call_cost(const json_t *prices, const char *revision,
    const char *model, const fg_usage_t *u);


/* ---------------------------------------------------------- error bodies */

/*
 * Append the OpenAI-shaped error body of a refusal to out:
 *
 *   {"error":{"type":"foxgov_error","code":<code>,"message":<message>,
 *    "param":null,"execution_id":<id|null>,"decision_hash":<hash|null>
 *    [,"approval":<approval>]}}
 *
 * execution_id and decision_hash may be NULL (a 401 has no decision;
 * one that is not a token / not 64 lowercase hex is written null too);
 * approval (fg_call_approval_request(), may be NULL) is added for 428.
 * code and message are cut to 64 and 1024 bytes, and a byte that is not
 * valid UTF-8 is written '?'.  The text is compact JSON followed by "\n",
 * appended whole or not at all.  Returns FG_OK or FG_ERR_INVALID (code,
 * message or out NULL) / FG_ERR_NOMEM / FG_ERR_LIMIT (out's bound).
 */
int fg_call_error_body(const char *code, const char *message,
    const char *execution_id, const char *decision_hash,
    const json_t *approval, fg_buffer_t *out);

/*
 * The approval request of a 428 answer, as `foxgov approve --request`
 * reads it: {"approval_request_id","tenant_id","tool","action",
 * "input_sha256","expires_at"} (expires_at RFC 3339 UTC of expires, as
 * fg_time_format() writes it: "...T10:00:00.000Z").
 * NULL when out of memory or an argument is NULL.
 */
json_t *fg_call_approval_request(const char *approval_request_id,
    const char *tenant_id, const char *tool, const char *action,
    const char *input_sha256, time_t expires);

#endif /* FG_CALL_H */

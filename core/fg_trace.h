/*
 * fg_trace.h -- W3C Trace Context Level 1
 * (https://www.w3.org/TR/trace-context/) for the gateway: parse an
 * incoming traceparent, continue or start the trace for this call and
 * write the traceparent sent upstream, and decide whether an incoming
 * tracestate may be passed through (DESIGN.md, "Trace context
 * (INV-INT-003)").
 *
 * No allocation and no global state: every function works on the caller's
 * bytes and fixed-size buffers, and every length is bounded.
 */

#ifndef FG_TRACE_H
#define FG_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "fg_core.h"
#include "fg_record.h"

/* "00-" 32 "-" 16 "-" 2: the version 00 form, and its buffer size. */
#define FG_TRACEPARENT_LEN       55
#define FG_TRACEPARENT_SIZE      (FG_TRACEPARENT_LEN + 1)

/* The one flag Level 1 defines; the others are reserved and sent as 0. */
#define FG_TRACE_FLAG_SAMPLED    0x01

/* Flags of a trace this gateway starts: it records every call. */
#define FG_TRACE_FLAGS_NEW       FG_TRACE_FLAG_SAMPLED

/* tracestate bounds: list members, and the combined value we pass on. */
#define FG_TRACESTATE_MEMBERS    32
#define FG_TRACESTATE_MAX        512

/* A parsed traceparent; ids are lowercase hex, NUL-terminated. */
typedef struct {
    uint8_t  version;
    char     trace_id[FG_TRACE_ID_LEN + 1];
    char     parent_id[FG_SPAN_ID_LEN + 1];
    uint8_t  flags;
} fg_traceparent_t;

/*
 * Parse a traceparent header value of len bytes (v need not be
 * NUL-terminated).  Spaces and tabs around the value are ignored (they are
 * OWS of the HTTP field, not part of it).  Version 00 must be exactly
 * "00-<32 hex>-<16 hex>-<2 hex>"; a higher version 01..fe is read by that
 * prefix and, if longer, must continue with '-' (the rest is ignored).
 * Hex is lowercase only; all-zero ids and version ff are invalid.
 *
 * Returns FG_OK with out filled, or FG_ERR_SYNTAX with err (may be NULL)
 * saying why and at which byte of v; out is then unspecified.  The caller
 * treats an invalid header as absent (the spec: restart the trace).
 */
int fg_traceparent_parse(const char *v, size_t len, fg_traceparent_t *out,
    fg_error_t *err);

/*
 * Write tp as a version 00 traceparent, "00-<trace_id>-<parent_id>-<flags>",
 * into out (55 characters and a NUL), whatever version tp was parsed from.
 * Flags are written as they are.
 */
void fg_traceparent_format(const fg_traceparent_t *tp,
    char out[FG_TRACEPARENT_SIZE]);

/*
 * Make the trace context of this call and the traceparent sent upstream.
 *
 * in valid (from fg_traceparent_parse): the trace_id is kept, in's
 * parent-id becomes parent_span_id, a new span_id is made and header is
 * "00-<trace_id>-<span_id>-<flags>" with in's sampled flag (the reserved
 * flags are sent as zero, as Level 1 requires).
 *
 * in NULL (absent or invalid traceparent, the gateway is ingress): a new
 * trace_id and span_id, parent_span_id "" (null) and flags 01: the gateway
 * records every call, a definitive recording decision the spec says the
 * sampled flag SHOULD reflect.
 *
 * Returns FG_OK; FG_ERR_INVALID when in holds ids that are not lowercase
 * hex of the right length or are all zero; FG_ERR_CRYPTO when the random
 * source fails.  out and header are only meaningful on FG_OK.
 */
int fg_trace_continue(const fg_traceparent_t *in, fg_trace_t *out,
    char header[FG_TRACEPARENT_SIZE]);

/*
 * Check a tracestate header value (the combination of all tracestate
 * fields, joined with ',') against Level 1: a list of key=value members
 * separated by ',' with optional spaces and tabs around them, empty
 * members allowed; keys are simple-key (lcalpha then up to 255 of
 * [a-z0-9_*-/]) or tenant@system (tenant up to 241, system up to 14
 * characters), each key at most once; values 1..256 printable ASCII
 * characters without ',' or '=' and not ending in a space.  At most 32
 * key=value members, and at most 512 characters in all.
 *
 * Returns FG_OK (pass it through; an empty value is valid), FG_ERR_LIMIT
 * when a bound is exceeded or FG_ERR_SYNTAX when the grammar is broken:
 * the gateway then drops the header.
 */
int fg_tracestate_check(const char *v, size_t len);

#endif /* FG_TRACE_H */

/*
 * fuzz_trace.c -- libFuzzer target for the W3C Trace Context code.
 *
 * Besides "does not crash", it checks on every input:
 *   - a refused traceparent always carries a reason and an offset inside
 *     the input;
 *   - an accepted one, written back in the 00 form, parses again to the
 *     same ids and flags, and is exactly what a plain version 00 parser
 *     would accept;
 *   - continuing it keeps the trace id, makes the parent id the parent
 *     span and sends a header that parses back;
 *   - fg_tracestate_check() returns one of its three codes and refuses
 *     anything above 512 bytes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_trace.h"


static void
fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_trace: %s\n", what);
    abort();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char        *v = (const char *) data;
    fg_traceparent_t   tp, back;
    fg_trace_t         trace;
    fg_error_t         err;
    char               out[FG_TRACEPARENT_SIZE];
    char               header[FG_TRACEPARENT_SIZE];
    int                rc;

    memset(&err, 0, sizeof(err));
    rc = fg_traceparent_parse(v, size, &tp, &err);

    if (rc != FG_OK) {
        if (rc != FG_ERR_SYNTAX || err.code != FG_ERR_SYNTAX
            || err.msg[0] == '\0' || err.offset > size)
        {
            fuzz_fail("bad error report");
        }

    } else {
        if (tp.version == 0xff || strlen(tp.trace_id) != FG_TRACE_ID_LEN
            || strlen(tp.parent_id) != FG_SPAN_ID_LEN)
        {
            fuzz_fail("accepted a bad traceparent");
        }

        fg_traceparent_format(&tp, out);
        if (strlen(out) != FG_TRACEPARENT_LEN) {
            fuzz_fail("formatted header has the wrong length");
        }

        if (fg_traceparent_parse(out, FG_TRACEPARENT_LEN, &back, NULL)
            != FG_OK
            || back.version != 0
            || strcmp(back.trace_id, tp.trace_id) != 0
            || strcmp(back.parent_id, tp.parent_id) != 0
            || back.flags != tp.flags)
        {
            fuzz_fail("00 form does not parse back to the same ids");
        }

        /* a version 00 input is, untrimmed, exactly the 00 form */
        if (tp.version == 0 && memmem(v, size, out, FG_TRACEPARENT_LEN)
                               == NULL)
        {
            fuzz_fail("00 form not found in the version 00 input");
        }

        if (fg_trace_continue(&tp, &trace, header) != FG_OK
            || strcmp(trace.trace_id, tp.trace_id) != 0
            || strcmp(trace.parent_span_id, tp.parent_id) != 0
            || fg_traceparent_parse(header, strlen(header), &back, NULL)
               != FG_OK
            || strcmp(back.trace_id, tp.trace_id) != 0
            || strcmp(back.parent_id, trace.span_id) != 0
            || back.flags != (tp.flags & FG_TRACE_FLAG_SAMPLED))
        {
            fuzz_fail("continue broke the trace");
        }
    }

    rc = fg_tracestate_check(v, size);
    if (rc != FG_OK && rc != FG_ERR_SYNTAX && rc != FG_ERR_LIMIT) {
        fuzz_fail("tracestate: unexpected code");
    }
    if (size > FG_TRACESTATE_MAX && rc != FG_ERR_LIMIT) {
        fuzz_fail("tracestate above 512 bytes accepted");
    }

    return 0;
}

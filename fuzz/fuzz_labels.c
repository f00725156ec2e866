/*
 * fuzz_labels.c -- libFuzzer target for the FoxGov-Labels parser and the
 * Content-Type rules of core/fg_call.c.
 *
 * Besides "does not crash", it checks on every input:
 *   - a refused value carries its code, a reason and an offset inside the
 *     input;
 *   - an accepted one holds at most 16 labels whose keys match
 *     ^[a-z0-9_.-]{1,64}$ and whose values are 0..256 bytes of printable
 *     ASCII, and written back as "k=v,..." it parses to the same object;
 *   - the content_type recorded for the input is always one the schema
 *     accepts (at most 127 bytes of printable ASCII);
 *   - the ToolCallRecord written with those labels, that content type on
 *     its request BlobRef and the input as idempotency key (refused when
 *     it is not a token) is valid against its schema.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_call.h"
#include "fg_record.h"


static void
fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_labels: %s\n", what);
    abort();
}


static void
fuzz_check_labels(const json_t *labels)
{
    const char  *key, *v;
    json_t      *value, *back;
    fg_error_t   err;
    size_t       i, n, len;
    char        *text, *p;

    if (!json_is_object(labels)
        || json_object_size(labels) > FG_CALL_LABELS_MAX)
    {
        fuzz_fail("accepted more than 16 labels");
    }

    text = malloc(FG_CALL_LABELS_MAX * (FG_CALL_LABEL_KEY_MAX
                                        + FG_CALL_LABEL_VALUE_MAX + 2) + 1);
    if (text == NULL) {
        return;
    }
    p = text;

    json_object_foreach((json_t *) labels, key, value) {
        n = strlen(key);
        if (n == 0 || n > FG_CALL_LABEL_KEY_MAX) {
            fuzz_fail("key length out of bounds");
        }
        for (i = 0; i < n; i++) {
            if (!((key[i] >= 'a' && key[i] <= 'z')
                  || (key[i] >= '0' && key[i] <= '9')
                  || key[i] == '_' || key[i] == '.' || key[i] == '-'))
            {
                fuzz_fail("key byte outside a-z 0-9 _ . -");
            }
        }
        v = json_string_value(value);
        len = json_string_length(value);
        if (v == NULL || len > FG_CALL_LABEL_VALUE_MAX) {
            fuzz_fail("value not a string of at most 256 bytes");
        }
        for (i = 0; i < len; i++) {
            if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',') {
                fuzz_fail("value byte not printable ASCII");
            }
        }
        p += sprintf(p, "%s%s=%s", p == text ? "" : ",", key, v);
    }

    if (fg_labels_parse(text, (size_t) (p - text), &back, &err) != FG_OK) {
        fuzz_fail("written back labels do not parse");
    }
    /* values were trimmed, so they read back as they are */
    if (!json_equal(back, (json_t *) labels)) {
        fuzz_fail("written back labels parse to something else");
    }

    json_decref(back);
    free(text);
}


static fg_records_t  *fuzz_records;


static void
fuzz_record(const json_t *labels, const char *ct, const char *v, size_t n)
{
    fg_call_record_args_t   a;
    fg_schema_report_t      r;
    fg_blobref_t            req;
    fg_error_t              err;
    fg_trace_t              tr;
    json_t                 *rec;
    char                    key[FG_CALL_TOKEN_MAX + 1];

    if (fuzz_records == NULL && (fuzz_records = fg_records_new(&err)) == NULL)
    {
        abort();
    }

    if (n > FG_CALL_TOKEN_MAX) {
        n = FG_CALL_TOKEN_MAX;
    }
    memcpy(key, v, n);
    key[n] = '\0';

    memset(&tr, 0, sizeof(tr));
    memcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(tr.span_id, "00f067aa0ba902b7", 17);

    memset(&req, 0, sizeof(req));
    req.size_bytes = 2;
    strcpy(req.content_type, ct);

    memset(&a, 0, sizeof(a));
    a.kind = FG_CALL_TOOL;
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.policy_decision_sha256 =
        "df38bbc4e863b41f19c6fd3889bffdab8f95c120f62b0fedb88dc5213e77a9af";
    a.tool = "servicenow.incident";
    a.action = "write";
    a.method = "PATCH";
    a.method_len = 5;
    a.host = "servicenow.example.com";
    a.host_len = strlen(a.host);
    a.path = "/api/now/table/incident/1";
    a.path_len = strlen(a.path);
    a.idempotency_key = key[0] != '\0' ? key : NULL;
    a.request = &req;
    a.status = 200;
    a.outcome = FG_OUTCOME_COMPLETED;
    a.labels = labels;
    a.started_sec = 1764000000;
    a.finished_sec = 1764000001;

    rec = fg_call_record(&a, &err);
    if (rec != NULL && fg_record_validate(fuzz_records, rec, &r) != FG_OK) {
        fprintf(stderr, "ToolCallRecord not valid: %s\n",
                r.count ? r.line[0] : "?");
        abort();
    }
    if (rec == NULL && fg_call_token_valid(key, strlen(key))
        && labels != NULL)
    {
        fprintf(stderr, "ToolCallRecord refused: %s\n", err.msg);
        abort();
    }
    json_decref(rec);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *v = (const char *) data;
    fg_error_t   err;
    json_t      *labels;
    char         ct[FG_CONTENT_TYPE_MAX];
    size_t       i, n;
    int          rc;

    memset(&err, 0, sizeof(err));
    labels = NULL;
    rc = fg_labels_parse(v, size, &labels, &err);

    if (rc != FG_OK) {
        if ((rc != FG_ERR_INVALID && rc != FG_ERR_LIMIT) || err.code != rc
            || err.msg[0] == '\0' || err.offset > size || labels != NULL)
        {
            fuzz_fail("bad error report");
        }

    } else {
        if (size > FG_CALL_LABELS_TEXT_MAX) {
            fuzz_fail("accepted a value above 8192 bytes");
        }
        fuzz_check_labels(labels);
    }

    fg_content_type_record(v, size, ct);
    n = strlen(ct);
    if (n == 0 || n >= FG_CONTENT_TYPE_MAX || strchr(ct, '/') == NULL) {
        fuzz_fail("recorded content type out of bounds");
    }
    for (i = 0; i < n; i++) {
        if (ct[i] < 0x20 || ct[i] > 0x7e) {
            fuzz_fail("recorded content type not printable ASCII");
        }
    }
    (void) fg_content_type_is_json(v, size);

    fuzz_record(labels, ct, v, size);
    json_decref(labels);

    return 0;
}

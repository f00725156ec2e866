/*
 * fuzz_adapter.c -- libFuzzer target for the model request adapters
 * (core/fg_adapter.c: OpenAI, Azure OpenAI, Anthropic; every endpoint)
 * behind the gateway's schema gate, as ngx_http_foxgov_read_body() runs
 * them: the body read as a view (fg_call_body_view() with the adapter's
 * pointers and a bundle's), then fg_adapter_model_request() on the path.
 *
 * Input: byte 0 picks the provider (low 2 bits; 3 is an unknown
 * provider, which must be refused); then the request path up to the
 * first '\n' (hostile too: query strings, Azure deployments, trailing
 * slashes); the rest is the request body.
 *
 * Besides "does not crash or leak", on every input:
 *   - the view and the whole body (fg_call_body()) agree: what the whole
 *     reading accepts the view accepts, with the same sha256, size and
 *     content type; what the view refuses the whole reading refuses;
 *   - the sha256 is that of fg_jcs_canonicalize()'s bytes (the one-pass
 *     hash and the canonical bytes hashed apart are the same);
 *   - the adapter reads the same request (endpoint, model, stream,
 *     include_usage) from the view and from the whole body, and the
 *     decision input's body entries are the same for both;
 *   - an accepted request: the endpoint is fg_adapter_endpoint_of()'s and
 *     one the provider has, the model 1..256 printable bytes (the Azure
 *     deployment when it comes from the path); a refusal has a message;
 *   - then the gateway's decision on it (a fixed bundle whose rules read
 *     the body): the PolicyDecisionRecord written from the hostile body's
 *     decision input is valid against its schema (the gateway does not
 *     validate records on the request path; the ledger would refuse an
 *     invalid one and the evidence of the call would be lost).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg_adapter.h"
#include "fg_call.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_policy.h"
#include "fg_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the gateway reads, then pointers a bundle may name */
static const char *const  fuzz_pointers[] = {
    "/model",
    "/stream",
    "/stream_options/include_usage",
    "/messages/0/role",
    "/messages/1/content",
    "/max_tokens",
    "/tools",
    "/metadata/user_id",
    "/input/0/content/0/text",
    "/a~1b/~0c",
    "/",
    "/stream_options"
};

#define FUZZ_NPOINTERS  (sizeof(fuzz_pointers) / sizeof(fuzz_pointers[0]))

static const char  fuzz_auth_text[] =
    "{\"record_type\":\"AuthContext\",\"spec_version\":\"1.0.0\","
    "\"canon_version\":1,\"tenant_id\":\"acme\","
    "\"execution_id\":\"01973521-dc4a-7fe3-8050-bcd1356c43d2\","
    "\"trace\":{\"trace_id\":\"7c1e9a4f2b6d4e8f9a0b3c5d7e9f1a2b\","
    "\"span_id\":\"ed15afa9e687e5ee\",\"parent_span_id\":\"5e2a9c41d07b36f8\"},"
    "\"authenticated_at\":\"2025-06-03T09:31:41.003Z\","
    "\"issuer\":\"https://idp.acme.example/\","
    "\"principal\":\"svc-itsm-triage-agent@acme.example\","
    "\"workspace_id\":\"itsm-triage\",\"environment\":\"prod\","
    "\"capabilities\":[\"model:gpt-4o*\",\"model:claude-3-5-sonnet*\"],"
    "\"acr\":null,\"token_source\":\"x-api-key\","
    "\"token_sha256\":\"df38bbc4e863b41f19c6fd3889bffdab8f95c120f62b0fedb88dc"
    "5213e77a9af\",\"jti\":\"3f9d2c6e-8b1a-4e57-a0c4-71d5e2b9f048\","
    "\"kid\":\"acme-idp-2025-05\",\"alg\":\"ES256\","
    "\"issued_at\":\"2025-06-03T09:00:00Z\","
    "\"expires_at\":\"2025-06-03T10:00:00Z\"}";

/* a bundle whose rules read the body */
static const char  fuzz_policy_text[] =
    "{\"default\":\"DENY\",\"rules\":["
    "{\"id\":\"big\",\"match\":{\"kind\":\"model\","
    "\"body:/max_tokens\":{\"gt\":4096}},\"decision\":\"DENY\"},"
    "{\"id\":\"sys\",\"match\":{\"body:/messages/0/role\":\"system\"},"
    "\"decision\":\"REQUIRE_HITL\"},"
    "{\"id\":\"tools\",\"match\":{\"body:/tools\":{\"exists\":true}},"
    "\"decision\":\"ROUTE\",\"route\":\"tools-pool\"},"
    "{\"id\":\"user\",\"match\":{\"body:/metadata/user_id\":"
    "{\"regex\":\"^u-[0-9]+$\"}},\"decision\":\"REQUIRE_STEP_UP\","
    "\"acr_values\":\"urn:acme:mfa\"},"
    "{\"id\":\"models\",\"match\":{\"model\":{\"glob\":\"gpt-4o*\"}},"
    "\"decision\":\"ALLOW\"}]}";

static fg_jcs_t      *fuzz_jcs;
static fg_sha256_t   *fuzz_h;
static json_t        *fuzz_auth;
static fg_policy_t   *fuzz_policy;
static fg_records_t  *fuzz_records;


static void
fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_adapter: %s\n", what);
    abort();
}


static int
fuzz_model_ok(const char *s)
{
    size_t  i, n = strlen(s);

    if (n == 0 || n > FG_MODEL_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < '!' || (unsigned char) s[i] > '~') {
            return 0;
        }
    }
    return 1;
}


/* sha256 of the canonical bytes, apart from the one-pass reading */
static void
fuzz_check_hash(const uint8_t *p, size_t n, const fg_blobref_t *ref)
{
    unsigned char  stage[64], md[FG_SHA256_LEN];
    fg_buffer_t    canon;
    fg_error_t     err;
    fg_sink_t      sink;

    fg_buffer_init(&canon, 0);
    fg_sink_to_buffer(&sink, &canon, stage, sizeof(stage));

    if (fg_jcs_canonicalize(fuzz_jcs, p, n, &sink, &err) != FG_OK) {
        fuzz_fail("the body read is not canonicalizable");
    }
    if (fg_sha256(canon.data, canon.len, md) != FG_OK
        || memcmp(md, ref->sha256, FG_SHA256_LEN) != 0
        || canon.len != ref->size_bytes)
    {
        fuzz_fail("one-pass hash is not the canonical bytes' hash");
    }

    fg_buffer_free(&canon);
}


/* decide on input and write the PolicyDecisionRecord: it must be valid */
static void
fuzz_decide(const json_t *input)
{
    fg_policy_record_args_t   a;
    fg_schema_report_t        r;
    fg_decision_t             d;
    fg_error_t                err;
    fg_trace_t                tr;
    json_t                   *rec;

    if (fg_policy_decide(fuzz_policy, input, 1764000000, &d, &err)
        != FG_OK)
    {
        fg_decision_release(&d);
        return;
    }

    memset(&tr, 0, sizeof(tr));
    memcpy(tr.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
    memcpy(tr.span_id, "00f067aa0ba902b7", 17);

    memset(&a, 0, sizeof(a));
    a.tenant_id = "acme";
    a.execution_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ab";
    a.trace = &tr;
    a.auth_context_sha256 =
        "df38bbc4e863b41f19c6fd3889bffdab8f95c120f62b0fedb88dc5213e77a9af";
    a.bundle_revision = "rev-1";
    a.bundle_sha256 = a.auth_context_sha256;
    a.approval_request_id = "01936f4e-7c2a-7b3d-8e4f-0123456789ac";
    a.now_sec = 1764000000;

    rec = fg_policy_decision_record(&d, input, &a, &err);
    if (rec != NULL && fg_record_validate(fuzz_records, rec, &r) != FG_OK) {
        fprintf(stderr, "PolicyDecisionRecord not valid: %s\n",
                r.count ? r.line[0] : "?");
        fuzz_fail("the gateway would write an invalid record");
    }

    json_decref(rec);
    fg_decision_release(&d);
}


/* the decision input's body entries from the view and the whole body */
static void
fuzz_check_input(const fg_model_request_t *m, const char *path,
    size_t path_len, const fg_blobref_t *ref, const json_t *view,
    const json_t *whole)
{
    fg_call_input_args_t   a;
    fg_error_t             err1, err2;
    json_t                *in1, *in2;

    memset(&a, 0, sizeof(a));
    a.kind = FG_CALL_MODEL;
    a.auth = fuzz_auth;
    a.provider = fg_provider_name(m->provider);
    a.model = m->model;
    a.method = "POST";
    a.method_len = 4;
    a.host = "api.example.com";
    a.host_len = strlen(a.host);
    a.path = path;
    a.path_len = path_len;
    a.request = ref;
    a.pointers = fuzz_pointers;
    a.npointers = FUZZ_NPOINTERS;

    a.body = view;
    in1 = fg_call_decision_input(&a, &err1);
    a.body = whole;
    in2 = fg_call_decision_input(&a, &err2);

    if ((in1 == NULL) != (in2 == NULL)
        || (in1 != NULL && !json_equal(json_object_get(in1, "body"),
                                       json_object_get(in2, "body"))))
    {
        fuzz_fail("the view and the whole body give other decision inputs");
    }
    if (in1 == NULL && (err1.code != err2.code || err1.msg[0] == '\0')) {
        fuzz_fail("decision input refused differently");
    }

    if (in1 != NULL) {
        fuzz_decide(in1);
    }

    json_decref(in1);
    json_decref(in2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char    ctype[] = "application/json";
    fg_model_request_t   m1, m2;
    fg_blobref_t         vref, wref;
    fg_provider_t        provider;
    const uint8_t       *nl, *body;
    const char          *path;
    fg_error_t           err, werr;
    json_t              *view, *whole;
    size_t               path_len, body_len;
    int                  vrc, wrc, rc1, rc2, e;

    if (fuzz_jcs == NULL) {
        json_error_t  jerr;

        fuzz_jcs = fg_jcs_new(0);
        fuzz_h = fg_sha256_new();
        fuzz_auth = json_loads(fuzz_auth_text, 0, &jerr);
        fuzz_policy = fg_policy_compile(fuzz_policy_text,
                                        sizeof(fuzz_policy_text) - 1, &err);
        fuzz_records = fg_records_new(&err);
        if (fuzz_jcs == NULL || fuzz_h == NULL || fuzz_auth == NULL
            || fuzz_policy == NULL || fuzz_records == NULL)
        {
            fprintf(stderr, "%s\n", err.msg);
            fuzz_fail("setup");
        }
    }

    if (size < 1) {
        return 0;
    }

    provider = (fg_provider_t) (data[0] & 3);
    data++;
    size--;

    nl = memchr(data, '\n', size);
    path = (const char *) data;
    path_len = nl != NULL ? (size_t) (nl - data) : size;
    body = nl != NULL ? nl + 1 : data + size;
    body_len = size - (size_t) (body - data);

    /* the gateway's reading of a model call body */
    memset(&err, 0, sizeof(err));
    vrc = fg_call_body_view(fuzz_jcs, fuzz_h, body, body_len, ctype,
                            sizeof(ctype) - 1, fuzz_pointers,
                            FUZZ_NPOINTERS, &vref, &view, &err);
    if (vrc != FG_OK && (view != NULL || err.msg[0] == '\0')) {
        fuzz_fail("view: a refusal without a message");
    }

    memset(&werr, 0, sizeof(werr));
    wrc = fg_call_body(fuzz_jcs, fuzz_h, body, body_len, 1, ctype,
                       sizeof(ctype) - 1, &wref, &whole, &werr);
    if (wrc != FG_OK && (whole != NULL || werr.msg[0] == '\0')) {
        fuzz_fail("body: a refusal without a message");
    }

    if (wrc == FG_OK && vrc != FG_OK) {
        fuzz_fail("the view refuses what the whole reading accepts");
    }

    if (wrc == FG_OK) {
        if (memcmp(vref.sha256, wref.sha256, FG_SHA256_LEN) != 0
            || vref.size_bytes != wref.size_bytes
            || strcmp(vref.content_type, wref.content_type) != 0)
        {
            fuzz_fail("the view and the whole body have other BlobRefs");
        }
    }

    if (vrc == FG_OK) {
        fuzz_check_hash(body, body_len, &vref);
    }

    /* the adapter: from the view (what the gateway does), and whole */
    memset(&err, 0, sizeof(err));
    rc1 = fg_adapter_model_request(provider, path, path_len,
                                   vrc == FG_OK ? view : NULL, &m1, &err);
    if (rc1 != FG_OK && (rc1 != FG_ERR_INVALID || err.msg[0] == '\0')) {
        fuzz_fail("adapter: a refusal without a message");
    }

    e = fg_adapter_endpoint_of(provider, path, path_len);

    if (rc1 == FG_OK) {
        if ((unsigned) provider >= FG_PROVIDERS || vrc != FG_OK
            || (int) m1.endpoint != e || m1.provider != provider
            || m1.endpoint_name == NULL
            || strcmp(m1.endpoint_name, fg_endpoint_name(m1.endpoint)) != 0
            || (provider == FG_PROVIDER_ANTHROPIC)
               != (m1.endpoint == FG_ENDPOINT_MESSAGES)
            || !fuzz_model_ok(m1.model)
            || (m1.model_from_path && memmem(path, path_len, m1.model,
                                             strlen(m1.model)) == NULL)
            || (m1.include_usage && (!m1.stream || m1.endpoint
                                     != FG_ENDPOINT_CHAT_COMPLETIONS)))
        {
            fuzz_fail("adapter: accepted a bad request");
        }

        /* the request, recorded */
        if (strcmp(fg_provider_name(provider),
                   fg_provider_name(fg_provider_from_name(
                       fg_provider_name(provider)))) != 0)
        {
            fuzz_fail("provider names do not round-trip");
        }
    }

    if (wrc == FG_OK) {
        rc2 = fg_adapter_model_request(provider, path, path_len, whole, &m2,
                                       &err);
        if (rc1 != rc2
            || (rc1 == FG_OK
                && (m1.endpoint != m2.endpoint
                    || strcmp(m1.model, m2.model) != 0
                    || m1.model_from_path != m2.model_from_path
                    || m1.stream != m2.stream
                    || m1.include_usage != m2.include_usage)))
        {
            fuzz_fail("the adapter reads the view and the body differently");
        }

        if (rc1 == FG_OK) {
            fuzz_check_input(&m1, path, path_len, &wref, view, whole);
        }
    }

    json_decref(view);
    json_decref(whole);

    return 0;
}

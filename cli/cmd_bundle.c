/*
 * cmd_bundle.c -- `foxgov bundle build|sign|verify|test` and `foxgov
 * decide`: writing, signing and checking policy bundles, running a
 * bundle's own test cases, and printing the PolicyDecisionRecord a bundle
 * gives for one input.
 */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "fg_bundle.h"
#include "fg_hash.h"
#include "fg_jose.h"
#include "fg_policy.h"
#include "fg_record.h"

/* A loaded bundle and its compiled policy. */
typedef struct {
    fg_bundle_t   *bundle;
    fg_policy_t   *policy;
    fg_keyset_t   *keys;
} fg_cli_bundle_t;


static void
fg_cli_bundle_free(fg_cli_bundle_t *cb)
{
    fg_policy_free(cb->policy);
    fg_bundle_free(cb->bundle);
    fg_keyset_free(cb->keys);
}


int
fg_cli_bundle_load(const char *cmd, const char *path,
    const fg_keyset_t *keys, fg_bundle_t **bundle, fg_policy_t **policy)
{
    const fg_bundle_file_t  *file;
    fg_error_t               err;
    int                      rc;

    rc = keys != NULL ? fg_bundle_load(path, keys, NULL, bundle, &err)
                      : fg_bundle_load_unverified(path, NULL, bundle, &err);
    if (rc != FG_OK) {
        fg_cli_error(cmd, "%s: %s", path, err.msg);
        return -1;
    }

    file = fg_bundle_file(*bundle, FG_BUNDLE_POLICY);
    *policy = fg_policy_compile((const char *) file->data, file->len, &err);
    if (*policy == NULL) {
        fg_cli_error(cmd, "%s: %s: %s", path, FG_BUNDLE_POLICY, err.msg);
        return -1;
    }

    return 0;
}


/*
 * Load the bundle at path, verified against the JWKS keys_path (or, when
 * keys_path is NULL, unverified: for authoring), and compile its
 * policy.json.  Prints the reason and returns -1 on failure.
 */
static int
fg_cli_bundle_open(const char *cmd, const char *path, const char *keys_path,
    fg_cli_bundle_t *cb)
{
    fg_error_t  err;

    memset(cb, 0, sizeof(*cb));

    if (keys_path != NULL) {
        cb->keys = fg_keyset_load_file(keys_path, NULL, &err);
        if (cb->keys == NULL) {
            fg_cli_error(cmd, "%s: %s", keys_path, err.msg);
            return -1;
        }
    }

    return fg_cli_bundle_load(cmd, path, cb->keys, &cb->bundle, &cb->policy);
}


/* ------------------------------------------------------- build and sign */

static int
fg_bundle_help(void)
{
    printf("usage: foxgov bundle build DIR -o OUT.tar.gz [--key FILE] "
           "[--kid KID]\n"
           "       foxgov bundle sign BUNDLE --key FILE [--kid KID] "
           "[-o OUT.tar.gz]\n"
           "       foxgov bundle verify BUNDLE --keys JWKS\n"
           "       foxgov bundle test BUNDLE [--keys JWKS]\n"
           "\n"
           "build   packs DIR (.manifest, policy.json, prices.json, "
           "tests/) as a\n        deterministic .tar.gz after compiling "
           "its policy; with --key, signed.\n"
           "sign    writes .signatures.json (OPA's format: a JWS whose "
           "files list each\n        file's name, SHA-256 and algorithm): "
           "into a directory BUNDLE, or\n        into the archive -o "
           "(default: BUNDLE itself).\n"
           "verify  checks the signature against JWKS, the file list, the "
           "manifest and\n        the policy; prints revision, digest, kid.\n"
           "test    runs the bundle's tests/*.json cases (input, now, "
           "expected decision)\n        and prints PASS/FAIL per case.\n"
           "A BUNDLE is a directory or a .tar.gz.  Exit status: 0 ok, 1 "
           "refused or a\ntest failed, 2 usage.\n");
    return FG_EXIT_OK;
}


/* sign b with the key in key_path and put .signatures.json in it */
static int
fg_bundle_add_signature(const char *cmd, fg_bundle_t *b,
    const char *key_path, const char *kid)
{
    const fg_jwk_t  *key;
    fg_keyset_t     *set = NULL;
    fg_buffer_t      sig;
    fg_error_t       err;
    int              rc = -1;

    key = fg_cli_signing_key(cmd, key_path, kid, &set);
    fg_buffer_init(&sig, 0);

    if (key != NULL) {
        if (fg_bundle_sign(b, key, &sig, &err) != FG_OK
            || fg_bundle_set_file(b, FG_BUNDLE_SIGNATURES, sig.data,
                                  sig.len, &err) != FG_OK)
        {
            fg_cli_error(cmd, "cannot sign: %s", err.msg);
        } else {
            rc = 0;
        }
    }

    fg_buffer_free(&sig);
    fg_keyset_free(set);

    return rc;
}


static int
fg_bundle_write(const char *cmd, fg_cli_bundle_t *cb, const char *out)
{
    fg_error_t  err;

    if (fg_bundle_write_tar_gz(cb->bundle, out, &err) != FG_OK) {
        fg_cli_error(cmd, "%s: %s", out, err.msg);
        return FG_EXIT_USAGE;
    }

    printf("%s revision=%s sha256=%s files=%zu rules=%zu\n", out,
           fg_bundle_revision(cb->bundle), fg_bundle_sha256(cb->bundle),
           fg_bundle_file_count(cb->bundle),
           fg_policy_rule_count(cb->policy));

    return FG_EXIT_OK;
}


static int
fg_is_dir(const char *path)
{
    struct stat  st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}


static int
fg_bundle_build_or_sign(int argc, char **argv, int sign)
{
    static const struct option  opts[] = {
        { "key",  required_argument, NULL, 'K' },
        { "kid",  required_argument, NULL, 'k' },
        { "out",  required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 }
    };
    const char       *cmd = sign ? "bundle sign" : "bundle build";
    const char       *key = NULL, *kid = NULL, *out = NULL, *in;
    const fg_bundle_file_t  *sigf;
    fg_cli_bundle_t   cb;
    char              path[4096];
    FILE             *f;
    int               c, rc = FG_EXIT_REFUSED;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'K': key = optarg; break;
        case 'k': kid = optarg; break;
        case 'o': out = optarg; break;
        default:  return FG_EXIT_USAGE;
        }
    }

    if (optind != argc - 1 || (sign && key == NULL)
        || (!sign && out == NULL))
    {
        fg_cli_error(cmd, sign ? "expected BUNDLE and --key"
                               : "expected DIR and -o OUT.tar.gz");
        return FG_EXIT_USAGE;
    }

    in = argv[optind];

    if (fg_cli_bundle_open(cmd, in, NULL, &cb) != 0) {
        fg_cli_bundle_free(&cb);
        return FG_EXIT_REFUSED;
    }

    if (key != NULL && fg_bundle_add_signature(cmd, cb.bundle, key, kid)
                       != 0)
    {
        fg_cli_bundle_free(&cb);
        return FG_EXIT_USAGE;
    }

    if (sign && out == NULL && fg_is_dir(in)) {
        /* a directory bundle gets its .signatures.json beside the files */
        sigf = fg_bundle_file(cb.bundle, FG_BUNDLE_SIGNATURES);
        snprintf(path, sizeof(path), "%s/%s", in, FG_BUNDLE_SIGNATURES);
        f = fopen(path, "wb");
        if (f == NULL || fwrite(sigf->data, 1, sigf->len, f) != sigf->len
            || fclose(f) != 0)
        {
            fg_cli_error(cmd, "%s: cannot write", path);
            rc = FG_EXIT_USAGE;
        } else {
            printf("%s revision=%s sha256=%s\n", path,
                   fg_bundle_revision(cb.bundle), fg_bundle_sha256(cb.bundle));
            rc = FG_EXIT_OK;
        }

    } else {
        rc = fg_bundle_write(cmd, &cb, out ? out : in);
    }

    fg_cli_bundle_free(&cb);

    return rc;
}


/* -------------------------------------------------------------- verify */

/* parse "BUNDLE [--keys JWKS]": 0 with *keys set (NULL if absent), or -1 */
static int
fg_bundle_keys_arg(int argc, char **argv, const char **keys)
{
    static const struct option  opts[] = {
        { "keys", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    *keys = NULL;
    optind = 1;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'k') {
            return -1;
        }
        *keys = optarg;
    }

    return (optind == argc - 1) ? 0 : -1;
}


static int
fg_bundle_verify_cmd(int argc, char **argv)
{
    const char       *keys;
    fg_cli_bundle_t   cb;

    if (fg_bundle_keys_arg(argc, argv, &keys) != 0 || keys == NULL) {
        fg_cli_error("bundle verify", "expected BUNDLE --keys JWKS");
        return FG_EXIT_USAGE;
    }

    if (fg_cli_bundle_open("bundle verify", argv[optind], keys, &cb) != 0) {
        fg_cli_bundle_free(&cb);
        return FG_EXIT_REFUSED;
    }

    printf("ok: %s revision=%s sha256=%s kid=%s files=%zu rules=%zu\n",
           argv[optind], fg_bundle_revision(cb.bundle),
           fg_bundle_sha256(cb.bundle), fg_bundle_kid(cb.bundle),
           fg_bundle_file_count(cb.bundle),
           fg_policy_rule_count(cb.policy));

    fg_cli_bundle_free(&cb);

    return FG_EXIT_OK;
}


/* ---------------------------------------------------------------- test */

/* compare expected rule ids (a JSON array) with the decision's */
static int
fg_rule_ids_equal(const json_t *want, const fg_decision_t *d)
{
    size_t  i;

    if (json_array_size(want) != d->nrule_ids) {
        return 0;
    }

    for (i = 0; i < d->nrule_ids; i++) {
        const char *w = json_string_value(json_array_get(want, i));
        if (w == NULL || strcmp(w, d->rule_ids[i]) != 0) {
            return 0;
        }
    }

    return 1;
}


/* run one case; returns 1 passed, 0 failed (with the reason printed) */
static int
fg_bundle_test_case(const fg_policy_t *policy, const char *file, size_t i,
    const json_t *tc)
{
    const char    *name, *now_s, *want, *route;
    const json_t  *expect, *ids;
    fg_decision_t  d;
    fg_error_t     err;
    time_t         now;
    long           nsec;
    int            ok;

    name = json_string_value(json_object_get(tc, "name"));
    now_s = json_string_value(json_object_get(tc, "now"));
    expect = json_object_get(tc, "expect");
    want = json_string_value(json_object_get(expect, "decision"));

    if (name == NULL || now_s == NULL || want == NULL
        || !json_is_object(json_object_get(tc, "input"))
        || !fg_time_parse(now_s, strlen(now_s), &now, &nsec))
    {
        printf("FAIL %s[%zu]: a case needs name, now (RFC 3339 UTC), input "
               "and expect.decision\n", file, i);
        return 0;
    }

    if (fg_policy_decide(policy, json_object_get(tc, "input"), now, &d,
                         &err) != FG_OK)
    {
        printf("FAIL %s: %s: decide failed: %s\n", file, name, err.msg);
        return 0;
    }

    ids = json_object_get(expect, "rule_ids");
    route = json_string_value(json_object_get(expect, "route"));

    ok = strcmp(want, fg_decision_name(d.decision)) == 0
         && (ids == NULL || fg_rule_ids_equal(ids, &d))
         && (route == NULL || (d.route && strcmp(route, d.route) == 0));

    if (ok) {
        printf("PASS %s: %s\n", file, name);
    } else {
        printf("FAIL %s: %s: expected %s, got %s (%s)\n", file, name, want,
               fg_decision_name(d.decision), d.justification);
    }

    fg_decision_release(&d);

    return ok;
}


static int
fg_bundle_test_cmd(int argc, char **argv)
{
    const fg_bundle_file_t  *f;
    const char              *keys;
    fg_cli_bundle_t          cb;
    json_error_t             jerr;
    json_t                  *doc, *cases;
    size_t                   i, j, passed = 0, failed = 0, n;

    if (fg_bundle_keys_arg(argc, argv, &keys) != 0) {
        fg_cli_error("bundle test", "expected BUNDLE [--keys JWKS]");
        return FG_EXIT_USAGE;
    }

    if (fg_cli_bundle_open("bundle test", argv[optind], keys, &cb) != 0) {
        fg_cli_bundle_free(&cb);
        return FG_EXIT_REFUSED;
    }

    for (i = 0; i < fg_bundle_file_count(cb.bundle); i++) {
        f = fg_bundle_file_at(cb.bundle, i);
        n = strlen(f->name);
        if (strncmp(f->name, "tests/", 6) != 0 || n < 11
            || strcmp(f->name + n - 5, ".json") != 0)
        {
            continue;
        }

        doc = json_loadb((const char *) f->data, f->len,
                         JSON_REJECT_DUPLICATES, &jerr);
        cases = json_object_get(doc, "cases");
        if (!json_is_array(cases)) {
            printf("FAIL %s: not {\"cases\": [...]}%s%s\n", f->name,
                   doc ? "" : ": ", doc ? "" : jerr.text);
            failed++;
            json_decref(doc);
            continue;
        }

        for (j = 0; j < json_array_size(cases); j++) {
            if (fg_bundle_test_case(cb.policy, f->name, j,
                                    json_array_get(cases, j)))
            {
                passed++;
            } else {
                failed++;
            }
        }

        json_decref(doc);
    }

    printf("%zu passed, %zu failed (revision %s)\n", passed, failed,
           fg_bundle_revision(cb.bundle));

    fg_cli_bundle_free(&cb);

    return (failed == 0 && passed > 0) ? FG_EXIT_OK : FG_EXIT_REFUSED;
}


int
fg_cmd_bundle(int argc, char **argv)
{
    if (argc < 2) {
        fg_cli_error("bundle", "expected build, sign, verify or test (try "
                     "foxgov bundle --help)");
        return FG_EXIT_USAGE;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        return fg_bundle_help();
    }

    if (fg_cli_wants_help(argc, argv)) {
        return fg_bundle_help();
    }

    if (strcmp(argv[1], "build") == 0) {
        return fg_bundle_build_or_sign(argc - 1, argv + 1, 0);
    }
    if (strcmp(argv[1], "sign") == 0) {
        return fg_bundle_build_or_sign(argc - 1, argv + 1, 1);
    }
    if (strcmp(argv[1], "verify") == 0) {
        return fg_bundle_verify_cmd(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "test") == 0) {
        return fg_bundle_test_cmd(argc - 1, argv + 1);
    }

    fg_cli_error("bundle", "unknown subcommand \"%s\" (build, sign, verify,"
                 " test)", argv[1]);

    return FG_EXIT_USAGE;
}


/* -------------------------------------------------------------- decide */

/*
 * The ids of a decision record made by `foxgov decide` are derived from
 * the input and the time, not drawn at random, so the same input, bundle
 * and time print the same record, byte for byte.
 */
static int
fg_decide_ids(const json_t *input, time_t now, char *exec_id,
    fg_trace_t *trace)
{
    unsigned char  md[FG_SHA256_LEN];
    char           hex[FG_SHA256_HEX_LEN + 1];
    fg_sha256_t   *h;
    fg_error_t     err;
    json_t        *seed;
    int            rc;

    h = fg_sha256_new();
    seed = json_pack("{s:O, s:I}", "input", input, "now", (json_int_t) now);

    rc = (h && seed) ? fg_envelope_hash(h, seed, md, &err) : FG_ERR_NOMEM;

    json_decref(seed);
    fg_sha256_free(h);

    if (rc != FG_OK) {
        return rc;
    }

    md[0] |= 1;                 /* never all zero */
    md[16] |= 1;
    fg_hex_sha256(md, hex);

    /* UUIDv7 layout: 48-bit ms time, version 7, variant 10, hash bits */
    {
        char  t[13];

        snprintf(t, sizeof(t), "%012llx",
                 (unsigned long long) now * 1000 & 0xffffffffffffULL);
        snprintf(exec_id, FG_UUID_LEN + 1, "%.8s-%.4s-7%.3s-%c%.3s-%.12s",
                 t, t + 8, hex, "89ab"[md[2] & 3], hex + 3, hex + 6);
    }

    snprintf(trace->trace_id, sizeof(trace->trace_id), "%.32s", hex + 18);
    snprintf(trace->span_id, sizeof(trace->span_id), "%.16s", hex + 32);
    trace->parent_span_id[0] = '\0';

    return FG_OK;
}


int
fg_cmd_decide(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "bundle", required_argument, NULL, 'b' },
        { "keys",   required_argument, NULL, 'k' },
        { "input",  required_argument, NULL, 'i' },
        { "now",    required_argument, NULL, 'n' },
        { "auth-context-sha256", required_argument, NULL, 'a' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char               *bundle = NULL, *keys = NULL, *inpath = NULL;
    const char               *now_s = NULL;
    const char               *auth = "0000000000000000000000000000000000000"
                                     "000000000000000000000000000";
    fg_policy_record_args_t   args;
    fg_schema_report_t        report;
    fg_cli_bundle_t           cb;
    fg_decision_t             d;
    fg_records_t             *records = NULL;
    fg_trace_t                trace;
    fg_buffer_t               in;
    fg_error_t                err;
    fg_jcs_t                 *jcs;
    json_t                   *input = NULL, *rec = NULL;
    char                      exec_id[FG_UUID_LEN + 1];
    time_t                    now = time(NULL);
    long                      nsec = 0;
    unsigned char             stage[FG_SINK_STAGE];
    fg_buffer_t               out;
    fg_sink_t                 sink;
    int                       c, rc = FG_EXIT_REFUSED;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bundle = optarg; break;
        case 'k': keys = optarg;   break;
        case 'i': inpath = optarg; break;
        case 'n': now_s = optarg;  break;
        case 'a': auth = optarg;   break;
        case 'h':
            printf("usage: foxgov decide --bundle BUNDLE [--keys JWKS] "
                   "--input INPUT.json\n"
                   "           [--now 2026-11-22T10:00:00Z] "
                   "[--auth-context-sha256 HEX]\n\n"
                   "Decides the decision input INPUT.json (the `input` of a "
                   "PolicyDecisionRecord,\ndocs/records.md) with the bundle "
                   "and prints the PolicyDecisionRecord in\ncanonical form."
                   "  With --keys the bundle's signature is verified; "
                   "without,\nit is read as an unsigned draft.  Ids are "
                   "derived from the input and the\ntime, so the same input,"
                   " bundle and time print the same bytes.\n"
                   "Exit status: 0 printed, 1 refused, 2 usage.\n");
            return FG_EXIT_OK;
        default:
            return FG_EXIT_USAGE;
        }
    }

    if (bundle == NULL || inpath == NULL || optind != argc) {
        fg_cli_error("decide", "expected --bundle and --input (try foxgov "
                     "decide --help)");
        return FG_EXIT_USAGE;
    }

    if (now_s != NULL && !fg_time_parse(now_s, strlen(now_s), &now, &nsec)) {
        fg_cli_error("decide", "--now \"%s\": expected RFC 3339 UTC, e.g. "
                     "2026-11-22T10:00:00Z", now_s);
        return FG_EXIT_USAGE;
    }

    if (fg_cli_read_input("decide", inpath, &in) != FG_OK) {
        return FG_EXIT_USAGE;
    }

    jcs = fg_jcs_new(0);
    input = jcs ? fg_record_parse(jcs, in.data, in.len, &err) : NULL;
    fg_jcs_free(jcs);
    fg_buffer_free(&in);

    if (input == NULL) {
        fg_cli_error("decide", "%s: %s", fg_cli_input_name(inpath), err.msg);
        return FG_EXIT_REFUSED;
    }

    if (fg_cli_bundle_open("decide", bundle, keys, &cb) != 0) {
        goto done;
    }

    records = fg_records_new(&err);
    if (records == NULL) {
        fg_cli_error("decide", "cannot load the schemas: %s", err.msg);
        goto done;
    }

    if (fg_policy_decide(cb.policy, input, now, &d, &err) != FG_OK) {
        /* decide failed closed: the DENY it left is still recorded */
        fprintf(stderr, "foxgov decide: %s (recorded as DENY)\n", err.msg);
    }

    if (fg_decide_ids(input, now, exec_id, &trace) != FG_OK) {
        fg_cli_error("decide", "out of memory");
        goto done;
    }

    memset(&args, 0, sizeof(args));
    args.tenant_id = json_string_value(json_object_get(input, "tenant_id"));
    args.execution_id = exec_id;
    args.trace = &trace;
    args.auth_context_sha256 = auth;
    args.bundle_revision = fg_bundle_revision(cb.bundle);
    args.bundle_sha256 = fg_bundle_sha256(cb.bundle);
    args.permissions_checked = NULL;
    args.approval_request_id = (d.decision == FG_DECISION_REQUIRE_HITL)
                               ? exec_id : NULL;
    args.now_sec = now;
    args.now_nsec = nsec;

    rec = fg_policy_decision_record(&d, input, &args, &err);
    fg_decision_release(&d);

    if (rec == NULL) {
        fg_cli_error("decide", "%s: %s", fg_cli_input_name(inpath), err.msg);
        goto done;
    }

    if (fg_record_validate(records, rec, &report) != FG_OK)
    {
        fg_cli_error("decide", "%s: the record is not valid: %s",
                     fg_cli_input_name(inpath), report.line[0]);
        goto done;
    }

    /* print the canonical bytes, as they are hashed */
    fg_buffer_init(&out, 0);
    fg_sink_to_buffer(&sink, &out, stage, sizeof(stage));
    if (fg_jcs_canonicalize_json(rec, 0, &sink, &err) == FG_OK) {
        printf("%.*s\n", (int) out.len, (char *) out.data);
        rc = FG_EXIT_OK;
    } else {
        fg_cli_error("decide", "%s", err.msg);
    }
    fg_buffer_free(&out);

done:

    fg_records_free(records);
    json_decref(rec);
    json_decref(input);
    fg_cli_bundle_free(&cb);

    return rc;
}

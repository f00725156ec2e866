/*
 * cmd_token.c -- `foxgov keygen`, `foxgov token mint` and `foxgov approve`:
 * signing keys, caller tokens (the AuthContext JWT an app presents as its
 * API key) and approval tokens (the FoxGov-Approval that releases a call
 * held with 428).
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "fg_jose.h"
#include "fg_record.h"

#define FG_TOKEN_MAX_CAPS   256
#define FG_TOKEN_MAX_TTL    (400L * 86400)


long
fg_cli_parse_duration(const char *s)
{
    char  *end;
    long   v, unit = 1;

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || end == s || v < 0) {
        return -1;
    }

    switch (*end) {
    case '\0': case 's': unit = 1;     break;
    case 'm':            unit = 60;    break;
    case 'h':            unit = 3600;  break;
    case 'd':            unit = 86400; break;
    default:             return -1;
    }

    if (*end != '\0' && end[1] != '\0') {
        return -1;
    }

    if (v > FG_TOKEN_MAX_TTL / unit) {
        return -1;
    }

    return v * unit;
}


static int
fg_cli_print_token(const char *cmd, const fg_jwk_t *key, const char *typ,
    json_t *claims)
{
    fg_buffer_t   out;
    fg_error_t    err;
    json_t       *header;
    int           rc;

    fg_buffer_init(&out, 0);
    header = json_pack("{s:s}", "typ", typ);

    rc = fg_jws_sign(key, header, claims, &out, &err);

    json_decref(header);

    if (rc != FG_OK) {
        fg_cli_error(cmd, "cannot sign: %s", err.msg);
        fg_buffer_free(&out);
        return FG_EXIT_USAGE;
    }

    printf("%.*s\n", (int) out.len, (char *) out.data);
    fg_buffer_free(&out);

    return FG_EXIT_OK;
}


/* ---------------------------------------------------------------- keygen */

static int
fg_keygen_write(const char *cmd, const char *path, const void *p, size_t n,
    mode_t mode)
{
    FILE  *f;
    int    fd;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        fg_cli_error(cmd, "%s: %s", path, strerror(errno));
        return -1;
    }

    f = fdopen(fd, "w");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fg_cli_error(cmd, "%s: write failed", path);
        return -1;
    }

    return 0;
}


int
fg_cmd_keygen(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "alg",  required_argument, NULL, 'a' },
        { "kid",  required_argument, NULL, 'k' },
        { "out",  required_argument, NULL, 'o' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char     *alg_name = "EdDSA", *kid = NULL, *dir = ".";
    char            path[4096];
    char           *text;
    fg_jws_alg_t    alg;
    fg_keyset_t    *set;
    fg_buffer_t     pem;
    fg_error_t      err;
    json_t         *jwks;
    int             c, rc = FG_EXIT_USAGE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': alg_name = optarg; break;
        case 'k': kid = optarg;      break;
        case 'o': dir = optarg;      break;
        case 'h':
            printf("usage: foxgov keygen --kid KID [--alg EdDSA|ES256|RS256]"
                   " [--out DIR]\n\n"
                   "Makes a signing key pair: DIR/KID.pem (the private key,"
                   " PKCS#8, mode 0600)\nand DIR/KID.jwks.json (the public "
                   "key as a JWKS, for foxgov_auth_keys,\nbundle and "
                   "approval verification).  Existing files are never "
                   "overwritten.\nExit status: 0 written, 2 usage or I/O "
                   "error.\n");
            return FG_EXIT_OK;
        default:
            return FG_EXIT_USAGE;
        }
    }

    alg = fg_jws_alg_from_name(alg_name);

    if (kid == NULL || optind != argc
        || (alg != FG_JWS_EDDSA && alg != FG_JWS_ES256
            && alg != FG_JWS_RS256))
    {
        fg_cli_error("keygen", "expected --kid KID and --alg EdDSA, ES256 "
                     "or RS256 (try foxgov keygen --help)");
        return FG_EXIT_USAGE;
    }

    if (strspn(kid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-") != strlen(kid)
        || kid[0] == '.' || strlen(kid) > FG_JWK_KID_MAX)
    {
        fg_cli_error("keygen", "kid \"%s\": use letters, digits, '_', '.', "
                     "'-' (not first), at most %d", kid, FG_JWK_KID_MAX);
        return FG_EXIT_USAGE;
    }

    fg_buffer_init(&pem, 0);
    set = fg_keyset_generate(alg, kid, &pem, &err);
    if (set == NULL) {
        fg_cli_error("keygen", "%s", err.msg);
        return FG_EXIT_USAGE;
    }

    jwks = json_pack("{s:[o]}", "keys",
                     fg_jwk_public_json(fg_keyset_get(set, 0)));
    text = jwks ? json_dumps(jwks, JSON_INDENT(2)) : NULL;

    snprintf(path, sizeof(path), "%s/%s.pem", dir, kid);
    if (text != NULL
        && fg_keygen_write("keygen", path, pem.data, pem.len, 0600) == 0)
    {
        snprintf(path, sizeof(path), "%s/%s.jwks.json", dir, kid);
        if (fg_keygen_write("keygen", path, text, strlen(text), 0644) == 0) {
            printf("%s/%s.pem\n%s/%s.jwks.json\n", dir, kid, dir, kid);
            rc = FG_EXIT_OK;
        }
    }

    fg_json_free(text);
    json_decref(jwks);
    OPENSSL_cleanse(pem.data, pem.len);
    fg_buffer_free(&pem);
    fg_keyset_free(set);

    return rc;
}


/* ------------------------------------------------------------ token mint */

static void
fg_token_help(void)
{
    printf("usage: foxgov token mint --key FILE [--kid KID] --tenant T "
           "--sub PRINCIPAL\n"
           "           [--cap CAPABILITY]... [--ttl 1h] [--iss ISSUER]\n"
           "           [--workspace W] [--environment E] [--acr ACR]\n"
           "\n"
           "Prints a caller token (a JWT signed with the private key in "
           "FILE, PEM or\nJWKS) that an app presents to the gateway as its "
           "API key.  Claims: iss, sub,\ntenant_id, workspace_id, "
           "environment, capabilities (globs such as\nmodel:gpt-4o* or "
           "tool:servicenow.incident:write), acr, iat, exp, jti.\n"
           "--ttl is seconds or 30m, 8h, 7d (default 1h).\n"
           "Exit status: 0 printed, 2 usage or key error.\n");
}


static int
fg_token_mint(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "key",         required_argument, NULL, 'K' },
        { "kid",         required_argument, NULL, 'k' },
        { "tenant",      required_argument, NULL, 't' },
        { "sub",         required_argument, NULL, 's' },
        { "cap",         required_argument, NULL, 'c' },
        { "ttl",         required_argument, NULL, 'l' },
        { "iss",         required_argument, NULL, 'i' },
        { "workspace",   required_argument, NULL, 'w' },
        { "environment", required_argument, NULL, 'e' },
        { "acr",         required_argument, NULL, 'a' },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char       *keyfile = NULL, *kid = NULL, *tenant = NULL;
    const char       *sub = NULL, *iss = "foxgov", *ws = "default";
    const char       *env = "dev", *acr = NULL;
    const fg_jwk_t   *key;
    fg_keyset_t      *set = NULL;
    json_t           *claims, *caps;
    char              jti[FG_UUID_LEN + 1];
    time_t            now = time(NULL);
    long              ttl = 3600;
    int               c, rc;

    caps = json_array();
    if (caps == NULL) {
        return FG_EXIT_USAGE;
    }

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'K': keyfile = optarg; break;
        case 'k': kid = optarg;     break;
        case 't': tenant = optarg;  break;
        case 's': sub = optarg;     break;
        case 'i': iss = optarg;     break;
        case 'w': ws = optarg;      break;
        case 'e': env = optarg;     break;
        case 'a': acr = optarg;     break;
        case 'c':
            if (json_array_size(caps) >= FG_TOKEN_MAX_CAPS
                || (strncmp(optarg, "model:", 6) != 0
                    && strncmp(optarg, "tool:", 5) != 0))
            {
                fg_cli_error("token mint", "capability \"%s\": expected "
                             "model:<glob> or tool:<glob> (at most %d)",
                             optarg, FG_TOKEN_MAX_CAPS);
                json_decref(caps);
                return FG_EXIT_USAGE;
            }
            json_array_append_new(caps, json_string(optarg));
            break;
        case 'l':
            ttl = fg_cli_parse_duration(optarg);
            if (ttl <= 0) {
                fg_cli_error("token mint", "--ttl \"%s\": expected seconds "
                             "or a number with s, m, h or d", optarg);
                json_decref(caps);
                return FG_EXIT_USAGE;
            }
            break;
        case 'h':
            fg_token_help();
            json_decref(caps);
            return FG_EXIT_OK;
        default:
            json_decref(caps);
            return FG_EXIT_USAGE;
        }
    }

    if (keyfile == NULL || tenant == NULL || sub == NULL || optind != argc) {
        fg_cli_error("token mint", "expected --key, --tenant and --sub "
                     "(try foxgov token mint --help)");
        json_decref(caps);
        return FG_EXIT_USAGE;
    }

    if (!fg_tenant_id_valid(tenant, strlen(tenant))) {
        fg_cli_error("token mint", "tenant \"%s\" does not match "
                     "^[a-z0-9][a-z0-9_-]{0,62}$", tenant);
        json_decref(caps);
        return FG_EXIT_USAGE;
    }

    key = fg_cli_signing_key("token mint", keyfile, kid, &set);
    if (key == NULL || fg_uuidv7((uint64_t) now * 1000, jti) != FG_OK) {
        fg_keyset_free(set);
        json_decref(caps);
        return FG_EXIT_USAGE;
    }

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s}",
                       "iss", iss, "sub", sub, "tenant_id", tenant,
                       "workspace_id", ws, "environment", env,
                       "capabilities", caps,
                       "iat", (json_int_t) now,
                       "exp", (json_int_t) (now + ttl),
                       "jti", jti);
    if (claims != NULL && acr != NULL) {
        json_object_set_new(claims, "acr", json_string(acr));
    }

    rc = claims ? fg_cli_print_token("token mint", key, "JWT", claims)
                : FG_EXIT_USAGE;

    json_decref(claims);
    fg_keyset_free(set);

    return rc;
}


int
fg_cmd_token(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "mint") == 0) {
        return fg_token_mint(argc - 1, argv + 1);
    }

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0
                      || strcmp(argv[1], "-h") == 0))
    {
        fg_token_help();
        return FG_EXIT_OK;
    }

    fg_cli_error("token", "expected: foxgov token mint ... "
                 "(try foxgov token mint --help)");

    return FG_EXIT_USAGE;
}


/* --------------------------------------------------------------- approve */

/*
 * The approval request a 428 answer carries, as the gateway writes it:
 * {"approval_request_id", "tenant_id", "tool", "action", "input_sha256",
 *  "expires_at"}.  The approval token binds exactly these.
 */
static int
fg_approve_check_request(json_t *req, const char **fields, size_t n)
{
    const char  *v;
    size_t       i;

    for (i = 0; i < n; i++) {
        if (!json_is_string(json_object_get(req, fields[i]))) {
            fg_cli_error("approve", "the request has no \"%s\" string",
                         fields[i]);
            return -1;
        }
    }

    v = json_string_value(json_object_get(req, "tenant_id"));
    if (!fg_tenant_id_valid(v, strlen(v))) {
        fg_cli_error("approve", "the request's tenant_id is not valid");
        return -1;
    }

    v = json_string_value(json_object_get(req, "input_sha256"));
    if (!fg_sha256_hex_valid(v, strlen(v))) {
        fg_cli_error("approve", "the request's input_sha256 is not 64 "
                     "lowercase hex digits");
        return -1;
    }

    return 0;
}


int
fg_cmd_approve(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "key",      required_argument, NULL, 'K' },
        { "kid",      required_argument, NULL, 'k' },
        { "request",  required_argument, NULL, 'r' },
        { "approver", required_argument, NULL, 'a' },
        { "ttl",      required_argument, NULL, 'l' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    static const char  *fields[] = {
        "approval_request_id", "tenant_id", "tool", "action", "input_sha256"
    };
    const char       *keyfile = NULL, *kid = NULL, *reqfile = NULL;
    const char       *approver = NULL;
    const fg_jwk_t   *key;
    fg_keyset_t      *set = NULL;
    fg_buffer_t       in;
    fg_error_t        err;
    fg_jcs_t         *jcs;
    json_t           *req, *claims;
    char              jti[FG_UUID_LEN + 1];
    time_t            now = time(NULL);
    long              ttl = 900;
    size_t            i;
    int               c, rc = FG_EXIT_USAGE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'K': keyfile = optarg;  break;
        case 'k': kid = optarg;      break;
        case 'r': reqfile = optarg;  break;
        case 'a': approver = optarg; break;
        case 'l':
            ttl = fg_cli_parse_duration(optarg);
            if (ttl <= 0) {
                fg_cli_error("approve", "--ttl \"%s\": expected seconds or "
                             "a number with s, m, h or d", optarg);
                return FG_EXIT_USAGE;
            }
            break;
        case 'h':
            printf("usage: foxgov approve --key FILE [--kid KID] --request "
                   "REQ.json\n"
                   "           [--approver NAME] [--ttl 15m]\n\n"
                   "Prints an approval token (FoxGov-Approval) for the "
                   "approval request REQ.json\n(the `approval` object of a "
                   "428 answer): a JWS signed with the approver's key,\n"
                   "bound to its tenant_id, tool, action and input_sha256, "
                   "with a jti for single\nuse, valid for --ttl (default "
                   "15m).\nExit status: 0 printed, 1 bad request, 2 usage "
                   "or key error.\n");
            return FG_EXIT_OK;
        default:
            return FG_EXIT_USAGE;
        }
    }

    if (keyfile == NULL || reqfile == NULL || optind != argc) {
        fg_cli_error("approve", "expected --key and --request (try foxgov "
                     "approve --help)");
        return FG_EXIT_USAGE;
    }

    if (fg_cli_read_input("approve", reqfile, &in) != FG_OK) {
        return FG_EXIT_USAGE;
    }

    jcs = fg_jcs_new(0);
    req = jcs ? fg_record_parse(jcs, in.data, in.len, &err) : NULL;
    fg_jcs_free(jcs);
    fg_buffer_free(&in);

    if (req == NULL) {
        fg_cli_error("approve", "%s: %s", fg_cli_input_name(reqfile),
                     jcs ? err.msg : "out of memory");
        return FG_EXIT_REFUSED;
    }

    if (fg_approve_check_request(req, fields, 5) != 0) {
        json_decref(req);
        return FG_EXIT_REFUSED;
    }

    key = fg_cli_signing_key("approve", keyfile, kid, &set);

    if (key != NULL && fg_uuidv7((uint64_t) now * 1000, jti) == FG_OK) {
        claims = json_pack("{s:s, s:I, s:I, s:s}",
                           "sub", approver ? approver : fg_jwk_kid(key),
                           "iat", (json_int_t) now,
                           "exp", (json_int_t) (now + ttl),
                           "jti", jti);
        for (i = 0; claims != NULL && i < 5; i++) {
            json_object_set(claims, fields[i],
                            json_object_get(req, fields[i]));
        }

        rc = claims ? fg_cli_print_token("approve", key,
                                         "foxgov-approval+jwt", claims)
                    : FG_EXIT_USAGE;
        json_decref(claims);
    }

    fg_keyset_free(set);
    json_decref(req);

    return rc;
}

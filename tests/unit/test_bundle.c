/*
 * test_bundle.c -- policy bundles: bundles built in a temp dir and signed
 * with EdDSA, ES256 and RS256 keys load from the directory and as a
 * .tar.gz; every refusal (signature missing, tampered, by another key,
 * doubled, HS256; files unlisted, missing, with another algorithm; unsafe
 * archive entries; limits; manifest; not gzip; truncated) names the file
 * and the reason; fg_bundle_write_tar_gz is deterministic; the
 * .signatures.json we write has exactly OPA's shape.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fg_bundle.h"
#include "test_util.h"

#define POLICY   "{\"default\":\"DENY\",\"rules\":[]}"
#define PRICES   "{\"gpt-4o\":{\"input\":2.5,\"output\":10}}"
#define MANIFEST "{\"revision\":\"r-2026.11.22\",\"roots\":[\"\"]}"

#define HS_JWK \
    "{\"kty\":\"oct\",\"kid\":\"hs1\"," \
    "\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"}"

typedef struct {
    fg_keyset_t  *ed, *es, *rs;     /* private, one key each */
    fg_keyset_t  *other;            /* EdDSA, kid "ed1" too, not trusted */
    fg_keyset_t  *hs;               /* an oct key */
    fg_keyset_t  *pub;              /* the public keys of ed, es, rs + hs */
} keys_t;

static keys_t  K;

typedef struct {
    char  dir[256];
} fixture_t;


/* ------------------------------------------------------------ helpers */

static const fg_jwk_t *
key0(const fg_keyset_t *set)
{
    return fg_keyset_get(set, 0);
}


static void
write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char   path[1024], *slash;
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    for (slash = strchr(path + strlen(dir) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/'))
    {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }

    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}


static void
write_str(const char *dir, const char *name, const char *s)
{
    write_file(dir, name, s, strlen(s));
}


static void
remove_file(const char *dir, const char *name)
{
    char  path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}


static void
make_layout(const char *dir)
{
    write_str(dir, ".manifest", MANIFEST);
    write_str(dir, "policy.json", POLICY);
    write_str(dir, "prices.json", PRICES);
    write_str(dir, "tests/allow.json", "{\"cases\":[]}");
}


/* Write {"signatures":[JWS of claims by key]} into dir. */
static void
sign_claims(const char *dir, const fg_jwk_t *key, json_t *claims)
{
    fg_buffer_t  tok;
    fg_error_t   err;
    json_t      *doc;
    char        *text;

    fg_buffer_init(&tok, 0);
    if (fg_jws_sign(key, NULL, claims, &tok, &err) != FG_OK) {
        fail_msg("sign: %s", err.msg);
    }

    doc = json_pack("{s:[s%]}", "signatures", (const char *) tok.data,
                    tok.len);
    text = json_dumps(doc, JSON_COMPACT);
    write_str(dir, ".signatures.json", text);

    free(text);
    json_decref(doc);
    json_decref(claims);
    fg_buffer_free(&tok);
}


/* The files claim of the bundle in dir as it is now (unverified load). */
static json_t *
dir_claims(const char *dir)
{
    fg_bundle_t  *b;
    fg_error_t    err;
    json_t       *files;

    if (fg_bundle_load_unverified(dir, NULL, &b, &err) != FG_OK) {
        fail_msg("unverified load: %s", err.msg);
    }
    files = fg_bundle_files_claims(b);
    fg_bundle_free(b);
    assert_non_null(files);

    return files;
}


static const char  *all_names[] = {
    ".manifest", "policy.json", "prices.json", "tests/allow.json"
};


/* The files claim for the named files of dir, computed here. */
static json_t *
claims_for(const char *dir, const char **names, size_t n)
{
    unsigned char  md[FG_SHA256_LEN];
    char           path[1024], hex[FG_SHA256_HEX_LEN + 1];
    fg_buffer_t    f;
    json_t        *list;
    size_t         i;

    list = json_array();
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        assert_int_equal(test_read_file(path, &f), 0);
        assert_int_equal(fg_sha256(f.data, f.len, md), FG_OK);
        fg_hex_sha256(md, hex);
        fg_buffer_free(&f);
        json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "name",
                              names[i], "hash", hex, "algorithm",
                              "SHA-256"));
    }

    return list;
}


/* Sign dir's files with key as the CLI does (fg_bundle_sign). */
static void
sign_dir(const char *dir, const fg_jwk_t *key)
{
    fg_bundle_t  *b;
    fg_buffer_t   sig;
    fg_error_t    err;

    if (fg_bundle_load_unverified(dir, NULL, &b, &err) != FG_OK) {
        fail_msg("unverified load: %s", err.msg);
    }

    fg_buffer_init(&sig, 0);
    if (fg_bundle_sign(b, key, &sig, &err) != FG_OK) {
        fail_msg("bundle sign: %s", err.msg);
    }

    write_file(dir, ".signatures.json", sig.data, sig.len);
    fg_buffer_free(&sig);
    fg_bundle_free(b);
}


/* Load dir (verified against K.pub); expect failure with msg in it. */
static void
expect_refused(const char *dir, const fg_bundle_limits_t *limits,
    const char *msg)
{
    fg_bundle_t  *b = (fg_bundle_t *) 1;
    fg_error_t    err;
    int           rc;

    memset(&err, 0, sizeof(err));
    rc = fg_bundle_load(dir, K.pub, limits, &b, &err);
    if (rc == FG_OK) {
        fail_msg("loaded; expected \"%s\"", msg);
    }
    assert_null(b);
    if (strstr(err.msg, msg) == NULL) {
        fail_msg("got \"%s\", expected \"%s\"", err.msg, msg);
    }
}


/* An archive entry for build_tar(). */
typedef struct {
    const char  *name;
    unsigned     type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, ... */
    const char  *data;          /* regular files */
    const char  *link;          /* symlink target or hard link */
} entry_t;


static la_ssize_t
tar_cb(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void) a;
    return fg_buffer_append(ctx, p, n) == FG_OK ? (la_ssize_t) n : -1;
}


/* A tar (gzip'd when gz) of entries, written with libarchive. */
static void
build_tar(const entry_t *entries, size_t n, int gz, fg_buffer_t *out)
{
    struct archive_entry  *e;
    struct archive        *a;
    size_t                 i, len;

    fg_buffer_init(out, 0);
    a = archive_write_new();
    assert_non_null(a);
    if (gz) {
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    }
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, out, NULL, tar_cb, NULL),
                     ARCHIVE_OK);

    for (i = 0; i < n; i++) {
        e = archive_entry_new();
        archive_entry_set_pathname(e, entries[i].name);
        archive_entry_set_perm(e, 0644);
        len = entries[i].data ? strlen(entries[i].data) : 0;
        if (entries[i].type == AE_IFLNK + 1) {           /* a hard link */
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, entries[i].link);
            len = 0;
        } else {
            archive_entry_set_filetype(e, entries[i].type);
            if (entries[i].type == AE_IFLNK) {
                archive_entry_set_symlink(e, entries[i].link);
            }
        }
        archive_entry_set_size(e, (la_int64_t) len);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len > 0) {
            assert_int_equal(archive_write_data(a, entries[i].data, len),
                             (la_ssize_t) len);
        }
        archive_entry_free(e);
    }

    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}


static void
expect_tar_refused(const entry_t *entries, size_t n, const char *msg)
{
    fg_bundle_t  *b;
    fg_buffer_t   tar;
    fg_error_t    err;

    build_tar(entries, n, 1, &tar);
    assert_int_not_equal(fg_bundle_load_tar_gz_unverified(tar.data, tar.len,
                         NULL, &b, &err), FG_OK);
    assert_null(b);
    if (strstr(err.msg, msg) == NULL) {
        fail_msg("got \"%s\", expected \"%s\"", err.msg, msg);
    }
    fg_buffer_free(&tar);
}


/* --------------------------------------------------------- fixtures */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}


static int
setup(void **state)
{
    fixture_t  *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) {
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/fg-bundle-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    make_layout(fx->dir);
    *state = fx;

    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *fx = *state;

    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);

    return 0;
}


static int
add_public(json_t *keys, const fg_keyset_t *set)
{
    return json_array_append_new(keys, fg_jwk_public_json(key0(set)));
}


static int
group_setup(void **state)
{
    fg_error_t  err;
    json_t     *jwks, *keys;
    char       *text;

    (void) state;

    K.ed = fg_keyset_generate(FG_JWS_EDDSA, "ed1", NULL, &err);
    K.es = fg_keyset_generate(FG_JWS_ES256, "es1", NULL, &err);
    K.rs = fg_keyset_generate(FG_JWS_RS256, "rs1", NULL, &err);
    K.other = fg_keyset_generate(FG_JWS_EDDSA, "ed1", NULL, &err);
    K.hs = fg_keyset_from_jwks(HS_JWK, strlen(HS_JWK), &err);
    if (!K.ed || !K.es || !K.rs || !K.other || !K.hs) {
        fprintf(stderr, "keys: %s\n", err.msg);
        return -1;
    }

    keys = json_array();
    add_public(keys, K.ed);
    add_public(keys, K.es);
    add_public(keys, K.rs);
    json_array_append_new(keys, json_pack("{s:s,s:s,s:s}", "kty", "oct",
        "kid", "hs1", "k", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"));
    jwks = json_pack("{s:o}", "keys", keys);
    text = json_dumps(jwks, JSON_COMPACT);
    K.pub = fg_keyset_from_jwks(text, strlen(text), &err);
    free(text);
    json_decref(jwks);

    if (K.pub == NULL) {
        fprintf(stderr, "public keys: %s\n", err.msg);
        return -1;
    }

    return 0;
}


static int
group_teardown(void **state)
{
    (void) state;
    fg_keyset_free(K.ed);
    fg_keyset_free(K.es);
    fg_keyset_free(K.rs);
    fg_keyset_free(K.other);
    fg_keyset_free(K.hs);
    fg_keyset_free(K.pub);
    return 0;
}


/* -------------------------------------------------------- good bundles */

/* The digest computed independently: JCS text of the sorted list. */
static void
expected_digest(const char *dir, char hex[FG_SHA256_HEX_LEN + 1])
{
    static const char  *names[] = {
        ".manifest", "policy.json", "prices.json", "tests/allow.json"
    };
    unsigned char       md[FG_SHA256_LEN];
    char                path[1024], h[FG_SHA256_HEX_LEN + 1];
    fg_buffer_t         text, f;
    size_t              i;

    fg_buffer_init(&text, 0);
    fg_buffer_append(&text, "[", 1);

    for (i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        assert_int_equal(test_read_file(path, &f), 0);
        assert_int_equal(fg_sha256(f.data, f.len, md), FG_OK);
        fg_hex_sha256(md, h);
        fg_buffer_free(&f);
        snprintf(path, sizeof(path),
                 "%s{\"algorithm\":\"SHA-256\",\"hash\":\"%s\","
                 "\"name\":\"%s\"}", i ? "," : "", h, names[i]);
        fg_buffer_append(&text, path, strlen(path));
    }

    fg_buffer_append(&text, "]", 1);
    assert_int_equal(fg_sha256(text.data, text.len, md), FG_OK);
    fg_hex_sha256(md, hex);
    fg_buffer_free(&text);
}


static void
check_good(fixture_t *fx, const fg_keyset_t *signer, const char *kid)
{
    char                     want[FG_SHA256_HEX_LEN + 1];
    const fg_bundle_file_t  *f;
    fg_bundle_t             *b, *b2;
    fg_buffer_t              tar;
    fg_error_t               err;
    char                     path[512];

    sign_dir(fx->dir, key0(signer));

    if (fg_bundle_load(fx->dir, K.pub, NULL, &b, &err) != FG_OK) {
        fail_msg("load: %s", err.msg);
    }

    assert_true(fg_bundle_verified(b));
    assert_string_equal(fg_bundle_kid(b), kid);
    assert_string_equal(fg_bundle_revision(b), "r-2026.11.22");
    assert_int_equal(fg_bundle_file_count(b), 5);
    assert_string_equal(fg_bundle_file_at(b, 0)->name, ".manifest");
    assert_string_equal(fg_bundle_file_at(b, 1)->name, ".signatures.json");
    assert_null(fg_bundle_file_at(b, 5));

    f = fg_bundle_file(b, "policy.json");
    assert_non_null(f);
    assert_int_equal(f->len, strlen(POLICY));
    assert_string_equal((const char *) f->data, POLICY);
    assert_non_null(fg_bundle_file(b, "tests/allow.json"));
    assert_null(fg_bundle_file(b, "nope.json"));

    expected_digest(fx->dir, want);
    assert_string_equal(fg_bundle_sha256(b), want);

    /* the same bundle as a .tar.gz, in memory and from a file */
    fg_buffer_init(&tar, 0);
    assert_int_equal(fg_bundle_tar_gz(b, &tar, &err), FG_OK);
    if (fg_bundle_load_tar_gz(tar.data, tar.len, K.pub, NULL, &b2, &err)
        != FG_OK)
    {
        fail_msg("load tar.gz: %s", err.msg);
    }
    assert_string_equal(fg_bundle_sha256(b2), want);
    assert_string_equal(fg_bundle_kid(b2), kid);
    fg_bundle_free(b2);

    snprintf(path, sizeof(path), "%s.tar.gz", fx->dir);
    assert_int_equal(fg_bundle_write_tar_gz(b, path, &err), FG_OK);
    if (fg_bundle_load(path, K.pub, NULL, &b2, &err) != FG_OK) {
        fail_msg("load %s: %s", path, err.msg);
    }
    assert_string_equal(fg_bundle_sha256(b2), want);
    assert_string_equal(fg_bundle_revision(b2), "r-2026.11.22");
    fg_bundle_free(b2);
    unlink(path);

    fg_buffer_free(&tar);
    fg_bundle_free(b);
}


static void
test_good_eddsa(void **state)
{
    check_good(*state, K.ed, "ed1");
}


static void
test_good_es256(void **state)
{
    check_good(*state, K.es, "es1");
}


static void
test_good_rs256(void **state)
{
    check_good(*state, K.rs, "rs1");
}


static void
test_unverified(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_error_t    err;
    char          want[FG_SHA256_HEX_LEN + 1];

    assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                     FG_OK);
    assert_false(fg_bundle_verified(b));
    assert_string_equal(fg_bundle_kid(b), "");
    expected_digest(fx->dir, want);
    assert_string_equal(fg_bundle_sha256(b), want);
    fg_bundle_free(b);

    /* no keys: refused, never silently unverified */
    assert_int_equal(fg_bundle_load(fx->dir, NULL, NULL, &b, &err),
                     FG_ERR_INVALID);
    assert_null(b);
}


/* ------------------------------------------------- signature refusals */

static void
test_missing_signature(void **state)
{
    fixture_t  *fx = *state;

    expect_refused(fx->dir, NULL, ".signatures.json: missing");
}


static void
test_tampered(void **state)
{
    fixture_t  *fx = *state;

    sign_dir(fx->dir, key0(K.ed));
    write_str(fx->dir, "policy.json", "{\"default\":\"ALLOW\",\"rules\":[]}");
    expect_refused(fx->dir, NULL,
                   "policy.json: sha256 does not match the signature");
}


static void
test_extra_file(void **state)
{
    fixture_t  *fx = *state;

    sign_dir(fx->dir, key0(K.es));
    write_str(fx->dir, "tests/extra.json", "{}");
    expect_refused(fx->dir, NULL,
                   "tests/extra.json: not listed in the signature");
}


static void
test_listed_missing(void **state)
{
    fixture_t  *fx = *state;

    sign_dir(fx->dir, key0(K.ed));
    remove_file(fx->dir, "prices.json");
    expect_refused(fx->dir, NULL,
                   "prices.json: listed in the signature but not in the "
                   "bundle");
}


static void
test_wrong_algorithm(void **state)
{
    fixture_t  *fx = *state;
    json_t     *files;

    files = dir_claims(fx->dir);
    json_object_set_new(json_array_get(files, 1), "algorithm",
                        json_string("SHA-512"));
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));
    expect_refused(fx->dir, NULL,
                   "policy.json: hash algorithm not supported");
}


static void
test_listed_twice(void **state)
{
    fixture_t  *fx = *state;
    json_t     *files;

    files = dir_claims(fx->dir);
    json_array_append(files, json_array_get(files, 0));
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));
    expect_refused(fx->dir, NULL, ".manifest: listed twice in the signature");
}


static void
test_odd_claims(void **state)
{
    fixture_t  *fx = *state;
    json_t     *files;

    /* keyid, when present, must name the key that verified */
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o,s:s}", "files",
                dir_claims(fx->dir), "keyid", "es1"));
    expect_refused(fx->dir, NULL, "the keyid claim does not name the key");

    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o,s:s,s:s}", "files",
                dir_claims(fx->dir), "keyid", "ed1", "scope", "write"));
    {
        fg_bundle_t  *b;
        fg_error_t    err;

        if (fg_bundle_load(fx->dir, K.pub, NULL, &b, &err) != FG_OK) {
            fail_msg("%s", err.msg);
        }
        fg_bundle_free(b);
    }

    /* the signatures file cannot list itself */
    files = dir_claims(fx->dir);
    json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "name",
        ".signatures.json", "hash", "0000000000000000000000000000000000000000"
        "000000000000000000000000", "algorithm", "SHA-256"));
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));
    expect_refused(fx->dir, NULL, ".signatures.json: listed in the "
                   "signature but not in the bundle");

    /* no files claim; an extra member in an entry; a bad hash */
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:s}", "iss", "x"));
    expect_refused(fx->dir, NULL, "the signature has no files list");

    files = dir_claims(fx->dir);
    json_object_set_new(json_array_get(files, 0), "size", json_integer(1));
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));
    expect_refused(fx->dir, NULL, ".manifest: unexpected member");

    files = dir_claims(fx->dir);
    json_object_set_new(json_array_get(files, 0), "hash", json_string("AB"));
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));
    expect_refused(fx->dir, NULL, ".manifest: hash is not 64 lowercase hex");

    /* .signatures.json itself malformed */
    write_str(fx->dir, ".signatures.json", "{\"signatures\":[\"a.b.c\"],"
              "\"x\":1}");
    expect_refused(fx->dir, NULL, ".signatures.json: unexpected member");
    write_str(fx->dir, ".signatures.json", "{\"signatures\":[1]}");
    expect_refused(fx->dir, NULL, ".signatures.json: the signature is not");
    write_str(fx->dir, ".signatures.json", "not json");
    expect_refused(fx->dir, NULL, ".signatures.json: not JSON");
    write_str(fx->dir, ".signatures.json", "{\"signatures\":[\"a.b.c\"]}");
    expect_refused(fx->dir, NULL, ".signatures.json: signature not valid");
}


static void
test_unknown_key(void **state)
{
    fixture_t  *fx = *state;

    /* same kid as a trusted key, different key */
    sign_dir(fx->dir, key0(K.other));
    expect_refused(fx->dir, NULL, ".signatures.json: signature not valid: ");

    /* a kid the set does not hold */
    {
        fg_keyset_t  *lone;
        fg_bundle_t  *b;
        fg_error_t    err;

        lone = fg_keyset_generate(FG_JWS_ES256, "es-unknown", NULL, &err);
        assert_non_null(lone);
        sign_dir(fx->dir, key0(lone));
        expect_refused(fx->dir, NULL,
                       ".signatures.json: signature not valid: ");
        assert_int_not_equal(fg_bundle_load(fx->dir, K.ed, NULL, &b, &err),
                             FG_OK);
        fg_keyset_free(lone);
    }
}


static void
test_two_signatures(void **state)
{
    fixture_t     *fx = *state;
    fg_bundle_t   *b;
    fg_buffer_t    sig;
    fg_error_t     err;
    json_t        *doc, *list;
    char          *text;

    assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                     FG_OK);
    fg_buffer_init(&sig, 0);
    assert_int_equal(fg_bundle_sign(b, key0(K.ed), &sig, &err), FG_OK);
    fg_bundle_free(b);

    doc = json_loadb((const char *) sig.data, sig.len, 0, NULL);
    list = json_object_get(doc, "signatures");
    json_array_append(list, json_array_get(list, 0));
    text = json_dumps(doc, JSON_COMPACT);
    write_str(fx->dir, ".signatures.json", text);
    expect_refused(fx->dir, NULL,
                   ".signatures.json: 2 signatures, exactly one");

    json_array_clear(list);
    free(text);
    text = json_dumps(doc, JSON_COMPACT);
    write_str(fx->dir, ".signatures.json", text);
    expect_refused(fx->dir, NULL,
                   ".signatures.json: 0 signatures, exactly one");

    free(text);
    json_decref(doc);
    fg_buffer_free(&sig);
}


static void
test_hs256_refused(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_buffer_t   sig;
    fg_error_t    err;

    sign_claims(fx->dir, key0(K.hs),
                json_pack("{s:o}", "files", dir_claims(fx->dir)));
    expect_refused(fx->dir, NULL, "HS256 is not accepted for bundles");

    assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                     FG_OK);
    fg_buffer_init(&sig, 0);
    assert_int_equal(fg_bundle_sign(b, key0(K.hs), &sig, &err),
                     FG_ERR_INVALID);
    fg_buffer_free(&sig);
    fg_bundle_free(b);
}


/* -------------------------------------------------- layout refusals */

static void
test_no_manifest(void **state)
{
    fixture_t  *fx = *state;
    json_t     *files;
    size_t      i;

    files = dir_claims(fx->dir);
    for (i = 0; i < json_array_size(files); i++) {
        if (strcmp(json_string_value(json_object_get(
                json_array_get(files, i), "name")), ".manifest") == 0)
        {
            json_array_remove(files, i);
            break;
        }
    }
    remove_file(fx->dir, ".manifest");
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files", files));

    expect_refused(fx->dir, NULL, ".manifest: missing");
}


static void
test_bad_manifest(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_error_t    err;
    size_t        i;
    static const struct {
        const char  *text, *msg;
    } cases[] = {
        { "{\"revision\":\"\"}", ".manifest: revision must have 1..256" },
        { "{\"revision\":\"a b\"}", ".manifest: revision must be printable" },
        { "{\"revision\":7}", ".manifest: no revision string" },
        { "{}", ".manifest: no revision string" },
        { "[\"revision\"]", ".manifest: no revision string" },
        { "{\"revision\":\"a\",\"revision\":\"b\"}", ".manifest: not JSON" },
        { "{\"revision\":\"a\",\"roots\":\"x\"}", ".manifest: roots must" },
        { "{\"revision\":\"a\",\"metadata\":[]}", ".manifest: roots must" },
        { "{\"revision\":", ".manifest: not JSON" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_str(fx->dir, ".manifest", cases[i].text);
        assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                         FG_ERR_INVALID);
        if (strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("%s: got \"%s\"", cases[i].text, err.msg);
        }
    }

    /* signed, then an empty revision: still refused after verifying */
    write_str(fx->dir, ".manifest", "{\"revision\":\"\"}");
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files",
                claims_for(fx->dir, all_names, 4)));
    expect_refused(fx->dir, NULL, ".manifest: revision must have 1..256");
}


static void
test_no_policy(void **state)
{
    fixture_t  *fx = *state;

    static const char  *names[] = {
        ".manifest", "prices.json", "tests/allow.json"
    };

    remove_file(fx->dir, "policy.json");
    sign_claims(fx->dir, key0(K.ed), json_pack("{s:o}", "files",
                claims_for(fx->dir, names, 3)));
    expect_refused(fx->dir, NULL, "policy.json: missing");
}


/* ------------------------------------------------- archive refusals */

#define GOOD_ENTRIES \
    { ".manifest", AE_IFREG, MANIFEST, NULL }, \
    { "policy.json", AE_IFREG, POLICY, NULL }

static void
test_tar_traversal(void **state)
{
    entry_t  up[] = { GOOD_ENTRIES, { "evil/../x", AE_IFREG, "x", NULL } };
    entry_t  lead[] = { GOOD_ENTRIES, { "../x", AE_IFREG, "x", NULL } };
    entry_t  abs[] = { GOOD_ENTRIES, { "/etc/x", AE_IFREG, "x", NULL } };
    entry_t  dir[] = { GOOD_ENTRIES, { "a/../../", AE_IFDIR, NULL, NULL } };
    entry_t  dot[] = { GOOD_ENTRIES, { "a/./x", AE_IFREG, "x", NULL } };
    entry_t  empty[] = { GOOD_ENTRIES, { "a//x", AE_IFREG, "x", NULL } };
    entry_t  ctl[] = { GOOD_ENTRIES, { "a\x01x", AE_IFREG, "x", NULL } };
    entry_t  bs[] = { GOOD_ENTRIES, { "a\\..\\x", AE_IFREG, "x", NULL } };

    (void) state;
    expect_tar_refused(up, 3, "evil/../x: path escapes the bundle");
    expect_tar_refused(lead, 3, "../x: path escapes the bundle");
    expect_tar_refused(abs, 3, "/etc/x: absolute path");
    expect_tar_refused(dir, 3, "a/../..: path escapes the bundle");
    expect_tar_refused(dot, 3, "a/./x: '.' path segment");
    expect_tar_refused(empty, 3, "a//x: empty path segment");
    expect_tar_refused(ctl, 3, "a?x: name has control characters");
    expect_tar_refused(bs, 3, "name has a backslash");
}


static void
test_tar_links(void **state)
{
    entry_t  sym[] = { GOOD_ENTRIES,
                       { "prices.json", AE_IFLNK, NULL, "/etc/passwd" } };
    entry_t  hard[] = { GOOD_ENTRIES,
                        { "prices.json", AE_IFLNK + 1, NULL, "policy.json" } };
    entry_t  dev[] = { GOOD_ENTRIES, { "null", AE_IFCHR, NULL, NULL } };
    entry_t  fifo[] = { GOOD_ENTRIES, { "p", AE_IFIFO, NULL, NULL } };
    entry_t  dup[] = { GOOD_ENTRIES, { "policy.json", AE_IFREG, "{}", NULL } };

    (void) state;
    expect_tar_refused(sym, 3, "prices.json: symbolic links are not allowed");
    expect_tar_refused(hard, 3, "prices.json: hard links are not allowed");
    expect_tar_refused(dev, 3, "null: not a regular file or a directory");
    expect_tar_refused(fifo, 3, "p: not a regular file or a directory");
    expect_tar_refused(dup, 3, "policy.json: appears twice in the bundle");
}


static void
test_tar_layout_ok(void **state)
{
    entry_t       ok[] = { { "./", AE_IFDIR, NULL, NULL }, GOOD_ENTRIES,
                           { "./tests/", AE_IFDIR, NULL, NULL },
                           { "./tests/a.json", AE_IFREG, "{}", NULL } };
    fg_bundle_t  *b;
    fg_buffer_t   tar;
    fg_error_t    err;

    (void) state;
    build_tar(ok, 5, 1, &tar);
    if (fg_bundle_load_tar_gz_unverified(tar.data, tar.len, NULL, &b, &err)
        != FG_OK)
    {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(fg_bundle_file_count(b), 3);
    assert_non_null(fg_bundle_file(b, "tests/a.json"));

    /* unsigned, so the verified entry refuses it */
    fg_bundle_free(b);
    assert_int_equal(fg_bundle_load_tar_gz(tar.data, tar.len, K.pub, NULL,
                     &b, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, ".signatures.json: missing"));
    fg_buffer_free(&tar);
}


static void
test_dir_symlink(void **state)
{
    fixture_t  *fx = *state;
    char        path[512];

    snprintf(path, sizeof(path), "%s/prices.json", fx->dir);
    unlink(path);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    expect_refused(fx->dir, NULL,
                   "prices.json: symbolic links are not allowed");
}


static void
test_limits(void **state)
{
    fixture_t           *fx = *state;
    fg_bundle_limits_t   lim;
    char                 big[2048];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_str(fx->dir, "tests/big.json", big);
    sign_dir(fx->dir, key0(K.ed));

    memset(&lim, 0, sizeof(lim));
    lim.max_file_size = 1024;
    expect_refused(fx->dir, &lim, "tests/big.json: larger than 1024 bytes");

    memset(&lim, 0, sizeof(lim));
    lim.max_total = 2100;
    expect_refused(fx->dir, &lim, "the bundle exceeds 2100 bytes in all");

    memset(&lim, 0, sizeof(lim));
    lim.max_files = 4;
    expect_refused(fx->dir, &lim, "the bundle has more than 4 files");

    memset(&lim, 0, sizeof(lim));
    lim.max_files = 6;
    lim.max_file_size = 4096;
    lim.max_total = 8192;
    {
        fg_bundle_t  *b;
        fg_error_t    err;

        if (fg_bundle_load(fx->dir, K.pub, &lim, &b, &err) != FG_OK) {
            fail_msg("%s", err.msg);
        }
        fg_bundle_free(b);
    }
}


static void
test_tar_limits(void **state)
{
    char          big[3000];
    entry_t       e[] = { GOOD_ENTRIES, { "big", AE_IFREG, big, NULL } };
    fg_bundle_limits_t  lim;
    fg_bundle_t  *b;
    fg_buffer_t   tar;
    fg_error_t    err;

    (void) state;
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    build_tar(e, 3, 1, &tar);

    memset(&lim, 0, sizeof(lim));
    lim.max_file_size = 2000;
    assert_int_equal(fg_bundle_load_tar_gz_unverified(tar.data, tar.len,
                     &lim, &b, &err), FG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "big: larger than 2000 bytes"));
    fg_buffer_free(&tar);
}


static void
test_not_gzip(void **state)
{
    entry_t       e[] = { GOOD_ENTRIES };
    fg_bundle_t  *b;
    fg_buffer_t   tar;
    fg_error_t    err;

    (void) state;
    build_tar(e, 2, 0, &tar);
    assert_int_equal(fg_bundle_load_tar_gz_unverified(tar.data, tar.len,
                     NULL, &b, &err), FG_ERR_SYNTAX);
    assert_non_null(strstr(err.msg, "not a gzip archive"));
    fg_buffer_free(&tar);

    assert_int_not_equal(fg_bundle_load_tar_gz_unverified(
                         (const unsigned char *) "hello", 5, NULL, &b, &err),
                         FG_OK);
    assert_null(b);
    assert_int_not_equal(fg_bundle_load_tar_gz_unverified(
                         (const unsigned char *) "", 0, NULL, &b, &err),
                         FG_OK);
    assert_null(b);
}


static void
test_truncated(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_buffer_t   tar;
    fg_error_t    err;
    size_t        cut;

    sign_dir(fx->dir, key0(K.ed));
    assert_int_equal(fg_bundle_load(fx->dir, K.pub, NULL, &b, &err), FG_OK);
    fg_buffer_init(&tar, 0);
    assert_int_equal(fg_bundle_tar_gz(b, &tar, &err), FG_OK);
    fg_bundle_free(b);

    /* the archive ends with the gzip trailer: any cut is refused */
    for (cut = 1; cut < tar.len; cut += 3) {
        b = (fg_bundle_t *) 1;
        assert_int_not_equal(fg_bundle_load_tar_gz(tar.data, tar.len - cut,
                             K.pub, NULL, &b, &err), FG_OK);
        assert_null(b);
        assert_true(err.msg[0] != '\0');
    }

    /* one flipped byte in the compressed data */
    tar.data[tar.len / 2] ^= 0x55;
    assert_int_not_equal(fg_bundle_load_tar_gz(tar.data, tar.len, K.pub,
                         NULL, &b, &err), FG_OK);
    fg_buffer_free(&tar);
}


/* ------------------------------------------------ writing and shape */

static void
test_deterministic(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b, *b2;
    fg_buffer_t   x, y;
    fg_error_t    err;
    char          p1[512], p2[512];

    sign_dir(fx->dir, key0(K.ed));
    assert_int_equal(fg_bundle_load(fx->dir, K.pub, NULL, &b, &err), FG_OK);

    snprintf(p1, sizeof(p1), "%s/../%s-1.tar.gz", fx->dir, fx->dir + 5);
    snprintf(p2, sizeof(p2), "%s/../%s-2.tar.gz", fx->dir, fx->dir + 5);
    assert_int_equal(fg_bundle_write_tar_gz(b, p1, &err), FG_OK);
    sleep(1);
    assert_int_equal(fg_bundle_write_tar_gz(b, p2, &err), FG_OK);

    assert_int_equal(test_read_file(p1, &x), 0);
    assert_int_equal(test_read_file(p2, &y), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);

    /* gzip magic, no timestamp in the gzip header */
    assert_true(x.len > 10 && x.data[0] == 0x1f && x.data[1] == 0x8b);
    assert_true(x.data[4] == 0 && x.data[5] == 0 && x.data[6] == 0
                && x.data[7] == 0);

    /* the same files loaded from the dir in another order: same bytes */
    assert_int_equal(fg_bundle_load(p1, K.pub, NULL, &b2, &err), FG_OK);
    fg_buffer_free(&y);
    fg_buffer_init(&y, 0);
    assert_int_equal(fg_bundle_tar_gz(b2, &y, &err), FG_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);

    unlink(p1);
    unlink(p2);
    fg_buffer_free(&x);
    fg_buffer_free(&y);
    fg_bundle_free(b);
    fg_bundle_free(b2);
}


/* decode one base64url part of a JWS as a JSON object */
static json_t *
jws_part(const char *tok, size_t start, size_t end)
{
    fg_buffer_t  raw;
    json_t      *v;

    fg_buffer_init(&raw, 0);
    assert_int_equal(fg_b64url_decode(tok + start, end - start, &raw),
                     FG_OK);
    v = json_loadb((const char *) raw.data, raw.len, JSON_REJECT_DUPLICATES,
                   NULL);
    fg_buffer_free(&raw);
    assert_true(json_is_object(v));

    return v;
}


static void
check_shape(const char *text, size_t len, const char *alg, const char *kid)
{
    json_t      *doc, *list, *hdr, *claims, *files, *f;
    const char  *tok, *dot1, *dot2, *hash;
    size_t       i;

    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    assert_true(json_is_object(doc));
    assert_int_equal(json_object_size(doc), 1);
    list = json_object_get(doc, "signatures");
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 1);
    tok = json_string_value(json_array_get(list, 0));
    assert_non_null(tok);

    dot1 = strchr(tok, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));

    hdr = jws_part(tok, 0, (size_t) (dot1 - tok));
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), alg);
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid);

    claims = jws_part(tok, (size_t) (dot1 - tok) + 1, (size_t) (dot2 - tok));
    files = json_object_get(claims, "files");
    assert_true(json_is_array(files));
    assert_int_equal(json_array_size(files), 4);

    for (i = 0; i < json_array_size(files); i++) {
        f = json_array_get(files, i);
        assert_int_equal(json_object_size(f), 3);
        assert_true(json_is_string(json_object_get(f, "name")));
        assert_string_equal(json_string_value(json_object_get(f,
                            "algorithm")), "SHA-256");
        hash = json_string_value(json_object_get(f, "hash"));
        assert_non_null(hash);
        assert_int_equal(strlen(hash), 64);
        assert_int_equal(strspn(hash, "0123456789abcdef"), 64);
        assert_true(json_string_value(json_object_get(f, "name"))[0] != '/');
    }

    assert_string_equal(json_string_value(json_object_get(
                        json_array_get(files, 0), "name")), ".manifest");

    json_decref(hdr);
    json_decref(claims);
    json_decref(doc);
}


static void
test_signature_shape(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_buffer_t   sig;
    fg_error_t    err;

    assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                     FG_OK);

    fg_buffer_init(&sig, 0);
    assert_int_equal(fg_bundle_sign(b, key0(K.ed), &sig, &err), FG_OK);
    check_shape((const char *) sig.data, sig.len, "EdDSA", "ed1");
    fg_buffer_free(&sig);

    fg_buffer_init(&sig, 0);
    assert_int_equal(fg_bundle_sign(b, key0(K.es), &sig, &err), FG_OK);
    check_shape((const char *) sig.data, sig.len, "ES256", "es1");

    /* added with set_file: the bundle then verifies from a tar.gz */
    assert_int_equal(fg_bundle_set_file(b, ".signatures.json", sig.data,
                     sig.len, &err), FG_OK);
    fg_buffer_free(&sig);
    fg_buffer_init(&sig, 0);
    assert_int_equal(fg_bundle_tar_gz(b, &sig, &err), FG_OK);
    fg_bundle_free(b);
    if (fg_bundle_load_tar_gz(sig.data, sig.len, K.pub, NULL, &b, &err)
        != FG_OK)
    {
        fail_msg("%s", err.msg);
    }
    assert_string_equal(fg_bundle_kid(b), "es1");
    fg_bundle_free(b);
    fg_buffer_free(&sig);
}


static void
test_set_file(void **state)
{
    fixture_t    *fx = *state;
    fg_bundle_t  *b;
    fg_error_t    err;
    char          before[FG_SHA256_HEX_LEN + 1];

    assert_int_equal(fg_bundle_load_unverified(fx->dir, NULL, &b, &err),
                     FG_OK);
    strcpy(before, fg_bundle_sha256(b));

    assert_int_equal(fg_bundle_set_file(b, "../x", (const unsigned char *)
                     "{}", 2, &err), FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "../x: path escapes the bundle"));
    assert_int_equal(fg_bundle_set_file(b, "a//b", (const unsigned char *)
                     "{}", 2, &err), FG_ERR_INVALID);
    assert_int_equal(fg_bundle_set_file(b, "", (const unsigned char *)
                     "{}", 2, &err), FG_ERR_INVALID);
    assert_int_equal(fg_bundle_set_file(b, "a\xff", (const unsigned char *)
                     "{}", 2, &err), FG_ERR_INVALID);
    assert_int_equal(fg_bundle_set_file(b, ".manifest",
                     (const unsigned char *) "{\"revision\":\"\"}", 15, &err),
                     FG_ERR_INVALID);
    assert_string_equal(fg_bundle_sha256(b), before);
    assert_int_equal(fg_bundle_file_count(b), 4);

    assert_int_equal(fg_bundle_set_file(b, ".manifest",
                     (const unsigned char *) "{\"revision\":\"r2\"}", 17,
                     &err), FG_OK);
    assert_string_equal(fg_bundle_revision(b), "r2");
    assert_string_not_equal(fg_bundle_sha256(b), before);

    assert_int_equal(fg_bundle_set_file(b, "a.json", (const unsigned char *)
                     "{}", 2, &err), FG_OK);
    assert_int_equal(fg_bundle_file_count(b), 5);
    assert_string_equal(fg_bundle_file_at(b, 1)->name, "a.json");
    fg_bundle_free(b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_good_eddsa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_es256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_rs256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unverified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_signature, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listed_missing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_algorithm, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_listed_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_signatures, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hs256_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_policy, setup, teardown),
        cmocka_unit_test(test_tar_traversal),
        cmocka_unit_test(test_tar_links),
        cmocka_unit_test(test_tar_layout_ok),
        cmocka_unit_test_setup_teardown(test_dir_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test(test_tar_limits),
        cmocka_unit_test(test_not_gzip),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_shape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_file, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

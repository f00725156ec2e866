/*
 * test_checkpoint.c -- signed checkpoints (fg_checkpoint): the signed-note
 * key id and signature layout against the Go reference vector
 * (golang.org/x/mod/sumdb/note), notes signed and read back, every byte
 * of a signed note changed, dropped or doubled refused or failing
 * verification, wrong and unknown keys, bad base64, the grammar's edges
 * and the bounds.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fg_checkpoint.h"

#define DASH  "\xe2\x80\x94 "

typedef struct {
    fg_keyset_t    *log1;       /* private Ed25519, kid log1 */
    fg_keyset_t    *log1_pub;   /* its public JWK */
    fg_keyset_t    *log2;       /* another Ed25519 key, kid log2 */
    fg_keyset_t    *imposter;   /* another Ed25519 key also named log1 */
    fg_keyset_t    *es;         /* an ES256 key named log1 */
    unsigned char   hash[FG_SHA256_LEN];
    fg_buffer_t     note;       /* acme, 12, hash, signed by log1 */
} fx_t;


static fg_keyset_t *
public_of(const fg_keyset_t *set)
{
    fg_keyset_t  *pub;
    fg_error_t    err;
    json_t       *jwk;
    char         *text;

    jwk = fg_jwk_public_json(fg_keyset_get(set, 0));
    text = json_dumps(jwk, JSON_COMPACT);
    pub = fg_keyset_from_jwks(text, strlen(text), &err);
    free(text);
    json_decref(jwk);
    return pub;
}


static int
setup(void **state)
{
    fx_t        *fx = calloc(1, sizeof(*fx));
    fg_error_t   err;
    size_t       i;

    fx->log1 = fg_keyset_generate(FG_JWS_EDDSA, "log1", NULL, &err);
    fx->log2 = fg_keyset_generate(FG_JWS_EDDSA, "log2", NULL, &err);
    fx->imposter = fg_keyset_generate(FG_JWS_EDDSA, "log1", NULL, &err);
    fx->es = fg_keyset_generate(FG_JWS_ES256, "log1", NULL, &err);
    if (fx->log1 == NULL || fx->log2 == NULL || fx->imposter == NULL
        || fx->es == NULL)
    {
        return -1;
    }
    fx->log1_pub = public_of(fx->log1);

    for (i = 0; i < FG_SHA256_LEN; i++) {
        fx->hash[i] = (unsigned char) (i * 7 + 1);
    }

    fg_buffer_init(&fx->note, 0);
    if (fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "acme", 12, fx->hash,
                           &fx->note, &err) != FG_OK)
    {
        return -1;
    }

    *state = fx;
    return fx->log1_pub != NULL ? 0 : -1;
}


static int
teardown(void **state)
{
    fx_t  *fx = *state;

    fg_keyset_free(fx->log1);
    fg_keyset_free(fx->log1_pub);
    fg_keyset_free(fx->log2);
    fg_keyset_free(fx->imposter);
    fg_keyset_free(fx->es);
    fg_buffer_free(&fx->note);
    free(fx);
    return 0;
}


/* parse, then verify against trusted: FG_OK or the first error. */
static int
check(const void *note, size_t len, const fg_keyset_t *trusted,
    fg_error_t *err)
{
    fg_checkpoint_t  cp;
    int              rc;

    rc = fg_checkpoint_parse(note, len, &cp, err);
    if (rc != FG_OK) {
        return rc;
    }
    return fg_checkpoint_verify(&cp, trusted, NULL, err);
}


/* The signature line (from its dash to its newline) of a one-sig note. */
static const char *
sig_line(const fg_buffer_t *note, size_t *len)
{
    const char  *p;

    p = strstr((const char *) note->data, "\n\n" DASH);
    assert_non_null(p);
    p += 2;
    *len = note->len - (size_t) (p - (const char *) note->data);
    return p;
}


/* -------------------------------------------------------------- tests */

/*
 * The Go reference implementation's key: its key id is c74f20a3, and
 * key id || Ed25519(text) is the signature its note carries.
 */
static void
test_go_vector(void **state)
{
    static const char  *jwk =
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"PeterNeumann\","
        "\"d\":\"gQoUAtUUbI2E8kQzMPVAgOv5juF9nHT2JS_F1ccoMXM\","
        "\"x\":\"GlzZBxQ8OExB6DDFvOEqqIF-xWSaqr8sMTiLNbLXRNY\"}";
    static const char  *text =
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n";
    static const char  *want =
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
        "vqfqdngotpRZb6KE6RyyBwJnAM=";
    unsigned char   blob[68], b64[100];
    fg_keyset_t    *set;
    fg_error_t      err;
    EVP_MD_CTX     *ctx;
    uint32_t        id;
    size_t          n = 64;

    (void) state;

    set = fg_keyset_from_jwks(jwk, strlen(jwk), &err);
    assert_non_null(set);

    assert_int_equal(fg_checkpoint_key_id(fg_keyset_get(set, 0), &id, &err),
                     FG_OK);
    assert_int_equal(id, 0xc74f20a3);

    blob[0] = 0xc7; blob[1] = 0x4f; blob[2] = 0x20; blob[3] = 0xa3;
    ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL,
                     fg_jwk_pkey(fg_keyset_get(set, 0)), NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, blob + 4, &n,
                     (const unsigned char *) text, strlen(text)), 1);
    EVP_MD_CTX_free(ctx);

    assert_int_equal(EVP_EncodeBlock(b64, blob, 68), (int) strlen(want));
    assert_string_equal((char *) b64, want);

    fg_keyset_free(set);
}


static void
test_round_trip(void **state)
{
    fx_t             *fx = *state;
    fg_checkpoint_t   cp;
    fg_error_t        err;
    fg_buffer_t       again;
    const fg_jwk_t   *by = NULL;
    uint32_t          id;
    char              prefix[200], name[FG_CHECKPOINT_FILE_NAME_LEN + 1];
    unsigned char     b64[45];

    /* the note, byte for byte */
    EVP_EncodeBlock(b64, fx->hash, 32);
    snprintf(prefix, sizeof(prefix),
             "foxgov-ledger/acme\n12\n%s\n\n" DASH "log1 ", (char *) b64);
    assert_true(fx->note.len == strlen(prefix) + 92 + 1);
    assert_memory_equal(fx->note.data, prefix, strlen(prefix));
    assert_int_equal(fx->note.data[fx->note.len - 1], '\n');

    assert_int_equal(fg_checkpoint_parse(fx->note.data, fx->note.len, &cp,
                                         &err), FG_OK);
    assert_string_equal(cp.tenant, "acme");
    assert_true(cp.size == 12);
    assert_memory_equal(cp.hash, fx->hash, 32);
    assert_int_equal(cp.text_len, strlen(prefix) - 1 - 4 - 5);
    assert_memory_equal(cp.text, fx->note.data, cp.text_len);
    assert_int_equal(cp.nsigs, 1);
    assert_string_equal(cp.sigs[0].name, "log1");
    assert_int_equal(cp.sigs[0].sig_len, 64);
    assert_int_equal(fg_checkpoint_key_id(fg_keyset_get(fx->log1, 0), &id,
                                          &err), FG_OK);
    assert_int_equal(cp.sigs[0].key_id, id);

    /* by the public key, and by the private one */
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log1_pub, &by, &err),
                     FG_OK);
    assert_string_equal(fg_jwk_kid(by), "log1");
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log1, NULL, &err), FG_OK);

    /* Ed25519 is deterministic: the same checkpoint, the same bytes */
    fg_buffer_init(&again, 0);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "acme",
                     12, fx->hash, &again, &err), FG_OK);
    assert_int_equal(again.len, fx->note.len);
    assert_memory_equal(again.data, fx->note.data, again.len);
    fg_buffer_free(&again);

    /* the largest size */
    fg_buffer_init(&again, 0);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0),
                     "a0123456789012345678901234567890123456789012345678901"
                     "2345678_-", FG_CHECKPOINT_SIZE_MAX, fx->hash, &again,
                     &err), FG_OK);
    assert_int_equal(check(again.data, again.len, fx->log1_pub, &err), FG_OK);
    fg_buffer_free(&again);

    fg_checkpoint_file_name(12, name);
    assert_string_equal(name, "00000000000000000012.checkpoint");
    fg_checkpoint_file_name(FG_CHECKPOINT_SIZE_MAX, name);
    assert_string_equal(name, "00009007199254740991.checkpoint");
}


/* Every byte changed (three ways), dropped or doubled: never verifies. */
static void
test_every_byte(void **state)
{
    static const unsigned char  flips[] = { 0x01, 0x20, 0x80 };
    fx_t           *fx = *state;
    fg_error_t      err;
    unsigned char  *p;
    size_t          i, k, len = fx->note.len;

    p = malloc(len + 1);
    assert_non_null(p);

    for (i = 0; i < len; i++) {
        for (k = 0; k < sizeof(flips); k++) {
            memcpy(p, fx->note.data, len);
            p[i] ^= flips[k];
            if (check(p, len, fx->log1_pub, &err) == FG_OK) {
                fail_msg("byte %zu ^ 0x%02x verifies", i, flips[k]);
            }
        }

        memcpy(p, fx->note.data, i);
        memcpy(p + i, fx->note.data + i + 1, len - i - 1);
        if (check(p, len - 1, fx->log1_pub, &err) == FG_OK) {
            fail_msg("byte %zu dropped verifies", i);
        }

        memcpy(p, fx->note.data, i + 1);
        memcpy(p + i + 1, fx->note.data + i, len - i);
        if (check(p, len + 1, fx->log1_pub, &err) == FG_OK) {
            fail_msg("byte %zu doubled verifies", i);
        }
    }

    /* cut anywhere */
    for (i = 0; i < len; i++) {
        assert_int_not_equal(check(fx->note.data, i, fx->log1_pub, &err),
                             FG_OK);
    }

    free(p);
}


static void
test_keys(void **state)
{
    fx_t             *fx = *state;
    fg_checkpoint_t   cp;
    fg_error_t        err;
    fg_buffer_t       two, other;
    const fg_jwk_t   *by;
    const char       *line;
    size_t            n;

    assert_int_equal(fg_checkpoint_parse(fx->note.data, fx->note.len, &cp,
                                         &err), FG_OK);

    /* another key, the same name with other material, an ES256 key */
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log2, NULL, &err),
                     FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "no signature by a trusted key "
                           "(signed by log1)"));
    assert_int_equal(fg_checkpoint_verify(&cp, fx->imposter, NULL, &err),
                     FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_verify(&cp, fx->es, NULL, &err),
                     FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_verify(&cp, NULL, NULL, &err),
                     FG_ERR_INVALID);

    /* a trusted key's signature that fails refuses the note */
    cp.sigs[0].sig[10] ^= 1;
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log1_pub, NULL, &err),
                     FG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "by key log1 does not verify"));

    /* a second signer: either key verifies it, unknown lines ignored */
    fg_buffer_init(&other, 0);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log2, 0), "acme",
                     12, fx->hash, &other, &err), FG_OK);
    fg_buffer_init(&two, 0);
    line = sig_line(&other, &n);
    assert_int_equal(fg_buffer_append(&two, fx->note.data, fx->note.len),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&two, line, n), FG_OK);
    assert_int_equal(fg_checkpoint_parse(two.data, two.len, &cp, &err),
                     FG_OK);
    assert_int_equal(cp.nsigs, 2);
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log2, &by, &err), FG_OK);
    assert_string_equal(fg_jwk_kid(by), "log2");
    assert_int_equal(fg_checkpoint_verify(&cp, fx->log1_pub, &by, &err),
                     FG_OK);
    assert_string_equal(fg_jwk_kid(by), "log1");
    assert_int_equal(fg_checkpoint_verify(&cp, fx->imposter, NULL, &err),
                     FG_ERR_INVALID);

    /* a signature line of another checkpoint does not carry over */
    fg_buffer_free(&other);
    fg_buffer_init(&other, 0);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "acme",
                     13, fx->hash, &other, &err), FG_OK);
    line = sig_line(&other, &n);
    two.len = fx->note.len - 93 - 4 - 5;
    assert_int_equal(fg_buffer_append(&two, line, n), FG_OK);
    assert_int_equal(check(two.data, two.len, fx->log1_pub, &err),
                     FG_ERR_INVALID);

    fg_buffer_free(&two);
    fg_buffer_free(&other);
}


static void
test_sign_refused(void **state)
{
    fx_t         *fx = *state;
    fg_error_t    err;
    fg_buffer_t   b;
    fg_keyset_t  *k;

    fg_buffer_init(&b, 0);

    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1_pub, 0),
                     "acme", 1, fx->hash, &b, &err), FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->es, 0), "acme", 1,
                     fx->hash, &b, &err), FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "Acme",
                     1, fx->hash, &b, &err), FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "acme",
                     0, fx->hash, &b, &err), FG_ERR_INVALID);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(fx->log1, 0), "acme",
                     FG_CHECKPOINT_SIZE_MAX + 1, fx->hash, &b, &err),
                     FG_ERR_INVALID);

    /* kids that are not key names */
    k = fg_keyset_generate(FG_JWS_EDDSA, "a+b", NULL, &err);
    assert_non_null(k);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(k, 0), "acme", 1,
                     fx->hash, &b, &err), FG_ERR_INVALID);
    fg_keyset_free(k);
    k = fg_keyset_generate(FG_JWS_EDDSA, "a b", NULL, &err);
    assert_non_null(k);
    assert_int_equal(fg_checkpoint_sign(fg_keyset_get(k, 0), "acme", 1,
                     fx->hash, &b, &err), FG_ERR_INVALID);
    fg_keyset_free(k);

    assert_int_equal(b.len, 0);
    fg_buffer_free(&b);
}


/* The note with its text replaced by text (the signature kept). */
static int
with_text(fx_t *fx, const char *text, fg_error_t *err)
{
    fg_buffer_t   b;
    const char   *line;
    size_t        n;
    int           rc;

    line = sig_line(&fx->note, &n);
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, text, strlen(text)), FG_OK);
    assert_int_equal(fg_buffer_append(&b, line, n), FG_OK);
    rc = check(b.data, b.len, fx->log1_pub, err);
    fg_buffer_free(&b);
    return rc;
}


/* The note with its signature line replaced by line. */
static int
with_sig(fx_t *fx, const char *line, fg_error_t *err)
{
    fg_buffer_t  b;
    size_t       n;
    int          rc;

    (void) sig_line(&fx->note, &n);
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, fx->note.data, fx->note.len - n),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&b, line, strlen(line)), FG_OK);
    rc = check(b.data, b.len, fx->log1_pub, err);
    fg_buffer_free(&b);
    return rc;
}


static void
test_grammar(void **state)
{
    static const char  *h = "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=";
    fx_t        *fx = *state;
    fg_error_t   err;
    char         text[300];

    /* the text it was signed with verifies: the helper is right */
    snprintf(text, sizeof(text), "foxgov-ledger/acme\n12\n%s\n\n", h);
    assert_int_equal(with_text(fx, text, &err), FG_OK);

#define REFUSED(t)  assert_int_equal(with_text(fx, t, &err), FG_ERR_SYNTAX)

    REFUSED("foxgov-ledger/acme\n012\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("foxgov-ledger/acme\n0\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("foxgov-ledger/acme\n9007199254740992\nAQgPFh0kKzI5QEdOVVxjan"
            "F4f4aNlJuiqbC3vsXM09o=\n\n");
    REFUSED("foxgov-ledger/acme\n+12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("foxgov-ledger/Acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("foxgov-ledger/\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("example.com/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n");
    REFUSED("foxgov-ledger/acme\r\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqb"
            "C3vsXM09o=\n\n");
    /* an extension line; a missing blank line */
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\nextra\n\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o=\n\n\n");
    /* bad base64: url alphabet, no padding, stray bits, space, short */
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o_\n\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09o\n\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM09p=\n\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            " sXM09o=\n\n");
    REFUSED("foxgov-ledger/acme\n12\nAQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3"
            "vsXM\n\n");
    REFUSED("");

#undef REFUSED
#define REFUSED(l)  assert_int_equal(with_sig(fx, l, &err), FG_ERR_SYNTAX)

    REFUSED("- log1 AAAAAAAA\n");
    REFUSED(DASH "log1 AAAAAAAA");                 /* no newline */
    REFUSED(DASH " AAAAAAAA\n");                   /* empty name */
    REFUSED(DASH "log+1 AAAAAAAA\n");
    REFUSED(DASH "log\xc2\xa0" "1 AAAAAAAA\n");    /* U+00A0 */
    REFUSED(DASH "log\x01 AAAAAAAA\n");
    REFUSED(DASH "log\xff AAAAAAAA\n");            /* not UTF-8 */
    REFUSED(DASH "log1AAAAAAAA\n");
    REFUSED(DASH "log1 AAAA\n");                   /* no signature bytes */
    REFUSED(DASH "log1 AAAAAAB=\n");               /* stray bits */
    REFUSED(DASH "log1 AAAAAAAA \n");
    REFUSED(DASH "log1  AAAAAAAA\n");
    REFUSED(DASH "log1 AAAA-AAA\n");
    REFUSED(DASH "log1 AAAAAAAA\n\n");

#undef REFUSED

    /* someone else's well-formed signature: read, then not trusted */
    assert_int_equal(with_sig(fx, DASH "witness.example/w1 AAAAAAAA\n", &err),
                     FG_ERR_INVALID);
    assert_int_equal(with_sig(fx, DASH "t\xc3\xa9moin AAAAAAAA\n", &err),
                     FG_ERR_INVALID);
}


static void
test_bounds(void **state)
{
    fx_t             *fx = *state;
    fg_checkpoint_t   cp;
    fg_error_t        err;
    fg_buffer_t       b;
    const char       *line;
    size_t            i, n;
    char              big[FG_CHECKPOINT_NOTE_MAX];

    line = sig_line(&fx->note, &n);

    /* 16 signatures (the same, all good) verify; 17 are refused */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, fx->note.data, fx->note.len),
                     FG_OK);
    for (i = 1; i < FG_CHECKPOINT_SIGS_MAX; i++) {
        assert_int_equal(fg_buffer_append(&b, line, n), FG_OK);
    }
    assert_int_equal(check(b.data, b.len, fx->log1_pub, &err), FG_OK);
    assert_int_equal(fg_buffer_append(&b, line, n), FG_OK);
    assert_int_equal(fg_checkpoint_parse(b.data, b.len, &cp, &err),
                     FG_ERR_LIMIT);
    fg_buffer_free(&b);

    /* a note longer than 4 KiB, even one of long signatures */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, fx->note.data, fx->note.len),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&b, DASH "w ", 6), FG_OK);
    memset(big, 'A', sizeof(big));
    i = (FG_CHECKPOINT_NOTE_MAX - b.len - 1) / 4 * 4;
    assert_int_equal(fg_buffer_append(&b, big, i), FG_OK);
    assert_int_equal(fg_buffer_append(&b, "\n", 1), FG_OK);
    assert_true(b.len <= FG_CHECKPOINT_NOTE_MAX);
    assert_true(b.len > FG_CHECKPOINT_NOTE_MAX - 4);
    assert_int_equal(check(b.data, b.len, fx->log1_pub, &err), FG_OK);
    b.len--;
    assert_int_equal(fg_buffer_append(&b, "AAAA\n", 5), FG_OK);
    assert_int_equal(fg_checkpoint_parse(b.data, b.len, &cp, &err),
                     FG_ERR_LIMIT);
    fg_buffer_free(&b);

    /* a long key name: 255 bytes read, 256 refused */
    fg_buffer_init(&b, 0);
    assert_int_equal(fg_buffer_append(&b, fx->note.data, fx->note.len),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&b, DASH, 4), FG_OK);
    memset(big, 'n', FG_CHECKPOINT_NAME_MAX);
    assert_int_equal(fg_buffer_append(&b, big, FG_CHECKPOINT_NAME_MAX),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&b, " AAAAAAAA\n", 10), FG_OK);
    assert_int_equal(check(b.data, b.len, fx->log1_pub, &err), FG_OK);
    b.len = fx->note.len + 4;
    assert_int_equal(fg_buffer_append(&b, big, FG_CHECKPOINT_NAME_MAX),
                     FG_OK);
    assert_int_equal(fg_buffer_append(&b, "n AAAAAAAA\n", 11), FG_OK);
    assert_int_equal(fg_checkpoint_parse(b.data, b.len, &cp, &err),
                     FG_ERR_SYNTAX);
    fg_buffer_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_vector),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grammar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

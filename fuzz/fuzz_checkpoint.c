/*
 * fuzz_checkpoint.c -- libFuzzer target for signed checkpoint notes
 * (fg_checkpoint_parse, fg_checkpoint_verify).
 *
 * Besides "does not crash", on every input that reads: the note text is
 * the input's first bytes and is exactly what the parsed origin, size and
 * hash write (nothing in the text goes unchecked), the bounds hold, and a
 * note that verifies against the fixed key (the RFC 8037 A.1 Ed25519 key,
 * kid "log1") carries a line that OpenSSL alone, from the raw public key,
 * finds signed by it.  The seeds (fuzz/corpus/checkpoint) are notes
 * signed by that key.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fg_checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char  fuzz_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"log1\","
    "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

/* the public key again, raw, for the independent check */
static const unsigned char  fuzz_pub[32] = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3,
    0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
    0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a
};

static fg_keyset_t  *fuzz_set;


/* Does sig sign text under fuzz_pub?  OpenSSL only. */
static int
fuzz_signed(const fg_checkpoint_t *cp, const fg_checkpoint_sig_t *s)
{
    EVP_PKEY    *pkey;
    EVP_MD_CTX  *ctx;
    int          ok;

    if (s->sig_len != 64 || strcmp(s->name, "log1") != 0) {
        return 0;
    }

    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, fuzz_pub, 32);
    ctx = EVP_MD_CTX_new();
    ok = pkey != NULL && ctx != NULL
         && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1
         && EVP_DigestVerify(ctx, s->sig, 64, cp->text, cp->text_len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fg_checkpoint_t   cp;
    fg_error_t        err;
    unsigned char     b64[45];
    char              text[256];
    size_t            i;
    int               n, any;

    if (fuzz_set == NULL) {
        fuzz_set = fg_keyset_from_jwks(fuzz_jwk, sizeof(fuzz_jwk) - 1, &err);
        if (fuzz_set == NULL) {
            abort();
        }
    }

    if (fg_checkpoint_parse(data, size, &cp, &err) != FG_OK) {
        return 0;
    }

    /* the text is the input's, and exactly what its fields write */
    EVP_EncodeBlock(b64, cp.hash, 32);
    n = snprintf(text, sizeof(text), "%s%s\n%llu\n%s\n",
                 FG_CHECKPOINT_ORIGIN_PREFIX, cp.tenant,
                 (unsigned long long) cp.size, (char *) b64);
    if (size > FG_CHECKPOINT_NOTE_MAX
        || !fg_tenant_id_valid(cp.tenant, strlen(cp.tenant))
        || cp.size == 0 || cp.size > FG_CHECKPOINT_SIZE_MAX
        || n <= 0 || (size_t) n != cp.text_len || cp.text_len >= size
        || memcmp(cp.text, data, cp.text_len) != 0
        || memcmp(cp.text, text, cp.text_len) != 0
        || cp.nsigs == 0 || cp.nsigs > FG_CHECKPOINT_SIGS_MAX)
    {
        abort();
    }

    for (i = 0; i < cp.nsigs; i++) {
        if (cp.sigs[i].name[0] == '\0' || cp.sigs[i].sig_len == 0) {
            abort();
        }
    }

    if (fg_checkpoint_verify(&cp, fuzz_set, NULL, &err) != FG_OK) {
        return 0;
    }

    any = 0;
    for (i = 0; i < cp.nsigs; i++) {
        any |= fuzz_signed(&cp, &cp.sigs[i]);
    }
    if (!any) {
        abort();
    }

    return 0;
}

/*
 * fg_checkpoint.c -- signed checkpoints of a tenant's ledger: C2SP
 * tlog-checkpoint notes signed with Ed25519 in C2SP signed-note form
 * (fg_checkpoint.h says the format and what reading refuses).  Base64
 * and Ed25519 are OpenSSL's; the key ids follow the signed-note spec.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "fg_checkpoint.h"
#include "fg_utf8.h"

#define FG_CP_DASH          "\xe2\x80\x94 "     /* U+2014 and a space */
#define FG_CP_DASH_LEN      4
#define FG_CP_ED25519_TYPE  0x01                /* signed-note sig type */
#define FG_CP_HASH_B64_LEN  44                  /* base64 of 32 bytes */
#define FG_CP_SIZE_DIGITS   16                  /* 2^53-1 has 16 */
#define FG_CP_RAW_MAX       (FG_CHECKPOINT_NOTE_MAX / 4 * 3)


/* ------------------------------------------------------------- base64 */

/*
 * Decode standard padded base64 (RFC 4648 section 4) in[0..len) into
 * out, which holds len / 4 * 3 bytes, strictly: its alphabet only,
 * padding only at the end, and the one encoding of its bytes (no stray
 * bits).  Returns the decoded length, or -1.
 */
static int
fg_cp_b64_decode(const unsigned char *in, size_t len, unsigned char *out)
{
    unsigned char  re[FG_CHECKPOINT_NOTE_MAX + 4];
    size_t         i, pad;
    int            n;
    unsigned char  c;

    if (len == 0 || len % 4 != 0 || len > FG_CHECKPOINT_NOTE_MAX) {
        return -1;
    }

    pad = 0;
    for (i = 0; i < len; i++) {
        c = in[i];
        if (c == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (pad > 0
            || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '+' || c == '/'))
        {
            return -1;
        }
    }

    n = EVP_DecodeBlock(out, in, (int) len);
    if (n < 0 || (size_t) n < pad) {
        return -1;
    }
    n -= (int) pad;

    /* the one encoding: encoding the bytes again gives back the text */
    if (EVP_EncodeBlock(re, out, n) != (int) len
        || memcmp(re, in, len) != 0)
    {
        return -1;
    }

    return n;
}


/* --------------------------------------------------------------- keys */

/*
 * 1 if s[0..n) may be a key name as signed notes have them: non-empty,
 * UTF-8, no control character, no Unicode space, no '+'.
 */
static int
fg_cp_name_ok(const unsigned char *s, size_t n)
{
    fg_utf8_error_t  why;
    uint32_t         cp;
    size_t           i, k, at;

    if (n == 0 || n > FG_CHECKPOINT_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < n; i += k) {
        if (s[i] < 0x80) {
            if (s[i] <= 0x20 || s[i] == '+') {
                return 0;
            }
            k = 1;
            continue;
        }

        k = fg_utf8_sequence(s + i, n - i, &cp, &why, &at);
        if (k == 0) {
            return 0;
        }

        /* the White_Space code points above ASCII */
        if (cp == 0x85 || cp == 0xa0 || cp == 0x1680
            || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028
            || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        {
            return 0;
        }
    }

    return 1;
}


/* 1 if kid may name a checkpoint key: printable ASCII, no space, no '+'. */
static int
fg_cp_kid_ok(const char *kid)
{
    size_t  i, n;

    n = strlen(kid);
    if (n == 0 || n > FG_JWK_KID_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (kid[i] < 0x21 || kid[i] > 0x7e || kid[i] == '+') {
            return 0;
        }
    }

    return 1;
}


int
fg_checkpoint_key_id(const fg_jwk_t *key, uint32_t *id, fg_error_t *err)
{
    unsigned char  buf[FG_JWK_KID_MAX + 2 + 32], md[FG_SHA256_LEN];
    const char    *kid;
    EVP_PKEY      *pkey;
    size_t         n, publen;

    pkey = fg_jwk_pkey(key);
    if (fg_jwk_alg(key) != FG_JWS_EDDSA || pkey == NULL) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoints are signed with Ed25519 keys only");
    }

    kid = fg_jwk_kid(key);
    if (!fg_cp_kid_ok(kid)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the key's kid is not a key name (1 to %d "
                            "printable ASCII bytes, no space, no '+')",
                            FG_JWK_KID_MAX);
    }

    /* sha256(key name || "\n" || 0x01 || public key)[:4] */
    n = strlen(kid);
    memcpy(buf, kid, n);
    buf[n++] = '\n';
    buf[n++] = FG_CP_ED25519_TYPE;

    publen = 32;
    if (EVP_PKEY_get_raw_public_key(pkey, buf + n, &publen) != 1
        || publen != 32)
    {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "cannot read the Ed25519 public key");
    }
    n += publen;

    if (fg_sha256(buf, n, md) != FG_OK) {
        return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                            "SHA-256 failed");
    }

    *id = ((uint32_t) md[0] << 24) | ((uint32_t) md[1] << 16)
          | ((uint32_t) md[2] << 8) | (uint32_t) md[3];

    return FG_OK;
}


/* --------------------------------------------------------------- sign */

/* The note text of (tenant, size, hash) into text; its length, or 0. */
static size_t
fg_cp_text(const char *tenant, uint64_t size,
    const unsigned char hash[FG_SHA256_LEN], unsigned char *text,
    size_t cap)
{
    unsigned char  b64[FG_CP_HASH_B64_LEN + 1];
    int            n;

    if (EVP_EncodeBlock(b64, hash, FG_SHA256_LEN) != FG_CP_HASH_B64_LEN) {
        return 0;
    }

    n = snprintf((char *) text, cap, "%s%s\n%llu\n%s\n",
                 FG_CHECKPOINT_ORIGIN_PREFIX, tenant,
                 (unsigned long long) size, (const char *) b64);

    return (n > 0 && (size_t) n < cap) ? (size_t) n : 0;
}


int
fg_checkpoint_sign(const fg_jwk_t *key, const char *tenant,
    uint64_t size, const unsigned char hash[FG_SHA256_LEN], fg_buffer_t *note,
    fg_error_t *err)
{
    unsigned char   text[FG_CHECKPOINT_ORIGIN_MAX + 80];
    unsigned char   blob[4 + FG_CHECKPOINT_ED25519_SIG];
    unsigned char   b64[((sizeof(blob) + 2) / 3) * 4 + 1];
    const char     *kid;
    EVP_MD_CTX     *ctx;
    uint32_t        id;
    size_t          text_len, siglen, start;
    int             rc, n;

    if (!fg_jwk_is_private(key)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "a checkpoint is signed with a private key");
    }

    rc = fg_checkpoint_key_id(key, &id, err);
    if (rc != FG_OK) {
        return rc;
    }

    if (tenant == NULL || !fg_tenant_id_valid(tenant, strlen(tenant))) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint: the tenant is not a tenant id");
    }

    if (size == 0 || size > FG_CHECKPOINT_SIZE_MAX) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint: the size is not a seq (1 to "
                            "2^53-1)");
    }

    text_len = fg_cp_text(tenant, size, hash, text, sizeof(text));
    if (text_len == 0) {
        return fg_error_set(err, FG_ERR_INTERNAL, FG_NO_OFFSET,
                            "checkpoint: cannot write the note text");
    }

    blob[0] = (unsigned char) (id >> 24);
    blob[1] = (unsigned char) (id >> 16);
    blob[2] = (unsigned char) (id >> 8);
    blob[3] = (unsigned char) id;

    ctx = EVP_MD_CTX_new();
    siglen = FG_CHECKPOINT_ED25519_SIG;
    rc = (ctx != NULL
          && EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL,
                                   fg_jwk_pkey(key), NULL) == 1
          && EVP_DigestSign(ctx, blob + 4, &siglen, text, text_len) == 1
          && siglen == FG_CHECKPOINT_ED25519_SIG)
         ? FG_OK : FG_ERR_CRYPTO;
    EVP_MD_CTX_free(ctx);

    if (rc != FG_OK) {
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "checkpoint: Ed25519 signing failed");
    }

    n = EVP_EncodeBlock(b64, blob, (int) sizeof(blob));
    kid = fg_jwk_kid(key);

    /* text, a blank line, "— <kid> <base64>\n" */
    start = note->len;
    rc = fg_buffer_append(note, text, text_len);
    rc = rc ? rc : fg_buffer_append(note, "\n" FG_CP_DASH, 1 + FG_CP_DASH_LEN);
    rc = rc ? rc : fg_buffer_append(note, kid, strlen(kid));
    rc = rc ? rc : fg_buffer_append(note, " ", 1);
    rc = rc ? rc : fg_buffer_append(note, b64, (size_t) n);
    rc = rc ? rc : fg_buffer_append(note, "\n", 1);

    if (rc != FG_OK) {
        note->len = start;
        return fg_error_set(err, rc, FG_NO_OFFSET,
                            "checkpoint: cannot write the note: %s",
                            fg_strerror(rc));
    }

    return FG_OK;
}


/* -------------------------------------------------------------- parse */

/* The end of the line starting at at (its "\n"), or 0 when none. */
static size_t
fg_cp_eol(const unsigned char *p, size_t len, size_t at)
{
    const unsigned char  *nl;

    nl = memchr(p + at, '\n', len - at);
    return nl != NULL ? (size_t) (nl - p) : 0;
}


/* The size line p[at..eol): decimal, no leading zero, 1..2^53-1. */
static int
fg_cp_size(const unsigned char *p, size_t at, size_t eol, uint64_t *size)
{
    uint64_t  v;
    size_t    i;

    if (eol - at == 0 || eol - at > FG_CP_SIZE_DIGITS || p[at] == '0') {
        return FG_ERR_SYNTAX;
    }

    v = 0;
    for (i = at; i < eol; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return FG_ERR_SYNTAX;
        }
        v = v * 10 + (uint64_t) (p[i] - '0');
    }

    if (v > FG_CHECKPOINT_SIZE_MAX) {
        return FG_ERR_SYNTAX;
    }

    *size = v;
    return FG_OK;
}


/* One signature line p[at..eol) into *s. */
static int
fg_cp_sig_line(const unsigned char *p, size_t at, size_t eol,
    fg_checkpoint_sig_t *s, fg_error_t *err)
{
    unsigned char         raw[FG_CP_RAW_MAX];
    const unsigned char  *sp;
    size_t                name;
    int                   n;

    if (eol - at < FG_CP_DASH_LEN
        || memcmp(p + at, FG_CP_DASH, FG_CP_DASH_LEN) != 0)
    {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: a signature line does not start "
                            "with an em dash and a space");
    }

    name = at + FG_CP_DASH_LEN;
    sp = memchr(p + name, ' ', eol - name);
    if (sp == NULL) {
        return fg_error_set(err, FG_ERR_SYNTAX, name,
                            "checkpoint: a signature line has no space "
                            "after its key name");
    }

    if (!fg_cp_name_ok(p + name, (size_t) (sp - p) - name)) {
        return fg_error_set(err, FG_ERR_SYNTAX, name,
                            "checkpoint: a signature's key name is not a "
                            "key name (1 to %d bytes of UTF-8, no space, "
                            "no control, no '+')", FG_CHECKPOINT_NAME_MAX);
    }

    n = fg_cp_b64_decode(sp + 1, (size_t) (p + eol - sp - 1), raw);
    if (n < 5) {
        return fg_error_set(err, FG_ERR_SYNTAX, (size_t) (sp + 1 - p),
                            "checkpoint: a signature is not standard "
                            "base64 of a key id and a signature");
    }

    memcpy(s->name, p + name, (size_t) (sp - p) - name);
    s->name[(size_t) (sp - p) - name] = '\0';
    s->key_id = ((uint32_t) raw[0] << 24) | ((uint32_t) raw[1] << 16)
                | ((uint32_t) raw[2] << 8) | (uint32_t) raw[3];
    s->sig_len = (size_t) n - 4;
    if (s->sig_len == FG_CHECKPOINT_ED25519_SIG) {
        memcpy(s->sig, raw + 4, FG_CHECKPOINT_ED25519_SIG);
    }

    return FG_OK;
}


int
fg_checkpoint_parse(const unsigned char *p, size_t len, fg_checkpoint_t *cp,
    fg_error_t *err)
{
    unsigned char  raw[FG_CP_HASH_B64_LEN / 4 * 3];
    size_t         at, eol, prefix;
    int            rc;

    memset(cp, 0, sizeof(*cp));

    if (len > FG_CHECKPOINT_NOTE_MAX) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_CHECKPOINT_NOTE_MAX,
                            "checkpoint: longer than %d bytes",
                            FG_CHECKPOINT_NOTE_MAX);
    }

    /* origin: foxgov-ledger/<tenant_id> */
    prefix = sizeof(FG_CHECKPOINT_ORIGIN_PREFIX) - 1;
    eol = (len > 0) ? fg_cp_eol(p, len, 0) : 0;
    if (eol <= prefix
        || memcmp(p, FG_CHECKPOINT_ORIGIN_PREFIX, prefix) != 0
        || !fg_tenant_id_valid((const char *) p + prefix, eol - prefix))
    {
        return fg_error_set(err, FG_ERR_SYNTAX, 0,
                            "checkpoint: the first line is not the origin "
                            FG_CHECKPOINT_ORIGIN_PREFIX "<tenant id>");
    }
    memcpy(cp->tenant, p + prefix, eol - prefix);
    cp->tenant[eol - prefix] = '\0';

    /* size */
    at = eol + 1;
    eol = (at < len) ? fg_cp_eol(p, len, at) : 0;
    if (eol == 0 || fg_cp_size(p, at, eol, &cp->size) != FG_OK) {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: the second line is not a size "
                            "(a seq, 1 to 2^53-1, no leading zero)");
    }

    /* hash: the chain at seq size */
    at = eol + 1;
    eol = (at < len) ? fg_cp_eol(p, len, at) : 0;
    if (eol == 0 || eol - at != FG_CP_HASH_B64_LEN
        || fg_cp_b64_decode(p + at, FG_CP_HASH_B64_LEN, raw)
           != FG_SHA256_LEN)
    {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: the third line is not the base64 "
                            "of a 32-byte hash");
    }
    memcpy(cp->hash, raw, FG_SHA256_LEN);

    /* the note text ends here: bounded by the lines read above */
    cp->text_len = eol + 1;
    memcpy(cp->text, p, cp->text_len);

    at = eol + 1;
    if (at == len) {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: no signature");
    }
    if (p[at] != '\n') {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: a line after the hash: extension "
                            "lines are not accepted");
    }
    at++;

    /* signature lines, up to the end */
    while (at < len) {
        if (cp->nsigs == FG_CHECKPOINT_SIGS_MAX) {
            return fg_error_set(err, FG_ERR_LIMIT, at,
                                "checkpoint: more than %d signatures",
                                FG_CHECKPOINT_SIGS_MAX);
        }

        eol = fg_cp_eol(p, len, at);
        if (eol == 0) {
            return fg_error_set(err, FG_ERR_SYNTAX, len,
                                "checkpoint: the last line has no newline");
        }

        rc = fg_cp_sig_line(p, at, eol, &cp->sigs[cp->nsigs], err);
        if (rc != FG_OK) {
            return rc;
        }

        cp->nsigs++;
        at = eol + 1;
    }

    if (cp->nsigs == 0) {
        return fg_error_set(err, FG_ERR_SYNTAX, at,
                            "checkpoint: no signature");
    }

    return FG_OK;
}


/* ------------------------------------------------------------- verify */

/* 1 if sig is key's Ed25519 signature of text, 0 if not, -1 on failure. */
static int
fg_cp_ed25519_ok(const fg_jwk_t *key, const fg_checkpoint_t *cp,
    const fg_checkpoint_sig_t *s)
{
    EVP_MD_CTX  *ctx;
    int          ok;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL
        || EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL,
                                   fg_jwk_pkey(key), NULL) != 1)
    {
        EVP_MD_CTX_free(ctx);
        return -1;
    }

    ok = EVP_DigestVerify(ctx, s->sig, FG_CHECKPOINT_ED25519_SIG, cp->text,
                          cp->text_len) == 1;
    EVP_MD_CTX_free(ctx);

    return ok;
}


int
fg_checkpoint_verify(const fg_checkpoint_t *cp,
    const fg_keyset_t *trusted, const fg_jwk_t **by, fg_error_t *err)
{
    const fg_checkpoint_sig_t  *s;
    const fg_jwk_t             *key, *first;
    fg_error_t                  ignored;
    uint32_t                    id;
    size_t                      i, n;
    char                        names[128];
    int                         ok;

    first = NULL;

    for (i = 0; i < cp->nsigs; i++) {
        s = &cp->sigs[i];

        /* a trusted key is the one whose kid and key id are the line's */
        key = fg_keyset_find(trusted, s->name);
        if (key == NULL || fg_jwk_alg(key) != FG_JWS_EDDSA
            || fg_checkpoint_key_id(key, &id, &ignored) != FG_OK
            || id != s->key_id)
        {
            continue;
        }

        if (s->sig_len != FG_CHECKPOINT_ED25519_SIG) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "checkpoint: the signature by key %s is not "
                                "%d bytes", s->name,
                                FG_CHECKPOINT_ED25519_SIG);
        }

        ok = fg_cp_ed25519_ok(key, cp, s);
        if (ok < 0) {
            return fg_error_set(err, FG_ERR_CRYPTO, FG_NO_OFFSET,
                                "checkpoint: cannot set up Ed25519 "
                                "verification");
        }
        if (!ok) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "checkpoint: the signature by key %s does "
                                "not verify", s->name);
        }

        if (first == NULL) {
            first = key;
        }
    }

    if (first == NULL) {
        /* name who signed it, as far as the message holds them */
        names[0] = '\0';
        for (i = 0, n = 0; i < cp->nsigs && n < sizeof(names); i++) {
            n += (size_t) snprintf(names + n, sizeof(names) - n, "%s%s",
                                   i ? ", " : "", cp->sigs[i].name);
        }
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "checkpoint: no signature by a trusted key "
                            "(signed by %s)", names);
    }

    if (by != NULL) {
        *by = first;
    }

    return FG_OK;
}


void
fg_checkpoint_file_name(uint64_t size,
    char name[FG_CHECKPOINT_FILE_NAME_LEN + 1])
{
    snprintf(name, FG_CHECKPOINT_FILE_NAME_LEN + 1, "%020llu%s",
             (unsigned long long) size, FG_CHECKPOINT_FILE_SUFFIX);
}

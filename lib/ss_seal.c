/* ss_seal.c - the cryptography of sealed records: HKDF-SHA-256 (written
 * here on libcrypto's SHA-256) and AES-256-GCM through OpenSSL's libcrypto. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ss_seal.h"

#define HMAC_BLOCK 64 /* SHA-256's block */
#define HMAC_LEN 32   /* and digest */

/* OpenSSL 3 resolves an algorithm named by EVP_aes_256_gcm() or by a
 * string through its provider tables on every use (locks and lookups, which
 * cost more than sealing a small record). Each algorithm is fetched once per
 * process; a fetched object is immutable and shared by all threads. */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
static EVP_CIPHER *gcm(void)
{
    static volatile void *cached;
    EVP_CIPHER *c = apr_atomic_casptr(&cached, NULL, NULL);

    if (!c) {
        c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        if (c && apr_atomic_casptr(&cached, c, NULL) != NULL) {
            EVP_CIPHER_free(c); /* another thread was first */
            c = apr_atomic_casptr(&cached, NULL, NULL);
        }
    }
    return c;
}
#else
static const EVP_CIPHER *gcm(void)
{
    return EVP_aes_256_gcm();
}
#endif

static const EVP_MD *sha256(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    static volatile void *cached;
    EVP_MD *md = apr_atomic_casptr(&cached, NULL, NULL);

    if (!md) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (md && apr_atomic_casptr(&cached, md, NULL) != NULL) {
            EVP_MD_free(md);
            md = apr_atomic_casptr(&cached, NULL, NULL);
        }
    }
    return md;
#else
    return EVP_sha256();
#endif
}

/* Each thread keeps one AES-256-GCM context and one digest context, made
 * on first use and freed when the thread ends. OpenSSL 3.0 allocates, sets
 * up and frees a provider context with every EVP_*_CTX_new and every init
 * that names the algorithm: in httpd that was most of the CPU sealing cost
 * (perf, prefork, read+write: 6.6 us per request in libcrypto, of which the
 * AES and SHA-256 arithmetic 0.8). The cipher context keeps the last key
 * it was given and is keyed anew only for another: a read+write request
 * opens and seals under one key, and the key schedule and GCM's table are
 * made once (prefork rows: about 1 us of the 6-8 that sealing costs a
 * request). That key stays in the thread until its next key, a failure or
 * its end (in a prefork child, possibly the child's life), as the key
 * schedule of an earlier context did. The digest context is emptied after
 * each seal key's derivation, whose last state is that key. */
typedef struct {
    EVP_CIPHER_CTX *cipher; /* AES-256-GCM set; NULL until used or after a failure */
    EVP_MD_CTX *md;
    unsigned char key[SS_SEAL_KEY_BYTES]; /* the cipher's key, when keyed */
    int keyed;
} thread_ctx_t;

static pthread_key_t ctx_key;
static int ctx_key_made;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void free_thread_ctx(void *data)
{
    thread_ctx_t *t = data;

    EVP_CIPHER_CTX_free(t->cipher);
    EVP_MD_CTX_free(t->md);
    OPENSSL_cleanse(t->key, sizeof(t->key));
    free(t);
}

static void make_ctx_key(void)
{
    ctx_key_made = pthread_key_create(&ctx_key, free_thread_ctx) == 0;
}

/* This thread's contexts; NULL without memory. */
static thread_ctx_t *thread_ctx(void)
{
    thread_ctx_t *t;

    if (pthread_once(&ctx_once, make_ctx_key) != 0 || !ctx_key_made) {
        return NULL;
    }
    t = pthread_getspecific(ctx_key);
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (t && pthread_setspecific(ctx_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

static EVP_MD_CTX *md_ctx(void)
{
    thread_ctx_t *t = thread_ctx();

    if (t && !t->md) {
        t->md = EVP_MD_CTX_new();
    }
    return t ? t->md : NULL;
}

/* The thread's cipher context with AES-256-GCM set up to encrypt (enc 1)
 * or decrypt (0) under key with nonce; NULL if it cannot be. The keys are
 * compared in constant time, so no byte of the last key shows; whether a
 * new key was set does (about 1 us), which tells only that this thread's
 * previous operation was under another session's key. */
static EVP_CIPHER_CTX *cipher_begin(const unsigned char *key, const unsigned char *nonce, int enc)
{
    thread_ctx_t *t = thread_ctx();
    int same;

    if (!t || !gcm()) {
        return NULL;
    }
    if (!t->cipher) {
        t->keyed = 0;
        t->cipher = EVP_CIPHER_CTX_new();
        if (t->cipher && EVP_CipherInit_ex(t->cipher, gcm(), NULL, NULL, NULL, 1) != 1) {
            EVP_CIPHER_CTX_free(t->cipher);
            t->cipher = NULL;
        }
        if (!t->cipher) {
            return NULL;
        }
    }
    same = t->keyed && CRYPTO_memcmp(t->key, key, sizeof(t->key)) == 0;
    if (EVP_CipherInit_ex(t->cipher, NULL, NULL, same ? NULL : key, nonce, enc) != 1) {
        return NULL;
    }
    if (!same) {
        memcpy(t->key, key, sizeof(t->key));
        t->keyed = 1;
    }
    return t->cipher;
}

/* A context an operation failed in is not used again: the next one makes
 * a new one (a record that does not authenticate is the usual case). */
static void cipher_ctx_failed(void)
{
    thread_ctx_t *t = thread_ctx();

    if (t) {
        EVP_CIPHER_CTX_free(t->cipher);
        t->cipher = NULL;
        t->keyed = 0;
        OPENSSL_cleanse(t->key, sizeof(t->key));
    }
}

/* HMAC-SHA-256 (RFC 2104) of the concatenation of nparts parts, with a key
 * of at most one block, on a digest context of the caller's. OpenSSL's own
 * HKDF and HMAC fetch the digest and the MAC by name on every call (about
 * 40,000 instructions per derivation, under callgrind more than the rest of
 * a request's user-space work together); this is four digests of a block or
 * two each with the algorithm fetched once. */
static int hmac_sha256(EVP_MD_CTX *ctx, const EVP_MD *md, const unsigned char *key,
                       apr_size_t key_len, const unsigned char *const *parts,
                       const apr_size_t *lens, int nparts, unsigned char *out)
{
    unsigned char pad[HMAC_BLOCK], inner[HMAC_LEN];
    int i, ok;

    memset(pad, 0x36, sizeof(pad));
    for (i = 0; i < (int)key_len; i++) {
        pad[i] ^= key[i];
    }
    ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1;
    for (i = 0; ok && i < nparts; i++) {
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, inner, NULL) == 1;
    for (i = 0; i < HMAC_BLOCK; i++) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    ok = ok && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
         EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1 &&
         EVP_DigestUpdate(ctx, inner, sizeof(inner)) == 1 &&
         EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    return ok;
}

apr_status_t ss_seal_hkdf(const unsigned char *ikm, apr_size_t ikm_len, const unsigned char *info,
                          apr_size_t info_len, unsigned char *out, apr_size_t out_len)
{
    /* No salt: a block of zeros as the extract's key (RFC 5869, 2.2). */
    static const unsigned char zeros[HMAC_LEN];
    const EVP_MD *md = sha256();
    EVP_MD_CTX *ctx;
    unsigned char prk[HMAC_LEN], t[HMAC_LEN], counter;
    const unsigned char *parts[3];
    apr_size_t lens[3], done;
    int ok;

    if (!md || out_len > 255 * HMAC_LEN) {
        return APR_EGENERAL;
    }
    ctx = md_ctx();
    if (!ctx) {
        return APR_ENOMEM;
    }
    /* Extract: PRK = HMAC(salt, IKM). Expand: T(i) = HMAC(PRK, T(i-1) |
     * info | i), the output their concatenation. */
    parts[0] = ikm;
    lens[0] = ikm_len;
    ok = hmac_sha256(ctx, md, zeros, sizeof(zeros), parts, lens, 1, prk);
    parts[0] = t;
    lens[0] = 0;
    parts[1] = info;
    lens[1] = info_len;
    parts[2] = &counter;
    lens[2] = 1;
    for (done = 0, counter = 1; ok && done < out_len; done += HMAC_LEN, counter++) {
        ok = hmac_sha256(ctx, md, prk, sizeof(prk), parts, lens, 3, t);
        memcpy(out + done, t, out_len - done < HMAC_LEN ? out_len - done : HMAC_LEN);
        lens[0] = HMAC_LEN;
    }
    EVP_MD_CTX_reset(ctx); /* its last state: the last 32 bytes derived */
    OPENSSL_cleanse(prk, sizeof(prk));
    OPENSSL_cleanse(t, sizeof(t));
    if (!ok) {
        OPENSSL_cleanse(out, out_len);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t ss_seal_sha256(const void *data, apr_size_t len, unsigned char *out)
{
    const EVP_MD *md = sha256();
    EVP_MD_CTX *ctx = md_ctx();

    if (!md || !ctx) {
        return APR_ENOMEM;
    }
    return EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1 &&
                   EVP_DigestFinal_ex(ctx, out, NULL) == 1
               ? APR_SUCCESS
               : APR_EGENERAL;
}

apr_status_t ss_seal_key(const char *id, apr_size_t id_len, unsigned char *key)
{
    return ss_seal_hkdf((const unsigned char *)id, id_len, (const unsigned char *)SS_SEAL_INFO,
                        sizeof(SS_SEAL_INFO) - 1, key, SS_SEAL_KEY_BYTES);
}

apr_status_t ss_seal(const unsigned char *key, const unsigned char *aad, apr_size_t aad_len,
                     const unsigned char *const *parts, const apr_size_t *lens, int nparts,
                     unsigned char *out)
{
    EVP_CIPHER_CTX *ctx;
    unsigned char *ct = out + SS_SEAL_NONCE_BYTES;
    int n, i, ok;
    apr_status_t rv;

    /* A random nonce per write: a session's key seals few records, far
     * below the 2^32 at which random 96-bit nonces would risk a repeat. */
    rv = apr_generate_random_bytes(out, SS_SEAL_NONCE_BYTES);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ctx = cipher_begin(key, out, 1);
    if (!ctx) {
        cipher_ctx_failed();
        return APR_EGENERAL;
    }
    ok = EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1;
    for (i = 0; ok && i < nparts; i++) {
        if (lens[i]) {
            ok = EVP_EncryptUpdate(ctx, ct, &n, parts[i], (int)lens[i]) == 1;
            ct += n;
        }
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, ct, &n) == 1;
    ct += ok ? n : 0;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SS_SEAL_TAG_BYTES, ct) == 1;
    if (!ok) {
        cipher_ctx_failed();
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t ss_unseal(const unsigned char *key, const unsigned char *aad, apr_size_t aad_len,
                       const unsigned char *in, apr_size_t in_len, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx;
    apr_size_t ct_len;
    int n, aad_n, ok;

    if (in_len < SS_SEAL_OVERHEAD || in_len - SS_SEAL_OVERHEAD > 0x7fffffff) {
        return APR_EINVAL;
    }
    ct_len = in_len - SS_SEAL_OVERHEAD;
    n = 0;
    ctx = cipher_begin(key, in, 0);
    if (!ctx) {
        cipher_ctx_failed();
        return APR_EGENERAL; /* no cipher: nothing said of the record */
    }
    ok = EVP_DecryptUpdate(ctx, NULL, &aad_n, aad, (int)aad_len) == 1 &&
         (!ct_len || EVP_DecryptUpdate(ctx, out, &n, in + SS_SEAL_NONCE_BYTES, (int)ct_len) == 1) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SS_SEAL_TAG_BYTES,
                             (void *)(in + in_len - SS_SEAL_TAG_BYTES)) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
    if (!ok) {
        cipher_ctx_failed();
        /* Nothing unauthenticated leaves this function. */
        memset(out, 0, ct_len);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

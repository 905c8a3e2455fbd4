/* ss_seal.c - the cryptography of sealed records: HKDF-SHA-256 and
 * AES-256-GCM through OpenSSL's libcrypto. */
#include <string.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#endif

#include "ss_seal.h"

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

static EVP_KDF *hkdf(void)
{
    static volatile void *cached;
    EVP_KDF *k = apr_atomic_casptr(&cached, NULL, NULL);

    if (!k) {
        k = EVP_KDF_fetch(NULL, "HKDF", NULL);
        if (k && apr_atomic_casptr(&cached, k, NULL) != NULL) {
            EVP_KDF_free(k);
            k = apr_atomic_casptr(&cached, NULL, NULL);
        }
    }
    return k;
}

apr_status_t ss_seal_hkdf(const unsigned char *ikm, apr_size_t ikm_len, const unsigned char *info,
                          apr_size_t info_len, unsigned char *out, apr_size_t out_len)
{
    EVP_KDF *kdf = hkdf();
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[4];
    int ok;

    if (!ctx) {
        return APR_EGENERAL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[3] = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? APR_SUCCESS : APR_EGENERAL;
}
#else
static const EVP_CIPHER *gcm(void)
{
    return EVP_aes_256_gcm();
}

apr_status_t ss_seal_hkdf(const unsigned char *ikm, apr_size_t ikm_len, const unsigned char *info,
                          apr_size_t info_len, unsigned char *out, apr_size_t out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = out_len;
    int ok;

    if (!ctx) {
        return APR_EGENERAL;
    }
    ok = EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) > 0 &&
         EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)info_len) > 0 &&
         EVP_PKEY_derive(ctx, out, &len) > 0 && len == out_len;
    EVP_PKEY_CTX_free(ctx);
    return ok ? APR_SUCCESS : APR_EGENERAL;
}
#endif

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
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) {
        return APR_ENOMEM;
    }
    ok = gcm() && EVP_EncryptInit_ex(ctx, gcm(), NULL, key, out) == 1 &&
         EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1;
    for (i = 0; ok && i < nparts; i++) {
        if (lens[i]) {
            ok = EVP_EncryptUpdate(ctx, ct, &n, parts[i], (int)lens[i]) == 1;
            ct += n;
        }
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, ct, &n) == 1;
    ct += ok ? n : 0;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SS_SEAL_TAG_BYTES, ct) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t ss_unseal(const unsigned char *key, const unsigned char *aad, apr_size_t aad_len,
                       const unsigned char *in, apr_size_t in_len, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx;
    apr_size_t ct_len;
    int n, ok;

    if (in_len < SS_SEAL_OVERHEAD || in_len - SS_SEAL_OVERHEAD > 0x7fffffff) {
        return APR_EINVAL;
    }
    ct_len = in_len - SS_SEAL_OVERHEAD;
    n = 0;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) {
        return APR_ENOMEM;
    }
    ok = gcm() && EVP_DecryptInit_ex(ctx, gcm(), NULL, key, in) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
         (!ct_len || EVP_DecryptUpdate(ctx, out, &n, in + SS_SEAL_NONCE_BYTES, (int)ct_len) == 1) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SS_SEAL_TAG_BYTES,
                             (void *)(in + in_len - SS_SEAL_TAG_BYTES)) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        /* Nothing unauthenticated leaves this function. */
        memset(out, 0, ct_len);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* ss_seal.h - the cryptography of sealed records (record format v2).
 *
 * A record's body is sealed with AES-256-GCM under a key derived from the
 * session ID with HKDF-SHA-256: only whoever holds the ID (the browser, and
 * httpd while it serves one of its requests) can read or forge it. The
 * store is keyed by SHA-256 of the ID, so neither the store, its dumps nor
 * its replicas hold the key. ss_record.c lays out what is sealed and
 * authenticated; this file only derives keys, seals and opens. */
#ifndef SS_SEAL_H
#define SS_SEAL_H

#include <apr_errno.h>

#define SS_SEAL_KEY_BYTES 32
#define SS_SEAL_NONCE_BYTES 12
#define SS_SEAL_TAG_BYTES 16
#define SS_SEAL_OVERHEAD (SS_SEAL_NONCE_BYTES + SS_SEAL_TAG_BYTES)
#define SS_SEAL_INFO "mod_sessstore record v2 seal"

/* HKDF-SHA-256 (RFC 5869) with no salt: out_len bytes of output keying
 * material from ikm and info. */
apr_status_t ss_seal_hkdf(const unsigned char *ikm, apr_size_t ikm_len, const unsigned char *info,
                          apr_size_t info_len, unsigned char *out, apr_size_t out_len);

/* SHA-256 of len bytes at data into out (32 bytes), on this thread's digest
 * context: the store key of an ID (ss_id_key). */
apr_status_t ss_seal_sha256(const void *data, apr_size_t len, unsigned char *out);

/* The seal key of a session: HKDF-SHA-256(ikm = the ID string, no salt,
 * info = SS_SEAL_INFO). */
apr_status_t ss_seal_key(const char *id, apr_size_t id_len, unsigned char *key);

/* Seal the concatenation of the nparts parts[i] (lens[i] bytes each) under
 * key, authenticating aad too: out receives a fresh random nonce, the
 * ciphertext (as long as the parts together) and the tag, SS_SEAL_OVERHEAD
 * bytes more than the parts. */
apr_status_t ss_seal(const unsigned char *key, const unsigned char *aad, apr_size_t aad_len,
                     const unsigned char *const *parts, const apr_size_t *lens, int nparts,
                     unsigned char *out);

/* Open in (nonce, ciphertext, tag: in_len bytes, at least SS_SEAL_OVERHEAD)
 * into out (in_len - SS_SEAL_OVERHEAD bytes). APR_EINVAL when it does not
 * authenticate under key and aad: out then holds nothing of it. */
apr_status_t ss_unseal(const unsigned char *key, const unsigned char *aad, apr_size_t aad_len,
                       const unsigned char *in, apr_size_t in_len, unsigned char *out);

#endif

/* test_seal.c - HKDF-SHA-256 against RFC 5869, AES-256-GCM sealing, and
 * the seal key ss_id_key derives from an ID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_thread_proc.h>

#include "ss_id.h"
#include "ss_seal.h"
#include "unit.h"

static void unhex(const char *hex, unsigned char *out, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned int v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* RFC 5869, appendix A.3: no salt (as the module derives), no info. */
static void test_hkdf_rfc5869(void **state)
{
    unsigned char ikm[22], okm[42], expect[42];

    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    /* A.3: salt and info empty. */
    unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
          "9d201395faa4b61a96c8",
          expect, sizeof(expect));
    assert_int_equal(ss_seal_hkdf(ikm, sizeof(ikm), (const unsigned char *)"", 0, okm, sizeof(okm)),
                     APR_SUCCESS);
    assert_memory_equal(okm, expect, sizeof(expect));
}

/* No salt, with info, three blocks of output (the expand's chaining); the
 * expected bytes from OpenSSL's own HKDF (openssl kdf -keylen 80 -kdfopt
 * digest:SHA256 -kdfopt hexkey:0b...0b -kdfopt hexinfo:f0...f9 HKDF). */
static void test_hkdf_info_three_blocks(void **state)
{
    static const unsigned char info[] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4,
                                         0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
    unsigned char ikm[22], okm[80], expect[80];

    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    unhex("abbafb13f5c1bc489d4203135817956dd521b39e3bd61d1cc85cef884d1f8e2e"
          "2ca9c19f23df620dd394b45cb724b6a13b65f2be0e062b21837ac04ce8b9c037"
          "9e90e6983119d83b44fb6e2b558831c8",
          expect, sizeof(expect));
    assert_int_equal(ss_seal_hkdf(ikm, sizeof(ikm), info, sizeof(info), okm, sizeof(okm)),
                     APR_SUCCESS);
    assert_memory_equal(okm, expect, sizeof(expect));
}

/* The seal key of a fixed ID, as OpenSSL's HKDF derived it when records v2
 * were first sealed (openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt
 * key:ID -kdfopt "info:mod_sessstore record v2 seal" HKDF): records sealed
 * then still open. */
static void test_seal_key_known_answer(void **state)
{
    static const char id[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    unsigned char key[SS_SEAL_KEY_BYTES], expect[SS_SEAL_KEY_BYTES];

    (void)state;
    assert_int_equal(sizeof(id) - 1, SS_ID_LEN);
    unhex("688b32618cac20ace0dd6ae46136e9f94e80c0a2d4ba40582d688ff59c2456ae", expect,
          sizeof(expect));
    assert_int_equal(ss_seal_key(id, SS_ID_LEN, key), APR_SUCCESS);
    assert_memory_equal(key, expect, sizeof(expect));
}

/* The seal key is HKDF of the ID with the documented info, and what
 * ss_id_key puts next to the store key. */
static void test_seal_key_of_an_id(void **state)
{
    char id[SS_ID_LEN + 1], other[SS_ID_LEN + 1];
    unsigned char direct[SS_SEAL_KEY_BYTES];
    ss_key_t key, again, key2;

    (void)state;
    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    assert_int_equal(ss_id_generate(other), APR_SUCCESS);
    assert_int_equal(ss_seal_hkdf((const unsigned char *)id, SS_ID_LEN,
                                  (const unsigned char *)"mod_sessstore record v2 seal", 28, direct,
                                  sizeof(direct)),
                     APR_SUCCESS);
    assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
    assert_true(key.sealable);
    assert_memory_equal(key.seal, direct, SS_SEAL_KEY_BYTES);
    assert_int_equal(ss_id_key(id, &again), APR_SUCCESS);
    assert_memory_equal(again.seal, key.seal, SS_SEAL_KEY_BYTES);
    /* Neither the store key nor another ID's seal key. */
    assert_memory_not_equal(key.seal, key.bytes, SS_KEY_BYTES);
    assert_int_equal(ss_id_key(other, &key2), APR_SUCCESS);
    assert_memory_not_equal(key.seal, key2.seal, SS_SEAL_KEY_BYTES);
}

static void test_seal_open(void **state)
{
    static const unsigned char aad[] = "header and store key";
    unsigned char key[SS_SEAL_KEY_BYTES], other[SS_SEAL_KEY_BYTES];
    const unsigned char *parts[3] = {(const unsigned char *)"ab", (const unsigned char *)"",
                                     (const unsigned char *)"cdefg"};
    const apr_size_t lens[3] = {2, 0, 5};
    unsigned char sealed[7 + SS_SEAL_OVERHEAD], clear[7];
    size_t i;

    (void)state;
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    assert_int_equal(ss_seal(key, aad, sizeof(aad), parts, lens, 3, sealed), APR_SUCCESS);
    assert_int_equal(ss_unseal(key, aad, sizeof(aad), sealed, sizeof(sealed), clear), APR_SUCCESS);
    assert_memory_equal(clear, "abcdefg", 7);
    /* Another key, other associated data, any flipped bit: refused, and
     * nothing of the plaintext is left in the output. */
    assert_int_equal(ss_unseal(other, aad, sizeof(aad), sealed, sizeof(sealed), clear), APR_EINVAL);
    assert_memory_equal(clear, "\0\0\0\0\0\0\0", 7);
    assert_int_equal(ss_unseal(key, aad, sizeof(aad) - 1, sealed, sizeof(sealed), clear),
                     APR_EINVAL);
    for (i = 0; i < sizeof(sealed); i++) {
        sealed[i] ^= 0x10;
        assert_int_equal(ss_unseal(key, aad, sizeof(aad), sealed, sizeof(sealed), clear),
                         APR_EINVAL);
        sealed[i] ^= 0x10;
    }
    /* Too short to hold nonce and tag. */
    assert_int_equal(ss_unseal(key, aad, sizeof(aad), sealed, SS_SEAL_OVERHEAD - 1, clear),
                     APR_EINVAL);
    /* An empty plaintext seals to nonce and tag alone. */
    assert_int_equal(ss_seal(key, aad, sizeof(aad), parts, lens, 0, sealed), APR_SUCCESS);
    assert_int_equal(ss_unseal(key, aad, sizeof(aad), sealed, SS_SEAL_OVERHEAD, clear),
                     APR_SUCCESS);
}

/* AES-256-GCM test case 16 of McGrew and Viega's GCM specification. */
static const unsigned char kat_key[SS_SEAL_KEY_BYTES] = {
    0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08,
    0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08};
static const unsigned char kat_aad[20] = {0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe,
                                          0xef, 0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad,
                                          0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2};
/* nonce | ciphertext | tag */
static const unsigned char kat_sealed[12 + 60 + 16] = {
    0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88, 0x52, 0x2d, 0xc1,
    0xf0, 0x99, 0x56, 0x7d, 0x07, 0xf4, 0x7f, 0x37, 0xa3, 0x2a, 0x84, 0x42, 0x7d, 0x64, 0x3a,
    0x8c, 0xdc, 0xbf, 0xe5, 0xc0, 0xc9, 0x75, 0x98, 0xa2, 0xbd, 0x25, 0x55, 0xd1, 0xaa, 0x8c,
    0xb0, 0x8e, 0x48, 0x59, 0x0d, 0xbb, 0x3d, 0xa7, 0xb0, 0x8b, 0x10, 0x56, 0x82, 0x88, 0x38,
    0xc5, 0xf6, 0x1e, 0x63, 0x93, 0xba, 0x7a, 0x0a, 0xbc, 0xc9, 0xf6, 0x62, 0x76, 0xfc, 0x6e,
    0xce, 0x0f, 0x4e, 0x17, 0x68, 0xcd, 0xdf, 0x88, 0x53, 0xbb, 0x2d, 0x55, 0x1b};
static const unsigned char kat_plain[60] = {
    0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26,
    0x9a, 0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31,
    0x8a, 0x72, 0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49,
    0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39};

/* in opens under key to the known answer's plaintext. */
static void assert_opens(const unsigned char *key, const unsigned char *in, apr_size_t len)
{
    unsigned char clear[sizeof(kat_plain)];

    memset(clear, 0, sizeof(clear));
    assert_int_equal(ss_unseal(key, kat_aad, sizeof(kat_aad), in, len, clear), APR_SUCCESS);
    assert_memory_equal(clear, kat_plain, sizeof(kat_plain));
}

/* The thread's cipher context keeps its last key and is keyed anew only
 * for another: whatever ran on it before, under the same key or another,
 * opening and sealing give what a fresh context gives (the known answer). */
static void test_kept_key_known_answer(void **state)
{
    unsigned char other[SS_SEAL_KEY_BYTES], clear[60], mine[60 + SS_SEAL_OVERHEAD];
    const unsigned char *parts[1] = {kat_plain};
    const apr_size_t lens[1] = {sizeof(kat_plain)};
    const apr_size_t n = sizeof(kat_aad);
    int round;

    (void)state;
    memset(other, 0x42, sizeof(other));
    for (round = 0; round < 3; round++) {
        /* Opened twice in a row (the second on the kept key), ... */
        assert_opens(kat_key, kat_sealed, sizeof(kat_sealed));
        assert_opens(kat_key, kat_sealed, sizeof(kat_sealed));
        /* ... sealed on the kept key and opened again ... */
        assert_int_equal(ss_seal(kat_key, kat_aad, n, parts, lens, 1, mine), APR_SUCCESS);
        assert_opens(kat_key, mine, sizeof(mine));
        /* ... the context keyed anew in place by a seal under another key
         * (no failure in between), then back to kat_key and to the other ... */
        assert_int_equal(ss_seal(other, kat_aad, n, parts, lens, 1, mine), APR_SUCCESS);
        assert_opens(kat_key, kat_sealed, sizeof(kat_sealed));
        assert_opens(other, mine, sizeof(mine));
        /* ... and refusals (each frees the context and forgets its key): the
         * other key must not open what kat_key sealed, nor kat_key the other's. */
        assert_int_equal(ss_unseal(other, kat_aad, n, kat_sealed, sizeof(kat_sealed), clear),
                         APR_EINVAL);
        assert_int_equal(ss_seal(other, kat_aad, n, parts, lens, 1, mine), APR_SUCCESS);
        assert_int_equal(ss_unseal(other, kat_aad, n, kat_sealed, sizeof(kat_sealed), clear),
                         APR_EINVAL);
        assert_opens(other, mine, sizeof(mine));
        assert_int_equal(ss_unseal(kat_key, kat_aad, n, mine, sizeof(mine), clear), APR_EINVAL);
    }
}

/* Each thread keeps its own cipher and digest contexts: threads sealing,
 * opening, hashing and deriving under keys of their own at once, with refusals
 * (a wrong key, a flipped bit) in between, get exactly what one thread
 * alone gets. */
#define WORKERS 4
#define ROUNDS 2000

typedef struct {
    int n;
    int failures;
} worker_t;

static void *APR_THREAD_FUNC seal_worker(apr_thread_t *t, void *data)
{
    worker_t *w = data;
    static const char id[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    static const unsigned char expect_key[SS_SEAL_KEY_BYTES] = {
        0x68, 0x8b, 0x32, 0x61, 0x8c, 0xac, 0x20, 0xac, 0xe0, 0xdd, 0x6a,
        0xe4, 0x61, 0x36, 0xe9, 0xf9, 0x4e, 0x80, 0xc0, 0xa2, 0xd4, 0xba,
        0x40, 0x58, 0x2d, 0x68, 0x8f, 0xf5, 0x9c, 0x24, 0x56, 0xae};
    /* SHA-256("abc"), FIPS 180-2 */
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                          0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                          0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                          0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char key[SS_SEAL_KEY_BYTES], other[SS_SEAL_KEY_BYTES], derived[SS_SEAL_KEY_BYTES];
    unsigned char digest[32];
    unsigned char plain[64], sealed[64 + SS_SEAL_OVERHEAD], clear[64];
    const unsigned char *parts[1] = {plain};
    apr_size_t lens[1] = {sizeof(plain)};
    int i;

    (void)t;
    memset(key, w->n + 1, sizeof(key));
    memset(other, w->n + 101, sizeof(other));
    for (i = 0; i < ROUNDS; i++) {
        memset(plain, (w->n << 4) | (i & 15), sizeof(plain));
        if (ss_seal(key, plain, 8, parts, lens, 1, sealed) != APR_SUCCESS ||
            ss_unseal(other, plain, 8, sealed, sizeof(sealed), clear) != APR_EINVAL ||
            ss_unseal(key, plain, 8, sealed, sizeof(sealed), clear) != APR_SUCCESS ||
            memcmp(clear, plain, sizeof(plain)) != 0 ||
            ss_seal_key(id, sizeof(id) - 1, derived) != APR_SUCCESS ||
            memcmp(derived, expect_key, sizeof(derived)) != 0 ||
            ss_seal_sha256("abc", 3, digest) != APR_SUCCESS || memcmp(digest, abc, 32) != 0) {
            w->failures++;
        }
        sealed[i % sizeof(sealed)] ^= 1;
        if (ss_unseal(key, plain, 8, sealed, sizeof(sealed), clear) != APR_EINVAL) {
            w->failures++;
        }
    }
    return NULL; /* not apr_thread_exit: pthread_exit upsets ASan */
}

static void test_threads_keep_their_own_contexts(void **state)
{
    apr_pool_t *p = *state;
    apr_thread_t *t[WORKERS];
    worker_t w[WORKERS];
    apr_status_t trv;
    int i;

    for (i = 0; i < WORKERS; i++) {
        w[i].n = i;
        w[i].failures = 0;
        assert_int_equal(apr_thread_create(&t[i], NULL, seal_worker, &w[i], p), APR_SUCCESS);
    }
    for (i = 0; i < WORKERS; i++) {
        apr_thread_join(&trv, t[i]);
    }
    for (i = 0; i < WORKERS; i++) {
        assert_int_equal(w[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_info_three_blocks),
        cmocka_unit_test(test_seal_key_known_answer),
        cmocka_unit_test(test_seal_key_of_an_id),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_kept_key_known_answer),
        UNIT_POOL_TEST(test_threads_keep_their_own_contexts),
    };

    return UNIT_RUN(tests);
}

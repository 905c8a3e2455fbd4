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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_seal_key_of_an_id),
        cmocka_unit_test(test_seal_open),
    };

    return UNIT_RUN(tests);
}

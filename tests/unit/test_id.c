/* test_id.c - session IDs (generation, validation) and the keys derived from them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <openssl/evp.h>

#include "ss_id.h"
#include "unit.h"

#define N_IDS 10000

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A known-valid ID: 42 'A's then 'A' (value 0, low bits clear). */
static const char valid_id[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, SS_ID_LEN + 1);
}

static void test_generate_shape(void **state)
{
    char buf[SS_ID_LEN + 8];
    int i;

    (void)state;
    for (i = 0; i < 100; i++) {
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(ss_id_generate(buf), APR_SUCCESS);
        assert_int_equal(buf[SS_ID_LEN], '\0');
        assert_int_equal(strlen(buf), SS_ID_LEN);
        assert_int_equal(strspn(buf, alphabet), SS_ID_LEN);
        assert_true(ss_id_is_valid(buf, strlen(buf)));
        /* Nothing written past the terminator. */
        assert_int_equal(buf[SS_ID_LEN + 1], 'x');
    }
}

static void test_generate_distinct(void **state)
{
    char(*ids)[SS_ID_LEN + 1] = malloc((size_t)N_IDS * sizeof(*ids));
    unsigned first_seen[256] = {0}, last_seen[256] = {0};
    int i, distinct_first = 0, distinct_last = 0;

    (void)state;
    assert_non_null(ids);
    for (i = 0; i < N_IDS; i++) {
        assert_int_equal(ss_id_generate(ids[i]), APR_SUCCESS);
        assert_int_equal(strlen(ids[i]), SS_ID_LEN);
        assert_true(ss_id_is_valid(ids[i], SS_ID_LEN));
        first_seen[(unsigned char)ids[i][0]]++;
        last_seen[(unsigned char)ids[i][SS_ID_LEN - 1]]++;
    }
    qsort(ids, N_IDS, sizeof(*ids), cmp_ids);
    for (i = 1; i < N_IDS; i++) {
        assert_string_not_equal(ids[i - 1], ids[i]);
    }
    /* With 10000 random IDs, each of the 64 characters shows up first (and
     * each of the 16 legal last characters shows up last) with certainty for
     * all practical purposes: a generator that drops bits would not. */
    for (i = 0; i < 256; i++) {
        distinct_first += first_seen[i] != 0;
        distinct_last += last_seen[i] != 0;
    }
    assert_int_equal(distinct_first, 64);
    assert_int_equal(distinct_last, 16);
    free(ids);
}

static void test_valid_basic(void **state)
{
    char id[SS_ID_LEN + 1];

    (void)state;
    assert_true(ss_id_is_valid(valid_id, SS_ID_LEN));
    /* Every alphabet character is accepted in the body. */
    memcpy(id, valid_id, sizeof(id));
    memcpy(id, alphabet, 42);
    assert_true(ss_id_is_valid(id, SS_ID_LEN));
    memcpy(id, alphabet + 22, 42);
    assert_true(ss_id_is_valid(id, SS_ID_LEN));
}

static void test_valid_rejects_null(void **state)
{
    (void)state;
    assert_false(ss_id_is_valid(NULL, 0));
    assert_false(ss_id_is_valid(NULL, SS_ID_LEN));
}

static void test_valid_rejects_lengths(void **state)
{
    char buf[SS_ID_LEN + 2];
    apr_size_t len;

    (void)state;
    memset(buf, 'A', sizeof(buf));
    for (len = 0; len <= sizeof(buf); len++) {
        if (len == SS_ID_LEN) {
            assert_true(ss_id_is_valid(buf, len));
        } else {
            assert_false(ss_id_is_valid(buf, len));
        }
    }
    assert_false(ss_id_is_valid("", 0));
    assert_false(ss_id_is_valid(valid_id, 42));
    assert_false(ss_id_is_valid(valid_id, 44));
}

static void test_valid_rejects_alphabet(void **state)
{
    static const char bad[] = {'+', '/', '=', ' ', '\0', '.', '~', '%', '\n', '\t', '\x80', '\xff'};
    char id[SS_ID_LEN + 1];
    size_t k;
    int c, pos;

    (void)state;
    for (k = 0; k < sizeof(bad); k++) {
        for (pos = 0; pos < SS_ID_LEN; pos += 21) {
            memcpy(id, valid_id, sizeof(id));
            id[pos] = bad[k];
            assert_false(ss_id_is_valid(id, SS_ID_LEN));
        }
    }
    /* Exhaustively: a byte in the body is accepted iff it is in the alphabet. */
    for (c = 0; c < 256; c++) {
        memcpy(id, valid_id, sizeof(id));
        id[17] = (char)c;
        assert_int_equal(ss_id_is_valid(id, SS_ID_LEN), c != 0 && strchr(alphabet, c) != NULL);
    }
}

static void test_valid_rejects_nul_inside(void **state)
{
    char id[SS_ID_LEN + 1];

    (void)state;
    memcpy(id, valid_id, sizeof(id));
    id[10] = '\0';
    assert_false(ss_id_is_valid(id, SS_ID_LEN));
    memcpy(id, valid_id, sizeof(id));
    id[SS_ID_LEN - 1] = '\0';
    assert_false(ss_id_is_valid(id, SS_ID_LEN));
}

static void test_valid_last_char_bits(void **state)
{
    char id[SS_ID_LEN + 1];
    int v;

    (void)state;
    memcpy(id, valid_id, sizeof(id));
    id[SS_ID_LEN - 1] = 'B';
    assert_false(ss_id_is_valid(id, SS_ID_LEN));
    id[SS_ID_LEN - 1] = 'E';
    assert_true(ss_id_is_valid(id, SS_ID_LEN));
    id[SS_ID_LEN - 1] = '_';
    assert_false(ss_id_is_valid(id, SS_ID_LEN));
    /* The last character carries 4 bits: only values that are multiples of 4. */
    for (v = 0; v < 64; v++) {
        id[SS_ID_LEN - 1] = alphabet[v];
        assert_int_equal(ss_id_is_valid(id, SS_ID_LEN), (v & 3) == 0);
    }
}

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void test_key_known_vectors(void **state)
{
    ss_key_t key;
    char hex[SS_KEY_HEX_LEN + 1];

    (void)state;
    assert_int_equal(ss_id_key("abc", &key), APR_SUCCESS);
    ss_key_hex(&key, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(key.bytes[0], 0xba);
    assert_int_equal(key.bytes[31], 0xad);

    assert_int_equal(ss_id_key("", &key), APR_SUCCESS);
    ss_key_hex(&key, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_key_matches_sha256_of_id(void **state)
{
    char id[SS_ID_LEN + 1], id2[SS_ID_LEN + 1];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ss_key_t key, again, other;
    int i;

    (void)state;
    for (i = 0; i < 50; i++) {
        assert_int_equal(ss_id_generate(id), APR_SUCCESS);
        assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
        assert_true(EVP_Digest(id, SS_ID_LEN, md, &mdlen, EVP_sha256(), NULL));
        assert_int_equal(mdlen, SS_KEY_BYTES);
        assert_memory_equal(key.bytes, md, SS_KEY_BYTES);
        /* Deterministic. */
        assert_int_equal(ss_id_key(id, &again), APR_SUCCESS);
        assert_memory_equal(key.bytes, again.bytes, SS_KEY_BYTES);
        /* One character changed: a different key. */
        memcpy(id2, id, sizeof(id2));
        id2[5] = id2[5] == 'A' ? 'B' : 'A';
        assert_int_equal(ss_id_key(id2, &other), APR_SUCCESS);
        assert_memory_not_equal(key.bytes, other.bytes, SS_KEY_BYTES);
    }
}

static void test_key_hex_format(void **state)
{
    ss_key_t key;
    char hex[SS_KEY_HEX_LEN + 4], expect[SS_KEY_HEX_LEN + 1];
    int i;

    (void)state;
    for (i = 0; i < SS_KEY_BYTES; i++) {
        key.bytes[i] = (unsigned char)(i * 37 + 0x0f);
    }
    key.bytes[0] = 0x00;
    key.bytes[1] = 0xff;
    key.bytes[2] = 0xa5;
    key.bytes[3] = 0x5a;
    memset(hex, 'x', sizeof(hex));
    ss_key_hex(&key, hex);
    assert_int_equal(hex[SS_KEY_HEX_LEN], '\0');
    assert_int_equal(hex[SS_KEY_HEX_LEN + 1], 'x');
    assert_int_equal(strlen(hex), SS_KEY_HEX_LEN);
    assert_int_equal(strspn(hex, "0123456789abcdef"), SS_KEY_HEX_LEN);
    assert_memory_equal(hex, "00ffa55a", 8);
    hex_of(key.bytes, SS_KEY_BYTES, expect);
    assert_string_equal(hex, expect);
}

static void test_key_tag(void **state)
{
    apr_pool_t *p = *state;
    ss_key_t key;
    const char *tag;
    char hex[SS_KEY_HEX_LEN + 1];

    assert_int_equal(ss_id_key("abc", &key), APR_SUCCESS);
    tag = ss_key_tag(&key, p);
    assert_non_null(tag);
    assert_string_equal(tag, "ba7816bf");

    memset(key.bytes, 0, sizeof(key.bytes));
    key.bytes[0] = 0x01;
    key.bytes[3] = 0xfe;
    key.bytes[4] = 0x99; /* beyond the tag */
    tag = ss_key_tag(&key, p);
    assert_string_equal(tag, "010000fe");
    ss_key_hex(&key, hex);
    assert_memory_equal(hex, tag, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_generate_shape),
        UNIT_POOL_TEST(test_generate_distinct),
        UNIT_POOL_TEST(test_valid_basic),
        UNIT_POOL_TEST(test_valid_rejects_null),
        UNIT_POOL_TEST(test_valid_rejects_lengths),
        UNIT_POOL_TEST(test_valid_rejects_alphabet),
        UNIT_POOL_TEST(test_valid_rejects_nul_inside),
        UNIT_POOL_TEST(test_valid_last_char_bits),
        UNIT_POOL_TEST(test_key_known_vectors),
        UNIT_POOL_TEST(test_key_matches_sha256_of_id),
        UNIT_POOL_TEST(test_key_hex_format),
        UNIT_POOL_TEST(test_key_tag),
    };

    return UNIT_RUN(tests);
}

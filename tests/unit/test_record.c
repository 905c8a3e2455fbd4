/* test_record.c - encoding and decoding of stored sessions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ss_record.h"
#include "unit.h"

#define T_CREATED ((apr_time_t)0x0102030405060708LL)
#define T_ACCESSED ((apr_time_t)0x1112131415161718LL)

static ss_record_t make(const char *user, const char *payload, apr_size_t payload_len)
{
    ss_record_t r;

    r.created = T_CREATED;
    r.accessed = T_ACCESSED;
    r.user = user;
    r.payload = payload;
    r.payload_len = payload_len;
    return r;
}

/* Encode rec, decode it back, and check every field survived. */
static void round_trip(apr_pool_t *p, const ss_record_t *rec)
{
    char *buf = NULL;
    apr_size_t len = 0;
    ss_record_t out;

    assert_int_equal(ss_record_encode(rec, p, &buf, &len), APR_SUCCESS);
    assert_non_null(buf);
    assert_int_equal(len, ss_record_size(rec));
    assert_int_equal(len, SS_RECORD_HEADER_LEN + strlen(rec->user) + rec->payload_len);

    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(ss_record_decode(buf, len, p, &out), APR_SUCCESS);
    assert_int_equal(out.created, rec->created);
    assert_int_equal(out.accessed, rec->accessed);
    assert_string_equal(out.user, rec->user);
    assert_int_equal(out.payload_len, rec->payload_len);
    assert_memory_equal(out.payload, rec->payload, rec->payload_len);
    assert_int_equal(out.payload[out.payload_len], '\0');

    /* The decoded strings are copies: scribbling over buf changes nothing. */
    memset(buf, 'Z', len);
    assert_string_equal(out.user, rec->user);
    assert_memory_equal(out.payload, rec->payload, rec->payload_len);
    assert_int_equal(out.payload[out.payload_len], '\0');
}

static void test_round_trip_basic(void **state)
{
    ss_record_t r = make("alice", "a=1&b=two", 9);

    round_trip(*state, &r);
}

static void test_round_trip_empty_user(void **state)
{
    ss_record_t r = make("", "payload", 7);

    round_trip(*state, &r);
}

static void test_round_trip_empty_payload(void **state)
{
    ss_record_t r = make("bob", "", 0);

    round_trip(*state, &r);
}

static void test_round_trip_all_empty(void **state)
{
    ss_record_t r = make("", "", 0);

    assert_int_equal(ss_record_size(&r), SS_RECORD_HEADER_LEN);
    round_trip(*state, &r);
}

static void test_round_trip_times(void **state)
{
    static const apr_time_t times[] = {
        0, 1, 0xff, 0x100, 0x7fffffffLL, 0x80000000LL, 0xffffffffLL, 0x100000000LL, APR_INT64_MAX};
    ss_record_t r = make("u", "p", 1);
    size_t i, j;

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        for (j = 0; j < sizeof(times) / sizeof(times[0]); j += 3) {
            r.created = times[i];
            r.accessed = times[j];
            round_trip(*state, &r);
        }
    }
}

static void test_round_trip_long_payload(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t n = 1024 * 1024 + 7, i;
    char *payload = apr_palloc(p, n + 1);
    ss_record_t r;

    for (i = 0; i < n; i++) {
        payload[i] = (char)('!' + i % 90);
    }
    payload[n] = '\0';
    r = make("carol", payload, n);
    round_trip(p, &r);
}

static void test_round_trip_user_max(void **state)
{
    apr_pool_t *p = *state;
    char *user = apr_palloc(p, SS_RECORD_USER_MAX + 1);
    ss_record_t r;

    memset(user, 'u', SS_RECORD_USER_MAX);
    user[SS_RECORD_USER_MAX] = '\0';
    r = make(user, "x=y", 3);
    round_trip(p, &r);
}

static void test_encode_user_too_long(void **state)
{
    apr_pool_t *p = *state;
    char *user = apr_palloc(p, SS_RECORD_USER_MAX + 2);
    char *buf = NULL;
    apr_size_t len = 0;
    ss_record_t r;

    memset(user, 'u', SS_RECORD_USER_MAX + 1);
    user[SS_RECORD_USER_MAX + 1] = '\0';
    r = make(user, "x=y", 3);
    assert_int_equal(ss_record_encode(&r, p, &buf, &len), APR_EINVAL);
}

/* The documented layout, byte by byte. */
static void test_encode_layout(void **state)
{
    /* clang-format off */
    static const unsigned char expect[] = {
        'S', 'S', SS_RECORD_VERSION, 0,                 /* magic, version, flags */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* created */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* accessed */
        0x00, 0x03,                                     /* user length */
        0x00, 0x00, 0x00, 0x05,                         /* payload length */
        'b', 'o', 'b',                                  /* user */
        'h', 'e', 'l', 'l', 'o'};                       /* payload */
    /* clang-format on */
    ss_record_t r = make("bob", "hello", 5);
    char *buf = NULL;
    apr_size_t len = 0;

    assert_int_equal(ss_record_encode(&r, *state, &buf, &len), APR_SUCCESS);
    assert_int_equal(len, sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(SS_RECORD_ACCESSED_OFFSET, 12);
    assert_int_equal(SS_RECORD_HEADER_LEN, 26);
}

static void test_encode_large_lengths_layout(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t ulen = 0x1234, plen = 0x012345, i;
    char *user = apr_palloc(p, ulen + 1), *payload = apr_palloc(p, plen + 1);
    ss_record_t r;
    char *buf = NULL;
    apr_size_t len = 0;
    const unsigned char *b;

    for (i = 0; i < ulen; i++) {
        user[i] = 'a' + (char)(i % 26);
    }
    user[ulen] = '\0';
    memset(payload, 'p', plen);
    payload[plen] = '\0';
    r = make(user, payload, plen);
    assert_int_equal(ss_record_encode(&r, p, &buf, &len), APR_SUCCESS);
    b = (const unsigned char *)buf;
    assert_int_equal(b[20], 0x12);
    assert_int_equal(b[21], 0x34);
    assert_int_equal(b[22], 0x00);
    assert_int_equal(b[23], 0x01);
    assert_int_equal(b[24], 0x23);
    assert_int_equal(b[25], 0x45);
    assert_memory_equal(buf + SS_RECORD_HEADER_LEN, user, ulen);
    assert_memory_equal(buf + SS_RECORD_HEADER_LEN + ulen, payload, plen);
}

/* A valid encoding of a small record, in a malloc'd buffer of exactly len
 * bytes so that ASan sees any read past the end. */
static unsigned char *valid_copy(apr_pool_t *p, apr_size_t *len)
{
    ss_record_t r = make("alice", "k=v&k2=v2", 9);
    char *buf = NULL;
    unsigned char *copy;

    assert_int_equal(ss_record_encode(&r, p, &buf, len), APR_SUCCESS);
    copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, buf, *len);
    return copy;
}

static apr_status_t decode_bytes(const unsigned char *b, apr_size_t len, apr_pool_t *p)
{
    ss_record_t out;

    return ss_record_decode((const char *)b, len, p, &out);
}

static void test_decode_valid_copy(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);

    /* The baseline for every rejection below: the unmodified copy decodes. */
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    free(b);
}

static void test_decode_null(void **state)
{
    ss_record_t out;

    assert_int_equal(ss_record_decode(NULL, 0, *state, &out), APR_EINVAL);
    assert_int_equal(ss_record_decode(NULL, 40, *state, &out), APR_EINVAL);
}

static void test_decode_every_truncation(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, cut;
    unsigned char *b = valid_copy(p, &len);

    for (cut = 0; cut < len; cut++) {
        /* A buffer of exactly cut bytes: no slack for an over-read. */
        unsigned char *t = malloc(cut ? cut : 1);

        assert_non_null(t);
        memcpy(t, b, cut);
        assert_int_equal(decode_bytes(t, cut, p), APR_EINVAL);
        free(t);
    }
    free(b);
}

static void test_decode_trailing_byte(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);
    unsigned char *t = malloc(len + 1);

    assert_non_null(t);
    memcpy(t, b, len);
    t[len] = 'x';
    assert_int_equal(decode_bytes(t, len + 1, p), APR_EINVAL);
    t[len] = '\0';
    assert_int_equal(decode_bytes(t, len + 1, p), APR_EINVAL);
    free(t);
    free(b);
}

static void test_decode_bad_magic(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);

    b[0] = 's';
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    b[0] = 'S';
    b[1] = 'T';
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    b[1] = 0;
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    b[1] = 'S';
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    free(b);
}

static void test_decode_bad_version(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);
    int v;

    for (v = 0; v < 256; v++) {
        b[2] = (unsigned char)v;
        /* A newer version is a record another node reads (a rolling
         * upgrade), not garbage. */
        assert_int_equal(decode_bytes(b, len, p), v == SS_RECORD_VERSION  ? APR_SUCCESS
                                                  : v > SS_RECORD_VERSION ? APR_ENOTIMPL
                                                                          : APR_EINVAL);
    }
    free(b);
}

static void test_decode_nonzero_flags(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);
    int bit;

    for (bit = 0; bit < 8; bit++) {
        b[3] = (unsigned char)(1u << bit);
        assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    }
    b[3] = 0xff;
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    b[3] = 0;
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    free(b);
}

static void set_u16(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 8);
    b[1] = (unsigned char)v;
}

static void set_u32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static void test_decode_lengths_must_add_up(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);
    /* user "alice" (5), payload 9: body of 14 bytes. */
    const apr_uint32_t body = (apr_uint32_t)(len - SS_RECORD_HEADER_LEN);
    static const apr_uint32_t users[] = {0, 1, 4, 6, 13, 14, 15, 0x7fff, 0xfffe, 0xffff};
    static const apr_uint32_t payloads[] = {
        0, 1, 8, 10, 13, 14, 15, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffffe, 0xffffffff};
    size_t i, j;

    assert_int_equal(body, 14);
    for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        for (j = 0; j < sizeof(payloads) / sizeof(payloads[0]); j++) {
            set_u16(b + 20, users[i]);
            set_u32(b + 22, payloads[j]);
            if ((apr_uint64_t)users[i] + payloads[j] == body) {
                /* Only a split of the 14 bytes that adds up is accepted. */
                assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
            } else {
                assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
            }
        }
    }
    /* Lengths that only add up modulo 2^32 (an overflowing sum). */
    for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        if (users[i] > body) {
            set_u16(b + 20, users[i]);
            set_u32(b + 22, (apr_uint32_t)(body - users[i]));
            assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
        }
    }
    /* A different split of the same body is accepted and read as such. */
    {
        ss_record_t out;

        set_u16(b + 20, 3);
        set_u32(b + 22, 11);
        assert_int_equal(ss_record_decode((const char *)b, len, p, &out), APR_SUCCESS);
        assert_string_equal(out.user, "ali");
        assert_int_equal(out.payload_len, 11);
        assert_string_equal(out.payload, "cek=v&k2=v2");
    }
    free(b);
}

static void test_decode_hostile_lengths_header_only(void **state)
{
    apr_pool_t *p = *state;
    unsigned char b[SS_RECORD_HEADER_LEN];
    ss_record_t r = make("", "", 0);
    char *buf = NULL;
    apr_size_t len = 0;

    assert_int_equal(ss_record_encode(&r, p, &buf, &len), APR_SUCCESS);
    assert_int_equal(len, sizeof(b));
    memcpy(b, buf, sizeof(b));
    assert_int_equal(decode_bytes(b, sizeof(b), p), APR_SUCCESS);
    set_u32(b + 22, 0xffffffff);
    assert_int_equal(decode_bytes(b, sizeof(b), p), APR_EINVAL);
    set_u32(b + 22, 0);
    set_u16(b + 20, 0xffff);
    assert_int_equal(decode_bytes(b, sizeof(b), p), APR_EINVAL);
    set_u32(b + 22, 1);
    set_u16(b + 20, 0xffff);
    assert_int_equal(decode_bytes(b, sizeof(b), p), APR_EINVAL);
}

static void test_decode_embedded_nul(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, i;
    unsigned char *b = valid_copy(p, &len);

    for (i = SS_RECORD_HEADER_LEN; i < len; i++) {
        unsigned char saved = b[i];

        b[i] = '\0';
        assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
        b[i] = saved;
    }
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    free(b);
}

static void test_peek_times(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, &len);
    apr_time_t created = 0, accessed = 0;

    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_SUCCESS);
    assert_int_equal(created, T_CREATED);
    assert_int_equal(accessed, T_ACCESSED);
    /* The header alone is enough. */
    created = accessed = 0;
    assert_int_equal(ss_record_peek_times(b, SS_RECORD_HEADER_LEN, &created, &accessed),
                     APR_SUCCESS);
    assert_int_equal(created, T_CREATED);
    assert_int_equal(accessed, T_ACCESSED);
    /* Anything shorter, or not a record, is refused. */
    assert_int_equal(ss_record_peek_times(b, SS_RECORD_HEADER_LEN - 1, &created, &accessed),
                     APR_EINVAL);
    assert_int_equal(ss_record_peek_times(b, 0, &created, &accessed), APR_EINVAL);
    b[0] = 'X';
    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_EINVAL);
    b[0] = 'S';
    b[1] = 'X';
    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_EINVAL);
    b[1] = 'S';
    b[2] = 0;
    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_EINVAL);
    b[2] = SS_RECORD_VERSION + 1;
    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_ENOTIMPL);
    free(b);
}

static void test_poke_accessed(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, i;
    unsigned char *b = valid_copy(p, &len);
    unsigned char *orig = malloc(len);
    const apr_time_t t = (apr_time_t)0x2122232425262728LL;
    static const unsigned char expect[8] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};
    apr_time_t created = 0, accessed = 0;
    ss_record_t out;

    assert_non_null(orig);
    memcpy(orig, b, len);
    ss_record_poke_accessed(b, t);
    /* Exactly the 8 bytes at the documented offset changed, big-endian. */
    assert_memory_equal(b + SS_RECORD_ACCESSED_OFFSET, expect, 8);
    for (i = 0; i < len; i++) {
        if (i < SS_RECORD_ACCESSED_OFFSET || i >= SS_RECORD_ACCESSED_OFFSET + 8) {
            assert_int_equal(b[i], orig[i]);
        }
    }
    assert_int_equal(ss_record_peek_times(b, len, &created, &accessed), APR_SUCCESS);
    assert_int_equal(created, T_CREATED);
    assert_int_equal(accessed, t);
    assert_int_equal(ss_record_decode((const char *)b, len, p, &out), APR_SUCCESS);
    assert_int_equal(out.created, T_CREATED);
    assert_int_equal(out.accessed, t);
    assert_string_equal(out.user, "alice");
    assert_string_equal(out.payload, "k=v&k2=v2");
    free(orig);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_round_trip_basic),
        UNIT_POOL_TEST(test_round_trip_empty_user),
        UNIT_POOL_TEST(test_round_trip_empty_payload),
        UNIT_POOL_TEST(test_round_trip_all_empty),
        UNIT_POOL_TEST(test_round_trip_times),
        UNIT_POOL_TEST(test_round_trip_long_payload),
        UNIT_POOL_TEST(test_round_trip_user_max),
        UNIT_POOL_TEST(test_encode_user_too_long),
        UNIT_POOL_TEST(test_encode_layout),
        UNIT_POOL_TEST(test_encode_large_lengths_layout),
        UNIT_POOL_TEST(test_decode_valid_copy),
        UNIT_POOL_TEST(test_decode_null),
        UNIT_POOL_TEST(test_decode_every_truncation),
        UNIT_POOL_TEST(test_decode_trailing_byte),
        UNIT_POOL_TEST(test_decode_bad_magic),
        UNIT_POOL_TEST(test_decode_bad_version),
        UNIT_POOL_TEST(test_decode_nonzero_flags),
        UNIT_POOL_TEST(test_decode_lengths_must_add_up),
        UNIT_POOL_TEST(test_decode_hostile_lengths_header_only),
        UNIT_POOL_TEST(test_decode_embedded_nul),
        UNIT_POOL_TEST(test_peek_times),
        UNIT_POOL_TEST(test_poke_accessed),
    };

    return UNIT_RUN(tests);
}

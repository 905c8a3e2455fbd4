/* test_record.c - encoding and decoding of stored sessions: format v2
 * (unsealed and sealed) and v1. */
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
#define REVISION 0xa1b2c3d4u

static const ss_record_form_e forms[] = {SS_RECORD_FORM_CLEAR, SS_RECORD_FORM_SEALED,
                                         SS_RECORD_FORM_V1};
#define NFORMS (sizeof(forms) / sizeof(forms[0]))

static ss_record_t make(const char *user, const char *payload, apr_size_t payload_len)
{
    ss_record_t r;

    r.created = T_CREATED;
    r.accessed = T_ACCESSED;
    r.user = user;
    r.payload = payload;
    r.payload_len = payload_len;
    r.revision = REVISION;
    return r;
}

/* The key of a fresh ID, as ss_session derives it. */
static ss_key_t fresh_key(void)
{
    char id[SS_ID_LEN + 1];
    ss_key_t key;

    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
    assert_true(key.sealable);
    return key;
}

/* Encode rec in form under key, decode it back, and check every field
 * survived (the revision as the format keeps it). */
static void round_trip(apr_pool_t *p, const ss_record_t *rec, ss_record_form_e form)
{
    ss_key_t key = fresh_key();
    char *buf = NULL;
    apr_size_t len = 0, body = strlen(rec->user) + rec->payload_len;
    ss_record_t out;

    assert_int_equal(ss_record_encode(rec, &key, form, p, &buf, &len), APR_SUCCESS);
    assert_non_null(buf);
    assert_int_equal(len, ss_record_size(rec, form));
    assert_int_equal(len, form == SS_RECORD_FORM_V1       ? SS_RECORD_V1_HEADER_LEN + body
                          : form == SS_RECORD_FORM_SEALED ? SS_RECORD_HEADER_LEN + 2 + 28 + body
                                                          : SS_RECORD_HEADER_LEN + 2 + body);
    assert_int_equal((unsigned char)buf[2], form == SS_RECORD_FORM_V1 ? 1 : 2);
    assert_int_equal(buf[3], form == SS_RECORD_FORM_SEALED ? SS_RECORD_FLAG_SEALED : 0);

    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(ss_record_decode(buf, len, &key, p, &out), APR_SUCCESS);
    assert_int_equal(out.created, rec->created);
    assert_int_equal(out.accessed, rec->accessed);
    assert_int_equal(out.revision, form == SS_RECORD_FORM_V1 ? 0 : rec->revision);
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

static void round_trips(apr_pool_t *p, const ss_record_t *rec)
{
    size_t f;

    for (f = 0; f < NFORMS; f++) {
        round_trip(p, rec, forms[f]);
    }
}

static void test_round_trip_basic(void **state)
{
    ss_record_t r = make("alice", "a=1&b=two", 9);

    round_trips(*state, &r);
}

static void test_round_trip_empty_user(void **state)
{
    ss_record_t r = make("", "payload", 7);

    round_trips(*state, &r);
}

static void test_round_trip_empty_payload(void **state)
{
    ss_record_t r = make("bob", "", 0);

    round_trips(*state, &r);
}

static void test_round_trip_all_empty(void **state)
{
    ss_record_t r = make("", "", 0);

    assert_int_equal(ss_record_size(&r, SS_RECORD_FORM_CLEAR), SS_RECORD_MIN_LEN);
    assert_int_equal(ss_record_size(&r, SS_RECORD_FORM_V1), SS_RECORD_MIN_LEN);
    assert_int_equal(ss_record_size(&r, SS_RECORD_FORM_SEALED), SS_RECORD_SEALED_MIN_LEN);
    round_trips(*state, &r);
}

static void test_round_trip_times_and_revisions(void **state)
{
    static const apr_time_t times[] = {
        0, 1, 0xff, 0x100, 0x7fffffffLL, 0x80000000LL, 0xffffffffLL, 0x100000000LL, APR_INT64_MAX};
    static const apr_uint32_t revisions[] = {0, 1, 0xff, 0x100, 0x7fffffff, 0xffffffff};
    ss_record_t r = make("u", "p", 1);
    size_t i, j;

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        for (j = 0; j < sizeof(times) / sizeof(times[0]); j += 3) {
            r.created = times[i];
            r.accessed = times[j];
            r.revision = revisions[(i + j) % 6];
            round_trips(*state, &r);
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
    round_trips(p, &r);
}

static void test_round_trip_user_max(void **state)
{
    apr_pool_t *p = *state;
    char *user = apr_palloc(p, SS_RECORD_USER_MAX + 1);
    ss_record_t r;

    memset(user, 'u', SS_RECORD_USER_MAX);
    user[SS_RECORD_USER_MAX] = '\0';
    r = make(user, "x=y", 3);
    round_trips(p, &r);
}

static void test_encode_user_too_long(void **state)
{
    apr_pool_t *p = *state;
    char *user = apr_palloc(p, SS_RECORD_USER_MAX + 2);
    char *buf = NULL;
    apr_size_t len = 0, f;
    ss_key_t key = fresh_key();
    ss_record_t r;

    memset(user, 'u', SS_RECORD_USER_MAX + 1);
    user[SS_RECORD_USER_MAX + 1] = '\0';
    r = make(user, "x=y", 3);
    for (f = 0; f < NFORMS; f++) {
        assert_int_equal(ss_record_encode(&r, &key, forms[f], p, &buf, &len), APR_EINVAL);
    }
}

/* Sealing needs the ID's key: a key rebuilt from the store alone never
 * writes (nor silently writes in clear). */
static void test_encode_sealed_needs_the_id(void **state)
{
    apr_pool_t *p = *state;
    ss_record_t r = make("bob", "x=y", 3);
    ss_key_t key = fresh_key();
    char *buf = NULL;
    apr_size_t len = 0;

    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_SEALED, p, &buf, &len), APR_EINVAL);
    key.sealable = 0;
    assert_int_equal(ss_record_encode(&r, &key, SS_RECORD_FORM_SEALED, p, &buf, &len), APR_EINVAL);
    /* The other forms need no key. */
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_CLEAR, p, &buf, &len), APR_SUCCESS);
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_V1, p, &buf, &len), APR_SUCCESS);
}

/* The documented v2 layout, byte by byte. */
static void test_encode_layout_v2(void **state)
{
    /* clang-format off */
    static const unsigned char expect[] = {
        'S', 'S', 2, 0,                                 /* magic, version, flags */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* created */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* accessed */
        0xa1, 0xb2, 0xc3, 0xd4,                         /* revision */
        0x00, 0x03,                                     /* owner length */
        'b', 'o', 'b',                                  /* owner */
        'h', 'e', 'l', 'l', 'o'};                       /* payload */
    /* clang-format on */
    ss_record_t r = make("bob", "hello", 5);
    char *buf = NULL;
    apr_size_t len = 0;

    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_CLEAR, *state, &buf, &len),
                     APR_SUCCESS);
    assert_int_equal(len, sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(SS_RECORD_VERSION, 2);
    assert_int_equal(SS_RECORD_ACCESSED_OFFSET, 12);
    assert_int_equal(SS_RECORD_REVISION_OFFSET, 20);
    assert_int_equal(SS_RECORD_HEADER_LEN, 24);
}

/* The v1 layout of earlier releases, byte by byte. */
static void test_encode_layout_v1(void **state)
{
    /* clang-format off */
    static const unsigned char expect[] = {
        'S', 'S', 1, 0,                                 /* magic, version, flags */
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

    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_V1, *state, &buf, &len),
                     APR_SUCCESS);
    assert_int_equal(len, sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(SS_RECORD_V1_HEADER_LEN, 26);
}

/* Sealed: the header in clear, then nonce, ciphertext and tag; neither the
 * owner nor the payload appears, and every write draws a new nonce. */
static void test_encode_layout_sealed(void **state)
{
    apr_pool_t *p = *state;
    ss_record_t r = make("bob-the-owner", "secret=hunter2", 14);
    ss_key_t key = fresh_key();
    char *a = NULL, *b = NULL, *clear = NULL;
    apr_size_t alen = 0, blen = 0, clen = 0;

    assert_int_equal(ss_record_encode(&r, &key, SS_RECORD_FORM_SEALED, p, &a, &alen), APR_SUCCESS);
    assert_int_equal(ss_record_encode(&r, &key, SS_RECORD_FORM_SEALED, p, &b, &blen), APR_SUCCESS);
    assert_int_equal(ss_record_encode(&r, &key, SS_RECORD_FORM_CLEAR, p, &clear, &clen),
                     APR_SUCCESS);
    assert_int_equal(alen, clen + SS_SEAL_OVERHEAD);
    assert_int_equal(a[3], SS_RECORD_FLAG_SEALED);
    assert_memory_equal(a + 4, clear + 4, SS_RECORD_HEADER_LEN - 4);
    assert_null(memmem(a, alen, "hunter2", 7));
    assert_null(memmem(a, alen, "bob-the-owner", 13));
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, SS_RECORD_HEADER_LEN);
    assert_memory_not_equal(a + SS_RECORD_HEADER_LEN, b + SS_RECORD_HEADER_LEN,
                            SS_SEAL_NONCE_BYTES);
    assert_memory_not_equal(a + SS_RECORD_HEADER_LEN, b + SS_RECORD_HEADER_LEN,
                            alen - SS_RECORD_HEADER_LEN);
}

static void test_encode_large_lengths_layout_v1(void **state)
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
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_V1, p, &buf, &len), APR_SUCCESS);
    b = (const unsigned char *)buf;
    assert_int_equal(b[20], 0x12);
    assert_int_equal(b[21], 0x34);
    assert_int_equal(b[22], 0x00);
    assert_int_equal(b[23], 0x01);
    assert_int_equal(b[24], 0x23);
    assert_int_equal(b[25], 0x45);
    assert_memory_equal(buf + SS_RECORD_V1_HEADER_LEN, user, ulen);
    assert_memory_equal(buf + SS_RECORD_V1_HEADER_LEN + ulen, payload, plen);
    /* v2 in clear: the owner length right after the header. */
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_CLEAR, p, &buf, &len), APR_SUCCESS);
    b = (const unsigned char *)buf;
    assert_int_equal(b[24], 0x12);
    assert_int_equal(b[25], 0x34);
    assert_memory_equal(buf + 26, user, ulen);
    assert_memory_equal(buf + 26 + ulen, payload, plen);
}

/* The key every copy below is sealed under. */
static ss_key_t copy_key;

/* A valid encoding of a small record in form, in a malloc'd buffer of
 * exactly len bytes so that ASan sees any read past the end. */
static unsigned char *valid_copy(apr_pool_t *p, ss_record_form_e form, apr_size_t *len)
{
    ss_record_t r = make("alice", "k=v&k2=v2", 9);
    char *buf = NULL;
    unsigned char *copy;

    copy_key = fresh_key();
    assert_int_equal(ss_record_encode(&r, &copy_key, form, p, &buf, len), APR_SUCCESS);
    copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, buf, *len);
    return copy;
}

static apr_status_t decode_bytes(const unsigned char *b, apr_size_t len, apr_pool_t *p)
{
    ss_record_t out;

    return ss_record_decode((const char *)b, len, &copy_key, p, &out);
}

static void test_decode_valid_copy(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;

    /* The baseline for every rejection below: the unmodified copy decodes. */
    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);

        assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
        free(b);
    }
}

static void test_decode_null(void **state)
{
    ss_record_t out;

    assert_int_equal(ss_record_decode(NULL, 0, NULL, *state, &out), APR_EINVAL);
    assert_int_equal(ss_record_decode(NULL, 40, NULL, *state, &out), APR_EINVAL);
}

/* A buffer of exactly cut bytes of b: no slack for an over-read. */
static apr_status_t decode_cut(const unsigned char *b, apr_size_t cut, apr_pool_t *p)
{
    unsigned char *t = malloc(cut ? cut : 1);
    apr_status_t rv;

    assert_non_null(t);
    memcpy(t, b, cut);
    rv = decode_bytes(t, cut, p);
    free(t);
    return rv;
}

/* v1 and sealed records refuse every truncation. A v2 record in clear has
 * no payload length (the payload runs to the end of the value): cut inside
 * the header or the owner it is refused, cut inside the payload it reads as
 * a shorter payload (sealing is what detects that). */
static void test_decode_every_truncation(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, cut, f;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);

        for (cut = 0; cut < len; cut++) {
            apr_status_t expect = APR_EINVAL;

            if (forms[f] == SS_RECORD_FORM_CLEAR && cut >= SS_RECORD_HEADER_LEN + 2 + 5) {
                expect = APR_SUCCESS;
            }
            assert_int_equal(decode_cut(b, cut, p), expect);
        }
        free(b);
    }
}

static void test_decode_trailing_byte(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);
        unsigned char *t = malloc(len + 1);
        apr_status_t expect = forms[f] == SS_RECORD_FORM_CLEAR ? APR_SUCCESS : APR_EINVAL;

        assert_non_null(t);
        memcpy(t, b, len);
        t[len] = 'x';
        assert_int_equal(decode_bytes(t, len + 1, p), expect);
        t[len] = '\0';
        assert_int_equal(decode_bytes(t, len + 1, p), APR_EINVAL); /* a NUL, or sealed */
        free(t);
        free(b);
    }
}

static void test_decode_bad_magic(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);

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
}

static void test_decode_bad_version(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;
    int v;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);
        int mine = forms[f] == SS_RECORD_FORM_V1 ? 1 : 2;

        for (v = 0; v < 256; v++) {
            b[2] = (unsigned char)v;
            /* A newer version is a record another node reads (a rolling
             * upgrade), not garbage. Read as v1, these v2 records do not add
             * up; this v1 record, read as v2, does (an owner length of 9):
             * the version byte decides, nothing else. */
            apr_status_t expect = v == mine                                 ? APR_SUCCESS
                                  : v > SS_RECORD_VERSION                   ? APR_ENOTIMPL
                                  : v == 2 && forms[f] == SS_RECORD_FORM_V1 ? APR_SUCCESS
                                                                            : APR_EINVAL;

            assert_int_equal(decode_bytes(b, len, p), expect);
        }
        free(b);
    }
}

static void test_decode_flags(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;
    int bit;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);
        unsigned char mine = b[3];

        for (bit = 1; bit < 8; bit++) {
            b[3] = (unsigned char)(mine | (1u << bit));
            assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
        }
        b[3] = 0xff;
        assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
        b[3] = mine;
        assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
        free(b);
    }
}

/* A record in clear claiming to be sealed does not authenticate; v1 has no
 * flags at all. */
static void test_decode_sealed_flag_on_clear(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, SS_RECORD_FORM_CLEAR, &len);
    unsigned char *v1;

    b[3] = SS_RECORD_FLAG_SEALED;
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    free(b);
    v1 = valid_copy(p, SS_RECORD_FORM_V1, &len);
    v1[3] = SS_RECORD_FLAG_SEALED;
    assert_int_equal(decode_bytes(v1, len, p), APR_EINVAL);
    free(v1);
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

static void test_decode_v1_lengths_must_add_up(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, SS_RECORD_FORM_V1, &len);
    /* user "alice" (5), payload 9: body of 14 bytes. */
    const apr_uint32_t body = (apr_uint32_t)(len - SS_RECORD_V1_HEADER_LEN);
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
        assert_int_equal(ss_record_decode((const char *)b, len, NULL, p, &out), APR_SUCCESS);
        assert_string_equal(out.user, "ali");
        assert_int_equal(out.payload_len, 11);
        assert_string_equal(out.payload, "cek=v&k2=v2");
        assert_int_equal(out.revision, 0);
    }
    free(b);
}

/* v2 in clear: every owner length that does not fit the value is refused;
 * one that fits reads as that split. */
static void test_decode_v2_owner_length(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len;
    unsigned char *b = valid_copy(p, SS_RECORD_FORM_CLEAR, &len);
    const apr_uint32_t body = (apr_uint32_t)(len - SS_RECORD_HEADER_LEN - 2);
    apr_uint32_t u;
    ss_record_t out;

    assert_int_equal(body, 14);
    for (u = 0; u <= 0xffff; u++) {
        set_u16(b + SS_RECORD_HEADER_LEN, u);
        assert_int_equal(decode_bytes(b, len, p), u <= body ? APR_SUCCESS : APR_EINVAL);
    }
    set_u16(b + SS_RECORD_HEADER_LEN, 3);
    assert_int_equal(ss_record_decode((const char *)b, len, NULL, p, &out), APR_SUCCESS);
    assert_string_equal(out.user, "ali");
    assert_string_equal(out.payload, "cek=v&k2=v2");
    free(b);
}

/* Headers alone, or hostile ones: too short for any record, for a sealed
 * one, lengths beyond the value. */
static void test_decode_hostile_headers(void **state)
{
    apr_pool_t *p = *state;
    unsigned char b[SS_RECORD_SEALED_MIN_LEN + 1];
    ss_record_t r = make("", "", 0);
    char *buf = NULL;
    apr_size_t len = 0, n;

    /* The empty v2 record in clear: header and a zero owner length. */
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_CLEAR, p, &buf, &len), APR_SUCCESS);
    assert_int_equal(len, SS_RECORD_MIN_LEN);
    memcpy(b, buf, len);
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    for (n = 0; n < SS_RECORD_MIN_LEN; n++) {
        assert_int_equal(decode_cut(b, n, p), APR_EINVAL); /* the header alone, and less */
    }
    set_u16(b + SS_RECORD_HEADER_LEN, 1);
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    set_u16(b + SS_RECORD_HEADER_LEN, 0xffff);
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    /* Flagged sealed: too short to hold nonce, owner length and tag. */
    memset(b + SS_RECORD_HEADER_LEN, 0, sizeof(b) - SS_RECORD_HEADER_LEN);
    b[3] = SS_RECORD_FLAG_SEALED;
    for (n = 0; n < SS_RECORD_SEALED_MIN_LEN; n++) {
        assert_int_equal(decode_cut(b, n, p), APR_EINVAL);
    }
    /* Long enough, but all zeros: does not authenticate. */
    assert_int_equal(decode_bytes(b, SS_RECORD_SEALED_MIN_LEN, p), APR_EINVAL);
    assert_int_equal(decode_bytes(b, sizeof(b), p), APR_EINVAL);
    /* v1: lengths beyond the value. */
    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_V1, p, &buf, &len), APR_SUCCESS);
    memcpy(b, buf, len);
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    set_u32(b + 22, 0xffffffff);
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    set_u32(b + 22, 0);
    set_u16(b + 20, 0xffff);
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
    set_u32(b + 22, 1);
    assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
}

static void test_decode_embedded_nul(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, i, f;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b;
        apr_size_t from;

        if (forms[f] == SS_RECORD_FORM_SEALED) {
            continue; /* any change to a sealed body fails: see the tamper test */
        }
        b = valid_copy(p, forms[f], &len);
        from = forms[f] == SS_RECORD_FORM_V1 ? SS_RECORD_V1_HEADER_LEN : SS_RECORD_HEADER_LEN + 2;
        for (i = from; i < len; i++) {
            unsigned char saved = b[i];

            b[i] = '\0';
            assert_int_equal(decode_bytes(b, len, p), APR_EINVAL);
            b[i] = saved;
        }
        assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
        free(b);
    }
}

/* Sealed: a change anywhere but the accessed time (bytes 12..19, rewritten
 * in place by a touch) is refused: header, nonce, ciphertext, tag. */
static void test_decode_sealed_tamper_every_byte(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, i;
    unsigned char *b = valid_copy(p, SS_RECORD_FORM_SEALED, &len);
    int bit;

    for (i = 0; i < len; i++) {
        int accessed = i >= SS_RECORD_ACCESSED_OFFSET && i < SS_RECORD_ACCESSED_OFFSET + 8;

        for (bit = 0; bit < 8; bit += 7) {
            apr_status_t rv;

            b[i] ^= (unsigned char)(1u << bit);
            rv = decode_bytes(b, len, p);
            if (accessed) {
                assert_int_equal(rv, APR_SUCCESS);
            } else if (i == 2 && b[i] > SS_RECORD_VERSION) {
                assert_int_equal(rv, APR_ENOTIMPL);
            } else {
                assert_int_equal(rv, APR_EINVAL);
            }
            b[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(decode_bytes(b, len, p), APR_SUCCESS);
    free(b);
}

/* A sealed record opens only under the key of its own ID: not another ID's,
 * not its seal key bound to another store key (the authenticated data), not
 * another record's body moved under it, and not without the ID at all. */
static void test_decode_sealed_wrong_keys(void **state)
{
    apr_pool_t *p = *state;
    ss_record_t ra = make("alice", "a=1", 3), rb = make("bobby", "b=2", 3), out;
    ss_key_t ka = fresh_key(), kb = fresh_key(), mixed;
    char *a = NULL, *b = NULL;
    apr_size_t alen = 0, blen = 0;

    rb.revision = ra.revision + 1; /* headers differ in the revision alone */
    assert_int_equal(ss_record_encode(&ra, &ka, SS_RECORD_FORM_SEALED, p, &a, &alen), APR_SUCCESS);
    assert_int_equal(ss_record_encode(&rb, &kb, SS_RECORD_FORM_SEALED, p, &b, &blen), APR_SUCCESS);
    assert_int_equal(ss_record_decode(a, alen, &ka, p, &out), APR_SUCCESS);
    assert_int_equal(ss_record_decode(b, blen, &kb, p, &out), APR_SUCCESS);
    /* Swapped between the two keys. */
    assert_int_equal(ss_record_decode(a, alen, &kb, p, &out), APR_EINVAL);
    assert_int_equal(ss_record_decode(b, blen, &ka, p, &out), APR_EINVAL);
    /* The right seal key, another store key: the AAD binds the record to
     * where it is stored. */
    mixed = ka;
    memcpy(mixed.bytes, kb.bytes, SS_KEY_BYTES);
    assert_int_equal(ss_record_decode(a, alen, &mixed, p, &out), APR_EINVAL);
    mixed = ka;
    mixed.bytes[31] ^= 1;
    assert_int_equal(ss_record_decode(a, alen, &mixed, p, &out), APR_EINVAL);
    /* The right store key, another ID's seal key. */
    mixed = ka;
    memcpy(mixed.seal, kb.seal, SS_SEAL_KEY_BYTES);
    assert_int_equal(ss_record_decode(a, alen, &mixed, p, &out), APR_EINVAL);
    /* b's sealed body under a's header: bound to neither key. */
    assert_int_equal(alen, blen);
    memcpy(a + SS_RECORD_HEADER_LEN, b + SS_RECORD_HEADER_LEN, alen - SS_RECORD_HEADER_LEN);
    assert_int_equal(ss_record_decode(a, alen, &ka, p, &out), APR_EINVAL);
    assert_int_equal(ss_record_decode(a, alen, &kb, p, &out), APR_EINVAL);
    /* A key rebuilt from the store alone: not malformed, just closed. */
    mixed = kb;
    mixed.sealable = 0;
    assert_int_equal(ss_record_decode(b, blen, &mixed, p, &out), SS_RECORD_ENOKEY);
    assert_int_equal(ss_record_decode(b, blen, NULL, p, &out), SS_RECORD_ENOKEY);
}

static void test_decode_v1_reads_as_revision_0(void **state)
{
    apr_pool_t *p = *state;
    ss_record_t r = make("alice", "x=1", 3), out;
    ss_record_head_t head;
    char *buf = NULL;
    apr_size_t len = 0;

    assert_int_equal(ss_record_encode(&r, NULL, SS_RECORD_FORM_V1, p, &buf, &len), APR_SUCCESS);
    assert_int_equal(ss_record_decode(buf, len, NULL, p, &out), APR_SUCCESS);
    assert_int_equal(out.revision, 0);
    assert_int_equal(ss_record_peek((unsigned char *)buf, len, &head), APR_SUCCESS);
    assert_int_equal(head.version, 1);
    assert_int_equal(head.revision, 0);
}

static void test_peek(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;
    ss_record_head_t head;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);
        apr_size_t need =
            forms[f] == SS_RECORD_FORM_SEALED ? SS_RECORD_SEALED_MIN_LEN : SS_RECORD_MIN_LEN;

        memset(&head, 0xa5, sizeof(head));
        assert_int_equal(ss_record_peek(b, len, &head), APR_SUCCESS);
        assert_int_equal(head.version, forms[f] == SS_RECORD_FORM_V1 ? 1 : 2);
        assert_int_equal(head.flags, forms[f] == SS_RECORD_FORM_SEALED ? 1 : 0);
        assert_int_equal(head.created, T_CREATED);
        assert_int_equal(head.accessed, T_ACCESSED);
        assert_int_equal(head.revision, forms[f] == SS_RECORD_FORM_V1 ? 0 : REVISION);
        /* The shortest value its version allows is enough; less is refused. */
        assert_int_equal(ss_record_peek(b, need, &head), APR_SUCCESS);
        assert_int_equal(ss_record_peek(b, need - 1, &head), APR_EINVAL);
        assert_int_equal(ss_record_peek(b, 0, &head), APR_EINVAL);
        assert_int_equal(ss_record_peek(NULL, len, &head), APR_EINVAL);
        b[0] = 'X';
        assert_int_equal(ss_record_peek(b, len, &head), APR_EINVAL);
        b[0] = 'S';
        b[2] = 0;
        assert_int_equal(ss_record_peek(b, len, &head), APR_EINVAL);
        b[2] = SS_RECORD_VERSION + 1;
        assert_int_equal(ss_record_peek(b, len, &head), APR_ENOTIMPL);
        free(b);
    }
}

static void test_is_sealed(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, f;

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);

        assert_int_equal(ss_record_is_sealed((char *)b, len), forms[f] == SS_RECORD_FORM_SEALED);
        b[0] = 'X'; /* not a record: not sealed */
        assert_int_equal(ss_record_is_sealed((char *)b, len), 0);
        free(b);
    }
}

static void test_poke_accessed(void **state)
{
    apr_pool_t *p = *state;
    apr_size_t len, i, f;
    const apr_time_t t = (apr_time_t)0x2122232425262728LL;
    static const unsigned char expect[8] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};

    for (f = 0; f < NFORMS; f++) {
        unsigned char *b = valid_copy(p, forms[f], &len);
        unsigned char *orig = malloc(len);
        ss_record_head_t head;
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
        assert_int_equal(ss_record_peek(b, len, &head), APR_SUCCESS);
        assert_int_equal(head.created, T_CREATED);
        assert_int_equal(head.accessed, t);
        /* A sealed record still opens: the touch needs no key. */
        assert_int_equal(ss_record_decode((const char *)b, len, &copy_key, p, &out), APR_SUCCESS);
        assert_int_equal(out.created, T_CREATED);
        assert_int_equal(out.accessed, t);
        assert_string_equal(out.user, "alice");
        assert_string_equal(out.payload, "k=v&k2=v2");
        free(orig);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_round_trip_basic),
        UNIT_POOL_TEST(test_round_trip_empty_user),
        UNIT_POOL_TEST(test_round_trip_empty_payload),
        UNIT_POOL_TEST(test_round_trip_all_empty),
        UNIT_POOL_TEST(test_round_trip_times_and_revisions),
        UNIT_POOL_TEST(test_round_trip_long_payload),
        UNIT_POOL_TEST(test_round_trip_user_max),
        UNIT_POOL_TEST(test_encode_user_too_long),
        UNIT_POOL_TEST(test_encode_sealed_needs_the_id),
        UNIT_POOL_TEST(test_encode_layout_v2),
        UNIT_POOL_TEST(test_encode_layout_v1),
        UNIT_POOL_TEST(test_encode_layout_sealed),
        UNIT_POOL_TEST(test_encode_large_lengths_layout_v1),
        UNIT_POOL_TEST(test_decode_valid_copy),
        UNIT_POOL_TEST(test_decode_null),
        UNIT_POOL_TEST(test_decode_every_truncation),
        UNIT_POOL_TEST(test_decode_trailing_byte),
        UNIT_POOL_TEST(test_decode_bad_magic),
        UNIT_POOL_TEST(test_decode_bad_version),
        UNIT_POOL_TEST(test_decode_flags),
        UNIT_POOL_TEST(test_decode_sealed_flag_on_clear),
        UNIT_POOL_TEST(test_decode_v1_lengths_must_add_up),
        UNIT_POOL_TEST(test_decode_v2_owner_length),
        UNIT_POOL_TEST(test_decode_hostile_headers),
        UNIT_POOL_TEST(test_decode_embedded_nul),
        UNIT_POOL_TEST(test_decode_sealed_tamper_every_byte),
        UNIT_POOL_TEST(test_decode_sealed_wrong_keys),
        UNIT_POOL_TEST(test_decode_v1_reads_as_revision_0),
        UNIT_POOL_TEST(test_peek),
        UNIT_POOL_TEST(test_is_sealed),
        UNIT_POOL_TEST(test_poke_accessed),
    };

    return UNIT_RUN(tests);
}

/* test_merge.c - parsing mod_session's identity encoding, a request's change,
 * and its merge into the session as the store holds it now (ss_merge). */
#include "unit.h"

#include <apr_base64.h>
#include <apr_escape.h>
#include <apr_general.h>

#include "ss_merge.h"

/* The entries of t as "k1:v1|k2:v2" (decoded), to compare with one string. */
static const char *dump(const apr_table_t *t, apr_pool_t *p)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    const char *out = "";
    int i;

    for (i = 0; i < arr->nelts; i++) {
        out = apr_pstrcat(p, out, i ? "|" : "", e[i].key, ":", e[i].val, NULL);
    }
    return out;
}

static const char *parsed(const char *payload, apr_pool_t *p)
{
    apr_table_t *t = NULL;

    assert_int_equal(ss_merge_parse(payload, p, &t), APR_SUCCESS);
    assert_non_null(t);
    return dump(t, p);
}

static void refused(const char *payload, apr_pool_t *p)
{
    apr_table_t *t = (apr_table_t *)1;

    if (ss_merge_parse(payload, p, &t) != APR_EINVAL) {
        fail_msg("parsed as a session, should not have: '%s'", payload ? payload : "(null)");
    }
    assert_null(t);
}

/* The payload a request leaves when it changed loaded into now, written
 * over current. */
static const char *merge(const char *loaded, const char *now, const char *current, apr_pool_t *p)
{
    ss_merge_change_t *c;
    const char *merged;

    assert_int_equal(ss_merge_diff(loaded, now, p, &c), APR_SUCCESS);
    assert_int_equal(ss_merge_apply(c, current, p, &merged), APR_SUCCESS);
    return merged;
}

static void test_parse_in_order(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(parsed("a=1", p), "a:1");
    assert_string_equal(parsed("b=2&a=1&c=3", p), "b:2|a:1|c:3");
    assert_string_equal(parsed("user=alice&expiry=1700000000000000", p),
                        "user:alice|expiry:1700000000000000");
}

static void test_parse_escapes(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(parsed("k%20x=v+w%26%3D%2B", p), "k x:v w&=+");
    assert_string_equal(parsed("a=%C3%A9t%C3%a9", p), "a:\xc3\xa9t\xc3\xa9");
    assert_string_equal(parsed("a.b-c_d~e*=x", p), "a.b-c_d~e*:x");
    assert_string_equal(parsed("path=%2Fhome%2Fuser", p), "path:/home/user");
}

static void test_parse_empty_values(void **state)
{
    apr_pool_t *p = *state;

    /* mod_session: an empty value is no entry, and removes an earlier one. */
    assert_string_equal(parsed("a=&b=2", p), "b:2");
    assert_string_equal(parsed("a=1&b=2&a=", p), "b:2");
    assert_string_equal(parsed("b=2&a=", p), "b:2");
}

static void test_parse_duplicate_keys(void **state)
{
    apr_pool_t *p = *state;

    /* The later value wins, in the place of the first (apr_table_set). */
    assert_string_equal(parsed("a=1&b=2&a=3", p), "a:3|b:2");
    /* Keys are case-insensitive, as in mod_session's table. */
    assert_string_equal(parsed("A=1&a=2", p), "A:2");
    assert_string_equal(parsed("a%20b=1&a+b=2", p), "a b:2");
}

static void test_parse_refuses_what_is_not_a_session(void **state)
{
    apr_pool_t *p = *state;
    static const char *bad[] = {
        "",      "abc",   "=x",    "a=b=c",      "a=1&",    "&a=1",  "a=1&&b=2", "a=%zz",
        "a=%4",  "a=%",   "%=1",   "a=%00",      "a%00b=1", "a/b=1", "a=1/2",    "a=",
        "a=&b=", "a b=1", "a=1\n", "a=\xc3\xa9", "a=1;b=2", "a=1&b",
    };
    size_t i;

    refused(NULL, p);
    for (i = 0; i < UNIT_COUNT(bad); i++) {
        refused(bad[i], p);
    }
}

/* mod_session_crypto stores base64 ciphertext: never taken for a session,
 * whatever its length or bytes. */
static void test_parse_refuses_base64(void **state)
{
    apr_pool_t *p = *state;
    unsigned char raw[200];
    int round;

    refused("U2FsdGVkX1+/abc=", p);
    refused("U2FsdGVkX1+abcd==", p);
    refused("U2FsdGVkX1+abcd", p);
    refused("U2FsdGVkX1+abc=", p);
    for (round = 0; round < 2000; round++) {
        char *b64;
        int len = 1 + round % (int)sizeof(raw);

        assert_int_equal(apr_generate_random_bytes(raw, (apr_size_t)len), APR_SUCCESS);
        b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len(len));
        apr_base64_encode(b64, (const char *)raw, len);
        refused(b64, p);
    }
}

/* Whatever bytes a key or value holds, the encoding parses back to them,
 * and it is exactly APR's urlencoding, which mod_session's encoder is. */
static void test_encode_round_trip(void **state)
{
    apr_pool_t *p = *state;
    char all[256];
    apr_table_t *t = apr_table_make(p, 4), *back;
    const char *enc;
    int c;

    for (c = 1; c < 256; c++) {
        all[c - 1] = (char)c;
    }
    all[255] = '\0';
    apr_table_set(t, "k", all);
    apr_table_set(t, all, "v");
    apr_table_set(t, "sp ace", "a+b & c=d");
    enc = ss_merge_encode(t, p);
    assert_string_equal(enc, apr_pstrcat(p, "k=", apr_pescape_urlencoded(p, all), "&",
                                         apr_pescape_urlencoded(p, all),
                                         "=v&sp+ace=a%2bb+%26+c%3dd", NULL));
    assert_int_equal(ss_merge_parse(enc, p, &back), APR_SUCCESS);
    assert_string_equal(dump(back, p), dump(t, p));
}

static void test_diff(void **state)
{
    apr_pool_t *p = *state;
    ss_merge_change_t *c;

    assert_int_equal(ss_merge_diff("a=1&b=2&c=3", "a=1&b=9&d=4", p, &c), APR_SUCCESS);
    assert_string_equal(dump(c->set, p), "b:9|d:4");
    assert_int_equal(c->removed->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(c->removed, 0, const char *), "c");
    assert_false(ss_merge_change_empty(c));

    /* The same entries in another order, another spelling: no change. */
    assert_int_equal(ss_merge_diff("a=1&b=x+y", "b=x%20y&a=1", p, &c), APR_SUCCESS);
    assert_true(ss_merge_change_empty(c));

    /* A key emptied is a key removed. */
    assert_int_equal(ss_merge_diff("a=1&b=2", "a=1&b=", p, &c), APR_SUCCESS);
    assert_true(apr_is_empty_table(c->set));
    assert_int_equal(c->removed->nelts, 1);

    assert_int_equal(ss_merge_diff("a=1", "U2FsdGVkX1+abcd==", p, &c), APR_EINVAL);
    assert_null(c);
    assert_int_equal(ss_merge_diff("U2Fsd/GVkX1+ab", "a=1", p, &c), APR_EINVAL);
    assert_null(c);
}

static void test_disjoint_keys_both_win(void **state)
{
    apr_pool_t *p = *state;

    /* Both loaded a=0&b=0; the other request wrote b=2 first, this one a=1. */
    assert_string_equal(merge("a=0&b=0", "a=1&b=0", "a=0&b=2", p), "a=1&b=2");
    /* A key added by each. */
    assert_string_equal(merge("u=x", "u=x&a=1", "u=x&b=2", p), "u=x&b=2&a=1");
}

static void test_same_key_later_write_wins(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(merge("a=0&b=0", "a=1&b=0", "a=2&b=5", p), "a=1&b=5");
    /* This request left a unchanged: the other's value stays. */
    assert_string_equal(merge("a=0&b=0", "a=0&b=1", "a=2&b=0", p), "a=2&b=1");
}

static void test_removed_keys(void **state)
{
    apr_pool_t *p = *state;

    /* Removed here, changed there: the later write (this removal) wins. */
    assert_string_equal(merge("a=0&b=0", "b=0", "a=7&b=0&c=1", p), "b=0&c=1");
    /* Removed there, untouched here: stays removed. */
    assert_string_equal(merge("a=0&b=0", "a=0&b=1", "a=0", p), "a=0&b=1");
    /* Removed there, changed here: this write brings the key back. */
    assert_string_equal(merge("a=0&b=0", "a=0&b=1", "a=0&c=2", p), "a=0&c=2&b=1");
    /* Removed on both sides, and the last data key: an empty session. */
    assert_string_equal(merge("a=0&b=0", "b=0", "a=0", p), "");
}

static void test_expiry_never_moves_back(void **state)
{
    apr_pool_t *p = *state;

    /* This (slow) request set a deadline before the other's later one. */
    assert_string_equal(merge("a=0&expiry=100", "a=1&expiry=200", "a=0&expiry=300", p),
                        "a=1&expiry=300");
    /* Its own is the later one. */
    assert_string_equal(merge("a=0&expiry=100", "a=1&expiry=400", "a=0&expiry=300", p),
                        "a=1&expiry=400");
    /* Left alone here, moved there. */
    assert_string_equal(merge("a=0&expiry=100", "a=1&expiry=100", "a=0&expiry=300", p),
                        "a=1&expiry=300");
    /* Set here only (SessionMaxAge new on this location). */
    assert_string_equal(merge("a=0", "a=1&expiry=500", "a=0", p), "a=1&expiry=500");
}

static void test_escaped_entries_survive_a_merge(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *t;

    assert_string_equal(merge("a=0&n=x+y", "a=1&n=x+y", "a=0&n=x+y&m=%26%3D", p),
                        "a=1&n=x+y&m=%26%3d");
    assert_int_equal(ss_merge_parse(merge("a=0", "a=%2F%26", "a=0&b=%C3%A9", p), p, &t),
                     APR_SUCCESS);
    assert_string_equal(dump(t, p), "a:/&|b:\xc3\xa9");
}

static void test_apply_refuses_a_current_it_cannot_read(void **state)
{
    apr_pool_t *p = *state;
    ss_merge_change_t *c;
    const char *merged = "x";

    assert_int_equal(ss_merge_diff("a=0", "a=1", p, &c), APR_SUCCESS);
    assert_int_equal(ss_merge_apply(c, "U2FsdGVkX1+abcd==", p, &merged), APR_EINVAL);
    assert_null(merged);
    assert_int_equal(ss_merge_apply(c, NULL, p, &merged), APR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_parse_in_order),
        UNIT_POOL_TEST(test_parse_escapes),
        UNIT_POOL_TEST(test_parse_empty_values),
        UNIT_POOL_TEST(test_parse_duplicate_keys),
        UNIT_POOL_TEST(test_parse_refuses_what_is_not_a_session),
        UNIT_POOL_TEST(test_parse_refuses_base64),
        UNIT_POOL_TEST(test_encode_round_trip),
        UNIT_POOL_TEST(test_diff),
        UNIT_POOL_TEST(test_disjoint_keys_both_win),
        UNIT_POOL_TEST(test_same_key_later_write_wins),
        UNIT_POOL_TEST(test_removed_keys),
        UNIT_POOL_TEST(test_expiry_never_moves_back),
        UNIT_POOL_TEST(test_escaped_entries_survive_a_merge),
        UNIT_POOL_TEST(test_apply_refuses_a_current_it_cannot_read),
    };

    return UNIT_RUN(tests);
}

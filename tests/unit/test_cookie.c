/* test_cookie.c - cookie attributes, Set-Cookie and Cookie parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ss_cookie.h"
#include "unit.h"

static const char *header_for(const char *attrs, const char *value, int https, apr_pool_t *p)
{
    ss_cookie_t c;

    assert_null(ss_cookie_configure(&c, "sid", attrs, p));
    return ss_cookie_header(&c, value, https, p);
}

static void test_defaults(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(header_for(NULL, "ID", 0, p), "sid=ID; Path=/; HttpOnly; SameSite=Lax");
    assert_string_equal(header_for("", "ID", 1, p),
                        "sid=ID; Path=/; HttpOnly; Secure; SameSite=Lax");
}

static void test_attributes_keep_defaults(void **state)
{
    apr_pool_t *p = *state;

    /* httpd's ap_cookie_write drops HttpOnly as soon as one attribute is given. */
    assert_string_equal(header_for("Path=/app; Domain=example.com", "ID", 0, p),
                        "sid=ID; Path=/app; Domain=example.com; HttpOnly; SameSite=Lax");
    assert_string_equal(header_for("SameSite=Strict", "ID", 0, p),
                        "sid=ID; Path=/; HttpOnly; SameSite=Strict");
}

static void test_overrides(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(header_for("Secure", "ID", 0, p),
                        "sid=ID; Path=/; HttpOnly; Secure; SameSite=Lax");
    assert_string_equal(header_for("!Secure", "ID", 1, p),
                        "sid=ID; Path=/; HttpOnly; SameSite=Lax");
    assert_string_equal(header_for("!HttpOnly;!SameSite", "ID", 0, p), "sid=ID; Path=/");
    assert_string_equal(header_for("SameSite=None;Secure", "ID", 0, p),
                        "sid=ID; Path=/; HttpOnly; Secure; SameSite=None");
    assert_string_equal(header_for("Max-Age=600;Partitioned", "ID", 0, p),
                        "sid=ID; Path=/; Max-Age=600; Partitioned; HttpOnly; SameSite=Lax");
}

static void test_removal(void **state)
{
    apr_pool_t *p = *state;
    const char *h = header_for("Path=/app", NULL, 0, p);

    assert_string_equal(h, "sid=; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                           "HttpOnly; SameSite=Lax");
}

static void test_bad_configuration(void **state)
{
    apr_pool_t *p = *state;
    ss_cookie_t c;
    static const char *bad_attrs[] = {"Foo=bar",       "Foo",   "SameSite=Weird", "SameSite=None",
                                      "Path=relative", "Path=", "Max-Age=ten",    "Domain=a\tb"};
    size_t i;

    assert_non_null(ss_cookie_configure(&c, "", NULL, p));
    assert_non_null(ss_cookie_configure(&c, NULL, NULL, p));
    assert_non_null(ss_cookie_configure(&c, "a;b", NULL, p));
    assert_non_null(ss_cookie_configure(&c, "a b", NULL, p));
    assert_non_null(ss_cookie_configure(&c, "a=b", NULL, p));
    for (i = 0; i < sizeof(bad_attrs) / sizeof(bad_attrs[0]); i++) {
        assert_non_null(ss_cookie_configure(&c, "sid", bad_attrs[i], p));
    }
    assert_non_null(strstr(ss_cookie_configure(&c, "sid", "Foo=bar", p), "Foo"));
}

static apr_array_header_t *values_of(const char *header, const char *name, apr_pool_t *p)
{
    apr_array_header_t *v = apr_array_make(p, 2, sizeof(const char *));

    ss_cookie_values(header, name, v);
    return v;
}

static void test_values(void **state)
{
    apr_pool_t *p = *state;
    apr_array_header_t *v;

    v = values_of("a=1; sid=X; b=2", "sid", p);
    assert_int_equal(v->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(v, 0, const char *), "X");

    /* One cookie per matching path: all of them, in order. */
    v = values_of("sid=first;sid=second ;  sid=third", "sid", p);
    assert_int_equal(v->nelts, 3);
    assert_string_equal(APR_ARRAY_IDX(v, 0, const char *), "first");
    assert_string_equal(APR_ARRAY_IDX(v, 1, const char *), "second");
    assert_string_equal(APR_ARRAY_IDX(v, 2, const char *), "third");

    /* Prefixes and suffixes of the name are other cookies. */
    v = values_of("xsid=1; sidx=2; sid", "sid", p);
    assert_int_equal(v->nelts, 0);

    v = values_of("sid=; other=x", "sid", p);
    assert_int_equal(v->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(v, 0, const char *), "");

    v = values_of("", "sid", p);
    assert_int_equal(v->nelts, 0);
    v = values_of(";;;", "sid", p);
    assert_int_equal(v->nelts, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_defaults),          UNIT_POOL_TEST(test_attributes_keep_defaults),
        UNIT_POOL_TEST(test_overrides),         UNIT_POOL_TEST(test_removal),
        UNIT_POOL_TEST(test_bad_configuration), UNIT_POOL_TEST(test_values),
    };

    return UNIT_RUN_NAMED("cookie", tests);
}

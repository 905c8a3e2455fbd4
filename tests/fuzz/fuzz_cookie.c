/* fuzz_cookie.c - the Cookie header scan (ss_cookie_values) and the cookie
 * directive's parser (ss_cookie_configure, ss_cookie_header).
 *
 * Input: one byte n, then n % 48 bytes of cookie name, one byte m, then m % 64
 * bytes of attributes (SessionStoreCookieAttributes), then the Cookie
 * header. Checks: every value found sits inside the header and holds no
 * separator and no trailing space; a session cookie appended to the header
 * is found as the last value; a Set-Cookie line is built only for a name and
 * attributes that configure accepted, and it never carries a line break. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "fuzz.h"
#include "ss_cookie.h"

/* A value as the module writes it: 43 base64url characters. */
#define SESSION_VALUE "n0nEuYzTXXjS8Ugx3hoiEXxOyUVLIoC3tEsR5_4lVq0"

static const char *take(fuzz_reader_t *r, unsigned n, apr_pool_t *p)
{
    apr_size_t left = r->size - (r->pos < r->size ? r->pos : r->size);
    const char *s;

    if (n > left) {
        n = (unsigned)left;
    }
    s = apr_pstrmemdup(p, (const char *)r->data + r->pos, n); /* stops at a NUL, as C would */
    r->pos += n;
    return s;
}

static void check_values(const char *header, const char *name, apr_pool_t *p)
{
    apr_array_header_t *values = apr_array_make(p, 2, sizeof(const char *));
    apr_size_t separators = 0;
    const char *s;
    int i;

    for (s = header; *s; s++) {
        separators += *s == ';' || *s == ',';
    }
    ss_cookie_values(header, name, values);
    FUZZ_CHECK((apr_size_t)values->nelts <= separators + 1, "%d values from %lu separators",
               values->nelts, (unsigned long)separators);
    for (i = 0; i < values->nelts; i++) {
        const char *v = APR_ARRAY_IDX(values, i, const char *);
        apr_size_t n = strlen(v);

        FUZZ_CHECK(strpbrk(v, ";,") == NULL, "value '%s' holds a separator", v);
        FUZZ_CHECK(n == 0 || !apr_isspace(v[n - 1]), "value '%s' ends in a space", v);
        FUZZ_CHECK(strstr(header, v) != NULL, "value '%s' is not in the header", v);
    }
}

/* Whatever precedes it, a cookie appended after "; " is found, and last. */
static void check_appended(const char *header, const char *name, apr_pool_t *p)
{
    apr_array_header_t *values = apr_array_make(p, 2, sizeof(const char *));
    const char *joined = apr_pstrcat(p, header, "; ", name, "=", SESSION_VALUE, NULL);
    const char *last;

    ss_cookie_values(joined, name, values);
    FUZZ_CHECK(values->nelts >= 1, "the appended cookie %s was not found", name);
    last = APR_ARRAY_IDX(values, values->nelts - 1, const char *);
    FUZZ_CHECK(!strcmp(last, SESSION_VALUE), "the last value is '%s'", last);
}

static void check_set_cookie(const ss_cookie_t *c, int https, apr_pool_t *p)
{
    const char *set = ss_cookie_header(c, SESSION_VALUE, https, p);
    const char *del = ss_cookie_header(c, NULL, https, p);
    const char *prefix = apr_pstrcat(p, c->name, "=", SESSION_VALUE, "; Path=", NULL);

    FUZZ_CHECK(!strncmp(set, prefix, strlen(prefix)), "Set-Cookie '%s'", set);
    FUZZ_CHECK(strpbrk(set, "\r\n") == NULL && strpbrk(del, "\r\n") == NULL,
               "a line break in '%s' or '%s'", set, del);
    FUZZ_CHECK(strstr(del, "; Max-Age=0") != NULL, "deletion '%s'", del);
    FUZZ_CHECK((strstr(set, "; HttpOnly") != NULL) == (c->httponly != 0), "HttpOnly in '%s'", set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_reader_t r;
    const char *name, *attrs, *header, *err;
    ss_cookie_t c;

    fuzz_reader_init(&r, data, size);
    name = take(&r, fuzz_u8(&r) % 48, p);
    attrs = take(&r, fuzz_u8(&r) % 64, p);
    header = take(&r, (unsigned)size, p);

    /* The scan is only ever given a configured name. */
    if (ss_cookie_configure(&c, name, NULL, p) != NULL) {
        name = "session";
    }
    check_values(header, name, p);
    check_appended(header, name, p);

    err = ss_cookie_configure(&c, name, attrs, p);
    if (err == NULL) {
        check_set_cookie(&c, 0, p);
        check_set_cookie(&c, 1, p);
    } else {
        FUZZ_CHECK(*err != '\0', "an empty error message for '%s'", attrs);
    }
    apr_pool_destroy(p);
    return 0;
}

/* ss_cookie.h - the session cookie: attributes, Set-Cookie, Cookie parsing.
 *
 * httpd's ap_cookie_* drop their safe defaults as soon as one attribute is
 * given and know nothing of SameSite. Here the defaults always hold unless an
 * attribute overrides them: Path=/, HttpOnly, SameSite=Lax, and Secure on
 * HTTPS requests. "!HttpOnly", "!SameSite" and "!Secure" switch one off;
 * "Secure" forces it on (for TLS terminated in front of httpd). */
#ifndef SS_COOKIE_H
#define SS_COOKIE_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef enum { SS_SECURE_AUTO = 0, SS_SECURE_ALWAYS, SS_SECURE_NEVER } ss_cookie_secure_e;

typedef struct {
    const char *name;
    const char *path;     /* "/" unless given */
    const char *extra;    /* Domain, Max-Age, Expires, Partitioned: "; A=b" each, or "" */
    const char *samesite; /* NULL when switched off */
    int httponly;
    ss_cookie_secure_e secure;
} ss_cookie_t;

/* Parse name and the ';'-separated attributes (attrs may be NULL). Returns
 * NULL, or an error message saying what is wrong. */
const char *ss_cookie_configure(ss_cookie_t *c, const char *name, const char *attrs, apr_pool_t *p);

/* The Set-Cookie value that sets value, or deletes the cookie when value is
 * NULL. https says whether the request came over TLS. */
const char *ss_cookie_header(const ss_cookie_t *c, const char *value, int https, apr_pool_t *p);

/* Append every value of cookie "name" found in one Cookie header to values
 * (an array of const char *). Browsers send one cookie per path that
 * matches, so there can be several. Both ';' and ',' separate cookies (httpd
 * merges repeated Cookie headers into one, joined with ", "). */
void ss_cookie_values(const char *header, const char *name, apr_array_header_t *values);

#endif

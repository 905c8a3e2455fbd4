/* ss_cookie.c - the session cookie: attributes, Set-Cookie, Cookie parsing. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_cookie.h"

/* RFC 6265 cookie-name is an RFC 7230 token. */
static int is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isgraph(*s) || strchr("()<>@,;:\\\"/[]?={}", *s)) {
            return 0;
        }
    }
    return 1;
}

/* Attribute values: printable, no ';' (it would start a new attribute). */
static int is_attr_value(const char *s)
{
    for (; *s; s++) {
        if (!apr_isprint(*s) || *s == ';') {
            return 0;
        }
    }
    return 1;
}

static char *trim(char *s)
{
    char *end;

    while (apr_isspace(*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && apr_isspace(end[-1])) {
        *--end = '\0';
    }
    return s;
}

static const char *add_attribute(ss_cookie_t *c, char *attr, apr_pool_t *p)
{
    char *value = strchr(attr, '=');

    if (value) {
        *value++ = '\0';
        value = trim(value);
        attr = trim(attr);
    }
    if (!value) {
        if (!strcasecmp(attr, "HttpOnly")) {
            c->httponly = 1;
        } else if (!strcasecmp(attr, "!HttpOnly")) {
            c->httponly = 0;
        } else if (!strcasecmp(attr, "Secure")) {
            c->secure = SS_SECURE_ALWAYS;
        } else if (!strcasecmp(attr, "!Secure")) {
            c->secure = SS_SECURE_NEVER;
        } else if (!strcasecmp(attr, "!SameSite")) {
            c->samesite = NULL;
        } else if (!strcasecmp(attr, "Partitioned")) {
            c->extra = apr_pstrcat(p, c->extra, "; Partitioned", NULL);
        } else {
            return apr_psprintf(p, "unknown cookie attribute '%s'", attr);
        }
        return NULL;
    }
    if (!*value || !is_attr_value(value)) {
        return apr_psprintf(p, "cookie attribute %s has an empty or invalid value", attr);
    }
    if (!strcasecmp(attr, "Path")) {
        if (value[0] != '/') {
            return apr_psprintf(p, "cookie Path must start with '/', not '%s'", value);
        }
        c->path = apr_pstrdup(p, value);
    } else if (!strcasecmp(attr, "SameSite")) {
        if (strcasecmp(value, "Strict") && strcasecmp(value, "Lax") && strcasecmp(value, "None")) {
            return apr_psprintf(p, "SameSite must be Strict, Lax or None, not '%s'", value);
        }
        c->samesite = apr_pstrdup(p, value);
    } else if (!strcasecmp(attr, "Domain")) {
        c->extra = apr_pstrcat(p, c->extra, "; Domain=", value, NULL);
    } else if (!strcasecmp(attr, "Max-Age")) {
        if (strspn(value, "0123456789") != strlen(value)) {
            return apr_psprintf(p, "cookie Max-Age must be a number of seconds, not '%s'", value);
        }
        c->extra = apr_pstrcat(p, c->extra, "; Max-Age=", value, NULL);
    } else if (!strcasecmp(attr, "Expires")) {
        c->extra = apr_pstrcat(p, c->extra, "; Expires=", value, NULL);
    } else {
        return apr_psprintf(p, "unknown cookie attribute '%s'", attr);
    }
    return NULL;
}

const char *ss_cookie_configure(ss_cookie_t *c, const char *name, const char *attrs, apr_pool_t *p)
{
    char *list, *attr, *state = NULL;
    const char *err;

    memset(c, 0, sizeof(*c));
    if (!name || !is_token(name)) {
        return apr_psprintf(p, "'%s' is not a valid cookie name", name ? name : "");
    }
    c->name = apr_pstrdup(p, name);
    c->path = "/";
    c->extra = "";
    c->samesite = "Lax";
    c->httponly = 1;
    c->secure = SS_SECURE_AUTO;
    list = apr_pstrdup(p, attrs ? attrs : "");
    for (attr = apr_strtok(list, ";", &state); attr; attr = apr_strtok(NULL, ";", &state)) {
        attr = trim(attr);
        if (!*attr) {
            continue;
        }
        err = add_attribute(c, attr, p);
        if (err) {
            return err;
        }
    }
    if (c->samesite && !strcasecmp(c->samesite, "None") && c->secure != SS_SECURE_ALWAYS) {
        return "SameSite=None needs the Secure attribute too (browsers reject it otherwise)";
    }
    return NULL;
}

const char *ss_cookie_header(const ss_cookie_t *c, const char *value, int https, apr_pool_t *p)
{
    int secure = c->secure == SS_SECURE_ALWAYS || (c->secure == SS_SECURE_AUTO && https);

    return apr_pstrcat(p, c->name, "=", value ? value : "", "; Path=", c->path, c->extra,
                       value ? "" : "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                       c->httponly ? "; HttpOnly" : "", secure ? "; Secure" : "",
                       c->samesite ? "; SameSite=" : "", c->samesite ? c->samesite : "", NULL);
}

void ss_cookie_values(const char *header, const char *name, apr_array_header_t *values)
{
    apr_size_t name_len = strlen(name);
    const char *s = header;

    /* ',' separates too: httpd joins repeated Cookie headers with ", ", and
     * no valid cookie value (RFC 6265 cookie-octet) contains one. */
    while (s && *s) {
        const char *end = strpbrk(s, ";,");
        apr_size_t len = end ? (apr_size_t)(end - s) : strlen(s);

        while (len && apr_isspace(*s)) {
            s++;
            len--;
        }
        if (len > name_len && !strncmp(s, name, name_len) && s[name_len] == '=') {
            const char *v = s + name_len + 1;
            apr_size_t vlen = len - name_len - 1;

            while (vlen && apr_isspace(v[vlen - 1])) {
                vlen--;
            }
            APR_ARRAY_PUSH(values, const char *) = apr_pstrmemdup(values->pool, v, vlen);
        }
        s = end ? end + 1 : NULL;
    }
}

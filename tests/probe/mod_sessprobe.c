/* mod_sessprobe.c - a session probe for tests and the benchmark. Never
 * installed: built by "make check" only (check_LTLIBRARIES).
 *
 * It goes through mod_session's public API (ap_session_get/ap_session_set,
 * looked up as optional functions), so it measures and tests whatever session
 * provider is configured: mod_session_cookie, mod_session_dbd, mod_sessstore.
 *
 *   <Location /probe>
 *       SetHandler sessprobe
 *   </Location>
 *
 *   GET /probe         read-only: answers the session's value "n", unchanged
 *   GET /probe?w=1     read+write: stores n + 1 and answers it
 *   GET /probe?pad=N   (any request that creates a session) also stores a
 *                      filler entry "pad" of N bytes, for realistic sizes
 *   GET /probe?w=1&k=K the same on the value "nK" (K: up to 6 digits), so
 *                      that clients sharing one session each count on a key
 *                      of their own (the merge of disjoint keys)
 *
 * A request whose session has no "n" (no session yet, or an unknown or
 * expired one) stores n=0 and answers 0, so the first request of a client
 * creates its session. Without mod_session the answer is "none". The body is
 * the number and a newline, text/plain, with a Content-Length. */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "mod_session.h"

#include <apr_optional.h>
#include <apr_strings.h>

#define PROBE_HANDLER "sessprobe"
#define PROBE_MAX_PAD (64 * 1024)

module AP_MODULE_DECLARE_DATA sessprobe_module;

static APR_OPTIONAL_FN_TYPE(ap_session_get) * session_get;
static APR_OPTIONAL_FN_TYPE(ap_session_set) * session_set;

static void retrieve_optional_fns(void)
{
    session_get = APR_RETRIEVE_OPTIONAL_FN(ap_session_get);
    session_set = APR_RETRIEVE_OPTIONAL_FN(ap_session_set);
}

/* The value of NAME in the query string, or NULL. Values are digits here, so
 * no unescaping is needed. */
static const char *query_arg(request_rec *r, const char *name)
{
    apr_size_t len = strlen(name);
    const char *p = r->args;

    while (p && *p) {
        if (!strncmp(p, name, len) && p[len] == '=') {
            return p + len + 1;
        }
        p = strchr(p, '&');
        if (p) {
            p++;
        }
    }
    return NULL;
}

static int probe_handler(request_rec *r)
{
    const char *value = NULL, *body;
    apr_int64_t n = 0;
    apr_size_t len;

    if (!r->handler || strcmp(r->handler, PROBE_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!session_get || !session_set) {
        body = "none\n";
    } else {
        const char *w = query_arg(r, "w"), *key = "n", *k = query_arg(r, "k");

        if (k) {
            apr_size_t klen = strspn(k, "0123456789");

            if (!klen || klen > 6 || (k[klen] && k[klen] != '&')) {
                return HTTP_BAD_REQUEST;
            }
            key = apr_pstrcat(r->pool, "n", apr_pstrmemdup(r->pool, k, klen), NULL);
        }
        if (session_get(r, NULL, key, &value) != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!value) {
            const char *pad = query_arg(r, "pad");

            if (pad) {
                apr_int64_t padlen = apr_atoi64(pad);

                if (padlen > 0 && padlen <= PROBE_MAX_PAD) {
                    char *filler = apr_palloc(r->pool, (apr_size_t)padlen + 1);

                    memset(filler, 'x', (apr_size_t)padlen);
                    filler[padlen] = '\0';
                    session_set(r, NULL, "pad", filler);
                }
            }
            session_set(r, NULL, key, "0");
        } else {
            n = apr_atoi64(value);
            if (w && w[0] == '1' && (!w[1] || w[1] == '&')) {
                n++;
                session_set(r, NULL, key, apr_psprintf(r->pool, "%" APR_INT64_T_FMT, n));
            }
        }
        body = apr_psprintf(r->pool, "%" APR_INT64_T_FMT "\n", n);
    }
    len = strlen(body);
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_optional_fn_retrieve(retrieve_optional_fns, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(probe_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* clang-format off */
module AP_MODULE_DECLARE_DATA sessprobe_module = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    register_hooks,
    AP_MODULE_FLAG_NONE,
};
/* clang-format on */

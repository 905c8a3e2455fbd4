/* ss_redis_replication.c - the parser of INFO replication. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_redis_replication.h"

/* The integer after "field:" in line (up to its end), or -1. */
static apr_int64_t int_of(const char *v, apr_size_t len)
{
    char *end;
    apr_int64_t n;

    if (!len || !apr_isdigit(*v)) {
        return -1;
    }
    n = apr_strtoi64(v, &end, 10);
    return end == v + len ? n : -1;
}

/* The value of key in "k=v,k=v" (len bytes), or NULL. */
static const char *kv(const char *s, apr_size_t len, const char *key, apr_size_t *vlen)
{
    apr_size_t klen = strlen(key), i = 0;

    while (i < len) {
        apr_size_t end = i;

        while (end < len && s[end] != ',') {
            end++;
        }
        if (end - i > klen && !strncmp(s + i, key, klen) && s[i + klen] == '=') {
            *vlen = end - i - klen - 1;
            return s + i + klen + 1;
        }
        i = end + 1;
    }
    return NULL;
}

static const char *addr_of(const char *host, apr_size_t hlen, const char *port, apr_size_t plen,
                           apr_pool_t *p)
{
    int v6 = memchr(host, ':', hlen) != NULL;

    return apr_psprintf(p, "%s%.*s%s:%.*s", v6 ? "[" : "", (int)hlen, host, v6 ? "]" : "",
                        (int)plen, port);
}

static void replica(ss_redis_replication_t *out, const char *v, apr_size_t len, apr_pool_t *p)
{
    ss_store_replica_t *r;
    const char *ip, *port, *x;
    apr_size_t iplen, portlen, xlen;

    ip = kv(v, len, "ip", &iplen);
    port = kv(v, len, "port", &portlen);
    if (!ip || !port || !iplen || int_of(port, portlen) < 0 ||
        out->nreplicas == SS_STORE_REPLICAS_LISTED) {
        return;
    }
    r = &out->replicas[out->nreplicas++];
    r->addr = addr_of(ip, iplen, port, portlen, p);
    x = kv(v, len, "state", &xlen);
    r->state = x ? apr_pstrndup(p, x, xlen) : "unknown";
    x = kv(v, len, "offset", &xlen);
    r->offset = x ? int_of(x, xlen) : -1;
    x = kv(v, len, "lag", &xlen);
    r->lag_sec = x ? int_of(x, xlen) : -1;
    r->behind = -1;
}

apr_status_t ss_redis_replication_parse(const char *info, ss_redis_replication_t *out,
                                        apr_pool_t *p)
{
    const char *line = info, *mhost = NULL, *mport = NULL;
    apr_size_t mhlen = 0, mplen = 0;
    int i;

    memset(out, 0, sizeof(*out));
    out->master_offset = -1;
    while (line && *line) {
        const char *nl = strchr(line, '\n'), *colon;
        apr_size_t len = nl ? (apr_size_t)(nl - line) : strlen(line), klen;

        if (len && line[len - 1] == '\r') {
            len--;
        }
        colon = memchr(line, ':', len);
        if (colon && *line != '#') {
            const char *v = colon + 1;
            apr_size_t vlen = len - (apr_size_t)(v - line);

            klen = (apr_size_t)(colon - line);
#define KEY(k) (klen == sizeof(k) - 1 && !strncmp(line, k, klen))
            if (KEY("role")) {
                out->role = apr_pstrndup(p, v, vlen);
            } else if (KEY("connected_slaves")) {
                out->connected = (int)int_of(v, vlen);
            } else if (KEY("master_repl_offset")) {
                out->master_offset = int_of(v, vlen);
            } else if (KEY("master_host")) {
                mhost = v;
                mhlen = vlen;
            } else if (KEY("master_port")) {
                mport = v;
                mplen = vlen;
            } else if (klen > 5 && !strncmp(line, "slave", 5) && apr_isdigit(line[5])) {
                replica(out, v, vlen, p);
            }
#undef KEY
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!out->role) {
        return APR_EINVAL;
    }
    if (out->connected < 0) {
        out->connected = out->nreplicas;
    }
    if (mhost && mport && mhlen) {
        out->master_addr = addr_of(mhost, mhlen, mport, mplen, p);
    }
    for (i = 0; i < out->nreplicas; i++) {
        ss_store_replica_t *r = &out->replicas[i];

        if (out->master_offset >= 0 && r->offset >= 0) {
            r->behind = out->master_offset > r->offset ? out->master_offset - r->offset : 0;
        }
    }
    return APR_SUCCESS;
}

static const char *num(apr_int64_t n, apr_pool_t *p)
{
    return n < 0 ? "?" : apr_psprintf(p, "%" APR_INT64_T_FMT, n);
}

const char *ss_redis_replication_describe(const ss_redis_replication_t *r, apr_pool_t *p)
{
    const char *d;
    int i;

    if (strcmp(r->role, "master")) {
        return apr_psprintf(p, "%s of %s", !strcmp(r->role, "slave") ? "replica" : r->role,
                            r->master_addr ? r->master_addr : "an unknown master");
    }
    d = apr_psprintf(p, "%d connected", r->connected);
    for (i = 0; i < r->nreplicas; i++) {
        const ss_store_replica_t *x = &r->replicas[i];

        d = apr_psprintf(p, "%s%s %s state=%s lag=%s s offset_behind=%s", d, i ? ";" : ":", x->addr,
                         x->state, num(x->lag_sec, p), num(x->behind, p));
    }
    if (r->connected > r->nreplicas) {
        d = apr_psprintf(p, "%s (%d more not listed)", d, r->connected - r->nreplicas);
    }
    return d;
}

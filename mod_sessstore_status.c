/* mod_sessstore_status.c - the pages: sessstore-status, sessstore-metrics and
 * sessstore-health, and the session store's section of mod_status's server-status. */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "mod_status.h"

#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_health.h"
#include "ss_metered.h"
#include "ss_metrics.h"
#include "ss_redis.h"

#include "mod_sessstore.h"

/* Whether r is a GET of handler name; *rv the answer when it is not a GET. */
static int is_page(request_rec *r, const char *name, int *rv)
{
    if (!r->handler || strcmp(r->handler, name)) {
        *rv = DECLINED;
        return 0;
    }
    *rv = r->method_number == M_GET ? OK : HTTP_METHOD_NOT_ALLOWED;
    return *rv == OK;
}

/* "loads_hit" -> "LoadsHit", as mod_status names its ?auto keys. */
static const char *camel(const char *key, apr_pool_t *p)
{
    char *out = apr_palloc(p, strlen(key) + 1), *d = out;
    int up = 1;

    for (; *key; key++) {
        if (*key == '_') {
            up = 1;
            continue;
        }
        *d++ = up ? apr_toupper(*key) : *key;
        up = 0;
    }
    *d = '\0';
    return out;
}

typedef struct {
    const char *key;
    const char *value;
} status_line_t;

static void status_add(apr_array_header_t *lines, const char *key, const char *value)
{
    status_line_t *l = apr_array_push(lines);

    l->key = key;
    l->value = value;
}

/* The counters of every process of this httpd. */
static void status_totals(apr_array_header_t *lines, apr_pool_t *p)
{
    int i;

    for (i = 0; i < SS_M__COUNT; i++) {
        status_add(lines, ss_metrics_key((ss_metric_e)i),
                   apr_psprintf(p, "%" APR_UINT64_T_FMT, ss_metrics_get(metrics, (ss_metric_e)i)));
    }
    status_add(
        lines, "children_store_down",
        apr_psprintf(p, "%u", ss_metrics_down_count(metrics, apr_time_now(), process_alive, NULL)));
}

/* A Redis store's master and replicas, from INFO replication asked now
 * (never per request); on Cluster, or when INFO fails, why not. */
static void status_replication(apr_array_header_t *lines, ss_store_t *store, apr_pool_t *p)
{
    ss_redis_replication_t repl;
    const char *master = NULL;
    apr_status_t rv = ss_redis_replication(ss_metered_inner(store), &repl, &master, p);

    if (rv == APR_ENOTIMPL) {
        return; /* Cluster: each node has its own; cluster_nodes says how many */
    }
    if (rv != APR_SUCCESS) {
        char buf[120];

        status_add(lines, "redis_replication",
                   apr_pstrcat(p, "unknown: INFO replication failed: ",
                               apr_strerror(rv, buf, sizeof(buf)), NULL));
        return;
    }
    status_add(lines, "redis_master",
               ap_escape_logitem(p, apr_pstrcat(p, master ? master : "unknown", " (role ",
                                                repl.role, ")", NULL)));
    status_add(lines, "redis_replicas",
               ap_escape_logitem(p, ss_redis_replication_describe(&repl, p)));
}

/* SetHandler sessstore-status: the store's own counters (stats_scope says
 * whose) and the totals of every process, as "name: value" lines; with
 * ?auto, "Name: value" lines as mod_status's ?auto writes them. Shows the
 * backend without its password. */
int status_handler(request_rec *r)
{
    server_conf *c = ap_get_module_config(r->server->module_config, &sessstore_module);
    apr_array_header_t *lines;
    ss_store_stats_t st;
    apr_status_t rv;
    int auto_ = r->args && !strcasecmp(r->args, "auto"), i, status;

    if (!is_page(r, "sessstore-status", &status)) {
        return status;
    }
    if (!c->store) {
        return HTTP_NOT_FOUND;
    }
    rv = c->store->ops->stats(c->store, &st);
    if (rv != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    lines = apr_array_make(r->pool, 40, sizeof(status_line_t));
    status_add(lines, "backend",
               ap_escape_logitem(r->pool, c->store->ops->describe(c->store, r->pool)));
    status_add(lines, "scope", c->store->ops->stats_scope);
    if (!strcmp(c->store->ops->name, "redis")) {
        status_replication(lines, c->store, r->pool);
    }
#define STAT(field) status_add(lines, #field, apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, st.field))
    STAT(entries);
    STAT(capacity_bytes);
    STAT(used_bytes);
    STAT(hits);
    STAT(misses);
    STAT(expired);
    STAT(saves);
    STAT(touches);
    STAT(removes);
    STAT(evicted_expired);
    STAT(evicted_lru);
    STAT(refused_oversize);
    STAT(refused_gone);
    STAT(refused_conflict);
    STAT(malformed);
    STAT(newer_format);
    STAT(rebuilds);
    STAT(errors);
    STAT(fast_fails);
    STAT(connects);
    STAT(retries);
    STAT(cluster_nodes);
    STAT(slotmap_refreshes);
    STAT(moved);
    STAT(asked);
#undef STAT
    if (metrics) {
        status_add(lines, "totals_scope", "all httpd processes");
        status_totals(lines, r->pool);
    }
    ap_set_content_type(r, "text/plain; charset=us-ascii");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    for (i = 0; i < lines->nelts; i++) {
        const status_line_t *l = &APR_ARRAY_IDX(lines, i, status_line_t);

        ap_rprintf(r, "%s: %s\n", auto_ ? camel(l->key, r->pool) : l->key, l->value);
    }
    return OK;
}

/* mod_status's server-status: a short section with the totals. */
int status_hook(request_rec *r, int flags)
{
    apr_array_header_t *lines;
    int i;

    if (!metrics) {
        return OK;
    }
    lines = apr_array_make(r->pool, 16, sizeof(status_line_t));
    status_totals(lines, r->pool);
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("<hr />\n<h2>Session store (mod_sessstore), all processes</h2>\n<dl>\n", r);
    }
    for (i = 0; i < lines->nelts; i++) {
        const status_line_t *l = &APR_ARRAY_IDX(lines, i, status_line_t);

        if (flags & AP_STATUS_SHORT) {
            ap_rprintf(r, "Sessstore%s: %s\n", camel(l->key, r->pool), l->value);
        } else {
            ap_rprintf(r, "<dt>%s: %s</dt>\n", l->key, l->value);
        }
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("</dl>\n", r);
    }
    return OK;
}

/* This process's prober of store, NULL when there is none. */
static ss_health_t *health_of(const ss_store_t *store)
{
    int i;

    for (i = 0; healths && i < open_stores->nelts; i++) {
        if (APR_ARRAY_IDX(open_stores, i, ss_store_t *) == store) {
            return healths[i];
        }
    }
    return NULL;
}

/* A probe of store through this process's prober (cached for HEALTH_CACHE,
 * mod_sessstore.c). */
static apr_status_t check_store(const ss_store_t *store, apr_interval_time_t *rtt, const char **why,
                                apr_pool_t *p)
{
    ss_health_t *h = health_of(store);
    apr_status_t rv;

    *rtt = 0;
    if (!h) {
        *why = "no health check in this process";
        return APR_EGENERAL;
    }
    rv = ss_health_check(h, apr_time_now(), rtt, why, p);
    note_store_state(rv != APR_SUCCESS);
    return rv;
}

/* SetHandler sessstore-metrics: the Prometheus text exposition of the
 * totals of every process and of each store this httpd opened. */
int metrics_handler(request_rec *r)
{
    ss_metrics_store_t *st;
    int i, status;

    if (!is_page(r, "sessstore-metrics", &status)) {
        return status;
    }
    if (!metrics) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    st = apr_pcalloc(r->pool, sizeof(*st) * (apr_size_t)(open_stores->nelts + 1));
    for (i = 0; i < open_stores->nelts; i++) {
        ss_store_t *store = APR_ARRAY_IDX(open_stores, i, ss_store_t *);
        apr_uint64_t evicted;
        const char *why;
        ss_redis_replication_t *repl;

        /* A Redis store's label leaves out the Sentinel's answer: it changes. */
        st[i].label = ss_redis_label(ss_metered_inner(store), r->pool);
        if (!st[i].label) {
            st[i].label = store->ops->describe(store, r->pool);
        }
        st[i].stats_ok = store->ops->stats(store, &st[i].stats) == APR_SUCCESS;
        st[i].shared_stats = !strcmp(store->ops->name, "shm");
        st[i].evictions = -1;
        st[i].up = check_store(store, &st[i].rtt, &why, r->pool) == APR_SUCCESS;
        /* Redis counts what its maxmemory policy evicted: asked only now. */
        if (st[i].up && !strcmp(store->ops->name, "redis") &&
            ss_redis_info_counter(ss_metered_inner(store), "stats", "evicted_keys", &evicted) ==
                APR_SUCCESS) {
            st[i].evictions = (apr_int64_t)evicted;
        }
        /* The master and its replicas: asked only now, like evicted_keys. */
        repl = apr_palloc(r->pool, sizeof(*repl));
        if (st[i].up && !strcmp(store->ops->name, "redis") &&
            ss_redis_replication(ss_metered_inner(store), repl, &st[i].master, r->pool) ==
                APR_SUCCESS) {
            st[i].replication = repl;
        }
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rputs(ss_metrics_render(metrics, st, open_stores->nelts, apr_time_now(), process_alive, NULL,
                               r->pool),
             r);
    return OK;
}

/* SetHandler sessstore-health: 200 while this process can save and load
 * through the store of this server, 503 with the reason while it cannot. */
int health_handler(request_rec *r)
{
    server_conf *c = ap_get_module_config(r->server->module_config, &sessstore_module);
    apr_interval_time_t rtt;
    const char *why = "";
    apr_status_t rv;
    int status;

    if (!is_page(r, "sessstore-health", &status)) {
        return status;
    }
    if (!c->store) {
        return HTTP_NOT_FOUND;
    }
    rv = check_store(c->store, &rtt, &why, r->pool);
    ap_set_content_type(r, "text/plain; charset=us-ascii");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (rv == APR_SUCCESS) {
        ap_rprintf(r, "OK: the session store (%s) saves and loads\n", c->store->ops->name);
        return OK;
    }
    r->status = HTTP_SERVICE_UNAVAILABLE;
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    ap_rprintf(r, "UNAVAILABLE: the session store (%s): %s\n", c->store->ops->name, why);
    return OK;
}

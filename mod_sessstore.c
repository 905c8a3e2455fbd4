/* mod_sessstore.c - server-side session storage for mod_session.
 *
 * httpd glue only: directives, the session_load/session_save hooks, the
 * cookie and logging. IDs, records, expiry and the backends live in lib/. */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_session.h"
#include "util_mutex.h"

#include <errno.h>

#include <apr_lib.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "ss_cookie.h"
#include "ss_id.h"
#include "ss_log.h"
#include "ss_redis.h"
#include "ss_session.h"
#include "ss_shm.h"

APLOG_USE_MODULE(sessstore);

#define SHM_MUTEX_TYPE "sessstore-shm"
#define SHM_RETAINED_KEY "mod_sessstore-shm"

#define DEFAULT_IDLE_TIMEOUT 1800      /* 30 minutes */
#define DEFAULT_ABSOLUTE_TIMEOUT 28800 /* 8 hours */
#define DEFAULT_SHM_SIZE (16 * 1024 * 1024)
#define DEFAULT_MAX_SESSION_SIZE (16 * 1024)
#define MIN_MAX_SESSION_SIZE 256
#define MAX_MAX_SESSION_SIZE (1024 * 1024)
#define MAX_TIMEOUT (10L * 365 * 24 * 3600)
#define MAX_COOKIE_CANDIDATES 4
#define FORM_LOGOUT_HANDLER "form-logout-handler" /* mod_auth_form */

typedef struct {
    const char *backend;      /* "shm" or "redis"; NULL: inherit, then shm */
    ss_redis_config_t *redis; /* with "redis" */
    apr_size_t max_size;
    ss_store_t *store; /* opened in post_config */
} server_conf;

/* What a request sees while the store cannot be reached. */
typedef enum { OUTAGE_UNSET = 0, OUTAGE_UNAVAILABLE, OUTAGE_NOSESSION } outage_e;

typedef struct {
    ss_cookie_t cookie; /* cookie.name NULL: this store is off here */
    int cookie_set;
    apr_interval_time_t idle;
    int idle_set;
    apr_interval_time_t absolute;
    int absolute_set;
    outage_e outage;
} dir_conf;

/* Process-wide, kept across restarts so sessions survive graceful and
 * restart, and so old- and new-generation children share one lock. */
typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    apr_size_t size;
    apr_size_t max_record;
} shm_retained_t;

/* What a request knows about its session, kept on the main request. */
typedef struct {
    session_rec *z;
    const char *id;      /* ID of the record loaded, NULL when none */
    const char *user;    /* owner recorded with it */
    const char *payload; /* payload as loaded, to skip unchanged saves */
    apr_time_t created;
    int cookie_seen;  /* the browser sent our cookie, valid or not */
    int store_failed; /* the store could not answer: nothing may be written */
} req_state_t;

static apr_size_t shm_size = DEFAULT_SHM_SIZE;
static int shm_size_set;
static shm_retained_t *shm_retained;

/* ---- logging seam ---- */

static void log_from_lib(void *baton, int level, apr_status_t rv, const char *msg)
{
    ap_log_error(APLOG_MARK, level, rv, (server_rec *)baton, "%s", msg);
}

/* ---- configuration ---- */

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    server_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    return c;
}

static void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    server_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));

    c->backend = add->backend ? add->backend : base->backend;
    c->redis = add->backend ? add->redis : base->redis;
    c->max_size = add->max_size ? add->max_size : base->max_size;
    return c;
}

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    dir_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)dir;
    c->idle = apr_time_from_sec(DEFAULT_IDLE_TIMEOUT);
    c->absolute = apr_time_from_sec(DEFAULT_ABSOLUTE_TIMEOUT);
    return c;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));

    c->cookie = add->cookie_set ? add->cookie : base->cookie;
    c->cookie_set = add->cookie_set || base->cookie_set;
    c->idle = add->idle_set ? add->idle : base->idle;
    c->idle_set = add->idle_set || base->idle_set;
    c->absolute = add->absolute_set ? add->absolute : base->absolute;
    c->absolute_set = add->absolute_set || base->absolute_set;
    c->outage = add->outage ? add->outage : base->outage;
    return c;
}

static const char *set_backend(cmd_parms *cmd, void *dummy, const char *arg)
{
    server_conf *c = ap_get_module_config(cmd->server->module_config, &sessstore_module);

    (void)dummy;
    if (!strcasecmp(arg, "shm")) {
        c->backend = "shm";
        return NULL;
    }
    if (strstr(arg, "://")) {
        /* The argument may hold a password: never repeat it in a message. */
        const char *err = ss_redis_parse(&c->redis, arg, cmd->pool);

        if (err) {
            return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
        }
        c->backend = "redis";
        return NULL;
    }
    return apr_psprintf(cmd->pool,
                        "%s: unknown backend '%s' (expected 'shm', 'redis://...' or "
                        "'unix://...')",
                        cmd->cmd->name, arg);
}

static const char *set_cookie_name(cmd_parms *cmd, void *dconf, const char *args)
{
    dir_conf *c = dconf;
    char *line = apr_pstrdup(cmd->pool, args);
    char *name = ap_getword_conf(cmd->pool, (const char **)&line);
    const char *err;

    if (!*name) {
        return apr_psprintf(cmd->pool, "%s needs a cookie name", cmd->cmd->name);
    }
    err = ss_cookie_configure(&c->cookie, name, line, cmd->pool);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    c->cookie_set = 1;
    return NULL;
}

/* Seconds, 0 to MAX_TIMEOUT; 0 switches the timeout off. */
static const char *parse_timeout(cmd_parms *cmd, const char *arg, apr_interval_time_t *out)
{
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || v < 0 || v > MAX_TIMEOUT) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of seconds between 0 (off) and %ld",
                            cmd->cmd->name, arg, MAX_TIMEOUT);
    }
    *out = apr_time_from_sec(v);
    return NULL;
}

static const char *set_outage(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;

    if (!strcasecmp(arg, "unavailable")) {
        c->outage = OUTAGE_UNAVAILABLE;
    } else if (!strcasecmp(arg, "nosession")) {
        c->outage = OUTAGE_NOSESSION;
    } else {
        return apr_psprintf(cmd->pool, "%s: '%s' is neither 'unavailable' nor 'nosession'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_idle(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;

    c->idle_set = 1;
    return parse_timeout(cmd, arg, &c->idle);
}

static const char *set_absolute(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;

    c->absolute_set = 1;
    return parse_timeout(cmd, arg, &c->absolute);
}

/* A byte count with an optional K, M or G suffix, within [min, max]. */
static const char *parse_size(cmd_parms *cmd, const char *arg, apr_size_t min, apr_size_t max,
                              apr_size_t *out)
{
    char *end;
    apr_int64_t v;
    apr_uint64_t scale = 1;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (*end && !end[1]) {
        switch (apr_toupper(*end)) {
        case 'K':
            scale = 1024;
            end++;
            break;
        case 'M':
            scale = 1024 * 1024;
            end++;
            break;
        case 'G':
            scale = 1024 * 1024 * 1024;
            end++;
            break;
        }
    }
    if (errno || end == arg || *end || v < 0 || (apr_uint64_t)v > max / scale ||
        (apr_uint64_t)v * scale < min) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a size between %" APR_SIZE_T_FMT
                            " and %" APR_SIZE_T_FMT " bytes (suffixes K, M, G allowed)",
                            cmd->cmd->name, arg, min, max);
    }
    *out = (apr_size_t)(v * scale);
    return NULL;
}

static const char *set_shm_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    shm_size_set = 1;
    return parse_size(cmd, arg, SS_SHM_MIN_SIZE, (apr_size_t)64 * 1024 * 1024 * 1024, &shm_size);
}

static const char *set_max_session_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    server_conf *c = ap_get_module_config(cmd->server->module_config, &sessstore_module);

    (void)dummy;
    return parse_size(cmd, arg, MIN_MAX_SESSION_SIZE, MAX_MAX_SESSION_SIZE, &c->max_size);
}

static const command_rec sessstore_cmds[] = {
    AP_INIT_TAKE1("SessionStoreBackend", set_backend, NULL, RSRC_CONF,
                  "Where sessions live: 'shm' (shared memory on this host, the default), "
                  "'redis://[[user]:password@]host[:port][/db][?options]' or "
                  "'unix:///path/redis.sock[?options]'"),
    AP_INIT_TAKE1("SessionStoreOutage", set_outage, NULL, RSRC_CONF | OR_AUTHCFG,
                  "While the store cannot be reached, requests that carry a session get "
                  "'unavailable' (503, the default) or continue with 'nosession'"),
    AP_INIT_RAW_ARGS("SessionStoreCookieName", set_cookie_name, NULL, RSRC_CONF | OR_AUTHCFG,
                     "Cookie holding the session ID, then optional attributes "
                     "(Path=, Domain=, SameSite=, Secure, !Secure, !HttpOnly, ...); "
                     "turns the store on for this directory"),
    AP_INIT_TAKE1("SessionStoreIdleTimeout", set_idle, NULL, RSRC_CONF | OR_AUTHCFG,
                  "Seconds without a request after which a session ends (0: never)"),
    AP_INIT_TAKE1("SessionStoreAbsoluteTimeout", set_absolute, NULL, RSRC_CONF | OR_AUTHCFG,
                  "Seconds after its creation at which a session ends (0: never)"),
    AP_INIT_TAKE1("SessionStoreShmSize", set_shm_size, NULL, RSRC_CONF,
                  "Bytes of shared memory for the shm backend (K, M, G suffixes)"),
    AP_INIT_TAKE1("SessionStoreMaxSessionSize", set_max_session_size, NULL, RSRC_CONF,
                  "Largest stored session in bytes; larger saves are refused"),
    {NULL}};

/* ---- start-up ---- */

static const char *backend_of(server_rec *s)
{
    server_conf *c = ap_get_module_config(s->module_config, &sessstore_module);

    return c->backend ? c->backend : "shm";
}

static apr_size_t max_size_of(server_rec *s)
{
    server_conf *c = ap_get_module_config(s->module_config, &sessstore_module);

    return c->max_size ? c->max_size : DEFAULT_MAX_SESSION_SIZE;
}

/* The largest record any shm server may write: the arena's record limit. */
static apr_size_t shm_max_record(server_rec *main_server)
{
    apr_size_t max = 0;
    server_rec *s;

    for (s = main_server; s; s = s->next) {
        if (!strcmp(backend_of(s), "shm") && max_size_of(s) > max) {
            max = max_size_of(s);
        }
    }
    return max;
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    shm_size = DEFAULT_SHM_SIZE;
    shm_size_set = 0;
    rv = ap_mutex_register(pconf, SHM_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_size_t max = shm_max_record(s);

    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (max && !ss_shm_fits(shm_size, max)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s,
                     "SessionStoreMaxSessionSize %" APR_SIZE_T_FMT
                     " does not fit SessionStoreShmSize %" APR_SIZE_T_FMT
                     ": one session may use at most a quarter of the shared memory",
                     max, shm_size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Create the arena and its mutex once per httpd process; every later
 * generation reuses both. */
/* An arena kept across a restart is used again only if this build lays it
 * out the same way and a full walk finds it whole, under the mutex: old
 * children of a graceful restart may still be using it. A damaged arena is
 * emptied; one of another layout (an older module) is left to the old
 * generation, and APR_EINVAL says to create a new one. */
static apr_status_t shm_keep(server_rec *s)
{
    void *base = apr_shm_baseaddr_get(shm_retained->shm);
    const char *why = NULL;
    apr_status_t rv = apr_global_mutex_lock(shm_retained->mutex);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "cannot lock the shared-memory session store to check it; kept unchecked");
        return APR_SUCCESS;
    }
    rv = ss_shm_check(base, shm_retained->size, shm_retained->max_record, &why);
    if (rv == APR_EGENERAL) {
        ss_shm_format(base, shm_retained->size, shm_retained->max_record);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "the shared-memory session store kept across the restart was damaged (%s): "
                     "emptied it, its sessions are lost",
                     why);
        rv = APR_SUCCESS;
    } else if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "the shared-memory session store kept across the restart is %s: a new one "
                     "is created, its sessions are lost",
                     why);
    }
    apr_global_mutex_unlock(shm_retained->mutex);
    return rv;
}

static apr_status_t shm_attach(server_rec *s, apr_size_t max_record)
{
    apr_status_t rv;

    shm_retained = ap_retained_data_get(SHM_RETAINED_KEY);
    if (!shm_retained) {
        shm_retained = ap_retained_data_create(SHM_RETAINED_KEY, sizeof(*shm_retained));
    }
    if (shm_retained->shm) {
        if (shm_retained->size != shm_size || shm_retained->max_record != max_record) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "SessionStoreShmSize or SessionStoreMaxSessionSize changed: the "
                         "running arena (%" APR_SIZE_T_FMT " bytes, sessions up to %" APR_SIZE_T_FMT
                         " bytes) is kept with its sessions until httpd is stopped and started",
                         shm_retained->size, shm_retained->max_record);
        }
        if (shm_keep(s) == APR_SUCCESS) {
            return APR_SUCCESS;
        }
        /* Old children keep their own mapping of the old arena. */
        apr_shm_destroy(shm_retained->shm);
        shm_retained->shm = NULL;
    }
    if (!shm_retained->mutex) {
        rv = ap_global_mutex_create(&shm_retained->mutex, NULL, SHM_MUTEX_TYPE, NULL, s,
                                    s->process->pool, 0);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    rv = apr_shm_create(&shm_retained->shm, shm_size, NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "cannot create %" APR_SIZE_T_FMT " bytes of shared memory "
                     "(SessionStoreShmSize)",
                     shm_size);
        shm_retained->shm = NULL;
        return rv;
    }
    rv = ss_shm_format(apr_shm_baseaddr_get(shm_retained->shm), shm_size, max_record);
    if (rv != APR_SUCCESS) {
        apr_shm_destroy(shm_retained->shm);
        shm_retained->shm = NULL;
        return rv;
    }
    shm_retained->size = shm_size;
    shm_retained->max_record = max_record;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "shared-memory session store created: %" APR_SIZE_T_FMT " bytes", shm_size);
    return APR_SUCCESS;
}

/* One store per distinct Redis configuration: virtual hosts that inherit
 * the main server's SessionStoreBackend share its connections. */
static apr_status_t redis_store_for(ss_redis_config_t *cfg, server_rec *main_server, server_rec *s,
                                    apr_pool_t *pconf, ss_store_t **store)
{
    server_rec *vs;
    apr_status_t rv;

    for (vs = main_server; vs != s; vs = vs->next) {
        server_conf *c = ap_get_module_config(vs->module_config, &sessstore_module);

        if (c->redis == cfg && c->store) {
            *store = c->store;
            return APR_SUCCESS;
        }
    }
    rv = ss_redis_open(store, cfg, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "cannot set up the Redis session store %s",
                     ss_redis_describe(cfg, pconf));
        return rv;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "Redis session store: %s",
                 ss_redis_describe(cfg, pconf));
    return APR_SUCCESS;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_size_t max_record = shm_max_record(s);
    ss_store_t *shm_store = NULL;
    server_rec *vs;
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ss_log_set(log_from_lib, s);
    if (max_record) {
        rv = shm_attach(s, max_record);
        if (rv == APR_SUCCESS) {
            rv = ss_shm_open(&shm_store, apr_shm_baseaddr_get(shm_retained->shm),
                             shm_retained->mutex, pconf);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "cannot set up the shared-memory session store");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    for (vs = s; vs; vs = vs->next) {
        server_conf *c = ap_get_module_config(vs->module_config, &sessstore_module);

        if (strcmp(backend_of(vs), "redis")) {
            c->store = shm_store;
            continue;
        }
        rv = redis_store_for(c->redis, s, vs, pconf, &c->store);
        if (rv != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static void child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (!shm_retained || !shm_retained->mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&shm_retained->mutex,
                                     apr_global_mutex_lockfile(shm_retained->mutex), p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "cannot attach the shared-memory session store's mutex in this child");
    }
}

/* ---- requests ---- */

static request_rec *main_request(request_rec *r)
{
    while (r->main) {
        r = r->main;
    }
    return r;
}

static void session_ctx(request_rec *r, const dir_conf *d, ss_session_ctx_t *ctx)
{
    server_conf *c = ap_get_module_config(r->server->module_config, &sessstore_module);

    ctx->store = c->store;
    ctx->expiry.idle = d->idle;
    ctx->expiry.absolute = d->absolute;
    ctx->max_size = max_size_of(r->server);
}

typedef struct {
    const char *name;
    apr_array_header_t *values;
} cookie_scan_t;

static int scan_cookie_header(void *baton, const char *key, const char *value)
{
    cookie_scan_t *scan = baton;

    (void)key;
    ss_cookie_values(value, scan->name, scan->values);
    return 1;
}

/* Try each cookie of our name (several paths can each send one) and keep
 * the first that names a live session. */
static void load_from_cookies(request_rec *r, const dir_conf *d, req_state_t *st)
{
    cookie_scan_t scan = {d->cookie.name, apr_array_make(r->pool, 2, sizeof(const char *))};
    ss_session_ctx_t ctx;
    int i, malformed = 0, unknown = 0;

    apr_table_do(scan_cookie_header, &scan, r->headers_in, "Cookie", NULL);
    if (!scan.values->nelts) {
        return;
    }
    st->cookie_seen = 1;
    session_ctx(r, d, &ctx);
    for (i = 0; i < scan.values->nelts && i < MAX_COOKIE_CANDIDATES; i++) {
        const char *id = APR_ARRAY_IDX(scan.values, i, const char *);
        ss_record_t rec;
        apr_status_t rv;

        if (!ss_id_is_valid(id, strlen(id))) {
            malformed++;
            continue;
        }
        rv = ss_session_load(&ctx, id, apr_time_now(), r->pool, &rec);
        if (rv == APR_SUCCESS) {
            st->id = id;
            st->user = rec.user;
            st->payload = rec.payload;
            st->created = rec.created;
            st->z->encoded = rec.payload;
            return;
        }
        if (rv == APR_NOTFOUND) {
            unknown++;
            continue;
        }
        /* The library logs the outage once; here, per request, only at debug. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "session store (%s) unavailable on load",
                      ctx.store->ops->name);
        st->store_failed = 1;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "cookie %s: %d malformed and %d unknown or expired session ID(s) ignored; a new "
                  "session will get a new ID",
                  d->cookie.name, malformed, unknown);
}

/* The session of this request, loaded once and kept on the main request:
 * mod_session calls the load hook many times per request and does not cache. */
static req_state_t *request_state(request_rec *r, const dir_conf *d)
{
    request_rec *m = main_request(r);
    req_state_t *st = ap_get_module_config(m->request_config, &sessstore_module);

    if (st) {
        return st;
    }
    st = apr_pcalloc(m->pool, sizeof(*st));
    st->z = apr_pcalloc(m->pool, sizeof(session_rec));
    st->z->pool = m->pool;
    st->z->entries = apr_table_make(m->pool, 10);
    load_from_cookies(m, d, st);
    ap_set_module_config(m->request_config, &sessstore_module, st);
    return st;
}

static apr_status_t sessstore_load(request_rec *r, session_rec **z)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);

    if (!d->cookie.name) {
        return DECLINED;
    }
    *z = request_state(r, d)->z;
    return OK;
}

/* Before any authentication runs: a request that carries a session while
 * the store is down gets 503 rather than a login page. Sending users to log
 * in again while nothing can be saved only loops them (the "redirect loop on
 * cache failure" of other session stores). */
static int refuse_during_outage(request_rec *r)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    session_dir_conf *sd = ap_get_module_config(r->per_dir_config, &session_module);
    req_state_t *st;

    if (r->main || !d->cookie.name || !sd || !sd->enabled || d->outage == OUTAGE_NOSESSION) {
        return DECLINED;
    }
    st = request_state(r, d);
    if (!st->store_failed) {
        return DECLINED;
    }
    apr_table_setn(r->err_headers_out, "Retry-After", "2");
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "session store unavailable: 503 (SessionStoreOutage unavailable)");
    return HTTP_SERVICE_UNAVAILABLE;
}

static int entry_is_data(void *found, const char *key, const char *value)
{
    /* mod_session's own "expiry" (SessionMaxAge) is not session data. */
    if (strcmp(key, "expiry") && value && *value) {
        *(int *)found = 1;
        return 0;
    }
    return 1;
}

static int session_is_empty(const session_rec *z)
{
    int found = 0;

    if (z->entries) {
        apr_table_do(entry_is_data, &found, z->entries, NULL);
    }
    return !found;
}

static int request_is_https(request_rec *r)
{
    return !strcmp(ap_http_scheme(r), "https");
}

static void send_cookie(request_rec *r, const dir_conf *d, const char *id)
{
    /* err_headers_out: the cookie must go out on error and redirect responses
     * too (a login usually answers with a redirect). */
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   ss_cookie_header(&d->cookie, id, request_is_https(r), r->pool));
}

/* Store rec under a fresh ID, into *id. */
static apr_status_t write_new(request_rec *r, const ss_session_ctx_t *ctx, const ss_record_t *rec,
                              const char **id)
{
    char fresh[SS_ID_LEN + 1];
    apr_status_t rv;
    int tries;

    /* A collision of 256-bit random IDs means a broken random source; one
     * retry, then give up rather than overwrite someone's session. */
    for (tries = 0; tries < 2; tries++) {
        rv = ss_id_generate(fresh);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "cannot generate a session ID");
            return rv;
        }
        rv = ss_session_write(ctx, fresh, rec, 1, r->pool);
        if (rv != APR_EEXIST) {
            break;
        }
    }
    *id = apr_pstrdup(main_request(r)->pool, fresh);
    return rv;
}

static apr_status_t sessstore_save(request_rec *r, session_rec *z)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    request_rec *m = main_request(r);
    req_state_t *st;
    ss_session_ctx_t ctx;
    ss_record_t rec;
    const char *user, *id = NULL;
    int new_id, logout;
    apr_status_t rv;

    if (!d->cookie.name) {
        return DECLINED;
    }
    st = ap_get_module_config(m->request_config, &sessstore_module);
    if (!st) {
        return DECLINED;
    }
    if (st->store_failed) {
        /* Whatever the browser holds may still be valid: writing a new
         * session now would replace its cookie. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "session store was unavailable: session not saved");
        return OK;
    }
    session_ctx(r, d, &ctx);
    user = m->user ? m->user : "";

    if (session_is_empty(z)) {
        if (st->id) {
            ss_session_remove(&ctx, st->id);
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "session emptied: record deleted");
        }
        if (st->cookie_seen) {
            send_cookie(r, d, NULL);
        }
        st->id = NULL;
        st->cookie_seen = 0;
        return OK;
    }

    /* A new ID when there is no live session, when the owner changes (login,
     * or another user) and at logout: never adopt an ID, never keep a
     * pre-login ID after login, never let a logged-out cookie come back. */
    logout = r->handler && !strcmp(r->handler, FORM_LOGOUT_HANDLER);
    if (logout) {
        user = "";
    }
    new_id = !st->id || logout || (*user && strcmp(user, st->user));
    if (!new_id && st->payload && z->encoded && !strcmp(st->payload, z->encoded)) {
        return OK; /* unchanged: the load already touched it */
    }
    rec.created = new_id ? apr_time_now() : st->created;
    rec.accessed = apr_time_now();
    rec.user = *user || logout ? user : (st->id ? st->user : "");
    rec.payload = z->encoded ? z->encoded : "";
    rec.payload_len = strlen(rec.payload);

    if (new_id) {
        rv = write_new(r, &ctx, &rec, &id);
    } else {
        id = st->id;
        rv = ss_session_write(&ctx, id, &rec, 0, r->pool);
    }
    if (rv == APR_NOTFOUND) {
        /* Removed meanwhile by another request (a logout on another node)
         * or expired: writing it back would resurrect it. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "session ended while this request ran: its changes are dropped");
        st->id = NULL;
        return OK;
    }
    if (rv != APR_SUCCESS) {
        /* The library logs oversize and store outages itself, rate-limited. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "session store (%s): session not saved",
                      ctx.store->ops->name);
        return OK;
    }
    if (new_id) {
        if (st->id) {
            ss_session_remove(&ctx, st->id);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "session %s: new session ID issued, old record deleted",
                          logout ? "logged out" : "owner changed");
        }
        send_cookie(r, d, id);
    }
    st->id = id;
    st->user = rec.user;
    st->payload = rec.payload;
    st->created = rec.created;
    return OK;
}

/* SetHandler sessstore-status: the store's counters as "name: value" lines,
 * for monitoring. Shows the backend without its password. Counters of the
 * shm store cover the whole host; Redis counters cover this httpd process. */
static int status_handler(request_rec *r)
{
    server_conf *c = ap_get_module_config(r->server->module_config, &sessstore_module);
    ss_store_stats_t st;
    apr_status_t rv;

    if (!r->handler || strcmp(r->handler, "sessstore-status")) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!c->store) {
        return HTTP_NOT_FOUND;
    }
    rv = c->store->ops->stats(c->store, &st);
    if (rv != APR_SUCCESS) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_set_content_type(r, "text/plain; charset=us-ascii");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rprintf(r, "backend: %s\n",
               c->redis ? ss_redis_describe(c->redis, r->pool) : c->store->ops->name);
    ap_rprintf(r, "scope: %s\n", c->redis ? "this httpd process" : "all httpd processes");
#define STAT(field) ap_rprintf(r, #field ": %" APR_UINT64_T_FMT "\n", st.field)
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
    STAT(errors);
    STAT(fast_fails);
    STAT(connects);
    STAT(retries);
#undef STAT
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(refuse_during_outage, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_session_load(sessstore_load, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_session_save(sessstore_save, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* clang-format off */
module AP_MODULE_DECLARE_DATA sessstore_module = {
    STANDARD20_MODULE_STUFF,
    create_dir_conf,
    merge_dir_conf,
    create_server_conf,
    merge_server_conf,
    sessstore_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE,
};
/* clang-format on */

/* mod_sessstore.c - the module record, start-up (configuration checks, the
 * stores, child_init) and the request path (load and save hooks, cookie, revoke). */

/* The counters (---- counters ----: count_load, count_commit, count_lock,
 * note_store_state) are here, not with the pages: the request path bumps
 * them at every load and save, and the store-down slot they keep per child
 * (store_slot, slot_lock, child_pid) is claimed here and given back by
 * release_slot, so that state stays static in this file. The pages
 * (mod_sessstore_status.c) read the totals and reach note_store_state and
 * process_alive through mod_sessstore.h. The directives are in
 * mod_sessstore_config.c; IDs, records, expiry, the backends and the
 * counters' storage live in lib/. */
#include "ap_mpm.h"
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_session.h"
#include "mod_status.h"
#include "util_cfgtree.h"
#include "util_mutex.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_cookie.h"
#include "ss_health.h"
#include "ss_id.h"
#include "ss_lock.h"
#include "ss_log.h"
#include "ss_metered.h"
#include "ss_metrics.h"
#include "ss_redis.h"
#include "ss_session.h"
#include "ss_shm.h"

#include "mod_sessstore.h"

APLOG_USE_MODULE(sessstore);

#define SHM_MUTEX_TYPE "sessstore-shm"
#define SHM_RETAINED_KEY "mod_sessstore-shm"
#define METRICS_RETAINED_KEY "mod_sessstore-metrics"
/* How long one process keeps its health verdict: a balancer polling every
 * second costs at most two store round trips a second per process. */
#define HEALTH_CACHE apr_time_from_msec(500)
/* The request note holding the session's log tag (%{sessstore-tag}n). */
#define TAG_NOTE "sessstore-tag"

#define DEFAULT_MAX_SESSION_SIZE (16 * 1024)
#define FORM_LOGOUT_HANDLER "form-logout-handler" /* mod_auth_form */
#define REFUSE_FILTER "SESSSTORE_REFUSE"

/* Process-wide, kept across restarts so sessions survive graceful and
 * restart. The arena's locks live inside it, so old- and new-generation
 * children share them with the arena. */
typedef struct {
    apr_shm_t *shm;
    apr_size_t size;
    apr_size_t max_record;
    char file[SHM_FILE_MAX]; /* the segment's name (SessionStoreShmFile); "" when anonymous */
} shm_retained_t;

/* The counters' segment, kept across restarts like the arena: totals run on
 * through graceful and restart. */
typedef struct {
    apr_shm_t *shm;
    apr_size_t size;
} metrics_retained_t;

/* A request's session: the library's view and mod_session's, kept on the
 * request that began the chain of subrequests and internal redirects. */
typedef struct {
    ss_session_t sess;
    session_rec *z;
    /* SessionStoreLock: the lock held for the session, given back once the
     * session is saved or, at the latest, when the request ends. */
    ss_lock_ctx_t lock_ctx;
    ss_lock_t lock;
    apr_status_t lock_rv; /* APR_TIMEUP: not free in time, the request gets 503 */
    conn_rec *conn;
    server_rec *server;
} req_session_t;

static shm_retained_t *shm_retained;
/* Shared with the pages: mod_sessstore.h says who sets and reads each. */
apr_array_header_t *open_stores;
ss_metrics_t *metrics;
ss_health_t **healths;
/* Per child: its slot in the counters' store-down table, and the lock that
 * lets one thread claim it. */
static int store_slot = -1;
static apr_thread_mutex_t *slot_lock;
static apr_uint32_t child_pid; /* getpid() is a system call: asked once */

/* ---- logging seam ---- */

static void log_from_lib(void *baton, int level, apr_status_t rv, const char *msg)
{
    ap_log_error(APLOG_MARK, level, rv, (server_rec *)baton, "%s", msg);
}

/* ---- start-up ---- */

static int uses_shm(server_rec *s)
{
    server_conf *c = ap_get_module_config(s->module_config, &sessstore_module);

    return !c->redis;
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
        if (uses_shm(s) && max_size_of(s) > max) {
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
    global_conf_reset();
    /* Registered only so that the Mutex line of an older configuration
     * still parses: warn_mutex_directive says it is ignored. */
    rv = ap_mutex_register(pconf, SHM_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* "Mutex mechanism sessstore-shm" served the shm store until its locks moved
 * into the arena: accepted, it no longer does anything, and the error log
 * says so once per start or restart, with where it is. */
static void warn_mutex_directive(const ap_directive_t *d, server_rec *s)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "Mutex") && d->args &&
            ap_strcasestr(d->args, SHM_MUTEX_TYPE)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "Mutex %s (%s line %d) is deprecated and ignored: the shared-memory "
                         "session store locks with process-shared mutexes inside its own "
                         "memory; remove the line",
                         d->args, d->filename, d->line_num);
        }
        warn_mutex_directive(d->first_child, s);
    }
}

/* Every section that sets a lock directive or turns the lock on: its wait
 * below its lease and below the server's Timeout (a client, or a proxy in
 * front, would give up first). NULL when all are fine. */
static const char *lock_sections_error(apr_pool_t *p, server_rec *s,
                                       const apr_array_header_t *sections)
{
    int i;

    for (i = 0; sections && i < sections->nelts; i++) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        dir_conf *d = ap_get_module_config(v, &sessstore_module);
        core_dir_config *core = ap_get_core_module_config(v);
        const char *err = NULL;

        if (d && (d->lock > 0 || d->lock_timeout_set || d->lock_lease_set)) {
            err = lock_pair_error(p, d);
            if (!err && d->lock_timeout >= s->timeout) {
                err = apr_psprintf(
                    p,
                    "SessionStoreLockTimeout (%" APR_TIME_T_FMT
                    " ms) must be shorter than the server's Timeout (%" APR_TIME_T_FMT " s)",
                    apr_time_as_msec(d->lock_timeout), apr_time_sec(s->timeout));
            }
        }
        if (!err && core) {
            err = lock_sections_error(p, s, core->sec_file);
        }
        if (!err && core) {
            err = lock_sections_error(p, s, core->sec_if);
        }
        if (err) {
            return err;
        }
    }
    return NULL;
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_size_t max = shm_max_record(s);
    server_rec *vs;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (max && !ss_shm_fits(globals.shm_size, max)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s,
                     "SessionStoreMaxSessionSize %" APR_SIZE_T_FMT
                     " does not fit SessionStoreShmSize %" APR_SIZE_T_FMT
                     ": one session may use at most a quarter of the shared memory",
                     max, globals.shm_size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (globals.record_format == 1 && globals.record_seal > 0) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s,
                     "SessionStoreSeal %s needs SessionStoreRecordFormat 2: format 1 records "
                     "are never sealed",
                     globals.record_seal == 2 ? "Required" : "On");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (vs = s; vs; vs = vs->next) {
        core_server_config *core = ap_get_core_module_config(vs->module_config);
        apr_array_header_t *top = apr_array_make(ptemp, 1, sizeof(ap_conf_vector_t *));
        const char *err;

        APR_ARRAY_PUSH(top, ap_conf_vector_t *) = vs->lookup_defaults;
        err = lock_sections_error(ptemp, vs, top);
        if (!err) {
            err = lock_sections_error(ptemp, vs, core->sec_dir);
        }
        if (!err) {
            err = lock_sections_error(ptemp, vs, core->sec_url);
        }
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, vs, "%s (server %s:%u)", err,
                         vs->server_hostname ? vs->server_hostname : "?", vs->port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* Create the arena once per httpd process; every later generation reuses
 * it. An arena kept across a restart is used again only if this build lays
 * it out the same way and a walk finds each stripe whole, under the
 * stripe's lock: old children of a graceful restart may still be using it.
 * A damaged stripe is emptied; an arena of another layout (an older module)
 * is left to the old generation, and APR_EINVAL says to create a new one. */
static apr_status_t shm_keep(server_rec *s)
{
    void *base = apr_shm_baseaddr_get(shm_retained->shm);
    const char *why = NULL;
    apr_status_t rv = ss_shm_repair(base, shm_retained->size, shm_retained->max_record, &why);

    if (rv == APR_EGENERAL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "the shared-memory session store kept across the restart was damaged (%s): "
                     "emptied the damaged stripes, their sessions are lost",
                     why);
        rv = APR_SUCCESS;
    } else if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "the shared-memory session store kept across the restart is %s: a new one "
                     "is created, its sessions are lost",
                     why);
    }
    return rv;
}

static apr_status_t shm_attach(server_rec *s, apr_size_t max_record)
{
    /* A named segment (default DefaultRuntimeDir/sessstore.shm), so that
     * sessstore(1) can attach to it while httpd runs; the arena's own locks
     * are all it needs to share. */
    const char *file =
        globals.shm_file && !strcasecmp(globals.shm_file, "none")
            ? ""
            : ap_runtime_dir_relative(s->process->pool,
                                      globals.shm_file ? globals.shm_file : "sessstore.shm");
    apr_status_t rv;

    shm_retained = ap_retained_data_get(SHM_RETAINED_KEY);
    if (!shm_retained) {
        shm_retained = ap_retained_data_create(SHM_RETAINED_KEY, sizeof(*shm_retained));
    }
    if (shm_retained->shm) {
        if (strcmp(shm_retained->file, file)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "SessionStoreShmFile changed: the running arena keeps its name "
                         "(%s) until httpd is stopped and started",
                         *shm_retained->file ? shm_retained->file : "anonymous");
        }
        if (shm_retained->size != globals.shm_size || shm_retained->max_record != max_record) {
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
    if (!file || strlen(file) >= sizeof(shm_retained->file)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "SessionStoreShmFile: the name is too long");
        return APR_EINVAL;
    }
    if (*file) {
        /* A segment left by an httpd that did not stop cleanly: its
         * sessions cannot be trusted to belong to this configuration. */
        apr_shm_remove(file, s->process->pool);
    }
    rv =
        apr_shm_create(&shm_retained->shm, globals.shm_size, *file ? file : NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "cannot create %" APR_SIZE_T_FMT " bytes of shared memory "
                     "(SessionStoreShmSize) named %s (SessionStoreShmFile)",
                     globals.shm_size, *file ? file : "anonymous");
        shm_retained->shm = NULL;
        return rv;
    }
    rv = ss_shm_format(apr_shm_baseaddr_get(shm_retained->shm), globals.shm_size, max_record);
    if (rv != APR_SUCCESS) {
        apr_shm_destroy(shm_retained->shm);
        shm_retained->shm = NULL;
        return rv;
    }
    shm_retained->size = globals.shm_size;
    shm_retained->max_record = max_record;
    apr_cpystrn(shm_retained->file, file, sizeof(shm_retained->file));
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "shared-memory session store created: %" APR_SIZE_T_FMT " bytes, %s%s",
                 globals.shm_size, *file ? "segment " : "anonymous", file);
    return APR_SUCCESS;
}

/* How the stores write records, from both directives. */
static ss_record_form_e record_form(void)
{
    if (globals.record_format == 1) {
        return SS_RECORD_FORM_V1;
    }
    return globals.record_seal ? SS_RECORD_FORM_SEALED : SS_RECORD_FORM_CLEAR;
}

/* The store as requests use it: timed into the shared histograms. */
static ss_store_t *store_opened(ss_store_t *store, server_rec *s, apr_pool_t *pconf)
{
    static const char *const forms[] = {"format 2, unsealed", "format 2, sealed", "format 1"};
    ss_store_t *metered;
    apr_pool_t *ptemp;

    store->form = record_form();
    store->sealed_only = globals.record_seal == 2;
    if (ss_metered_wrap(&metered, store, metrics, pconf) != APR_SUCCESS) {
        metered = store;
    }
    APR_ARRAY_PUSH(open_stores, ss_store_t *) = metered;
    apr_pool_create(&ptemp, pconf);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "session store: %s; records written in %s%s",
                 store->ops->describe(store, ptemp), forms[store->form],
                 store->sealed_only ? ", records in clear refused" : "");
    apr_pool_destroy(ptemp);
    return metered;
}

/* The counters' segment: created once per httpd process, kept by later
 * generations while its size (which follows ServerLimit) stays the same.
 * Without it requests are served as usual, only not counted. */
static void metrics_attach(server_rec *s)
{
    metrics_retained_t *mr = ap_retained_data_get(METRICS_RETAINED_KEY);
    int limit = 0;
    apr_uint32_t nslots;
    apr_size_t size;
    apr_status_t rv;

    metrics = NULL;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit <= 0) {
        limit = 16;
    }
    /* Two generations of children can run at once (graceful restart). */
    nslots = (apr_uint32_t)limit * 2;
    size = ss_metrics_size(nslots);
    if (!mr) {
        mr = ap_retained_data_create(METRICS_RETAINED_KEY, sizeof(*mr));
    }
    if (mr->shm) {
        if (mr->size == size && ss_metrics_is_formatted(apr_shm_baseaddr_get(mr->shm), size)) {
            metrics = ss_metrics_attach(apr_shm_baseaddr_get(mr->shm), size);
            return;
        }
        /* Old children keep their own mapping of the old segment. */
        apr_shm_destroy(mr->shm);
        mr->shm = NULL;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "ServerLimit changed: the session store's counters start again from zero");
    }
    rv = apr_shm_create(&mr->shm, size, NULL, s->process->pool);
    if (rv == APR_SUCCESS) {
        rv = ss_metrics_format(apr_shm_baseaddr_get(mr->shm), size, nslots);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "cannot create %" APR_SIZE_T_FMT " bytes of shared memory for the session "
                     "store's counters: sessstore-metrics is unavailable",
                     size);
        if (mr->shm) {
            apr_shm_destroy(mr->shm);
            mr->shm = NULL;
        }
        return;
    }
    mr->size = size;
    metrics = ss_metrics_attach(apr_shm_baseaddr_get(mr->shm), size);
}

/* One store per distinct SessionStoreBackend value: virtual hosts naming the
 * same Redis share its connections. */
static apr_status_t redis_store_for(server_rec *main_server, server_rec *s, apr_pool_t *pconf)
{
    server_conf *c = ap_get_module_config(s->module_config, &sessstore_module);
    server_rec *vs;
    apr_status_t rv;

    for (vs = main_server; vs != s; vs = vs->next) {
        server_conf *o = ap_get_module_config(vs->module_config, &sessstore_module);

        if (o->redis && o->store && !strcmp(o->backend, c->backend)) {
            c->store = o->store;
            return APR_SUCCESS;
        }
    }
    rv = ss_redis_open(&c->store, c->redis, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "cannot set up the Redis session store %s",
                     ss_redis_describe(c->redis, pconf));
        return rv;
    }
    c->store = store_opened(c->store, s, pconf);
    /* Say now, not on a user's request, that it cannot be reached. */
    rv = c->store->ops->ping(c->store);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "SessionStoreBackend %s does not answer at start-up; requests that need "
                     "a session get 503 (SessionStoreOutage) until it does",
                     ss_redis_describe(c->redis, pconf));
    }
    return APR_SUCCESS;
}

/* Which of the server-level timeouts are in force somewhere: in the server
 * itself when it turns the store on, in any section (<Location>,
 * <Directory>, <Files>, <If>, nested) that turns it on without setting its
 * own. An unused default (8 h absolute) must not stretch every record. */
static void inherited_in(const apr_array_header_t *sections, int *idle, int *absolute)
{
    int i;

    for (i = 0; sections && i < sections->nelts; i++) {
        ap_conf_vector_t *v = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        dir_conf *d = ap_get_module_config(v, &sessstore_module);
        core_dir_config *core = ap_get_core_module_config(v);

        if (d && d->cookie_set) {
            *idle |= !d->idle_set;
            *absolute |= !d->absolute_set;
        }
        if (core) {
            inherited_in(core->sec_file, idle, absolute);
            inherited_in(core->sec_if, idle, absolute);
        }
    }
}

static void add_server_timeouts(server_rec *s)
{
    server_conf *c = ap_get_module_config(s->module_config, &sessstore_module);
    dir_conf *d = ap_get_module_config(s->lookup_defaults, &sessstore_module);
    core_server_config *core = ap_get_core_module_config(s->module_config);
    ss_expiry_t in_force = {SS_EXPIRY_NARROWEST, SS_EXPIRY_NARROWEST};
    /* Server-level values that were set were counted when read. */
    int idle = d->cookie_set && !d->idle_set, absolute = d->cookie_set && !d->absolute_set;

    inherited_in(core->sec_dir, &idle, &absolute);
    inherited_in(core->sec_url, &idle, &absolute);
    if (idle) {
        in_force.idle = d->idle;
    }
    if (absolute) {
        in_force.absolute = d->absolute;
    }
    ss_expiry_widen(&c->retention, &in_force);
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
    warn_mutex_directive(ap_conftree, s);
    open_stores = apr_array_make(pconf, 4, sizeof(ss_store_t *));
    metrics_attach(s);
    if (max_record) {
        rv = shm_attach(s, max_record);
        if (rv == APR_SUCCESS) {
            rv = ss_shm_open(&shm_store, apr_shm_baseaddr_get(shm_retained->shm), pconf);
        }
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "cannot set up the shared-memory session store");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        shm_store = store_opened(shm_store, s, pconf);
    }
    for (vs = s; vs; vs = vs->next) {
        server_conf *c = ap_get_module_config(vs->module_config, &sessstore_module);

        add_server_timeouts(vs);
        if (!c->redis) {
            c->store = shm_store;
        } else if (redis_store_for(s, vs, pconf) != APR_SUCCESS) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* A child that exits cleanly gives its store-down slot back. */
static apr_status_t release_slot(void *data)
{
    (void)data;
    ss_metrics_release(metrics, store_slot, child_pid);
    store_slot = -1;
    return APR_SUCCESS;
}

static void child_init(apr_pool_t *p, server_rec *s)
{
    int i;

    healths = apr_pcalloc(p, sizeof(*healths) * (apr_size_t)(open_stores->nelts + 1));
    store_slot = -1;
    child_pid = (apr_uint32_t)getpid();
    if (apr_thread_mutex_create(&slot_lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
        slot_lock = NULL;
    }
    apr_pool_cleanup_register(p, NULL, release_slot, apr_pool_cleanup_null);
    for (i = 0; i < open_stores->nelts; i++) {
        ss_store_t *store = APR_ARRAY_IDX(open_stores, i, ss_store_t *);
        apr_status_t rv = store->ops->child_init(store, p);

        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "cannot attach the session store %s in this child",
                         store->ops->describe(store, p));
        }
        /* The probe goes straight to the store: it is no session operation. */
        rv = ss_health_create(&healths[i], ss_metered_inner(store), HEALTH_CACHE, p);
        if (rv != APR_SUCCESS) {
            healths[i] = NULL;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                         "cannot set up the health check of the session store %s",
                         store->ops->describe(store, p));
        }
    }
}

/* ---- counters ---- */

int process_alive(void *baton, apr_uint32_t pid)
{
    (void)baton;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Whether this process's latest store operation failed (its breaker is
 * open, or the store answered with an error); a failure counts for
 * SS_METRICS_DOWN_WINDOW_SEC. */
void note_store_state(int down)
{
    apr_uint32_t pid = child_pid;
    apr_time_t now;

    if (!metrics || !pid) {
        return;
    }
    now = apr_time_now();
    if (store_slot < 0 && down && slot_lock) {
        /* The first failure of this process claims a slot: one thread. */
        apr_thread_mutex_lock(slot_lock);
        ss_metrics_store_state(metrics, &store_slot, pid, down, now, process_alive, NULL);
        apr_thread_mutex_unlock(slot_lock);
        return;
    }
    if (store_slot >= 0) {
        ss_metrics_store_state(metrics, &store_slot, pid, down, now, process_alive, NULL);
    }
}

static void count_load(const ss_session_t *sess)
{
    if (sess->state == SS_SESSION_STORE_DOWN) {
        ss_metrics_bump(metrics, SS_M_LOAD_ERROR);
        note_store_state(1);
    } else if (sess->nnamed) { /* without a well-formed ID the store was not asked */
        ss_metrics_bump(metrics, sess->state == SS_SESSION_LOADED ? SS_M_LOAD_HIT
                                 : sess->expired                  ? SS_M_LOAD_EXPIRED
                                                                  : SS_M_LOAD_MISS);
        note_store_state(0);
    }
}

static void count_commit(const ss_session_t *sess)
{
    switch (sess->outcome) {
    case SS_COMMIT_UNCHANGED:
        ss_metrics_bump(metrics, SS_M_SAVE_UNCHANGED);
        break;
    case SS_COMMIT_WRITTEN:
        ss_metrics_bump(metrics, SS_M_SAVE_WRITTEN);
        if (sess->cookie && *sess->cookie) {
            ss_metrics_bump(metrics, SS_M_ROTATIONS);
        }
        note_store_state(0);
        break;
    case SS_COMMIT_ENDED:
        ss_metrics_bump(metrics, SS_M_DELETES);
        note_store_state(0);
        break;
    case SS_COMMIT_GONE:
        ss_metrics_bump(metrics, SS_M_SAVE_GONE);
        note_store_state(0);
        break;
    case SS_COMMIT_FAILED:
        if (sess->rv == APR_ENOSPC) {
            ss_metrics_bump(metrics, SS_M_SAVE_OVERSIZE);
        } else {
            ss_metrics_bump(metrics, SS_M_SAVE_ERROR);
            note_store_state(1);
        }
        break;
    }
    if (sess->merge.conflicts) {
        ss_metrics_add(metrics, SS_M_MERGE_CONFLICTS, sess->merge.conflicts);
        ss_metrics_add(metrics, SS_M_MERGE_MERGED, sess->merge.merged);
        ss_metrics_add(metrics, SS_M_MERGE_OVERWRITES, sess->merge.overwritten);
        ss_metrics_add(metrics, SS_M_MERGE_GAVE_UP, sess->merge.gave_up ? 1 : 0);
    }
}

static void count_lock(const ss_lock_t *lock, apr_status_t rv)
{
    if (lock->held) {
        ss_metrics_bump(metrics, SS_M_LOCK_TAKEN);
        if (lock->attempts > 1) {
            ss_metrics_bump(metrics, SS_M_LOCK_WAITED);
        }
    } else if (rv == APR_TIMEUP) {
        ss_metrics_bump(metrics, SS_M_LOCK_TIMEOUTS);
    }
}

/* The session's log tag (ss_key_tag: 8 hex digits of SHA-256 of its ID) as
 * a note of r and of the request its chain began with, for LogFormat's
 * %{sessstore-tag}n. */
static const char *set_tag_note(request_rec *r, request_rec *first, const ss_key_t *key)
{
    const char *tag = ss_key_tag(key, first->pool);

    apr_table_setn(first->notes, TAG_NOTE, tag);
    if (r != first) {
        apr_table_setn(r->notes, TAG_NOTE, tag);
    }
    return tag;
}

/* ---- requests ---- */

/* The request that began this one's chain of subrequests and internal
 * redirects (ErrorDocument, mod_rewrite): one session per client request. */
static request_rec *first_request(request_rec *r)
{
    while (r->main || r->prev) {
        r = r->main ? r->main : r->prev;
    }
    return r;
}

static void session_ctx(request_rec *r, const dir_conf *d, ss_session_ctx_t *ctx)
{
    server_conf *c = ap_get_module_config(r->server->module_config, &sessstore_module);
    session_dir_conf *sd = ap_get_module_config(r->per_dir_config, &session_module);
    ss_expiry_t maxage = {0, 0};

    ctx->store = c->store;
    ctx->expiry.idle = d->idle;
    ctx->expiry.absolute = d->absolute;
    ctx->retention = c->retention;
    /* A store turned on by .htaccess alone runs on the server's timeouts. */
    ss_expiry_widen(&ctx->retention, &ctx->expiry);
    ctx->max_size = max_size_of(r->server);
    maxage.idle = apr_time_from_sec(sd ? sd->maxage : 0);
    ctx->expiry_slack = ss_expiry_touch_interval(&maxage);
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

static session_rec *empty_session(apr_pool_t *p)
{
    session_rec *z = apr_pcalloc(p, sizeof(*z));

    z->pool = p;
    z->entries = apr_table_make(p, 10);
    return z;
}

/* Give the session's lock back (SessionStoreLock): once the session is
 * saved, and as a pre-cleanup of the request's pool on every other path. */
static apr_status_t release_lock(void *data)
{
    req_session_t *rs = data;
    apr_pool_t *p;
    apr_status_t rv;

    if (!rs->lock.held) {
        return APR_SUCCESS;
    }
    /* Not the request's pool: this may run while it is destroyed. */
    apr_pool_create(&p, rs->conn->pool);
    rv = ss_lock_release(&rs->lock_ctx, &rs->lock, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, rs->server,
                     "session lock not given back (%s): it frees itself after "
                     "SessionStoreLockLease",
                     rs->lock_ctx.store->ops->name);
    }
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

/* Load under the session's lock (SessionStoreLock On). */
static void load_locked(request_rec *first, const dir_conf *d, const ss_session_ctx_t *ctx,
                        const apr_array_header_t *cookies, req_session_t *rs)
{
    rs->lock_ctx.store = ctx->store;
    rs->lock_ctx.timeout = d->lock_timeout;
    rs->lock_ctx.lease = d->lock_lease;
    rs->conn = first->connection;
    rs->server = first->server;
    rs->lock_rv = ss_lock_load(&rs->lock_ctx, ctx, cookies, first->pool, &rs->sess, &rs->lock);
    count_lock(&rs->lock, rs->lock_rv);
    if (rs->lock.held) {
        apr_pool_pre_cleanup_register(first->pool, rs, release_lock);
    }
    if (rs->lock_rv == APR_TIMEUP) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, first,
                      "session lock not free within %" APR_TIME_T_FMT
                      " ms (SessionStoreLockTimeout): 503",
                      apr_time_as_msec(d->lock_timeout));
    } else if (rs->lock.attempts > 1) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, first,
                      "session lock taken after %" APR_TIME_T_FMT " ms (%d attempts)",
                      apr_time_as_msec(rs->lock.waited), rs->lock.attempts);
    }
}

/* The session of this request, loaded once: mod_session calls the load hook
 * many times per request and does not cache. */
static req_session_t *request_session(request_rec *r, const dir_conf *d)
{
    request_rec *first = first_request(r);
    req_session_t *rs = ap_get_module_config(first->request_config, &sessstore_module);
    cookie_scan_t scan = {d->cookie.name, NULL};
    ss_session_ctx_t ctx;

    if (rs) {
        return rs;
    }
    /* The first request's pool: the IDs outlive a subrequest that loads. */
    scan.values = apr_array_make(first->pool, 2, sizeof(const char *));
    rs = apr_pcalloc(first->pool, sizeof(*rs));
    rs->z = empty_session(first->pool);
    apr_table_do(scan_cookie_header, &scan, first->headers_in, "Cookie", NULL);
    session_ctx(first, d, &ctx);
    if (d->lock > 0) {
        load_locked(first, d, &ctx, scan.values, rs);
    } else {
        ss_session_load(&ctx, scan.values, apr_time_now(), first->pool, &rs->sess);
    }
    count_load(&rs->sess);
    if (rs->sess.state == SS_SESSION_LOADED) {
        rs->z->encoded = rs->sess.payload;
        set_tag_note(first, first, &rs->sess.key);
    } else if (rs->sess.state == SS_SESSION_STORE_DOWN && rs->lock_rv != APR_TIMEUP) {
        /* The library logs the outage once; here, per request, only at debug. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rs->sess.store_rv, first,
                      "session store (%s) unavailable on load", ctx.store->ops->name);
    } else if (rs->sess.malformed || rs->sess.unknown) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, first,
                      "cookie %s: %d malformed and %d unknown or expired session ID(s) ignored; "
                      "a new session will get a new ID",
                      d->cookie.name, rs->sess.malformed, rs->sess.unknown);
    }
    ap_set_module_config(first->request_config, &sessstore_module, rs);
    return rs;
}

static apr_status_t sessstore_load(request_rec *r, session_rec **z)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    req_session_t *rs;

    if (!d->cookie.name) {
        return DECLINED;
    }
    rs = request_session(r, d);
    if (rs->sess.id && r != first_request(r)) {
        set_tag_note(r, first_request(r), &rs->sess.key);
    }
    /* Once the user is known, another user's session is not handed out. */
    if (ss_session_claim(&rs->sess, r->user)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "session of another user not handed out; %s starts a new one", r->user);
        rs->z = empty_session(rs->z->pool);
        /* Dirty: mod_session (2.4.41+) saves only changed sessions, and this
         * save ends the previous owner's record and cookie even when the new
         * user only reads. */
        rs->z->dirty = 1;
    }
    /* mod_session's own SessionMaxAge has ended it: hand out a fresh rec,
     * not the expired one (PR 56052, where a new session got lost). */
    if (rs->z->expiry && rs->z->expiry < apr_time_now()) {
        rs->z = empty_session(rs->z->pool);
    }
    *z = rs->z;
    return OK;
}

/* Before any authentication runs: a request that carries a session while
 * the store is down gets 503 rather than a login page. Sending users to log
 * in again while nothing can be saved only loops them (the "redirect loop on
 * cache failure" of other session stores). With SessionStoreLock On, the
 * session is loaded here, under its lock, before the application runs; a
 * lock that stays taken for SessionStoreLockTimeout is a 503 too. */
static int refuse_during_outage(request_rec *r)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    session_dir_conf *sd = ap_get_module_config(r->per_dir_config, &session_module);
    req_session_t *rs;

    /* Not again for an internal redirect: its ErrorDocument must be served. */
    if (r->main || r->prev || !d->cookie.name || !sd || !sd->enabled ||
        (d->outage == OUTAGE_NOSESSION && d->lock <= 0)) {
        return DECLINED;
    }
    rs = request_session(r, d);
    if (rs->lock_rv == APR_TIMEUP) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (d->outage == OUTAGE_NOSESSION || rs->sess.state != SS_SESSION_STORE_DOWN) {
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

static int is_logout(request_rec *r)
{
    return r->handler && !strcmp(r->handler, FORM_LOGOUT_HANDLER);
}

/* What the request did to its session, as SS_COMMIT_* flags: a logout, or
 * a write (ap_session_set, or the SessionHeader of a CGI, even an empty one). */
static int commit_flags(request_rec *r, request_rec *first, const session_rec *z)
{
    session_dir_conf *sd = ap_get_module_config(r->per_dir_config, &session_module);
    int what = 0;

    if (is_logout(r) || is_logout(first)) {
        what |= SS_COMMIT_LOGOUT;
    }
    if (z->dirty || (sd && sd->header_set &&
                     (apr_table_get(r->err_headers_out, sd->header) ||
                      apr_table_get(r->headers_out, sd->header)))) {
        what |= SS_COMMIT_CHANGED;
    }
    return what;
}

static apr_status_t sessstore_save(request_rec *r, session_rec *z)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    request_rec *first = first_request(r);
    req_session_t *rs;
    ss_session_ctx_t ctx;
    int what, logout;

    if (!d->cookie.name) {
        return DECLINED;
    }
    rs = ap_get_module_config(first->request_config, &sessstore_module);
    if (!rs) {
        return DECLINED;
    }
    session_ctx(r, d, &ctx);
    what = commit_flags(r, first, z);
    logout = what & SS_COMMIT_LOGOUT;
    ss_session_commit(&ctx, &rs->sess, r->user ? r->user : first->user,
                      session_is_empty(z) ? NULL : (z->encoded ? z->encoded : ""), what,
                      apr_time_now(), first->pool);
    /* Saved: the next request of the session may go ahead. */
    release_lock(rs);
    count_commit(&rs->sess);
    switch (rs->sess.outcome) {
    case SS_COMMIT_FAILED:
        /* refuse_failed_commit turns the response into an error. */
        ap_log_rerror(APLOG_MARK, logout ? APLOG_WARNING : APLOG_INFO,
                      rs->sess.rv == SS_ECONFLICT ? 0 : rs->sess.rv, r,
                      "session store (%s): %s not saved%s; the request fails", ctx.store->ops->name,
                      logout ? "logout" : "session change",
                      rs->sess.rv == SS_ECONFLICT ? " (other requests kept writing it)" : "");
        return OK;
    case SS_COMMIT_GONE:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "session %s ended while this request ran: its changes are dropped",
                      set_tag_note(r, first, &rs->sess.key));
        break;
    case SS_COMMIT_ENDED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "session %s ended: record deleted",
                      set_tag_note(r, first, &rs->sess.key));
        break;
    case SS_COMMIT_WRITTEN:
        if (rs->sess.cookie) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "session %s: new ID issued",
                          set_tag_note(r, first, &rs->sess.key));
        } else {
            set_tag_note(r, first, &rs->sess.key);
        }
        break;
    default:
        break;
    }
    if (rs->sess.cookie) {
        /* err_headers_out: the cookie must go out on error and redirect
         * responses too (a login usually answers with a redirect). */
        apr_table_addn(r->err_headers_out, "Set-Cookie",
                       ss_cookie_header(&d->cookie, *rs->sess.cookie ? rs->sess.cookie : NULL,
                                        !strcmp(ap_http_scheme(r), "https"), r->pool));
    }
    return OK;
}

/* Take out the Set-Cookie of our cookie that the save added: a revoke
 * replaces it with the clearing one. */
static void drop_our_cookie(request_rec *r, const char *name)
{
    const apr_array_header_t *arr = apr_table_elts(r->err_headers_out);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *keep = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_size_t n = strlen(name);
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key && !strcasecmp(e[i].key, "Set-Cookie") &&
            !(e[i].val && !strncmp(e[i].val, name, n) && e[i].val[n] == '=')) {
            APR_ARRAY_PUSH(keep, const char *) = e[i].val;
        }
    }
    apr_table_unset(r->err_headers_out, "Set-Cookie");
    for (i = 0; i < keep->nelts; i++) {
        apr_table_addn(r->err_headers_out, "Set-Cookie", APR_ARRAY_IDX(keep, i, const char *));
    }
}

/* SessionStoreRevokeHeader: the handler (a CGI script's headers land in
 * headers_out or err_headers_out) asked to end the user's sessions. The
 * header is taken out of the response whatever happens; the policy is
 * ss_session_revoke's. A failure fails the response like a failed commit. */
static void revoke_from_header(request_rec *r)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);
    request_rec *first = first_request(r);
    const char *value;
    req_session_t *rs;
    ss_session_ctx_t ctx;
    ss_revoke_e what;
    apr_size_t n = 0;

    if (!d->revoke_header) {
        return;
    }
    value = apr_table_get(r->headers_out, d->revoke_header);
    if (!value) {
        value = apr_table_get(r->err_headers_out, d->revoke_header);
    }
    apr_table_unset(r->headers_out, d->revoke_header);
    apr_table_unset(r->err_headers_out, d->revoke_header);
    if (!value || !d->cookie.name) {
        return;
    }
    what = ss_session_revoke_parse(value);
    if (what == SS_REVOKE_NONE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "%s: '%s' is neither 'user' nor 'others'; nothing revoked", d->revoke_header,
                      ap_escape_logitem(r->pool, value));
        return;
    }
    rs = request_session(r, d);
    session_ctx(r, d, &ctx);
    ss_session_revoke(&ctx, &rs->sess, r->user ? r->user : first->user, what, apr_time_now(), &n);
    if (rs->sess.outcome == SS_COMMIT_FAILED) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rs->sess.rv, r,
                      "session store (%s): revoke (%s) failed; the request fails",
                      ctx.store->ops->name, value);
        return;
    }
    ss_metrics_add(metrics, SS_M_REVOCATIONS, n);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%s: %s: %" APR_SIZE_T_FMT " session(s) ended",
                  d->revoke_header, what == SS_REVOKE_USER ? "user" : "others", n);
    if (rs->sess.cookie && !*rs->sess.cookie) {
        drop_our_cookie(r, d->cookie.name);
        apr_table_addn(
            r->err_headers_out, "Set-Cookie",
            ss_cookie_header(&d->cookie, NULL, !strcmp(ap_http_scheme(r), "https"), r->pool));
    }
}

/* After mod_session's filter has saved the session: a change that could not
 * be saved must not be answered as a success (a login redirect without its
 * cookie, a logout whose old cookie still works). The response becomes 503
 * (500 for a session over SessionStoreMaxSessionSize) and its body is
 * dropped. Headers have not been sent yet: this runs before the protocol
 * filters. */
static apr_status_t refuse_failed_commit(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    req_session_t *rs;
    apr_bucket_brigade *out;
    const char *body;
    int status;

    if (f->ctx) {
        apr_brigade_cleanup(bb); /* the rest of the original body */
        return APR_SUCCESS;
    }
    revoke_from_header(r);
    rs = ap_get_module_config(first_request(r)->request_config, &sessstore_module);
    if (!rs || rs->sess.outcome != SS_COMMIT_FAILED) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    f->ctx = f;
    status = rs->sess.rv == APR_ENOSPC ? HTTP_INTERNAL_SERVER_ERROR : HTTP_SERVICE_UNAVAILABLE;
    apr_brigade_cleanup(bb);
    /* Nothing of the response it would have been: no redirect, no cookie
     * of the application's (a "remember me" token), no refresh. */
    apr_table_clear(r->headers_out);
    apr_table_unset(r->err_headers_out, "Location");
    apr_table_unset(r->err_headers_out, "Set-Cookie");
    apr_table_unset(r->err_headers_out, "Set-Cookie2");
    apr_table_unset(r->err_headers_out, "Refresh");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After", "2");
    }
    r->status = status;
    r->status_line = NULL;
    r->content_encoding = NULL;
    ap_set_content_type(r, "text/plain; charset=us-ascii");
    body = status == HTTP_SERVICE_UNAVAILABLE
               ? "The session could not be saved. Please try again shortly.\n"
               : "The session could not be saved: it is too large.\n";
    out = apr_brigade_create(r->pool, f->c->bucket_alloc);
    apr_brigade_puts(out, NULL, NULL, body);
    APR_BRIGADE_INSERT_TAIL(out, apr_bucket_eos_create(f->c->bucket_alloc));
    ap_set_content_length(r, (apr_off_t)strlen(body));
    return ap_pass_brigade(f->next, out);
}

static void insert_refuse_filter(request_rec *r)
{
    dir_conf *d = ap_get_module_config(r->per_dir_config, &sessstore_module);

    if (!r->main && (d->cookie.name || d->revoke_header)) {
        ap_add_output_filter(REFUSE_FILTER, NULL, r, r->connection);
    }
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
    /* After MOD_SESSION_OUT (AP_FTYPE_CONTENT_SET), before the headers go. */
    ap_register_output_filter(REFUSE_FILTER, refuse_failed_commit, NULL, AP_FTYPE_CONTENT_SET + 1);
    ap_hook_insert_filter(insert_refuse_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(insert_refuse_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_status's server-status, when it is loaded. */
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
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

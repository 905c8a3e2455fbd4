/* mod_sessstore_config.c - the configuration: the server and directory
 * records' create and merge functions, every directive's handler, the command table. */
#include "httpd.h"
#include "http_config.h"

#include <errno.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_cookie.h"
#include "ss_expiry.h"
#include "ss_redis.h"
#include "ss_shm.h"

#include "mod_sessstore.h"

#define DEFAULT_IDLE_TIMEOUT 1800      /* 30 minutes */
#define DEFAULT_ABSOLUTE_TIMEOUT 28800 /* 8 hours */
#define DEFAULT_SHM_SIZE (16 * 1024 * 1024)
#define MIN_MAX_SESSION_SIZE 256
#define MAX_MAX_SESSION_SIZE (1024 * 1024)
#define MAX_TIMEOUT (10L * 365 * 24 * 3600)
#define DEFAULT_LOCK_TIMEOUT apr_time_from_msec(2000)
#define MAX_LOCK_TIMEOUT_MS 60000
#define DEFAULT_LOCK_LEASE apr_time_from_sec(30)
#define MAX_LOCK_LEASE 86400

global_conf globals = {DEFAULT_SHM_SIZE, 0, -1, NULL};

void global_conf_reset(void)
{
    globals.shm_size = DEFAULT_SHM_SIZE;
    globals.record_format = 0;
    globals.record_seal = -1;
    globals.shm_file = NULL;
}

void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    server_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->retention.idle = c->retention.absolute = SS_EXPIRY_NARROWEST;
    return c;
}

void *merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    server_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));

    c->backend = add->backend ? add->backend : base->backend;
    c->redis = add->backend ? add->redis : base->redis;
    c->max_size = add->max_size ? add->max_size : base->max_size;
    /* A virtual host also serves the main server's <Location>s. */
    c->retention = add->retention;
    ss_expiry_widen(&c->retention, &base->retention);
    return c;
}

void *create_dir_conf(apr_pool_t *p, char *dir)
{
    dir_conf *c = apr_pcalloc(p, sizeof(*c));

    (void)dir;
    c->idle = apr_time_from_sec(DEFAULT_IDLE_TIMEOUT);
    c->absolute = apr_time_from_sec(DEFAULT_ABSOLUTE_TIMEOUT);
    c->lock = -1;
    c->lock_timeout = DEFAULT_LOCK_TIMEOUT;
    c->lock_lease = DEFAULT_LOCK_LEASE;
    return c;
}

void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));

    c->cookie = add->cookie_set ? add->cookie : base->cookie;
    c->cookie_set = add->cookie_set || base->cookie_set;
    c->idle = add->idle_set ? add->idle : base->idle;
    c->idle_set = add->idle_set || base->idle_set;
    c->absolute = add->absolute_set ? add->absolute : base->absolute;
    c->absolute_set = add->absolute_set || base->absolute_set;
    c->outage = add->outage ? add->outage : base->outage;
    c->revoke_header = add->revoke_header_set ? add->revoke_header : base->revoke_header;
    c->revoke_header_set = add->revoke_header_set || base->revoke_header_set;
    c->lock = add->lock >= 0 ? add->lock : base->lock;
    c->lock_timeout = add->lock_timeout_set ? add->lock_timeout : base->lock_timeout;
    c->lock_timeout_set = add->lock_timeout_set || base->lock_timeout_set;
    c->lock_lease = add->lock_lease_set ? add->lock_lease : base->lock_lease;
    c->lock_lease_set = add->lock_lease_set || base->lock_lease_set;
    return c;
}

static const char *set_backend(cmd_parms *cmd, void *dummy, const char *arg)
{
    server_conf *c = ap_get_module_config(cmd->server->module_config, &sessstore_module);

    (void)dummy;
    if (!strcasecmp(arg, "shm")) {
        c->backend = "shm";
        c->redis = NULL;
        return NULL;
    }
    if (strstr(arg, "://")) {
        /* The argument may hold a password: never repeat it in a message. */
        const char *err = ss_redis_parse(&c->redis, arg, cmd->pool);

        if (!err) {
            /* TLS files are loaded now, as root, so that configtest fails
             * on one that is missing or bad; post_config loads them again. */
            err = ss_redis_check(c->redis, cmd->temp_pool);
        }
        if (err) {
            return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
        }
        c->backend = arg;
        return NULL;
    }
    /* Not even its beginning is repeated: a mistyped URI holds a password. */
    return apr_psprintf(cmd->pool,
                        "%s: unknown backend (expected 'shm', 'redis://...', 'rediss://...', "
                        "'unix://...' or 'redis-cluster://...')",
                        cmd->cmd->name);
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

/* The store keeps a record as long as the most lenient timeout in force on
 * the server could still accept it: every value set in a section counts
 * here, and post_config adds the server's own where a section runs on it. */
static void widen_retention(cmd_parms *cmd, apr_interval_time_t idle, apr_interval_time_t absolute)
{
    server_conf *sc = ap_get_module_config(cmd->server->module_config, &sessstore_module);
    ss_expiry_t e = {idle, absolute};

    ss_expiry_widen(&sc->retention, &e);
}

static const char *set_idle(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;
    const char *err = parse_timeout(cmd, arg, &c->idle);

    c->idle_set = 1;
    if (!err) {
        widen_retention(cmd, c->idle, SS_EXPIRY_NARROWEST);
    }
    return err;
}

static const char *set_absolute(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;
    const char *err = parse_timeout(cmd, arg, &c->absolute);

    c->absolute_set = 1;
    if (!err) {
        widen_retention(cmd, SS_EXPIRY_NARROWEST, c->absolute);
    }
    return err;
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
    return parse_size(cmd, arg, SS_SHM_MIN_SIZE, (apr_size_t)64 * 1024 * 1024 * 1024,
                      &globals.shm_size);
}

static const char *set_shm_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (!*arg || strlen(arg) >= SHM_FILE_MAX - 256) {
        return apr_psprintf(cmd->pool, "%s needs a file name (or 'none')", cmd->cmd->name);
    }
    globals.shm_file = arg;
    return NULL;
}

static const char *set_max_session_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    server_conf *c = ap_get_module_config(cmd->server->module_config, &sessstore_module);

    (void)dummy;
    return parse_size(cmd, arg, MIN_MAX_SESSION_SIZE, MAX_MAX_SESSION_SIZE, &c->max_size);
}

static const char *set_revoke_header(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;
    const char *p;

    c->revoke_header_set = 1;
    if (!strcasecmp(arg, "none")) {
        c->revoke_header = NULL;
        return NULL;
    }
    for (p = arg; *p; p++) {
        /* An HTTP token: what a handler can set as a header name. */
        if (!apr_isalnum(*p) && !strchr("!#$%&'*+-.^_`|~", *p)) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not a header name", cmd->cmd->name,
                                ap_escape_logitem(cmd->pool, arg));
        }
    }
    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s needs a header name", cmd->cmd->name);
    }
    c->revoke_header = arg;
    return NULL;
}

static const char *set_record_format(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (strcmp(arg, "1") && strcmp(arg, "2")) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is neither 1 (the format of earlier releases, for a rolling "
                            "upgrade) nor 2 (the current one)",
                            cmd->cmd->name, arg);
    }
    globals.record_format = *arg - '0';
    return NULL;
}

static const char *set_seal(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "off")) {
        globals.record_seal = 0;
    } else if (!strcasecmp(arg, "on")) {
        globals.record_seal = 1;
    } else if (!strcasecmp(arg, "required")) {
        globals.record_seal = 2;
    } else {
        return apr_psprintf(cmd->pool, "%s: '%s' is not On, Off or Required", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_lock(cmd_parms *cmd, void *dconf, int on)
{
    (void)cmd;
    ((dir_conf *)dconf)->lock = on;
    return NULL;
}

/* The wait must end before the lock it waits for could die of old age:
 * checked here within one section, at start-up across them. */
const char *lock_pair_error(apr_pool_t *p, const dir_conf *c)
{
    if (c->lock_timeout >= c->lock_lease) {
        return apr_psprintf(p,
                            "SessionStoreLockTimeout (%" APR_TIME_T_FMT
                            " ms) must be shorter than SessionStoreLockLease (%" APR_TIME_T_FMT
                            " s): a waiter would outlast the lock it waits for",
                            apr_time_as_msec(c->lock_timeout), apr_time_sec(c->lock_lease));
    }
    return NULL;
}

/* Seconds, or milliseconds with "ms": 0 (do not wait) to 60 s. */
static const char *set_lock_timeout(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;
    char *end;
    apr_int64_t v, ms;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    ms = !strcasecmp(end, "ms") ? v : v * 1000;
    if (errno || end == arg || (*end && strcasecmp(end, "ms")) || v < 0 ||
        v > MAX_LOCK_TIMEOUT_MS || ms > MAX_LOCK_TIMEOUT_MS) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a wait between 0 and %d ms (seconds, or "
                            "milliseconds with 'ms': 2, 500ms)",
                            cmd->cmd->name, arg, MAX_LOCK_TIMEOUT_MS);
    }
    c->lock_timeout = apr_time_from_msec(ms);
    c->lock_timeout_set = 1;
    return c->lock_lease_set ? lock_pair_error(cmd->pool, c) : NULL;
}

static const char *set_lock_lease(cmd_parms *cmd, void *dconf, const char *arg)
{
    dir_conf *c = dconf;
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > MAX_LOCK_LEASE) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds between 1 and %d",
                            cmd->cmd->name, arg, MAX_LOCK_LEASE);
    }
    c->lock_lease = apr_time_from_sec(v);
    c->lock_lease_set = 1;
    return c->lock_timeout_set ? lock_pair_error(cmd->pool, c) : NULL;
}

const command_rec sessstore_cmds[] = {
    AP_INIT_TAKE1("SessionStoreBackend", set_backend, NULL, RSRC_CONF,
                  "Where sessions live: 'shm' (shared memory on this host, the default), "
                  "'redis://[[user]:password@]host[:port][/db][?options]', "
                  "'unix:///path/redis.sock[?options]' or "
                  "'redis-cluster://[[user]:password@]host[:port][,host[:port]...][?options]'"),
    AP_INIT_TAKE1("SessionStoreOutage", set_outage, NULL, RSRC_CONF | OR_AUTHCFG,
                  "While the store cannot be reached, requests that carry a session get "
                  "'unavailable' (503, the default) or continue with 'nosession'"),
    AP_INIT_RAW_ARGS("SessionStoreCookieName", set_cookie_name, NULL, RSRC_CONF | OR_AUTHCFG,
                     "Cookie holding the session ID, then optional attributes "
                     "(Path=, Domain=, SameSite=, Secure, !Secure, !HttpOnly, ...); "
                     "turns the store on for this directory"),
    /* Not in .htaccess: the store must know every timeout of the server
     * before the first request (see widen_retention). */
    AP_INIT_TAKE1("SessionStoreIdleTimeout", set_idle, NULL, RSRC_CONF | ACCESS_CONF,
                  "Seconds without a request after which a session ends (0: never)"),
    AP_INIT_TAKE1("SessionStoreAbsoluteTimeout", set_absolute, NULL, RSRC_CONF | ACCESS_CONF,
                  "Seconds after its creation at which a session ends (0: never)"),
    AP_INIT_TAKE1("SessionStoreShmSize", set_shm_size, NULL, RSRC_CONF,
                  "Bytes of shared memory for the shm backend (K, M, G suffixes)"),
    AP_INIT_TAKE1("SessionStoreShmFile", set_shm_file, NULL, RSRC_CONF,
                  "Name of the shm store's segment, for sessstore -b shm:PATH (relative: "
                  "under DefaultRuntimeDir; default sessstore.shm; 'none': anonymous)"),
    AP_INIT_TAKE1("SessionStoreMaxSessionSize", set_max_session_size, NULL, RSRC_CONF,
                  "Largest stored session in bytes; larger saves are refused"),
    AP_INIT_TAKE1("SessionStoreRevokeHeader", set_revoke_header, NULL, RSRC_CONF | ACCESS_CONF,
                  "Response header through which an application ends sessions of the "
                  "current user: value 'user' (all of them) or 'others' (all but this "
                  "one); never sent to the client ('none' switches it off)"),
    AP_INIT_TAKE1("SessionStoreRecordFormat", set_record_format, NULL, RSRC_CONF,
                  "Format of the records written: 2 (the default) or 1, while nodes of an "
                  "earlier release still share the store"),
    AP_INIT_TAKE1("SessionStoreSeal", set_seal, NULL, RSRC_CONF,
                  "Seal records with a key derived from the session ID: On (the default), "
                  "Off, or Required (records in clear are refused too)"),
    /* Not in .htaccess: start-up checks every lock wait against the
     * server's Timeout. */
    AP_INIT_FLAG("SessionStoreLock", set_lock, NULL, RSRC_CONF | ACCESS_CONF,
                 "On: the requests of one session run one after another (default Off)"),
    AP_INIT_TAKE1("SessionStoreLockTimeout", set_lock_timeout, NULL, RSRC_CONF | ACCESS_CONF,
                  "Longest wait for a session's lock, then 503 (seconds, or ms with 'ms'; "
                  "default 2)"),
    AP_INIT_TAKE1("SessionStoreLockLease", set_lock_lease, NULL, RSRC_CONF | ACCESS_CONF,
                  "Seconds after which a session's lock frees itself, held or not (default 30)"),
    {NULL}};

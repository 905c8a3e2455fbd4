/* ss_redis_sentinel.c - the master's address from the sentinels, over the
 * store's own transport (one deadline, TLS), one short-lived connection per
 * question. One mutex, never held across network I/O. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_log.h"
#include "ss_redis_conn.h" /* SS_REDIS_LOG_INTERVAL */
#include "ss_redis_sentinel.h"

#define ERR_LEN SS_REDIS_ERR_LEN

/* A node the sentinels named, and its endpoint (kept: connections may still
 * use it). */
typedef struct {
    char *host;
    int port;
    ss_redis_endpoint_t *ep;
} master_t;

/* What a round of questions found. */
typedef enum { ASK_OK, ASK_UNREACHABLE, ASK_UNKNOWN, ASK_REFUSED } ask_e;

struct ss_redis_sentinel_t {
    const ss_redis_config_t *cfg;
    const char *target;
    ss_redis_endpoint_t **eps; /* one per sentinel, in cfg's order */
    apr_thread_mutex_t *mu;    /* everything below */
    apr_pool_t *pool;          /* for new masters' endpoints, under mu */
    int *order;                /* indices into eps: the last that answered first */
    master_t masters[SS_REDIS_SENTINEL_MASTERS_MAX];
    int nmasters;
    int current; /* index into masters; -1: none yet */
    unsigned gen;
    int suspect;        /* ask before the next connection */
    int refreshing;     /* a thread is asking for ss_redis_sentinel_refresh */
    apr_time_t learned; /* ss_redis_clock() of the last answer */
    int answered_by;    /* index into eps */
    ask_e last_kind;    /* of the last failure logged; ASK_OK: none */
    apr_time_t last_log;
    pid_t pid; /* a forked child keeps the answer, but asks again */
};

apr_status_t ss_redis_sentinel_create(ss_redis_sentinel_t **out, const ss_redis_config_t *cfg,
                                      const char *target, apr_pool_t *p, char *err,
                                      apr_size_t errlen)
{
    ss_redis_sentinel_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv;
    int i;

    s->cfg = cfg;
    s->target = target;
    s->current = -1;
    s->pid = getpid();
    s->eps = apr_pcalloc(p, sizeof(*s->eps) * cfg->nsentinels);
    s->order = apr_pcalloc(p, sizeof(*s->order) * cfg->nsentinels);
    rv = apr_thread_mutex_create(&s->mu, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create(&s->pool, p);
    }
    if (rv != APR_SUCCESS) {
        apr_cpystrn(err, "cannot create a mutex or a pool", errlen);
        return rv;
    }
    for (i = 0; i < cfg->nsentinels && rv == APR_SUCCESS; i++) {
        /* The data nodes' TLS options, the sentinel's address and
         * credentials (no db: a sentinel has none). */
        ss_redis_config_t *sc = apr_pmemdup(p, cfg, sizeof(*cfg));

        sc->host = cfg->sentinels[i].host;
        sc->port = cfg->sentinels[i].port;
        sc->user = cfg->sentinel_user;
        sc->password = cfg->sentinel_password;
        sc->db = 0;
        rv = i ? ss_redis_endpoint_derive(&s->eps[i], s->eps[0], sc, p, err, errlen)
               : ss_redis_endpoint_create(&s->eps[i], sc, p, err, errlen);
        s->order[i] = i;
    }
    if (rv == APR_SUCCESS) {
        *out = s;
    }
    return rv;
}

/* Log a failure of the sentinels: when its kind changes, then at most once
 * per SS_REDIS_LOG_INTERVAL. */
static void log_failure(ss_redis_sentinel_t *s, ask_e kind, const char *why)
{
    apr_time_t now = apr_time_now();
    int emit;

    apr_thread_mutex_lock(s->mu);
    emit = kind != s->last_kind || now - s->last_log >= SS_REDIS_LOG_INTERVAL;
    if (emit) {
        s->last_kind = kind;
        s->last_log = now;
    }
    apr_thread_mutex_unlock(s->mu);
    if (emit) {
        ss_log(SS_LOG_ERR, kind == ASK_UNREACHABLE ? APR_ECONNREFUSED : APR_EGENERAL,
               "redis session store %s: %s", s->target, why);
    }
}

/* A reply's string, NULL when it is not one. */
static const char *reply_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : NULL;
}

/* Ask sentinel i, before deadline. ASK_OK with host and port (malloc'd
 * host); else err says why. */
static ask_e ask_one(ss_redis_sentinel_t *s, int i, apr_time_t deadline, char **host, int *port,
                     char *err, apr_size_t errlen)
{
    const ss_redis_config_t *cfg = s->cfg;
    const char *auth[3] = {"AUTH", cfg->sentinel_user ? cfg->sentinel_user : "",
                           cfg->sentinel_password ? cfg->sentinel_password : ""};
    const char *get[3] = {"SENTINEL", "get-master-addr-by-name", cfg->sentinel_master};
    size_t auth_len[3], get_len[3];
    ss_redis_argv_t cmds[2];
    redisReply *replies[2] = {NULL, NULL}, *r;
    ss_redis_transport_t *t;
    char why[ERR_LEN];
    const char *h, *pt;
    apr_status_t rv;
    ask_e kind = ASK_REFUSED;
    int n = 0, k;

    for (k = 0; k < 3; k++) {
        auth_len[k] = strlen(auth[k]);
        get_len[k] = strlen(get[k]);
    }
    if (cfg->sentinel_user) {
        cmds[n++] = (ss_redis_argv_t){3, auth, auth_len};
    } else if (cfg->sentinel_password) {
        auth[1] = auth[2];
        auth_len[1] = auth_len[2];
        cmds[n++] = (ss_redis_argv_t){2, auth, auth_len};
    }
    cmds[n++] = (ss_redis_argv_t){3, get, get_len};
    rv = ss_redis_transport_open(&t, s->eps[i], deadline, why, sizeof(why));
    if (rv == APR_SUCCESS) {
        rv = ss_redis_transport_call(t, n, cmds, replies, deadline, why, sizeof(why));
        ss_redis_transport_close(t);
    }
    if (rv != APR_SUCCESS) {
        apr_snprintf(err, errlen, "sentinel %s:%d: %s", cfg->sentinels[i].host,
                     cfg->sentinels[i].port, why);
        return ASK_UNREACHABLE;
    }
    r = replies[n - 1];
    if (n == 2 && replies[0]->type == REDIS_REPLY_ERROR) {
        apr_snprintf(err, errlen, "sentinel %s:%d refused AUTH: %s", cfg->sentinels[i].host,
                     cfg->sentinels[i].port, replies[0]->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        apr_snprintf(err, errlen, "sentinel %s:%d knows no master named '%s'",
                     cfg->sentinels[i].host, cfg->sentinels[i].port, cfg->sentinel_master);
        kind = ASK_UNKNOWN;
    } else if (r->type == REDIS_REPLY_ERROR) {
        apr_snprintf(err, errlen, "sentinel %s:%d refused SENTINEL get-master-addr-by-name: %s",
                     cfg->sentinels[i].host, cfg->sentinels[i].port, r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               !(h = reply_str(r->element[0])) || !(pt = reply_str(r->element[1])) || !*h ||
               (*port = atoi(pt)) < 1 || *port > 65535) {
        apr_snprintf(err, errlen,
                     "sentinel %s:%d: unexpected answer to SENTINEL get-master-addr-by-name",
                     cfg->sentinels[i].host, cfg->sentinels[i].port);
    } else {
        *host = strdup(h);
        kind = *host ? ASK_OK : ASK_REFUSED;
    }
    for (k = 0; k < n; k++) {
        freeReplyObject(replies[k]);
    }
    return kind;
}

/* The endpoint of host:port, made on first sight. Under mu. */
static int master_index_locked(ss_redis_sentinel_t *s, const char *host, int port, char *err,
                               apr_size_t errlen)
{
    ss_redis_config_t *mc;
    master_t *m;
    int i;

    for (i = 0; i < s->nmasters; i++) {
        if (s->masters[i].port == port && !strcmp(s->masters[i].host, host)) {
            return i;
        }
    }
    if (s->nmasters == SS_REDIS_SENTINEL_MASTERS_MAX) {
        apr_snprintf(err, errlen,
                     "the sentinels named more than %d distinct master addresses; a graceful "
                     "restart of httpd forgets them",
                     SS_REDIS_SENTINEL_MASTERS_MAX);
        return -1;
    }
    m = &s->masters[s->nmasters];
    mc = apr_pmemdup(s->pool, s->cfg, sizeof(*mc));
    mc->host = apr_pstrdup(s->pool, host);
    mc->port = port;
    if (ss_redis_endpoint_derive(&m->ep, s->eps[0], mc, s->pool, err, errlen) != APR_SUCCESS) {
        return -1;
    }
    m->host = (char *)mc->host;
    m->port = port;
    return s->nmasters++;
}

/* The sentinel that answered goes first. Under mu. */
static void to_front_locked(ss_redis_sentinel_t *s, int from)
{
    int k;

    for (k = 0; s->order[k] != from; k++) {
    }
    for (; k > 0; k--) {
        s->order[k] = s->order[k - 1];
    }
    s->order[0] = from;
}

/* Take an answer: a new address is a new generation. */
static apr_status_t learned(ss_redis_sentinel_t *s, int from, const char *host, int port,
                            ss_redis_endpoint_t **ep, unsigned *gen, char *err, apr_size_t errlen)
{
    char old[300] = "";
    int i, changed = 0;

    apr_thread_mutex_lock(s->mu);
    i = master_index_locked(s, host, port, err, errlen);
    if (i >= 0) {
        if (i != s->current) {
            if (s->current >= 0) {
                apr_snprintf(old, sizeof(old), " (was %s:%d)", s->masters[s->current].host,
                             s->masters[s->current].port);
            }
            changed = 1;
            s->current = i;
            s->gen++;
        }
        s->suspect = 0;
        s->learned = ss_redis_clock();
        s->answered_by = from;
        s->last_kind = ASK_OK;
        *ep = s->masters[i].ep;
        *gen = s->gen;
        to_front_locked(s, from);
    }
    apr_thread_mutex_unlock(s->mu);
    if (i < 0) {
        return APR_EGENERAL;
    }
    if (changed) {
        ss_log(SS_LOG_NOTICE, APR_SUCCESS,
               "redis session store %s: master '%s' is at %s:%d%s, says sentinel %s:%d", s->target,
               s->cfg->sentinel_master, host, port, old, s->cfg->sentinels[from].host,
               s->cfg->sentinels[from].port);
    }
    return APR_SUCCESS;
}

/* Ask the sentinels in order, before deadline. */
static apr_status_t ask_all(ss_redis_sentinel_t *s, apr_time_t deadline, ss_redis_endpoint_t **ep,
                            unsigned *gen, char *err, apr_size_t errlen)
{
    const ss_redis_config_t *cfg = s->cfg;
    int order[SS_REDIS_SENTINEL_MAX], i, unknown = 0, refused = 0, asked = 0;
    char why[ERR_LEN] = "", last[ERR_LEN] = "";
    apr_status_t rv;

    apr_thread_mutex_lock(s->mu);
    memcpy(order, s->order, sizeof(*order) * cfg->nsentinels);
    apr_thread_mutex_unlock(s->mu);

    for (i = 0; i < cfg->nsentinels; i++) {
        apr_time_t now = ss_redis_clock(), until = now + cfg->connect_timeout;
        char *host = NULL;
        int port = 0;
        ask_e kind;

        if (now >= deadline) {
            break;
        }
        asked++;
        kind = ask_one(s, order[i], until < deadline ? until : deadline, &host, &port, why,
                       sizeof(why));
        if (kind == ASK_OK) {
            rv = learned(s, order[i], host, port, ep, gen, err, errlen);
            free(host);
            return rv;
        }
        unknown += kind == ASK_UNKNOWN;
        refused += kind == ASK_REFUSED;
        apr_cpystrn(last, why, sizeof(last));
    }
    if (unknown) {
        apr_snprintf(err, errlen,
                     "unknown master name '%s': %d of the %d sentinels asked know no such "
                     "master (check the name in the URI against sentinel.conf's 'sentinel "
                     "monitor'); last: %s",
                     cfg->sentinel_master, unknown, asked, last);
        log_failure(s, ASK_UNKNOWN, err);
    } else if (refused) {
        apr_snprintf(err, errlen, "sentinels refused: %d of the %d asked; last: %s", refused, asked,
                     last);
        log_failure(s, ASK_REFUSED, err);
    } else {
        apr_snprintf(err, errlen, "no sentinel reachable: %d of %d asked%s; last: %s", asked,
                     cfg->nsentinels, asked < cfg->nsentinels ? " before the deadline" : "",
                     asked ? last : "no time left");
        log_failure(s, ASK_UNREACHABLE, err);
    }
    return unknown || refused ? APR_EGENERAL : APR_ECONNREFUSED;
}

/* The last answer is younger than max_age and not suspected. Under mu. */
static int fresh_locked(ss_redis_sentinel_t *s, apr_interval_time_t max_age)
{
    if (s->pid != getpid()) {
        s->pid = getpid();
        s->suspect = 1;
    }
    return s->current >= 0 && !s->suspect && ss_redis_clock() - s->learned < max_age;
}

apr_status_t ss_redis_sentinel_master(ss_redis_sentinel_t *s, apr_time_t deadline,
                                      ss_redis_endpoint_t **ep, unsigned *gen, char *err,
                                      apr_size_t errlen)
{
    apr_thread_mutex_lock(s->mu);
    if (fresh_locked(s, SS_REDIS_SENTINEL_FRESH)) {
        *ep = s->masters[s->current].ep;
        *gen = s->gen;
        apr_thread_mutex_unlock(s->mu);
        return APR_SUCCESS;
    }
    apr_thread_mutex_unlock(s->mu);
    return ask_all(s, deadline, ep, gen, err, errlen);
}

int ss_redis_sentinel_refresh(ss_redis_sentinel_t *s, apr_time_t deadline,
                              apr_interval_time_t max_age)
{
    ss_redis_endpoint_t *ep;
    unsigned gen;
    char err[ERR_LEN];

    apr_thread_mutex_lock(s->mu);
    if (s->refreshing || fresh_locked(s, max_age)) {
        apr_thread_mutex_unlock(s->mu);
        return 0;
    }
    s->refreshing = 1;
    apr_thread_mutex_unlock(s->mu);
    ask_all(s, deadline, &ep, &gen, err, sizeof(err)); /* a failure is logged there */
    apr_thread_mutex_lock(s->mu);
    s->refreshing = 0;
    apr_thread_mutex_unlock(s->mu);
    return 1;
}

void ss_redis_sentinel_suspect(ss_redis_sentinel_t *s, unsigned gen)
{
    apr_thread_mutex_lock(s->mu);
    if (gen == s->gen) {
        s->suspect = 1;
    }
    apr_thread_mutex_unlock(s->mu);
}

unsigned ss_redis_sentinel_gen(ss_redis_sentinel_t *s)
{
    unsigned gen;

    apr_thread_mutex_lock(s->mu);
    gen = s->gen;
    apr_thread_mutex_unlock(s->mu);
    return gen;
}

int ss_redis_sentinel_is_master(const redisReply *role)
{
    const char *r;

    if (!role || role->type != REDIS_REPLY_ARRAY || role->elements < 1) {
        return 0;
    }
    r = reply_str(role->element[0]);
    return r && !strcmp(r, "master");
}

const char *ss_redis_sentinel_describe(ss_redis_sentinel_t *s, apr_pool_t *p)
{
    const char *d;

    apr_thread_mutex_lock(s->mu);
    if (s->current < 0) {
        d = "master not known yet in this process";
    } else {
        const ss_redis_addr_t *a = &s->cfg->sentinels[s->answered_by];

        d = apr_psprintf(p,
                         "master %s:%d%s (sentinel %s:%d answered %" APR_TIME_T_FMT
                         " ms ago in this process)",
                         s->masters[s->current].host, s->masters[s->current].port,
                         s->suspect ? ", suspected" : "", a->host, a->port,
                         apr_time_as_msec(ss_redis_clock() - s->learned));
    }
    apr_thread_mutex_unlock(s->mu);
    return d;
}

const char *ss_redis_sentinel_address(ss_redis_sentinel_t *s, apr_pool_t *p)
{
    const char *a = NULL;

    apr_thread_mutex_lock(s->mu);
    if (s->current >= 0) {
        a = apr_psprintf(p, "%s:%d", s->masters[s->current].host, s->masters[s->current].port);
    }
    apr_thread_mutex_unlock(s->mu);
    return a;
}

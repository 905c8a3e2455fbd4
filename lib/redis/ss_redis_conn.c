/* ss_redis_conn.c - connections to Redis: a per-process LIFO of idle
 * connections (ss_redis_transport.c), the circuit breaker and the
 * rate-limited outage log, all under one thread mutex never held across
 * network I/O. Each operation has one deadline (ss_redis_transport.h). */
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_log.h"
#include "ss_redis_conn.h"
#include "ss_redis_sentinel.h"
#include "ss_redis_transport.h"

#define ERR_LEN SS_REDIS_ERR_LEN

/* An idle connection, when it was opened (for max_age), and to which
 * master (Sentinel: the generation of the sentinels' answer). */
typedef struct {
    ss_redis_transport_t *c;
    apr_time_t born;
    unsigned mgen;
} idle_t;

struct ss_redis_conn_t {
    const ss_redis_config_t *cfg;
    const char *target;            /* for log lines, no password */
    ss_redis_endpoint_t *ep;       /* NULL with Sentinel */
    ss_redis_sentinel_t *sentinel; /* NULL without */
    apr_thread_mutex_t *mutex;
    /* Everything below is under mutex. */
    idle_t *idle; /* LIFO: the most recently used socket is the likeliest alive */
    int nidle;
    unsigned gen; /* ss_redis_conn_discard: connections lent out before it are not pooled again */
    pid_t pid;    /* process the idle contexts belong to */
    int closed;
    apr_time_t breaker_until; /* 0: closed; else fail fast until then, then one probe */
    unsigned breaker_mgen;    /* Sentinel: the master's generation when it opened */
    int probing;
    int down; /* failing since down_since; logged */
    apr_time_t down_since, last_report;
    apr_uint64_t failures, unreported, unreported_fast;
    apr_status_t last_rv;
    char last_error[ERR_LEN];
    ss_store_stats_t stats;
};

/* A connection lent to one operation. */
typedef struct {
    ss_redis_transport_t *c;
    apr_time_t born; /* when c was opened */
    unsigned gen;    /* rc->gen when lent */
    unsigned mgen;   /* Sentinel: the generation of the master c goes to */
    int pooled;      /* taken from the idle pool, so possibly stale */
    int timed_out;   /* the last failure was a timeout */
    int refused;     /* the last failure was an error reply, not an I/O error */
    int replica;     /* Sentinel: the node named was not a master (ROLE) */
    int connects, retried;
    char err[ERR_LEN]; /* why the last exchange failed */
} lease_t;

/* A log line decided under the mutex, written after it is released. */
typedef struct {
    int level; /* 0: none */
    apr_status_t rv;
    char msg[512];
} note_t;

static void note_emit(const note_t *n)
{
    if (n->level) {
        ss_log(n->level, n->rv, "%s", n->msg);
    }
}

static void drop_idle_locked(ss_redis_conn_t *rc)
{
    while (rc->nidle) {
        ss_redis_transport_close(rc->idle[--rc->nidle].c);
    }
}

/* A forked child inherits its parent's sockets and state; it starts afresh. */
static void check_pid_locked(ss_redis_conn_t *rc)
{
    pid_t pid = getpid();

    if (rc->pid == pid) {
        return;
    }
    drop_idle_locked(rc);
    rc->pid = pid;
    rc->breaker_until = 0;
    rc->probing = 0;
    rc->down = 0;
    memset(&rc->stats, 0, sizeof(rc->stats));
}

static void report_locked(ss_redis_conn_t *rc, apr_time_t now, note_t *note)
{
    note->level = SS_LOG_ERR;
    note->rv = rc->last_rv;
    apr_snprintf(note->msg, sizeof(note->msg),
                 "redis session store %s still unavailable: %" APR_UINT64_T_FMT
                 " more failed operations in the last %" APR_TIME_T_FMT " s (%" APR_UINT64_T_FMT
                 " failed at once, breaker open); last error: %s",
                 rc->target, rc->unreported, apr_time_sec(now - rc->last_report),
                 rc->unreported_fast, rc->last_error);
    rc->last_report = now;
    rc->unreported = 0;
    rc->unreported_fast = 0;
}

/* Count a failed operation; log the first of an outage, then summaries. */
static void failed_locked(ss_redis_conn_t *rc, apr_status_t rv, const char *why, int fast,
                          apr_time_t now, note_t *note)
{
    rc->stats.errors++;
    rc->stats.fast_fails += fast;
    if (!fast) {
        rc->last_rv = rv;
        apr_cpystrn(rc->last_error, why, sizeof(rc->last_error));
    }
    if (!rc->down) {
        rc->down = 1;
        rc->down_since = rc->last_report = now;
        rc->failures = 1;
        rc->unreported = rc->unreported_fast = 0;
        note->level = SS_LOG_ERR;
        note->rv = rv;
        apr_snprintf(note->msg, sizeof(note->msg),
                     "redis session store %s unavailable: %s; sessions can be neither loaded nor "
                     "saved until it answers (further failures summarised every %" APR_TIME_T_FMT
                     " s)",
                     rc->target, why, apr_time_sec(SS_REDIS_LOG_INTERVAL));
        return;
    }
    rc->failures++;
    rc->unreported++;
    rc->unreported_fast += fast;
    if (now - rc->last_report >= SS_REDIS_LOG_INTERVAL) {
        report_locked(rc, now, note);
    }
}

static void recovered_locked(ss_redis_conn_t *rc, apr_time_t now, note_t *note)
{
    rc->breaker_until = 0;
    rc->probing = 0;
    if (!rc->down) {
        return;
    }
    rc->down = 0;
    note->level = SS_LOG_NOTICE;
    note->rv = APR_SUCCESS;
    apr_snprintf(note->msg, sizeof(note->msg),
                 "redis session store %s answers again after %" APR_UINT64_T_FMT
                 " failed operations over %" APR_TIME_T_FMT " ms",
                 rc->target, rc->failures, apr_time_as_msec(now - rc->down_since));
}

/* Past max_age: closed rather than used again. */
static int too_old(const ss_redis_conn_t *rc, apr_time_t born, apr_time_t now)
{
    return rc->cfg->max_age > 0 && now - born >= rc->cfg->max_age;
}

/* Whether a connection to the master of generation mgen goes to the current
 * one (always, without Sentinel). */
static int same_master(ss_redis_conn_t *rc, unsigned mgen)
{
    return !rc->sentinel || mgen == ss_redis_sentinel_gen(rc->sentinel);
}

/* Admit an operation (or fail it at once while the breaker is open) and hand
 * it an idle connection if there is one. */
static apr_status_t acquire(ss_redis_conn_t *rc, lease_t *lease)
{
    apr_time_t now = apr_time_now();
    note_t note = {0};
    apr_status_t rv = APR_SUCCESS;

    apr_thread_mutex_lock(rc->mutex);
    check_pid_locked(rc);
    if (rc->cfg->breaker > 0 && rc->breaker_until) {
        if (now < rc->breaker_until || rc->probing) {
            rv = APR_ECONNREFUSED;
            failed_locked(rc, rv, "breaker open", 1, now, &note);
        } else {
            rc->probing = 1; /* this operation is the probe */
        }
    }
    lease->gen = rc->gen;
    while (rv == APR_SUCCESS && rc->nidle && !lease->c) {
        idle_t *e = &rc->idle[--rc->nidle];

        if (too_old(rc, e->born, now) || !same_master(rc, e->mgen)) {
            ss_redis_transport_close(e->c); /* a close(), no network wait */
        } else {
            lease->c = e->c;
            lease->born = e->born;
            lease->mgen = e->mgen;
            lease->pooled = 1;
        }
    }
    apr_thread_mutex_unlock(rc->mutex);
    note_emit(&note);
    return rv;
}

static void release(ss_redis_conn_t *rc, lease_t *lease, apr_status_t rv)
{
    apr_time_t now = apr_time_now();
    note_t note = {0};

    apr_thread_mutex_lock(rc->mutex);
    rc->stats.connects += lease->connects;
    rc->stats.retries += lease->retried;
    if (lease->c && !rc->closed && rc->pid == getpid() && lease->gen == rc->gen &&
        !too_old(rc, lease->born, now) && same_master(rc, lease->mgen) &&
        rc->nidle < rc->cfg->max_idle) {
        rc->idle[rc->nidle].c = lease->c;
        rc->idle[rc->nidle].mgen = lease->mgen;
        rc->idle[rc->nidle++].born = lease->born;
        lease->c = NULL;
    }
    if (rv == APR_SUCCESS) {
        recovered_locked(rc, now, &note);
    } else {
        /* Only I/O failures (and a refused AUTH or SELECT) open the
         * breaker: an error reply to a command came quickly over a working
         * connection, so nothing is gained by failing fast. */
        if (!lease->refused && rc->cfg->breaker > 0) {
            rc->breaker_until = now + rc->cfg->breaker;
            rc->breaker_mgen = rc->sentinel ? ss_redis_sentinel_gen(rc->sentinel) : 0;
        } else {
            rc->breaker_until = 0;
        }
        rc->probing = 0;
        failed_locked(rc, rv, lease->err, 0, now, &note);
    }
    apr_thread_mutex_unlock(rc->mutex);
    if (lease->c) {
        ss_redis_transport_close(lease->c);
        lease->c = NULL;
    }
    note_emit(&note);
}

/* Redis restarted or dropped idle clients: the other idle sockets are as
 * stale as the one that just failed. */
static void flush_idle(ss_redis_conn_t *rc)
{
    apr_thread_mutex_lock(rc->mutex);
    drop_idle_locked(rc);
    apr_thread_mutex_unlock(rc->mutex);
}

/* The lease's connection failed at the I/O or protocol level (the
 * transport's words in why): note it, close the connection. */
static apr_status_t conn_failed(lease_t *lease, ss_redis_transport_t *c, apr_status_t rv,
                                const char *what, const char *why)
{
    lease->timed_out = rv == APR_TIMEUP;
    if (what) {
        apr_snprintf(lease->err, sizeof(lease->err), "%s: %s", what, why);
    } else {
        apr_cpystrn(lease->err, why, sizeof(lease->err));
    }
    ss_redis_transport_close(c);
    if (lease->c == c) {
        lease->c = NULL;
    }
    return rv;
}

/* Note an error reply, without its final period: it goes inside a sentence. */
static void refused(lease_t *lease, const char *what, const redisReply *reply)
{
    size_t n;

    apr_snprintf(lease->err, sizeof(lease->err), "%s refused: %s", what, reply->str);
    n = strlen(lease->err);
    if (n && lease->err[n - 1] == '.') {
        lease->err[n - 1] = '\0';
    }
}

/* AUTH, SELECT and (Sentinel) ROLE, pipelined: one round trip per new
 * connection. */
static apr_status_t setup(const ss_redis_conn_t *rc, lease_t *lease, ss_redis_transport_t *c,
                          apr_time_t deadline)
{
    const ss_redis_config_t *cfg = rc->cfg;
    static const char *const role[1] = {"ROLE"};
    static const size_t role_len[1] = {4};
    const char *auth[3], *select[2];
    size_t auth_len[3], select_len[2];
    ss_redis_argv_t cmds[3];
    redisReply *replies[3];
    char db[16], why[ERR_LEN];
    int n = 0, i;
    apr_status_t rv;

    if (cfg->password) {
        auth[0] = "AUTH";
        auth[1] = cfg->user ? cfg->user : cfg->password;
        auth[2] = cfg->password;
        for (i = 0; i < 3; i++) {
            auth_len[i] = strlen(auth[i]);
        }
        cmds[n].argc = cfg->user ? 3 : 2;
        cmds[n].argv = auth;
        cmds[n++].len = auth_len;
    }
    if (cfg->db) {
        apr_snprintf(db, sizeof(db), "%d", cfg->db);
        select[0] = "SELECT";
        select[1] = db;
        select_len[0] = 6;
        select_len[1] = strlen(db);
        cmds[n].argc = 2;
        cmds[n].argv = select;
        cmds[n++].len = select_len;
    }
    if (rc->sentinel) {
        cmds[n++] = (ss_redis_argv_t){1, role, role_len};
    }
    if (!n) {
        return APR_SUCCESS;
    }
    rv = ss_redis_transport_call(c, n, cmds, replies, deadline, why, sizeof(why));
    if (rv != APR_SUCCESS) {
        return conn_failed(lease, c, rv, "AUTH/SELECT", why);
    }
    for (i = 0; i < n; i++) {
        int is_role = rc->sentinel && i == n - 1;

        if (rv == APR_SUCCESS && replies[i]->type == REDIS_REPLY_ERROR) {
            refused(lease,
                    is_role                   ? "ROLE"
                    : i == 0 && cfg->password ? "AUTH"
                                              : "SELECT",
                    replies[i]);
            rv = APR_EGENERAL;
        } else if (rv == APR_SUCCESS && is_role && !ss_redis_sentinel_is_master(replies[i])) {
            apr_cpystrn(lease->err,
                        "ROLE: the node the sentinels named is not a master (a failover under "
                        "way?)",
                        sizeof(lease->err));
            lease->replica = 1;
            rv = APR_EGENERAL;
        }
        freeReplyObject(replies[i]);
    }
    if (rv != APR_SUCCESS) {
        ss_redis_transport_close(c);
    }
    return rv;
}

/* Opening may use connect_timeout, and no more than the operation has. */
static apr_status_t connect_to(const ss_redis_conn_t *rc, ss_redis_endpoint_t *ep, lease_t *lease,
                               apr_time_t deadline)
{
    apr_time_t opened_by = ss_redis_clock() + rc->cfg->connect_timeout;
    ss_redis_transport_t *c;
    char why[ERR_LEN];
    apr_status_t rv;

    lease->replica = 0;
    rv = ss_redis_transport_open(&c, ep, opened_by < deadline ? opened_by : deadline, why,
                                 sizeof(why));
    if (rv != APR_SUCCESS) {
        lease->timed_out = rv == APR_TIMEUP;
        apr_cpystrn(lease->err, why, sizeof(lease->err));
        return rv;
    }
    lease->connects++;
    lease->born = apr_time_now();
    rv = setup(rc, lease, c, deadline);
    if (rv == APR_SUCCESS) {
        lease->c = c;
    }
    return rv;
}

/* A connection to the master the sentinels name (ss_redis_sentinel.h): a
 * failure makes them asked again next time; a node that is not a master, at
 * once after SS_REDIS_SENTINEL_ROLE_RETRY, while the deadline allows. */
static apr_status_t connect_master(const ss_redis_conn_t *rc, lease_t *lease, apr_time_t deadline)
{
    ss_redis_endpoint_t *ep;
    apr_status_t rv;

    for (;;) {
        rv = ss_redis_sentinel_master(rc->sentinel, deadline, &ep, &lease->mgen, lease->err,
                                      sizeof(lease->err));
        if (rv != APR_SUCCESS) {
            lease->timed_out = 0;
            lease->refused = rv != APR_ECONNREFUSED;
            return rv;
        }
        rv = connect_to(rc, ep, lease, deadline);
        if (rv == APR_SUCCESS) {
            return rv;
        }
        ss_redis_sentinel_suspect(rc->sentinel, lease->mgen);
        if (!lease->replica ||
            ss_redis_clock() + SS_REDIS_SENTINEL_ROLE_RETRY + rc->cfg->connect_timeout >=
                deadline) {
            lease->refused = lease->replica;
            return rv;
        }
        apr_sleep(SS_REDIS_SENTINEL_ROLE_RETRY);
    }
}

static apr_status_t connect_new(const ss_redis_conn_t *rc, lease_t *lease, apr_time_t deadline)
{
    return rc->sentinel ? connect_master(rc, lease, deadline)
                        : connect_to(rc, rc->ep, lease, deadline);
}

/* WAIT after a write: how many replicas, how long. */
typedef struct {
    int replicas;
    apr_interval_time_t timeout;
} wait_t;

/* cmd, after ASKING with cmd->asking (Redis Cluster), and with wait WAIT, all
 * in the same write: *acked is WAIT's answer, -1 when it is not an integer
 * (an error reply: *acked_err says which). */
static apr_status_t send_cmd(lease_t *lease, const ss_redis_cmd_t *cmd, const wait_t *wait,
                             apr_time_t deadline, redisReply **reply, long long *acked,
                             char *acked_err, char *why)
{
    static const char *const asking[] = {"ASKING"};
    static const size_t asking_len[] = {6};
    char n[16] = "", ms[24] = "";
    const char *wargv[3] = {"WAIT", n, ms};
    size_t wlen[3] = {4, 0, 0};
    ss_redis_argv_t cmds[3];
    redisReply *replies[3];
    apr_status_t rv;
    int k = 0, at;

    if (wait) {
        apr_snprintf(n, sizeof(n), "%d", wait->replicas);
        apr_snprintf(ms, sizeof(ms), "%" APR_TIME_T_FMT, apr_time_as_msec(wait->timeout));
        wlen[1] = strlen(n);
        wlen[2] = strlen(ms);
    }
    if (cmd->asking) {
        cmds[k++] = (ss_redis_argv_t){1, asking, asking_len};
    }
    at = k;
    cmds[k++] = (ss_redis_argv_t){cmd->argc, cmd->argv, cmd->len};
    cmds[k] = (ss_redis_argv_t){3, wargv, wlen};
    k += wait != NULL;
    rv = ss_redis_transport_call(lease->c, k, cmds, replies, deadline, why, ERR_LEN);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (at) {
        /* ASKING answers +OK; an error (an old server) stands for the command's. */
        if (replies[0]->type == REDIS_REPLY_ERROR) {
            freeReplyObject(replies[at]);
            replies[at] = replies[0];
        } else {
            freeReplyObject(replies[0]);
        }
    }
    *reply = replies[at];
    if (wait) {
        *acked = replies[at + 1]->type == REDIS_REPLY_INTEGER ? replies[at + 1]->integer : -1;
        apr_cpystrn(acked_err,
                    replies[at + 1]->type == REDIS_REPLY_ERROR ? replies[at + 1]->str : "?",
                    ERR_LEN);
        freeReplyObject(replies[at + 1]);
    }
    return APR_SUCCESS;
}

/* An error reply the caller asked to judge itself (cmd->pass). */
static int passed(const ss_redis_cmd_t *cmd, const char *err)
{
    static const char *const codes[] = {"MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"};
    size_t i;

    if (cmd->pass == SS_REDIS_PASS_ALL) {
        return 1;
    }
    for (i = 0; cmd->pass == SS_REDIS_PASS_CLUSTER && i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (!strncmp(err, codes[i], strlen(codes[i]))) {
            return 1;
        }
    }
    return 0;
}

/* An error reply that says this node cannot serve us now: a replica
 * (READONLY: a demoted master, or a VIP or DNS name that moved), a dataset
 * being loaded (LOADING), a replica cut off from its master (MASTERDOWN).
 * Redis before 7 wraps an error inside a script as "ERR Error running script
 * ... -READONLY ...". A new connection may reach the new master. */
static int node_unusable(const char *err)
{
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN"};
    char wrapped[16];
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);

        if (!strncmp(err, codes[i], n) && (err[n] == ' ' || !err[n])) {
            return 1;
        }
        apr_snprintf(wrapped, sizeof(wrapped), "-%s ", codes[i]);
        if (!strncmp(err, "ERR ", 4) && strstr(err, wrapped)) {
            return 1;
        }
    }
    return 0;
}

/* The master of the lease's connection failed it: ask the sentinels again. */
static void suspect(const ss_redis_conn_t *rc, const lease_t *lease)
{
    if (rc->sentinel) {
        ss_redis_sentinel_suspect(rc->sentinel, lease->mgen);
    }
}

/* One command on the lease (connecting first if it has none), done by
 * deadline. An I/O failure frees the connection, and so does an error reply
 * from a node that cannot serve us (node_unusable); any other error reply
 * leaves it usable. */
static apr_status_t exchange(const ss_redis_conn_t *rc, lease_t *lease, const ss_redis_cmd_t *cmd,
                             const wait_t *wait, apr_time_t deadline, redisReply **out)
{
    redisReply *reply = NULL;
    ss_redis_cmd_t eval;
    char why[ERR_LEN], acked_err[ERR_LEN];
    long long acked = 0;
    apr_status_t rv;

    lease->refused = 0;
    lease->timed_out = 0;
    if (!lease->c) {
        rv = connect_new(rc, lease, deadline);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    rv = send_cmd(lease, cmd, wait, deadline, &reply, &acked, acked_err, why);
    if (rv == APR_SUCCESS && reply->type == REDIS_REPLY_ERROR && cmd->script &&
        !strncmp(reply->str, "NOSCRIPT", 8)) {
        /* Script cache empty (restart, SCRIPT FLUSH): EVAL caches it again. */
        freeReplyObject(reply);
        eval = *cmd;
        eval.argv[0] = "EVAL";
        eval.argv[1] = cmd->script;
        eval.len[0] = 4;
        eval.len[1] = strlen(cmd->script);
        rv = send_cmd(lease, &eval, wait, deadline, &reply, &acked, acked_err, why);
    }
    if (rv != APR_SUCCESS) {
        suspect(rc, lease);
        return conn_failed(lease, lease->c, rv, cmd->argv[0], why);
    }
    if (reply->type == REDIS_REPLY_ERROR && !node_unusable(reply->str) && passed(cmd, reply->str)) {
        *out = reply;
        return APR_SUCCESS;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        refused(lease, cmd->argv[0], reply);
        lease->refused = 1;
        if (node_unusable(reply->str)) {
            suspect(rc, lease);
            ss_redis_transport_close(lease->c);
            lease->c = NULL;
        }
        freeReplyObject(reply);
        return APR_EGENERAL;
    }
    if (wait && acked < wait->replicas) {
        /* Written on the master, not known to be on enough replicas: a
         * failover now could lose it. It may also be a master the sentinels
         * have replaced (a manual failover takes its replicas first): they
         * are asked again before the next operation. */
        suspect(rc, lease);
        if (acked < 0) {
            apr_snprintf(lease->err, sizeof(lease->err), "WAIT refused: %s", acked_err);
        } else {
            apr_snprintf(lease->err, sizeof(lease->err),
                         "WAIT: %" APR_INT64_T_FMT " of %d replicas acknowledged the %s within "
                         "%" APR_TIME_T_FMT " ms",
                         (apr_int64_t)acked, wait->replicas, cmd->argv[0],
                         apr_time_as_msec(wait->timeout));
        }
        lease->refused = 1;
        freeReplyObject(reply);
        return APR_EGENERAL;
    }
    *out = reply;
    return APR_SUCCESS;
}

/* Sentinel: once per SS_REDIS_SENTINEL_FRESH a pooled connection waits for
 * the sentinels' answer, within the time a new connection would have had to
 * open; if the master moved, the connection is dropped. 1 when it asked. */
static int check_master(ss_redis_conn_t *rc, lease_t *lease, apr_time_t start)
{
    if (!rc->sentinel || !lease->pooled ||
        !ss_redis_sentinel_refresh(rc->sentinel, start + rc->cfg->connect_timeout,
                                   SS_REDIS_SENTINEL_FRESH)) {
        return 0;
    }
    if (!same_master(rc, lease->mgen)) {
        ss_redis_transport_close(lease->c);
        lease->c = NULL;
        lease->pooled = 0;
        flush_idle(rc);
    }
    return 1;
}

/* Sentinel: while the breaker is open, the sentinels are asked (at most
 * every SS_REDIS_SENTINEL_OUTAGE_FRESH, by one thread, within what a new
 * connection would have to open); a new master closes the breaker: the
 * failover is over, there is no reason to wait. */
static void breaker_follows_master(ss_redis_conn_t *rc, apr_time_t start)
{
    apr_time_t now = apr_time_now();
    unsigned mgen;
    int open;

    if (!rc->sentinel || rc->cfg->breaker <= 0) {
        return;
    }
    apr_thread_mutex_lock(rc->mutex);
    open = rc->breaker_until && now < rc->breaker_until;
    mgen = rc->breaker_mgen;
    apr_thread_mutex_unlock(rc->mutex);
    if (!open || !ss_redis_sentinel_refresh(rc->sentinel, start + rc->cfg->connect_timeout,
                                            SS_REDIS_SENTINEL_OUTAGE_FRESH)) {
        return;
    }
    if (ss_redis_sentinel_gen(rc->sentinel) != mgen) {
        apr_thread_mutex_lock(rc->mutex);
        if (rc->breaker_mgen == mgen) {
            rc->breaker_until = 0;
            rc->probing = 0;
        }
        apr_thread_mutex_unlock(rc->mutex);
    }
}

/* Sentinel: the process learned of another master while the command was on
 * its way (a stopped master that resumed, a manual failover). The old
 * master's answer may be stale and its write is lost when it is demoted: the
 * answer is dropped with the connection, and the command sent again. */
static int answered_by_replaced_master(ss_redis_conn_t *rc, lease_t *lease, redisReply **reply)
{
    if (same_master(rc, lease->mgen)) {
        return 0;
    }
    freeReplyObject(*reply);
    *reply = NULL;
    ss_redis_transport_close(lease->c);
    lease->c = NULL;
    return 1;
}

/* One deadline for the operation (ss_redis_transport.h): command_timeout on
 * a pooled connection, connect_timeout + command_timeout when it opens one;
 * a retry has what is left of the latter. A timeout is not retried: the
 * request would wait twice. Nor is an error reply on a connection that stays
 * open; a pooled connection closed by node_unusable is, like a dead one: the
 * others went to the same node. So is an answer from a replaced master. With
 * WAIT, the deadlines grow by its timeout. */
static apr_status_t command(ss_redis_conn_t *rc, const ss_redis_cmd_t *cmd, const wait_t *wait,
                            redisReply **reply)
{
    apr_time_t start = ss_redis_clock() + (wait ? wait->timeout : 0);
    apr_time_t longest = start + rc->cfg->connect_timeout + rc->cfg->command_timeout;
    apr_time_t pooled = start + rc->cfg->command_timeout;
    lease_t lease;
    apr_status_t rv;
    int asked, retry = 0;

    if (cmd->deadline && cmd->deadline < longest) {
        longest = cmd->deadline;
        pooled = pooled < longest ? pooled : longest;
    }
    memset(&lease, 0, sizeof(lease));
    breaker_follows_master(rc, start);
    rv = acquire(rc, &lease);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    asked = check_master(rc, &lease, start);
    rv = exchange(rc, &lease, cmd, wait, lease.pooled && !asked ? pooled : longest, reply);
    if (rv != APR_SUCCESS && lease.pooled && !lease.c) {
        flush_idle(rc);
        retry = !lease.timed_out;
    } else if (rv == APR_SUCCESS) {
        retry = answered_by_replaced_master(rc, &lease, reply);
    }
    if (retry) {
        lease.pooled = 0;
        lease.retried = 1;
        rv = exchange(rc, &lease, cmd, wait, longest, reply);
    }
    release(rc, &lease, rv);
    return rv;
}

apr_status_t ss_redis_conn_command(ss_redis_conn_t *rc, const ss_redis_cmd_t *cmd,
                                   redisReply **reply)
{
    return command(rc, cmd, NULL, reply);
}

apr_status_t ss_redis_conn_command_wait(ss_redis_conn_t *rc, const ss_redis_cmd_t *cmd,
                                        int replicas, apr_interval_time_t timeout,
                                        redisReply **reply)
{
    wait_t wait = {replicas, timeout};

    return command(rc, cmd, &wait, reply);
}

apr_status_t ss_redis_conn_create(ss_redis_conn_t **out, const ss_redis_config_t *cfg,
                                  const char *target, apr_pool_t *p)
{
    ss_redis_conn_t *rc = apr_pcalloc(p, sizeof(*rc));
    char why[ERR_LEN];
    apr_status_t rv;

    rv = cfg->sentinel_master
             ? ss_redis_sentinel_create(&rc->sentinel, cfg, target, p, why, sizeof(why))
             : ss_redis_endpoint_create(&rc->ep, cfg, p, why, sizeof(why));
    if (rv != APR_SUCCESS) {
        ss_log(SS_LOG_ERR, rv, "redis session store %s: %s", target, why);
        return rv;
    }
    if (cfg->tls && cfg->tls_verify == SS_REDIS_TLS_VERIFY_NONE) {
        ss_log(SS_LOG_WARNING, APR_SUCCESS,
               "redis session store %s: tls_verify=none: the server's certificate is not "
               "checked, anyone on the path can pose as it and read the sessions",
               target);
    }
    rc->cfg = cfg;
    rc->target = target;
    rc->idle = apr_pcalloc(p, sizeof(*rc->idle) * (cfg->max_idle > 0 ? cfg->max_idle : 1));
    rc->pid = getpid();
    rv = apr_thread_mutex_create(&rc->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        *out = rc;
    }
    return rv;
}

ss_store_stats_t *ss_redis_conn_lock(ss_redis_conn_t *rc)
{
    apr_thread_mutex_lock(rc->mutex);
    check_pid_locked(rc);
    return &rc->stats;
}

void ss_redis_conn_unlock(ss_redis_conn_t *rc)
{
    apr_thread_mutex_unlock(rc->mutex);
}

void ss_redis_conn_discard(ss_redis_conn_t *rc)
{
    apr_thread_mutex_lock(rc->mutex);
    drop_idle_locked(rc);
    rc->gen++;
    apr_thread_mutex_unlock(rc->mutex);
}

void ss_redis_conn_close(ss_redis_conn_t *rc)
{
    apr_thread_mutex_lock(rc->mutex);
    drop_idle_locked(rc);
    rc->closed = 1;
    apr_thread_mutex_unlock(rc->mutex);
}

const char *ss_redis_conn_describe(ss_redis_conn_t *rc, apr_pool_t *p)
{
    if (!rc->sentinel) {
        return NULL;
    }
    ss_redis_sentinel_refresh(rc->sentinel, ss_redis_clock() + rc->cfg->connect_timeout,
                              SS_REDIS_SENTINEL_FRESH);
    return ss_redis_sentinel_describe(rc->sentinel, p);
}

const char *ss_redis_conn_address(ss_redis_conn_t *rc, apr_pool_t *p)
{
    if (rc->sentinel) {
        return ss_redis_sentinel_address(rc->sentinel, p);
    }
    if (rc->cfg->path) {
        return rc->cfg->path;
    }
    return apr_psprintf(p, strchr(rc->cfg->host, ':') ? "[%s]:%d" : "%s:%d", rc->cfg->host,
                        rc->cfg->port);
}

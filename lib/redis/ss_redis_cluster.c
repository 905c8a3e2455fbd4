/* ss_redis_cluster.c - a Redis Cluster: the slot map, a connection pool per
 * node, redirects (ss_redis_cluster.h). One thread mutex guards the node
 * table, the owners of the slots and the counters; it is never held across
 * network I/O, except that naming a new node by a host name resolves it
 * (bounded by connect_timeout). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_allocator.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_log.h"
#include "ss_redis_cluster.h"
#include "ss_redis_slotmap.h"
#include "ss_redis_transport.h"

/* A pause after TRYAGAIN or CLUSTERDOWN is at most this long. */
#define PAUSE_MAX apr_time_from_msec(200)

typedef struct {
    ss_redis_config_t cfg; /* the store's, with this node's host and port */
    const char *target;    /* for log lines */
    ss_redis_conn_t *conn;
    int listed; /* in the last map, not failed (under the cluster's mutex) */
} node_t;

struct ss_redis_cluster_t {
    const ss_redis_config_t *cfg;
    const char *target;
    apr_thread_mutex_t *mutex;
    /* Everything below is under mutex. */
    apr_pool_t *pool; /* the nodes */
    node_t **nodes;   /* never removed: their connections may be in use */
    int nnodes;
    short owner[SS_REDIS_SLOTS]; /* index into nodes; -1: none known */
    int map_nodes;               /* nodes in the last map */
    int use_slots;               /* the server has no CLUSTER SHARDS */
    int refreshing;              /* a thread is reading the map */
    apr_time_t refreshed;        /* ss_redis_clock() of the last attempt; 0: none */
    unsigned next_from;          /* where the next refresh starts asking */
    apr_time_t last_log;         /* of a failure of the cluster layer */
    pid_t pid;
    ss_store_stats_t stats;
};

/* A forked child starts its counters from zero; the map it inherited holds. */
static void check_pid_locked(ss_redis_cluster_t *cl)
{
    pid_t pid = getpid();

    if (cl->pid != pid) {
        cl->pid = pid;
        cl->refreshing = 0;
        memset(&cl->stats, 0, sizeof(cl->stats));
    }
}

static int match(const char *err, const char *code)
{
    size_t n = strlen(code);

    return !strncmp(err, code, n) && (err[n] == ' ' || !err[n]);
}

ss_redis_cluster_step_e ss_redis_cluster_step(ss_redis_redirects_t *st, const redisReply *reply,
                                              apr_time_t now, apr_time_t deadline,
                                              ss_redis_addr_t *to, unsigned *slot,
                                              apr_interval_time_t *pause, const char **why,
                                              apr_pool_t *p)
{
    int moved;

    if (reply->type != REDIS_REPLY_ERROR) {
        return SS_CLUSTER_DONE;
    }
    moved = match(reply->str, "MOVED");
    if (moved || match(reply->str, "ASK")) {
        /* "MOVED 3999 127.0.0.1:6381" */
        const char *num = strchr(reply->str, ' '), *addr = num ? strchr(num + 1, ' ') : NULL;
        char *end = NULL;
        unsigned long s = addr && apr_isdigit(num[1]) ? strtoul(num + 1, &end, 10) : 0;

        if (!addr || end != addr || s >= SS_REDIS_SLOTS ||
            !ss_redis_parse_hostport(addr + 1, strlen(addr + 1), to, p)) {
            *why = "a malformed redirect";
            return SS_CLUSTER_FAIL;
        }
        *slot = (unsigned)s;
        if (moved && st->moved++) {
            *why = "MOVED again after following one (the slot map is read again)";
            return SS_CLUSTER_FAIL;
        }
        if (!moved && st->asked++) {
            *why = "ASK again after following one";
            return SS_CLUSTER_FAIL;
        }
        return moved ? SS_CLUSTER_MOVED : SS_CLUSTER_ASK;
    }
    if (match(reply->str, "TRYAGAIN") || match(reply->str, "CLUSTERDOWN")) {
        apr_interval_time_t next = st->pause ? st->pause * 2 : SS_REDIS_CLUSTER_PAUSE;

        next = next < PAUSE_MAX ? next : PAUSE_MAX;
        if (now + next >= deadline) {
            *why = match(reply->str, "TRYAGAIN") ? "TRYAGAIN until the deadline"
                                                 : "the cluster is down (CLUSTERDOWN) until the "
                                                   "deadline";
            return SS_CLUSTER_FAIL;
        }
        st->pause = *pause = next;
        st->paused++;
        return SS_CLUSTER_PAUSE;
    }
    return SS_CLUSTER_DONE;
}

/* The index of host:port in the node table, made if new; -1 when it cannot
 * be (the table is full, or its endpoint fails: both logged). */
static int node_locked(ss_redis_cluster_t *cl, const char *host, int port)
{
    node_t *n;
    int i;

    for (i = 0; i < cl->nnodes; i++) {
        if (cl->nodes[i]->cfg.port == port && !strcmp(cl->nodes[i]->cfg.host, host)) {
            return i;
        }
    }
    if (cl->nnodes == SS_REDIS_CLUSTER_NODES_MAX) {
        ss_log(SS_LOG_ERR, APR_ENOSPC, "redis session store %s: more than %d nodes; %s:%d ignored",
               cl->target, SS_REDIS_CLUSTER_NODES_MAX, host, port);
        return -1;
    }
    n = apr_pcalloc(cl->pool, sizeof(*n));
    n->cfg = *cl->cfg;
    n->cfg.host = apr_pstrdup(cl->pool, host);
    n->cfg.port = port;
    n->target =
        apr_psprintf(cl->pool, "%s node %s%s%s:%d", cl->target, strchr(host, ':') ? "[" : "", host,
                     strchr(host, ':') ? "]" : "", port);
    if (ss_redis_conn_create(&n->conn, &n->cfg, n->target, cl->pool) != APR_SUCCESS) {
        return -1; /* logged */
    }
    cl->nodes[cl->nnodes] = n;
    return cl->nnodes++;
}

static int node_for(ss_redis_cluster_t *cl, const char *host, int port)
{
    int i;

    apr_thread_mutex_lock(cl->mutex);
    i = node_locked(cl, host, port);
    apr_thread_mutex_unlock(cl->mutex);
    return i;
}

static ss_redis_conn_t *conn_of(ss_redis_cluster_t *cl, int i)
{
    ss_redis_conn_t *c;

    apr_thread_mutex_lock(cl->mutex);
    c = cl->nodes[i]->conn;
    apr_thread_mutex_unlock(cl->mutex);
    return c;
}

static int owner_of(ss_redis_cluster_t *cl, unsigned slot)
{
    int i;

    apr_thread_mutex_lock(cl->mutex);
    i = cl->owner[slot];
    apr_thread_mutex_unlock(cl->mutex);
    return i;
}

/* A failure of the cluster layer itself: counted, logged at most once per
 * SS_REDIS_LOG_INTERVAL. */
static void cluster_failed(ss_redis_cluster_t *cl, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cluster_failed(ss_redis_cluster_t *cl, apr_status_t rv, const char *fmt, ...)
{
    apr_time_t now = apr_time_now();
    int log;

    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    cl->stats.errors++;
    log = !cl->last_log || now - cl->last_log >= SS_REDIS_LOG_INTERVAL;
    if (log) {
        cl->last_log = now;
    }
    apr_thread_mutex_unlock(cl->mutex);
    if (log) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        apr_vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ss_log(SS_LOG_ERR, rv,
               "redis session store %s: %s (such failures are logged at most once a minute)",
               cl->target, msg);
    }
}

/* Install map, read from a node: every slot to its master's node. */
static void apply_map(ss_redis_cluster_t *cl, const ss_redis_slotmap_t *map)
{
    int *index, i, s;

    index = malloc(sizeof(*index) * (map->nmasters ? map->nmasters : 1));
    if (!index) {
        return;
    }
    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    for (i = 0; i < map->nmasters; i++) {
        index[i] = node_locked(cl, map->masters[i].host, map->masters[i].port);
    }
    /* The replicas too: one may be promoted, and its connections are best
     * set up here (in httpd's parent, TLS files are read as root). */
    for (i = 0; i < cl->nnodes; i++) {
        cl->nodes[i]->listed = 0;
    }
    for (i = 0; i < map->nodes; i++) {
        int n = node_locked(cl, map->all[i].host, map->all[i].port);

        if (n >= 0) {
            cl->nodes[n]->listed = 1;
        }
    }
    for (s = 0; s < SS_REDIS_SLOTS; s++) {
        cl->owner[s] = (short)(map->owner[s] < 0 ? -1 : index[map->owner[s]]);
    }
    cl->map_nodes = map->nodes;
    cl->stats.slotmap_refreshes++;
    apr_thread_mutex_unlock(cl->mutex);
    free(index);
}

/* Ask node i for the map. On failure *why says why (NULL: the node's own
 * connection layer logged it). */
static apr_status_t ask_map(ss_redis_cluster_t *cl, int i, apr_time_t deadline, apr_pool_t *p,
                            const char **why)
{
    ss_redis_conn_t *conn = conn_of(cl, i);
    ss_redis_addr_t asked;
    ss_redis_slotmap_t *map = NULL;
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    const char *err;
    apr_status_t rv;
    int slots;

    apr_thread_mutex_lock(cl->mutex);
    slots = cl->use_slots;
    asked.host = cl->nodes[i]->cfg.host;
    asked.port = cl->nodes[i]->cfg.port;
    apr_thread_mutex_unlock(cl->mutex);
    memset(&cmd, 0, sizeof(cmd));
    cmd.argc = 2;
    cmd.argv[0] = "CLUSTER";
    cmd.len[0] = 7;
    cmd.argv[1] = slots ? "SLOTS" : "SHARDS";
    cmd.len[1] = strlen(cmd.argv[1]);
    cmd.pass = SS_REDIS_PASS_ALL;
    cmd.deadline = deadline;
    *why = NULL;
    rv = ss_redis_conn_command(conn, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type == REDIS_REPLY_ERROR && !slots && strstr(reply->str, "nknown subcommand")) {
        /* Redis before 7.0: CLUSTER SLOTS from now on. */
        freeReplyObject(reply);
        apr_thread_mutex_lock(cl->mutex);
        cl->use_slots = 1;
        apr_thread_mutex_unlock(cl->mutex);
        return ask_map(cl, i, deadline, p, why);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        err = apr_psprintf(p, "CLUSTER %s refused: %s", cmd.argv[1], reply->str);
    } else {
        err = slots ? ss_redis_slotmap_from_slots(&map, reply, &asked, p)
                    : ss_redis_slotmap_from_shards(&map, reply, cl->cfg->tls, &asked, p);
    }
    freeReplyObject(reply);
    if (err) {
        *why = apr_psprintf(p, "%s:%d: %s", asked.host, asked.port, err);
        return APR_EGENERAL;
    }
    apply_map(cl, map);
    return APR_SUCCESS;
}

/* Read the map from the first node that gives one, unless another thread
 * is at it or (unless forced) it was read less than REFRESH_MIN ago. */
static apr_status_t refresh(ss_redis_cluster_t *cl, apr_time_t deadline, int force)
{
    apr_time_t now = ss_redis_clock();
    apr_status_t rv = APR_EAGAIN;
    const char *why = NULL;
    apr_pool_t *p;
    unsigned from;
    int n, i, k, pass, *order;

    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    if (cl->refreshing ||
        (!force && cl->refreshed && now - cl->refreshed < SS_REDIS_CLUSTER_REFRESH_MIN)) {
        apr_thread_mutex_unlock(cl->mutex);
        return APR_EAGAIN;
    }
    cl->refreshing = 1;
    cl->refreshed = now;
    from = cl->next_from++;
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        p = NULL;
    }
    /* The nodes the last map listed first, each time from the next one
     * (a dead node, dropped from the map, is not asked first again), then
     * the others: seeds, and nodes since failed. */
    n = cl->nnodes;
    order = p ? apr_palloc(p, sizeof(*order) * (n ? n : 1)) : NULL;
    for (k = 0, pass = 1; order && pass >= 0; pass--) {
        for (i = 0; i < n; i++) {
            int j = (int)((from + (unsigned)i) % (unsigned)n);

            if (cl->nodes[j]->listed == pass) {
                order[k++] = j;
            }
        }
    }
    apr_thread_mutex_unlock(cl->mutex);
    for (i = 0; order && i < n && ss_redis_clock() < deadline; i++) {
        const char *w;

        rv = ask_map(cl, order[i], deadline, p, &w);
        if (rv == APR_SUCCESS) {
            break;
        }
        why = w ? w : why;
    }
    if (rv != APR_SUCCESS) {
        cluster_failed(cl, rv, "no node gave a slot map%s%s", why ? "; " : "", why ? why : "");
    }
    if (p) {
        apr_pool_destroy(p);
    }
    apr_thread_mutex_lock(cl->mutex);
    cl->refreshing = 0;
    apr_thread_mutex_unlock(cl->mutex);
    return rv;
}

apr_status_t ss_redis_cluster_refresh(ss_redis_cluster_t *cl)
{
    return refresh(cl, ss_redis_clock() + cl->cfg->connect_timeout + cl->cfg->command_timeout, 1);
}

/* The slot's owner, reading the map first when none is known. */
static int route(ss_redis_cluster_t *cl, unsigned slot, apr_time_t deadline)
{
    int i = owner_of(cl, slot);

    if (i < 0) {
        refresh(cl, deadline, 0);
        i = owner_of(cl, slot);
    }
    return i;
}

static void count(ss_redis_cluster_t *cl, int moved, int asked)
{
    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    cl->stats.moved += moved;
    cl->stats.asked += asked;
    apr_thread_mutex_unlock(cl->mutex);
}

/* The node of a redirect's address; an empty host is the node that sent it. */
static int redirect_node(ss_redis_cluster_t *cl, const ss_redis_addr_t *to, int from)
{
    const char *host = to->host;

    if (!*host) {
        apr_thread_mutex_lock(cl->mutex);
        host = cl->nodes[from]->cfg.host;
        apr_thread_mutex_unlock(cl->mutex);
    }
    return node_for(cl, host, to->port);
}

apr_status_t ss_redis_cluster_command(ss_redis_cluster_t *cl, const ss_redis_cmd_t *cmd,
                                      const char *key, size_t len, redisReply **out)
{
    apr_time_t deadline = ss_redis_clock() + cl->cfg->connect_timeout + cl->cfg->command_timeout;
    unsigned slot = ss_redis_slot(key, len);
    ss_redis_redirects_t st;
    ss_redis_cmd_t c = *cmd;
    apr_pool_t *p = NULL;
    int node, failed_over = 0;
    apr_status_t rv;

    memset(&st, 0, sizeof(st));
    c.pass = SS_REDIS_PASS_CLUSTER;
    c.deadline = deadline;
    c.asking = 0;
    node = route(cl, slot, deadline);
    for (;;) {
        ss_redis_cluster_step_e step;
        ss_redis_addr_t to;
        unsigned moved_slot = slot;
        apr_interval_time_t pause = 0;
        const char *why = NULL;
        redisReply *reply = NULL;

        if (node < 0) {
            cluster_failed(cl, APR_EGENERAL, "no node known to serve slot %u", slot);
            rv = APR_EGENERAL;
            break;
        }
        rv = ss_redis_conn_command(conn_of(cl, node), &c, &reply);
        if (rv != APR_SUCCESS) {
            /* The node failed (the conn layer logged it): if a new map gives
             * the slot to another node (a replica promoted), try that one. */
            if (!failed_over && rv != APR_TIMEUP && !c.asking && ss_redis_clock() < deadline) {
                int again;

                failed_over = 1;
                refresh(cl, deadline, 0);
                again = owner_of(cl, slot);
                if (again >= 0 && again != node) {
                    node = again;
                    continue;
                }
            }
            break;
        }
        if (!p && reply->type == REDIS_REPLY_ERROR &&
            apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
            freeReplyObject(reply);
            rv = APR_ENOMEM;
            break;
        }
        step = ss_redis_cluster_step(&st, reply, ss_redis_clock(), deadline, &to, &moved_slot,
                                     &pause, &why, p);
        if (step == SS_CLUSTER_DONE) {
            *out = reply;
            break;
        }
        if (step == SS_CLUSTER_FAIL) {
            cluster_failed(cl, APR_EGENERAL, "slot %u: %s (%s)", slot, why, reply->str);
            freeReplyObject(reply);
            rv = APR_EGENERAL;
            break;
        }
        freeReplyObject(reply);
        c.asking = 0;
        if (step == SS_CLUSTER_MOVED) {
            int n = redirect_node(cl, &to, node);

            count(cl, 1, 0);
            /* Other slots have likely moved too; the node asked may not know
             * this one's new owner yet, so the redirect has the last word. */
            refresh(cl, deadline, 0);
            if (n >= 0) {
                apr_thread_mutex_lock(cl->mutex);
                cl->owner[moved_slot] = (short)n;
                apr_thread_mutex_unlock(cl->mutex);
            }
            node = moved_slot == slot && n >= 0 ? n : owner_of(cl, slot);
        } else if (step == SS_CLUSTER_ASK) {
            count(cl, 0, 1);
            node = redirect_node(cl, &to, node);
            c.asking = 1;
        } else {
            apr_sleep(pause);
            refresh(cl, deadline, 0);
            node = owner_of(cl, slot);
        }
    }
    if (p) {
        apr_pool_destroy(p);
    }
    return rv;
}

/* p is being destroyed: its subpools (the nodes) go before its cleanups
 * run, so the nodes are closed and forgotten first. */
static apr_status_t cluster_gone(void *data)
{
    ss_redis_cluster_t *cl = data;

    ss_redis_cluster_close(cl);
    apr_thread_mutex_lock(cl->mutex);
    cl->nnodes = 0;
    apr_thread_mutex_unlock(cl->mutex);
    return APR_SUCCESS;
}

apr_status_t ss_redis_cluster_create(ss_redis_cluster_t **out, const ss_redis_config_t *cfg,
                                     const char *target, apr_pool_t *p)
{
    ss_redis_cluster_t *cl = apr_pcalloc(p, sizeof(*cl));
    apr_allocator_t *alloc;
    apr_status_t rv;
    int i;

    cl->cfg = cfg;
    cl->target = target;
    cl->pid = getpid();
    memset(cl->owner, 0xff, sizeof(cl->owner));
    cl->nodes = apr_pcalloc(p, sizeof(*cl->nodes) * SS_REDIS_CLUSTER_NODES_MAX);
    /* Nodes are made at run time by any thread (under the mutex): their
     * pool has an allocator of its own, shared with no other pool. */
    rv = apr_allocator_create(&alloc);
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create_ex(&cl->pool, p, NULL, alloc);
        if (rv == APR_SUCCESS) {
            apr_allocator_owner_set(alloc, cl->pool);
        } else {
            apr_allocator_destroy(alloc);
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&cl->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        apr_pool_pre_cleanup_register(p, cl, cluster_gone);
    }
    for (i = 0; rv == APR_SUCCESS && i < cfg->nseeds; i++) {
        if (node_locked(cl, cfg->seeds[i].host, cfg->seeds[i].port) < 0) {
            rv = APR_EGENERAL; /* logged */
        }
    }
    if (rv == APR_SUCCESS) {
        *out = cl;
    }
    return rv;
}

ss_store_stats_t *ss_redis_cluster_lock(ss_redis_cluster_t *cl)
{
    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    return &cl->stats;
}

void ss_redis_cluster_unlock(ss_redis_cluster_t *cl)
{
    apr_thread_mutex_unlock(cl->mutex);
}

void ss_redis_cluster_stats(ss_redis_cluster_t *cl, ss_store_stats_t *out)
{
    int n, i;

    apr_thread_mutex_lock(cl->mutex);
    check_pid_locked(cl);
    *out = cl->stats;
    out->cluster_nodes = (apr_uint64_t)cl->map_nodes;
    n = cl->nnodes;
    apr_thread_mutex_unlock(cl->mutex);
    for (i = 0; i < n; i++) {
        ss_redis_conn_t *conn = conn_of(cl, i);
        ss_store_stats_t *s = ss_redis_conn_lock(conn);

        out->errors += s->errors;
        out->fast_fails += s->fast_fails;
        out->connects += s->connects;
        out->retries += s->retries;
        ss_redis_conn_unlock(conn);
    }
}

void ss_redis_cluster_discard(ss_redis_cluster_t *cl)
{
    int n, i;

    apr_thread_mutex_lock(cl->mutex);
    n = cl->nnodes;
    apr_thread_mutex_unlock(cl->mutex);
    for (i = 0; i < n; i++) {
        ss_redis_conn_discard(conn_of(cl, i));
    }
}

void ss_redis_cluster_close(ss_redis_cluster_t *cl)
{
    int n, i;

    apr_thread_mutex_lock(cl->mutex);
    n = cl->nnodes;
    apr_thread_mutex_unlock(cl->mutex);
    for (i = 0; i < n; i++) {
        ss_redis_conn_close(conn_of(cl, i));
    }
}

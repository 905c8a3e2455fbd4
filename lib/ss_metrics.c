/* ss_metrics.c - counters shared by every process of one httpd, and their
 * Prometheus text rendering. */
#include <stdarg.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "ss_metrics.h"

#define METRICS_MAGIC 0x53534d54u /* "SSMT" */
#define METRICS_LAYOUT 3u         /* 2: loads_expired; 3: merges and locks */

const apr_uint32_t ss_metrics_bounds_us[SS_METRICS_NBUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

typedef struct {
    apr_uint64_t buckets[SS_METRICS_NBUCKETS + 1]; /* not cumulative; the last is +Inf */
    apr_uint64_t sum_us;
    apr_uint64_t count;
} histogram_t;

typedef struct {
    apr_uint32_t pid;       /* 0: free */
    apr_uint32_t failed_at; /* seconds since the epoch of the latest failure; 0: it succeeded */
} slot_t;

struct ss_metrics_t {
    apr_uint32_t magic;
    apr_uint32_t layout;
    apr_uint64_t size;
    apr_uint32_t nslots;
    apr_uint32_t reserved;
    apr_uint64_t counters[SS_M__COUNT];
    histogram_t hist[SS_OP__COUNT];
    slot_t slots[];
};

static apr_uint64_t load64(const apr_uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void add64(apr_uint64_t *v, apr_uint64_t n)
{
    __atomic_fetch_add(v, n, __ATOMIC_RELAXED);
}

apr_size_t ss_metrics_size(apr_uint32_t nslots)
{
    return sizeof(ss_metrics_t) + (apr_size_t)nslots * sizeof(slot_t);
}

apr_status_t ss_metrics_format(void *base, apr_size_t size, apr_uint32_t nslots)
{
    ss_metrics_t *m = base;

    if (!base || size != ss_metrics_size(nslots)) {
        return APR_EINVAL;
    }
    memset(base, 0, size);
    m->size = size;
    m->nslots = nslots;
    m->layout = METRICS_LAYOUT;
    m->magic = METRICS_MAGIC;
    return APR_SUCCESS;
}

int ss_metrics_is_formatted(const void *base, apr_size_t size)
{
    const ss_metrics_t *m = base;

    return base && size >= sizeof(*m) && m->magic == METRICS_MAGIC && m->layout == METRICS_LAYOUT &&
           m->size == size && ss_metrics_size(m->nslots) == size;
}

ss_metrics_t *ss_metrics_attach(void *base, apr_size_t size)
{
    return ss_metrics_is_formatted(base, size) ? base : NULL;
}

void ss_metrics_add(ss_metrics_t *m, ss_metric_e which, apr_uint64_t n)
{
    if (m && which < SS_M__COUNT) {
        add64(&m->counters[which], n);
    }
}

void ss_metrics_bump(ss_metrics_t *m, ss_metric_e which)
{
    ss_metrics_add(m, which, 1);
}

const char *ss_metrics_key(ss_metric_e which)
{
    static const char *const keys[SS_M__COUNT] = {"loads_hit",
                                                  "loads_miss",
                                                  "loads_expired",
                                                  "loads_error",
                                                  "saves_written",
                                                  "saves_unchanged",
                                                  "saves_refused_oversize",
                                                  "saves_refused_gone",
                                                  "saves_error",
                                                  "deletes",
                                                  "rotations",
                                                  "revocations",
                                                  "merge_conflicts",
                                                  "merge_merged",
                                                  "merge_overwrites",
                                                  "merge_gave_up",
                                                  "lock_taken",
                                                  "lock_waited",
                                                  "lock_timeouts"};

    return which < SS_M__COUNT ? keys[which] : "unknown";
}

void ss_metrics_observe(ss_metrics_t *m, ss_op_e op, apr_interval_time_t elapsed)
{
    apr_uint64_t us = elapsed > 0 ? (apr_uint64_t)elapsed : 0;
    int i = 0;

    if (!m || op >= SS_OP__COUNT) {
        return;
    }
    while (i < SS_METRICS_NBUCKETS && us > ss_metrics_bounds_us[i]) {
        i++;
    }
    add64(&m->hist[op].buckets[i], 1);
    add64(&m->hist[op].sum_us, us);
    add64(&m->hist[op].count, 1);
}

static int claim(ss_metrics_t *m, apr_uint32_t i, apr_uint32_t from, apr_uint32_t pid)
{
    return __atomic_compare_exchange_n(&m->slots[i].pid, &from, pid, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

/* A slot for pid: its own, a free one, or one of a process that is gone. */
static int find_slot(ss_metrics_t *m, apr_uint32_t pid, ss_metrics_alive_fn *alive, void *baton)
{
    apr_uint32_t i;

    for (i = 0; i < m->nslots; i++) {
        if (__atomic_load_n(&m->slots[i].pid, __ATOMIC_ACQUIRE) == pid) {
            return (int)i;
        }
    }
    for (i = 0; i < m->nslots; i++) {
        if (claim(m, i, 0, pid)) {
            return (int)i;
        }
    }
    for (i = 0; i < m->nslots; i++) {
        apr_uint32_t other = __atomic_load_n(&m->slots[i].pid, __ATOMIC_ACQUIRE);

        if (other && !alive(baton, other) && claim(m, i, other, pid)) {
            return (int)i;
        }
    }
    return -1;
}

/* now in whole seconds, never 0 (0 means "no failure"). */
static apr_uint32_t seconds_of(apr_time_t now)
{
    apr_uint32_t sec = now > 0 ? (apr_uint32_t)apr_time_sec(now) : 0;

    return sec ? sec : 1;
}

apr_status_t ss_metrics_store_state(ss_metrics_t *m, int *slot, apr_uint32_t pid, int down,
                                    apr_time_t now, ss_metrics_alive_fn *alive, void *baton)
{
    apr_uint32_t value = down ? seconds_of(now) : 0;

    if (!m) {
        return APR_SUCCESS;
    }
    if (*slot < 0 || (apr_uint32_t)*slot >= m->nslots ||
        __atomic_load_n(&m->slots[*slot].pid, __ATOMIC_ACQUIRE) != pid) {
        if (!down) {
            return APR_SUCCESS; /* nothing to say until it first fails */
        }
        *slot = find_slot(m, pid, alive, baton);
        if (*slot < 0) {
            return APR_ENOSPC;
        }
    }
    if (__atomic_load_n(&m->slots[*slot].failed_at, __ATOMIC_RELAXED) != value) {
        __atomic_store_n(&m->slots[*slot].failed_at, value, __ATOMIC_RELEASE);
    }
    return APR_SUCCESS;
}

void ss_metrics_release(ss_metrics_t *m, int slot, apr_uint32_t pid)
{
    if (!m || slot < 0 || (apr_uint32_t)slot >= m->nslots ||
        __atomic_load_n(&m->slots[slot].pid, __ATOMIC_ACQUIRE) != pid) {
        return;
    }
    __atomic_store_n(&m->slots[slot].failed_at, 0, __ATOMIC_RELEASE);
    claim(m, (apr_uint32_t)slot, pid, 0);
}

apr_uint32_t ss_metrics_down_count(const ss_metrics_t *m, apr_time_t now,
                                   ss_metrics_alive_fn *alive, void *baton)
{
    apr_uint32_t i, n = 0, sec = seconds_of(now);

    for (i = 0; m && i < m->nslots; i++) {
        apr_uint32_t pid = __atomic_load_n(&m->slots[i].pid, __ATOMIC_ACQUIRE);
        apr_uint32_t at = __atomic_load_n(&m->slots[i].failed_at, __ATOMIC_ACQUIRE);

        /* A failure stamped ahead of now (another process's clock reading
         * a moment later) counts as recent. */
        if (pid && at && (at >= sec || sec - at < SS_METRICS_DOWN_WINDOW_SEC) &&
            alive(baton, pid)) {
            n++;
        }
    }
    return n;
}

apr_uint64_t ss_metrics_get(const ss_metrics_t *m, ss_metric_e which)
{
    return m && which < SS_M__COUNT ? load64(&m->counters[which]) : 0;
}

void ss_metrics_histogram(const ss_metrics_t *m, ss_op_e op,
                          apr_uint64_t buckets[SS_METRICS_NBUCKETS + 1], apr_uint64_t *sum_us,
                          apr_uint64_t *count)
{
    int i;

    for (i = 0; i <= SS_METRICS_NBUCKETS; i++) {
        buckets[i] = m && op < SS_OP__COUNT ? load64(&m->hist[op].buckets[i]) : 0;
    }
    *sum_us = m && op < SS_OP__COUNT ? load64(&m->hist[op].sum_us) : 0;
    *count = m && op < SS_OP__COUNT ? load64(&m->hist[op].count) : 0;
}

/* ---- rendering ---- */

typedef struct {
    apr_array_header_t *parts;
    apr_pool_t *p;
} out_t;

static void out(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(out_t *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    APR_ARRAY_PUSH(o->parts, const char *) = apr_pvsprintf(o->p, fmt, ap);
    va_end(ap);
}

static void head(out_t *o, const char *name, const char *type, const char *help)
{
    out(o, "# HELP sessstore_%s %s\n# TYPE sessstore_%s %s\n", name, help, name, type);
}

/* Microseconds as seconds, with no trailing zeros ("0.00025", "1"). */
static const char *seconds(apr_uint64_t us, apr_pool_t *p)
{
    char *s =
        apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT, us / 1000000, us % 1000000);
    char *end = s + strlen(s) - 1;

    while (*end == '0') {
        *end-- = '\0';
    }
    if (*end == '.') {
        *end = '\0';
    }
    return s;
}

const char *ss_metrics_escape(const char *s, apr_pool_t *p)
{
    char *r = apr_palloc(p, 2 * strlen(s) + 1), *d = r;

    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            *d++ = '\\';
            *d++ = *s;
        } else if (*s == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
    return r;
}

static void counter_by(out_t *o, const ss_metrics_t *m, const char *name, const char *label,
                       const char *help, ss_metric_e first, const char *const *values, int n)
{
    int i;

    head(o, name, "counter", help);
    for (i = 0; i < n; i++) {
        out(o, "sessstore_%s{%s=\"%s\"} %" APR_UINT64_T_FMT "\n", name, label, values[i],
            ss_metrics_get(m, (ss_metric_e)(first + i)));
    }
}

static void counter(out_t *o, const ss_metrics_t *m, const char *name, const char *help,
                    ss_metric_e which)
{
    head(o, name, "counter", help);
    out(o, "sessstore_%s %" APR_UINT64_T_FMT "\n", name, ss_metrics_get(m, which));
}

static void histograms(out_t *o, const ss_metrics_t *m)
{
    static const char *const ops[SS_OP__COUNT] = {"load", "save", "delete"};
    int op, i;

    head(o, "store_operation_duration_seconds", "histogram",
         "Time of one store operation (load, save, delete), all processes.");
    for (op = 0; op < SS_OP__COUNT; op++) {
        apr_uint64_t b[SS_METRICS_NBUCKETS + 1], sum, count, cum = 0;

        ss_metrics_histogram(m, (ss_op_e)op, b, &sum, &count);
        for (i = 0; i < SS_METRICS_NBUCKETS; i++) {
            cum += b[i];
            out(o,
                "sessstore_store_operation_duration_seconds_bucket{op=\"%s\",le=\"%s\"} "
                "%" APR_UINT64_T_FMT "\n",
                ops[op], seconds(ss_metrics_bounds_us[i], o->p), cum);
        }
        cum += b[SS_METRICS_NBUCKETS];
        out(o,
            "sessstore_store_operation_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} "
            "%" APR_UINT64_T_FMT "\n",
            ops[op], cum);
        out(o, "sessstore_store_operation_duration_seconds_sum{op=\"%s\"} %s\n", ops[op],
            seconds(sum, o->p));
        out(o,
            "sessstore_store_operation_duration_seconds_count{op=\"%s\"} %" APR_UINT64_T_FMT "\n",
            ops[op], count);
    }
}

/* One gauge or counter per store, for the stores where have() holds. */
typedef int store_has_fn(const ss_metrics_store_t *st);
typedef const char *store_value_fn(const ss_metrics_store_t *st, apr_pool_t *p);

static void per_store(out_t *o, const ss_metrics_store_t *stores, int n, const char *name,
                      const char *type, const char *help, store_has_fn *has, store_value_fn *value)
{
    int i, any = 0;

    for (i = 0; i < n; i++) {
        if (!has(&stores[i])) {
            continue;
        }
        if (!any++) {
            head(o, name, type, help);
        }
        out(o, "sessstore_%s{store=\"%s\"} %s\n", name, ss_metrics_escape(stores[i].label, o->p),
            value(&stores[i], o->p));
    }
}

static int always(const ss_metrics_store_t *st)
{
    (void)st;
    return 1;
}

/* The byte counts and entries are known where the backend has a capacity
 * (shm); Redis keeps them to itself. */
static int knows_size(const ss_metrics_store_t *st)
{
    return st->stats_ok && st->stats.capacity_bytes > 0;
}

static int knows_evictions(const ss_metrics_store_t *st)
{
    return st->evictions >= 0 || (st->stats_ok && st->shared_stats);
}

static const char *v_up(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return apr_psprintf(p, "%d", st->up ? 1 : 0);
}

static const char *v_rtt(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return seconds(st->rtt > 0 ? (apr_uint64_t)st->rtt : 0, p);
}

static const char *v_entries(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, st->stats.entries);
}

static const char *v_used(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, st->stats.used_bytes);
}

static const char *v_capacity(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, st->stats.capacity_bytes);
}

/* A Redis Cluster store: its slot map counts nodes. */
static int is_cluster(const ss_metrics_store_t *st)
{
    return st->stats_ok && st->stats.cluster_nodes > 0;
}

static const char *v_cluster_nodes(const ss_metrics_store_t *st, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT, st->stats.cluster_nodes);
}

static const char *v_evictions(const ss_metrics_store_t *st, apr_pool_t *p)
{
    apr_uint64_t n = st->evictions >= 0 ? (apr_uint64_t)st->evictions : st->stats.evicted_lru;

    return apr_psprintf(p, "%" APR_UINT64_T_FMT, n);
}

/* The master and its replicas of each replicated store whose replication
 * is known (Redis: INFO replication answered); at most
 * SS_STORE_REPLICAS_LISTED replica labels per store. */
static void replication(out_t *o, const ss_metrics_store_t *stores, int n)
{
    static const char *const names[] = {"redis_master_info", "redis_replicas",
                                        "redis_replica_lag_seconds",
                                        "redis_replica_offset_behind_bytes"};
    static const char *const helps[] = {
        "Redis: 1, labelled with the address this process's connections go to (with "
        "Sentinel the current master) and that server's role.",
        "Redis: replicas connected to the master (connected_slaves of INFO replication).",
        "Redis: seconds since the replica last acknowledged the master (lag of INFO "
        "replication).",
        "Redis: bytes of the replication stream the replica has not acknowledged "
        "(master_repl_offset minus its offset)."};
    int k, i, j;

    for (k = 0; k < 4; k++) {
        int any = 0;

        for (i = 0; i < n; i++) {
            const ss_store_replication_t *r = stores[i].replication;
            const char *store = ss_metrics_escape(stores[i].label, o->p);

            if (!r || (k == 0 && !stores[i].master)) {
                continue;
            }
            if (!any++) {
                head(o, names[k], "gauge", helps[k]);
            }
            if (k == 0) {
                out(o, "sessstore_%s{store=\"%s\",master=\"%s\",role=\"%s\"} 1\n", names[k], store,
                    ss_metrics_escape(stores[i].master, o->p), ss_metrics_escape(r->role, o->p));
            } else if (k == 1) {
                out(o, "sessstore_%s{store=\"%s\"} %d\n", names[k], store, r->connected);
            }
            for (j = 0; k > 1 && j < r->nreplicas; j++) {
                apr_int64_t v = k == 2 ? r->replicas[j].lag_sec : r->replicas[j].behind;

                if (v >= 0) {
                    out(o, "sessstore_%s{store=\"%s\",replica=\"%s\"} %" APR_INT64_T_FMT "\n",
                        names[k], store, ss_metrics_escape(r->replicas[j].addr, o->p), v);
                }
            }
        }
    }
}

const char *ss_metrics_render(const ss_metrics_t *m, const ss_metrics_store_t *stores, int nstores,
                              apr_time_t now, ss_metrics_alive_fn *alive, void *baton,
                              apr_pool_t *p)
{
    static const char *const loads[] = {"hit", "miss", "expired", "error"};
    static const char *const saves[] = {"written", "unchanged", "refused_oversize", "refused_gone",
                                        "error"};
    static const char *const merges[] = {"merged", "overwritten"};
    out_t o;

    o.p = p;
    o.parts = apr_array_make(p, 128, sizeof(const char *));
    counter_by(&o, m, "loads_total", "result",
               "Session loads by result: hit (a live session), miss (no record for the IDs "
               "sent), expired (a record found, expired for this location), error (the store "
               "did not answer).",
               SS_M_LOAD_HIT, loads, 4);
    counter_by(&o, m, "saves_total", "result",
               "Session saves by result: written, unchanged (no write needed), refused_oversize, "
               "refused_gone (ended meanwhile), error (the store failed).",
               SS_M_SAVE_WRITTEN, saves, 5);
    counter(&o, m, "deletes_total", "Sessions ended: logout, emptied, or another user.",
            SS_M_DELETES);
    counter(&o, m, "rotations_total", "New session IDs issued.", SS_M_ROTATIONS);
    counter(&o, m, "revocations_total", "Sessions ended by a revocation.", SS_M_REVOCATIONS);
    counter(&o, m, "merge_conflicts_total",
            "Saves that found another request's write of the session in their way (each "
            "compare-and-set refused counts).",
            SS_M_MERGE_CONFLICTS);
    counter_by(&o, m, "merge_retries_total", "how",
               "Retries after a conflict: merged (this request's change applied to the newer "
               "session), overwritten (a payload that cannot be merged, written whole).",
               SS_M_MERGE_MERGED, merges, 2);
    counter(&o, m, "merge_gave_up_total",
            "Commits failed after a second of conflicts (answered 503).", SS_M_MERGE_GAVE_UP);
    counter(&o, m, "lock_taken_total", "Session locks taken (SessionStoreLock On).",
            SS_M_LOCK_TAKEN);
    counter(&o, m, "lock_waited_total",
            "Session locks taken after waiting for another request of the session.",
            SS_M_LOCK_WAITED);
    counter(&o, m, "lock_timeouts_total",
            "Waits for a session lock past SessionStoreLockTimeout (answered 503).",
            SS_M_LOCK_TIMEOUTS);
    head(&o, "children_store_down", "gauge",
         "httpd processes whose latest store operation failed (breaker open, or an error), "
         "in the last 10 s.");
    out(&o, "sessstore_children_store_down %u\n", ss_metrics_down_count(m, now, alive, baton));
    histograms(&o, m);
    per_store(&o, stores, nstores, "store_up", "gauge",
              "1 when a round trip to the store succeeded as this page was made.", always, v_up);
    per_store(&o, stores, nstores, "store_rtt_seconds", "gauge",
              "Time of that round trip (shm: the store's lock).", always, v_rtt);
    per_store(&o, stores, nstores, "store_entries", "gauge", "Live records in the store.",
              knows_size, v_entries);
    per_store(&o, stores, nstores, "store_used_bytes", "gauge", "Bytes held by records.",
              knows_size, v_used);
    per_store(&o, stores, nstores, "store_capacity_bytes", "gauge", "Bytes available to records.",
              knows_size, v_capacity);
    per_store(&o, stores, nstores, "store_evictions_total", "counter",
              "Live records dropped to make room (shm: LRU; Redis: evicted_keys of the server).",
              knows_evictions, v_evictions);
    per_store(&o, stores, nstores, "store_cluster_nodes", "gauge",
              "Redis Cluster: nodes in the slot map (masters and replicas, failed ones "
              "excluded), as the process answering last read it.",
              is_cluster, v_cluster_nodes);
    replication(&o, stores, nstores);
    return apr_array_pstrcat(p, o.parts, 0);
}

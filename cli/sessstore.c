/* sessstore - the session store's admin command (sessstore(1)).
 *
 *   sessstore -b BACKEND COMMAND [options]
 *
 * BACKEND is what SessionStoreBackend takes (redis://, rediss://, unix://)
 * or shm:PATH, the named segment of an httpd's shm store (its locks live in
 * the arena: this process takes them like the children). Commands: stats, count, list, revoke,
 * purge-expired; --help after any of them. It shares lib/ with the module: the same URI parser, the
 * same store operations, the same per-owner index. Nothing it prints holds a session's content, an
 * ID or a password; an owner's name only when it was given on the command line.
 *
 * Exit status: 0 done, 1 the store failed or what was named was not found,
 * 2 a usage error (unknown command or option, bad backend). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ss_id.h"
#include "ss_log.h"
#include "ss_owner.h"
#include "ss_redis.h"
#include "ss_shm.h"
#include "ss_store.h"

#define EXIT_STORE 1
#define EXIT_USAGE 2
#define PROG "sessstore"

typedef struct {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p);
} command_t;

static const char main_usage[] =
    "usage: " PROG " [-v] -b BACKEND COMMAND [options]\n"
    "       " PROG " COMMAND --help\n"
    "\n"
    "BACKEND: a SessionStoreBackend value (redis://..., rediss://..., unix:///path)\n"
    "         or shm:PATH (the SessionStoreShmFile segment of an httpd's shm store)\n"
    "-v:      also the library's own log lines (outages, malformed records)\n"
    "\n"
    "commands:\n"
    "  stats                      what the store holds, and its counters\n"
    "  count                      the number of stored sessions\n"
    "  list [--user NAME] [--limit N]\n"
    "                             one line per session: tag, created, last access,\n"
    "                             expires in, size (and the owner with --user)\n"
    "  revoke --user NAME         end every session of NAME\n"
    "  revoke --cookie VALUE      end the session whose cookie holds VALUE\n"
    "  revoke --tag TAG           end the session of an 8-hex tag from the error log\n"
    "  purge-expired              reclaim dead sessions and index entries now\n";

/* ---- output helpers ---- */

/* The library's own lines (its outage log, a malformed record met), with
 * -v only: without it, each failure is said once, by the command. */
static void lib_log(void *baton, int level, apr_status_t rv, const char *msg)
{
    if (!*(int *)baton || level > SS_LOG_NOTICE) {
        return;
    }
    if (rv) {
        char buf[128];

        fprintf(stderr, PROG ": %s (%s)\n", msg, apr_strerror(rv, buf, sizeof(buf)));
    } else {
        fprintf(stderr, PROG ": %s\n", msg);
    }
}

static int store_failed(const char *what, apr_status_t rv)
{
    char buf[128];

    fprintf(stderr, PROG ": %s failed: %s\n", what, apr_strerror(rv, buf, sizeof(buf)));
    return EXIT_STORE;
}

static const char *when(apr_time_t t, apr_pool_t *p)
{
    apr_time_exp_t x;
    char buf[32];
    apr_size_t n = 0;

    if (t <= 0 || apr_time_exp_gmt(&x, t) != APR_SUCCESS ||
        apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &x) != APR_SUCCESS) {
        return "-";
    }
    return apr_pstrdup(p, buf);
}

static int wants_help(int argc, const char *const *argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return 1;
        }
    }
    return 0;
}

/* --name VALUE at argv[*i]: *value, and *i past it. 0 when argv[*i] is not
 * that option; -1 (said on stderr) when its value is missing. */
static int option(int argc, const char *const *argv, int *i, const char *name, const char **value)
{
    if (strcmp(argv[*i], name)) {
        return 0;
    }
    if (*i + 1 >= argc || !*argv[*i + 1]) {
        fprintf(stderr, PROG ": %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static int bad_argument(const char *cmd, const char *arg)
{
    fprintf(stderr, PROG " %s: unexpected argument '%s' (see " PROG " %s --help)\n", cmd, arg, cmd);
    return EXIT_USAGE;
}

static int owner_of(const char *name, ss_owner_t *owner)
{
    apr_status_t rv = ss_owner_hash(name, owner);

    if (rv != APR_SUCCESS) {
        fprintf(stderr, PROG ": --user needs a non-empty name\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- stats, count ---- */

typedef struct {
    apr_uint64_t n, bytes, unreadable;
    apr_time_t oldest;
} tally_t;

static int tally(void *baton, const ss_store_entry_t *e)
{
    tally_t *t = baton;

    t->n++;
    t->bytes += e->size;
    t->unreadable += !e->readable;
    if (e->readable && (!t->oldest || e->created < t->oldest)) {
        t->oldest = e->created;
    }
    return 0;
}

static int cmd_count(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p)
{
    tally_t t = {0, 0, 0, 0};
    apr_status_t rv;

    if (argc > 1) {
        return bad_argument("count", argv[1]);
    }
    rv = store->ops->scan(store, NULL, 0, tally, &t, apr_time_now(), p);
    if (rv != APR_SUCCESS) {
        return store_failed("count", rv);
    }
    printf("%" APR_UINT64_T_FMT "\n", t.n);
    return 0;
}

static int cmd_stats(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p)
{
    tally_t t = {0, 0, 0, 0};
    apr_status_t rv;

    if (argc > 1) {
        return bad_argument("stats", argv[1]);
    }
    rv = store->ops->scan(store, NULL, 0, tally, &t, apr_time_now(), p);
    if (rv != APR_SUCCESS) {
        return store_failed("stats", rv);
    }
    printf("backend: %s\n", store->ops->describe(store, p));
    printf("sessions: %" APR_UINT64_T_FMT "\n", t.n);
    printf("bytes: %" APR_UINT64_T_FMT "\n", t.bytes);
    printf("unreadable: %" APR_UINT64_T_FMT "\n", t.unreadable);
    printf("oldest_created: %s\n", when(t.oldest, p));
    /* The shm store's counters live in the arena, for every httpd child; a
     * Redis store's would be this process's own. */
    if (!strcmp(store->ops->name, "shm")) {
        ss_store_stats_t st;

        rv = store->ops->stats(store, &st);
        if (rv != APR_SUCCESS) {
            return store_failed("stats", rv);
        }
        printf("capacity_bytes: %" APR_UINT64_T_FMT "\n", st.capacity_bytes);
        printf("used_bytes: %" APR_UINT64_T_FMT "\n", st.used_bytes);
        printf("hits: %" APR_UINT64_T_FMT "\n", st.hits);
        printf("misses: %" APR_UINT64_T_FMT "\n", st.misses);
        printf("saves: %" APR_UINT64_T_FMT "\n", st.saves);
        printf("removes: %" APR_UINT64_T_FMT "\n", st.removes);
        printf("evicted_expired: %" APR_UINT64_T_FMT "\n", st.evicted_expired);
        printf("evicted_lru: %" APR_UINT64_T_FMT "\n", st.evicted_lru);
        printf("rebuilds: %" APR_UINT64_T_FMT "\n", st.rebuilds);
    }
    return 0;
}

/* ---- list ---- */

typedef struct {
    const char *owner; /* printed when given */
    apr_time_t now;
    apr_pool_t *p;
} lister_t;

static int print_entry(void *baton, const ss_store_entry_t *e)
{
    lister_t *l = baton;
    const char *in = "-";

    if (e->expires) {
        in = apr_psprintf(l->p, "%" APR_TIME_T_FMT "s",
                          e->expires > l->now ? apr_time_sec(e->expires - l->now) : 0);
    }
    printf("%-8s  %-20s  %-20s  %10s  %6" APR_SIZE_T_FMT "%s%s\n", ss_key_tag(&e->key, l->p),
           e->readable ? when(e->created, l->p) : "?", e->readable ? when(e->accessed, l->p) : "?",
           in, e->size, l->owner ? "  " : "", l->owner ? l->owner : "");
    return 0;
}

static int cmd_list(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p)
{
    const char *user = NULL, *limit_s = NULL;
    apr_int64_t limit = 0;
    ss_owner_t owner;
    lister_t l;
    apr_status_t rv;
    int i;

    for (i = 1; i < argc; i++) {
        int r;

        if ((r = option(argc, argv, &i, "--user", &user)) != 0 ||
            (r = option(argc, argv, &i, "--limit", &limit_s)) != 0) {
            if (r < 0) {
                return EXIT_USAGE;
            }
            continue;
        }
        return bad_argument("list", argv[i]);
    }
    if (limit_s) {
        char *end;

        limit = apr_strtoi64(limit_s, &end, 10);
        if (*end || end == limit_s || limit < 1) {
            fprintf(stderr, PROG " list: --limit needs a positive number, not '%s'\n", limit_s);
            return EXIT_USAGE;
        }
    }
    if (user && owner_of(user, &owner)) {
        return EXIT_USAGE;
    }
    l.owner = user;
    l.now = apr_time_now();
    l.p = p;
    printf("%-8s  %-20s  %-20s  %10s  %6s%s\n", "TAG", "CREATED", "LAST-ACCESS", "EXPIRES-IN",
           "SIZE", user ? "  OWNER" : "");
    rv =
        store->ops->scan(store, user ? &owner : NULL, (apr_size_t)limit, print_entry, &l, l.now, p);
    if (rv != APR_SUCCESS) {
        return store_failed("list", rv);
    }
    return 0;
}

/* ---- revoke ---- */

typedef struct {
    const char *tag;
    apr_pool_t *p;
    ss_key_t key;
    int matches;
} tag_search_t;

static int find_tag(void *baton, const ss_store_entry_t *e)
{
    tag_search_t *t = baton;

    if (!strcmp(ss_key_tag(&e->key, t->p), t->tag)) {
        t->key = e->key;
        t->matches++;
    }
    return 0;
}

static int revoke_tag(ss_store_t *store, const char *tag, apr_pool_t *p)
{
    tag_search_t t;
    apr_status_t rv;
    int i;

    for (i = 0; tag[i]; i++) {
        if (!apr_isxdigit(tag[i])) {
            break;
        }
    }
    if (i != 8 || tag[i]) {
        fprintf(stderr, PROG " revoke: --tag needs the 8 hex digits of a log line's tag\n");
        return EXIT_USAGE;
    }
    {
        char *lower = apr_pstrdup(p, tag);

        for (i = 0; lower[i]; i++) {
            lower[i] = (char)apr_tolower(lower[i]);
        }
        t.tag = lower;
    }
    t.p = p;
    t.matches = 0;
    rv = store->ops->scan(store, NULL, 0, find_tag, &t, apr_time_now(), p);
    if (rv != APR_SUCCESS) {
        return store_failed("revoke", rv);
    }
    if (t.matches == 0) {
        fprintf(stderr, PROG " revoke: no session with tag %s\n", t.tag);
        return EXIT_STORE;
    }
    if (t.matches > 1) {
        /* 32 bits: rare, but never end a stranger's session by guess. */
        fprintf(stderr, PROG " revoke: %d sessions share tag %s; nothing revoked (use --cookie)\n",
                t.matches, t.tag);
        return EXIT_STORE;
    }
    rv = store->ops->remove(store, &t.key);
    if (rv != APR_SUCCESS) {
        return store_failed("revoke", rv);
    }
    printf("revoked session %s\n", t.tag);
    return 0;
}

static int revoke_cookie(ss_store_t *store, const char *value, apr_pool_t *p)
{
    ss_key_t key;
    apr_status_t rv;

    if (!ss_id_is_valid(value, strlen(value))) {
        fprintf(stderr, PROG " revoke: --cookie needs a session ID (%d base64url characters)\n",
                SS_ID_LEN);
        return EXIT_USAGE;
    }
    rv = ss_id_key(value, &key);
    if (rv == APR_SUCCESS) {
        rv = store->ops->remove(store, &key);
    }
    if (rv != APR_SUCCESS) {
        return store_failed("revoke", rv);
    }
    printf("revoked session %s\n", ss_key_tag(&key, p));
    return 0;
}

static int revoke_user(ss_store_t *store, const char *user)
{
    ss_owner_t owner;
    apr_size_t n = 0;
    apr_status_t rv;

    if (owner_of(user, &owner)) {
        return EXIT_USAGE;
    }
    rv = store->ops->revoke_owner(store, &owner, NULL, apr_time_now(), &n);
    if (rv != APR_SUCCESS) {
        return store_failed("revoke", rv);
    }
    printf("revoked %" APR_SIZE_T_FMT " session(s) of %s\n", n, user);
    return 0;
}

static int cmd_revoke(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p)
{
    const char *user = NULL, *cookie = NULL, *tag = NULL;
    int i;

    for (i = 1; i < argc; i++) {
        int r;

        if ((r = option(argc, argv, &i, "--user", &user)) != 0 ||
            (r = option(argc, argv, &i, "--cookie", &cookie)) != 0 ||
            (r = option(argc, argv, &i, "--tag", &tag)) != 0) {
            if (r < 0) {
                return EXIT_USAGE;
            }
            continue;
        }
        return bad_argument("revoke", argv[i]);
    }
    if (!!user + !!cookie + !!tag != 1) {
        fprintf(stderr, PROG " revoke: give exactly one of --user, --cookie, --tag\n");
        return EXIT_USAGE;
    }
    if (user) {
        return revoke_user(store, user);
    }
    if (cookie) {
        return revoke_cookie(store, cookie, p);
    }
    return revoke_tag(store, tag, p);
}

/* ---- purge-expired ---- */

static int cmd_purge(ss_store_t *store, int argc, const char *const *argv, apr_pool_t *p)
{
    apr_size_t n = 0;
    apr_status_t rv;

    (void)p;
    if (argc > 1) {
        return bad_argument("purge-expired", argv[1]);
    }
    rv = store->ops->purge_expired(store, apr_time_now(), &n);
    if (rv != APR_SUCCESS) {
        return store_failed("purge-expired", rv);
    }
    printf("purged %" APR_SIZE_T_FMT "\n", n);
    return 0;
}

static const command_t commands[] = {
    {"stats", "stats",
     "What the store holds: its sessions and their bytes (a walk of the store), how many\n"
     "have a header this version cannot read, the oldest creation time; for shm, the\n"
     "arena's capacity and counters (shared by every httpd child).\n",
     cmd_stats},
    {"count", "count", "The number of stored sessions (a walk of the store).\n", cmd_count},
    {"list", "list [--user NAME] [--limit N]",
     "One line per stored session: its tag (the 8 hex digits of the error log), when it\n"
     "was created and last used (UTC), the seconds until the store drops it, its size in\n"
     "bytes. --user NAME: only NAME's sessions (from the per-owner index), with NAME in an\n"
     "OWNER column (the store keeps owners hashed, and sealed records hide them).\n"
     "--limit N: at most N lines.\n",
     cmd_list},
    {"revoke", "revoke --user NAME | --cookie VALUE | --tag TAG",
     "End sessions now, on every node that shares the store:\n"
     "  --user NAME     every session of NAME (the per-owner index)\n"
     "  --cookie VALUE  the session whose ID the browser holds as VALUE\n"
     "  --tag TAG       the one session of that tag (refused when several share it)\n",
     cmd_revoke},
    {"purge-expired", "purge-expired",
     "Reclaim now what is dead: shm records past their deadline, and per-owner index\n"
     "entries of sessions that no longer exist (Redis drops dead sessions itself).\n",
     cmd_purge},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command_t *find_command(const char *name)
{
    apr_size_t i;

    for (i = 0; i < NCOMMANDS; i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

/* ---- backends ---- */

/* Attach to the named segment of an httpd's shm store (SessionStoreShmFile)
 * and take its stripes' locks like the children: the locks live in the
 * arena. */
static int open_shm(const char *path, ss_store_t **store, apr_pool_t *p)
{
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    if (!*path) {
        fprintf(stderr, PROG ": shm: needs the path of the segment (SessionStoreShmFile)\n");
        return EXIT_USAGE;
    }
    rv = apr_shm_attach(&shm, path, p);
    if (rv != APR_SUCCESS) {
        char buf[128];

        fprintf(stderr, PROG ": cannot attach to the shared-memory store %s: %s\n", path,
                apr_strerror(rv, buf, sizeof(buf)));
        return EXIT_STORE;
    }
    rv = ss_shm_open_mapped(store, apr_shm_baseaddr_get(shm), apr_shm_size_get(shm), p);
    if (rv != APR_SUCCESS) {
        fprintf(stderr,
                PROG ": %s is not a session arena of this version (another module version, "
                     "or not a sessstore segment)\n",
                path);
        return EXIT_STORE;
    }
    return 0;
}

static int open_backend(const char *backend, ss_store_t **store, apr_pool_t *p)
{
    apr_status_t rv;

    if (!strncmp(backend, "shm:", 4)) {
        return open_shm(backend + 4, store, p);
    }
    if (strstr(backend, "://")) {
        ss_redis_config_t *cfg = NULL;
        const char *err = ss_redis_parse(&cfg, backend, p);

        if (err) {
            fprintf(stderr, PROG ": bad backend: %s\n", err);
            return EXIT_USAGE;
        }
        rv = ss_redis_open(store, cfg, p);
        if (rv == APR_SUCCESS) {
            rv = (*store)->ops->ping(*store);
        }
        if (rv != APR_SUCCESS) {
            char buf[128];

            fprintf(stderr, PROG ": cannot reach %s: %s\n", ss_redis_target(cfg, p),
                    apr_strerror(rv, buf, sizeof(buf)));
            return EXIT_STORE;
        }
        return 0;
    }
    /* Not repeated: a mistyped URI may hold a password. */
    fprintf(stderr, PROG ": unknown backend (expected redis://..., rediss://..., "
                         "unix:///path or shm:PATH)\n");
    return EXIT_USAGE;
}

static int verbose;

static int run(int argc, const char *const *argv, apr_pool_t *p)
{
    const char *backend = NULL;
    const command_t *cmd;
    ss_store_t *store = NULL;
    int i = 1, rc;

    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(main_usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
            verbose = 1;
            i++;
            continue;
        }
        if ((!strcmp(argv[i], "-b") || !strcmp(argv[i], "--backend")) && i + 1 < argc) {
            backend = argv[i + 1];
            i += 2;
            continue;
        }
        fprintf(stderr, PROG ": unknown option '%s'\n%s", argv[i], main_usage);
        return EXIT_USAGE;
    }
    if (i >= argc) {
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    cmd = find_command(argv[i]);
    if (!cmd) {
        fprintf(stderr, PROG ": unknown command '%s'\n%s", argv[i], main_usage);
        return EXIT_USAGE;
    }
    if (wants_help(argc - i, argv + i)) {
        printf("usage: " PROG " -b BACKEND %s\n\n%s", cmd->usage, cmd->help);
        return 0;
    }
    if (!backend) {
        fprintf(stderr, PROG ": no backend: -b BACKEND is required\n");
        return EXIT_USAGE;
    }
    rc = open_backend(backend, &store, p);
    if (rc) {
        return rc;
    }
    rc = cmd->run(store, argc - i, argv + i, p);
    store->ops->close(store);
    return rc;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    int rc;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS ||
        apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fprintf(stderr, PROG ": cannot initialise APR\n");
        return EXIT_STORE;
    }
    ss_log_set(lib_log, &verbose);
    rc = run(argc, argv, p);
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}

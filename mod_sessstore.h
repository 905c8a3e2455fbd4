/* mod_sessstore.h - what the module's three files share and nothing more: the
 * configuration records, the few module-wide values, the calls across files. */
#ifndef MOD_SESSSTORE_H
#define MOD_SESSSTORE_H

#include "httpd.h"
#include "http_config.h"

#include "ss_cookie.h"
#include "ss_expiry.h"
#include "ss_health.h"
#include "ss_metrics.h"
#include "ss_redis.h"
#include "ss_store.h"

/* The module record: defined in mod_sessstore.c; every file reaches its
 * configuration through it (ap_get_module_config). The module's only
 * exported symbol besides the library's ss_* functions. */
extern module AP_MODULE_DECLARE_DATA sessstore_module;

/* httpd loads modules with RTLD_GLOBAL: what follows stays out of the
 * module's dynamic symbol table, as it did while it was all static in one
 * file, so that no other module's symbol of the same name can stand in. */
#pragma GCC visibility push(hidden)

/* Longest name of the shm segment (the retained arena's name field, in
 * mod_sessstore.c); set_shm_file keeps 256 bytes of it for the directory. */
#define SHM_FILE_MAX 1024

/* Per server. Created and merged by mod_sessstore_config.c and filled by
 * its directives; post_config (mod_sessstore.c) widens retention and opens
 * its store. Read by start-up, the request path and the status pages. */
typedef struct {
    const char *backend;      /* the SessionStoreBackend value; NULL: inherit, then shm */
    ss_redis_config_t *redis; /* parsed from it; NULL for shm */
    apr_size_t max_size;
    ss_expiry_t retention; /* the most lenient timeouts of this server's locations */
    ss_store_t *store;     /* opened in post_config */
} server_conf;

/* What a request sees while the store cannot be reached: set by
 * set_outage, read by refuse_during_outage. */
typedef enum { OUTAGE_UNSET = 0, OUTAGE_UNAVAILABLE, OUTAGE_NOSESSION } outage_e;

/* Per directory. Created, merged and set by mod_sessstore_config.c; read
 * by check_config and post_config (lock waits, timeouts in force) and by
 * the request path (mod_sessstore.c). */
typedef struct {
    ss_cookie_t cookie; /* cookie.name NULL: this store is off here */
    int cookie_set;
    apr_interval_time_t idle;
    int idle_set;
    apr_interval_time_t absolute;
    int absolute_set;
    outage_e outage;
    const char *revoke_header; /* SessionStoreRevokeHeader; NULL: none */
    int revoke_header_set;
    int lock; /* SessionStoreLock: -1 unset (off), 0 off, 1 on */
    apr_interval_time_t lock_timeout;
    int lock_timeout_set;
    apr_interval_time_t lock_lease;
    int lock_lease_set;
} dir_conf;

/* The server-wide directives (GLOBAL_ONLY), one set per httpd process. Set
 * by their handlers in mod_sessstore_config.c, back to the defaults before
 * each read of the configuration (pre_config calls global_conf_reset); read
 * at start-up by check_config, shm_attach and store_opened. */
typedef struct {
    apr_size_t shm_size; /* SessionStoreShmSize */
    /* SessionStoreRecordFormat (0: unset, the current format) and
     * SessionStoreSeal (-1: unset, on; 0 off, 1 on, 2 required): how every
     * store writes records, and whether it accepts any in clear. */
    int record_format;
    int record_seal;
    const char *shm_file; /* SessionStoreShmFile as written; NULL: the default */
} global_conf;
extern global_conf globals;

/* mod_sessstore_config.c: the module record's configuration slots and
 * command table (sessstore_module, mod_sessstore.c). */
void *create_server_conf(apr_pool_t *p, server_rec *s);
void *merge_server_conf(apr_pool_t *p, void *basev, void *addv);
void *create_dir_conf(apr_pool_t *p, char *dir);
void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
extern const command_rec sessstore_cmds[];
/* pre_config: globals back to their defaults. */
void global_conf_reset(void);
/* A lock wait that outlasts its lease, or NULL: for set_lock_timeout and
 * set_lock_lease within a section, for check_config across sections. */
const char *lock_pair_error(apr_pool_t *p, const dir_conf *c);

/* Every store this httpd opened, each once, metered (ss_store_t *). Set by
 * post_config (mod_sessstore.c); read by child_init and by the metrics and
 * health pages (mod_sessstore_status.c). */
extern apr_array_header_t *open_stores;
/* The counters of every process; NULL when their segment failed. Set by
 * post_config (metrics_attach); read by the counters and the revoke in
 * mod_sessstore.c and by the pages. */
extern ss_metrics_t *metrics;
/* Per child: a health prober per open store, in the same order. Set by
 * child_init (mod_sessstore.c); read by the metrics and health pages. */
extern ss_health_t **healths;

/* mod_sessstore.c's counters, for the pages: whether a process still runs
 * (ss_metrics' store-down table), and this process's latest verdict on the
 * store (a health probe counts as an operation). */
int process_alive(void *baton, apr_uint32_t pid);
void note_store_state(int down);

/* mod_sessstore_status.c: the pages' handlers and mod_status's hook, for
 * register_hooks (mod_sessstore.c). */
int status_handler(request_rec *r);
int status_hook(request_rec *r, int flags);
int metrics_handler(request_rec *r);
int health_handler(request_rec *r);

#pragma GCC visibility pop

#endif /* MOD_SESSSTORE_H */

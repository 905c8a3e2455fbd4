/* mod_sessfloor.c - the Redis floor of the benchmark: the round trips of a
 * mod_sessstore request over Redis, made with plain hiredis and no session
 * logic (no mod_session, no record, no expiry, no key derivation, no pool of
 * connections: one connection per worker thread). Never installed: built by
 * "make check" only (check_LTLIBRARIES), like mod_sessprobe.
 *
 *   SessFloorRedis 127.0.0.1 6379     (server-wide: where Redis listens)
 *   <Location /probe>
 *       SetHandler sessfloor
 *   </Location>
 *
 * It answers like mod_sessprobe, so bench/loadgen checks it the same way:
 *
 *   GET /probe         GET floor:ID (one round trip), answers the value
 *   GET /probe?w=1     then SET floor:ID n+1 PX ... XX (one more)
 *
 * where ID is the "session" cookie (32 hex digits). Without a cookie, or when
 * Redis has no value under it, a new ID is stored with SET ... NX (the one
 * round trip of a new session's save), sent in Set-Cookie, and 0 answered.
 * A Redis failure answers 503. */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <hiredis.h>

#define FLOOR_HANDLER "sessfloor"
#define FLOOR_COOKIE "session"
#define FLOOR_ID_LEN 32
#define FLOOR_TTL_MS "1800000"

module AP_MODULE_DECLARE_DATA sessfloor_module;

typedef struct {
    const char *host;
    int port;
} floor_conf_t;

/* One connection per worker thread, opened on its first request. */
static __thread redisContext *conn;

static void *create_server_conf(apr_pool_t *p, server_rec *s)
{
    floor_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->host = "127.0.0.1";
    c->port = 6379;
    return c;
}

static const char *set_redis(cmd_parms *cmd, void *dummy, const char *host, const char *port)
{
    floor_conf_t *c = ap_get_module_config(cmd->server->module_config, &sessfloor_module);

    (void)dummy;
    c->host = host;
    c->port = atoi(port);
    return c->port > 0 && c->port < 65536 ? NULL : "SessFloorRedis: bad port";
}

/* The value of NAME in the query string, or NULL. */
static const char *query_arg(request_rec *r, const char *name)
{
    apr_size_t len = strlen(name);
    const char *p = r->args;

    while (p && *p) {
        if (!strncmp(p, name, len) && p[len] == '=') {
            return p + len + 1;
        }
        p = strchr(p, '&');
        if (p) {
            p++;
        }
    }
    return NULL;
}

/* The ID in the cookie, or NULL when there is none of the right form. */
static const char *cookie_id(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Cookie"), *at;
    apr_size_t n = 0;

    at = h ? strstr(h, FLOOR_COOKIE "=") : NULL;
    if (!at) {
        return NULL;
    }
    at += strlen(FLOOR_COOKIE "=");
    while (n < FLOOR_ID_LEN && apr_isxdigit(at[n])) {
        n++;
    }
    return n == FLOOR_ID_LEN ? apr_pstrmemdup(r->pool, at, n) : NULL;
}

/* One command on this thread's connection; NULL (connection dropped) on
 * failure. */
static redisReply *command(request_rec *r, int argc, const char **argv)
{
    floor_conf_t *c = ap_get_module_config(r->server->module_config, &sessfloor_module);
    redisReply *reply;

    if (!conn) {
        struct timeval tv = {1, 0};

        conn = redisConnectWithTimeout(c->host, c->port, tv);
        if (!conn || conn->err || redisSetTimeout(conn, tv) != REDIS_OK) {
            if (conn) {
                redisFree(conn);
                conn = NULL;
            }
            return NULL;
        }
    }
    reply = redisCommandArgv(conn, argc, argv, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            freeReplyObject(reply);
        }
        redisFree(conn);
        conn = NULL;
        return NULL;
    }
    return reply;
}

static int floor_handler(request_rec *r)
{
    const char *id, *argv[7], *body;
    char *key;
    redisReply *reply;
    apr_int64_t n = 0;
    int found = 0;
    apr_size_t len;

    if (!r->handler || strcmp(r->handler, FLOOR_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    id = cookie_id(r);
    if (id) {
        key = apr_pstrcat(r->pool, "floor:", id, NULL);
        argv[0] = "GET";
        argv[1] = key;
        if (!(reply = command(r, 2, argv))) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (reply->type == REDIS_REPLY_STRING) {
            n = apr_atoi64(reply->str);
            found = 1;
        }
        freeReplyObject(reply);
    }
    if (!found || (query_arg(r, "w") && !strcmp(query_arg(r, "w"), "1"))) {
        if (found) {
            n++;
        } else {
            unsigned char raw[FLOOR_ID_LEN / 2];
            char *hex = apr_palloc(r->pool, FLOOR_ID_LEN + 1);

            if (apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS) {
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            ap_bin2hex(raw, sizeof(raw), hex);
            id = hex;
            key = apr_pstrcat(r->pool, "floor:", id, NULL);
            apr_table_setn(r->err_headers_out, "Set-Cookie",
                           apr_pstrcat(r->pool, FLOOR_COOKIE "=", id, "; path=/; HttpOnly", NULL));
        }
        argv[0] = "SET";
        argv[1] = key;
        argv[2] = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, n);
        argv[3] = "PX";
        argv[4] = FLOOR_TTL_MS;
        argv[5] = found ? "XX" : "NX";
        if (!(reply = command(r, 6, argv))) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        freeReplyObject(reply);
    }
    body = apr_psprintf(r->pool, "%" APR_INT64_T_FMT "\n", n);
    len = strlen(body);
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(floor_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

static const command_rec floor_cmds[] = {
    AP_INIT_TAKE2("SessFloorRedis", set_redis, NULL, RSRC_CONF,
                  "host and port of the Redis the floor handler uses"),
    {NULL},
};

/* clang-format off */
module AP_MODULE_DECLARE_DATA sessfloor_module = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_server_conf,
    NULL,
    floor_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE,
};
/* clang-format on */

/* unit_redis.h - real redis-server processes for the unit tests.
 *
 * A server is started on a free loopback port (and a Unix socket in a
 * temporary directory), without persistence, and dies with the test. A
 * missing redis-server fails the run: no backend goes untested silently.
 * REDIS_SERVER overrides the binary. */
#ifndef UNIT_REDIS_H
#define UNIT_REDIS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis.h>

#define UNIT_REDIS_DEFAULT_SERVER "/usr/bin/redis-server"

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
    char sock[128];
    const char *password; /* for the admin connection */
} server_t;

/* The redis-server binary, or NULL (said on stderr) when there is none. */
static inline const char *unit_redis_binary(void)
{
    const char *binary =
        getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : UNIT_REDIS_DEFAULT_SERVER;

    if (access(binary, X_OK)) {
        fprintf(stderr,
                "FAIL: %s not found or not executable: install the Debian package "
                "redis-server (or set REDIS_SERVER); the Redis backend cannot be tested\n",
                binary);
        return NULL;
    }
    return binary;
}

static inline int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &len)) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static inline redisContext *admin_connect(const server_t *srv)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv->port, tv);

    if (c && !c->err && srv->password) {
        freeReplyObject(redisCommand(c, "AUTH %s", srv->password));
    }
    return c;
}

static inline int wait_ready(const server_t *srv)
{
    int i;

    for (i = 0; i < 500; i++) {
        redisContext *c = admin_connect(srv);
        redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;

        if (c) {
            redisFree(c);
        }
        if (r) {
            freeReplyObject(r);
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

/* Start redis-server on srv->port (picking one if 0), keeping srv->dir. */
static inline int server_start(server_t *srv, const char *binary, const char *const *extra)
{
    char port[16];
    const char *argv[32];
    int n = 0;

    if (!srv->port) {
        srv->port = free_port();
    }
    if (!srv->dir[0]) {
        strcpy(srv->dir, "/tmp/test_redis.XXXXXX");
        if (!mkdtemp(srv->dir)) {
            return -1;
        }
        snprintf(srv->sock, sizeof(srv->sock), "%s/redis.sock", srv->dir);
    }
    snprintf(port, sizeof(port), "%d", srv->port);
    argv[n++] = binary;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--unixsocket";
    argv[n++] = srv->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
    argv[n++] = "--dir";
    argv[n++] = srv->dir;
    while (extra && *extra && n < 30) {
        argv[n++] = *extra++;
    }
    argv[n] = NULL;
    srv->pid = fork();
    if (srv->pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        /* Die with the test, even when it crashes before its teardown. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(binary, (char *const *)argv);
        _exit(127);
    }
    if (srv->pid < 0 || wait_ready(srv)) {
        fprintf(stderr, "redis-server %s did not start on port %d\n", binary, srv->port);
        return -1;
    }
    return 0;
}

static inline void server_kill(server_t *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
}

static inline void server_destroy(server_t *srv)
{
    server_kill(srv);
    if (srv->dir[0]) {
        unlink(srv->sock);
        rmdir(srv->dir);
    }
    memset(srv, 0, sizeof(*srv));
}

#endif /* UNIT_REDIS_H */

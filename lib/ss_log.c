/* ss_log.c - the library's logging seam. */
#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_log.h"

static ss_log_cb *log_cb;
static void *log_baton;

void ss_log_set(ss_log_cb *cb, void *baton)
{
    log_cb = cb;
    log_baton = baton;
}

void ss_log(int level, apr_status_t rv, const char *fmt, ...)
{
    char msg[1024], *c;
    va_list ap;

    if (!log_cb) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Messages quote what servers say (Redis error replies): a line break
     * or an escape sequence there must not forge or garble log lines. */
    for (c = msg; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    log_cb(log_baton, level, rv, msg);
}

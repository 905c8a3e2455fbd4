/* ss_log.h - the library's logging seam.
 *
 * The library never writes to stderr or to httpd's log itself: it hands each
 * message to one callback that the host installs (the module maps it to
 * ap_log_error, tests capture it). Levels follow syslog, like APLOG_*. */
#ifndef SS_LOG_H
#define SS_LOG_H

#include <apr_errno.h>

enum ss_log_level {
    SS_LOG_ERR = 3,
    SS_LOG_WARNING = 4,
    SS_LOG_NOTICE = 5,
    SS_LOG_INFO = 6,
    SS_LOG_DEBUG = 7
};

typedef void ss_log_cb(void *baton, int level, apr_status_t rv, const char *msg);

/* Install the callback (NULL discards messages). Call before any store is used. */
void ss_log_set(ss_log_cb *cb, void *baton);

/* Format and hand over one message, at most 1023 bytes, with every control
 * character (a line break a server put in an error reply) written as '?'. */
void ss_log(int level, apr_status_t rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

/*
 * ld_log.c -- foxgov-ledgerd's log lines, to stderr or syslog (ld_log.h).
 */

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ld_log.h"


static int  ld_log_syslog;
static int  ld_log_level = LD_LOG_INFO;

static const char  *ld_log_names[] = {
    "error", "warn", "notice", "info", "debug"
};

static const int  ld_log_priorities[] = {
    LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG
};


void
ld_log_init(int use_syslog, int level)
{
    ld_log_syslog = use_syslog;
    ld_log_level = level;

    if (use_syslog) {
        openlog("foxgov-ledgerd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
}


void
ld_log(int level, const char *fmt, ...)
{
    va_list    ap;
    char       msg[1024], when[32];
    time_t     now;
    struct tm  tm;

    if (level > ld_log_level || level < 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (ld_log_syslog) {
        syslog(ld_log_priorities[level], "%s", msg);
        return;
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    /* one write per line, so lines of concurrent daemons do not mix */
    fprintf(stderr, "%s [%s] foxgov-ledgerd[%ld]: %s\n", when,
            ld_log_names[level], (long) getpid(), msg);
}

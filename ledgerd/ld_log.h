/*
 * ld_log.h -- foxgov-ledgerd's log: one line per event, to stderr
 * ("<time> [<level>] foxgov-ledgerd[<pid>]: <message>") or to syslog
 * (facility daemon).  Never a credential: the Redis password and the
 * PostgreSQL URI's password are not logged by any caller.
 */

#ifndef LD_LOG_H
#define LD_LOG_H

#define LD_LOG_ERR      0
#define LD_LOG_WARN     1
#define LD_LOG_NOTICE   2
#define LD_LOG_INFO     3
#define LD_LOG_DEBUG    4

/* Log to syslog instead of stderr (use_syslog 1), at most level. */
void ld_log_init(int use_syslog, int level);

void ld_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* LD_LOG_H */

/*
 * ld_main.c -- `foxgov-ledgerd`: options (the command line and a config
 * file with the same names), the log, signals, and the run
 * (ld_ledgerd.c).  docs/ledgerd.md describes every option.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld_ledgerd.h"
#include "ld_log.h"


#define LD_CONFIG_LINE  4096

/* Options that take no value. */
static const char  *ld_flags[] = { "once", "syslog", "no-trim", NULL };

/* Config file values live as long as the process. */
static char  *ld_kept[256];
static int    ld_nkept;


static void
ld_usage(FILE *out)
{
    fprintf(out,
"usage: foxgov-ledgerd --ledger file:DIR|postgresql://... [options]\n"
"\n"
"Reads the evidence streams foxgov:ev:{<tenant>} through a consumer group,\n"
"verifies every record and appends it to its tenant's hash-chained ledger.\n"
"\n"
"  --redis IP:PORT|unix:PATH   Redis (default 127.0.0.1:6379)\n"
"  --redis-cluster IP:PORT[,IP:PORT...]\n"
"                              a Redis Cluster, from these seeds: every\n"
"                              master is read (instead of --redis)\n"
"  --redis-password-file FILE  AUTH with the first line of FILE\n"
"  --redis-db N                SELECT N\n"
"  --redis-timeout T           connect and reply timeout (default 5s)\n"
"  --ledger SPEC               file:DIR or a postgresql:// URI (required)\n"
"  --group NAME                consumer group (default foxgov-ledger)\n"
"  --consumer NAME             consumer name (default: the host name)\n"
"  --batch N                   entries read a stream at once (default 4000)\n"
"  --checkpoint-key FILE       Ed25519 key (PEM or JWKS) to sign checkpoints\n"
"  --checkpoint-kid KID        which key of a JWKS (default: the first)\n"
"  --checkpoint-every N|T      a checkpoint every N entries or T of time\n"
"                              (give both; default 10000 and 60s)\n"
"  --claim-idle T              claim others' entries idle so long (60s)\n"
"  --orphan-grace T            wait so long for a record's parent (30s)\n"
"  --block T                   wait for new entries so long a read (1s)\n"
"  --no-trim                   do not trim acknowledged entries\n"
"  --once                      drain the streams and exit\n"
"  --syslog                    log to syslog (facility daemon)\n"
"  --log-level LEVEL           error|warn|notice|info|debug (info)\n"
"  --config FILE               options from FILE, one \"name value\" a line\n"
"\n"
"T is a number with a unit: 500ms, 30s, 5m, 1h.  SIGTERM or SIGINT stops it\n"
"after its batch.  Exit status: 0 stopped, 1 failed, 2 usage.\n");
}


/* "500ms", "30s", "5m", "1h" -> ms; -1 when malformed. */
static long
ld_parse_time(const char *s)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || v < 0 || v > 86400000L) {
        return -1;
    }
    if (strcmp(end, "ms") == 0) {
        return v;
    }
    if (strcmp(end, "s") == 0) {
        return v * 1000;
    }
    if (strcmp(end, "m") == 0) {
        return v * 60000;
    }
    if (strcmp(end, "h") == 0 && v <= 24) {
        return v * 3600000;
    }
    return -1;
}


static int
ld_parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
    char                *end;
    unsigned long long   v;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v == 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}


/* A group or consumer name: printable, no space, bounded. */
static int
ld_name_ok(const char *s)
{
    size_t  n = strlen(s), i;

    if (n == 0 || n >= LD_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}


static int ld_config_file(ld_conf_t *c, const char *path, int *syslog_on,
    int *level);


/* Set option name to value.  0, or -1 after saying what is wrong. */
static int
ld_option(ld_conf_t *c, const char *name, const char *value, int *syslog_on,
    int *level)
{
    unsigned long long  n;
    long                t;

#define LD_BAD(...)  do { fprintf(stderr, "foxgov-ledgerd: " __VA_ARGS__); \
                          fputc('\n', stderr); return -1; } while (0)

    if (strcmp(name, "redis") == 0) {
        c->redis = value;
    } else if (strcmp(name, "redis-cluster") == 0) {
        c->redis_cluster = value;
    } else if (strcmp(name, "redis-password-file") == 0) {
        c->redis_password_file = value;
    } else if (strcmp(name, "redis-db") == 0) {
        if (strcmp(value, "0") == 0) {
            c->redis_db = 0;
        } else if (ld_parse_count(value, 1000000, &n) == 0) {
            c->redis_db = (int) n;
        } else {
            LD_BAD("--redis-db \"%s\" is not a database number", value);
        }
    } else if (strcmp(name, "redis-timeout") == 0) {
        if ((t = ld_parse_time(value)) <= 0) {
            LD_BAD("--redis-timeout \"%s\" is not a time (e.g. 5s)", value);
        }
        c->redis_timeout_ms = t;
    } else if (strcmp(name, "ledger") == 0) {
        c->ledger = value;
    } else if (strcmp(name, "group") == 0) {
        if (!ld_name_ok(value)) {
            LD_BAD("--group \"%s\" is not a name", value);
        }
        c->group = value;
    } else if (strcmp(name, "consumer") == 0) {
        if (!ld_name_ok(value)) {
            LD_BAD("--consumer \"%s\" is not a name", value);
        }
        c->consumer = value;
    } else if (strcmp(name, "batch") == 0) {
        if (ld_parse_count(value, 100000, &n) != 0) {
            LD_BAD("--batch \"%s\" is not 1..100000", value);
        }
        c->batch = (size_t) n;
    } else if (strcmp(name, "checkpoint-key") == 0) {
        c->checkpoint_key = value;
    } else if (strcmp(name, "checkpoint-kid") == 0) {
        c->checkpoint_kid = value;
    } else if (strcmp(name, "checkpoint-every") == 0) {
        if (ld_parse_count(value, 1ULL << 53, &n) == 0) {
            c->checkpoint_entries = n;
        } else if ((t = ld_parse_time(value)) > 0) {
            c->checkpoint_ms = t;
        } else {
            LD_BAD("--checkpoint-every \"%s\" is neither a count nor a time "
                   "(e.g. 10000, 60s)", value);
        }
    } else if (strcmp(name, "claim-idle") == 0) {
        if ((t = ld_parse_time(value)) <= 0) {
            LD_BAD("--claim-idle \"%s\" is not a time (e.g. 60s)", value);
        }
        c->claim_idle_ms = t;
    } else if (strcmp(name, "orphan-grace") == 0) {
        if ((t = ld_parse_time(value)) < 0) {
            LD_BAD("--orphan-grace \"%s\" is not a time (e.g. 30s)", value);
        }
        c->orphan_grace_ms = t;
    } else if (strcmp(name, "block") == 0) {
        if ((t = ld_parse_time(value)) <= 0) {
            LD_BAD("--block \"%s\" is not a time (e.g. 1s)", value);
        }
        c->block_ms = t;
    } else if (strcmp(name, "once") == 0) {
        c->once = 1;
    } else if (strcmp(name, "no-trim") == 0) {
        c->trim = 0;
    } else if (strcmp(name, "syslog") == 0) {
        *syslog_on = 1;
    } else if (strcmp(name, "log-level") == 0) {
        static const char  *levels[] = { "error", "warn", "notice", "info",
                                         "debug" };
        for (*level = 0; *level < 5; (*level)++) {
            if (strcmp(value, levels[*level]) == 0) {
                break;
            }
        }
        if (*level == 5) {
            LD_BAD("--log-level \"%s\": error, warn, notice, info or debug",
                   value);
        }
    } else if (strcmp(name, "config") == 0) {
        return ld_config_file(c, value, syslog_on, level);
    } else {
        LD_BAD("unknown option --%s (try --help)", name);
    }

#undef LD_BAD
    return 0;
}


static int
ld_is_flag(const char *name)
{
    int  i;

    for (i = 0; ld_flags[i] != NULL; i++) {
        if (strcmp(name, ld_flags[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


/* Options from a file: "name value" or "name" a line, # comments. */
static int
ld_config_file(ld_conf_t *c, const char *path, int *syslog_on, int *level)
{
    FILE    *f;
    char     line[LD_CONFIG_LINE], *p, *name, *value, *end;
    int      lineno, rc;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "foxgov-ledgerd: %s: %s\n", path, strerror(errno));
        return -1;
    }

    rc = 0;
    lineno = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr, "foxgov-ledgerd: %s:%d: line too long\n", path,
                    lineno);
            rc = -1;
            break;
        }

        p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0') {
            continue;
        }
        p[strcspn(p, "\r\n")] = '\0';

        name = p;
        p += strcspn(p, " \t");
        if (*p != '\0') {
            *p++ = '\0';
            p += strspn(p, " \t");
        }
        end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            *--end = '\0';
        }

        if (strcmp(name, "config") == 0) {
            fprintf(stderr, "foxgov-ledgerd: %s:%d: config files do not "
                    "nest\n", path, lineno);
            rc = -1;
            break;
        }

        if (!ld_is_flag(name) && *p == '\0') {
            fprintf(stderr, "foxgov-ledgerd: %s:%d: %s needs a value\n",
                    path, lineno, name);
            rc = -1;
            break;
        }

        if (ld_nkept == (int) (sizeof(ld_kept) / sizeof(ld_kept[0]))) {
            fprintf(stderr, "foxgov-ledgerd: %s: too many options\n", path);
            rc = -1;
            break;
        }
        value = ld_kept[ld_nkept++] = strdup(p);
        if (value == NULL) {
            rc = -1;
            break;
        }

        if (ld_option(c, name, value, syslog_on, level) != 0) {
            fprintf(stderr, "foxgov-ledgerd: (in %s:%d)\n", path, lineno);
            rc = -1;
        }
    }

    fclose(f);
    return rc;
}


static void
ld_on_signal(int sig)
{
    (void) sig;
    ld_stop = 1;
}


int
main(int argc, char **argv)
{
    ld_conf_t         c;
    ld_daemon_t       d;
    fg_error_t        err;
    struct sigaction  sa;
    char              host[LD_NAME_MAX];
    const char       *name, *value;
    int               i, syslog_on, level, rc;

    memset(&c, 0, sizeof(c));
    c.redis = "127.0.0.1:6379";
    c.redis_db = -1;
    c.redis_timeout_ms = 5000;
    c.group = "foxgov-ledger";
    c.batch = 4000;
    c.checkpoint_entries = 10000;
    c.checkpoint_ms = 60000;
    c.claim_idle_ms = 60000;
    c.orphan_grace_ms = 30000;
    c.block_ms = 1000;
    c.discover_ms = 5000;
    c.trim = 1;
    syslog_on = 0;
    level = LD_LOG_INFO;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            ld_usage(stdout);
            return 0;
        }
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            fprintf(stderr, "foxgov-ledgerd: unexpected \"%s\" (try "
                    "--help)\n", argv[i]);
            return 2;
        }
        name = argv[i] + 2;
        value = NULL;
        if (!ld_is_flag(name)) {
            if (i + 1 == argc) {
                fprintf(stderr, "foxgov-ledgerd: --%s needs a value\n", name);
                return 2;
            }
            value = argv[++i];
        }
        if (ld_option(&c, name, value, &syslog_on, &level) != 0) {
            return 2;
        }
    }

    if (c.redis_cluster != NULL && c.redis_db >= 0) {
        fprintf(stderr, "foxgov-ledgerd: --redis-db with --redis-cluster: a "
                "Redis Cluster has database 0 only\n");
        return 2;
    }

    if (c.ledger == NULL) {
        fprintf(stderr, "foxgov-ledgerd: --ledger file:DIR|postgresql://... "
                "is required (try --help)\n");
        return 2;
    }

    if (c.consumer == NULL) {
        if (gethostname(host, sizeof(host) - 1) != 0 || !ld_name_ok(host)) {
            snprintf(host, sizeof(host), "ledgerd");
        }
        host[sizeof(host) - 1] = '\0';
        c.consumer = host;
    }

    ld_log_init(syslog_on, level);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ld_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (ld_daemon_init(&d, &c, &err) != FG_OK) {
        ld_log(LD_LOG_ERR, "%s", err.msg);
        ld_daemon_free(&d);
        return 1;
    }

    ld_log(LD_LOG_NOTICE, "started: ledger %s backend, group %s, consumer "
           "%s%s", d.backend->ops->name, c.group, c.consumer,
           c.once ? ", --once" : "");

    rc = ld_daemon_run(&d);

    ld_daemon_free(&d);
    for (i = 0; i < ld_nkept; i++) {
        free(ld_kept[i]);
    }
    return rc;
}

/*
 * cmd_report.c -- `foxgov report cost`: tokens and cost of the model
 * calls of one or more tenant ledgers (read through cli_ledger, so only
 * evidence that verifies), summed per label value, model or tenant.
 * Tokens and costs are the ones each ModelCallRecord holds; costs are
 * added exactly, as integer millionths of their currency, one sum per
 * currency.
 */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_ledger.h"
#include "fg_hash.h"
#include "fg_jcs.h"
#include "fg_record.h"

/* The largest sum written: what JSON (and JCS) holds exactly. */
#define FG_REPORT_MAX  9007199254740991LL

#define FG_REPORT_LEDGERS_MAX  256

typedef enum {
    FG_REPORT_BY_LABEL = 0,
    FG_REPORT_BY_MODEL,
    FG_REPORT_BY_TENANT
} fg_report_by_t;

static const char  *fg_report_by_names[] = { "label", "model", "tenant" };

static const char  *fg_report_token_names[] = {
    "input_tokens", "output_tokens", "total_tokens"
};

/* The sums of one group (or of all: the total). */
typedef struct {
    json_t      *key;           /* a string, or null: no value */
    json_int_t   calls;
    json_int_t   tokens[3];     /* input, output, total: known values */
    json_int_t   no_usage;      /* calls whose usage is all null */
    json_int_t   unpriced;      /* calls whose cost is null */
    json_t      *cost;          /* currency -> integer micros */
    json_t      *sources;       /* price_source -> calls */
} fg_report_group_t;

typedef struct {
    fg_report_by_t      by;
    const char         *label;
    const char         *tenant;
    const char         *since;
    time_t              since_sec;
    long                since_nsec;
    int                 json;

    fg_report_group_t  *groups;
    size_t              ngroups, cgroups;
    json_t             *index;      /* key -> group index */
    long                none;       /* the null key's group, or -1 */
    fg_report_group_t   total;

    json_t             *ledgers;    /* [{tenant, seq, chain}] */
} fg_report_t;


static void
fg_report_help(void)
{
    printf("usage: foxgov report cost LEDGER... --by label|model|tenant "
           "[--label KEY]\n"
           "                          [--since RFC3339] [--tenant T] "
           "[--json]\n"
           "\n"
           "Sums the tokens and the cost of the model calls "
           "(ModelCallRecords) of the\nledgers per group: the value of "
           "label KEY (--by label; calls without it\nare \"(none)\"), "
           "the model asked for, or the tenant.  Tokens and costs are\n"
           "the ones each record holds (cost: usage priced by the "
           "bundle's prices.json\nat the call); costs are added exactly, "
           "in millionths of their currency, one\nsum per currency.  "
           "--since counts the calls started at or after that time.\n"
           "Every ledger is verified as `foxgov verify` does; nothing is "
           "printed unless\nall of them verify.  --json prints one "
           "canonical JSON object.\n"
           "Exit status: 0 reported, 1 a ledger does not verify or a sum "
           "exceeds 2^53-1,\n2 usage.\n");
}


/* --------------------------------------------------------------- sums */

static int
fg_report_group_init(fg_report_group_t *g, const json_t *key)
{
    memset(g, 0, sizeof(*g));

    g->key = key ? json_deep_copy(key) : json_null();
    g->cost = json_object();
    g->sources = json_object();

    return (g->key && g->cost && g->sources) ? FG_OK : FG_ERR_NOMEM;
}


static void
fg_report_group_free(fg_report_group_t *g)
{
    json_decref(g->key);
    json_decref(g->cost);
    json_decref(g->sources);
}


/* *sum += v, refusing a sum JSON cannot hold exactly. */
static int
fg_report_add(json_int_t *sum, json_int_t v, fg_error_t *err)
{
    if (v < 0 || v > FG_REPORT_MAX - *sum) {
        return fg_error_set(err, FG_ERR_LIMIT, FG_NO_OFFSET,
                            "a sum exceeds 2^53-1 and cannot be written "
                            "exactly");
    }

    *sum += v;

    return FG_OK;
}


/* map[key] += v (a JSON integer member, created at 0). */
static int
fg_report_add_to(json_t *map, const char *key, json_int_t v,
    fg_error_t *err)
{
    json_t      *n;
    json_int_t   sum;

    n = json_object_get(map, key);
    if (n == NULL) {
        n = json_integer(0);
        if (n == NULL || json_object_set_new(map, key, n) != 0) {
            return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                                "out of memory");
        }
    }

    sum = json_integer_value(n);
    if (fg_report_add(&sum, v, err) != FG_OK) {
        return err->code;
    }

    json_integer_set(n, sum);

    return FG_OK;
}


/* Add one ModelCallRecord (schema-valid) to g. */
static int
fg_report_count(fg_report_group_t *g, const json_t *rec, fg_error_t *err)
{
    const json_t  *usage, *cost, *v;
    int            i, known = 0;

    if (fg_report_add(&g->calls, 1, err) != FG_OK) {
        return err->code;
    }

    usage = json_object_get(rec, "usage");
    for (i = 0; i < 3; i++) {
        v = json_object_get(usage, fg_report_token_names[i]);
        if (json_is_integer(v)) {
            known = 1;
            if (fg_report_add(&g->tokens[i], json_integer_value(v), err)
                != FG_OK)
            {
                return err->code;
            }
        }
    }

    if (!known && fg_report_add(&g->no_usage, 1, err) != FG_OK) {
        return err->code;
    }

    cost = json_object_get(rec, "cost");
    if (!json_is_object(cost)) {
        return fg_report_add(&g->unpriced, 1, err);
    }

    v = json_object_get(cost, "amount_micros");
    if (!json_is_integer(v)
        || !json_is_string(json_object_get(cost, "currency"))
        || !json_is_string(json_object_get(cost, "price_source")))
    {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the record's cost is not readable");
    }

    if (fg_report_add_to(g->cost,
            json_string_value(json_object_get(cost, "currency")),
            json_integer_value(v), err) != FG_OK
        || fg_report_add_to(g->sources,
            json_string_value(json_object_get(cost, "price_source")),
            1, err) != FG_OK)
    {
        return err->code;
    }

    return FG_OK;
}


/* ------------------------------------------------------------- groups */

/* The record's group key: a string member, or null when it has none. */
static const json_t *
fg_report_key(const fg_report_t *r, const json_t *rec)
{
    const json_t  *k;

    switch (r->by) {
    case FG_REPORT_BY_LABEL:
        k = json_object_get(json_object_get(rec, "labels"), r->label);
        break;
    case FG_REPORT_BY_MODEL:
        k = json_object_get(rec, "model");
        break;
    default:
        k = json_object_get(rec, "tenant_id");
        break;
    }

    return json_is_string(k) ? k : NULL;
}


/* The group of key (NULL: the "(none)" group), made when new. */
static fg_report_group_t *
fg_report_group(fg_report_t *r, const json_t *key)
{
    fg_report_group_t  *g;
    const json_t       *at;
    size_t              n;
    long                i;

    if (key == NULL) {
        i = r->none;
    } else {
        at = json_object_getn(r->index, json_string_value(key),
                              json_string_length(key));
        i = at ? (long) json_integer_value(at) : -1;
    }

    if (i >= 0) {
        return &r->groups[i];
    }

    if (r->ngroups == r->cgroups) {
        n = r->cgroups ? 2 * r->cgroups : 16;
        g = realloc(r->groups, n * sizeof(*g));
        if (g == NULL) {
            return NULL;
        }
        r->groups = g;
        r->cgroups = n;
    }

    i = (long) r->ngroups;
    g = &r->groups[i];

    if (fg_report_group_init(g, key) != FG_OK) {
        fg_report_group_free(g);
        return NULL;
    }
    r->ngroups++;

    if (key == NULL) {
        r->none = i;

    } else if (json_object_setn_new(r->index, json_string_value(key),
                                    json_string_length(key),
                                    json_integer(i)) != 0)
    {
        return NULL;
    }

    return g;
}


/* Count one ModelCallRecord, unless it started before --since. */
static int
fg_report_record(fg_report_t *r, const json_t *rec, fg_error_t *err)
{
    fg_report_group_t  *g;
    const char         *started;
    time_t              sec;
    long                nsec;

    if (r->since != NULL) {
        started = json_string_value(json_object_get(rec, "started_at"));
        if (started == NULL
            || !fg_time_parse(started, strlen(started), &sec, &nsec))
        {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "started_at is not a time");
        }
        if (sec < r->since_sec
            || (sec == r->since_sec && nsec < r->since_nsec))
        {
            return FG_OK;
        }
    }

    g = fg_report_group(r, fg_report_key(r, rec));
    if (g == NULL) {
        return fg_error_set(err, FG_ERR_NOMEM, FG_NO_OFFSET,
                            "out of memory");
    }

    if (fg_report_count(g, rec, err) != FG_OK
        || fg_report_count(&r->total, rec, err) != FG_OK)
    {
        return err->code;
    }

    return FG_OK;
}


/* ------------------------------------------------------------ reading */

/*
 * Read one ledger whole, counting its model calls.  Returns an exit
 * status; on failure the reason is printed (naming the seq).
 */
static int
fg_report_read(fg_report_t *r, const char *src)
{
    fg_cli_ledger_entry_t   e;
    fg_cli_ledger_t        *l;
    fg_error_t              err;
    const json_t           *other;
    const char             *tenant;
    unsigned char           chain[FG_SHA256_LEN];
    char                    hex[FG_SHA256_HEX_LEN + 1], *name;
    uint64_t                seq;
    size_t                  i;
    int                     got, rc;

    l = fg_cli_ledger_open(src, r->tenant, &err);
    if (l == NULL) {
        name = fg_cli_ledger_redact(src);
        fg_cli_error("report cost", "%s: %s", name != NULL ? name : "LEDGER",
                     err.msg);
        free(name);
        return FG_EXIT_USAGE;
    }

    while ((got = fg_cli_ledger_next(l, &e, &err)) == 1) {
        if (e.type == FG_RECORD_MODEL_CALL
            && fg_report_record(r, e.value, &err) != FG_OK)
        {
            got = -1;
            break;
        }
    }

    if (got < 0) {
        rc = fg_cli_ledger_stopped("report cost", l, &err);
        fg_cli_ledger_close(l);
        return rc;
    }

    seq = fg_cli_ledger_head(l, chain);
    tenant = fg_cli_ledger_tenant(l);
    fg_hex_sha256(chain, hex);

    if (seq == 0 || tenant == NULL) {
        fg_cli_error("report cost", "%s: the ledger is empty",
                     fg_cli_ledger_name(l));
        fg_cli_ledger_close(l);
        return FG_EXIT_REFUSED;
    }

    /* the same tenant's ledger twice would count its calls twice */
    json_array_foreach(r->ledgers, i, other) {
        if (strcmp(json_string_value(json_object_get(other, "tenant")),
                   tenant) == 0)
        {
            fg_cli_error("report cost", "%s: a ledger of tenant %s was "
                         "given already", fg_cli_ledger_name(l), tenant);
            fg_cli_ledger_close(l);
            return FG_EXIT_USAGE;
        }
    }

    if (json_array_append_new(r->ledgers,
            json_pack("{s:s, s:I, s:s}", "tenant", tenant,
                      "seq", (json_int_t) seq, "chain", hex)) != 0)
    {
        fg_cli_error("report cost", "out of memory");
        fg_cli_ledger_close(l);
        return FG_EXIT_USAGE;
    }

    fg_cli_ledger_close(l);

    return FG_EXIT_OK;
}


/* ------------------------------------------------------------- output */

/* micros as "<units>.<6 digits>", exactly */
static void
fg_report_amount(json_int_t micros, char *buf, size_t size)
{
    snprintf(buf, size, "%lld.%06lld", (long long) (micros / 1000000),
             (long long) (micros % 1000000));
}


/* The sums of g as JSON; with its key when with_key. */
static json_t *
fg_report_group_json(const fg_report_group_t *g, int with_key)
{
    const char  *cur;
    json_t      *o, *cost, *v;
    char         amount[32];

    cost = json_object();
    if (cost == NULL) {
        return NULL;
    }

    json_object_foreach(g->cost, cur, v) {
        fg_report_amount(json_integer_value(v), amount, sizeof(amount));
        if (json_object_set_new(cost, cur,
                json_pack("{s:s, s:O}", "amount", amount,
                          "amount_micros", v)) != 0)
        {
            json_decref(cost);
            return NULL;
        }
    }

    o = json_pack("{s:I, s:I, s:I, s:o, s:O, s:{s:I, s:I, s:I}}",
                  "calls", g->calls,
                  "calls_unpriced", g->unpriced,
                  "calls_without_usage", g->no_usage,
                  "cost", cost,
                  "price_sources", g->sources,
                  "tokens",
                  "input", g->tokens[0],
                  "output", g->tokens[1],
                  "total", g->tokens[2]);

    if (o != NULL && with_key
        && json_object_set(o, "key", g->key) != 0)
    {
        json_decref(o);
        return NULL;
    }

    return o;
}


/* groups by key, byte order; the null key ("(none)") last */
static int
fg_report_group_cmp(const void *a, const void *b)
{
    const fg_report_group_t  *x = a, *y = b;

    if (json_is_null(x->key) || json_is_null(y->key)) {
        return json_is_null(x->key) - json_is_null(y->key);
    }

    return strcmp(json_string_value(x->key), json_string_value(y->key));
}


static json_t *
fg_report_result(const fg_report_t *r)
{
    json_t  *res, *groups;
    size_t   i;

    groups = json_array();
    for (i = 0; groups != NULL && i < r->ngroups; i++) {
        if (json_array_append_new(groups,
                fg_report_group_json(&r->groups[i], 1)) != 0)
        {
            json_decref(groups);
            groups = NULL;
        }
    }

    res = json_pack("{s:s, s:s?, s:o, s:O, s:s?, s:o}",
                    "by", fg_report_by_names[r->by],
                    "label", r->label,
                    "groups", groups,
                    "ledgers", r->ledgers,
                    "since", r->since,
                    "total", fg_report_group_json(&r->total, 0));

    return res;
}


static int
fg_report_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


/*
 * The keys of map in byte order, as a malloc'd array (free it); NULL for
 * an empty map or when out of memory.
 */
static const char **
fg_report_sorted_keys(const json_t *map, size_t *n)
{
    const char  **keys, *k;
    json_t       *v;

    *n = 0;
    keys = malloc((json_object_size(map) + 1) * sizeof(*keys));
    if (keys == NULL) {
        return NULL;
    }

    json_object_foreach((json_t *) map, k, v) {
        keys[(*n)++] = k;
    }
    qsort(keys, *n, sizeof(*keys), fg_report_strcmp);

    return keys;
}


/* "EUR 0.000100 + USD 0.004955" (currencies in order), or "-" */
static void
fg_report_print_cost(const fg_report_group_t *g)
{
    const char  **cur;
    char          amount[32];
    size_t        i, n;

    cur = fg_report_sorted_keys(g->cost, &n);

    for (i = 0; i < n; i++) {
        fg_report_amount(json_integer_value(json_object_get(g->cost,
                                                            cur[i])),
                         amount, sizeof(amount));
        printf("%s%s %s", i ? " + " : "", cur[i], amount);
    }

    if (n == 0) {
        printf("-");
    }

    free(cur);
}


static void
fg_report_print_row(const char *key, size_t width,
    const fg_report_group_t *g)
{
    size_t  n;

    for (n = fg_cli_print_safe(key, stdout); n < width; n++) {
        putchar(' ');
    }

    printf(" %8lld %14lld %14lld %14lld  ",
           (long long) g->calls, (long long) g->tokens[0],
           (long long) g->tokens[1], (long long) g->tokens[2]);
    fg_report_print_cost(g);
    printf("\n");
}


static void
fg_report_print_text(const fg_report_t *r)
{
    const fg_report_group_t  *g;
    const json_t             *l;
    const char               *key, *head, **src;
    size_t                    i, n, width;

    json_array_foreach(r->ledgers, i, l) {
        printf("ledger: tenant %s, seq 1..%lld, chain %s\n",
               json_string_value(json_object_get(l, "tenant")),
               (long long) json_integer_value(json_object_get(l, "seq")),
               json_string_value(json_object_get(l, "chain")));
    }

    head = (r->by == FG_REPORT_BY_LABEL) ? r->label
                                         : fg_report_by_names[r->by];
    printf("model calls by %s%s%s%s\n\n",
           r->by == FG_REPORT_BY_LABEL ? "label " : "", head,
           r->since ? ", started at or after " : "",
           r->since ? r->since : "");

    width = strlen(head);
    width = width < 6 ? 6 : width;
    for (i = 0; i < r->ngroups; i++) {
        g = &r->groups[i];
        n = json_is_null(g->key) ? 6
                                 : fg_cli_print_safe(json_string_value(g->key),
                                                  NULL);
        width = n > width ? n : width;
    }

    printf("%-*s %8s %14s %14s %14s  %s\n", (int) width, head, "calls",
           "input_tokens", "output_tokens", "total_tokens", "cost");

    for (i = 0; i < r->ngroups; i++) {
        g = &r->groups[i];
        key = json_is_null(g->key) ? "(none)" : json_string_value(g->key);
        fg_report_print_row(key, width, g);
    }
    fg_report_print_row("total", width, &r->total);

    src = fg_report_sorted_keys(r->total.sources, &n);
    for (i = 0; i < n; i++) {
        printf("%s %s (%lld calls)", i ? "," : "\npriced from:", src[i],
               (long long) json_integer_value(
                   json_object_get(r->total.sources, src[i])));
    }
    printf("%s", n ? "\n" : "");
    free(src);

    printf("calls without usage: %lld, calls unpriced: %lld\n",
           (long long) r->total.no_usage, (long long) r->total.unpriced);
}


static int
fg_report_print(fg_report_t *r)
{
    unsigned char   stage[FG_SINK_STAGE];
    fg_buffer_t     b;
    fg_sink_t       sink;
    fg_error_t      err;
    json_t         *res;
    int             rc = FG_EXIT_USAGE;

    qsort(r->groups, r->ngroups, sizeof(*r->groups), fg_report_group_cmp);

    if (!r->json) {
        fg_report_print_text(r);
        return FG_EXIT_OK;
    }

    res = fg_report_result(r);
    if (res == NULL) {
        fg_cli_error("report cost", "out of memory");
        return FG_EXIT_USAGE;
    }

    fg_buffer_init(&b, 0);
    fg_sink_to_buffer(&sink, &b, stage, sizeof(stage));

    if (fg_jcs_canonicalize_json(res, 0, &sink, &err) == FG_OK) {
        printf("%.*s\n", (int) b.len, (char *) b.data);
        rc = FG_EXIT_OK;
    } else {
        fg_cli_error("report cost", "%s", err.msg);
    }

    fg_buffer_free(&b);
    json_decref(res);

    return rc;
}


/* ---------------------------------------------------------- the command */

/*
 * Parse the arguments of `report cost` (argv[0] is "cost").  Returns -1
 * (usage, printed), 0, or 1 for --help (printed); the ledgers are
 * argv[*first..argc).
 */
static int
fg_report_args(int argc, char **argv, fg_report_t *r, int *first)
{
    static const struct option  opts[] = {
        { "by",     required_argument, NULL, 'b' },
        { "label",  required_argument, NULL, 'l' },
        { "since",  required_argument, NULL, 's' },
        { "tenant", required_argument, NULL, 't' },
        { "json",   no_argument,       NULL, 'j' },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char  *by = NULL;
    int          c, k;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': by = optarg;        break;
        case 'l': r->label = optarg;  break;
        case 's': r->since = optarg;  break;
        case 't': r->tenant = optarg; break;
        case 'j': r->json = 1;        break;
        case 'h':
            fg_report_help();
            return 1;
        default:
            return -1;
        }
    }

    for (k = 0; by != NULL && k < 3; k++) {
        if (strcmp(by, fg_report_by_names[k]) == 0) {
            break;
        }
    }

    if (by == NULL || k == 3 || optind == argc) {
        fg_cli_error("report cost", "expected LEDGER... --by label|model|"
                     "tenant (try foxgov report cost --help)");
        return -1;
    }
    r->by = (fg_report_by_t) k;
    *first = optind;

    if (argc - optind > FG_REPORT_LEDGERS_MAX) {
        fg_cli_error("report cost", "at most %d ledgers",
                     FG_REPORT_LEDGERS_MAX);
        return -1;
    }

    if ((r->by == FG_REPORT_BY_LABEL) != (r->label != NULL)) {
        fg_cli_error("report cost", "--label KEY goes with --by label, "
                     "and only with it");
        return -1;
    }

    if (r->label != NULL
        && (strlen(r->label) < 1 || strlen(r->label) > 64
            || strspn(r->label, "abcdefghijklmnopqrstuvwxyz0123456789_.-")
               != strlen(r->label)))
    {
        fg_cli_error("report cost", "--label \"%s\" is not a label key "
                     "(1-64 of a-z 0-9 _ . -)", r->label);
        return -1;
    }

    if (r->tenant != NULL
        && !fg_tenant_id_valid(r->tenant, strlen(r->tenant)))
    {
        fg_cli_error("report cost", "--tenant \"%s\" is not a tenant id",
                     r->tenant);
        return -1;
    }

    if (r->since != NULL
        && !fg_time_parse(r->since, strlen(r->since), &r->since_sec,
                          &r->since_nsec))
    {
        fg_cli_error("report cost", "--since \"%s\": expected RFC 3339 UTC, "
                     "e.g. 2026-11-22T10:00:00Z", r->since);
        return -1;
    }

    return 0;
}


static void
fg_report_free(fg_report_t *r)
{
    size_t  i;

    for (i = 0; i < r->ngroups; i++) {
        fg_report_group_free(&r->groups[i]);
    }
    free(r->groups);
    fg_report_group_free(&r->total);
    json_decref(r->index);
    json_decref(r->ledgers);
}


static int
fg_report_cost(int argc, char **argv)
{
    fg_report_t  r;
    int          i, first = 0, rc;

    memset(&r, 0, sizeof(r));
    r.none = -1;

    rc = fg_report_args(argc, argv, &r, &first);
    if (rc != 0) {
        return rc > 0 ? FG_EXIT_OK : FG_EXIT_USAGE;
    }

    r.index = json_object();
    r.ledgers = json_array();
    if (fg_report_group_init(&r.total, NULL) != FG_OK || r.index == NULL
        || r.ledgers == NULL)
    {
        fg_cli_error("report cost", "out of memory");
        fg_report_free(&r);
        return FG_EXIT_USAGE;
    }

    rc = FG_EXIT_OK;
    for (i = first; rc == FG_EXIT_OK && i < argc; i++) {
        rc = fg_report_read(&r, argv[i]);
    }

    if (rc == FG_EXIT_OK) {
        rc = fg_report_print(&r);
    }

    fg_report_free(&r);

    return rc;
}


int
fg_cmd_report(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "cost") == 0) {
        return fg_report_cost(argc - 1, argv + 1);
    }

    if (argc < 2) {
        fg_cli_error("report", "expected cost (try foxgov report --help)");
        return FG_EXIT_USAGE;
    }

    if (fg_cli_wants_help(argc, argv)) {
        printf("usage: foxgov report cost LEDGER... --by label|model|tenant "
               "[--label KEY]\n"
               "                          [--since RFC3339] [--tenant T] "
               "[--json]\n"
               "`foxgov report cost --help` describes it.\n");
        return FG_EXIT_OK;
    }

    fg_cli_error("report", "unknown report \"%s\" (cost)", argv[1]);

    return FG_EXIT_USAGE;
}

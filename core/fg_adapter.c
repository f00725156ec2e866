/*
 * fg_adapter.c -- model call adapters: the endpoint, model and stream
 * flag of a model request, and the token usage of a JSON response.  See
 * fg_adapter.h for the paths known and the usage rules.
 */

#include <string.h>

#include "fg_adapter.h"
#include "fg_json_scan.h"

static const char  *fg_provider_names[FG_PROVIDERS] = {
    "openai", "azure_openai", "anthropic"
};

static const char  *fg_endpoint_names[FG_ENDPOINTS] = {
    "chat_completions", "responses", "embeddings", "messages"
};

/* a path tail and the endpoint it names */
typedef struct {
    const char     *tail;
    fg_endpoint_t   endpoint;
} fg_adapter_route_t;

static const fg_adapter_route_t  fg_openai_routes[] = {
    { "/chat/completions", FG_ENDPOINT_CHAT_COMPLETIONS },
    { "/responses",        FG_ENDPOINT_RESPONSES },
    { "/embeddings",       FG_ENDPOINT_EMBEDDINGS },
    { NULL,                0 }
};

static const fg_adapter_route_t  fg_anthropic_routes[] = {
    { "/messages",         FG_ENDPOINT_MESSAGES },
    { NULL,                0 }
};

#define FG_AZURE_DEPLOYMENTS  "/openai/deployments/"


const char *
fg_provider_name(fg_provider_t provider)
{
    if ((unsigned) provider >= FG_PROVIDERS) {
        return NULL;
    }

    return fg_provider_names[provider];
}


int
fg_provider_from_name(const char *name)
{
    int  i;

    for (i = 0; i < FG_PROVIDERS; i++) {
        if (strcmp(name, fg_provider_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


const char *
fg_endpoint_name(fg_endpoint_t endpoint)
{
    if ((unsigned) endpoint >= FG_ENDPOINTS) {
        return NULL;
    }

    return fg_endpoint_names[endpoint];
}


void
fg_usage_init(fg_usage_t *u)
{
    u->input_tokens = FG_USAGE_UNKNOWN;
    u->output_tokens = FG_USAGE_UNKNOWN;
    u->total_tokens = FG_USAGE_UNKNOWN;
    u->cache_creation_input_tokens = FG_USAGE_UNKNOWN;
    u->cache_read_input_tokens = FG_USAGE_UNKNOWN;
    u->response_model[0] = '\0';
}


void
fg_usage_complete(fg_usage_t *u)
{
    if (u->total_tokens == FG_USAGE_UNKNOWN
        && u->input_tokens != FG_USAGE_UNKNOWN
        && u->output_tokens != FG_USAGE_UNKNOWN
        && u->input_tokens + u->output_tokens <= FG_USAGE_MAX)
    {
        u->total_tokens = u->input_tokens + u->output_tokens;
    }
}


/* ------------------------------------------------------------- request */

/* 1 when s[0..n) is a model name: 1..FG_MODEL_MAX bytes of [!-~] */
static int
fg_adapter_model_valid(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > FG_MODEL_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < '!' || (unsigned char) s[i] > '~') {
            return 0;
        }
    }

    return 1;
}


/* match path[0..n) against routes; the endpoint, or -1 */
static int
fg_adapter_route(const fg_adapter_route_t *routes, const char *path,
    size_t n)
{
    size_t  len;

    for ( /* void */ ; routes->tail != NULL; routes++) {
        len = strlen(routes->tail);
        if (n == len && memcmp(path, routes->tail, len) == 0) {
            return routes->endpoint;
        }
    }

    return -1;
}


static int
fg_adapter_prefix(const char *path, size_t n, const char *prefix)
{
    size_t  len = strlen(prefix);

    return n >= len && memcmp(path, prefix, len) == 0;
}


/*
 * The endpoint of path[0..n) for provider, or -1.  For an Azure deployment
 * path, *dep and *dep_len point at the deployment name in path.
 */
static int
fg_adapter_endpoint(fg_provider_t provider, const char *path, size_t n,
    const char **dep, size_t *dep_len)
{
    const char  *slash;
    size_t       len;
    int          e;

    *dep = NULL;
    *dep_len = 0;

    switch (provider) {

    case FG_PROVIDER_OPENAI:
        if (fg_adapter_prefix(path, n, "/v1/")) {
            path += 3;
            n -= 3;
        }
        return fg_adapter_route(fg_openai_routes, path, n);

    case FG_PROVIDER_AZURE_OPENAI:
        if (fg_adapter_prefix(path, n, "/openai/v1/")) {
            return fg_adapter_route(fg_openai_routes, path + 10, n - 10);
        }

        if (n == sizeof("/openai/responses") - 1
            && memcmp(path, "/openai/responses", n) == 0)
        {
            return FG_ENDPOINT_RESPONSES;
        }

        len = sizeof(FG_AZURE_DEPLOYMENTS) - 1;
        if (!fg_adapter_prefix(path, n, FG_AZURE_DEPLOYMENTS)) {
            return -1;
        }

        path += len;
        n -= len;

        slash = memchr(path, '/', n);
        if (slash == NULL || slash == path) {
            return -1;
        }

        e = fg_adapter_route(fg_openai_routes, slash,
                             n - (size_t) (slash - path));
        if (e < 0) {
            return -1;
        }

        *dep = path;
        *dep_len = (size_t) (slash - path);
        return e;

    case FG_PROVIDER_ANTHROPIC:
        if (fg_adapter_prefix(path, n, "/v1/")) {
            path += 3;
            n -= 3;
        }
        return fg_adapter_route(fg_anthropic_routes, path, n);

    default:
        return -1;
    }
}


int
fg_adapter_endpoint_of(fg_provider_t provider, const char *path,
    size_t path_len)
{
    const char  *dep, *q;
    size_t       dep_len;

    if ((unsigned) provider >= FG_PROVIDERS || path == NULL) {
        return -1;
    }

    q = memchr(path, '?', path_len);
    if (q != NULL) {
        path_len = (size_t) (q - path);
    }

    return fg_adapter_endpoint(provider, path, path_len, &dep, &dep_len);
}


int
fg_adapter_model_request(fg_provider_t provider, const char *path,
    size_t path_len, const json_t *body, fg_model_request_t *out,
    fg_error_t *err)
{
    const json_t  *model, *stream, *opts, *inc;
    const char    *dep, *q, *s;
    size_t         dep_len, n;
    int            e;

    memset(out, 0, sizeof(fg_model_request_t));

    if ((unsigned) provider >= FG_PROVIDERS) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "unknown model provider %d", (int) provider);
    }

    if (path == NULL) {
        path = "";
        path_len = 0;
    }

    q = memchr(path, '?', path_len);
    if (q != NULL) {
        path_len = (size_t) (q - path);
    }

    e = fg_adapter_endpoint(provider, path, path_len, &dep, &dep_len);
    if (e < 0) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the path is not a %s endpoint the gateway "
                            "knows", fg_provider_names[provider]);
    }

    if (dep != NULL && !fg_adapter_model_valid(dep, dep_len)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the deployment name in the path is not 1..%d "
                            "printable characters", FG_MODEL_MAX);
    }

    out->provider = provider;
    out->endpoint = (fg_endpoint_t) e;
    out->endpoint_name = fg_endpoint_names[e];

    if (!json_is_object(body)) {
        return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                            "the request body is not a JSON object");
    }

    model = json_object_get(body, "model");

    if (model == NULL || json_is_null(model)) {
        if (dep == NULL) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "the request names no \"model\"");
        }

    } else {
        if (!json_is_string(model)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "\"model\" is not a string");
        }

        s = json_string_value(model);
        n = json_string_length(model);

        if (!fg_adapter_model_valid(s, n)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "\"model\" is not 1..%d printable "
                                "characters without spaces", FG_MODEL_MAX);
        }

        memcpy(out->model, s, n);
        out->model[n] = '\0';
    }

    if (dep != NULL) {
        /*
         * Azure runs the deployment the path names, whatever the body's
         * "model" says: the deployment is what is checked and decided.
         */
        memcpy(out->model, dep, dep_len);
        out->model[dep_len] = '\0';
        out->model_from_path = 1;
    }

    stream = json_object_get(body, "stream");

    if (stream != NULL && !json_is_null(stream)) {
        if (!json_is_boolean(stream)) {
            return fg_error_set(err, FG_ERR_INVALID, FG_NO_OFFSET,
                                "\"stream\" is not a boolean");
        }
        out->stream = json_is_true(stream);
    }

    if (out->stream && out->endpoint == FG_ENDPOINT_CHAT_COMPLETIONS) {
        opts = json_object_get(body, "stream_options");
        inc = json_is_object(opts) ? json_object_get(opts, "include_usage")
                                   : NULL;
        out->include_usage = json_is_true(inc);
    }

    return FG_OK;
}


/* --------------------------------------------------------------- usage */

/* the count in usage[name] when it is an integer 0..2^53-1, else -1 */
static int64_t
fg_adapter_count(const json_t *usage, const char *name)
{
    const json_t  *v;
    json_int_t     n;

    v = json_object_get(usage, name);
    if (!json_is_integer(v)) {
        return FG_USAGE_UNKNOWN;
    }

    n = json_integer_value(v);
    if (n < 0 || n > FG_USAGE_MAX) {
        return FG_USAGE_UNKNOWN;
    }

    return (int64_t) n;
}


static void
fg_adapter_merge_count(const json_t *usage, const char *name, int64_t *to)
{
    int64_t  n = fg_adapter_count(usage, name);

    if (n != FG_USAGE_UNKNOWN) {
        *to = n;
    }
}


void
fg_adapter_usage_merge(fg_provider_t provider, fg_endpoint_t endpoint,
    const json_t *usage, fg_usage_t *u)
{
    if (!json_is_object(usage)) {
        return;
    }

    if (provider == FG_PROVIDER_ANTHROPIC
        || endpoint == FG_ENDPOINT_MESSAGES)
    {
        fg_adapter_merge_count(usage, "input_tokens", &u->input_tokens);
        fg_adapter_merge_count(usage, "output_tokens", &u->output_tokens);
        fg_adapter_merge_count(usage, "cache_creation_input_tokens",
                               &u->cache_creation_input_tokens);
        fg_adapter_merge_count(usage, "cache_read_input_tokens",
                               &u->cache_read_input_tokens);
        return;
    }

    switch (endpoint) {

    case FG_ENDPOINT_CHAT_COMPLETIONS:
        fg_adapter_merge_count(usage, "prompt_tokens", &u->input_tokens);
        fg_adapter_merge_count(usage, "completion_tokens",
                               &u->output_tokens);
        fg_adapter_merge_count(usage, "total_tokens", &u->total_tokens);
        break;

    case FG_ENDPOINT_RESPONSES:
        fg_adapter_merge_count(usage, "input_tokens", &u->input_tokens);
        fg_adapter_merge_count(usage, "output_tokens", &u->output_tokens);
        fg_adapter_merge_count(usage, "total_tokens", &u->total_tokens);
        break;

    case FG_ENDPOINT_EMBEDDINGS:
        fg_adapter_merge_count(usage, "prompt_tokens", &u->input_tokens);
        fg_adapter_merge_count(usage, "total_tokens", &u->total_tokens);
        break;

    default:
        break;
    }
}


int
fg_adapter_response_model(const json_t *model, fg_usage_t *u)
{
    size_t  n;

    if (u->response_model[0] != '\0' || !json_is_string(model)) {
        return 0;
    }

    n = json_string_length(model);
    if (!fg_adapter_model_valid(json_string_value(model), n)) {
        return 0;
    }

    memcpy(u->response_model, json_string_value(model), n);
    u->response_model[n] = '\0';

    return 1;
}


int
fg_adapter_usage_json(fg_provider_t provider, fg_endpoint_t endpoint,
    const json_t *resp, fg_usage_t *u)
{
    fg_usage_init(u);

    if ((unsigned) provider >= FG_PROVIDERS
        || (unsigned) endpoint >= FG_ENDPOINTS)
    {
        return FG_ERR_INVALID;
    }

    if (!json_is_object(resp)) {
        return FG_OK;
    }

    fg_adapter_response_model(json_object_get(resp, "model"), u);
    fg_adapter_usage_merge(provider, endpoint,
                           json_object_get(resp, "usage"), u);
    fg_usage_complete(u);

    return FG_OK;
}


/* The value at span of text as a jansson value, or NULL. */
static json_t *
fg_adapter_span(const char *text, const fg_json_span_t *span)
{
    json_error_t  jerr;

    if (!span->found) {
        return NULL;
    }

    return json_loadb(text + span->off, span->len,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
}


int
fg_adapter_usage_text(fg_provider_t provider, fg_endpoint_t endpoint,
    const char *text, size_t len, fg_usage_t *u)
{
    json_t             *model, *usage;
    fg_json_span_t      spans[2];
    static const char  *keys[2] = { "model", "usage" };

    fg_usage_init(u);

    if ((unsigned) provider >= FG_PROVIDERS
        || (unsigned) endpoint >= FG_ENDPOINTS)
    {
        return FG_ERR_INVALID;
    }

    if (fg_json_members(text, len, keys, 2, spans) != FG_JSON_FOUND) {
        return FG_ERR_SYNTAX;
    }

    model = fg_adapter_span(text, &spans[0]);
    usage = fg_adapter_span(text, &spans[1]);

    fg_adapter_response_model(model, u);
    fg_adapter_usage_merge(provider, endpoint, usage, u);
    fg_usage_complete(u);

    json_decref(model);
    json_decref(usage);

    return FG_OK;
}

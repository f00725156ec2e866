/*
 * fg_adapter.h -- model call adapters (DESIGN.md "Calls and adapters"):
 * what a model request asks for (provider, endpoint, model, stream) read
 * from its path and JSON body, and the token usage a complete JSON
 * response reports.  Streamed (SSE) responses are read by fg_sse.h.
 *
 * Paths the adapters know (the query string, if any, is ignored):
 *
 *   openai        /v1/chat/completions  /v1/responses  /v1/embeddings
 *                 and the same without "/v1" (a location that strips it)
 *   azure_openai  /openai/deployments/<deployment>/chat/completions
 *                 /openai/deployments/<deployment>/embeddings
 *                 /openai/deployments/<deployment>/responses
 *                 /openai/responses  /openai/v1/responses
 *                 /openai/v1/chat/completions  /openai/v1/embeddings
 *   anthropic     /v1/messages  /messages
 *
 * Any other path is refused: a trailing slash, a longer path (such as
 * /v1/messages/count_tokens) or an empty deployment name included.
 *
 * Usage follows the ModelCallRecord schema: each count is what the
 * provider reported, FG_USAGE_UNKNOWN (null in the record) when it did not
 * say; it is never guessed.  The total is the provider's own total, or the
 * sum of input and output when the provider reports no total but both of
 * those.  Anthropic's input_tokens is taken as Anthropic reports it: the
 * cache_creation_input_tokens and cache_read_input_tokens are NOT added to
 * it (the schema says "Anthropic input_tokens"); they are kept apart in
 * fg_usage_t so a price list can charge them at their own rates.
 */

#ifndef FG_ADAPTER_H
#define FG_ADAPTER_H

#include <stdint.h>

#include <jansson.h>

#include "fg_core.h"

typedef enum {
    FG_PROVIDER_OPENAI = 0,
    FG_PROVIDER_AZURE_OPENAI,
    FG_PROVIDER_ANTHROPIC,
    FG_PROVIDERS
} fg_provider_t;

typedef enum {
    FG_ENDPOINT_CHAT_COMPLETIONS = 0,
    FG_ENDPOINT_RESPONSES,
    FG_ENDPOINT_EMBEDDINGS,
    FG_ENDPOINT_MESSAGES,
    FG_ENDPOINTS
} fg_endpoint_t;

/* A model name: 1..FG_MODEL_MAX printable ASCII bytes without spaces. */
#define FG_MODEL_MAX      256

/* A token count the provider did not report. */
#define FG_USAGE_UNKNOWN  ((int64_t) -1)

/* The largest count a record holds: 2^53 - 1. */
#define FG_USAGE_MAX      ((int64_t) 9007199254740991LL)

/* What a model request asks for. */
typedef struct {
    fg_provider_t   provider;
    fg_endpoint_t   endpoint;
    const char     *endpoint_name;      /* as the schema spells it */
    char            model[FG_MODEL_MAX + 1];
    int             model_from_path;    /* Azure: the deployment name */
    int             stream;             /* "stream": true */
    int             include_usage;      /* stream_options.include_usage */
} fg_model_request_t;

/* Token usage and the model that answered ("" when it did not say). */
typedef struct {
    int64_t  input_tokens;
    int64_t  output_tokens;
    int64_t  total_tokens;
    int64_t  cache_creation_input_tokens;   /* Anthropic only */
    int64_t  cache_read_input_tokens;       /* Anthropic only */
    char     response_model[FG_MODEL_MAX + 1];
} fg_usage_t;

/* "openai", "azure_openai", "anthropic"; NULL for an unknown value. */
const char *fg_provider_name(fg_provider_t provider);

/* The provider named name (NUL-terminated), or -1. */
int fg_provider_from_name(const char *name);

/* "chat_completions", "responses", "embeddings", "messages"; or NULL. */
const char *fg_endpoint_name(fg_endpoint_t endpoint);

/* Every count unknown, no response model. */
void fg_usage_init(fg_usage_t *u);

/*
 * Fill total_tokens with input + output when the provider reported no
 * total but both of those.  Called by the functions below; exposed for
 * callers that assemble usage themselves.
 */
void fg_usage_complete(fg_usage_t *u);

/*
 * The endpoint path[0..path_len) addresses for provider (a query string
 * is ignored), or -1 when the adapter does not know the path: what the
 * gateway checks before it reads the body, since a call to an unknown
 * endpoint is refused before any record.
 */
int fg_adapter_endpoint_of(fg_provider_t provider, const char *path,
    size_t path_len);

/*
 * Read a model request: the endpoint from path[path_len] (see the table
 * above), then from the JSON body "model" (a string, 1..256 printable
 * bytes; required except on Azure deployment paths, where the deployment
 * names the model when the body does not) and "stream" (a boolean; absent
 * or null means false).  For a streamed chat completion, include_usage is
 * set when stream_options.include_usage is true: only then does an OpenAI
 * stream carry usage.
 *
 * Returns FG_OK with out filled, or FG_ERR_INVALID with err saying why:
 * an unknown provider or endpoint, a body that is not an object, a model
 * missing or not a valid name, stream not a boolean.
 */
int fg_adapter_model_request(fg_provider_t provider, const char *path,
    size_t path_len, const json_t *body, fg_model_request_t *out,
    fg_error_t *err);

/*
 * Read the usage of a complete JSON response into u:
 *
 *   chat_completions  usage.prompt_tokens / completion_tokens / total_tokens
 *   responses         usage.input_tokens / output_tokens / total_tokens
 *   embeddings        usage.prompt_tokens / total_tokens (output unknown)
 *   messages          usage.input_tokens / output_tokens, and
 *                     usage.cache_creation_input_tokens /
 *                     cache_read_input_tokens; total = input + output
 *
 * and response_model from the response's "model".  A count that is absent
 * or not an integer 0..2^53-1 stays unknown.  Returns FG_OK, or
 * FG_ERR_INVALID for an unknown provider/endpoint (u is then all unknown).
 * An error response or a response without usage is not an error.
 */
int fg_adapter_usage_json(fg_provider_t provider, fg_endpoint_t endpoint,
    const json_t *resp, fg_usage_t *u);

/*
 * fg_adapter_usage_json() for the response text[0..len) as it came: its
 * top-level "model" and "usage" are found with fg_json_members() and only
 * they are parsed, so the rest of the response is never built into a
 * document.  Text that is not one JSON object, or has either member
 * twice, leaves u all unknown and returns FG_ERR_SYNTAX; otherwise the
 * return values are fg_adapter_usage_json()'s.
 */
int fg_adapter_usage_text(fg_provider_t provider, fg_endpoint_t endpoint,
    const char *text, size_t len, fg_usage_t *u);

/*
 * Merge a provider "usage" object into u by the field names of endpoint
 * (as above): a valid count replaces the one in u, an absent or invalid
 * one leaves it as it was, so usage reported in parts (Anthropic's
 * message_start and message_delta) accumulates.  The SSE scanner uses it.
 * Does nothing when usage is not an object.
 */
void fg_adapter_usage_merge(fg_provider_t provider, fg_endpoint_t endpoint,
    const json_t *usage, fg_usage_t *u);

/*
 * Set u->response_model from model when it is a valid model name and u
 * has none yet.  Returns 1 when set, 0 otherwise.
 */
int fg_adapter_response_model(const json_t *model, fg_usage_t *u);

#endif /* FG_ADAPTER_H */

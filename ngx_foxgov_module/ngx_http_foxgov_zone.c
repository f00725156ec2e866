
/*
 * ngx_http_foxgov_zone.c -- the shared memory zone of foxgov_zone, in the
 * manner of ngx_http_limit_req_module: a red-black tree of entries in the
 * slab allocator under the zone's mutex, with an LRU queue.
 *
 * Two kinds of entry, both per tenant:
 *
 *   counters  requests and tokens of one THROTTLE rule in its current
 *             fixed window (aligned to the epoch, so every worker and
 *             every reload agrees on where a window starts);
 *   used ids  the jti of each approval that has been used, kept until
 *             the approval expires: an approval is good for one call.
 *
 * Only expired entries are ever evicted to make room: a used approval id
 * forgotten early would let the approval be replayed, so a zone that is
 * full of live entries refuses (the call fails closed) rather than forget.
 * The zone survives a reload (same name and size).
 */


#include "ngx_http_foxgov_common.h"


#define NGX_HTTP_FOXGOV_ZONE_COUNTER   'c'
#define NGX_HTTP_FOXGOV_ZONE_USED      'u'

#define NGX_HTTP_FOXGOV_ZONE_KEY_MAX   512

/* expired entries looked at from the LRU end when room is needed */
#define NGX_HTTP_FOXGOV_ZONE_SWEEP     64


typedef struct {
    u_char                       color;
    u_char                       kind;
    u_short                      len;
    ngx_queue_t                  queue;
    time_t                       expires;
    time_t                       window_start;
    int64_t                      requests;
    int64_t                      tokens;
    u_char                       data[1];
} ngx_http_foxgov_zone_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
    ngx_http_foxgov_metrics_t    metrics;
} ngx_http_foxgov_zone_sh_t;


typedef struct {
    ngx_http_foxgov_zone_sh_t   *sh;
    ngx_slab_pool_t             *shpool;
} ngx_http_foxgov_zone_ctx_t;


static ngx_int_t ngx_http_foxgov_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_foxgov_zone_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static size_t ngx_http_foxgov_zone_key(u_char *buf, u_char kind,
    ngx_str_t *tenant, ngx_str_t *id);
static ngx_http_foxgov_zone_node_t *ngx_http_foxgov_zone_lookup(
    ngx_http_foxgov_zone_ctx_t *ctx, u_char *key, size_t len,
    uint32_t hash);
static ngx_http_foxgov_zone_node_t *ngx_http_foxgov_zone_insert(
    ngx_http_foxgov_zone_ctx_t *ctx, u_char kind, u_char *key, size_t len,
    uint32_t hash, time_t now);
static void ngx_http_foxgov_zone_sweep(ngx_http_foxgov_zone_ctx_t *ctx,
    time_t now, ngx_uint_t n);
static ngx_int_t ngx_http_foxgov_zone_count(ngx_shm_zone_t *zone,
    ngx_str_t *tenant, ngx_str_t *rule, time_t window, time_t now,
    long long requests, long long tokens, long long *before_requests,
    long long *before_tokens);


ngx_shm_zone_t *
ngx_http_foxgov_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t              *zone;
    ngx_http_foxgov_zone_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_foxgov_zone_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_foxgov_module);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used by foxgov", name);
        return NULL;
    }

    zone->init = ngx_http_foxgov_zone_init;
    zone->data = ctx;

    return zone;
}


static ngx_int_t
ngx_http_foxgov_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_foxgov_zone_ctx_t  *octx = data;

    size_t                       len;
    ngx_http_foxgov_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the counters and used ids carry over */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_http_foxgov_zone_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_foxgov_zone_rbtree_insert);
    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in foxgov zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in foxgov zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is answered with 503 and one log line of our own */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * Add requests and tokens to the counters of (tenant, rule) in the
 * current window, writing what they held before to *before_requests and
 * *before_tokens (when not NULL).  NGX_ERROR when the zone is full.
 */
static ngx_int_t
ngx_http_foxgov_zone_count(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t now, long long requests,
    long long tokens, long long *before_requests, long long *before_tokens)
{
    u_char                        key[NGX_HTTP_FOXGOV_ZONE_KEY_MAX];
    size_t                        len;
    time_t                        start;
    uint32_t                      hash;
    ngx_http_foxgov_zone_ctx_t   *ctx = zone->data;
    ngx_http_foxgov_zone_node_t  *n;

    len = ngx_http_foxgov_zone_key(key, NGX_HTTP_FOXGOV_ZONE_COUNTER, tenant,
                                   rule);
    if (len == 0 || window <= 0) {
        return NGX_ERROR;
    }

    hash = ngx_crc32_short(key, len);
    start = now - now % window;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_foxgov_zone_lookup(ctx, key, len, hash);

    if (n == NULL) {
        n = ngx_http_foxgov_zone_insert(ctx, NGX_HTTP_FOXGOV_ZONE_COUNTER,
                                        key, len, hash, now);
        if (n == NULL) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return NGX_ERROR;
        }
    }

    if (n->window_start != start) {
        n->window_start = start;
        n->requests = 0;
        n->tokens = 0;
    }

    n->expires = start + window;

    if (before_requests != NULL) {
        *before_requests = n->requests;
        *before_tokens = n->tokens;
    }

    n->requests += requests;
    n->tokens += tokens;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_foxgov_zone_add_count(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t now, long long requests,
    long long tokens)
{
    return ngx_http_foxgov_zone_count(zone, tenant, rule, window, now,
                                      requests, tokens, NULL, NULL);
}


ngx_int_t
ngx_http_foxgov_zone_take(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t now, long long *requests,
    long long *tokens)
{
    /* what the decision reads is the count before this call */
    *requests = 0;
    *tokens = 0;

    return ngx_http_foxgov_zone_count(zone, tenant, rule, window, now, 1, 0,
                                      requests, tokens);
}


void
ngx_http_foxgov_zone_release(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *rule, time_t window, time_t taken)
{
    u_char                        key[NGX_HTTP_FOXGOV_ZONE_KEY_MAX];
    size_t                        len;
    uint32_t                      hash;
    ngx_http_foxgov_zone_ctx_t   *ctx = zone->data;
    ngx_http_foxgov_zone_node_t  *n;

    len = ngx_http_foxgov_zone_key(key, NGX_HTTP_FOXGOV_ZONE_COUNTER, tenant,
                                   rule);
    if (len == 0 || window <= 0) {
        return;
    }

    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_foxgov_zone_lookup(ctx, key, len, hash);

    /* a new window has started: the call was never in its count */
    if (n != NULL && n->window_start == taken - taken % window
        && n->requests > 0)
    {
        n->requests--;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_int_t
ngx_http_foxgov_zone_use_once(ngx_shm_zone_t *zone, ngx_str_t *tenant,
    ngx_str_t *jti, time_t expires, time_t now)
{
    u_char                        key[NGX_HTTP_FOXGOV_ZONE_KEY_MAX];
    size_t                        len;
    uint32_t                      hash;
    ngx_int_t                     rc;
    ngx_http_foxgov_zone_ctx_t   *ctx = zone->data;
    ngx_http_foxgov_zone_node_t  *n;

    len = ngx_http_foxgov_zone_key(key, NGX_HTTP_FOXGOV_ZONE_USED, tenant,
                                   jti);
    if (len == 0) {
        return NGX_ERROR;
    }

    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    n = ngx_http_foxgov_zone_lookup(ctx, key, len, hash);

    if (n != NULL) {
        rc = NGX_DECLINED;

    } else {
        n = ngx_http_foxgov_zone_insert(ctx, NGX_HTTP_FOXGOV_ZONE_USED, key,
                                        len, hash, now);
        if (n == NULL) {
            rc = NGX_ERROR;

        } else {
            /* kept at least a minute past expiry, for clock skew */
            n->expires = ngx_max(expires, now) + 60;
            rc = NGX_OK;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


/* kind, tenant, NUL, id; 0 when it does not fit */
static size_t
ngx_http_foxgov_zone_key(u_char *buf, u_char kind, ngx_str_t *tenant,
    ngx_str_t *id)
{
    size_t  len;

    len = 2 + tenant->len + id->len;
    if (len > NGX_HTTP_FOXGOV_ZONE_KEY_MAX || len > 0xffff) {
        return 0;
    }

    buf[0] = kind;
    ngx_memcpy(buf + 1, tenant->data, tenant->len);
    buf[1 + tenant->len] = '\0';
    ngx_memcpy(buf + 2 + tenant->len, id->data, id->len);

    return len;
}


static ngx_http_foxgov_zone_node_t *
ngx_http_foxgov_zone_lookup(ngx_http_foxgov_zone_ctx_t *ctx, u_char *key,
    size_t len, uint32_t hash)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_foxgov_zone_node_t  *n;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        n = (ngx_http_foxgov_zone_node_t *) &node->color;

        rc = ngx_memn2cmp(key, n->data, len, (size_t) n->len);

        if (rc == 0) {
            ngx_queue_remove(&n->queue);
            ngx_queue_insert_head(&ctx->sh->queue, &n->queue);
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_http_foxgov_zone_node_t *
ngx_http_foxgov_zone_insert(ngx_http_foxgov_zone_ctx_t *ctx, u_char kind,
    u_char *key, size_t len, uint32_t hash, time_t now)
{
    size_t                        size;
    ngx_rbtree_node_t            *node;
    ngx_http_foxgov_zone_node_t  *n;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_foxgov_zone_node_t, data)
           + len;

    /* room is made from expired entries only */
    ngx_http_foxgov_zone_sweep(ctx, now, 2);

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    if (node == NULL) {
        ngx_http_foxgov_zone_sweep(ctx, now, NGX_HTTP_FOXGOV_ZONE_SWEEP);

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node == NULL) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "foxgov: zone%s is full of live counters and "
                          "used approval ids; the call is refused",
                          ctx->shpool->log_ctx);
            return NULL;
        }
    }

    node->key = hash;

    n = (ngx_http_foxgov_zone_node_t *) &node->color;

    n->kind = kind;
    n->len = (u_short) len;
    n->expires = now;
    n->window_start = 0;
    n->requests = 0;
    n->tokens = 0;
    ngx_memcpy(n->data, key, len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &n->queue);

    return n;
}


/* Free up to n expired entries from the least recently used end. */
static void
ngx_http_foxgov_zone_sweep(ngx_http_foxgov_zone_ctx_t *ctx, time_t now,
    ngx_uint_t n)
{
    ngx_uint_t                    looked;
    ngx_queue_t                  *q, *prev;
    ngx_rbtree_node_t            *node;
    ngx_http_foxgov_zone_node_t  *zn;

    looked = 0;

    for (q = ngx_queue_last(&ctx->sh->queue);
         q != ngx_queue_sentinel(&ctx->sh->queue)
         && looked < NGX_HTTP_FOXGOV_ZONE_SWEEP && n > 0;
         q = prev)
    {
        prev = ngx_queue_prev(q);
        looked++;

        zn = ngx_queue_data(q, ngx_http_foxgov_zone_node_t, queue);

        if (zn->expires > now) {
            continue;
        }

        node = (ngx_rbtree_node_t *)
                   ((u_char *) zn - offsetof(ngx_rbtree_node_t, color));

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ctx->sh->rbtree, node);
        ngx_slab_free_locked(ctx->shpool, node);
        n--;
    }
}


static void
ngx_http_foxgov_zone_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_foxgov_zone_node_t   *n, *nt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            n = (ngx_http_foxgov_zone_node_t *) &node->color;
            nt = (ngx_http_foxgov_zone_node_t *) &temp->color;

            p = (ngx_memn2cmp(n->data, nt->data, n->len, nt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


ngx_http_foxgov_metrics_t *
ngx_http_foxgov_zone_metrics(ngx_shm_zone_t *zone)
{
    ngx_http_foxgov_zone_ctx_t  *ctx = zone->data;

    return ctx->sh != NULL ? &ctx->sh->metrics : NULL;
}


/*
 * ngx_http_foxgov_alloc.c -- the worker's allocator of jansson's small
 * blocks.
 *
 * A governed call makes and frees about 150 small jansson values (the
 * decision input, the caller's subject, the gates, the body's members the
 * bundle reads): more of one size than glibc's per-thread cache holds, so
 * they went through its fast bins, which it consolidates whenever a block
 * of 1 KiB or more is asked for -- about a tenth of the worker's
 * instructions (bench/gateway/README.md, "Profiling").
 *
 * In a worker, jansson's blocks of up to 512 bytes come instead from free
 * lists, one per 16-byte size class, carved in 64 KiB pages from one
 * region of address space reserved when the worker starts (the kernel
 * gives it memory only as pages are touched).  Larger blocks, blocks that
 * do not fit in the region any more, and every block allocated before
 * (the configuration's, in the master) stay with malloc and free: a block
 * is this allocator's if its address is inside the region.  A freed block
 * is kept for the next of its class, never given back to the system, as
 * glibc keeps its own.  One thread: nginx's worker.  Not used under
 * AddressSanitizer, so that it still sees every jansson block.
 */


#include "ngx_http_foxgov_common.h"


#if defined(__SANITIZE_ADDRESS__)
#define NGX_HTTP_FOXGOV_ALLOC_OFF  1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NGX_HTTP_FOXGOV_ALLOC_OFF  1
#endif
#endif


#define NGX_HTTP_FOXGOV_ALLOC_STEP    16
#define NGX_HTTP_FOXGOV_ALLOC_MAX     512
#define NGX_HTTP_FOXGOV_ALLOC_CLASSES (NGX_HTTP_FOXGOV_ALLOC_MAX             \
                                       / NGX_HTTP_FOXGOV_ALLOC_STEP)
#define NGX_HTTP_FOXGOV_ALLOC_PAGE    (64 * 1024)
#define NGX_HTTP_FOXGOV_ALLOC_REGION  (64 * 1024 * 1024)
#define NGX_HTTP_FOXGOV_ALLOC_PAGES   (NGX_HTTP_FOXGOV_ALLOC_REGION          \
                                       / NGX_HTTP_FOXGOV_ALLOC_PAGE)


typedef struct ngx_http_foxgov_block_s  ngx_http_foxgov_block_t;

struct ngx_http_foxgov_block_s {
    ngx_http_foxgov_block_t    *next;
};


static void *ngx_http_foxgov_alloc(size_t size);
static void ngx_http_foxgov_free(void *p);


static u_char                   *ngx_http_foxgov_region;
static u_char                   *ngx_http_foxgov_region_next;
static ngx_http_foxgov_block_t  *ngx_http_foxgov_free_blocks[
                                     NGX_HTTP_FOXGOV_ALLOC_CLASSES];
static u_char                   *ngx_http_foxgov_carve[
                                     NGX_HTTP_FOXGOV_ALLOC_CLASSES];
static u_char                   *ngx_http_foxgov_carve_end[
                                     NGX_HTTP_FOXGOV_ALLOC_CLASSES];
static u_char                    ngx_http_foxgov_page_class[
                                     NGX_HTTP_FOXGOV_ALLOC_PAGES];


/*
 * Reserve the region and give jansson the allocator: once, in a worker
 * (or a single process), from init_process.  Without the region (mmap
 * failed) jansson keeps malloc and free; nothing else changes.
 */
void
ngx_http_foxgov_alloc_init(ngx_log_t *log)
{
#ifndef NGX_HTTP_FOXGOV_ALLOC_OFF
    void  *p;

    if (ngx_http_foxgov_region != NULL) {
        return;
    }

    p = mmap(NULL, NGX_HTTP_FOXGOV_ALLOC_REGION, PROT_READ|PROT_WRITE,
             MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        ngx_log_error(NGX_LOG_NOTICE, log, ngx_errno,
                      "foxgov: mmap() of the allocator's region failed: "
                      "jansson keeps malloc");
        return;
    }

    ngx_http_foxgov_region = p;
    ngx_http_foxgov_region_next = p;

    json_set_alloc_funcs(ngx_http_foxgov_alloc, ngx_http_foxgov_free);
#endif
}


static void *
ngx_http_foxgov_alloc(size_t size)
{
    u_char                   *p;
    ngx_uint_t                c;
    ngx_http_foxgov_block_t  *b;

    if (size == 0) {
        size = 1;
    }

    if (size > NGX_HTTP_FOXGOV_ALLOC_MAX) {
        return malloc(size);
    }

    c = (size - 1) / NGX_HTTP_FOXGOV_ALLOC_STEP;

    b = ngx_http_foxgov_free_blocks[c];
    if (b != NULL) {
        ngx_http_foxgov_free_blocks[c] = b->next;
        return b;
    }

    size = (c + 1) * NGX_HTTP_FOXGOV_ALLOC_STEP;

    if ((size_t) (ngx_http_foxgov_carve_end[c] - ngx_http_foxgov_carve[c])
        < size)
    {
        /* a new page for this class, while the region lasts */
        if (ngx_http_foxgov_region_next
            == ngx_http_foxgov_region + NGX_HTTP_FOXGOV_ALLOC_REGION)
        {
            return malloc(size);
        }

        ngx_http_foxgov_page_class[(ngx_http_foxgov_region_next
                                    - ngx_http_foxgov_region)
                                   / NGX_HTTP_FOXGOV_ALLOC_PAGE] = (u_char) c;

        ngx_http_foxgov_carve[c] = ngx_http_foxgov_region_next;
        ngx_http_foxgov_carve_end[c] = ngx_http_foxgov_region_next
                                       + NGX_HTTP_FOXGOV_ALLOC_PAGE;
        ngx_http_foxgov_region_next += NGX_HTTP_FOXGOV_ALLOC_PAGE;
    }

    p = ngx_http_foxgov_carve[c];
    ngx_http_foxgov_carve[c] += size;

    return p;
}


static void
ngx_http_foxgov_free(void *p)
{
    u_char                   *u = p;
    ngx_uint_t                c;
    ngx_http_foxgov_block_t  *b;

    if (u < ngx_http_foxgov_region
        || u >= ngx_http_foxgov_region + NGX_HTTP_FOXGOV_ALLOC_REGION)
    {
        free(p);                /* NULL included */
        return;
    }

    c = ngx_http_foxgov_page_class[(u - ngx_http_foxgov_region)
                                   / NGX_HTTP_FOXGOV_ALLOC_PAGE];

    b = p;
    b->next = ngx_http_foxgov_free_blocks[c];
    ngx_http_foxgov_free_blocks[c] = b;
}

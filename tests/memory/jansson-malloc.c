/*
 * tests/memory/jansson-malloc.c -- preloaded (LD_PRELOAD) into the gateway
 * that tests/memory/memcheck runs under valgrind: json_set_alloc_funcs()
 * does nothing, so jansson keeps malloc and free and valgrind sees every
 * one of its blocks.  In a worker the module otherwise gives jansson its
 * own allocator (ngx_foxgov_module/ngx_http_foxgov_alloc.c), which carves
 * small blocks from an mmap()ed region valgrind does not track: a jansson
 * value never freed would not be reported.
 */

#include <stddef.h>

typedef void *(*json_malloc_t)(size_t);
typedef void (*json_free_t)(void *);

void json_set_alloc_funcs(json_malloc_t m, json_free_t f);


void
json_set_alloc_funcs(json_malloc_t m, json_free_t f)
{
    (void) m;
    (void) f;
}

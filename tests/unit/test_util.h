/*
 * test_util.h -- helpers the cmocka unit tests share.
 */

#ifndef FG_TEST_UTIL_H
#define FG_TEST_UTIL_H

#include <stdio.h>

#include "fg_core.h"

/* Read a whole file into b (NUL-terminated).  Returns 0 or -1. */
static inline int
test_read_file(const char *path, fg_buffer_t *b)
{
    unsigned char  chunk[8192];
    FILE          *f;
    size_t         n;

    fg_buffer_init(b, 0);

    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }

    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (fg_buffer_append(b, chunk, n) != FG_OK) {
            fclose(f);
            return -1;
        }
    }

    fclose(f);

    /* an empty file still gets a terminated buffer */
    if (b->data == NULL && fg_buffer_append(b, "", 0) != FG_OK) {
        return -1;
    }

    return 0;
}

#endif /* FG_TEST_UTIL_H */

/* fuzz.c - what the libFuzzer harnesses share (fuzz.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_general.h>

#include "fuzz.h"

static apr_pool_t *root;

apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *p = NULL;

    if (!root) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS) {
            fprintf(stderr, "fuzz: cannot initialize APR\n");
            abort();
        }
    }
    if (apr_pool_create(&p, root) != APR_SUCCESS) {
        fprintf(stderr, "fuzz: cannot create a pool\n");
        abort();
    }
    return p;
}

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n==FUZZ CHECK FAILED== %s:%d: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

int fuzz_tracing(void)
{
    static int on = -1;

    if (on < 0) {
        const char *v = getenv("FUZZ_TRACE");

        on = v && *v && *v != '0';
    }
    return on;
}

void fuzz_trace(const char *fmt, ...)
{
    va_list ap;

    if (!fuzz_tracing()) {
        return;
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void fuzz_reader_init(fuzz_reader_t *r, const uint8_t *data, size_t size)
{
    r->data = data;
    r->size = size;
    r->pos = 0;
}

int fuzz_reader_done(const fuzz_reader_t *r)
{
    return r->pos >= r->size;
}

unsigned fuzz_u8(fuzz_reader_t *r)
{
    return r->pos < r->size ? r->data[r->pos++] : 0;
}

unsigned fuzz_u16(fuzz_reader_t *r)
{
    unsigned hi = fuzz_u8(r);

    return (hi << 8) | fuzz_u8(r);
}

apr_uint32_t fuzz_u32(fuzz_reader_t *r)
{
    apr_uint32_t hi = fuzz_u16(r);

    return (hi << 16) | fuzz_u16(r);
}

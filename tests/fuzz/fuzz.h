/* fuzz.h - what the libFuzzer harnesses of tests/fuzz share.
 *
 * Each harness is one LLVMFuzzerTestOneInput over lib/, built by
 * tests/fuzz/Makefile with -fsanitize=fuzzer,address,undefined. A finding is
 * a sanitizer report, a leak, or a FUZZ_CHECK that fails: the harnesses also
 * check what the library promises (round trips, invariants), not only that
 * it survives. */
#ifndef SS_FUZZ_H
#define SS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

/* The session ID whose keys (ss_id_key) seal the records of the seeds and
 * open them in the harnesses (mkseeds.c writes the seeds with it). */
#define FUZZ_SESSION_ID "n0nEuYzTXXjS8Ugx3hoiEXxOyUVLIoC3tEsR5_4lVq0"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh pool for one input, under a root pool made once per process (APR
 * initialized); destroy it at the end of the input. */
apr_pool_t *fuzz_pool(void);

/* Report a broken promise and abort: libFuzzer saves the input. */
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
        }                                                                                          \
    } while (0)

/* FUZZ_TRACE=1 in the environment: the harnesses say what each step did
 * (to read what a seed or a crashing input exercises). */
int fuzz_tracing(void);
void fuzz_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads an input front to back; past the end every read gives 0. */
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
} fuzz_reader_t;

void fuzz_reader_init(fuzz_reader_t *r, const uint8_t *data, size_t size);
int fuzz_reader_done(const fuzz_reader_t *r);
unsigned fuzz_u8(fuzz_reader_t *r);
unsigned fuzz_u16(fuzz_reader_t *r);
apr_uint32_t fuzz_u32(fuzz_reader_t *r);

#endif

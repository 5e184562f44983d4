/* What every fuzz target shares: the libFuzzer entry point and CHECK, an
 * invariant that aborts (libFuzzer then saves the input) with its place. */
#ifndef CVX_FUZZ_H
#define CVX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                          \
            abort();                                                                                               \
        }                                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

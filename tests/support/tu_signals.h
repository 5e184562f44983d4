/* Running Wasmtime under cmocka.
 *
 * Wasmtime turns wasm traps (unreachable, out-of-bounds, division by zero,
 * stack overflow) into signals (SIGILL, SIGSEGV, SIGFPE, SIGBUS) handled by
 * handlers it installs once per process, when the first engine is created.
 * cmocka, around every test, installs its own handlers for SIGILL, SIGSEGV,
 * SIGFPE and SIGSYS with signal() and afterwards restores whatever was there
 * before. So from the second test on, a wasm trap lands in cmocka's handler:
 * the test "fails with exception" or, on another thread, the process exits.
 *
 * The fix: create an engine in main() before cmocka runs (Wasmtime installs
 * its handlers; cmocka then restores exactly these after each test), save
 * them, and reinstall them at the start of every test. Wasmtime forwards
 * faults that are not wasm traps to the handler that was installed before
 * it (ASan's, or the default), so real crashes are still reported.
 *
 * Use TU_WASM_TEST(fn) instead of cmocka_unit_test(fn) and call
 * tu_wasm_signals_init() at the top of main(). */
#ifndef TU_SIGNALS_H
#define TU_SIGNALS_H

#include <signal.h>

#include "support/testutil.h"

static const int tu_wasm_sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS};
static struct sigaction tu_wasm_saved[4];

static inline void tu_wasm_signals_init(void) {
    cvx_engine_t *e;
    cvx_err_t err;
    if (cvx_engine_new(NULL, &e, &err)) {
        fprintf(stderr, "engine: %s\n", err.msg);
        exit(1);
    }
    cvx_engine_free(e);
    for (int i = 0; i < 4; i++) sigaction(tu_wasm_sigs[i], NULL, &tu_wasm_saved[i]);
}

static inline void tu_wasm_signals_restore(void) {
    for (int i = 0; i < 4; i++) sigaction(tu_wasm_sigs[i], &tu_wasm_saved[i], NULL);
}

typedef void (*tu_test_fn)(void **state);

/* The real test function travels as the initial state. */
static inline void tu_wasm_run(void **state) {
    tu_test_fn fn = (tu_test_fn)(uintptr_t)*state;
    tu_wasm_signals_restore();
    *state = NULL;
    fn(state);
}

#define TU_WASM_TEST(f) {#f, tu_wasm_run, NULL, NULL, (void *)(uintptr_t)(f)}

#endif

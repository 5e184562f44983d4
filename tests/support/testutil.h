/* Helpers shared by the C test suites: temporary directories, the guest
 * fixtures (examples/ built with the real toolchain), a runtime with a real
 * store, and running the real cvx binary. All tests run against real parts;
 * the only fakes are fault injections. */
#ifndef CVX_TESTUTIL_H
#define CVX_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka needs these first */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "abi/abi.h"
#include "exec/exec.h"
#include "store/store.h"
#include "util/util.h"
#include "value/value.h"
#include "wasm/wasm.h"

/* A fresh empty directory under $TMPDIR; static storage per call site is
 * not needed: the returned string is owned by the caller (free()). */
char *tu_tmpdir(const char *tag);
void tu_rmrf(const char *path);

/* Path of the guest crate at `reldir` (relative to the source tree, e.g.
 * "examples/hello" or "tests/fixtures/guest") built to wasm with the real
 * toolchain: once per process, with a target dir shared by all test
 * binaries. Fails the test on error. */
const char *tu_guest_wasm(const char *reldir);
/* Reads a file fully; fails the test on error. Caller frees the buffer. */
void tu_read(const char *path, cvx_buf_t *out);
/* The permission bits of dir/name (name "" for dir itself), and setting
 * them; both fail the test on error. */
unsigned tu_mode_of(const char *dir, const char *name);
void tu_chmod(const char *dir, const char *name, unsigned mode);

/* An engine with the ABI registered (no module cache unless cache_dir). */
cvx_engine_t *tu_engine(const char *cache_dir);

/* A runtime over a fresh store in a temp dir with `wasm` deployed. */
typedef struct {
    char *dir;
    cvx_engine_t *engine;
    cvx_store_t *store;
    cvx_runtime_t *rt;
    cvx_app_t *app;
} tu_env_t;

void tu_env_open(tu_env_t *env, const char *wasm_path, const cvx_exec_limits_t *limits);
/* Reopens the store in the same directory (a restart). */
void tu_env_reopen(tu_env_t *env);
void tu_env_close(tu_env_t *env, bool remove_dir);

/* Runs a call; returns the status; resp must be freed by the caller. */
int tu_call(tu_env_t *env, const char *path, const char *args, cvx_response_t *resp);
/* Runs a call that must succeed and returns its value JSON (malloc'd). */
char *tu_call_ok(tu_env_t *env, const char *path, const char *args);

/* Runs a shell command, capturing stdout (and stderr when merge). Returns
 * the exit status. */
int tu_sh(cvx_buf_t *out, bool merge, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* assert helpers that print both sides */
#define tu_assert_contains(hay, needle)                                                                              \
    do {                                                                                                             \
        const char *h_ = (hay);                                                                                      \
        const char *n_ = (needle);                                                                                   \
        if (!h_ || !strstr(h_, n_)) fail_msg("expected \"%s\" to contain \"%s\"", h_ ? h_ : "(null)", n_);            \
    } while (0)

#endif

/* QuickJS-ng's quickjs.c, compiled for WASI with its C stack limit on.
 *
 * quickjs.c turns the limit off on WASI (rt->stack_limit = 0 when
 * __wasi__ is defined): "Maximum call stack size exceeded" is then never
 * thrown, and deep recursion runs into Wasmtime's own stack limit, a trap
 * that ends the call without a JavaScript error to catch. Here the C stack
 * is the module's shadow stack, whose end is known (CVX_JS_STACK_SIZE),
 * so the limit works as on any other target. The system headers are
 * included first, as WASI's (they depend on __wasi__), then quickjs.c
 * without __wasi__ and without atomics (they need threads). Nothing of
 * QuickJS-ng is edited. */
#include <assert.h>
#include <fenv.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cutils.h"
#include "quickjs.h"

#define __STDC_NO_ATOMICS__ 1
#undef __wasi__
#include "quickjs.c"

/* The one place where Wasmtime's errors and traps become cvx errors.
 *
 * Limits map to their own codes (fuel, memory, timeout); a trap raised by a
 * host function keeps the code and message the host set; anything else is
 * CVX_E_TRAP with Wasmtime's description and, when the module carries line
 * tables, the first guest source location from the backtrace. */
#include "wasm/wasm_int.h"

#include <stdio.h>
#include <string.h>

/* Finds "at <file>:<line>:<col>" lines in Wasmtime's backtrace text and
 * copies the first one (trimmed) into out. */
static bool first_location(const char *text, char *out, size_t cap) {
    const char *p = text;
    while ((p = strstr(p, "\n")) != NULL) {
        p++;
        const char *q = p;
        while (*q == ' ') q++;
        if (strncmp(q, "at ", 3) == 0) {
            q += 3;
            size_t n = strcspn(q, "\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, q, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* The last line of Wasmtime's text is the root cause ("wasm trap: ..."). */
static void root_cause(const char *text, char *out, size_t cap) {
    const char *caused = strstr(text, "Caused by:");
    const char *p = caused ? caused + strlen("Caused by:") : text;
    while (*p == '\n' || *p == ' ') p++;
    const char *colon_num = p;
    /* Lines look like "    0: wasm trap: ..." inside a Caused-by list. */
    if (caused && colon_num[0] >= '0' && colon_num[0] <= '9') {
        const char *c = strchr(colon_num, ':');
        if (c) p = c + 1;
        while (*p == ' ') p++;
    }
    if (strncmp(p, "wasm trap: ", 11) == 0) p += 11;
    size_t n = strcspn(p, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    if (n == 0) snprintf(out, cap, "%.*s", (int)strcspn(text, "\n"), text);
}

int cvx__wasm_error(wasmtime_error_t *e, cvx_err_t *err, int code, const char *what) {
    wasm_name_t msg;
    wasmtime_error_message(e, &msg);
    if (what)
        cvx_err_set(err, code, "%s: %.*s", what, (int)msg.size, msg.data);
    else
        cvx_err_set(err, code, "%.*s", (int)msg.size, msg.data);
    wasm_byte_vec_delete(&msg);
    wasmtime_error_delete(e);
    return code;
}

int cvx__wasm_trap(cvx_instance_t *inst, wasm_trap_t *trap, cvx_err_t *err) {
    wasmtime_trap_code_t tc = 0;
    bool has_code = wasmtime_trap_code(trap, &tc);
    wasm_message_t msg;
    wasm_trap_message(trap, &msg);
    char text[8192];
    size_t n = msg.size && msg.data[msg.size - 1] == '\0' ? msg.size - 1 : msg.size;
    if (n >= sizeof text) n = sizeof text - 1;
    memcpy(text, msg.data, n);
    text[n] = '\0';
    wasm_byte_vec_delete(&msg);
    wasm_trap_delete(trap);

    if (inst && inst->trap_code) return cvx_err_set(err, inst->trap_code, "%s", inst->trap_msg);

    char loc[512] = "", cause[512];
    bool has_loc = first_location(text, loc, sizeof loc);
    root_cause(text, cause, sizeof cause);
    if (has_code && tc == WASMTIME_TRAP_CODE_OUT_OF_FUEL)
        return cvx_err_set(err, CVX_E_FUEL, "function exceeded its fuel limit (%llu units)",
                           inst ? (unsigned long long)inst->limits.fuel : 0ull);
    if (has_code && tc == WASMTIME_TRAP_CODE_INTERRUPT)
        return cvx_err_set(err, CVX_E_TIMEOUT, "function timed out (limit %llu ms)",
                           inst ? (unsigned long long)inst->limits.timeout_ms : 0ull);
    if (has_code && tc == WASMTIME_TRAP_CODE_STACK_OVERFLOW)
        return cvx_err_set(err, CVX_E_TRAP, "function trapped: stack overflow%s%s", has_loc ? " at " : "", loc);
    return cvx_err_set(err, CVX_E_TRAP, "function trapped: %s%s%s", cause, has_loc ? " at " : "", loc);
}

/* Error codes and messages. The tables come from errors.def so the enum,
 * the names and the default messages cannot drift apart. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

static const char *const code_names[] = {
#define CVX_ERR(name, num, msg) [num] = #name,
#include "util/errors.def"
#undef CVX_ERR
};

static const char *const code_messages[] = {
#define CVX_ERR(name, num, msg) [num] = msg,
#include "util/errors.def"
#undef CVX_ERR
};

const char *cvx_code_name(int code) {
    if (code < 0 || code >= CVX_E__COUNT || !code_names[code]) return "UNKNOWN";
    return code_names[code];
}

const char *cvx_code_message(int code) {
    if (code < 0 || code >= CVX_E__COUNT || !code_messages[code]) return "unknown error";
    return code_messages[code];
}

int cvx_err_vset(cvx_err_t *err, int code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        if (fmt) {
            vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        } else {
            snprintf(err->msg, sizeof err->msg, "%s", cvx_code_message(code));
        }
    }
    return code;
}

int cvx_err_set(cvx_err_t *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cvx_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int cvx_err_prefix(cvx_err_t *err, const char *fmt, ...) {
    if (!err) return 0;
    char joined[2 * CVX_ERR_MSG_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, CVX_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n >= CVX_ERR_MSG_MAX) n = CVX_ERR_MSG_MAX - 1;
    memcpy(joined + n, ": ", 2);
    size_t old = strnlen(err->msg, CVX_ERR_MSG_MAX - 1);
    memcpy(joined + n + 2, err->msg, old);
    size_t total = (size_t)n + 2 + old;
    if (total >= CVX_ERR_MSG_MAX) total = CVX_ERR_MSG_MAX - 1;
    memcpy(err->msg, joined, total);
    err->msg[total] = '\0';
    return err->code;
}

void cvx_err_clear(cvx_err_t *err) {
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

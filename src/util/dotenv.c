/* The .env dialect `cvx env set --from-file` reads, as dotenv reads it:
 * NAME=VALUE lines, `# comments` (also after an unquoted value, following a
 * blank), blank lines, `export NAME=VALUE`, values in single quotes (as
 * they are) or double quotes (\n, \r, \t, \" and \\ expanded), CRLF line
 * ends and a UTF-8 byte order mark. Pure: text in, (name, value, line)
 * out, so that it can be fuzzed (fuzz/dotenv_fuzz.c). */
#include "util/util.h"

#include <string.h>

static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/* The value from v up to end (one line, without its line end), appended
 * to out; false when a quote is not closed. */
static bool value_of(const char *v, const char *end, cvx_buf_t *out) {
    while (v < end && blank(*v)) v++;
    if (v < end && (*v == '"' || *v == '\'')) {
        char q = *v++;
        for (; v < end && *v != q; v++) {
            if (q == '"' && *v == '\\' && v + 1 < end) {
                v++;
                cvx_buf_append_char(out, *v == 'n' ? '\n' : *v == 'r' ? '\r' : *v == 't' ? '\t' : *v);
            } else {
                cvx_buf_append_char(out, *v);
            }
        }
        return v < end; /* what follows the closing quote (a comment) is ignored */
    }
    size_t n = 0, max = (size_t)(end - v);
    while (n < max && !(v[n] == '#' && (n == 0 || blank(v[n - 1])))) n++;
    while (n && blank(v[n - 1])) n--;
    cvx_buf_append(out, v, n);
    return true;
}

int cvx_dotenv_parse(const char *text, size_t len, cvx_dotenv_fn each, void *ctx, cvx_err_t *err) {
    const char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    cvx_buf_t value = {0};
    int rc = CVX_OK;
    for (int line = 1; rc == CVX_OK && p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
        while (eol > p && eol[-1] == '\r') eol--;
        while (p < eol && blank(*p)) p++;
        if (p == eol || *p == '#') {
            p = next;
            continue;
        }
        if ((size_t)(eol - p) > 6 && memcmp(p, "export", 6) == 0 && blank(p[6]))
            for (p += 6; p < eol && blank(*p);) p++;
        const char *eq = memchr(p, '=', (size_t)(eol - p));
        if (!eq) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "line %d: expected NAME=VALUE", line);
            break;
        }
        const char *name_end = eq;
        while (name_end > p && blank(name_end[-1])) name_end--;
        cvx_buf_reset(&value);
        cvx_buf_append_str(&value, "");
        if (!value_of(eq + 1, eol, &value)) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "line %d: the value's quote is not closed", line);
            break;
        }
        if (value.oom) {
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            break;
        }
        rc = each(ctx, p, (size_t)(name_end - p), value.data, value.len, line, err);
        p = next;
    }
    cvx_buf_free(&value);
    return rc;
}

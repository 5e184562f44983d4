/*
 * pkg_parse_fuzz.c — libFuzzer target for app packages (src/util/pkg.c),
 * the body of every deploy: "CVXPKG1\n", a u32 count, then named entries.
 *
 * Checked, besides "no crash":
 *  - an accepted package has at most CVX_PKG_MAX_ENTRIES entries, each
 *    with a non-empty name and its data inside the input, names unique,
 *    and cvx_pkg_find finds each entry by its name;
 *  - the format is canonical: writing the entries back with cvx_pkg_begin
 *    and cvx_pkg_add gives the input byte for byte (when no name holds a
 *    NUL, which the writer's C-string names cannot carry);
 *  - a refused package comes with CVX_E_INVALID_ARGUMENT, a message, and
 *    NULL / 0 outputs.
 */
#include <string.h>

#include "fuzz.h"
#include "util/util.h"

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len) {
    const uint8_t *q = p;
    return q >= base && q <= base + len && n <= (size_t)(base + len - q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cvx_pkg_entry_t *e = (cvx_pkg_entry_t *)1;
    size_t n = 99;
    cvx_err_t err = {0};
    int rc = cvx_pkg_parse(data, size, &e, &n, &err);
    if (rc != CVX_OK) {
        CHECK(rc == CVX_E_INVALID_ARGUMENT && e == NULL && n == 0 && err.msg[0] != '\0');
        return 0;
    }
    CHECK(cvx_pkg_is(data, size));
    CHECK(n <= CVX_PKG_MAX_ENTRIES);
    bool nul_in_names = false;
    for (size_t i = 0; i < n; i++) {
        CHECK(e[i].name_len > 0 && inside(e[i].name, e[i].name_len, data, size));
        CHECK(inside(e[i].data, e[i].len, data, size));
        for (size_t j = 0; j < i; j++)
            CHECK(e[j].name_len != e[i].name_len || memcmp(e[j].name, e[i].name, e[i].name_len) != 0);
        if (memchr(e[i].name, '\0', e[i].name_len)) nul_in_names = true;
    }
    if (!nul_in_names) {
        cvx_buf_t out = {0};
        cvx_pkg_begin(&out, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            char *name = cvx_strndup(e[i].name, e[i].name_len);
            CHECK(name != NULL);
            CHECK(cvx_pkg_find(e, n, name) == &e[i]);
            cvx_pkg_add(&out, name, e[i].data, e[i].len);
            cvx_free(name);
        }
        CHECK(!out.oom && out.len == size && memcmp(out.data, data, size) == 0);
        cvx_buf_free(&out);
    }
    cvx_free(e);
    return 0;
}

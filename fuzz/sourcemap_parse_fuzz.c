/*
 * sourcemap_parse_fuzz.c — libFuzzer target for JavaScript source maps
 * (src/abi/sourcemap.c), which arrive with every TypeScript deploy and are
 * read again each time the app is loaded: the JSON, the base64 VLQ
 * "mappings", lookups, and the rewriting of error stacks.
 *
 * sourcemap.c needs only util/ and value/ (no Wasmtime). Checked, besides
 * "no crash":
 *  - a refused map comes with CVX_E_INVALID_VALUE, a message and no map;
 *  - lookups of an accepted map (fixed positions and ones taken from the
 *    input) give a source name and 1-based positions;
 *  - rewriting a fixed stack keeps its first and last lines (no position
 *    in them) and ends without a newline (a source name may hold
 *    newlines, so lines are not counted);
 *  - the input itself, read as a stack (unterminated, as callers may pass
 *    it), rewrites without a map to exactly its non-empty lines that do not
 *    name cvx:prelude, and with the map the same way twice.
 */
#include <string.h>

#include "abi/abi.h"
#include "fuzz.h"

static const char STACK[] = "Error: boom\n"
                            "    at handler (bundle.js:1:11)\n"
                            "    at run (cvx:prelude:3:5)\n"
                            "    at bundle.js:3:5\n"
                            "    at __commonJS (bundle.js:2:1)\n"
                            "    at f (bundle.js:4294967296:1)\n"
                            "    at g (bundle.js:1:)\n"
                            "    at <anonymous>\n";

static bool has(const char *p, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, needle, k)) return true;
    return false;
}

/* What rewriting without a map must give: the non-empty lines that do not
 * name the prelude, joined by '\n'. */
static void expected_without_map(const char *s, size_t n, cvx_buf_t *out) {
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        if (eol > p && !has(p, (size_t)(eol - p), "cvx:prelude")) {
            if (out->len) cvx_buf_append_char(out, '\n');
            cvx_buf_append(out, p, (size_t)(eol - p));
        }
        p = nl ? nl + 1 : end;
    }
}

static void check_lookup(const cvx_sourcemap_t *m, uint32_t line, uint32_t col) {
    const char *src = NULL;
    uint32_t ol = 0, oc = 0;
    if (cvx_sourcemap_lookup(m, line, col, &src, &ol, &oc)) {
        CHECK(src != NULL && ol >= 1 && oc >= 1);
        (void)strlen(src);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    cvx_sourcemap_t *m = (cvx_sourcemap_t *)1;
    cvx_err_t err = {0};
    int rc = cvx_sourcemap_parse(text, size, &m, &err);
    if (rc != CVX_OK) {
        CHECK(rc == CVX_E_INVALID_VALUE && m == NULL && err.msg[0] != '\0');
        m = NULL;
    } else {
        CHECK(m != NULL);
        static const uint32_t at[][2] = {{1, 1}, {1, 11}, {2, 1}, {3, 5}, {1, 0x80000000u}, {0xffffffffu, 0xffffffffu}};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) check_lookup(m, at[i][0], at[i][1]);
        for (size_t i = 0; i + 2 <= size && i < 16; i += 2) check_lookup(m, 1u + data[i] % 8, 1u + data[i + 1]);

        cvx_buf_t out = {0};
        cvx_sourcemap_rewrite(m, STACK, sizeof STACK - 1, &out);
        static const char first[] = "Error: boom\n", last[] = "\n    at <anonymous>";
        /* The two share the newline between them. */
        CHECK(!out.oom && out.len >= (sizeof first - 1) + (sizeof last - 2));
        CHECK(memcmp(out.data, first, sizeof first - 1) == 0);
        CHECK(memcmp(out.data + out.len - (sizeof last - 1), last, sizeof last - 1) == 0);
        cvx_buf_free(&out);
    }

    /* The input as a stack, in its own exact-size buffer. */
    cvx_buf_t out = {0}, want = {0};
    cvx_sourcemap_rewrite(NULL, text, size, &out);
    expected_without_map(text, size, &want);
    CHECK(out.len == want.len && (want.len == 0 || memcmp(out.data, want.data, want.len) == 0));
    if (m) {
        cvx_buf_t again = {0};
        cvx_buf_reset(&out);
        cvx_sourcemap_rewrite(m, text, size, &out);
        cvx_sourcemap_rewrite(m, text, size, &again);
        CHECK(out.len == again.len && (out.len == 0 || memcmp(out.data, again.data, out.len) == 0));
        CHECK(out.len == 0 || out.data[out.len - 1] != '\n');
        cvx_buf_free(&again);
    }
    cvx_buf_free(&out);
    cvx_buf_free(&want);
    cvx_sourcemap_free(m);
    return 0;
}

/* abi/sourcemap: source map v3 decoding, lookups and the rewriting of
 * error stacks from the bundle's positions to the app's files. The maps
 * here are written by hand: segments are listed in the clear and encoded
 * to base64 VLQ by a small encoder, so every expectation can be checked
 * against the list. A map comes with an uploaded module, so malformed
 * ones (bad JSON, bad VLQ, positions outside the sources, huge numbers)
 * must be refused with a message. */
#include "support/testutil.h"

#include <string.h>

/* ---- writing maps -------------------------------------------------------------- */

typedef struct {
    int64_t line, col;          /* generated, 0-based */
    int64_t src, oline, ocol;   /* original, 0-based; src < 0: a 1-field segment */
} seg_t;

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void vlq(cvx_buf_t *b, int64_t v) {
    uint64_t u = v < 0 ? ((uint64_t)-v << 1) | 1 : (uint64_t)v << 1;
    do {
        int d = (int)(u & 31);
        u >>= 5;
        if (u) d |= 32;
        cvx_buf_append_char(b, B64[d]);
    } while (u);
}

/* The "mappings" of segments sorted by generated position: columns are
 * relative within a line, the rest relative to the previous segment. */
static void mappings(cvx_buf_t *b, const seg_t *s, size_t n) {
    int64_t line = 0, col = 0, src = 0, oline = 0, ocol = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].line != line) {
            for (; line < s[i].line; line++) cvx_buf_append_char(b, ';');
            col = 0;
        } else if (i > 0) {
            cvx_buf_append_char(b, ',');
        }
        vlq(b, s[i].col - col);
        col = s[i].col;
        if (s[i].src < 0) continue;
        vlq(b, s[i].src - src);
        vlq(b, s[i].oline - oline);
        vlq(b, s[i].ocol - ocol);
        src = s[i].src, oline = s[i].oline, ocol = s[i].ocol;
    }
}

/* A map of the bundle below: line 1 holds the app's handler, line 2 is
 * esbuild's glue (no segments), line 3 comes from lib.ts, and line 4 has
 * a 1-field segment (generated code with no source) before a mapped one. */
static const seg_t SEGS[] = {
    {0, 0, 0, 0, 0},  /* bundle.js:1:1   -> convex/messages.ts:1:1 */
    {0, 10, 0, 2, 4}, /* bundle.js:1:11  -> convex/messages.ts:3:5 */
    {0, 30, 1, 7, 2}, /* bundle.js:1:31  -> node_modules/convex/dist/values.js:8:3 */
    {2, 4, 2, 9, 0},  /* bundle.js:3:5   -> lib.ts:10:1 */
    {3, 0, -1, 0, 0}, /* bundle.js:4:1   (no source) */
    {3, 8, 0, 20, 6}, /* bundle.js:4:9   -> convex/messages.ts:21:7 */
};

static const char *map_json(const char *sources, const seg_t *s, size_t n) {
    static char text[4096];
    cvx_buf_t m = {0};
    mappings(&m, s, n);
    snprintf(text, sizeof text, "{\"version\":3,\"sources\":%s,\"names\":[],\"mappings\":\"%s\"}", sources,
             m.data ? m.data : "");
    cvx_buf_free(&m);
    return text;
}

#define SOURCES "[\"../convex/messages.ts\",\"../../node_modules/convex/dist/values.js\",\"lib.ts\"]"

static cvx_sourcemap_t *parse_ok(const char *json) {
    cvx_sourcemap_t *m = NULL;
    cvx_err_t err;
    if (cvx_sourcemap_parse(json, strlen(json), &m, &err)) fail_msg("map %s: %s", json, err.msg);
    assert_non_null(m);
    return m;
}

static cvx_sourcemap_t *sample(void) { return parse_ok(map_json(SOURCES, SEGS, CVX_ARRAY_LEN(SEGS))); }

static void expect_refused(const char *json, size_t len, const char *msg) {
    cvx_sourcemap_t *m = (cvx_sourcemap_t *)1;
    cvx_err_t err = {0};
    /* An exact-size copy: nothing after the map is readable. */
    char *copy = cvx_malloc(len ? len : 1);
    memcpy(copy, json, len);
    int rc = cvx_sourcemap_parse(copy, len, &m, &err);
    cvx_free(copy);
    if (rc != CVX_E_INVALID_VALUE) fail_msg("rc %d for %.*s", rc, (int)len, json);
    assert_null(m);
    if (msg) assert_string_equal(err.msg, msg);
    else assert_true(err.msg[0] != '\0');
}

/* Rewrites a stack (an exact-size copy) and returns the text. */
static const char *rewritten(const cvx_sourcemap_t *m, const char *stack) {
    static char text[4096];
    size_t n = strlen(stack);
    char *copy = cvx_malloc(n ? n : 1);
    memcpy(copy, stack, n);
    cvx_buf_t out = {0};
    cvx_sourcemap_rewrite(m, copy, n, &out);
    cvx_free(copy);
    snprintf(text, sizeof text, "%s", out.data ? out.data : "");
    cvx_buf_free(&out);
    return text;
}

static void expect_at(const cvx_sourcemap_t *m, uint32_t line, uint32_t col, const char *src, uint32_t oline,
                      uint32_t ocol) {
    const char *s = NULL;
    uint32_t l = 0, c = 0;
    if (!cvx_sourcemap_lookup(m, line, col, &s, &l, &c)) fail_msg("no mapping for %u:%u", line, col);
    assert_string_equal(s, src);
    assert_int_equal(l, oline);
    assert_int_equal(c, ocol);
}

static void expect_none(const cvx_sourcemap_t *m, uint32_t line, uint32_t col) {
    const char *s = NULL;
    uint32_t l = 0, c = 0;
    if (cvx_sourcemap_lookup(m, line, col, &s, &l, &c)) fail_msg("%u:%u mapped to %s:%u:%u", line, col, s, l, c);
}

/* ---- lookups ------------------------------------------------------------------- */

static void test_vlq_encoder_matches_the_spec(void **state) {
    /* The examples of the source map spec and esbuild's output. */
    static const struct {
        int64_t v;
        const char *text;
    } cases[] = {{0, "A"}, {1, "C"}, {-1, "D"}, {15, "e"}, {16, "gB"}, {-16, "hB"}, {123, "2H"}, {1000000, "gkh9B"}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_buf_t b = {0};
        vlq(&b, cases[i].v);
        assert_string_equal(b.data, cases[i].text);
        cvx_buf_free(&b);
    }
    cvx_buf_t b = {0};
    mappings(&b, SEGS, CVX_ARRAY_LEN(SEGS));
    assert_string_equal(b.data, "AAAA,UAEI,oBCKF;;ICEF;A,QFWM");
    cvx_buf_free(&b);
}

static void test_lookup_finds_the_segment_at_or_before(void **state) {
    cvx_sourcemap_t *m = sample();
    expect_at(m, 1, 1, "convex/messages.ts", 1, 1);
    expect_at(m, 1, 10, "convex/messages.ts", 1, 1);
    expect_at(m, 1, 11, "convex/messages.ts", 3, 5);
    expect_at(m, 1, 30, "convex/messages.ts", 3, 5);
    expect_at(m, 1, 31, "node_modules/convex/dist/values.js", 8, 3);
    expect_at(m, 1, 5000, "node_modules/convex/dist/values.js", 8, 3);
    expect_at(m, 3, 5, "lib.ts", 10, 1);
    expect_at(m, 4, 9, "convex/messages.ts", 21, 7);
    expect_at(m, 4, 100, "convex/messages.ts", 21, 7);
    /* Before a line's first segment, on a line without any, past the last
     * line: nothing, never the previous line's segment. */
    expect_none(m, 3, 4);
    expect_none(m, 2, 1);
    expect_none(m, 2, 50);
    expect_none(m, 5, 1);
    expect_none(m, UINT32_MAX, UINT32_MAX);
    /* Positions are 1-based. */
    expect_none(m, 0, 1);
    expect_none(m, 1, 0);
    expect_none(NULL, 1, 1);
    cvx_sourcemap_free(m);
    cvx_sourcemap_free(NULL);
}

static void test_sources_read_from_the_app_root(void **state) {
    static const seg_t segs[] = {{0, 0, 0, 0, 0}, {0, 1, 1, 0, 0}, {0, 2, 2, 0, 0}, {0, 3, 3, 0, 0}};
    cvx_sourcemap_t *m = parse_ok(map_json("[\"../../../a.ts\",\"./b.ts\",7,\"..\"]", segs, 4));
    expect_at(m, 1, 1, "a.ts", 1, 1);
    expect_at(m, 1, 2, "./b.ts", 1, 1);
    /* A source that is not a string still maps, to a placeholder. */
    expect_at(m, 1, 3, "?", 1, 1);
    expect_at(m, 1, 4, "..", 1, 1);
    cvx_sourcemap_free(m);
}

static void test_empty_mappings_map_nothing(void **state) {
    cvx_sourcemap_t *m = parse_ok("{\"version\":3,\"sources\":[],\"mappings\":\"\"}");
    expect_none(m, 1, 1);
    cvx_sourcemap_free(m);
    m = parse_ok("{\"sources\":[\"a.js\"],\"mappings\":\";;;,,;\"}");
    expect_none(m, 1, 1);
    expect_none(m, 4, 1);
    cvx_sourcemap_free(m);
}

/* esbuild's maps name identifiers; cvx ignores the names, so no name
 * index, however large its deltas, may affect the parse. */
static void test_name_indexes_are_ignored(void **state) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"sources\":[\"a.ts\"],\"names\":[\"x\"],\"mappings\":\"AAAAA");
    /* -(2^59 - 1) per segment, 40 times: far past int64 in total. */
    for (int i = 0; i < 40; i++) cvx_buf_append_str(&b, ",AAAA///////////f");
    cvx_buf_append_str(&b, "\"}");
    cvx_sourcemap_t *m = NULL;
    cvx_err_t err;
    assert_int_equal(cvx_sourcemap_parse(b.data, b.len, &m, &err), CVX_OK);
    expect_at(m, 1, 1, "a.ts", 1, 1);
    cvx_sourcemap_free(m);
    cvx_buf_free(&b);
}

/* ---- rewriting stacks ---------------------------------------------------------- */

static void test_rewrite_maps_frames_and_drops_runtime_ones(void **state) {
    cvx_sourcemap_t *m = sample();
    assert_string_equal(rewritten(m, "Error: boom\n"
                                     "    at handler (bundle.js:1:11)\n"
                                     "    at run (cvx:prelude:3:5)\n"
                                     "    at bundle.js:3:5\n"
                                     "    at __commonJS (bundle.js:2:1)\n"
                                     "    at dispatch (bundle.js:4:3)\n"
                                     "    at <anonymous>\n"),
                        "Error: boom\n"
                        "    at handler (convex/messages.ts:3:5)\n"
                        "    at lib.ts:10:1\n"
                        "    at <anonymous>");
    /* Only the position changes; what follows it stays. */
    assert_string_equal(rewritten(m, "at f (bundle.js:4:20) [as g]"), "at f (convex/messages.ts:21:7) [as g]");
    cvx_sourcemap_free(m);
}

/* Without a map (a Rust app, or a bundle deployed without one) the frames
 * stay as they are; only the runtime's own go. */
static void test_rewrite_without_a_map_keeps_positions(void **state) {
    assert_string_equal(rewritten(NULL, "Error: x\n    at a (bundle.js:1:11)\n    at cvx:prelude:1:1\n    at b (bundle.js:9:9)"),
                        "Error: x\n    at a (bundle.js:1:11)\n    at b (bundle.js:9:9)");
    assert_string_equal(rewritten(NULL, ""), "");
    assert_string_equal(rewritten(NULL, "\n\n\n"), "");
    assert_string_equal(rewritten(NULL, "at cvx:prelude:1:1"), "");
}

static void test_rewrite_appends_without_trailing_newline(void **state) {
    cvx_sourcemap_t *m = sample();
    cvx_buf_t out = {0};
    cvx_buf_append_str(&out, "Uncaught ");
    const char *stack = "Error: x\n\n    at bundle.js:1:1\n\n";
    cvx_sourcemap_rewrite(m, stack, strlen(stack), &out);
    assert_string_equal(out.data, "Uncaught Error: x\n    at convex/messages.ts:1:1");
    assert_int_equal(out.len, strlen(out.data));
    cvx_buf_free(&out);
    cvx_sourcemap_free(m);
}

/* Positions that are no numbers, or too big for one, are frames the map
 * cannot place: dropped, like esbuild's glue. */
static void test_rewrite_drops_unreadable_positions(void **state) {
    cvx_sourcemap_t *m = sample();
    assert_string_equal(rewritten(m, "E\nat bundle.js:99999999999999999999:1\nat bundle.js:4294967296:1\n"
                                     "at bundle.js:1:4294967297\nat bundle.js:\nat bundle.js:x:y\nat bundle.js:1\n"
                                     "at bundle.js:1:\nat bundle.js:-1:-1\nat (bundle.js:1:1)"),
                        "E\nat (convex/messages.ts:1:1)");
    /* A position cut at the end of the stack is read within it. */
    assert_string_equal(rewritten(NULL, "at bundle.js:12"), "at bundle.js:12");
    assert_string_equal(rewritten(m, "at bundle.js:3"), "");
    assert_string_equal(rewritten(m, "at bundle.js:3:5"), "at lib.ts:10:1");
    /* A number never runs on into the next line. */
    assert_string_equal(rewritten(m, "at bundle.js:\n3:5"), "3:5");
    assert_string_equal(rewritten(m, "at bundle.js:1:\n5"), "5");
    cvx_sourcemap_free(m);
}

/* ---- malformed maps ------------------------------------------------------------ */

static void test_malformed_maps_are_refused(void **state) {
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"", NULL},
        {"{", NULL},
        {"[]", "source map: needs \"sources\" and \"mappings\""},
        {"\"x\"", "source map: needs \"sources\" and \"mappings\""},
        {"{\"mappings\":\"AAAA\"}", "source map: needs \"sources\" and \"mappings\""},
        {"{\"sources\":[]}", "source map: needs \"sources\" and \"mappings\""},
        {"{\"sources\":\"a.ts\",\"mappings\":\"\"}", "source map: needs \"sources\" and \"mappings\""},
        {"{\"sources\":[],\"mappings\":7}", "source map: needs \"sources\" and \"mappings\""},
        /* Not base64, a sign bit with nothing after it, too many digits. */
        {"{\"sources\":[\"a\"],\"mappings\":\"AA!A\"}", "source map: malformed mappings"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAg\"}", "source map: malformed mappings"},
        {"{\"sources\":[\"a\"],\"mappings\":\"gggggggggggggA\"}", "source map: malformed mappings"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAA AAAA\"}", "source map: malformed mappings"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAAAA\"}", "source map: malformed mappings"},
        /* Positions outside the sources or negative. */
        {"{\"sources\":[\"a\"],\"mappings\":\"ACAA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"ADAA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"DAAA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AADA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAD\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAA,DAAA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[],\"mappings\":\"AAAA\"}", "source map: a mapping points outside its sources"},
        /* Past 2^31, each field. */
        {"{\"sources\":[\"a\"],\"mappings\":\"ggggggggggB\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAggggggggggBA\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAggggggggggB\"}", "source map: a mapping points outside its sources"},
        {"{\"sources\":[\"a\"],\"mappings\":\"AAAA,gggggggB\"}", "source map: a mapping points outside its sources"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) expect_refused(bad[i].json, strlen(bad[i].json), bad[i].msg);
}

/* Every prefix of a valid map is refused or parses; nothing reads past it. */
static void test_truncated_maps_fail_cleanly(void **state) {
    const char *json = map_json(SOURCES, SEGS, CVX_ARRAY_LEN(SEGS));
    size_t n = strlen(json);
    for (size_t i = 0; i < n; i++) expect_refused(json, i, NULL);
}

/* Columns just inside the bound still parse and map. */
static void test_largest_positions_are_accepted(void **state) {
    static const seg_t segs[] = {{0, INT32_MAX, 0, INT32_MAX, INT32_MAX}};
    cvx_sourcemap_t *m = parse_ok(map_json("[\"a.ts\"]", segs, 1));
    expect_at(m, 1, (uint32_t)INT32_MAX + 1, "a.ts", (uint32_t)INT32_MAX + 1, (uint32_t)INT32_MAX + 1);
    expect_none(m, 1, INT32_MAX);
    cvx_sourcemap_free(m);
}

static void test_out_of_memory_is_an_error(void **state) {
    const char *json = map_json(SOURCES, SEGS, CVX_ARRAY_LEN(SEGS));
    int ok = 0;
    for (uint64_t nth = 1; nth < 12; nth++) {
        cvx_sourcemap_t *m = (cvx_sourcemap_t *)1;
        cvx_err_t err = {0};
        cvx_alloc_fail_after(nth, false);
        int rc = cvx_sourcemap_parse(json, strlen(json), &m, &err);
        cvx_alloc_fail_after(0, false);
        if (rc == CVX_OK) {
            ok++;
            cvx_sourcemap_free(m);
        } else {
            assert_int_equal(rc, CVX_E_NOMEM);
            assert_null(m);
        }
    }
    /* Once the failure comes after the last allocation, it parses. */
    assert_true(ok > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vlq_encoder_matches_the_spec),
        cmocka_unit_test(test_lookup_finds_the_segment_at_or_before),
        cmocka_unit_test(test_sources_read_from_the_app_root),
        cmocka_unit_test(test_empty_mappings_map_nothing),
        cmocka_unit_test(test_name_indexes_are_ignored),
        cmocka_unit_test(test_rewrite_maps_frames_and_drops_runtime_ones),
        cmocka_unit_test(test_rewrite_without_a_map_keeps_positions),
        cmocka_unit_test(test_rewrite_appends_without_trailing_newline),
        cmocka_unit_test(test_rewrite_drops_unreadable_positions),
        cmocka_unit_test(test_malformed_maps_are_refused),
        cmocka_unit_test(test_truncated_maps_fail_cleanly),
        cmocka_unit_test(test_largest_positions_are_accepted),
        cmocka_unit_test(test_out_of_memory_is_an_error),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

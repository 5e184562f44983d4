/* Why the value layer parses JSON itself (docs/decisions.md): parse the
 * same convex-encoded documents with Jansson (then convert to cvx values,
 * which the host needs: sorted fields, $integer/$bytes decoding, limits)
 * and with cvx_json_parse, and report MB/s for each.
 *
 *   cc -O2 -Isrc bench/json_bench.c src/util/*.c src/value/*.c -ljansson -lcrypto -lm -o json_bench
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "value/value.h"

static cvx_value_t *from_jansson(cvx_arena_t *a, json_t *j) {
    switch (json_typeof(j)) {
    case JSON_NULL: return cvx_null(a);
    case JSON_TRUE: return cvx_bool(a, true);
    case JSON_FALSE: return cvx_bool(a, false);
    case JSON_INTEGER: return cvx_float64(a, (double)json_integer_value(j));
    case JSON_REAL: return cvx_float64(a, json_real_value(j));
    case JSON_STRING: return cvx_string(a, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        cvx_value_t *arr = cvx_array(a, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++) cvx_arr_push(a, arr, from_jansson(a, json_array_get(j, i)));
        return arr;
    }
    case JSON_OBJECT: {
        cvx_value_t *obj = cvx_object(a, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (k[0] == '$' && strcmp(k, "$integer") == 0) {
                cvx_buf_t raw = {0};
                cvx_base64_decode(&raw, json_string_value(v), json_string_length(v), NULL);
                int64_t x = 0;
                memcpy(&x, raw.data, raw.len == 8 ? 8 : 0);
                cvx_buf_free(&raw);
                return cvx_int64(a, x);
            }
            cvx_obj_set(a, obj, k, strlen(k), from_jansson(a, v));
        }
        return obj;
    }
    }
    return NULL;
}

int main(int argc, char **argv) {
    /* A user-like document: strings, numbers, an int64, nested arrays. */
    cvx_buf_t doc = {0};
    cvx_buf_append_str(&doc, "{\"_id\":\"j57a3zqw2vsj8cr4h2a5q6wacs8jwqz9\",\"_creationTime\":1795587183581.52,"
                             "\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\",\"age\":36,"
                             "\"visits\":{\"$integer\":\"KgAAAAAAAAA=\"},\"tags\":[\"math\",\"poetry\",\"engines\"],"
                             "\"address\":{\"city\":\"London\",\"street\":\"St James's Square\",\"zip\":\"SW1Y\"},"
                             "\"scores\":[");
    for (int i = 0; i < 50; i++) cvx_buf_printf(&doc, "%s%d.%d", i ? "," : "", i * 7, i % 10);
    cvx_buf_append_str(&doc, "],\"bio\":\"");
    for (int i = 0; i < 20; i++) cvx_buf_append_str(&doc, "The Analytical Engine weaves algebraic patterns. ");
    cvx_buf_append_str(&doc, "\"}");
    int iters = argc > 1 ? atoi(argv[1]) : 200000;
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    cvx_err_t err;
    uint64_t t0 = cvx_monotonic_ns();
    for (int i = 0; i < iters; i++) {
        cvx_value_t *v;
        cvx_arena_reset(a);
        if (cvx_json_parse(a, doc.data, doc.len, &v, &err)) return 1;
    }
    double cvx_s = (double)(cvx_monotonic_ns() - t0) / 1e9;
    t0 = cvx_monotonic_ns();
    for (int i = 0; i < iters; i++) {
        json_error_t je;
        cvx_arena_reset(a);
        json_t *j = json_loadb(doc.data, doc.len, JSON_DECODE_INT_AS_REAL, &je);
        if (!j || !from_jansson(a, j)) return 1;
        json_decref(j);
    }
    double jan_s = (double)(cvx_monotonic_ns() - t0) / 1e9;
    double mb = (double)doc.len * iters / 1e6;
    printf("document %zu bytes x %d\n", doc.len, iters);
    printf("cvx_json_parse        %8.1f MB/s  %6.2f us/doc\n", mb / cvx_s, cvx_s * 1e6 / iters);
    printf("jansson + conversion  %8.1f MB/s  %6.2f us/doc\n", mb / jan_s, jan_s * 1e6 / iters);
    printf("ratio                 %8.2fx\n", jan_s / cvx_s);
    cvx_arena_free(a);
    cvx_buf_free(&doc);
    return 0;
}

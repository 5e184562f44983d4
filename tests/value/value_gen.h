/*
 * value_gen.h — seeded random values for the value layer's property tests
 * (shared by the *_test.c files of tests/value; header-only because each
 * test file is its own executable).
 *
 * The generator is biased towards the cases where orderings go wrong:
 * tiny alphabets so that strings share prefixes and tie often, NUL and 0xff
 * bytes (the key encoding's escape and terminator), int64 and float64 edge
 * values (min/max, ±0, ±Inf, NaNs with payloads and either sign,
 * subnormals), short containers so that length tie-breaks matter.
 *
 * `json_safe` restricts the output to what JSON can carry: valid UTF-8
 * strings, valid field names, no undefined. Without it anything the key
 * encoding must handle is fair game.
 */
#ifndef CVX_TEST_VALUE_GEN_H
#define CVX_TEST_VALUE_GEN_H

#include <float.h>
#include <math.h>
#include <string.h>

#include "value/value.h"

typedef struct {
    cvx_chacha_t rng;
    cvx_arena_t *a;
    bool json_safe;
} gen_t;

static inline void gen_init(gen_t *g, cvx_arena_t *a, const char *seed, bool json_safe) {
    cvx_chacha_seed(&g->rng, seed, strlen(seed));
    g->a = a;
    g->json_safe = json_safe;
}

static inline uint32_t gen_below(gen_t *g, uint32_t n) { return (uint32_t)(cvx_chacha_u64(&g->rng) % n); }

static inline double gen_bits_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline int64_t gen_int(gen_t *g) {
    static const int64_t special[] = {INT64_MIN, INT64_MIN + 1, -256, -255, -1, 0, 1, 127, 128, 255, 256,
                                      INT64_MAX - 1, INT64_MAX};
    switch (gen_below(g, 3)) {
    case 0: return special[gen_below(g, CVX_ARRAY_LEN(special))];
    case 1: return (int64_t)gen_below(g, 7) - 3;
    default: return (int64_t)cvx_chacha_u64(&g->rng);
    }
}

static inline double gen_float(gen_t *g) {
    static const uint64_t special_bits[] = {
        0x0000000000000000ull, /* +0 */
        0x8000000000000000ull, /* -0 */
        0x7ff0000000000000ull, /* +Inf */
        0xfff0000000000000ull, /* -Inf */
        0x7ff8000000000000ull, /* NaN (JavaScript's) */
        0xfff8000000000000ull, /* -NaN */
        0x7ff0000000000001ull, /* signalling NaN, smallest payload */
        0xffffffffffffffffull, /* -NaN, all ones */
        0x0000000000000001ull, /* smallest subnormal */
        0x8000000000000001ull, /* -smallest subnormal */
        0x000fffffffffffffull, /* largest subnormal */
        0x0010000000000000ull, /* DBL_MIN */
        0x7fefffffffffffffull, /* DBL_MAX */
        0xffefffffffffffffull, /* -DBL_MAX */
        0x3ff0000000000000ull, /* 1 */
        0xbff0000000000000ull, /* -1 */
        0x3fb999999999999aull, /* 0.1 */
        0x4340000000000000ull, /* 2^53 */
        0x4340000000000001ull, /* 2^53 + 2 */
    };
    switch (gen_below(g, 4)) {
    case 0: return gen_bits_double(special_bits[gen_below(g, CVX_ARRAY_LEN(special_bits))]);
    case 1: return (double)((int)gen_below(g, 9) - 4) / 2;
    case 2: return (double)(int64_t)cvx_chacha_u64(&g->rng) / (double)(1 + gen_below(g, 1000));
    default: return gen_bits_double(cvx_chacha_u64(&g->rng));
    }
}

/* Up to 5 units from a small alphabet; JSON-safe strings use whole UTF-8
 * characters (including escapes-needing ones and a 4-byte one). */
static inline size_t gen_text(gen_t *g, char *out, bool utf8, bool field_name) {
    static const char *const utf8_units[] = {"a", "b", "\"", "\\", "\n", "\x01", "\x7f", " ", "$", "_",
                                             "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x00"};
    static const char name_units[] = "ab_$ .\"\\~";
    static const char raw_units[] = {'a', 'b', 0x00, (char)0xff, (char)0x80, 0x01};
    size_t n = 0, len = gen_below(g, 6);
    for (size_t i = 0; i < len; i++) {
        if (field_name) {
            char c = name_units[gen_below(g, sizeof name_units - 1)];
            if (i == 0 && c == '$') c = 'a';
            out[n++] = c;
        } else if (utf8) {
            uint32_t k = gen_below(g, CVX_ARRAY_LEN(utf8_units));
            size_t ulen = k == CVX_ARRAY_LEN(utf8_units) - 1 ? 1 : strlen(utf8_units[k]);
            memcpy(out + n, utf8_units[k], ulen);
            n += ulen;
        } else {
            out[n++] = raw_units[gen_below(g, sizeof raw_units)];
        }
    }
    if (field_name && n == 0) out[n++] = 'a';
    return n;
}

static inline cvx_value_t *gen_value(gen_t *g, int depth);

static inline cvx_value_t *gen_container(gen_t *g, int depth, bool object) {
    uint32_t n = gen_below(g, 5);
    cvx_value_t *c = object ? cvx_object(g->a, 0) : cvx_array(g->a, 0);
    for (uint32_t i = 0; i < n; i++) {
        cvx_value_t *item = (!g->json_safe && gen_below(g, 12) == 0) ? NULL : gen_value(g, depth + 1);
        if (!object) {
            cvx_arr_push(g->a, c, item);
            continue;
        }
        char name[32];
        size_t len = gen_text(g, name, true, g->json_safe);
        cvx_obj_set(g->a, c, name, len, item);
    }
    return c;
}

static inline cvx_value_t *gen_value(gen_t *g, int depth) {
    uint32_t kind = gen_below(g, depth >= 4 ? 6 : 8);
    char buf[32];
    switch (kind) {
    case 0: return cvx_null(g->a);
    case 1: return cvx_int64(g->a, gen_int(g));
    case 2: return cvx_float64(g->a, gen_float(g));
    case 3: return cvx_bool(g->a, gen_below(g, 2));
    case 4: return cvx_string(g->a, buf, gen_text(g, buf, g->json_safe, false));
    case 5: return cvx_bytes(g->a, buf, gen_text(g, buf, false, false));
    case 6: return gen_container(g, depth, false);
    default: return gen_container(g, depth, true);
    }
}

#endif

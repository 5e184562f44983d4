/*
 * id_test.c — document ids: the Convex stability vector, round trips over
 * table numbers at every VInt length boundary, every single-character
 * corruption rejected, and each kind of non-canonical encoding rejected
 * with a message that quotes the id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "value/value.h"

static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

/* The test's own base32 (bit accumulator), to build ids the library would
 * never produce. */
static void base32(const uint8_t *b, size_t n, char *out) {
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | b[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alphabet[(acc >> bits) & 31];
        }
    }
    if (bits) out[o++] = alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Appends fletcher16 (LE) of b[0..n) at b[n]. */
static size_t with_footer(uint8_t *b, size_t n) {
    uint8_t c0 = 0, c1 = 0;
    for (size_t i = 0; i < n; i++) {
        c0 = (uint8_t)(c0 + b[i]);
        c1 = (uint8_t)(c1 + c0);
    }
    b[n] = c0;
    b[n + 1] = c1;
    return n + 2;
}

static void expect_parse_error(const char *s, const char *msg) {
    cvx_id_t id;
    cvx_err_t err = {0};
    assert_int_equal(cvx_id_parse(s, strlen(s), &id, &err), CVX_E_INVALID_VALUE);
    assert_string_equal(err.msg, msg);
}

static void sample_id(cvx_id_t *id, uint32_t table, uint8_t seed) {
    id->table = table;
    for (int i = 0; i < CVX_ID_INTERNAL_LEN; i++) id->internal[i] = (uint8_t)(seed * 37 + i * 11);
}

/* From Convex's own test (crates/value/src/id_v6.rs): an id minted by the
 * real backend must read back here, and ours must be byte-identical. */
static void test_convex_vector(void **state) {
    cvx_id_t id = {.table = 1017};
    id.internal[0] = 251;
    for (int i = 1; i < 16; i++) id.internal[i] = (uint8_t)(id.internal[i - 1] * 251);
    char text[CVX_ID_MAX_LEN + 1];
    assert_int_equal(cvx_id_format(&id, text), 32);
    assert_string_equal(text, "z43zp6c3e75gkmz1kfwj6mbbx5sw281h");
    cvx_id_t back;
    assert_int_equal(cvx_id_parse(text, 32, &back, NULL), CVX_OK);
    assert_int_equal(back.table, 1017);
    assert_memory_equal(back.internal, id.internal, 16);
}

static void test_round_trips(void **state) {
    static const struct {
        uint32_t table;
        size_t len;
    } cases[] = {
        {1, 31},           {127, 31},         {128, 32},        {10001, 32},
        {16383, 32},       {16384, 34},       {(1u << 21) - 1, 34}, {1u << 21, 36},
        {(1u << 28) - 1, 36}, {1u << 28, 37}, {UINT32_MAX, 37},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        for (uint8_t seed = 0; seed < 20; seed++) {
            cvx_id_t id, back;
            sample_id(&id, cases[i].table, seed);
            char text[CVX_ID_MAX_LEN + 1];
            assert_int_equal(cvx_id_format(&id, text), cases[i].len);
            assert_int_equal(strlen(text), cases[i].len);
            cvx_err_t err = {0};
            if (cvx_id_parse(text, cases[i].len, &back, &err)) fail_msg("%s: %s", text, err.msg);
            assert_int_equal(back.table, cases[i].table);
            assert_memory_equal(back.internal, id.internal, CVX_ID_INTERNAL_LEN);
            /* Same bytes through the test's base32: the same text. */
            uint8_t raw[32];
            size_t n = 0;
            for (uint32_t t = cases[i].table; n == 0 || t; t >>= 7)
                raw[n++] = (uint8_t)((t & 0x7f) | (t >= 0x80 ? 0x80 : 0));
            memcpy(raw + n, id.internal, 16);
            n = with_footer(raw, n + 16);
            char mine[64];
            base32(raw, n, mine);
            assert_string_equal(mine, text);
        }
    }
}

/* Every single-character substitution of a valid id must be rejected:
 * Fletcher-16 catches any change confined to two adjacent bytes, and a
 * change in the padding bits is non-canonical. */
static void test_every_corruption_rejected(void **state) {
    static const uint32_t tables[] = {1, 10001, 16384, 1u << 21, UINT32_MAX};
    for (size_t t = 0; t < CVX_ARRAY_LEN(tables); t++) {
        cvx_id_t id;
        sample_id(&id, tables[t], (uint8_t)t);
        char text[CVX_ID_MAX_LEN + 1];
        size_t n = cvx_id_format(&id, text);
        for (size_t pos = 0; pos < n; pos++) {
            for (int c = 0; c < 32; c++) {
                if (alphabet[c] == text[pos]) continue;
                char bad[CVX_ID_MAX_LEN + 1];
                memcpy(bad, text, n + 1);
                bad[pos] = alphabet[c];
                cvx_id_t out;
                cvx_err_t err = {0};
                if (cvx_id_parse(bad, n, &out, &err) == CVX_OK) fail_msg("corrupted id %s was accepted", bad);
                assert_int_equal(err.code, CVX_E_INVALID_VALUE);
                assert_non_null(strstr(err.msg, bad));
            }
        }
    }
}

static void test_bad_characters_and_lengths(void **state) {
    expect_parse_error("z43zp6c3e75gkmz1kfwj6mbbx5sw28ih",
                       "invalid id \"z43zp6c3e75gkmz1kfwj6mbbx5sw28ih\": unexpected character 'i' at position 30");
    expect_parse_error("Z43zp6c3e75gkmz1kfwj6mbbx5sw281h",
                       "invalid id \"Z43zp6c3e75gkmz1kfwj6mbbx5sw281h\": unexpected character 'Z' at position 0");
    expect_parse_error("z43zp6c3e75gkmz1kfwj6mbbx5sw281u",
                       "invalid id \"z43zp6c3e75gkmz1kfwj6mbbx5sw281u\": unexpected character 'u' at position 31");
    expect_parse_error("z43zp6c3e75gkmz1kfwj6mbbx5sw2\"1h",
                       "invalid id \"z43zp6c3e75gkmz1kfwj6mbbx5sw2\\\"1h\": unexpected character '\\\"' at position 29");
    expect_parse_error("", "invalid id \"\": wrong length 0 (an id has 31, 32, 34, 36 or 37 characters)");
    expect_parse_error("z43zp6c3e75gkmz1kfwj6mbbx5sw281",
                       "invalid id \"z43zp6c3e75gkmz1kfwj6mbbx5sw281\": non-canonical encoding (padding bits are not "
                       "zero)");
    expect_parse_error("z43zp6c3e75gkmz1kfwj6mbbx5sw281h0",
                       "invalid id \"z43zp6c3e75gkmz1kfwj6mbbx5sw281h0\": wrong length 33 (an id has 31, 32, 34, 36 or "
                       "37 characters)");
    char longer[101];
    memset(longer, 'a', 100);
    longer[100] = '\0';
    expect_parse_error(longer, "invalid id \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": wrong "
                               "length 100 (an id has 31, 32, 34, 36 or 37 characters)");
    cvx_id_t id;
    assert_int_equal(cvx_id_parse("z43zp6c3e75gkmz1kfwj6mbbx5sw281h\0", 33, &id, NULL), CVX_E_INVALID_VALUE);
}

static void test_non_canonical(void **state) {
    uint8_t b[32];
    char text[64], msg[256];

    /* Table 1 written as two VInt bytes (0x81 0x00). */
    b[0] = 0x81, b[1] = 0x00;
    memset(b + 2, 7, 16);
    base32(b, with_footer(b, 18), text);
    snprintf(msg, sizeof msg, "invalid id \"%s\": non-canonical table number", text);
    expect_parse_error(text, msg);

    /* Table number 0. */
    b[0] = 0x00;
    memset(b + 1, 7, 16);
    base32(b, with_footer(b, 17), text);
    snprintf(msg, sizeof msg, "invalid id \"%s\": table number 0 is not valid", text);
    expect_parse_error(text, msg);

    /* More than 32 bits of table number. */
    b[0] = b[1] = b[2] = b[3] = 0xff, b[4] = 0x1f;
    memset(b + 5, 7, 16);
    base32(b, with_footer(b, 21), text);
    snprintf(msg, sizeof msg, "invalid id \"%s\": table number does not fit in 32 bits", text);
    expect_parse_error(text, msg);

    /* A two-byte table number (1017) in 19 bytes: one byte short. */
    b[0] = 0xf9, b[1] = 0x07;
    memset(b + 2, 7, 15);
    base32(b, with_footer(b, 17), text);
    snprintf(msg, sizeof msg, "invalid id \"%s\": length 31 does not match its table number 1017", text);
    expect_parse_error(text, msg);

    /* Good bytes, but the footer is off by one. */
    cvx_id_t id;
    sample_id(&id, 10001, 3);
    b[0] = 0x91, b[1] = 0x4e; /* 10001 */
    memcpy(b + 2, id.internal, 16);
    with_footer(b, 18);
    b[18] ^= 1;
    base32(b, 20, text);
    snprintf(msg, sizeof msg, "invalid id \"%s\": bad checksum", text);
    expect_parse_error(text, msg);

    /* A 31-character id has 3 padding bits; setting one is non-canonical. */
    sample_id(&id, 5, 9);
    size_t n = cvx_id_format(&id, text);
    assert_int_equal(n, 31);
    int last = (int)(strchr(alphabet, text[30]) - alphabet);
    text[30] = alphabet[last | 1];
    snprintf(msg, sizeof msg, "invalid id \"%s\": non-canonical encoding (padding bits are not zero)", text);
    expect_parse_error(text, msg);
}

static void test_generate(void **state) {
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "ids", 3);
    uint64_t now_ms = 1700000000000ull; /* 2023-11-14: day 19675 */
    cvx_id_t a, b, back;
    cvx_id_generate(10001, &rng, now_ms, &a);
    cvx_id_generate(10001, &rng, now_ms, &b);
    assert_int_equal(a.table, 10001);
    assert_int_equal(a.internal[14] << 8 | a.internal[15], 19675);
    assert_memory_not_equal(a.internal, b.internal, 14);
    /* Deterministic: the same seed mints the same id. */
    cvx_chacha_t again;
    cvx_chacha_seed(&again, "ids", 3);
    cvx_id_generate(10001, &again, now_ms, &b);
    assert_memory_equal(a.internal, b.internal, 16);
    cvx_id_generate(10002, NULL, now_ms, &b);
    assert_memory_not_equal(a.internal, b.internal, 14);
    char text[CVX_ID_MAX_LEN + 1];
    size_t n = cvx_id_format(&b, text);
    assert_int_equal(cvx_id_parse(text, n, &back, NULL), CVX_OK);
    assert_int_equal(back.table, 10002);
    assert_memory_equal(back.internal, b.internal, 16);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convex_vector),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_every_corruption_rejected),
        cmocka_unit_test(test_bad_characters_and_lengths),
        cmocka_unit_test(test_non_canonical),
        cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests_name("value.id", tests, NULL, NULL);
}

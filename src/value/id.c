/*
 * id.c — document ids as Convex writes them (docs/protocol.md §2):
 *
 *   base32( VInt(table) ‖ 16-byte internal id ‖ fletcher16 ^ version, LE )
 *
 * with the alphabet 0123456789abcdefghjkmnpqrstvwxyz, most significant bits
 * first, no padding: a table number from 128 to 16383 (all user tables
 * start at 10001) gives 20 bytes = 32 characters.
 *
 * Key decision: parsing accepts exactly the strings cvx_id_format produces.
 * Every other spelling of the same bytes (a text length that leaves a whole
 * unused character, non-zero padding bits, a VInt with a redundant zero
 * group) is rejected, so an id has one text form and string equality of ids
 * is id equality: the store and the sync layer can compare them as text.
 */
#include "value/value_int.h"

#include <stdio.h>
#include <string.h>

static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

#define ID_VERSION 0
#define MIN_BYTES (1 + CVX_ID_INTERNAL_LEN + 2)
#define MAX_BYTES (5 + CVX_ID_INTERNAL_LEN + 2)
#define MIN_CHARS 31 /* ceil(19 * 8 / 5) */
#define MAX_CHARS 37 /* ceil(23 * 8 / 5) */

/* Fletcher-16 with modulus 256 (both sums wrap at a byte), as Convex
 * computes it: low byte the running sum, high byte the sum of sums. */
static uint16_t fletcher16(const uint8_t *p, size_t n) {
    uint8_t c0 = 0, c1 = 0;
    for (size_t i = 0; i < n; i++) {
        c0 = (uint8_t)(c0 + p[i]);
        c1 = (uint8_t)(c1 + c0);
    }
    return (uint16_t)(c1 << 8 | c0);
}

/* 7 bits a byte, least significant group first, high bit = more follows. */
static size_t vint_put(uint32_t v, uint8_t *out) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static size_t id_bytes(const cvx_id_t *id, uint8_t out[MAX_BYTES]) {
    size_t n = vint_put(id->table, out);
    memcpy(out + n, id->internal, CVX_ID_INTERNAL_LEN);
    n += CVX_ID_INTERNAL_LEN;
    uint16_t footer = fletcher16(out, n) ^ ID_VERSION;
    out[n++] = (uint8_t)footer;
    out[n++] = (uint8_t)(footer >> 8);
    return n;
}

size_t cvx_id_format(const cvx_id_t *id, char out[CVX_ID_MAX_LEN + 1]) {
    uint8_t bytes[MAX_BYTES];
    size_t n = id_bytes(id, bytes);
    size_t bits = n * 8, o = 0;
    for (size_t at = 0; at < bits; at += 5) {
        /* The 5 bits starting at bit `at`, zero-padded past the end. */
        size_t byte = at / 8, shift = at % 8;
        unsigned w = (unsigned)bytes[byte] << 8 | (byte + 1 < n ? bytes[byte + 1] : 0);
        out[o++] = alphabet[(w >> (11 - shift)) & 31];
    }
    out[o] = '\0';
    return o;
}

static int char_value(char c) {
    const char *p = c ? memchr(alphabet, c, 32) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

static int bad_id(cvx_err_t *err, const char *s, size_t n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int bad_id(cvx_err_t *err, const char *s, size_t n, const char *fmt, ...) {
    char snip[160], why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cvx__snippet(snip, sizeof snip, s, n, 64);
    return cvx_err_set(err, CVX_E_INVALID_VALUE, "invalid id \"%s\": %s", snip, why);
}

/* Base32 text to bytes; rejects characters outside the alphabet and
 * non-zero padding bits. *nbytes = floor(5n / 8). */
static int decode_base32(const char *s, size_t n, uint8_t out[MAX_BYTES], size_t *nbytes, cvx_err_t *err) {
    uint32_t acc = 0;
    unsigned have = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = char_value(s[i]);
        if (v < 0) {
            char c[8];
            cvx__snippet(c, sizeof c, s + i, 1, 1);
            return bad_id(err, s, n, "unexpected character '%s' at position %zu", c, i);
        }
        acc = (acc << 5 | (uint32_t)v) & 0xfff;
        have += 5;
        if (have >= 8) {
            have -= 8;
            out[o++] = (uint8_t)(acc >> have);
        }
    }
    if (acc & ((1u << have) - 1)) return bad_id(err, s, n, "non-canonical encoding (padding bits are not zero)");
    *nbytes = o;
    return CVX_OK;
}

/* Minimal VInt of at most 32 bits; *used = its length. */
static int decode_table(const uint8_t *b, size_t n, uint32_t *table, size_t *used, const char *s, size_t slen,
                        cvx_err_t *err) {
    uint32_t v = 0;
    for (size_t i = 0; i < 5 && i < n; i++) {
        if (i == 4 && b[i] > 0x0f) break;
        v |= (uint32_t)(b[i] & 0x7f) << (7 * i);
        if (b[i] & 0x80) continue;
        if (i > 0 && b[i] == 0) return bad_id(err, s, slen, "non-canonical table number");
        if (v == 0) return bad_id(err, s, slen, "table number 0 is not valid");
        *table = v;
        *used = i + 1;
        return CVX_OK;
    }
    return bad_id(err, s, slen, "table number does not fit in 32 bits");
}

int cvx_id_parse(const char *s, size_t n, cvx_id_t *out, cvx_err_t *err) {
    /* Length first: cheap, and bounds everything below. The byte counts
     * 19..23 give exactly these text lengths. */
    if (n != 31 && n != 32 && n != 34 && n != 36 && n != 37)
        return bad_id(err, s, n, "wrong length %zu (an id has 31, 32, 34, 36 or 37 characters)", n);
    uint8_t b[MAX_BYTES];
    size_t nb = 0, used = 0;
    uint32_t table = 0;
    int rc = decode_base32(s, n, b, &nb, err);
    if (rc || (rc = decode_table(b, nb, &table, &used, s, n, err))) return rc;
    if (used + CVX_ID_INTERNAL_LEN + 2 != nb)
        return bad_id(err, s, n, "length %zu does not match its table number %u", n, (unsigned)table);
    uint16_t want = fletcher16(b, nb - 2) ^ ID_VERSION;
    uint16_t got = (uint16_t)(b[nb - 2] | b[nb - 1] << 8);
    if (want != got) return bad_id(err, s, n, "bad checksum");
    out->table = table;
    memcpy(out->internal, b + used, CVX_ID_INTERNAL_LEN);
    return CVX_OK;
}

void cvx_id_generate(uint32_t table, cvx_chacha_t *rng, uint64_t now_ms, cvx_id_t *out) {
    out->table = table;
    if (rng) {
        cvx_chacha_fill(rng, out->internal, 14);
    } else if (cvx_os_random(out->internal, 14) != CVX_OK) {
        /* getrandom(2) does not fail once the pool is seeded; if it ever
         * does, a generator keyed by the clocks still gives unique ids. */
        uint64_t seed[2] = {cvx_now_ns(), cvx_monotonic_ns()};
        cvx_chacha_t fallback;
        cvx_chacha_seed(&fallback, seed, sizeof seed);
        cvx_chacha_fill(&fallback, out->internal, 14);
    }
    uint64_t days = now_ms / 86400000u;
    out->internal[14] = (uint8_t)(days >> 8);
    out->internal[15] = (uint8_t)days;
}

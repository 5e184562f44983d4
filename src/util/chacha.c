/* ChaCha20 as a deterministic random generator. Written here rather than
 * taken from OpenSSL because the guest needs a cheap, allocation-free stream
 * per call seeded from the request id; the block function is checked against
 * the RFC 8439 test vector in tests/util. */
#include "util/util.h"

#include <string.h>

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                                                       \
    do {                                                                                                     \
        a += b; d ^= a; d = ROTL(d, 16);                                                                     \
        c += d; b ^= c; b = ROTL(b, 12);                                                                     \
        a += b; d ^= a; d = ROTL(d, 8);                                                                      \
        c += d; b ^= c; b = ROTL(b, 7);                                                                      \
    } while (0)

static uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void cvx_chacha_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3], uint8_t out[64]) {
    uint32_t s[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key[0], key[1], key[2], key[3],
                      key[4],     key[5],     key[6],     key[7],     counter, nonce[0], nonce[1], nonce[2]};
    uint32_t x[16];
    memcpy(x, s, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + s[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

void cvx_chacha_init(cvx_chacha_t *r, const uint8_t key[32], const uint8_t nonce[12]) {
    for (int i = 0; i < 8; i++) r->key[i] = load32(key + 4 * i);
    for (int i = 0; i < 3; i++) r->nonce[i] = load32(nonce + 4 * i);
    r->counter = 0;
    r->used = sizeof r->block; /* no block generated yet */
}

void cvx_chacha_seed(cvx_chacha_t *r, const void *seed, size_t n) {
    uint8_t key[32];
    static const uint8_t nonce[12] = {'c', 'v', 'x', '-', 'r', 'n', 'g', 0, 0, 0, 0, 1};
    cvx_sha256(seed, n, key);
    cvx_chacha_init(r, key, nonce);
}

void cvx_chacha_fill(cvx_chacha_t *r, void *out, size_t n) {
    uint8_t *o = out;
    while (n > 0) {
        if (r->used == sizeof r->block) {
            cvx_chacha_block(r->key, r->counter++, r->nonce, r->block);
            r->used = 0;
        }
        size_t take = CVX_MIN(n, sizeof r->block - r->used);
        memcpy(o, r->block + r->used, take);
        r->used += take;
        o += take;
        n -= take;
    }
}

uint64_t cvx_chacha_u64(cvx_chacha_t *r) {
    uint8_t b[8];
    cvx_chacha_fill(r, b, sizeof b);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

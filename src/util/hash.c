/* SHA-256 (OpenSSL's libcrypto) and hex, used for module cache keys, blob
 * digests and RNG seeding; FNV-1a for in-memory hash tables. */
#include "util/util.h"

#include <openssl/sha.h>

void cvx_sha256(const void *data, size_t n, uint8_t out[32]) { SHA256(data, n, out); }
void cvx_sha1(const void *data, size_t n, uint8_t out[20]) { SHA1(data, n, out); }

uint64_t cvx_fnv1a(uint64_t h, const void *data, size_t n) {
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

void cvx_hex(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

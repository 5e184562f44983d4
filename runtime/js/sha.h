/* SHA-1 and SHA-2 for crypto.subtle.digest inside the guest. */
#ifndef CVX_JS_SHA_H
#define CVX_JS_SHA_H
#include <stddef.h>
#include <stdint.h>

/* Digests `len` bytes with the algorithm named as WebCrypto names it
 * ("SHA-1", "SHA-256", "SHA-384", "SHA-512", case-insensitive) into out
 * (64 bytes). Returns the digest's length, 0 for an unknown name. */
size_t sha_digest(const char *alg, const uint8_t *data, size_t len, uint8_t out[64]);

#endif

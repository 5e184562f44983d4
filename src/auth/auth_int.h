/* Private to the auth layer:
 *
 *   jwt.c        a token's parts, its signature, a JWK as an OpenSSL key
 *   identity.c   claims -> UserIdentity
 *   providers.c  the providers, their key caches and fetches; verify
 */
#ifndef CVX_AUTH_INT_H
#define CVX_AUTH_INT_H

#include <openssl/evp.h>
#include <pthread.h>

#include "auth/auth.h"
#include "value/value.h"

typedef enum { CVX__ALG_RS256 = 1, CVX__ALG_ES256 } cvx__alg_t;

/* A token split and decoded; its values live in the arena it was parsed
 * with. */
typedef struct {
    cvx__alg_t alg;
    const char *kid; /* NULL when the header names none */
    const cvx_value_t *claims; /* the payload, an object */
    const char *signed_part;   /* header.payload, as received */
    size_t signed_len;
    cvx_buf_t sig;             /* owned: free with cvx__jwt_free */
} cvx__jwt_t;

/* Splits and decodes a compact JWS. CVX_E_AUTH: malformed (not three
 * base64url parts, JSON that is not an object), or an algorithm other
 * than RS256 / ES256 ("none", HS256 and the rest). */
int cvx__jwt_parse(cvx_arena_t *a, const char *token, size_t len, cvx__jwt_t *out, cvx_err_t *err);
void cvx__jwt_free(cvx__jwt_t *t);
/* Whether the signature verifies with key (whose type must suit alg). */
bool cvx__jwt_verify_sig(const cvx__jwt_t *t, EVP_PKEY *key);

/* One signing key of a provider. */
typedef struct {
    char *kid;     /* NULL when the JWK has none */
    cvx__alg_t alg;
    EVP_PKEY *key;
} cvx__key_t;

/* The usable keys of a JWKS document (RSA >= 2048 bits for RS256, P-256
 * for ES256, "use" absent or "sig"); others are skipped. Appends to
 * *keys (cvx_realloc'd). CVX_E_AUTH when the document is not a JWKS. */
int cvx__jwks_parse(const char *json, size_t len, cvx__key_t **keys, size_t *nkeys, cvx_err_t *err);
void cvx__keys_free(cvx__key_t *keys, size_t n);

/* base64url without padding -> bytes (appended). */
int cvx__b64url_decode(cvx_buf_t *out, const char *s, size_t n, cvx_err_t *err);

/* ---- tokens.c: tokens verified lately ---------------------------------------- */

#define CVX__TOKEN_CACHE_BYTES ((size_t)4 << 20)

typedef struct cvx_auth cvx_auth_t;
/* The providers' generation (bumped when they change). */
uint64_t cvx__auth_gen(cvx_auth_t *a);
/* Remembers that `token` verified, under providers of generation `gen`,
 * as `identity`, accepted until `exp` (the skew included). */
void cvx__tokens_put(cvx_auth_t *a, const char *token, size_t len, uint64_t gen, int64_t exp, const char *identity,
                     size_t identity_len);
/* Frees every entry (cvx_auth_free). */
void cvx__tokens_clear(cvx_auth_t *a);
/* The cache itself, for tokens.c (providers.c owns the struct). */
pthread_mutex_t *cvx__tokens_lock(cvx_auth_t *a);
cvx_cache_t *cvx__tokens_cache(cvx_auth_t *a);

/* The UserIdentity of verified claims (iss and sub are strings). */
int cvx__identity_of_claims(const cvx_value_t *claims, cvx_buf_t *out, cvx_err_t *err);

#endif

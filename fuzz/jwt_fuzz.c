/*
 * jwt_fuzz.c — libFuzzer target for what the auth layer reads from
 * clients and issuers (src/auth/jwt.c, src/auth/identity.c): a token, a
 * JWKS document, an admin's identity attributes. The input is split at
 * its first two NUL bytes into those three.
 *
 * A token either parses (RS256 or ES256, a signature, a signed part that
 * is a prefix of the token ending before the last dot) or is refused with
 * CVX_E_AUTH; claims that name a subject and issuer give an identity that
 * is valid JSON whose tokenIdentifier is issuer|subject. Every key a JWKS
 * yields holds an OpenSSL key of its algorithm's type. Attributes give
 * valid JSON or CVX_E_INVALID_ARGUMENT.
 */
#include <string.h>

#include "auth/auth_int.h"
#include "fuzz.h"

static void check_identity(const cvx_buf_t *id, const char *iss, const char *sub) {
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v;
    cvx_err_t err;
    CHECK(a && cvx_json_parse(a, id->data, id->len, &v, &err) == CVX_OK && v->type == CVX_T_OBJECT);
    const cvx_value_t *t = cvx_obj_get_cstr(v, "tokenIdentifier");
    CHECK(t && t->type == CVX_T_STRING);
    if (iss && sub) {
        size_t il = strlen(iss);
        CHECK(t->u.str.len >= il + 1 && !memcmp(t->u.str.ptr, iss, il) && t->u.str.ptr[il] == '|');
    }
    cvx_arena_free(a);
}

static void token(const char *s, size_t n) {
    cvx_arena_t *a = cvx_arena_new(4096);
    CHECK(a);
    cvx__jwt_t t;
    cvx_err_t err;
    int rc = cvx__jwt_parse(a, s, n, &t, &err);
    if (rc == CVX_OK) {
        CHECK(t.alg == CVX__ALG_RS256 || t.alg == CVX__ALG_ES256);
        CHECK(t.sig.len > 0 && t.signed_part == s && t.signed_len < n && s[t.signed_len] == '.');
        CHECK(t.claims && t.claims->type == CVX_T_OBJECT);
        cvx_buf_t id = {0};
        if (cvx__identity_of_claims(t.claims, &id, &err) == CVX_OK) {
            const cvx_value_t *iss = cvx_obj_get_cstr(t.claims, "iss"), *sub = cvx_obj_get_cstr(t.claims, "sub");
            check_identity(&id, iss->u.str.ptr, sub->u.str.ptr);
        } else {
            CHECK(err.code == CVX_E_AUTH || err.code == CVX_E_NOMEM);
        }
        cvx_buf_free(&id);
        cvx__jwt_free(&t);
    } else {
        CHECK(rc == CVX_E_AUTH || rc == CVX_E_NOMEM);
    }
    cvx_arena_free(a);
}

static void jwks(const char *s, size_t n) {
    cvx__key_t *keys = NULL;
    size_t nk = 0;
    cvx_err_t err;
    int rc = cvx__jwks_parse(s, n, &keys, &nk, &err);
    CHECK(rc == CVX_OK || rc == CVX_E_AUTH || rc == CVX_E_NOMEM);
    for (size_t i = 0; i < nk; i++) {
        CHECK(keys[i].key);
        CHECK(keys[i].alg == CVX__ALG_RS256 ? EVP_PKEY_is_a(keys[i].key, "RSA") : EVP_PKEY_is_a(keys[i].key, "EC"));
    }
    cvx__keys_free(keys, nk);
}

static void attributes(const char *s, size_t n) {
    cvx_buf_t id = {0};
    cvx_err_t err;
    int rc = cvx_auth_identity_from_attributes(s, n, &id, &err);
    CHECK(rc == CVX_OK || rc == CVX_E_INVALID_ARGUMENT || rc == CVX_E_NOMEM);
    if (rc == CVX_OK) check_identity(&id, NULL, NULL);
    cvx_buf_free(&id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data, *end = s + size;
    const char *z1 = memchr(s, '\0', size);
    const char *p2 = z1 ? z1 + 1 : end;
    const char *z2 = p2 < end ? memchr(p2, '\0', (size_t)(end - p2)) : NULL;
    const char *p3 = z2 ? z2 + 1 : end;
    token(s, (size_t)((z1 ? z1 : end) - s));
    jwks(p2, (size_t)((z2 ? z2 : end) - p2));
    attributes(p3, (size_t)(end - p3));
    return 0;
}

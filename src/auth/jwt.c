/* A token's parts and signature, and JWKs as OpenSSL keys.
 *
 * Only RS256 and ES256 are accepted: the algorithm is decided by the token
 * header, so every other value ("none", and HS256, whose "key" would be a
 * public key anyone has) is refused before a key is looked at, and a key
 * is used only with the algorithm its type fits. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <string.h>

#include "auth/auth_int.h"

int cvx__b64url_decode(cvx_buf_t *out, const char *s, size_t n, cvx_err_t *err) {
    cvx_buf_t std = {0};
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '-') ch = '+';
        else if (ch == '_') ch = '/';
        else if (ch == '+' || ch == '/' || ch == '=') { /* not base64url */
            cvx_buf_free(&std);
            return cvx_err_set(err, CVX_E_AUTH, "not base64url");
        }
        cvx_buf_append_char(&std, ch);
    }
    while (std.len % 4) cvx_buf_append_char(&std, '=');
    int rc = std.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory")
                     : cvx_base64_decode(out, std.data ? std.data : "", std.len, err);
    cvx_buf_free(&std);
    if (rc == CVX_E_INVALID_VALUE) err->code = rc = CVX_E_AUTH;
    return rc;
}

static int json_part(cvx_arena_t *a, const char *s, size_t n, const char *what, const cvx_value_t **out,
                     cvx_err_t *err) {
    cvx_buf_t raw = {0};
    cvx_value_t *v = NULL;
    int rc = cvx__b64url_decode(&raw, s, n, err);
    if (rc == CVX_OK) rc = cvx_json_parse(a, raw.data ? raw.data : "", raw.len, &v, err);
    cvx_buf_free(&raw);
    if (rc == CVX_E_NOMEM) return rc;
    if (rc || v->type != CVX_T_OBJECT) return cvx_err_set(err, CVX_E_AUTH, "malformed token: its %s is not a JSON object", what);
    *out = v;
    return CVX_OK;
}

static const char *str_field(const cvx_value_t *obj, const char *name) {
    const cvx_value_t *v = cvx_obj_get_cstr(obj, name);
    return v && v->type == CVX_T_STRING ? v->u.str.ptr : NULL;
}

int cvx__jwt_parse(cvx_arena_t *a, const char *token, size_t len, cvx__jwt_t *out, cvx_err_t *err) {
    memset(out, 0, sizeof *out);
    if (len > CVX_AUTH_MAX_TOKEN)
        return cvx_err_set(err, CVX_E_AUTH, "the token is too large: %zu bytes, over the limit of %d", len,
                           CVX_AUTH_MAX_TOKEN);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return cvx_err_set(err, CVX_E_AUTH, "malformed token: a JWT has three parts separated by dots");
    const cvx_value_t *header;
    int rc = json_part(a, token, (size_t)(dot1 - token), "header", &header, err);
    if (rc) return rc;
    const char *alg = str_field(header, "alg");
    if (!alg) return cvx_err_set(err, CVX_E_AUTH, "malformed token: its header names no algorithm (alg)");
    if (!strcmp(alg, "RS256")) out->alg = CVX__ALG_RS256;
    else if (!strcmp(alg, "ES256")) out->alg = CVX__ALG_ES256;
    else return cvx_err_set(err, CVX_E_AUTH, "unsupported algorithm %.20s: cvx accepts RS256 and ES256 tokens", alg);
    const cvx_value_t *kid = cvx_obj_get_cstr(header, "kid");
    if (kid && kid->type != CVX_T_STRING) return cvx_err_set(err, CVX_E_AUTH, "malformed token: its kid is not a string");
    out->kid = kid ? kid->u.str.ptr : NULL;
    if ((rc = json_part(a, dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", &out->claims, err))) return rc;
    rc = cvx__b64url_decode(&out->sig, dot2 + 1, len - (size_t)(dot2 + 1 - token), err);
    if (rc || out->sig.len == 0) {
        cvx__jwt_free(out);
        return rc == CVX_E_NOMEM ? rc : cvx_err_set(err, CVX_E_AUTH, "malformed token: its signature is not base64url");
    }
    out->signed_part = token;
    out->signed_len = (size_t)(dot2 - token);
    return CVX_OK;
}

void cvx__jwt_free(cvx__jwt_t *t) { cvx_buf_free(&t->sig); }

/* JOSE's ES256 signature is r || s, 32 bytes each; OpenSSL wants DER. */
static bool es256_der(const cvx_buf_t *sig, unsigned char **der, int *der_len) {
    if (sig->len != 64) return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn((const unsigned char *)sig->data, 32, NULL);
    BIGNUM *s = BN_bin2bn((const unsigned char *)sig->data + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return false;
    }
    *der = NULL;
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es); /* frees r and s */
    return *der_len > 0;
}

bool cvx__jwt_verify_sig(const cvx__jwt_t *t, EVP_PKEY *key) {
    bool fits = t->alg == CVX__ALG_RS256 ? EVP_PKEY_is_a(key, "RSA") : EVP_PKEY_is_a(key, "EC");
    if (!fits) return false;
    const unsigned char *sig = (const unsigned char *)t->sig.data;
    size_t sig_len = t->sig.len;
    unsigned char *der = NULL;
    int der_len = 0;
    if (t->alg == CVX__ALG_ES256) {
        if (!es256_der(&t->sig, &der, &der_len)) return false;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)t->signed_part, t->signed_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

/* ---- JWKs ------------------------------------------------------------------------ */

static BIGNUM *bn_field(const cvx_value_t *jwk, const char *name, size_t *bytes) {
    const char *s = str_field(jwk, name);
    if (!s) return NULL;
    cvx_buf_t raw = {0};
    cvx_err_t err;
    BIGNUM *bn = NULL;
    if (cvx__b64url_decode(&raw, s, strlen(s), &err) == CVX_OK && raw.len) {
        bn = BN_bin2bn((const unsigned char *)raw.data, (int)raw.len, NULL);
        if (bytes) *bytes = raw.len;
    }
    cvx_buf_free(&raw);
    return bn;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld) {
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *key = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *rsa_key(const cvx_value_t *jwk) {
    size_t nbytes = 0;
    BIGNUM *n = bn_field(jwk, "n", &nbytes), *e = bn_field(jwk, "e", NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *key = NULL;
    /* Under 2048 bits an RSA signature is forgeable with enough money. */
    if (n && e && bld && BN_num_bits(n) >= 2048 && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        key = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return key;
}

static EVP_PKEY *p256_key(const cvx_value_t *jwk) {
    const char *crv = str_field(jwk, "crv");
    if (!crv || strcmp(crv, "P-256")) return NULL;
    cvx_buf_t pt = {0};
    cvx_buf_append_char(&pt, 4); /* an uncompressed point: 04 || x || y */
    const char *x = str_field(jwk, "x"), *y = str_field(jwk, "y");
    cvx_err_t err;
    EVP_PKEY *key = NULL;
    if (x && y && !cvx__b64url_decode(&pt, x, strlen(x), &err) && pt.len == 33 &&
        !cvx__b64url_decode(&pt, y, strlen(y), &err) && pt.len == 65) {
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        /* fromdata decodes the point, refusing one off the curve. */
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt.data, pt.len))
            key = from_params("EC", bld);
        OSSL_PARAM_BLD_free(bld);
    }
    cvx_buf_free(&pt);
    return key;
}

int cvx__jwks_parse(const char *json, size_t len, cvx__key_t **keys, size_t *nkeys, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *doc;
    const cvx_value_t *list = NULL;
    if (cvx_json_parse(a, json, len, &doc, err) == CVX_OK && doc->type == CVX_T_OBJECT)
        list = cvx_obj_get_cstr(doc, "keys");
    if (!list || list->type != CVX_T_ARRAY) {
        cvx_arena_free(a);
        return cvx_err_set(err, CVX_E_AUTH, "the key set is not a JWKS document (an object with a \"keys\" array)");
    }
    int rc = CVX_OK;
    for (size_t i = 0; i < list->u.arr.len && rc == CVX_OK; i++) {
        const cvx_value_t *jwk = list->u.arr.items[i];
        if (jwk->type != CVX_T_OBJECT) continue;
        const char *kty = str_field(jwk, "kty"), *use = str_field(jwk, "use"), *alg = str_field(jwk, "alg");
        if (!kty || (use && strcmp(use, "sig"))) continue;
        cvx__key_t k = {0};
        if (!strcmp(kty, "RSA") && (!alg || !strcmp(alg, "RS256"))) {
            k.alg = CVX__ALG_RS256;
            k.key = rsa_key(jwk);
        } else if (!strcmp(kty, "EC") && (!alg || !strcmp(alg, "ES256"))) {
            k.alg = CVX__ALG_ES256;
            k.key = p256_key(jwk);
        }
        if (!k.key) continue;
        const char *kid = str_field(jwk, "kid");
        cvx__key_t *grown = cvx_realloc(*keys, (*nkeys + 1) * sizeof *grown);
        if (!grown || (kid && !(k.kid = cvx_strdup(kid)))) {
            if (grown) *keys = grown;
            EVP_PKEY_free(k.key);
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            break;
        }
        *keys = grown;
        grown[(*nkeys)++] = k;
    }
    cvx_arena_free(a);
    return rc;
}

void cvx__keys_free(cvx__key_t *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        cvx_free(keys[i].kid);
        EVP_PKEY_free(keys[i].key);
    }
    cvx_free(keys);
}

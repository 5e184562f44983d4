/* auth: tokens signed here with keys made per run (OpenSSL), checked by
 * cvx_auth_verify against customJwt providers whose key set is a data:
 * URI, so no network is involved; the OpenID Connect discovery path runs
 * against a loopback issuer in tests/e2e/auth.test.js. Every refusal the
 * server promises has a case here. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "support/testutil.h"

typedef struct {
    EVP_PKEY *rsa, *ec, *rsa_other, *rsa_small;
    cvx_auth_t *auth;
} fx_t;

static void b64url(cvx_buf_t *out, const void *data, size_t n) {
    cvx_buf_t b = {0};
    cvx_base64_encode(&b, data, n);
    for (size_t i = 0; i < b.len; i++) {
        char c = b.data[i];
        if (c == '=') break;
        cvx_buf_append_char(out, c == '+' ? '-' : c == '/' ? '_' : c);
    }
    cvx_buf_free(&b);
}

static void bn_field(cvx_buf_t *out, const char *name, EVP_PKEY *k, const char *param, int pad) {
    BIGNUM *bn = NULL;
    assert_true(EVP_PKEY_get_bn_param(k, param, &bn));
    unsigned char buf[1024];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    cvx_buf_printf(out, ",\"%s\":\"", name);
    b64url(out, buf, (size_t)n);
    cvx_buf_append_char(out, '"');
}

/* The JWK of a public key, with its kid. */
static void jwk(cvx_buf_t *out, EVP_PKEY *k, const char *kid) {
    if (EVP_PKEY_is_a(k, "RSA")) {
        cvx_buf_printf(out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\"", kid);
        bn_field(out, "n", k, OSSL_PKEY_PARAM_RSA_N, 0);
        bn_field(out, "e", k, OSSL_PKEY_PARAM_RSA_E, 0);
    } else {
        cvx_buf_printf(out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\"", kid);
        bn_field(out, "x", k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        bn_field(out, "y", k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    }
    cvx_buf_append_char(out, '}');
}

/* A customJwt provider record whose keys are a data: URI. */
static void provider(cvx_buf_t *rec, const char *issuer, const char *alg, const char *app, const char *jwks_json) {
    cvx_buf_t uri = {0};
    cvx_buf_append_str(&uri, "data:text/plain;charset=utf-8;base64,");
    cvx_base64_encode(&uri, jwks_json, strlen(jwks_json));
    cvx_buf_printf(rec, "{\"type\":\"customJwt\",\"issuer\":\"%s\",\"algorithm\":\"%s\",\"jwks\":\"%s\"", issuer, alg,
                   uri.data);
    if (app) cvx_buf_printf(rec, ",\"applicationID\":\"%s\"", app);
    cvx_buf_append_char(rec, '}');
    cvx_buf_free(&uri);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    f->rsa_small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    f->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(f->rsa);
    assert_non_null(f->ec);
    cvx_err_t err;
    assert_int_equal(cvx_auth_new(NULL, &f->auth, &err), CVX_OK);
    cvx_buf_t ks = {0}, rec = {0}, ks2 = {0};
    cvx_buf_append_str(&ks, "{\"keys\":[");
    jwk(&ks, f->rsa, "r1");
    cvx_buf_append_char(&ks, ',');
    jwk(&ks, f->rsa_small, "small");
    cvx_buf_append_str(&ks, "]}");
    cvx_buf_append_str(&ks2, "{\"keys\":[");
    jwk(&ks2, f->ec, "e1");
    cvx_buf_append_str(&ks2, "]}");
    cvx_buf_append_str(&rec, "{\"abi\":1,\"providers\":[");
    provider(&rec, "https://rs.example", "RS256", "app-rs", ks.data);
    cvx_buf_append_char(&rec, ',');
    provider(&rec, "https://es.example/", "ES256", NULL, ks2.data);
    cvx_buf_append_str(&rec, "]}");
    if (cvx_auth_set_providers(f->auth, rec.data, rec.len, NULL, 0, NULL, &err)) fail_msg("providers: %s", err.msg);
    cvx_buf_free(&ks);
    cvx_buf_free(&ks2);
    cvx_buf_free(&rec);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    cvx_auth_free(f->auth);
    EVP_PKEY_free(f->rsa);
    EVP_PKEY_free(f->rsa_other);
    EVP_PKEY_free(f->rsa_small);
    EVP_PKEY_free(f->ec);
    free(f);
    return 0;
}

/* header and payload JSON -> a compact JWS signed by k (NULL: no
 * signature) as alg says. */
static void sign(cvx_buf_t *out, const char *header, const char *payload, EVP_PKEY *k) {
    b64url(out, header, strlen(header));
    cvx_buf_append_char(out, '.');
    b64url(out, payload, strlen(payload));
    size_t signed_len = out->len;
    cvx_buf_append_char(out, '.');
    if (!k) return;
    unsigned char sig[1024];
    size_t n = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &n, (const unsigned char *)out->data, signed_len), 1);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_is_a(k, "EC")) { /* DER -> r || s */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        unsigned char raw[64];
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        b64url(out, raw, 64);
    } else {
        b64url(out, sig, n);
    }
}

static long now_s(void) { return (long)time(NULL); }

/* Claims for the RS256 provider, exp an hour away, with `extra` fields. */
static void rs_claims(cvx_buf_t *p, const char *extra) {
    cvx_buf_printf(p, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"iat\":%ld,\"exp\":%ld%s%s}",
                   now_s(), now_s() + 3600, extra ? "," : "", extra ? extra : "");
}

static int verify(fx_t *f, const cvx_buf_t *tok, cvx_buf_t *id, cvx_err_t *err) {
    int64_t exp;
    cvx_buf_reset(id);
    return cvx_auth_verify(f->auth, tok->data, tok->len, id, &exp, err);
}

/* Refused with a message containing `words`, and no identity. */
static void refused(fx_t *f, const cvx_buf_t *tok, const char *words) {
    cvx_buf_t id = {0};
    cvx_err_t err;
    int rc = verify(f, tok, &id, &err);
    if (rc != CVX_E_AUTH) fail_msg("expected a refusal (%s), got %d: %s", words, rc, rc ? err.msg : id.data);
    assert_int_equal(id.len, 0);
    tu_assert_contains(err.msg, words);
    /* never the token */
    if (tok->len > 20) assert_null(strstr(err.msg, tok->data + tok->len - 20));
    cvx_buf_free(&id);
}

static void test_rs256_identity(void **state) {
    fx_t *f = *state;
    cvx_buf_t p = {0}, tok = {0}, id = {0};
    rs_claims(&p, "\"name\":\"Ada\",\"given_name\":\"Ada\",\"email\":\"ada@x.org\",\"email_verified\":\"true\","
                  "\"updated_at\":1700000000,\"roles\":[\"admin\"],\"jti\":\"j\"");
    sign(&tok, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", p.data, f->rsa);
    cvx_err_t err;
    if (verify(f, &tok, &id, &err)) fail_msg("%s", err.msg);
    assert_string_equal(id.data, "{\"tokenIdentifier\":\"https://rs.example|u1\",\"subject\":\"u1\",\"issuer\":"
                                 "\"https://rs.example\",\"name\":\"Ada\",\"givenName\":\"Ada\",\"email\":\"ada@x.org\","
                                 "\"emailVerified\":true,\"updatedAt\":\"1700000000\",\"roles\":[\"admin\"]}");
    /* No kid: any key of the algorithm may have signed it. */
    cvx_buf_reset(&tok);
    sign(&tok, "{\"alg\":\"RS256\"}", p.data, f->rsa);
    if (verify(f, &tok, &id, &err)) fail_msg("%s", err.msg);
    cvx_buf_free(&p);
    cvx_buf_free(&tok);
    cvx_buf_free(&id);
}

static void test_es256_identity(void **state) {
    fx_t *f = *state;
    cvx_buf_t p = {0}, tok = {0}, id = {0};
    /* Issuers match with or without a trailing slash; no applicationID: any aud. */
    cvx_buf_printf(&p, "{\"iss\":\"https://es.example\",\"sub\":\"u2\",\"exp\":%ld}", now_s() + 60);
    sign(&tok, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", p.data, f->ec);
    cvx_err_t err;
    if (verify(f, &tok, &id, &err)) fail_msg("%s", err.msg);
    tu_assert_contains(id.data, "\"tokenIdentifier\":\"https://es.example|u2\"");
    cvx_buf_free(&p);
    cvx_buf_free(&tok);
    cvx_buf_free(&id);
}

static void test_refusals(void **state) {
    fx_t *f = *state;
    cvx_buf_t p = {0}, tok = {0};
    rs_claims(&p, NULL);
#define TOKEN(hdr, payload, key)                                                                                       \
    do {                                                                                                               \
        cvx_buf_reset(&tok);                                                                                           \
        sign(&tok, hdr, payload, key);                                                                                 \
    } while (0)
    const char *rs = "{\"alg\":\"RS256\",\"kid\":\"r1\"}";

    TOKEN("{\"alg\":\"none\"}", p.data, NULL);
    refused(f, &tok, "unsupported algorithm");

    /* HS256 "signed" with the public key: what a confused verifier accepts. */
    cvx_buf_reset(&tok);
    b64url(&tok, "{\"alg\":\"HS256\"}", 15);
    cvx_buf_append_char(&tok, '.');
    b64url(&tok, p.data, p.len);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), "public key pem", 14, (const unsigned char *)tok.data, tok.len, mac, &maclen);
    cvx_buf_append_char(&tok, '.');
    b64url(&tok, mac, maclen);
    refused(f, &tok, "unsupported algorithm");

    cvx_buf_t q = {0};
    cvx_buf_printf(&q, "{\"iss\":\"https://evil.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld}", now_s() + 60);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "issuer");

    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":[\"other\"],\"exp\":%ld}", now_s() + 60);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "audience");

    /* Expired beyond the 30 s skew; within it, accepted. */
    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld}", now_s() - 120);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "expired");
    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld}", now_s() - 5);
    TOKEN(rs, q.data, f->rsa);
    cvx_buf_t id = {0};
    cvx_err_t err;
    if (verify(f, &tok, &id, &err)) fail_msg("within the skew: %s", err.msg);

    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld,\"nbf\":%ld}",
                   now_s() + 3600, now_s() + 600);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "not valid yet");
    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld,\"iat\":%ld}",
                   now_s() + 3600, now_s() + 600);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "not valid yet");
    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\"}");
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "no expiry");
    /* Times a double or an int64 cannot hold are refused before any use
     * (1e300 once reached a float-to-int cast). */
    const char *times[] = {"\"exp\":1e300", "\"exp\":-5", "\"exp\":4e9,\"nbf\":1e300", "\"exp\":4e9,\"iat\":-1e300"};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        cvx_buf_reset(&q);
        cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",%s}", times[i]);
        TOKEN(rs, q.data, NULL);
        cvx_buf_append_str(&tok, "AAAA"); /* no real signature: the times are looked at first */
        refused(f, &tok, "out of range");
    }

    /* Signed by another key under the right kid; a flipped byte. */
    TOKEN(rs, p.data, f->rsa_other);
    refused(f, &tok, "signature");
    TOKEN(rs, p.data, f->rsa);
    tok.data[tok.len - 5] = tok.data[tok.len - 5] == 'A' ? 'B' : 'A';
    refused(f, &tok, "signature");

    TOKEN("{\"alg\":\"RS256\",\"kid\":\"nope\"}", p.data, f->rsa);
    refused(f, &tok, "unknown key");
    /* A 1024-bit key in the set is never used. */
    TOKEN("{\"alg\":\"RS256\",\"kid\":\"small\"}", p.data, f->rsa_small);
    refused(f, &tok, "unknown key");
    /* The provider takes ES256 only. */
    cvx_buf_reset(&q);
    cvx_buf_printf(&q, "{\"iss\":\"https://es.example\",\"sub\":\"u2\",\"exp\":%ld}", now_s() + 60);
    TOKEN(rs, q.data, f->rsa);
    refused(f, &tok, "unsupported algorithm");

    const char *malformed[] = {"", "abc", "a.b", "a.b.c.d", "!!.??.##", "e30.e30.", "W10.e30.AAAA"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        cvx_buf_reset(&tok);
        cvx_buf_append_str(&tok, malformed[i]);
        refused(f, &tok, "malformed");
    }
    cvx_buf_reset(&tok);
    for (int i = 0; i < CVX_AUTH_MAX_TOKEN + 1; i++) cvx_buf_append_char(&tok, 'a');
    refused(f, &tok, "too large");
#undef TOKEN
    cvx_buf_free(&p);
    cvx_buf_free(&q);
    cvx_buf_free(&tok);
    cvx_buf_free(&id);
}

/* A token that verified is known by cvx_auth_lookup (no parse, no
 * signature) until its exp passes or the providers change; one that was
 * refused never is. */
static void test_token_cache(void **state) {
    fx_t *f = *state;
    cvx_buf_t p = {0}, tok = {0}, id = {0}, id2 = {0};
    rs_claims(&p, "\"name\":\"Cy\"");
    sign(&tok, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", p.data, f->rsa);
    int64_t exp = 0;
    cvx_err_t err;
    assert_false(cvx_auth_lookup(f->auth, tok.data, tok.len, &id, &exp));
    if (verify(f, &tok, &id, &err)) fail_msg("%s", err.msg);
    assert_true(cvx_auth_lookup(f->auth, tok.data, tok.len, &id2, &exp));
    assert_string_equal(id.data, id2.data);
    assert_true(exp > now_s());
    /* A flipped signature byte is another token: checked, and refused. */
    char was = tok.data[tok.len - 3];
    tok.data[tok.len - 3] = was == 'A' ? 'B' : 'A';
    assert_false(cvx_auth_lookup(f->auth, tok.data, tok.len, &id2, &exp));
    refused(f, &tok, "signature");
    assert_false(cvx_auth_lookup(f->auth, tok.data, tok.len, &id2, &exp));
    /* An expired one leaves (past the skew). */
    cvx_buf_t q = {0}, old = {0};
    cvx_buf_printf(&q, "{\"iss\":\"https://rs.example\",\"sub\":\"u1\",\"aud\":\"app-rs\",\"exp\":%ld}", now_s() - 29);
    sign(&old, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", q.data, f->rsa);
    cvx_buf_reset(&id);
    if (verify(f, &old, &id, &err)) fail_msg("%s", err.msg);
    sleep(2);
    cvx_buf_reset(&id2);
    assert_false(cvx_auth_lookup(f->auth, old.data, old.len, &id2, &exp));
    /* New providers: what the old ones accepted is checked again. */
    tok.data[tok.len - 3] = was; /* the good token again */
    assert_true(cvx_auth_lookup(f->auth, tok.data, tok.len, &id2, &exp));
    cvx_auth_t *a = f->auth;
    const char *none = "{\"abi\":1,\"providers\":[]}";
    cvx_buf_t desc = {0};
    cvx_auth_describe(a, &desc);
    cvx_buf_t rec = {0};
    cvx_buf_printf(&rec, "{\"abi\":1,\"providers\":%s}", desc.data);
    if (cvx_auth_set_providers(a, rec.data, rec.len, NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    assert_false(cvx_auth_lookup(a, tok.data, tok.len, &id2, &exp));
    if (cvx_auth_set_providers(a, none, strlen(none), NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    refused(f, &tok, "declares no auth provider");
    if (cvx_auth_set_providers(a, rec.data, rec.len, NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    if (verify(f, &tok, &id, &err)) fail_msg("%s", err.msg);
    cvx_buf_free(&rec);
    cvx_buf_free(&desc);
    cvx_buf_free(&q);
    cvx_buf_free(&old);
    cvx_buf_free(&p);
    cvx_buf_free(&tok);
    cvx_buf_free(&id);
    cvx_buf_free(&id2);
}

static void test_provider_records(void **state) {
    (void)state;
    cvx_auth_t *a;
    cvx_err_t err;
    assert_int_equal(cvx_auth_new(NULL, &a, &err), CVX_OK);
    /* No providers: a token is refused, saying why. */
    cvx_buf_t tok = {0}, id = {0}, desc = {0};
    cvx_buf_append_str(&tok, "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3giLCJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA");
    int64_t exp;
    assert_int_equal(cvx_auth_verify(a, tok.data, tok.len, &id, &exp, &err), CVX_E_AUTH);
    tu_assert_contains(err.msg, "declares no auth provider");
    /* A variable fills a field; while it is unset the provider is off,
     * and a token is told so. */
    const char *rec = "{\"abi\":1,\"providers\":[{\"domain\":{\"env\":\"ISS\"},\"applicationID\":\"app\"}]}";
    cvx_buf_t warn = {0};
    if (cvx_auth_set_providers(a, rec, strlen(rec), "{}", 2, &warn, &err)) fail_msg("%s", err.msg);
    tu_assert_contains(warn.data, "cvx env set ISS");
    assert_int_equal(cvx_auth_count(a), 0);
    assert_int_equal(cvx_auth_verify(a, tok.data, tok.len, &id, &exp, &err), CVX_E_AUTH);
    tu_assert_contains(err.msg, "auth provider 1 is off");
    cvx_buf_free(&warn);
    const char *env = "{\"ISS\":\"https://issuer.example\"}";
    if (cvx_auth_set_providers(a, rec, strlen(rec), env, strlen(env), NULL, &err)) fail_msg("%s", err.msg);
    cvx_auth_describe(a, &desc);
    assert_string_equal(desc.data, "[{\"domain\":\"https://issuer.example\",\"applicationID\":\"app\"}]");
    /* Refused records leave the providers as they were. */
    const char *bad[] = {
        "{\"abi\":1,\"providers\":[{\"domain\":\"http://issuer.example\",\"applicationID\":\"a\"}]}",
        "{\"abi\":1,\"providers\":[{\"domain\":\"https://x\"}]}",
        "{\"abi\":1,\"providers\":[{\"type\":\"customJwt\",\"issuer\":\"https://x\",\"jwks\":\"https://x/j\",\"algorithm\":\"HS256\"}]}",
        "{\"abi\":1,\"providers\":[{\"type\":\"oauth\",\"domain\":\"https://x\"}]}",
        "{\"abi\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cvx_auth_set_providers(a, bad[i], strlen(bad[i]), NULL, 0, NULL, &err), CVX_E_BAD_MODULE);
    assert_int_equal(cvx_auth_count(a), 1);
    /* Plain http is for this machine only, and only as its whole authority:
     * userinfo would send libcurl elsewhere. */
    const char *remote[] = {"http://localhost:80@evil.example/", "http://127.0.0.1:x@evil.example/",
                            "http://[::1]@evil.example/", "http://127.0.0.1.evil.example/", "http://127.0.0.1\\@evil.example/",
                            "http://localhost:80:90/", "http://127.0.0.1 .evil.example/", "https:///x"};
    for (size_t i = 0; i < sizeof remote / sizeof *remote; i++) {
        cvx_buf_t r = {0};
        cvx_buf_printf(&r, "{\"abi\":1,\"providers\":[{\"domain\":\"%s\",\"applicationID\":\"a\"}]}", remote[i]);
        if (cvx_auth_set_providers(a, r.data, r.len, NULL, 0, NULL, &err) != CVX_E_BAD_MODULE)
            fail_msg("%s was accepted as an issuer", remote[i]);
        cvx_buf_free(&r);
    }
    const char *local_ok[] = {"http://localhost:8080", "http://[::1]:9/x", "http://127.0.0.1/"};
    for (size_t i = 0; i < sizeof local_ok / sizeof *local_ok; i++) {
        cvx_buf_t r = {0};
        cvx_buf_printf(&r, "{\"abi\":1,\"providers\":[{\"domain\":\"%s\",\"applicationID\":\"a\"}]}", local_ok[i]);
        if (cvx_auth_set_providers(a, r.data, r.len, NULL, 0, NULL, &err)) fail_msg("%s: %s", local_ok[i], err.msg);
        cvx_buf_free(&r);
    }
    const char *local = "{\"abi\":1,\"providers\":[{\"domain\":\"http://127.0.0.1:9/\",\"applicationID\":\"a\"}]}";
    if (cvx_auth_set_providers(a, local, strlen(local), NULL, 0, NULL, &err)) fail_msg("%s", err.msg);
    /* Its keys cannot be fetched (nothing listens on port 9): refused, with why. */
    cvx_buf_reset(&tok);
    cvx_buf_t p = {0};
    cvx_buf_printf(&p, "{\"iss\":\"http://127.0.0.1:9\",\"sub\":\"1\",\"aud\":\"a\",\"exp\":%ld}", now_s() + 60);
    b64url(&tok, "{\"alg\":\"RS256\"}", 15);
    cvx_buf_append_char(&tok, '.');
    b64url(&tok, p.data, p.len);
    cvx_buf_append_str(&tok, ".AAAA");
    assert_int_equal(cvx_auth_verify(a, tok.data, tok.len, &id, &exp, &err), CVX_E_AUTH);
    tu_assert_contains(err.msg, "could not be fetched");
    cvx_buf_free(&p);
    cvx_buf_free(&tok);
    cvx_buf_free(&id);
    cvx_buf_free(&desc);
    cvx_auth_free(a);
}

static void test_acting_as(void **state) {
    (void)state;
    cvx_buf_t id = {0};
    cvx_err_t err;
    const char *attrs = "{\"subject\":\"u9\",\"issuer\":\"https://x\",\"name\":\"Bo\"}";
    if (cvx_auth_identity_from_attributes(attrs, strlen(attrs), &id, &err)) fail_msg("%s", err.msg);
    assert_string_equal(id.data, "{\"tokenIdentifier\":\"https://x|u9\",\"subject\":\"u9\",\"issuer\":\"https://x\","
                                 "\"name\":\"Bo\"}");
    cvx_buf_reset(&id);
    assert_int_equal(cvx_auth_identity_from_attributes("[1]", 3, &id, &err), CVX_E_INVALID_ARGUMENT);
    assert_int_equal(cvx_auth_identity_from_attributes("{\"subject\":1}", 13, &id, &err), CVX_E_INVALID_ARGUMENT);
    cvx_buf_free(&id);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rs256_identity),
        cmocka_unit_test(test_es256_identity),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_token_cache),
        cmocka_unit_test(test_provider_records),
        cmocka_unit_test(test_acting_as),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

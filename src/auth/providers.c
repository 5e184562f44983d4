/* The app's auth providers, their signing keys, and verifying a token.
 *
 * Keys are fetched on first use, not at deploy: a deploy must not fail or
 * wait because an issuer is slow, and a provider nobody signs in with
 * costs nothing. A token naming a key the cache lacks refetches its
 * provider's keys (issuers rotate keys, and publish the new one before
 * signing with it), at most once per refetch_ms, so random key ids cannot
 * make cvx hammer an issuer. A provider's fetch holds only that
 * provider's lock; its tokens wait for it, others' do not. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"

#define MAX_DOC_BYTES (1u << 20)

typedef struct {
    atomic_int refs;
    bool oidc;       /* {domain, applicationID}: keys found by discovery */
    char *issuer;    /* the domain, or customJwt's issuer */
    char *app_id;    /* NULL: any audience (customJwt only) */
    char *jwks;      /* customJwt: the JWKS URL or data: URI */
    cvx__alg_t alg;  /* customJwt: the one algorithm accepted */
    char *record;    /* resolved JSON: what describe shows, and what a
                        provider is the same as across deploys */
    /* Keys and the fetch state. Not held across a fetch: one thread
     * fetches (fetching), the others that need keys wait on cv for its
     * outcome instead of fetching again. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool fetching;
    uint64_t fetches;    /* fetches ended, for waiters to see one did */
    cvx__key_t *keys;
    size_t nkeys;
    uint64_t fetched_ns; /* monotonic time the last good fetch ended, 0 never */
    uint64_t tried_ns;   /* the last attempt ended */
} provider_t;

struct cvx_auth {
    cvx_auth_config_t cfg;
    pthread_mutex_t mu; /* the providers array (each provider has its own lock) */
    provider_t **providers;
    size_t n;
    uint64_t gen; /* bumped by every cvx_auth_set_providers */
    /* Tokens verified lately (tokens.c), so that a client sending the same
     * one with every HTTP call pays a hash, not a signature check, and its
     * cached query results can be answered on the event loop. */
    pthread_mutex_t tmu;
    cvx_cache_t tokens;
    /* Why providers of the record are off (a variable they name is not
     * set), for the message a refused token gets; "" when none is. */
    char off[400];
};

static void provider_release(provider_t *p) {
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    cvx_free(p->issuer);
    cvx_free(p->app_id);
    cvx_free(p->jwks);
    cvx_free(p->record);
    cvx__keys_free(p->keys, p->nkeys);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    cvx_free(p);
}

int cvx_auth_new(const cvx_auth_config_t *cfg, cvx_auth_t **out, cvx_err_t *err) {
    cvx_auth_t *a = cvx_calloc(1, sizeof *a);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (cfg) a->cfg = *cfg;
    if (!a->cfg.clock_skew_s) a->cfg.clock_skew_s = 30;
    if (!a->cfg.refetch_ms) a->cfg.refetch_ms = 1000;
    if (!a->cfg.keys_ttl_s) a->cfg.keys_ttl_s = 3600;
    if (!a->cfg.fetch_timeout_ms) a->cfg.fetch_timeout_ms = 10000;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->tmu, NULL);
    if (cvx_cache_init(&a->tokens, CVX__TOKEN_CACHE_BYTES)) {
        cvx_auth_free(a);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    *out = a;
    return CVX_OK;
}

static void release_all(provider_t **ps, size_t n) {
    for (size_t i = 0; i < n; i++) provider_release(ps[i]);
    cvx_free(ps);
}

void cvx_auth_free(cvx_auth_t *a) {
    if (!a) return;
    cvx__tokens_clear(a);
    cvx_cache_destroy(&a->tokens);
    pthread_mutex_destroy(&a->tmu);
    release_all(a->providers, a->n);
    pthread_mutex_destroy(&a->mu);
    cvx_free(a);
}

/* ---- the providers' record ----------------------------------------------------- */

/* Plain http only to this machine (a test issuer) unless allowed. The
 * authority must be exactly localhost, [::1] or 127.x.y.z with an optional
 * port: anything else (userinfo as in http://127.0.0.1@evil.example,
 * backslashes, escapes) would let libcurl reach another host in the
 * clear, where anyone on the path could swap the keys. */
static bool loopback_authority(const char *h, size_t n) {
    size_t host = n;
    const char *colon = NULL;
    if (n && h[0] == '[') {
        if (n < 5 || strncmp(h, "[::1]", 5)) return false;
        host = 5;
        if (n > 5) colon = h + 5;
    } else {
        colon = memchr(h, ':', n);
        if (colon) host = (size_t)(colon - h);
    }
    if (colon && (colon[0] != ':' || (size_t)(colon + 1 - h) >= n ||
                  strspn(colon + 1, "0123456789") < n - (size_t)(colon + 1 - h)))
        return false; /* a port is digits only */
    if (host == 9 && !strncmp(h, "localhost", 9)) return true;
    if (host == 5 && h[0] == '[') return true;
    if (host < 7 || strncmp(h, "127.", 4)) return false;
    int dots = 0;
    for (size_t i = 0; i < host; i++) {
        if (h[i] == '.') dots++;
        else if (h[i] < '0' || h[i] > '9') return false;
    }
    return dots == 3;
}

static bool url_allowed(const cvx_auth_t *a, const char *url) {
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '\\' || *c == 0x7f) return false;
    if (!strncmp(url, "https://", 8)) return url[8] != '\0' && url[8] != '/';
    if (strncmp(url, "http://", 7)) return false;
    if (a->cfg.allow_http) return url[7] != '\0';
    const char *h = url + 7;
    return loopback_authority(h, strcspn(h, "/?#"));
}

typedef struct {
    const cvx_value_t *env; /* object, or NULL */
    size_t index;           /* 1-based, for messages */
} resolve_t;

/* A provider's string field, or NULL when absent; {"env": NAME} reads the
 * deployment's variable. */
static int field_str(const resolve_t *r, const cvx_value_t *p, const char *name, const char **out, cvx_err_t *err) {
    *out = NULL;
    const cvx_value_t *v = cvx_obj_get_cstr(p, name);
    if (!v || v->type == CVX_T_NULL) return CVX_OK;
    if (v->type == CVX_T_STRING) {
        *out = v->u.str.ptr;
        return CVX_OK;
    }
    const cvx_value_t *var = v->type == CVX_T_OBJECT ? cvx_obj_get_cstr(v, "env") : NULL;
    if (!var || var->type != CVX_T_STRING)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: %s must be a string or {\"env\": NAME}", r->index,
                           name);
    const cvx_value_t *val = r->env ? cvx_obj_get_cstr(r->env, var->u.str.ptr) : NULL;
    if (!val || val->type != CVX_T_STRING)
        return cvx_err_set(err, CVX_E_NOT_FOUND,
                           "auth provider %zu is off: its %s comes from the environment variable %s, which is not "
                           "set (`cvx env set %s VALUE` turns it on)",
                           r->index, name, var->u.str.ptr, var->u.str.ptr);
    *out = val->u.str.ptr;
    return CVX_OK;
}

static void record_field(cvx_buf_t *b, const char *name, const char *v) {
    if (!v) return;
    if (b->len > 1) cvx_buf_append_char(b, ',');
    cvx_buf_append_json_string(b, name, strlen(name));
    cvx_buf_append_char(b, ':');
    cvx_buf_append_json_string(b, v, strlen(v));
}

static int provider_of(const cvx_auth_t *a, const resolve_t *r, const cvx_value_t *rec, provider_t **out,
                       cvx_err_t *err) {
    if (rec->type != CVX_T_OBJECT) return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu is not an object", r->index);
    const char *type, *domain, *issuer, *jwks, *alg, *app;
    int rc;
    if ((rc = field_str(r, rec, "type", &type, err)) || (rc = field_str(r, rec, "domain", &domain, err)) ||
        (rc = field_str(r, rec, "issuer", &issuer, err)) || (rc = field_str(r, rec, "jwks", &jwks, err)) ||
        (rc = field_str(r, rec, "algorithm", &alg, err)) || (rc = field_str(r, rec, "applicationID", &app, err)))
        return rc;
    bool custom = type && !strcmp(type, "customJwt");
    if (type && !custom)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: unknown type \"%.40s\" (cvx knows \"customJwt\", "
                           "and providers with a domain)", r->index, type);
    cvx__alg_t a_id = 0;
    if (custom) {
        if (!issuer || !jwks || !alg)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: a customJwt provider needs issuer, jwks and "
                               "algorithm", r->index);
        if (!strcmp(alg, "RS256")) a_id = CVX__ALG_RS256;
        else if (!strcmp(alg, "ES256")) a_id = CVX__ALG_ES256;
        else return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: algorithm %.20s is not RS256 or ES256",
                                r->index, alg);
        if (strncmp(jwks, "data:", 5) && !url_allowed(a, jwks))
            return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: jwks must be an https URL or a data: URI, "
                               "not %.200s", r->index, jwks);
    } else {
        if (!domain)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu has no domain (the OpenID Connect issuer's "
                               "URL) and is not {type: \"customJwt\"}", r->index);
        if (!app)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu (%.200s) has no applicationID: the audience "
                               "(aud) its tokens are issued for", r->index, domain);
        issuer = domain;
    }
    if (!url_allowed(a, issuer))
        return cvx_err_set(err, CVX_E_BAD_MODULE, "auth provider %zu: %.200s is not an https URL (plain http is "
                           "allowed only to this machine)", r->index, issuer);
    provider_t *p = cvx_calloc(1, sizeof *p);
    cvx_buf_t b = {0};
    cvx_buf_append_char(&b, '{');
    record_field(&b, custom ? "type" : NULL, custom ? "customJwt" : NULL);
    record_field(&b, custom ? "issuer" : "domain", issuer);
    record_field(&b, "jwks", custom ? jwks : NULL);
    record_field(&b, "algorithm", custom ? alg : NULL);
    record_field(&b, "applicationID", app);
    cvx_buf_append_char(&b, '}');
    if (!p || b.oom || !(p->issuer = cvx_strdup(issuer)) || (app && !(p->app_id = cvx_strdup(app))) ||
        (custom && !(p->jwks = cvx_strdup(jwks)))) {
        cvx_buf_free(&b);
        if (p) {
            p->refs = 1;
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->cv, NULL);
            provider_release(p);
        }
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    p->refs = 1;
    p->oidc = !custom;
    p->alg = a_id;
    p->record = cvx_buf_detach(&b, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    *out = p;
    return CVX_OK;
}

int cvx_auth_set_providers(cvx_auth_t *a, const char *record, size_t len, const char *env_json, size_t env_len,
                           cvx_buf_t *warnings, cvx_err_t *err) {
    char off[sizeof a->off] = "";
    cvx_arena_t *ar = cvx_arena_new(4096);
    if (!ar) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    provider_t **ps = NULL;
    size_t n = 0;
    int rc = CVX_OK;
    cvx_value_t *env = NULL, *rec = NULL;
    if (env_json && env_len && (cvx_json_parse(ar, env_json, env_len, &env, err) || env->type != CVX_T_OBJECT))
        env = NULL;
    if (record && len) {
        const cvx_value_t *list = NULL;
        if (cvx_json_parse(ar, record, len, &rec, err) == CVX_OK && rec->type == CVX_T_OBJECT)
            list = cvx_obj_get_cstr(rec, "providers");
        if (!list || list->type != CVX_T_ARRAY) {
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "the auth record has no \"providers\" array");
        } else if (list->u.arr.len && !(ps = cvx_calloc(list->u.arr.len, sizeof *ps))) {
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; rc == CVX_OK && i < list->u.arr.len; i++) {
            resolve_t r = {env, i + 1};
            rc = provider_of(a, &r, list->u.arr.items[i], &ps[n], err);
            /* A provider waiting for its variable is off, not an error:
             * an app (the `cvx init` one) deploys before its issuer is
             * chosen, and setting the variable turns it on. */
            if (rc == CVX_E_NOT_FOUND) {
                size_t used = strlen(off);
                snprintf(off + used, sizeof off - used, "%s%.300s", used ? "; " : "", err->msg);
                if (warnings) {
                    if (warnings->len) cvx_buf_append_char(warnings, '\n');
                    cvx_buf_append_str(warnings, err->msg);
                }
                rc = CVX_OK;
                continue;
            }
            if (rc) break;
            n++;
        }
    }
    cvx_arena_free(ar);
    if (rc) {
        release_all(ps, n);
        return rc;
    }
    pthread_mutex_lock(&a->mu);
    /* An unchanged provider keeps its fetched keys. */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < a->n; k++)
            if (!strcmp(ps[i]->record, a->providers[k]->record)) {
                provider_release(ps[i]);
                ps[i] = a->providers[k];
                atomic_fetch_add(&ps[i]->refs, 1);
                break;
            }
    provider_t **old = a->providers;
    size_t nold = a->n;
    a->providers = ps;
    a->n = n;
    a->gen++; /* tokens verified under the old providers count no more */
    memcpy(a->off, off, sizeof off);
    pthread_mutex_unlock(&a->mu);
    release_all(old, nold);
    return CVX_OK;
}

void cvx_auth_describe(cvx_auth_t *a, cvx_buf_t *out) {
    pthread_mutex_lock(&a->mu);
    cvx_buf_append_char(out, '[');
    for (size_t i = 0; i < a->n; i++) {
        if (i) cvx_buf_append_char(out, ',');
        cvx_buf_append_str(out, a->providers[i]->record);
    }
    cvx_buf_append_char(out, ']');
    pthread_mutex_unlock(&a->mu);
}

size_t cvx_auth_count(cvx_auth_t *a) {
    pthread_mutex_lock(&a->mu);
    size_t n = a->n;
    pthread_mutex_unlock(&a->mu);
    return n;
}

/* ---- fetching keys ------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
    cvx_buf_t *b = ctx;
    if (b->len + size * n > MAX_DOC_BYTES || cvx_buf_append(b, data, size * n)) return 0;
    return size * n;
}

static int http_get(const cvx_auth_t *a, const char *url, cvx_buf_t *body, cvx_err_t *err) {
    if (!url_allowed(a, url))
        return cvx_err_set(err, CVX_E_AUTH, "%.200s is not an https URL (plain http is allowed only to this machine)", url);
    int rc = cvx_curl_load(err);
    if (rc) return rc;
    CURL *c = curl_easy_init();
    if (!c) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, a->cfg.allow_http || strncmp(url, "https:", 6) ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, a->cfg.allow_http ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)a->cfg.fetch_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cvx/" CVX_VERSION);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        return cvx_err_set(err, CVX_E_AUTH, "fetching %.200s failed: %s", url,
                           cc == CURLE_WRITE_ERROR ? "the document is over 1 MiB" : curl_easy_strerror(cc));
    if (status != 200) return cvx_err_set(err, CVX_E_AUTH, "fetching %.200s failed: HTTP status %ld", url, status);
    return CVX_OK;
}

static int hexval(char ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* data:[<type>][;base64],<data> -> its bytes. */
static int data_uri(const char *uri, cvx_buf_t *out, cvx_err_t *err) {
    const char *comma = strchr(uri, ',');
    if (!comma) return cvx_err_set(err, CVX_E_AUTH, "the jwks data: URI has no ','");
    size_t meta = (size_t)(comma - uri);
    const char *data = comma + 1;
    if (meta >= 7 && !strncmp(comma - 7, ";base64", 7)) {
        int rc = cvx_base64_decode(out, data, strlen(data), err);
        return rc == CVX_E_INVALID_VALUE ? (err->code = CVX_E_AUTH) : rc;
    }
    for (const char *s = data; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            cvx_buf_append_char(out, (char)(hexval(s[1]) * 16 + hexval(s[2])));
            s += 2;
        } else {
            cvx_buf_append_char(out, *s);
        }
    }
    return out->oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
}

/* The JWKS of p: customJwt's URL or data, or an OpenID Connect issuer's
 * discovery document's jwks_uri. */
static int fetch_jwks(const cvx_auth_t *a, const provider_t *p, cvx_buf_t *doc, cvx_err_t *err) {
    if (p->jwks) return strncmp(p->jwks, "data:", 5) ? http_get(a, p->jwks, doc, err) : data_uri(p->jwks, doc, err);
    cvx_buf_t url = {0}, disc = {0};
    size_t ilen = strlen(p->issuer);
    while (ilen && p->issuer[ilen - 1] == '/') ilen--;
    cvx_buf_append(&url, p->issuer, ilen);
    cvx_buf_append_str(&url, "/.well-known/openid-configuration");
    int rc = url.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : http_get(a, url.data, &disc, err);
    cvx_arena_t *ar = rc ? NULL : cvx_arena_new(4096);
    if (!rc && !ar) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        cvx_value_t *d;
        const cvx_value_t *ju = NULL;
        if (cvx_json_parse(ar, disc.data ? disc.data : "", disc.len, &d, err) == CVX_OK && d->type == CVX_T_OBJECT)
            ju = cvx_obj_get_cstr(d, "jwks_uri");
        if (!ju || ju->type != CVX_T_STRING)
            rc = cvx_err_set(err, CVX_E_AUTH, "%.200s is not an OpenID Connect discovery document with a jwks_uri", url.data);
        else rc = http_get(a, ju->u.str.ptr, doc, err);
    }
    cvx_arena_free(ar);
    cvx_buf_free(&url);
    cvx_buf_free(&disc);
    return rc;
}

/* Brings p's keys up to date: fetches them, or, when another thread is
 * already fetching, waits for that fetch's outcome (at most as long as a
 * fetch may take). Under p->mu, which is released while waiting or
 * fetching, so tokens of this provider that need no fetch go on. On
 * failure the keys it had stay, and the reason goes to the log. */
static void refresh_keys(const cvx_auth_t *a, provider_t *p) {
    uint64_t limit_ns = (uint64_t)a->cfg.fetch_timeout_ms * 2000000u + 1000000000u; /* discovery + JWKS */
    cvx_blocking(true);
    if (p->fetching) {
        uint64_t seen = p->fetches;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + limit_ns;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        while (p->fetching && p->fetches == seen)
            if (pthread_cond_timedwait(&p->cv, &p->mu, &until)) break;
        cvx_blocking(false);
        return;
    }
    p->fetching = true;
    pthread_mutex_unlock(&p->mu);
    cvx_buf_t doc = {0};
    cvx_err_t err;
    cvx_err_clear(&err);
    cvx__key_t *keys = NULL;
    size_t n = 0;
    int rc = fetch_jwks(a, p, &doc, &err);
    if (!rc) rc = cvx__jwks_parse(doc.data ? doc.data : "", doc.len, &keys, &n, &err);
    cvx_buf_free(&doc);
    if (rc) fprintf(stderr, "cvx: auth: the signing keys of %s could not be fetched: %s\n", p->issuer, err.msg);
    pthread_mutex_lock(&p->mu);
    /* Stamped at the end: a fetch slower than refetch_ms is not followed
     * at once by another. */
    p->tried_ns = cvx_monotonic_ns();
    if (rc) {
        cvx__keys_free(keys, n);
    } else {
        cvx__keys_free(p->keys, p->nkeys);
        p->keys = keys;
        p->nkeys = n;
        p->fetched_ns = p->tried_ns;
    }
    p->fetching = false;
    p->fetches++;
    pthread_cond_broadcast(&p->cv);
    cvx_blocking(false);
}

typedef enum { KEY_NONE, KEY_BAD_SIG, KEY_OK } key_result_t;

/* Tries the keys that may have signed t: the one its kid names, or, with
 * no kid, every key of its algorithm. Under p->mu. */
static key_result_t try_keys(const provider_t *p, const cvx__jwt_t *t) {
    key_result_t r = KEY_NONE;
    for (size_t i = 0; i < p->nkeys; i++) {
        const cvx__key_t *k = &p->keys[i];
        if (k->alg != t->alg || (t->kid && (!k->kid || strcmp(k->kid, t->kid)))) continue;
        if (cvx__jwt_verify_sig(t, k->key)) return KEY_OK;
        r = KEY_BAD_SIG;
    }
    return r;
}

static int check_signature(const cvx_auth_t *a, provider_t *p, const cvx__jwt_t *t, cvx_err_t *err) {
    pthread_mutex_lock(&p->mu);
    uint64_t now = cvx_monotonic_ns();
    /* A fetch in flight is joined; a new one starts at most once per
     * refetch_ms. */
    bool may_fetch = p->fetching || !p->tried_ns || now - p->tried_ns >= (uint64_t)a->cfg.refetch_ms * 1000000u;
    bool old = !p->fetched_ns || now - p->fetched_ns >= (uint64_t)a->cfg.keys_ttl_s * 1000000000u;
    if (old && may_fetch) refresh_keys(a, p);
    key_result_t r = try_keys(p, t);
    /* An unknown key: the issuer may have rotated to one published since. */
    if (r == KEY_NONE && !old && may_fetch) {
        refresh_keys(a, p);
        r = try_keys(p, t);
    }
    int rc = CVX_OK;
    if (r == KEY_BAD_SIG) {
        rc = cvx_err_set(err, CVX_E_AUTH, "the token's signature does not verify with the key of %s", p->issuer);
    } else if (r == KEY_NONE && !p->fetched_ns) {
        /* Why is for the operator (the log): a URL or a network error is
         * nothing to tell whoever sent a token. */
        rc = cvx_err_set(err, CVX_E_AUTH, "the signing keys of %s could not be fetched (the server's log says why)",
                         p->issuer);
    } else if (r == KEY_NONE) {
        rc = cvx_err_set(err, CVX_E_AUTH, "unknown key: %s publishes no %s key%s%.100s%s", p->issuer,
                         t->alg == CVX__ALG_RS256 ? "RS256" : "ES256", t->kid ? " with kid \"" : "",
                         t->kid ? t->kid : "", t->kid ? "\"" : "");
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- verifying ----------------------------------------------------------------- */

/* Issuers match with or without one trailing slash (Convex's domains are
 * written both ways). */
static bool same_issuer(const char *x, const char *y) {
    size_t nx = strlen(x), ny = strlen(y);
    if (nx && x[nx - 1] == '/') nx--;
    if (ny && y[ny - 1] == '/') ny--;
    return nx == ny && !memcmp(x, y, nx);
}

static bool audience_has(const cvx_value_t *aud, const char *app) {
    if (!aud) return false;
    if (aud->type == CVX_T_STRING) return !strcmp(aud->u.str.ptr, app);
    if (aud->type != CVX_T_ARRAY) return false;
    for (size_t i = 0; i < aud->u.arr.len; i++)
        if (aud->u.arr.items[i]->type == CVX_T_STRING && !strcmp(aud->u.arr.items[i]->u.str.ptr, app)) return true;
    return false;
}

static int number_claim(const cvx_value_t *claims, const char *name, bool required, double *out, cvx_err_t *err) {
    const cvx_value_t *v = cvx_obj_get_cstr(claims, name);
    if (!v) return required ? cvx_err_set(err, CVX_E_AUTH, "the token has no expiry (exp)") : (*out = 0, CVX_OK);
    if (v->type == CVX_T_FLOAT64) *out = v->u.f;
    else if (v->type == CVX_T_INT64) *out = (double)v->u.i;
    else return cvx_err_set(err, CVX_E_AUTH, "malformed token: its %s is not a number", name);
    /* Seconds since 1970 that a double and an int64 both hold exactly. */
    if (!isfinite(*out) || *out < 0 || *out > 9007199254740992.0)
        return cvx_err_set(err, CVX_E_AUTH, "malformed token: its %s is out of range", name);
    return CVX_OK;
}

static int check_times(const cvx_auth_t *a, const cvx_value_t *claims, int64_t *expires, cvx_err_t *err) {
    double now = (double)cvx_now_ns() / 1e9, skew = a->cfg.clock_skew_s, exp, nbf, iat;
    int rc;
    if ((rc = number_claim(claims, "exp", true, &exp, err)) || (rc = number_claim(claims, "nbf", false, &nbf, err)) ||
        (rc = number_claim(claims, "iat", false, &iat, err)))
        return rc;
    if (now > exp + skew) return cvx_err_set(err, CVX_E_AUTH, "the token expired %.0f s ago", now - exp);
    /* What the caller keeps it for: as long as it is accepted. */
    exp += skew;
    if (nbf && now + skew < nbf) return cvx_err_set(err, CVX_E_AUTH, "the token is not valid yet (nbf is %.0f s from now)", nbf - now);
    if (iat && now + skew < iat)
        return cvx_err_set(err, CVX_E_AUTH, "the token is not valid yet: it was issued %.0f s in the future (iat)", iat - now);
    *expires = (int64_t)exp;
    return CVX_OK;
}

/* The provider t was issued by, retained; NULL with err set when none. */
static provider_t *provider_for(cvx_auth_t *a, const cvx__jwt_t *t, cvx_err_t *err) {
    const cvx_value_t *iss = cvx_obj_get_cstr(t->claims, "iss"), *aud = cvx_obj_get_cstr(t->claims, "aud");
    if (!iss || iss->type != CVX_T_STRING) {
        cvx_err_set(err, CVX_E_AUTH, "the token has no issuer (iss)");
        return NULL;
    }
    provider_t *found = NULL;
    bool issuer_known = false;
    char off[sizeof a->off];
    pthread_mutex_lock(&a->mu);
    size_t n = a->n;
    memcpy(off, a->off, sizeof off);
    for (size_t i = 0; i < a->n && !found; i++) {
        provider_t *p = a->providers[i];
        if (!same_issuer(p->issuer, iss->u.str.ptr)) continue;
        issuer_known = true;
        if (!p->app_id || audience_has(aud, p->app_id)) {
            found = p;
            atomic_fetch_add(&p->refs, 1);
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (found) return found;
    if (!issuer_known && off[0])
        cvx_err_set(err, CVX_E_AUTH, "the token's issuer %.200s matches no auth provider of this app: %s", iss->u.str.ptr,
                    off);
    else if (!n)
        cvx_err_set(err, CVX_E_AUTH, "this deployment accepts no user tokens: the app declares no auth provider "
                    "(convex/auth.config.ts, or auth_config! in Rust)");
    else if (!issuer_known)
        cvx_err_set(err, CVX_E_AUTH, "the token's issuer %.200s matches no auth provider of this app", iss->u.str.ptr);
    else
        cvx_err_set(err, CVX_E_AUTH, "the token's audience (aud) is not the applicationID of the app's provider for %.200s",
                    iss->u.str.ptr);
    return NULL;
}

uint64_t cvx__auth_gen(cvx_auth_t *a) {
    pthread_mutex_lock(&a->mu);
    uint64_t g = a->gen;
    pthread_mutex_unlock(&a->mu);
    return g;
}


int cvx_auth_verify(cvx_auth_t *a, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                    cvx_err_t *err) {
    if (cvx_auth_lookup(a, token, len, identity, expires)) return CVX_OK;
    uint64_t gen = cvx__auth_gen(a);
    cvx_arena_t *ar = cvx_arena_new(2048);
    if (!ar) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx__jwt_t t;
    provider_t *p = NULL;
    int rc = cvx__jwt_parse(ar, token, len, &t, err);
    if (rc == CVX_OK && !(p = provider_for(a, &t, err))) rc = err->code;
    if (rc == CVX_OK && p->alg && p->alg != t.alg)
        rc = cvx_err_set(err, CVX_E_AUTH, "unsupported algorithm: the provider for %s takes %s tokens", p->issuer,
                         p->alg == CVX__ALG_RS256 ? "RS256" : "ES256");
    if (rc == CVX_OK) rc = check_times(a, t.claims, expires, err);
    if (rc == CVX_OK) rc = check_signature(a, p, &t, err);
    size_t start = identity->len;
    if (rc == CVX_OK) rc = cvx__identity_of_claims(t.claims, identity, err);
    if (rc == CVX_OK) cvx__tokens_put(a, token, len, gen, *expires, identity->data + start, identity->len - start);
    provider_release(p);
    cvx__jwt_free(&t);
    cvx_arena_free(ar);
    return rc;
}

pthread_mutex_t *cvx__tokens_lock(cvx_auth_t *a) { return &a->tmu; }
cvx_cache_t *cvx__tokens_cache(cvx_auth_t *a) { return &a->tokens; }

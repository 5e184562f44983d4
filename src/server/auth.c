/* Who calls: the Authorization header of HTTP calls, the sync engine's
 * token check, and the deployed app's auth providers.
 *
 *   Authorization: Bearer <jwt>                     a user (auth/auth.h)
 *   Authorization: Convex <admin key>               the operator
 *   Authorization: Convex <admin key>:<base64 JSON> the operator acting as
 *                                                   that user (what convex's
 *                                                   setAdminAuth(key, identity) sends)
 *
 * A token is checked on the worker that runs the call, never on the event
 * loop: the issuer's keys may have to be fetched first. */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "abi/abi.h"

bool cvx__admin_key_is(const cvx_server_t *s, const char *p, size_t n) {
    size_t klen = strlen(s->admin_key);
    if (n != klen) return false;
    unsigned char diff = 0;
    for (size_t k = 0; k < klen; k++) diff |= (unsigned char)(p[k] ^ s->admin_key[k]);
    return diff == 0;
}

/* "Convex <key>" or "Convex <key>:<identity>": the key's part, and the
 * identity (base64 JSON, which has no ':') after the last ':' if the
 * whole value is not the key (a configured key may hold ':'). */
static cvx_slice_t admin_part(const cvx_server_t *s, const cvx__req_t *req, cvx_slice_t *identity) {
    cvx_slice_t v = cvx__req_header(req, "authorization");
    cvx_slice_t none = {0};
    if (identity) *identity = none;
    if (v.len < 7 || strncasecmp(v.ptr, "Convex ", 7) != 0) return none;
    cvx_slice_t key = {v.ptr + 7, v.len - 7};
    if (cvx__admin_key_is(s, key.ptr, key.len)) return key;
    const char *colon = NULL;
    for (size_t i = key.len; i > 0 && !colon; i--)
        if (key.ptr[i - 1] == ':') colon = key.ptr + i - 1;
    if (colon) {
        if (identity) *identity = (cvx_slice_t){colon + 1, key.len - (size_t)(colon + 1 - key.ptr)};
        key.len = (size_t)(colon - key.ptr);
    }
    return key;
}

bool cvx__is_admin(cvx_server_t *s, const cvx__req_t *req) {
    cvx_slice_t key = admin_part(s, req, NULL);
    return key.ptr && cvx__admin_key_is(s, key.ptr, key.len);
}

int cvx__job_auth(cvx_server_t *s, cvx__req_t *req, cvx__job_t *j) {
    cvx_slice_t v = cvx__req_header(req, "authorization");
    if (v.len >= 7 && !strncasecmp(v.ptr, "Bearer ", 7)) {
        /* A token verified lately is known here, without a worker: its
         * cached query results can be answered on the loop. */
        cvx_buf_t id = {0};
        int64_t expires;
        if (cvx_auth_lookup(s->auth, v.ptr + 7, v.len - 7, &id, &expires)) {
            j->identity = cvx_buf_detach(&id, &j->identity_len);
            return 0;
        }
        cvx_buf_free(&id);
        j->token = cvx_strndup(v.ptr + 7, v.len - 7);
        j->token_len = v.len - 7;
        if (!j->token) {
            cvx__send_error(req, 500, "OutOfMemory", "out of memory");
            return -1;
        }
        return 0;
    }
    cvx_slice_t as;
    admin_part(s, req, &as);
    if (!as.ptr || !j->admin) return 0;
    cvx_buf_t json = {0}, id = {0};
    cvx_err_t err;
    int rc = cvx_base64_decode(&json, as.ptr, as.len, &err);
    if (rc == CVX_OK) rc = cvx_auth_identity_from_attributes(json.data ? json.data : "", json.len, &id, &err);
    cvx_buf_free(&json);
    if (rc) {
        char msg[CVX_ERR_MSG_MAX + 80];
        snprintf(msg, sizeof msg, "the identity after the admin key must be base64 of a JSON object: %s", err.msg);
        cvx__send_error(req, 400, "BadAuthHeader", msg);
        cvx_buf_free(&id);
        return -1;
    }
    j->identity = cvx_buf_detach(&id, &j->identity_len);
    return 0;
}

bool cvx__job_verify(cvx__job_t *j, bool refuse) {
    if (!j->token) return true;
    cvx_buf_t id = {0};
    int64_t expires;
    cvx_err_t err;
    int rc = cvx_auth_verify(j->srv->auth, j->token, j->token_len, &id, &expires, &err);
    explicit_bzero(j->token, j->token_len);
    cvx_free(j->token);
    j->token = NULL;
    if (rc == CVX_OK) {
        j->identity = cvx_buf_detach(&id, &j->identity_len);
        return true;
    }
    cvx_buf_free(&id);
    if (!refuse) return true; /* anonymous, as if it had sent none */
    j->status = 401;
    cvx_buf_reset(&j->body);
    cvx__error_json(&j->body, "Unauthenticated", err.msg);
    return false;
}

int cvx__verify_token(void *ctx, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                      cvx_err_t *err) {
    cvx_server_t *s = ctx;
    return cvx_auth_verify(s->auth, token, len, identity, expires, err);
}

/* ---- providers ----------------------------------------------------------------- */

static int read_all_env(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    (void)arg;
    return cvx_abi_env_read(txn, NULL, 0, out, err);
}

int cvx__auth_apply(cvx_server_t *s, cvx_app_t *app, cvx_auth_t *into, cvx_buf_t *warnings, cvx_err_t *err) {
    size_t len = 0;
    const char *record = app ? cvx_app_auth(app, &len) : NULL;
    cvx_buf_t env = {0};
    int rc = CVX_OK;
    /* Only a record that names variables needs them read. */
    if (record && strstr(record, "\"env\"")) rc = cvx_exec_with_read_txn(s->rt, read_all_env, NULL, &env, err);
    if (rc == CVX_OK) rc = cvx_auth_set_providers(into ? into : s->auth, record, len, env.data, env.len, warnings, err);
    explicit_bzero(env.data ? env.data : (char *)&env, env.data ? env.len : 0);
    cvx_buf_free(&env);
    return rc;
}

void cvx__auth_refresh(cvx_server_t *s) {
    /* Serialised with deploys (and other refreshes): one that read the
     * old app or old variables must not install its providers after a
     * newer one did. */
    pthread_mutex_lock(&s->deploy_mu);
    cvx_app_t *app = cvx_runtime_app(s->rt);
    cvx_err_t err;
    cvx_buf_t off = {0};
    if (cvx__auth_apply(s, app, NULL, &off, &err))
        fprintf(s->log, "cvx: warning: the app's auth providers were not changed: %s\n", err.msg);
    else if (off.len)
        fprintf(s->log, "cvx: warning: %s\n", off.data);
    cvx_buf_free(&off);
    cvx_app_release(app);
    pthread_mutex_unlock(&s->deploy_mu);
}

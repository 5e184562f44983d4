/* File storage (docs/abi.md "Actions, scheduling, file storage") and the
 * scheduler's host functions.
 *
 * A file is a blob on disk named by its SHA-256 (so identical files share
 * one blob) plus a document in the system table _storage whose id is the
 * storage id. The blob is written and fsynced before the document commits:
 * a committed document always has its bytes; a crash can only leave an
 * unreferenced blob behind. Upload URLs carry an HMAC-signed expiry, so the
 * server keeps no state for them. */
#include "abi/abi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UPLOAD_URL_TTL_MS (60ull * 60 * 1000)

static const cvx_index_def_t scheduled_indexes[] = {
    {"by_state_time", 2, (const char *const[]){"state.kind", "scheduledTime"}},
};
static const cvx_index_def_t cron_indexes[] = {
    {"by_name", 1, (const char *const[]){"name"}},
};
static const cvx_index_def_t env_indexes[] = {
    {"by_name", 1, (const char *const[]){"name"}},
};
static const cvx_table_def_t system_tables[] = {
    {CVX_SCHEDULED_TABLE, 1, scheduled_indexes, NULL},
    {CVX_STORAGE_TABLE, 0, NULL, NULL},
    {CVX_CRONS_TABLE, 1, cron_indexes, NULL},
    {CVX_ENV_TABLE, 1, env_indexes, NULL},
};

size_t cvx_abi_system_tables(const cvx_table_def_t **out) {
    *out = system_tables;
    return CVX_ARRAY_LEN(system_tables);
}

/* ---- upload tokens ------------------------------------------------------------- */

static void sign(const cvx_storage_config_t *cfg, uint64_t expires, char hex[65]) {
    uint8_t mac[32];
    unsigned int len = sizeof mac;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "upload:%llu", (unsigned long long)expires);
    HMAC(EVP_sha256(), cfg->secret, (int)cfg->secret_len, (const unsigned char *)msg, (size_t)n, mac, &len);
    cvx_hex(mac, 32, hex);
}

void cvx_storage_token(const cvx_storage_config_t *cfg, uint64_t expires_ms, char out[96]) {
    char hex[65];
    sign(cfg, expires_ms, hex);
    snprintf(out, 96, "%llu.%s", (unsigned long long)expires_ms, hex);
}

bool cvx_storage_token_valid(const cvx_storage_config_t *cfg, const char *token, uint64_t now_ms) {
    if (!cfg || !cfg->secret) return false;
    char *dot;
    unsigned long long expires = strtoull(token, &dot, 10);
    if (*dot != '.' || expires < now_ms) return false;
    char hex[65];
    sign(cfg, expires, hex);
    if (strlen(dot + 1) != 64) return false;
    unsigned char diff = 0;
    for (int i = 0; i < 64; i++) diff |= (unsigned char)(hex[i] ^ dot[1 + i]);
    return diff == 0;
}

/* ---- blobs ------------------------------------------------------------------------- */

static int write_blob(const cvx_storage_config_t *cfg, const char *hash, const void *data, size_t len, cvx_err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", cfg->dir, hash);
    struct stat st;
    if (stat(path, &st) == 0 && (size_t)st.st_size == len) return CVX_OK; /* same content already stored */
    /* Blobs are the apps' data: the user's alone, like the database. */
    int rc = cvx_mkdirs_private(cfg->dir, err);
    if (!rc) rc = cvx_write_file_private(path, data, len, err);
    return rc;
}

/* The _storage document of a blob. */
static int insert_doc(cvx_txn_t *txn, const char *hex, uint64_t size, const char *content_type, cvx_buf_t *out,
                      cvx_err_t *err) {
    int rc = CVX_OK;
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *doc = a ? cvx_object(a, 3) : NULL;
    cvx_value_t *sha = doc ? cvx_string(a, hex, 64) : NULL;
    cvx_value_t *sz = sha ? cvx_float64(a, (double)size) : NULL;
    cvx_value_t *ct = sz && content_type ? cvx_string(a, content_type, strlen(content_type)) : NULL;
    if (!sz || (content_type && !ct) || cvx_obj_set(a, doc, "sha256", 6, sha) || cvx_obj_set(a, doc, "size", 4, sz) ||
        (ct && cvx_obj_set(a, doc, "contentType", 11, ct)))
        rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = cvx_txn_system_insert(txn, CVX_STORAGE_TABLE, doc, out, err);
    cvx_arena_free(a);
    return rc;
}

int cvx_storage_put(const cvx_storage_config_t *cfg, cvx_txn_t *txn, const void *data, size_t len,
                    const char *content_type, cvx_buf_t *out, cvx_err_t *err) {
    if (!cfg || !cfg->dir) return cvx_err_set(err, CVX_E_UNSUPPORTED, "file storage is not configured on this server");
    uint8_t h[32];
    char hex[65];
    cvx_sha256(data, len, h);
    cvx_hex(h, 32, hex);
    int rc = write_blob(cfg, hex, data, len, err);
    if (rc) return rc;
    return insert_doc(txn, hex, len, content_type, out, err);
}

int cvx_storage_adopt(const cvx_storage_config_t *cfg, cvx_txn_t *txn, const char *tmp_path, const char *content_type,
                      cvx_buf_t *out, cvx_err_t *err) {
    if (!cfg || !cfg->dir) return cvx_err_set(err, CVX_E_UNSUPPORTED, "file storage is not configured on this server");
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot open the upload %s: %s", tmp_path, strerror(errno));
    /* Hash in chunks: uploads can be far larger than we want in memory. */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *chunk = cvx_malloc(1u << 20);
    uint64_t size = 0;
    int rc = md && chunk && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    while (!rc) {
        ssize_t n = read(fd, chunk, 1u << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = cvx_err_set(err, CVX_E_IO, "cannot read the upload: %s", strerror(errno));
        if (n <= 0) break;
        EVP_DigestUpdate(md, chunk, (size_t)n);
        size += (uint64_t)n;
    }
    uint8_t h[32];
    char hex[65];
    unsigned int hlen = 0;
    if (!rc) EVP_DigestFinal_ex(md, h, &hlen);
    if (!rc && fsync(fd) != 0) rc = cvx_err_set(err, CVX_E_IO, "cannot fsync the upload: %s", strerror(errno));
    close(fd);
    EVP_MD_CTX_free(md);
    cvx_free(chunk);
    if (rc) return rc;
    cvx_hex(h, 32, hex);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", cfg->dir, hex);
    /* Same directory, so the rename is atomic: the blob is whole or absent. */
    if (rename(tmp_path, path) != 0)
        return cvx_err_set(err, CVX_E_IO, "cannot move the upload into storage: %s", strerror(errno));
    return insert_doc(txn, hex, size, content_type, out, err);
}

int cvx_storage_blob_path(const cvx_storage_config_t *cfg, const char *doc_json, size_t len, cvx_buf_t *path,
                          cvx_buf_t *content_type, uint64_t *size, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *doc = NULL;
    int rc = a ? cvx_json_parse(a, doc_json, len, &doc, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        const cvx_value_t *sha = doc->type == CVX_T_OBJECT ? cvx_obj_get_cstr(doc, "sha256") : NULL;
        const cvx_value_t *sz = sha ? cvx_obj_get_cstr(doc, "size") : NULL;
        const cvx_value_t *ct = sha ? cvx_obj_get_cstr(doc, "contentType") : NULL;
        if (!sha || sha->type != CVX_T_STRING || sha->u.str.len != 64 || strspn(sha->u.str.ptr, "0123456789abcdef") != 64 ||
            !sz || sz->type != CVX_T_FLOAT64)
            rc = cvx_err_set(err, CVX_E_NOT_FOUND, "not a stored file");
        else {
            cvx_buf_printf(path, "%s/%s", cfg->dir, sha->u.str.ptr);
            if (content_type && ct && ct->type == CVX_T_STRING) cvx_buf_append(content_type, ct->u.str.ptr, ct->u.str.len);
            *size = (uint64_t)sz->u.f;
        }
    }
    cvx_arena_free(a);
    return rc;
}

/* ---- host functions --------------------------------------------------------------- */

static int64_t done(cvx__call_t *c, int rc, const cvx_err_t *err) {
    if (rc) return cvx__err_pending(c, rc, err->msg);
    return c->pending.oom ? cvx__err_pending(c, CVX_E_NOMEM, "out of memory") : (int64_t)c->pending.len;
}

static const char *str(const cvx_value_t *o, const char *k) {
    const cvx_value_t *v = cvx_obj_get_cstr(o, k);
    return v && v->type == CVX_T_STRING ? v->u.str.ptr : NULL;
}

/* Runs op in the call's transaction (mutations) or a transaction of its own
 * (actions, through the exec layer). */
static int in_txn(cvx__call_t *c, int (*op)(cvx_txn_t *, void *, cvx_buf_t *, cvx_err_t *), void *arg, cvx_err_t *err) {
    cvx_buf_reset(&c->pending);
    if (c->cfg->kind == CVX_KIND_MUTATION && c->cfg->txn) return op(c->cfg->txn, arg, &c->pending, err);
    if (c->cfg->kind == CVX_KIND_ACTION && c->cfg->services && c->cfg->services->with_txn)
        return c->cfg->services->with_txn(c->cfg->services->ctx, op, arg, &c->pending, err);
    return cvx_err_set(err, CVX_E_FORBIDDEN, "this is only available in mutations and actions");
}

typedef struct {
    const char *path;
    const cvx_value_t *args;
    double at_ms;
    const char *id;
} sched_t;

static int op_schedule(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    sched_t *sc = arg;
    cvx_arena_t *a = cvx_arena_new(2048);
    cvx_value_t *doc = a ? cvx_object(a, 4) : NULL, *args = doc ? cvx_array(a, 1) : NULL;
    cvx_value_t *state = args ? cvx_object(a, 1) : NULL;
    int rc = state ? CVX_OK : CVX_E_NOMEM;
    if (!rc && (cvx_arr_push(a, args, sc->args ? cvx_value_clone(a, sc->args) : cvx_object(a, 0)) ||
                cvx_obj_set(a, state, "kind", 4, cvx_string(a, "pending", 7)) ||
                cvx_obj_set(a, doc, "name", 4, cvx_string(a, sc->path, strlen(sc->path))) ||
                cvx_obj_set(a, doc, "args", 4, args) || cvx_obj_set(a, doc, "scheduledTime", 13, cvx_float64(a, sc->at_ms)) ||
                cvx_obj_set(a, doc, "state", 5, state)))
        rc = CVX_E_NOMEM;
    if (rc) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    else rc = cvx_txn_system_insert(txn, CVX_SCHEDULED_TABLE, doc, out, err);
    cvx_arena_free(a);
    return rc;
}

int cvx__h_schedule(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_schedule", req);
    sched_t sc = {.path = str(req, "path"), .args = cvx_obj_get_cstr(req, "args")};
    const cvx_value_t *at = cvx_obj_get_cstr(req, "atMs");
    const char *colon = sc.path ? strchr(sc.path, ':') : NULL;
    if (!colon || colon == sc.path || !colon[1] || strlen(sc.path) > 256 || (sc.args && sc.args->type != CVX_T_OBJECT) ||
        !at || at->type != CVX_T_FLOAT64 || !(at->u.f >= 0 && at->u.f < 1e15)) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "schedule needs \"path\" (module:function), \"args\" (object) and \"atMs\" (ms since the epoch)");
        return 0;
    }
    sc.at_ms = at->u.f;
    cvx_err_t err;
    int rc = in_txn(c, op_schedule, &sc, &err);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

static int op_cancel(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    sched_t *sc = arg;
    cvx_buf_t cur = {0};
    int rc = cvx_txn_get(txn, sc->id, strlen(sc->id), &cur, err);
    cvx_arena_t *a = cvx_arena_new(2048);
    cvx_value_t *doc = NULL;
    if (!rc && !a) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = cvx_json_parse(a, cur.data ? cur.data : "null", cur.len ? cur.len : 4, &doc, err);
    if (!rc && doc->type != CVX_T_OBJECT) rc = cvx_err_set(err, CVX_E_NOT_FOUND, "no scheduled function %s", sc->id);
    if (!rc) {
        const cvx_value_t *state = cvx_obj_get_cstr(doc, "state");
        const char *kind = state && state->type == CVX_T_OBJECT ? str(state, "kind") : NULL;
        /* Only a job that has not started can be canceled; for the others
         * cancel is a no-op, like Convex's. */
        if (kind && (!strcmp(kind, "pending") || !strcmp(kind, "inProgress"))) {
            cvx_value_t *patch = cvx_object(a, 2), *ns = cvx_object(a, 1);
            if (!patch || !ns || cvx_obj_set(a, ns, "kind", 4, cvx_string(a, "canceled", 8)) ||
                cvx_obj_set(a, patch, "state", 5, ns) ||
                cvx_obj_set(a, patch, "completedTime", 13, cvx_float64(a, (double)(cvx_now_ns() / 1000000))))
                rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            else rc = cvx_txn_system_patch(txn, sc->id, strlen(sc->id), patch, err);
        }
    }
    if (!rc) cvx_buf_append_str(out, "null");
    cvx_buf_free(&cur);
    cvx_arena_free(a);
    return rc;
}

int cvx__h_schedule_cancel(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_schedule_cancel", req);
    sched_t sc = {.id = str(req, "id")};
    if (!sc.id) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "cancel needs \"id\"");
        return 0;
    }
    cvx_err_t err;
    int rc = in_txn(c, op_cancel, &sc, &err);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

typedef struct {
    const cvx_storage_config_t *cfg;
    const uint8_t *data;
    size_t len;
    const char *content_type;
    const char *id;
} file_t;

static int op_store(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    file_t *f = arg;
    return cvx_storage_put(f->cfg, txn, f->data, f->len, f->content_type, out, err);
}

/* (meta_ptr, meta_len, data_ptr, data_len) -> i64 */
int cvx__h_storage_store(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_storage_store", meta);
    if (c->cfg->kind != CVX_KIND_ACTION) {
        r[0].i64 = cvx__err_pending(c, CVX_E_FORBIDDEN, "storage.store is only available in actions (mutations use upload URLs)");
        return 0;
    }
    uint8_t *data = cvx_instance_mem(inst, a[2].i32, a[3].i32, "__convex_storage_store");
    if (!data) return 1;
    /* The guest may run again only after this returns, but the data must
     * not move while we hash and write it: copy is unnecessary because
     * nothing else runs in this instance meanwhile. */
    file_t f = {c->cfg->storage, data, (size_t)a[3].i32, str(meta, "contentType"), NULL};
    cvx_err_t err;
    int rc = in_txn(c, op_store, &f, &err);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

/* Looks up a _storage document: in the call's transaction, or (actions)
 * at the latest snapshot. */
static int storage_doc(cvx__call_t *c, const char *id, cvx_buf_t *out, cvx_err_t *err) {
    cvx_id_t parsed;
    int rc = cvx_id_parse(id, strlen(id), &parsed, err);
    if (rc) return rc;
    if (c->cfg->txn) return cvx_txn_get(c->cfg->txn, id, strlen(id), out, err);
    if (c->cfg->services && c->cfg->services->get_document)
        return c->cfg->services->get_document(c->cfg->services->ctx, id, strlen(id), out, err);
    return cvx_err_set(err, CVX_E_FORBIDDEN, "the database is not available here");
}

int cvx__h_storage_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_storage_get", req);
    const char *id = str(req, "storageId");
    if (c->cfg->kind != CVX_KIND_ACTION) {
        r[0].i64 = cvx__err_pending(c, CVX_E_FORBIDDEN, "storage.get is only available in actions (queries use storage URLs)");
        return 0;
    }
    if (!id || !c->cfg->storage || !c->cfg->storage->dir) {
        r[0].i64 = cvx__err_pending(c, id ? CVX_E_UNSUPPORTED : CVX_E_INVALID_ARGUMENT, id ? "file storage is not configured" : "request needs \"storageId\"");
        return 0;
    }
    cvx_buf_t doc = {0}, path = {0};
    cvx_err_t err;
    uint64_t size = 0;
    int rc = storage_doc(c, id, &doc, &err);
    if (!rc && (!doc.len || !strcmp(doc.data, "null"))) rc = cvx_err_set(&err, CVX_E_NOT_FOUND, "no file %s", id);
    if (!rc) rc = cvx_storage_blob_path(c->cfg->storage, doc.data, doc.len, &path, NULL, &size, &err);
    cvx_buf_reset(&c->pending);
    if (!rc) rc = cvx_read_file(path.data, &c->pending, &err);
    if (!rc && c->pending.len != size) rc = cvx_err_set(&err, CVX_E_STORE, "file %s is damaged on disk", id);
    cvx_buf_free(&doc);
    cvx_buf_free(&path);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

int cvx__h_storage_get_url(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_storage_get_url", req);
    const char *id = str(req, "storageId");
    if (!id) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs \"storageId\"");
        return 0;
    }
    cvx_buf_t doc = {0};
    cvx_err_t err;
    int rc = storage_doc(c, id, &doc, &err);
    cvx_buf_reset(&c->pending);
    if (!rc) {
        if (!doc.len || !strcmp(doc.data, "null") || !c->cfg->storage || !c->cfg->storage->base_url) {
            cvx_buf_append_str(&c->pending, "null");
        } else {
            cvx_buf_t url = {0};
            cvx_buf_printf(&url, "%s/api/storage/%s", c->cfg->storage->base_url, id);
            cvx_buf_append_json_string(&c->pending, url.data, url.len);
            cvx_buf_free(&url);
        }
    }
    cvx_buf_free(&doc);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

/* {"storageId"} -> {"storageId", "sha256", "size", "contentType"} or null
 * (storage.getMetadata). Convex reports the digest in base64. */
int cvx__h_storage_metadata(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_storage_metadata", req);
    const char *id = str(req, "storageId");
    if (!id) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs \"storageId\"");
        return 0;
    }
    cvx_buf_t doc = {0};
    cvx_err_t err;
    int rc = storage_doc(c, id, &doc, &err);
    cvx_buf_reset(&c->pending);
    cvx_value_t *v = NULL;
    if (!rc && doc.len && strcmp(doc.data, "null") != 0) {
        cvx_arena_reset(c->arena);
        rc = cvx_json_parse(c->arena, doc.data, doc.len, &v, &err);
    }
    if (!rc && !v) cvx_buf_append_str(&c->pending, "null");
    else if (!rc) {
        const char *hex = str(v, "sha256");
        const cvx_value_t *size = cvx_obj_get_cstr(v, "size");
        const char *type = str(v, "contentType");
        uint8_t digest[32];
        cvx_buf_t b64 = {0};
        size_t dn = 0;
        for (; hex && dn < 32 && hex[2 * dn] && hex[2 * dn + 1]; dn++) {
            unsigned x;
            if (sscanf(hex + 2 * dn, "%2x", &x) != 1) break;
            digest[dn] = (uint8_t)x;
        }
        cvx_base64_encode(&b64, digest, dn);
        cvx_buf_append_str(&c->pending, "{\"storageId\":");
        cvx_buf_append_json_string(&c->pending, id, strlen(id));
        cvx_buf_append_str(&c->pending, ",\"sha256\":");
        cvx_buf_append_json_string(&c->pending, b64.data ? b64.data : "", b64.len);
        cvx_buf_free(&b64);
        cvx_buf_printf(&c->pending, ",\"size\":%.0f,\"contentType\":", size && size->type == CVX_T_FLOAT64 ? size->u.f : 0);
        if (type) cvx_buf_append_json_string(&c->pending, type, strlen(type));
        else cvx_buf_append_str(&c->pending, "null");
        cvx_buf_append_char(&c->pending, '}');
    }
    cvx_buf_free(&doc);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

static int op_delete(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    file_t *f = arg;
    /* Only a _storage document: the id of another system document (a
     * scheduled job) must not be deletable through storage. */
    cvx_buf_t doc = {0}, path = {0};
    uint64_t size = 0;
    cvx_err_t ignored;
    int rc = cvx_txn_get(txn, f->id, strlen(f->id), &doc, err);
    if (!rc && (!doc.len || !strcmp(doc.data, "null") ||
                cvx_storage_blob_path(f->cfg, doc.data, doc.len, &path, NULL, &size, &ignored)))
        rc = cvx_err_set(err, CVX_E_NOT_FOUND, "no file %s", f->id);
    if (!rc) rc = cvx_txn_system_delete(txn, f->id, strlen(f->id), err);
    if (!rc) cvx_buf_append_str(out, "null");
    cvx_buf_free(&doc);
    cvx_buf_free(&path);
    return rc;
}

int cvx__h_storage_delete(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    CVX__REQUEST("__convex_storage_delete", req);
    file_t f = {.cfg = c->cfg->storage, .id = str(req, "storageId")};
    cvx_id_t parsed;
    cvx_err_t err;
    if (!f.id) {
        r[0].i64 = cvx__err_pending(c, CVX_E_INVALID_ARGUMENT, "request needs \"storageId\"");
        return 0;
    }
    int idrc = cvx_id_parse(f.id, strlen(f.id), &parsed, &err);
    if (idrc) { /* a malformed id: INVALID_VALUE, as for documents */
        r[0].i64 = cvx__err_pending(c, idrc, err.msg);
        return 0;
    }
    if (!f.cfg || !f.cfg->dir) {
        r[0].i64 = cvx__err_pending(c, CVX_E_UNSUPPORTED, "file storage is not configured");
        return 0;
    }
    int rc = in_txn(c, op_delete, &f, &err);
    r[0].i64 = done(c, rc, &err);
    return 0;
}

int cvx__h_storage_upload_url(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = CALL(inst);
    if (!cvx_instance_mem(inst, a[0].i32, a[1].i32, "__convex_storage_generate_upload_url")) return 1;
    if (c->cfg->kind == CVX_KIND_QUERY) {
        r[0].i64 = cvx__err_pending(c, CVX_E_FORBIDDEN, "upload URLs are generated in mutations and actions");
        return 0;
    }
    const cvx_storage_config_t *cfg = c->cfg->storage;
    if (!cfg || !cfg->dir || !cfg->base_url || !cfg->secret) {
        r[0].i64 = cvx__err_pending(c, CVX_E_UNSUPPORTED, "file storage is not configured on this server");
        return 0;
    }
    char token[96];
    /* Queries and mutations see frozen time; the expiry only needs to be
     * in the future relative to it. */
    cvx_storage_token(cfg, (uint64_t)cvx__now_ms(c) + UPLOAD_URL_TTL_MS, token);
    cvx_buf_t url = {0};
    cvx_buf_printf(&url, "%s/api/storage/upload?token=%s", cfg->base_url, token);
    cvx_buf_reset(&c->pending);
    cvx_buf_append_json_string(&c->pending, url.data, url.len);
    cvx_buf_free(&url);
    cvx_err_t err = {0};
    r[0].i64 = done(c, CVX_OK, &err);
    return 0;
}

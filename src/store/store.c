/* Opening and closing the store, its configuration defaults, statistics,
 * the document read through the hot-document cache, and the commit and
 * durability listeners.
 *
 * The rest of the generic layer sits beside it: the commit path and the
 * syncer thread in commit.c, schema (index) changes in schema.c, the test
 * fault hooks around the backend in faulty.c (store_int.h has the map). */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* A commit listener (cvx_store_listen: cb) or a durability listener
 * (cvx_store_listen_durable: durable). */
struct listener {
    listener_t *next;
    int handle;
    cvx_commit_cb cb;
    void (*durable)(void *ctx);
    void *ctx;
};

void cvx_store_config_default(cvx_store_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_docs_read = 32000;
    cfg->max_bytes_read = 16u << 20;
    cfg->max_docs_written = 16000;
    cfg->max_bytes_written = 16u << 20;
    cfg->read_connections = 4;
}

static int load_table(void *ctx, uint32_t number, const char *name) {
    return cvx__catalog_add_table(ctx, name, strlen(name), number, 0, 0);
}

static int load_index(void *ctx, const cvx__index_row_t *row) {
    cvx__catalog_t *c = ctx;
    cvx_arena_t *a = cvx_arena_new(1024);
    if (!a) return CVX_E_NOMEM;
    cvx_value_t *fields = NULL;
    cvx_err_t err;
    int rc = cvx_json_parse(a, row->fields_json, strlen(row->fields_json), &fields, &err);
    if (!rc && fields->type != CVX_T_ARRAY) rc = CVX_E_STORE;
    const char *names[16];
    size_t n = 0;
    for (size_t i = 0; !rc && i < fields->u.arr.len && i < 16; i++)
        if (fields->u.arr.items[i]->type == CVX_T_STRING) names[n++] = fields->u.arr.items[i]->u.str.ptr;
    if (!rc) rc = cvx__catalog_add_index(c, row->table, row->id, row->name, names, n);
    cvx_arena_free(a);
    return rc;
}

int cvx_store_open(const char *dir, const cvx_store_config_t *cfg, cvx_store_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_store_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_store_config_default(&s->cfg);
    if (cfg) {
        s->cfg = *cfg;
        cvx_store_config_t d;
        cvx_store_config_default(&d);
        if (!s->cfg.max_docs_read) s->cfg.max_docs_read = d.max_docs_read;
        if (!s->cfg.max_bytes_read) s->cfg.max_bytes_read = d.max_bytes_read;
        if (!s->cfg.max_docs_written) s->cfg.max_docs_written = d.max_docs_written;
        if (!s->cfg.max_bytes_written) s->cfg.max_bytes_written = d.max_bytes_written;
    }
    s->be = &cvx__sqlite_backend;
    pthread_mutex_init(&s->catalog_mu, NULL);
    pthread_mutex_init(&s->commit_mu, NULL);
    pthread_mutex_init(&s->group_mu, NULL);
    pthread_mutex_init(&s->listen_mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_mutex_init(&s->pub_mu, NULL);
    pthread_cond_init(&s->pub_cv, NULL);
    pthread_mutex_init(&s->hook_mu, NULL);
    cvx__hot_init(&s->hot);
    s->dir = cvx_strdup(dir);
    /* The data directory is the user's alone (0700): the database holds
     * every app's data. */
    int rc = s->dir ? cvx_mkdirs_private(dir, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = s->be->open(dir, &s->cfg, &s->be_state, err);
    cvx__catalog_t *c = rc ? NULL : cvx_calloc(1, sizeof *c);
    if (!rc && !c) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        atomic_init(&c->refs, 1);
        c->next_table = CVX_FIRST_USER_TABLE;
        c->next_index = 1;
        rc = s->be->load_catalog(s->be_state, load_table, load_index, c, err);
        if (rc && !err->msg[0]) cvx_err_set(err, rc, "cannot load the catalog of %s", dir);
        s->catalog = c;
    }
    if (rc) {
        cvx_store_close(s);
        return rc;
    }
    atomic_init(&s->next_table, c->next_table);
    atomic_init(&s->next_index, c->next_index);
    s->last_ts = s->be->max_ts(s->be_state);
    atomic_init(&s->latest, s->last_ts);
    atomic_init(&s->released, s->last_ts);
    atomic_init(&s->written, s->last_ts);
    atomic_init(&s->durable, s->last_ts);
    s->log_horizon = s->last_ts;
    if (!s->cfg.no_doc_cache &&
        (cvx__doccache_new(s->cfg.doc_cache_bytes ? s->cfg.doc_cache_bytes : 32u << 20, s->last_ts, &s->docs) ||
         cvx__rangecache_new(s->cfg.range_cache_bytes ? s->cfg.range_cache_bytes : 16u << 20, s->last_ts,
                             &s->ranges))) {
        cvx_store_close(s);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    atomic_init(&s->last_creation_ms, (double)(s->last_ts / 1000) / 1000.0);
    if (cvx__store_syncer_start(s)) {
        cvx_store_close(s);
        return cvx_err_set(err, CVX_E_INTERNAL, "cannot start the store's sync thread");
    }
    *out = s;
    return CVX_OK;
}

void cvx_store_close(cvx_store_t *s) {
    if (!s) return;
    cvx__store_syncer_stop(s); /* it finishes what is queued first */
    if (s->be_state) s->be->close(s->be_state);
    cvx__doccache_free(s->docs);
    cvx__rangecache_free(s->ranges);
    cvx__catalog_release(s->catalog);
    cvx__store_log_free(s);
    while (s->listeners) {
        listener_t *n = s->listeners->next;
        cvx_free(s->listeners);
        s->listeners = n;
    }
    while (s->durable_listeners) {
        listener_t *n = s->durable_listeners->next;
        cvx_free(s->durable_listeners);
        s->durable_listeners = n;
    }
    pthread_mutex_destroy(&s->catalog_mu);
    pthread_mutex_destroy(&s->commit_mu);
    pthread_mutex_destroy(&s->group_mu);
    pthread_mutex_destroy(&s->listen_mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    pthread_mutex_destroy(&s->pub_mu);
    pthread_cond_destroy(&s->pub_cv);
    pthread_mutex_destroy(&s->hook_mu);
    cvx__hot_destroy(&s->hot);
    cvx_free(s->dir);
    cvx_free(s);
}

uint64_t cvx_store_latest_ts(cvx_store_t *s) { return atomic_load(&s->latest); }

void cvx_store_stats(cvx_store_t *s, cvx_store_stats_t *out) {
    out->commits = atomic_load(&s->commits);
    out->conflicts = atomic_load(&s->conflicts);
    out->docs_read = atomic_load(&s->docs_read);
    out->docs_written = atomic_load(&s->docs_written);
    out->groups = atomic_load(&s->groups);
    out->group_ns = atomic_load(&s->group_ns);
    out->syncs = atomic_load(&s->syncs);
    out->sync_ns = atomic_load(&s->sync_ns);
    out->doc_cache_hits = out->doc_cache_misses = 0;
    out->doc_cache_entries = out->doc_cache_bytes = 0;
    if (s->docs)
        cvx__doccache_stats(s->docs, &out->doc_cache_hits, &out->doc_cache_misses, &out->doc_cache_entries,
                            &out->doc_cache_bytes);
    out->range_cache_hits = out->range_cache_misses = 0;
    out->range_cache_entries = out->range_cache_bytes = 0;
    if (s->ranges)
        cvx__rangecache_stats(s->ranges, &out->range_cache_hits, &out->range_cache_misses, &out->range_cache_entries,
                              &out->range_cache_bytes);
}

int cvx__store_get(cvx_txn_t *t, const uint8_t id[16], bool *found, bool *deleted, uint32_t *table, cvx_buf_t *value,
                   cvx_err_t *err) {
    cvx_store_t *s = t->s;
    uint64_t at = t->ts;
    if (s->docs && cvx__doccache_get(s->docs, id, at, deleted, table, value)) {
        *found = true;
        return CVX_OK;
    }
    size_t before = value->len;
    void *reader;
    int rc = cvx__txn_reader(t, &reader, err);
    if (!rc) rc = s->be->get(reader, id, at, found, deleted, table, value, err);
    if (!rc && *found && s->docs)
        cvx__doccache_fill(s->docs, id, at, *deleted, *table, value->data ? value->data + before : "",
                           value->len - before);
    return rc;
}

/* Both kinds of listener live in a list under their own mutex, which
 * their calls hold too: once list_remove returns, the listener is not
 * running and never will. */
static int list_add(pthread_mutex_t *mu, listener_t **head, int *next_handle, listener_t *l) {
    pthread_mutex_lock(mu);
    l->handle = ++*next_handle;
    l->next = *head;
    *head = l;
    pthread_mutex_unlock(mu);
    return l->handle;
}

static void list_remove(pthread_mutex_t *mu, listener_t **head, int handle) {
    pthread_mutex_lock(mu);
    for (listener_t **p = head; *p; p = &(*p)->next) {
        if ((*p)->handle == handle) {
            listener_t *l = *p;
            *p = l->next;
            cvx_free(l);
            break;
        }
    }
    pthread_mutex_unlock(mu);
}

int cvx_store_listen(cvx_store_t *s, cvx_commit_cb cb, void *ctx) {
    listener_t *l = cvx_calloc(1, sizeof *l);
    if (!l) return -1;
    l->cb = cb;
    l->ctx = ctx;
    return list_add(&s->listen_mu, &s->listeners, &s->next_listener, l);
}

void cvx_store_unlisten(cvx_store_t *s, int handle) { list_remove(&s->listen_mu, &s->listeners, handle); }

int cvx_store_listen_durable(cvx_store_t *s, void (*cb)(void *ctx), void *ctx) {
    listener_t *l = cvx_calloc(1, sizeof *l);
    if (!l) return -1;
    l->durable = cb;
    l->ctx = ctx;
    return list_add(&s->hook_mu, &s->durable_listeners, &s->next_durable, l);
}

void cvx_store_unlisten_durable(cvx_store_t *s, int handle) {
    list_remove(&s->hook_mu, &s->durable_listeners, handle);
}

void cvx__store_durable_notify(cvx_store_t *s) {
    pthread_mutex_lock(&s->hook_mu);
    for (listener_t *l = s->durable_listeners; l; l = l->next) l->durable(l->ctx);
    pthread_mutex_unlock(&s->hook_mu);
}

/* Tells the listeners about a published commit (under pub_mu, so in ts
 * order). Out of memory, the keys go in pieces of 64 with the same ts
 * rather than not at all. */
void cvx__store_notify(cvx_store_t *s, uint64_t ts, const cvx__keyset_t *ks) {
    cvx_written_key_t small[64];
    cvx_written_key_t *keys = ks->n <= 64 ? small : cvx_malloc(ks->n * sizeof *keys);
    size_t chunk = keys ? CVX_MAX(ks->n, (size_t)64) : 64;
    if (!keys) keys = small;
    pthread_mutex_lock(&s->listen_mu);
    size_t k = 0;
    do {
        size_t m = CVX_MIN(chunk, ks->n - k);
        cvx__keyset_slice(ks, k, m, keys);
        cvx_commit_info_t info = {ts, keys, m};
        for (listener_t *l = s->listeners; l; l = l->next) l->cb(l->ctx, &info);
        k += m;
    } while (k < ks->n);
    pthread_mutex_unlock(&s->listen_mu);
    if (keys != small) cvx_free(keys);
}

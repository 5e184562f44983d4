/* Transactions: a snapshot, a read set, and (for mutations) a private set of
 * pending writes that the transaction reads back before they commit.
 *
 * Every write first reads the document it touches, so the document's by_id
 * key is in the read set and a concurrent write to it is a conflict at
 * commit. Pending writes are kept per document (the last state wins) with
 * the state at the snapshot, which commit needs to compute the index keys
 * that change. */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

int cvx_txn_begin(cvx_store_t *s, cvx_txn_mode_t mode, uint64_t ts, cvx_txn_t **out, cvx_err_t *err) {
    *out = NULL;
    uint64_t latest = cvx_store_latest_ts(s);
    if (ts > latest)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "timestamp %llu is in the future (latest is %llu)",
                           (unsigned long long)ts, (unsigned long long)latest);
    cvx_txn_t *t = cvx_calloc(1, sizeof *t);
    if (!t) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    t->s = s;
    t->mode = mode;
    /* A write transaction starts at the newest written commit, durable
     * or not: a mutation after a commit in flight reads its writes instead
     * of conflicting with it, and its own commit, one group later, can
     * only be durable after it. Whatever it answers waits for that (commit,
     * or cvx_store_wait_durable). */
    t->ts = ts ? ts : mode == CVX_TXN_WRITE ? atomic_load(&s->written) : latest;
    t->arena = cvx_arena_new(16384);
    if (!t->arena) {
        cvx_free(t);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    t->catalog = cvx__catalog_acquire(s);
    *out = t;
    return CVX_OK;
}

uint64_t cvx_txn_snapshot_ts(const cvx_txn_t *t) { return t->ts; }

int cvx__txn_reader(cvx_txn_t *t, void **reader, cvx_err_t *err) {
    if (!t->reader) {
        int rc = t->s->be->reader_acquire(t->s->be_state, &t->reader, err);
        if (rc) return rc;
    }
    *reader = t->reader;
    return CVX_OK;
}

const cvx__catalog_t *cvx__txn_catalog(const cvx_txn_t *t) { return t->own_catalog ? t->own_catalog : t->catalog; }

static void readset_clear(struct cvx_readset *r) {
    for (size_t i = 0; i < r->n; i++) {
        cvx_buf_free(&r->ranges[i].lo);
        cvx_buf_free(&r->ranges[i].hi);
    }
    cvx_free(r->ranges);
    r->ranges = NULL;
    r->n = 0;
}

void cvx_txn_abort(cvx_txn_t *t) {
    if (!t) return;
    cvx__hot_release(t);
    if (t->reader) t->s->be->reader_release(t->s->be_state, t->reader);
    cvx__catalog_release(t->catalog);
    cvx__catalog_release(t->own_catalog);
    readset_clear(&t->reads);
    for (size_t i = 0; i < t->npending; i++) {
        cvx_free(t->pending[i].old_json);
        cvx_free(t->pending[i].new_json);
    }
    cvx_free(t->pending);
    cvx_free(t->slots);
    cvx_free(t->request_key);
    cvx_free(t->request_result);
    cvx_arena_free(t->arena);
    cvx_free(t);
}

int cvx__txn_read_range(cvx_txn_t *t, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                        size_t hi_len, bool hi_inf, uint32_t stripe) {
    /* Consecutive reads of the same range (a loop of gets) add nothing. */
    if (t->reads.n > 0) {
        cvx__range_t *last = &t->reads.ranges[t->reads.n - 1];
        if (last->index_id == index_id && last->hi_inf == hi_inf && last->lo.len == lo_len &&
            last->hi.len == hi_len && (lo_len == 0 || memcmp(last->lo.data, lo, lo_len) == 0) &&
            (hi_len == 0 || memcmp(last->hi.data, hi, hi_len) == 0))
            return CVX_OK;
    }
    if ((t->reads.n & (t->reads.n - 1)) == 0) {
        size_t cap = t->reads.n ? t->reads.n * 2 : 4;
        cvx__range_t *r = cvx_realloc(t->reads.ranges, cap * sizeof *r);
        if (!r) return CVX_E_NOMEM;
        t->reads.ranges = r;
    }
    cvx__range_t *r = &t->reads.ranges[t->reads.n];
    memset(r, 0, sizeof *r);
    r->index_id = index_id;
    r->hi_inf = hi_inf;
    r->stripe = stripe;
    t->reads.n++;
    if (cvx_buf_append(&r->lo, lo, lo_len) || cvx_buf_append(&r->hi, hi, hi_len)) return CVX_E_NOMEM;
    return CVX_OK;
}

/* A point read of one key: [key, key ‖ 0x00), recorded before the read
 * (and locked first, if hot). */
static int read_point(cvx_txn_t *t, uint64_t index_id, const cvx_buf_t *key) {
    cvx_buf_t hi = {0};
    cvx_buf_append(&hi, key->data, key->len);
    cvx_buf_append_char(&hi, '\0');
    uint32_t stripe = hi.oom ? 0
                              : cvx__hot_before_read(t, index_id, (const uint8_t *)key->data, key->len,
                                                     (const uint8_t *)hi.data, hi.len, false);
    int rc = hi.oom ? CVX_E_NOMEM
                    : cvx__txn_read_range(t, index_id, (const uint8_t *)key->data, key->len, (const uint8_t *)hi.data,
                                          hi.len, false, stripe);
    cvx_buf_free(&hi);
    return rc;
}

static int read_table_name(cvx_txn_t *t, const char *name, size_t len) {
    cvx_buf_t key = {0};
    int rc = cvx__id_key(name, len, &key); /* a string key, same encoding */
    if (!rc) rc = read_point(t, CVX__TABLES_INDEX, &key);
    cvx_buf_free(&key);
    return rc;
}

static size_t slot_of(const uint8_t id[16], size_t nslots) {
    uint64_t h;
    memcpy(&h, id, sizeof h); /* ids are random: their bytes are a hash */
    return (size_t)(h * 0x9E3779B97F4A7C15ull) & (nslots - 1);
}

cvx__pending_t *cvx__txn_pending(const cvx_txn_t *t, const uint8_t id[16]) {
    if (!t->nslots) return NULL;
    for (size_t i = slot_of(id, t->nslots);; i = (i + 1) & (t->nslots - 1)) {
        uint32_t v = t->slots[i];
        if (v == 0) return NULL;
        if (memcmp(t->pending[v - 1].id, id, 16) == 0) return &t->pending[v - 1];
    }
}

static int rehash(cvx_txn_t *t, size_t nslots) {
    uint32_t *slots = cvx_calloc(nslots, sizeof *slots);
    if (!slots) return CVX_E_NOMEM;
    for (size_t p = 0; p < t->npending; p++) {
        size_t i = slot_of(t->pending[p].id, nslots);
        while (slots[i]) i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)p + 1;
    }
    cvx_free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return CVX_OK;
}

static cvx__pending_t *pending_add(cvx_txn_t *t, const uint8_t id[16]) {
    if (t->npending == t->cap_pending) {
        size_t cap = t->cap_pending ? t->cap_pending * 2 : 8;
        cvx__pending_t *p = cvx_realloc(t->pending, cap * sizeof *p);
        if (!p) return NULL;
        t->pending = p;
        t->cap_pending = cap;
    }
    if ((t->npending + 1) * 2 > t->nslots && rehash(t, t->nslots ? t->nslots * 2 : 16)) return NULL;
    cvx__pending_t *p = &t->pending[t->npending];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, 16);
    size_t i = slot_of(id, t->nslots);
    while (t->slots[i]) i = (i + 1) & (t->nslots - 1);
    t->slots[i] = (uint32_t)++t->npending;
    return p;
}

int cvx__txn_count_read(cvx_txn_t *t, size_t bytes, cvx_err_t *err) {
    t->docs_read++;
    t->bytes_read += bytes;
    atomic_fetch_add(&t->s->docs_read, 1);
    if (t->unlimited) return CVX_OK;
    if (t->docs_read > t->s->cfg.max_docs_read)
        return cvx_err_set(err, CVX_E_LIMIT,
                           "transaction read more than %llu documents (limit of documents read per function call)",
                           (unsigned long long)t->s->cfg.max_docs_read);
    if (t->bytes_read > t->s->cfg.max_bytes_read)
        return cvx_err_set(err, CVX_E_LIMIT, "transaction read more than %llu bytes (limit of bytes read per function call)",
                           (unsigned long long)t->s->cfg.max_bytes_read);
    return CVX_OK;
}

static int count_write(cvx_txn_t *t, size_t bytes, cvx_err_t *err) {
    t->docs_written++;
    t->bytes_written += bytes;
    if (t->docs_written > t->s->cfg.max_docs_written)
        return cvx_err_set(err, CVX_E_LIMIT,
                           "transaction wrote more than %llu documents (limit of documents written per mutation)",
                           (unsigned long long)t->s->cfg.max_docs_written);
    if (t->bytes_written > t->s->cfg.max_bytes_written)
        return cvx_err_set(err, CVX_E_LIMIT, "transaction wrote more than %llu bytes (limit of bytes written per mutation)",
                           (unsigned long long)t->s->cfg.max_bytes_written);
    return CVX_OK;
}

int cvx__txn_load(cvx_txn_t *t, const uint8_t id[16], uint32_t table, const char **json, size_t *len, cvx_buf_t *tmp,
                  cvx_err_t *err) {
    *json = NULL;
    *len = 0;
    cvx__pending_t *p = cvx__txn_pending(t, id);
    if (p) {
        if (!p->deleted) {
            *json = p->new_json;
            *len = p->new_len;
        }
        return CVX_OK;
    }
    bool found = false, deleted = false;
    uint32_t stored_table = 0;
    cvx_buf_reset(tmp);
    int rc = cvx__store_get(t, id, &found, &deleted, &stored_table, tmp, err);
    if (rc) return rc;
    if (found && !deleted && stored_table == table) {
        *json = tmp->data;
        *len = tmp->len;
    }
    return CVX_OK;
}

/* Parses an id string, finds its table and records the by_id point read.
 * *table_out NULL when the id's table does not exist. */
static int resolve_id(cvx_txn_t *t, const char *id, size_t id_len, cvx_id_t *parsed, const cvx__table_t **table_out,
                      cvx_err_t *err) {
    *table_out = NULL;
    int rc = cvx_id_parse(id, id_len, parsed, err);
    if (rc) return rc;
    const cvx__table_t *tbl = cvx__catalog_table_by_number(cvx__txn_catalog(t), parsed->table);
    if (!tbl) return CVX_OK;
    cvx_buf_t key = {0};
    rc = cvx__id_key(id, id_len, &key);
    if (!rc) rc = read_point(t, tbl->indexes[0].id, &key);
    cvx_buf_free(&key);
    if (rc) return cvx_err_set(err, rc, "out of memory");
    *table_out = tbl;
    return CVX_OK;
}

int cvx_txn_get(cvx_txn_t *t, const char *id, size_t id_len, cvx_buf_t *out, cvx_err_t *err) {
    cvx_id_t parsed;
    const cvx__table_t *tbl;
    int rc = resolve_id(t, id, id_len, &parsed, &tbl, err);
    if (rc) return rc;
    if (!tbl) return cvx_buf_append_str(out, "null") ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
    cvx_buf_t tmp = {0};
    const char *json;
    size_t len;
    rc = cvx__txn_load(t, parsed.internal, parsed.table, &json, &len, &tmp, err);
    if (!rc && json) rc = cvx__txn_count_read(t, len, err);
    if (!rc) {
        if (json) cvx_buf_append(out, json, len);
        else cvx_buf_append_str(out, "null");
        if (out->oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    cvx_buf_free(&tmp);
    return rc;
}

int cvx_txn_id_table(cvx_txn_t *t, const char *id, size_t id_len, const char **table, cvx_err_t *err) {
    cvx_id_t parsed;
    *table = NULL;
    int rc = cvx_id_parse(id, id_len, &parsed, err);
    if (rc) return rc;
    const cvx__table_t *tbl = cvx__catalog_table_by_number(cvx__txn_catalog(t), parsed.table);
    *table = tbl ? tbl->name : NULL;
    return CVX_OK;
}

const char *cvx_txn_table_of(void *txn, const char *id, size_t id_len) {
    const char *table;
    cvx_err_t ignored;
    return cvx_txn_id_table(txn, id, id_len, &table, &ignored) == CVX_OK ? table : NULL;
}

void cvx_txn_set_schema(cvx_txn_t *t, const cvx_table_def_t *tables, size_t ntables) {
    t->schema = tables;
    t->nschema = ntables;
}

/* A written document against its table's schema, without its system
 * fields (a schema describes what the app writes). */
static int check_schema(cvx_txn_t *t, uint32_t table, const cvx_value_t *doc, cvx_err_t *err) {
    const cvx__table_t *tbl = cvx__catalog_table_by_number(cvx__txn_catalog(t), table);
    if (!tbl || tbl->name[0] == '_') return CVX_OK;
    const cvx_validator_t *v = NULL;
    for (size_t i = 0; i < t->nschema && !v; i++)
        if (strcmp(t->schema[i].name, tbl->name) == 0) v = t->schema[i].validator;
    if (!v) return CVX_OK;
    cvx_value_t user = *doc;
    user.u.obj.fields = cvx_arena_alloc(t->arena, (doc->u.obj.len ? doc->u.obj.len : 1) * sizeof *user.u.obj.fields);
    if (!user.u.obj.fields) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    user.u.obj.len = user.u.obj.cap = 0;
    for (size_t i = 0; i < doc->u.obj.len; i++) {
        const char *name = doc->u.obj.fields[i].name;
        if (strcmp(name, "_id") != 0 && strcmp(name, "_creationTime") != 0) user.u.obj.fields[user.u.obj.len++] = doc->u.obj.fields[i];
    }
    char prefix[160];
    snprintf(prefix, sizeof prefix,
             "Failed to insert or update a document in table \"%s\" because it does not match the schema: ", tbl->name);
    int rc = cvx_validator_check(v, &user, cvx_txn_table_of, t, prefix, err);
    if (rc == CVX_E_ARGS) err->code = rc = CVX_E_SCHEMA;
    return rc;
}

static int check_writable(cvx_txn_t *t, cvx_err_t *err) {
    if (t->mode != CVX_TXN_WRITE)
        return cvx_err_set(err, CVX_E_FORBIDDEN, "queries cannot write to the database; use a mutation");
    return CVX_OK;
}

/* Ensures a user table exists in this transaction's view, reserving its
 * number and system index ids when it is new. */
static int ensure_table(cvx_txn_t *t, const char *name, size_t len, bool system, const cvx__table_t **out,
                        cvx_err_t *err) {
    const cvx__table_t *tbl = cvx__catalog_table(cvx__txn_catalog(t), name, len);
    if (tbl && (tbl->name[0] == '_') == system) {
        *out = tbl;
        return CVX_OK;
    }
    if (!cvx_table_name_valid(name, len))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                           "invalid table name \"%.*s\": use letters, digits and underscores (at most %d), not starting "
                           "with a digit",
                           (int)CVX_MIN(len, 80), name, CVX_MAX_TABLE_NAME);
    if ((name[0] == '_') != system)
        return cvx_err_set(err, system ? CVX_E_INTERNAL : CVX_E_FORBIDDEN,
                           system ? "\"%.*s\" is not a system table"
                                  : "table \"%.*s\" is a system table; functions cannot write to it",
                           (int)len, name);
    int rc = read_table_name(t, name, len);
    if (rc) return cvx_err_set(err, rc, "out of memory");
    if (!t->own_catalog) {
        t->own_catalog = cvx__catalog_clone(t->catalog);
        if (!t->own_catalog) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    uint32_t number = (uint32_t)atomic_fetch_add(&t->s->next_table, 1);
    uint64_t ix = atomic_fetch_add(&t->s->next_index, 2);
    if (cvx__catalog_add_table(t->own_catalog, name, len, number, ix, ix + 1))
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    *out = cvx__catalog_table(t->own_catalog, name, len);
    return CVX_OK;
}

/* Monotonic _creationTime in ms with sub-ms fraction: unique, increasing. */
static double next_creation_ms(cvx_store_t *s) {
    double now = (double)(cvx_now_ns() / 1000) / 1000.0;
    double last = atomic_load(&s->last_creation_ms);
    for (;;) {
        double next = now > last ? now : last + 1.0 / 1024;
        if (atomic_compare_exchange_weak(&s->last_creation_ms, &last, next)) return next;
    }
}

static int set_pending(cvx_txn_t *t, cvx__pending_t *p, const cvx_value_t *doc, cvx_err_t *err) {
    if (t->nschema) {
        int rc = check_schema(t, p->table, doc, err);
        if (rc) return rc;
    }
    cvx_buf_t j = {0};
    if (cvx_json_write(&j, doc)) {
        cvx_buf_free(&j);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    int rc = count_write(t, j.len, err);
    if (rc) {
        cvx_buf_free(&j);
        return rc;
    }
    cvx_free(p->new_json);
    p->new_json = cvx_buf_detach(&j, &p->new_len);
    p->deleted = false;
    return CVX_OK;
}

static int insert_impl(cvx_txn_t *t, const char *table, size_t table_len, const cvx_value_t *value, bool system,
                       cvx_buf_t *out, cvx_err_t *err) {
    int rc = check_writable(t, err);
    if (rc) return rc;
    if (!value || value->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "a document must be an object");
    rc = cvx_value_check(value, CVX_CHECK_DOCUMENT, err);
    if (rc) return rc;
    const cvx__table_t *tbl = NULL;
    rc = ensure_table(t, table, table_len, system, &tbl, err);
    if (rc) return rc;
    cvx_id_t id;
    char text[CVX_ID_MAX_LEN + 1];
    /* A fresh random id; on the astronomically unlikely collision with a
     * pending insert, draw again. */
    do {
        cvx_id_generate(tbl->number, NULL, cvx_now_ns() / 1000000, &id);
    } while (cvx__txn_pending(t, id.internal));
    size_t n = cvx_id_format(&id, text);
    cvx_arena_reset(t->arena);
    cvx_value_t *doc = cvx_value_clone(t->arena, value);
    cvx_value_t *idv = doc ? cvx_string(t->arena, text, n) : NULL;
    cvx_value_t *ct = idv ? cvx_float64(t->arena, next_creation_ms(t->s)) : NULL;
    if (!ct || cvx_obj_set(t->arena, doc, "_id", 3, idv) || cvx_obj_set(t->arena, doc, "_creationTime", 13, ct))
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    rc = cvx_value_check(doc, CVX_CHECK_STORED, err);
    if (rc) return rc;
    cvx__pending_t *p = pending_add(t, id.internal);
    if (!p) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    p->table = tbl->number;
    memcpy(p->id_text, text, n + 1);
    p->existed = false;
    rc = set_pending(t, p, doc, err);
    if (rc) {
        /* Keep the entry consistent: an insert that failed writes nothing. */
        p->deleted = true;
        return rc;
    }
    cvx_buf_append_json_string(out, text, n);
    return out->oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
}

/* Loads the current state of a document for modification; CVX_E_NOT_FOUND
 * when it does not exist. Returns its pending entry (created on first
 * write) and the parsed document in the arena. */
static int load_for_write(cvx_txn_t *t, const char *id, size_t id_len, bool system, cvx__pending_t **pout,
                          cvx_value_t **doc, cvx_err_t *err) {
    *pout = NULL;
    int rc = check_writable(t, err);
    if (rc) return rc;
    cvx_id_t parsed;
    const cvx__table_t *tbl;
    rc = resolve_id(t, id, id_len, &parsed, &tbl, err);
    if (rc) return rc;
    if (tbl && (tbl->name[0] == '_') != system)
        return system ? cvx_err_set(err, CVX_E_INTERNAL, "%.*s is not a system document", (int)id_len, id)
                      : cvx_err_set(err, CVX_E_FORBIDDEN,
                                    "document %.*s belongs to the system table %s; functions cannot write to it",
                                    (int)id_len, id, tbl->name);
    cvx_buf_t tmp = {0};
    const char *json = NULL;
    size_t len = 0;
    if (tbl) rc = cvx__txn_load(t, parsed.internal, parsed.table, &json, &len, &tmp, err);
    if (!rc && !json)
        rc = cvx_err_set(err, CVX_E_NOT_FOUND, "document %.*s does not exist (it may have been deleted)", (int)id_len, id);
    if (!rc) rc = cvx__txn_count_read(t, len, err);
    cvx__pending_t *p = NULL;
    if (!rc) {
        p = cvx__txn_pending(t, parsed.internal);
        if (!p) {
            p = pending_add(t, parsed.internal);
            if (!p) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            else {
                p->table = parsed.table;
                p->existed = true;
                snprintf(p->id_text, sizeof p->id_text, "%.*s", (int)id_len, id);
                p->old_json = cvx_strndup(json, len);
                p->old_len = len;
                /* Until a write lands the pending state equals the old one. */
                p->new_json = cvx_strndup(json, len);
                p->new_len = len;
                if (!p->old_json || !p->new_json) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                json = p->new_json;
            }
        }
    }
    if (!rc) {
        cvx_arena_reset(t->arena);
        rc = cvx_json_parse(t->arena, json, len, doc, err);
        if (rc && rc != CVX_E_NOMEM) {
            char why[CVX_ERR_MSG_MAX]; /* err->msg cannot be both source and destination */
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            rc = cvx_err_set(err, CVX_E_STORE, "stored document %.*s is corrupt: %s", (int)id_len, id, why);
        }
    }
    cvx_buf_free(&tmp);
    *pout = p;
    return rc;
}

/* System fields in a patch or replacement must equal the document's own. */
static int check_system_fields(const cvx_value_t *doc, const cvx_value_t *fields, cvx_err_t *err) {
    static const char *const sys[] = {"_id", "_creationTime"};
    for (size_t i = 0; i < 2; i++) {
        const cvx_value_t *v = cvx_obj_get_cstr(fields, sys[i]);
        if (v && !cvx_value_equal(v, cvx_obj_get_cstr(doc, sys[i])))
            return cvx_err_set(err, CVX_E_INVALID_VALUE, "system field %s cannot be changed", sys[i]);
    }
    for (size_t i = 0; i < fields->u.obj.len; i++) {
        const char *name = fields->u.obj.fields[i].name;
        if (name[0] == '_' && strcmp(name, "_id") != 0 && strcmp(name, "_creationTime") != 0)
            return cvx_err_set(err, CVX_E_INVALID_VALUE,
                               "field \"%s\": field names starting with '_' are reserved for system fields", name);
    }
    return CVX_OK;
}

static int patch_impl(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *fields,
                      const char *const *remove, size_t nremove, bool system, cvx_err_t *err) {
    if (!fields || fields->type != CVX_T_OBJECT) return cvx_err_set(err, CVX_E_INVALID_VALUE, "a patch must be an object");
    cvx__pending_t *p;
    cvx_value_t *doc;
    int rc = load_for_write(t, id, id_len, system, &p, &doc, err);
    if (!rc) rc = check_system_fields(doc, fields, err);
    if (rc) return rc;
    for (size_t i = 0; i < fields->u.obj.len; i++) {
        const cvx_field_t *f = &fields->u.obj.fields[i];
        cvx_value_t *v = cvx_value_clone(t->arena, f->value);
        if (!v || cvx_obj_set(t->arena, doc, f->name, f->name_len, v)) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nremove; i++) {
        if (remove[i][0] == '_' && (strcmp(remove[i], "_id") == 0 || strcmp(remove[i], "_creationTime") == 0))
            return cvx_err_set(err, CVX_E_INVALID_VALUE, "system field %s cannot be removed", remove[i]);
        cvx_obj_remove(doc, remove[i], strlen(remove[i]));
    }
    rc = cvx_value_check(doc, CVX_CHECK_STORED, err);
    if (!rc) rc = set_pending(t, p, doc, err);
    return rc;
}

int cvx_txn_replace(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *value, cvx_err_t *err) {
    if (!value || value->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_INVALID_VALUE, "a document must be an object");
    cvx__pending_t *p;
    cvx_value_t *doc;
    int rc = load_for_write(t, id, id_len, false, &p, &doc, err);
    if (!rc) rc = check_system_fields(doc, value, err);
    if (rc) return rc;
    cvx_value_t *next = cvx_value_clone(t->arena, value);
    if (!next || cvx_obj_set(t->arena, next, "_id", 3, cvx_obj_get_cstr(doc, "_id")) ||
        cvx_obj_set(t->arena, next, "_creationTime", 13, cvx_obj_get_cstr(doc, "_creationTime")))
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    rc = cvx_value_check(next, CVX_CHECK_STORED, err);
    if (!rc) rc = set_pending(t, p, next, err);
    return rc;
}

static int delete_impl(cvx_txn_t *t, const char *id, size_t id_len, bool system, cvx_err_t *err) {
    cvx__pending_t *p;
    cvx_value_t *doc;
    int rc = load_for_write(t, id, id_len, system, &p, &doc, err);
    if (rc) return rc;
    rc = count_write(t, 0, err);
    if (rc) return rc;
    cvx_free(p->new_json);
    p->new_json = NULL;
    p->new_len = 0;
    p->deleted = true;
    return CVX_OK;
}

int cvx_txn_insert(cvx_txn_t *t, const char *table, size_t table_len, const cvx_value_t *value, cvx_buf_t *out,
                   cvx_err_t *err) {
    return insert_impl(t, table, table_len, value, false, out, err);
}

int cvx_txn_patch(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *fields, const char *const *remove,
                  size_t nremove, cvx_err_t *err) {
    return patch_impl(t, id, id_len, fields, remove, nremove, false, err);
}

int cvx_txn_delete(cvx_txn_t *t, const char *id, size_t id_len, cvx_err_t *err) {
    return delete_impl(t, id, id_len, false, err);
}

int cvx_txn_system_insert(cvx_txn_t *t, const char *table, const cvx_value_t *value, cvx_buf_t *out, cvx_err_t *err) {
    return insert_impl(t, table, strlen(table), value, true, out, err);
}

int cvx_txn_system_patch(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *fields, cvx_err_t *err) {
    return patch_impl(t, id, id_len, fields, NULL, 0, true, err);
}

int cvx_txn_system_delete(cvx_txn_t *t, const char *id, size_t id_len, cvx_err_t *err) {
    return delete_impl(t, id, id_len, true, err);
}

cvx_readset_t *cvx_txn_readset(const cvx_txn_t *t) {
    cvx_readset_t *r = cvx_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ranges = cvx_calloc(t->reads.n ? t->reads.n : 1, sizeof *r->ranges);
    if (!r->ranges) {
        cvx_free(r);
        return NULL;
    }
    for (size_t i = 0; i < t->reads.n; i++) {
        const cvx__range_t *src = &t->reads.ranges[i];
        cvx__range_t *dst = &r->ranges[i];
        dst->index_id = src->index_id;
        dst->hi_inf = src->hi_inf;
        r->n = i + 1;
        if (cvx_buf_append(&dst->lo, src->lo.data, src->lo.len) || cvx_buf_append(&dst->hi, src->hi.data, src->hi.len)) {
            cvx_readset_free(r);
            return NULL;
        }
    }
    return r;
}

void cvx_readset_free(cvx_readset_t *r) {
    if (!r) return;
    readset_clear(r);
    cvx_free(r);
}

size_t cvx_readset_len(const cvx_readset_t *r) { return r ? r->n : 0; }

void cvx_readset_range(const cvx_readset_t *r, size_t i, cvx_key_range_t *out) {
    const cvx__range_t *src = &r->ranges[i];
    *out = (cvx_key_range_t){src->index_id, (uint8_t *)src->lo.data, src->lo.len, (uint8_t *)src->hi.data, src->hi.len,
                             src->hi_inf};
}

static bool key_in(uint64_t rid, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len, bool hi_inf,
                   uint64_t index_id, const uint8_t *key, size_t len) {
    if (rid != index_id) return false;
    size_t m = CVX_MIN(len, lo_len);
    int c = m ? memcmp(key, lo, m) : 0;
    if (c < 0 || (c == 0 && len < lo_len)) return false;
    if (hi_inf) return true;
    m = CVX_MIN(len, hi_len);
    c = m ? memcmp(key, hi, m) : 0;
    return c < 0 || (c == 0 && len < hi_len);
}

bool cvx_key_range_contains(const cvx_key_range_t *r, uint64_t index_id, const uint8_t *key, size_t len) {
    return key_in(r->index_id, r->lo, r->lo_len, r->hi, r->hi_len, r->hi_inf, index_id, key, len);
}

static bool in_range(const cvx__range_t *r, uint64_t index_id, const uint8_t *key, size_t len) {
    return key_in(r->index_id, (const uint8_t *)r->lo.data, r->lo.len, (const uint8_t *)r->hi.data, r->hi.len, r->hi_inf,
                  index_id, key, len);
}

bool cvx_readset_overlaps(const cvx_readset_t *r, const cvx_commit_info_t *c) {
    if (!r) return true;
    for (size_t k = 0; k < c->nkeys; k++)
        for (size_t i = 0; i < r->n; i++)
            if (in_range(&r->ranges[i], c->keys[k].index_id, c->keys[k].key, c->keys[k].key_len)) return true;
    return false;
}

int cvx_txn_set_request(cvx_txn_t *t, const char *key, const char *result, size_t len, cvx_err_t *err) {
    if (t->mode != CVX_TXN_WRITE) return cvx_err_set(err, CVX_E_FORBIDDEN, "only write transactions record requests");
    char *k = cvx_strdup(key), *r = cvx_strndup(result ? result : "", len);
    if (!k || !r) {
        cvx_free(k);
        cvx_free(r);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    cvx_free(t->request_key);
    cvx_free(t->request_result);
    t->request_key = k;
    t->request_result = r;
    t->request_result_len = len;
    return CVX_OK;
}

int cvx_store_find_request(cvx_store_t *s, const char *key, bool *found, uint64_t *ts, cvx_buf_t *result,
                           cvx_err_t *err) {
    void *reader = NULL;
    int rc = s->be->reader_acquire(s->be_state, &reader, err);
    if (rc) return rc;
    rc = s->be->find_request(reader, key, found, ts, result, err);
    s->be->reader_release(s->be_state, reader);
    /* The backend holds written commits before they are durable: a
     * recorded answer is only given once it is. */
    if (!rc && *found) rc = cvx_store_wait_durable(s, *ts, err);
    return rc;
}

/* The catalog: tables, their indexes, and how index keys are computed.
 *
 * The catalog is an immutable, reference-counted snapshot. A transaction
 * pins the one current at its start; creating a table or an index builds a
 * modified copy and publishes it. Readers therefore never lock, and a
 * transaction sees one consistent set of indexes. */
#include "store/store_int.h"

#include <stdio.h>

#include <string.h>

static void free_index(cvx__index_t *ix) {
    for (size_t i = 0; i < ix->nfields; i++) cvx_free(ix->fields[i]);
    cvx_free(ix->fields);
    cvx_free(ix->name);
}

static void free_table(cvx__table_t *t) {
    for (size_t i = 0; i < t->nindexes; i++) free_index(&t->indexes[i]);
    cvx_free(t->indexes);
    cvx_free(t->name);
}

void cvx__catalog_release(cvx__catalog_t *c) {
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (size_t i = 0; i < c->ntables; i++) free_table(&c->tables[i]);
    cvx_free(c->tables);
    cvx_free(c);
}

cvx__catalog_t *cvx__catalog_acquire(cvx_store_t *s) {
    pthread_mutex_lock(&s->catalog_mu);
    cvx__catalog_t *c = s->catalog;
    atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&s->catalog_mu);
    return c;
}

void cvx__catalog_publish(cvx_store_t *s, cvx__catalog_t *c) {
    pthread_mutex_lock(&s->catalog_mu);
    cvx__catalog_t *old = s->catalog;
    s->catalog = c;
    pthread_mutex_unlock(&s->catalog_mu);
    cvx__catalog_release(old);
}

const cvx__table_t *cvx__catalog_table(const cvx__catalog_t *c, const char *name, size_t len) {
    for (size_t i = 0; i < c->ntables; i++)
        if (strlen(c->tables[i].name) == len && memcmp(c->tables[i].name, name, len) == 0) return &c->tables[i];
    return NULL;
}

const cvx__table_t *cvx__catalog_table_by_number(const cvx__catalog_t *c, uint32_t number) {
    for (size_t i = 0; i < c->ntables; i++)
        if (c->tables[i].number == number) return &c->tables[i];
    return NULL;
}

bool cvx_store_id_table(cvx_store_t *s, const char *id, size_t len, char name[CVX_MAX_TABLE_NAME + 1]) {
    cvx_id_t parsed;
    cvx_err_t ignored;
    if (cvx_id_parse(id, len, &parsed, &ignored)) return false;
    cvx__catalog_t *c = cvx__catalog_acquire(s);
    const cvx__table_t *t = c ? cvx__catalog_table_by_number(c, parsed.table) : NULL;
    if (t) snprintf(name, CVX_MAX_TABLE_NAME + 1, "%s", t->name);
    cvx__catalog_release(c);
    return t != NULL;
}

const cvx__index_t *cvx__table_index(const cvx__table_t *t, const char *name) {
    for (size_t i = 0; i < t->nindexes; i++)
        if (strcmp(t->indexes[i].name, name) == 0) return &t->indexes[i];
    return NULL;
}

static int copy_index(cvx__index_t *dst, const cvx__index_t *src) {
    memset(dst, 0, sizeof *dst);
    dst->id = src->id;
    dst->system = src->system;
    dst->name = cvx_strdup(src->name);
    dst->fields = cvx_calloc(src->nfields ? src->nfields : 1, sizeof *dst->fields);
    if (!dst->name || !dst->fields) return CVX_E_NOMEM;
    for (size_t i = 0; i < src->nfields; i++) {
        dst->fields[i] = cvx_strdup(src->fields[i]);
        if (!dst->fields[i]) return CVX_E_NOMEM;
        dst->nfields = i + 1;
    }
    return CVX_OK;
}

cvx__catalog_t *cvx__catalog_clone(const cvx__catalog_t *c) {
    cvx__catalog_t *n = cvx_calloc(1, sizeof *n);
    if (!n) return NULL;
    atomic_init(&n->refs, 1);
    n->next_table = c->next_table;
    n->next_index = c->next_index;
    n->tables = cvx_calloc(c->ntables + 1, sizeof *n->tables);
    if (!n->tables) {
        cvx_free(n);
        return NULL;
    }
    for (size_t i = 0; i < c->ntables; i++) {
        const cvx__table_t *src = &c->tables[i];
        cvx__table_t *dst = &n->tables[i];
        n->ntables = i + 1;
        dst->number = src->number;
        dst->name = cvx_strdup(src->name);
        dst->indexes = cvx_calloc(src->nindexes + 1, sizeof *dst->indexes);
        if (!dst->name || !dst->indexes) goto fail;
        for (size_t k = 0; k < src->nindexes; k++) {
            dst->nindexes = k + 1;
            if (copy_index(&dst->indexes[k], &src->indexes[k])) goto fail;
        }
    }
    return n;
fail:
    cvx__catalog_release(n);
    return NULL;
}

static int add_index_to(cvx__table_t *t, uint64_t id, const char *name, const char *const *fields, size_t nfields,
                        bool system) {
    cvx__index_t *ixs = cvx_realloc(t->indexes, (t->nindexes + 1) * sizeof *ixs);
    if (!ixs) return CVX_E_NOMEM;
    t->indexes = ixs;
    cvx__index_t src = {.id = id, .name = (char *)name, .fields = (char **)fields, .nfields = nfields, .system = system};
    int rc = copy_index(&ixs[t->nindexes], &src);
    t->nindexes++; /* counted even on failure so release frees what was copied */
    return rc;
}

int cvx__catalog_add_table(cvx__catalog_t *c, const char *name, size_t len, uint32_t number, uint64_t by_id,
                           uint64_t by_creation) {
    cvx__table_t *ts = cvx_realloc(c->tables, (c->ntables + 1) * sizeof *ts);
    if (!ts) return CVX_E_NOMEM;
    c->tables = ts;
    cvx__table_t *t = &ts[c->ntables];
    memset(t, 0, sizeof *t);
    t->number = number;
    t->name = cvx_strndup(name, len);
    c->ntables++;
    if (!t->name) return CVX_E_NOMEM;
    if (number >= c->next_table) c->next_table = number + 1;
    /* by_id == 0: the system indexes come later from the stored catalog. */
    if (by_id == 0) return CVX_OK;
    static const char *const id_fields[] = {"_id"};
    static const char *const ct_fields[] = {"_creationTime"};
    if (add_index_to(t, by_id, CVX_INDEX_BY_ID, id_fields, 1, true)) return CVX_E_NOMEM;
    if (add_index_to(t, by_creation, CVX_INDEX_BY_CREATION, ct_fields, 1, true)) return CVX_E_NOMEM;
    if (by_id >= c->next_index) c->next_index = by_id + 1;
    if (by_creation >= c->next_index) c->next_index = by_creation + 1;
    return CVX_OK;
}

int cvx__catalog_add_index(cvx__catalog_t *c, uint32_t table, uint64_t id, const char *name, const char *const *fields,
                           size_t nfields) {
    for (size_t i = 0; i < c->ntables; i++) {
        if (c->tables[i].number != table) continue;
        if (id >= c->next_index) c->next_index = id + 1;
        bool system = strcmp(name, CVX_INDEX_BY_ID) == 0 || strcmp(name, CVX_INDEX_BY_CREATION) == 0;
        return add_index_to(&c->tables[i], id, name, fields, nfields, system);
    }
    return CVX_E_NOT_FOUND;
}

void cvx__catalog_drop_index(cvx__catalog_t *c, uint64_t id) {
    for (size_t i = 0; i < c->ntables; i++) {
        cvx__table_t *t = &c->tables[i];
        for (size_t k = 0; k < t->nindexes; k++) {
            if (t->indexes[k].id != id || t->indexes[k].system) continue;
            free_index(&t->indexes[k]);
            memmove(&t->indexes[k], &t->indexes[k + 1], (t->nindexes - k - 1) * sizeof t->indexes[0]);
            t->nindexes--;
            return;
        }
    }
}

int cvx__id_key(const char *id, size_t len, cvx_buf_t *out) {
    cvx_value_t v;
    memset(&v, 0, sizeof v);
    v.type = CVX_T_STRING;
    v.u.str.ptr = id;
    v.u.str.len = len;
    return cvx_key_append(out, &v);
}

/* by_id: the id alone. by_creation_time: _creationTime, _id. User indexes:
 * their fields, then _creationTime and _id, which make every key unique
 * and order ties by creation like Convex. */
int cvx__index_key(const cvx__index_t *ix, const cvx_value_t *doc, cvx_buf_t *out) {
    const cvx_value_t *id = cvx_obj_get_cstr(doc, "_id");
    if (!id || id->type != CVX_T_STRING) return CVX_E_INTERNAL;
    if (ix->system && strcmp(ix->name, CVX_INDEX_BY_ID) == 0) return cvx_key_append(out, id);
    for (size_t i = 0; i < ix->nfields && !ix->system; i++) {
        const cvx_value_t *v = cvx_obj_get_path(doc, ix->fields[i], strlen(ix->fields[i]));
        int rc = cvx_key_append(out, v);
        if (rc) return rc;
    }
    int rc = cvx_key_append(out, cvx_obj_get_cstr(doc, "_creationTime"));
    if (!rc) rc = cvx_key_append(out, id);
    return rc;
}


/* Queries: an index range scanned in key order at the snapshot, merged with
 * the transaction's own pending writes, filtered, limited, paginated.
 *
 * The scan uses the index (never a table scan plus sort): the range
 * conditions become a byte interval [lo, hi) of encoded keys. The backend
 * returns every version of each key newest-first; the first row of a key
 * is the version visible at the snapshot. The read set records exactly the
 * interval consumed, so a page that stopped early does not conflict with
 * (or get invalidated by) writes past its end. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ranges ------------------------------------------------------------------ */

static const char *field_at(const cvx__index_t *ix, size_t i) {
    if (ix->system) return strcmp(ix->name, CVX_INDEX_BY_ID) == 0 ? "_id" : (i == 0 ? "_creationTime" : "_id");
    if (i < ix->nfields) return ix->fields[i];
    return i == ix->nfields ? "_creationTime" : "_id";
}

static size_t field_count(const cvx__index_t *ix) {
    if (ix->system) return strcmp(ix->name, CVX_INDEX_BY_ID) == 0 ? 1 : 2;
    return ix->nfields + 2;
}

static const char *op_name(cvx_range_op_t op) {
    switch (op) {
    case CVX_OP_EQ: return "eq";
    case CVX_OP_GT: return "gt";
    case CVX_OP_GTE: return "gte";
    case CVX_OP_LT: return "lt";
    case CVX_OP_LTE: return "lte";
    }
    return "?";
}

/* Turns the key of whole values k into the least key greater than every
 * key that starts with k: k then 0xff. What may follow a whole value in an
 * index key is the next value's tag, never 0xff (value/order.c), while a
 * longer string or bytes value with the same start continues inside the
 * value's own bytes ("a" is 08 61 00, "a\0b" is 08 61 00 ff 62 00), so
 * incrementing k's last byte would take "a\0b" into eq "a". */
static void past_value(cvx_buf_t *k) { cvx_buf_append_char(k, (char)0xff); }

/* Builds [lo, hi) from the range conditions: eq on a prefix of the index
 * fields, then at most one lower and one upper bound on the next field. */
static int build_range(const cvx__table_t *tbl, const cvx__index_t *ix, const cvx_query_t *q, cvx_buf_t *lo,
                       cvx_buf_t *hi, bool *hi_inf, cvx_err_t *err) {
    size_t i = 0, nf = field_count(ix);
    cvx_buf_t prefix = {0};
    for (; i < q->nrange && q->range[i].op == CVX_OP_EQ; i++) {
        if (i >= nf || strcmp(q->range[i].field, field_at(ix, i)) != 0) {
            cvx_buf_free(&prefix);
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                               "index range on %s.%s: condition %zu is on \"%s\" but the next index field is \"%s\"; "
                               "conditions must follow the index's fields in order",
                               tbl->name, ix->name, i, q->range[i].field, i < nf ? field_at(ix, i) : "(none)");
        }
        cvx_key_append(&prefix, q->range[i].value);
    }
    const cvx_range_t *lower = NULL, *upper = NULL;
    size_t pos = i; /* the index field the bounds apply to */
    for (; i < q->nrange; i++) {
        const cvx_range_t *r = &q->range[i];
        if (pos >= nf || strcmp(r->field, field_at(ix, pos)) != 0 || r->op == CVX_OP_EQ) {
            cvx_buf_free(&prefix);
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                               "index range on %s.%s: %s(\"%s\") is not allowed here; after eq conditions only one "
                               "lower (gt/gte) and one upper (lt/lte) bound on \"%s\" may follow",
                               tbl->name, ix->name, op_name(r->op), r->field, pos < nf ? field_at(ix, pos) : "(none)");
        }
        bool is_lower = r->op == CVX_OP_GT || r->op == CVX_OP_GTE;
        if ((is_lower && lower) || (!is_lower && upper)) {
            cvx_buf_free(&prefix);
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "index range on %s.%s has two %s bounds on \"%s\"",
                               tbl->name, ix->name, is_lower ? "lower" : "upper", r->field);
        }
        if (is_lower) lower = r;
        else upper = r;
    }
    cvx_buf_append(lo, prefix.data, prefix.len);
    if (lower) {
        cvx_key_append(lo, lower->value);
        if (lower->op == CVX_OP_GT) past_value(lo);
    }
    if (upper) {
        cvx_buf_append(hi, prefix.data, prefix.len);
        cvx_key_append(hi, upper->value);
        *hi_inf = false;
        if (upper->op == CVX_OP_LTE) past_value(hi);
    } else {
        cvx_buf_append(hi, prefix.data, prefix.len);
        *hi_inf = hi->len == 0;
        if (!*hi_inf) past_value(hi);
    }
    int oom = prefix.oom || lo->oom || hi->oom;
    cvx_buf_free(&prefix);
    return oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
}


/* ---- the scan ---------------------------------------------------------------- */

/* Scans that see more rows than this are not offered to the range cache. */
#define MAX_ROW_BYTES (256u << 10)

typedef struct {
    cvx_buf_t key;
    const cvx__pending_t *p;
} pend_item_t;

typedef struct {
    cvx_txn_t *t;
    const cvx_query_t *q;
    const cvx__table_t *tbl;
    const cvx__index_t *ix;
    bool counting;
    uint64_t count;
    cvx_buf_t *out;
    size_t emitted;
    bool full;                /* limit reached */
    cvx_buf_t last_key;       /* last key emitted or skipped by filter */
    cvx_buf_t keys;           /* with split_over: each emitted key, u32 length first */
    cvx_buf_t prev_row_key;   /* dedup of versions */
    bool have_prev;
    pend_item_t *pend;
    size_t npend, next_pend;
    cvx_buf_t doc;            /* scratch */
    cvx_buf_t rows;           /* visible rows seen, for the range cache */
    size_t last_row;          /* where the last one starts */
    bool rows_over;           /* too many to cache */
    cvx_arena_t *arena;
    cvx_err_t *err;
} scan_t;

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    size_t m = CVX_MIN(al, bl);
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Considers one visible document: filter, count, append. Returns
 * CVX__SCAN_STOP when the page is full. */
static int emit(scan_t *s, const uint8_t *key, size_t key_len, const char *json, size_t len) {
    int rc = cvx__txn_count_read(s->t, len, s->err);
    if (rc) return rc;
    cvx_buf_reset(&s->last_key);
    if (cvx_buf_append(&s->last_key, key, key_len)) return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
    if (s->q->filter) {
        cvx_arena_reset(s->arena);
        cvx_value_t *doc;
        bool match = false;
        rc = cvx_json_parse(s->arena, json, len, &doc, s->err);
        if (!rc) rc = cvx_filter_eval(s->arena, s->q->filter, doc, &match, s->err);
        if (rc) return rc;
        if (!match) return 0;
    }
    if (s->counting) {
        s->count++;
        return 0;
    }
    if (s->emitted) cvx_buf_append_char(s->out, ',');
    if (s->q->lines) cvx_buf_append_char(s->out, '\n');
    cvx_buf_append(s->out, json, len);
    s->emitted++;
    if (s->q->end_cursor && s->q->split_over > 0) {
        uint32_t n = (uint32_t)key_len;
        cvx_buf_append(&s->keys, &n, sizeof n);
        cvx_buf_append(&s->keys, key, key_len);
        if (s->keys.oom) return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
    }
    if (s->out->oom) return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
    if (!s->counting && s->q->limit >= 0 && (int64_t)s->emitted >= s->q->limit) {
        s->full = true;
        return CVX__SCAN_STOP;
    }
    return 0;
}

/* Emits pending documents that come before `key` in scan order (all of
 * them when key is NULL). */
static int flush_pending(scan_t *s, const uint8_t *key, size_t key_len) {
    while (s->next_pend < s->npend) {
        pend_item_t *it = &s->pend[s->next_pend];
        if (key) {
            int c = key_cmp((const uint8_t *)it->key.data, it->key.len, key, key_len);
            if (s->q->desc ? c < 0 : c > 0) break;
        }
        s->next_pend++;
        int rc = emit(s, (const uint8_t *)it->key.data, it->key.len, it->p->new_json, it->p->new_len);
        if (rc) return rc;
    }
    return 0;
}

static int on_row(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *id, uint64_t ts, bool deleted) {
    scan_t *s = ctx;
    if (s->have_prev && key_cmp(key, key_len, (const uint8_t *)s->prev_row_key.data, s->prev_row_key.len) == 0)
        return 0; /* an older version of a key already decided */
    cvx_buf_reset(&s->prev_row_key);
    if (cvx_buf_append(&s->prev_row_key, key, key_len)) return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
    s->have_prev = true;
    if (deleted) return 0;
    if (!s->rows_over) {
        if (s->rows.len >= MAX_ROW_BYTES) {
            s->rows_over = true;
        } else {
            s->last_row = s->rows.len;
            if (cvx__rangecache_row_append(&s->rows, key, key_len, id))
                return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
        }
    }
    if (cvx__txn_pending(s->t, id)) return 0; /* the pending state decides */
    int rc = flush_pending(s, key, key_len);
    if (rc) return rc;
    bool found = false, gone = false;
    uint32_t table = 0;
    cvx_buf_reset(&s->doc);
    rc = cvx__store_get(s->t, id, &found, &gone, &table, &s->doc, s->err);
    if (rc) return rc;
    if (!found || gone)
        return cvx_err_set(s->err, CVX_E_STORE, "index %s.%s points at a missing document", s->tbl->name, s->ix->name);
    return emit(s, key, key_len, s->doc.data, s->doc.len);
}

/* The committed rows of range k (a query's range, or from a cursor on
 * when !cacheable) in scan order through on_row: from the range cache when
 * it has them, else from the backend. A cached partial range goes on in
 * the backend after its last key. Rows read from the backend are offered
 * to the cache with those before them, complete if the scan ran out. */
static int scan_rows(scan_t *s, const cvx__rkey_t *k, bool cacheable) {
    cvx_txn_t *t = s->t;
    cvx__rangecache_t *cache = cacheable ? t->s->ranges : NULL;
    cvx_buf_t cached = {0}, from = {0};
    bool complete = false;
    cvx__rkey_t rest = *k;
    int rc = CVX_OK;
    if (cache && cvx__rangecache_get(cache, k, t->ts, &cached, &complete)) {
        const uint8_t *key = NULL, *id;
        size_t klen = 0;
        for (size_t off = 0; off < cached.len && !rc;) {
            off = cvx__rangecache_row_next((const uint8_t *)cached.data, off, &key, &klen, &id);
            rc = on_row(s, key, klen, id, 0, false);
        }
        if (!rc && !complete) {
            /* On after the last cached key: [last ‖ 0x00, hi) or [lo, last). */
            cvx_buf_append(&from, key, klen);
            if (!k->desc) {
                cvx_buf_append_char(&from, '\0');
                rest.lo = (const uint8_t *)from.data;
                rest.lo_len = from.len;
            } else {
                rest.hi = (const uint8_t *)from.data;
                rest.hi_len = from.len;
                rest.hi_inf = false;
            }
            if (from.oom) rc = cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
        }
    }
    if (!rc && !complete) {
        void *reader;
        rc = cvx__txn_reader(t, &reader, s->err);
        if (!rc)
            rc = t->s->be->scan(reader, rest.index_id, rest.lo, rest.lo_len, rest.hi_inf ? NULL : rest.hi, rest.hi_len,
                                rest.desc, t->ts, on_row, s, s->err);
        /* A scan the page stopped (full) saw the range's first rows only. */
        if ((rc == CVX_OK || rc == CVX__SCAN_STOP) && cache && !s->rows_over && !s->rows.oom)
            cvx__rangecache_fill(cache, k, t->ts, (const uint8_t *)s->rows.data, s->rows.len, s->last_row,
                                 rc == CVX_OK && !s->full);
    }
    cvx_buf_free(&cached);
    cvx_buf_free(&from);
    return rc;
}

static int cmp_pend_asc(const void *a, const void *b) {
    const pend_item_t *x = a, *y = b;
    return key_cmp((const uint8_t *)x->key.data, x->key.len, (const uint8_t *)y->key.data, y->key.len);
}

static int cmp_pend_desc(const void *a, const void *b) { return cmp_pend_asc(b, a); }

static bool key_in(const cvx_buf_t *k, const cvx_buf_t *lo, const cvx_buf_t *hi, bool hi_inf) {
    if (key_cmp((const uint8_t *)k->data, k->len, (const uint8_t *)lo->data, lo->len) < 0) return false;
    return hi_inf || key_cmp((const uint8_t *)k->data, k->len, (const uint8_t *)hi->data, hi->len) < 0;
}

/* The transaction's own live documents of this table inside [lo, hi), with
 * their keys in this index, sorted in scan order. */
static int collect_pending(scan_t *s, const cvx_buf_t *lo, const cvx_buf_t *hi, bool hi_inf) {
    cvx_txn_t *t = s->t;
    for (size_t i = 0; i < t->npending; i++) {
        const cvx__pending_t *p = &t->pending[i];
        if (p->deleted || p->table != s->tbl->number) continue;
        if (!s->pend) {
            s->pend = cvx_calloc(t->npending, sizeof *s->pend);
            if (!s->pend) return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
        }
        cvx_arena_reset(s->arena);
        cvx_value_t *doc;
        int rc = cvx_json_parse(s->arena, p->new_json, p->new_len, &doc, s->err);
        if (rc) return rc;
        pend_item_t *it = &s->pend[s->npend];
        memset(it, 0, sizeof *it);
        if (cvx__index_key(s->ix, doc, &it->key) || it->key.oom) {
            cvx_buf_free(&it->key);
            return cvx_err_set(s->err, CVX_E_NOMEM, "out of memory");
        }
        if (!key_in(&it->key, lo, hi, hi_inf)) {
            cvx_buf_free(&it->key);
            continue;
        }
        it->p = p;
        s->npend++;
    }
    if (s->npend) qsort(s->pend, s->npend, sizeof *s->pend, s->q->desc ? cmp_pend_desc : cmp_pend_asc);
    return CVX_OK;
}

/* A query of a table that does not exist: an empty result that a later
 * creation of the table invalidates. */
static int missing_table(cvx_txn_t *t, const cvx_query_t *q, size_t tlen, bool counting, cvx_buf_t *out,
                         uint64_t *count, cvx_err_t *err) {
    if (!cvx_table_name_valid(q->table, tlen))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "invalid table name \"%.80s\"", q->table);
    cvx_buf_t key = {0}, hi = {0};
    cvx__id_key(q->table, tlen, &key);
    cvx_buf_append(&hi, key.data, key.len);
    cvx_buf_append_char(&hi, '\0');
    int rc = key.oom || hi.oom ? CVX_E_NOMEM
                               : cvx__txn_read_range(t, CVX__TABLES_INDEX, (const uint8_t *)key.data, key.len,
                                                     (const uint8_t *)hi.data, hi.len, false, 0);
    cvx_buf_free(&key);
    cvx_buf_free(&hi);
    if (rc) return cvx_err_set(err, rc, "out of memory");
    if (counting) *count = 0;
    else if (q->lines) cvx_buf_append_str(out, "{\"page\":[\n],\"isDone\":true,\"continueCursor\":\"\"}");
    else cvx_buf_append_str(out, "{\"page\":[],\"isDone\":true,\"continueCursor\":\"\"}");
    return CVX_OK;
}

/* Starts the range strictly after the key of the previous page's
 * continueCursor (*flag: CVX__CURSOR_AFTER, or CVX__CURSOR_END when it was the
 * last page). */
static int after_cursor(const cvx_query_t *q, const cvx__index_t *ix, cvx_buf_t *lo, cvx_buf_t *hi, bool *hi_inf,
                        int *flag, cvx_err_t *err) {
    cvx_buf_t ck = {0};
    int rc = cvx__cursor_read(q->cursor, ix->id, flag, &ck, err);
    if (!rc && *flag == CVX__CURSOR_AFTER) {
        if (!q->desc) {
            cvx_buf_append_char(&ck, '\0'); /* strictly after the key */
            if (key_cmp((const uint8_t *)ck.data, ck.len, (const uint8_t *)lo->data, lo->len) > 0) {
                cvx_buf_reset(lo);
                cvx_buf_append(lo, ck.data, ck.len);
            }
        } else if (*hi_inf || key_cmp((const uint8_t *)ck.data, ck.len, (const uint8_t *)hi->data, hi->len) < 0) {
            cvx_buf_reset(hi);
            cvx_buf_append(hi, ck.data, ck.len);
            *hi_inf = false;
        }
    }
    if (!rc && (ck.oom || lo->oom || hi->oom)) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_buf_free(&ck);
    return rc;
}

/* Ends the range at (and including) the key of a fixed end cursor
 * (*end_flag: CVX__CURSOR_AFTER, or CVX__CURSOR_END for "to the end"). */
static int until_end_cursor(const cvx_query_t *q, const cvx__index_t *ix, cvx_buf_t *lo, cvx_buf_t *hi, bool *hi_inf,
                            int *end_flag, cvx_err_t *err) {
    cvx_buf_t ek = {0};
    int rc = cvx__cursor_read(q->end_cursor, ix->id, end_flag, &ek, err);
    if (!rc && *end_flag == CVX__CURSOR_AFTER) {
        if (!q->desc) {
            cvx_buf_append_char(&ek, '\0'); /* through the key itself */
            if (*hi_inf || key_cmp((const uint8_t *)ek.data, ek.len, (const uint8_t *)hi->data, hi->len) < 0) {
                cvx_buf_reset(hi);
                cvx_buf_append(hi, ek.data, ek.len);
                *hi_inf = false;
            }
        } else if (key_cmp((const uint8_t *)ek.data, ek.len, (const uint8_t *)lo->data, lo->len) > 0) {
            cvx_buf_reset(lo);
            cvx_buf_append(lo, ek.data, ek.len);
        }
    }
    if (!rc && (ek.oom || lo->oom || hi->oom)) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_buf_free(&ek);
    return rc;
}

/* Closes the page: "]", isDone and continueCursor, and for a page with a
 * fixed end that grew past split_over, a splitCursor at its middle. */
static int write_trailer(scan_t *s, int end_flag, cvx_err_t *err) {
    const cvx_query_t *q = s->q;
    cvx_buf_t *out = s->out;
    int rc = CVX_OK;
    if (q->lines) cvx_buf_append_char(out, '\n');
    if (end_flag >= 0) {
        /* The page ends where it was told to, whatever it holds now. */
        cvx_buf_printf(out, "],\"isDone\":%s,\"continueCursor\":\"", end_flag == CVX__CURSOR_AFTER ? "false" : "true");
        cvx_buf_append_str(out, q->end_cursor);
        cvx_buf_append_char(out, '"');
        if (q->cursor_out) cvx_buf_append_str(q->cursor_out, q->end_cursor);
        if (q->split_over > 0 && (int64_t)s->emitted > q->split_over) {
            /* The middle document's key: the first half ends there. */
            size_t off = 0, half = s->emitted / 2;
            uint32_t n = 0;
            for (size_t i = 0; i + 1 < half; i++) {
                memcpy(&n, s->keys.data + off, sizeof n);
                off += sizeof n + n;
            }
            memcpy(&n, s->keys.data + off, sizeof n);
            cvx_buf_append_str(out, ",\"splitCursor\":");
            rc = cvx__cursor_write(out, NULL, s->ix->id, CVX__CURSOR_AFTER,
                                   (const uint8_t *)s->keys.data + off + sizeof n, n);
            cvx_buf_append_str(out, ",\"pageStatus\":\"SplitRecommended\"");
        }
    } else {
        cvx_buf_printf(out, "],\"isDone\":%s,\"continueCursor\":", s->full ? "false" : "true");
        if (s->full)
            rc = cvx__cursor_write(out, q->cursor_out, s->ix->id, CVX__CURSOR_AFTER,
                                   (const uint8_t *)s->last_key.data, s->last_key.len);
        else rc = cvx__cursor_write(out, q->cursor_out, s->ix->id, CVX__CURSOR_END, NULL, 0);
    }
    cvx_buf_append_char(out, '}');
    if (rc || out->oom || (q->cursor_out && q->cursor_out->oom)) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    return rc;
}

static int run(cvx_txn_t *t, const cvx_query_t *q, bool counting, cvx_buf_t *out, uint64_t *count, cvx_err_t *err) {
    const cvx__catalog_t *cat = cvx__txn_catalog(t);
    size_t tlen = strlen(q->table);
    const cvx__table_t *tbl = cvx__catalog_table(cat, q->table, tlen);
    if (!tbl) return missing_table(t, q, tlen, counting, out, count, err);
    const char *iname = q->index ? q->index : CVX_INDEX_BY_CREATION;
    const cvx__index_t *ix = cvx__table_index(tbl, iname);
    if (!ix) {
        cvx_buf_t names = {0};
        for (size_t i = 0; i < tbl->nindexes; i++) cvx_buf_printf(&names, "%s%s", i ? ", " : "", tbl->indexes[i].name);
        cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "table \"%s\" has no index \"%s\" (it has: %s)", tbl->name, iname,
                    names.data ? names.data : "");
        cvx_buf_free(&names);
        return CVX_E_INVALID_ARGUMENT;
    }
    scan_t s;
    memset(&s, 0, sizeof s);
    s.t = t;
    s.q = q;
    s.tbl = tbl;
    s.ix = ix;
    s.counting = counting;
    s.out = out;
    s.err = err;
    cvx_buf_t lo = {0}, hi = {0};
    bool hi_inf = false;
    int flag = CVX__CURSOR_AFTER;
    int rc = build_range(tbl, ix, q, &lo, &hi, &hi_inf, err);
    /* The range as asked for names its hot stripe (the one recorded may be
     * cut short by the page); a hot one is locked before the scan. */
    uint32_t stripe = rc || lo.oom || hi.oom ? 0
                                              : cvx__hot_before_read(t, ix->id, (const uint8_t *)lo.data, lo.len,
                                                                     (const uint8_t *)hi.data, hi.len, hi_inf);
    if (!rc && q->cursor && *q->cursor && !counting) rc = after_cursor(q, ix, &lo, &hi, &hi_inf, &flag, err);
    /* A fixed end: the range stops after its key; the page is all of it. */
    int end_flag = -1;
    if (!rc && q->end_cursor && *q->end_cursor && !counting)
        rc = until_end_cursor(q, ix, &lo, &hi, &hi_inf, &end_flag, err);
    cvx_query_t unlimited;
    if (end_flag >= 0) {
        unlimited = *q;
        unlimited.limit = -1;
        q = &unlimited;
        s.q = q;
    }
    s.arena = rc ? NULL : cvx_arena_new(8192);
    if (!rc && !s.arena) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    bool done_by_cursor = !rc && flag == CVX__CURSOR_END && !counting;
    if (!rc && !counting) cvx_buf_append_str(out, "{\"page\":[");
    if (!rc && !done_by_cursor && t->npending) rc = collect_pending(&s, &lo, &hi, hi_inf);
    if (!rc && !done_by_cursor && !(q->limit == 0 && !counting)) {
        cvx__rkey_t k = {ix->id, (const uint8_t *)lo.data, (const uint8_t *)hi.data, lo.len, hi.len, hi_inf, q->desc};
        rc = scan_rows(&s, &k, !q->cursor || !*q->cursor);
        if (rc == CVX__SCAN_STOP) rc = CVX_OK;
        if (!rc && !s.full) rc = flush_pending(&s, NULL, 0);
        if (rc == CVX__SCAN_STOP) rc = CVX_OK;
    }
    if (!rc) {
        /* The read set: the whole range, or up to the last key seen when
         * the page stopped early. */
        if (s.full && !q->desc) {
            cvx_buf_t end = {0};
            cvx_buf_append(&end, s.last_key.data, s.last_key.len);
            cvx_buf_append_char(&end, '\0');
            rc = end.oom ? CVX_E_NOMEM
                         : cvx__txn_read_range(t, ix->id, (const uint8_t *)lo.data, lo.len, (const uint8_t *)end.data,
                                               end.len, false, stripe);
            cvx_buf_free(&end);
        } else if (s.full) {
            rc = cvx__txn_read_range(t, ix->id, (const uint8_t *)s.last_key.data, s.last_key.len,
                                     (const uint8_t *)hi.data, hi.len, hi_inf, stripe);
        } else if (!done_by_cursor) {
            rc = cvx__txn_read_range(t, ix->id, (const uint8_t *)lo.data, lo.len, (const uint8_t *)hi.data, hi.len, hi_inf,
                                     stripe);
        }
        if (rc) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    if (!rc && !counting) rc = write_trailer(&s, end_flag, err);
    if (counting) *count = s.count;
    for (size_t i = 0; i < s.npend; i++) cvx_buf_free(&s.pend[i].key);
    cvx_free(s.pend);
    cvx_buf_free(&s.last_key);
    cvx_buf_free(&s.keys);
    cvx_buf_free(&s.prev_row_key);
    cvx_buf_free(&s.doc);
    cvx_buf_free(&s.rows);
    cvx_arena_free(s.arena);
    cvx_buf_free(&lo);
    cvx_buf_free(&hi);
    return rc;
}

int cvx_txn_query(cvx_txn_t *t, const cvx_query_t *q, cvx_buf_t *out, cvx_err_t *err) {
    size_t start = out->len;
    int rc = run(t, q, false, out, NULL, err);
    if (rc) {
        out->len = start; /* no half-written page */
        if (out->data) out->data[start] = '\0';
    }
    return rc;
}

int cvx_txn_count(cvx_txn_t *t, const cvx_query_t *q, uint64_t *count, cvx_err_t *err) {
    cvx_query_t all = *q;
    all.limit = -1;
    all.cursor = NULL;
    *count = 0;
    return run(t, &all, true, NULL, count, err);
}

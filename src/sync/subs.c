/* Subscriptions: the shared query results, each client's query set, the
 * runs that keep results current, the commits that make them stale, and
 * the Transitions that carry them (the engine's state is in sync_int.h;
 * sync.c receives the messages and runs the calls).
 *
 * Validity argument. A subscription's result computed at snapshot S is
 * valid at ts T >= S iff no commit in (S, T] wrote a key inside the read
 * set of that run. Commits are seen in ts order through the store's commit
 * listener: each commit marks touched results stale. A run that finishes
 * checks the commits that happened since its snapshot (the recent-commit
 * log) before its result is considered fresh. So "fresh" means valid at
 * `latest_ts`, and a Transition at `latest_ts` built only from fresh
 * results is one consistent snapshot.
 *
 * Cost. Client messages are handled on the host's event loop under the one
 * mutex, so the work one message causes must not grow with what other
 * clients (or this one, earlier) did: every query set modification is O(1)
 * (a per-client hash from query id to its entry, a growing hash of shared
 * subscriptions), a message only starts the runs it created (the `todo`
 * list) and looks at its own client (the `dirty` list), and a finished run
 * wakes only the clients subscribed to it (the subscription's watchers).
 * Deciding and building a Transition costs what changed, not the query
 * set: each client counts its queries that are not fresh (a subscription
 * tells its watchers when its freshness flips) and lists the ones whose
 * result it has not been sent. */
#include <string.h>

#include "sync/sync_int.h"

#define NBUCKETS_MIN 4096

/* ---- query id maps ------------------------------------------------------------ */

static size_t idmap_home(const cvx__idmap_t *m, uint32_t id) {
    return (size_t)cvx__sync_mix64(id ^ m->seed) & (m->cap - 1);
}

/* The index stored for id, or SIZE_MAX. */
static size_t idmap_find(const cvx__idmap_t *m, uint32_t id) {
    if (!m->cap) return SIZE_MAX;
    for (size_t i = idmap_home(m, id);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].at) return SIZE_MAX;
        if (m->slots[i].id == id) return m->slots[i].at - 1;
    }
}

/* Sets id -> at (at < UINT32_MAX), adding or replacing. Replacing never
 * allocates; adding may (-1: out of memory, the map unchanged). */
static int idmap_put(cvx__idmap_t *m, uint32_t id, size_t at) {
    if (m->cap) {
        size_t i = idmap_home(m, id);
        for (; m->slots[i].at; i = (i + 1) & (m->cap - 1))
            if (m->slots[i].id == id) {
                m->slots[i].at = (uint32_t)at + 1;
                return 0;
            }
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        cvx__idslot_t *slots = cvx_calloc(cap, sizeof *slots);
        if (!slots) return -1;
        cvx__idmap_t grown = {slots, cap, m->n, m->seed};
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->slots[k].at) continue;
            size_t i = idmap_home(&grown, m->slots[k].id);
            while (slots[i].at) i = (i + 1) & (cap - 1);
            slots[i] = m->slots[k];
        }
        cvx_free(m->slots);
        *m = grown;
    }
    size_t i = idmap_home(m, id);
    while (m->slots[i].at) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (cvx__idslot_t){id, (uint32_t)at + 1};
    m->n++;
    return 0;
}

static void idmap_del(cvx__idmap_t *m, uint32_t id) {
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = idmap_home(m, id);
    while (m->slots[i].at && m->slots[i].id != id) i = (i + 1) & mask;
    if (!m->slots[i].at) return;
    m->n--;
    /* Backward shift: an entry after the hole moves into it unless its
     * home lies (cyclically) after the hole, where a lookup starts past it. */
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].at) break;
        size_t home = idmap_home(m, m->slots[j].id);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].at = 0;
}

void cvx__sync_idmap_free(cvx__idmap_t *m) {
    cvx_free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

void cvx__sync_mark_dirty(cvx_sync_t *s, cvx_sync_client_t *c) {
    if (c->queued || c->closed) return;
    c->queued = true;
    c->dprev = NULL;
    c->dnext = s->dirty;
    if (s->dirty) s->dirty->dprev = c;
    s->dirty = c;
}

static void unmark_dirty(cvx_sync_t *s, cvx_sync_client_t *c) {
    if (!c->queued) return;
    if (c->dprev) c->dprev->dnext = c->dnext;
    else s->dirty = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dprev = c->dnext = NULL;
    c->queued = false;
}

static bool needs_run(const cvx_sync_t *s, const cvx__sub_t *u) {
    return !u->running && (!u->has_result || u->stale || u->gen != s->gen);
}

/* The subscription may need a run: the next pump looks. Under s->mu. */
static void todo_push(cvx_sync_t *s, cvx__sub_t *u) {
    if (u->in_todo) return;
    u->in_todo = true;
    u->todo_next = NULL;
    u->todo_prev = s->todo_tail;
    if (s->todo_tail) s->todo_tail->todo_next = u;
    else s->todo = u;
    s->todo_tail = u;
}

static void todo_unlink(cvx_sync_t *s, cvx__sub_t *u) {
    if (!u->in_todo) return;
    if (u->todo_prev) u->todo_prev->todo_next = u->todo_next;
    else s->todo = u->todo_next;
    if (u->todo_next) u->todo_next->todo_prev = u->todo_prev;
    else s->todo_tail = u->todo_prev;
    u->todo_prev = u->todo_next = NULL;
    u->in_todo = false;
}

/* Takes the subscription's read set out of the index. */
static void unfile(cvx_sync_t *s, cvx__sub_t *u) {
    for (size_t i = 0; i < u->nregs; i++) cvx_rindex_remove(s->index, &u->regs[i]);
    cvx_free(u->regs);
    u->regs = NULL;
    u->nregs = 0;
    if (u->unfiled) s->nunfiled--;
    u->unfiled = false;
}

/* Files the subscription's read set in the index, so that a commit finds
 * it by the keys it wrote. Out of memory, it is checked by a scan instead. */
static void file(cvx_sync_t *s, cvx__sub_t *u) {
    if (!u->readset) return;
    size_t n = cvx_readset_len(u->readset);
    u->regs = cvx_calloc(n ? n : 1, sizeof *u->regs);
    for (size_t i = 0; u->regs && i < n; i++) {
        u->regs[i].owner = u;
        cvx_readset_range(u->readset, i, &u->regs[i].r);
    }
    if (u->regs && cvx_rindex_add_all(s->index, u->regs, n) == CVX_OK) {
        u->nregs = n;
        return;
    }
    cvx_free(u->regs);
    u->regs = NULL;
    u->unfiled = true;
    s->nunfiled++;
}

static void sub_free(cvx__sub_t *u) {
    cvx_free(u->path);
    cvx_free(u->args);
    cvx_free(u->key_journal);
    cvx_free(u->identity);
    cvx_free(u->journal);
    cvx_buf_free(&u->value);
    cvx_buf_free(&u->data);
    cvx_buf_free(&u->logs);
    cvx_readset_free(u->readset);
    cvx_free(u->regs); /* filed only while s->index lives: unfile first, or free the index too */
    cvx_free(u);
}

/* Drops one reference; unlinks and frees at zero. Under s->mu. */
static void sub_unref(cvx_sync_t *s, cvx__sub_t *u) {
    if (--u->refs > 0) return;
    for (cvx__sub_t **p = &s->buckets[u->hash & (s->nbuckets - 1)]; *p; p = &(*p)->next) {
        if (*p == u) {
            *p = u->next;
            break;
        }
    }
    if (u->all_prev) u->all_prev->all_next = u->all_next;
    else s->all = u->all_next;
    if (u->all_next) u->all_next->all_prev = u->all_prev;
    todo_unlink(s, u);
    unfile(s, u);
    s->stats.subscriptions--;
    sub_free(u);
}

/* Doubles the buckets once there are more subscriptions than buckets, so
 * that chains stay short however many clients subscribe. Out of memory
 * leaves the table as it is (longer chains, still correct). */
static void sub_table_grow(cvx_sync_t *s) {
    if (s->stats.subscriptions < s->nbuckets) return;
    size_t n = s->nbuckets * 2;
    cvx__sub_t **b = cvx_calloc(n, sizeof *b);
    if (!b) return;
    for (cvx__sub_t *u = s->all; u; u = u->all_next) {
        u->next = b[u->hash & (n - 1)];
        b[u->hash & (n - 1)] = u;
    }
    cvx_free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Queries are shared by (path, args, journal, identity): a client that
 * comes back with the journal it was sent gets the same pages again, and
 * users never share a result (it may depend on who asks). The hash is
 * seeded: clients choose the args, and must not choose one chain. */
static cvx__sub_t *sub_get(cvx_sync_t *s, const char *path, size_t path_len, const char *args, size_t args_len,
                      const char *journal, const char *identity, size_t identity_len, bool admin) {
    uint64_t h = cvx_fnv1a(cvx_fnv1a(s->seed, path, path_len) ^ 0xff, args, args_len);
    if (journal) h = cvx_fnv1a(h ^ 0xfe, journal, strlen(journal));
    if (identity) h = cvx_fnv1a(h ^ 0xfd, identity, identity_len);
    if (admin) h ^= 0xfc;
    h = cvx__sync_mix64(h ^ s->seed);
    for (cvx__sub_t *u = s->buckets[h & (s->nbuckets - 1)]; u; u = u->next)
        if (u->hash == h && strlen(u->path) == path_len && !memcmp(u->path, path, path_len) &&
            u->args_len == args_len && !memcmp(u->args, args, args_len) &&
            (u->key_journal ? journal && !strcmp(u->key_journal, journal) : !journal) &&
            (u->identity ? identity && u->identity_len == identity_len && !memcmp(u->identity, identity, identity_len)
                         : !identity) &&
            u->admin == admin) {
            u->refs++;
            return u;
        }
    cvx__sub_t *u = cvx_calloc(1, sizeof *u);
    if (!u) return NULL;
    u->path = cvx_strndup(path, path_len);
    u->args = cvx_strndup(args, args_len);
    if (journal) {
        u->key_journal = cvx_strdup(journal);
        u->journal = cvx_strdup(journal);
    }
    if (identity) {
        u->identity = cvx_strndup(identity, identity_len);
        u->identity_len = identity_len;
    }
    if (!u->path || !u->args || (journal && (!u->key_journal || !u->journal)) || (identity && !u->identity)) {
        sub_free(u);
        return NULL;
    }
    u->args_len = args_len;
    u->admin = admin;
    u->hash = h;
    u->refs = 1;
    u->all_next = s->all;
    if (s->all) s->all->all_prev = u;
    s->all = u;
    u->next = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = u;
    s->stats.subscriptions++;
    sub_table_grow(s); /* after linking u: a rehash rebuilds every chain from s->all */
    todo_push(s, u);
    return u;
}

/* ---- transitions -------------------------------------------------------------- */

static bool sub_fresh(const cvx_sync_t *s, const cvx__sub_t *u) {
    return u->has_result && !u->running && !u->stale && u->gen == s->gen;
}

/* Does the client have this query, as far as it knows from the
 * Transitions it was sent? Then removing it must be told. */
static bool cq_known(const cvx__cq_t *q) { return q->replaces || q->epoch < q->c->epoch; }

/* q's result is to be sent (at the next Transition). */
static void changed_push(cvx_sync_client_t *c, cvx__cq_t *q) {
    if (q->in_changed) return;
    q->in_changed = true;
    q->chnext = NULL;
    q->chprev = c->changed_tail;
    if (c->changed_tail) c->changed_tail->chnext = q;
    else c->changed = q;
    c->changed_tail = q;
}

static void changed_unlink(cvx_sync_client_t *c, cvx__cq_t *q) {
    if (!q->in_changed) return;
    if (q->chprev) q->chprev->chnext = q->chnext;
    else c->changed = q->chnext;
    if (q->chnext) q->chnext->chprev = q->chprev;
    else c->changed_tail = q->chprev;
    q->chprev = q->chnext = NULL;
    q->in_changed = false;
}

/* Call after anything sub_fresh() reads changed: keeps every watcher's
 * count of queries not fresh exact, and wakes the watchers when the
 * result becomes fresh (they may be waiting for it). O(watchers), only
 * when freshness flips. Under s->mu. */
static void sub_update_fresh(cvx_sync_t *s, cvx__sub_t *u) {
    bool fresh = sub_fresh(s, u);
    if (fresh == u->fresh) return;
    u->fresh = fresh;
    for (cvx__cq_t *q = u->watchers; q; q = q->wnext) {
        if (fresh) {
            q->c->nunfresh--;
            cvx__sync_mark_dirty(s, q->c);
        } else {
            q->c->nunfresh++;
        }
    }
}

/* Sends a Transition if the client needs one and all its queries are fresh
 * at latest_ts. A client that must wait is woken again by what it waits
 * for: a run of one of its queries finishing (its watchers), or a commit
 * (need_ts). Under s->mu. */
void cvx__sync_try_transition(cvx_sync_t *s, cvx_sync_client_t *c) {
    unmark_dirty(s, c);
    if (c->closed || c->close_reason[0]) return;
    if (c->nunfresh) return; /* wait: some result is being (re)computed */
    if (s->latest_ts < c->need_ts) return;
    bool changed = c->nremoved > 0 || c->changed;
    if (!changed && !c->must_send && c->qs == c->sent_qs && c->ident == c->sent_ident && c->need_ts <= c->sent_ts)
        return;
    uint64_t ts = s->latest_ts > c->sent_ts ? s->latest_ts : c->sent_ts;
    cvx_buf_t b = {0};
    cvx__sync_put_transition_start(&b, (cvx__sync_version_t){c->sent_qs, c->sent_ident, c->sent_ts},
                                   (cvx__sync_version_t){c->qs, c->ident, ts});
    bool first = true;
    for (size_t i = 0; i < c->nremoved; i++) {
        if (!first) cvx_buf_append_char(&b, ',');
        cvx__sync_put_query_removed(&b, c->removed[i]);
        first = false;
    }
    while (c->changed) {
        cvx__cq_t *q = c->changed;
        changed_unlink(c, q);
        const cvx__sub_t *u = q->sub;
        if (q->seen == u->seq) continue;
        if (!first) cvx_buf_append_char(&b, ',');
        cvx__sync_outcome_t o = {u->ok, &u->value, &u->data, &u->logs};
        cvx__sync_put_query_result(&b, q->id, &o, u->journal);
        q->seen = u->seq;
        first = false;
    }
    cvx__sync_put_transition_end(&b);
    c->nremoved = 0;
    cvx__sync_idmap_free(&c->rmap);
    c->epoch++; /* every query now in the set is known to the client */
    c->sent_qs = c->qs;
    c->sent_ident = c->ident;
    c->sent_ts = ts;
    c->must_send = false;
    s->stats.transitions++;
    cvx__sync_enqueue(c, &b);
}

static void run_sub_task(void *arg);

typedef struct {
    cvx_sync_t *s;
    cvx__sub_t *u;
} run_arg_t;

/* Starts the runs that are due, oldest first and at most
 * max_running_queries at once (so that one client's thousands of new
 * subscriptions queue here, not ahead of every other call in the host's
 * workers), then sends what can be sent to the clients due a look.
 * Visits only the todo and dirty lists. Under s->mu. */
void cvx__sync_pump(cvx_sync_t *s) {
    while (s->todo && s->running < s->cfg.max_running_queries) {
        cvx__sub_t *u = s->todo;
        if (!needs_run(s, u)) {
            /* Fresh, or running: a run re-queues it when it ends. */
            todo_unlink(s, u);
            continue;
        }
        run_arg_t *ra = cvx_malloc(sizeof *ra);
        if (!ra) break; /* it stays queued: retried on the next pump */
        todo_unlink(s, u);
        ra->s = s;
        ra->u = u;
        u->running = true;
        u->stale = false;
        sub_update_fresh(s, u);
        u->refs++; /* held by the task */
        s->running++;
        s->hooks.submit(s->hooks.ctx, CVX_KIND_QUERY, run_sub_task, ra);
    }
    while (s->dirty) cvx__sync_try_transition(s, s->dirty);
}

static void mark_all_dirty(cvx_sync_t *s) {
    for (cvx_sync_client_t *c = s->clients; c; c = c->next) cvx__sync_mark_dirty(s, c);
}

/* ---- subscription runs ---------------------------------------------------------- */

static bool touched_since(cvx_sync_t *s, const cvx_readset_t *r, uint64_t since) {
    if (since < s->horizon) return true; /* the log no longer covers it */
    uint64_t first = s->nlog > CVX__SYNC_LOG_MAX ? s->nlog - CVX__SYNC_LOG_MAX : 0;
    /* Newest first, down to `since`. */
    for (uint64_t i = s->nlog; i > first; i--) {
        const cvx__logent_t *e = &s->log[(i - 1) % CVX__SYNC_LOG_MAX];
        if (e->ts <= since) break;
        cvx_commit_info_t info = {e->ts, e->keys, e->nkeys};
        if (cvx_readset_overlaps(r, &info)) return true;
    }
    return false;
}

/* One run of a subscription's query, on a worker. */
static void run_sub_task(void *arg) {
    run_arg_t *ra = arg;
    cvx_sync_t *s = ra->s;
    cvx__sub_t *u = ra->u;
    cvx_free(ra);
    pthread_mutex_lock(&s->mu);
    uint64_t gen = s->gen;
    char *path = cvx_strdup(u->path);
    char *args = cvx_strndup(u->args, u->args_len);
    char *journal = u->journal ? cvx_strdup(u->journal) : NULL;
    size_t args_len = u->args_len;
    /* The key's identity never changes: the sub holds it while we run. */
    const char *identity = u->identity;
    size_t identity_len = u->identity_len;
    bool admin = u->admin;
    pthread_mutex_unlock(&s->mu);

    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    if (path && args) {
        cvx_request_t req = {.path = path, .args_json = args, .args_len = args_len, .expect_kind = CVX_KIND_QUERY,
                             .want_readset = true, .journal = journal, .identity = identity,
                             .identity_len = identity_len, .allow_internal = admin};
        cvx_exec_call(s->rt, &req, &resp);
    } else {
        resp.r.status = CVX_E_NOMEM;
        cvx_buf_append_str(&resp.r.message, "out of memory");
    }

    pthread_mutex_lock(&s->mu);
    u->running = false;
    s->running--;
    s->stats.query_runs++;
    if (u->refs > 1) {
        bool ok = resp.r.status == CVX_OK;
        const cvx_buf_t *v = ok ? &resp.r.value : &resp.r.message;
        /* Its pages keep the ends they have now (a failed run keeps the old). */
        const char *nj = resp.r.journal.len ? resp.r.journal.data : NULL;
        bool same_journal = !ok || (nj ? u->journal && !strcmp(u->journal, nj) : !u->journal);
        if (!same_journal) {
            cvx_free(u->journal);
            u->journal = nj ? cvx_strdup(nj) : NULL;
        }
        bool same = u->has_result && u->ok == ok && u->value.len == v->len &&
                    (v->len == 0 || !memcmp(u->value.data, v->data, v->len)) && u->data.len == resp.r.data.len &&
                    (u->data.len == 0 || !memcmp(u->data.data, resp.r.data.data, u->data.len)) && same_journal;
        if (!same) {
            cvx_buf_reset(&u->value);
            cvx_buf_append(&u->value, v->data ? v->data : "", v->len);
            cvx_buf_reset(&u->data);
            if (!ok && resp.r.has_data) cvx_buf_append(&u->data, resp.r.data.data, resp.r.data.len);
            u->ok = ok;
            u->seq++;
            for (cvx__cq_t *q = u->watchers; q; q = q->wnext) changed_push(q->c, q);
        }
        cvx_buf_reset(&u->logs);
        if (resp.r.logs.len) cvx_buf_append(&u->logs, resp.r.logs.data, resp.r.logs.len);
        u->has_result = true;
        u->gen = gen;
        unfile(s, u);
        cvx_readset_free(u->readset);
        u->readset = resp.readset;
        resp.readset = NULL;
        file(s, u);
        u->snapshot = resp.ts;
        /* A failed run without a read set (unknown function) depends on
         * nothing but the code: it stays until the next deploy. */
        if (u->readset && touched_since(s, u->readset, resp.ts)) u->stale = true;
        if (u->value.oom || u->logs.oom || u->data.oom) u->stale = true;
        /* Stale again, or computed with code replaced meanwhile. */
        if (needs_run(s, u)) todo_push(s, u);
    }
    /* Only its own clients can be waiting for this result: they are woken
     * if it is fresh now. */
    sub_update_fresh(s, u);
    sub_unref(s, u);
    cvx__sync_pump(s);
    pthread_mutex_unlock(&s->mu);
    cvx_response_free(&resp);
    cvx_free(path);
    cvx_free(args);
    cvx_free(journal);
}

/* ---- commits ------------------------------------------------------------------- */

/* Remembers a commit for the runs that started before it. Under s->mu. */
static void remember(cvx_sync_t *s, const cvx_commit_info_t *ci) {
    cvx__logent_t *e = &s->log[s->nlog % CVX__SYNC_LOG_MAX];
    if (s->nlog >= CVX__SYNC_LOG_MAX) s->horizon = e->ts;
    cvx_buf_free(&e->bytes);
    cvx_free(e->keys);
    memset(e, 0, sizeof *e);
    e->ts = ci->ts;
    e->keys = cvx_calloc(ci->nkeys ? ci->nkeys : 1, sizeof *e->keys);
    size_t total = 0;
    for (size_t i = 0; i < ci->nkeys; i++) total += ci->keys[i].key_len;
    if (!e->keys || cvx_buf_reserve(&e->bytes, total)) {
        /* Cannot remember it: treat every run as unverifiable. */
        s->horizon = ci->ts;
    } else {
        for (size_t i = 0; i < ci->nkeys; i++) {
            e->keys[i].index_id = ci->keys[i].index_id;
            e->keys[i].key_len = ci->keys[i].key_len;
            e->keys[i].key = (const uint8_t *)e->bytes.data + e->bytes.len;
            cvx_buf_append(&e->bytes, ci->keys[i].key, ci->keys[i].key_len);
        }
        e->nkeys = ci->nkeys;
    }
    s->nlog++;
}

/* A commit wrote into a range subscription u read: a re-run is due, unless
 * one is running (its result is checked against the commits since its
 * snapshot when it ends) or already due. */
static void touched(void *owner, void *ctx) {
    cvx__sub_t *u = owner;
    cvx_sync_t *s = ctx;
    if (!u->has_result || u->running || u->stale) return;
    u->stale = true;
    sub_update_fresh(s, u);
    todo_push(s, u);
}

void cvx__sync_on_commit(void *ctx, const cvx_commit_info_t *ci) {
    cvx_sync_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->stats.commits_seen++;
    if (ci->ts > s->latest_ts) s->latest_ts = ci->ts;
    /* No subscription means no run in flight (a run holds one), so nothing
     * to remember the commit for: every later run starts after it. */
    if (s->all) remember(s, ci);
    else s->horizon = ci->ts;
    for (size_t k = 0; k < ci->nkeys; k++)
        cvx_rindex_match(s->index, ci->keys[k].index_id, ci->keys[k].key, ci->keys[k].key_len, touched, s);
    for (cvx__sub_t *u = s->all; s->nunfiled && u; u = u->all_next)
        if (u->unfiled && cvx_readset_overlaps(u->readset, ci)) touched(u, s);
    /* The clients of those subscriptions hear when the re-runs end; here,
     * only clients waiting for latest_ts to reach a mutation's commit. */
    for (cvx_sync_client_t *c = s->clients; c; c = c->next)
        if (c->need_ts > c->sent_ts) cvx__sync_mark_dirty(s, c);
    cvx__sync_pump(s);
    pthread_mutex_unlock(&s->mu);
}

/* ---- query sets ---------------------------------------------------------------- */

/* Drops query i of the client; the last one takes its place. O(1). */
static void remove_query(cvx_sync_t *s, cvx_sync_client_t *c, size_t i) {
    cvx__cq_t *q = c->queries[i];
    idmap_del(&c->qmap, q->id);
    changed_unlink(c, q);
    if (!q->sub->fresh) c->nunfresh--;
    if (q->wprev) q->wprev->wnext = q->wnext;
    else q->sub->watchers = q->wnext;
    if (q->wnext) q->wnext->wprev = q->wprev;
    sub_unref(s, q->sub);
    cvx_free(q);
    size_t last = --c->nq;
    if (i != last) {
        c->queries[i] = c->queries[last];
        idmap_put(&c->qmap, c->queries[i]->id, i); /* replaces: cannot fail */
    }
}

/* Takes id off the ids to send as QueryRemoved, if there. O(1). */
static void unremove(cvx_sync_client_t *c, uint32_t id) {
    size_t r = idmap_find(&c->rmap, id);
    if (r == SIZE_MAX) return;
    idmap_del(&c->rmap, id);
    size_t last = --c->nremoved;
    if (r != last) {
        c->removed[r] = c->removed[last];
        idmap_put(&c->rmap, c->removed[r], r); /* replaces: cannot fail */
    }
}

/* Adds query mod->query_id to the client's set; m is the message (its
 * fault is reported here if it is this Add's). O(1). */
static void add_query(cvx_sync_t *s, cvx_sync_client_t *c, const cvx__sync_msg_t *m, const cvx__sync_mod_t *mod) {
    uint32_t id = mod->query_id;
    if (idmap_find(&c->qmap, id) != SIZE_MAX) {
        cvx__sync_fatal(c, "query %u is already in the query set", id);
        return;
    }
    /* Each query costs memory and runs; the Convex client subscribes to
     * one per distinct (function, args) on screen, far below this. */
    if (c->nq >= s->cfg.max_queries_per_client) {
        cvx__sync_fatal(c, "query %u would exceed the limit of %u queries per client (max_queries_per_client)", id,
                        s->cfg.max_queries_per_client);
        return;
    }
    if (mod->fault) {
        cvx__sync_fatal(c, "%s", m->error);
        return;
    }
    if (c->nq == c->capq) {
        size_t cap = c->capq ? c->capq * 2 : 8;
        cvx__cq_t **qs = cvx_realloc(c->queries, cap * sizeof *qs);
        if (!qs) {
            cvx__sync_fatal(c, "server out of memory");
            return;
        }
        c->queries = qs;
        c->capq = cap;
    }
    cvx__cq_t *q = cvx_calloc(1, sizeof *q);
    if (!q || idmap_put(&c->qmap, id, c->nq)) {
        cvx_free(q);
        cvx__sync_fatal(c, "server out of memory");
        return;
    }
    cvx__sub_t *u = sub_get(s, mod->udf_path, mod->udf_path_len, mod->args, mod->args_len, mod->journal, c->identity,
                            c->identity_len, c->admin);
    if (!u) {
        idmap_del(&c->qmap, id);
        cvx_free(q);
        cvx__sync_fatal(c, "server out of memory");
        return;
    }
    /* A result someone else already has is sent as is; seen = 0 makes it
     * count as changed for this client. An id the client removed since
     * the last Transition needs no QueryRemoved now: the new query's
     * update replaces what the client has for it. */
    q->c = c;
    q->sub = u;
    q->id = id;
    q->epoch = c->epoch;
    q->replaces = idmap_find(&c->rmap, id) != SIZE_MAX;
    if (q->replaces) unremove(c, id);
    q->wnext = u->watchers;
    if (u->watchers) u->watchers->wprev = q;
    u->watchers = q;
    if (!u->fresh) c->nunfresh++;
    if (q->seen != u->seq) changed_push(c, q); /* else: its first result will be */
    c->queries[c->nq++] = q;
}

/* Moves q from its subscription to u (a reference the caller got for
 * it), keeping the freshness counts exact; its result counts as changed. */
static void move_query(cvx_sync_t *s, cvx_sync_client_t *c, cvx__cq_t *q, cvx__sub_t *u) {
    cvx__sub_t *old = q->sub;
    if (!old->fresh) c->nunfresh--;
    if (q->wprev) q->wprev->wnext = q->wnext;
    else old->watchers = q->wnext;
    if (q->wnext) q->wnext->wprev = q->wprev;
    q->wprev = NULL;
    q->sub = u;
    q->wnext = u->watchers;
    if (u->watchers) u->watchers->wprev = q;
    u->watchers = q;
    if (!u->fresh) c->nunfresh++;
    q->seen = 0;
    changed_push(c, q);
    sub_unref(s, old);
}

void cvx__sync_set_identity(cvx_sync_t *s, cvx_sync_client_t *c, char *identity, size_t len) {
    bool same = c->identity ? identity && c->identity_len == len && !memcmp(c->identity, identity, len) : !identity;
    if (same) {
        cvx_free(identity);
    } else {
        cvx_free(c->identity);
        c->identity = identity;
        c->identity_len = identity ? len : 0;
    }
    for (size_t i = 0; i < c->nq; i++) {
        cvx__cq_t *q = c->queries[i];
        const cvx__sub_t *old = q->sub;
        if (same && old->admin == c->admin) continue; /* nothing changed for it */
        cvx__sub_t *u = sub_get(s, old->path, strlen(old->path), old->args, old->args_len, old->key_journal,
                                c->identity, c->identity_len, c->admin);
        if (!u) {
            cvx__sync_fatal(c, "server out of memory");
            return;
        }
        move_query(s, c, q, u);
    }
}

/* Takes query `id` out of the client's set. O(1). */
static void remove_id(cvx_sync_t *s, cvx_sync_client_t *c, uint32_t id) {
    size_t found = idmap_find(&c->qmap, id);
    if (found == SIZE_MAX) {
        cvx__sync_fatal(c, "query %u is not in the query set", id);
        return;
    }
    bool known = cq_known(c->queries[found]);
    remove_query(s, c, found);
    /* A query the client never got needs no QueryRemoved. So each id is
     * listed once, and only ids of the last Transition. */
    if (!known) return;
    if (c->nremoved == c->capremoved) {
        size_t cap = c->capremoved ? c->capremoved * 2 : 8;
        uint32_t *r = cvx_realloc(c->removed, cap * sizeof *r);
        if (!r) {
            cvx__sync_fatal(c, "server out of memory");
            return;
        }
        c->removed = r;
        c->capremoved = cap;
    }
    if (idmap_put(&c->rmap, id, c->nremoved)) {
        cvx__sync_fatal(c, "server out of memory");
        return;
    }
    c->removed[c->nremoved++] = id;
}

void cvx__sync_modify(cvx_sync_t *s, cvx_sync_client_t *c, const cvx__sync_msg_t *m) {
    if (m->fault == CVX__SYNC_FAULT) {
        cvx__sync_fatal(c, "%s", m->error);
        return;
    }
    if (m->base_version != (double)c->qs) {
        cvx__sync_fatal(c, "ModifyQuerySet baseVersion %.0f does not match the query set version %u",
                        m->base_version, c->qs);
        return;
    }
    if (m->fault == CVX__SYNC_FAULT_AFTER_BASE) {
        cvx__sync_fatal(c, "%s", m->error);
        return;
    }
    /* A message that would pass the query limit even if every Remove in it
     * applied is refused whole, before any of its Adds starts a run. */
    if (c->nq + m->adds > (size_t)s->cfg.max_queries_per_client + m->others) {
        cvx__sync_fatal(c,
                        "the query set would hold %zu queries, past the limit of %u per client "
                        "(max_queries_per_client)",
                        c->nq + m->adds - CVX_MIN(m->others, c->nq + m->adds), s->cfg.max_queries_per_client);
        return;
    }
    /* Every modification below is O(1): a message's cost is its length. A
     * refused message's last modification carries its fault. */
    for (size_t i = 0; i < m->nmods; i++) {
        const cvx__sync_mod_t *mod = &m->mods[i];
        if (mod->fault == CVX__SYNC_MOD_BAD) cvx__sync_fatal(c, "%s", m->error);
        else if (mod->op == CVX__SYNC_ADD) add_query(s, c, m, mod);
        else remove_id(s, c, mod->query_id);
        if (cvx__sync_closing(c)) return;
    }
    if (m->fault) { /* cannot happen: the faulty modification stops the loop */
        cvx__sync_fatal(c, "%s", m->error);
        return;
    }
    c->qs = (uint32_t)m->new_version;
    cvx__sync_mark_dirty(s, c);
}

/* ---- lifetime ------------------------------------------------------------------ */

void cvx__sync_forget_client(cvx_sync_t *s, cvx_sync_client_t *c) {
    unmark_dirty(s, c);
    while (c->nq) remove_query(s, c, c->nq - 1);
}

int cvx__sync_subs_init(cvx_sync_t *s) {
    s->nbuckets = NBUCKETS_MIN;
    s->buckets = cvx_calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets || cvx_rindex_new(&s->index)) {
        cvx_free(s->buckets);
        return -1;
    }
    return 0;
}

void cvx__sync_subs_free(cvx_sync_t *s) {
    while (s->all) {
        cvx__sub_t *u = s->all;
        s->all = u->all_next;
        sub_free(u);
    }
    cvx_rindex_free(s->index);
    s->index = NULL;
    cvx_free(s->buckets);
    s->buckets = NULL;
    for (size_t i = 0; i < CVX__SYNC_LOG_MAX; i++) {
        cvx_buf_free(&s->log[i].bytes);
        cvx_free(s->log[i].keys);
    }
}

void cvx_sync_code_changed(cvx_sync_t *s) {
    pthread_mutex_lock(&s->mu);
    s->gen = cvx_runtime_generation(s->rt);
    for (cvx__sub_t *u = s->all; u; u = u->all_next) {
        sub_update_fresh(s, u);
        todo_push(s, u);
    }
    mark_all_dirty(s);
    cvx__sync_pump(s);
    pthread_mutex_unlock(&s->mu);
}


/* Source maps: where a JavaScript app's errors really happened.
 *
 * The engine runs one bundle, so its stack frames read "bundle.js:812:17";
 * the deploy carries esbuild's source map (v3) in the module's
 * cvx.js.sourcemap section, and this file turns such frames back into
 * "convex/messages.ts:12:9" when an error is reported. The map is decoded
 * once, when the app is loaded, into a table of segments sorted by
 * generated position; a lookup is a binary search. Frames of cvx's own
 * prelude are dropped: they are the runtime's, not the app's. */
#include "abi/abi_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t line, col;       /* generated, 0-based */
    uint32_t src, oline, ocol; /* original, 0-based */
} seg_t;

struct cvx_sourcemap {
    char **sources;
    size_t nsources;
    seg_t *segs;
    size_t nsegs;
};

static int vlq_value(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* One base64 VLQ number; false on malformed input. */
static bool vlq(const char **p, const char *end, int64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 60; shift += 5) {
        if (*p >= end) return false;
        int d = vlq_value(*(*p)++);
        if (d < 0) return false;
        v |= (uint64_t)(d & 31) << shift;
        if (!(d & 32)) {
            *out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
            return true;
        }
    }
    return false;
}

void cvx_sourcemap_free(cvx_sourcemap_t *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nsources; i++) cvx_free(m->sources[i]);
    cvx_free(m->sources);
    cvx_free(m->segs);
    cvx_free(m);
}

/* Decodes "mappings". Positions must stay in range: a segment whose
 * source, line or column goes negative or past 2^31 ends the parse. */
static int decode(cvx_sourcemap_t *m, const char *p, const char *end, cvx_err_t *err) {
    size_t cap = 0;
    /* The fifth field (an index into "names") is read but not summed: cvx
     * does not use names, and an unchecked sum could overflow. */
    int64_t line = 0, col = 0, src = 0, oline = 0, ocol = 0;
    while (p < end) {
        if (*p == ';') {
            line++;
            col = 0;
            p++;
            continue;
        }
        if (*p == ',') {
            p++;
            continue;
        }
        int64_t f[5] = {0};
        int n = 0;
        while (n < 5 && p < end && *p != ',' && *p != ';') {
            if (!vlq(&p, end, &f[n])) return cvx_err_set(err, CVX_E_INVALID_VALUE, "source map: malformed mappings");
            n++;
        }
        if (p < end && *p != ',' && *p != ';') return cvx_err_set(err, CVX_E_INVALID_VALUE, "source map: malformed mappings");
        col += f[0];
        if (n >= 4) {
            src += f[1];
            oline += f[2];
            ocol += f[3];
        }
        if (col < 0 || col > INT32_MAX || line > INT32_MAX || src < 0 || oline < 0 || ocol < 0 || oline > INT32_MAX ||
            ocol > INT32_MAX || (size_t)src >= m->nsources)
            return cvx_err_set(err, CVX_E_INVALID_VALUE, "source map: a mapping points outside its sources");
        if (n < 4) continue;
        if (m->nsegs == cap) {
            cap = cap ? cap * 2 : 1024;
            seg_t *s = cvx_realloc(m->segs, cap * sizeof *s);
            if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading a source map");
            m->segs = s;
        }
        m->segs[m->nsegs++] = (seg_t){(uint32_t)line, (uint32_t)col, (uint32_t)src, (uint32_t)oline, (uint32_t)ocol};
    }
    return CVX_OK;
}

int cvx_sourcemap_parse(const char *json, size_t len, cvx_sourcemap_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_arena_t *a = cvx_arena_new(len + 4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *v;
    int rc = cvx_json_parse(a, json, len, &v, err);
    const cvx_value_t *sources = rc ? NULL : cvx_obj_get_cstr(v, "sources");
    const cvx_value_t *mappings = rc ? NULL : cvx_obj_get_cstr(v, "mappings");
    if (!rc && (v->type != CVX_T_OBJECT || !sources || sources->type != CVX_T_ARRAY || !mappings ||
                mappings->type != CVX_T_STRING))
        rc = cvx_err_set(err, CVX_E_INVALID_VALUE, "source map: needs \"sources\" and \"mappings\"");
    cvx_sourcemap_t *m = rc ? NULL : cvx_calloc(1, sizeof *m);
    if (!rc && !m) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        m->sources = cvx_calloc(sources->u.arr.len ? sources->u.arr.len : 1, sizeof *m->sources);
        if (!m->sources) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        for (size_t i = 0; !rc && i < sources->u.arr.len; i++) {
            const cvx_value_t *s = sources->u.arr.items[i];
            const char *name = s->type == CVX_T_STRING ? s->u.str.ptr : "?";
            /* esbuild writes sources relative to the bundle; the app's
             * files read best from the app's root. */
            while (!strncmp(name, "../", 3)) name += 3;
            m->sources[i] = cvx_strdup(name);
            if (!m->sources[i]) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            m->nsources = i + 1;
        }
    }
    if (!rc) rc = decode(m, mappings->u.str.ptr, mappings->u.str.ptr + mappings->u.str.len, err);
    cvx_arena_free(a);
    if (rc) {
        cvx_sourcemap_free(m);
        return rc;
    }
    *out = m;
    return CVX_OK;
}

bool cvx_sourcemap_lookup(const cvx_sourcemap_t *m, uint32_t line, uint32_t col, const char **src, uint32_t *oline,
                           uint32_t *ocol) {
    if (!m || line == 0 || col == 0) return false;
    uint32_t l = line - 1, c = col - 1;
    /* The last segment at or before (l, c) on line l. */
    size_t lo = 0, hi = m->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const seg_t *s = &m->segs[mid];
        if (s->line < l || (s->line == l && s->col <= c)) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0 || m->segs[lo - 1].line != l) return false;
    const seg_t *s = &m->segs[lo - 1];
    *src = m->sources[s->src];
    *oline = s->oline + 1;
    *ocol = s->ocol + 1;
    return true;
}

/* The digits at *p (none: 0), read no further than `end`, which a stack
 * need not be terminated after; past UINT32_MAX the value sticks above it. */
static uint64_t decimal(const char **p, const char *end) {
    uint64_t v = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++)
        if (v <= UINT32_MAX) v = v * 10 + (uint64_t)(**p - '0');
    return v;
}

/* Rewrites each "(bundle.js:L:C)" or "at bundle.js:L:C" position of a stack
 * into the app's file and line; drops frames of cvx's prelude, and frames
 * in the bundle's own glue (esbuild's wrapper: no source maps there). */
void cvx_sourcemap_rewrite(const cvx_sourcemap_t *m, const char *stack, size_t len, cvx_buf_t *out) {
    const char *p = stack, *end = stack + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        bool prelude = false;
        for (const char *q = p; q + 11 <= eol && !prelude; q++) prelude = !memcmp(q, "cvx:prelude", 11);
        if (!prelude && n > 0) {
            const char *b = NULL;
            for (const char *q = p; q + 10 <= eol && !b; q++)
                if (!memcmp(q, "bundle.js:", 10)) b = q;
            uint64_t line = 0, col = 0;
            const char *after = NULL;
            const char *src;
            uint32_t ol, oc;
            if (b) {
                after = b + 10;
                line = decimal(&after, eol);
                if (after < eol && *after == ':') {
                    after++;
                    col = decimal(&after, eol);
                }
            }
            if (b && line <= UINT32_MAX && col <= UINT32_MAX &&
                cvx_sourcemap_lookup(m, (uint32_t)line, (uint32_t)col, &src, &ol, &oc)) {
                cvx_buf_append(out, p, (size_t)(b - p));
                cvx_buf_printf(out, "%s:%u:%u", src, ol, oc);
                cvx_buf_append(out, after, (size_t)(eol - after));
            } else if (b && m) {
                p = nl ? nl + 1 : end;
                continue;
            } else {
                cvx_buf_append(out, p, n);
            }
            cvx_buf_append_char(out, '\n');
        }
        p = nl ? nl + 1 : end;
    }
    /* No trailing newline: the caller decides. */
    while (out->len && out->data[out->len - 1] == '\n') out->len--;
    if (out->data) out->data[out->len] = '\0';
}

/* The client protocol's messages (see protocol.h): decoding what a client
 * sends, encoding what the server sends.
 *
 * Decoding accepts exactly what the engine accepted when it read the
 * parsed JSON itself, and refuses with the same texts: a field of the
 * wrong type reads as absent, and the first fault found is the one
 * reported (a string with a NUL, say, wins over the "needs ..." message
 * its absence would give). Numbers are JSON numbers holding integers in
 * [0, 2^53); strings used as C strings may not hold a NUL. */
#include "sync/protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_SAFE_INTEGER 9007199254740991.0

/* Ends s (cut short by vsnprintf) before a UTF-8 sequence the cut split:
 * the text goes into a JSON string in a text frame, which must be UTF-8. */
static void trim_split_utf8(char *s) {
    size_t n = strlen(s), lead = n;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead == 0) return;
    unsigned char b0 = (unsigned char)s[lead - 1];
    size_t need = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1;
    if (lead - 1 + need > n) s[lead - 1] = '\0';
}

static int refuse(cvx__sync_msg_t *m, cvx__sync_fault_t where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses the message with a text reported at `where`. Only the first
 * fault counts. Returns CVX_E_INVALID_ARGUMENT. */
static int refuse(cvx__sync_msg_t *m, cvx__sync_fault_t where, const char *fmt, ...) {
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    if (n < 0) snprintf(m->error, sizeof m->error, "malformed message");
    else if ((size_t)n >= sizeof m->error) trim_split_utf8(m->error);
    m->fault = where;
    return CVX_E_INVALID_ARGUMENT;
}

static int nomem(cvx__sync_msg_t *m) {
    refuse(m, CVX__SYNC_FAULT, "server out of memory");
    return CVX_E_NOMEM;
}

/* A string field, or NULL when absent or not a string. A string with a
 * NUL inside refuses the message at `where` (and is NULL): these fields
 * are used as C strings from here on, where "users:count\u0000x" would be
 * cut to "users:count" and run it, and a journal or session cut short
 * would name someone else's. */
static const char *str(cvx__sync_msg_t *m, cvx__sync_fault_t where, const cvx_value_t *o, const char *k,
                       size_t *len) {
    const cvx_value_t *v = cvx_obj_get_cstr(o, k);
    if (!v || v->type != CVX_T_STRING) return NULL;
    if (memchr(v->u.str.ptr, '\0', v->u.str.len)) {
        refuse(m, where, "\"%s\" contains a NUL character", k);
        return NULL;
    }
    if (len) *len = v->u.str.len;
    return v->u.str.ptr;
}

/* A number field holding an integer in [0, 2^53). The range test is
 * written to be false for NaN (a {"$float": ...} may hold one), which
 * must not reach the cast. */
static bool num(const cvx_value_t *o, const char *k, double *out) {
    const cvx_value_t *v = cvx_obj_get_cstr(o, k);
    if (!v || v->type != CVX_T_FLOAT64 || !(v->u.f >= 0 && v->u.f <= MAX_SAFE_INTEGER) ||
        v->u.f != (double)(int64_t)v->u.f)
        return false;
    *out = v->u.f;
    return true;
}

/* args: [obj] (or obj) -> canonical JSON of obj; "{}" when absent or []. */
static int args_json(const cvx_value_t *msg, cvx_buf_t *out) {
    const cvx_value_t *args = cvx_obj_get_cstr(msg, "args");
    if (args && args->type == CVX_T_ARRAY) {
        if (args->u.arr.len > 1) return -1;
        args = args->u.arr.len ? args->u.arr.items[0] : NULL;
    }
    if (args && args->type != CVX_T_OBJECT) return -1;
    if (args) cvx_json_write(out, args);
    else cvx_buf_append_str(out, "{}");
    return out->oom ? -1 : 0;
}

/* ---- client messages ----------------------------------------------------------- */

static int decode_connect(cvx__sync_msg_t *m, const cvx_value_t *v) {
    size_t len = 0;
    const char *session = str(m, CVX__SYNC_FAULT, v, "sessionId", &len);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    if (len > CVX__SYNC_SESSION_MAX)
        return refuse(m, CVX__SYNC_FAULT, "sessionId is longer than %d bytes", CVX__SYNC_SESSION_MAX);
    m->session_id = session ? session : "";
    return CVX_OK;
}

/* Modification i of a ModifyQuerySet into m->mods[i]. `scratch` holds
 * each Add's args while they are written. */
static int decode_mod(cvx__sync_msg_t *m, size_t i, const cvx_value_t *v, cvx_buf_t *scratch) {
    const cvx__sync_fault_t at = CVX__SYNC_FAULT_IN_MODS;
    cvx__sync_mod_t *mod = &m->mods[i];
    memset(mod, 0, sizeof *mod);
    mod->fault = CVX__SYNC_MOD_BAD;
    const char *type = v->type == CVX_T_OBJECT ? str(m, at, v, "type", NULL) : NULL;
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    double qid;
    if (!type || !num(v, "queryId", &qid))
        return refuse(m, at, "query set modification %zu needs a type and a queryId", i);
    if (qid > UINT32_MAX) return refuse(m, at, "queryId %.0f is out of range", qid);
    mod->query_id = (uint32_t)qid;
    if (!strcmp(type, "Remove")) {
        mod->op = CVX__SYNC_REMOVE;
        mod->fault = CVX__SYNC_MOD_OK;
        return CVX_OK;
    }
    if (strcmp(type, "Add") != 0) return refuse(m, at, "unknown query set modification \"%s\"", type);
    mod->op = CVX__SYNC_ADD;
    /* From here on the engine checks the query id first. */
    mod->fault = CVX__SYNC_MOD_BAD_ADD;
    const char *path = str(m, at, v, "udfPath", &mod->udf_path_len);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    const char *journal = str(m, at, v, "journal", NULL);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    cvx_buf_reset(scratch);
    if (!path || args_json(v, scratch))
        return refuse(m, at, "Add of query %u needs a udfPath and args: [object]", mod->query_id);
    char *args = cvx_arena_strndup(m->arena, scratch->data, scratch->len);
    if (!args) return nomem(m);
    mod->udf_path = path;
    mod->args = args;
    mod->args_len = scratch->len;
    mod->journal = journal && *journal ? journal : NULL;
    mod->fault = CVX__SYNC_MOD_OK;
    return CVX_OK;
}

static int decode_modify(cvx__sync_msg_t *m, const cvx_value_t *v) {
    const cvx_value_t *mods = cvx_obj_get_cstr(v, "modifications");
    if (!num(v, "baseVersion", &m->base_version) || !num(v, "newVersion", &m->new_version) || !mods ||
        mods->type != CVX_T_ARRAY)
        return refuse(m, CVX__SYNC_FAULT, "ModifyQuerySet needs baseVersion, newVersion and modifications");
    /* Versions are u32 in the engine: a larger double must not reach its
     * casts. */
    if (m->new_version > (double)(UINT32_MAX - 1))
        return refuse(m, CVX__SYNC_FAULT_AFTER_BASE, "ModifyQuerySet newVersion %.0f is out of range",
                      m->new_version);
    if (m->new_version <= m->base_version)
        return refuse(m, CVX__SYNC_FAULT_AFTER_BASE,
                      "ModifyQuerySet newVersion %.0f must be greater than baseVersion %.0f", m->new_version,
                      m->base_version);
    size_t n = mods->u.arr.len;
    for (size_t i = 0; i < n; i++) {
        const cvx_value_t *mod = mods->u.arr.items[i];
        const cvx_value_t *t = mod->type == CVX_T_OBJECT ? cvx_obj_get_cstr(mod, "type") : NULL;
        /* As the limit has always been counted: a type "Add\u0000..."
         * counts as an Add here, and is refused below. */
        if (t && t->type == CVX_T_STRING && !strcmp(t->u.str.ptr, "Add")) m->adds++;
        else m->others++;
    }
    if (!n) return CVX_OK;
    m->mods = cvx_arena_alloc(m->arena, n * sizeof *m->mods);
    if (!m->mods) return nomem(m);
    cvx_buf_t scratch = {0};
    int rc = CVX_OK;
    for (size_t i = 0; i < n && rc == CVX_OK; i++) {
        m->nmods = i + 1;
        rc = decode_mod(m, i, mods->u.arr.items[i], &scratch);
    }
    cvx_buf_free(&scratch);
    return rc;
}

static int decode_authenticate(cvx__sync_msg_t *m, const cvx_value_t *v) {
    const char *type = str(m, CVX__SYNC_FAULT, v, "tokenType", NULL);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    if (!type || !num(v, "baseVersion", &m->base_version))
        return refuse(m, CVX__SYNC_FAULT, "Authenticate needs tokenType and baseVersion");
    if (m->base_version > (double)(UINT32_MAX - 1))
        return refuse(m, CVX__SYNC_FAULT, "Authenticate baseVersion %.0f is out of range", m->base_version);
    if (!strcmp(type, "Admin")) {
        m->token_type = CVX__SYNC_TOKEN_ADMIN;
        m->token = str(m, CVX__SYNC_FAULT, v, "value", NULL);
        /* What the dashboard and `npx convex run --identity` send to act
         * as a user. */
        const cvx_value_t *as = cvx_obj_get_cstr(v, "impersonating");
        if (as && as->type == CVX_T_OBJECT) {
            cvx_buf_t j = {0};
            cvx_json_write(&j, as);
            if (j.oom) {
                cvx_buf_free(&j);
                return nomem(m);
            }
            char *copy = cvx_arena_alloc(m->arena, j.len + 1);
            if (!copy) {
                cvx_buf_free(&j);
                return nomem(m);
            }
            memcpy(copy, j.data, j.len);
            copy[j.len] = '\0';
            m->impersonating = copy;
            m->impersonating_len = j.len;
            cvx_buf_free(&j);
        } else if (as && as->type != CVX_T_NULL) {
            return refuse(m, CVX__SYNC_FAULT, "Authenticate impersonating must be an object");
        }
    } else if (!strcmp(type, "User")) {
        /* Never one with a NUL: it would verify as a shorter string. */
        m->token_type = CVX__SYNC_TOKEN_USER;
        m->token = str(m, CVX__SYNC_FAULT, v, "value", NULL);
    } else if (!strcmp(type, "None")) {
        m->token_type = CVX__SYNC_TOKEN_NONE;
    } else {
        return refuse(m, CVX__SYNC_FAULT, "unknown tokenType \"%s\"", type);
    }
    return m->fault ? CVX_E_INVALID_ARGUMENT : CVX_OK;
}

static int decode_call(cvx__sync_msg_t *m, const cvx_value_t *v) {
    const char *path = str(m, CVX__SYNC_FAULT, v, "udfPath", NULL);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    if (!num(v, "requestId", &m->request_id) || !path || args_json(v, &m->args))
        return refuse(m, CVX__SYNC_FAULT, "%s needs requestId, udfPath and args: [object]",
                      m->type == CVX__SYNC_MUTATION ? "Mutation" : "Action");
    m->udf_path = path;
    return CVX_OK;
}

int cvx__sync_decode(const char *json, size_t len, cvx__sync_msg_t *m) {
    memset(m, 0, sizeof *m);
    m->arena = cvx_arena_new(4096);
    if (!m->arena) return nomem(m);
    cvx_value_t *v = NULL;
    cvx_err_t err = {0};
    int rc = cvx_json_parse(m->arena, json, len, &v, &err);
    if (rc != CVX_OK) {
        refuse(m, CVX__SYNC_FAULT, "message is not valid JSON: %s", err.msg);
        return rc == CVX_E_NOMEM ? CVX_E_NOMEM : CVX_E_INVALID_ARGUMENT;
    }
    if (v->type != CVX_T_OBJECT) return refuse(m, CVX__SYNC_FAULT, "message is not a JSON object");
    const char *type = str(m, CVX__SYNC_FAULT, v, "type", NULL);
    if (m->fault) return CVX_E_INVALID_ARGUMENT;
    if (!type) return refuse(m, CVX__SYNC_FAULT, "message has no \"type\"");
    static const struct {
        const char *name;
        cvx__sync_type_t type;
    } types[] = {
        {"Connect", CVX__SYNC_CONNECT},   {"ModifyQuerySet", CVX__SYNC_MODIFY_QUERY_SET},
        {"Authenticate", CVX__SYNC_AUTHENTICATE}, {"Mutation", CVX__SYNC_MUTATION},
        {"Action", CVX__SYNC_ACTION},     {"Event", CVX__SYNC_EVENT},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(type, types[i].name)) m->type = types[i].type;
    switch (m->type) {
    case CVX__SYNC_CONNECT: return decode_connect(m, v);
    case CVX__SYNC_MODIFY_QUERY_SET: return decode_modify(m, v);
    case CVX__SYNC_AUTHENTICATE: return decode_authenticate(m, v);
    case CVX__SYNC_MUTATION:
    case CVX__SYNC_ACTION: return decode_call(m, v);
    case CVX__SYNC_EVENT: return CVX_OK;
    }
    return refuse(m, CVX__SYNC_FAULT, "unknown message type \"%s\"", type);
}

void cvx__sync_msg_free(cvx__sync_msg_t *m) {
    cvx_buf_free(&m->args);
    cvx_arena_free(m->arena);
    memset(m, 0, sizeof *m);
}

/* ---- server messages ------------------------------------------------------------ */

/* A store timestamp: a little-endian u64 in base64, as a JSON string. */
static void put_ts(cvx_buf_t *b, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    cvx_buf_append_char(b, '"');
    cvx_base64_encode(b, le, 8);
    cvx_buf_append_char(b, '"');
}

static void put_logs(cvx_buf_t *b, const cvx__sync_outcome_t *o) {
    cvx_buf_append_str(b, ",\"logLines\":");
    if (o->logs && o->logs->len) cvx_buf_append(b, o->logs->data, o->logs->len);
    else cvx_buf_append_str(b, "[]");
}

static void put_error_data(cvx_buf_t *b, const cvx__sync_outcome_t *o) {
    if (o->ok || !o->data || !o->data->len) return;
    cvx_buf_append_str(b, ",\"errorData\":");
    cvx_buf_append(b, o->data->data, o->data->len);
}

void cvx__sync_put_fatal(cvx_buf_t *b, const char *text) {
    cvx_buf_append_str(b, "{\"type\":\"FatalError\",\"error\":");
    cvx_buf_append_json_string(b, text, strlen(text));
    cvx_buf_append_char(b, '}');
}

void cvx__sync_put_auth_error(cvx_buf_t *b, const char *text, double base_version, bool update_attempted) {
    cvx_buf_append_str(b, "{\"type\":\"AuthError\",\"error\":");
    cvx_buf_append_json_string(b, text, strlen(text));
    cvx_buf_printf(b, ",\"baseVersion\":%.0f,\"authUpdateAttempted\":%s}", base_version,
                   update_attempted ? "true" : "false");
}

void cvx__sync_put_transition_start(cvx_buf_t *b, cvx__sync_version_t from, cvx__sync_version_t to) {
    cvx_buf_printf(b, "{\"type\":\"Transition\",\"startVersion\":{\"querySet\":%u,\"identity\":%u,\"ts\":",
                   from.query_set, from.identity);
    put_ts(b, from.ts);
    cvx_buf_printf(b, "},\"endVersion\":{\"querySet\":%u,\"identity\":%u,\"ts\":", to.query_set, to.identity);
    put_ts(b, to.ts);
    cvx_buf_append_str(b, "},\"modifications\":[");
}

void cvx__sync_put_query_removed(cvx_buf_t *b, uint32_t query_id) {
    cvx_buf_printf(b, "{\"type\":\"QueryRemoved\",\"queryId\":%u}", query_id);
}

void cvx__sync_put_query_result(cvx_buf_t *b, uint32_t query_id, const cvx__sync_outcome_t *o, const char *journal) {
    const cvx_buf_t *v = o->value;
    if (o->ok) {
        cvx_buf_printf(b, "{\"type\":\"QueryUpdated\",\"queryId\":%u,\"value\":", query_id);
        if (v->len) cvx_buf_append(b, v->data, v->len);
        else cvx_buf_append_str(b, "null");
    } else {
        cvx_buf_printf(b, "{\"type\":\"QueryFailed\",\"queryId\":%u,\"errorMessage\":", query_id);
        cvx_buf_append_json_string(b, v->data ? v->data : "", v->len);
        put_error_data(b, o);
    }
    put_logs(b, o);
    cvx_buf_append_str(b, ",\"journal\":");
    if (journal) cvx_buf_append_json_string(b, journal, strlen(journal));
    else cvx_buf_append_str(b, "null");
    cvx_buf_append_char(b, '}');
}

void cvx__sync_put_transition_end(cvx_buf_t *b) { cvx_buf_append_str(b, "]}"); }

void cvx__sync_put_call_response(cvx_buf_t *b, bool mutation, double request_id, const cvx__sync_outcome_t *o,
                                 uint64_t ts) {
    const cvx_buf_t *v = o->value;
    cvx_buf_printf(b, "{\"type\":\"%s\",\"requestId\":%.0f,\"success\":%s,\"result\":",
                   mutation ? "MutationResponse" : "ActionResponse", request_id, o->ok ? "true" : "false");
    if (!o->ok) cvx_buf_append_json_string(b, v->data ? v->data : "", v->len);
    else if (v->len) cvx_buf_append(b, v->data, v->len);
    else cvx_buf_append_str(b, "null");
    if (mutation) {
        cvx_buf_append_str(b, ",\"ts\":");
        if (o->ok) put_ts(b, ts);
        else cvx_buf_append_str(b, "null");
    }
    put_error_data(b, o);
    put_logs(b, o);
    cvx_buf_append_char(b, '}');
}

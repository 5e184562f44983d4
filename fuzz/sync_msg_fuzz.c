/*
 * sync_msg_fuzz.c — libFuzzer target for the sync protocol's client
 * message decoder (src/sync/protocol.c).
 *
 * The input is one text frame as a client sends it. Whatever it holds, the
 * decoder refuses it with a short UTF-8 text that a FatalError carries as
 * valid JSON, or gives a typed message whose every field is in range:
 * integral versions and ids within their bounds, NUL-free strings, and
 * args as canonical JSON objects. A refused ModifyQuerySet ends its
 * modifications at the faulty one. What it accepted is then encoded into
 * the server's messages, which must parse back as JSON.
 */
#include <string.h>

#include "fuzz.h"
#include "sync/protocol.h"

static bool integral(double v, double max) { return v >= 0 && v <= max && v == (double)(int64_t)v; }

/* Parses text (len bytes) as JSON in arena a; NULL when it does not parse. */
static cvx_value_t *parse(cvx_arena_t *a, const char *text, size_t len) {
    cvx_value_t *v = NULL;
    cvx_err_t err;
    return cvx_json_parse(a, text, len, &v, &err) == CVX_OK ? v : NULL;
}

/* args: an object, written canonically (writing it again gives the same). */
static void check_args(cvx_arena_t *a, const char *args, size_t len) {
    CHECK(args && strlen(args) == len);
    cvx_value_t *v = parse(a, args, len);
    CHECK(v && v->type == CVX_T_OBJECT);
    cvx_buf_t again = {0};
    cvx_json_write(&again, v);
    CHECK(again.len == len && !memcmp(again.data, args, len));
    cvx_buf_free(&again);
}

static void check_refused(cvx_arena_t *a, const cvx__sync_msg_t *m) {
    size_t n = strlen(m->error);
    CHECK(n > 0 && n <= CVX__SYNC_ERROR_MAX);
    CHECK(cvx_utf8_valid(m->error, n));
    cvx_buf_t b = {0};
    cvx__sync_put_fatal(&b, m->error);
    cvx_value_t *v = parse(a, b.data, b.len);
    CHECK(v && v->type == CVX_T_OBJECT);
    const cvx_value_t *e = cvx_obj_get_cstr(v, "error");
    CHECK(e && e->type == CVX_T_STRING && e->u.str.len == n && !memcmp(e->u.str.ptr, m->error, n));
    cvx_buf_free(&b);
    if (m->fault == CVX__SYNC_FAULT_AFTER_BASE) CHECK(m->type == CVX__SYNC_MODIFY_QUERY_SET);
    if (m->fault == CVX__SYNC_FAULT_IN_MODS) {
        CHECK(m->type == CVX__SYNC_MODIFY_QUERY_SET && m->nmods > 0);
        const cvx__sync_mod_t *last = &m->mods[m->nmods - 1];
        CHECK(last->fault != CVX__SYNC_MOD_OK);
        if (last->fault == CVX__SYNC_MOD_BAD_ADD) CHECK(last->op == CVX__SYNC_ADD);
        for (size_t i = 0; i + 1 < m->nmods; i++) CHECK(m->mods[i].fault == CVX__SYNC_MOD_OK);
        CHECK(m->adds + m->others >= m->nmods);
    }
}

/* Encodes a query result and a call response from what was accepted. */
static void check_encoded(cvx_arena_t *a, const char *json, size_t len, const char *journal, double request_id) {
    cvx_buf_t value = {0}, b = {0};
    cvx_buf_append(&value, json, len);
    cvx__sync_outcome_t ok = {true, &value, NULL, NULL}, failed = {false, &value, &value, &value};
    cvx__sync_put_transition_start(&b, (cvx__sync_version_t){0, 0, 0}, (cvx__sync_version_t){1, 1, UINT64_MAX});
    cvx__sync_put_query_removed(&b, 0);
    cvx_buf_append_char(&b, ',');
    cvx__sync_put_query_result(&b, 1, &ok, journal);
    cvx_buf_append_char(&b, ',');
    cvx__sync_put_query_result(&b, 2, &failed, journal);
    cvx__sync_put_transition_end(&b);
    CHECK(parse(a, b.data, b.len) != NULL);
    cvx_buf_reset(&b);
    cvx__sync_put_call_response(&b, true, request_id, &failed, 0);
    CHECK(parse(a, b.data, b.len) != NULL);
    cvx_buf_free(&b);
    cvx_buf_free(&value);
}

static void check_modify(cvx_arena_t *a, const cvx__sync_msg_t *m) {
    CHECK(integral(m->base_version, 9007199254740991.0));
    CHECK(integral(m->new_version, (double)(UINT32_MAX - 1)) && m->new_version > m->base_version);
    CHECK(m->adds + m->others == m->nmods);
    size_t adds = 0;
    for (size_t i = 0; i < m->nmods; i++) {
        const cvx__sync_mod_t *d = &m->mods[i];
        CHECK(d->fault == CVX__SYNC_MOD_OK);
        CHECK(d->op == CVX__SYNC_ADD || d->op == CVX__SYNC_REMOVE);
        if (d->op == CVX__SYNC_REMOVE) continue;
        adds++;
        CHECK(d->udf_path && strlen(d->udf_path) == d->udf_path_len);
        check_args(a, d->args, d->args_len);
        if (d->journal) CHECK(d->journal[0] != '\0');
        check_encoded(a, d->args, d->args_len, d->journal, d->query_id);
    }
    CHECK(adds == m->adds);
}

static void check_accepted(cvx_arena_t *a, const cvx__sync_msg_t *m) {
    CHECK(m->error[0] == '\0');
    switch (m->type) {
    case CVX__SYNC_CONNECT: CHECK(m->session_id && strlen(m->session_id) <= CVX__SYNC_SESSION_MAX); break;
    case CVX__SYNC_MODIFY_QUERY_SET: check_modify(a, m); break;
    case CVX__SYNC_AUTHENTICATE: {
        CHECK(integral(m->base_version, (double)(UINT32_MAX - 1)));
        CHECK(m->token_type == CVX__SYNC_TOKEN_NONE || m->token_type == CVX__SYNC_TOKEN_ADMIN ||
              m->token_type == CVX__SYNC_TOKEN_USER);
        if (m->token_type == CVX__SYNC_TOKEN_NONE) CHECK(m->token == NULL);
        /* Only an admin acts as someone, and what it names is an object. */
        if (m->impersonating) {
            CHECK(m->token_type == CVX__SYNC_TOKEN_ADMIN);
            const cvx_value_t *as = parse(a, m->impersonating, m->impersonating_len);
            CHECK(as && as->type == CVX_T_OBJECT && strlen(m->impersonating) == m->impersonating_len);
        }
        cvx_buf_t b = {0};
        cvx__sync_put_auth_error(&b, m->token ? m->token : "", m->base_version, m->token_type == CVX__SYNC_TOKEN_USER);
        CHECK(parse(a, b.data, b.len) != NULL);
        cvx_buf_free(&b);
        break;
    }
    case CVX__SYNC_MUTATION:
    case CVX__SYNC_ACTION:
        CHECK(integral(m->request_id, 9007199254740991.0));
        CHECK(m->udf_path != NULL);
        check_args(a, m->args.data, m->args.len);
        check_encoded(a, m->args.data, m->args.len, m->udf_path, m->request_id);
        break;
    case CVX__SYNC_EVENT: break;
    default: CHECK(!"accepted a message of no known type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cvx__sync_msg_t m;
    int rc = cvx__sync_decode((const char *)data, size, &m);
    cvx_arena_t *a = cvx_arena_new(4096);
    CHECK(a != NULL);
    CHECK((rc == CVX_OK) == (m.fault == CVX__SYNC_OK));
    if (rc == CVX_OK) check_accepted(a, &m);
    else check_refused(a, &m);
    cvx_arena_free(a);
    cvx__sync_msg_free(&m);
    return 0;
}

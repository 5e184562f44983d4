/* Private to the sync layer: the client protocol's messages (§4 of
 * docs/protocol.md), as pure functions over bytes and buffers — no engine
 * state, no locks, nothing beyond util/ and value/ — so that a fuzzer can
 * reach every line (fuzz/sync_msg_fuzz.c) and tests can pin every error
 * text (tests/sync/protocol_test.c).
 *
 * cvx__sync_decode turns one text frame into a typed, validated message;
 * the engine (sync.c, subs.c) then only checks it against the client's
 * state. The cvx__sync_put_* encoders write the server's messages. */
#ifndef CVX_SYNC_PROTOCOL_H
#define CVX_SYNC_PROTOCOL_H

#include "util/util.h"
#include "value/value.h"

/* Bytes of a Connect's sessionId kept (it names the idempotency keys of
 * the session's mutations: a longer one is refused, never cut short). */
#define CVX__SYNC_SESSION_MAX 79
/* The longest error text a FatalError carries (as it always has). */
#define CVX__SYNC_ERROR_MAX 511

typedef enum {
    CVX__SYNC_CONNECT = 1,
    CVX__SYNC_MODIFY_QUERY_SET,
    CVX__SYNC_AUTHENTICATE,
    CVX__SYNC_MUTATION,
    CVX__SYNC_ACTION,
    CVX__SYNC_EVENT, /* client telemetry: nothing in it is read */
} cvx__sync_type_t;

typedef enum { CVX__SYNC_TOKEN_NONE = 1, CVX__SYNC_TOKEN_ADMIN, CVX__SYNC_TOKEN_USER } cvx__sync_token_t;

typedef enum { CVX__SYNC_ADD = 1, CVX__SYNC_REMOVE } cvx__sync_op_t;

typedef enum {
    CVX__SYNC_MOD_OK = 0,
    CVX__SYNC_MOD_BAD,     /* malformed type or queryId: refused before the set is looked at */
    CVX__SYNC_MOD_BAD_ADD, /* an Add with a good queryId and a malformed udfPath, args or
                              journal: refused after the checks of its query id */
} cvx__sync_mod_fault_t;

/* Where a refused message's error text is reported among the engine's
 * own checks. The engine has always compared a ModifyQuerySet with the
 * client's state while it read it, so some state errors (a baseVersion
 * that does not match, the query limit, a query id already in the set)
 * win over a malformed field read after them. A refused message keeps
 * what was decoded before the fault so that the engine can keep that
 * order, and with it the text the client is sent. */
typedef enum {
    CVX__SYNC_OK = 0,
    CVX__SYNC_FAULT,            /* report it before looking at anything else */
    CVX__SYNC_FAULT_AFTER_BASE, /* ModifyQuerySet: after comparing baseVersion with the set's */
    CVX__SYNC_FAULT_IN_MODS,    /* ModifyQuerySet: at its last decoded modification */
} cvx__sync_fault_t;

typedef struct {
    cvx__sync_op_t op;    /* 0 when refused before its type was known */
    cvx__sync_mod_fault_t fault; /* only the last of a refused message's may be set */
    uint32_t query_id;
    /* Add only; all in the message's arena, NUL-terminated, NUL-free. */
    const char *udf_path;
    size_t udf_path_len;
    const char *args; /* the args object as canonical JSON ("{}" when absent) */
    size_t args_len;
    const char *journal; /* NULL when absent, not a string, or empty */
} cvx__sync_mod_t;

/* One decoded client message. Strings and arrays live in `arena` (owned;
 * cvx__sync_msg_free releases it with the rest). */
typedef struct {
    cvx__sync_type_t type; /* 0 when refused before its type was known */
    cvx__sync_fault_t fault;
    char error[CVX__SYNC_ERROR_MAX + 1]; /* the FatalError text when fault != 0; valid UTF-8 */
    /* Connect: "" when absent or not a string; at most CVX__SYNC_SESSION_MAX bytes. */
    const char *session_id;
    /* ModifyQuerySet: integers in [0, 2^53); new_version is in
     * (base_version, UINT32_MAX - 1] unless refused. Authenticate: the
     * base_version, at most UINT32_MAX - 1. Kept as the client's doubles:
     * the error texts print them as sent. */
    double base_version, new_version;
    cvx__sync_mod_t *mods; /* ModifyQuerySet, in order; a refused one ends at its fault */
    size_t nmods;
    /* What the query limit is checked with, before any modification is
     * looked at: modifications whose type is "Add", and the others. */
    size_t adds, others;
    /* Authenticate. token: Admin's key or User's token (NULL when absent
     * or not a string). impersonating: the identity an admin acts as (a
     * JSON object's text), or NULL. */
    cvx__sync_token_t token_type;
    const char *token;
    const char *impersonating;
    size_t impersonating_len;
    /* Mutation, Action: request_id an integer in [0, 2^53). args: the args
     * object as canonical JSON, owned (the engine may detach it). */
    double request_id;
    const char *udf_path;
    cvx_buf_t args;
    cvx_arena_t *arena;
} cvx__sync_msg_t;

/* Decodes one client message. CVX_OK when accepted; otherwise
 * CVX_E_INVALID_ARGUMENT (CVX_E_NOMEM when out of memory) with out->fault
 * and out->error set. Either way out holds what was decoded; free it with
 * cvx__sync_msg_free. Costs time in proportion to the message's length. */
int cvx__sync_decode(const char *json, size_t len, cvx__sync_msg_t *out);
void cvx__sync_msg_free(cvx__sync_msg_t *m);

/* ---- the server's messages ------------------------------------------------ */

/* A function's outcome as Transitions and responses carry it. */
typedef struct {
    bool ok;
    const cvx_buf_t *value; /* ok: its JSON (empty: null); else the error message */
    const cvx_buf_t *data;  /* failure: errorData JSON; NULL or empty for none */
    const cvx_buf_t *logs;  /* a JSON array of log lines; empty for none */
} cvx__sync_outcome_t;

typedef struct {
    uint32_t query_set, identity;
    uint64_t ts;
} cvx__sync_version_t;

/* {"type":"FatalError","error":text} */
void cvx__sync_put_fatal(cvx_buf_t *b, const char *text);
/* {"type":"AuthError",...} for an Authenticate of base_version;
 * update_attempted is false when no Authenticate caused it (the token
 * expired). */
void cvx__sync_put_auth_error(cvx_buf_t *b, const char *text, double base_version, bool update_attempted);
/* A Transition: its start, then each modification (the caller puts the
 * commas between them), then its end. */
void cvx__sync_put_transition_start(cvx_buf_t *b, cvx__sync_version_t from, cvx__sync_version_t to);
void cvx__sync_put_query_removed(cvx_buf_t *b, uint32_t query_id);
/* QueryUpdated or QueryFailed; journal NULL for none. */
void cvx__sync_put_query_result(cvx_buf_t *b, uint32_t query_id, const cvx__sync_outcome_t *o, const char *journal);
void cvx__sync_put_transition_end(cvx_buf_t *b);
/* A MutationResponse (mutation: with the commit's ts when ok) or an
 * ActionResponse. */
void cvx__sync_put_call_response(cvx_buf_t *b, bool mutation, double request_id, const cvx__sync_outcome_t *o,
                                 uint64_t ts);

#endif

/*
 * abi — the cvx guest ABI, version 1 (docs/abi.md).
 *
 * Owns: the host functions a guest imports from `cvx_1` and the
 * deterministic WASI subset, each going through one bounds-checking path
 * (cvx_instance_mem); the pending-buffer protocol; reading a module's
 * metadata (custom sections cvx.fn and cvx.schema) into a cvx_app_t without
 * running it; checking ABI versions and required exports; validating call
 * arguments against the declared types; invoking one exported function.
 *
 * What a host function may do depends on the call's kind (query, mutation,
 * action) and is decided here, not in the guest: a query that writes gets
 * CVX_E_FORBIDDEN whatever the SDK does.
 *
 * Nothing here is Rust-specific: any guest that follows docs/abi.md works.
 */
#ifndef CVX_ABI_H
#define CVX_ABI_H

#include "store/store.h"
#include "util/util.h"
#include "value/value.h"
#include "wasm/wasm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CVX_ABI_VERSION 1
#define CVX_ABI_MODULE "cvx_1"

typedef enum {
    CVX_KIND_QUERY = 1,
    CVX_KIND_MUTATION = 2,
    CVX_KIND_ACTION = 3,
} cvx_kind_t;

const char *cvx_kind_name(cvx_kind_t k); /* "query", "mutation", "action" */

/* Registers every cvx_1 and WASI host function with the engine. Call once
 * per engine, before loading modules. */
int cvx_abi_register(cvx_engine_t *e, cvx_err_t *err);

/* ---- source maps (sourcemap.c) ------------------------------------------------ */

/* A decoded source map (v3) of a JavaScript bundle: errors report the
 * app's files and lines instead of the bundle's. */
typedef struct cvx_sourcemap cvx_sourcemap_t;
/* Decodes a source map's JSON. CVX_E_INVALID_VALUE when it is malformed;
 * *out is NULL on failure. Free with cvx_sourcemap_free. */
int cvx_sourcemap_parse(const char *json, size_t len, cvx_sourcemap_t **out, cvx_err_t *err);
void cvx_sourcemap_free(cvx_sourcemap_t *m);
/* The original position (1-based) of generated line:col; false if none. */
bool cvx_sourcemap_lookup(const cvx_sourcemap_t *m, uint32_t line, uint32_t col, const char **src, uint32_t *oline,
                          uint32_t *ocol);
/* Appends `stack` with each bundle.js:L:C mapped and the runtime's own
 * frames (cvx:prelude) dropped; m may be NULL (positions stay). */
void cvx_sourcemap_rewrite(const cvx_sourcemap_t *m, const char *stack, size_t len, cvx_buf_t *out);

/* ---- deployed code ----------------------------------------------------------- */

/* One function as declared in the module's metadata. Strings and values
 * live as long as the app. */
typedef struct {
    const char *path;        /* "users:get_user" */
    const char *module;      /* "users" */
    const char *name;        /* "get_user" */
    cvx_kind_t kind;
    bool internal;
    const char *export_name; /* wasm export */
    const cvx_value_t *args; /* array of {"name","type"} */
    const cvx_value_t *returns;
    const char *file;
    int64_t line;
    const char *meta_json;   /* the raw metadata record */
    cvx_module_t *wasm;      /* the module that exports it */
    const char *origin;      /* that module, for messages ("the Rust crate") */
    /* Compiled at load from the record (argsValidator / returnsValidator
     * in Convex's JSON, else args / returns descriptors); returns_v is
     * NULL when only a Rust type vouches for the result. */
    const cvx_validator_t *args_v;
    const cvx_validator_t *returns_v;
    const cvx_sourcemap_t *sourcemap; /* its module's, if JavaScript */
    /* HTTP actions (kind CVX_KIND_ACTION, `http` set): METHOD /http<route>;
     * a route ending in '/' is a prefix. */
    bool http;
    const char *http_method;
    const char *http_route;
} cvx_fn_t;

/* A cron job declared in the cvx.crons section (docs/abi.md "Crons"). */
typedef struct {
    const char *name;
    const char *path;
    const char *args_json;  /* an object */
    uint64_t every_ms;      /* 0 for a cron expression */
    const char *cron;       /* "m h dom mon dow", or NULL */
} cvx_cron_t;

typedef struct cvx_app cvx_app_t;

/* One module of an app, as cvx_app_load_modules reads it. */
typedef struct {
    const uint8_t *wasm;
    size_t len;
    const char *sha256_hex; /* vouched-for hash, or NULL (cvx_module_load_hashed) */
    const char *label;      /* for messages: "the Rust crate", "convex/ (TypeScript)" */
} cvx_app_source_t;
#define CVX_APP_MAX_MODULES 4

/* Loads the modules of one app (one per guest language) and analyses them
 * together: a function path defined in two of them, or two schemas, is
 * CVX_E_BAD_MODULE naming both places. Returns one reference. */
int cvx_app_load_modules(cvx_engine_t *e, const cvx_app_source_t *srcs, size_t n, cvx_app_t **out, cvx_err_t *err);
/* Loads a module and analyses it: ABI version, metadata records, exports,
 * schema. Errors are CVX_E_BAD_MODULE with a message naming the problem
 * ("module has no cvx.fn metadata section: was it built with convex_sdk?",
 * "function users:get declares export cvx:users::get, which the module does
 * not export", "module imports ABI version 2 (cvx_2); this server supports
 * version 1"). Returns one reference. */
int cvx_app_load(cvx_engine_t *e, const uint8_t *wasm, size_t len, cvx_app_t **out, cvx_err_t *err);
/* The same with the module's SHA-256 known (cvx_module_load_hashed). */
int cvx_app_load_hashed(cvx_engine_t *e, const uint8_t *wasm, size_t len, const char *sha256_hex, cvx_app_t **out,
                        cvx_err_t *err);
void cvx_app_retain(cvx_app_t *app);
void cvx_app_release(cvx_app_t *app);

size_t cvx_app_functions(const cvx_app_t *app, const cvx_fn_t **out);
/* Finds a function by Convex path; "mod" means "mod:default"; a leading
 * "/"-free path only. NULL when absent. */
const cvx_fn_t *cvx_app_find(const cvx_app_t *app, const char *path, size_t len);
/* The HTTP action for METHOD and PATH (the part after /http), or NULL. */
const cvx_fn_t *cvx_app_find_http(const cvx_app_t *app, const char *method, const char *path);
/* The module's cron jobs (valid as long as the app). */
size_t cvx_app_crons(const cvx_app_t *app, const cvx_cron_t **out);
/* The app's cvx.auth record (JSON text: {"abi":1,"providers":[...]}) and
 * its length, or NULL when it declares no auth providers. Lives as long
 * as the app. */
const char *cvx_app_auth(const cvx_app_t *app, size_t *len);

/* The cvx.schema record (NULL when the module declares none). */
const cvx_value_t *cvx_app_schema(const cvx_app_t *app);
/* Whether writes are checked against the schema (a schema exists and does
 * not say schemaValidation: false). */
bool cvx_app_schema_validation(const cvx_app_t *app);
/* The schema as store table definitions (valid as long as the app). */
size_t cvx_app_tables(const cvx_app_t *app, const cvx_table_def_t **out);
/* The app's modules, in the order they were given. */
size_t cvx_app_modules(const cvx_app_t *app, cvx_module_t *const **out);
/* The whole metadata as one JSON document {"functions":[...],"schema":...}
 * (for codegen and `cvx build`). */
const char *cvx_app_metadata_json(const cvx_app_t *app);
/* The app's content hash (hex SHA-256; a one-module app's is its
 * module's): equal hashes, equal code. */
const char *cvx_app_hash(const cvx_app_t *app);

/* Checks `args` (an object) against fn's argument validator. Errors are
 * CVX_E_ARGS with Convex's message after "ArgumentValidationError: ",
 * e.g. "Object is missing the required field `email`. ...". table_of
 * (may be NULL) resolves v.id tables. */
int cvx_abi_validate_args(const cvx_fn_t *fn, const cvx_value_t *args, cvx_id_table_fn table_of, void *ctx,
                          cvx_err_t *err);
/* Whether fn declares a return validator worth checking. */
bool cvx_abi_has_returns(const cvx_fn_t *fn);
/* Checks a result's JSON against fn's return validator
 * ("ReturnsValidationError: ..."). */
int cvx_abi_validate_returns(const cvx_fn_t *fn, const char *json, size_t len, cvx_id_table_fn table_of, void *ctx,
                             cvx_err_t *err);
/* Checks one value against a cvx type descriptor (tests). */
int cvx_abi_check_type(const cvx_value_t *type, const cvx_value_t *v, cvx_err_t *err);

/* ---- one invocation --------------------------------------------------------- */

/* Services an action may call back into (run_query etc.); provided by the
 * exec layer so abi does not depend on it. Each returns a status and fills
 * `out` with the result value's JSON or, on failure, the error JSON
 * {"message", "data"?}. */
typedef struct {
    void *ctx;
    int (*run_function)(void *ctx, cvx_kind_t kind, const char *path, size_t path_len, const char *args_json,
                        size_t args_len, cvx_buf_t *out);
    /* Runs fn inside a fresh write transaction and commits it (retrying on
     * conflicts): how an action schedules a function or records a file. */
    int (*with_txn)(void *ctx, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err), void *arg,
                    cvx_buf_t *out, cvx_err_t *err);
    /* Reads a document by id at the latest snapshot (actions). */
    int (*get_document)(void *ctx, const char *id, size_t len, cvx_buf_t *out, cvx_err_t *err);
    /* Runs fn in a read transaction at the latest snapshot (actions'
     * environment variables); may be NULL. */
    int (*with_read_txn)(void *ctx, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err), void *arg,
                         cvx_buf_t *out, cvx_err_t *err);
} cvx_abi_services_t;

/* Where files live and how they are addressed (file storage). */
typedef struct {
    const char *dir;        /* blobs: <dir>/<sha256 hex>; NULL: no storage */
    const char *base_url;   /* e.g. "http://127.0.0.1:3210" */
    const uint8_t *secret;  /* signs upload URLs */
    size_t secret_len;
} cvx_storage_config_t;

typedef struct {
    cvx_kind_t kind;
    cvx_txn_t *txn;            /* queries and mutations; NULL for actions */
    const char *request_id;    /* seeds the RNG of queries and mutations */
    double now_ms;             /* frozen time of queries and mutations */
    /* Log lines per call, nested calls included; 0 = CVX_ABI_LOG_LINES
     * (docs/abi.md "Logs"). */
    uint32_t max_log_lines;
    /* Nested calls (run_query etc. from an action) share their caller's
     * log budget: the lines and bytes its log already holds. 0 for a call
     * of its own; cvx_abi_nested_log_budget sets them. */
    uint32_t log_lines_used;
    size_t log_bytes_used;
    const cvx_abi_services_t *services; /* actions; may be NULL */
    bool allow_private_fetch;  /* fetch to loopback/private addresses */
    const cvx_storage_config_t *storage; /* may be NULL */
    /* Maps error stacks of a call that is not an app's function
     * (cvx_abi_run_export); may be NULL. */
    const cvx_sourcemap_t *sourcemap;
    /* The journal of this query's last run (docs/abi.md "Pagination"):
     * JSON text of an array, or NULL. */
    const char *journal;
    /* The caller's UserIdentity (JSON object text), or NULL: anonymous
     * (docs/abi.md "Authentication"). */
    const char *identity;
    size_t identity_len;
} cvx_abi_call_config_t;

/* System tables the ABI's host functions write (scheduled functions, file
 * metadata, cron bookkeeping), for cvx_store_ensure_system_tables. */
size_t cvx_abi_system_tables(const cvx_table_def_t **out);
#define CVX_SCHEDULED_TABLE "_scheduled_functions"
#define CVX_STORAGE_TABLE "_storage"
#define CVX_CRONS_TABLE "_cron_jobs"
#define CVX_ENV_TABLE "_environment_variables"

/* Environment variables (env.c), documents {name, value} of CVX_ENV_TABLE.
 * cvx_abi_env_read appends the value of `name` (a JSON string, or null
 * when unset) or, with name NULL, an object of every variable; the read is
 * in txn's read set. cvx_abi_env_update applies `changes`, an array of
 * {"name", "value": string or null (remove)}, all or none: a bad name
 * (CVX_E_INVALID_ARGUMENT), a value over 8 KiB or more than 100 variables
 * (CVX_E_LIMIT) changes nothing. */
int cvx_abi_env_read(cvx_txn_t *txn, const char *name, size_t len, cvx_buf_t *out, cvx_err_t *err);
int cvx_abi_env_update(cvx_txn_t *txn, const cvx_value_t *changes, cvx_err_t *err);
/* Whether a name is a valid variable name (Convex's rule), with the reason. */
int cvx_abi_env_check_name(const char *name, size_t len, cvx_err_t *err);

/* Upload tokens (file storage): a URL token valid until `expires_ms`, and
 * its check. */
void cvx_storage_token(const cvx_storage_config_t *cfg, uint64_t expires_ms, char out[96]);
bool cvx_storage_token_valid(const cvx_storage_config_t *cfg, const char *token, uint64_t now_ms);
/* Stores bytes as a file: writes the blob (durably) and its _storage
 * document in `txn`; appends the storage id (a JSON string) to out. */
int cvx_storage_put(const cvx_storage_config_t *cfg, cvx_txn_t *txn, const void *data, size_t len,
                    const char *content_type, cvx_buf_t *out, cvx_err_t *err);
/* Stores a file already written to `tmp_path` inside cfg->dir (an upload
 * streamed to disk): hashes it, fsyncs it, renames it to its blob name and
 * inserts its _storage document in `txn`. The temporary file is consumed
 * on success. Appends the storage id (a JSON string) to out. */
int cvx_storage_adopt(const cvx_storage_config_t *cfg, cvx_txn_t *txn, const char *tmp_path, const char *content_type,
                      cvx_buf_t *out, cvx_err_t *err);
/* The path of a stored file's blob, from its _storage document JSON. */
int cvx_storage_blob_path(const cvx_storage_config_t *cfg, const char *doc_json, size_t len, cvx_buf_t *path,
                          cvx_buf_t *content_type, uint64_t *size, cvx_err_t *err);

/* The outcome of one invocation. Zero-initialise; cvx_abi_result_free
 * releases. */
typedef struct {
    int status;               /* CVX_OK or the failure's code */
    cvx_buf_t value;          /* success: the result's JSON */
    cvx_buf_t message;        /* failure: the error message */
    cvx_buf_t data;           /* failure with application data: its JSON */
    bool has_data;
    cvx_buf_t logs;           /* JSON array of log lines ("[LOG] ...") */
    cvx_buf_t journal;        /* paginated queries' ends, JSON array; empty if none */
    uint32_t nlogs;
    /* Non-zero once the log budget ran out (CVX_ABI_LOG_FULL_*): later
     * lines are dropped. log_note: the last line says so. */
    uint8_t log_full;
    bool log_note;
    uint64_t fuel_used;
    uint64_t memory_bytes;    /* linear memory at the end of the call */
} cvx_abi_result_t;

void cvx_abi_result_free(cvx_abi_result_t *r);
void cvx_abi_result_reset(cvx_abi_result_t *r);

/* ---- logs (docs/abi.md "Logs") ---------------------------------------------
 *
 * What a call logs goes back with its result, so it is bounded like the
 * result: at most max_log_lines lines (CVX_ABI_LOG_LINES by default), each
 * cut to CVX_ABI_LOG_LINE bytes of text (plus CVX_ABI_LOG_CUT), and the
 * logs' JSON plus the value (or error) within CVX_ABI_MAX_RESULT bytes. When
 * a line does not fit, one WARN line says so ("Log overflow (maximum 256).
 * Remaining log lines omitted.") and the rest are dropped; the call goes
 * on, as in Convex. */
#define CVX_ABI_LOG_LINES 256
#define CVX_ABI_LOG_LINE 32768
#define CVX_ABI_LOG_CUT " (truncated due to length)"
#define CVX_ABI_MAX_RESULT CVX_MAX_ARGS_SIZE
enum { CVX_ABI_LOG_FULL_LINES = 1, CVX_ABI_LOG_FULL_BYTES = 2 };

/* The log budget of a call that `caller` (running under caller_cfg) makes
 * on its behalf: sets cfg's log_lines_used and log_bytes_used. */
void cvx_abi_nested_log_budget(const cvx_abi_call_config_t *caller_cfg, const cvx_abi_result_t *caller,
                               cvx_abi_call_config_t *cfg);
/* Appends the log lines of such a call to its caller's, within the
 * caller's budget (a cached result's lines were not counted against it). */
void cvx_abi_append_nested_logs(const cvx_abi_call_config_t *caller_cfg, cvx_abi_result_t *caller,
                                const cvx_abi_result_t *nested);

/* Runs fn in a fresh instance with args_json (an object) and `limits`.
 * Every outcome — success, guest error, panic, trap, limit — is reported in
 * `res`; the return value equals res->status. Panics carry the guest's
 * message and file:line; limits name themselves ("function exceeded its
 * fuel limit (10000000000 units)"). */
int cvx_abi_invoke(cvx_app_t *app, const cvx_fn_t *fn, const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits,
                   const char *args_json, size_t args_len, cvx_abi_result_t *res);

/* Runs one export outside any app: in a fresh instance of m, `init` (no
 * arguments, may be NULL; e.g. a WASI reactor's _initialize), then
 * `export` with `input` in the pending buffer as a function's arguments
 * are, under cfg and limits. The outcome is in res as for cvx_abi_invoke;
 * `label` names the call in messages. When keep is not NULL and the call
 * succeeded, *keep is the instance, for a snapshot (cvx_instance_free). */
int cvx_abi_run_export(cvx_module_t *m, const char *label, const char *init, const char *export,
                       const cvx_abi_call_config_t *cfg, const cvx_limits_t *limits, const char *input, size_t len,
                       cvx_abi_result_t *res, cvx_instance_t **keep);

#ifdef __cplusplus
}
#endif
#endif

/*
 * cli — the `cvx` command. main.c dispatches to one cvx_cmd_<name> per
 * command (a cvx_command_t: its options, --help and what it runs), which
 * returns an exit code from the list below (also in docs/cli.md).
 */
#ifndef CVX_CLI_H
#define CVX_CLI_H

#include <stdio.h>

#include "abi/abi.h"
#include "exec/exec.h"
#include "js/js.h"
#include "util/util.h"

enum {
    CVX_EXIT_OK = 0,
    CVX_EXIT_FUNCTION = 1, /* the function ran and failed */
    CVX_EXIT_USAGE = 2,    /* bad command line */
    CVX_EXIT_BUILD = 3,    /* the functions crate did not build or was rejected */
    CVX_EXIT_SYSTEM = 4,   /* anything else: I/O, database, network */
};

/* ---- shared helpers (common.c, build.c) ---------------------------------- */

/* An option of a command: "--name value", "--name=value" or a flag. */
typedef struct {
    const char *name;  /* without dashes */
    bool takes_value;
    const char *value; /* set when present (flags get "1") */
} cvx_opt_t;

/* A command line, parsed against its command's description. */
typedef struct {
    const char *cmd; /* "deploy" */
    cvx_opt_t opts[32];
    char names[32][32];
    size_t nopts;
    const char *pos[3];
    size_t npos;
} cvx_args_t;

/* The value of an option (flags: "1"), or NULL when it was not given. */
const char *cvx_arg(const cvx_args_t *cl, const char *name);

/* One `cvx` command. main.c's table lists them; cvx_command_main parses
 * the command line from `options` and `max_pos`, answers --help with
 * `usage`, then calls `run`, whose result is the exit code. */
typedef struct {
    const char *name;
    const char *summary; /* one line for `cvx --help` */
    const char *options; /* space-separated names; "name=" takes a value */
    size_t max_pos;      /* positional arguments accepted (at most 3) */
    void (*usage)(FILE *out);
    int (*run)(const cvx_args_t *cl);
} cvx_command_t;

int cvx_command_main(const cvx_command_t *cmd, int argc, char **argv);

extern const cvx_command_t cvx_cmd_init, cvx_cmd_dev, cvx_cmd_build, cvx_cmd_run, cvx_cmd_serve, cvx_cmd_deploy,
    cvx_cmd_codegen, cvx_cmd_data, cvx_cmd_logs, cvx_cmd_env;

/* Applies --fuel / --memory / --timeout options (if present) to all kinds.
 * Prints the problem and returns -1 on a bad value. */
int cvx_cli_limits(const cvx_args_t *cl, cvx_exec_limits_t *limits);

/* ~/.cache/cvx (or $CVX_CACHE_DIR); static storage. */
const char *cvx_cache_dir(void);

/* Creates the shared engine with the abi registered and the module cache
 * enabled. */
int cvx_cli_engine(cvx_engine_t **out, cvx_err_t *err);

typedef struct {
    bool quiet;       /* hide cargo's output unless it fails */
    bool release;     /* default true */
} cvx_build_opts_t;

/* Builds the functions crate in `dir` to wasm with the right toolchain
 * (docs/cli.md) and appends the path of the .wasm to `wasm_path`. */
int cvx_build_crate(const char *dir, const cvx_build_opts_t *o, cvx_buf_t *wasm_path, cvx_err_t *err);
/* Runs argv in directory `cwd` (NULL: this one) with extra environment
 * entries (NULL-terminated, may be NULL). With `capture`, stdout and stderr go into it; otherwise stdout is
 * redirected to stderr. Returns the exit status, or -1. */
int cvx_run_command(const char *cwd, char *const argv[], char *const extra_env[], cvx_buf_t *capture);

/* ---- an app directory (project.c) ------------------------------------------ */

#define CVX_PROJECT_MAX_MODULES 1024

/* What DIR holds: a Rust crate, TypeScript/JavaScript modules in convex/,
 * or both; and, once built, what a deploy sends. */
typedef struct {
    cvx_buf_t root;      /* DIR */
    cvx_buf_t crate;     /* the Rust crate's directory, or empty */
    cvx_buf_t convex;    /* DIR/convex, or empty */
    cvx_buf_t generated; /* where codegen writes (convex/_generated) */
    char *modules[CVX_PROJECT_MAX_MODULES]; /* under convex/, sorted: "users.ts" */
    size_t nmodules;
    /* convex/auth.config.ts (or .js): the auth providers, evaluated when
     * the server builds the bundle; empty when absent. */
    char auth_config[24];
    cvx_buf_t rust_path, rust; /* after cvx_project_build */
    cvx_buf_t bundle, map;
} cvx_project_t;

/* Looks at DIR; CVX_E_INVALID_ARGUMENT when it holds no functions. */
int cvx_project_open(const char *dir, cvx_project_t *p, cvx_err_t *err);
void cvx_project_free(cvx_project_t *p);
/* cargo for the crate, esbuild for the modules (writing the generated
 * server code they import first). */
int cvx_project_build(cvx_project_t *p, const cvx_build_opts_t *o, cvx_err_t *err);
/* Loads the built app here, as a server would (building the JavaScript
 * module from the bundle); console lines of the modules' top level go to
 * `logs` (a JSON array; may be NULL). */
int cvx_project_load(cvx_project_t *p, cvx_engine_t *e, cvx_app_t **app, cvx_buf_t *logs, cvx_err_t *err);
/* What POST /api/deploy gets: the Rust module for a Rust-only app, else an
 * app package (rust.wasm, js/bundle.js, js/bundle.js.map). */
void cvx_project_deploy_body(const cvx_project_t *p, cvx_buf_t *out);
/* A module's Convex path: "admin/users.ts" -> "admin/users". */
void cvx_module_path(const char *file, cvx_buf_t *out);

/* client.c: HTTP to a running server. *status gets the HTTP status. */
int cvx_cli_http(const char *method, const char *url, const char *admin_key, const void *body, size_t len,
                 const char *content_type, cvx_buf_t *out, long *status, cvx_err_t *err);
int cvx_gzip(const void *data, size_t len, cvx_buf_t *out, cvx_err_t *err);
/* --admin-key, $CVX_ADMIN_KEY, or data_dir/admin_key (into buf). NULL if none. */
const char *cvx_cli_admin_key(const char *opt, const char *data_dir, char *buf, size_t cap);
/* The server a command talks to: --url, $CVX_URL or http://127.0.0.1:3210. */
const char *cvx_cli_url(const cvx_args_t *cl);
/* deploy.c: POSTs a module (gzip-compressed) to url/api/deploy. */
int cvx_deploy_bytes(const char *url, const char *key, const void *wasm, size_t len, cvx_buf_t *resp, cvx_err_t *err);

/* codegen.c: writes out_dir/api.{js,d.ts} from metadata JSON; with a
 * project that has TypeScript modules, also server.{js,d.ts} and
 * dataModel.d.ts, Convex's way (p may be NULL). */
int cvx_codegen(const char *metadata_json, const char *out_dir, const cvx_project_t *p, cvx_err_t *err);
/* The generated files TypeScript modules import (server.js, api.js) and
 * their types that need no metadata, into dir. */
int cvx_codegen_server(const cvx_project_t *p, const char *dir, cvx_err_t *err);
/* The TypeScript for a type descriptor (docs/abi.md §4). */
void cvx_ts_type(const cvx_value_t *t, cvx_buf_t *out);

/* Prints the functions of an app, one per line. */
void cvx_print_functions(FILE *out, const cvx_app_t *app);

#endif

/* `cvx build`: compile a functions crate to wasm32-wasip1 and analyse it.
 *
 * Toolchain choice (docs/cli.md): $CVX_CARGO if set; else a rustc that
 * already has the wasm32-wasip1 standard library; else Debian's rustc-web
 * with build-std (the only route on machines where rustup cannot download
 * the target). Either way the crate is built as a cdylib with panic=abort
 * and line tables, so panics and traps map back to Rust file:line. */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* stdout goes to stderr when not captured: cargo's progress belongs on
 * stderr. */
int cvx_run_command(const char *cwd, char *const argv[], char *const extra_env[], cvx_buf_t *capture) {
    int fds[2] = {-1, -1};
    if (capture && pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (capture) {
            dup2(fds[1], 1);
            dup2(fds[1], 2);
            close(fds[0]);
            close(fds[1]);
        } else {
            dup2(2, 1);
        }
        for (size_t i = 0; extra_env && extra_env[i]; i++) putenv(extra_env[i]);
        if (cwd && chdir(cwd) != 0) {
            fprintf(stderr, "cannot enter %s: %s\n", cwd, strerror(errno));
            _exit(127);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (capture) {
        close(fds[1]);
        char buf[4096];
        ssize_t n;
        while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
            if (n > 0) cvx_buf_append(capture, buf, (size_t)n);
        close(fds[0]);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Does `rustc` (from PATH) have the wasm32-wasip1 standard library? */
static bool native_has_wasip1(void) {
    cvx_buf_t out = {0};
    char *argv[] = {"rustc", "--print", "target-libdir", "--target", "wasm32-wasip1", NULL};
    int rc = cvx_run_command(NULL, argv, NULL, &out);
    bool ok = false;
    if (rc == 0 && out.len > 0) {
        while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r')) out.data[--out.len] = 0;
        DIR *d = opendir(out.data);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (strncmp(e->d_name, "libstd-", 7) == 0) ok = true;
            closedir(d);
        }
    }
    cvx_buf_free(&out);
    return ok;
}

typedef struct {
    const char *cargo;
    bool build_std; /* Debian rustc-web route */
    char *env[8];
} toolchain_t;

static int choose_toolchain(toolchain_t *t, cvx_err_t *err) {
    memset(t, 0, sizeof *t);
    static char env_profile_debug[] = "CARGO_PROFILE_RELEASE_DEBUG=1";
    static char env_panic[] = "CARGO_PROFILE_RELEASE_PANIC=abort";
    static char env_rustc[] = "RUSTC=/usr/bin/rustc";
    static char env_bootstrap[] = "RUSTC_BOOTSTRAP=1";
    size_t n = 0;
    t->env[n++] = env_profile_debug;
    t->env[n++] = env_panic;
    const char *forced = getenv("CVX_CARGO");
    if (forced && *forced) {
        t->cargo = forced;
        t->build_std = getenv("CVX_BUILD_STD") && strcmp(getenv("CVX_BUILD_STD"), "1") == 0;
    } else if (native_has_wasip1()) {
        t->cargo = "cargo";
    } else if (file_exists("/usr/bin/cargo") && file_exists("/usr/bin/rustc") && file_exists("/usr/bin/wasm-ld") &&
               file_exists("/usr/lib/wasm32-wasi")) {
        t->cargo = "/usr/bin/cargo";
        t->build_std = true;
    } else {
        return cvx_err_set(err, CVX_E_UNSUPPORTED,
                           "no Rust toolchain here can build for wasm32-wasip1. Either add the target "
                           "(`rustup target add wasm32-wasip1`) or run ./setup, which installs Debian's "
                           "rustc-web, rust-web-src, lld and wasi-libc");
    }
    if (t->build_std) {
        t->env[n++] = env_rustc;
        t->env[n++] = env_bootstrap;
    }
    t->env[n] = NULL;
    return CVX_OK;
}

/* Reads `cargo metadata` to find the target directory and the library's
 * crate name (dashes become underscores in the artifact). */
static int crate_layout(const toolchain_t *t, const char *manifest, cvx_buf_t *target_dir, cvx_buf_t *lib_name,
                        cvx_err_t *err) {
    cvx_buf_t out = {0};
    char *argv[] = {(char *)t->cargo, "metadata", "--format-version", "1", "--no-deps", "--offline",
                    "--manifest-path", (char *)manifest, NULL};
    int rc = cvx_run_command(NULL, argv, t->env, &out);
    if (rc != 0) {
        /* --offline fails before the first fetch of dependencies. */
        cvx_buf_reset(&out);
        argv[5] = "--quiet";
        rc = cvx_run_command(NULL, argv, t->env, &out);
    }
    if (rc != 0) {
        cvx_err_set(err, CVX_E_IO, "cargo metadata failed for %s:\n%s", manifest, out.data ? out.data : "");
        cvx_buf_free(&out);
        return CVX_E_IO;
    }
    /* cargo may print warnings before the JSON line. */
    const char *json = out.data;
    const char *brace = strstr(json, "{\"packages\"");
    if (brace) json = brace;
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    cvx_value_t *meta = NULL;
    rc = a ? cvx_json_parse(a, json, strlen(json), &meta, err) : CVX_E_NOMEM;
    if (rc == CVX_OK) {
        const cvx_value_t *td = cvx_obj_get_cstr(meta, "target_directory");
        const cvx_value_t *pkgs = cvx_obj_get_cstr(meta, "packages");
        if (td && td->type == CVX_T_STRING) cvx_buf_append(target_dir, td->u.str.ptr, td->u.str.len);
        /* The package whose manifest is ours. */
        char real[4096];
        if (!realpath(manifest, real)) snprintf(real, sizeof real, "%s", manifest);
        for (size_t i = 0; pkgs && pkgs->type == CVX_T_ARRAY && i < pkgs->u.arr.len && lib_name->len == 0; i++) {
            const cvx_value_t *p = pkgs->u.arr.items[i];
            const cvx_value_t *mp = cvx_obj_get_cstr(p, "manifest_path");
            if (!mp || mp->type != CVX_T_STRING || strcmp(mp->u.str.ptr, real) != 0) continue;
            const cvx_value_t *targets = cvx_obj_get_cstr(p, "targets");
            for (size_t k = 0; targets && targets->type == CVX_T_ARRAY && k < targets->u.arr.len; k++) {
                const cvx_value_t *tg = targets->u.arr.items[k];
                const cvx_value_t *kinds = cvx_obj_get_cstr(tg, "kind");
                const cvx_value_t *name = cvx_obj_get_cstr(tg, "name");
                bool is_lib = false;
                for (size_t j = 0; kinds && kinds->type == CVX_T_ARRAY && j < kinds->u.arr.len; j++) {
                    const cvx_value_t *kd = kinds->u.arr.items[j];
                    if (kd->type == CVX_T_STRING && (strcmp(kd->u.str.ptr, "lib") == 0 || strcmp(kd->u.str.ptr, "cdylib") == 0 ||
                                                     strcmp(kd->u.str.ptr, "rlib") == 0))
                        is_lib = true;
                }
                if (is_lib && name && name->type == CVX_T_STRING) {
                    for (size_t c = 0; c < name->u.str.len; c++)
                        cvx_buf_append_char(lib_name, name->u.str.ptr[c] == '-' ? '_' : name->u.str.ptr[c]);
                    break;
                }
            }
        }
        if (target_dir->len == 0 || lib_name->len == 0)
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                             "%s has no library target: a functions crate needs src/lib.rs", manifest);
    }
    cvx_arena_free(a);
    cvx_buf_free(&out);
    return rc;
}

int cvx_build_crate(const char *dir, const cvx_build_opts_t *o, cvx_buf_t *wasm_path, cvx_err_t *err) {
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/Cargo.toml", dir);
    if (!file_exists(manifest))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "%s not found: `cvx build` needs the directory of a functions crate",
                           manifest);
    toolchain_t t;
    int rc = choose_toolchain(&t, err);
    if (rc) return rc;
    cvx_buf_t target_dir = {0}, lib = {0};
    rc = crate_layout(&t, manifest, &target_dir, &lib, err);
    if (rc) {
        cvx_buf_free(&target_dir);
        cvx_buf_free(&lib);
        return rc;
    }
    char *argv[24];
    size_t n = 0;
    argv[n++] = (char *)t.cargo;
    argv[n++] = "rustc";
    argv[n++] = "--manifest-path";
    argv[n++] = manifest;
    argv[n++] = "--lib";
    argv[n++] = "--release";
    argv[n++] = "--target";
    argv[n++] = "wasm32-wasip1";
    argv[n++] = "--crate-type";
    argv[n++] = "cdylib";
    if (o && o->quiet) argv[n++] = "--quiet";
    if (t.build_std) {
        argv[n++] = "-Zbuild-std=std,panic_abort";
        argv[n++] = "--config";
        argv[n++] = "target.wasm32-wasip1.linker=\"wasm-ld\"";
        argv[n++] = "--config";
        argv[n++] = "target.wasm32-wasip1.rustflags=[\"-C\",\"link-self-contained=no\",\"-L\",\"/usr/lib/wasm32-wasi\"]";
    }
    /* Cargo names a crate's build by its package name and its path from
     * the workspace root, so every crate `cvx init` writes ("app", the
     * root) is the same build to it: with one CARGO_TARGET_DIR shared by
     * two apps, the second finds the first's build fresh and deploys its
     * code. An argument naming this crate's manifest is part of the
     * build's fingerprint, so each crate rebuilds when the other built
     * last (its dependencies stay shared). */
    char real[4096], metadata[80];
    if (!realpath(manifest, real)) snprintf(real, sizeof real, "%s", manifest);
    uint8_t digest[32];
    cvx_sha256(real, strlen(real), digest);
    char hex[65];
    cvx_hex(digest, 8, hex);
    snprintf(metadata, sizeof metadata, "metadata=cvx-%s", hex);
    argv[n++] = "--";
    argv[n++] = "-C";
    argv[n++] = metadata;
    argv[n] = NULL;
    cvx_buf_t out = {0};
    int status = cvx_run_command(NULL, argv, t.env, o && o->quiet ? &out : NULL);
    if (status != 0) {
        rc = cvx_err_set(err, CVX_E_BAD_MODULE, "cargo failed to build %s (exit %d)%s%s", dir, status,
                         out.len ? ":\n" : "", out.len ? out.data : "");
    } else {
        cvx_buf_printf(wasm_path, "%s/wasm32-wasip1/release/%s.wasm", target_dir.data, lib.data);
        if (!file_exists(wasm_path->data))
            rc = cvx_err_set(err, CVX_E_IO, "cargo succeeded but %s is missing", wasm_path->data);
    }
    cvx_buf_free(&out);
    cvx_buf_free(&target_dir);
    cvx_buf_free(&lib);
    return rc;
}

static void build_usage(FILE *out) {
    fprintf(out,
            "usage: cvx build [DIR] [--quiet] [--json] [--out FILE]\n\n"
            "Builds the app in DIR (default: .): compiles its Rust functions crate to wasm32-wasip1 and\n"
            "bundles its TypeScript modules in convex/ with esbuild, checks everything the way a server\n"
            "would at deploy (running the modules' top level in the sandbox), and lists the functions.\n\n"
            "  --quiet   show cargo's and esbuild's output only if a build fails\n"
            "  --json    print the app's metadata as JSON instead of a list\n"
            "  --out FILE  also write what `cvx deploy` would send (the Rust module, or an app package\n"
            "            with the TypeScript bundle), for `cvx deploy --wasm FILE` elsewhere\n\n"
            "Toolchain: $CVX_CARGO if set; otherwise a rustc with the wasm32-wasip1 target; otherwise\n"
            "Debian's rustc-web with -Zbuild-std (installed by ./setup). esbuild: $CVX_ESBUILD, else the\n"
            "one ./setup installs, else the app's node_modules, else PATH.\n"
            "Exit codes: 0 ok, 2 usage, 3 build failed or app rejected, 4 system error.\n");
}

/* Prints the JSON array of log lines a build produced, one per line. */
static void print_log_lines(FILE *out, const cvx_buf_t *logs) {
    if (logs->len <= 2) return;
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v;
    cvx_err_t ignored;
    if (a && cvx_json_parse(a, logs->data, logs->len, &v, &ignored) == CVX_OK && v->type == CVX_T_ARRAY)
        for (size_t i = 0; i < v->u.arr.len; i++)
            if (v->u.arr.items[i]->type == CVX_T_STRING) fprintf(out, "  %s\n", v->u.arr.items[i]->u.str.ptr);
    cvx_arena_free(a);
}

/* What a deploy of the app sends, into a file. */
static int write_body(const cvx_project_t *p, const char *path, cvx_err_t *err) {
    cvx_buf_t body = {0};
    cvx_project_deploy_body(p, &body);
    int rc = body.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_write_file_atomic(path, body.data, body.len, err);
    if (!rc) fprintf(stderr, "cvx build: wrote %s (%zu KiB)\n", path, body.len / 1024);
    cvx_buf_free(&body);
    return rc;
}

/* The auth providers as the record has them: values this build could not
 * know (process.env here has no deployment's variables, and env("NAME")
 * is read by the server) are shown as such. */
static void print_auth(const cvx_app_t *app) {
    size_t len;
    const char *rec = cvx_app_auth(app, &len);
    if (!rec) return;
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *v;
    cvx_err_t err;
    const cvx_value_t *ps = NULL;
    if (a && cvx_json_parse(a, rec, len, &v, &err) == CVX_OK && v->type == CVX_T_OBJECT)
        ps = cvx_obj_get_cstr(v, "providers");
    size_t n = ps && ps->type == CVX_T_ARRAY ? ps->u.arr.len : 0;
    printf("auth: %zu provider%s%s\n", n, n == 1 ? "" : "s",
           n ? "" : " (user tokens are refused; fields read from process.env are set when the server deploys)");
    for (size_t i = 0; i < n; i++) {
        const cvx_value_t *p = ps->u.arr.items[i];
        cvx_buf_t line = {0};
        for (size_t k = 0; p->type == CVX_T_OBJECT && k < p->u.obj.len; k++) {
            const cvx_field_t *f = &p->u.obj.fields[k];
            const cvx_value_t *env = f->value->type == CVX_T_OBJECT ? cvx_obj_get_cstr(f->value, "env") : NULL;
            cvx_buf_printf(&line, "%s%s: ", k ? ", " : "", f->name);
            if (f->value->type == CVX_T_STRING) cvx_buf_append(&line, f->value->u.str.ptr, f->value->u.str.len);
            else if (env && env->type == CVX_T_STRING) cvx_buf_printf(&line, "$%s (set with cvx env set)", env->u.str.ptr);
            else cvx_json_write(&line, f->value);
        }
        printf("  %s\n", line.data ? line.data : "{}");
        cvx_buf_free(&line);
    }
    cvx_arena_free(a);
}

static int run_build(const cvx_args_t *cl) {
    int rc = 0;
    const char *dir = cl->npos ? cl->pos[0] : ".";
    bool json = cvx_arg(cl, "json") != NULL;
    const char *out_path = cvx_arg(cl, "out");
    cvx_build_opts_t bo = {.quiet = cvx_arg(cl, "quiet") != NULL, .release = true};
    cvx_err_t err;
    cvx_project_t p;
    if (cvx_project_open(dir, &p, &err)) {
        fprintf(stderr, "cvx build: %s\n", err.msg);
        return CVX_EXIT_BUILD;
    }
    uint64_t t0 = cvx_monotonic_ns();
    rc = cvx_project_build(&p, &bo, &err);
    if (rc) {
        fprintf(stderr, "cvx build: %s\n", err.msg);
        cvx_project_free(&p);
        return err.code == CVX_E_BAD_MODULE || err.code == CVX_E_INVALID_ARGUMENT || err.code == CVX_E_UNSUPPORTED
                   ? CVX_EXIT_BUILD
                   : CVX_EXIT_SYSTEM;
    }
    double build_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
    cvx_engine_t *engine = NULL;
    cvx_app_t *app = NULL;
    cvx_buf_t logs = {0};
    int exit_code = CVX_EXIT_OK;
    uint64_t t1 = cvx_monotonic_ns();
    if (cvx_cli_engine(&engine, &err)) {
        fprintf(stderr, "cvx build: %s\n", err.msg);
        exit_code = CVX_EXIT_SYSTEM;
    } else if (cvx_project_load(&p, engine, &app, &logs, &err)) {
        fprintf(stderr, "cvx build: the app was built but would be rejected at deploy: %s\n", err.msg);
        print_log_lines(stderr, &logs);
        exit_code = CVX_EXIT_BUILD;
    } else if (out_path && write_body(&p, out_path, &err)) {
        fprintf(stderr, "cvx build: %s\n", err.msg);
        exit_code = CVX_EXIT_SYSTEM;
    } else if (json) {
        printf("%s\n", cvx_app_metadata_json(app));
    } else {
        const cvx_fn_t *fns;
        size_t n = cvx_app_functions(app, &fns);
        cvx_module_t *const *mods;
        size_t nm = cvx_app_modules(app, &mods);
        if (p.rust.len)
            printf("built %s (%zu KiB) in %.1f s; %s in %.1f ms\n", p.rust_path.data, p.rust.len / 1024, build_ms / 1000,
                   cvx_module_from_cache(mods[0]) ? "loaded compiled module from cache" : "compiled",
                   cvx_module_load_ms(mods[0]));
        if (p.bundle.len)
            printf("bundled %zu module%s of %s (%zu KiB); ran their top level and %s in %.0f ms\n", p.nmodules,
                   p.nmodules == 1 ? "" : "s", p.convex.data, p.bundle.len / 1024,
                   cvx_module_from_cache(mods[nm - 1]) ? "loaded the snapshot from cache" : "compiled the snapshot",
                   (double)(cvx_monotonic_ns() - t1) / 1e6);
        print_log_lines(stdout, &logs);
        printf("%zu function%s:\n", n, n == 1 ? "" : "s");
        cvx_print_functions(stdout, app);
        const cvx_table_def_t *tables;
        size_t nt = cvx_app_tables(app, &tables);
        if (nt) {
            printf("schema: %zu table%s\n", nt, nt == 1 ? "" : "s");
            for (size_t i = 0; i < nt; i++) {
                printf("  %s", tables[i].name);
                for (size_t k = 0; k < tables[i].nindexes; k++) printf("%s%s", k ? ", " : " (indexes: ", tables[i].indexes[k].name);
                printf("%s\n", tables[i].nindexes ? ")" : "");
            }
        }
        print_auth(app);
    }
    cvx_app_release(app);
    cvx_engine_free(engine);
    cvx_buf_free(&logs);
    cvx_project_free(&p);
    return exit_code;
}

const cvx_command_t cvx_cmd_build = {
    .name = "build",
    .summary = "compile a functions crate to wasm and list its functions",
    .options = "quiet json out=",
    .max_pos = 1,
    .usage = build_usage,
    .run = run_build,
};

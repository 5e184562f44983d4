/* An app directory as the commands see it, and building it.
 *
 * An app may have a Rust functions crate (DIR/convex/Cargo.toml, or
 * DIR/Cargo.toml for a crate on its own), TypeScript or JavaScript modules
 * in DIR/convex (laid out as Convex lays them out, with the `convex` npm
 * package in DIR/node_modules), or both. Building compiles the crate with
 * cargo and bundles the modules with esbuild into one script whose
 * __cvx_app names every module (runtime/js/prelude/30_app.js reads it);
 * the server builds the JavaScript module from that bundle. Which files
 * are modules follows Convex's CLI: .ts .tsx .js .jsx .mjs .cjs .mts .cts
 * files under convex/, except _generated/, dotfiles, names with more than
 * one dot (auth.config.ts, *.test.ts) and names with spaces. */
#include "cli/cli.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ESBUILD_VERSION "0.28.2"

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static const char *const EXTENSIONS[] = {".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts"};

static bool is_module_file(const char *name) {
    if (name[0] == '.' || name[0] == '#' || strchr(name, ' ')) return false;
    const char *dot = strchr(name, '.');
    if (!dot || strchr(dot + 1, '.')) return false; /* none, or more than one */
    for (size_t i = 0; i < CVX_ARRAY_LEN(EXTENSIONS); i++)
        if (!strcmp(dot, EXTENSIONS[i])) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_module(cvx_project_t *p, const char *rel, cvx_err_t *err) {
    if (p->nmodules == CVX_PROJECT_MAX_MODULES)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "convex/ has more than %d modules", CVX_PROJECT_MAX_MODULES);
    p->modules[p->nmodules] = cvx_strdup(rel);
    if (!p->modules[p->nmodules]) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    p->nmodules++;
    return CVX_OK;
}

/* `rel` is the path under convex/ so far ("" at the top). */
static int walk(cvx_project_t *p, const char *rel, int depth, cvx_err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", p->convex.data, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return depth ? CVX_OK : cvx_err_set(err, CVX_E_IO, "cannot read %s: %s", path, strerror(errno));
    struct dirent *e;
    int rc = CVX_OK;
    while (!rc && (e = readdir(d))) {
        const char *n = e->d_name;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", n);
        char full[8400];
        snprintf(full, sizeof full, "%s/%s", path, n);
        struct stat st;
        if (n[0] == '.' || stat(full, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            /* The generated code, dependencies and a crate's build output
             * and sources are not modules. */
            if (!strcmp(n, "_generated") || !strcmp(n, "node_modules") ||
                (depth == 0 && p->crate.len && (!strcmp(n, "target") || !strcmp(n, "src"))))
                continue;
            if (depth < 16) rc = walk(p, sub, depth + 1, err);
        } else if (S_ISREG(st.st_mode) && is_module_file(n)) {
            rc = add_module(p, sub, err);
        }
    }
    closedir(d);
    return rc;
}

int cvx_project_open(const char *dir, cvx_project_t *p, cvx_err_t *err) {
    memset(p, 0, sizeof *p);
    cvx_buf_append_str(&p->root, dir);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/convex/Cargo.toml", dir);
    if (exists(probe)) cvx_buf_printf(&p->crate, "%s/convex", dir);
    else {
        snprintf(probe, sizeof probe, "%s/Cargo.toml", dir);
        if (exists(probe)) cvx_buf_append_str(&p->crate, dir);
    }
    snprintf(probe, sizeof probe, "%s/convex", dir);
    struct stat st;
    int rc = CVX_OK;
    if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
        cvx_buf_append_str(&p->convex, probe);
        rc = walk(p, "", 0, err);
        qsort(p->modules, p->nmodules, sizeof *p->modules, cmp_str);
        /* Convex's auth configuration: not a module of functions, but
         * bundled with them so the server can evaluate it at deploy. */
        static const char *const AUTH[] = {"auth.config.ts", "auth.config.js", "auth.config.mjs"};
        for (size_t i = 0; i < CVX_ARRAY_LEN(AUTH) && p->nmodules && !p->auth_config[0]; i++) {
            snprintf(probe, sizeof probe, "%s/convex/%s", dir, AUTH[i]);
            if (exists(probe)) snprintf(p->auth_config, sizeof p->auth_config, "%s", AUTH[i]);
        }
    }
    /* Generated code goes where Convex puts it: convex/_generated. */
    if (p->convex.len) cvx_buf_printf(&p->generated, "%s/_generated", p->convex.data);
    else cvx_buf_printf(&p->generated, "%s/_generated", p->crate.len ? p->crate.data : dir);
    if (!rc && !p->crate.len && !p->nmodules)
        rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                         "%s holds no functions: expected a Rust crate (Cargo.toml, or convex/Cargo.toml) or "
                         "TypeScript modules in convex/",
                         dir);
    if (rc) cvx_project_free(p);
    return rc;
}

void cvx_project_free(cvx_project_t *p) {
    for (size_t i = 0; i < p->nmodules; i++) cvx_free(p->modules[i]);
    cvx_buf_free(&p->root);
    cvx_buf_free(&p->crate);
    cvx_buf_free(&p->convex);
    cvx_buf_free(&p->generated);
    cvx_buf_free(&p->rust_path);
    cvx_buf_free(&p->rust);
    cvx_buf_free(&p->bundle);
    cvx_buf_free(&p->map);
    memset(p, 0, sizeof *p);
}

/* A module's path for Convex ("admin/users" for convex/admin/users.ts). */
void cvx_module_path(const char *file, cvx_buf_t *out) {
    const char *dot = strrchr(file, '.');
    cvx_buf_append(out, file, dot ? (size_t)(dot - file) : strlen(file));
}

/* esbuild: $CVX_ESBUILD, the one ./setup installs into the cache, the
 * app's own, or one on PATH. */
static int find_esbuild(const cvx_project_t *p, cvx_buf_t *out, cvx_err_t *err) {
    const char *env = getenv("CVX_ESBUILD");
    if (env && *env) return cvx_buf_append_str(out, env), CVX_OK;
    const char *bases[2] = {NULL, p->root.data};
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/esbuild-" ESBUILD_VERSION, cvx_cache_dir());
    bases[0] = cache;
    for (size_t i = 0; i < 2; i++) {
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/node_modules/@esbuild", bases[i]);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char bin[4600];
            snprintf(bin, sizeof bin, "%s/%s/bin/esbuild", dir, e->d_name);
            if (e->d_name[0] != '.' && access(bin, X_OK) == 0) {
                closedir(d);
                return cvx_buf_append_str(out, bin), CVX_OK;
            }
        }
        if (d) closedir(d);
    }
    const char *path = getenv("PATH");
    for (const char *s = path; s && *s;) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        char bin[4200];
        snprintf(bin, sizeof bin, "%.*s/esbuild", (int)n, s);
        if (n && access(bin, X_OK) == 0) return cvx_buf_append_str(out, bin), CVX_OK;
        s = colon ? colon + 1 : s + n;
    }
    return cvx_err_set(err, CVX_E_UNSUPPORTED,
                       "esbuild was not found: run ./setup (it installs esbuild " ESBUILD_VERSION
                       " into %s), or set $CVX_ESBUILD",
                       cache);
}

/* Convex's "use node" actions run in Node.js, which cvx does not have. */
static int check_not_node(const cvx_project_t *p, const char *rel, cvx_err_t *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", p->convex.data, rel);
    FILE *f = fopen(path, "r");
    if (!f) return CVX_OK;
    char head[512];
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[n] = '\0';
    const char *s = head;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (!strncmp(s, "\"use node\"", 10) || !strncmp(s, "'use node'", 10))
        return cvx_err_set(err, CVX_E_UNSUPPORTED,
                           "convex/%s starts with \"use node\": cvx runs every module in its own JavaScript runtime, "
                           "not in Node.js. Remove the directive if the module does not need Node's built-in modules",
                           rel);
    return CVX_OK;
}

/* The generated entry: every module, named by its path. */
static int write_entry(const cvx_project_t *p, const char *path, cvx_err_t *err) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "// Written by `cvx build`: the app's modules, for the JavaScript engine.\n"
                           "import { convexToJson, jsonToConvex } from \"convex/values\";\n"
                           "import { actionGeneric, internalActionGeneric, internalMutationGeneric, internalQueryGeneric,\n"
                           "  mutationGeneric, queryGeneric } from \"convex/server\";\n");
    for (size_t i = 0; i < p->nmodules; i++) {
        cvx_buf_printf(&b, "import * as m%zu from ", i);
        cvx_buf_t abs = {0};
        cvx_buf_printf(&abs, "%s/%s", p->convex.data, p->modules[i]);
        char real[4200];
        const char *target = realpath(abs.data, real) ? real : abs.data;
        cvx_buf_append_json_string(&b, target, strlen(target));
        cvx_buf_append_str(&b, ";\n");
        cvx_buf_free(&abs);
    }
    /* { modules: { "users": m0, ... }, files: { "users": "convex/users.ts", ... } } */
    cvx_buf_append_str(&b, "globalThis.__cvx_app = { modules: {");
    for (int files = 0; files < 2; files++) {
        if (files) cvx_buf_append_str(&b, " }, files: {");
        for (size_t i = 0; i < p->nmodules; i++) {
            cvx_buf_t mp = {0}, file = {0};
            cvx_module_path(p->modules[i], &mp);
            cvx_buf_append_str(&b, i ? ", " : " ");
            cvx_buf_append_json_string(&b, mp.data, mp.len);
            if (files) {
                cvx_buf_printf(&file, "convex/%s", p->modules[i]);
                cvx_buf_append_str(&b, ": ");
                cvx_buf_append_json_string(&b, file.data, file.len);
            } else {
                cvx_buf_printf(&b, ": m%zu", i);
            }
            cvx_buf_free(&mp);
            cvx_buf_free(&file);
        }
    }
    cvx_buf_append_str(&b, " },\n");
    /* A dynamic import is bundled as a module whose top level runs when
     * it is called: the auth config's reads of process.env happen at the
     * server's analysis, with the deployment's variables. */
    if (p->auth_config[0]) {
        cvx_buf_t abs = {0};
        cvx_buf_printf(&abs, "%s/%s", p->convex.data, p->auth_config);
        char real[4200];
        const char *target = realpath(abs.data, real) ? real : abs.data;
        cvx_buf_append_str(&b, "  authConfig: () => import(");
        cvx_buf_append_json_string(&b, target, strlen(target));
        cvx_buf_append_str(&b, "),\n");
        cvx_buf_free(&abs);
    }
    cvx_buf_append_str(&b, "  lib: { convexToJson, jsonToConvex, queryGeneric, internalQueryGeneric, mutationGeneric,\n"
                           "    internalMutationGeneric, actionGeneric, internalActionGeneric } };\n");
    int rc = b.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_write_file_atomic(path, b.data, b.len, err);
    cvx_buf_free(&b);
    return rc;
}

/* The app's npm packages, installed on the first build when they are not
 * (npm ci when there is a lockfile): the modules import `convex`. */
static int ensure_packages(cvx_project_t *p, cvx_err_t *err) {
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/node_modules/convex/package.json", p->root.data);
    if (exists(probe)) return CVX_OK;
    snprintf(probe, sizeof probe, "%s/package.json", p->root.data);
    if (!exists(probe))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                           "the TypeScript in %s/convex needs the `convex` npm package: add a package.json listing "
                           "\"convex\" to %s and run `npm install`",
                           p->root.data, p->root.data);
    snprintf(probe, sizeof probe, "%s/package-lock.json", p->root.data);
    bool locked = exists(probe);
    fprintf(stderr, "cvx: installing %s's npm packages (npm %s; once) ...\n", p->root.data, locked ? "ci" : "install");
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "--prefix=%s", p->root.data);
    /* A registry connection that stalls is given up after a minute and
     * retried (npm waits five by default, per try). */
    char *argv[] = {"npm", locked ? "ci" : "install", prefix, "--no-audit", "--no-fund", "--loglevel=error",
                    "--fetch-timeout=60000", "--fetch-retries=3", NULL};
    cvx_buf_t log = {0};
    int status = cvx_run_command(NULL, argv, NULL, &log);
    snprintf(probe, sizeof probe, "%s/node_modules/convex/package.json", p->root.data);
    int rc = CVX_OK;
    if (status != 0)
        rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "npm %s in %s failed (exit %d):\n%s", argv[1], p->root.data, status,
                         log.data ? log.data : "");
    else if (!exists(probe))
        rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT,
                         "the TypeScript in %s/convex needs the `convex` npm package, which %s/package.json does not list",
                         p->root.data, p->root.data);
    cvx_buf_free(&log);
    return rc;
}

static int bundle(cvx_project_t *p, bool quiet, cvx_err_t *err) {
    int rc = ensure_packages(p, err);
    if (rc) return rc;
    for (size_t i = 0; i < p->nmodules && !rc; i++) rc = check_not_node(p, p->modules[i], err);
    if (!rc) rc = cvx_codegen_server(p, p->generated.data, err);
    cvx_buf_t dir = {0}, entry = {0}, out = {0}, mapf = {0}, esbuild = {0}, log = {0}, outfile = {0};
    cvx_buf_printf(&dir, "%s/.cvx/build", p->root.data);
    cvx_buf_printf(&entry, "%s/entry.js", dir.data);
    /* A name of this process's own, renamed to bundle.js once read: two
     * builds of one app at once (cvx dev and a deploy, parallel tests)
     * must not read each other's half-written output. esbuild runs in the
     * app's directory (it names files relative to it), so the paths it
     * gets are relative to that. */
    cvx_buf_printf(&out, "%s/bundle-%ld.js", dir.data, (long)getpid());
    cvx_buf_printf(&mapf, "%s.map", out.data);
    cvx_buf_printf(&outfile, "--outfile=.cvx/build/bundle-%ld.js", (long)getpid());
    char entry_arg[] = ".cvx/build/entry.js";
    if (!rc) rc = find_esbuild(p, &esbuild, err);
    char esbuild_abs[PATH_MAX];
    if (!rc && !realpath(esbuild.data, esbuild_abs))
        rc = cvx_err_set(err, CVX_E_IO, "cannot resolve %s: %s", esbuild.data, strerror(errno));
    if (!rc) rc = cvx_mkdirs(dir.data, err);
    if (!rc) rc = write_entry(p, entry.data, err);
    if (!rc) {
        if (!quiet) fprintf(stderr, "cvx: bundling %zu module%s of %s/convex with esbuild\n", p->nmodules,
                            p->nmodules == 1 ? "" : "s", p->root.data);
        /* The browser platform and these conditions are what Convex's own
         * CLI bundles with; es2022 is what the engine runs natively. */
        char *argv[] = {esbuild_abs, entry_arg, "--bundle", "--format=iife", "--platform=browser",
                        "--target=es2022", "--conditions=convex,module", "--sourcemap=external",
                        "--sources-content=false", "--legal-comments=none", "--charset=utf8", "--log-level=warning",
                        outfile.data, NULL};
        int status = cvx_run_command(p->root.data, argv, NULL, &log);
        /* esbuild's report goes out whole (an error message is bounded). */
        if (status != 0) {
            fprintf(stderr, "%s", log.data ? log.data : "");
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "esbuild could not bundle convex/ (exit %d; its report is above)%s",
                             status,
                             log.data && strstr(log.data, "is built into node")
                                 ? ": cvx runs functions in its own JavaScript runtime, where Node.js's built-in "
                                   "modules do not exist; use the web platform's APIs (fetch, crypto, TextEncoder, "
                                   "...) or an npm package that runs in browsers"
                                 : "");
        }
        else if (log.len && !quiet)
            fprintf(stderr, "%s", log.data);
    }
    if (!rc) rc = cvx_read_file(out.data, &p->bundle, err);
    if (!rc) rc = cvx_read_file(mapf.data, &p->map, err);
    /* Kept as bundle.js(.map) for a look at what was deployed. */
    cvx_buf_t keep = {0};
    cvx_buf_printf(&keep, "%s/bundle.js", dir.data);
    if (rename(out.data, keep.data) != 0) unlink(out.data);
    cvx_buf_append_str(&keep, ".map");
    if (rename(mapf.data, keep.data) != 0) unlink(mapf.data);
    cvx_buf_free(&keep);
    cvx_buf_free(&dir);
    cvx_buf_free(&entry);
    cvx_buf_free(&out);
    cvx_buf_free(&mapf);
    cvx_buf_free(&esbuild);
    cvx_buf_free(&log);
    cvx_buf_free(&outfile);
    return rc;
}

int cvx_project_build(cvx_project_t *p, const cvx_build_opts_t *o, cvx_err_t *err) {
    cvx_buf_reset(&p->rust_path);
    cvx_buf_reset(&p->rust);
    cvx_buf_reset(&p->bundle);
    cvx_buf_reset(&p->map);
    int rc = CVX_OK;
    if (p->crate.len) {
        rc = cvx_build_crate(p->crate.data, o, &p->rust_path, err);
        if (!rc) rc = cvx_read_file(p->rust_path.data, &p->rust, err);
    }
    if (!rc && p->nmodules) rc = bundle(p, o && o->quiet, err);
    return rc;
}

int cvx_project_load(cvx_project_t *p, cvx_engine_t *e, cvx_app_t **app, cvx_buf_t *logs, cvx_err_t *err) {
    cvx_app_source_t srcs[2];
    size_t n = 0;
    cvx_buf_t js = {0};
    int rc = CVX_OK;
    if (p->rust.len)
        srcs[n++] = (cvx_app_source_t){(const uint8_t *)p->rust.data, p->rust.len, NULL,
                                       p->nmodules ? "the Rust crate" : "module"};
    if (p->bundle.len) {
        cvx_exec_limits_t l;
        cvx_exec_limits_default(&l);
        cvx_limits_t lim = {l.fuel[CVX_KIND_QUERY], l.memory_bytes[CVX_KIND_QUERY], l.timeout_ms[CVX_KIND_QUERY]};
        cvx_js_source_t src = {p->bundle.data, p->bundle.len, p->map.len ? p->map.data : NULL, p->map.len, NULL};
        rc = cvx_js_build(e, &src, &lim, &js, logs, err);
        if (!rc) srcs[n++] = (cvx_app_source_t){(const uint8_t *)js.data, js.len, NULL, "convex/ (TypeScript)"};
    }
    if (!rc) rc = cvx_app_load_modules(e, srcs, n, app, err);
    cvx_buf_free(&js);
    return rc;
}

void cvx_project_deploy_body(const cvx_project_t *p, cvx_buf_t *out) {
    if (!p->bundle.len) {
        cvx_buf_append(out, p->rust.data, p->rust.len);
        return;
    }
    uint32_t n = 1 + (p->rust.len > 0) + (p->map.len > 0);
    cvx_pkg_begin(out, n);
    if (p->rust.len) cvx_pkg_add(out, "rust.wasm", p->rust.data, p->rust.len);
    cvx_pkg_add(out, "js/bundle.js", p->bundle.data, p->bundle.len);
    if (p->map.len) cvx_pkg_add(out, "js/bundle.js.map", p->map.data, p->map.len);
}

/* `cvx init`: a new app from the embedded templates (templates/): the
 * seed's users example and notes kept per signed-in user, as backend
 * functions in Rust, in TypeScript, or both side by side (--lang), with a
 * schema, auth providers taken from $AUTH_ISSUER, and a React page using
 * the official `convex` client. Builds and runs unedited. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "cli/templates.h"

static void init_usage(FILE *out) {
    fprintf(out,
            "usage: cvx init DIR [--lang rust|typescript|mixed] [--sdk PATH]\n\n"
            "Creates a new app in DIR (which must not exist or be empty):\n"
            "  DIR/convex/        the backend functions: the seed's users example, and notes per signed-in user:\n"
            "                       rust        a functions crate (convex_sdk): convex/src/users.rs, notes.rs (default)\n"
            "                       typescript  convex/users.ts, notes.ts, schema.ts, auth.config.ts, the Convex way\n"
            "                       mixed       both: users.list, notes.* and auth.config.ts in TypeScript,\n"
            "                                   users.create and users.me in Rust (convex/src/users.rs)\n"
            "  DIR/src/, index.html, package.json   a React page using convex/react\n\n"
            "  --sdk PATH   the convex_sdk crate a Rust crate depends on (default: the one next to this\n"
            "               cvx: %s/sdk/rust/convex_sdk). A copy outside the cvx source tree builds\n"
            "               only with CVX_HOST_FNS_DEF set to cvx's src/abi/host_fns.def.\n\n"
            "Then: cd DIR && npm install && cvx dev   (and in another terminal: npm run dev)\n"
            "Exit codes: 0 created, 2 usage, 4 could not write.\n",
            CVX_SOURCE_DIR);
}

static bool dir_empty_or_missing(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    return empty;
}

static void substitute(const unsigned char *data, size_t len, const char *name, const char *sdk, cvx_buf_t *out) {
    for (size_t i = 0; i < len;) {
        if (i + 8 <= len && !memcmp(data + i, "{{NAME}}", 8)) {
            cvx_buf_append_str(out, name);
            i += 8;
        } else if (i + 12 <= len && !memcmp(data + i, "{{SDK_PATH}}", 12)) {
            cvx_buf_append_str(out, sdk);
            i += 12;
        } else {
            cvx_buf_append_char(out, (char)data[i++]);
        }
    }
}

static int run_init(const cvx_args_t *cl) {
    int rc = 0;
    if (cl->npos != 1) {
        init_usage(stderr);
        return CVX_EXIT_USAGE;
    }
    const char *dir = cl->pos[0];
    const char *lang = cvx_arg(cl, "lang") ? cvx_arg(cl, "lang") : "rust";
    if (!strcmp(lang, "ts")) lang = "typescript";
    if (strcmp(lang, "rust") && strcmp(lang, "typescript") && strcmp(lang, "mixed")) {
        fprintf(stderr, "cvx init: --lang is rust, typescript or mixed, not \"%s\"\n", lang);
        return CVX_EXIT_USAGE;
    }
    if (!dir_empty_or_missing(dir)) {
        fprintf(stderr, "cvx init: %s exists and is not empty; choose a new directory\n", dir);
        return CVX_EXIT_USAGE;
    }
    char sdk[PATH_MAX];
    const char *sdk_opt = cvx_arg(cl, "sdk");
    snprintf(sdk, sizeof sdk, "%s/sdk/rust/convex_sdk", CVX_SOURCE_DIR);
    if (sdk_opt && !realpath(sdk_opt, sdk)) {
        fprintf(stderr, "cvx init: --sdk %s: %s\n", sdk_opt, strerror(errno));
        return CVX_EXIT_USAGE;
    }
    struct stat st;
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/Cargo.toml", sdk);
    if (strcmp(lang, "typescript") != 0 && stat(probe, &st) != 0) {
        fprintf(stderr, "cvx init: no convex_sdk crate at %s; pass --sdk PATH\n", sdk);
        return CVX_EXIT_USAGE;
    }
    /* The app's name: the last path component. */
    const char *name = strrchr(dir, '/');
    name = name && name[1] ? name + 1 : dir;
    cvx_err_t err;
    size_t lang_len = strlen(lang);
    for (const cvx_template_file_t *t = cvx_templates; t->path; t++) {
        const char *rel;
        if (!strncmp(t->path, "common/", 7)) rel = t->path + 7;
        else if (!strncmp(t->path, lang, lang_len) && t->path[lang_len] == '/') rel = t->path + lang_len + 1;
        else continue;
        if (strcmp(rel, "gitignore") == 0) rel = ".gitignore";
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", path);
        *strrchr(parent, '/') = '\0';
        cvx_buf_t content = {0};
        substitute(t->data, t->len, name, sdk, &content);
        rc = cvx_mkdirs(parent, &err);
        if (!rc) rc = cvx_write_file_atomic(path, content.data ? content.data : "", content.len, &err);
        cvx_buf_free(&content);
        if (rc) {
            fprintf(stderr, "cvx init: %s\n", err.msg);
            return CVX_EXIT_SYSTEM;
        }
    }
    printf("created %s (%s)\n\nnext:\n  cd %s\n  npm install    # the convex package and the page's tools\n"
           "  cvx dev        # functions on http://127.0.0.1:3210\n"
           "  npm run dev    # the page on http://127.0.0.1:5173\n",
           dir, lang, dir);
    return CVX_EXIT_OK;
}

const cvx_command_t cvx_cmd_init = {
    .name = "init",
    .summary = "create a new app: a functions crate and a web page",
    .options = "sdk= lang=",
    .max_pos = 1,
    .usage = init_usage,
    .run = run_init,
};

/* `cvx dev`: local development. Starts a server with the embedded store,
 * builds, deploys and writes the generated client code, then watches the
 * functions crate: every save rebuilds and redeploys. A build or deploy
 * error is printed and the last good code keeps serving. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "server/server.h"

static void dev_usage(FILE *out) {
    fprintf(out,
            "usage: cvx dev [DIR] [--port N] [--data DIR] [options]\n\n"
            "Runs a local backend for the app in DIR (default: .): builds its functions (a Rust crate in\n"
            "DIR or DIR/convex, TypeScript modules in DIR/convex, or both), serves them with an embedded\n"
            "SQLite store, writes convex/_generated, and rebuilds + redeploys whenever a file changes.\n\n"
            "  --port N                port (default 3210; 0 = any free port)\n"
            "  --host ADDR             address (default 127.0.0.1)\n"
            "  --data DIR              database directory (default: <crate or DIR>/.cvx/data)\n"
            "  --allow-private-fetch   let actions fetch loopback / private addresses\n"
            "  --no-watch              build, deploy and serve, but do not watch for changes\n\n"
            "Stop with Ctrl-C. Exit codes: 0 stopped, 2 usage, 3 the first build failed, 4 system error.\n");
}

typedef struct {
    cvx_project_t *p;
    cvx_server_t *srv;
} devenv_t;

/* Build, deploy, codegen. Prints what happened; returns 0 on success. */
static int cycle(devenv_t *d, bool first) {
    uint64_t t0 = cvx_monotonic_ns();
    cvx_err_t err;
    cvx_buf_t body = {0}, summary = {0};
    /* The first build shows cargo's progress: a crate's first build
     * compiles for about a minute. */
    cvx_build_opts_t bo = {.quiet = !first, .release = true};
    fprintf(stderr, "cvx dev: building %s ...%s\n", d->p->root.data,
            first && d->p->crate.len ? " (the first build of a crate compiles for about a minute)" : "");
    /* Modules that became or stopped being modules since the last cycle. */
    cvx_project_t fresh;
    int rc = cvx_project_open(d->p->root.data, &fresh, &err);
    if (!rc) {
        cvx_project_free(d->p);
        *d->p = fresh;
        rc = cvx_project_build(d->p, &bo, &err);
    }
    if (!rc) {
        cvx_project_deploy_body(d->p, &body);
        rc = body.oom ? cvx_err_set(&err, CVX_E_NOMEM, "out of memory")
                      : cvx_server_deploy(d->srv, (const uint8_t *)body.data, body.len, &summary, &err);
    }
    if (!rc) {
        cvx_app_t *app = cvx_runtime_app(cvx_server_runtime(d->srv));
        rc = cvx_codegen(cvx_app_metadata_json(app), d->p->generated.data, d->p, &err);
        if (!rc) {
            fprintf(stderr, "cvx dev: deployed in %.1f s; functions:\n", (double)(cvx_monotonic_ns() - t0) / 1e9);
            cvx_print_functions(stderr, app);
            fprintf(stderr, "cvx dev: wrote %s\n", d->p->generated.data);
        }
        cvx_app_release(app);
    }
    if (rc) fprintf(stderr, "cvx dev: %s\ncvx dev: %s\n", err.msg, first ? "fix the error; watching for changes" : "the previous code keeps serving");
    cvx_buf_free(&body);
    cvx_buf_free(&summary);
    return rc;
}

static bool skip_dir(const char *name) {
    return name[0] == '.' || !strcmp(name, "target") || !strcmp(name, "_generated") || !strcmp(name, "node_modules");
}

static void watch_tree(int fd, const char *dir) {
    inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || skip_dir(e->d_name)) continue;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        watch_tree(fd, sub);
    }
    closedir(d);
}

/* The crate and convex/ (the same directory in an app made by cvx init). */
static void watch_all(int fd, const cvx_project_t *p) {
    if (p->crate.len) watch_tree(fd, p->crate.data);
    if (p->convex.len && strcmp(p->convex.data, p->crate.data ? p->crate.data : "") != 0) watch_tree(fd, p->convex.data);
}

static int run_dev(const cvx_args_t *cl) {
    const char *dir = cl->npos ? cl->pos[0] : ".";
    cvx_err_t err;
    cvx_project_t proj;
    if (cvx_project_open(dir, &proj, &err)) {
        fprintf(stderr, "cvx dev: %s\n", err.msg);
        return CVX_EXIT_USAGE;
    }
    cvx_buf_t data = {0};
    if (cvx_arg(cl, "data")) cvx_buf_append_str(&data, cvx_arg(cl, "data"));
    else cvx_buf_printf(&data, "%s/.cvx/data", proj.crate.len ? proj.crate.data : proj.root.data);

    cvx_server_config_t cfg;
    cvx_server_config_default(&cfg);
    cfg.data_dir = data.data;
    if (cvx_arg(cl, "host")) cfg.host = cvx_arg(cl, "host");
    if (cvx_arg(cl, "port")) {
        char *end;
        long p = strtol(cvx_arg(cl, "port"), &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "cvx dev: --port needs a number between 0 and 65535\n");
            return CVX_EXIT_USAGE;
        }
        cfg.port = (int)p;
    }
    cfg.limits.allow_private_fetch = cvx_arg(cl, "allow-private-fetch") != NULL;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = CVX_EXIT_OK;
    devenv_t d = {&proj, NULL};
    if (cvx_server_start(&cfg, &d.srv, &err)) {
        fprintf(stderr, "cvx dev: %s\n", err.msg);
        exit_code = CVX_EXIT_SYSTEM;
        goto out;
    }
    printf("CVX_PORT=%d\n", cvx_server_port(d.srv));
    fflush(stdout);
    fprintf(stderr, "cvx dev: serving http://%s:%d (data in %s)\n", cfg.host, cvx_server_port(d.srv), data.data);
    cycle(&d, true);

    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int ifd = -1;
    if (!cvx_arg(cl, "no-watch")) {
        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ifd >= 0) watch_all(ifd, &proj);
        fprintf(stderr, "cvx dev: watching %s for changes (Ctrl-C to stop)\n", proj.convex.len ? proj.convex.data : proj.crate.data);
    }
    bool pending = false;
    for (;;) {
        struct pollfd fds[2] = {{sfd, POLLIN, 0}, {ifd, POLLIN, 0}};
        int n = poll(fds, ifd >= 0 ? 2 : 1, pending ? 250 : -1);
        if (n < 0 && errno == EINTR) continue;
        if (fds[0].revents & POLLIN) break;
        if (ifd >= 0 && (fds[1].revents & POLLIN)) {
            char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
            ssize_t len;
            while ((len = read(ifd, buf, sizeof buf)) > 0) {
                for (char *p = buf; p < buf + len;) {
                    struct inotify_event *ev = (struct inotify_event *)p;
                    if (ev->len && (ev->mask & IN_ISDIR) && (ev->mask & IN_CREATE) && !skip_dir(ev->name))
                        watch_all(ifd, &proj); /* re-adding existing watches is harmless */
                    if (!ev->len || (ev->name[0] != '.' && !skip_dir(ev->name))) pending = true;
                    p += sizeof *ev + ev->len;
                }
            }
            continue;
        }
        if (n == 0 && pending) {
            pending = false;
            cycle(&d, false);
        }
    }
    fprintf(stderr, "cvx dev: stopping\n");
    if (ifd >= 0) close(ifd);
    if (sfd >= 0) close(sfd);
    cvx_server_stop(d.srv);
out:
    cvx_project_free(&proj);
    cvx_buf_free(&data);
    return exit_code;
}

const cvx_command_t cvx_cmd_dev = {
    .name = "dev",
    .summary = "build, serve and redeploy on every change (local development)",
    .options = "port= host= data= allow-private-fetch no-watch",
    .max_pos = 1,
    .usage = dev_usage,
    .run = run_dev,
};

/* cvx — entry point: dispatch to a command. Everything else is in libcvx. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const cvx_command_t *const commands[] = {
    &cvx_cmd_init, &cvx_cmd_dev,     &cvx_cmd_build, &cvx_cmd_run,  &cvx_cmd_serve,
    &cvx_cmd_deploy, &cvx_cmd_codegen, &cvx_cmd_data, &cvx_cmd_logs, &cvx_cmd_env,
};

static void usage(FILE *out) {
    fprintf(out,
            "cvx %s — a self-hosted Convex-compatible backend running Rust functions in WebAssembly\n\n"
            "usage: cvx <command> [options]\n\ncommands:\n",
            CVX_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nRun `cvx <command> --help` for a command's options.\n"
                 "Exit codes: 0 ok, 1 the function failed, 2 usage error, 3 build error, 4 system error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CVX_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CVX_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("cvx %s (wasmtime %s, guest ABI %d)\n", CVX_VERSION, CVX_WASMTIME_VERSION, CVX_ABI_VERSION);
        return CVX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i]->name) == 0) return cvx_command_main(commands[i], argc - 1, argv + 1);
    fprintf(stderr, "cvx: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CVX_EXIT_USAGE;
}

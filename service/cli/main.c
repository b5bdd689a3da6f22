/* The adsmith binary: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "adsmith/cli.h"
#include "adsmith/version.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", cli_serve, "run the HTTP/2 bidding and personalization daemon"},
    {"import", cli_import, "bulk-load users from JSON Lines or a MessagePack stream"},
    {"export", cli_export, "write every user profile as JSON Lines to stdout"},
    {"campaigns", cli_campaigns, "check campaign documents offline (campaigns validate FILE...)"},
    {"keys", cli_keys, "create, list and revoke API keys"},
    {"usage", cli_usage, "a campaign's token and money usage and what it bought"},
    {"train", cli_train, "train the click model on a click log (criteo, avazu, libsvm, csv, ...)"},
    {"eval", cli_eval, "logloss, AUC and calibration of a click model on a click log"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: adsmith COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n  %-10s %s\n\n'adsmith COMMAND --help' describes a command's options.\n", "version",
            "print the version", "help", "print this help");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("adsmith %s (%s)\n", ADS_VERSION, ADS_COMMIT);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    }
    fprintf(stderr, "adsmith: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

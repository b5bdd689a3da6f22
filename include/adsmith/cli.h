/*
 * cli: the subcommands of the `adsmith` binary. Each takes the arguments after
 * its own name and returns the process exit status:
 *   0 success, 1 runtime failure (storage, network), 2 usage or configuration error.
 */
#ifndef ADSMITH_CLI_H
#define ADSMITH_CLI_H

/** `adsmith serve [OPTIONS]`: run the HTTP daemon until SIGTERM/SIGINT. */
int cli_serve(int argc, char **argv);

/**
 * `adsmith import users FILE [OPTIONS]`: load profiles from JSON Lines or a
 * MessagePack stream, resumably (service/cli/import.c describes the checkpoint).
 * Exit 0; 1 if a record was rejected or storage failed; 2 on a usage error;
 * 128 + signal number after SIGINT/SIGTERM (the batch read so far is committed).
 */
int cli_import(int argc, char **argv);

/** `adsmith export users [OPTIONS]`: write every profile to stdout as JSON Lines. Exit 0, 1 or 2. */
int cli_export(int argc, char **argv);

/**
 * The value of option @p name at argv[*@p i], given as "--name=value" or as
 * "--name value" (then *@p i moves past the value); "" when the value is
 * missing; NULL when argv[*i] is another option.
 */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);

/* `adsmith campaigns validate [--json] FILE...`: checks campaign documents with the service's validator. */
int cli_campaigns(int argc, char **argv);

/* `adsmith keys create|list|revoke`: manages API keys in a data directory. */
int cli_keys(int argc, char **argv);

#endif

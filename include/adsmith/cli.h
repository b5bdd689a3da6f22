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

/** `adsmith usage CAMPAIGN`: a campaign's token and money usage and what it bought (usage.h). */
int cli_usage(int argc, char **argv);

/**
 * `adsmith train --input FILE --format F --out MODEL [--seed N] [--rows A:B] ...`:
 * trains the ranking model on a click log (models/ctr formats) and writes it.
 * Progress on stderr (a bar on a terminal). Exit 0; 1 unreadable input, too
 * many malformed lines, untrainable data or a failed write; 2 usage error.
 */
int cli_train(int argc, char **argv);

/**
 * `adsmith eval --model FILE --input FILE --format F [--json] [--rows A:B]`:
 * logloss, normalised entropy, AUC, calibration and a reliability table of a
 * model on a click log; --json prints them as one JSON object on stdout.
 * Exit 0; 1 unreadable model or input; 2 usage error or a schema mismatch.
 */
int cli_eval(int argc, char **argv);

#endif

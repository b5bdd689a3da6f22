/*
 * cli: the subcommands of the `adsmith` binary. Each takes the arguments after
 * its own name and returns the process exit status:
 *   0 success, 1 runtime failure (storage, network), 2 usage or configuration error.
 */
#ifndef ADSMITH_CLI_H
#define ADSMITH_CLI_H

/** `adsmith serve [OPTIONS]`: run the HTTP daemon until SIGTERM/SIGINT. */
int cli_serve(int argc, char **argv);

#endif

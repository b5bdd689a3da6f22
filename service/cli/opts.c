/* Option parsing shared by the subcommands. */
#include <string.h>

#include "adsmith/cli.h"

const char *cli_opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        return ""; /* refused by the caller's check, which names the option */
    return argv[++*i];
}

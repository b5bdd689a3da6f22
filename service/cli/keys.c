/* placeholder: replaced in this change */
#include <stdio.h>

#include "adsmith/cli.h"

int cli_keys(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "adsmith keys: not yet\n");
    return 2;
}

/* placeholder: replaced in this change */
#include <stdio.h>

#include "adsmith/cli.h"

int cli_campaigns(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "adsmith campaigns: not yet\n");
    return 2;
}

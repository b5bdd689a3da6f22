/* libFuzzer target: arbitrary bytes as a config file. cfg_load must either
 * accept them or return ADS_ECONFIG with a message, never crash or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "adsmith/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *const envp[] = {NULL};
    char arg[64];
    char *argv[] = {arg, NULL};
    struct cfg c;
    struct ads_diag d;
    int fd = memfd_create("fuzz.conf", 0);

    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(arg, sizeof(arg), "--config=/proc/self/fd/%d", fd);
    if (cfg_load(&c, 1, argv, envp, &d) == 0) {
        char mem[16384];
        struct buf b;
        buf_init(&b, mem, sizeof(mem));
        cfg_print(&c, &b);
        cfg_done(&c);
    } else if (d.message[0] == '\0') {
        abort(); /* every refusal must say why */
    }
    close(fd);
    return 0;
}

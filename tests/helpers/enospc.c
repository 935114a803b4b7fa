/* enospc.c - preloaded into cnngen by the hostile-input test to fill the
 * disk on cue: every write() to a file whose path holds the text of
 * $CNNGEN_TEST_ENOSPC fails with ENOSPC, as on a full disk; every other
 * write goes through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t write(int fd, const void *data, size_t len)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *match = getenv("CNNGEN_TEST_ENOSPC");
    if (match && *match) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strstr(target, match)) {
                errno = ENOSPC;
                return -1;
            }
        }
    }
    return real_write(fd, data, len);
}

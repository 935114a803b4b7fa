/* fuzz_scratch.c - the fuzz targets' scratch folder (fuzz_scratch.h). */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_scratch.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[256];
static int home = -1;

static void remove_scratch(void)
{
    static const char *const none[] = {NULL};
    fuzz_clean(scratch, none);
    rmdir(scratch);
}

const char *fuzz_scratch_dir(void)
{
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/cnngen-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(scratch)) {
            perror("fuzz: mkdtemp");
            abort(); /* the harness, not the code under test */
        }
        atexit(remove_scratch);
    }
    return scratch;
}

void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void fuzz_write_once(const char *path, const void *data, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fuzz_write(path, data, n);
}

int fuzz_enter(const char *dir)
{
    static int stdin_closed;
    if (!stdin_closed && freopen("/dev/null", "r", stdin))
        stdin_closed = 1;
    home = open(".", O_RDONLY | O_DIRECTORY);
    return home >= 0 && chdir(dir) == 0 ? 0 : -1;
}

void fuzz_leave(void)
{
    if (home >= 0 && fchdir(home) != 0)
        abort();
    if (home >= 0)
        close(home);
    home = -1;
}

void fuzz_clean(const char *dir, const char *const *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        int kept = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        for (int i = 0; keep[i] && !kept; i++)
            kept = !strcmp(e->d_name, keep[i]);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!kept && unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
}

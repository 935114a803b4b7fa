/* run_predictor.c - another predictor program's outputs over the data:
 * PROG eval --int8 Q runs Q (cnngen --quantize --main: the int8
 * predictor, standalone) as `Q predict FILE` over the data's samples, so
 * that the float and the int8 models are measured on the same samples by
 * the same metrics. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inspect.h"

/* The samples' inputs as sample lines (%.9g: the floats exactly). */
static int write_samples(FILE *f, const cnnrt_data *d)
{
    float *x = malloc(sizeof(float) * (size_t)d->input_size + 1);
    float *t = malloc(sizeof(float) * (size_t)d->target_size + 1);
    int ok = x && t;
    for (long s = 0; ok && s < d->count; s++) {
        cnnrt_gather_batch(d, NULL, s, 1, x, t);
        for (int i = 0; i < d->input_size; i++)
            fprintf(f, "%s%.9g", i ? "," : "", x[i]);
        ok = fputc('\n', f) != EOF;
    }
    free(x);
    free(t);
    return ok && fflush(f) == 0 && !ferror(f);
}

/* Its lines: each output_size numbers, comma-separated; the count read. */
static long read_outputs(FILE *in, long count, int output_size, float *y)
{
    long s = 0;
    char *line = NULL;
    size_t cap = 0;
    while (s < count && getline(&line, &cap, in) >= 0) {
        char *p = line;
        for (int k = 0; k < output_size; k++) {
            char *end;
            errno = 0;
            y[s * output_size + k] = strtof(p, &end);
            if (end == p || errno == ERANGE)
                goto done;
            p = end + (*end == ',');
        }
        if (*p != '\n' && *p != '\0')
            goto done;
        s++;
    }
done:
    free(line);
    return s;
}

/* Run `prog predict path`, reading what it prints; its exit status or -1. */
static int run_program(const char *prog, const char *path, long count, int output_size, float *y,
                       long *read)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execlp(prog, prog, "predict", path, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *in = fdopen(pipefd[0], "r");
    *read = in ? read_outputs(in, count, output_size, y) : 0;
    if (in) {
        char rest[4096]; /* drain, so the program is not stopped by a full pipe */
        while (fread(rest, 1, sizeof rest, in) > 0)
            ;
        fclose(in);
    } else {
        close(pipefd[0]);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cnnrt_run_predictor(const char *self, const char *prog, const cnnrt_data *d, int output_size,
                        float **y)
{
    *y = malloc(sizeof(float) * (size_t)d->count * (size_t)output_size + 1);
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/cnnrt-samples-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = *y ? mkstemp(path) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "%s: error: cannot write the samples for '%s': %s\n", self, prog,
                *y ? strerror(errno) : "out of memory");
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        free(*y);
        *y = NULL;
        return 1;
    }
    int written = write_samples(f, d);
    written &= fclose(f) == 0;
    long read = 0;
    int status = written ? run_program(prog, path, d->count, output_size, *y, &read) : -1;
    unlink(path);
    if (!written || status != 0 || read != d->count) {
        if (!written)
            fprintf(stderr, "%s: error: cannot write the samples for '%s'\n", self, prog);
        else if (status != 0)
            fprintf(stderr, "%s: error: '%s predict' %s\n", self, prog,
                    status == 127 ? "could not be run"
                    : status < 0  ? "did not finish"
                                  : "failed");
        else
            fprintf(stderr,
                    "%s: error: '%s predict' printed %ld outputs of %d numbers where %ld were "
                    "due: it predicts for another model\n",
                    self, prog, read, output_size, d->count);
        free(*y);
        *y = NULL;
        return 1;
    }
    return 0;
}

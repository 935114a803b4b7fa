/* program.c - running another program with our bytes on its standard
 * input (and its standard output collected): Graphviz's dot for cnngen's
 * diagrams, gnuplot for the plot command.  Programs rather than
 * libraries keep the runtime free of drawing libraries. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cnnrt.h"

/* Grow *buf by what fd has ready: 1 while there may be more, 0 at its
 * end, -1 out of memory. */
static int read_some(int fd, char **buf, size_t *len, size_t *cap)
{
    if (*cap - *len < 65536) {
        size_t bigger = *cap ? 2 * *cap : 131072;
        char *p = realloc(*buf, bigger);
        if (!p)
            return -1;
        *buf = p;
        *cap = bigger;
    }
    ssize_t n = read(fd, *buf + *len, *cap - *len);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0)
        return 0;
    *len += (size_t)n;
    return 1;
}

/* Write the input and read the output as each is ready, so that neither
 * side waits on a full pipe whatever order the program reads and writes
 * in.  Returns 0, or -1 when the input could not all be written (the
 * program exited early) or memory ran out. */
static int exchange(int to, int from, const char *input, size_t len, char **out, size_t *out_len)
{
    size_t sent = 0, cap = 0;
    int ok = 0, reading = from >= 0;
    if (len == 0) {
        close(to);
        to = -1;
    }
    while (to >= 0 || reading) {
        struct pollfd fds[2] = {{to, POLLOUT, 0}, {reading ? from : -1, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            ok = -1;
            break;
        }
        if (to >= 0 && fds[0].revents) {
            ssize_t n = write(to, input + sent, len - sent);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                ok = -1, sent = len; /* the program has gone: stop writing */
            else if (n > 0)
                sent += (size_t)n;
            if (sent == len) {
                close(to);
                to = -1;
            }
        }
        if (reading && fds[1].revents) {
            int more = read_some(from, out, out_len, &cap);
            if (more < 0)
                ok = -1;
            reading = more > 0;
        }
    }
    if (to >= 0)
        close(to);
    return ok;
}

int cnnrt_run_program(char *const argv[], const void *input, size_t len, char **output,
                      size_t *output_len)
{
    int in[2], from[2] = {-1, -1};
    if (output) {
        *output = NULL;
        *output_len = 0;
    }
    if (pipe(in) != 0)
        return -1;
    if (output && pipe(from) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t child = fork();
    if (child == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        if (output) {
            dup2(from[1], 1);
            close(from[0]);
            close(from[1]);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    if (output)
        close(from[1]);
    if (child < 0) {
        close(in[1]);
        if (output)
            close(from[0]);
        return -1;
    }
    /* a program that is missing or exits early must not kill us */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int exchanged = exchange(in[1], output ? from[0] : -1, input, len, output, output_len);
    signal(SIGPIPE, old);
    if (output)
        close(from[0]);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code != 127 && exchanged != 0)
        code = -1;
    if (code != 0 && output) {
        free(*output);
        *output = NULL;
        *output_len = 0;
    }
    return code;
}

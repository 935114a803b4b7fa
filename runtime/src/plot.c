/* plot.c - the generated program's plot command: training curves drawn
 * from the metrics log that `train --log FILE.csv` writes.
 *
 *   PROG plot --log FILE.csv -o CURVES.png|CURVES.svg
 *
 * One panel per value (the loss, then each metric), the training value
 * and, when the log has it, the validation value against the epoch; a
 * last panel with the learning rate when it changes.  gnuplot draws them
 * (Debian's gnuplot-nox): a program rather than a library, so that the
 * runtime links no plotting library (it also builds for AArch64); it
 * reads the CSV by its column names itself, and writes PNG and SVG. */
#define _POSIX_C_SOURCE 200809L /* strdup, open_memstream */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "fields.h"

enum { PLOT_MAX_COLUMNS = 64 };

typedef struct {
    char *names[PLOT_MAX_COLUMNS];
    int ncolumns;
    long rows;
    int lr_changes; /* the learning rate is not the same in every row */
} LogShape;

static void free_shape(LogShape *s)
{
    for (int i = 0; i < s->ncolumns; i++)
        free(s->names[i]);
}

static int column(const LogShape *s, const char *name)
{
    for (int i = 0; i < s->ncolumns; i++)
        if (strcmp(s->names[i], name) == 0)
            return i;
    return -1;
}

/* The log's columns (its header: epoch,lr,seconds,loss,...) and rows. */
static int read_log(const char *path, LogShape *s, char *error, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cnnrt_fail(error, size, CNNRT_EIO, "error: cannot read '%s': %s", path,
                          strerror(errno));
    char line[4096];
    int status = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, "epoch,lr,seconds,loss", 21) != 0) {
        status = cnnrt_fail(error, size, CNNRT_EBAD,
                            "error: '%s' is not a training log (its first line should be "
                            "epoch,lr,seconds,loss,...: the log train --log writes)",
                            path);
    } else {
        line[strcspn(line, "\r\n")] = '\0';
        for (char *p = strtok(line, ","); p && s->ncolumns < PLOT_MAX_COLUMNS;
             p = strtok(NULL, ","))
            s->names[s->ncolumns++] = strdup(p);
        double first_lr = 0, lr;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "%*[^,],%lf", &lr) != 1) {
                status =
                    cnnrt_fail(error, size, CNNRT_EBAD,
                               "error: '%s' line %ld: not a row of the log", path, s->rows + 2);
                break;
            }
            if (s->rows++ == 0)
                first_lr = lr;
            s->lr_changes |= lr != first_lr;
        }
        if (status == 0 && s->rows == 0)
            status = cnnrt_fail(error, size, CNNRT_EBAD, "error: '%s' has no epoch to plot", path);
    }
    fclose(f);
    return status;
}

/* TEXT as a gnuplot string: single quotes, a quote written twice. */
static void put_string(FILE *out, const char *text)
{
    fputc('\'', out);
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            fputc('\'', out);
        fputc(*p, out);
    }
    fputc('\'', out);
}

/* One panel: NAME and val_NAME (if logged) against the epoch. */
static void plot_panel(FILE *out, const char *log, const LogShape *s, const char *name, int last)
{
    fprintf(out, "set ylabel '%s'\n", name);
    if (last)
        fprintf(out, "set xlabel 'epoch'\n");
    fprintf(out, "plot ");
    put_string(out, log);
    fprintf(out, " using 'epoch':'%s' with linespoints pt 7 ps 0.5 lw 2 title 'training'", name);
    char val[256];
    snprintf(val, sizeof val, "val_%s", name);
    if (column(s, val) >= 0)
        fprintf(out,
                ", '' using 'epoch':'%s' with linespoints pt 7 ps 0.5 lw 2 "
                "title 'validation'",
                val);
    fputc('\n', out);
}

/* The gnuplot script: the terminal from OUTPUT's extension, then the panels. */
static void write_script(FILE *out, const char *log, const char *output, const char *staged,
                         const LogShape *s)
{
    int svg = strlen(output) > 4 && strcmp(output + strlen(output) - 4, ".svg") == 0;
    int values = 0;
    for (int i = 3; i < s->ncolumns; i++)
        values += strncmp(s->names[i], "val_", 4) != 0;
    int panels = values + s->lr_changes;
    fprintf(out, "set terminal %s size 900,%d font 'Sans,10'\n", svg ? "svg dynamic" : "pngcairo",
            260 * panels + 40);
    fprintf(out, "set output ");
    put_string(out, staged);
    fprintf(out, "\nset datafile separator ','\nset grid\nset key top right\n");
    fprintf(out, "set xtics %ld\n", s->rows <= 10 ? 1 : (s->rows + 9) / 10); /* whole epochs */
    fprintf(out, "set multiplot layout %d,1 title ", panels);
    const char *slash = strrchr(log, '/');
    put_string(out, slash ? slash + 1 : log);
    fputc('\n', out);
    int drawn = 0;
    for (int i = 3; i < s->ncolumns; i++)
        if (strncmp(s->names[i], "val_", 4) != 0)
            plot_panel(out, log, s, s->names[i], ++drawn == panels);
    if (s->lr_changes) {
        fprintf(out, "set ylabel 'learning rate'\nset xlabel 'epoch'\nset logscale y\nplot ");
        put_string(out, log);
        fprintf(out, " using 'epoch':'lr' with linespoints pt 7 ps 0.5 lw 2 title 'lr'\n");
    }
    fprintf(out, "unset multiplot\nset output\n");
}

static int plot_usage(const char *prog)
{
    fprintf(stderr, "usage: %s plot --log FILE.csv -o CURVES.png|CURVES.svg\n", prog);
    return 2;
}

int cnnrt_plot_command(int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "plot", *log = NULL, *output = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
            log = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            output = argv[++i];
        else
            return plot_usage(prog);
    }
    size_t n = output ? strlen(output) : 0;
    if (!log || !output || n < 5 ||
        (strcmp(output + n - 4, ".png") != 0 && strcmp(output + n - 4, ".svg") != 0))
        return plot_usage(prog);
    LogShape s = {0};
    char error[1024];
    int status = read_log(log, &s, error, sizeof error);
    /* gnuplot draws into a file beside OUTPUT, renamed into place when whole */
    char *staged = NULL, *script = NULL;
    size_t script_len = 0;
    if (status == 0)
        status = cnnrt_stage_file(output, "", 0, &staged, error, sizeof error);
    FILE *f = status == 0 ? open_memstream(&script, &script_len) : NULL;
    if (status == 0 && !f)
        status = cnnrt_fail(error, sizeof error, CNNRT_EIO, "error: out of memory");
    if (f) {
        write_script(f, log, output, staged, &s);
        fclose(f);
        char *gnuplot[] = {"gnuplot", NULL};
        int code = cnnrt_run_program(gnuplot, script, script_len, NULL, NULL);
        if (code == 127)
            status = cnnrt_fail(error, sizeof error, CNNRT_EIO,
                                "error: plot needs gnuplot (Debian: apt-get install gnuplot-nox)");
        else if (code != 0)
            status = cnnrt_fail(error, sizeof error, CNNRT_EIO,
                                "error: gnuplot failed to draw '%s'", output);
        else
            status = cnnrt_commit_file(output, staged, error, sizeof error), staged = NULL;
    }
    if (staged)
        cnnrt_discard_file(staged);
    if (status != 0)
        fprintf(stderr, "%s plot: %s\n", prog, error);
    free(script);
    free_shape(&s);
    return status ? cnnrt_exit_status(status) : 0;
}

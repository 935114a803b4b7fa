/* cnnrt.h - the cnngen runtime: what generated code links against to
 * load weights and to be a program (predict from sample lines).
 *
 * Everything is C99 and needs only libc and libm.  Errors are returned,
 * never printed by the library (the command helpers print them).
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNNRT_VERSION "0.1.0"

/* What the loaders and the writer return: 0, or one of these with a
 * message in error. */
enum {
    CNNRT_EBAD = -1, /* bad content: a program exits with 1 */
    CNNRT_EIO = -2   /* cannot read or write, or a malformed argument: exits with 2 */
};
/* The exit status the contract gives for such a result: 0, 1 or 2. */
int cnnrt_exit_status(int result);

/* A tensor the model expects in a weights file. */
typedef struct {
    const char *name; /* "conv2d_1.kernel" */
    int rank;
    int shape[5];
    long offset; /* where it goes in the parameter block, in floats */
} cnnrt_tensor_spec;

/* Load every spec'd tensor from a safetensors file into params (count
 * floats).  The file must hold exactly these tensors, as F32 with these
 * shapes, except that quantization-aware training's observers
 * (NAME.quantize) may be missing and keep their values; the first mismatch (in spec order, then a tensor the model
 * lacks) is the error.  Returns 0, or with a message ("FILE: error: ...")
 * in error CNNRT_EBAD (-1) for a bad file and CNNRT_EIO (-2) for one that
 * cannot be read; params is untouched on failure. */
int cnnrt_load_safetensors(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                           float *params, long count, char *error, size_t error_size);

/* Training data: count samples of input_size floats, and of target_size
 * targets (output values, or class indices stored as whole floats).
 * Sample k's inputs start at inputs + k * input_stride: input_size for
 * rows of a file, 1 for a series' sliding windows, which overlap (so a
 * series takes its own size in memory, not the window's size times it). */
typedef struct {
    long count;
    int input_size;
    int target_size;
    long input_stride;
    float *inputs;  /* (count - 1) * input_stride + input_size */
    float *targets; /* count * target_size */
} cnnrt_data;

/* What the model needs of its data. */
typedef struct {
    int input_size;
    int output_size;
    int classes;   /* crossentropy: classes on the last axis; else 0 */
    int positions; /* crossentropy: class indices per sample */
} cnnrt_data_layout;

/* Load DATA: FILE.csv, series:FILE.csv:COLUMN:N or idx:PREFIX.  Returns 0,
 * CNNRT_EBAD for bad content (the message names file, line and column)
 * or CNNRT_EIO for a file that cannot be read or a malformed DATA (the
 * message starts "error:", for the caller to put the program's name
 * before). */
int cnnrt_load_data(const char *spec, const cnnrt_data_layout *layout, cnnrt_data *data,
                    char *error, size_t error_size);
void cnnrt_free_data(cnnrt_data *data);

/* Starting weights by the init rules (Keras' VarianceScaling), from a
 * seed; one entry per tensor, at its offset in the parameter block.
 * CNNRT_INIT_KEEP leaves a tensor alone (its values were written in the
 * model).  The numbers are this runtime's own; the distributions are the
 * contract's. */
typedef enum {
    CNNRT_INIT_KEEP,
    CNNRT_INIT_ZEROS,
    CNNRT_INIT_ONES,
    CNNRT_INIT_GLOROT_UNIFORM,
    CNNRT_INIT_GLOROT_NORMAL,
    CNNRT_INIT_HE_UNIFORM,
    CNNRT_INIT_HE_NORMAL,
    CNNRT_INIT_LECUN_NORMAL
} cnnrt_init_kind;

typedef struct {
    long offset, count;
    int init; /* a cnnrt_init_kind */
    long fan_in, fan_out;
} cnnrt_init_spec;

void cnnrt_init_params(const cnnrt_init_spec *specs, int n, float *params, unsigned long long seed);

/* The training loop's sample order, for a loop of one's own (on a board):
 * the generator's state for SEED, then each epoch's order in turn,
 * shuffled in place (ORDER starts as 0, 1, ..., n - 1). */
unsigned long long cnnrt_order_start(unsigned long long seed);
void cnnrt_shuffle(long *order, long n, unsigned long long *state);

/* Inverted dropout's mask for one layer and training step: count values,
 * each 1/(1-rate) with probability 1-rate, else 0.  The values depend only
 * on (seed, layer, step, index). */
void cnnrt_dropout_mask(float *mask, long count, double rate, unsigned long long seed, int layer,
                        unsigned long long step);

/* Write the spec'd tensors of params to a safetensors file, as F32 in spec
 * order (byte for byte what the reference writes), as cnnrt_write_file
 * writes a file.  Returns 0, or CNNRT_EIO with a message ("error: cannot
 * write ...") in error. */
int cnnrt_save_safetensors(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                           const float *params, char *error, size_t error_size);

/* Safetensors files with string metadata (training checkpoints): the
 * tensors as above, and __metadata__ holding each key's value (written
 * first; when reading, each key must be there). */
typedef struct {
    const char *key;
    char value[64];
} cnnrt_meta;
int cnnrt_save_safetensors_meta(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                                const float *params, const cnnrt_meta *meta, int nmeta, char *error,
                                size_t error_size);
int cnnrt_load_safetensors_meta(const char *path, const cnnrt_tensor_spec *specs, int nspecs,
                                float *params, long count, cnnrt_meta *meta, int nmeta, char *error,
                                size_t error_size);

/* Write a whole file in place of path: a new file beside it (an
 * unpredictable name, created exclusively), synced, renamed over it, so
 * that a reader never sees half of it.  Only a regular file is replaced
 * (keeping its permissions; a new file gets what the umask gives, read
 * by setting it for an instant, so not while another thread creates
 * files); a device, a directory or a symbolic link at path is an error.
 * Returns 0, or CNNRT_EIO with a message ("error: cannot write ...") in
 * error. */
int cnnrt_write_file(const char *path, const void *data, size_t len, char *error,
                     size_t error_size);

/* cnnrt_write_file in two steps, for files that go together (cnngen's .c
 * and .h): stage each (written whole and synced beside its target, under
 * the name returned in *staged), and only when all are staged commit each
 * (the rename); on a failure, discard the staged ones and the old files
 * are left as they were.  Commit and discard free *staged. */
int cnnrt_stage_file(const char *path, const void *data, size_t len, char **staged, char *error,
                     size_t error_size);
int cnnrt_commit_file(const char *path, char *staged, char *error, size_t error_size);
void cnnrt_discard_file(char *staged);

/* Run a program (argv[0], found on PATH; argv ends with NULL) with
 * input's len bytes on its standard input.  With output, its standard
 * output is collected there (malloc'ed, *output_len bytes, for the caller
 * to free; NULL unless it exits with 0), else it is left as ours.  Input
 * and output flow as the program takes and gives them, and SIGPIPE is
 * ignored meanwhile: a program that is missing or stops reading cannot
 * kill the caller.  Returns its exit status, 127 when it cannot be run,
 * -1 when it was killed or the exchange failed. */
int cnnrt_run_program(char *const argv[], const void *input, size_t len, char **output,
                      size_t *output_len);

/* The plot command of a generated program (plot.c):
 *   PROG plot --log FILE.csv -o CURVES.png|CURVES.svg
 * draws the curves of a training log (train --log) through gnuplot.
 * Returns the exit status. */
int cnnrt_plot_command(int argc, char **argv);

/* The predict command of a generated program:
 *   PROG predict [--weights W.safetensors] [FILE|-]
 * Reads samples, one per line (input_size numbers separated by commas
 * and/or blanks; blank and '#' lines skipped), prints one line per
 * sample: the outputs comma-separated as %.9g.  load may be NULL when
 * the weights are baked in.  Returns the exit status. */
typedef void (*cnnrt_predict_fn)(const float *input, float *output, int n);
typedef int (*cnnrt_load_fn)(const char *path, char *error, size_t error_size);
typedef void (*cnnrt_init_fn)(unsigned long long seed);
/* Without --weights, init (when not NULL) sets the starting weights from
 * seed (the train block's). */
int cnnrt_predict_command(int argc, char **argv, const char *model_name, int input_size,
                          int output_size, cnnrt_predict_fn predict, cnnrt_load_fn load,
                          cnnrt_init_fn init, unsigned long long seed);
/* An int8 predictor's (docs/int8.md), its weights baked in:
 *   PROG predict [--raw] [FILE|-]
 * predict's floats, or with --raw raw's integer outputs (the int8 values,
 * or a float head's int32 sums) as decimal integers. */
typedef void (*cnnrt_predict_raw_fn)(const float *input, long *output);
int cnnrt_predict_command_int8(int argc, char **argv, const char *model_name, int input_size,
                               int output_size, cnnrt_predict_fn predict, cnnrt_predict_raw_fn raw);

/* ---- training: the program's train and eval commands -------------------- */

enum { CNNRT_LOSS_MSE, CNNRT_LOSS_MAE, CNNRT_LOSS_BCE, CNNRT_LOSS_CROSSENTROPY };
enum { CNNRT_METRIC_ACCURACY, CNNRT_METRIC_MAE, CNNRT_METRIC_RMSE };

/* The learning rate over a run: PyTorch's schedulers, counted in epochs
 * or in steps (batches).  A linear warmup of `warmup` units (LinearLR from
 * warmup_start to 1) comes first; the schedule then runs from its start,
 * as in PyTorch's SequentialLR. */
enum {
    CNNRT_SCHEDULE_NONE,
    CNNRT_SCHEDULE_STEP_DECAY,  /* StepLR(step_size=every, gamma) */
    CNNRT_SCHEDULE_EXPONENTIAL, /* ExponentialLR(gamma) */
    CNNRT_SCHEDULE_COSINE,      /* CosineAnnealingLR(T_max=length, eta_min=min_lr) */
    CNNRT_SCHEDULE_ONE_CYCLE    /* OneCycleLR(max_lr, total_steps, pct_start, div_factor,
                                 * final_div_factor, cycle_momentum=False) */
};

typedef struct {
    int kind;     /* CNNRT_SCHEDULE_* */
    int per_step; /* 1: counts steps; 0: epochs */
    long every, length, warmup;
    double gamma, min_lr, max_lr, pct_start, div_factor, final_div_factor, warmup_start;
} cnnrt_schedule;

/* The learning rate at position t (from 0) of a run of `total` positions
 * (epochs or steps, as the schedule counts), from the base lr. */
double cnnrt_schedule_lr(const cnnrt_schedule *s, double base_lr, long t, long total);

/* Augmentation of a training sample, applied in the order given. */
enum {
    CNNRT_AUGMENT_SHIFT, /* by -amount..amount pixels on H and W, zero fill */
    CNNRT_AUGMENT_CROP,  /* pad by amount, crop back at random: a shift */
    CNNRT_AUGMENT_FLIP,  /* mirror W with probability 1/2 */
    CNNRT_AUGMENT_NOISE, /* add Gaussian noise of stddev amount */
    CNNRT_AUGMENT_SCALE  /* multiply by a factor in [1 - amount, 1 + amount] */
};
enum { CNNRT_AUGMENT_MAX = 8 };

typedef struct {
    int kind; /* CNNRT_AUGMENT_* */
    double amount;
} cnnrt_augment;

/* Shift an image or clip (channels last; [H, W, C] or [D, H, W, C] as
 * rank 3 or 4) by dy rows and dx columns, zero fill: out[y][x] =
 * in[y - dy][x - dx]; flip mirrors the columns.  in and out differ. */
void cnnrt_shift_image(const float *in, float *out, int rank, const int *shape, int dy, int dx);
void cnnrt_flip_image(const float *in, float *out, int rank, const int *shape);

/* What the train block says beyond the step itself. */
enum { CNNRT_MONITOR_VAL = 8 }; /* monitor: 0 the loss, 1 + k metric k, + VAL */

typedef struct {
    double lr; /* the optimizer's, before the schedule */
    cnnrt_schedule schedule;
    double validation_split; /* 0: none */
    long patience;           /* early stopping; 0: none */
    int monitor;
    int naugment;
    cnnrt_augment augment[CNNRT_AUGMENT_MAX];
    int input_rank, input_shape[5];
} cnnrt_train_settings;

/* Apply the train block's augmentation to n samples of x (and, for
 * scaling with value targets, t) in place; the first is at position
 * `first` of the epoch's order; tmp holds input_size floats.  Each
 * sample's draws depend only on (seed, epoch, its position), never on
 * threads. */
void cnnrt_augment_batch(const cnnrt_train_settings *s, unsigned long long seed, int value_targets,
                         float *x, float *t, int n, int input_size, int target_size, long epoch,
                         long first, float *tmp);

/* One layer as predict --dump and --profile see it. */
typedef struct {
    const char *name; /* "conv2d_1" */
    const char *kind; /* "conv2d" */
    int line;         /* in the model's source */
    int rank;
    int shape[5];   /* its output for one sample, channels last */
    long values;    /* where eval_batch leaves that output in the training arena,
                    * [batch][its size]; -1: it is the input itself */
    double flops;   /* forward FLOPs of one sample */
    int fused_into; /* inference: the index of the layer whose function computes
                     * it (its own index when it has a function of its own) */
} cnnrt_layer_info;

/* cnngen --profile: time spent per layer, counted by the generated code.
 * Entry i < nlayers is layer i (its functions: one per predict call, or
 * its forward, backward and update functions per training step); entry
 * nlayers is the loss, nlayers + 1 the whole calls (predict_ws, or
 * train_batch), whose samples count the samples they computed. */
typedef struct {
    unsigned long long calls, ns, samples;
} cnnrt_profile_count;

/* Monotonic nanoseconds, and: add the time since `since` to c (one more
 * call) and return the time now, the next layer's start. */
unsigned long long cnnrt_profile_clock(void);
unsigned long long cnnrt_profile_mark(cnnrt_profile_count *c, unsigned long long since);

/* One core's single-precision FMA peak, measured (tens of milliseconds),
 * for the vectors of an instruction-set clone (PREFIX_isa(): "avx512",
 * "avx2", else the widest this CPU runs); *what says which ("512-bit
 * FMA").  0 when it cannot be measured. */
double cnnrt_fma_peak(const char *isa, const char **what);

/* A model as the commands see it; generated code fills one in.  The
 * model does one batch of n <= batch samples at a time: train_batch runs
 * the forward pass in training mode, the loss, the backward pass and the
 * optimizer step, and returns the batch's loss (the mean over it) with
 * the outputs before the update in y; eval_batch the same at inference,
 * without the update. */
typedef struct {
    const char *name; /* the default weights file is NAME.safetensors */
    int input_size, output_size;
    int last_axis; /* size of the output's last axis (classes) */
    int batch;
    long epochs;
    unsigned long long seed;
    cnnrt_data_layout layout;
    int loss;                 /* CNNRT_LOSS_* */
    int metrics[3], nmetrics; /* CNNRT_METRIC_*, in the train block's order */
    int ntensors;
    const cnnrt_tensor_spec *tensors;
    float *params;
    long param_count;
    void (*init)(unsigned long long seed);
    void (*start_training)(unsigned long long seed); /* optimizer state, dropout */
    double (*train_batch)(const float *x, const float *t, int n, float *y);
    double (*eval_batch)(const float *x, const float *t, int n, float *y);
    cnnrt_predict_fn predict;
    /* For schedules and checkpoints: the learning rate of the next steps;
     * the optimizer's state (SGD's velocity, Adam's m and v: blocks of
     * param_count floats, in the parameters' order) and its step counter. */
    void (*set_learning_rate)(double lr);
    float *optimizer_state[2];
    int optimizer_blocks;
    unsigned long long *train_step;
    cnnrt_train_settings settings;
    /* The layers (predict --dump reads their outputs from the training
     * arena after eval_batch), the profile's counters (NULL unless built
     * with cnngen --profile) and the clone in use (NULL: one version). */
    int nlayers;
    const cnnrt_layer_info *layers;
    float *train_arena;
    cnnrt_profile_count *profile;
    const char *(*isa)(void);
} cnnrt_model;

/* PROG predict | train | eval | plot, as the contract describes; returns
 * the exit status.  Epoch lines: "epoch 3/10 - loss: X - mae: Y" (%.9g).
 * predict --profile and train --profile print the profile table (on
 * standard error, after the command's own output); predict --dump DIR
 * writes each layer's outputs for the samples (DIR/LAYER.safetensors). */
int cnnrt_main(int argc, char **argv, const cnnrt_model *m);

/* Print the profile table of m's counters, whose whole calls are predict
 * calls, or training steps (a step's FLOPs counted as 3 forward passes);
 * and set the counters back to zero. */
void cnnrt_profile_report(FILE *out, const cnnrt_model *m, int training);
void cnnrt_profile_reset(const cnnrt_model *m);

/* Predict every sample line of in (named where in messages) to out.
 * Returns 0, or 1 after a bad line (the lines before it are printed). */
int cnnrt_predict_lines(FILE *in, const char *where, int input_size, int output_size,
                        cnnrt_predict_fn predict, FILE *out, FILE *err);

#ifdef __cplusplus
}
#endif

#endif

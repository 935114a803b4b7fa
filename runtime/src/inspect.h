/* inspect.h - what the commands share inside libcnnrt: the profile and
 * dump (inspect.c), loading and batching (train.c), calibration
 * (calibrate.c). */
#ifndef CNNRT_INSPECT_H
#define CNNRT_INSPECT_H

#include "cnnrt.h"

/* 0 when m counts a profile; else 2 after saying how to build one. */
int cnnrt_can_profile(const cnnrt_model *m, const char *prog);

/* PROG predict [--weights W] [--profile] [--dump DIR] [FILE|-]: the exit
 * status. */
int cnnrt_predict_main(int argc, char **argv, const cnnrt_model *m, cnnrt_load_fn load);

/* Floats in one sample's output of layer l. */
long cnnrt_layer_size(const cnnrt_layer_info *l);

/* The commands' loading (train.c): m's weights from path, DATA for m
 * (each says what went wrong on stderr); the exit status. */
int cnnrt_command_load_weights(const cnnrt_model *m, const char *path);
int cnnrt_command_load_data(const char *prog, const cnnrt_model *m, const char *spec,
                            cnnrt_data *data);
/* Samples first .. first + n - 1 of d (through order, when given) into
 * the batch arrays x and t. */
void cnnrt_gather_batch(const cnnrt_data *d, const long *order, long first, int n, float *x,
                        float *t);

/* Run prog (a predictor program: `prog predict FILE`) over d's samples:
 * its outputs, output_size floats a sample, in *y (malloc'd).  0, or 1
 * after saying why not (run_predictor.c). */
int cnnrt_run_predictor(const char *self, const char *prog, const cnnrt_data *d, int output_size,
                        float **y);

/* PROG calibrate --data DATA --weights W [--save RANGES] [--percentile P]:
 * each tensor's range over the data (calibrate.c); the exit status. */
int cnnrt_calibrate_main(int argc, char **argv, const cnnrt_model *m);

#endif

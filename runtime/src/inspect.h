/* inspect.h - the commands' profile and dump (inspect.c) and calibration
 * (calibrate.c); internal to libcnnrt. */
#ifndef CNNRT_INSPECT_H
#define CNNRT_INSPECT_H

#include "cnnrt.h"

/* 0 when m counts a profile; else 2 after saying how to build one. */
int cnnrt_can_profile(const cnnrt_model *m, const char *prog);

/* PROG predict [--weights W] [--profile] [--dump DIR] [FILE|-]: the exit
 * status. */
int cnnrt_predict_main(int argc, char **argv, const cnnrt_model *m, cnnrt_load_fn load);

/* PROG calibrate --data DATA --weights W [--save RANGES] [--percentile P]:
 * each tensor's range over the data (calibrate.c); the exit status. */
int cnnrt_calibrate_main(int argc, char **argv, const cnnrt_model *m);

#endif

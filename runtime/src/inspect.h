/* inspect.h - the commands' profile and dump (inspect.c); internal to
 * libcnnrt. */
#ifndef CNNRT_INSPECT_H
#define CNNRT_INSPECT_H

#include "cnnrt.h"

/* 0 when m counts a profile; else 2 after saying how to build one. */
int cnnrt_can_profile(const cnnrt_model *m, const char *prog);

/* PROG predict [--weights W] [--profile] [--dump DIR] [FILE|-]: the exit
 * status. */
int cnnrt_predict_main(int argc, char **argv, const cnnrt_model *m, cnnrt_load_fn load);

#endif

/* sema_train.h - the train block (part of sema): its settings read into
 * a TrainConfig, each bad value reported at its own location. */
#ifndef CNNGEN_SEMA_TRAIN_H
#define CNNGEN_SEMA_TRAIN_H

#include "args.h"

typedef struct {
    Diag *diag;
    Ast *ast;
    Arena *arena;
    const Consts *consts;
    Loss explicit_loss;
    Loc metrics_loc, monitor_loc, augment_loc, warmup_loc;
    int monitor_word; /* index in the monitor words, -1: not given */
    bool warmup_per_step, warmup_per_given;
} TrainReader;

/* The contract's defaults: adam(), batch 32, 10 epochs, seed 0. */
void train_defaults(TrainConfig *c);
/* One `key = value` of the block. */
void train_read_entry(TrainReader *t, const Arg *entry, TrainConfig *c);
/* What needs the whole block and the input: metrics against the loss,
 * the monitored value, augmentation against the input's rank. */
void train_check(TrainReader *t, TrainConfig *c, const Shape *input);

#endif

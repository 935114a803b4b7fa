/* checkpoint.h - a training run's state in a file, to resume it bit for
 * bit (internal to libcnnrt; train.c's --checkpoint and --resume). */
#ifndef CNNRT_CHECKPOINT_H
#define CNNRT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cnnrt.h"

typedef struct {
    long epoch;              /* epochs done */
    unsigned long long step; /* optimizer steps done (Adam's t, dropout's stream) */
    uint64_t shuffle_state;  /* the sample order's generator after those epochs */
    unsigned long long seed; /* the run's */
    long samples;            /* training samples: the resumed data must have as many */
    long best_epoch, wait;   /* early stopping and the best weights (0: none yet) */
    double best_value;
    int stopped; /* early stopping ended the run */
} cnnrt_checkpoint_info;

/* The model's weights, its optimizer's state and step counter, the best
 * epoch's weights (best: param_count floats, or NULL when the run keeps
 * none) and info, written atomically to path.  0 or a CNNRT_E* status
 * with the message in error. */
int cnnrt_save_checkpoint(const char *path, const cnnrt_model *m, const float *best,
                          const cnnrt_checkpoint_info *info, char *error, size_t size);
/* A checkpoint read whole and checked against the model, not yet in it:
 * its info, and its values (the weights, the state blocks and, with_best,
 * the best weights; the caller frees them).  The run needs the info's
 * seed before it starts training, which clears the optimizer's state;
 * restore then puts the values into the model and best. */
typedef struct {
    cnnrt_checkpoint_info info;
    float *values;
} cnnrt_checkpoint;

int cnnrt_read_checkpoint(const char *path, const cnnrt_model *m, int with_best,
                          cnnrt_checkpoint *ck, char *error, size_t size);
void cnnrt_restore_checkpoint(const cnnrt_model *m, const cnnrt_checkpoint *ck, float *best);

#endif

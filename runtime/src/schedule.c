/* schedule.c - the learning rate over a run, as PyTorch's schedulers give
 * it: StepLR, ExponentialLR, CosineAnnealingLR and OneCycleLR
 * (cycle_momentum=False), each optionally after a LinearLR warmup
 * composed by SequentialLR.  Closed forms of what those classes compute
 * step by step; tests/e2e/test_schedules.py compares them at every
 * position of a run with PyTorch's own objects. */
#include <math.h>

#include "cnnrt.h"

static const double PI = 3.14159265358979323846;

/* OneCycleLR's two phases (three_phase=False, anneal_strategy='cos'):
 * from max_lr/div_factor up to max_lr until pct_start of the steps, then
 * down to max_lr/div_factor/final_div_factor at the last one. */
static double one_cycle_lr(const cnnrt_schedule *s, long t, long total)
{
    double initial = s->max_lr / s->div_factor, floor_lr = initial / s->final_div_factor;
    double rise_end = s->pct_start * (double)total - 1, fall_end = (double)total - 1;
    double start_step = 0, from = initial, to = s->max_lr, end = rise_end;
    if ((double)t > rise_end) {
        start_step = rise_end;
        from = s->max_lr;
        to = floor_lr;
        end = fall_end;
    }
    double pct = ((double)t - start_step) / (end - start_step);
    return to + (from - to) / 2.0 * (cos(PI * pct) + 1);
}

/* The schedule alone, at position t of its own run of `total`. */
static double main_lr(const cnnrt_schedule *s, double base, long t, long total)
{
    switch (s->kind) {
    case CNNRT_SCHEDULE_STEP_DECAY: return base * pow(s->gamma, (double)(t / s->every));
    case CNNRT_SCHEDULE_EXPONENTIAL: return base * pow(s->gamma, (double)t);
    case CNNRT_SCHEDULE_COSINE: {
        long length = s->length > 0 ? s->length : total > 0 ? total : 1;
        return s->min_lr + (base - s->min_lr) * (1 + cos(PI * (double)t / (double)length)) / 2;
    }
    case CNNRT_SCHEDULE_ONE_CYCLE: return one_cycle_lr(s, t, total > 1 ? total : 2);
    default: return base;
    }
}

double cnnrt_schedule_lr(const cnnrt_schedule *s, double base_lr, long t, long total)
{
    if (t < s->warmup) {
        /* LinearLR starts from the lr the schedule starts with (OneCycleLR
         * sets its own initial lr before SequentialLR resets to it). */
        double start = main_lr(s, base_lr, 0, total - s->warmup);
        return start * (s->warmup_start + (1 - s->warmup_start) * (double)t / (double)s->warmup);
    }
    return main_lr(s, base_lr, t - s->warmup, total - s->warmup);
}

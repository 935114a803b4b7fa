/* sema_train.c - the train block: loss, optimizer, batch, epochs, metrics,
 * seed, and what a Keras or PyTorch user expects beside them (schedule,
 * warmup, validation_split, early_stopping, monitor, augment).  The
 * generated code and the runtime do the work; here each value is read
 * and checked where it is written. */
#include "sema_train.h"

#include <string.h>

static const char *const loss_words[] = {"mse", "mae", "binary_crossentropy", "crossentropy", NULL};
static const char *const metric_words[] = {"accuracy", "mae", "rmse", NULL};
static const char *const sgd_args[] = {"lr", "momentum", "nesterov", "weight_decay", NULL};
static const char *const adam_args[] = {"lr", "beta1", "beta2", "epsilon", "weight_decay", NULL};
static const char *const no_names[] = {NULL};
static const char *const per_words[] = {"epoch", "step", NULL};
/* monitor: the loss or a metric, on the training data or the validation data */
static const char *const monitor_words[] = {
    "loss", "accuracy", "mae", "rmse", "val_loss", "val_accuracy", "val_mae", "val_rmse", NULL};

static const double zero = 0, one = 1;

static ArgReader reader(const TrainReader *t, const char *what, Loc loc)
{
    return (ArgReader){.diag = t->diag,
                       .ast = t->ast,
                       .arena = t->arena,
                       .consts = t->consts,
                       .what = what,
                       .loc = loc};
}

/* Bind a `name(args)` or bare `name` value to the argument table. */
static bool bind_call(ArgReader *r, const Expr *node, const char *const *positional)
{
    ArgList none = {0};
    return args_bind(r, node->name, node->kind == EXPR_CALL ? &node->args : &none, positional,
                     no_names);
}

static bool is_named(const Expr *node)
{
    return node->kind == EXPR_NAME || node->kind == EXPR_CALL;
}

/* The index of a `name` or `name(...)` value in names (NULL-terminated),
 * or -1. */
static int name_index(const Expr *node, const char *const *names)
{
    for (int k = 0; is_named(node) && names[k]; k++)
        if (strcmp(node->name, names[k]) == 0)
            return k;
    return -1;
}

/* A list's items, or a single value as a list of one. */
static int list_items(const Expr *const *node, const Expr *const **items)
{
    if ((*node)->kind == EXPR_LIST) {
        *items = (const Expr *const *)(*node)->items.items;
        return (*node)->items.count;
    }
    *items = node;
    return 1;
}

/* ---- the optimizer ----------------------------------------------------------
 * sgd and adam as the contract says; adamw is PyTorch's AdamW (its
 * epsilon inside the bias correction, its defaults). */

static bool read_optimizer(TrainReader *t, const Expr *node, TrainConfig *c)
{
    int index = name_index(node, optimizer_names);
    if (index < 0) {
        diag_error(t->diag, node->loc, "optimizer must be sgd(...), adam(...) or adamw(...)");
        return false;
    }
    OptimizerKind kind = (OptimizerKind)index;
    bool sgd = kind == OPT_SGD;
    ArgReader r = reader(t, node->name, node->loc);
    if (!bind_call(&r, node, sgd ? sgd_args : adam_args))
        return false;
    TrainConfig o = *c;
    o.optimizer = kind;
    o.lr = sgd ? 0.01 : 0.001;
    o.momentum = 0;
    o.nesterov = false;
    o.weight_decay = kind == OPT_ADAMW ? 0.01 : 0;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.epsilon = kind == OPT_ADAMW ? 1e-8 : 1e-7;
    bool ok = args_number(&r, "lr", false, &o.lr, &zero, NULL, true, false);
    if (sgd)
        ok = ok && args_number(&r, "momentum", false, &o.momentum, &zero, NULL, false, false) &&
             args_boolean(&r, "nesterov", &o.nesterov);
    else
        ok = ok && args_number(&r, "beta1", false, &o.beta1, &zero, &one, false, true) &&
             args_number(&r, "beta2", false, &o.beta2, &zero, &one, false, true) &&
             args_number(&r, "epsilon", false, &o.epsilon, &zero, NULL, false, false);
    ok = ok && args_number(&r, "weight_decay", false, &o.weight_decay, &zero, NULL, false, false);
    if (!ok)
        return false;
    if (o.nesterov && o.momentum == 0) {
        diag_error(t->diag, node->loc, "nesterov needs a momentum > 0");
        return false;
    }
    *c = o;
    return true;
}

static bool read_metrics(TrainReader *t, const Arg *entry, TrainConfig *c)
{
    const Expr *node = entry->value;
    const Expr *const *items;
    int n = list_items(&node, &items);
    Metric metrics[3];
    int count = 0;
    for (int i = 0; i < n; i++) {
        Arg single = {items[i]->loc, "metrics", (Expr *)items[i]};
        ArgReader r = {.diag = t->diag, .ast = t->ast, .what = "train", .loc = entry->loc};
        r.bound[0] = (BoundArg){"metrics", &single};
        r.nbound = 1;
        int index = 0;
        if (!args_word(&r, "metrics", metric_words, &index))
            return false;
        for (int k = 0; k < count; k++)
            if (metrics[k] == (Metric)index) {
                diag_error(t->diag, node->loc, "a metric is listed twice");
                return false;
            }
        if (count == 3)
            unreachable();
        metrics[count++] = (Metric)index;
    }
    memcpy(c->metrics, metrics, sizeof metrics);
    c->nmetrics = count;
    t->metrics_loc = node->loc;
    return true;
}

/* ---- the learning rate over the run ----------------------------------------
 * PyTorch's schedulers: step_decay (StepLR), exponential (ExponentialLR),
 * cosine (CosineAnnealingLR), one_cycle (OneCycleLR), and a linear warmup
 * (LinearLR) before any of them (SequentialLR). */

static const char *const step_decay_args[] = {"every", "gamma", "per", NULL};
static const char *const exponential_args[] = {"gamma", "per", NULL};
static const char *const cosine_args[] = {"length", "min_lr", "per", NULL};
static const char *const one_cycle_args[] = {"max_lr", "pct_start", "div_factor",
                                             "final_div_factor", NULL};
static const char *const warmup_args[] = {"length", "start_factor", "per", NULL};

static bool read_per(ArgReader *r, bool *per_step)
{
    int index = *per_step ? 1 : 0;
    if (!args_word(r, "per", per_words, &index))
        return false;
    *per_step = index == 1;
    return true;
}

static bool read_schedule(TrainReader *t, const Expr *node, Schedule *out)
{
    static const char *const *const tables[] = {step_decay_args, exponential_args, cosine_args,
                                                one_cycle_args};
    int kind = name_index(node, schedule_names + 1); /* after "none" */
    if (kind < 0) {
        diag_error(t->diag, node->loc,
                   "schedule must be step_decay(...), exponential(...), cosine(...) or "
                   "one_cycle(...)");
        return false;
    }
    ArgReader r = reader(t, node->name, node->loc);
    if (!bind_call(&r, node, tables[kind]))
        return false;
    Schedule s = *out;
    s.kind = (ScheduleKind)(SCHEDULE_STEP_DECAY + kind);
    s.per_step = s.kind == SCHEDULE_ONE_CYCLE;
    s.gamma = 0.1;
    s.pct_start = 0.3;
    s.div_factor = 25;
    s.final_div = 1e4;
    bool ok = true;
    switch (s.kind) {
    case SCHEDULE_STEP_DECAY:
        ok = args_integer(&r, "every", true, 1, &s.every) &&
             args_number(&r, "gamma", false, &s.gamma, &zero, NULL, true, false) &&
             read_per(&r, &s.per_step);
        break;
    case SCHEDULE_EXPONENTIAL:
        ok = args_number(&r, "gamma", true, &s.gamma, &zero, NULL, true, false) &&
             read_per(&r, &s.per_step);
        break;
    case SCHEDULE_COSINE:
        ok = args_integer(&r, "length", false, 1, &s.length) &&
             args_number(&r, "min_lr", false, &s.min_lr, &zero, NULL, false, false) &&
             read_per(&r, &s.per_step);
        break;
    default:
        ok = args_number(&r, "max_lr", false, &s.max_lr, &zero, NULL, true, false) &&
             args_number(&r, "pct_start", false, &s.pct_start, &zero, &one, true, true) &&
             args_number(&r, "div_factor", false, &s.div_factor, &zero, NULL, true, false) &&
             args_number(&r, "final_div_factor", false, &s.final_div, &zero, NULL, true, false);
        break;
    }
    if (!ok)
        return false;
    s.warmup = out->warmup;
    s.warmup_start = out->warmup_start;
    *out = s;
    return true;
}

/* warmup = N (epochs) or linear(length, start_factor=1/3, per=epoch). */
static bool read_warmup(TrainReader *t, const Arg *entry, Schedule *s)
{
    const Expr *node = entry->value;
    double start = 1.0 / 3;
    int64_t length = 0;
    ArgReader r = reader(t, "linear", node->loc);
    if (is_named(node) && strcmp(node->name, "linear") == 0) {
        if (!bind_call(&r, node, warmup_args) || !args_integer(&r, "length", true, 1, &length) ||
            !args_number(&r, "start_factor", false, &start, &zero, &one, true, false) ||
            !read_per(&r, &t->warmup_per_step))
            return false;
        t->warmup_per_given = args_given(&r, "per");
    } else {
        ArgReader e = reader(t, "train", entry->loc);
        e.bound[0] = (BoundArg){"warmup", entry};
        e.nbound = 1;
        if (!args_integer(&e, "warmup", true, 1, &length))
            return false;
    }
    s->warmup = length;
    s->warmup_start = start;
    return true;
}

/* ---- augmentation ----------------------------------------------------------
 * A list of transforms applied on the fly to each training sample, in
 * the order written: shift(pixels), crop(padding), flip for images and
 * clips; noise(stddev), scale(range) for any input. */

static bool read_augment(TrainReader *t, const Arg *entry, TrainConfig *c)
{
    static const char *const amount_names[] = {"pixels", "padding", NULL, "stddev", "range"};
    const Expr *node = entry->value;
    const Expr *const *items;
    int n = list_items(&node, &items);
    if (n > AUGMENT_MAX) {
        diag_error(t->diag, node->loc, "at most %d transforms", AUGMENT_MAX);
        return false;
    }
    t->augment_loc = node->loc;
    for (int i = 0; i < n; i++) {
        const Expr *item = items[i];
        int kind = name_index(item, augment_names);
        if (kind < 0) {
            diag_error(t->diag, item->loc,
                       "a transform is shift(pixels), crop(padding), flip, noise(stddev) or "
                       "scale(range)");
            return false;
        }
        const char *names[2] = {amount_names[kind], NULL};
        ArgReader r = reader(t, item->name, item->loc);
        if (!bind_call(&r, item, kind == AUGMENT_FLIP ? no_names : names))
            return false;
        Augment a = {(AugmentKind)kind, 0};
        if (kind == AUGMENT_SHIFT || kind == AUGMENT_CROP) {
            int64_t pixels = 0;
            if (!args_integer(&r, names[0], true, 1, &pixels))
                return false;
            a.amount = (double)pixels;
        } else if (kind == AUGMENT_NOISE) {
            if (!args_number(&r, names[0], true, &a.amount, &zero, NULL, true, false))
                return false;
        } else if (kind == AUGMENT_SCALE) {
            if (!args_number(&r, names[0], true, &a.amount, &zero, &one, true, true))
                return false;
        }
        c->augment[i] = a;
    }
    c->naugment = n;
    return true;
}

/* ---- the block ------------------------------------------------------------ */

void train_defaults(TrainConfig *c)
{
    memset(c, 0, sizeof *c);
    c->loss = LOSS_DEFAULT;
    c->optimizer = OPT_ADAM;
    c->lr = 0.001;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->epsilon = 1e-7;
    c->batch = 32;
    c->epochs = 10;
}

void train_read_entry(TrainReader *t, const Arg *entry, TrainConfig *c)
{
    ArgReader r = reader(t, "train", entry->loc);
    r.bound[0] = (BoundArg){entry->name, entry};
    r.nbound = 1;
    const char *key = entry->name;
    if (strcmp(key, "loss") == 0) {
        int index = 0;
        if (args_word(&r, "loss", loss_words, &index))
            c->loss = t->explicit_loss = (Loss)(LOSS_MSE + index);
    } else if (strcmp(key, "optimizer") == 0) {
        read_optimizer(t, entry->value, c);
    } else if (strcmp(key, "batch") == 0) {
        args_integer(&r, "batch", true, 1, &c->batch);
    } else if (strcmp(key, "epochs") == 0) {
        args_integer(&r, "epochs", true, 0, &c->epochs);
    } else if (strcmp(key, "seed") == 0) {
        args_integer(&r, "seed", true, 0, &c->seed);
    } else if (strcmp(key, "metrics") == 0) {
        read_metrics(t, entry, c);
    } else if (strcmp(key, "schedule") == 0) {
        read_schedule(t, entry->value, &c->schedule);
    } else if (strcmp(key, "warmup") == 0) {
        read_warmup(t, entry, &c->schedule);
        t->warmup_loc = entry->loc;
    } else if (strcmp(key, "validation_split") == 0) {
        args_number(&r, "validation_split", true, &c->validation_split, &zero, &one, true, true);
    } else if (strcmp(key, "early_stopping") == 0) {
        args_integer(&r, "early_stopping", true, 1, &c->patience);
    } else if (strcmp(key, "monitor") == 0) {
        int index = -1;
        if (args_word(&r, "monitor", monitor_words, &index)) {
            t->monitor_word = index;
            t->monitor_loc = entry->value->loc;
        }
    } else if (strcmp(key, "augment") == 0) {
        read_augment(t, entry, c);
    } else if (strcmp(key, "quantize") == 0) {
        static const char *const quantize_words[] = {"int8", NULL};
        int index = 0;
        if (args_word(&r, "quantize", quantize_words, &index)) {
            c->quantize = true;
            c->quantize_loc = entry->loc;
        }
    } else {
        diag_error(
            t->diag, entry->loc,
            "unknown train setting '%s' (loss, optimizer, batch, epochs, metrics, seed, "
            "schedule, warmup, validation_split, early_stopping, monitor, augment, quantize)",
            key);
    }
}

/* The monitored value as the runtime numbers it: 0 the loss, 1 + k the
 * train block's k-th metric, plus MONITOR_VAL on the validation data. */
static void check_monitor(TrainReader *t, TrainConfig *c)
{
    c->monitor = MONITOR_VAL; /* val_loss, Keras' default */
    if (t->monitor_word < 0)
        return;
    c->monitor_given = true;
    int word = t->monitor_word % 4, val = t->monitor_word >= 4;
    if (word == 0) {
        c->monitor = val ? MONITOR_VAL : 0;
        return;
    }
    for (int k = 0; k < c->nmetrics; k++)
        if ((int)c->metrics[k] == word - 1) {
            c->monitor = 1 + k + (val ? MONITOR_VAL : 0);
            return;
        }
    diag_error(t->diag, t->monitor_loc,
               "monitor '%s' is not computed: it must be the loss or one of the train block's "
               "metrics",
               monitor_words[t->monitor_word]);
}

static void check_schedule(TrainReader *t, TrainConfig *c)
{
    Schedule *s = &c->schedule;
    if (s->warmup == 0)
        return;
    if (s->kind == SCHEDULE_NONE) {
        s->per_step = t->warmup_per_step;
        return;
    }
    bool schedule_per_step = s->per_step;
    if (t->warmup_per_given && t->warmup_per_step != schedule_per_step)
        diag_error(t->diag, t->warmup_loc,
                   "the warmup counts %ss and the schedule %ss: give both the same 'per'",
                   t->warmup_per_step ? "step" : "epoch", schedule_per_step ? "step" : "epoch");
}

/* shift, crop and flip move pixels: they need [H, W, C] or [D, H, W, C]. */
static void check_augment(TrainReader *t, const TrainConfig *c, const Shape *input)
{
    for (int i = 0; i < c->naugment; i++) {
        AugmentKind k = c->augment[i].kind;
        if ((k == AUGMENT_SHIFT || k == AUGMENT_CROP || k == AUGMENT_FLIP) && input->rank != 3 &&
            input->rank != 4) {
            diag_error(t->diag, t->augment_loc,
                       "shift, crop and flip need an image [H, W, C] or a clip [D, H, W, C] "
                       "input; the input has rank %d (write input [H, W, 1] for a one-channel "
                       "image)",
                       input->rank);
            return;
        }
        if (k == AUGMENT_SHIFT || k == AUGMENT_CROP) {
            int64_t h = input->dim[input->rank - 3], w = input->dim[input->rank - 2];
            if (c->augment[i].amount >= (double)h || c->augment[i].amount >= (double)w) {
                diag_error(t->diag, t->augment_loc,
                           "a shift of %.0f pixels leaves nothing of a %lld x %lld image",
                           c->augment[i].amount, (long long)h, (long long)w);
                return;
            }
        }
    }
}

void train_check(TrainReader *t, TrainConfig *c, const Shape *input)
{
    if (t->explicit_loss == LOSS_CROSSENTROPY)
        for (int i = 0; i < c->nmetrics; i++)
            if (c->metrics[i] == METRIC_MAE || c->metrics[i] == METRIC_RMSE) {
                diag_error(t->diag, t->metrics_loc,
                           "mae and rmse need targets of the output size; "
                           "crossentropy targets are class indices");
                break;
            }
    check_monitor(t, c);
    check_schedule(t, c);
    check_augment(t, c, input);
}

/* lower_qat.c - quantization-aware training (quantize = int8 in the train
 * block; docs/int8.md): PyTorch's FakeQuantize, as loop IR.
 *
 * Each node with a scale of its own in the int8 plan (quant.c) has an
 * observer: a moving average of its batches' minimum and maximum
 * (MovingAverageMinMaxObserver, averaging constant 0.01; the first batch
 * sets them), kept in the parameter "NAME.quantize" [min, max, seen].
 * In a training step the node's values are observed, then the layers
 * after it read them fake-quantized with the scale and zero point of the
 * updated range, and the gradient passes back only where the value was
 * inside the int8 range (the straight-through estimator).  Each linear
 * map's kernel is fake-quantized per output channel, symmetric, with the
 * scale of its largest magnitude, as the int8 plan quantizes it; the
 * kernel itself is what the optimizer updates.  Evaluation stays in
 * float.  The arithmetic is PyTorch's, in float: x * (1 / scale), rounded
 * half to even, clamped, times scale. */
#include "lower.h"

#include <float.h>
#include <math.h>

#include "layers/layers.h"

/* Rounding to the nearest integer, halves to even, of |x| < 2^22: the
 * float addition rounds, and nothing fuses through the clamp before it. */
#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */
/* MovingAverageMinMaxObserver's default: how far each batch moves the range */
#define AVERAGING_CONSTANT 0.01

enum { QMIN = -128, QMAX = 127, QWEIGHT = 127 };
enum { OBS_MIN, OBS_MAX, OBS_SCALE, OBS_INVERSE, OBS_ZERO, OBS_FLOATS };

static const char *node_name(const Model *m, int node)
{
    return node ? m->layers[node - 1]->name : "input";
}

static IrExpr *num(IrProgram *p, double v)
{
    return ir_num(p, (float)v);
}

static IrExpr *op(IrProgram *p, IrExprKind kind, IrExpr *a, IrExpr *b)
{
    return ir_op(p, kind, a, b);
}

static IrExpr *round_even(IrProgram *p, IrExpr *x)
{
    return op(p, IRE_SUB, op(p, IRE_ADD, x, num(p, ROUND_MAGIC)), num(p, ROUND_MAGIC));
}

/* A scalar declared in b: its value, then clamped to [lo, hi]. */
static int clamped(IrProgram *p, IrFunc *f, IrBlock *b, const char *name, IrExpr *value, IrExpr *lo,
                   IrExpr *hi)
{
    int s = ir_scalar(p, f, name);
    ir_set(p, b, s, SCALAR_DECLARE, value);
    ir_set(p, b, s, SCALAR_SET, op(p, IRE_MAX, ir_ref(p, s), lo));
    ir_set(p, b, s, SCALAR_SET, op(p, IRE_MIN, ir_ref(p, s), hi));
    return s;
}

static IrFunc *qat_func(IrProgram *p, const Model *m, int node, const char *what, IrPhase phase,
                        bool per_sample)
{
    const char *name = node_name(m, node);
    const char *title = node ? lower_layer_comment(&p->arena, m, m->layers[node - 1], what)
                             : arena_printf(&p->arena, "input (line %d), %s", m->input_line, what);
    return ir_train_func(p, arena_printf(&p->arena, "train_%s_%s", name, what),
                         arena_printf(&p->arena, "%s; quantization-aware training", title), phase,
                         per_sample);
}

/* The node's values as its producer wrote them, one sample's. */
static int raw_view(IrProgram *p, IrFunc *f, const Model *m, int node)
{
    int64_t size = shape_size(model_node_shape(m, node));
    int owner = m->tp.owner[node];
    if (owner == 0)
        return ir_sample_view(p, f, "x", VIEW_INPUT, 0, size, false, size);
    return ir_sample_view(p, f, "x", VIEW_TRAIN, m->tp.act[owner], size, false, size);
}

static int observer_view(IrProgram *p, IrFunc *f, const Model *m, int node, bool written)
{
    return ir_view(p, f, "observer", VIEW_TRAIN, m->tp.observe[node], OBS_FLOATS, written);
}

static IrExpr *obs(IrProgram *p, int view, int which)
{
    return ir_load(p, view, ix_const(which));
}

/* Each sample's minimum and maximum, samples in parallel: OBSERVE_LANES
 * running minima and maxima side by side (a vector's worth, which
 * compilers keep in registers; a min or max reduction of one scalar they
 * do not vectorize without -ffinite-math-only), then across the lanes and
 * the elements left over.  The batch's come from these in qparams. */
enum { OBSERVE_LANES = 16 };

static void lower_observe(IrProgram *p, const Model *m, int node)
{
    IrFunc *f = qat_func(p, m, node, "observe", PHASE_FORWARD_TRAIN, true);
    int64_t size = shape_size(model_node_shape(m, node));
    int x = raw_view(p, f, m, node);
    int out =
        ir_sample_view(p, f, "minmax", VIEW_TRAIN, m->tp.observe[node] + OBS_FLOATS, 2, true, 2);
    int lo = ir_scalar(p, f, "lo"), hi = ir_scalar(p, f, "hi");
    int64_t lanes = size >= OBSERVE_LANES ? OBSERVE_LANES : 0, rows = lanes ? size / lanes : 0;
    int j = ir_var(p, f, "j"), i = ir_var(p, f, "i");
    if (lanes) {
        int part = ir_view(p, f, "part", VIEW_LOCAL, 0, 2 * lanes, true);
        IrIndex lo_at = ix_var(j, 1), hi_at = ix_add_var(ix_const(lanes), j, 1);
        IrBlock *b = &ir_for(p, &f->body, j, 0, lanes)->body;
        ir_store(p, b, part, lo_at, ir_load(p, x, ix_var(j, 1)), false);
        ir_store(p, b, part, hi_at, ir_load(p, x, ix_var(j, 1)), false);
        b = &ir_for(p, &ir_for(p, &f->body, i, 1, rows)->body, j, 0, lanes)->body;
        IrIndex at = ix_add_var(ix_var(i, lanes), j, 1);
        ir_store(p, b, part, lo_at, op(p, IRE_MIN, ir_load(p, part, lo_at), ir_load(p, x, at)),
                 false);
        ir_store(p, b, part, hi_at, op(p, IRE_MAX, ir_load(p, part, hi_at), ir_load(p, x, at)),
                 false);
        ir_set(p, &f->body, lo, SCALAR_DECLARE, ir_load(p, part, ix_const(0)));
        ir_set(p, &f->body, hi, SCALAR_DECLARE, ir_load(p, part, ix_const(lanes)));
        b = &ir_for(p, &f->body, j, 1, lanes)->body;
        ir_set(p, b, lo, SCALAR_SET, op(p, IRE_MIN, ir_ref(p, lo), ir_load(p, part, lo_at)));
        ir_set(p, b, hi, SCALAR_SET, op(p, IRE_MAX, ir_ref(p, hi), ir_load(p, part, hi_at)));
    } else {
        ir_set(p, &f->body, lo, SCALAR_DECLARE, ir_load(p, x, ix_const(0)));
        ir_set(p, &f->body, hi, SCALAR_DECLARE, ir_load(p, x, ix_const(0)));
    }
    int64_t first = lanes ? rows * lanes : 1;
    if (first < size) {
        IrBlock *b = &ir_for(p, &f->body, i, first, size)->body;
        ir_set(p, b, lo, SCALAR_SET, op(p, IRE_MIN, ir_ref(p, lo), ir_load(p, x, ix_var(i, 1))));
        ir_set(p, b, hi, SCALAR_SET, op(p, IRE_MAX, ir_ref(p, hi), ir_load(p, x, ix_var(i, 1))));
    }
    ir_store(p, &f->body, out, ix_const(0), ir_ref(p, lo), false);
    ir_store(p, &f->body, out, ix_const(1), ir_ref(p, hi), false);
}

/* The moving range, then PyTorch's _calculate_qparams for int8 (quint8's
 * steps, [-128, 127]): scale = (max(hi, 0) - min(lo, 0)) / 255, at least
 * FLT_EPSILON; zero = -128 - round(min(lo, 0) / scale), clamped. */
static void lower_qparams(IrProgram *p, const Model *m, int node)
{
    IrFunc *f = qat_func(p, m, node, "qparams", PHASE_FORWARD_TRAIN, false);
    int o = ir_view(p, f, "observer", VIEW_TRAIN, m->tp.observe[node], OBS_FLOATS + 2 * m->tp.batch,
                    true);
    int state = ir_view(p, f, "range", VIEW_PARAMS, m->qat.observer[node]->offset, 3, true);
    IrBlock *b = &f->body;
    /* the batch's minimum and maximum, from its samples' */
    int s = ir_var(p, f, "s");
    ir_store(p, b, o, ix_const(OBS_MIN), num(p, INFINITY), false);
    ir_store(p, b, o, ix_const(OBS_MAX), num(p, -INFINITY), false);
    IrBlock *each = &ir_for_batch(p, b, s)->body;
    IrIndex sample_min = ix_add_var(ix_const(OBS_FLOATS), s, 2);
    IrIndex sample_max = ix_add_var(ix_const(OBS_FLOATS + 1), s, 2);
    ir_store(p, each, o, ix_const(OBS_MIN),
             op(p, IRE_MIN, obs(p, o, OBS_MIN), ir_load(p, o, sample_min)), false);
    ir_store(p, each, o, ix_const(OBS_MAX),
             op(p, IRE_MAX, obs(p, o, OBS_MAX), ir_load(p, o, sample_max)), false);
    int ends[2] = {OBS_MIN, OBS_MAX};
    for (int k = 0; k < 2; k++) {
        IrExpr *old = ir_load(p, state, ix_const(k)), *now = obs(p, o, ends[k]);
        IrExpr *moved = op(p, IRE_ADD, old,
                           op(p, IRE_MUL, num(p, AVERAGING_CONSTANT), op(p, IRE_SUB, now, old)));
        ir_store(p, b, state, ix_const(k),
                 ir_select_pos(p, ir_load(p, state, ix_const(2)), moved, obs(p, o, ends[k])),
                 false);
    }
    ir_store(p, b, state, ix_const(2), num(p, 1), false);
    int lo = ir_scalar(p, f, "lo"), hi = ir_scalar(p, f, "hi"), scale = ir_scalar(p, f, "scale");
    ir_set(p, b, lo, SCALAR_DECLARE, op(p, IRE_MIN, ir_load(p, state, ix_const(0)), num(p, 0)));
    ir_set(p, b, hi, SCALAR_DECLARE, op(p, IRE_MAX, ir_load(p, state, ix_const(1)), num(p, 0)));
    ir_set(p, b, scale, SCALAR_DECLARE,
           op(p, IRE_DIV, op(p, IRE_SUB, ir_ref(p, hi), ir_ref(p, lo)), num(p, QMAX - QMIN)));
    ir_set(p, b, scale, SCALAR_SET, op(p, IRE_MAX, ir_ref(p, scale), num(p, FLT_EPSILON)));
    ir_store(p, b, o, ix_const(OBS_SCALE), ir_ref(p, scale), false);
    ir_store(p, b, o, ix_const(OBS_INVERSE), op(p, IRE_DIV, num(p, 1), ir_ref(p, scale)), false);
    int zero = clamped(p, f, b, "zero",
                       op(p, IRE_SUB, num(p, QMIN),
                          round_even(p, op(p, IRE_DIV, ir_ref(p, lo), ir_ref(p, scale)))),
                       num(p, QMIN), num(p, QMAX));
    ir_store(p, b, o, ix_const(OBS_ZERO), ir_ref(p, zero), false);
}

/* Bounds of one element's steps, from the zero point: QMIN - zero + add
 * and QMAX - zero + add. */
typedef struct {
    int lo, hi, lo1, hi1;
} StepBounds;

static StepBounds step_bounds(IrProgram *p, IrFunc *f, IrBlock *b, IrExpr *zero, int qmin, int qmax)
{
    StepBounds k;
    int *at[4] = {&k.lo, &k.hi, &k.lo1, &k.hi1};
    static const char *const names[4] = {"lo", "hi", "below", "above"};
    int ends[4] = {qmin, qmax, qmin - 1, qmax + 1};
    for (int j = 0; j < 4; j++) {
        *at[j] = ir_scalar(p, f, names[j]);
        ir_set(p, b, *at[j], SCALAR_DECLARE, op(p, IRE_SUB, num(p, ends[j]), zero));
    }
    return k;
}

/* round(x / scale) as PyTorch's kernel takes it, x * (1 / scale), held
 * one step past each end of [QMIN - zero, QMAX - zero] first (inside
 * stays inside, outside outside) to keep the rounding exact. */
static int steps_of(IrProgram *p, IrFunc *f, IrBlock *b, IrExpr *x, IrExpr *inverse,
                    const StepBounds *k)
{
    int t = clamped(p, f, b, "t", op(p, IRE_MUL, x, inverse), ir_ref(p, k->lo1), ir_ref(p, k->hi1));
    int r = ir_scalar(p, f, "r");
    ir_set(p, b, r, SCALAR_DECLARE, round_even(p, ir_ref(p, t)));
    return r;
}

/* A per-sample function over the node's elements: its raw values x and
 * observer o, the loop's body b at element `at`, and the element's steps
 * r (its rounded x / scale) with their bounds k. */
typedef struct {
    IrFunc *f;
    int x, o, r;
    IrBlock *b;
    IrIndex at;
    StepBounds k;
} ElementPass;

static ElementPass element_pass(IrProgram *p, const Model *m, int node, const char *what,
                                IrPhase phase)
{
    ElementPass e = {.f = qat_func(p, m, node, what, phase, true)};
    e.x = raw_view(p, e.f, m, node);
    e.o = observer_view(p, e.f, m, node, false);
    e.k = step_bounds(p, e.f, &e.f->body, obs(p, e.o, OBS_ZERO), QMIN, QMAX);
    int i = ir_var(p, e.f, "i");
    e.b = &ir_for(p, &e.f->body, i, 0, shape_size(model_node_shape(m, node)))->body;
    e.at = ix_var(i, 1);
    e.r = steps_of(p, e.f, e.b, ir_load(p, e.x, e.at), obs(p, e.o, OBS_INVERSE), &e.k);
    return e;
}

static void lower_fake_quant(IrProgram *p, const Model *m, int node)
{
    ElementPass e = element_pass(p, m, node, "fake_quant", PHASE_FORWARD_TRAIN);
    int64_t size = shape_size(model_node_shape(m, node));
    int y = ir_sample_view(p, e.f, "y", VIEW_TRAIN, m->tp.fq[node], size, true, size);
    int q = clamped(p, e.f, e.b, "q", ir_ref(p, e.r), ir_ref(p, e.k.lo), ir_ref(p, e.k.hi));
    ir_store(p, e.b, y, e.at, op(p, IRE_MUL, ir_ref(p, q), obs(p, e.o, OBS_SCALE)), false);
}

void lower_qat_forward(IrProgram *p, const Model *m, int node)
{
    if (!m->qat.observer || !m->qat.observer[node])
        return;
    lower_observe(p, m, node);
    lower_qparams(p, m, node);
    if (m->qat.fake[node])
        lower_fake_quant(p, m, node);
}

/* The straight-through estimator: the gradient where the value was inside
 * the int8 range, 0 where fake quantization clamped it. */
void lower_qat_backward(IrProgram *p, const Model *m, int node)
{
    if (!m->qat.observer || !m->qat.fake[node] || m->tp.grad[node] < 0)
        return;
    ElementPass e = element_pass(p, m, node, "fake_quant_backward", PHASE_BACKWARD);
    int64_t size = shape_size(model_node_shape(m, node));
    int g = ir_sample_view(p, e.f, "dy", VIEW_TRAIN, m->tp.grad[node], size, true, size);
    /* lo <= r <= hi, of whole numbers */
    IrExpr *above_lo =
        op(p, IRE_ADD, op(p, IRE_SUB, ir_ref(p, e.r), ir_ref(p, e.k.lo)), num(p, 0.5));
    IrExpr *below_hi =
        op(p, IRE_ADD, op(p, IRE_SUB, ir_ref(p, e.k.hi), ir_ref(p, e.r)), num(p, 0.5));
    IrExpr *inside = ir_select_pos(
        p, above_lo, ir_select_pos(p, below_hi, ir_load(p, g, e.at), num(p, 0)), num(p, 0));
    ir_store(p, e.b, g, e.at, inside, false);
}

/* Layer i's kernel, fake-quantized per output channel (the last axis):
 * scale = max |w| / 127 (at least FLT_EPSILON), values in [-127, 127]
 * steps.  The channel scales are kept after the kernel. */
void lower_qat_kernel(IrProgram *p, const Model *m, int i)
{
    if (!m->qat.observer || !m->qat.kernel[i])
        return;
    const Layer *l = m->layers[i];
    IrFunc *f = qat_func(p, m, i + 1, "fake_quant_kernel", PHASE_FORWARD_TRAIN, false);
    int64_t count = shape_size(&l->params[0].shape), cout = l->out.dim[l->out.rank - 1];
    int64_t rows = count / cout;
    int w = ir_view(p, f, "w", VIEW_PARAMS, l->params[0].offset, count, false);
    int wq = ir_view(p, f, "wq", VIEW_TRAIN, m->tp.wq[i + 1], count + 2 * cout, true);
    int co = ir_var(p, f, "co"), r = ir_var(p, f, "r");
    IrIndex scale_at = ix_add_var(ix_const(count), co, 1);
    IrIndex inverse_at = ix_add_var(ix_const(count + cout), co, 1);
    IrIndex at = ix_add_var(ix_var(r, cout), co, 1);

    IrStmt *zero = ir_for(p, &f->body, co, 0, cout);
    ir_store(p, &zero->body, wq, scale_at, num(p, 0), false);
    IrBlock *b = &ir_for(p, &ir_for(p, &f->body, r, 0, rows)->body, co, 0, cout)->body;
    IrExpr *v = ir_load(p, w, at);
    ir_store(p, b, wq, scale_at,
             op(p, IRE_MAX, ir_load(p, wq, scale_at),
                op(p, IRE_MAX, v, op(p, IRE_NEG, ir_load(p, w, at), NULL))),
             false);
    IrStmt *scales = ir_for(p, &f->body, co, 0, cout);
    int s = ir_scalar(p, f, "scale");
    ir_set(p, &scales->body, s, SCALAR_DECLARE,
           op(p, IRE_MAX, op(p, IRE_DIV, ir_load(p, wq, scale_at), num(p, QWEIGHT)),
              num(p, FLT_EPSILON)));
    ir_store(p, &scales->body, wq, scale_at, ir_ref(p, s), false);
    ir_store(p, &scales->body, wq, inverse_at, op(p, IRE_DIV, num(p, 1), ir_ref(p, s)), false);
    StepBounds k = step_bounds(p, f, &f->body, num(p, 0), -QWEIGHT, QWEIGHT);
    b = &ir_for(p, &ir_for(p, &f->body, r, 0, rows)->body, co, 0, cout)->body;
    int steps = steps_of(p, f, b, ir_load(p, w, at), ir_load(p, wq, inverse_at), &k);
    int q = clamped(p, f, b, "q", ir_ref(p, steps), ir_ref(p, k.lo), ir_ref(p, k.hi));
    ir_store(p, b, wq, at, op(p, IRE_MUL, ir_ref(p, q), ir_load(p, wq, scale_at)), false);
}

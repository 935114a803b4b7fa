/* dense.c - dense and flatten.
 *
 * dense's kernel is [in, units]; a rank > 1 input is flattened first,
 * row-major over the channels-last shape (Keras' Flatten on NHWC data).
 */
#include "layers.h"

static const char *const dense_positional[] = {"units", NULL};
static const char *const dense_named[] = {"activation", "bias", "weights",
                                          "trainable",  "init", NULL};

static bool dense_configure(Layer *l, ArgReader *r)
{
    return args_integer(r, "units", true, 1, &l->units) && layer_configure_linear_map(l, r);
}

static bool dense_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    Shape kshape = {.rank = 2, .dim = {shape_size(&ins[0]), l->units}};
    l->out = (Shape){.rank = 1, .dim = {l->units}};
    return layer_add_kernel_and_bias(l, &kshape, l->units, ctx);
}

static __int128 dense_flops(const Layer *l, const Shape *in)
{
    return 2 * (__int128)shape_size(in) * l->units;
}

/* flatten only renames its input; it gets code (a copy, lower_copy) only
 * as the model's output when its input is the model's input. */
static bool flatten_infer(Layer *l, const Shape *ins, InferCtx *ctx)
{
    (void)ctx;
    l->out = (Shape){.rank = 1, .dim = {shape_size(&ins[0])}};
    return true;
}

/* ---- forward lowering -------------------------------------------------------
 * y = act(b + x W) with W [in, units] row-major: for each input, a whole
 * row of W is added into the accumulators, units innermost (contiguous,
 * a constant trip count), so W streams through once.  Units that fill
 * whole vectors are accumulated in vector registers, up to 8 vectors at a
 * time, over all the inputs (gcc -O2 left the plain loop over lenet's 10
 * units scalar: a quarter of its time); the rest in a scalar loop. */

/* A layer with few accumulators (dense_chains) sums its inputs in this
 * many interleaved partial sums (input i into sum i % DENSE_CHAINS), added
 * together at the end: one sum's adds wait on each other (4 cycles each),
 * and lenet's 400 inputs into 1 vector and 2 scalars spent as long as
 * its convolutions' 10x the work in waiting. */
enum { DENSE_CHAINS = 4 };

/* How many partial sums a dense layer with `accumulators` registers adds
 * its inputs into: DENSE_CHAINS when it has few, else 1.  Also 1 for a
 * layer with a block function (which, with predict, must add in input
 * order), and for one that could be a small model's: the C's inlined
 * version of those sums in input order (dense_lower_units), and the
 * LLVM backend's objects, which have no such version, must add as it. */
static int dense_chains(const LowerCtx *c, int64_t in, int accumulators)
{
    bool few = accumulators * DENSE_CHAINS <= 12 && in >= 4 * DENSE_CHAINS;
    bool large = 2 * in * c->l->units > MODEL_SMALL_FLOPS;
    return few && large && !layer_runs_in_blocks(c->m, c->index) ? DENSE_CHAINS : 1;
}

/* The units past the last whole vector, when few, each in a register of
 * its own over all the inputs (in memory, each add waited for the last
 * one's store: a third of lenet's call went to its 2 units past 8). */
#define DENSE_TAIL_REGISTERS 16
/* Registers of partial sums in one pass: up to 8 vectors, or the tail. */
#define DENSE_SUMS_MAX DENSE_TAIL_REGISTERS

/* Partial sums side by side, n of them from unit `first`: vectors of
 * `width` floats (a register block), or with width 0 scalars, a unit each
 * (the units past the last whole vector).  Either way the inputs go into
 * `chains` interleaved sums (dense_chains), added together at the end. */
typedef struct {
    LowerCtx *c;
    IrBlock *body;
    int64_t in, units;
    int width; /* 0: scalars */
    IrIndex first;
    int n;
} DenseSums;

/* Sum v's first unit. */
static IrIndex dense_sum_at(const DenseSums *s, int v)
{
    return ix_add(s->first, ix_const((int64_t)v * (s->width ? s->width : 1)));
}

/* Sum v, started at the bias (a view) or, with bias -1, at zero. */
static int dense_sum_declare(const DenseSums *s, int v, int bias)
{
    IrProgram *p = s->c->p;
    IrIndex at = dense_sum_at(s, v);
    if (!s->width) {
        int t = ir_scalar(p, s->c->f, "t");
        ir_set(p, s->body, t, SCALAR_DECLARE, bias >= 0 ? ir_load(p, bias, at) : ir_num(p, 0.0f));
        return t;
    }
    int a = ir_vreg(p, s->c->f, "a", s->width);
    ir_vset(p, s->body, a, SCALAR_DECLARE,
            bias >= 0 ? ir_vload(p, bias, at, s->width) : ir_vzero(p, s->width));
    return a;
}

static void dense_sum_add(const DenseSums *s, IrBlock *b, int sum, IrExpr *value)
{
    if (s->width)
        ir_vset(s->c->p, b, sum, SCALAR_ADD, value);
    else
        ir_set(s->c->p, b, sum, SCALAR_ADD, value);
}

/* x[i] * W[i][sum v's units] */
static IrExpr *dense_sum_term(const DenseSums *s, IrBlock *b, IrIndex i, int v)
{
    IrProgram *p = s->c->p;
    IrIndex at = ix_add(dense_sum_at(s, v), ix_scale(i, s->units));
    if (!s->width)
        return ir_op(p, IRE_MUL, ir_load(p, s->c->in[0], i), ir_load(p, s->c->params[0], at));
    int wv = ir_vreg(p, s->c->f, "w", s->width);
    ir_vset(p, b, wv, SCALAR_DECLARE, ir_vload(p, s->c->params[0], at, s->width));
    return ir_op(p, IRE_MUL, ir_load(p, s->c->in[0], i), ir_vref(p, wv));
}

/* The sums over all the inputs, started at BIAS (a view, or -1: zero),
 * stored into ACC. */
static void dense_lower_sums(const DenseSums *s, int bias, int acc)
{
    IrProgram *p = s->c->p;
    IrFunc *f = s->c->f;
    int chains = dense_chains(s->c, s->in, s->n);
    int a[DENSE_CHAINS][DENSE_SUMS_MAX];
    for (int k = 0; k < chains; k++)
        for (int v = 0; v < s->n; v++)
            a[k][v] = dense_sum_declare(s, v, k == 0 ? bias : -1);
    int i = ir_var(p, f, "i");
    IrBlock *rows = &ir_for(p, s->body, i, 0, s->in / chains)->body;
    for (int k = 0; k < chains; k++)
        for (int v = 0; v < s->n; v++)
            dense_sum_add(s, rows, a[k][v],
                          dense_sum_term(s, rows, ix_add(ix_var(i, chains), ix_const(k)), v));
    if (s->in % chains) {
        int j = ir_var(p, f, "i");
        IrBlock *rest = &ir_for(p, s->body, j, s->in / chains * chains, s->in)->body;
        for (int v = 0; v < s->n; v++)
            dense_sum_add(s, rest, a[0][v], dense_sum_term(s, rest, ix_var(j, 1), v));
    }
    for (int k = 1; k < chains; k++)
        for (int v = 0; v < s->n; v++)
            dense_sum_add(s, s->body, a[0][v], s->width ? ir_vref(p, a[k][v]) : ir_ref(p, a[k][v]));
    for (int v = 0; v < s->n; v++) {
        if (s->width)
            ir_vstore(p, s->body, acc, dense_sum_at(s, v), a[0][v]);
        else
            ir_store(p, s->body, acc, dense_sum_at(s, v), ir_ref(p, a[0][v]), false);
    }
}

/* One register block: CHUNK vectors of units from FIRST (a constant, or
 * a multiple of the block loop's variable). */
static void dense_lower_block(LowerCtx *c, IrBlock *body, int64_t in, int64_t units, int width,
                              IrIndex first, int chunk, int bias, int acc)
{
    DenseSums s = {c, body, in, units, width, first, chunk};
    dense_lower_sums(&s, bias, acc);
}

/* The blocks one after another; a loop over them when there are more than
 * four, so the code stays small however wide the layer. */
static void dense_lower_vectors(LowerCtx *c, int64_t in, int64_t units, int width,
                                int64_t vec_units, int bias, int acc)
{
    IrProgram *p = c->p;
    int most = (p->vector_registers - 2) / 2;
    most = most < 1 ? 1 : most > 8 ? 8 : most;
    int64_t span = (int64_t)most * width, blocks = vec_units / span, first = 0;
    if (blocks > 4) {
        int b = ir_var(p, c->f, "block");
        IrStmt *loop = ir_for(p, &c->f->body, b, 0, blocks);
        dense_lower_block(c, &loop->body, in, units, width, ix_var(b, span), most, bias, acc);
        first = blocks * span;
    }
    for (; first < vec_units; first += span) {
        int chunk = (int)((vec_units - first) / width < most ? (vec_units - first) / width : most);
        dense_lower_block(c, &c->f->body, in, units, width, ix_const(first), chunk, bias, acc);
    }
}

static void dense_lower_tail(LowerCtx *c, int64_t in, int64_t units, int64_t first, int bias,
                             int acc)
{
    DenseSums s = {c, &c->f->body, in, units, 0, ix_const(first), (int)(units - first)};
    dense_lower_sums(&s, bias, acc);
}

/* A small model's layer (IrProgram.small_model), in plain loops: unit by
 * unit, each a sum over the inputs in a register.  Inlined with the rest
 * of the model, gcc -O3 vectorises this across the units (an input
 * broadcast, a row of W), as it does onnx2c's loops; the inputs-outer
 * order of dense_lower_tail it turned into in-order reductions over the
 * inputs and their shuffles (seed42: 21 ns a call, 11 in this order).
 * The sums are the same: each adds x[i] * W[i] for i in order. */
static void dense_lower_units(LowerCtx *c, int64_t in, int64_t units, int acc)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int u = ir_var(p, f, "u");
    IrBlock *each = &ir_for(p, &f->body, u, 0, units)->body;
    int t = ir_typed_scalar(p, f, "t", c->q ? IR_I32 : IR_F32);
    ir_set(p, each, t, SCALAR_DECLARE,
           c->l->use_bias || c->q ? ir_load(p, c->params[1], ix_var(u, 1)) : ir_num(p, 0.0f));
    int i = ir_var(p, f, "i");
    IrBlock *rows = &ir_for(p, each, i, 0, in)->body;
    IrExpr *x = c->q ? lower_q_centred(c, 0, ix_var(i, 1)) : ir_load(p, c->in[0], ix_var(i, 1));
    ir_set(p, rows, t, SCALAR_ADD,
           ir_op(p, IRE_MUL, x, ir_load(p, c->params[0], ix_add_var(ix_var(i, units), u, 1))));
    /* an int8 function: each unit's sum straight to the output */
    IrExpr *sum = c->q ? lower_epilogue(c, ir_ref(p, t), ix_var(u, 1)) : ir_ref(p, t);
    ir_store(p, each, acc, ix_var(u, 1), sum, false);
}

/* y[u] = the epilogue of sum u (the activation; requantized in int8) */
static void dense_store_outputs(LowerCtx *c, int acc, int64_t units)
{
    IrProgram *p = c->p;
    int u = ir_var(p, c->f, "u");
    IrStmt *out = ir_for(p, &c->f->body, u, 0, units);
    ir_store(p, &out->body, c->out, ix_var(u, 1),
             lower_epilogue(c, ir_load(p, acc, ix_var(u, 1)), ix_var(u, 1)), false);
}

/* int8: y = requantize(b + sum over i of (x[i] - zero) * W[i][u]), the
 * inputs outer (W's rows in order) and the sums in int32 (docs/int8.md). */
/* Units beyond this many sum one at a time (a scalar each, W read down a
 * column): their int32 sums would take too much of the stack. */
enum { DENSE_Q_LOCAL_UNITS = 4096 };

/* ---- int8 vector kernels (docs/int8.md) ----------------------------------
 * W packed [inputs in groups of four][units padded to QUANT_LANES][4]:
 * four inputs are one 32-bit broadcast, dotted with four weights in each
 * int32 lane (IRE_VDOT4); the inputs past the last whole group have zero
 * weights, and read a local copy of x padded to whole groups. */
static int64_t dense_inputs(const Layer *l)
{
    return shape_size(&l->params[0].shape) / l->units;
}

/* The copy of a block's inputs is on the stack: past this many bytes a
 * layer takes the plain loops. */
enum { DENSE_Q_MAX_COPY = 1 << 20 };

static int64_t dense_packed_size_q(const Layer *l)
{
    int64_t padded = quant_padded_channels(l->units);
    if (padded > DENSE_Q_LOCAL_UNITS ||
        LOWER_BLOCK_GROUP * ((dense_inputs(l) + 3) / 4 * 4) > DENSE_Q_MAX_COPY)
        return 0;
    return (dense_inputs(l) + 3) / 4 * padded * 4;
}

static void dense_pack_q(const Layer *l, const int8_t *kernel, int8_t *packed)
{
    int64_t in = dense_inputs(l), units = l->units, padded = quant_padded_channels(units);
    for (int64_t g = 0; g < (in + 3) / 4; g++)
        for (int64_t u = 0; u < padded; u++)
            for (int64_t j = 0; j < 4; j++) {
                int64_t i = 4 * g + j;
                *packed++ = i < in && u < units ? kernel[i * units + u] : 0;
            }
}

/* x, or a copy padded to whole groups of four where its inputs are not,
 * and always in a VNNI program, whose copy holds x + 128 as unsigned
 * bytes. */
static int dense_grouped_input_q(LowerCtx *c, int64_t in)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int offset = p->dot_offset;
    if (in % 4 == 0 && !offset)
        return c->in[0];
    int64_t size = (in + 3) / 4 * 4;
    int x = ir_typed_view(p, f, "xp", VIEW_LOCAL, 0, size, true, offset ? IR_U8 : IR_I8);
    int i = ir_var(p, f, "i");
    IrExpr *v = ir_load(p, c->in[0], ix_var(i, 1));
    ir_store(p, &ir_for(p, &f->body, i, 0, in)->body, x, ix_var(i, 1),
             offset ? ir_op(p, IRE_ADD, v, ir_int(p, offset)) : v, false);
    /* the spare bytes: zero weights, but read */
    for (int64_t k = in; k < size; k++)
        ir_store(p, &f->body, x, ix_const(k), ir_int(p, 0), false);
    return x;
}

static void dense_lower_q_vectors(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t in = shape_size(c->in_shape[0]), units = c->l->units;
    int64_t padded = quant_padded_channels(units), groups = (in + 3) / 4;
    int lanes = p->vector_width;
    int64_t vectors = padded / lanes;
    int chunk = vectors % 4 == 0 ? 4 : vectors % 2 == 0 ? 2 : 1;
    int acc = lower_acc_local(c, "acc", padded), packed, bias;
    lower_epilogue_setup(c);
    lower_q_vector_views(c, &packed, &bias);
    int x = dense_grouped_input_q(c, in);
    int cv = ir_var(p, f, "cv");
    IrBlock *pass = &ir_for(p, &f->body, cv, 0, vectors / chunk)->body;
    IrIndex co = ix_var(cv, (int64_t)lanes * chunk);
    /* With fewer than four vectors of units, each sums in parts (every
     * parts-th group) that start from zero, so that the dot products are
     * not one chain of vpdpbusd latencies (lenet's 10 units: 100 in a
     * row); the bias is added last.  The parts' sum is the int32 sum of
     * the products, which the 65,536-product limit keeps in range. */
    int parts = chunk == 1 && groups >= 4 ? 4 : chunk == 2 && groups >= 2 ? 2 : 1;
    int a[4][4], w[4];
    for (int v = 0; v < chunk; v++)
        for (int j = 0; j < parts; j++) {
            a[v][j] = ir_typed_vreg(p, f, "a", lanes, IR_I32);
            ir_vset(p, pass, a[v][j], SCALAR_DECLARE,
                    parts > 1 ? ir_vzero_int(p, lanes)
                              : ir_vload(p, bias, ix_add(co, ix_const(v * lanes)), lanes));
        }
    int g = ir_var(p, f, "g");
    int64_t whole = groups / parts;
    for (int run = 0; run < 2; run++) { /* whole rounds of parts, then the groups left to part 0 */
        int64_t lo = run ? whole * parts : 0, hi = run ? groups : whole;
        if (lo == hi)
            continue;
        IrBlock *body = &ir_for(p, pass, g, run ? lo : 0, run ? hi : whole)->body;
        for (int j = 0; j < (run ? 1 : parts); j++) {
            IrIndex group = run ? ix_var(g, 1) : ix_add(ix_var(g, parts), ix_const(j));
            for (int v = 0; v < chunk; v++) {
                w[v] = ir_typed_vreg(p, f, "w", 4 * lanes, IR_I8);
                ir_vset(p, body, w[v], SCALAR_DECLARE,
                        ir_vload(p, packed,
                                 ix_add(ix_scale(ix_add(co, ix_const(v * lanes)), 4),
                                        ix_scale(group, padded * 4)),
                                 4 * lanes));
                ir_vset(p, body, a[v][j], SCALAR_SET,
                        ir_vdot4(p, ir_vref(p, a[v][j]), x, ix_scale(group, 4), w[v], lanes));
            }
        }
    }
    for (int v = 0; v < chunk; v++) {
        if (parts > 1) {
            IrExpr *sum = ir_vref(p, a[v][0]);
            for (int j = 1; j < parts; j++)
                sum = ir_op(p, IRE_ADD, sum, ir_vref(p, a[v][j]));
            int b = ir_typed_vreg(p, f, "b", lanes, IR_I32);
            ir_vset(p, pass, b, SCALAR_DECLARE,
                    ir_vload(p, bias, ix_add(co, ix_const(v * lanes)), lanes));
            ir_vset(p, pass, a[v][0], SCALAR_SET, ir_op(p, IRE_ADD, ir_vref(p, b), sum));
        }
        ir_vstore(p, pass, acc, ix_add(co, ix_const(v * lanes)), a[v][0]);
    }
    /* out: whole vectors of units requantized as vectors, the rest one by one */
    int64_t first = lower_q_vectors_out(c) ? units / lanes * lanes : 0;
    if (first > 0) {
        int uv = ir_var(p, f, "uv");
        IrStmt *each = ir_for(p, &f->body, uv, 0, units / lanes);
        int t = ir_typed_vreg(p, f, "t", lanes, IR_I32);
        ir_vset(p, &each->body, t, SCALAR_DECLARE, ir_vload(p, acc, ix_var(uv, lanes), lanes));
        lower_q_vector_out(c, &each->body, t, lanes, ix_var(uv, lanes), ix_var(uv, lanes), false);
    }
    if (first < units) {
        int u = ir_var(p, f, "u");
        IrStmt *out = ir_for(p, &f->body, u, first, units);
        ir_store(p, &out->body, c->out, ix_var(u, 1),
                 lower_epilogue(c, ir_load(p, acc, ix_var(u, 1)), ix_var(u, 1)), false);
    }
}

/* predict_batch's block of samples (PHASE_PREDICT_BLOCK; docs/int8.md):
 * `samples` of them from sample `first` at once, each kernel vector
 * loaded once for all (a large layer's kernel outgrows the caches: one
 * sample at a time it was read once a sample).  Each sample's inputs are
 * copied (plus the program's offset) into whole groups of four. */
typedef struct {
    int packed, bias; /* the kernel's views */
    int x, acc;       /* locals: the samples' inputs, whole groups of four; their sums */
} DenseBlockQ;

static void dense_block_group_q(LowerCtx *c, const DenseBlockQ *d, IrBlock *b, IrIndex first,
                                int samples)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t in = shape_size(c->in_shape[0]), units = c->l->units;
    int64_t padded = quant_padded_channels(units), groups = (in + 3) / 4;
    int lanes = p->vector_width, offset = p->dot_offset;
    int64_t vectors = padded / lanes, xs = c->f->views[c->in[0]].sample_stride;
    int64_t ys = c->f->views[c->out].sample_stride;
    int chunk = vectors % 4 == 0 && samples <= 4 ? 4 : vectors % 2 == 0 ? 2 : 1;
    int x = d->x, acc = d->acc;
    IrIndex at[LOWER_BLOCK_GROUP];
    for (int k = 0; k < samples; k++) {
        at[k] = ix_add(first, ix_const(k));
        int i = ir_var(p, f, "i");
        IrExpr *v = ir_load(p, c->in[0], ix_add_var(ix_scale(at[k], xs), i, 1));
        ir_store(p, &ir_for(p, b, i, 0, in)->body, x, ix_add_var(ix_const(k * groups * 4), i, 1),
                 offset ? ir_op(p, IRE_ADD, v, ir_int(p, offset)) : v, false);
        for (int64_t j = in; j < groups * 4; j++) /* zero weights, but read */
            ir_store(p, b, x, ix_const(k * groups * 4 + j), ir_int(p, 0), false);
    }
    int cv = ir_var(p, f, "cv");
    IrBlock *pass = &ir_for(p, b, cv, 0, vectors / chunk)->body;
    IrIndex co = ix_var(cv, (int64_t)lanes * chunk);
    int a[LOWER_BLOCK_GROUP][4], w[4];
    for (int k = 0; k < samples; k++)
        for (int v = 0; v < chunk; v++) {
            a[k][v] = ir_typed_vreg(p, f, "a", lanes, IR_I32);
            ir_vset(p, pass, a[k][v], SCALAR_DECLARE,
                    ir_vload(p, d->bias, ix_add(co, ix_const(v * lanes)), lanes));
        }
    int g = ir_var(p, f, "g");
    IrBlock *body = &ir_for(p, pass, g, 0, groups)->body;
    for (int v = 0; v < chunk; v++) {
        w[v] = ir_typed_vreg(p, f, "w", 4 * lanes, IR_I8);
        ir_vset(p, body, w[v], SCALAR_DECLARE,
                ir_vload(p, d->packed,
                         ix_add_var(ix_scale(ix_add(co, ix_const(v * lanes)), 4), g, padded * 4),
                         4 * lanes));
        for (int k = 0; k < samples; k++)
            ir_vset(p, body, a[k][v], SCALAR_SET,
                    ir_vdot4(p, ir_vref(p, a[k][v]), x,
                             ix_add(ix_var(g, 4), ix_const(k * groups * 4)), w[v], lanes));
    }
    for (int k = 0; k < samples; k++)
        for (int v = 0; v < chunk; v++)
            ir_vstore(p, pass, acc, ix_add(co, ix_const(k * padded + v * lanes)), a[k][v]);
    int64_t whole = lower_q_vectors_out(c) ? units / lanes * lanes : 0;
    for (int k = 0; k < samples; k++) {
        IrIndex y = ix_scale(at[k], ys);
        if (whole > 0) {
            int uv = ir_var(p, f, "uv");
            IrStmt *each = ir_for(p, b, uv, 0, whole / lanes);
            int t = ir_typed_vreg(p, f, "t", lanes, IR_I32);
            ir_vset(p, &each->body, t, SCALAR_DECLARE,
                    ir_vload(p, acc, ix_add_var(ix_const(k * padded), uv, lanes), lanes));
            lower_q_vector_out(c, &each->body, t, lanes, ix_add_var(y, uv, lanes),
                               ix_var(uv, lanes), false);
        }
        if (whole < units) {
            int u = ir_var(p, f, "u");
            IrStmt *out = ir_for(p, b, u, whole, units);
            ir_store(p, &out->body, c->out, ix_add_var(y, u, 1),
                     lower_epilogue(c, ir_load(p, acc, ix_add_var(ix_const(k * padded), u, 1)),
                                    ix_var(u, 1)),
                     false);
        }
    }
}

static void dense_lower_q_block(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t in = shape_size(c->in_shape[0]), padded = quant_padded_channels(c->l->units);
    DenseBlockQ d;
    d.x = ir_typed_view(p, f, "xq", VIEW_LOCAL, 0, LOWER_BLOCK_GROUP * ((in + 3) / 4 * 4), true,
                        p->dot_offset ? IR_U8 : IR_I8);
    d.acc = lower_acc_local(c, "acc", LOWER_BLOCK_GROUP * padded);
    lower_epilogue_setup(c);
    lower_q_vector_views(c, &d.packed, &d.bias);
    int gv = ir_var(p, f, "grp");
    IrStmt *groups = ir_for_batch_groups(p, &f->body, gv, LOWER_BLOCK_GROUP);
    dense_block_group_q(c, &d, &groups->body, ix_var(gv, LOWER_BLOCK_GROUP), LOWER_BLOCK_GROUP);
    int sv = ir_var(p, f, "s");
    IrStmt *rest = ir_for_batch_tail(p, &f->body, sv, LOWER_BLOCK_GROUP);
    dense_block_group_q(c, &d, &rest->body, ix_var(sv, 1), 1);
}

/* int8 (docs/int8.md): vector kernels where the program has them (a
 * block function's over its samples), else plain loops. */
static void dense_lower_q(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t in = shape_size(c->in_shape[0]), units = c->l->units;
    if (f->phase == PHASE_PREDICT_BLOCK) {
        dense_lower_q_block(c);
        return;
    }
    if (lower_q_has_vectors(c)) {
        dense_lower_q_vectors(c);
        return;
    }
    if (units > DENSE_Q_LOCAL_UNITS) {
        lower_epilogue_setup(c);
        dense_lower_units(c, in, units, c->out);
        return;
    }
    int acc = lower_acc_local(c, "acc", units);
    lower_epilogue_setup(c);
    int u = ir_var(p, f, "u");
    IrStmt *init = ir_for(p, &f->body, u, 0, units);
    ir_store(p, &init->body, acc, ix_var(u, 1), ir_load(p, c->params[1], ix_var(u, 1)), false);
    int i = ir_var(p, f, "i");
    IrStmt *rows = ir_for(p, &f->body, i, 0, in);
    int x = ir_typed_scalar(p, f, "x", IR_I32);
    ir_set(p, &rows->body, x, SCALAR_DECLARE, lower_q_centred(c, 0, ix_var(i, 1)));
    int u2 = ir_var(p, f, "u");
    IrStmt *cols = ir_for(p, &rows->body, u2, 0, units);
    ir_store(p, &cols->body, acc, ix_var(u2, 1),
             ir_op(p, IRE_MUL, ir_ref(p, x),
                   ir_load(p, c->params[0], ix_add_var(ix_var(i, units), u2, 1))),
             true);
    dense_store_outputs(c, acc, units);
}

/* Units beyond this many accumulate in the output itself: a local array
 * lives on the stack, and a wide layer's would overflow it. */
#define DENSE_LOCAL_UNITS 16384

/* The units rounded up to whole vectors of *width lanes: the last vector's
 * spare lanes read on into the next row of W (the last row into what
 * follows W in the parameter block) and add up sums nothing reads.  Each
 * lane is a sum of its own, so the real units' are those of scalar code.
 * lenet's 10 units had taken a vector and 2 scalars, 3 multiply-adds an
 * input where one 16-lane vector does (dense_1 ran at 9% of the peak).
 * Fewer units than the widest vector take one vector of the next power of
 * two (at least half its lanes real).  No padding where W's last row would
 * read past the parameter block, or the sums live in the output. */
static int64_t dense_padded_units(const LowerCtx *c, int64_t in, int64_t units, int *width)
{
    const IrProgram *p = c->p;
    *width = lower_lanes_within(p, units);
    if (p->vector_width == 0 || units < 2 || units > DENSE_LOCAL_UNITS ||
        (*width && units % *width == 0))
        return units;
    int lanes = *width;
    if (units < p->vector_width)
        for (lanes = 4; lanes < units; lanes *= 2)
            ;
    int64_t padded = (units + lanes - 1) / lanes * lanes;
    int64_t kernel_end = c->f->views[c->params[0]].offset + in * units;
    if (kernel_end + (padded - units) > c->m->param_floats)
        return units;
    *width = lanes;
    return padded;
}

/* The bias of padded units, as a view a vector may read whole: ACC,
 * the bias then zeros (past the bias, the parameter block may end). */
static int dense_padded_bias(LowerCtx *c, int64_t units, int64_t padded, int acc)
{
    IrProgram *p = c->p;
    int u = ir_var(p, c->f, "u");
    IrStmt *copy = ir_for(p, &c->f->body, u, 0, units);
    ir_store(p, &copy->body, acc, ix_var(u, 1), ir_load(p, c->params[1], ix_var(u, 1)), false);
    int spare = ir_var(p, c->f, "u");
    IrStmt *zero = ir_for(p, &c->f->body, spare, units, padded);
    ir_store(p, &zero->body, acc, ix_var(spare, 1), ir_num(p, 0.0f), false);
    return acc;
}

static void dense_lower(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    int64_t in = shape_size(c->in_shape[0]), units = l->units;
    int width;
    int64_t padded = dense_padded_units(c, in, units, &width);
    int64_t vec_units = width ? padded / width * width : 0;
    int acc = units <= DENSE_LOCAL_UNITS ? lower_local(c, "acc", padded) : c->out;
    int bias = l->use_bias ? c->params[1] : -1;
    if (bias >= 0 && padded > units)
        bias = dense_padded_bias(c, units, padded, acc);
    lower_epilogue_setup(c);
    if (vec_units)
        dense_lower_vectors(c, in, units, width, vec_units, bias, acc);
    if (p->small_model && !vec_units) {
        dense_lower_units(c, in, units, acc);
    } else if (vec_units < units && units - vec_units <= DENSE_TAIL_REGISTERS) {
        dense_lower_tail(c, in, units, vec_units, bias, acc);
    } else if (vec_units < units) {
        int u = ir_var(p, f, "u");
        IrStmt *init = ir_for(p, &f->body, u, vec_units, units);
        ir_store(p, &init->body, acc, ix_var(u, 1),
                 l->use_bias ? ir_load(p, c->params[1], ix_var(u, 1)) : ir_num(p, 0.0f), false);
        int i = ir_var(p, f, "i");
        IrStmt *rows = ir_for(p, &f->body, i, 0, in);
        int u2 = ir_var(p, f, "u");
        IrStmt *cols = ir_for(p, &rows->body, u2, vec_units, units);
        ir_store(p, &cols->body, acc, ix_var(u2, 1),
                 ir_op(p, IRE_MUL, ir_load(p, c->in[0], ix_var(i, 1)),
                       ir_load(p, c->params[0], ix_add_var(ix_var(i, units), u2, 1))),
                 true);
    }
    dense_store_outputs(c, acc, units);
    lower_output_softmax(c);
}

/* ---- forward lowering over a block of samples (predict_batch) ----------------
 * Each sample's outputs are exactly dense_lower's: its accumulators start
 * at the bias and add x[i] * W[i] for i in order, in the same expressions;
 * only the order of the work changes.  A tile of W (DENSE_TILE_BYTES of
 * rows of a chunk of unit vectors) stays in the first-level cache while every
 * sample of the block passes, LOWER_BLOCK_GROUP samples at a time in
 * registers, so W streams from memory once per block rather than once per
 * sample.  The accumulators wait in the output between tiles (a float
 * stored and loaded back is the same float); the epilogue comes last. */

enum { DENSE_TILE_BYTES = 24576 }; /* of W: within a 32 KB first-level cache */

typedef struct {
    LowerCtx *c;
    int64_t in, units;
    int width;
} DenseBlock;

/* Samples `count` at a time from loop variable var (var * per_var is the
 * first's number). */
typedef struct {
    int var, count;
    int64_t per_var;
} SampleGroup;

static IrIndex group_sample_index(const LowerCtx *c, int view, const SampleGroup *g, int j,
                                  IrIndex ix)
{
    int64_t stride = c->f->views[view].sample_stride;
    return ix_add(ix_add_var(ix, g->var, g->per_var * stride), ix_const(j * stride));
}

/* The samples of g, `chunk` vectors of units from `first`, over `rows`
 * rows of W from row0: accumulators from the output, back to it. */
static void dense_block_registers(const DenseBlock *d, IrBlock *body, const SampleGroup *g,
                                  IrIndex first, int chunk, IrIndex row0, int64_t rows)
{
    LowerCtx *c = d->c;
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int a[LOWER_BLOCK_GROUP][8];
    for (int j = 0; j < g->count; j++)
        for (int v = 0; v < chunk; v++) {
            a[j][v] = ir_vreg(p, f, "a", d->width);
            IrIndex at = ix_add(first, ix_const((int64_t)v * d->width));
            ir_vset(p, body, a[j][v], SCALAR_DECLARE,
                    ir_vload(p, c->out, group_sample_index(d->c, c->out, g, j, at), d->width));
        }
    int i = ir_var(p, f, "i");
    IrBlock *loop = &ir_for(p, body, i, 0, rows)->body;
    IrIndex row = ix_add_var(row0, i, 1);
    for (int v = 0; v < chunk; v++) {
        int wv = ir_vreg(p, f, "w", d->width);
        IrIndex at =
            ix_add(ix_add(first, ix_const((int64_t)v * d->width)), ix_scale(row, d->units));
        ir_vset(p, loop, wv, SCALAR_DECLARE, ir_vload(p, c->params[0], at, d->width));
        for (int j = 0; j < g->count; j++)
            ir_vset(p, loop, a[j][v], SCALAR_ADD,
                    ir_op(p, IRE_MUL,
                          ir_load(p, c->in[0], group_sample_index(d->c, c->in[0], g, j, row)),
                          ir_vref(p, wv)));
    }
    for (int j = 0; j < g->count; j++)
        for (int v = 0; v < chunk; v++)
            ir_vstore(p, body, c->out,
                      group_sample_index(d->c, c->out, g, j,
                                         ix_add(first, ix_const((int64_t)v * d->width))),
                      a[j][v]);
}

/* One tile: the block's whole groups of samples, then the rest. */
static void dense_block_tile(const DenseBlock *d, IrBlock *body, IrIndex first, int chunk,
                             IrIndex row0, int64_t rows)
{
    IrProgram *p = d->c->p;
    int gv = ir_var(p, d->c->f, "g");
    IrStmt *groups = ir_for_batch_groups(p, body, gv, LOWER_BLOCK_GROUP);
    SampleGroup whole = {gv, LOWER_BLOCK_GROUP, LOWER_BLOCK_GROUP};
    dense_block_registers(d, &groups->body, &whole, first, chunk, row0, rows);
    int sv = ir_var(p, d->c->f, "s");
    IrStmt *rest = ir_for_batch_tail(p, body, sv, LOWER_BLOCK_GROUP);
    SampleGroup one = {sv, 1, 1};
    dense_block_registers(d, &rest->body, &one, first, chunk, row0, rows);
}

/* Rows in a tile of `chunk` unit vectors: DENSE_TILE_BYTES of W. */
static int64_t dense_tile_rows(const DenseBlock *d, int chunk)
{
    int64_t rows = DENSE_TILE_BYTES / (4 * (int64_t)chunk * d->width);
    return rows < 1 ? 1 : rows > d->in ? d->in : rows;
}

/* A chunk of unit vectors from first, tile by tile of rows. */
static void dense_block_chunk(const DenseBlock *d, IrBlock *body, IrIndex first, int chunk)
{
    IrProgram *p = d->c->p;
    int64_t tile_rows = dense_tile_rows(d, chunk);
    int64_t tiles = d->in / tile_rows, left = d->in - tiles * tile_rows;
    int kt = ir_var(p, d->c->f, "kt");
    IrStmt *loop = ir_for(p, body, kt, 0, tiles);
    dense_block_tile(d, &loop->body, first, chunk, ix_var(kt, tile_rows), tile_rows);
    if (left)
        dense_block_tile(d, body, first, chunk, ix_const(tiles * tile_rows), left);
}

/* Rows outer (predict_batch): a tile's rows, every chunk of units over
 * them in turn, so W streams from memory a run of whole rows at a time.
 * Chunk by chunk (as training's threads take them), each tile was a short
 * piece of each of its rows, every row in a page of its own, which the
 * hardware's prefetchers do not follow: fashion's 13 MB kernel at batch
 * 64 took 5.0-5.5 ms where this takes 4.0-4.2 (avx2: 11.4 and 10.1). */
static void dense_block_row_tile(const DenseBlock *d, IrBlock *body, IrIndex row0, int64_t rows,
                                 int most, int64_t chunks, int rest)
{
    IrProgram *p = d->c->p;
    int64_t span = (int64_t)most * d->width;
    int uc = ir_var(p, d->c->f, "uc");
    IrStmt *loop = ir_for(p, body, uc, 0, chunks);
    dense_block_tile(d, &loop->body, ix_var(uc, span), most, row0, rows);
    if (rest)
        dense_block_tile(d, body, ix_const(chunks * span), rest, row0, rows);
}

static void dense_block_rows_outer(const DenseBlock *d, IrBlock *body, int most, int64_t chunks,
                                   int rest)
{
    IrProgram *p = d->c->p;
    int64_t tile_rows = dense_tile_rows(d, most);
    int64_t tiles = d->in / tile_rows, left = d->in - tiles * tile_rows;
    int kt = ir_var(p, d->c->f, "kt");
    IrStmt *loop = ir_for(p, body, kt, 0, tiles);
    dense_block_row_tile(d, &loop->body, ix_var(kt, tile_rows), tile_rows, most, chunks, rest);
    if (left)
        dense_block_row_tile(d, body, ix_const(tiles * tile_rows), left, most, chunks, rest);
}

/* out = b + x W for every sample of the block (its layout: the views'
 * sample strides), no activation.  parallel: the chunks of units on
 * OpenMP's threads (in training's functions, where PARALLEL_FOR is
 * defined): each output is then one thread's, summed in the same order
 * on any number of threads. */
static void dense_block_accumulate(LowerCtx *c, bool parallel)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    const Layer *l = c->l;
    DenseBlock d = {c, shape_size(c->in_shape[0]), l->units, lower_lanes_within(p, l->units)};
    int64_t vec_units = d.width ? d.units / d.width * d.width : 0;
    /* every sample's accumulators start at the bias */
    int s = ir_var(p, f, "s");
    IrBlock *samples = &ir_for_batch(p, &f->body, s)->body;
    int u = ir_var(p, f, "u");
    IrStmt *init = ir_for(p, samples, u, 0, d.units);
    ir_store(p, &init->body, c->out, lower_sample_index(c, c->out, s, ix_var(u, 1)),
             l->use_bias ? ir_load(p, c->params[1], ix_var(u, 1)) : ir_num(p, 0.0f), false);
    if (vec_units) {
        int most = (p->vector_registers - 2) / LOWER_BLOCK_GROUP;
        most = most < 1 ? 1 : most > 8 ? 8 : most;
        int64_t span = (int64_t)most * d.width, chunks = vec_units / span;
        int rest = (int)((vec_units - chunks * span) / d.width);
        if (!parallel) {
            dense_block_rows_outer(&d, &f->body, most, chunks, rest);
        } else {
            int uc = ir_var(p, f, "uc");
            IrStmt *loop = ir_for(p, &f->body, uc, 0, chunks);
            loop->parallel = true;
            dense_block_chunk(&d, &loop->body, ix_var(uc, span), most);
            if (rest)
                dense_block_chunk(&d, &f->body, ix_const(chunks * span), rest);
        }
    }
    if (vec_units < d.units) { /* the units past the last whole vector, row by row */
        int i = ir_var(p, f, "i");
        IrBlock *rows = &ir_for(p, &f->body, i, 0, d.in)->body;
        int s2 = ir_var(p, f, "s");
        IrBlock *each = &ir_for_batch(p, rows, s2)->body;
        int u2 = ir_var(p, f, "u");
        IrStmt *cols = ir_for(p, each, u2, vec_units, d.units);
        ir_store(p, &cols->body, c->out, lower_sample_index(c, c->out, s2, ix_var(u2, 1)),
                 ir_op(p, IRE_MUL,
                       ir_load(p, c->in[0], lower_sample_index(c, c->in[0], s2, ix_var(i, 1))),
                       ir_load(p, c->params[0], ix_add_var(ix_var(i, d.units), u2, 1))),
                 true);
    }
}

static void dense_lower_block_samples(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    lower_epilogue_setup(c);
    dense_block_accumulate(c, false);
    if ((c->act == ACT_NONE || c->act == ACT_LINEAR) && c->nepi == 0)
        return;
    int s = ir_var(p, f, "s");
    IrBlock *outs = &ir_for_batch(p, &f->body, s)->body;
    int u = ir_var(p, f, "u");
    IrStmt *out = ir_for(p, outs, u, 0, c->l->units);
    IrIndex at = lower_sample_index(c, c->out, s, ix_var(u, 1));
    ir_store(p, &out->body, c->out, at, lower_epilogue(c, ir_load(p, c->out, at), ix_var(u, 1)),
             false);
}

/* A small layer's forward pass over the batch in plain loops (W stays in
 * cache; the register blocks would only make the code longer: a model of
 * thousands of small layers ran to 200 MB of C): for each input i, row i
 * of W is added into every sample's accumulators. */
static void dense_train_small(LowerCtx *c)
{
    IrProgram *p = c->p;
    IrFunc *f = c->f;
    int64_t in = shape_size(c->in_shape[0]), units = c->l->units;
    int s = ir_var(p, f, "s");
    IrBlock *init = &ir_for_batch(p, &f->body, s)->body;
    int u = ir_var(p, f, "u");
    IrStmt *cols = ir_for(p, init, u, 0, units);
    ir_store(p, &cols->body, c->out, lower_sample_index(c, c->out, s, ix_var(u, 1)),
             c->l->use_bias ? ir_load(p, c->params[1], ix_var(u, 1)) : ir_num(p, 0.0f), false);
    int i = ir_var(p, f, "i");
    IrBlock *rows = &ir_for(p, &f->body, i, 0, in)->body;
    int s2 = ir_var(p, f, "s");
    IrBlock *samples = &ir_for_batch(p, rows, s2)->body;
    int xs = ir_scalar(p, f, "xs");
    ir_set(p, samples, xs, SCALAR_DECLARE,
           ir_load(p, c->in[0], lower_sample_index(c, c->in[0], s2, ix_var(i, 1))));
    int u2 = ir_var(p, f, "u");
    IrStmt *acc = ir_for(p, samples, u2, 0, units);
    ir_store(p, &acc->body, c->out, lower_sample_index(c, c->out, s2, ix_var(u2, 1)),
             ir_op(p, IRE_MUL, ir_ref(p, xs),
                   ir_load(p, c->params[0], ix_add_var(ix_var(i, units), u2, 1))),
             true);
}

/* ---- training -----------------------------------------------------------------
 * The forward pass over the whole batch is the block lowering's (W read
 * once per step, not once per sample), into the pre-activation when the
 * layer keeps one, on OpenMP's threads; then the activation, sample by
 * sample. */
static void dense_train(const LowerCtx *base)
{
    LowerCtx c = lower_train_func(base, PHASE_FORWARD, false, "forward");
    if (c.pre >= 0)
        c.out = c.pre;
    if (layer_params_outgrow_cache(c.l))
        dense_block_accumulate(&c, true);
    else
        dense_train_small(&c);
    if (c.pre >= 0)
        lower_train_activation(base, PHASE_FORWARD);
}

/* ---- backward lowering ------------------------------------------------------
 * With g the gradient of the pre-activation, over the whole batch:
 * db = sum_s g[s], dW[i] += sum_s x[s][i] g[s] and dx[s][i] += W[i] . g[s].
 * Row i of W and of dW stays in cache while every sample passes (the
 * batch's g is small), so W and dW stream through memory once per step
 * rather than once per sample, and four samples at a time share each
 * load of them (four rows each load of g).  The dot products run in vectors: each lane sums a
 * strided share of the units, then the lanes are added. */

/* Rows of W are taken a few at a time as well (DENSE_BACK_ROWS with 32
 * vector registers, half as many with 16): each load of g then serves
 * them all (the batch's g is read from the second-level cache once per
 * group of rows, not once per row). */
enum { DENSE_BACK_ROWS = 4 };

typedef struct {
    LowerCtx c;
    int64_t in, units, vec_units; /* units in whole vectors */
    int width;
    SampleGroup rows; /* rows i of W and dW: rows.var * rows.per_var + r */
} DenseBack;

static IrIndex back_row(const DenseBack *d, int r)
{
    return ix_add(ix_var(d->rows.var, d->rows.per_var), ix_const(r));
}

/* x[s][i] of sample j of the group, row r. */
static IrExpr *back_x(DenseBack *d, const SampleGroup *g, int j, int r)
{
    return ir_load(d->c.p, d->c.in[0], group_sample_index(&d->c, d->c.in[0], g, j, back_row(d, r)));
}

/* W[i][u] or dW[i][u] of row r. */
static IrIndex back_w(const DenseBack *d, int r, IrIndex u)
{
    return ix_add(ix_scale(back_row(d, r), d->units), u);
}

/* The units in whole vectors, for the rows and the group's samples at
 * once: each row of W and of dW loaded once for the group, each sample's
 * g once for the rows, and a dot product's vector accumulator per row and
 * sample (independent chains of FMAs), added up lane by lane into the
 * dots at the end. */
static void dense_backward_vectors(DenseBack *d, IrBlock *b, const SampleGroup *g, int dots[][4])
{
    IrProgram *p = d->c.p;
    IrFunc *f = d->c.f;
    int dw = d->c.dparams[0], dx = d->c.din[0], rows = d->rows.count;
    int acc[DENSE_BACK_ROWS][LOWER_BLOCK_GROUP];
    for (int r = 0; dx >= 0 && r < rows; r++)
        for (int j = 0; j < g->count; j++) {
            acc[r][j] = ir_vreg(p, f, "acc", d->width);
            ir_vset(p, b, acc[r][j], SCALAR_DECLARE, ir_vzero(p, d->width));
        }
    int uc = ir_var(p, f, "uc");
    IrBlock *body = &ir_for(p, b, uc, 0, d->vec_units / d->width)->body;
    IrIndex at_u = ix_var(uc, d->width);
    int wv[DENSE_BACK_ROWS], dwv[DENSE_BACK_ROWS];
    for (int r = 0; r < rows; r++) {
        if (dx >= 0) {
            wv[r] = ir_vreg(p, f, "w", d->width);
            ir_vset(p, body, wv[r], SCALAR_DECLARE,
                    ir_vload(p, d->c.params[0], back_w(d, r, at_u), d->width));
        }
        if (dw >= 0) {
            dwv[r] = ir_vreg(p, f, "dw", d->width);
            ir_vset(p, body, dwv[r], SCALAR_DECLARE, ir_vload(p, dw, back_w(d, r, at_u), d->width));
        }
    }
    for (int j = 0; j < g->count; j++) {
        int gv = ir_vreg(p, f, "g", d->width);
        ir_vset(p, body, gv, SCALAR_DECLARE,
                ir_vload(p, d->c.dout, group_sample_index(&d->c, d->c.dout, g, j, at_u), d->width));
        for (int r = 0; r < rows; r++) {
            if (dw >= 0)
                ir_vset(p, body, dwv[r], SCALAR_ADD,
                        ir_op(p, IRE_MUL, back_x(d, g, j, r), ir_vref(p, gv)));
            if (dx >= 0)
                ir_vset(p, body, acc[r][j], SCALAR_ADD,
                        ir_op(p, IRE_MUL, ir_vref(p, wv[r]), ir_vref(p, gv)));
        }
    }
    for (int r = 0; dw >= 0 && r < rows; r++)
        ir_vstore(p, body, dw, back_w(d, r, at_u), dwv[r]);
    for (int r = 0; dx >= 0 && r < rows; r++)
        for (int j = 0; j < g->count; j++)
            for (int lane = 0; lane < d->width; lane++)
                ir_set(p, b, dots[r][j], SCALAR_ADD, ir_vlane(p, acc[r][j], lane));
}

/* The rows' share of the group's samples: dW[i] and dx[s][i]. */
static void dense_backward_samples(DenseBack *d, IrBlock *b, const SampleGroup *g)
{
    IrProgram *p = d->c.p;
    IrFunc *f = d->c.f;
    int dw = d->c.dparams[0], dx = d->c.din[0], rows = d->rows.count;
    int dots[DENSE_BACK_ROWS][4];
    for (int r = 0; dx >= 0 && r < rows; r++)
        for (int j = 0; j < g->count; j++) {
            dots[r][j] = ir_scalar(p, f, "dot");
            ir_set(p, b, dots[r][j], SCALAR_DECLARE, ir_num(p, 0.0f));
        }
    if (d->vec_units)
        dense_backward_vectors(d, b, g, dots);
    if (d->vec_units < d->units) { /* the units past the last whole vector */
        int u = ir_var(p, f, "u");
        IrBlock *tail = &ir_for(p, b, u, d->vec_units, d->units)->body;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < g->count; j++) {
                IrExpr *gu =
                    ir_load(p, d->c.dout, group_sample_index(&d->c, d->c.dout, g, j, ix_var(u, 1)));
                if (dw >= 0)
                    ir_store(p, tail, dw, back_w(d, r, ix_var(u, 1)),
                             ir_op(p, IRE_MUL, back_x(d, g, j, r), gu), true);
                if (dx >= 0)
                    ir_set(p, tail, dots[r][j], SCALAR_ADD,
                           ir_op(p, IRE_MUL, ir_load(p, d->c.params[0], back_w(d, r, ix_var(u, 1))),
                                 gu));
            }
    }
    for (int r = 0; dx >= 0 && r < rows; r++)
        for (int j = 0; j < g->count; j++)
            ir_store(p, b, dx, group_sample_index(&d->c, dx, g, j, back_row(d, r)),
                     ir_ref(p, dots[r][j]), true);
}

/* Rows from the loop variable: the samples in groups, in order, then the
 * rest (every sum keeps its order); a small layer's one at a time. */
static void dense_backward_rows(DenseBack *d, IrBlock *b)
{
    IrProgram *p = d->c.p;
    if (!layer_params_outgrow_cache(d->c.l)) {
        int sv = ir_var(p, d->c.f, "s");
        IrStmt *each = ir_for_batch(p, b, sv);
        dense_backward_samples(d, &each->body, &(SampleGroup){sv, 1, 1});
        return;
    }
    int gv = ir_var(p, d->c.f, "g");
    IrStmt *groups = ir_for_batch_groups(p, b, gv, LOWER_BLOCK_GROUP);
    dense_backward_samples(d, &groups->body,
                           &(SampleGroup){gv, LOWER_BLOCK_GROUP, LOWER_BLOCK_GROUP});
    int sv = ir_var(p, d->c.f, "s");
    IrStmt *rest = ir_for_batch_tail(p, b, sv, LOWER_BLOCK_GROUP);
    dense_backward_samples(d, &rest->body, &(SampleGroup){sv, 1, 1});
}

static void dense_backward(const LowerCtx *base)
{
    DenseBack d = {.c = lower_train_func(base, PHASE_BACKWARD, false, "backward")};
    IrProgram *p = d.c.p;
    IrFunc *f = d.c.f;
    d.in = shape_size(d.c.in_shape[0]);
    d.units = d.c.l->units;
    d.width = lower_lanes_within(p, d.units);
    d.vec_units = d.width ? d.units / d.width * d.width : 0;
    int dw = d.c.dparams[0], db = d.c.l->use_bias ? d.c.dparams[1] : -1, dx = d.c.din[0];
    if (db >= 0) {
        int s = ir_var(p, f, "s");
        IrBlock *samples = &ir_for_batch(p, &f->body, s)->body;
        int u = ir_var(p, f, "u");
        IrStmt *loop = ir_for(p, samples, u, 0, d.units);
        ir_store(p, &loop->body, db, ix_var(u, 1),
                 ir_load(p, d.c.dout, lower_sample_index(&d.c, d.c.dout, s, ix_var(u, 1))), true);
    }
    if (dw < 0 && dx < 0)
        return;
    /* rows of dW and columns of dx are each one thread's */
    int rows = !layer_params_outgrow_cache(d.c.l) ? 1
               : p->vector_registers >= 32        ? DENSE_BACK_ROWS
                                                  : DENSE_BACK_ROWS / 2;
    int64_t blocks = d.in / rows;
    int ib = ir_var(p, f, "ib");
    IrStmt *loop = ir_for(p, &f->body, ib, 0, blocks);
    loop->parallel = true;
    d.rows = (SampleGroup){ib, rows, rows};
    dense_backward_rows(&d, &loop->body);
    if (blocks * rows < d.in) {
        int i = ir_var(p, f, "i");
        IrStmt *rest = ir_for(p, &f->body, i, blocks * rows, d.in);
        rest->parallel = true;
        d.rows = (SampleGroup){i, 1, 1};
        dense_backward_rows(&d, &rest->body);
    }
}

const LayerKind dense_kinds[] = {
    {.name = "dense",
     .positional = dense_positional,
     .named = dense_named,
     .linear_map = true,
     .param_names = layer_linear_map_params,
     .quant = QUANT_LINEAR_MAP,
     .configure = dense_configure,
     .infer = dense_infer,
     .flops = dense_flops,
     .lower = dense_lower,
     .lower_q = dense_lower_q,
     .packed_size_q = dense_packed_size_q,
     .pack_q = dense_pack_q,
     .lower_block = dense_lower_block_samples,
     .lower_train = dense_train,
     .lower_backward = dense_backward},
    {.name = "flatten",
     .positional = layer_no_names,
     .named = layer_no_names,
     .aliases_input = true,
     .trains_as_identity = layer_always_identity,
     .quant = QUANT_SAME_SCALE,
     .infer = flatten_infer,
     .lower = lower_copy},
    {0},
};

/* ir.c - building the loop IR, and the passes over it. */
#include "ir.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static void *grow_array(Arena *a, void *items, int count, int *cap, size_t size)
{
    if (count < *cap)
        return items;
    int bigger = *cap ? 2 * *cap : 8;
    void *copy = arena_alloc(a, (size_t)bigger * size);
    if (count)
        memcpy(copy, items, (size_t)count * size);
    *cap = bigger;
    return copy;
}

IrFunc *ir_func(IrProgram *p, const char *name, const char *comment)
{
    IrFunc *f = arena_alloc(&p->arena, sizeof *f);
    f->name = arena_strndup(&p->arena, name, strlen(name));
    f->comment = comment ? arena_strndup(&p->arena, comment, strlen(comment)) : NULL;
    f->layer = -1;
    p->funcs = grow_array(&p->arena, p->funcs, p->nfuncs, &p->cap, sizeof *p->funcs);
    p->funcs[p->nfuncs++] = f;
    return f;
}

IrFunc *ir_train_func(IrProgram *p, const char *name, const char *comment, IrPhase phase,
                      bool per_sample)
{
    IrFunc *f = ir_func(p, name, comment);
    f->phase = phase;
    f->per_sample = per_sample;
    return f;
}

void ir_tag_layer(IrProgram *p, int from, int layer)
{
    for (int i = from; i < p->nfuncs; i++)
        p->funcs[i]->layer = layer;
}

void ir_step(IrProgram *p, IrSteps *steps, IrStep step)
{
    steps->items =
        grow_array(&p->arena, steps->items, steps->count, &steps->cap, sizeof *steps->items);
    steps->items[steps->count++] = step;
}

int64_t ir_local_floats(const IrFunc *f)
{
    int64_t floats = 0;
    for (int i = 0; i < f->nviews; i++)
        if (f->views[i].base == VIEW_LOCAL)
            floats += f->views[i].size;
    return floats;
}

void ir_program_free(IrProgram *p)
{
    arena_free(&p->arena);
    memset(p, 0, sizeof *p);
}

int ir_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset, int64_t size,
            bool written)
{
    f->views = grow_array(&p->arena, f->views, f->nviews, &f->views_cap, sizeof *f->views);
    f->views[f->nviews] = (IrView){
        arena_strndup(&p->arena, name, strlen(name)), base, offset, size, written, 0, IR_F32};
    return f->nviews++;
}

int ir_sample_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset,
                   int64_t size, bool written, int64_t sample_stride)
{
    int v = ir_view(p, f, name, base, offset, size, written);
    f->views[v].sample_stride = sample_stride;
    return v;
}

static int add_name(IrProgram *p, const char ***names, int *n, int *cap, const char *name)
{
    *names = grow_array(&p->arena, *names, *n, cap, sizeof **names);
    (*names)[*n] = arena_strndup(&p->arena, name, strlen(name));
    return (*n)++;
}

int ir_var(IrProgram *p, IrFunc *f, const char *name)
{
    return add_name(p, &f->var_names, &f->nvars, &f->vars_cap, name);
}

int ir_typed_scalar(IrProgram *p, IrFunc *f, const char *name, IrType type)
{
    f->scalar_types = grow_array(&p->arena, f->scalar_types, f->nscalars, &f->scalar_types_cap,
                                 sizeof *f->scalar_types);
    f->scalar_types[f->nscalars] = type;
    return add_name(p, &f->scalar_names, &f->nscalars, &f->scalars_cap, name);
}

int ir_scalar(IrProgram *p, IrFunc *f, const char *name)
{
    return ir_typed_scalar(p, f, name, IR_F32);
}

int ir_typed_view(IrProgram *p, IrFunc *f, const char *name, ViewBase base, int64_t offset,
                  int64_t size, bool written, IrType type)
{
    int v = ir_view(p, f, name, base, offset, size, written);
    f->views[v].type = type;
    return v;
}

int ir_typed_vreg(IrProgram *p, IrFunc *f, const char *name, int lanes, IrType type)
{
    f->vreg_lanes =
        grow_array(&p->arena, f->vreg_lanes, f->nvregs, &f->vreg_lanes_cap, sizeof *f->vreg_lanes);
    f->vreg_lanes[f->nvregs] = lanes;
    f->vreg_types =
        grow_array(&p->arena, f->vreg_types, f->nvregs, &f->vreg_types_cap, sizeof *f->vreg_types);
    f->vreg_types[f->nvregs] = type;
    return add_name(p, &f->vreg_names, &f->nvregs, &f->vregs_cap, name);
}

int ir_vreg(IrProgram *p, IrFunc *f, const char *name, int lanes)
{
    return ir_typed_vreg(p, f, name, lanes, IR_F32);
}

/* ---- indices ------------------------------------------------------------ */

IrIndex ix_const(int64_t c)
{
    IrIndex ix = {.c = c};
    return ix;
}

IrIndex ix_add_var(IrIndex a, int var, int64_t coef)
{
    if (coef == 0)
        return a;
    for (int i = 0; i < a.n; i++)
        if (a.t[i].var == var) {
            a.t[i].coef += coef;
            if (a.t[i].coef == 0) {
                a.t[i] = a.t[--a.n];
            }
            return a;
        }
    if (a.n == IR_MAX_TERMS)
        unreachable();
    a.t[a.n].var = var;
    a.t[a.n].coef = coef;
    a.n++;
    return a;
}

IrIndex ix_var(int var, int64_t coef)
{
    return ix_add_var(ix_const(0), var, coef);
}

IrIndex ix_add(IrIndex a, IrIndex b)
{
    a.c += b.c;
    for (int i = 0; i < b.n; i++)
        a = ix_add_var(a, b.t[i].var, b.t[i].coef);
    return a;
}

IrIndex ix_scale(IrIndex a, int64_t k)
{
    a.c *= k;
    for (int i = 0; i < a.n; i++)
        a.t[i].coef *= k;
    if (k == 0)
        a.n = 0;
    return a;
}

/* ---- expressions and statements ----------------------------------------- */

static IrExpr *new_expr(IrProgram *p, IrExprKind kind)
{
    IrExpr *e = arena_alloc(&p->arena, sizeof *e);
    e->kind = kind;
    return e;
}

IrExpr *ir_num(IrProgram *p, float value)
{
    IrExpr *e = new_expr(p, IRE_CONST);
    e->value = value;
    return e;
}

IrExpr *ir_int(IrProgram *p, int32_t value)
{
    IrExpr *e = new_expr(p, IRE_ICONST);
    e->ivalue = value;
    return e;
}

static IrExpr *ternary(IrProgram *p, IrExprKind kind, IrExpr *a, IrExpr *b, IrExpr *c)
{
    IrExpr *e = new_expr(p, kind);
    e->a = a;
    e->b = b;
    e->c = c;
    return e;
}

IrExpr *ir_requant(IrProgram *p, IrExpr *sum, IrExpr *multiplier, IrExpr *shift)
{
    return ternary(p, IRE_REQUANT, sum, multiplier, shift);
}

bool ir_expr_is_int(const IrFunc *f, const IrExpr *e)
{
    switch (e->kind) {
    case IRE_ICONST:
    case IRE_REQUANT:
    case IRE_VDOT4: return true;
    case IRE_VZERO: return e->ivalue != 0;
    case IRE_LOAD:
    case IRE_VLOAD: return f->views[e->view].type != IR_F32;
    case IRE_VREG: return f->vreg_types[e->scalar] != IR_F32;
    case IRE_SCALAR: return f->scalar_types[e->scalar] != IR_F32;
    case IRE_ADD:
    case IRE_SUB:
    case IRE_MUL:
    case IRE_DIV:
    case IRE_MAX:
    case IRE_MIN:
    case IRE_NEG: return ir_expr_is_int(f, e->a);
    case IRE_SELECT_POS: return ir_expr_is_int(f, e->b);
    default: return false;
    }
}

IrExpr *ir_load(IrProgram *p, int view, IrIndex index)
{
    IrExpr *e = new_expr(p, IRE_LOAD);
    e->view = view;
    e->index = index;
    return e;
}

IrExpr *ir_ref(IrProgram *p, int scalar)
{
    IrExpr *e = new_expr(p, IRE_SCALAR);
    e->scalar = scalar;
    return e;
}

IrExpr *ir_op(IrProgram *p, IrExprKind kind, IrExpr *a, IrExpr *b)
{
    IrExpr *e = new_expr(p, kind);
    e->a = a;
    e->b = b;
    return e;
}

IrExpr *ir_select_pos(IrProgram *p, IrExpr *cond, IrExpr *then, IrExpr *otherwise)
{
    return ternary(p, IRE_SELECT_POS, cond, then, otherwise);
}

static IrStmt *append(IrProgram *p, IrBlock *b, IrStmtKind kind)
{
    IrStmt *s = arena_alloc(&p->arena, sizeof *s);
    s->kind = kind;
    b->items = grow_array(&p->arena, b->items, b->count, &b->cap, sizeof *b->items);
    b->items[b->count++] = s;
    return s;
}

IrStmt *ir_for(IrProgram *p, IrBlock *b, int var, int64_t lo, int64_t hi)
{
    IrStmt *s = append(p, b, IRS_FOR);
    s->var = var;
    s->lo = lo;
    s->hi = hi;
    return s;
}

IrStmt *ir_for_batch(IrProgram *p, IrBlock *b, int var)
{
    IrStmt *s = ir_for(p, b, var, 0, 0);
    s->to_batch = true;
    return s;
}

IrStmt *ir_for_batch_groups(IrProgram *p, IrBlock *b, int var, int64_t group)
{
    IrStmt *s = ir_for_batch(p, b, var);
    s->group = group;
    return s;
}

IrStmt *ir_for_batch_tail(IrProgram *p, IrBlock *b, int var, int64_t group)
{
    IrStmt *s = ir_for_batch_groups(p, b, var, group);
    s->batch_tail = true;
    return s;
}

void ir_store(IrProgram *p, IrBlock *b, int view, IrIndex index, IrExpr *value, bool accumulate)
{
    IrStmt *s = append(p, b, IRS_STORE);
    s->view = view;
    s->index = index;
    s->value = value;
    s->accumulate = accumulate;
}

void ir_set(IrProgram *p, IrBlock *b, int scalar, ScalarMode mode, IrExpr *value)
{
    IrStmt *s = append(p, b, IRS_SCALAR);
    s->scalar = scalar;
    s->mode = mode;
    s->value = value;
}

void ir_comment(IrProgram *p, IrBlock *b, const char *text)
{
    IrStmt *s = append(p, b, IRS_COMMENT);
    s->text = arena_strndup(&p->arena, text, strlen(text));
}

IrExpr *ir_vref(IrProgram *p, int vreg)
{
    IrExpr *e = new_expr(p, IRE_VREG);
    e->scalar = vreg;
    return e;
}

IrExpr *ir_vlane(IrProgram *p, int vreg, int lane)
{
    IrExpr *e = new_expr(p, IRE_VLANE);
    e->scalar = vreg;
    e->index = ix_const(lane);
    return e;
}

IrExpr *ir_vzero(IrProgram *p, int lanes)
{
    IrExpr *e = new_expr(p, IRE_VZERO);
    e->lanes = lanes;
    return e;
}

IrExpr *ir_vzero_int(IrProgram *p, int lanes)
{
    IrExpr *e = ir_vzero(p, lanes);
    e->ivalue = 1;
    return e;
}

IrExpr *ir_vload(IrProgram *p, int view, IrIndex index, int lanes)
{
    IrExpr *e = new_expr(p, IRE_VLOAD);
    e->view = view;
    e->index = index;
    e->lanes = lanes;
    return e;
}

IrExpr *ir_vload_halves(IrProgram *p, int view, IrIndex index, int lanes)
{
    IrExpr *e = ir_vload(p, view, index, lanes);
    e->ivalue = 1;
    return e;
}

IrExpr *ir_vunpair(IrProgram *p, int vreg, int lanes)
{
    IrExpr *e = new_expr(p, IRE_VUNPAIR);
    e->a = ir_vref(p, vreg);
    e->lanes = lanes;
    return e;
}

IrExpr *ir_vpairs(IrProgram *p, int view, IrIndex index, int lanes)
{
    IrExpr *e = ir_vload(p, view, index, lanes);
    e->kind = IRE_VPAIRS;
    return e;
}

IrExpr *ir_vdot4(IrProgram *p, IrExpr *acc, int x, IrIndex index, int w, int lanes)
{
    IrExpr *e = new_expr(p, IRE_VDOT4);
    e->a = acc;
    e->view = x;
    e->index = index;
    e->b = ir_vref(p, w);
    e->lanes = lanes;
    return e;
}

IrExpr *ir_vdot4_pair(IrProgram *p, IrExpr *acc, int x, IrIndex index, int w, int lanes, int step)
{
    assert(step > 0 && step <= 4 && lanes % 2 == 0);
    IrExpr *e = ir_vdot4(p, acc, x, index, w, lanes);
    e->ivalue = step;
    p->pair_lanes |= (unsigned)lanes;
    return e;
}

void ir_vset(IrProgram *p, IrBlock *b, int vreg, ScalarMode mode, IrExpr *value)
{
    /* the C printer's load is a memcpy: a load to add goes through a vector of its own */
    assert(mode != SCALAR_ADD || value->kind != IRE_VLOAD);
    IrStmt *s = append(p, b, IRS_VSET);
    s->scalar = vreg;
    s->mode = mode;
    s->value = value;
}

void ir_vstore(IrProgram *p, IrBlock *b, int view, IrIndex index, int vreg)
{
    IrStmt *s = append(p, b, IRS_VSTORE);
    s->view = view;
    s->index = index;
    s->scalar = vreg;
}

/* ---- unrolling -----------------------------------------------------------
 * A copy of a subtree with one loop variable fixed to a constant.  Scalars
 * declared inside a copied body are renamed, so each copy has its own. */

/* Whether e reads view[index] (its view and index fields mean something). */
static bool expr_reads_view(const IrExpr *e)
{
    return e->kind == IRE_LOAD || e->kind == IRE_VLOAD || e->kind == IRE_VPAIRS ||
           e->kind == IRE_VDOT4;
}

typedef struct {
    IrProgram *p;
    IrFunc *f;
    int var;
    int64_t value;
    int *scalar_map; /* old scalar -> new, for those declared in the copy */
    int *vreg_map;   /* the same for vectors */
} Subst;

static IrIndex subst_index(const Subst *s, IrIndex ix)
{
    for (int i = 0; i < ix.n; i++)
        if (ix.t[i].var == s->var) {
            ix.c += ix.t[i].coef * s->value;
            ix.t[i] = ix.t[--ix.n];
            break;
        }
    return ix;
}

static IrExpr *subst_expr(const Subst *s, const IrExpr *e)
{
    if (!e)
        return NULL;
    IrExpr *copy = new_expr(s->p, e->kind);
    *copy = *e;
    if (expr_reads_view(e))
        copy->index = subst_index(s, e->index);
    if (e->kind == IRE_SCALAR)
        copy->scalar = s->scalar_map[e->scalar];
    if (e->kind == IRE_VREG || e->kind == IRE_VLANE)
        copy->scalar = s->vreg_map[e->scalar];
    copy->a = subst_expr(s, e->a);
    copy->b = subst_expr(s, e->b);
    copy->c = subst_expr(s, e->c);
    return copy;
}

static void subst_block(const Subst *s, const IrBlock *from, IrBlock *to);

static void subst_stmt(const Subst *s, const IrStmt *st, IrBlock *to)
{
    switch (st->kind) {
    case IRS_FOR: {
        IrStmt *loop = ir_for(s->p, to, st->var, st->lo, st->hi);
        loop->unroll = st->unroll;
        loop->to_batch = st->to_batch;
        loop->group = st->group;
        loop->batch_tail = st->batch_tail;
        loop->parallel = st->parallel;
        loop->collapse = st->collapse;
        loop->unroll_hint = st->unroll_hint;
        subst_block(s, &st->body, &loop->body);
        break;
    }
    case IRS_STORE:
        ir_store(s->p, to, st->view, subst_index(s, st->index), subst_expr(s, st->value),
                 st->accumulate);
        break;
    case IRS_SCALAR: {
        IrExpr *value = subst_expr(s, st->value); /* before a redeclared name */
        if (st->mode == SCALAR_DECLARE)
            s->scalar_map[st->scalar] = ir_typed_scalar(s->p, s->f, s->f->scalar_names[st->scalar],
                                                        s->f->scalar_types[st->scalar]);
        ir_set(s->p, to, s->scalar_map[st->scalar], st->mode, value);
        break;
    }
    case IRS_COMMENT: ir_comment(s->p, to, st->text); break;
    case IRS_VSET: {
        IrExpr *value = subst_expr(s, st->value);
        if (st->mode == SCALAR_DECLARE)
            s->vreg_map[st->scalar] =
                ir_typed_vreg(s->p, s->f, s->f->vreg_names[st->scalar],
                              s->f->vreg_lanes[st->scalar], s->f->vreg_types[st->scalar]);
        ir_vset(s->p, to, s->vreg_map[st->scalar], st->mode, value);
        break;
    }
    case IRS_VSTORE:
        ir_vstore(s->p, to, st->view, subst_index(s, st->index), s->vreg_map[st->scalar]);
        break;
    }
}

static void subst_block(const Subst *s, const IrBlock *from, IrBlock *to)
{
    for (int i = 0; i < from->count; i++)
        subst_stmt(s, from->items[i], to);
}

static void unroll_block(IrProgram *p, IrFunc *f, IrBlock *b, int max_trip)
{
    IrBlock out = {0};
    for (int i = 0; i < b->count; i++) {
        IrStmt *st = b->items[i];
        if (st->kind != IRS_FOR) {
            out.items = grow_array(&p->arena, out.items, out.count, &out.cap, sizeof *out.items);
            out.items[out.count++] = st;
            continue;
        }
        unroll_block(p, f, &st->body, max_trip);
        /* A loop of one iteration is never worth keeping. */
        if (st->to_batch || st->parallel ||
            ((!st->unroll || st->hi - st->lo > max_trip) && st->hi - st->lo != 1)) {
            out.items = grow_array(&p->arena, out.items, out.count, &out.cap, sizeof *out.items);
            out.items[out.count++] = st;
            continue;
        }
        for (int64_t v = st->lo; v < st->hi; v++) {
            int *map = xmalloc(((size_t)f->nscalars + 1) * sizeof *map);
            int *vmap = xmalloc(((size_t)f->nvregs + 1) * sizeof *vmap);
            for (int k = 0; k < f->nscalars; k++)
                map[k] = k;
            for (int k = 0; k < f->nvregs; k++)
                vmap[k] = k;
            Subst s = {p, f, st->var, v, map, vmap};
            subst_block(&s, &st->body, &out);
            free(map);
            free(vmap);
        }
    }
    *b = out;
}

void ir_unroll(IrProgram *p, int max_trip)
{
    for (int i = 0; i < p->nfuncs; i++)
        unroll_block(p, p->funcs[i], &p->funcs[i]->body, max_trip);
}

static void views_used_expr(const IrExpr *e, bool *used)
{
    if (!e)
        return;
    if (expr_reads_view(e))
        used[e->view] = true;
    views_used_expr(e->a, used);
    views_used_expr(e->b, used);
    views_used_expr(e->c, used);
}

/* Marks the views that b stores to, and (with reads) those it loads from. */
static void views_touched_block(const IrBlock *b, bool reads, bool *marks)
{
    for (int i = 0; i < b->count; i++) {
        const IrStmt *s = b->items[i];
        if (s->kind == IRS_FOR)
            views_touched_block(&s->body, reads, marks);
        if (s->kind == IRS_STORE || s->kind == IRS_VSTORE)
            marks[s->view] = true;
        if (reads)
            views_used_expr(s->value, marks);
    }
}

void ir_views_used(const IrFunc *f, bool *used)
{
    for (int i = 0; i < f->nviews; i++)
        used[i] = false;
    views_touched_block(&f->body, true, used);
}

void ir_views_written(const IrFunc *f, bool *written)
{
    for (int i = 0; i < f->nviews; i++)
        written[i] = false;
    views_touched_block(&f->body, false, written);
}

bool ir_has_phase(const IrProgram *p, IrPhase phase)
{
    for (int k = 0; k < p->nfuncs; k++)
        if (p->funcs[k]->phase == phase)
            return true;
    return false;
}

/* Whether some node of e is one `hit` accepts (with arg). */
static bool expr_any(const IrExpr *e, bool (*hit)(const IrExpr *e, int arg), int arg)
{
    return e && (hit(e, arg) || expr_any(e->a, hit, arg) || expr_any(e->b, hit, arg) ||
                 expr_any(e->c, hit, arg));
}

/* Whether some statement of b, through its loops, has such an expression
 * (or, with batch_loops, is a loop to the batch's n). */
static bool block_any(const IrBlock *b, bool batch_loops, bool (*hit)(const IrExpr *e, int arg),
                      int arg)
{
    for (int i = 0; i < b->count; i++) {
        const IrStmt *s = b->items[i];
        if ((s->kind == IRS_FOR &&
             ((batch_loops && s->to_batch) || block_any(&s->body, batch_loops, hit, arg))) ||
            expr_any(s->value, hit, arg))
            return true;
    }
    return false;
}

static bool is_batch_size(const IrExpr *e, int unused)
{
    (void)unused;
    return e->kind == IRE_BATCH;
}

bool ir_uses_batch_size(const IrBlock *b)
{
    return block_any(b, true, is_batch_size, 0);
}

static bool is_pairs(const IrExpr *e, int lanes)
{
    return e->kind == IRE_VPAIRS && e->lanes == lanes;
}

static bool program_any(const IrProgram *p, bool (*hit)(const IrExpr *e, int arg), int arg)
{
    for (int k = 0; k < p->nfuncs; k++)
        if (block_any(&p->funcs[k]->body, false, hit, arg))
            return true;
    return false;
}

bool ir_uses_pairs(const IrProgram *p, int lanes)
{
    return program_any(p, is_pairs, lanes);
}

static bool is_vector_relu(const IrExpr *e, int lanes)
{
    return e->kind == IRE_MAX && e->b->kind == IRE_VZERO && e->b->lanes == lanes;
}

bool ir_uses_vector_relu(const IrProgram *p, int lanes)
{
    return program_any(p, is_vector_relu, lanes);
}

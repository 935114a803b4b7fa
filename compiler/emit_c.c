/* emit_c.c - print the loop IR as C99: OUT.h (sizes, the API) and OUT.c
 * (the static arena, the parameters, one function per layer, predict).
 *
 * The output is meant to be read: a banner, a comment on every layer's
 * function naming its kind, name, source line and shapes, and one
 * public prefix.  It is deterministic: the same input gives the same
 * bytes.  Everything but the API is static.
 */
#include "emit_c.h"

#include <ctype.h>
#include <stdint.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

#ifndef CNNGEN_VERSION
#define CNNGEN_VERSION "0.1.0"
#endif

extern const char cnngen_embedded_predict_lines[];

/* One writer with an indent level, for every line of output. */
typedef struct {
    FILE *out;
    int indent;
    const char *prefix;       /* of symbols */
    const char *macro_prefix; /* of macros: the prefix in capitals */
    const char *suffix;       /* of the functions of one clone ("_avx2"), or "" */
    const char *target;       /* " PREFIX_TARGET_AVX2": a clone's attributes, or "" */
    bool inline_all;          /* EmitOptions.inline_all */
    bool profile;             /* EmitOptions.profile */
    bool timing;              /* printing a step whose calls are timed (train_batch) */
    int nlayers;              /* the model's: the profile's loss entry */
    const IrProgram *program; /* the functions being printed: an int8 one's types */
    /* A small model's inference functions write their multiply-adds out
     * with this macro (PREFIX_FMA, PREFIX_FMA_AVX2), or NULL: contraction
     * left to the compiler (emit_small_fma). */
    const char *fma;
    /* Printing a small model's samples in vector lanes (emit_small_layers):
     * the vector type of a value that varies from sample to sample
     * (PREFIX_lanes), or NULL; and the vector multiply-add macro. */
    const char *lanes;
    const char *lanes_fma;
} Writer;

/* The writer of a whole file (header or source), P the prefix in capitals.
 * (An int8 file's options never ask for inline_all or profile.) */
static Writer file_writer(FILE *out, const Model *m, const EmitOptions *o, const char *P)
{
    return (Writer){.out = out,
                    .prefix = o->prefix,
                    .macro_prefix = P,
                    .suffix = "",
                    .target = "",
                    .inline_all = o->inline_all,
                    .profile = o->profile,
                    .nlayers = m->nlayers};
}

static const char *c_type(IrType t)
{
    return t == IR_I8 ? "int8_t" : t == IR_U8 ? "uint8_t" : t == IR_I32 ? "int32_t" : "float";
}

static void line(Writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(Writer *w, const char *fmt, ...)
{
    if (*fmt)
        for (int i = 0; i < w->indent; i++)
            fputs("    ", w->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(w->out, fmt, ap);
    va_end(ap);
    fputc('\n', w->out);
}

static void blank(Writer *w)
{
    fputc('\n', w->out);
}

/* A float that reads back as the same float, as a C constant. */
static void format_float(char buf[48], float v)
{
    if (isinf(v)) {
        snprintf(buf, 48, v < 0 ? "-INFINITY" : "INFINITY");
        return;
    }
    snprintf(buf, 48, "%.9g", (double)v);
    if (!strpbrk(buf, ".en"))
        strcat(buf, ".0");
    strcat(buf, "f");
}

static char *upper(const char *s)
{
    char *u = xstrdup(s);
    for (char *c = u; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return u;
}

/* ---- expressions ---------------------------------------------------------- */

typedef struct {
    Writer *w;
    const IrFunc *f;
    StrBuf *b;
} ExprCtx;

/* c + sum(coef * var), outer loop variables first: "896*oh + 32*ow + ci - 29".
 * (A per-sample function's views point at its sample already.) */
static void print_index(ExprCtx *x, const IrIndex *ix)
{
    bool first = true;
    for (int v = 0; v < x->f->nvars; v++)
        for (int i = 0; i < ix->n; i++) {
            if (ix->t[i].var != v)
                continue;
            int64_t coef = ix->t[i].coef, mag = coef < 0 ? -coef : coef;
            if (!first)
                strbuf_printf(x->b, coef < 0 ? " - " : " + ");
            else if (coef < 0)
                strbuf_printf(x->b, "-");
            if (mag != 1)
                strbuf_printf(x->b, "%lld*", (long long)mag);
            strbuf_printf(x->b, "%s", x->f->var_names[v]);
            first = false;
        }
    if (first)
        strbuf_printf(x->b, "%lld", (long long)ix->c);
    else if (ix->c != 0)
        strbuf_printf(x->b, " %c %lld", ix->c < 0 ? '-' : '+',
                      (long long)(ix->c < 0 ? -ix->c : ix->c));
}

static void print_expr(ExprCtx *x, const IrExpr *e);

/* Printing samples in lanes: whether e varies from sample to sample (it
 * reads an activation or a temporary: a vector), or is the same in every
 * lane (constants and parameters: a float). */
static bool lanes_value(const ExprCtx *x, const IrExpr *e)
{
    if (!x->w->lanes || !e)
        return false;
    switch (e->kind) {
    case IRE_LOAD: return x->f->views[e->view].base != VIEW_PARAMS;
    case IRE_SCALAR: return true;
    case IRE_CONST: return false;
    default: return lanes_value(x, e->a) || lanes_value(x, e->b) || lanes_value(x, e->c);
    }
}

/* e as a vector of lanes: a float broadcast to every lane. */
static void print_lanes_operand(ExprCtx *x, const IrExpr *e)
{
    if (lanes_value(x, e)) {
        print_expr(x, e);
        return;
    }
    strbuf_printf(x->b, "%s_SPLAT(", x->w->macro_prefix);
    print_expr(x, e);
    strbuf_printf(x->b, ")");
}

/* a * b + c, fused or not as the macro of the version says, never as
 * the compiler chooses (emit_small_fma); in lanes, a vector's. */
static void print_fma(ExprCtx *x, const IrExpr *a, const IrExpr *b, const IrExpr *c)
{
    bool lanes = lanes_value(x, a) || lanes_value(x, b) || lanes_value(x, c);
    const IrExpr *operands[3] = {a, b, c};
    strbuf_printf(x->b, "%s(", lanes ? x->w->lanes_fma : x->w->fma);
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            strbuf_printf(x->b, ", ");
        if (lanes)
            print_lanes_operand(x, operands[i]);
        else
            print_expr(x, operands[i]);
    }
    strbuf_printf(x->b, ")");
}

/* (a OP b ? then : otherwise) in lanes, b NULL for zero: a compare and
 * a mask (GNU C has no vector ?: in C), the same bits lane by lane. */
static void print_lanes_pick(ExprCtx *x, const IrExpr *a, const char *op, const IrExpr *b,
                             const IrExpr *then, const IrExpr *otherwise)
{
    const char *P = x->w->macro_prefix;
    strbuf_printf(x->b, "%s_LANES_PICK(", P);
    print_lanes_operand(x, a);
    strbuf_printf(x->b, " %s ", op);
    if (b)
        print_lanes_operand(x, b);
    else
        strbuf_printf(x->b, "%s_SPLAT(0.0f)", P);
    strbuf_printf(x->b, ", ");
    print_lanes_operand(x, then);
    strbuf_printf(x->b, ", ");
    print_lanes_operand(x, otherwise);
    strbuf_printf(x->b, ")");
}

static void print_binary(ExprCtx *x, const char *op, const IrExpr *e)
{
    strbuf_printf(x->b, "(");
    print_expr(x, e->a);
    strbuf_printf(x->b, " %s ", op);
    print_expr(x, e->b);
    strbuf_printf(x->b, ")");
}

static void print_call(ExprCtx *x, const char *fn, const IrExpr *e)
{
    if (lanes_value(x, e->a)) /* the function lane by lane */
        strbuf_printf(x->b, "%s_LANES_MAP(%s, ", x->w->macro_prefix, fn);
    else
        strbuf_printf(x->b, "%s(", fn);
    print_expr(x, e->a);
    strbuf_printf(x->b, ")");
}

/* (a OP b ? then : otherwise), b NULL for zero. */
static void print_conditional(ExprCtx *x, const IrExpr *a, const char *op, const IrExpr *b,
                              const IrExpr *then, const IrExpr *otherwise)
{
    strbuf_printf(x->b, "(");
    print_expr(x, a);
    strbuf_printf(x->b, " %s ", op);
    if (b)
        print_expr(x, b);
    else
        strbuf_printf(x->b, "0.0f");
    strbuf_printf(x->b, " ? ");
    print_expr(x, then);
    strbuf_printf(x->b, " : ");
    print_expr(x, otherwise);
    strbuf_printf(x->b, ")");
}

/* The lanes of an int32 vector expression (an int8 program's kernels);
 * 0 for anything else. */
static int int_vector_lanes(const IrFunc *f, const IrExpr *e)
{
    switch (e->kind) {
    case IRE_VREG: return f->vreg_types[e->scalar] == IR_I32 ? f->vreg_lanes[e->scalar] : 0;
    case IRE_VDOT4: return e->lanes;
    case IRE_REQUANT:
    case IRE_ADD:
    case IRE_SUB:
    case IRE_MAX:
    case IRE_MIN: return int_vector_lanes(f, e->a);
    default: return 0;
    }
}

/* A vector temporary's C type: PREFIX_vecN of floats, PREFIX_i32xN and
 * PREFIX_i8xN of an int8 program's kernels. */
static void print_vreg_type(StrBuf *b, const Writer *w, const IrFunc *f, int v)
{
    IrType t = f->vreg_types[v];
    strbuf_printf(b, "%s_%s%d", w->prefix,
                  t == IR_F32   ? "vec"
                  : t == IR_I32 ? "i32x"
                                : "i8x",
                  f->vreg_lanes[v]);
}

static void print_expr(ExprCtx *x, const IrExpr *e)
{
    char buf[48];
    switch (e->kind) {
    case IRE_CONST:
        format_float(buf, e->value);
        strbuf_printf(x->b, "%s", buf);
        break;
    case IRE_LOAD:
        strbuf_printf(x->b, "%s[", x->f->views[e->view].name);
        print_index(x, &e->index);
        strbuf_printf(x->b, "]");
        break;
    case IRE_SCALAR: strbuf_printf(x->b, "%s%d", x->f->scalar_names[e->scalar], e->scalar); break;
    case IRE_ADD:
        if (x->w->fma && e->a->kind == IRE_MUL)
            print_fma(x, e->a->a, e->a->b, e->b);
        else if (x->w->fma && e->b->kind == IRE_MUL)
            print_fma(x, e->b->a, e->b->b, e->a);
        else
            print_binary(x, "+", e);
        break;
    case IRE_SUB: print_binary(x, "-", e); break;
    case IRE_MUL: print_binary(x, "*", e); break;
    case IRE_DIV: print_binary(x, "/", e); break;
    case IRE_MAX:
    case IRE_MIN:
        if (e->a->kind == IRE_VREG && x->f->vreg_types[e->a->scalar] == IR_I8) { /* int8 vectors */
            strbuf_printf(x->b, "%s_v%s8x%d%s(", x->w->prefix, e->kind == IRE_MAX ? "max" : "min",
                          x->f->vreg_lanes[e->a->scalar], x->w->suffix);
            print_expr(x, e->a);
            strbuf_printf(x->b, ", ");
            print_expr(x, e->b);
            strbuf_printf(x->b, ")");
            break;
        }
        if (int_vector_lanes(x->f, e)) { /* int32 vectors, or one and a constant */
            strbuf_printf(x->b, "%s_v%s%s%d%s(", x->w->prefix, e->kind == IRE_MAX ? "max" : "min",
                          int_vector_lanes(x->f, e->b) ? "v" : "", int_vector_lanes(x->f, e),
                          x->w->suffix);
            print_expr(x, e->a);
            strbuf_printf(x->b, ", ");
            print_expr(x, e->b);
            strbuf_printf(x->b, ")");
            break;
        }
        if (ir_expr_is_int(x->f, e)) { /* a function: each operand printed once */
            strbuf_printf(x->b, "%s_%s32(", x->w->prefix, e->kind == IRE_MAX ? "max" : "min");
            print_expr(x, e->a);
            strbuf_printf(x->b, ", ");
            print_expr(x, e->b);
            strbuf_printf(x->b, ")");
            break;
        }
        if (lanes_value(x, e)) {
            print_lanes_pick(x, e->a, e->kind == IRE_MAX ? ">" : "<", e->b, e->a, e->b);
            break;
        }
        if (e->kind == IRE_MAX && e->b->kind == IRE_VZERO) { /* relu of a float vector */
            strbuf_printf(x->b, "%s_RELU%d(", x->w->macro_prefix, e->b->lanes);
            print_expr(x, e->a);
            strbuf_printf(x->b, ")");
            break;
        }
        /* a > b ? a : b: what a vector max instruction computes. */
        print_conditional(x, e->a, e->kind == IRE_MAX ? ">" : "<", e->b, e->a, e->b);
        break;
    case IRE_NEG:
        strbuf_printf(x->b, "-");
        print_expr(x, e->a);
        break;
    case IRE_EXP: print_call(x, "expf", e); break;
    case IRE_TANH: print_call(x, "tanhf", e); break;
    case IRE_SQRT: print_call(x, "sqrtf", e); break;
    case IRE_LOG: print_call(x, "logf", e); break;
    case IRE_BATCH: strbuf_printf(x->b, "(float)n"); break;
    case IRE_VREG: strbuf_printf(x->b, "%s%d", x->f->vreg_names[e->scalar], e->scalar); break;
    case IRE_VLANE: /* GNU C vectors take subscripts */
        strbuf_printf(x->b, "%s%d[%lld]", x->f->vreg_names[e->scalar], e->scalar,
                      (long long)e->index.c);
        break;
    case IRE_VZERO:
        strbuf_printf(x->b, e->ivalue ? "(%s_i32x%d){0}" : "(%s_vec%d){0}", x->w->prefix, e->lanes);
        break;
    case IRE_VLOAD: unreachable(); /* only as the value of a vector assignment */
    case IRE_VPAIRS:
        strbuf_printf(x->b, "%s_PAIRS%d(%s + ", x->w->macro_prefix, e->lanes,
                      x->f->views[e->view].name);
        print_index(x, &e->index);
        strbuf_printf(x->b, ")");
        break;
    case IRE_VUNPAIR:
        strbuf_printf(x->b, "%s_UNPAIR%d(", x->w->macro_prefix, e->lanes);
        print_expr(x, e->a);
        strbuf_printf(x->b, ")");
        break;
    case IRE_SELECT_POS:
        if (lanes_value(x, e)) {
            print_lanes_pick(x, e->a, ">", NULL, e->b, e->c);
        } else if (ir_expr_is_int(x->f, e->a)) {
            IrExpr zero = {.kind = IRE_ICONST};
            print_conditional(x, e->a, ">", &zero, e->b, e->c);
        } else {
            print_conditional(x, e->a, ">", NULL, e->b, e->c);
        }
        break;
    case IRE_ICONST:
        if (e->ivalue == INT32_MIN)
            strbuf_printf(x->b, "(-2147483647 - 1)");
        else
            strbuf_printf(x->b, e->ivalue < 0 ? "(%ld)" : "%ld", (long)e->ivalue);
        break;
    case IRE_VDOT4:
        strbuf_printf(x->b, "%s_dot4x%d%s%s(", x->w->prefix, e->lanes, e->ivalue ? "p" : "",
                      x->w->suffix);
        print_expr(x, e->a);
        strbuf_printf(x->b, ", %s + ", x->f->views[e->view].name);
        print_index(x, &e->index);
        strbuf_printf(x->b, ", ");
        print_expr(x, e->b);
        if (e->ivalue)
            strbuf_printf(x->b, ", %d", (int)e->ivalue);
        strbuf_printf(x->b, ")");
        break;
    case IRE_REQUANT:
        if (int_vector_lanes(x->f, e)) /* shifts right only, or either way */
            strbuf_printf(x->b, "%s_vrequant%s%d%s(", x->w->prefix, e->ivalue ? "_right" : "",
                          int_vector_lanes(x->f, e), x->w->suffix);
        else
            strbuf_printf(x->b, "%s_requantize(", x->w->prefix);
        print_expr(x, e->a);
        strbuf_printf(x->b, ", ");
        print_expr(x, e->b);
        strbuf_printf(x->b, ", ");
        print_expr(x, e->c);
        strbuf_printf(x->b, ")");
        break;
    }
}

/* ---- statements ----------------------------------------------------------- */

static void print_block(Writer *w, const IrFunc *f, const IrBlock *b);

/* " = value" or " += value" into target (a store's or a scalar's): a
 * product added is a multiply-add where they are written out, and in
 * lanes a float is broadcast. */
static void print_assigned(ExprCtx *x, const IrExpr *target, bool accumulate, const IrExpr *value)
{
    if (accumulate && x->w->fma && value->kind == IRE_MUL) {
        strbuf_printf(x->b, " = ");
        print_fma(x, value->a, value->b, target);
        return;
    }
    strbuf_printf(x->b, " %s ", accumulate ? "+=" : "=");
    if (x->w->lanes)
        print_lanes_operand(x, value);
    else
        print_expr(x, value);
}

/* A loop to the batch's n: over it, its whole groups, or what they leave. */
static void print_batch_loop(Writer *w, const IrFunc *f, const IrStmt *s)
{
    const char *v = f->var_names[s->var];
    long long g = (long long)s->group;
    if (s->batch_tail)
        line(w, "for (int %s = n / %lld * %lld; %s < n; %s++) {", v, g, g, v, v);
    else if (g > 1)
        line(w, "for (int %s = 0; %s < n / %lld; %s++) {", v, v, g, v);
    else
        line(w, "for (int %s = 0; %s < n; %s++) {", v, v, v);
}

static void print_stmt(Writer *w, const IrFunc *f, const IrStmt *s)
{
    StrBuf b = {0};
    ExprCtx x = {w, f, &b};
    switch (s->kind) {
    case IRS_FOR:
        if (s->parallel)
            line(w, "%s_PARALLEL_FOR%s", w->macro_prefix, s->collapse ? "2" : "");
        if (s->unroll_hint && s->hi - s->lo > 4)
            line(w, "%s_UNROLL4", w->macro_prefix);
        if (s->to_batch)
            print_batch_loop(w, f, s);
        else
            line(w, "for (int %s = %lld; %s < %lld; %s++) {", f->var_names[s->var],
                 (long long)s->lo, f->var_names[s->var], (long long)s->hi, f->var_names[s->var]);
        w->indent++;
        print_block(w, f, &s->body);
        w->indent--;
        line(w, "}");
        break;
    case IRS_STORE: {
        IrExpr target = {.kind = IRE_LOAD, .view = s->view, .index = s->index};
        strbuf_printf(&b, "%s[", f->views[s->view].name);
        print_index(&x, &s->index);
        strbuf_printf(&b, "]");
        print_assigned(&x, &target, s->accumulate, s->value);
        line(w, "%s;", b.data);
        break;
    }
    case IRS_SCALAR: {
        IrExpr target = {.kind = IRE_SCALAR, .scalar = s->scalar};
        const char *type = w->lanes ? w->lanes : c_type(f->scalar_types[s->scalar]);
        strbuf_printf(&b, "%s%s%s%d", s->mode == SCALAR_DECLARE ? type : "",
                      s->mode == SCALAR_DECLARE ? " " : "", f->scalar_names[s->scalar], s->scalar);
        print_assigned(&x, &target, s->mode == SCALAR_ADD, s->value);
        line(w, "%s;", b.data);
        break;
    }
    case IRS_COMMENT: line(w, "/* %s */", s->text); break;
    case IRS_VSET: {
        const char *name = f->vreg_names[s->scalar];
        if (s->value->kind == IRE_VLOAD && s->value->ivalue) { /* the half twice */
            if (s->mode == SCALAR_DECLARE)
                print_vreg_type(&b, w, f, s->scalar);
            int bits = f->vreg_lanes[s->scalar] * (f->vreg_types[s->scalar] == IR_I32 ? 32 : 8);
            strbuf_printf(&b, "%s%s%d = (", s->mode == SCALAR_DECLARE ? " " : "", name, s->scalar);
            print_vreg_type(&b, w, f, s->scalar);
            strbuf_printf(&b, ")%s_twice%d%s(%s + ", w->prefix, bits, w->suffix,
                          f->views[s->value->view].name);
            print_index(&x, &s->value->index);
            line(w, "%s);", b.data);
            break;
        }
        if (s->value->kind == IRE_VLOAD) {
            /* memcpy: an unaligned load with no aliasing question */
            if (s->mode == SCALAR_DECLARE) {
                print_vreg_type(&b, w, f, s->scalar);
                line(w, "%s %s%d;", b.data, name, s->scalar);
                b.len = 0;
            }
            strbuf_printf(&b, "memcpy(&%s%d, %s + ", name, s->scalar,
                          f->views[s->value->view].name);
            print_index(&x, &s->value->index);
            line(w, "%s, sizeof %s%d);", b.data, name, s->scalar);
            break;
        }
        if (s->mode == SCALAR_DECLARE) {
            print_vreg_type(&b, w, f, s->scalar);
            strbuf_printf(&b, " ");
        }
        strbuf_printf(&b, "%s%d %s ", name, s->scalar, s->mode == SCALAR_ADD ? "+=" : "=");
        print_expr(&x, s->value);
        line(w, "%s;", b.data);
        break;
    }
    case IRS_VSTORE:
        if (f->views[s->view].type == IR_I8 && f->vreg_types[s->scalar] == IR_I32) {
            /* int32 lanes (clamped) narrowed to int8 */
            strbuf_printf(&b, "%s_store8x%d%s(%s + ", w->prefix, f->vreg_lanes[s->scalar],
                          w->suffix, f->views[s->view].name);
            print_index(&x, &s->index);
            line(w, "%s, %s%d);", b.data, f->vreg_names[s->scalar], s->scalar);
            break;
        }
        strbuf_printf(&b, "memcpy(%s + ", f->views[s->view].name);
        print_index(&x, &s->index);
        line(w, "%s, &%s%d, sizeof %s%d);", b.data, f->vreg_names[s->scalar], s->scalar,
             f->vreg_names[s->scalar], s->scalar);
        break;
    }
    strbuf_free(&b);
}

static void print_block(Writer *w, const IrFunc *f, const IrBlock *b)
{
    for (int i = 0; i < b->count; i++)
        print_stmt(w, f, b->items[i]);
}

static char *joined(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = xmalloc(na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

/* A view's elements in C: in lanes, an activation's are vectors. */
static const char *view_type(const Writer *w, const IrView *v)
{
    return w->lanes && v->base != VIEW_PARAMS ? w->lanes : c_type(v->type);
}

/* "base + offset".  Training functions get the training arena and the
 * parameters as arguments. */
static void print_view_pointer(Writer *w, const IrView *v, const char *qual, const char *base)
{
    line(w, "%s%s *restrict %s = %s + %lld;", qual, view_type(w, v), v->name, base,
         (long long)v->offset);
}

/* An int8 program's constants: the int8 kernels, and the int32 biases,
 * multipliers and shifts. */
static const char *params_array(const IrView *v)
{
    return v->type == IR_I8 ? "_qweights" : v->type == IR_I32 ? "_qconsts" : "_params";
}

static bool is_inference(const IrFunc *f)
{
    return f->phase == PHASE_PREDICT || f->phase == PHASE_PREDICT_BLOCK;
}

static void print_views(Writer *w, const IrFunc *f)
{
    bool inference = is_inference(f);
    bool uses_input = false, uses_output = false, uses_target = false, uses_train = false,
         uses_params = false, uses_arena = false;
    bool *used = xcalloc((size_t)f->nviews + 1, sizeof *used);
    ir_views_used(f, used);
    for (int i = 0; i < f->nviews; i++) {
        const IrView *v = &f->views[i];
        if (!used[i])
            continue;
        char *params = joined(w->prefix, params_array(v));
        const char *qual = v->written ? "" : "const ";
        uses_train |= v->base == VIEW_TRAIN;
        uses_params |= v->base == VIEW_PARAMS;
        switch (v->base) {
        case VIEW_INPUT:
            uses_input = true;
            print_view_pointer(w, v, "const ", "input");
            break;
        case VIEW_OUTPUT:
            uses_output = true;
            line(w, "%s%s *restrict %s = output;", qual, view_type(w, v), v->name);
            break;
        case VIEW_ARENA:
            uses_arena = true;
            print_view_pointer(w, v, qual, "arena");
            break;
        case VIEW_PARAMS: print_view_pointer(w, v, qual, inference ? params : "params"); break;
        case VIEW_PACKED: {
            char *packed = joined(w->prefix, v->type == IR_I8 ? "_qpacked" : "_qvbias");
            print_view_pointer(w, v, qual, packed);
            free(packed);
            break;
        }
        case VIEW_TRAIN: print_view_pointer(w, v, qual, "train"); break;
        case VIEW_TARGET:
            uses_target = true;
            print_view_pointer(w, v, "const ", "target");
            break;
        case VIEW_LOCAL:
            line(w, "%s %s[%lld];", view_type(w, v), v->name, (long long)(v->size ? v->size : 1));
            break;
        }
        free(params);
    }
    free(used);
    if (!uses_input)
        line(w, "(void)input;");
    if (inference && !uses_output)
        line(w, "(void)output;");
    if (inference && !uses_arena)
        line(w, "(void)arena;");
    if (!inference && !uses_target)
        line(w, "(void)target;");
    if (!inference && !uses_train)
        line(w, "(void)train;");
    if (!inference && !uses_params)
        line(w, "(void)params;");
}

/* Whether any function holds a vector of `lanes` floats. */
static bool uses_lanes(const IrProgram *p, int lanes)
{
    for (int i = 0; i < p->nfuncs; i++)
        for (int v = 0; v < p->funcs[i]->nvregs; v++)
            if (p->funcs[i]->vreg_lanes[v] == lanes)
                return true;
    return false;
}

static const char *view_base_name(const IrView *v)
{
    switch (v->base) {
    case VIEW_INPUT: return "input";
    case VIEW_TARGET: return "target";
    case VIEW_TRAIN: return "train";
    default: return "params";
    }
}

/* A per-sample training function is printed as a function of one sample,
 * whose views are its arguments, and a loop that calls it for each
 * sample with the views moved there.  The body then reads like the
 * inference code, and compilers treat it as they treat that (clang 14
 * spends minutes on large loop nests inside a loop over the samples). */
static void print_per_sample_function(Writer *w, const IrFunc *f)
{
    bool *used = xcalloc((size_t)f->nviews + 1, sizeof *used);
    ir_views_used(f, used);
    if (f->comment)
        line(w, "/* %s: one sample */", f->comment);
    line(w, "%s_STEP%s void %s_%s%s_sample(", w->macro_prefix, w->target, w->prefix, f->name,
         w->suffix);
    for (int i = 0; i < f->nviews; i++)
        if (used[i] && f->views[i].base != VIEW_LOCAL)
            line(w, "    %sfloat *restrict %s,",
                 f->views[i].written && f->views[i].base != VIEW_INPUT &&
                         f->views[i].base != VIEW_TARGET
                     ? ""
                     : "const ",
                 f->views[i].name);
    line(w, "    int n)");
    line(w, "{");
    w->indent++;
    if (!ir_uses_batch_size(&f->body))
        line(w, "(void)n;");
    for (int i = 0; i < f->nviews; i++)
        if (used[i] && f->views[i].base == VIEW_LOCAL)
            line(w, "float %s[%lld];", f->views[i].name,
                 (long long)(f->views[i].size ? f->views[i].size : 1));
    print_block(w, f, &f->body);
    w->indent--;
    line(w, "}");
    blank(w);

    line(w, "%s_STEP%s void %s_%s%s(float *restrict train, float *restrict params,",
         w->macro_prefix, w->target, w->prefix, f->name, w->suffix);
    line(w, "    const float *restrict input, const float *restrict target, int n)");
    line(w, "{");
    w->indent++;
    static const char *const bases[] = {"train", "params", "input", "target"};
    for (int k = 0; k < 4; k++) {
        bool any = false;
        for (int i = 0; i < f->nviews; i++)
            any |= used[i] && f->views[i].base != VIEW_LOCAL &&
                   strcmp(view_base_name(&f->views[i]), bases[k]) == 0;
        if (!any)
            line(w, "(void)%s;", bases[k]);
    }
    /* Samples in parallel when no sample writes what another reads or
     * writes (no shared sums): the result is the same for any number of
     * threads. */
    bool shared_writes = false;
    bool *written = xcalloc((size_t)f->nviews + 1, sizeof *written);
    ir_views_written(f, written);
    for (int i = 0; i < f->nviews; i++)
        shared_writes |=
            written[i] && f->views[i].base != VIEW_LOCAL && f->views[i].sample_stride == 0;
    free(written);
    if (!shared_writes)
        line(w, "%s_PARALLEL_FOR", w->macro_prefix);
    line(w, "for (int s = 0; s < n; s++)");
    StrBuf b = {0};
    strbuf_printf(&b, "    %s_%s%s_sample(", w->prefix, f->name, w->suffix);
    for (int i = 0; i < f->nviews; i++) {
        const IrView *v = &f->views[i];
        if (!used[i] || v->base == VIEW_LOCAL)
            continue;
        strbuf_printf(&b, "%s + %lld", view_base_name(v), (long long)v->offset);
        if (v->sample_stride)
            strbuf_printf(&b, " + (size_t)s * %lld", (long long)v->sample_stride);
        strbuf_printf(&b, ", ");
    }
    strbuf_printf(&b, "n);");
    line(w, "%s", b.data);
    strbuf_free(&b);
    w->indent--;
    line(w, "}");
    blank(w);
    free(used);
}

static void print_function(Writer *w, const IrFunc *f)
{
    if (f->per_sample) {
        print_per_sample_function(w, f);
        return;
    }
    if (f->comment)
        line(w, "/* %s */", f->comment);
    bool q = w->program && w->program->quantized;
    const char *value = w->lanes ? w->lanes : q ? "int8_t" : "float";
    if (is_inference(f))
        line(w,
             "%s_LAYER%s void %s_%s%s(const %s *restrict input, %s *restrict output, "
             "%s *restrict arena%s)",
             w->macro_prefix, w->target, w->prefix, f->name, w->suffix, value,
             q ? c_type(w->program->output_type) : value, value,
             f->phase == PHASE_PREDICT_BLOCK ? ", int n" : "");
    else
        line(w, "%s_STEP%s void %s_%s%s(float *restrict train, float *restrict params,",
             w->macro_prefix, w->target, w->prefix, f->name, w->suffix);
    if (!is_inference(f))
        line(w, "    const float *restrict input, const float *restrict target, int n)");
    line(w, "{");
    w->indent++;
    if (f->phase != PHASE_PREDICT && !ir_uses_batch_size(&f->body))
        line(w, "(void)n;");
    print_views(w, f);
    print_block(w, f, &f->body);
    w->indent--;
    line(w, "}");
    blank(w);
}

/* ---- the files ------------------------------------------------------------ */

static void banner(Writer *w, const Model *m, const EmitOptions *o)
{
    line(w, "/* Generated by cnngen %s from %s; do not edit.", CNNGEN_VERSION, m->filename);
    line(w, " * %s", o->command_line);
    long long in = shape_size(&m->input), out = shape_size(model_output_shape(m));
    long long params = m->param_floats;
    line(w, " * Model %s: %lld input float%s, %lld output float%s, %lld parameter%s. */", m->name,
         in, in == 1 ? "" : "s", out, out == 1 ? "" : "s", params, params == 1 ? "" : "s");
}

/* Targets per sample: class indices per position for crossentropy, else
 * one per output value. */
static int64_t target_size(const Model *m)
{
    const Shape *out = model_output_shape(m);
    int64_t size = shape_size(out);
    if (m->train.loss == LOSS_CROSSENTROPY)
        return size / out->dim[out->rank - 1];
    return size;
}

static void emit_c_header_q(FILE *out, const Model *m, const EmitOptions *o);
static void emit_c_source_q(FILE *out, const Model *m, const IrProgram *programs, int nprograms,
                            const EmitOptions *o);

/* OUT.h's first lines: the banner, the include guard, stddef.h. */
static void open_header(Writer *w, const Model *m, const EmitOptions *o)
{
    banner(w, m, o);
    line(w, "#ifndef CNNGEN_%s_H", w->macro_prefix);
    line(w, "#define CNNGEN_%s_H", w->macro_prefix);
    blank(w);
    line(w, "#include <stddef.h>");
}

static void extern_c(Writer *w, bool open)
{
    line(w, "#ifdef __cplusplus");
    line(w, open ? "extern \"C\" {" : "}");
    line(w, "#endif");
    blank(w);
}

/* OUT.c's first lines: the banner, OUT.h (or, written to stdout, its
 * text), the C library's headers. */
static void open_source(Writer *w, const Model *m, const EmitOptions *o)
{
    banner(w, m, o);
    blank(w);
    if (o->header_name)
        line(w, "#include \"%s\"", o->header_name);
    else
        emit_c_header(w->out, m, o);
    blank(w);
    line(w, "#include <math.h>");
    line(w, "#include <stdio.h>");
    line(w, "#include <stdlib.h>");
    line(w, "#include <string.h>");
}

void emit_c_header(FILE *out, const Model *m, const EmitOptions *o)
{
    if (o->qplan) {
        emit_c_header_q(out, m, o);
        return;
    }
    char *P = upper(o->prefix);
    Writer w = file_writer(out, m, o, P);
    open_header(&w, m, o);
    if (o->profile)
        line(&w, "#include <stdio.h>");
    blank(&w);
    line(&w, "#define %s_INPUT_SIZE %lld   /* floats per sample, channels-last */", P,
         (long long)shape_size(&m->input));
    line(&w, "#define %s_OUTPUT_SIZE %lld", P, (long long)shape_size(model_output_shape(m)));
    line(&w, "#define %s_PARAM_COUNT %lld", P, (long long)m->param_floats);
    line(&w, "#define %s_TENSOR_COUNT %lld", P, (long long)m->nparams);
    line(&w, "#define %s_ARENA_FLOATS %lld   /* static activation memory */", P,
         (long long)m->arena_floats);
    line(&w, "#define %s_PARAM_BYTES (4 * %s_PARAM_COUNT)", P, P);
    line(&w, "#define %s_ARENA_BYTES (4 * %s_ARENA_FLOATS)", P, P);
    line(&w, "#define %s_WORKSPACE_BYTES (4 * %s_ARENA_FLOATS + 4)   /* for predict_ws */", P, P);
    if (emit_includes_training(m, o)) {
        const TrainPlan *tp = &m->tp;
        line(&w, "#define %s_TRAIN_BATCH %lld   /* samples per training step, at most */", P,
             (long long)tp->batch);
        line(&w, "#define %s_TARGET_SIZE %lld   /* target floats per sample */", P,
             (long long)target_size(m));
        line(&w, "#define %s_TRAIN_FLOATS %lld   /* static training memory: */", P,
             (long long)tp->floats);
        line(&w, "#define %s_TRAIN_ACTIVATION_FLOATS %lld   /* saved activations */", P,
             (long long)tp->activation_floats);
        line(&w, "#define %s_TRAIN_GRADIENT_FLOATS %lld   /* gradients */", P,
             (long long)tp->gradient_floats);
        line(&w, "#define %s_TRAIN_STATE_FLOATS %lld   /* optimizer state */", P,
             (long long)tp->state_floats);
        line(&w, "#define %s_TRAIN_BYTES (4 * %s_TRAIN_FLOATS)", P, P);
    }
    blank(&w);
    extern_c(&w, true);
    line(&w, "/* One sample: INPUT_SIZE floats in, OUTPUT_SIZE floats out. */");
    line(&w, "void %s_predict(const float *input, float *output);", o->prefix);
    line(&w, "/* The same through a workspace of WORKSPACE_BYTES, aligned for float, that");
    line(&w, " * nothing else uses meanwhile: any number of threads may predict at once,");
    line(&w, " * each with its own (predict uses one static workspace). */");
    line(&w, "void %s_predict_ws(void *workspace, const float *input, float *output);", o->prefix);
    line(&w, "/* n samples, each bit for bit as predict computes it, on OpenMP's threads");
    line(&w, " * with -fopenmp.  Dense layers with large kernels take a block of up to 64");
    line(&w, " * samples at once (their weights read once per block; the block's arenas");
    line(&w, " * are static).  One call at a time: threads predict with predict_ws. */");
    line(&w, "void %s_predict_batch(const float *input, float *output, int n);", o->prefix);
    line(&w, "/* The code in use: \"avx512\", \"avx2\", \"generic\" (4-float vectors) or");
    line(&w, " * \"scalar\", chosen once from the CPU (the environment's CNNGEN_ISA may");
    line(&w, " * name another that it runs); \"inline\" for a small model (one version,");
    line(&w, " * every layer inlined); \"fixed\" when built with --vector-width N,");
    line(&w, " * \"llvm\" from --emit=obj. */");
    line(&w, "const char *%s_isa(void);", o->prefix);
    blank(&w);
    line(&w, "/* A weights tensor: its name in safetensors files, shape, and offset in the");
    line(&w, " * parameter block (model order, channels-last). */");
    line(&w, "typedef struct {");
    line(&w, "    const char *name;");
    line(&w, "    int rank;");
    line(&w, "    int shape[5];");
    line(&w, "    long offset;");
    line(&w, "    int trainable;");
    line(&w, "} %s_tensor;", o->prefix);
    line(&w, "extern const %s_tensor %s_tensors[%s_TENSOR_COUNT + 1];", o->prefix, o->prefix, P);
    if (!o->weights) {
        blank(&w);
        line(&w, "/* The parameter block, PARAM_COUNT floats, to read or fill in place. */");
        line(&w, "float *%s_params_data(void);", o->prefix);
        line(&w, "/* Load weights from a safetensors file (needs the cnnrt runtime).  Returns 0,");
        line(&w, " * or -1 with a message in error; nothing is changed on failure. */");
        line(&w, "int %s_load_weights(const char *path, char *error, size_t error_size);",
             o->prefix);
        line(&w, "/* Starting weights: the literal ones of the model, the init rules for the");
        line(&w, " * rest, from seed (needs the cnnrt runtime). */");
        line(&w, "void %s_init_params(unsigned long long seed);", o->prefix);
    }
    if (emit_includes_training(m, o)) {
        blank(&w);
        line(&w, "/* Training, by the model's train block.  start_training resets the optimizer");
        line(&w, " * state and seeds dropout; each step takes n <= TRAIN_BATCH samples (inputs,");
        line(&w, " * and TARGET_SIZE targets each: output values, or class indices for");
        line(&w, " * crossentropy), writes the outputs before the update to output, updates the");
        line(&w, " * parameters and returns the batch's mean loss.  eval_batch is the same at");
        line(&w, " * inference, without the update.  Both return NAN for a bad n. */");
        line(&w, "void %s_start_training(unsigned long long seed);", o->prefix);
        line(&w, "/* The learning rate of the steps that follow: start_training sets the train");
        line(&w, " * block's; a schedule changes it between steps. */");
        line(&w, "void %s_set_learning_rate(double lr);", o->prefix);
        line(&w,
             "double %s_train_batch(const float *input, const float *target, int n, "
             "float *output);",
             o->prefix);
        line(&w,
             "double %s_eval_batch(const float *input, const float *target, int n, "
             "float *output);",
             o->prefix);
        line(&w, "/* The program's commands: predict, train and eval (cnnrt_main). */");
        line(&w, "int %s_main(int argc, char **argv);", o->prefix);
    } else if (o->profile) {
        blank(&w);
        line(&w, "/* The program's predict command, with --profile (cnnrt_main). */");
        line(&w, "int %s_main(int argc, char **argv);", o->prefix);
    }
    if (o->profile) {
        blank(&w);
        line(&w, "/* --profile: each layer's calls and time since the last report (or reset),");
        line(&w, " * as a table on out: of predict calls, or (training != 0) of training steps;");
        line(&w, " * then the counters back to zero.  The counters are one thread's: with");
        line(&w, " * --profile predict_batch keeps to the calling thread. */");
        line(&w, "void %s_profile_report(FILE *out, int training);", o->prefix);
        line(&w, "void %s_profile_reset(void);", o->prefix);
    }
    blank(&w);
    extern_c(&w, false);
    line(&w, "#endif");
    free(P);
}

/* Large baked weights go in as the bytes of little-endian floats in one
 * string: compilers read a string of millions of bytes in a second or
 * two, where as many decimal constants take half a minute.  The union
 * reads them back as floats (exact: the bytes are the floats). */
enum { BAKED_DECIMAL_MAX = 65536 };

/* gcc's -pedantic warns of strings longer than C99's 4095 bytes. */
static void overlength_strings(Writer *w, bool allow)
{
    line(w, "#if defined(__GNUC__)");
    if (allow) {
        line(w, "#pragma GCC diagnostic push");
        line(w, "#pragma GCC diagnostic ignored \"-Woverlength-strings\"");
    } else {
        line(w, "#pragma GCC diagnostic pop");
    }
    line(w, "#endif");
}

/* Lines of at most 64 bytes of a string: compilers read millions of
 * bytes of a string in a second, where as many decimal constants take
 * half a minute. */
static void emit_blob_lines(Writer *w, const unsigned char *bytes, int64_t count)
{
    static const char hex[] = "0123456789abcdef";
    char text[64 * 4 + 8];
    for (int64_t i = 0; i < count; i += 64) {
        char *t = text;
        *t++ = '"';
        for (int64_t j = i; j < i + 64 && j < count; j++) {
            *t++ = '\\';
            *t++ = 'x';
            *t++ = hex[bytes[j] >> 4];
            *t++ = hex[bytes[j] & 15];
        }
        *t++ = '"';
        *t = '\0';
        line(w, "    %s", text);
    }
}

static void emit_weight_blob(Writer *w, const float *weights, int64_t count, const char *P)
{
    line(w, "#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__");
    line(w, "#error \"the baked weights below are little-endian floats\"");
    line(w, "#endif");
    overlength_strings(w, true);
    line(w, "static const union {");
    line(w, "    unsigned char bytes[4 * (%s_PARAM_COUNT + 1)];", P);
    line(w, "    float values[%s_PARAM_COUNT + 1];", P);
    line(w, "} %s_weights %s_ALIGNED = {", w->prefix, P);
    unsigned char *bytes = xmalloc(4 * (size_t)count + 1);
    for (int64_t j = 0; j < count; j++) {
        uint32_t bits;
        memcpy(&bits, &weights[j], sizeof bits);
        for (int k = 0; k < 4; k++)
            bytes[4 * j + k] = (unsigned char)(bits >> (8 * k));
    }
    emit_blob_lines(w, bytes, 4 * count);
    free(bytes);
    line(w, "};");
    overlength_strings(w, false);
    line(w, "static const float *const %s_params = %s_weights.values;", w->prefix, w->prefix);
}

static void emit_params(Writer *w, const Model *m, const EmitOptions *o, const char *P)
{
    if (o->weights && m->param_floats > BAKED_DECIMAL_MAX) {
        emit_weight_blob(w, o->weights, m->param_floats, P);
        return;
    }
    if (!o->weights) {
        /* Literal weights from the model are the starting values; the rest
         * start at zero until loaded. */
        bool literals = false;
        for (int k = 0; k < m->nparams; k++)
            literals |= m->params[k]->literal != NULL || m->params[k]->init == INIT_ONES;
        if (!literals) {
            line(w, "static float %s_params[%s_PARAM_COUNT + 1] %s_ALIGNED;", o->prefix, P, P);
            return;
        }
    }
    line(w, "static %sfloat %s_params[%s_PARAM_COUNT + 1] %s_ALIGNED = {",
         o->weights ? "const " : "", o->prefix, P, P);
    w->indent++;
    for (int k = 0; k < m->nparams; k++) {
        const Param *p = m->params[k];
        int64_t n = shape_size(&p->shape);
        line(w, "/* %s */", p->name);
        StrBuf b = {0};
        for (int64_t j = 0; j < n; j++) {
            char buf[48];
            float v = emit_param_value(p, o, j);
            format_float(buf, v);
            strbuf_printf(&b, "%s,%s", buf, (j % 8 == 7 || j == n - 1) ? "" : " ");
            if (j % 8 == 7 || j == n - 1) {
                line(w, "%s", b.data);
                b.len = 0;
                b.data[0] = '\0';
            }
        }
        strbuf_free(&b);
    }
    if (m->param_floats == 0)
        line(w, "0.0f");
    w->indent--;
    line(w, "};");
}

static void emit_tensor_table(Writer *w, const Model *m, const EmitOptions *o, const char *P)
{
    line(w, "const %s_tensor %s_tensors[%s_TENSOR_COUNT + 1] = {", o->prefix, o->prefix, P);
    w->indent++;
    for (int k = 0; k < m->nparams; k++) {
        const Param *p = m->params[k];
        StrBuf dims = {0};
        for (int d = 0; d < SHAPE_MAX_RANK; d++)
            strbuf_printf(&dims, "%s%lld", d ? ", " : "",
                          d < p->shape.rank ? (long long)p->shape.dim[d] : 0LL);
        line(w, "{\"%s\", %d, {%s}, %lldL, %d},", p->name, p->shape.rank, dims.data,
             (long long)p->offset, p->trainable ? 1 : 0);
        strbuf_free(&dims);
    }
    line(w, "{0, 0, {0, 0, 0, 0, 0}, 0L, 0}");
    w->indent--;
    line(w, "};");
}

/* --profile: the whole call's time and samples, after its layers'. */
static void emit_profile_whole(Writer *w, const char *samples)
{
    line(w, "(void)t;");
    line(w, "cnnrt_profile_mark(&%s_profile[%d], start);", w->prefix, w->nlayers + 1);
    line(w, "%s_profile[%d].samples += (unsigned long long)%s;", w->prefix, w->nlayers + 1,
         samples);
}

/* The layers as the runtime's predict --dump and --profile see them
 * (cnnrt_layer_info), and with --profile the counters. */
static void emit_layer_table(Writer *w, const Model *m, bool training)
{
    const char *x = w->prefix;
    line(w, "/* The layers for predict --dump and --profile: name, kind, source line, output");
    line(w, " * shape, where eval_batch leaves the output (-1: none of its own), forward");
    line(w, " * FLOPs, the layer whose function computes it at inference (-1: none). */");
    line(w, "static const cnnrt_layer_info %s_layers[%d] = {", x, m->nlayers + 1);
    w->indent++;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        StrBuf dims = {0};
        for (int d = 0; d < 5; d++)
            strbuf_printf(&dims, "%s%lld", d ? ", " : "",
                          d < l->out.rank ? (long long)l->out.dim[d] : 0LL);
        line(w, "{\"%s\", \"%s\", %d, %d, {%s}, %lldL, %.17g, %d},", l->name, l->kind->name,
             l->loc.line, l->out.rank, dims.data, (long long)emit_layer_values(m, i, training),
             (double)layer_flops(l, m), emit_layer_function(m, i));
        strbuf_free(&dims);
    }
    line(w, "{0, 0, 0, 0, {0, 0, 0, 0, 0}, 0L, 0, 0}");
    w->indent--;
    line(w, "};");
    if (w->profile) {
        line(w, "/* --profile: per layer, the loss, then the whole calls (cnnrt.h). */");
        line(w, "static cnnrt_profile_count %s_profile[%d];", x, m->nlayers + 2);
    }
    blank(w);
}

/* The forward pass through a workspace: the public predict_ws, or with
 * clones one clone's. */
static void emit_forward(Writer *w, const Model *m, const IrProgram *p, bool clone, bool inline_all)
{
    if (clone)
        line(w, "static%s void %s_forward%s(void *workspace, const float *input, float *output)",
             w->target, w->prefix, w->suffix);
    else if (inline_all) /* inlined into each version's (emit_small_versions) */
        line(w, "%s_LAYER void %s_forward(void *workspace, const float *input, float *output)",
             w->macro_prefix, w->prefix);
    else
        line(w, "void %s_predict_ws(void *workspace, const float *input, float *output)",
             w->prefix);
    line(w, "{");
    w->indent++;
    if (inline_all) {
        /* a local arena the compiler may keep in registers */
        line(w, "float arena[%s_ARENA_FLOATS + 1];", w->macro_prefix);
        line(w, "(void)workspace;");
    } else {
        line(w, "float *arena = (float *)workspace;");
    }
    line(w, "(void)arena;   /* unused by some models */");
    line(w, "(void)%s_params;", w->prefix);
    if (w->profile)
        line(w, "unsigned long long start = cnnrt_profile_clock(), t = start;");
    int calls = 0;
    for (int i = 0; i < p->nfuncs; i++)
        if (p->funcs[i]->phase == PHASE_PREDICT) {
            line(w, "%s_%s%s(input, output, arena);", w->prefix, p->funcs[i]->name, w->suffix);
            if (w->profile)
                line(w, "t = cnnrt_profile_mark(&%s_profile[%d], t);", w->prefix,
                     p->funcs[i]->layer);
            calls++;
        }
    if (m->nlayers == 0 || calls == 0)
        line(w, "memcpy(output, input, sizeof(float) * %s_INPUT_SIZE);", w->macro_prefix);
    if (w->profile)
        emit_profile_whole(w, "1");
    w->indent--;
    line(w, "}");
    blank(w);
}

/* A clone's name and the CPU features it needs (a clone not named needs
 * none). */
typedef struct {
    const char *name;
    const char *features[6];
} CloneNeeds;

/* PREFIX_cpu_runs(name): whether this CPU runs a clone of `needs`. */
static void emit_cpu_runs(Writer *w, const CloneNeeds *needs, int n)
{
    const char *x = w->prefix;
    line(w, "/* Whether this CPU runs a clone (and its OS keeps the registers). */");
    line(w, "static int %s_cpu_runs(const char *name)", x);
    line(w, "{");
    line(w, "    __builtin_cpu_init();");
    for (int k = 0; k < n; k++) {
        line(w, "    if (strcmp(name, \"%s\") == 0)", needs[k].name);
        StrBuf b = {0};
        for (int f = 0; needs[k].features[f]; f++) {
            if (f > 0)
                strbuf_printf(&b, f % 2 ? " && " : " &&\n               ");
            strbuf_printf(&b, "__builtin_cpu_supports(\"%s\")", needs[k].features[f]);
        }
        line(w, "        return %s;", b.data);
        strbuf_free(&b);
    }
    line(w, "    return 1;");
    line(w, "}");
    blank(w);
}

/* A small model's multiply-adds, written out (print_fma): PREFIX_FMA
 * fuses them where the compiler targets FMA, and the AVX2 copy's
 * PREFIX_FMA_AVX2 always; contraction is off for the rest (the pragmas
 * of emit_c_source).  Left to gcc, which products it fused depended on
 * its vectoriser: seed42's predict multiplied the last layer's four
 * inputs in one vector and added them apart, while the samples in lanes
 * fused them, and the two gave other bits. */
static void emit_small_fma(Writer *w)
{
    const char *P = w->macro_prefix;
    line(w, "/* Multiply-adds as the source writes them, fused where the CPU fuses. */");
    line(w, "#if defined(__GNUC__) && \\");
    line(w, "    (defined(__FP_FAST_FMAF) || defined(__FMA__) || defined(__ARM_FEATURE_FMA))");
    line(w, "#define %s_FMA(a, b, c) __builtin_fmaf(a, b, c)", P);
    line(w, "#elif !defined(__GNUC__) && defined(FP_FAST_FMAF)");
    line(w, "#define %s_FMA(a, b, c) fmaf(a, b, c)", P);
    line(w, "#else");
    line(w, "#define %s_FMA(a, b, c) ((a) * (b) + (c))", P);
    line(w, "#endif");
    blank(w);
}

/* clang moved eight samples into lanes value by value (seed42 at batch
 * 64: 0.18 us against gcc's 0.10, which shuffles whole vectors): for
 * clang, 8 x 8 blocks transposed in vector shuffles (0.09 us).  gcc's
 * __builtin_shuffle there took 0.26. */
static void emit_lanes_transpose(Writer *w)
{
    const char *x = w->prefix;
    line(w, "/* r[j] = float j of the eight rows at row, row + stride, ...: unpacks, then");
    line(w, " * pairs, then halves, as AVX's 8 x 8 transpose */");
    line(w, "static inline __attribute__((always_inline, unused)) void %s_transpose8(", x);
    line(w, "    %s_lanes *restrict r, const float *restrict row, size_t stride)", x);
    line(w, "{");
    line(w, "    %s_lanes a[8], t[8];", x);
    line(w, "    for (int i = 0; i < 8; i++)");
    line(w, "        memcpy(&a[i], row + (size_t)i * stride, sizeof a[i]);");
    line(w, "    for (int i = 0; i < 8; i += 2) {");
    line(w, "        t[i] = __builtin_shufflevector(a[i], a[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);");
    line(w,
         "        t[i + 1] = __builtin_shufflevector(a[i], a[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);");
    line(w, "    }");
    line(w, "    for (int i = 0; i < 8; i += 4)");
    line(w, "        for (int h = 0; h < 2; h++) {");
    line(w, "            a[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, "
            "9, 4, 5, 12, 13);");
    line(w, "            a[i + 2 * h + 1] =");
    line(w, "                __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, "
            "14, 15);");
    line(w, "        }");
    line(w, "    for (int j = 0; j < 4; j++) {");
    line(w, "        r[j] = __builtin_shufflevector(a[j], a[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);");
    line(w,
         "        r[j + 4] = __builtin_shufflevector(a[j], a[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);");
    line(w, "    }");
    line(w, "}");
}

/* predict_batch's samples in vector lanes: eight samples at once, sample
 * i's values in lane i of GNU C vectors, the parameters broadcast; each
 * lane computes what predict computes for its sample, operation for
 * operation (the same bits).  A batch then runs the model's operations
 * once per eight samples with no shuffles: seed42 at batch 64 took 0.26
 * us in gcc's calls sample by sample, 0.15 in clang's loop it vectorised
 * itself, 0.10 in lanes.  x86-64 only: the vector multiply-add is its
 * builtin.  gcc's 128-bit preference for the model (emit_c_source) left
 * moving the samples into lanes at 0.19 us: 256 there (PREFIX_LANES_TUNE). */
static void emit_small_lanes_types(Writer *w)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "/* predict_batch: eight samples at once, sample i in lane i of each vector. */");
    line(w, "#if defined(__GNUC__) && defined(__x86_64__) && !defined(CNNGEN_PORTABLE)");
    line(w, "#define %s_WITH_LANES 1", P);
    line(w, "#define %s_LANES 8", P);
    line(w, "typedef float %s_lanes __attribute__((vector_size(32)));", x);
    line(w, "typedef int %s_lane_masks __attribute__((vector_size(32)));", x);
    line(w, "#define %s_SPLAT(c) ((%s_lanes){c, c, c, c, c, c, c, c})", P, x);
    line(w, "/* cond ? then : otherwise, lane by lane (cond: a vector comparison) */");
    line(w, "#define %s_LANES_PICK(cond, then, otherwise) \\", P);
    line(w,
         "    ((%s_lanes)(((%s_lane_masks)(then) & (cond)) | ((%s_lane_masks)(otherwise) & "
         "~(cond))))",
         x, x, x);
    line(w, "/* f(v), lane by lane */");
    line(w, "#define %s_LANES_MAP(f, v) __extension__({ \\", P);
    line(w, "    %s_lanes m_ = (v); \\", x);
    line(w, "    for (int l_ = 0; l_ < %s_LANES; l_++) \\", P);
    line(w, "        m_[l_] = f(m_[l_]); \\");
    line(w, "    m_; })");
    line(w, "#if defined(__FMA__)");
    line(w, "#define %s_LANES_FMA(a, b, c) __builtin_ia32_vfmaddps256(a, b, c)", P);
    line(w, "#else");
    line(w, "#define %s_LANES_FMA(a, b, c) ((a) * (b) + (c))", P);
    line(w, "#endif");
    line(w, "#if defined(__clang__)");
    emit_lanes_transpose(w);
    line(w, "#else");
    line(w, "#define %s_LANES_TUNE __attribute__((target(\"prefer-vector-width=256\")))", P);
    line(w, "#endif");
    line(w, "#else");
    line(w, "#define %s_WITH_LANES 0", P);
    line(w, "#endif");
    line(w, "#ifndef %s_LANES_TUNE", P);
    line(w, "#define %s_LANES_TUNE", P);
    line(w, "#endif");
    blank(w);
}

/* Whether predict_batch runs the small model in lanes: it has layers,
 * no profile (whose clock marks are per sample), and an input and an
 * output no larger than its activations may be, for eight samples of
 * them on the stack (a 3D max pooling of 98,304 inputs overflowed it). */
static bool small_lanes(const Writer *w, const Model *m, const IrProgram *p)
{
    return !w->profile && ir_has_phase(p, PHASE_PREDICT) &&
           shape_size(&m->input) <= MODEL_SMALL_ACTIVATIONS &&
           shape_size(model_output_shape(m)) <= MODEL_SMALL_ACTIVATIONS;
}

/* A version's layer functions (w->suffix, w->target), their
 * multiply-adds written with the macro `fma`; in lanes, with lanes_fma,
 * and the function that moves eight samples into lanes and back. */
static void emit_small_layers(Writer *w, const Model *m, const IrProgram *p, const char *fma,
                              const char *lanes_fma)
{
    const char *x = w->prefix, *P = w->macro_prefix, *version = w->suffix;
    char *lanes_type = joined(x, "_lanes"), *lanes_suffix = joined("_lanes", version);
    w->fma = fma;
    if (lanes_fma) {
        w->lanes = lanes_type;
        w->lanes_fma = lanes_fma;
        w->suffix = lanes_suffix;
    }
    for (int i = 0; i < p->nfuncs; i++)
        if (p->funcs[i]->phase == PHASE_PREDICT)
            print_function(w, p->funcs[i]);
    if (lanes_fma) {
        line(w, "/* Eight samples: into lanes, through the model, and back. */");
        line(w, "%s_LAYER%s void %s_forward%s(const float *restrict input, float *restrict output)",
             P, w->target, x, lanes_suffix);
        line(w, "{");
        line(w, "    %s_lanes in[%s_INPUT_SIZE], out[%s_OUTPUT_SIZE], arena[%s_ARENA_FLOATS + 1];",
             x, P, P, P);
        if (shape_size(&m->input) >= 8) {
            line(w, "#if defined(__clang__)");
            line(w, "    for (int k = 0; k + 8 <= %s_INPUT_SIZE; k += 8)", P);
            line(w, "        %s_transpose8(in + k, input + k, %s_INPUT_SIZE);", x, P);
            line(w, "    if (%s_INPUT_SIZE %% 8 != 0)", P);
            line(w,
                 "        %s_transpose8(in + %s_INPUT_SIZE - 8, input + %s_INPUT_SIZE - 8, "
                 "%s_INPUT_SIZE);",
                 x, P, P, P);
            line(w, "#else");
        }
        /* through floats: a vector's lanes set one by one read as the
         * rest of it uninitialised to gcc -Wmaybe-uninitialized */
        line(w, "    float floats_in[%s_INPUT_SIZE][%s_LANES];", P, P);
        line(w, "    for (int k = 0; k < %s_INPUT_SIZE; k++)", P);
        line(w, "        for (int i = 0; i < %s_LANES; i++)", P);
        line(w, "            floats_in[k][i] = input[(size_t)i * %s_INPUT_SIZE + k];", P);
        line(w, "    memcpy(in, floats_in, sizeof in);");
        if (shape_size(&m->input) >= 8)
            line(w, "#endif");
        for (int i = 0; i < p->nfuncs; i++)
            if (p->funcs[i]->phase == PHASE_PREDICT)
                line(w, "    %s_%s%s(in, out, arena);", x, p->funcs[i]->name, lanes_suffix);
        /* through floats: clang took out[k][i] lane by lane through memory
         * when it did not unroll the loop (seed42, SSE: 1.48 us a batch
         * of 64, 0.23 this way) */
        line(w, "    float floats_out[%s_OUTPUT_SIZE][%s_LANES];", P, P);
        line(w, "    memcpy(floats_out, out, sizeof floats_out);");
        line(w, "    for (int k = 0; k < %s_OUTPUT_SIZE; k++)", P);
        line(w, "        for (int i = 0; i < %s_LANES; i++)", P);
        line(w, "            output[(size_t)i * %s_OUTPUT_SIZE + k] = floats_out[k][i];", P);
        line(w, "}");
        blank(w);
    }
    w->fma = w->lanes = w->lanes_fma = NULL;
    w->suffix = version;
    free(lanes_type);
    free(lanes_suffix);
}

/* A version's batch: eight samples at a time in lanes, the rest one by
 * one; attrs: the function's attributes (" PREFIX_LANES_TUNE"), or "". */
static void emit_small_batch(Writer *w, bool lanes, const char *attrs)
{
    const char *x = w->prefix, *P = w->macro_prefix, *version = w->suffix;
    line(w, "static%s void %s_forward_batch%s(const float *input, float *output, int n)", attrs, x,
         version);
    line(w, "{");
    line(w, "    int i = 0;");
    if (lanes) {
        line(w, "#if %s_WITH_LANES", P);
        line(w, "    for (; i + %s_LANES <= n; i += %s_LANES)", P, P);
        line(w, "        %s_forward_lanes%s(input + (size_t)i * %s_INPUT_SIZE,", x, version, P);
        line(w, "                      output + (size_t)i * %s_OUTPUT_SIZE);", P);
        line(w, "#endif");
    }
    line(w, "    for (; i < n; i++)");
    line(w,
         "        %s_forward%s(0, input + (size_t)i * %s_INPUT_SIZE, output + (size_t)i * "
         "%s_OUTPUT_SIZE);",
         x, version, P, P);
    line(w, "}");
    blank(w);
}

/* A function's body that calls a small model's version of fn(args): the
 * AVX2 one where it is built and chosen, else the compiler's. */
static void emit_small_choice(Writer *w, const char *fn, const char *args)
{
    const char *x = w->prefix;
    line(w, "{");
    line(w, "#if %s_WITH_INLINE_AVX2", w->macro_prefix);
    line(w, "    if (%s_inline_avx2()) {", x);
    line(w, "        %s_%s_avx2(%s);", x, fn, args);
    line(w, "        return;");
    line(w, "    }");
    line(w, "#endif");
    line(w, "    %s_%s(%s);", x, fn, args);
    line(w, "}");
    blank(w);
}

/* A small model's versions: the compiler's, and where it does not target
 * FMA on x86-64 (the README's plain cc -O2), one built for AVX2 and FMA,
 * picked at run time when the CPU has them (seed42 at batch 64: 5.2-6.1
 * ns a sample with separate multiplies and adds, 4.4 with FMA).  A
 * version is the whole model inlined into one function, and its batch
 * (emit_small_batch).  CNNGEN_ISA=inline keeps the compiler's. */
static void emit_small_versions(Writer *w, const Model *m, const IrProgram *p)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    bool lanes = small_lanes(w, m, p);
    if (lanes) {
        line(w, "#if %s_WITH_LANES", P);
        blank(w);
        char *fma = joined(P, "_FMA"), *lanes_fma = joined(P, "_LANES_FMA");
        emit_small_layers(w, m, p, fma, lanes_fma);
        free(fma);
        free(lanes_fma);
        line(w, "#endif /* %s_WITH_LANES */", P);
        blank(w);
    }
    char tune[64] = "";
    if (lanes)
        snprintf(tune, sizeof tune, " %s_LANES_TUNE", P);
    emit_small_batch(w, lanes, tune);
    line(w, "#if defined(__GNUC__) && defined(__x86_64__) && !defined(__FMA__) && \\");
    line(w, "    !defined(CNNGEN_PORTABLE) && !defined(CNNGEN_ONLY_AVX512) && \\");
    line(w, "    !defined(CNNGEN_ONLY_AVX2) && !defined(CNNGEN_ONLY_GENERIC)");
    line(w, "#define %s_WITH_INLINE_AVX2 1", P);
    line(w, "#define %s_TARGET_INLINE_AVX2 __attribute__((target(\"avx2,fma\")))", P);
    line(w, "#define %s_FMA_AVX2(a, b, c) __builtin_fmaf(a, b, c)", P);
    if (lanes)
        line(w, "#define %s_LANES_FMA_AVX2(a, b, c) __builtin_ia32_vfmaddps256(a, b, c)", P);
    blank(w);
    char target[64];
    snprintf(target, sizeof target, " %s_TARGET_INLINE_AVX2", P);
    w->suffix = "_avx2";
    w->target = target;
    char *fma = joined(P, "_FMA_AVX2"), *lanes_fma = joined(P, "_LANES_FMA_AVX2");
    emit_small_layers(w, m, p, fma, NULL);
    emit_forward(w, m, p, true, true);
    if (lanes) {
        line(w, "#if %s_WITH_LANES", P);
        blank(w);
        emit_small_layers(w, m, p, fma, lanes_fma);
        line(w, "#endif /* %s_WITH_LANES */", P);
        blank(w);
    }
    free(fma);
    free(lanes_fma);
    char attrs[128];
    snprintf(attrs, sizeof attrs, "%s%s", target, tune);
    emit_small_batch(w, lanes, attrs);
    w->suffix = w->target = "";
    static const CloneNeeds needs[] = {{"inline_avx2", {"avx2", "fma"}}};
    emit_cpu_runs(w, needs, 1);
    line(w, "/* Whether the AVX2 version runs: chosen at the first call. */");
    line(w, "static int %s_inline_avx2(void)", x);
    line(w, "{");
    line(w, "    static int chosen; /* 0: not yet; 1: AVX2's; 2: the compiler's */");
    line(w, "    int c = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);");
    line(w, "    if (!c) {");
    line(w, "        const char *wanted = getenv(\"CNNGEN_ISA\");");
    line(w, "        c = 2;");
    line(
        w,
        "        if ((!wanted || strcmp(wanted, \"inline\") != 0) && %s_cpu_runs(\"inline_avx2\"))",
        x);
    line(w, "            c = 1;");
    line(w, "        __atomic_store_n(&chosen, c, __ATOMIC_RELEASE);");
    line(w, "    }");
    line(w, "    return c == 1;");
    line(w, "}");
    line(w, "#else");
    line(w, "#define %s_WITH_INLINE_AVX2 0", P);
    line(w, "#endif");
    blank(w);
    line(w, "void %s_predict_ws(void *workspace, const float *input, float *output)", x);
    emit_small_choice(w, "forward", "workspace, input, output");
    line(w, "const char *%s_isa(void)", x);
    line(w, "{");
    line(w, "#if %s_WITH_INLINE_AVX2", P);
    line(w, "    if (%s_inline_avx2())", x);
    line(w, "        return \"inline_avx2\";");
    line(w, "#endif");
    line(w, "    return \"inline\";");
    line(w, "}");
    blank(w);
}

/* Whether predict_batch goes block by block: some program has block
 * functions (each clone then has a forward_block, plain loops too). */
static bool has_block_functions(const IrProgram *programs, int nprograms)
{
    for (int k = 0; k < nprograms; k++)
        if (ir_has_phase(&programs[k], PHASE_PREDICT_BLOCK))
            return true;
    return false;
}

/* The layers from funcs[from] up to the next block function (returned:
 * its index, or nfuncs), for each sample of the block in its own arena;
 * the block function's twin for one sample, right before it, is not. */
static int emit_block_samples(Writer *w, const IrProgram *p, int from)
{
    int to = from;
    while (to < p->nfuncs && p->funcs[to]->phase != PHASE_PREDICT_BLOCK)
        to++;
    int end = to < p->nfuncs ? to - 1 : to, calls = 0;
    for (int i = from; i < end; i++)
        calls += p->funcs[i]->phase == PHASE_PREDICT;
    if (calls == 0)
        return to;
    const char *P = w->macro_prefix;
    bool q = p->quantized;
    line(w, "for (int s = 0; s < n; s++) {");
    w->indent++;
    line(w, "const %s *in = input + (size_t)s * %s_INPUT_SIZE;", q ? "int8_t" : "float", P);
    line(w, "%s *out = output + (size_t)s * %s_OUTPUT_SIZE;", q ? c_type(p->output_type) : "float",
         P);
    line(w, "%s *sample = arena + (size_t)s * %s_BLOCK_STRIDE;", q ? "int8_t" : "float", P);
    for (int i = from; i < end; i++)
        if (p->funcs[i]->phase == PHASE_PREDICT)
            line(w, "%s_%s%s(in, out, sample);", w->prefix, p->funcs[i]->name, w->suffix);
    w->indent--;
    line(w, "}");
    return to;
}

/* predict_batch's block of n samples (at most BLOCK_SAMPLES), each with
 * an arena of its own BLOCK_STRIDE floats apart: the layers that compute
 * a block at once (graph.h layer_runs_in_blocks) in one call, the others
 * sample by sample in between. */
static void emit_forward_block(Writer *w, const IrProgram *p)
{
    bool q = p->quantized;
    line(w, "static%s void %s_forward_block%s(%s *arena, const %s *input, %s *output, int n)",
         w->target, w->prefix, w->suffix, q ? "int8_t" : "float", q ? "int8_t" : "float",
         q ? c_type(p->output_type) : "float");
    line(w, "{");
    w->indent++;
    for (int i = emit_block_samples(w, p, 0); i < p->nfuncs; i = emit_block_samples(w, p, i + 1))
        line(w, "%s_%s%s(input, output, arena, n);", w->prefix, p->funcs[i]->name, w->suffix);
    w->indent--;
    line(w, "}");
    blank(w);
}

/* predict_batch in blocks of at most BLOCK_SAMPLES samples, each sample
 * with an arena of its own (the layers that compute a block at once read
 * their parameters once per block).  With OpenMP each thread takes a run
 * of the samples and a share of the blocks' arenas: the parallel region
 * is out here, not in a clone's functions (clang's outlined regions lose
 * a clone's target attributes, and with them its FMAs). */
static void emit_predict_blocks(Writer *w, const char *P, bool clones, long long min_samples)
{
    const char *x = w->prefix;
    line(w,
         "static void %s_forward_blocks(float *arena, int slots, const float *input, "
         "float *output, int n)",
         x);
    line(w, "{");
    w->indent++;
    if (clones)
        line(w, "const %s_clone *clone = %s_clone_in_use();", x, x);
    line(w, "for (int i = 0; i < n; i += slots)");
    line(w,
         "    %s%s(arena, input + (size_t)i * %s_INPUT_SIZE, output + (size_t)i * "
         "%s_OUTPUT_SIZE,",
         clones ? "clone->" : x, clones ? "forward_block" : "_forward_block", P, P);
    line(w, "        n - i < slots ? n - i : slots);");
    w->indent--;
    line(w, "}");
    blank(w);
    line(w, "void %s_predict_batch(const float *input, float *output, int n)", x);
    line(w, "{");
    line(w, "#ifdef _OPENMP");
    line(w, "    if (n >= %lld) {", min_samples);
    line(w, "        int threads = omp_get_max_threads();");
    line(w,
         "#pragma omp parallel num_threads(threads < %s_BLOCK_SAMPLES ? threads : "
         "%s_BLOCK_SAMPLES)",
         P, P);
    line(w, "        {");
    line(w, "            int t = omp_get_thread_num(), all = omp_get_num_threads();");
    line(w, "            int lo = (int)((long long)n * t / all);");
    line(w, "            int hi = (int)((long long)n * (t + 1) / all);");
    line(w, "            int first = %s_BLOCK_SAMPLES * t / all;", P);
    line(w, "            int slots = %s_BLOCK_SAMPLES * (t + 1) / all - first;", P);
    line(w,
         "            %s_forward_blocks(%s_block_arena + (size_t)first * %s_BLOCK_STRIDE, slots,",
         x, x, P);
    line(w, "                              input + (size_t)lo * %s_INPUT_SIZE,", P);
    line(w, "                              output + (size_t)lo * %s_OUTPUT_SIZE, hi - lo);", P);
    line(w, "        }");
    line(w, "        return;");
    line(w, "    }");
    line(w, "#endif");
    line(w, "    %s_forward_blocks(%s_block_arena, %s_BLOCK_SAMPLES, input, output, n);", x, x, P);
    line(w, "}");
}

/* predict_batch's loop over its samples, one at a time. */
static void emit_batch_loop(Writer *w)
{
    const char *P = w->macro_prefix;
    line(w, "    for (int i = 0; i < n; i++)");
    line(w,
         "        %s_predict(input + (size_t)i * %s_INPUT_SIZE, output + (size_t)i * "
         "%s_OUTPUT_SIZE);",
         w->prefix, P, P);
}

/* A small model's batch: its version's (emit_small_batch); under OpenMP,
 * in runs of 1024 samples on the threads, each computed as alone. */
static void emit_small_predict_batch(Writer *w, long long min_samples)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "static void %s_batch(const float *input, float *output, int n)", x);
    emit_small_choice(w, "forward_batch", "input, output, n");
    line(w, "void %s_predict_batch(const float *input, float *output, int n)", x);
    line(w, "{");
    if (!w->profile) {
        line(w, "#ifdef _OPENMP");
        line(w, "    if (n >= %lld) {", min_samples);
        line(w, "#pragma omp parallel for schedule(static)");
        line(w, "        for (int run = 0; run < (n + 1023) / 1024; run++) {");
        line(w, "            int first = run * 1024, count = n - first < 1024 ? n - first : 1024;");
        line(w, "            %s_batch(input + (size_t)first * %s_INPUT_SIZE,", x, P);
        line(w, "                     output + (size_t)first * %s_OUTPUT_SIZE, count);", P);
        line(w, "        }");
        line(w, "        return;");
        line(w, "    }");
        line(w, "#endif");
    }
    line(w, "    %s_batch(input, output, n);", x);
    line(w, "}");
}

/* predict through the static arena, and a batch: sample by sample, on
 * OpenMP's threads when built with -fopenmp and the batch holds enough
 * work to pay for them (a parallel region costs microseconds), each
 * thread with an arena of its own (every sample is computed as predict
 * computes it: the same bits on any number of threads); or in blocks. */
static void emit_predict_batch(Writer *w, const Model *m, const char *P, bool blocks, bool clones)
{
    const char *x = w->prefix;
    __int128 flops = model_flops(m);
    /* at least 2 samples and about 4 MFLOP for the threads to share */
    long long min_samples = flops >= 2000000 ? 2 : (long long)(4000000 / (flops + 1)) + 1;
    line(w, "void %s_predict(const float *input, float *output)", x);
    line(w, "{");
    line(w, "    %s_predict_ws(%s_arena, input, output);", x, x);
    line(w, "}");
    blank(w);
    if (blocks) {
        emit_predict_blocks(w, P, clones, min_samples);
        return;
    }
    if (w->inline_all) {
        emit_small_predict_batch(w, min_samples);
        return;
    }
    /* with --profile one thread: the profile's counters are one thread's */
    if (!w->profile) {
        line(w, "#ifdef _OPENMP");
        line(w, "static float %s_thread_arena[%s_ARENA_FLOATS + 1] %s_ALIGNED;", x, P, P);
        line(w, "#pragma omp threadprivate(%s_thread_arena)", x);
        line(w, "#endif");
        blank(w);
    }
    line(w, "void %s_predict_batch(const float *input, float *output, int n)", x);
    line(w, "{");
    if (!w->profile) {
        line(w, "#ifdef _OPENMP");
        line(w, "    if (n >= %lld) {", min_samples);
        line(w, "#pragma omp parallel for schedule(static)");
        line(w, "        for (int i = 0; i < n; i++)");
        line(w, "            %s_predict_ws(%s_thread_arena, input + (size_t)i * %s_INPUT_SIZE,", x,
             x, P);
        line(w, "                          output + (size_t)i * %s_OUTPUT_SIZE);", P);
        line(w, "        return;");
        line(w, "    }");
        line(w, "#endif");
    }
    emit_batch_loop(w);
    line(w, "}");
}

static void emit_loader(Writer *w, const EmitOptions *o, const char *P)
{
    blank(w);
    line(w, "float *%s_params_data(void)", o->prefix);
    line(w, "{");
    line(w, "    return %s_params;", o->prefix);
    line(w, "}");
    blank(w);
    line(w, "/* The tensor table as the runtime takes it. */");
    line(w, "static void %s_runtime_specs(cnnrt_tensor_spec *specs)", o->prefix);
    line(w, "{");
    w->indent++;
    line(w, "memset(specs, 0, sizeof(cnnrt_tensor_spec) * (%s_TENSOR_COUNT + 1));", P);
    line(w, "for (int i = 0; i < %s_TENSOR_COUNT; i++) {", P);
    line(w, "    specs[i].name = %s_tensors[i].name;", o->prefix);
    line(w, "    specs[i].rank = %s_tensors[i].rank;", o->prefix);
    line(w, "    for (int d = 0; d < 5; d++)");
    line(w, "        specs[i].shape[d] = %s_tensors[i].shape[d];", o->prefix);
    line(w, "    specs[i].offset = %s_tensors[i].offset;", o->prefix);
    line(w, "}");
    w->indent--;
    line(w, "}");
    blank(w);
    line(w, "int %s_load_weights(const char *path, char *error, size_t error_size)", o->prefix);
    line(w, "{");
    w->indent++;
    line(w, "cnnrt_tensor_spec specs[%s_TENSOR_COUNT + 1];", P);
    line(w, "%s_runtime_specs(specs);", o->prefix);
    line(w,
         "return cnnrt_load_safetensors(path, specs, %s_TENSOR_COUNT, %s_params, "
         "%s_PARAM_COUNT, error, error_size);",
         P, o->prefix, P);
    w->indent--;
    line(w, "}");
}

static void emit_init(Writer *w, const Model *m, const EmitOptions *o)
{
    blank(w);
    line(w, "void %s_init_params(unsigned long long seed)", o->prefix);
    line(w, "{");
    w->indent++;
    line(w, "static const cnnrt_init_spec specs[] = {");
    w->indent++;
    for (int k = 0; k < m->nparams; k++) {
        const Param *p = m->params[k];
        const char *kind;
        emit_runtime_init(p, &kind);
        line(w, "{%lldL, %lldL, %s, %lldL, %lldL},   /* %s */", (long long)p->offset,
             (long long)shape_size(&p->shape), kind, (long long)p->fan_in, (long long)p->fan_out,
             p->name);
    }
    line(w, "{0L, 0L, CNNRT_INIT_KEEP, 0L, 0L}");
    w->indent--;
    line(w, "};");
    line(w, "cnnrt_init_params(specs, %d, %s_params, seed);", m->nparams, o->prefix);
    w->indent--;
    line(w, "}");
}

/* ---- training: the step around the IR's functions --------------------------- */

static void call_phase(Writer *w, const IrProgram *p, IrPhase a, IrPhase b)
{
    for (int i = 0; i < p->nfuncs; i++)
        if (p->funcs[i]->phase == a || p->funcs[i]->phase == b) {
            const IrFunc *f = p->funcs[i];
            line(w, "%s_%s%s(%s_train, %s_params, input, target, n);", w->prefix, f->name,
                 w->suffix, w->prefix, w->prefix);
            if (w->timing) /* the loss is the entry after the layers' */
                line(w, "t = cnnrt_profile_mark(&%s_profile[%d], t);", w->prefix,
                     f->layer >= 0 ? f->layer : w->nlayers);
        }
}

/* The optimizer's factors for this step, from the learning rate in use. */
static void print_hyper(Writer *w, const IrStep *s)
{
    const char *x = w->prefix;
    long long at = (long long)s->offset;
    switch ((OptimizerKind)s->optimizer) {
    case OPT_SGD:
        line(w, "%s_train[%lld] = (float)%s_train_lr;   /* SGD's step: lr */", x, at, x);
        break;
    case OPT_ADAM:
        line(w, "/* Adam's step size: lr * sqrt(1 - beta2^t) / (1 - beta1^t) */");
        line(w,
             "%s_train[%lld] = (float)(%s_train_lr * sqrt(1 - pow(%.17g, (double)%s_train_step)) /",
             x, at, x, s->beta2, x);
        line(w, "                         (1 - pow(%.17g, (double)%s_train_step)));", s->beta1, x);
        if (s->weight_decay != 0)
            line(w, "%s_train[%lld] = (float)(%s_train_lr * %.17g);   /* decoupled decay */", x,
                 at + 1, x, s->weight_decay);
        break;
    case OPT_ADAMW:
        line(w,
             "/* AdamW's factors: lr / (1 - beta1^t), 1 - lr * weight_decay, sqrt(1 - beta2^t) */");
        line(w, "%s_train[%lld] = (float)(%s_train_lr / (1 - pow(%.17g, (double)%s_train_step)));",
             x, at, x, s->beta1, x);
        line(w, "%s_train[%lld] = (float)(1 - %s_train_lr * %.17g);", x, at + 1, x,
             s->weight_decay);
        line(w, "%s_train[%lld] = (float)sqrt(1 - pow(%.17g, (double)%s_train_step));", x, at + 2,
             s->beta2, x);
        break;
    }
}

static void print_step(Writer *w, const IrProgram *p, const IrStep *s)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    long long offset = (long long)s->offset, count = (long long)s->count;
    switch (s->kind) {
    case STEP_CALL: call_phase(w, p, s->a, s->b); break;
    case STEP_COUNT_STEP: line(w, "%s_train_step++;", x); break;
    case STEP_DROPOUT_MASK:
        line(w,
             "cnnrt_dropout_mask(%s_train + %lld, (long)n * %lld, %.9g, %s_train_seed, %d, "
             "%s_train_step);   /* %s */",
             x, offset, count, s->rate, x, s->node, x, s->text);
        break;
    case STEP_COMMENT: line(w, "/* %s */", s->text); break;
    case STEP_ZERO:
        line(w, "%s_zero_floats(%s_train + %lld, (size_t)n * %lld);", x, x, offset, count);
        break;
    case STEP_ZERO_PARAM_GRADS:
        line(w, "%s_zero_floats(%s_train + %lld, %s_PARAM_COUNT);", x, x, offset, P);
        break;
    case STEP_OUTPUTS:
        if (s->offset < 0)
            line(w, "memcpy(output, input, sizeof(float) * (size_t)n * %s_OUTPUT_SIZE);", P);
        else
            line(w, "memcpy(output, %s_train + %lld, sizeof(float) * (size_t)n * %s_OUTPUT_SIZE);",
                 x, offset, P);
        break;
    case STEP_HYPER: print_hyper(w, s); break;
    }
}

/* double NAME(input, target, n, output): the step's list, between the
 * check of n and the batch's mean loss. */
static void print_step_function(Writer *w, const IrProgram *p, const char *name,
                                const IrSteps *steps, bool clone)
{
    line(w, "%sdouble %s_%s%s(const float *input, const float *target, int n, float *output)",
         clone ? "static " : "", w->prefix, name, w->suffix);
    line(w, "{");
    w->indent++;
    line(w, "if (n < 1 || n > %s_TRAIN_BATCH)", w->macro_prefix);
    line(w, "    return NAN;");
    /* --profile times the training step; the time between the calls
     * (zeroing gradients, dropout's masks) is the whole's alone */
    w->timing = w->profile && steps == &p->train_step;
    if (w->timing)
        line(w, "unsigned long long start = cnnrt_profile_clock(), t = start;");
    for (int i = 0; i < steps->count; i++) {
        const IrStep *s = &steps->items[i];
        print_step(w, p, s);
        bool between = s->kind != STEP_CALL && s->kind != STEP_COMMENT;
        bool next_call = i + 1 < steps->count && steps->items[i + 1].kind == STEP_CALL;
        if (w->timing && between && next_call)
            line(w, "t = cnnrt_profile_clock();");
    }
    if (w->timing)
        emit_profile_whole(w, "n");
    w->timing = false;
    line(w, "return %s_mean_loss(n);", w->prefix);
    w->indent--;
    line(w, "}");
}

/* The training step's state: its seed and count, and the batch's loss. */
static void emit_training_state(Writer *w, const Model *m)
{
    const TrainPlan *tp = &m->tp;
    const char *x = w->prefix;
    line(w, "static unsigned long long %s_train_seed, %s_train_step;", x, x);
    line(w, "static double %s_train_lr = %.17g;", x, m->train.lr);
    blank(w);
    line(w, "void %s_start_training(unsigned long long seed)", x);
    line(w, "{");
    line(w, "    memset(%s_train, 0, sizeof %s_train);", x, x);
    line(w, "    %s_train_seed = seed;", x);
    line(w, "    %s_train_step = 0;", x);
    line(w, "    %s_train_lr = %.17g;", x, m->train.lr);
    line(w, "}");
    blank(w);
    line(w, "void %s_set_learning_rate(double lr)", x);
    line(w, "{");
    line(w, "    %s_train_lr = lr;", x);
    line(w, "}");
    blank(w);
    /* The gradients' zeroing is megabytes a step: on one thread it kept
     * two-thread training of the bench's fashion at 1.7x one thread. */
    line(w, "/* count floats at p set to zero, on OpenMP's threads in 16 KB pieces */");
    line(w, "static void %s_zero_floats(float *p, size_t count)", x);
    line(w, "{");
    line(w, "    long pieces = (long)((count + 4095) / 4096);");
    line(w, "    %s_PARALLEL_FOR", w->macro_prefix);
    line(w, "    for (long k = 0; k < pieces; k++) {");
    line(w, "        size_t at = (size_t)k * 4096;");
    line(w, "        memset(p + at, 0, sizeof(float) * (count - at < 4096 ? count - at : 4096));");
    line(w, "    }");
    line(w, "}");
    blank(w);
    line(w, "static double %s_mean_loss(int n)", x);
    line(w, "{");
    line(w, "    double sum = 0;");
    line(w, "    for (int s = 0; s < n; s++)");
    line(w, "        sum += %s_train[%lld + s];", x, (long long)tp->loss);
    line(w, "    return sum / n;");
    line(w, "}");
    blank(w);
}

/* The training step's two entry points, of one clone or the only ones. */
static void emit_step_functions(Writer *w, const IrProgram *p, bool clone)
{
    print_step_function(w, p, "eval_batch", &p->eval_step, clone);
    blank(w);
    print_step_function(w, p, "train_batch", &p->train_step, clone);
    blank(w);
}

/* m.settings: the train block beyond the step (cnnrt_train_settings);
 * the fields left at zero are not written. */
static void emit_train_settings(Writer *w, const Model *m)
{
    static const char *const schedules[] = {"NONE", "STEP_DECAY", "EXPONENTIAL", "COSINE",
                                            "ONE_CYCLE"};
    static const char *const augments[] = {"SHIFT", "CROP", "FLIP", "NOISE", "SCALE"};
    const TrainConfig *tc = &m->train;
    const Schedule *s = &tc->schedule;
    line(w, "m.settings.lr = %.17g;", tc->lr);
    if (s->kind != SCHEDULE_NONE || s->warmup) {
        line(w, "m.settings.schedule.kind = CNNRT_SCHEDULE_%s;", schedules[s->kind]);
        line(w, "m.settings.schedule.per_step = %d;", s->per_step);
        line(w, "m.settings.schedule.every = %lldL;", (long long)s->every);
        line(w, "m.settings.schedule.length = %lldL;", (long long)s->length);
        line(w, "m.settings.schedule.warmup = %lldL;", (long long)s->warmup);
        line(w, "m.settings.schedule.gamma = %.17g;", s->gamma);
        line(w, "m.settings.schedule.min_lr = %.17g;", s->min_lr);
        line(w, "m.settings.schedule.max_lr = %.17g;", s->max_lr ? s->max_lr : tc->lr);
        line(w, "m.settings.schedule.pct_start = %.17g;", s->pct_start);
        line(w, "m.settings.schedule.div_factor = %.17g;", s->div_factor);
        line(w, "m.settings.schedule.final_div_factor = %.17g;", s->final_div);
        line(w, "m.settings.schedule.warmup_start = %.17g;", s->warmup_start);
    }
    if (tc->validation_split)
        line(w, "m.settings.validation_split = %.17g;", tc->validation_split);
    if (tc->patience)
        line(w, "m.settings.patience = %lldL;", (long long)tc->patience);
    line(w, "m.settings.monitor = %d;", tc->monitor);
    for (int i = 0; i < tc->naugment; i++) {
        line(w, "m.settings.augment[%d].kind = CNNRT_AUGMENT_%s;", i,
             augments[tc->augment[i].kind]);
        line(w, "m.settings.augment[%d].amount = %.17g;", i, tc->augment[i].amount);
    }
    if (tc->naugment)
        line(w, "m.settings.naugment = %d;", tc->naugment);
    line(w, "m.settings.input_rank = %d;", m->input.rank);
    for (int d = 0; d < m->input.rank; d++)
        line(w, "m.settings.input_shape[%d] = %lld;", d, (long long)m->input.dim[d]);
}

/* m.nlayers ... m.isa: the layers, the training arena, the counters. */
static void emit_model_layers(Writer *w, const Model *m, bool training)
{
    const char *x = w->prefix;
    line(w, "m.nlayers = %d;", m->nlayers);
    line(w, "m.layers = %s_layers;", x);
    if (training)
        line(w, "m.train_arena = %s_train;", x);
    if (w->profile)
        line(w, "m.profile = %s_profile;", x);
    line(w, "m.isa = %s_isa;", x);
}

/* --profile's report and reset for a program of one's own. */
static void emit_profile_functions(Writer *w, const Model *m)
{
    const char *x = w->prefix;
    line(w, "void %s_profile_report(FILE *out, int training)", x);
    line(w, "{");
    w->indent++;
    line(w, "cnnrt_model m;");
    line(w, "memset(&m, 0, sizeof m);");
    line(w, "m.name = \"%s\";", m->name);
    emit_model_layers(w, m, false);
    line(w, "cnnrt_profile_report(out, &m, training);");
    line(w, "cnnrt_profile_reset(&m);");
    w->indent--;
    line(w, "}");
    blank(w);
    line(w, "void %s_profile_reset(void)", x);
    line(w, "{");
    line(w, "    memset(%s_profile, 0, sizeof %s_profile);", x, x);
    line(w, "}");
    blank(w);
}

/* PREFIX_main's start: the tensor table, and the model's name and sizes. */
static void open_model_main(Writer *w, const Model *m, const char *P)
{
    const char *x = w->prefix;
    line(w, "int %s_main(int argc, char **argv)", x);
    line(w, "{");
    w->indent++;
    line(w, "static cnnrt_tensor_spec specs[%s_TENSOR_COUNT + 1];", P);
    line(w, "%s_runtime_specs(specs);", x);
    line(w, "cnnrt_model m;");
    line(w, "memset(&m, 0, sizeof m);");
    line(w, "m.name = \"%s\";", m->name);
    line(w, "m.input_size = %s_INPUT_SIZE;", P);
    line(w, "m.output_size = %s_OUTPUT_SIZE;", P);
}

/* m.ntensors ... m.init: the weights, to load or to initialise. */
static void emit_model_weights(Writer *w, const char *P)
{
    const char *x = w->prefix;
    line(w, "m.ntensors = %s_TENSOR_COUNT;", P);
    line(w, "m.tensors = specs;");
    line(w, "m.params = %s_params;", x);
    line(w, "m.param_count = %s_PARAM_COUNT;", P);
    line(w, "m.init = %s_init_params;", x);
}

/* A predictor's commands with the profile: the model as far as predict
 * needs it. */
static void emit_predict_main(Writer *w, const Model *m, const char *P)
{
    open_model_main(w, m, P);
    line(w, "m.seed = %lluULL;", (unsigned long long)m->train.seed);
    emit_model_weights(w, P);
    line(w, "m.predict = %s_predict_batch;", w->prefix);
    emit_model_layers(w, m, false);
    line(w, "return cnnrt_main(argc, argv, &m);");
    w->indent--;
    line(w, "}");
}

/* PREFIX_main: the runtime's commands over this model. */
static void emit_training_main(Writer *w, const Model *m, const char *P)
{
    const TrainConfig *tc = &m->train;
    const char *x = w->prefix;
    const Shape *out = model_output_shape(m);
    int64_t last_axis = out->dim[out->rank - 1];
    bool ce = tc->loss == LOSS_CROSSENTROPY;
    open_model_main(w, m, P);
    line(w, "m.last_axis = %lld;", (long long)last_axis);
    line(w, "m.batch = %s_TRAIN_BATCH;", P);
    line(w, "m.epochs = %lldL;", (long long)tc->epochs);
    line(w, "m.seed = %lluULL;", (unsigned long long)tc->seed);
    line(w, "m.layout.input_size = %s_INPUT_SIZE;", P);
    line(w, "m.layout.output_size = %s_OUTPUT_SIZE;", P);
    line(w, "m.layout.classes = %lld;", (long long)(ce ? last_axis : 0));
    line(w, "m.layout.positions = %lld;", (long long)(ce ? shape_size(out) / last_axis : 0));
    const char *name;
    emit_runtime_loss(tc->loss, &name);
    line(w, "m.loss = %s;", name);
    for (int k = 0; k < tc->nmetrics; k++) {
        emit_runtime_metric(tc->metrics[k], &name);
        line(w, "m.metrics[%d] = %s;", k, name);
    }
    line(w, "m.nmetrics = %d;", tc->nmetrics);
    emit_model_weights(w, P);
    line(w, "m.start_training = %s_start_training;", x);
    line(w, "m.train_batch = %s_train_batch;", x);
    line(w, "m.eval_batch = %s_eval_batch;", x);
    line(w, "m.predict = %s_predict_batch;", x);
    line(w, "m.set_learning_rate = %s_set_learning_rate;", x);
    for (int k = 0; k < 2; k++)
        if (m->tp.state[k] >= 0)
            line(w, "m.optimizer_state[%d] = %s_train + %lld;", k, x, (long long)m->tp.state[k]);
    line(w, "m.optimizer_blocks = %d;", (m->tp.state[0] >= 0) + (m->tp.state[1] >= 0));
    line(w, "m.train_step = &%s_train_step;", x);
    emit_train_settings(w, m);
    emit_model_layers(w, m, true);
    line(w, "return cnnrt_main(argc, argv, &m);");
    w->indent--;
    line(w, "}");
}

static void emit_main(Writer *w, const Model *m, const EmitOptions *o, const char *P)
{
    if (emit_includes_training(m, o) || o->profile) {
        blank(w);
        line(w, "int main(int argc, char **argv)");
        line(w, "{");
        line(w, "    return %s_main(argc, argv);", o->prefix);
        line(w, "}");
        return;
    }
    blank(w);
    if (o->weights) {
        /* Standalone: the sample reader is part of this file. */
        line(w, "/* The program: predict (weights baked in; cnngen's sample reader). */");
        line(w, "#define CNNRT_API static");
        fputs(cnngen_embedded_predict_lines, w->out);
        blank(w);
        line(w, "int main(int argc, char **argv)");
        line(w, "{");
        w->indent++;
        line(w, "return cnnrt_predict_command(argc, argv, \"%s\", %s_INPUT_SIZE, %s_OUTPUT_SIZE,",
             m->name, P, P);
        line(w, "                             %s_predict_batch, 0, 0, 0);", o->prefix);
        w->indent--;
        line(w, "}");
        return;
    }
    line(w, "static int %s_load_for_main(const char *path, char *error, size_t error_size)",
         o->prefix);
    line(w, "{");
    line(w, "    return %s_load_weights(path, error, error_size);", o->prefix);
    line(w, "}");
    blank(w);
    line(w, "int main(int argc, char **argv)");
    line(w, "{");
    w->indent++;
    line(w, "return cnnrt_predict_command(argc, argv, \"%s\", %s_INPUT_SIZE, %s_OUTPUT_SIZE,",
         m->name, P, P);
    line(w, "                             %s_predict_batch, %s_load_for_main, %s_init_params,",
         o->prefix, o->prefix, o->prefix);
    line(w, "                             %lluULL);   /* the train block's seed */",
         (unsigned long long)m->train.seed);
    w->indent--;
    line(w, "}");
}

/* ---- instruction-set clones (--vector-width auto) ----------------------------
 * The model is lowered once per clone (emit_clones); each clone's
 * functions carry its name as a suffix and its target attributes.  The
 * preprocessor keeps the clones the compiler can build and that can be
 * needed: on x86-64 with gcc or clang, AVX-512 and AVX2 through target
 * attributes, whatever -march says, and the 4-float clone only when the
 * compiler does not already target AVX2; elsewhere GNU C's 4-float
 * vectors where the target has 4-float registers (NEON, SSE2, AltiVec),
 * and plain loops on the others (a Cortex-M: nothing wider than the
 * target has), for other compilers and with -DCNNGEN_PORTABLE.
 * The first clone the CPU runs is chosen once, at the first call. */

static const char *const clone_targets[EMIT_CLONE_COUNT] = {
    "__attribute__((target(\"avx512f,avx512vl,avx2,fma\")))",
    "__attribute__((target(\"avx2,fma\")))",
    "",
    "",
};

static void clone_macro(Writer *w, const char *name, int on)
{
    char *N = upper(name);
    line(w, "#define %s_WITH_%s %d", w->macro_prefix, N, on);
    free(N);
}

/* One #if branch of a clone selection: its condition, whether it is
 * x86-64 (the clones are chosen at run time), and which clones it builds. */
typedef struct {
    const char *condition;
    int x86, with[EMIT_CLONE_COUNT];
} CloneBranch;

/* The branches' macros (PREFIX_X86, PREFIX_WITH_<CLONE>), then each
 * clone's target attributes (PREFIX_TARGET_<CLONE>). */
static void emit_clone_branches(Writer *w, const CloneBranch *branches, size_t nbranches,
                                const EmitClone *clones, const char *const *targets, int nclones)
{
    const char *P = w->macro_prefix;
    for (size_t b = 0; b < nbranches; b++) {
        line(w, "%s", branches[b].condition);
        line(w, "#define %s_X86 %d", P, branches[b].x86);
        for (int k = 0; k < nclones; k++)
            clone_macro(w, clones[k].name, branches[b].with[k]);
    }
    line(w, "#endif");
    for (int k = 0; k < nclones; k++)
        if (targets[k][0]) {
            char *N = upper(clones[k].name);
            line(w, "#define %s_TARGET_%s %s", P, N, targets[k]);
            free(N);
        }
}

/* PREFIX_WITH_<CLONE>: 1 for the clones this compiler builds here.
 * -DCNNGEN_ONLY_AVX512 (_AVX2, _GENERIC) builds that clone alone, for a
 * known CPU or a test; -DCNNGEN_PORTABLE the plain loops alone. */
static void emit_clone_selection(Writer *w)
{
    /* which clones, per branch: avx512, avx2, generic, scalar */
    static const CloneBranch branches[] = {
        {"#if defined(CNNGEN_ONLY_AVX512)", 1, {1, 0, 0, 0}},
        {"#elif defined(CNNGEN_ONLY_AVX2)", 1, {0, 1, 0, 0}},
        {"#elif defined(CNNGEN_ONLY_GENERIC)", 0, {0, 0, 1, 0}},
        {"#elif defined(CNNGEN_PORTABLE) || !defined(__GNUC__)", 0, {0, 0, 0, 1}},
        {"#elif !defined(__x86_64__) && !defined(__ARM_NEON) && !defined(__SSE2__) && "
         "!defined(__ALTIVEC__)",
         0,
         {0, 0, 0, 1}},
        {"#elif !defined(__x86_64__)", 0, {0, 0, 1, 0}},
        {"#elif defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)",
         1,
         {1, 0, 0, 0}},
        {"#elif defined(__AVX2__) && defined(__FMA__)", 1, {1, 1, 0, 0}},
        {"#else", 1, {1, 1, 1, 0}},
    };
    line(w, "/* Instruction sets: the clones this compiler builds (see %s_isa):", w->prefix);
    line(w, " * on x86-64, AVX-512 and AVX2 whatever -march says, SSE's 4 floats");
    line(w, " * unless the compiler targets more; GNU C's 4-float vectors on other");
    line(w, " * targets with 4-float registers; plain loops on the rest (a Cortex-M)");
    line(w, " * and for other compilers. */");
    emit_clone_branches(w, branches, sizeof branches / sizeof branches[0], emit_clones,
                        clone_targets, EMIT_CLONE_COUNT);
    blank(w);
}

/* The choice of a clone at run time, after the table PREFIX_clones:
 * whether this CPU runs each (`needs`: a clone's name, then the CPU
 * features it needs; a clone not named needs none), CNNGEN_ISA's or the
 * first it runs, chosen once. */
static void emit_clone_choice(Writer *w, const CloneNeeds *needs, int n)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "#if %s_X86", P);
    emit_cpu_runs(w, needs, n);
    line(w, "/* CNNGEN_ISA's clone if it is built here and this CPU runs it, else the");
    line(w, " * first (the widest) that the CPU runs; the last is the compiler's own. */");
    line(w, "static const %s_clone *%s_pick_clone(void)", x, x);
    line(w, "{");
    w->indent++;
    line(w, "const size_t count = sizeof %s_clones / sizeof %s_clones[0];", x, x);
    line(w, "const char *wanted = getenv(\"CNNGEN_ISA\");");
    line(w, "const %s_clone *best = &%s_clones[count - 1];", x, x);
    line(w, "for (size_t i = count; i-- > 0;)");
    line(w, "    if (%s_cpu_runs(%s_clones[i].name)) {", x, x);
    line(w, "        if (wanted && strcmp(wanted, %s_clones[i].name) == 0)", x);
    line(w, "            return &%s_clones[i];", x);
    line(w, "        if (!wanted || strcmp(wanted, best->name) != 0)");
    line(w, "            best = &%s_clones[i];", x);
    line(w, "    }");
    line(w, "return best;");
    w->indent--;
    line(w, "}");
    line(w, "#endif");
    blank(w);
    line(w, "static const %s_clone *%s_clone_in_use(void)", x, x);
    line(w, "{");
    line(w, "#if !%s_X86", P);
    line(w, "    return &%s_clones[0]; /* the one clone built: nothing to choose */", x);
    line(w, "#elif defined(__GNUC__)");
    line(w, "    static const %s_clone *chosen;", x);
    line(w, "    const %s_clone *c = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);", x);
    line(w, "    if (!c) {");
    line(w, "        c = %s_pick_clone();", x);
    line(w, "        __atomic_store_n(&chosen, c, __ATOMIC_RELEASE);");
    line(w, "    }");
    line(w, "    return c;");
    line(w, "#else");
    line(w, "    return %s_pick_clone();", x);
    line(w, "#endif");
    line(w, "}");
    blank(w);
}

/* The table of the clones built, the choice, and the public entry points
 * that go through it. */
static void emit_dispatch(Writer *w, bool training, bool blocks)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "typedef struct {");
    line(w, "    const char *name;");
    line(w, "    void (*forward)(void *, const float *, float *);");
    if (blocks)
        line(w, "    void (*forward_block)(float *, const float *, float *, int);");
    if (training) {
        line(w, "    double (*train_batch)(const float *, const float *, int, float *);");
        line(w, "    double (*eval_batch)(const float *, const float *, int, float *);");
    }
    line(w, "} %s_clone;", x);
    blank(w);
    line(w, "static const %s_clone %s_clones[] = {", x, x);
    for (int k = 0; k < EMIT_CLONE_COUNT; k++) {
        const char *name = emit_clones[k].name;
        char *N = upper(name);
        line(w, "#if %s_WITH_%s", P, N);
        StrBuf b = {0};
        strbuf_printf(&b, "    {\"%s\", %s_forward_%s", name, x, name);
        if (blocks)
            strbuf_printf(&b, ", %s_forward_block_%s", x, name);
        if (training)
            strbuf_printf(&b, ", %s_train_batch_%s, %s_eval_batch_%s", x, name, x, name);
        line(w, "%s},", b.data);
        strbuf_free(&b);
        line(w, "#endif");
        free(N);
    }
    line(w, "};");
    blank(w);
    static const CloneNeeds needs[] = {{"avx512", {"avx512f", "avx512vl", "fma"}},
                                       {"avx2", {"avx2", "fma"}}};
    emit_clone_choice(w, needs, 2);
    line(w, "const char *%s_isa(void)", x);
    line(w, "{");
    line(w, "    return %s_clone_in_use()->name;", x);
    line(w, "}");
    blank(w);
    line(w, "void %s_predict_ws(void *workspace, const float *input, float *output)", x);
    line(w, "{");
    line(w, "    %s_clone_in_use()->forward(workspace, input, output);", x);
    line(w, "}");
    blank(w);
    if (!training)
        return;
    static const char *const steps[] = {"eval_batch", "train_batch"};
    for (int k = 0; k < 2; k++) {
        line(w, "double %s_%s(const float *input, const float *target, int n, float *output)", x,
             steps[k]);
        line(w, "{");
        line(w, "    return %s_clone_in_use()->%s(input, target, n, output);", x, steps[k]);
        line(w, "}");
        blank(w);
    }
}

/* IRE_VPAIRS: the two floats at p as one 64-bit integer, broadcast (an
 * integer, so no bit of them is a float operation's to change). */
static void emit_pairs_macro(Writer *w, int lanes, bool first)
{
    const char *P = w->macro_prefix, *p = w->prefix;
    if (first)
        line(w, "typedef unsigned long long %s_pair __attribute__((may_alias, aligned(4)));", p);
    line(w, "typedef unsigned long long %s_pairs%d __attribute__((vector_size(%d)));", p, lanes,
         4 * lanes);
    StrBuf b = {0};
    strbuf_printf(&b, "#define %s_PAIRS%d(p) ((%s_vec%d)(%s_pairs%d){", P, lanes, p, lanes, p,
                  lanes);
    for (int i = 0; i < lanes / 2; i++)
        strbuf_printf(&b, "%s*(const %s_pair *)(p)", i ? ", " : "", p);
    line(w, "%s})", b.data);
    /* and back: the even lanes, then the odd (gcc before 12 has only its own builtin) */
    StrBuf order = {0};
    for (int half = 0; half < 2; half++)
        for (int i = half; i < lanes; i += 2)
            strbuf_printf(&order, "%s%d", order.len ? ", " : "", i);
    line(w, "#if defined(__clang__) || __GNUC__ >= 12");
    line(w, "#define %s_UNPAIR%d(v) __builtin_shufflevector(v, v, %s)", P, lanes, order.data);
    line(w, "#else");
    line(w, "typedef int %s_lanes%d __attribute__((vector_size(%d)));", p, lanes, 4 * lanes);
    line(w, "#define %s_UNPAIR%d(v) __builtin_shuffle(v, (%s_lanes%d){%s})", P, lanes, p, lanes,
         order.data);
    line(w, "#endif");
    strbuf_free(&order);
    strbuf_free(&b);
}

/* relu of a vector: its lanes above 0, the others +0 (as the scalar
 * a > 0 ? a : 0, NaN and -0 included).  C has no ?: of vectors; a
 * comparison gives a mask of all-ones lanes. */
static void emit_relu_macro(Writer *w, int lanes)
{
    const char *P = w->macro_prefix, *p = w->prefix;
    line(w, "typedef int %s_mask%d __attribute__((vector_size(%d)));", p, lanes, 4 * lanes);
    line(w, "#define %s_RELU%d(v) ((%s_vec%d)((%s_mask%d)(v) & ((v) > (%s_vec%d){0})))", P, lanes,
         p, lanes, p, lanes, p, lanes);
}

/* GNU C vector types of every width some function uses, and the pairs'
 * and relu's macros of each width some function uses them at. */
static void emit_vector_types(Writer *w, const IrProgram *programs, int nprograms)
{
    bool any = false, pairs = false;
    for (int lanes = 4; lanes <= 16; lanes *= 2) {
        bool used = false;
        for (int k = 0; k < nprograms; k++)
            used |= uses_lanes(&programs[k], lanes);
        if (!used)
            continue;
        if (!any) {
            line(w, "/* Register blocks: GNU C vectors (gcc, clang). */");
            if (nprograms > 1)
                line(w, "#if defined(__GNUC__)");
        }
        any = true;
        line(w, "typedef float %s_vec%d __attribute__((vector_size(%d)));", w->prefix, lanes,
             4 * lanes);
        bool paired = false;
        for (int k = 0; k < nprograms; k++)
            paired |= ir_uses_pairs(&programs[k], lanes);
        if (paired)
            emit_pairs_macro(w, lanes, !pairs);
        pairs |= paired;
        bool relu = false;
        for (int k = 0; k < nprograms; k++)
            relu |= ir_uses_vector_relu(&programs[k], lanes);
        if (relu)
            emit_relu_macro(w, lanes);
    }
    if (any && nprograms > 1)
        line(w, "#endif");
    if (any)
        blank(w);
}

/* The start of a clone's functions (NULL: the only version): its #if,
 * and the writer's suffix ("_avx2") and target attributes (attrs: the
 * clone's, or "") in the caller's suffix and target.  Returns the
 * clone's name in capitals (NULL for the only version), for end_clone. */
static char *begin_clone(Writer *w, const EmitClone *clone, const char *attrs, char suffix[32],
                         char target[160])
{
    suffix[0] = target[0] = '\0';
    char *N = clone ? upper(clone->name) : NULL;
    if (clone) {
        snprintf(suffix, 32, "_%s", clone->name);
        if (attrs[0])
            snprintf(target, 160, " %s_TARGET_%s", w->macro_prefix, N);
        line(w, "#if %s_WITH_%s", w->macro_prefix, N);
        blank(w);
    }
    w->suffix = suffix;
    w->target = target;
    return N;
}

static void end_clone(Writer *w, char *N)
{
    if (N) {
        line(w, "#endif /* %s_WITH_%s */", w->macro_prefix, N);
        blank(w);
    }
    w->suffix = w->target = "";
    free(N);
}

/* The layer functions, forward pass and training step of one program:
 * clone k of emit_clones, or (k < 0) the only one. */
static void emit_program(Writer *w, const Model *m, const IrProgram *p, int k, bool training,
                         bool blocks)
{
    char suffix[32], target[160];
    char *N = begin_clone(w, k >= 0 ? &emit_clones[k] : NULL, k >= 0 ? clone_targets[k] : "",
                          suffix, target);
    if (w->inline_all) { /* its multiply-adds written out, as its AVX2 copy's */
        char *fma = joined(w->macro_prefix, "_FMA");
        emit_small_layers(w, m, p, fma, NULL);
        free(fma);
    }
    for (int i = 0; i < p->nfuncs; i++)
        if (!w->inline_all || p->funcs[i]->phase != PHASE_PREDICT)
            print_function(w, p->funcs[i]);
    emit_forward(w, m, p, k >= 0, w->inline_all);
    if (w->inline_all)
        emit_small_versions(w, m, p);
    if (blocks)
        emit_forward_block(w, p);
    if (training)
        emit_step_functions(w, p, k >= 0);
    end_clone(w, N);
}

void emit_c_source(FILE *out, const Model *m, const IrProgram *programs, int nprograms,
                   const EmitOptions *o)
{
    if (o->qplan) {
        emit_c_source_q(out, m, programs, nprograms, o);
        return;
    }
    char *P = upper(o->prefix);
    Writer w = file_writer(out, m, o, P);
    bool clones = nprograms > 1, training = emit_includes_training(m, o);
    bool blocks = has_block_functions(programs, nprograms);
    open_source(&w, m, o);
    if (!o->weights)
        line(&w, "#include \"cnnrt.h\"");
    if (blocks) {
        line(&w, "#ifdef _OPENMP");
        line(&w, "#include <omp.h>");
        line(&w, "#endif");
    }
    blank(&w);
    if (o->inline_all) {
        /* A small model's loops are short, of constant trip counts: gcc
         * -O2's vectoriser (its very-cheap cost model) left those that
         * need an epilogue scalar, and seed42 at batch 64 took 0.99 us
         * against 0.50 at -O3 -march=native; -O3's takes them (0.57 us,
         * with no -march).  Not at -O0 or -Os: what the user asked for. */
        line(&w, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && \\");
        line(&w, "    defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__)");
        line(&w, "#pragma GCC optimize(\"O3\")");
        line(&w, "#endif");
        /* and 128-bit vectors: with -march=native gcc made seed42's nine
         * activations one 256-bit vector and took each to a broadcast in
         * two lane-crossing shuffles (7.1 ns a call against onnx2c's
         * 6.0; with 128-bit vectors 5.8 against 5.8). */
        line(&w, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && \\");
        line(&w, "    (defined(__x86_64__) || defined(__i386__))");
        line(&w, "#pragma GCC target(\"prefer-vector-width=128\")");
        line(&w, "#endif");
    }
    /* gcc's predictive commoning (gcc 12 runs it wherever it vectorises,
     * -O2 included) sees a conv block's accumulators read overlapping
     * inputs and carries them from one tap to the next in registers: with
     * 15 accumulators it spilled, and video3d's first conv (3 channels in)
     * ran at half speed.  The loads it saves are an FMA's free operand.
     * And multiply-adds fused whatever -std says: in ISO C modes (-std=c99)
     * gcc fuses none, and lenet's clones had not one FMA.  A small
     * model's are written out (emit_small_fma): none left to fuse. */
    line(&w, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8");
    line(&w, "#pragma GCC optimize(\"no-predictive-commoning\", \"fp-contract=%s\")",
         o->inline_all ? "off" : "fast");
    if (o->inline_all) {
        line(&w, "#else");
        line(&w, "#pragma STDC FP_CONTRACT OFF");
    }
    line(&w, "#endif");
    emit_vector_types(&w, programs, nprograms);
    if (o->inline_all) {
        emit_small_fma(&w);
        if (small_lanes(&w, m, &programs[0]))
            emit_small_lanes_types(&w);
    }
    /* Each layer is a function of its own: inlined into predict, large
     * layers leave gcc's register allocator too little room.  A small
     * model's are inlined: its activations may then stay in registers. */
    line(&w, "#if defined(__GNUC__)");
    if (o->inline_all)
        line(&w, "#define %s_LAYER static inline __attribute__((always_inline))", P);
    else
        line(&w, "#define %s_LAYER static __attribute__((noinline))", P);
    line(&w, "#else");
    line(&w, "#define %s_LAYER static", P);
    line(&w, "#endif");
    /* Arrays on cache lines: a 64-byte vector load across two lines costs
     * two (gcc gives static arrays 32 bytes; with -fopenmp fashion's
     * parameters landed off a line and predict took 30% longer). */
    line(&w, "#if defined(__GNUC__)");
    line(&w, "#define %s_ALIGNED __attribute__((aligned(64)))", P);
    line(&w, "#else");
    line(&w, "#define %s_ALIGNED", P);
    line(&w, "#endif");
    /* gcc -O2 unrolls no loop; clang does its own. */
    line(&w, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8");
    line(&w, "#define %s_UNROLL4 _Pragma(\"GCC unroll 4\")", P);
    line(&w, "#else");
    line(&w, "#define %s_UNROLL4", P);
    line(&w, "#endif");
    if (training) {
        /* gcc 12 -O2 (Debian 12's) drops calls to some of these functions
         * after vectorising them, as if they stored nothing; with no
         * interprocedural analysis of them it cannot.  Without trapping
         * math gcc if-converts the chains of selects of the backward
         * passes (max pooling's, relu's) and vectorises them: lenet's
         * step took half the time; the numbers are the same.  At -O3
         * whatever the user's flags: the backward passes' plain loops
         * need its vectoriser (lenet's step under cc -O2: 2.86 ms, 1.90
         * with this, 1.69 at -O3 -march=native). */
        line(&w, "#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8");
        line(&w,
             "#define %s_STEP static __attribute__((noipa, optimize(\"O3\", "
             "\"no-trapping-math\", \"no-predictive-commoning\")))",
             P);
        line(&w, "#else");
        line(&w, "#define %s_STEP %s_LAYER", P, P);
        line(&w, "#endif");
    }
    if (training) {
        line(&w, "/* Built with OpenMP (-fopenmp), loops whose iterations write disjoint");
        line(&w, " * floats run on OMP_NUM_THREADS threads; sums stay in one thread, in order. */");
        line(&w, "#ifdef _OPENMP");
        line(&w, "#define %s_PARALLEL_FOR _Pragma(\"omp parallel for schedule(static)\")", P);
        line(&w,
             "#define %s_PARALLEL_FOR2 _Pragma(\"omp parallel for collapse(2) schedule(static)\")",
             P);
        line(&w, "#else");
        line(&w, "#define %s_PARALLEL_FOR", P);
        line(&w, "#define %s_PARALLEL_FOR2", P);
        line(&w, "#endif");
    }
    blank(&w);
    if (clones)
        emit_clone_selection(&w);
    line(&w, "/* Activations of one sample; buffers share space where lifetimes allow. */");
    line(&w, "static float %s_arena[%s_ARENA_FLOATS + 1] %s_ALIGNED;", o->prefix, P, P);
    if (blocks) {
        line(&w, "/* predict_batch's blocks: BLOCK_SAMPLES samples' activations, each an arena");
        line(&w, " * of its own BLOCK_STRIDE floats from the next. */");
        line(&w, "#define %s_BLOCK_SAMPLES %d", P, m->block_samples);
        line(&w, "#define %s_BLOCK_STRIDE %lld", P, (long long)m->block_stride);
        line(&w, "static float %s_block_arena[%s_BLOCK_SAMPLES * %s_BLOCK_STRIDE] %s_ALIGNED;",
             o->prefix, P, P, P);
    }
    if (training) {
        line(&w, "/* Training: a batch's activations and gradients, the parameters' gradients,");
        line(&w, " * the optimizer state. */");
        line(&w, "static float %s_train[%s_TRAIN_FLOATS + 1] %s_ALIGNED;", o->prefix, P, P);
    }
    emit_params(&w, m, o, P);
    blank(&w);
    emit_tensor_table(&w, m, o, P);
    blank(&w);
    if (emit_describes_layers(m, o))
        emit_layer_table(&w, m, training);
    if (training)
        emit_training_state(&w, m);
    for (int k = 0; k < nprograms; k++)
        emit_program(&w, m, &programs[k], clones ? k : -1, training, blocks);
    if (clones) {
        emit_dispatch(&w, training, blocks);
    } else if (!o->inline_all) {
        line(&w, "const char *%s_isa(void)", o->prefix);
        line(&w, "{");
        line(&w, "    return \"fixed\";");
        line(&w, "}");
        blank(&w);
    }
    emit_predict_batch(&w, m, P, blocks, clones);
    if (!o->weights) {
        emit_loader(&w, o, P);
        emit_init(&w, m, o);
    }
    if (o->profile)
        emit_profile_functions(&w, m);
    if (training) {
        blank(&w);
        emit_training_main(&w, m, P);
    } else if (o->profile) {
        blank(&w);
        emit_predict_main(&w, m, P);
    }
    if (o->main)
        emit_main(&w, m, o, P);
    free(P);
}

/* ---- int8 predictors (--quantize, docs/int8.md) -----------------------------
 * One lowering (lower_q.c), printed by the same function printer; around
 * it a smaller file than a float model's: the int8 kernels and int32
 * constants baked in, one static int8 arena, predict_q on int8 values,
 * and predict on floats around it.  No clones yet: plain loops. */

static const char *q_output_type(const EmitOptions *o)
{
    return o->qplan->head >= 0 ? "int32_t" : "int8_t";
}

static void emit_c_header_q(FILE *out, const Model *m, const EmitOptions *o)
{
    char *P = upper(o->prefix);
    Writer w = file_writer(out, m, o, P);
    const QuantPlan *plan = o->qplan;
    const QuantWeights *qw = o->qweights;
    open_header(&w, m, o);
    line(&w, "#include <stdint.h>");
    blank(&w);
    line(&w, "#define %s_INPUT_SIZE %lld   /* values per sample, channels-last */", P,
         (long long)shape_size(&m->input));
    line(&w, "#define %s_OUTPUT_SIZE %lld", P, (long long)shape_size(model_output_shape(m)));
    line(&w, "#define %s_INT8 1   /* an int8 predictor: real = scale * (q - zero_point) */", P);
    line(&w, "#define %s_INPUT_SCALE %.17g", P, plan->nodes[0].scale);
    line(&w, "#define %s_INPUT_ZERO_POINT %d", P, plan->nodes[0].zero);
    if (plan->head >= 0) {
        line(&w, "/* predict_q's outputs are the last linear map's int32 sums; predict scales");
        line(&w, " * them per channel and applies the model's %s in float. */",
             activation_names[m->layers[m->nlayers - 1]->activation]);
        line(&w, "#define %s_OUTPUT_SUMS 1", P);
    } else {
        line(&w, "#define %s_OUTPUT_SCALE %.17g", P, plan->nodes[m->nlayers].scale);
        line(&w, "#define %s_OUTPUT_ZERO_POINT %d", P, plan->nodes[m->nlayers].zero);
    }
    line(&w, "#define %s_WEIGHT_BYTES %lld   /* int8 kernels, int32 biases and multipliers */", P,
         (long long)(qw->nweights + 4 * qw->nconsts));
    line(&w, "#define %s_ARENA_BYTES %lld   /* static int8 activations */", P,
         (long long)m->arena_floats);
    blank(&w);
    extern_c(&w, true);
    line(&w, "/* One sample in integers only: INPUT_SIZE int8 values in (quantized as");
    line(&w, " * INPUT_SCALE and INPUT_ZERO_POINT say), OUTPUT_SIZE out. */");
    line(&w, "void %s_predict_q(const int8_t *input, %s *output);", o->prefix, q_output_type(o));
    line(&w, "/* INPUT_SIZE floats to the int8 values predict_q takes. */");
    line(&w, "void %s_quantize(const float *input, int8_t *output);", o->prefix);
    line(&w, "/* One sample in floats: quantized, predict_q, and the outputs back in");
    line(&w, " * floats.  predict_batch: n samples, one after the other. */");
    line(&w, "void %s_predict(const float *input, float *output);", o->prefix);
    line(&w, "void %s_predict_batch(const float *input, float *output, int n);", o->prefix);
    line(&w, "/* \"int8\": the code in use. */");
    line(&w, "const char *%s_isa(void);", o->prefix);
    blank(&w);
    extern_c(&w, false);
    line(&w, "#endif");
    free(P);
}

/* PREFIX_<blob>: n int8 constants as a string (a union: written as
 * bytes), on a cache line, and its int8_t pointer PREFIX_<pointer>. */
static void emit_int8_constants(Writer *w, const char *blob, const char *pointer,
                                const int8_t *values, int64_t n)
{
    const char *x = w->prefix;
    overlength_strings(w, true);
    line(w, "static const union {");
    line(w, "    unsigned char bytes[%lld];", (long long)n + 1);
    line(w, "    int8_t values[%lld];", (long long)n + 1);
    line(w, "} %s_%s %s_ALIGNED = {", x, blob, w->macro_prefix);
    emit_blob_lines(w, (const unsigned char *)values, n);
    line(w, "};");
    overlength_strings(w, false);
    /* unused where only vector clones are built and every layer has a
     * vector form (-march with VNNI: the kernels are the packed ones) */
    line(w, "#if defined(__GNUC__)");
    line(w, "__attribute__((unused))");
    line(w, "#endif");
    line(w, "static const int8_t *const %s_%s = %s_%s.values;", x, pointer, x, blob);
}

/* PREFIX_<name>: n int32 constants (attributes attrs), eight a line, and
 * a 0 (never an empty array). */
static void emit_int32_constants(Writer *w, const char *name, const char *attrs,
                                 const int32_t *values, int64_t n)
{
    line(w, "static const int32_t %s_%s[%lld]%s = {", w->prefix, name, (long long)n + 1, attrs);
    StrBuf b = {0};
    for (int64_t i = 0; i < n; i++) {
        strbuf_printf(&b, "%s%ld,", i % 8 ? " " : "", (long)values[i]);
        if (i % 8 == 7 || i == n - 1) {
            line(w, "    %s", b.data);
            b.len = 0;
            b.data[0] = '\0';
        }
    }
    strbuf_free(&b);
    line(w, "    0");
    line(w, "};");
}

/* (A model with no linear map has none: pooling and merges only.) */
static void emit_q_constants(Writer *w, const QuantWeights *qw)
{
    if (qw->nconsts == 0)
        return;
    line(w, "/* The int8 kernels, per output channel symmetric (docs/int8.md). */");
    emit_int8_constants(w, "kernels", "qweights", qw->weights, qw->nweights);
    line(w, "/* Per output channel of each map: the int32 bias, then the requantization's");
    line(w, " * multiplier and shift. */");
    emit_int32_constants(w, "qconsts", "", qw->consts, qw->nconsts);
}

static void emit_requantize(Writer *w)
{
    const char *x = w->prefix;
    line(w, "static inline int32_t %s_max32(int32_t a, int32_t b)", x);
    line(w, "{");
    line(w, "    return a > b ? a : b;");
    line(w, "}");
    blank(w);
    line(w, "static inline int32_t %s_min32(int32_t a, int32_t b)", x);
    line(w, "{");
    line(w, "    return a < b ? a : b;");
    line(w, "}");
    blank(w);
    line(w, "/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier / 2^31 * 2^shift,");
    line(w, " * each step rounded as TFLite rounds, in integers only. */");
    line(w, "static inline int32_t %s_requantize(int32_t x, int32_t multiplier, int32_t shift)", x);
    line(w, "{");
    w->indent++;
    line(w, "int64_t a = x;");
    line(w, "if (shift > 0) {");
    line(w, "    a = shift > 31 ? (x > 0 ? INT32_MAX : x < 0 ? INT32_MIN : 0) : a * ((int64_t)1 << "
            "shift);");
    line(w, "    a = a > INT32_MAX ? INT32_MAX : a < INT32_MIN ? INT32_MIN : a;");
    line(w, "}");
    line(w, "int64_t ab = a * multiplier;");
    line(w, "int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);");
    line(w, "int64_t high = (ab + nudge) / ((int64_t)1 << 31); /* toward zero */");
    line(w, "if (a == INT32_MIN && multiplier == INT32_MIN)");
    line(w, "    high = INT32_MAX;");
    line(w, "int right = shift > 0 ? 0 : -shift;");
    line(w, "int64_t mask = ((int64_t)1 << right) - 1, remainder = high & mask;");
    line(w, "int64_t threshold = (mask >> 1) + (high < 0);");
    line(w, "/* high / 2^right rounded down (an arithmetic shift, as every C compiler");
    line(w, " * shifts a negative number and TFLite counts on), then up past the threshold */");
    line(w, "return (int32_t)((high >> right) + (remainder > threshold));");
    w->indent--;
    line(w, "}");
    blank(w);
}

/* predict_q of one program: the public one, or with clones clone k's. */
static void emit_predict_q(Writer *w, const Model *m, const IrProgram *p, const EmitOptions *o)
{
    const char *x = w->prefix;
    line(w, "%svoid %s_predict_q%s(const int8_t *input, %s *output)", w->suffix[0] ? "static " : "",
         x, w->suffix, q_output_type(o));
    line(w, "{");
    w->indent++;
    line(w, "int8_t *arena = %s_arena;", x);
    line(w, "(void)arena;   /* unused by some models */");
    int calls = 0;
    for (int i = 0; i < p->nfuncs; i++)
        if (p->funcs[i]->phase == PHASE_PREDICT) {
            line(w, "%s_%s%s(input, output, arena);", x, p->funcs[i]->name, w->suffix);
            calls++;
        }
    if (m->nlayers == 0 || calls == 0)
        line(w, "memcpy(output, input, %s_INPUT_SIZE);", w->macro_prefix);
    w->indent--;
    line(w, "}");
    blank(w);
}

/* PREFIX_quantize: round(x / scale) + zero, clamped, as the reference
 * computes it in double (the sign times floor(|v| + 0.5); NaN to -128).
 * The plain loops' (and the DSP clone's) does it the AVX-512 clone's way,
 * one input at a time: v = x * (1 / scale) in float, within 1e-7 of
 * x / scale relative, gives floor(|v| + 0.5) where |v| + 0.5 is at least
 * 1e-3 from an integer and below 1024; else (and for NaN) the division in
 * double.  A Cortex-M4F has no double precision: its division in software
 * took 800,000 instructions of lenet's 1.3 million.  A clone's
 * (w->suffix) is static, in its instruction set. */
static void emit_quantize_input(Writer *w)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "%svoid %s_quantize%s(const float *input, int8_t *output)",
         w->suffix[0] ? "static " : "", x, w->suffix);
    line(w, "{");
    w->indent++;
    line(w, "const float inverse = (float)(1.0 / %s_INPUT_SCALE);", P);
    line(w, "for (int i = 0; i < %s_INPUT_SIZE; i++) {", P);
    w->indent++;
    line(w, "float f = input[i] * inverse;");
    line(w, "float a = (f < 0 ? -f : f) + 0.5f;");
    line(w, "float fraction = a < 1024.0f ? a - (float)(int32_t)a : 0.0f; /* NaN: 0 */");
    line(w, "int32_t q;");
    line(w, "if (fraction >= 1e-3f && fraction <= 1.0f - 1e-3f) {");
    line(w, "    q = (int32_t)a;");
    line(w, "    q = (f < 0 ? -q : q) + %s_INPUT_ZERO_POINT;", P);
    line(w, "} else {");
    line(w, "    double v = (double)input[i] / %s_INPUT_SCALE;", P);
    line(w, "    v = (v < 0 ? -floor(-v + 0.5) : floor(v + 0.5)) + %s_INPUT_ZERO_POINT;", P);
    line(w, "    q = !(v > -128) ? -128 : v > 127 ? 127 : (int32_t)v;");
    line(w, "}");
    line(w, "output[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);");
    w->indent--;
    line(w, "}");
    w->indent--;
    line(w, "}");
    blank(w);
}

/* A vector clone's PREFIX_quantize, each step the scalar one's in double:
 * floor(|v| + 0.5) capped (NaN too, then set to -512: -128 once clamped),
 * its sign put back, the zero point added, clamped; the inputs past the
 * last whole vector go the scalar way.  The division took most of the
 * time: AVX-512 takes 16 inputs in float, v = x * (1 / scale) within
 * 1e-7 of x / scale relative, and AVX2 4 in double times the inverse,
 * within a few units in the last place; either moves floor(|v| + 0.5)
 * only where |v| + 0.5 is that close to an integer (or capped), and a
 * vector with such a lane is done again with the division in double. */
static void emit_quantize_exact(Writer *w, bool avx512, const char *in, const char *out)
{
    const char *pd = avx512 ? "_mm512" : "_mm256", *D = avx512 ? "__m512d" : "__m256d";
    line(w, "{");
    w->indent++;
    line(w, "%s v = %s_div_pd(%s, scale);", D, pd, in);
    line(w, "%s t = %s_min_pd(%s_add_pd(%s_andnot_pd(sign, v), half), cap);", D, pd, pd, pd);
    if (avx512) {
        line(w, "t = _mm512_roundscale_pd(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);");
        line(w, "t = _mm512_or_pd(t, _mm512_and_pd(v, sign));");
        line(w,
             "%s = _mm512_cvttpd_epi32(_mm512_mask_mov_pd(t, _mm512_cmp_pd_mask(v, v, "
             "_CMP_UNORD_Q), low));",
             out);
    } else {
        line(w, "t = _mm256_round_pd(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);");
        line(w, "t = _mm256_or_pd(t, _mm256_and_pd(v, sign));");
        line(w,
             "%s = _mm256_cvttpd_epi32(_mm256_blendv_pd(t, low, _mm256_cmp_pd(v, v, "
             "_CMP_UNORD_Q)));",
             out);
    }
    w->indent--;
    line(w, "}");
}

static void emit_quantize_vector(Writer *w, bool avx512)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    const char *pd = avx512 ? "_mm512" : "_mm256", *D = avx512 ? "__m512d" : "__m256d";
    int step = avx512 ? 16 : 4;
    line(w, "static%s void %s_quantize%s(const float *input, int8_t *output)", w->target, x,
         w->suffix);
    line(w, "{");
    w->indent++;
    line(w, "const %s scale = %s_set1_pd(%s_INPUT_SCALE), half = %s_set1_pd(0.5);", D, pd, P, pd);
    line(w,
         "const %s cap = %s_set1_pd(1024.0), sign = %s_set1_pd(-0.0), low = %s_set1_pd(-2048.0);",
         D, pd, pd, pd);
    if (avx512) {
        line(w, "const __m512 inverse = _mm512_set1_ps((float)(1.0 / %s_INPUT_SCALE));", P);
        line(w, "const __m512 half32 = _mm512_set1_ps(0.5f), cap32 = _mm512_set1_ps(1024.0f);");
        line(w, "const __m512 sign32 = _mm512_set1_ps(-0.0f), near = _mm512_set1_ps(1e-3f), "
                "far = _mm512_set1_ps(1.0f - 1e-3f);");
    } else {
        line(w, "const __m256d inverse = _mm256_set1_pd(1.0 / %s_INPUT_SCALE);", P);
        line(w, "const __m256d near = _mm256_set1_pd(1e-9), far = _mm256_set1_pd(1.0 - 1e-9);");
    }
    line(w, "int i = 0;");
    line(w, "for (; i + %d <= %s_INPUT_SIZE; i += %d) {", step, P, step);
    w->indent++;
    if (avx512) {
        line(w, "__m512 in = _mm512_loadu_ps(input + i), v = _mm512_mul_ps(in, inverse);");
        line(w, "__m512 a = _mm512_min_ps(_mm512_add_ps(_mm512_andnot_ps(sign32, v), half32), "
                "cap32);");
        line(w, "__m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);");
        line(w, "__m512 d = _mm512_sub_ps(a, t);");
        line(w, "__m512i r;");
        line(w, "if (!(_mm512_cmp_ps_mask(d, near, _CMP_LT_OQ) | _mm512_cmp_ps_mask(d, far, "
                "_CMP_GT_OQ))) {");
        line(w, "    r = _mm512_cvttps_epi32(_mm512_or_ps(t, _mm512_and_ps(v, sign32)));");
        line(w, "} else {");
        w->indent++;
        line(w, "__m256i lo, hi;");
        emit_quantize_exact(w, true, "_mm512_cvtps_pd(_mm512_castps512_ps256(in))", "lo");
        emit_quantize_exact(
            w, true,
            "_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(in), 1)))",
            "hi");
        line(w, "r = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);");
        w->indent--;
        line(w, "}");
        line(w, "r = _mm512_add_epi32(r, _mm512_set1_epi32(%s_INPUT_ZERO_POINT));", P);
        line(w, "r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_set1_epi32(-128)), "
                "_mm512_set1_epi32(127));");
        line(w, "_mm_storeu_si128((__m128i *)(void *)(output + i), _mm512_cvtepi32_epi8(r));");
    } else {
        line(w, "__m256d in = _mm256_cvtps_pd(_mm_loadu_ps(input + i)), v = _mm256_mul_pd(in, "
                "inverse);");
        line(w, "__m256d a = _mm256_min_pd(_mm256_add_pd(_mm256_andnot_pd(sign, v), half), cap);");
        line(w, "__m256d t = _mm256_round_pd(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);");
        line(w, "__m256d d = _mm256_sub_pd(a, t);");
        line(w, "__m128i r = _mm256_cvttpd_epi32(_mm256_or_pd(t, _mm256_and_pd(v, sign)));");
        line(w, "if (_mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(d, near, _CMP_LT_OQ), "
                "_mm256_cmp_pd(d, far, _CMP_GT_OQ))))");
        emit_quantize_exact(w, false, "in", "r");
        line(w, "r = _mm_add_epi32(r, _mm_set1_epi32(%s_INPUT_ZERO_POINT));", P);
        line(w, "r = _mm_min_epi32(_mm_max_epi32(r, _mm_set1_epi32(-128)), _mm_set1_epi32(127));");
        line(w, "r = _mm_packs_epi16(_mm_packs_epi32(r, r), r);");
        line(w, "int32_t four = _mm_cvtsi128_si32(r);");
        line(w, "memcpy(output + i, &four, 4);");
    }
    w->indent--;
    line(w, "}");
    line(w, "for (; i < %s_INPUT_SIZE; i++) {", P);
    line(w, "    double v = (double)input[i] / %s_INPUT_SCALE;", P);
    line(w, "    v = (v < 0 ? -floor(-v + 0.5) : floor(v + 0.5)) + %s_INPUT_ZERO_POINT;", P);
    line(w, "    output[i] = (int8_t)(!(v > -128) ? -128 : v > 127 ? 127 : v);");
    line(w, "}");
    w->indent--;
    line(w, "}");
    blank(w);
}

/* The float head: its sums times each channel's scale, then the model's
 * activation, as the reference computes it in float. */
static void emit_float_head(Writer *w, const Model *m, const QuantPlan *plan,
                            const QuantWeights *qw)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    const Layer *h = m->layers[plan->head];
    int64_t ch = h->out.dim[h->out.rank - 1];
    line(w, "static const float %s_head_scales[%lld] = {", x, (long long)ch);
    for (int64_t c = 0; c < ch; c++) {
        char buf[48];
        format_float(buf, (float)qw->head_scales[c]);
        line(w, "    %s,", buf);
    }
    line(w, "};");
    blank(w);
    line(w, "static void %s_float_head(const int32_t *sums, float *output)", x);
    line(w, "{");
    w->indent++;
    line(w, "for (int i = 0; i < %s_OUTPUT_SIZE; i++)", P);
    line(w, "    output[i] = (float)sums[i] * %s_head_scales[i %% %lld];", x, (long long)ch);
    switch (m->layers[m->nlayers - 1]->activation) {
    case ACT_SIGMOID:
        line(w, "for (int i = 0; i < %s_OUTPUT_SIZE; i++)", P);
        line(w, "    output[i] = 1.0f / (1.0f + expf(-output[i]));");
        break;
    case ACT_TANH:
        line(w, "for (int i = 0; i < %s_OUTPUT_SIZE; i++)", P);
        line(w, "    output[i] = tanhf(output[i]);");
        break;
    default: /* softmax over each row of channels */
        line(w, "for (int r = 0; r < %s_OUTPUT_SIZE; r += %lld) {", P, (long long)ch);
        line(w, "    float max = output[r], sum = 0.0f;");
        line(w, "    for (int c = 1; c < %lld; c++)", (long long)ch);
        line(w, "        max = output[r + c] > max ? output[r + c] : max;");
        line(w, "    for (int c = 0; c < %lld; c++) {", (long long)ch);
        line(w, "        output[r + c] = expf(output[r + c] - max);");
        line(w, "        sum += output[r + c];");
        line(w, "    }");
        line(w, "    for (int c = 0; c < %lld; c++)", (long long)ch);
        line(w, "        output[r + c] /= sum;");
        line(w, "}");
        break;
    }
    w->indent--;
    line(w, "}");
    blank(w);
}

/* The input quantized and predict_q's outputs in y, static buffers of
 * the function (predict is not reentrant: one static arena). */
static void emit_quantize_and_predict(Writer *w, const EmitOptions *o)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "static int8_t q[%s_INPUT_SIZE];", P);
    line(w, "static %s y[%s_OUTPUT_SIZE];", q_output_type(o), P);
    line(w, "%s_quantize(input, q);", x);
    line(w, "%s_predict_q(q, y);", x);
}

/* predict_q's outputs in float: dequantized, or the float head's. */
static void emit_float_outputs(Writer *w, const EmitOptions *o)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "static void %s_float_outputs(const %s *y, float *output)", x, q_output_type(o));
    line(w, "{");
    if (o->qplan->head >= 0) {
        line(w, "    %s_float_head(y, output);", x);
    } else {
        line(w, "    for (int i = 0; i < %s_OUTPUT_SIZE; i++)", P);
        line(w,
             "        output[i] = (float)(y[i] - %s_OUTPUT_ZERO_POINT) * (float)%s_OUTPUT_SCALE;",
             P, P);
    }
    line(w, "}");
    blank(w);
}

/* predict_batch in blocks of BLOCK_SAMPLES: the inputs quantized, the
 * clone's block (its large layers a block at a time), the outputs back. */
static void emit_predict_batch_blocks_q(Writer *w, const EmitOptions *o)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "void %s_predict_batch(const float *input, float *output, int n)", x);
    line(w, "{");
    w->indent++;
    line(w, "static int8_t q[%s_BLOCK_SAMPLES * %s_INPUT_SIZE];", P, P);
    line(w, "static %s y[%s_BLOCK_SAMPLES * %s_OUTPUT_SIZE];", q_output_type(o), P, P);
    line(w, "const %s_clone *clone = %s_clone_in_use();", x, x);
    line(w, "for (int i = 0; i < n; i += %s_BLOCK_SAMPLES) {", P);
    w->indent++;
    line(w, "int m = n - i < %s_BLOCK_SAMPLES ? n - i : %s_BLOCK_SAMPLES;", P, P);
    line(w, "for (int s = 0; s < m; s++)");
    line(w,
         "    clone->quantize(input + (size_t)(i + s) * %s_INPUT_SIZE, q + (size_t)s * "
         "%s_INPUT_SIZE);",
         P, P);
    line(w, "clone->forward_block(%s_block_arena, q, y, m);", x);
    line(w, "for (int s = 0; s < m; s++)");
    line(w,
         "    %s_float_outputs(y + (size_t)s * %s_OUTPUT_SIZE, output + (size_t)(i + s) * "
         "%s_OUTPUT_SIZE);",
         x, P, P);
    w->indent--;
    line(w, "}");
    w->indent--;
    line(w, "}");
    blank(w);
}

static void emit_predict_float_q(Writer *w, const EmitOptions *o, bool clones, bool blocks)
{
    const char *x = w->prefix;
    emit_float_outputs(w, o);
    line(w, "void %s_predict(const float *input, float *output)", x);
    line(w, "{");
    w->indent++;
    emit_quantize_and_predict(w, o);
    line(w, "%s_float_outputs(y, output);", x);
    w->indent--;
    line(w, "}");
    blank(w);
    if (blocks) {
        emit_predict_batch_blocks_q(w, o);
    } else {
        line(w, "void %s_predict_batch(const float *input, float *output, int n)", x);
        line(w, "{");
        emit_batch_loop(w);
        line(w, "}");
        blank(w);
    }
    line(w, "const char *%s_isa(void)", x);
    line(w, "{");
    if (clones)
        line(w, "    return %s_clone_in_use()->name;", x);
    else
        line(w, "    return \"scalar\";");
    line(w, "}");
}

static void emit_main_q(Writer *w, const Model *m, const EmitOptions *o)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    blank(w);
    line(w, "/* The program: predict [--raw] (cnngen's sample reader). */");
    line(w, "#define CNNRT_API static");
    line(w, "#define CNNRT_INT8 1");
    fputs(cnngen_embedded_predict_lines, w->out);
    blank(w);
    line(w, "/* --raw: predict_q's outputs as integers. */");
    line(w, "static void %s_predict_raw(const float *input, long *output)", x);
    line(w, "{");
    w->indent++;
    emit_quantize_and_predict(w, o);
    line(w, "for (int i = 0; i < %s_OUTPUT_SIZE; i++)", P);
    line(w, "    output[i] = y[i];");
    w->indent--;
    line(w, "}");
    blank(w);
    line(w, "int main(int argc, char **argv)");
    line(w, "{");
    line(w,
         "    return cnnrt_predict_command_int8(argc, argv, \"%s\", %s_INPUT_SIZE, %s_OUTPUT_SIZE,",
         m->name, P, P);
    line(w, "                                      %s_predict_batch, %s_predict_raw);", x, x);
    line(w, "}");
}

/* ---- int8 clones (docs/int8.md) ------------------------------------------
 * The int8 model is lowered once per clone of emit_clones_q: AVX-512 VNNI
 * and AVX2 kernels through target attributes and intrinsics on x86-64
 * with gcc or clang, whatever -march says, and the plain loops everywhere
 * (the only clone elsewhere, with other compilers, and with
 * -DCNNGEN_PORTABLE).  -DCNNGEN_ONLY_VNNI (_AVX2) builds that clone alone.
 * The first clone the CPU runs is chosen at the first call; CNNGEN_ISA
 * names another (if the CPU runs it). */

static const char *const qclone_targets[EMIT_QCLONE_COUNT] = {
    "__attribute__((target(\"avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma\")))",
    "__attribute__((target(\"avx2,fma\")))",
    "",
    "",
};

static void emit_q_clone_selection(Writer *w)
{
    const char *P = w->macro_prefix;
    static const CloneBranch branches[] = {
        {"#if defined(CNNGEN_ONLY_VNNI)", 1, {1, 0, 0, 0}},
        {"#elif defined(CNNGEN_ONLY_AVX2)", 1, {0, 1, 0, 0}},
        {"#elif !defined(CNNGEN_PORTABLE) && defined(__GNUC__) && defined(__arm__) && "
         "!defined(__aarch64__)",
         0,
         {0, 0, 1, 0}},
        {"#elif defined(CNNGEN_PORTABLE) || !defined(__GNUC__) || !defined(__x86_64__) || \\\n"
         "    (defined(__clang__) && __clang_major__ < 7) || \\\n"
         "    (!defined(__clang__) && __GNUC__ < 9)",
         0,
         {0, 0, 0, 1}},
        {"#elif defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \\\n"
         "    defined(__AVX512VL__)",
         1,
         {1, 0, 0, 0}},
        {"#elif defined(__AVX2__)", 1, {1, 1, 0, 0}},
        {"#else", 1, {1, 1, 0, 1}},
    };
    line(w, "/* Instruction sets: the clones this compiler builds (see %s_isa): on", w->prefix);
    line(w, " * x86-64 with gcc 9 or clang 7 and later, AVX-512 VNNI and AVX2 kernels");
    line(w, " * whatever -march says, and the plain loops unless the compiler targets");
    line(w, " * AVX2; on a 32-bit ARM with gcc or clang the packed kernels, with SMLAD");
    line(w, " * where it has the DSP extension (a Cortex-M4, M7 or M33; gcc 10, clang 11");
    line(w, " * and later: ACLE's SIMD32 intrinsics), plain multiply-adds elsewhere (an");
    line(w, " * M0+ or M3); the plain loops alone elsewhere. */");
    emit_clone_branches(w, branches, sizeof branches / sizeof branches[0], emit_clones_q,
                        qclone_targets, EMIT_QCLONE_COUNT);
    line(w, "#define %s_KERNELS (%s_WITH_VNNI || %s_WITH_AVX2 || %s_WITH_DSP)", P, P, P, P);
    line(w, "#if %s_WITH_VNNI || %s_WITH_AVX2", P, P);
    line(w, "#include <immintrin.h>");
    line(w, "#endif");
    line(w, "#if %s_WITH_DSP && defined(__ARM_FEATURE_DSP) && \\", P);
    line(w, "    ((defined(__clang__) && __clang_major__ >= 11) || \\");
    line(w, "     (!defined(__clang__) && __GNUC__ >= 10))");
    line(w, "#define %s_SMLAD 1", P);
    line(w, "#define %s_DSP_NAME \"dsp\"", P);
    line(w, "#include <arm_acle.h>");
    line(w, "#else");
    line(w, "#define %s_SMLAD 0", P);
    line(w, "#define %s_DSP_NAME \"packed\" /* the same kernels without SMLAD */", P);
    line(w, "#endif");
    blank(w);
}

/* Whether a program has vectors of `lanes` elements of the type. */
static bool uses_typed_lanes(const IrProgram *p, IrType type, int lanes)
{
    for (int i = 0; i < p->nfuncs; i++)
        for (int v = 0; v < p->funcs[i]->nvregs; v++)
            if (p->funcs[i]->vreg_types[v] == type && p->funcs[i]->vreg_lanes[v] == lanes)
                return true;
    return false;
}

static bool uses_int_lanes(const IrProgram *p, int lanes)
{
    return uses_typed_lanes(p, IR_I32, lanes);
}

/* The kernels' GNU C vectors: int32 sums and the int64 steps of their
 * requantization; int8 vectors of the weights (four a lane), of the
 * outputs (one a lane) and of max pooling. */
static void emit_q_vector_types(Writer *w, const IrProgram *programs, int nprograms)
{
    const char *x = w->prefix;
    bool bytes[65] = {false};
    line(w, "#if %s_KERNELS", w->macro_prefix);
    /* (the DSP clone's one int32 a "vector", its four weight bytes) */
    if (nprograms > EMIT_QCLONE_DSP && uses_int_lanes(&programs[EMIT_QCLONE_DSP], 1)) {
        bytes[4] = true;
        line(w, "typedef int32_t %s_i32x1 __attribute__((vector_size(4)));", x);
    }
    for (int lanes = 4; lanes <= 16; lanes *= 2) {
        bool used = false;
        for (int k = 0; k < nprograms; k++)
            used |= uses_int_lanes(&programs[k], lanes);
        if (!used)
            continue;
        bytes[lanes] = bytes[4 * lanes] = true;
        line(w, "typedef int32_t %s_i32x%d __attribute__((vector_size(%d)));", x, lanes, 4 * lanes);
        line(w, "typedef int64_t %s_i64x%d __attribute__((vector_size(%d)));", x, lanes, 8 * lanes);
    }
    for (int lanes = 4; lanes <= 64; lanes *= 2) {
        for (int k = 0; k < nprograms; k++)
            bytes[lanes] |= uses_typed_lanes(&programs[k], IR_I8, lanes);
        if (bytes[lanes])
            line(w, "typedef int8_t %s_i8x%d __attribute__((vector_size(%d)));", x, lanes, lanes);
    }
    line(w, "#endif");
    blank(w);
}

/* The intrinsics' prefix and integer vector type of a width in bits. */
static const char *x86_intrinsic_prefix(int bits)
{
    return bits == 512 ? "_mm512" : bits == 256 ? "_mm256" : "_mm";
}

static const char *x86_integer_type(int bits)
{
    return bits == 512 ? "__m512i" : bits == 256 ? "__m256i" : "__m128i";
}

/* Clone k's max and min of int8 vectors of `lanes` (max pooling). */
static void emit_q_byte_helpers(Writer *w, int k, int lanes)
{
    const char *x = w->prefix, *sfx = w->suffix;
    static const char *const ops[2][2] = {{"max", ">"}, {"min", "<"}};
    for (int o = 0; o < 2; o++) {
        line(w,
             "static inline __attribute__((always_inline, unused))%s %s_i8x%d "
             "%s_v%s8x%d%s(%s_i8x%d a, %s_i8x%d b)",
             w->target, x, lanes, x, ops[o][0], lanes, sfx, x, lanes, x, lanes);
        line(w, "{");
        /* vpmaxsb and vpminsb, as in emit_q_helpers; 512 bits in the VNNI clone alone */
        if (lanes >= 16 && (lanes < 64 || emit_clones_q[k].lanes == 16))
            line(w, "    return (%s_i8x%d)%s_%s_epi8((%s)a, (%s)b);", x, lanes,
                 x86_intrinsic_prefix(8 * lanes), ops[o][0], x86_integer_type(8 * lanes),
                 x86_integer_type(8 * lanes));
        else {
            line(w, "    %s_i8x%d pick = a %s b;", x, lanes, ops[o][1]);
            line(w, "    return (a & pick) | (b & ~pick);");
        }
        line(w, "}");
        blank(w);
    }
}

/* IRE_VDOT4 of `lanes` in clone k: vpdpbusd on unsigned bytes (the
 * kernels' copy of their input, x + 128), or AVX2's vpmaddubsw on |x|
 * and the weights with x's sign (no pair of products then saturates 16
 * bits), then vpmaddwd adding the pairs. */
static void emit_q_dot4(Writer *w, int k, int lanes, const char *sig)
{
    static const char *const vnni[] = {"_mm_dpbusd_epi32(", "_mm256_dpbusd_epi32(",
                                       "_mm512_dpbusd_epi32("};
    static const char *const kinds[] = {"__m128i", "__m256i", "__m512i"};
    static const char *const sets[] = {"_mm_set1_epi32", "_mm256_set1_epi32", "_mm512_set1_epi32"};
    int wide = lanes == 4 ? 0 : lanes == 8 ? 1 : 2;
    const char *x = w->prefix;
    line(w, "%s", sig);
    line(w, "{");
    line(w, "    uint32_t x4;");
    line(w, "    memcpy(&x4, x, 4);");
    if (emit_clones_q[k].dot_offset) {
        line(w, "    return (%s_i32x%d)%s(%s)acc, %s((int32_t)x4), (%s)w);", x, lanes, vnni[wide],
             kinds[wide], sets[wide], kinds[wide]);
    } else {
        const char *pre = wide == 0 ? "_mm" : "_mm256";
        line(w, "    %s v = %s_set1_epi32((int32_t)x4);", kinds[wide], pre);
        line(w, "    %s pairs = %s_maddubs_epi16(%s_abs_epi8(v), %s_sign_epi8((%s)w, v));",
             kinds[wide], pre, pre, pre, kinds[wide]);
        line(w, "    return acc + (%s_i32x%d)%s_madd_epi16(pairs, %s_set1_epi16(1));", x, lanes,
             pre, pre);
    }
    line(w, "}");
    blank(w);
}

/* IRE_VDOT4 of a pair of positions (`lanes` of 8 or 16): the 8 bytes at x
 * broadcast, and shuffled so that the low half's lanes see bytes 0..3 and
 * the high half's bytes step..step+3; then as emit_q_dot4. */
static void emit_q_dot4_pair(Writer *w, int k, int lanes, const char *sig)
{
    bool wide = lanes == 16;
    const char *x = w->prefix, *mm = wide ? "_mm512" : "_mm256", *T = wide ? "__m512i" : "__m256i";
    line(w, "%s", sig);
    line(w, "{");
    line(w, "    uint64_t x8;");
    line(w, "    memcpy(&x8, x, 8);");
    line(w, "    const int32_t low = 0x03020100, high = low + 0x01010101 * step;");
    if (wide)
        line(w,
             "    %s pick = _mm512_inserti64x4(_mm512_set1_epi32(low), _mm256_set1_epi32(high), "
             "1);",
             T);
    else
        line(w,
             "    %s pick = _mm256_inserti128_si256(_mm256_set1_epi32(low), "
             "_mm_set1_epi32(high), 1);",
             T);
    line(w, "    %s v = %s_shuffle_epi8(%s_set1_epi64%s((long long)x8), pick);", T, mm, mm,
         wide ? "" : "x");
    if (emit_clones_q[k].dot_offset) {
        line(w, "    return (%s_i32x%d)%s_dpbusd_epi32((%s)acc, v, (%s)w);", x, lanes, mm, T, T);
    } else {
        line(w, "    %s pairs = %s_maddubs_epi16(%s_abs_epi8(v), %s_sign_epi8((%s)w, v));", T, mm,
             mm, mm, T);
        line(w, "    return acc + (%s_i32x%d)%s_madd_epi16(pairs, %s_set1_epi16(1));", x, lanes, mm,
             mm);
    }
    line(w, "}");
    blank(w);
}

/* The vector requantization, lane for lane the scalar PREFIX_requantize,
 * in intrinsics (gcc scalarised GNU C's int64 vectors of 16 lanes):
 * a left shift that saturates where shifting back does not give x; the
 * doubling high product (x * multiplier + 2^30) >> 31 in 64 bits, even
 * lanes then odd (the multiplier is positive: never INT32_MIN); then
 * TFLite's division by 2^right, rounded half away from zero.  The
 * `_right` one is for layers whose shifts are all at most 0. */
static void emit_q_requantize(Writer *w, const char *attrs, int lanes, bool right_only)
{
    const char *x = w->prefix, *sfx = w->suffix;
    bool wide = lanes == 16; /* AVX-512: compares give masks */
    const char *mm = x86_intrinsic_prefix(32 * lanes), *T = x86_integer_type(32 * lanes);
    const char *all = lanes == 16 ? "0xAAAA" : lanes == 8 ? "0xAA" : "0xA";
    line(w, "%s %s_i32x%d %s_vrequant%s%d%s(%s_i32x%d v, %s_i32x%d multiplier, %s_i32x%d shift)",
         attrs, x, lanes, x, right_only ? "_right" : "", lanes, sfx, x, lanes, x, lanes, x, lanes);
    line(w, "{");
    w->indent++;
    line(w, "%s a = (%s)v, m = (%s)multiplier, s = (%s)shift;", T, T, T, T);
    line(w, "const %s zero = %s_setzero_si%d(), one = %s_set1_epi32(1);", T, mm, 32 * lanes, mm);
    if (!right_only) {
        line(w, "%s left = %s_max_epi32(s, zero), shifted = %s_sllv_epi32(a, left);", T, mm, mm);
        line(w, "%s saturated = %s_xor_si%d(%s_set1_epi32(INT32_MAX), %s_srai_epi32(a, 31));", T,
             mm, 32 * lanes, mm, mm);
        if (wide)
            line(w,
                 "a = %s_mask_blend_epi32(%s_cmpneq_epi32_mask(%s_srav_epi32(shifted, left), a), "
                 "shifted, saturated);",
                 mm, mm, mm);
        else
            line(w,
                 "a = %s_blendv_epi8(saturated, shifted, %s_cmpeq_epi32(%s_srav_epi32(shifted, "
                 "left), a));",
                 mm, mm, mm);
    }
    line(w, "%s right = %s_max_epi32(%s_sub_epi32(zero, s), zero);", T, mm, mm);
    line(w, "const %s nudge = %s_set1_epi64%s((int64_t)1 << 30);", T, mm, wide ? "" : "x");
    line(w, "%s even = %s_srli_epi64(%s_add_epi64(%s_mul_epi32(a, m), nudge), 31);", T, mm, mm, mm);
    line(w, "%s odd = %s_mul_epi32(%s_srli_epi64(a, 32), %s_srli_epi64(m, 32));", T, mm, mm, mm);
    line(w, "odd = %s_slli_epi64(%s_add_epi64(odd, nudge), 1);   /* bits 31..62 up high */", mm,
         mm);
    if (wide)
        line(w, "%s h = %s_mask_blend_epi32(%s, even, odd);", T, mm, all);
    else
        line(w, "%s h = %s_blend_epi32(even, odd, %s);", T, mm, all);
    line(w, "%s mask = %s_sub_epi32(%s_sllv_epi32(one, right), one);", T, mm, mm);
    line(w, "%s threshold = %s_add_epi32(%s_srli_epi32(mask, 1), %s_srli_epi32(h, 31));", T, mm, mm,
         mm);
    line(w, "%s r = %s_srav_epi32(h, right);", T, mm);
    if (wide)
        line(w,
             "return (%s_i32x%d)%s_mask_add_epi32(r, %s_cmpgt_epi32_mask(%s_and_si%d(h, mask), "
             "threshold), r, one);",
             x, lanes, mm, mm, mm, 32 * lanes);
    else
        line(w,
             "return (%s_i32x%d)%s_sub_epi32(r, %s_cmpgt_epi32(%s_and_si%d(h, mask), threshold));",
             x, lanes, mm, mm, mm, 32 * lanes);
    w->indent--;
    line(w, "}");
    blank(w);
}

/* Clone k's helpers for its int32 vectors of `lanes`: the dot products,
 * the requantization, clamps and the narrowing store.  `unused`: a layer
 * may need only some of them, and clang warns of a static inline function
 * left unused. */
static void emit_q_helpers(Writer *w, int k, int lanes)
{
    const char *x = w->prefix, *sfx = w->suffix;
    char *N = upper(emit_clones_q[k].name);
    char attrs[160], sig[320];
    snprintf(attrs, sizeof attrs,
             "static inline __attribute__((always_inline, unused)) %s_TARGET_%s", w->macro_prefix,
             N);
    snprintf(sig, sizeof sig, "%s %s_i32x%d %s_dot4x%d%s(%s_i32x%d acc, const void *x, %s_i8x%d w)",
             attrs, x, lanes, x, lanes, sfx, x, lanes, x, 4 * lanes);
    emit_q_dot4(w, k, lanes, sig);
    if (w->program->pair_lanes & (unsigned)lanes) {
        snprintf(sig, sizeof sig,
                 "%s %s_i32x%d %s_dot4x%dp%s(%s_i32x%d acc, const void *x, %s_i8x%d w, int step)",
                 attrs, x, lanes, x, lanes, sfx, x, lanes, x, 4 * lanes);
        emit_q_dot4_pair(w, k, lanes, sig);
        /* a pair's weights, biases and multipliers: the channels' twice */
        const char *T = x86_integer_type(32 * lanes);
        line(w, "%s %s %s_twice%d%s(const void *p)", attrs, T, x, 32 * lanes, sfx);
        line(w, "{");
        if (lanes == 16)
            line(w, "    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));");
        else
            line(w, "    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));");
        line(w, "}");
        blank(w);
    }
    emit_q_requantize(w, attrs, lanes, false);
    emit_q_requantize(w, attrs, lanes, true);
    /* The clamps and pooling maxima as vpmaxsd and vpminsd: gcc -O2 made
     * the select idiom a compare and a blend, 8% of lenet's first conv. */
    const char *mm = x86_intrinsic_prefix(32 * lanes), *T = x86_integer_type(32 * lanes);
    static const char *const ops[2] = {"max", "min"};
    for (int o = 0; o < 2; o++) {
        line(w, "%s %s_i32x%d %s_v%s%d%s(%s_i32x%d a, int32_t b)", attrs, x, lanes, x, ops[o],
             lanes, sfx, x, lanes);
        line(w, "{");
        line(w, "    return (%s_i32x%d)%s_%s_epi32((%s)a, %s_set1_epi32(b));", x, lanes, mm, ops[o],
             T, mm);
        line(w, "}");
        blank(w);
        line(w, "%s %s_i32x%d %s_v%sv%d%s(%s_i32x%d a, %s_i32x%d b)", attrs, x, lanes, x, ops[o],
             lanes, sfx, x, lanes, x, lanes);
        line(w, "{");
        line(w, "    return (%s_i32x%d)%s_%s_epi32((%s)a, (%s)b);", x, lanes, mm, ops[o], T, T);
        line(w, "}");
        blank(w);
    }
    line(w, "%s void %s_store8x%d%s(int8_t *to, %s_i32x%d v)", attrs, x, lanes, sfx, x, lanes);
    line(w, "{");
    line(w, "    %s_i8x%d q = __builtin_convertvector(v, %s_i8x%d);", x, lanes, x, lanes);
    line(w, "    memcpy(to, &q, sizeof q);");
    line(w, "}");
    blank(w);
    free(N);
}

/* The 32-bit ARM clone's helpers, its "vectors" one int32 sum: a dot
 * product of four bytes as two SMLADs of the sign-extended even and odd
 * bytes (SXTB16, and of the bytes rotated by 8), as CMSIS-NN does, where
 * the CPU has the DSP extension, else four multiply-adds; the
 * requantization, clamps and maxima those of a scalar. */
static void emit_q_helpers_dsp(Writer *w)
{
    const char *x = w->prefix, *sfx = w->suffix, *P = w->macro_prefix;
    const char *attrs = "static inline __attribute__((always_inline, unused))";
    line(w, "#if %s_SMLAD", P);
    /* SXTB16's rotation in the same instruction: gcc 12 writes the rotation
     * apart (a fifth of the dot product's instructions) */
    line(w, "%s int16x2_t %s_sxtb16_ror8(uint32_t v)", attrs, x);
    line(w, "{");
    line(w, "#if defined(__clang__)");
    line(w, "    return __sxtb16(__ror(v, 8));");
    line(w, "#else");
    line(w, "    int16x2_t r;");
    line(w, "    __asm__(\"sxtb16 %%0, %%1, ror #8\" : \"=r\"(r) : \"r\"(v));");
    line(w, "    return r;");
    line(w, "#endif");
    line(w, "}");
    blank(w);
    line(w, "%s %s_i32x1 %s_dot4x1%s(%s_i32x1 acc, const void *x, %s_i8x4 w)", attrs, x, x, sfx, x,
         x);
    line(w, "{");
    line(w, "    uint32_t x4, w4;");
    line(w, "    memcpy(&x4, x, 4);");
    line(w, "    memcpy(&w4, &w, 4);");
    line(w, "    int32_t even = __smlad(__sxtb16(x4), __sxtb16(w4), acc[0]);");
    line(w, "    acc[0] = __smlad(%s_sxtb16_ror8(x4), %s_sxtb16_ror8(w4), even);", x, x);
    line(w, "    return acc;");
    line(w, "}");
    line(w, "#else");
    line(w, "%s %s_i32x1 %s_dot4x1%s(%s_i32x1 acc, const void *x, %s_i8x4 w)", attrs, x, x, sfx, x,
         x);
    line(w, "{");
    line(w, "    const int8_t *b = (const int8_t *)x;");
    line(w, "    acc[0] += b[0] * w[0] + b[1] * w[1] + b[2] * w[2] + b[3] * w[3];");
    line(w, "    return acc;");
    line(w, "}");
    line(w, "#endif");
    blank(w);
    for (int right = 0; right < 2; right++) {
        line(w, "%s %s_i32x1 %s_vrequant%s1%s(%s_i32x1 v, %s_i32x1 multiplier, %s_i32x1 shift)",
             attrs, x, x, right ? "_right" : "", sfx, x, x, x);
        line(w, "{");
        line(w, "    v[0] = %s_requantize(v[0], multiplier[0], shift[0]);", x);
        line(w, "    return v;");
        line(w, "}");
        blank(w);
    }
    static const char *const ops[2] = {"max", "min"};
    for (int o = 0; o < 2; o++) {
        line(w, "%s %s_i32x1 %s_v%s1%s(%s_i32x1 a, int32_t b)", attrs, x, x, ops[o], sfx, x);
        line(w, "{");
        line(w, "    a[0] = %s_%s32(a[0], b);", x, ops[o]);
        line(w, "    return a;");
        line(w, "}");
        blank(w);
        line(w, "%s %s_i32x1 %s_v%sv1%s(%s_i32x1 a, %s_i32x1 b)", attrs, x, x, ops[o], sfx, x, x);
        line(w, "{");
        line(w, "    a[0] = %s_%s32(a[0], b[0]);", x, ops[o]);
        line(w, "    return a;");
        line(w, "}");
        blank(w);
    }
    line(w, "%s void %s_store8x1%s(int8_t *to, %s_i32x1 v)", attrs, x, sfx, x);
    line(w, "{");
    line(w, "    *to = (int8_t)v[0];");
    line(w, "}");
    blank(w);
}

/* The packed kernels and vector biases of the vector clones. */
static void emit_q_packed(Writer *w, const QuantWeights *qw)
{
    const char *P = w->macro_prefix;
    if (qw->npacked == 0)
        return;
    line(w, "#if %s_KERNELS", P);
    line(w, "/* The vector kernels': each map's int8 kernel packed four inputs to a lane, and");
    line(w, " * per channel its bias with the input's zero point folded in, for the VNNI");
    line(w, " * clone (inputs as unsigned bytes), then for the AVX2 one. */");
    emit_int8_constants(w, "packed", "qpacked", qw->packed, qw->npacked);
    char attrs[64];
    snprintf(attrs, sizeof attrs, " %s_ALIGNED", P);
    emit_int32_constants(w, "qvbias", attrs, qw->vbias, qw->nvbias);
    line(w, "#endif");
    blank(w);
}

/* The table of the clones built, the choice, and predict_q through it. */
static void emit_q_dispatch(Writer *w, const EmitOptions *o, bool blocks)
{
    const char *x = w->prefix, *P = w->macro_prefix;
    line(w, "typedef struct {");
    line(w, "    const char *name;");
    line(w, "    void (*predict_q)(const int8_t *, %s *);", q_output_type(o));
    line(w, "    void (*quantize)(const float *, int8_t *);");
    if (blocks)
        line(w, "    void (*forward_block)(int8_t *, const int8_t *, %s *, int);",
             q_output_type(o));
    line(w, "} %s_clone;", x);
    blank(w);
    line(w, "static const %s_clone %s_clones[] = {", x, x);
    for (int k = 0; k < EMIT_QCLONE_COUNT; k++) {
        char *N = upper(emit_clones_q[k].name);
        line(w, "#if %s_WITH_%s", P, N);
        const char *name = emit_clones_q[k].name;
        char shown[64]; /* PREFIX_isa()'s: the ARM clone's says whether it has SMLAD */
        if (k == EMIT_QCLONE_DSP)
            snprintf(shown, sizeof shown, "%s_DSP_NAME", P);
        else
            snprintf(shown, sizeof shown, "\"%s\"", name);
        if (blocks)
            line(w, "    {%s, %s_predict_q_%s, %s_quantize_%s, %s_forward_block_%s},", shown, x,
                 name, x, name, x, name);
        else
            line(w, "    {%s, %s_predict_q_%s, %s_quantize_%s},", shown, x, name, x, name);
        line(w, "#endif");
        free(N);
    }
    line(w, "};");
    blank(w);
    static const CloneNeeds needs[] = {
        {"vnni", {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni"}},
        {"avx2", {"avx2", "fma"}}};
    emit_clone_choice(w, needs, 2);
    line(w, "void %s_predict_q(const int8_t *input, %s *output)", x, q_output_type(o));
    line(w, "{");
    line(w, "    %s_clone_in_use()->predict_q(input, output);", x);
    line(w, "}");
    blank(w);
    line(w, "void %s_quantize(const float *input, int8_t *output)", x);
    line(w, "{");
    line(w, "    %s_clone_in_use()->quantize(input, output);", x);
    line(w, "}");
    blank(w);
}

/* Clone k's program (k < 0: the only one): its helpers, layer functions
 * and predict_q. */
static void emit_q_program(Writer *w, const Model *m, const IrProgram *p, int k,
                           const EmitOptions *o, bool blocks)
{
    char suffix[32], target[160];
    char *N = begin_clone(w, k >= 0 ? &emit_clones_q[k] : NULL, k >= 0 ? qclone_targets[k] : "",
                          suffix, target);
    w->program = p;
    if (k == EMIT_QCLONE_DSP && uses_int_lanes(p, 1))
        emit_q_helpers_dsp(w);
    for (int lanes = 4; lanes <= 16 && k >= 0; lanes *= 2)
        if (uses_int_lanes(p, lanes))
            emit_q_helpers(w, k, lanes);
    for (int lanes = 4; lanes <= 64 && k >= 0; lanes *= 2)
        if (uses_typed_lanes(p, IR_I8, lanes))
            emit_q_byte_helpers(w, k, lanes);
    for (int i = 0; i < p->nfuncs; i++)
        print_function(w, p->funcs[i]);
    emit_predict_q(w, m, p, o);
    if (k >= 0 && blocks)
        emit_forward_block(w, p);
    if (k >= 0 && qclone_targets[k][0])
        emit_quantize_vector(w, emit_clones_q[k].lanes == 16);
    else if (k >= 0)
        emit_quantize_input(w);
    end_clone(w, N);
}

static void emit_c_source_q(FILE *out, const Model *m, const IrProgram *programs, int nprograms,
                            const EmitOptions *o)
{
    char *P = upper(o->prefix);
    Writer w = file_writer(out, m, o, P);
    w.program = &programs[0];
    bool clones = nprograms > 1;
    open_source(&w, m, o);
    blank(&w);
    line(&w, "#if defined(__GNUC__)");
    line(&w, "#define %s_LAYER static __attribute__((noinline))", P);
    line(&w, "#define %s_ALIGNED __attribute__((aligned(64)))", P);
    line(&w, "#else");
    line(&w, "#define %s_LAYER static", P);
    line(&w, "#define %s_ALIGNED", P);
    line(&w, "#endif");
    line(&w, "#define %s_UNROLL4", P);
    blank(&w);
    if (clones)
        emit_q_clone_selection(&w);
    line(&w, "/* Activations of one sample, int8; buffers share space where lifetimes allow. */");
    line(&w, "static int8_t %s_arena[%s_ARENA_BYTES + 1] %s_ALIGNED;", o->prefix, P, P);
    emit_q_constants(&w, o->qweights);
    blank(&w);
    if (clones) {
        emit_q_packed(&w, o->qweights);
        emit_q_vector_types(&w, programs, nprograms);
    }
    emit_requantize(&w);
    bool blocks = clones && has_block_functions(programs, nprograms);
    if (blocks) {
        line(&w, "/* predict_batch's blocks: an arena a sample, BLOCK_STRIDE bytes apart. */");
        line(&w, "#define %s_BLOCK_SAMPLES %d", P, m->block_samples);
        line(&w, "#define %s_BLOCK_STRIDE %lld", P, (long long)m->block_stride);
        line(&w, "static int8_t %s_block_arena[%s_BLOCK_SAMPLES * %s_BLOCK_STRIDE] %s_ALIGNED;",
             o->prefix, P, P, P);
        blank(&w);
    }
    for (int k = 0; k < nprograms; k++)
        emit_q_program(&w, m, &programs[k], clones ? k : -1, o, blocks);
    if (clones)
        emit_q_dispatch(&w, o, blocks);
    else
        emit_quantize_input(&w);
    if (o->qplan->head >= 0)
        emit_float_head(&w, m, o->qplan, o->qweights);
    emit_predict_float_q(&w, o, clones, blocks);
    if (o->main)
        emit_main_q(&w, m, o);
    free(P);
}

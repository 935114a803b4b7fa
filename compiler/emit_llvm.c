/* emit_llvm.c - the loop IR as LLVM IR, through the LLVM-C API.
 *
 * The second printer of the same IrProgram emit_c prints: every IrFunc
 * becomes one internal function whose arguments are its views (noalias,
 * as the C backend's restrict pointers), loops become counted loops with
 * a phi, float temporaries become allocas that LLVM's mem2reg turns into
 * registers, multiply-adds become llvm.fmuladd (what clang does for C:
 * FMA where the target has it).  Around them the glue of the C backend,
 * built here as IR: the arena and training memory, the parameters, the
 * tensor tables, predict, the loaders, the training step and main.  The
 * public symbols and their ABI are those OUT.h declares.
 *
 * Then LLVM's own pipeline (default<O3>, with the loop and SLP
 * vectorisers, for the target's CPU) and the text or the object.  Not
 * threaded: OpenMP loops print as plain loops (see docs/design.md).
 *
 * One version of the model's functions (the host's CPU, or the target's),
 * or for an x86-64 target without a CPU named a multiversioned object:
 * the C backend's AVX-512, AVX2 and SSE clones, each printed from its own
 * lowering with its own target attributes, and the public entry points
 * dispatching to the one the CPU runs (Version, dispatch).
 */
#include "emit_llvm.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"
#include "layers/layers.h"
#include "util.h"

const char *emit_llvm_version(void)
{
    return LLVM_VERSION_STRING;
}

/* One version of the model's functions: the only one, or one of a
 * multiversioned object's instruction-set clones (emit_clones), each the
 * model lowered with the clone's vector width, with its own target
 * attributes and a suffix on its functions' names. */
typedef struct {
    const IrProgram *p;
    const char *name;           /* emit_clones' name: PREFIX_isa() and CNNGEN_ISA say it */
    char suffix[16];            /* of its functions' names ("_avx2"), or "" */
    const char *cpu, *features; /* its functions' target attributes, or NULL */
    LLVMValueRef *bodies;       /* one per IrFunc */
    LLVMTypeRef *body_types;
    bool **used; /* per IrFunc: the views it uses */
} Version;

/* The module being built, its types, and the globals every function uses. */
typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetDataRef layout;
    const Model *m;
    const IrProgram *p; /* the version being built's (use_version) */
    const EmitOptions *o;
    const char *cpu, *features;           /* the functions' target attributes, or NULL */
    const char *base_cpu, *base_features; /* the glue's: the target machine's */
    Version *versions;
    int nversions, version;      /* the one being built */
    LLVMValueRef version_in_use; /* a multiversioned object's choice (i32 ()), or NULL */
    bool contract;               /* multiply-adds as llvm.fmuladd */
    LLVMTypeRef f32, f64, i8, i32, i64, lng, vd, pf32, pi8;
    LLVMValueRef arena, train, params; /* as float pointers (an int8 module's arena: int8) */
    LLVMValueRef qweights, qconsts;    /* an int8 module's constants (int8, int32 pointers) */
    LLVMValueRef qpacked, qvbias;      /* and its vector kernels' (quant.h), or NULL */
    LLVMValueRef vrequant[2][17];      /* the vector requantizations made: [right only][lanes] */
    LLVMValueRef requantize;           /* its requantization (emit_requantize), once made */
    LLVMValueRef block_arena;          /* predict_batch's blocks' (graph_plan_blocks) */
    LLVMValueRef train_seed, train_step, train_lr;
    LLVMValueRef profile; /* --profile: cnnrt_profile_count[nlayers + 2], else NULL */
    LLVMValueRef layers;  /* the layer table, once made (layer_table) */
} Gen;

static char *symbol(const Gen *g, const char *name)
{
    size_t n = strlen(g->o->prefix) + strlen(name) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s_%s", g->o->prefix, name);
    return s;
}

/* name with the suffix of the version being built: each clone's
 * functions are its own ("forward_avx2"). */
static char *version_name(const Gen *g, const char *name)
{
    const char *suffix = g->versions[g->version].suffix;
    size_t n = strlen(name) + strlen(suffix) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s", name, suffix);
    return s;
}

/* Build version k's functions next (its loop IR and target attributes). */
static void use_version(Gen *g, int k)
{
    const Version *v = &g->versions[k];
    g->version = k;
    g->p = v->p;
    g->cpu = v->cpu;
    g->features = v->features;
}

/* The version being built: its IrFuncs' functions. */
static const Version *current(const Gen *g)
{
    return &g->versions[g->version];
}

/* Build the glue next: the target machine's attributes (one version's
 * when there is one). */
static void use_glue(Gen *g)
{
    g->cpu = g->base_cpu;
    g->features = g->base_features;
}

/* Integer constants: C's int, int64_t, long. */
static LLVMValueRef i32c(const Gen *g, long long v)
{
    return LLVMConstInt(g->i32, (unsigned long long)v, 1);
}

static LLVMValueRef i64c(const Gen *g, long long v)
{
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}

static LLVMValueRef lngc(const Gen *g, long long v)
{
    return LLVMConstInt(g->lng, (unsigned long long)v, 1);
}

static void add_enum_attribute(const Gen *g, LLVMValueRef fn, unsigned index, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, index, LLVMCreateEnumAttribute(g->ctx, kind, 0));
}

/* A function of this module: internal ones are the C backend's statics;
 * every one carries the target's CPU, as clang's functions do, so the .ll
 * optimises the same under opt. */
static LLVMValueRef add_function(Gen *g, const char *name, LLVMTypeRef type, bool internal)
{
    LLVMValueRef fn = LLVMAddFunction(g->mod, name, type);
    if (internal)
        LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_enum_attribute(g, fn, LLVMAttributeFunctionIndex, "nounwind");
    if (g->cpu) {
        LLVMAddAttributeAtIndex(
            fn, LLVMAttributeFunctionIndex,
            LLVMCreateStringAttribute(g->ctx, "target-cpu", 10, g->cpu, (unsigned)strlen(g->cpu)));
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(g->ctx, "target-features", 15,
                                                          g->features,
                                                          (unsigned)strlen(g->features)));
    }
    return fn;
}

/* An external function (libm, the runtime), declared once. */
static LLVMValueRef external(Gen *g, const char *name, LLVMTypeRef type)
{
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, name);
    return fn ? fn : LLVMAddFunction(g->mod, name, type);
}

static LLVMValueRef call(Gen *g, LLVMValueRef fn, LLVMTypeRef type, LLVMValueRef *args, int n)
{
    return LLVMBuildCall2(g->b, type, fn, args, (unsigned)n, "");
}

static LLVMValueRef intrinsic(Gen *g, const char *name, LLVMTypeRef overload, LLVMTypeRef *type)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    *type = LLVMIntrinsicGetType(g->ctx, id, &overload, 1);
    return LLVMGetIntrinsicDeclaration(g->mod, id, &overload, 1);
}

/* ptr + offset floats */
static LLVMValueRef float_at(Gen *g, LLVMValueRef ptr, LLVMValueRef offset)
{
    return LLVMBuildInBoundsGEP2(g->b, g->f32, ptr, &offset, 1, "");
}

/* A zeroed global of count floats (+1, as the C backend's, never empty). */
static LLVMValueRef float_array(Gen *g, const char *name, int64_t count)
{
    LLVMTypeRef type = LLVMArrayType(g->f32, (unsigned)(count + 1));
    char *sym = symbol(g, name);
    LLVMValueRef v = LLVMAddGlobal(g->mod, type, sym);
    free(sym);
    LLVMSetInitializer(v, LLVMConstNull(type));
    LLVMSetLinkage(v, LLVMInternalLinkage);
    LLVMSetAlignment(v, 64);
    return LLVMConstBitCast(v, g->pf32);
}

/* ---- the loop IR ------------------------------------------------------------ */

/* A view's or scalar's element type (ir.h's IrType). */
static LLVMTypeRef element_type(const Gen *g, IrType t)
{
    return t == IR_I8 || t == IR_U8 ? g->i8 : t == IR_I32 ? g->i32 : g->f32;
}

/* ptr + offset elements of the type */
static LLVMValueRef typed_at(Gen *g, IrType t, LLVMValueRef ptr, LLVMValueRef offset)
{
    return LLVMBuildInBoundsGEP2(g->b, element_type(g, t), ptr, &offset, 1, "");
}

typedef struct {
    Gen *g;
    const IrFunc *f;
    LLVMValueRef fn;
    LLVMValueRef *view;   /* a float pointer per view */
    LLVMValueRef *var;    /* the current value of each loop variable (i64) */
    LLVMValueRef *scalar; /* an alloca per float temporary */
    LLVMValueRef *vreg;   /* an alloca per vector temporary */
    LLVMValueRef n;       /* the batch's n (i32), in training functions */
} FuncGen;

static LLVMValueRef index_value(FuncGen *x, const IrIndex *ix)
{
    Gen *g = x->g;
    LLVMValueRef v = i64c(g, ix->c);
    for (int i = 0; i < ix->n; i++) {
        LLVMValueRef term = LLVMBuildMul(g->b, x->var[ix->t[i].var], i64c(g, ix->t[i].coef), "");
        v = LLVMBuildAdd(g->b, v, term, "");
    }
    return v;
}

static LLVMValueRef element(FuncGen *x, int view, const IrIndex *ix)
{
    return typed_at(x->g, x->f->views[view].type, x->view[view], index_value(x, ix));
}

static LLVMTypeRef scalar_type(FuncGen *x, int scalar)
{
    return element_type(x->g, x->f->scalar_types[scalar]);
}

/* A vector of `lanes` floats (IrFunc.vreg_lanes, IrExpr.lanes). */
static LLVMTypeRef vector_type(Gen *g, int lanes)
{
    return LLVMVectorType(g->f32, (unsigned)lanes);
}

static LLVMTypeRef vreg_type(FuncGen *x, int vreg)
{
    IrType t = x->f->vreg_types[vreg];
    if (t == IR_F32)
        return vector_type(x->g, x->f->vreg_lanes[vreg]);
    return LLVMVectorType(t == IR_I32 ? x->g->i32 : x->g->i8, (unsigned)x->f->vreg_lanes[vreg]);
}

/* IRE_VPAIRS: the two floats at the index as one i64, splat and seen as
 * floats again (an integer: no float operation touches their bits). */
static LLVMValueRef pairs(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    LLVMValueRef at =
        LLVMBuildBitCast(g->b, element(x, e->view, &e->index), LLVMPointerType(g->i64, 0), "");
    LLVMValueRef pair = LLVMBuildLoad2(g->b, g->i64, at, "");
    LLVMSetAlignment(pair, 4);
    unsigned n = (unsigned)e->lanes / 2;
    LLVMTypeRef wide = LLVMVectorType(g->i64, n);
    LLVMValueRef one = LLVMBuildInsertElement(g->b, LLVMGetUndef(wide), pair, i32c(g, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(g->i32, n));
    LLVMValueRef splat = LLVMBuildShuffleVector(g->b, one, LLVMGetUndef(wide), mask, "");
    return LLVMBuildBitCast(g->b, splat, vector_type(g, e->lanes), "");
}

static bool is_vector(LLVMValueRef v)
{
    return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind;
}

/* A scalar as a vector of `lanes` of its type (GNU C's scalar * vector). */
static LLVMValueRef splat(Gen *g, LLVMValueRef v, unsigned lanes)
{
    LLVMTypeRef type = LLVMVectorType(LLVMTypeOf(v), lanes);
    LLVMValueRef one = LLVMBuildInsertElement(g->b, LLVMGetUndef(type), v, i32c(g, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(g->i32, lanes));
    return LLVMBuildShuffleVector(g->b, one, LLVMGetUndef(type), mask, "");
}

static void same_shape(Gen *g, LLVMValueRef *a, LLVMValueRef *b)
{
    if (is_vector(*a) && !is_vector(*b))
        *b = splat(g, *b, LLVMGetVectorSize(LLVMTypeOf(*a)));
    else if (is_vector(*b) && !is_vector(*a))
        *a = splat(g, *a, LLVMGetVectorSize(LLVMTypeOf(*b)));
}

/* a * b + c, rounded once where the target fuses (llvm.fmuladd). */
static LLVMValueRef multiply_add(Gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    same_shape(g, &a, &b);
    same_shape(g, &a, &c);
    same_shape(g, &b, &c);
    LLVMTypeRef type;
    LLVMValueRef fn = intrinsic(g, "llvm.fmuladd", LLVMTypeOf(a), &type);
    LLVMValueRef args[3] = {a, b, c};
    return call(g, fn, type, args, 3);
}

static LLVMValueRef expr_value(FuncGen *x, const IrExpr *e);

/* IRE_VUNPAIR: the even lanes, then the odd. */
static LLVMValueRef unpair(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    LLVMValueRef v = expr_value(x, e->a), order[16];
    for (int i = 0; i < e->lanes; i++)
        order[i] = i32c(g, i < e->lanes / 2 ? 2 * i : 2 * (i - e->lanes / 2) + 1);
    return LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(LLVMTypeOf(v)),
                                  LLVMConstVector(order, (unsigned)e->lanes), "");
}

/* (a op b ? then : otherwise), as the C backend prints it. */
static LLVMValueRef conditional(Gen *g, LLVMRealPredicate op, LLVMValueRef a, LLVMValueRef b,
                                LLVMValueRef then, LLVMValueRef otherwise)
{
    same_shape(g, &a, &b);
    same_shape(g, &then, &otherwise);
    same_shape(g, &a, &then);
    same_shape(g, &b, &otherwise);
    LLVMValueRef cond = LLVMBuildFCmp(g->b, op, a, b, "");
    return LLVMBuildSelect(g->b, cond, then, otherwise, "");
}

static LLVMValueRef math_call(FuncGen *x, const char *name, const IrExpr *e)
{
    Gen *g = x->g;
    LLVMValueRef a = expr_value(x, e->a);
    LLVMTypeRef type = LLVMFunctionType(g->f32, &g->f32, 1, 0);
    return call(g, external(g, name, type), type, &a, 1);
}

/* int32 arithmetic (an int8 program's): C's, with signed division and
 * max, min as compare-and-select. */
static LLVMValueRef int_binary(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    LLVMValueRef a = expr_value(x, e->a), b = expr_value(x, e->b);
    same_shape(g, &a, &b);
    switch (e->kind) {
    case IRE_ADD: return LLVMBuildNSWAdd(g->b, a, b, "");
    case IRE_SUB: return LLVMBuildNSWSub(g->b, a, b, "");
    case IRE_MUL: return LLVMBuildNSWMul(g->b, a, b, "");
    case IRE_DIV: return LLVMBuildSDiv(g->b, a, b, "");
    case IRE_MAX:
    case IRE_MIN: {
        LLVMValueRef cond =
            LLVMBuildICmp(g->b, e->kind == IRE_MAX ? LLVMIntSGT : LLVMIntSLT, a, b, "");
        return LLVMBuildSelect(g->b, cond, a, b, "");
    }
    default: unreachable();
    }
}

static LLVMValueRef requantize_call(FuncGen *x, const IrExpr *e);
static LLVMValueRef dot4(FuncGen *x, const IrExpr *e);

static LLVMValueRef binary(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    if (ir_expr_is_int(x->f, e))
        return int_binary(x, e);
    if (g->contract && e->kind == IRE_ADD && (e->a->kind == IRE_MUL || e->b->kind == IRE_MUL)) {
        const IrExpr *mul = e->a->kind == IRE_MUL ? e->a : e->b;
        const IrExpr *other = mul == e->a ? e->b : e->a;
        LLVMValueRef ma = expr_value(x, mul->a), mb = expr_value(x, mul->b);
        return multiply_add(g, ma, mb, expr_value(x, other));
    }
    LLVMValueRef a = expr_value(x, e->a), b = expr_value(x, e->b);
    same_shape(g, &a, &b);
    switch (e->kind) {
    case IRE_ADD: return LLVMBuildFAdd(g->b, a, b, "");
    case IRE_SUB: return LLVMBuildFSub(g->b, a, b, "");
    case IRE_MUL: return LLVMBuildFMul(g->b, a, b, "");
    case IRE_DIV: return LLVMBuildFDiv(g->b, a, b, "");
    case IRE_MAX: return conditional(g, LLVMRealOGT, a, b, a, b);
    case IRE_MIN: return conditional(g, LLVMRealOLT, a, b, a, b);
    default: unreachable();
    }
}

static LLVMValueRef expr_value(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    switch (e->kind) {
    case IRE_ICONST: return i32c(g, e->ivalue);
    case IRE_REQUANT: return requantize_call(x, e);
    case IRE_VDOT4: return dot4(x, e);
    case IRE_CONST: return LLVMConstReal(g->f32, (double)e->value);
    case IRE_LOAD: {
        IrType type = x->f->views[e->view].type;
        LLVMValueRef v =
            LLVMBuildLoad2(g->b, element_type(g, type), element(x, e->view, &e->index), "");
        LLVMSetAlignment(v, type == IR_I8 || type == IR_U8 ? 1 : 4);
        if (type == IR_U8)
            return LLVMBuildZExt(g->b, v, g->i32, "");
        return type == IR_I8 ? LLVMBuildSExt(g->b, v, g->i32, "") : v; /* int8 reads as int32 */
    }
    case IRE_SCALAR:
        return LLVMBuildLoad2(g->b, scalar_type(x, e->scalar), x->scalar[e->scalar], "");
    case IRE_ADD:
    case IRE_SUB:
    case IRE_MUL:
    case IRE_DIV:
    case IRE_MAX:
    case IRE_MIN: return binary(x, e);
    case IRE_NEG:
        return ir_expr_is_int(x->f, e) ? LLVMBuildNeg(g->b, expr_value(x, e->a), "")
                                       : LLVMBuildFNeg(g->b, expr_value(x, e->a), "");
    case IRE_EXP: return math_call(x, "expf", e);
    case IRE_TANH: return math_call(x, "tanhf", e);
    case IRE_LOG: return math_call(x, "logf", e);
    case IRE_SQRT: {
        LLVMTypeRef type;
        LLVMValueRef fn = intrinsic(g, "llvm.sqrt", g->f32, &type), a = expr_value(x, e->a);
        return call(g, fn, type, &a, 1);
    }
    case IRE_BATCH: return LLVMBuildSIToFP(g->b, x->n, g->f32, "");
    case IRE_SELECT_POS:
        if (ir_expr_is_int(x->f, e->a)) {
            LLVMValueRef cond =
                LLVMBuildICmp(g->b, LLVMIntSGT, expr_value(x, e->a), i32c(g, 0), "");
            return LLVMBuildSelect(g->b, cond, expr_value(x, e->b), expr_value(x, e->c), "");
        }
        return conditional(g, LLVMRealOGT, expr_value(x, e->a), LLVMConstReal(g->f32, 0),
                           expr_value(x, e->b), expr_value(x, e->c));
    case IRE_VREG: return LLVMBuildLoad2(g->b, vreg_type(x, e->scalar), x->vreg[e->scalar], "");
    case IRE_VZERO:
        return LLVMConstNull(e->ivalue ? LLVMVectorType(g->i32, (unsigned)e->lanes)
                                       : vector_type(g, e->lanes));
    case IRE_VLANE: {
        LLVMValueRef v = LLVMBuildLoad2(g->b, vreg_type(x, e->scalar), x->vreg[e->scalar], "");
        return LLVMBuildExtractElement(g->b, v, i32c(g, e->index.c), "");
    }
    case IRE_VPAIRS: return pairs(x, e);
    case IRE_VUNPAIR: return unpair(x, e);
    case IRE_VLOAD: {
        IrType t = x->f->views[e->view].type;
        unsigned lanes = (unsigned)e->lanes, loaded = e->ivalue ? lanes / 2 : lanes;
        LLVMTypeRef type = LLVMVectorType(element_type(g, t), loaded);
        LLVMValueRef ptr =
            LLVMBuildBitCast(g->b, element(x, e->view, &e->index), LLVMPointerType(type, 0), "");
        LLVMValueRef v = LLVMBuildLoad2(g->b, type, ptr, "");
        LLVMSetAlignment(v, t == IR_F32 || t == IR_I32 ? 4 : 1);
        if (!e->ivalue)
            return v;
        LLVMValueRef twice[64]; /* the half in both halves */
        for (unsigned i = 0; i < lanes; i++)
            twice[i] = i32c(g, (int)(i % loaded));
        return LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(type), LLVMConstVector(twice, lanes),
                                      "");
    }
    }
    unreachable();
}

/* old + value, a multiply-add when value is a product (x += a * b). */
static LLVMValueRef accumulated(FuncGen *x, LLVMValueRef old, const IrExpr *value)
{
    if (ir_expr_is_int(x->f, value))
        return LLVMBuildNSWAdd(x->g->b, old, expr_value(x, value), "");
    if (x->g->contract && value->kind == IRE_MUL) {
        LLVMValueRef a = expr_value(x, value->a), b = expr_value(x, value->b);
        return multiply_add(x->g, a, b, old);
    }
    LLVMValueRef v = expr_value(x, value);
    same_shape(x->g, &old, &v);
    return LLVMBuildFAdd(x->g->b, old, v, "");
}

static void block(FuncGen *x, const IrBlock *b);

/* for (i = lo; i < hi; i++) each(i): a header with a phi, the body, a
 * latch; guarded when the trip count may be zero.  The IR's loops and the
 * glue's (over samples) both. */
typedef void (*LoopBody)(Gen *g, LLVMValueRef i, void *arg);

static void counted_loop(Gen *g, LLVMValueRef lo, LLVMValueRef hi, bool guard, const char *name,
                         LoopBody each, void *arg)
{
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(g->b));
    LLVMBasicBlockRef before = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->ctx, fn, "loop");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, fn, "done");
    if (guard)
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, lo, hi, ""), head, done);
    else
        LLVMBuildBr(g->b, head);
    LLVMPositionBuilderAtEnd(g->b, head);
    LLVMValueRef i = LLVMBuildPhi(g->b, g->i64, name);
    each(g, i, arg);
    LLVMValueRef next = LLVMBuildAdd(g->b, i, i64c(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, next, hi, ""), head, done);
    LLVMValueRef values[2] = {lo, next};
    LLVMBasicBlockRef blocks[2] = {before, latch};
    LLVMAddIncoming(i, values, blocks, 2);
    LLVMPositionBuilderAtEnd(g->b, done);
}

/* for (i = 0; i < n; i++), n an i32 (the batch's) */
static void loop_to(Gen *g, LLVMValueRef n, LoopBody each, void *arg)
{
    counted_loop(g, i64c(g, 0), LLVMBuildSExt(g->b, n, g->i64, ""), true, "i", each, arg);
}

typedef struct {
    FuncGen *x;
    const IrStmt *s;
} IrLoop;

static void ir_loop_body(Gen *g, LLVMValueRef i, void *arg)
{
    (void)g;
    IrLoop *l = arg;
    l->x->var[l->s->var] = i;
    block(l->x, &l->s->body);
}

/* An IRS_FOR: constant bounds, or the batch's n (its whole groups, or
 * the samples they leave). */
static void loop(FuncGen *x, const IrStmt *s)
{
    Gen *g = x->g;
    if (!s->to_batch && s->lo >= s->hi)
        return;
    LLVMValueRef lo = i64c(g, s->lo), hi = i64c(g, s->hi);
    if (s->to_batch) {
        hi = LLVMBuildSExt(g->b, x->n, g->i64, "");
        if (s->group > 1) {
            LLVMValueRef groups = LLVMBuildSDiv(g->b, hi, i64c(g, s->group), "");
            if (s->batch_tail)
                lo = LLVMBuildMul(g->b, groups, i64c(g, s->group), "");
            else
                hi = groups;
        }
    }
    LLVMValueRef saved = x->var[s->var];
    IrLoop l = {x, s};
    counted_loop(g, lo, hi, s->to_batch, x->f->var_names[s->var], ir_loop_body, &l);
    x->var[s->var] = saved;
}

/* float s = value; s = value; s += value (a vector, when type is one). */
static void set_temporary(FuncGen *x, LLVMValueRef slot, LLVMTypeRef type, const IrStmt *s)
{
    Gen *g = x->g;
    LLVMValueRef v;
    if (s->mode == SCALAR_ADD)
        v = accumulated(x, LLVMBuildLoad2(g->b, type, slot, ""), s->value);
    else
        v = expr_value(x, s->value);
    if (LLVMGetTypeKind(type) == LLVMVectorTypeKind && !is_vector(v))
        v = splat(g, v, LLVMGetVectorSize(type));
    LLVMBuildStore(g->b, v, slot);
}

static void stmt(FuncGen *x, const IrStmt *s)
{
    Gen *g = x->g;
    switch (s->kind) {
    case IRS_FOR: loop(x, s); break;
    case IRS_STORE: {
        IrType type = x->f->views[s->view].type;
        LLVMValueRef ptr = element(x, s->view, &s->index), v;
        if (s->accumulate) {
            LLVMValueRef old = LLVMBuildLoad2(g->b, element_type(g, type), ptr, "");
            LLVMSetAlignment(old, type == IR_I8 || type == IR_U8 ? 1 : 4);
            if (type == IR_I8)
                old = LLVMBuildSExt(g->b, old, g->i32, "");
            else if (type == IR_U8)
                old = LLVMBuildZExt(g->b, old, g->i32, "");
            v = accumulated(x, old, s->value);
        } else {
            v = expr_value(x, s->value);
        }
        if (type == IR_I8 || type == IR_U8) /* the lowering clamped it */
            v = LLVMBuildTrunc(g->b, v, g->i8, "");
        LLVMSetAlignment(LLVMBuildStore(g->b, v, ptr), type == IR_I8 || type == IR_U8 ? 1 : 4);
        break;
    }
    case IRS_SCALAR: set_temporary(x, x->scalar[s->scalar], scalar_type(x, s->scalar), s); break;
    case IRS_VSET: set_temporary(x, x->vreg[s->scalar], vreg_type(x, s->scalar), s); break;
    case IRS_VSTORE: {
        LLVMValueRef v = LLVMBuildLoad2(g->b, vreg_type(x, s->scalar), x->vreg[s->scalar], "");
        unsigned lanes = (unsigned)x->f->vreg_lanes[s->scalar];
        IrType t = x->f->views[s->view].type;
        if (t == IR_I8 && x->f->vreg_types[s->scalar] == IR_I32) /* clamped: narrowed */
            v = LLVMBuildTrunc(g->b, v, LLVMVectorType(g->i8, lanes), "");
        LLVMValueRef ptr = LLVMBuildBitCast(g->b, element(x, s->view, &s->index),
                                            LLVMPointerType(LLVMTypeOf(v), 0), "");
        LLVMSetAlignment(LLVMBuildStore(g->b, v, ptr), t == IR_F32 || t == IR_I32 ? 4 : 1);
        break;
    }
    case IRS_COMMENT: break;
    }
}

static void block(FuncGen *x, const IrBlock *b)
{
    for (int i = 0; i < b->count; i++)
        stmt(x, b->items[i]);
}

/* The body of an IrFunc as a function of its views (one sample's, in a
 * per-sample function) and n: (float *noalias v..., i32 n). */
static void build_body(Gen *g, int k)
{
    const IrFunc *f = g->p->funcs[k];
    const Version *version = current(g);
    bool *used = version->used[k];
    int nargs = 0;
    LLVMTypeRef *params = xcalloc((size_t)f->nviews + 1, sizeof *params);
    for (int i = 0; i < f->nviews; i++)
        if (used[i] && f->views[i].base != VIEW_LOCAL)
            params[nargs++] = LLVMPointerType(element_type(g, f->views[i].type), 0);
    params[nargs++] = g->i32;
    LLVMTypeRef type = LLVMFunctionType(g->vd, params, (unsigned)nargs, 0);
    free(params);
    char *base = version_name(g, f->name), *name = symbol(g, base);
    LLVMValueRef fn = add_function(g, name, type, true);
    free(name);
    free(base);
    /* noinline: each layer a function of its own, as in the C (a large
     * layer inlined into predict leaves the register allocator no room). */
    add_enum_attribute(g, fn, LLVMAttributeFunctionIndex, "noinline");
    version->bodies[k] = fn;
    version->body_types[k] = type;

    FuncGen x = {g, f, fn, NULL, NULL, NULL, NULL, NULL};
    x.view = xcalloc((size_t)f->nviews + 1, sizeof *x.view);
    x.var = xcalloc((size_t)f->nvars + 1, sizeof *x.var);
    x.scalar = xcalloc((size_t)f->nscalars + 1, sizeof *x.scalar);
    x.vreg = xcalloc((size_t)f->nvregs + 1, sizeof *x.vreg);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    int arg = 0;
    for (int i = 0; i < f->nviews; i++) {
        if (!used[i])
            continue;
        if (f->views[i].base == VIEW_LOCAL) {
            int64_t size = f->views[i].size ? f->views[i].size : 1;
            LLVMTypeRef elem = element_type(g, f->views[i].type);
            LLVMValueRef a =
                LLVMBuildAlloca(g->b, LLVMArrayType(elem, (unsigned)size), f->views[i].name);
            LLVMSetAlignment(a, 32);
            x.view[i] = LLVMBuildBitCast(g->b, a, LLVMPointerType(elem, 0), "");
            continue;
        }
        x.view[i] = LLVMGetParam(fn, (unsigned)arg);
        LLVMSetValueName2(x.view[i], f->views[i].name, strlen(f->views[i].name));
        add_enum_attribute(g, fn, (unsigned)arg + 1, "noalias");
        arg++;
    }
    x.n = LLVMGetParam(fn, (unsigned)arg);
    LLVMSetValueName2(x.n, "n", 1);
    for (int i = 0; i < f->nscalars; i++)
        x.scalar[i] = LLVMBuildAlloca(g->b, scalar_type(&x, i), f->scalar_names[i]);
    for (int i = 0; i < f->nvregs; i++)
        x.vreg[i] = LLVMBuildAlloca(g->b, vreg_type(&x, i), f->vreg_names[i]);
    block(&x, &f->body);
    LLVMBuildRetVoid(g->b);
    free(x.view);
    free(x.var);
    free(x.scalar);
    free(x.vreg);
}

/* A call of IrFunc k from the glue: its views from the bases (the sample
 * s's, in a per-sample function: a loop over the samples). */
typedef struct {
    LLVMValueRef input, output, target, n;
    LLVMValueRef arena; /* predict_ws's workspace; NULL: the static arena */
} Bases;

static LLVMValueRef view_base(Gen *g, const IrView *v, const Bases *at)
{
    switch (v->base) {
    case VIEW_INPUT: return at->input;
    case VIEW_OUTPUT: return at->output;
    case VIEW_TARGET: return at->target;
    case VIEW_ARENA: return at->arena ? at->arena : g->arena;
    case VIEW_PARAMS:
        return v->type == IR_I8 ? g->qweights : v->type == IR_I32 ? g->qconsts : g->params;
    case VIEW_TRAIN: return g->train;
    case VIEW_PACKED: return v->type == IR_I8 ? g->qpacked : g->qvbias;
    case VIEW_LOCAL: break;
    }
    unreachable();
}

static void call_body(Gen *g, int k, const Bases *at, LLVMValueRef sample)
{
    const IrFunc *f = g->p->funcs[k];
    LLVMValueRef *args = xcalloc((size_t)f->nviews + 1, sizeof *args);
    int nargs = 0;
    for (int i = 0; i < f->nviews; i++) {
        const IrView *v = &f->views[i];
        if (!current(g)->used[k][i] || v->base == VIEW_LOCAL)
            continue;
        LLVMValueRef offset = i64c(g, v->offset);
        if (sample && v->sample_stride)
            offset = LLVMBuildAdd(g->b, offset,
                                  LLVMBuildMul(g->b, sample, i64c(g, v->sample_stride), ""), "");
        args[nargs++] = typed_at(g, v->type, view_base(g, v, at), offset);
    }
    args[nargs++] = at->n ? at->n : i32c(g, 1);
    call(g, current(g)->bodies[k], current(g)->body_types[k], args, nargs);
    free(args);
}

typedef struct {
    int k;
    const Bases *at;
} SampleCall;

static void call_for_sample(Gen *g, LLVMValueRef s, void *arg)
{
    const SampleCall *c = arg;
    call_body(g, c->k, c->at, s);
}

static void call_ir_func(Gen *g, int k, const Bases *at)
{
    if (g->p->funcs[k]->per_sample) {
        SampleCall c = {k, at};
        loop_to(g, at->n, call_for_sample, &c);
    } else {
        call_body(g, k, at, NULL);
    }
}

/* ---- --profile: the runtime's clock between the calls (emit_c.c's) ---------------- */

static LLVMValueRef profile_clock(Gen *g)
{
    LLVMTypeRef type = LLVMFunctionType(g->i64, NULL, 0, 0);
    return call(g, external(g, "cnnrt_profile_clock", type), type, NULL, 0);
}

static LLVMValueRef profile_entry(Gen *g, int index)
{
    LLVMValueRef at[2] = {i64c(g, 0), i64c(g, index)};
    LLVMTypeRef type = LLVMGlobalGetValueType(g->profile);
    return LLVMBuildBitCast(g->b, LLVMBuildInBoundsGEP2(g->b, type, g->profile, at, 2, ""), g->pi8,
                            "");
}

/* Entry index's time since `since` (one call more); the time now. */
static LLVMValueRef profile_mark(Gen *g, int index, LLVMValueRef since)
{
    LLVMTypeRef params[2] = {g->pi8, g->i64};
    LLVMTypeRef type = LLVMFunctionType(g->i64, params, 2, 0);
    LLVMValueRef args[2] = {profile_entry(g, index), since};
    return call(g, external(g, "cnnrt_profile_mark", type), type, args, 2);
}

/* The whole call's entry: its time since start, and samples more. */
static void profile_whole(Gen *g, LLVMValueRef start, LLVMValueRef samples)
{
    int whole = g->m->nlayers + 1;
    profile_mark(g, whole, start);
    LLVMValueRef at[3] = {i64c(g, 0), i64c(g, whole), i32c(g, 2)};
    LLVMValueRef field =
        LLVMBuildInBoundsGEP2(g->b, LLVMGlobalGetValueType(g->profile), g->profile, at, 3, "");
    LLVMValueRef old = LLVMBuildLoad2(g->b, g->i64, field, "");
    LLVMBuildStore(g->b, LLVMBuildAdd(g->b, old, samples, ""), field);
}

/* The calls of phases a and b in program order; with *t (--profile, a
 * timed step) each call's time goes to its layer's entry (the loss's
 * after the layers'). */
static void call_phases(Gen *g, const Bases *at, IrPhase a, IrPhase b, LLVMValueRef *t)
{
    for (int k = 0; k < g->p->nfuncs; k++)
        if (g->p->funcs[k]->phase == a || g->p->funcs[k]->phase == b) {
            call_ir_func(g, k, at);
            if (t) {
                int layer = g->p->funcs[k]->layer;
                *t = profile_mark(g, layer >= 0 ? layer : g->m->nlayers, *t);
            }
        }
}

/* ---- the glue ------------------------------------------------------------------ */

static LLVMValueRef string_constant(Gen *g, const char *text)
{
    size_t n = strlen(text);
    LLVMValueRef init = LLVMConstStringInContext(g->ctx, text, (unsigned)n, 0);
    LLVMValueRef v = LLVMAddGlobal(g->mod, LLVMTypeOf(init), ".str");
    LLVMSetInitializer(v, init);
    LLVMSetGlobalConstant(v, 1);
    LLVMSetLinkage(v, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(v, LLVMGlobalUnnamedAddr);
    return LLVMConstBitCast(v, g->pi8);
}

static LLVMValueRef constant_table(Gen *g, const char *name, LLVMTypeRef row, LLVMValueRef *rows,
                                   int n, bool internal)
{
    LLVMValueRef init = LLVMConstArray(row, rows, (unsigned)n);
    char *sym = symbol(g, name);
    LLVMValueRef v = LLVMAddGlobal(g->mod, LLVMTypeOf(init), sym);
    free(sym);
    LLVMSetInitializer(v, init);
    LLVMSetGlobalConstant(v, 1);
    if (internal)
        LLVMSetLinkage(v, LLVMInternalLinkage);
    return v;
}

static LLVMValueRef shape_constant(Gen *g, const Shape *s)
{
    LLVMValueRef dims[5];
    for (int d = 0; d < 5; d++)
        dims[d] = i32c(g, d < s->rank ? s->dim[d] : 0);
    return LLVMConstArray(g->i32, dims, 5);
}

/* PREFIX_tensors (OUT.h's PREFIX_tensor: name, rank, shape[5], long
 * offset, trainable) and the runtime's cnnrt_tensor_spec table. */
static LLVMValueRef tensor_tables(Gen *g)
{
    const Model *m = g->m;
    int n = m->nparams;
    LLVMTypeRef shape = LLVMArrayType(g->i32, 5);
    LLVMTypeRef pub_fields[5] = {g->pi8, g->i32, shape, g->lng, g->i32};
    LLVMTypeRef spec_fields[4] = {g->pi8, g->i32, shape, g->lng};
    LLVMTypeRef pub = LLVMStructTypeInContext(g->ctx, pub_fields, 5, 0);
    LLVMTypeRef spec = LLVMStructTypeInContext(g->ctx, spec_fields, 4, 0);
    LLVMValueRef *pubs = xcalloc((size_t)n + 1, sizeof *pubs);
    LLVMValueRef *specs = xcalloc((size_t)n + 1, sizeof *specs);
    for (int k = 0; k < n; k++) {
        const Param *p = m->params[k];
        LLVMValueRef f[5] = {string_constant(g, p->name), i32c(g, p->shape.rank),
                             shape_constant(g, &p->shape), lngc(g, p->offset),
                             i32c(g, p->trainable ? 1 : 0)};
        pubs[k] = LLVMConstStructInContext(g->ctx, f, 5, 0);
        specs[k] = LLVMConstStructInContext(g->ctx, f, 4, 0);
    }
    pubs[n] = LLVMConstNull(pub);
    specs[n] = LLVMConstNull(spec);
    constant_table(g, "tensors", pub, pubs, n + 1, false);
    LLVMValueRef v = constant_table(g, "runtime_specs", spec, specs, n + 1, true);
    free(pubs);
    free(specs);
    return LLVMConstBitCast(v, g->pi8);
}

/* The parameter block as bytes of floats in the target's byte order:
 * baked weights, or the model's literal values (zero elsewhere). */
static void parameters(Gen *g)
{
    const Model *m = g->m;
    int64_t count = m->param_floats;
    unsigned char *bytes = xcalloc((size_t)count + 1, 4);
    bool big_endian = LLVMByteOrder(g->layout) == LLVMBigEndian;
    for (int k = 0; k < m->nparams; k++) {
        const Param *p = m->params[k];
        for (int64_t j = 0; j < shape_size(&p->shape); j++) {
            float v = emit_param_value(p, g->o, j);
            uint32_t u;
            memcpy(&u, &v, 4);
            for (int b = 0; b < 4; b++)
                bytes[4 * (p->offset + j) + b] =
                    (unsigned char)(u >> (8 * (big_endian ? 3 - b : b)));
        }
    }
    LLVMValueRef init =
        LLVMConstStringInContext(g->ctx, (const char *)bytes, (unsigned)(4 * (count + 1)), 1);
    free(bytes);
    char *sym = symbol(g, "params");
    LLVMValueRef v = LLVMAddGlobal(g->mod, LLVMTypeOf(init), sym);
    free(sym);
    LLVMSetInitializer(v, init);
    LLVMSetLinkage(v, LLVMInternalLinkage);
    LLVMSetGlobalConstant(v, g->o->weights != NULL);
    LLVMSetAlignment(v, 64);
    g->params = LLVMConstBitCast(v, g->pf32);
}

/* A public function and its entry block, with the builder there. */
static LLVMValueRef begin_function(Gen *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                                   int n, bool internal)
{
    char *sym = symbol(g, name);
    LLVMValueRef fn = add_function(g, sym, LLVMFunctionType(ret, params, (unsigned)n, 0), internal);
    free(sym);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    return fn;
}

static LLVMValueRef public_function(Gen *g, const char *name)
{
    char *sym = symbol(g, name);
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, sym);
    free(sym);
    return fn;
}

static void memcpy_floats(Gen *g, LLVMValueRef to, LLVMValueRef from, LLVMValueRef count)
{
    LLVMBuildMemCpy(g->b, to, 4, from, 4, LLVMBuildMul(g->b, count, i64c(g, 4), ""));
}

static void predict_one_sample(Gen *g, LLVMValueRef i, void *arg)
{
    LLVMValueRef *a = arg; /* input, output, predict */
    int64_t in = shape_size(&g->m->input), out = shape_size(model_output_shape(g->m));
    LLVMValueRef args[2] = {float_at(g, a[0], LLVMBuildMul(g->b, i, i64c(g, in), "")),
                            float_at(g, a[1], LLVMBuildMul(g->b, i, i64c(g, out), ""))};
    LLVMTypeRef params[2] = {g->pf32, g->pf32};
    call(g, a[2], LLVMFunctionType(g->vd, params, 2, 0), args, 2);
}

/* ---- predict_batch in blocks (emit_c.c's emit_forward_block) -------------------- */

typedef struct {
    int from, to; /* the functions computing one sample */
    const Bases *at;
} BlockSamples;

/* Sample s of a block: the functions from..to-1 in its own arena. */
static void block_sample(Gen *g, LLVMValueRef s, void *arg)
{
    const BlockSamples *b = arg;
    const Model *m = g->m;
    int64_t in = shape_size(&m->input), out = shape_size(model_output_shape(m));
    Bases one = {float_at(g, b->at->input, LLVMBuildMul(g->b, s, i64c(g, in), "")),
                 float_at(g, b->at->output, LLVMBuildMul(g->b, s, i64c(g, out), "")), NULL, NULL,
                 float_at(g, b->at->arena, LLVMBuildMul(g->b, s, i64c(g, m->block_stride), ""))};
    for (int k = b->from; k < b->to; k++)
        if (g->p->funcs[k]->phase == PHASE_PREDICT)
            call_body(g, k, &one, NULL);
}

/* forward_block(arena, input, output, n): the layers with a block
 * function once for the block, the others sample by sample between
 * (a block function's twin for one sample comes right before it). */
static LLVMValueRef forward_block(Gen *g)
{
    LLVMTypeRef params[4] = {g->pf32, g->pf32, g->pf32, g->i32};
    char *name = version_name(g, "forward_block");
    LLVMValueRef fn = begin_function(g, name, g->vd, params, 4, true);
    free(name);
    Bases at = {LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), NULL, LLVMGetParam(fn, 3),
                LLVMGetParam(fn, 0)};
    const IrProgram *p = g->p;
    for (int from = 0; from < p->nfuncs;) {
        int to = from;
        while (to < p->nfuncs && p->funcs[to]->phase != PHASE_PREDICT_BLOCK)
            to++;
        BlockSamples b = {from, to < p->nfuncs ? to - 1 : to, &at};
        if (b.to > b.from)
            loop_to(g, at.n, block_sample, &b);
        if (to < p->nfuncs)
            call_body(g, to, &at, NULL);
        from = to + 1;
    }
    LLVMBuildRetVoid(g->b);
    return fn;
}

typedef struct {
    LLVMValueRef fn, input, output, n;
} BlockCalls;

/* Block b of predict_batch: samples b * BLOCK_SAMPLES on, at most that many. */
static void predict_block(Gen *g, LLVMValueRef b, void *arg)
{
    const BlockCalls *c = arg;
    const Model *m = g->m;
    LLVMValueRef first = LLVMBuildMul(g->b, b, i64c(g, m->block_samples), "");
    LLVMValueRef left = LLVMBuildSub(g->b, LLVMBuildSExt(g->b, c->n, g->i64, ""), first, "");
    LLVMValueRef most = i64c(g, m->block_samples);
    LLVMValueRef count =
        LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, left, most, ""), left, most, "");
    LLVMTypeRef params[4] = {g->pf32, g->pf32, g->pf32, g->i32};
    LLVMValueRef args[4] = {
        g->block_arena,
        float_at(g, c->input, LLVMBuildMul(g->b, first, i64c(g, shape_size(&m->input)), "")),
        float_at(g, c->output,
                 LLVMBuildMul(g->b, first, i64c(g, shape_size(model_output_shape(m))), "")),
        LLVMBuildTrunc(g->b, count, g->i32, "")};
    call(g, c->fn, LLVMFunctionType(g->vd, params, 4, 0), args, 4);
}

/* predict_batch: block after block of BLOCK_SAMPLES samples, each with
 * an arena of its own in the block arena (the object has no threads). */
static void predict_batch_in_blocks(Gen *g, LLVMValueRef forward)
{
    const Model *m = g->m;
    g->block_arena = float_array(g, "block_arena", (int64_t)m->block_samples * m->block_stride);
    LLVMTypeRef params[3] = {g->pf32, g->pf32, g->i32};
    LLVMValueRef fn = begin_function(g, "predict_batch", g->vd, params, 3, false);
    BlockCalls c = {forward, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
    LLVMValueRef n = LLVMBuildSExt(g->b, c.n, g->i64, "");
    LLVMValueRef blocks =
        LLVMBuildSDiv(g->b, LLVMBuildAdd(g->b, n, i64c(g, m->block_samples - 1), ""),
                      i64c(g, m->block_samples), "");
    counted_loop(g, i64c(g, 0), blocks, true, "block", predict_block, &c);
    LLVMBuildRetVoid(g->b);
}

/* ---- a multiversioned object: the clone a CPU runs (emit_c.c's dispatch) ---------
 * The object asks the CPU itself (cpuid and xgetbv, as inline assembly),
 * so it needs no compiler's runtime: AVX-512 (F, VL) and AVX2 with FMA,
 * each only where the OS keeps the registers.  CNNGEN_ISA names a clone
 * to use instead, if this CPU runs it; else the widest it runs.  Chosen
 * once, at the first call. */

/* Register reg (0-3: eax, ebx, ecx, edx) of cpuid(leaf, 0). */
static LLVMValueRef cpuid(Gen *g, unsigned leaf, unsigned reg)
{
    LLVMTypeRef regs[4] = {g->i32, g->i32, g->i32, g->i32}, in[2] = {g->i32, g->i32};
    LLVMTypeRef type = LLVMFunctionType(LLVMStructTypeInContext(g->ctx, regs, 4, 0), in, 2, 0);
    char text[] = "cpuid";
    char constraints[] = "={ax},={bx},={cx},={dx},{ax},{cx},~{dirflag},~{fpsr},~{flags}";
    LLVMValueRef fn = LLVMGetInlineAsm(type, text, strlen(text), constraints, strlen(constraints),
                                       0, 0, LLVMInlineAsmDialectATT, 0);
    LLVMValueRef args[2] = {i32c(g, leaf), i32c(g, 0)};
    return LLVMBuildExtractValue(g->b, call(g, fn, type, args, 2), reg, "");
}

/* The OS's enabled register states (XCR0's low word). */
static LLVMValueRef xgetbv(Gen *g)
{
    LLVMTypeRef regs[2] = {g->i32, g->i32};
    LLVMTypeRef type = LLVMFunctionType(LLVMStructTypeInContext(g->ctx, regs, 2, 0), &g->i32, 1, 0);
    char text[] = "xgetbv";
    char constraints[] = "={ax},={dx},{cx},~{dirflag},~{fpsr},~{flags}";
    LLVMValueRef fn = LLVMGetInlineAsm(type, text, strlen(text), constraints, strlen(constraints),
                                       0, 0, LLVMInlineAsmDialectATT, 0);
    LLVMValueRef zero = i32c(g, 0);
    return LLVMBuildExtractValue(g->b, call(g, fn, type, &zero, 1), 0, "");
}

/* Whether all of mask's bits are set in v. */
static LLVMValueRef has_bits(Gen *g, LLVMValueRef v, unsigned long long mask)
{
    LLVMValueRef m = LLVMConstInt(g->i32, mask, 0);
    return LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, v, m, ""), m, "");
}

/* value(g, arg) in a block of its own when `when` holds, else zero of type. */
typedef LLVMValueRef (*GuardedValue)(Gen *g, void *arg);

static LLVMValueRef value_when(Gen *g, LLVMValueRef when, LLVMTypeRef type, GuardedValue value,
                               void *arg)
{
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(g->b));
    LLVMBasicBlockRef before = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->ctx, fn, "then");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, fn, "done");
    LLVMBuildCondBr(g->b, when, then, done);
    LLVMPositionBuilderAtEnd(g->b, then);
    LLVMValueRef v = value(g, arg);
    LLVMBasicBlockRef after = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMValueRef phi = LLVMBuildPhi(g->b, type, "");
    LLVMValueRef values[2] = {LLVMConstNull(type), v};
    LLVMBasicBlockRef blocks[2] = {before, after};
    LLVMAddIncoming(phi, values, blocks, 2);
    return phi;
}

static LLVMValueRef xcr0_value(Gen *g, void *arg)
{
    (void)arg;
    return xgetbv(g);
}

static LLVMValueRef leaf7_ebx(Gen *g, void *arg)
{
    (void)arg;
    return cpuid(g, 7, 1);
}

/* Per clone, whether this CPU runs it (runs[k], i1). */
static void clones_this_cpu_runs(Gen *g, LLVMValueRef *runs)
{
    LLVMValueRef max_leaf = cpuid(g, 0, 0), ecx1 = cpuid(g, 1, 2);
    LLVMValueRef osxsave = has_bits(g, ecx1, 1ull << 27);
    LLVMValueRef xcr0 = value_when(g, osxsave, g->i32, xcr0_value, NULL);
    LLVMValueRef ebx7 = value_when(g, LLVMBuildICmp(g->b, LLVMIntUGE, max_leaf, i32c(g, 7), ""),
                                   g->i32, leaf7_ebx, NULL);
    /* AVX and FMA (leaf 1), AVX2 (leaf 7), the SSE and AVX states kept */
    LLVMValueRef avx2 =
        LLVMBuildAnd(g->b,
                     LLVMBuildAnd(g->b, has_bits(g, ecx1, (1ull << 28) | (1ull << 12)),
                                  has_bits(g, ebx7, 1ull << 5), ""),
                     has_bits(g, xcr0, 0x6), "");
    /* AVX-512 F and VL, and the opmask and upper ZMM states kept */
    LLVMValueRef avx512 = LLVMBuildAnd(
        g->b, LLVMBuildAnd(g->b, avx2, has_bits(g, ebx7, (1ull << 16) | (1ull << 31)), ""),
        has_bits(g, xcr0, 0xe6), "");
    for (int k = 0; k < g->nversions; k++) {
        const char *name = g->versions[k].name;
        runs[k] = strcmp(name, "avx512") == 0 ? avx512
                  : strcmp(name, "avx2") == 0 ? avx2
                                              : LLVMConstInt(LLVMInt1TypeInContext(g->ctx), 1, 0);
    }
}

/* Whether CNNGEN_ISA's value (wanted, not NULL) names clone k (i1). */
typedef struct {
    LLVMValueRef wanted;
    int k;
} Wanted;

static LLVMValueRef names_clone(Gen *g, void *arg)
{
    const Wanted *w = arg;
    LLVMTypeRef params[2] = {g->pi8, g->pi8};
    LLVMTypeRef type = LLVMFunctionType(g->i32, params, 2, 0);
    LLVMValueRef args[2] = {w->wanted, string_constant(g, g->versions[w->k].name)};
    LLVMValueRef differ = call(g, external(g, "strcmp", type), type, args, 2);
    return LLVMBuildICmp(g->b, LLVMIntEQ, differ, i32c(g, 0), "");
}

/* PREFIX_pick_clone: the index of the clone to use. */
static LLVMValueRef emit_pick_clone(Gen *g)
{
    LLVMValueRef fn = begin_function(g, "pick_clone", g->i32, NULL, 0, true);
    LLVMValueRef runs[EMIT_CLONE_COUNT];
    clones_this_cpu_runs(g, runs);
    LLVMTypeRef type = LLVMFunctionType(g->pi8, &g->pi8, 1, 0);
    LLVMValueRef variable = string_constant(g, "CNNGEN_ISA");
    LLVMValueRef wanted = call(g, external(g, "getenv", type), type, &variable, 1);
    LLVMValueRef given = LLVMBuildIsNotNull(g->b, wanted, "");
    LLVMTypeRef i1 = LLVMInt1TypeInContext(g->ctx);
    /* the last clone runs anywhere; the first before it that runs is the widest */
    LLVMValueRef pick = i32c(g, g->nversions - 1);
    for (int k = g->nversions - 2; k >= 0; k--)
        pick = LLVMBuildSelect(g->b, runs[k], i32c(g, k), pick, "");
    for (int k = g->nversions - 1; k >= 0; k--) {
        Wanted w = {wanted, k};
        LLVMValueRef named = value_when(g, given, i1, names_clone, &w);
        pick = LLVMBuildSelect(g->b, LLVMBuildAnd(g->b, named, runs[k], ""), i32c(g, k), pick, "");
    }
    LLVMBuildRet(g->b, pick);
    return fn;
}

/* PREFIX_clone_in_use: pick_clone's answer, kept (as index + 1) after the
 * first call; threads that race all store the same answer. */
static void emit_clone_choice(Gen *g)
{
    LLVMValueRef pick = emit_pick_clone(g);
    char *sym = symbol(g, "clone_chosen");
    LLVMValueRef chosen = LLVMAddGlobal(g->mod, g->i32, sym);
    free(sym);
    LLVMSetInitializer(chosen, i32c(g, 0));
    LLVMSetLinkage(chosen, LLVMInternalLinkage);
    LLVMValueRef fn = begin_function(g, "clone_in_use", g->i32, NULL, 0, true);
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(g->b);
    LLVMValueRef known = LLVMBuildLoad2(g->b, g->i32, chosen, "");
    LLVMSetOrdering(known, LLVMAtomicOrderingAcquire);
    LLVMSetAlignment(known, 4);
    LLVMBasicBlockRef first = LLVMAppendBasicBlockInContext(g->ctx, fn, "first");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, fn, "done");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, known, i32c(g, 0), ""), done, first);
    LLVMPositionBuilderAtEnd(g->b, first);
    LLVMValueRef picked = LLVMBuildAdd(
        g->b, call(g, pick, LLVMFunctionType(g->i32, NULL, 0, 0), NULL, 0), i32c(g, 1), "");
    LLVMValueRef store = LLVMBuildStore(g->b, picked, chosen);
    LLVMSetOrdering(store, LLVMAtomicOrderingRelease);
    LLVMSetAlignment(store, 4);
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMValueRef index = LLVMBuildPhi(g->b, g->i32, "");
    LLVMValueRef values[2] = {known, picked};
    LLVMBasicBlockRef blocks[2] = {entry, first};
    LLVMAddIncoming(index, values, blocks, 2);
    LLVMBuildRet(g->b, LLVMBuildSub(g->b, index, i32c(g, 1), ""));
    g->version_in_use = fn;
}

/* `name`(params...): fns[k](params...) for the clone k in use. */
static LLVMValueRef dispatch(Gen *g, const char *name, bool internal, LLVMTypeRef ret,
                             LLVMTypeRef *params, int n, const LLVMValueRef *fns)
{
    LLVMValueRef fn = begin_function(g, name, ret, params, n, internal);
    LLVMValueRef args[8];
    for (int i = 0; i < n; i++)
        args[i] = LLVMGetParam(fn, (unsigned)i);
    LLVMValueRef k = call(g, g->version_in_use, LLVMFunctionType(g->i32, NULL, 0, 0), NULL, 0);
    LLVMBasicBlockRef cases[EMIT_CLONE_COUNT];
    for (int v = 0; v < g->nversions; v++)
        cases[v] = LLVMAppendBasicBlockInContext(g->ctx, fn, g->versions[v].name);
    /* the last clone is the default: it runs anywhere */
    LLVMValueRef sw = LLVMBuildSwitch(g->b, k, cases[g->nversions - 1], (unsigned)g->nversions - 1);
    LLVMTypeRef type = LLVMFunctionType(ret, params, (unsigned)n, 0);
    for (int v = 0; v < g->nversions; v++) {
        if (v + 1 < g->nversions)
            LLVMAddCase(sw, i32c(g, v), cases[v]);
        LLVMPositionBuilderAtEnd(g->b, cases[v]);
        LLVMValueRef r = call(g, fns[v], type, args, n);
        if (LLVMGetTypeKind(ret) == LLVMVoidTypeKind)
            LLVMBuildRetVoid(g->b);
        else
            LLVMBuildRet(g->b, r);
    }
    return fn;
}

/* The layers of one sample in a workspace, in the version being built:
 * predict_ws itself, or a clone's forward that predict_ws picks. */
static LLVMValueRef emit_forward(Gen *g, const char *name, bool internal)
{
    LLVMTypeRef ws_params[3] = {g->pi8, g->pf32, g->pf32};
    char *versioned = version_name(g, name);
    LLVMValueRef ws = begin_function(g, versioned, g->vd, ws_params, 3, internal);
    free(versioned);
    LLVMValueRef arena = LLVMBuildBitCast(g->b, LLVMGetParam(ws, 0), g->pf32, "");
    Bases at = {LLVMGetParam(ws, 1), LLVMGetParam(ws, 2), NULL, NULL, arena};
    LLVMValueRef start = g->profile ? profile_clock(g) : NULL, t = start;
    int calls = 0;
    for (int k = 0; k < g->p->nfuncs; k++)
        if (g->p->funcs[k]->phase == PHASE_PREDICT) {
            call_ir_func(g, k, &at);
            if (g->profile)
                t = profile_mark(g, g->p->funcs[k]->layer, t);
            calls++;
        }
    if (g->m->nlayers == 0 || calls == 0)
        memcpy_floats(g, at.output, at.input, i64c(g, shape_size(&g->m->input)));
    if (g->profile)
        profile_whole(g, start, i64c(g, 1));
    LLVMBuildRetVoid(g->b);
    return ws;
}

/* Whether predict_batch runs in blocks: every version has block functions. */
static bool predicts_in_blocks(const Gen *g)
{
    if (g->m->block_samples <= 0)
        return false;
    for (int k = 0; k < g->nversions; k++)
        if (!ir_has_phase(g->versions[k].p, PHASE_PREDICT_BLOCK))
            return false;
    return true;
}

/* One function per version (build(g), in each version's turn), and the
 * one the glue calls: the only version's, or a dispatch named `name`. */
typedef LLVMValueRef (*VersionBuild)(Gen *g);

static LLVMValueRef each_version(Gen *g, VersionBuild build, const char *name, LLVMTypeRef ret,
                                 LLVMTypeRef *params, int n, bool internal)
{
    LLVMValueRef fns[EMIT_CLONE_COUNT];
    for (int k = 0; k < g->nversions; k++) {
        use_version(g, k);
        fns[k] = build(g);
    }
    use_glue(g);
    return g->nversions == 1 ? fns[0] : dispatch(g, name, internal, ret, params, n, fns);
}

/* predict_ws itself when there is one version, else each clone's forward */
static LLVMValueRef version_forward(Gen *g)
{
    return g->nversions == 1 ? emit_forward(g, "predict_ws", false)
                             : emit_forward(g, "forward", true);
}

/* PREFIX_isa: "llvm" for one build (the host's CPU or the given target),
 * else the name of the clone in use */
static void emit_isa(Gen *g)
{
    begin_function(g, "isa", g->pi8, NULL, 0, false);
    if (g->nversions == 1) {
        LLVMBuildRet(g->b, string_constant(g, "llvm"));
        return;
    }
    LLVMValueRef names[EMIT_CLONE_COUNT];
    for (int k = 0; k < g->nversions; k++)
        names[k] = string_constant(g, g->versions[k].name);
    LLVMValueRef table = constant_table(g, "clone_names", g->pi8, names, g->nversions, true);
    LLVMValueRef at[2] = {
        i64c(g, 0),
        LLVMBuildSExt(g->b,
                      call(g, g->version_in_use, LLVMFunctionType(g->i32, NULL, 0, 0), NULL, 0),
                      g->i64, "")};
    LLVMValueRef entry =
        LLVMBuildInBoundsGEP2(g->b, LLVMGlobalGetValueType(table), table, at, 2, "");
    LLVMBuildRet(g->b, LLVMBuildLoad2(g->b, g->pi8, entry, ""));
}

static void emit_predict(Gen *g)
{
    LLVMTypeRef params[3] = {g->pf32, g->pf32, g->i32};
    LLVMTypeRef ws_params[3] = {g->pi8, g->pf32, g->pf32};
    LLVMValueRef ws = each_version(g, version_forward, "predict_ws", g->vd, ws_params, 3, false);

    LLVMValueRef fn = begin_function(g, "predict", g->vd, params, 2, false);
    LLVMValueRef args[3] = {LLVMBuildBitCast(g->b, g->arena, g->pi8, ""), LLVMGetParam(fn, 0),
                            LLVMGetParam(fn, 1)};
    call(g, ws, LLVMFunctionType(g->vd, ws_params, 3, 0), args, 3);
    LLVMBuildRetVoid(g->b);

    if (predicts_in_blocks(g)) {
        LLVMTypeRef block_params[4] = {g->pf32, g->pf32, g->pf32, g->i32};
        predict_batch_in_blocks(
            g, each_version(g, forward_block, "forward_block", g->vd, block_params, 4, true));
    } else {
        LLVMValueRef batch = begin_function(g, "predict_batch", g->vd, params, 3, false);
        LLVMValueRef a[3] = {LLVMGetParam(batch, 0), LLVMGetParam(batch, 1), fn};
        loop_to(g, LLVMGetParam(batch, 2), predict_one_sample, a);
        LLVMBuildRetVoid(g->b);
    }
    emit_isa(g);
}

/* params_data, load_weights, init_params: what OUT.h declares without
 * baked weights. */
static void emit_loaders(Gen *g, LLVMValueRef specs)
{
    LLVMValueRef fn = begin_function(g, "params_data", g->pf32, NULL, 0, false);
    LLVMBuildRet(g->b, g->params);

    const Model *m = g->m;
    int n = m->nparams;
    int64_t count = m->param_floats;
    LLVMTypeRef load_params[3] = {g->pi8, g->pi8, g->lng};
    fn = begin_function(g, "load_weights", g->i32, load_params, 3, false);
    LLVMTypeRef rt_params[7] = {g->pi8, g->pi8, g->i32, g->pf32, g->lng, g->pi8, g->lng};
    LLVMTypeRef rt_type = LLVMFunctionType(g->i32, rt_params, 7, 0);
    LLVMValueRef args[7] = {LLVMGetParam(fn, 0), specs,          i32c(g, n),
                            g->params,           lngc(g, count), LLVMGetParam(fn, 1),
                            LLVMGetParam(fn, 2)};
    LLVMBuildRet(g->b, call(g, external(g, "cnnrt_load_safetensors", rt_type), rt_type, args, 7));

    /* cnnrt_init_spec: long offset, count; int init; long fan_in, fan_out */
    LLVMTypeRef fields[5] = {g->lng, g->lng, g->i32, g->lng, g->lng};
    LLVMTypeRef row = LLVMStructTypeInContext(g->ctx, fields, 5, 0);
    LLVMValueRef *rows = xcalloc((size_t)n + 1, sizeof *rows);
    for (int k = 0; k < n; k++) {
        const Param *p = m->params[k];
        const char *name;
        LLVMValueRef f[5] = {lngc(g, p->offset), lngc(g, shape_size(&p->shape)),
                             i32c(g, emit_runtime_init(p, &name)), lngc(g, p->fan_in),
                             lngc(g, p->fan_out)};
        rows[k] = LLVMConstStructInContext(g->ctx, f, 5, 0);
    }
    rows[n] = LLVMConstNull(row);
    LLVMValueRef table = constant_table(g, "init_specs", row, rows, n + 1, true);
    free(rows);
    LLVMTypeRef seed = g->i64;
    fn = begin_function(g, "init_params", g->vd, &seed, 1, false);
    LLVMTypeRef init_params[4] = {g->pi8, g->i32, g->pf32, g->i64};
    LLVMTypeRef init_type = LLVMFunctionType(g->vd, init_params, 4, 0);
    LLVMValueRef init_args[4] = {LLVMConstBitCast(table, g->pi8), i32c(g, n), g->params,
                                 LLVMGetParam(fn, 0)};
    call(g, external(g, "cnnrt_init_params", init_type), init_type, init_args, 4);
    LLVMBuildRetVoid(g->b);
}

/* ---- training ------------------------------------------------------------------- */

static LLVMValueRef load_global(Gen *g, LLVMValueRef v, LLVMTypeRef type)
{
    return LLVMBuildLoad2(g->b, type, v, "");
}

static LLVMValueRef global_u64(Gen *g, const char *name)
{
    char *sym = symbol(g, name);
    LLVMValueRef v = LLVMAddGlobal(g->mod, g->i64, sym);
    free(sym);
    LLVMSetInitializer(v, LLVMConstNull(g->i64));
    LLVMSetLinkage(v, LLVMInternalLinkage);
    return v;
}

/* if (n < 1 || n > TRAIN_BATCH) return NAN; */
static void batch_check(Gen *g, LLVMValueRef fn, LLVMValueRef n)
{
    LLVMValueRef low = LLVMBuildICmp(g->b, LLVMIntSLT, n, i32c(g, 1), "");
    LLVMValueRef high = LLVMBuildICmp(g->b, LLVMIntSGT, n, i32c(g, g->m->tp.batch), "");
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(g->ctx, fn, "bad_n");
    LLVMBasicBlockRef good = LLVMAppendBasicBlockInContext(g->ctx, fn, "step");
    LLVMBuildCondBr(g->b, LLVMBuildOr(g->b, low, high, ""), bad, good);
    LLVMPositionBuilderAtEnd(g->b, bad);
    LLVMBuildRet(g->b, LLVMConstReal(g->f64, NAN));
    LLVMPositionBuilderAtEnd(g->b, good);
}

static void add_loss(Gen *g, LLVMValueRef s, void *arg)
{
    LLVMValueRef sum = arg;
    LLVMValueRef at = LLVMBuildAdd(g->b, s, i64c(g, g->m->tp.loss), "");
    LLVMValueRef loss32 = LLVMBuildLoad2(g->b, g->f32, float_at(g, g->train, at), "");
    LLVMValueRef loss = LLVMBuildFPExt(g->b, loss32, g->f64, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, LLVMBuildLoad2(g->b, g->f64, sum, ""), loss, ""), sum);
}

/* The outputs, before the update, to the caller: from the training
 * arena at offset, or the input. */
static void copy_outputs(Gen *g, const Bases *at, LLVMValueRef output, int64_t offset)
{
    LLVMValueRef n = LLVMBuildSExt(g->b, at->n, g->i64, "");
    LLVMValueRef from = offset < 0 ? at->input : float_at(g, g->train, i64c(g, offset));
    memcpy_floats(g, output, from,
                  LLVMBuildMul(g->b, n, i64c(g, shape_size(model_output_shape(g->m))), ""));
}

/* return the batch's mean loss, summed in double in sample order */
static void return_mean_loss(Gen *g, LLVMValueRef fn, LLVMValueRef n)
{
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(fn);
    LLVMBasicBlockRef here = LLVMGetInsertBlock(g->b);
    LLVMPositionBuilder(g->b, entry, LLVMGetFirstInstruction(entry));
    LLVMValueRef sum = LLVMBuildAlloca(g->b, g->f64, "sum");
    LLVMPositionBuilderAtEnd(g->b, here);
    LLVMBuildStore(g->b, LLVMConstReal(g->f64, 0), sum);
    loop_to(g, n, add_loss, sum);
    LLVMValueRef mean = LLVMBuildFDiv(g->b, LLVMBuildLoad2(g->b, g->f64, sum, ""),
                                      LLVMBuildSIToFP(g->b, n, g->f64, ""), "");
    LLVMBuildRet(g->b, mean);
}

static void zero_floats(Gen *g, int64_t offset, LLVMValueRef count)
{
    LLVMBuildMemSet(g->b, float_at(g, g->train, i64c(g, offset)), LLVMConstInt(g->i8, 0, 0),
                    LLVMBuildMul(g->b, count, i64c(g, 4), ""), 4);
}

static LLVMValueRef double_call(Gen *g, const char *name, LLVMValueRef *args, int n)
{
    LLVMTypeRef params[2] = {g->f64, g->f64};
    LLVMTypeRef type = LLVMFunctionType(g->f64, params, (unsigned)n, 0);
    return call(g, external(g, name, type), type, args, n);
}

/* train[offset] = (float)(lr * sqrt(1 - beta2^t) / (1 - beta1^t)), in double. */
static void store_hyper(Gen *g, const IrStep *s, int k, LLVMValueRef v)
{
    LLVMBuildStore(g->b, LLVMBuildFPTrunc(g->b, v, g->f32, ""),
                   float_at(g, g->train, i64c(g, s->offset + k)));
}

/* 1 - beta^t, in double */
static LLVMValueRef bias_correction(Gen *g, double beta, LLVMValueRef t)
{
    LLVMValueRef args[2] = {LLVMConstReal(g->f64, beta), t};
    return LLVMBuildFSub(g->b, LLVMConstReal(g->f64, 1), double_call(g, "pow", args, 2), "");
}

/* The optimizer's factors for this step (ir.h's STEP_HYPER), in double
 * as the C backend computes them. */
static void step_hyper(Gen *g, const IrStep *s, LLVMValueRef step)
{
    LLVMValueRef t = LLVMBuildUIToFP(g->b, step, g->f64, "");
    LLVMValueRef lr = load_global(g, g->train_lr, g->f64);
    LLVMValueRef decay = LLVMConstReal(g->f64, s->weight_decay);
    switch ((OptimizerKind)s->optimizer) {
    case OPT_SGD: store_hyper(g, s, 0, lr); break;
    case OPT_ADAM: {
        LLVMValueRef root = bias_correction(g, s->beta2, t);
        root = double_call(g, "sqrt", &root, 1);
        LLVMValueRef v = LLVMBuildFMul(g->b, lr, root, "");
        store_hyper(g, s, 0, LLVMBuildFDiv(g->b, v, bias_correction(g, s->beta1, t), ""));
        if (s->weight_decay != 0)
            store_hyper(g, s, 1, LLVMBuildFMul(g->b, lr, decay, ""));
        break;
    }
    case OPT_ADAMW: {
        store_hyper(g, s, 0, LLVMBuildFDiv(g->b, lr, bias_correction(g, s->beta1, t), ""));
        store_hyper(
            g, s, 1,
            LLVMBuildFSub(g->b, LLVMConstReal(g->f64, 1), LLVMBuildFMul(g->b, lr, decay, ""), ""));
        LLVMValueRef root = bias_correction(g, s->beta2, t);
        store_hyper(g, s, 2, double_call(g, "sqrt", &root, 1));
        break;
    }
    }
}

/* The step counter and the seed, read once a step; with --profile in
 * train_batch, the time of the last mark. */
typedef struct {
    LLVMValueRef step, seed;
    LLVMValueRef *t;
} StepState;

static void dropout_mask(Gen *g, const IrStep *s, const Bases *at, const StepState *st)
{
    LLVMTypeRef params[6] = {g->pf32, g->lng, g->f64, g->i64, g->i32, g->i64};
    LLVMTypeRef type = LLVMFunctionType(g->vd, params, 6, 0);
    /* the rate as the C backend prints it (%.9g), for the same bits */
    char text[48];
    snprintf(text, sizeof text, "%.9g", s->rate);
    LLVMValueRef count =
        LLVMBuildMul(g->b, LLVMBuildSExt(g->b, at->n, g->lng, ""), lngc(g, s->count), "");
    LLVMValueRef args[6] = {float_at(g, g->train, i64c(g, s->offset)),
                            count,
                            LLVMConstReal(g->f64, strtod(text, NULL)),
                            st->seed,
                            i32c(g, s->node),
                            st->step};
    call(g, external(g, "cnnrt_dropout_mask", type), type, args, 6);
}

/* One step of the list (ir.h); st is set by STEP_COUNT_STEP, which comes
 * first in a training step's list. */
static void build_step(Gen *g, const IrStep *s, const Bases *at, LLVMValueRef output, StepState *st)
{
    switch (s->kind) {
    case STEP_CALL: call_phases(g, at, s->a, s->b, st->t); break;
    case STEP_COUNT_STEP:
        st->step = LLVMBuildAdd(g->b, load_global(g, g->train_step, g->i64), i64c(g, 1), "");
        LLVMBuildStore(g->b, st->step, g->train_step);
        st->seed = load_global(g, g->train_seed, g->i64);
        break;
    case STEP_DROPOUT_MASK: dropout_mask(g, s, at, st); break;
    case STEP_COMMENT: break;
    case STEP_ZERO:
        zero_floats(
            g, s->offset,
            LLVMBuildMul(g->b, LLVMBuildSExt(g->b, at->n, g->i64, ""), i64c(g, s->count), ""));
        break;
    case STEP_ZERO_PARAM_GRADS: zero_floats(g, s->offset, i64c(g, s->count)); break;
    case STEP_OUTPUTS: copy_outputs(g, at, output, s->offset); break;
    case STEP_HYPER: step_hyper(g, s, st->step); break;
    }
}

/* --profile times the training step (not eval_batch); the time between
 * the calls (zeroing gradients, dropout's masks) is the whole's alone. */
static LLVMValueRef step_function(Gen *g, const char *name, const IrSteps *steps)
{
    LLVMTypeRef params[4] = {g->pf32, g->pf32, g->i32, g->pf32};
    char *versioned = version_name(g, name);
    LLVMValueRef fn = begin_function(g, versioned, g->f64, params, 4, g->nversions > 1);
    free(versioned);
    Bases at = {LLVMGetParam(fn, 0), NULL, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), NULL};
    LLVMValueRef output = LLVMGetParam(fn, 3), start = NULL, t = NULL;
    StepState st = {NULL, NULL, NULL};
    batch_check(g, fn, at.n);
    if (g->profile && steps == &g->p->train_step) {
        start = t = profile_clock(g);
        st.t = &t;
    }
    for (int i = 0; i < steps->count; i++) {
        const IrStep *s = &steps->items[i];
        build_step(g, s, &at, output, &st);
        bool between = s->kind != STEP_CALL && s->kind != STEP_COMMENT;
        if (st.t && between && i + 1 < steps->count && steps->items[i + 1].kind == STEP_CALL)
            t = profile_clock(g);
    }
    if (st.t)
        profile_whole(g, start, LLVMBuildSExt(g->b, at.n, g->i64, ""));
    return_mean_loss(g, fn, at.n);
    return fn;
}

static LLVMValueRef eval_step(Gen *g)
{
    return step_function(g, "eval_batch", &g->p->eval_step);
}

static LLVMValueRef train_step(Gen *g)
{
    return step_function(g, "train_batch", &g->p->train_step);
}

static void emit_training(Gen *g)
{
    const Model *m = g->m;
    const TrainPlan *tp = &m->tp;
    g->train_seed = global_u64(g, "train_seed");
    g->train_step = global_u64(g, "train_step");
    char *lr_sym = symbol(g, "train_lr");
    g->train_lr = LLVMAddGlobal(g->mod, g->f64, lr_sym);
    free(lr_sym);
    LLVMSetInitializer(g->train_lr, LLVMConstReal(g->f64, m->train.lr));
    LLVMSetLinkage(g->train_lr, LLVMInternalLinkage);

    LLVMTypeRef u64 = g->i64;
    begin_function(g, "start_training", g->vd, &u64, 1, false);
    LLVMValueRef fn = public_function(g, "start_training");
    zero_floats(g, 0, i64c(g, tp->floats + 1));
    LLVMBuildStore(g->b, LLVMGetParam(fn, 0), g->train_seed);
    LLVMBuildStore(g->b, LLVMConstNull(g->i64), g->train_step);
    LLVMBuildStore(g->b, LLVMConstReal(g->f64, m->train.lr), g->train_lr);
    LLVMBuildRetVoid(g->b);

    LLVMTypeRef f64 = g->f64;
    begin_function(g, "set_learning_rate", g->vd, &f64, 1, false);
    LLVMBuildStore(g->b, LLVMGetParam(public_function(g, "set_learning_rate"), 0), g->train_lr);
    LLVMBuildRetVoid(g->b);

    LLVMTypeRef params[4] = {g->pf32, g->pf32, g->i32, g->pf32};
    each_version(g, eval_step, "eval_batch", g->f64, params, 4, false);
    each_version(g, train_step, "train_batch", g->f64, params, 4, false);
}

/* cnnrt_model (cnnrt.h), field by field; test_llvm_layout checks each
 * field's offset against the header's. */
enum { MODEL_FIELDS = 30, LAYER_INFO_FIELDS = 8 };

/* cnnrt_schedule and cnnrt_train_settings */
static LLVMTypeRef schedule_type(const Gen *g)
{
    LLVMTypeRef f[12] = {g->i32, g->i32, g->lng, g->lng, g->lng, g->f64,
                         g->f64, g->f64, g->f64, g->f64, g->f64, g->f64};
    return LLVMStructTypeInContext(g->ctx, f, 12, 0);
}

static LLVMTypeRef augment_type(const Gen *g)
{
    LLVMTypeRef f[2] = {g->i32, g->f64};
    return LLVMStructTypeInContext(g->ctx, f, 2, 0);
}

static LLVMTypeRef settings_type(const Gen *g)
{
    LLVMTypeRef f[9] = {g->f64,
                        schedule_type(g),
                        g->f64,
                        g->lng,
                        g->i32,
                        g->i32,
                        LLVMArrayType(augment_type(g), AUGMENT_MAX),
                        g->i32,
                        LLVMArrayType(g->i32, 5)};
    return LLVMStructTypeInContext(g->ctx, f, 9, 0);
}

static LLVMValueRef settings_value(Gen *g)
{
    const TrainConfig *tc = &g->m->train;
    const Schedule *s = &tc->schedule;
    double f64s[7] = {s->gamma,       s->min_lr,     s->max_lr ? s->max_lr : tc->lr,
                      s->pct_start,   s->div_factor, s->final_div,
                      s->warmup_start};
    LLVMValueRef sched[12] = {i32c(g, s->kind), i32c(g, s->per_step), lngc(g, s->every),
                              lngc(g, s->length), lngc(g, s->warmup)};
    for (int i = 0; i < 7; i++)
        sched[5 + i] = LLVMConstReal(g->f64, f64s[i]);
    LLVMValueRef augment[AUGMENT_MAX];
    for (int i = 0; i < AUGMENT_MAX; i++) {
        const Augment *a = &tc->augment[i];
        LLVMValueRef pair[2] = {i32c(g, i < tc->naugment ? (int)a->kind : 0),
                                LLVMConstReal(g->f64, i < tc->naugment ? a->amount : 0)};
        augment[i] = LLVMConstStructInContext(g->ctx, pair, 2, 0);
    }
    LLVMValueRef dims[5];
    for (int d = 0; d < 5; d++)
        dims[d] = i32c(g, d < g->m->input.rank ? g->m->input.dim[d] : 0);
    LLVMValueRef v[9] = {LLVMConstReal(g->f64, tc->lr),
                         LLVMConstStructInContext(g->ctx, sched, 12, 0),
                         LLVMConstReal(g->f64, tc->validation_split),
                         lngc(g, tc->patience),
                         i32c(g, tc->monitor),
                         i32c(g, tc->naugment),
                         LLVMConstArray(augment_type(g), augment, AUGMENT_MAX),
                         i32c(g, g->m->input.rank),
                         LLVMConstArray(g->i32, dims, 5)};
    return LLVMConstStructInContext(g->ctx, v, 9, 0);
}

static LLVMTypeRef model_type(const Gen *g)
{
    LLVMTypeRef layout_fields[4] = {g->i32, g->i32, g->i32, g->i32};
    LLVMTypeRef layout = LLVMStructTypeInContext(g->ctx, layout_fields, 4, 0);
    LLVMTypeRef fields[MODEL_FIELDS] = {g->pi8,           g->i32,
                                        g->i32,           g->i32,
                                        g->i32,           g->lng,
                                        g->i64,           layout,
                                        g->i32,           LLVMArrayType(g->i32, 3),
                                        g->i32,           g->i32,
                                        g->pi8,           g->pf32,
                                        g->lng,           g->pi8,
                                        g->pi8,           g->pi8,
                                        g->pi8,           g->pi8,
                                        g->pi8,           LLVMArrayType(g->pf32, 2),
                                        g->i32,           g->pi8,
                                        settings_type(g), g->i32,
                                        g->pi8,           g->pf32,
                                        g->pi8,           g->pi8};
    return LLVMStructTypeInContext(g->ctx, fields, MODEL_FIELDS, 0);
}

/* cnnrt_layer_info: name, kind, line, rank, shape[5], values, flops,
 * fused_into */
static LLVMTypeRef layer_info_type(const Gen *g)
{
    LLVMTypeRef f[LAYER_INFO_FIELDS] = {g->pi8, g->pi8, g->i32, g->i32, LLVMArrayType(g->i32, 5),
                                        g->lng, g->f64, g->i32};
    return LLVMStructTypeInContext(g->ctx, f, LAYER_INFO_FIELDS, 0);
}

/* The layers as predict --dump and the profile see them (emit_c.c's
 * PREFIX_layers). */
static LLVMValueRef layer_table(Gen *g, bool training)
{
    const Model *m = g->m;
    if (g->layers) /* the profile's report reads no more than PREFIX_main's table */
        return g->layers;
    LLVMValueRef *rows = xcalloc((size_t)m->nlayers + 1, sizeof *rows);
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        LLVMValueRef f[LAYER_INFO_FIELDS] = {string_constant(g, l->name),
                                             string_constant(g, l->kind->name),
                                             i32c(g, l->loc.line),
                                             i32c(g, l->out.rank),
                                             shape_constant(g, &l->out),
                                             lngc(g, emit_layer_values(m, i, training)),
                                             LLVMConstReal(g->f64, (double)layer_flops(l, m)),
                                             i32c(g, emit_layer_function(m, i))};
        rows[i] = LLVMConstStructInContext(g->ctx, f, LAYER_INFO_FIELDS, 0);
    }
    rows[m->nlayers] = LLVMConstNull(layer_info_type(g));
    LLVMValueRef v = constant_table(g, "layers", layer_info_type(g), rows, m->nlayers + 1, true);
    free(rows);
    g->layers = LLVMConstBitCast(v, g->pi8);
    return g->layers;
}

/* The optimizer's state blocks in the training arena (NULL: none). */
static LLVMValueRef optimizer_state(Gen *g)
{
    LLVMValueRef blocks[2];
    for (int k = 0; k < 2; k++) {
        LLVMValueRef at = i64c(g, g->m->tp.state[k]);
        blocks[k] =
            g->m->tp.state[k] < 0
                ? LLVMConstNull(g->pf32)
                : LLVMConstInBoundsGEP2(g->f32, LLVMConstBitCast(g->train, g->pf32), &at, 1);
    }
    return LLVMConstArray(g->pf32, blocks, 2);
}

/* PREFIX_main(argc, argv): cnnrt_main over a model constant. */
static void model_main(Gen *g, LLVMValueRef value)
{
    char *sym = symbol(g, "model");
    LLVMValueRef model = LLVMAddGlobal(g->mod, LLVMTypeOf(value), sym);
    free(sym);
    LLVMSetInitializer(model, value);
    LLVMSetGlobalConstant(model, 1);
    LLVMSetLinkage(model, LLVMInternalLinkage);

    LLVMTypeRef params[3] = {g->i32, LLVMPointerType(g->pi8, 0), g->pi8};
    LLVMValueRef fn = begin_function(g, "main", g->i32, params, 2, false);
    LLVMTypeRef rt = LLVMFunctionType(g->i32, params, 3, 0);
    LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1),
                            LLVMConstBitCast(model, g->pi8)};
    LLVMBuildRet(g->b, call(g, external(g, "cnnrt_main", rt), rt, args, 3));
}

/* PREFIX_main: the cnnrt_model description, then cnnrt_main. */
static void emit_model_main(Gen *g, LLVMValueRef specs)
{
    const Model *m = g->m;
    const TrainConfig *tc = &m->train;
    const Shape *out = model_output_shape(m);
    int64_t last_axis = out->dim[out->rank - 1];
    bool ce = tc->loss == LOSS_CROSSENTROPY;
    const char *name;
    LLVMValueRef metrics[3] = {i32c(g, 0), i32c(g, 0), i32c(g, 0)};
    for (int k = 0; k < tc->nmetrics; k++)
        metrics[k] = i32c(g, emit_runtime_metric(tc->metrics[k], &name));
    LLVMValueRef lay[4] = {i32c(g, shape_size(&m->input)), i32c(g, shape_size(out)),
                           i32c(g, ce ? last_axis : 0),
                           i32c(g, ce ? shape_size(out) / last_axis : 0)};
    LLVMValueRef v[MODEL_FIELDS] = {
        string_constant(g, m->name),
        i32c(g, shape_size(&m->input)),
        i32c(g, shape_size(out)),
        i32c(g, last_axis),
        i32c(g, m->tp.batch),
        lngc(g, tc->epochs),
        LLVMConstInt(g->i64, (unsigned long long)tc->seed, 0),
        LLVMConstStructInContext(g->ctx, lay, 4, 0),
        i32c(g, emit_runtime_loss(tc->loss, &name)),
        LLVMConstArray(g->i32, metrics, 3),
        i32c(g, tc->nmetrics),
        i32c(g, m->nparams),
        specs,
        g->params,
        lngc(g, m->param_floats),
        LLVMConstBitCast(public_function(g, "init_params"), g->pi8),
        LLVMConstBitCast(public_function(g, "start_training"), g->pi8),
        LLVMConstBitCast(public_function(g, "train_batch"), g->pi8),
        LLVMConstBitCast(public_function(g, "eval_batch"), g->pi8),
        LLVMConstBitCast(public_function(g, "predict_batch"), g->pi8),
        LLVMConstBitCast(public_function(g, "set_learning_rate"), g->pi8),
        optimizer_state(g),
        i32c(g, (m->tp.state[0] >= 0) + (m->tp.state[1] >= 0)),
        LLVMConstBitCast(g->train_step, g->pi8),
        settings_value(g),
        i32c(g, m->nlayers),
        layer_table(g, true),
        LLVMConstBitCast(g->train, g->pf32),
        g->profile ? LLVMConstBitCast(g->profile, g->pi8) : LLVMConstNull(g->pi8),
        LLVMConstBitCast(public_function(g, "isa"), g->pi8)};
    model_main(g, LLVMConstStructInContext(g->ctx, v, MODEL_FIELDS, 0));
}

/* The fields of cnnrt_model that predict and the profile read (its
 * others zero): for a predictor's PREFIX_main and profile_report. */
enum {
    MF_NAME = 0,
    MF_INPUT_SIZE = 1,
    MF_OUTPUT_SIZE = 2,
    MF_SEED = 6,
    MF_NTENSORS = 11,
    MF_TENSORS = 12,
    MF_PARAMS = 13,
    MF_PARAM_COUNT = 14,
    MF_INIT = 15,
    MF_PREDICT = 19,
    MF_NLAYERS = 25,
    MF_LAYERS = 26,
    MF_PROFILE = 28,
    MF_ISA = 29
};

static LLVMValueRef predictor_model(Gen *g, LLVMValueRef specs, LLVMValueRef layers)
{
    const Model *m = g->m;
    LLVMTypeRef type = model_type(g);
    LLVMValueRef v[MODEL_FIELDS];
    for (int i = 0; i < MODEL_FIELDS; i++)
        v[i] = LLVMConstNull(LLVMStructGetTypeAtIndex(type, (unsigned)i));
    v[MF_NAME] = string_constant(g, m->name);
    v[MF_INPUT_SIZE] = i32c(g, shape_size(&m->input));
    v[MF_OUTPUT_SIZE] = i32c(g, shape_size(model_output_shape(m)));
    v[MF_SEED] = LLVMConstInt(g->i64, (unsigned long long)m->train.seed, 0);
    v[MF_NTENSORS] = i32c(g, m->nparams);
    v[MF_TENSORS] = specs;
    v[MF_PARAMS] = g->params;
    v[MF_PARAM_COUNT] = lngc(g, m->param_floats);
    v[MF_INIT] = LLVMConstBitCast(public_function(g, "init_params"), g->pi8);
    v[MF_PREDICT] = LLVMConstBitCast(public_function(g, "predict_batch"), g->pi8);
    v[MF_NLAYERS] = i32c(g, m->nlayers);
    v[MF_LAYERS] = layers;
    v[MF_PROFILE] = LLVMConstBitCast(g->profile, g->pi8);
    v[MF_ISA] = LLVMConstBitCast(public_function(g, "isa"), g->pi8);
    return LLVMConstStructInContext(g->ctx, v, MODEL_FIELDS, 0);
}

/* --profile: PREFIX_profile_report(out, training) and profile_reset, and
 * without training code a PREFIX_main over the predictor's model. */
static void emit_profile(Gen *g, LLVMValueRef specs, bool training)
{
    LLVMValueRef layers = layer_table(g, false);
    LLVMValueRef model = LLVMAddGlobal(g->mod, model_type(g), ".profile_model");
    LLVMSetInitializer(model, predictor_model(g, specs, layers));
    LLVMSetGlobalConstant(model, 1);
    LLVMSetLinkage(model, LLVMPrivateLinkage);
    LLVMTypeRef params[3] = {g->pi8, g->pi8, g->i32};
    LLVMValueRef fn =
        begin_function(g, "profile_report", g->vd, (LLVMTypeRef[]){g->pi8, g->i32}, 2, false);
    LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMConstBitCast(model, g->pi8),
                            LLVMGetParam(fn, 1)};
    LLVMTypeRef report = LLVMFunctionType(g->vd, params, 3, 0);
    call(g, external(g, "cnnrt_profile_report", report), report, args, 3);
    LLVMTypeRef reset = LLVMFunctionType(g->vd, params + 1, 1, 0);
    call(g, external(g, "cnnrt_profile_reset", reset), reset, args + 1, 1);
    LLVMBuildRetVoid(g->b);
    begin_function(g, "profile_reset", g->vd, NULL, 0, false);
    call(g, external(g, "cnnrt_profile_reset", reset), reset, args + 1, 1);
    LLVMBuildRetVoid(g->b);
    if (!training)
        model_main(g, LLVMGetInitializer(model));
}

/* main (--main): PREFIX_main with training, else the runtime's predict
 * command (the C backend prints its sample reader into a standalone
 * file; an object links it from libcnnrt). */
static void emit_program_main(Gen *g)
{
    LLVMTypeRef params[9] = {
        g->i32, LLVMPointerType(g->pi8, 0), g->pi8, g->i32, g->i32, g->pi8, g->pi8, g->pi8, g->i64};
    LLVMValueRef fn = add_function(g, "main", LLVMFunctionType(g->i32, params, 2, 0), false);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    LLVMValueRef argc = LLVMGetParam(fn, 0), argv = LLVMGetParam(fn, 1);
    LLVMValueRef model_main = public_function(g, "main");
    if (model_main) {
        LLVMValueRef args[2] = {argc, argv};
        LLVMBuildRet(g->b, call(g, model_main, LLVMFunctionType(g->i32, params, 2, 0), args, 2));
        return;
    }
    const Model *m = g->m;
    bool baked = g->o->weights != NULL;
    LLVMValueRef args[9] = {argc,
                            argv,
                            string_constant(g, m->name),
                            i32c(g, shape_size(&m->input)),
                            i32c(g, shape_size(model_output_shape(m))),
                            LLVMConstBitCast(public_function(g, "predict_batch"), g->pi8),
                            baked ? LLVMConstNull(g->pi8)
                                  : LLVMConstBitCast(public_function(g, "load_weights"), g->pi8),
                            baked ? LLVMConstNull(g->pi8)
                                  : LLVMConstBitCast(public_function(g, "init_params"), g->pi8),
                            LLVMConstInt(g->i64, baked ? 0 : (unsigned long long)m->train.seed, 0)};
    LLVMTypeRef rt = LLVMFunctionType(g->i32, params, 9, 0);
    LLVMBuildRet(g->b, call(g, external(g, "cnnrt_predict_command", rt), rt, args, 9));
}

/* Every version's functions, one per IrFunc; then the builder is the glue's. */
static void build_versions(Gen *g)
{
    for (int v = 0; v < g->nversions; v++) {
        Version *version = &g->versions[v];
        const IrProgram *p = version->p;
        version->bodies = xcalloc((size_t)p->nfuncs + 1, sizeof *version->bodies);
        version->body_types = xcalloc((size_t)p->nfuncs + 1, sizeof *version->body_types);
        version->used = xcalloc((size_t)p->nfuncs + 1, sizeof *version->used);
        use_version(g, v);
        for (int k = 0; k < p->nfuncs; k++) {
            version->used[k] = xcalloc((size_t)p->funcs[k]->nviews + 1, sizeof **version->used);
            ir_views_used(p->funcs[k], version->used[k]);
            build_body(g, k);
        }
    }
    use_glue(g);
}

static void free_versions(Gen *g)
{
    for (int v = 0; v < g->nversions; v++) {
        Version *version = &g->versions[v];
        for (int k = 0; k < version->p->nfuncs; k++)
            free(version->used[k]);
        free(version->used);
        free(version->bodies);
        free(version->body_types);
    }
}

static void build_module_q(Gen *g);

static void build_module(Gen *g)
{
    if (g->o->qplan) {
        build_module_q(g);
        return;
    }
    const Model *m = g->m;
    g->arena = float_array(g, "arena", m->arena_floats);
    if (g->o->profile) {
        LLVMTypeRef count[3] = {g->i64, g->i64, g->i64};
        LLVMTypeRef type =
            LLVMArrayType(LLVMStructTypeInContext(g->ctx, count, 3, 0), (unsigned)m->nlayers + 2);
        char *sym = symbol(g, "profile");
        g->profile = LLVMAddGlobal(g->mod, type, sym);
        free(sym);
        LLVMSetInitializer(g->profile, LLVMConstNull(type));
        LLVMSetLinkage(g->profile, LLVMInternalLinkage);
    }
    if (emit_includes_training(m, g->o))
        g->train = float_array(g, "train", m->tp.floats);
    parameters(g);
    LLVMValueRef specs = tensor_tables(g);
    build_versions(g);
    if (g->nversions > 1)
        emit_clone_choice(g);
    emit_predict(g);
    if (!g->o->weights)
        emit_loaders(g, specs);
    bool training = emit_includes_training(m, g->o);
    if (training) {
        emit_training(g);
        emit_model_main(g, specs);
    }
    if (g->profile)
        emit_profile(g, specs, training);
    if (g->o->main)
        emit_program_main(g);
    free_versions(g);
}

/* ---- int8 modules (--quantize, docs/int8.md) --------------------------------------
 * The int8 lowering's functions, as the C backend prints them, and around
 * them emit_c.c's int8 glue: the constants, predict_q, quantize, predict
 * and predict_batch, and with --main the program's main. */

static LLVMTypeRef requantize_type(const Gen *g)
{
    LLVMTypeRef params[3] = {g->i32, g->i32, g->i32};
    return LLVMFunctionType(g->i32, params, 3, 0);
}

/* A vector of `lanes` int64 constants. */
static LLVMValueRef i64_lanes(Gen *g, long long value, unsigned lanes)
{
    LLVMValueRef one[16];
    for (unsigned k = 0; k < lanes; k++)
        one[k] = i64c(g, value);
    return LLVMConstVector(one, lanes);
}

static LLVMValueRef pick_i64(Gen *g, LLVMIntPredicate op, LLVMValueRef a, LLVMValueRef b,
                             LLVMValueRef then, LLVMValueRef otherwise)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, op, a, b, ""), then, otherwise, "");
}

/* The requantization of int32 lanes, lane for lane the scalar one in int64
 * lanes (as emit_c.c's intrinsics compute it): a left shift saturated
 * (unless every shift is at most 0: ivalue), the doubling high product
 * (x * multiplier + 2^30) >> 31 (the multiplier is positive), and the
 * division by 2^right rounded half away from zero. */
static LLVMValueRef vector_requantize(Gen *g, const IrExpr *e, LLVMValueRef v, LLVMValueRef m,
                                      LLVMValueRef s)
{
    unsigned lanes = LLVMGetVectorSize(LLVMTypeOf(v));
    LLVMTypeRef wide = LLVMVectorType(g->i64, lanes);
    LLVMValueRef a = LLVMBuildSExt(g->b, v, wide, ""), shift = LLVMBuildSExt(g->b, s, wide, "");
    LLVMValueRef zero = i64_lanes(g, 0, lanes);
    if (!e->ivalue) {
        LLVMValueRef left = pick_i64(g, LLVMIntSGT, shift, zero, shift, zero);
        LLVMValueRef most = i64_lanes(g, 32, lanes);
        left = pick_i64(g, LLVMIntSGT, left, most, most, left);
        a = LLVMBuildShl(g->b, a, left, "");
        LLVMValueRef top = i64_lanes(g, INT32_MAX, lanes), bottom = i64_lanes(g, INT32_MIN, lanes);
        a = pick_i64(g, LLVMIntSGT, a, top, top, a);
        a = pick_i64(g, LLVMIntSLT, a, bottom, bottom, a);
    }
    LLVMValueRef right = pick_i64(g, LLVMIntSLT, shift, zero, LLVMBuildNeg(g->b, shift, ""), zero);
    LLVMValueRef ab = LLVMBuildMul(g->b, a, LLVMBuildSExt(g->b, m, wide, ""), "");
    LLVMValueRef h = LLVMBuildAShr(g->b, LLVMBuildAdd(g->b, ab, i64_lanes(g, 1LL << 30, lanes), ""),
                                   i64_lanes(g, 31, lanes), "");
    LLVMValueRef half = LLVMBuildAShr(g->b, LLVMBuildShl(g->b, i64_lanes(g, 1, lanes), right, ""),
                                      i64_lanes(g, 1, lanes), "");
    LLVMValueRef down = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, h, zero, ""),
                                     LLVMBuildICmp(g->b, LLVMIntSGT, right, zero, ""), "");
    LLVMValueRef nudged =
        LLVMBuildAdd(g->b, LLVMBuildAdd(g->b, h, half, ""),
                     LLVMBuildSelect(g->b, down, i64_lanes(g, -1, lanes), zero, ""), "");
    return LLVMBuildTrunc(g->b, LLVMBuildAShr(g->b, nudged, right, ""),
                          LLVMVectorType(g->i32, lanes), "");
}

static LLVMValueRef requantize_call(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    LLVMValueRef args[3] = {expr_value(x, e->a), expr_value(x, e->b), expr_value(x, e->c)};
    if (is_vector(args[0]))
        return vector_requantize(g, e, args[0], args[1], args[2]);
    return call(g, g->requantize, requantize_type(g), args, 3);
}

/* IRE_VDOT4 as AVX-512 VNNI's vpdpbusd: the four bytes at the index (the
 * kernels' copy of their input, unsigned) splat to every lane, or for a
 * pair the 8 bytes there shuffled to the two halves.  main.c
 * gives an int8 object vector kernels only for a host with VNNI. */
static LLVMValueRef dot4(FuncGen *x, const IrExpr *e)
{
    Gen *g = x->g;
    unsigned lanes = (unsigned)e->lanes;
    LLVMTypeRef v32 = LLVMVectorType(g->i32, lanes);
    LLVMValueRef acc = expr_value(x, e->a), w = expr_value(x, e->b);
    LLVMValueRef xs;
    if (e->ivalue) { /* a pair: 8 bytes, the high half's lanes from `step` on */
        LLVMTypeRef v8 = LLVMVectorType(g->i8, 8);
        LLVMValueRef at =
            LLVMBuildBitCast(g->b, element(x, e->view, &e->index), LLVMPointerType(v8, 0), "");
        LLVMValueRef eight = LLVMBuildLoad2(g->b, v8, at, "");
        LLVMSetAlignment(eight, 1);
        LLVMValueRef pick[64];
        for (unsigned i = 0; i < 4 * lanes; i++)
            pick[i] = i32c(g, (int)(i % 4) + (i >= 2 * lanes ? e->ivalue : 0));
        xs = LLVMBuildBitCast(g->b,
                              LLVMBuildShuffleVector(g->b, eight, LLVMGetUndef(v8),
                                                     LLVMConstVector(pick, 4 * lanes), ""),
                              v32, "");
    } else {
        LLVMValueRef at =
            LLVMBuildBitCast(g->b, element(x, e->view, &e->index), LLVMPointerType(g->i32, 0), "");
        LLVMValueRef four = LLVMBuildLoad2(g->b, g->i32, at, "");
        LLVMSetAlignment(four, 1);
        xs = splat(g, four, lanes);
    }
    char name[48];
    snprintf(name, sizeof name, "llvm.x86.avx512.vpdpbusd.%u", 32 * lanes);
    LLVMTypeRef params[3] = {v32, v32, v32};
    LLVMTypeRef type = LLVMFunctionType(v32, params, 3, 0);
    LLVMValueRef args[3] = {acc, xs, LLVMBuildBitCast(g->b, w, v32, "")};
    return call(g, external(g, name, type), type, args, 3);
}

static LLVMValueRef select_i64(Gen *g, LLVMIntPredicate op, LLVMValueRef a, long long b,
                               LLVMValueRef then, LLVMValueRef otherwise)
{
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, op, a, i64c(g, b), ""), then, otherwise, "");
}

/* emit_c.c's PREFIX_requantize, step for step: TFLite's
 * MultiplyByQuantizedMultiplier. */
static void emit_requantize(Gen *g)
{
    char *sym = symbol(g, "requantize");
    LLVMValueRef fn = add_function(g, sym, requantize_type(g), true);
    free(sym);
    add_enum_attribute(g, fn, LLVMAttributeFunctionIndex, "alwaysinline");
    g->requantize = fn;
    LLVMBuilderRef b = g->b;
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    LLVMValueRef x = LLVMBuildSExt(b, LLVMGetParam(fn, 0), g->i64, "");
    LLVMValueRef q = LLVMBuildSExt(b, LLVMGetParam(fn, 1), g->i64, "");
    LLVMValueRef shift = LLVMBuildSExt(b, LLVMGetParam(fn, 2), g->i64, "");
    /* the left shift, saturated at int32's ends (32 places take any
     * nonzero value past them, and fit in int64) */
    LLVMValueRef left = select_i64(g, LLVMIntSGT, shift, 0, shift, i64c(g, 0));
    left = select_i64(g, LLVMIntSGT, left, 32, i64c(g, 32), left);
    LLVMValueRef a = LLVMBuildShl(b, x, left, "");
    a = select_i64(g, LLVMIntSGT, a, INT32_MAX, i64c(g, INT32_MAX), a);
    a = select_i64(g, LLVMIntSLT, a, INT32_MIN, i64c(g, INT32_MIN), a);
    LLVMValueRef ab = LLVMBuildMul(b, a, q, "");
    LLVMValueRef nudge =
        select_i64(g, LLVMIntSGE, ab, 0, i64c(g, 1LL << 30), i64c(g, 1 - (1LL << 30)));
    LLVMValueRef high = LLVMBuildSDiv(b, LLVMBuildAdd(b, ab, nudge, ""), i64c(g, 1LL << 31), "");
    LLVMValueRef both_min =
        LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, a, i64c(g, INT32_MIN), ""),
                     LLVMBuildICmp(b, LLVMIntEQ, q, i64c(g, INT32_MIN), ""), "");
    high = LLVMBuildSelect(b, both_min, i64c(g, INT32_MAX), high, "");
    LLVMValueRef right =
        select_i64(g, LLVMIntSGT, shift, 0, i64c(g, 0), LLVMBuildNeg(b, shift, ""));
    LLVMValueRef mask = LLVMBuildSub(b, LLVMBuildShl(b, i64c(g, 1), right, ""), i64c(g, 1), "");
    LLVMValueRef remainder = LLVMBuildAnd(b, high, mask, "");
    LLVMValueRef threshold = LLVMBuildAdd(
        b, LLVMBuildAShr(b, mask, i64c(g, 1), ""),
        LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSLT, high, i64c(g, 0), ""), g->i64, ""), "");
    LLVMValueRef up =
        LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSGT, remainder, threshold, ""), g->i64, "");
    LLVMValueRef r = LLVMBuildAdd(b, LLVMBuildAShr(b, high, right, ""), up, "");
    LLVMBuildRet(b, LLVMBuildTrunc(b, r, g->i32, ""));
}

/* An internal global of the type's array, its initializer init (NULL:
 * zeros), as a pointer to its elements. */
static LLVMValueRef typed_global(Gen *g, const char *name, LLVMTypeRef elem, int64_t count,
                                 LLVMValueRef init)
{
    LLVMTypeRef type = init ? LLVMTypeOf(init) : LLVMArrayType(elem, (unsigned)count);
    char *sym = symbol(g, name);
    LLVMValueRef v = LLVMAddGlobal(g->mod, type, sym);
    free(sym);
    LLVMSetInitializer(v, init ? init : LLVMConstNull(type));
    LLVMSetLinkage(v, LLVMInternalLinkage);
    LLVMSetGlobalConstant(v, init != NULL);
    LLVMSetAlignment(v, 64);
    return LLVMConstBitCast(v, LLVMPointerType(elem, 0));
}

static void q_constants(Gen *g)
{
    const QuantWeights *qw = g->o->qweights;
    char *bytes = xcalloc((size_t)qw->nweights + 1, 1);
    memcpy(bytes, qw->weights, (size_t)qw->nweights);
    g->qweights =
        typed_global(g, "kernels", g->i8, 0,
                     LLVMConstStringInContext(g->ctx, bytes, (unsigned)(qw->nweights + 1), 1));
    free(bytes);
    LLVMValueRef *values = xcalloc((size_t)qw->nconsts + 1, sizeof *values);
    for (int64_t i = 0; i <= qw->nconsts; i++)
        values[i] = i32c(g, i < qw->nconsts ? qw->consts[i] : 0);
    g->qconsts = typed_global(g, "qconsts", g->i32, 0,
                              LLVMConstArray(g->i32, values, (unsigned)(qw->nconsts + 1)));
    free(values);
    if (qw->npacked > 0 && g->p->vector_width > 0) { /* the vector kernels' */
        bytes = xcalloc((size_t)qw->npacked + 1, 1);
        memcpy(bytes, qw->packed, (size_t)qw->npacked);
        g->qpacked =
            typed_global(g, "packed", g->i8, 0,
                         LLVMConstStringInContext(g->ctx, bytes, (unsigned)(qw->npacked + 1), 1));
        free(bytes);
        values = xcalloc((size_t)qw->nvbias + 1, sizeof *values);
        for (int64_t i = 0; i <= qw->nvbias; i++)
            values[i] = i32c(g, i < qw->nvbias ? qw->vbias[i] : 0);
        g->qvbias = typed_global(g, "qvbias", g->i32, 0,
                                 LLVMConstArray(g->i32, values, (unsigned)(qw->nvbias + 1)));
        free(values);
    }
    g->arena = typed_global(g, "arena", g->i8, g->m->arena_floats + 1, NULL);
}

static LLVMTypeRef q_output_type(const Gen *g)
{
    return g->o->qplan->head >= 0 ? g->i32 : g->i8;
}

/* for (i = 0; i < n; i++) each(i), n > 0 */
static void for_count(Gen *g, int64_t n, LoopBody each, void *arg)
{
    counted_loop(g, i64c(g, 0), i64c(g, n), n <= 0, "i", each, arg);
}

static LLVMValueRef load_at(Gen *g, LLVMTypeRef type, LLVMValueRef ptr, LLVMValueRef i)
{
    return LLVMBuildLoad2(g->b, type, LLVMBuildInBoundsGEP2(g->b, type, ptr, &i, 1, ""), "");
}

static void store_at(Gen *g, LLVMTypeRef type, LLVMValueRef ptr, LLVMValueRef i, LLVMValueRef v)
{
    LLVMBuildStore(g->b, v, LLVMBuildInBoundsGEP2(g->b, type, ptr, &i, 1, ""));
}

static LLVMValueRef emit_predict_q(Gen *g)
{
    LLVMTypeRef params[2] = {g->pi8, LLVMPointerType(q_output_type(g), 0)};
    LLVMValueRef fn = begin_function(g, "predict_q", g->vd, params, 2, false);
    Bases at = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), NULL, NULL, NULL};
    for (int k = 0; k < g->p->nfuncs; k++)
        call_ir_func(g, k, &at);
    if (g->p->nfuncs == 0)
        LLVMBuildMemCpy(g->b, at.output, 1, at.input, 1, i64c(g, shape_size(&g->m->input)));
    LLVMBuildRetVoid(g->b);
    return fn;
}

static LLVMValueRef f64c(const Gen *g, double v)
{
    return LLVMConstReal(g->f64, v);
}

/* emit_c.c's PREFIX_quantize for one value: round(x / scale) + zero,
 * halves away from zero, in double, clamped (NaN: -128). */
static void quantize_one(Gen *g, LLVMValueRef i, void *arg)
{
    LLVMValueRef *io = arg;
    LLVMBuilderRef b = g->b;
    const QuantNode *in = &g->o->qplan->nodes[0];
    LLVMValueRef v = LLVMBuildFDiv(b, LLVMBuildFPExt(b, load_at(g, g->f32, io[0], i), g->f64, ""),
                                   f64c(g, in->scale), "");
    LLVMValueRef negative = LLVMBuildFCmp(b, LLVMRealOLT, v, f64c(g, 0), "");
    LLVMValueRef mag = LLVMBuildSelect(b, negative, LLVMBuildFNeg(b, v, ""), v, "");
    LLVMTypeRef floor_type;
    LLVMValueRef floor_fn = intrinsic(g, "llvm.floor", g->f64, &floor_type);
    LLVMValueRef half = LLVMBuildFAdd(b, mag, f64c(g, 0.5), "");
    LLVMValueRef r = call(g, floor_fn, floor_type, &half, 1);
    r = LLVMBuildSelect(b, negative, LLVMBuildFNeg(b, r, ""), r, "");
    r = LLVMBuildFAdd(b, r, f64c(g, in->zero), "");
    r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, r, f64c(g, -128), ""), r, f64c(g, -128),
                        "");
    r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, r, f64c(g, 127), ""), f64c(g, 127), r, "");
    store_at(g, g->i8, io[1], i, LLVMBuildTrunc(b, LLVMBuildFPToSI(b, r, g->i32, ""), g->i8, ""));
}

static LLVMValueRef emit_quantize(Gen *g)
{
    LLVMTypeRef params[2] = {g->pf32, g->pi8};
    LLVMValueRef fn = begin_function(g, "quantize", g->vd, params, 2, false);
    LLVMValueRef io[2] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)};
    for_count(g, shape_size(&g->m->input), quantize_one, io);
    LLVMBuildRetVoid(g->b);
    return fn;
}

/* quantize, then predict_q into this function's static buffers: the
 * outputs' pointer. */
static LLVMValueRef quantize_and_predict(Gen *g, const char *tag, LLVMValueRef input)
{
    char name[32];
    snprintf(name, sizeof name, "%s_q", tag);
    LLVMValueRef q = typed_global(g, name, g->i8, shape_size(&g->m->input), NULL);
    snprintf(name, sizeof name, "%s_y", tag);
    LLVMValueRef y =
        typed_global(g, name, q_output_type(g), shape_size(model_output_shape(g->m)), NULL);
    LLVMTypeRef qp[2] = {g->pf32, g->pi8};
    LLVMValueRef args[2] = {input, q};
    call(g, public_function(g, "quantize"), LLVMFunctionType(g->vd, qp, 2, 0), args, 2);
    LLVMTypeRef pp[2] = {g->pi8, LLVMPointerType(q_output_type(g), 0)};
    LLVMValueRef args2[2] = {q, y};
    call(g, public_function(g, "predict_q"), LLVMFunctionType(g->vd, pp, 2, 0), args2, 2);
    return y;
}

typedef struct {
    LLVMValueRef y, out, scales, max, sum, row;
    int64_t channels;
} Dequantize;

/* out[i] = (y[i] - zero) * scale, or the head's sums times their scales */
static void dequantize_one(Gen *g, LLVMValueRef i, void *arg)
{
    const Dequantize *d = arg;
    LLVMBuilderRef b = g->b;
    const QuantPlan *plan = g->o->qplan;
    LLVMValueRef v;
    if (plan->head >= 0) {
        LLVMValueRef scale =
            load_at(g, g->f32, d->scales, LLVMBuildSRem(b, i, i64c(g, d->channels), ""));
        v = LLVMBuildFMul(b, LLVMBuildSIToFP(b, load_at(g, g->i32, d->y, i), g->f32, ""), scale,
                          "");
    } else {
        const QuantNode *out = &plan->nodes[g->m->nlayers];
        LLVMValueRef centred = LLVMBuildSub(
            b, LLVMBuildSExt(b, load_at(g, g->i8, d->y, i), g->i32, ""), i32c(g, out->zero), "");
        v = LLVMBuildFMul(b, LLVMBuildSIToFP(b, centred, g->f32, ""),
                          LLVMConstReal(g->f32, (float)out->scale), "");
    }
    store_at(g, g->f32, d->out, i, v);
}

static LLVMValueRef call_f32(Gen *g, const char *name, LLVMValueRef a)
{
    LLVMTypeRef type = LLVMFunctionType(g->f32, &g->f32, 1, 0);
    return call(g, external(g, name, type), type, &a, 1);
}

/* The float head's sigmoid or tanh: 1 / (1 + exp(-v)), tanh(v). */
static void activate_one(Gen *g, LLVMValueRef i, void *arg)
{
    const Dequantize *d = arg;
    LLVMBuilderRef b = g->b;
    LLVMValueRef v = load_at(g, g->f32, d->out, i);
    if (g->m->layers[g->m->nlayers - 1]->activation == ACT_TANH)
        v = call_f32(g, "tanhf", v);
    else
        v = LLVMBuildFDiv(b, LLVMConstReal(g->f32, 1),
                          LLVMBuildFAdd(b, LLVMConstReal(g->f32, 1),
                                        call_f32(g, "expf", LLVMBuildFNeg(b, v, "")), ""),
                          "");
    store_at(g, g->f32, d->out, i, v);
}

/* Softmax over a row of channels, as emit_c.c's float head computes it:
 * the max, exp(v - max) and their sum, then each over the sum. */
static void softmax_max(Gen *g, LLVMValueRef c, void *arg)
{
    const Dequantize *d = arg;
    LLVMValueRef v = load_at(g, g->f32, d->out, LLVMBuildAdd(g->b, d->row, c, ""));
    LLVMValueRef max = LLVMBuildLoad2(g->b, g->f32, d->max, "");
    LLVMValueRef bigger = LLVMBuildFCmp(g->b, LLVMRealOGT, v, max, "");
    LLVMBuildStore(g->b, LLVMBuildSelect(g->b, bigger, v, max, ""), d->max);
}

static void softmax_exp(Gen *g, LLVMValueRef c, void *arg)
{
    const Dequantize *d = arg;
    LLVMValueRef at = LLVMBuildAdd(g->b, d->row, c, "");
    LLVMValueRef e = call_f32(g, "expf",
                              LLVMBuildFSub(g->b, load_at(g, g->f32, d->out, at),
                                            LLVMBuildLoad2(g->b, g->f32, d->max, ""), ""));
    store_at(g, g->f32, d->out, at, e);
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, LLVMBuildLoad2(g->b, g->f32, d->sum, ""), e, ""),
                   d->sum);
}

static void softmax_divide(Gen *g, LLVMValueRef c, void *arg)
{
    const Dequantize *d = arg;
    LLVMValueRef at = LLVMBuildAdd(g->b, d->row, c, "");
    store_at(g, g->f32, d->out, at,
             LLVMBuildFDiv(g->b, load_at(g, g->f32, d->out, at),
                           LLVMBuildLoad2(g->b, g->f32, d->sum, ""), ""));
}

static void softmax_row(Gen *g, LLVMValueRef r, void *arg)
{
    Dequantize d = *(const Dequantize *)arg;
    d.row = LLVMBuildMul(g->b, r, i64c(g, d.channels), "");
    LLVMBuildStore(g->b, load_at(g, g->f32, d.out, d.row), d.max);
    counted_loop(g, i64c(g, 1), i64c(g, d.channels), true, "c", softmax_max, &d);
    LLVMBuildStore(g->b, LLVMConstReal(g->f32, 0), d.sum);
    for_count(g, d.channels, softmax_exp, &d);
    for_count(g, d.channels, softmax_divide, &d);
}

static LLVMValueRef head_scales(Gen *g, int64_t channels)
{
    LLVMValueRef *values = xcalloc((size_t)channels, sizeof *values);
    for (int64_t c = 0; c < channels; c++)
        values[c] = LLVMConstReal(g->f32, (float)g->o->qweights->head_scales[c]);
    LLVMValueRef v = typed_global(g, "head_scales", g->f32, 0,
                                  LLVMConstArray(g->f32, values, (unsigned)channels));
    free(values);
    return v;
}

/* predict: quantize, predict_q, and the outputs in float. */
static LLVMValueRef emit_predict_float(Gen *g)
{
    const Model *m = g->m;
    const QuantPlan *plan = g->o->qplan;
    LLVMTypeRef params[3] = {g->pf32, g->pf32, g->i32};
    LLVMValueRef fn = begin_function(g, "predict", g->vd, params, 2, false);
    Dequantize d = {0};
    d.max = LLVMBuildAlloca(g->b, g->f32, "max");
    d.sum = LLVMBuildAlloca(g->b, g->f32, "sum");
    d.out = LLVMGetParam(fn, 1);
    if (plan->head >= 0) {
        const Layer *h = m->layers[plan->head];
        d.channels = h->out.dim[h->out.rank - 1];
        d.scales = head_scales(g, d.channels);
    }
    d.y = quantize_and_predict(g, "predict", LLVMGetParam(fn, 0));
    int64_t outputs = shape_size(model_output_shape(m));
    for_count(g, outputs, dequantize_one, &d);
    if (plan->head >= 0) {
        if (m->layers[m->nlayers - 1]->activation == ACT_SOFTMAX)
            for_count(g, outputs / d.channels, softmax_row, &d);
        else
            for_count(g, outputs, activate_one, &d);
    }
    LLVMBuildRetVoid(g->b);

    LLVMValueRef batch = begin_function(g, "predict_batch", g->vd, params, 3, false);
    LLVMValueRef a[3] = {LLVMGetParam(batch, 0), LLVMGetParam(batch, 1), fn};
    loop_to(g, LLVMGetParam(batch, 2), predict_one_sample, a);
    LLVMBuildRetVoid(g->b);
    return batch;
}

static void widen_one(Gen *g, LLVMValueRef i, void *arg)
{
    LLVMValueRef *yo = arg;
    LLVMValueRef v = load_at(g, q_output_type(g), yo[0], i);
    store_at(g, g->lng, yo[1], i, LLVMBuildSExt(g->b, v, g->lng, ""));
}

/* main: the runtime's cnnrt_predict_command_int8, with predict_batch and
 * raw (predict_q's integers, widened to long) for predict --raw. */
static void emit_main_q(Gen *g, LLVMValueRef predict_batch)
{
    const Model *m = g->m;
    LLVMTypeRef raw_params[2] = {g->pf32, LLVMPointerType(g->lng, 0)};
    LLVMValueRef raw = begin_function(g, "predict_raw", g->vd, raw_params, 2, true);
    LLVMValueRef yo[2] = {quantize_and_predict(g, "raw", LLVMGetParam(raw, 0)),
                          LLVMGetParam(raw, 1)};
    for_count(g, shape_size(model_output_shape(m)), widen_one, yo);
    LLVMBuildRetVoid(g->b);

    LLVMTypeRef params[7] = {g->i32, LLVMPointerType(g->pi8, 0), g->pi8, g->i32, g->i32, g->pi8,
                             g->pi8};
    LLVMValueRef fn = add_function(g, "main", LLVMFunctionType(g->i32, params, 2, 0), false);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    LLVMValueRef args[7] = {LLVMGetParam(fn, 0),
                            LLVMGetParam(fn, 1),
                            string_constant(g, m->name),
                            i32c(g, shape_size(&m->input)),
                            i32c(g, shape_size(model_output_shape(m))),
                            LLVMConstBitCast(predict_batch, g->pi8),
                            LLVMConstBitCast(raw, g->pi8)};
    LLVMTypeRef rt = LLVMFunctionType(g->i32, params, 7, 0);
    LLVMBuildRet(g->b, call(g, external(g, "cnnrt_predict_command_int8", rt), rt, args, 7));
}

static void build_module_q(Gen *g)
{
    q_constants(g);
    emit_requantize(g);
    build_versions(g);
    emit_predict_q(g);
    emit_quantize(g);
    LLVMValueRef batch = emit_predict_float(g);
    begin_function(g, "isa", g->pi8, NULL, 0, false);
    LLVMBuildRet(g->b, string_constant(g, g->p->vector_width > 0 ? "vnni" : "scalar"));
    if (g->o->main)
        emit_main_q(g, batch);
    free_versions(g);
}

/* ---- the target, the pipeline, the output ------------------------------------------ */

/* Whether an LLVM feature string ("+avx2,-avx512f,...") enables `name`. */
static bool has_feature(const char *features, const char *name)
{
    size_t n = strlen(name);
    for (const char *f = features; (f = strstr(f, name)); f += n)
        if (f > features && f[-1] == '+' && (f[n] == ',' || f[n] == '\0'))
            return true;
    return false;
}

int emit_llvm_host_vector_width(void)
{
    char *features = LLVMGetHostCPUFeatures();
    int width = has_feature(features, "avx512f") && has_feature(features, "avx512vl") ? 16
                : has_feature(features, "avx2") && has_feature(features, "fma")       ? 8
                                                                                      : 4;
    LLVMDisposeMessage(features);
    return width;
}

bool emit_llvm_host_has_vnni(void)
{
    char *features = LLVMGetHostCPUFeatures();
    bool vnni = has_feature(features, "avx512f") && has_feature(features, "avx512bw") &&
                has_feature(features, "avx512dq") && has_feature(features, "avx512vl") &&
                has_feature(features, "avx512vnni");
    LLVMDisposeMessage(features);
    return vnni;
}

static void set_types(Gen *g)
{
    g->f32 = LLVMFloatTypeInContext(g->ctx);
    g->f64 = LLVMDoubleTypeInContext(g->ctx);
    g->i8 = LLVMInt8TypeInContext(g->ctx);
    g->i32 = LLVMInt32TypeInContext(g->ctx);
    g->i64 = LLVMInt64TypeInContext(g->ctx);
    /* C's long (and size_t): pointer-sized on the LP64 and ILP32 targets */
    g->lng = LLVMIntPtrTypeInContext(g->ctx, g->layout);
    g->vd = LLVMVoidTypeInContext(g->ctx);
    g->pf32 = LLVMPointerType(g->f32, 0);
    g->pi8 = LLVMPointerType(g->i8, 0);
}

static char *failure(const char *what, char *message)
{
    size_t n = strlen(what) + (message ? strlen(message) : 0) + 4;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s%s", what, message ? ": " : "", message ? message : "");
    if (message)
        LLVMDisposeMessage(message);
    return s;
}

int emit_llvm_target_vector_width(const char *triple)
{
    return strncmp(triple, "thumb", 5) == 0 || strncmp(triple, "arm", 3) == 0 ? 0 : 4;
}

/* A Cortex-M triple's CPU when none is given, as arm-none-eabi-gcc's
 * -mcpu would name it: LLVM's generic CPU for a thumbv7em has no FPU,
 * and the hard-float ABI (eabihf) says there is one. */
static const char *default_cpu(const char *triple)
{
    static const struct {
        const char *arch, *abi, *cpu;
    } cpus[] = {
        {"thumbv7em", "eabihf", "cortex-m4"},
        {"thumbv7m", "", "cortex-m3"},
        {"thumbv6m", "", "cortex-m0plus"},
    };
    for (size_t i = 0; i < sizeof cpus / sizeof cpus[0]; i++)
        if (strncmp(triple, cpus[i].arch, strlen(cpus[i].arch)) == 0 &&
            triple[strlen(cpus[i].arch)] == '-' && strstr(triple, cpus[i].abi))
            return cpus[i].cpu;
    return "";
}

static LLVMTargetMachineRef target_machine(const char *target, const char *target_cpu, char **error)
{
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers(); /* the inline cpuid of a multiversioned object */
    char *triple = target ? LLVMNormalizeTargetTriple(target) : LLVMGetDefaultTargetTriple();
    char *cpu = !target      ? LLVMGetHostCPUName()
                : target_cpu ? LLVMCreateMessage(target_cpu)
                             : LLVMCreateMessage(default_cpu(triple));
    char *features = target ? NULL : LLVMGetHostCPUFeatures();
    /* bare metal (an OS of none) links without a GOT */
    LLVMRelocMode reloc = strstr(triple, "-none") ? LLVMRelocStatic : LLVMRelocPIC;
    LLVMTargetRef t;
    char *message = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &t, &message)) {
        *error = failure("unknown target", message);
    } else {
        tm = LLVMCreateTargetMachine(t, triple, cpu ? cpu : "", features ? features : "",
                                     LLVMCodeGenLevelAggressive, reloc, LLVMCodeModelDefault);
        if (!tm)
            *error = failure("LLVM cannot generate code for this target", NULL);
    }
    LLVMDisposeMessage(triple);
    if (cpu)
        LLVMDisposeMessage(cpu);
    if (features)
        LLVMDisposeMessage(features);
    return tm;
}

bool emit_llvm_target_multiversioned(const char *triple)
{
    return strncmp(triple, "x86_64-", 7) == 0 || strncmp(triple, "amd64-", 6) == 0;
}

/* A multiversioned object's clones' target attributes (emit_clones'
 * order; the last, SSE's 4 floats, is the target's own): what the C
 * backend's target attributes ask for. */
static const char *const clone_features[EMIT_CLONE_COUNT] = {
    "+avx512f,+avx512vl,+avx2,+fma",
    "+avx2,+fma",
    NULL,
    NULL,
};

static void set_versions(Gen *g, Version *versions, const IrProgram *programs, int nprograms)
{
    g->versions = versions;
    g->nversions = nprograms;
    for (int k = 0; k < nprograms; k++) {
        Version *v = &versions[k];
        v->p = &programs[k];
        v->cpu = g->base_cpu;
        v->features = g->base_features;
        if (nprograms == 1) {
            v->name = "llvm";
            continue;
        }
        v->name = emit_clones[k].name;
        snprintf(v->suffix, sizeof v->suffix, "_%s", v->name);
        if (clone_features[k]) {
            v->cpu = "x86-64";
            v->features = clone_features[k];
        }
    }
    use_version(g, 0);
}

char *emit_llvm(const Model *m, const IrProgram *programs, int nprograms, const EmitOptions *o,
                const LlvmOptions *lo, size_t *len, char **error)
{
    *error = NULL;
    /* LLVM's array types and constant strings count in unsigned */
    int64_t params = m->param_floats;
    if (4 * (params + 1) > (int64_t)UINT32_MAX || m->arena_floats >= (int64_t)UINT32_MAX) {
        *error = failure("the model's parameters or activations are too large for LLVM's "
                         "constants (4 GiB)",
                         NULL);
        return NULL;
    }
    static bool options_set;
    if (!options_set) {
        /* No partial unrolling: the loop IR's register blocks are unrolled
         * already, and unrolling their loops again made fashion's object
         * take 3x as long to build (14 s, not 4.4) and run no faster.
         * Loops of constant trip count are still unrolled whole. */
        const char *argv[2] = {"cnngen", "-unroll-allow-partial=0"};
        LLVMParseCommandLineOptions(2, argv, NULL);
        options_set = true;
    }
    LLVMTargetMachineRef tm = target_machine(lo->target, lo->cpu, error);
    if (!tm)
        return NULL;
    Gen g = {0};
    g.m = m;
    g.o = o;
    g.contract = lo->contract;
    g.ctx = LLVMContextCreate();
    g.mod = LLVMModuleCreateWithNameInContext(m->name, g.ctx);
    g.b = LLVMCreateBuilderInContext(g.ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(g.mod, triple);
    LLVMDisposeMessage(triple);
    g.layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(g.mod, g.layout);
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    g.base_cpu = *cpu ? cpu : NULL;
    g.base_features = features;
    Version versions[EMIT_CLONE_COUNT];
    memset(versions, 0, sizeof versions);
    set_versions(&g, versions, programs, nprograms);
    set_types(&g);
    build_module(&g);

    char *message = NULL, *out = NULL;
    if (LLVMVerifyModule(g.mod, LLVMReturnStatusAction, &message)) {
        *error = failure("internal error: the module does not verify", message);
        message = NULL;
    } else {
        LLVMDisposeMessage(message);
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
        LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
        LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
        LLVMErrorRef err = LLVMRunPasses(g.mod, "default<O3>", tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (err) {
            *error = failure("the optimisation pipeline failed", LLVMGetErrorMessage(err));
        } else if (lo->kind == LLVM_EMIT_IR) {
            char *text = LLVMPrintModuleToString(g.mod);
            *len = strlen(text);
            out = xmalloc(*len + 1);
            memcpy(out, text, *len + 1);
            LLVMDisposeMessage(text);
        } else {
            LLVMMemoryBufferRef buf;
            if (LLVMTargetMachineEmitToMemoryBuffer(tm, g.mod, LLVMObjectFile, &message, &buf)) {
                *error = failure("LLVM could not write the object", message);
            } else {
                *len = LLVMGetBufferSize(buf);
                out = xmalloc(*len + 1);
                memcpy(out, LLVMGetBufferStart(buf), *len);
                LLVMDisposeMemoryBuffer(buf);
            }
        }
    }
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeTargetData(g.layout);
    LLVMDisposeBuilder(g.b);
    LLVMDisposeModule(g.mod);
    LLVMContextDispose(g.ctx);
    LLVMDisposeTargetMachine(tm);
    return out;
}

static int struct_layout(LLVMTypeRef (*type_of)(const Gen *), int fields,
                         unsigned long long *offsets, int max, unsigned long long *size)
{
    char *error = NULL;
    LLVMTargetMachineRef tm = target_machine(NULL, NULL, &error);
    if (!tm) {
        free(error);
        return -1;
    }
    Gen g = {0};
    g.ctx = LLVMContextCreate();
    g.layout = LLVMCreateTargetDataLayout(tm);
    set_types(&g);
    LLVMTypeRef type = type_of(&g);
    int n = fields < max ? fields : max;
    for (int i = 0; i < n; i++)
        offsets[i] = LLVMOffsetOfElement(g.layout, type, (unsigned)i);
    *size = LLVMABISizeOfType(g.layout, type);
    LLVMDisposeTargetData(g.layout);
    LLVMContextDispose(g.ctx);
    LLVMDisposeTargetMachine(tm);
    return fields;
}

/* What the module exports: its only symbol with default visibility (the
 * build hides the rest, the compiler's own code linked in included). */
__attribute__((visibility("default"))) const LlvmBackend cnngen_llvm_backend = {
    emit_llvm_version,
    emit_llvm_host_has_vnni,
    emit_llvm_host_vector_width,
    emit_llvm_target_vector_width,
    emit_llvm_target_multiversioned,
    emit_llvm,
};

int emit_llvm_model_layout(unsigned long long *offsets, int max, unsigned long long *size)
{
    return struct_layout(model_type, MODEL_FIELDS, offsets, max, size);
}

int emit_llvm_layer_info_layout(unsigned long long *offsets, int max, unsigned long long *size)
{
    return struct_layout(layer_info_type, LAYER_INFO_FIELDS, offsets, max, size);
}

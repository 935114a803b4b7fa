/* graph.c - shapes, parameter counts, FLOPs and the static memory plan
 * of a checked model. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "layers/layers.h"

const char *const activation_names[] = {"none", "linear",  "relu",      "sigmoid",
                                        "tanh", "softmax", "leaky_relu"};
const char *const init_names[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                  "lecun_normal",   "zeros",         "ones"};
const char *const loss_names[] = {"default", "mse", "mae", "binary_crossentropy", "crossentropy"};
const char *const metric_names[] = {"accuracy", "mae", "rmse"};
const char *const optimizer_names[] = {"sgd", "adam", "adamw", NULL};
const char *const schedule_names[] = {"none",   "step_decay", "exponential",
                                      "cosine", "one_cycle",  NULL};
const char *const augment_names[] = {"shift", "crop", "flip", "noise", "scale", NULL};

int64_t shape_size(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n = mul_sat(n, s->dim[i]);
    return n;
}

void shape_format(const Shape *s, StrBuf *out)
{
    strbuf_append(out, "[", 1);
    for (int i = 0; i < s->rank; i++)
        strbuf_printf(out, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    strbuf_append(out, "]", 1);
}

bool shape_equal(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

const Shape *model_node_shape(const Model *m, int node)
{
    return node == 0 ? &m->input : &m->layers[node - 1]->out;
}

const Shape *model_output_shape(const Model *m)
{
    return model_node_shape(m, m->nlayers);
}

Activation model_final_activation(const Model *m)
{
    return m->nlayers ? m->layers[m->nlayers - 1]->activation : ACT_NONE;
}

int64_t layer_param_count(const Layer *l, bool trainable)
{
    int64_t n = 0;
    for (int i = 0; i < l->nparams; i++)
        if (l->params[i].trainable == trainable)
            n += shape_size(&l->params[i].shape);
    return n;
}

int64_t model_param_count(const Model *m, bool trainable)
{
    int64_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += layer_param_count(m->layers[i], trainable);
    return n;
}

int64_t model_static_bytes(const Model *m, bool training)
{
    int64_t floats = m->param_floats; /* the layers', and quantize = int8's observers */
    floats += m->arena_floats + (int64_t)m->block_samples * m->block_stride;
    floats += training ? m->tp.floats : 0;
    return mul_sat(4, floats);
}

__int128 layer_flops(const Layer *l, const Model *m)
{
    if (!l->kind->flops)
        return 0;
    return l->kind->flops(l, model_node_shape(m, l->srcs[0]));
}

__int128 model_flops(const Model *m)
{
    __int128 total = 0;
    for (int i = 0; i < m->nlayers; i++)
        total += layer_flops(m->layers[i], m);
    return total;
}

/* ---- memory plan ---------------------------------------------------------
 * Layers run in order.  Each output that is not the model's output gets a
 * block of the arena when its layer runs; a block returns to the free list
 * after the last layer that reads it.  flatten only renames its input, so
 * it shares its input's block.  Blocks are aligned to 16 floats (64 bytes,
 * one AVX-512 vector).  First fit over an address-ordered free list keeps
 * this linear in practice, even for 20,000 layers. */

enum { PLAN_ALIGN = 16 };

typedef struct {
    int64_t offset, size;
} Block;

typedef struct {
    Block *free;
    int nfree, cap;
    int64_t top; /* the arena's size so far */
} FreeList;

static int64_t plan_alloc(FreeList *fl, int64_t size)
{
    for (int i = 0; i < fl->nfree; i++) {
        Block *b = &fl->free[i];
        if (b->size >= size) {
            int64_t offset = b->offset;
            b->offset += size;
            b->size -= size;
            if (b->size == 0) {
                memmove(b, b + 1, (size_t)(fl->nfree - i - 1) * sizeof *b);
                fl->nfree--;
            }
            return offset;
        }
    }
    /* Grow the arena; a free block at its top is used first. */
    if (fl->nfree && fl->free[fl->nfree - 1].offset + fl->free[fl->nfree - 1].size == fl->top) {
        int64_t offset = fl->free[--fl->nfree].offset;
        fl->top = offset + size;
        return offset;
    }
    int64_t offset = fl->top;
    fl->top += size;
    return offset;
}

static void plan_release(FreeList *fl, int64_t offset, int64_t size)
{
    int i = 0;
    while (i < fl->nfree && fl->free[i].offset < offset)
        i++;
    if (fl->nfree == fl->cap) {
        fl->cap = fl->cap ? 2 * fl->cap : 16;
        fl->free = xrealloc(fl->free, (size_t)fl->cap * sizeof *fl->free);
    }
    memmove(&fl->free[i + 1], &fl->free[i], (size_t)(fl->nfree - i) * sizeof *fl->free);
    fl->free[i] = (Block){offset, size};
    fl->nfree++;
    /* Merge with the neighbours. */
    if (i + 1 < fl->nfree && fl->free[i].offset + fl->free[i].size == fl->free[i + 1].offset) {
        fl->free[i].size += fl->free[i + 1].size;
        memmove(&fl->free[i + 1], &fl->free[i + 2], (size_t)(fl->nfree - i - 2) * sizeof *fl->free);
        fl->nfree--;
    }
    if (i > 0 && fl->free[i - 1].offset + fl->free[i - 1].size == fl->free[i].offset) {
        fl->free[i - 1].size += fl->free[i].size;
        memmove(&fl->free[i], &fl->free[i + 1], (size_t)(fl->nfree - i - 1) * sizeof *fl->free);
        fl->nfree--;
    }
}

int model_storage_owner(const Model *m, int node)
{
    while (node > 0 && m->layers[node - 1]->alias_of >= 0)
        node = m->layers[node - 1]->alias_of;
    return node;
}

/* A conv or dense layer takes the element-wise layers right after it (the
 * kinds with an epilogue) into its epilogue while each link's output has
 * no other reader. */
static void fuse_epilogues(Model *m, const int *users)
{
    for (int i = 0; i < m->nlayers; i++) {
        Layer *p = m->layers[i];
        if (!p->kind->linear_map || p->activation == ACT_SOFTMAX)
            continue;
        int last = i + 1; /* node of the chain's end so far */
        for (int j = i + 1; j < m->nlayers && p->nepilogue < LAYER_MAX_EPILOGUE; j++) {
            Layer *f = m->layers[j];
            if (!f->kind->epilogue || f->srcs[0] != last || users[last] != 1)
                break;
            f->fused = true;
            f->alias_of = last;
            p->epilogue[p->nepilogue++] = j + 1;
            last = j + 1;
        }
        i = last - 1;
    }
}

static int64_t block_size(const Layer *l)
{
    return (shape_size(&l->out) + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
}

void graph_plan_memory(Model *m)
{
    int n = m->nlayers;
    int *last_use = xmalloc(((size_t)n + 1) * sizeof *last_use);
    int *users = xcalloc((size_t)n + 1, sizeof *users);
    for (int node = 0; node <= n; node++)
        last_use[node] = node;
    for (int i = 0; i < n; i++) {
        Layer *l = m->layers[i];
        l->alias_of = -1;
        l->arena_offset = -1;
        l->nepilogue = 0;
        l->fused = false;
        for (int k = 0; k < l->nsrcs; k++)
            users[l->srcs[k]]++;
    }
    fuse_epilogues(m, users);
    /* The kinds that are the identity at inference (flatten only renames
     * its input) share their input's storage (as the model's output,
     * unless that is the model's input: then they copy). */
    for (int i = 0; i < n; i++) {
        Layer *l = m->layers[i];
        if (l->kind->aliases_input && !(i + 1 == n && model_storage_owner(m, l->srcs[0]) == 0))
            l->alias_of = l->srcs[0];
    }
    int output_owner = n ? model_storage_owner(m, n) : 0;
    /* An owner lives as long as anything that shares its storage is read. */
    for (int i = n - 1; i >= 0; i--) {
        Layer *l = m->layers[i];
        for (int k = 0; k < l->nsrcs; k++) {
            int owner = model_storage_owner(m, l->srcs[k]);
            if (last_use[owner] < i + 1)
                last_use[owner] = i + 1;
        }
    }
    FreeList fl = {0};
    for (int i = 0; i < n; i++) {
        Layer *l = m->layers[i];
        int node = i + 1;
        if (l->alias_of < 0 && node != output_owner)
            l->arena_offset = plan_alloc(&fl, block_size(l));
        else if (l->alias_of >= 0) {
            int owner = model_storage_owner(m, node);
            l->arena_offset = owner == output_owner ? -1
                              : owner > 0           ? m->layers[owner - 1]->arena_offset
                                                    : -2; /* the caller's input */
        }
        /* Free what this layer was the last to read. */
        for (int k = 0; k < l->nsrcs; k++) {
            int owner = model_storage_owner(m, l->srcs[k]);
            if (owner > 0 && last_use[owner] == node && m->layers[owner - 1]->arena_offset >= 0 &&
                m->layers[owner - 1]->alias_of < 0) {
                plan_release(&fl, m->layers[owner - 1]->arena_offset,
                             block_size(m->layers[owner - 1]));
                last_use[owner] = -1; /* freed once, even if read twice */
            }
        }
        if (last_use[node] == node && l->alias_of < 0 && l->arena_offset >= 0)
            plan_release(&fl, l->arena_offset, block_size(l)); /* an output nothing reads */
    }
    m->arena_floats = fl.top;
    free(fl.free);
    free(last_use);
    free(users);
}

/* Parameters past this many floats (the first-level cache's 32 KB) are
 * read from further out for every sample, unless samples share them. */
#define BLOCK_MIN_PARAM_FLOATS 8192
/* A block's arenas stay under 64 MB, and hold at least two groups of
 * samples (a block lowering's register block: lower.h LOWER_BLOCK_GROUP). */
#define BLOCK_MAX_BYTES (INT64_C(64) << 20)
#define BLOCK_MAX_SAMPLES 64

bool layer_params_outgrow_cache(const Layer *l)
{
    return layer_param_count(l, true) + layer_param_count(l, false) >= BLOCK_MIN_PARAM_FLOATS;
}

bool layer_runs_in_blocks(const Model *m, int i)
{
    const Layer *l = m->layers[i];
    return l->kind->lower_block && l->alias_of < 0 && l->activation != ACT_SOFTMAX &&
           layer_params_outgrow_cache(l);
}

void graph_plan_blocks(Model *m)
{
    m->block_samples = 0;
    m->block_stride = 0;
    bool any = false;
    for (int i = 0; i < m->nlayers; i++)
        any |= layer_runs_in_blocks(m, i);
    if (!any)
        return;
    /* a whole number of cache lines (16 floats), and not a multiple of
     * 4 KB: the group's samples would fall in the same cache sets */
    int64_t stride = (m->arena_floats + 1 + 15) / 16 * 16;
    if (stride % 1024 == 0)
        stride += 16;
    int64_t samples = BLOCK_MAX_BYTES / (4 * stride);
    samples = samples > BLOCK_MAX_SAMPLES ? BLOCK_MAX_SAMPLES : samples / 4 * 4;
    if (samples < 8)
        return;
    m->block_samples = (int)samples;
    m->block_stride = stride;
}

void graph_plan_params(Model *m)
{
    int n = m->nlayers + 1; /* room for the observers of quantize = int8 */
    for (int i = 0; i < m->nlayers; i++)
        n += m->layers[i]->nparams;
    m->params = arena_alloc(&m->arena, ((size_t)n + 1) * sizeof *m->params);
    m->nparams = 0;
    int64_t offset = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            Param *p = &m->layers[i]->params[k];
            p->offset = offset;
            p->layer = i;
            offset += shape_size(&p->shape);
            m->params[m->nparams++] = p;
        }
    for (int node = 0; m->qat.observer && node <= m->nlayers; node++)
        if (m->qat.observer[node]) {
            Param *p = m->qat.observer[node];
            p->offset = offset;
            offset += shape_size(&p->shape);
            m->params[m->nparams++] = p;
        }
    m->param_floats = offset;
}

/* ---- training memory -------------------------------------------------------
 * The layers that train as identities (flatten, a linear activation
 * layer, dropout(0): their kind says) share their input's values and
 * gradient.  Everything else gets its own [batch][size] block for its
 * values and one for its gradient; a conv or dense layer with an
 * activation also keeps its pre-activation (the backward pass needs
 * both, and the loss may need the logits); and a kind may ask for more
 * (LayerKind: a mask, per-channel statistics, a transposed kernel). */

static bool train_identity(const Layer *l)
{
    return l->kind->trains_as_identity && l->kind->trains_as_identity(l);
}

static bool train_has_pre(const Layer *l)
{
    return l->kind->linear_map && l->activation != ACT_LINEAR && l->activation != ACT_NONE;
}

bool train_needs_grad(const Model *m, int node)
{
    return m->tp.owner[node] != 0;
}

int train_logits_node(const Model *m, bool *pre)
{
    *pre = false;
    if (m->nlayers == 0)
        return -1;
    const Layer *last = m->layers[m->nlayers - 1];
    bool from_logits = (m->train.loss == LOSS_CROSSENTROPY && last->activation == ACT_SOFTMAX) ||
                       (m->train.loss == LOSS_BCE && last->activation == ACT_SIGMOID);
    if (!from_logits)
        return -1;
    if (train_has_pre(last)) {
        *pre = true;
        return m->nlayers;
    }
    return last->srcs[0]; /* an activation layer: its input */
}

static int64_t take(int64_t *top, int64_t n)
{
    int64_t at = *top;
    *top += (n + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
    return at;
}

/* quantize = int8: the fake-quantized values of each node the layers read
 * so, its observer's scratch, and each fake-quantized kernel. */
static void plan_fake_quantization(Model *m, int64_t *top, int64_t *acts)
{
    TrainPlan *tp = &m->tp;
    for (int node = 0; m->qat.observer && node <= m->nlayers; node++) {
        if (m->qat.fake[node]) {
            int64_t size = mul_sat(shape_size(model_node_shape(m, node)), tp->batch);
            tp->fq[node] = take(top, size);
            *acts += size;
        }
        if (m->qat.observer[node]) /* and each sample's minimum and maximum */
            tp->observe[node] = take(top, 5 + 2 * tp->batch);
        const Layer *l = node ? m->layers[node - 1] : NULL;
        if (l && m->qat.kernel[node - 1])
            tp->wq[node] =
                take(top, shape_size(&l->params[0].shape) + 2 * l->out.dim[l->out.rank - 1]);
    }
}

void graph_plan_training(Model *m)
{
    TrainPlan *tp = &m->tp;
    int n = m->nlayers;
    size_t count = (size_t)n + 1;
    tp->batch = m->train.batch;
    tp->owner = arena_alloc(&m->arena, count * sizeof *tp->owner);
    int64_t **tables[] = {&tp->act, &tp->grad, &tp->pre,     &tp->mask, &tp->stats,
                          &tp->wt,  &tp->fq,   &tp->observe, &tp->wq};
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
        *tables[t] = arena_alloc(&m->arena, count * sizeof **tables[t]);
        for (size_t i = 0; i < count; i++)
            (*tables[t])[i] = -1;
    }
    int64_t top = 0, acts = 0, grads = 0, batch = tp->batch;
    tp->owner[0] = 0;
    for (int i = 0; i < n; i++) {
        const Layer *l = m->layers[i];
        int node = i + 1;
        int64_t size = mul_sat(shape_size(&l->out), batch);
        if (train_identity(l)) {
            int owner = tp->owner[l->srcs[0]];
            tp->owner[node] = owner;
            tp->act[node] = tp->act[owner];
            tp->grad[node] = tp->grad[owner];
            continue;
        }
        tp->owner[node] = node;
        tp->act[node] = take(&top, size);
        tp->grad[node] = take(&top, size);
        acts += size;
        grads += size;
        if (train_has_pre(l)) {
            tp->pre[node] = take(&top, size);
            acts += size;
        }
        if (l->kind->train_mask) {
            tp->mask[node] = take(&top, size);
            acts += size;
        }
        if (l->kind->train_channel_stats) {
            int64_t floats = l->kind->train_channel_stats * l->out.dim[l->out.rank - 1];
            tp->stats[node] = take(&top, floats);
            acts += floats;
        }
        if (l->kind->train_transposed_kernel && tp->owner[l->srcs[0]] != 0) {
            int64_t k = shape_size(&l->params[0].shape);
            tp->wt[node] = take(&top, k);
            grads += k;
        }
    }
    plan_fake_quantization(m, &top, &acts);
    int64_t params = m->param_floats;
    tp->loss = take(&top, batch);
    tp->param_grad = take(&top, params);
    grads += params;
    int nstate = m->train.optimizer != OPT_SGD ? 2 : m->train.momentum != 0 ? 1 : 0;
    tp->state[0] = tp->state[1] = -1;
    for (int k = 0; k < nstate; k++)
        tp->state[k] = take(&top, params);
    tp->hyper = take(&top, 4);
    tp->floats = top;
    tp->activation_floats = acts;
    tp->gradient_floats = grads;
    tp->state_floats = nstate * params;
}

void model_free(Model *m)
{
    if (!m)
        return;
    arena_free(&m->arena);
    free(m);
}

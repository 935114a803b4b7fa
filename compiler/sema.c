/* sema.c - names, arguments, constants and shapes: statements in, a
 * checked Model out. */
#include "sema.h"

#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "sema_train.h"
#include "layers/layers.h"

typedef struct {
    Diag *diag;
    Ast *ast;
    Model *m;
    Consts consts;
    StrMap labels; /* label -> node */
    StrMap names;  /* layer name -> source line of that layer */
    StrMap counts; /* layer kind -> how many so far */
    Shape *shapes; /* node -> shape */
    bool *known;   /* node -> shape derived (false after an error) */
    int nnodes, cap;
    PtrVec layers; /* node-1 -> Layer (NULL for an unknown kind) */
    int current;   /* node of the current tensor; -1 before input */
    bool input_seen, missing_input_reported;
    const Stmt *train_stmt;
    TrainReader train;
    int64_t params;       /* parameters of the layers so far */
    bool params_reported; /* the model's parameter limit, said once */
} Sema;

static const char *const reserved_words[] = {"model", "input", "const", "from",
                                             "train", "true",  "false", NULL};

static const char *const c_keywords[] = {
    "auto",     "break",  "case",   "char",     "const",      "continue", "default",  "do",
    "double",   "else",   "enum",   "extern",   "float",      "for",      "goto",     "if",
    "inline",   "int",    "long",   "register", "restrict",   "return",   "short",    "signed",
    "sizeof",   "static", "struct", "switch",   "typedef",    "union",    "unsigned", "void",
    "volatile", "while",  "_Bool",  "_Complex", "_Imaginary", NULL};

static bool in_words(const char *const *words, const char *name)
{
    for (; *words; words++)
        if (strcmp(*words, name) == 0)
            return true;
    return false;
}

bool sema_name_is_taken(const char *name)
{
    return in_words(c_keywords, name) || in_words(reserved_words, name);
}

/* ---- nodes ------------------------------------------------------------- */

static int add_node(Sema *s)
{
    if (s->nnodes == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->shapes = xrealloc(s->shapes, (size_t)s->cap * sizeof *s->shapes);
        s->known = xrealloc(s->known, (size_t)s->cap * sizeof *s->known);
    }
    s->known[s->nnodes] = false;
    return s->nnodes++;
}

/* ---- the size limit -----------------------------------------------------
 * Every tensor must be addressable with a 32-bit int.  The message gives
 * the exact element count, which can exceed 64 bits, so it is multiplied
 * out in base 10^9. */

static void format_exact_product(const Shape *shape, StrBuf *out)
{
    uint32_t limbs[40] = {1};
    int n = 1;
    for (int d = 0; d < shape->rank; d++) {
        unsigned __int128 carry = 0;
        for (int i = 0; i < n; i++) {
            unsigned __int128 v = (unsigned __int128)limbs[i] * (uint64_t)shape->dim[d] + carry;
            limbs[i] = (uint32_t)(v % 1000000000u);
            carry = v / 1000000000u;
        }
        while (carry && n < 40) {
            limbs[n++] = (uint32_t)(carry % 1000000000u);
            carry /= 1000000000u;
        }
    }
    while (n > 1 && limbs[n - 1] == 0)
        n--;
    strbuf_printf(out, "%u", limbs[n - 1]);
    for (int i = n - 2; i >= 0; i--)
        strbuf_printf(out, "%09u", limbs[i]);
}

static bool check_size(Sema *s, Loc loc, const char *what, const Shape *shape)
{
    double approx = 1;
    for (int i = 0; i < shape->rank; i++)
        approx *= (double)shape->dim[i];
    if (approx <= (double)SHAPE_MAX_ELEMENTS)
        return true;
    StrBuf dims = {0}, count = {0};
    shape_format(shape, &dims);
    format_exact_product(shape, &count);
    diag_error(s->diag, loc, "%s has shape %s: %s elements, more than the limit of %lld", what,
               dims.data, count.data, (long long)SHAPE_MAX_ELEMENTS);
    strbuf_free(&dims);
    strbuf_free(&count);
    return false;
}

/* ---- statements -------------------------------------------------------- */

static void on_model(Sema *s, const Stmt *st, int index)
{
    if (index != 0) {
        diag_error(s->diag, st->loc, "'model' must be the first statement, and comes once");
        return;
    }
    if (in_words(c_keywords, st->name)) {
        diag_error(s->diag, st->name_loc, "the model name '%s' is a C keyword", st->name);
        return;
    }
    s->m->name = arena_strndup(&s->m->arena, st->name, strlen(st->name));
}

static void on_input(Sema *s, const Stmt *st)
{
    if (s->input_seen) {
        diag_error(s->diag, st->loc, "the input is already declared");
        return;
    }
    if (s->layers.count) {
        diag_error(s->diag, st->loc, "'input' must come before the first layer");
        return;
    }
    s->input_seen = true;
    s->current = 0; /* the input node, even if its shape is bad */
    const Expr *dims = st->value;
    if (dims->kind != EXPR_LIST || dims->items.count < 1 || dims->items.count > 4) {
        diag_error(s->diag, dims->loc, "the input shape is a list [d1, ..., dk] of 1 to 4 sizes");
        return;
    }
    ArgReader r = {.diag = s->diag,
                   .ast = s->ast,
                   .arena = &s->m->arena,
                   .consts = &s->consts,
                   .what = "input",
                   .loc = st->loc};
    Shape shape = {.rank = dims->items.count};
    for (int i = 0; i < shape.rank; i++)
        if (!args_integer_value(&r, "an input size", dims->items.items[i], 1, &shape.dim[i]))
            return;
    if (!check_size(s, st->loc, "the input", &shape))
        return;
    s->m->input = shape;
    s->m->input_line = st->loc.line;
    s->shapes[0] = shape;
    s->known[0] = true;
}

static void on_const(Sema *s, const Stmt *st)
{
    double value;
    if (in_words(reserved_words, st->name)) {
        diag_error(s->diag, st->name_loc, "'%s' is a reserved word", st->name);
        return;
    }
    if (strmap_get(&s->consts.map, st->name, NULL)) {
        diag_error(s->diag, st->name_loc, "the constant '%s' is already defined", st->name);
        return;
    }
    if (!args_evaluate(s->diag, s->ast, &s->consts, st->value, &value))
        return;
    double *slot = arena_alloc(&s->m->arena, sizeof *slot);
    *slot = value;
    strmap_put(&s->consts.map, st->name, (intptr_t)slot);
}

static void on_from(Sema *s, const Stmt *st)
{
    intptr_t node;
    if (!strmap_get(&s->labels, st->name, &node)) {
        diag_error(s->diag, st->name_loc, "unknown label '%s'", st->name);
        return;
    }
    s->current = (int)node;
}

/* add(LABEL, ...), concat(LABEL, ...): the arguments are labels. */
static bool merge_labels(Sema *s, const Stmt *st, Layer *l, int node)
{
    if (st->args.count == 0) {
        diag_error(s->diag, st->loc, "%s needs one or more labels", st->name);
        return false;
    }
    l->srcs = arena_alloc(&s->m->arena, ((size_t)st->args.count + 1) * sizeof *l->srcs);
    for (int i = 0; i < st->args.count; i++) {
        const Arg *arg = &st->args.items[i];
        intptr_t src;
        if (arg->name || arg->value->kind != EXPR_NAME) {
            diag_error(s->diag, arg->loc, "the arguments of %s are labels", st->name);
            return false;
        }
        if (!strmap_get(&s->labels, arg->value->name, &src)) {
            diag_error(s->diag, arg->loc, "unknown label '%s'", arg->value->name);
            return false;
        }
        if (src == node) {
            diag_error(s->diag, arg->loc, "%s cannot read its own output '%s'", st->name,
                       arg->value->name);
            return false;
        }
        l->srcs[i + 1] = (int)src;
    }
    l->label_args = st->args.items;
    l->nsrcs = st->args.count + 1;
    return true;
}

static bool label_is_free(Sema *s, const Stmt *st)
{
    if (in_words(reserved_words, st->label)) {
        diag_error(s->diag, st->label_loc, "'%s' is a reserved word", st->label);
        return false;
    }
    if (strmap_get(&s->labels, st->label, NULL)) {
        diag_error(s->diag, st->label_loc, "the label '%s' is already defined", st->label);
        return false;
    }
    return true;
}

static const char *layer_name(Sema *s, const Stmt *st, const LayerKind *kind)
{
    intptr_t count = 0;
    strmap_get(&s->counts, kind->name, &count);
    strmap_put(&s->counts, kind->name, ++count);
    if (st->label)
        return arena_strndup(&s->m->arena, st->label, strlen(st->label));
    return arena_printf(&s->m->arena, "%s_%ld", kind->name, (long)count);
}

static void infer_layer(Sema *s, Layer *l, int node)
{
    Shape *ins = xmalloc((size_t)l->nsrcs * sizeof *ins);
    bool ready = true;
    for (int i = 0; i < l->nsrcs && ready; i++) {
        ready = s->known[l->srcs[i]];
        ins[i] = s->shapes[l->srcs[i]];
    }
    InferCtx ctx = {s->diag, &s->m->arena};
    bool ok = ready && l->kind->infer(l, ins, &ctx) && check_size(s, l->loc, l->name, &l->out);
    for (int i = 0; ok && i < l->nparams; i++)
        ok = check_size(s, l->loc, l->params[i].name, &l->params[i].shape);
    if (ok && l->kind->channel_scratch && l->out.dim[l->out.rank - 1] > MODEL_MAX_CHANNELS) {
        diag_error(s->diag, l->loc,
                   "'%s' has %lld channels, more than the limit of %lld (its working memory of a "
                   "float per channel is on the stack)",
                   l->name, (long long)l->out.dim[l->out.rank - 1], (long long)MODEL_MAX_CHANNELS);
        ok = false;
    }
    for (int i = 0; ok && i < l->nparams; i++)
        s->params += shape_size(&l->params[i].shape);
    if (ok && s->params > MODEL_MAX_PARAMS && !s->params_reported) {
        diag_error(s->diag, l->loc,
                   "the model's parameters reach %lld here, more than the limit of %lld (2 GB "
                   "of floats: generated code holds them in static arrays, and a program's "
                   "static data past 2 GB does not link)",
                   (long long)s->params, (long long)MODEL_MAX_PARAMS);
        s->params_reported = true;
        ok = false;
    }
    if (ok) {
        s->shapes[node] = l->out;
        s->known[node] = true;
    }
    free(ins);
}

static void on_layer(Sema *s, const Stmt *st)
{
    int node = add_node(s);
    ptrvec_push(&s->layers, NULL);
    int src = s->current;
    s->current = node;
    if (st->label) {
        if (!label_is_free(s, st))
            return;
        strmap_put(&s->labels, st->label, node);
    }
    const LayerKind *kind = layer_kind_find(st->name);
    if (!kind) {
        diag_error(s->diag, st->loc, "unknown layer '%s'", st->name);
        return;
    }
    const char *name = layer_name(s, st, kind);
    intptr_t line;
    if (strmap_get(&s->names, name, &line)) {
        diag_error(s->diag, st->label ? st->label_loc : st->loc,
                   "the name '%s' is already used by the layer on line %ld", name, (long)line);
        return;
    }
    strmap_put(&s->names, name, st->loc.line);

    Layer *l = arena_alloc(&s->m->arena, sizeof *l);
    l->kind = kind;
    l->name = name;
    l->label = st->label ? name : NULL;
    l->loc = st->loc;
    l->activation = kind->activation; /* an activation layer's; conv, dense: configure */
    s->layers.items[node - 1] = l;

    ArgReader r = {.diag = s->diag,
                   .ast = s->ast,
                   .arena = &s->m->arena,
                   .consts = &s->consts,
                   .what = name,
                   .loc = st->loc};
    if (kind->merges_labels) {
        if (!merge_labels(s, st, l, node))
            return;
    } else {
        l->srcs = arena_alloc(&s->m->arena, sizeof *l->srcs);
        l->nsrcs = 1;
        if (!args_bind(&r, kind->name, &st->args, kind->positional, kind->named))
            return;
    }
    l->srcs[0] = src;
    if (kind->configure && !kind->configure(l, &r))
        return;
    if (src < 0) {
        if (!s->missing_input_reported) {
            s->missing_input_reported = true;
            diag_error(s->diag, st->loc,
                       "a layer before 'input [...]': the input shape is unknown");
        }
        return;
    }
    infer_layer(s, l, node);
    l->label_args = NULL; /* the AST is not kept with the model */
}

/* ---- the train block (sema_train.c) ----------------------------------- */

static void on_train(Sema *s, const Stmt *st)
{
    if (s->train_stmt) {
        diag_error(s->diag, st->loc, "only one train block is allowed");
        return;
    }
    s->train_stmt = st;
    s->m->has_train = true;
    s->m->train_loc = st->loc;
    s->train = (TrainReader){.diag = s->diag,
                             .ast = s->ast,
                             .arena = &s->m->arena,
                             .consts = &s->consts,
                             .monitor_word = -1};
    StrMap seen = {0};
    for (int i = 0; i < st->args.count; i++) {
        const Arg *entry = &st->args.items[i];
        if (strmap_get(&seen, entry->name, NULL)) {
            diag_error(s->diag, entry->loc, "'%s' is set twice", entry->name);
            continue;
        }
        strmap_put(&seen, entry->name, 1);
        train_read_entry(&s->train, entry, &s->m->train);
    }
    strmap_free(&seen);
}

/* ---- warnings ----------------------------------------------------------- */

static void warn(Sema *s, Model *m)
{
    int n = m->nlayers;
    int *users = xcalloc((size_t)n + 1, sizeof *users);
    int *first_linear_user = xmalloc(((size_t)n + 1) * sizeof *first_linear_user);
    for (int i = 0; i <= n; i++)
        first_linear_user[i] = -1;
    for (int j = 0; j < n; j++) {
        const Layer *l = m->layers[j];
        for (int k = 0; k < l->nsrcs; k++) {
            users[l->srcs[k]]++;
            if (k == 0 && l->kind->linear_map && first_linear_user[l->srcs[0]] < 0)
                first_linear_user[l->srcs[0]] = j;
        }
    }
    for (int node = 1; node <= n; node++) {
        const Layer *l = m->layers[node - 1];
        if (users[node] == 0 && node != n)
            diag_warning(s->diag, l->loc, "the output of '%s' is never used", l->name);
        if (l->kind->linear_map && l->activation == ACT_LINEAR && !l->linear_explicit &&
            first_linear_user[node] >= 0)
            diag_warning(s->diag, l->loc,
                         "'%s' has a linear activation and feeds '%s' directly: two linear maps "
                         "compose into one (write activation=linear if intended)",
                         l->name, m->layers[first_linear_user[node]]->name);
    }
    if (m->has_train) {
        Activation final = model_final_activation(m);
        Loss loss = m->train.loss;
        Activation wanted = loss == LOSS_CROSSENTROPY ? ACT_SOFTMAX
                            : loss == LOSS_BCE        ? ACT_SIGMOID
                                                      : ACT_NONE;
        if (wanted != ACT_NONE && final != wanted)
            diag_warning(s->diag, m->train_loc,
                         "%s expects a %s output; the last layer has activation %s",
                         loss_names[loss], activation_names[wanted], activation_names[final]);
    }
    free(users);
    free(first_linear_user);
}

/* ---- the walk ----------------------------------------------------------- */

static Model *finish(Sema *s)
{
    Model *m = s->m;
    m->nlayers = s->layers.count;
    m->layers = arena_alloc(&m->arena, ((size_t)m->nlayers + 1) * sizeof *m->layers);
    if (m->nlayers)
        memcpy(m->layers, s->layers.items, (size_t)m->nlayers * sizeof *m->layers);
    if (m->train.loss == LOSS_DEFAULT) {
        Activation final = model_final_activation(m);
        m->train.loss = final == ACT_SOFTMAX   ? LOSS_CROSSENTROPY
                        : final == ACT_SIGMOID ? LOSS_BCE
                                               : LOSS_MSE;
    }
    warn(s, m);
    return m;
}

Model *sema_check(Ast *ast, Diag *diag, const char *filename)
{
    Sema s = {.diag = diag, .ast = ast, .current = -1};
    Model *m = xcalloc(1, sizeof *m);
    s.m = m;
    m->filename = filename;
    m->name = "";
    train_defaults(&m->train);
    add_node(&s); /* node 0: the input */
    const Program *p = &ast->program;
    if (p->count == 0)
        diag_error(diag, (Loc){1, 1}, "expected 'model NAME' as the first statement");
    for (int i = 0; i < p->count; i++) {
        const Stmt *st = p->items[i];
        if (i == 0 && st->kind != STMT_MODEL)
            diag_error(diag, st->loc, "expected 'model NAME' as the first statement");
        switch (st->kind) {
        case STMT_MODEL: on_model(&s, st, i); break;
        case STMT_INPUT: on_input(&s, st); break;
        case STMT_CONST: on_const(&s, st); break;
        case STMT_FROM: on_from(&s, st); break;
        case STMT_TRAIN: on_train(&s, st); break;
        case STMT_LAYER: on_layer(&s, st); break;
        }
    }
    if (p->count && !s.input_seen && !s.missing_input_reported)
        diag_error(diag, p->items[0]->loc, "the model has no 'input [...]' statement");
    if (s.train_stmt)
        train_check(&s.train, &m->train, &m->input);
    Model *result = diag_error_count(diag) ? NULL : finish(&s);
    strmap_free(&s.consts.map);
    strmap_free(&s.labels);
    strmap_free(&s.names);
    strmap_free(&s.counts);
    free(s.shapes);
    free(s.known);
    ptrvec_free(&s.layers);
    if (!result)
        model_free(m);
    return result;
}

/* ast.c - node constructors; every node lives in the AST's arena. */
#include "ast.h"

#include <string.h>

Expr *ast_expr(Ast *ast, ExprKind kind, Loc loc)
{
    Expr *e = arena_alloc(&ast->arena, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    return e;
}

Stmt *ast_stmt(Ast *ast, StmtKind kind, Loc loc)
{
    Stmt *s = arena_alloc(&ast->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    return s;
}

/* Lists grow by doubling inside the arena: the old block is left behind,
 * which at most doubles what a list costs. */
static void *grow(Ast *ast, void *items, int count, int *cap, size_t size)
{
    if (count < *cap)
        return items;
    int bigger = *cap ? 2 * *cap : 4;
    void *copy = arena_alloc(&ast->arena, (size_t)bigger * size);
    if (count)
        memcpy(copy, items, (size_t)count * size);
    *cap = bigger;
    return copy;
}

void ast_push_arg(Ast *ast, ArgList *list, Arg arg)
{
    list->items = grow(ast, list->items, list->count, &list->cap, sizeof arg);
    list->items[list->count++] = arg;
}

void ast_push_expr(Ast *ast, ExprList *list, Expr *e)
{
    list->items = grow(ast, list->items, list->count, &list->cap, sizeof e);
    list->items[list->count++] = e;
}

void ast_push_stmt(Ast *ast, Stmt *stmt)
{
    Program *p = &ast->program;
    p->items = grow(ast, p->items, p->count, &p->cap, sizeof stmt);
    p->items[p->count++] = stmt;
}

void ast_free(Ast *ast)
{
    arena_free(&ast->arena);
    memset(&ast->program, 0, sizeof ast->program);
}

const char *ast_describe(Ast *ast, const Expr *e)
{
    switch (e->kind) {
    case EXPR_TUPLE: return "a tuple";
    case EXPR_LIST: return "a list";
    case EXPR_CALL: return arena_printf(&ast->arena, "'%s(...)'", e->name);
    case EXPR_NAME: return arena_printf(&ast->arena, "'%s'", e->name);
    default: return "an expression";
    }
}

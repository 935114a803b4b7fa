/* ast.h - the syntax tree the parser builds: statements and constant
 * expressions, each with its source location.  Nothing is checked here;
 * sema gives every name and value its meaning. */
#ifndef CNNGEN_AST_H
#define CNNGEN_AST_H

#include "diag.h"
#include "util.h"

typedef enum {
    EXPR_NUM,   /* 0.5, 1e-3 */
    EXPR_NAME,  /* same, relu, a constant */
    EXPR_NEG,   /* -x */
    EXPR_BINOP, /* a + b, a - b, a * b, a / b */
    EXPR_TUPLE, /* (3, 3) */
    EXPR_LIST,  /* [1, 2, 3] */
    EXPR_CALL,  /* sgd(lr=0.1) */
} ExprKind;

typedef struct Expr Expr;

/* An argument: positional (name == NULL) or name=value.  Its location is
 * the name's for a named argument, the value's otherwise. */
typedef struct {
    Loc loc;
    const char *name;
    Expr *value;
} Arg;

typedef struct {
    Arg *items;
    int count, cap;
} ArgList;

typedef struct {
    Expr **items;
    int count, cap;
} ExprList;

struct Expr {
    ExprKind kind;
    Loc loc;          /* BINOP: the start of the left operand */
    double num;       /* NUM */
    const char *name; /* NAME, CALL */
    char op;          /* BINOP */
    Loc op_loc;       /* BINOP */
    Expr *lhs, *rhs;  /* BINOP; NEG uses lhs */
    int depth;        /* BINOP, NEG: the operations below it, on the longest path */
    ExprList items;   /* TUPLE, LIST */
    ArgList args;     /* CALL */
};

typedef enum {
    STMT_MODEL, /* model NAME */
    STMT_INPUT, /* input [d1, ..., dk] */
    STMT_CONST, /* const NAME = expr */
    STMT_FROM,  /* from LABEL */
    STMT_TRAIN, /* train { key = value ... } */
    STMT_LAYER, /* [label:] kind[(args)] */
} StmtKind;

typedef struct {
    StmtKind kind;
    Loc loc;          /* the keyword's; for a layer, its kind's */
    const char *name; /* MODEL, CONST, FROM: the name; LAYER: the kind */
    Loc name_loc;
    Expr *value;       /* INPUT: the dims; CONST: the value */
    const char *label; /* LAYER: NULL when none */
    Loc label_loc;
    ArgList args; /* LAYER: arguments; TRAIN: entries (all named) */
} Stmt;

typedef struct {
    Stmt **items;
    int count, cap;
} Program;

typedef struct {
    Arena arena;
    Program program;
} Ast;

Expr *ast_expr(Ast *ast, ExprKind kind, Loc loc);
void ast_push_arg(Ast *ast, ArgList *list, Arg arg);
void ast_push_expr(Ast *ast, ExprList *list, Expr *e);
void ast_push_stmt(Ast *ast, Stmt *stmt);
Stmt *ast_stmt(Ast *ast, StmtKind kind, Loc loc);
void ast_free(Ast *ast);

/* How an expression is named in a message: "a tuple", "'relu'", ... */
const char *ast_describe(Ast *ast, const Expr *e);

#endif

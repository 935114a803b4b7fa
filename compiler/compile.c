/* compile.c - run the front-end stages in order. */
#include "compile.h"

#include "ast.h"
#include "parser.h"
#include "sema.h"

Model *compile_source(const char *filename, const char *text, size_t len, Diag *diag)
{
    Ast ast = {0};
    parse_source(text, len, &ast, diag);
    Model *model = sema_check(&ast, diag, filename);
    ast_free(&ast);
    return model;
}

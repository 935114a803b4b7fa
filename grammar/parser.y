/* parser.y - the grammar of a .cnn model.
 *
 * Actions only build AST nodes; every check of meaning happens in sema.
 * A syntax error is reported in words ("expected a model name, found
 * ':'") and the parser goes on with the next statement, or with the next
 * entry inside a train block, so one run reports every bad statement.
 */

/* A pure (reentrant) parser: no globals, the scanner is a parameter. */
%define api.pure full
/* Every node keeps its source position for diagnostics. */
%locations
%define api.location.type {Loc}
/* Messages are ours (yyreport_syntax_error below); LAC makes the set of
 * expected tokens exact, which those messages are built from. */
%define parse.error custom
%define parse.lac full
/* The grammar has no conflicts; bison must not resolve any silently. */
%expect 0
%param {yyscan_t scanner}

%code requires {
#include "ast.h"
#include "diag.h"
typedef void *yyscan_t;
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
/* Parse one model source into ast->program; errors go to diag. */
void parse_source(const char *source, size_t len, Ast *ast, Diag *diag);
}

%code {
#include <stdlib.h>
#include <string.h>

#include "lexstate.h"

LexState *yyget_extra(yyscan_t scanner);
static void yyerror(YYLTYPE *loc, yyscan_t scanner, const char *msg);
static void report_junk(yyscan_t scanner, Loc loc, SkipMode skip);

#define AST (yyget_extra(scanner)->ast)

/* A node's location is that of its first symbol. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
    do {                                                              \
        if (N)                                                        \
            (Cur) = YYRHSLOC(Rhs, 1);                                 \
        else                                                          \
            (Cur) = YYRHSLOC(Rhs, 0);                                 \
    } while (0)

static Expr *binop(Ast *ast, char op, Loc op_loc, Expr *lhs, Expr *rhs)
{
    Expr *e = ast_expr(ast, EXPR_BINOP, lhs->loc);
    e->op = op;
    e->op_loc = op_loc;
    e->lhs = lhs;
    e->rhs = rhs;
    /* 1+1+...+1 builds a tree as deep as it is long without deepening the
     * parser's stack: the depth is kept, and sema refuses what is too deep
     * to walk (args_evaluate). */
    e->depth = (lhs->depth > rhs->depth ? lhs->depth : rhs->depth) + 1;
    return e;
}

static Stmt *layer_stmt(Ast *ast, const char *kind, Loc loc, ArgList args)
{
    Stmt *s = ast_stmt(ast, STMT_LAYER, loc);
    s->name = kind;
    s->name_loc = loc;
    s->args = args;
    return s;
}
}

%union {
    double num;
    const char *str;
    Expr *expr;
    Stmt *stmt;
    ArgList args;
    Arg arg;
    struct { ExprList list; int comma; } items;
}

%token <num> NUM "number"
%token <str> IDENT "identifier"
%token <str> MODEL "model" INPUT "input" CONST "const" FROM "from" TRAIN "train"
%token END "end of statement"

/* Maximal munch: a token that can continue a statement does, rather
 * than end it as junk.  LOW marks the rules that would end it early. */
%precedence LOW
%precedence ':' '(' '+' '-' '*' '/' 

%type <str> name statement_keyword
%type <expr> expr term unary primary
%type <stmt> stmt layer
%type <args> opt_args arglist args train_body body_a body_b
%type <arg> arg entry
%type <items> items itemlist

%%

/* program = { [stmt] END } */
program
    : %empty
    | program END
    | program stmt END              { if ($2) ast_push_stmt(AST, $2); }
    | program stmt junk END         { if ($2) ast_push_stmt(AST, $2); }
    | program error END             { yyerrok; }
    ;

/* A statement extends as far as it can (every conflict below is resolved
 * by shifting, as for a dangling else); a token that cannot continue it
 * is junk: an error, after which the statement itself still counts and
 * the rest of the line is skipped. */
junk: junk_token                    { report_junk(scanner, @1, SKIP_STATEMENT); } ;

junk_token
    : NUM | IDENT | MODEL | INPUT | CONST | FROM | TRAIN
    | '=' | '{' | '}' | ':' | '(' | ')' | '[' | ']' | ',' | '+' | '-' | '*' | '/'
    ;

/* stmt = "model" name | "input" expr | "const" name "=" expr
 *      | "from" name | "train" "{" entries "}" | layer */
stmt
    : MODEL name
        { $$ = ast_stmt(AST, STMT_MODEL, @1); $$->name = $2; $$->name_loc = @2; }
    | INPUT expr %prec LOW
        { $$ = ast_stmt(AST, STMT_INPUT, @1); $$->value = $2; }
    | CONST name '=' expr %prec LOW
        { $$ = ast_stmt(AST, STMT_CONST, @1); $$->name = $2; $$->name_loc = @2; $$->value = $4; }
    | FROM name
        { $$ = ast_stmt(AST, STMT_FROM, @1); $$->name = $2; $$->name_loc = @2; }
    | TRAIN '{' { yyget_extra(scanner)->in_train = true; } train_body train_close
        { $$ = ast_stmt(AST, STMT_TRAIN, @1); $$->args = $4; }
    | layer
    ;

/* layer = [IDENT ":"] name [ "(" arglist ")" ] */
layer
    : IDENT opt_args
        { $$ = layer_stmt(AST, $1, @1, $2); }
    | IDENT ':' IDENT opt_args
        {
            $$ = layer_stmt(AST, $3, @3, $4);
            $$->label = $1;
            $$->label_loc = @1;
        }
    | IDENT ':' statement_keyword
        {
            /* Reported at once, and the rest of the statement skipped. */
            LexState *s = yyget_extra(scanner);
            diag_error(s->diag, @3, "'%s' is a statement and cannot have a label", $3);
            s->skip = SKIP_STATEMENT;
            s->skip_depth = 0;
            $$ = NULL;
        }
    ;

/* Keywords are names everywhere but at the start of a statement. */
name: IDENT | statement_keyword ;
statement_keyword: MODEL | INPUT | CONST | FROM | TRAIN ;

opt_args
    : %empty %prec LOW              { $$ = (ArgList){0}; }
    | '(' arglist ')'               { $$ = $2; }
    ;

/* arglist = [ arg { "," arg } [","] ] */
arglist
    : %empty                        { $$ = (ArgList){0}; }
    | args
    | args ','
    ;

args
    : arg                           { $$ = (ArgList){0}; ast_push_arg(AST, &$$, $1); }
    | args ',' arg                  { $$ = $1; ast_push_arg(AST, &$$, $3); }
    ;

/* arg = expr | name "=" expr */
arg
    : expr                          { $$ = (Arg){$1->loc, NULL, $1}; }
    | name '=' expr                 { $$ = (Arg){@1, $1, $3}; }
    ;

/* The train block: entries end at a newline, ';' or ','.  body_a may be
 * followed by an entry, body_b (just after one) needs a separator first.
 * After an error the rest of the entry is skipped; the error token stays
 * on the stack until a newline, ';' or '}' comes, so that recovery
 * resumes inside the block. */
train_body
    : body_a
    | body_b
    | body_a error                  { $$ = $1; yyerrok; }
    | body_b error                  { $$ = $1; yyerrok; }
    ;

body_a
    : %empty                        { $$ = (ArgList){0}; }
    | body_a sep
    | body_b sep
    | body_a error END              { $$ = $1; yyerrok; }
    | body_b error END              { $$ = $1; yyerrok; }
    ;

body_b
    : body_a entry                  { $$ = $1; ast_push_arg(AST, &$$, $2); }
    | body_a entry entry_junk       { $$ = $1; ast_push_arg(AST, &$$, $2); }
    ;

/* As after a statement: the entry counts, the rest of it is skipped. */
entry_junk: entry_junk_token        { report_junk(scanner, @1, SKIP_TRAIN_ENTRY); } ;

/* ',' and '}' end an entry, so they are not junk after one. */
entry_junk_token
    : NUM | IDENT | MODEL | INPUT | CONST | FROM | TRAIN
    | '=' | '{' | ':' | '(' | ')' | '[' | ']' | '+' | '-' | '*' | '/'
    ;

sep: END | ',' ;

train_close: '}'                    { yyget_extra(scanner)->in_train = false; } ;

entry
    : name '=' expr %prec LOW       { $$ = (Arg){@1, $1, $3}; }
    ;

/* expr = term { ("+" | "-") term } */
expr
    : term %prec LOW
    | expr '+' term %prec LOW       { $$ = binop(AST, '+', @2, $1, $3); }
    | expr '-' term %prec LOW       { $$ = binop(AST, '-', @2, $1, $3); }
    ;

/* term = unary { ("*" | "/") unary } */
term
    : unary
    | term '*' unary                { $$ = binop(AST, '*', @2, $1, $3); }
    | term '/' unary                { $$ = binop(AST, '/', @2, $1, $3); }
    ;

/* unary = "-" unary | primary */
unary
    : primary
    | '-' unary                     { $$ = ast_expr(AST, EXPR_NEG, @1); $$->lhs = $2;
                                      $$->depth = $2->depth + 1; }
    ;

/* primary = NUM | name | name "(" arglist ")" | "(" items ")" | "[" items "]" */
primary
    : NUM                           { $$ = ast_expr(AST, EXPR_NUM, @1); $$->num = $1; }
    | name %prec LOW                { $$ = ast_expr(AST, EXPR_NAME, @1); $$->name = $1; }
    | name '(' arglist ')'
        { $$ = ast_expr(AST, EXPR_CALL, @1); $$->name = $1; $$->args = $3; }
    | '(' items ')'
        {
            if ($2.list.count == 1 && !$2.comma) {
                $$ = $2.list.items[0];          /* a parenthesised expression */
            } else {
                $$ = ast_expr(AST, EXPR_TUPLE, @1);
                $$->items = $2.list;
            }
        }
    | '[' items ']'
        { $$ = ast_expr(AST, EXPR_LIST, @1); $$->items = $2.list; }
    ;

items
    : %empty                        { $$.list = (ExprList){0}; $$.comma = 0; }
    | itemlist
    | itemlist ','                  { $$ = $1; $$.comma = 1; }
    ;

itemlist
    : expr
        { $$.list = (ExprList){0}; $$.comma = 0; ast_push_expr(AST, &$$.list, $1); }
    | itemlist ',' expr
        { $$ = $1; $$.comma = 1; ast_push_expr(AST, &$$.list, $3); }
    ;

%%

#include "lexer.h"

int lex_raw(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);

/* After a syntax error the rest of the statement (or train entry) is
 * skipped here, so that bison's recovery resumes exactly where the
 * reference implementation does: at the next newline or ';' outside any
 * {...}, or for a train entry at the next newline, ';' or '}'. */
static bool skip_stops(LexState *s, int token)
{
    if (token == 0 || s->eof_state)
        return true;
    if (s->skip == SKIP_TRAIN_ENTRY)
        return token == END || token == '}';
    if (token == END && s->skip_depth == 0)
        return true;
    if (token == '{')
        s->skip_depth++;
    else if (token == '}' && s->skip_depth > 0)
        s->skip_depth--;
    return false;
}

int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner)
{
    LexState *s = yyget_extra(scanner);
    int token = lex_raw(lval, lloc, scanner);
    if (s->skip != SKIP_NONE) {
        while (!skip_stops(s, token))
            token = lex_raw(lval, lloc, scanner);
        s->skip = SKIP_NONE;
    }
    s->prev_token = s->token;
    s->token = token;
    return token;
}

static bool has(const yysymbol_kind_t *expected, int n, yysymbol_kind_t sym)
{
    for (int i = 0; i < n; i++)
        if (expected[i] == sym)
            return true;
    return false;
}

/* Punctuation symbols are named by bison after their character: "'}'". */
static bool has_char(const yysymbol_kind_t *expected, int n, char c)
{
    char name[4] = {'\'', c, '\'', '\0'};
    for (int i = 0; i < n; i++)
        if (strcmp(yysymbol_name(expected[i]), name) == 0)
            return true;
    return false;
}

/* What the parser wanted, in words, from the exact set of tokens that
 * could come next and the token just before the error. */
static const char *expected_words(const yysymbol_kind_t *e, int n, const LexState *s)
{
    bool close_brace = has_char(e, n, '}');
    if (close_brace && has(e, n, YYSYMBOL_IDENT))
        return "a train setting";
    if (close_brace && has(e, n, YYSYMBOL_END))
        return "a newline, ';' or '}'";
    if (n == 1 && has_char(e, n, '='))
        return "'='";
    if (has(e, n, YYSYMBOL_NUM))
        return "a value";
    if (has_char(e, n, ')'))
        return "',' or ')'";
    if (has_char(e, n, ']'))
        return "',' or ']'";
    if (has(e, n, YYSYMBOL_YYEOF))
        return "a statement";
    switch (s->prev_token) {
    case MODEL: return "a model name";
    case CONST: return "a constant name";
    case FROM: return "a label";
    case TRAIN: return "'{' after 'train'";
    case ':': return "a layer name";
    default: break;
    }
    if (has(e, n, YYSYMBOL_END))
        return "a newline or ';' after the statement";
    return "a statement";
}

static void found_words(const LexState *s, StrBuf *b)
{
    if (s->text_len == 0)
        strbuf_printf(b, "end of file");
    else if (s->text_len == 1 && s->text[0] == '\n')
        strbuf_printf(b, "end of line");
    else
        strbuf_printf(b, "'%.*s'", (int)s->text_len, s->text);
}

/* A token after a complete statement or train entry. */
static void report_junk(yyscan_t scanner, Loc loc, SkipMode skip)
{
    LexState *s = yyget_extra(scanner);
    StrBuf found = {0};
    found_words(s, &found);
    diag_error(s->diag, loc, "expected %s, found %s",
               skip == SKIP_STATEMENT ? "a newline or ';' after the statement"
                                      : "a newline, ';' or '}'", found.data);
    strbuf_free(&found);
    s->skip = skip;
    s->skip_depth = s->token == '{' ? 1 : 0;
}


static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner)
{
    LexState *s = yyget_extra(scanner);
    int token = s->token;
    /* Skip the rest of the statement or entry, unless the bad token ends
     * it already (a '{' that is itself skipped opens a level). */
    if (s->in_train) {
        s->skip = (token == END || token == '}' || token == 0) ? SKIP_NONE : SKIP_TRAIN_ENTRY;
    } else {
        s->skip = (token == END || token == 0) ? SKIP_NONE : SKIP_STATEMENT;
        s->skip_depth = token == '{' ? 1 : 0;
    }
    if (diag_quiet_at_eof(s->diag) && s->text_len == 0)
        return 0;
    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
    if (n < 0)
        n = 0;
    StrBuf found = {0};
    found_words(s, &found);
    diag_error(s->diag, *yypcontext_location(ctx), "expected %s, found %s",
               expected_words(expected, n, s), found.data);
    strbuf_free(&found);
    return 0;
}

/* Only for bison's own failures: the parser stack is full. */
static void yyerror(YYLTYPE *loc, yyscan_t scanner, const char *msg)
{
    LexState *s = yyget_extra(scanner);
    (void)msg;
    diag_error(s->diag, *loc, "brackets or minus signs nested too deeply (the parser's limit is "
               "%d levels)", YYMAXDEPTH);
}

void parse_source(const char *source, size_t len, Ast *ast, Diag *diag)
{
    LexState state = {0};
    state.ast = ast;
    state.diag = diag;
    state.line = 1;
    state.col = 1;
    yyscan_t scanner;
    if (yylex_init_extra(&state, &scanner) != 0) {
        fprintf(stderr, "cnngen: error: out of memory\n");
        exit(2);
    }
    YY_BUFFER_STATE buffer = yy_scan_bytes(source, (int)len, scanner);
    yyparse(scanner);
    yy_delete_buffer(buffer, scanner);
    yylex_destroy(scanner);
    free(state.brackets);
}

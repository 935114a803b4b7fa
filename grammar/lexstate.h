/* lexstate.h - what the scanner and the parser share for one file.
 *
 * The scanner tracks brackets as Python does for its own source: a
 * newline inside (...) or [...] does not end a statement, inside {...}
 * (the train block) it separates entries.  It also remembers the last
 * two tokens, so that a syntax error can say what was expected in words
 * ("expected a model name"), and it carries out the skip that error
 * recovery asks for (to the end of the statement or the train entry). */
#ifndef CNNGEN_LEXSTATE_H
#define CNNGEN_LEXSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "ast.h"
#include "diag.h"

typedef enum {
    SKIP_NONE,
    SKIP_STATEMENT,     /* to a statement end outside any {...} */
    SKIP_TRAIN_ENTRY,   /* to a newline, ';' or '}' */
} SkipMode;

typedef struct {
    char kind;
    Loc loc;
} Bracket;

typedef struct LexState {
    Ast *ast;
    Diag *diag;
    int line, col;              /* where the next character is */
    Bracket *brackets;          /* open brackets, innermost last */
    int nbrackets, cap;
    int open_count[3];          /* how many of ( [ { are open */
    int eof_state;              /* 0: scanning; 1: final END sent; 2: EOF sent */
    /* The lookahead token and the one before it, for messages. */
    int token, prev_token;
    const char *text;           /* the lookahead's text ("" at the end of file) */
    size_t text_len;
    /* Error recovery. */
    SkipMode skip;
    int skip_depth;
    bool in_train;              /* inside train { ... } */
} LexState;

#endif

/* mock_model.c - the hand-written model of tests/helpers/mock_train.c for
 * the program-arguments fuzz target, its main() renamed mock_main. */
#define main mock_main
int mock_main(int argc, char **argv);
#include "../helpers/mock_train.c"

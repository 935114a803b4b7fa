/* A cnngen predictor on a board: reads samples from the file named on
 * the command line (one sample a line, its floats separated by spaces or
 * commas, as the generated program's predict reads them), predicts each
 * with model_predict and prints its outputs on one line (%.9g).  With
 * --stack it also prints how many bytes of stack the predict call used,
 * measured by painting the stack before the call; with --ticks, how many
 * SysTick ticks of the processor clock the calls took (under QEMU's
 * -icount, a count of instructions: bench/cortex_m_int8.py).  Without a
 * file it predicts one sample of zeros.
 *
 * The model comes from `cnngen MODEL.cnn --weights W.safetensors
 * --no-train --prefix model -o model.c`: its weights are constant data
 * (flash), its activations one static arena (.bss), and it calls nothing
 * but libm.  The same file builds on a host, for comparison. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

static float input[MODEL_INPUT_SIZE];

/* An int8 predictor (cnngen --quantize): the input quantized, then
 * model_predict_q in integers only; its outputs printed as integers (the
 * int8 values, or the float head's int32 sums), the same on any CPU. */
#ifdef MODEL_INT8
static int8_t qinput[MODEL_INPUT_SIZE];
#ifdef MODEL_OUTPUT_SUMS
static int32_t qoutput[MODEL_OUTPUT_SIZE];
#else
static int8_t qoutput[MODEL_OUTPUT_SIZE];
#endif

static void predict(void)
{
    model_quantize(input, qinput);
    model_predict_q(qinput, qoutput);
}

static void print_outputs(void)
{
    for (long i = 0; i < MODEL_OUTPUT_SIZE; i++)
        printf(i ? " %ld" : "%ld", (long)qoutput[i]);
    printf("\n");
}
#else
static float output[MODEL_OUTPUT_SIZE];

static void predict(void)
{
    model_predict(input, output);
}

static void print_outputs(void)
{
    for (long i = 0; i < MODEL_OUTPUT_SIZE; i++)
        printf(i ? " %.9g" : "%.9g", (double)output[i]);
    printf("\n");
}
#endif

/* The next sample from F into input; 0 at the end of the file. */
static int read_sample(FILE *f)
{
    for (long i = 0; i < MODEL_INPUT_SIZE; i++)
        if (fscanf(f, " %f%*[ ,]", &input[i]) != 1)
            return 0;
    return 1;
}

#if defined(__arm__) && !defined(__linux__)
extern uint32_t __stack_limit[];
#define STACK_PAINT 0xC5C5C5C5u

/* predict, and the bytes of stack it used: every word from the
 * stack's limit to the stack pointer is painted, and the deepest word
 * the call changed is found after it.  noinline: this frame stays above
 * the painted part. */
__attribute__((noinline)) static long predict_measuring_stack(void)
{
    volatile uint32_t *sp, *p; /* volatile: a memset call here would paint its own frame */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = __stack_limit; p < sp; p++)
        *p = STACK_PAINT;
    predict();
    p = __stack_limit;
    while (p < sp && *p == STACK_PAINT)
        p++;
    return (long)((volatile char *)sp - (volatile char *)p);
}

/* SysTick (ARMv7-M) counting the processor clock down from 2^24 - 1. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void ticks_start(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enabled, the processor clock, no interrupt */
}

static uint32_t ticks_now(void)
{
    return SYST_CVR;
}

/* predict's ticks (a call of at most 2^24 - 1: the counter wraps once
 * past them, unseen; bench/cortex_m_int8.py's largest, video3d's float
 * predictor on the M3, takes 10.7 million) */
static long predict_ticks(void)
{
    uint32_t before = ticks_now();
    predict();
    return (long)((before - ticks_now()) & 0xFFFFFFu);
}
#else
static long predict_measuring_stack(void)
{
    predict();
    return -1; /* not measured on a host */
}

static void ticks_start(void)
{
}

static long predict_ticks(void)
{
    predict();
    return -1;
}
#endif

int main(int argc, char **argv)
{
    int stack = argc > 1 && strcmp(argv[1], "--stack") == 0;
    int ticks = argc > 1 && strcmp(argv[1], "--ticks") == 0;
    const char *path = argc > 1 + stack + ticks ? argv[1 + stack + ticks] : NULL;
    FILE *f = path ? fopen(path, "r") : NULL;
    long deepest = 0, total = 0;
    if (path && !f) {
        fprintf(stderr, "predict: cannot read '%s'\n", path);
        return 1;
    }
    if (ticks)
        ticks_start();
    for (long n = 0; f ? read_sample(f) : n == 0; n++) {
        if (ticks) {
            total += predict_ticks();
        } else {
            long used = predict_measuring_stack();
            deepest = used > deepest ? used : deepest;
        }
        print_outputs();
    }
    if (stack)
        printf("stack: %ld bytes\n", deepest);
    if (ticks)
        printf("ticks: %ld\n", total);
    if (f)
        fclose(f);
    return 0;
}

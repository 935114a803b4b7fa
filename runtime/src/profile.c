/* profile.c - what cnngen --profile's code counts, and the table that
 * predict --profile and train --profile print: per layer its calls, time,
 * share, GFLOP/s and share of one core's FMA peak, measured here. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cnnrt.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PROFILE_X86 1
#else
#define PROFILE_X86 0
#endif

unsigned long long cnnrt_profile_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

unsigned long long cnnrt_profile_mark(cnnrt_profile_count *c, unsigned long long since)
{
    unsigned long long now = cnnrt_profile_clock();
    c->calls++;
    c->ns += now - since;
    return now;
}

/* ---- the peak ---------------------------------------------------------------
 * Twelve independent chains of acc = acc * a + b: more than an FMA unit's
 * latency times the units (4 x 2 on current x86 cores), so throughput is
 * the limit; written out, since -O2 keeps an array of vectors in memory.
 * Each trip is 12 FMAs of `lanes` floats: 24 * lanes FLOPs. */

enum { PEAK_TRIPS = 1000000, PEAK_REPEATS = 15 };

static volatile float peak_a = 0.9999999f, peak_b = 1e-7f, peak_sink;

#define TWELVE(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)

#if PROFILE_X86
#define DECLARE512(k) __m512 acc##k = _mm512_set1_ps((float)(k));
#define STEP512(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
#define SUM512(k) s = _mm512_add_ps(s, acc##k);
__attribute__((target("avx512f,fma"))) static void chains512(long trips)
{
    __m512 a = _mm512_set1_ps(peak_a), b = _mm512_set1_ps(peak_b), s = _mm512_setzero_ps();
    TWELVE(DECLARE512)
    for (long i = 0; i < trips; i++) {
        TWELVE(STEP512)
    }
    TWELVE(SUM512)
    peak_sink = _mm512_reduce_add_ps(s);
}

#define DECLARE256(k) __m256 acc##k = _mm256_set1_ps((float)(k));
#define STEP256(k) acc##k = _mm256_fmadd_ps(acc##k, a, b);
#define SUM256(k) s = _mm256_add_ps(s, acc##k);
__attribute__((target("avx2,fma"))) static void chains256(long trips)
{
    __m256 a = _mm256_set1_ps(peak_a), b = _mm256_set1_ps(peak_b), s = _mm256_setzero_ps();
    TWELVE(DECLARE256)
    for (long i = 0; i < trips; i++) {
        TWELVE(STEP256)
    }
    TWELVE(SUM256)
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    peak_sink = lanes[0] + lanes[7];
}
#endif

/* Elsewhere (and SSE2 on x86-64, which has no FMA): a multiply and an
 * add of 4 floats, two FLOPs a lane as an FMA's. */
#if defined(__GNUC__)
typedef float peak_vec4 __attribute__((vector_size(16)));
#define DECLARE128(k) peak_vec4 acc##k = {(float)(k), (float)(k), (float)(k), (float)(k)};
#define STEP128(k) acc##k = acc##k * a + b;
#define SUM128(k) s += acc##k;
static void chains128(long trips)
{
    float fa = peak_a, fb = peak_b;
    peak_vec4 a = {fa, fa, fa, fa}, b = {fb, fb, fb, fb}, s = {0, 0, 0, 0};
    TWELVE(DECLARE128)
    for (long i = 0; i < trips; i++) {
        TWELVE(STEP128)
    }
    TWELVE(SUM128)
    peak_sink = s[0] + s[3];
}
#define PEAK_LANES_128 4
#else
#define DECLARE1(k) float acc##k = (float)(k);
#define STEP1(k) acc##k = acc##k * a + b;
#define SUM1(k) s += acc##k;
static void chains128(long trips)
{
    float a = peak_a, b = peak_b, s = 0;
    TWELVE(DECLARE1)
    for (long i = 0; i < trips; i++) {
        TWELVE(STEP1)
    }
    TWELVE(SUM1)
    peak_sink = s;
}
#define PEAK_LANES_128 1
#endif

/* The best of a few runs (the first also brings the clock up). */
static double measure_gflops(void (*chains)(long), int lanes)
{
    double best = 0;
    for (int r = 0; r < PEAK_REPEATS; r++) {
        unsigned long long t0 = cnnrt_profile_clock();
        chains(PEAK_TRIPS);
        unsigned long long ns = cnnrt_profile_clock() - t0;
        double gflops = ns ? 24.0 * lanes * PEAK_TRIPS / (double)ns : 0;
        if (gflops > best)
            best = gflops;
    }
    return best;
}

double cnnrt_fma_peak(const char *isa, const char **what)
{
#if PROFILE_X86
    __builtin_cpu_init();
    int fma = __builtin_cpu_supports("fma");
    int has512 = fma && __builtin_cpu_supports("avx512f");
    int has256 = fma && __builtin_cpu_supports("avx2");
    int want512 = isa && strcmp(isa, "avx512") == 0, want256 = isa && strcmp(isa, "avx2") == 0;
    /* a clone of its own width; any other code, the widest the CPU has */
    if (has512 && (want512 || !want256)) {
        *what = "512-bit FMA";
        return measure_gflops(chains512, 16);
    }
    if (has256) {
        *what = "256-bit FMA";
        return measure_gflops(chains256, 8);
    }
#else
    (void)isa;
#endif
    *what = PEAK_LANES_128 == 4 ? "128-bit multiply-add" : "scalar multiply-add";
    return measure_gflops(chains128, PEAK_LANES_128);
}

/* ---- the table --------------------------------------------------------------- */

static void print_share(FILE *out, double part, double whole)
{
    if (whole > 0)
        fprintf(out, " %6.1f%%", 100.0 * part / whole);
    else
        fprintf(out, " %7s", "-");
}

/* GFLOP/s and the share of the peak, or dashes when there is no figure. */
static void print_rate(FILE *out, double flops, unsigned long long ns, double peak)
{
    if (flops <= 0 || ns == 0) {
        fprintf(out, " %9s %8s\n", "-", "-");
        return;
    }
    double gflops = flops / (double)ns;
    fprintf(out, " %9.2f", gflops);
    if (peak > 0)
        fprintf(out, " %7.1f%%\n", 100.0 * gflops / peak);
    else
        fprintf(out, " %8s\n", "-");
}

void cnnrt_profile_reset(const cnnrt_model *m)
{
    if (m->profile)
        memset(m->profile, 0, sizeof(cnnrt_profile_count) * (size_t)(m->nlayers + 2));
}

void cnnrt_profile_report(FILE *out, const cnnrt_model *m, int training)
{
    const cnnrt_profile_count *p = m->profile, *whole = &p[m->nlayers + 1];
    /* a training step is counted as three forward passes (forward, the
     * gradients of the inputs and of the weights), as make bench counts */
    double per_flop = training ? 3.0 : 1.0;
    const char *what = training ? "training steps" : "predict calls";
    const char *isa = m->isa ? m->isa() : "one version", *peak_what = "";
    double peak = cnnrt_fma_peak(m->isa ? isa : NULL, &peak_what);
    double total_ms = (double)whole->ns / 1e6, model_flops = 0;
    int width = 12;
    for (int i = 0; i < m->nlayers; i++) {
        int len = (int)strlen(m->layers[i].name);
        width = len > width ? len : width;
        model_flops += m->layers[i].flops;
    }
    fprintf(out, "profile: %llu %s (clone %s), %.3f ms in all\n", whole->calls, what, isa,
            total_ms);
    fprintf(out, "one core's peak: %.1f GFLOP/s (%s, measured now)\n", peak, peak_what);
    fprintf(out, "%-*s %-18s %5s %9s %11s %7s %9s %8s\n", width, "layer", "kind", "line", "calls",
            "total ms", "share", "GFLOP/s", "of peak");
    unsigned long long layers_ns = 0;
    for (int i = 0; i <= m->nlayers; i++) {
        const cnnrt_profile_count *c = &p[i];
        int loss = i == m->nlayers;
        if (loss && c->calls == 0)
            break; /* predict has no loss */
        const cnnrt_layer_info *l = loss ? NULL : &m->layers[i];
        if (loss)
            fprintf(out, "%-*s %-18s %5s", width, "(loss)", "", "");
        else
            fprintf(out, "%-*s %-18s %5d", width, l->name, l->kind, l->line);
        if (!loss && c->calls == 0 && l->fused_into != i) {
            if (l->fused_into >= 0)
                fprintf(out, " %9s  in %s's function\n", "-", m->layers[l->fused_into].name);
            else
                fprintf(out, " %9s  no code: it shares its input's memory\n", "-");
            continue;
        }
        layers_ns += c->ns;
        fprintf(out, " %9llu %11.4f", c->calls, (double)c->ns / 1e6);
        print_share(out, (double)c->ns, (double)whole->ns);
        print_rate(out, loss ? 0 : per_flop * l->flops * (double)whole->samples, c->ns, peak);
    }
    fprintf(out, "%-*s %-18s %5s %9s %11.4f", width, "(layers)", "", "", "",
            (double)layers_ns / 1e6);
    print_share(out, (double)layers_ns, (double)whole->ns);
    fprintf(out, "\n%-*s %-18s %5s %9llu %11.4f", width, "(whole calls)", "", "", whole->calls,
            total_ms);
    print_share(out, (double)whole->ns, (double)whole->ns);
    print_rate(out, per_flop * model_flops * (double)whole->samples, whole->ns, peak);
}

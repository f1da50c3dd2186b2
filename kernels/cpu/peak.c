/* The processor's fp32 peak as the benchmark states it: every thread runs independent fused multiply-adds of
 * the widest vectors the CPU path in use runs (AVX-512 or AVX2), twelve chains deep so that their latency is
 * hidden, for a tenth of a second; the rates of the threads added, the best of three such rounds (the first
 * often runs before the clock has risen). */
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include "cpu.h"

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* multiply-adds of `width` lanes done per second by this thread; the asm keeps the twelve chains in registers */
#define FMA_LOOP(type, set1, fmadd, width)                                                                    \
    do {                                                                                                       \
        type a0 = set1(0), a1 = set1(1), a2 = set1(2), a3 = set1(3), a4 = set1(4), a5 = set1(5), a6 = set1(6); \
        type a7 = set1(7), a8 = set1(8), a9 = set1(9), a10 = set1(10), a11 = set1(11);                          \
        type m = set1(1.0f), c = set1(0.0f);                                                                   \
        double t0 = seconds(), t = t0;                                                                         \
        long rounds = 0;                                                                                       \
        while (t - t0 < 0.1) {                                                                                 \
            for (int r = 0; r < 100000; r++) {                                                                 \
                a0 = fmadd(a0, m, c), a1 = fmadd(a1, m, c), a2 = fmadd(a2, m, c), a3 = fmadd(a3, m, c);         \
                a4 = fmadd(a4, m, c), a5 = fmadd(a5, m, c), a6 = fmadd(a6, m, c), a7 = fmadd(a7, m, c);         \
                a8 = fmadd(a8, m, c), a9 = fmadd(a9, m, c), a10 = fmadd(a10, m, c), a11 = fmadd(a11, m, c);     \
                __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6),      \
                                 "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));                           \
            }                                                                                                  \
            rounds += 100000;                                                                                  \
            t = seconds();                                                                                     \
        }                                                                                                      \
        return (double)rounds * 12 * (width) * 2 / (t - t0);                                                   \
    } while (0)

__attribute__((target("avx512f"))) static double flops_avx512(void)
{
    FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16);
}

static double flops_avx2(void) { FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8); }

double tsk_cpu_peak_flops(void)
{
    double best = 0;
    int wide = tsk_cpu_has_avx512();
    for (int round = 0; round < 3; round++) {
        double total = 0;
        #pragma omp parallel reduction(+ : total)
        total += wide ? flops_avx512() : flops_avx2();
        if (total > best) best = total;
    }
    return best;
}

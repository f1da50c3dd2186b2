/* A small AVX-512 matrix product for the shapes convolutions make, used instead of OpenBLAS where the
 * processor has AVX-512 (OpenBLAS's Haswell kernels use half the vector width; see tsk_cpu_gemm_strided).
 *
 *   C[M,N] = A[M,D] B[D,N]  (or C += when accumulate), B and C row-major,
 *   A read through strides: A(i, r) = a[i * a_rs + r * a_cs], so A or A^T serve alike.
 *
 * Two element kinds, one loop structure. fp32: A and B hold floats, D = K. bf16 pairs (gemm_bf16.c packs
 * them): each 32-bit element holds two bfloat16 of consecutive k (the lower k in the low half), D = K/2
 * rounded up, and vdpbf16ps adds both products of a pair to an fp32 lane, so one instruction does the
 * work of two fused multiply-adds.
 *
 * C is computed in 8x32 tiles: 16 zmm accumulators; per step r, two 16-lane loads of B's row r and
 * eight broadcasts of A's column r feed 16 multiply-adds. A tile's B panel (D x 32 elements) stays in
 * L2 while the tiles below it run. Edges are handled by smaller specializations and masked lanes.
 *
 * The file is compiled for AVX512-BF16 so that the bf16 tiles can be inlined; fp32 code gives the
 * compiler nothing to turn into bf16 instructions, and the bf16 kind is only called after
 * tsk_cpu_has_avx512_bf16(). */
#pragma GCC target("avx512f,avx512bf16")
#include <immintrin.h>
#include <stdint.h>

#include <stdio.h>
#include <string.h>

#include "cpu.h"

enum { MR = 8, NR = 32 };

__attribute__((always_inline)) static inline __m512 multiply_add(int bf16, const void *a, __m512i b, __m512 acc)
{
    if (bf16) return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32(*(const int32_t *)a), (__m512bh)b);
    return _mm512_fmadd_ps(_mm512_set1_ps(*(const float *)a), _mm512_castsi512_ps(b), acc);
}

__attribute__((always_inline)) static inline void tile(int bf16, int mr, int nv, __mmask16 m0, __mmask16 m1, int depth,
                                                       const uint32_t *a, int64_t a_rs, int64_t a_cs, const uint32_t *b,
                                                       int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    __m512 acc[MR][2];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int r = 0; r < depth; r++) {
        const uint32_t *br = b + (int64_t)r * ldb;
        __m512i b0 = _mm512_maskz_loadu_epi32(m0, br);
        __m512i b1 = nv > 1 ? _mm512_maskz_loadu_epi32(m1, br + 16) : _mm512_setzero_si512();
        const uint32_t *ar = a + (int64_t)r * a_cs;
        #pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                acc[i][0] = multiply_add(bf16, ar + i * a_rs, b0, acc[i][0]);
                if (nv > 1) acc[i][1] = multiply_add(bf16, ar + i * a_rs, b1, acc[i][1]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            float *ci = c + (int64_t)i * ldc;
            if (accumulate) {
                acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
                if (nv > 1) acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
            }
            _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
            if (nv > 1) _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
        }
    }
}

/* one specialization per (kind, rows, vectors), so the loops above unroll with constant bounds */
#define TILE_ARGS m0, m1, depth, a, a_rs, a_cs, b, ldb, c, ldc, accumulate
static void tile_dispatch(int bf16, int mr, int nv, __mmask16 m0, __mmask16 m1, int depth, const uint32_t *a,
                          int64_t a_rs, int64_t a_cs, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                          int accumulate)
{
    switch (bf16 * 16 + mr * 2 + nv - 3) {
    case 0: tile(0, 1, 1, TILE_ARGS); break;
    case 1: tile(0, 1, 2, TILE_ARGS); break;
    case 2: tile(0, 2, 1, TILE_ARGS); break;
    case 3: tile(0, 2, 2, TILE_ARGS); break;
    case 4: tile(0, 3, 1, TILE_ARGS); break;
    case 5: tile(0, 3, 2, TILE_ARGS); break;
    case 6: tile(0, 4, 1, TILE_ARGS); break;
    case 7: tile(0, 4, 2, TILE_ARGS); break;
    case 8: tile(0, 5, 1, TILE_ARGS); break;
    case 9: tile(0, 5, 2, TILE_ARGS); break;
    case 10: tile(0, 6, 1, TILE_ARGS); break;
    case 11: tile(0, 6, 2, TILE_ARGS); break;
    case 12: tile(0, 7, 1, TILE_ARGS); break;
    case 13: tile(0, 7, 2, TILE_ARGS); break;
    case 14: tile(0, 8, 1, TILE_ARGS); break;
    case 15: tile(0, 8, 2, TILE_ARGS); break;
    case 16: tile(1, 1, 1, TILE_ARGS); break;
    case 17: tile(1, 1, 2, TILE_ARGS); break;
    case 18: tile(1, 2, 1, TILE_ARGS); break;
    case 19: tile(1, 2, 2, TILE_ARGS); break;
    case 20: tile(1, 3, 1, TILE_ARGS); break;
    case 21: tile(1, 3, 2, TILE_ARGS); break;
    case 22: tile(1, 4, 1, TILE_ARGS); break;
    case 23: tile(1, 4, 2, TILE_ARGS); break;
    case 24: tile(1, 5, 1, TILE_ARGS); break;
    case 25: tile(1, 5, 2, TILE_ARGS); break;
    case 26: tile(1, 6, 1, TILE_ARGS); break;
    case 27: tile(1, 6, 2, TILE_ARGS); break;
    case 28: tile(1, 7, 1, TILE_ARGS); break;
    case 29: tile(1, 7, 2, TILE_ARGS); break;
    case 30: tile(1, 8, 1, TILE_ARGS); break;
    default: tile(1, 8, 2, TILE_ARGS); break;
    }
}
#undef TILE_ARGS

void tsk_cpu_gemm_avx512(int bf16, int m, int n, int depth, const void *a, int64_t a_rs, int64_t a_cs, const void *b,
                         int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    for (int j = 0; j < n; j += NR) {
        int cols = n - j < NR ? n - j : NR;
        __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
        __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
        int nv = cols > 16 ? 2 : 1;
        for (int i = 0; i < m; i += MR) {
            int rows = m - i < MR ? m - i : MR;
            tile_dispatch(bf16, rows, nv, m0, m1, depth, (const uint32_t *)a + (int64_t)i * a_rs, a_rs, a_cs,
                          (const uint32_t *)b + j, ldb, c + (int64_t)i * ldc + j, ldc, accumulate);
        }
    }
}

/* The matrix-product path, chosen by the processor or forced by tsk_cpu_select_path (TSHOST_CPU), so that every
 * path this processor can run is tested on it: 0 avx2, 1 avx512, 2 avx512bf16, 3 amx (the kernels of each below).
 * -1: not decided yet. */
static int path = -1;
static const struct {
    const char *name, *kernels;
} paths[] = {{"avx2", "tshost's AVX2 kernel for convolutions, OpenBLAS for linear layers, bf16 by the fp32 kernels"},
             {"avx512", "tshost's AVX-512 kernel for convolutions, OpenBLAS for linear layers, bf16 by the fp32 kernels"},
             {"avx512bf16", "tshost's AVX-512 kernel for convolutions, OpenBLAS for linear layers, bf16 pairs by vdpbf16ps"},
             {"amx", "tshost's AVX-512 kernel for convolutions, OpenBLAS for linear layers, bf16 pairs by AMX tiles"}};
enum { PATHS = sizeof paths / sizeof paths[0] };

static int best_path(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return 0;
    if (!__builtin_cpu_supports("avx512bf16")) return 1;
    return tsk_cpu_amx_usable() ? 3 : 2;
}

static int current_path(void)
{
    if (path < 0) path = best_path();
    return path;
}

const char *tsk_cpu_select_path(const char *name)
{
    static char error[256];
    int best = best_path(), want = -1;
    if (!name || !*name) {
        path = best;
        return NULL;
    }
    if (!strcmp(name, "generic")) want = 0;   /* the build needs AVX2 (x86-64-v3): generic is the avx2 path */
    for (int i = 0; i < PATHS; i++)
        if (!strcmp(name, paths[i].name)) want = i;
    if (want < 0) {
        snprintf(error, sizeof error, "unknown CPU path '%s' (generic, avx2, avx512, avx512bf16, amx)", name);
        return error;
    }
    if (want > best) {
        snprintf(error, sizeof error, "the %s path needs %s, which this processor lacks (it runs up to %s)", name,
                 want == 3   ? "AMX-BF16 and the operating system's leave to use its tiles"
                 : want == 2 ? "AVX512-BF16"
                             : "AVX-512",
                 paths[best].name);
        return error;
    }
    path = want;
    return NULL;
}

/* The precision the CPU computes in: bf16 products only with AVX512-BF16; without it bfloat16 pairs would be
 * multiplied by a plain loop, slower than fp32, so the fp32 kernels run instead and a notice says so once. Called
 * on the host's thread, before a kernel's parallel region. */
static const char *pending_notice;

int tsk_cpu_math(int math)
{
    static int told;
    if (math != TSK_MATH_BF16 || tsk_cpu_has_avx512_bf16()) return math;
    if (!told) {
        told = 1;
        pending_notice = "precision bf16: this processor (or the forced CPU path) has no AVX512-BF16, so the fp32 kernels "
                         "run, faster than bfloat16 products would be without it (said once)";
    }
    return TSK_MATH_FP32;
}

const char *tsk_cpu_notice(void)
{
    const char *n = pending_notice;
    pending_notice = NULL;
    return n;
}

const char *tsk_cpu_path(void) { return paths[current_path()].name; }
const char *tsk_cpu_path_kernels(void) { return paths[current_path()].kernels; }
int tsk_cpu_has_avx512(void) { return current_path() >= 1; }
int tsk_cpu_has_avx512_bf16(void) { return current_path() >= 2; }
int tsk_cpu_has_amx(void) { return current_path() == 3; }

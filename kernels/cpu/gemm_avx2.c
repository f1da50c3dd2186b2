/* The AVX2+FMA matrix product for the shapes convolutions make (processors without AVX-512: AMD Zen 2 and 3,
 * most Intel desktops), with gemm_avx512.c's contract in fp32:
 *
 *   C[M,N] = A[M,K] B[K,N]  (or C += when accumulate), B and C row-major,
 *   A read through strides: A(i, r) = a[i * a_rs + r * a_cs], so A or A^T serve alike.
 *
 * C is computed in 6x16 tiles: 12 ymm accumulators; per step r, two 8-lane loads of B's row r and six
 * broadcasts of A's column r feed 12 multiply-adds (of the 16 ymm registers, 12 accumulate, 2 hold B, 1 the
 * broadcast). Edges are handled by smaller specializations and masked loads and stores (only there: AMD's masked
 * stores are slow). OpenBLAS, which this
 * replaces on these processors, pays a call overhead and packing that the small products of the Winograd
 * blocks and the per-image convolutions cannot amortize. */
#include <immintrin.h>
#include <stdint.h>

#include "cpu.h"

enum { MR = 6, NR = 16 };

static inline __m256i first_lanes8(int count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 8 floats of p: all, or the lanes of m when masked */
__attribute__((always_inline)) static inline __m256 load(int masked, const float *p, __m256i m)
{
    return masked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}
__attribute__((always_inline)) static inline void store(int masked, float *p, __m256i m, __m256 v)
{
    if (masked) _mm256_maskstore_ps(p, m, v);
    else _mm256_storeu_ps(p, v);
}

__attribute__((always_inline)) static inline void tile(int mr, int nv, int masked, __m256i m0, __m256i m1, int k, const float *a,
                                                       int64_t a_rs, int64_t a_cs, const float *b, int64_t ldb, float *c,
                                                       int64_t ldc, int accumulate)
{
    __m256 acc[MR][2];
    #pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int r = 0; r < k; r++) {
        const float *br = b + (int64_t)r * ldb;
        __m256 b0 = load(masked, br, m0);
        __m256 b1 = nv > 1 ? load(masked, br + 8, m1) : _mm256_setzero_ps();
        const float *ar = a + (int64_t)r * a_cs;
        #pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m256 ai = _mm256_broadcast_ss(ar + i * a_rs);
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                if (nv > 1) acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    }
    #pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            float *ci = c + (int64_t)i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], load(masked, ci, m0));
                if (nv > 1) acc[i][1] = _mm256_add_ps(acc[i][1], load(masked, ci + 8, m1));
            }
            store(masked, ci, m0, acc[i][0]);
            if (nv > 1) store(masked, ci + 8, m1, acc[i][1]);
        }
    }
}

/* one specialization per (rows, vectors, masked), so the loops above unroll with constant bounds; full tiles
 * (16 columns) unmasked */
#define TILE_ARGS m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate
static void tile_dispatch(int mr, int nv, int masked, __m256i m0, __m256i m1, int k, const float *a, int64_t a_rs,
                          int64_t a_cs, const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    if (!masked) {
        switch (mr) {
        case 1: tile(1, 2, 0, TILE_ARGS); break;
        case 2: tile(2, 2, 0, TILE_ARGS); break;
        case 3: tile(3, 2, 0, TILE_ARGS); break;
        case 4: tile(4, 2, 0, TILE_ARGS); break;
        case 5: tile(5, 2, 0, TILE_ARGS); break;
        default: tile(6, 2, 0, TILE_ARGS); break;
        }
        return;
    }
    switch (mr * 2 + nv - 3) {
    case 0: tile(1, 1, 1, TILE_ARGS); break;
    case 1: tile(1, 2, 1, TILE_ARGS); break;
    case 2: tile(2, 1, 1, TILE_ARGS); break;
    case 3: tile(2, 2, 1, TILE_ARGS); break;
    case 4: tile(3, 1, 1, TILE_ARGS); break;
    case 5: tile(3, 2, 1, TILE_ARGS); break;
    case 6: tile(4, 1, 1, TILE_ARGS); break;
    case 7: tile(4, 2, 1, TILE_ARGS); break;
    case 8: tile(5, 1, 1, TILE_ARGS); break;
    case 9: tile(5, 2, 1, TILE_ARGS); break;
    case 10: tile(6, 1, 1, TILE_ARGS); break;
    default: tile(6, 2, 1, TILE_ARGS); break;
    }
}
#undef TILE_ARGS

void tsk_cpu_gemm_avx2(int m, int n, int k, const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t ldb,
                       float *c, int64_t ldc, int accumulate)
{
    for (int j = 0; j < n; j += NR) {
        int cols = n - j < NR ? n - j : NR;
        __m256i m0 = first_lanes8(cols), m1 = first_lanes8(cols - 8);
        int nv = cols > 8 ? 2 : 1;
        for (int i = 0; i < m; i += MR) {
            int rows = m - i < MR ? m - i : MR;
            tile_dispatch(rows, nv, cols < NR, m0, m1, k, a + (int64_t)i * a_rs, a_rs, a_cs, b + j, ldb, c + (int64_t)i * ldc + j, ldc,
                          accumulate);
        }
    }
}

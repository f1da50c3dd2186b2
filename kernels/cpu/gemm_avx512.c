/* A small AVX-512 sgemm for the shapes convolutions make, used instead of OpenBLAS where the processor
 * has AVX-512 (OpenBLAS's Haswell kernels use half the vector width; see tsk_cpu_gemm_strided).
 *
 *   C[M,N] = A[M,K] B[K,N]  (or C += when accumulate), B and C row-major,
 *   A read through strides: A(i, r) = a[i * a_rs + r * a_cs], so A or A^T serve alike.
 *
 * C is computed in 8x32 tiles: 16 zmm accumulators; per step r, two 16-float loads of B's row r and
 * eight broadcasts of A's column r feed 16 fused multiply-adds. A tile's B panel (K x 32 floats) stays in
 * L2 while the tiles below it run. Edges are handled by smaller specializations and masked lanes. */
#include <immintrin.h>
#include <stdint.h>

#include "cpu.h"

enum { MR = 8, NR = 32 };

__attribute__((target("avx512f"), always_inline)) static inline void tile(int mr, int nv, __mmask16 m0, __mmask16 m1,
                                                                          int k, const float *a, int64_t a_rs,
                                                                          int64_t a_cs, const float *b, int64_t ldb,
                                                                          float *c, int64_t ldc, int accumulate)
{
    __m512 acc[MR][2];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int r = 0; r < k; r++) {
        const float *br = b + (int64_t)r * ldb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, br);
        __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, br + 16) : _mm512_setzero_ps();
        const float *ar = a + (int64_t)r * a_cs;
        #pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m512 ai = _mm512_set1_ps(ar[i * a_rs]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                if (nv > 1) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
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

/* one specialization per (rows, vectors), so the loops above unroll with constant bounds */
__attribute__((target("avx512f"))) static void tile_dispatch(int mr, int nv, __mmask16 m0, __mmask16 m1, int k,
                                                             const float *a, int64_t a_rs, int64_t a_cs,
                                                             const float *b, int64_t ldb, float *c, int64_t ldc,
                                                             int accumulate)
{
    switch (mr * 2 + nv - 1) {
    case 2: tile(1, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 3: tile(1, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 4: tile(2, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 5: tile(2, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 6: tile(3, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 7: tile(3, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 8: tile(4, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 9: tile(4, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 10: tile(5, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 11: tile(5, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 12: tile(6, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 13: tile(6, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 14: tile(7, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 15: tile(7, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    case 16: tile(8, 1, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    default: tile(8, 2, m0, m1, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate); break;
    }
}

__attribute__((target("avx512f"))) void tsk_cpu_gemm_avx512(int m, int n, int k, const float *a, int64_t a_rs,
                                                            int64_t a_cs, const float *b, int64_t ldb, float *c,
                                                            int64_t ldc, int accumulate)
{
    for (int j = 0; j < n; j += NR) {
        int cols = n - j < NR ? n - j : NR;
        __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
        __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
        int nv = cols > 16 ? 2 : 1;
        for (int i = 0; i < m; i += MR) {
            int rows = m - i < MR ? m - i : MR;
            tile_dispatch(rows, nv, m0, m1, k, a + (int64_t)i * a_rs, a_rs, a_cs, b + j, ldb, c + (int64_t)i * ldc + j,
                          ldc, accumulate);
        }
    }
}

int tsk_cpu_has_avx512(void)
{
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return known;
}

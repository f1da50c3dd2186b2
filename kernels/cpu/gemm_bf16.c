/* Matrix products in the bf16 compute precision (mixed precision): the operands are rounded to
 * bfloat16 (tsk_bf16_bits: nearest, ties to even), the products summed in fp32, C stays fp32 (oneDNN
 * calls this fpmath_mode bf16; cuBLAS, CUBLAS_COMPUTE_32F_FAST_16BF). bf16 keeps fp32's exponent range, so
 * gradients neither overflow nor underflow where fp32 would not, and no loss scaling is needed.
 *
 *   C[M,N] (=, or += when accumulate) (alpha A)[M,K] B[K,N],
 *   A(i, r) = a[i*a_rs + r*a_cs], B(r, j) = b[r*b_rs + j*b_cs]   (alpha is applied before rounding)
 *
 * With AVX512-BF16 the operands are packed as pairs of consecutive k for vdpbf16ps (gemm_avx512.c):
 *   ap[i][q] = (A(i, 2q), A(i, 2q+1)),  bp[q][j] = (B(2q, j), B(2q+1, j)),  q < K2 = ceil(K/2),
 * the low half holding the lower k and an odd K's last pair padded with zero (contiguous rows are packed
 * 16 floats at a time, strided ones one by one). Without it, the rounded
 * operands go through the fp32 kernels: the same products, summed in another order. */
#include <immintrin.h>
#include <stdlib.h>

#include "cpu.h"
#include "../pointwise.h"

/* tsk_bf16_bits on 16 floats at once: the bits in the low half of each 32-bit lane */
__attribute__((target("avx512f"))) static inline __m512i bf16_bits16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

static __mmask16 first(int count) { return count >= 16 ? 0xFFFF : (__mmask16)((1u << count) - 1); }

/* A with contiguous rows (a_cs = 1): the pairs are the row's bf16 in order, two to a 32-bit element */
__attribute__((target("avx512f"))) static void pack_a_rows(int m, int k, float alpha, const float *a, int64_t a_rs,
                                                           uint32_t *ap)
{
    int k2 = (k + 1) / 2;
    __m512 scale = _mm512_set1_ps(alpha);
    for (int i = 0; i < m; i++) {
        uint16_t *out = (uint16_t *)(ap + (int64_t)i * k2);
        for (int r = 0; r < k; r += 16) {
            __mmask16 mask = first(k - r);
            __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, a + i * a_rs + r), scale);
            _mm512_mask_cvtepi32_storeu_epi16(out + r, mask, bf16_bits16(x));
        }
        if (k % 2) out[k] = 0;
    }
}

/* B with contiguous rows (b_cs = 1) */
__attribute__((target("avx512f"))) static void pack_b_rows(int k, int n, const float *b, int64_t b_rs, uint32_t *bp)
{
    for (int q = 0; q < (k + 1) / 2; q++) {
        const float *lo = b + 2 * q * b_rs, *hi = 2 * q + 1 < k ? lo + b_rs : NULL;
        uint32_t *row = bp + (int64_t)q * n;
        for (int j = 0; j < n; j += 16) {
            __mmask16 mask = first(n - j);
            __m512i pair = bf16_bits16(_mm512_maskz_loadu_ps(mask, lo + j));
            if (hi) pair = _mm512_or_si512(pair, _mm512_slli_epi32(bf16_bits16(_mm512_maskz_loadu_ps(mask, hi + j)), 16));
            _mm512_mask_storeu_epi32(row + j, mask, pair);
        }
    }
}

size_t tsk_cpu_gemm_bf16_scratch(int m, int n, int k)
{
    return sizeof(float) * ((size_t)m * (size_t)(k + 1) + (size_t)(k + 1) * (size_t)n);
}

static uint32_t pair(const float *lo, const float *hi, float alpha)
{
    return tsk_bf16_bits(alpha * *lo) | (hi ? tsk_bf16_bits(alpha * *hi) << 16 : 0u);
}

static void pack_a(int m, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, uint32_t *ap)
{
    int k2 = (k + 1) / 2;
    for (int i = 0; i < m; i++)
        for (int q = 0; q < k2; q++) {
            const float *lo = a + i * a_rs + 2 * q * a_cs;
            ap[(int64_t)i * k2 + q] = pair(lo, 2 * q + 1 < k ? lo + a_cs : NULL, alpha);
        }
}

static void pack_b(int k, int n, const float *b, int64_t b_rs, int64_t b_cs, uint32_t *bp)
{
    for (int q = 0; q < (k + 1) / 2; q++) {
        const float *lo = b + 2 * q * b_rs, *hi = 2 * q + 1 < k ? lo + b_rs : NULL;
        uint32_t *row = bp + (int64_t)q * n;
        for (int j = 0; j < n; j++) row[j] = pair(lo + j * b_cs, hi ? hi + j * b_cs : NULL, 1.0f);
    }
}

void tsk_cpu_gemm_bf16(int m, int n, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                       int64_t b_rs, int64_t b_cs, float *c, int64_t ldc, int accumulate, void *scratch)
{
    if (m <= 0 || n <= 0) return;
    if (tsk_cpu_has_avx512_bf16()) {
        int k2 = (k + 1) / 2;
        uint32_t *ap = scratch, *bp = ap + (int64_t)m * k2;
        if (a_cs == 1) pack_a_rows(m, k, alpha, a, a_rs, ap);
        else pack_a(m, k, alpha, a, a_rs, a_cs, ap);
        if (b_cs == 1) pack_b_rows(k, n, b, b_rs, bp);
        else pack_b(k, n, b, b_rs, b_cs, bp);
        tsk_cpu_gemm_avx512(1, m, n, k2, ap, k2, 1, bp, n, c, ldc, accumulate);
        return;
    }
    float *ar = scratch, *br = ar + (int64_t)m * k;
    for (int i = 0; i < m; i++)
        for (int r = 0; r < k; r++) ar[(int64_t)i * k + r] = tsk_bf16_round(alpha * a[i * a_rs + r * a_cs]);
    for (int r = 0; r < k; r++)
        for (int j = 0; j < n; j++) br[(int64_t)r * n + j] = tsk_bf16_round(b[r * b_rs + j * b_cs]);
    tsk_cpu_gemm_strided(m, n, k, ar, k, 1, br, n, c, ldc, accumulate);
}

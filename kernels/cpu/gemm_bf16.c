/* Matrix products in the bf16 compute precision (mixed precision): the operands are rounded to
 * bfloat16 (tsk_bf16_bits: nearest, ties to even), the products summed in fp32, C stays fp32 (oneDNN
 * calls this fpmath_mode bf16; cuBLAS, CUBLAS_COMPUTE_32F_FAST_16BF). bf16 keeps fp32's exponent range, so
 * gradients neither overflow nor underflow where fp32 would not, and no loss scaling is needed.
 *
 * The operands are packed as pairs of consecutive k, the form vdpbf16ps multiplies (gemm_avx512.c):
 *   A [M,K] -> ap[i][q] = (A(i, 2q), A(i, 2q+1)),   B [K,N] -> bp[q][j] = (B(2q, j), B(2q+1, j)),
 * q < K2 = ceil(K/2), each pair one 32-bit element with the lower k in the low half, an odd K's last pair
 * padded with zero. Contiguous rows are packed 16 floats at a time, strided ones one by one. Callers
 * that reuse an operand (a convolution's weights for every image) pack it once.
 * The product of packed operands runs on AMX where the processor has it and A's pairs are contiguous
 * (gemm_amx.c), else on the AVX512-BF16 kernel; a processor without AVX512-BF16 runs bf16 layers in fp32
 * (tsk_cpu_math), so nothing here is called there. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "bf16_avx512.h"
#include "cpu.h"
#include "../pointwise.h"

/* A with contiguous rows (a_cs = 1): the pairs are the row's bf16 in order, two to a 32-bit element */
__attribute__((target("avx512f"))) static void pack_a_rows(int m, int k, float alpha, const float *a, int64_t a_rs,
                                                           uint32_t *ap)
{
    int k2 = (k + 1) / 2;
    __m512 scale = _mm512_set1_ps(alpha);
    for (int i = 0; i < m; i++) {
        uint16_t *out = (uint16_t *)(ap + (int64_t)i * k2);
        for (int r = 0; r < k; r += 16) {
            __mmask16 mask = first_lanes(k - r);
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
            __mmask16 mask = first_lanes(n - j);
            __m512i pair = bf16_bits16(_mm512_maskz_loadu_ps(mask, lo + j));
            if (hi) pair = _mm512_or_si512(pair, _mm512_slli_epi32(bf16_bits16(_mm512_maskz_loadu_ps(mask, hi + j)), 16));
            _mm512_mask_storeu_epi32(row + j, mask, pair);
        }
    }
}

static uint32_t pair(const float *lo, const float *hi, float alpha)
{
    return tsk_bf16_bits(alpha * *lo) | (hi ? tsk_bf16_bits(alpha * *hi) << 16 : 0u);
}

void tsk_cpu_bf16_pack_a(int m, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, uint32_t *ap)
{
    if (a_cs == 1 && tsk_cpu_has_avx512()) {
        pack_a_rows(m, k, alpha, a, a_rs, ap);
        return;
    }
    int k2 = (k + 1) / 2;
    for (int i = 0; i < m; i++)
        for (int q = 0; q < k2; q++) {
            const float *lo = a + i * a_rs + 2 * q * a_cs;
            ap[(int64_t)i * k2 + q] = pair(lo, 2 * q + 1 < k ? lo + a_cs : NULL, alpha);
        }
}

void tsk_cpu_bf16_pack_b(int k, int n, const float *b, int64_t b_rs, int64_t b_cs, uint32_t *bp)
{
    if (b_cs == 1 && tsk_cpu_has_avx512()) {
        pack_b_rows(k, n, b, b_rs, bp);
        return;
    }
    for (int q = 0; q < (k + 1) / 2; q++) {
        const float *lo = b + 2 * q * b_rs, *hi = 2 * q + 1 < k ? lo + b_rs : NULL;
        uint32_t *row = bp + (int64_t)q * n;
        for (int j = 0; j < n; j++) row[j] = pair(lo + j * b_cs, hi ? hi + j * b_cs : NULL, 1.0f);
    }
}

void tsk_cpu_gemm_pairs(int m, int n, int k2, const uint32_t *a, int64_t a_rs, int64_t a_cs, const uint32_t *b,
                        int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    if (m <= 0 || n <= 0) return;
    if (a_cs == 1 && tsk_cpu_has_amx()) tsk_cpu_gemm_amx(m, n, k2, a, a_rs, b, ldb, c, ldc, accumulate);
    else tsk_cpu_gemm_avx512(1, m, n, k2, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
}

size_t tsk_cpu_gemm_bf16_scratch(int m, int n, int k)
{
    return sizeof(uint32_t) * ((size_t)m * (size_t)((k + 1) / 2) + (size_t)((k + 1) / 2) * (size_t)n);
}

void tsk_cpu_gemm_bf16(int m, int n, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                       int64_t b_rs, int64_t b_cs, float *c, int64_t ldc, int accumulate, void *scratch)
{
    int k2 = (k + 1) / 2;
    uint32_t *ap = scratch, *bp = ap + (int64_t)m * k2;
    tsk_cpu_bf16_pack_a(m, k, alpha, a, a_rs, a_cs, ap);
    tsk_cpu_bf16_pack_b(k, n, b, b_rs, b_cs, bp);
    tsk_cpu_gemm_pairs(m, n, k2, ap, k2, 1, bp, n, c, ldc, accumulate);
}

/* Matrix products over OpenBLAS's sgemm, or over the bf16 products of gemm_bf16.c in that precision (the
 * convolutions' own products go through tsk_cpu_gemm_strided, to our AVX-512 or AVX2 kernel).
 * The library itself runs on one thread (ts_set_threads sets that); tsk_cpu_gemm splits C into one block
 * per OpenMP thread, so each element of C is computed by exactly one thread in a fixed order and results
 * do not depend on scheduling. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu.h"

void tsk_cpu_gemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

void tsk_cpu_gemm_strided(int m, int n, int k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                          int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    if (tsk_cpu_has_avx512()) tsk_cpu_gemm_avx512(0, m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
    else tsk_cpu_gemm_avx2(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
}

/* one thread's block of C in the precision math; bf16 reads op(A) and op(B) through strides and takes
 * beta as "C +=" after scaling C by it (alpha goes into A before rounding) */
static void gemm_block(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc)
{
    if (math != TSK_MATH_BF16) {
        tsk_cpu_gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (m <= 0 || n <= 0) return;
    if (beta != 0.0f && beta != 1.0f)
        for (int i = 0; i < m; i++) tsk_cpu_scale(n, beta, c + (int64_t)i * ldc, c + (int64_t)i * ldc);
    void *scratch = tsk_cpu_scratch(tsk_cpu_gemm_bf16_scratch(m, n, k));
    if (!scratch) return;   /* recorded: the call reports it */
    tsk_cpu_gemm_bf16(m, n, k, alpha, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb, trans_b ? ldb : 1, c,
                      ldc, beta != 0.0f, scratch);
    tsk_cpu_scratch_free(scratch);
}

void tsk_cpu_gemm(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc)
{
    math = tsk_cpu_math(math);
    int threads = omp_get_max_threads();
    if (threads <= 1 || (double)m * n * k < 1e6) {
        gemm_block(math, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    int by_rows = m >= n;
    #pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int total = by_rows ? m : n;
        /* blocks rounded to 16 so each thread's part stays aligned with the BLAS kernel's tiles */
        int chunk = ((total + nt - 1) / nt + 15) / 16 * 16;
        int lo = t * chunk, hi = lo + chunk < total ? lo + chunk : total;
        if (lo < hi) {
            if (by_rows) {
                const float *ap = trans_a ? a + lo : a + (int64_t)lo * lda;
                gemm_block(math, trans_a, trans_b, hi - lo, n, k, alpha, ap, lda, b, ldb, beta, c + (int64_t)lo * ldc,
                           ldc);
            } else {
                const float *bp = trans_b ? b + (int64_t)lo * ldb : b + lo;
                gemm_block(math, trans_a, trans_b, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
            }
        }
    }
}

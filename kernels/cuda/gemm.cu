// gemm.cu — row-major matrix products through cuBLAS (column-major): C = op(A) op(B) in row-major is
// C^T = op(B)^T op(A)^T in column-major, so the operands are passed swapped, each with its own leading dim.
#include "common.cuh"

void tsk_cuda_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    tsk_blas_ok(cublasSgemm(tsk_ctx.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
                            k, &alpha, b, ldb, a, lda, &beta, c, ldc),
                "cublasSgemm");
}

// gemm.cu — row-major matrix products through cuBLAS (column-major): C = op(A) op(B) in row-major is
// C^T = op(B)^T op(A)^T in column-major, so the operands are passed swapped, each with its own leading dim.
#include "common.cuh"

// In the bf16 precision cuBLAS rounds the fp32 operands to bfloat16 and sums in fp32 on the tensor cores
// (CUBLAS_COMPUTE_32F_FAST_16BF), the products kernels/cpu/gemm_bf16.c computes.
void tsk_cuda_gemm(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    // k = 0 (C = beta C) with a transposed operand brings a leading dimension of 0, which cuBLAS refuses: any
    // value >= 1 serves, no element being read
    if (k == 0) lda = lda < 1 ? 1 : lda, ldb = ldb < 1 ? 1 : ldb;
    cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (math == TSK_MATH_BF16) {
        tsk_blas_ok(cublasGemmEx(tsk_ctx.blas, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c,
                                 CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT),
                    "cublasGemmEx (bf16)");
        return;
    }
    tsk_blas_ok(cublasSgemm(tsk_ctx.blas, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc), "cublasSgemm");
}

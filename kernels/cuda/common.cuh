// common.cuh — what the CUDA kernel files share: the one context (stream, library handles, workspace,
// staging), the first-error record the host reads through the backend table, and launch sizes.
#ifndef TSK_CUDA_COMMON_CUH
#define TSK_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

#include "cuda.h"
#include "../pointwise.h"

struct tsk_cuda_context {
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    void *workspace;               // grown on demand: cuDNN workspaces and reduction scratch
    size_t workspace_bytes;
    void *staging[2];              // pinned host buffers for uploads, used in turn
    size_t staging_bytes[2];
    cudaEvent_t staging_free[2];   // recorded after the copy out of each buffer
    int next_staging;
    int deterministic;
    int tf32;
    int channels_last;             // bf16 convolutions staged as NHWC (conv2d.cu)
    char name[320];
};
extern tsk_cuda_context tsk_ctx;

// Records the first failure (kept until the host reads it); each returns true when all is well.
bool tsk_cuda_ok(cudaError_t e, const char *what);
bool tsk_blas_ok(cublasStatus_t s, const char *what);
bool tsk_dnn_ok(cudnnStatus_t s, const char *what);
void tsk_cuda_fail(int out_of_memory, const char *fmt, ...);
const char *tsk_cuda_error(void);
int tsk_cuda_error_is_oom(void);
// after a launch: a bad configuration shows here, a fault only at the next synchronization
bool tsk_launch_ok(const char *what);

// the kernels behind the backend table (backend.cu), with kernels.h's signatures
void tsk_cuda_gemm(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                   int ldb, float beta, float *c, int ldc);
void tsk_cuda_fill_rows(int64_t n, int64_t c, const float *v, float *y);
void tsk_cuda_axpy(int64_t n, float alpha, const float *x, float *y);
void tsk_cuda_add(int64_t n, const float *a, const float *b, float *out);
void tsk_cuda_mul(int64_t n, const float *a, const float *b, float *out);
void tsk_cuda_scale(int64_t n, float s, const float *a, float *out);
double tsk_cuda_sumsq(int64_t n, const float *x);
void tsk_cuda_channel_sum(int64_t n, int64_t c, int64_t s, const float *x, float *sums);
void tsk_cuda_conv2d_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y);
void tsk_cuda_conv2d_backward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                              float *gw, float *gb);
void tsk_cuda_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight, const float *bias,
                                float *running_mean, float *running_var, float *save_mean, float *save_invstd,
                                int training, float momentum, float eps, float *y);
void tsk_cuda_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy, const float *weight,
                                 const float *mean, const float *invstd, int training, float *gx, float *gweight,
                                 float *gbias);
void tsk_cuda_activation_forward(int64_t n, int kind, float param, const float *x, float *y);
void tsk_cuda_activation_backward(int64_t n, int kind, float param, const float *x, const float *y, const float *gy,
                                  float *gx);
void tsk_cuda_maxpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y, int32_t *indices);
void tsk_cuda_maxpool2d_backward(const tsk_pool2d_shape *s, const float *gy, const int32_t *indices, float *gx);
void tsk_cuda_avgpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y);
void tsk_cuda_avgpool2d_backward(const tsk_pool2d_shape *s, const float *gy, float *gx);
void tsk_cuda_cross_entropy(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                            float smoothing, float *glogits, float *loss);
void tsk_cuda_count_correct(int n, int c, const float *logits, const int64_t *targets, float *correct);
void tsk_cuda_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step);
void tsk_cuda_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2);

// grid-stride loops: enough blocks to fill the device, never more than the work needs
static const int TSK_THREADS = 256;
static inline int tsk_blocks(int64_t n)
{
    int64_t b = (n + TSK_THREADS - 1) / TSK_THREADS;
    return (int)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

// f(i) for every i in 0..n-1, one thread each in a grid-stride loop, on the stream; the launch checked
template <typename F>
__global__ void tsk_each_kernel(int64_t n, F f)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}

template <typename F>
inline void tsk_each(int64_t n, const char *what, F f)
{
    if (n <= 0) return;
    tsk_each_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, f);
    tsk_launch_ok(what);
}

// The sum of v over a block of TSK_THREADS threads, in a fixed tree order (the same bits every run);
// every thread gets the result.
template <typename T>
__device__ inline T tsk_block_sum(T v)
{
    __shared__ T part[TSK_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int step = TSK_THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
        __syncthreads();
    }
    T total = part[0];
    __syncthreads();
    return total;
}

#endif

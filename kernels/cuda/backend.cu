// backend.cu — the CUDA backend table: the host reaches every CUDA kernel through it (kernels.h).
#include "common.cuh"

const tsk_backend tsk_cuda_backend = {
    "cuda",
    tsk_cuda_error,
    tsk_cuda_error_is_oom,
    tsk_cuda_gemm,
    tsk_cuda_fill_rows,
    tsk_cuda_axpy,
    tsk_cuda_add,
    tsk_cuda_mul,
    tsk_cuda_scale,
    tsk_cuda_sumsq,
    tsk_cuda_channel_sum,
    tsk_cuda_conv2d_forward,
    tsk_cuda_conv2d_backward,
    tsk_cuda_batchnorm_forward,
    tsk_cuda_batchnorm_backward,
    tsk_cuda_activation_forward,
    tsk_cuda_activation_backward,
    tsk_cuda_maxpool2d_forward,
    tsk_cuda_maxpool2d_backward,
    tsk_cuda_avgpool2d_forward,
    tsk_cuda_avgpool2d_backward,
    tsk_cuda_cross_entropy,
    tsk_cuda_sgd_step,
    tsk_cuda_adam_step,
};

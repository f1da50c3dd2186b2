/* The CPU backend table: the host reaches every CPU kernel through it (kernels.h). */
#include <stddef.h>

#include "cpu.h"

const tsk_backend tsk_cpu_backend = {
    .name = "cpu",
    .error = tsk_cpu_error,
    .error_is_oom = tsk_cpu_error_is_oom,
    .gemm = tsk_cpu_gemm,
    .fill_rows = tsk_cpu_fill_rows,
    .axpy = tsk_cpu_axpy,
    .add = tsk_cpu_add,
    .mul = tsk_cpu_mul,
    .scale = tsk_cpu_scale,
    .sumsq = tsk_cpu_sumsq,
    .channel_sum = tsk_cpu_channel_sum,
    .conv2d_forward = tsk_cpu_conv2d_forward,
    .conv2d_backward = tsk_cpu_conv2d_backward,
    .batchnorm_forward = tsk_cpu_batchnorm_forward,
    .batchnorm_backward = tsk_cpu_batchnorm_backward,
    .activation_forward = tsk_cpu_activation_forward,
    .activation_backward = tsk_cpu_activation_backward,
    .maxpool2d_forward = tsk_cpu_maxpool2d_forward,
    .maxpool2d_backward = tsk_cpu_maxpool2d_backward,
    .avgpool2d_forward = tsk_cpu_avgpool2d_forward,
    .avgpool2d_backward = tsk_cpu_avgpool2d_backward,
    .cross_entropy = tsk_cpu_cross_entropy,
    .count_correct = tsk_cpu_count_correct,
    .sgd_step = tsk_cpu_sgd_step,
    .adam_step = tsk_cpu_adam_step,
};

// batchnorm.cu — batch normalization over x [N, C, S], the math of kernels/cpu/batchnorm.c.
// Forward: cuDNN's spatial batch norm (its running variance is the unbiased one, as PyTorch's), except
// where cuDNN cannot (no affine parameters, no running statistics, or eps below CUDNN_BN_MIN_EPSILON):
// then our own kernels.
// Backward: our own, one block per channel for the two sums and a pointwise pass for gx, in both modes
// (cuDNN has no evaluation-mode backward, which frozen BN layers need), in a fixed order.
#include "common.cuh"

// per channel: mean and invstd of the batch (training) or of the running stats (eval); running stats updated
__global__ void bn_stats_kernel(int64_t n, int64_t c, int64_t s, const float *x, float *running_mean,
                                float *running_var, float *mean_out, float *invstd_out, int training, float momentum,
                                float eps)
{
    int64_t ch = blockIdx.x, m = n * s;
    double mean, var;
    if (training) {
        float shift = x[ch * s];   // shifted sums, as on the CPU, so that a large mean does not cancel the variance
        double sum = 0, sq = 0;
        for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
            double d = x[(i / s * c + ch) * s + i % s] - shift;
            sum += d;
            sq += d * d;
        }
        sum = tsk_block_sum(sum);
        sq = tsk_block_sum(sq);
        tsk_bn_moments(sum, sq, m, shift, &mean, &var);
    } else {
        mean = running_mean[ch];
        var = running_var[ch];
    }
    if (threadIdx.x != 0) return;
    if (mean_out) mean_out[ch] = (float)mean, invstd_out[ch] = tsk_bn_invstd(var, eps);
    if (training && running_mean) tsk_bn_update_running(&running_mean[ch], &running_var[ch], mean, var, m, momentum);
}

__global__ void bn_normalize_kernel(int64_t total, int64_t c, int64_t s, const float *x, const float *mean,
                                    const float *invstd, const float *weight, const float *bias, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i / s % c;
        float scale, shift;
        tsk_bn_affine(mean[ch], invstd[ch], weight, bias, ch, &scale, &shift);
        y[i] = x[i] * scale + shift;
    }
}

static bool set_descriptors(cudnnTensorDescriptor_t xd, cudnnTensorDescriptor_t pd, int64_t n, int64_t c, int64_t s)
{
    return tsk_dnn_ok(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)n, (int)c, (int)s, 1),
                      "batchnorm descriptor") &&
           tsk_dnn_ok(cudnnSetTensor4dDescriptor(pd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)c, 1, 1),
                      "batchnorm descriptor");
}

void tsk_cuda_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight, const float *bias,
                                float *running_mean, float *running_var, float *save_mean, float *save_invstd,
                                int training, float momentum, float eps, float *y)
{
    if (n * c * s == 0) return;
    if (weight && bias && running_mean && eps >= CUDNN_BN_MIN_EPSILON) {
        cudnnTensorDescriptor_t xd = NULL, pd = NULL;
        float one = 1, zero = 0;
        if (tsk_dnn_ok(cudnnCreateTensorDescriptor(&xd), "batchnorm") && tsk_dnn_ok(cudnnCreateTensorDescriptor(&pd), "batchnorm") &&
            set_descriptors(xd, pd, n, c, s)) {
            if (training)
                tsk_dnn_ok(cudnnBatchNormalizationForwardTraining(tsk_ctx.dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, x,
                                                                  xd, y, pd, weight, bias, momentum, running_mean,
                                                                  running_var, eps, save_mean, save_invstd),
                           "cudnnBatchNormalizationForwardTraining");
            else
                tsk_dnn_ok(cudnnBatchNormalizationForwardInference(tsk_ctx.dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, x,
                                                                   xd, y, pd, weight, bias, running_mean, running_var, eps),
                           "cudnnBatchNormalizationForwardInference");
        }
        cudnnDestroyTensorDescriptor(xd);
        cudnnDestroyTensorDescriptor(pd);
        // evaluation mode: the running statistics as mean/invstd, for a backward through frozen statistics
        if (!training && save_mean)
            bn_stats_kernel<<<(unsigned)c, TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, s, x, running_mean, running_var, save_mean,
                                                                           save_invstd, 0, momentum, eps);
        tsk_launch_ok("batchnorm");
        return;
    }
    float *mean = save_mean, *invstd = save_invstd;
    if (!mean) {   // evaluation without a place to keep the statistics: scratch
        mean = (float *)tsk_cuda_workspace(2 * sizeof(float) * (size_t)c);
        if (!mean) return;
        invstd = mean + c;
    }
    bn_stats_kernel<<<(unsigned)c, TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, s, x, running_mean, running_var, mean, invstd,
                                                                   training, momentum, eps);
    bn_normalize_kernel<<<tsk_blocks(n * c * s), TSK_THREADS, 0, tsk_ctx.stream>>>(n * c * s, c, s, x, mean, invstd,
                                                                                 weight, bias, y);
    tsk_launch_ok("batchnorm");
}

// per channel: a = sum gy, b = sum gy (x - mean) invstd; gbias += a, gweight += b; sums kept for gx
__global__ void bn_backward_sums_kernel(int64_t n, int64_t c, int64_t s, const float *x, const float *gy,
                                        const float *mean, const float *invstd, float *gweight, float *gbias,
                                        float *sums)
{
    int64_t ch = blockIdx.x, m = n * s;
    float mu = mean[ch];
    double a = 0, b = 0;
    for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
        int64_t at = (i / s * c + ch) * s + i % s;
        a += gy[at];
        b += (double)gy[at] * (x[at] - mu);
    }
    a = tsk_block_sum(a);
    b = tsk_block_sum(b) * invstd[ch];
    if (threadIdx.x != 0) return;
    if (gbias) gbias[ch] += (float)a;
    if (gweight) gweight[ch] += (float)b;
    sums[2 * ch] = (float)(a / (double)m);
    sums[2 * ch + 1] = (float)(b / (double)m);
}

__global__ void bn_backward_input_kernel(int64_t total, int64_t c, int64_t s, const float *x, const float *gy,
                                         const float *weight, const float *mean, const float *invstd,
                                         const float *sums, int training, float *gx)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i / s % c;
        float w = weight ? weight[ch] : 1.0f, is = invstd[ch];
        gx[i] = training ? tsk_bn_grad_input(gy[i], x[i], mean[ch], w, is, sums[2 * ch], sums[2 * ch + 1]) : gy[i] * w * is;
    }
}

void tsk_cuda_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy, const float *weight,
                                 const float *mean, const float *invstd, int training, float *gx, float *gweight,
                                 float *gbias)
{
    if (n * c * s == 0) return;
    float *sums = (float *)tsk_cuda_workspace(2 * sizeof(float) * (size_t)c);
    if (!sums) return;
    bn_backward_sums_kernel<<<(unsigned)c, TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, s, x, gy, mean, invstd, gweight, gbias,
                                                                           sums);
    if (gx)
        bn_backward_input_kernel<<<tsk_blocks(n * c * s), TSK_THREADS, 0, tsk_ctx.stream>>>(n * c * s, c, s, x, gy, weight,
                                                                                          mean, invstd, sums, training, gx);
    tsk_launch_ok("batchnorm backward");
}

// batchnorm.cu — batch normalization over x [N, C, S], the math of kernels/cpu/batchnorm.c.
// Forward: cuDNN's spatial batch norm (its running variance is the unbiased one, as PyTorch's), except
// where cuDNN cannot (no affine parameters, no running statistics, eps below CUDNN_BN_MIN_EPSILON, or 2^31
// values or more, which its int dimensions and strides do not hold): then our own kernels.
// Backward: our own, the two per-channel sums by common.cuh's two-level reduction and a pointwise pass for gx,
// in both modes (cuDNN has no evaluation-mode backward, which frozen BN layers need), in a fixed order.
// A fused ReLU (batchnorm.c): applied in place after the forward, and gy taken through it in the backward.
#include "common.cuh"

// per channel: mean and invstd of the batch (training: from the two-level sums of x - shift and its square,
// common.cuh) or of the running stats (eval, partials NULL); running stats updated in training
__global__ void bn_stats_kernel(int64_t n, int64_t c, int64_t s, const float *x, const double2 *partials, int parts,
                                float *running_mean, float *running_var, float *mean_out, float *invstd_out,
                                float momentum, float eps)
{
    for (int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; ch < c; ch += (int64_t)gridDim.x * blockDim.x) {
        double mean, var;
        if (partials) {
            double2 t = tsk_channel_total(partials, ch, parts);
            tsk_bn_moments(t.x, t.y, n * s, x[ch * s], &mean, &var);
            if (running_mean) tsk_bn_update_running(&running_mean[ch], &running_var[ch], mean, var, n * s, momentum);
        } else {
            mean = running_mean[ch];
            var = running_var[ch];
        }
        if (mean_out) mean_out[ch] = (float)mean, invstd_out[ch] = tsk_bn_invstd(var, eps);
    }
}

// the batch statistics of x [N, C, S] into mean/invstd (running stats updated), or the running ones (eval):
// shifted by each channel's first value, as on the CPU, so that a large mean does not cancel the variance
static void bn_stats(int64_t n, int64_t c, int64_t s, const float *x, float *running_mean, float *running_var,
                     float *mean, float *invstd, int training, float momentum, float eps, double2 *partials)
{
    int parts = tsk_channel_parts(n * s);
    if (training)
        tsk_channel_partials(n, c, s, parts, [=] __device__(int64_t at, int64_t ch) {
            double d = x[at] - x[ch * s];
            return make_double2(d, d * d);
        }, partials, "batchnorm statistics");
    bn_stats_kernel<<<tsk_blocks(c), TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, s, x, training ? partials : NULL, parts,
                                                                     running_mean, running_var, mean, invstd, momentum, eps);
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

static void batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight, const float *bias,
                              float *running_mean, float *running_var, float *save_mean, float *save_invstd, int training,
                              float momentum, float eps, float *y)
{
    if (weight && bias && running_mean && eps >= CUDNN_BN_MIN_EPSILON && n * c * s <= INT32_MAX) {
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
        if (!training && save_mean) bn_stats(n, c, s, x, running_mean, running_var, save_mean, save_invstd, 0, momentum, eps, NULL);
        tsk_launch_ok("batchnorm");
        return;
    }
    // the workspace: mean and invstd when there is no place to keep them (evaluation), then the partial sums
    size_t stats_bytes = (2 * sizeof(float) * (size_t)c + 255) / 256 * 256;
    char *ws = (char *)tsk_cuda_workspace(stats_bytes + sizeof(double2) * (size_t)(c * tsk_channel_parts(n * s)));
    if (!ws) return;
    float *mean = save_mean ? save_mean : (float *)ws, *invstd = save_mean ? save_invstd : (float *)ws + c;
    bn_stats(n, c, s, x, running_mean, running_var, mean, invstd, training, momentum, eps, (double2 *)(ws + stats_bytes));
    bn_normalize_kernel<<<tsk_blocks(n * c * s), TSK_THREADS, 0, tsk_ctx.stream>>>(n * c * s, c, s, x, mean, invstd,
                                                                                 weight, bias, y);
    tsk_launch_ok("batchnorm");
}

void tsk_cuda_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight, const float *bias,
                                float *running_mean, float *running_var, float *save_mean, float *save_invstd,
                                int training, int relu, float momentum, float eps, float *y)
{
    if (n * c * s == 0) return;
    batchnorm_forward(n, c, s, x, weight, bias, running_mean, running_var, save_mean, save_invstd, training, momentum, eps, y);
    if (relu) tsk_cuda_activation_forward(n * c * s, 0, 0.0f, y, y);   // the fused ReLU, in place (cuDNN's has none)
}

void tsk_cuda_batchnorm_fold(int64_t o, int64_t k, const float *w, const float *b, const float *gamma, const float *beta,
                             const float *running_mean, const float *running_var, float eps, float *w_out, float *b_out)
{
    // a thread per output channel, as the CPU's loop: its bias is written for k = 0 too (a thread per weight wrote none)
    tsk_each(o, "batchnorm fold", [=] __device__(int64_t ch) {
        float scale, shift;
        tsk_bn_affine(running_mean[ch], tsk_bn_invstd(running_var[ch], eps), gamma, beta, ch, &scale, &shift);
        for (int64_t j = 0; j < k; j++) w_out[ch * k + j] = w[ch * k + j] * scale;
        b_out[ch] = (b ? b[ch] : 0.0f) * scale + shift;
    });
}

// per channel, from the two-level sums a = sum gy and b = sum gy (x - mean) (common.cuh): gbias += a,
// gweight += b invstd; the means of gy and of gy xhat kept for gx
__global__ void bn_backward_sums_kernel(int64_t c, int64_t m, const double2 *partials, int parts, const float *invstd,
                                        float *gweight, float *gbias, float *sums)
{
    for (int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; ch < c; ch += (int64_t)gridDim.x * blockDim.x) {
        double2 t = tsk_channel_total(partials, ch, parts);
        double a = t.x, b = t.y * invstd[ch];
        if (gbias) gbias[ch] += (float)a;
        if (gweight) gweight[ch] += (float)b;
        sums[2 * ch] = (float)(a / (double)m);
        sums[2 * ch + 1] = (float)(b / (double)m);
    }
}

__global__ void bn_backward_input_kernel(int64_t total, int64_t c, int64_t s, const float *x, const float *gy,
                                         const float *relu_y, const float *weight, const float *mean,
                                         const float *invstd, const float *sums, int training, float *gx)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i / s % c;
        float w = weight ? weight[ch] : 1.0f, is = invstd[ch], g = tsk_through_relu(gy[i], relu_y, i);
        gx[i] = training ? tsk_bn_grad_input(g, x[i], mean[ch], w, is, sums[2 * ch], sums[2 * ch + 1]) : g * w * is;
    }
}

void tsk_cuda_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy, const float *relu_y,
                                 const float *weight, const float *mean, const float *invstd, int training, float *gx,
                                 float *gweight, float *gbias)
{
    if (n * c * s == 0) return;
    // the workspace: the means for gx, then the partial sums
    int parts = tsk_channel_parts(n * s);
    size_t sums_bytes = (2 * sizeof(float) * (size_t)c + 255) / 256 * 256;
    char *ws = (char *)tsk_cuda_workspace(sums_bytes + sizeof(double2) * (size_t)(c * parts));
    if (!ws) return;
    float *sums = (float *)ws;
    double2 *partials = (double2 *)(ws + sums_bytes);
    tsk_channel_partials(n, c, s, parts, [=] __device__(int64_t at, int64_t ch) {
        float g = tsk_through_relu(gy[at], relu_y, at);
        return make_double2(g, (double)g * (x[at] - mean[ch]));
    }, partials, "batchnorm backward");
    bn_backward_sums_kernel<<<tsk_blocks(c), TSK_THREADS, 0, tsk_ctx.stream>>>(c, n * s, partials, parts, invstd, gweight,
                                                                             gbias, sums);
    if (gx)
        bn_backward_input_kernel<<<tsk_blocks(n * c * s), TSK_THREADS, 0, tsk_ctx.stream>>>(n * c * s, c, s, x, gy, relu_y,
                                                                                          weight, mean, invstd, sums,
                                                                                          training, gx);
    tsk_launch_ok("batchnorm backward");
}

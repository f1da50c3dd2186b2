// cross_entropy.cu — the loss of kernels/cpu/cross_entropy.c (weights, label smoothing, mean reduction), with
// its per-sample rules from kernels/pointwise.h:
//   loss_i = (1-e) w[y_i] (logsumexp - z[y_i]) + e/C sum_c w[c] (logsumexp - z[c]);  loss = sum loss_i / sum w[y_i]
//   d loss / d z[i,k] = ((1-e) w[y_i] (p[k] - [k = y_i]) + e/C (W p[k] - w[k])) / sum_i w[y_i]
// One block per sample; the per-sample losses are summed by one block in a fixed order, and the mean is
// left on the device: nothing here waits for the GPU.
#include "common.cuh"

// sums[0] = sum_i w[y_i], sums[1] = sum_c w[c]
__global__ void weight_sums_kernel(int n, int c, const int64_t *targets, const float *w, double *sums)
{
    double d = 0, all = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) d += tsk_class_weight(w, targets[i]);
    for (int k = threadIdx.x; k < c; k += blockDim.x) all += tsk_class_weight(w, k);
    d = tsk_block_sum(d);
    all = tsk_block_sum(all);
    if (threadIdx.x == 0) sums[0] = d, sums[1] = all;
}

__global__ void cross_entropy_kernel(int c, const float *logits, const int64_t *targets, const float *w, float e,
                                     const double *sums, double *losses, float *glogits)
{
    int i = blockIdx.x;
    const float *z = logits + (int64_t)i * c;
    __shared__ double zmax_shared;
    if (threadIdx.x == 0) zmax_shared = tsk_row_max(z, c);
    __syncthreads();
    double zmax = zmax_shared, sum = 0;
    for (int k = threadIdx.x; k < c; k += blockDim.x) sum += exp(z[k] - zmax);
    double logsum = zmax + log(tsk_block_sum(sum));
    int64_t y = targets[i];
    double wy = tsk_class_weight(w, y), smooth = 0;
    for (int k = threadIdx.x; k < c; k += blockDim.x) smooth += tsk_class_weight(w, k) * (logsum - z[k]);
    smooth = tsk_block_sum(smooth);
    if (threadIdx.x == 0) losses[i] = tsk_ce_loss(logsum, z[y], wy, smooth, e, c);
    if (glogits)
        for (int k = threadIdx.x; k < c; k += blockDim.x)
            glogits[(int64_t)i * c + k] = tsk_ce_grad(exp(z[k] - logsum), k == y, wy, tsk_class_weight(w, k), sums[1], e, c,
                                                      sums[0]);
}

// *loss = sum of the per-sample losses / sums[0]
__global__ void mean_loss_kernel(int n, const double *losses, const double *sums, float *loss)
{
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += losses[i];
    s = tsk_block_sum(s);
    if (threadIdx.x == 0) *loss = (float)(s / sums[0]);
}

void tsk_cuda_cross_entropy(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                            float smoothing, float *glogits, float *loss)
{
    // workspace: [denominator, weight sum, per-sample losses...]
    double *ws = (double *)tsk_cuda_workspace(sizeof(double) * (size_t)(n + 2));
    if (!ws || n == 0) return;
    weight_sums_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, targets, class_weight, ws);
    cross_entropy_kernel<<<n, TSK_THREADS, 0, tsk_ctx.stream>>>(c, logits, targets, class_weight, smoothing, ws,
                                                                 ws + 2, glogits);
    mean_loss_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(n, ws + 2, ws, loss);
    tsk_launch_ok("cross_entropy");
}

// *correct += the rows whose first largest logit is the target's; one block, rows summed in a fixed order
__global__ void count_correct_kernel(int n, int c, const float *logits, const int64_t *targets, float *correct)
{
    double hits = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) hits += tsk_first_argmax(logits + (int64_t)i * c, c) == targets[i];
    hits = tsk_block_sum(hits);
    if (threadIdx.x == 0) *correct += (float)hits;
}

void tsk_cuda_count_correct(int n, int c, const float *logits, const int64_t *targets, float *correct)
{
    if (n == 0) return;
    count_correct_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, logits, targets, correct);
    tsk_launch_ok("count_correct");
}

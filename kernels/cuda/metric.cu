// metric.cu — the metric-learning ops of kernels/cpu/metric.c on the GPU, with the same rules (kernels/pointwise.h):
// one thread per row (normalizing, mining, gathering a row's gradient), the losses summed by one block in a fixed
// order and left on the device.
#include "common.cuh"

void tsk_cuda_normalize_rows(int64_t n, int64_t d, float eps, const float *x, float *y)
{
    tsk_each(n, "normalize rows", [=] __device__(int64_t i) {
        double norm = tsk_row_norm(x + i * d, d, eps);
        for (int64_t k = 0; k < d; k++) y[i * d + k] = (float)(x[i * d + k] / norm);
    });
}

void tsk_cuda_normalize_rows_backward(int64_t n, int64_t d, float eps, const float *x, const float *y, const float *gy,
                                      float *gx)
{
    tsk_each(n, "normalize rows backward",
             [=] __device__(int64_t i) { tsk_normalize_grad(x + i * d, y + i * d, gy + i * d, d, eps, gx + i * d); });
}

void tsk_cuda_triplet_mine(int n, int64_t d, const float *x, const int64_t *labels, float eps, int32_t *a, int32_t *p,
                           int32_t *q)
{
    tsk_each(n, "triplet mining", [=] __device__(int64_t i) {
        tsk_hardest(n, d, x, labels, (int)i, eps, &p[i], &q[i]);
        a[i] = tsk_triplet_valid((int32_t)i, p[i], q[i]) ? (int32_t)i : -1;
    });
}

// *loss = the mean over the valid triplets (one block, a fixed order); *count = their number, for the gradients
__global__ void triplet_mean_kernel(int t, int64_t d, const float *x, const int32_t *a, const int32_t *p, const int32_t *q,
                                    float margin, float eps, float *loss, double *count)
{
    double s = 0, c = 0;
    for (int i = threadIdx.x; i < t; i += blockDim.x)
        if (tsk_triplet_valid(a[i], p[i], q[i])) s += tsk_triplet_loss(x, d, a[i], p[i], q[i], margin, eps), c += 1;
    s = tsk_block_sum(s);
    c = tsk_block_sum(c);
    if (threadIdx.x == 0) *loss = c > 0 ? (float)(s / c) : 0.0f, *count = c;
}

void tsk_cuda_triplet_loss(int t, int n, int64_t d, const float *x, const int32_t *a, const int32_t *p, const int32_t *q,
                           float margin, float eps, float *loss, float *gx)
{
    double *count = (double *)tsk_cuda_workspace(sizeof(double));
    if (!count) return;
    triplet_mean_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(t, d, x, a, p, q, margin, eps, loss, count);
    tsk_launch_ok("triplet loss");
    if (gx)
        tsk_each(n, "triplet loss gradient", [=] __device__(int64_t r) {
            tsk_triplet_row_grad((int)r, t, d, x, a, p, q, margin, eps, *count > 0 ? 1.0 / *count : 0.0, gx + r * d);
        });
}

__global__ void contrastive_mean_kernel(int n, int64_t d, const float *x, const int64_t *labels, float margin, float *loss)
{
    double s = 0;
    for (int64_t k = threadIdx.x; k < (int64_t)n * n; k += blockDim.x) {
        int i = (int)(k / n), j = (int)(k % n);
        if (i < j) s += tsk_contrastive_pair(x, d, i, j, labels[i] == labels[j], margin);
    }
    s = tsk_block_sum(s);
    double pairs = (double)n * (n - 1) / 2;
    if (threadIdx.x == 0) *loss = pairs > 0 ? (float)(s / pairs) : 0.0f;
}

void tsk_cuda_contrastive_loss(int n, int64_t d, const float *x, const int64_t *labels, float margin, float *loss, float *gx)
{
    contrastive_mean_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(n, d, x, labels, margin, loss);
    tsk_launch_ok("contrastive loss");
    double pairs = (double)n * (n - 1) / 2, scale = pairs > 0 ? 1.0 / pairs : 0.0;
    if (gx)
        tsk_each(n, "contrastive loss gradient",
                 [=] __device__(int64_t i) { tsk_contrastive_row_grad(n, d, x, labels, (int)i, margin, scale, gx + i * d); });
}

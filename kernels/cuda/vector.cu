// vector.cu — small kernels for the optimizers, clipping, biases, residual sums and dropout. Reductions
// use a fixed grid and a fixed tree order, so their results do not change from run to run.
#include "common.cuh"

void tsk_cuda_fill_rows(int64_t n, int64_t c, const float *v, float *y)
{
    tsk_each(n * c, "fill_rows", [=] __device__(int64_t i) { y[i] = v[i % c]; });
}

void tsk_cuda_axpy(int64_t n, float alpha, const float *x, float *y)
{
    tsk_each(n, "axpy", [=] __device__(int64_t i) { y[i] += alpha * x[i]; });
}

void tsk_cuda_add(int64_t n, const float *a, const float *b, float *out)
{
    tsk_each(n, "add", [=] __device__(int64_t i) { out[i] = a[i] + b[i]; });
}

void tsk_cuda_mul(int64_t n, const float *a, const float *b, float *out)
{
    tsk_each(n, "mul", [=] __device__(int64_t i) { out[i] = a[i] * b[i]; });
}

void tsk_cuda_scale(int64_t n, float s, const float *a, float *out)
{
    tsk_each(n, "scale", [=] __device__(int64_t i) { out[i] = s * a[i]; });
}

static const int SUMSQ_BLOCKS = 256;

__global__ void sumsq_partial_kernel(int64_t n, const float *x, double *partial)
{
    double s = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = tsk_block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// *acc += the partials, summed by one block in a fixed order
__global__ void add_partials_kernel(int count, const double *partial, double *acc)
{
    double s = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
    s = tsk_block_sum(s);
    if (threadIdx.x == 0) *acc += s;
}

void tsk_cuda_sumsq_add(int64_t n, const float *x, double *acc)
{
    double *partial = (double *)tsk_cuda_workspace(SUMSQ_BLOCKS * sizeof(double));
    if (!partial || n == 0) return;
    sumsq_partial_kernel<<<SUMSQ_BLOCKS, TSK_THREADS, 0, tsk_ctx.stream>>>(n, x, partial);
    add_partials_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(SUMSQ_BLOCKS, partial, acc);
    tsk_launch_ok("sumsq");
}

void tsk_cuda_clip_scale(int64_t n, const double *sumsq, double max_norm, float *x)
{
    // the product in double, rounded once, as on the CPU (kernels/cpu/vector.c): a factor rounded to float first
    // gave other bits than the CPU's for about a quarter of the elements (tests/test_cuda.lua)
    tsk_each(n, "clip_scale", [=] __device__(int64_t i) {
        double norm = sqrt(*sumsq);
        if (norm > max_norm) x[i] = (float)((double)x[i] * (max_norm / (norm + 1e-6)));
    });
}

// sums[c] += the channel's total, its parts added in order (common.cuh's two-level reduction)
__global__ void channel_sum_finish_kernel(int64_t c, int parts, const double2 *partials, float *sums)
{
    for (int64_t ch = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; ch < c; ch += (int64_t)gridDim.x * blockDim.x)
        sums[ch] += (float)tsk_channel_total(partials, ch, parts).x;
}

void tsk_cuda_channel_sum(int64_t n, int64_t c, int64_t s, const float *x, float *sums)
{
    if (c == 0) return;
    int parts = tsk_channel_parts(n * s);
    double2 *partials = (double2 *)tsk_cuda_workspace(sizeof(double2) * (size_t)(c * parts));
    if (!partials) return;
    tsk_channel_partials(n, c, s, parts, [=] __device__(int64_t at, int64_t) { return make_double2(x[at], 0); }, partials,
                         "channel_sum");
    channel_sum_finish_kernel<<<tsk_blocks(c), TSK_THREADS, 0, tsk_ctx.stream>>>(c, parts, partials, sums);
    tsk_launch_ok("channel_sum");
}

// distill.cu — the loss of kernels/cpu/distill.c, each row's rule from kernels/pointwise.h:
//   p = 1/m sum_j softmax(t_j / T), q = softmax(z / T)
//   loss += weight T^2 / N sum_i KL(p_i || q_i);  glogits += weight T / N (q - p)
// A row is 43 classes of a few teachers: one thread per row is enough, and it runs the CPU's code as it is.
// The rows' divergences are summed by one block in a fixed order; nothing waits for the GPU.
#include "common.cuh"

__global__ void distill_rows_kernel(int m, int n, int c, const float *t, const float *logits, double s, double gscale,
                                    float *glogits, double *kl)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    kl[i] = tsk_distill_row(m, (int64_t)n * c, t + (int64_t)i * c, logits + (int64_t)i * c, c, s, gscale,
                            glogits ? glogits + (int64_t)i * c : NULL);
}

// *loss += scale * sum of the n row divergences
__global__ void distill_sum_kernel(int n, const double *kl, double scale, float *loss)
{
    double sum = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += kl[i];
    sum = tsk_block_sum(sum);
    if (threadIdx.x == 0) *loss += (float)(scale * sum);
}

void tsk_cuda_distill(int m, int n, int c, const float *t, const float *logits, float temperature, float weight,
                      float *glogits, float *loss)
{
    double *kl = (double *)tsk_cuda_workspace(sizeof(double) * (size_t)n);
    if (!kl || n == 0) return;
    double s = 1.0 / temperature, gscale = (double)weight * temperature / n;
    distill_rows_kernel<<<(n + TSK_THREADS - 1) / TSK_THREADS, TSK_THREADS, 0, tsk_ctx.stream>>>(m, n, c, t, logits, s,
                                                                                                gscale, glogits, kl);
    distill_sum_kernel<<<1, TSK_THREADS, 0, tsk_ctx.stream>>>(n, kl, (double)weight * temperature * temperature / n, loss);
    tsk_launch_ok("distill");
}

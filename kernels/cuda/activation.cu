// activation.cu — pointwise activations, the math of kernels/cpu/activation.c:
//   relu: y = max(x, 0); leaky relu: y = x or a x; elu: y = x or a (e^x - 1), dy/dx = y + a below 0.
// Own kernels rather than cuDNN's: cuDNN has no leaky ReLU, and a pointwise pass is bound by memory
// traffic either way.
#include "common.cuh"

__global__ void activation_forward_kernel(int64_t n, int kind, float a, const float *x, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = v > 0 ? v : kind == 0 ? 0.0f : kind == 1 ? a * v : a * expm1f(v);
    }
}

__global__ void activation_backward_kernel(int64_t n, int kind, float a, const float *x, const float *y,
                                           const float *gy, float *gx)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float g = gy[i];
        gx[i] = x[i] > 0 ? g : kind == 0 ? 0.0f : kind == 1 ? a * g : g * (y[i] + a);
    }
}

void tsk_cuda_activation_forward(int64_t n, int kind, float param, const float *x, float *y)
{
    if (n == 0) return;
    activation_forward_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, kind, param, x, y);
    tsk_launch_ok("activation");
}

void tsk_cuda_activation_backward(int64_t n, int kind, float param, const float *x, const float *y, const float *gy,
                                  float *gx)
{
    if (n == 0) return;
    activation_backward_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, kind, param, x, y, gy, gx);
    tsk_launch_ok("activation backward");
}

// activation.cu — pointwise activations (the math is kernels/pointwise.h's, shared with the CPU). Our own
// kernels rather than cuDNN's: cuDNN has no leaky ReLU, and a pointwise pass is bound by memory traffic
// either way.
#include "common.cuh"

void tsk_cuda_activation_forward(int64_t n, int kind, float param, const float *x, float *y)
{
    tsk_each(n, "activation", [=] __device__(int64_t i) { y[i] = tsk_activation(kind, param, x[i]); });
}

void tsk_cuda_activation_backward(int64_t n, int kind, float param, const float *x, const float *y, const float *gy,
                                  float *gx)
{
    tsk_each(n, "activation backward",
             [=] __device__(int64_t i) { gx[i] = tsk_activation_grad(kind, param, x[i], y[i], gy[i]); });
}

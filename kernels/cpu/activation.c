/* Pointwise activations over whole tensors; the math, shared with the GPU, is in kernels/pointwise.h. */
#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_activation_forward(int64_t n, int kind, float param, const float *x, float *y)
{
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) y[i] = tsk_activation(kind, param, x[i]);
}

void tsk_cpu_activation_backward(int64_t n, int kind, float param, const float *x, const float *y,
                                 const float *gy, float *gx)
{
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) gx[i] = tsk_activation_grad(kind, param, x[i], y[i], gy[i]);
}

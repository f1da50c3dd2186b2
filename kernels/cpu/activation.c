/* Pointwise activations.
 *   relu:        y = max(x, 0)                      dy/dx = [x > 0]
 *   leaky relu:  y = x if x > 0 else a x            dy/dx = 1 or a
 *   elu:         y = x if x > 0 else a (e^x - 1)    dy/dx = 1 or y + a */
#include <math.h>

#include "cpu.h"

void tsk_cpu_activation_forward(int64_t n, int kind, float param, const float *x, float *y)
{
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v > 0 ? v : kind == 0 ? 0.0f : kind == 1 ? param * v : param * expm1f(v);
    }
}

void tsk_cpu_activation_backward(int64_t n, int kind, float param, const float *x, const float *y,
                                 const float *gy, float *gx)
{
    #pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) {
        float g = gy[i];
        gx[i] = x[i] > 0 ? g : kind == 0 ? 0.0f : kind == 1 ? param * g : g * (y[i] + param);
    }
}

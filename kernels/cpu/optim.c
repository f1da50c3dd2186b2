/* Optimizer updates over whole tensors; the rules, shared with the GPU, are in kernels/pointwise.h. */
#include <math.h>

#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                      float weight_decay, int nesterov, int first_step)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        tsk_sgd_update(&p[i], g[i], buf ? &buf[i] : NULL, lr, momentum, dampening, weight_decay, nesterov, first_step);
}

void tsk_cpu_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                       float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2)
{
    float step_size = lr / bias_correction1, bc2_sqrt = sqrtf(bias_correction2);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        tsk_adam_update(&p[i], g[i], &m[i], &v[i], lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bc2_sqrt);
}

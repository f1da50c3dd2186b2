/* Optimizer updates over the tensors of a parameter group; the rules, shared with the GPU, are in
 * kernels/pointwise.h. Each tensor's elements are split among the threads when it is large. */
#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_sgd_step(int count, const tsk_param *params, float lr, float momentum, float dampening,
                      float weight_decay, int nesterov)
{
    for (int k = 0; k < count; k++) {
        const tsk_param t = params[k];
        #pragma omp parallel for schedule(static) if (t.n > 65536)
        for (int64_t i = 0; i < t.n; i++)
            tsk_sgd_update(&t.p[i], t.g[i], t.m ? &t.m[i] : NULL, lr, momentum, dampening, weight_decay, nesterov,
                           t.first_step);
    }
}

void tsk_cpu_adam_step(int count, const tsk_param *params, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int decoupled)
{
    for (int k = 0; k < count; k++) {
        const tsk_param t = params[k];
        #pragma omp parallel for schedule(static) if (t.n > 65536)
        for (int64_t i = 0; i < t.n; i++)
            tsk_adam_update(&t.p[i], t.g[i], &t.m[i], &t.v[i], lr, beta1, beta2, eps, weight_decay, decoupled,
                            t.step_size, t.bc2_sqrt);
    }
}

// optim.cu — the optimizer updates of kernels/pointwise.h (torch.optim's rules), one thread per element.
#include "common.cuh"

void tsk_cuda_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step)
{
    tsk_each(n, "sgd", [=] __device__(int64_t i) {
        tsk_sgd_update(&p[i], g[i], buf ? &buf[i] : NULL, lr, momentum, dampening, weight_decay, nesterov, first_step);
    });
}

void tsk_cuda_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2)
{
    float step_size = lr / bias_correction1, bc2_sqrt = sqrtf(bias_correction2);
    tsk_each(n, "adam", [=] __device__(int64_t i) {
        tsk_adam_update(&p[i], g[i], &m[i], &v[i], lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bc2_sqrt);
    });
}

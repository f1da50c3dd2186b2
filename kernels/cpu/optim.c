/* Optimizer updates, elementwise, as torch.optim (PyTorch 1.13) writes them.
 * SGD:  g = grad + wd p;  buf = g (first step) or momentum buf + (1 - dampening) g;
 *       g = g + momentum buf (Nesterov) or buf;  p -= lr g
 * Adam: g = grad + wd p (Adam) | p *= 1 - lr wd (AdamW);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *       p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^step */
#include <math.h>

#include "cpu.h"

void tsk_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                      float weight_decay, int nesterov, int first_step)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + weight_decay * p[i];
        if (buf) {
            buf[i] = first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

void tsk_cpu_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                       float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2)
{
    float step_size = lr / bias_correction1, bc2_sqrt = sqrtf(bias_correction2);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (decoupled) p[i] *= 1.0f - lr * weight_decay;
        else d += weight_decay * p[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * d;
        v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

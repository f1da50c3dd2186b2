// optim.cu — the update rules of kernels/cpu/optim.c (torch.optim, PyTorch 1.13), one thread per element.
#include "common.cuh"

__global__ void sgd_kernel(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                           float weight_decay, int nesterov, int first_step)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float d = g[i] + weight_decay * p[i];
        if (buf) {
            buf[i] = first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

void tsk_cuda_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step)
{
    if (n == 0) return;
    sgd_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, p, g, buf, lr, momentum, dampening, weight_decay,
                                                                   nesterov, first_step);
    tsk_launch_ok("sgd");
}

__global__ void adam_kernel(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                            float eps, float weight_decay, int decoupled, float step_size, float bc2_sqrt)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float d = g[i];
        if (decoupled) p[i] *= 1.0f - lr * weight_decay;
        else d += weight_decay * p[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * d;
        v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

void tsk_cuda_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2)
{
    if (n == 0) return;
    adam_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, p, g, m, v, lr, beta1, beta2, eps, weight_decay,
                                                                    decoupled, lr / bias_correction1,
                                                                    sqrtf(bias_correction2));
    tsk_launch_ok("adam");
}

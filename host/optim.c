/* Optimizer steps on one parameter tensor: checks and dispatch (the rules are in kernels/cpu/optim.c). */
#include <math.h>

#include "internal.h"

int ts_sgd_step(ts_tensor *param, const ts_tensor *grad, ts_tensor *momentum_buffer, double lr, double momentum,
                double dampening, double weight_decay, int nesterov, int first_step)
{
    int64_t n = ts_tensor_numel(param);
    if (ts_check_f32("sgd: parameter", param) || ts_check_numel("sgd: gradient", grad, n) ||
        (momentum_buffer && ts_check_numel("sgd: momentum buffer", momentum_buffer, n)) ||
        ts_check_same_device("sgd", param, grad, momentum_buffer, NULL))
        return -1;
    if (nesterov && (momentum <= 0 || dampening != 0))
        return ts_error("sgd: Nesterov momentum requires a momentum and zero dampening");
    const tsk_backend *k = ts_kernels(param);
    k->sgd_step(n, ts_f32(param), ts_f32(grad), momentum_buffer ? ts_f32(momentum_buffer) : NULL, (float)lr,
                (float)momentum, (float)dampening, (float)weight_decay, nesterov, first_step);
    return ts_kernel_status(k, "sgd");
}

int ts_adam_step(ts_tensor *param, const ts_tensor *grad, ts_tensor *exp_avg, ts_tensor *exp_avg_sq, int64_t step,
                 double lr, double beta1, double beta2, double eps, double weight_decay, int decoupled)
{
    int64_t n = ts_tensor_numel(param);
    if (ts_check_f32("adam: parameter", param) || ts_check_numel("adam: gradient", grad, n) ||
        ts_check_numel("adam: exp_avg", exp_avg, n) || ts_check_numel("adam: exp_avg_sq", exp_avg_sq, n) ||
        ts_check_same_device("adam", param, grad, exp_avg, exp_avg_sq))
        return -1;
    if (step < 1) return ts_error("adam: step counts from 1, got %lld", (long long)step);
    const tsk_backend *k = ts_kernels(param);
    k->adam_step(n, ts_f32(param), ts_f32(grad), ts_f32(exp_avg), ts_f32(exp_avg_sq), (float)lr, (float)beta1,
                      (float)beta2, (float)eps, (float)weight_decay, decoupled,
                 (float)(1.0 - pow(beta1, (double)step)), (float)(1.0 - pow(beta2, (double)step)));
    return ts_kernel_status(k, "adam");
}

/* ReLU, LeakyReLU, ELU: checks and dispatch. */
#include "internal.h"

int ts_activation_forward(ts_tensor *y, const ts_tensor *x, int kind, double param)
{
    if (kind < TS_RELU || kind > TS_ELU) return ts_error("activation: unknown kind %d", kind);
    if (ts_check_f32("activation: input", x) || ts_check_shape("activation: output", y, x->ndim, x->shape) ||
        ts_check_same_device("activation", x, y, NULL, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->activation_forward(ts_tensor_numel(x), kind, (float)param, ts_f32(x), ts_f32(y));
    return ts_kernel_status(k, "activation");
}

int ts_activation_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *x, const ts_tensor *y,
                           int kind, double param)
{
    if (kind < TS_RELU || kind > TS_ELU) return ts_error("activation: unknown kind %d", kind);
    if (ts_check_f32("activation: input", x) || ts_check_shape("activation: output", y, x->ndim, x->shape) ||
        ts_check_shape("activation: gradOutput", grad_y, x->ndim, x->shape) ||
        ts_check_shape("activation: gradInput", grad_x, x->ndim, x->shape) ||
        ts_check_same_device("activation backward", x, y, grad_y, grad_x))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->activation_backward(ts_tensor_numel(x), kind, (float)param, ts_f32(x), ts_f32(y), ts_f32(grad_y), ts_f32(grad_x));
    return ts_kernel_status(k, "activation backward");
}

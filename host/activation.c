/* ReLU, LeakyReLU, ELU: checks and dispatch. */
#include "internal.h"
#include "../kernels/cpu/cpu.h"

int ts_activation_forward(ts_tensor *y, const ts_tensor *x, int kind, double param)
{
    if (kind < TS_RELU || kind > TS_ELU) return ts_error("activation: unknown kind %d", kind);
    if (ts_check_f32("activation: input", x) || ts_check_shape("activation: output", y, x->ndim, x->shape)) return -1;
    tsk_cpu_activation_forward(ts_tensor_numel(x), kind, (float)param, ts_f32(x), ts_f32(y));
    return 0;
}

int ts_activation_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *x, const ts_tensor *y,
                           int kind, double param)
{
    if (kind < TS_RELU || kind > TS_ELU) return ts_error("activation: unknown kind %d", kind);
    if (ts_check_f32("activation: input", x) || ts_check_shape("activation: output", y, x->ndim, x->shape) ||
        ts_check_shape("activation: gradOutput", grad_y, x->ndim, x->shape) ||
        ts_check_shape("activation: gradInput", grad_x, x->ndim, x->shape))
        return -1;
    tsk_cpu_activation_backward(ts_tensor_numel(x), kind, (float)param, ts_f32(x), ts_f32(y), ts_f32(grad_y),
                                ts_f32(grad_x));
    return 0;
}

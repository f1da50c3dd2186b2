/* Upsample2d (nearest, whole factors): checks and dispatch.
 *   forward:  x [N,C,H,W] -> y [N,C,H*sh,W*sw], y(i, j) = x(i / sh, j / sw)
 *   backward: gx(a, b) = sum of gy over the block i in [a*sh, a*sh+sh), j in [b*sw, b*sw+sw) */
#include "internal.h"

static int check(const char *what, const ts_tensor *x, const ts_tensor *y, int sh, int sw)
{
    char buf[96];
    if (sh < 1 || sw < 1) return ts_error("%s: scale factors must be whole numbers >= 1, got %d, %d", what, sh, sw);
    if (ts_check_f32(what, x) || ts_check_f32(what, y)) return -1;
    if (x->ndim != 4) return ts_error("%s: expected an input [N,C,H,W], got %s", what, ts_shape_str(x, buf, sizeof buf));
    int64_t out[4] = {x->shape[0], x->shape[1], x->shape[2] * sh, x->shape[3] * sw};
    if (x->shape[2] * sh > INT32_MAX || x->shape[3] * sw > INT32_MAX) return ts_error("%s: output too large", what);
    return ts_check_shape(what, y, 4, out) || ts_check_same_device(what, x, y, NULL, NULL) ? -1 : 0;
}

int ts_upsample2d_forward(ts_tensor *y, const ts_tensor *x, int sh, int sw)
{
    if (check("upsample2d", x, y, sh, sw)) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->upsample2d_forward(x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], sh, sw, ts_f32(x), ts_f32(y));
    return ts_kernel_status(k, "upsample2d");
}

int ts_upsample2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, int sh, int sw)
{
    if (check("upsample2d backward", grad_x, grad_y, sh, sw)) return -1;
    const tsk_backend *k = ts_kernels(grad_x);
    k->upsample2d_backward(grad_x->shape[0] * grad_x->shape[1], (int)grad_x->shape[2], (int)grad_x->shape[3], sh, sw,
                           ts_f32(grad_y), ts_f32(grad_x));
    return ts_kernel_status(k, "upsample2d backward");
}

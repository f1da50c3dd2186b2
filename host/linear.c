/* Linear: y[N,O] = x[N,I] weight[O,I]^T + bias[O].
 * Backward: gx = gy weight;  gweight += gy^T x;  gbias += sum_n gy. */
#include "internal.h"

static int linear_dims(const ts_tensor *x, const ts_tensor *w, int *n, int *in, int *out)
{
    char a[96], b[96];
    if (ts_check_f32("linear: input", x) || ts_check_f32("linear: weight", w)) return -1;
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return ts_error("linear: input %s does not fit weight %s (expected input [N,%lld])", ts_shape_str(x, a, sizeof a),
                        ts_shape_str(w, b, sizeof b), (long long)(w->ndim == 2 ? w->shape[1] : 0));
    *n = (int)x->shape[0], *in = (int)x->shape[1], *out = (int)w->shape[0];
    return 0;
}

int ts_linear_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias, int math)
{
    int n, in, out;
    if (linear_dims(x, weight, &n, &in, &out) || ts_check_math("linear", math)) return -1;
    int64_t ys[2] = {n, out}, bs[1] = {out};
    if (ts_check_shape("linear: output", y, 2, ys) || (bias && ts_check_shape("linear: bias", bias, 1, bs)) ||
        ts_check_same_device("linear", x, weight, bias, y))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    if (bias) k->fill_rows(n, out, ts_f32(bias), ts_f32(y));
    k->gemm(math, 0, 1, n, out, in, 1.0f, ts_f32(x), in, ts_f32(weight), in, bias ? 1.0f : 0.0f, ts_f32(y), out);
    return ts_kernel_status(k, "linear");
}

int ts_linear_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                       const ts_tensor *x, const ts_tensor *weight, int math)
{
    int n, in, out;
    if (linear_dims(x, weight, &n, &in, &out) || ts_check_math("linear backward", math)) return -1;
    int64_t ys[2] = {n, out}, bs[1] = {out};
    if (ts_check_shape("linear: gradOutput", grad_y, 2, ys) ||
        (grad_x && ts_check_shape("linear: gradInput", grad_x, 2, x->shape)) ||
        (grad_weight && ts_check_shape("linear: gradWeight", grad_weight, 2, weight->shape)) ||
        (grad_bias && ts_check_shape("linear: gradBias", grad_bias, 1, bs)) ||
        ts_check_same_device("linear backward", x, weight, grad_y, grad_x) ||
        ts_check_same_device("linear backward", x, grad_weight, grad_bias, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    if (grad_x) k->gemm(math, 0, 0, n, in, out, 1.0f, ts_f32(grad_y), out, ts_f32(weight), in, 0.0f, ts_f32(grad_x), in);
    if (grad_weight) k->gemm(math, 1, 0, out, in, n, 1.0f, ts_f32(grad_y), out, ts_f32(x), in, 1.0f, ts_f32(grad_weight), in);
    if (grad_bias) k->channel_sum(n, out, 1, ts_f32(grad_y), ts_f32(grad_bias));
    return ts_kernel_status(k, "linear backward");
}

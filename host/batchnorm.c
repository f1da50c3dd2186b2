/* BatchNorm1d/2d: argument checks and dispatch. x is [N,C] or [N,C,H,W], seen by the kernel as [N,C,S]. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

static int bn_dims(const ts_tensor *x, int64_t *n, int64_t *c, int64_t *s)
{
    char a[96];
    if (ts_check_f32("batchnorm: input", x)) return -1;
    if (x->ndim != 2 && x->ndim != 4)
        return ts_error("batchnorm: input must be [N,C] or [N,C,H,W], got %s", ts_shape_str(x, a, sizeof a));
    *n = x->shape[0];
    *c = x->shape[1];
    *s = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    return 0;
}

int ts_batchnorm_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                         ts_tensor *running_mean, ts_tensor *running_var, ts_tensor *save_mean,
                         ts_tensor *save_invstd, int training, int relu, double momentum, double eps)
{
    int64_t n = 0, c = 0, s = 0;
    if (bn_dims(x, &n, &c, &s)) return -1;
    int64_t cs[1] = {c};
    if (ts_check_shape("batchnorm: output", y, x->ndim, x->shape) ||
        (weight && ts_check_shape("batchnorm: weight", weight, 1, cs)) ||
        (bias && ts_check_shape("batchnorm: bias", bias, 1, cs)) ||
        (running_mean && ts_check_shape("batchnorm: running_mean", running_mean, 1, cs)) ||
        (running_var && ts_check_shape("batchnorm: running_var", running_var, 1, cs)))
        return -1;
    if (!!running_mean != !!running_var) return ts_error("batchnorm: running_mean and running_var go together");
    if (ts_check_same_device("batchnorm", x, y, weight, bias) ||
        ts_check_same_device("batchnorm", x, running_mean, running_var, save_mean) ||
        ts_check_same_device("batchnorm", x, save_invstd, NULL, NULL))
        return -1;
    if (training || save_mean || save_invstd) {
        if (ts_check_shape("batchnorm: save_mean", save_mean, 1, cs) ||
            ts_check_shape("batchnorm: save_invstd", save_invstd, 1, cs))
            return -1;
        if (training && n * s < 2)
            return ts_error("batchnorm: training needs more than one value per channel, got input of %lld", (long long)(n * s));
    } else if (!running_mean) {
        return ts_error("batchnorm: evaluation mode needs running statistics");
    }
    const tsk_backend *k = ts_kernels(x);
    k->batchnorm_forward(n, c, s, ts_f32(x), weight ? ts_f32(weight) : NULL, bias ? ts_f32(bias) : NULL,
                         running_mean ? ts_f32(running_mean) : NULL, running_var ? ts_f32(running_var) : NULL,
                         save_mean ? ts_f32(save_mean) : NULL, save_invstd ? ts_f32(save_invstd) : NULL, training, relu != 0,
                         (float)momentum, (float)eps, ts_f32(y));
    return ts_kernel_status(k, "batchnorm");
}

int ts_batchnorm_fold(ts_tensor *w_out, ts_tensor *b_out, const ts_tensor *w, const ts_tensor *b, const ts_tensor *gamma,
                      const ts_tensor *beta, const ts_tensor *running_mean, const ts_tensor *running_var, double eps)
{
    if (ts_check_f32("batchnorm fold: weight", w) || w->ndim < 2) return ts_error("batchnorm fold: the weight must be [O, ...]");
    int64_t o = w->shape[0], k = ts_tensor_numel(w) / (o > 0 ? o : 1), os[1] = {o};
    if (ts_check_shape("batchnorm fold: folded weight", w_out, w->ndim, w->shape) ||
        ts_check_shape("batchnorm fold: folded bias", b_out, 1, os) || (b && ts_check_shape("batchnorm fold: bias", b, 1, os)) ||
        (gamma && ts_check_shape("batchnorm fold: batch norm weight", gamma, 1, os)) ||
        (beta && ts_check_shape("batchnorm fold: batch norm bias", beta, 1, os)) ||
        ts_check_shape("batchnorm fold: running_mean", running_mean, 1, os) ||
        ts_check_shape("batchnorm fold: running_var", running_var, 1, os) ||
        ts_check_same_device("batchnorm fold", w, w_out, b_out, b) ||
        ts_check_same_device("batchnorm fold", w, gamma, beta, running_mean) ||
        ts_check_same_device("batchnorm fold", w, running_var, NULL, NULL))
        return -1;
    const tsk_backend *k_ = ts_kernels(w);
    k_->batchnorm_fold(o, k, ts_f32(w), b ? ts_f32(b) : NULL, gamma ? ts_f32(gamma) : NULL, beta ? ts_f32(beta) : NULL,
                       ts_f32(running_mean), ts_f32(running_var), (float)eps, ts_f32(w_out), ts_f32(b_out));
    return ts_kernel_status(k_, "batchnorm fold");
}

int ts_batchnorm_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                          const ts_tensor *relu_y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *save_mean,
                          const ts_tensor *save_invstd, int training)
{
    int64_t n = 0, c = 0, s = 0;
    if (bn_dims(x, &n, &c, &s)) return -1;
    int64_t cs[1] = {c};
    if (ts_check_shape("batchnorm: gradOutput", grad_y, x->ndim, x->shape) ||
        (relu_y && ts_check_shape("batchnorm: the fused ReLU's output", relu_y, x->ndim, x->shape)) ||
        (grad_x && ts_check_shape("batchnorm: gradInput", grad_x, x->ndim, x->shape)) ||
        (weight && ts_check_shape("batchnorm: weight", weight, 1, cs)) ||
        (grad_weight && ts_check_shape("batchnorm: gradWeight", grad_weight, 1, cs)) ||
        (grad_bias && ts_check_shape("batchnorm: gradBias", grad_bias, 1, cs)) ||
        ts_check_shape("batchnorm: mean", save_mean, 1, cs) || ts_check_shape("batchnorm: invstd", save_invstd, 1, cs) ||
        ts_check_same_device("batchnorm backward", x, grad_y, grad_x, weight) ||
        ts_check_same_device("batchnorm backward", x, grad_weight, grad_bias, save_mean) ||
        ts_check_same_device("batchnorm backward", x, save_invstd, relu_y, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->batchnorm_backward(n, c, s, ts_f32(x), ts_f32(grad_y), relu_y ? ts_f32(relu_y) : NULL, weight ? ts_f32(weight) : NULL,
                          ts_f32(save_mean), ts_f32(save_invstd), training, grad_x ? ts_f32(grad_x) : NULL,
                          grad_weight ? ts_f32(grad_weight) : NULL, grad_bias ? ts_f32(grad_bias) : NULL);
    return ts_kernel_status(k, "batchnorm backward");
}

/* Conv2d: argument checks and dispatch to the kernels. */
#include <limits.h>

#include "internal.h"

static int conv_shape(const ts_tensor *x, const ts_tensor *w, const ts_conv2d_params *p, tsk_conv2d_shape *s)
{
    char a[96], b[96];
    if (ts_check_f32("conv2d: input", x) || ts_check_f32("conv2d: weight", w)) return -1;
    if (x->ndim != 4) return ts_error("conv2d: input must be 4-d [N,C,H,W], got %s", ts_shape_str(x, a, sizeof a));
    if (w->ndim != 4) return ts_error("conv2d: weight must be 4-d [O,C/groups,KH,KW], got %s", ts_shape_str(w, a, sizeof a));
    if (p->groups < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 ||
        p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0)
        return ts_error("conv2d: groups, strides and dilations must be >= 1 and paddings >= 0");
    if (ts_check_math("conv2d", p->math)) return -1;
    if (x->shape[1] % p->groups || w->shape[0] % p->groups)
        return ts_error("conv2d: %lld input and %lld output channels are not divisible by groups=%d",
                        (long long)x->shape[1], (long long)w->shape[0], p->groups);
    if (w->shape[1] * p->groups != x->shape[1])
        return ts_error("conv2d: input %s has %lld channels but weight %s expects %lld (groups=%d)",
                        ts_shape_str(x, a, sizeof a), (long long)x->shape[1], ts_shape_str(w, b, sizeof b),
                        (long long)(w->shape[1] * p->groups), p->groups);
    *s = (tsk_conv2d_shape){
        .n = (int)x->shape[0], .c = (int)x->shape[1], .h = (int)x->shape[2], .w = (int)x->shape[3],
        .o = (int)w->shape[0], .kh = (int)w->shape[2], .kw = (int)w->shape[3],
        .stride_h = p->stride_h, .stride_w = p->stride_w, .pad_top = p->pad_top, .pad_left = p->pad_left,
        .dilation_h = p->dilation_h, .dilation_w = p->dilation_w, .groups = p->groups, .math = p->math,
        .relu = p->relu != 0,
    };
    /* in int64: paddings near 2^30 overflowed int in the padded size, and an output of over 2^31 rows the int */
    int64_t eh = (int64_t)p->dilation_h * (s->kh - 1) + 1, ew = (int64_t)p->dilation_w * (s->kw - 1) + 1;
    int64_t ph = (int64_t)s->h + p->pad_top + p->pad_bottom, pw = (int64_t)s->w + p->pad_left + p->pad_right;
    if (ph < eh || pw < ew)
        return ts_error("conv2d: kernel %dx%d (dilated %lldx%lld) is larger than the padded input %s", s->kh, s->kw,
                        (long long)eh, (long long)ew, ts_shape_str(x, a, sizeof a));
    int64_t oh = (ph - eh) / p->stride_h + 1, ow = (pw - ew) / p->stride_w + 1;
    if (oh > INT_MAX || ow > INT_MAX)
        return ts_error("conv2d: the output would be %lldx%lld, over 2^31 rows or columns (input %s, padding %d+%d, "
                        "%d+%d)", (long long)oh, (long long)ow, ts_shape_str(x, a, sizeof a), p->pad_top, p->pad_bottom,
                        p->pad_left, p->pad_right);
    s->oh = (int)oh;
    s->ow = (int)ow;
    return 0;
}

int ts_conv2d_output_size(const ts_tensor *x, const ts_tensor *weight, const ts_conv2d_params *p, int64_t *shape4)
{
    tsk_conv2d_shape s = {0};
    if (conv_shape(x, weight, p, &s)) return -1;
    shape4[0] = s.n, shape4[1] = s.o, shape4[2] = s.oh, shape4[3] = s.ow;
    return 0;
}

int ts_conv2d_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                      const ts_conv2d_params *p)
{
    tsk_conv2d_shape s = {0};
    if (conv_shape(x, weight, p, &s)) return -1;
    int64_t ys[4] = {s.n, s.o, s.oh, s.ow}, bs[1] = {s.o};
    if (ts_check_shape("conv2d: output", y, 4, ys) || (bias && ts_check_shape("conv2d: bias", bias, 1, bs)) ||
        ts_check_same_device("conv2d", x, weight, bias, y))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->conv2d_forward(&s, ts_f32(x), ts_f32(weight), bias ? ts_f32(bias) : NULL, ts_f32(y));
    return ts_kernel_status(k, "conv2d");
}

int ts_conv2d_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                       const ts_tensor *x, const ts_tensor *weight, const ts_conv2d_params *p)
{
    tsk_conv2d_shape s = {0};
    if (conv_shape(x, weight, p, &s)) return -1;
    int64_t ys[4] = {s.n, s.o, s.oh, s.ow}, bs[1] = {s.o};
    if (ts_check_shape("conv2d: gradOutput", grad_y, 4, ys) ||
        (grad_x && ts_check_shape("conv2d: gradInput", grad_x, 4, x->shape)) ||
        (grad_weight && ts_check_shape("conv2d: gradWeight", grad_weight, 4, weight->shape)) ||
        (grad_bias && ts_check_shape("conv2d: gradBias", grad_bias, 1, bs)) ||
        ts_check_same_device("conv2d backward", x, weight, grad_y, grad_x) ||
        ts_check_same_device("conv2d backward", x, grad_weight, grad_bias, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->conv2d_backward(&s, ts_f32(x), ts_f32(weight), ts_f32(grad_y), grad_x ? ts_f32(grad_x) : NULL,
                       grad_weight ? ts_f32(grad_weight) : NULL, grad_bias ? ts_f32(grad_bias) : NULL);
    return ts_kernel_status(k, "conv2d backward");
}

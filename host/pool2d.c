/* MaxPool2d and AvgPool2d: output sizes (PyTorch's floor/ceil rules), checks and dispatch. */
#include "internal.h"

static int64_t pooled(int64_t in, int k, int s, int pad, int ceil_mode)
{
    int64_t span = in + 2 * (int64_t)pad - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil mode: the last window must start inside the input or the left padding */
    if (ceil_mode && (out - 1) * s >= in + pad) out--;
    return out;
}

static int pool_shape(const ts_tensor *x, const ts_pool2d_params *p, tsk_pool2d_shape *s, const char *what)
{
    char a[96];
    if (ts_check_f32(what, x)) return -1;
    if (x->ndim != 4) return ts_error("%s: input must be 4-d [N,C,H,W], got %s", what, ts_shape_str(x, a, sizeof a));
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0)
        return ts_error("%s: kernel and stride must be >= 1, padding >= 0", what);
    if (2 * (int64_t)p->pad_h > p->kernel_h || 2 * (int64_t)p->pad_w > p->kernel_w)   /* (2^30 * 2 overflowed int) */
        return ts_error("%s: padding must be at most half the kernel size", what);
    if (x->shape[2] + 2 * (int64_t)p->pad_h < p->kernel_h || x->shape[3] + 2 * (int64_t)p->pad_w < p->kernel_w)
        return ts_error("%s: kernel %dx%d is larger than the input %s", what, p->kernel_h, p->kernel_w,
                        ts_shape_str(x, a, sizeof a));
    int64_t oh = pooled(x->shape[2], p->kernel_h, p->stride_h, p->pad_h, p->ceil_mode);
    int64_t ow = pooled(x->shape[3], p->kernel_w, p->stride_w, p->pad_w, p->ceil_mode);
    if (oh < 1 || ow < 1)
        return ts_error("%s: kernel %dx%d is larger than the input %s", what, p->kernel_h, p->kernel_w,
                        ts_shape_str(x, a, sizeof a));
    *s = (tsk_pool2d_shape){
        .planes = (int)(x->shape[0] * x->shape[1]), .h = (int)x->shape[2], .w = (int)x->shape[3],
        .oh = (int)oh, .ow = (int)ow, .kh = p->kernel_h, .kw = p->kernel_w, .sh = p->stride_h, .sw = p->stride_w,
        .ph = p->pad_h, .pw = p->pad_w, .count_include_pad = p->count_include_pad,
    };
    return 0;
}

int ts_pool2d_output_size(const ts_tensor *x, const ts_pool2d_params *p, int64_t *shape4)
{
    tsk_pool2d_shape s = {0};
    if (pool_shape(x, p, &s, "pool2d")) return -1;
    shape4[0] = x->shape[0], shape4[1] = x->shape[1], shape4[2] = s.oh, shape4[3] = s.ow;
    return 0;
}

int ts_maxpool2d_forward(ts_tensor *y, ts_tensor *indices, const ts_tensor *x, const ts_pool2d_params *p)
{
    tsk_pool2d_shape s = {0};
    if (pool_shape(x, p, &s, "maxpool2d")) return -1;
    int64_t ys[4] = {x->shape[0], x->shape[1], s.oh, s.ow};
    if (ts_check_shape("maxpool2d: output", y, 4, ys)) return -1;
    if (!indices || indices->dtype != TS_INT32 || ts_tensor_numel(indices) != ts_tensor_numel(y) ||
        !ts_tensor_is_contiguous(indices))
        return ts_error("maxpool2d: indices must be a contiguous int32 tensor shaped like the output");
    if (ts_check_same_device("maxpool2d", x, y, indices, NULL)) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->maxpool2d_forward(&s, ts_f32(x), ts_f32(y), (int32_t *)ts_tensor_data(indices));
    return ts_kernel_status(k, "maxpool2d");
}

int ts_maxpool2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *indices,
                          const ts_pool2d_params *p)
{
    tsk_pool2d_shape s = {0};
    if (pool_shape(grad_x, p, &s, "maxpool2d backward")) return -1;
    int64_t ys[4] = {grad_x->shape[0], grad_x->shape[1], s.oh, s.ow};
    if (ts_check_shape("maxpool2d: gradOutput", grad_y, 4, ys)) return -1;
    if (!indices || indices->dtype != TS_INT32 || ts_tensor_numel(indices) != ts_tensor_numel(grad_y))
        return ts_error("maxpool2d: indices do not match gradOutput (run forward first)");
    if (ts_check_same_device("maxpool2d backward", grad_x, grad_y, indices, NULL)) return -1;
    const tsk_backend *k = ts_kernels(grad_x);
    k->maxpool2d_backward(&s, ts_f32(grad_y), (const int32_t *)ts_tensor_data(indices), ts_f32(grad_x));
    return ts_kernel_status(k, "maxpool2d backward");
}

int ts_avgpool2d_forward(ts_tensor *y, const ts_tensor *x, const ts_pool2d_params *p)
{
    tsk_pool2d_shape s = {0};
    if (pool_shape(x, p, &s, "avgpool2d")) return -1;
    int64_t ys[4] = {x->shape[0], x->shape[1], s.oh, s.ow};
    if (ts_check_shape("avgpool2d: output", y, 4, ys) || ts_check_same_device("avgpool2d", x, y, NULL, NULL)) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->avgpool2d_forward(&s, ts_f32(x), ts_f32(y));
    return ts_kernel_status(k, "avgpool2d");
}

int ts_avgpool2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_pool2d_params *p)
{
    tsk_pool2d_shape s = {0};
    if (pool_shape(grad_x, p, &s, "avgpool2d")) return -1;
    int64_t ys[4] = {grad_x->shape[0], grad_x->shape[1], s.oh, s.ow};
    if (ts_check_shape("avgpool2d: gradOutput", grad_y, 4, ys) ||
        ts_check_same_device("avgpool2d backward", grad_x, grad_y, NULL, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(grad_x);
    k->avgpool2d_backward(&s, ts_f32(grad_y), ts_f32(grad_x));
    return ts_kernel_status(k, "avgpool2d backward");
}

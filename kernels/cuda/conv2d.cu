// conv2d.cu — convolutions through cuDNN, the algorithm chosen once per shape by timing cuDNN's
// candidates (as PyTorch's cudnn.benchmark does) and cached.
//   y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C/g,KH,KW]) + bias; gx overwritten, gw and gb accumulated.
// cuDNN pads symmetrically. A TensorFlow-'same' layer pads one more row and column after than before
// (stride 2): when the symmetric padding would not give the host's output size, x is copied into an
// explicitly padded buffer and cuDNN runs without padding (and gx is cropped back out of its gradient).
#include <string.h>

#include "common.cuh"

struct conv_plan {
    tsk_conv2d_shape shape;
    int tf32, deterministic;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, data_math, filter_math;
    size_t fwd_bytes, data_bytes, filter_bytes;
    int padded_h, padded_w;   // 0: cuDNN pads; else the explicitly padded input size
};

static const int PLAN_CAPACITY = 512;
static conv_plan plans[PLAN_CAPACITY];
static int plan_count;

struct conv_descriptors {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
};

static void destroy(conv_descriptors *d)
{
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

// the size cuDNN gives with symmetric padding pad
static int cudnn_out(int in, int pad, int k, int dilation, int stride) { return (in + 2 * pad - (dilation * (k - 1) + 1)) / stride + 1; }

static bool describe(const tsk_conv2d_shape *s, const conv_plan *p, conv_descriptors *d)
{
    memset(d, 0, sizeof *d);
    int h = p->padded_h ? p->padded_h : s->h, w = p->padded_w ? p->padded_w : s->w;
    int ph = p->padded_h ? 0 : s->pad_top, pw = p->padded_w ? 0 : s->pad_left;
    return tsk_dnn_ok(cudnnCreateTensorDescriptor(&d->x), "conv2d") && tsk_dnn_ok(cudnnCreateTensorDescriptor(&d->y), "conv2d") &&
           tsk_dnn_ok(cudnnCreateFilterDescriptor(&d->w), "conv2d") &&
           tsk_dnn_ok(cudnnCreateConvolutionDescriptor(&d->conv), "conv2d") &&
           tsk_dnn_ok(cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->c, h, w), "conv2d input") &&
           tsk_dnn_ok(cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->o, s->oh, s->ow), "conv2d output") &&
           tsk_dnn_ok(cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->o, s->c / s->groups, s->kh, s->kw),
                      "conv2d weight") &&
           tsk_dnn_ok(cudnnSetConvolution2dDescriptor(d->conv, ph, pw, s->stride_h, s->stride_w, s->dilation_h, s->dilation_w,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                      "conv2d descriptor") &&
           tsk_dnn_ok(cudnnSetConvolutionGroupCount(d->conv, s->groups), "conv2d groups") &&
           tsk_dnn_ok(cudnnSetConvolutionMathType(d->conv, p->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH), "conv2d math");
}

// the fastest successful candidate (deterministic ones only when asked); cuDNN lists them fastest first
template <typename Perf>
static int pick(const Perf *perf, int count, int deterministic)
{
    for (int i = 0; i < count; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) return i;
    return -1;
}

static conv_plan *plan_for(const tsk_conv2d_shape *s)
{
    for (int i = 0; i < plan_count; i++)
        if (!memcmp(&plans[i].shape, s, sizeof *s) && plans[i].tf32 == tsk_ctx.tf32 &&
            plans[i].deterministic == tsk_ctx.deterministic)
            return &plans[i];
    conv_plan p;
    memset(&p, 0, sizeof p);
    p.shape = *s;
    p.tf32 = tsk_ctx.tf32;
    p.deterministic = tsk_ctx.deterministic;
    if (cudnn_out(s->h, s->pad_top, s->kh, s->dilation_h, s->stride_h) != s->oh ||
        cudnn_out(s->w, s->pad_left, s->kw, s->dilation_w, s->stride_w) != s->ow) {
        p.padded_h = (s->oh - 1) * s->stride_h + s->dilation_h * (s->kh - 1) + 1;
        p.padded_w = (s->ow - 1) * s->stride_w + s->dilation_w * (s->kw - 1) + 1;
    }
    conv_descriptors d;
    bool ok = describe(s, &p, &d);
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int nf = 0, nd = 0, nw = 0;
    ok = ok &&
         tsk_dnn_ok(cudnnFindConvolutionForwardAlgorithm(tsk_ctx.dnn, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf, fwd),
                    "conv2d: choosing the forward algorithm") &&
         tsk_dnn_ok(cudnnFindConvolutionBackwardDataAlgorithm(tsk_ctx.dnn, d.w, d.y, d.conv, d.x,
                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, data),
                    "conv2d: choosing the input-gradient algorithm") &&
         tsk_dnn_ok(cudnnFindConvolutionBackwardFilterAlgorithm(tsk_ctx.dnn, d.x, d.y, d.conv, d.w,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, filter),
                    "conv2d: choosing the weight-gradient algorithm");
    destroy(&d);
    if (!ok) return NULL;
    int f = pick(fwd, nf, p.deterministic), a = pick(data, nd, p.deterministic), b = pick(filter, nw, p.deterministic);
    if (f < 0 || a < 0 || b < 0) {
        tsk_cuda_fail(0, "conv2d: cuDNN has no %salgorithm for input [%d,%d,%d,%d], weight [%d,%d,%d,%d]",
                      p.deterministic ? "deterministic " : "", s->n, s->c, s->h, s->w, s->o, s->c / s->groups, s->kh, s->kw);
        return NULL;
    }
    p.fwd = fwd[f].algo, p.fwd_math = fwd[f].mathType, p.fwd_bytes = fwd[f].memory;
    p.bwd_data = data[a].algo, p.data_math = data[a].mathType, p.data_bytes = data[a].memory;
    p.bwd_filter = filter[b].algo, p.filter_math = filter[b].mathType, p.filter_bytes = filter[b].memory;
    if (plan_count == PLAN_CAPACITY) plan_count = 0;   // a sweep over many shapes: start the cache over
    plans[plan_count] = p;
    return &plans[plan_count++];
}

// workspace: [padded input | padded input gradient | cuDNN's], each part 256-byte aligned
static size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

// the bytes of the explicitly padded input [N,C,PH,PW] (0 when cuDNN pads)
static size_t padded_bytes(const tsk_conv2d_shape *s, const conv_plan *p)
{
    return p->padded_h ? aligned(sizeof(float) * (size_t)s->n * s->c * p->padded_h * p->padded_w) : 0;
}

// cuDNN's input: x itself, or x placed at (top, left) in xp [N,C,PH,PW] with zeros around
static const float *conv_input(const tsk_conv2d_shape *s, const conv_plan *p, const float *x, float *xp)
{
    if (!p->padded_h) return x;
    int h = s->h, w = s->w, ph = p->padded_h, pw = p->padded_w, top = s->pad_top, left = s->pad_left;
    tsk_each((int64_t)s->n * s->c * ph * pw, "conv2d pad", [=] __device__(int64_t i) {
        int px = (int)(i % pw), py = (int)(i / pw % ph), iy = py - top, ix = px - left;
        int64_t plane = i / ((int64_t)ph * pw);
        xp[i] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[(plane * h + iy) * w + ix] : 0.0f;
    });
    return xp;
}

static const float one = 1.0f, zero = 0.0f;

void tsk_cuda_conv2d_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y)
{
    conv_plan *p = plan_for(s);
    conv_descriptors d;
    if (!p || !describe(s, p, &d)) return;
    size_t pad_bytes = padded_bytes(s, p);
    char *ws = (char *)tsk_cuda_workspace(pad_bytes + p->fwd_bytes + 256);
    if (ws) {
        const float *input = conv_input(s, p, x, (float *)ws);
        if (tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->fwd_math), "conv2d math") &&
            tsk_dnn_ok(cudnnConvolutionForward(tsk_ctx.dnn, &one, d.x, input, d.w, w, d.conv, p->fwd, ws + pad_bytes,
                                               p->fwd_bytes, &zero, d.y, y),
                       "cudnnConvolutionForward") &&
            bias) {
            cudnnTensorDescriptor_t bd;
            if (tsk_dnn_ok(cudnnCreateTensorDescriptor(&bd), "conv2d bias")) {
                if (tsk_dnn_ok(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->o, 1, 1), "conv2d bias"))
                    tsk_dnn_ok(cudnnAddTensor(tsk_ctx.dnn, &one, bd, bias, &one, d.y, y), "conv2d bias");
                cudnnDestroyTensorDescriptor(bd);
            }
        }
    }
    tsk_launch_ok("conv2d");
    destroy(&d);
}

void tsk_cuda_conv2d_backward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                              float *gw, float *gb)
{
    conv_plan *p = plan_for(s);
    conv_descriptors d;
    if (!p || !describe(s, p, &d)) return;
    size_t pad_bytes = padded_bytes(s, p);
    size_t algo_bytes = p->data_bytes > p->filter_bytes ? p->data_bytes : p->filter_bytes;
    char *ws = (char *)tsk_cuda_workspace(2 * pad_bytes + algo_bytes + 256);
    if (ws) {
        const float *input = conv_input(s, p, x, (float *)ws);
        float *padded_grad = (float *)(ws + pad_bytes);
        char *algo_ws = ws + 2 * pad_bytes;
        if (gw && tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->filter_math), "conv2d math"))
            tsk_dnn_ok(cudnnConvolutionBackwardFilter(tsk_ctx.dnn, &one, d.x, input, d.y, gy, d.conv, p->bwd_filter, algo_ws,
                                                      p->filter_bytes, &one, d.w, gw),
                       "cudnnConvolutionBackwardFilter");
        if (gx && tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->data_math), "conv2d math") &&
            tsk_dnn_ok(cudnnConvolutionBackwardData(tsk_ctx.dnn, &one, d.w, w, d.y, gy, d.conv, p->bwd_data, algo_ws,
                                                    p->data_bytes, &zero, d.x, pad_bytes ? padded_grad : gx),
                       "cudnnConvolutionBackwardData") &&
            pad_bytes) {
            // gx [N,C,H,W] = the (top, left) window of the padded input's gradient [N,C,PH,PW]
            int h = s->h, w = s->w, ph = p->padded_h, pw = p->padded_w, top = s->pad_top, left = s->pad_left;
            const float *gxp = padded_grad;
            tsk_each((int64_t)s->n * s->c * h * w, "conv2d crop", [=] __device__(int64_t i) {
                int ix = (int)(i % w), iy = (int)(i / w % h);
                gx[i] = gxp[(i / ((int64_t)h * w) * ph + iy + top) * pw + ix + left];
            });
        }
        if (gb) tsk_cuda_channel_sum(s->n, s->o, (int64_t)s->oh * s->ow, gy, gb);
    }
    tsk_launch_ok("conv2d backward");
    destroy(&d);
}

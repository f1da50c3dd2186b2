// conv2d.cu — convolutions through cuDNN, the algorithm chosen once per layer by timing cuDNN's
// candidates (as PyTorch's cudnn.benchmark does; in deterministic mode from cuDNN's heuristics, untimed) and
// cached with the shape's descriptors, so that a call costs the host no more than its launches. Another batch
// size of a layer already planned reuses its algorithms when cuDNN runs them at that size (no new search;
// not in deterministic mode, where the choice must not depend on the batch sizes a process met first).
//   y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C/g,KH,KW]) + bias; gx overwritten, gw and gb accumulated.
// cuDNN sees each operand either as the host keeps it (fp32 NCHW) or staged: copied into the workspace
// first and copied back after. Staging happens for two reasons:
//  - padding: cuDNN pads symmetrically. A TensorFlow-'same' layer pads one more row and column after than
//    before (stride 2): when the symmetric padding would not give the host's output size, x is staged into
//    an explicitly padded buffer and cuDNN runs without padding (gx is cropped back out of its gradient).
//  - the bf16 precision (TSK_MATH_BF16): x, w and gy are rounded to bfloat16 as they are staged (the
//    rounding of tsk_bf16_bits, as on the CPU), cuDNN computes with fp32 sums on the tensor cores, and y,
//    gx and gw come back to fp32 (gw added to the fp32 gradient). Since every operand is copied anyway,
//    the copy also lays it out channels-last (NHWC, filters KRSC), the layout cuDNN's tensor-core kernels
//    run without transposing, unless channels-last is turned off (ts.cuda.channelsLast(false)).
//    y, gx and gw pass through bfloat16 on the way out (cuDNN writes the operands' type): one more
//    rounding than the CPU, which keeps its sums in fp32.
//  - alignment: an operand not 16-byte aligned (a batch-narrowed view whose images are not a multiple of 16
//    bytes, as micro-batches of [N,3,5,5] are) is staged as it is, in fp32 NCHW. The plan's algorithms were
//    timed on cuDNN's own aligned buffers and are cached by shape alone, and cuDNN's vectorized kernels need
//    aligned operands (PyTorch keys its plans by the operands' alignment for this reason).
#include <string.h>

#include "common.cuh"

// cuDNN's descriptors of a plan's operands, made once with the plan: x, y, w as cuDNN reads them (staged or
// not), and y as the host keeps it with the bias, for the bias addition
struct conv_descriptors {
    cudnnTensorDescriptor_t x, y, y_host, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
};

struct conv_plan {
    tsk_conv2d_shape shape;   // includes the precision
    int tf32, deterministic, channels_last;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, data_math, filter_math;
    size_t fwd_bytes, data_bytes, filter_bytes;
    int padded_h, padded_w;   // 0: cuDNN pads; else the explicitly padded input size
    int bf16, nhwc;           // the staged operands' element type and layout
    conv_descriptors d;
    uint64_t used;            // when the plan was last asked for (the cache's clock)
};

// The plan cache: when full, the least recently used plan makes room, so the shapes a run keeps using are never
// planned again (starting the cache over re-ran cuDNN's search for them, and could change their algorithms).
static const int PLAN_CAPACITY = 512;
static conv_plan plans[PLAN_CAPACITY];
static int plan_count;
static uint64_t plan_clock;

static void destroy(conv_descriptors *d)
{
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->y_host) cudnnDestroyTensorDescriptor(d->y_host);
    if (d->bias) cudnnDestroyTensorDescriptor(d->bias);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
    memset(d, 0, sizeof *d);
}

// the slot for a new plan: a free one, else the least recently used
static int plan_slot(void)
{
    if (plan_count < PLAN_CAPACITY) return plan_count++;
    int oldest = 0;
    for (int i = 1; i < PLAN_CAPACITY; i++)
        if (plans[i].used < plans[oldest].used) oldest = i;
    destroy(&plans[oldest].d);
    return oldest;
}

// the size cuDNN gives with symmetric padding pad; -1 when the padded input is shorter than the dilated kernel
// (C's division would round that negative span up to an output of 1, which may match the host's size by chance)
static int cudnn_out(int in, int pad, int k, int dilation, int stride)
{
    int span = in + 2 * pad - (dilation * (k - 1) + 1);
    return span < 0 ? -1 : span / stride + 1;
}

static int input_h(const tsk_conv2d_shape *s, const conv_plan *p) { return p->padded_h ? p->padded_h : s->h; }
static int input_w(const tsk_conv2d_shape *s, const conv_plan *p) { return p->padded_w ? p->padded_w : s->w; }

// the first failing status of a chain of cuDNN calls (CUDNN_STATUS_SUCCESS when all succeed)
#define DNN_TRY(call)                                      \
    do {                                                   \
        cudnnStatus_t status_ = (call);                    \
        if (status_ != CUDNN_STATUS_SUCCESS) return status_; \
    } while (0)

// The plan's descriptors, for its staging (bf16 or fp32, NHWC or NCHW). Nothing is recorded on a failure: the
// caller may try another staging.
static cudnnStatus_t describe(const tsk_conv2d_shape *s, const conv_plan *p, conv_descriptors *d)
{
    memset(d, 0, sizeof *d);
    int h = input_h(s, p), w = input_w(s, p);
    int ph = p->padded_h ? 0 : s->pad_top, pw = p->padded_w ? 0 : s->pad_left;
    cudnnDataType_t type = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t layout = p->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    // bf16 operands always run on the tensor cores; fp32 ones there only with TF32 allowed
    cudnnMathType_t math = p->bf16 || p->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    DNN_TRY(cudnnCreateTensorDescriptor(&d->x));
    DNN_TRY(cudnnCreateTensorDescriptor(&d->y));
    DNN_TRY(cudnnCreateTensorDescriptor(&d->y_host));
    DNN_TRY(cudnnCreateTensorDescriptor(&d->bias));
    DNN_TRY(cudnnCreateFilterDescriptor(&d->w));
    DNN_TRY(cudnnCreateConvolutionDescriptor(&d->conv));
    DNN_TRY(cudnnSetTensor4dDescriptor(d->x, layout, type, s->n, s->c, h, w));
    DNN_TRY(cudnnSetTensor4dDescriptor(d->y, layout, type, s->n, s->o, s->oh, s->ow));
    DNN_TRY(cudnnSetTensor4dDescriptor(d->y_host, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->n, s->o, s->oh, s->ow));
    DNN_TRY(cudnnSetTensor4dDescriptor(d->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->o, 1, 1));
    DNN_TRY(cudnnSetFilter4dDescriptor(d->w, type, layout, s->o, s->c / s->groups, s->kh, s->kw));
    DNN_TRY(cudnnSetConvolution2dDescriptor(d->conv, ph, pw, s->stride_h, s->stride_w, s->dilation_h, s->dilation_w,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN_TRY(cudnnSetConvolutionGroupCount(d->conv, s->groups));
    DNN_TRY(cudnnSetConvolutionMathType(d->conv, math));
    return CUDNN_STATUS_SUCCESS;
}

// the first successful candidate (deterministic ones only when asked) whose workspace fits the cap; cuDNN
// lists them best first
template <typename Perf>
static int pick(const Perf *perf, int count, int deterministic, size_t cap)
{
    for (int i = 0; i < count; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC) &&
            perf[i].memory <= cap)
            return i;
    return -1;
}

// The workspace an algorithm may ask for: half the device's free memory when the plan is made (an FFT
// algorithm can ask for gigabytes, which would then fail the first allocation after it), the host's cache counted
// as free (an allocation that needs it gets it back: uncounted, a full cache late in a run refused every bf16
// channels-last algorithm and fell back to slower stagings for the rest of it)
static size_t workspace_cap(void)
{
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
        cudaGetLastError();
        return (size_t)1 << 30;
    }
    return (free_bytes + tsk_cuda_cached_bytes()) / 2;
}

// cuDNN's three rankings of algorithms for the descriptors d: its heuristics (Get*_v7: untimed, the same ranking
// for a shape in every process) or its timed search (Find*); the two families take the same arguments
struct rankings {
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int nf, nd, nw;
};

static cudnnStatus_t rank(const conv_descriptors &d, bool timed, rankings *r)
{
    auto forward = timed ? cudnnFindConvolutionForwardAlgorithm : cudnnGetConvolutionForwardAlgorithm_v7;
    auto backward_data = timed ? cudnnFindConvolutionBackwardDataAlgorithm : cudnnGetConvolutionBackwardDataAlgorithm_v7;
    auto backward_filter =
        timed ? cudnnFindConvolutionBackwardFilterAlgorithm : cudnnGetConvolutionBackwardFilterAlgorithm_v7;
    r->nf = r->nd = r->nw = 0;
    DNN_TRY(forward(tsk_ctx.dnn, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &r->nf, r->fwd));
    DNN_TRY(backward_data(tsk_ctx.dnn, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &r->nd, r->data));
    DNN_TRY(backward_filter(tsk_ctx.dnn, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &r->nw, r->filter));
    return CUDNN_STATUS_SUCCESS;
}

// The descriptors and the three algorithms of p for its staging, or the reason there are none: a failing
// cuDNN status, or CUDNN_STATUS_NOT_SUPPORTED when no candidate (deterministic when asked, with a workspace
// under the cap) exists. Nothing is recorded: the caller may try another staging.
static cudnnStatus_t choose(const tsk_conv2d_shape *s, conv_plan *p)
{
    conv_descriptors &d = p->d;
    DNN_TRY(describe(s, p, &d));
    // Deterministic mode chooses from cuDNN's heuristics, never by timing: Find*'s ranking moves with timing noise,
    // so the next process could pick another algorithm and get other bits. Otherwise the timed ranking, as
    // PyTorch's cudnn.benchmark.
    rankings r;
    cudnnStatus_t ranked = rank(d, !p->deterministic, &r);
    if (ranked == CUDNN_STATUS_ALLOC_FAILED) {
        // Find* allocates its buffers and workspaces itself, outside the host's allocator: with the device's memory
        // in the host's cache it found no room, and the layer failed as out of memory. The cache given back, once
        // (and its failed cudaMalloc's error cleared, which the layer's launch check would read as its own).
        cudaGetLastError();
        tsk_cuda_trim();
        ranked = rank(d, !p->deterministic, &r);
    }
    DNN_TRY(ranked);
    size_t cap = workspace_cap();
    int f = pick(r.fwd, r.nf, p->deterministic, cap), a = pick(r.data, r.nd, p->deterministic, cap);
    int b = pick(r.filter, r.nw, p->deterministic, cap);
    if (f < 0 || a < 0 || b < 0) return CUDNN_STATUS_NOT_SUPPORTED;
    p->fwd = r.fwd[f].algo, p->fwd_math = r.fwd[f].mathType, p->fwd_bytes = r.fwd[f].memory;
    p->bwd_data = r.data[a].algo, p->data_math = r.data[a].mathType, p->data_bytes = r.data[a].memory;
    p->bwd_filter = r.filter[b].algo, p->filter_math = r.filter[b].mathType, p->filter_bytes = r.filter[b].memory;
    return CUDNN_STATUS_SUCCESS;
}

// the same layer and switches, maybe another batch size
static bool same_layer(const conv_plan *p, const tsk_conv2d_shape *s)
{
    tsk_conv2d_shape other = p->shape;
    other.n = s->n;
    return !memcmp(&other, s, sizeof other) && p->tf32 == tsk_ctx.tf32 && p->deterministic == tsk_ctx.deterministic &&
           p->channels_last == tsk_ctx.channels_last;
}

// whether cuDNN's heuristics list algorithm `algo` with math type `math` as runnable for these descriptors
template <typename Perf, typename Algo>
static bool listed(const Perf *perf, int count, Algo algo, cudnnMathType_t math)
{
    for (int i = 0; i < count; i++)
        if (perf[i].algo == algo && perf[i].mathType == math && perf[i].status == CUDNN_STATUS_SUCCESS) return true;
    return false;
}

// p takes the staging and the three algorithms of a plan of the same layer at another batch size, when cuDNN's
// heuristics list them as runnable at this one and they fit the workspace cap: a new batch size (an epoch's last
// batch, evaluation's batches) is then no new search, and a layer keeps its algorithms, hence its rounding,
// whatever the batch size. Not in deterministic mode, whose algorithms must not depend on the batch sizes a
// process met first. A failing status otherwise (nothing recorded).
static cudnnStatus_t adopt(const tsk_conv2d_shape *s, conv_plan *p, const conv_plan *from)
{
    if (p->deterministic) return CUDNN_STATUS_NOT_SUPPORTED;
    p->bf16 = from->bf16, p->nhwc = from->nhwc;
    conv_descriptors &d = p->d;
    DNN_TRY(describe(s, p, &d));
    rankings r;
    DNN_TRY(rank(d, false, &r));
    if (!listed(r.fwd, r.nf, from->fwd, from->fwd_math) || !listed(r.data, r.nd, from->bwd_data, from->data_math) ||
        !listed(r.filter, r.nw, from->bwd_filter, from->filter_math))
        return CUDNN_STATUS_NOT_SUPPORTED;
    p->fwd = from->fwd, p->fwd_math = from->fwd_math;
    p->bwd_data = from->bwd_data, p->data_math = from->data_math;
    p->bwd_filter = from->bwd_filter, p->filter_math = from->filter_math;
    // the math type is the descriptor's, set before each call as the calls do
    DNN_TRY(cudnnSetConvolutionMathType(d.conv, p->fwd_math));
    DNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(tsk_ctx.dnn, d.x, d.w, d.conv, d.y, p->fwd, &p->fwd_bytes));
    DNN_TRY(cudnnSetConvolutionMathType(d.conv, p->data_math));
    DNN_TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(tsk_ctx.dnn, d.w, d.y, d.conv, d.x, p->bwd_data, &p->data_bytes));
    DNN_TRY(cudnnSetConvolutionMathType(d.conv, p->filter_math));
    DNN_TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(tsk_ctx.dnn, d.x, d.y, d.conv, d.w, p->bwd_filter,
                                                           &p->filter_bytes));
    size_t cap = workspace_cap();
    if (p->fwd_bytes > cap || p->data_bytes > cap || p->filter_bytes > cap) return CUDNN_STATUS_NOT_SUPPORTED;
    return CUDNN_STATUS_SUCCESS;
}

static conv_plan *keep_plan(const conv_plan &p)
{
    int slot = plan_slot();
    plans[slot] = p;
    plans[slot].used = ++plan_clock;
    return &plans[slot];
}

// The plan of a shape under the current switches: made once and cached. cuDNN refuses some cases in some
// stagings (depthwise or grouped+dilated bf16, 3-channel NHWC bf16, a deterministic bf16 weight gradient):
// bf16 channels-last falls back to bf16 NCHW, and bf16 to fp32 staging (exact fp32 sums of the same
// operands, one rounding less), each fallback said once; only when every staging fails is it an error.
static conv_plan *plan_for(const tsk_conv2d_shape *s)
{
    for (int i = 0; i < plan_count; i++)
        if (!memcmp(&plans[i].shape, s, sizeof *s) && plans[i].tf32 == tsk_ctx.tf32 &&
            plans[i].deterministic == tsk_ctx.deterministic && plans[i].channels_last == tsk_ctx.channels_last) {
            plans[i].used = ++plan_clock;
            return &plans[i];
        }
    conv_plan p;
    memset(&p, 0, sizeof p);
    p.shape = *s;
    p.tf32 = tsk_ctx.tf32;
    p.deterministic = tsk_ctx.deterministic;
    p.channels_last = tsk_ctx.channels_last;
    if (cudnn_out(s->h, s->pad_top, s->kh, s->dilation_h, s->stride_h) != s->oh ||
        cudnn_out(s->w, s->pad_left, s->kw, s->dilation_w, s->stride_w) != s->ow) {
        p.padded_h = (s->oh - 1) * s->stride_h + s->dilation_h * (s->kh - 1) + 1;
        p.padded_w = (s->ow - 1) * s->stride_w + s->dilation_w * (s->kw - 1) + 1;
    }
    // cuDNN's tensor descriptors take int dimensions and compute int strides: 2^31 values or more in the (staged)
    // input or the output were refused as "no algorithm in any staging (CUDNN_STATUS_BAD_PARAM)"
    int64_t in = (int64_t)s->n * s->c * input_h(s, &p) * input_w(s, &p), out = (int64_t)s->n * s->o * s->oh * s->ow;
    if (in > INT32_MAX || out > INT32_MAX) {
        tsk_cuda_fail(0, "input [%d,%d,%d,%d] and output [%d,%d,%d,%d] hold %lld and %lld values: cuDNN takes "
                      "fewer than 2^31 a tensor (a smaller batch)", s->n, s->c, s->h, s->w, s->n, s->o, s->oh, s->ow,
                      (long long)in, (long long)out);
        return NULL;
    }
    // the same layer planned at another batch size (the largest, the run's usual batch): its algorithms
    const conv_plan *sibling = NULL;
    for (int i = 0; i < plan_count; i++)
        if (same_layer(&plans[i], s) && (!sibling || plans[i].shape.n > sibling->shape.n)) sibling = &plans[i];
    if (sibling) {
        if (adopt(s, &p, sibling) == CUDNN_STATUS_SUCCESS) return keep_plan(p);
        destroy(&p.d);
    }
    // the stagings to try, best first: {bf16, nhwc}
    int bf16 = s->math == TSK_MATH_BF16, tries[3][2], count = 0;
    if (bf16 && p.channels_last) tries[count][0] = 1, tries[count++][1] = 1;
    if (bf16) tries[count][0] = 1, tries[count++][1] = 0;
    tries[count][0] = 0, tries[count++][1] = 0;
    static const char *const said[2] = {"bf16 channels-last: falling back to bf16 NCHW",
                                        "bf16: falling back to fp32 operands (summed in fp32)"};
    static int told[2];
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    for (int t = 0; t < count; t++) {
        p.bf16 = tries[t][0], p.nhwc = tries[t][1];
        status = choose(s, &p);
        if (status == CUDNN_STATUS_SUCCESS) {
            int kind = p.bf16 ? 0 : 1;   // which fallback this staging is, when it is one
            if (t > 0 && !told[kind]) {
                told[kind] = 1;
                tsk_cuda_note("input [%d,%d,%d,%d], weight [%d,%d,%d,%d]: cuDNN has no %salgorithm in %s (said once)",
                              s->n, s->c, s->h, s->w, s->o, s->c / s->groups, s->kh, s->kw,
                              p.deterministic ? "deterministic " : "", said[kind]);
            }
            return keep_plan(p);
        }
        destroy(&p.d);
    }
    tsk_cuda_fail(status == CUDNN_STATUS_ALLOC_FAILED, "%scuDNN has no %salgorithm for input [%d,%d,%d,%d], "
                  "weight [%d,%d,%d,%d] in any staging (%s)", status == CUDNN_STATUS_ALLOC_FAILED ? "out of memory: " : "",
                  p.deterministic ? "deterministic " : "", s->n, s->c, s->h,
                  s->w, s->o, s->c / s->groups, s->kh, s->kw, cudnnGetErrorString(status));
    return NULL;
}

// ---- staging ---------------------------------------------------------------------------------------
// An fp32 NCHW array [N,C,H,W] (x, y, w as [O,C/g,KH,KW], their gradients) and its staged copy [N,C,PH,PW]
// (or [N,PH,PW,C] when nhwc) of bf16 bits or floats, holding the array at (top, left) with zeros around.

struct stage_view {
    int n, c, h, w;        // the host's array
    int ph, pw, top, left; // the staged size and the array's place in it
};

static stage_view unpadded(int n, int c, int h, int w) { return {n, c, h, w, h, w, 0, 0}; }

// whether every element of the host's array has a place in the staged copy: not so for an input whose last
// rows or columns no window reaches (stride > 1 with little padding after), which the staging leaves out
static bool covers(const stage_view &v) { return v.top + v.h <= v.ph && v.left + v.w <= v.pw; }

static size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

// whether an operand cuDNN would see as it is lies off a 16-byte boundary (see the top of the file)
static bool misaligned(const void *p) { return ((uintptr_t)p & 15) != 0; }

static size_t staged_bytes(const stage_view &v, int bf16)
{
    return aligned((bf16 ? sizeof(uint16_t) : sizeof(float)) * (size_t)v.n * v.c * v.ph * v.pw);
}

// staged element i -> the host array's index, or -1 in the padding
__device__ static int64_t host_index(const stage_view &v, int nhwc, int64_t i)
{
    int ch, py, px;
    if (nhwc) ch = (int)(i % v.c), px = (int)(i / v.c % v.pw), py = (int)(i / ((int64_t)v.c * v.pw) % v.ph);
    else px = (int)(i % v.pw), py = (int)(i / v.pw % v.ph), ch = (int)(i / ((int64_t)v.pw * v.ph) % v.c);
    int64_t img = i / ((int64_t)v.c * v.ph * v.pw);
    int iy = py - v.top, ix = px - v.left;
    return iy >= 0 && iy < v.h && ix >= 0 && ix < v.w ? ((img * v.c + ch) * v.h + iy) * v.w + ix : -1;
}

__device__ static void store(float *dst, float v) { *dst = v; }
__device__ static void store(uint16_t *dst, float v) { *dst = (uint16_t)tsk_bf16_bits(v); }
__device__ static float load(const float *src) { return *src; }
__device__ static float load(const uint16_t *src) { return __uint_as_float((uint32_t)*src << 16); }

template <typename T>
static void stage_in(const stage_view v, int nhwc, const float *src, T *dst)
{
    tsk_each((int64_t)v.n * v.c * v.ph * v.pw, "conv2d staging", [=] __device__(int64_t i) {
        int64_t at = host_index(v, nhwc, i);
        store(dst + i, at >= 0 ? src[at] : 0.0f);
    });
}

// the array back out of its staged copy (the padding dropped), overwriting dst or added to it
template <typename T>
static void stage_out(const stage_view v, int nhwc, const T *src, float *dst, int add)
{
    tsk_each((int64_t)v.n * v.c * v.ph * v.pw, "conv2d unstaging", [=] __device__(int64_t i) {
        int64_t at = host_index(v, nhwc, i);
        if (at >= 0) dst[at] = add ? dst[at] + load(src + i) : load(src + i);
    });
}

// One operand as cuDNN sees it: the host's array itself, or its staged copy at offset in the workspace
// (the staged copies first, one after the other, each 256-byte aligned; cuDNN's own workspace after them).
struct operand {
    stage_view view;
    bool staged;
    size_t offset;
    void *at;
};

static operand operand_of(const stage_view &v, bool staged, const conv_plan *p, const void *host, size_t *used)
{
    operand o = {v, staged, *used, (void *)host};
    if (staged) *used += staged_bytes(v, p->bf16);
    return o;
}

static void locate(operand *o, char *workspace)
{
    if (o->staged) o->at = workspace + o->offset;
}

static void copy_in(const operand &o, const conv_plan *p, const float *src)
{
    if (!o.staged) return;
    if (p->bf16) stage_in(o.view, p->nhwc, src, (uint16_t *)o.at);
    else stage_in(o.view, p->nhwc, src, (float *)o.at);
}

static void copy_out(const operand &o, const conv_plan *p, float *dst, int add)
{
    if (!o.staged) return;
    if (p->bf16) stage_out(o.view, p->nhwc, (const uint16_t *)o.at, dst, add);
    else stage_out(o.view, p->nhwc, (const float *)o.at, dst, add);
}

// the input (or its gradient): staged when padded explicitly or in bf16
static stage_view input_view(const tsk_conv2d_shape *s, const conv_plan *p)
{
    int ph = input_h(s, p), pw = input_w(s, p);
    return {s->n, s->c, s->h, s->w, ph, pw, p->padded_h ? s->pad_top : 0, p->padded_w ? s->pad_left : 0};
}

static stage_view output_view(const tsk_conv2d_shape *s) { return unpadded(s->n, s->o, s->oh, s->ow); }
static stage_view weight_view(const tsk_conv2d_shape *s) { return unpadded(s->o, s->c / s->groups, s->kh, s->kw); }

static const float one = 1.0f, zero = 0.0f;

void tsk_cuda_conv2d_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y)
{
    // an empty batch: nothing to compute, and cuDNN refuses a dimension of 0 (CUDNN_STATUS_BAD_PARAM: the layer
    // failed with "no algorithm in any staging" where the CPU gives an empty output)
    if (s->n == 0) return;
    conv_plan *p = plan_for(s);
    if (!p) return;
    const conv_descriptors &d = p->d;
    size_t used = 0;
    operand xs = operand_of(input_view(s, p), p->bf16 || p->padded_h || misaligned(x), p, x, &used);
    operand wo = operand_of(weight_view(s), p->bf16 || misaligned(w), p, w, &used);
    operand ys = operand_of(output_view(s), p->bf16 || misaligned(y), p, y, &used);
    char *ws = (char *)tsk_cuda_workspace(used + p->fwd_bytes + 256);
    if (ws) {
        locate(&xs, ws), locate(&wo, ws), locate(&ys, ws);
        copy_in(xs, p, x);
        copy_in(wo, p, w);
        if (tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->fwd_math), "conv2d math") &&
            tsk_dnn_ok(cudnnConvolutionForward(tsk_ctx.dnn, &one, d.x, xs.at, d.w, wo.at, d.conv, p->fwd, ws + used,
                                               p->fwd_bytes, &zero, d.y, ys.at),
                       "cudnnConvolutionForward")) {
            copy_out(ys, p, y, 0);
            if (bias) tsk_dnn_ok(cudnnAddTensor(tsk_ctx.dnn, &one, d.bias, bias, &one, d.y_host, y), "conv2d bias");
            if (s->relu) tsk_cuda_activation_forward((int64_t)s->n * s->o * s->oh * s->ow, 0, 0.0f, y, y);   // fused ReLU
        }
    }
    tsk_launch_ok("its staging, bias and ReLU kernels");
}

void tsk_cuda_conv2d_backward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                              float *gw, float *gb)
{
    // an empty batch (see the forward): gx is empty, and nothing is added to gw and gb
    if (s->n == 0) return;
    conv_plan *p = plan_for(s);
    if (!p) return;
    const conv_descriptors &d = p->d;
    bool stage_x = p->bf16 || p->padded_h;
    size_t used = 0;
    operand xs = operand_of(input_view(s, p), (stage_x || misaligned(x)) && gw, p, x, &used);
    operand wo = operand_of(weight_view(s), (p->bf16 || misaligned(w)) && gx, p, w, &used);
    operand gys = operand_of(output_view(s), p->bf16 || misaligned(gy), p, gy, &used);
    operand gxs = operand_of(input_view(s, p), (stage_x || misaligned(gx)) && gx, p, gx, &used);
    operand gws = operand_of(weight_view(s), (p->bf16 || misaligned(gw)) && gw, p, gw, &used);
    size_t algo_bytes = p->data_bytes > p->filter_bytes ? p->data_bytes : p->filter_bytes;
    char *ws = (char *)tsk_cuda_workspace(used + algo_bytes + 256);
    if (ws) {
        locate(&xs, ws), locate(&wo, ws), locate(&gys, ws), locate(&gxs, ws), locate(&gws, ws);
        char *algo_ws = ws + used;
        if (gw) copy_in(xs, p, x);
        if (gx) copy_in(wo, p, w);
        copy_in(gys, p, gy);
        // a staged weight gradient starts from zero and is added to gw after; cuDNN adds to gw itself otherwise
        const float *gw_beta = gws.staged ? &zero : &one;
        if (gw && tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->filter_math), "conv2d math") &&
            tsk_dnn_ok(cudnnConvolutionBackwardFilter(tsk_ctx.dnn, &one, d.x, xs.at, d.y, gys.at, d.conv, p->bwd_filter, algo_ws,
                                                      p->filter_bytes, gw_beta, d.w, gws.at),
                       "cudnnConvolutionBackwardFilter"))
            copy_out(gws, p, gw, 1);
        if (gx && tsk_dnn_ok(cudnnSetConvolutionMathType(d.conv, p->data_math), "conv2d math") &&
            tsk_dnn_ok(cudnnConvolutionBackwardData(tsk_ctx.dnn, &one, d.w, wo.at, d.y, gys.at, d.conv, p->bwd_data, algo_ws,
                                                    p->data_bytes, &zero, d.x, gxs.at),
                       "cudnnConvolutionBackwardData")) {
            // the input left out of the staging reaches no window: its gradient is 0, as on the CPU
            if (gxs.staged && !covers(gxs.view)) tsk_cuda_memset0(gx, sizeof(float) * (size_t)s->n * s->c * s->h * s->w);
            copy_out(gxs, p, gx, 0);
        }
        if (gb) tsk_cuda_channel_sum(s->n, s->o, (int64_t)s->oh * s->ow, gy, gb);
    }
    tsk_launch_ok("its staging and bias-gradient kernels");
}

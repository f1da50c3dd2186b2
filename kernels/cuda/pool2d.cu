// pool2d.cu — max and average pooling over planes [N*C, H, W]: the max scan and the average's window and
// divisor are kernels/pointwise.h's, shared with the CPU.
// Own kernels rather than cuDNN's: the host's signature keeps the argmax indices (cuDNN's backward wants
// x and y again), and avgpool's ceil-mode divisor follows PyTorch. The backward passes gather (one thread
// per input element, summing the windows that cover it) instead of scattering with atomics, so they give
// the same bits every run.
#include "common.cuh"

__global__ void maxpool_forward_kernel(tsk_pool2d_shape s, int64_t total, const float *x, float *y, int32_t *indices)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % s.ow), oy = (int)(i / s.ow % s.oh), at;
        const float *in = x + i / ((int64_t)s.oh * s.ow) * s.h * s.w;
        y[i] = tsk_maxpool_window(&s, in, oy, ox, &at);
        indices[i] = at;
    }
}

// the outputs whose window (start o*stride - pad, length k) covers input position p
__device__ inline void covering(int p, int k, int stride, int pad, int out, int *first, int *last)
{
    int hi = (p + pad) / stride, lo = p + pad - k + 1;
    lo = lo <= 0 ? 0 : (lo + stride - 1) / stride;
    *first = lo;
    *last = hi < out - 1 ? hi : out - 1;
}

// gx[p] = sum of gy over the outputs whose argmax is p: only covering windows can have it
__global__ void maxpool_backward_kernel(tsk_pool2d_shape s, int64_t total, const float *gy, const int32_t *indices,
                                        float *gx)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % s.w), iy = (int)(i / s.w % s.h);
        int64_t plane = i / ((int64_t)s.h * s.w);
        const float *go = gy + plane * s.oh * s.ow;
        const int32_t *idx = indices + plane * s.oh * s.ow;
        int y0, y1, x0, x1, at = iy * s.w + ix;
        covering(iy, s.kh, s.sh, s.ph, s.oh, &y0, &y1);
        covering(ix, s.kw, s.sw, s.pw, s.ow, &x0, &x1);
        float sum = 0;
        for (int oy = y0; oy <= y1; oy++)
            for (int ox = x0; ox <= x1; ox++)
                if (idx[oy * s.ow + ox] == at) sum += go[oy * s.ow + ox];
        gx[i] = sum;
    }
}

__global__ void avgpool_forward_kernel(tsk_pool2d_shape s, int64_t total, const float *x, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % s.ow), oy = (int)(i / s.ow % s.oh);
        const float *in = x + i / ((int64_t)s.oh * s.ow) * s.h * s.w;
        int y0, y1, x0, x1, count = tsk_avgpool_window(&s, oy, ox, &y0, &y1, &x0, &x1);
        float sum = 0;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) sum += in[iy * s.w + ix];
        y[i] = count > 0 ? sum / (float)count : 0.0f;
    }
}

__global__ void avgpool_backward_kernel(tsk_pool2d_shape s, int64_t total, const float *gy, float *gx)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % s.w), iy = (int)(i / s.w % s.h);
        const float *go = gy + i / ((int64_t)s.h * s.w) * s.oh * s.ow;
        int oy0, oy1, ox0, ox1;
        covering(iy, s.kh, s.sh, s.ph, s.oh, &oy0, &oy1);
        covering(ix, s.kw, s.sw, s.pw, s.ow, &ox0, &ox1);
        float sum = 0;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                int y0, y1, x0, x1, count = tsk_avgpool_window(&s, oy, ox, &y0, &y1, &x0, &x1);
                if (count > 0 && iy >= y0 && iy < y1 && ix >= x0 && ix < x1) sum += go[oy * s.ow + ox] / (float)count;
            }
        gx[i] = sum;
    }
}

void tsk_cuda_maxpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y, int32_t *indices)
{
    int64_t total = (int64_t)s->planes * s->oh * s->ow;
    if (total == 0) return;
    maxpool_forward_kernel<<<tsk_blocks(total), TSK_THREADS, 0, tsk_ctx.stream>>>(*s, total, x, y, indices);
    tsk_launch_ok("maxpool2d");
}

void tsk_cuda_maxpool2d_backward(const tsk_pool2d_shape *s, const float *gy, const int32_t *indices, float *gx)
{
    int64_t total = (int64_t)s->planes * s->h * s->w;
    if (total == 0) return;
    maxpool_backward_kernel<<<tsk_blocks(total), TSK_THREADS, 0, tsk_ctx.stream>>>(*s, total, gy, indices, gx);
    tsk_launch_ok("maxpool2d backward");
}

void tsk_cuda_avgpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y)
{
    int64_t total = (int64_t)s->planes * s->oh * s->ow;
    if (total == 0) return;
    avgpool_forward_kernel<<<tsk_blocks(total), TSK_THREADS, 0, tsk_ctx.stream>>>(*s, total, x, y);
    tsk_launch_ok("avgpool2d");
}

void tsk_cuda_avgpool2d_backward(const tsk_pool2d_shape *s, const float *gy, float *gx)
{
    int64_t total = (int64_t)s->planes * s->h * s->w;
    if (total == 0) return;
    avgpool_backward_kernel<<<tsk_blocks(total), TSK_THREADS, 0, tsk_ctx.stream>>>(*s, total, gy, gx);
    tsk_launch_ok("avgpool2d backward");
}

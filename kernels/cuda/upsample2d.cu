// Nearest-neighbour upsampling by whole factors on planes [P, H, W], one thread per output (forward) or input
// (backward) element; the rules are kernels/pointwise.h's, as on the CPU.
#include "common.cuh"

void tsk_cuda_upsample2d_forward(int64_t planes, int h, int w, int sh, int sw, const float *x, float *y)
{
    int oh = h * sh, ow = w * sw;
    tsk_each(planes * oh * ow, "upsample2d", [=] __device__(int64_t e) {
        int64_t p = e / ((int64_t)oh * ow);
        int i = (int)(e / ow % oh), j = (int)(e % ow);
        y[e] = x[p * h * w + tsk_upsample_source(i, j, w, sh, sw)];
    });
}

void tsk_cuda_upsample2d_backward(int64_t planes, int h, int w, int sh, int sw, const float *gy, float *gx)
{
    tsk_each(planes * h * w, "upsample2d backward", [=] __device__(int64_t e) {
        int64_t p = e / ((int64_t)h * w);
        int a = (int)(e / w % h), b = (int)(e % w);
        gx[e] = tsk_upsample_grad(gy + p * h * sh * w * sw, w * sw, a, b, sh, sw);
    });
}

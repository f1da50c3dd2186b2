/* Nearest-neighbour upsampling by whole factors on planes [P, H, W] (kernels/pointwise.h has the rules:
 * tsk_upsample_source for the forward, tsk_upsample_grad for the backward's block sum). */
#include "cpu.h"
#include "../pointwise.h"

/* y [P, H*sh, W*sw] */
void tsk_cpu_upsample2d_forward(int64_t planes, int h, int w, int sh, int sw, const float *x, float *y)
{
    int oh = h * sh, ow = w * sw;
    #pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                y[(p * oh + i) * ow + j] = x[p * h * w + tsk_upsample_source(i, j, w, sh, sw)];
}

/* gx [P, H, W] = the sum of each pixel's sh x sw block of gy */
void tsk_cpu_upsample2d_backward(int64_t planes, int h, int w, int sh, int sw, const float *gy, float *gx)
{
    #pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int a = 0; a < h; a++)
            for (int b = 0; b < w; b++)
                gx[(p * h + a) * w + b] = tsk_upsample_grad(gy + p * h * sh * w * sw, w * sw, a, b, sh, sw);
}

/* Max and average pooling over planes [N*C, H, W], padding implicit (-inf for max, 0 for average).
 * The window of output (oy, ox) covers rows oy*sh - ph ... + kh-1 and columns likewise; the max scan and the
 * average's window and divisor are kernels/pointwise.h's, shared with the GPU. */
#include <string.h>

#include "cpu.h"
#include "../pointwise.h"

/* the common 2x2 window with stride 2 and no padding, without bounds checks; written without branches
 * (selects) so that the compiler vectorizes it and random data costs no mispredictions */
static void maxpool_2x2(const tsk_pool2d_shape *s, const float *in, float *out, int32_t *idx)
{
    int w = s->w, ow = s->ow;
    for (int oy = 0; oy < s->oh; oy++) {
        const float *r0 = in + 2 * oy * w, *r1 = r0 + w;
        float *o = out + oy * ow;
        int32_t *id = idx + oy * ow;
        int row = 2 * oy * w;
        for (int ox = 0; ox < ow; ox++) {
            float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
            float best = a;
            int32_t pos = 0;
            int take = tsk_max_takes(b, best, 0);
            best = take ? b : best, pos = take ? 1 : pos;
            take = tsk_max_takes(c, best, 0);
            best = take ? c : best, pos = take ? w : pos;
            take = tsk_max_takes(d, best, 0);
            best = take ? d : best, pos = take ? w + 1 : pos;
            o[ox] = best;
            id[ox] = row + 2 * ox + pos;
        }
    }
}

void tsk_cpu_maxpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y, int32_t *indices)
{
    int fast = s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 &&
               2 * s->oh <= s->h && 2 * s->ow <= s->w;
    #pragma omp parallel for schedule(static)
    for (int pl = 0; pl < s->planes; pl++) {
        const float *in = x + (int64_t)pl * s->h * s->w;
        float *out = y + (int64_t)pl * s->oh * s->ow;
        int32_t *idx = indices + (int64_t)pl * s->oh * s->ow;
        if (fast) {
            maxpool_2x2(s, in, out, idx);
            continue;
        }
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int at;
                out[oy * s->ow + ox] = tsk_maxpool_window(s, in, oy, ox, &at);
                idx[oy * s->ow + ox] = at;
            }
    }
}

void tsk_cpu_maxpool2d_backward(const tsk_pool2d_shape *s, const float *gy, const int32_t *indices, float *gx)
{
    #pragma omp parallel for schedule(static)
    for (int pl = 0; pl < s->planes; pl++) {
        float *g = gx + (int64_t)pl * s->h * s->w;
        const float *go = gy + (int64_t)pl * s->oh * s->ow;
        const int32_t *idx = indices + (int64_t)pl * s->oh * s->ow;
        memset(g, 0, sizeof(float) * (size_t)s->h * (size_t)s->w);
        for (int i = 0; i < s->oh * s->ow; i++)
            if (idx[i] >= 0) g[idx[i]] += go[i];
    }
}

void tsk_cpu_avgpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y)
{
    #pragma omp parallel for schedule(static)
    for (int pl = 0; pl < s->planes; pl++) {
        const float *in = x + (int64_t)pl * s->h * s->w;
        float *out = y + (int64_t)pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int y0, y1, x0, x1, count = tsk_avgpool_window(s, oy, ox, &y0, &y1, &x0, &x1);
                float sum = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) sum += in[iy * s->w + ix];
                out[oy * s->ow + ox] = count > 0 ? sum / (float)count : 0.0f;
            }
    }
}

void tsk_cpu_avgpool2d_backward(const tsk_pool2d_shape *s, const float *gy, float *gx)
{
    #pragma omp parallel for schedule(static)
    for (int pl = 0; pl < s->planes; pl++) {
        float *g = gx + (int64_t)pl * s->h * s->w;
        const float *go = gy + (int64_t)pl * s->oh * s->ow;
        memset(g, 0, sizeof(float) * (size_t)s->h * (size_t)s->w);
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int y0, y1, x0, x1, count = tsk_avgpool_window(s, oy, ox, &y0, &y1, &x0, &x1);
                if (count <= 0) continue;
                float share = go[oy * s->ow + ox] / (float)count;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) g[iy * s->w + ix] += share;
            }
    }
}

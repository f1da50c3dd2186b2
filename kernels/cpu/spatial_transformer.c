/* The spatial transformer's affine grid and bilinear sampler (kernels/pointwise.h has the math, shared with
 * the CUDA kernels). Shapes: theta [N,2,3], grid [N,OH,OW,2] (x then y, in -1..1), x [N,C,H,W], y [N,C,OH,OW].
 * Samples run in parallel; inside one, the backward's sums run in a fixed order, so results do not depend on
 * the number of threads. */
#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_affine_grid_forward(int64_t n, int h, int w, const float *theta, float *grid)
{
    #pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++) {
        const float *t = theta + s * 6;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float xj = tsk_grid_coord(j, w), yi = tsk_grid_coord(i, h);
                float *g = grid + ((s * h + i) * w + j) * 2;
                g[0] = t[0] * xj + t[1] * yi + t[2];
                g[1] = t[3] * xj + t[4] * yi + t[5];
            }
    }
}

void tsk_cpu_affine_grid_backward(int64_t n, int h, int w, const float *ggrid, float *gtheta)
{
    #pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++) {
        double acc[6] = {0};
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float xj = tsk_grid_coord(j, w), yi = tsk_grid_coord(i, h);
                const float *g = ggrid + ((s * h + i) * w + j) * 2;
                acc[0] += g[0] * xj, acc[1] += g[0] * yi, acc[2] += g[0];
                acc[3] += g[1] * xj, acc[4] += g[1] * yi, acc[5] += g[1];
            }
        for (int k = 0; k < 6; k++) gtheta[s * 6 + k] = (float)acc[k];
    }
}

void tsk_cpu_grid_sample_forward(int64_t n, int c, int h, int w, int oh, int ow, const float *x, const float *grid,
                                 float *y)
{
    #pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++)
        for (int p = 0; p < oh * ow; p++) {
            const float *g = grid + (s * oh * ow + p) * 2;
            tsk_grid_point at = tsk_grid_point_at(tsk_grid_pixel(g[0], w), tsk_grid_pixel(g[1], h));
            for (int ch = 0; ch < c; ch++)
                y[(s * c + ch) * oh * ow + p] = tsk_grid_sample_at(x + (s * c + ch) * h * w, h, w, at, NULL, NULL);
        }
}

void tsk_cpu_grid_sample_backward(int64_t n, int c, int h, int w, int oh, int ow, const float *x, const float *grid,
                                  const float *gy, float *gx, float *ggrid)
{
    #pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; s++) {
        if (gx) memset(gx + s * c * h * w, 0, sizeof(float) * (size_t)c * (size_t)h * (size_t)w);
        for (int p = 0; p < oh * ow; p++) {
            const float *g = grid + (s * oh * ow + p) * 2;
            tsk_grid_point at = tsk_grid_point_at(tsk_grid_pixel(g[0], w), tsk_grid_pixel(g[1], h));
            float dx = 0, dy = 0;
            for (int ch = 0; ch < c; ch++) {
                float go = gy[(s * c + ch) * oh * ow + p], d_ix, d_iy;
                if (ggrid) {
                    tsk_grid_sample_at(x + (s * c + ch) * h * w, h, w, at, &d_ix, &d_iy);
                    dx += go * d_ix, dy += go * d_iy;
                }
                if (gx) tsk_grid_scatter(gx + (s * c + ch) * h * w, h, w, at, go);
            }
            if (ggrid) ggrid[(s * oh * ow + p) * 2] = dx * w * 0.5f, ggrid[(s * oh * ow + p) * 2 + 1] = dy * h * 0.5f;
        }
    }
}

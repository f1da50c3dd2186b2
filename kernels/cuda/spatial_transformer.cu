// The spatial transformer's affine grid and bilinear sampler on the GPU (kernels/pointwise.h has the math, as
// on the CPU). The forwards run one thread per grid point; the affine grid's backward one thread per theta
// entry, summing over its sample's grid in order; the sampler's backward one thread per grid point for ggrid
// (its channels in order) and one per image plane for gx (scattering its grid points in order: no atomics,
// so the result is the same bits every run; a transformer samples the 3-channel input, few planes).
#include "common.cuh"

void tsk_cuda_affine_grid_forward(int64_t n, int h, int w, const float *theta, float *grid)
{
    tsk_each(n * h * w, "affine_grid", [=] __device__(int64_t e) {
        int64_t s = e / ((int64_t)h * w);
        int i = (int)(e / w % h), j = (int)(e % w);
        const float *t = theta + s * 6;
        float xj = tsk_grid_coord(j, w), yi = tsk_grid_coord(i, h);
        grid[e * 2] = t[0] * xj + t[1] * yi + t[2];
        grid[e * 2 + 1] = t[3] * xj + t[4] * yi + t[5];
    });
}

void tsk_cuda_affine_grid_backward(int64_t n, int h, int w, const float *ggrid, float *gtheta)
{
    tsk_each(n * 6, "affine_grid backward", [=] __device__(int64_t e) {
        int64_t s = e / 6;
        int k = (int)(e % 6), row = k / 3, col = k % 3;
        double acc = 0;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float f = col == 0 ? tsk_grid_coord(j, w) : col == 1 ? tsk_grid_coord(i, h) : 1.0f;
                acc += ggrid[((s * h + i) * w + j) * 2 + row] * f;
            }
        gtheta[e] = (float)acc;
    });
}

void tsk_cuda_grid_sample_forward(int64_t n, int c, int h, int w, int oh, int ow, const float *x, const float *grid,
                                  float *y)
{
    tsk_each(n * oh * ow, "grid_sample", [=] __device__(int64_t e) {
        int64_t s = e / ((int64_t)oh * ow);
        int p = (int)(e % ((int64_t)oh * ow));
        tsk_grid_point at = tsk_grid_point_at(tsk_grid_pixel(grid[e * 2], w), tsk_grid_pixel(grid[e * 2 + 1], h));
        for (int ch = 0; ch < c; ch++)
            y[(s * c + ch) * oh * ow + p] = tsk_grid_sample_at(x + (s * c + ch) * h * w, h, w, at, NULL, NULL);
    });
}

void tsk_cuda_grid_sample_backward(int64_t n, int c, int h, int w, int oh, int ow, const float *x, const float *grid,
                                   const float *gy, float *gx, float *ggrid)
{
    if (ggrid)
        tsk_each(n * oh * ow, "grid_sample backward", [=] __device__(int64_t e) {
            int64_t s = e / ((int64_t)oh * ow);
            int p = (int)(e % ((int64_t)oh * ow));
            tsk_grid_point at = tsk_grid_point_at(tsk_grid_pixel(grid[e * 2], w), tsk_grid_pixel(grid[e * 2 + 1], h));
            float dx = 0, dy = 0;
            for (int ch = 0; ch < c; ch++) {
                float go = gy[(s * c + ch) * oh * ow + p], d_ix, d_iy;
                tsk_grid_sample_at(x + (s * c + ch) * h * w, h, w, at, &d_ix, &d_iy);
                dx += go * d_ix, dy += go * d_iy;
            }
            ggrid[e * 2] = dx * w * 0.5f, ggrid[e * 2 + 1] = dy * h * 0.5f;
        });
    if (gx)
        tsk_each(n * c, "grid_sample backward", [=] __device__(int64_t e) {
            int64_t s = e / c;
            float *plane = gx + e * h * w;
            for (int64_t q = 0; q < (int64_t)h * w; q++) plane[q] = 0;
            for (int p = 0; p < oh * ow; p++) {
                const float *g = grid + (s * oh * ow + p) * 2;
                tsk_grid_point at = tsk_grid_point_at(tsk_grid_pixel(g[0], w), tsk_grid_pixel(g[1], h));
                tsk_grid_scatter(plane, h, w, at, gy[e * oh * ow + p]);
            }
        });
}

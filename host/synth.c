/* A generated traffic-sign dataset: every class is a combination of a shape (circle, triangle pointing up
 * or down, octagon, diamond), a palette (red rim on white, blue disc, yellow with black rim) and a glyph
 * (bar, arrow, two dots), drawn anti-aliased at a random position, size and rotation over a random
 * gradient background, under random lighting, blur and noise. Deterministic from the seed, so tests and
 * machines without the real data get something with real structure to learn. */
#include <math.h>
#include <string.h>

#include "internal.h"

typedef ts_splitmix rng;
static uint64_t next_u64(rng *r) { return ts_splitmix_next(r); }
static double uni(rng *r, double lo, double hi) { return ts_splitmix_uniform(r, lo, hi); }

/* inside the shape of radius 1 at (u, v), v pointing down */
static int inside(int shape, double u, double v)
{
    switch (shape) {
    case 0: return u * u + v * v <= 1;
    case 1: return v <= 0.7 && fabs(u) <= 0.95 * (v + 1) / 1.7;        /* triangle, apex up */
    case 2: return v >= -0.7 && fabs(u) <= 0.95 * (1 - v) / 1.7;       /* triangle, apex down */
    case 3: return fmax(fabs(u), fabs(v)) <= 0.92 && fabs(u) + fabs(v) <= 1.3;
    default: return fabs(u) + fabs(v) <= 1;
    }
}

/* the glyph, in the sign's inner coordinates */
static int glyph(int g, double u, double v)
{
    switch (g) {
    case 0: return fabs(v) < 0.12 && fabs(u) < 0.5;                                           /* bar */
    case 1: return (fabs(u) < 0.1 && v > -0.2 && v < 0.5) || (v <= -0.2 && v > -0.55 && fabs(u) < (v + 0.55)); /* arrow */
    default: return (u + 0.25) * (u + 0.25) + v * v < 0.03 || (u - 0.25) * (u - 0.25) + v * v < 0.03;          /* dots */
    }
}

int ts_synth_signs(ts_tensor *images, ts_tensor *labels, int classes, uint64_t seed)
{
    if (ts_require_cpu("synth: images", images) || ts_require_cpu("synth: labels", labels)) return -1;
    char buf[96];
    if (images->dtype != TS_UINT8 || images->ndim != 4 || images->shape[3] != 3 || !ts_tensor_is_contiguous(images))
        return ts_error("synth: images must be contiguous uint8 [N,H,W,3], got %s", ts_shape_str(images, buf, sizeof buf));
    if (labels->dtype != TS_INT64 || labels->ndim != 1 || labels->shape[0] != images->shape[0])
        return ts_error("synth: labels must be int64 [N]");
    if (classes < 1 || classes > 45) return ts_error("synth: 1 to 45 classes, got %d", classes);
    static const float palettes[3][3][3] = {
        {{0.80f, 0.08f, 0.10f}, {0.95f, 0.95f, 0.92f}, {0.05f, 0.05f, 0.05f}},   /* rim, fill, glyph */
        {{0.10f, 0.25f, 0.70f}, {0.12f, 0.35f, 0.80f}, {0.97f, 0.97f, 0.97f}},
        {{0.05f, 0.05f, 0.05f}, {0.95f, 0.80f, 0.10f}, {0.05f, 0.05f, 0.05f}},
    };
    int64_t n = images->shape[0];
    int h = (int)images->shape[1], w = (int)images->shape[2];
    uint8_t *out = ts_tensor_data(images);
    int64_t *lab = ts_tensor_data(labels);
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        rng r = {seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(i + 1))};
        int c = (int)(next_u64(&r) % (uint64_t)classes);
        lab[i] = c;
        int shape = c % 5, pal = (c / 5) % 3, gl = (c / 15) % 3;
        float bg0[3], bg1[3];
        for (int k = 0; k < 3; k++) bg0[k] = (float)uni(&r, 0.1, 0.8), bg1[k] = (float)uni(&r, 0.1, 0.8);
        double cx = w / 2.0 + uni(&r, -2.5, 2.5), cy = h / 2.0 + uni(&r, -2.5, 2.5);
        double radius = uni(&r, 0.32, 0.45) * w, angle = uni(&r, -0.2, 0.2);
        double light = uni(&r, 0.35, 1.3), gamma = exp(uni(&r, -0.4, 0.4)), noise = uni(&r, 0, 0.06);
        double ca = cos(angle), sa = sin(angle);
        uint8_t *img = out + (size_t)i * h * w * 3;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float acc[3] = {0, 0, 0};
                for (int sy = 0; sy < 3; sy++)          /* 3x3 supersampling */
                    for (int sx = 0; sx < 3; sx++) {
                        double px = x + (sx + 0.5) / 3, py = y + (sy + 0.5) / 3;
                        double du = (px - cx) / radius, dv = (py - cy) / radius;
                        double u = ca * du + sa * dv, v = -sa * du + ca * dv;
                        const float *col;
                        float t = (float)(py / h);
                        float bg[3] = {bg0[0] * (1 - t) + bg1[0] * t, bg0[1] * (1 - t) + bg1[1] * t, bg0[2] * (1 - t) + bg1[2] * t};
                        if (!inside(shape, u, v)) col = bg;
                        else if (!inside(shape, u / 0.72, v / 0.72)) col = palettes[pal][0];
                        else if (glyph(gl, u / 0.72, v / 0.72)) col = palettes[pal][2];
                        else col = palettes[pal][1];
                        for (int k = 0; k < 3; k++) acc[k] += col[k];
                    }
                for (int k = 0; k < 3; k++) {
                    double vv = pow(acc[k] / 9.0 * light, gamma) + noise * (uni(&r, -1, 1) + uni(&r, -1, 1));
                    int q = (int)lrint(vv * 255);
                    img[((size_t)y * w + x) * 3 + k] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
                }
            }
    }
    return 0;
}

/* Per-image augmentation and preprocessing on float images [H, W, C] with values in 0..1, C = 1 or 3.
 * One image at a time on the calling thread: the batch builder (host/batch.c) runs them in a worker. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "../pointwise.h"

/* dst [oh, ow, c](x, y) = src [h, w, c](H (x + .5, y + .5, 1) - .5): hm maps output pixel centres to
 * source coordinates (row-major 3x3, projective). Bilinear interpolation; outside the source the nearest
 * edge pixel. */
void tsk_cpu_warp(int h, int w, int oh, int ow, int c, const float *src, float *dst, const double *hm)
{
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int x0, y0, x1, y1;
            float fx, fy;
            tsk_warp_source(hm, x, y, h, w, &x0, &y0, &x1, &y1, &fx, &fy);
            for (int ch = 0; ch < c; ch++)
                dst[((size_t)y * ow + x) * c + ch] =
                    tsk_bilinear(src[((size_t)y0 * w + x0) * c + ch], src[((size_t)y0 * w + x1) * c + ch],
                                 src[((size_t)y1 * w + x0) * c + ch], src[((size_t)y1 * w + x1) * c + ch], fx, fy);
        }
}

void tsk_cpu_shadow(int h, int w, int c, float *img, const tsk_image_plan *plan)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float f = tsk_shadow_factor(plan, x, y);
            for (int ch = 0; ch < c; ch++) img[((size_t)y * w + x) * c + ch] *= f;
        }
}

/* brightness b (multiply), contrast k (around the image's mean luma), saturation s (around each pixel's
 * luma), faded red paint f (tsk_fade_red), hue rotation by `hue` turns (in YIQ), gamma g; each is skipped at
 * its identity value */
void tsk_cpu_color(int n, int c, float *img, float b, float k, float s, float f, float hue, float g)
{
    if (b != 1)
        for (int i = 0; i < n * c; i++) img[i] *= b;
    if (k != 1) {
        double mean = 0;
        for (int i = 0; i < n; i++) mean += c == 3 ? tsk_luma(img + 3 * i) : img[i];
        float m = (float)(mean / n);
        for (int i = 0; i < n * c; i++) img[i] = m + (img[i] - m) * k;
    }
    if (c == 3 && s != 1)
        for (int i = 0; i < n; i++) {
            float *p = img + 3 * i, l = tsk_luma(p);
            for (int ch = 0; ch < 3; ch++) p[ch] = l + (p[ch] - l) * s;
        }
    if (c == 3 && f != 0)
        for (int i = 0; i < n; i++) tsk_fade_red(img + 3 * i, f);
    if (c == 3 && hue != 0) {
        float cs = cosf(6.2831853f * hue), sn = sinf(6.2831853f * hue);
        for (int i = 0; i < n; i++) tsk_hue_rotate(img + 3 * i, cs, sn);
    }
    for (int i = 0; i < n * c; i++) img[i] = img[i] < 0 ? 0 : img[i] > 1 ? 1 : img[i];
    if (g != 1)
        for (int i = 0; i < n * c; i++) img[i] = powf(img[i], g);
}

/* separable Gaussian blur with standard deviation sigma (pixels), edges replicated; tmp has h*w*c floats */
void tsk_cpu_blur(int h, int w, int c, float *img, float *tmp, float sigma)
{
    int r = (int)ceilf(2 * sigma);
    if (r < 1) return;
    if (r > 8) r = 8;
    float k[17], total = 0;
    for (int i = -r; i <= r; i++) total += k[i + r] = expf(-0.5f * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= total;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                float s = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    s += k[i + r] * img[((size_t)y * w + xx) * c + ch];
                }
                tmp[((size_t)y * w + x) * c + ch] = s;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                float s = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    s += k[i + r] * tmp[((size_t)yy * w + x) * c + ch];
                }
                img[((size_t)y * w + x) * c + ch] = s;
            }
}

/* Histogram equalization of a luminance plane lum[n] (0..255), globally or by CLAHE.
 * Global: v -> 255 cdf(v). CLAHE (Zuiderveld): the plane is cut into tiles x tiles regions, each region's
 * histogram is clipped at clip times the mean bin count (the excess spread over all bins), each gets its
 * own cdf mapping, and every pixel blends the mappings of the four nearest region centres bilinearly.
 * maps: room for 256 x tiles x tiles floats (256 for the global one). */
void tsk_cpu_equalize(int h, int w, uint8_t *lum, int clahe, int tiles, float clip, float *maps)
{
    if (!clahe) tiles = 1;
    if (tiles < 1) tiles = 1;
    for (int ty = 0; ty < tiles; ty++)
        for (int tx = 0; tx < tiles; tx++) {
            int y0 = ty * h / tiles, y1 = (ty + 1) * h / tiles, x0 = tx * w / tiles, x1 = (tx + 1) * w / tiles;
            double hist[256] = {0};
            int count = (y1 - y0) * (x1 - x0);
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) hist[lum[y * w + x]] += 1;
            if (clahe && clip > 0) {
                double limit = clip * count / 256.0, excess = 0;
                if (limit < 1) limit = 1;
                for (int v = 0; v < 256; v++)
                    if (hist[v] > limit) excess += hist[v] - limit, hist[v] = limit;
                for (int v = 0; v < 256; v++) hist[v] += excess / 256.0;
            }
            float *map = maps + 256 * (ty * tiles + tx);
            double cdf = 0;
            for (int v = 0; v < 256; v++) {
                cdf += hist[v];
                map[v] = (float)(255.0 * cdf / (count > 0 ? count : 1));
            }
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* position among the region centres */
            float gy = (y + 0.5f) * tiles / h - 0.5f, gx = (x + 0.5f) * tiles / w - 0.5f;
            int ty0 = (int)floorf(gy), tx0 = (int)floorf(gx);
            float fy = gy - ty0, fx = gx - tx0;
            int ty1 = ty0 + 1, tx1 = tx0 + 1;
            if (ty0 < 0) ty0 = 0;
            if (tx0 < 0) tx0 = 0;
            if (ty1 > tiles - 1) ty1 = tiles - 1;
            if (tx1 > tiles - 1) tx1 = tiles - 1;
            if (ty0 > tiles - 1) ty0 = tiles - 1;
            if (tx0 > tiles - 1) tx0 = tiles - 1;
            int v = lum[y * w + x];
            float a = maps[256 * (ty0 * tiles + tx0) + v], b = maps[256 * (ty0 * tiles + tx1) + v];
            float c = maps[256 * (ty1 * tiles + tx0) + v], d = maps[256 * (ty1 * tiles + tx1) + v];
            float out = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
            lum[y * w + x] = (uint8_t)(out < 0 ? 0 : out > 255 ? 255 : out + 0.5f);
        }
}

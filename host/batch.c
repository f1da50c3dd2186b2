/* Batches: uint8 images [N, H, W, C] -> float [B, C', H', W'] through preprocessing and augmentation.
 *
 * Per image: equalize luminance (global or CLAHE) -> 0..1 floats -> label-aware horizontal flip ->
 * one projective warp (rotation, scale, shear, translation, perspective, and the resize to the output
 * size) -> cast shadow -> brightness (and overexposure, absolute or relative to the image's light: the washout), contrast,
 * saturation, hue, gamma -> blur -> noise -> cutout -> grayscale -> (x - mean) / std, channels first. Each
 * image draws its random numbers from its own generator, seeded from the batch seed and its position, so
 * results depend on the seed only, not on threads or timing.
 *
 * For a batch on the GPU the host only draws each image's plan and gathers its uint8 pixels; the GPU
 * does the rest (kernels/cuda/augment.cu). Equalization, blur and noise exist on the CPU only: a batch
 * that asks for them is built on the CPU and copied. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* the CPU backend's augmentation ops (ops.def), which the batch builder calls image by image */
static const tsk_backend *const cpu = &tsk_cpu_backend;

typedef ts_splitmix rng;
static double uniform(rng *r, double lo, double hi) { return ts_splitmix_uniform(r, lo, hi); }
/* log-uniform in [lo, hi] (lo, hi > 0): a gain and its inverse equally likely */
static double log_uniform(rng *r, double lo, double hi) { return exp(uniform(r, log(lo), log(hi))); }
/* img[i] += sd z_i for n standard normal z, drawn in pairs by Marsaglia's polar method: no trigonometry, one
 * logarithm per pair (a fifth of the pairs drawn again). Box-Muller's cosine and logarithm per value were 40%
 * of the augmentation's time. */
static void add_noise(rng *r, float *img, int n, double sd)
{
    for (int i = 0; i < n; i += 2) {
        float u, v, s;
        do {
            u = (float)uniform(r, -1, 1);
            v = (float)uniform(r, -1, 1);
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        float f = (float)sd * sqrtf(-2.0f * logf(s) / s);
        img[i] += u * f;
        if (i + 1 < n) img[i + 1] += v * f;
    }
}

/* the least sigma a blur draws (pixels): a lighter one barely changes a pixel */
#define BLUR_LEAST_SIGMA 0.3

static int has_geometry(const ts_augment *a)
{
    return a && (a->rotate != 0 || a->scale_min != 1 || a->scale_max != 1 || a->translate != 0 || a->shear != 0 ||
                 a->perspective != 0);
}

/* 3x3 products and inverse, row-major */
static void mul3(const double *a, const double *b, double *out)
{
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    memcpy(out, t, sizeof t);
}

static int inv3(const double *m, double *out)
{
    double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
    if (fabs(det) < 1e-12) return -1;
    out[0] = (m[4] * m[8] - m[5] * m[7]) / det;
    out[1] = (m[2] * m[7] - m[1] * m[8]) / det;
    out[2] = (m[1] * m[5] - m[2] * m[4]) / det;
    out[3] = (m[5] * m[6] - m[3] * m[8]) / det;
    out[4] = (m[0] * m[8] - m[2] * m[6]) / det;
    out[5] = (m[2] * m[3] - m[0] * m[5]) / det;
    out[6] = (m[3] * m[7] - m[4] * m[6]) / det;
    out[7] = (m[1] * m[6] - m[0] * m[7]) / det;
    out[8] = (m[0] * m[4] - m[1] * m[3]) / det;
    return 0;
}

/* The forward map from source pixel coordinates to output coordinates: about the image centre,
 * rotate by `rot` degrees, scale, shear by `shear` degrees along x, tilt by the perspective terms, translate
 * (in source pixels), then scale to the output size. */
int ts_augment_matrix(double *forward, int h, int w, int out_h, int out_w, double rot, double scale, double shear,
                      double tx, double ty, double px, double py)
{
    double cx = w / 2.0, cy = h / 2.0, r = rot * M_PI / 180.0, sh = tan(shear * M_PI / 180.0);
    double to_center[9] = {1, 0, -cx, 0, 1, -cy, 0, 0, 1};
    double a[9] = {scale * cos(r), -scale * sin(r), 0, scale * sin(r), scale * cos(r), 0, 0, 0, 1};
    double s[9] = {1, sh, 0, 0, 1, 0, 0, 0, 1};
    double p[9] = {1, 0, 0, 0, 1, 0, px / w, py / h, 1};
    double back[9] = {(double)out_w / w, 0, out_w / 2.0 + tx * out_w / w, 0, (double)out_h / h, out_h / 2.0 + ty * out_h / h,
                      0, 0, 1};
    double m[9];
    mul3(s, to_center, m);
    mul3(a, m, m);
    mul3(p, m, m);
    mul3(back, m, forward);
    return 0;
}

typedef struct {
    float *src, *work, *tmp;   /* H*W*C, and the output size's */
    uint8_t *raw;
} scratch;

static float luma_u8(const uint8_t *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

static int scratch_alloc(scratch *sc, int h, int w, int oh, int ow, int c)
{
    size_t in = (size_t)h * w * c, out = (size_t)oh * ow * c;
    sc->src = malloc(sizeof(float) * in);
    sc->work = malloc(sizeof(float) * out);
    sc->tmp = malloc(sizeof(float) * (out > in ? out : in));
    sc->raw = malloc(in);
    return sc->src && sc->work && sc->tmp && sc->raw ? 0 : ts_error("batch: out of memory");
}

static void scratch_free(scratch *sc)
{
    free(sc->src);
    free(sc->work);
    free(sc->tmp);
    free(sc->raw);
}

/* Equalizes the luminance of a uint8 image [H, W, C] in place: the luma of RGB, each pixel's channels
 * moved by the change of its luma. */
static int equalize(const ts_preprocess *pre, uint8_t *raw, int h, int w, int c)
{
    int n = h * w, clahe = pre->equalize == 2, tiles = clahe ? pre->clahe_tiles : 1;
    float *maps = malloc(sizeof(float) * 256 * (size_t)tiles * (size_t)tiles);
    if (!maps) return ts_error("batch: out of memory");
    if (c != 3) {
        cpu->equalize(h, w, raw, clahe, tiles, (float)pre->clahe_clip, maps);
        free(maps);
        return 0;
    }
    uint8_t *lum = malloc((size_t)n), *before = malloc((size_t)n);
    if (!lum || !before) return free(lum), free(before), free(maps), ts_error("batch: out of memory");
    for (int i = 0; i < n; i++) lum[i] = (uint8_t)lrintf(luma_u8(raw + 3 * i));
    memcpy(before, lum, (size_t)n);
    cpu->equalize(h, w, lum, clahe, tiles, (float)pre->clahe_clip, maps);
    free(maps);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++) {
            int v = raw[3 * i + ch] + lum[i] - before[i];
            raw[3 * i + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    free(lum);
    free(before);
    return 0;
}

/* what a kernel needs (kernels.h), and what only the CPU path uses */
typedef struct {
    tsk_image_plan k;
    int64_t label;
    int flip;
    float blur_sigma;
    double noise_sd;
} image_plan;

/* An image's bright level for the washout, 0..1: the 90th percentile over its pixels of the brightest channel
 * (a histogram of 256 bins), at least 1/10 so that a black frame's gain stays finite and bounded. */
static double bright_level(const uint8_t *raw, int n, int c)
{
    int count[256] = {0};
    for (int i = 0; i < n; i++) {
        const uint8_t *px = raw + (size_t)i * c;
        int m = px[0];
        for (int ch = 1; ch < c; ch++) m = px[ch] > m ? px[ch] : m;
        count[m]++;
    }
    int v = 255, above = 0, tenth = n >= 10 ? n / 10 : 1;
    while (v > 0 && (above += count[v]) < tenth) v--;
    return v < 26 ? 0.1 : v / 255.0;
}

/* the least factor a colour jitter of this spread draws: 1 - spread, but no negative factor */
static double jitter_low(double spread) { return spread < 1 ? 1 - spread : 0; }

/* The random choices for one image (its raw pixels, h x w x c, for the washout's bright level), drawn in a
 * fixed order: flip, geometry, colour, blur, noise level, shadow; the cutout's place is drawn after them all
 * (draw_cutout). */
static int draw_plan(const ts_augment *aug, const int32_t *flip_map, int flip_classes, const uint8_t *raw, int h, int w,
                     int c, int oh, int ow, int64_t label, rng *r, image_plan *p)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->k.brightness = p->k.contrast = p->k.saturation = p->k.gamma = 1;
    if (aug && aug->flip_prob > 0 && flip_map && label >= 0 && label < flip_classes && flip_map[label] >= 0 &&
        uniform(r, 0, 1) < aug->flip_prob) {
        p->flip = 1;
        p->label = flip_map[label];
    }
    /* geometry and resize as one warp: output pixel -> source pixel */
    double rot = 0, scale = 1, shear = 0, tx = 0, ty = 0, px = 0, py = 0;
    if (has_geometry(aug)) {
        rot = uniform(r, -aug->rotate, aug->rotate);
        scale = uniform(r, aug->scale_min, aug->scale_max);
        shear = uniform(r, -aug->shear, aug->shear);
        tx = uniform(r, -aug->translate, aug->translate) * w;
        ty = uniform(r, -aug->translate, aug->translate) * h;
        px = uniform(r, -aug->perspective, aug->perspective);
        py = uniform(r, -aug->perspective, aug->perspective);
    }
    if (has_geometry(aug) || p->flip || oh != h || ow != w) {
        double fwd[9];
        ts_augment_matrix(fwd, h, w, oh, ow, rot, scale, shear, tx, ty, px, py);
        if (p->flip) {   /* mirror the source first: x -> w - x */
            double mirror[9] = {-1, 0, w, 0, 1, 0, 0, 0, 1};
            mul3(fwd, mirror, fwd);
        }
        if (inv3(fwd, p->k.inv)) return ts_error("batch: degenerate augmentation transform");
        p->k.warp = 1;
    }
    if (!aug) return 0;
    /* factors from max(0, 1 - spread), as torchvision's ColorJitter draws them: a spread above 1 gave negative
     * factors, which made black images (brightness), inverted ones (contrast) or complementary colours (saturation) */
    p->k.brightness = (float)uniform(r, jitter_low(aug->brightness), 1 + aug->brightness);
    if (aug->exposure_prob > 0 && uniform(r, 0, 1) < aug->exposure_prob)   /* drawn only when asked for, so */
        p->k.brightness *= (float)log_uniform(r, 1, aug->exposure_max);   /* older plans replay alike */
    if (aug->washout_prob > 0 && uniform(r, 0, 1) < aug->washout_prob)
        p->k.brightness *= (float)(log_uniform(r, 1, aug->washout_max) / bright_level(raw, h * w, c));
    p->k.contrast = (float)uniform(r, jitter_low(aug->contrast), 1 + aug->contrast);
    p->k.saturation = (float)uniform(r, jitter_low(aug->saturation), 1 + aug->saturation);
    if (aug->fade_prob > 0 && uniform(r, 0, 1) < aug->fade_prob)   /* drawn only when asked for (see exposure) */
        p->k.fade = (float)uniform(r, 0, aug->fade_max);
    p->k.hue = (float)uniform(r, -aug->hue, aug->hue);
    p->k.gamma = aug->gamma_min > 0 && aug->gamma_max > 0 ? (float)log_uniform(r, aug->gamma_min, aug->gamma_max) : 1.0f;
    if (aug->blur_prob > 0 && uniform(r, 0, 1) < aug->blur_prob)
        p->blur_sigma = (float)uniform(r, BLUR_LEAST_SIGMA, aug->blur_sigma);
    if (aug->noise > 0) p->noise_sd = uniform(r, 0, aug->noise);
    if (aug->shadow_prob > 0 && uniform(r, 0, 1) < aug->shadow_prob) {   /* drawn last, only when asked for */
        double angle = uniform(r, 0, M_PI), size = oh > ow ? oh : ow;
        double cx = uniform(r, 0, ow), cy = uniform(r, 0, oh);
        p->k.shadow_nx = (float)cos(angle);
        p->k.shadow_ny = (float)sin(angle);
        p->k.shadow_d = (float)(cos(angle) * cx + sin(angle) * cy);   /* the band's centre line passes (cx, cy) */
        p->k.shadow_half = (float)(uniform(r, 0.05, 0.6) * size);
        p->k.shadow_soft = (float)uniform(r, 0.5, 3);
        p->k.shadow_gain = (float)uniform(r, aug->shadow_min, 1);
    }
    return 0;
}

static void draw_cutout(const ts_augment *aug, int oh, int ow, rng *r, image_plan *p)
{
    if (aug && aug->cutout_prob > 0 && aug->cutout_size > 0 && uniform(r, 0, 1) < aug->cutout_prob) {
        int cy = (int)uniform(r, 0, oh), cx = (int)uniform(r, 0, ow);
        p->k.cutout_size = aug->cutout_size;
        p->k.cutout_y = cy - aug->cutout_size / 2;
        p->k.cutout_x = cx - aug->cutout_size / 2;
    }
}

static int prepare_one(const ts_augment *aug, const ts_preprocess *pre, const int32_t *flip_map, int flip_classes,
                       const uint8_t *image, int h, int w, int c, int64_t label_in, int64_t *label_out,
                       float *out, int out_c, int oh, int ow, rng *r, scratch *sc)
{
    int n = h * w;
    memcpy(sc->raw, image, (size_t)n * (size_t)c);
    if (pre && pre->equalize && equalize(pre, sc->raw, h, w, c)) return -1;
    for (int i = 0; i < n * c; i++) sc->src[i] = sc->raw[i] * (1.0f / 255.0f);

    image_plan p;
    if (draw_plan(aug, flip_map, flip_classes, sc->raw, h, w, c, oh, ow, label_in, r, &p)) return -1;
    *label_out = p.label;
    float *img = sc->src;
    if (p.k.warp) {
        cpu->warp(h, w, oh, ow, c, sc->src, sc->work, p.k.inv);
        img = sc->work;
    }
    int on = oh * ow;
    if (aug) {
        if (p.k.shadow_half > 0) cpu->shadow(oh, ow, c, img, &p.k);
        cpu->color(on, c, img, p.k.brightness, p.k.contrast, p.k.saturation, p.k.fade, p.k.hue, p.k.gamma);
        if (p.blur_sigma > 0) cpu->blur(oh, ow, c, img, sc->tmp, p.blur_sigma);
        if (p.noise_sd > 0) add_noise(r, img, on * c, p.noise_sd);
        draw_cutout(aug, oh, ow, r, &p);
        /* the square's part inside the image (a square larger than it once looped over every pixel of the square) */
        int y0 = p.k.cutout_y > 0 ? p.k.cutout_y : 0, x0 = p.k.cutout_x > 0 ? p.k.cutout_x : 0;
        int y1 = p.k.cutout_y + p.k.cutout_size < oh ? p.k.cutout_y + p.k.cutout_size : oh;
        int x1 = p.k.cutout_x + p.k.cutout_size < ow ? p.k.cutout_x + p.k.cutout_size : ow;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                for (int ch = 0; ch < c; ch++) img[((size_t)y * ow + x) * c + ch] = pre ? pre->mean[ch] : 0.0f;
    }
    /* channels first, grayscale if asked, standardized */
    for (int oc = 0; oc < out_c; oc++) {
        float mean = pre ? pre->mean[oc] : 0.0f, sd = pre && pre->std[oc] > 0 ? pre->std[oc] : 1.0f;
        float *plane = out + (size_t)oc * on;
        for (int i = 0; i < on; i++) {
            float v = out_c == 1 && c == 3 ? 0.299f * img[3 * i] + 0.587f * img[3 * i + 1] + 0.114f * img[3 * i + 2]
                                           : img[(size_t)i * c + oc];
            plane[i] = (v - mean) / sd;
        }
    }
    return 0;
}

/* Augmentation settings that would give NaN images, a setting silently off, or a loop of hours: every number
 * finite, probabilities in 0..1, magnitudes in the ranges where the transformations mean something (a gain of
 * 1e300 made NaN pixels, a gamma of 0 turned gamma off, a blur sigma of 5e9 wrapped the kernel's radius to
 * nothing), scales positive. `what` names the caller in the message. */
int ts_augment_check(const char *what, const ts_augment *a)
{
    const struct { const char *name; double v; } f[] = {
        {"rotate", a->rotate}, {"scale_min", a->scale_min}, {"scale_max", a->scale_max}, {"translate", a->translate},
        {"shear", a->shear}, {"perspective", a->perspective}, {"brightness", a->brightness}, {"contrast", a->contrast},
        {"saturation", a->saturation}, {"hue", a->hue}, {"gamma_min", a->gamma_min}, {"gamma_max", a->gamma_max},
        {"exposure_prob", a->exposure_prob}, {"exposure_max", a->exposure_max},
        {"washout_prob", a->washout_prob}, {"washout_max", a->washout_max},
        {"fade_prob", a->fade_prob}, {"fade_max", a->fade_max},
        {"shadow_prob", a->shadow_prob}, {"shadow_min", a->shadow_min},
        {"blur_prob", a->blur_prob}, {"blur_sigma", a->blur_sigma}, {"noise", a->noise},
        {"cutout_prob", a->cutout_prob}, {"flip_prob", a->flip_prob}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!isfinite(f[i].v)) return ts_error("%s: %s is not finite (%g)", what, f[i].name, fabs(f[i].v));
    const struct { const char *name; double v, lo, hi; } r[] = {
        {"rotate (degrees)", a->rotate, 0, 180}, {"translate (a fraction of the size)", a->translate, 0, 1},
        {"shear (degrees)", a->shear, 0, 60}, {"perspective", a->perspective, 0, 0.5},
        {"brightness", a->brightness, 0, 10}, {"contrast", a->contrast, 0, 10}, {"saturation", a->saturation, 0, 10},
        {"hue (turns)", a->hue, 0, 0.5},
        {"the exposure probability", a->exposure_prob, 0, 1}, {"the exposure gain", a->exposure_max, 0, 1000},
        {"the washout probability", a->washout_prob, 0, 1}, {"the washout gain", a->washout_max, 0, 1000},
        {"the fade probability", a->fade_prob, 0, 1}, {"the shadow probability", a->shadow_prob, 0, 1},
        {"the blur probability", a->blur_prob, 0, 1}, {"the blur sigma (pixels; its kernel reaches 8)", a->blur_sigma, 0, 4},
        {"noise", a->noise, 0, 1}, {"the cutout probability", a->cutout_prob, 0, 1},
        {"the cutout size (pixels)", a->cutout_size, 0, 4096}, {"flip", a->flip_prob, 0, 1}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi)
            return ts_error("%s: %s must be in %g..%g, got %g", what, r[i].name, r[i].lo, r[i].hi, r[i].v);
    if (has_geometry(a) && !(a->scale_min >= 1e-3 && a->scale_min <= 100 && a->scale_max >= 1e-3 && a->scale_max <= 100))
        return ts_error("%s: scale must be in 0.001..100, got %g..%g", what, a->scale_min, a->scale_max);
    if (a->scale_min > a->scale_max)   /* as gamma's, and as PyTorch's uniform_ refuses from > to */
        return ts_error("%s: scale must be {lo, hi} with lo <= hi, got %g..%g", what, a->scale_min, a->scale_max);
    if ((a->gamma_min != 0 || a->gamma_max != 0) && !(a->gamma_min > 0 && a->gamma_max >= a->gamma_min && a->gamma_max <= 10))
        return ts_error("%s: gamma must be {lo, hi} with 0 < lo <= hi <= 10, got %g..%g", what, a->gamma_min, a->gamma_max);
    if (a->exposure_prob > 0 && a->exposure_max < 1)
        return ts_error("%s: exposure gain %g must be at least 1", what, a->exposure_max);
    if (a->washout_prob > 0 && a->washout_max < 1)
        return ts_error("%s: washout gain %g must be at least 1", what, a->washout_max);
    if (a->fade_prob > 0 && !(a->fade_max > 0 && a->fade_max <= 1))
        return ts_error("%s: fade %g must be in (0, 1]", what, a->fade_max);
    if (a->shadow_prob > 0 && !(a->shadow_min >= 0 && a->shadow_min < 1))
        return ts_error("%s: shadow gain %g must be in [0, 1)", what, a->shadow_min);
    /* a blur draws its sigma from BLUR_LEAST_SIGMA up: a lower max was blurred at that sigma, above what was asked */
    if (a->blur_prob > 0 && a->blur_sigma < BLUR_LEAST_SIGMA)
        return ts_error("%s: the blur's max sigma %g is below %g, the least sigma a blur draws", what, a->blur_sigma,
                        BLUR_LEAST_SIGMA);
    /* a cutout of no pixels was none at all, a setting silently off (as a fade of 0 is refused) */
    if (a->cutout_prob > 0 && a->cutout_size < 1)
        return ts_error("%s: the cutout size must be at least 1 pixel when its probability is above 0", what);
    return 0;
}

/* Settings a warp, a blur or a division could turn into a crash or NaN images (this is the C API's guard; the
 * bindings check the augmentation when it is made) */
static int check_settings(const ts_augment *a, const ts_preprocess *pre)
{
    if (a && ts_augment_check("batch: augmentation", a)) return -1;
    if (pre) {
        for (int i = 0; i < 3; i++)
            if (!isfinite(pre->mean[i]) || !isfinite(pre->std[i]) || pre->std[i] == 0)
                return ts_error("batch: preprocessing mean/std of channel %d must be finite with std != 0 (got %g, %g)",
                                i + 1, pre->mean[i], pre->std[i]);
        if (pre->out_h < 0 || pre->out_w < 0 || pre->out_h > TS_PREPROCESS_MAX_SIDE || pre->out_w > TS_PREPROCESS_MAX_SIDE)
            return ts_error("batch: output size %dx%d outside 0..%d", pre->out_h, pre->out_w, TS_PREPROCESS_MAX_SIDE);
        if (pre->equalize == 2 && (pre->clahe_tiles < 1 || pre->clahe_tiles > TS_PREPROCESS_MAX_TILES ||
                                   !isfinite(pre->clahe_clip)))
            return ts_error("batch: CLAHE needs 1..%d tiles and a finite clip limit (got %d, %g)", TS_PREPROCESS_MAX_TILES,
                            pre->clahe_tiles,
                            pre->clahe_clip);
    }
    return 0;
}

/* the checks shared by ts_batch_fill and the loader; fills the sizes */
int ts_batch_check(const ts_tensor *images, const ts_tensor *labels, const ts_augment *aug, const ts_preprocess *pre,
                   int *h, int *w, int *c, int *out_c, int *oh, int *ow)
{
    char a[96];
    if (check_settings(aug, pre)) return -1;
    if (ts_require_cpu("batch: images", images) || ts_require_cpu("batch: labels", labels)) return -1;
    if (!images || images->dtype != TS_UINT8 || images->ndim != 4 || !ts_tensor_is_contiguous(images) ||
        (images->shape[3] != 1 && images->shape[3] != 3))
        return ts_error("batch: images must be contiguous uint8 [N,H,W,C] with C = 1 or 3, got %s",
                        images ? ts_shape_str(images, a, sizeof a) : "nothing");
    if (!labels || labels->dtype != TS_INT64 || labels->ndim != 1 || labels->shape[0] != images->shape[0] ||
        !ts_tensor_is_contiguous(labels))
        return ts_error("batch: labels must be contiguous int64 [%lld]", (long long)images->shape[0]);
    *h = (int)images->shape[1], *w = (int)images->shape[2], *c = (int)images->shape[3];
    /* more tiles than pixels a side left tiles of no pixels, whose empty histograms blackened the image */
    if (pre && pre->equalize == 2 && *h > 0 && *w > 0 && (pre->clahe_tiles > *h || pre->clahe_tiles > *w))
        return ts_error("batch: CLAHE's clahe_tiles = %d is more than the %dx%d images have pixels a side", pre->clahe_tiles,
                        *h, *w);
    *out_c = pre && pre->grayscale ? 1 : *c;
    *oh = pre && pre->out_h > 0 ? pre->out_h : *h;
    *ow = pre && pre->out_w > 0 ? pre->out_w : *w;
    return 0;
}

static rng image_rng(uint64_t seed, int i) { return (rng){seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(i + 1))}; }

int ts_batch_device_capable(const ts_augment *aug, const ts_preprocess *pre)
{
    return !(pre && pre->equalize) && !(aug && (aug->blur_prob > 0 || aug->noise > 0));
}

int ts_batch_draw(ts_tensor *raw, tsk_image_plan *plans, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                  const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                  const int32_t *flip_map, int flip_classes, uint64_t seed)
{
    int h, w, c, out_c, oh, ow;
    if (ts_batch_check(images, labels, aug, pre, &h, &w, &c, &out_c, &oh, &ow)) return -1;
    int64_t rs[4] = {count, h, w, c};
    if (ts_check_shape_of("batch: raw images", raw, TS_UINT8, 4, rs) || ts_require_cpu("batch: raw images", raw) ||
        ts_require_cpu("batch: label output", y))
        return -1;
    if (!ts_batch_device_capable(aug, pre)) return ts_error("batch: equalization, blur and noise run on the CPU only");
    int64_t n = images->shape[0];
    size_t bytes = (size_t)h * w * c;
    const uint8_t *base = ts_tensor_data(images);
    const int64_t *lab = ts_tensor_data(labels);
    for (int i = 0; i < count; i++) {
        if (indices[i] < 0 || indices[i] >= n)
            return ts_error("batch: index %lld outside the %lld images", (long long)indices[i] + 1, (long long)n);
        rng r = image_rng(seed, i);
        image_plan p;
        /* the CPU path's draws in its order (the plan, then the cutout), so both devices see the same images */
        const uint8_t *src = base + (size_t)indices[i] * bytes;
        if (draw_plan(aug, flip_map, flip_classes, src, h, w, c, oh, ow, lab[indices[i]], &r, &p)) return -1;
        draw_cutout(aug, oh, ow, &r, &p);
        plans[i] = p.k;
        ((int64_t *)ts_tensor_data(y))[i] = p.label;
        memcpy((uint8_t *)ts_tensor_data(raw) + (size_t)i * bytes, src, bytes);
    }
    return 0;
}

void ts_batch_buffer_free(ts_batch_buffer *b)
{
    ts_tensor_free(b->block);
    b->block = NULL;
    b->read_until = 0;
}

/* the images at the block's start, the plans after them at the next 64-byte boundary */
static size_t plans_offset(size_t image_bytes) { return (image_bytes + 63) / 64 * 64; }

int ts_batch_apply_on_device(ts_tensor *x, const ts_tensor *raw, const tsk_image_plan *plans, int count,
                             const ts_preprocess *pre, ts_batch_buffer *buffer)
{
    int c = (int)raw->shape[3], out_c = pre && pre->grayscale ? 1 : c;
    int64_t xs[4] = {count, out_c, x->ndim == 4 ? x->shape[2] : 0, x->ndim == 4 ? x->shape[3] : 0};
    if (!ts_on_cuda(x) || ts_check_shape("batch: output", x, 4, xs) || raw->shape[0] != count)
        return ts_error("batch: the output must be a CUDA tensor [%d,%d,H,W]", count, out_c);
    const tsk_backend *k = ts_kernels(x);
    if (!k->augment_batch) return ts_kernel_missing(k, "batch: augmentation");
    size_t image_bytes = (size_t)ts_tensor_numel(raw), at = plans_offset(image_bytes);
    size_t plan_bytes = sizeof(tsk_image_plan) * (size_t)count;
    int64_t total[1] = {(int64_t)(at + plan_bytes)};
    int device = x->storage->device;
    ts_batch_buffer temporary = {0};
    ts_batch_buffer *b = buffer ? buffer : &temporary;
    if (!b->block || ts_tensor_numel(b->block) < total[0]) {
        ts_batch_buffer_free(b);
        if (!(b->block = ts_tensor_new_on(device, TS_UINT8, 1, total))) return -1;
        /* a block fresh from the allocator may have been another tensor's, read by work still queued */
        if (buffer) b->read_until = k->mark();
    }
    char *block = ts_tensor_data(b->block);
    int rc = buffer ? k->upload_beside(block, ts_tensor_data(raw), image_bytes, b->read_until) ||
                          k->upload_beside(block + at, plans, plan_bytes, b->read_until)
                    : k->upload(block, ts_tensor_data(raw), image_bytes) || k->upload(block + at, plans, plan_bytes);
    if (rc) rc = (ts_kernel_status(k, "batch upload"), -1);
    float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    for (int i = 0; pre && i < 3; i++) mean[i] = pre->mean[i], std[i] = pre->std[i];
    if (!rc && k->augment_batch(count, (int)raw->shape[1], (int)raw->shape[2], c, (const uint8_t *)block,
                                (const tsk_image_plan *)(block + at), (int)x->shape[2], (int)x->shape[3], out_c, mean,
                                std, ts_f32(x)))
        rc = ts_kernel_status(k, "batch");
    if (buffer) buffer->read_until = k->mark();   /* the augmentation read the block: the next upload waits for it */
    ts_batch_buffer_free(&temporary);
    return rc;
}

/* a batch whose output is on the GPU: drawn here and finished there, or built on the CPU and copied */
static int fill_on_device(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                          const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                          const int32_t *flip_map, int flip_classes, uint64_t seed)
{
    int h, w, c, out_c, oh, ow;
    if (ts_batch_check(images, labels, aug, pre, &h, &w, &c, &out_c, &oh, &ow)) return -1;
    int rc;
    if (ts_batch_device_capable(aug, pre)) {
        int64_t rs[4] = {count, h, w, c};
        ts_tensor *raw = ts_tensor_new(TS_UINT8, 4, rs);
        tsk_image_plan *plans = malloc(sizeof *plans * (size_t)(count > 0 ? count : 1));
        rc = !raw || !plans ? ts_error("batch: out of memory")
             : ts_batch_draw(raw, plans, y, images, labels, indices, count, aug, pre, flip_map, flip_classes, seed) ||
                   ts_batch_apply_on_device(x, raw, plans, count, pre, NULL);
        ts_tensor_free(raw);
        free(plans);
    } else {
        ts_tensor *tmp = ts_tensor_new(TS_FLOAT32, 4, x->shape);
        rc = !tmp || ts_batch_fill_range(tmp, y, images, labels, indices, count, aug, pre, flip_map, flip_classes, seed, 1) ||
             ts_tensor_copy(x, tmp);
        ts_tensor_free(tmp);
    }
    return rc ? -1 : 0;
}

int ts_batch_fill_range(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                        const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                        const int32_t *flip_map, int flip_classes, uint64_t seed, int parallel)
{
    int h, w, c, out_c, oh, ow;
    if (ts_batch_check(images, labels, aug, pre, &h, &w, &c, &out_c, &oh, &ow)) return -1;
    int64_t xs[4] = {count, out_c, oh, ow}, ys[1] = {count};
    if (ts_check_shape("batch: output", x, 4, xs) || ts_require_cpu("batch: label output", y)) return -1;
    if (y->dtype != TS_INT64 || y->ndim != 1 || y->shape[0] != count) return ts_error("batch: label output must be int64 [%d]", count);
    int64_t n = images->shape[0];
    for (int i = 0; i < count; i++)
        if (indices[i] < 0 || indices[i] >= n)
            return ts_error("batch: index %lld outside the %lld images", (long long)indices[i] + 1, (long long)n);
    (void)ys;
    if (ts_on_cuda(x)) return fill_on_device(x, y, images, labels, indices, count, aug, pre, flip_map, flip_classes, seed);
    const uint8_t *base = ts_tensor_data(images);
    const int64_t *lab = ts_tensor_data(labels);
    int64_t *yout = ts_tensor_data(y);
    float *xout = ts_f32(x);
    int failed = 0;
    #pragma omp parallel if (parallel)
    {
        scratch sc = {0};
        int ok = scratch_alloc(&sc, h, w, oh, ow, c) == 0;
        #pragma omp for schedule(static)
        for (int i = 0; i < count; i++) {
            if (!ok) continue;
            rng r = image_rng(seed, i);
            if (prepare_one(aug, pre, flip_map, flip_classes, base + (size_t)indices[i] * h * w * c, h, w, c,
                            lab[indices[i]], &yout[i], xout + (size_t)i * out_c * oh * ow, out_c, oh, ow, &r, &sc))
                ok = 0;
        }
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        scratch_free(&sc);
    }
    return failed ? -1 : 0;
}

int ts_batch_fill(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels, const int64_t *indices,
                  int count, const ts_augment *aug, const ts_preprocess *pre, const int32_t *flip_map, int flip_classes,
                  uint64_t seed)
{
    return ts_batch_fill_range(x, y, images, labels, indices, count, aug, pre, flip_map, flip_classes, seed, 1);
}

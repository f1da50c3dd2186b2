/* Image files and resampling. Images are uint8 tensors [H, W, C], channels last, as files store them.
 *
 * Resizing is separable resampling with a triangle (bilinear) kernel whose support widens with the
 * reduction factor, so shrinking averages every source pixel under the output pixel (area-like, no
 * aliasing) and enlarging interpolates bilinearly; this is what Pillow's BILINEAR resize does, which
 * made the dataset's 32x32 images. An optional region of interest (x1, y1, x2, y2 in source pixels, end
 * exclusive) is cropped first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "internal.h"

/* A decompression bomb (a small file declaring 50000 x 50000 pixels) would take gigabytes before any check
 * could see it, so the header's size is checked first. Pillow's default limit; 0 until first asked. */
static int64_t pixel_limit;

int64_t ts_image_pixel_limit(int64_t limit)
{
    if (limit > 0) pixel_limit = limit;
    if (!pixel_limit) {
        const char *env = getenv("TSHOST_MAX_PIXELS");
        char *end = NULL;
        long long v = env ? strtoll(env, &end, 10) : 0;
        pixel_limit = env && *env && !*end && v > 0 ? v : 89478485;
    }
    return pixel_limit;
}

ts_tensor *ts_image_load(const char *path, int channels)
{
    if (channels < 0 || channels > 4) {
        ts_error("image: channels must be 0 (as stored) to 4, got %d", channels);
        return NULL;
    }
    int w, h, n;
    if (!stbi_info(path, &w, &h, &n)) {
        ts_error("%s: cannot read the image: %s", path, stbi_failure_reason());
        return NULL;
    }
    if (w <= 0 || h <= 0) {
        ts_error("%s: the image declares %d x %d pixels", path, w, h);
        return NULL;
    }
    if ((int64_t)w * h > ts_image_pixel_limit(0)) {
        ts_error("%s: %d x %d pixels is more than the limit of %lld (ts.image.pixelLimit(n) or TSHOST_MAX_PIXELS "
                 "raises it)", path, w, h, (long long)ts_image_pixel_limit(0));
        return NULL;
    }
    unsigned char *pixels = stbi_load(path, &w, &h, &n, channels);
    if (!pixels) {
        ts_error("%s: cannot read the image: %s", path, stbi_failure_reason());
        return NULL;
    }
    int64_t shape[3] = {h, w, channels ? channels : n};
    ts_tensor *t = ts_tensor_from_buffer(TS_UINT8, 3, shape, pixels);
    stbi_image_free(pixels);
    return t;
}

/* true when path ends in ext, ignoring case */
static int has_extension(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcasecmp(path + n - e, ext);
}

static int check_image(const char *what, const ts_tensor *image)
{
    char buf[96];
    if (ts_require_cpu(what, image)) return -1;
    if (image->dtype != TS_UINT8 || image->ndim != 3 || image->shape[2] < 1 || image->shape[2] > 4 ||
        !ts_tensor_is_contiguous(image))
        return ts_error("%s: expected a contiguous uint8 image [H,W,C] with 1 to 4 channels, got %s", what,
                        ts_shape_str(image, buf, sizeof buf));
    return 0;
}

/* stb's PNG writer hands its output in pieces: appended to a growing buffer */
typedef struct {
    unsigned char *data;
    size_t size, capacity;
    int failed;
} byte_buffer;

static void append(void *context, void *data, int size)
{
    byte_buffer *b = context;
    if (b->failed || size <= 0) return;
    if (b->size + (size_t)size > b->capacity) {
        size_t capacity = (b->size + (size_t)size) * 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown, b->capacity = capacity;
    }
    memcpy(b->data + b->size, data, (size_t)size);
    b->size += (size_t)size;
}

ts_tensor *ts_image_encode_png(const ts_tensor *image)
{
    if (check_image("image.encodePng", image)) return NULL;
    int w = (int)image->shape[1], h = (int)image->shape[0], c = (int)image->shape[2];
    byte_buffer b = {0};
    int ok = stbi_write_png_to_func(append, &b, w, h, c, ts_tensor_data(image), w * c);
    ts_tensor *out = NULL;
    if (!ok || b.failed) ts_error("image.encodePng: out of memory encoding a %dx%d image", w, h);
    else out = ts_tensor_from_buffer(TS_UINT8, 1, (int64_t[1]){(int64_t)b.size}, b.data);
    free(b.data);
    return out;
}

int ts_image_save(const char *path, const ts_tensor *image)
{
    if (check_image("image.save", image)) return -1;
    int w = (int)image->shape[1], h = (int)image->shape[0], c = (int)image->shape[2];
    const void *px = ts_tensor_data(image);
    int ok = has_extension(path, ".jpg") || has_extension(path, ".jpeg") ? stbi_write_jpg(path, w, h, c, px, 95)
             : has_extension(path, ".bmp")                               ? stbi_write_bmp(path, w, h, c, px)
             : has_extension(path, ".tga")                               ? stbi_write_tga(path, w, h, c, px)
                                                                         : stbi_write_png(path, w, h, c, px, w * c);
    if (!ok) return ts_error("%s: cannot write the image", path);
    return 0;
}

/* Weights of each output position along one axis: out[i] = sum_k w[i][k] in[first[i] + k]. */
typedef struct {
    int taps;
    int *first;
    float *weights;   /* [out][taps] */
} axis_filter;

static int make_filter(axis_filter *f, int in_size, double start, double length, int out_size)
{
    double scale = length / out_size;
    double support = scale > 1 ? scale : 1.0;   /* the triangle's half-width in source pixels */
    f->taps = (int)ceil(support) * 2 + 1;
    f->first = malloc(sizeof(int) * (size_t)out_size);
    f->weights = calloc((size_t)out_size * (size_t)f->taps, sizeof(float));
    if (!f->first || !f->weights) return ts_error("resize: out of memory");
    for (int i = 0; i < out_size; i++) {
        double center = start + (i + 0.5) * scale;
        int lo = (int)floor(center - support), hi = (int)ceil(center + support);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (hi - lo > f->taps) hi = lo + f->taps;
        double total = 0;
        float *w = f->weights + (size_t)i * (size_t)f->taps;
        for (int x = lo; x < hi; x++) {
            double d = fabs((x + 0.5 - center) / support);
            w[x - lo] = (float)(d < 1 ? 1 - d : 0);
            total += w[x - lo];
        }
        if (total <= 0) {   /* a region narrower than a pixel: take the nearest one */
            int x = (int)floor(center);
            lo = x < 0 ? 0 : x >= in_size ? in_size - 1 : x;
            memset(w, 0, sizeof(float) * (size_t)f->taps);
            w[0] = 1;
            total = 1;
        }
        for (int k = 0; k < f->taps; k++) w[k] = (float)(w[k] / total);
        f->first[i] = lo;
    }
    return 0;
}

static void free_filter(axis_filter *f)
{
    free(f->first);
    free(f->weights);
}

int ts_image_resize(ts_tensor *dst, const ts_tensor *src, const double *roi)
{
    if (ts_require_cpu("resize", dst) || ts_require_cpu("resize", src)) return -1;
    char a[96], b[96];
    if (src->dtype != TS_UINT8 || dst->dtype != TS_UINT8 || src->ndim != 3 || dst->ndim != 3 ||
        src->shape[2] != dst->shape[2] || !ts_tensor_is_contiguous(src) || !ts_tensor_is_contiguous(dst))
        return ts_error("resize: expected contiguous uint8 images [H,W,C] with equal channels, got %s -> %s",
                        ts_shape_str(src, a, sizeof a), ts_shape_str(dst, b, sizeof b));
    int ih = (int)src->shape[0], iw = (int)src->shape[1], c = (int)src->shape[2];
    int oh = (int)dst->shape[0], ow = (int)dst->shape[1];
    if (ih < 1 || iw < 1 || oh < 1 || ow < 1) return ts_error("resize: empty image");
    double x0 = 0, y0 = 0, x1 = iw, y1 = ih;
    if (roi) {
        x0 = roi[0], y0 = roi[1], x1 = roi[2], y1 = roi[3];
        if (!(x0 >= 0 && y0 >= 0 && x1 <= iw && y1 <= ih && x1 > x0 && y1 > y0))
            return ts_error("resize: region %g,%g,%g,%g lies outside the %dx%d image", x0, y0, x1, y1, iw, ih);
    }
    axis_filter fx = {0}, fy = {0};
    float *tmp = malloc(sizeof(float) * (size_t)ih * (size_t)ow * (size_t)c);
    int rc = !tmp ? ts_error("resize: out of memory") : 0;
    if (!rc) rc = make_filter(&fx, iw, x0, x1 - x0, ow);
    if (!rc) rc = make_filter(&fy, ih, y0, y1 - y0, oh);
    if (!rc) {
        const uint8_t *in = ts_tensor_data(src);
        uint8_t *out = ts_tensor_data(dst);
        /* only the rows the vertical pass reads (a region's, for a window cut from a large image):
           first[] does not decrease, so they run from the first output row's first tap to the last's */
        int row_end = fy.first[oh - 1] + fy.taps < ih ? fy.first[oh - 1] + fy.taps : ih;
        for (int y = fy.first[0]; y < row_end; y++)   /* horizontal pass: [ih, iw, c] -> [ih, ow, c] */
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++) {
                    const float *w = fx.weights + (size_t)x * (size_t)fx.taps;
                    float s = 0;
                    for (int k = 0; k < fx.taps && fx.first[x] + k < iw; k++)
                        s += w[k] * in[((size_t)y * iw + (size_t)(fx.first[x] + k)) * c + ch];
                    tmp[((size_t)y * ow + x) * c + ch] = s;
                }
        for (int y = 0; y < oh; y++)   /* vertical pass: [ih, ow, c] -> [oh, ow, c] */
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++) {
                    const float *w = fy.weights + (size_t)y * (size_t)fy.taps;
                    float s = 0;
                    for (int k = 0; k < fy.taps && fy.first[y] + k < ih; k++)
                        s += w[k] * tmp[((size_t)(fy.first[y] + k) * ow + x) * c + ch];
                    int v = (int)lrintf(s);
                    out[((size_t)y * ow + x) * c + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    }
    free_filter(&fx);
    free_filter(&fy);
    free(tmp);
    return rc;
}

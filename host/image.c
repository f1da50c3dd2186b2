/* Image files and resampling. Images are uint8 tensors [H, W, C], channels last, as files store them.
 *
 * Resizing is separable resampling with a triangle (bilinear) kernel whose support widens with the
 * reduction factor, so shrinking averages every source pixel under the output pixel (area-like, no
 * aliasing) and enlarging interpolates bilinearly; this is what Pillow's BILINEAR resize does, which
 * made the dataset's 32x32 images. An optional region of interest (x1, y1, x2, y2 in source pixels, end
 * exclusive) is cropped first. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
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

/* TIFF's numbers (the Exif block is a TIFF file), little-endian ("II") or big-endian ("MM") */
static unsigned tiff_u16(const unsigned char *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t tiff_u32(const unsigned char *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The Exif orientation of a JPEG: how a viewer turns the stored pixels to show the photo (tag 0x0112 of the
 * first image directory: 1 as stored; 2 mirrored; 3 turned 180 degrees; 4 flipped; 5 transposed; 6 turned 90
 * degrees clockwise; 7 transversed; 8 turned 90 degrees anticlockwise). Phones store portrait photos
 * landscape with 6 or 8. 1 when there is none or it cannot be read. */
static int tiff_orientation(const unsigned char *t, size_t n)
{
    if (n < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M'))) return 1;
    int le = t[0] == 'I';
    uint32_t ifd = tiff_u32(t + 4, le);
    if (tiff_u16(t + 2, le) != 42 || ifd < 8 || ifd > n - 2) return 1;
    unsigned count = tiff_u16(t + ifd, le);
    for (unsigned i = 0; i < count && ifd + 2 + 12 * (size_t)(i + 1) <= n; i++) {
        const unsigned char *e = t + ifd + 2 + 12 * (size_t)i;
        if (tiff_u16(e, le) == 0x0112 && tiff_u16(e + 2, le) == 3 && tiff_u32(e + 4, le) == 1) {
            unsigned v = tiff_u16(e + 8, le);   /* one SHORT, held in the entry's first two value bytes */
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

static int exif_orientation(const unsigned char *d, size_t n)
{
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 1;
    size_t at = 2;
    while (at + 4 <= n && d[at] == 0xFF) {
        int marker = d[at + 1];
        if (marker == 0xFF) {   /* a fill byte before the marker */
            at++;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) break;   /* the image data: no header comes after it */
        size_t len = (size_t)d[at + 2] << 8 | d[at + 3];
        if (len < 2 || at + 2 + len > n) break;
        if (marker == 0xE1 && len - 2 >= 6 && !memcmp(d + at + 4, "Exif\0\0", 6))
            return tiff_orientation(d + at + 10, len - 8);
        at += 2 + len;
    }
    return 1;
}

/* The pixels [h, w, c] as a viewer shows them for an Exif orientation: a new buffer (malloc), its size in
 * *dw x *dh (swapped for 5 to 8). Display pixel (x, y) comes from stored pixel (sx, sy). */
static unsigned char *reorient(const unsigned char *px, int w, int h, int c, int orientation, int *dw, int *dh)
{
    int swap = orientation >= 5;
    *dw = swap ? h : w, *dh = swap ? w : h;
    unsigned char *out = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!out) return NULL;
    for (int y = 0; y < *dh; y++)
        for (int x = 0; x < *dw; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x, sy = y; break;
            case 3: sx = w - 1 - x, sy = h - 1 - y; break;
            case 4: sx = x, sy = h - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = h - 1 - x; break;
            case 7: sx = w - 1 - y, sy = h - 1 - x; break;
            case 8: sx = w - 1 - y, sy = x; break;
            default: sx = x, sy = y; break;
            }
            memcpy(out + ((size_t)y * (size_t)*dw + (size_t)x) * (size_t)c, px + ((size_t)sy * (size_t)w + (size_t)sx) * (size_t)c,
                   (size_t)c);
        }
    return out;
}

/* A binary PNM's (P5, P6) header: the offset of its first sample and, in *maxval, its largest sample value; 0 for
 * other files. The magic, width, height and maxval, each after whitespace or comments, then one whitespace byte. */
static size_t pnm_header(const unsigned char *d, size_t n, long *maxval)
{
    if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return 0;
    size_t at = 2;
    *maxval = 0;
    for (int field = 0; field < 3; field++) {
        while (at < n && (d[at] == ' ' || d[at] == '\t' || d[at] == '\n' || d[at] == '\r' || d[at] == '#'))
            if (d[at] == '#') while (at < n && d[at] != '\n') at++;
            else at++;
        long v = 0;
        while (at < n && d[at] >= '0' && d[at] <= '9' && v < 1L << 20) v = v * 10 + (d[at++] - '0');
        if (field == 2) *maxval = v;
    }
    return at + 1;
}

/* The bytes a binary PNM (P5, P6) or an uncompressed BMP with this header needs, or 0 for other files: stb reads
 * these formats without checking that the pixels are all there, and a truncated file came back as an image
 * whose missing part was black. h is the height stb reports (negative for a top-down BMP). */
static size_t declared_bytes(const unsigned char *d, size_t n, int w, int h, int c)
{
    if (h < 0) h = -h;
    if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        uint32_t offset = d[10] | d[11] << 8 | d[12] << 16 | (uint32_t)d[13] << 24;
        uint32_t header = d[14] | d[15] << 8 | d[16] << 16 | (uint32_t)d[17] << 24;
        unsigned bpp;
        if (header == 12) bpp = d[24] | d[25] << 8;   /* OS/2's BITMAPCOREHEADER: 16-bit sizes, no compression */
        else if (n < 34) return 0;
        else {
            uint32_t compression = d[30] | d[31] << 8 | d[32] << 16 | (uint32_t)d[33] << 24;
            if (compression != 0 && compression != 3) return 0;   /* RLE and embedded JPEG/PNG: sizes vary */
            bpp = d[28] | d[29] << 8;
        }
        /* rows padded to 4 bytes, but the last one's padding is not needed (stb reads without it) */
        uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4, last = ((uint64_t)w * bpp + 7) / 8;
        return (size_t)(offset + row * (uint64_t)(h - 1) + last);
    }
    long maxval;
    size_t at = pnm_header(d, n, &maxval);
    return at ? at + (uint64_t)w * h * c * (maxval > 255 ? 2 : 1) : 0;
}

/* stb_image 2.27 and before read a 16-bit PNM's samples in the host's byte order, though the format stores them
 * big-endian: on x86 each sample came back as its low byte. Whether this stb does is asked once, of a one-pixel
 * file, so that a fixed stb is left alone. */
static int pnm16_swapped;
static void probe_pnm16(void)
{
    static const unsigned char probe[] = "P5 1 1 65535\n\x12\x34";
    int w, h, n;
    unsigned char *p = stbi_load_from_memory(probe, (int)sizeof probe - 1, &w, &h, &n, 1);
    pnm16_swapped = p && p[0] == 0x34;
    if (p) stbi_image_free(p);
}
static int stb_swaps_pnm16(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;   /* images may be loaded by several threads */
    pthread_once(&once, probe_pnm16);
    return pnm16_swapped;
}

/* a 16-bit PNM's samples (all there: its size was checked) swapped into the order this stb reads them in */
static void swap_pnm16(unsigned char *d, size_t n, int w, int h, int c)
{
    long maxval;
    size_t at = pnm_header(d, n, &maxval);
    if (!at || maxval <= 255 || !stb_swaps_pnm16()) return;
    for (size_t i = 0, count = (size_t)w * (size_t)h * (size_t)c; i < count; i++) {
        unsigned char hi = d[at + 2 * i];
        d[at + 2 * i] = d[at + 2 * i + 1], d[at + 2 * i + 1] = hi;
    }
}

/* A PNM's samples are shares of its maxval, but stb reads them as they are, as if maxval were 255 (or 65535): the
 * white of a 4-bit PGM (maxval 15) came back as 15 of 255, nearly black. Its samples (all there: its size was
 * checked), still big-endian, scaled to 255 or 65535 in place, as Pillow and netpbm read them. */
static void scale_pnm(unsigned char *d, size_t n, int w, int h, int c)
{
    long maxval;
    size_t at = pnm_header(d, n, &maxval);
    if (!at || maxval < 1 || maxval == 255 || maxval == 65535) return;
    unsigned long full = maxval > 255 ? 65535 : 255;
    for (size_t i = 0, count = (size_t)w * (size_t)h * (size_t)c; i < count; i++) {
        unsigned char *p = d + at + (full == 255 ? i : 2 * i);
        unsigned long v = full == 255 ? p[0] : (unsigned long)p[0] << 8 | p[1];
        v = v >= (unsigned long)maxval ? full : (v * full + (unsigned long)maxval / 2) / (unsigned long)maxval;
        if (full == 255) p[0] = (unsigned char)v;
        else p[0] = (unsigned char)(v >> 8), p[1] = (unsigned char)v;
    }
}

/* why stb_image failed, in its words (it gives none for some files) */
static const char *stb_reason(void)
{
    const char *reason = stbi_failure_reason();
    return reason && *reason ? reason : "stb_image gives no reason";
}

ts_tensor *ts_image_load(const char *path, int channels)
{
    if (channels < 0 || channels > 4) {
        ts_error("image: channels must be 0 (as stored) to 4, got %d", channels);
        return NULL;
    }
    /* read once, then decoded from memory: a pipe can be read only once, and the size checked against the
       limit is then that of the image decoded */
    size_t size = 0;
    /* a file about as large as an image within the pixel limit takes uncompressed (16-bit RGBA, and a header),
       and at most what stb's int lengths hold */
    int64_t pixels_max = ts_image_pixel_limit(0);
    size_t limit = pixels_max < (INT_MAX - (1 << 20)) / 8 ? (size_t)pixels_max * 8 + (1 << 20) : (size_t)INT_MAX;
    unsigned char *data = ts_read_file(path, limit, &size, NULL);
    if (!data) return NULL;
    ts_tensor *t = NULL;
    unsigned char *pixels = NULL, *turned = NULL;
    int w, h, n;
    int image_kind;
    const char *kind = ts_file_kind(data, size, &image_kind);
    int known = size && stbi_info_from_memory(data, (int)size, &w, &h, &n);
    if (known && h < 0 && h > INT_MIN && size >= 2 && data[0] == 'B' && data[1] == 'M') h = -h;   /* a top-down BMP */
    size_t needed = known && w > 0 && h > 0 ? declared_bytes(data, size, w, h, n) : 0;
    if (!size) ts_error("%s: is empty, not an image", path);
    else if (!known) {
        /* stb tries every format in turn, so an image it refuses (too large for stb, or broken) ends with the
           last format's "unknown type": the first bytes say which it was */
        if (image_kind == 2)   /* (it said "Image not of any known type", naming no format) */
            ts_error("%s: is %s, a format tshost does not read (PNG, JPEG, BMP, GIF, TGA, PSD, HDR and PNM it does): "
                     "convert it", path, kind);
        else if (image_kind) ts_error("%s: %s that stb_image cannot read: corrupt, or larger than it decodes", path, kind);
        else if (kind) ts_error("%s: is %s, not an image", path, kind);
        else ts_error("%s: cannot read the image: %s", path, stb_reason());
    } else if (w <= 0 || h <= 0)
        ts_error("%s: the image declares %d x %d pixels", path, w, h);
    else if ((int64_t)w * h > ts_image_pixel_limit(0))
        ts_error("%s: %d x %d pixels is more than the limit of %lld (ts.image.pixelLimit(n) or TSHOST_MAX_PIXELS "
                 "raises it)", path, w, h, (long long)ts_image_pixel_limit(0));
    else if (size < needed)
        ts_error("%s: is truncated: %d x %d pixels need %zu bytes, the file has %zu", path, w, h, needed, size);
    else {
        scale_pnm(data, size, w, h, n);
        swap_pnm16(data, size, w, h, n);
        if (!(pixels = stbi_load_from_memory(data, (int)size, &w, &h, &n, channels))) {
            /* stb's reason is often a format it tried before this one ("Not a PNG" for a truncated JPEG) */
            if (kind) ts_error("%s: %s that is truncated or corrupt", path, kind);
            else ts_error("%s: cannot read the image: %s", path, stb_reason());
        } else {
            int c = channels ? channels : n, orientation = exif_orientation(data, size), dw = w, dh = h;
            if (orientation != 1 && !(turned = reorient(pixels, w, h, c, orientation, &dw, &dh)))
                ts_error("%s: out of memory turning the image upright", path);
            else {
                int64_t shape[3] = {dh, dw, c};
                t = ts_tensor_from_buffer(TS_UINT8, 3, shape, turned ? turned : pixels);
            }
        }
    }
    free(turned);
    if (pixels) stbi_image_free(pixels);
    free(data);
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
    /* an image file holds at least one pixel (a PNG of height 0 is one no reader opens), and stb's int sizes */
    if (image->shape[0] < 1 || image->shape[1] < 1 || image->shape[0] > (1 << 24) || image->shape[1] > (1 << 24) ||
        image->shape[0] * image->shape[1] * image->shape[2] > INT_MAX / 2)
        return ts_error("%s: an image of %s pixels cannot be written (1 to 16,777,216 a side, under 1 GB)", what,
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

/* The file is encoded in memory, then written whole or not at all (ts_write_file; not flushed to the disk, which
 * took about as long as encoding a 320x240 photo): stb's own file writers ignore a failed write, and a full disk gave a truncated
 * image and a success */
int ts_image_save(const char *path, const ts_tensor *image)
{
    if (!path) return ts_error("image.save: no path");
    if (check_image("image.save", image)) return -1;
    int w = (int)image->shape[1], h = (int)image->shape[0], c = (int)image->shape[2];
    const void *px = ts_tensor_data(image);
    byte_buffer b = {0};
    int ok = has_extension(path, ".jpg") || has_extension(path, ".jpeg") ? stbi_write_jpg_to_func(append, &b, w, h, c, px, 95)
             : has_extension(path, ".bmp")                               ? stbi_write_bmp_to_func(append, &b, w, h, c, px)
             : has_extension(path, ".tga")                               ? stbi_write_tga_to_func(append, &b, w, h, c, px)
                                                                         : stbi_write_png_to_func(append, &b, w, h, c, px, w * c);
    int rc = !ok || b.failed ? ts_error("%s: out of memory encoding a %dx%d image", path, w, h)
                             : ts_write_file(path, b.data, b.size, 0);
    free(b.data);
    return rc;
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
        /* a region may reach beyond the image, by at most the image's size (a search window framing a sign
           at the photo's edge): the filters' taps stop at the edge and are renormalized, so the border pixels
           repeat there. It must overlap the image (NaN fails every test). */
        if (!(x1 > x0 && y1 > y0 && x0 < iw && y0 < ih && x1 > 0 && y1 > 0 && x0 >= -iw && y0 >= -ih &&
              x1 <= 2.0 * iw && y1 <= 2.0 * ih))
            return ts_error("resize: region %g,%g,%g,%g is empty, misses the %dx%d image or reaches more than its size "
                            "beyond it", x0, y0, x1, y1, iw, ih);
    }
    /* The horizontal pass filters one source row at a time into row [ow, c], which is added at once into every
     * output row whose vertical taps reach it, in acc [oh, ow, c]: each output row sums its taps in source order,
     * as a vertical pass over a whole filtered copy would, without that copy (a 1 x 4,000,000 strip would need
     * 1.5 GB of it). */
    axis_filter fx = {0}, fy = {0};
    float *row = malloc(sizeof(float) * (size_t)ow * (size_t)c);
    float *acc = calloc((size_t)oh * (size_t)ow * (size_t)c, sizeof(float));
    int rc = !row || !acc ? ts_error("resize: out of memory") : 0;
    if (!rc) rc = make_filter(&fx, iw, x0, x1 - x0, ow);
    if (!rc) rc = make_filter(&fy, ih, y0, y1 - y0, oh);
    if (!rc) {
        const uint8_t *in = ts_tensor_data(src);
        uint8_t *out = ts_tensor_data(dst);
        size_t width = (size_t)ow * (size_t)c;
        /* only the rows the vertical taps read (a region's, for a window cut from a large image): first[] does
           not decrease, so they run from the first output row's first tap to the last's, and the output rows
           a source row y reaches are a run from `low` on */
        int row_end = fy.first[oh - 1] + fy.taps < ih ? fy.first[oh - 1] + fy.taps : ih, low = 0;
        for (int y = fy.first[0]; y < row_end; y++) {
            for (int x = 0; x < ow; x++)   /* horizontal: [iw, c] -> [ow, c] */
                for (int ch = 0; ch < c; ch++) {
                    const float *w = fx.weights + (size_t)x * (size_t)fx.taps;
                    float s = 0;
                    for (int k = 0; k < fx.taps && fx.first[x] + k < iw; k++)
                        s += w[k] * in[((size_t)y * iw + (size_t)(fx.first[x] + k)) * c + ch];
                    row[(size_t)x * c + ch] = s;
                }
            while (low < oh && fy.first[low] + fy.taps <= y) low++;
            for (int o = low; o < oh && fy.first[o] <= y; o++) {   /* vertical: tap y - first[o] of output row o */
                float w = fy.weights[(size_t)o * (size_t)fy.taps + (size_t)(y - fy.first[o])];
                float *a = acc + (size_t)o * width;
                for (size_t i = 0; i < width; i++) a[i] += w * row[i];
            }
        }
        for (size_t i = 0; i < (size_t)oh * width; i++) {
            int v = (int)lrintf(acc[i]);
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free_filter(&fx);
    free_filter(&fy);
    free(row);
    free(acc);
    return rc;
}

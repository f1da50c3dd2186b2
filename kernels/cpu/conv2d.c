/* Convolution as im2col + matrix products, one image per thread at a time (3x3 stride-1 convolutions go to
 * winograd.c instead).
 *
 * Forward, per image n and group g (Cg = C/groups, Og = O/groups, K = Cg*KH*KW, P = OH*OW):
 *   col[K, P]        = im2col(x[n, g*Cg:(g+1)*Cg])
 *   y[n, g*Og.., P]  = w_g[Og, K] @ col[K, P]  (+ bias)
 * Backward:
 *   gw_g[Og, K]     += gy[n, g][Og, P] @ col[K, P]^T        (summed over images: per-thread partials,
 *                                                           added in thread order, so deterministic;
 *                      a partial is kept transposed, [K, Og] += col[K, P] @ gyT[P, Og], gy transposed first
 *                      so that both operands are row-major, the shape the kernels run fastest)
 *   gcol[K, P]       = w_g[Og, K]^T @ gy[n, g][Og, P]
 *   gx[n, g]         = col2im(gcol)                           (the adjoint of im2col)
 * A 1x1 convolution with stride 1 and no padding needs no im2col: col is the input itself.
 *
 * In the bf16 precision the products read their operands packed as bfloat16 pairs (gemm_bf16.c): the
 * weights are packed once per call, the per-image operands as they are made, col one row (or pair of
 * rows) at a time from a small buffer, so that no fp32 col is written and read back. */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../pointwise.h"
#include "bf16_avx512.h"
#include "cpu.h"
#define TSK_SIMD_LANES 8   /* transpose8: the 8x8 register transpose */
#include "simd.h"

static int is_pointwise(const tsk_conv2d_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
           s->oh == s->h && s->ow == s->w;
}

/* Row stride of col (and of packed per-image operands): OH*OW, padded off multiples of 256 elements so
 * that the rows a kernel tile reads together do not all map to the same cache sets (4 KiB aliasing at
 * 32x32 images). */
static int col_stride(const tsk_conv2d_shape *s)
{
    int p = s->oh * s->ow;
    return p % 256 == 0 ? p + 16 : p;
}

/* row r = (c, ki, kj) of col [Cg*KH*KW, OH*OW] for x [Cg, H, W]: input plane c seen through kernel tap
 * (ki, kj), zeros where the tap falls in the padding */
static void im2col_row(const tsk_conv2d_shape *s, const float *x, int r, float *out_row)
{
    int c = r / (s->kh * s->kw), ki = r / s->kw % s->kh, kj = r % s->kw;
    const float *plane = x + (int64_t)c * s->h * s->w;
    int dx = kj * s->dilation_w - s->pad_left;
    for (int oy = 0; oy < s->oh; oy++) {
        int iy = oy * s->stride_h - s->pad_top + ki * s->dilation_h;
        float *out = out_row + oy * s->ow;
        if (iy < 0 || iy >= s->h) {
            memset(out, 0, sizeof(float) * (size_t)s->ow);
            continue;
        }
        const float *in = plane + (int64_t)iy * s->w;
        if (s->stride_w == 1) {
            /* ix = ox + dx: zeros where it falls outside, one contiguous run otherwise */
            int lo = dx < 0 ? -dx : 0, hi = s->w - dx < s->ow ? s->w - dx : s->ow;
            if (hi < lo) hi = lo;
            for (int ox = 0; ox < lo; ox++) out[ox] = 0;
            if (hi > lo) memcpy(out + lo, in + lo + dx, sizeof(float) * (size_t)(hi - lo));
            for (int ox = hi; ox < s->ow; ox++) out[ox] = 0;
        } else {
            for (int ox = 0; ox < s->ow; ox++) {
                int ix = ox * s->stride_w + dx;
                out[ox] = ix >= 0 && ix < s->w ? in[ix] : 0.0f;
            }
        }
    }
}

/* col [Cg*KH*KW, OH*OW] -> x [Cg, H, W], accumulated: each input pixel sums every window it was in */
static void col2im(const tsk_conv2d_shape *s, int cg, const float *col, float *x)
{
    int p = col_stride(s);
    for (int c = 0; c < cg; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                const float *row = col + (int64_t)((c * s->kh + ki) * s->kw + kj) * p;
                float *plane = x + (int64_t)c * s->h * s->w;
                int dx = kj * s->dilation_w - s->pad_left;
                for (int oy = 0; oy < s->oh; oy++) {
                    int iy = oy * s->stride_h - s->pad_top + ki * s->dilation_h;
                    if (iy < 0 || iy >= s->h) continue;
                    const float *in = row + oy * s->ow;
                    float *out = plane + (int64_t)iy * s->w;
                    if (s->stride_w == 1) {
                        int lo = dx < 0 ? -dx : 0, hi = s->w - dx < s->ow ? s->w - dx : s->ow;
                        for (int ox = lo; ox < hi; ox++) out[ox + dx] += in[ox];
                    } else {
                        for (int ox = 0; ox < s->ow; ox++) {
                            int ix = ox * s->stride_w + dx;
                            if (ix >= 0 && ix < s->w) out[ix] += in[ox];
                        }
                    }
                }
            }
}

/* out[cols, rows] = in[rows, cols]^T: 8x8 register blocks, the ragged edges element by element */
static void transpose(int rows, int cols, const float *in, float *out)
{
    int r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (int r = 0; r < r8; r += 8)
        for (int c = 0; c < c8; c += 8) transpose8(in + (int64_t)r * cols + c, cols, out + (int64_t)c * rows + r, rows);
    for (int r = 0; r < rows; r++)
        for (int c = r < r8 ? c8 : 0; c < cols; c++) out[(int64_t)c * rows + r] = in[(int64_t)r * cols + c];
}

/* One operand of a product as the kernels read it: fp32 elements, or bf16 pairs in the bf16 precision;
 * element (i, r) at p + i*rs + r*cs. */
typedef struct {
    const void *p;
    int64_t rs, cs;
} operand;

/* C[M,N] (=, or += when accumulate) A B over depth elements (K, or K2 pairs); B's rows are contiguous */
static void product(int bf16, int m, int n, int depth, operand a, operand b, float *c, int64_t ldc, int accumulate)
{
    if (bf16) tsk_cpu_gemm_pairs(m, n, depth, a.p, a.rs, a.cs, b.p, b.rs, c, ldc, accumulate);
    else tsk_cpu_gemm_strided(m, n, depth, a.p, a.rs, a.cs, b.p, b.rs, c, ldc, accumulate);
}

static int pairs(int k) { return (k + 1) / 2; }

/* A thread's buffers: col (fp32) or its packed forms, and what the backward pass adds */
typedef struct {
    float *col, *gcol, *gyt, *rows;
    uint32_t *packed, *packed_gy;
} buffers;

/* a scratch buffer when it is needed (want), else NULL; *ok cleared when there was no room */
static void *take(int want, size_t bytes, int *ok)
{
    if (!want) return NULL;
    void *p = tsk_cpu_scratch(bytes);
    if (!p) *ok = 0;
    return p;
}

static void release(buffers *b)
{
    tsk_cpu_scratch_free(b->col), tsk_cpu_scratch_free(b->gcol), tsk_cpu_scratch_free(b->gyt);
    tsk_cpu_scratch_free(b->rows), tsk_cpu_scratch_free(b->packed), tsk_cpu_scratch_free(b->packed_gy);
}

/* A kernel tap (c, ki, kj), row r of col: where its values come from in x [Cg, H, W] */
typedef struct {
    const float *plane;
    int dy, dx;        /* input row = oy*stride_h + dy, input column = ox*stride_w + dx */
} tap;

static tap tap_of(const tsk_conv2d_shape *s, const float *x, int r)
{
    int c = r / (s->kh * s->kw), ki = r / s->kw % s->kh, kj = r % s->kw;
    return (tap){x + (int64_t)c * s->h * s->w, ki * s->dilation_h - s->pad_top, kj * s->dilation_w - s->pad_left};
}

/* 16 values of a tap's row of col at output row oy, columns ox0..ox0+15 (stride_w = 1, so they lie
 * side by side in one input row): zeros in the padding and past the output row's end. Masked lanes are
 * not read. */
__attribute__((target("avx512f"))) static inline __m512 tap16(const tsk_conv2d_shape *s, tap t, int oy, int ox0)
{
    int iy = oy * s->stride_h + t.dy;
    if (iy < 0 || iy >= s->h) return _mm512_setzero_ps();
    int lo = -t.dx - ox0, hi = s->w - t.dx - ox0;   /* lanes lo <= j < hi fall inside the input row */
    if (hi > s->ow - ox0) hi = s->ow - ox0;
    return _mm512_maskz_loadu_ps(first_lanes(hi) & (__mmask16)~first_lanes(lo), t.plane + (int64_t)iy * s->w + ox0 + t.dx);
}

/* col as packed row pairs [K2][P] (rows lc apart), straight from x: no fp32 col in between */
__attribute__((target("avx512f"))) static void pack_col_pairs(const tsk_conv2d_shape *s, int k, const float *x,
                                                              uint32_t *packed, int lc)
{
    for (int q = 0; q < pairs(k); q++) {
        tap t0 = tap_of(s, x, 2 * q);
        int second = 2 * q + 1 < k;
        tap t1 = second ? tap_of(s, x, 2 * q + 1) : t0;
        uint32_t *row = packed + (int64_t)q * lc;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox0 = 0; ox0 < s->ow; ox0 += 16) {
                __m512i v = bf16_bits16(tap16(s, t0, oy, ox0));
                if (second) v = _mm512_or_si512(v, _mm512_slli_epi32(bf16_bits16(tap16(s, t1, oy, ox0)), 16));
                _mm512_mask_storeu_epi32(row + oy * s->ow + ox0, first_lanes(s->ow - ox0), v);
            }
    }
}

/* col's rows as bf16 pairs along P [K][P2], straight from x */
__attribute__((target("avx512f"))) static void pack_col_rows(const tsk_conv2d_shape *s, int k, const float *x,
                                                             uint32_t *packed)
{
    int p = s->oh * s->ow;
    for (int r = 0; r < k; r++) {
        tap t = tap_of(s, x, r);
        uint16_t *row = (uint16_t *)(packed + (int64_t)r * pairs(p));
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox0 = 0; ox0 < s->ow; ox0 += 16)
                _mm512_mask_cvtepi32_storeu_epi16(row + oy * s->ow + ox0, first_lanes(s->ow - ox0),
                                                  bf16_bits16(tap16(s, t, oy, ox0)));
        if (p % 2) row[p] = 0;
    }
}

/* the packing straight from x needs AVX-512 and contiguous taps */
static int packs_from_input(const tsk_conv2d_shape *s) { return s->stride_w == 1 && tsk_cpu_has_avx512(); }

/* col[K, P] as the right-hand operand of the forward product: im2col into col (fp32; the input itself
 * for a 1x1 convolution), or packed row pairs (bf16) */
static operand lower_right(const tsk_conv2d_shape *s, int bf16, int k, const float *xg, buffers *b)
{
    int p = s->oh * s->ow, lc = col_stride(s);
    if (!bf16) {
        if (is_pointwise(s)) return (operand){xg, p, 1};
        for (int r = 0; r < k; r++) im2col_row(s, xg, r, b->col + (int64_t)r * lc);
        return (operand){b->col, lc, 1};
    }
    if (is_pointwise(s)) {
        tsk_cpu_bf16_pack_b(k, p, xg, p, 1, b->packed);
        return (operand){b->packed, p, 1};
    }
    if (packs_from_input(s)) {
        pack_col_pairs(s, k, xg, b->packed, lc);
    } else {   /* two rows of col at a time in b->rows */
        for (int q = 0; q < pairs(k); q++) {
            int rows = 2 * q + 1 < k ? 2 : 1;
            for (int r = 0; r < rows; r++) im2col_row(s, xg, 2 * q + r, b->rows + (int64_t)r * p);
            tsk_cpu_bf16_pack_b(rows, p, b->rows, p, 1, b->packed + (int64_t)q * lc);
        }
    }
    return (operand){b->packed, lc, 1};
}

/* col[K, P] as the left-hand operand of the weight gradient, pairs along P in bf16 */
static operand lower_left(const tsk_conv2d_shape *s, int bf16, int k, const float *xg, buffers *b)
{
    int p = s->oh * s->ow, p2 = pairs(p);
    if (!bf16) return lower_right(s, 0, k, xg, b);
    if (is_pointwise(s)) {
        tsk_cpu_bf16_pack_a(k, p, 1.0f, xg, p, 1, b->packed);
    } else if (packs_from_input(s)) {
        pack_col_rows(s, k, xg, b->packed);
    } else {   /* a row of col at a time in b->rows */
        for (int r = 0; r < k; r++) {
            im2col_row(s, xg, r, b->rows);
            tsk_cpu_bf16_pack_a(1, p, 1.0f, b->rows, p, 1, b->packed + (int64_t)r * p2);
        }
    }
    return (operand){b->packed, p2, 1};
}

/* every group's weights packed for the bf16 products: w_g [Og, K] (forward) or w_g^T [K, Og] (input
 * gradient), groups one after the other */
static uint32_t *pack_weights(const tsk_conv2d_shape *s, const float *w, int transposed)
{
    int og = s->o / s->groups, k = s->c / s->groups * s->kh * s->kw;
    int64_t size = transposed ? (int64_t)k * pairs(og) : (int64_t)og * pairs(k);
    uint32_t *packed = tsk_cpu_scratch(sizeof(uint32_t) * (size_t)(size * s->groups));
    if (!packed) return NULL;
    for (int g = 0; g < s->groups; g++) {
        const float *wg = w + (int64_t)g * og * k;
        if (transposed) tsk_cpu_bf16_pack_a(k, og, 1.0f, wg, 1, k, packed + g * size);
        else tsk_cpu_bf16_pack_a(og, k, 1.0f, wg, k, 1, packed + g * size);
    }
    return packed;
}

void tsk_cpu_conv2d_forward(const tsk_conv2d_shape *requested, const float *x, const float *w, const float *bias, float *y)
{
    tsk_conv2d_shape runs = *requested;   /* in the precision this processor runs */
    runs.math = tsk_cpu_math(requested->math);
    const tsk_conv2d_shape *s = &runs;
    if (tsk_cpu_winograd_applies(s)) {
        tsk_cpu_winograd_forward(s, x, w, bias, y);
        return;
    }
    int cg = s->c / s->groups, og = s->o / s->groups, k = cg * s->kh * s->kw, p = s->oh * s->ow;
    int bf16 = s->math == TSK_MATH_BF16, lc = col_stride(s);
    uint32_t *wp = bf16 ? pack_weights(s, w, 0) : NULL;
    if (bf16 && !wp) return;
    #pragma omp parallel
    {
        /* a thread without room for its buffers skips its images: the call reports the failure */
        buffers b = {0};
        int ok = 1;
        b.packed = take(bf16, sizeof(uint32_t) * (size_t)pairs(k) * (size_t)lc, &ok);
        b.rows = take(bf16, sizeof(float) * 2 * (size_t)p, &ok);
        b.col = take(!bf16 && !is_pointwise(s), sizeof(float) * (size_t)k * (size_t)lc, &ok);
        #pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++)
            for (int g = 0; ok && g < s->groups; g++) {
                const float *xg = x + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                float *yg = y + ((int64_t)n * s->o + (int64_t)g * og) * p;
                operand wa = bf16 ? (operand){wp + (int64_t)g * og * pairs(k), pairs(k), 1}
                                  : (operand){w + (int64_t)g * og * k, k, 1};
                product(bf16, og, p, bf16 ? pairs(k) : k, wa, lower_right(s, bf16, k, xg, &b), yg, p, 0);
                if (bias)
                    for (int o = 0; o < og; o++) {
                        float bo = bias[g * og + o];
                        for (int i = 0; i < p; i++) yg[(int64_t)o * p + i] += bo;
                    }
                if (s->relu)   /* the fused ReLU, while the image's output is in the cache */
                    for (int64_t i = 0; i < (int64_t)og * p; i++) yg[i] = tsk_activation(0, 0.0f, yg[i]);
            }
        release(&b);
    }
    tsk_cpu_scratch_free(wp);
}

void tsk_cpu_conv2d_backward(const tsk_conv2d_shape *requested, const float *x, const float *w, const float *gy,
                             float *gx, float *gw, float *gb)
{
    tsk_conv2d_shape runs = *requested;
    runs.math = tsk_cpu_math(requested->math);
    const tsk_conv2d_shape *s = &runs;
    if (tsk_cpu_winograd_applies(s)) {
        if (gb) tsk_cpu_channel_sum(s->n, s->o, (int64_t)s->oh * s->ow, gy, gb);
        if (gw) tsk_cpu_winograd_backward_filter(s, x, gy, gw);
        if (gx) tsk_cpu_winograd_backward_data(s, w, gy, gx);
        return;
    }
    int cg = s->c / s->groups, og = s->o / s->groups, k = cg * s->kh * s->kw, p = s->oh * s->ow;
    int bf16 = s->math == TSK_MATH_BF16, pointwise = is_pointwise(s), lc = col_stride(s);
    int64_t wsize = (int64_t)s->o * k;
    int threads = omp_get_max_threads();
    size_t partial_bytes = sizeof(float) * (size_t)threads * (size_t)wsize;
    float *partials = gw ? tsk_cpu_scratch(partial_bytes) : NULL;
    uint32_t *wtp = bf16 && gx ? pack_weights(s, w, 1) : NULL;
    if ((gw && !partials) || (bf16 && gx && !wtp)) {
        tsk_cpu_scratch_free(partials);
        tsk_cpu_scratch_free(wtp);
        return;
    }
    if (partials) memset(partials, 0, partial_bytes);
    if (gb) tsk_cpu_channel_sum(s->n, s->o, p, gy, gb);
    #pragma omp parallel num_threads(threads)
    {
        /* a thread without room for its buffers skips its images: the call reports the failure */
        buffers b = {0};
        int ok = 1;
        /* packed: col for the weight gradient; packed_gy: gyT for it, or gy for the input gradient */
        size_t gyt = (size_t)pairs(p) * (size_t)og, gy_pairs = (size_t)pairs(og) * (size_t)p;
        b.gyt = take(gw != NULL, sizeof(float) * (size_t)og * (size_t)p, &ok);
        b.gcol = take(gx && !pointwise, sizeof(float) * (size_t)k * (size_t)lc, &ok);
        b.packed = take(bf16, sizeof(uint32_t) * (size_t)k * (size_t)pairs(p), &ok);
        b.packed_gy = take(bf16, sizeof(uint32_t) * (gyt > gy_pairs ? gyt : gy_pairs), &ok);
        b.rows = take(bf16, sizeof(float) * (size_t)p, &ok);
        b.col = take(!bf16 && gw && !pointwise, sizeof(float) * (size_t)k * (size_t)lc, &ok);
        float *my_gw = partials ? partials + (int64_t)omp_get_thread_num() * wsize : NULL;
        #pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++)
            for (int g = 0; ok && g < s->groups; g++) {
                const float *xg = x + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                const float *gyg = gy + ((int64_t)n * s->o + (int64_t)g * og) * p;
                if (my_gw) {
                    /* [K, Og] += col[K, P] @ gyT[P, Og] */
                    transpose(og, p, gyg, b.gyt);
                    operand right = {b.gyt, og, 1};
                    if (bf16) {
                        tsk_cpu_bf16_pack_b(p, og, b.gyt, og, 1, b.packed_gy);
                        right.p = b.packed_gy;
                    }
                    product(bf16, k, og, bf16 ? pairs(p) : p, lower_left(s, bf16, k, xg, &b), right,
                            my_gw + (int64_t)g * og * k, og, 1);
                }
                if (gx) {
                    /* gcol[K, P] = w_g^T[K, Og] @ gy[Og, P], written straight into gx for a 1x1 convolution */
                    float *gxg = gx + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                    operand wt = bf16 ? (operand){wtp + (int64_t)g * k * pairs(og), pairs(og), 1}
                                      : (operand){w + (int64_t)g * og * k, 1, k};
                    operand right = {gyg, p, 1};
                    if (bf16) {
                        tsk_cpu_bf16_pack_b(og, p, gyg, p, 1, b.packed_gy);
                        right = (operand){b.packed_gy, p, 1};
                    }
                    float *out = pointwise ? gxg : b.gcol;
                    product(bf16, k, p, bf16 ? pairs(og) : og, wt, right, out, pointwise ? p : lc, 0);
                    if (!pointwise) {
                        memset(gxg, 0, sizeof(float) * (size_t)cg * (size_t)s->h * (size_t)s->w);
                        col2im(s, cg, b.gcol, gxg);
                    }
                }
            }
        release(&b);
        if (partials) {
            #pragma omp barrier
            #pragma omp for schedule(static)
            for (int64_t i = 0; i < wsize; i++) {
                /* gw[g*Og + o, j] from the transposed partials [g][j, o] */
                int64_t g = i / ((int64_t)og * k), o = i / k % og, j = i % k;
                int64_t at = g * og * k + j * og + o;
                float acc = 0;
                for (int t = 0; t < threads; t++) acc += partials[(int64_t)t * wsize + at];
                gw[i] += acc;
            }
        }
    }
    tsk_cpu_scratch_free(partials);
    tsk_cpu_scratch_free(wtp);
}

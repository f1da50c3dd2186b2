/* Convolution as im2col + sgemm, one image per thread at a time.
 *
 * Forward, per image n and group g (Cg = C/groups, Og = O/groups, K = Cg*KH*KW, P = OH*OW):
 *   col[K, P]        = im2col(x[n, g*Cg:(g+1)*Cg])
 *   y[n, g*Og.., P]  = w_g[Og, K] @ col[K, P]  (+ bias)
 * Backward:
 *   gw_g[Og, K]     += gy[n, g][Og, P] @ col[K, P]^T        (summed over images: per-thread partials,
 *                                                           added in thread order, so deterministic;
 *                      a partial is kept transposed, [K, Og] += col[K, P] @ gyT[P, Og], gy transposed first
 *                      so that both operands are row-major, the shape the sgemm kernels run fastest)
 *   gcol[K, P]       = w_g[Og, K]^T @ gy[n, g][Og, P]
 *   gx[n, g]         = col2im(gcol)                           (the adjoint of im2col)
 * A 1x1 convolution with stride 1 and no padding needs no im2col: col is the input itself.
 * Every product runs in the shape's compute precision (fp32, or bf16 operands with fp32 sums). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static int is_pointwise(const tsk_conv2d_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
           s->oh == s->h && s->ow == s->w;
}

/* x [Cg, H, W] -> col [Cg*KH*KW, OH*OW], rows col_stride apart */
/* Row stride of col: OH*OW, padded off multiples of 256 floats so that the rows a gemm tile reads
 * together do not all map to the same cache sets (4 KiB aliasing at 32x32 images). */
static int col_stride(const tsk_conv2d_shape *s)
{
    int p = s->oh * s->ow;
    return p % 256 == 0 ? p + 16 : p;
}

static void im2col(const tsk_conv2d_shape *s, int cg, const float *x, float *col)
{
    int p = col_stride(s);
    for (int c = 0; c < cg; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                float *row = col + (int64_t)((c * s->kh + ki) * s->kw + kj) * p;
                const float *plane = x + (int64_t)c * s->h * s->w;
                int dx = kj * s->dilation_w - s->pad_left;
                for (int oy = 0; oy < s->oh; oy++) {
                    int iy = oy * s->stride_h - s->pad_top + ki * s->dilation_h;
                    float *out = row + oy * s->ow;
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

/* C[M,N] (=, or += when accumulate) A B as tsk_cpu_gemm_strided, in the shape's precision; scratch: NULL
 * for fp32, else a thread's buffer of bf16_scratch(s) bytes */
static void product(const tsk_conv2d_shape *s, void *scratch, int m, int n, int k, const float *a, int64_t a_rs,
                    int64_t a_cs, const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    if (s->math == TSK_MATH_BF16)
        tsk_cpu_gemm_bf16(m, n, k, 1.0f, a, a_rs, a_cs, b, ldb, 1, c, ldc, accumulate, scratch);
    else
        tsk_cpu_gemm_strided(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, accumulate);
}

/* the scratch the largest of the three products needs (forward, weight and input gradients) */
static size_t bf16_scratch(const tsk_conv2d_shape *s)
{
    int og = s->o / s->groups, k = s->c / s->groups * s->kh * s->kw, p = s->oh * s->ow;
    size_t f = tsk_cpu_gemm_bf16_scratch(og, p, k), w = tsk_cpu_gemm_bf16_scratch(k, og, p);
    size_t x = tsk_cpu_gemm_bf16_scratch(k, p, og);
    return f > w ? (f > x ? f : x) : (w > x ? w : x);
}

static void *scratch_for(const tsk_conv2d_shape *s) { return s->math == TSK_MATH_BF16 ? malloc(bf16_scratch(s)) : NULL; }

/* out[cols, rows] = in[rows, cols]^T, in 16x16 blocks so both sides stay in cache lines */
static void transpose(int rows, int cols, const float *in, float *out)
{
    for (int r0 = 0; r0 < rows; r0 += 16)
        for (int c0 = 0; c0 < cols; c0 += 16) {
            int r1 = r0 + 16 < rows ? r0 + 16 : rows, c1 = c0 + 16 < cols ? c0 + 16 : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) out[(int64_t)c * rows + r] = in[(int64_t)r * cols + c];
        }
}

void tsk_cpu_conv2d_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y)
{
    int cg = s->c / s->groups, og = s->o / s->groups, k = cg * s->kh * s->kw, p = s->oh * s->ow;
    int pointwise = is_pointwise(s), lc = col_stride(s);
    #pragma omp parallel
    {
        float *col = pointwise ? NULL : malloc(sizeof(float) * (size_t)k * (size_t)lc);
        void *scratch = scratch_for(s);
        #pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++)
            for (int g = 0; g < s->groups; g++) {
                const float *xg = x + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                float *yg = y + ((int64_t)n * s->o + (int64_t)g * og) * p;
                if (!pointwise) im2col(s, cg, xg, col);
                product(s, scratch, og, p, k, w + (int64_t)g * og * k, k, 1, pointwise ? xg : col, pointwise ? p : lc, yg,
                        p, 0);
                if (bias)
                    for (int o = 0; o < og; o++) {
                        float b = bias[g * og + o];
                        for (int i = 0; i < p; i++) yg[(int64_t)o * p + i] += b;
                    }
            }
        free(col);
        free(scratch);
    }
}

void tsk_cpu_conv2d_backward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy,
                             float *gx, float *gw, float *gb)
{
    int cg = s->c / s->groups, og = s->o / s->groups, k = cg * s->kh * s->kw, p = s->oh * s->ow;
    int pointwise = is_pointwise(s), lc = col_stride(s);
    int64_t wsize = (int64_t)s->o * k;
    int threads = omp_get_max_threads();
    float *partials = gw ? calloc((size_t)threads * (size_t)wsize, sizeof(float)) : NULL;
    if (gb) tsk_cpu_channel_sum(s->n, s->o, p, gy, gb);
    #pragma omp parallel num_threads(threads)
    {
        float *col = pointwise || !gw ? NULL : malloc(sizeof(float) * (size_t)k * (size_t)lc);
        float *gcol = pointwise || !gx ? NULL : malloc(sizeof(float) * (size_t)k * (size_t)lc);
        float *my_gw = partials ? partials + (int64_t)omp_get_thread_num() * wsize : NULL;
        float *gyt = gw ? malloc(sizeof(float) * (size_t)og * (size_t)p) : NULL;
        void *scratch = scratch_for(s);
        #pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++)
            for (int g = 0; g < s->groups; g++) {
                const float *xg = x + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                const float *gyg = gy + ((int64_t)n * s->o + (int64_t)g * og) * p;
                const float *wg = w + (int64_t)g * og * k;
                if (my_gw) {
                    if (!pointwise) im2col(s, cg, xg, col);
                    transpose(og, p, gyg, gyt);
                    product(s, scratch, k, og, p, pointwise ? xg : col, pointwise ? p : lc, 1, gyt, og,
                            my_gw + (int64_t)g * og * k, og, 1);
                }
                if (gx) {
                    float *gxg = gx + ((int64_t)n * s->c + (int64_t)g * cg) * s->h * s->w;
                    /* A = w_g^T: A(i, r) = w_g[r, i] */
                    if (pointwise) {
                        product(s, scratch, k, p, og, wg, 1, k, gyg, p, gxg, p, 0);
                    } else {
                        product(s, scratch, k, p, og, wg, 1, k, gyg, p, gcol, lc, 0);
                        memset(gxg, 0, sizeof(float) * (size_t)cg * (size_t)s->h * (size_t)s->w);
                        col2im(s, cg, gcol, gxg);
                    }
                }
            }
        free(col);
        free(gcol);
        free(gyt);
        free(scratch);
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
    free(partials);
}

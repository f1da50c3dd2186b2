/* winograd_lanes.h — the Winograd transforms of winograd.c for one vector width (TSK_SIMD_LANES tiles at a time,
 * one per lane), included by winograd.c once per width inside a target region. The math is in winograd.c's
 * comment; here each run of tiles is loaded with masks (lanes outside the input read nothing and hold 0) and
 * its columns split m ways, so each lane does one tile's arithmetic. Every transform is written once for both
 * tile sizes: the run-level functions take the tile size m as a constant argument of an always-inlined body,
 * which the compiler specializes for m = 2 and m = 4. The bf16 layouts of the transformed operands exist at 16
 * lanes only: bf16 runs only where the processor has AVX512-BF16. */
#include "simd.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- the 1-D transforms, over vectors (winograd.c's B^T, A^T and A) ---- */

/* v = B^T d: a = m + 2 values of a window's row or column */
INLINE void S(input_1d)(int m, const VEC *d, VEC *v)
{
    if (m == 2) {
        v[0] = d[0] - d[2], v[1] = d[1] + d[2], v[2] = d[2] - d[1], v[3] = d[1] - d[3];
        return;
    }
    VEC t0 = d[4] - 4.0f * d[2], t1 = d[3] - 4.0f * d[1], t2 = d[4] - d[2], t3 = 2.0f * (d[3] - d[1]);
    v[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    v[1] = t0 + t1, v[2] = t0 - t1, v[3] = t2 + t3, v[4] = t2 - t3;
    v[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

/* y = A^T x: a values -> the tile's m */
INLINE void S(output_1d)(int m, const VEC *x, VEC *y)
{
    if (m == 2) {
        y[0] = x[0] + x[1] + x[2], y[1] = x[1] - x[2] - x[3];
        return;
    }
    VEC s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
    y[0] = x[0] + s12 + s34, y[1] = d12 + 2.0f * d34, y[2] = s12 + 4.0f * s34, y[3] = d12 + 8.0f * d34 + x[5];
}

/* o = A g: the tile's m values of the output gradient -> a (the adjoint of output_1d) */
INLINE void S(output_gradient_1d)(int m, const VEC *g, VEC *o)
{
    if (m == 2) {
        o[0] = g[0], o[1] = g[0] + g[1], o[2] = g[0] - g[1], o[3] = -g[1];
        return;
    }
    VEC even = g[0] + g[2], odd = g[1] + g[3], even4 = g[0] + 4.0f * g[2], odd8 = 2.0f * g[1] + 8.0f * g[3];
    o[0] = g[0], o[1] = even + odd, o[2] = even - odd, o[3] = even4 + odd8, o[4] = even4 - odd8, o[5] = g[3];
}

/* ---- a run's rows ---- */

/* lanes lo .. hi - 1 of v to p: a whole store when that is all of them, a masked one when some */
INLINE void S(store_lanes)(float *p, VEC v, int lo, int hi)
{
    if (lo <= 0 && hi >= TSK_SIMD_LANES) S(vput)(p, v);
    else if (lo < hi && hi > 0 && lo < TSK_SIMD_LANES) S(vstore)(p, v, S(range)(lo, hi));
}

/* e[k][l] = element m l + k of the m vectors v (m lanes elements in order): the m-way split, by halving twice for 4 */
INLINE void S(split)(int m, const VEC *v, VEC *e)
{
    if (m == 2) {
        S(deinterleave)(v[0], v[1], &e[0], &e[1]);
        return;
    }
    VEC even0, odd0, even1, odd1;
    S(deinterleave)(v[0], v[1], &even0, &odd0);
    S(deinterleave)(v[2], v[3], &even1, &odd1);
    S(deinterleave)(even0, even1, &e[0], &e[2]);
    S(deinterleave)(odd0, odd1, &e[1], &e[3]);
}

/* the inverse of split: v, m vectors of elements in order, from y[k][l] = element m l + k */
INLINE void S(merge)(int m, const VEC *y, VEC *v)
{
    if (m == 2) {
        S(interleave)(y[0], y[1], &v[0], &v[1]);
        return;
    }
    VEC a0, a1, b0, b1;
    S(interleave)(y[0], y[2], &a0, &a1);
    S(interleave)(y[1], y[3], &b0, &b1);
    S(interleave)(a0, b0, &v[0], &v[1]);
    S(interleave)(a1, b1, &v[2], &v[3]);
}

/* The masks of a run's window rows, which start at input column ix0 of a row w wide: the lanes of the m + 1 vectors
 * a row is loaded in (elements 0 .. m lanes + 1 of the window row; the last vector's first two only) that lie
 * inside the row */
typedef struct {
    LANES_T v[5];
} S(row_masks);

INLINE S(row_masks) S(row_masks_of)(int m, int ix0, int w)
{
    enum { LANES = TSK_SIMD_LANES };
    int lo = -ix0, hi = w - ix0;   /* elements lo <= j < hi lie inside the row */
    S(row_masks) r = {0};   /* the masks past m unused */
    for (int q = 0; q <= m; q++) {
        int top = hi - q * LANES;
        r.v[q] = S(range)(lo - q * LANES, q == m && top > 2 ? 2 : top);
    }
    return r;
}

/* a window row of the run's tiles, p its first element: e[k][l] = p[m l + k], k < m + 2 (zeros outside the plane) */
INLINE void S(window_row)(int m, const float *p, const S(row_masks) *mask, VEC *e)
{
    enum { LANES = TSK_SIMD_LANES };
    VEC v[5];
    for (int q = 0; q <= m; q++) v[q] = S(vload)(p + q * LANES, mask->v[q]);
    S(split)(m, v, e);
    e[m] = S(shift_in)(e[0], v[m], 0);
    e[m + 1] = S(shift_in)(e[1], v[m], 1);
}

/* Window row i of a run of several segments: e[k][l] = element m l' + k of the window row of lane l's tile, l' its
 * lane in its segment (zeros outside the plane). The segments' stretches are put together as window_row loads one
 * run's row: v, with each segment's first m count elements from its place m lane on, and v2, the same two elements
 * further on; splitting v gives e[0 .. m - 1], and splitting v2 the last two (which shift_in would take from the next
 * segment at a segment's end). channel: the channel's plane in the first image */
INLINE void S(segments_window_row)(const geometry *g, int m, const float *channel, const segment *seg, int segments, int i,
                                   VEC *e)
{
    enum { LANES = TSK_SIMD_LANES };
    int64_t plane = (int64_t)g->h * g->w, image = (int64_t)g->c * plane;
    VEC v[4], v2[4], split2[4];
    for (int q = 0; q < m; q++) v[q] = v2[q] = S(vzero)();
    for (int s = 0; s < segments; s++) {
        int iy = m * seg[s].ty - g->pt + i, ix0 = m * seg[s].tx - g->pl;
        if (iy < 0 || iy >= g->h) continue;
        const float *p = channel + seg[s].img * image + (int64_t)iy * g->w + ix0;
        int start = m * seg[s].lane, end = start + m * seg[s].count;   /* the places it fills */
        for (int e = 0; e < end - start + 2; e += 16) __builtin_prefetch(p + plane + e, 0, 3);   /* see input_values */
        for (int shift = 0; shift <= 2; shift += 2) {
            /* place start + k holds p[k + shift], which lies inside the row for 0 <= ix0 + k + shift < w */
            int lo = start - ix0 - shift > start ? start - ix0 - shift : start;
            int hi = start + g->w - ix0 - shift < end ? start + g->w - ix0 - shift : end;
            VEC *row = shift ? v2 : v;
            for (int q = start / LANES; q * LANES < end && lo < hi; q++)
                row[q] = S(vload_into)(row[q], p + shift + q * LANES - start, S(range)(lo - q * LANES, hi - q * LANES));
        }
    }
    S(split)(m, v, e);
    S(split)(m, v2, split2);
    e[m] = split2[m - 2], e[m + 1] = split2[m - 1];
}

/* v[xi] = (B^T d B)[xi] of run r's tiles in one channel (channel: its plane in the first image), seg its segments */
INLINE void S(input_values)(const geometry *g, int m, const float *channel, run r, const segment *seg, VEC *v)
{
    int a = m + 2;
    VEC rows[6][6];   /* each window row times B */
    if (r.segments > 1)
        for (int i = 0; i < a; i++) {
            VEC e[6];
            S(segments_window_row)(g, m, channel, seg, r.segments, i, e);
            S(input_1d)(m, e, rows[i]);
        }
    else {   /* one tile row: its window rows loaded whole, with the two elements after them */
        int64_t next = (int64_t)g->h * g->w;
        int iy0 = m * r.ty - g->pt, ix0 = m * r.tx - g->pl;
        S(row_masks) mask = S(row_masks_of)(m, ix0, g->w);
        const float *p = channel + r.img * (int64_t)g->c * next + (int64_t)iy0 * g->w + ix0;
        /* the next channel's window rows: a plane's few rows at a time are streams too short for the hardware
         * prefetchers, and without this the transform waits for memory (the convolution of a batch that is not in the
         * cache took 1.5 times as long); the plane after the image's last is the next image's first */
        for (int i = 0; i < a; i++)
            if (iy0 + i >= 0 && iy0 + i < g->h)
                for (int e = 0; e < m * TSK_SIMD_LANES + 2; e += 16) __builtin_prefetch(p + next + i * g->w + e, 0, 3);
        for (int i = 0; i < a; i++) {
            VEC e[6];
            if (iy0 + i >= 0 && iy0 + i < g->h) S(window_row)(m, p + (int64_t)i * g->w, &mask, e);
            else
                for (int k = 0; k < a; k++) e[k] = S(vzero)();
            S(input_1d)(m, e, rows[i]);
        }
    }
    for (int j = 0; j < a; j++) {   /* B^T times the columns */
        VEC column[6], out[6];
        for (int i = 0; i < a; i++) column[i] = rows[i][j];
        S(input_1d)(m, column, out);
        for (int k = 0; k < a; k++) v[k * a + j] = out[k];
    }
}

/* The transformed input V of a block's runs, x [N, C, H, W], in `layout` (winograd.c), channel by channel so that
 * the runs read one plane's rows in order */
INLINE void S(input_tiles)(const geometry *g, int m, const float *x, const block *b, int layout, void *v)
{
    int xis = (m + 2) * (m + 2);
    int64_t plane = (int64_t)g->h * g->w, vplane = v_plane(g);
    int step = layout == V_BF16_PAIRS ? 2 : 1;
    for (int c = 0; c < g->c; c += step)
        for (int k = 0; k < b->count; k++) {
            run r = b->runs[k];
            const segment *seg = b->segments + r.seg0;
            const float *channel = x + c * plane;
            VEC out[36];
            S(input_values)(g, m, channel, r, seg, out);
            if (layout == V_FP32) {   /* whole vectors: the lanes past the run land where a later run or channel writes, or
                                       * in the matrix's padding (v_plane), and the products read only the block's tiles */
                float *at = (float *)v + (int64_t)c * g->tb + r.at;
                for (int xi = 0; xi < xis; xi++) S(vput)(at + xi * vplane, out[xi]);
                continue;
            }
#if TSK_SIMD_LANES == 16
            LANES_T tiles = S(range)(0, r.count);
            if (layout == V_BF16_PAIRS) {
                VEC high[36];
                if (c + 1 < g->c) S(input_values)(g, m, channel + plane, r, seg, high);
                uint32_t *at = (uint32_t *)v + (int64_t)(c / 2) * g->tb + r.at;
                for (int xi = 0; xi < xis; xi++)
                    vstore_bf16_pairs16(at + xi * vplane, out[xi], c + 1 < g->c ? high[xi] : vzero16(), tiles);
            } else {
                uint16_t *at = (uint16_t *)v + (int64_t)c * 2 * g->tb + r.at2;
                for (int xi = 0; xi < xis; xi++) {
                    vstore_bf16_16(at + 2 * xi * vplane, out[xi], tiles);
                    if (r.count % 2) at[2 * xi * vplane + r.count] = 0;
                }
            }
#endif
        }
}

/* y [N, O, OH, OW] of the tiles of a block's runs = A^T M A (+ bias, through a ReLU when g->relu) from M[xi][o][at + l]
 * (rows TB apart), channel by channel; each output row of a run is put together as one row (merge) and stored in its
 * segments' stretches */
INLINE void S(output_tiles)(const geometry *g, int m, const float *mb, const float *bias, const block *b, float *y)
{
    enum { LANES = TSK_SIMD_LANES };
    int a = m + 2;
    int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->o * plane, ldm = g->tb, mplane = m_plane(g);
    for (int o = 0; o < g->o; o++) {
        VEC shift = S(vset)(bias ? bias[o] : 0.0f);
        for (int k = 0; k < b->count; k++) {
            run r = b->runs[k];
            const segment *seg = b->segments + r.seg0;
            LANES_T tiles = S(range)(0, r.count);
            const float *in = mb + o * ldm + r.at;
            VEC t[4][6];   /* A^T times the columns: t[i][j], row i of the tile */
            for (int j = 0; j < a; j++) {
                VEC column[6], out[4];
                for (int i = 0; i < a; i++) column[i] = S(vload)(in + (i * a + j) * mplane, tiles);
                S(output_1d)(m, column, out);
                for (int i = 0; i < m; i++) t[i][j] = out[i];
            }
            for (int i = 0; i < m; i++) {   /* the rows times A */
                VEC row[4], merged[4];
                S(output_1d)(m, t[i], row);
                for (int q = 0; q < m; q++) {
                    row[q] = row[q] + shift;
                    if (g->relu) row[q] = S(vrelu)(row[q]);
                }
                S(merge)(m, row, merged);
                for (int s = 0; s < r.segments; s++) {
                    int oy = m * seg[s].ty + i, ox = m * seg[s].tx;
                    if (oy >= g->oh) continue;
                    int start = m * seg[s].lane, end = start + (g->ow - ox < m * seg[s].count ? g->ow - ox : m * seg[s].count);
                    float *out = y + seg[s].img * image + o * plane + (int64_t)oy * g->ow + ox - start;   /* place p at out + p */
                    /* the next channel's row, for writing (as the input's, in input_values) */
                    for (int e = start; e < end; e += 16) __builtin_prefetch(out + plane + e, 1, 3);
                    for (int q = start / LANES; q * LANES < end; q++)
                        S(store_lanes)(out + q * LANES, merged[q], start - q * LANES, end - q * LANES);
                }
            }
        }
    }
}

/* The transformed output gradient dM = A gy A^T of a block's runs, gy [N, O, OH, OW] (zeros past the output's edge),
 * tile-major, the right-hand operand of the weight gradient's products (each xi's matrix dmt_plane(g) words apart):
 * fp32, floats dMT[xi][at + l][o]; bf16, 32-bit pairs of tiles (at2 + l even low, the next high) [xi][(at2 + l) / 2][o]
 * (a run of an odd count pairs its last tile with a zero). A run's gy rows are put together from its segments' stretches
 * and split m ways, as the input's; TSK_SIMD_LANES channels at a time go into a small buffer [a^2][channel][lane],
 * transposed out. */
INLINE void S(output_gradient_tiles)(const geometry *g, int m, const float *gy, const block *b, int bf16, void *dmt)
{
    enum { LANES = TSK_SIMD_LANES };
    int a = m + 2, xis = a * a;
    int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->o * plane, dplane = dmt_plane(g);
    float buf[xis][LANES][LANES];   /* a fixed size once m is (the body is inlined with m a constant) */
    for (int o0 = 0; o0 < g->o; o0 += LANES)
        for (int q = 0; q < b->count; q++) {
            run r = b->runs[q];
            const segment *seg = b->segments + r.seg0;
            int group = g->o - o0 < LANES ? g->o - o0 : LANES;
            for (int k = 0; k < group; k++) {
                const float *channel = gy + (o0 + k) * plane;
                VEC h[4][6];   /* the tile's rows times A^T */
                for (int i = 0; i < m; i++) {
                    VEC row[4], split[4];
                    for (int v = 0; v < m; v++) row[v] = S(vzero)();
                    for (int s = 0; s < r.segments; s++) {
                        int oy = m * seg[s].ty + i, ox = m * seg[s].tx;
                        if (oy >= g->oh) continue;
                        int start = m * seg[s].lane, end = start + (g->ow - ox < m * seg[s].count ? g->ow - ox : m * seg[s].count);
                        const float *in = channel + seg[s].img * image + (int64_t)oy * g->ow + ox - start;   /* place p at in + p */
                        for (int e = start; e < end; e += 16) __builtin_prefetch(in + plane + e, 0, 3);   /* the next channel's */
                        for (int v = start / LANES; v * LANES < end; v++)
                            row[v] = S(vload_into)(row[v], in + v * LANES, S(range)(start - v * LANES, end - v * LANES));
                    }
                    S(split)(m, row, split);
                    S(output_gradient_1d)(m, split, h[i]);
                }
                for (int j = 0; j < a; j++) {   /* A times the columns */
                    VEC column[4], out[6];
                    for (int i = 0; i < m; i++) column[i] = h[i][j];
                    S(output_gradient_1d)(m, column, out);
                    for (int i = 0; i < a; i++) S(vput)(buf[i * a + j][k], out[i]);
                }
            }
            for (int k = group; k < LANES; k++)   /* channels past O: zero, never stored */
                for (int xi = 0; xi < xis; xi++) S(vput)(buf[xi][k], S(vzero)());
            for (int xi = 0; xi < xis; xi++) {
                float rows[LANES][LANES];   /* rows[l][k]: tile l's channels; lanes past the run's tiles hold zeros */
                S(transpose)(&buf[xi][0][0], LANES, &rows[0][0], LANES);
                if (!bf16) {
                    float *out = (float *)dmt + xi * dplane + (int64_t)r.at * g->o + o0;
                    for (int l = 0; l < r.count; l++) S(store_lanes)(out + (int64_t)l * g->o, S(vget)(rows[l]), 0, group);
                    continue;
                }
#if TSK_SIMD_LANES == 16
                uint32_t *out = (uint32_t *)dmt + xi * dplane + (int64_t)(r.at2 / 2) * g->o + o0;
                for (int l = 0; l < r.count; l += 2)
                    vstore_bf16_pairs16(out + (int64_t)(l / 2) * g->o, vget16(rows[l]), vget16(rows[l + 1]), range16(0, group));
#endif
            }
        }
}

/* the transforms as winograd.c calls them, each body specialized for the two tile sizes */
static void S(transform_input)(const geometry *g, const float *x, const block *b, int layout, void *v)
{
    if (g->m == 2) S(input_tiles)(g, 2, x, b, layout, v);
    else S(input_tiles)(g, 4, x, b, layout, v);
}

static void S(transform_output)(const geometry *g, const float *mb, const float *bias, const block *b, float *y)
{
    if (g->m == 2) S(output_tiles)(g, 2, mb, bias, b, y);
    else S(output_tiles)(g, 4, mb, bias, b, y);
}

static void S(transform_output_gradient)(const geometry *g, const float *gy, const block *b, int bf16, void *dmt)
{
    if (g->m == 2) S(output_gradient_tiles)(g, 2, gy, b, bf16, dmt);
    else S(output_gradient_tiles)(g, 4, gy, b, bf16, dmt);
}

static const transforms S(transforms_) = {TSK_SIMD_LANES, S(transform_input), S(transform_output),
                                          S(transform_output_gradient)};

#undef INLINE
#undef VEC
#undef LANES_T
#undef S
#undef SIMD_CAT
#undef SIMD_CAT2

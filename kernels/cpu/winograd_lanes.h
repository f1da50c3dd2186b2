/* winograd_lanes.h — the Winograd transforms of winograd.c for one vector width (TSK_SIMD_LANES tiles at a time,
 * one per lane), included by winograd.c once per width inside a target region. The math is in winograd.c's
 * comment; here each run of tiles is loaded with masks (lanes outside the input read nothing and hold 0) and
 * its even and odd columns separated, so each lane does one tile's arithmetic. The bf16 layouts of the
 * transformed operands exist at 16 lanes only: bf16 runs only where the processor has AVX512-BF16. */
#include "simd.h"

/* The masks of a run's window rows, which start at input column ix0 of a row w wide: the lanes of the three
 * vectors a row is loaded in (elements 0 .. 2 lanes + 1 of the window row) that lie inside the row */
typedef struct {
    LANES_T a, b, c;
} S(row_masks);

static inline S(row_masks) S(row_masks_of)(int ix0, int w)
{
    enum { LANES = TSK_SIMD_LANES };
    int lo = -ix0, hi = w - ix0;   /* elements lo <= j < hi lie inside the row */
    S(row_masks) m = {S(range)(lo, hi), S(range)(lo - LANES, hi - LANES),
                      S(range)(lo - 2 * LANES, hi - 2 * LANES < 2 ? hi - 2 * LANES : 2)};
    return m;
}

/* a window row of the run's tiles, p its first element: e0..e3[l] = p[2l + 0..3] (zeros outside the plane) */
static inline void S(window_row)(const float *p, S(row_masks) m, VEC *e0, VEC *e1, VEC *e2, VEC *e3)
{
    enum { LANES = TSK_SIMD_LANES };
    VEC a = S(vload)(p, m.a), b = S(vload)(p + LANES, m.b), c = S(vload)(p + 2 * LANES, m.c);
    S(deinterleave)(a, b, e0, e1);
    *e2 = S(shift_in)(*e0, c, 0);
    *e3 = S(shift_in)(*e1, c, 1);
}

/* v[xi] = (B^T d B)[xi] of run r's tiles in one channel plane of one image (plane: that plane's first element) */
static inline void S(input_values)(const geometry *g, const float *plane, run r, VEC v[16])
{
    int64_t next = (int64_t)g->h * g->w;
    int iy0 = 2 * r.ty - g->pt, ix0 = 2 * r.tx - g->pl;
    S(row_masks) m = S(row_masks_of)(ix0, g->w);
    const float *p = plane + (int64_t)iy0 * g->w + ix0;
    /* the next channel's window rows: a plane's few rows at a time are streams too short for the hardware
     * prefetchers, and without this the transform waits for memory (the convolution of a batch that is not in the
     * cache took 1.5 times as long); the plane after the image's last is the next image's first */
    for (int i = 0; i < 4; i++)
        if (iy0 + i >= 0 && iy0 + i < g->h)
            for (int e = 0; e < 2 * TSK_SIMD_LANES + 2; e += 16) __builtin_prefetch(p + next + i * g->w + e, 0, 3);
    VEC a[4][4];   /* each window row times B */
    for (int i = 0; i < 4; i++) {
        VEC e0 = S(vzero)(), e1 = e0, e2 = e0, e3 = e0;
        if (iy0 + i >= 0 && iy0 + i < g->h) S(window_row)(p + (int64_t)i * g->w, m, &e0, &e1, &e2, &e3);
        a[i][0] = e0 - e2, a[i][1] = e1 + e2, a[i][2] = e2 - e1, a[i][3] = e1 - e3;
    }
    for (int j = 0; j < 4; j++) {   /* B^T times the columns */
        v[0 + j] = a[0][j] - a[2][j];
        v[4 + j] = a[1][j] + a[2][j];
        v[8 + j] = a[2][j] - a[1][j];
        v[12 + j] = a[1][j] - a[3][j];
    }
}

/* The transformed input V of a block's runs, x [N, C, H, W], in `layout` (winograd.c), channel by channel so that
 * the runs read one plane's rows in order */
static void S(transform_input)(const geometry *g, const float *x, const run *runs, int count, int layout, void *v)
{
    int64_t plane = (int64_t)g->h * g->w, image = (int64_t)g->c * plane, vplane = v_plane(g);
    int step = layout == V_BF16_PAIRS ? 2 : 1;
    for (int c = 0; c < g->c; c += step)
        for (int k = 0; k < count; k++) {
            run r = runs[k];
            const float *first = x + r.img * image + c * plane;
            VEC out[16];
            S(input_values)(g, first, r, out);
            LANES_T tiles = S(range)(0, r.count);
            if (layout == V_FP32) {
                float *at = (float *)v + (int64_t)c * g->tb + r.at;
                for (int xi = 0; xi < 16; xi++) S(vstore)(at + xi * vplane, out[xi], tiles);
                continue;
            }
#if TSK_SIMD_LANES == 16
            if (layout == V_BF16_PAIRS) {
                VEC high[16];
                if (c + 1 < g->c) S(input_values)(g, first + plane, r, high);
                uint32_t *at = (uint32_t *)v + (int64_t)(c / 2) * g->tb + r.at;
                for (int xi = 0; xi < 16; xi++) {
                    __m512i pair = bf16_bits16(out[xi]);
                    if (c + 1 < g->c) pair = _mm512_or_si512(pair, _mm512_slli_epi32(bf16_bits16(high[xi]), 16));
                    _mm512_mask_storeu_epi32(at + xi * vplane, tiles, pair);
                }
            } else {
                uint16_t *at = (uint16_t *)v + (int64_t)c * 2 * g->tb + r.at2;
                for (int xi = 0; xi < 16; xi++) {
                    _mm512_mask_cvtepi32_storeu_epi16(at + 2 * xi * vplane, tiles, bf16_bits16(out[xi]));
                    if (r.count % 2) at[2 * xi * vplane + r.count] = 0;
                }
            }
#endif
        }
}

/* y [N, O, OH, OW] of the tiles of a block's runs = A^T M A (+ bias, through a ReLU when g->relu) from M[xi][o][at + l]
 * (rows TB apart), channel by channel */
static void S(transform_output)(const geometry *g, const float *m, const float *bias, const run *runs, int count, float *y)
{
    enum { LANES = TSK_SIMD_LANES };
    int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->o * plane, ldm = g->tb, mplane = m_plane(g);
    for (int o = 0; o < g->o; o++) {
        VEC b = S(vset)(bias ? bias[o] : 0.0f);
        for (int k = 0; k < count; k++) {
            run r = runs[k];
            int oy = 2 * r.ty, ox = 2 * r.tx;
            int width = g->ow - ox < 2 * r.count ? g->ow - ox : 2 * r.count;   /* the run's output columns */
            LANES_T tiles = S(range)(0, r.count), first = S(range)(0, width), second = S(range)(0, width - LANES);
            const float *in = m + o * ldm + r.at;
            VEC mm[16], t[4], u[4], lo, hi;
            for (int xi = 0; xi < 16; xi++) mm[xi] = S(vload)(in + xi * mplane, tiles);
            for (int j = 0; j < 4; j++) t[j] = mm[j] + mm[4 + j] + mm[8 + j], u[j] = mm[4 + j] - mm[8 + j] - mm[12 + j];
            float *out = y + r.img * image + o * plane + (int64_t)oy * g->ow + ox;
            if (o + 1 < g->o)   /* the next channel's output rows, for writing (as the input's, above) */
                for (int i = 0; i < 2; i++)
                    for (int e = 0; e < width; e += 16) __builtin_prefetch(out + plane + i * g->ow + e, 1, 3);
            VEC y00 = t[0] + t[1] + t[2] + b, y01 = t[1] - t[2] - t[3] + b;
            VEC y10 = u[0] + u[1] + u[2] + b, y11 = u[1] - u[2] - u[3] + b;
            if (g->relu) y00 = S(vrelu)(y00), y01 = S(vrelu)(y01), y10 = S(vrelu)(y10), y11 = S(vrelu)(y11);
            S(interleave)(y00, y01, &lo, &hi);
            S(vstore)(out, lo, first);
            S(vstore)(out + LANES, hi, second);
            if (oy + 1 < g->oh) {
                S(interleave)(y10, y11, &lo, &hi);
                S(vstore)(out + g->ow, lo, first);
                S(vstore)(out + g->ow + LANES, hi, second);
            }
        }
    }
}

/* The transformed output gradient dM = A gy A^T of a block's runs, gy [N, O, OH, OW] (zeros past the output's edge),
 * tile-major, the right-hand operand of the weight gradient's products (each xi's matrix dmt_plane(g) words apart):
 * fp32, floats dMT[xi][at + l][o]; bf16, 32-bit pairs of tiles (at2 + l even low, the next high) [xi][(at2 + l) / 2][o]
 * (a run of an odd count pairs its last tile with a zero). TSK_SIMD_LANES channels at a time go into a small buffer
 * [16][channel][lane], transposed out. */
static void S(transform_output_gradient)(const geometry *g, const float *gy, const run *runs, int count, int bf16, void *dmt)
{
    enum { LANES = TSK_SIMD_LANES };
    int64_t plane = (int64_t)g->oh * g->ow, image = (int64_t)g->o * plane, dplane = dmt_plane(g);
    LANES_T all = S(range)(0, LANES);
    float buf[16][LANES][LANES];
    for (int o0 = 0; o0 < g->o; o0 += LANES)
        for (int q = 0; q < count; q++) {
            run r = runs[q];
            int oy = 2 * r.ty, ox = 2 * r.tx;
            int width = g->ow - ox < 2 * r.count ? g->ow - ox : 2 * r.count;
            LANES_T first = S(range)(0, width), second = S(range)(0, width - LANES);
            int group = g->o - o0 < LANES ? g->o - o0 : LANES;
            for (int k = 0; k < group; k++) {
                const float *in = gy + r.img * image + (o0 + k) * plane + (int64_t)oy * g->ow + ox;
                if (o0 + k + 1 < g->o)   /* the next channel's rows, as in transform_input */
                    for (int i = 0; i < 2 && oy + i < g->oh; i++)
                        for (int e = 0; e < width; e += 16) __builtin_prefetch(in + plane + i * g->ow + e, 0, 3);
                VEC g00, g01, g10 = S(vzero)(), g11 = S(vzero)();
                S(deinterleave)(S(vload)(in, first), S(vload)(in + LANES, second), &g00, &g01);
                if (oy + 1 < g->oh) S(deinterleave)(S(vload)(in + g->ow, first), S(vload)(in + g->ow + LANES, second), &g10, &g11);
                VEC h0[4] = {g00, g00 + g01, g00 - g01, -g01}, h1[4] = {g10, g10 + g11, g10 - g11, -g11};   /* rows times A^T */
                for (int j = 0; j < 4; j++) {   /* A times the columns */
                    S(vstore)(buf[0 + j][k], h0[j], all);
                    S(vstore)(buf[4 + j][k], h0[j] + h1[j], all);
                    S(vstore)(buf[8 + j][k], h0[j] - h1[j], all);
                    S(vstore)(buf[12 + j][k], -h1[j], all);
                }
            }
            for (int k = group; k < LANES; k++)   /* channels past O: zero, never stored */
                for (int xi = 0; xi < 16; xi++) S(vstore)(buf[xi][k], S(vzero)(), all);
            for (int xi = 0; xi < 16; xi++) {
                float rows[LANES][LANES];   /* rows[l][k]: tile l's channels; lanes past the run's tiles hold zeros */
                S(transpose)(&buf[xi][0][0], LANES, &rows[0][0], LANES);
                if (!bf16) {
                    float *out = (float *)dmt + xi * dplane + (int64_t)r.at * g->o + o0;
                    for (int l = 0; l < r.count; l++) S(vstore)(out + (int64_t)l * g->o, S(vload)(rows[l], all), S(range)(0, group));
                    continue;
                }
#if TSK_SIMD_LANES == 16
                uint32_t *out = (uint32_t *)dmt + xi * dplane + (int64_t)(r.at2 / 2) * g->o + o0;
                for (int l = 0; l < r.count; l += 2) {
                    __m512i pair = _mm512_or_si512(bf16_bits16(_mm512_loadu_ps(rows[l])),
                                                   _mm512_slli_epi32(bf16_bits16(_mm512_loadu_ps(rows[l + 1])), 16));
                    _mm512_mask_storeu_epi32(out + (int64_t)(l / 2) * g->o, S(range)(0, group), pair);
                }
#endif
            }
        }
}

static const transforms S(transforms_) = {TSK_SIMD_LANES, S(transform_input), S(transform_output),
                                          S(transform_output_gradient)};

#undef VEC
#undef LANES_T
#undef S
#undef SIMD_CAT
#undef SIMD_CAT2

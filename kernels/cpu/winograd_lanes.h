

/* winograd_lanes.h — the Winograd transforms of winograd.c for one vector width (TSK_SIMD_LANES tiles at a time,
 * one per lane), included by winograd.c once per width inside a target region. The math is in winograd.c's
 * comment; here each run of tiles is loaded with masks (lanes outside the input read nothing and hold 0) and
 * its even and odd columns separated, so each lane does one tile's arithmetic. */
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

/* a window row of the run's tiles, p its first element: e0..e3[l] = p[2l + 0..3] (zeros outside the plane), rounded
 * to bfloat16 when round */
static inline void S(window_row)(const float *p, S(row_masks) m, int round, VEC *e0, VEC *e1, VEC *e2, VEC *e3)
{
    enum { LANES = TSK_SIMD_LANES };
    VEC a = S(vload)(p, m.a), b = S(vload)(p + LANES, m.b), c = S(vload)(p + 2 * LANES, m.c);
    if (round) a = S(vbf16_)(a), b = S(vbf16_)(b), c = S(vbf16_)(c);
    S(deinterleave)(a, b, e0, e1);
    *e2 = S(shift_in)(*e0, c, 0);
    *e3 = S(shift_in)(*e1, c, 1);
}

/* V[xi][c][at + l] = (B^T d B)[xi] for the tiles of a block's runs, x [N, C, H, W] (V's rows TB apart; x rounded to
 * bfloat16 when g->round). Channel by channel, so that the runs read one plane's rows in order. */
static void S(transform_input)(const geometry *g, const float *x, const run *runs, int count, float *v)
{
    int64_t plane = (int64_t)g->h * g->w, image = (int64_t)g->c * plane, ldv = g->tb, vplane = v_plane(g);
    for (int c = 0; c < g->c; c++)
        for (int k = 0; k < count; k++) {
            run r = runs[k];
            int iy0 = 2 * r.ty - g->pt, ix0 = 2 * r.tx - g->pl;
            S(row_masks) m = S(row_masks_of)(ix0, g->w);
            const float *p = x + r.img * image + c * plane + (int64_t)iy0 * g->w + ix0;
            /* the next channel's window rows: a plane's few rows at a time are streams too short for the
             * hardware prefetchers, and without this the transform waits for memory (the convolution of a
             * batch that is not in the cache took 1.5 times as long) */
            if (c + 1 < g->c)
                for (int i = 0; i < 4; i++)
                    if (iy0 + i >= 0 && iy0 + i < g->h)
                        for (int e = 0; e < 2 * TSK_SIMD_LANES + 2; e += 16) __builtin_prefetch(p + plane + i * g->w + e, 0, 3);
            VEC a[4][4];   /* each window row times B */
            for (int i = 0; i < 4; i++) {
                VEC e0 = S(vzero)(), e1 = e0, e2 = e0, e3 = e0;
                if (iy0 + i >= 0 && iy0 + i < g->h) S(window_row)(p + (int64_t)i * g->w, m, g->round, &e0, &e1, &e2, &e3);
                a[i][0] = e0 - e2, a[i][1] = e1 + e2, a[i][2] = e2 - e1, a[i][3] = e1 - e3;
            }
            float *out = v + c * ldv + r.at;
            LANES_T store = S(range)(0, r.count);
            for (int j = 0; j < 4; j++) {   /* B^T times the columns */
                S(vstore)(out + (0 + j) * vplane, a[0][j] - a[2][j], store);
                S(vstore)(out + (4 + j) * vplane, a[1][j] + a[2][j], store);
                S(vstore)(out + (8 + j) * vplane, a[2][j] - a[1][j], store);
                S(vstore)(out + (12 + j) * vplane, a[1][j] - a[3][j], store);
            }
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

/* dMT[xi][at + l][o] = (A gy A^T)[xi] for the tiles of a block's runs and every channel of gy [N, O, OH, OW] (zeros
 * past the output's edge; gy rounded to bfloat16 when g->round), tile-major so that it is the right-hand operand of the weight gradient's products:
 * TSK_SIMD_LANES channels at a time into a small buffer [16][channel][lane], then transposed out */
static void S(transform_output_gradient)(const geometry *g, const float *gy, const run *runs, int count, float *dmt)
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
                VEC g00, g01, g10 = S(vzero)(), g11 = S(vzero)(), r0 = S(vload)(in, first), r1 = S(vload)(in + LANES, second);
                if (g->round) r0 = S(vbf16_)(r0), r1 = S(vbf16_)(r1);
                S(deinterleave)(r0, r1, &g00, &g01);
                if (oy + 1 < g->oh) {
                    VEC s0 = S(vload)(in + g->ow, first), s1 = S(vload)(in + g->ow + LANES, second);
                    if (g->round) s0 = S(vbf16_)(s0), s1 = S(vbf16_)(s1);
                    S(deinterleave)(s0, s1, &g10, &g11);
                }
                VEC h0[4] = {g00, g00 + g01, g00 - g01, -g01}, h1[4] = {g10, g10 + g11, g10 - g11, -g11};   /* rows times A^T */
                for (int j = 0; j < 4; j++) {   /* A times the columns */
                    S(vstore)(buf[0 + j][k], h0[j], all);
                    S(vstore)(buf[4 + j][k], h0[j] + h1[j], all);
                    S(vstore)(buf[8 + j][k], h0[j] - h1[j], all);
                    S(vstore)(buf[12 + j][k], -h1[j], all);
                }
            }
            /* a whole group is transposed as a block: rows past the run's tiles get zeros, which the next run
             * overwrites (each xi's rows have TSK_SIMD_LANES to spare after the block's: dmt_plane) */
            float *out = dmt + (int64_t)r.at * g->o + o0;
            for (int xi = 0; xi < 16; xi++) {
                if (group == LANES) {
                    S(transpose)(&buf[xi][0][0], LANES, out + xi * dplane, g->o);
                } else {
                    for (int l = 0; l < r.count; l++)
                        for (int k = 0; k < group; k++) out[xi * dplane + (int64_t)l * g->o + k] = buf[xi][k][l];
                }
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

/* 3x3 convolutions with stride 1 by Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray, "Fast algorithms
 * for convolutional neural networks", 2016): each m x m block of outputs (a tile) comes from its a x a input window,
 * a = m + 2, with a^2 multiplications per channel pair instead of 9 m^2. Two tile sizes:
 *   F(2x2, 3x3): 16 multiplications for 4 outputs (2.25 times fewer than direct), transforms of 0 and +-1 only;
 *   F(4x4, 3x3): 36 for 16 (4 times fewer), transforms with coefficients up to 8 (5 and 1/24 in B and G), so the
 *                rounding of the fp32 transforms is a few times F(2x2)'s (as in cuDNN's and oneDNN's F(4x4)).
 *
 *   U = G g G^T   weights 3x3 -> a x a
 *   V = B^T d B   input window a x a
 *   M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t]      a^2 matrix products, xi the position in the a x a window
 *   y = A^T M A   a x a -> the m x m tile
 * with, for m = 2 (interpolation points 0, 1, -1 and infinity)
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * and for m = 4 (points 0, 1, -1, 2, -2 and infinity)
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
 * Each 2-D transform is its 1-D one applied to the rows, then to the columns (winograd_lanes.h).
 * The tile size is chosen per pass (the backend's "winograd" option: 1, the default, takes for the pass's output size
 * the one with fewer multiplications, tiles cut off at the edges counted whole, F(2x2) on a tie; 2 or 4 force one):
 * F(4x4) on the maps of 3, 4 and 7 or more, F(2x2) on those of 1, 2, 5 and 6, and F(2x2) always in bf16, whose
 * rounding of the transformed operands F(4x4)'s larger coefficients would magnify.
 *
 * Backward. The input gradient is the same kind of convolution, of gy with the weights turned by 180 degrees,
 * input and output channels swapped, and padding 2 - pad (for stride 1, gx[c, i, j] = sum_o sum_(a,b)
 * gy[o, i + pt - a, j + pl - b] w[o, c, a, b]). The weight gradient is the adjoint of the forward chain:
 *   dM = A gy A^T (m x m -> a x a),  dU[xi][o][c] = sum_t dM[xi][o][t] V[xi][c][t],  gw += G^T dU G.
 *
 * In the bf16 precision (AVX512-BF16 only) the products run on bfloat16 pairs (vdpbf16ps, twice fp32's rate) with
 * fp32 sums: the transformed operands V, U and dM are rounded to bfloat16 as they are written, the transforms
 * themselves being fp32. That is Winograd's bf16 (as cuDNN's reduced-precision Winograd), not the fp32
 * products of rounded inputs the im2col path computes: its error is bf16's size, a few times 2^-9 of the output.
 *
 * Tiles are numbered image by image, row by row (t = (n TH + ty) TW + tx, TH x TW tiles covering the output,
 * the last row and column cut off when the output size is no multiple of m). Blocks of TB consecutive tiles are
 * transformed into buffers that stay in the cache, the a^2 products run on them, and the results go straight to y
 * (or into the thread's weight-gradient sums); one thread per block in a static schedule, so every output has one
 * writer and the weight gradient's per-thread partial sums are added in thread order: the same thread count
 * gives the same bits. Within a block the transforms run over runs of 16 (AVX-512) or 8 (AVX2) consecutive tiles, one
 * per vector lane (winograd_lanes.h, once per width), which take several tile rows where a row's tiles do not fill
 * the lanes (16x16 and 8x8 maps under F(4x4)), so that the lanes stay full. */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../pointwise.h"
#include "cpu.h"

static int mode = 1;   /* documented global state: the backend's "winograd" option (0 off, 1 per shape, 2 or 4) */

void tsk_cpu_winograd_set(int value) { mode = value; }

int tsk_cpu_winograd_applies(const tsk_conv2d_shape *s)
{
    return mode != 0 && s->kh == 3 && s->kw == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dilation_h == 1 &&
           s->dilation_w == 1 && s->groups == 1 && s->c >= 8 && s->o >= 8;
}

/* The geometry of one Winograd pass: input planes [N, C, H, W] read through a window offset (-pt, -pl) and
 * output planes [N, O, OH, OW] in tiles */
typedef struct {
    int n, c, h, w, o, oh, ow, pt, pl;
    int m, a, xis;       /* outputs per tile side (2 or 4), the input window's side m + 2, its a^2 positions */
    int th, tw;          /* tiles per column and row */
    int64_t tiles;       /* N TH TW */
    int tb;              /* tiles per block */
    int lanes;           /* tiles per run: the vector width */
    int relu;            /* the output through a ReLU */
    int bf16;            /* the products on bfloat16 pairs */
} geometry;

/* A run: `count` consecutive tiles (a vector's lanes, fewer only at a block's end), at offset `at` in its block, and
 * at2 in the bf16 weight gradient's layout, where each run starts at an even place (pairs of tiles never straddle two
 * runs). A run that reaches past its first tile row (on maps of fewer tiles a row than lanes, and wherever the tiles of
 * a row are no multiple of the lanes) goes on into the next rows and images: it is made of `segments` pieces of tile
 * rows, each a stretch of lanes; img, ty, tx give its first tile, which is all a run of one segment needs. */
typedef struct {
    int img, ty, tx, count, at, at2;
    int seg0, segments;   /* its segments in the block's list */
} run;

/* A segment: lanes lane .. lane + count - 1 of a run hold tiles tx .. tx + count - 1 of tile row ty of image img */
typedef struct {
    int lane, count, img, ty, tx;
} segment;

/* A block's runs in tile order, with their segments (run k's are segments[runs[k].seg0 ..], in lane order), each
 * list with room for TB; tiles: the block's, padded: their places in the bf16 weight gradient's layout */
typedef struct {
    run *runs;
    segment *segments;
    int count, tiles, padded;
} block;

/* the transforms of one vector width (winograd_lanes.h), over the runs of a block */
typedef struct {
    int lanes;
    void (*input)(const geometry *g, const float *x, const block *b, int layout, void *v);
    void (*output)(const geometry *g, const float *m, const float *bias, const block *b, float *y);
    void (*output_gradient)(const geometry *g, const float *gy, const block *b, int bf16, void *dmt);
} transforms;

/* The distance between two xi's matrices in a block's buffers, in 32-bit words, each 16 words (64 bytes) more than
 * the matrix so that the a^2 rows a transform writes or reads together do not fall into the same cache sets
 * (matrices of 4 KiB multiples would), and so that a whole vector stored at a matrix's last run stays inside:
 * V [a^2][C][TB] (its bf16 layouts no larger), M [a^2][O][TB], and the tile-major output gradient dMT [a^2][TB][O]
 * (in bf16, TB / 2 pairs of tiles: only a block's last run may be odd, and its padding stays within TB). */
static int64_t v_plane(const geometry *g) { return (int64_t)g->c * g->tb + 16; }
static int64_t m_plane(const geometry *g) { return (int64_t)g->o * g->tb + 16; }
static int64_t dmt_plane(const geometry *g) { return (int64_t)g->tb * g->o + 16; }

/* The layouts of the transformed input V of a block's runs (each xi's matrix v_plane(g) 32-bit words apart):
 *   V_FP32        floats V[xi][c][at + l], rows TB apart (the products of fp32 blocks);
 *   V_BF16_PAIRS  the forward's bf16 operand: 32-bit pairs of channels (c even low, c + 1 high) [xi][c / 2][at + l],
 *                 rows TB apart, an odd C's last pair zero in its high half;
 *   V_BF16_ROWS   the weight gradient's bf16 operand, pairs along the tiles: bfloat16 V[xi][c][at2 + l], rows 2 TB
 *                 apart, a run of an odd count followed by a zero (its padded place, at2). */
enum { V_FP32, V_BF16_PAIRS, V_BF16_ROWS };


/* 16 lanes on AVX-512, 8 on AVX2; a build with TSK_SIMD16_PORTABLE (make test's) runs the 16-lane transforms in
 * plain C (simd.h) on any processor, so that they are tested where AVX-512 is not */
#ifdef TSK_SIMD16_PORTABLE
#define TSK_SIMD_LANES 16
#include "winograd_lanes.h"
#undef TSK_SIMD_LANES
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#include "bf16_avx512.h"
#define TSK_SIMD_LANES 16
#include "winograd_lanes.h"
#undef TSK_SIMD_LANES
#pragma GCC pop_options
#endif
#define TSK_SIMD_LANES 8
#include "winograd_lanes.h"
#undef TSK_SIMD_LANES

#ifdef TSK_SIMD16_PORTABLE
#define WIDE_TRANSFORMS 1
#else
#define WIDE_TRANSFORMS tsk_cpu_has_avx512()
#endif
static const transforms *transforms_in_use(void) { return WIDE_TRANSFORMS ? &transforms_16 : &transforms_8; }

/* the multiplications of F(m x m, 3x3) per channel pair over an oh x ow output: its tiles, cut-off ones whole */
static int64_t tile_cost(int m, int oh, int ow) { return (int64_t)((oh + m - 1) / m) * ((ow + m - 1) / m) * (m + 2) * (m + 2); }

static int tile_size(int oh, int ow, int bf16)
{
    if (bf16) return 2;
    if (mode == 2 || mode == 4) return mode;
    return tile_cost(4, oh, ow) < tile_cost(2, oh, ow) ? 4 : 2;
}

/* the geometry of a pass over an oh x ow output, its tile size chosen for that output */
static geometry geometry_of(int n, int c, int h, int w, int o, int oh, int ow, int pt, int pl, int bf16)
{
    int m = tile_size(oh, ow, bf16);
    geometry g = {n, c, h, w, o, oh, ow, pt, pl, m, m + 2, (m + 2) * (m + 2), (oh + m - 1) / m, (ow + m - 1) / m, 0, 0,
                  transforms_in_use()->lanes, 0, bf16};
    g.tiles = (int64_t)n * g.th * g.tw;
    /* a block's transformed input and products, a^2 (C + O) TB floats, within about 512 KiB of cache (a core's
     * second level on AMD's processors); but every block's products read all the transformed weights, a^2 C O
     * floats, and where those outgrow a core's share of the last level (2 MiB: F(4x4) at 192 channels in and out
     * holds 5.3 MiB) they come from memory once a block: blocks of at least 64 tiles then (on a 2-core Zen 1 the
     * 192-channel layers of the recipe took 25% longer at 16) */
    int tb = 131072 / g.xis / (c + o) / 16 * 16;
    if ((int64_t)g.xis * c * o * (int64_t)sizeof(float) > ((int64_t)2 << 20) && tb < 64) tb = 64;
    g.tb = tb < 16 ? 16 : tb > 128 ? 128 : tb;
    return g;
}

/* the segment of `count` tiles at most from tile t on, in its tile row, at lane `lane` of its run */
static segment segment_at(const geometry *g, int64_t t, int count, int lane)
{
    int64_t row = t / g->tw;
    segment s = {lane, count, (int)(row / g->th), (int)(row % g->th), (int)(t % g->tw)};
    if (s.count > g->tw - s.tx) s.count = g->tw - s.tx;
    return s;
}

/* ---- the transforms --------------------------------------------------------------------------------------- */

/* G of F(m x m, 3x3), a x 3 (winograd.c's first comment): the weight transform U = G g G^T, its adjoint G^T dU G */
static const float G2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
static const float G4[6][3] = {{1 / 4.0f, 0, 0},           {-1 / 6.0f, -1 / 6.0f, -1 / 6.0f}, {-1 / 6.0f, 1 / 6.0f, -1 / 6.0f},
                               {1 / 24.0f, 1 / 12.0f, 1 / 6.0f}, {1 / 24.0f, -1 / 12.0f, 1 / 6.0f}, {0, 0, 1}};

static const float *g_matrix(int m) { return m == 2 ? &G2[0][0] : &G4[0][0]; }

/* The weights are transformed WL kernels at a time, one per lane of the compiler's vectors: the loops over l below
 * run innermost on fixed bounds, so that they vectorize (one kernel at a time, a kernel's 36 values took 3-4% of a
 * training step of the recipe on a 2-core Zen 1). Each lane's arithmetic is the scalar one, in the same order. */
enum { WL = 8 };

/* U = G g G^T of the WL kernels g[.][.][l] into out[xi plane + l], lanes l < n; inlined with m a constant, the loops
 * unroll over the constant table and its zero coefficients drop out */
static inline __attribute__((always_inline)) void kernel_transform(int m, const float g[3][3][WL], float *out, int64_t plane,
                                                                   int n)
{
    const float *G = g_matrix(m);
    int a = m + 2;
    float t[6][3][WL], u[6][6][WL];
    for (int i = 0; i < a; i++)   /* t = G g */
        for (int j = 0; j < 3; j++) {
            for (int l = 0; l < WL; l++) t[i][j][l] = 0.0f;
            for (int q = 0; q < 3; q++)
                if (G[i * 3 + q] != 0.0f)
                    for (int l = 0; l < WL; l++) t[i][j][l] += G[i * 3 + q] * g[q][j][l];
        }
    for (int i = 0; i < a; i++)   /* U = t G^T */
        for (int j = 0; j < a; j++) {
            for (int l = 0; l < WL; l++) u[i][j][l] = 0.0f;
            for (int q = 0; q < 3; q++)
                if (G[j * 3 + q] != 0.0f)
                    for (int l = 0; l < WL; l++) u[i][j][l] += t[i][q][l] * G[j * 3 + q];
        }
    for (int xi = 0; xi < a * a; xi++) {   /* a whole group on a fixed bound, stored as whole vectors (a loop to n
                                            * alone made the transforms a third slower: 1.7% of a step, not 1.3%) */
        float *o = out + xi * plane;
        if (n == WL)
            for (int l = 0; l < WL; l++) o[l] = u[xi / a][xi % a][l];
        else
            for (int l = 0; l < n; l++) o[l] = u[xi / a][xi % a][l];
    }
}

/* k_l += G^T d_l G, of WL a x a gradients d[.][.][l] to their 3x3 kernels k_l = k + l ks, lanes l < n (as
 * kernel_transform) */
static inline __attribute__((always_inline)) void kernel_gradient(int m, const float d[6][6][WL], float *k, int64_t ks, int n)
{
    const float *G = g_matrix(m);
    int a = m + 2;
    float t[3][6][WL], r[3][3][WL];
    for (int i = 0; i < 3; i++)   /* t = G^T d */
        for (int j = 0; j < a; j++) {
            for (int l = 0; l < WL; l++) t[i][j][l] = 0.0f;
            for (int q = 0; q < a; q++)
                if (G[q * 3 + i] != 0.0f)
                    for (int l = 0; l < WL; l++) t[i][j][l] += G[q * 3 + i] * d[q][j][l];
        }
    for (int i = 0; i < 3; i++)   /* (G^T d) G */
        for (int j = 0; j < 3; j++) {
            for (int l = 0; l < WL; l++) r[i][j][l] = 0.0f;
            for (int q = 0; q < a; q++)
                if (G[q * 3 + j] != 0.0f)
                    for (int l = 0; l < WL; l++) r[i][j][l] += t[i][q][l] * G[q * 3 + j];
        }
    for (int l = 0; l < n; l++)
        for (int e = 0; e < 9; e++) k[l * ks + e] += r[e / 3][e % 3][l];
}

/* U[xi][row][col] (a^2 matrices [rows, cols]) = G g G^T of the 3x3 kernels g = w + row * rs + col * cs, each
 * turned by 180 degrees when flip; WL columns at a time */
static void transform_weights(int m, int rows, int cols, const float *w, int64_t rs, int64_t cs, int flip, float *u)
{
    int64_t plane = (int64_t)rows * cols;
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int c0 = 0; c0 < cols; c0 += WL) {
            int n = cols - c0 < WL ? cols - c0 : WL;
            float g[3][3][WL] = {{{0}}};   /* lanes past n: zero, never stored */
            for (int l = 0; l < n; l++) {
                const float *k = w + r * rs + (c0 + l) * cs;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) g[i][j][l] = flip ? k[(2 - i) * 3 + 2 - j] : k[i * 3 + j];
            }
            float *out = u + (int64_t)r * cols + c0;
            if (m == 2) kernel_transform(2, g, out, plane, n);
            else kernel_transform(4, g, out, plane, n);
        }
}

/* gw[o][c] += G^T dU G for the a^2 matrices dUT[xi][c][o]; WL output channels at a time */
static void weight_gradient_out(int m, int o_count, int c_count, const float *dut, float *gw)
{
    int a = m + 2;
    int64_t plane = (int64_t)c_count * o_count;
    int groups = (o_count + WL - 1) / WL;
    #pragma omp parallel for schedule(static)
    for (int q = 0; q < groups; q++)
        for (int c = 0; c < c_count; c++) {
            int o0 = q * WL, n = o_count - o0 < WL ? o_count - o0 : WL;
            float d[6][6][WL] = {{{0}}};
            for (int xi = 0; xi < a * a; xi++) {
                const float *src = dut + xi * plane + (int64_t)c * o_count + o0;
                for (int l = 0; l < n; l++) d[xi / a][xi % a][l] = src[l];
            }
            float *k = gw + ((int64_t)o0 * c_count + c) * 9;
            if (m == 2) kernel_gradient(2, d, k, (int64_t)c_count * 9, n);
            else kernel_gradient(4, d, k, (int64_t)c_count * 9, n);
        }
}

/* ---- the passes --------------------------------------------------------------------------------------------- */

static int64_t blocks_of(const geometry *g) { return (g->tiles + g->tb - 1) / g->tb; }

static int block_tiles(const geometry *g, int64_t b)
{
    int64_t left = g->tiles - b * g->tb;
    return (int)(left < g->tb ? left : g->tb);
}

/* the lists of a block, from the thread's scratch memory (NULL lists: no room, recorded) */
static block block_lists(const geometry *g)
{
    return (block){tsk_cpu_scratch(sizeof(run) * (size_t)g->tb), tsk_cpu_scratch(sizeof(segment) * (size_t)g->tb), 0, 0, 0};
}

static void block_free(block *k)
{
    tsk_cpu_scratch_free(k->runs);
    tsk_cpu_scratch_free(k->segments);
}

/* block b's runs (at most `lanes` consecutive tiles each) and their segments, in tile order, into k's lists */
static void block_fill(const geometry *g, int64_t b, block *k)
{
    int segments = 0, at2 = 0;
    int64_t start = b * g->tb, end = start + block_tiles(g, b);
    k->count = 0;
    for (int64_t t = start; t < end;) {
        run *r = &k->runs[k->count++];
        int count = (int)(end - t < g->lanes ? end - t : g->lanes);
        *r = (run){0, 0, 0, count, (int)(t - start), at2, segments, 0};
        for (int lane = 0; lane < count; lane += k->segments[segments - 1].count) {
            k->segments[segments++] = segment_at(g, t + lane, count - lane, lane);
            r->segments++;
        }
        const segment *first = &k->segments[r->seg0];
        r->img = first->img, r->ty = first->ty, r->tx = first->tx;
        at2 += (count + 1) / 2 * 2;
        t += count;
    }
    k->tiles = (int)(end - start);
    k->padded = at2;
}

/* The transformed weights as the products read them: u [a^2][rows][cols] floats, or in bf16 their pairs along cols
 * ([a^2][rows][cols / 2 rounded up] 32-bit pairs, the lower column low) */
typedef struct {
    const void *u;
    int64_t plane, row;   /* 32-bit words between two xi's matrices, and two rows */
} weights;

static weights pack_weights(const geometry *g, int rows, int cols, const float *u, uint32_t *packed)
{
    if (!g->bf16) return (weights){u, (int64_t)rows * cols, cols};
    int pairs = (cols + 1) / 2;
    for (int xi = 0; xi < g->xis; xi++)
        tsk_cpu_bf16_pack_a(rows, cols, 1.0f, u + (int64_t)xi * rows * cols, cols, 1, packed + (int64_t)xi * rows * pairs);
    return (weights){packed, (int64_t)rows * pairs, pairs};
}

/* y [N, O, OH, OW] = the convolution of x [N, C, H, W] by the transformed weights (+ bias): per block, V, the a^2
 * products M[xi] [O, tiles] = U[xi] [O, C] V[xi] [C, tiles] (on pairs along C in bf16), and y from M */
static void convolve(const geometry *g, weights u, const float *x, const float *bias, float *y)
{
    const transforms *tr = transforms_in_use();
    size_t vbytes = sizeof(float) * (size_t)g->xis * (size_t)v_plane(g), mbytes = sizeof(float) * (size_t)g->xis * (size_t)m_plane(g);
    int64_t blocks = blocks_of(g);
    #pragma omp parallel
    {
        float *v = tsk_cpu_scratch(vbytes), *m = tsk_cpu_scratch(mbytes);
        block k = block_lists(g);
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (!v || !m || !k.runs || !k.segments) continue;   /* no room: recorded, the call reports it */
            block_fill(g, b, &k);
            int tiles = k.tiles;
            tr->input(g, x, &k, g->bf16 ? V_BF16_PAIRS : V_FP32, v);
            for (int xi = 0; xi < g->xis; xi++) {
                const uint32_t *uxi = (const uint32_t *)u.u + xi * u.plane, *vxi = (const uint32_t *)v + xi * v_plane(g);
                float *mxi = m + xi * m_plane(g);
                if (g->bf16) tsk_cpu_gemm_pairs(g->o, tiles, (g->c + 1) / 2, uxi, u.row, 1, vxi, g->tb, mxi, g->tb, 0);
                else tsk_cpu_gemm_strided(g->o, tiles, g->c, (const float *)uxi, u.row, 1, (const float *)vxi, g->tb, mxi, g->tb, 0);
            }
            tr->output(g, m, bias, &k, y);
        }
        block_free(&k);
        tsk_cpu_scratch_free(v);
        tsk_cpu_scratch_free(m);
    }
}

/* a pass with weights w seen as rows x cols kernels (rs, cs apart, turned when flip): transformed, packed for bf16,
 * convolved */
static void run_pass(const geometry *g, int rows, int cols, const float *w, int64_t rs, int64_t cs, int flip,
                     const float *x, const float *bias, float *y)
{
    float *u = tsk_cpu_scratch(sizeof(float) * (size_t)g->xis * (size_t)rows * cols);
    uint32_t *packed = g->bf16 ? tsk_cpu_scratch(sizeof(uint32_t) * (size_t)g->xis * (size_t)rows * ((cols + 1) / 2)) : NULL;
    if (u && (packed || !g->bf16)) {
        transform_weights(g->m, rows, cols, w, rs, cs, flip, u);
        convolve(g, pack_weights(g, rows, cols, u, packed), x, bias, y);
    }
    tsk_cpu_scratch_free(u);
    tsk_cpu_scratch_free(packed);
}

void tsk_cpu_winograd_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y)
{
    geometry g = geometry_of(s->n, s->c, s->h, s->w, s->o, s->oh, s->ow, s->pad_top, s->pad_left, s->math == TSK_MATH_BF16);
    g.relu = s->relu;
    run_pass(&g, s->o, s->c, w, (int64_t)s->c * 9, 9, 0, x, bias, y);
}

/* gx [N, C, H, W] (overwritten) from gy: the forward pass over gy with the turned, transposed weights */
void tsk_cpu_winograd_backward_data(const tsk_conv2d_shape *s, const float *w, const float *gy, float *gx)
{
    geometry g = geometry_of(s->n, s->o, s->oh, s->ow, s->c, s->h, s->w, 2 - s->pad_top, 2 - s->pad_left,
                             s->math == TSK_MATH_BF16);
    run_pass(&g, s->c, s->o, w, 9, (int64_t)s->c * 9, 1, gy, NULL, gx);   /* u[xi][c][o] from w[o][c] turned */
}

/* gw [O, C, 3, 3] += the weight gradient from x and gy: per block, V and dM, and the a^2 products dUT[xi] [C, O] +=
 * V[xi] [C, tiles] dMT[xi] [tiles, O] into the thread's sums (on pairs of tiles in bf16) */
void tsk_cpu_winograd_backward_filter(const tsk_conv2d_shape *s, const float *x, const float *gy, float *gw)
{
    const transforms *tr = transforms_in_use();
    geometry g = geometry_of(s->n, s->c, s->h, s->w, s->o, s->oh, s->ow, s->pad_top, s->pad_left, s->math == TSK_MATH_BF16);
    int threads = omp_get_max_threads();
    int64_t usize = g.xis * (int64_t)s->c * s->o, blocks = blocks_of(&g), dplane = dmt_plane(&g);
    float *partials = tsk_cpu_scratch(sizeof(float) * (size_t)(usize * threads));
    if (!partials) return;
    memset(partials, 0, sizeof(float) * (size_t)(usize * threads));
    size_t vbytes = sizeof(float) * (size_t)g.xis * (size_t)v_plane(&g), dbytes = sizeof(float) * (size_t)g.xis * (size_t)dplane;
    #pragma omp parallel num_threads(threads)
    {
        float *v = tsk_cpu_scratch(vbytes), *dmt = tsk_cpu_scratch(dbytes);
        block k = block_lists(&g);
        float *dut = partials + (int64_t)omp_get_thread_num() * usize;   /* dUT[xi][c][o], this thread's sums */
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (!v || !dmt || !k.runs || !k.segments) continue;
            block_fill(&g, b, &k);
            int padded = k.padded, tiles = k.tiles;
            tr->input(&g, x, &k, g.bf16 ? V_BF16_ROWS : V_FP32, v);
            tr->output_gradient(&g, gy, &k, g.bf16, dmt);
            for (int xi = 0; xi < g.xis; xi++) {
                const uint32_t *vxi = (const uint32_t *)v + xi * v_plane(&g), *dxi = (const uint32_t *)dmt + xi * dplane;
                float *uxi = dut + (int64_t)xi * g.c * g.o;
                if (g.bf16) tsk_cpu_gemm_pairs(g.c, g.o, padded / 2, vxi, g.tb, 1, dxi, g.o, uxi, g.o, 1);
                else tsk_cpu_gemm_strided(g.c, g.o, tiles, (const float *)vxi, g.tb, 1, (const float *)dxi, g.o, uxi, g.o, 1);
            }
        }
        tsk_cpu_scratch_free(v);
        tsk_cpu_scratch_free(dmt);
        block_free(&k);
        #pragma omp barrier
        #pragma omp for schedule(static)
        for (int64_t i = 0; i < usize; i++)   /* the threads' sums, added in thread order */
            for (int t = 1; t < threads; t++) partials[i] += partials[(int64_t)t * usize + i];
    }
    weight_gradient_out(g.m, s->o, s->c, partials, gw);
    tsk_cpu_scratch_free(partials);
}

/* simd.h — the few vector operations the Winograd transforms need, for one vector width: TSK_SIMD_LANES 16
 * (AVX-512) or 8 (AVX2). winograd_lanes.h includes it once per width inside a matching target region; every
 * name ends in the width (S(vload) is vload16 or vload8), so both sets live in one file. Lane j of a vector
 * holds element j of the run it was loaded from.
 * TSK_SIMD16_PORTABLE (a test build's): the 16-lane operations in plain C on GCC's vectors, lane by lane as the
 * AVX-512 instructions define them, so that the 16-lane transforms run and are checked (under AddressSanitizer)
 * on a processor without AVX-512. */
#include <immintrin.h>
#include <stdint.h>

#define SIMD_CAT2(a, b) a##b
#define SIMD_CAT(a, b) SIMD_CAT2(a, b)
#define S(name) SIMD_CAT(name, TSK_SIMD_LANES)
#define VEC S(vec)
#define LANES_T S(lanes)   /* a set of lanes: a mask */
/* vput and vget store and load every lane, vstore the lanes of a mask: a masked store is several times slower than a whole one on
 * AMD's processors (Zen 1 microcodes it), so the transforms store whole vectors wherever the lanes past the data
 * may be overwritten */

#if TSK_SIMD_LANES == 16
#ifdef TSK_SIMD16_PORTABLE
typedef float vec16 __attribute__((vector_size(64)));
typedef uint16_t lanes16;
#else
typedef __m512 vec16;
typedef __mmask16 lanes16;
#endif

static inline lanes16 range16(int lo, int hi)   /* lanes lo <= j < hi */
{
    unsigned below_hi = hi >= 16 ? 0xFFFFu : hi <= 0 ? 0u : (1u << hi) - 1;
    unsigned below_lo = lo >= 16 ? 0xFFFFu : lo <= 0 ? 0u : (1u << lo) - 1;
    return (lanes16)(below_hi & ~below_lo);
}

#ifdef TSK_SIMD16_PORTABLE
#define LANE_IN(m, j) (((m) >> (j)) & 1)
static inline vec16 vzero16(void) { return (vec16){0}; }
static inline vec16 vset16(float v) { return (vec16){0} + v; }
static inline vec16 vrelu16(vec16 v)
{
    for (int j = 0; j < 16; j++) v[j] = v[j] <= 0.0f ? 0.0f : v[j];   /* maxps(0, v): a NaN stays */
    return v;
}
static inline vec16 vload_into16(vec16 v, const float *p, lanes16 m)
{
    for (int j = 0; j < 16; j++)
        if (LANE_IN(m, j)) v[j] = p[j];
    return v;
}
static inline vec16 vload16(const float *p, lanes16 m) { return vload_into16(vzero16(), p, m); }
static inline void vstore16(float *p, vec16 v, lanes16 m)
{
    for (int j = 0; j < 16; j++)
        if (LANE_IN(m, j)) p[j] = v[j];
}
static inline void vput16(float *p, vec16 v) { vstore16(p, v, 0xFFFF); }
static inline vec16 vget16(const float *p) { return vload16(p, 0xFFFF); }
static inline void deinterleave16(vec16 a, vec16 b, vec16 *even, vec16 *odd)
{
    for (int j = 0; j < 8; j++) {
        (*even)[j] = a[2 * j], (*even)[j + 8] = b[2 * j];
        (*odd)[j] = a[2 * j + 1], (*odd)[j + 8] = b[2 * j + 1];
    }
}
static inline vec16 shift_in16(vec16 v, vec16 c, int k)
{
    vec16 out;
    for (int j = 0; j < 15; j++) out[j] = v[j + 1];
    out[15] = c[k];
    return out;
}
static inline void interleave16(vec16 a, vec16 b, vec16 *lo, vec16 *hi)
{
    for (int j = 0; j < 8; j++) {
        (*lo)[2 * j] = a[j], (*lo)[2 * j + 1] = b[j];
        (*hi)[2 * j] = a[j + 8], (*hi)[2 * j + 1] = b[j + 8];
    }
}
static inline void transpose16(const float *in, int64_t in_stride, float *out, int64_t out_stride)
{
    float t[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) t[j][i] = in[i * in_stride + j];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) out[i * out_stride + j] = t[i][j];
}
/* bf16 stores (winograd_lanes.h's bf16 layouts): the lanes m of p = lo's bfloat16 in each low half, hi's in each
 * high half (a zero hi leaves it 0); and the lanes m of the 16-bit p = v's bfloat16 */
static inline void vstore_bf16_pairs16(uint32_t *p, vec16 lo, vec16 hi, lanes16 m)
{
    for (int j = 0; j < 16; j++)
        if (LANE_IN(m, j)) p[j] = tsk_bf16_bits(lo[j]) | tsk_bf16_bits(hi[j]) << 16;
}
static inline void vstore_bf16_16(uint16_t *p, vec16 v, lanes16 m)
{
    for (int j = 0; j < 16; j++)
        if (LANE_IN(m, j)) p[j] = (uint16_t)tsk_bf16_bits(v[j]);
}
#undef LANE_IN

#else
static inline vec16 vzero16(void) { return _mm512_setzero_ps(); }
static inline vec16 vset16(float v) { return _mm512_set1_ps(v); }
/* maxps gives its second operand when either is a NaN: max(0, v) lets a NaN through, as tsk_activation does
 * (and -0.0 stays -0.0 where tsk_activation gives +0.0: the same number) */
static inline vec16 vrelu16(vec16 v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }
/* the elements of p in lanes m, zeros elsewhere; the others are not read (p + j may lie outside the array) */
static inline vec16 vload16(const float *p, lanes16 m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void vstore16(float *p, vec16 v, lanes16 m) { _mm512_mask_storeu_ps(p, m, v); }
static inline void vput16(float *p, vec16 v) { _mm512_storeu_ps(p, v); }
static inline vec16 vget16(const float *p) { return _mm512_loadu_ps(p); }
/* v with the lanes m loaded from p (as vload reads them), the others kept */
static inline vec16 vload_into16(vec16 v, const float *p, lanes16 m) { return _mm512_mask_loadu_ps(v, m, p); }
/* the even and the odd elements of the 32 elements a, b */
static inline void deinterleave16(vec16 a, vec16 b, vec16 *even, vec16 *odd)
{
    const __m512i e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i o = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *even = _mm512_permutex2var_ps(a, e, b);
    *odd = _mm512_permutex2var_ps(a, o, b);
}
/* v moved down one lane, element k of c in the last lane */
static inline vec16 shift_in16(vec16 v, vec16 c, int k)
{
    __m512i idx = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 + k);
    return _mm512_permutex2var_ps(v, idx, c);
}
/* a0 b0 a1 b1 ...: the first 16 in lo, the rest in hi */
static inline void interleave16(vec16 a, vec16 b, vec16 *lo, vec16 *hi)
{
    const __m512i l = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i h = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    *lo = _mm512_permutex2var_ps(a, l, b);
    *hi = _mm512_permutex2var_ps(a, h, b);
}
/* out[16 x 16] (rows out_stride apart) = in[16 x 16]^T: pairs, quads, 128-bit quarters, halves */
static inline void transpose16(const float *in, int64_t in_stride, float *out, int64_t out_stride)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(in + i * in_stride);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xDD);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(out + i * out_stride, r[i]);
}
static inline void vstore_bf16_pairs16(uint32_t *p, vec16 lo, vec16 hi, lanes16 m)
{
    _mm512_mask_storeu_epi32(p, m, _mm512_or_si512(bf16_bits16(lo), _mm512_slli_epi32(bf16_bits16(hi), 16)));
}
static inline void vstore_bf16_16(uint16_t *p, vec16 v, lanes16 m) { _mm512_mask_cvtepi32_storeu_epi16(p, m, bf16_bits16(v)); }
#endif

#elif TSK_SIMD_LANES == 8
typedef __m256 vec8;

typedef __m256i lanes8;

static inline lanes8 range8(int lo, int hi)
{
    __m256i j = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), j),
                            _mm256_cmpgt_epi32(_mm256_add_epi32(j, _mm256_set1_epi32(1)), _mm256_set1_epi32(lo)));
}
static inline vec8 vzero8(void) { return _mm256_setzero_ps(); }
static inline vec8 vset8(float v) { return _mm256_set1_ps(v); }
static inline vec8 vrelu8(vec8 v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }   /* a NaN stays, as vrelu16 */
static inline vec8 vload8(const float *p, lanes8 m) { return _mm256_maskload_ps(p, m); }
static inline void vstore8(float *p, vec8 v, lanes8 m) { _mm256_maskstore_ps(p, m, v); }
static inline void vput8(float *p, vec8 v) { _mm256_storeu_ps(p, v); }
static inline vec8 vget8(const float *p) { return _mm256_loadu_ps(p); }
static inline vec8 vload_into8(vec8 v, const float *p, lanes8 m)
{
    return _mm256_blendv_ps(v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void deinterleave8(vec8 a, vec8 b, vec8 *even, vec8 *odd)
{
    /* per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6, then the middle quarters swapped */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
static inline vec8 shift_in8(vec8 v, vec8 c, int k)
{
    vec8 down = _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0));
    vec8 last = _mm256_permutevar8x32_ps(c, _mm256_set1_epi32(k));
    return _mm256_blend_ps(down, last, 0x80);
}
static inline void interleave8(vec8 a, vec8 b, vec8 *lo, vec8 *hi)
{
    vec8 l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);   /* a0 b0 a1 b1 | a4 b4 a5 b5, ... */
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}
static inline void transpose8(const float *in, int64_t in_stride, float *out, int64_t out_stride)
{
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + i * in_stride);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}
#else
#error "TSK_SIMD_LANES must be 16 or 8"
#endif

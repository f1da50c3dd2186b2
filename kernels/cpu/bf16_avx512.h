/* bf16_avx512.h — bfloat16 rounding of 16 floats at once, for the kernels that pack bf16 operands
 * (gemm_bf16.c, conv2d.c). Callers run these only where tsk_cpu_has_avx512(). */
#ifndef TSK_BF16_AVX512_H
#define TSK_BF16_AVX512_H
#include <immintrin.h>

/* tsk_bf16_bits (pointwise.h) lane by lane: the bits in the low half of each 32-bit lane */
__attribute__((target("avx512f"))) static inline __m512i bf16_bits16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

/* the mask of the first count lanes (all 16 when count >= 16, none when count <= 0) */
static inline __mmask16 first_lanes(int count)
{
    return count >= 16 ? 0xFFFF : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

#endif

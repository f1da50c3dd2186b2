/* cpu.h — the CPU compute kernels: raw pointers and sizes in, no allocation policy beyond scratch
 * buffers, no tensors, no Lua, no I/O. Work is split across OpenMP threads in a fixed, static way so
 * that the same thread count gives bit-identical results. */
#ifndef TSK_CPU_H
#define TSK_CPU_H
#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"   /* the shape descriptors and the backend table */

/* scratch.c: scratch memory from the host's allocator; NULL when there is no room, the failure then recorded
 * for tsk_cpu_error (the first message since the last read, cleared by reading it) */
void tsk_cpu_set_allocator(tsk_allocator a);   /* the backend table's set_allocator */
void *tsk_cpu_scratch(size_t bytes);
void tsk_cpu_scratch_free(void *p);
const char *tsk_cpu_error(void);
int tsk_cpu_error_is_oom(void);

/* tsk_cpu_gemm (ops.def) splits C across threads by rows or columns; bf16 math: see tsk_cpu_gemm_bf16.
 * The same in fp32 on the calling thread only, for use inside parallel regions */
void tsk_cpu_gemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

/* C[M,N] (=, or += when accumulate) A B with A(i, r) = a[i*a_rs + r*a_cs], B and C row-major:
 * AVX-512 where the processor has it (tsk_cpu_has_avx512), else AVX2. Calling thread only. */
void tsk_cpu_gemm_strided(int m, int n, int k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                          int64_t ldb, float *c, int64_t ldc, int accumulate);
/* the AVX-512 kernel: fp32 elements, or (bf16) packed bfloat16 pairs with depth = ceil(K/2) */
void tsk_cpu_gemm_avx512(int bf16, int m, int n, int depth, const void *a, int64_t a_rs, int64_t a_cs, const void *b,
                         int64_t ldb, float *c, int64_t ldc, int accumulate);
int tsk_cpu_has_avx512(void);
/* the AVX2+FMA kernel (fp32), the same contract, for the processors without AVX-512 */
void tsk_cpu_gemm_avx2(int m, int n, int k, const float *a, int64_t a_rs, int64_t a_cs, const float *b, int64_t ldb,
                       float *c, int64_t ldc, int accumulate);
const char *tsk_cpu_path_kernels(void);   /* the kernels of the path in use, for a person */
int tsk_cpu_has_avx512_bf16(void);   /* the avx512bf16 or the amx path */
/* gemm_amx.c: the product of packed pairs with A's pairs contiguous (a_cs = 1) on AMX tiles, on the amx path
 * (tsk_cpu_has_amx); tsk_cpu_amx_usable: the processor has AMX-BF16 and the kernel lent this process its tiles
 * (asked of a processor with AVX512-BF16 only: the amx path's edges run the vdpbf16ps kernel) */
int tsk_cpu_has_amx(void);
int tsk_cpu_amx_usable(void);
void tsk_cpu_gemm_amx(int m, int n, int k2, const uint32_t *a, int64_t a_rs, const uint32_t *b, int64_t ldb, float *c,
                      int64_t ldc, int accumulate);
/* the precision the CPU runs for a requested one: bf16 only with AVX512-BF16, else fp32 with a notice (once) that
 * tsk_cpu_notice hands the host */
int tsk_cpu_math(int math);
const char *tsk_cpu_notice(void);

/* bf16 products from operands packed as pairs of consecutive k (gemm_bf16.c): A [M,K] -> ap [M][K2],
 * B [K,N] -> bp [K2][N], K2 = ceil(K/2), alpha applied to A before rounding. The product reads packed
 * A(i, q) = a[i*a_rs + q*a_cs] and B's row q at b + q*ldb. Calling thread only. */
void tsk_cpu_bf16_pack_a(int m, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, uint32_t *ap);
void tsk_cpu_bf16_pack_b(int k, int n, const float *b, int64_t b_rs, int64_t b_cs, uint32_t *bp);
void tsk_cpu_gemm_pairs(int m, int n, int k2, const uint32_t *a, int64_t a_rs, int64_t a_cs, const uint32_t *b,
                        int64_t ldb, float *c, int64_t ldc, int accumulate);
/* C[M,N] (=, or += when accumulate) (alpha A) B with bfloat16-rounded operands and fp32 sums,
 * A(i, r) = a[i*a_rs + r*a_cs], B(r, j) = b[r*b_rs + j*b_cs]; scratch: tsk_cpu_gemm_bf16_scratch bytes.
 * Calling thread only. */
size_t tsk_cpu_gemm_bf16_scratch(int m, int n, int k);
void tsk_cpu_gemm_bf16(int m, int n, int k, float alpha, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                       int64_t b_rs, int64_t b_cs, float *c, int64_t ldc, int accumulate, void *scratch);

/* winograd.c: 3x3 convolutions with stride 1 (no dilation, one group, at least 8 channels in and out) by Winograd's
 * F(4x4, 3x3) or F(2x2, 3x3) in fp32 (bf16: F(2x2), the operands rounded as they are read), which
 * conv2d.c calls when tsk_cpu_winograd_applies: the shape fits and the option is on (the backend's set_option
 * "winograd": 1, the default, the tile size per shape; 2 or 4, that one; 0, im2col, for comparison). gx is
 * overwritten, gw accumulated. */
void tsk_cpu_winograd_set(int mode);
int tsk_cpu_winograd_applies(const tsk_conv2d_shape *s);
void tsk_cpu_winograd_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y);
void tsk_cpu_winograd_backward_data(const tsk_conv2d_shape *s, const float *w, const float *gy, float *gx);
void tsk_cpu_winograd_backward_filter(const tsk_conv2d_shape *s, const float *x, const float *gy, float *gw);

/* the compute ops of the backend table, as ops.def lists them */
#define TSK_OP(where, ret, name, params) TSK_IF_CPU_##where(ret tsk_cpu_##name params;, )
#include "../ops.def"
#undef TSK_OP

#endif

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
void *tsk_cpu_scratch(size_t bytes);
void tsk_cpu_scratch_free(void *p);
const char *tsk_cpu_error(void);
int tsk_cpu_error_is_oom(void);

/* C[M,N] = alpha op(A) op(B) + beta C, row-major, in the compute precision math (TSK_MATH_*; see
 * tsk_cpu_gemm_bf16); split across threads by rows or columns of C */
void tsk_cpu_gemm(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
/* the same in fp32 on the calling thread only, for use inside parallel regions */
void tsk_cpu_gemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

/* C[M,N] (=, or += when accumulate) A B with A(i, r) = a[i*a_rs + r*a_cs], B and C row-major:
 * AVX-512 where the processor has it (tsk_cpu_has_avx512), else OpenBLAS. Calling thread only. */
void tsk_cpu_gemm_strided(int m, int n, int k, const float *a, int64_t a_rs, int64_t a_cs, const float *b,
                          int64_t ldb, float *c, int64_t ldc, int accumulate);
/* the AVX-512 kernel: fp32 elements, or (bf16) packed bfloat16 pairs with depth = ceil(K/2) */
void tsk_cpu_gemm_avx512(int bf16, int m, int n, int depth, const void *a, int64_t a_rs, int64_t a_cs, const void *b,
                         int64_t ldb, float *c, int64_t ldc, int accumulate);
int tsk_cpu_has_avx512(void);
int tsk_cpu_has_avx512_bf16(void);

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

void tsk_cpu_axpy(int64_t n, float alpha, const float *x, float *y);   /* y += alpha x */
void tsk_cpu_add(int64_t n, const float *a, const float *b, float *out);
void tsk_cpu_mul(int64_t n, const float *a, const float *b, float *out);
void tsk_cpu_scale(int64_t n, float s, const float *a, float *out);
void tsk_cpu_fill_rows(int64_t n, int64_t c, const float *v, float *y);
double tsk_cpu_sumsq(int64_t n, const float *x);
/* sums[c] += sum over n, s of x[n, c, s] for x [N, C, S] (bias gradients) */
void tsk_cpu_channel_sum(int64_t n, int64_t c, int64_t s, const float *x, float *sums);

/* x [N,C,H,W], w [O,C/g,KH,KW], bias [O] or NULL -> y [N,O,OH,OW] */
void tsk_cpu_conv2d_forward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y);
/* gx [N,C,H,W] overwritten when non-NULL; gw [O,C/g,KH,KW] and gb [O] accumulated when non-NULL */
void tsk_cpu_conv2d_backward(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy,
                             float *gx, float *gw, float *gb);

/* x [N,C,S]: training mode computes the batch mean and biased variance, writes save_mean/save_invstd
 * and updates running stats (unbiased variance); eval mode normalizes with the running stats.
 * weight/bias may be NULL (affine = false). */
void tsk_cpu_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight,
                               const float *bias, float *running_mean, float *running_var, float *save_mean,
                               float *save_invstd, int training, float momentum, float eps, float *y);
/* mean/invstd are the saved batch statistics in training mode, the running ones turned into invstd in eval */
void tsk_cpu_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy,
                                const float *weight, const float *mean, const float *invstd, int training,
                                float *gx, float *gweight, float *gbias);

/* kind: 0 relu, 1 leaky relu (param = negative slope), 2 elu (param = alpha) */
void tsk_cpu_activation_forward(int64_t n, int kind, float param, const float *x, float *y);
void tsk_cpu_activation_backward(int64_t n, int kind, float param, const float *x, const float *y,
                                 const float *gy, float *gx);

void tsk_cpu_maxpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y, int32_t *indices);
void tsk_cpu_maxpool2d_backward(const tsk_pool2d_shape *s, const float *gy, const int32_t *indices, float *gx);
void tsk_cpu_avgpool2d_forward(const tsk_pool2d_shape *s, const float *x, float *y);
void tsk_cpu_avgpool2d_backward(const tsk_pool2d_shape *s, const float *gy, float *gx);

/* logits [N,C]; the mean loss into *loss; glogits [N,C] or NULL */
void tsk_cpu_cross_entropy(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                           float smoothing, float *glogits, float *loss);
/* *correct += the number of rows whose first largest logit is at the target */
void tsk_cpu_count_correct(int n, int c, const float *logits, const int64_t *targets, float *correct);

void tsk_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                      float weight_decay, int nesterov, int first_step);
void tsk_cpu_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                       float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2);

/* augmentation on one float image [H, W, C] in 0..1 (augment.c) */
void tsk_cpu_warp(int h, int w, int oh, int ow, int c, const float *src, float *dst, const double *hm);
void tsk_cpu_color(int n, int c, float *img, float brightness, float contrast, float saturation, float hue,
                   float gamma);
void tsk_cpu_blur(int h, int w, int c, float *img, float *tmp, float sigma);
void tsk_cpu_equalize(int h, int w, uint8_t *lum, int clahe, int tiles, float clip, float *maps);

#endif

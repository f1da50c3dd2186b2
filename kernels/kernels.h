/* kernels.h — what the CPU and CUDA kernels share: the shape descriptors, and the backend table through
 * which the host calls either one, chosen per tensor at run time (darknet's way: one signature, two
 * implementations side by side). Every pointer is on the backend's device; sizes are plain integers.
 *
 * A kernel can fail: a CPU kernel when the host's allocator has no room for its scratch memory, a CUDA
 * kernel also on a launch, cuBLAS, cuDNN or a workspace it could not get. It then keeps the first message,
 * and the host asks backend->error() after each call. */
#ifndef TSK_KERNELS_H
#define TSK_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* compute precision of the matrix products (convolutions, linear layers): operands rounded to it, sums
 * and storage in fp32 */
enum { TSK_MATH_FP32 = 0, TSK_MATH_BF16 = 1 };

typedef struct {
    int n, c, h, w;          /* input */
    int o, kh, kw;           /* output channels, kernel */
    int oh, ow;              /* output size */
    int stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups;
    int math;                /* TSK_MATH_* */
} tsk_conv2d_shape;

typedef struct {
    int planes, h, w, oh, ow;     /* planes = N*C */
    int kh, kw, sh, sw, ph, pw;
    int count_include_pad;
} tsk_pool2d_shape;

/* One image's augmentation, drawn on the host (host/batch.c) and applied by a kernel: the warp (rotation,
 * scale, shear, translation, perspective, flip and resize in one projective map), the colour changes of
 * kernels/cpu/augment.c, and a cutout square filled with the preprocessing mean. */
typedef struct {
    double inv[9];          /* output pixel centre -> source coordinates (row-major 3x3), when warp */
    int warp;
    float brightness, contrast, saturation, hue, gamma;
    int cutout_y, cutout_x, cutout_size;   /* top-left corner and side; size 0: none */
} tsk_image_plan;

typedef struct {
    const char *name;
    /* the first failure since the last call (and clears it), or NULL */
    const char *(*error)(void);
    /* 1 when the last error was the device running out of memory */
    int (*error_is_oom)(void);

    /* C[M,N] = alpha op(A) op(B) + beta C, row-major, in compute precision math (TSK_MATH_*) */
    void (*gemm)(int math, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
    /* y[r, :] = v for each of the n rows of y [N, C] */
    void (*fill_rows)(int64_t n, int64_t c, const float *v, float *y);
    void (*axpy)(int64_t n, float alpha, const float *x, float *y);          /* y += alpha x */
    void (*add)(int64_t n, const float *a, const float *b, float *out);       /* out = a + b */
    void (*mul)(int64_t n, const float *a, const float *b, float *out);       /* out = a * b */
    void (*scale)(int64_t n, float s, const float *a, float *out);            /* out = s a */
    double (*sumsq)(int64_t n, const float *x);
    /* sums[c] += sum over n, s of x[n, c, s] (bias gradients) */
    void (*channel_sum)(int64_t n, int64_t c, int64_t s, const float *x, float *sums);

    /* x [N,C,H,W], w [O,C/g,KH,KW], bias [O] or NULL -> y [N,O,OH,OW] */
    void (*conv2d_forward)(const tsk_conv2d_shape *s, const float *x, const float *w, const float *bias, float *y);
    /* gx overwritten when non-NULL; gw and gb accumulated when non-NULL */
    void (*conv2d_backward)(const tsk_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                            float *gw, float *gb);

    /* x [N,C,S]; training: batch statistics into save_mean/save_invstd, running stats updated with the
     * unbiased variance; eval: running stats. weight/bias may be NULL (affine = false). */
    void (*batchnorm_forward)(int64_t n, int64_t c, int64_t s, const float *x, const float *weight, const float *bias,
                              float *running_mean, float *running_var, float *save_mean, float *save_invstd,
                              int training, float momentum, float eps, float *y);
    /* mean/invstd: the saved batch statistics in training mode, the running ones (as invstd) in eval */
    void (*batchnorm_backward)(int64_t n, int64_t c, int64_t s, const float *x, const float *gy, const float *weight,
                               const float *mean, const float *invstd, int training, float *gx, float *gweight,
                               float *gbias);

    /* kind: 0 relu, 1 leaky relu (param = negative slope), 2 elu (param = alpha) */
    void (*activation_forward)(int64_t n, int kind, float param, const float *x, float *y);
    void (*activation_backward)(int64_t n, int kind, float param, const float *x, const float *y, const float *gy,
                                float *gx);

    /* indices: the position of each maximum inside its input plane */
    void (*maxpool2d_forward)(const tsk_pool2d_shape *s, const float *x, float *y, int32_t *indices);
    void (*maxpool2d_backward)(const tsk_pool2d_shape *s, const float *gy, const int32_t *indices, float *gx);
    void (*avgpool2d_forward)(const tsk_pool2d_shape *s, const float *x, float *y);
    void (*avgpool2d_backward)(const tsk_pool2d_shape *s, const float *gy, float *gx);

    /* logits [N,C], targets [N] (all in 0..C-1); the mean loss into *loss (one float on this device, so the
     * host need not wait for it); glogits [N,C] or NULL */
    void (*cross_entropy)(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                          float smoothing, float *glogits, float *loss);
    /* *correct += the number of rows whose largest logit (the first of equals) is the target's */
    void (*count_correct)(int n, int c, const float *logits, const int64_t *targets, float *correct);

    void (*sgd_step)(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float dampening,
                     float weight_decay, int nesterov, int first_step);
    void (*adam_step)(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                      float eps, float weight_decay, int decoupled, float bias_correction1, float bias_correction2);
} tsk_backend;

extern const tsk_backend tsk_cpu_backend;
/* Where the CPU backend's scratch memory comes from: the host sets its allocator once (counted, under the
 * CPU memory limit); until then the C heap. alloc returns NULL when there is no room. */
typedef struct {
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
} tsk_allocator;
void tsk_cpu_set_allocator(tsk_allocator a);
#ifdef TS_WITH_CUDA
extern const tsk_backend tsk_cuda_backend;
#endif

#ifdef __cplusplus
}
#endif
#endif

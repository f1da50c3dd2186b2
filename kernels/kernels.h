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
    int relu;                /* the forward's output through a ReLU (a fused ReLU that follows) */
} tsk_conv2d_shape;

typedef struct {
    int planes, h, w, oh, ow;     /* planes = N*C */
    int kh, kw, sh, sw, ph, pw;
    int count_include_pad;
} tsk_pool2d_shape;

/* One image's augmentation, drawn on the host (host/batch.c) and applied by a kernel: the warp (rotation,
 * scale, shear, translation, perspective, flip and resize in one projective map), a cast shadow
 * (tsk_shadow_factor), the colour changes of kernels/cpu/augment.c, and a cutout square filled with the
 * preprocessing mean (0 without preprocessing, on both devices). */
typedef struct {
    double inv[9];          /* output pixel centre -> source coordinates (row-major 3x3), when warp */
    int warp;
    float brightness, contrast, saturation, fade, hue, gamma;   /* fade: faded red paint, 0 = none */
    /* the shadow's band: unit normal (nx, ny), centre line nx x + ny y = d (output pixel coordinates, centres
     * at + .5), half-width, edge ramp width (pixels) and gain inside; half 0: none */
    float shadow_nx, shadow_ny, shadow_d, shadow_half, shadow_soft, shadow_gain;
    int cutout_y, cutout_x, cutout_size;   /* top-left corner and side; size 0: none */
} tsk_image_plan;

/* One parameter tensor of an optimizer step over many (the step's list is on the host, the pointers in it on
 * the device): all tensors of a parameter group are updated by one call, one launch on a GPU however many
 * there are (PyTorch's foreach/fused steps), since a launch per tensor costs more than the update of a small
 * one. What differs between them is here; what a group shares (lr, momentum, ...) is the call's. */
typedef struct {
    int64_t n;               /* elements */
    float *p;                /* the parameter, updated in place */
    const float *g;          /* its gradient */
    float *m, *v;            /* SGD: m the momentum buffer (NULL: no momentum), v unused; Adam: the two moments */
    float step_size;         /* Adam: lr / (1 - beta1^t) for this tensor's step count t */
    float bc2_sqrt;          /* Adam: sqrt(1 - beta2^t) */
    int first_step;          /* SGD: the momentum buffer starts as this step's gradient */
} tsk_param;

/* The host's allocator as a backend sees it, for the memory the backend needs besides tensors (the CPU
 * kernels' scratch, the GPU's workspace): counted with the tensors and under the same limit. alloc returns
 * the block and the size granted, which release takes back, or NULL with the host's error set; why gives that
 * error's message and whether it is the device out of room (*out_of_memory 1) or another failure (0: a fault
 * of the device, which must not pass for a full one). cached: the bytes the host keeps for reuse, free to the
 * backend's purposes (an alloc that needs them gets them back); trim gives them, and the backend's own memory
 * (release_cache), back to the device now, for memory a library allocates itself (cuDNN's timed search); both NULL
 * where no backend asks for them (the CPU's). */
typedef struct {
    void *(*alloc)(size_t bytes, size_t *granted);
    void (*release)(void *p, size_t granted);
    const char *(*why)(int *out_of_memory);
    size_t (*cached)(void);
    void (*trim)(void);
} tsk_allocator;

/* A backend: one device's runtime and compute ops, with the same contract on every device. */
typedef struct {
    const char *name;
    /* the first failure since the last call (and clears it), or NULL */
    const char *(*error)(void);
    /* 1 when the last error was the device running out of memory */
    int (*error_is_oom)(void);
    /* a message for the person that is not an error (a fallback taken), once, or NULL; may be NULL */
    const char *(*notice)(void);

    /* ---- the runtime ---- */
    /* makes the device ready on the first call (later calls give the first answer): 0, or -1 with error() saying
     * why (no driver, a driver too old, no device, a library missing) */
    int (*init)(void);
    const char *(*device_name)(void);
    /* what a person needs when the device does not work: library versions, processor features and the
     * kernels chosen, written into out (works whether or not init succeeded) */
    void (*about)(char *out, size_t size);
    /* NULL when there is no room (no error kept), or NULL with error() set when the device failed otherwise */
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
    int (*zero)(void *p, size_t bytes);
    int (*upload)(void *dst, const void *src, size_t bytes);   /* host -> device; src may be reused on return */
    int (*download)(void *dst, const void *src, size_t bytes); /* device -> host; waits for the copy */
    int (*copy)(void *dst, const void *src, size_t bytes);     /* within the device; the ranges do not overlap */
    /* Uploads that run beside the queued work (a copy stream on the GPU), for device memory the host sets apart
     * for them (the loader's batch buffers), which work queued after the call may read:
     *   mark():  a point in the device's queue after all work queued so far (0 on a device without a queue);
     *   upload_beside(dst, src, bytes, after): host -> device once the work queued before mark `after` (the
     *            buffer's last readers; 0: none) has finished, src reusable on return; work queued later waits
     *            for the copy, work queued earlier does not. */
    uint64_t (*mark)(void);
    int (*upload_beside)(void *dst, const void *src, size_t bytes, uint64_t after);
    /* dst[i] = src[i] over a strided index space of 1 to 5 dims, elements of elem_size bytes (1, 2, 4 or 8) */
    int (*copy_strided)(int elem_size, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
                        const void *src, const int64_t *src_stride);
    int (*synchronize)(void);
    /* the device's switches, the names checked by the host: "deterministic", "tf32", "channels_last" on the GPU,
     * "winograd" on the CPU */
    void (*set_option)(const char *option, int on);
    void (*release_cache)(void);   /* gives back memory the backend keeps for itself (workspaces); may be NULL */
    /* where the backend's own memory (scratch, workspaces) comes from: the host sets it when the device starts;
     * until then the backend's own heap */
    void (*set_allocator)(tsk_allocator a);
    /* 1 when alloc and release are slow and synchronize (cudaMalloc): the host's allocator keeps freed blocks */
    int caching;

    /* ---- the compute ops, from ops.def; NULL where this device does not have one ---- */
#define TSK_OP(where, ret, name, params) ret(*name) params;
#include "ops.def"
#undef TSK_OP
} tsk_backend;

/* The backends. The CUDA one exists only in a build with CUDA, and only the host's registry names it. */
extern const tsk_backend tsk_cpu_backend;
extern const tsk_backend tsk_cuda_backend;

/* The CPU matrix-product path: by the processor, or forced by name (generic, avx2, avx512, avx512bf16, amx) so that
 * each path this processor can run can be tested on it. NULL, or why not (a path this processor cannot run,
 * an unknown name). tsk_cpu_path names the path in use. */
const char *tsk_cpu_select_path(const char *name);
const char *tsk_cpu_path(void);
/* the fp32 floating-point operations per second of fused multiply-adds on every thread, on the path in use */
double tsk_cpu_peak_flops(void);

/* For the backends' declarations and tables made from ops.def: TSK_IF_<backend>_<where>(yes, no) is yes when
 * an op listed for `where` exists on that backend, else no. */
#define TSK_IF_CPU_ALL(yes, no) yes
#define TSK_IF_CPU_CPU(yes, no) yes
#define TSK_IF_CPU_CUDA(yes, no) no
#define TSK_IF_CUDA_ALL(yes, no) yes
#define TSK_IF_CUDA_CPU(yes, no) no
#define TSK_IF_CUDA_CUDA(yes, no) yes

#ifdef __cplusplus
}
#endif
#endif

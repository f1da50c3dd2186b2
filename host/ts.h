/* ts.h — the C API of tshost, the one header the Lua bindings see.
 *
 * Conventions
 *   - Every function that can fail returns an int (0 = success, -1 = failure) or a pointer (NULL = failure),
 *     and leaves a message in ts_last_error(). Nothing below main.c aborts or exits.
 *   - Tensors are opaque handles with reference-counted storage. A view shares the storage of its base.
 *     The caller owns every tensor a function returns and releases it with ts_tensor_free().
 *   - Layer functions follow Torch7: *_forward writes its output; *_backward overwrites gradInput
 *     (when non-NULL) and ACCUMULATES into the parameter gradients (when non-NULL).
 *   - Shapes are NCHW for images, [N, features] for vectors, as in PyTorch.
 *
 * The bindings parse this file with LuaJIT's ffi.cdef after dropping the preprocessor lines, so the
 * declarations below use only plain C: no macros inside declarations.
 */
#ifndef TS_H
#define TS_H
#include <stddef.h>
#include <stdint.h>

enum { TS_MAX_DIMS = 5 };

typedef enum { TS_FLOAT32 = 0, TS_UINT8 = 1, TS_INT32 = 2, TS_INT64 = 3, TS_FLOAT64 = 4 } ts_dtype;
typedef enum { TS_CPU = 0, TS_CUDA = 1 } ts_device;

typedef struct ts_tensor ts_tensor;

/* ---- errors and runtime (host/runtime.c) ---------------------------------------------------------- */
const char *ts_last_error(void);                 /* message of the last failure on this thread */
int ts_last_error_is_oom(void);                  /* 1 when that failure was a device running out of memory */
int ts_error(const char *fmt, ...);              /* sets the message; always returns -1 */
int ts_error_oom(const char *fmt, ...);          /* the same, marked as out of memory */
int ts_set_threads(int n);                       /* CPU threads for kernels (OpenMP), n >= 1 */
int ts_get_threads(void);
/* The one global random generator (xoshiro256**), documented global state: weight init, dropout,
 * shuffling and augmentation draw from it in program order, so one seed reproduces a run. */
void ts_manual_seed(uint64_t seed);
uint64_t ts_rng_u64(void);
double ts_rng_uniform(void);                     /* [0, 1) */
double ts_rng_normal(void);                      /* standard normal */
void ts_rng_get_state(uint64_t *state4);
void ts_rng_set_state(const uint64_t *state4);
/* Bytes of tensor storage allocated since the last call; the bindings use it to pace the garbage
 * collector, which cannot see C memory. */
size_t ts_alloc_pressure(void);

/* ---- devices and memory (host/device.c, host/memory.c) -------------------------------------------- */
/* A tensor lives on one device for its whole life; operations dispatch on it. CUDA exists when tshost
 * was built with nvcc and a device is present. Lua-level tensor arithmetic, reductions, random fills and
 * element access on a CUDA tensor go through a host copy (they serve preprocessing, metrics and tests);
 * layers, losses, optimizers and copies run on the device. */
int ts_cuda_built(void);                         /* 1 when built with CUDA */
int ts_cuda_available(void);                     /* built with CUDA, and a device answers */
/* why not ("" when it is available): built without CUDA, or the first failure of its start (no driver, a
 * driver too old for this CUDA, no device, a library missing) */
const char *ts_cuda_unavailable_reason(void);
const char *ts_cuda_device_name(void);
/* a device's backend described for a person (library versions, processor features, kernels chosen), whether
 * or not it started: what tshost --doctor prints */
int ts_device_about(int device, char *out, size_t size);
/* the CPU matrix-product path forced by name (generic, avx2, avx512, avx512bf16, amx; NULL or "": by the
 * processor), refused when this processor cannot run it; main.c applies TSHOST_CPU with it at startup */
int ts_cpu_select_path(const char *name);
const char *ts_cpu_path(void);   /* the CPU path in use: avx2, avx512, avx512bf16 or amx */
/* the processor's fp32 peak on the path in use, measured (about 0.3 s): every thread's fused multiply-adds, in
 * floating-point operations per second */
double ts_cpu_peak_flops(void);
/* the whole report of tshost --doctor (build, bindings under root, threads, processor and CPU kernels, GPU and
 * why it did not start, CUDA library versions and paths, environment) into out */
int ts_doctor_report(char *out, size_t size, const char *root);
int ts_cuda_synchronize(void);
/* the CUDA path's switches: "deterministic" (cuDNN algorithms that give the same bits every run; off),
 * "tf32" (TF32 tensor cores in fp32 convolutions; on), "channels_last" (bf16 convolutions in NHWC; on),
 * "sync" (debugging: wait and check after every kernel call, so a fault names its op; off, or
 * TSHOST_CUDA_SYNC=1) */
int ts_cuda_set(const char *option, int on);
/* the CPU's switch: "winograd" (3x3 stride-1 convolutions by Winograd's F(m x m, 3x3): 1, the default, the tile size
 * m per shape; 2 or 4, that m; 0, im2col) */
int ts_cpu_set(const char *option, int on);
ts_tensor *ts_tensor_new_on(int device, int dtype, int ndim, const int64_t *shape);   /* zero-filled */
ts_tensor *ts_tensor_to(ts_tensor *t, int device);   /* t retained when already there, else a contiguous copy */
/* Bytes of storage per device. The CUDA allocator caches freed blocks (cached); the limit, when set,
 * makes allocations beyond it fail as a full device would (also on the CPU, to exercise that path). */
typedef struct {
    int64_t in_use, peak, cached, limit;
    int64_t allocations, cache_hits, failures;
} ts_memory_stats;
int ts_memory_get_stats(int device, ts_memory_stats *out);
int ts_memory_reset_peak(int device);
int ts_memory_set_limit(int device, int64_t bytes);   /* 0: no limit */
void ts_memory_empty_cache(void);                 /* cached CUDA blocks and workspaces back to the driver */

/* ---- tensors (host/tensor.c) ---------------------------------------------------------------------- */
ts_tensor *ts_tensor_new(int dtype, int ndim, const int64_t *shape);      /* zero-filled, contiguous */
ts_tensor *ts_tensor_from_buffer(int dtype, int ndim, const int64_t *shape, const void *data); /* copies */
void ts_tensor_free(ts_tensor *t);
ts_tensor *ts_tensor_retain(ts_tensor *t);       /* same handle, one more reference */
int ts_tensor_ndim(const ts_tensor *t);
int64_t ts_tensor_size(const ts_tensor *t, int dim);
int64_t ts_tensor_stride(const ts_tensor *t, int dim);
int64_t ts_tensor_numel(const ts_tensor *t);
int ts_tensor_dtype(const ts_tensor *t);
int ts_tensor_device(const ts_tensor *t);
int ts_tensor_is_contiguous(const ts_tensor *t);
int ts_tensor_same_storage(const ts_tensor *a, const ts_tensor *b);
void *ts_tensor_data(const ts_tensor *t);        /* address of element [0,...,0] */
int ts_dtype_size(int dtype);

/* views: share storage */
ts_tensor *ts_tensor_view(ts_tensor *t, int ndim, const int64_t *shape);  /* contiguous only; one dim may be -1 */
ts_tensor *ts_tensor_narrow(ts_tensor *t, int dim, int64_t start, int64_t length);
ts_tensor *ts_tensor_select(ts_tensor *t, int dim, int64_t index);       /* drops the dim */
ts_tensor *ts_tensor_slice(ts_tensor *t, int dim, int64_t start, int64_t length, int64_t step); /* every step-th */
ts_tensor *ts_tensor_transpose(ts_tensor *t, int dim0, int dim1);
ts_tensor *ts_tensor_unsqueeze(ts_tensor *t, int dim);             /* a new dim of size 1 before dim (0..ndim) */
ts_tensor *ts_tensor_expand(ts_tensor *t, int ndim, const int64_t *shape); /* broadcast view, stride 0 */
ts_tensor *ts_tensor_contiguous(ts_tensor *t);  /* the same tensor (retained) or a contiguous copy */

/* copies and fills: any strides, dtype converted; shapes must have equal element counts in order */
int ts_tensor_copy(ts_tensor *dst, const ts_tensor *src);
int ts_tensor_fill(ts_tensor *t, double value);
int ts_tensor_uniform(ts_tensor *t, double lo, double hi);
int ts_tensor_normal(ts_tensor *t, double mean, double std);
int ts_tensor_get(const ts_tensor *t, const int64_t *index, double *value);   /* a device's element is copied */
int ts_tensor_set(ts_tensor *t, const int64_t *index, double value);

/* elementwise arithmetic with NumPy broadcasting; out has the broadcast shape and may alias an input. Integer
 * operands (and whole scalars) are computed in int64, wrapping; the rest in double (float32 alone in float), each
 * result stored once into out's dtype, which the caller chooses (the bindings promote as PyTorch); a real result
 * into an integer out is refused, a comparison's 0 and 1 excepted */
typedef enum { TS_ADD, TS_SUB, TS_MUL, TS_DIV, TS_MAXIMUM, TS_MINIMUM, TS_POW, TS_EQ, TS_LT, TS_GT } ts_binop;
typedef enum { TS_NEG, TS_EXP, TS_LOG, TS_SQRT, TS_ABS, TS_TANH, TS_SIGMOID, TS_FLOOR, TS_SQUARE } ts_unop;
int ts_tensor_binary(ts_tensor *out, const ts_tensor *a, const ts_tensor *b, int op);
int ts_tensor_binary_scalar(ts_tensor *out, const ts_tensor *a, double s, int op, int scalar_first);
int ts_tensor_unary(ts_tensor *out, const ts_tensor *a, int op);
int ts_tensor_axpy(ts_tensor *y, double alpha, const ts_tensor *x);          /* y += alpha x, same numel */
/* reductions over one dim (out has that dim of size 1) or, with dim = -1, over everything (out numel 1); a
 * contiguous input of any dtype, compared in its own type, summed in double. out: int64 for argmax/argmin
 * (0-based), float32/float64 or the input's dtype for max/min, float32/float64 for sum/mean */
typedef enum { TS_SUM, TS_MEAN, TS_MAX, TS_MIN, TS_ARGMAX, TS_ARGMIN } ts_reduce;
int ts_tensor_reduce(ts_tensor *out, const ts_tensor *a, int dim, int op);
/* out[M,N] = a[M,K] @ b[K,N] (2-d, float32), optional transposes */
int ts_tensor_matmul(ts_tensor *out, const ts_tensor *a, const ts_tensor *b, int trans_a, int trans_b);

/* ---- host round trips of tensor math (host/tensor_math.c) ------------------------------------------- */
/* The arithmetic and reductions above run on host copies when an operand is on cuda (all but the whole-tensor
 * add/mul/scale the layers use). ts_math_fallback is the decision each such op takes, device being where its
 * operands live: 0 to go on (counted when device is not the host), or -1 with an error naming op in strict
 * mode, which the training step on the GPU runs in (a round trip there would stall every step). */
int ts_math_fallback(const char *op, int device);
int64_t ts_math_fallbacks(void);                 /* host round trips so far */
int ts_math_set_strict(int on);                  /* returns the previous setting */
int ts_math_is_strict(void);

/* ---- layers (one file each in host/) -------------------------------------------------------------- */
/* Compute precision of the matrix products in convolutions and linear layers (mixed precision):
 * TS_MATH_BF16 rounds their operands (inputs, weights, output gradients) to bfloat16 and sums the
 * products in fp32; storage, every other layer, the loss and the optimizer stay fp32. */
enum { TS_MATH_FP32 = 0, TS_MATH_BF16 = 1 };
typedef struct {
    int stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;   /* asymmetric zero padding (TensorFlow 'same') */
    int dilation_h, dilation_w;
    int groups;
    int math;                                       /* TS_MATH_* */
    int relu;                                       /* the forward's output through a ReLU, fused; 0: none */
} ts_conv2d_params;
int ts_conv2d_output_size(const ts_tensor *x, const ts_tensor *weight, const ts_conv2d_params *p, int64_t *shape4);
/* x [N,C,H,W], weight [O,C/groups,KH,KW], bias [O] or NULL -> y [N,O,OH,OW] */
int ts_conv2d_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                      const ts_conv2d_params *p);
int ts_conv2d_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                       const ts_tensor *x, const ts_tensor *weight, const ts_conv2d_params *p);

/* x [N,C] or [N,C,H,W]; weight/bias [C] or NULL (affine=false); save_mean/save_invstd [C] get the batch's
 * statistics in training mode and the running ones (as 1/sqrt(var + eps)) in eval mode when given, for the
 * backward. running stats updated in training mode with PyTorch's momentum. relu: the ReLU that follows, fused
 * (y = relu(batchnorm(x)); batch norm's own output is never stored). */
int ts_batchnorm_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                         ts_tensor *running_mean, ts_tensor *running_var, ts_tensor *save_mean,
                         ts_tensor *save_invstd, int training, int relu, double momentum, double eps);
/* A batch norm in evaluation folded into the convolution (or linear layer) before it, for inference:
 * w_out = w scale, b_out = b scale + shift per output channel (scale = gamma / sqrt(running_var + eps), shift =
 * beta - running_mean scale; b, gamma, beta may be NULL), so that conv(x, w_out) + b_out = bn(conv(x, w) + b) */
int ts_batchnorm_fold(ts_tensor *w_out, ts_tensor *b_out, const ts_tensor *w, const ts_tensor *b, const ts_tensor *gamma,
                      const ts_tensor *beta, const ts_tensor *running_mean, const ts_tensor *running_var, double eps);
/* relu_y: the fused ReLU's output (the forward's y with relu), grad_y being the gradient of that output; NULL
 * when no ReLU was fused */
int ts_batchnorm_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                          const ts_tensor *relu_y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *save_mean,
                          const ts_tensor *save_invstd, int training);

typedef enum { TS_RELU, TS_LEAKY_RELU, TS_ELU } ts_activation;
int ts_activation_forward(ts_tensor *y, const ts_tensor *x, int kind, double param);
int ts_activation_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *x, const ts_tensor *y,
                           int kind, double param);

/* Upsample2d, nearest neighbour by whole factors (host/upsample2d.c): x [N,C,H,W] -> y [N,C,H*sh,W*sw];
 * the backward overwrites grad_x with each pixel's summed sh x sw block of grad_y */
int ts_upsample2d_forward(ts_tensor *y, const ts_tensor *x, int sh, int sw);
int ts_upsample2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, int sh, int sw);

/* The spatial transformer (host/spatial_transformer.c), as PyTorch's affine_grid and grid_sample (bilinear, zero
 * padding, align_corners = false): theta [N,2,3] -> grid [N,H,W,2] (H, W from grid's shape); x [N,C,H,W] sampled
 * at grid [N,OH,OW,2] -> y [N,C,OH,OW]. The backwards overwrite their outputs; grad_x or grad_grid may be NULL. */
int ts_affine_grid_forward(ts_tensor *grid, const ts_tensor *theta);
int ts_affine_grid_backward(ts_tensor *grad_theta, const ts_tensor *grad_grid);
int ts_grid_sample_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *grid);
int ts_grid_sample_backward(ts_tensor *grad_x, ts_tensor *grad_grid, const ts_tensor *x, const ts_tensor *grid,
                            const ts_tensor *grad_y);

typedef struct {
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    int ceil_mode;
    int count_include_pad;   /* average pooling only, PyTorch's default is 1 */
} ts_pool2d_params;
int ts_pool2d_output_size(const ts_tensor *x, const ts_pool2d_params *p, int64_t *shape4);
/* indices [N,C,OH,OW] int32: position of each maximum inside its input plane */
int ts_maxpool2d_forward(ts_tensor *y, ts_tensor *indices, const ts_tensor *x, const ts_pool2d_params *p);
int ts_maxpool2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *indices,
                          const ts_pool2d_params *p);
int ts_avgpool2d_forward(ts_tensor *y, const ts_tensor *x, const ts_pool2d_params *p);
int ts_avgpool2d_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_pool2d_params *p);

/* x [N,I], weight [O,I], bias [O] or NULL -> y [N,O] = x weight^T + bias; math: TS_MATH_* */
int ts_linear_forward(ts_tensor *y, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias, int math);
int ts_linear_backward(ts_tensor *grad_x, ts_tensor *grad_weight, ts_tensor *grad_bias, const ts_tensor *grad_y,
                       const ts_tensor *x, const ts_tensor *weight, int math);

/* y = x * mask with mask 0 (probability p) or 1/(1-p), a function of seed and the element's index only (the
 * Philox generator of kernels/pointwise.h), the same on either device: the forward draws a seed (from the
 * global generator), and its backward passes the output gradient through the same mask with the same seed.
 * y may be x. */
int ts_dropout(ts_tensor *y, const ts_tensor *x, double p, uint64_t seed);

/* Metric learning on embeddings x [N, D] (host/metric.c). y = x / max(||x||, eps) row by row, and its backward.
 * Batch-hard mining: for each anchor i (labels int64 [N]) the farthest row of its class and the nearest of another
 * (int32 [N] each; -1, and anchor -1, where there is none). The triplet margin loss (PyTorch's TripletMarginLoss,
 * p = 2): the mean of max(d(a,p) - d(a,n) + margin, 0) over the triplets (int32 [T] row indices, 0-based; one with a
 * -1 is skipped), d(u,v) = ||u - v + eps||. The contrastive loss over every pair of the batch: (d^2 for one class,
 * max(margin - d, 0)^2 for two) / 2, averaged. loss: float32 [1] on x's device (nothing waits for it); grad_x
 * [N, D] or NULL, overwritten. */
int ts_normalize_rows(ts_tensor *y, const ts_tensor *x, double eps);
int ts_normalize_rows_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *x, const ts_tensor *y, double eps);
int ts_triplet_mine(ts_tensor *anchors, ts_tensor *positives, ts_tensor *negatives, const ts_tensor *x,
                    const ts_tensor *labels, double eps);
int ts_triplet_loss(ts_tensor *loss, ts_tensor *grad_x, const ts_tensor *x, const ts_tensor *anchors,
                    const ts_tensor *positives, const ts_tensor *negatives, double margin, double eps);
int ts_contrastive_loss(ts_tensor *loss, ts_tensor *grad_x, const ts_tensor *x, const ts_tensor *labels, double margin);

/* logits [N,C], targets int64 [N] with 0-based classes (on the host or the logits' device), class_weight [C]
 * or NULL; mean reduction as PyTorch's cross_entropy(weight=, label_smoothing=). grad_logits [N,C] (may be
 * NULL) gets d loss / d logits. */
int ts_cross_entropy(double *loss, ts_tensor *grad_logits, const ts_tensor *logits, const ts_tensor *targets,
                     const ts_tensor *class_weight, double label_smoothing);
/* The same without waiting for the device: the mean loss is written into loss (float32 [1] on the logits'
 * device) and, when correct (float32 [1], same device) is given, the number of samples whose largest logit
 * is their target's is added to it. With targets on the host nothing waits for a GPU. */
int ts_cross_entropy_into(ts_tensor *loss, ts_tensor *correct, ts_tensor *grad_logits, const ts_tensor *logits,
                          const ts_tensor *targets, const ts_tensor *class_weight, double label_smoothing);

/* Distillation (host/distill.c): logits [N,C] of the student, teacher_logits [M,N,C] of 1 to 16 teachers (the
 * mean of their softmax(t / temperature) is the target), on one device. Adds weight T^2 / N sum_i KL(p_i || q_i),
 * q = softmax(logits / T), to loss (float32 [1]) and weight T / N (q - p) to grad_logits [N,C] (may be NULL):
 * called after ts_cross_entropy_into, whose share the caller has scaled, it makes the mixed loss. */
int ts_distill_into(ts_tensor *loss, ts_tensor *grad_logits, const ts_tensor *logits, const ts_tensor *teacher_logits,
                    double temperature, double weight);

/* ---- files (host/writefile.c) ----------------------------------------------------------------------------
 * bytes written to path whole or not at all: a temporary file beside it (path.tmp<pid>), renamed over it; a
 * failure (named with the system's reason) leaves the previous file as it was. durable: flushed to the disk
 * before the rename, so that a power cut cannot leave an empty file either (run files, models; an image is
 * not worth the wait). */
int ts_write_file(const char *path, const void *data, size_t bytes, int durable);

/* the names in a folder (not . and ..), each followed by '/' (which no name holds), in the order the system gives
 * (host/listdir.c); malloc'd, for free(); NULL with the system's reason when it cannot be read */
char *ts_list_dir(const char *path);

/* ---- optimizers (host/optim.c): PyTorch's update rules over the `count` tensors of a parameter group --------
 * (one launch on a GPU for all of them). Each list has count entries; a tensor listed twice, or sharing memory
 * with another's state, is refused. SGD: momentum_buffers NULL (no momentum) or one per tensor, first_step[k]
 * nonzero where that buffer starts as the gradient (may be NULL: none does). */
int ts_sgd_step(int count, ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *momentum_buffers,
                const int *first_step, double lr, double momentum, double dampening, double weight_decay, int nesterov);
/* decoupled = 1 is AdamW; steps[k] is tensor k's step count, from 1 */
int ts_adam_step(int count, ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *exp_avg,
                 ts_tensor *const *exp_avg_sq, const int64_t *steps, double lr, double beta1, double beta2, double eps,
                 double weight_decay, int decoupled);
/* sum of squares of a tensor (NaN on an error); _add adds it to acc, a float64 tensor [1] on t's device,
 * without waiting for the device: gradient-norm clipping over many tensors sums there and scales from it there */
double ts_tensor_sumsq(const ts_tensor *t);
int ts_tensor_sumsq_add(ts_tensor *acc, const ts_tensor *t);
/* t *= max_norm / (sqrt(sumsq) + 1e-6) when sqrt(sumsq) > max_norm, sumsq a float64 [1] on t's device (not read back) */
int ts_tensor_clip_scale(ts_tensor *t, const ts_tensor *sumsq, double max_norm);

/* ---- safetensors checkpoints (host/safetensors.c) ------------------------------------------------ */
/* Writes path atomically: a temporary file beside it, fsync, rename. metadata_json is a JSON object of
 * string values or NULL. */
int ts_safetensors_write(const char *path, int count, const char *const *names, ts_tensor *const *tensors,
                         const char *metadata_json);
typedef struct ts_safetensors ts_safetensors;
ts_safetensors *ts_safetensors_open(const char *path);
void ts_safetensors_close(ts_safetensors *f);
int ts_safetensors_count(const ts_safetensors *f);
const char *ts_safetensors_name(const ts_safetensors *f, int i);
/* the file's dtype of tensor i ("F32", "BF16", ...): F16 and BF16 tensors are read as float32 */
const char *ts_safetensors_dtype(const ts_safetensors *f, int i);
ts_tensor *ts_safetensors_tensor(const ts_safetensors *f, int i);   /* a new tensor holding a copy */
const char *ts_safetensors_metadata(const ts_safetensors *f);     /* the __metadata__ object as JSON, or "{}" */

/* ---- dataset readers (host/pickle.c) ---------------------------------------------------------------- */
/* A pickled dict of numpy arrays (protocols 2-5, numpy 1.x/2.x). Every numeric dtype is read, as the
 * tshost dtype that holds its values (bool -> uint8, int8/int16/uint16 -> int32, uint32/uint64 -> int64,
 * float16 -> float32; big-endian arrays swapped). Nothing in the file is executed: globals other than numpy's
 * array reconstruction are refused. Entries that are not numeric arrays (strings, objects, complex, dates,
 * plain Python values) are skipped and listed as "key: why". */
typedef struct ts_pickle ts_pickle;
ts_pickle *ts_pickle_load(const char *path);
void ts_pickle_free(ts_pickle *p);
int ts_pickle_count(const ts_pickle *p);
const char *ts_pickle_key(const ts_pickle *p, int i);
ts_tensor *ts_pickle_tensor(const ts_pickle *p, int i);   /* a new reference */
int ts_pickle_skipped_count(const ts_pickle *p);
const char *ts_pickle_skipped(const ts_pickle *p, int i);   /* "key: why it was not read" */

/* Generated traffic-sign-like images [N,H,W,3] with their classes (host/synth.c), deterministic by seed */
int ts_synth_signs(ts_tensor *images, ts_tensor *labels, int classes, uint64_t seed);

/* ---- Ctrl-C (host/main.c) ------------------------------------------------------------------------------ */
/* Deferred mode, for the trainer: the first SIGINT only counts (the trainer finishes its update, writes a
 * checkpoint and stops), a second one ends the process at once with status 130. on: deferred, count reset;
 * off: back to the usual behaviour (a script ends, the REPL interrupts the chunk). */
void ts_interrupt_defer(int on);
int ts_interrupt_pending(void);   /* SIGINTs received since deferred mode was turned on (0 when off) */

/* ---- images (host/image.c): uint8 [H, W, C] ------------------------------------------------------------ */
/* PNG, JPEG, PPM/PGM, BMP, GIF, TGA through stb_image; channels 0 keeps the file's, 1-4 converts.
 * An image of more pixels than the limit is refused from its header, before anything is decoded. */
ts_tensor *ts_image_load(const char *path, int channels);
/* the pixel limit (width x height) for ts_image_load: default 89,478,485 as Pillow's, or TSHOST_MAX_PIXELS;
 * 0 leaves it as it is; returns the limit in force */
int64_t ts_image_pixel_limit(int64_t limit);
/* PNG, or JPEG (quality 95), BMP or TGA when the path ends in .jpg/.jpeg, .bmp or .tga */
int ts_image_save(const char *path, const ts_tensor *image);
/* the PNG file of a uint8 image [H,W,C] (C = 1 to 4), as a uint8 tensor of its bytes (TensorBoard's images) */
ts_tensor *ts_image_encode_png(const ts_tensor *image);
/* CRC-32C (Castagnoli) of n bytes, TFRecord's checksum (host/crc32c.c) */
uint32_t ts_crc32c(const void *data, size_t n);
/* dst's size is the output size; roi = {x1, y1, x2, y2} in source pixels (end exclusive) or NULL; a region
   that overlaps the image may reach up to the image's size beyond it, where its border pixels repeat */
int ts_image_resize(ts_tensor *dst, const ts_tensor *src, const double *roi);

/* ---- batches: preprocessing and augmentation (host/batch.c, kernels/cpu/augment.c) ----------------- */
typedef struct {
    double rotate;                  /* degrees, uniform in [-rotate, rotate] */
    double scale_min, scale_max;    /* zoom factor (1, 1 = none) */
    double translate;               /* fraction of the size, each axis uniform in [-t, t] */
    double shear;                   /* degrees along x */
    double perspective;             /* projective tilt, each axis uniform in [-p, p] (0.1 is strong) */
    double brightness, contrast, saturation;   /* factors uniform in [1 - v, 1 + v] */
    double hue;                     /* turns, uniform in [-v, v] */
    double gamma_min, gamma_max;    /* log-uniform; 0 = none */
    double exposure_prob, exposure_max;   /* overexposure: with this probability a gain log-uniform in
                                             [1, exposure_max] before the clip to 0..1, so bright parts
                                             saturate channel by channel, as on a sensor (washed-out rims) */
    double washout_prob, washout_max;   /* overexposure relative to the image's own light: with this probability
                                           the gain that brings its bright level (the 90th percentile of each
                                           pixel's brightest channel) to 1, times a gain log-uniform in
                                           [1, washout_max]: a dark image's rim washes out as a bright one's */
    double fade_prob, fade_max;     /* faded red paint: with this probability a fraction uniform in [0, fade_max]
                                       of each pixel's excess of red moved into green and blue (sun-bleached
                                       rims: a red-rimmed sign pales toward white, its black symbol stays) */
    double shadow_prob, shadow_min; /* a cast shadow: with this probability a band between two parallel lines at a
                                       random angle and place, from a pole's width to most of the image, darkened
                                       by a gain uniform in [shadow_min, 1], its edges soft over 0.5 to 3 pixels
                                       (the shade of a pole, a branch or a roof edge across a sunlit sign) */
    double blur_prob, blur_sigma;   /* Gaussian blur with this probability, sigma uniform up to blur_sigma */
    double noise;                   /* Gaussian noise, standard deviation uniform in [0, noise] (0..1 scale) */
    double cutout_prob;
    int cutout_size;                /* a square of this side filled with the mean */
    double flip_prob;               /* horizontal flip where the flip map allows it (and relabels) */
} ts_augment;

/* the largest output side a batch is resized to, and the most CLAHE tiles a side */
enum { TS_PREPROCESS_MAX_SIDE = 8192, TS_PREPROCESS_MAX_TILES = 64 };
typedef struct {
    int grayscale;                  /* one output channel: 0.299 R + 0.587 G + 0.114 B */
    int equalize;                   /* 0 none, 1 global histogram equalization, 2 CLAHE, on luminance */
    int clahe_tiles;                /* CLAHE grid (tiles x tiles) */
    double clahe_clip;              /* CLAHE clip limit, times the mean bin count */
    int out_h, out_w;               /* output size (0 = the images' own) */
    float mean[3], std[3];          /* (x - mean) / std per output channel, x in 0..1 */
} ts_preprocess;

/* x float [count, C', H', W'] and y int64 [count] from images uint8 [N,H,W,C] and labels int64 [N] at the
 * 0-based indices. aug may be NULL (no augmentation). flip_map[c] = the class a mirrored sign of class c
 * shows, or -1 when mirroring is not allowed. Random draws depend on seed and batch position only. */
int ts_batch_fill(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels, const int64_t *indices,
                  int count, const ts_augment *aug, const ts_preprocess *pre, const int32_t *flip_map, int flip_classes,
                  uint64_t seed);
/* 0, or -1 with an error "what: ..." naming the first setting that is not finite or outside its range */
int ts_augment_check(const char *what, const ts_augment *aug);
/* The source-to-output transform used by the augmentation (for tests and for showing what it does) */
int ts_augment_matrix(double *forward9, int h, int w, int out_h, int out_w, double rotate_deg, double scale,
                      double shear_deg, double tx, double ty, double px, double py);

/* The prefetching loader (host/loader.c): `workers` background threads build an epoch's batches, up to
 * `depth` ahead, handed out in order and identical whatever the number of workers. It keeps references
 * to images and labels and copies aug, pre and flip_map (aug NULL: none). device TS_CUDA: the images x
 * come on the GPU (finished there when the augmentation allows: see host/batch.c), labels on the host. */
enum { TS_LOADER_MAX_WORKERS = 32, TS_LOADER_MAX_PREFETCH = 64 };
typedef struct ts_loader ts_loader;
ts_loader *ts_loader_new(ts_tensor *images, ts_tensor *labels, const ts_augment *aug, const ts_preprocess *pre,
                         const int32_t *flip_map, int flip_classes, int depth, int workers, int device);
/* order: the epoch's 0-based image indices (copied), cut into batches; the last is smaller unless drop_last.
 * first_batch (0-based) > 0 resumes an epoch there: the batches are those an epoch from 0 would give. */
int ts_loader_start(ts_loader *l, const int64_t *order, int64_t n, int batch_size, int drop_last, uint64_t seed,
                    int first_batch);
/* 1 and new references in *x, *y; 0 at the end of the epoch; -1 on error (ts_last_error_is_oom says whether
 * it was an out-of-memory, in a worker or while the batch was finished on the GPU), after which the epoch
 * delivers nothing more until ts_loader_retry */
int ts_loader_next(ts_loader *l, ts_tensor **x, ts_tensor **y);
/* the epoch goes on from the first batch not yet delivered, built again (the same images and draws), the
 * batches built ahead dropped: after a failure, once memory has been released */
int ts_loader_retry(ts_loader *l);
int ts_loader_batches(const ts_loader *l);
void ts_loader_free(ts_loader *l);

#endif

/* internal.h — what the host's C files share and the bindings never see: the tensor layout and the
 * argument checks every layer makes. */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H
#include "ts.h"

typedef struct {
    void *data;          /* on the device: a CUDA tensor's data is a device address */
    size_t bytes;
    size_t granted;      /* what the allocator handed out (memory.c) */
    int refcount;
    int device;
} ts_storage;

struct ts_tensor {
    ts_storage *storage;
    int64_t offset;                 /* in elements */
    int dtype;
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    int64_t stride[TS_MAX_DIMS];    /* in elements */
    int refcount;                   /* of this handle: views are new handles on the same storage */
};

void ts_note_allocation(size_t bytes);

/* tensor.c: element i of a block of the given dtype, as a double (exact but for int64 beyond 2^53), and stored
 * from one (uint8 saturates, NaN gives 0; int32 wraps from int64; out of range and NaN give INT64_MIN for int64) */
double ts_element_load(const void *base, int dtype, int64_t i);
void ts_element_store(void *base, int dtype, int64_t i, double v);
/* the same in int64, exactly (beyond 2^53 too), for integer arithmetic: an integer dtype's element loaded, and
 * stored wrapping into uint8 and int32 as integer arithmetic wraps (PyTorch's uint8 255 + 1 is 0; a conversion
 * to uint8 saturates instead), into a float dtype rounded once */
int ts_dtype_is_integer(int dtype);
int64_t ts_element_load_int(const void *base, int dtype, int64_t i);
void ts_element_store_int(void *base, int dtype, int64_t i, int64_t v);

/* readfile.c: the whole file (malloc; NULL with an error naming the file: it cannot be opened or read, is a
 * directory, is longer than limit bytes, or its first bytes are refused), and what a file's first bytes say it
 * is ("a gzip-compressed file", "a Python pickle", ...; NULL when none of the kinds tshost knows) and, when
 * is_image is given, whether that kind is an image format: 1 one stb_image reads, 2 one it does not (TIFF, WebP,
 * HEIC, ...). `first`, when given, sees the first bytes (the first 64 KiB, or the whole file when shorter)
 * before the rest is read, and returns non-zero with an error set to stop there: a stream such as /dev/zero
 * has no end to wait for. A stream (a pipe, a device) is read to at most half the machine's memory. */
typedef int (*ts_first_bytes)(const char *path, const unsigned char *bytes, size_t n);
unsigned char *ts_read_file(const char *path, size_t limit, size_t *size, ts_first_bytes first);
const char *ts_file_kind(const unsigned char *bytes, size_t n, int *is_image);

/* writefile.c: a file written whole or not at all (a temporary file beside it, with durable flushed to the disk,
 * then renamed over it), failures named with the system's reason. ts_atomic_write keeps the first failure; ts_atomic_close
 * with ok = 1 commits (0, or -1 with the error and the previous file untouched), with ok = 0 abandons (-1, the
 * caller's error kept). ts_write_file (ts.h) is the three for one buffer. */
typedef struct ts_atomic_file ts_atomic_file;
ts_atomic_file *ts_atomic_open(const char *path, int durable);
void ts_atomic_write(ts_atomic_file *f, const void *data, size_t bytes);
int ts_atomic_close(ts_atomic_file *f, int ok);

/* memory.c: storage blocks per device (NULL and an out-of-memory error when there is no room) */
void *ts_memory_alloc(int device, size_t bytes, size_t *granted);
void ts_memory_release(int device, void *p, size_t granted);

/* device.c: the kernels for a tensor's device, and what moves data between devices */
#include "../kernels/kernels.h"
/* memory.c's allocator for a backend's own memory (scratch, workspaces), handed over when its device starts */
tsk_allocator ts_memory_allocator(int device);
_Static_assert((int)TS_MATH_FP32 == (int)TSK_MATH_FP32 && (int)TS_MATH_BF16 == (int)TSK_MATH_BF16, "the host passes TS_MATH_* to the kernels");
const tsk_backend *ts_kernels(const ts_tensor *t);
/* the backend of a device, made ready on first use; NULL when the build or the machine has none (then
 * ts_cuda_unavailable_reason says why) */
const tsk_backend *ts_backend(int device);
const tsk_backend *ts_backend_started(int device);   /* the same, without starting one that was never used */
/* the error for an op a backend does not have (its table entry is NULL): "what: not available on cuda" */
int ts_kernel_missing(const tsk_backend *k, const char *what);
/* 0, or the backend's error as ours (marked out of memory when it was) */
int ts_kernel_status(const tsk_backend *k, const char *what);
/* "what: a is on cuda but b on cpu" when the non-NULL tensors disagree; 0 when they agree */
int ts_check_same_device(const char *what, const ts_tensor *a, const ts_tensor *b, const ts_tensor *c,
                         const ts_tensor *d);
int ts_device_zero(int device, void *data, size_t bytes);
/* ts_tensor_copy's two halves: same dtype on one device (any strides, overlap-safe), and the rest with a
 * device side (across devices, or a dtype conversion, done on the host) */
int ts_copy_within(ts_tensor *dst, const ts_tensor *src);
int ts_device_copy(ts_tensor *dst, const ts_tensor *src);
/* a CPU tensor with t's values (t itself retained when it is on the CPU), NULL on failure */
ts_tensor *ts_host_copy(const ts_tensor *t);
static inline int ts_on_cuda(const ts_tensor *t) { return t && t->storage->device == TS_CUDA; }
int ts_require_cpu(const char *what, const ts_tensor *t);   /* an error naming what for a CUDA tensor */
int64_t ts_row_offset(const ts_tensor *t, int64_t r);  /* first element of row r (rows = all dims but the last) */

static inline float *ts_f32(const ts_tensor *t) { return (float *)ts_tensor_data(t); }

/* Shape checks that produce "name: expected ..., got [2,3,4]" messages. Each returns 0 or -1. */
int ts_check_dtype(const char *what, const ts_tensor *t, ts_dtype dtype);   /* that dtype, contiguous, non-NULL */
int ts_check_f32(const char *what, const ts_tensor *t);           /* float32, contiguous, non-NULL */
/* a result written through one index per element: an expanded view (stride 0) is refused, as PyTorch does
 * (numpy's broadcast views are read-only), since the operation would be applied once per repeat */
int ts_check_writable(const char *what, const ts_tensor *out);
int ts_check_shape(const char *what, const ts_tensor *t, int ndim, const int64_t *shape);   /* float32 */
int ts_check_shape_of(const char *what, const ts_tensor *t, ts_dtype dtype, int ndim, const int64_t *shape);
int ts_check_numel(const char *what, const ts_tensor *t, int64_t numel);
int ts_check_math(const char *what, int math);                     /* a TS_MATH_* value */
const char *ts_shape_str(const ts_tensor *t, char *buf, size_t size);

/* The element count and byte size of a shape, refused when a size is negative or a product leaves int64
 * (shapes read from files are hostile: (2^32, 2^32, 3) must not wrap to a small count). Returns 0 and fills
 * numel and bytes, or -1 with an error "what: ..." naming the shape. */
int ts_shape_bytes(const char *what, int ndim, const int64_t *shape, int64_t elem_size, int64_t *numel, int64_t *bytes);

/* Every NaN of a new contiguous CPU float tensor made the one quiet NaN. A NaN's payload read from a file
 * would reach LuaJIT, which keeps numbers NaN-boxed and takes some NaN bit patterns for pointers: the float
 * 0xFFEC000A read by :get() or :sum() was a string to it, and crashed it. Every reader of floats calls it. */
void ts_tensor_plain_nans(ts_tensor *t);
/* an IEEE half (binary16) as a float, exactly; its NaNs as the one quiet NaN (numpy's float16, safetensors' F16) */
float ts_half_to_float(uint16_t h);

/* splitmix64: small independent generators, one per image, seeded from a batch seed and a position */
typedef struct { uint64_t s; } ts_splitmix;
static inline uint64_t ts_splitmix_next(ts_splitmix *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double ts_splitmix_uniform(ts_splitmix *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(ts_splitmix_next(r) >> 11) * 0x1.0p-53;
}

/* batch.c, shared with the loader. The GPU path in two halves: ts_batch_draw on any thread (the plans and
 * the batch's uint8 images gathered into raw [count,H,W,C]), ts_batch_apply_on_device on the thread that
 * owns the GPU. ts_batch_device_capable: whether the augmentation asked for exists on the GPU. */
int ts_batch_device_capable(const ts_augment *aug, const ts_preprocess *pre);
int ts_batch_draw(ts_tensor *raw, tsk_image_plan *plans, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                  const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                  const int32_t *flip_map, int flip_classes, uint64_t seed);
/* A device buffer for a batch's uint8 images and plans that its owner (the loader) keeps from batch to batch,
 * so that they are uploaded beside the queued work (the backend's upload_beside): its block (NULL until the
 * first batch) and the mark after the last work that read it. ts_batch_buffer_free gives the block back. */
typedef struct {
    ts_tensor *block;
    uint64_t read_until;
} ts_batch_buffer;
void ts_batch_buffer_free(ts_batch_buffer *b);
/* x [count, C', H', W'] on the device from raw [count, H, W, C] and plans on the host: both uploaded into one
 * device block (buffer's, or a temporary one when buffer is NULL, uploaded behind the queued work) and finished
 * there */
int ts_batch_apply_on_device(ts_tensor *x, const ts_tensor *raw, const tsk_image_plan *plans, int count,
                             const ts_preprocess *pre, ts_batch_buffer *buffer);
int ts_batch_check(const ts_tensor *images, const ts_tensor *labels, const ts_augment *aug, const ts_preprocess *pre,
                   int *h, int *w, int *c, int *out_c, int *oh, int *ow);
int ts_batch_fill_range(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                        const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                        const int32_t *flip_map, int flip_classes, uint64_t seed, int parallel);

#endif

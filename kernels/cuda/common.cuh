// common.cuh — what the CUDA kernel files share: the one context (stream, library handles, workspace,
// staging), the first-error record the host reads through the backend table, the declarations of the
// runtime and the ops the table holds, and launch sizes.
//
// Global state, documented: one device, one stream for all work and a copy stream for uploads beside it, the
// cuBLAS and cuDNN handles, the cuDNN algorithm cache, one growing workspace, a ring of pinned staging buffers,
// the queue's marks, the first error message. All of it is used from the Lua thread only.
#ifndef TSK_CUDA_COMMON_CUH
#define TSK_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

#include "../kernels.h"
#include "../pointwise.h"

struct tsk_cuda_context {
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    void *workspace;               // grown on demand: cuDNN workspaces and reduction scratch
    size_t workspace_bytes;
    cudaStream_t copy_stream;      // uploads beside the queued work (upload_beside)
    int deterministic;
    int tf32;
    int channels_last;             // bf16 convolutions staged as NHWC (conv2d.cu)
    char name[320];
};
extern tsk_cuda_context tsk_ctx;

// Records the first failure (kept until the host reads it); each returns true when all is well.
bool tsk_cuda_ok(cudaError_t e, const char *what);
bool tsk_blas_ok(cublasStatus_t s, const char *what);
bool tsk_dnn_ok(cudnnStatus_t s, const char *what);
void tsk_cuda_fail(int out_of_memory, const char *fmt, ...);
// a message for the person that is not an error (a fallback taken); the host prints it after the call
void tsk_cuda_note(const char *fmt, ...);
const char *tsk_cuda_notice(void);
const char *tsk_cuda_error(void);
int tsk_cuda_error_is_oom(void);
// after a launch: a bad configuration shows here, a fault only at the next synchronization
bool tsk_launch_ok(const char *what);

// the runtime behind the backend table (runtime.cu), with kernels.h's contract
int tsk_cuda_init(void);
const char *tsk_cuda_device_name(void);
void tsk_cuda_about(char *out, size_t size);
void *tsk_cuda_malloc(size_t bytes);
void tsk_cuda_free(void *p);
int tsk_cuda_memset0(void *p, size_t bytes);
int tsk_cuda_upload(void *dst, const void *src, size_t bytes);     // through the pinned staging buffers
uint64_t tsk_cuda_mark(void);
int tsk_cuda_upload_beside(void *dst, const void *src, size_t bytes, uint64_t after);
int tsk_cuda_download(void *dst, const void *src, size_t bytes);
int tsk_cuda_copy_device(void *dst, const void *src, size_t bytes);
int tsk_cuda_copy_strided(int elem_size, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
                          const void *src, const int64_t *src_stride);
int tsk_cuda_synchronize(void);
void tsk_cuda_set_option(const char *option, int on);
void tsk_cuda_release_workspace(void);
void tsk_cuda_set_allocator(tsk_allocator a);
// the bytes the host's allocator keeps cached (free for a workspace: an allocation that needs them gets them back),
// and those bytes and the workspace given back to the device now (for cuDNN's timed search, which allocates itself)
size_t tsk_cuda_cached_bytes(void);
void tsk_cuda_trim(void);
// the kernels' scratch memory, grown on demand and kept (NULL and the error set when it cannot grow)
void *tsk_cuda_workspace(size_t bytes);

// the compute ops behind the backend table, as ops.def lists them
#define TSK_OP(where, ret, name, params) TSK_IF_CUDA_##where(ret tsk_cuda_##name params;, )
#include "../ops.def"
#undef TSK_OP

// grid-stride loops: enough blocks to fill the device, never more than the work needs
static const int TSK_THREADS = 256;
static inline int tsk_blocks(int64_t n)
{
    int64_t b = (n + TSK_THREADS - 1) / TSK_THREADS;
    return (int)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

// f(i) for every i in 0..n-1, one thread each in a grid-stride loop, on the stream; the launch checked
template <typename F>
__global__ void tsk_each_kernel(int64_t n, F f)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}

template <typename F>
inline void tsk_each(int64_t n, const char *what, F f)
{
    if (n <= 0) return;
    tsk_each_kernel<<<tsk_blocks(n), TSK_THREADS, 0, tsk_ctx.stream>>>(n, f);
    tsk_launch_ok(what);
}

// The sum of v over a block of TSK_THREADS threads, in a fixed tree order (the same bits every run);
// every thread gets the result.
template <typename T>
__device__ inline T tsk_block_sum(T v)
{
    __shared__ T part[TSK_THREADS];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int step = TSK_THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
        __syncthreads();
    }
    T total = part[0];
    __syncthreads();
    return total;
}

// ---- per-channel reductions over x [N, C, S] ------------------------------------------------------------
// Two levels, in the same order on every GPU: `parts` blocks per channel (chosen from the sizes alone) each sum
// a fixed slice of the channel's M = N*S values with a block-wide tree, then one thread per channel adds its
// parts in order (tsk_channel_total). One block per channel, the old way, left most of a large GPU idle with
// 32 to 128 channels.
static inline int tsk_channel_parts(int64_t m)
{
    int64_t p = m / 8192;
    return (int)(p < 1 ? 1 : p > 64 ? 64 : p);
}

// partials[ch * parts + part] = the sums over the part's slice of the two values f(at, ch) gives (a double2),
// at being the element's index in x
template <typename F>
__global__ void tsk_channel_partials_kernel(int64_t n, int64_t c, int64_t s, int parts, F f, double2 *partials)
{
    int64_t ch = blockIdx.x / parts, m = n * s;
    int part = (int)(blockIdx.x % parts);
    int64_t begin = m * part / parts, end = m * (part + 1) / parts;
    double a = 0, b = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        double2 v = f((i / s * c + ch) * s + i % s, ch);
        a += v.x, b += v.y;
    }
    a = tsk_block_sum(a);
    b = tsk_block_sum(b);
    if (threadIdx.x == 0) partials[ch * parts + part] = make_double2(a, b);
}

template <typename F>
inline void tsk_channel_partials(int64_t n, int64_t c, int64_t s, int parts, F f, double2 *partials, const char *what)
{
    tsk_channel_partials_kernel<<<(unsigned)(c * parts), TSK_THREADS, 0, tsk_ctx.stream>>>(n, c, s, parts, f, partials);
    tsk_launch_ok(what);
}

// channel ch's two sums: its parts added in order
__device__ inline double2 tsk_channel_total(const double2 *partials, int64_t ch, int parts)
{
    double2 t = make_double2(0, 0);
    for (int p = 0; p < parts; p++) t.x += partials[ch * parts + p].x, t.y += partials[ch * parts + p].y;
    return t;
}

#endif

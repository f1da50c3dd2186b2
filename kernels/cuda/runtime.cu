// runtime.cu — the device, its streams and library handles, raw memory, copies, the first-error record.
// All work is queued on one stream: kernels, cuBLAS, cuDNN and copies run in program order, so memory the
// host's caching allocator hands out again is never still being read by an earlier kernel. The one exception
// is upload_beside, on a copy stream, for memory the host keeps apart for it (the loader's batch buffers),
// ordered against the stream by events both ways.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"

tsk_cuda_context tsk_ctx;

// A message kept until the host reads it: the first one since the last read. Two of them: the first error, and
// a note for the person that is not an error (a fallback taken).
struct kept_message {
    char text[512], reported[512];
};
static kept_message first_error, pending_note;
static int first_error_oom;

// keeps the message unless one is waiting already; returns whether it was kept
static bool keep(kept_message *m, const char *fmt, va_list ap)
{
    if (m->text[0]) return false;
    vsnprintf(m->text, sizeof m->text, fmt, ap);
    return true;
}

static const char *take(kept_message *m)
{
    if (!m->text[0]) return NULL;
    memcpy(m->reported, m->text, sizeof m->reported);
    m->text[0] = 0;
    return m->reported;
}

void tsk_cuda_fail(int out_of_memory, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (keep(&first_error, fmt, ap)) first_error_oom = out_of_memory;
    va_end(ap);
}

void tsk_cuda_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    keep(&pending_note, fmt, ap);
    va_end(ap);
}

const char *tsk_cuda_notice(void) { return take(&pending_note); }

bool tsk_cuda_ok(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return true;
    tsk_cuda_fail(e == cudaErrorMemoryAllocation, "%s: %s", what, cudaGetErrorString(e));
    return false;
}

bool tsk_blas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    if (s == CUBLAS_STATUS_ALLOC_FAILED) tsk_cuda_fail(1, "%s: out of memory (cuBLAS could not allocate)", what);
    else tsk_cuda_fail(0, "%s: cuBLAS status %d", what, (int)s);
    return false;
}

bool tsk_dnn_ok(cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS) return true;
    // an out-of-memory failure says so in words, which is what the Lua side's isOutOfMemory reads with the flag
    tsk_cuda_fail(s == CUDNN_STATUS_ALLOC_FAILED, "%s: %s%s", what, s == CUDNN_STATUS_ALLOC_FAILED ? "out of memory: " : "",
                  cudnnGetErrorString(s));
    return false;
}

bool tsk_launch_ok(const char *what) { return tsk_cuda_ok(cudaGetLastError(), what); }

const char *tsk_cuda_error(void) { return take(&first_error); }

int tsk_cuda_error_is_oom(void) { return first_error_oom; }

// ---- uploads ----
// Pageable memory makes cudaMemcpyAsync wait for the copy; a pinned buffer lets the copy run behind the queued
// work. A ring of STAGING_SLOTS pinned buffers of at most STAGING_CHUNK bytes each, used in turn: a slot is
// filled once the copy out of it has finished (its event), so the host waits only when it is STAGING_SLOTS
// copies ahead of the device (two buffers made every upload wait for the one two uploads back, queued behind
// the previous step's backward: the host could not run more than about a step ahead).
static const int STAGING_SLOTS = 8;
static const size_t STAGING_CHUNK = (size_t)4 << 20;
static char *staging[STAGING_SLOTS];
static size_t staging_bytes[STAGING_SLOTS];
static cudaEvent_t staging_free[STAGING_SLOTS];
static int next_slot;

// The queue's marks (mark()): events recorded on the stream in a ring. Mark m lives in event (m - 1) % MARKS;
// once that event is recorded again for a later mark, waiting for it waits for the later point, which the stream's
// order puts after m: later than asked, never too early.
static const int MARKS = 64;
static cudaEvent_t marks[MARKS];
static uint64_t marks_made;
static cudaEvent_t beside_done;   // the last copy beside the queued work, which later work waits for

static int make_events(void)
{
    for (int i = 0; i < STAGING_SLOTS; i++)
        if (!tsk_cuda_ok(cudaEventCreateWithFlags(&staging_free[i], cudaEventDisableTiming), "cuda event")) return -1;
    for (int i = 0; i < MARKS; i++)
        if (!tsk_cuda_ok(cudaEventCreateWithFlags(&marks[i], cudaEventDisableTiming), "cuda event")) return -1;
    return tsk_cuda_ok(cudaEventCreateWithFlags(&beside_done, cudaEventDisableTiming), "cuda event") ? 0 : -1;
}

// src copied to dst on `stream` through the staging ring, in chunks
static int staged_copy(cudaStream_t stream, void *dst, const void *src, size_t bytes)
{
    for (size_t at = 0; at < bytes; at += STAGING_CHUNK) {
        size_t part = bytes - at < STAGING_CHUNK ? bytes - at : STAGING_CHUNK;
        int k = next_slot;
        next_slot = (next_slot + 1) % STAGING_SLOTS;
        if (!tsk_cuda_ok(cudaEventSynchronize(staging_free[k]), "upload")) return -1;
        if (staging_bytes[k] < part) {
            if (staging[k] && !tsk_cuda_ok(cudaFreeHost(staging[k]), "upload")) return -1;
            staging[k] = NULL;
            staging_bytes[k] = 0;
            // a slot grows to what is asked (small uploads keep small slots), a chunk at most
            // pinned host memory: a failure is not the GPU's memory, which a smaller batch would spare
            cudaError_t e = cudaMallocHost((void **)&staging[k], part);
            if (e != cudaSuccess) {
                cudaGetLastError();   // not left pending for the next kernel's check to report as the GPU's
                tsk_cuda_fail(0, "pinned staging buffer of %zu bytes on the host: %s", part, cudaGetErrorString(e));
                return -1;
            }
            staging_bytes[k] = part;
        }
        memcpy(staging[k], (const char *)src + at, part);
        if (!tsk_cuda_ok(cudaMemcpyAsync((char *)dst + at, staging[k], part, cudaMemcpyHostToDevice, stream), "upload"))
            return -1;
        if (!tsk_cuda_ok(cudaEventRecord(staging_free[k], stream), "upload")) {
            cudaStreamSynchronize(stream);   // the slot's event is stale: its copy must end before the slot is reused
            return -1;
        }
    }
    return 0;
}

// on the stream, after the work queued before: dst may be memory the host's allocator has just handed out again
int tsk_cuda_upload(void *dst, const void *src, size_t bytes) { return staged_copy(tsk_ctx.stream, dst, src, bytes); }

// 0 ("nothing to wait for") when the event could not be recorded, once the stream has drained, so that it is true
uint64_t tsk_cuda_mark(void)
{
    uint64_t m = ++marks_made;
    if (tsk_cuda_ok(cudaEventRecord(marks[(m - 1) % MARKS], tsk_ctx.stream), "mark")) return m;
    cudaStreamSynchronize(tsk_ctx.stream);
    return 0;
}

// On the copy stream, which first waits for mark `after` (the buffer's last readers); the stream then waits for
// the copy before the work queued after this call, so the copy overlaps only the work queued before it.
int tsk_cuda_upload_beside(void *dst, const void *src, size_t bytes, uint64_t after)
{
    if (after && !tsk_cuda_ok(cudaStreamWaitEvent(tsk_ctx.copy_stream, marks[(after - 1) % MARKS], 0), "upload"))
        return -1;
    if (!staged_copy(tsk_ctx.copy_stream, dst, src, bytes) &&
        tsk_cuda_ok(cudaEventRecord(beside_done, tsk_ctx.copy_stream), "upload") &&
        tsk_cuda_ok(cudaStreamWaitEvent(tsk_ctx.stream, beside_done, 0), "upload"))
        return 0;
    // chunks may be queued that the stream does not wait for: they end before dst can be handed out again
    cudaStreamSynchronize(tsk_ctx.copy_stream);
    return -1;
}

// The device, its stream and handles, made once; the first answer is kept, and so is the reason of a failure
// (a driver too old for this CUDA, cuDNN's libraries not found, no device), which error() reports once and the
// host keeps for ts.cuda.unavailableReason().
static int init_state;   // 0 not tried, 1 ready, -1 unavailable

static int init_device(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        tsk_cuda_fail(0, "no usable CUDA driver: %s", cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    if (n == 0) {
        tsk_cuda_fail(0, "the CUDA driver sees no device");
        return -1;
    }
    cudaDeviceProp prop;
    if (!tsk_cuda_ok(cudaSetDevice(0), "cuda init") || !tsk_cuda_ok(cudaGetDeviceProperties(&prop, 0), "cuda init") ||
        !tsk_cuda_ok(cudaStreamCreateWithFlags(&tsk_ctx.stream, cudaStreamNonBlocking), "cuda stream") ||
        !tsk_blas_ok(cublasCreate(&tsk_ctx.blas), "cublasCreate") ||
        !tsk_blas_ok(cublasSetStream(tsk_ctx.blas, tsk_ctx.stream), "cublasSetStream") ||
        !tsk_dnn_ok(cudnnCreate(&tsk_ctx.dnn), "cudnnCreate") ||
        !tsk_dnn_ok(cudnnSetStream(tsk_ctx.dnn, tsk_ctx.stream), "cudnnSetStream"))
        return -1;
    if (!tsk_cuda_ok(cudaStreamCreateWithFlags(&tsk_ctx.copy_stream, cudaStreamNonBlocking), "cuda copy stream") ||
        make_events() != 0)
        return -1;
    // cuBLAS in full fp32 (PyTorch's default for matmul); cuDNN convolutions may use TF32 (PyTorch's default
    // for convolutions) unless the tf32 option is turned off
    tsk_ctx.tf32 = 1;
    tsk_ctx.channels_last = 1;
    snprintf(tsk_ctx.name, sizeof tsk_ctx.name, "%s (%.1f GiB, compute %d.%d)", prop.name,
             (double)prop.totalGlobalMem / (1 << 30), prop.major, prop.minor);
    return 0;
}

int tsk_cuda_init(void)
{
    if (init_state == 0) init_state = init_device() == 0 ? 1 : -1;
    return init_state == 1 ? 0 : -1;
}

const char *tsk_cuda_device_name(void) { return tsk_ctx.name; }

// versions as major.minor from CUDA's integer encodings (1000 * major + 10 * minor)
void tsk_cuda_about(char *out, size_t size)
{
    int runtime = 0, driver = 0, blas_major = 0, blas_minor = 0;
    cudaRuntimeGetVersion(&runtime);
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    cudaGetLastError();
    cublasGetProperty(MAJOR_VERSION, &blas_major);
    cublasGetProperty(MINOR_VERSION, &blas_minor);
    size_t dnn = cudnnGetVersion();
    char drv[32] = "none (no driver)";
    if (driver) snprintf(drv, sizeof drv, "%d.%d", driver / 1000, driver % 1000 / 10);
    snprintf(out, size, "runtime %d.%d (built against %d.%d), driver supports up to %s, cuDNN %zu.%zu.%zu, cuBLAS %d.%d",
             runtime / 1000, runtime % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, drv, dnn / 10000,
             dnn / 100 % 100, dnn % 100, blas_major, blas_minor);
}

// Only cudaErrorMemoryAllocation is a lack of room (NULL, no error kept: the caller decides what running out
// means). Anything else, such as the sticky error a kernel's illegal address leaves, is kept and named, so it
// is never taken for "out of memory" (which would empty the cache and halve the batch down to 1).
void *tsk_cuda_malloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return NULL;
    }
    if (e != cudaSuccess) {
        tsk_cuda_fail(0, "cudaMalloc of %zu bytes failed, not for lack of memory: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

void tsk_cuda_free(void *p) { tsk_cuda_ok(cudaFree(p), "cudaFree"); }

int tsk_cuda_memset0(void *p, size_t bytes)
{
    return tsk_cuda_ok(cudaMemsetAsync(p, 0, bytes, tsk_ctx.stream), "cudaMemset") ? 0 : -1;
}

int tsk_cuda_download(void *dst, const void *src, size_t bytes)
{
    return tsk_cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, tsk_ctx.stream), "download") &&
                   tsk_cuda_ok(cudaStreamSynchronize(tsk_ctx.stream), "download")
               ? 0 : -1;
}

int tsk_cuda_copy_device(void *dst, const void *src, size_t bytes)
{
    return tsk_cuda_ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, tsk_ctx.stream), "copy") ? 0 : -1;
}

struct strided_index {
    int ndim;
    int64_t shape[5], dst[5], src[5];
};

template <typename T>
__global__ void copy_strided_kernel(int64_t n, strided_index ix, T *dst, const T *src)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, d = 0, s = 0;
        for (int k = ix.ndim - 1; k >= 0; k--) {
            int64_t at = r % ix.shape[k];
            r /= ix.shape[k];
            d += at * ix.dst[k];
            s += at * ix.src[k];
        }
        dst[d] = src[s];
    }
}

int tsk_cuda_copy_strided(int elem_size, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
                                     const void *src, const int64_t *src_stride)
{
    strided_index ix = {};
    ix.ndim = ndim;
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        ix.shape[k] = shape[k], ix.dst[k] = dst_stride[k], ix.src[k] = src_stride[k];
        n *= shape[k];
    }
    if (n == 0) return 0;
    int blocks = tsk_blocks(n);
    if (elem_size == 1) copy_strided_kernel<<<blocks, TSK_THREADS, 0, tsk_ctx.stream>>>(n, ix, (uint8_t *)dst, (const uint8_t *)src);
    else if (elem_size == 2) copy_strided_kernel<<<blocks, TSK_THREADS, 0, tsk_ctx.stream>>>(n, ix, (uint16_t *)dst, (const uint16_t *)src);
    else if (elem_size == 4) copy_strided_kernel<<<blocks, TSK_THREADS, 0, tsk_ctx.stream>>>(n, ix, (float *)dst, (const float *)src);
    else if (elem_size == 8) copy_strided_kernel<<<blocks, TSK_THREADS, 0, tsk_ctx.stream>>>(n, ix, (double *)dst, (const double *)src);
    else {
        tsk_cuda_fail(0, "strided copy: elements of %d bytes (1, 2, 4 or 8 expected)", elem_size);
        return -1;
    }
    return tsk_launch_ok("strided copy") ? 0 : -1;
}

int tsk_cuda_synchronize(void) { return tsk_cuda_ok(cudaStreamSynchronize(tsk_ctx.stream), "synchronize") ? 0 : -1; }

// the host has checked the name: deterministic, tf32 or channels_last
void tsk_cuda_set_option(const char *option, int on)
{
    if (!strcmp(option, "deterministic")) tsk_ctx.deterministic = on;
    else if (!strcmp(option, "tf32")) tsk_ctx.tf32 = on;
    else tsk_ctx.channels_last = on;
}

// The workspace comes from the host's allocator (set when the device starts), so it is counted in the
// memory statistics, held to the limit, and goes back to the host's cache (reused, or given back when memory
// runs short) instead of staying a block of its own. Everything runs on one stream, so a block handed out
// again is never still in use by a kernel queued before.
static tsk_allocator allocator;
static size_t workspace_granted;

void tsk_cuda_set_allocator(tsk_allocator a) { allocator = a; }
size_t tsk_cuda_cached_bytes(void) { return allocator.cached ? allocator.cached() : 0; }
void tsk_cuda_trim(void)
{
    if (allocator.trim) allocator.trim();
    else tsk_cuda_release_workspace();
}

void *tsk_cuda_workspace(size_t bytes)
{
    if (bytes == 0) bytes = 1;   // a workspace for nothing is still a pointer: NULL means the allocation failed
    if (bytes <= tsk_ctx.workspace_bytes) return tsk_ctx.workspace;
    tsk_cuda_release_workspace();
    size_t granted = bytes;
    void *p = allocator.alloc ? allocator.alloc(bytes, &granted) : tsk_cuda_malloc(bytes);
    if (!p) {
        // the host's reason, as it is: no room (its message says out of memory), or a fault that must not
        // pass for a full device
        int out_of_memory = 1;
        const char *why = allocator.why ? allocator.why(&out_of_memory) : "out of memory";
        tsk_cuda_fail(out_of_memory, "workspace of %.1f MiB: %s", (double)bytes / (1 << 20), why);
        return NULL;
    }
    tsk_ctx.workspace = p;
    tsk_ctx.workspace_bytes = bytes;
    workspace_granted = granted;
    return p;
}

void tsk_cuda_release_workspace(void)
{
    if (!tsk_ctx.workspace) return;
    if (allocator.release) allocator.release(tsk_ctx.workspace, workspace_granted);
    else tsk_cuda_free(tsk_ctx.workspace);   // cudaFree waits for the kernels that may still use it
    tsk_ctx.workspace = NULL;
    tsk_ctx.workspace_bytes = 0;
}

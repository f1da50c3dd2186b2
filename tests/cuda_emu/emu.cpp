// emu.cpp — the CUDA emulation's runtime side (emu.h says what it is for and how kernels run): the grid scheduler
// with fiber threads, and reference versions of the CUDA runtime, cuBLAS and cuDNN calls tshost makes, each
// following its documented semantics, so that the code calling them is exercised as it would be on a GPU.
// Device memory is host memory. TSHOST_EMU_MEMORY=<bytes> caps it (cudaMalloc then fails with
// cudaErrorMemoryAllocation, as a full GPU does), so out-of-memory handling can be tested.
// glibc's checked longjmp refuses a jump to another stack, which is what a fiber switch is
#undef _FORTIFY_SOURCE
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <execinfo.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cblas.h>
#include <sanitizer/asan_interface.h>   // (the poisoning macros do nothing in a build without AddressSanitizer)

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "emu.h"

// a block's bytes with its alignment padding: 256-byte aligned as cudaMalloc's memory is
static size_t padded(size_t bytes) { return bytes ? (bytes + 255) / 256 * 256 : 256; }

// ---- the device boundary (TSHOST_EMU_GUARD=1) ------------------------------------------------------------
// On a GPU the host cannot read or write device memory (a segmentation fault, or garbage); here it is host memory,
// and such an access would go unseen. With TSHOST_EMU_GUARD=1 every device allocation comes from one reserved
// region that is inaccessible (PROT_NONE) while the host's own code runs, and opened only while a kernel, a copy,
// a memset or a library call runs (device_access). A host access then stops at once with its stack.
static bool guarded(void)
{
    static const bool on = getenv("TSHOST_EMU_GUARD") && !strcmp(getenv("TSHOST_EMU_GUARD"), "1");
    return on;
}
static const size_t ARENA = (size_t)1 << 40;   // address space only (MAP_NORESERVE): pages exist once written
static char *arena;
static size_t arena_top;                       // bytes handed out, bump-allocated; freed pages are given back
static int open_count;                         // device_access scopes alive, on any thread
static std::mutex arena_lock;
static size_t page_up(size_t n) { return (n + 4095) & ~(size_t)4095; }
static void arena_protect(void)
{
    if (arena_top) mprotect(arena, page_up(arena_top), open_count ? PROT_READ | PROT_WRITE : PROT_NONE);
}

struct device_access {
    device_access()
    {
        if (!guarded()) return;
        std::lock_guard<std::mutex> hold(arena_lock);
        if (open_count++ == 0) arena_protect();
    }
    ~device_access()
    {
        if (!guarded()) return;
        std::lock_guard<std::mutex> hold(arena_lock);
        if (--open_count == 0) arena_protect();
    }
};

static void touched_device(int sig, siginfo_t *info, void *context)
{
    const char *at = (const char *)info->si_addr;
    if (!(arena && at >= arena && at < arena + ARENA)) {   // not the device's memory: the fault it is
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    static const char say[] = "cuda emulation: the host read or wrote device memory (on a GPU: a crash, or garbage); "
                              "the host's stack:\n";
    if (write(2, say, sizeof say - 1) < 0) _exit(134);
    void *frames[48];
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    _exit(134);
}

// a block of the guarded region, or NULL
static void *arena_alloc(size_t bytes)
{
    std::lock_guard<std::mutex> hold(arena_lock);
    if (!arena) {
        void *r = mmap(NULL, ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) return NULL;
        arena = (char *)r;
        struct sigaction sa = {};
        sa.sa_sigaction = touched_device;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (arena_top + padded(bytes) > ARENA) return NULL;
    char *q = arena + arena_top;   // (arena_top stays a multiple of 256)
    arena_top += padded(bytes);
    arena_protect();
    return q;
}

// a guarded block's whole pages given back (its neighbours' pages stay)
static void arena_free(void *p, size_t bytes)
{
    uintptr_t from = page_up((uintptr_t)p), to = ((uintptr_t)p + padded(bytes)) & ~(uintptr_t)4095;
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}

// ---- the grid: blocks in turn, a block's threads as fibers ----------------------------------------------

dim3 tsk_emu_thread, tsk_emu_block, tsk_emu_block_dim, tsk_emu_grid_dim;

static cudaError_t last_error = cudaSuccess;   // cudaGetLastError's, cleared when read
static cudaError_t sticky_error = cudaSuccess;  // a kernel fault: every later call fails, as on a GPU

// A fiber per thread slot, made once and reused by every block of every launch. Switches are _setjmp/_longjmp
// (no system call, unlike swapcontext's signal mask); swapcontext is used once per slot, to start it on its stack.
enum { FIBER_STACK = 256 << 10, MAX_THREADS = 1024 };
struct fiber {
    ucontext_t ctx;
    jmp_buf jb;
    char *stack;
    int state;    // 0 running, 1 at the barrier, 2 finished
    void *fake;   // AddressSanitizer's record of its stack while it is switched out
};
static fiber fibers[MAX_THREADS];
static int made;                // slots 0..made-1 have their fiber
static ucontext_t creator;
static jmp_buf scheduler;
static int current = -1;        // the fiber running, -1 when threads run directly
static bool direct_mode;        // threads after the block's first run without fibers: a barrier there is a fault
static bool reached_barrier;    // the block's first thread to run (thread 0, or the last in reverse) reached a barrier
static const std::function<void()> *kernel_body;

// Under AddressSanitizer (build/emu-asan) every switch between stacks is announced before the jump and finished on
// arrival, so that it knows which stack is live; otherwise these do nothing. The host's stack (the scheduler's) is
// learnt when a fiber first arrives from it.
static void *host_fake;
static const void *host_bottom;
static size_t host_size;
static void leave_for(void **fake, const void *bottom, size_t size)
{
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(fake, bottom, size);
#endif
}
static void arrived(void *fake, const void **from_bottom, size_t *from_size)
{
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(fake, from_bottom, from_size);
#endif
}

static void fault(const char *what)
{
    fprintf(stderr, "cuda emulation: %s (block %u,%u,%u thread %u,%u,%u)\n", what, tsk_emu_block.x, tsk_emu_block.y,
            tsk_emu_block.z, tsk_emu_thread.x, tsk_emu_thread.y, tsk_emu_thread.z);
    sticky_error = cudaErrorLaunchFailure;
}

// the running fiber gives the scheduler its turn; it goes on from here when resumed
static void yield(void)
{
    if (!_setjmp(fibers[current].jb)) {
        leave_for(&fibers[current].fake, host_bottom, host_size);
        _longjmp(scheduler, 1);
    }
    arrived(fibers[current].fake, &host_bottom, &host_size);
}

void tsk_emu_syncthreads(void)
{
    if (direct_mode) {
        fault("__syncthreads reached by a thread when the first thread of its block to run did not reach it");
        return;
    }
    if (current < 0) return;
    reached_barrier = true;
    fibers[current].state = 1;
    yield();
}

// a fiber's life: ready (back to its creator), then the kernel's body once for each time it is resumed at the top
static void fiber_main(void)
{
    fiber &self = fibers[made];
    arrived(NULL, &host_bottom, &host_size);
    if (!_setjmp(self.jb)) {
        leave_for(&self.fake, host_bottom, host_size);
        swapcontext(&self.ctx, &creator);
    }
    arrived(self.fake, &host_bottom, &host_size);
    for (;;) {
        (*kernel_body)();
        fibers[current].state = 2;
        yield();
    }
}

static void make_fibers(int threads)
{
    for (; made < threads; made++) {
        fiber &f = fibers[made];
        f.stack = (char *)malloc(FIBER_STACK);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = FIBER_STACK;
        f.ctx.uc_link = NULL;
        makecontext(&f.ctx, fiber_main, 0);
        leave_for(&host_fake, f.stack, FIBER_STACK);
        swapcontext(&creator, &f.ctx);
        arrived(host_fake, NULL, NULL);
    }
}

static dim3 thread_index(unsigned t, dim3 b) { return dim3(t % b.x, t / b.x % b.y, t / (b.x * b.y)); }

// runs thread t's fiber until it finishes or reaches a barrier
static void resume(int t, dim3 block)
{
    current = t;
    tsk_emu_thread = thread_index((unsigned)t, block);
    fibers[t].state = 0;
    if (!_setjmp(scheduler)) {
        leave_for(&host_fake, fibers[t].stack, FIBER_STACK);
        _longjmp(fibers[t].jb, 1);
    }
    arrived(host_fake, NULL, NULL);
    current = -1;
}

// TSHOST_EMU_ORDER=reverse runs the threads between two barriers, and the blocks of a grid, last first. CUDA
// promises no order, so a kernel whose result changes with it has a race: a thread reading what another writes
// without a barrier between them (a missing __syncthreads, an in-place update that overlaps), or a block reading
// another block's output. Run the tests both ways and compare.
static bool reverse_order(void)
{
    static const bool reverse = getenv("TSHOST_EMU_ORDER") && !strcmp(getenv("TSHOST_EMU_ORDER"), "reverse");
    return reverse;
}
// the i-th of n threads or blocks to run
static unsigned nth(unsigned i, unsigned n) { return reverse_order() ? n - 1 - i : i; }

static void run_block(dim3 block)
{
    int threads = (int)(block.x * block.y * block.z);
    // the first thread to run goes as a fiber: if it finishes without a barrier, so must every thread (a barrier is
    // reached by all threads of a block or by none), and the others run directly, which is much faster
    reached_barrier = false;
    make_fibers((int)nth(0, threads) + 1);
    resume((int)nth(0, threads), block);
    if (!reached_barrier) {
        direct_mode = true;
        for (int i = 1; i < threads && sticky_error == cudaSuccess; i++) {
            tsk_emu_thread = thread_index(nth(i, threads), block);
            (*kernel_body)();
        }
        direct_mode = false;
        return;
    }
    make_fibers(threads);
    for (int i = 1; i < threads; i++) resume((int)nth(i, threads), block);
    // every thread is now at a barrier or finished; a barrier some reached and others finished without is a fault
    for (;;) {
        int waiting = 0, done = 0;
        for (int t = 0; t < threads; t++) waiting += fibers[t].state == 1, done += fibers[t].state == 2;
        if (waiting == 0) return;
        if (done > 0) {
            fault("__syncthreads reached by some threads of a block while others had finished");
            return;
        }
        for (int i = 0; i < threads; i++) resume((int)nth(i, threads), block);
    }
}

// Kernel launches, counted so that tests can hold a step to the launches it should make (tsk_emu_launches, read
// through the FFI as tsk_emu_host_waits is): a launch costs a few microseconds, more than a small kernel's work.
static long launches;
extern "C" long tsk_emu_launches(void) { return launches; }

void tsk_emu_run(const tsk_emu_config &c, const std::function<void()> &body)
{
    if (sticky_error != cudaSuccess) return;
    launches++;
    device_access open;
    unsigned threads = c.block.x * c.block.y * c.block.z;
    if (threads == 0 || threads > MAX_THREADS || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
        c.grid.y > 65535 || c.grid.z > 65535 || (uint64_t)c.grid.x > 2147483647u || c.smem > 48 * 1024) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    kernel_body = &body;
    tsk_emu_block_dim = c.block;
    tsk_emu_grid_dim = c.grid;
    for (unsigned z = 0; z < c.grid.z; z++)
        for (unsigned y = 0; y < c.grid.y; y++)
            for (unsigned x = 0; x < c.grid.x && sticky_error == cudaSuccess; x++) {
                tsk_emu_block = dim3(nth(x, c.grid.x), nth(y, c.grid.y), nth(z, c.grid.z));
                run_block(c.block);
            }
}

// ---- the runtime ----------------------------------------------------------------------------------------

static std::map<void *, size_t> allocations;   // device allocations, to check frees and count use
static size_t allocated;

// TSHOST_EMU_MEMORY bytes when set (allocations beyond it fail as on a full GPU), else 0: no cap
static size_t memory_cap(void)
{
    static const size_t cap = getenv("TSHOST_EMU_MEMORY") ? strtoull(getenv("TSHOST_EMU_MEMORY"), NULL, 10) : 0;
    return cap;
}
// the emulated device's memory: the cap, else 8 GiB
static size_t device_memory(void) { return memory_cap() ? memory_cap() : (size_t)8 << 30; }

static cudaError_t result(cudaError_t e)
{
    if (e != cudaSuccess) last_error = e;
    return e;
}
#define STICKY() \
    do { \
        if (sticky_error != cudaSuccess) return sticky_error; \
    } while (0)

// each function below was declared extern "C" by its library's header, which its definition keeps

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    default: return "emulated CUDA error";
    }
}

cudaError_t cudaGetLastError(void)
{
    if (sticky_error != cudaSuccess) return sticky_error;
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return result(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    if (device != 0) return result(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU");
    prop->totalGlobalMem = device_memory();
    prop->major = 9, prop->minor = 0;
    prop->multiProcessorCount = 4;
    prop->maxThreadsPerBlock = MAX_THREADS;
    prop->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    STICKY();
    *total = device_memory();
    *free_bytes = *total - allocated;
    return cudaSuccess;
}

// The host's waits for the whole queue: stream synchronizations, and cudaFree, which synchronizes the device. A
// step that makes one cannot run ahead of the GPU, so tests count them (tsk_emu_host_waits, read through the FFI).
static long host_waits;
extern "C" long tsk_emu_host_waits(void) { return host_waits; }

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    STICKY();
    *p = NULL;
    if (memory_cap() && allocated + bytes > memory_cap()) return result(cudaErrorMemoryAllocation);
    void *q = guarded() ? arena_alloc(bytes) : aligned_alloc(256, padded(bytes));
    if (!q) return result(cudaErrorMemoryAllocation);
    device_access open;
    memset(q, 0xff, padded(bytes));   // NaN as float: reading what was never written poisons the results
    // under AddressSanitizer (build/emu-asan), the alignment's padding is out of bounds as the block's end is
    ASAN_POISON_MEMORY_REGION((char *)q + bytes, padded(bytes) - bytes);
    allocations[q] = bytes;
    allocated += bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    auto it = allocations.find(p);
    if (it == allocations.end()) return result(cudaErrorInvalidDevicePointer);
    host_waits++;
    allocated -= it->second;
    ASAN_UNPOISON_MEMORY_REGION((char *)p + it->second, padded(it->second) - it->second);
    if (guarded()) arena_free(p, it->second);
    else free(p);
    allocations.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    *p = malloc(bytes ? bytes : 1);
    return result(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void *p)
{
    free(p);
    return cudaSuccess;
}

// whether [p, p + bytes) lies inside one device allocation
static bool on_device(const void *p, size_t bytes)
{
    auto it = allocations.upper_bound((void *)p);
    if (it == allocations.begin()) return false;
    --it;
    const char *base = (const char *)it->first;
    return (const char *)p >= base && (const char *)p + bytes <= base + it->second;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream)
{
    STICKY();
    if (bytes == 0) return cudaSuccess;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((dst_dev && !on_device(dst, bytes)) || (src_dev && !on_device(src, bytes))) {
        fprintf(stderr, "cuda emulation: a copy of %zu bytes reaches outside a device allocation\n", bytes);
        return result(cudaErrorInvalidValue);
    }
    if ((const char *)dst < (const char *)src + bytes && (const char *)src < (const char *)dst + bytes) {
        fprintf(stderr, "cuda emulation: cudaMemcpyAsync between overlapping ranges (undefined on a GPU)\n");
        return result(cudaErrorInvalidValue);
    }
    device_access open;
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream)
{
    STICKY();
    if (bytes && !on_device(p, bytes)) return result(cudaErrorInvalidValue);
    device_access open;
    memset(p, value, bytes);
    return cudaSuccess;
}

// one stream at a time runs, in the order of the calls: waits and events have nothing to wait for
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    static int streams;
    *s = (cudaStream_t)(intptr_t)(++streams);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    host_waits++;
    return sticky_error;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) { return sticky_error; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
    static int events;
    *e = (cudaEvent_t)(intptr_t)(++events);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { return sticky_error; }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return sticky_error; }

// ---- cuBLAS: column-major C = alpha op(A) op(B) + beta C --------------------------------------------------

struct cublasContext {
    int unused;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    *h = new cublasContext();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    *value = type == MAJOR_VERSION ? CUBLAS_VER_MAJOR : type == MINOR_VERSION ? CUBLAS_VER_MINOR : CUBLAS_VER_PATCH;
    return CUBLAS_STATUS_SUCCESS;
}

// cuBLAS's argument checks (its documentation of cublas<t>gemm: m, n, k >= 0; lda >= max(1, rows of A as
// stored), the same for B; ldc >= max(1, m)), then the product in double
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                           const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cuda emulation: cublas gemm refuses m %d n %d k %d lda %d ldb %d ldc %d\n", m, n, k, lda, ldb,
                ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (sticky_error != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float x = ta == CUBLAS_OP_N ? a[i + (int64_t)p * lda] : a[p + (int64_t)i * lda];
                float y = tb == CUBLAS_OP_N ? b[p + (int64_t)j * ldb] : b[j + (int64_t)p * ldb];
                s += (double)x * y;
            }
            float *out = &c[i + (int64_t)j * ldc];
            // beta == 0: C is not read (it may hold NaN), as cuBLAS documents
            *out = (float)(alpha * s + (beta == 0 ? 0.0 : (double)beta * *out));
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                              float *c, int ldc)
{
    device_access open;   // a library call reads and writes the device's memory
    return gemm(ta, tb, m, n, k, *alpha, a, lda, b, ldb, *beta, c, ldc);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *a, cudaDataType at, int lda, const void *b, cudaDataType bt,
                            int ldb, const void *beta, void *c, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo)
{
    device_access open;   // a library call reads and writes the device's memory
    if (at != CUDA_R_32F || bt != CUDA_R_32F || ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(ta, tb, m, n, k, *(const float *)alpha, (const float *)a, lda, (const float *)b, ldb,
                *(const float *)beta, (float *)c, ldc);
}

// ---- cuDNN ------------------------------------------------------------------------------------------------

struct cudnnContext {
    int unused;
};
struct cudnnTensorStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int n, c, h, w;
    bool set;
};
struct cudnnFilterStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int k, c, h, w;
    bool set;
};
struct cudnnConvolutionStruct {
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
    bool set;
};

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_ALLOC_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    default: return "CUDNN_STATUS (emulated)";
    }
}
size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = new cudnnContext();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) { return CUDNN_STATUS_SUCCESS; }

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
    *d = new cudnnTensorStruct();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    *d = new cudnnFilterStruct();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    *d = new cudnnConvolutionStruct();
    (*d)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

static bool known_type(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_BFLOAT16; }
static bool known_format(cudnnTensorFormat_t f) { return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC; }

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w)
{
    if (!known_format(format) || !known_type(type) || n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
    *d = {format, type, n, c, h, w, true};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w)
{
    if (!known_format(format) || !known_type(type) || k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
    *d = {format, type, k, c, h, w, true};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute)
{
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0 || compute != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_BAD_PARAM;
    int groups = d->groups;
    cudnnMathType_t math = d->math;
    *d = {pad_h, pad_w, u, v, dil_h, dil_w, groups, mode, compute, math, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (groups < 1) return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math)
{
    d->math = math;
    return CUDNN_STATUS_SUCCESS;
}

// an element of a 4-d tensor as float, wherever its format puts it
static size_t offset(cudnnTensorFormat_t f, int C, int H, int W, int n, int c, int h, int w)
{
    return f == CUDNN_TENSOR_NCHW ? (((size_t)n * C + c) * H + h) * W + w : (((size_t)n * H + h) * W + w) * C + c;
}
static float load(cudnnDataType_t t, const void *p, size_t i)
{
    if (t == CUDNN_DATA_FLOAT) return ((const float *)p)[i];
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static void store(cudnnDataType_t t, void *p, size_t i, float v)
{
    if (t == CUDNN_DATA_FLOAT) {
        ((float *)p)[i] = v;
        return;
    }
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u += 0x7fff + ((u >> 16) & 1);   // round to nearest even
    ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
}

// the descriptors of one convolution, checked against each other as cuDNN checks them
static cudnnStatus_t check(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv,
                           cudnnTensorDescriptor_t y)
{
    if (!x->set || !w->set || !cv->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
    if (x->c != w->c * cv->groups || w->k % cv->groups || y->c != w->k || y->n != x->n) return CUDNN_STATUS_BAD_PARAM;
    int oh = (x->h + 2 * cv->pad_h - cv->dil_h * (w->h - 1) - 1) / cv->u + 1;
    int ow = (x->w + 2 * cv->pad_w - cv->dil_w * (w->w - 1) - 1) / cv->v + 1;
    if (oh != y->h || ow != y->w) return CUDNN_STATUS_BAD_PARAM;
    if (x->type != w->type || x->type != y->type) return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

// A convolution as matrix products (im2col and OpenBLAS's sgemm, sums in fp32 as cuDNN's fp32 algorithms keep them):
// operands are first read into plain NCHW float arrays, whatever their descriptors' format and type, and results
// written back through the descriptor with alpha and beta (out = alpha result + beta out; beta 0 reads nothing).
// The arrays are kept between calls (static, grown as needed): a fresh one each call costs the kernel's page faults.
static void to_nchw(cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c, int h, int w, const void *p,
                    std::vector<float> &out)
{
    out.resize((size_t)n * c * h * w);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < c; b++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) out[(((size_t)a * c + b) * h + y) * w + x] = load(t, p, offset(f, c, h, w, a, b, y, x));
}
static void from_nchw(cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c, int h, int w, const std::vector<float> &v,
                      void *p, const void *alpha, const void *beta)
{
    float al = *(const float *)alpha, be = *(const float *)beta;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < c; b++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t i = offset(f, c, h, w, a, b, y, x);
                    float r = al * v[(((size_t)a * c + b) * h + y) * w + x];
                    store(t, p, i, be == 0 ? r : r + be * load(t, p, i));
                }
}
static void tensor_of(cudnnTensorDescriptor_t d, const void *p, std::vector<float> &out)
{
    to_nchw(d->format, d->type, d->n, d->c, d->h, d->w, p, out);
}
// the filter [K, C/g, KH, KW]; convolution mode (not cross-correlation) flips it
static void filter_of(cudnnFilterDescriptor_t d, cudnnConvolutionDescriptor_t cv, const void *p, std::vector<float> &w)
{
    to_nchw(d->format, d->type, d->k, d->c, d->h, d->w, p, w);
    if (cv->mode != CUDNN_CONVOLUTION) return;
    size_t plane = (size_t)d->h * d->w;
    for (size_t q = 0; q < w.size() / plane; q++) std::reverse(w.begin() + q * plane, w.begin() + (q + 1) * plane);
}
static std::vector<float> conv_a, conv_b, conv_out, conv_cols;   // the operands, the result, the columns

// the geometry of one convolution: per group, cg input channels, kg output channels, K = cg kh kw rows of a column
struct conv_geometry {
    int n, c, h, w, k, kh, kw, oh, ow, groups, cg, kg, rows, cols;
};
static conv_geometry geometry(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv,
                              cudnnTensorDescriptor_t y)
{
    conv_geometry g = {x->n, x->c, x->h, x->w, w->k, w->h, w->w, y->h, y->w, cv->groups, w->c, w->k / cv->groups, 0, 0};
    g.rows = g.cg * g.kh * g.kw, g.cols = g.oh * g.ow;
    return g;
}

// cols[r, p] (r = (ci, i, j), p = (oy, ox)) = x[image, group's channel ci, oy u - pad + i dil, ox v - pad + j dil], 0
// outside; scatter = true adds cols back into x instead (col2im)
static void im2col(const conv_geometry &g, cudnnConvolutionDescriptor_t cv, float *x, int image, int group, float *cols,
                   bool scatter)
{
    for (int r = 0; r < g.rows; r++) {
        int ci = r / (g.kh * g.kw), i = r / g.kw % g.kh, j = r % g.kw;
        float *plane = x + ((size_t)image * g.c + (size_t)group * g.cg + ci) * g.h * g.w;
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                int iy = oy * cv->u - cv->pad_h + i * cv->dil_h, ix = ox * cv->v - cv->pad_w + j * cv->dil_w;
                float *c = &cols[(size_t)r * g.cols + oy * g.ow + ox];
                bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
                if (scatter) {
                    if (inside) plane[(size_t)iy * g.w + ix] += *c;
                } else {
                    *c = inside ? plane[(size_t)iy * g.w + ix] : 0.0f;
                }
            }
    }
}
// Workspaces the emulated algorithms ask for: none for algorithm 0, a megabyte for the others, so that tshost's
// workspace handling is exercised
static size_t workspace_of(int algo) { return algo == 0 ? 0 : (size_t)1 << 20; }

// whether a convolution call may run: its descriptors agree, its workspace is the algorithm's, no earlier fault
static cudnnStatus_t ready(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv,
                           cudnnTensorDescriptor_t y, int algo, size_t workspace)
{
    cudnnStatus_t s = check(x, w, cv, y);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (workspace < workspace_of(algo)) return CUDNN_STATUS_BAD_PARAM;
    return sticky_error != cudaSuccess ? CUDNN_STATUS_EXECUTION_FAILED : CUDNN_STATUS_SUCCESS;
}

// Operands off a 16-byte boundary are refused: cuDNN's plans are timed on its own aligned buffers and its vectorized
// kernels read aligned operands, so the host stages a misaligned one (kernels/cuda/conv2d.cu says how); refused
// here, an operand handed over unaligned fails the test that made it
static cudnnStatus_t aligned(const void *a, const void *b, const void *c)
{
    return ((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15 ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t cv,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
                                      cudnnTensorDescriptor_t yd, void *y)
{
    device_access open;   // a library call reads and writes the device's memory
    cudnnStatus_t s = ready(xd, wd, cv, yd, algo, ws_bytes);
    if (s == CUDNN_STATUS_SUCCESS) s = aligned(x, w, y);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    conv_geometry g = geometry(xd, wd, cv, yd);
    std::vector<float> &xs = conv_a, &ws_ = conv_b, &out = conv_out, &cols = conv_cols;
    tensor_of(xd, x, xs);
    filter_of(wd, cv, w, ws_);
    out.resize((size_t)g.n * g.k * g.cols);
    cols.resize((size_t)g.rows * g.cols);
    for (int image = 0; image < g.n; image++)
        for (int group = 0; group < g.groups; group++) {
            im2col(g, cv, xs.data(), image, group, cols.data(), false);
            // y[image, group's kg channels] [kg, cols] = w[group] [kg, rows] cols [rows, cols]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.kg, g.cols, g.rows, 1.0f,
                        &ws_[(size_t)group * g.kg * g.rows], g.rows, cols.data(), g.cols, 0.0f,
                        &out[((size_t)image * g.k + (size_t)group * g.kg) * g.cols], g.cols);
        }
    from_nchw(yd->format, yd->type, g.n, g.k, g.oh, g.ow, out, y, alpha, beta);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t dyd, const void *dy, cudnnConvolutionDescriptor_t cv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes,
                                           const void *beta, cudnnTensorDescriptor_t dxd, void *dx)
{
    device_access open;   // a library call reads and writes the device's memory
    cudnnStatus_t s = ready(dxd, wd, cv, dyd, algo, ws_bytes);
    if (s == CUDNN_STATUS_SUCCESS) s = aligned(w, dy, dx);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    conv_geometry g = geometry(dxd, wd, cv, dyd);
    std::vector<float> &gy = conv_a, &ws_ = conv_b, &gx = conv_out, &cols = conv_cols;
    tensor_of(dyd, dy, gy);
    filter_of(wd, cv, w, ws_);
    gx.assign((size_t)g.n * g.c * g.h * g.w, 0.0f);
    cols.resize((size_t)g.rows * g.cols);
    for (int image = 0; image < g.n; image++)
        for (int group = 0; group < g.groups; group++) {
            // cols [rows, cols] = w[group]^T [rows, kg] gy[image, group] [kg, cols], then added back into gx
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.rows, g.cols, g.kg, 1.0f,
                        &ws_[(size_t)group * g.kg * g.rows], g.rows, &gy[((size_t)image * g.k + (size_t)group * g.kg) * g.cols],
                        g.cols, 0.0f, cols.data(), g.cols);
            im2col(g, cv, gx.data(), image, group, cols.data(), true);
        }
    from_nchw(dxd->format, dxd->type, g.n, g.c, g.h, g.w, gx, dx, alpha, beta);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd,
                                             const void *x, cudnnTensorDescriptor_t dyd, const void *dy,
                                             cudnnConvolutionDescriptor_t cv, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *ws, size_t ws_bytes, const void *beta, cudnnFilterDescriptor_t dwd,
                                             void *dw)
{
    device_access open;   // a library call reads and writes the device's memory
    cudnnStatus_t s = ready(xd, dwd, cv, dyd, algo, ws_bytes);
    if (s == CUDNN_STATUS_SUCCESS) s = aligned(x, dy, dw);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    conv_geometry g = geometry(xd, dwd, cv, dyd);
    std::vector<float> &xs = conv_a, &gy = conv_b, &gw = conv_out, &cols = conv_cols;
    tensor_of(xd, x, xs);
    tensor_of(dyd, dy, gy);
    gw.assign((size_t)g.k * g.rows, 0.0f);
    cols.resize((size_t)g.rows * g.cols);
    for (int image = 0; image < g.n; image++)
        for (int group = 0; group < g.groups; group++) {
            im2col(g, cv, xs.data(), image, group, cols.data(), false);
            // gw[group] [kg, rows] += gy[image, group] [kg, cols] cols^T [cols, rows]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.kg, g.rows, g.cols, 1.0f,
                        &gy[((size_t)image * g.k + (size_t)group * g.kg) * g.cols], g.cols, cols.data(), g.cols, 1.0f,
                        &gw[(size_t)group * g.kg * g.rows], g.rows);
        }
    if (cv->mode == CUDNN_CONVOLUTION) {   // the gradient of a flipped filter is the flipped gradient
        size_t plane = (size_t)g.kh * g.kw;
        for (size_t q = 0; q < gw.size() / plane; q++)
            std::reverse(gw.begin() + q * plane, gw.begin() + (q + 1) * plane);
    }
    from_nchw(dwd->format, dwd->type, g.k, g.cg, g.kh, g.kw, gw, dw, alpha, beta);
    return CUDNN_STATUS_SUCCESS;
}

// The algorithms offered: two for each direction, the first deterministic in the forward and data directions and
// non-deterministic for the filter (as cuDNN's backward-filter algorithm 0 is), each asking for workspace_of(algo)
template <typename Perf, typename Algo>
static cudnnStatus_t offer(int requested, int *returned, Perf *perf, const Algo *algos, const bool *deterministic)
{
    int n = requested < 2 ? requested : 2;
    for (int i = 0; i < n; i++) {
        memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = algos[i];
        perf[i].status = CUDNN_STATUS_SUCCESS;
        perf[i].time = 1.0f + i;
        perf[i].memory = workspace_of(algos[i]);
        perf[i].determinism = deterministic[i] ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        perf[i].mathType = CUDNN_DEFAULT_MATH;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

static const cudnnConvolutionFwdAlgo_t fwd_algos[2] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM};
static const cudnnConvolutionBwdDataAlgo_t data_algos[2] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
static const cudnnConvolutionBwdFilterAlgo_t filter_algos[2] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
static const bool fwd_det[2] = {true, true}, data_det[2] = {false, true}, filter_det[2] = {false, true};

// each direction's Get*_v7 (heuristics) and Find* (timed): the same list here, there being nothing to time; x, w and
// y name which of the three descriptors a, b, c is the input, the filter and the output. Find* runs the algorithms,
// in workspaces it allocates itself as cuDNN's does: without room on the device for the largest, it fails
#define CONV_QUERIES(get, find, perf_t, first, second, third, x, w, y, algos, det) \
    cudnnStatus_t get(cudnnHandle_t h, first a, second b, cudnnConvolutionDescriptor_t cv, third c, const int requested, \
                      int *returned, perf_t *perf) \
    { \
        cudnnStatus_t s = check(x, w, cv, y); \
        return s != CUDNN_STATUS_SUCCESS ? s : offer(requested, returned, perf, algos, det); \
    } \
    cudnnStatus_t find(cudnnHandle_t h, first a, second b, cudnnConvolutionDescriptor_t cv, third c, const int requested, \
                       int *returned, perf_t *perf) \
    { \
        if (memory_cap() && allocated + workspace_of(1) > memory_cap()) return CUDNN_STATUS_ALLOC_FAILED; \
        return get(h, a, b, cv, c, requested, returned, perf); \
    }
CONV_QUERIES(cudnnGetConvolutionForwardAlgorithm_v7, cudnnFindConvolutionForwardAlgorithm, cudnnConvolutionFwdAlgoPerf_t,
             cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, a, b, c, fwd_algos, fwd_det)
CONV_QUERIES(cudnnGetConvolutionBackwardDataAlgorithm_v7, cudnnFindConvolutionBackwardDataAlgorithm,
             cudnnConvolutionBwdDataAlgoPerf_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, c,
             a, b, data_algos, data_det)
CONV_QUERIES(cudnnGetConvolutionBackwardFilterAlgorithm_v7, cudnnFindConvolutionBackwardFilterAlgorithm,
             cudnnConvolutionBwdFilterAlgoPerf_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, a,
             c, b, filter_algos, filter_det)
#undef CONV_QUERIES

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t cv,
                                                      cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes)
{
    *bytes = workspace_of(algo);
    return check(x, w, cv, y);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                           cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv,
                                                           cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t algo,
                                                           size_t *bytes)
{
    *bytes = workspace_of(algo);
    return check(dx, w, cv, dy);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                             cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv,
                                                             cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
{
    *bytes = workspace_of(algo);
    return check(x, dw, cv, dy);
}

// C = alpha A + beta C, A broadcast over the dimensions where it has 1 (a bias [1, C, 1, 1])
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t ad, const void *a,
                             const void *beta, cudnnTensorDescriptor_t cd, void *c)
{
    device_access open;   // a library call reads and writes the device's memory
    if ((ad->n != 1 && ad->n != cd->n) || (ad->c != 1 && ad->c != cd->c) || (ad->h != 1 && ad->h != cd->h) ||
        (ad->w != 1 && ad->w != cd->w))
        return CUDNN_STATUS_BAD_PARAM;
    if (sticky_error != cudaSuccess) return CUDNN_STATUS_EXECUTION_FAILED;
    float al = *(const float *)alpha, be = *(const float *)beta;
    for (int n = 0; n < cd->n; n++)
        for (int ch = 0; ch < cd->c; ch++)
            for (int y = 0; y < cd->h; y++)
                for (int x = 0; x < cd->w; x++) {
                    size_t ci = offset(cd->format, cd->c, cd->h, cd->w, n, ch, y, x);
                    size_t ai = offset(ad->format, ad->c, ad->h, ad->w, ad->n == 1 ? 0 : n, ad->c == 1 ? 0 : ch,
                                       ad->h == 1 ? 0 : y, ad->w == 1 ? 0 : x);
                    float old = be == 0 ? 0.0f : be * load(cd->type, c, ci);
                    store(cd->type, c, ci, al * load(ad->type, a, ai) + old);
                }
    return CUDNN_STATUS_SUCCESS;
}

// spatial batch norm: per channel over N, H, W (cuDNN's documentation of cudnnBatchNormalizationForwardTraining:
// the running variance takes the unbiased batch variance, resultSaveInvVariance is 1 / sqrt(var + eps) of the
// biased one, epsilon at least CUDNN_BN_MIN_EPSILON)
static cudnnStatus_t batchnorm(bool training, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
                               cudnnTensorDescriptor_t xd, const void *x, cudnnTensorDescriptor_t yd, void *y,
                               cudnnTensorDescriptor_t pd, const void *scale, const void *bias, double factor,
                               void *run_mean, void *run_var, double eps, void *save_mean, void *save_invstd)
{
    if (mode != CUDNN_BATCHNORM_SPATIAL || eps < CUDNN_BN_MIN_EPSILON || pd->c != xd->c || pd->n != 1 || pd->h != 1 ||
        pd->w != 1 || pd->type != CUDNN_DATA_FLOAT || xd->n != yd->n || xd->c != yd->c || xd->h != yd->h ||
        xd->w != yd->w)
        return CUDNN_STATUS_BAD_PARAM;
    if (sticky_error != cudaSuccess) return CUDNN_STATUS_EXECUTION_FAILED;
    float al = *(const float *)alpha, be = *(const float *)beta;
    size_t m = (size_t)xd->n * xd->h * xd->w;
    for (int ch = 0; ch < xd->c; ch++) {
        double mean, var;
        if (training) {
            double s = 0, s2 = 0;
            for (int n = 0; n < xd->n; n++)
                for (int i = 0; i < xd->h * xd->w; i++) {
                    double v = load(xd->type, x, offset(xd->format, xd->c, xd->h, xd->w, n, ch, i / xd->w, i % xd->w));
                    s += v, s2 += v * v;
                }
            mean = s / m, var = s2 / m - mean * mean;
            float *rm = (float *)run_mean, *rv = (float *)run_var;
            if (rm) rm[ch] = (float)((1 - factor) * rm[ch] + factor * mean);
            if (rv) rv[ch] = (float)((1 - factor) * rv[ch] + factor * (m > 1 ? var * m / (m - 1) : var));
            if (save_mean) ((float *)save_mean)[ch] = (float)mean;
            if (save_invstd) ((float *)save_invstd)[ch] = (float)(1 / sqrt(var + eps));
        } else {
            mean = ((const float *)run_mean)[ch], var = ((const float *)run_var)[ch];
        }
        double inv = 1 / sqrt(var + eps), g = ((const float *)scale)[ch], b = ((const float *)bias)[ch];
        for (int n = 0; n < xd->n; n++)
            for (int i = 0; i < xd->h * xd->w; i++) {
                size_t xi = offset(xd->format, xd->c, xd->h, xd->w, n, ch, i / xd->w, i % xd->w);
                size_t yi = offset(yd->format, yd->c, yd->h, yd->w, n, ch, i / yd->w, i % yd->w);
                double v = g * (load(xd->type, x, xi) - mean) * inv + b;
                store(yd->type, y, yi, (float)(al * v + (be == 0 ? 0.0 : be * load(yd->type, y, yi))));
            }
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t h, cudnnBatchNormMode_t mode, const void *alpha,
                                                     const void *beta, cudnnTensorDescriptor_t xd, const void *x,
                                                     cudnnTensorDescriptor_t yd, void *y, cudnnTensorDescriptor_t pd,
                                                     const void *scale, const void *bias, double factor, void *run_mean,
                                                     void *run_var, double eps, void *save_mean, void *save_invstd)
{
    device_access open;   // a library call reads and writes the device's memory
    return batchnorm(true, mode, alpha, beta, xd, x, yd, y, pd, scale, bias, factor, run_mean, run_var, eps, save_mean,
                     save_invstd);
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(cudnnHandle_t h, cudnnBatchNormMode_t mode, const void *alpha,
                                                      const void *beta, cudnnTensorDescriptor_t xd, const void *x,
                                                      cudnnTensorDescriptor_t yd, void *y, cudnnTensorDescriptor_t pd,
                                                      const void *scale, const void *bias, const void *mean,
                                                      const void *var, double eps)
{
    device_access open;   // a library call reads and writes the device's memory
    return batchnorm(false, mode, alpha, beta, xd, x, yd, y, pd, scale, bias, 0, (void *)mean, (void *)var, eps, NULL,
                     NULL);
}


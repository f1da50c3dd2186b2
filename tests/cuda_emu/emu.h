// emu.h — the CUDA emulation's kernel side: kernels/cuda/*.cu compiled as plain C++ by the host compiler, so that
// tshost's GPU code (its own kernels, its use of the CUDA runtime, cuBLAS and cuDNN, and the host's device paths
// through the backend table) runs and is tested on a machine without a GPU (make emu; tests/test_cuda.lua then
// runs against it). Forced in front of every .cu file (-include); emu.cpp holds the emulated runtime and libraries.
//
// How CUDA's execution model is reproduced:
// - a launch `k<<<grid, block, smem, stream>>>(args)` is rewritten by the build (sed, see the Makefile) into
//   tsk_emu_launch(tsk_emu_config(grid, block, smem, stream), <a call of k>)(args); it runs at once, block after
//   block, on the calling thread, as if the stream had one block resident at a time (a legal CUDA schedule);
// - the threads of a block are fibers (ucontext) when the kernel synchronizes: __syncthreads switches to the next
//   thread, and the block goes on when every thread has reached the barrier; a kernel whose first thread to run
//   (thread 0) never reaches one runs its other threads one after another (__syncthreads must be reached by all threads of a block
//   or none, so a later thread reaching one is reported as a fault);
// - __shared__ variables are static: one copy, which each block in turn has to itself;
// - device memory is host memory; with TSHOST_EMU_GUARD=1 (emu.cpp) it is out of the host's reach except while a
//   kernel, a copy or a library call runs, so a host access to a device pointer stops as a GPU's would crash.
// - TSHOST_EMU_ORDER=reverse runs them last first (emu.cpp): a race shows as a result that depends on the order.
// What it cannot show: a race that gives the same result in both orders, timing, and the GPU's rounding (fused
// multiply-adds, fast math); cuBLAS and cuDNN are reference versions of their documented semantics.
#ifndef TSK_CUDA_EMU_H
#define TSK_CUDA_EMU_H
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#include <functional>

// the builtins each thread reads: globals, set before each thread runs
extern dim3 tsk_emu_thread, tsk_emu_block, tsk_emu_block_dim, tsk_emu_grid_dim;
#define threadIdx tsk_emu_thread
#define blockIdx tsk_emu_block
#define blockDim tsk_emu_block_dim
#define gridDim tsk_emu_grid_dim

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#define __global__
#define __device__
#define __host__
#define __shared__ static

void tsk_emu_syncthreads(void);
#define __syncthreads() tsk_emu_syncthreads()

struct tsk_emu_config {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    tsk_emu_config(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0) : grid(g), block(b), smem(s), stream(st) {}
};

// runs body once for every thread of the grid (the launch's error, as a bad configuration, kept for
// cudaGetLastError)
void tsk_emu_run(const tsk_emu_config &c, const std::function<void()> &body);

// the launch's arguments are copied, as CUDA copies them into the kernel's parameter space
template <typename K>
struct tsk_emu_launcher {
    tsk_emu_config c;
    K k;
    template <typename... A>
    void operator()(A... a)
    {
        tsk_emu_run(c, [&] { k(a...); });
    }
};
template <typename K>
tsk_emu_launcher<K> tsk_emu_launch(tsk_emu_config c, K k)
{
    return tsk_emu_launcher<K>{c, k};
}

// the device intrinsics the kernels use that the host's library lacks
static inline float __uint_as_float(unsigned u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif

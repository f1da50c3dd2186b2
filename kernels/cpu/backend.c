/* The CPU backend: its runtime (memory from the C heap, 64-byte aligned for AVX-512 loads; copies that are
 * memcpy; nothing to wait for; no options) with the CUDA runtime's contract, so the host allocates and moves
 * data through one interface whatever the device; and the table through which the host reaches every CPU
 * kernel (kernels.h), its compute entries made from ops.def. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static int cpu_init(void) { return 0; }
static const char *cpu_name(void) { return "cpu"; }

static void cpu_about(char *out, size_t size)
{
    __builtin_cpu_init();
    snprintf(out, size, "AVX2 %s, FMA %s, AVX-512 %s, AVX512-BF16 %s, AMX-BF16 %s; matrix products: the %s path (%s%s)",
             __builtin_cpu_supports("avx2") ? "yes" : "no", __builtin_cpu_supports("fma") ? "yes" : "no",
             __builtin_cpu_supports("avx512f") ? "yes" : "no", __builtin_cpu_supports("avx512bf16") ? "yes" : "no",
             __builtin_cpu_supports("amx-bf16") ? "yes" : "no",
             tsk_cpu_path(), tsk_cpu_path_kernels(),
             getenv("TSHOST_CPU") && *getenv("TSHOST_CPU") ? ", forced by TSHOST_CPU" : "");
}

static void *cpu_malloc(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? (bytes + 63) / 64 * 64 : 64) ? NULL : p;
}

static void cpu_free(void *p) { free(p); }

static int cpu_zero(void *p, size_t bytes)
{
    memset(p, 0, bytes);
    return 0;
}

/* upload, download and copy within the device are all the same memcpy here */
static int cpu_copy(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
    return 0;
}

/* dst[i] = src[i] over the index space shape [ndim]: the last dim a run of elements, the others counted
 * like an odometer */
static int cpu_copy_strided(int elem_size, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
                            const void *src, const int64_t *src_stride)
{
    int64_t index[8] = {0}, rows = 1, last = shape[ndim - 1];
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    if (rows == 0 || last == 0) return 0;
    char *out = dst;
    const char *in = src;
    int64_t ds = dst_stride[ndim - 1] * elem_size, ss = src_stride[ndim - 1] * elem_size;
    for (int64_t r = 0; r < rows; r++) {
        int64_t doff = 0, soff = 0;
        for (int d = 0; d < ndim - 1; d++) doff += index[d] * dst_stride[d], soff += index[d] * src_stride[d];
        char *o = out + doff * elem_size;
        const char *i = in + soff * elem_size;
        for (int64_t k = 0; k < last; k++) memcpy(o + k * ds, i + k * ss, (size_t)elem_size);
        for (int d = ndim - 2; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
    }
    return 0;
}

static int cpu_synchronize(void) { return 0; }

/* the host has checked the name and the value: "winograd", 0, 1, 2 or 4 */
static void cpu_set_option(const char *option, int value) { tsk_cpu_winograd_set(value); }

/* the CPU has no queue: every call has finished when it returns */
static uint64_t cpu_mark(void) { return 0; }
static int cpu_upload_beside(void *dst, const void *src, size_t bytes, uint64_t after) { return cpu_copy(dst, src, bytes); }

const tsk_backend tsk_cpu_backend = {
    .name = "cpu",
    .error = tsk_cpu_error,
    .error_is_oom = tsk_cpu_error_is_oom,
    .notice = tsk_cpu_notice,
    .init = cpu_init,
    .device_name = cpu_name,
    .about = cpu_about,
    .alloc = cpu_malloc,
    .release = cpu_free,
    .zero = cpu_zero,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .mark = cpu_mark,
    .upload_beside = cpu_upload_beside,
    .copy_strided = cpu_copy_strided,
    .synchronize = cpu_synchronize,
    .set_option = cpu_set_option,
    .release_cache = NULL,   /* scratch is returned after each call */
    .set_allocator = tsk_cpu_set_allocator,
    .caching = 0,
#define TSK_OP(where, ret, name, params) .name = TSK_IF_CPU_##where(tsk_cpu_##name, NULL),
#include "../ops.def"
#undef TSK_OP
};

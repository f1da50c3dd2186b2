/* device.c — which device a tensor's work runs on, and moving data between devices.
 *
 * Every layer asks ts_kernels(x) for the backend of its input's device and checks that its other tensors
 * are on the same one. Copies between the host and the GPU go through kernels/cuda's pinned staging;
 * strided copies on the GPU run there too. A dtype conversion with a CUDA side is done on the host:
 * it serves loading and inspecting, not the training step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#ifdef TS_WITH_CUDA
#include "../kernels/cuda/cuda.h"
#endif

static const char *device_name(int device) { return device == TS_CUDA ? "cuda" : "cpu"; }

int ts_cuda_built(void)
{
#ifdef TS_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}

#ifdef TS_WITH_CUDA
static int cuda_state;   /* 0 not tried, 1 ready, -1 unavailable: documented global state */

static int cuda_ready(void)
{
    if (cuda_state == 0) cuda_state = tsk_cuda_device_count() > 0 && tsk_cuda_init() == 0 ? 1 : -1;
    return cuda_state == 1;
}
#endif

int ts_cuda_available(void)
{
#ifdef TS_WITH_CUDA
    return cuda_ready();
#else
    return 0;
#endif
}

const char *ts_cuda_device_name(void)
{
#ifdef TS_WITH_CUDA
    if (cuda_ready()) return tsk_cuda_device_name();
#endif
    return "none";
}

static int need_cuda(const char *what)
{
#ifdef TS_WITH_CUDA
    if (cuda_ready()) return 0;
    return ts_error("%s: no CUDA device is available", what);
#else
    return ts_error("%s: tshost was built without CUDA (nvcc was not found at build time)", what);
#endif
}

int ts_cuda_synchronize(void)
{
    if (need_cuda("cuda.synchronize")) return -1;
#ifdef TS_WITH_CUDA
    if (tsk_cuda_synchronize()) return ts_kernel_status(&tsk_cuda_backend, "cuda.synchronize");
#endif
    return 0;
}

int ts_cuda_set(const char *option, int on)
{
    static const char *const options[] = {"deterministic", "tf32", "channels_last"};
    int which = -1;
    for (int i = 0; i < 3; i++)
        if (option && !strcmp(option, options[i])) which = i;
    if (which < 0) return ts_error("cuda.set: unknown option %s (deterministic, tf32, channels_last)", option ? option : "NULL");
    char what[64];
    snprintf(what, sizeof what, "cuda.%s", option);
    if (need_cuda(what)) return -1;
#ifdef TS_WITH_CUDA
    if (which == 0) tsk_cuda_set_deterministic(on);
    else if (which == 1) tsk_cuda_set_tf32(on);
    else tsk_cuda_set_channels_last(on);
#endif
    return 0;
}

const tsk_backend *ts_kernels(const ts_tensor *t)
{
#ifdef TS_WITH_CUDA
    if (ts_on_cuda(t)) return &tsk_cuda_backend;
#endif
    (void)t;
    return &tsk_cpu_backend;
}

int ts_kernel_status(const tsk_backend *k, const char *what)
{
    const char *e = k->error();
    if (!e) return 0;
    if (k->error_is_oom()) return ts_error_oom("%s: %s", what, e);
    return ts_error("%s: %s", what, e);
}

int ts_check_same_device(const char *what, const ts_tensor *a, const ts_tensor *b, const ts_tensor *c,
                         const ts_tensor *d)
{
    const ts_tensor *all[4] = {a, b, c, d}, *first = NULL;
    for (int i = 0; i < 4; i++) {
        if (!all[i]) continue;
        if (!first) first = all[i];
        else if (all[i]->storage->device != first->storage->device)
            return ts_error("%s: tensors on different devices (%s and %s): move them with :to()", what,
                            device_name(first->storage->device), device_name(all[i]->storage->device));
    }
    return 0;
}

int ts_require_cpu(const char *what, const ts_tensor *t)
{
    if (ts_on_cuda(t)) return ts_error("%s: expects a CPU tensor, got one on cuda (use :to('cpu'))", what);
    return 0;
}

int ts_device_zero(void *data, size_t bytes)
{
#ifdef TS_WITH_CUDA
    if (tsk_cuda_memset0(data, bytes)) return ts_kernel_status(&tsk_cuda_backend, "tensor");
    return 0;
#else
    (void)data, (void)bytes;
    return need_cuda("tensor");
#endif
}

ts_tensor *ts_tensor_to(ts_tensor *t, int device)
{
    if (device != TS_CPU && device != TS_CUDA) {
        ts_error("to: unknown device %d", device);
        return NULL;
    }
    if (t->storage->device == device) return ts_tensor_retain(t);
    if (device == TS_CUDA && need_cuda("to('cuda')")) return NULL;
    ts_tensor *c = ts_tensor_new_on(device, t->dtype, t->ndim, t->shape);
    if (c && ts_tensor_copy(c, t)) {
        ts_tensor_free(c);
        return NULL;
    }
    return c;
}

ts_tensor *ts_host_copy(const ts_tensor *t)
{
    return ts_tensor_to((ts_tensor *)t, TS_CPU);
}

#ifdef TS_WITH_CUDA
/* dst and src on the GPU, same dtype and element count, any strides */
static int copy_on_device(ts_tensor *dst, const ts_tensor *src)
{
    size_t elem = (size_t)ts_dtype_size(dst->dtype);
    int64_t n = ts_tensor_numel(dst);
    if (ts_tensor_is_contiguous(dst) && ts_tensor_is_contiguous(src)) {
        if (tsk_cuda_copy_device(ts_tensor_data(dst), ts_tensor_data(src), (size_t)n * elem))
            return ts_kernel_status(&tsk_cuda_backend, "copy");
        return 0;
    }
    int same_shape = dst->ndim == src->ndim && !memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)dst->ndim);
    const ts_tensor *s = src;
    ts_tensor *d = dst, *tmp = NULL;
    if (!same_shape) {
        /* the contiguous side viewed with the other's shape, so that one index space walks both */
        if (ts_tensor_is_contiguous(src)) s = tmp = ts_tensor_view((ts_tensor *)src, dst->ndim, dst->shape);
        else if (ts_tensor_is_contiguous(dst)) d = tmp = ts_tensor_view(dst, src->ndim, src->shape);
        else {
            tmp = ts_tensor_new_on(TS_CUDA, src->dtype, src->ndim, src->shape);
            int rc = !tmp || copy_on_device(tmp, src) || copy_on_device(dst, tmp);
            ts_tensor_free(tmp);
            return rc ? -1 : 0;
        }
        if (!tmp) return -1;
    }
    int64_t one = 1;
    int rc = tsk_cuda_copy_strided((int)elem, d->ndim ? d->ndim : 1, d->ndim ? d->shape : &one, ts_tensor_data(d),
                                   d->ndim ? d->stride : &one, ts_tensor_data(s), s->ndim ? s->stride : &one);
    ts_tensor_free(tmp);
    return rc ? ts_kernel_status(&tsk_cuda_backend, "copy") : 0;
}
#endif

/* called by ts_tensor_copy when either side is on the GPU; element counts already agree */
int ts_device_copy(ts_tensor *dst, const ts_tensor *src)
{
#ifdef TS_WITH_CUDA
    if (dst->dtype != src->dtype) {
        /* convert on the host, then copy as the same dtype */
        ts_tensor *h = ts_host_copy(src);
        ts_tensor *c = h ? ts_tensor_new(dst->dtype, h->ndim, h->shape) : NULL;
        int rc = !c || ts_tensor_copy(c, h) || ts_tensor_copy(dst, c);
        ts_tensor_free(h);
        ts_tensor_free(c);
        return rc ? -1 : 0;
    }
    if (ts_on_cuda(dst) && ts_on_cuda(src)) return copy_on_device(dst, src);
    size_t bytes = (size_t)ts_tensor_numel(dst) * (size_t)ts_dtype_size(dst->dtype);
    if (ts_on_cuda(dst)) {
        /* host -> device: a contiguous host image, uploaded straight into dst or into a temporary */
        ts_tensor *h = ts_tensor_contiguous((ts_tensor *)src);
        if (!h) return -1;
        int rc;
        if (ts_tensor_is_contiguous(dst)) {
            rc = tsk_cuda_upload(ts_tensor_data(dst), ts_tensor_data(h), bytes) ? ts_kernel_status(&tsk_cuda_backend, "copy") : 0;
        } else {
            ts_tensor *d = ts_tensor_new_on(TS_CUDA, h->dtype, h->ndim, h->shape);
            rc = !d || ts_device_copy(d, h) || copy_on_device(dst, d) ? -1 : 0;
            ts_tensor_free(d);
        }
        ts_tensor_free(h);
        return rc;
    }
    /* device -> host */
    ts_tensor *d = ts_tensor_contiguous((ts_tensor *)src);   /* on the GPU */
    if (!d) return -1;
    int rc;
    if (ts_tensor_is_contiguous(dst)) {
        rc = tsk_cuda_download(ts_tensor_data(dst), ts_tensor_data(d), bytes) ? ts_kernel_status(&tsk_cuda_backend, "copy") : 0;
    } else {
        ts_tensor *h = ts_tensor_new(d->dtype, d->ndim, d->shape);
        rc = !h || ts_device_copy(h, d) || ts_tensor_copy(dst, h) ? -1 : 0;
        ts_tensor_free(h);
    }
    ts_tensor_free(d);
    return rc;
#else
    (void)dst, (void)src;
    return need_cuda("copy");
#endif
}

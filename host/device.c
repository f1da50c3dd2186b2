/* device.c — the backends by device, which device a tensor's work runs on, and moving data between devices.
 *
 * Every layer asks ts_kernels(x) for the backend of its input's device and checks that its other tensors are
 * on the same one. Memory, copies and synchronization go through the backend's runtime entries the same
 * way, whatever the device. A dtype conversion with a device side is done on the host: it serves loading
 * and inspecting, not the training step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The registry: the one place a build's CUDA backend is named. */
static const tsk_backend *const registry[2] = {
    [TS_CPU] = &tsk_cpu_backend,
#ifdef TS_WITH_CUDA
    [TS_CUDA] = &tsk_cuda_backend,
#endif
};

/* whether each device answered its init (0 not tried, 1 ready, -1 not), and why not: documented global state */
static int state[2];
static char why_not[2][512];

static const char *device_name(int device) { return device == TS_CUDA ? "cuda" : "cpu"; }

const tsk_backend *ts_backend(int device)
{
    if (device < 0 || device > 1 || !registry[device]) return NULL;
    if (state[device] == 0) {
        const tsk_backend *k = registry[device];
        if (k->init() == 0) {
            state[device] = 1;
            k->set_allocator(ts_memory_allocator(device));
        } else {
            const char *e = k->error();
            state[device] = -1;
            snprintf(why_not[device], sizeof why_not[device], "%s", e ? e : "it did not start");
        }
    }
    return state[device] == 1 ? registry[device] : NULL;
}

const tsk_backend *ts_backend_started(int device)
{
    return device >= 0 && device <= 1 && state[device] == 1 ? registry[device] : NULL;
}

int ts_cuda_built(void) { return registry[TS_CUDA] != NULL; }
int ts_cuda_available(void) { return ts_backend(TS_CUDA) != NULL; }

const char *ts_cuda_unavailable_reason(void)
{
    if (!registry[TS_CUDA]) return "tshost was built without CUDA (nvcc was not found at build time)";
    return ts_backend(TS_CUDA) ? "" : why_not[TS_CUDA];
}

int ts_cpu_select_path(const char *name)
{
    const char *why = tsk_cpu_select_path(name);
    return why ? ts_error("TSHOST_CPU: %s", why) : 0;
}

double ts_cpu_peak_flops(void) { return tsk_cpu_peak_flops(); }
const char *ts_cpu_path(void) { return tsk_cpu_path(); }

int ts_device_about(int device, char *out, size_t size)
{
    if (device < 0 || device > 1 || !registry[device]) return ts_error("about: no backend for device %d in this build", device);
    registry[device]->about(out, size);
    return 0;
}

const char *ts_cuda_device_name(void)
{
    const tsk_backend *k = ts_backend(TS_CUDA);
    return k ? k->device_name() : "none";
}

/* The debug switch (cuda.set('sync', on) or TSHOST_CUDA_SYNC=1): every kernel call waits for its device and
 * checks, so an asynchronous fault (an illegal address) is reported by the op that caused it instead of by a
 * later copy or allocation. -1: not read from the environment yet. */
static int sync_each = -1;

/* the backend of a device that must be there, or NULL with an error naming what needed it */
static const tsk_backend *need(int device, const char *what)
{
    const tsk_backend *k = ts_backend(device);
    if (!k) ts_error("%s: no CUDA device is available (%s)", what, ts_cuda_unavailable_reason());
    return k;
}

int ts_cuda_synchronize(void)
{
    const tsk_backend *k = need(TS_CUDA, "cuda.synchronize");
    if (!k) return -1;
    return k->synchronize() ? ts_kernel_status(k, "cuda.synchronize") : 0;
}

int ts_cuda_set(const char *option, int on)
{
    static const char *const options[] = {"deterministic", "tf32", "channels_last", "sync"};
    int which = -1;
    for (int i = 0; i < 4; i++)
        if (option && !strcmp(option, options[i])) which = i;
    if (which < 0)
        return ts_error("cuda.set: unknown option %s (deterministic, tf32, channels_last, sync)", option ? option : "NULL");
    char what[64];
    snprintf(what, sizeof what, "cuda.%s", option);
    const tsk_backend *k = need(TS_CUDA, what);
    if (!k) return -1;
    if (which == 3) sync_each = on != 0;   /* the host's own switch */
    else k->set_option(option, on);
    return 0;
}

int ts_cpu_set(const char *option, int on)
{
    if (!option || strcmp(option, "winograd")) return ts_error("cpu.set: unknown option %s (winograd)", option ? option : "NULL");
    if (on != 0 && on != 1 && on != 2 && on != 4)
        return ts_error("cpu.set: winograd must be 0 (off), 1 (the tile size per shape), 2 or 4 (that tile size), not %d", on);
    registry[TS_CPU]->set_option(option, on);
    return 0;
}

const tsk_backend *ts_kernels(const ts_tensor *t) { return registry[t ? t->storage->device : TS_CPU]; }

int ts_kernel_missing(const tsk_backend *k, const char *what)
{
    return ts_error("%s: not available on %s", what, k->name);
}

int ts_kernel_status(const tsk_backend *k, const char *what)
{
    if (sync_each < 0) sync_each = getenv("TSHOST_CUDA_SYNC") && !strcmp(getenv("TSHOST_CUDA_SYNC"), "1");
    if (sync_each) k->synchronize();
    const char *note = k->notice ? k->notice() : NULL;
    if (note) fprintf(stderr, "tshost: note: %s: %s\n", what, note);
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

int ts_device_zero(int device, void *data, size_t bytes)
{
    const tsk_backend *k = need(device, "tensor");
    if (!k) return -1;
    return k->zero(data, bytes) ? ts_kernel_status(k, "tensor") : 0;
}

ts_tensor *ts_tensor_to(ts_tensor *t, int device)
{
    if (device != TS_CPU && device != TS_CUDA) {
        ts_error("to: unknown device %d", device);
        return NULL;
    }
    if (t->storage->device == device) return ts_tensor_retain(t);
    if (!need(device, "to('cuda')")) return NULL;
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

/* The first and one-past-last element a view can reach in its storage (strides are never negative here). */
static void extent(const ts_tensor *t, int64_t *lo, int64_t *hi)
{
    int64_t last = t->offset;
    for (int d = 0; d < t->ndim; d++) last += (t->shape[d] - 1) * t->stride[d];
    *lo = t->offset, *hi = last + 1;
}

/* Same dtype and element count, on one device, any strides: the device's copy, or its strided copy over one
 * index space. Views of one storage whose ranges overlap go through a temporary, because the backends'
 * copies assume they do not (memcpy; cudaMemcpyAsync within a device). */
int ts_copy_within(ts_tensor *dst, const ts_tensor *src)
{
    const tsk_backend *k = ts_kernels(dst);
    int64_t n = ts_tensor_numel(dst);
    size_t elem = (size_t)ts_dtype_size(dst->dtype);
    if (n == 0) return 0;
    if (ts_tensor_same_storage(dst, src)) {
        int64_t dlo, dhi, slo, shi;
        extent(dst, &dlo, &dhi);
        extent(src, &slo, &shi);
        if (dlo < shi && slo < dhi) {
            if (dst->offset == src->offset && dst->ndim == src->ndim &&
                !memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)dst->ndim) &&
                !memcmp(dst->stride, src->stride, sizeof(int64_t) * (size_t)dst->ndim))
                return 0;   /* a view copied onto itself */
            ts_tensor *tmp = ts_tensor_new_on(dst->storage->device, src->dtype, src->ndim, src->shape);
            int rc = !tmp || ts_copy_within(tmp, src) || ts_copy_within(dst, tmp);
            ts_tensor_free(tmp);
            return rc ? -1 : 0;
        }
    }
    if (ts_tensor_is_contiguous(dst) && ts_tensor_is_contiguous(src))
        return k->copy(ts_tensor_data(dst), ts_tensor_data(src), (size_t)n * elem) ? ts_kernel_status(k, "copy") : 0;
    int same_shape = dst->ndim == src->ndim && !memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)dst->ndim);
    const ts_tensor *s = src;
    ts_tensor *d = dst, *tmp = NULL;
    if (!same_shape) {
        /* the contiguous side viewed with the other's shape, so that one index space walks both */
        if (ts_tensor_is_contiguous(src)) s = tmp = ts_tensor_view((ts_tensor *)src, dst->ndim, dst->shape);
        else if (ts_tensor_is_contiguous(dst)) d = tmp = ts_tensor_view(dst, src->ndim, src->shape);
        else {
            tmp = ts_tensor_new_on(src->storage->device, src->dtype, src->ndim, src->shape);
            int rc = !tmp || ts_copy_within(tmp, src) || ts_copy_within(dst, tmp);
            ts_tensor_free(tmp);
            return rc ? -1 : 0;
        }
        if (!tmp) return -1;
    }
    int64_t one = 1;
    int rc = k->copy_strided((int)elem, d->ndim ? d->ndim : 1, d->ndim ? d->shape : &one, ts_tensor_data(d),
                             d->ndim ? d->stride : &one, ts_tensor_data(s), s->ndim ? s->stride : &one);
    ts_tensor_free(tmp);
    return rc ? ts_kernel_status(k, "copy") : 0;
}

/* called by ts_tensor_copy when the two sides are on different devices, or differ in dtype with one side off
 * the host; element counts already agree */
int ts_device_copy(ts_tensor *dst, const ts_tensor *src)
{
    if (dst->dtype != src->dtype) {
        /* convert on the host, then copy as the same dtype */
        ts_tensor *h = ts_host_copy(src);
        ts_tensor *c = h ? ts_tensor_new(dst->dtype, h->ndim, h->shape) : NULL;
        int rc = !c || ts_tensor_copy(c, h) || ts_tensor_copy(dst, c);
        ts_tensor_free(h);
        ts_tensor_free(c);
        return rc ? -1 : 0;
    }
    if (dst->storage->device == src->storage->device) return ts_copy_within(dst, src);
    size_t bytes = (size_t)ts_tensor_numel(dst) * (size_t)ts_dtype_size(dst->dtype);
    int rc;
    if (ts_on_cuda(dst)) {
        /* host -> device: a contiguous host image, uploaded straight into dst or into a temporary */
        const tsk_backend *k = ts_kernels(dst);
        ts_tensor *h = ts_tensor_contiguous((ts_tensor *)src);
        if (!h) return -1;
        if (ts_tensor_is_contiguous(dst)) {
            rc = k->upload(ts_tensor_data(dst), ts_tensor_data(h), bytes) ? ts_kernel_status(k, "copy") : 0;
        } else {
            ts_tensor *d = ts_tensor_new_on(dst->storage->device, h->dtype, h->ndim, h->shape);
            rc = !d || ts_device_copy(d, h) || ts_copy_within(dst, d) ? -1 : 0;
            ts_tensor_free(d);
        }
        ts_tensor_free(h);
        return rc;
    }
    /* device -> host: a contiguous device image, downloaded straight into dst or into a temporary */
    const tsk_backend *k = ts_kernels(src);
    ts_tensor *d = ts_tensor_contiguous((ts_tensor *)src);
    if (!d) return -1;
    if (ts_tensor_is_contiguous(dst)) {
        rc = k->download(ts_tensor_data(dst), ts_tensor_data(d), bytes) ? ts_kernel_status(k, "copy") : 0;
    } else {
        ts_tensor *h = ts_tensor_new(d->dtype, d->ndim, d->shape);
        rc = !h || ts_device_copy(h, d) || ts_copy_within(dst, h) ? -1 : 0;
        ts_tensor_free(h);
    }
    ts_tensor_free(d);
    return rc;
}

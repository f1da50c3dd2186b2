/* Tensors: reference-counted storage, strided views, copies and fills.
 * Elementwise arithmetic and reductions live in tensor_math.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int ts_dtype_size(int dtype)
{
    static const int sizes[] = {4, 1, 4, 8, 8};
    return dtype >= 0 && dtype <= TS_FLOAT64 ? sizes[dtype] : 0;
}

static const char *dtype_name(int dtype)
{
    static const char *names[] = {"float32", "uint8", "int32", "int64", "float64"};
    return dtype >= 0 && dtype <= TS_FLOAT64 ? names[dtype] : "unknown";
}

const char *ts_shape_str(const ts_tensor *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

static void set_contiguous_strides(ts_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

static ts_tensor *handle_on(ts_storage *s, int dtype)
{
    ts_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        ts_error("out of memory allocating a tensor handle");
        return NULL;
    }
    t->storage = s;
    s->refcount++;
    t->dtype = dtype;
    t->refcount = 1;
    return t;
}

static int check_shape_args(int dtype, int ndim, const int64_t *shape)
{
    if (!ts_dtype_size(dtype)) return ts_error("tensor: unknown dtype %d", dtype);
    if (ndim < 0 || ndim > TS_MAX_DIMS) return ts_error("tensor: %d dims requested, at most %d supported", ndim, TS_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) return ts_error("tensor: size %lld of dim %d is negative", (long long)shape[d], d + 1);
    return 0;
}

int ts_shape_bytes(const char *what, int ndim, const int64_t *shape, int64_t elem_size, int64_t *numel, int64_t *bytes)
{
    /* the product with zero sizes counted as 1 must fit too: the strides are products of the sizes after a
     * dim, and those of [0, 2^62, 4] overflow although it holds no element */
    int64_t extent = 1;
    int overflow = 0, empty = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return ts_error("%s: size %lld of dim %d is negative", what, (long long)shape[d], d + 1);
        overflow |= __builtin_mul_overflow(extent, shape[d] ? shape[d] : 1, &extent);
        empty |= !shape[d];
    }
    int64_t n = empty ? 0 : extent, b = 0;
    overflow |= __builtin_mul_overflow(n, elem_size, &b);
    if (overflow) {
        char dims[160];
        size_t at = 0;
        for (int d = 0; d < ndim && at < sizeof dims; d++)
            at += (size_t)snprintf(dims + at, sizeof dims - at, "%s%lld", d ? "," : "", (long long)shape[d]);
        return ts_error("%s: shape [%s] holds more elements than a 64-bit count (corrupt size field?)", what, dims);
    }
    *numel = n;
    *bytes = b;
    return 0;
}

ts_tensor *ts_tensor_new_on(int device, int dtype, int ndim, const int64_t *shape)
{
    if (check_shape_args(dtype, ndim, shape)) return NULL;
    if (device != TS_CPU && device != TS_CUDA) {
        ts_error("tensor: unknown device %d", device);
        return NULL;
    }
    int64_t numel = 0, nbytes = 0;
    if (ts_shape_bytes("tensor", ndim, shape, ts_dtype_size(dtype), &numel, &nbytes)) return NULL;
    size_t bytes = (size_t)nbytes, granted = 0;
    ts_storage *s = calloc(1, sizeof *s);
    if (!s) {
        ts_error("out of memory allocating a tensor handle");
        return NULL;
    }
    void *data = ts_memory_alloc(device, bytes, &granted);
    if (!data || ts_device_zero(device, data, bytes)) {
        ts_memory_release(device, data, granted);
        free(s);
        return NULL;
    }
    s->data = data;
    s->bytes = bytes;
    s->granted = granted;
    s->device = device;
    ts_note_allocation(bytes);
    ts_tensor *t = handle_on(s, dtype);
    if (!t) {
        ts_memory_release(device, data, granted);
        free(s);
        return NULL;
    }
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);   /* a scalar's shape may be NULL */
    set_contiguous_strides(t);
    return t;
}

ts_tensor *ts_tensor_new(int dtype, int ndim, const int64_t *shape) { return ts_tensor_new_on(TS_CPU, dtype, ndim, shape); }

float ts_half_to_float(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f = exp == 0    ? ldexpf((float)man, -24)                      /* zero, subnormals */
              : exp == 31 ? (man ? NAN : INFINITY)
                          : ldexpf((float)(man | 0x400), exp - 25);
    return h >> 15 ? -f : f;
}

void ts_tensor_plain_nans(ts_tensor *t)
{
    int64_t n = ts_tensor_numel(t);
    if (t->dtype == TS_FLOAT32) {
        for (float *p = ts_f32(t); n-- > 0; p++)
            if (*p != *p) *p = NAN;
    } else if (t->dtype == TS_FLOAT64) {
        for (double *p = ts_tensor_data(t); n-- > 0; p++)
            if (*p != *p) *p = NAN;
    }
}

ts_tensor *ts_tensor_from_buffer(int dtype, int ndim, const int64_t *shape, const void *data)
{
    ts_tensor *t = ts_tensor_new(dtype, ndim, shape);
    if (t) memcpy(t->storage->data, data, t->storage->bytes);
    return t;
}

void ts_tensor_free(ts_tensor *t)
{
    if (!t || --t->refcount > 0) return;
    if (--t->storage->refcount == 0) {
        ts_memory_release(t->storage->device, t->storage->data, t->storage->granted);
        free(t->storage);
    }
    free(t);
}

ts_tensor *ts_tensor_retain(ts_tensor *t)
{
    t->refcount++;
    return t;
}

int ts_tensor_ndim(const ts_tensor *t) { return t->ndim; }
int64_t ts_tensor_size(const ts_tensor *t, int dim) { return dim >= 0 && dim < t->ndim ? t->shape[dim] : 0; }
int64_t ts_tensor_stride(const ts_tensor *t, int dim) { return dim >= 0 && dim < t->ndim ? t->stride[dim] : 0; }
int ts_tensor_dtype(const ts_tensor *t) { return t->dtype; }
int ts_tensor_device(const ts_tensor *t) { return t->storage->device; }
int ts_tensor_same_storage(const ts_tensor *a, const ts_tensor *b) { return a->storage == b->storage; }

int64_t ts_tensor_numel(const ts_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

int ts_tensor_is_contiguous(const ts_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return 0;
        s *= t->shape[d];
    }
    return 1;
}

void *ts_tensor_data(const ts_tensor *t)
{
    return (char *)t->storage->data + t->offset * ts_dtype_size(t->dtype);
}

/* ---- views ---- */

static ts_tensor *view_of(ts_tensor *t)
{
    ts_tensor *v = handle_on(t->storage, t->dtype);
    if (!v) return NULL;
    v->offset = t->offset;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof v->shape);
    memcpy(v->stride, t->stride, sizeof v->stride);
    return v;
}

static int check_dim(const char *what, const ts_tensor *t, int dim)
{
    if (dim < 0 || dim >= t->ndim)
        return ts_error("%s: dim %d out of range for a %d-dim tensor", what, dim + 1, t->ndim);
    return 0;
}

ts_tensor *ts_tensor_view(ts_tensor *t, int ndim, const int64_t *shape)
{
    char buf[96];
    if (ndim < 0 || ndim > TS_MAX_DIMS) {
        ts_error("view: %d dims requested, at most %d supported", ndim, TS_MAX_DIMS);
        return NULL;
    }
    if (!ts_tensor_is_contiguous(t)) {
        ts_error("view: tensor %s is not contiguous (call :contiguous() first)", ts_shape_str(t, buf, sizeof buf));
        return NULL;
    }
    int64_t numel = ts_tensor_numel(t), known, unused;
    int infer = -1;
    int64_t resolved[TS_MAX_DIMS] = {0};   /* the sizes asked for, -1 counted as 1 until it is inferred */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1 && infer >= 0) {
            ts_error("view: only one size may be -1");
            return NULL;
        }
        if (shape[d] == -1) infer = d;
        resolved[d] = shape[d] == -1 ? 1 : shape[d];
    }
    /* the sizes are the user's: their product may leave int64 */
    if (ts_shape_bytes("view", ndim, resolved, 1, &known, &unused)) return NULL;
    if (infer >= 0) resolved[infer] = known ? numel / known : 0;
    int64_t total = infer >= 0 ? known * resolved[infer] : known;   /* at most numel: no overflow */
    /* a -1 beside a size of 0 could be anything, even when the tensor is empty (PyTorch refuses it too) */
    if (total != numel || (infer >= 0 && known == 0)) {
        /* the shape asked for, as given (with its -1) */
        char asked[96];
        int at = snprintf(asked, sizeof asked, "[");
        for (int d = 0; d < ndim && at < (int)sizeof asked; d++)
            at += snprintf(asked + at, sizeof asked - (size_t)at, "%s%lld", d ? "," : "", (long long)shape[d]);
        if (at < (int)sizeof asked) snprintf(asked + at, sizeof asked - (size_t)at, "]");
        if (infer >= 0 && known == 0)
            ts_error("view: cannot view %s (%lld elements) as %s: a size of 0 leaves the -1 undetermined",
                     ts_shape_str(t, buf, sizeof buf), (long long)numel, asked);
        else if (infer >= 0)
            ts_error("view: cannot view %s (%lld elements) as %s: %lld is not a multiple of %lld",
                     ts_shape_str(t, buf, sizeof buf), (long long)numel, asked, (long long)numel, (long long)known);
        else
            ts_error("view: cannot view %s (%lld elements) as %s (%lld elements)", ts_shape_str(t, buf, sizeof buf),
                     (long long)numel, asked, (long long)total);
        return NULL;
    }
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    v->ndim = ndim;
    memcpy(v->shape, resolved, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(v);
    return v;
}

ts_tensor *ts_tensor_narrow(ts_tensor *t, int dim, int64_t start, int64_t length)
{
    if (check_dim("narrow", t, dim)) return NULL;
    /* start + length is not formed: both are the user's and their sum may leave int64 */
    if (start < 0 || length < 0 || start > t->shape[dim] || length > t->shape[dim] - start) {
        ts_error("narrow: %lld elements from %lld fall outside dim %d of size %lld", (long long)length,
                 (long long)start + 1, dim + 1, (long long)t->shape[dim]);
        return NULL;
    }
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    v->offset += start * t->stride[dim];
    v->shape[dim] = length;
    return v;
}

ts_tensor *ts_tensor_slice(ts_tensor *t, int dim, int64_t start, int64_t length, int64_t step)
{
    if (check_dim("slice", t, dim)) return NULL;
    /* the last index, start + (length - 1) * step, is bounded by division: the user's values may overflow it */
    if (step < 1 || start < 0 || length < 0 ||
        (length > 0 && (start >= t->shape[dim] || (length - 1) > (t->shape[dim] - 1 - start) / step))) {
        ts_error("slice: %lld elements from %lld with step %lld do not fit dim %d of size %lld", (long long)length,
                 (long long)start + 1, (long long)step, dim + 1, (long long)t->shape[dim]);
        return NULL;
    }
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    /* start and step are the user's and may be huge: an empty slice reads nothing and one element needs no
     * step, so only what is used is formed (with two or more elements, step < size keeps the stride in the
     * storage) */
    if (length > 0) v->offset += start * t->stride[dim];
    v->shape[dim] = length;
    if (length > 1) v->stride[dim] *= step;
    return v;
}

ts_tensor *ts_tensor_select(ts_tensor *t, int dim, int64_t index)
{
    if (check_dim("select", t, dim)) return NULL;
    if (index < 0 || index >= t->shape[dim]) {
        ts_error("index %lld out of range for dim %d of size %lld", (long long)index + 1, dim + 1,
                 (long long)t->shape[dim]);
        return NULL;
    }
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    v->offset += index * t->stride[dim];
    for (int d = dim; d < t->ndim - 1; d++) {
        v->shape[d] = t->shape[d + 1];
        v->stride[d] = t->stride[d + 1];
    }
    v->ndim--;
    return v;
}

ts_tensor *ts_tensor_transpose(ts_tensor *t, int dim0, int dim1)
{
    if (check_dim("transpose", t, dim0) || check_dim("transpose", t, dim1)) return NULL;
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    v->shape[dim0] = t->shape[dim1];
    v->shape[dim1] = t->shape[dim0];
    v->stride[dim0] = t->stride[dim1];
    v->stride[dim1] = t->stride[dim0];
    return v;
}

ts_tensor *ts_tensor_unsqueeze(ts_tensor *t, int dim)
{
    char buf[96];
    if (dim < 0 || dim > t->ndim) {
        ts_error("unsqueeze: dim %d out of range for a %d-dim tensor", dim + 1, t->ndim);
        return NULL;
    }
    if (t->ndim == TS_MAX_DIMS) {
        ts_error("unsqueeze: %s has %d dims already, at most %d supported", ts_shape_str(t, buf, sizeof buf), t->ndim,
                 TS_MAX_DIMS);
        return NULL;
    }
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    for (int d = t->ndim; d > dim; d--) {
        v->shape[d] = t->shape[d - 1];
        v->stride[d] = t->stride[d - 1];
    }
    /* the stride a contiguous tensor would have there, as PyTorch gives it: the new dim steps over the dims after it */
    v->shape[dim] = 1;
    v->stride[dim] = dim < t->ndim ? t->shape[dim] * t->stride[dim] : 1;
    v->ndim++;
    return v;
}

ts_tensor *ts_tensor_expand(ts_tensor *t, int ndim, const int64_t *shape)
{
    char buf[96];
    if (ndim < t->ndim || ndim > TS_MAX_DIMS) {
        ts_error("expand: cannot expand %s to %d dims", ts_shape_str(t, buf, sizeof buf), ndim);
        return NULL;
    }
    /* -1 keeps an existing dim's size, as PyTorch's expand (a new leading dim has none to keep) */
    int lead = ndim - t->ndim;
    int64_t sizes[TS_MAX_DIMS];
    for (int d = 0; d < ndim; d++) sizes[d] = shape[d] == -1 && d >= lead ? t->shape[d - lead] : shape[d];
    shape = sizes;
    int64_t numel, unused;   /* the sizes are the user's: an expanded count may leave int64 */
    if (ts_shape_bytes("expand", ndim, shape, 1, &numel, &unused)) return NULL;
    ts_tensor *v = view_of(t);
    if (!v) return NULL;
    for (int d = 0; d < ndim; d++) {
        int64_t have = d < lead ? 1 : t->shape[d - lead];
        int64_t stride = d < lead ? 0 : t->stride[d - lead];
        if (have != shape[d] && have != 1) {
            ts_error("expand: size %lld of dim %d cannot broadcast to %lld", (long long)have, d + 1, (long long)shape[d]);
            ts_tensor_free(v);
            return NULL;
        }
        v->shape[d] = shape[d];
        v->stride[d] = have == shape[d] ? stride : 0;
    }
    v->ndim = ndim;
    return v;
}

ts_tensor *ts_tensor_contiguous(ts_tensor *t)
{
    if (ts_tensor_is_contiguous(t)) return ts_tensor_retain(t);
    ts_tensor *c = ts_tensor_new_on(t->storage->device, t->dtype, t->ndim, t->shape);
    if (c && ts_tensor_copy(c, t)) {
        ts_tensor_free(c);
        return NULL;
    }
    return c;
}

/* ---- element access in any dtype ---- */

double ts_element_load(const void *base, int dtype, int64_t i)
{
    switch (dtype) {
    case TS_FLOAT32: return ((const float *)base)[i];
    case TS_UINT8: return ((const uint8_t *)base)[i];
    case TS_INT32: return ((const int32_t *)base)[i];
    case TS_INT64: return (double)((const int64_t *)base)[i];
    default: return ((const double *)base)[i];
    }
}

static int64_t to_int64(double v) { return v >= -0x1p63 && v < 0x1p63 ? (int64_t)v : INT64_MIN; }

void ts_element_store(void *base, int dtype, int64_t i, double v)
{
    switch (dtype) {
    case TS_FLOAT32: ((float *)base)[i] = (float)v; break;
    case TS_UINT8: ((uint8_t *)base)[i] = (uint8_t)(v > 255 ? 255 : v > 0 ? v : 0); break;   /* NaN: 0 */
    /* integers wrap as C's and numpy's integer casts do (int64 2^32 + 5 -> int32 5); NaN and what int64 cannot
       hold become INT64_MIN, as x86's conversion gives, instead of C's undefined behaviour */
    case TS_INT32: case TS_INT64: ts_element_store_int(base, dtype, i, to_int64(v)); break;
    default: ((double *)base)[i] = v; break;
    }
}

int ts_dtype_is_integer(int dtype) { return dtype == TS_UINT8 || dtype == TS_INT32 || dtype == TS_INT64; }

int64_t ts_element_load_int(const void *base, int dtype, int64_t i)
{
    switch (dtype) {
    case TS_UINT8: return ((const uint8_t *)base)[i];
    case TS_INT32: return ((const int32_t *)base)[i];
    default: return ((const int64_t *)base)[i];
    }
}

void ts_element_store_int(void *base, int dtype, int64_t i, int64_t v)
{
    switch (dtype) {
    case TS_FLOAT32: ((float *)base)[i] = (float)v; break;
    case TS_UINT8: ((uint8_t *)base)[i] = (uint8_t)(uint64_t)v; break;
    case TS_INT32: ((int32_t *)base)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case TS_INT64: ((int64_t *)base)[i] = v; break;
    default: ((double *)base)[i] = (double)v; break;
    }
}

/* One element converted from one dtype to another. Between integer dtypes through int64, so that an int64 beyond
 * 2^53 (which a double cannot hold) wraps into int32 as numpy's cast does instead of through a rounded double;
 * into uint8 through a double, which saturates (pixels). */
static void convert_element(void *d, int dtype, int64_t di, const void *s, int src_dtype, int64_t si)
{
    if (!ts_dtype_is_integer(dtype) || !ts_dtype_is_integer(src_dtype) || dtype == TS_UINT8)
        ts_element_store(d, dtype, di, ts_element_load(s, src_dtype, si));
    else
        ts_element_store_int(d, dtype, di, ts_element_load_int(s, src_dtype, si));
}

/* Offset (in elements) of the first element of row r, where rows are all dims but the last. */
int64_t ts_row_offset(const ts_tensor *t, int64_t r)
{
    int64_t off = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        off += (r % t->shape[d]) * t->stride[d];
        r /= t->shape[d];
    }
    return off;
}

int ts_tensor_copy(ts_tensor *dst, const ts_tensor *src)
{
    char a[96], b[96];
    int64_t n = ts_tensor_numel(dst);
    if (n != ts_tensor_numel(src))
        return ts_error("copy: destination %s and source %s differ in element count", ts_shape_str(dst, a, sizeof a),
                        ts_shape_str(src, b, sizeof b));
    if (ts_check_writable("copy", dst)) return -1;
    if (dst->dtype == src->dtype && dst->storage->device == src->storage->device) return ts_copy_within(dst, src);
    if (ts_on_cuda(dst) || ts_on_cuda(src)) return ts_device_copy(dst, src);
    /* a dtype conversion on the host */
    void *d = ts_tensor_data(dst);
    const void *s = ts_tensor_data(src);
    if (ts_tensor_is_contiguous(dst) && ts_tensor_is_contiguous(src)) {
        if (dst->dtype == TS_FLOAT32 && src->dtype == TS_UINT8) {
            for (int64_t i = 0; i < n; i++) ((float *)d)[i] = ((const uint8_t *)s)[i];
        } else {
            for (int64_t i = 0; i < n; i++) convert_element(d, dst->dtype, i, s, src->dtype, i);
        }
        return 0;
    }
    /* Strided: walk both in row-major element order; each row is the tensor's last dim. Two dtypes cannot
     * share a storage's bytes meaningfully, but a view's bytes might be reinterpreted: through a temporary. */
    if (ts_tensor_same_storage(dst, src)) {
        ts_tensor *tmp = ts_tensor_new(src->dtype, src->ndim, src->shape);
        int rc = !tmp || ts_copy_within(tmp, src) || ts_tensor_copy(dst, tmp);
        ts_tensor_free(tmp);
        return rc ? -1 : 0;
    }
    int64_t dl = dst->ndim ? dst->shape[dst->ndim - 1] : 1, sl = src->ndim ? src->shape[src->ndim - 1] : 1;
    int64_t ds = dst->ndim ? dst->stride[dst->ndim - 1] : 1, ss = src->ndim ? src->stride[src->ndim - 1] : 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t di = ts_row_offset(dst, i / dl) + (i % dl) * ds;
        int64_t si = ts_row_offset(src, i / sl) + (i % sl) * ss;
        convert_element(d, dst->dtype, di, s, src->dtype, si);
    }
    return 0;
}

static int64_t element_offset(const ts_tensor *t, const int64_t *index, const char *what)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (index[d] < 0 || index[d] >= t->shape[d]) {
            ts_error("%s: index %lld out of range for dim %d of size %lld", what, (long long)index[d] + 1, d + 1,
                     (long long)t->shape[d]);
            return -1;
        }
        off += index[d] * t->stride[d];
    }
    return off;
}

/* one element of a tensor as a 0-d view, so that a CUDA tensor's element moves through ts_tensor_copy */
static ts_tensor *element_view(ts_tensor *t, int64_t off)
{
    ts_tensor *v = view_of(t);
    if (v) v->offset += off, v->ndim = 0;
    return v;
}

static int cuda_element(ts_tensor *t, int64_t off, double *value, int write)
{
    ts_tensor *v = element_view(t, off), *h = ts_tensor_new(t->dtype, 0, NULL);
    int rc = -1;
    if (v && h) {
        if (write) ts_element_store(ts_tensor_data(h), h->dtype, 0, *value);
        rc = write ? ts_tensor_copy(v, h) : ts_tensor_copy(h, v);
        if (!rc && !write) *value = ts_element_load(ts_tensor_data(h), h->dtype, 0);
    }
    ts_tensor_free(v);
    ts_tensor_free(h);
    return rc;
}

int ts_tensor_get(const ts_tensor *t, const int64_t *index, double *value)
{
    int64_t off = element_offset(t, index, "get");
    if (off < 0) return -1;
    if (ts_on_cuda(t)) return cuda_element((ts_tensor *)t, off, value, 0);
    *value = ts_element_load(ts_tensor_data(t), t->dtype, off);
    return 0;
}

int ts_tensor_set(ts_tensor *t, const int64_t *index, double value)
{
    int64_t off = element_offset(t, index, "set");
    if (off < 0 || ts_check_writable("set", t)) return -1;
    if (ts_on_cuda(t)) return cuda_element(t, off, &value, 1);
    ts_element_store(ts_tensor_data(t), t->dtype, off, value);
    return 0;
}

/* Calls fn(value) for every element in row-major order, storing the results: fills, random draws. */
static int fill_with(ts_tensor *t, double (*fn)(void *), void *ctx)
{
    if (ts_on_cuda(t)) {
        /* drawn on the host, in the same order as for a CPU tensor, then copied */
        ts_tensor *h = ts_tensor_new(t->dtype, t->ndim, t->shape);
        int rc = !h || fill_with(h, fn, ctx) || ts_tensor_copy(t, h);
        ts_tensor_free(h);
        return rc ? -1 : 0;
    }
    int64_t n = ts_tensor_numel(t), last = t->ndim ? t->shape[t->ndim - 1] : 1;
    int64_t ls = t->ndim ? t->stride[t->ndim - 1] : 1;
    void *d = ts_tensor_data(t);
    int contiguous = ts_tensor_is_contiguous(t);
    for (int64_t i = 0; i < n; i++)
        ts_element_store(d, t->dtype, contiguous ? i : ts_row_offset(t, i / last) + (i % last) * ls, fn(ctx));
    return 0;
}

static double constant(void *ctx) { return *(double *)ctx; }
static double uniform(void *ctx)
{
    double *lohi = ctx;
    return lohi[0] + (lohi[1] - lohi[0]) * ts_rng_uniform();
}
static double normal(void *ctx)
{
    double *ms = ctx;
    return ms[0] + ms[1] * ts_rng_normal();
}

int ts_tensor_fill(ts_tensor *t, double value)
{
    if (ts_check_writable("fill", t)) return -1;
    /* zeroing a GPU tensor, which layers do every step, is a memset there rather than a host fill and copy */
    if (ts_on_cuda(t) && value == 0 && ts_tensor_is_contiguous(t))
        return ts_device_zero(t->storage->device, ts_tensor_data(t), (size_t)ts_tensor_numel(t) * (size_t)ts_dtype_size(t->dtype));
    return fill_with(t, constant, &value);
}

/* random draws are real numbers: stored into an integer tensor they were cut or saturated without a word (a uint8
 * normal(1000, 1) gave 255 everywhere, an int32 uniform(0, 1) zeros); PyTorch refuses them too */
static int check_real(const char *what, const ts_tensor *t)
{
    if (t->dtype == TS_FLOAT32 || t->dtype == TS_FLOAT64) return 0;
    return ts_error("%s: draws real numbers, into a float32 or float64 tensor, got %s", what, dtype_name(t->dtype));
}

int ts_tensor_uniform(ts_tensor *t, double lo, double hi)
{
    if (ts_check_writable("uniform", t) || check_real("uniform", t)) return -1;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return ts_error("uniform: expected finite bounds with from <= to, got %g and %g", lo, hi);
    double lohi[2] = {lo, hi};
    return fill_with(t, uniform, lohi);
}

int ts_tensor_normal(ts_tensor *t, double mean, double std)
{
    if (ts_check_writable("normal", t) || check_real("normal", t)) return -1;
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean))
        return ts_error("normal: expected a finite mean and a finite std >= 0, got mean %g, std %g", mean, std);
    double ms[2] = {mean, std};
    return fill_with(t, normal, ms);
}

/* ---- argument checks shared by the layers ---- */

int ts_check_writable(const char *what, const ts_tensor *out)
{
    if (ts_tensor_numel(out) == 0) return 0;   /* nothing is written (an empty tensor's strides may be 0) */
    for (int d = 0; d < out->ndim; d++)
        if (out->shape[d] > 1 && out->stride[d] == 0)
            return ts_error("%s: the result is an expanded view (stride 0 in dim %d): write into a :clone()", what, d + 1);
    return 0;
}

int ts_check_dtype(const char *what, const ts_tensor *t, ts_dtype dtype)
{
    if (!t) return ts_error("%s: missing tensor", what);
    if (t->dtype != (int)dtype)
        return ts_error("%s: expected a %s tensor, got %s", what, dtype_name(dtype), dtype_name(t->dtype));
    if (!ts_tensor_is_contiguous(t)) return ts_error("%s: expected a contiguous tensor", what);
    return 0;
}

int ts_check_f32(const char *what, const ts_tensor *t) { return ts_check_dtype(what, t, TS_FLOAT32); }

int ts_check_math(const char *what, int math)
{
    if (math != TS_MATH_FP32 && math != TS_MATH_BF16)
        return ts_error("%s: unknown compute precision %d (TS_MATH_FP32 or TS_MATH_BF16)", what, math);
    return 0;
}

int ts_check_shape(const char *what, const ts_tensor *t, int ndim, const int64_t *shape)
{
    return ts_check_shape_of(what, t, TS_FLOAT32, ndim, shape);
}

int ts_check_shape_of(const char *what, const ts_tensor *t, ts_dtype dtype, int ndim, const int64_t *shape)
{
    char got[96], want[96];
    if (ts_check_dtype(what, t, dtype)) return -1;
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (ok) return 0;
    size_t n = (size_t)snprintf(want, sizeof want, "[");
    for (int d = 0; d < ndim && n < sizeof want; d++)
        n += (size_t)snprintf(want + n, sizeof want - n, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (n < sizeof want) snprintf(want + n, sizeof want - n, "]");
    return ts_error("%s: expected shape %s, got %s", what, want, ts_shape_str(t, got, sizeof got));
}

int ts_check_numel(const char *what, const ts_tensor *t, int64_t numel)
{
    char got[96];
    if (ts_check_f32(what, t)) return -1;
    if (ts_tensor_numel(t) != numel)
        return ts_error("%s: expected %lld elements, got %s", what, (long long)numel, ts_shape_str(t, got, sizeof got));
    return 0;
}

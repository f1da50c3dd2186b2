/* Elementwise arithmetic with broadcasting (float32 fast paths; other dtypes in double, integers in int64),
 * reductions and matrix products on tensors. These serve Lua-level code (preprocessing, metrics, tests); the
 * layers have their own kernels.
 * With a CUDA operand, arithmetic and reductions run on host copies (on_host), each one counted and, in strict
 * mode, refused (ts_math_fallback); axpy, sums of squares, matrix products and the whole-tensor cases the layers
 * use (on_device), which the training step needs, run on the device. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "internal.h"

static double apply_binary(int op, double a, double b)
{
    switch (op) {
    case TS_ADD: return a + b;
    case TS_SUB: return a - b;
    case TS_MUL: return a * b;
    case TS_DIV: return a / b;
    case TS_MAXIMUM: return a > b || a != a ? a : b;   /* a NaN on either side propagates, as numpy.maximum */
    case TS_MINIMUM: return a < b || a != a ? a : b;
    case TS_POW: return pow(a, b);
    case TS_EQ: return a == b;
    case TS_LT: return a < b;
    default: return a > b;
    }
}

/* a^e by squaring, wrapping as the products do; a negative e gives PyTorch's integer answer, the integer part
 * of 1 / a^-e: 1 for a = 1, +-1 for a = -1, 0 otherwise */
static int64_t int_pow(int64_t a, int64_t e)
{
    if (e < 0) return a == 1 ? 1 : a == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)a;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}

/* apply_binary on integers, in int64: exact beyond 2^53, wrapping on overflow as PyTorch's integer arithmetic (through
 * uint64, where C's signed overflow is undefined). Comparisons give 0 or 1. */
static int64_t apply_binary_int(int op, int64_t a, int64_t b)
{
    switch (op) {
    case TS_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case TS_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case TS_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case TS_MAXIMUM: return a > b ? a : b;
    case TS_MINIMUM: return a < b ? a : b;
    case TS_POW: return int_pow(a, b);
    case TS_EQ: return a == b;
    case TS_LT: return a < b;
    default: return a > b;   /* TS_GT; true division is never integer (binary_is_integer) */
    }
}

static double apply_unary(int op, double a)
{
    switch (op) {
    case TS_NEG: return -a;
    case TS_EXP: return exp(a);
    case TS_LOG: return log(a);
    case TS_SQRT: return sqrt(a);
    case TS_ABS: return fabs(a);
    case TS_TANH: return tanh(a);
    case TS_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case TS_FLOOR: return floor(a);
    default: return a * a;
    }
}

static int64_t apply_unary_int(int op, int64_t a)
{
    switch (op) {
    case TS_NEG: return (int64_t)(0 - (uint64_t)a);
    case TS_ABS: return a < 0 ? (int64_t)(0 - (uint64_t)a) : a;   /* INT64_MIN stays, as in PyTorch */
    case TS_FLOOR: return a;
    default: return (int64_t)((uint64_t)a * (uint64_t)a);   /* TS_SQUARE (unary_is_integer) */
    }
}

/* Strides of t as seen through out's shape (NumPy broadcasting, right-aligned), or -1. */
static int broadcast_strides(const ts_tensor *out, const ts_tensor *t, int64_t *stride, const char *what)
{
    char a[96], b[96];
    int lead = out->ndim - t->ndim;
    if (lead < 0) goto bad;
    for (int d = 0; d < out->ndim; d++) {
        int64_t size = d < lead ? 1 : t->shape[d - lead];
        if (size == out->shape[d]) stride[d] = d < lead ? 0 : t->stride[d - lead];
        else if (size == 1) stride[d] = 0;
        else goto bad;
    }
    return 0;
bad:
    return ts_error("%s: operand %s does not broadcast to the result %s", what, ts_shape_str(t, a, sizeof a),
                    ts_shape_str(out, b, sizeof b));
}

static int64_t offset_of(const ts_tensor *shape_of, const int64_t *stride, int64_t i)
{
    int64_t off = 0;
    for (int d = shape_of->ndim - 1; d >= 0; d--) {
        off += (i % shape_of->shape[d]) * stride[d];
        i /= shape_of->shape[d];
    }
    return off;
}

/* A host round trip is right for metrics and inspection and wrong inside a training step, where it stalls
 * every step: counted, so that it can be seen, and refused in strict mode (the training step on the GPU), so
 * that a layer that hides one is found. Only the thread that drives the program does tensor math (the loader's
 * workers never do), hence no atomics. */
static int64_t fallbacks;
static int strict;

int ts_math_fallback(const char *op, int device)
{
    if (device == TS_CPU) return 0;
    if (strict)
        return ts_error("%s: computing on a host copy of a cuda tensor, refused in strict mode (the training step on "
                        "the GPU): the op belongs on the device, or outside the step after an explicit :cpu()", op);
    fallbacks++;
    return 0;
}

int64_t ts_math_fallbacks(void) { return fallbacks; }
int ts_math_is_strict(void) { return strict; }

int ts_math_set_strict(int on)
{
    int was = strict;
    strict = on != 0;
    return was;
}

static const char *const binary_names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "lt", "gt"};
static const char *const unary_names[] = {"neg", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "floor", "square"};
static const char *const reduce_names[] = {"sum", "mean", "max", "min", "argmax", "argmin"};
#define OP_NAME(names, op) ((op) >= 0 && (op) < (int)(sizeof names / sizeof *names) ? names[op] : "math")

typedef int (*op3)(ts_tensor *out, const ts_tensor *a, const ts_tensor *b, const void *args);

/* op (named name) on host copies of out, a and b (b may be NULL), the result copied back into out */
static int on_host(const char *name, ts_tensor *out, const ts_tensor *a, const ts_tensor *b, op3 op, const void *args)
{
    if (ts_math_fallback(name, TS_CUDA)) return -1;
    ts_tensor *ho = ts_host_copy(out), *ha = ts_host_copy(a), *hb = b ? ts_host_copy(b) : NULL;
    int rc = !ho || !ha || (b && !hb) || op(ho, ha, hb, args) || ts_tensor_copy(out, ho);
    ts_tensor_free(ho);
    ts_tensor_free(ha);
    ts_tensor_free(hb);
    return rc ? -1 : 0;
}

typedef struct { double s; int op, scalar_first, dim; } op_args;
static int binary_op(ts_tensor *o, const ts_tensor *a, const ts_tensor *b, const void *x)
{
    return ts_tensor_binary(o, a, b, ((const op_args *)x)->op);
}
static int scalar_op(ts_tensor *o, const ts_tensor *a, const ts_tensor *b, const void *x)
{
    const op_args *p = x;
    return ts_tensor_binary_scalar(o, a, p->s, p->op, p->scalar_first);
}
static int unary_op(ts_tensor *o, const ts_tensor *a, const ts_tensor *b, const void *x)
{
    return ts_tensor_unary(o, a, ((const op_args *)x)->op);
}
static int reduce_op(ts_tensor *o, const ts_tensor *a, const ts_tensor *b, const void *x)
{
    const op_args *p = x;
    return ts_tensor_reduce(o, a, p->dim, p->op);
}

/* the elementwise cases the layers use on whole tensors (residual sums, dropout, gradient scaling):
 * float32, contiguous, one device, equal element counts. 1 when done (or failed: see the return code). */
static int on_device(int *rc, ts_tensor *out, const ts_tensor *a, const ts_tensor *b, int op, double s)
{
    int64_t n = ts_tensor_numel(out);
    const ts_tensor *all[3] = {out, a, b};
    for (int i = 0; i < 3; i++)
        if (all[i] && (all[i]->dtype != TS_FLOAT32 || !ts_tensor_is_contiguous(all[i]) || ts_tensor_numel(all[i]) != n ||
                       all[i]->storage->device != out->storage->device))
            return 0;
    const tsk_backend *k = ts_kernels(out);
    if (b && op == TS_ADD) k->add(n, ts_f32(a), ts_f32(b), ts_f32(out));
    else if (b && op == TS_MUL) k->mul(n, ts_f32(a), ts_f32(b), ts_f32(out));
    else if (!b && op == TS_MUL) k->scale(n, (float)s, ts_f32(a), ts_f32(out));
    else return 0;
    *rc = ts_kernel_status(k, "arithmetic");
    return 1;
}

/* Arithmetic beside float32's fast paths: integer operands (an integer scalar among them) in int64, exactly
 * (through a double an int64 beyond 2^53 lost its last digits), wrapping on overflow as PyTorch's integers do;
 * the rest (a float operand or scalar, true division, exp and the like) in double, each result rounded once into
 * out's dtype (through float32 a float64 lost its digits). Which dtype the result has is the caller's choice (the
 * bindings promote as PyTorch). */
static int is_comparison(int op) { return op == TS_EQ || op == TS_LT || op == TS_GT; }

static int binary_is_integer(int op, int dtype_a, int dtype_b)
{
    return op != TS_DIV && ts_dtype_is_integer(dtype_a) && ts_dtype_is_integer(dtype_b);
}

static int unary_is_integer(int op, int dtype)
{
    return ts_dtype_is_integer(dtype) && (op == TS_NEG || op == TS_ABS || op == TS_FLOOR || op == TS_SQUARE);
}

/* whether a scalar is an integer as int64 holds it exactly */
static int is_whole(double s) { return s == floor(s) && s >= -0x1p63 && s < 0x1p63; }

/* A real result would be cut into an integer out: refused, as PyTorch refuses that cast (a comparison's 0 and 1
 * excepted) */
static int check_result(const char *name, const ts_tensor *out, int integer, int comparison)
{
    if (integer || comparison || !ts_dtype_is_integer(out->dtype)) return 0;
    return ts_error("%s: the result is a real number and the result tensor an integer one (convert with :float() "
                    "or :double())", name);
}

static int all_f32(const ts_tensor *out, const ts_tensor *a, const ts_tensor *b)
{
    return out->dtype == TS_FLOAT32 && a->dtype == TS_FLOAT32 && (!b || b->dtype == TS_FLOAT32);
}

/* an operand that shares out's storage without being out's own view is read from a copy (numpy's rule for
 * overlapping operands), so that no element is read after the loop has written it */
static const ts_tensor *unaliased(const ts_tensor *out, const ts_tensor *x, ts_tensor **tmp)
{
    *tmp = NULL;
    if (x == out || !ts_tensor_same_storage(out, x) || ts_tensor_numel(out) == 0) return x;
    if (x->offset == out->offset && x->ndim == out->ndim &&
        !memcmp(x->shape, out->shape, sizeof(int64_t) * (size_t)x->ndim) &&
        !memcmp(x->stride, out->stride, sizeof(int64_t) * (size_t)x->ndim))
        return x;
    *tmp = ts_tensor_new_on(x->storage->device, x->dtype, x->ndim, x->shape);
    if (!*tmp || ts_tensor_copy(*tmp, x)) return NULL;
    return *tmp;
}

int ts_tensor_binary(ts_tensor *out, const ts_tensor *a, const ts_tensor *b, int op)
{
    if (ts_check_writable("arithmetic", out)) return -1;
    ts_tensor *ta = NULL, *tb = NULL;
    const ts_tensor *ua = unaliased(out, a, &ta), *ub = ua ? unaliased(out, b, &tb) : NULL;
    if (ta || tb || !ua || !ub) {   /* on either device: the operation again, on the copies */
        int rc = ua && ub ? ts_tensor_binary(out, ua, ub, op) : -1;
        ts_tensor_free(ta);
        ts_tensor_free(tb);
        return rc;
    }
    int rc = 0;
    if (ts_on_cuda(out) && on_device(&rc, out, a, b, op, 0)) return rc;
    if (ts_on_cuda(out) || ts_on_cuda(a) || ts_on_cuda(b))
        return on_host(OP_NAME(binary_names, op), out, a, b, binary_op, &(op_args){.op = op});
    int integer = binary_is_integer(op, a->dtype, b->dtype);
    if (check_result(OP_NAME(binary_names, op), out, integer, is_comparison(op))) return -1;
    int64_t sa[TS_MAX_DIMS], sb[TS_MAX_DIMS];
    if (broadcast_strides(out, a, sa, "arithmetic") || broadcast_strides(out, b, sb, "arithmetic")) return -1;
    int64_t n = ts_tensor_numel(out);
    if (!all_f32(out, a, b)) {
        void *o = ts_tensor_data(out);
        const void *pa = ts_tensor_data(a), *pb = ts_tensor_data(b);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = offset_of(out, out->stride, i), ia = offset_of(out, sa, i), ib = offset_of(out, sb, i);
            if (integer)
                ts_element_store_int(o, out->dtype, at, apply_binary_int(op, ts_element_load_int(pa, a->dtype, ia),
                                                                         ts_element_load_int(pb, b->dtype, ib)));
            else
                ts_element_store(o, out->dtype, at, apply_binary(op, ts_element_load(pa, a->dtype, ia),
                                                                 ts_element_load(pb, b->dtype, ib)));
        }
        return 0;
    }
    float *o = ts_f32(out);
    const float *pa = ts_f32(a), *pb = ts_f32(b);
    if (ts_tensor_is_contiguous(out) && ts_tensor_is_contiguous(a) && ts_tensor_is_contiguous(b) &&
        ts_tensor_numel(a) == n && ts_tensor_numel(b) == n) {
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) o[i] = (float)apply_binary(op, pa[i], pb[i]);
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        o[offset_of(out, out->stride, i)] = (float)apply_binary(op, pa[offset_of(out, sa, i)], pb[offset_of(out, sb, i)]);
    return 0;
}

int ts_tensor_binary_scalar(ts_tensor *out, const ts_tensor *a, double s, int op, int scalar_first)
{
    if (ts_check_writable("arithmetic", out)) return -1;
    int rc = 0;
    if (ts_on_cuda(out) && on_device(&rc, out, a, NULL, op, s)) return rc;
    if (ts_on_cuda(out) || ts_on_cuda(a))
        return on_host(OP_NAME(binary_names, op), out, a, NULL, scalar_op,
                       &(op_args){.s = s, .op = op, .scalar_first = scalar_first});
    int integer = is_whole(s) && binary_is_integer(op, a->dtype, TS_INT64);
    if (check_result(OP_NAME(binary_names, op), out, integer, is_comparison(op))) return -1;
    if (ts_tensor_numel(out) != ts_tensor_numel(a)) return ts_error("arithmetic: result and operand sizes differ");
    int64_t n = ts_tensor_numel(out);
    if (!all_f32(out, a, NULL)) {
        void *o = ts_tensor_data(out);
        const void *pa = ts_tensor_data(a);
        int64_t si = integer ? (int64_t)s : 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t at = offset_of(out, out->stride, i), ia = offset_of(a, a->stride, i);
            if (integer) {
                int64_t v = ts_element_load_int(pa, a->dtype, ia);
                ts_element_store_int(o, out->dtype, at, scalar_first ? apply_binary_int(op, si, v) : apply_binary_int(op, v, si));
            } else {
                double v = ts_element_load(pa, a->dtype, ia);
                ts_element_store(o, out->dtype, at, scalar_first ? apply_binary(op, s, v) : apply_binary(op, v, s));
            }
        }
        return 0;
    }
    float *o = ts_f32(out);
    const float *pa = ts_f32(a);
    if (ts_tensor_is_contiguous(out) && ts_tensor_is_contiguous(a)) {
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++)
            o[i] = (float)(scalar_first ? apply_binary(op, s, pa[i]) : apply_binary(op, pa[i], s));
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = pa[offset_of(a, a->stride, i)];
        o[offset_of(out, out->stride, i)] = (float)(scalar_first ? apply_binary(op, s, v) : apply_binary(op, v, s));
    }
    return 0;
}

int ts_tensor_unary(ts_tensor *out, const ts_tensor *a, int op)
{
    if (ts_check_writable("math", out)) return -1;
    if (ts_on_cuda(out) || ts_on_cuda(a))
        return on_host(OP_NAME(unary_names, op), out, a, NULL, unary_op, &(op_args){.op = op});
    int integer = unary_is_integer(op, a->dtype);
    if (check_result(OP_NAME(unary_names, op), out, integer, 0)) return -1;
    if (ts_tensor_numel(out) != ts_tensor_numel(a)) return ts_error("math: result and operand sizes differ");
    int64_t n = ts_tensor_numel(out);
    if (!all_f32(out, a, NULL)) {
        void *o = ts_tensor_data(out);
        const void *pa = ts_tensor_data(a);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = offset_of(out, out->stride, i), ia = offset_of(a, a->stride, i);
            if (integer) ts_element_store_int(o, out->dtype, at, apply_unary_int(op, ts_element_load_int(pa, a->dtype, ia)));
            else ts_element_store(o, out->dtype, at, apply_unary(op, ts_element_load(pa, a->dtype, ia)));
        }
        return 0;
    }
    float *o = ts_f32(out);
    const float *pa = ts_f32(a);
    if (ts_tensor_is_contiguous(out) && ts_tensor_is_contiguous(a)) {
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) o[i] = (float)apply_unary(op, pa[i]);
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        o[offset_of(out, out->stride, i)] = (float)apply_unary(op, pa[offset_of(a, a->stride, i)]);
    return 0;
}

int ts_tensor_axpy(ts_tensor *y, double alpha, const ts_tensor *x)
{
    if (ts_check_f32("axpy: y", y) || ts_check_numel("axpy: x", x, ts_tensor_numel(y)) ||
        ts_check_same_device("axpy", y, x, NULL, NULL))
        return -1;
    ts_tensor *tx = NULL;
    const ts_tensor *ux = unaliased(y, x, &tx);
    const tsk_backend *k = ts_kernels(y);
    if (ux) k->axpy(ts_tensor_numel(y), (float)alpha, ts_f32(ux), ts_f32(y));
    int rc = ux ? ts_kernel_status(k, "axpy") : -1;
    ts_tensor_free(tx);
    return rc;
}

/* The position of the largest (larger = 1) or smallest of n elements `step` apart, compared in their own type
 * (through float32, an int64 of 2^24 + 1 or a float64 of 1 + 1e-12 would tie with its neighbour): the first
 * of equals, and the first NaN, which wins and stays, as numpy's argmax. One definition for every type. */
#define ARG_BEST(T)                                                                  \
    static int64_t arg_best_##T(const T *v, int64_t n, int64_t step, int larger)     \
    {                                                                                \
        T best = v[0];                                                               \
        int64_t at = 0;                                                              \
        for (int64_t k = 1; k < n; k++) {                                            \
            T x = v[k * step];                                                       \
            if (best == best && (x != x || (larger ? x > best : x < best))) best = x, at = k; \
        }                                                                            \
        return at;                                                                   \
    }
/* The sum of n elements `step` apart, in double (exact for integers up to 2^53) */
#define SUM_OF(T)                                                                    \
    static double sum_of_##T(const T *v, int64_t n, int64_t step)                    \
    {                                                                                \
        double acc = 0.0;                                                            \
        for (int64_t k = 0; k < n; k++) acc += (double)v[k * step];                  \
        return acc;                                                                  \
    }
#define BY_TYPE(MAKE) MAKE(float) MAKE(double) MAKE(uint8_t) MAKE(int32_t) MAKE(int64_t)
BY_TYPE(ARG_BEST)
BY_TYPE(SUM_OF)
#undef ARG_BEST
#undef SUM_OF

/* fn_<the element type of dtype>(args) */
#define DISPATCH(dtype, fn, ...)                                                     \
    ((dtype) == TS_FLOAT32 ? fn##_float(__VA_ARGS__) : (dtype) == TS_UINT8 ? fn##_uint8_t(__VA_ARGS__) :   \
     (dtype) == TS_INT32 ? fn##_int32_t(__VA_ARGS__) : (dtype) == TS_INT64 ? fn##_int64_t(__VA_ARGS__) :   \
     fn##_double(__VA_ARGS__))

/* Any dtype in, its values reduced in their own type: max/min compare exactly, sum/mean add in double. The
 * result's dtype: int64 for argmax/argmin (0-based positions), the input's own or float32 or float64 for max/min
 * (the winning element, converted once), float32 or float64 for sum/mean. */
int ts_tensor_reduce(ts_tensor *out, const ts_tensor *a, int dim, int op)
{
    char buf[96];
    if (ts_on_cuda(out) || ts_on_cuda(a))
        return on_host(OP_NAME(reduce_names, op), out, a, NULL, reduce_op, &(op_args){.dim = dim, .op = op});
    if (op < TS_SUM || op > TS_ARGMIN) return ts_error("reduce: unknown reduction %d", op);
    if (!ts_tensor_is_contiguous(a)) return ts_error("reduce: the input must be contiguous");
    int arg = op == TS_ARGMAX || op == TS_ARGMIN, pick = op == TS_MAX || op == TS_MIN;
    int fits = arg ? out->dtype == TS_INT64
                   : out->dtype == TS_FLOAT32 || out->dtype == TS_FLOAT64 || (pick && out->dtype == a->dtype);
    if (!fits || !ts_tensor_is_contiguous(out))
        return ts_error("reduce: the result must be a contiguous %s tensor", arg ? "int64"
                        : pick ? "float32, float64 or input-typed" : "float32 or float64");
    int64_t outer = 1, n = ts_tensor_numel(a), inner = 1;
    if (dim >= 0) {
        if (dim >= a->ndim) return ts_error("reduce: dim %d out of range for %s", dim + 1, ts_shape_str(a, buf, sizeof buf));
        n = a->shape[dim];
        for (int d = 0; d < dim; d++) outer *= a->shape[d];
        for (int d = dim + 1; d < a->ndim; d++) inner *= a->shape[d];
    }
    if (ts_tensor_numel(out) != outer * inner) return ts_error("reduce: result has the wrong size");
    if (n == 0 && op != TS_SUM) return ts_error("reduce: empty dimension");
    size_t size = ts_dtype_size(a->dtype);
    const char *p = ts_tensor_data(a);
    char *o = ts_tensor_data(out);
    for (int64_t j = 0; j < outer; j++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t first = j * n * inner + i, at = j * inner + i;
            if (arg || pick) {
                int64_t best = DISPATCH(a->dtype, arg_best, (const void *)(p + (size_t)first * size), n, inner,
                                        op == TS_MAX || op == TS_ARGMAX);
                if (arg) ((int64_t *)o)[at] = best;
                else if (out->dtype == a->dtype) memcpy(o + (size_t)at * size, p + (size_t)(first + best * inner) * size, size);
                else ts_element_store(o, out->dtype, at, ts_element_load(p, a->dtype, first + best * inner));
                continue;
            }
            double acc = DISPATCH(a->dtype, sum_of, (const void *)(p + (size_t)first * size), n, inner);
            ts_element_store(o, out->dtype, at, op == TS_MEAN ? acc / (double)n : acc);
        }
    return 0;
}

/* a sum of squares for a gradient norm: a float64 [1] on t's device, and t a float32 tensor */
static int check_sumsq(const char *what, const ts_tensor *sumsq, const ts_tensor *t)
{
    if (sumsq->dtype != TS_FLOAT64 || sumsq->ndim != 1 || sumsq->shape[0] != 1)
        return ts_error("%s: the sum of squares must be a float64 tensor [1]", what);
    return ts_check_f32(what, t) || ts_check_same_device(what, sumsq, t, NULL, NULL) ? -1 : 0;
}

int ts_tensor_sumsq_add(ts_tensor *acc, const ts_tensor *t)
{
    if (check_sumsq("sumsq", acc, t)) return -1;
    const tsk_backend *k = ts_kernels(t);
    k->sumsq_add(ts_tensor_numel(t), ts_f32(t), ts_tensor_data(acc));
    return ts_kernel_status(k, "sumsq");
}

int ts_tensor_clip_scale(ts_tensor *t, const ts_tensor *sumsq, double max_norm)
{
    if (check_sumsq("clip", sumsq, t)) return -1;
    const tsk_backend *k = ts_kernels(t);
    k->clip_scale(ts_tensor_numel(t), ts_tensor_data(sumsq), max_norm, ts_f32(t));
    return ts_kernel_status(k, "clip");
}

double ts_tensor_sumsq(const ts_tensor *t)
{
    int64_t one[1] = {1};
    ts_tensor *acc = ts_tensor_new_on(ts_tensor_device(t), TS_FLOAT64, 1, one);
    ts_tensor *h = acc && !ts_tensor_sumsq_add(acc, t) ? ts_host_copy(acc) : NULL;   /* the one wait */
    double s = h ? *(double *)ts_tensor_data(h) : NAN;
    ts_tensor_free(h);
    ts_tensor_free(acc);
    return s;
}

int ts_tensor_matmul(ts_tensor *out, const ts_tensor *a, const ts_tensor *b, int trans_a, int trans_b)
{
    char sa[96], sb[96];
    if (ts_check_f32("matmul: a", a) || ts_check_f32("matmul: b", b) || ts_check_f32("matmul: result", out) ||
        ts_check_same_device("matmul", out, a, b, NULL))
        return -1;
    if (a->ndim != 2 || b->ndim != 2) return ts_error("matmul: 2-d tensors expected, got %s and %s",
                                                      ts_shape_str(a, sa, sizeof sa), ts_shape_str(b, sb, sizeof sb));
    int64_t m = trans_a ? a->shape[1] : a->shape[0], k = trans_a ? a->shape[0] : a->shape[1];
    int64_t kb = trans_b ? b->shape[1] : b->shape[0], n = trans_b ? b->shape[0] : b->shape[1];
    if (k != kb) return ts_error("matmul: inner sizes differ: %s and %s", ts_shape_str(a, sa, sizeof sa),
                                 ts_shape_str(b, sb, sizeof sb));
    int64_t shape[2] = {m, n};
    if (ts_check_shape("matmul: result", out, 2, shape)) return -1;
    if (m == 0 || n == 0) return 0;   /* nothing to write, whatever k is */
    /* BLAS counts in int: a size beyond it wrapped to a negative one, BLAS printed a complaint and left the
     * result as it was (zeros from ts.mm), as if it were the product */
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return ts_error("matmul: sizes up to 2^31 - 1 (what BLAS counts), got %s and %s", ts_shape_str(a, sa, sizeof sa),
                        ts_shape_str(b, sb, sizeof sb));
    const tsk_backend *kern = ts_kernels(out);
    kern->gemm(TSK_MATH_FP32, trans_a, trans_b, (int)m, (int)n, (int)k, 1.0f, ts_f32(a), (int)a->shape[1], ts_f32(b),
               (int)b->shape[1], 0.0f, ts_f32(out), (int)n);
    return ts_kernel_status(kern, "matmul");
}

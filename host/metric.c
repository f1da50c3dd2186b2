/* Metric learning: argument checks and dispatch for embeddings x [N, D] (the math is kernels/cpu/metric.c's and
 * kernels/pointwise.h's). Labels and triplet indices live on x's device; indices are rows of x, 0-based, -1 for
 * a triplet to skip (what mining leaves where an anchor has no positive or no negative). */
#include "internal.h"

static int embeddings(const char *what, const ts_tensor *x, int64_t *n, int64_t *d)
{
    char a[96];
    if (ts_check_f32(what, x)) return -1;
    if (x->ndim != 2) return ts_error("%s: embeddings must be [N,D], got %s", what, ts_shape_str(x, a, sizeof a));
    *n = x->shape[0], *d = x->shape[1];
    if (*n > INT32_MAX) return ts_error("%s: %lld rows are too many", what, (long long)*n);
    return 0;
}

static int int_vector(const char *what, const ts_tensor *t, int dtype, int64_t n)
{
    if (!t || t->dtype != dtype || t->ndim != 1 || t->shape[0] != n || !ts_tensor_is_contiguous(t))
        return ts_error("%s must be a contiguous %s tensor [%lld]", what, dtype == TS_INT64 ? "int64" : "int32", (long long)n);
    return 0;
}

int ts_normalize_rows(ts_tensor *y, const ts_tensor *x, double eps)
{
    int64_t n = 0, d = 0;
    if (embeddings("normalize", x, &n, &d) || ts_check_shape("normalize: output", y, 2, x->shape) ||
        ts_check_same_device("normalize", x, y, NULL, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->normalize_rows(n, d, (float)eps, ts_f32(x), ts_f32(y));
    return ts_kernel_status(k, "normalize");
}

int ts_normalize_rows_backward(ts_tensor *grad_x, const ts_tensor *grad_y, const ts_tensor *x, const ts_tensor *y, double eps)
{
    int64_t n = 0, d = 0;
    if (embeddings("normalize backward", x, &n, &d) || ts_check_shape("normalize backward: output", y, 2, x->shape) ||
        ts_check_shape("normalize backward: gradOutput", grad_y, 2, x->shape) ||
        ts_check_shape("normalize backward: gradInput", grad_x, 2, x->shape) ||
        ts_check_same_device("normalize backward", x, y, grad_y, grad_x))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->normalize_rows_backward(n, d, (float)eps, ts_f32(x), ts_f32(y), ts_f32(grad_y), ts_f32(grad_x));
    return ts_kernel_status(k, "normalize backward");
}

int ts_triplet_mine(ts_tensor *anchors, ts_tensor *positives, ts_tensor *negatives, const ts_tensor *x,
                    const ts_tensor *labels, double eps)
{
    int64_t n = 0, d = 0;
    if (embeddings("triplet mining", x, &n, &d) || int_vector("triplet mining: labels", labels, TS_INT64, n) ||
        int_vector("triplet mining: anchors", anchors, TS_INT32, n) ||
        int_vector("triplet mining: positives", positives, TS_INT32, n) ||
        int_vector("triplet mining: negatives", negatives, TS_INT32, n) ||
        ts_check_same_device("triplet mining", x, labels, anchors, positives) ||
        ts_check_same_device("triplet mining", x, negatives, NULL, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->triplet_mine((int)n, d, ts_f32(x), ts_tensor_data(labels), (float)eps, ts_tensor_data(anchors),
                    ts_tensor_data(positives), ts_tensor_data(negatives));
    return ts_kernel_status(k, "triplet mining");
}

int ts_triplet_loss(ts_tensor *loss, ts_tensor *grad_x, const ts_tensor *x, const ts_tensor *anchors,
                    const ts_tensor *positives, const ts_tensor *negatives, double margin, double eps)
{
    int64_t n = 0, d = 0, one[1] = {1};
    if (embeddings("triplet loss", x, &n, &d)) return -1;
    int64_t t = anchors ? anchors->shape[0] : 0;
    if (int_vector("triplet loss: anchors", anchors, TS_INT32, t) || int_vector("triplet loss: positives", positives, TS_INT32, t) ||
        int_vector("triplet loss: negatives", negatives, TS_INT32, t) || ts_check_shape("triplet loss: loss", loss, 1, one) ||
        (grad_x && ts_check_shape("triplet loss: gradInput", grad_x, 2, x->shape)) ||
        ts_check_same_device("triplet loss", x, anchors, positives, negatives) ||
        ts_check_same_device("triplet loss", x, loss, grad_x, NULL))
        return -1;
    if (t > INT32_MAX) return ts_error("triplet loss: %lld triplets are too many", (long long)t);
    /* indices are checked on the host (GPU ones from host copies, as cross_entropy checks its targets): a row
       outside x would be read out of bounds, on the GPU without a word */
    const ts_tensor *given[3] = {anchors, positives, negatives};
    int bad = 0;
    for (int w = 0; w < 3 && !bad; w++) {
        ts_tensor *copy = ts_on_cuda(given[w]) ? ts_host_copy(given[w]) : NULL;
        if (ts_on_cuda(given[w]) && !copy) return -1;
        const int32_t *idx = ts_tensor_data(copy ? copy : given[w]);
        for (int64_t i = 0; i < t && !bad; i++)
            if (idx[i] < -1 || idx[i] >= n)
                bad = ts_error("triplet loss: triplet %lld names row %d of %lld embeddings", (long long)i + 1, idx[i],
                               (long long)n);
        ts_tensor_free(copy);
    }
    if (bad) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->triplet_loss((int)t, (int)n, d, ts_f32(x), ts_tensor_data(anchors), ts_tensor_data(positives),
                    ts_tensor_data(negatives), (float)margin, (float)eps, ts_f32(loss), grad_x ? ts_f32(grad_x) : NULL);
    return ts_kernel_status(k, "triplet loss");
}

int ts_contrastive_loss(ts_tensor *loss, ts_tensor *grad_x, const ts_tensor *x, const ts_tensor *labels, double margin)
{
    int64_t n = 0, d = 0, one[1] = {1};
    if (embeddings("contrastive loss", x, &n, &d) || int_vector("contrastive loss: labels", labels, TS_INT64, n) ||
        ts_check_shape("contrastive loss: loss", loss, 1, one) ||
        (grad_x && ts_check_shape("contrastive loss: gradInput", grad_x, 2, x->shape)) ||
        ts_check_same_device("contrastive loss", x, labels, loss, grad_x))
        return -1;
    if (!(margin >= 0)) return ts_error("contrastive loss: the margin must be >= 0, got %g", margin);
    const tsk_backend *k = ts_kernels(x);
    k->contrastive_loss((int)n, d, ts_f32(x), ts_tensor_data(labels), (float)margin, ts_f32(loss),
                        grad_x ? ts_f32(grad_x) : NULL);
    return ts_kernel_status(k, "contrastive loss");
}

/* CrossEntropy from logits: checks and dispatch (the math is in kernels/cpu/cross_entropy.c). */
#include "internal.h"

int ts_cross_entropy(double *loss, ts_tensor *grad_logits, const ts_tensor *logits, const ts_tensor *targets,
                     const ts_tensor *class_weight, double label_smoothing)
{
    char a[96];
    if (ts_check_f32("cross_entropy: logits", logits)) return -1;
    if (logits->ndim != 2)
        return ts_error("cross_entropy: logits must be [N,classes], got %s", ts_shape_str(logits, a, sizeof a));
    int64_t n = logits->shape[0], c = logits->shape[1], cs[1] = {c};
    if (!targets || targets->dtype != TS_INT64 || !ts_tensor_is_contiguous(targets) || targets->ndim != 1 ||
        targets->shape[0] != n)
        return ts_error("cross_entropy: targets must be a contiguous int64 tensor [%lld] of class indices", (long long)n);
    if (label_smoothing < 0 || label_smoothing > 1)
        return ts_error("cross_entropy: label smoothing must be in [0, 1], got %g", label_smoothing);
    if (class_weight && ts_check_shape("cross_entropy: class weights", class_weight, 1, cs)) return -1;
    if (grad_logits && ts_check_shape("cross_entropy: gradInput", grad_logits, 2, logits->shape)) return -1;
    if (ts_check_same_device("cross_entropy", logits, targets, class_weight, grad_logits)) return -1;
    if (n == 0) return ts_error("cross_entropy: empty batch");
    /* the targets are checked on the host: a class out of range would read outside the logits' rows */
    ts_tensor *host_targets = ts_host_copy(targets);
    if (!host_targets) return -1;
    const int64_t *t = ts_tensor_data(host_targets);
    for (int64_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= c) {
            ts_error("cross_entropy: target %lld of sample %lld is outside the classes 0..%lld", (long long)t[i],
                     (long long)i + 1, (long long)c - 1);
            ts_tensor_free(host_targets);
            return -1;
        }
    ts_tensor_free(host_targets);
    const tsk_backend *k = ts_kernels(logits);
    *loss = k->cross_entropy((int)n, (int)c, ts_f32(logits), ts_tensor_data(targets),
                             class_weight ? ts_f32(class_weight) : NULL, (float)label_smoothing,
                             grad_logits ? ts_f32(grad_logits) : NULL);
    return ts_kernel_status(k, "cross_entropy");
}

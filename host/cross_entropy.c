/* CrossEntropy from logits: checks and dispatch (the math is in kernels/cpu/cross_entropy.c).
 * The targets are checked on the host, since a class out of range would read outside the logits' rows:
 * targets given on the host are checked there and copied to the logits' device (the way the trainer
 * passes them, so that its step never waits for the GPU); targets already on the device are copied back
 * to be checked, which waits. */
#include "internal.h"

int ts_cross_entropy_into(ts_tensor *loss, ts_tensor *correct, ts_tensor *grad_logits, const ts_tensor *logits,
                          const ts_tensor *targets, const ts_tensor *class_weight, double label_smoothing)
{
    char a[96];
    if (ts_check_f32("cross_entropy: logits", logits)) return -1;
    if (logits->ndim != 2)
        return ts_error("cross_entropy: logits must be [N,classes], got %s", ts_shape_str(logits, a, sizeof a));
    int64_t n = logits->shape[0], c = logits->shape[1], cs[1] = {c}, one[1] = {1};
    if (!targets || targets->dtype != TS_INT64 || !ts_tensor_is_contiguous(targets) || targets->ndim != 1 ||
        targets->shape[0] != n)
        return ts_error("cross_entropy: targets must be a contiguous int64 tensor [%lld] of class indices", (long long)n);
    if (!(label_smoothing >= 0 && label_smoothing <= 1))   /* so written that NaN fails: it made the loss NaN */
        return ts_error("cross_entropy: label smoothing must be in [0, 1], got %g", label_smoothing);
    if (class_weight && ts_check_shape("cross_entropy: class weights", class_weight, 1, cs)) return -1;
    if (grad_logits && ts_check_shape("cross_entropy: gradInput", grad_logits, 2, logits->shape)) return -1;
    if (ts_check_shape("cross_entropy: loss", loss, 1, one) || (correct && ts_check_shape("cross_entropy: correct", correct, 1, one)) ||
        ts_check_same_device("cross_entropy", logits, class_weight, grad_logits, loss) ||
        ts_check_same_device("cross_entropy", logits, correct, NULL, NULL))
        return -1;
    if (n == 0) return ts_error("cross_entropy: empty batch");
    ts_tensor *host_targets = ts_on_cuda(targets) ? ts_host_copy(targets) : NULL;
    if (ts_on_cuda(targets) && !host_targets) return -1;
    const int64_t *t = ts_tensor_data(host_targets ? host_targets : targets);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (t[i] < 0 || t[i] >= c) bad = i;
    if (bad >= 0)
        ts_error("cross_entropy: target %lld of sample %lld is outside the classes 0..%lld", (long long)t[bad],
                 (long long)bad + 1, (long long)c - 1);
    ts_tensor_free(host_targets);
    if (bad >= 0) return -1;
    ts_tensor *on_device = ts_tensor_to((ts_tensor *)targets, logits->storage->device);
    if (!on_device) return -1;
    const tsk_backend *k = ts_kernels(logits);
    k->cross_entropy((int)n, (int)c, ts_f32(logits), ts_tensor_data(on_device), class_weight ? ts_f32(class_weight) : NULL,
                     (float)label_smoothing, grad_logits ? ts_f32(grad_logits) : NULL, ts_f32(loss));
    if (correct) k->count_correct((int)n, (int)c, ts_f32(logits), ts_tensor_data(on_device), ts_f32(correct));
    ts_tensor_free(on_device);
    return ts_kernel_status(k, "cross_entropy");
}

int ts_cross_entropy(double *loss, ts_tensor *grad_logits, const ts_tensor *logits, const ts_tensor *targets,
                     const ts_tensor *class_weight, double label_smoothing)
{
    if (ts_check_f32("cross_entropy: logits", logits)) return -1;
    int64_t one[1] = {1}, at[1] = {0};
    ts_tensor *l = ts_tensor_new_on(logits->storage->device, TS_FLOAT32, 1, one);
    if (!l) return -1;
    int rc = ts_cross_entropy_into(l, NULL, grad_logits, logits, targets, class_weight, label_smoothing);
    if (!rc) rc = ts_tensor_get(l, at, loss);   /* from the device: waits for it */
    ts_tensor_free(l);
    return rc;
}

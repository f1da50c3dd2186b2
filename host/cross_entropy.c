/* CrossEntropy from logits: checks and dispatch (the math is in kernels/cpu/cross_entropy.c). */
#include "internal.h"
#include "../kernels/cpu/cpu.h"

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
    const int64_t *t = ts_tensor_data(targets);
    for (int64_t i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= c)
            return ts_error("cross_entropy: target %lld of sample %lld is outside the classes 0..%lld", (long long)t[i],
                            (long long)i + 1, (long long)c - 1);
    if (n == 0) return ts_error("cross_entropy: empty batch");
    *loss = tsk_cpu_cross_entropy((int)n, (int)c, ts_f32(logits), t, class_weight ? ts_f32(class_weight) : NULL,
                                  (float)label_smoothing, grad_logits ? ts_f32(grad_logits) : NULL);
    return 0;
}

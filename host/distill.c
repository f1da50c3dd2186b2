/* Distillation's loss (kernels/cpu/distill.c has the math): checks and dispatch. */
#include <math.h>

#include "internal.h"
#include "../kernels/pointwise.h"   /* TSK_DISTILL_MAX_TEACHERS */

int ts_distill_into(ts_tensor *loss, ts_tensor *grad_logits, const ts_tensor *logits, const ts_tensor *teacher_logits,
                    double temperature, double weight)
{
    char a[96];
    if (ts_check_f32("distill: logits", logits)) return -1;
    if (logits->ndim != 2)
        return ts_error("distill: logits must be [N,classes], got %s", ts_shape_str(logits, a, sizeof a));
    int64_t n = logits->shape[0], c = logits->shape[1], one[1] = {1};
    if (n == 0) return ts_error("distill: empty batch");
    if (ts_check_f32("distill: teacher logits", teacher_logits)) return -1;
    int64_t m = teacher_logits->ndim == 3 ? teacher_logits->shape[0] : 0, ts[3] = {m, n, c};
    if (m < 1 || m > TSK_DISTILL_MAX_TEACHERS)
        return ts_error("distill: teacher logits must be [teachers,N,classes] with 1 to %d teachers, got %s",
                        TSK_DISTILL_MAX_TEACHERS, ts_shape_str(teacher_logits, a, sizeof a));
    if (ts_check_shape("distill: teacher logits", teacher_logits, 3, ts) || ts_check_shape("distill: loss", loss, 1, one) ||
        (grad_logits && ts_check_shape("distill: gradInput", grad_logits, 2, logits->shape)) ||
        ts_check_same_device("distill", logits, teacher_logits, loss, grad_logits))
        return -1;
    if (!(temperature > 0) || !isfinite(temperature))
        return ts_error("distill: the temperature must be a finite number > 0, got %g", temperature);
    if (!(weight >= 0) || !isfinite(weight))
        return ts_error("distill: the weight must be a finite number >= 0, got %g", weight);
    const tsk_backend *k = ts_kernels(logits);
    k->distill((int)m, (int)n, (int)c, ts_f32(teacher_logits), ts_f32(logits), (float)temperature, (float)weight,
               grad_logits ? ts_f32(grad_logits) : NULL, ts_f32(loss));
    return ts_kernel_status(k, "distill");
}

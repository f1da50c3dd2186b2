/* Cross entropy from logits [N, C], as PyTorch's cross_entropy(weight=w, label_smoothing=e, reduction='mean'):
 *   log p = log_softmax(logits)
 *   loss_i = (1-e) w[y_i] (-log p[y_i]) + e/C sum_c w[c] (-log p[c])
 *   loss   = sum_i loss_i / sum_i w[y_i]
 * d loss / d logit[i,k] = ((1-e) w[y_i] (p[k] - [k = y_i]) + e/C (W p[k] - w[k])) / sum_i w[y_i],
 * with W = sum_c w[c]. Without weights every w is 1. The sums run in double; the mean is stored as a float.
 * The per-sample rules are kernels/pointwise.h's, shared with the GPU. */
#include <math.h>

#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_cross_entropy(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                           float smoothing, float *glogits, float *loss)
{
    double denom = 0, total = 0, wsum = 0;
    for (int k = 0; k < c; k++) wsum += tsk_class_weight(class_weight, k);
    for (int i = 0; i < n; i++) denom += tsk_class_weight(class_weight, targets[i]);
    for (int i = 0; i < n; i++) {
        const float *z = logits + (int64_t)i * c;
        double zmax = tsk_row_max(z, c), sum = 0;
        for (int k = 0; k < c; k++) sum += exp(z[k] - zmax);
        double logsum = zmax + log(sum), wy = tsk_class_weight(class_weight, targets[i]);
        double smooth = 0;
        for (int k = 0; k < c; k++) smooth += tsk_class_weight(class_weight, k) * (logsum - z[k]);
        total += tsk_ce_loss(logsum, z[targets[i]], wy, smooth, smoothing, c);
        if (glogits) {
            float *g = glogits + (int64_t)i * c;
            for (int k = 0; k < c; k++)
                g[k] = tsk_ce_grad(exp(z[k] - logsum), k == targets[i], wy, tsk_class_weight(class_weight, k), wsum,
                                   smoothing, c, denom);
        }
    }
    *loss = (float)(total / denom);
}

/* the first maximum of each row, as argmax picks it */
void tsk_cpu_count_correct(int n, int c, const float *logits, const int64_t *targets, float *correct)
{
    int hits = 0;
    for (int i = 0; i < n; i++) hits += tsk_first_argmax(logits + (int64_t)i * c, c) == targets[i];
    *correct += (float)hits;
}

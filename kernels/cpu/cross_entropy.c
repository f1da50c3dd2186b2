/* Cross entropy from logits [N, C], as PyTorch's cross_entropy(weight=w, label_smoothing=e, reduction='mean'):
 *   log p = log_softmax(logits)
 *   loss_i = (1-e) w[y_i] (-log p[y_i]) + e/C sum_c w[c] (-log p[c])
 *   loss   = sum_i loss_i / sum_i w[y_i]
 * d loss / d logit[i,k] = ((1-e) w[y_i] (p[k] - [k = y_i]) + e/C (W p[k] - w[k])) / sum_i w[y_i],
 * with W = sum_c w[c]. Without weights every w is 1. The sums run in double; the mean is stored as a float. */
#include <math.h>

#include "cpu.h"

void tsk_cpu_cross_entropy(int n, int c, const float *logits, const int64_t *targets, const float *class_weight,
                           float smoothing, float *glogits, float *loss)
{
    double denom = 0, total = 0, wsum = 0;
    for (int k = 0; k < c; k++) wsum += class_weight ? class_weight[k] : 1.0;
    for (int i = 0; i < n; i++) denom += class_weight ? class_weight[targets[i]] : 1.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (int64_t)i * c;
        double zmax = z[0], sum = 0;
        for (int k = 1; k < c; k++) zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < c; k++) sum += exp(z[k] - zmax);
        double logsum = zmax + log(sum), wy = class_weight ? class_weight[targets[i]] : 1.0;
        double smooth = 0;
        for (int k = 0; k < c; k++) smooth += (class_weight ? class_weight[k] : 1.0) * (logsum - z[k]);
        total += (1.0 - smoothing) * wy * (logsum - z[targets[i]]) + smoothing / c * smooth;
        if (glogits) {
            float *g = glogits + (int64_t)i * c;
            for (int k = 0; k < c; k++) {
                double p = exp(z[k] - logsum), wk = class_weight ? class_weight[k] : 1.0;
                double d = (1.0 - smoothing) * wy * (p - (k == targets[i])) + smoothing / c * (wsum * p - wk);
                g[k] = (float)(d / denom);
            }
        }
    }
    *loss = (float)(total / denom);
}

/* the first maximum of each row, as argmax picks it */
void tsk_cpu_count_correct(int n, int c, const float *logits, const int64_t *targets, float *correct)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (int64_t)i * c;
        int best = 0;
        for (int k = 1; k < c; k++)
            if (z[k] > z[best]) best = k;
        hits += best == targets[i];
    }
    *correct += (float)hits;
}

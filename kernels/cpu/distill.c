/* Distillation's loss from logits [N, C] and m teachers' logits t [m, N, C] at temperature T (Hinton et al.
 * 2015, "Distilling the knowledge in a neural network"):
 *   p_i = 1/m sum_j softmax(t_ji / T)    (the teachers' mean probabilities: an ensemble teaches as one)
 *   q_i = softmax(z_i / T)
 *   loss += weight T^2 / N sum_i KL(p_i || q_i)
 *   d loss / d z_ik = weight T / N (q_ik - p_ik)
 * T^2 keeps the gradient's size independent of T (Hinton's scaling), so the weight balances it against the
 * hard loss at any temperature. Each row's rule is kernels/pointwise.h's, shared with the GPU; the sum runs
 * in double, in row order. */
#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_distill(int m, int n, int c, const float *t, const float *logits, float temperature, float weight,
                     float *glogits, float *loss)
{
    double s = 1.0 / temperature, total = 0, gscale = (double)weight * temperature / n;
    int64_t stride = (int64_t)n * c;
    for (int i = 0; i < n; i++)
        total += tsk_distill_row(m, stride, t + (int64_t)i * c, logits + (int64_t)i * c, c, s, gscale,
                                 glogits ? glogits + (int64_t)i * c : NULL);
    *loss += (float)((double)weight * temperature * temperature * total / n);
}

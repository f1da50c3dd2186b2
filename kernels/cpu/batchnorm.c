/* Batch normalization over x [N, C, S] (S = H*W, or 1 for BatchNorm1d), one channel per thread.
 *
 * Training:  mean_c = 1/M sum x,  var_c = 1/M sum (x - mean)^2   (M = N*S, biased, as PyTorch normalizes;
 *            computed in one pass over shifted values)
 *            y = (x - mean) * invstd * weight + bias,  invstd = 1/sqrt(var + eps)
 *            running_mean = (1-momentum) running_mean + momentum mean
 *            running_var  = (1-momentum) running_var  + momentum var * M/(M-1)   (unbiased)
 * Backward (training), with xhat = (x - mean) invstd:
 *            gbias += sum gy,  gweight += sum gy xhat
 *            gx = weight invstd / M * (M gy - sum gy - xhat sum(gy xhat))
 * Eval: the running statistics normalize, and are written to save_mean/save_invstd (when given) for
 * the backward, where they are constants: gx = gy weight invstd. */
#include <math.h>

#include "cpu.h"

void tsk_cpu_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight,
                               const float *bias, float *running_mean, float *running_var, float *save_mean,
                               float *save_invstd, int training, float momentum, float eps, float *y)
{
    int64_t m = n * s;
    #pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        double mean, var;
        if (training) {
            /* one pass: sums of (x - shift) and its square, shifted by the channel's first value so the
             * variance does not cancel when the mean is large against the spread */
            float shift = x[ch * s];
            double sum = 0, sq = 0;
            for (int64_t i = 0; i < n; i++) {
                const float *p = x + (i * c + ch) * s;
                float a = 0, b = 0;
                for (int64_t k = 0; k < s; k++) {
                    float d = p[k] - shift;
                    a += d;
                    b += d * d;
                }
                sum += a;
                sq += b;
            }
            double dmean = sum / (double)m;
            mean = shift + dmean;
            var = sq / (double)m - dmean * dmean;
            if (var < 0) var = 0;
            save_mean[ch] = (float)mean;
            save_invstd[ch] = (float)(1.0 / sqrt(var + eps));
            if (running_mean) {
                running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
                running_var[ch] =
                    (float)((1.0 - momentum) * running_var[ch] + momentum * var * (double)m / (double)(m > 1 ? m - 1 : 1));
            }
        } else {
            mean = running_mean[ch];
            var = running_var[ch];
        }
        float invstd = (float)(1.0 / sqrt(var + eps));
        if (!training && save_mean) save_mean[ch] = (float)mean, save_invstd[ch] = invstd;
        float scale = invstd * (weight ? weight[ch] : 1.0f);
        float shift = (bias ? bias[ch] : 0.0f) - (float)mean * scale;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s;
            float *q = y + (i * c + ch) * s;
            for (int64_t k = 0; k < s; k++) q[k] = p[k] * scale + shift;
        }
    }
}

void tsk_cpu_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy,
                                const float *weight, const float *mean, const float *invstd, int training,
                                float *gx, float *gweight, float *gbias)
{
    int64_t m = n * s;
    #pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        float mu = mean[ch], is = invstd[ch];
        double sum_gy = 0, sum_gy_xhat = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s, *g = gy + (i * c + ch) * s;
            float a = 0, b = 0;
            for (int64_t k = 0; k < s; k++) {
                a += g[k];
                b += g[k] * (p[k] - mu);
            }
            sum_gy += a;
            sum_gy_xhat += b;
        }
        sum_gy_xhat *= is;
        if (gbias) gbias[ch] += (float)sum_gy;
        if (gweight) gweight[ch] += (float)sum_gy_xhat;
        if (!gx) continue;
        float w = weight ? weight[ch] : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s, *g = gy + (i * c + ch) * s;
            float *q = gx + (i * c + ch) * s;
            if (training) {
                float k1 = w * is, k2 = (float)(sum_gy / (double)m), k3 = (float)(sum_gy_xhat / (double)m) * is;
                for (int64_t k = 0; k < s; k++) q[k] = k1 * (g[k] - k2 - (p[k] - mu) * k3);
            } else {
                for (int64_t k = 0; k < s; k++) q[k] = g[k] * w * is;
            }
        }
    }
}

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
 * the backward, where they are constants: gx = gy weight invstd.
 * A ReLU that follows may be fused (relu): y = relu(batchnorm(x)) in the normalizing pass, and the backward
 * takes gy through it from its output (gy [y > 0]) as it reads gy, so the normalized values and their
 * gradient never go through memory. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "../pointwise.h"

/* The sums a channel's statistics need over one image's plane p [S], in LANES interleaved partial sums (lane j
 * sums elements j, j + LANES, ...) added in lane order at the end: vectorizable without reassociating, and the
 * same order every run. The partial sums are two GCC vectors of 8 floats (lanes 0-7 and 8-15, a 256-bit register
 * each): written as arrays indexed by lane, the loops were vectorized with permutes and spills, and the statistics
 * pass ran at a fraction of the memory's speed. */
enum { LANES = 16, HALF = 8 };
typedef float half __attribute__((vector_size(HALF * sizeof(float))));
typedef int32_t half_mask __attribute__((vector_size(HALF * sizeof(int32_t))));

static inline half load_half(const float *p)
{
    half v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* the lanes' sums, lo's lanes then hi's, added in lane order */
static inline float lane_total(half lo, half hi)
{
    float t = 0;
    for (int j = 0; j < HALF; j++) t += lo[j];
    for (int j = 0; j < HALF; j++) t += hi[j];
    return t;
}

/* *sum += sum (p - shift), *sq += sum (p - shift)^2 */
static void shifted_sums(int64_t s, const float *p, float shift, double *sum, double *sq)
{
    half a[2] = {{0}}, b[2] = {{0}};
    int64_t k = 0;
    for (; k + LANES <= s; k += LANES)
        for (int h = 0; h < 2; h++) {
            half d = load_half(p + k + h * HALF) - shift;
            a[h] += d;
            b[h] += d * d;
        }
    for (int j = 0; k + j < s; j++) {
        float d = p[k + j] - shift;
        a[j / HALF][j % HALF] += d;
        b[j / HALF][j % HALF] += d * d;
    }
    *sum += lane_total(a[0], a[1]);
    *sq += lane_total(b[0], b[1]);
}

/* *sum_g += sum g, *sum_gx += sum g (p - mu), g being gy through the fused ReLU of output y (NULL: none) */
static void gradient_sums(int64_t s, const float *p, const float *gy, const float *y, float mu, double *sum_g,
                          double *sum_gx)
{
    half a[2] = {{0}}, b[2] = {{0}};
    int64_t k = 0;
    for (; k + LANES <= s; k += LANES)
        for (int h = 0; h < 2; h++) {
            int64_t at = k + h * HALF;
            half g = load_half(gy + at);
            if (y) g = (half)((half_mask)g & (load_half(y + at) > 0));   /* through the ReLU: gy where y > 0 */
            a[h] += g;
            b[h] += g * (load_half(p + at) - mu);
        }
    for (int j = 0; k + j < s; j++) {
        float g = tsk_through_relu(gy[k + j], y, k + j);
        a[j / HALF][j % HALF] += g;
        b[j / HALF][j % HALF] += g * (p[k + j] - mu);
    }
    *sum_g += lane_total(a[0], a[1]);
    *sum_gx += lane_total(b[0], b[1]);
}

void tsk_cpu_batchnorm_forward(int64_t n, int64_t c, int64_t s, const float *x, const float *weight,
                               const float *bias, float *running_mean, float *running_var, float *save_mean,
                               float *save_invstd, int training, int relu, float momentum, float eps, float *y)
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
            for (int64_t i = 0; i < n; i++) shifted_sums(s, x + (i * c + ch) * s, shift, &sum, &sq);
            tsk_bn_moments(sum, sq, m, shift, &mean, &var);
            save_mean[ch] = (float)mean;
            save_invstd[ch] = tsk_bn_invstd(var, eps);
            if (running_mean) tsk_bn_update_running(&running_mean[ch], &running_var[ch], mean, var, m, momentum);
        } else {
            mean = running_mean[ch];
            var = running_var[ch];
        }
        float invstd = tsk_bn_invstd(var, eps), scale, shift;
        if (!training && save_mean) save_mean[ch] = (float)mean, save_invstd[ch] = invstd;
        tsk_bn_affine((float)mean, invstd, weight, bias, ch, &scale, &shift);
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s;
            float *q = y + (i * c + ch) * s;
            if (relu)
                for (int64_t k = 0; k < s; k++) q[k] = tsk_activation(0, 0.0f, p[k] * scale + shift);
            else
                for (int64_t k = 0; k < s; k++) q[k] = p[k] * scale + shift;
        }
    }
}

void tsk_cpu_batchnorm_fold(int64_t o, int64_t k, const float *w, const float *b, const float *gamma, const float *beta,
                            const float *running_mean, const float *running_var, float eps, float *w_out, float *b_out)
{
    for (int64_t ch = 0; ch < o; ch++) {
        float scale, shift;
        tsk_bn_affine(running_mean[ch], tsk_bn_invstd(running_var[ch], eps), gamma, beta, ch, &scale, &shift);
        for (int64_t j = 0; j < k; j++) w_out[ch * k + j] = w[ch * k + j] * scale;
        b_out[ch] = (b ? b[ch] : 0.0f) * scale + shift;
    }
}

void tsk_cpu_batchnorm_backward(int64_t n, int64_t c, int64_t s, const float *x, const float *gy,
                                const float *relu_y, const float *weight, const float *mean, const float *invstd,
                                int training, float *gx, float *gweight, float *gbias)
{
    int64_t m = n * s;
    #pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        float mu = mean[ch], is = invstd[ch];
        double sum_gy = 0, sum_gy_xhat = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t at = (i * c + ch) * s;
            gradient_sums(s, x + at, gy + at, relu_y ? relu_y + at : NULL, mu, &sum_gy, &sum_gy_xhat);
        }
        sum_gy_xhat *= is;
        if (gbias) gbias[ch] += (float)sum_gy;
        if (gweight) gweight[ch] += (float)sum_gy_xhat;
        if (!gx) continue;
        float w = weight ? weight[ch] : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            int64_t at = (i * c + ch) * s;
            const float *p = x + at, *g = gy + at, *r = relu_y ? relu_y + at : NULL;
            float *q = gx + at;
            if (training) {
                float mean_gy = (float)(sum_gy / (double)m), mean_gy_xhat = (float)(sum_gy_xhat / (double)m);
                for (int64_t k = 0; k < s; k++)
                    q[k] = tsk_bn_grad_input(tsk_through_relu(g[k], r, k), p[k], mu, w, is, mean_gy, mean_gy_xhat);
            } else {
                for (int64_t k = 0; k < s; k++) q[k] = tsk_through_relu(g[k], r, k) * w * is;
            }
        }
    }
}

/* pointwise.h — the per-element math both backends share, written once: the CPU kernels call these in
 * their loops, the CUDA kernels in their threads (TSK_SHARED marks them for both compilers).
 *
 * Optimizer updates, as torch.optim (PyTorch 1.13) writes them:
 *   SGD:  g = grad + wd p;  buf = g (first step) or momentum buf + (1 - dampening) g;
 *         g = g + momentum buf (Nesterov) or buf;  p -= lr g
 *   Adam: g = grad + wd p (Adam) | p *= 1 - lr wd (AdamW);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *         p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),  bc_i = 1 - b_i^step
 * Activations:
 *   relu:        y = max(x, 0)                      dy/dx = [x > 0]
 *   leaky relu:  y = x if x > 0 else a x            dy/dx = 1 or a
 *   elu:         y = x if x > 0 else a (e^x - 1)    dy/dx = 1 or y + a
 *   A NaN goes through all three, forward and backward (as PyTorch's): a ReLU that turned it into 0 would let a
 *   network with NaN weights train on with a finite loss.
 * Colour: luma (ITU-R 601) and a hue rotation by an angle (cos cs, sin sn) in YIQ.
 * bfloat16 (the "bf16" compute precision): the upper half of an fp32, rounded to nearest, ties to even;
 * a NaN stays a (quiet) NaN, an overflow becomes infinity, subnormals are kept. */
#ifndef TSK_POINTWISE_H
#define TSK_POINTWISE_H
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"   /* the shape descriptors */

#ifdef __CUDACC__
#define TSK_SHARED static inline __host__ __device__
#else
#define TSK_SHARED static inline
#endif

TSK_SHARED void tsk_sgd_update(float *p, float g, float *buf, float lr, float momentum, float dampening,
                               float weight_decay, int nesterov, int first_step)
{
    float d = g + weight_decay * *p;
    if (buf) {
        *buf = first_step ? d : momentum * *buf + (1.0f - dampening) * d;
        d = nesterov ? d + momentum * *buf : *buf;
    }
    *p -= lr * d;
}

/* step_size = lr / bc1, bc2_sqrt = sqrt(bc2) */
TSK_SHARED void tsk_adam_update(float *p, float g, float *m, float *v, float lr, float beta1, float beta2, float eps,
                                float weight_decay, int decoupled, float step_size, float bc2_sqrt)
{
    if (decoupled) *p *= 1.0f - lr * weight_decay;
    else g += weight_decay * *p;
    *m = beta1 * *m + (1.0f - beta1) * g;
    *v = beta2 * *v + (1.0f - beta2) * g * g;
    *p -= step_size * *m / (sqrtf(*v) / bc2_sqrt + eps);
}

/* kind: 0 relu, 1 leaky relu (a = negative slope), 2 elu (a = alpha) */
TSK_SHARED float tsk_activation(int kind, float a, float x)
{
    return !(x <= 0) ? x : kind == 0 ? 0.0f : kind == 1 ? a * x : a * expm1f(x);
}

TSK_SHARED float tsk_activation_grad(int kind, float a, float x, float y, float gy)
{
    return !(x <= 0) ? gy : kind == 0 ? 0.0f : kind == 1 ? a * gy : gy * (y + a);
}

TSK_SHARED uint32_t tsk_bf16_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded;
}

TSK_SHARED float tsk_luma(const float *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

/* Faded red paint: a pixel's excess of red over its other channels, e = max(0, R - max(G, B)), moved into G
 * and B by the fraction f, so that a sign's red rim pales toward the white it is printed on (f = 1: no red
 * left) while white, black, grey and blue pixels stay as they are. */
TSK_SHARED void tsk_fade_red(float *p, float f)
{
    float e = p[0] - (p[1] > p[2] ? p[1] : p[2]);
    if (e > 0) {
        p[1] += f * e;
        p[2] += f * e;
    }
}

/* A cast shadow's factor at output pixel (x, y): 1 outside the band, its gain inside, and between them a
 * linear ramp `soft` pixels wide centred on each edge (a penumbra):
 *   dist = |nx (x + .5) + ny (y + .5) - d|,  cover = clamp((half - dist) / soft + 1/2, 0, 1),
 *   factor = 1 - (1 - gain) cover.
 * Multiplying every channel by it darkens the scene's light there, as a shade does (a gain commutes with
 * the camera's gamma: (k x)^g = k^g x^g). */
TSK_SHARED float tsk_shadow_factor(const tsk_image_plan *p, int x, int y)
{
    float dist = fabsf(p->shadow_nx * (x + 0.5f) + p->shadow_ny * (y + 0.5f) - p->shadow_d);
    float cover = (p->shadow_half - dist) / p->shadow_soft + 0.5f;
    cover = cover < 0 ? 0 : cover > 1 ? 1 : cover;
    return 1.0f - (1.0f - p->shadow_gain) * cover;
}

TSK_SHARED void tsk_hue_rotate(float *p, float cs, float sn)
{
    float yy = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    float ii = 0.596f * p[0] - 0.274f * p[1] - 0.322f * p[2];
    float qq = 0.211f * p[0] - 0.523f * p[1] + 0.312f * p[2];
    float i2 = ii * cs - qq * sn, q2 = ii * sn + qq * cs;
    p[0] = yy + 0.956f * i2 + 0.621f * q2;
    p[1] = yy - 0.272f * i2 - 0.647f * q2;
    p[2] = yy - 1.106f * i2 + 1.703f * q2;
}

/* The source position of output pixel (x, y) under hm (output pixel centres -> source coordinates,
 * row-major 3x3), clamped to the image: the integer corner (x0, y0), its far neighbours (x1, y1) and
 * the bilinear weights (fx, fy) */
TSK_SHARED void tsk_warp_source(const double *hm, int x, int y, int h, int w, int *x0, int *y0, int *x1, int *y1,
                                float *fx, float *fy)
{
    double px = x + 0.5, py = y + 0.5;
    double z = hm[6] * px + hm[7] * py + hm[8];
    double sx = (hm[0] * px + hm[1] * py + hm[2]) / z - 0.5;
    double sy = (hm[3] * px + hm[4] * py + hm[5]) / z - 0.5;
    /* written so that NaN (a degenerate transform: z = 0) lands on 0 instead of reaching the int cast */
    sx = !(sx >= 0) ? 0 : sx > w - 1 ? w - 1 : sx;
    sy = !(sy >= 0) ? 0 : sy > h - 1 ? h - 1 : sy;
    *x0 = (int)sx, *y0 = (int)sy;
    *x1 = *x0 + 1 < w ? *x0 + 1 : *x0;
    *y1 = *y0 + 1 < h ? *y0 + 1 : *y0;
    *fx = (float)(sx - *x0), *fy = (float)(sy - *y0);
}

TSK_SHARED float tsk_bilinear(float a, float b, float d, float e, float fx, float fy)
{
    return (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
}

/* Nearest-neighbour upsampling by whole factors (sh, sw): output pixel (i, j) reads input pixel
 * (i / sh, j / sw) of a plane w pixels wide; its offset there */
TSK_SHARED int64_t tsk_upsample_source(int i, int j, int w, int sh, int sw) { return (int64_t)(i / sh) * w + j / sw; }

/* its backward: input pixel (a, b)'s gradient, the sum of its sh x sw block of gy (a plane ow = w * sw wide),
 * row by row in a fixed order */
TSK_SHARED float tsk_upsample_grad(const float *gy, int ow, int a, int b, int sh, int sw)
{
    float s = 0;
    for (int di = 0; di < sh; di++)
        for (int dj = 0; dj < sw; dj++) s += gy[(int64_t)(a * sh + di) * ow + b * sw + dj];
    return s;
}

/* ---- pooling (planes [H, W]; the window of output (oy, ox) starts at oy*sh - ph, ox*sw - pw) ---- */

/* whether v takes the place of the best so far in a max scan: the first element, a larger one, or a NaN
 * (a NaN wins and stays, as in PyTorch) */
TSK_SHARED int tsk_max_takes(float v, float best, int first) { return first | (v > best) | (v != v); }

/* the largest element of window (oy, ox) of plane in [H, W] and, in *at, its offset in the plane (-1 when the
 * window holds no element) */
TSK_SHARED float tsk_maxpool_window(const tsk_pool2d_shape *s, const float *in, int oy, int ox, int *at)
{
    float best = -FLT_MAX;
    *at = -1;
    for (int ki = 0; ki < s->kh; ki++) {
        int iy = oy * s->sh - s->ph + ki;
        if (iy < 0 || iy >= s->h) continue;
        for (int kj = 0; kj < s->kw; kj++) {
            int ix = ox * s->sw - s->pw + kj;
            if (ix < 0 || ix >= s->w) continue;
            float v = in[iy * s->w + ix];
            if (tsk_max_takes(v, best, *at < 0)) best = v, *at = iy * s->w + ix;
        }
    }
    return best;
}

/* Average pooling's window (oy, ox) clipped to the image, [y0, y1) x [x0, x1), and its divisor: the whole
 * window when padding counts, else the part inside the image. Windows of ceil mode that run past the padded
 * border are clipped in both cases, as in PyTorch. */
TSK_SHARED int tsk_avgpool_window(const tsk_pool2d_shape *s, int oy, int ox, int *y0, int *y1, int *x0, int *x1)
{
    int ys = oy * s->sh - s->ph, xs = ox * s->sw - s->pw;
    int ye = ys + s->kh, xe = xs + s->kw;
    if (ye > s->h + s->ph) ye = s->h + s->ph;
    if (xe > s->w + s->pw) xe = s->w + s->pw;
    int padded = (ye - ys) * (xe - xs);
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ye > s->h ? s->h : ye;
    *x1 = xe > s->w ? s->w : xe;
    return s->count_include_pad ? padded : (*y1 - *y0) * (*x1 - *x0);
}

/* ---- cross entropy (PyTorch's, with class weights w and label smoothing e over C classes) ---- */

TSK_SHARED double tsk_class_weight(const float *w, int64_t k) { return w ? w[k] : 1.0; }

/* the largest logit of a row, scanned from the first (the softmax's shift) */
TSK_SHARED double tsk_row_max(const float *z, int c)
{
    double m = z[0];
    for (int k = 1; k < c; k++) m = z[k] > m ? z[k] : m;
    return m;
}

/* the first of a row's largest logits, as argmax picks it */
TSK_SHARED int tsk_first_argmax(const float *z, int c)
{
    int best = 0;
    for (int k = 1; k < c; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* sample i's loss: (1-e) w[y] (logsumexp - z[y]) + e/C sum_c w[c] (logsumexp - z[c]), smooth being that sum */
TSK_SHARED double tsk_ce_loss(double logsum, float zy, double wy, double smooth, float e, int c)
{
    return (1.0 - e) * wy * (logsum - zy) + e / c * smooth;
}

/* d loss / d z[i,k] = ((1-e) w[y] (p[k] - [k = y]) + e/C (W p[k] - w[k])) / sum_i w[y_i], W = sum_c w[c] */
TSK_SHARED float tsk_ce_grad(double p, int is_target, double wy, double wk, double wsum, float e, int c, double denom)
{
    double d = (1.0 - e) * wy * (p - is_target) + e / c * (wsum * p - wk);
    return (float)(d / denom);
}

/* ---- distillation (Hinton et al. 2015): the student's softened softmax against the teachers' ---- */

/* the most teachers one call averages (their row normalizers are kept in a fixed array on either device) */
#define TSK_DISTILL_MAX_TEACHERS 16

/* log sum_k exp(z[k] s): the normalizer of softmax(z s), shifted by the row's largest logit */
TSK_SHARED double tsk_logsumexp_scaled(const float *z, int c, double s)
{
    double zmax = tsk_row_max(z, c), sum = 0;
    for (int k = 0; k < c; k++) sum += exp((z[k] - zmax) * s);
    return zmax * s + log(sum);
}

/* One sample of m teachers' rows t[j * stride + k] (logits) and the student's row z [C], at temperature T
 * (s = 1/T): p = 1/m sum_j softmax(t_j s), q = softmax(z s). Returns KL(p || q) = sum_k p_k (log p_k - log q_k)
 * and, when g is given, adds gscale (q_k - p_k) to g[k] (d KL / d z_k = s (q_k - p_k); the caller folds s,
 * T^2, the weight and 1/N into gscale). */
TSK_SHARED double tsk_distill_row(int m, int64_t stride, const float *t, const float *z, int c, double s, double gscale,
                                  float *g)
{
    double lt[TSK_DISTILL_MAX_TEACHERS];
    for (int j = 0; j < m; j++) lt[j] = tsk_logsumexp_scaled(t + j * stride, c, s);
    double lz = tsk_logsumexp_scaled(z, c, s), kl = 0;
    for (int k = 0; k < c; k++) {
        double p = 0;
        for (int j = 0; j < m; j++) p += exp(t[j * stride + k] * s - lt[j]);
        p /= m;
        double logq = z[k] * s - lz;
        /* p = 0 adds nothing (0 log 0 = 0); a NaN p (a teacher's NaN or infinite logit) makes the loss NaN, as
           PyTorch's KLDivLoss does: skipped, the loss stayed finite while every gradient was NaN */
        if (p > 0 || p != p) kl += p * (log(p) - logq);
        if (g) g[k] += (float)(gscale * (exp(logq) - p));
    }
    return kl;
}

/* ---- batch norm over channels of M = N*S values ---- */

/* mean and biased variance from sums of d = x - shift and of d^2 (shifted by the channel's first value, so
 * that a mean large against the spread does not cancel the variance) */
TSK_SHARED void tsk_bn_moments(double sum, double sq, int64_t m, float shift, double *mean, double *var)
{
    double dmean = sum / (double)m;
    *mean = shift + dmean;
    *var = sq / (double)m - dmean * dmean;
    if (*var < 0) *var = 0;
}

TSK_SHARED float tsk_bn_invstd(double var, float eps) { return (float)(1.0 / sqrt(var + eps)); }

/* running statistics: (1-momentum) running + momentum batch, the variance made unbiased (M/(M-1)), as PyTorch */
TSK_SHARED void tsk_bn_update_running(float *running_mean, float *running_var, double mean, double var, int64_t m,
                                      float momentum)
{
    *running_mean = (float)((1.0 - momentum) * *running_mean + momentum * mean);
    *running_var = (float)((1.0 - momentum) * *running_var + momentum * var * (double)m / (double)(m > 1 ? m - 1 : 1));
}

/* y = x scale + shift, with scale = invstd w and shift = b - mean scale (w = 1, b = 0 without affine) */
TSK_SHARED void tsk_bn_affine(float mean, float invstd, const float *weight, const float *bias, int64_t ch,
                              float *scale, float *shift)
{
    *scale = invstd * (weight ? weight[ch] : 1.0f);
    *shift = (bias ? bias[ch] : 0.0f) - mean * *scale;
}

/* gy taken back through a ReLU fused after batch norm, from the ReLU's output y (y > 0 exactly where its input
 * was: relu's derivative [x > 0]); y NULL: no ReLU */
TSK_SHARED float tsk_through_relu(float gy, const float *y, int64_t i) { return !y || !(y[i] <= 0) ? gy : 0.0f; }

/* the input gradient in training mode: w invstd (gy - mean(gy) - (x - mean) mean(gy xhat) invstd) */
TSK_SHARED float tsk_bn_grad_input(float gy, float x, float mean, float w, float invstd, float mean_gy,
                                   float mean_gy_xhat)
{
    return w * invstd * (gy - mean_gy - (x - mean) * (mean_gy_xhat * invstd));
}

/* ---- dropout: a counter-based generator, so a mask is a function of (seed, element) on either device ---- */

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011): four 32-bit words from a
 * 128-bit counter and a 64-bit key by ten rounds of two 32x32->64 products, the key bumped by the Weyl
 * constants between rounds. Random123's known answers hold (tests/test_nn.lua). */
TSK_SHARED void tsk_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0, c1 = (uint32_t)p1, c2 = n2, c3 = (uint32_t)p0;
        k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Dropout with drop probability p in [0, 1): element i is dropped when word i mod 4 of Philox(counter (i / 4, 0),
 * key seed) is below floor(p 2^32), so P(drop) is p to within 2^-32, and a kept element is scaled by 1/(1-p).
 * The mask of the four elements 4q .. 4q+3 */
TSK_SHARED void tsk_dropout_mask4(uint64_t seed, double p, int64_t q, float mask[4])
{
    uint32_t ctr[4] = {(uint32_t)q, (uint32_t)((uint64_t)q >> 32), 0, 0}, key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t bits[4], threshold = (uint32_t)(p * 4294967296.0);
    float scale = (float)(1.0 / (1.0 - p));
    tsk_philox4x32(ctr, key, bits);
    for (int j = 0; j < 4; j++) mask[j] = bits[j] >= threshold ? scale : 0.0f;
}

/* ---- metric learning on embeddings x [N, D] (rows of D floats) ---- */

/* row i's L2 norm, as F.normalize divides by it: max(||x_i||, eps) */
TSK_SHARED double tsk_row_norm(const float *x, int64_t d, float eps)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)x[k] * x[k];
    s = sqrt(s);
    return s > eps ? s : eps;
}

/* the gradient through y = x / max(||x||, eps): (gy - y (y . gy)) / ||x|| where the norm is above eps, gy / eps below
 * (the division by a constant) */
TSK_SHARED void tsk_normalize_grad(const float *x, const float *y, const float *gy, int64_t d, float eps, float *gx)
{
    double norm = tsk_row_norm(x, d, eps), dot = 0;
    int scaled = norm > eps;
    for (int64_t k = 0; k < d; k++) dot += (double)y[k] * gy[k];
    for (int64_t k = 0; k < d; k++) gx[k] = (float)((gy[k] - (scaled ? y[k] * dot : 0.0)) / norm);
}

/* PyTorch's pairwise_distance, ||u - v + eps||, and its gradient with respect to u (minus that for v): (u - v + eps) / d */
TSK_SHARED double tsk_pair_distance(const float *u, const float *v, int64_t d, float eps)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++) {
        double e = (double)u[k] - v[k] + eps;
        s += e * e;
    }
    return sqrt(s);
}

/* Batch-hard mining (Hermans et al., "In defense of the triplet loss", 2017) for anchor a: the farthest row of its
 * class (positive) and the nearest of another class (negative) by pairwise distance, the first of equals; -1 where
 * there is none. A NaN distance (NaN embeddings) is the hardest of all and stays chosen, so that the loss is NaN as
 * PyTorch's would be: compared as a number it lost every comparison, no triplet was mined and the loss was 0, which
 * the training's check of a non-finite loss never saw. */
TSK_SHARED void tsk_hardest(int n, int64_t d, const float *x, const int64_t *labels, int a, float eps, int32_t *pos,
                            int32_t *neg)
{
    double far = -1, near = 0;
    *pos = *neg = -1;
    for (int j = 0; j < n; j++) {
        if (j == a) continue;
        double dist = tsk_pair_distance(x + (int64_t)a * d, x + (int64_t)j * d, d, eps);
        if (labels[j] == labels[a]) {
            if (far == far && !(dist <= far)) far = dist, *pos = j;
        } else if (*neg < 0 || (near == near && !(dist >= near))) {
            near = dist, *neg = j;
        }
    }
}

/* a triplet whose three rows exist (mining leaves -1 where an anchor has no positive or no negative) */
TSK_SHARED int tsk_triplet_valid(int32_t a, int32_t p, int32_t q) { return a >= 0 && p >= 0 && q >= 0; }

/* PyTorch's TripletMarginLoss for one triplet: max(d(a, p) - d(a, n) + margin, 0), d = tsk_pair_distance; NaN stays
 * NaN, as PyTorch's clamp keeps it (l > 0 ? l : 0 made it 0) */
TSK_SHARED double tsk_triplet_loss(const float *x, int64_t d, int32_t a, int32_t p, int32_t q, float margin, float eps)
{
    double l = tsk_pair_distance(x + a * d, x + p * d, d, eps) - tsk_pair_distance(x + a * d, x + q * d, d, eps) + margin;
    return l > 0 || l != l ? l : 0;
}

/* row r's gradient of the mean triplet loss over the valid triplets (scale = 1 / their number), gathered over
 * every triplet r takes part in, in triplet order: for an active triplet (loss > 0), d d(a,p) / da = (a - p + eps) /
 * d(a,p) goes to a and minus it to p, and minus d d(a,n) / da likewise to a and plus it to n */
TSK_SHARED void tsk_triplet_row_grad(int r, int t, int64_t d, const float *x, const int32_t *as, const int32_t *ps,
                                     const int32_t *qs, float margin, float eps, double scale, float *g)
{
    for (int64_t k = 0; k < d; k++) g[k] = 0;
    for (int i = 0; i < t; i++) {
        int32_t a = as[i], p = ps[i], q = qs[i];
        if (!tsk_triplet_valid(a, p, q) || (r != a && r != p && r != q)) continue;
        if (tsk_triplet_loss(x, d, a, p, q, margin, eps) <= 0) continue;
        double dp = tsk_pair_distance(x + a * d, x + p * d, d, eps), dn = tsk_pair_distance(x + a * d, x + q * d, d, eps);
        for (int64_t k = 0; k < d; k++) {
            double up = (x[a * d + k] - x[p * d + k] + eps) / (dp > 0 ? dp : 1);
            double un = (x[a * d + k] - x[q * d + k] + eps) / (dn > 0 ? dn : 1);
            double v = (r == a ? up - un : 0) + (r == p ? -up : 0) + (r == q ? un : 0);
            g[k] += (float)(v * scale);
        }
    }
}

/* The contrastive loss (Hadsell, Chopra and LeCun, 2006) over every pair i < j of the batch, d = ||x_i - x_j||:
 * (d^2 for a pair of one class, max(margin - d, 0)^2 for two classes) / 2, averaged over the N (N - 1) / 2 pairs. */
TSK_SHARED double tsk_contrastive_pair(const float *x, int64_t d, int i, int j, int same, float margin)
{
    double dist = tsk_pair_distance(x + (int64_t)i * d, x + (int64_t)j * d, d, 0.0f), m = margin - dist;
    return same ? 0.5 * dist * dist : m > 0 || m != m ? 0.5 * m * m : 0;   /* (NaN stays NaN, as in the triplet loss) */
}

/* row i's gradient: sum over j != i of c_ij (x_i - x_j) scale (scale = 1 / pairs), c = 1 for one class and
 * -(margin - d) / d for two classes closer than the margin (0 at d = 0, where no direction exists) */
TSK_SHARED void tsk_contrastive_row_grad(int n, int64_t d, const float *x, const int64_t *labels, int i, float margin,
                                         double scale, float *g)
{
    for (int64_t k = 0; k < d; k++) g[k] = 0;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double dist = tsk_pair_distance(x + (int64_t)i * d, x + (int64_t)j * d, d, 0.0f), c;
        if (labels[i] == labels[j]) c = 1;
        else c = dist < margin && dist > 0 ? -(margin - dist) / dist : 0;
        if (c == 0) continue;
        for (int64_t k = 0; k < d; k++) g[k] += (float)(c * scale * ((double)x[(int64_t)i * d + k] - x[(int64_t)j * d + k]));
    }
}

/* ---- the spatial transformer (PyTorch's affine_grid and grid_sample: bilinear, zero padding,
 * align_corners = false) ----
 * Pixel centres in normalized coordinates: column j of w sits at x_j = (2j + 1) / w - 1 (so -1 and 1 are the
 * image's outer edges). affine_grid: grid(i, j) = theta (x_j, y_i, 1), theta a 2x3 matrix, row-major.
 * grid_sample: a grid point (gx, gy) reads the image at pixel coordinates ix = ((gx + 1) w - 1) / 2,
 * iy = ((gy + 1) h - 1) / 2, bilinearly from its four neighbours, a neighbour outside the image counting 0:
 *   out = (1-b)((1-a) v00 + a v01) + b((1-a) v10 + a v11),  a = ix - floor(ix), b = iy - floor(iy)
 * and its derivatives d out / d ix = (1-b)(v01 - v00) + b(v11 - v10), d out / d iy = (1-a)(v10 - v00) +
 * a(v11 - v01), with d ix / d gx = w / 2 and d iy / d gy = h / 2. */
TSK_SHARED float tsk_grid_coord(int i, int n) { return (2.0f * i + 1.0f) / n - 1.0f; }
TSK_SHARED float tsk_grid_pixel(float g, int n) { return ((g + 1.0f) * n - 1.0f) * 0.5f; }

typedef struct { int x0, y0; float a, b; } tsk_grid_point;

TSK_SHARED tsk_grid_point tsk_grid_point_at(float ix, float iy)
{
    tsk_grid_point p;
    float fx = floorf(ix), fy = floorf(iy);
    /* far outside (or NaN): every neighbour is outside, clamped so the int conversion stays defined */
    p.x0 = fx > -2.0f && fx < 2147483000.0f ? (int)fx : -2;
    p.y0 = fy > -2.0f && fy < 2147483000.0f ? (int)fy : -2;
    p.a = ix - fx, p.b = iy - fy;
    return p;
}

TSK_SHARED float tsk_pixel_or_zero(const float *plane, int h, int w, int y, int x)
{
    return y >= 0 && y < h && x >= 0 && x < w ? plane[(int64_t)y * w + x] : 0.0f;
}

/* one plane [h, w] sampled at p; *d_ix, *d_iy (when not NULL) get the derivatives of the value */
TSK_SHARED float tsk_grid_sample_at(const float *plane, int h, int w, tsk_grid_point p, float *d_ix, float *d_iy)
{
    float v00 = tsk_pixel_or_zero(plane, h, w, p.y0, p.x0), v01 = tsk_pixel_or_zero(plane, h, w, p.y0, p.x0 + 1);
    float v10 = tsk_pixel_or_zero(plane, h, w, p.y0 + 1, p.x0), v11 = tsk_pixel_or_zero(plane, h, w, p.y0 + 1, p.x0 + 1);
    if (d_ix) *d_ix = (1 - p.b) * (v01 - v00) + p.b * (v11 - v10);
    if (d_iy) *d_iy = (1 - p.a) * (v10 - v00) + p.a * (v11 - v01);
    return tsk_bilinear(v00, v01, v10, v11, p.a, p.b);
}

/* the sample's backward into the image: g spread over the four neighbours with the same weights (those
 * outside dropped), added into the plane gplane [h, w] */
TSK_SHARED void tsk_grid_scatter(float *gplane, int h, int w, tsk_grid_point p, float g)
{
    const float wt[4] = {(1 - p.a) * (1 - p.b), p.a * (1 - p.b), (1 - p.a) * p.b, p.a * p.b};
    for (int k = 0; k < 4; k++) {
        int y = p.y0 + (k >> 1), x = p.x0 + (k & 1);
        if (y >= 0 && y < h && x >= 0 && x < w) gplane[(int64_t)y * w + x] += g * wt[k];
    }
}

#endif

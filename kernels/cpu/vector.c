/* Small vector kernels shared by the optimizers, clipping and bias gradients. */
#include <math.h>

#include "cpu.h"

void tsk_cpu_axpy(int64_t n, float alpha, const float *x, float *y)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void tsk_cpu_sumsq_add(int64_t n, const float *x, double *acc)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    *acc += s;
}

void tsk_cpu_clip_scale(int64_t n, const double *sumsq, double max_norm, float *x)
{
    double norm = sqrt(*sumsq);
    if (!(norm > max_norm)) return;   /* (a NaN norm scales nothing, as it compares false) */
    double s = max_norm / (norm + 1e-6);
    /* the product in double, rounded once: the bits Tensor:mul_(s) gave when clipping was Lua code */
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * s);
}

void tsk_cpu_channel_sum(int64_t n, int64_t c, int64_t s, const float *x, float *sums)
{
    #pragma omp parallel for schedule(static) if (n * c * s > 65536)
    for (int64_t ch = 0; ch < c; ch++) {
        double acc = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = x + (i * c + ch) * s;
            float part = 0;
            for (int64_t k = 0; k < s; k++) part += p[k];
            acc += part;
        }
        sums[ch] += (float)acc;
    }
}

void tsk_cpu_add(int64_t n, const float *a, const float *b, float *out)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void tsk_cpu_scale(int64_t n, float s, const float *a, float *out)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = s * a[i];
}

void tsk_cpu_mul(int64_t n, const float *a, const float *b, float *out)
{
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void tsk_cpu_fill_rows(int64_t n, int64_t c, const float *v, float *y)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = 0; k < c; k++) y[r * c + k] = v[k];
}

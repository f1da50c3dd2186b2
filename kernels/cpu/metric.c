/* Metric learning on embeddings x [N, D]: unit-length rows, batch-hard triplet mining, the triplet margin loss
 * and the contrastive loss, each row's or each triplet's rule from kernels/pointwise.h (shared with the GPU).
 * Gradients are gathered row by row over the triplets or pairs a row takes part in, so each row has one writer
 * and a fixed order; the sums run in double. Batches of embeddings are small (hundreds of rows): these loops
 * cost nothing beside the network that makes them. */
#include "cpu.h"
#include "../pointwise.h"

void tsk_cpu_normalize_rows(int64_t n, int64_t d, float eps, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        double norm = tsk_row_norm(x + i * d, d, eps);
        for (int64_t k = 0; k < d; k++) y[i * d + k] = (float)(x[i * d + k] / norm);
    }
}

void tsk_cpu_normalize_rows_backward(int64_t n, int64_t d, float eps, const float *x, const float *y, const float *gy,
                                     float *gx)
{
    for (int64_t i = 0; i < n; i++) tsk_normalize_grad(x + i * d, y + i * d, gy + i * d, d, eps, gx + i * d);
}

void tsk_cpu_triplet_mine(int n, int64_t d, const float *x, const int64_t *labels, float eps, int32_t *a, int32_t *p,
                          int32_t *q)
{
    for (int i = 0; i < n; i++) {
        tsk_hardest(n, d, x, labels, i, eps, &p[i], &q[i]);
        a[i] = tsk_triplet_valid(i, p[i], q[i]) ? i : -1;
    }
}

void tsk_cpu_triplet_loss(int t, int n, int64_t d, const float *x, const int32_t *a, const int32_t *p, const int32_t *q,
                          float margin, float eps, float *loss, float *gx)
{
    double total = 0;
    int valid = 0;
    for (int i = 0; i < t; i++)
        if (tsk_triplet_valid(a[i], p[i], q[i])) total += tsk_triplet_loss(x, d, a[i], p[i], q[i], margin, eps), valid++;
    *loss = valid ? (float)(total / valid) : 0.0f;
    if (gx)
        for (int r = 0; r < n; r++) tsk_triplet_row_grad(r, t, d, x, a, p, q, margin, eps, valid ? 1.0 / valid : 0.0, gx + r * d);
}

void tsk_cpu_contrastive_loss(int n, int64_t d, const float *x, const int64_t *labels, float margin, float *loss, float *gx)
{
    double total = 0, pairs = (double)n * (n - 1) / 2;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) total += tsk_contrastive_pair(x, d, i, j, labels[i] == labels[j], margin);
    *loss = pairs > 0 ? (float)(total / pairs) : 0.0f;
    if (gx)
        for (int i = 0; i < n; i++) tsk_contrastive_row_grad(n, d, x, labels, i, margin, pairs > 0 ? 1.0 / pairs : 0.0, gx + (int64_t)i * d);
}

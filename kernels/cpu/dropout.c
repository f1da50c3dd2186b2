/* Dropout's mask, from the counter-based generator of pointwise.h: element i's mask depends on the seed and i
 * only, so threads, devices and the forward or backward call all see the same mask, and nothing is stored. */
#include "../pointwise.h"
#include "cpu.h"

void tsk_cpu_dropout(int64_t n, uint64_t seed, double p, const float *x, float *y)
{
    int64_t quads = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t q = 0; q < quads; q++) {
        float mask[4];
        tsk_dropout_mask4(seed, p, q, mask);
        for (int64_t j = 0, i = 4 * q; j < 4 && i < n; j++, i++) y[i] = x[i] * mask[j];
    }
}

// dropout.cu — dropout's mask drawn on the device from the counter-based generator of pointwise.h: one thread
// per four elements, the same mask as the CPU's for a seed, nothing stored between forward and backward.
#include "common.cuh"

void tsk_cuda_dropout(int64_t n, uint64_t seed, double p, const float *x, float *y)
{
    tsk_each((n + 3) / 4, "dropout", [=] __device__(int64_t q) {
        float mask[4];
        tsk_dropout_mask4(seed, p, q, mask);
        for (int64_t j = 0, i = 4 * q; j < 4 && i < n; j++, i++) y[i] = x[i] * mask[j];
    });
}

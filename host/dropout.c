/* Dropout (training mode; evaluation is the identity and never reaches C): y = x * mask, where mask(i) is 0
 * when element i's Philox bits under the seed fall below p 2^32 and 1/(1-p) otherwise (kernels/pointwise.h).
 * The mask is never stored: the backward applies the same seed to the output gradient. A counter-based mask
 * is drawn where the tensor lives, the same on the CPU and the GPU, and costs the global generator one number
 * per call instead of one per element. */
#include "internal.h"

int ts_dropout(ts_tensor *y, const ts_tensor *x, double p, uint64_t seed)
{
    if (!(p >= 0 && p < 1)) return ts_error("dropout: probability must be in [0, 1), got %g", p);
    if (ts_check_f32("dropout: input", x) || ts_check_shape("dropout: output", y, x->ndim, x->shape) ||
        ts_check_same_device("dropout", x, y, NULL, NULL))
        return -1;
    const tsk_backend *k = ts_kernels(x);
    k->dropout(ts_tensor_numel(x), seed, p, ts_f32(x), ts_f32(y));
    return ts_kernel_status(k, "dropout");
}

/* Dropout (training mode; evaluation is the identity and never reaches C).
 * mask = [u >= p] / (1 - p) with u uniform from the global generator, drawn in element order so a seed
 * gives the same mask whatever the thread count; y = x * mask, and the backward is gx = gy * mask. */
#include "internal.h"

int ts_dropout_forward(ts_tensor *y, ts_tensor *mask, const ts_tensor *x, double p)
{
    if (p < 0 || p >= 1) return ts_error("dropout: probability must be in [0, 1), got %g", p);
    if (ts_check_f32("dropout: input", x) || ts_check_shape("dropout: output", y, x->ndim, x->shape) ||
        ts_check_shape("dropout: mask", mask, x->ndim, x->shape))
        return -1;
    int64_t n = ts_tensor_numel(x);
    float *m = ts_f32(mask), *py = ts_f32(y), scale = (float)(1.0 / (1.0 - p));
    const float *px = ts_f32(x);
    /* 53-bit uniforms compared in integer form: u >= p  <=>  bits >= p * 2^53 */
    uint64_t threshold = (uint64_t)(p * 9007199254740992.0);
    for (int64_t i = 0; i < n; i++) m[i] = (ts_rng_u64() >> 11) >= threshold ? scale : 0.0f;
    for (int64_t i = 0; i < n; i++) py[i] = px[i] * m[i];
    return 0;
}

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
    if (ts_check_same_device("dropout", x, y, mask, NULL)) return -1;
    /* the mask is drawn on the host, so that a seed gives the same mask on either device */
    ts_tensor *host_mask = ts_on_cuda(mask) ? ts_tensor_new(TS_FLOAT32, mask->ndim, mask->shape) : ts_tensor_retain(mask);
    if (!host_mask) return -1;
    int64_t n = ts_tensor_numel(x);
    float *m = ts_f32(host_mask), scale = (float)(1.0 / (1.0 - p));
    /* 53-bit uniforms compared in integer form: u >= p  <=>  bits >= p * 2^53 */
    uint64_t threshold = (uint64_t)(p * 9007199254740992.0);
    for (int64_t i = 0; i < n; i++) m[i] = (ts_rng_u64() >> 11) >= threshold ? scale : 0.0f;
    int rc = host_mask == mask ? 0 : ts_tensor_copy(mask, host_mask);
    ts_tensor_free(host_mask);
    if (rc) return -1;
    const tsk_backend *k = ts_kernels(x);
    k->mul(n, ts_f32(x), ts_f32(mask), ts_f32(y));
    return ts_kernel_status(k, "dropout");
}

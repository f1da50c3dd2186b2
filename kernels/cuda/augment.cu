// augment.cu — a batch built on the GPU: uint8 images [B, H, W, C] in, float [B, C', OH, OW] out, through
// each image's plan (kernels.h): the projective warp with bilinear sampling (edge pixels repeated), then
// the cast shadow, brightness, contrast around the image's mean luma, saturation, faded red paint, hue (YIQ), clamping,
// gamma, the cutout,
// grayscale and (x - mean) / std. The math of kernels/cpu/augment.c and host/batch.c, so that a plan
// gives the same image on either device (to rounding: the mean luma is summed in another order).
#include "common.cuh"

// warp and brightness: tmp [B, OH, OW, C] in 0..1
__global__ void warp_kernel(int64_t total, int h, int w, int c, int oh, int ow, const uint8_t *images,
                            const tsk_image_plan *plans, float *tmp)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c), x = (int)(i / c % ow), y = (int)(i / c / ow % oh);
        int64_t b = i / ((int64_t)c * ow * oh);
        const tsk_image_plan &p = plans[b];
        const uint8_t *src = images + b * h * w * c;
        float v;
        if (p.warp) {
            int x0, y0, x1, y1;
            float fx, fy;
            tsk_warp_source(p.inv, x, y, h, w, &x0, &y0, &x1, &y1, &fx, &fy);
            const float k = 1.0f / 255.0f;
            v = tsk_bilinear(src[((int64_t)y0 * w + x0) * c + ch] * k, src[((int64_t)y0 * w + x1) * c + ch] * k,
                             src[((int64_t)y1 * w + x0) * c + ch] * k, src[((int64_t)y1 * w + x1) * c + ch] * k, fx, fy);
        } else {
            v = src[((int64_t)y * w + x) * c + ch] * (1.0f / 255.0f);
        }
        if (p.shadow_half > 0) v *= tsk_shadow_factor(&p, x, y);
        if (p.brightness != 1) v *= p.brightness;
        tmp[i] = v;
    }
}

struct normalization {
    float mean[3], std[3];
};

// one block per image: the rest of the colour changes, cutout, grayscale, standardization, channels first
__global__ void finish_kernel(int oh, int ow, int c, int out_c, const tsk_image_plan *plans, normalization norm,
                              float *tmp, float *out)
{
    int b = blockIdx.x, n = oh * ow;
    const tsk_image_plan &p = plans[b];
    float *img = tmp + (int64_t)b * n * c;
    float m = 0;
    if (p.contrast != 1) {
        double s = 0;
        for (int i = threadIdx.x; i < n; i += blockDim.x) s += c == 3 ? tsk_luma(img + 3 * i) : img[i];
        m = (float)(tsk_block_sum(s) / n);
    }
    float cs = cosf(6.2831853f * p.hue), sn = sinf(6.2831853f * p.hue);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v[3];
        for (int ch = 0; ch < c; ch++) v[ch] = img[i * c + ch];
        if (p.contrast != 1)
            for (int ch = 0; ch < c; ch++) v[ch] = m + (v[ch] - m) * p.contrast;
        if (c == 3 && p.saturation != 1) {
            float l = tsk_luma(v);
            for (int ch = 0; ch < 3; ch++) v[ch] = l + (v[ch] - l) * p.saturation;
        }
        if (c == 3 && p.fade != 0) tsk_fade_red(v, p.fade);
        if (c == 3 && p.hue != 0) tsk_hue_rotate(v, cs, sn);
        for (int ch = 0; ch < c; ch++) {
            v[ch] = v[ch] < 0 ? 0 : v[ch] > 1 ? 1 : v[ch];
            if (p.gamma != 1) v[ch] = powf(v[ch], p.gamma);
        }
        int y = i / ow, x = i % ow;
        if (p.cutout_size && y >= p.cutout_y && y < p.cutout_y + p.cutout_size && x >= p.cutout_x &&
            x < p.cutout_x + p.cutout_size)
            for (int ch = 0; ch < c; ch++) v[ch] = norm.mean[ch];
        for (int oc = 0; oc < out_c; oc++) {
            float value = out_c == 1 && c == 3 ? tsk_luma(v) : v[oc];
            out[((int64_t)b * out_c + oc) * n + i] = (value - norm.mean[oc]) / norm.std[oc];
        }
    }
}

int tsk_cuda_augment_batch(int count, int h, int w, int c, const uint8_t *images, const tsk_image_plan *plans,
                           int oh, int ow, int out_c, const float *mean, const float *std, float *out)
{
    if (count == 0) return 0;
    int64_t total = (int64_t)count * oh * ow * c;
    float *tmp = (float *)tsk_cuda_workspace(sizeof(float) * (size_t)total);
    if (!tmp) return -1;
    normalization norm;
    for (int i = 0; i < 3; i++) norm.mean[i] = mean[i], norm.std[i] = std[i] > 0 ? std[i] : 1.0f;
    warp_kernel<<<tsk_blocks(total), TSK_THREADS, 0, tsk_ctx.stream>>>(total, h, w, c, oh, ow, images, plans, tmp);
    finish_kernel<<<count, TSK_THREADS, 0, tsk_ctx.stream>>>(oh, ow, c, out_c, plans, norm, tmp, out);
    return tsk_launch_ok("augment batch") ? 0 : -1;
}

/* cuda.h — the CUDA side as the host sees it, in plain C: the device runtime (memory, copies, the one
 * stream everything is queued on) and the kernels' backend table (kernels.h). Built only with CUDA.
 *
 * Global state, documented: one device, one stream, the cuBLAS and cuDNN handles, the cuDNN algorithm
 * cache, one growing workspace, two pinned staging buffers, the first error message. All of it is used
 * from the Lua thread only. */
#ifndef TSK_CUDA_H
#define TSK_CUDA_H
#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

int tsk_cuda_device_count(void);                 /* 0 when there is no usable driver or device */
int tsk_cuda_init(void);                         /* handles and stream on device 0; 0, or -1 with the error set */
const char *tsk_cuda_device_name(void);
void *tsk_cuda_malloc(size_t bytes);             /* NULL when the device has no room (no error kept) */
void tsk_cuda_free(void *p);
int tsk_cuda_memset0(void *p, size_t bytes);
/* host -> device through a pinned staging buffer: returns once src may be reused, the copy itself
 * overlapping the work already queued */
int tsk_cuda_upload(void *dst, const void *src, size_t bytes);
int tsk_cuda_download(void *dst, const void *src, size_t bytes);   /* device -> host, waits */
int tsk_cuda_copy_device(void *dst, const void *src, size_t bytes);
/* dst[i] = src[i] over a strided index space of up to 5 dims, elements of elem_size bytes (1, 4 or 8) */
int tsk_cuda_copy_strided(int elem_size, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
                          const void *src, const int64_t *src_stride);
int tsk_cuda_synchronize(void);
/* deterministic: only cuDNN algorithms that give the same bits every run, and no atomics in our kernels */
void tsk_cuda_set_deterministic(int on);
/* TF32 tensor cores for cuDNN convolutions (on by default, as in PyTorch); cuBLAS always computes in fp32 */
void tsk_cuda_set_tf32(int on);
/* bf16 convolutions in the channels-last layout (NHWC; on by default), else NCHW */
void tsk_cuda_set_channels_last(int on);
size_t tsk_cuda_workspace_bytes(void);
void tsk_cuda_release_workspace(void);
/* the kernels' scratch memory, grown on demand and kept (NULL and the error set when it cannot grow) */
void *tsk_cuda_workspace(size_t bytes);

/* out [count, out_c, oh, ow] from uint8 images [count, h, w, c] and one plan per image (all on the device);
 * mean/std: the preprocessing, per output channel, on the host */
int tsk_cuda_augment_batch(int count, int h, int w, int c, const uint8_t *images, const tsk_image_plan *plans, int oh,
                           int ow, int out_c, const float *mean, const float *std, float *out);

#ifdef __cplusplus
}
#endif
#endif

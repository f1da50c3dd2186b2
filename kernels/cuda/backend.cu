// backend.cu — the CUDA backend table: the host reaches the device's runtime and every CUDA kernel through
// it (kernels.h); the compute entries are made from ops.def, in its order.
#include "common.cuh"

const tsk_backend tsk_cuda_backend = {
    .name = "cuda",
    .error = tsk_cuda_error,
    .error_is_oom = tsk_cuda_error_is_oom,
    .notice = tsk_cuda_notice,
    .init = tsk_cuda_init,
    .device_name = tsk_cuda_device_name,
    .about = tsk_cuda_about,
    .alloc = tsk_cuda_malloc,
    .release = tsk_cuda_free,
    .zero = tsk_cuda_memset0,
    .upload = tsk_cuda_upload,
    .download = tsk_cuda_download,
    .copy = tsk_cuda_copy_device,
    .mark = tsk_cuda_mark,
    .upload_beside = tsk_cuda_upload_beside,
    .copy_strided = tsk_cuda_copy_strided,
    .synchronize = tsk_cuda_synchronize,
    .set_option = tsk_cuda_set_option,
    .release_cache = tsk_cuda_release_workspace,
    .set_allocator = tsk_cuda_set_allocator,
    .caching = 1,
#define TSK_OP(where, ret, name, params) .name = TSK_IF_CUDA_##where(tsk_cuda_##name, NULL),
#include "../ops.def"
#undef TSK_OP
};

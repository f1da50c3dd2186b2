// optim.cu — the optimizer updates of kernels/pointwise.h (torch.optim's rules) over the tensors of a parameter
// group: a few launches for the lot, one thread per element of all of them.
#include "common.cuh"

// Up to TSK_PARAM_CHUNK tensors travel by value in one launch's arguments (about 2 KB, under the 4 KB every GPU
// takes); start[k] is where tensor k begins in the launch's joined index range, start[count] its end.
#define TSK_PARAM_CHUNK 32
struct tsk_param_chunk {
    int count;
    int64_t start[TSK_PARAM_CHUNK + 1];
    tsk_param t[TSK_PARAM_CHUNK];
};

// the tensor of the chunk that holds joined index i: the last k with start[k] <= i (binary search)
__device__ inline int tsk_param_of(const tsk_param_chunk &c, int64_t i)
{
    int lo = 0, hi = c.count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (c.start[mid] <= i) lo = mid; else hi = mid - 1;
    }
    return lo;
}

// update(t, j): element j of tensor t; run over the params in chunks
template <typename F>
static void tsk_each_param(int count, const tsk_param *params, const char *what, F update)
{
    for (int from = 0; from < count; from += TSK_PARAM_CHUNK) {
        tsk_param_chunk c;
        c.count = count - from < TSK_PARAM_CHUNK ? count - from : TSK_PARAM_CHUNK;
        c.start[0] = 0;
        for (int k = 0; k < c.count; k++) {
            c.t[k] = params[from + k];
            c.start[k + 1] = c.start[k] + c.t[k].n;
        }
        tsk_each(c.start[c.count], what, [=] __device__(int64_t i) {
            int k = tsk_param_of(c, i);
            update(c.t[k], i - c.start[k]);
        });
    }
}

void tsk_cuda_sgd_step(int count, const tsk_param *params, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov)
{
    tsk_each_param(count, params, "sgd", [=] __device__(const tsk_param &t, int64_t j) {
        tsk_sgd_update(&t.p[j], t.g[j], t.m ? &t.m[j] : NULL, lr, momentum, dampening, weight_decay, nesterov,
                       t.first_step);
    });
}

void tsk_cuda_adam_step(int count, const tsk_param *params, float lr, float beta1, float beta2, float eps,
                        float weight_decay, int decoupled)
{
    tsk_each_param(count, params, "adam", [=] __device__(const tsk_param &t, int64_t j) {
        tsk_adam_update(&t.p[j], t.g[j], &t.m[j], &t.v[j], lr, beta1, beta2, eps, weight_decay, decoupled,
                        t.step_size, t.bc2_sqrt);
    });
}

/* Optimizer steps over the tensors of one parameter group: checks, the per-tensor list the kernels take
 * (tsk_param) and dispatch; the rules are in kernels/pointwise.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* A tensor a step writes (a parameter or its state), by its bytes, and the parameter it belongs to */
typedef struct { const char *begin, *end; int k; } written;

static int by_begin(const void *a, const void *b)
{
    const char *x = ((const written *)a)->begin, *y = ((const written *)b)->begin;
    return x < y ? -1 : x > y;
}

/* -1 with an error when two of the tensors a step writes share memory: the GPU updates all of them at once, so a
 * parameter listed twice would race (one at a time it was updated twice). Sorted by address, each is compared
 * with the furthest end before it. */
static int check_disjoint(const char *what, int count, ts_tensor *const *params, ts_tensor *const *m,
                          ts_tensor *const *v)
{
    written *w = malloc(sizeof *w * 3 * (size_t)count);
    if (!w) return ts_error("%s: out of host memory for %d parameters", what, count);
    int nw = 0;
    for (int k = 0; k < count; k++) {
        const ts_tensor *t[3] = {params[k], m ? m[k] : NULL, v ? v[k] : NULL};
        for (int i = 0; i < 3; i++)
            if (t[i] && ts_tensor_numel(t[i]) > 0) {
                const char *b = ts_tensor_data(t[i]);
                w[nw++] = (written){b, b + 4 * ts_tensor_numel(t[i]), k};
            }
    }
    qsort(w, (size_t)nw, sizeof *w, by_begin);
    int rc = 0;
    for (int i = 1, last = 0; i < nw && !rc; i++) {
        if (w[i].begin < w[last].end) {
            int a = w[last].k < w[i].k ? w[last].k : w[i].k, b = w[last].k < w[i].k ? w[i].k : w[last].k;
            rc = ts_error(a == b ? "%s: parameter %d and its own state share memory" :
                          "%s: parameters %d and %d (or their state) share memory: list each tensor once",
                          what, a + 1, b + 1);
        }
        if (w[i].end > w[last].end) last = i;
    }
    free(w);
    return rc;
}

/* The checks shared by the steps, filling list[k]'s n, p, g, m, v: count parameters, each float32 and contiguous,
 * with a gradient of its size and state of its size (m[k] may be NULL when m_optional: SGD without momentum;
 * m or v NULL: a rule without it), all on params[0]'s device, none sharing memory with another. */
static int check_group(const char *what, int count, ts_tensor *const *params, ts_tensor *const *grads,
                       ts_tensor *const *m, int m_optional, ts_tensor *const *v, tsk_param *list)
{
    char name[80];
    for (int k = 0; k < count; k++) {
        snprintf(name, sizeof name, "%s: parameter %d", what, k + 1);
        if (ts_check_f32(name, params[k])) return -1;
        int64_t n = ts_tensor_numel(params[k]);
        const ts_tensor *mk = m && !(m_optional && !m[k]) ? m[k] : NULL, *vk = v ? v[k] : NULL;
        const ts_tensor *checked[3] = {grads[k], mk, vk};
        const char *role[3] = {"gradient", v ? "exp_avg" : "momentum buffer", "exp_avg_sq"};
        int needed[3] = {1, m && !(m_optional && !m[k]), v != NULL};
        for (int i = 0; i < 3; i++) {
            if (!needed[i]) continue;
            snprintf(name, sizeof name, "%s: %s of parameter %d", what, role[i], k + 1);
            if (ts_check_f32(name, checked[i]) || ts_check_numel(name, checked[i], n) ||
                ts_check_same_device(name, params[0], params[k], checked[i], NULL))
                return -1;
        }
        list[k] = (tsk_param){.n = n, .p = ts_f32(params[k]), .g = ts_f32(grads[k]), .m = mk ? ts_f32(mk) : NULL,
                              .v = vk ? ts_f32(vk) : NULL};
    }
    return check_disjoint(what, count, params, m, v);
}

int ts_sgd_step(int count, ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *momentum_buffers,
                const int *first_step, double lr, double momentum, double dampening, double weight_decay, int nesterov)
{
    if (count < 0 || (count > 0 && (!params || !grads)))
        return ts_error("sgd: %d parameters without their lists", count);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return ts_error("sgd: Nesterov momentum requires a momentum and zero dampening");
    if (count == 0) return 0;
    tsk_param *list = calloc((size_t)count, sizeof *list);
    if (!list) return ts_error("sgd: out of host memory for %d parameters", count);
    int rc = check_group("sgd", count, params, grads, momentum_buffers, 1, NULL, list);
    if (!rc) {
        for (int k = 0; k < count; k++) list[k].first_step = first_step ? first_step[k] != 0 : 0;
        const tsk_backend *k = ts_kernels(params[0]);
        k->sgd_step(count, list, (float)lr, (float)momentum, (float)dampening, (float)weight_decay, nesterov);
        rc = ts_kernel_status(k, "sgd");
    }
    free(list);
    return rc;
}

int ts_adam_step(int count, ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *exp_avg,
                 ts_tensor *const *exp_avg_sq, const int64_t *steps, double lr, double beta1, double beta2, double eps,
                 double weight_decay, int decoupled)
{
    if (count < 0 || (count > 0 && (!params || !grads || !exp_avg || !exp_avg_sq || !steps)))
        return ts_error("adam: %d parameters without their lists", count);
    for (int k = 0; k < count; k++)
        if (steps[k] < 1) return ts_error("adam: step counts from 1, got %lld for parameter %d", (long long)steps[k], k + 1);
    if (count == 0) return 0;
    tsk_param *list = calloc((size_t)count, sizeof *list);
    if (!list) return ts_error("adam: out of host memory for %d parameters", count);
    int rc = check_group("adam", count, params, grads, exp_avg, 0, exp_avg_sq, list);
    if (!rc) {
        for (int k = 0; k < count; k++) {
            /* rounded as the single-tensor step always did: each correction to float, then divided */
            float bc1 = (float)(1.0 - pow(beta1, (double)steps[k])), bc2 = (float)(1.0 - pow(beta2, (double)steps[k]));
            list[k].step_size = (float)lr / bc1;
            list[k].bc2_sqrt = sqrtf(bc2);
        }
        const tsk_backend *k = ts_kernels(params[0]);
        k->adam_step(count, list, (float)lr, (float)beta1, (float)beta2, (float)eps, (float)weight_decay, decoupled);
        rc = ts_kernel_status(k, "adam");
    }
    free(list);
    return rc;
}

/* internal.h — what the host's C files share and the bindings never see: the tensor layout and the
 * argument checks every layer makes. */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H
#include "ts.h"

typedef struct {
    void *data;
    size_t bytes;
    int refcount;
    int device;
} ts_storage;

struct ts_tensor {
    ts_storage *storage;
    int64_t offset;                 /* in elements */
    int dtype;
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    int64_t stride[TS_MAX_DIMS];    /* in elements */
    int refcount;                   /* of this handle: views are new handles on the same storage */
};

void ts_note_allocation(size_t bytes);
int64_t ts_row_offset(const ts_tensor *t, int64_t r);  /* first element of row r (rows = all dims but the last) */

static inline float *ts_f32(const ts_tensor *t) { return (float *)ts_tensor_data(t); }

/* Shape checks that produce "name: expected ..., got [2,3,4]" messages. Each returns 0 or -1. */
int ts_check_f32(const char *what, const ts_tensor *t);           /* float32, contiguous, non-NULL */
int ts_check_shape(const char *what, const ts_tensor *t, int ndim, const int64_t *shape);
int ts_check_numel(const char *what, const ts_tensor *t, int64_t numel);
const char *ts_shape_str(const ts_tensor *t, char *buf, size_t size);

/* splitmix64: small independent generators, one per image, seeded from a batch seed and a position */
typedef struct { uint64_t s; } ts_splitmix;
static inline uint64_t ts_splitmix_next(ts_splitmix *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double ts_splitmix_uniform(ts_splitmix *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(ts_splitmix_next(r) >> 11) * 0x1.0p-53;
}

/* batch.c, shared with the loader */
int ts_batch_check(const ts_tensor *images, const ts_tensor *labels, const ts_preprocess *pre, int *h, int *w, int *c,
                   int *out_c, int *oh, int *ow);
int ts_batch_fill_range(ts_tensor *x, ts_tensor *y, const ts_tensor *images, const ts_tensor *labels,
                        const int64_t *indices, int count, const ts_augment *aug, const ts_preprocess *pre,
                        const int32_t *flip_map, int flip_classes, uint64_t seed, int parallel);

#endif

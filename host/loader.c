/* The prefetching batch loader: `workers` background threads build the batches of an epoch, each taking
 * the next batch not yet claimed, at most `depth` ahead of the consumer, who receives them in order; the
 * training loop finds each batch ready. The batches are the same as ts_batch_fill would give (the seed of
 * batch b is derived from the epoch seed and b), whatever the timing and the number of workers.
 * One worker suits CPU training, where the kernels use the cores; with a GPU the cores are free and
 * several workers keep augmentation ahead of it.
 * For a CUDA loader the workers only draw each image's augmentation and gather its uint8 pixels; the
 * consumer's thread, which owns the GPU, uploads them beside the queued work into one of two device buffers the
 * loader keeps, and finishes the batch there (host/batch.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ts_loader {
    ts_tensor *images, *labels;
    ts_augment aug;
    int has_aug;
    ts_preprocess pre;
    int32_t *flip_map;
    int flip_classes, depth;

    /* the epoch */
    int64_t *order, n;
    int batch_size, batches;
    uint64_t seed;

    pthread_t threads[TS_LOADER_MAX_WORKERS];
    int workers, started;
    int epoch_ready;   /* an epoch has started (ts_loader_retry has one to go on with) */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int claimed, consumed, stop, failed;
    int failed_batch, failed_oom;   /* the first batch that could not be built or delivered; an out-of-memory? */
    char error[512];
    ts_tensor **x, **y;       /* ring of depth slots: batch b in slot b % depth, NULL until built */
    tsk_image_plan **plans;   /* per slot, on the GPU path: x holds the uint8 images, plans their augmentation */
    int device, on_gpu;       /* on_gpu: the batches are finished on the GPU */
    /* on the GPU path, two device buffers in turn for the uint8 images and plans: batch b's upload runs beside
     * the work queued for batch b - 1, once batch b - 2's augmentation has read the buffer */
    ts_batch_buffer device_buffers[2];
};

static uint64_t batch_seed(uint64_t seed, int b) { return seed * 0x9E3779B97F4A7C15ull + (uint64_t)b * 0xBF58476D1CE4E5B9ull; }

/* batch b failed with this thread's last error, kept for the consumer (the lock held): the batches before the
 * earliest failure are still delivered, and from there on the error, until ts_loader_retry */
static void record_failure(ts_loader *l, int b)
{
    if (l->failed && l->failed_batch <= b) return;
    snprintf(l->error, sizeof l->error, "%s", ts_last_error());
    l->failed_oom = ts_last_error_is_oom();
    l->failed_batch = b;
    l->failed = 1;
}

/* the consumer has reached the earliest failure (the lock held) */
static int failed_here(const ts_loader *l) { return l->failed && l->consumed >= l->failed_batch; }

static void *produce(void *arg)
{
    ts_loader *l = arg;
    int h, w, c, out_c, oh, ow;
    ts_batch_check(l->images, l->labels, l->has_aug ? &l->aug : NULL, &l->pre, &h, &w, &c, &out_c, &oh, &ow);
    for (;;) {
        /* claim the next batch once its slot is free: batch b - depth has been taken */
        pthread_mutex_lock(&l->lock);
        while (!l->stop && !l->failed && l->claimed < l->batches && l->claimed - l->consumed >= l->depth)
            pthread_cond_wait(&l->changed, &l->lock);
        if (l->stop || l->failed || l->claimed >= l->batches) {
            pthread_mutex_unlock(&l->lock);
            break;
        }
        int b = l->claimed++;
        pthread_mutex_unlock(&l->lock);
        int64_t start = (int64_t)b * l->batch_size;
        int count = (int)(start + l->batch_size <= l->n ? l->batch_size : l->n - start);
        int64_t xs[4] = {count, out_c, oh, ow}, rs[4] = {count, h, w, c}, ys[1] = {count};
        ts_tensor *x = l->on_gpu ? ts_tensor_new(TS_UINT8, 4, rs) : ts_tensor_new(TS_FLOAT32, 4, xs);
        ts_tensor *y = ts_tensor_new(TS_INT64, 1, ys);
        tsk_image_plan *plans = l->on_gpu ? malloc(sizeof *plans * (size_t)count) : NULL;
        const ts_augment *aug = l->has_aug ? &l->aug : NULL;
        int rc = !x || !y ? -1   /* the allocation said why */
                 : l->on_gpu && !plans ? ts_error_oom("loader: out of memory for the augmentation of %d images", count)
                 : l->on_gpu ? ts_batch_draw(x, plans, y, l->images, l->labels, l->order + start, count, aug, &l->pre,
                                             l->flip_map, l->flip_classes, batch_seed(l->seed, b))
                             : ts_batch_fill_range(x, y, l->images, l->labels, l->order + start, count, aug, &l->pre,
                                                   l->flip_map, l->flip_classes, batch_seed(l->seed, b), 0);
        pthread_mutex_lock(&l->lock);
        if (rc) {
            record_failure(l, b);
            ts_tensor_free(x);
            ts_tensor_free(y);
            free(plans);
        } else {
            l->x[b % l->depth] = x;
            l->y[b % l->depth] = y;
            l->plans[b % l->depth] = plans;
        }
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->lock);
        if (rc) break;
    }
    return NULL;
}

static void stop_epoch(ts_loader *l)
{
    if (!l->started) return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < l->started; i++) pthread_join(l->threads[i], NULL);
    l->started = 0;
    for (int i = 0; i < l->depth; i++) {   /* batches built but never taken */
        ts_tensor_free(l->x[i]);
        ts_tensor_free(l->y[i]);
        free(l->plans[i]);
        l->x[i] = l->y[i] = NULL;
        l->plans[i] = NULL;
    }
}

ts_loader *ts_loader_new(ts_tensor *images, ts_tensor *labels, const ts_augment *aug, const ts_preprocess *pre,
                         const int32_t *flip_map, int flip_classes, int depth, int workers, int device)
{
    int h, w, c, out_c, oh, ow;
    if (ts_batch_check(images, labels, aug, pre, &h, &w, &c, &out_c, &oh, &ow)) return NULL;
    if (depth < 1 || depth > TS_LOADER_MAX_PREFETCH) {
        ts_error("loader: prefetch depth must be 1 to %d, got %d", TS_LOADER_MAX_PREFETCH, depth);
        return NULL;
    }
    if (workers < 1 || workers > TS_LOADER_MAX_WORKERS) {
        ts_error("loader: 1 to %d workers, got %d", TS_LOADER_MAX_WORKERS, workers);
        return NULL;
    }
    if (device != TS_CPU && device != TS_CUDA) {
        ts_error("loader: unknown device %d", device);
        return NULL;
    }
    if (device == TS_CUDA && !ts_cuda_available()) {
        ts_error("loader: no CUDA device is available for the batches");
        return NULL;
    }
    ts_loader *l = calloc(1, sizeof *l);
    if (!l || !(l->x = calloc((size_t)depth, sizeof(ts_tensor *))) || !(l->y = calloc((size_t)depth, sizeof(ts_tensor *))) ||
        !(l->plans = calloc((size_t)depth, sizeof(tsk_image_plan *)))) {
        if (l) free(l->x), free(l->y);
        free(l);
        ts_error("loader: out of memory");
        return NULL;
    }
    l->images = ts_tensor_retain(images);
    l->labels = ts_tensor_retain(labels);
    if (aug) l->aug = *aug, l->has_aug = 1;
    if (pre) l->pre = *pre;
    else for (int i = 0; i < 3; i++) l->pre.std[i] = 1;
    if (flip_map && flip_classes > 0) {
        l->flip_map = malloc(sizeof(int32_t) * (size_t)flip_classes);
        if (l->flip_map) memcpy(l->flip_map, flip_map, sizeof(int32_t) * (size_t)flip_classes);
        l->flip_classes = flip_classes;
    }
    l->depth = depth;
    l->workers = workers;
    l->device = device;
    l->on_gpu = device == TS_CUDA && ts_batch_device_capable(l->has_aug ? &l->aug : NULL, &l->pre);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->changed, NULL);
    return l;
}

/* the workers of the current epoch, building its batches from `first` (0-based) on */
static int start_workers(ts_loader *l, int first)
{
    l->claimed = l->consumed = first;
    l->stop = l->failed = l->failed_oom = 0;
    for (int i = 0; i < l->workers; i++) {
        if (pthread_create(&l->threads[i], NULL, produce, l)) {
            if (!l->started) return ts_error("loader: cannot start a worker thread");
            break;   /* fewer workers than asked still produce every batch */
        }
        l->started++;
    }
    return 0;
}

int ts_loader_start(ts_loader *l, const int64_t *order, int64_t n, int batch_size, int drop_last, uint64_t seed,
                    int first_batch)
{
    stop_epoch(l);
    l->epoch_ready = 0;
    if (batch_size < 1) return ts_error("loader: batch size must be positive, got %d", batch_size);
    if (n < 0 || n / batch_size > INT32_MAX - 1) return ts_error("loader: %lld images in an epoch", (long long)n);
    int64_t images = ts_tensor_size(l->images, 0);
    for (int64_t i = 0; i < n; i++)
        if (order[i] < 0 || order[i] >= images)
            return ts_error("loader: index %lld outside the %lld images", (long long)order[i] + 1, (long long)images);
    free(l->order);
    l->order = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!l->order) return ts_error("loader: out of memory");
    memcpy(l->order, order, sizeof(int64_t) * (size_t)n);
    l->n = drop_last ? n / batch_size * batch_size : n;
    l->batch_size = batch_size;
    l->batches = (int)((l->n + batch_size - 1) / batch_size);
    l->seed = seed;
    if (first_batch < 0 || first_batch > l->batches)
        return ts_error("loader: cannot start at batch %d of an epoch of %d", first_batch + 1, l->batches);
    /* a resumed epoch skips the batches already trained: batch b's images and seed depend only on b */
    l->epoch_ready = 1;
    return start_workers(l, first_batch);
}

int ts_loader_retry(ts_loader *l)
{
    if (!l->epoch_ready) return ts_error("loader: no epoch has started, so there is none to go on with");
    stop_epoch(l);
    return start_workers(l, l->consumed);
}

int ts_loader_next(ts_loader *l, ts_tensor **x, ts_tensor **y)
{
    *x = *y = NULL;
    if (!l->started || l->consumed >= l->batches) return 0;
    int slot = l->consumed % l->depth;
    pthread_mutex_lock(&l->lock);
    while (!l->x[slot] && !failed_here(l)) pthread_cond_wait(&l->changed, &l->lock);
    if (failed_here(l)) {   /* (the slot may hold a later batch after a failure to deliver this one) */
        char error[sizeof l->error];
        int oom = l->failed_oom;
        memcpy(error, l->error, sizeof error);
        pthread_mutex_unlock(&l->lock);
        return oom ? ts_error_oom("%s", error) : ts_error("%s", error);
    }
    ts_tensor *built = l->x[slot];
    tsk_image_plan *plans = l->plans[slot];
    *y = l->y[slot];
    l->x[slot] = l->y[slot] = NULL;
    l->plans[slot] = NULL;
    l->consumed++;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    if (l->device == TS_CPU) {
        *x = built;
        return 1;
    }
    /* the GPU's part, on this thread: finish the drawn batch there, or copy the one built on the CPU */
    if (l->on_gpu) {
        int h, w, c, out_c, oh, ow;
        ts_batch_check(l->images, l->labels, l->has_aug ? &l->aug : NULL, &l->pre, &h, &w, &c, &out_c, &oh, &ow);
        int64_t xs[4] = {built->shape[0], out_c, oh, ow};
        *x = ts_tensor_new_on(TS_CUDA, TS_FLOAT32, 4, xs);
        ts_batch_buffer *buffer = &l->device_buffers[(l->consumed - 1) % 2];
        if (*x && ts_batch_apply_on_device(*x, built, plans, (int)built->shape[0], &l->pre, buffer)) {
            ts_tensor_free(*x);
            *x = NULL;
        }
    } else {
        *x = ts_tensor_to(built, TS_CUDA);
    }
    ts_tensor_free(built);
    free(plans);
    if (!*x) {   /* not delivered: the epoch stops here, and ts_loader_retry builds this batch again */
        ts_tensor_free(*y);
        *y = NULL;
        pthread_mutex_lock(&l->lock);
        l->consumed--;
        record_failure(l, l->consumed);
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->lock);
        return -1;
    }
    return 1;
}

int ts_loader_batches(const ts_loader *l) { return l->batches; }

void ts_loader_free(ts_loader *l)
{
    if (!l) return;
    stop_epoch(l);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->changed);
    for (int i = 0; i < 2; i++) ts_batch_buffer_free(&l->device_buffers[i]);
    ts_tensor_free(l->images);
    ts_tensor_free(l->labels);
    free(l->flip_map);
    free(l->order);
    free(l->x);
    free(l->y);
    free(l->plans);
    free(l);
}

/* memory.c — where tensor storage comes from, per device (through its backend's alloc and release), with
 * statistics and an optional limit.
 *
 *   A device whose allocation is cheap (the CPU: 64-byte aligned blocks from the C heap) is asked every time.
 *   A caching device (CUDA: cudaMalloc and cudaFree synchronize the device and cost tens of microseconds, and
 *         every training step frees and requests the same sizes again) gets a caching allocator: a freed block
 *         is kept and handed out again for a request it fits without wasting more than half of it. Sizes
 *         are rounded up to 512 bytes, and to 2 MiB from 1 MiB on, so that they repeat. Everything runs on
 *         one stream, so a block reused is never still in use by an earlier kernel. When the driver has
 *         no room, the cache is given back and the request tried once more before it fails.
 *
 * A limit makes allocations beyond it fail exactly as an exhausted device does (ts_error_oom): that is how
 * the out-of-memory handling is exercised on a machine without a GPU.
 *
 * TSHOST_MEMORY_EXACT=1 turns the cache and the rounding off for a caching device: every block is the size asked
 * for and goes back to the device when freed (the CPU's blocks stay whole 64-byte lines). A memory checker
 * (compute-sanitizer on a GPU, AddressSanitizer on make emu's) sees an overrun only past a block's end, and a cached
 * or rounded-up block hides it; PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING is the same switch. Slow: every step
 * allocates from the device.
 * Global state, documented in ts.h: the statistics and the cache, under one mutex, because the loader's
 * thread allocates the batches it prepares. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct cached_block {
    void *p;
    size_t bytes;
    struct cached_block *next;
} cached_block;

static ts_memory_stats stats[2];
static cached_block *cache[2];   /* per device: only a caching device's ever holds blocks */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *human(int64_t bytes, char *buf, size_t size)
{
    if (bytes >= (int64_t)1 << 30) snprintf(buf, size, "%.2f GiB", (double)bytes / (1 << 30));
    else if (bytes >= (int64_t)1 << 20) snprintf(buf, size, "%.1f MiB", (double)bytes / (1 << 20));
    else snprintf(buf, size, "%.1f KiB", (double)bytes / 1024);
    return buf;
}

static int oom(int device, size_t bytes)
{
    ts_memory_stats *s = &stats[device];
    char a[32], b[32], c[32], d[32];
    s->failures++;
    return ts_error_oom("out of memory on %s: %s requested with %s in use (peak %s)%s%s", device ? "cuda" : "cpu",
                        human((int64_t)bytes, a, sizeof a), human(s->in_use, b, sizeof b), human(s->peak, c, sizeof c),
                        s->limit ? ", limit " : "", s->limit ? human(s->limit, d, sizeof d) : "");
}

static void account(int device, size_t bytes)
{
    ts_memory_stats *s = &stats[device];
    s->in_use += (int64_t)bytes;
    s->allocations++;
    if (s->in_use > s->peak) s->peak = s->in_use;
}

static size_t cached_size(size_t bytes)
{
    size_t unit = bytes < ((size_t)1 << 20) ? 512 : (size_t)2 << 20;
    return bytes ? (bytes + unit - 1) / unit * unit : unit;
}

/* Every block in a device's cache taken out (lock held), to be given back to that device after the lock is
 * released: cudaFree synchronizes the device, and the loader's threads must not wait on it for their own
 * allocations. */
static cached_block *detach_cache(int device)
{
    cached_block *all = cache[device];
    for (cached_block *b = all; b; b = b->next) stats[device].cached -= (int64_t)b->bytes;
    cache[device] = NULL;
    return all;
}

static void give_back(const tsk_backend *k, cached_block *list)
{
    while (list) {
        cached_block *b = list;
        list = b->next;
        k->release(b->p);
        free(b);
    }
}

/* A caching device's idle memory all given back: its own (the workspace, which its release hands to this
 * cache) first, then the cache. */
static void give_back_cache(int device, const tsk_backend *k)
{
    if (k->release_cache) k->release_cache();
    pthread_mutex_lock(&lock);
    cached_block *spare = detach_cache(device);
    pthread_mutex_unlock(&lock);
    give_back(k, spare);
}

/* a cached block that fits a request of want bytes without wasting more than half of it (lock held) */
static void *take_cached(int device, size_t want, size_t *granted)
{
    cached_block **best = NULL;
    for (cached_block **at = &cache[device]; *at; at = &(*at)->next)
        if ((*at)->bytes >= want && (*at)->bytes / 2 <= want && (!best || (*at)->bytes < (*best)->bytes)) best = at;
    if (!best) return NULL;
    cached_block *b = *best;
    void *p = b->p;
    *best = b->next;
    *granted = b->bytes;
    stats[device].cached -= (int64_t)b->bytes;
    stats[device].cache_hits++;
    free(b);
    account(device, *granted);
    return p;
}

/* A block from the device. No room is NULL alone; any other failure is NULL with *failed set and an error
 * that names it, never an out-of-memory one (an earlier kernel fault must not pass for a full device). */
static void *device_alloc(const tsk_backend *k, size_t bytes, int *failed)
{
    void *p = k->alloc(bytes);
    const char *e = p ? NULL : k->error();
    if (e) {
        ts_error("memory on %s: %s", k->name, e);
        *failed = 1;
    }
    return p;
}

/* whether a device's freed blocks are kept for reuse (TSHOST_MEMORY_EXACT=1 says no; read once, before threads) */
static int exact_blocks(void)
{
    static int exact = -1;
    if (exact < 0) exact = getenv("TSHOST_MEMORY_EXACT") && !strcmp(getenv("TSHOST_MEMORY_EXACT"), "1");
    return exact;
}
static int caches(const tsk_backend *k) { return k->caching && !exact_blocks(); }

void *ts_memory_alloc(int device, size_t bytes, size_t *granted)
{
    const tsk_backend *k = ts_backend(device);
    if (!k) {
        ts_error("memory on cuda: no CUDA device is available (%s)", ts_cuda_unavailable_reason());
        return NULL;
    }
    /* a caching device's sizes are rounded so that they repeat; the CPU's blocks are whole 64-byte lines */
    size_t want = caches(k) ? cached_size(bytes) : k->caching ? (bytes ? bytes : 1) : bytes ? (bytes + 63) / 64 * 64 : 64;
    ts_memory_stats *s = &stats[device];
    pthread_mutex_lock(&lock);
    void *p = caches(k) ? take_cached(device, want, granted) : NULL;
    if (p) {
        pthread_mutex_unlock(&lock);
        return p;
    }
    /* under a limit, the cache goes back first when it is what stands in the way */
    cached_block *spare = s->limit && s->in_use + s->cached + (int64_t)want > s->limit ? detach_cache(device) : NULL;
    int refused = s->limit && s->in_use + (int64_t)want > s->limit;
    int64_t peak = s->peak;   /* put back if the device refuses: the peak is of memory held */
    if (refused) oom(device, want);
    else account(device, want);   /* reserved now, so that requests meanwhile count it against the limit */
    pthread_mutex_unlock(&lock);
    give_back(k, spare);
    if (refused) return NULL;
    /* the device's own allocation, outside the lock (cudaMalloc synchronizes); when there is no room, the
     * cache and the backend's own memory (workspaces) go back and it is tried once more */
    int failed = 0;
    p = device_alloc(k, want, &failed);
    if (!p && !failed && k->caching) {   /* (in exact mode the cache is empty, but the workspace is not) */
        give_back_cache(device, k);
        p = device_alloc(k, want, &failed);
    }
    if (!p) {
        pthread_mutex_lock(&lock);
        s->in_use -= (int64_t)want;   /* the reservation, undone */
        s->allocations--;
        if (s->peak > peak) s->peak = peak > s->in_use ? peak : s->in_use;
        if (!failed) oom(device, want);
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    *granted = want;
    return p;
}

void ts_memory_release(int device, void *p, size_t granted)
{
    if (!p) return;
    const tsk_backend *k = ts_backend(device);   /* ready: p came from it */
    pthread_mutex_lock(&lock);
    stats[device].in_use -= (int64_t)granted;
    cached_block *b = caches(k) ? malloc(sizeof *b) : NULL;
    if (b) {
        *b = (cached_block){p, granted, cache[device]};
        cache[device] = b;
        stats[device].cached += (int64_t)granted;
    }
    pthread_mutex_unlock(&lock);
    if (!b) k->release(p);   /* outside the lock: cudaFree synchronizes */
}

/* the bytes a device's cache holds */
static size_t cached_bytes(int device)
{
    pthread_mutex_lock(&lock);
    int64_t bytes = stats[device].cached;
    pthread_mutex_unlock(&lock);
    return bytes > 0 ? (size_t)bytes : 0;
}

/* a started caching device's idle memory given back to it (one never started has nothing to give back) */
static void trim(int device)
{
    const tsk_backend *k = ts_backend_started(device);
    if (k && k->caching) give_back_cache(device, k);
}

/* This allocator as a backend's for its own memory (the CPU kernels' scratch, the GPU's workspace), per
 * device; device.c hands it to each backend when the device starts. */
static void *cpu_block(size_t bytes, size_t *granted) { return ts_memory_alloc(TS_CPU, bytes, granted); }
static void cpu_unblock(void *p, size_t granted) { ts_memory_release(TS_CPU, p, granted); }
static void *cuda_block(size_t bytes, size_t *granted) { return ts_memory_alloc(TS_CUDA, bytes, granted); }
static void cuda_unblock(void *p, size_t granted) { ts_memory_release(TS_CUDA, p, granted); }
static size_t cuda_cached(void) { return cached_bytes(TS_CUDA); }
static void cuda_trim(void) { trim(TS_CUDA); }
static const char *failure(int *out_of_memory)
{
    *out_of_memory = ts_last_error_is_oom();
    return ts_last_error();
}

tsk_allocator ts_memory_allocator(int device)
{
    return device == TS_CUDA ? (tsk_allocator){cuda_block, cuda_unblock, failure, cuda_cached, cuda_trim}
                             : (tsk_allocator){cpu_block, cpu_unblock, failure, NULL, NULL};
}

static int check_device(int device)
{
    if (device != TS_CPU && device != TS_CUDA) return ts_error("memory: unknown device %d", device);
    return 0;
}

int ts_memory_get_stats(int device, ts_memory_stats *out)
{
    if (check_device(device)) return -1;
    pthread_mutex_lock(&lock);
    *out = stats[device];
    pthread_mutex_unlock(&lock);
    return 0;
}

int ts_memory_reset_peak(int device)
{
    if (check_device(device)) return -1;
    pthread_mutex_lock(&lock);
    stats[device].peak = stats[device].in_use;
    pthread_mutex_unlock(&lock);
    return 0;
}

int ts_memory_set_limit(int device, int64_t bytes)
{
    if (check_device(device)) return -1;
    if (bytes < 0) return ts_error("memory: the limit must be >= 0 bytes (0: none), got %lld", (long long)bytes);
    pthread_mutex_lock(&lock);
    stats[device].limit = bytes;
    pthread_mutex_unlock(&lock);
    return 0;
}

void ts_memory_empty_cache(void)
{
    for (int device = 0; device < 2; device++) trim(device);
}

/* Scratch memory of the CPU kernels and their error record.
 *
 * A kernel's scratch (im2col columns, packed operands, per-thread weight-gradient partials) can be larger
 * than the tensors it works on, so it comes from the host's allocator, which counts it and applies the CPU
 * memory limit (tsk_cpu_set_allocator; the C heap until the host sets one). When there is no room the
 * kernel records the failure and returns without finishing; the host reads the record after the call
 * (backend->error), as it does for the CUDA backend. Any thread may record: the first message is kept. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static tsk_allocator allocator;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char message[256], reported[256];   /* the first failure since the last read; "" when none */

void tsk_cpu_set_allocator(tsk_allocator a) { allocator = a; }

/* A 64-byte header before each block keeps the size granted, which the release needs, and keeps the block
 * 64-byte aligned for AVX-512 loads. */
enum { HEADER = 64 };

void *tsk_cpu_scratch(size_t bytes)
{
    size_t granted = bytes + HEADER;
    void *p = NULL;
    if (allocator.alloc) p = allocator.alloc(bytes + HEADER, &granted);
    else if (posix_memalign(&p, 64, bytes + HEADER)) p = NULL;
    if (p) {
        memcpy(p, &granted, sizeof granted);
        return (unsigned char *)p + HEADER;
    }
    pthread_mutex_lock(&lock);
    if (!message[0])
        snprintf(message, sizeof message, "out of memory: no room for %.1f MiB of scratch memory on the cpu",
                 (double)bytes / (1 << 20));
    pthread_mutex_unlock(&lock);
    return NULL;
}

void tsk_cpu_scratch_free(void *block)
{
    if (!block) return;
    unsigned char *p = (unsigned char *)block - HEADER;
    size_t granted;
    memcpy(&granted, p, sizeof granted);
    if (allocator.release) allocator.release(p, granted);
    else free(p);
}

const char *tsk_cpu_error(void)
{
    pthread_mutex_lock(&lock);
    const char *out = NULL;
    if (message[0]) {
        memcpy(reported, message, sizeof reported);
        message[0] = 0;
        out = reported;
    }
    pthread_mutex_unlock(&lock);
    return out;
}

/* the CPU kernels' one failure is no room for their scratch */
int tsk_cpu_error_is_oom(void) { return 1; }

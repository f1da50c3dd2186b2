/* Errors, thread count and the global random generator.
 *
 * Global state, all documented in ts.h: the error message is per thread; the generator is process-wide and
 * drawn from the calling (Lua) thread only; the allocation counter is process-wide and atomic. */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ts.h"
#include "internal.h"

static _Thread_local char error_message[1024];
static _Thread_local int error_is_oom;

const char *ts_last_error(void) { return error_message; }
int ts_last_error_is_oom(void) { return error_is_oom; }

static int set_error(int oom, const char *fmt, va_list ap)
{
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    error_is_oom = oom;
    return -1;
}

int ts_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(0, fmt, ap);
    va_end(ap);
    return -1;
}

int ts_error_oom(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(1, fmt, ap);
    va_end(ap);
    return -1;
}

extern void openblas_set_num_threads(int n);

int ts_set_threads(int n)
{
    if (n < 1 || n > 1024) return ts_error("threads: expected a count from 1 to 1024, got %d", n);
    omp_set_num_threads(n);
    /* Kernels split work across OpenMP threads themselves and call single-threaded BLAS inside. */
    openblas_set_num_threads(1);
    return 0;
}

int ts_get_threads(void) { return omp_get_max_threads(); }

/* xoshiro256** (Blackman & Vigna), seeded through splitmix64 */
static uint64_t rng[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1};

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ts_manual_seed(uint64_t seed)
{
    ts_splitmix s = {seed};
    for (int i = 0; i < 4; i++) rng[i] = ts_splitmix_next(&s);
}

uint64_t ts_rng_u64(void)
{
    uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

double ts_rng_uniform(void) { return (double)(ts_rng_u64() >> 11) * 0x1.0p-53; }

double ts_rng_normal(void)
{
    /* Box-Muller; one draw per call keeps the stream position independent of caching */
    double u1 = ts_rng_uniform(), u2 = ts_rng_uniform();
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

void ts_rng_get_state(uint64_t *state4) { memcpy(state4, rng, sizeof rng); }
void ts_rng_set_state(const uint64_t *state4) { memcpy(rng, state4, sizeof rng); }

static size_t allocated_since_query;

void ts_note_allocation(size_t bytes) { __atomic_add_fetch(&allocated_since_query, bytes, __ATOMIC_RELAXED); }

size_t ts_alloc_pressure(void)
{
    return __atomic_exchange_n(&allocated_since_query, 0, __ATOMIC_RELAXED);
}

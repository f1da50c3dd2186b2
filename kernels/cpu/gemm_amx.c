/* The product of packed bf16 pairs (gemm_bf16.c) on AMX, the matrix unit of Intel's Sapphire Rapids and later:
 * eight tile registers of 16 rows x 64 bytes, and TDPBF16PS, which multiplies a 16x32 bf16 tile by a 32x16 one
 * into a 16x16 fp32 tile (8,192 multiply-adds per instruction, eight times a core's vdpbf16ps rate).
 *
 *   C[M,N] (=, or += when accumulate) A[M,K2] B[K2,N], both operands packed pairs, A(i, q) = a[i*a_rs + q],
 *
 * The packed layouts are already the ones the unit reads: a tile of A is 16 rows of 16 consecutive pairs, a
 * tile of B is 16 rows q of 16 columns j, each element the pair (B(2q, j), B(2q+1, j)), which is Intel's
 * "VNNI" layout of B. So tiles load straight from the operands, with their row strides.
 *
 * C is computed in 32x32 blocks, four accumulator tiles (0-3) fed by two tiles of A (4, 5) and two of B (6, 7)
 * per 16 pairs of depth; blocks at the bottom or right edge use one A or one B tile when 16 rows or columns
 * are left. A depth that is not a multiple of 16 pairs ends with a step from zero-padded copies of A's and B's
 * last pairs, made once per call (tiles have one shape per configuration, and loading a new configuration
 * clears them). Rows and columns beyond the last multiple of 16 are the AVX-512 kernel's (vdpbf16ps); the
 * two kernels sum the same exact products in fp32 and differ only in the order of the sums.
 *
 * Linux lends a process the tile registers only on request (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA):
 * tsk_cpu_amx_usable asks when the CPU path is chosen, and the amx path exists only where it was granted.
 * The amx path is chosen only above avx512bf16 (gemm_avx512.c's best_path), whose kernel does the edges. Each call loads the tile
 * configuration on its own thread and releases the tiles at the end (the kernel then saves no tile state
 * when the thread is switched out). */
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bf16")
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu.h"

enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

int tsk_cpu_amx_usable(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16")) return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* palette 1: every tile 16 rows of 64 bytes */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static void configure_tiles(void)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
}

/* one step of depth: rows i (and i+16 when two_a) of A from a0 (a1), columns of B from b0 (and b0+16 when
 * two_b), strides in bytes */
#define STEP(a0, a1, a_stride, b0, b_stride)                                                                        \
    do {                                                                                                           \
        _tile_loadd(4, (a0), (a_stride));                                                                          \
        _tile_loadd(6, (b0), (b_stride));                                                                          \
        _tile_dpbf16ps(0, 4, 6);                                                                                   \
        if (two_b) {                                                                                               \
            _tile_loadd(7, (b0) + 16, (b_stride));                                                                 \
            _tile_dpbf16ps(1, 4, 7);                                                                               \
        }                                                                                                          \
        if (two_a) {                                                                                               \
            _tile_loadd(5, (a1), (a_stride));                                                                      \
            _tile_dpbf16ps(2, 5, 6);                                                                               \
            if (two_b) _tile_dpbf16ps(3, 5, 7);                                                                    \
        }                                                                                                          \
    } while (0)

/* C's block of (16 or 32) x (16 or 32) at c; a at the block's first row, b at its first column; the padded
 * last step, when the depth has one, at at (rows of 16 pairs) and bt (rows of bt_rs pairs), at the same block;
 * NULL when it has none */
__attribute__((always_inline)) static inline void block(int two_a, int two_b, int steps, const uint32_t *a, int64_t a_rs,
                                                        const uint32_t *b, int64_t ldb, const uint32_t *at,
                                                        const uint32_t *bt, int64_t bt_rs, float *c, int64_t ldc,
                                                        int accumulate)
{
    if (accumulate) {
        _tile_loadd(0, c, ldc * 4);
        if (two_b) _tile_loadd(1, c + 16, ldc * 4);
        if (two_a) _tile_loadd(2, c + 16 * ldc, ldc * 4);
        if (two_a && two_b) _tile_loadd(3, c + 16 * ldc + 16, ldc * 4);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int s = 0; s < steps; s++)
        STEP(a + 16 * s, a + 16 * a_rs + 16 * s, a_rs * 4, b + (int64_t)16 * s * ldb, ldb * 4);
    if (at) STEP(at, at + 16 * 16, 64, bt, bt_rs * 4);
    _tile_stored(0, c, ldc * 4);
    if (two_b) _tile_stored(1, c + 16, ldc * 4);
    if (two_a) _tile_stored(2, c + 16 * ldc, ldc * 4);
    if (two_a && two_b) _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
}

void tsk_cpu_gemm_amx(int m, int n, int k2, const uint32_t *a, int64_t a_rs, const uint32_t *b, int64_t ldb, float *c,
                      int64_t ldc, int accumulate)
{
    int m16 = m / 16 * 16, n16 = n / 16 * 16, steps = k2 / 16, rest = k2 % 16;
    if (m16 && n16) {
        /* the last `rest` pairs, zero-padded to 16: A's [m16][16], B's [16][n16] */
        uint32_t *at = NULL, *bt = NULL;
        if (rest) {
            at = tsk_cpu_scratch(sizeof(uint32_t) * 16 * ((size_t)m16 + (size_t)n16));
            if (!at) return;   /* no room: recorded, the call reports it */
            bt = at + (int64_t)16 * m16;
            memset(at, 0, sizeof(uint32_t) * 16 * ((size_t)m16 + (size_t)n16));
            for (int i = 0; i < m16; i++) memcpy(at + 16 * i, a + i * a_rs + 16 * steps, sizeof(uint32_t) * rest);
            for (int q = 0; q < rest; q++) memcpy(bt + (int64_t)q * n16, b + (int64_t)(16 * steps + q) * ldb, sizeof(uint32_t) * n16);
        }
        configure_tiles();
        for (int j = 0; j < n16; j += 32) {
            int two_b = n16 - j >= 32;
            for (int i = 0; i < m16; i += 32) {
                int two_a = m16 - i >= 32;
                const uint32_t *ai = a + i * a_rs, *bj = b + j, *ati = at ? at + 16 * i : NULL, *btj = bt ? bt + j : NULL;
                float *cij = c + i * ldc + j;
                if (two_a && two_b) block(1, 1, steps, ai, a_rs, bj, ldb, ati, btj, n16, cij, ldc, accumulate);
                else if (two_a) block(1, 0, steps, ai, a_rs, bj, ldb, ati, btj, n16, cij, ldc, accumulate);
                else if (two_b) block(0, 1, steps, ai, a_rs, bj, ldb, ati, btj, n16, cij, ldc, accumulate);
                else block(0, 0, steps, ai, a_rs, bj, ldb, ati, btj, n16, cij, ldc, accumulate);
            }
        }
        _tile_release();
        tsk_cpu_scratch_free(at);
    }
    /* the edges: the last m - m16 rows, and the last n - n16 columns of the rows above them */
    if (m > m16) tsk_cpu_gemm_avx512(1, m - m16, n, k2, a + m16 * a_rs, a_rs, 1, b, ldb, c + m16 * ldc, ldc, accumulate);
    if (n > n16 && m16) tsk_cpu_gemm_avx512(1, m16, n - n16, k2, a, a_rs, 1, b + n16, ldb, c + n16, ldc, accumulate);
}

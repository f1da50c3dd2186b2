/* CRC-32C (Castagnoli), the checksum of TFRecord framing, in which TensorBoard's event files are written: the
 * SSE4.2 crc32 instruction eight bytes at a time (the build targets x86-64-v3, which has it). */
#include <nmmintrin.h>
#include <string.h>

#include "internal.h"

uint32_t ts_crc32c(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t c = 0xffffffffu;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        c = _mm_crc32_u64(c, v);
    }
    uint32_t r = (uint32_t)c;
    for (; n > 0; p++, n--) r = _mm_crc32_u8(r, *p);
    return r ^ 0xffffffffu;
}

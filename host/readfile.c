/* readfile.c — a whole file into memory, for the readers that parse from memory (images, pickles,
 * safetensors), and what a file's first bytes say it is, for their messages.
 *
 * The file is read in growing chunks until its end rather than by its size: a pipe (/dev/stdin) has no size
 * and can be read only once. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static size_t half_the_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    return (size_t)pages / 2 <= SIZE_MAX / (size_t)page ? (size_t)pages / 2 * (size_t)page : SIZE_MAX;
}

unsigned char *ts_read_file(const char *path, size_t limit, size_t *size, ts_first_bytes first)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ts_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st = {0};
    if (!fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
        fclose(f);
        ts_error("%s: is a directory, not a file", path);
        return NULL;
    }
    /* a stream (a pipe, /dev/zero) may never end: it is read to at most half the memory, where reading on would
       only end with the process killed for it */
    int regular = S_ISREG(st.st_mode);
    size_t stream_most = half_the_memory();
    if (!regular && stream_most < limit) limit = stream_most;
    /* with `first`, the first read is of 64 KiB at most (all of a shorter file), judged before more is read; then,
       for a regular file, its size (one byte more, to see its end in the same read), so that a large one is not
       grown by doubling past twice its size */
    enum { FIRST = 1 << 16 };
    size_t guess = regular && st.st_size >= 0 ? (size_t)st.st_size + 1 : (size_t)FIRST;
    size_t most = limit < SIZE_MAX ? limit + 1 : SIZE_MAX;   /* a file of exactly limit bytes ends within it */
    unsigned char *data = NULL;
    size_t used = 0, capacity = 0;
    if (first) {
        capacity = guess < FIRST ? guess : (size_t)FIRST;
        if (capacity > most) capacity = most;
        if (!(data = malloc(capacity))) {
            ts_error("%s: out of memory reading %zu bytes", path, capacity);
            goto fail;
        }
        used = fread(data, 1, capacity, f);   /* (fread stops short only at the end or an error) */
        if (ferror(f)) {
            ts_error("%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (first(path, data, used)) goto fail;   /* refused, with its message */
    }
    for (;;) {
        if (used == capacity) {
            if (capacity == most) {
                ts_error("%s: larger than %.0f MiB, the most %s", path, (double)limit / (1 << 20),
                         !regular && limit == stream_most ? "read from a stream (half this machine's memory)" : "this reader takes");
                break;
            }
            size_t want = capacity < guess ? guess : capacity > most / 2 ? most : capacity * 2;
            size_t grown = want < most ? want : most;
            unsigned char *p = realloc(data, grown);
            if (!p) {
                ts_error("%s: out of memory reading %zu bytes", path, grown);
                break;
            }
            data = p, capacity = grown;
        }
        size_t got = fread(data + used, 1, capacity - used, f);
        used += got;
        if (got > 0) continue;
        if (ferror(f)) {
            ts_error("%s: cannot read: %s", path, strerror(errno));
            break;
        }
        fclose(f);
        *size = used;
        return data;
    }
fail:
    fclose(f);
    free(data);
    return NULL;
}

const char *ts_file_kind(const unsigned char *b, size_t n, int *is_image)
{
    static const struct {
        size_t offset;
        const char *magic;
        size_t length;
        const char *kind;
        int image;   /* 1: a format stb_image reads; 2: an image format it does not */
    } kinds[] = {
        {0, "\x89PNG\r\n\x1a\n", 8, "a PNG image", 1},
        {0, "\xff\xd8\xff", 3, "a JPEG image", 1},
        {0, "GIF8", 4, "a GIF image", 1},
        {0, "BM", 2, "a BMP image", 1},
        {0, "II*\0", 4, "a TIFF image", 2},
        {0, "MM\0*", 4, "a TIFF image", 2},
        {8, "WEBP", 4, "a WebP image", 2},
        {4, "ftypheic", 8, "a HEIC image", 2},
        {4, "ftypheix", 8, "a HEIC image", 2},
        {4, "ftypmif1", 8, "a HEIF image", 2},
        {4, "ftypavif", 8, "an AVIF image", 2},
        {0, "\0\0\0\x0cjP  ", 8, "a JPEG 2000 image", 2},
        {0, "\xff\x0a", 2, "a JPEG XL image", 2},
        {0, "\0\0\0\x0cJXL ", 8, "a JPEG XL image", 2},
        {0, "\x1f\x8b", 2, "a gzip-compressed file", 0},
        {0, "PK\x03\x04", 4, "a zip archive (torch.save and numpy.savez write these)", 0},
        {0, "\x93NUMPY", 6, "a NumPy .npy file", 0},
        {0, "\x80", 1, "a Python pickle", 0},
        {0, "BZh", 3, "a bzip2-compressed file", 0},
        {0, "\xfd" "7zXZ", 5, "an xz-compressed file", 0},
    };
    if (is_image) *is_image = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (n >= kinds[i].offset + kinds[i].length && !memcmp(b + kinds[i].offset, kinds[i].magic, kinds[i].length)) {
            if (is_image) *is_image = kinds[i].image;
            return kinds[i].kind;
        }
    return NULL;
}

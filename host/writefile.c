/* writefile.c — files written whole or not at all: the bytes go to a temporary file beside the target (named
 * with the writer's process id, so that a later run can tell an abandoned one), are flushed to the disk, and
 * the temporary file is renamed over the target. A full disk, a failed write or a crash leaves the previous
 * file as it was; every failure is reported with the system's reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct ts_atomic_file {
    FILE *fp;
    char *tmp, *path;
    int failed;   /* a write failed: errno of the first failure */
};

ts_atomic_file *ts_atomic_open(const char *path)
{
    ts_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (f) f->path = malloc(n + 1), f->tmp = malloc(n + 32);
    if (!f || !f->path || !f->tmp) {
        if (f) free(f->path), free(f->tmp);
        free(f);
        ts_error("%s: out of memory", path);
        return NULL;
    }
    memcpy(f->path, path, n + 1);
    snprintf(f->tmp, n + 32, "%s.tmp%ld", path, (long)getpid());
    if (!(f->fp = fopen(f->tmp, "wb"))) {
        ts_error("%s: cannot create: %s", f->tmp, strerror(errno));
        free(f->path), free(f->tmp), free(f);
        return NULL;
    }
    return f;
}

void ts_atomic_write(ts_atomic_file *f, const void *data, size_t bytes)
{
    if (!f->failed && bytes && fwrite(data, 1, bytes, f->fp) != bytes) f->failed = errno ? errno : EIO;
}

int ts_atomic_close(ts_atomic_file *f, int ok)
{
    int err = f->failed;
    if (ok && !err && (fflush(f->fp) || fsync(fileno(f->fp)))) err = errno;
    if (fclose(f->fp) && !err) err = errno;
    if (ok && !err && rename(f->tmp, f->path)) err = errno;
    int rc = 0;
    if (!ok || err) {
        unlink(f->tmp);
        rc = ok ? ts_error("%s: write failed: %s (the previous file, if any, is untouched)", f->path, strerror(err)) : -1;
    }
    free(f->tmp), free(f->path), free(f);
    return rc;
}

int ts_write_file(const char *path, const void *data, size_t bytes)
{
    ts_atomic_file *f = ts_atomic_open(path);
    if (!f) return -1;
    ts_atomic_write(f, data, bytes);
    return ts_atomic_close(f, 1);
}

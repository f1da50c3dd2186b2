/* writefile.c — files written whole or not at all: the bytes go to a temporary file beside the target (named
 * with the writer's process id, so that a later run can tell an abandoned one), are flushed to the disk, and
 * the temporary file is renamed over the target. A full disk, a failed write or a crash leaves the previous
 * file as it was; every failure is reported with the system's reason.
 *
 * What the target is decides the rest: a symbolic link keeps pointing where it did (the file it names is the one
 * replaced), an existing file keeps its permissions, and a target that is no regular file (/dev/stdout, a pipe)
 * is written in place, since nothing can be renamed over it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct ts_atomic_file {
    FILE *fp;
    char *tmp, *path;   /* tmp NULL: written in place */
    int failed;         /* a write failed: errno of the first failure */
    int durable;        /* flushed to the disk before the rename */
};

ts_atomic_file *ts_atomic_open(const char *path, int durable)
{
    if (!path || !*path) {
        ts_error("write: no file named (an empty path)");
        return NULL;
    }
    /* a link is followed to the file it names (realpath), which is then the one replaced */
    char resolved[PATH_MAX];
    struct stat link, st;
    const char *target = !lstat(path, &link) && S_ISLNK(link.st_mode) && realpath(path, resolved) ? resolved : path;
    int exists = !stat(target, &st), in_place = exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
    ts_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(target);
    if (f) f->path = malloc(n + 1), f->tmp = in_place ? NULL : malloc(n + 32);
    if (!f || !f->path || (!in_place && !f->tmp)) {
        if (f) free(f->path), free(f->tmp);
        free(f);
        ts_error("%s: out of memory", path);
        return NULL;
    }
    memcpy(f->path, target, n + 1);
    f->durable = durable;
    if (!in_place) snprintf(f->tmp, n + 32, "%s.tmp%ld", target, (long)getpid());
    /* The temporary file is made anew (O_EXCL follows no link): a link planted at its name was written through,
     * and the file it named destroyed. One of that name left by a killed process of the same id is removed first. */
    int fd = -1;
    if (!in_place) {
        unlink(f->tmp);
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    }
    if (!(f->fp = in_place ? fopen(f->path, "wb") : fd >= 0 ? fdopen(fd, "wb") : NULL)) {
        int err = errno;
        if (fd >= 0) close(fd), unlink(f->tmp);
        /* named by the file asked for; the temporary one is where it failed */
        if (in_place) ts_error("%s: cannot write: %s", f->path, strerror(err));
        else ts_error("%s: cannot write: %s (creating %s)", f->path, strerror(err), f->tmp);
        free(f->path), free(f->tmp), free(f);
        return NULL;
    }
    if (exists && !in_place && S_ISREG(st.st_mode)) fchmod(fileno(f->fp), st.st_mode & 07777);   /* its permissions */
    return f;
}

void ts_atomic_write(ts_atomic_file *f, const void *data, size_t bytes)
{
    if (!f->failed && bytes && fwrite(data, 1, bytes, f->fp) != bytes) f->failed = errno ? errno : EIO;
}

int ts_atomic_close(ts_atomic_file *f, int ok)
{
    int err = f->failed;
    if (ok && !err && (fflush(f->fp) || (f->tmp && f->durable && fsync(fileno(f->fp))))) err = errno;
    if (fclose(f->fp) && !err) err = errno;
    if (ok && !err && f->tmp && rename(f->tmp, f->path)) err = errno;
    int rc = 0;
    if (!ok || err) {
        if (f->tmp) unlink(f->tmp);
        rc = !ok ? -1 : f->tmp ? ts_error("%s: write failed: %s (the previous file, if any, is untouched)", f->path, strerror(err))
                               : ts_error("%s: write failed: %s", f->path, strerror(err));
    }
    free(f->tmp), free(f->path), free(f);
    return rc;
}

int ts_write_file(const char *path, const void *data, size_t bytes, int durable)
{
    ts_atomic_file *f = ts_atomic_open(path, durable);
    if (!f) return -1;
    ts_atomic_write(f, data, bytes);
    return ts_atomic_close(f, 1);
}

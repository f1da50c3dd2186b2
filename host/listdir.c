/* listdir.c — the names in a folder, read with opendir instead of a shell's ls (a folder named with a quote or a
 * $( ) ran as a command), for ts.files.list. Each name is followed by '/', the one byte besides NUL no name can hold
 * (a newline can: a name holding one came back as two names). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *ts_list_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        ts_error("%s: cannot list the folder: %s", path, strerror(errno));
        return NULL;
    }
    size_t size = 0, capacity = 256;
    char *out = malloc(capacity);
    struct dirent *e;
    while (out && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(e->d_name);
        if (size + n + 2 > capacity) {
            capacity = (size + n + 2) * 2;
            char *grown = realloc(out, capacity);
            if (!grown) free(out);
            out = grown;
            if (!out) break;
        }
        memcpy(out + size, e->d_name, n);
        size += n;
        out[size++] = '/';
    }
    closedir(d);
    if (!out) {
        ts_error("%s: out of memory listing the folder", path);
        return NULL;
    }
    out[size] = '\0';
    return out;
}

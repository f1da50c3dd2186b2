/* doctor.c — what a person needs when tshost, or its GPU, does not work: the build, where the bindings
 * are read from, threads, the processor and the CPU kernels chosen, the GPU and why it did not start, the
 * versions of CUDA's libraries and the files they were loaded from, and the environment that steers them.
 * `tshost --doctor` prints it; ts.doctor() returns it. */
#define _GNU_SOURCE
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

typedef struct {
    char *out;
    size_t size, at;
} report;

static void add(report *r, const char *fmt, ...)
{
    if (r->at >= r->size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->out + r->at, r->size - r->at, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= r->size - r->at) {   /* full: the end says so (a long LD_LIBRARY_PATH cut it without a word) */
        static const char cut[] = "\n... (cut: the report is longer than its buffer)\n";
        if (r->size > sizeof cut) memcpy(r->out + r->size - sizeof cut, cut, sizeof cut);
        r->at = r->size;
        return;
    }
    r->at += (size_t)n;
}

/* the shared libraries the process has loaded that decide how it computes, with their paths */
static int add_library(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    static const char *const wanted[] = {"libcudart", "libcublas", "libcudnn", "libcuda.", "libopenblas", "libluajit",
                                         "libgomp", "libreadline"};
    const char *name = info->dlpi_name, *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        if (!strncmp(base, wanted[i], strlen(wanted[i]))) {
            add(data, "  %s\n", name);
            break;
        }
    return 0;
}

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(out, size, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
}

int ts_doctor_report(char *out, size_t size, const char *root)
{
    report r = {out, size, 0};
    char text[1024], path[4096];
    out[0] = 0;
    add(&r, "tshost doctor\n");
    add(&r, "build: %s gcc %s, %s\n", ts_cuda_built() ? "with CUDA," : "CPU only,", __VERSION__,
        ts_cuda_built() ? "CUDA libraries linked at build time" : "no CUDA libraries");
    snprintf(path, sizeof path, "%s/host/ts.h", root ? root : ".");
    add(&r, "bindings: %s/bindings, %s %s\n", root ? root : ".", path,
        access(path, R_OK) ? "MISSING (set TSHOST_ROOT to the folder holding bindings/ and host/ts.h)" : "found");
    add(&r, "threads: %d for the kernels, %ld cores online\n", ts_get_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    cpu_model(text, sizeof text);
    add(&r, "cpu: %s\n", text);
    ts_device_about(TS_CPU, text, sizeof text);
    add(&r, "  %s\n", text);
    if (!ts_cuda_built()) {
        add(&r, "cuda: not built in\n");
    } else {
        if (ts_cuda_available()) add(&r, "cuda: %s\n", ts_cuda_device_name());
        else add(&r, "cuda: not available: %s\n", ts_cuda_unavailable_reason());
        ts_device_about(TS_CUDA, text, sizeof text);
        add(&r, "  %s\n", text);
    }
    add(&r, "libraries loaded:\n");
    dl_iterate_phdr(add_library, &r);
    add(&r, "environment:\n");
    static const char *const vars[] = {"TSHOST_LIBRARIES", "TSHOST_DEVICE", "TSHOST_THREADS", "TSHOST_CPU", "TSHOST_ROOT",
                                       "TSHOST_CUDA_SYNC",
                                       "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "LD_LIBRARY_PATH"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        add(&r, "  %s=%s\n", vars[i], getenv(vars[i]) ? getenv(vars[i]) : "(unset)");
    return 0;
}

#!/bin/sh
# tshost, run from an unpacked release folder (made by `make dist`): nothing installed, nothing read from
# outside the folder but the C library and, for the GPU, CUDA's own libraries. Those are looked for in
# CUDA_HOME, /usr/local/cuda, the system's library folders and the nvidia packages of a Python (TSHOST_PYTHON,
# else python3), or only in the folders TSHOST_CUDA_LIBS lists; the GPU build runs when the runtime, cuBLAS
# and cuDNN are all found, the CPU build otherwise.
# Where they were found, or what was missing, is in TSHOST_LIBRARIES (tshost --doctor prints it).
here=$(cd "$(dirname "$0")" && pwd)
export TSHOST_ROOT="$here"
export TSHOST_PROGRAM="$here/tshost"   # ts.program: what a sweep's runs and the tests start, this launcher again

candidates="${CUDA_HOME:+$CUDA_HOME/lib64 $CUDA_HOME/lib} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib"
python=${TSHOST_PYTHON:-python3}
if [ -n "${TSHOST_CUDA_LIBS+set}" ]; then
    candidates=$TSHOST_CUDA_LIBS   # the folders to search, and only those
elif command -v "$python" >/dev/null 2>&1; then
    nvidia=$("$python" -c 'import nvidia, sys; print(" ".join(nvidia.__path__))' 2>/dev/null)
    for root in $nvidia; do
        for lib in "$root"/*/lib; do [ -d "$lib" ] && candidates="$candidates $lib"; done
    done
fi

# the first folder holding each library; all three found: the GPU build
found="" path="" missing=""
for want in libcudart.so.13 libcublas.so.13 libcudnn.so.9; do
    at=""
    for dir in $candidates; do
        if [ -e "$dir/$want" ]; then at=$dir; break; fi
    done
    if [ -n "$at" ]; then
        found="$found $want in $at;"
        case ":$path:" in *":$at:"*) ;; *) path="${path:+$path:}$at" ;; esac
    else
        missing="$missing $want"
    fi
done
if [ -z "$missing" ] && [ -x "$here/bin/tshost-cuda" ]; then
    export TSHOST_LIBRARIES="GPU build:$found"
    export LD_LIBRARY_PATH="$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    exec "$here/bin/tshost-cuda" "$@"
fi
export TSHOST_LIBRARIES="CPU build: not found:${missing:- (no GPU build in this release)}"
exec "$here/bin/tshost-cpu" "$@"

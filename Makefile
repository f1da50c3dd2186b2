# tshost — build, test, run, benchmark.
#   make deps    install missing Debian packages (apt-get; sudo when not root)
#   make         build ./tshost, with the CUDA path when nvcc is found (CUDA=0: CPU only)
#   make test    build and run every test, the file readers also under AddressSanitizer
#                (ends with "N passed, N failed, N skipped"); make testenv first gets the Python tools some
#                tests read tshost's files with (TensorBoard, onnx, onnxruntime) into build/testenv
#   make run     deps + build + the main job
#   make bench   training and inference throughput against PyTorch on this machine (the reference network
#                and the one make run trains, each in fp32 and bf16 mixed precision; on the GPU when there is one)
#   make dist    a release folder and tarball in dist/ that runs anywhere (glibc >= 2.34) without installing
#   make asan    the file readers' tests (pickle, safetensors, image fuzzing) under AddressSanitizer and
#                UndefinedBehaviorSanitizer (signed overflow included)
#   make emu     tests/test_cuda.lua against an emulated GPU on the CPU (tests/cuda_emu): the GPU code runs without one
#                (the layer tests again with the threads in reverse order, and under AddressSanitizer)
#   make lanes16 the convolution tests with AVX-512's 16-lane Winograd transforms in plain C, under the same
#                sanitizers, on any processor

CC      ?= cc
CFLAGS  ?= -O3 -march=x86-64-v3 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fopenmp -Ihost \
           $(shell pkg-config --cflags luajit openblas 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs luajit openblas 2>/dev/null) -lreadline -lpthread -lm
LDFLAGS += -fopenmp -rdynamic

# The CUDA path: nvcc on the PATH or under CUDA_HOME; cuDNN and cuBLAS beside the runtime
CUDA_HOME ?= /usr/local/cuda
CUDA      ?= 1
NVCC      := $(if $(filter 1,$(CUDA)),$(or $(shell command -v nvcc 2>/dev/null),$(wildcard $(CUDA_HOME)/bin/nvcc)))
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS ?= -O3 -std=c++20 --extended-lambda $(CUDA_ARCH) -Xcompiler -Wall
ifneq ($(NVCC),)
CUDA_DEFS  = -DTS_WITH_CUDA
CUDA_SRC   = $(wildcard kernels/cuda/*.cu)
CUDA_LIBS  = -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib \
             -lcudnn -lcublas -lcudart -lstdc++
endif

# python3-venv: for make testenv only (the tests' Python tools); tshost itself needs no Python
DEB_PACKAGES = gcc make pkg-config luajit libluajit-5.1-dev libopenblas-dev libstb-dev libreadline-dev python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

HOST_SRC   = $(wildcard host/*.c)
KERNEL_SRC = $(wildcard kernels/cpu/*.c)
# BUILD: where the objects go (make dist builds a CPU-only copy in build/cpu); OUT: the program linked from them
BUILD ?= build
OUT   ?= tshost
OBJ = $(patsubst %.c,$(BUILD)/%.o,$(HOST_SRC) $(KERNEL_SRC)) $(patsubst %.cu,$(BUILD)/%.o,$(CUDA_SRC))
HEADERS = host/ts.h host/internal.h kernels/kernels.h kernels/ops.def $(wildcard kernels/cpu/*.h)

all: $(OUT)

$(OUT): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CUDA_LIBS)

# objects are rebuilt when the build switches between CPU-only and CUDA
$(BUILD)/config: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CUDA_DEFS)' | cmp -s - $@ || echo '$(CUDA_DEFS)' > $@

$(BUILD)/%.o: %.c $(HEADERS) kernels/pointwise.h $(BUILD)/config
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CUDA_DEFS) -c -o $@ $<

# the CUDA kernels include the shared kernel headers only (not the CPU kernels' nor the host's): a change there
# does not recompile them, the slowest objects to build
$(BUILD)/kernels/cuda/%.o: kernels/cuda/%.cu kernels/kernels.h kernels/ops.def kernels/pointwise.h kernels/cuda/common.cuh
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I$(CUDA_HOME)/include -DTS_WITH_CUDA -c -o $@ $<

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "all Debian packages present"; fi

# the readers' fuzz tests under AddressSanitizer, the release (make dist), the PyTorch fixtures and the
# precision tests and the convolution algorithms under every CPU path this processor runs (TSHOST_CPU; generic is the avx2
# path), then the whole suite on the best path (its summary line ends the output)
test: tshost asan lanes16 emu dist testenv
	@for path in avx2 avx512 avx512bf16 amx; do \
	  if TSHOST_CPU=$$path ./tshost -e 'x = 1' 2>/dev/null; then \
	    echo "== the $$path path"; \
	    TSHOST_CPU=$$path ./tshost tests/run.lua test_torch_fixtures || exit 1; \
	    TSHOST_CPU=$$path ./tshost tests/run.lua test_precision || exit 1; \
	    TSHOST_CPU=$$path ./tshost tests/run.lua test_conv || exit 1; \
	  else echo "== the $$path path: this processor cannot run it"; fi; \
	done
	./tshost tests/run.lua

# What only the tests use: Python packages to read tshost's files with other tools' own readers (TensorBoard's
# event reader, onnx's checker, onnxruntime), in a virtual environment in build/testenv from PyPI; and Debian's
# Slurm (a controller, a node daemon and munge), which the sweep test starts on this machine as one node. Where
# they cannot be had (no network, no root), the tests that need them skip, saying so.
TEST_PYTHON_PACKAGES = onnx onnxruntime tensorboard numpy
TEST_DEB_PACKAGES = slurmctld slurmd slurm-client munge
testenv:
	@build/testenv/bin/python -c 'import onnx, onnxruntime, tensorboard' 2>/dev/null || \
	  { python3 -m venv build/testenv && build/testenv/bin/pip install -q $(TEST_PYTHON_PACKAGES); } || \
	  echo "testenv: could not install $(TEST_PYTHON_PACKAGES) from PyPI; the tests that read with them will skip"
	@missing=$$(for p in $(TEST_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  echo "testenv: could not install $$missing; the Slurm test will skip"; fi

run: deps
	$(MAKE) tshost
	./tshost experiments/baseline.lua

bench: tshost
	./tshost scripts/bench.lua
	./tshost scripts/bench.lua model=recipe
	./tshost scripts/bench.lua precision=bf16
	./tshost scripts/bench.lua model=recipe precision=bf16

ASAN_OBJ = $(patsubst %.c,build/asan/%.o,$(HOST_SRC) $(KERNEL_SRC))

# CPU only: the sanitizers check the file readers, which never touch the GPU. Debian's stb_image and
# stb_image_write shift signed values left past their range (well-defined on gcc, UB in ISO C) and pass
# NULL to memcpy for 0 bytes, so UBSan's shift and nonnull checks are off for that one file;
# AddressSanitizer still guards every memory access of the decoders.
SANITIZE = -fsanitize=address,undefined
SANITIZE_CFLAGS = -O1 $(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
build/asan/host/stb.o: ASAN_EXCEPT = -fno-sanitize=shift,nonnull-attribute
build/asan/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ASAN_EXCEPT) -c -o $@ $<

build/asan/tshost: $(ASAN_OBJ)
	$(CC) $(LDFLAGS) $(SANITIZE) -o $@ $^ $(LDLIBS)

# The 16-lane Winograd transforms (AVX-512's) in plain C (simd.h's TSK_SIMD16_PORTABLE), the rest as in
# build/asan, under the same sanitizers: make test runs test_conv with them, so that the 16-lane code (runs that
# span tile rows, whole vectors stored into the buffers' padding) is checked on processors without AVX-512 too
build/lanes16/kernels/cpu/winograd.o: kernels/cpu/winograd.c $(HEADERS) kernels/pointwise.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) -Wno-psabi -DTSK_SIMD16_PORTABLE -c -o $@ $<

build/lanes16/tshost: $(filter-out build/asan/kernels/cpu/winograd.o,$(ASAN_OBJ)) build/lanes16/kernels/cpu/winograd.o
	$(CC) $(LDFLAGS) $(SANITIZE) -o $@ $^ $(LDLIBS)

lanes16: build/lanes16/tshost
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/lanes16/tshost tests/run.lua test_conv

asan: build/asan/tshost
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/asan/tshost tests/run.lua test_pickle
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/asan/tshost tests/run.lua test_serialize
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/asan/tshost tests/run.lua test_image_fuzz

# The CUDA emulation (tests/cuda_emu; emu.h says how it works): the same kernels/cuda sources compiled by the host's
# C++ compiler, each launch rewritten into a call (the sed below), linked with reference versions of the CUDA
# runtime, cuBLAS and cuDNN calls instead of the libraries. build/emu/tshost's CUDA device runs on the CPU, and
# make test runs test_cuda against it, so the GPU code (kernels, library calls, the host's device paths) runs and
# is tested where there is no GPU. It needs the CUDA toolkit's headers, not a GPU.
EMU_CXXFLAGS = -std=c++20 -O2 -g -Wall -Wno-unused-parameter -Wno-sign-compare -Wno-attributes -Wno-deprecated-declarations \
               -I$(CUDA_HOME)/include -Ikernels/cuda $(shell pkg-config --cflags openblas 2>/dev/null) -DTS_WITH_CUDA \
               -include tests/cuda_emu/emu.h
EMU_OBJ = $(patsubst kernels/cuda/%.cu,build/emu/%.o,$(wildcard kernels/cuda/*.cu)) build/emu/emu.o
EMU_LAUNCH = sed -E 's/([A-Za-z_][A-Za-z_0-9]*)<<<(.*)>>>\(/tsk_emu_launch(tsk_emu_config(\2), [\&](auto \&\&...a_) { \1(a_...); })(/'

build/emu/%.cpp: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	$(EMU_LAUNCH) $< > $@
build/emu/common.cuh: kernels/cuda/common.cuh
	@mkdir -p $(dir $@)
	$(EMU_LAUNCH) $< > $@
build/emu/%.o: build/emu/%.cpp build/emu/common.cuh tests/cuda_emu/emu.h kernels/kernels.h kernels/ops.def kernels/pointwise.h
	$(CXX) $(EMU_CXXFLAGS) -c -o $@ $<
build/emu/emu.o: tests/cuda_emu/emu.cpp tests/cuda_emu/emu.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c -o $@ $<

# build/emu-asan: the same under AddressSanitizer and UBSan (the host's objects too, with the CUDA path). Run with
# TSHOST_MEMORY_EXACT=1, device blocks are the size asked for and the emulation poisons their alignment padding,
# so a kernel or a library call reading or writing past a tensor's end stops with the access named.
EMU_ASAN_OBJ = $(patsubst %.c,build/emu-asan/%.o,$(HOST_SRC) $(KERNEL_SRC)) $(patsubst build/emu/%,build/emu-asan/cuda/%,$(EMU_OBJ))
build/emu-asan/host/stb.o: ASAN_EXCEPT = -fno-sanitize=shift,nonnull-attribute
build/emu-asan/%.o: %.c $(HEADERS) kernels/pointwise.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ASAN_EXCEPT) $(CUDA_DEFS) -c -o $@ $<
build/emu-asan/cuda/%.o: build/emu/%.cpp build/emu/common.cuh tests/cuda_emu/emu.h kernels/kernels.h kernels/ops.def kernels/pointwise.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) $(SANITIZE_CFLAGS) -c -o $@ $<
build/emu-asan/cuda/emu.o: tests/cuda_emu/emu.cpp tests/cuda_emu/emu.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) $(SANITIZE_CFLAGS) -c -o $@ $<

ifneq ($(NVCC),)
build/emu/tshost: $(filter-out $(BUILD)/kernels/cuda/%,$(OBJ)) $(EMU_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lstdc++
build/emu-asan/tshost: $(EMU_ASAN_OBJ)
	$(CC) $(LDFLAGS) $(SANITIZE) -o $@ $^ $(LDLIBS) -lstdc++

# then the layer-level tests again with every kernel's threads and blocks run last first (TSHOST_EMU_ORDER): a race
# gives another result in one of the two orders (test_cuda's two-process test compares a whole training's bits),
# and with the device's memory out of the host's reach (TSHOST_EMU_GUARD: a host access stops with its stack);
# and once more under AddressSanitizer with blocks of the exact size (build/emu-asan, above)
EMU_QUICK = every layer|group of 42|padded copy|bf16 convolutions|dropout|metric losses|distillation|sign search|pretrained|updateBatchNorm|cross entropy|finished on the GPU|no room
emu: build/emu/tshost build/emu-asan/tshost
	TSHOST_ROOT=$(CURDIR) build/emu/tshost tests/run.lua test_cuda
	TSHOST_EMU_ORDER=reverse TSHOST_EMU_GUARD=1 TSHOST_ROOT=$(CURDIR) \
	  build/emu/tshost tests/run.lua test_cuda '$(EMU_QUICK)'
	TSHOST_MEMORY_EXACT=1 ASAN_OPTIONS=detect_leaks=0 TSHOST_ROOT=$(CURDIR) \
	  build/emu-asan/tshost tests/run.lua test_cuda '$(EMU_QUICK)'
else
emu:
	@echo "emu: no CUDA toolkit (nvcc) found: the CUDA emulation is not built and test_cuda does not run under it"
endif

# A release that runs from any folder on a glibc >= 2.34 machine without installing anything:
# dist/tshost-VERSION-linux-x86_64/ and its .tar.gz hold a launcher (scripts/dist/tshost.sh), a GPU build
# (when nvcc was found) and a CPU-only build with an $$ORIGIN rpath, the non-system shared libraries they
# need (LuaJIT, OpenBLAS, readline, OpenMP, libstdc++ ...), the Lua bindings and ts.h, the tests and the
# experiments. CUDA's own libraries are not shipped: the launcher finds them (see the script).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST     = dist/tshost-$(VERSION)-linux-x86_64
DIST_RPATH = -Wl,-rpath,'$$ORIGIN/../lib'

dist: $(OBJ)
	$(MAKE) BUILD=build/cpu CUDA=0 OUT=build/cpu/tshost build/cpu/tshost
	rm -rf $(DIST) $(DIST).tar.gz
	mkdir -p $(DIST)/bin $(DIST)/lib $(DIST)/host
	$(CC) $(LDFLAGS) $(DIST_RPATH) -o $(DIST)/bin/tshost-cpu $(patsubst build/%,build/cpu/%,$(filter-out build/kernels/cuda/%,$(OBJ))) $(LDLIBS)
	$(if $(NVCC),$(CC) $(LDFLAGS) $(DIST_RPATH) -o $(DIST)/bin/tshost-cuda $(OBJ) $(LDLIBS) $(CUDA_LIBS))
	for lib in $$(ldd $(DIST)/bin/* | awk '/=> \// {print $$3}' | sort -u); do \
	  case $$(basename $$lib) in libc.so*|libm.so*|libpthread*|libdl.so*|librt.so*|ld-linux*|libcud*|libcublas*|libnv*) ;; \
	  *) cp -L $$lib $(DIST)/lib/ ;; esac; \
	done
	cp scripts/dist/tshost.sh $(DIST)/tshost
	cp host/ts.h $(DIST)/host/
	cp -r bindings tests experiments scripts README.md $(DIST)/
	tar -C dist -czf $(DIST).tar.gz $(notdir $(DIST))
	@echo "$(DIST).tar.gz: $$(du -h $(DIST).tar.gz | cut -f1)"

clean:
	rm -rf build dist tshost

.PHONY: all deps test testenv run bench asan lanes16 emu dist clean FORCE

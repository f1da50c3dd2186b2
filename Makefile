# tshost — build, test, run, benchmark.
#   make deps    install missing Debian packages (apt-get; sudo when not root)
#   make         build ./tshost
#   make test    build and run every test, the file readers also under AddressSanitizer
#                (ends with "N passed, N failed, N skipped")
#   make run     deps + build + the main job
#   make bench   training and inference throughput against PyTorch on this machine
#   make asan    the file readers' tests (pickle, safetensors fuzzing) under AddressSanitizer

CC      ?= cc
CFLAGS  ?= -O3 -march=x86-64-v3 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fopenmp -Ihost \
           $(shell pkg-config --cflags luajit openblas 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs luajit openblas 2>/dev/null) -lreadline -lpthread -lm
LDFLAGS += -fopenmp -rdynamic

DEB_PACKAGES = gcc make pkg-config luajit libluajit-5.1-dev libopenblas-dev libstb-dev libreadline-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

HOST_SRC   = $(wildcard host/*.c)
KERNEL_SRC = $(wildcard kernels/cpu/*.c)
OBJ = $(patsubst %.c,build/%.o,$(HOST_SRC) $(KERNEL_SRC))

all: tshost

tshost: $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: %.c host/ts.h host/internal.h kernels/cpu/cpu.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "all Debian packages present"; fi

# the readers' fuzz tests under AddressSanitizer first, then the whole suite (its summary line ends the output)
test: tshost asan
	./tshost tests/run.lua

run: deps
	$(MAKE) tshost
	./tshost experiments/baseline.lua

bench: tshost
	./tshost scripts/bench.lua

ASAN_OBJ = $(patsubst %.c,build/asan/%.o,$(HOST_SRC) $(KERNEL_SRC))

build/asan/%.o: %.c host/ts.h host/internal.h kernels/cpu/cpu.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -c -o $@ $<

build/asan/tshost: $(ASAN_OBJ)
	$(CC) $(LDFLAGS) -fsanitize=address,undefined -o $@ $^ $(LDLIBS)

asan: build/asan/tshost
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/asan/tshost tests/run.lua test_pickle
	TSHOST_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=0 build/asan/tshost tests/run.lua test_serialize

clean:
	rm -rf build tshost

.PHONY: all deps test run bench asan clean

# The front door.  Every target installs what is missing first (as root,
# from Debian's packages), then configures and builds with CMake.
#
#   make            build into build/
#   make check      every test, then the whole suite again under ASan+UBSan
#   make demo       build and run the main example end to end
#   make check-long 1,000 generated models against the reference
#   make bench      cnngen against PyTorch on the reference models
#   make int8-accuracy  float against int8 on Fashion-MNIST and the temperature series
#   make fuzz       every reader's libFuzzer target, FUZZ_SECONDS (300) each
#   make format     the C sources in the project's style (clang-format 14)
#   make install    install into PREFIX (/usr/local)
#   make clean

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PREFIX     ?= /usr/local
FUZZ_SECONDS ?= 300
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build check check-long test asan demo fuzz bench int8-accuracy format install clean

all: build

deps:
	@scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# intercept_tls_get_addr=0: up to GCC 13 (and LLVM 16) the sanitizer
# runtime takes a dynamic TLS block that malloc happened to place 16 bytes
# into a page for glibc 2.19's header, reads a bogus range from the words
# before it, and LeakSanitizer's tracer dies scanning it at exit ("Tracer
# caught signal 11").  libLLVM's thread_locals are such a block, so whether
# a run crashed depended on the heap's history: in CI, cnngen --emit=llvm
# on examples/lenet.cnn crashed every time (google/sanitizers#1322).
# Without the interceptor LeakSanitizer does not scan dynamic TLS, which
# can only add leak reports (pointers kept there alone), never hide one.
ASAN_OPTIONS_CHECK = detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCNNGEN_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=$(ASAN_OPTIONS_CHECK) \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

check: test asan

check-long: build
	cmake --build $(BUILD) --target check-long

# Benchmarks against PyTorch on the peers' models, same run (minutes).
# ONNX2C=PATH (an onnx2c executable or source tree) adds onnx2c beside them.
# Then the int8 predictors on the Cortex-M boards, in instructions (QEMU).
bench: build
	/usr/bin/python3 bench/run_bench.py --cnngen $(BUILD)/cnngen $(if $(ONNX2C),--onnx2c $(ONNX2C))
	/usr/bin/python3 bench/cortex_m_int8.py --cnngen $(BUILD)/cnngen

# The int8 accuracy table of docs/int8.md: trains the models it needs
# (about 25 minutes on two cores), then float against int8 (issue 17).
INT8_WORK ?= $(BUILD)/int8-accuracy
int8-accuracy: build
	/usr/bin/python3 examples/int8/accuracy.py $(BUILD)/cnngen runtime/include $(BUILD)/libcnnrt.a $(INT8_WORK)

demo: build
	@sh scripts/demo.sh $(BUILD)

fuzz:
	@scripts/install-deps --fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCNNGEN_FUZZ=ON -DCNNGEN_TESTS=OFF -DCNNGEN_LLVM=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_frontend fuzz_safetensors fuzz_data \
	    fuzz_predict_lines fuzz_program_args fuzz_onnx
	sh tests/fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)
	@# the lines of each reader its corpus reaches (clang's source coverage)
	CC=clang cmake -S . -B $(FUZZ_BUILD)/coverage -DCNNGEN_COVERAGE=ON -DCNNGEN_LLVM=OFF >/dev/null
	cmake --build $(FUZZ_BUILD)/coverage -j $(JOBS) --target replay_frontend replay_safetensors \
	    replay_data replay_predict_lines replay_program_args replay_onnx >/dev/null
	sh tests/fuzz/coverage.sh $(FUZZ_BUILD)/coverage $(FUZZ_BUILD)

format:
	@scripts/format

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# Thin convenience over CMake (the real build). Every target installs missing Debian packages first.
#   make demo      build the `ringflow` program only (Release, build/) and run the supervised demo topology
#                  (~20 s; DEMO_HTTP, DEMO_LOG_FORMAT)
#   make test      build and run the test suite (ctest)
#   make bench     build and run the benchmarks, JSON into bench/results/
#   make bench-gpu on a machine with a CUDA GPU: build-gpu/, ctest -L gpu, ringflow_bench_gpu (bench/run-gpu.sh)
#   make gpu-bundle  with nvcc, no GPU needed: gpu-bundle/ (<= 64 MiB), the GPU tests, the GPU benchmark and a
#                  `ringflow run` smoke with every library they need, for a GPU machine without our packages
#                  (there: bash gpu-bundle/run.sh; scripts/gpu-bundle.sh)
#   make sanitize  ASan+UBSan build (build-asan/) running the whole suite
#   make tsan      ThreadSanitizer build (build-tsan/) running the `tsan` label
#   make fuzz      clang/libFuzzer build (build-fuzz/), each target for FUZZ_SECONDS (default 30)
#   make format-check  clang-format-14 --dry-run --Werror over the tracked C/C++/CUDA sources (CI runs it)
#   make format    reformat them in place (.clang-format)
#   make clean     remove every build directory and gpu-bundle/
BUILD        ?= build
JOBS         ?= $(shell nproc)
CMAKE_FLAGS  ?=
FUZZ_SECONDS ?= 30
DEMO_HTTP    ?= 127.0.0.1:9750
DEMO_LOG_FORMAT ?= text
BENCH_OUT    ?= bench/results/ring-$(shell date +%Y-%m-%d).json
ACTORS_BENCH_OUT ?= bench/results/actors-$(shell date +%Y-%m-%d).json
RECOVERY_BENCH_OUT ?= bench/results/recovery-$(shell date +%Y-%m-%d).json
OPS_BENCH_OUT ?= bench/results/ops-$(shell date +%Y-%m-%d).json
LATENCY_BENCH_OUT ?= bench/results/latency-$(shell date +%Y-%m-%d).json
CLUSTER_BENCH_OUT ?= bench/results/cluster-$(shell date +%Y-%m-%d).json
CTEST        := ctest --output-on-failure --timeout 900 -j $(JOBS)
# No GPU toolchain in sanitizer builds: they check host code, and nvcc/hipcc cannot take -fsanitize.
# -O1 -g1 (line tables: enough for the sanitizers' stack traces) compiles about twice as fast as
# RelWithDebInfo's -O2 -g, and -O1 is what the sanitizers' own documentation recommends.
SAN_FLAGS    := -DRINGFLOW_UNITY=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DRINGFLOW_CUDA=OFF -DRINGFLOW_HIP=OFF -DRINGFLOW_BUILD_BENCH=OFF -DRINGFLOW_BUILD_EXAMPLES=OFF

.PHONY: deps build demo test bench bench-gpu gpu-bundle sanitize tsan fuzz format format-check clean

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

# The demo builds only what it runs: the `ringflow` program and its libraries (GPU backends
# included); `make test` in the same build folder then builds everything else.
demo: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS) --target ringflow
	RINGFLOW_LOG_FORMAT=$(DEMO_LOG_FORMAT) ./$(BUILD)/runtime/ringflow run examples/topologies/supervised-demo.yaml \
	  --http $(DEMO_HTTP) --summary-json $(BUILD)/demo-summary.json

test: build
	cd $(BUILD) && $(CTEST)

bench: build
	@mkdir -p bench/results
	./$(BUILD)/bench/ringflow_bench_ring --benchmark_out=$(BENCH_OUT) --benchmark_out_format=json
	./$(BUILD)/bench/ringflow_bench_actors --benchmark_out=$(ACTORS_BENCH_OUT) --benchmark_out_format=json
	./$(BUILD)/bench/ringflow_bench_recovery --benchmark_out=$(RECOVERY_BENCH_OUT) --benchmark_out_format=json
	./$(BUILD)/bench/ringflow_bench_ops --benchmark_out=$(OPS_BENCH_OUT) --benchmark_out_format=json
	./$(BUILD)/bench/ringflow_bench_latency --benchmark_out=$(LATENCY_BENCH_OUT) --benchmark_out_format=json
	./$(BUILD)/bench/ringflow_bench_cluster --benchmark_out=$(CLUSTER_BENCH_OUT) --benchmark_out_format=json

bench-gpu: deps
	bash bench/run-gpu.sh

# The GPU bundle (docs/BENCHMARKS.md "The GPU bundle"): builds only what it carries, in $(BUILD).
gpu-bundle: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS) --target ringflow_gpu_bundle_targets
	bash scripts/gpu-bundle.sh $(BUILD) gpu-bundle

sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGFLOW_SANITIZE=address,undefined $(SAN_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  RINGFLOW_STRESS_MESSAGES=2000000 $(CTEST)

tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGFLOW_SANITIZE=thread $(SAN_FLAGS)
	cmake --build build-tsan -j $(JOBS) --target ringflow_tsan_tests
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/.ci/tsan.supp" \
	  $(CTEST) -L tsan

fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DRINGFLOW_FUZZ_ONLY=ON
	cmake --build build-fuzz -j $(JOBS)
	bash tests/fuzz/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

# The tracked C/C++/CUDA sources (flatc's output lives in build directories, never tracked).
FORMAT_SOURCES = $(shell git ls-files '*.cpp' '*.hpp' '*.h' '*.cu' '*.cuh')

format-check: deps
	@clang-format-14 --dry-run --Werror $(FORMAT_SOURCES) && echo "format-check: $(words $(FORMAT_SOURCES)) files formatted"

format: deps
	clang-format-14 -i $(FORMAT_SOURCES)

clean:
	rm -rf build build-asan build-tsan build-fuzz build-gpu gpu-bundle

#!/usr/bin/env bash
# bench/run-gpu.sh — the GPU check in one command, on a machine with an NVIDIA GPU: configures a
# Release build with the CUDA backend, builds the GPU benchmark and the GPU tests, runs the tests
# (ctest -L gpu), then ringflow_bench_gpu (3 repetitions, JSON), and records the environment.
#
# Usage: bench/run-gpu.sh [--install] [BUILD_DIR] [-- BENCHMARK_ARGS...]
#   BUILD_DIR   build directory (default: $BUILD_DIR, else build-gpu); relative to the repository root
#   --install   first run scripts/install-deps.sh (never run otherwise)
#   -- ARGS     passed on to ringflow_bench_gpu (e.g. -- --benchmark_filter=RoundTrip)
# Environment: CUDA_ARCH (default 90: sm_90, H100/H200), OUT (results directory, default
#   bench/results), the benchmark's own RINGFLOW_GPU_BENCH_* (see bench/gpu_bench.cu).
# Writes: $OUT/gpu-bench.json (--benchmark_out), $OUT/gpu-bench.txt (console), $OUT/gpu-ctest.txt
#   (the tests' output), $OUT/gpu-env.txt (date, host, CPU, nvidia-smi, nvcc --version, commit).
# Exit: 77 when the benchmark found no usable CUDA device (skipped), else 0 when the tests and the
#   benchmark passed, 1 when either failed (both always run; a skipped GPU test is a failure here,
#   and so is a benchmark run that ended with an error: ringflow_bench_gpu then exits 1), 2 on bad
#   usage; a failed configure or build exits with its own status. For a GPU machine without the
#   Debian packages (the lent device machine), use `make gpu-bundle` instead.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

install=0
build_dir="${BUILD_DIR:-build-gpu}"
bench_args=()
while (($#)); do
  case "$1" in
    --install) install=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; bench_args=("$@"); break ;;
    -*) echo "run-gpu: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) build_dir="$1" ;;
  esac
  shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
arch="${CUDA_ARCH:-90}"
out_dir="${OUT:-$root/bench/results}"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

if ((install)); then
  scripts/install-deps.sh
fi

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
echo "== configure $build_dir (Release, CUDA architectures $arch)"
cmake -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRINGFLOW_CUDA=ON \
  -DRINGFLOW_CUDA_ARCHITECTURES="$arch" -DRINGFLOW_HIP=OFF
echo "== build"
cmake --build "$build_dir" --parallel "$(nproc)" --target ringflow_bench_gpu ringflow_test_gpu_cuda ringflow_test_gpu_device \
  ringflow_test_gpu_worker_cuda

echo "== environment -> $out_dir/gpu-env.txt"
nvcc_bin="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -n) ($(uname -srm))"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc) (allowed)"
  echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "cuda architectures: $arch"
  echo
  echo "== nvidia-smi"
  if command -v nvidia-smi >/dev/null; then nvidia-smi 2>&1 || echo "(nvidia-smi failed)"; else echo "(no nvidia-smi)"; fi
  echo
  echo "== nvcc --version"
  "$nvcc_bin" --version 2>&1 || echo "(no working nvcc at $nvcc_bin)"
} >"$out_dir/gpu-env.txt"

echo "== ctest -L gpu"
test_status=0
ctest --test-dir "$build_dir" -L gpu --output-on-failure --no-tests=error 2>&1 | tee "$out_dir/gpu-ctest.txt" ||
  test_status=${PIPESTATUS[0]}
# This script is for a machine with a GPU: a test that skipped (exit 77, no usable device) failed.
if ((test_status == 0)) && grep -q '(Skipped)' "$out_dir/gpu-ctest.txt"; then
  echo "== gpu tests: some were SKIPPED (no usable CUDA device?) — on a GPU machine a skip is a failure"
  test_status=1
fi
if ((test_status == 0)); then echo "== gpu tests: passed"; else echo "== gpu tests: FAILED ($test_status)"; fi

echo "== ringflow_bench_gpu -> $out_dir/gpu-bench.json"
bench_status=0
"$build_dir/bench/ringflow_bench_gpu" --benchmark_repetitions=3 --benchmark_report_aggregates_only=false \
  --benchmark_out="$out_dir/gpu-bench.json" --benchmark_out_format=json "${bench_args[@]}" 2>&1 |
  tee "$out_dir/gpu-bench.txt" || bench_status=${PIPESTATUS[0]}

if ((bench_status == 77)); then
  echo "== ringflow_bench_gpu: skipped (no usable CUDA device)"
  exit 77
fi
if ((bench_status != 0)); then echo "== ringflow_bench_gpu: FAILED ($bench_status)"; fi
if ((test_status != 0 || bench_status != 0)); then exit 1; fi
echo "== done: results in $out_dir"

#!/usr/bin/env bash
# scripts/gpu-bundle.sh — assembles the GPU bundle: a self-contained folder that runs the GPU tests,
# the GPU benchmark and a `ringflow run` smoke on a GPU machine that has an NVIDIA driver but none
# of ringflow's Debian packages (no CAF, yaml-cpp, spdlog, fmt, libbenchmark, ...). It copies what
# an already-built build directory holds; `make gpu-bundle` builds it first (docs/BENCHMARKS.md,
# "The GPU bundle").
#
# Usage: scripts/gpu-bundle.sh BUILD_DIR [DEST]
#   BUILD_DIR  a configured and built ringflow build directory with the CUDA backend (target
#              ringflow_gpu_bundle_targets built)
#   DEST       the bundle folder (default: gpu-bundle); replaced if it holds an earlier bundle,
#              refused if it holds anything else
# Writes DEST/:
#   bin/          ringflow (CUDA backend only, no HIP), ringflow_test_gpu_cuda,
#                 ringflow_test_gpu_device, ringflow_test_gpu_ll16 (16-byte units across PCIe), ringflow_bench_gpu, ringflow_bench_gpu_recovery (a trap in a
#                 CUDA kernel-host worker -> first reply of its replacement), and ringflow_test_gpu_worker_cuda (the
#                 kernel-host worker ringflow_test_gpu_cuda starts from its own folder); stripped copies
#   lib/          every shared library those need (ldd, transitive) except the system's: the glibc
#                 family, libstdc++, libgcc_s and the NVIDIA driver's (libcuda, libnvidia-*) — the
#                 real file under its SONAME
#   tests.txt     ringflow_test_gpu_cuda's test case names, one a line (run.sh runs each alone)
#   topologies/   cuda-echo.yaml and cuda-worker.yaml, the smoke topologies (validated here with the
#                 bundled program)
#   run.sh        scripts/gpu-bundle/run.sh: what the GPU machine runs (its header says how)
#   MANIFEST.txt  commit (and whether the tree had local changes), date, build type, CUDA
#                 architectures, the glibc/GLIBCXX versions the bundle needs, every file and its size
# Exit: 0 the bundle is complete and within the size limit (64 MiB: what a device call carries), 1 a
#   binary or library is missing (the message names the CMake target or library), the topology does
#   not validate, or the bundle is too large; 2 bad usage.
#
# DEST is assembled in DEST.partial and moved into place only when complete (a failure leaves none).
# Sourced (tests/gpu_bundle_selfcheck.sh does), it only defines gpu_bundle_is_system_lib (the one
# list of libraries the bundle leaves to the machine) and gpu_bundle_programs (what bin/ holds).
set -uo pipefail

# gpu_bundle_is_system_lib NAME: true for a library the GPU machine provides itself (NAME as ldd
# prints it: a SONAME or a loader path). Everything else travels in the bundle.
gpu_bundle_is_system_lib() {
  local name="${1##*/}"
  case "$name" in
    linux-vdso.so* | linux-gate.so* | ld-linux*.so* | ld64.so*) return 0 ;;
    libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.*) return 0 ;;
    libutil.so.* | libanl.so.*) return 0 ;;
    libstdc++.so.* | libgcc_s.so.*) return 0 ;;
    libcuda.so* | libnvidia-*) return 0 ;;
  esac
  return 1
}

# The programs the bundle carries: "bundle-name build-path CMake-target".
gpu_bundle_programs() {
  cat <<'EOF'
ringflow gpu-bundle-program/ringflow ringflow_bundle_program
ringflow_test_gpu_cuda tests/gpu/ringflow_test_gpu_cuda ringflow_test_gpu_cuda
ringflow_test_gpu_device tests/gpu/ringflow_test_gpu_device ringflow_test_gpu_device
ringflow_test_gpu_ll16 tests/gpu/ringflow_test_gpu_ll16 ringflow_test_gpu_ll16
ringflow_test_gpu_worker_cuda tests/gpu/ringflow_test_gpu_worker_cuda ringflow_test_gpu_worker_cuda
ringflow_bench_gpu bench/ringflow_bench_gpu ringflow_bench_gpu
ringflow_bench_gpu_recovery bench/ringflow_bench_gpu_recovery ringflow_bench_gpu_recovery
EOF
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi  # sourced: the definitions only

readonly max_bytes=$((64 * 1024 * 1024))
say() { echo "gpu-bundle: $*"; }
die() {
  echo "gpu-bundle: error: $*" >&2
  exit 1
}

if (($# < 1 || $# > 2)) || [[ "$1" == -* ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$1"
dest="${2:-gpu-bundle}"
[[ -f "$build/CMakeCache.txt" ]] || die "$build is not a configured build directory (no CMakeCache.txt)"
build="$(cd "$build" && pwd)"

# ---- the binaries --------------------------------------------------------------------------------
missing=()
while read -r name path target; do
  [[ -x "$build/$path" ]] || missing+=("$build/$path (CMake target $target)")
done < <(gpu_bundle_programs)
if ((${#missing[@]})); then
  printf 'gpu-bundle: error: missing %s\n' "${missing[@]}" >&2
  die "build them first: cmake --build $build --target ringflow_gpu_bundle_targets (needs the CUDA backend: nvcc at configure time)"
fi

if [[ -e "$dest" && -n "$(ls -A "$dest" 2>/dev/null)" && ! -f "$dest/MANIFEST.txt" ]]; then
  die "$dest exists and is not a GPU bundle (no MANIFEST.txt): not replacing it"
fi
# Assembled beside DEST and moved into place only when complete: a failure leaves no half bundle.
# The tree's state, before this script writes anything (its partial folder would count).
commit="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
dirty=""
if [[ "$commit" != unknown && -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]]; then dirty=" (with local changes)"; fi
final="$(mkdir -p "$(dirname "$dest")" && cd "$(dirname "$dest")" && pwd)/$(basename "$dest")"
dest="$final.partial"
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/topologies" || die "cannot create $dest"
trap '[[ -d "$dest" ]] && rm -rf "$dest"' EXIT

while read -r name path _; do
  cp "$build/$path" "$dest/bin/$name" || die "cannot copy $build/$path"
  strip --strip-unneeded "$dest/bin/$name" || die "strip failed on bin/$name"
done < <(gpu_bundle_programs)

# ---- the libraries: ldd lists each binary's whole closure; ldd of every library copied as well
# catches a library whose closure the binaries' view does not show (it costs nothing) -------------
declare -A seen=()
queue=("$dest"/bin/*)
while ((${#queue[@]})); do
  file="${queue[0]}"
  queue=("${queue[@]:1}")
  ldd_out="$(ldd "$file" 2>&1)" || die "ldd $file failed: $ldd_out"
  if grep -q 'not found' <<<"$ldd_out"; then
    die "$file: a library cannot be found on this machine:"$'\n'"$(grep 'not found' <<<"$ldd_out")"
  fi
  while read -r soname arrow resolved _; do
    [[ "$arrow" == "=>" && -n "$resolved" && "$resolved" == /* ]] || continue
    gpu_bundle_is_system_lib "$soname" && continue
    [[ -n "${seen[$soname]:-}" ]] && continue
    seen[$soname]="$resolved"
    cp -L "$resolved" "$dest/lib/$soname" || die "cannot copy $resolved"
    chmod 0644 "$dest/lib/$soname"
    queue+=("$dest/lib/$soname")
  done <<<"$ldd_out"
done
for soname in $(printf '%s\n' "${!seen[@]}" | sort); do say "lib/$soname <- ${seen[$soname]}"; done

# ---- the test list, the smoke topology, run.sh -----------------------------------------------------
# --list-test-names-only needs no device (tests/gpu/gpu_test_main.cpp); Catch2 v2 exits with the
# number of test cases listed (at most 255), which doubles as a check that the listing completed.
LD_LIBRARY_PATH="$dest/lib" "$dest/bin/ringflow_test_gpu_cuda" --list-test-names-only >"$dest/tests.txt"
list_status=$?
# A name Catch2 quotes in its listing (one that starts with '#') is unquoted: tests.txt holds names.
sed -i -e 's/^"\(#.*\)"$/\1/' -e '/^$/d' "$dest/tests.txt"
cases=$(wc -l <"$dest/tests.txt")
expected_status=$((cases < 255 ? cases : 255))
((cases > 0)) || die "ringflow_test_gpu_cuda --list-test-names-only listed no test case"
((list_status == expected_status)) ||
  die "ringflow_test_gpu_cuda --list-test-names-only exited $list_status after listing $cases test cases"

cp "$root/scripts/gpu-bundle/topologies/"*.yaml "$dest/topologies/" || die "cannot copy the topologies"
for t in "$dest"/topologies/*.yaml; do
  out="$(LD_LIBRARY_PATH="$dest/lib" "$dest/bin/ringflow" validate "$t" 2>&1)" ||
    die "topologies/${t##*/} does not validate:"$'\n'"$out"
done
cp "$root/scripts/gpu-bundle/run.sh" "$dest/run.sh" && chmod 0755 "$dest/run.sh" || die "cannot copy run.sh"

# ---- the manifest ------------------------------------------------------------------------------------
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -1; }
# The newest symbol versions the bundle's files require of the machine's glibc and libstdc++.
needs() { objdump -T "$dest"/bin/* "$dest"/lib/* 2>/dev/null | grep -o "$1_[0-9.]*" | sort -uV | tail -1; }
nvcc="$(cache_value CMAKE_CUDA_COMPILER)"
cuda_release="$("$nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*' | cut -d' ' -f2)"
{
  echo "commit: $commit$dirty"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "built on: $(uname -n), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "build directory: $build"
  echo "build type: $(cache_value CMAKE_BUILD_TYPE)"
  echo "cuda architectures: $(cache_value RINGFLOW_CUDA_ARCHITECTURES)"
  echo "nvcc: $nvcc (CUDA ${cuda_release:-?})"
  echo "needs of the machine: x86-64, $(needs GLIBC) or newer, $(needs GLIBCXX) or newer (libstdc++), an NVIDIA driver for CUDA ${cuda_release:-?}"
  echo "test cases: $cases (tests.txt)"
  echo "files (bytes):"
  (cd "$dest" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort | while read -r f; do
    printf '  %10d  %s\n' "$(stat -c %s "$f")" "$f"
  done)
  echo "total of the files above: $(cd "$dest" && find . -type f ! -name MANIFEST.txt -printf '%s\n' | awk '{ s += $1 } END { print s }') bytes"
} >"$dest/MANIFEST.txt"

total=$(du -sb "$dest" | cut -f1)
mib=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
((total <= max_bytes)) || die "$final would be $mib MiB ($total bytes): more than the 64 MiB a device call carries"
files=$(find "$dest" -type f | wc -l)
rm -rf "$final" && mv "$dest" "$final" || die "cannot move the bundle into $final"
say "$final: $files files, $mib MiB ($total bytes), $cases test cases, commit ${commit:0:12}$dirty"
if [[ "$final" == "$root"/* ]]; then
  rel="${final#"$root"/}"
  say "on the GPU machine: bash $rel/run.sh (device tool: run, carry [\"$rel\"]; results in \$OUT)"
fi

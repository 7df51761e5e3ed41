#!/usr/bin/env bash
# tests/gpu_bundle_selfcheck.sh — ctest gpu_bundle_selfcheck: the GPU bundle (scripts/gpu-bundle.sh)
# assembled from a build and checked on a machine WITHOUT a usable CUDA device, so a bundle that
# cannot run on the GPU machine is found here, before a device call is spent on it.
#
# Usage: tests/gpu_bundle_selfcheck.sh BUILD_DIR [--bundle DIR]
#   BUILD_DIR     a build with the CUDA backend and ringflow_gpu_bundle_targets built
#   --bundle DIR  check the bundle already in DIR (e.g. gpu-bundle/ from `make gpu-bundle`) instead of
#                 assembling BUILD_DIR/gpu-bundle-selfcheck
# Checks, each printed, in this order:
#   (a) bin/ holds every program scripts/gpu-bundle.sh lists, and every library a bundled program or
#       library needs is a system library (the list in scripts/gpu-bundle.sh: glibc, libstdc++,
#       libgcc_s, the NVIDIA driver's) or resolves, with the bundle's LD_LIBRARY_PATH, to a file
#       inside the bundle's lib/
#   (g) each bundled program's device code (.nv_fatbin) is the build's, byte for byte
#   (b) the bundle is at most 64 MiB (du -sb)
#   (e) tests.txt is the build's ringflow_test_gpu_cuda --list-test-names-only, line for line
#   (f) the bundled ringflow validates topologies/cuda-echo.yaml and cuda-worker.yaml
#   (c) this machine has no usable CUDA device (`ringflow devices --json`; else exit 77, skipped),
#       and each bundled GPU program exits 77 printing its own "no usable ... cuda ... device" line;
#       the bundled `ringflow run` of each topology exits 4 naming the unavailable backend
#   (d) run.sh (budget 120 s) exits 3 saying "no usable CUDA device", its gpu-run.json says
#       "passed": false, "no_device": true, every GPU program step skip-is-failure (so every test
#       spec selected its case alone), every test case counted, and it wrote at most 8 files
# Exit: 0 every check passed; 1 a check failed (the message says which and why); 77 skipped: this
#   machine has a usable CUDA device (these checks are for machines without one; run the bundle's
#   run.sh there instead); 2 bad usage.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "gpu_bundle_selfcheck: $*"; }
fail() {
  echo "gpu_bundle_selfcheck: FAILED: $*"
  exit 1
}
if (($# != 1 && $# != 3)) || { (($# == 3)) && [[ "$2" != --bundle ]]; }; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
fi
build="$(cd "$1" && pwd)" || exit 2
# shellcheck source=../scripts/gpu-bundle.sh
source "$root/scripts/gpu-bundle.sh"  # gpu_bundle_is_system_lib, gpu_bundle_programs

if (($# == 3)); then
  bundle="$3"
else
  bundle="$build/gpu-bundle-selfcheck"
  say "assembling $bundle"
  bash "$root/scripts/gpu-bundle.sh" "$build" "$bundle" || fail "scripts/gpu-bundle.sh $build $bundle failed"
fi
bundle="$(cd "$bundle" && pwd)" || fail "no bundle at $bundle"
lib="$bundle/lib"
export LD_LIBRARY_PATH="$lib"
scratch="$(mktemp -d)" || exit 1
trap 'rm -rf "$scratch"' EXIT

# ---- (a) every non-system library resolves inside the bundle -----------------------------------------------
say "(a) every library the bundled files need is the system's or inside $lib"
while read -r name _ target; do
  [[ -x "$bundle/bin/$name" ]] || fail "(a) the bundle has no bin/$name (CMake target $target)"
done < <(gpu_bundle_programs)
inside=0
for f in "$bundle"/bin/* "$lib"/*; do
  [[ -f "$f" ]] || fail "(a) the bundle has no ${f#"$bundle"/}"
  out="$(ldd "$f" 2>&1)" || fail "(a) ldd ${f#"$bundle"/} failed: $out"
  if grep -q 'not found' <<<"$out"; then fail "(a) ${f#"$bundle"/}: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"; fi
  while read -r soname arrow resolved _; do
    [[ "$arrow" == "=>" ]] || continue
    gpu_bundle_is_system_lib "$soname" && continue
    real="$(readlink -f "$resolved")"
    [[ "$real" == "$lib/"* ]] ||
      fail "(a) ${f#"$bundle"/} needs $soname, which resolves to $resolved — outside the bundle (not copied into lib/?)"
    inside=$((inside + 1))
  done <<<"$out"
done
((inside > 0)) || fail "(a) no library resolved inside the bundle: the bundled programs need libcudart at least"
say "(a) ok: $inside non-system dependencies, all inside lib/ ($(ls "$lib" | wc -l) files)"

# ---- (g) the device code survived the copy and strip ----------------------------------------------------------
say "(g) each bundled program's device code (.nv_fatbin) is the build's, byte for byte"
while read -r name path _; do
  section() { objcopy -O binary --only-section=.nv_fatbin "$1" "$2" 2>/dev/null && [[ -s "$2" ]]; }
  section "$build/$path" "$scratch/built.fatbin" || fail "(g) $build/$path has no .nv_fatbin section (no device code?)"
  section "$bundle/bin/$name" "$scratch/bundled.fatbin" || fail "(g) bin/$name has no .nv_fatbin section"
  cmp -s "$scratch/built.fatbin" "$scratch/bundled.fatbin" ||
    fail "(g) bin/$name's device code differs from $build/$path's (damaged by strip, or the bundle is from another build)"
done < <(gpu_bundle_programs)
say "(g) ok"

# ---- (b) the size -------------------------------------------------------------------------------------------
bytes=$(du -sb "$bundle" | cut -f1)
say "(b) size: $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB), limit 64 MiB"
((bytes <= 64 * 1024 * 1024)) || fail "(b) the bundle is larger than the 64 MiB a device call carries"

# ---- (e) the test list ----------------------------------------------------------------------------------------
say "(e) tests.txt lists the test cases of the build's ringflow_test_gpu_cuda"
[[ -s "$bundle/tests.txt" ]] || fail "(e) tests.txt is missing or empty"
LD_LIBRARY_PATH="" "$build/tests/gpu/ringflow_test_gpu_cuda" --list-test-names-only | sed 's/^"\(#.*\)"$/\1/' >"$scratch/listed"
if ! diff -u "$scratch/listed" "$bundle/tests.txt" >"$scratch/diff"; then
  cat "$scratch/diff"
  fail "(e) tests.txt ($(wc -l <"$bundle/tests.txt") lines) differs from the build's listing ($(wc -l <"$scratch/listed") test cases)"
fi
say "(e) ok: $(wc -l <"$bundle/tests.txt") test cases"

# ---- (f) the smoke topology validates -----------------------------------------------------------------------
for t in cuda-echo.yaml cuda-worker.yaml; do
  say "(f) the bundled ringflow validates topologies/$t"
  out="$("$bundle/bin/ringflow" validate "$bundle/topologies/$t" 2>&1)" || fail "(f) $out"
  say "(f) ok: $out"
done

# ---- (c) no usable device here, and each GPU program says so -------------------------------------------------
devices="$("$bundle/bin/ringflow" devices --json 2>&1)" || fail "(c) ringflow devices --json failed: $devices"
if awk 'BEGIN { RS = "}" } /"backend": *"cuda"/ && /"available": *true/ { f = 1 } END { exit !f }' <<<"$devices"; then
  say "SKIPPED: this machine has a usable CUDA device (ringflow devices: cuda available); these checks are"
  say "for machines without one — run the bundle's run.sh here instead: bash $bundle/run.sh"
  exit 77
fi
say "(c) no usable CUDA device here: each bundled GPU program must exit 77 with its own no-device line"
for p in ringflow_test_gpu_cuda ringflow_test_gpu_device ringflow_test_gpu_ll16 ringflow_bench_gpu ringflow_bench_gpu_recovery; do
  out="$(timeout -k 5 60 "$bundle/bin/$p" </dev/null 2>&1)"
  rc=$?
  ((rc == 77)) || fail "(c) bin/$p exited $rc, not 77 (no usable device): $out"
  grep -Eiq 'no usable.*cuda|cuda.*no usable' <<<"$out" || fail "(c) bin/$p exited 77 without a 'no usable cuda device' line: $out"
  say "(c) ok: bin/$p: exit 77: $(grep -Ei -m1 'no usable' <<<"$out")"
done
for t in cuda-echo.yaml cuda-worker.yaml; do
  out="$(cd "$scratch" && timeout -k 5 60 "$bundle/bin/ringflow" run "$bundle/topologies/$t" --http off </dev/null 2>&1)"
  rc=$?
  ((rc == 4)) && grep -q "backend 'cuda' is not available" <<<"$out" ||
    fail "(c) bin/ringflow run topologies/$t exited $rc without a device (expected 4, backend 'cuda' is not available): $(tail -2 <<<"$out")"
  say "(c) ok: bin/ringflow run $t: exit 4: $(grep -m1 '^ringflow:' <<<"$out")"
done

# ---- (d) run.sh without a device ------------------------------------------------------------------------------
out_dir="$scratch/out"
say "(d) OUT=$out_dir RINGFLOW_BUNDLE_BUDGET_S=120 bash run.sh"
OUT="$out_dir" RINGFLOW_BUNDLE_BUDGET_S=120 LD_LIBRARY_PATH="" bash "$bundle/run.sh" >"$scratch/run.txt" 2>&1
rc=$?
sed 's/^/  | /' "$scratch/run.txt"
((rc == 3)) || fail "(d) run.sh exited $rc, expected 3 (no usable CUDA device)"
grep -q 'no usable CUDA device' "$scratch/run.txt" || fail "(d) run.sh did not say 'no usable CUDA device'"
run_json="$out_dir/gpu-run.json"
[[ -s "$run_json" ]] || fail "(d) run.sh wrote no gpu-run.json"
grep -Eq '"passed": *false' "$run_json" || fail "(d) gpu-run.json does not say \"passed\": false"
grep -Eq '"no_device": *true' "$run_json" || fail "(d) gpu-run.json does not say \"no_device\": true"
cases=$((2 * $(wc -l <"$bundle/tests.txt")))  # every case on protocol v1 and v2
skipped_cases=$(grep -Ec '"kind": "case", "status": "skip-is-failure", "rc": 77' "$run_json")
((skipped_cases == cases)) ||
  fail "(d) $skipped_cases of $cases test cases runs (v1 + v2) ran to their no-device skip (a test spec that selects another case fails it): $(grep -E '"kind": "case"' "$run_json" | grep -v skip-is-failure | head -3)"
for p in test bench; do
  grep -Eq "\"kind\": \"$p\", \"status\": \"skip-is-failure\", \"rc\": 77" "$run_json" || fail "(d) gpu-run.json: the $p step is not skip-is-failure (exit 77)"
done
total=$(sed -n 's/^ *"total": *\([0-9]*\).*/\1/p' "$run_json")
((total == cases + 7)) || fail "(d) gpu-run.json counts $total steps, expected $((cases + 7)) (2 device tests, 3 smoke, $cases cases, 2 bench)"
grep -q "^gpu-bundle: 0/$total passed$" "$scratch/run.txt" || fail "(d) run.sh's last summary line is not 'gpu-bundle: 0/$total passed'"
files=$(find "$out_dir" -type f | wc -l)
((files <= 8)) || fail "(d) run.sh wrote $files files into OUT (at most 8): $(ls "$out_dir")"
say "(d) ok: exit 3, gpu-run.json passed false, no_device true, $cases cases skipped, $files files in OUT"
say "passed"

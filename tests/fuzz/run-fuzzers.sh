#!/usr/bin/env bash
# run-fuzzers.sh <build-dir> <seconds-per-target>
#
# Runs every ringflow libFuzzer target for <seconds-per-target> seconds on its own corpus and
# exits non-zero if any of them found a crash (or failed to run).
#
#   <build-dir>/fuzz-corpus/seeds/      seeds from ringflow_fuzz_seeds (regenerated once per run)
#   <build-dir>/fuzz-corpus/<target>/   the target's corpus: copies of the seeds + what it found
#   <build-dir>/fuzz-artifacts/<target>/crash-* leak-* timeout-* oom-*  reproducers
#   <build-dir>/fuzz-logs/<target>.log  the full libFuzzer output
#
# Build first (clang, fuzz-only configuration):
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
#         -DRINGFLOW_FUZZ_ONLY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-fuzz
# Reproduce a crash: <build-dir>/tests/fuzz/<target> <build-dir>/fuzz-artifacts/<target>/crash-…
# Extra libFuzzer flags for every target: RINGFLOW_FUZZ_ARGS="-jobs=2 -workers=2" run-fuzzers.sh …
set -euo pipefail

usage() {
  echo "usage: $0 <build-dir> <seconds-per-target>" >&2
  exit 2
}
[ "$#" -eq 2 ] || usage
case "$2" in
  '' | *[!0-9]*) echo "run-fuzzers.sh: <seconds-per-target> must be a positive integer, got '$2'" >&2; usage ;;
esac
[ "$2" -gt 0 ] || usage
[ -d "$1" ] || { echo "run-fuzzers.sh: build directory '$1' does not exist" >&2; exit 2; }

build_dir=$(cd "$1" && pwd)
seconds=$2
bin_dir="$build_dir/tests/fuzz"
corpus_root="$build_dir/fuzz-corpus"
artifact_root="$build_dir/fuzz-artifacts"
log_root="$build_dir/fuzz-logs"
targets=(ringflow_fuzz_ingress ringflow_fuzz_view ringflow_fuzz_writer_roundtrip ringflow_fuzz_traceparent
         ringflow_fuzz_topology ringflow_fuzz_http ringflow_fuzz_config ringflow_fuzz_ll_slot
         ringflow_fuzz_checkpoint)
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
read -r -a extra_args <<<"${RINGFLOW_FUZZ_ARGS:-}"

for exe in ringflow_fuzz_seeds "${targets[@]}"; do
  if [ ! -x "$bin_dir/$exe" ]; then
    echo "run-fuzzers.sh: $bin_dir/$exe not found; configure with -DRINGFLOW_FUZZ_ONLY=ON (clang++) and build" >&2
    exit 2
  fi
done

# Seeds: generated once, then copied into each target's corpus (existing corpus files are kept).
seed_dir="$corpus_root/seeds"
rm -rf "$seed_dir"
mkdir -p "$seed_dir"
"$bin_dir/ringflow_fuzz_seeds" "$seed_dir"

summaries=()
failed=0
for target in "${targets[@]}"; do
  corpus="$corpus_root/$target"
  artifacts="$artifact_root/$target"
  log="$log_root/$target.log"
  mkdir -p "$corpus" "$artifacts" "$log_root"
  for seed in "$seed_dir"/*; do
    [ -e "$corpus/${seed##*/}" ] || cp "$seed" "$corpus/"
  done
  if [ "$target" = ringflow_fuzz_topology ] || [ "$target" = ringflow_fuzz_config ]; then
    for seed in "$repo_root"/examples/topologies/*.yaml; do  # text seeds: the shipped topologies
      [ -e "$corpus/${seed##*/}" ] || cp "$seed" "$corpus/"
    done
  fi
  if [ "$target" = ringflow_fuzz_config ]; then  # the deployment's config file (its ConfigMap)
    sed -n '/config.yaml: |/,/^---/p' "$repo_root/deploy/kubernetes.yaml" | sed '1d;$d;s/^    //' \
      >"$corpus/deploy-config.yaml"
  fi

  echo "==> running $target for ${seconds}s (corpus $corpus, log $log)"
  touch "$log_root/.start-$target"
  rc=0
  "$bin_dir/$target" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" ${extra_args[@]+"${extra_args[@]}"} "$corpus" >"$log" 2>&1 || rc=$?

  # Last status line ("#N DONE cov: … ft: … corp: …") and the final stats.
  status=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED|RELOAD)' "$log" | tail -n 1 || true)
  cov=$(printf '%s\n' "$status" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s\n' "$status" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(printf '%s\n' "$status" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
  runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)
  execs=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)
  rss=$(sed -n 's/^stat::peak_rss_mb:[[:space:]]*//p' "$log" | tail -n 1)
  stats="runs=${runs:-?} exec/s=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} peak_rss=${rss:-?}MB"

  if [ "$rc" -eq 0 ]; then
    line="$target: OK ($stats)"
  else
    failed=1
    found=$(find "$artifacts" -maxdepth 1 -type f -newer "$log_root/.start-$target" -printf '%f ' 2>/dev/null || true)
    line="$target: FAILED rc=$rc ($stats) artifacts: ${found:-none} in $artifacts"
    echo "---- $target: last lines of $log"
    grep -E 'ERROR|SUMMARY|runtime error|invariant failed|Test unit written' "$log" | head -n 20 || tail -n 30 "$log"
  fi
  echo "$line"
  summaries+=("$line")
done

echo "==> summary (${seconds}s per target)"
for line in "${summaries[@]}"; do
  echo "SUMMARY $line"
done
exit "$failed"

#!/usr/bin/env bash
# run.sh — the GPU bundle's check, run ON THE GPU MACHINE from inside the bundle (scripts/gpu-bundle.sh
# copies this file there; docs/BENCHMARKS.md, "The GPU bundle"). It needs bash, coreutils (timeout),
# grep, sed, awk and ldd — no python, no compiler, none of ringflow's Debian packages: the bundle's
# lib/ carries them (LD_LIBRARY_PATH). On that machine a skip is a failure: a device is expected.
#
# Usage: bash gpu-bundle/run.sh          (from anywhere: it works in its own folder)
# Environment:
#   OUT                        results folder (default: the bundle's out/); created; earlier results
#                              of the same names are removed first
#   RINGFLOW_BUNDLE_BUDGET_S   the whole run's time budget in seconds (default 300, at least 60); each
#                              step's limit is a share of it (below)
#   RINGFLOW_BUNDLE_BENCH_ARGS ringflow_bench_gpu's arguments besides --benchmark_out* (default:
#                              --benchmark_repetitions=3 --benchmark_report_aggregates_only=false
#                              --benchmark_min_time=0.2 — 19 benchmarks x 3 repetitions, expected to
#                              take 1-2 minutes; set but empty: none)
# Steps, in this order, each under `timeout -k 5 LIMIT` (LIMIT: its share of the budget — at 300 s:
# 60, 60, 15, 30, 30, 60 each, 37, 140 — at most what is left once the benchmark's share is kept back; a step
# with under 5 s left is "not-run", a failure):
#   test   bin/ringflow_test_gpu_device (the device handlers; budget/5, at least 10 s): exit 0
#   test   bin/ringflow_test_gpu_ll16 (16-byte units across PCIe both ways, 0 torn; the same limit): exit 0
#   smoke  bin/ringflow devices --json (budget/20, at least 10 s): exit 0, a cuda entry "available": true
#   smoke  bin/ringflow run topologies/cuda-echo.yaml (budget/10, at least 15 s): exit 0 and its
#          summary ok, replies, no fault detected, no reroute (the nodes stayed on the GPU), a cuda
#          device in the log
#   smoke  bin/ringflow run topologies/cuda-worker.yaml (the same limit): the same checks and no
#          worker restart, for a `host: process` node on cuda (a GPU kernel-host worker)
#   case   each test case of tests.txt in a process of its own (budget/5 each, at least 10 s; a trap
#          poisons its process's CUDA context): its test spec lists that case alone, then exit 0 and
#          Catch2's report of exactly one test case passed — every case twice: protocol v1, then protocol v2
#          (RINGFLOW_GPU_RING_PROTOCOL=2), recorded as "<name> [v2]"
#   bench  bin/ringflow_bench_gpu_recovery (budget/8, at least 20 s; RINGFLOW_RECOVERY_TRIALS, default
#          10): a trap in a CUDA kernel-host worker -> first reply of its replacement; exit 0, runs
#          recorded, no "error_occurred": true
#   bench  bin/ringflow_bench_gpu, JSON out (budget*7/15, at least 20 s): the same checks
# Exit 77 from any program (its "no usable cuda device" skip) is the status skip-is-failure.
# Writes to $OUT (8 files): gpu-env.txt (date, host, OS, CPU, nvidia-smi, nvcc, the bundle's
#   MANIFEST.txt), gpu-tests.log (the device test and every case: name, output, rc, seconds),
#   gpu-bench.json and gpu-recovery.json (the two benchmarks' JSON), gpu-bench.txt (both consoles),
#   ringflow-smoke.log (`ringflow devices` + both `run`s' output, and cuda-worker.yaml's summary),
#   ringflow-smoke.json (cuda-echo.yaml's --summary-json), gpu-run.json:
#   {"bundle_commit", "bundle_dirty", "date", "device" (nvidia-smi -L's first line or null),
#    "passed", "no_device", "budget_s", "seconds", "preflight", "steps": [{"name", "kind"
#    (test|smoke|case|bench), "status" (pass|fail|skip-is-failure|timeout|not-run), "rc" (null when
#    not run), "seconds", "detail"}], "failed", "total"}
# Prints nvidia-smi, one line per step, and last "gpu-bundle: P/T passed".
# Exit: 0 every step passed; 1 a step failed; 2 the bundle does not fit this machine (a library not
#   found, a glibc/GLIBCXX version it lacks: printed; nothing was run); 3 no usable CUDA device
#   (nvidia-smi fails and nothing passed, or every GPU program reported its no-device skip).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here" || exit 1
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUT="${OUT:-$here/out}"
mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
budget="${RINGFLOW_BUNDLE_BUDGET_S:-300}"
if ! [[ "$budget" =~ ^[0-9]{1,6}$ ]] || ((10#$budget < 60)); then
  echo "gpu-bundle: RINGFLOW_BUNDLE_BUDGET_S=$budget: a whole number of seconds, at least 60" >&2
  exit 1
fi
budget=$((10#$budget))
read -ra bench_args <<<"${RINGFLOW_BUNDLE_BENCH_ARGS---benchmark_repetitions=3 --benchmark_report_aggregates_only=false --benchmark_min_time=0.2}"

results=(gpu-env.txt gpu-tests.log gpu-bench.json gpu-bench.txt gpu-recovery.json ringflow-smoke.json ringflow-smoke.log
  gpu-run.json)
for f in "${results[@]}"; do rm -f "$OUT/$f"; done
scratch="$(mktemp -d)" || exit 1
trap 'rm -rf "$scratch"' EXIT

say() { echo "gpu-bundle: $*"; }
now() { if [[ -n "${EPOCHREALTIME:-}" ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
t_start="$(now)"
deadline="$(awk -v s="$t_start" -v b="$budget" 'BEGIN { printf "%.3f", s + b }')"
# seconds left before the deadline, less RESERVE (what later steps keep back), as a whole number
left() { awk -v d="$deadline" -v n="$(now)" -v r="${1:-0}" 'BEGIN { x = d - n - r; printf "%d", (x > 0 ? x : 0) }'; }
at_least() { echo $(($1 > $2 ? $1 : $2)); }
cap_device=$(at_least $((budget / 5)) 10) cap_case=$(at_least $((budget / 5)) 10)
cap_devices=$(at_least $((budget / 20)) 10) cap_smoke=$(at_least $((budget / 10)) 15)
cap_bench=$(at_least $((budget * 7 / 15)) 20) cap_recovery=$(at_least $((budget / 8)) 20)

json_str() {
  local s
  s="$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')"
  s="${s//\\/\\\\}" s="${s//\"/\\\"}" s="${s//$'\t'/\\t}" s="${s//$'\n'/\\n}" s="${s//$'\r'/\\r}"
  printf '"%s"' "$s"
}

# ---- the manifest's commit ----------------------------------------------------------------------------
commit_line="$(sed -n 's/^commit: //p' MANIFEST.txt 2>/dev/null | head -1)"
bundle_commit="${commit_line%% *}"
bundle_dirty=false
[[ "$commit_line" == *"local changes"* ]] && bundle_dirty=true
device_line=""

steps_json=()
passed=0 failed=0
skip_words=()      # the programs' own no-device lines
gpu_programs=0     # GPU program steps that ran (test, case, bench) ...
gpu_skipped=0      # ... and of them, those that reported the no-device skip (exit 77)

write_run_json() {  # PREFLIGHT NO_DEVICE
  local device=null ok=false steps=""
  [[ -n "$device_line" ]] && device="$(json_str "$device_line")"
  ((failed == 0 && passed > 0)) && ok=true
  if ((${#steps_json[@]})); then steps="$(printf '    %s,\n' "${steps_json[@]}")" steps="${steps%,}"; fi
  cat >"$OUT/gpu-run.json" <<EOF
{
  "bundle_commit": $(json_str "${bundle_commit:-unknown}"),
  "bundle_dirty": $bundle_dirty,
  "date": $(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),
  "device": $device,
  "passed": $ok,
  "no_device": $2,
  "budget_s": $budget,
  "seconds": $(elapsed "$t_start"),
  "preflight": $(json_str "$1"),
  "steps": [
$steps
  ],
  "failed": $failed,
  "total": $((passed + failed))
}
EOF
}

# record NAME KIND STATUS RC SECONDS DETAIL
record() {
  local rc=null
  [[ -n "$4" ]] && rc="$4"
  steps_json+=("{\"name\": $(json_str "$1"), \"kind\": \"$2\", \"status\": \"$3\", \"rc\": $rc, \"seconds\": ${5:-0}, \"detail\": $(json_str "$6")}")
  if [[ "$3" == pass ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  local d="$6"
  ((${#d} > 300)) && d="${d:0:300}..."
  say "[$2] $1: $3${4:+ (rc $4)}${5:+, $5 s}${d:+ — $d}"
}

# run_limited LIMIT LOG CMD...: runs CMD under timeout, output appended to LOG and kept in
# $scratch/last; sets rc and secs.
run_limited() {
  local limit="$1" log="$2" t0
  shift 2
  t0="$(now)"
  timeout -k 5 "$limit" "$@" </dev/null >"$scratch/last" 2>&1
  rc=$?
  secs="$(elapsed "$t0")"
  cat "$scratch/last" >>"$log"
}

# why_not RC: a failed step's detail from its own output (a timeout says so: its output ends mid-way)
why_not() {
  case "$1" in
    124 | 137) echo "timed out after $lim s" ;;
    *) grep -m1 -E "${2:-.}" "$scratch/last" || tail -1 "$scratch/last" ;;
  esac
}

# status_of RC: the status every step shares (pass is decided by the step's own checks)
status_of() {
  case "$1" in
    124 | 137) echo timeout ;;
    77) echo skip-is-failure ;;
    *) echo fail ;;
  esac
}

note_gpu_program() {  # RC: a GPU program ran; 77 is its no-device skip
  gpu_programs=$((gpu_programs + 1))
  if [[ "$1" == 77 ]]; then
    gpu_skipped=$((gpu_skipped + 1))
    local w
    w="$(grep -i -m1 'no usable.*device' "$scratch/last")"
    [[ -n "$w" ]] && skip_words+=("$w")
  fi
}

# ---- preflight: the bundle fits this machine ---------------------------------------------------------------
preflight=""
if [[ "$(uname -m)" != x86_64 ]]; then
  preflight="this machine is $(uname -m); the bundle is x86-64"
else
  for b in bin/*; do
    out="$(ldd "$b" 2>&1)"
    st=$?
    bad="$(grep -E 'not found|not a dynamic' <<<"$out")"
    if ((st != 0)) || [[ -n "$bad" ]]; then
      preflight+="$b: ${bad:-ldd failed: $out}"$'\n'
    fi
  done
fi
if [[ -n "$preflight" ]]; then
  echo "gpu-bundle: the bundle does not fit this machine (nothing was run):" >&2
  printf '%s' "$preflight" >&2
  write_run_json "$preflight" false
  exit 2
fi

# ---- the environment ----------------------------------------------------------------------------------------
smi_ok=false
smi() { timeout -k 5 30 nvidia-smi "$@" </dev/null 2>&1; }  # a wedged driver must not eat the budget
if command -v nvidia-smi >/dev/null && smi -L >"$scratch/smi-l" && grep -q '^GPU ' "$scratch/smi-l"; then
  smi_ok=true
  device_line="$(grep -m1 '^GPU ' "$scratch/smi-l")"
fi
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "uname: $(uname -a)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc) (allowed)"
  echo "budget: $budget s; bench args: ${bench_args[*]}"
  echo
  echo "== /etc/os-release"
  cat /etc/os-release 2>/dev/null || echo "(none)"
  echo
  echo "== nvidia-smi"
  if command -v nvidia-smi >/dev/null; then smi || echo "(nvidia-smi failed: $?)"; else echo "(no nvidia-smi)"; fi
  echo
  echo "== nvidia-smi -q -d CLOCK,PERFORMANCE"
  if command -v nvidia-smi >/dev/null; then smi -q -d CLOCK,PERFORMANCE || true; fi
  echo
  echo "== nvcc --version"
  if command -v nvcc >/dev/null; then nvcc --version 2>&1; elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
    /usr/local/cuda/bin/nvcc --version 2>&1
  else echo "(no nvcc)"; fi
  echo
  echo "== the bundle's MANIFEST.txt"
  cat MANIFEST.txt 2>/dev/null || echo "(no MANIFEST.txt)"
} >"$OUT/gpu-env.txt"
sed -n '/^== nvidia-smi$/,/^== nvidia-smi -q/p' "$OUT/gpu-env.txt" | sed '$d'
say "bundle ${bundle_commit:0:12}$([[ $bundle_dirty == true ]] && echo ' (with local changes)'), budget $budget s, results in $OUT"

# ---- (a) the device handlers --------------------------------------------------------------------------------
tests_log="$OUT/gpu-tests.log"
: >"$tests_log"
# device_test PROGRAM: a plain GPU test program (exit 0 pass, 77 its no-device skip, else fail).
device_test() {
  local prog="$1"
  lim=$(left "$cap_bench")
  ((lim > cap_device)) && lim=$cap_device
  if ((lim < 5)); then
    record "$prog" test not-run "" "" "not run: budget"
    return
  fi
  echo "===== $prog (limit $lim s)" >>"$tests_log"
  run_limited "$lim" "$tests_log" "bin/$prog"
  echo "===== $prog: rc $rc, $secs s" >>"$tests_log"
  note_gpu_program "$rc"
  if ((rc == 0)); then
    record "$prog" test pass "$rc" "$secs" "$(grep -m3 '^RESULT' "$scratch/last" | tr '\n' ';')"
  else
    record "$prog" test "$(status_of "$rc")" "$rc" "$secs" "$(why_not "$rc" 'SKIP|FAIL')"
  fi
}
device_test ringflow_test_gpu_device
# LL16 units across PCIe: the ring protocol v2 design's hardware assumption (docs/design/).
device_test ringflow_test_gpu_ll16

# ---- (d) the ringflow smoke: devices, then a topology on cuda -----------------------------------------------
smoke_log="$OUT/ringflow-smoke.log"
: >"$smoke_log"
lim=$(left "$cap_bench")
((lim > cap_devices)) && lim=$cap_devices
if ((lim < 5)); then
  record "ringflow devices" smoke not-run "" "" "not run: budget"
else
  echo "===== ringflow devices --json" >>"$smoke_log"
  run_limited "$lim" "$smoke_log" bin/ringflow devices --json
  echo "===== ringflow devices: rc $rc, $secs s" >>"$smoke_log"
  # the JSON is an array of objects; a cuda entry that is available
  if ((rc == 0)) && awk 'BEGIN { RS = "}" } /"backend": *"cuda"/ && /"available": *true/ { f = 1 } END { exit !f }' "$scratch/last"; then
    record "ringflow devices" smoke pass "$rc" "$secs" ""
  elif ((rc == 0)); then
    record "ringflow devices" smoke fail "$rc" "$secs" "no available cuda device: $(awk 'BEGIN { RS = "}" } /"backend": *"cuda"/' "$scratch/last" | sed -n 's/.*"detail": *"\(.*\)",*$/\1/p' | head -1)"
  else
    record "ringflow devices" smoke "$(status_of "$rc")" "$rc" "$secs" "$(why_not "$rc")"
  fi
fi

# smoke_run TOPOLOGY SUMMARY_FILE: `ringflow run` of a bundled topology; passes on exit 0, summary
# ok, replies, no fault detected, no reroute, no worker restart (the nodes stayed on the GPU), and
# for in-process GPU nodes a cuda device named in the log.
smoke_run() {
  local topo="$1" summary="$2" name="ringflow run topologies/$1"
  lim=$(left "$cap_bench")
  ((lim > cap_smoke)) && lim=$cap_smoke
  if ((lim < 5)); then
    record "$name" smoke not-run "" "" "not run: budget"
    return
  fi
  echo "===== $name --http off --summary-json ${summary##*/}" >>"$smoke_log"
  run_limited "$lim" "$smoke_log" bin/ringflow run "topologies/$topo" --http off --summary-json "$summary"
  echo "===== ringflow run: rc $rc, $secs s" >>"$smoke_log"
  num() { sed -n "s/^ *\"$1\": *\([0-9.]*\),*$/\1/p" "$summary" | head -1; }
  why=""
  if ((rc != 0)); then
    why="$(why_not "$rc" '^ringflow:')"
  elif [[ ! -s "$summary" ]]; then
    why="no summary written"
  elif ! grep -Eq '"ok": *true' "$summary"; then
    why="summary ok: false (lost $(num lost), duplicated $(num duplicated), wrong $(num wrong))"
  elif [[ "$(num replied)" == "" || "$(num replied)" == 0 ]]; then
    why="no reply"
  elif [[ "$(num faults_detected)" != 0 || "$(num reroutes)" != 0 || "$(num worker_restarts)" != 0 ]]; then
    why="the fault ladder acted: faults_detected $(num faults_detected), reroutes $(num reroutes), worker_restarts $(num worker_restarts) (a node left the GPU)"
  elif grep -q 'host: process' "topologies/$topo"; then
    :  # a GPU worker's device is its own process's: the service log names none
  elif ! grep -q 'device cuda:[0-9]' "$scratch/last"; then
    why="the log names no cuda device"
  fi
  if [[ -z "$why" ]]; then
    record "$name" smoke pass "$rc" "$secs" "replied $(num replied), p50 $(num p50_us) us, p99 $(num p99_us) us"
  elif ((rc == 0)); then
    record "$name" smoke fail "$rc" "$secs" "$why"
  else
    record "$name" smoke "$(status_of "$rc")" "$rc" "$secs" "$why"
  fi
}
smoke_run cuda-echo.yaml "$OUT/ringflow-smoke.json"
smoke_run cuda-worker.yaml "$scratch/ringflow-worker.json"
if [[ -s "$scratch/ringflow-worker.json" ]]; then  # (its summary goes into the log: OUT holds 8 files at most)
  echo "===== cuda-worker.yaml --summary-json" >>"$smoke_log"
  cat "$scratch/ringflow-worker.json" >>"$smoke_log"
fi

# ---- (b) every test case, one process each ------------------------------------------------------------------
# Catch2 v2 test spec: a name matches as is once '\', ',', '[', ']' are escaped (and a leading '~'
# or '"', which would start an exclusion or a quoted name; a leading "exclude:" becomes "*xclude:",
# as escaping cannot keep it). Each spec is checked by listing what it
# selects before the case runs: a spec that selects anything but its own case fails that case.
catch_spec() {
  local s="$1"
  s="${s//\\/\\\\}" s="${s//,/\\,}" s="${s//\[/\\[}" s="${s//\]/\\]}"
  [[ "$s" == [~\"]* ]] && s="\\$s"
  [[ "$s" == exclude:* ]] && s="*${s#e}"  # Catch2 reads a leading "exclude:" as ~; a wildcard is not
  printf '%s' "$s"
}
mapfile -t cases <tests.txt
if ((${#cases[@]} == 0)); then record tests.txt case fail "" "" "tests.txt lists no test case"; fi
# Every case twice: on ring protocol v1 (the default) and on v2 (RINGFLOW_GPU_RING_PROTOCOL=2: LL16
# units, credit from replies, the scout), recorded as "<name> [v2]".
for proto in 1 2; do
tag=""
((proto == 2)) && tag=" [v2]"
i=0
for name in "${cases[@]}"; do
  i=$((i + 1))
  lim=$(left "$cap_bench")
  ((lim > cap_case)) && lim=$cap_case
  if ((lim < 5)); then
    record "$name$tag" case not-run "" "" "not run: budget"
    continue
  fi
  spec="$(catch_spec "$name")"
  # The spec must select this case alone: Catch2 lists what a spec matches (no device needed).
  listed="$(timeout -k 5 10 bin/ringflow_test_gpu_cuda --list-test-names-only "$spec" </dev/null 2>&1)"
  if [[ "$listed" != "$name" && "$listed" != "\"$name\"" ]]; then
    record "$name$tag" case fail "" "" "its test spec '$spec' selects $(grep -c . <<<"$listed") test cases, not this one alone"
    continue
  fi
  echo "===== case $i/${#cases[@]}$tag: $name (limit $lim s)" >>"$tests_log"
  run_limited "$lim" "$tests_log" env RINGFLOW_GPU_RING_PROTOCOL="$proto" bin/ringflow_test_gpu_cuda --warn NoTests --use-colour no "$spec"
  echo "===== case $i/${#cases[@]}$tag: $name: rc $rc, $secs s" >>"$tests_log"
  note_gpu_program "$rc"
  if ((rc == 0)) && grep -Eq '^All tests passed \([0-9]+ assertions? in 1 test case\)$|^test cases: 1 \| 1 passed$' "$scratch/last"; then
    record "$name$tag" case pass "$rc" "$secs" ""
  elif ((rc == 0)); then
    record "$name$tag" case fail "$rc" "$secs" "exit 0 without Catch2's report of one test case passed: $(tail -1 "$scratch/last")"
  else
    record "$name$tag" case "$(status_of "$rc")" "$rc" "$secs" "$(why_not "$rc" 'SKIP|No test|FAILED|failed')"
  fi
done
done

# ---- (c) the GPU worker recovery benchmark, then the GPU benchmark ---------------------------------------------
# bench_check NAME JSON TXT: a benchmark step's verdict from its rc and JSON (runs, error_occurred).
bench_check() {
  local bench_name="$1" json="$2"
  note_gpu_program "$rc"
  runs=0 errors=0
  if [[ -s "$json" ]]; then
    runs=$(grep -Ec '"run_type": *"iteration"' "$json")
    errors=$(grep -Ec '"error_occurred": *true' "$json")
  fi
  if ((rc == 0 && runs > 0 && errors == 0)); then
    record "$bench_name" bench pass "$rc" "$secs" "$runs runs recorded"
  elif ((rc == 0)); then
    # each run's object: "name" first, then ... "error_occurred": true, "error_message": "..."
    errored="$(awk '/^ *"name":/ { n = $0; sub(/^ *"name": *"/, "", n); sub(/",?$/, "", n) }
                    /"error_occurred": *true/ { e[n] = 1 } END { for (k in e) printf "%s; ", k }' "$json" 2>/dev/null | head -c 400)"
    record "$bench_name" bench fail "$rc" "$secs" "$runs runs recorded, $errors with error_occurred${errored:+: $errored}$( ((runs == 0)) && echo ' (no benchmark ran)')"
  else
    record "$bench_name" bench "$(status_of "$rc")" "$rc" "$secs" "$(why_not "$rc" 'no usable|rror')"
  fi
}

lim=$(left "$cap_bench")
((lim > cap_recovery)) && lim=$cap_recovery
if ((lim < 5)); then
  record "ringflow_bench_gpu_recovery" bench not-run "" "" "not run: budget"
else
  # 10 trials (RINGFLOW_RECOVERY_TRIALS): each waits 1.5 s for the new standby's CUDA context.
  RINGFLOW_RECOVERY_TRIALS="${RINGFLOW_RECOVERY_TRIALS:-10}" run_limited "$lim" "$OUT/gpu-bench.txt" \
    bin/ringflow_bench_gpu_recovery --benchmark_out="$OUT/gpu-recovery.json" --benchmark_out_format=json
  bench_check ringflow_bench_gpu_recovery "$OUT/gpu-recovery.json"
fi

lim=$(left 0)
((lim > cap_bench)) && lim=$cap_bench
if ((lim < 5)); then
  record "ringflow_bench_gpu" bench not-run "" "" "not run: budget"
else
  run_limited "$lim" "$OUT/gpu-bench.txt" bin/ringflow_bench_gpu --benchmark_out="$OUT/gpu-bench.json" \
    --benchmark_out_format=json "${bench_args[@]}"
  bench_check ringflow_bench_gpu "$OUT/gpu-bench.json"
fi

# ---- the verdict --------------------------------------------------------------------------------------------
no_device=false
if ((gpu_programs > 0 && gpu_skipped == gpu_programs)) || { [[ $smi_ok == false ]] && ((passed == 0)); }; then
  no_device=true
fi
write_run_json ok "$no_device"
say "results: $OUT (gpu-run.json, gpu-tests.log, gpu-bench.json, gpu-recovery.json, gpu-bench.txt, ringflow-smoke.log, ringflow-smoke.json, gpu-env.txt)"
if ((failed == 0 && passed > 0)); then
  say "$passed/$((passed + failed)) passed"
  exit 0
fi
if [[ $no_device == true ]]; then
  words="$(printf '%s\n' "${skip_words[@]}" | awk '!seen[$0]++' | paste -sd'|' | sed 's/|/ | /g')"
  [[ $smi_ok == false ]] && words="nvidia-smi: $(head -1 "$scratch/smi-l" 2>/dev/null || echo 'not found')${words:+ | $words}"
  say "no usable CUDA device: ${words:-no program said why}; on the GPU machine a skip is a failure"
  say "$passed/$((passed + failed)) passed"
  exit 3
fi
say "$passed/$((passed + failed)) passed"
exit 1

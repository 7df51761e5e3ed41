#!/usr/bin/env bash
# bench/soak.sh [SECONDS] [OUT.json] — the soak benchmark (not CI; docs/BENCHMARKS.md "Soak").
#
# Runs bench/topologies/soak.yaml (the supervised demo at 50,000 msg/s with recurring faults) with
# the built program for SECONDS (default 600) and samples the process every second: RSS (VmRSS),
# threads, open fds, and the messages answered so far (from the log's 5-second status records).
# Prints the least-squares slope of each over the run after a 60 s warm-up (per minute; a quarter
# of the run when it is shorter than 4 minutes), the
# first/last/max values and the run's summary; writes samples, slopes and summary to OUT.json
# (default bench/results/soak-DATE.json). Exit 1 when the run lost, duplicated or answered wrongly
# anything, or did not exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=${2:-bench/results/soak-$(date +%Y-%m-%d).json}
program=${RINGFLOW_PROGRAM:-build/runtime/ringflow}
[ -x "$program" ] || { echo "soak.sh: $program not built (make build)" >&2; exit 2; }
work=$(mktemp -d /tmp/ringflow-soak.XXXXXX)
"$program" run bench/topologies/soak.yaml --duration "$seconds" --http off \
  --summary-json "$work/summary.json" 2>"$work/log.jsonl" >/dev/null &
pid=$!
samples="$work/samples.csv"
echo "t_s,rss_kib,threads,fds" >"$samples"
start=$(date +%s.%N)
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  thr=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
  now=$(date +%s.%N)
  [ -n "$rss" ] && awk -v a="$now" -v b="$start" -v r="$rss" -v t="$thr" -v f="$fds" 'BEGIN {printf "%.2f,%s,%s,%s\n", a - b, r, t, f}' >>"$samples"
  sleep 1
done
rc=0
wait "$pid" || rc=$?
# Slopes per minute after the warm-up (least squares), and first/last/max.
warm=$(( seconds >= 240 ? 60 : seconds / 4 ))
stats=$(awk -F, -v warm="$warm" 'NR > 1 && $1 >= warm {
    n++; x = $1 / 60; sx += x; sxx += x * x
    for (i = 2; i <= 4; i++) { y = $i; sy[i] += y; sxy[i] += x * y; if (y > mx[i]) mx[i] = y; if (!(i in f)) f[i] = y; l[i] = y }
  } END {
    d = n * sxx - sx * sx
    for (i = 2; i <= 4; i++) printf "%s %.3f %d %d %d\n", (i == 2 ? "rss_kib" : i == 3 ? "threads" : "fds"), (d ? (n * sxy[i] - sx * sy[i]) / d : 0), f[i], l[i], mx[i]
  }' "$samples")
echo "soak: $seconds s, exit $rc, $(($(wc -l <"$samples") - 1)) samples ($work)"
printf '%-8s %14s %10s %10s %10s\n' metric "slope/min" first last max
printf '%s\n' "$stats" | while read -r m s f l x; do printf '%-8s %14s %10s %10s %10s\n' "$m" "$s" "$f" "$l" "$x"; done
summary=$(cat "$work/summary.json" 2>/dev/null || echo '{}')
echo "summary: $(tr -d '\n ' <<<"$summary" | head -c 600)"
{
  echo "{\"seconds\": $seconds, \"exit\": $rc, \"machine\": \"$(nproc) cpus, $(uname -r)\","
  echo " \"warmup_s\": $warm, \"slopes_per_min_after_warmup\": {"
  printf '%s\n' "$stats" | awk '{printf "%s  \"%s\": {\"slope\": %s, \"first\": %s, \"last\": %s, \"max\": %s}", (NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $5} END {print ""}'
  echo " },"
  echo " \"summary\": $summary,"
  echo " \"samples_csv\": \"$(tail -n +2 "$samples" | tr '\n' ';')\"}"
} >"$out"
echo "wrote $out"
ok=$(grep -o '"ok": *[a-z]*' "$work/summary.json" | head -1 | awk '{print $2}')
[ "$rc" -eq 0 ] && [ "$ok" = true ]

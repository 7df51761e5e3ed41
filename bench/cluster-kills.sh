#!/usr/bin/env bash
# bench/cluster-kills.sh [KILLS] [OUT.json] — the recorded member-kill run (not CI; docs/BENCHMARKS.md
# "Cluster"). Generates a copy of examples/topologies/cluster-demo.yaml whose member m2 (the saxpy
# node; fallback local_cpu) is SIGKILLed KILLS times (default 100), 0.8 s apart, each time started
# again 0.4 s later, and runs it with `ringflow cluster up` under the demo's load (2,000 msg/s, two
# remote hops per message). Prints and writes (default bench/results/cluster-kills-DATE.json) the
# merged summary. Exit 1 unless every message was answered exactly once (lost 0, duplicated 0,
# wrong 0, sent == replied + errors), every kill and restart happened, and m1 failed over (once per
# kill of an incarnation it had connected to: all of them on a quiet machine). m1's member breaker is set
# not to open (breaker.failure_threshold 1,000,000): every kill is a failover and a fail-back.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-100}
out=${2:-bench/results/cluster-kills-$(date +%Y-%m-%d).json}
program=${RINGFLOW_PROGRAM:-build/runtime/ringflow}
[ -x "$program" ] || { echo "cluster-kills.sh: $program not built (make build)" >&2; exit 2; }
work=$(mktemp -d /tmp/ringflow-cluster-kills.XXXXXX)
topo="$work/cluster-kills.yaml"
duration=$(awk -v k="$kills" 'BEGIN {printf "%d", 2 + k * 0.8 + 3}')
sed -e '/^duration_s:/d' -e '/^faults:/,$d' -e 's/^name: cluster-demo/name: cluster-kills/' \
  examples/topologies/cluster-demo.yaml >"$topo"
{
  echo "duration_s: $duration"
  echo "faults:"
  awk -v k="$kills" 'BEGIN {for (i = 0; i < k; ++i) printf "  - {kind: member_kill, member: m2, at_s: %.1f, restore_after_s: 0.4}\n", 2 + i * 0.8}'
} >>"$topo"
mkdir -p "$(dirname "$out")"
# m1 fails over and back at every kill: its member breaker (the devices' `breaker:` settings,
# 5 losses in 30 s by default) must not open and keep m2 out for a cool-down.
printf 'breaker:\n  failure_threshold: 1000000\n' >"$work/config.yaml"
rc=0
"$program" cluster up "$topo" --dir "$work/cluster" --config "$work/config.yaml" --summary-json "$out" \
  >"$work/cluster-up.txt" 2>&1 || rc=$?
tail -n 3 "$work/cluster-up.txt"
if python3 - "$out" "$kills" "$rc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); kills = int(sys.argv[2]); rc = int(sys.argv[3])
keys = ["sent", "replied", "errors", "lost", "duplicated", "wrong", "member_kills", "member_restarts",
        "member_failovers", "member_failbacks", "p50_us", "p99_us", "balanced"]
print(json.dumps({k: s.get(k) for k in keys}))
# A kill that lands on an incarnation still starting (before m1 connected to it) is no failover:
# on a loaded machine failovers can be fewer than kills; every kill must still have happened.
ok = (rc == 0 and s["lost"] == 0 and s["duplicated"] == 0 and s["wrong"] == 0 and s["balanced"]
      and s["member_kills"] == kills and s["member_restarts"] == kills and s["member_failovers"] >= 1)
print("cluster-kills:", "OK" if ok else "FAILED", f"(exit {rc})")
sys.exit(0 if ok else 1)
PY
then rm -rf "$work"  # the members' logs are kept only when the run failed
else echo "cluster-kills: logs in $work/cluster" >&2; exit 1
fi

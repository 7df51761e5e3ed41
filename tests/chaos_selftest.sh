#!/usr/bin/env bash
# The chaos harness's self-test (ctest `chaos self-test: ...`): with --inject-violation KIND the
# harness corrupts its own reading of one reply, and the seed must then fail with exactly that
# violation, the run exit 1, and the last line count it. KIND `state` (a stateful seed: one value
# of its final state perturbed) must fail the comparison with the fault-free state.
#   tests/chaos_selftest.sh RINGFLOW_CHAOS KIND SEED
set -u
chaos=$1 kind=$2 seed=$3
extra=()
[ "$kind" = state ] && extra=(--stateful)
out=$("$chaos" --seeds "$seed" --inject-violation "$kind" "${extra[@]}")
rc=$?
printf '%s\n' "$out"
fail() { echo "chaos self-test FAILED: $*" >&2; exit 1; }
[ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
if [ "$kind" = state ]; then
  grep -q "^  seed $seed: state: the final state differs from the fault-free state" <<<"$out" ||
    fail "no state violation reported for seed $seed"
else
  grep -q "^  seed $seed: $kind 1\$" <<<"$out" || fail "no '$kind 1' violation reported for seed $seed"
fi
grep -q "^  reproduce: .*--seeds $seed " <<<"$out" || fail "no reproduce line"
[ "$(tail -n 1 <<<"$out")" = "chaos: 1 seeds, 1 violations" ] || fail "last line: $(tail -n 1 <<<"$out")"
echo "chaos self-test: the injected '$kind' reply was caught"

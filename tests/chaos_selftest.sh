#!/usr/bin/env bash
# The chaos harness's self-test (ctest `chaos self-test: ...`): with --inject-violation KIND the
# harness corrupts its own reading of one reply, and the seed must then fail with exactly that
# violation, the run exit 1, and the last line count it.
#   tests/chaos_selftest.sh RINGFLOW_CHAOS KIND SEED
set -u
chaos=$1 kind=$2 seed=$3
out=$("$chaos" --seeds "$seed" --inject-violation "$kind")
rc=$?
printf '%s\n' "$out"
fail() { echo "chaos self-test FAILED: $*" >&2; exit 1; }
[ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
grep -q "^  seed $seed: $kind 1\$" <<<"$out" || fail "no '$kind 1' violation reported for seed $seed"
grep -q "^  reproduce: .*--seeds $seed " <<<"$out" || fail "no reproduce line"
[ "$(tail -n 1 <<<"$out")" = "chaos: 1 seeds, 1 violations" ] || fail "last line: $(tail -n 1 <<<"$out")"
echo "chaos self-test: the injected '$kind' reply was caught"

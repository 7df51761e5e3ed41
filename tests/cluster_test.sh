#!/usr/bin/env bash
# Cluster tests (label `cluster`): three members as processes on loopback (`ringflow cluster up`),
# and the bad input a cluster topology can carry. Usage: cluster_test.sh RINGFLOW SOURCE_DIR CASE
#   demo        cluster-demo.yaml: m2 killed mid-run and restarted -> lost 0, duplicated 0,
#               its node rerouted (member_failovers >= 1) and failed back (member_failbacks >= 1)
#   bad-input   unknown member in at:, duplicate addresses, a member fault on the load's member (exit 3)
#   unreachable a member unreachable at start: exit 4 with the member, its address and why
#   tls         a certificate that is not the cluster CA's: exit 4 "certificate problem" (77 without openssl)
set -u
ringflow=$1
src=$2
case_=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

field() {  # the integer value of "key" in a JSON file written with dump(2)
  sed -n "s/^  \"$2\": \([0-9]*\),\{0,1\}$/\1/p" "$1" | head -1
}

case "$case_" in
demo)
  "$ringflow" cluster up "$src/examples/topologies/cluster-demo.yaml" --dir "$work/run" --summary-json "$work/s.json"
  rc=$?
  [ "$rc" -eq 0 ] || { tail -n 30 "$work"/run/*.log; fail "cluster up exited $rc"; }
  for k in lost duplicated wrong; do
    [ "$(field "$work/s.json" $k)" = 0 ] || fail "$k is $(field "$work/s.json" $k), not 0"
  done
  sent=$(field "$work/s.json" sent); replied=$(field "$work/s.json" replied)
  [ "$sent" -gt 1000 ] || fail "only $sent messages sent"
  [ "$sent" = "$replied" ] || fail "sent $sent, replied $replied"
  [ "$(field "$work/s.json" member_failovers)" -ge 1 ] || fail "no member failover"
  [ "$(field "$work/s.json" member_failbacks)" -ge 1 ] || fail "no member fail-back"
  [ "$(field "$work/s.json" member_kills)" = 1 ] || fail "the member was not killed once"
  grep -q '"balanced": true' "$work/s.json" || fail "sent != replied + errors + lost + wrong"
  grep -q 'member m2 lost' "$work/run/m1.log" || fail "m1 did not log the loss of m2"
  grep -q 'member m2 is back' "$work/run/m1.log" || fail "m1 did not log m2's return"
  echo "ok: sent $sent, replied $replied, lost 0, one failover and one fail-back"
  ;;
bad-input)
  base='name: c
cluster:
  members:
    - {name: m1, listen: "127.0.0.1:7101"}
    - {name: m2, listen: "127.0.0.1:7102"}
nodes:
  - {name: check, function: validate, type: SaxpyRequest}
  - {name: saxpy, kernel: saxpy, backend: cpu, at: m2}
edges: [{from: check, to: saxpy}]
load:
  - {name: clients, target: check, message: SaxpyRequest, rate: 100}'
  expect() {  # file text, expected message
    printf '%s\n' "$1" > "$work/t.yaml"
    out=$("$ringflow" validate "$work/t.yaml" 2>&1); rc=$?
    [ "$rc" -eq 3 ] || fail "validate exited $rc (not 3) for: $2; output: $out"
    grep -qF -- "$2" <<< "$out" || fail "expected '$2' in: $out"
  }
  expect "${base/at: m2/at: m9}" "unknown member 'm9' in 'at'"
  expect "${base/127.0.0.1:7102/127.0.0.1:7101}" "address 127.0.0.1:7101 is another member's too"
  expect "$base
faults:
  - {kind: member_kill, member: m1, at_s: 1}" "member 'm1' hosts load generators"
  expect "${base/at: m2/at: m2, fallback: m7}" "unknown fallback 'm7'"
  expect "$base
faults:
  - {kind: member_partition, member: m2, at_s: 1}" "missing 'restore_after_s'"
  printf '%s\n' "$base" > "$work/t.yaml"
  out=$("$ringflow" run "$work/t.yaml" --duration 1 2>&1); rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "--member NAME" <<< "$out" || fail "run without --member: rc $rc: $out"
  echo "ok: every bad cluster topology refused with its reason"
  ;;
unreachable)
  # m2 listens on a port nobody serves (m1 must reach it at start).
  port=$(( 20000 + RANDOM % 20000 ))
  cat > "$work/t.yaml" <<YAML
name: c
cluster:
  members:
    - {name: m1, listen: "127.0.0.1:0"}
    - {name: m2, listen: "127.0.0.1:$port"}
  heartbeat_ms: 20
  timeout_ms: 200
  start_timeout_ms: 400
nodes:
  - {name: check, function: validate, type: SaxpyRequest}
  - {name: saxpy, kernel: saxpy, backend: cpu, at: m2}
edges: [{from: check, to: saxpy}]
load:
  - {name: clients, target: check, message: SaxpyRequest, rate: 100}
YAML
  out=$("$ringflow" run "$work/t.yaml" --member m1 --duration 1 --http off 2>&1); rc=$?
  [ "$rc" -eq 4 ] || fail "exit $rc, not 4: $out"
  grep -q "unreachable at start" <<< "$out" || fail "no 'unreachable at start' in: $out"
  grep -q "m2 (127.0.0.1:$port)" <<< "$out" || fail "the member and its address are not named: $out"
  echo "ok: exit 4, $(grep -o 'unreachable at start.*' <<< "$out" | head -1 | cut -c1-160)"
  ;;
tls)
  command -v openssl > /dev/null || { echo "SKIP: no openssl program to make certificates"; exit 77; }
  cd "$work" || exit 1
  for ca in ca other; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.pem -days 2 -subj "/CN=$ca" 2> /dev/null
  done
  openssl req -newkey rsa:2048 -nodes -keyout m.key -out m.csr -subj "/CN=m1" 2> /dev/null
  openssl x509 -req -in m.csr -CA other.pem -CAkey other.key -CAcreateserial -out m.pem -days 2 2> /dev/null
  cat > t.yaml <<YAML
name: c
cluster:
  members:
    - {name: m1, listen: "127.0.0.1:0"}
  tls: {ca: ca.pem, cert: m.pem, key: m.key}
nodes:
  - {name: check, function: validate, type: SaxpyRequest}
load:
  - {name: clients, target: check, message: SaxpyRequest, rate: 100}
YAML
  out=$("$ringflow" run t.yaml --member m1 --duration 1 --http off 2>&1); rc=$?
  [ "$rc" -eq 4 ] || fail "exit $rc, not 4: $out"
  grep -q "certificate problem: .*not signed by the cluster CA" <<< "$out" || fail "no certificate reason in: $out"
  echo "ok: exit 4, certificate not signed by the cluster CA"
  ;;
*) fail "unknown case $case_" ;;
esac

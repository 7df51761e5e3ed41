#!/usr/bin/env bash
# Cluster tests (label `cluster`): three members as processes on loopback (`ringflow cluster up`),
# and the bad input a cluster topology can carry. Usage: cluster_test.sh RINGFLOW SOURCE_DIR CASE
#   demo        cluster-demo.yaml: m2 killed mid-run and restarted -> lost 0, duplicated 0,
#               its node rerouted (member_failovers >= 1) and failed back (member_failbacks >= 1)
#   bad-input   unknown member in at:, duplicate addresses, a member fault on the load's member (exit 3)
#   unreachable a member unreachable at start: exit 4 with the member, its address and why
#   tls         a certificate that is not the cluster CA's: exit 4 "certificate problem" (77 without openssl)
#   mtls        mutual TLS: two members with certificates of the cluster CA run cluster-demo's graph
#               (lost 0); a member's TLS port refuses a client with another CA's certificate and
#               one without a certificate; a member refuses a server with another CA's certificate
#               (exit 4, unreachable at start). 77 without openssl.
#   stateful    cluster-stateful.yaml: the stateful vwap node's member m2 killed mid-run -> m3 takes
#               it over from the shared checkpoint folder, m2 restarted -> m3 hands it back; lost 0,
#               duplicated 0, the only errors the trades in flight at the kill (unavailable: in doubt),
#               and the final state holds every answered trade once (replied <= covered <= sent)
#   stateful-partition  cluster-stateful.yaml with m2 partitioned instead of killed: m2 keeps the
#               folder's lock, so m3 never takes vwap over (callers get node_unreachable at once,
#               in-flight trades unavailable); after the heal m1 fails back to m2; lost 0, the state
#               holds every answered trade once. 77 where namespaces cannot be made.
#   partition   cluster-demo.yaml with m2 partitioned (members in network namespaces the harness
#               makes, m2's veth down for 3 s, then up) -> lost 0, duplicated 0, m2's node rerouted by
#               the heartbeat and failed back after the heal, m2 never restarted, no namespace left
#               behind. 77 where namespaces cannot be made (not root, no `ip`).
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

up_partitioned() {  # `cluster up` of a topology with a member_partition: 77 without namespaces; lost 0
  "$ringflow" cluster up "$1" --dir "$work/run" --summary-json "$work/s.json" > "$work/up.txt" 2>&1
  rc=$?
  if [ "$rc" -eq 77 ]; then echo "SKIP: $(tail -n 1 "$work/up.txt")"; exit 77; fi
  [ "$rc" -eq 0 ] || { cat "$work/up.txt"; tail -n 30 "$work"/run/*.log; fail "cluster up exited $rc"; }
  for k in lost duplicated wrong member_kills; do
    [ "$(field "$work/s.json" $k)" = 0 ] || fail "$k is $(field "$work/s.json" $k), not 0"
  done
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
stateful)
  cp "$src/examples/topologies/cluster-stateful.yaml" "$work/t.yaml"  # its checkpoint folder: $work/cluster-state
  "$ringflow" cluster up "$work/t.yaml" --dir "$work/run" --summary-json "$work/s.json"
  rc=$?
  [ "$rc" -eq 0 ] || { tail -n 30 "$work"/run/*.log; fail "cluster up exited $rc"; }
  for k in lost duplicated wrong; do
    [ "$(field "$work/s.json" $k)" = 0 ] || fail "$k is $(field "$work/s.json" $k), not 0"
  done
  sent=$(field "$work/s.json" sent); replied=$(field "$work/s.json" replied); errors=$(field "$work/s.json" errors)
  [ "$sent" -gt 1000 ] || fail "only $sent messages sent"
  grep -q '"balanced": true' "$work/s.json" || fail "sent != replied + errors + lost + wrong"
  # The only errors: the trades in flight at the kill (max_in_flight 64), each "in doubt".
  [ "$errors" -le 64 ] || fail "$errors errors (more than the trades in flight at the kill)"
  if [ "$errors" -gt 0 ]; then
    grep -q '"unavailable": '"$errors" "$work/s.json" || fail "errors other than in-doubt: $(grep -A3 errors_by_code "$work/s.json")"
  fi
  [ "$(field "$work/s.json" member_failovers)" -ge 1 ] || fail "no member failover"
  [ "$(field "$work/s.json" member_failbacks)" -ge 1 ] || fail "no member fail-back"
  grep -q 'took node vwap over from member m2' "$work/run/m3.log" || fail "m3 did not take vwap over"
  grep -q 'node vwap: handed back' "$work/run/m3.log" || fail "m3 did not hand vwap back"
  grep -q 'asked for it back' "$work/run/m2.log" || fail "m2's new incarnation did not ask for vwap back"
  # The final checkpoint (m2's, at the end): requests_covered, a u64 at byte 28 of vwap.ckpt.
  covered=$(od -An -t u8 -j 28 -N 8 "$work/cluster-state/vwap.ckpt" | tr -d ' ')
  [ "$covered" -ge "$replied" ] || fail "the state holds $covered trades, $replied were answered (one lost)"
  [ "$covered" -le "$sent" ] || fail "the state holds $covered trades, only $sent were sent (one applied twice)"
  echo "ok: sent $sent, replied $replied, in doubt $errors, state holds $covered; taken over and handed back"
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
  # A stateful node's fallback: a member only, with durability: reply, sharing its checkpoint folder.
  st='name: c
cluster:
  members:
    - {name: m1, listen: "127.0.0.1:7101"}
    - {name: m2, listen: "127.0.0.1:7102", shares: [st]}
    - {name: m3, listen: "127.0.0.1:7103", shares: [other]}
nodes:
  - {name: ingest, function: validate, type: Trade}
  - {name: vwap, kernel: vwap, backend: cpu, at: m2, fallback: m3, checkpoint: {dir: st, durability: reply}}
edges: [{from: ingest, to: vwap}]
load:
  - {name: t, target: ingest, message: Trade, rate: 100}'
  expect "$st" "member 'm3' does not share its checkpoint folder"
  expect "${st/fallback: m3/fallback: local_cpu}" "a stateful node cannot fall back to local_cpu"
  expect "${st/durability: reply/durability: checkpoint}" "only with 'checkpoint: {dir: ..., durability: reply}'"
  printf '%s\n' "${st/shares: \[other\]/shares: [st]}" > "$work/t.yaml"
  out=$("$ringflow" validate "$work/t.yaml" 2>&1) || fail "a shared folder is refused: $out"
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
mtls)
  command -v openssl > /dev/null || { echo "SKIP: no openssl program to make certificates"; exit 77; }
  cd "$work" || exit 1
  for ca in ca other; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.pem -days 2 -subj "/CN=$ca" 2> /dev/null
  done
  for c in member:ca rogue:other; do  # member: the cluster CA's; rogue: another CA's
    openssl req -newkey rsa:2048 -nodes -keyout ${c%%:*}.key -out ${c%%:*}.csr -subj "/CN=${c%%:*}" 2> /dev/null
    openssl x509 -req -in ${c%%:*}.csr -CA ${c#*:}.pem -CAkey ${c#*:}.key -CAcreateserial -out ${c%%:*}.pem \
      -days 2 2> /dev/null
  done
  cat > t.yaml <<YAML
name: c
duration_s: 3
cluster:
  members:
    - {name: m1, listen: "127.0.0.1:0"}
    - {name: m2, listen: "127.0.0.1:0"}
  tls: {ca: ca.pem, cert: member.pem, key: member.key}
  start_timeout_ms: 1500
nodes:
  - {name: check, function: validate, type: SaxpyRequest, at: m1}
  - {name: saxpy, kernel: saxpy, backend: cpu, at: m2}
edges: [{from: check, to: saxpy}]
load:
  - {name: clients, target: check, message: SaxpyRequest, rate: 500, at: m1}
YAML
  # 1. Both members with the cluster CA's certificate: the graph runs over TLS.
  "$ringflow" cluster up t.yaml --dir run --summary-json s.json > up.txt 2>&1; rc=$?
  [ "$rc" -eq 0 ] || { cat up.txt; tail -n 20 run/*.log; fail "cluster up over TLS exited $rc"; }
  [ "$(field s.json lost)" = 0 ] && [ "$(field s.json replied)" -gt 500 ] || fail "TLS run: $(cat s.json)"
  grep -q '"tls":true' run/m1.log || fail "m1 did not listen with TLS"
  # 2. A member's TLS port (m2 alone) asks for the client's certificate and checks it against the CA.
  mkdir d
  "$ringflow" run t.yaml --member m2 --cluster-dir d --http off --duration 20 > m2.out 2>&1 &
  m2=$!
  for _ in $(seq 200); do [ -s d/m2.addr ] && break; sleep 0.05; done
  addr=$(cut -d' ' -f1 d/m2.addr)
  [ -n "$addr" ] || { kill $m2; fail "m2 did not publish its address: $(cat m2.out)"; }
  hs() { (sleep 1; echo) | timeout 10 openssl s_client -connect "$addr" -CAfile ca.pem "$@" 2>&1; }
  out=$(hs -cert member.pem -key member.key); rc=$?
  [ "$rc" -eq 0 ] || { kill $m2; fail "a client with the cluster CA's certificate was refused: $out"; }
  out=$(hs -cert rogue.pem -key rogue.key); rc=$?
  [ "$rc" -ne 0 ] && grep -q "unknown ca" <<< "$out" || { kill $m2; fail "another CA's client was not refused: $out"; }
  out=$(hs); rc=$?
  [ "$rc" -ne 0 ] && grep -q "certificate required" <<< "$out" || { kill $m2; fail "a client without a certificate was not refused: $out"; }
  kill $m2; wait $m2 2> /dev/null
  # 3. A server with another CA's certificate where m1 expects m2: m1 refuses it (exit 4).
  port=$(( 20000 + RANDOM % 20000 ))
  openssl s_server -accept $port -cert rogue.pem -key rogue.key -CAfile other.pem -quiet > rogue.out 2>&1 &
  rogue=$!
  mkdir d2
  echo "127.0.0.1:$port 1" > d2/m2.addr
  sleep 0.5
  out=$("$ringflow" run t.yaml --member m1 --cluster-dir d2 --http off --duration 1 2>&1); rc=$?
  kill $rogue 2> /dev/null; wait $rogue 2> /dev/null
  [ "$rc" -eq 4 ] && grep -q "unreachable at start" <<< "$out" || fail "m1 accepted a rogue server (exit $rc): $out"
  # ...and it was the certificate check that refused it: m1's TLS alert, as the rogue server saw it.
  grep -q "alert unknown ca" rogue.out || fail "m1 did not refuse the rogue's certificate: $(head -n 3 rogue.out)"
  echo "ok: TLS cluster run lost 0; m2 refused another CA's client and a client without a certificate; m1 refused a rogue server"
  ;;
stateful-partition)
  sed -e 's/{kind: member_kill, member: m2, at_s: 3, restore_after_s: 2}/{kind: member_partition, member: m2, at_s: 3, restore_after_s: 2}/' \
    "$src/examples/topologies/cluster-stateful.yaml" > "$work/t.yaml"
  grep -q member_partition "$work/t.yaml" || fail "the partition topology was not made"
  up_partitioned "$work/t.yaml"
  grep -q '"balanced": true' "$work/s.json" || fail "sent != replied + errors + lost + wrong"
  sent=$(field "$work/s.json" sent); replied=$(field "$work/s.json" replied)
  unreachable=$(sed -n 's/^ *"node_unreachable": \([0-9]*\).*/\1/p' "$work/s.json" | head -1)
  doubt=$(sed -n 's/^ *"unavailable": \([0-9]*\).*/\1/p' "$work/s.json" | head -1)
  [ "$(field "$work/s.json" errors)" = $(( ${unreachable:-0} + ${doubt:-0} )) ] || fail "errors other than unreachable / in doubt"
  [ "${unreachable:-0}" -gt 0 ] || fail "no caller was told node_unreachable during the partition"
  [ "${doubt:-0}" -le 64 ] || fail "$doubt in doubt: more than the trades in flight"
  [ "$(field "$work/s.json" member_partitions)" = 1 ] && [ "$(field "$work/s.json" member_heals)" = 1 ] || fail "not partitioned and healed once"
  [ "$(field "$work/s.json" member_failbacks)" -ge 1 ] || fail "no fail-back after the heal"
  grep -q 'took node vwap over' "$work/run/m3.log" && fail "m3 took vwap over while m2 held its lock"
  grep -q 'did not take node vwap over' "$work/run/m3.log" || fail "m3 did not log why it did not take vwap over"
  covered=$(od -An -t u8 -j 28 -N 8 "$work/cluster-state/vwap.ckpt" | tr -d ' ')
  [ "$covered" -ge "$replied" ] && [ "$covered" -le "$sent" ] || fail "the state holds $covered trades: replied $replied, sent $sent"
  echo "ok: sent $sent, replied $replied, unreachable $unreachable, in doubt $doubt, state $covered; never taken over"
  ;;
partition)
  topo="$work/partition.yaml"
  sed -e 's/^name: cluster-demo/name: cluster-partition/' -e 's/^duration_s: 10/duration_s: 14/' \
    -e 's/{kind: member_kill, member: m2, at_s: 3, restore_after_s: 3}/{kind: member_partition, member: m2, at_s: 3, restore_after_s: 3}/' \
    "$src/examples/topologies/cluster-demo.yaml" > "$topo"
  grep -q member_partition "$topo" || fail "the partition topology was not made"
  up_partitioned "$topo"
  [ "$(field "$work/s.json" member_partitions)" = 1 ] && [ "$(field "$work/s.json" member_heals)" = 1 ] ||
    fail "the partition was not cut and healed once: $(cat "$work/up.txt")"
  [ "$(field "$work/s.json" member_failovers)" -ge 1 ] || fail "no member failover"
  [ "$(field "$work/s.json" member_failbacks)" -ge 1 ] || fail "no fail-back after the heal"
  grep -q '"balanced": true' "$work/s.json" || fail "sent != replied + errors + lost + wrong"
  grep -q 'member m2 lost.*heartbeat' "$work/run/m1.log" || fail "m1 did not lose m2 by the heartbeat"
  grep -q 'm2 .*incarnations 1 ' "$work/up.txt" || fail "m2 was restarted: $(grep m2 "$work/up.txt")"
  tag=$(grep -o 'rfm[0-9]*-' "$work/up.txt" | head -1)
  [ -n "$tag" ] || fail "no namespace named in: $(cat "$work/up.txt")"
  ! ip netns list | grep -q "${tag%-}" || fail "namespaces left behind: $(ip netns list)"
  echo "ok: partition of m2 for 3 s: lost 0, failover by heartbeat, fail-back after the heal, m2 never restarted"
  ;;
*) fail "unknown case $case_" ;;
esac

// The engine's parts alone (label `ops`): the state machines the architecture step split out of the
// engine (token bucket, the kernel-host fault schedule, the device-restore timer), the wait policy's
// idle ladder, and the exposition renderers over a hand-built snapshot — each with time passed in
// or a snapshot given, no threads, no runtime.
#include <catch2/catch.hpp>

#include <chrono>

#include "exposition.hpp"
#include "fault_schedule.hpp"
#include "load_driver.hpp"
#include "ringflow/wait_policy.hpp"
#include "support/prom_parse.hpp"

using namespace ringflow;
using namespace ringflow::ops;
using namespace ringflow::ops::engine_parts;
using namespace std::chrono_literals;

TEST_CASE("token bucket: a rate, a burst of 10 ms worth, and the wait until the next token", "[ops][engine]") {
  token_bucket b;
  const auto t0 = token_bucket::clock::time_point{} + 1s;
  b.set_rate(1000.0, t0);      // 1000/s: burst max(1, 10) = 10 tokens
  CHECK(b.take(t0) > 0ns);     // starts empty
  const auto later = t0 + 1s;  // a second later the bucket holds its burst, not 1000
  int granted = 0;
  while (b.take(later) == 0ns) ++granted;
  CHECK(granted == 10);
  const auto wait = b.take(later);
  CHECK(wait > 0ns);
  CHECK(wait <= 1ms);                  // one token at 1000/s
  CHECK(b.take(later + wait) == 0ns);  // and after that wait it is there
  token_bucket unlimited;
  unlimited.set_rate(0, t0);
  for (int i = 0; i < 1000; ++i) REQUIRE(unlimited.take(t0) == 0ns);
}

TEST_CASE("kernel-host fault schedule: each kill and injection fires once, in time order", "[ops][engine]") {
  host_fault_schedule s;
  s.add_kill(2.0);
  s.add_kill(0.5);
  s.add_inject(1.0, sim::fault_rule::at(sim::fault_kind::crash, 1));
  s.add_inject(0.2, sim::fault_rule::at(sim::fault_kind::hang, 1));
  s.seal();
  CHECK(s.kills_due(0.1) == 0);
  CHECK(s.injects_due(0.1).empty());
  CHECK(s.kills_due(0.6) == 1);
  const auto first = s.injects_due(1.5);
  REQUIRE(first.size() == 2);
  CHECK(first[0].kind == sim::fault_kind::hang);
  CHECK(first[1].kind == sim::fault_kind::crash);
  CHECK(s.kills_due(0.6) == 0);  // not again
  CHECK(s.kills_due(10) == 1);
  CHECK(s.injects_due(10).empty());
}

TEST_CASE("restore timer: due once the device was lost that long, restarted by a recovery", "[ops][engine]") {
  restore_timer r;
  CHECK_FALSE(r.armed());
  CHECK_FALSE(r.due(true, 1'000'000'000));  // unarmed: never
  r.set(0.5);
  const std::uint64_t s = 1'000'000'000;
  CHECK_FALSE(r.due(true, 1 * s));              // lost from now
  CHECK_FALSE(r.due(true, 1 * s + s / 4));      // 0.25 s
  CHECK_FALSE(r.due(false, 1 * s + s / 3));     // back by itself: the clock restarts
  CHECK_FALSE(r.due(true, 2 * s));              // lost again
  CHECK(r.due(true, 2 * s + s / 2));            // 0.5 s lost: restore
  CHECK_FALSE(r.due(true, 2 * s + s / 2 + 1));  // counted anew after a restore
  restore_timer at_once;
  at_once.set(0);
  CHECK(at_once.due(true, 5 * s));  // restore_after_s: 0 restores at the first tick that sees it lost
}

TEST_CASE("wait policy: spin, then yield, then park, and a policy that never parks keeps yielding", "[ops][engine]") {
  wait_policy w;
  w.spin_iterations = 3;
  w.yield_iterations = 2;
  CHECK(w.step(1) == wait_step::spin);
  CHECK(w.step(3) == wait_step::spin);
  CHECK(w.step(4) == wait_step::yield);
  CHECK(w.step(5) == wait_step::yield);
  CHECK(w.step(6) == wait_step::park);
  std::uint32_t idle = 0;
  int parks_at = 0;
  for (int i = 1; i <= 6; ++i)
    if (idle_step(w, idle)) parks_at = i;
  CHECK(parks_at == 6);
  w.park = false;
  idle = 0;
  for (int i = 0; i < 100; ++i) REQUIRE_FALSE(idle_step(w, idle));
  CHECK(idle <= w.park_threshold() + 1);  // held in the yield phase, never wrapping
}

namespace {

engine_snapshot two_node_snapshot(const topology& t) {
  engine_snapshot s;
  s.topo = &t;
  s.phase = engine_phase::running;
  s.runtime_live = true;
  const histogram durations;  // empty, with the default buckets
  node_view ring;
  ring.spec = &t.nodes[0];
  ring.duration = durations.snapshot();
  ring.backend_preference = "sim";
  ring.device_id = "sim:score";
  ring.ok = 7;
  ring.failed = 1;
  ring_view r;
  r.name = "score";
  r.running = true;
  r.probe.attached = true;
  r.probe.backend = "sim";
  r.probe.request_depth = 3;
  r.in_flight = 2;
  r.replayed = 5;
  ring.rings.push_back(r);
  ring.devices_down.push_back("sim:score");
  node_view cpu;
  cpu.spec = &t.nodes[1];
  cpu.duration = durations.snapshot();
  cpu.ok = 8;
  cpu.in_flight = 1;
  s.nodes = {ring, cpu};
  s.counters["score"].faults["crash"] = 2;
  s.counters["score"].restarts = 2;
  ladder_device_status d;
  d.id = "sim:score";
  d.backend = "sim";
  s.ladder.devices.push_back(d);
  s.summary.sent = 10;
  s.summary.replied = 8;
  s.ready = true;
  return s;
}

}  // namespace

TEST_CASE("exposition: metrics text and topology JSON are rendered from the snapshot alone", "[ops][engine]") {
  topology t;
  t.name = "t";
  t.file = "t.yaml";
  node_spec ring;
  ring.name = "score";
  ring.kind = node_kind::ring;
  ring.kernel = "score";
  ring.in_type = "ScoreRequest";
  ring.out_type = "ScoreReply";
  node_spec cpu;
  cpu.name = "check";
  cpu.kind = node_kind::cpu;
  cpu.function = "validate";
  cpu.in_type = cpu.out_type = "ScoreReply";
  t.nodes = {ring, cpu};
  edge_spec e;
  e.from = "score";
  e.to = "check";
  t.edges.push_back(e);
  const engine_snapshot s = two_node_snapshot(t);

  const auto fams = ringflow::testing::parse_prometheus(metrics_text(s));  // strict: throws on bad text
  auto value = [&](const std::string& fam, const std::map<std::string, std::string>& labels) {
    for (const auto& x : fams.at(fam).samples)
      if (x.labels == labels) return x.value;
    FAIL("no sample of " << fam);
    return -1.0;
  };
  CHECK(value("ringflow_messages_total", {{"actor", "score"}, {"outcome", "ok"}}) == 7);
  CHECK(value("ringflow_in_flight", {{"actor", "score"}}) == 2);  // the ring actors' outboxes
  CHECK(value("ringflow_in_flight", {{"actor", "check"}}) == 1);  // the node's own count
  CHECK(value("ringflow_ring_queue_depth", {{"ring", "score"}, {"direction", "request"}}) == 3);
  CHECK(value("ringflow_faults_total", {{"actor", "score"}, {"kind", "crash"}}) == 2);
  CHECK(value("ringflow_restarts_total", {{"actor", "score"}}) == 2);
  CHECK(value("ringflow_replays_total", {{"actor", "score"}}) == 5);
  CHECK(value("ringflow_device_up", {{"device", "sim:score"}}) == 0);  // lost: down though its breaker is closed
  CHECK(value("ringflow_breaker_state", {{"device", "sim:score"}}) == 0);
  CHECK(value("ringflow_load_messages_total", {{"outcome", "sent"}}) == 10);
  CHECK(value("ringflow_ready", {}) == 1);

  const nlohmann::json j = topology_json(s);
  CHECK(j["name"] == "t");
  CHECK(j["phase"] == "running");
  REQUIRE(j["nodes"].size() == 2);
  CHECK(j["nodes"][0]["device"] == "sim:score");
  CHECK(j["nodes"][0]["replicas"][0]["runs_on"] == "sim");
  CHECK(j["nodes"][0]["replicas"][0]["incarnation"]["request_depth"] == 3);
  CHECK(j["nodes"][1]["function"] == "validate");
  CHECK(j["edges"][0]["to"] == "check");
  CHECK(j["supervisors"].is_null());
  CHECK(j["devices"][0]["breaker"] == "closed");
}

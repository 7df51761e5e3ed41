// The device fault ladder through the sim backend (label `faults`): the circuit breaker, the
// fault injector, and the fault matrix — each fault kind x ladder outcome under concurrent load
// from several client threads, checking that every request got exactly one answer
// (sent = replied + typed errors; lost = 0; duplicated = 0) and that replies are the right ones.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actor_test_support.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "ringflow/sim/sim_incarnation.hpp"
#include "ringflow/supervision/fault_ladder.hpp"
#include "ringflow/supervision/supervisor.hpp"
#include "support/exactly_once.hpp"
#include "support/quick_ladder.hpp"

using namespace ringflow;
using namespace ringflow::test;
using ringflow::demo_kernels::EchoKernel;
using sim::fault_kind;
using sim::fault_rule;
using namespace std::chrono_literals;

namespace {

using clk = std::chrono::steady_clock;

// ---- configurations sized for tests ----------------------------------------------------------
std::shared_ptr<sim::sim_device> make_device(std::string id = "sim:0", bool reinit_supported = true) {
  sim::sim_device_options o;
  o.id = std::move(id);
  o.reinit_supported = reinit_supported;
  o.pump_wait.spin_iterations = 200;
  return sim::sim_device::make(o, 7);
}

const ladder_ring_status& ring_of(const ladder_snapshot& s, const std::string& name) {
  for (const auto& r : s.rings)
    if (r.name == name) return r;
  FAIL("ring " << name << " is not supervised");
  return s.rings.front();
}

// One blocking call through the embedding API: true if it came back with the right echo.
bool rf_call_ok(runtime& rt, const std::string& ring) {
  ring_client c = rt.client(ring).value();
  const call_result r = c.call(echo_msg(4242));
  return r.ok() && echo_seq(r.reply) == 4242;
}

bool has_event(const ladder_snapshot& s, ladder_event::kind k) {
  for (const auto& e : s.recent_events)
    if (e.what == k) return true;
  return false;
}

struct fixture {
  runtime rt{small_runtime()};
  std::shared_ptr<sim::sim_device> dev;
  fault_ladder ladder;
  explicit fixture(std::shared_ptr<sim::sim_device> d = make_device(), ladder_config cfg = quick_ladder())
      : dev(std::move(d)), ladder(rt, std::move(cfg)) {}
  void spawn(const std::string& name) { ladder.spawn_ring_actor<EchoKernel>(name, dev, {}, quick_park()); }
};

}  // namespace

// ---- circuit breaker ---------------------------------------------------------------------------

TEST_CASE("circuit breaker: opens after N failures within the window, not when they are spread out",
          "[faults][breaker]") {
  breaker_config c;
  c.failure_threshold = 3;
  c.window = 1000ms;
  c.open_for = 100ms;
  circuit_breaker b(c);
  const auto t0 = clk::now();
  CHECK_FALSE(b.record_failure(t0));
  CHECK_FALSE(b.record_failure(t0 + 600ms));
  CHECK_FALSE(b.record_failure(t0 + 1200ms));  // the first fell out of the window
  CHECK(b.closed());
  CHECK(b.record_failure(t0 + 1300ms));
  CHECK(b.state() == breaker_state::open);
  CHECK(b.opens() == 1);
}

TEST_CASE("circuit breaker: one half-open probe after the cool-down, failure backs off, success closes",
          "[faults][breaker]") {
  breaker_config c;
  c.failure_threshold = 1;
  c.open_for = 100ms;
  c.max_open_for = 300ms;
  circuit_breaker b(c);
  const auto t0 = clk::now();
  REQUIRE(b.record_failure(t0));
  CHECK_FALSE(b.try_probe(t0 + 50ms));  // cooling down
  CHECK(b.try_probe(t0 + 100ms));       // the probe
  CHECK(b.state() == breaker_state::half_open);
  CHECK_FALSE(b.try_probe(t0 + 101ms));  // only one at a time
  b.probe_failed(t0 + 110ms);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.cooldown() == 200ms);  // doubled
  CHECK_FALSE(b.try_probe(t0 + 250ms));
  CHECK(b.try_probe(t0 + 310ms));
  b.probe_failed(t0 + 310ms);
  CHECK(b.cooldown() == 300ms);  // capped
  REQUIRE(b.try_probe(t0 + 610ms));
  b.probe_succeeded(t0 + 610ms);
  CHECK(b.closed());
  CHECK(b.recent_failures() == 0);
  CHECK(b.cooldown() == 100ms);  // reset
  CHECK_THROWS_AS(circuit_breaker(breaker_config{0}), std::invalid_argument);
}

// ---- fault injector ----------------------------------------------------------------------------

TEST_CASE("fault injector: triggers by message, time and seeded probability are deterministic", "[faults][sim]") {
  sim::fault_injector a(99), b(99);
  a.add(fault_rule::at(fault_kind::hang, 3));
  a.add(fault_rule::random(fault_kind::slow, 0.25));
  b.add(fault_rule::at(fault_kind::hang, 3));
  b.add(fault_rule::random(fault_kind::slow, 0.25));
  std::vector<int> sa, sb;
  for (int i = 0; i < 400; ++i) {
    auto ha = a.on_request("echo");
    auto hb = b.on_request("echo");
    sa.push_back(ha ? static_cast<int>(ha->kind) : -1);
    sb.push_back(hb ? static_cast<int>(hb->kind) : -1);
  }
  CHECK(sa == sb);
  CHECK(sa[2] == static_cast<int>(fault_kind::hang));
  CHECK(a.fired(fault_kind::hang) == 1);
  CHECK(a.fired(fault_kind::slow) > 60);
  CHECK(a.fired(fault_kind::slow) < 140);
  CHECK(a.requests_seen() == 400);

  sim::fault_injector t;
  t.add(fault_rule::after_time(fault_kind::crash, 0ns));
  t.add([] {
    auto r = fault_rule::at(fault_kind::out_of_memory, 1);
    r.kernel = "other";
    return r;
  }());
  auto h = t.on_request("echo");
  REQUIRE(h);
  CHECK(h->kind == fault_kind::crash);
  CHECK_FALSE(t.on_request("echo"));  // fired its one time
  CHECK(t.fired(fault_kind::out_of_memory) == 0);

  CHECK_THROWS_AS(t.add(fault_rule{}), std::invalid_argument);  // no trigger
  CHECK_THROWS_AS(t.add(fault_rule::random(fault_kind::hang, 1.5)), std::invalid_argument);
  CHECK(sim::fault_kind_from("corrupt_reply") == fault_kind::corrupt_reply);
  CHECK_FALSE(sim::fault_kind_from("gremlins"));
}

TEST_CASE("sim device without faults is transparent: every reply is the kernel's, in order", "[faults][sim]") {
  fixture f;
  f.spawn("echo");
  CHECK(f.rt.ring("echo")->backend() == "sim");
  const load_result r = run_load(f.rt, "echo", 3, 2000);
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  CHECK(ring_of(f.ladder.snapshot(), "echo").faults == 0);
}

// ---- the fault matrix ----------------------------------------------------------------------------

namespace {
struct matrix_case {
  fault_kind kind;
  bool reinit_supported;
  const char* outcome;  // "restart", "reinitialize", "reroute", "none"
};
}  // namespace

TEST_CASE("fault matrix: each fault kind under load -> its ladder step, exactly one answer per request",
          "[faults][matrix]") {
  const matrix_case cases[] = {
      {fault_kind::transient_error, true, "restart"},
      {fault_kind::crash, true, "restart"},
      {fault_kind::hang, true, "restart"},
      {fault_kind::corrupt_reply, true, "restart"},
      {fault_kind::out_of_memory, true, "reinitialize"},
      {fault_kind::sticky_error, true, "reinitialize"},
      {fault_kind::sticky_error, false, "reroute"},
      {fault_kind::device_lost, true, "reroute"},
      {fault_kind::slow, true, "none"},
  };
  for (const matrix_case& mc : cases) {
    DYNAMIC_SECTION(sim::to_string(mc.kind)
                    << (mc.reinit_supported ? "" : " (no in-process reinit)") << " -> " << mc.outcome) {
      fixture f(make_device("sim:0", mc.reinit_supported));
      f.spawn("echo");
      // Three faults of the kind, spread over the run (device_lost: the first one takes the device).
      for (std::uint64_t k : {500, 2500, 4500}) {
        auto rule = fault_rule::at(mc.kind, k);
        rule.latency = 2ms;
        f.dev->faults().add(rule);
      }
      const load_result r = run_load(f.rt, "echo", 4, 1500);
      require_exactly_once(r);
      INFO("core corrupt " << f.rt.ring("echo")->stats().corrupt_replies << " timeouts "
                           << f.rt.ring("echo")->stats().timeouts << " dup " << f.rt.ring("echo")->stats().duplicates);
      CHECK(r.ok == r.sent);  // recovery is far faster than the 10 s deadline: nothing may fail
      const ladder_snapshot s = f.ladder.snapshot();
      const ladder_ring_status& st = ring_of(s, "echo");
      const std::string outcome = mc.outcome;
      INFO("faults " << st.faults << " restarts " << st.restarts << " reinits " << st.reinits << " reroutes "
                     << st.reroutes << " backend " << st.backend);
      CHECK(f.dev->faults().fired(mc.kind) >= 1);
      if (outcome == "none") {
        CHECK(st.faults == 0);
        CHECK(st.backend == "sim");
      } else {
        CHECK(st.faults >= 1);
        CHECK(f.rt.ring("echo")->stats().replayed + st.corrupt_replies >= 1);
      }
      if (outcome == "restart") {
        CHECK(st.restarts >= 1);
        CHECK(st.reroutes == 0);
        CHECK(st.backend == "sim");
        if (mc.kind == fault_kind::hang) CHECK(st.hangs >= 1);
        if (mc.kind == fault_kind::corrupt_reply) CHECK(st.corrupt_replies >= 1);
      }
      if (outcome == "reinitialize") {
        CHECK(st.reinits >= 1);
        CHECK(f.dev->reinits() >= 1);
        CHECK(st.reroutes == 0);
        CHECK(st.backend == "sim");
      }
      if (outcome == "reroute") {
        CHECK(st.reroutes >= 1);
        CHECK_FALSE(st.on_device);
        CHECK(st.backend == "cpu");
      }
      CHECK(has_event(s, outcome == "none" ? ladder_event::kind::fault : ladder_event::kind::fault) ==
            (outcome != "none"));
    }
  }
}

// ---- ladder escalation, breaker, fail-back ---------------------------------------------------------

namespace {
const ladder_device_status& device_of(const ladder_snapshot& s, const std::string& id) {
  for (const auto& d : s.devices)
    if (d.id == id) return d;
  FAIL("device " << id << " unknown to the ladder");
  return s.devices.front();
}
}  // namespace

TEST_CASE("ladder: repeated transient faults escalate from restart to reinitialize", "[faults][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.restarts_before_reinit = 3;
  cfg.breaker.failure_threshold = 100;  // keep the breaker out of this test
  fixture f(make_device(), cfg);
  f.spawn("echo");
  for (std::uint64_t k : {200, 400, 600}) f.dev->faults().add(fault_rule::at(fault_kind::transient_error, k));
  const load_result r = run_load(f.rt, "echo", 2, 1000);
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  const ladder_snapshot snap = f.ladder.snapshot();
  const ladder_ring_status& st = ring_of(snap, "echo");
  CHECK(st.faults == 3);
  CHECK(st.restarts >= 3);  // two plain restarts + the restart after the reinitialization
  CHECK(st.reinits == 1);   // the third fault within the window
  CHECK(f.dev->reinits() == 1);
}

TEST_CASE("breaker: failures open it, ring actors reroute to the CPU, and fail back once probes succeed",
          "[faults][breaker][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.restarts_before_reinit = 100;  // restarts only: the breaker decides
  fixture f(make_device(), cfg);
  f.spawn("a");
  f.spawn("b");  // a healthy neighbour on the same device: rerouted with it, fails back with it
  for (std::uint64_t k : {100, 200, 300, 400, 500}) {
    auto rule = fault_rule::at(fault_kind::transient_error, k);
    rule.kernel = "echo";
    f.dev->faults().add(rule);
  }
  const load_result r = run_load(f.rt, "a", 3, 1000);
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  {
    const ladder_snapshot s = f.ladder.snapshot();
    CHECK(device_of(s, "sim:0").breaker_opens >= 1);
    CHECK(ring_of(s, "a").reroutes >= 1);
    CHECK(ring_of(s, "b").reroutes >= 1);
    CHECK(has_event(s, ladder_event::kind::breaker_open));
  }
  // No more faults: the half-open probe succeeds and both go back to the device.
  REQUIRE(wait_until([&] {
    const ladder_snapshot s = f.ladder.snapshot();
    return device_of(s, "sim:0").breaker == breaker_state::closed && ring_of(s, "a").on_device &&
           ring_of(s, "b").on_device;
  }));
  const ladder_snapshot s = f.ladder.snapshot();
  CHECK(ring_of(s, "a").backend == "sim");
  CHECK(ring_of(s, "b").backend == "sim");
  CHECK(ring_of(s, "a").fail_backs + ring_of(s, "b").fail_backs == 2);
  CHECK(has_event(s, ladder_event::kind::breaker_closed));
  const load_result again = run_load(f.rt, "b", 2, 500);
  require_exactly_once(again);
  CHECK(again.ok == again.sent);
}

TEST_CASE("device lost: reroute, probes fail while it is gone, fail-back after restore", "[faults][breaker][ladder]") {
  fixture f;
  f.spawn("echo");
  f.dev->faults().add(fault_rule::at(fault_kind::device_lost, 300));
  const load_result r = run_load(f.rt, "echo", 3, 800);
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  REQUIRE(f.dev->lost());
  CHECK(ring_of(f.ladder.snapshot(), "echo").backend == "cpu");
  // Probes while lost fail (the factory refuses): the cool-down backs off.
  REQUIRE(wait_until([&] { return device_of(f.ladder.snapshot(), "sim:0").breaker_opens >= 3; }));
  CHECK_FALSE(ring_of(f.ladder.snapshot(), "echo").on_device);
  f.dev->restore();
  REQUIRE(wait_until([&] {
    const ladder_snapshot s = f.ladder.snapshot();
    return ring_of(s, "echo").on_device && device_of(s, "sim:0").breaker == breaker_state::closed;
  }));
  CHECK(ring_of(f.ladder.snapshot(), "echo").backend == "sim");
  const load_result again = run_load(f.rt, "echo", 2, 500);
  require_exactly_once(again);
  CHECK(again.ok == again.sent);
}

TEST_CASE("a device that cannot start kernels: the ring actor starts on the CPU and moves over later",
          "[faults][ladder]") {
  fixture f;
  f.dev->lose("unplugged for the test");
  f.spawn("echo");
  CHECK(f.rt.ring("echo")->backend() == "cpu");
  CHECK_FALSE(ring_of(f.ladder.snapshot(), "echo").on_device);
  CHECK(rf_call_ok(f.rt, "echo"));
  f.dev->restore();
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").on_device; }));
  CHECK(f.rt.ring("echo")->backend() == "sim");
  CHECK(rf_call_ok(f.rt, "echo"));
}

TEST_CASE("sticky error with two ring actors on the device: one incident, one reinitialization", "[faults][ladder]") {
  fixture f;
  f.spawn("a");
  f.spawn("b");
  f.dev->faults().add(fault_rule::at(fault_kind::sticky_error, 200));
  std::thread other([&] { require_exactly_once(run_load(f.rt, "b", 1, 600)); });
  const load_result r = run_load(f.rt, "a", 2, 600);
  other.join();
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  REQUIRE(wait_until([&] {
    const ladder_snapshot s = f.ladder.snapshot();
    return ring_of(s, "a").backend == "sim" && ring_of(s, "b").backend == "sim";
  }));
  const ladder_snapshot s = f.ladder.snapshot();
  CHECK(f.dev->reinits() == 1);
  CHECK(ring_of(s, "a").faults + ring_of(s, "b").faults == 2);  // both kernels saw the poisoned context
  CHECK(device_of(s, "sim:0").recent_failures == 1);            // ... but the breaker counts one incident
  CHECK(device_of(s, "sim:0").breaker == breaker_state::closed);
}

TEST_CASE("hang longer than the deadlines: stuck requests get errc::timeout, the rest is served", "[faults][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.hang_timeout = 300ms;
  fixture f(make_device(), cfg);
  f.spawn("echo");
  f.dev->faults().add(fault_rule::at(fault_kind::hang, 50));
  ring_client c = f.rt.client("echo").value();
  std::atomic<int> ok{0}, timeouts{0}, other{0}, answered{0};
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    fb_msg m = echo_msg(static_cast<std::uint64_t>(i));
    m.deadline_ns = steady_now() + 100'000'000;  // 100 ms: shorter than the hang's detection
    c.submit(std::move(m), [&](call_result&& r) {
      (r.ok() ? ok : r.code == errc::timeout ? timeouts : other).fetch_add(1);
      answered.fetch_add(1);
    });
    if (i % 16 == 15) REQUIRE(wait_until([&] { return answered.load() > i - 16; }));
  }
  REQUIRE(wait_until([&] { return answered.load() == n; }));
  CHECK(ok + timeouts == n);
  CHECK(other == 0);
  CHECK(timeouts > 0);  // the hang outlived their deadlines
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").hangs == 1; }));
  CHECK(rf_call_ok(f.rt, "echo"));  // recovered
}

TEST_CASE("ladder: the ring actor is stable across many kernel restarts", "[faults][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.breaker.failure_threshold = 1000;
  cfg.restarts_before_reinit = 1000;
  fixture f(make_device(), cfg);
  caf::actor a = f.ladder.spawn_ring_actor<EchoKernel>("echo", f.dev, {}, quick_park());
  const auto core = f.rt.ring("echo");
  for (int k = 1; k <= 20; ++k)
    f.dev->faults().add(fault_rule::at(fault_kind::crash, static_cast<std::uint64_t>(k) * 50));
  // Through the actor itself (CAF request/response), not the embedding API.
  caf::scoped_actor self{f.rt.system()};
  int ok = 0;
  for (int i = 0; i < 1100; ++i) {
    self->request(a, caf::infinite, echo_msg(static_cast<std::uint64_t>(i)))
        .receive([&](fb_msg& reply) { ok += echo_seq(reply) == static_cast<std::uint64_t>(i); },
                 [&](caf::error& e) { FAIL("request " << i << ": " << f.rt.system().render(e)); });
  }
  CHECK(ok == 1100);
  CHECK(ring_of(f.ladder.snapshot(), "echo").restarts >= 20);
  CHECK(f.rt.ring("echo") == core);            // same core, same outbox
  CHECK(f.rt.registry().lookup("echo") == a);  // same actor, same name
  CHECK(core->stats().attaches >= 21);
}

TEST_CASE("ring actor removed while its kernel is being recovered: pending callers get errc::stopped",
          "[faults][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.hang_timeout = 10000ms;  // the hang is never detected: the ring actor is removed instead
  fixture f(make_device(), cfg);
  ring_actor_options opts;
  opts.stop_timeout = 100ms;  // how long stop() waits for the hung kernel to drain
  f.ladder.spawn_ring_actor<EchoKernel>("echo", f.dev, opts, quick_park());
  f.dev->faults().add(fault_rule::at(fault_kind::hang, 1));
  ring_client c = f.rt.client("echo").value();
  auto fut = c.submit(echo_msg(1));
  REQUIRE(wait_until([&] { return f.dev->faults().fired(fault_kind::hang) == 1; }));
  CHECK(f.rt.remove_ring("echo"));
  const call_result r = fut.get();
  CHECK(r.code == errc::stopped);
  REQUIRE(wait_until([&] { return f.ladder.snapshot().rings.empty(); }));
}

TEST_CASE("ladder configuration and supervise() errors are clear", "[faults][ladder]") {
  runtime rt(small_runtime());
  ladder_config bad = quick_ladder();
  bad.hang_timeout = 0ms;
  CHECK_THROWS_AS(fault_ladder(rt, bad), std::invalid_argument);
  bad = quick_ladder();
  bad.jitter = 1.5;
  CHECK_THROWS_AS(fault_ladder(rt, bad), std::invalid_argument);
  bad = quick_ladder();
  bad.breaker.failure_threshold = 0;
  CHECK_THROWS_AS(fault_ladder(rt, bad), std::invalid_argument);
  fault_ladder ladder(rt, quick_ladder());
  auto dev = make_device();
  CHECK_THROWS_WITH(ladder.supervise("nobody", dev, dev->factory<EchoKernel>(), cpu_incarnation_factory<EchoKernel>()),
                    Catch::Contains("no ring actor named 'nobody'"));
}

TEST_CASE("a faulted kernel restarts in place: same rings, new epoch, a hung one is replaced", "[faults][ladder]") {
  fixture f;
  f.spawn("echo");
  const auto core = f.rt.ring("echo");
  const incarnation_probe before = core->probe();
  f.dev->faults().add(fault_rule::at(fault_kind::crash, 20));
  require_exactly_once(run_load(f.rt, "echo", 1, 100));
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").restarts == 1; }));
  const incarnation_probe after = core->probe();
  CHECK(after.identity == before.identity);  // restarted in place, no new incarnation
  CHECK(after.epoch > before.epoch);
  CHECK(after.state == kernel_state::running);

  f.dev->faults().add(fault_rule::at(fault_kind::hang, f.dev->faults().requests_seen() + 5));
  require_exactly_once(run_load(f.rt, "echo", 1, 100));
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").restarts == 2; }));
  CHECK(core->probe().identity != before.identity);  // a hung kernel is abandoned, never restarted
  REQUIRE(wait_until([&] { return f.ladder.snapshot().graveyard == 0; }));
}

// ---- the ladder inside an OTP supervisor tree ------------------------------------------------------

TEST_CASE("ladder restarts do not count toward the supervisor's intensity, an actor crash does",
          "[faults][ladder][supervisor]") {
  ladder_config cfg = quick_ladder();
  cfg.breaker.failure_threshold = 1000;
  cfg.restarts_before_reinit = 1000;
  fixture f(make_device(), cfg);
  supervisor_spec spec;
  spec.name = "root";
  spec.flags.intensity = 1;  // OTP's default: one restart in 5 s
  spec.flags.period = 5000ms;
  child_spec echo;
  echo.id = "echo";
  echo.start = [&]() -> caf::expected<caf::actor> {
    return f.ladder.spawn_ring_actor<EchoKernel>("echo", f.dev, {}, quick_park());
  };
  spec.children.push_back(echo);
  auto sup = start_supervisor(f.rt, spec);
  REQUIRE(sup);
  const caf::actor_id first = sup->snapshot().children.at(0).actor;

  for (int k = 1; k <= 20; ++k)
    f.dev->faults().add(fault_rule::at(fault_kind::crash, static_cast<std::uint64_t>(k) * 60));
  const load_result r = run_load(f.rt, "echo", 2, 800);
  require_exactly_once(r);
  CHECK(r.ok == r.sent);
  CHECK(ring_of(f.ladder.snapshot(), "echo").restarts >= 20);
  supervisor_snapshot s = sup->snapshot();
  CHECK(s.restarts == 0);  // 20 kernel restarts, no OTP restart: the tree never noticed
  CHECK_FALSE(s.escalated);
  CHECK(s.children.at(0).running);
  CHECK(s.children.at(0).actor == first);

  // A crash of the ring actor itself is an OTP restart: a new ring actor under the same name,
  // supervised by the ladder again.
  const auto old_core = f.rt.ring("echo");
  caf::anon_send_exit(f.rt.registry().lookup("echo").value(), caf::exit_reason::kill);
  REQUIRE(wait_until([&] {
    const supervisor_snapshot now = sup->snapshot();
    return now.restarts == 1 && now.children.at(0).running && now.children.at(0).actor != first;
  }));
  REQUIRE(wait_until([&] { return f.rt.ring("echo") && f.rt.ring("echo") != old_core; }));
  f.dev->faults().add(fault_rule::at(fault_kind::transient_error, f.dev->faults().requests_seen() + 10));
  require_exactly_once(run_load(f.rt, "echo", 1, 200));
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").restarts >= 1 && rf_call_ok(f.rt, "echo"); }));
  CHECK(ring_of(f.ladder.snapshot(), "echo").faults == 1);  // the new actor's record: one fault, recovered
}

TEST_CASE("forget() during a restart back-off leaves the ring actor served (on the CPU)", "[faults][ladder]") {
  ladder_config cfg = quick_ladder();
  cfg.backoff_initial = std::chrono::microseconds(60'000'000);  // the second restart would wait a minute
  cfg.backoff_max = 60000ms;
  cfg.jitter = 0;
  fixture f(make_device(), cfg);
  f.spawn("echo");
  f.dev->faults().add(fault_rule::at(fault_kind::crash, 5));
  f.dev->faults().add(fault_rule::at(fault_kind::crash, 6));  // the replay of the first one's request
  ring_client c = f.rt.client("echo").value();
  std::vector<std::future<call_result>> futs;
  for (int i = 0; i < 8; ++i) futs.push_back(c.submit(echo_msg(static_cast<std::uint64_t>(i))));
  REQUIRE(wait_until([&] { return ring_of(f.ladder.snapshot(), "echo").phase == "backoff"; }));
  CHECK_FALSE(f.rt.ring("echo")->attached());
  CHECK(f.ladder.forget("echo"));
  CHECK(f.rt.ring("echo")->backend() == "cpu");
  for (int i = 0; i < 8; ++i) {
    const call_result r = futs[static_cast<std::size_t>(i)].get();
    REQUIRE(r.ok());
    CHECK(echo_seq(r.reply) == static_cast<std::uint64_t>(i));
  }
  CHECK_FALSE(f.ladder.forget("echo"));
}

// The device fault ladder through the sim backend (label `faults`): the circuit breaker, the
// fault injector, and the fault matrix — each fault kind x ladder outcome under concurrent load
// from several client threads, checking that every request got exactly one answer
// (sent = replied + typed errors; lost = 0; duplicated = 0) and that replies are the right ones.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "actor_test_support.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "ringflow/sim/sim_incarnation.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

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

ladder_config quick_ladder() {
  ladder_config c;
  c.hang_timeout = 50ms;
  c.backoff_initial = 500us;
  c.backoff_max = 20ms;
  c.probe_window = 50ms;
  c.breaker.open_for = 50ms;
  c.breaker.max_open_for = 200ms;
  c.restart_window = 2000ms;
  return c;
}

// ---- load: several threads, each pipelining echo requests through its own ring_client ---------
struct load_result {
  std::uint64_t sent = 0, ok = 0, errors = 0, lost = 0, duplicated = 0, wrong_reply = 0;
  std::vector<errc> error_codes;
};

load_result run_load(runtime& rt, const std::string& ring, int threads, int per_thread, int window = 16) {
  const std::size_t total = static_cast<std::size_t>(threads) * per_thread;
  auto answers = std::make_shared<std::vector<std::atomic<std::uint32_t>>>(total);
  auto ok = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto errs = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto wrong = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto codes_mu = std::make_shared<std::mutex>();
  auto codes = std::make_shared<std::vector<errc>>();
  std::atomic<std::uint64_t> sent{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      client_options co;
      co.window = static_cast<std::uint32_t>(window);
      co.default_timeout = 10000ms;
      ring_client c = rt.client(ring, co).value();
      auto outstanding = std::make_shared<std::atomic<int>>(0);
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t seq = static_cast<std::uint64_t>(t) * per_thread + i;
        while (outstanding->load() >= window) std::this_thread::yield();
        outstanding->fetch_add(1);
        sent.fetch_add(1);
        c.submit(echo_msg(seq), [=](call_result&& r) {
          (*answers)[seq].fetch_add(1);
          if (r.ok()) {
            if (echo_seq(r.reply) != seq) wrong->fetch_add(1);
            ok->fetch_add(1);
          } else {
            errs->fetch_add(1);
            std::lock_guard<std::mutex> lock(*codes_mu);
            codes->push_back(r.code);
          }
          outstanding->fetch_sub(1);
        });
      }
      REQUIRE(wait_until([&] { return outstanding->load() == 0; }, 30000ms));
    });
  }
  for (auto& th : ts) th.join();
  load_result r;
  r.sent = sent.load();
  r.ok = ok->load();
  r.errors = errs->load();
  r.wrong_reply = wrong->load();
  for (auto& a : *answers) {
    const std::uint32_t n = a.load();
    if (n == 0) ++r.lost;
    if (n > 1) ++r.duplicated;
  }
  r.error_codes = *codes;
  return r;
}

void require_exactly_once(const load_result& r) {
  INFO("sent " << r.sent << " ok " << r.ok << " errors " << r.errors << " lost " << r.lost << " duplicated "
               << r.duplicated << " wrong " << r.wrong_reply);
  REQUIRE(r.sent == r.ok + r.errors);
  REQUIRE(r.lost == 0);
  REQUIRE(r.duplicated == 0);
  REQUIRE(r.wrong_reply == 0);
}

const ladder_ring_status& ring_of(const ladder_snapshot& s, const std::string& name) {
  for (const auto& r : s.rings)
    if (r.name == name) return r;
  FAIL("ring " << name << " is not supervised");
  return s.rings.front();
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

TEST_CASE("circuit breaker: opens after N failures within the window, not when they are spread out", "[faults][breaker]") {
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

TEST_CASE("circuit breaker: one half-open probe after the cool-down; failure backs off, success closes", "[faults][breaker]") {
  breaker_config c;
  c.failure_threshold = 1;
  c.open_for = 100ms;
  c.max_open_for = 300ms;
  circuit_breaker b(c);
  const auto t0 = clk::now();
  REQUIRE(b.record_failure(t0));
  CHECK_FALSE(b.try_probe(t0 + 50ms));       // cooling down
  CHECK(b.try_probe(t0 + 100ms));            // the probe
  CHECK(b.state() == breaker_state::half_open);
  CHECK_FALSE(b.try_probe(t0 + 101ms));      // only one at a time
  b.probe_failed(t0 + 110ms);
  CHECK(b.state() == breaker_state::open);
  CHECK(b.cooldown() == 200ms);              // doubled
  CHECK_FALSE(b.try_probe(t0 + 250ms));
  CHECK(b.try_probe(t0 + 310ms));
  b.probe_failed(t0 + 310ms);
  CHECK(b.cooldown() == 300ms);              // capped
  REQUIRE(b.try_probe(t0 + 610ms));
  b.probe_succeeded(t0 + 610ms);
  CHECK(b.closed());
  CHECK(b.recent_failures() == 0);
  CHECK(b.cooldown() == 100ms);              // reset
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

TEST_CASE("fault matrix: each fault kind under load -> its ladder step, exactly one answer per request", "[faults][matrix]") {
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
    DYNAMIC_SECTION(sim::to_string(mc.kind) << (mc.reinit_supported ? "" : " (no in-process reinit)") << " -> "
                                            << mc.outcome) {
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
      INFO("core corrupt " << f.rt.ring("echo")->stats().corrupt_replies << " timeouts " << f.rt.ring("echo")->stats().timeouts << " dup " << f.rt.ring("echo")->stats().duplicates);
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
      CHECK(has_event(s, outcome == "none" ? ladder_event::kind::fault : ladder_event::kind::fault) == (outcome != "none"));
    }
  }
}

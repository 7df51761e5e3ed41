// Stateful ring actors across incarnations (ring_core + state_journal): the latest snapshot and
// the journal give every new incarnation — restarted in place, abandoned and replaced, under random
// sim faults — the state of a fault-free run, each request applied exactly once. The kernel is
// VwapKernel (demo_kernels.hpp): its state is exact integer sums, so the comparison is byte for
// byte. Without CAF (label tsan), as test_faults_stress.cpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "actor_test_support.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "support/ladder_controller.hpp"
#include "support/stateful_vwap.hpp"

using namespace ringflow;
using namespace ringflow::test;
using demo_kernels::VwapKernel;
using sim::fault_kind;
using sim::fault_rule;
using namespace std::chrono_literals;
using namespace ringflow::test::stateful_vwap;

TEST_CASE("stateful ring actor: snapshots, restart in place and replacement keep the fault-free state",
          "[state][tsan]") {
  completion_poller poller{small_runtime().poller};
  auto core = make_core(poller, state_options(16));
  const incarnation_factory make = cpu_incarnation_factory<VwapKernel>(state_rings());
  core->attach(make(&poller.bell()));

  std::vector<trade_spec> trades;
  for (std::uint64_t i = 0; i < 600; ++i) trades.push_back(trade_for(i));
  one_submitter sub(core, trades.size());
  std::vector<std::unique_ptr<incarnation>> graveyard;
  for (std::size_t i = 0; i < trades.size(); ++i) {
    sub.submit(trades[i], i);
    if (i % 100 == 50) {  // drained and restarted in place: the stale state is restored over
      std::unique_ptr<incarnation> old = core->detach();
      REQUIRE(old);
      REQUIRE(old->restart());
      core->attach(std::move(old));
    } else if (i % 100 == 90) {  // abandoned with requests in its ring, replaced by a fresh one
      std::unique_ptr<incarnation> old = core->detach_abandon();
      REQUIRE(old);
      old->abandon();
      graveyard.push_back(std::move(old));
      core->attach(make(&poller.bell()));
    }
  }
  sub.require_answered_in_order(trades);  // each once, in order, the fault-free running counts
  const std::vector<std::uint8_t> final_state = fresh_snapshot(*core);
  CHECK(same_state(final_state, reference(trades)));
  const ring_stats s = core->stats();
  CHECK(s.state_restores == 13);  // the first attach, 6 in place, 6 replaced
  CHECK(s.snapshots >= 600 / 16 / 2);
  CHECK(s.journal_depth <= 16 + 64 + 64 + 1);
  CHECK(core->state()->requests_covered == 600);
  core->stop();
}

TEST_CASE("stateful ring actor under random sim faults: the final state is the fault-free run's, exactly once",
          "[state][tsan]") {
  sim::sim_device_options dopts;
  dopts.pump_wait.spin_iterations = 200;
  auto dev = sim::sim_device::make(dopts, 4321);
  for (fault_kind k : {fault_kind::transient_error, fault_kind::crash, fault_kind::hang, fault_kind::corrupt_reply,
                       fault_kind::sticky_error, fault_kind::slow}) {
    auto rule = fault_rule::random(k, 0.002);
    rule.latency = 200us;
    dev->faults().add(rule);
  }
  completion_poller poller{small_runtime().poller};
  auto core = make_core(poller, state_options(32, 128));
  const incarnation_factory make = dev->factory<VwapKernel>(state_rings());
  core->hold_bad_replies(true);
  core->attach(make(&poller.bell()));
  ladder_controller controller(core, dev, make, &poller.bell());

  constexpr int threads = 3, per_thread = 1500;
  std::vector<trade_spec> trades;
  for (std::uint64_t i = 0; i < threads * per_thread; ++i) trades.push_back(trade_for(i));
  auto sub = std::make_shared<one_submitter>(core, trades.size());
  std::vector<std::thread> ts;
  for (int th = 0; th < threads; ++th)
    ts.emplace_back([&, th] {
      for (int i = 0; i < per_thread; ++i) {
        const std::size_t k = static_cast<std::size_t>(th * per_thread + i);
        completion_target target;
        target.callback = [sub, k](call_result&& r) {
          if (!r.ok()) sub->errors.fetch_add(1);
          sub->answers[k].fetch_add(1);
        };
        std::string detail;
        for (;;) {
          const errc e = core->submit(trade_msg(trades[k]), std::move(target), nullptr, detail);
          if (e == errc::ok) break;
          if (e != errc::overloaded) {
            sub->errors.fetch_add(1);
            break;
          }
          std::this_thread::yield();
        }
      }
    });
  for (auto& t : ts) t.join();
  // The rest runs fault-free; the controller still replaces an incarnation a fault already broke
  // (a snapshot request held by a hang, say) until the final snapshot is in.
  dev->faults().clear();
  const bool drained = wait_until([&] { return core->in_flight() == 0; }, 60000ms);
  CHECK(drained);
  (void)sub->wait_answered(trades.size(), 5000ms);  // callbacks still counting (in_flight drops first)
  std::uint64_t lost = 0, duplicated = 0;
  for (auto& a : sub->answers) {
    lost += a.load() == 0;
    duplicated += a.load() > 1;
  }
  INFO("faults fired " << dev->faults().fired_total() << ", replacements " << controller.replacements() << ", restores "
                       << core->stats().state_restores << ", journal replays dropped "
                       << core->stats().journal_replayed);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(sub->errors.load() == 0);
  CHECK(dev->faults().fired_total() >= 5);
  CHECK(controller.replacements() >= 3);
  // The state: every trade exactly once.
  const std::vector<std::uint8_t> final_state = fresh_snapshot(*core);
  CHECK(same_state(final_state, reference(trades)));
  CHECK(core->state()->requests_covered == trades.size());
  controller.stop();
  CHECK(controller.step_failures() == 0);
  core->stop();
}

TEST_CASE("stateful ring actor: incarnations and options that cannot keep the state are refused", "[state]") {
  completion_poller poller{small_runtime().poller};
  auto core = make_core(poller, state_options(16));
  // A stateless kernel's incarnation (same types would be needed; a CPU Vwap without arenas).
  cpu_incarnation_options small = quick_park();
  CHECK_THROWS_WITH(core->attach(cpu_incarnation_factory<VwapKernel>(small)(&poller.bell())),
                    Catch::Contains("cannot carry its 776-byte state (snapshots and restores: 784 bytes)"));
  // A stateless ring actor attaching a stateful incarnation, and the reverse.
  ring_actor_options plain;
  auto stateless = make_core(poller, plain);
  CHECK_THROWS_WITH(stateless->attach(cpu_incarnation_factory<VwapKernel>(state_rings())(&poller.bell())),
                    Catch::Contains("keeps 776 bytes of kernel state, the actor 0"));
  ring_actor_options wrong = state_options(16);
  wrong.state.state_bytes = 64;
  auto mismatched = make_core(poller, wrong);
  CHECK_THROWS_WITH(mismatched->attach(cpu_incarnation_factory<VwapKernel>(state_rings())(&poller.bell())),
                    Catch::Contains("keeps 776 bytes of kernel state, the actor 64"));
  ring_actor_options tiny = state_options(100);
  tiny.state.journal_max = 120;  // < snapshot_every + window
  CHECK_THROWS_WITH(make_core(poller, tiny), Catch::Contains("journal_max (120) must be at least"));
  ring_actor_options zero = state_options(1);
  zero.state.snapshot_every = 0;
  CHECK_THROWS_WITH(make_core(poller, zero), Catch::Contains("snapshot_every must be >= 1"));
  // Stateless ring actors have no state to read.
  CHECK_FALSE(stateless->state().has_value());
  stateless->request_snapshot();  // no effect
  core->stop();
  stateless->stop();
  mismatched->stop();
}

namespace {
std::atomic<std::int64_t> drift_calls{0};
/// VwapKernel whose handler also adds a per-process call count to key 0's notional: the same
/// requests applied again (a replay, the host's check) give another state. Never do this.
struct DriftKernel {
  using request = msg::Trade;
  using reply = msg::VwapReply;
  using state = VwapKernel::state;
  static constexpr const char* name = "drift";
  static void init(state& s) { VwapKernel::init(s); }
  static status handle(const msg_view& in, reply_writer& out, state& s) {
    s.keys[0].notional += drift_calls.fetch_add(1);
    return VwapKernel::handle(in, out, s);
  }
};

/// Submits trades 0..n-1 (restarting the incarnation in place every 100) and waits for the answers.
void run_trades(const std::shared_ptr<ring_core>& core, std::size_t n) {
  one_submitter sub(core, n);
  for (std::size_t i = 0; i < n; ++i) {
    sub.submit(trade_for(i), i);
    if (i % 100 == 50) {
      std::unique_ptr<incarnation> old = core->detach();
      REQUIRE(old);
      REQUIRE(old->restart());
      core->attach(std::move(old));
    }
  }
  REQUIRE(sub.wait_answered(sub.answers.size()));
  CHECK(sub.errors.load() == 0);
}
}  // namespace

TEST_CASE("state.verify: each snapshot is checked by a host replay, a non-deterministic handler is reported",
          "[state][tsan]") {
  completion_poller poller{small_runtime().poller};
  {
    ring_actor_options o = state_options(16);
    o.state.verify = true;
    with_kernel_state<VwapKernel>(o);
    auto core = make_core(poller, o);
    const incarnation_factory make = cpu_incarnation_factory<VwapKernel>(state_rings());
    core->attach(make(&poller.bell()));
    run_trades(core, 400);
    (void)fresh_snapshot(*core);
    const ring_stats s = core->stats();
    CHECK(s.state_verified >= 400 / 16 / 2);  // replays after each restart included
    CHECK(s.state_verify_failures == 0);
    CHECK(core->state()->verify_failure.empty());
    core->stop();
  }
  {
    ring_actor_options o = state_options(16);
    o.state.verify = true;
    with_kernel_state<DriftKernel>(o);
    auto core = make_core(poller, o);
    const incarnation_factory make = cpu_incarnation_factory<DriftKernel>(state_rings());
    core->attach(make(&poller.bell()));
    run_trades(core, 200);
    (void)fresh_snapshot(*core);
    const ring_stats s = core->stats();
    CHECK(s.state_verified >= 1);
    CHECK(s.state_verify_failures >= 1);
    CHECK_THAT(core->state()->verify_failure, Catch::Contains("the handler is not deterministic"));
    CHECK_THAT(core->state()->verify_failure, Catch::Contains("applied on the host to the previous snapshot"));
    core->stop();
  }
  // Without the host handler, verify is refused (nothing to replay with).
  ring_actor_options bare = state_options(16);
  bare.state.verify = true;
  CHECK_THROWS_WITH(make_core(poller, bare), Catch::Contains("state.verify needs the kernel's host handler"));
}

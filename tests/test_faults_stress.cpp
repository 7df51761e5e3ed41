// Concurrency stress of what the fault ladder relies on, without CAF (label tsan: Debian's libcaf
// is not instrumented, so the ladder's own tests, which need a runtime, cannot run under TSan).
// Client threads pipeline requests into a bare ring core whose sim incarnations fault at random
// (seeded); a controller thread plays the ladder's part — it drains faulted and corrupting kernels
// and restarts them in place, abandons hung ones for fresh incarnations; every attach replays the outbox.
// Invariant: every request answered exactly once, with its own reply; no errors at all.
#include <catch2/catch.hpp>

#include <thread>

#include "actor_test_support.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "support/client_stress.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace ringflow::demo_kernels;
using sim::fault_kind;
using sim::fault_rule;
using namespace std::chrono_literals;

TEST_CASE("random faults under load, replaced incarnations: exactly once, matching", "[faults][tsan]") {
  sim::sim_device_options dopts;
  dopts.pump_wait.spin_iterations = 200;
  auto dev = sim::sim_device::make(dopts, 1234);
  for (fault_kind k : {fault_kind::transient_error, fault_kind::crash, fault_kind::hang, fault_kind::corrupt_reply,
                       fault_kind::sticky_error, fault_kind::out_of_memory, fault_kind::slow}) {
    auto rule = fault_rule::random(k, 0.0015);
    rule.latency = 200us;
    dev->faults().add(rule);
  }
  completion_poller poller{small_runtime().poller};
  ring_actor_options opts;
  opts.window = 512;
  opts.stop_timeout = 500ms;
  auto core =
      std::make_shared<ring_core>("echo", EchoKernel::request::type_id_, EchoKernel::reply::type_id_, opts, poller);
  const incarnation_factory make = dev->factory<EchoKernel>(quick_park());
  core->hold_bad_replies(true);  // the controller below replaces corrupting kernels, as the ladder does
  core->attach(make(&poller.bell()));

  std::atomic<bool> done{false};
  std::atomic<int> replacements{0};
  std::atomic<int> restarts_in_place{0};
  std::atomic<int> step_failures{0};  // Catch assertions are not thread-safe: count, check after join
  std::thread controller([&] {
    std::vector<std::unique_ptr<incarnation>> graveyard;
    const incarnation* watched = nullptr;
    std::uint64_t beat = 0, corrupt = 0;
    auto beat_at = std::chrono::steady_clock::now();
    while (!done.load()) {
      const incarnation_probe p = core->probe();
      const ring_stats s = core->stats();
      const auto now = std::chrono::steady_clock::now();
      if (p.identity != watched) {
        watched = p.identity;
        beat = p.heartbeat;
        beat_at = now;
      }
      const bool faulted = p.state == kernel_state::faulted;
      const bool corrupted = s.corrupt_replies != corrupt;
      if (p.heartbeat != beat || p.request_depth == 0) {
        beat = p.heartbeat;
        beat_at = now;
      }
      const bool hung = now - beat_at > 30ms;
      if (faulted || corrupted || hung) {
        corrupt = s.corrupt_replies;
        // As the ladder does: a faulted or corrupting kernel is drained and restarted in place
        // (same rings, new epoch); a hung one is abandoned and replaced.
        std::unique_ptr<incarnation> old = hung && !faulted && !corrupted ? core->detach_abandon() : core->detach();
        if (dev->poisoned()) {
          std::string why;
          if (dev->reinitialize(why) != reinit_outcome::ok) step_failures.fetch_add(1);
        }
        if (!hung && old->restart()) {
          core->attach(std::move(old));
          restarts_in_place.fetch_add(1);
        } else {
          old->abandon();
          graveyard.push_back(std::move(old));
          core->attach(make(&poller.bell()));
        }
        replacements.fetch_add(1);
        watched = nullptr;
      }
      graveyard.erase(std::remove_if(graveyard.begin(), graveyard.end(), [](auto& i) { return i->finished(); }),
                      graveyard.end());
      // The controller is a periodic watchdog, as the ladder is (its watch interval): this sleep is
      // its polling period, not a wait for another thread's progress.
      std::this_thread::sleep_for(500us);
    }
  });

  client_stress s;
  s.threads = 3;
  s.per_thread = 2500;
  s.client = client_options{16, 30000ms};
  s.callback_window = 16;
  s.drain = 60000ms;
  const client_stress_result r = run_client_stress(core, s);
  step_failures.fetch_add(r.undrained);
  done.store(true);
  controller.join();

  const std::uint64_t lost = r.lost, duplicated = r.duplicated, mismatched = r.mismatched, errors = r.errors;
  INFO("faults fired " << dev->faults().fired_total() << ", replacements " << replacements.load() << " ("
                       << restarts_in_place.load() << " in place), replayed " << core->stats().replayed
                       << ", duplicate replies dropped " << core->stats().duplicates);
  CHECK(step_failures == 0);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(mismatched == 0);
  CHECK(errors == 0);
  CHECK(dev->faults().fired_total() >= 5);
  CHECK(replacements.load() >= 3);
  CHECK(restarts_in_place.load() >= 1);
  core->stop();
}

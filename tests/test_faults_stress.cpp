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
#include "support/ladder_controller.hpp"

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

  ladder_controller controller(core, dev, make, &poller.bell());

  client_stress s;
  s.threads = 3;
  s.per_thread = 2500;
  s.client = client_options{16, 30000ms};
  s.callback_window = 16;
  s.drain = 60000ms;
  const client_stress_result r = run_client_stress(core, s);
  controller.stop();

  const std::uint64_t lost = r.lost, duplicated = r.duplicated, mismatched = r.mismatched, errors = r.errors;
  INFO("faults fired " << dev->faults().fired_total() << ", replacements " << controller.replacements() << " ("
                       << controller.restarts_in_place() << " in place), replayed " << core->stats().replayed
                       << ", duplicate replies dropped " << core->stats().duplicates);
  CHECK(controller.step_failures() == 0);
  CHECK(r.undrained == 0);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(mismatched == 0);
  CHECK(errors == 0);
  CHECK(dev->faults().fired_total() >= 5);
  CHECK(controller.replacements() >= 3);
  CHECK(controller.restarts_in_place() >= 1);
  core->stop();
}

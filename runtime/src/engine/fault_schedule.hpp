// The fault schedule (internal to the engine): the topology's `faults:` compiled into what each
// node's devices do, and the timed part the engine's tick() carries out.
//
// Contract
//   * rule_of(): a fault_spec as a sim fault rule (kind, at_message, probability, times, latency).
//   * A node on a sim device gets every rule on its injector (time rules count from start_load()).
//   * A kernel-host node: message and probability rules are standing rules every worker starts with
//     (placement); `kill_worker` at t and timed sim faults at t are the service's part, kept in a
//     host_fault_schedule and sent by tick(): SIGKILL to the node's workers, or the rule injected
//     into every live worker.
//   * device_lost with restore_after_s: a restore_timer per node; tick() restores the sim device once
//     it has been lost that long.
//   host_fault_schedule and restore_timer are plain state machines with time passed in (no threads,
//   no clock), like the circuit breaker.
// Thread-safety: the engine's controlling thread (build, tick).
#pragma once

#include <cstdint>
#include <vector>

#include "ringflow/runtime/topology.hpp"
#include "ringflow/sim/fault_injector.hpp"

namespace ringflow::ops::engine_parts {

[[nodiscard]] sim::fault_rule rule_of(const fault_spec& f);

/// The service's timed faults of one kernel-host node: each fires once, in time order.
class host_fault_schedule {
 public:
  void add_kill(double at_s) { kills_.push_back(at_s); }
  void add_inject(double at_s, sim::fault_rule r) { injects_.emplace_back(at_s, r); }
  /// Orders the entries by time (after the last add).
  void seal();
  /// How many kills fell due by `since_load_s` since the last call.
  [[nodiscard]] std::size_t kills_due(double since_load_s);
  /// The rules that fell due by `since_load_s` since the last call.
  [[nodiscard]] std::vector<sim::fault_rule> injects_due(double since_load_s);

 private:
  std::vector<double> kills_;
  std::vector<std::pair<double, sim::fault_rule>> injects_;
  std::size_t next_kill_ = 0, next_inject_ = 0;
};

/// A device_lost fault's restore: due once the device has been lost for `after_s` (< 0: never).
class restore_timer {
 public:
  void set(double after_s) noexcept { after_s_ = after_s; }
  [[nodiscard]] bool armed() const noexcept { return after_s_ >= 0; }
  /// Called each tick with the device's state; true when it should be restored now.
  [[nodiscard]] bool due(bool lost, std::uint64_t now_ns) noexcept;

 private:
  double after_s_ = -1;
  std::uint64_t lost_since_ns_ = 0;
};

}  // namespace ringflow::ops::engine_parts

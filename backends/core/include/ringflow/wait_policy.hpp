// ringflow/wait_policy.hpp — how a waiting thread spins, yields and parks (backends/core).
//
// Contract
//   * A thread with nothing to do (a CPU kernel between requests, the completion poller between
//     replies, a blocking caller, the sim decorator's pump) counts its consecutive idle passes and
//     asks the policy what the next one does: spin (a PAUSE) for the first `spin_iterations`, then
//     sched_yield() for `yield_iterations`, then park on its doorbell — or, with `park = false`,
//     keep yielding for ever (lowest wake-up latency, keeps a core busy).
//   * idle_step() does the spin or the yield itself and returns true when the caller should park;
//     the caller then runs the doorbell protocol (prepare_wait, re-check for work, wait) itself,
//     because only it knows what "work" is.
// Thread-safety: a wait_policy is a value; idle_step() touches only its arguments.
#pragma once

#include <sched.h>

#include <cstdint>

#include "ringflow/portable.hpp"

namespace ringflow {

/// What one idle pass of a waiting thread does.
enum class wait_step { spin, yield, park };

/// How an idle thread waits: spin, then yield, then park.
struct wait_policy {
  std::uint32_t spin_iterations = 4000;  // PAUSE iterations (~10-40 us) before yielding
  std::uint32_t yield_iterations = 16;   // sched_yield() calls before parking
  bool park = true;                      // false: never park — after the spin phase it keeps calling
                                         // sched_yield() (low latency, keeps a core busy)

  /// The step of the `idle`-th consecutive idle pass (1-based).
  [[nodiscard]] constexpr wait_step step(std::uint32_t idle) const noexcept {
    if (idle <= spin_iterations) return wait_step::spin;
    if (idle <= spin_iterations + yield_iterations || !park) return wait_step::yield;
    return wait_step::park;
  }
  /// The idle count a waiter resumes at to go straight back to parking (after a wake-up that
  /// brought no work): the last pass before the park step.
  [[nodiscard]] constexpr std::uint32_t park_threshold() const noexcept { return spin_iterations + yield_iterations; }
};

/// One idle pass: counts it in `idle`, then spins or yields as `w` says. Returns true when the
/// caller should park now. A policy that never parks holds `idle` at the yield phase (no wrap).
[[nodiscard]] inline bool idle_step(const wait_policy& w, std::uint32_t& idle) noexcept {
  ++idle;
  switch (w.step(idle)) {
    case wait_step::spin: cpu_relax(); return false;
    case wait_step::yield:
      if (idle > w.park_threshold()) idle = w.park_threshold();  // only when !w.park
      sched_yield();
      return false;
    case wait_step::park: break;
  }
  return true;
}

}  // namespace ringflow

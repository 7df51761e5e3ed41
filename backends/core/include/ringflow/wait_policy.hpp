// ringflow/wait_policy.hpp — how a waiting thread spins, yields and parks (backends/core).
//
// Contract
//   * A thread with nothing to do (a CPU kernel between requests, the completion poller between
//     replies, a blocking caller, the sim decorator's pump) counts its consecutive idle passes and
//     asks idle_step() what the next one does. The policy's `mode` decides:
//       park      no spinning: every idle pass parks at once (the thread sleeps on its doorbell
//                 until work arrives; each hand-off costs a futex wake, ~5-20 us on a small VM).
//       adaptive  (the default) spins only while the process has a spare core for it: the thread
//                 takes a slot of the process's spin budget (spin_budget_cores(), from the allowed
//                 CPU set) before it spins; with no slot free it parks at once. So never more
//                 threads spin than there are spare cores. With a slot it runs the ladder: spin
//                 (PAUSE) for `spin_iterations`, sched_yield() for `yield_iterations`, then parks
//                 and gives the slot back.
//       spin      spins for ever (dedicated cores, lowest latency; needs no slot). Give such a
//                 thread a core of its own (cpus:), or it competes with everything else.
//     A policy with `park = false` (adaptive) keeps yielding instead of parking and needs no slot
//     (the pre-mode knob of experiments).
//   * idle_step() does the spin or the yield itself and returns true when the caller should park;
//     the caller then runs the doorbell protocol (prepare_wait, re-check for work, wait) itself,
//     because only it knows what "work" is. A thread that holds a slot keeps it while it works and
//     gives it back when it parks, when it calls release_spin_slot() or when it exits.
//   * The spin budget is process-wide: spare cores = allowed CPUs (sched_getaffinity) − 1 by
//     default; the runtime sets it to allowed CPUs − CAF scheduler threads − 1 (a core for the
//     application's own threads), so on a 2-core machine adaptive means park.
// Thread-safety: a wait_policy is a value; idle_step() touches its arguments, the calling thread's
// slot and the budget's atomics; the budget functions may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringflow/portable.hpp"

namespace ringflow {

/// What one idle pass of a waiting thread does.
enum class wait_step { spin, yield, park };

/// The wait policies a user chooses from (config `runtime.wait`, topology `wait:`, C++ options).
enum class wait_mode : std::uint8_t { park, adaptive, spin };
const char* to_string(wait_mode m) noexcept;
/// "park" | "adaptive" | "spin" (nullopt otherwise).
std::optional<wait_mode> parse_wait_mode(std::string_view s) noexcept;

/// How an idle thread waits: see the contract above.
struct wait_policy {
  wait_mode mode = wait_mode::adaptive;
  std::uint32_t spin_iterations = 4000;  // adaptive, with a slot: PAUSE iterations (~10-40 us) before yielding
  std::uint32_t yield_iterations = 16;   // ...then sched_yield() calls before parking
  bool park = true;                      // adaptive only; false: never park and need no slot — after the
                                         // spin phase keep calling sched_yield() (keeps a core busy)

  [[nodiscard]] static constexpr wait_policy of(wait_mode m) noexcept {
    wait_policy w;
    w.mode = m;
    return w;
  }
  /// The ladder step of the `idle`-th consecutive idle pass (1-based) for a thread allowed to spin.
  [[nodiscard]] constexpr wait_step step(std::uint32_t idle) const noexcept {
    if (mode == wait_mode::spin) return wait_step::spin;
    if (mode == wait_mode::park) return wait_step::park;
    if (idle <= spin_iterations) return wait_step::spin;
    if (idle <= spin_iterations + yield_iterations || !park) return wait_step::yield;
    return wait_step::park;
  }
  /// The idle count a waiter resumes at to go straight back to parking (after a wake-up that
  /// brought no work): the last pass before the park step.
  [[nodiscard]] constexpr std::uint32_t park_threshold() const noexcept { return spin_iterations + yield_iterations; }
};

/// One idle pass: counts it in `idle`, then spins or yields as `w` (and, adaptive, the spin budget)
/// allows. Returns true when the caller should park now (a held slot is given back first).
[[nodiscard]] bool idle_step(const wait_policy& w, std::uint32_t& idle) noexcept;
/// Gives back the calling thread's spin slot, if it holds one (a caller done waiting).
void release_spin_slot() noexcept;

/// The process's spin budget: how many threads may spin in adaptive mode at once.
int spin_budget_cores() noexcept;
/// Sets it (clamped at 0); a negative value restores the default (allowed CPUs − 1).
void set_spin_budget_cores(int n) noexcept;
/// Slots taken right now.
int spin_budget_in_use() noexcept;

/// CPUs this process may run on (sched_getaffinity; at least 1).
unsigned allowed_cpus() noexcept;

/// Names the calling thread (Linux keeps 15 bytes: longer names are cut). ringflow's threads are
/// called `rf-...` (docs/OPERATIONS.md "Threads").
void name_this_thread(std::string_view name) noexcept;
/// The same for another thread of this process (a creator names its thread before start() returns).
void name_thread(unsigned long thread, std::string_view name) noexcept;
/// Pins the calling thread to `cpus` (empty: leaves it as it is). Returns "" or why it failed
/// (a CPU outside the allowed set, or the kernel's error).
std::string pin_this_thread(const std::vector<int>& cpus);
/// "" when every CPU of `cpus` is in this process's allowed set, else why not.
std::string check_cpu_list(const std::vector<int>& cpus);

}  // namespace ringflow

// ringflow/supervision/circuit_breaker.hpp — the per-device circuit breaker of the fault ladder.
//
// Contract
//   closed    — the device takes work. Failures are counted in a sliding `window`; the
//               `failure_threshold`-th failure within it opens the breaker.
//   open      — no new work goes to the device (the ladder reroutes its ring actors to the CPU).
//               After `open_for` the next try_probe() moves to half_open and returns true once:
//               the caller probes the device with one ring actor.
//   half_open — one probe is out. probe_succeeded() closes the breaker (failures forgotten,
//               cool-down reset); probe_failed() — or any failure — opens it again with the
//               cool-down multiplied by `backoff` (capped at `max_open_for`).
//   trip() opens it at once (the ladder does when it must reroute for another reason, e.g. the
//   device cannot be reinitialized), so the way back to the device is always a probe.
// Defaults are the seed requirements: open after 5 failures (within 30 s), probe after 30 s.
// Thread-safety: none; the fault supervisor's thread owns its breakers (snapshots copy them).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace ringflow {

struct breaker_config {
  std::uint32_t failure_threshold = 5;
  std::chrono::milliseconds window{30000};
  std::chrono::milliseconds open_for{30000};
  std::chrono::milliseconds max_open_for{300000};
  double backoff = 2.0;
};

enum class breaker_state { closed, open, half_open };
const char* to_string(breaker_state s) noexcept;

class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;

  /// Throws std::invalid_argument for a zero threshold, a non-positive cool-down or backoff < 1.
  explicit circuit_breaker(breaker_config cfg = {});

  /// Records a failure at `now`; returns true if it opened the breaker.
  bool record_failure(clock::time_point now);
  /// Opens the breaker now (no-op when already open). Returns true if it was not open.
  bool trip(clock::time_point now);
  /// closed: true (work may go to the device). open: false until the cool-down passed, then
  /// true once (-> half_open, the caller runs the probe). half_open: false.
  bool try_probe(clock::time_point now);
  void probe_succeeded(clock::time_point now);
  void probe_failed(clock::time_point now);
  /// New thresholds and cool-downs (hot reload); validated as by the constructor. The state is
  /// kept: failures already recorded count against the new threshold from the next failure on,
  /// an open breaker keeps its current probe time, and the next cool-down starts from the new
  /// `open_for` once the breaker has closed (or at once, if it is closed now).
  void reconfigure(breaker_config cfg);

  breaker_state state() const noexcept { return state_; }
  bool closed() const noexcept { return state_ == breaker_state::closed; }
  /// Failures inside the window as of the last call.
  std::uint32_t recent_failures() const noexcept { return static_cast<std::uint32_t>(failures_.size()); }
  std::uint64_t opens() const noexcept { return opens_; }
  std::chrono::milliseconds cooldown() const noexcept { return cooldown_; }
  /// When the next probe may start (meaningful while open).
  clock::time_point probe_at() const noexcept { return probe_at_; }
  const breaker_config& config() const noexcept { return cfg_; }

 private:
  void open(clock::time_point now);
  void forget_before(clock::time_point now);

  breaker_config cfg_;
  breaker_state state_ = breaker_state::closed;
  std::deque<clock::time_point> failures_;
  std::chrono::milliseconds cooldown_;
  clock::time_point probe_at_{};
  std::uint64_t opens_ = 0;
};

}  // namespace ringflow

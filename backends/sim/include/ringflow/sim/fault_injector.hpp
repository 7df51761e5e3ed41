// ringflow/sim/fault_injector.hpp — deterministic fault injection for ring kernel incarnations.
//
// Contract
//   * A fault_injector holds rules. Each rule names a fault kind and a trigger: the k-th request
//     the injector sees (at_message, 1-based), the first request after a time since the injector
//     was armed (after), or each request with a probability drawn from a seeded generator
//     (random). A rule fires at most `times` times (0 = unlimited), optionally only for requests
//     to one kernel (by its name).
//   * Decorators (sim_incarnation) ask on_request() once for every request they take from their
//     request ring, replays included, in the order they take them. With one ring and the same
//     seed the same requests fault on every run; with several rings the interleaving of their
//     threads decides which ring sees the k-th request (the k-th one still faults).
//   * The kinds and what a decorated incarnation does (see sim_incarnation.hpp): hang (stops
//     serving and beating; the request stays in the ring), transient_error, sticky_error
//     (poisons the device until it is reinitialized), out_of_memory, slow (adds latency to that
//     request), corrupt_reply (the request's reply arrives with garbage bytes), crash (the kernel
//     thread ends without stopping), device_lost (the device is gone until restore()).
// Thread-safety: all members may be called from any thread (one mutex; the sim is not a hot path).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ringflow::sim {

enum class fault_kind : std::uint8_t {
  hang = 0,
  transient_error,
  sticky_error,
  out_of_memory,
  slow,
  corrupt_reply,
  crash,
  device_lost,
};
inline constexpr std::size_t fault_kind_count = 8;
const char* to_string(fault_kind k) noexcept;
/// Parses the names to_string() returns; nullopt for anything else.
std::optional<fault_kind> fault_kind_from(std::string_view name) noexcept;

struct fault_rule {
  fault_kind kind = fault_kind::transient_error;
  std::uint64_t at_message = 0;             // fire at the k-th request seen (1-based); 0 = unused
  std::chrono::nanoseconds after{-1};       // fire at the first request this long after arm(); <0 = unused
  double probability = 0;                   // fire on each request with this probability; 0 = unused
  std::uint32_t times = 1;                  // how often it may fire (0 = unlimited)
  std::chrono::microseconds latency{1000};  // slow: added latency of the affected request
  std::string kernel;                       // only requests to this kernel ("" = any)

  static fault_rule at(fault_kind k, std::uint64_t message) {
    fault_rule r;
    r.kind = k;
    r.at_message = message;
    return r;
  }
  static fault_rule after_time(fault_kind k, std::chrono::nanoseconds t) {
    fault_rule r;
    r.kind = k;
    r.after = t;
    return r;
  }
  static fault_rule random(fault_kind k, double p, std::uint32_t times = 0) {
    fault_rule r;
    r.kind = k;
    r.probability = p;
    r.times = times;
    return r;
  }
};

/// A fault that fired for one request.
struct fault_hit {
  fault_kind kind;
  std::chrono::microseconds latency;  // for slow
};

class fault_injector {
 public:
  explicit fault_injector(std::uint64_t seed = 0x5eed);

  /// Adds a rule; throws std::invalid_argument when it has no trigger or a bad probability.
  void add(fault_rule rule);
  /// Removes every rule (counters stay).
  void clear();
  /// Restarts the clock of time-triggered rules and the request count (at_message counts anew).
  void arm();

  /// Called by decorators once per request taken: the fault to inject, if any. When several
  /// rules would fire on one request, the first added wins; a losing time rule stays pending,
  /// a losing message rule has passed its request.
  std::optional<fault_hit> on_request(std::string_view kernel);

  std::uint64_t requests_seen() const;
  std::uint64_t fired(fault_kind k) const;
  std::uint64_t fired_total() const;
  std::size_t rules() const;
  /// steady-clock ns of the latest fault that fired (0: none yet): lets tests and benchmarks
  /// measure how long detection took.
  std::uint64_t last_fired_ns() const;

 private:
  struct armed_rule {
    fault_rule rule;
    std::uint32_t fired = 0;
  };
  mutable std::mutex mu_;
  std::vector<armed_rule> rules_;
  std::mt19937_64 rng_;
  std::uint64_t seen_ = 0;
  std::chrono::steady_clock::time_point armed_at_;
  std::array<std::uint64_t, fault_kind_count> fired_{};
  std::uint64_t last_fired_ns_ = 0;
};

}  // namespace ringflow::sim

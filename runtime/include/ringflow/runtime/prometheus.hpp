// ringflow/runtime/prometheus.hpp — Prometheus text exposition 0.0.4, written by hand (no
// Prometheus client library is packaged in Debian), plus the two measuring instruments behind it.
//
// Contract
//   * exposition: family(name, type, help) writes `# HELP` and `# TYPE`; then sample() (counter,
//     gauge) or histogram_sample() (histogram: cumulative `_bucket{le=...}` lines ending in
//     `le="+Inf"` = `_count`, then `_sum` and `_count`). It refuses (std::invalid_argument) what
//     would make the text invalid: a bad metric or label name, a reserved `__` label, an unknown
//     type, a counter not named `..._total`, a family given twice, a sample of the wrong kind or
//     outside a family. Label values and HELP text are escaped (\\, \", \n). Numbers: integral
//     values below 2^53 without exponent or point, others shortest round-trip, NaN, +Inf, -Inf.
//   * histogram: fixed upper bounds (seconds), lock-free relaxed counters; `le` is inclusive (a
//     value equal to a bound counts in that bucket). The sum is kept in integer nanoseconds, so
//     it is exact and never loses updates under contention.
//   * latency_recorder: log-linear buckets (64 per power of two) over 1 ns .. 2^40 ns (~18 min);
//     quantile_us() returns the upper edge of the bucket holding the quantile: at most 1/64 (1.6 %)
//     above the true value, never below it; max_ns() is exact.
// Thread-safety: histogram and latency_recorder from any thread; exposition from one thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringflow::ops {

using label_set = std::vector<std::pair<std::string, std::string>>;

inline constexpr const char* exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// 10 us .. 10 s: ring-kernel round trips are microseconds, recoveries milliseconds.
std::vector<double> default_latency_buckets();

struct histogram_snapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;  // per bucket, NOT cumulative; size bounds.size() + 1 (the last: above every bound)
  double sum = 0;                     // seconds
  std::uint64_t count = 0;
};

class histogram {
 public:
  /// Throws std::invalid_argument unless the bounds are finite, strictly increasing and not empty.
  explicit histogram(std::vector<double> upper_bounds = default_latency_buckets());
  void observe(double seconds) noexcept;
  histogram_snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> count_{0};
};

class latency_recorder {
 public:
  void record(std::uint64_t ns) noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::uint64_t max_ns() const noexcept { return max_.load(std::memory_order_relaxed); }
  /// q in [0, 1]; 0 when nothing was recorded. See the contract for the error bound.
  double quantile_us(double q) const noexcept;

 private:
  static constexpr int sub_bits = 6;  // 64 linear sub-buckets per power of two
  static constexpr int majors = 41;   // 2^0 .. 2^40 ns
  static constexpr std::size_t buckets = static_cast<std::size_t>(majors) << sub_bits;
  static std::size_t index_of(std::uint64_t ns) noexcept;
  static std::uint64_t upper_edge(std::size_t index) noexcept;
  std::array<std::atomic<std::uint64_t>, buckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> max_{0};
};

class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(const label_set& labels, double value);
  void histogram_sample(const label_set& labels, const histogram_snapshot& h);
  const std::string& text() const noexcept { return out_; }

  static std::string format_value(double v);

 private:
  void line(std::string_view name, const label_set& labels, const std::pair<std::string, std::string>* extra, double v);
  std::string out_;
  std::string name_, type_;
  std::set<std::string> families_;
};

}  // namespace ringflow::ops

// ringflow/runtime/prometheus.hpp — Prometheus text exposition 0.0.4, written by hand (no
// Prometheus client library is packaged in Debian), plus the two measuring instruments behind it.
//
// Contract
//   * exposition: family(name, type, help) writes `# HELP` and `# TYPE`; then sample() (counter,
//     gauge) or histogram_sample() (histogram: cumulative `_bucket{le=...}` lines ending in
//     `le="+Inf"` = `_count`, then `_sum` and `_count`). It refuses (std::invalid_argument) what
//     would make the text invalid: a bad metric or label name, a reserved `__` label, a label given
//     twice, `le` on a histogram, an unknown type, a counter not named `..._total`, a family given
//     twice or named like a histogram's _bucket/_sum/_count series, a sample of the wrong kind or
//     outside a family, a malformed snapshot. A refused call leaves text() as it was. Label values
//     are escaped (\\, \", \n), HELP text too (\\, \n).
//     Numbers: integral values below 2^53 without exponent or point ("3"); others the shortest
//     digits that round-trip, scientific only for a decimal exponent < -4 or >= 6, as Go's
//     FormatFloat(v, 'g', -1, 64) in the Prometheus client ("0.25", "0.0001", "1e-05", "1e+20");
//     NaN, +Inf, -Inf. `le` bounds are formatted the same way.
//   * histogram: fixed upper bounds (seconds), lock-free relaxed counters; `le` is inclusive (a
//     value equal to a bound counts in that bucket). NaN and negative observations count as 0.
//     The sum is kept in integer nanoseconds (atomic fetch_add, not a CAS loop on a double), so it
//     never loses updates under contention; each observation is rounded to 1 ns and clamped to
//     1e9 s. snapshot() reads the buckets one by one (not one instant), and its count is the sum
//     of the buckets it read, so the +Inf bucket of the exposition always equals its _count.
//   * latency_recorder: log-linear buckets — exact below 64 ns, then 64 linear sub-buckets per
//     power of two — over 0 .. 2^40 ns (~18 min). quantile_us(q) returns the upper edge of the
//     bucket holding the ceil(q * count)-th smallest value, capped at the exact max: never below
//     the true quantile and less than 1/64 (1.6 %) above it. Values of 2^40 ns or more share the
//     last bucket, for which the exact max is reported. max_ns() is exact.
// Thread-safety: histogram and latency_recorder from any thread (relaxed atomics: counts are
// exact once the writers are joined; a snapshot taken meanwhile may miss in-flight updates);
// exposition from one thread.
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
  // Per bucket, NOT cumulative; size bounds.size() + 1, the last counting values above every bound.
  std::vector<std::uint64_t> counts;
  double sum = 0;  // seconds
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
  /// q in [0, 1] (clamped); 0 when nothing was recorded. See the contract for the error bound.
  double quantile_us(double q) const noexcept;

 private:
  static constexpr int sub_bits = 6;    // 64 linear sub-buckets per power of two: < 1/64 relative error
  static constexpr int top_major = 40;  // the last power of two with its own buckets: [2^39, 2^40) ns
  // Index 0..63: exact ns; then 64 sub-buckets for each major 2^6 .. 2^39.
  static constexpr std::size_t buckets = static_cast<std::size_t>(top_major - sub_bits + 1) << sub_bits;
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

  /// The sample value syntax described in the contract (also used for `le` bounds).
  static std::string format_value(double v);

 private:
  /// Appends one sample line to `to`; throws before appending anything for a bad label.
  static void line(std::string& to, std::string_view name, const label_set& labels,
                   const std::pair<std::string, std::string>* extra, double v);
  std::string out_;
  std::string name_, type_;
  std::set<std::string> families_, histograms_;
};

}  // namespace ringflow::ops

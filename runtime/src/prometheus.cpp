// Prometheus exposition, histogram, latency recorder: see ringflow/runtime/prometheus.hpp.
#include "ringflow/runtime/prometheus.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace ringflow::ops {
namespace {

bool metric_name_ok(std::string_view n) {
  if (n.empty()) return false;
  auto head = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  if (!head(n[0])) return false;
  return std::all_of(n.begin() + 1, n.end(), [&](char c) { return head(c) || std::isdigit(static_cast<unsigned char>(c)); });
}

bool label_name_ok(std::string_view n) {
  if (n.empty() || (n.size() >= 2 && n[0] == '_' && n[1] == '_')) return false;
  auto head = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  if (!head(n[0])) return false;
  return std::all_of(n.begin() + 1, n.end(), [&](char c) { return head(c) || std::isdigit(static_cast<unsigned char>(c)); });
}

std::string escape(std::string_view s, bool quotes) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (c == '"' && quotes) o += "\\\"";
    else o += c;
  }
  return o;
}

}  // namespace

std::vector<double> default_latency_buckets() {
  return {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
          25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0};
}

// ---- histogram --------------------------------------------------------------------------------------

histogram::histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  if (bounds_.empty()) throw std::invalid_argument("histogram: no bucket bounds");
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    if (!std::isfinite(bounds_[i]) || (i && bounds_[i] <= bounds_[i - 1]))
      throw std::invalid_argument("histogram: bounds must be finite and strictly increasing");
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double seconds) noexcept {
  if (!(seconds >= 0)) seconds = 0;  // NaN and negatives (clock hiccups) count as 0
  const std::size_t i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(std::min(seconds, 1e9) * 1e9)), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

histogram_snapshot histogram::snapshot() const {
  histogram_snapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  // count is the sum of the buckets read here (not count_, which may have moved meanwhile), so
  // the exposition's +Inf bucket always equals its _count.
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

// ---- latency recorder ------------------------------------------------------------------------------

std::size_t latency_recorder::index_of(std::uint64_t ns) noexcept {
  if (ns < (1u << sub_bits)) return static_cast<std::size_t>(ns);  // exact below 64 ns
  const int major = 63 - std::countl_zero(ns);                     // ns in [2^major, 2^(major+1))
  const std::uint64_t sub = (ns >> (major - sub_bits)) & ((1u << sub_bits) - 1);
  const std::size_t i = (static_cast<std::size_t>(major - sub_bits + 1) << sub_bits) + sub;
  return std::min(i, buckets - 1);
}

std::uint64_t latency_recorder::upper_edge(std::size_t i) noexcept {
  if (i < (1u << sub_bits)) return i;
  const int major = static_cast<int>(i >> sub_bits) + sub_bits - 1;
  const std::uint64_t sub = i & ((1u << sub_bits) - 1);
  return ((std::uint64_t{1} << major) + ((sub + 1) << (major - sub_bits))) - 1;
}

void latency_recorder::record(std::uint64_t ns) noexcept {
  counts_[index_of(ns)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t m = max_.load(std::memory_order_relaxed);
  while (ns > m && !max_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
  }
}

double latency_recorder::quantile_us(double q) const noexcept {
  std::uint64_t total = 0;
  for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) return static_cast<double>(std::min(upper_edge(i), max_ns())) / 1000.0;
  }
  return static_cast<double>(max_ns()) / 1000.0;
}

// ---- exposition -----------------------------------------------------------------------------------

std::string exposition::format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return std::to_string(static_cast<std::int64_t>(v));
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip
  return std::string(buf, r.ptr);
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!metric_name_ok(name)) throw std::invalid_argument("exposition: invalid metric name '" + std::string(name) + "'");
  if (type != "counter" && type != "gauge" && type != "histogram")
    throw std::invalid_argument("exposition: unknown metric type '" + std::string(type) + "'");
  if (type == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
    throw std::invalid_argument("exposition: counter '" + std::string(name) + "' must end in _total");
  if (!families_.insert(std::string(name)).second)
    throw std::invalid_argument("exposition: family '" + std::string(name) + "' given twice");
  name_ = name;
  type_ = type;
  out_ += "# HELP " + name_ + " " + escape(help, false) + "\n";
  out_ += "# TYPE " + name_ + " " + type_ + "\n";
}

void exposition::line(std::string_view name, const label_set& labels, const std::pair<std::string, std::string>* extra,
                      double v) {
  std::string l(name);
  if (!labels.empty() || extra) {
    l += "{";
    bool first = true;
    auto put = [&](const std::string& k, const std::string& val) {
      if (!label_name_ok(k)) throw std::invalid_argument("exposition: invalid label name '" + k + "'");
      l += (first ? "" : ",") + k + "=\"" + escape(val, true) + "\"";
      first = false;
    };
    for (const auto& [k, val] : labels) put(k, val);
    if (extra) put(extra->first, extra->second);
    l += "}";
  }
  out_ += l + " " + format_value(v) + "\n";
}

void exposition::sample(const label_set& labels, double value) {
  if (name_.empty()) throw std::invalid_argument("exposition: sample before any family");
  if (type_ == "histogram") throw std::invalid_argument("exposition: '" + name_ + "' is a histogram: use histogram_sample");
  line(name_, labels, nullptr, value);
}

void exposition::histogram_sample(const label_set& labels, const histogram_snapshot& h) {
  if (type_ != "histogram") throw std::invalid_argument("exposition: histogram_sample outside a histogram family");
  for (const auto& [k, v] : labels)
    if (k == "le") throw std::invalid_argument("exposition: 'le' is reserved in histograms");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts.at(i);
    const std::pair<std::string, std::string> le{"le", format_value(h.bounds[i])};
    line(name_ + "_bucket", labels, &le, static_cast<double>(cum));
  }
  const std::pair<std::string, std::string> inf{"le", "+Inf"};
  line(name_ + "_bucket", labels, &inf, static_cast<double>(h.count));
  line(name_ + "_sum", labels, nullptr, h.sum);
  line(name_ + "_count", labels, nullptr, static_cast<double>(h.count));
}

}  // namespace ringflow::ops

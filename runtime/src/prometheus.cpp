// Prometheus exposition, histogram, latency recorder: see ringflow/runtime/prometheus.hpp.
#include "ringflow/runtime/prometheus.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

namespace ringflow::ops {
namespace {

// ASCII only, not std::isalpha: the exposition grammar is ASCII whatever the process locale is.
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

bool metric_name_ok(std::string_view n) {
  auto head = [](char c) { return alpha(c) || c == '_' || c == ':'; };
  if (n.empty() || !head(n[0])) return false;
  return std::all_of(n.begin() + 1, n.end(), [&](char c) { return head(c) || digit(c); });
}

// `__` names are reserved for Prometheus' own use (relabelling).
bool label_name_ok(std::string_view n) {
  auto head = [](char c) { return alpha(c) || c == '_'; };
  if (n.empty() || !head(n[0]) || n.substr(0, 2) == "__") return false;
  return std::all_of(n.begin() + 1, n.end(), [&](char c) { return head(c) || digit(c); });
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
  return {10e-6, 25e-6, 50e-6,  100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
          25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,    2.5,  5.0,    10.0};
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
  const auto first_fit = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);  // le is inclusive
  const auto i = static_cast<std::size_t>(first_fit - bounds_.begin());
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

// Index i < 64 holds exactly i ns. Above, ns in [2^major, 2^(major+1)) with major >= 6 keeps its top
// 7 bits: the leading 1 picks the major, the next 6 the sub-bucket (width 2^(major-6) <= ns/64).
std::size_t latency_recorder::index_of(std::uint64_t ns) noexcept {
  if (ns < (1u << sub_bits)) return static_cast<std::size_t>(ns);
  const int major = 63 - std::countl_zero(ns);
  const std::uint64_t sub = (ns >> (major - sub_bits)) & ((1u << sub_bits) - 1);
  const std::size_t i = (static_cast<std::size_t>(major - sub_bits + 1) << sub_bits) + sub;
  return std::min(i, buckets - 1);  // 2^40 ns and beyond: the last bucket (see quantile_us)
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
  while (ns > m && !max_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {}
}

double latency_recorder::quantile_us(double q) const noexcept {
  std::uint64_t total = 0;
  for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen < rank) continue;
    // The last bucket also holds everything past its edge: only the exact max is an upper bound there.
    const std::uint64_t edge = i + 1 == buckets ? max_ns() : std::min(upper_edge(i), max_ns());
    return static_cast<double>(edge) / 1000.0;
  }
  return static_cast<double>(max_ns()) / 1000.0;
}

// ---- exposition -----------------------------------------------------------------------------------

std::string exposition::format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Below 2^53 every integer is exact in a double: write counters as integers, as clients expect.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return std::to_string(static_cast<std::int64_t>(v));
  // Shortest round-trip digits, laid out as Go's strconv.FormatFloat(v, 'g', -1, 64) does (what the
  // Prometheus Go client writes): scientific only for a decimal exponent < -4 or >= 6, so the default
  // buckets read 0.0001, 0.00025 (plain to_chars would mix in 1e-04 where that is shorter).
  char buf[64];
  const auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const char* e = std::find(buf, sci.ptr, 'e');
  int exp = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), sci.ptr, exp);  // from_chars takes '-' but not '+'
  if (exp < -4 || exp >= 6) return std::string(buf, sci.ptr);
  const auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!metric_name_ok(name)) throw std::invalid_argument("exposition: invalid metric name '" + std::string(name) + "'");
  if (type != "counter" && type != "gauge" && type != "histogram")
    throw std::invalid_argument("exposition: unknown metric type '" + std::string(type) + "'");
  if (type == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
    throw std::invalid_argument("exposition: counter '" + std::string(name) + "' must end in _total");
  const std::string n(name);
  if (families_.count(n)) throw std::invalid_argument("exposition: family '" + n + "' given twice");
  // A histogram's series are name_bucket/_sum/_count: another family by those names would be ambiguous.
  for (const char* sfx : {"_bucket", "_sum", "_count"}) {
    const std::string_view x(sfx);
    const bool shadows = name.size() > x.size() && name.substr(name.size() - x.size()) == x &&
                         histograms_.count(std::string(name.substr(0, name.size() - x.size())));
    if (shadows || (type == "histogram" && families_.count(n + sfx)))
      throw std::invalid_argument("exposition: family '" + n + "' collides with a histogram's series");
  }
  families_.insert(n);
  if (type == "histogram") histograms_.insert(n);
  name_ = n;
  type_ = type;
  out_ += "# HELP " + name_ + " " + escape(help, false) + "\n";
  out_ += "# TYPE " + name_ + " " + type_ + "\n";
}

void exposition::line(std::string& to, std::string_view name, const label_set& labels,
                      const std::pair<std::string, std::string>* extra, double v) {
  std::string l(name);
  if (!labels.empty() || extra) {
    l += '{';
    // Label sets are a handful of pairs: a linear duplicate scan, no allocation per rendered line.
    auto put = [&](std::size_t at, const std::string& k, const std::string& val) {
      if (!label_name_ok(k)) throw std::invalid_argument("exposition: invalid label name '" + k + "'");
      for (std::size_t j = 0; j < at; ++j)
        if (labels[j].first == k) throw std::invalid_argument("exposition: label '" + k + "' given twice");
      if (at > 0) l += ',';
      l += k + "=\"" + escape(val, true) + '"';
    };
    for (std::size_t j = 0; j < labels.size(); ++j) put(j, labels[j].first, labels[j].second);
    if (extra) put(labels.size(), extra->first, extra->second);
    l += '}';
  }
  to += l + ' ' + format_value(v) + '\n';
}

void exposition::sample(const label_set& labels, double value) {
  if (name_.empty()) throw std::invalid_argument("exposition: sample before any family");
  if (type_ == "histogram")
    throw std::invalid_argument("exposition: '" + name_ + "' is a histogram: use histogram_sample");
  line(out_, name_, labels, nullptr, value);
}

void exposition::histogram_sample(const label_set& labels, const histogram_snapshot& h) {
  if (type_ != "histogram") throw std::invalid_argument("exposition: histogram_sample outside a histogram family");
  for (const auto& [k, v] : labels)
    if (k == "le") throw std::invalid_argument("exposition: 'le' is reserved in histograms");
  // A hand-made snapshot could break the bucket invariants the exposition promises: refuse it.
  if (h.counts.size() != h.bounds.size() + 1)
    throw std::invalid_argument("exposition: snapshot needs bounds + 1 counts");
  for (std::size_t i = 0; i < h.bounds.size(); ++i)
    if (!std::isfinite(h.bounds[i]) || (i && h.bounds[i] <= h.bounds[i - 1]))
      throw std::invalid_argument("exposition: snapshot bounds must be finite and strictly increasing");
  std::uint64_t total = 0;
  for (auto c : h.counts) total += c;
  if (total != h.count) throw std::invalid_argument("exposition: snapshot count differs from its buckets' sum");
  std::string lines;  // built aside: a refused call leaves out_ as it was
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    const std::pair<std::string, std::string> le{"le", format_value(h.bounds[i])};
    line(lines, name_ + "_bucket", labels, &le, static_cast<double>(cum));
  }
  const std::pair<std::string, std::string> inf{"le", "+Inf"};
  line(lines, name_ + "_bucket", labels, &inf, static_cast<double>(h.count));
  line(lines, name_ + "_sum", labels, nullptr, h.sum);
  line(lines, name_ + "_count", labels, nullptr, static_cast<double>(h.count));
  out_ += lines;
}

}  // namespace ringflow::ops

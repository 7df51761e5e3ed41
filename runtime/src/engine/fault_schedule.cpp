// The fault schedule's state machines: see fault_schedule.hpp.
#include "fault_schedule.hpp"

#include <algorithm>

namespace ringflow::ops::engine_parts {

sim::fault_rule rule_of(const fault_spec& f) {
  sim::fault_rule rule;
  // actor_crash is not a device fault: its rules (an injector of their own) carry `crash`.
  rule.kind = sim::fault_kind_from(f.kind).value_or(sim::fault_kind::crash);
  rule.at_message = f.at_message;
  rule.probability = f.probability;
  rule.times = f.times;
  rule.latency = std::chrono::microseconds(f.latency_us);
  return rule;
}

void host_fault_schedule::seal() {
  std::sort(kills_.begin(), kills_.end());
  std::stable_sort(injects_.begin(), injects_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
}

std::size_t host_fault_schedule::kills_due(double since_load_s) {
  std::size_t n = 0;
  for (; next_kill_ < kills_.size() && kills_[next_kill_] <= since_load_s; ++next_kill_) ++n;
  return n;
}

std::vector<sim::fault_rule> host_fault_schedule::injects_due(double since_load_s) {
  std::vector<sim::fault_rule> out;
  for (; next_inject_ < injects_.size() && injects_[next_inject_].first <= since_load_s; ++next_inject_)
    out.push_back(injects_[next_inject_].second);
  return out;
}

bool restore_timer::due(bool lost, std::uint64_t now_ns) noexcept {
  if (!armed()) return false;
  if (!lost) {
    lost_since_ns_ = 0;
    return false;
  }
  if (lost_since_ns_ == 0) lost_since_ns_ = now_ns;
  const double lost_s = now_ns > lost_since_ns_ ? static_cast<double>(now_ns - lost_since_ns_) / 1e9 : 0.0;
  if (lost_s < after_s_) return false;
  lost_since_ns_ = 0;
  return true;
}

}  // namespace ringflow::ops::engine_parts

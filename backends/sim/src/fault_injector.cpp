// Deterministic fault injection: see ringflow/sim/fault_injector.hpp.
#include "ringflow/sim/fault_injector.hpp"

#include <stdexcept>

namespace ringflow::sim {

namespace {
constexpr const char* kind_names[fault_kind_count] = {"hang", "transient_error", "sticky_error", "out_of_memory",
                                                      "slow", "corrupt_reply",   "crash",        "device_lost"};
}

const char* to_string(fault_kind k) noexcept {
  const auto i = static_cast<std::size_t>(k);
  return i < fault_kind_count ? kind_names[i] : "unknown";
}

std::optional<fault_kind> fault_kind_from(std::string_view name) noexcept {
  for (std::size_t i = 0; i < fault_kind_count; ++i)
    if (name == kind_names[i]) return static_cast<fault_kind>(i);
  return std::nullopt;
}

fault_injector::fault_injector(std::uint64_t seed) : rng_(seed), armed_at_(std::chrono::steady_clock::now()) {}

void fault_injector::add(fault_rule rule) {
  const bool by_message = rule.at_message != 0;
  const bool by_time = rule.after.count() >= 0;
  const bool by_chance = rule.probability != 0;
  if (by_message + by_time + by_chance != 1)
    throw std::invalid_argument("fault rule (" + std::string(to_string(rule.kind)) +
                                "): give exactly one trigger: at_message, after or probability");
  if (by_chance && !(rule.probability > 0 && rule.probability <= 1))
    throw std::invalid_argument("fault rule: probability must be in (0, 1]");
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back({std::move(rule), 0});
}

void fault_injector::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

void fault_injector::arm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_at_ = std::chrono::steady_clock::now();
  seen_ = 0;
}

std::optional<fault_hit> fault_injector::on_request(std::string_view kernel) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t n = ++seen_;
  std::optional<fault_hit> hit;
  for (armed_rule& a : rules_) {
    const fault_rule& r = a.rule;
    if (r.times != 0 && a.fired >= r.times) continue;
    if (!r.kernel.empty() && r.kernel != kernel) continue;
    bool fire = false;
    if (r.at_message != 0) {
      fire = n == r.at_message;
    } else if (r.after.count() >= 0) {
      fire = std::chrono::steady_clock::now() - armed_at_ >= r.after;
    } else {
      // Drawn for every eligible request, fired or not, so the sequence depends only on the seed
      // and the order of requests.
      fire = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < r.probability;
    }
    if (!fire || hit) continue;
    ++a.fired;
    ++fired_[static_cast<std::size_t>(r.kind)];
    last_fired_ns_ = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
    hit = fault_hit{r.kind, r.latency};
  }
  return hit;
}

std::uint64_t fault_injector::requests_seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

std::uint64_t fault_injector::fired(fault_kind k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_[static_cast<std::size_t>(k)];
}

std::uint64_t fault_injector::fired_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t t = 0;
  for (auto f : fired_) t += f;
  return t;
}

std::size_t fault_injector::rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_.size();
}

}  // namespace ringflow::sim

namespace ringflow::sim {
std::uint64_t fault_injector::last_fired_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_fired_ns_;
}
}  // namespace ringflow::sim

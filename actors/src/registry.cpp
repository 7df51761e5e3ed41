// Name registry: see ringflow/actors/registry.hpp.
#include "ringflow/actors/registry.hpp"

#include <mutex>

namespace ringflow {

caf::error actor_registry::add(const std::string& name, caf::actor actor, std::shared_ptr<ring_core> core) {
  if (name.empty()) return make_error(errc::invalid_argument, "an actor name must not be empty");
  std::unique_lock lock(mu_);
  if (map_.count(name)) return make_error(errc::name_taken, "the name '" + name + "' is already registered");
  map_.emplace(name, registry_entry{std::move(actor), std::move(core)});
  return caf::none;
}

registry_entry actor_registry::replace(const std::string& name, caf::actor actor, std::shared_ptr<ring_core> core) {
  registry_entry next{std::move(actor), std::move(core)};
  std::unique_lock lock(mu_);
  registry_entry& slot = map_[name];
  std::swap(slot, next);
  return next;
}

caf::expected<registry_entry> actor_registry::entry(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = map_.find(name);
  if (it == map_.end()) return make_error(errc::unknown_name, "no actor is registered under the name '" + name + "'");
  return it->second;
}

caf::expected<caf::actor> actor_registry::lookup(const std::string& name) const {
  auto e = entry(name);
  if (!e) return e.error();
  return e->actor;
}

bool actor_registry::erase(const std::string& name) {
  std::unique_lock lock(mu_);
  return map_.erase(name) != 0;
}

std::vector<std::string> actor_registry::names() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& kv : map_) out.push_back(kv.first);
  return out;
}

std::vector<registry_entry> actor_registry::entries() const {
  std::shared_lock lock(mu_);
  std::vector<registry_entry> out;
  for (const auto& kv : map_) out.push_back(kv.second);
  return out;
}

std::vector<registry_entry> actor_registry::take_all() {
  std::unique_lock lock(mu_);
  std::vector<registry_entry> out;
  for (auto& kv : map_) out.push_back(std::move(kv.second));
  map_.clear();
  return out;
}

}  // namespace ringflow

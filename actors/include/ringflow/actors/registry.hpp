// ringflow/actors/registry.hpp — names -> actors (ring actors and CPU actors).
//
// Contract: add() fails with errc::name_taken for a used name; lookup() fails with
// errc::unknown_name naming the name; replace() swaps the actor behind a name atomically (a
// concurrent lookup sees the old or the new actor, never none) and returns the previous entry.
// A ring actor's entry also carries its ring_core (the way in for ring_client).
// Thread-safety: all members may be called from any thread (a shared mutex; lookups share it).
#pragma once

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "ringflow/actors/ring_core.hpp"

namespace ringflow {

struct registry_entry {
  caf::actor actor;
  std::shared_ptr<ring_core> core;  // null for CPU actors
};

class actor_registry {
 public:
  caf::error add(const std::string& name, caf::actor actor, std::shared_ptr<ring_core> core = nullptr);
  /// Installs `actor` under `name` (adding it if absent); returns what was there before.
  registry_entry replace(const std::string& name, caf::actor actor, std::shared_ptr<ring_core> core = nullptr);
  caf::expected<caf::actor> lookup(const std::string& name) const;
  caf::expected<registry_entry> entry(const std::string& name) const;
  bool erase(const std::string& name);
  std::vector<std::string> names() const;
  std::vector<registry_entry> entries() const;
  /// Removes everything and returns it (shutdown).
  std::vector<registry_entry> take_all();

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, registry_entry, std::less<>> map_;
};

}  // namespace ringflow

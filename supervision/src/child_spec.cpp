// Child specs as data (OTP's child_spec): the builders that need no supervisor internals, and the
// names of restart types, strategies and child kinds. See ringflow/supervision/supervisor.hpp.
#include <stdexcept>

#include "ringflow/supervision/supervisor.hpp"

namespace ringflow {

supervisor_spec dynamic_supervisor(std::string name, std::uint32_t intensity, std::chrono::milliseconds period) {
  supervisor_spec s;
  s.name = std::move(name);
  s.flags = {restart_strategy::one_for_one, intensity, period};
  s.dynamic = true;
  return s;
}

child_spec ring_actor_child(runtime& rt, std::string name, type_id request_type, type_id reply_type,
                            incarnation_factory factory, ring_actor_options opts) {
  child_spec c;
  c.id = name;
  // On a restart the previous ring actor has ended: spawn_ring_actor reuses its name.
  c.start = [&rt, name, request_type, reply_type, factory = std::move(factory), opts]() -> caf::expected<caf::actor> {
    try {
      return rt.spawn_ring_actor(name, request_type, reply_type, factory, opts);
    } catch (const std::logic_error& e) {  // invalid_argument (name taken, bad options), or shut down
      return make_error(rt.is_shut_down() ? errc::stopped : errc::invalid_argument, e.what());
    } catch (const std::exception& e) {  // the incarnation could not start
      return make_error(errc::unavailable, e.what());
    }
  };
  return c;
}

const char* to_string(restart_type t) noexcept {
  switch (t) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "unknown";
}

const char* to_string(restart_strategy s) noexcept {
  switch (s) {
    case restart_strategy::one_for_one: return "one_for_one";
    case restart_strategy::one_for_all: return "one_for_all";
    case restart_strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

const char* to_string(child_kind k) noexcept {
  switch (k) {
    case child_kind::worker: return "worker";
    case child_kind::supervisor: return "supervisor";
  }
  return "unknown";
}

}  // namespace ringflow

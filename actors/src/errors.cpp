// Typed errors of the actor layer: see ringflow/actors/errors.hpp.
#include "ringflow/actors/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace ringflow {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::malformed: return "malformed";
    case errc::wrong_type: return "wrong_type";
    case errc::reply_too_large: return "reply_too_large";
    case errc::handler_fault: return "handler_fault";
    case errc::timeout: return "timeout";
    case errc::stopped: return "stopped";
    case errc::oversize: return "oversize";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::overloaded: return "overloaded";
    case errc::unknown_name: return "unknown_name";
    case errc::name_taken: return "name_taken";
    case errc::graph_invalid: return "graph_invalid";
    case errc::restart_intensity: return "restart_intensity";
    case errc::child_start_failed: return "child_start_failed";
    case errc::would_deadlock: return "would_deadlock";
    case errc::bad_reply: return "bad_reply";
    case errc::node_unreachable: return "node_unreachable";
  }
  return "unknown";
}

caf::error make_error(errc e, std::string detail) {
  return caf::error{static_cast<std::uint8_t>(e), ringflow_error_category, caf::make_message(std::move(detail))};
}

bool is_ringflow_error(const caf::error& e) noexcept { return e && e.category() == ringflow_error_category; }

errc code_of(const caf::error& e) noexcept {
  if (!e) return errc::ok;
  if (e.category() != ringflow_error_category) return errc::internal;
  return static_cast<errc>(e.code());
}

std::string detail_of(const caf::error& e) {
  if (!is_ringflow_error(e) || e.context().empty() || !e.context().match_element<std::string>(0)) return {};
  return e.context().get_as<std::string>(0);
}

std::string render_error(std::uint8_t code, const caf::message& context) {
  std::string out = "ringflow.";
  out += to_string(static_cast<errc>(code));
  if (!context.empty() && context.match_element<std::string>(0)) {
    out += ": ";
    out += context.get_as<std::string>(0);
  }
  return out;
}

}  // namespace ringflow

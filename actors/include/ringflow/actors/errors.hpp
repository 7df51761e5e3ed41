// ringflow/actors/errors.hpp — the typed errors every caller of the actor layer can receive.
//
// Contract: `errc` is one enum for both ways into a ring actor. Codes 1..11 are exactly the kernel
// reply statuses of ringflow/kernel.hpp (`status`), so a kernel's error reply maps by value; codes
// from 32 on belong to the actor layer. Actor callers receive a `caf::error` of category
// `ringflow_error_category` (atom "ringflow") whose context holds the detail string; embedding
// callers receive the same code in `call_result`. Every error a caller can see is one of these.
// Thread-safety: pure functions.
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <string>

#include "ringflow/kernel.hpp"

namespace ringflow {

enum class [[nodiscard]] errc : std::uint8_t{
    ok = 0,
    invalid_argument = 1,  // the kernel's handler rejected the request's content
    malformed = 2,         // the request is not a readable FlatBuffer of its type
    wrong_type = 3,        // the request's type is not the one the ring kernel accepts
    reply_too_large = 4,   // the kernel's reply did not fit
    handler_fault = 5,     // the handler threw / failed internally
    timeout = 6,           // the request's deadline passed before its reply arrived
    stopped = 7,           // the ring actor / graph stopped before the request was served
    oversize = 8,          // the request is larger than the ring can carry
    unavailable = 9,       // no kernel incarnation is attached to serve it
    internal = 10,
    overloaded = 11,          // the in-flight window (per ring actor or per caller) is full: retry later
    unknown_name = 32,        // no actor registered under that name
    name_taken = 33,          // a name is already registered
    graph_invalid = 34,       // the graph description is wrong (edge type mismatch, unknown node, ...)
    restart_intensity = 35,   // a supervisor gave up: more restarts within its period than its intensity
    child_start_failed = 36,  // a supervisor's child failed to start (the detail names it and why)
    would_deadlock = 37,      // a blocking call() on a thread that runs completions (a callback, the poller)
    bad_reply = 38,           // the kernel's reply is not its declared reply type (or fails its verifier)
    node_unreachable = 39,    // the node's cluster member is lost (or partitioned) and the node has no fallback
};

const char* to_string(errc e) noexcept;

/// The CAF error category of ringflow's errors.
inline constexpr caf::atom_value ringflow_error_category = caf::atom("ringflow");

/// A caf::error of category "ringflow" with `detail` as its context.
caf::error make_error(errc e, std::string detail);
/// The ringflow code of `e`, or errc::ok if `e` is empty, or errc::internal if it is of another
/// category (see `is_ringflow_error`).
errc code_of(const caf::error& e) noexcept;
bool is_ringflow_error(const caf::error& e) noexcept;
/// The detail string carried by a ringflow error (empty if none).
std::string detail_of(const caf::error& e);
/// Kernel reply status -> errc (same numeric values, checked below).
inline errc from_status(status s) noexcept { return static_cast<errc>(static_cast<std::uint8_t>(s)); }

namespace detail {
/// True when errc and status agree value for value on the codes they share (0..11).
constexpr bool same_code(errc e, status s) noexcept { return static_cast<unsigned>(e) == static_cast<unsigned>(s); }
}  // namespace detail
static_assert(detail::same_code(errc::ok, status::ok));
static_assert(detail::same_code(errc::invalid_argument, status::invalid_argument));
static_assert(detail::same_code(errc::malformed, status::malformed));
static_assert(detail::same_code(errc::wrong_type, status::wrong_type));
static_assert(detail::same_code(errc::reply_too_large, status::reply_too_large));
static_assert(detail::same_code(errc::handler_fault, status::handler_fault));
static_assert(detail::same_code(errc::timeout, status::deadline_exceeded));
static_assert(detail::same_code(errc::stopped, status::stopped));
static_assert(detail::same_code(errc::oversize, status::oversize));
static_assert(detail::same_code(errc::unavailable, status::unavailable));
static_assert(detail::same_code(errc::internal, status::internal));
static_assert(detail::same_code(errc::overloaded, status::overloaded));
static_assert(static_cast<unsigned>(status::overloaded) < static_cast<unsigned>(errc::unknown_name),
              "status codes stay below errc's own range (32..)");
/// Renders a ringflow caf::error as "ringflow.overloaded: detail" (registered with CAF so
/// actor_system::render prints it).
std::string render_error(std::uint8_t code, const caf::message& context);

}  // namespace ringflow

// ringflow/runtime/catalog.hpp — what a topology file may name: message types, ring kernels, CPU functions.
//
// Contract
//   * Message types are named by their short schema name (`Echo`, `SaxpyRequest`, `SaxpyReply`,
//     `ScoreRequest`, `ScoreReply`); each has a verifier, a generator for load (a valid message
//     carrying a sequence number, so answers can be matched to requests) and a reader of that
//     sequence number from a reply (nullopt when the type carries none, e.g. SaxpyReply).
//   * Ring kernels are named by K::name (`echo`, `saxpy`, `score`); each entry knows its request
//     and reply types and makes incarnation factories for the CPU backend and for a sim device.
//   * CPU functions (input type = output type, checked against edges like any node):
//       passthrough  forwards the message unchanged (trace context included)
//       validate     runs the type's FlatBuffers Verifier; a bad message is answered with an
//                    error (the graph's errc::handler_fault, naming the type) and goes no further
//       sink         ends the message (an answer with no outputs): a terminal that keeps nothing
//   * Kernel plugins (runtime/plugins.hpp) add kernels, message types and functions: all of one
//     load or none (add_to_catalog). Nothing is ever removed (plugins are never unloaded), so a
//     pointer find_*() returned stays valid for the life of the process. Plugin message types are
//     named by their fully qualified table names (`trial.Order`); built-ins keep their short names.
// Thread-safety: reentrant; find_*() and the *_names() take a shared lock, add_to_catalog() an
// exclusive one. The *_catalog() containers may be iterated only while no plugin is being loaded
// (tests; the program loads plugins before it runs anything).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/actors/graph.hpp"
#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/ingress.hpp"
#include "ringflow/sim/sim_device.hpp"

namespace ringflow::ops {

struct message_info {
  std::string name;  // "Echo", or a plugin's "trial.Order"
  type_id id = 0;
  /// A valid message for load generation: `seq` identifies it; `payload_bytes` sizes its body
  /// (Echo body bytes, Saxpy vector length * 8, Score features * 8), roughly.
  std::function<fb_msg(std::uint64_t seq, std::uint32_t payload_bytes)> make;
  /// The sequence number an answer of this type carries, if the type has one.
  std::function<std::optional<std::uint64_t>(const fb_msg&)> sequence_of;
  /// FlatBuffers Verifier of this type (root table and identifier).
  std::function<bool(const fb_msg&)> verify;
  /// The same Verifier for ring actors' payload registry (catalog_payloads()).
  payload_registry::verify_fn verifier = nullptr;
  /// Is an answer of this type right? (a plugin kernel's check_reply; empty: no check). `why`
  /// says what is wrong when it is not.
  std::function<bool(const fb_msg&, std::string& why)> check;
  std::string full_name;            // the table's fully qualified name ("ringflow.demo.Echo")
  std::string origin = "built-in";  // or the plugin file that brought it
  /// May this type be a `load:` message (it has `make`)?
  bool loadable() const noexcept { return static_cast<bool>(make); }
};

struct kernel_info {
  std::string name;            // K::name
  std::string request, reply;  // message names
  type_id request_id = 0, reply_id = 0;
  std::function<incarnation_factory(cpu_incarnation_options)> cpu_factory;
  std::function<incarnation_factory(sim::sim_device&, cpu_incarnation_options)> sim_factory;
  std::string origin = "built-in";  // or the plugin file that brought it
  std::uint32_t state_bytes = 0;    // a stateful kernel's state (kernel.hpp); 0: stateless
  /// A stateful kernel's state as JSON text (GET /state/<node>), from `state_bytes` bytes; empty:
  /// the state is shown as hex.
  std::function<std::string(const std::uint8_t* state)> dump_state;
  /// A stateful kernel on the host, outside any ring (durable checkpoints fold their journal into
  /// the state with these: runtime/checkpoint.hpp): init() into `state`; apply one request (its
  /// payload bytes) to `state` through the kernel's handler — the same code a CPU incarnation runs.
  std::function<void(std::uint8_t* state)> init_state;
  std::function<void(std::uint8_t* state, const std::uint8_t* request, std::uint32_t size)> apply_state;
};

struct function_info {
  std::string name;
  std::string help;
  /// The node function for message type `type`.
  std::function<cpu_node_fn(const message_info& type)> make;
  std::string origin = "built-in";  // or the plugin file that brought it
};

const std::deque<message_info>& message_catalog();
const std::deque<kernel_info>& kernel_catalog();
const std::deque<function_info>& function_catalog();

const message_info* find_message(const std::string& name);
const message_info* find_message(type_id id);
const kernel_info* find_kernel(const std::string& name);
const function_info* find_function(const std::string& name);

/// "a, b, c" of the catalog's names (for error messages).
std::string message_names();
std::string kernel_names();
std::string function_names();

/// Payload verification for ring actors (ring_actor_options::verify): every catalog type's
/// Verifier, built-ins and plugins'. Valid for the life of the process (a load makes a new one).
const payload_registry& catalog_payloads();

/// Adds a plugin's entries, all or none: throws std::invalid_argument naming the first duplicate
/// kernel, message (name or type id) or function name (plugins.cpp checks first, with better
/// messages; this is the last line).
void add_to_catalog(std::vector<message_info> messages, std::vector<kernel_info> kernels,
                    std::vector<function_info> functions);

}  // namespace ringflow::ops

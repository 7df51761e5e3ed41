// ringflow/supervision/supervisor.hpp — OTP-style supervisor trees on CAF (which has none).
//
// Contract (Erlang's supervisor.erl; docs/SUPERVISORS.md is the guide)
//   * A supervisor is a CAF event-based actor that traps exits and monitors its children; when it
//     ends, however (killed included), the children still running get its exit reason — OTP's
//     links, done by hand because CAF 0.17 links would let a killed child kill its supervisor
//     (docs/SUPERVISORS.md). It starts its children in spec order and stops them in reverse, each
//     by its shutdown_spec (brutal: kill; timeout: user_shutdown, then kill after the limit;
//     infinity: user_shutdown and wait). All of it is asynchronous — a state machine driven by
//     messages, never a blocked worker — so nested trees cannot deadlock CAF's few scheduler threads.
//   * Restart rules: permanent children always restart; transient ones only after an abnormal exit
//     (CAF's `normal` and `user_shutdown` are normal); temporary ones never (they are removed).
//     Strategies one_for_one / one_for_all / rest_for_one. Each restart (and each failed restart
//     attempt, retried through the mailbox as OTP does) counts toward the intensity: more than
//     `intensity` restarts within `period` and the supervisor stops all its children and exits with
//     errc::restart_intensity — an abnormal reason, so its own supervisor restarts it (escalation).
//   * An exit message (from its parent, the runtime, supervisor_ref::stop, any actor) shuts the
//     supervisor down in order and it exits with that reason; exit_reason::kill ends it at once
//     and its children get `kill`.
//   * Initial start: a child that fails to start stops the ones already started (reverse) and the
//     supervisor fails with errc::child_start_failed naming the child and the reason. A nested
//     supervisor counts as started once its own children are up.
// Thread-safety: start_supervisor and supervisor_ref's members may be called from any non-actor
//   thread; the ones that wait (start_supervisor, start_child, terminate_child, stop) block the
//   caller, so do not call them from inside an actor's handler. Start functions run on the
//   supervisor's CAF worker: they must spawn and return, not wait for long.
#pragma once

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/actors/runtime.hpp"

namespace ringflow {

enum class restart_type : std::uint8_t {
  permanent,  // always restarted
  transient,  // restarted only after an abnormal exit
  temporary,  // never restarted; removed when it exits
};

enum class child_kind : std::uint8_t { worker, supervisor };

enum class restart_strategy : std::uint8_t {
  one_for_one,   // restart the child that exited
  one_for_all,   // stop all others (reverse), restart all (in order)
  rest_for_one,  // stop the ones started after it (reverse), restart it and them (in order)
};

enum class shutdown_mode : std::uint8_t { brutal, timeout, infinity };

/// How a child is stopped (OTP's `shutdown`).
struct shutdown_spec {
  shutdown_mode mode = shutdown_mode::timeout;
  std::chrono::milliseconds limit{5000};  // for `timeout`: how long the child may take to exit

  static constexpr shutdown_spec brutal() noexcept { return {shutdown_mode::brutal, std::chrono::milliseconds(0)}; }
  static constexpr shutdown_spec timeout(std::chrono::milliseconds t) noexcept { return {shutdown_mode::timeout, t}; }
  static constexpr shutdown_spec infinity() noexcept { return {shutdown_mode::infinity, std::chrono::milliseconds(0)}; }
};

/// A child as data. `start` spawns the child and returns it (or an error); the supervisor monitors it.
struct child_spec {
  std::string id;  // unique within its supervisor
  std::function<caf::expected<caf::actor>()> start;
  restart_type restart = restart_type::permanent;
  shutdown_spec shutdown{};
  child_kind kind = child_kind::worker;
};

struct supervisor_flags {
  restart_strategy strategy = restart_strategy::one_for_one;
  std::uint32_t intensity = 1;             // at most this many restarts ...
  std::chrono::milliseconds period{5000};  // ... within this period (OTP: 1 in 5 s)
};

struct supervisor_spec {
  std::string name;  // for errors and the snapshot
  supervisor_flags flags{};
  std::vector<child_spec> children;  // started in this order
  /// Dynamic children (Elixir's DynamicSupervisor, OTP's simple_one_for_one): no static children,
  /// one_for_one, and a child that ends for good (temporary, transient after a normal exit) is
  /// removed rather than kept as "not running".
  bool dynamic = false;
};

/// A supervisor that starts empty and takes children through supervisor_ref::start_child.
supervisor_spec dynamic_supervisor(std::string name, std::uint32_t intensity = 1,
                                   std::chrono::milliseconds period = std::chrono::milliseconds(5000));

/// A child that is itself a supervisor (kind supervisor, shutdown infinity, as OTP). Its start
/// function only works when a supervisor calls it.
child_spec supervisor_child(std::string id, supervisor_spec spec, restart_type restart = restart_type::permanent);

/// A ring actor serving kernel K as a child, registered under `name` (also the child id). A restart
/// spawns a fresh ring actor (core, incarnation) under the same name; callers that were pending on
/// the crashed one got errc::stopped. `rt` must outlive the supervisor.
child_spec ring_actor_child(runtime& rt, std::string name, type_id request_type, type_id reply_type,
                            incarnation_factory factory, ring_actor_options opts = {});
template <ring_kernel K>
child_spec ring_actor_child(runtime& rt, std::string name, ring_actor_options opts = {},
                            cpu_incarnation_options cpu = {}) {
  return ring_actor_child(rt, std::move(name), K::request::type_id_, K::reply::type_id_,
                          cpu_incarnation_factory<K>(rt.with_kernel_pool(std::move(cpu))), opts);
}

/// One child in a snapshot.
struct supervisor_snapshot;
struct supervised_child_status {
  std::string id;
  child_kind kind = child_kind::worker;
  restart_type restart = restart_type::permanent;
  bool running = false;
  caf::actor_id actor = 0;                            // 0 while not running
  std::uint64_t restarts = 0;                         // starts after its first
  std::string last_exit;                              // how its previous instance ended (rendered), "" if none yet
  std::shared_ptr<const supervisor_snapshot> nested;  // a supervisor child's own snapshot
};

/// A consistent copy of a supervisor's state (for /topology and metrics).
struct supervisor_snapshot {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  std::uint32_t intensity = 0;
  std::chrono::milliseconds period{0};
  bool dynamic = false;
  bool running = false;                           // started and not yet exited
  std::uint64_t restarts = 0;                     // restart decisions so far (what the intensity counts)
  bool escalated = false;                         // gave up: intensity exceeded
  std::vector<supervised_child_status> children;  // in start order
};

namespace detail {
struct supervisor_shared;
}

/// A handle to a running supervisor.
class supervisor_ref {
 public:
  supervisor_ref() = default;
  const caf::actor& actor() const noexcept { return actor_; }

  /// Adds and starts a child (appended to the start order). Fails with errc::invalid_argument (bad
  /// spec), errc::name_taken (the id is in use), errc::child_start_failed, or errc::stopped.
  caf::expected<caf::actor> start_child(child_spec spec) const;
  /// Stops child `id` by its shutdown spec and removes it (OTP's terminate_child + delete_child).
  /// errc::unknown_name if there is no such child.
  caf::error terminate_child(const std::string& id) const;
  /// Orderly shutdown (children in reverse); waits up to `limit`. True once the supervisor is gone.
  bool stop(std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) const;

  supervisor_snapshot snapshot() const;
  /// The reason it exited with, once it has (restart_intensity after it gave up).
  std::optional<caf::error> exit_reason() const;
  /// Waits up to `limit` for the supervisor to exit; true if it has.
  bool wait_for_exit(std::chrono::milliseconds limit) const;

 private:
  friend caf::expected<supervisor_ref> start_supervisor(runtime&, supervisor_spec);
  supervisor_ref(caf::actor a, std::shared_ptr<detail::supervisor_shared> s)
      : actor_(std::move(a)), shared_(std::move(s)) {}
  caf::actor actor_;
  std::shared_ptr<detail::supervisor_shared> shared_;
};

/// Spawns a supervisor, waits until its children have started (or one failed: the error is
/// errc::child_start_failed, errc::invalid_argument for a bad spec), and ties it to the runtime:
/// runtime shutdown first stops the tree in order (bounded by the runtime's shutdown_timeout).
/// Drop the returned ref (and the handles it gave out) before the runtime is destroyed.
caf::expected<supervisor_ref> start_supervisor(runtime& rt, supervisor_spec spec);

const char* to_string(restart_type t) noexcept;
const char* to_string(restart_strategy s) noexcept;
const char* to_string(child_kind k) noexcept;

}  // namespace ringflow

// ringflow/actors/runtime.hpp — the embedding entry point: owns the CAF actor system and ringflow's threads.
//
// Contract
//   * Construction: a caf::actor_system with an explicit number of scheduler threads (CAF's
//     default, max(cores, 4), oversubscribes small machines that also run kernel and poller
//     threads), ringflow's message types registered with CAF ("ringflow::fb_msg" and its vector;
//     an unregistered type would be delivered as an empty message), the "ringflow" error
//     category, and one completion poller thread.
//   * spawn_ring_actor<K>(name): a ring core + a CPU incarnation of kernel K + the ring actor,
//     registered under `name`. The incarnation runs in the runtime's kernel pool (kernel_threads
//     threads shared by every ring actor, cpu/kernel_pool.hpp) unless it must own a thread
//     (cpus, another wait mode than the pool's, own_thread: cpu_incarnation_options).
//   * shutdown() (also run by the destructor) never hangs: it stops every ring core (pending
//     callers get errc::stopped), sends every tracked and registered actor an exit, waits up to
//     `shutdown_timeout` for them, drops every handle ringflow holds, and — should actors the
//     runtime does not know still run (e.g. user actors holding each other's handles in a cycle) —
//     tells CAF not to wait for them, so the actor system's destructor returns (those actors are
//     then abandoned: their handles must not be used or destroyed after the runtime is gone —
//     break such cycles yourself before shutdown to avoid the leak). Several runtimes
//     may be created and destroyed one after another in one process.
// Thread-safety: spawn_*, client, registry, track from any thread; shutdown from one thread.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringflow/actors/completion_poller.hpp"
#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/actors/registry.hpp"
#include "ringflow/actors/ring_actor.hpp"
#include "ringflow/actors/ring_client.hpp"
#include "ringflow/actors/ring_core.hpp"
#include "ringflow/actors/typed_client.hpp"
#include "ringflow/cpu/cpu_incarnation.hpp"

namespace ringflow {

struct runtime_config {
  std::size_t scheduler_threads = 2;  // CAF worker threads (set explicitly; see above)
  /// The completion poller (`rf-poll`): its wait policy (poller.wait.mode: park / adaptive /
  /// spin, wait_policy.hpp) and CPUs.
  poller_config poller{};
  /// CPUs every thread CAF starts (`rf-caf-<n>`: scheduler workers, timer, ...) is pinned to
  /// (empty: not pinned). The constructor throws std::invalid_argument for a CPU outside the
  /// allowed set.
  std::vector<int> scheduler_cpus;
  /// The process's spin budget (wait_policy.hpp: how many adaptive waiters may spin at once).
  /// -1 = allowed CPUs − scheduler_threads − 1 (at least 0): a 2-core machine with 2 scheduler
  /// threads has no spare core, so adaptive waiters park there.
  int spin_cores = -1;
  /// CPU kernel threads shared by the ring actors (the kernel pool): -1 = one per allowed CPU,
  /// 0 = no pool (every ring actor gets a kernel thread of its own), N = N threads.
  int kernel_threads = -1;
  /// The pool threads' wait policy (a ring actor asking for another mode gets its own thread).
  wait_policy kernel_wait{};
  std::chrono::milliseconds shutdown_timeout{5000};
  /// Extra CAF settings (applied after ringflow's own).
  std::function<void(caf::actor_system_config&)> configure_caf;
};

/// Registers ringflow's types and error category with a CAF config (the runtime does this; call
/// it yourself only for an actor system that is not ringflow's, e.g. a remote node).
void register_ringflow_types(caf::actor_system_config& cfg);

class runtime {
 public:
  explicit runtime(runtime_config cfg = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  caf::actor_system& system() noexcept { return *system_; }
  const runtime_config& config() const noexcept { return cfg_; }
  actor_registry& registry() noexcept { return registry_; }
  completion_poller& poller() noexcept { return *poller_; }

  /// Spawns a ring actor serving kernel K on the CPU backend, registered under `name`.
  /// Throws std::invalid_argument (name taken by another actor or a live ring actor, bad options).
  /// The name of a ring actor that has ended is reused: its core is stopped if need be, its record replaced.
  /// A stateful K (kernel.hpp): opts.state.state_bytes is K's, and rings whose arenas cannot carry
  /// the state (plus its checksum) get arenas that can (twice that, rounded up to 64 bytes).
  template <ring_kernel K>
  caf::actor spawn_ring_actor(const std::string& name, ring_actor_options opts = {}, cpu_incarnation_options cpu = {}) {
    with_kernel_state<K>(opts);
    return spawn_ring_actor(name, K::request::type_id_, K::reply::type_id_,
                            cpu_incarnation_factory<K>(with_state_room<K>(with_kernel_pool(std::move(cpu)))), opts);
  }
  /// `cpu` with the runtime's kernel pool filled in (unless it names a pool or own_thread, or
  /// the runtime has no pool): what every CPU incarnation the runtime makes for a user gets.
  cpu_incarnation_options with_kernel_pool(cpu_incarnation_options cpu) const {
    if (!cpu.pool && !cpu.own_thread) cpu.pool = kernel_pool_;
    return cpu;
  }
  /// The kernel pool (null when kernel_threads is 0).
  const std::shared_ptr<cpu::kernel_pool>& kernel_pool() const noexcept { return kernel_pool_; }
  caf::actor spawn_ring_actor(const std::string& name, type_id request_type, type_id reply_type,
                              incarnation_factory factory, ring_actor_options opts = {});

  /// The core behind ring actor `name` (nullptr if there is none).
  std::shared_ptr<ring_core> ring(const std::string& name) const;
  /// An embedding client of ring actor `name` (errc::unknown_name if there is none).
  caf::expected<ring_client> client(const std::string& name, client_options opts = {}) const;
  /// A typed client of ring actor `name` for kernel K (errc::unknown_name if there is none,
  /// errc::wrong_type if that ring actor serves other types).
  template <ring_kernel K>
  caf::expected<typed_client<K>> client_for(const std::string& name, client_options opts = {}) const {
    caf::expected<ring_client> c = client(name, opts);
    if (!c) return c.error();
    const ring_core& core = c->core();
    if (core.request_type() != K::request::type_id_ || core.reply_type() != K::reply::type_id_)
      return make_error(errc::wrong_type, "ring actor '" + name + "' does not serve kernel '" + K::name + "''s types");
    return typed_client<K>(std::move(*c));
  }
  /// A fresh incarnation for `name` from its factory (what supervision uses to restart/reroute).
  std::unique_ptr<incarnation> make_incarnation(const std::string& name);
  /// Replaces the incarnation behind ring actor `name`: detach (drain), attach a fresh one from
  /// `factory` (or its own factory when empty), replay what was not answered. Returns the old one.
  std::unique_ptr<incarnation> swap_incarnation(const std::string& name, incarnation_factory factory = {});

  /// Spawns a function-based actor and tracks it for shutdown. (Spawn with at least one
  /// argument: CAF 0.17.6 dereferences null for argument-less function actors under UBSan.)
  template <class F, class... Ts>
  caf::actor spawn(F fun, Ts&&... xs) {
    caf::actor a = system_->spawn(fun, std::forward<Ts>(xs)...);
    track(a);
    return a;
  }
  /// Makes shutdown() stop `a` too.
  void track(const caf::actor& a);
  /// Runs `hook` first thing in shutdown(), hooks in reverse order of registration (running graphs,
  /// supervisor trees and the fault ladder stop themselves this way: the newest first).
  void on_shutdown(std::function<void()> hook);
  /// Stops ring actor `name` (pending callers get errc::stopped) and forgets its name.
  bool remove_ring(const std::string& name);

  /// See the contract above. Idempotent.
  void shutdown();
  bool is_shut_down() const noexcept { return shut_down_; }

 private:
  struct ring_record {
    std::shared_ptr<ring_core> core;
    incarnation_factory factory;
  };
  runtime_config cfg_;
  std::shared_ptr<cpu::kernel_pool> kernel_pool_;  // outlives the cores (incarnations share it too)
  std::unique_ptr<completion_poller> poller_;      // outlives the cores (declared first, destroyed last)
  caf::actor_system_config caf_cfg_;
  std::unique_ptr<caf::actor_system> system_;
  actor_registry registry_;
  mutable std::mutex mu_;
  std::map<std::string, ring_record, std::less<>> rings_;  // guarded by mu_
  std::vector<caf::actor> tracked_;                        // guarded by mu_
  std::vector<std::function<void()>> shutdown_hooks_;      // guarded by mu_
  bool shut_down_ = false;
};

}  // namespace ringflow

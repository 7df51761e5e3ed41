// ringflow/supervision/fault_ladder.hpp — the host watchdog and the device fault ladder of ring actors.
//
// Contract
//   * One fault_ladder per runtime watches the ring actors placed on devices (spawn_ring_actor,
//     or supervise() for an existing one) from one thread: every `watch_interval` while requests
//     flow to any of them or one is recovering (`idle_interval` otherwise) it reads each
//     attached incarnation's control block and request ring (ring_core::probe) and the core's
//     reply-verification counter. Detected faults:
//       kernel fault     the control block says faulted: error code + sticky flag + detail;
//       hang             the heartbeat did not move for `hang_timeout` while requests waited in the
//                        ring (so hang_timeout must exceed the longest handler's run time);
//       corrupt reply    a reply failed verification (ring_actor_options::verify_replies);
//       launch failure   a factory threw while the ladder restarted a kernel.
//   * The ladder (each step counted, timed and reported as a ladder_event):
//       1 restart        transient faults (internal, crashed, reply_stuck, a non-sticky device
//                        fault, hang, corrupt reply): a new incarnation on the same device; the
//                        first restart in a row is immediate, the next ones wait an exponential
//                        back-off with jitter.
//       2 reinitialize   device faults (a sticky error, out of memory, device lost, a launch
//                        failure) or `restarts_before_reinit` transient faults within
//                        `restart_window`: device::reinitialize(), then restart on the device.
//       3 reroute        the breaker is open, or reinitialization is unsupported or failed: a CPU
//                        incarnation of the same kernel behind the same ring actor (the breaker is
//                        tripped open, so the way back is always a probe).
//       4 fail-back      per-device circuit_breaker: when it lets a probe through (half-open), one
//                        rerouted ring actor moves back to the device; if it stays healthy for
//                        `probe_window` the breaker closes and the device's other rerouted ring
//                        actors follow; if it faults, the breaker opens again with a longer cool-down.
//     Detach: a faulted or corrupting kernel is stopped (drained) and its last replies harvested
//     (ring_core::detach; every reply is verified), then restarted in place when the backend can
//     (incarnation::restart: same rings, new epoch); a hung one is abandoned unread
//     (detach_abandon) and kept in a graveyard until its thread ends. Every attach replays the outbox's unanswered
//     requests in order; replies are deduplicated by correlation id: each caller gets exactly one answer. Ladder steps
//     never touch the ring actor: no OTP restart, no change of handle, name or outbox.
//   * Faults of a ring actor already rerouted to the CPU restart its CPU incarnation (step 1 with
//     back-off); there is nowhere further to go.
//   * Destroy the ladder before its runtime (runtime shutdown also stops it). Abandoned kernels
//     that never finish (a CPU handler stuck for good) are leaked at destruction, reported as an
//     event: a thread cannot be killed.
// Thread-safety: all public members from any thread. Events are delivered on the ladder's thread
// with its lock held: the sink must not call back into the ladder.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ringflow/actors/runtime.hpp"
#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/supervision/circuit_breaker.hpp"

namespace ringflow {

/// What the ladder did (one structured log record; `to_json()` renders it).
struct ladder_event {
  enum class kind {
    fault,           // a fault was detected (fault, detail)
    restart,         // step 1 (or a restart after a reinit): a new incarnation on the same place
    reinitialize,    // step 2 (detail: outcome)
    reroute,         // step 3: now on the CPU
    probe,           // step 4: a rerouted ring actor tries the device again
    fail_back,       // the probe (or a follower) is back on the device for good
    breaker_open,    // the device's breaker opened
    breaker_closed,  // ... closed again
    recovered,       // first successful reply after the fault (duration_ns: from detection)
    step_failed,     // a step could not be taken (detail says why); the ladder goes on
    leaked,          // an abandoned kernel never finished (at destruction)
  };
  kind what = kind::fault;
  std::uint64_t at_ns = 0;  // steady clock
  std::string ring;
  std::string device;
  std::string fault;  // "hang", "corrupt_reply", "launch_failed", or the kernel_error name
  std::string detail;
  std::string backend;            // where the ring actor runs after the step ("sim", "cpu", ...)
  std::uint32_t attempt = 0;      // restarts in a row (restart events)
  std::uint64_t duration_ns = 0;  // recovered: detection -> first successful reply; restart, reinitialize,
                                  // reroute: how long the step itself took (from its start)
  std::string to_json() const;
};
const char* to_string(ladder_event::kind k) noexcept;

struct ladder_config {
  std::chrono::milliseconds hang_timeout{1000};
  std::chrono::microseconds watch_interval{1000};
  std::chrono::milliseconds idle_interval{20};
  std::chrono::microseconds backoff_initial{1000};  // before the 2nd restart in a row
  std::chrono::milliseconds backoff_max{1000};
  double backoff_multiplier = 2.0;
  double jitter = 0.2;                       // each delay is scaled by 1 +- jitter
  std::uint32_t restarts_before_reinit = 3;  // transient faults within restart_window
  std::chrono::milliseconds restart_window{10000};
  std::chrono::milliseconds probe_window{1000};  // a fail-back probe must stay healthy this long
  std::chrono::milliseconds stop_timeout{2000};  // drain of a healthy kernel moved by fail-back / reroute
  breaker_config breaker{};
  std::uint64_t seed = 42;                            // jitter
  std::size_t event_history = 256;                    // recent events kept for snapshot()
  std::function<void(const ladder_event&)> on_event;  // structured log sink (optional)
};

/// Per ring actor state, for metrics and /topology.
struct ladder_ring_status {
  std::string name;
  std::string device;
  std::string backend;    // of the attached incarnation ("" while detached)
  bool on_device = true;  // false: rerouted to the CPU
  std::string phase;      // "healthy", "backoff", "probing"
  std::uint64_t faults = 0, hangs = 0, corrupt_replies = 0, restarts = 0, reinits = 0, reroutes = 0, fail_backs = 0;
  std::uint64_t last_recovery_ns = 0;
};
struct ladder_device_status {
  std::string id;
  std::string backend;
  breaker_state breaker = breaker_state::closed;
  std::uint32_t recent_failures = 0;
  std::uint64_t breaker_opens = 0;
  std::uint64_t reinits = 0;
};
struct ladder_snapshot {
  std::vector<ladder_ring_status> rings;
  std::vector<ladder_device_status> devices;
  std::vector<ladder_event> recent_events;  // oldest first
  std::size_t graveyard = 0;                // abandoned kernels not finished yet
};

class fault_ladder {
 public:
  /// Throws std::invalid_argument for a bad configuration.
  explicit fault_ladder(runtime& rt, ladder_config cfg = {});
  ~fault_ladder();
  fault_ladder(const fault_ladder&) = delete;
  fault_ladder& operator=(const fault_ladder&) = delete;

  /// Spawns ring actor `name` for kernel K on `dev` (a device with `template factory<K>(cpu)`,
  /// e.g. sim::sim_device) and supervises it; if the device cannot start the kernel now, the
  /// actor starts on the CPU with the device's breaker open (graceful degradation).
  template <ring_kernel K, class Device>
  caf::actor spawn_ring_actor(const std::string& name, std::shared_ptr<Device> dev, ring_actor_options opts = {},
                              cpu_incarnation_options cpu = {}) {
    cpu = with_state_room<K>(rt_->with_kernel_pool(std::move(cpu)));  // a stateful K's rings carry its state
    with_kernel_state<K>(opts);
    auto on_device = dev->template factory<K>(cpu);
    return spawn_ring_actor(name, K::request::type_id_, K::reply::type_id_, std::move(dev), std::move(on_device),
                            cpu_incarnation_factory<K>(cpu), opts);
  }
  caf::actor spawn_ring_actor(const std::string& name, type_id request_type, type_id reply_type,
                              std::shared_ptr<device> dev, incarnation_factory on_device, incarnation_factory on_cpu,
                              ring_actor_options opts = {});
  /// Supervises an existing ring actor of the runtime (its current incarnation counts as on the
  /// device). A name already supervised is replaced (e.g. the ring actor was restarted by an OTP
  /// supervisor). Throws std::invalid_argument if the runtime has no ring actor `name`.
  void supervise(const std::string& name, std::shared_ptr<device> dev, incarnation_factory on_device,
                 incarnation_factory on_cpu);
  /// Stops watching `name`: the ring actor keeps running on whatever it runs now (one waiting
  /// for a restart gets a CPU incarnation at once). False if `name` is not supervised.
  bool forget(const std::string& name);

  ladder_snapshot snapshot() const;
  /// Hot reload: every device's breaker takes `cfg` (circuit_breaker::reconfigure; the state is
  /// kept), and so do devices added later. Throws std::invalid_argument for a bad configuration.
  void set_breaker_config(const breaker_config& cfg);
  /// Stops the watchdog thread and reaps the graveyard (bounded); ring actors waiting for a
  /// restart get a CPU incarnation (unless the runtime is shutting down). Idempotent; the
  /// destructor and runtime shutdown call it.
  void stop();

 private:
  struct impl;
  runtime* rt_;
  std::shared_ptr<impl> impl_;
};

}  // namespace ringflow

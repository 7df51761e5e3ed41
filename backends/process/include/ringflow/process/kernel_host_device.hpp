// ringflow/process/kernel_host_device.hpp — ring kernels in supervised worker processes
// (`ringflow kernel-host`) over rings in POSIX shared memory: the kernel-host backend.
//
// Why: a sticky device error (a CUDA illegal address) poisons the whole context until the process
// exits. With the kernel in a worker process, such a fault — or any crash of the worker — costs
// a worker restart; the service process keeps running and every request is answered exactly once
// (the ring core's outbox replays what the dead worker had not answered).
//
// Contract
//   * One shared segment per incarnation (segment.hpp). The service creates it (O_EXCL), formats
//     the rings and starts the worker with `PROGRAM kernel-host --segment NAME`; the worker
//     (worker.hpp) attaches to the same rings (no copy: the CPU kernel serves them in place; a sim
//     worker's fault-injecting decorator owns them) and starts its kernel. A GPU worker (backend
//     cuda or hip) owns the device context: it registers the whole segment with the device
//     (cudaHostRegister Mapped), opens a gpu_device on it and binds the segment's rings and control
//     block to its persistent kernel (gpu_device::factory_at) — the kernel polls the very rings the
//     service writes, across PCIe. A sticky fault (a trap, an illegal address) poisons only the
//     worker's context: the worker exits, a new process (the standby, its process already started)
//     takes over with a clean context and the ring core replays — the fault ladder's reinitialize
//     rung on a GPU. A hung kernel stops the heartbeat it publishes into the segment's control
//     block: the ladder's watchdog kills the worker (SIGKILL ends a process whatever its GPU does).
//   * Kernels are found through the kernel_lookup the options carry (name -> factory): this
//     backend knows no catalog; the program passes its own (runtime/ catalog) to both sides.
//   * Nothing the worker writes is trusted by the service. The incarnation's control() is the
//     service's own block, mirrored by a monitor thread from the shared one after checks (state and
//     error code in range, no state going back, heartbeat and counters monotonic, detail bounded),
//     together with the ring indices (request head monotonic and never past what was published,
//     response tail monotonic and never more than a ring ahead, configs unchanged). A check that
//     fails kills the worker and faults the incarnation (kernel_error::bad_ring for indices,
//     internal for the control block). Replies are bounds-checked, copied, then verified by the
//     ring core before anything reads them (ring_core::consume_replies).
//   * Faults the monitor turns into kernel faults for the fault ladder: the worker's exit (any
//     signal or exit code) without having stopped -> kernel_error::crashed; heartbeat loss (its
//     liveness counter did not move for heartbeat_timeout: a stopped or wedged process) -> the
//     worker is killed, crashed. Kernel faults inside the worker (a sim sticky error) arrive
//     through the mirrored control block as usual; the worker then exits.
//   * incarnation::restart() starts a new worker on the same segment after the old one is gone
//     (rings formatted anew; the ring core replays). abandon() kills the worker (SIGKILL: unlike a
//     stuck thread, a stuck process can always be ended). kernel_host_device::reinitialize() is
//     always ok: the next incarnation is a fresh process, which is what clears a poisoned context.
//   * One worker per ring actor incarnation, plus (by default) one standby worker that has already
//     started and sleeps until a restart activates it. Workers exit when their service process dies
//     (they watch their parent), when their kernel stops or faults, or when killed.
// Thread-safety: as ringflow::incarnation / ringflow::device; kernel_host_device members from
// any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/device.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/sim/fault_injector.hpp"

namespace ringflow::process {

/// A kernel a worker can host: its message types and how to make its CPU incarnations.
struct hosted_kernel {
  std::string name;
  type_id request_id = 0, reply_id = 0;
  std::function<incarnation_factory(cpu_incarnation_options)> cpu_factory;
  /// A stateful kernel's state (kernel.hpp; 0: stateless). The worker's kernel keeps it in the
  /// worker's own memory; the ring actor's snapshot and journal are what survive the worker.
  std::uint32_t state_bytes = 0;
};

/// Name -> kernel: what the service and its workers may host (the program's catalog).
struct kernel_lookup {
  std::function<std::optional<hosted_kernel>(const std::string& name)> find;
  std::function<std::string()> names;  // "a, b, c" (for error messages)
  explicit operator bool() const noexcept { return static_cast<bool>(find); }
};

struct kernel_host_options {
  /// The `ringflow` executable to start as `PROGRAM kernel-host --segment NAME`; "" = this
  /// process's own executable (/proc/self/exe), right when the service is the ringflow program.
  std::string program;
  std::string backend = "cpu";  // the worker's backend: cpu | sim | cuda | hip (see is_gpu_worker_backend)
  std::string segment_prefix = "ringflow";
  std::chrono::milliseconds start_timeout{5000};      // worker start -> its kernel running
  std::chrono::milliseconds heartbeat_timeout{1000};  // liveness silence that counts as a dead worker
  std::chrono::milliseconds liveness_interval{10};    // how often the worker beats
  std::chrono::microseconds monitor_interval{2000};   // how often the monitor looks when nothing happens
  std::vector<sim::fault_rule> standing_faults;       // sim workers: rules every worker starts with
  /// Keep one pre-started standby worker per incarnation: a restart activates it instead of
  /// starting a process (exec and dynamic loading cost ~13 ms here), and a new standby is started
  /// in the background. Costs one idle process (blocked on a pipe only the service writes, so no
  /// worker can activate it) per ring actor.
  bool standby = true;
  /// The kernels the workers may host (required).
  kernel_lookup kernels;
  /// Extra arguments every worker gets after `kernel-host --segment NAME [--standby]`: the
  /// program passes `--plugin PATH --plugin-sha256 HEX` for each plugin of the topology, so a
  /// worker loads the same files (and refuses different ones).
  std::vector<std::string> worker_args;
};

class host_incarnation;

/// The backends a worker runs on a GPU (it opens a gpu_device): cuda, hip, and "emulated" (the
/// tests' host emulator of a GPU, which only a test's own worker program can host).
[[nodiscard]] inline bool is_gpu_worker_backend(const std::string& b) {
  return b == "cuda" || b == "hip" || b == "emulated";
}

/// The worker processes of one placement (e.g. a topology node), seen by the fault ladder as one
/// device ("host:<node>") with one circuit breaker.
class kernel_host_device final : public device, public std::enable_shared_from_this<kernel_host_device> {
 public:
  /// Throws std::invalid_argument for bad options (unknown backend, a sim rule for a cpu worker,
  /// no kernel lookup).
  [[nodiscard]] static std::shared_ptr<kernel_host_device> make(std::string id, kernel_host_options opts);
  ~kernel_host_device() override;

  const std::string& id() const noexcept override { return id_; }
  const char* backend() const noexcept override { return "kernel-host"; }
  /// Always ok: every new incarnation is a new worker process (a clean context).
  reinit_outcome reinitialize(std::string& detail) override;

  /// Incarnations of kernel `kernel` (found through options().kernels; std::invalid_argument if
  /// unknown) in worker processes. The factory throws std::runtime_error when a worker cannot be
  /// started (no program, segment creation failed, the worker exited or timed out during start).
  [[nodiscard]] incarnation_factory factory(const std::string& kernel, cpu_incarnation_options cpu = {});
  template <ring_kernel K>
  [[nodiscard]] incarnation_factory factory(cpu_incarnation_options cpu = {}) {
    return factory(K::name, cpu);
  }

  /// Sends `sig` to every live worker; returns how many were signalled.
  std::size_t signal_workers(int sig);
  /// For the owner's shutdown, once every ring actor using this device is gone (the fault ladder
  /// stopped, the runtime shut down): incarnations still alive then are ones the ladder had to
  /// leak (abandoned, not finished within its stop wait). Their workers are SIGKILLed and their
  /// segments unlinked, so nothing of the service is left in /dev/shm; the mappings stay valid for
  /// whatever still holds them. Returns the segments unlinked. Never call it while ring actors
  /// use the device: their standbys open the segment by name.
  std::vector<std::string> unlink_leftovers();
  /// Sim workers: injects `rule` into every live worker's injector (at_message counts from the
  /// worker's next request). Returns how many workers were told.
  std::size_t inject(const sim::fault_rule& rule);
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  /// Standby workers waiting to take over (kernel_host_options::standby).
  [[nodiscard]] std::vector<pid_t> standby_pids() const;
  /// Worker processes started (each incarnation start and restart).
  [[nodiscard]] std::uint64_t worker_starts() const noexcept { return starts_.load(std::memory_order_relaxed); }
  /// Workers started to replace one that ended without a clean stop (crash, kill, heartbeat loss,
  /// a kernel fault, a check that failed).
  [[nodiscard]] std::uint64_t worker_restarts() const noexcept { return restarts_.load(std::memory_order_relaxed); }
  /// Workers that ended without a clean stop.
  [[nodiscard]] std::uint64_t worker_failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
  /// Faults fired by the workers' injectors (sim), as far as they reported them.
  [[nodiscard]] std::uint64_t faults_fired() const;
  [[nodiscard]] const kernel_host_options& options() const noexcept { return opts_; }

 private:
  friend class host_incarnation;
  kernel_host_device(std::string id, kernel_host_options opts);
  void enlist(host_incarnation* h);
  void discharge(host_incarnation* h);
  void worker_ended(bool clean, std::uint64_t fired);
  void worker_started();

  std::string id_;
  kernel_host_options opts_;
  std::atomic<std::uint64_t> starts_{0}, restarts_{0}, failures_{0}, owed_replacements_{0};
  std::atomic<std::uint64_t> fired_done_{0};
  std::atomic<std::uint64_t> reinits_{0};
  mutable std::mutex mu_;
  std::vector<host_incarnation*> live_;  // (mu_)
};

}  // namespace ringflow::process

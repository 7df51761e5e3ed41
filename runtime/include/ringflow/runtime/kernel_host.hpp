// ringflow/runtime/kernel_host.hpp — ring kernels in a supervised worker process (`ringflow
// kernel-host`) over rings in POSIX shared memory.
//
// Why: a sticky device error (a CUDA illegal address) poisons the whole context until the process
// exits. With the kernel in a worker process, such a fault — or any crash of the worker — costs
// a worker restart; the service process keeps running and every request is answered exactly once
// (the ring core's outbox replays what the dead worker had not answered).
//
// Contract
//   * One shared segment per incarnation: a header, the kernel's control block, two
//     process-shared doorbells (the kernel's wake bell, the reply bell) and the request and
//     response rings, laid out by segment_layout. The service creates it (shm_open, O_EXCL),
//     formats the rings and starts the worker with `kernel-host --segment NAME`; the worker
//     attaches to the same rings (no copy: the CPU kernel serves them in place; a sim worker's
//     fault-injecting decorator owns them) and starts its kernel. A CUDA/HIP worker would register
//     the mapping with the device (cudaHostRegister) — those backends are not built yet, and the
//     worker refuses them with a clear error.
//   * Names are per service instance: "/<prefix>.<pid>.<start-time>.<n>.<kernel>" where start-time
//     is the service's start time in clock ticks (/proc/<pid>/stat), so a reused pid is told
//     apart. Segments are unlinked when their incarnation is destroyed (clean shutdown).
//     reclaim_stale_segments() removes segments whose service is gone (a crashed earlier run).
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
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/cpu/doorbell.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/sim/fault_injector.hpp"

namespace ringflow::ops {

/// The segment header. Lines: set-up (service, before the worker starts), service line (service
/// writes, worker reads), worker line (worker writes, service reads and checks).
struct host_segment_header {
  static constexpr std::uint64_t magic_value = 0x3130545348464b52ull;  // "RKFHST01"
  static constexpr std::uint32_t version_value = 1;
  static constexpr std::uint32_t max_rules = 8;
  struct rule {  // a standing sim fault rule (a worker's injector gets them at start)
    std::uint32_t kind;
    std::uint32_t times;
    std::uint64_t at_message;
    double probability;
    std::uint32_t latency_us;
    std::uint32_t pad;
  };
  // -- set-up
  alignas(128) std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t rule_count;
  std::uint64_t total_bytes;
  std::int64_t service_pid;
  std::uint64_t service_start;
  char kernel[32];
  char backend[16];
  ring_config requests;
  ring_config replies;
  std::uint32_t max_batch;
  std::uint32_t liveness_interval_us;
  rule rules[max_rules];
  // -- service line
  alignas(128) std::uint64_t generation;  // bumped before each worker start
  std::uint32_t inject_seq;               // a new value: inject_rule is a new rule (sim workers)
  std::uint32_t inject_pad;
  rule inject_rule;
  // -- worker line
  alignas(128) std::int64_t worker_pid;
  std::uint64_t worker_generation;  // the generation the worker started in
  std::uint64_t liveness;           // bumped every liveness interval while the process lives
  std::uint64_t faults_fired;       // sim workers: faults their injector fired
};

/// Byte offsets of a segment's parts (a pure function of the two ring configs).
struct segment_layout {
  std::uint64_t control = 0, kernel_bell = 0, reply_bell = 0, requests = 0, replies = 0, total = 0;
  static segment_layout of(const ring_config& requests, const ring_config& replies);
};

struct kernel_host_options {
  /// The `ringflow` executable to start as `PROGRAM kernel-host --segment NAME`; "" = this
  /// process's own executable (/proc/self/exe), right when the service is the ringflow program.
  std::string program;
  std::string backend = "cpu";  // the worker's backend: cpu | sim (cuda | hip: not built yet)
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
};

/// The worker processes of one placement (e.g. a topology node), seen by the fault ladder as one
/// device ("host:<node>") with one circuit breaker.
class kernel_host_device final : public device, public std::enable_shared_from_this<kernel_host_device> {
 public:
  /// Throws std::invalid_argument for bad options (unknown backend, a sim rule for a cpu worker).
  static std::shared_ptr<kernel_host_device> make(std::string id, kernel_host_options opts);
  ~kernel_host_device() override;

  const std::string& id() const noexcept override { return id_; }
  const char* backend() const noexcept override { return "kernel-host"; }
  /// Always ok: every new incarnation is a new worker process (a clean context).
  reinit_outcome reinitialize(std::string& detail) override;

  /// Incarnations of catalog kernel `kernel` in worker processes (std::invalid_argument if the
  /// catalog has no such kernel). The factory throws std::runtime_error when a worker cannot be
  /// started (no program, segment creation failed, the worker exited or timed out during start).
  incarnation_factory factory(const std::string& kernel, cpu_incarnation_options cpu = {});
  template <ring_kernel K>
  incarnation_factory factory(cpu_incarnation_options cpu = {}) {
    return factory(K::name, cpu);
  }

  /// Sends `sig` to every live worker; returns how many were signalled.
  std::size_t signal_workers(int sig);
  /// Sim workers: injects `rule` into every live worker's injector (at_message counts from the
  /// worker's next request). Returns how many workers were told.
  std::size_t inject(const sim::fault_rule& rule);
  std::vector<pid_t> worker_pids() const;
  /// Standby workers waiting to take over (kernel_host_options::standby).
  std::vector<pid_t> standby_pids() const;
  /// Worker processes started (each incarnation start and restart).
  std::uint64_t worker_starts() const noexcept { return starts_.load(std::memory_order_relaxed); }
  /// Workers started to replace one that ended without a clean stop (crash, kill, heartbeat loss,
  /// a kernel fault, a check that failed).
  std::uint64_t worker_restarts() const noexcept { return restarts_.load(std::memory_order_relaxed); }
  /// Workers that ended without a clean stop.
  std::uint64_t worker_failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
  /// Faults fired by the workers' injectors (sim), as far as they reported them.
  std::uint64_t faults_fired() const;
  const kernel_host_options& options() const noexcept { return opts_; }

 private:
  friend class host_incarnation;
  kernel_host_device(std::string id, kernel_host_options opts);
  void enlist(class host_incarnation* h);
  void discharge(class host_incarnation* h);
  void worker_ended(bool clean, std::uint64_t fired);
  void worker_started();

  std::string id_;
  kernel_host_options opts_;
  std::atomic<std::uint64_t> starts_{0}, restarts_{0}, failures_{0}, owed_replacements_{0};
  std::atomic<std::uint64_t> fired_done_{0};
  std::atomic<std::uint64_t> reinits_{0};
  mutable std::mutex mu_;
  std::vector<class host_incarnation*> live_;  // (mu_)
};

/// Removes segments named "/<prefix>.<pid>.<start>..." whose service process is gone (or whose pid
/// now belongs to another process); returns their names. Segments of live services are kept.
std::vector<std::string> reclaim_stale_segments(const std::string& prefix = "ringflow");
/// The segments of this prefix that exist now (for tests and operators).
std::vector<std::string> list_segments(const std::string& prefix = "ringflow");

/// The worker: attaches to `segment`, runs its kernel until it stops or faults, or the service
/// dies. `standby`: first wait (blocked on file descriptor 3, a pipe only the service can write)
/// until the service activates this process — a byte — or lets it go — end of file — then attach. Returns the process exit code: 0 stopped,
/// 5 the kernel faulted, 3 a bad segment (`error` says why), 4 the kernel could not start, 6 the
/// service went away.
int run_kernel_host(const std::string& segment, std::string& error, bool standby = false);

}  // namespace ringflow::ops

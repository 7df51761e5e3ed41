// ringflow/cpu/kernel_pool.hpp — CPU kernel threads that host many ring actors each (the CPU
// backend's counterpart of the GPU's persistent kernel serving many rings).
//
// Contract
//   * A kernel_pool runs `threads` worker threads (`rf-kp-<i>`; default: one per allowed CPU) and
//     a monitor thread (`rf-kp-mon`). attach() binds a ring (a channel: request ring + response
//     ring + kernel) to the pool and returns its pooled_ring; the ring is served from then on, by
//     one worker at a time — its home, chosen as the worker with the fewest rings.
//   * Work finds a worker through a ready queue, not a scan: a producer's notify() marks the ring
//     pending and, when it was not pending already, queues it at its home worker and rings that
//     worker's doorbell. A worker serves a queued ring for at most `max_batch` requests, then
//     queues it again at the back if it still has requests, so a busy ring cannot starve the other
//     rings of its thread. An idle ring costs its worker nothing (10,000 idle rings: no pass over
//     them). An idle worker waits on the pool's wait policy (spin / yield / park, wait_policy.hpp).
//   * Each ring has its own control block (state, epoch, heartbeat, progress, fault): the watchdog
//     and the fault ladder see one ring actor, not its thread. The heartbeat moves whenever the ring
//     is served (so: while it has requests), as with a kernel thread of its own.
//   * Stop per ring: request_stop() raises the ring's stop flag; its worker drains what is in the
//     ring (at most its capacity, without blocking the worker's other rings), publishes, and moves
//     the ring to `stopped` — or `faulted` (reply_stuck) when the response ring stays full past the
//     timeout. restart() re-attaches a finished ring (new epoch), as cpu_kernel::start() does.
//   * A handler that throws: an error reply (host_serve), as on a kernel thread of its own. A
//     handler that does not return (a hang): the monitor sees its worker in one batch for longer
//     than `stuck_after`, retires that worker and moves every other ring homed there to a new
//     worker, so the neighbours keep being served; the hung ring's heartbeat stops and the
//     watchdog handles it as any hung kernel (abandon; the fault ladder's restart or reroute). The
//     retired thread ends when the handler returns (its ring then follows the others), or never: a
//     thread cannot be killed in-process, so it is counted (pool_stats::stuck) and left; a handler
//     that may crash the process belongs in a kernel host (host: process).
//   * Rebalancing: every `rebalance_every` the monitor compares the workers' busy time; when one
//     is busy over `hot` (70 %) of the window and another under `cold` (30 %), one active ring — not the busiest one
//     — moves from the hot worker to the cold one. A move happens between two batches (never while
//     the ring is served), and a ring is never served by two workers at once.
//   * A ring that must own its thread (pinned with `cpus:`, `wait: spin`, another wait policy than
//     the pool's) does not use the pool: cpu_incarnation gives it a cpu_kernel of its own.
// Thread-safety: attach(), stats() and every pooled_ring member from any thread; notify() is the
// producer's (lock-free when the ring is already pending). ~kernel_pool: after every ring stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::cpu {

struct pool_config {
  /// Worker threads; 0 = one per allowed CPU (allowed_cpus()).
  std::size_t threads = 0;
  /// The workers' idle ladder (adaptive by default: spins only within the process's spin budget).
  wait_policy wait{};
  std::uint32_t max_batch = 32;  // requests served per ring per turn
  /// A batch that runs longer: its worker is retired and its other rings move (see the contract).
  /// Keep it below the fault ladder's hang_timeout (1 s by default).
  std::chrono::milliseconds stuck_after{50};
  /// How often the monitor looks for stuck workers, and the rebalancing window.
  std::chrono::milliseconds monitor_every{20};
  std::chrono::milliseconds rebalance_every{200};
  /// A move needs a worker busy over `hot` of the window and one busy under `cold` (fractions).
  double hot = 0.7;
  double cold = 0.3;
};

struct pool_stats {
  std::size_t workers = 0;                    // workers rings are assigned to (== threads of the config)
  std::size_t threads = 0;                    // worker threads alive now (workers + retired ones still in a handler)
  std::size_t rings = 0;                      // rings attached (running or not yet stopped)
  std::uint64_t moves = 0;                    // rings moved by rebalancing
  std::uint64_t stuck = 0;                    // workers retired because one batch ran past stuck_after
  std::uint64_t rescued = 0;                  // rings moved off a retired worker
  std::vector<std::size_t> rings_per_worker;  // by worker, live workers only
};

class pooled_ring;
namespace pool_detail {
struct pool_state;
struct worker;
}  // namespace pool_detail

class kernel_pool {
 public:
  explicit kernel_pool(pool_config cfg = {});
  ~kernel_pool();
  kernel_pool(const kernel_pool&) = delete;
  kernel_pool& operator=(const kernel_pool&) = delete;

  /// Binds a new ring served by kernel `k` (throws std::invalid_argument for a bad binding or ring
  /// configuration). `completion_bell` (may be null) is rung after the ring's replies are
  /// published, as kernel_config::completion_bell. The ring runs (epoch 1) when this returns.
  std::shared_ptr<pooled_ring> attach(const kernel_binding& k, const ring_options& opts, doorbell* completion_bell);

  [[nodiscard]] pool_stats stats() const;
  [[nodiscard]] const pool_config& config() const noexcept;

 private:
  std::shared_ptr<pool_detail::pool_state> state_;  // shared with its threads: a stuck one outlives the pool
};

/// One ring in a pool. Owned by its incarnation; the pool's queues hold it while it is queued.
class pooled_ring : public std::enable_shared_from_this<pooled_ring> {
 public:
  pooled_ring(const pooled_ring&) = delete;
  pooled_ring& operator=(const pooled_ring&) = delete;
  ~pooled_ring();

  channel& chan() noexcept { return chan_; }
  control_block& control() noexcept { return control_; }
  /// Doorbell after pushing requests (or raising the stop flag).
  void notify() noexcept;
  /// Raises the stop flag: the ring drains (within `timeout`) and stops; returns at once.
  void request_stop(std::chrono::milliseconds timeout) noexcept;
  /// request_stop(), then waits until the ring is finished; true if it stopped cleanly. A drain
  /// that does not finish by the timeout faults the ring (reply_stuck) at its next turn, so this
  /// waits as long as the ring's worker makes progress; it gives up (false, not finished) only
  /// when the ring is inside a handler that has run for longer than the pool's stuck_after.
  bool stop(std::chrono::milliseconds timeout);
  /// True once the ring stopped or faulted (and its worker no longer touches it).
  [[nodiscard]] bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  /// A finished ring runs again (epoch + 1) at its rings' positions. False when not finished.
  bool restart();
  /// The worker it is homed at now (for tests and stats): its index, or -1 once detached.
  [[nodiscard]] int home_index() const noexcept;
  /// Forgets the completion bell (its owner goes away while the ring may still be served, e.g.
  /// abandoned in a hung handler); returns once no worker is ringing it.
  void release_completion_bell() noexcept;

 private:
  friend struct pool_detail::pool_state;
  friend class kernel_pool;
  pooled_ring(std::shared_ptr<pool_detail::pool_state> pool, const kernel_binding& k, const ring_options& opts,
              doorbell* completion_bell);

  std::shared_ptr<pool_detail::pool_state> pool_;
  channel chan_;
  control_block control_{};
  // The completion bell, leased for each ring (ring_completion_bell()): an abandoned ring whose
  // handler returns after its owner is gone must not ring a bell that died with the owner.
  std::atomic<doorbell*> completion_bell_{nullptr};
  std::atomic<std::uint32_t> bell_users_{0};
  std::uint64_t epoch_ = 0;
  // The ready-queue protocol (kernel_pool.cpp): pending = queued or being served.
  std::atomic<bool> pending_{false};
  std::atomic<bool> finished_{true};
  std::atomic<pool_detail::worker*> home_{nullptr};  // changed only under the old home's lock
  // Touched only by the worker serving the ring (the queue hand-over orders them).
  bool draining_ = false;
  std::uint64_t drain_budget_ = 0;
  std::atomic<std::uint64_t> stop_deadline_ns_{0};  // the earliest stop deadline asked for (steady ns)
  std::uint64_t processed_seen_ = 0;                // the monitor's (rebalancing)
};

}  // namespace ringflow::cpu

// ringflow/actors/completion_poller.hpp — the host thread that routes replies back to callers.
//
// Contract
//   * One poller thread per runtime serves every ring core registered with it: each pass it
//     consumes the replies of every attached incarnation (completing their requests), retries
//     publishing for cores whose request ring was full, and every `sweep_interval` completes
//     requests past their deadline with errc::timeout (so a deadline is honoured within about one
//     interval even when the kernel hangs).
//   * Idle ladder as the CPU kernels: spin, yield, then park on `bell()` — which every CPU
//     incarnation rings after publishing replies — with a timeout bounded by the next sweep while
//     requests are in flight. Nothing spins forever.
//   * remove() returns only once the thread no longer touches the core.
// Thread-safety: add/remove from any thread (not from the poller thread itself, i.e. not from a
// completion callback); bell() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/doorbell.hpp"

namespace ringflow {

class ring_core;

struct poller_config {
  wait_policy wait{};
  /// CPUs the poller thread (`rf-poll`) is pinned to (empty: not pinned); a CPU outside the
  /// allowed set makes the constructor throw std::invalid_argument.
  std::vector<int> cpus;
  std::chrono::microseconds sweep_interval{1000};
};

struct poller_stats {
  std::uint64_t passes = 0;
  std::uint64_t parks = 0;
  std::uint64_t replies = 0;
};

class completion_poller {
 public:
  explicit completion_poller(poller_config cfg = {});
  ~completion_poller();  // stops and joins the thread
  completion_poller(const completion_poller&) = delete;
  completion_poller& operator=(const completion_poller&) = delete;

  void add(ring_core* core);
  void remove(ring_core* core);
  doorbell& bell() noexcept { return bell_; }
  poller_stats stats() const noexcept;
  bool on_poller_thread() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void run() noexcept;
  void refresh(std::vector<ring_core*>& local);

  poller_config cfg_;
  doorbell bell_;
  std::mutex mu_;
  std::vector<ring_core*> cores_;          // guarded by mu_
  std::atomic<std::uint64_t> version_{0};  // bumped on every change of cores_
  std::atomic<std::uint64_t> seen_version_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> passes_{0}, parks_{0}, replies_{0};
  std::thread thread_;
};

}  // namespace ringflow

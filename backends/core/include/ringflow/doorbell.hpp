// ringflow/doorbell.hpp — an eventcount over a futex: lets a thread park until another rings. The wake
// primitive every backend shares (backends/core): CPU kernels park on one, the completion poller parks
// on one for many kernels, the GPU monitor rings them for the device, a kernel host's bells live in
// its shared segment (process_shared).
//
// Contract (the classic eventcount; no lost wake-ups):
//   waiter:   auto t = bell.prepare_wait();  if (work is available) bell.cancel_wait(); else bell.wait(t);
//   notifier: publish the work (e.g. a ring slot's release store), then bell.ring();
// prepare_wait() announces the waiter and issues a seq_cst fence; ring() issues a seq_cst fence
// before it reads the waiter count. By the fence rules, either the waiter's re-check sees the
// work, or the notifier sees the waiter and bumps the epoch — and wait() returns at once when the
// epoch moved since prepare_wait(). ring() with no waiter costs one fence and one load.
//
// Thread-safety: any number of waiters and notifiers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ringflow {

class doorbell {
 public:
  using token = std::uint32_t;

  doorbell() = default;
  /// `process_shared`: the bell lives in memory mapped by several processes (a kernel host's
  /// shared segment): it parks and wakes with shared futex operations. Such a bell may be
  /// constructed in place in the mapping (it has no other state).
  explicit doorbell(bool process_shared) noexcept : shared_(process_shared) {}

  [[nodiscard]] token prepare_wait() noexcept {
    const token t = epoch_.load(std::memory_order_acquire);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in ring()
    return t;
  }
  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

  /// Parks until the epoch differs from `t` (a ring happened) or `timeout` passes (zero = no
  /// timeout). Returns true if woken by a ring, false on timeout. Consumes the prepare_wait().
  bool wait(token t, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero()) noexcept;

  void ring() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in prepare_wait()
    if (waiters_.load(std::memory_order_relaxed) != 0) wake();
  }

  /// Number of rings that found a waiter (and so made a futex wake call).
  [[nodiscard]] std::uint64_t wakes() const noexcept { return wakes_.load(std::memory_order_relaxed); }

 private:
  void wake() noexcept;

  // epoch_: bumped (release) by a ring that found a waiter; read (acquire) by waiters, and the futex
  //         word they park on. waiters_: announced (seq_cst RMW + fence) by prepare_wait(), read
  //         relaxed by ring() after its fence — the fence pair is what orders the two. In a kernel
  //         host's segment both processes use these words: a faulty peer can at worst cause
  //         spurious or missed wake-ups of its own rings, and every waiter parks with a timeout or
  //         re-checks its ring, so nothing is lost (see backends/process/segment.hpp).
  alignas(64) std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint64_t> wakes_{0};
  bool shared_ = false;
};

}  // namespace ringflow

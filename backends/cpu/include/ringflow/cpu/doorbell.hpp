// ringflow/cpu/doorbell.hpp — an eventcount over a futex: lets a thread park until another rings.
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

namespace ringflow::cpu {

class doorbell {
 public:
  using token = std::uint32_t;

  doorbell() = default;
  /// `process_shared`: the bell lives in memory mapped by several processes (a kernel host's
  /// shared segment): it parks and wakes with shared futex operations. Such a bell may be
  /// constructed in place in the mapping (it has no other state).
  explicit doorbell(bool process_shared) noexcept : shared_(process_shared) {}

  token prepare_wait() noexcept {
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
  std::uint64_t wakes() const noexcept { return wakes_.load(std::memory_order_relaxed); }

 private:
  void wake() noexcept;

  alignas(64) std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint64_t> wakes_{0};
  bool shared_ = false;
};

}  // namespace ringflow::cpu

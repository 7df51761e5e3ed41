// Futex-backed parking for ringflow::doorbell (Linux).
#include "ringflow/doorbell.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace ringflow {
namespace {
long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val, const timespec* ts) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, ts, nullptr, 0);
}
}  // namespace

bool doorbell::wait(token t, std::chrono::nanoseconds timeout) noexcept {
  bool rung = true;
  if (epoch_.load(std::memory_order_acquire) == t) {
    timespec ts{};
    const timespec* tsp = nullptr;
    if (timeout.count() > 0) {
      ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
      tsp = &ts;
    }
    // FUTEX_WAIT returns at once if the epoch already moved (EAGAIN), so a ring between the
    // load above and the syscall is not lost.
    futex(&epoch_, shared_ ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, t, tsp);
    rung = epoch_.load(std::memory_order_acquire) != t;
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return rung;
}

void doorbell::wake() noexcept {
  epoch_.fetch_add(1, std::memory_order_release);
  wakes_.fetch_add(1, std::memory_order_relaxed);
  futex(&epoch_, shared_ ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

}  // namespace ringflow

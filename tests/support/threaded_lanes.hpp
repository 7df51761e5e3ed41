// tests/support/threaded_lanes.hpp — a warp's lanes emulated by std::threads, for the
// cooperative batch worker (persistent.hpp: cooperative_worker) on the host: every lane is a
// thread, ballots and syncs are barriers, the leader hands each batch to the others through
// shared memory. The same protocol as a CUDA warp (persistent_kernel.cuh: warp_lanes), with real
// concurrency between lanes, so ThreadSanitizer sees the lanes' reads and writes of ring slots and
// of staging. Slow (a barrier per phase): for tests, not for speed.
#pragma once

#include <atomic>
#include <barrier>
#include <cstdint>
#include <thread>
#include <vector>

#include "ringflow/persistent.hpp"

namespace ringflow::test {

/// What the lanes of one worker share.
struct warp_shared {
  explicit warp_shared(std::uint32_t width) : lanes(width), bar(static_cast<std::ptrdiff_t>(width)) {}
  std::uint32_t lanes;
  std::barrier<> bar;
  std::atomic<std::uint32_t> votes[2] = {0, 0};
  batch_job job;  // written by the leader before a barrier, read by every lane after it
  // What happened (the test's evidence that the other lanes took part): batches sent, and the
  // parts lanes other than the leader ran (each() calls that reached f).
  std::atomic<std::uint64_t> batches{0}, follower_parts{0};
};

/// One lane (one thread) of a worker: a Lanes type for cooperative_worker().
class threaded_lanes {
 public:
  threaded_lanes(warp_shared& s, std::uint32_t lane) : s_(&s), lane_(lane), width(s.lanes) {}

  template <class T>
  struct local {
    T v;
    T& operator[](std::uint32_t) { return v; }  // the lane's own
  };
  template <class F>
  void each(std::uint32_t n, F&& f) {
    if (lane_ < n) {
      if (lane_ != 0) s_->follower_parts.fetch_add(1, std::memory_order_relaxed);
      f(lane_);
    }
  }
  template <class F>
  std::uint32_t ballot(std::uint32_t n, F&& pred) {
    std::atomic<std::uint32_t>& w = s_->votes[ballots_++ & 1];
    if (lane_ < n && pred(lane_)) w.fetch_or(1u << lane_, std::memory_order_relaxed);
    s_->bar.arrive_and_wait();
    const std::uint32_t m = w.load(std::memory_order_relaxed);
    s_->bar.arrive_and_wait();
    // Every lane has read this word; it is used again two ballots later, after another barrier.
    if (lane_ == 0) w.store(0, std::memory_order_relaxed);
    return m;
  }
  void sync() { s_->bar.arrive_and_wait(); }

  bool leader() const { return lane_ == 0; }
  template <class Table>
  batch_outcome run(const batch_job& job) {
    send(job);
    return detail::serve_batch<Table>(*this, job);
  }
  batch_job receive() {
    s_->bar.arrive_and_wait();
    return s_->job;
  }
  void finish() {
    batch_job quit;
    quit.quit = 1;
    send(quit);
  }

 private:
  void send(const batch_job& job) {
    if (!job.quit) s_->batches.fetch_add(1, std::memory_order_relaxed);
    s_->job = job;
    s_->bar.arrive_and_wait();
  }
  warp_shared* s_;
  std::uint32_t lane_;
  std::uint32_t ballots_ = 0;

 public:
  std::uint32_t width;
};

/// Runs worker `worker` of `a` as shared.lanes threaded lanes; returns when the worker loop did.
template <class Table>
void run_threaded_worker(const persistent_args& a, std::uint32_t worker, std::uint32_t workers, warp_shared& shared) {
  const std::uint32_t width = shared.lanes;
  std::vector<std::thread> lanes;
  for (std::uint32_t l = 1; l < width; ++l)
    lanes.emplace_back([&, l] {
      threaded_lanes me(shared, l);
      cooperative_worker<Table>(a, worker, workers, me);
    });
  threaded_lanes me(shared, 0);
  cooperative_worker<Table>(a, worker, workers, me);
  for (auto& t : lanes) t.join();
}

}  // namespace ringflow::test

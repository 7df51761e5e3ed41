// The completion poller thread: see ringflow/actors/completion_poller.hpp.
#include "ringflow/actors/completion_poller.hpp"

#include <sched.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/portable.hpp"

namespace ringflow {

completion_poller::completion_poller(poller_config cfg) : cfg_(std::move(cfg)) {
  if (std::string why = check_cpu_list(cfg_.cpus); !why.empty())
    throw std::invalid_argument("completion poller: cpus: " + why);
  thread_ = std::thread([this] { run(); });
  name_thread(thread_.native_handle(), "rf-poll");
}

completion_poller::~completion_poller() {
  stop_.store(true, std::memory_order_seq_cst);
  bell_.ring();
  thread_.join();
}

void completion_poller::add(ring_core* core) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cores_.push_back(core);
    version_.fetch_add(1, std::memory_order_release);
  }
  bell_.ring();
}

void completion_poller::remove(ring_core* core) {
  std::uint64_t v = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cores_.erase(std::remove(cores_.begin(), cores_.end(), core), cores_.end());
    v = version_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  if (on_poller_thread()) return;  // the running pass holds no other reference after it returns
  // Wait until the thread has started a pass with the new list (it no longer uses `core`).
  while (seen_version_.load(std::memory_order_acquire) < v && !stop_.load(std::memory_order_acquire)) {
    bell_.ring();
    sched_yield();
  }
}

poller_stats completion_poller::stats() const noexcept {
  return {passes_.load(std::memory_order_relaxed), parks_.load(std::memory_order_relaxed),
          replies_.load(std::memory_order_relaxed)};
}

void completion_poller::refresh(std::vector<ring_core*>& local) {
  const std::uint64_t v = version_.load(std::memory_order_acquire);
  if (v == seen_version_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(mu_);
  local = cores_;
  seen_version_.store(version_.load(std::memory_order_relaxed), std::memory_order_release);
}

void completion_poller::run() noexcept {
  name_this_thread("rf-poll");
  (void)pin_this_thread(cfg_.cpus);  // checked by the constructor
  std::vector<ring_core*> cores;
  std::uint32_t idle = 0;
  bool woke_idle = false;  // the pass after a park: if it finds nothing, park again at once
  std::uint64_t next_sweep = 0;
  const auto sweep_ns = static_cast<std::uint64_t>(cfg_.sweep_interval.count()) * 1000;
  // One pass: replies, pending publishes, and (when due) the deadline sweep. Returns the work done.
  auto pass = [&](std::uint64_t& in_flight_total) {
    std::uint32_t work = 0;
    in_flight_total = 0;
    for (ring_core* c : cores) {
      work += c->poll_replies();
      if (c->has_staged()) c->publish_pending();
      in_flight_total += c->in_flight();
    }
    return work;
  };
  while (!stop_.load(std::memory_order_acquire)) {
    refresh(cores);
    std::uint64_t in_flight = 0;
    const std::uint32_t work = pass(in_flight);
    passes_.store(passes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (work) replies_.store(replies_.load(std::memory_order_relaxed) + work, std::memory_order_relaxed);
    if (in_flight) {
      const std::uint64_t now = steady_now();
      if (now >= next_sweep) {
        for (ring_core* c : cores) c->sweep_deadlines(now);
        next_sweep = now + sweep_ns;
      }
    }
    if (work) {
      idle = 0;
      woke_idle = false;
      continue;
    }
    // Woken (by a kernel's reply bell) but a helping caller took the replies: park again at once
    // instead of spinning through the ladder for nothing.
    const wait_policy& w = cfg_.wait;
    if (woke_idle) idle = w.park_threshold();
    woke_idle = false;
    if (!idle_step(w, idle)) continue;
    const doorbell::token t = bell_.prepare_wait();
    std::uint64_t in_flight_now = 0;
    if (stop_.load(std::memory_order_acquire) ||
        version_.load(std::memory_order_acquire) != seen_version_.load(std::memory_order_relaxed) ||
        pass(in_flight_now) != 0) {
      bell_.cancel_wait();
      idle = 0;
      continue;
    }
    // While requests are in flight, wake for the next deadline sweep; otherwise only on a ring.
    std::chrono::nanoseconds timeout{0};
    if (in_flight_now) {
      const std::uint64_t now = steady_now();
      timeout = std::chrono::nanoseconds(next_sweep > now ? next_sweep - now : 1000);
    }
    parks_.store(parks_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // Woken by a ring: spin again (replies are coming). Woken by the timeout: sweep, then park
    // again at once instead of spinning through the ladder every interval.
    idle = bell_.wait(t, timeout) ? 0 : w.park_threshold();
    woke_idle = true;
  }
  seen_version_.store(~0ull, std::memory_order_release);
}

}  // namespace ringflow

// ringflow/actors/ring_client.hpp — the embedding API: requests to a ring actor from any thread.
//
// Contract
//   * A ring_client enters the ring actor's own staging queue with a completion slot: the same
//     correlation ids, outbox, deadlines, window and replay as requests that come through the
//     actor's mailbox — and no CAF mailbox or scoped_actor on the way (scoped_actor costs several
//     microseconds per request/receive).
//   * Each client is one caller: it has its own in-flight window (`client_options::window`, at most
//     the ring actor's per-caller window). Over it, or over the actor's window, a request fails at
//     once with errc::overloaded: nothing waits, nothing is dropped silently.
//   * Deadlines (docs/EMBEDDING.md "Deadlines"): a request carries an absolute steady-clock
//     deadline (fb_msg::deadline_ns, or `timeout` from now in call()); one without gets the
//     client's `default_timeout`, and when that is 0 (the default) the ring actor's
//     (ring_actor_options::default_timeout, 10 s). A deadline already past is answered
//     errc::timeout at submit. Every request is answered exactly once: reply, typed error,
//     errc::timeout, or errc::stopped.
//   * call() on a thread that is running completions (inside a submit() callback, a trace sink, on
//     the completion poller) returns errc::would_deadlock at once: it would wait for a reply only
//     that thread can deliver. Use submit() there. (A std::future from submit() waited on inside
//     a callback cannot be detected: do not.)
//   * call() blocks the calling thread until the answer. While it waits it *helps*: it consumes
//     the ring actor's replies itself (taking the reply side from the poller for a moment), so the
//     reply needs no hand-off through the poller thread; after `help_spins` + `help_yields` polls
//     it parks (futex) and the poller completes it. submit() returns a std::future;
//     submit(msg, callback) runs the callback exactly once — inline for an immediate error,
//     otherwise on the completion poller's thread or on a thread helping in call() on the same
//     ring actor (keep callbacks short; do not block in them).
// Thread-safety: a client may be shared by threads (its window is then shared); cheap to create
// (one per thread is the usual pattern). Keep the runtime alive while clients are in use.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow {

struct client_options {
  std::uint32_t window = 64;  // this client's in-flight limit
  /// Deadline of requests that carry none; 0 = the ring actor's default_timeout.
  std::chrono::milliseconds default_timeout{0};
  /// How call() waits (wait_policy.hpp): adaptive (default) helps — polls for the reply itself —
  /// only while it holds a slot of the process's spin budget, else parks at once; park parks at
  /// once; spin polls until the answer comes.
  wait_mode wait = wait_mode::adaptive;
  std::uint32_t help_spins = 2000;  // adaptive: polls for replies itself this many times (PAUSE between)...
  std::uint32_t help_yields = 64;   // ...then this many times with sched_yield, then parks
};

class ring_client {
 public:
  ring_client() = default;
  explicit ring_client(std::shared_ptr<ring_core> core, client_options opts = {});

  bool valid() const noexcept { return core_ != nullptr; }
  ring_core& core() const noexcept { return *core_; }
  std::uint32_t in_flight() const noexcept { return credit_ ? credit_->in_flight.load(std::memory_order_relaxed) : 0; }

  /// Sends `request` and waits for its answer. `timeout` > 0 sets the deadline that far from now
  /// (replacing the request's own); 0 keeps the request's deadline or the default.
  call_result call(fb_msg request, std::chrono::nanoseconds timeout = {});
  /// Sends `request`; the future holds the answer.
  std::future<call_result> submit(fb_msg request);
  /// Sends `request`; `on_done` runs exactly once with the answer.
  void submit(fb_msg request, std::function<void(call_result&&)> on_done);
  /// Completes whatever replies are ready, on this thread (callbacks of this ring actor's callers
  /// run here). A thread that pipelines submit() calls and polls between them avoids the
  /// poller's cross-thread wake-up per reply. Returns how many replies it consumed.
  std::uint32_t poll() { return core_->poll_replies(); }

 private:
  errc enter(fb_msg& request, std::function<void(call_result&&)>& cb, std::string& detail);

  std::shared_ptr<ring_core> core_;
  std::shared_ptr<caller_credit> credit_;
  client_options opts_;
};

}  // namespace ringflow

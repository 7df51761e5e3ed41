// The embedding API: see ringflow/actors/ring_client.hpp.
#include "ringflow/actors/ring_client.hpp"

#include <sched.h>

#include <atomic>
#include <stdexcept>

#include "ringflow/portable.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow {

ring_client::ring_client(std::shared_ptr<ring_core> core, client_options opts)
    : core_(std::move(core)), credit_(std::make_shared<caller_credit>()), opts_(opts) {
  if (!core_) throw std::invalid_argument("ring_client: no ring actor");
  if (opts_.window == 0) throw std::invalid_argument("ring_client: window must be >= 1");
}

// On an error the callback is left in `cb` (the core does not take a target it refuses).
errc ring_client::enter(fb_msg& request, std::function<void(call_result&&)>& cb, std::string& detail) {
  if (credit_->in_flight.load(std::memory_order_relaxed) >= opts_.window) {
    detail = "client has " + std::to_string(opts_.window) + " requests in flight (its window)";
    return errc::overloaded;
  }
  if (request.deadline_ns == 0 && opts_.default_timeout.count() > 0) request.with_timeout(opts_.default_timeout);
  completion_target target;
  target.callback = std::move(cb);
  const errc e = core_->submit(std::move(request), std::move(target), credit_, detail);
  if (e != errc::ok) cb = std::move(target.callback);
  return e;
}

call_result ring_client::call(fb_msg request, std::chrono::nanoseconds timeout) {
  if (ring_core::runs_completions())
    return call_result{errc::would_deadlock,
                       {},
                       "call() on a thread that is running completions (a submit() callback or the completion "
                       "poller) would wait for a reply only this thread can deliver: use submit() here"};
  if (timeout.count() > 0) request.with_timeout(timeout);
  // The completion slot is shared with the callback (run once, by the poller or inline): the
  // notifier still touches it after the store that releases us, so it must not live on our stack.
  struct slot {
    std::atomic<std::uint32_t> done{0};
    call_result result;
  };
  auto s = std::make_shared<slot>();
  std::string detail;
  std::function<void(call_result &&)> cb = [s](call_result&& r) {
    s->result = std::move(r);
    s->done.store(1, std::memory_order_release);
    s->done.notify_one();
  };
  const errc e = enter(request, cb, detail);
  if (e != errc::ok) return call_result{e, {}, std::move(detail)};
  // Help while waiting: consume replies ourselves (the poller's job, which it skips while we hold
  // the reply side), so a reply reaches this thread without a hand-off through the poller thread.
  // The wait policy says for how long (adaptive: while this thread holds a spin slot); then park
  // until the poller (or another helper) completes us.
  wait_policy w = wait_policy::of(opts_.wait);
  w.spin_iterations = opts_.help_spins;
  w.yield_iterations = opts_.help_yields;
  std::uint32_t idle = 0;
  while (!s->done.load(std::memory_order_acquire)) {
    if (core_->poll_replies() != 0) continue;
    if (idle_step(w, idle)) break;
  }
  release_spin_slot();
  while (!s->done.load(std::memory_order_acquire)) s->done.wait(0, std::memory_order_acquire);
  return std::move(s->result);
}

std::future<call_result> ring_client::submit(fb_msg request) {
  auto promise = std::make_shared<std::promise<call_result>>();
  std::future<call_result> f = promise->get_future();
  std::string detail;
  std::function<void(call_result &&)> cb = [promise](call_result&& r) { promise->set_value(std::move(r)); };
  const errc e = enter(request, cb, detail);
  if (e != errc::ok) promise->set_value(call_result{e, {}, std::move(detail)});
  return f;
}

void ring_client::submit(fb_msg request, std::function<void(call_result&&)> on_done) {
  std::string detail;
  const errc e = enter(request, on_done, detail);
  if (e != errc::ok) on_done(call_result{e, {}, std::move(detail)});
}

}  // namespace ringflow

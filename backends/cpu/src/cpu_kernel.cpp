// The CPU backend's kernel thread: see ringflow/cpu/cpu_kernel.hpp for the contract.
#include "ringflow/cpu/cpu_kernel.hpp"

#include <sched.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace ringflow::cpu {

namespace {
const kernel_binding& checked(const kernel_binding& k) {
  if (!k.usable())
    throw std::invalid_argument(std::string("cpu kernel '") + (k.name ? k.name : "") +
                                "': a kernel binding without name or serve function");
  return k;
}
void* new_state(const kernel_binding& k) {
  if (!k.serve_state) return nullptr;
  const std::size_t align = alignof(std::max_align_t) > 64 ? alignof(std::max_align_t) : 64;
  void* p = std::aligned_alloc(align, (k.state_bytes + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  k.init_state(p);
  return p;
}
}  // namespace

void channel::free_state::operator()(void* p) const noexcept { std::free(p); }

channel::channel(const kernel_binding& k, const ring_options& opts)
    : kernel_name_(checked(k).name),
      request_type_(k.request_type),
      reply_type_(k.reply_type),
      serve_(k.serve),
      serve_state_(k.serve_state),
      state_bytes_(k.serve_state ? k.state_bytes : 0),
      state_(new_state(k)),
      requests_(opts.request_memory ? ring_storage(opts.requests, opts.request_memory, !opts.attach)
                                    : ring_storage(opts.requests)),
      replies_(opts.reply_memory ? ring_storage(opts.replies, opts.reply_memory, !opts.attach)
                                 : ring_storage(opts.replies)) {}

cpu_kernel::cpu_kernel(kernel_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.max_batch == 0) throw std::invalid_argument("kernel_config: max_batch must be >= 1");
  if (cfg_.control) {
    control_ = cfg_.control;
  } else {
    own_control_ = std::make_unique<control_block>();
    control_ = own_control_.get();
  }
  if (cfg_.bell) bell_ = cfg_.bell;
  control_->reset(0);
  control_->set_state(kernel_state::idle);
}

cpu_kernel::~cpu_kernel() {
  if (running()) (void)stop();  // nobody to tell how it ended
}

channel& cpu_kernel::add_ring(const kernel_binding& k, const ring_options& opts) {
  if (!k.usable())
    throw std::invalid_argument("cpu_kernel '" + cfg_.name + "': a kernel binding without name or serve");
  return add_channel(std::make_unique<channel>(k, opts));
}

channel& cpu_kernel::add_channel(std::unique_ptr<channel> ch) {
  if (running()) throw std::logic_error("cpu_kernel '" + cfg_.name + "': add_ring after start()");
  channels_.push_back(std::move(ch));
  return *channels_.back();
}

void cpu_kernel::start() {
  if (running()) throw std::logic_error("cpu_kernel '" + cfg_.name + "': already running");
  if (std::string why = check_cpu_list(cfg_.cpus); !why.empty())
    throw std::invalid_argument("cpu_kernel '" + cfg_.name + "': cpus: " + why);
  control_->reset(++epoch_);
  for (auto& ch : channels_) {
    // Resume at the rings' shared positions (exact: the previous incarnation published them
    // before it stopped, and thread creation orders those writes before the new thread).
    ch->kernel_requests_ = ring_consumer(ch->requests_.region());
    ch->kernel_replies_ = ring_producer(ch->replies_.region(), ch->replies_.producer_scratch());
  }
  thread_ = std::thread([this] { run(); });
  // Named here, so the name is there when start() returns (the thread also names itself).
  name_thread(thread_.native_handle(), cfg_.thread_name.empty() ? "rf-k-" + cfg_.name : cfg_.thread_name);
}

void cpu_kernel::request_stop(std::chrono::milliseconds timeout) noexcept {
  // Relaxed: request_stop()'s release orders it before the kernel's read. An earlier request
  // (abandon, then stop) may have been seen already: the kernel then uses either value.
  stop_timeout_ms_.store(timeout.count(), std::memory_order_relaxed);
  control_->request_stop();
  bell_->ring();
}

stop_outcome cpu_kernel::stop(std::chrono::milliseconds timeout) {
  if (!running()) return stop_outcome::already_stopped;
  request_stop(timeout);
  thread_.join();
  return control_->current_state() == kernel_state::faulted ? stop_outcome::faulted : stop_outcome::stopped;
}

kernel_stats cpu_kernel::stats() const noexcept {
  kernel_stats s;
  s.passes = passes_.load(std::memory_order_relaxed);
  s.idle_passes = idle_passes_.load(std::memory_order_relaxed);
  s.parks = parks_.load(std::memory_order_relaxed);
  s.wakeups = wakeups_.load(std::memory_order_relaxed);
  s.parked = parked_.load(std::memory_order_relaxed);
  return s;
}

bool cpu_kernel::any_work() noexcept {
  for (auto& ch : channels_)
    if (ch->kernel_requests_.try_peek()) return true;
  return false;
}

void cpu_kernel::ring_reply_bells(channel& ch) noexcept {
  ch.reply_bell_.ring();
  if (cfg_.completion_bell) cfg_.completion_bell->ring();
}

// After a batch: the channel's reply sink completes the callers on this thread when it can (no
// hand-off to the poller); else the completion bell wakes whoever consumes them.
bool channel::deliver_replies() noexcept {
  reply_bell_.ring();
  std::shared_ptr<reply_sink> sink;
  {
    std::lock_guard<std::mutex> lock(sink_mu_);
    sink = sink_.lock();
  }
  return !(sink && sink->take_replies());
}

void cpu_kernel::deliver_replies(channel& ch) noexcept {
  if (ch.deliver_replies() && cfg_.completion_bell) cfg_.completion_bell->ring();
}

void cpu_kernel::wake_clients() noexcept {
  for (auto& ch : channels_) ring_reply_bells(*ch);
}

// Serves everything that was in each ring when the stop flag was seen (at most one ring's
// capacity per channel, so a client that keeps pushing cannot keep the kernel alive).
bool cpu_kernel::drain(std::chrono::steady_clock::time_point deadline) noexcept {
  control_block& cb = *control_;
  for (auto& ch : channels_) {
    std::uint64_t budget = ch->requests_.config().capacity;
    serve_tally tally;
    while (budget > 0) {
      const serve_result r = ch->serve(steady_now_ns(), tally);
      if (r == serve_result::idle) break;
      if (r == serve_result::served) {
        --budget;
        continue;
      }
      // blocked: the response ring is full; the client must read replies. Wake it and wait.
      ring_reply_bells(*ch);
      if (std::chrono::steady_clock::now() > deadline) {
        cb.progressed(tally.served, tally.handler_errors, tally.rejected);
        return false;
      }
      std::this_thread::yield();
    }
    cb.progressed(tally.served, tally.handler_errors, tally.rejected);
    ch->kernel_requests_.publish();
  }
  return true;
}

void cpu_kernel::run() noexcept {
  name_this_thread(cfg_.thread_name.empty() ? "rf-k-" + cfg_.name : cfg_.thread_name);
  (void)pin_this_thread(cfg_.cpus);  // checked by start()
  control_block& cb = *control_;
  cb.set_state(kernel_state::running);
  std::uint32_t idle = 0;
  for (;;) {
    if (cb.stop_is_requested()) {
      cb.set_state(kernel_state::draining);
      const auto timeout = std::chrono::milliseconds(stop_timeout_ms_.load(std::memory_order_relaxed));
      const bool drained = drain(std::chrono::steady_clock::now() + timeout);
      if (drained) {
        cb.set_state(kernel_state::stopped);  // release: every reply above is visible first
      } else {
        cb.fault(kernel_error::reply_stuck, 0, "stop: response ring stayed full past the stop timeout");
      }
      wake_clients();
      return;
    }

    bool any = false;
    bool blocked = false;
    std::uint64_t now = 0;  // read once per pass, and only when some ring has a request
    for (auto& ch : channels_) {
      if (!ch->kernel_requests_.try_peek()) continue;
      if (now == 0) now = steady_now_ns();
      serve_tally tally;
      for (std::uint32_t i = 0; i < cfg_.max_batch; ++i) {
        const serve_result r = ch->serve(now, tally);
        if (r == serve_result::served) continue;
        blocked = blocked || r == serve_result::blocked;
        break;
      }
      if (tally.served) {
        any = true;
        cb.progressed(tally.served, tally.handler_errors, tally.rejected);
        deliver_replies(*ch);
      }
    }
    cb.beat();
    passes_.store(passes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (any) {
      idle = 0;
      continue;
    }
    idle_passes_.store(idle_passes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);

    // Idle ladder: spin, then yield, then park (wait_policy.hpp).
    if (!idle_step(cfg_.wait, idle)) continue;
    const doorbell::token t = bell_->prepare_wait();
    // Re-check after announcing the wait (no lost wake-up). A blocked kernel has work by
    // definition but cannot do it until the client reads replies: it parks with a timeout.
    if (cb.stop_is_requested() || (!blocked && any_work())) {
      bell_->cancel_wait();
      idle = 0;
      continue;
    }
    parks_.store(parks_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    parked_.store(true, std::memory_order_relaxed);
    // Blocked on a full response ring: the client's read does not ring us, so poll every 200 us.
    const bool rung = bell_->wait(t, blocked ? std::chrono::microseconds(200) : std::chrono::nanoseconds::zero());
    parked_.store(false, std::memory_order_relaxed);
    if (rung) wakeups_.store(wakeups_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    idle = 0;
  }
}

}  // namespace ringflow::cpu

// The fault-injecting decorator: see ringflow/sim/sim_incarnation.hpp.
#include "ringflow/sim/sim_incarnation.hpp"

#include <sched.h>

#include "ringflow/sim/sim_device.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::sim {

namespace {
ring_config config_of(ring_region r) { return r.config(); }
ring_storage storage_for(ring_region inner, void* memory, bool attach) {
  return memory ? ring_storage(config_of(inner), memory, !attach) : ring_storage(config_of(inner));
}
}  // namespace

sim_incarnation::sim_incarnation(std::shared_ptr<sim_device> dev, const incarnation_factory& inner,
                                 doorbell* completion_bell, const ring_placement& own)
    : dev_(std::move(dev)),
      generation_(dev_->generation()),
      pump_bell_(own.kernel_bell ? own.kernel_bell : &own_pump_bell_),
      completion_bell_(completion_bell),
      inner_(inner(pump_bell_)),
      requests_(storage_for(inner_->requests(), own.request_memory, own.attach)),
      replies_(storage_for(inner_->replies(), own.reply_memory, own.attach)),
      own_control_(own.control ? nullptr : std::make_unique<control_block>()),
      control_(own.control ? own.control : own_control_.get()) {
  control_->reset(dev_->next_epoch());
  own_requests_ = ring_consumer(requests_.region());
  own_replies_ = ring_producer(replies_.region(), replies_.producer_scratch());
  inner_requests_ = ring_producer(inner_->requests(), inner_->request_producer_scratch());
  inner_replies_ = ring_consumer(inner_->replies());
  dev_->enlist(this);
  pump_ = std::thread([this] {
    name_this_thread("rf-sim");
    run();
  });
}

sim_incarnation::~sim_incarnation() {
  abandon();
  if (pump_.joinable()) pump_.join();
  dev_->discharge(this);
  inner_.reset();  // finished or abandoned: its kernel stops (drains) and joins
}

bool sim_incarnation::finished() noexcept {
  return exited_.load(std::memory_order_acquire) && control_->finished() && inner_->finished();
}

void sim_incarnation::abandon() noexcept {
  abandoned_.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(hang_mu_);
    release_hang_ = true;
  }
  hang_cv_.notify_all();
  pump_bell_->ring();
}

bool sim_incarnation::restart() {
  if (abandoned_.load(std::memory_order_acquire) || !exited_.load(std::memory_order_acquire)) return false;
  if (dev_->lost() || dev_->poisoned()) return false;
  if (pump_.joinable()) pump_.join();
  if (!inner_->finished()) inner_->stop(std::chrono::milliseconds(stop_timeout_ms_.load(std::memory_order_relaxed)));
  if (!inner_->finished() || !inner_->restart()) return false;
  discard_ring(requests_.region());
  discard_ring(replies_.region());
  own_requests_ = ring_consumer(requests_.region());
  own_replies_ = ring_producer(replies_.region(), replies_.producer_scratch());
  inner_requests_ = ring_producer(inner_->requests(), inner_->request_producer_scratch());
  inner_replies_ = ring_consumer(inner_->replies());
  decided_pos_ = ~0ull;
  corrupt_ids_.clear();
  hung_ = dead_ = blocked_ = false;
  generation_ = dev_->generation();
  control_->reset(dev_->next_epoch());
  exited_.store(false, std::memory_order_release);
  pump_ = std::thread([this] {
    name_this_thread("rf-sim");
    run();
  });
  return true;
}

bool sim_incarnation::stop(std::chrono::milliseconds timeout) {
  if (!exited_.load(std::memory_order_acquire)) {
    stop_timeout_ms_.store(timeout.count(), std::memory_order_relaxed);
    control_->request_stop();
    pump_bell_->ring();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exited_.load(std::memory_order_acquire)) {
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) {
        // A kernel that ignores its stop flag past the timeout is a hang fault. Recorded here
        // only while the pump is parked in hang(), where it writes nothing until abandoned; a
        // pump still draining (its own deadline started a little later) records how its stop
        // ended itself (stopped, or reply_stuck) — both writing the control block was a race.
        if (parked_.load(std::memory_order_acquire)) {
          control_->fault(kernel_error::crashed, 0, "sim: kernel ignored its stop flag (hung)");
          return false;
        }
        if (now > deadline + timeout) return false;  // still busy: the caller treats it as hung
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  if (pump_.joinable()) pump_.join();
  // The pump is gone: make sure the inner kernel is stopped too, so finished() holds.
  if (!inner_->finished()) inner_->stop(timeout);
  return control_->current_state() == kernel_state::stopped;
}

void sim_incarnation::die(kernel_error code, std::uint32_t flags, const char* detail) noexcept {
  dead_ = true;
  control_->fault(code, flags, detail);
  // The inner kernel keeps running until the host stops (or abandons) this incarnation: what it
  // still serves is never forwarded, exactly as if the kernel had died with it.
}

bool sim_incarnation::device_failed() noexcept {
  if (dev_->lost()) {
    die(kernel_error::device_lost, kernel_error_flags::sticky, "sim: device lost");
    return true;
  }
  if (dev_->poisoned() && dev_->generation() == generation_) {
    die(kernel_error::device_fault, kernel_error_flags::sticky, "sim: device context poisoned by a sticky error");
    return true;
  }
  return false;
}

bool sim_incarnation::forward_requests(bool inject) noexcept {
  bool any = false;
  bool slowed = false;  // a `slow` request ends the pass: the kernel beats once per slow request
  for (int i = 0; i < 32 && !slowed; ++i) {
    const slot_header* h = own_requests_.try_peek();
    if (!h) break;
    const std::uint64_t pos = own_requests_.position();
    if (inject && decided_pos_ != pos) {
      decided_pos_ = pos;
      if (const std::optional<fault_hit> hit = dev_->faults().on_request(inner_->kernel_name())) {
        switch (hit->kind) {
          case fault_kind::hang: hung_ = true; return any;
          case fault_kind::transient_error:
            die(kernel_error::internal, 0, "sim: injected transient kernel error");
            return any;
          case fault_kind::sticky_error:
            dev_->poison("sim: injected sticky error");
            die(kernel_error::device_fault, kernel_error_flags::sticky,
                "sim: injected sticky error (context poisoned)");
            return any;
          case fault_kind::out_of_memory:
            die(kernel_error::out_of_memory, 0, "sim: injected out-of-memory");
            return any;
          case fault_kind::crash:
            die(kernel_error::crashed, 0, "sim: injected crash (the kernel thread ended)");
            return any;
          case fault_kind::device_lost:
            dev_->lose("sim: injected device loss");
            die(kernel_error::device_lost, kernel_error_flags::sticky, "sim: injected device loss");
            return any;
          case fault_kind::slow:
            // Slow, not hung: the heartbeat moves once per slow request, so the watchdog calls it a
            // hang only when one request takes longer than its hang timeout.
            std::this_thread::sleep_for(hit->latency);
            control_->beat();
            slowed = true;
            break;
          case fault_kind::corrupt_reply: corrupt_ids_.insert(h->correlation_id); break;
        }
      }
    }
    ring_message m;
    m.header = *h;
    m.payload = own_requests_.payload(h);
    m.payload_len = h->payload_len;
    // Both rings have the same geometry, so only `full` can happen here.
    if (inner_requests_.try_push(m) != ring_status::ok) {
      blocked_ = true;
      break;
    }
    own_requests_.release();
    any = true;
  }
  if (any) inner_->notify();
  return any;
}

bool sim_incarnation::forward_replies() noexcept {
  std::uint64_t moved = 0;
  while (const slot_header* h = inner_replies_.try_peek()) {
    ring_claim c;
    if (own_replies_.try_claim(h->payload_len, c) != ring_status::ok) {
      blocked_ = true;
      break;
    }
    const std::uint16_t flags = static_cast<std::uint16_t>(c.header->flags);  // the arena bit of our claim
    const byte* src = inner_replies_.payload(h);
    for (std::uint32_t i = 0; i < h->payload_len; ++i) c.payload[i] = src[i];
    slot_header& d = *c.header;
    d.correlation_id = h->correlation_id;
    d.deadline_ns = h->deadline_ns;
    d.type_id = h->type_id;
    d.status = h->status;
    d.flags = static_cast<std::uint16_t>(flags | (h->flags & ~slot_flags::arena));
    for (int i = 0; i < 16; ++i) d.trace_id[i] = h->trace_id[i];
    for (int i = 0; i < 8; ++i) d.span_id[i] = h->span_id[i];
    if (!corrupt_ids_.empty() && corrupt_ids_.erase(h->correlation_id)) {
      // Garbage where the FlatBuffer was: the root offset points far outside the buffer.
      for (std::uint32_t i = 0; i < h->payload_len; ++i) c.payload[i] = static_cast<byte>(0xA5 ^ i);
    }
    own_replies_.commit(c, h->payload_len);
    inner_replies_.release();
    ++moved;
  }
  if (moved) {
    control_->progressed(moved, 0, 0);
    if (completion_bell_) completion_bell_->ring();
  }
  return moved != 0;
}

void sim_incarnation::hang() noexcept {
  std::unique_lock<std::mutex> lock(hang_mu_);
  parked_.store(true, std::memory_order_release);
  hang_cv_.wait(lock, [this] { return release_hang_; });
  parked_.store(false, std::memory_order_release);
}

void sim_incarnation::finish_stop() noexcept {
  control_block& cb = *control_;
  cb.set_state(kernel_state::draining);
  const auto timeout = std::chrono::milliseconds(stop_timeout_ms_.load(std::memory_order_relaxed));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Everything that reached our ring goes to the inner kernel (no injection while draining).
  while (own_requests_.try_peek() && std::chrono::steady_clock::now() < deadline) {
    blocked_ = false;
    const bool moved = forward_requests(false) | forward_replies();
    if (!moved) sched_yield();
  }
  own_requests_.publish();
  const bool inner_ok = inner_->stop(timeout);
  // Its last replies: the host keeps reading until we report stopped.
  while (inner_replies_.try_peek() && std::chrono::steady_clock::now() < deadline) {
    blocked_ = false;
    if (!forward_replies()) sched_yield();
  }
  inner_replies_.publish();
  if (!inner_ok || inner_replies_.try_peek())
    cb.fault(kernel_error::reply_stuck, 0, "sim: stop did not drain within the timeout");
  else cb.set_state(kernel_state::stopped);
}

void sim_incarnation::run() noexcept {
  control_block& cb = *control_;
  cb.set_state(kernel_state::running);
  const wait_policy& w = dev_->options().pump_wait;
  std::uint32_t idle = 0;
  for (;;) {
    if (abandoned_.load(std::memory_order_acquire)) {
      inner_->abandon();
      if (!cb.finished()) cb.set_state(kernel_state::stopped);  // nothing runs here any more
      break;
    }
    if (cb.stop_is_requested()) {
      finish_stop();
      break;
    }
    if (device_failed()) break;
    blocked_ = false;
    bool work = forward_requests(true);
    if (hung_) {
      hang();  // frozen: no beat, the request stays in the ring; abandon() ends it
      continue;
    }
    if (dead_) break;
    work = forward_replies() || work;
    cb.beat();
    if (work) {
      idle = 0;
      continue;
    }
    if (!idle_step(w, idle)) continue;
    const doorbell::token t = pump_bell_->prepare_wait();
    if (abandoned_.load(std::memory_order_acquire) || cb.stop_is_requested() || dev_->lost() || dev_->poisoned() ||
        (!blocked_ && own_requests_.try_peek()) || inner_replies_.try_peek()) {
      pump_bell_->cancel_wait();
      idle = 0;
      continue;
    }
    // Blocked on a full ring: the other side's progress does not ring us; poll every 200 us.
    pump_bell_->wait(t, blocked_ ? std::chrono::microseconds(200) : std::chrono::nanoseconds::zero());
    idle = 0;
  }
  exited_.store(true, std::memory_order_release);
  if (completion_bell_) completion_bell_->ring();
}

}  // namespace ringflow::sim

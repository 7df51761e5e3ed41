// Synchronous client of a CPU ring-kernel channel: see ringflow/cpu/host_client.hpp.
#include "ringflow/cpu/host_client.hpp"

#include <sched.h>

#include <cstring>
#include <stdexcept>

#include "ringflow/messages.hpp"

namespace ringflow::cpu {

host_client::host_client(cpu_kernel& kernel, channel& ch, wait_policy wait)
    : kernel_(&kernel), control_(&kernel.control()), ch_(ch), wait_(wait) {
  if (!ch_.claim_client())
    throw std::logic_error("host_client: channel '" + ch_.kernel_name() + "' already has a client");
  producer_ = ring_producer(ch_.requests(), ch_.request_producer_scratch());
  consumer_ = ring_consumer(ch_.replies());
}

host_client::host_client(pooled_ring& ring, wait_policy wait)
    : pooled_(&ring), control_(&ring.control()), ch_(ring.chan()), wait_(wait) {
  if (!ch_.claim_client())
    throw std::logic_error("host_client: channel '" + ch_.kernel_name() + "' already has a client");
  producer_ = ring_producer(ch_.requests(), ch_.request_producer_scratch());
  consumer_ = ring_consumer(ch_.replies());
}

void host_client::notify() noexcept {
  if (kernel_) kernel_->notify();
  else pooled_->notify();
}

host_client::~host_client() {
  consumer_.publish();
  ch_.release_client();
}

bool host_client::kernel_finished() noexcept { return control_->finished(); }

void host_client::fill(const ring_consumer& rc, const slot_header& h, reply& out) {
  out.correlation_id = h.correlation_id;
  out.st = static_cast<status>(h.status);
  out.type = h.type_id;
  const fb::bytes_view p = rc.payload_view(&h);
  out.payload.assign(p.data, p.data + p.size);
  for (int i = 0; i < 16; ++i) out.trace_id[i] = h.trace_id[i];
  out.detail.clear();
  if (out.st != status::ok) {
    const auto err = ringflow::view_of<msg::ErrorReply>(p);
    const fb::string_view d = err.detail();
    out.detail.assign(d.data ? d.data : "", d.size);
  }
}

// Pops every available reply; the one for `wanted` goes to *out, the others to the stash.
void host_client::drain_replies(std::uint64_t wanted, reply* out, bool& found) {
  while (const slot_header* h = consumer_.try_peek()) {
    if (out && !found && h->correlation_id == wanted) {
      fill(consumer_, *h, *out);
      found = true;
    } else {
      fill(consumer_, *h, stash_[h->correlation_id]);
    }
    consumer_.release();
  }
}

// After the kernel stopped: answer requests it never consumed with status::stopped. The kernel
// thread has exited (its `stopped` was acquired), so this thread may act as the consumer.
void host_client::sweep_unserved() {
  ring_consumer rc(ch_.requests());
  while (const slot_header* h = rc.try_peek()) {
    reply& r = stash_[h->correlation_id];
    r.correlation_id = h->correlation_id;
    r.st = status::stopped;
    r.type = msg::ErrorReply::type_id_;
    r.payload.clear();
    r.detail = "kernel stopped before serving the request";
    rc.release();
  }
  rc.publish();
}

bool host_client::take_stashed(std::uint64_t id, reply& out) {
  auto it = stash_.find(id);
  if (it == stash_.end()) return false;
  out = std::move(it->second);
  stash_.erase(it);
  return true;
}

// One step of the wait ladder while waiting on the kernel (replies or ring room).
void host_client::wait_for_kernel(std::chrono::steady_clock::time_point until, std::uint32_t& idle) {
  if (!idle_step(wait_, idle)) return;
  doorbell& bell = ch_.reply_bell();
  const doorbell::token t = bell.prepare_wait();
  if (consumer_.try_peek() || kernel_finished()) {
    bell.cancel_wait();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= until) {
    bell.cancel_wait();
    return;
  }
  // The kernel rings after every pass that served requests (which also frees request slots).
  bell.wait(t, std::chrono::duration_cast<std::chrono::nanoseconds>(until - now));
  idle = 0;
}

submit_result host_client::submit(type_id type, std::span<const std::uint8_t> payload, const request_options& opts) {
  submit_result res;
  if (payload.size() > producer_.max_payload()) {
    res.st = status::oversize;
    res.detail = "request of " + std::to_string(payload.size()) + " bytes exceeds the ring's limit of " +
                 std::to_string(producer_.max_payload());
    return res;
  }
  if (kernel_finished()) {
    res.st = status::stopped;
    res.detail = "kernel '" + ch_.kernel_name() + "' is not running";
    return res;
  }
  const auto until = std::chrono::steady_clock::now() + opts.submit_timeout;
  std::uint32_t idle = 0;
  ring_claim c;
  for (;;) {
    const ring_status st = producer_.try_claim(static_cast<std::uint32_t>(payload.size()), c);
    if (st == ring_status::ok) break;
    // Full: make room on the reply side too, so kernel and client cannot wait on each other.
    bool unused = false;
    drain_replies(0, nullptr, unused);
    if (kernel_finished()) {
      res.st = status::stopped;
      res.detail = "kernel '" + ch_.kernel_name() + "' stopped while the request ring was full";
      return res;
    }
    if (std::chrono::steady_clock::now() >= until) {
      res.st = status::overloaded;
      res.detail = "request ring of '" + ch_.kernel_name() + "' stayed full for the submit timeout";
      return res;
    }
    notify();
    wait_for_kernel(until, idle);
  }
  const std::uint64_t id = next_id_++;
  slot_header& h = *c.header;
  h.correlation_id = id;
  h.type_id = type;
  h.status = 0;
  h.deadline_ns =
      opts.deadline
          ? static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(opts.deadline->time_since_epoch()).count())
          : 0;
  for (int i = 0; i < 16; ++i) h.trace_id[i] = opts.trace.valid ? opts.trace.trace_id[i] : 0;
  for (int i = 0; i < 8; ++i) h.span_id[i] = opts.trace.valid ? opts.trace.span_id[i] : 0;
  if (!payload.empty()) std::memcpy(c.payload, payload.data(), payload.size());
  producer_.commit(c, static_cast<std::uint32_t>(payload.size()));
  notify();
  pending_.insert(id);
  res.correlation_id = id;
  return res;
}

bool host_client::await(std::uint64_t id, std::chrono::nanoseconds timeout, reply& out) {
  if (!pending_.count(id)) {
    out = reply{};
    out.correlation_id = id;
    out.st = status::invalid_argument;
    out.detail = "unknown correlation id " + std::to_string(id);
    return true;
  }
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::uint32_t idle = 0;
  bool found = take_stashed(id, out);
  while (!found) {
    drain_replies(id, &out, found);
    if (found) break;
    if (kernel_finished()) {
      drain_replies(id, &out, found);  // replies published before `stopped` are all visible now
      if (!found) {
        sweep_unserved();
        found = take_stashed(id, out);
      }
      if (!found) {  // cannot happen while the ring protocol holds; never hang on it
        out = reply{};
        out.correlation_id = id;
        out.st = status::internal;
        out.detail = "kernel stopped and the request is in neither ring";
        found = true;
      }
      break;
    }
    if (std::chrono::steady_clock::now() >= until) {
      out.correlation_id = id;
      out.st = status::deadline_exceeded;
      out.detail = "no reply within the await timeout";
      return false;
    }
    wait_for_kernel(until, idle);
  }
  pending_.erase(id);
  return true;
}

void host_client::call(type_id type, std::span<const std::uint8_t> payload, std::chrono::nanoseconds timeout,
                       reply& out, const request_options& opts) {
  const submit_result s = submit(type, payload, opts);
  if (!s.ok()) {
    out.correlation_id = 0;
    out.st = s.st;
    out.detail = s.detail;
    out.payload.clear();
    return;
  }
  await(s.correlation_id, timeout, out);
}

}  // namespace ringflow::cpu

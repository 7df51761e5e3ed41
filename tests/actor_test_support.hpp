// Helpers for the actor-layer tests: a gated kernel (holds requests until a test opens the gate),
// a small runtime config for 2-core machines, and waiting on conditions with a deadline.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/ringflow.hpp"
#include "test_support.hpp"

namespace ringflow::test {

/// Echo that blocks while `gate_closed` is set: requests pile up in the ring (a slow or hung kernel).
struct GatedEchoKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "gated_echo";
  static inline std::atomic<bool> gate_closed{false};
  static inline std::atomic<std::uint64_t> served{0};
  static std::uint32_t reply_capacity(const msg_view& in) { return in.payload.size; }
  static status handle(const msg_view& in, reply_writer& out) {
    while (gate_closed.load(std::memory_order_acquire)) std::this_thread::yield();
    served.fetch_add(1, std::memory_order_relaxed);
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

/// A runtime sized for the 2-core CI machine; kernels and poller park quickly when idle.
inline runtime_config small_runtime() {
  runtime_config c;
  c.scheduler_threads = 2;
  c.poller.wait.spin_iterations = 200;
  c.shutdown_timeout = std::chrono::milliseconds(3000);
  return c;
}
inline cpu_incarnation_options quick_park() {
  cpu_incarnation_options o;
  o.wait.spin_iterations = 200;
  return o;
}

/// Waits until pred() holds or `limit` passes; returns pred().
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::yield();
  }
  return true;
}

inline fb_msg echo_msg(std::uint64_t seq, std::size_t body = 16) { return fb_msg(echo_request(seq, body)); }

/// The sequence number carried by an Echo message (reply or request).
inline std::uint64_t echo_seq(const fb_msg& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  if (!v.VerifyBuffer<demo::Echo>(nullptr)) return ~0ull;
  return demo::GetEcho(m.bytes.data())->sequence();
}

}  // namespace ringflow::test

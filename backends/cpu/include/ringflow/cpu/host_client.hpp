// ringflow/cpu/host_client.hpp — a small synchronous client of one CPU ring-kernel channel.
//
// Contract: submit() copies a request into the channel's request ring (waiting up to
// `submit_timeout` for room, draining replies meanwhile so a full response ring cannot deadlock
// the pair) and rings the kernel's doorbell; await() returns the reply for a correlation id —
// success, or an error reply with its status and detail. Every submitted request gets exactly one
// reply: when the kernel has stopped, requests it did not serve are answered here with
// status::stopped. Replies arriving for other correlation ids are kept until awaited.
// Used by tests, benchmarks and the demo until the actor layer (actors/) fronts the rings.
//
// Thread-safety: one host_client per channel (enforced), used by one thread at a time: it is the
// request ring's only producer and the response ring's only consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/kernel_pool.hpp"
#include "ringflow/ingress.hpp"

namespace ringflow::cpu {

struct request_options {
  /// Absolute deadline (steady clock); the kernel answers deadline_exceeded once it has passed.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  /// W3C trace context to carry through the kernel (copied into the slot header).
  trace_context trace{};
  /// How long submit() may wait for room in a full request ring before returning overloaded.
  std::chrono::nanoseconds submit_timeout = std::chrono::seconds(1);
};

struct reply {
  std::uint64_t correlation_id = 0;
  status st = status::internal;
  type_id type = 0;
  std::vector<std::uint8_t> payload;  // the reply FlatBuffer (an ErrorReply when st != ok)
  std::string detail;                 // error detail (empty on success)
  std::uint8_t trace_id[16] = {};
  bool ok() const noexcept { return st == status::ok; }
};

struct submit_result {
  status st = status::ok;  // ok, oversize, overloaded (ring full past submit_timeout), stopped
  std::uint64_t correlation_id = 0;
  std::string detail;
  bool ok() const noexcept { return st == status::ok; }
};

class host_client {
 public:
  /// Throws std::logic_error if the channel already has a client.
  host_client(cpu_kernel& kernel, channel& ch, wait_policy wait = {});
  /// The client of a ring in a kernel pool (kernel_pool.hpp).
  explicit host_client(pooled_ring& ring, wait_policy wait = {});
  ~host_client();
  host_client(const host_client&) = delete;
  host_client& operator=(const host_client&) = delete;

  submit_result submit(type_id type, std::span<const std::uint8_t> payload, const request_options& opts = {});

  /// Waits up to `timeout` for the reply to `correlation_id`. Returns false on timeout (the
  /// request stays pending and can be awaited again). An unknown id yields
  /// status::invalid_argument at once.
  bool await(std::uint64_t correlation_id, std::chrono::nanoseconds timeout, reply& out);

  /// submit + await. On a submit failure or timeout, `out.st` says why.
  void call(type_id type, std::span<const std::uint8_t> payload, std::chrono::nanoseconds timeout, reply& out,
            const request_options& opts = {});

  /// Requests submitted and not yet returned by await().
  std::size_t pending() const noexcept { return pending_.size(); }
  /// Largest payload the request ring accepts.
  std::uint32_t max_request_bytes() const noexcept { return producer_.max_payload(); }

 private:
  bool kernel_finished() noexcept;
  void drain_replies(std::uint64_t wanted, reply* out, bool& found);
  void sweep_unserved();
  bool take_stashed(std::uint64_t id, reply& out);
  void wait_for_kernel(std::chrono::steady_clock::time_point until, std::uint32_t& idle);
  static void fill(const ring_consumer& rc, const slot_header& h, reply& out);

  void notify() noexcept;
  cpu_kernel* kernel_ = nullptr;  // one of the two
  pooled_ring* pooled_ = nullptr;
  control_block* control_ = nullptr;
  channel& ch_;
  wait_policy wait_;
  ring_producer producer_;
  ring_consumer consumer_;
  std::uint64_t next_id_ = 1;
  std::unordered_set<std::uint64_t> pending_;
  std::unordered_map<std::uint64_t, reply> stash_;
};

}  // namespace ringflow::cpu

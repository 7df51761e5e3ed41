// ringflow/incarnation.hpp — one running instance of a ring kernel behind a ring actor (backends/core).
// With device.hpp, doorbell.hpp, ring_storage.hpp and wait_policy.hpp: the contracts every backend
// implements and the only backend headers the actor layer and supervision need.
//
// Contract
//   * An incarnation owns a request ring, a response ring and the kernel loop serving them on
//     some backend (today: a CPU thread; the GPU backends add theirs). The ring actor is stable;
//     incarnations come and go behind it (ring_core::attach / detach): restart, reroute to another
//     backend, fail-back. Nothing about the actor, its name, its handle or its outbox changes.
//   * The ring actor's publisher is the only producer of requests() and the completion poller the
//     only consumer of replies() while the incarnation is attached.
//   * stop(): stop flag -> the kernel drains what is in its request ring, publishes the replies,
//     and reports stopped (or faulted when it cannot finish in `timeout`). After stop() returns
//     finished() is true and every reply the kernel published is visible to the caller.
//   * abandon(): asks the kernel to stop without waiting (a hung or untrusted kernel). The object
//     may then be destroyed without blocking only once finished() is true; until then whoever
//     abandoned it keeps it (supervision's graveyard), because a kernel thread may still use it.
//   * `completion_bell` (given at creation) is rung whenever the kernel published replies, so one
//     poller thread can park on many incarnations.
//   * A reply sink (set_reply_sink) lets a kernel that runs on a host thread hand its replies to
//     their callers itself, right after publishing them, instead of waking the poller: it calls
//     reply_sink::take_replies() and rings the completion bell only when that did not consume
//     everything. Backends that cannot (a GPU, another process, the sim decorator) ignore it.
//   * A backend lives in backends/ and implements this interface (cpu/: cpu_incarnation.hpp; gpu/;
//     the sim decorator in sim/; kernel hosts in process/). The actor layer and supervision see
//     only this.
// Thread-safety: start/stop/abandon from the controlling thread; notify(), finished(), control()
// readers from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ringflow/control_block.hpp"
#include "ringflow/device.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/ring_storage.hpp"

namespace ringflow {

/// The consumer side of an incarnation's replies (ring_core), for kernels that complete their
/// callers themselves (see the contract above).
class reply_sink {
 public:
  virtual ~reply_sink() = default;
  /// Consumes the replies published so far and completes their requests on the calling thread.
  /// True when the reply ring is empty afterwards; false when it could not take the reply side
  /// (another thread holds it), is detached, or stopped early with replies left.
  virtual bool take_replies() noexcept = 0;
};

class incarnation {
 public:
  virtual ~incarnation() = default;

  [[nodiscard]] virtual const char* backend() const noexcept = 0;  // "cpu", "cuda", "hip", "sim"
  [[nodiscard]] virtual const char* kernel_name() const noexcept = 0;
  [[nodiscard]] virtual type_id request_type() const noexcept = 0;
  [[nodiscard]] virtual type_id reply_type() const noexcept = 0;

  [[nodiscard]] virtual ring_region requests() noexcept = 0;
  [[nodiscard]] virtual std::uint64_t* request_producer_scratch() noexcept = 0;
  [[nodiscard]] virtual ring_region replies() noexcept = 0;
  /// Bytes of the state a stateful kernel keeps in this incarnation (kernel.hpp), 0 when the
  /// kernel is stateless or the backend keeps no kernel state. A stateful ring actor attaches only
  /// an incarnation whose state size is its own.
  [[nodiscard]] virtual std::uint32_t state_bytes() const noexcept { return 0; }

  /// Doorbell after publishing requests (cheap when the kernel is awake).
  virtual void notify() noexcept = 0;
  /// True once the kernel stopped or faulted: it will publish no more replies.
  [[nodiscard]] virtual bool finished() noexcept = 0;
  [[nodiscard]] virtual control_block& control() noexcept = 0;
  /// Stops the kernel (drain, then stopped); true if it stopped cleanly within `timeout`.
  virtual bool stop(std::chrono::milliseconds timeout) = 0;
  /// Asks the kernel to stop and returns at once (see the contract above).
  virtual void abandon() noexcept = 0;
  /// Restart in place: a new kernel (new epoch) on the same rings, after the previous one
  /// finished (stopped or faulted — never after abandon()). Whatever is left in the request and
  /// response rings is discarded: the caller (ring_core::detach) has harvested the replies and
  /// replays the unanswered requests. Cheaper than a new incarnation (no ring allocation). Returns
  /// false when the backend cannot (then make a new incarnation); the default cannot.
  virtual bool restart() { return false; }
  /// Where the kernel may hand its replies itself (an expired or empty pointer: nowhere). The
  /// default ignores it; the CPU backend uses it.
  virtual void set_reply_sink(std::weak_ptr<reply_sink> sink) noexcept { (void)sink; }
};

/// Discards every message left in `r` (its only consumer and producer must be stopped/detached).
/// A v2 ring: its head jumps to its tail (use discard_rings() for a v2 request/reply pair).
void discard_ring(ring_region r) noexcept;
/// Discards a request ring and its response ring together (both endpoints of both stopped): v1
/// rings one by one; a protocol v2 pair restarts all four cursors at the request ring's tail.
void discard_rings(ring_region requests, ring_region replies) noexcept;

/// Creates a fresh incarnation; `completion_bell` must outlive it. Throws on bad ring options, or
/// (a device factory) when the device cannot start a kernel now: std::runtime_error with the reason.
using incarnation_factory = std::function<std::unique_ptr<incarnation>(doorbell* completion_bell)>;

}  // namespace ringflow

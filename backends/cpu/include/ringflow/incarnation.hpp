// ringflow/incarnation.hpp — one running instance of a ring kernel behind a ring actor, and the
// device it runs on (what supervision's fault ladder needs to know of both).
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
//   * A backend lives in backends/ and implements this interface (CPU here; the sim decorator in
//     backends/sim; the GPU backends add theirs). The actor layer and supervision see only this.
// Thread-safety: start/stop/abandon from the controlling thread; notify(), finished(), control()
// readers from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ringflow/control_block.hpp"
#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/ring.hpp"

namespace ringflow {

class incarnation {
 public:
  virtual ~incarnation() = default;

  virtual const char* backend() const noexcept = 0;  // "cpu", "cuda", "hip", "sim"
  virtual const char* kernel_name() const noexcept = 0;
  virtual type_id request_type() const noexcept = 0;
  virtual type_id reply_type() const noexcept = 0;

  virtual ring_region requests() noexcept = 0;
  virtual std::uint64_t* request_producer_scratch() noexcept = 0;
  virtual ring_region replies() noexcept = 0;

  /// Doorbell after publishing requests (cheap when the kernel is awake).
  virtual void notify() noexcept = 0;
  /// True once the kernel stopped or faulted: it will publish no more replies.
  virtual bool finished() noexcept = 0;
  virtual control_block& control() noexcept = 0;
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
};

/// Discards every message left in `r` (its only consumer and producer must be stopped/detached).
void discard_ring(ring_region r) noexcept;

/// What a device's in-process reinitialization achieved.
enum class reinit_outcome { ok, unsupported, failed };

/// A device incarnations can be placed on (a GPU, the sim device). The CPU fallback is not one.
class device {
 public:
  virtual ~device() = default;
  /// Stable id, e.g. "sim:0", "cuda:0": the key of the device's circuit breaker and metrics.
  virtual const std::string& id() const noexcept = 0;
  virtual const char* backend() const noexcept = 0;
  /// In-process reinitialization (e.g. a device reset) after a device-level fault. `detail`
  /// says why when the outcome is not ok. Called by the fault ladder's thread.
  virtual reinit_outcome reinitialize(std::string& detail) = 0;
};

/// Where an incarnation's own rings, control block and wake bell live when they are not in its
/// own memory: a kernel host places them in the shared segment its service created (the rings
/// already formatted there: `attach`). Empty (request_memory null): the incarnation's own.
struct ring_placement {
  void* request_memory = nullptr;
  void* reply_memory = nullptr;
  bool attach = true;
  control_block* control = nullptr;
  cpu::doorbell* kernel_bell = nullptr;  // process-shared; rung by the requests' producer
  bool empty() const noexcept { return request_memory == nullptr; }
};

/// Options of a CPU incarnation.
struct cpu_incarnation_options {
  cpu::ring_options rings{};  // (with its placement fields: rings in someone else's memory)
  cpu::wait_policy wait{};
  std::uint32_t max_batch = 32;
  /// Placement of the control block and the kernel's wake bell (cpu::kernel_config): a kernel
  /// host puts them in its shared segment. nullptr: the kernel's own.
  control_block* control = nullptr;
  cpu::doorbell* kernel_bell = nullptr;
};

/// Creates a fresh incarnation; `completion_bell` must outlive it. Throws on bad ring options, or
/// (a device factory) when the device cannot start a kernel now: std::runtime_error with the reason.
using incarnation_factory = std::function<std::unique_ptr<incarnation>(cpu::doorbell* completion_bell)>;

namespace detail {
/// CPU backend: one cpu_kernel thread with one channel, started on construction.
class cpu_incarnation final : public incarnation {
 public:
  template <ring_kernel K>
  static std::unique_ptr<incarnation> make(const cpu_incarnation_options& opts, cpu::doorbell* bell) {
    auto inc = std::unique_ptr<cpu_incarnation>(new cpu_incarnation(K::name, opts, bell));
    inc->channel_ = &inc->kernel_.template add_ring<K>(opts.rings);
    inc->kernel_.start();
    return inc;
  }
  ~cpu_incarnation() override;

  const char* backend() const noexcept override { return "cpu"; }
  const char* kernel_name() const noexcept override { return channel_->kernel_name().c_str(); }
  type_id request_type() const noexcept override { return channel_->request_type(); }
  type_id reply_type() const noexcept override { return channel_->reply_type(); }
  ring_region requests() noexcept override { return channel_->requests(); }
  std::uint64_t* request_producer_scratch() noexcept override { return channel_->request_producer_scratch(); }
  ring_region replies() noexcept override { return channel_->replies(); }
  void notify() noexcept override { kernel_.notify(); }
  bool finished() noexcept override;
  control_block& control() noexcept override { return kernel_.control(); }
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  bool restart() override;

  cpu::cpu_kernel& kernel() noexcept { return kernel_; }

 private:
  cpu_incarnation(const char* name, const cpu_incarnation_options& opts, cpu::doorbell* bell);
  cpu::cpu_kernel kernel_;
  cpu::channel* channel_ = nullptr;
  bool abandoned_ = false;
};
}  // namespace detail

/// A factory of CPU incarnations of kernel K.
template <ring_kernel K>
incarnation_factory cpu_incarnation_factory(cpu_incarnation_options opts = {}) {
  return [opts](cpu::doorbell* bell) { return detail::cpu_incarnation::make<K>(opts, bell); };
}

}  // namespace ringflow

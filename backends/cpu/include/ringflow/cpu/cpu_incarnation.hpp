// ringflow/cpu/cpu_incarnation.hpp — a ring kernel's incarnation on the CPU backend: one channel
// (the ring actor's request and response rings) served by a kernel pool's threads
// (cpu_incarnation_options::pool, kernel_pool.hpp) or by a cpu_kernel thread of its own.
//
// Contract: as ringflow::incarnation (backends/core). restart() starts a new kernel thread on the
// same rings (new epoch); abandon() gives the kernel a short drain budget and lets it exit.
// cpu_incarnation_factory<K>() is the CPU fallback every ring actor has (the fault ladder's last
// rung) and the plain placement of a ring actor with no device.
// Thread-safety: as ringflow::incarnation.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/kernel_pool.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow {

/// Options of a CPU incarnation.
struct cpu_incarnation_options {
  cpu::ring_options rings{};  // (with its placement fields: rings in someone else's memory)
  wait_policy wait{};
  std::uint32_t max_batch = 32;
  /// The kernel thread's name ("" = "rf-k-<kernel>"; the engine uses "rf-k-<node>") and the CPUs
  /// it is pinned to (empty: not pinned): cpu::kernel_config.
  std::string thread_name;
  std::vector<int> cpus;
  /// The kernel thread completes its callers itself right after a batch (incarnation.hpp,
  /// reply_sink): no hand-off through the completion poller. Completion callbacks then run on the
  /// kernel thread (keep them short). false: the poller (or a helping caller) completes them.
  bool complete_callers = true;
  /// Placement of the control block and the kernel's wake bell (cpu::kernel_config): a kernel
  /// host puts them in its shared segment. nullptr: the kernel's own.
  control_block* control = nullptr;
  doorbell* kernel_bell = nullptr;
  /// A kernel pool (kernel_pool.hpp) the ring runs in, sharing its threads with other ring actors.
  /// Ignored — the ring gets a kernel thread of its own — when it is pinned (`cpus`), when its
  /// wait mode differs from the pool's (e.g. spin), or when the control block or bell are placed
  /// (a kernel host). null: a thread of its own.
  std::shared_ptr<cpu::kernel_pool> pool;
  /// A kernel thread of its own even when a pool is given (the runtime fills `pool` in by default).
  bool own_thread = false;
};

/// True when a ring with these options runs in `opts.pool` (see cpu_incarnation_options::pool).
bool runs_in_pool(const cpu_incarnation_options& opts) noexcept;

/// `o` with rings that can carry `state_bytes` of kernel state both ways (snapshot and restore:
/// the state and its 8-byte checksum, kernel.hpp): a ring whose slot and arena are too small gets
/// an arena of twice that (rounded up to 64 bytes). state_bytes 0 (stateless): `o` unchanged. A
/// kernel host sizes its segment's rings with this rule, so its worker's rings match; a GPU
/// node's rings get it from give_state_room.
inline void give_state_room(ring_config& c, std::uint32_t state_bytes) {
  const std::uint32_t wire = state_bytes + state_checksum_bytes;
  if (state_bytes != 0 && c.inline_capacity() < wire && c.arena_bytes < wire) c.arena_bytes = (2 * wire + 63) / 64 * 64;
}
inline cpu_incarnation_options with_state_room(cpu_incarnation_options o, std::uint32_t state_bytes) {
  give_state_room(o.rings.requests, state_bytes);
  give_state_room(o.rings.replies, state_bytes);
  return o;
}

/// with_state_room for kernel K's state (stateless K: `o` unchanged).
template <ring_kernel K>
cpu_incarnation_options with_state_room(cpu_incarnation_options o) {
  return with_state_room(std::move(o), state_bytes_of<K>);
}

namespace detail {
/// CPU backend: one cpu_kernel thread with one channel, started on construction.
class cpu_incarnation final : public incarnation {
 public:
  static std::unique_ptr<incarnation> make(const cpu::kernel_binding& k, const cpu_incarnation_options& opts,
                                           doorbell* bell);
  static std::unique_ptr<incarnation> make_own_thread(const cpu::kernel_binding& k, const cpu_incarnation_options& opts,
                                                      doorbell* bell) {
    auto inc = std::unique_ptr<cpu_incarnation>(new cpu_incarnation(k.name, opts, bell));
    inc->channel_ = &inc->kernel_.add_ring(k, opts.rings);
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
  std::uint32_t state_bytes() const noexcept override { return channel_->state_bytes(); }
  void notify() noexcept override { kernel_.notify(); }
  bool finished() noexcept override;
  control_block& control() noexcept override { return kernel_.control(); }
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  bool restart() override;
  void set_reply_sink(std::weak_ptr<reply_sink> sink) noexcept override {
    if (complete_callers_) channel_->set_reply_sink(std::move(sink));
  }

  cpu::cpu_kernel& kernel() noexcept { return kernel_; }

 private:
  cpu_incarnation(const char* name, const cpu_incarnation_options& opts, doorbell* bell);
  cpu::cpu_kernel kernel_;
  cpu::channel* channel_ = nullptr;
  bool abandoned_ = false;
  bool complete_callers_ = true;
};

/// CPU backend in a kernel pool: one pooled_ring (its own control block) on the pool's threads.
class pooled_cpu_incarnation final : public incarnation {
 public:
  pooled_cpu_incarnation(const cpu::kernel_binding& k, const cpu_incarnation_options& opts, doorbell* bell)
      : pool_(opts.pool), ring_(opts.pool->attach(k, opts.rings, bell)), complete_callers_(opts.complete_callers) {}
  ~pooled_cpu_incarnation() override;

  const char* backend() const noexcept override { return "cpu"; }
  const char* kernel_name() const noexcept override { return ring_->chan().kernel_name().c_str(); }
  type_id request_type() const noexcept override { return ring_->chan().request_type(); }
  type_id reply_type() const noexcept override { return ring_->chan().reply_type(); }
  ring_region requests() noexcept override { return ring_->chan().requests(); }
  std::uint64_t* request_producer_scratch() noexcept override { return ring_->chan().request_producer_scratch(); }
  ring_region replies() noexcept override { return ring_->chan().replies(); }
  std::uint32_t state_bytes() const noexcept override { return ring_->chan().state_bytes(); }
  void notify() noexcept override { ring_->notify(); }
  bool finished() noexcept override { return ring_->finished(); }
  control_block& control() noexcept override { return ring_->control(); }
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  bool restart() override;
  void set_reply_sink(std::weak_ptr<reply_sink> sink) noexcept override {
    if (complete_callers_) ring_->chan().set_reply_sink(std::move(sink));
  }

  cpu::pooled_ring& ring() noexcept { return *ring_; }

 private:
  std::shared_ptr<cpu::kernel_pool> pool_;  // outlives the ring's last turn
  std::shared_ptr<cpu::pooled_ring> ring_;
  bool abandoned_ = false;
  bool complete_callers_ = true;
};
}  // namespace detail

/// A factory of CPU incarnations of kernel K.
template <ring_kernel K>
incarnation_factory cpu_incarnation_factory(cpu_incarnation_options opts = {}) {
  return [opts](doorbell* bell) { return detail::cpu_incarnation::make(cpu::bind_kernel<K>(), opts, bell); };
}
/// The same for a kernel bound at run time (a plugin's).
inline incarnation_factory cpu_incarnation_factory(cpu::kernel_binding k, cpu_incarnation_options opts = {}) {
  return [k, opts](doorbell* bell) { return detail::cpu_incarnation::make(k, opts, bell); };
}

}  // namespace ringflow

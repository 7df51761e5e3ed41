// ringflow/cpu/cpu_incarnation.hpp — a ring kernel's incarnation on the CPU backend: one cpu_kernel
// thread serving one channel (the ring actor's request and response rings).
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
};

namespace detail {
/// CPU backend: one cpu_kernel thread with one channel, started on construction.
class cpu_incarnation final : public incarnation {
 public:
  static std::unique_ptr<incarnation> make(const cpu::kernel_binding& k, const cpu_incarnation_options& opts,
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

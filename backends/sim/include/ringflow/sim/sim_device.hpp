// ringflow/sim/sim_device.hpp — the `sim` device: any backend's incarnations behind a fault injector.
//
// Contract
//   * A sim_device is a ringflow::device (it has an id, a circuit breaker in supervision, and can
//     be reinitialized) whose incarnations are sim_incarnation decorators around incarnations of
//     another backend: factory<K>() wraps the CPU backend (the `sim` device of CI and the demos);
//     wrap(f) wraps any incarnation factory, e.g. a CUDA one, so the same faults drive the real
//     ladder on a GPU machine.
//   * Device-level state, as a real device has it: a sticky error poisons the device (every live
//     incarnation faults, new ones fail to start) until reinitialize(); device_lost makes it
//     unusable (reinitialize fails too) until restore(). reinitialize() can be made unsupported
//     (options) to model a backend that cannot reset in-process (CUDA after a sticky error).
//   * Each reinitialize() that succeeds bumps generation(): incarnations of an older generation
//     belong to the old context.
// Thread-safety: all members from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/sim/fault_injector.hpp"

namespace ringflow::sim {

struct sim_device_options {
  std::string id = "sim:0";
  bool reinit_supported = true;  // false: reinitialize() reports unsupported (like CUDA in-process)
  wait_policy pump_wait{};       // how the decorator's forwarding thread waits when idle
};

class sim_device final : public device, public std::enable_shared_from_this<sim_device> {
 public:
  static std::shared_ptr<sim_device> make(sim_device_options opts = {}, std::uint64_t seed = 0x5eed) {
    return std::shared_ptr<sim_device>(new sim_device(std::move(opts), seed));
  }

  const std::string& id() const noexcept override { return opts_.id; }
  const char* backend() const noexcept override { return "sim"; }
  reinit_outcome reinitialize(std::string& detail) override;

  fault_injector& faults() noexcept { return faults_; }
  const sim_device_options& options() const noexcept { return opts_; }

  /// Incarnations of kernel K on the CPU backend behind this device's injector.
  template <ring_kernel K>
  incarnation_factory factory(cpu_incarnation_options cpu = {}) {
    return wrap(cpu_incarnation_factory<K>(cpu));
  }
  /// Decorates any backend's factory. The returned factory throws std::runtime_error while the
  /// device is lost or poisoned (a real device refuses launches then too).
  /// `own`: where the decorators put their own rings, control block and wake bell (a kernel
  /// host's shared segment); empty = their own memory.
  incarnation_factory wrap(incarnation_factory inner, ring_placement own = {});

  // ---- device state (faults set it; tests and operators may too) ----------------------------
  void poison(const std::string& why);  // sticky error: until reinitialize()
  void lose(const std::string& why);    // device lost: until restore()
  void restore();                       // the device is back (lost cleared; still poisoned if it was)
  bool poisoned() const noexcept { return poisoned_.load(std::memory_order_acquire); }
  bool lost() const noexcept { return lost_.load(std::memory_order_acquire); }
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  std::uint64_t reinits() const noexcept { return reinits_.load(std::memory_order_relaxed); }
  /// Incarnation epochs handed out so far (each sim incarnation gets the next one).
  std::uint64_t next_epoch() noexcept { return epoch_.fetch_add(1, std::memory_order_relaxed) + 1; }
  /// Live incarnations of this device (decorators register themselves so that a poisoned or
  /// lost device wakes every one of them at once).
  std::size_t live_incarnations() const;

 private:
  friend class sim_incarnation;
  void enlist(incarnation* inc);
  void discharge(incarnation* inc);
  void wake_all();

  sim_device(sim_device_options opts, std::uint64_t seed) : opts_(std::move(opts)), faults_(seed) {}
  std::string state_detail() const;

  sim_device_options opts_;
  fault_injector faults_;
  std::atomic<bool> poisoned_{false};
  std::atomic<bool> lost_{false};
  std::atomic<std::uint64_t> generation_{1};
  std::atomic<std::uint64_t> reinits_{0};
  std::atomic<std::uint64_t> epoch_{0};
  mutable std::mutex mu_;
  std::string why_;                 // last poison / loss reason (mu_)
  std::vector<incarnation*> live_;  // (mu_)
};

}  // namespace ringflow::sim

// ringflow/sim/sim_incarnation.hpp — the fault-injecting decorator around another incarnation.
//
// Contract
//   * The decorator owns its own request ring, response ring and control block — the ones the
//     ring core, the poller and the watchdog see — and a forwarding thread (the "pump") that
//     moves requests into the inner incarnation's ring and its replies back, asking the device's
//     fault_injector about every request it takes. The pump behaves as the kernel would:
//       hang            stops forwarding and beating; the request stays in the ring (the watchdog
//                       finds it hung); released only by abandon() or destruction.
//       transient_error faults with kernel_error::internal.
//       sticky_error    poisons the device and faults with device_fault + sticky flag; every other
//                       live incarnation of the device faults the same way within one pass.
//       out_of_memory   faults with kernel_error::out_of_memory.
//       crash           the kernel thread ends without stopping: kernel_error::crashed.
//       device_lost     marks the device lost and faults with device_lost + sticky flag.
//       slow            delays that request by the rule's latency (the heartbeat stalls meanwhile).
//       corrupt_reply   the request's reply reaches the host with its payload overwritten.
//     A faulted pump forwards nothing more; requests in either ring stay unanswered (the ring
//     core replays them into the next incarnation). The inner incarnation is stopped with it
//     (stop()), or abandoned with it (abandon()).
//   * stop(timeout): the pump forwards what is left, stops the inner incarnation (it drains),
//     forwards its last replies and reports stopped; a hung pump times out (returns false and
//     marks the block faulted, as a kernel that ignores its stop flag would).
// Thread-safety: as ringflow::incarnation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "ringflow/doorbell.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/ring_storage.hpp"

namespace ringflow::sim {

class sim_device;

class sim_incarnation final : public incarnation {
 public:
  /// Creates the inner incarnation from `inner` (its completion bell is the pump's) and starts
  /// the pump. `completion_bell` is rung when replies reach the decorator's response ring.
  /// `own`: placement of the decorator's own rings, control block and wake bell (a kernel host's
  /// shared segment; the inner incarnation's rings stay private to the process).
  sim_incarnation(std::shared_ptr<sim_device> dev, const incarnation_factory& inner, doorbell* completion_bell,
                  const ring_placement& own = {});
  ~sim_incarnation() override;

  const char* backend() const noexcept override { return "sim"; }
  const char* kernel_name() const noexcept override { return inner_->kernel_name(); }
  type_id request_type() const noexcept override { return inner_->request_type(); }
  type_id reply_type() const noexcept override { return inner_->reply_type(); }
  ring_region requests() noexcept override { return requests_.region(); }
  std::uint64_t* request_producer_scratch() noexcept override { return requests_.producer_scratch(); }
  ring_region replies() noexcept override { return replies_.region(); }
  std::uint32_t state_bytes() const noexcept override { return inner_->state_bytes(); }
  void notify() noexcept override { pump_bell_->ring(); }
  bool finished() noexcept override;
  control_block& control() noexcept override { return *control_; }
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  /// Restarts the pump and the inner incarnation in place (not after abandon, nor while the
  /// device is lost or poisoned); the new kernel belongs to the device's current generation.
  bool restart() override;

  /// The device generation this incarnation was started in.
  std::uint64_t generation() const noexcept { return generation_; }
  incarnation& inner() noexcept { return *inner_; }

 private:
  void run() noexcept;
  bool device_failed() noexcept;                // the device was poisoned / lost: fault accordingly
  bool forward_requests(bool inject) noexcept;  // own request ring -> inner
  bool forward_replies() noexcept;              // inner replies -> own response ring
  void hang() noexcept;                         // park until abandoned or destroyed
  void finish_stop() noexcept;                  // the stop path: drain through the inner incarnation
  void die(kernel_error code, std::uint32_t flags, const char* detail) noexcept;

  std::shared_ptr<sim_device> dev_;
  std::uint64_t generation_;  // written before the pump starts; read by the pump
  doorbell own_pump_bell_;
  doorbell* pump_bell_;  // rung by notify() and by the inner kernel's replies (own, or placed)
  doorbell* completion_bell_;
  std::unique_ptr<incarnation> inner_;
  ring_storage requests_;
  ring_storage replies_;
  std::unique_ptr<control_block> own_control_;
  control_block* control_;
  // pump-owned endpoints
  ring_consumer own_requests_;
  ring_producer own_replies_;
  ring_producer inner_requests_;
  ring_consumer inner_replies_;
  std::uint64_t decided_pos_ = ~0ull;  // own request position whose fault decision was made
  std::unordered_set<std::uint64_t> corrupt_ids_;
  bool hung_ = false;     // a hang fired
  bool dead_ = false;     // a fault fired: forward nothing more
  bool blocked_ = false;  // the inner request ring or our response ring was full

  std::mutex hang_mu_;
  std::condition_variable hang_cv_;
  bool release_hang_ = false;
  std::atomic<bool> parked_{false};  // the pump is parked in hang() (writes nothing until released)
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> stop_deadline_passed_{false};
  std::atomic<std::int64_t> stop_timeout_ms_{2000};
  std::atomic<bool> exited_{false};
  std::thread pump_;
};

}  // namespace ringflow::sim

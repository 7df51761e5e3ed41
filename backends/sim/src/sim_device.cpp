// The sim device: see ringflow/sim/sim_device.hpp.
#include "ringflow/sim/sim_device.hpp"

#include <algorithm>
#include <stdexcept>

#include "ringflow/sim/sim_incarnation.hpp"

namespace ringflow::sim {

std::string sim_device::state_detail() const {
  std::lock_guard<std::mutex> lock(mu_);
  return why_;
}

reinit_outcome sim_device::reinitialize(std::string& detail) {
  if (lost()) {
    detail = "device " + opts_.id + " is lost: " + state_detail();
    return reinit_outcome::failed;
  }
  if (!opts_.reinit_supported) {
    detail = "device " + opts_.id + " cannot be reinitialized in-process";
    return reinit_outcome::unsupported;
  }
  // A new context: incarnations of the old generation belong to the poisoned one.
  generation_.fetch_add(1, std::memory_order_acq_rel);
  poisoned_.store(false, std::memory_order_release);
  reinits_.fetch_add(1, std::memory_order_relaxed);
  return reinit_outcome::ok;
}

incarnation_factory sim_device::wrap(incarnation_factory inner, ring_placement own) {
  return [self = shared_from_this(), inner = std::move(inner), own](doorbell* bell) -> std::unique_ptr<incarnation> {
    if (self->lost()) throw std::runtime_error("device " + self->id() + " is lost: " + self->state_detail());
    if (self->poisoned())
      throw std::runtime_error("device " + self->id() +
                               " has a sticky error (reinitialize it): " + self->state_detail());
    return std::make_unique<sim_incarnation>(self, inner, bell, own);
  };
}

void sim_device::poison(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    why_ = why;
  }
  poisoned_.store(true, std::memory_order_release);
  wake_all();
}

void sim_device::lose(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    why_ = why;
  }
  lost_.store(true, std::memory_order_release);
  wake_all();
}

void sim_device::restore() { lost_.store(false, std::memory_order_release); }

std::size_t sim_device::live_incarnations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void sim_device::enlist(incarnation* inc) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.push_back(inc);
}

void sim_device::discharge(incarnation* inc) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(std::remove(live_.begin(), live_.end(), inc), live_.end());
}

void sim_device::wake_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (incarnation* inc : live_) inc->notify();
}

}  // namespace ringflow::sim

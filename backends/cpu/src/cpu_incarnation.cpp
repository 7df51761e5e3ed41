// The CPU incarnation of a ring kernel: see ringflow/cpu/cpu_incarnation.hpp.
#include "ringflow/cpu/cpu_incarnation.hpp"

namespace ringflow {

bool runs_in_pool(const cpu_incarnation_options& opts) noexcept {
  return opts.pool && !opts.own_thread && opts.cpus.empty() && !opts.control && !opts.kernel_bell &&
         opts.wait.mode == opts.pool->config().wait.mode;
}

namespace detail {

std::unique_ptr<incarnation> cpu_incarnation::make(const cpu::kernel_binding& k, const cpu_incarnation_options& opts,
                                                   doorbell* bell) {
  if (runs_in_pool(opts)) return std::make_unique<pooled_cpu_incarnation>(k, opts, bell);
  return make_own_thread(k, opts, bell);
}

namespace {
cpu::kernel_config make_config(const char* name, const cpu_incarnation_options& opts, doorbell* bell) {
  cpu::kernel_config cfg;
  cfg.name = name;
  cfg.wait = opts.wait;
  cfg.max_batch = opts.max_batch;
  cfg.completion_bell = bell;
  cfg.control = opts.control;
  cfg.bell = opts.kernel_bell;
  cfg.thread_name = opts.thread_name;
  cfg.cpus = opts.cpus;
  return cfg;
}
}  // namespace

cpu_incarnation::cpu_incarnation(const char* name, const cpu_incarnation_options& opts, doorbell* bell)
    : kernel_(make_config(name, opts, bell)), complete_callers_(opts.complete_callers) {}

cpu_incarnation::~cpu_incarnation() {
  if (kernel_.running()) (void)kernel_.stop(std::chrono::milliseconds(1000));  // nobody to tell how it ended
}

bool cpu_incarnation::finished() noexcept { return kernel_.control().finished(); }

void cpu_incarnation::abandon() noexcept {
  abandoned_ = true;
  // Nobody reads its replies any more: a short drain budget, then it exits (faulted if stuck).
  if (kernel_.running()) kernel_.request_stop(std::chrono::milliseconds(100));
}

bool cpu_incarnation::restart() {
  if (abandoned_ || !kernel_.control().finished()) return false;
  (void)kernel_.stop(std::chrono::milliseconds(0));  // joins the finished thread (its outcome is known)
  discard_ring(channel_->requests());
  discard_ring(channel_->replies());
  kernel_.start();  // new epoch, resumes at the rings' (now empty) positions
  return true;
}

bool cpu_incarnation::stop(std::chrono::milliseconds timeout) {
  if (!kernel_.running()) return kernel_.control().current_state() != kernel_state::faulted;
  return kernel_.stop(timeout) == cpu::stop_outcome::stopped;
}

pooled_cpu_incarnation::~pooled_cpu_incarnation() {
  // Nobody to tell how it ended. A ring still inside a hung handler outlives this object (the
  // pool holds it); it must not ring the completion bell of an owner that may be gone by then.
  if (!ring_->finished() && !ring_->stop(std::chrono::milliseconds(1000))) ring_->release_completion_bell();
}

bool pooled_cpu_incarnation::stop(std::chrono::milliseconds timeout) {
  if (ring_->finished()) return ring_->control().current_state() != kernel_state::faulted;
  return ring_->stop(timeout);
}

void pooled_cpu_incarnation::abandon() noexcept {
  abandoned_ = true;
  ring_->request_stop(std::chrono::milliseconds(100));  // as cpu_incarnation::abandon()
}

bool pooled_cpu_incarnation::restart() {
  if (abandoned_ || !ring_->finished()) return false;
  discard_ring(ring_->chan().requests());
  discard_ring(ring_->chan().replies());
  return ring_->restart();
}

}  // namespace detail
}  // namespace ringflow

// The CPU incarnation of a ring kernel: see ringflow/cpu/cpu_incarnation.hpp.
#include "ringflow/cpu/cpu_incarnation.hpp"

namespace ringflow::detail {

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

}  // namespace ringflow::detail

// The kernel-host device: see ringflow/process/kernel_host_device.hpp.
#include "ringflow/process/kernel_host_device.hpp"

#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <stdexcept>

#include "host_incarnation.hpp"
#include "ringflow/process/segment.hpp"

namespace ringflow::process {

kernel_host_device::kernel_host_device(std::string id, kernel_host_options opts)
    : id_(std::move(id)), opts_(std::move(opts)) {}

kernel_host_device::~kernel_host_device() = default;

std::shared_ptr<kernel_host_device> kernel_host_device::make(std::string id, kernel_host_options opts) {
  // cuda / hip: the worker owns the device context (whether its program links that backend is
  // the worker's to say: it refuses a segment naming a backend it lacks). "emulated": only a test's
  // worker program registers it; the `ringflow` program's workers refuse it.
  if (opts.backend != "cpu" && opts.backend != "sim" && !is_gpu_worker_backend(opts.backend))
    throw std::invalid_argument("kernel host: unknown backend '" + opts.backend + "' (cpu, sim, cuda or hip)");
  if (!opts.standing_faults.empty() && opts.backend != "sim")
    throw std::invalid_argument("kernel host: fault rules need the sim backend in the worker");
  if (opts.standing_faults.size() > host_segment_header::max_rules)
    throw std::invalid_argument("kernel host: at most " + std::to_string(host_segment_header::max_rules) +
                                " standing fault rules");
  if (opts.segment_prefix.empty() || opts.segment_prefix.find_first_of("/.") != std::string::npos)
    throw std::invalid_argument("kernel host: segment_prefix must be non-empty without '/' or '.'");
  if (opts.monitor_interval.count() <= 0 || opts.liveness_interval.count() <= 0 || opts.start_timeout.count() <= 0)
    throw std::invalid_argument("kernel host: monitor_interval, liveness_interval and start_timeout must be > 0");
  if (opts.heartbeat_timeout <= std::max(opts.liveness_interval, std::chrono::milliseconds(1)) * 2)
    throw std::invalid_argument("kernel host: heartbeat_timeout must exceed twice the liveness interval");
  if (!opts.kernels) throw std::invalid_argument("kernel host: no kernel lookup (kernel_host_options::kernels)");
  return std::shared_ptr<kernel_host_device>(new kernel_host_device(std::move(id), std::move(opts)));
}

reinit_outcome kernel_host_device::reinitialize(std::string& detail) {
  reinits_.fetch_add(1, std::memory_order_relaxed);
  detail = "the next incarnation starts in a fresh worker process";
  return reinit_outcome::ok;
}

incarnation_factory kernel_host_device::factory(const std::string& kernel, cpu_incarnation_options cpu) {
  std::optional<hosted_kernel> k = opts_.kernels.find(kernel);
  if (!k)
    throw std::invalid_argument("kernel host: unknown kernel '" + kernel +
                                "' (known: " + (opts_.kernels.names ? opts_.kernels.names() : std::string()) + ")");
  return [self = shared_from_this(), k = std::move(*k), cpu](doorbell* bell) -> std::unique_ptr<incarnation> {
    return std::make_unique<host_incarnation>(self, k, cpu, bell);
  };
}

void kernel_host_device::enlist(host_incarnation* h) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.push_back(h);
}

void kernel_host_device::discharge(host_incarnation* h) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(live_, h);
}

std::vector<std::string> kernel_host_device::unlink_leftovers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (host_incarnation* h : live_) {  // leaked, so never destroyed: the pointers stay valid
    (void)h->signal(SIGKILL);
    if (::shm_unlink(h->segment_name().c_str()) == 0) out.push_back(h->segment_name());
  }
  return out;
}

void kernel_host_device::worker_started() {
  starts_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t owed = owed_replacements_.load();
  while (owed > 0 && !owed_replacements_.compare_exchange_weak(owed, owed - 1)) {}
  if (owed > 0) restarts_.fetch_add(1, std::memory_order_relaxed);
}

void kernel_host_device::worker_ended(bool clean, std::uint64_t fired) {
  fired_done_.fetch_add(fired, std::memory_order_relaxed);
  if (clean) return;
  failures_.fetch_add(1, std::memory_order_relaxed);
  owed_replacements_.fetch_add(1);
}

std::size_t kernel_host_device::signal_workers(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (host_incarnation* h : live_) n += h->signal(sig) ? 1 : 0;
  return n;
}

std::size_t kernel_host_device::inject(const sim::fault_rule& rule) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (host_incarnation* h : live_)
    if (!h->finished()) {
      h->inject(rule);
      ++n;
    }
  return n;
}

namespace {
template <class Live>
std::vector<pid_t> pids_of(std::mutex& mu, const Live& live, pid_t (host_incarnation::*which)()) {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<pid_t> out;
  for (host_incarnation* h : live)
    if (const pid_t p = (h->*which)(); p > 0) out.push_back(p);
  return out;
}
}  // namespace

std::vector<pid_t> kernel_host_device::worker_pids() const { return pids_of(mu_, live_, &host_incarnation::pid); }

std::vector<pid_t> kernel_host_device::standby_pids() const {
  return pids_of(mu_, live_, &host_incarnation::standby_pid);
}

std::uint64_t kernel_host_device::faults_fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t n = fired_done_.load(std::memory_order_relaxed);
  for (host_incarnation* h : live_)
    if (!h->finished()) n += h->faults_fired_now();
  return n;
}

}  // namespace ringflow::process

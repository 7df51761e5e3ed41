// The service side of one kernel-host worker: see host_incarnation.hpp.
#include "host_incarnation.hpp"
#include "ringflow/wait_policy.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

namespace ringflow::process {

namespace {

using clock = std::chrono::steady_clock;

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "ended (status " + std::to_string(status) + ")";
}

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = 0;
  return buf;
}

void copy_name(char* dst, std::size_t cap, const std::string& src) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, src.data(), std::min(cap - 1, src.size()));
}

}  // namespace

host_incarnation::host_incarnation(std::shared_ptr<kernel_host_device> dev, hosted_kernel k,
                                   const cpu_incarnation_options& cpu, doorbell* completion_bell)
    : dev_(std::move(dev)), kernel_(std::move(k)), completion_(completion_bell) {
  const kernel_host_options& o = dev_->options();
  backend_ = "kernel-host:" + o.backend;
  // A stateful kernel's snapshot and restore travel in the rings: the segment's rings get the
  // room the worker's kernel would give its own (with_state_room), so both sides see one geometry.
  const cpu_incarnation_options sized = with_state_room(cpu, kernel_.state_bytes);
  const ring_config rq = sized.rings.requests, rp = sized.rings.replies;
  ring_storage::validate(rq);
  ring_storage::validate(rp);
  layout_ = segment_layout::of(rq, rp);
  seg_ = shm_mapping::create(o.segment_prefix, kernel_.name, layout_.total);
  workers_ =
      std::make_unique<worker_processes>(o.program.empty() ? self_executable() : o.program, seg_.name(), o.worker_args);
  requests_ = std::make_unique<ring_storage>(rq, seg_.base() + layout_.requests, true);
  replies_ = std::make_unique<ring_storage>(rp, seg_.base() + layout_.replies, true);
  max_batch_ = cpu.max_batch;
  dev_->enlist(this);
  try {
    launch();
  } catch (...) {
    dev_->discharge(this);  // the members clean up (the segment is unlinked)
    throw;
  }
}

host_incarnation::~host_incarnation() {
  kill_worker();
  if (monitor_.joinable()) monitor_.join();
  workers_->drop_standby();
  dev_->discharge(this);
}

bool host_incarnation::stop(std::chrono::milliseconds timeout) {
  if (!finished()) {
    shm_control_->request_stop();  // release: the worker sees everything published before
    kernel_bell_->ring();
    if (!wait_exit(timeout)) {
      fail(kernel_error::reply_stuck, "kernel host did not stop within " + std::to_string(timeout.count()) + " ms");
      wait_exit(std::chrono::milliseconds(5000));  // SIGKILLed: reaped within milliseconds
    }
  }
  return local_.current_state() == kernel_state::stopped;
}

void host_incarnation::abandon() noexcept {
  abandoned_ = true;
  kill_worker();  // a process, unlike a thread, can always be ended
}

bool host_incarnation::restart() {
  if (abandoned_ || !finished()) return false;
  if (monitor_.joinable()) monitor_.join();
  requests_->reset();
  replies_->reset();
  try {
    launch();
  } catch (const std::exception&) {
    return false;  // the ladder makes a new incarnation (and sees that start fail)
  }
  return true;
}

void host_incarnation::inject(const sim::fault_rule& r) {
  auto* h = header();
  h->inject_rule = to_wire(r);
  // The service's own count, not one read back from the segment (which the worker can write).
  store_release(h->inject_seq, ++inject_seq_);  // pairs with the worker's acquire
}

// Starts a worker on the (freshly formatted) segment and waits until its kernel runs.
void host_incarnation::launch() {
  if (workers_->program().empty())
    throw std::runtime_error("kernel host: no program to start (kernel_host_options::program)");
  auto* h = header();
  write_setup();  // all of it again: a previous worker may have scribbled over any of it
  store_release(h->generation, load_relaxed(h->generation) + 1);  // after the set-up line
  local_.reset(++epoch_);
  seen_ = peer_seen{};
  killed_.store(false);
  exited_.store(false, std::memory_order_release);

  std::string why;
  pid_t pid = 0;
  try {
    pid = workers_->launch();  // an activation's pipe write orders the formatting above before its read
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (why.empty()) await_start(pid, why);
  if (why.empty()) {
    set_local(kernel_state::running);
    dev_->worker_started();
    try {
      monitor_ = std::thread([this] {
        name_this_thread("rf-host-mon");
        monitor();
      });
      return;
    } catch (const std::exception& e) {
      why = std::string("kernel host: cannot start its monitor thread: ") + e.what();
    }
  }
  workers_->kill_and_reap();
  dev_->worker_ended(false, 0);
  fault_local(kernel_error::launch_failed, why);
  exited_.store(true, std::memory_order_release);  // nothing runs: finished, as a failed launch is
  throw std::runtime_error(why);
}

// Waits until the worker's kernel runs (it attaches, validates, starts its kernel); `why` says
// what went wrong otherwise.
void host_incarnation::await_start(pid_t pid, std::string& why) {
  const auto deadline = clock::now() + dev_->options().start_timeout;
  for (;;) {
    int status = 0;
    if (workers_->try_reap(status)) {
      why = "kernel host " + std::to_string(pid) + " " + describe_exit(status) + " during start-up";
      return;
    }
    const std::uint32_t raw = load_acquire(shm_control_->state);
    if (raw == static_cast<std::uint32_t>(kernel_state::running)) {
      // The worker wrote the version it speaks before it started its kernel (pairs with `running`).
      const std::uint32_t v = load_relaxed(header()->worker_version);
      if (v != host_segment_header::version_value)
        why = "kernel host " + std::to_string(pid) + " speaks segment protocol version " + std::to_string(v) +
              ", this service " + std::to_string(host_segment_header::version_value) +
              " (a worker program of another build): refused";
      return;
    }
    if (raw == static_cast<std::uint32_t>(kernel_state::faulted)) {
      why = "kernel host " + std::to_string(pid) + ": kernel faulted during start-up";
      return;
    }
    if (clock::now() > deadline) {
      why = "kernel host " + std::to_string(pid) + " did not start its kernel within " +
            std::to_string(dev_->options().start_timeout.count()) + " ms";
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // start-up poll period
  }
}

// The set-up line, the control block and the doorbells, from the service's own values.
void host_incarnation::write_setup() {
  const kernel_host_options& o = dev_->options();
  auto* h = header();
  h->magic = host_segment_header::magic_value;
  h->version = host_segment_header::version_value;
  h->total_bytes = layout_.total;
  h->service_pid = ::getpid();
  h->service_start = process_start_ticks(::getpid());
  copy_name(h->kernel, sizeof h->kernel, kernel_.name);
  copy_name(h->backend, sizeof h->backend, o.backend);
  h->requests = requests_->region().config();
  h->replies = replies_->region().config();
  h->max_batch = max_batch_;
  h->liveness_interval_us = static_cast<std::uint32_t>(std::chrono::microseconds(o.liveness_interval).count());
  h->rule_count =
      static_cast<std::uint32_t>(std::min<std::size_t>(o.standing_faults.size(), host_segment_header::max_rules));
  for (std::uint32_t i = 0; i < h->rule_count; ++i) h->rules[i] = to_wire(o.standing_faults[i]);
  store_relaxed(h->worker_pid, std::int64_t{0});
  store_relaxed(h->worker_generation, std::uint64_t{0});
  store_relaxed(h->liveness, std::uint64_t{0});
  store_relaxed(h->faults_fired, std::uint64_t{0});
  store_relaxed(h->worker_version, std::uint32_t{0});
  shm_control_ = new (seg_.base() + layout_.control) control_block();
  shm_control_->reset(0);
  shm_control_->set_state(kernel_state::idle);
  kernel_bell_ = new (seg_.base() + layout_.kernel_bell) doorbell(true);
  reply_bell_ = new (seg_.base() + layout_.reply_bell) doorbell(true);
}

// The service's own control block has two writers (the monitor mirroring, and fail() from the
// ladder's thread): state changes go through local_mu_ so a fault is never overwritten.
void host_incarnation::set_local(kernel_state st) {
  std::lock_guard<std::mutex> lock(local_mu_);
  if (!local_.finished()) local_.set_state(st);
}

void host_incarnation::fault_local(kernel_error code, const std::string& why, std::uint32_t flags) {
  std::lock_guard<std::mutex> lock(local_mu_);
  if (!local_.finished()) local_.fault(code, flags, why.c_str());
}

void host_incarnation::kill_worker() noexcept {
  killed_.store(true);
  workers_->signal(SIGKILL);
}

/// A fault found by the service: the worker is not trusted any more — kill it.
void host_incarnation::fail(kernel_error code, const std::string& why) {
  kill_worker();
  fault_local(code, why);
}

bool host_incarnation::wait_exit(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(exit_mu_);
  return exit_cv_.wait_for(lock, timeout, [&] { return exited_.load(std::memory_order_acquire); });
}

// ---- the monitor thread ------------------------------------------------------------------------------

bool host_incarnation::check_and_mirror(kernel_error& code, std::string& why) {
  peer_verdict v = check_peer(*shm_control_, *requests_, *replies_, seen_, local_);
  if (!v.ok) {
    code = v.code;
    why = std::move(v.why);
    return false;
  }
  if (v.change) {
    if (v.change->state == kernel_state::faulted) fault_local(v.change->error, v.change->detail, v.change->error_flags);
    else set_local(v.change->state);
  }
  return true;
}

void host_incarnation::monitor() noexcept {
  const kernel_host_options& o = dev_->options();
  auto* h = header();
  std::uint64_t live = load_relaxed(h->liveness);
  auto live_at = clock::now();
  std::uint64_t rung_tail = 0;
  const pid_t pid = workers_->pid();
  if (o.standby && !abandoned_ && !killed_.load()) workers_->ensure_standby();
  for (;;) {
    int status = 0;
    workers_->reap_dead_standby();
    // A standby silent past the heartbeat timeout, or stopped, is replaced now (off the restart
    // path), so a restart never waits on it for start_timeout.
    if (workers_->check_standby(o.heartbeat_timeout, o.start_timeout) && o.standby && !abandoned_ && !killed_.load())
      workers_->ensure_standby();
    if (workers_->try_reap(status)) {
      on_exit(pid, status);
      return;
    }
    if (!killed_.load()) {
      kernel_error code = kernel_error::none;
      std::string why;
      if (!check_and_mirror(code, why)) fail(code, why);
      const std::uint64_t l = load_relaxed(h->liveness);  // only "did it move" matters
      if (l != live) {
        live = l;
        live_at = clock::now();
      } else if (clock::now() - live_at > o.heartbeat_timeout) {
        fail(kernel_error::crashed, "kernel host " + std::to_string(pid) + ": heartbeat lost (no sign of life for " +
                                        std::to_string(o.heartbeat_timeout.count()) + " ms)");
      }
    }
    bridge_replies(rung_tail);
  }
}

// Bridge: the worker rings the shared reply bell; the poller parks on a process-local one. One
// ring per new tail value (a reply the poller already took needs none). The service's wait on the
// shared bell is bounded (monitor_interval): a worker that never rings it cannot stall the monitor.
void host_incarnation::bridge_replies(std::uint64_t& rung_tail) {
  ring_observer rep(replies_->region());
  const std::uint64_t tail = rep.tail();
  if (tail != rung_tail) {
    if (tail > rep.head() && completion_) completion_->ring();
    rung_tail = tail;
  }
  const doorbell::token t = reply_bell_->prepare_wait();
  if (rep.tail() != rung_tail) {
    reply_bell_->cancel_wait();
    return;
  }
  reply_bell_->wait(t, dev_->options().monitor_interval);
}

void host_incarnation::on_exit(pid_t pid, int status) {
  if (!killed_.load()) {
    kernel_error code = kernel_error::none;
    std::string why;
    if (!check_and_mirror(code, why)) fault_local(code, why);
  }
  fault_local(kernel_error::crashed,
              "kernel host " + std::to_string(pid) + " " + describe_exit(status) + " without stopping");
  const bool clean = local_.current_state() == kernel_state::stopped;
  dev_->worker_ended(clean, faults_fired_now());
  if (completion_) completion_->ring();  // the poller takes the last replies
  {
    std::lock_guard<std::mutex> lock(exit_mu_);
    exited_.store(true, std::memory_order_release);
  }
  exit_cv_.notify_all();
}

}  // namespace ringflow::process

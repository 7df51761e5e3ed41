// The service side of one kernel-host worker: an incarnation whose kernel runs in another process
// (internal to backends/process; see ringflow/process/kernel_host_device.hpp for the contract).
//
// Threads: the ladder's thread constructs, stops, restarts, abandons and destroys; one monitor
// thread per worker generation reaps the worker, checks and mirrors what it wrote (peer_check),
// watches its liveness and bridges its reply bell to the completion poller's; kernel_host_device
// calls pid()/standby_pid()/signal()/inject()/faults_fired_now() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "peer_check.hpp"
#include "ringflow/process/kernel_host_device.hpp"
#include "ringflow/process/segment.hpp"
#include "ringflow/ring_storage.hpp"
#include "worker_processes.hpp"

namespace ringflow::process {

class host_incarnation final : public incarnation {
 public:
  host_incarnation(std::shared_ptr<kernel_host_device> dev, hosted_kernel k, const cpu_incarnation_options& cpu,
                   doorbell* completion_bell);
  ~host_incarnation() override;

  const char* backend() const noexcept override { return backend_.c_str(); }
  const char* kernel_name() const noexcept override { return kernel_.name.c_str(); }
  type_id request_type() const noexcept override { return kernel_.request_id; }
  type_id reply_type() const noexcept override { return kernel_.reply_id; }
  std::uint32_t state_bytes() const noexcept override { return kernel_.state_bytes; }
  ring_region requests() noexcept override { return requests_->region(); }
  std::uint64_t* request_producer_scratch() noexcept override { return requests_->producer_scratch(); }
  ring_region replies() noexcept override { return replies_->region(); }
  void notify() noexcept override { kernel_bell_->ring(); }
  bool finished() noexcept override { return exited_.load(std::memory_order_acquire); }
  control_block& control() noexcept override { return local_; }
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  bool restart() override;

  pid_t pid() { return workers_->pid(); }
  pid_t standby_pid() { return workers_->standby_pid(); }
  bool signal(int sig) { return workers_->signal(sig); }
  /// Sim workers: a new rule for the worker's injector (inject_rule, then inject_seq released).
  void inject(const sim::fault_rule& r);
  std::uint64_t faults_fired_now() const { return load_relaxed(header()->faults_fired); }
  /// The shared-memory segment's name (unlinked by the destructor).
  const std::string& segment_name() const noexcept { return seg_.name(); }

 private:
  host_segment_header* header() const { return reinterpret_cast<host_segment_header*>(seg_.base()); }
  void launch();
  void await_start(pid_t pid, std::string& why);
  void write_setup();
  void set_local(kernel_state st);
  void fault_local(kernel_error code, const std::string& why, std::uint32_t flags = 0);
  void kill_worker() noexcept;
  void fail(kernel_error code, const std::string& why);
  bool wait_exit(std::chrono::milliseconds timeout);
  bool check_and_mirror(kernel_error& code, std::string& why);
  void monitor() noexcept;
  void bridge_replies(std::uint64_t& rung_tail);
  void on_exit(pid_t pid, int status);

  std::shared_ptr<kernel_host_device> dev_;
  const hosted_kernel kernel_;
  doorbell* completion_;
  std::string backend_;
  segment_layout layout_;
  shm_mapping seg_;
  std::unique_ptr<worker_processes> workers_;
  control_block* shm_control_ = nullptr;
  doorbell* kernel_bell_ = nullptr;
  doorbell* reply_bell_ = nullptr;
  std::unique_ptr<ring_storage> requests_, replies_;
  control_block local_{};  // the service's own block: what the ladder reads (mirrored after checks)
  std::uint64_t epoch_ = 0;
  std::uint32_t inject_seq_ = 0;  // the last inject_seq written (calls into inject() are serialised by the device)
  peer_seen seen_;                // monitor-owned (reset at each launch, before the monitor starts)

  std::mutex local_mu_;  // state changes of local_ (the monitor mirroring, fail() from the ladder)
  std::uint32_t max_batch_ = 32;
  std::atomic<bool> killed_{false};
  std::atomic<bool> exited_{true};
  std::atomic<bool> abandoned_{false};
  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  std::thread monitor_;
};

}  // namespace ringflow::process

// Kernel hosts: ring kernels in supervised worker processes. See ringflow/runtime/kernel_host.hpp.
#include "ringflow/runtime/kernel_host.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ringflow/cpu/ring_storage.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/sim/sim_device.hpp"

extern char** environ;

namespace ringflow::ops {

namespace {

using clock = std::chrono::steady_clock;

std::uint64_t round128(std::uint64_t x) { return (x + 127) / 128 * 128; }

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 when unreadable.
std::uint64_t process_start_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(in >> field)) return 0;
  try {
    return std::stoull(field);
  } catch (...) {
    return 0;
  }
}

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

host_segment_header::rule to_wire(const sim::fault_rule& r) {
  host_segment_header::rule w{};
  w.kind = static_cast<std::uint32_t>(r.kind);
  w.times = r.times;
  w.at_message = r.at_message;
  w.probability = r.probability;
  w.latency_us = static_cast<std::uint32_t>(r.latency.count());
  return w;
}

/// A rule from the wire (the worker side; the service wrote it). nullopt when malformed.
std::optional<sim::fault_rule> from_wire(const host_segment_header::rule& w, std::uint64_t seen) {
  if (w.kind >= sim::fault_kind_count) return std::nullopt;
  sim::fault_rule r;
  r.kind = static_cast<sim::fault_kind>(w.kind);
  r.times = w.times;
  r.at_message = w.at_message ? seen + w.at_message : 0;
  r.probability = w.probability;
  r.latency = std::chrono::microseconds(w.latency_us);
  if (r.at_message == 0 && r.probability <= 0) return std::nullopt;
  return r;
}

/// A POSIX shared-memory mapping; unlinks its name when destroyed (if it created it).
struct shm_mapping {
  std::string name;
  byte* base = nullptr;
  std::size_t bytes = 0;
  bool owner = false;
  shm_mapping() = default;
  shm_mapping(const shm_mapping&) = delete;
  shm_mapping& operator=(const shm_mapping&) = delete;
  ~shm_mapping() {
    if (base) ::munmap(base, bytes);
    if (owner) ::shm_unlink(name.c_str());
  }
};

std::atomic<std::uint64_t> g_segment_counter{0};

}  // namespace

segment_layout segment_layout::of(const ring_config& requests, const ring_config& replies) {
  segment_layout l;
  l.control = round128(sizeof(host_segment_header));
  l.kernel_bell = round128(l.control + sizeof(control_block));
  l.reply_bell = round128(l.kernel_bell + sizeof(cpu::doorbell));
  l.requests = round128(l.reply_bell + sizeof(cpu::doorbell));
  l.replies = round128(l.requests + ring_layout{requests}.bytes());
  l.total = round128(l.replies + ring_layout{replies}.bytes());
  return l;
}

// ---------------------------------------------------------------------------------------------
// The service side of one worker.

class host_incarnation final : public incarnation {
 public:
  host_incarnation(std::shared_ptr<kernel_host_device> dev, const kernel_info& k, const cpu_incarnation_options& cpu,
                   cpu::doorbell* completion_bell)
      : dev_(std::move(dev)), kernel_(k), completion_(completion_bell) {
    const kernel_host_options& o = dev_->options();
    backend_ = "kernel-host:" + o.backend;
    program_ = o.program.empty() ? self_executable() : o.program;
    const ring_config rq = cpu.rings.requests, rp = cpu.rings.replies;
    cpu::ring_storage::validate(rq);
    cpu::ring_storage::validate(rp);
    layout_ = segment_layout::of(rq, rp);
    create_segment(o.segment_prefix);
    requests_ = std::make_unique<cpu::ring_storage>(rq, seg_.base + layout_.requests, true);
    replies_ = std::make_unique<cpu::ring_storage>(rp, seg_.base + layout_.replies, true);
    max_batch_ = cpu.max_batch;
    dev_->enlist(this);
    try {
      launch();
    } catch (...) {
      dev_->discharge(this);  // the members clean up (the segment is unlinked)
      throw;
    }
  }

  ~host_incarnation() override {
    kill_worker();
    if (monitor_.joinable()) monitor_.join();
    drop_standby();
    dev_->discharge(this);
  }

  const char* backend() const noexcept override { return backend_.c_str(); }
  const char* kernel_name() const noexcept override { return kernel_.name.c_str(); }
  type_id request_type() const noexcept override { return kernel_.request_id; }
  type_id reply_type() const noexcept override { return kernel_.reply_id; }
  ring_region requests() noexcept override { return requests_->region(); }
  std::uint64_t* request_producer_scratch() noexcept override { return requests_->producer_scratch(); }
  ring_region replies() noexcept override { return replies_->region(); }
  void notify() noexcept override { kernel_bell_->ring(); }
  bool finished() noexcept override { return exited_.load(std::memory_order_acquire); }
  control_block& control() noexcept override { return local_; }

  bool stop(std::chrono::milliseconds timeout) override {
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

  void abandon() noexcept override {
    abandoned_ = true;
    kill_worker();  // a process, unlike a thread, can always be ended
  }

  bool restart() override {
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

  pid_t pid() {
    std::lock_guard<std::mutex> lock(pid_mu_);
    return pid_;
  }
  pid_t standby_pid() {
    std::lock_guard<std::mutex> lock(pid_mu_);
    return standby_;
  }
  /// Sends `sig` to the worker if it is still ours (not reaped). True if sent.
  bool signal(int sig) {
    std::lock_guard<std::mutex> lock(pid_mu_);
    if (pid_ <= 0) return false;
    return ::kill(pid_, sig) == 0;
  }
  void inject(const sim::fault_rule& r) {
    auto* h = header();
    h->inject_rule = to_wire(r);
    store_release(h->inject_seq, load_relaxed(h->inject_seq) + 1);
  }
  std::uint64_t faults_fired_now() const { return load_relaxed(header()->faults_fired); }

 private:
  host_segment_header* header() const { return reinterpret_cast<host_segment_header*>(seg_.base); }

  void create_segment(const std::string& prefix) {
    seg_.name = "/" + prefix + "." + std::to_string(::getpid()) + "." + std::to_string(process_start_ticks(::getpid())) +
                "." + std::to_string(g_segment_counter.fetch_add(1)) + "." + kernel_.name;
    const int fd = ::shm_open(seg_.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) throw std::runtime_error("kernel host: shm_open " + seg_.name + ": " + std::strerror(errno));
    seg_.owner = true;
    seg_.bytes = layout_.total;
    if (::ftruncate(fd, static_cast<off_t>(seg_.bytes)) != 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("kernel host: sizing " + seg_.name + ": " + std::strerror(e));
    }
    void* p = ::mmap(nullptr, seg_.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the segment
    if (p == MAP_FAILED) throw std::runtime_error("kernel host: mmap " + seg_.name + ": " + std::strerror(e));
    seg_.base = static_cast<byte*>(p);
  }

  // Starts a worker on the (freshly formatted) segment and waits until its kernel runs.
  void launch() {
    const kernel_host_options& o = dev_->options();
    if (program_.empty()) throw std::runtime_error("kernel host: no program to start (kernel_host_options::program)");
    auto* h = header();
    write_setup();  // all of it again: a previous worker may have scribbled over any of it
    store_release(h->generation, load_relaxed(h->generation) + 1);
    local_.reset(++epoch_);
    last_state_ = 0;
    last_heartbeat_ = last_processed_ = last_req_head_ = last_rep_tail_ = 0;
    killed_.store(false);
    exited_.store(false, std::memory_order_release);

    std::string why;
    pid_t pid = 0;
    try {
      pid = activate_standby();  // the pipe write orders the formatting above before its read
      if (pid <= 0) pid = spawn(false, nullptr);
    } catch (const std::exception& e) {
      why = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(pid_mu_);
      pid_ = pid;
    }
    // Wait for the worker's kernel to run (it attaches, validates, starts its kernel).
    const auto deadline = clock::now() + o.start_timeout;
    for (; why.empty();) {
      int status = 0;
      if (try_reap(status)) {
        why = "kernel host " + std::to_string(pid) + " " + describe_exit(status) + " during start-up";
        break;
      }
      const std::uint32_t raw = load_acquire(shm_control_->state);
      if (raw == static_cast<std::uint32_t>(kernel_state::running)) break;
      if (raw == static_cast<std::uint32_t>(kernel_state::faulted)) {
        why = "kernel host " + std::to_string(pid) + ": kernel faulted during start-up";
        break;
      }
      if (clock::now() > deadline) {
        why = "kernel host " + std::to_string(pid) + " did not start its kernel within " +
              std::to_string(o.start_timeout.count()) + " ms";
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // start-up poll period
    }
    if (why.empty()) {
      set_local(kernel_state::running);
      dev_->worker_started();
      try {
        monitor_ = std::thread([this] { monitor(); });
        return;
      } catch (const std::exception& e) {
        why = std::string("kernel host: cannot start its monitor thread: ") + e.what();
      }
    }
    kill_and_reap();
    dev_->worker_ended(false, 0);
    fault_local(kernel_error::launch_failed, why);
    exited_.store(true, std::memory_order_release);  // nothing runs: finished, as a failed launch is
    throw std::runtime_error(why);
  }

  // The set-up line, the control block and the doorbells, from the service's own values.
  void write_setup() {
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
    h->rule_count = static_cast<std::uint32_t>(std::min<std::size_t>(o.standing_faults.size(), host_segment_header::max_rules));
    for (std::uint32_t i = 0; i < h->rule_count; ++i) h->rules[i] = to_wire(o.standing_faults[i]);
    store_relaxed(h->worker_pid, std::int64_t{0});
    store_relaxed(h->worker_generation, std::uint64_t{0});
    store_relaxed(h->liveness, std::uint64_t{0});
    store_relaxed(h->faults_fired, std::uint64_t{0});
    shm_control_ = new (seg_.base + layout_.control) control_block();
    shm_control_->reset(0);
    shm_control_->set_state(kernel_state::idle);
    kernel_bell_ = new (seg_.base + layout_.kernel_bell) cpu::doorbell(true);
    reply_bell_ = new (seg_.base + layout_.reply_bell) cpu::doorbell(true);
  }

  // The service's own control block has two writers (the monitor mirroring, and fail() from the
  // ladder's thread): state changes go through local_mu_ so a fault is never overwritten.
  void set_local(kernel_state st) {
    std::lock_guard<std::mutex> lock(local_mu_);
    if (!local_.finished()) local_.set_state(st);
  }
  void fault_local(kernel_error code, const std::string& why, std::uint32_t flags = 0) {
    std::lock_guard<std::mutex> lock(local_mu_);
    if (!local_.finished()) local_.fault(code, flags, why.c_str());
  }

  // Starts `program kernel-host --segment NAME [--standby]` with default signal handling and an
  // empty signal mask (the service blocks its signals for sigwait). `standby_pipe`: the read end
  // becomes the worker's file descriptor 3.
  pid_t spawn(bool standby, const int* standby_pipe) {
    std::vector<std::string> args = {program_, "kernel-host", "--segment", seg_.name};
    if (standby) args.push_back("--standby");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&fa);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setsigdefault(&attr, &defaults);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (standby_pipe) ::posix_spawn_file_actions_adddup2(&fa, standby_pipe[0], 3);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, program_.c_str(), &fa, &attr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&fa);
    ::posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("kernel host: cannot start " + program_ + ": " + std::strerror(rc));
    return pid;
  }
  // Hands the segment to the standby (one byte on its pipe); its pid, or 0 when there is none alive.
  pid_t activate_standby() {
    std::lock_guard<std::mutex> lock(pid_mu_);
    const pid_t p = standby_;
    const int fd = standby_fd_;
    standby_ = 0;
    standby_fd_ = -1;
    if (p <= 0) return 0;
    int status = 0;
    const bool alive = ::waitpid(p, &status, WNOHANG) == 0;
    const bool told = alive && ::write(fd, "a", 1) == 1;
    ::close(fd);  // a standby not told reads end of file and exits
    if (alive && !told) {
      ::kill(p, SIGKILL);
      ::waitpid(p, &status, 0);
    }
    return told ? p : 0;
  }
  // Starts a standby if there is none (monitor thread: off the recovery path).
  void ensure_standby() noexcept {
    if (!dev_->options().standby || abandoned_ || killed_.load()) return;
    std::lock_guard<std::mutex> lock(pid_mu_);
    if (standby_ > 0) return;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;  // no standby: the next restart starts a process
    try {
      standby_ = spawn(true, fds);
      standby_fd_ = fds[1];
    } catch (const std::exception&) {
      standby_ = 0;
      ::close(fds[1]);
    }
    ::close(fds[0]);
  }
  void reap_dead_standby() noexcept {
    std::lock_guard<std::mutex> lock(pid_mu_);
    int status = 0;
    if (standby_ > 0 && ::waitpid(standby_, &status, WNOHANG) != 0) {
      standby_ = 0;
      ::close(standby_fd_);
      standby_fd_ = -1;
    }
  }
  void drop_standby() noexcept {
    std::lock_guard<std::mutex> lock(pid_mu_);
    if (standby_fd_ >= 0) ::close(standby_fd_);
    standby_fd_ = -1;
    if (standby_ <= 0) return;
    ::kill(standby_, SIGKILL);
    int status = 0;
    while (::waitpid(standby_, &status, 0) < 0 && errno == EINTR) {
    }
    standby_ = 0;
  }

  // Reaps the active worker if it has exited (under pid_mu_: no signal can reach a reused pid).
  // A worker reaped by someone else (SIGCHLD ignored, waitpid(-1) in the host application) counts
  // as exited with an unknown status.
  bool try_reap(int& status) {
    std::lock_guard<std::mutex> lock(pid_mu_);
    if (pid_ <= 0) return true;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno != ECHILD)) return false;
    if (r < 0) status = 0;
    pid_ = 0;
    return true;
  }

  void kill_and_reap() {
    std::lock_guard<std::mutex> lock(pid_mu_);
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
  }
  void kill_worker() noexcept {
    killed_.store(true);
    signal(SIGKILL);
  }
  /// A fault found by the service: the worker is not trusted any more — kill it.
  void fail(kernel_error code, const std::string& why) {
    kill_worker();
    fault_local(code, why);
  }

  bool wait_exit(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(exit_mu_);
    return exit_cv_.wait_for(lock, timeout, [&] { return exited_.load(std::memory_order_acquire); });
  }

  // Checks what the worker wrote and mirrors it into local_. False (with code and why) when
  // something cannot be right.
  bool check_and_mirror(kernel_error& code, std::string& why) {
    control_block& s = *shm_control_;
    const std::uint32_t raw = load_acquire(s.state);
    if (raw > static_cast<std::uint32_t>(kernel_state::faulted)) {
      code = kernel_error::internal;
      why = "kernel host: control block corrupt (state " + std::to_string(raw) + ")";
      return false;
    }
    static constexpr int rank[] = {0, 1, 2, 3, 4, 4};
    if (rank[raw] < rank[last_state_]) {
      code = kernel_error::internal;
      why = std::string("kernel host: control block corrupt (state went back from ") +
            to_string(static_cast<kernel_state>(last_state_)) + " to " + to_string(static_cast<kernel_state>(raw)) + ")";
      return false;
    }
    const std::uint64_t hb = load_relaxed(s.heartbeat), done = load_relaxed(s.processed);
    if (hb < last_heartbeat_ || done < last_processed_) {
      code = kernel_error::internal;
      why = "kernel host: control block corrupt (heartbeat or processed count went back)";
      return false;
    }
    const ring_config rq = requests_->region().config();
    const ring_config rp = replies_->region().config();
    if (!requests_->region().config_intact() || !replies_->region().config_intact()) {
      code = kernel_error::bad_ring;
      why = "kernel host: a ring's config line was overwritten";
      return false;
    }
    ring_observer req(requests_->region()), rep(replies_->region());
    const std::uint64_t req_head = load_acquire(requests_->region().shared()->head);
    const std::uint64_t req_tail = req.tail();
    if (req_head < last_req_head_ || req_head > req_tail + rq.capacity) {
      code = kernel_error::bad_ring;
      why = "kernel host: request ring head corrupt (" + std::to_string(req_head) + ", was " +
            std::to_string(last_req_head_) + ", tail " + std::to_string(req_tail) + ")";
      return false;
    }
    const std::uint64_t rep_tail = load_acquire(replies_->region().shared()->tail);
    const std::uint64_t rep_head = rep.head();
    if (rep_tail < last_rep_tail_ || rep_tail > rep_head + 2ull * rp.capacity) {
      code = kernel_error::bad_ring;
      why = "kernel host: response ring tail corrupt (" + std::to_string(rep_tail) + ", was " +
            std::to_string(last_rep_tail_) + ", head " + std::to_string(rep_head) + ")";
      return false;
    }
    last_req_head_ = req_head;
    last_rep_tail_ = rep_tail;
    last_heartbeat_ = hb;
    last_processed_ = done;
    store_relaxed(local_.heartbeat, hb);
    store_relaxed(local_.processed, done);
    store_relaxed(local_.handler_errors, load_relaxed(s.handler_errors));
    store_relaxed(local_.rejected, load_relaxed(s.rejected));
    store_relaxed(local_.last_progress, std::min(load_relaxed(s.last_progress), hb));
    if (raw != last_state_) {
      const auto st = static_cast<kernel_state>(raw);
      if (st == kernel_state::faulted) {
        const std::uint32_t ec = load_acquire(s.error_code);
        if (ec == 0 || ec > static_cast<std::uint32_t>(kernel_error::device_lost)) {
          code = kernel_error::internal;
          why = "kernel host: control block corrupt (faulted with error code " + std::to_string(ec) + ")";
          return false;
        }
        char detail[control_block::detail_bytes];
        std::memcpy(detail, s.error_detail, sizeof detail);  // written before error_code's release
        detail[control_block::detail_bytes - 1] = 0;
        const std::uint32_t flags = load_relaxed(s.error_flags) & kernel_error_flags::sticky;
        fault_local(static_cast<kernel_error>(ec), detail, flags);
      } else if (st != kernel_state::idle && st != kernel_state::starting) {
        set_local(st);
      }
      last_state_ = raw;
    }
    return true;
  }

  void monitor() noexcept {
    const kernel_host_options& o = dev_->options();
    auto* h = header();
    std::uint64_t live = load_relaxed(h->liveness);
    auto live_at = clock::now();
    std::uint64_t rung_tail = 0;
    const pid_t pid = this->pid();
    ring_observer rep(replies_->region());
    ensure_standby();
    for (;;) {
      int status = 0;
      reap_dead_standby();
      if (try_reap(status)) {
        on_exit(pid, status);
        return;
      }
      if (!killed_.load()) {
        kernel_error code = kernel_error::none;
        std::string why;
        if (!check_and_mirror(code, why)) fail(code, why);
        const std::uint64_t l = load_relaxed(h->liveness);
        if (l != live) {
          live = l;
          live_at = clock::now();
        } else if (clock::now() - live_at > o.heartbeat_timeout) {
          fail(kernel_error::crashed, "kernel host " + std::to_string(pid) + ": heartbeat lost (no sign of life for " +
                                          std::to_string(o.heartbeat_timeout.count()) + " ms)");
        }
      }
      // Bridge: the worker rings the shared reply bell; the poller parks on a process-local one.
      // One ring per new tail value (a reply the poller already took needs none).
      const std::uint64_t tail = rep.tail();
      if (tail != rung_tail) {
        if (tail > rep.head() && completion_) completion_->ring();
        rung_tail = tail;
      }
      const cpu::doorbell::token t = reply_bell_->prepare_wait();
      if (rep.tail() != rung_tail) {
        reply_bell_->cancel_wait();
        continue;
      }
      reply_bell_->wait(t, o.monitor_interval);
    }
  }

  void on_exit(pid_t pid, int status) {
    if (!killed_.load()) {
      kernel_error code = kernel_error::none;
      std::string why;
      if (!check_and_mirror(code, why)) fault_local(code, why);
    }
    fault_local(kernel_error::crashed, "kernel host " + std::to_string(pid) + " " + describe_exit(status) + " without stopping");
    const bool clean = local_.current_state() == kernel_state::stopped;
    dev_->worker_ended(clean, faults_fired_now());
    if (completion_) completion_->ring();  // the poller takes the last replies
    {
      std::lock_guard<std::mutex> lock(exit_mu_);
      exited_.store(true, std::memory_order_release);
    }
    exit_cv_.notify_all();
  }

  std::shared_ptr<kernel_host_device> dev_;
  const kernel_info& kernel_;
  cpu::doorbell* completion_;
  std::string backend_;
  std::string program_;
  segment_layout layout_;
  shm_mapping seg_;
  control_block* shm_control_ = nullptr;
  cpu::doorbell* kernel_bell_ = nullptr;
  cpu::doorbell* reply_bell_ = nullptr;
  std::unique_ptr<cpu::ring_storage> requests_, replies_;
  control_block local_{};
  std::uint64_t epoch_ = 0;
  // monitor-owned check state
  std::uint32_t last_state_ = 0;
  std::uint64_t last_heartbeat_ = 0, last_processed_ = 0, last_req_head_ = 0, last_rep_tail_ = 0;

  std::mutex pid_mu_;
  pid_t pid_ = 0;      // (pid_mu_) the active worker; 0 once reaped
  pid_t standby_ = 0;     // (pid_mu_) the standby worker; 0 when there is none
  int standby_fd_ = -1;   // (pid_mu_) the write end of its pipe
  std::mutex local_mu_;   // state changes of local_
  std::uint32_t max_batch_ = 32;
  std::atomic<bool> killed_{false};
  std::atomic<bool> exited_{true};
  std::atomic<bool> abandoned_{false};
  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  std::thread monitor_;
};

// ---------------------------------------------------------------------------------------------
// The device.

kernel_host_device::kernel_host_device(std::string id, kernel_host_options opts) : id_(std::move(id)), opts_(std::move(opts)) {}

kernel_host_device::~kernel_host_device() = default;

std::shared_ptr<kernel_host_device> kernel_host_device::make(std::string id, kernel_host_options opts) {
  if (opts.backend == "cuda" || opts.backend == "hip")
    throw std::invalid_argument("kernel host: backend '" + opts.backend +
                                "' is not available: the GPU backends are not built yet (use cpu or sim)");
  if (opts.backend != "cpu" && opts.backend != "sim")
    throw std::invalid_argument("kernel host: unknown backend '" + opts.backend + "' (cpu or sim)");
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
  return std::shared_ptr<kernel_host_device>(new kernel_host_device(std::move(id), std::move(opts)));
}

reinit_outcome kernel_host_device::reinitialize(std::string& detail) {
  reinits_.fetch_add(1, std::memory_order_relaxed);
  detail = "the next incarnation starts in a fresh worker process";
  return reinit_outcome::ok;
}

incarnation_factory kernel_host_device::factory(const std::string& kernel, cpu_incarnation_options cpu) {
  const kernel_info* k = find_kernel(kernel);
  if (!k) throw std::invalid_argument("kernel host: unknown kernel '" + kernel + "' (known: " + kernel_names() + ")");
  return [self = shared_from_this(), k, cpu](cpu::doorbell* bell) -> std::unique_ptr<incarnation> {
    return std::make_unique<host_incarnation>(self, *k, cpu, bell);
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

void kernel_host_device::worker_started() {
  starts_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t owed = owed_replacements_.load();
  while (owed > 0 && !owed_replacements_.compare_exchange_weak(owed, owed - 1)) {
  }
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
std::vector<pid_t> kernel_host_device::standby_pids() const { return pids_of(mu_, live_, &host_incarnation::standby_pid); }

std::uint64_t kernel_host_device::faults_fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::uint64_t n = fired_done_.load(std::memory_order_relaxed);
  for (host_incarnation* h : live_)
    if (!h->finished()) n += h->faults_fired_now();
  return n;
}

// ---------------------------------------------------------------------------------------------
// Segment hygiene.

namespace {
struct segment_name {
  long long pid = 0;
  unsigned long long start = 0;
};
std::optional<segment_name> parse_segment(const std::string& file, const std::string& prefix) {
  if (file.rfind(prefix + ".", 0) != 0) return std::nullopt;
  segment_name n;
  char dot1 = 0, dot2 = 0;
  std::istringstream in(file.substr(prefix.size()));
  if (!(in >> dot1 >> n.pid >> dot2 >> n.start) || dot1 != '.' || dot2 != '.') return std::nullopt;
  return n;
}
}  // namespace

std::vector<std::string> list_segments(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      const std::string f = e->d_name;
      if (f.rfind(prefix + ".", 0) == 0) out.push_back("/" + f);
    }
    ::closedir(d);
  }
  return out;
}

std::vector<std::string> reclaim_stale_segments(const std::string& prefix) {
  std::vector<std::string> removed;
  for (const std::string& name : list_segments(prefix)) {
    const auto n = parse_segment(name.substr(1), prefix);
    if (!n) continue;  // not one of ours after all
    const pid_t pid = static_cast<pid_t>(n->pid);
    const bool alive = pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
    if (alive && process_start_ticks(pid) == n->start) continue;  // its service still runs
    if (::shm_unlink(name.c_str()) == 0) removed.push_back(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// The worker.

int run_kernel_host(const std::string& segment, std::string& error, bool standby) {
  // Nothing inherited from the service but stdio (and a standby's activation pipe, fd 3).
  ::close_range(standby ? 4 : 3, ~0u, 0);
  if (standby) {  // blocked until the service hands us the segment (a restart), or lets us go
    for (;;) {
      char c = 0;
      const ssize_t n = ::read(3, &c, 1);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      return 6;  // end of file: the service dropped this standby or went away (quietly)
    }
    ::close(3);
  }
  const int fd = ::shm_open(segment.c_str(), O_RDWR, 0);
  if (fd < 0) {
    error = "cannot open segment " + segment + ": " + std::strerror(errno);
    return 3;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < sizeof(host_segment_header)) {
    ::close(fd);
    error = "segment " + segment + " is too small to hold a kernel host header";
    return 3;
  }
  const std::size_t bytes = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    error = "cannot map segment " + segment + ": " + std::strerror(errno);
    return 3;
  }
  auto* base = static_cast<byte*>(p);
  auto* h = reinterpret_cast<host_segment_header*>(base);
  // The set-up line is read once, into our own copy: what is validated is what is used.
  const host_segment_header hdr = *h;
  auto bad = [&](const std::string& why) {
    error = "segment " + segment + ": " + why;
    ::munmap(p, bytes);
    return 3;
  };
  if (hdr.magic != host_segment_header::magic_value) return bad("bad magic (not a kernel host segment)");
  if (hdr.version != host_segment_header::version_value) return bad("version " + std::to_string(hdr.version));
  if (hdr.total_bytes != bytes) return bad("size " + std::to_string(bytes) + " != header's " + std::to_string(hdr.total_bytes));
  if (!hdr.requests.valid() || !hdr.replies.valid()) return bad("invalid ring config");
  const segment_layout l = segment_layout::of(hdr.requests, hdr.replies);
  if (l.total > bytes) return bad("the rings do not fit the segment");
  if (hdr.rule_count > host_segment_header::max_rules || hdr.max_batch == 0) return bad("bad rule count or batch");
  const std::string kernel(hdr.kernel, strnlen(hdr.kernel, sizeof hdr.kernel));
  const std::string backend(hdr.backend, strnlen(hdr.backend, sizeof hdr.backend));
  const kernel_info* k = find_kernel(kernel);
  if (!k) return bad("unknown kernel '" + kernel + "'");
  if (backend != "cpu" && backend != "sim") return bad("backend '" + backend + "' is not available in a kernel host");
  if (static_cast<std::int64_t>(::getppid()) != hdr.service_pid) return bad("this process is not the service's child");

  store_relaxed(h->worker_pid, static_cast<std::int64_t>(::getpid()));
  store_relaxed(h->worker_generation, load_acquire(h->generation));

  auto* control = reinterpret_cast<control_block*>(base + l.control);
  auto* kernel_bell = reinterpret_cast<cpu::doorbell*>(base + l.kernel_bell);
  auto* reply_bell = reinterpret_cast<cpu::doorbell*>(base + l.reply_bell);
  cpu_incarnation_options co;
  co.rings.requests = hdr.requests;
  co.rings.replies = hdr.replies;
  co.max_batch = hdr.max_batch;
  std::shared_ptr<sim::sim_device> dev;
  std::unique_ptr<incarnation> inc;
  try {
    if (backend == "cpu") {
      co.rings.request_memory = base + l.requests;
      co.rings.reply_memory = base + l.replies;
      co.rings.attach = true;
      co.control = control;
      co.kernel_bell = kernel_bell;
      inc = k->cpu_factory(co)(reply_bell);
    } else {
      sim::sim_device_options so;
      so.id = "sim:kernel-host";
      dev = sim::sim_device::make(so, static_cast<std::uint64_t>(::getpid()));
      for (std::uint32_t i = 0; i < hdr.rule_count; ++i)
        if (auto r = from_wire(hdr.rules[i], 0)) dev->faults().add(*r);
      dev->faults().arm();
      ring_placement own;
      own.request_memory = base + l.requests;
      own.reply_memory = base + l.replies;
      own.attach = true;
      own.control = control;
      own.kernel_bell = kernel_bell;
      inc = dev->wrap(k->cpu_factory(co), own)(reply_bell);
    }
  } catch (const std::exception& e) {
    error = std::string("kernel did not start: ") + e.what();
    control->fault(kernel_error::launch_failed, 0, error.c_str());
    ::munmap(p, bytes);
    return 4;
  }

  // Liveness, parent watch and fault injection until the kernel stops or faults.
  const auto interval = std::chrono::microseconds(std::max<std::uint32_t>(hdr.liveness_interval_us, 1000));
  std::uint32_t inject_seen = load_acquire(h->inject_seq);
  int code = 0;
  for (;;) {
    store_relaxed(h->liveness, load_relaxed(h->liveness) + 1);
    if (static_cast<std::int64_t>(::getppid()) != hdr.service_pid) {
      error = "the service process went away";
      inc->abandon();
      code = 6;
      break;
    }
    if (dev) {
      const std::uint32_t seq = load_acquire(h->inject_seq);
      if (seq != inject_seen) {
        inject_seen = seq;
        if (auto r = from_wire(h->inject_rule, dev->faults().requests_seen())) dev->faults().add(*r);
      }
      store_relaxed(h->faults_fired, dev->faults().fired_total());
    }
    if (control->finished()) {
      code = control->current_state() == kernel_state::stopped ? 0 : 5;
      break;
    }
    std::this_thread::sleep_for(interval);  // the liveness period
  }
  if (code == 6) std::_Exit(6);  // nobody to drain for; do not wait for the kernel's threads
  inc.reset();                   // joins the kernel's threads (it has finished)
  ::munmap(p, bytes);
  return code;
}

}  // namespace ringflow::ops

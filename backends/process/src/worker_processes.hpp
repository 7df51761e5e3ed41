// The worker processes of one kernel-host incarnation: the active worker and its standby (internal
// to backends/process).
//
// Contract
//   * launch() starts the active worker: it activates the standby (one byte on a pipe only the
//     service writes: the write orders the segment's set-up before the worker's read) or, with no
//     live standby, spawns `program kernel-host --segment NAME` with default signal handling and an
//     empty signal mask (the service blocks its signals for sigwait).
//   * Reaping and signalling share one lock, so a signal never reaches a reused pid; a worker
//     reaped by someone else (SIGCHLD ignored, waitpid(-1) in the host application) counts as
//     exited with an unknown status (ECHILD).
//   * ensure_standby() pre-starts a standby (`--standby`: it waits on fd 3, the pipe's read end);
//     drop_standby() closes its pipe (it reads end of file and exits) and kills it.
//   * A standby beats while it waits (a byte on fd 4 every standby_beat, a non-blocking pipe the
//     service drains). check_standby() replaces one that is silent past the heartbeat timeout (the
//     start timeout for its first beat: it is still loading) or stopped (SIGSTOP, a debugger):
//     SIGKILL, reaped, and a fresh one started. launch() never activates such a standby: it starts
//     a process instead, so a stopped standby cannot stall a restart for start_timeout.
// Thread-safety: every member from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ringflow::process {

class worker_processes {
 public:
  worker_processes(std::string program, std::string segment, std::vector<std::string> extra_args = {})
      : program_(std::move(program)), segment_(std::move(segment)), extra_args_(std::move(extra_args)) {}
  worker_processes(const worker_processes&) = delete;
  worker_processes& operator=(const worker_processes&) = delete;
  ~worker_processes() { drop_standby(); }

  /// Starts the active worker (the standby if one is alive); its pid. Throws std::runtime_error.
  pid_t launch();
  [[nodiscard]] const std::string& program() const noexcept { return program_; }
  [[nodiscard]] pid_t pid();
  [[nodiscard]] pid_t standby_pid();
  /// Sends `sig` to the active worker if it is still ours (not reaped). True if sent.
  bool signal(int sig);
  /// Reaps the active worker if it has exited: true (with its wait status) when it is gone.
  [[nodiscard]] bool try_reap(int& status);
  /// SIGKILL and reap the active worker (when there is one).
  void kill_and_reap();
  /// Starts a standby if there is none (off the recovery path: the monitor thread calls it).
  void ensure_standby() noexcept;
  /// Forgets a standby that has exited.
  void reap_dead_standby() noexcept;
  /// The standby's heartbeat: drains its beats; a silent or stopped standby is killed and reaped
  /// (true: one was replaced; the caller's ensure_standby() starts the next).
  bool check_standby(std::chrono::milliseconds heartbeat_timeout, std::chrono::milliseconds start_timeout) noexcept;
  /// Standbys replaced because they were silent or stopped (since construction).
  [[nodiscard]] std::uint64_t standbys_replaced() const noexcept { return replaced_; }
  /// How often a standby beats (the worker's side: wait_for_activation()).
  static constexpr std::chrono::milliseconds standby_beat{10};
  void drop_standby() noexcept;

 private:
  pid_t spawn(bool standby, const int* standby_pipe, const int* beat_pipe);
  pid_t activate_standby();
  bool standby_fresh_locked(std::chrono::steady_clock::time_point now) noexcept;  // (mu_) drains its beats
  void kill_standby_locked() noexcept;                                            // (mu_)

  const std::string program_;
  const std::string segment_;
  const std::vector<std::string> extra_args_;  // after `kernel-host --segment NAME` (e.g. --plugin)
  std::mutex mu_;
  pid_t pid_ = 0;        // (mu_) the active worker; 0 once reaped
  pid_t standby_ = 0;    // (mu_) the standby worker; 0 when there is none
  int standby_fd_ = -1;  // (mu_) the write end of its pipe
  int beat_fd_ = -1;     // (mu_) the read end of its heartbeat pipe (non-blocking)
  std::chrono::steady_clock::time_point standby_since_{}, standby_beat_{};  // (mu_) spawned, last beat
  bool beat_seen_ = false;                                                  // (mu_)
  std::chrono::steady_clock::time_point last_check_{};                      // (mu_) check_standby's last look
  std::chrono::milliseconds hb_timeout_{1000}, start_timeout_{5000};        // (mu_) check_standby's
  std::uint64_t replaced_ = 0;
};

}  // namespace ringflow::process

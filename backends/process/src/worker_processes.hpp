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
//   * ensure_standby() pre-starts a standby (`--standby`: it blocks on fd 3, the pipe's read end);
//     drop_standby() closes its pipe (it reads end of file and exits) and kills it.
// Thread-safety: every member from any thread.
#pragma once

#include <sys/types.h>

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
  void drop_standby() noexcept;

 private:
  pid_t spawn(bool standby, const int* standby_pipe);
  pid_t activate_standby();

  const std::string program_;
  const std::string segment_;
  const std::vector<std::string> extra_args_;  // after `kernel-host --segment NAME` (e.g. --plugin)
  std::mutex mu_;
  pid_t pid_ = 0;        // (mu_) the active worker; 0 once reaped
  pid_t standby_ = 0;    // (mu_) the standby worker; 0 when there is none
  int standby_fd_ = -1;  // (mu_) the write end of its pipe
};

}  // namespace ringflow::process

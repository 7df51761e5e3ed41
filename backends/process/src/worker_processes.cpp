// The worker processes of one kernel-host incarnation: see worker_processes.hpp.
#include "worker_processes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

extern char** environ;

namespace ringflow::process {

namespace {

// The state letter of /proc/<pid>/stat (R, S, D, T, t, Z, ...); 0 when unknown.
char process_state(pid_t pid) noexcept {
  if (pid <= 0) return 0;
  char path[64], buf[512];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* close = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
  return close && close[1] == ' ' ? close[2] : 0;
}

}  // namespace

pid_t worker_processes::launch() {
  pid_t p = 0;
  try {
    p = activate_standby();
    if (p <= 0) p = spawn(false, nullptr, nullptr);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    pid_ = 0;
    throw;
  }
  std::lock_guard<std::mutex> lock(mu_);
  pid_ = p;
  return p;
}

pid_t worker_processes::pid() {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_;
}

pid_t worker_processes::standby_pid() {
  std::lock_guard<std::mutex> lock(mu_);
  return standby_;
}

bool worker_processes::signal(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ <= 0) return false;
  return ::kill(pid_, sig) == 0;
}

pid_t worker_processes::spawn(bool standby, const int* standby_pipe, const int* beat_pipe) {
  std::vector<std::string> args = {program_, "kernel-host", "--segment", segment_};
  if (standby) args.push_back("--standby");
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
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
  if (beat_pipe) ::posix_spawn_file_actions_adddup2(&fa, beat_pipe[1], 4);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, program_.c_str(), &fa, &attr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("kernel host: cannot start " + program_ + ": " + std::strerror(rc));
  return pid;
}

// Hands the segment to the standby (one byte on its pipe); its pid, or 0 when there is none alive.
pid_t worker_processes::activate_standby() {
  std::lock_guard<std::mutex> lock(mu_);
  if (standby_ > 0 && !standby_fresh_locked(std::chrono::steady_clock::now())) {
    kill_standby_locked();  // silent or stopped: a fresh process starts instead (launch())
    ++replaced_;
  }
  if (beat_fd_ >= 0) ::close(beat_fd_);
  beat_fd_ = -1;
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
    while (::waitpid(p, &status, 0) < 0 && errno == EINTR) {}
  }
  return told ? p : 0;
}

void worker_processes::ensure_standby() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  if (standby_ > 0) return;
  int fds[2], beat[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;  // no standby: the next restart starts a process
  if (::pipe2(beat, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  try {
    standby_ = spawn(true, fds, beat);
    standby_fd_ = fds[1];
    beat_fd_ = beat[0];
    standby_since_ = standby_beat_ = std::chrono::steady_clock::now();
    beat_seen_ = false;
  } catch (const std::exception&) {
    standby_ = 0;
    ::close(fds[1]);
    ::close(beat[0]);
  }
  ::close(fds[0]);
  ::close(beat[1]);
}

// Is the standby alive and beating? Drains the beats it sent; a stopped process (state T or t in
// /proc/<pid>/stat) is not fresh whatever its last beat.
bool worker_processes::standby_fresh_locked(std::chrono::steady_clock::time_point now) noexcept {
  char buf[256];
  for (;;) {
    const ssize_t n = beat_fd_ >= 0 ? ::read(beat_fd_, buf, sizeof buf) : -1;
    if (n <= 0) break;
    standby_beat_ = now;
    beat_seen_ = true;
  }
  if (const char st = process_state(standby_); st == 'T' || st == 't') return false;
  const auto allowed = beat_seen_ ? hb_timeout_ : std::max(hb_timeout_, start_timeout_);
  return now - standby_beat_ <= allowed;
}

void worker_processes::kill_standby_locked() noexcept {
  if (standby_fd_ >= 0) ::close(standby_fd_);
  if (beat_fd_ >= 0) ::close(beat_fd_);
  standby_fd_ = beat_fd_ = -1;
  if (standby_ <= 0) return;
  ::kill(standby_, SIGKILL);  // also ends a stopped process
  int status = 0;
  while (::waitpid(standby_, &status, 0) < 0 && errno == EINTR) {}
  standby_ = 0;
}

bool worker_processes::check_standby(std::chrono::milliseconds heartbeat_timeout,
                                     std::chrono::milliseconds start_timeout) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  hb_timeout_ = heartbeat_timeout;
  start_timeout_ = start_timeout;
  // The monitor turns every 2 ms; a look every 20 ms is plenty against timeouts of 30 ms and more.
  const auto now = std::chrono::steady_clock::now();
  if (standby_ <= 0 || now - last_check_ < std::chrono::milliseconds(20)) return false;
  last_check_ = now;
  if (standby_fresh_locked(now)) return false;
  kill_standby_locked();
  ++replaced_;
  return true;
}

void worker_processes::reap_dead_standby() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  int status = 0;
  if (standby_ > 0 && ::waitpid(standby_, &status, WNOHANG) != 0) {
    standby_ = 0;
    ::close(standby_fd_);
    if (beat_fd_ >= 0) ::close(beat_fd_);
    standby_fd_ = beat_fd_ = -1;
  }
}

void worker_processes::drop_standby() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  kill_standby_locked();
}

bool worker_processes::try_reap(int& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ <= 0) return true;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno != ECHILD)) return false;
  if (r < 0) status = 0;
  pid_ = 0;
  return true;
}

void worker_processes::kill_and_reap() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
  pid_ = 0;
}

}  // namespace ringflow::process

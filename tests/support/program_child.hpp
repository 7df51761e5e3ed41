// A `ringflow run` spawned by a test (stderr to a file, read as JSON log records), and the
// kernel-host segments a service left in /dev/shm. RINGFLOW_PROGRAM is the built program.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/program_run.hpp"

namespace ringflow::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A running `ringflow run` whose stderr goes to a file; signals it and waits for it.
struct program_child {
  pid_t pid = -1;
  fs::path err;
  program_child(const std::vector<std::string>& args, const std::string& name) : err(temp_dir() / (name + ".err")) {
    pid = fork();
    if (pid == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen(err.c_str(), "w", stderr);
      std::vector<char*> argv{const_cast<char*>(RINGFLOW_PROGRAM)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(RINGFLOW_PROGRAM, argv.data());
      _exit(127);
    }
  }
  // Waits until a log record satisfies `pred` (false after 60 s).
  template <class P>
  bool wait_log(P pred) {
    return poll_until(
        [&] {
          std::istringstream lines(slurp(err));
          for (std::string line; std::getline(lines, line);) {
            const auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_object() && pred(j)) return true;
          }
          return false;
        },
        60s);
  }
  int wait() {
    int status = 0;
    waitpid(pid, &status, 0);
    waited = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // A test that failed before it ended the child: do not leave the program running.
  ~program_child() {
    if (waited || pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  program_child(const program_child&) = delete;
  program_child& operator=(const program_child&) = delete;
  bool waited = false;
};

// The port of a running program's HTTP server (its "http" log record); 0 when none came in 60 s.
inline int http_port(program_child& c) {
  int port = 0;
  const bool seen = c.wait_log([&](const nlohmann::json& j) {
    port = j.value("component", "") == "http" ? j.value("port", 0) : 0;
    return port != 0;
  });
  return seen ? port : 0;
}

// Segments in /dev/shm named for service process `pid`.
std::vector<std::string> segments_of(pid_t pid) {
  std::vector<std::string> out;
  const std::string prefix = "ringflow." + std::to_string(pid) + ".";
  for (const auto& e : fs::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

}  // namespace ringflow::testing

// tests/support/program_run.hpp — running the built `ringflow` program to completion from a test
// (test_program, test_plugins): its exit code, stdout and stderr, and temporary files for it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ringflow::testing {

struct outcome {
  int code = -1;
  std::string out, err;
};

/// A folder for this test process's files (one per process, under the system's temp folder).
inline std::filesystem::path temp_dir() {
  static const std::filesystem::path d = [] {
    std::filesystem::path p = std::filesystem::temp_directory_path() / ("ringflow-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const std::filesystem::path p = temp_dir() / name;
  std::ofstream(p) << text;
  return p;
}

/// Runs `program` to completion with `args` (and extra environment), capturing stdout/stderr.
inline outcome run_program(const std::string& program, const std::vector<std::string>& args,
                           const std::vector<std::string>& env = {}) {
  static int n = 0;
  const std::filesystem::path out = temp_dir() / ("out" + std::to_string(++n));
  const std::filesystem::path err = temp_dir() / ("err" + std::to_string(n));
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen(out.c_str(), "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  outcome o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = slurp(out);
  o.err = slurp(err);
  return o;
}

}  // namespace ringflow::testing

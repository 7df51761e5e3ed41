// netns_lab (netns_lab.hpp): namespaces, a bridge and veth pairs through iproute2's `ip`.
#include "netns_lab.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <vector>

namespace ringflow::program {

namespace {

std::string find_ip() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

// Runs `ip args...`; its output (stdout and stderr) is appended to `out`. The exit code (-1: not run).
int run_ip(const std::string& ip, std::initializer_list<std::string> args, std::string& out) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> argv_s{ip};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return -1;
  }
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

netns_lab::~netns_lab() { teardown(); }

bool netns_lab::setup(std::size_t members, std::string& why) {
  teardown();
  if (::geteuid() != 0) {
    why = "network namespaces need root (this process runs as uid " + std::to_string(::geteuid()) + ")";
    return false;
  }
  const std::string ip = find_ip();
  if (ip.empty()) {
    why = "no `ip` program (Debian package iproute2)";
    return false;
  }
  const std::string tag = std::to_string(::getpid());
  auto step = [&](std::initializer_list<std::string> args) {
    std::string out;
    const int rc = run_ip(ip, args, out);
    if (rc == 0) return true;
    std::string cmd = "ip";
    for (const std::string& a : args) cmd += " " + a;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    why = "`" + cmd + "` failed (exit " + std::to_string(rc) + ")" + (out.empty() ? "" : ": " + out);
    return false;
  };
  hub_ = "rfh" + tag;
  if (!step({"netns", "add", hub_})) {
    hub_.clear();
    return false;
  }
  if (!step({"-n", hub_, "link", "add", "br0", "type", "bridge"}) || !step({"-n", hub_, "link", "set", "br0", "up"}))
    return teardown(), false;
  for (std::size_t i = 0; i < members; ++i) {
    const std::string ns = "rfm" + tag + "-" + std::to_string(i);
    const std::string va = "va" + std::to_string(i), vb = "vb" + std::to_string(i);
    if (!step({"netns", "add", ns})) return teardown(), false;
    members_.push_back(ns);
    if (!step({"-n", hub_, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", ns}) ||
        !step({"-n", hub_, "link", "set", va, "master", "br0"}) || !step({"-n", hub_, "link", "set", va, "up"}) ||
        !step({"-n", ns, "addr", "add", address(i) + "/24", "dev", vb}) || !step({"-n", ns, "link", "set", vb, "up"}) ||
        !step({"-n", ns, "link", "set", "lo", "up"}))
      return teardown(), false;
    const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      why = "cannot open /run/netns/" + ns + ": " + std::strerror(errno);
      return teardown(), false;
    }
    fds_.push_back(fd);
  }
  return true;
}

std::string netns_lab::address(std::size_t i) const { return "10.231.0." + std::to_string(i + 1); }

bool netns_lab::enter(std::size_t i) const noexcept { return i < fds_.size() && ::setns(fds_[i], CLONE_NEWNET) == 0; }

bool netns_lab::partition(std::size_t i, bool cut, std::string& why) {
  const std::string ip = find_ip();
  std::string out;
  const int rc = run_ip(ip, {"-n", hub_, "link", "set", "va" + std::to_string(i), cut ? "down" : "up"}, out);
  if (rc == 0) return true;
  why = "ip link set va" + std::to_string(i) + (cut ? " down" : " up") + " failed: " + out;
  return false;
}

void netns_lab::teardown() {
  for (int fd : fds_) ::close(fd);
  fds_.clear();
  const std::string ip = find_ip();
  std::string out;
  for (const std::string& ns : members_) run_ip(ip, {"netns", "delete", ns}, out);
  members_.clear();
  if (!hub_.empty()) run_ip(ip, {"netns", "delete", hub_}, out);
  hub_.clear();
}

}  // namespace ringflow::program

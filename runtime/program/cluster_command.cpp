// `ringflow cluster up`: every member of a cluster topology as a local process (`ringflow run
// --member M --cluster-dir D`), the topology's member faults carried out on them, and their
// summaries merged. docs/OPERATIONS.md "Clusters".
//
//   * The members exchange ports assigned at start through D (<member>.addr); each writes
//     <member>.ready once it has started (its links to the peers it calls are up), and its summary
//     to <member>.summary.json when it stops; its stdout and stderr go to <member>.log.
//   * Time zero of the member faults is when every member is ready. member_kill SIGKILLs the
//     member's process (restore_after_s: started again that much later; it publishes a new port
//     and a new epoch). member_partition: the members run in network namespaces of their own
//     joined by a bridge (netns_lab.hpp; root only — elsewhere such a topology exits 77, which
//     tests take as a skip); at at_s the member's link to the bridge goes down (its process keeps
//     running, its packets are dropped), restore_after_s later it comes up again.
//   * The load generators' members (drivers) run for the duration; when all of them have exited,
//     the other members get SIGTERM. The first SIGINT/SIGTERM here goes to every member (they drain).
//   * Exit: 0 when every driver exited 0 and the merged accounting has lost, duplicated and wrong
//     at 0 (every message answered exactly once); 3 bad topology; 4 a member failed to start or
//     any message was not answered exactly once; 2 bad usage.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "netns_lab.hpp"
#include "program.hpp"
#include "ringflow/runtime/plugins.hpp"

namespace ringflow::program {

using namespace ringflow::ops;

namespace {

using clock_type = std::chrono::steady_clock;

struct member_proc {
  std::string name;
  bool driver = false;
  pid_t pid = -1;  // -1: not running
  pid_t last_pid = -1;
  int incarnations = 0;
  int exit_code = -1;  // the last incarnation's (-1: still running or never ran)
  int killed_by_signal = 0;
  bool killed_by_fault = false;  // the current incarnation ended by a member_kill
  std::uint64_t kills = 0, restarts = 0;
  std::vector<std::string> argv;
};

struct scheduled {
  enum action_kind { kill, restart, cut, heal };
  double at_s = 0;
  std::string member;
  action_kind action = kill;
};

std::string self_exe() {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ringflow") : p.string();
}

std::string tail_of(const std::string& path, std::size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& l : last) out += "    " + l + "\n";
  return out;
}

// Starts one incarnation of member `m` (its output appended to its log), in network namespace
// `ns` of `lab` when there is one.
bool spawn(member_proc& m, const std::string& log_path, const netns_lab* lab = nullptr, std::size_t ns = 0) {
  std::vector<char*> argv;
  for (std::string& s : m.argv) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return false;
  }
  if (pid == 0) {  // the child: only async-signal-safe calls until exec
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the watcher blocked them; the member takes its own
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    if (lab && !lab->enter(ns)) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  m.pid = pid;
  m.last_pid = pid;
  m.exit_code = -1;
  m.killed_by_signal = 0;
  m.killed_by_fault = false;
  ++m.incarnations;
  return true;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

std::uint64_t u64(const nlohmann::json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number_unsigned() ? j[k].get<std::uint64_t>() : 0;
}
double num(const nlohmann::json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0;
}

// Reaps members that exited (non-blocking).
void reap(std::vector<member_proc>& ms) {
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (member_proc& m : ms)
      if (m.pid == pid) {
        m.pid = -1;
        m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        m.killed_by_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      }
  }
}

// SIGTERM to every running member, then (after `grace`) SIGKILL; waits for all.
void stop_all(std::vector<member_proc>& ms, std::chrono::milliseconds grace) {
  for (member_proc& m : ms)
    if (m.pid > 0) ::kill(m.pid, SIGTERM);
  const auto limit = clock_type::now() + grace;
  for (;;) {
    reap(ms);
    const bool any = std::any_of(ms.begin(), ms.end(), [](const member_proc& m) { return m.pid > 0; });
    if (!any) return;
    if (clock_type::now() >= limit) {
      for (member_proc& m : ms)
        if (m.pid > 0) ::kill(m.pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

int cmd_cluster_up(const cluster_args& a) {
  signal_watcher signals;  // before any thread: the members' forks unblock what it blocks
  std::vector<topology_error> terr;
  std::optional<topology> topo = load_topology_with_plugins(a.topology, terr);
  if (!topo) {
    for (const auto& e : terr) std::fprintf(stderr, "%s\n", e.str().c_str());
    return to_int(exit_code::bad_input);
  }
  if (!topo->cluster.enabled()) {
    std::fprintf(stderr, "ringflow: %s has no 'cluster:' section (use `ringflow run`)\n", a.topology.c_str());
    return to_int(exit_code::usage);
  }
  // member_partition: every member in a network namespace of its own (netns_lab.hpp).
  std::unique_ptr<netns_lab> lab;
  for (const fault_spec& f : topo->faults)
    if (f.kind == "member_partition" && !lab) {
      lab = std::make_unique<netns_lab>();
      std::string why;
      if (!lab->setup(topo->cluster.members.size(), why)) {
        std::fprintf(stderr,
                     "ringflow: %s:%d:%d: member_partition needs the members in network namespaces, and they cannot "
                     "be made here: %s. Skipped (exit 77).\n",
                     a.topology.c_str(), f.pos.line, f.pos.column, why.c_str());
        return 77;
      }
    }
  std::string dir = a.dir;
  std::error_code ec;
  if (dir.empty()) {
    char tmpl[] = "/tmp/ringflow-cluster.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::fprintf(stderr, "ringflow: cannot create a folder for the members: %s\n", std::strerror(errno));
      return to_int(exit_code::runtime);
    }
    dir = tmpl;
  } else if (!std::filesystem::create_directories(dir, ec) && ec) {
    std::fprintf(stderr, "ringflow: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return to_int(exit_code::runtime);
  }
  dir = std::filesystem::absolute(dir, ec).string();
  const std::vector<std::string> drivers = topo->driving_members();
  const double duration = a.duration >= 0 ? a.duration : topo->duration_s;
  const std::string exe = self_exe();
  std::vector<member_proc> ms;
  for (const member_spec& s : topo->cluster.members) {
    member_proc m;
    m.name = s.name;
    m.driver = std::find(drivers.begin(), drivers.end(), s.name) != drivers.end();
    for (const char* ext : {".addr", ".ready", ".summary.json"}) std::filesystem::remove(dir + "/" + s.name + ext, ec);
    m.argv = {exe,
              "run",
              a.topology,
              "--member",
              s.name,
              "--cluster-dir",
              dir,
              "--summary-json",
              dir + "/" + s.name + ".summary.json",
              "--http",
              "off",
              "--duration",
              m.driver ? std::to_string(duration) : std::string("0")};
    if (!a.config.empty()) m.argv.insert(m.argv.end(), {"--config", a.config});
    if (lab) m.argv.insert(m.argv.end(), {"--cluster-listen", lab->address(ms.size())});
    ms.push_back(std::move(m));
  }
  auto log_of = [&](const member_proc& m) { return dir + "/" + m.name + ".log"; };
  signals.start([](int) {},
                [&](int) {
                  for (member_proc& m : ms)
                    if (m.pid > 0) ::kill(m.pid, SIGKILL);
                  if (lab) lab->teardown();
                  std::_Exit(to_int(exit_code::runtime));
                });
  struct finish_first {
    signal_watcher& w;
    ~finish_first() { w.finish(); }
  } signals_end{signals};

  std::printf("ringflow cluster up: %zu members of '%s' (logs, addresses and summaries in %s)\n", ms.size(),
              topo->name.c_str(), dir.c_str());
  if (lab) {
    std::printf("members in network namespaces:");
    for (std::size_t i = 0; i < ms.size(); ++i)
      std::printf(" %s=%s (%s)", ms[i].name.c_str(), lab->address(i).c_str(), lab->ns_name(i).c_str());
    std::printf("\n");
  }
  std::fflush(stdout);
  auto index_of = [&](const member_proc& m) { return static_cast<std::size_t>(&m - ms.data()); };
  for (member_proc& m : ms)
    if (!spawn(m, log_of(m), lab.get(), index_of(m))) {
      std::fprintf(stderr, "ringflow: cannot start member %s: %s\n", m.name.c_str(), std::strerror(errno));
      stop_all(ms, std::chrono::milliseconds(5000));
      return to_int(exit_code::runtime);
    }
  // Every member ready (its links up), or one exited: then it failed to start.
  const auto ready_limit = clock_type::now() + std::chrono::milliseconds(topo->cluster.start_timeout_ms + 10000);
  for (;;) {
    reap(ms);
    for (const member_proc& m : ms)
      if (m.pid < 0) {
        std::fprintf(stderr, "ringflow: member %s exited with code %d before it was ready; the end of %s:\n%s",
                     m.name.c_str(), m.exit_code, log_of(m).c_str(), tail_of(log_of(m), 15).c_str());
        stop_all(ms, std::chrono::milliseconds(5000));
        return to_int(exit_code::runtime);
      }
    const bool all = std::all_of(ms.begin(), ms.end(), [&](const member_proc& m) {
      return std::filesystem::exists(dir + "/" + m.name + ".ready", ec);
    });
    if (all) break;
    if (signals.stop_signal() || clock_type::now() >= ready_limit) {
      std::fprintf(stderr, "ringflow: %s\n",
                   signals.stop_signal() ? "stopped before every member was ready" : "not every member became ready");
      stop_all(ms, std::chrono::milliseconds(5000));
      return to_int(exit_code::runtime);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto t0 = clock_type::now();
  std::printf("every member is ready: the load runs%s\n",
              duration > 0 ? (" for " + std::to_string(duration) + " s").c_str() : " until SIGINT/SIGTERM");
  std::fflush(stdout);
  std::vector<scheduled> plan;
  for (const fault_spec& f : topo->faults) {
    if (f.kind == "member_kill") {
      plan.push_back({f.at_s, f.member, scheduled::kill});
      if (f.restore_after_s >= 0) plan.push_back({f.at_s + f.restore_after_s, f.member, scheduled::restart});
    } else if (f.kind == "member_partition") {
      plan.push_back({f.at_s, f.member, scheduled::cut});
      plan.push_back({f.at_s + f.restore_after_s, f.member, scheduled::heal});
    }
  }
  std::stable_sort(plan.begin(), plan.end(), [](const scheduled& x, const scheduled& y) { return x.at_s < y.at_s; });
  std::size_t next = 0;
  std::uint64_t kills = 0, restarts = 0, partitions = 0, heals = 0;
  auto find = [&](const std::string& n) -> member_proc& {
    return *std::find_if(ms.begin(), ms.end(), [&](const member_proc& m) { return m.name == n; });
  };
  for (;;) {
    reap(ms);
    const double t = std::chrono::duration<double>(clock_type::now() - t0).count();
    while (next < plan.size() && plan[next].at_s <= t) {
      member_proc& m = find(plan[next].member);
      const scheduled::action_kind act = plan[next].action;
      if (act == scheduled::cut || act == scheduled::heal) {
        std::string why;
        if (lab->partition(index_of(m), act == scheduled::cut, why)) {
          ++(act == scheduled::cut ? partitions : heals);
          std::printf("[%6.2fs] member_partition: %s %s\n", t, m.name.c_str(),
                      act == scheduled::cut ? "cut off (its link is down; the process runs on)" : "reconnected");
        } else {
          std::fprintf(stderr, "ringflow: member_partition of %s: %s\n", m.name.c_str(), why.c_str());
        }
      } else if (act == scheduled::kill && m.pid > 0) {
        ::kill(m.pid, SIGKILL);
        m.killed_by_fault = true;
        ++m.kills;
        ++kills;
        std::printf("[%6.2fs] member_kill: %s (pid %d) SIGKILLed\n", t, m.name.c_str(), static_cast<int>(m.pid));
        // Reaped now (a SIGKILLed process is gone at once): a restart due in this same pass (a
        // late pass on a loaded machine) must find the member not running, not skip.
        int status = 0;
        if (::waitpid(m.pid, &status, 0) == m.pid) {
          m.pid = -1;
          m.exit_code = 128 + SIGKILL;
          m.killed_by_signal = SIGKILL;
        }
      } else if (act == scheduled::restart && m.pid < 0) {
        std::filesystem::remove(dir + "/" + m.name + ".ready", ec);
        if (spawn(m, log_of(m), lab.get(), index_of(m))) {
          ++m.restarts;
          ++restarts;
          std::printf("[%6.2fs] member %s started again (pid %d)\n", t, m.name.c_str(), static_cast<int>(m.pid));
        }
      }
      std::fflush(stdout);
      ++next;
    }
    const bool drivers_done = !drivers.empty() && std::all_of(ms.begin(), ms.end(), [](const member_proc& m) {
      return !m.driver || m.pid < 0;
    });
    if (drivers_done) break;
    if (drivers.empty() && duration > 0 && t >= duration) break;
    if (signals.stop_signal()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The drivers drain themselves; on a signal they get it too. Then the others stop.
  if (signals.stop_signal()) {
    for (member_proc& m : ms)
      if (m.driver && m.pid > 0) ::kill(m.pid, SIGTERM);
    const auto limit = clock_type::now() + std::chrono::seconds(60);
    while (clock_type::now() < limit &&
           std::any_of(ms.begin(), ms.end(), [](const member_proc& m) { return m.driver && m.pid > 0; })) {
      reap(ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  stop_all(ms, std::chrono::milliseconds(15000));

  // The merged summary.
  run_summary total;
  nlohmann::json members = nlohmann::json::array();
  nlohmann::json by_code = nlohmann::json::object();
  bool drivers_ok = true;
  double p50 = 0, p99 = 0, p999 = 0, maxus = 0, dur = 0, tput = 0;
  for (const member_proc& m : ms) {
    const nlohmann::json s = read_json(dir + "/" + m.name + ".summary.json");
    if (m.driver && (s.is_null() || m.exit_code != 0)) drivers_ok = false;
    total.sent += u64(s, "sent");
    total.replied += u64(s, "replied");
    total.errors += u64(s, "errors");
    total.lost += u64(s, "lost");
    total.duplicated += u64(s, "duplicated");
    total.wrong += u64(s, "wrong");
    total.faults_injected += u64(s, "faults_injected");
    total.faults_detected += u64(s, "faults_detected");
    total.restarts += u64(s, "restarts");
    total.reinits += u64(s, "reinits");
    total.reroutes += u64(s, "reroutes");
    total.failbacks += u64(s, "failbacks");
    total.replays += u64(s, "replays");
    total.supervisor_restarts += u64(s, "supervisor_restarts");
    total.worker_restarts += u64(s, "worker_restarts");
    total.actor_crashes += u64(s, "actor_crashes");
    total.ring_actor_restarts += u64(s, "ring_actor_restarts");
    total.member_failovers += u64(s, "member_failovers");
    total.member_failbacks += u64(s, "member_failbacks");
    if (s.is_object() && s.contains("gave_up") && s["gave_up"].is_string() && total.gave_up.empty())
      total.gave_up = m.name + ":" + s["gave_up"].get<std::string>();
    if (m.driver) {
      p50 = std::max(p50, num(s, "p50_us"));
      p99 = std::max(p99, num(s, "p99_us"));
      p999 = std::max(p999, num(s, "p999_us"));
      maxus = std::max(maxus, num(s, "max_us"));
      dur = std::max(dur, num(s, "duration_s"));
      tput += num(s, "throughput_per_s");
    }
    if (s.is_object() && s.contains("errors_by_code") && s["errors_by_code"].is_object())
      for (auto& [code, n] : s["errors_by_code"].items())
        by_code[code] = (by_code.contains(code) ? by_code[code].get<std::uint64_t>() : 0) +
                        (n.is_number_unsigned() ? n.get<std::uint64_t>() : 0);
    members.push_back({{"name", m.name},
                       {"pid", m.last_pid},
                       {"driver", m.driver},
                       {"incarnations", m.incarnations},
                       {"kills", m.kills},
                       {"restarts", m.restarts},
                       {"exit_code", m.exit_code},
                       {"summary", !s.is_null()},
                       {"sent", u64(s, "sent")},
                       {"replied", u64(s, "replied")},
                       {"errors", u64(s, "errors")},
                       {"lost", u64(s, "lost")},
                       {"duplicated", u64(s, "duplicated")},
                       {"wrong", u64(s, "wrong")},
                       {"member_failovers", u64(s, "member_failovers")},
                       {"member_failbacks", u64(s, "member_failbacks")},
                       {"log", log_of(m)}});
  }
  total.p50_us = p50;
  total.p99_us = p99;
  total.p999_us = p999;
  total.max_us = maxus;
  total.duration_s = dur;
  total.throughput_per_s = tput;
  total.errors_by_code = by_code;
  nlohmann::json j = total.to_json();
  j.erase("member");
  j.erase("failed_sequences");
  j.erase("failed_sequences_dropped");
  j.erase("intended_p50_us");
  j.erase("intended_p99_us");
  j.erase("intended_p999_us");
  j["topology"] = topo->name;
  j["member_kills"] = kills;
  j["member_restarts"] = restarts;
  j["member_partitions"] = partitions;
  j["member_heals"] = heals;
  j["members"] = members;
  j["dir"] = dir;
  j["balanced"] = total.sent == total.replied + total.errors + total.lost + total.wrong;
  const bool ok = total.ok() && drivers_ok && j["balanced"].get<bool>();
  j["ok"] = ok;
  print_summary_table(total, stdout);
  std::printf("members:\n");
  for (const auto& m : members)
    std::printf(
        "  %-12s %s pid %-7d incarnations %d  exit %d  sent %llu  replied %llu  failovers %llu  failbacks %llu\n",
        m["name"].get<std::string>().c_str(), m["driver"].get<bool>() ? "driver" : "      ", m["pid"].get<int>(),
        m["incarnations"].get<int>(), m["exit_code"].get<int>(),
        static_cast<unsigned long long>(m["sent"].get<std::uint64_t>()),
        static_cast<unsigned long long>(m["replied"].get<std::uint64_t>()),
        static_cast<unsigned long long>(m["member_failovers"].get<std::uint64_t>()),
        static_cast<unsigned long long>(m["member_failbacks"].get<std::uint64_t>()));
  std::printf("member failovers %llu, failbacks %llu, kills %llu; %s\n",
              static_cast<unsigned long long>(total.member_failovers),
              static_cast<unsigned long long>(total.member_failbacks), static_cast<unsigned long long>(kills),
              ok ? "every message answered exactly once" : "NOT every message was answered exactly once");
  if (!a.summary_json.empty()) {
    std::ofstream out(a.summary_json, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out.flush()) {
      std::fprintf(stderr, "ringflow: cannot write %s\n", a.summary_json.c_str());
      return to_int(exit_code::runtime);
    }
  }
  signals.finish();
  return to_int(ok ? exit_code::ok : exit_code::runtime);
}

}  // namespace ringflow::program

// ringflow_chaos: runs the `ringflow` program on seeded random topologies and fault schedules and
// checks the accounting invariants of every run (docs/FAULTS.md "Chaos").
//
//   ringflow_chaos --seeds A-B | N | A-B,N,...  [--ringflow PATH] [--json] [--jobs N] [--keep DIR]
//                  [--timeout S] [--show] [--stateful] [--inject-violation lost|duplicated|wrong|state]
//
// Per seed: the topology of chaos::generate(seed) is written to a folder and run as a subprocess
// (`ringflow run FILE --duration D --http off --summary-json F`, in a process group of its own).
// Checked: the exit code the plan expects (0; 4 when the root supervisor must give up) and the
// summary's `gave_up`; sent == replied + errors + lost + wrong; lost, duplicated and wrong 0;
// something was sent; and after the exit nothing leaked: no process of its group left after a
// grace period (this program is a child subreaper, so orphaned kernel-host workers stay visible),
// no /dev/shm segment named for its pid. A seed that breaks any of it prints why, the command that
// reproduces it, and keeps its folder. The last line is always `chaos: <n> seeds, <v> violations`;
// exit 0 only when every seed held (1 otherwise, 2 for bad usage).
//
// --stateful: the seeds are chaos::generate_stateful()'s — a stateful `vwap` node (durable
// checkpoints in the seed's folder) under a random device-fault schedule. Checked besides: every
// trade answered, none with an error (so the fault-free state is known: the trades 0 .. sent-1),
// the final checkpoint holds exactly `replied` requests, and its state is byte-identical to the
// fault-free state computed here with the kernel's own handler (kernel_info::apply_state).
//
// --inject-violation corrupts this harness's own reading of one reply per seed (a reply counted as
// lost, twice, or wrong), or with `state` one value of the final state it read, to show that a
// violation is caught: every seed must then fail.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chaos.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ringflow::chaos::plan;

namespace {

struct options {
  std::vector<std::uint64_t> seeds;
  std::string seeds_text;
  std::string ringflow;
  bool json = false, show = false, stateful = false;
  unsigned jobs = 1;
  std::string keep;
  double timeout_s = 60;
  std::string inject;
};

// "A-B", "N" or a comma list of both; false on anything else.
bool parse_seeds(const std::string& text, std::vector<std::uint64_t>& out) {
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    const std::size_t dash = part.find('-');
    try {
      std::size_t used = 0;
      if (dash == std::string::npos) {
        out.push_back(std::stoull(part, &used));
        if (used != part.size()) return false;
        continue;
      }
      const std::string a = part.substr(0, dash), b = part.substr(dash + 1);
      std::size_t ua = 0, ub = 0;
      const std::uint64_t lo = std::stoull(a, &ua), hi = std::stoull(b, &ub);
      if (ua != a.size() || ub != b.size() || hi < lo || hi - lo >= 10000000) return false;
      for (std::uint64_t s = lo; s <= hi; ++s) out.push_back(s);
    } catch (const std::exception&) {
      return false;
    }
  }
  return !out.empty();
}

std::string self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Processes (not zombies) whose process group is `pgid`, with their command names.
std::vector<std::string> group_members(pid_t pgid) {
  std::vector<std::string> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string stat = slurp(std::string("/proc/") + e->d_name + "/stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z') {
      const std::size_t open = stat.find('(');
      out.push_back(std::string(e->d_name) + " (" + stat.substr(open + 1, close - open - 1) + ")");
    }
  }
  closedir(d);
  return out;
}

std::vector<std::string> segments_of(pid_t pid) {
  std::vector<std::string> out;
  const std::string prefix = "ringflow." + std::to_string(pid) + ".";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev/shm", ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

struct seed_result {
  std::uint64_t seed = 0;
  plan p;
  int exit = -1;
  double wall_s = 0;
  nlohmann::json summary;
  std::vector<std::string> violations;
  std::string dir;
  bool state_checked = false;  // --stateful: the final state was compared
};

std::uint64_t u(const nlohmann::json& s, const char* k) {
  const auto it = s.find(k);
  return it != s.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

// The harness's own corruption of one reply (the self-test).
void inject(nlohmann::json& s, const std::string& kind) {
  auto take_one = [&](const char* from) {
    if (u(s, from) > 0) s[from] = u(s, from) - 1;
  };
  if (kind == "lost") take_one("replied"), s["lost"] = u(s, "lost") + 1;
  else if (kind == "wrong") take_one("replied"), s["wrong"] = u(s, "wrong") + 1;
  else if (kind == "duplicated") s["duplicated"] = u(s, "duplicated") + 1;
}

// The invariants of one run.
void check(seed_result& r) {
  const plan& p = r.p;
  if (r.exit != p.expected_exit)
    r.violations.push_back("exit " + std::to_string(r.exit) + ", expected " + std::to_string(p.expected_exit));
  const nlohmann::json& s = r.summary;
  if (!s.is_object()) return;  // already a violation (no summary)
  const std::uint64_t sent = u(s, "sent"), replied = u(s, "replied"), errors = u(s, "errors"), lost = u(s, "lost"),
                      dup = u(s, "duplicated"), wrong = u(s, "wrong");
  if (sent != replied + errors + lost + wrong)
    r.violations.push_back("sent " + std::to_string(sent) +
                           " != replied + errors + lost + wrong = " + std::to_string(replied + errors + lost + wrong));
  if (lost) r.violations.push_back("lost " + std::to_string(lost));
  if (dup) r.violations.push_back("duplicated " + std::to_string(dup));
  if (wrong) r.violations.push_back("wrong " + std::to_string(wrong));
  if (sent == 0) r.violations.push_back("nothing was sent");
  const nlohmann::json g = s.value("gave_up", nlohmann::json());
  const std::string gave_up = g.is_string() ? g.get<std::string>() : "";
  if (gave_up != p.expected_gave_up)
    r.violations.push_back("gave_up " + (gave_up.empty() ? std::string("null") : "\"" + gave_up + "\"") +
                           ", expected " +
                           (p.expected_gave_up.empty() ? std::string("null") : "\"" + p.expected_gave_up + "\""));
}

// --stateful: the final checkpoint against the fault-free state of the trades 0 .. sent-1.
void check_state(seed_result& r, const fs::path& dir, bool perturb) {
  const nlohmann::json& s = r.summary;
  if (!s.is_object()) return;
  const std::uint64_t sent = u(s, "sent"), replied = u(s, "replied"), errors = u(s, "errors");
  // The trades never applied: refused at the door (overloaded: a full window or journal;
  // unavailable: no ring actor or incarnation to take it) or answered `stopped` by a crashed ring
  // actor's stop (its successor takes over only what it applied). Any other error leaves the
  // effect unknown: no fault-free state is defined then.
  std::vector<bool> skipped(sent, false);
  std::uint64_t known = 0;
  const nlohmann::json f = s.value("failed_sequences", nlohmann::json::array());
  for (const nlohmann::json& e : f) {
    const std::string code = e.value("code", "");
    const std::uint64_t seq = e.value("sequence", ~0ull);
    if (code != "overloaded" && code != "unavailable" && code != "stopped") {
      r.violations.push_back("state: trade " + std::to_string(seq) + " answered " + code +
                             " (its effect is unknown: no fault-free state to compare)");
      return;
    }
    if (seq < sent && !skipped[seq]) skipped[seq] = true, ++known;
  }
  if (known != errors || u(s, "failed_sequences_dropped")) {
    r.violations.push_back("state: " + std::to_string(errors) + " errors, " + std::to_string(known) +
                           " of them known by sequence");
    return;
  }
  const ringflow::ops::checkpoint_store::loaded l = ringflow::ops::checkpoint_store(dir / "state", "r1").load();
  for (const std::string& why : l.refused) r.violations.push_back("state: checkpoint refused: " + why);
  if (!l.cp) {
    r.violations.push_back("state: no final checkpoint in " + (dir / "state").string());
    return;
  }
  std::vector<std::uint8_t> got = l.cp->state;
  if (perturb && got.size() >= 8) got[got.size() - 8] ^= 1;  // the self-test: one value of the state
  if (l.cp->requests_covered != replied)
    r.violations.push_back("state: the final checkpoint holds " + std::to_string(l.cp->requests_covered) +
                           " requests, " + std::to_string(replied) + " were answered");
  const ringflow::ops::kernel_info* k = ringflow::ops::find_kernel("vwap");
  const ringflow::ops::message_info* t = ringflow::ops::find_message("Trade");
  if (!k || !t || !k->apply_state || !k->init_state) {
    r.violations.push_back("state: this build's catalog has no vwap kernel or Trade message");
    return;
  }
  std::vector<std::uint8_t> want(k->state_bytes);
  k->init_state(want.data());
  for (std::uint64_t i = 0; i < sent; ++i) {
    if (skipped[i]) continue;
    const ringflow::fb_msg m = t->make(i, 64);
    k->apply_state(want.data(), m.bytes.data(), static_cast<std::uint32_t>(m.bytes.size()));
  }
  r.state_checked = true;
  if (got != want) {
    std::size_t first = 0;
    while (first < got.size() && first < want.size() && got[first] == want[first]) ++first;
    r.violations.push_back("state: the final state differs from the fault-free state of the " +
                           std::to_string(sent - known) + " trades answered (first at byte " + std::to_string(first) +
                           " of " + std::to_string(want.size()) + ")");
  }
}

std::atomic<bool> interrupted{false};

seed_result run_seed(std::uint64_t seed, const options& o, const fs::path& base, std::size_t index) {
  seed_result r;
  r.seed = seed;
  r.p = o.stateful ? ringflow::chaos::generate_stateful(seed) : ringflow::chaos::generate(seed);
  // A seed listed twice (`--seeds 42,42`) may run twice at once: each run gets its own folder.
  const bool repeated = std::count(o.seeds.begin(), o.seeds.end(), seed) > 1;
  const fs::path dir = base / ("seed-" + std::to_string(seed) + (repeated ? "." + std::to_string(index) : ""));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  r.dir = dir.string();
  {
    std::ofstream f(dir / "topology.yaml");
    f << r.p.yaml;
  }
  const std::string duration = std::to_string(r.p.duration_s);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(dir.c_str()) != 0) _exit(126);
    // dup2, not freopen: freopen would flush the parent's stdout buffer inherited by the fork (with
    // --jobs, another thread's unflushed line), printing it twice.
    const int out = ::open("stdout.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open("stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0) _exit(126);
    ::close(out);
    ::close(err);
    std::vector<std::string> args = {o.ringflow, "run", "topology.yaml",  "--duration",  duration,
                                     "--http",   "off", "--summary-json", "summary.json"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(o.ringflow.c_str(), argv.data());
    _exit(127);
  }
  if (pid < 0) {
    r.violations.push_back(std::string("fork failed: ") + std::strerror(errno));
    return r;
  }
  setpgid(pid, pid);  // also here: whichever runs first
  const auto deadline = t0 + std::chrono::duration<double>(r.p.duration_s + o.timeout_s);
  int status = 0;
  bool exited = false;
  while (!exited) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
    } else if (std::chrono::steady_clock::now() > deadline || interrupted.load()) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.violations.push_back(interrupted.load() ? "interrupted"
                                                : "did not exit within duration + " +
                                                      std::to_string(static_cast<int>(o.timeout_s)) + " s (killed)");
      exited = true;
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(status)) r.exit = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) {
    r.exit = 128 + WTERMSIG(status);
    r.violations.push_back(std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                           strsignal(WTERMSIG(status)) + ")");
  }
  if (r.exit == 127) r.violations.push_back("could not start " + o.ringflow);
  // Leaks: the group's processes get a grace period to see their service gone and exit (orphans
  // are reparented to this subreaper and reaped here).
  std::vector<std::string> left;
  for (auto until = std::chrono::steady_clock::now() + 3s;;) {
    while (waitpid(-pid, nullptr, WNOHANG) > 0) {}
    left = group_members(pid);
    if (left.empty() || std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(20ms);
  }
  if (!left.empty()) {
    r.violations.push_back("processes left after exit: " + join(left));
    kill(-pid, SIGKILL);
    while (waitpid(-pid, nullptr, 0) > 0) {}
  }
  const std::vector<std::string> segs = segments_of(pid);
  if (!segs.empty()) {
    r.violations.push_back("/dev/shm segments left after exit: " + join(segs));
    for (const auto& s : segs) fs::remove(fs::path("/dev/shm") / s, ec);
  }
  const std::string text = slurp(dir / "summary.json");
  r.summary = nlohmann::json::parse(text, nullptr, false);
  if (!r.summary.is_object()) {
    r.violations.push_back("no summary (summary.json missing or not JSON)");
    r.summary = nlohmann::json();
  } else if (!o.inject.empty() && o.inject != "state") {
    inject(r.summary, o.inject);
  }
  check(r);
  if (r.p.stateful) check_state(r, dir, o.inject == "state");
  return r;
}

std::string reproduce(const options& o, std::uint64_t seed, const char* argv0) {
  std::error_code ec;
  std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  if (const std::string gone = " (deleted)"; self.size() > gone.size() && self.ends_with(gone))
    self.erase(self.size() - gone.size());  // rebuilt while running: the path still names it
  std::string c = (ec ? std::string(argv0) : self) + " --seeds " + std::to_string(seed) + " --ringflow " + o.ringflow +
                  " --keep /tmp/chaos-" + std::to_string(seed);
  if (o.stateful) c += " --stateful";
  if (o.timeout_s != 60) c += " --timeout " + std::to_string(o.timeout_s);
  if (!o.inject.empty()) c += " --inject-violation " + o.inject;
  return c;
}

nlohmann::json to_json(const seed_result& r, const std::string& repro) {
  nlohmann::json s = nlohmann::json::object();
  if (r.summary.is_object())
    for (const char* k :
         {"sent", "replied", "errors", "lost", "duplicated", "wrong", "faults_injected", "faults_detected", "restarts",
          "reinits", "reroutes", "failbacks", "replays", "supervisor_restarts", "ring_actor_restarts",
          "worker_restarts", "actor_crashes", "gave_up", "errors_by_code"})
      if (r.summary.contains(k)) s[k] = r.summary[k];
  return {{"seed", r.seed},
          {"ok", r.violations.empty()},
          {"violations", r.violations},
          {"shape", r.p.shape},
          {"mode", r.p.mode},
          {"nodes", r.p.nodes},
          {"ring_nodes", r.p.ring_nodes},
          {"supervisors", r.p.supervisors},
          {"hosted", r.p.hosted},
          {"faults", r.p.fault_kinds},
          {"stateful", r.p.stateful},
          {"durability", r.p.durability},
          {"state_checked", r.state_checked},
          {"duration_s", r.p.duration_s},
          {"exit", r.exit},
          {"expected_exit", r.p.expected_exit},
          {"wall_s", r.wall_s},
          {"summary", s},
          {"reproduce", repro}};
}

std::string line_of(const seed_result& r) {
  const nlohmann::json& s = r.summary;
  char b[512];
  std::snprintf(b, sizeof b,
                "seed %llu %s: %s/%s, %zu nodes (%zu ring, %zu supervisors%s), faults [%s]; exit %d; sent %llu replied "
                "%llu errors %llu lost %llu dup %llu wrong %llu; restarts %llu, actor crashes %llu; %.1f s",
                static_cast<unsigned long long>(r.seed), r.violations.empty() ? "ok" : "VIOLATION", r.p.shape.c_str(),
                r.p.mode.c_str(), r.p.nodes, r.p.ring_nodes, r.p.supervisors, r.p.hosted ? ", host: process" : "",
                join(r.p.fault_kinds).c_str(), r.exit, static_cast<unsigned long long>(u(s, "sent")),
                static_cast<unsigned long long>(u(s, "replied")), static_cast<unsigned long long>(u(s, "errors")),
                static_cast<unsigned long long>(u(s, "lost")), static_cast<unsigned long long>(u(s, "duplicated")),
                static_cast<unsigned long long>(u(s, "wrong")), static_cast<unsigned long long>(u(s, "restarts")),
                static_cast<unsigned long long>(u(s, "actor_crashes")), r.wall_s);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"ringflow_chaos: seeded random topologies and fault schedules, each run checked"};
  app.add_option("--seeds", o.seeds_text, "seeds: A-B, N (that one seed), or a comma list of both")->required();
  app.add_option("--ringflow", o.ringflow, "the ringflow program (default: the one built beside this program)");
  app.add_flag("--json", o.json, "one JSON object per seed on stdout (the last line stays the chaos: line)");
  app.add_option("--jobs", o.jobs, "seeds run at once (default 1)")->check(CLI::Range(1u, 64u));
  app.add_option("--keep", o.keep, "keep every seed's folder (topology, log, summary) under DIR");
  app.add_option("--timeout", o.timeout_s, "seconds a run may take past its duration before it is killed (60)")
      ->check(CLI::Range(1.0, 3600.0));
  app.add_flag("--show", o.show, "print each seed's topology file and exit (nothing runs)");
  app.add_flag("--stateful", o.stateful,
               "stateful seeds: a checkpointed vwap node under device faults, its final state compared with the "
               "fault-free one");
  app.add_option("--inject-violation", o.inject,
                 "self-test: corrupt one reply per seed (state: one value of the final state; with --stateful)")
      ->check(CLI::IsMember({"lost", "duplicated", "wrong", "state"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!parse_seeds(o.seeds_text, o.seeds)) {
    std::fprintf(stderr, "ringflow_chaos: --seeds '%s': give A-B (A <= B), N, or a comma list of them\n",
                 o.seeds_text.c_str());
    return 2;
  }
  if (o.inject == "state" && !o.stateful) {
    std::fprintf(stderr, "ringflow_chaos: --inject-violation state needs --stateful\n");
    return 2;
  }
  if (o.show) {
    for (std::uint64_t s : o.seeds)
      std::printf("%s",
                  (o.stateful ? ringflow::chaos::generate_stateful(s) : ringflow::chaos::generate(s)).yaml.c_str());
    return 0;
  }
  if (o.ringflow.empty()) o.ringflow = self_dir() + "/ringflow";
  if (access(o.ringflow.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "ringflow_chaos: %s is not an executable ringflow program (--ringflow PATH)\n",
                 o.ringflow.c_str());
    return 2;
  }
  o.ringflow = fs::absolute(o.ringflow).string();
  // Orphans (kernel-host workers whose service died) are reparented here, so the leak check sees them.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) std::perror("ringflow_chaos: PR_SET_CHILD_SUBREAPER");
  signal(SIGINT, [](int) { interrupted.store(true); });
  signal(SIGTERM, [](int) { interrupted.store(true); });
  std::error_code ec;
  const fs::path base =
      o.keep.empty() ? fs::temp_directory_path() / ("ringflow-chaos." + std::to_string(getpid())) : fs::path(o.keep);
  fs::create_directories(base, ec);
  if (ec) {
    std::fprintf(stderr, "ringflow_chaos: cannot create %s: %s\n", base.c_str(), ec.message().c_str());
    return 2;
  }

  std::mutex out_mu;
  std::atomic<std::size_t> next{0}, violations{0}, done{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < o.seeds.size() && !interrupted.load();) {
      seed_result r = run_seed(o.seeds[i], o, base, i);
      const std::string repro = reproduce(o, r.seed, argv[0]);
      std::lock_guard<std::mutex> lock(out_mu);
      ++done;
      if (o.json)
        std::printf("%s\n", to_json(r, repro).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      else std::printf("%s\n", line_of(r).c_str());
      const bool self_test = !o.inject.empty();  // its violations are the harness's own: no files kept
      if (!r.violations.empty()) {
        ++violations;
        std::fprintf(o.json ? stderr : stdout, "  seed %llu: %s\n  reproduce: %s\n  files: %s\n",
                     static_cast<unsigned long long>(r.seed), join(r.violations, "; ").c_str(), repro.c_str(),
                     self_test && o.keep.empty() ? "(removed: --inject-violation)" : r.dir.c_str());
      }
      if (o.keep.empty() && (r.violations.empty() || self_test)) fs::remove_all(r.dir, ec);
      std::fflush(stdout);
    }
  };
  std::vector<std::thread> pool;
  for (unsigned j = 0; j < o.jobs; ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (o.keep.empty() && (violations.load() == 0 || !o.inject.empty())) fs::remove_all(base, ec);
  const std::size_t n = done.load(), v = violations.load();
  if (n < o.seeds.size()) std::printf("ringflow_chaos: interrupted after %zu of %zu seeds\n", n, o.seeds.size());
  std::printf("chaos: %zu seeds, %zu violations\n", n, v);
  return v == 0 && n == o.seeds.size() ? 0 : 1;
}

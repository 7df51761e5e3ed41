// The `ringflow` program's parts (runtime/program): the run command's arguments, exit codes and
// helpers shared by main.cpp (the CLI), run_command.cpp (`run`), signals.cpp and summary.cpp.
// Exit codes (docs/OPERATIONS.md): 0 success; 2 bad usage; 3 bad topology or config; 4 runtime
// failure (a start failure, an HTTP port that cannot be bound, or any message lost, answered twice
// or answered wrongly). `kernel-host` returns process::worker_exit codes.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/runtime/config.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/topology.hpp"

namespace ringflow::program {

enum class exit_code : int { ok = 0, usage = 2, bad_input = 3, runtime = 4 };
[[nodiscard]] constexpr int to_int(exit_code c) noexcept { return static_cast<int>(c); }

struct run_args {
  std::string topology;
  double duration = -1;  // <0: the topology's duration_s
  std::string http;
  std::string summary_json;
  std::string trace;
  std::string backend;
  std::string config;
  bool discard_checkpoints = false;  // --discard-checkpoints (run_options::discard_checkpoints)
  std::string member;                // --member: the cluster member this process runs
  std::string cluster_dir;           // --cluster-dir: where `cluster up` exchanges assigned ports
  std::string cluster_listen;        // --cluster-listen: this member's listen host (members in network namespaces)
};

/// `ringflow cluster up`.
struct cluster_args {
  std::string topology;
  double duration = -1;  // <0: the topology's duration_s
  std::string summary_json;
  std::string dir;     // where the members' logs, addresses and summaries go ("" = a fresh temp folder)
  std::string config;  // passed to every member
};
[[nodiscard]] int cmd_cluster_up(const cluster_args& a);

/// `ringflow run`.
[[nodiscard]] int cmd_run(const run_args& a);
/// `ringflow validate`.
[[nodiscard]] int cmd_validate(const std::string& path);
/// `ringflow devices`.
[[nodiscard]] int cmd_devices(bool json);

/// The config as layered for this run: defaults, the topology's `config:` block, the config file,
/// the environment, then flags. Used at start and again on SIGHUP.
[[nodiscard]] std::optional<ops::program_config> layered_config(const ops::topology& t, const run_args& a,
                                                                std::vector<ops::config_error>& errors);

// ---- checks.cpp ---------------------------------------------------------------------------------

/// What a topology's messages would meet under `cfg`, as topology errors (validate and run, exit
/// 3): a load generator whose messages are larger than limits.max_payload_bytes or than its target
/// ring node's rings carry (every message would be refused).
[[nodiscard]] std::vector<ops::topology_error> check_against_config(const ops::topology& t,
                                                                    const ops::program_config& cfg);

/// The memory a topology's rings take: every ring actor's request and reply rings (slots x slot
/// size + arena_bytes, x replicas); for `host: process` nodes the kernel-host segment, which lives
/// in /dev/shm. A lower bound of what `run` needs (the actor system's own memory is not in it).
struct resource_estimate {
  std::uint64_t memory_bytes = 0;
  std::uint64_t shm_bytes = 0;
};
[[nodiscard]] resource_estimate estimate_resources(const ops::topology& t);
/// What this machine offers: available memory (MemAvailable, a cgroup v2 memory.max, RLIMIT_AS,
/// the least of them; 0 = unknown) and free /dev/shm.
struct machine_resources {
  std::uint64_t memory_bytes = 0;
  std::uint64_t shm_bytes = 0;
};
[[nodiscard]] machine_resources this_machine();
/// Each shortfall as a sentence with both figures (empty: it fits). `run` exits 4 on any.
[[nodiscard]] std::vector<std::string> check_resources(const resource_estimate& need, const machine_resources& have);

// ---- summary.cpp --------------------------------------------------------------------------------
[[nodiscard]] std::string fmt_us(double us);
void print_summary_table(const ops::run_summary& s, std::FILE* out);
/// Writes the summary JSON to `path` ("" = nowhere); false with `err` when it cannot.
[[nodiscard]] bool write_summary(const std::string& path, const ops::run_summary& s, std::string& err);

// ---- signals.cpp --------------------------------------------------------------------------------

/// SIGINT, SIGTERM and SIGHUP for the run: blocked in every thread (construct it before any other
/// thread starts: they inherit the mask) and taken by one sigwait thread. The first SIGINT/SIGTERM
/// asks for a drain (stop_signal()); a second one calls `on_second` (which exits the process);
/// SIGHUP asks for a config reload (take_reload()).
class signal_watcher {
 public:
  signal_watcher();
  ~signal_watcher() { finish(); }
  signal_watcher(const signal_watcher&) = delete;
  signal_watcher& operator=(const signal_watcher&) = delete;

  /// Starts the sigwait thread. `on_second(sig)` runs on it when a second stop signal arrives;
  /// `on_first(sig)` when the first does.
  void start(std::function<void(int)> on_first, std::function<void(int)> on_second);
  /// The first stop signal (0 while none came).
  [[nodiscard]] int stop_signal() const noexcept { return stop_signal_.load(); }
  /// True once per SIGHUP.
  [[nodiscard]] bool take_reload() noexcept { return reload_.exchange(false); }
  /// Ends the sigwait thread (idempotent).
  void finish();

 private:
  sigset_t set_{};
  std::atomic<int> stop_signal_{0};
  std::atomic<bool> reload_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace ringflow::program

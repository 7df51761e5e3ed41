// ringflow — the runtime program: run supervised topologies, validate them, list devices.
//
//   ringflow run TOPOLOGY [--duration S] [--http ADDR:PORT|off] [--summary-json FILE] [--trace FILE]
//                         [--backend auto|cpu|cuda|hip|sim] [--config FILE]
//   ringflow validate TOPOLOGY
//   ringflow devices [--json]
//   ringflow kernel-host --segment NAME [--standby]   (started by the service itself: docs/OPERATIONS.md)
//   ringflow --version
//
// Exit codes (docs/OPERATIONS.md): 0 success; 2 bad usage; 3 bad topology or config; 4 runtime
// failure (a start failure, an HTTP port that cannot be bound, or any message lost, answered twice
// or answered wrongly).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "ringflow/runtime/config.hpp"
#include "ringflow/runtime/devices.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/http.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/topology.hpp"

using namespace ringflow::ops;

namespace {

constexpr int exit_ok = 0, exit_usage = 2, exit_bad_input = 3, exit_runtime = 4;

struct run_args {
  std::string topology;
  double duration = -1;  // <0: the topology's duration_s
  std::string http;
  std::string summary_json;
  std::string trace;
  std::string backend;
  std::string config;
};

// The config as layered for this run: defaults, the topology's `config:` block, the config file,
// the environment, then flags. Used at start and again on SIGHUP.
std::optional<program_config> layered_config(const topology& t, const run_args& a, std::vector<config_error>& errors) {
  program_config cfg;
  if (t.config && t.config.IsMap()) apply_yaml(cfg, t.config, t.file, errors);
  if (!a.config.empty()) load_file(cfg, a.config, errors);
  apply_env(cfg, process_environment(), errors);
  if (!a.http.empty()) set_value(cfg, "http.listen", a.http, "flag --http", errors);
  if (!a.trace.empty()) set_value(cfg, "trace.file", a.trace, "flag --trace", errors);
  validate(cfg, errors);
  if (!errors.empty()) return std::nullopt;
  return cfg;
}

std::string fmt_us(double us) {
  char b[32];
  if (us >= 1000.0) std::snprintf(b, sizeof b, "%.2f ms", us / 1000.0);
  else std::snprintf(b, sizeof b, "%.0f us", us);
  return b;
}

void print_summary_table(const run_summary& s, std::FILE* out) {
  std::fprintf(out,
               "\n  ringflow run summary\n"
               "  ---------------------------------------------\n"
               "  messages   sent %llu   replied %llu   errors %llu\n"
               "             lost %llu   duplicated %llu   wrong %llu\n"
               "  latency    p50 %s   p99 %s   p99.9 %s   max %s\n"
               "  faults     injected %llu   detected %llu\n"
               "  recovery   restarts %llu   reinits %llu   reroutes %llu   fail-backs %llu   replays %llu\n"
               "  run        %.1f s   %.0f msg/s\n"
               "  result     %s\n\n",
               static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.replied),
               static_cast<unsigned long long>(s.errors), static_cast<unsigned long long>(s.lost),
               static_cast<unsigned long long>(s.duplicated), static_cast<unsigned long long>(s.wrong),
               fmt_us(s.p50_us).c_str(), fmt_us(s.p99_us).c_str(), fmt_us(s.p999_us).c_str(), fmt_us(s.max_us).c_str(),
               static_cast<unsigned long long>(s.faults_injected), static_cast<unsigned long long>(s.faults_detected),
               static_cast<unsigned long long>(s.restarts), static_cast<unsigned long long>(s.reinits),
               static_cast<unsigned long long>(s.reroutes), static_cast<unsigned long long>(s.failbacks),
               static_cast<unsigned long long>(s.replays), s.duration_s, s.throughput_per_s,
               s.ok() ? "OK: every message answered exactly once (lost 0)"
                      : "FAILED: messages were lost, duplicated or answered wrongly");
}

bool write_summary(const std::string& path, const run_summary& s, std::string& err) {
  if (path.empty()) return true;
  std::ofstream f(path, std::ios::trunc);
  if (f) f << s.to_json().dump(2) << "\n";
  if (!f) {
    err = "cannot write the summary to '" + path + "'";
    return false;
  }
  return true;
}

int cmd_validate(const std::string& path) {
  std::vector<topology_error> errors;
  std::optional<topology> t = load_topology(path, errors);
  std::vector<config_error> cerr;
  if (t && t->config && t->config.IsMap()) {
    program_config cfg;
    apply_yaml(cfg, t->config, t->file, cerr);
    validate(cfg, cerr);
  }
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
  for (const auto& e : cerr) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!t || !cerr.empty()) {
    std::fprintf(stderr, "%s: %zu problem(s)\n", path.c_str(), errors.size() + cerr.size());
    return exit_bad_input;
  }
  std::size_t rings = 0;
  for (const auto& n : t->nodes) rings += n.kind == node_kind::ring ? n.replicas : 0;
  std::printf("%s: ok: topology '%s': %zu nodes (%zu ring actors), %zu edges, %zu supervisors, %zu load generators, "
              "%zu faults\n",
              path.c_str(), t->name.c_str(), t->nodes.size(), rings, t->edges.size(), t->supervisors.size(),
              t->load.size(), t->faults.size());
  return exit_ok;
}

int cmd_devices(bool json) {
  const std::vector<device_info> d = discover_devices();
  if (json) std::printf("%s\n", to_json(d).dump(2).c_str());
  else std::printf("%s", to_table(d).c_str());
  return exit_ok;
}

int cmd_run(const run_args& a) {
  // Signals: blocked in every thread (they inherit the mask) and taken by one sigwait thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::vector<topology_error> terr;
  std::optional<topology> topo = load_topology(a.topology, terr);
  if (!topo) {
    for (const auto& e : terr) std::fprintf(stderr, "%s\n", e.str().c_str());
    return exit_bad_input;
  }
  std::vector<config_error> cerr;
  std::optional<program_config> cfg = layered_config(*topo, a, cerr);
  if (!cfg) {
    bool flag_error = false;
    for (const auto& e : cerr) {
      std::fprintf(stderr, "%s\n", e.str().c_str());
      flag_error = flag_error || e.where.rfind("flag ", 0) == 0;
    }
    return flag_error ? exit_usage : exit_bad_input;  // a bad flag value is bad usage
  }
  std::optional<listen_address> listen;
  if (cfg->http.listen != "off") listen = parse_listen(cfg->http.listen);  // validated by the config layer

  std::unique_ptr<event_log> log;
  try {
    log = std::make_unique<event_log>(cfg->log.level, cfg->log.format, cfg->log.file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot open the log: %s\n", e.what());
    return exit_bad_input;
  }
  log->info("config", "effective configuration", {{"config", to_json(*cfg)}, {"topology", a.topology},
                                                  {"config_file", a.config}});
  log->audit("start", {{"topology", a.topology}, {"pid", static_cast<long>(getpid())}, {"version", RINGFLOW_VERSION}});

  run_options ro;
  ro.backend_override = a.backend;
  engine eng(*topo, *cfg, *log, ro);
  std::unique_ptr<http_server> http;
  std::string summary_error;

  std::atomic<int> stop_signal{0};
  std::atomic<bool> reload_requested{false};
  std::atomic<bool> finished{false};
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (finished.load()) return;
      if (sig == SIGHUP) {
        reload_requested.store(true);
        continue;
      }
      if (sig == 0) return;
      if (stop_signal.exchange(sig) != 0) {  // the second signal: exit fast, say what was not answered
        const run_summary s = eng.summary();
        log->audit("fast exit", {{"signal", strsignal(sig)}, {"open", s.lost}});
        std::string err;
        write_summary(a.summary_json, s, err);
        std::fprintf(stderr, "\nringflow: second signal: exiting now with %llu message(s) unanswered\n",
                     static_cast<unsigned long long>(s.lost));
        std::_Exit(s.lost == 0 ? exit_ok : exit_runtime);
      }
      log->audit("signal", {{"signal", strsignal(sig)}, {"action", "drain and stop (a second signal exits at once)"}});
    }
  });
  auto finish_signals = [&] {
    finished.store(true);
    pthread_kill(signals.native_handle(), SIGHUP);  // wakes sigwait (blocked, so delivered to it)
    signals.join();
  };

  try {
    eng.start();
    if (listen) {
      http = std::make_unique<http_server>(http_handlers{[&] { return eng.metrics_text(); },
                                                         [&](nlohmann::json& r) { return eng.ready(r); },
                                                         [&] { return eng.topology_json(); }});
      const std::uint16_t port = http->start(listen->host, listen->port);
      log->info("http", "serving /metrics /health/live /health/ready /topology",
                {{"listen", listen->host + ":" + std::to_string(port)}, {"port", port}});
    }
  } catch (const std::exception& e) {
    log->error("program", std::string("start failed: ") + e.what());
    std::fprintf(stderr, "ringflow: start failed: %s\n", e.what());
    if (http) http->stop();
    eng.stop();
    finish_signals();
    return exit_runtime;
  }

  const double duration = a.duration >= 0 ? a.duration : topo->duration_s;
  const bool tty = isatty(STDOUT_FILENO) == 1;
  // Both on one terminal: log records clear the status line first (it is redrawn each second).
  if (tty && cfg->log.file.empty() && isatty(STDERR_FILENO) == 1) log->set_status_line(true);
  eng.start_load();
  const auto t0 = std::chrono::steady_clock::now();
  auto last_status = t0;
  std::uint64_t last_replied = 0;
  while (stop_signal.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the control loop's period
    eng.tick();
    const auto now = std::chrono::steady_clock::now();
    if (reload_requested.exchange(false)) {
      std::vector<config_error> rerr;
      std::optional<program_config> next = layered_config(*topo, a, rerr);
      if (!next) {
        nlohmann::json errs = nlohmann::json::array();
        for (const auto& e : rerr) errs.push_back(e.str());
        log->audit("config reload rejected", {{"errors", errs}});
      } else {
        nlohmann::json applied = nlohmann::json::array(), ignored = nlohmann::json::array();
        for (const config_change& c : eng.reload(*next))
          (c.reloadable ? applied : ignored).push_back({{"key", c.key}, {"before", c.before}, {"after", c.after}});
        log->audit("config reloaded (SIGHUP)", {{"changed", applied}, {"needs_restart", ignored}});
      }
    }
    if (now - last_status >= std::chrono::seconds(1)) {
      const live_stats s = eng.live();
      const double rate = static_cast<double>(s.replied - last_replied) /
                          std::chrono::duration<double>(now - last_status).count();
      last_replied = s.replied;
      last_status = now;
      if (tty) {
        std::printf("\r\x1b[K[%5.1fs] %7.0f msg/s  p50 %s  p99 %s  in flight %llu  faults %llu  recoveries %llu  errors %llu",
                    s.elapsed_s, rate, fmt_us(s.p50_us).c_str(), fmt_us(s.p99_us).c_str(),
                    static_cast<unsigned long long>(s.in_flight), static_cast<unsigned long long>(s.faults),
                    static_cast<unsigned long long>(s.recoveries), static_cast<unsigned long long>(s.errors));
        std::fflush(stdout);
      } else if (static_cast<long>(s.elapsed_s) % 5 == 0) {
        log->info("program", "status", {{"elapsed_s", s.elapsed_s}, {"msgs_per_s", rate}, {"p50_us", s.p50_us},
                                        {"p99_us", s.p99_us}, {"in_flight", s.in_flight}, {"faults", s.faults},
                                        {"recoveries", s.recoveries}, {"errors", s.errors}});
      }
    }
    if (duration > 0 && now - t0 >= std::chrono::duration<double>(duration)) break;
  }
  if (tty) std::printf("\n");
  const int sig = stop_signal.load();
  log->info("program", sig ? "stopping on a signal: draining" : "duration reached: draining",
            {{"signal", sig ? strsignal(sig) : ""}});
  eng.drain();  // intake stops; open messages are answered
  if (http) http->stop();
  eng.stop();   // graph, supervisors (reverse order), ladder, runtime
  const run_summary s = eng.summary();
  log->info("program", "summary", s.to_json());
  if (tty) print_summary_table(s, stdout);
  std::string err;
  const bool written = write_summary(a.summary_json, s, err);
  if (!written) log->error("program", err);
  log->audit("stop", {{"ok", s.ok()}, {"lost", s.lost}});
  finish_signals();
  return s.ok() && written ? exit_ok : exit_runtime;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringflow: actor-model dataflow runtime (supervised topologies of ring kernels)", "ringflow"};
  app.set_version_flag("--version", std::string("ringflow ") + RINGFLOW_VERSION);
  app.require_subcommand(1);

  run_args ra;
  CLI::App* run = app.add_subcommand("run", "run a topology file until --duration passes or a signal arrives");
  run->add_option("topology", ra.topology, "topology file (YAML)")->required();
  run->add_option("--duration", ra.duration, "seconds to run (0 = until SIGINT/SIGTERM; default: the topology's duration_s)")
      ->check(CLI::Range(0.0, 1e7));
  run->add_option("--http", ra.http, "HTTP listen address ADDR:PORT, port 0 = any free port, or off (default 127.0.0.1:9750)");
  run->add_option("--summary-json", ra.summary_json, "write the run's summary (JSON) to this file");
  run->add_option("--trace", ra.trace, "write spans (OTLP-JSON lines) to this file");
  run->add_option("--backend", ra.backend, "override every ring node's backend")
      ->check(CLI::IsMember({"auto", "cpu", "cuda", "hip", "sim"}));
  run->add_option("--config", ra.config, "config file (YAML); RINGFLOW_<SECTION>_<KEY> variables override it");

  std::string vpath;
  CLI::App* val = app.add_subcommand("validate", "check a topology file; prints every problem as file:line:column");
  val->add_option("topology", vpath, "topology file (YAML)")->required();

  bool json = false;
  CLI::App* dev = app.add_subcommand("devices", "list the devices ringflow can use here");
  dev->add_flag("--json", json, "print JSON instead of a table");

  std::string segment;
  CLI::App* host = app.add_subcommand(
      "kernel-host", "worker process hosting a ring kernel on shared-memory rings (started by `run`, not by hand)");
  host->add_option("--segment", segment, "the shared segment the service created (/ringflow.<pid>....)")->required();
  bool standby = false;
  host->add_flag("--standby", standby, "start, then sleep until the service activates this worker (a restart)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version (rc 0) or the error and a hint
    return rc == 0 ? exit_ok : exit_usage;
  }
  if (*run) return cmd_run(ra);
  if (*val) return cmd_validate(vpath);
  if (*dev) return cmd_devices(json);
  if (*host) {
    std::string error;
    const int rc = ringflow::ops::run_kernel_host(segment, error, standby);
    if (!error.empty())
      std::fprintf(stderr, "{\"level\":\"error\",\"component\":\"kernel-host\",\"pid\":%d,\"msg\":%s}\n",
                   static_cast<int>(::getpid()), nlohmann::json(error).dump().c_str());
    return rc;
  }
  return exit_usage;
}

// `ringflow run`: inputs (topology, layered config, log), start (engine, HTTP), the control loop
// (tick, SIGHUP reload, status line), then drain, stop and the summary. See program.hpp.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "program.hpp"
#include "ringflow/process/segment.hpp"
#include "ringflow/runtime/http.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/plugins.hpp"

namespace ringflow::program {

using namespace ringflow::ops;

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

namespace {

// What a run starts from: the topology, its config and the log (or the exit code saying why not).
struct run_inputs {
  std::optional<topology> topo;
  std::optional<program_config> cfg;
  std::unique_ptr<event_log> log;
};

// The topology size limits the config file and the environment give (they win over the
// topology's own `config:` block; the parser reads that one). Problems in them are reported by
// layered_config() after the parse; here an unset or bad value is just "not given".
topology_limits limits_of_later_layers(const run_args& a) {
  program_config pre;
  pre.limits.max_nodes = pre.limits.max_edges = pre.limits.max_supervisor_depth = -1;  // "not given"
  std::vector<config_error> ignored;
  if (!a.config.empty()) load_file(pre, a.config, ignored);
  apply_env(pre, process_environment(), ignored);
  topology_limits l;
  if (pre.limits.max_nodes > 0) l.max_nodes = pre.limits.max_nodes;
  if (pre.limits.max_edges > 0) l.max_edges = pre.limits.max_edges;
  if (pre.limits.max_supervisor_depth > 0) l.max_supervisor_depth = pre.limits.max_supervisor_depth;
  return l;
}

std::optional<int> load_inputs(const run_args& a, run_inputs& in) {
  std::vector<topology_error> terr;
  // Its plugins are loaded (and audited at start).
  in.topo = load_topology_with_plugins(a.topology, terr, limits_of_later_layers(a));
  if (!in.topo) {
    for (const auto& e : terr) std::fprintf(stderr, "%s\n", e.str().c_str());
    return to_int(exit_code::bad_input);
  }
  std::vector<config_error> cerr;
  in.cfg = layered_config(*in.topo, a, cerr);
  if (!in.cfg) {
    bool flag_error = false;
    for (const auto& e : cerr) {
      std::fprintf(stderr, "%s\n", e.str().c_str());
      flag_error = flag_error || e.where.rfind("flag ", 0) == 0;
    }
    return to_int(flag_error ? exit_code::usage : exit_code::bad_input);  // a bad flag value is bad usage
  }
  const std::vector<topology_error> limits = check_against_config(*in.topo, *in.cfg);
  for (const auto& e : limits) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!limits.empty()) return to_int(exit_code::bad_input);
  // This machine: the rings' memory and the kernel hosts' /dev/shm (else SIGBUS at the first touch).
  const resource_estimate need = estimate_resources(*in.topo);
  const std::vector<std::string> short_of = check_resources(need, this_machine());
  for (const auto& s : short_of) std::fprintf(stderr, "ringflow: cannot run %s: %s\n", a.topology.c_str(), s.c_str());
  if (!short_of.empty()) return to_int(exit_code::runtime);
  try {
    in.log = std::make_unique<event_log>(in.cfg->log.level, in.cfg->log.format, in.cfg->log.file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot open the log: %s\n", e.what());
    return to_int(exit_code::bad_input);
  }
  return std::nullopt;
}

http_limits http_limits_of(const program_config::http_section& h) {
  http_limits l;
  l.max_connections = static_cast<std::size_t>(h.max_connections);
  l.max_connections_per_peer = static_cast<std::size_t>(h.max_connections_per_peer);
  l.header_timeout = std::chrono::milliseconds(h.header_timeout_ms);
  l.idle_timeout = std::chrono::milliseconds(h.idle_timeout_ms);
  l.max_header_bytes = static_cast<std::size_t>(h.max_header_bytes);
  return l;
}

// Starts the engine and (unless off) the HTTP server; false (logged and printed) when it fails.
bool start_serving(engine& eng, const program_config& cfg, event_log& log, std::unique_ptr<http_server>& http) {
  try {
    eng.start();
    const std::optional<listen_address> listen =
        cfg.http.listen == "off" ? std::nullopt : parse_listen(cfg.http.listen);  // validated by the config layer
    if (listen) {
      http = std::make_unique<http_server>(
          http_handlers{[&] { return eng.metrics_text(); }, [&](nlohmann::json& r) { return eng.ready(r); },
                        [&] { return eng.topology_json(); },
                        [&](const std::string& node, int& status) { return eng.state_json(node, status); }},
          http_limits_of(cfg.http));
      const std::uint16_t port = http->start(listen->host, listen->port);
      log.info("http", "serving /metrics /health/live /health/ready /topology /state/<node>",
               {{"listen", listen->host + ":" + std::to_string(port)}, {"port", port}});
    }
    return true;
  } catch (const std::exception& e) {
    log.error("program", std::string("start failed: ") + e.what());
    std::fprintf(stderr, "ringflow: start failed: %s\n", e.what());
    return false;
  }
}

void reload_config(engine& eng, const topology& topo, const run_args& a, event_log& log) {
  std::vector<config_error> rerr;
  std::optional<program_config> next = layered_config(topo, a, rerr);
  if (!next) {
    nlohmann::json errs = nlohmann::json::array();
    for (const auto& e : rerr) errs.push_back(e.str());
    log.audit("config reload rejected", {{"errors", errs}});
    return;
  }
  nlohmann::json applied = nlohmann::json::array(), ignored = nlohmann::json::array();
  for (const config_change& c : eng.reload(*next))
    (c.reloadable ? applied : ignored).push_back({{"key", c.key}, {"before", c.before}, {"after", c.after}});
  log.audit("config reloaded (SIGHUP)", {{"changed", applied}, {"needs_restart", ignored}});
}

// The live status: a redrawn line on a terminal, a JSON record every 5 s otherwise.
void report_status(const live_stats& s, double rate, bool tty, event_log& log) {
  if (tty) {
    std::printf(
        "\r\x1b[K[%5.1fs] %7.0f msg/s  p50 %s  p99 %s  in flight %llu  faults %llu  recoveries %llu  errors %llu",
        s.elapsed_s, rate, fmt_us(s.p50_us).c_str(), fmt_us(s.p99_us).c_str(),
        static_cast<unsigned long long>(s.in_flight), static_cast<unsigned long long>(s.faults),
        static_cast<unsigned long long>(s.recoveries), static_cast<unsigned long long>(s.errors));
    std::fflush(stdout);
  } else if (static_cast<long>(s.elapsed_s) % 5 == 0) {
    log.info("program", "status",
             {{"elapsed_s", s.elapsed_s},
              {"msgs_per_s", rate},
              {"p50_us", s.p50_us},
              {"p99_us", s.p99_us},
              {"in_flight", s.in_flight},
              {"faults", s.faults},
              {"recoveries", s.recoveries},
              {"errors", s.errors}});
  }
}

// Ticks the engine every 50 ms until the duration passes or a stop signal comes.
void control_loop(engine& eng, const topology& topo, const run_args& a, event_log& log, signal_watcher& signals,
                  double duration, bool tty) {
  const auto t0 = std::chrono::steady_clock::now();
  auto last_status = t0;
  std::uint64_t last_replied = 0;
  while (signals.stop_signal() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the control loop's period
    eng.tick();
    const auto now = std::chrono::steady_clock::now();
    if (signals.take_reload()) reload_config(eng, topo, a, log);
    if (now - last_status >= std::chrono::seconds(1)) {
      const live_stats s = eng.live();
      const double rate =
          static_cast<double>(s.replied - last_replied) / std::chrono::duration<double>(now - last_status).count();
      last_replied = s.replied;
      last_status = now;
      report_status(s, rate, tty, log);
    }
    if (duration > 0 && now - t0 >= std::chrono::duration<double>(duration)) break;
    if (!eng.gave_up().empty()) break;  // the supervisor tree is gone: nothing would drain
  }
}

}  // namespace

int cmd_run(const run_args& a) {
  signal_watcher signals;  // first: every thread started after it inherits the blocked signals
  run_inputs in;
  if (std::optional<int> rc = load_inputs(a, in)) return *rc;
  const topology& topo = *in.topo;
  const program_config& cfg = *in.cfg;
  event_log& log = *in.log;
  log.info("config", "effective configuration",
           {{"config", to_json(cfg)}, {"topology", a.topology}, {"config_file", a.config}});
  log.audit("start", {{"topology", a.topology}, {"pid", static_cast<long>(getpid())}, {"version", RINGFLOW_VERSION}});

  run_options ro;
  ro.backend_override = a.backend;
  ro.discard_checkpoints = a.discard_checkpoints;
  ro.member = a.member;
  ro.cluster_dir = a.cluster_dir;
  ro.cluster_listen = a.cluster_listen;
  if (!topo.cluster.enabled() && !a.member.empty()) {
    std::fprintf(stderr, "ringflow: --member %s: %s has no 'cluster:' section\n", a.member.c_str(), a.topology.c_str());
    return to_int(exit_code::usage);
  }
  if (topo.cluster.enabled() && a.member.empty()) {
    std::fprintf(stderr,
                 "ringflow: %s is a cluster topology: run one member with --member NAME, or all of them with "
                 "`ringflow cluster up %s`\n",
                 a.topology.c_str(), a.topology.c_str());
    return to_int(exit_code::usage);
  }
  if (topo.cluster.enabled() && !topo.cluster.member(a.member)) {
    std::fprintf(stderr, "ringflow: --member %s: not a member of %s\n", a.member.c_str(), a.topology.c_str());
    return to_int(exit_code::usage);
  }
  engine eng(topo, cfg, log, ro);
  std::unique_ptr<http_server> http;
  signals.start(
      [&](int sig) {
        log.audit("signal", {{"signal", strsignal(sig)}, {"action", "drain and stop (a second signal exits at once)"}});
      },
      [&](int sig) {  // the second signal: exit fast, say what was not answered
        const run_summary s = eng.summary(true);
        // _Exit skips the destructors that unlink the kernel hosts' segments: unlink them here (the
        // workers see their service gone and exit).
        const std::vector<std::string> removed = process::remove_own_segments();
        log.audit("fast exit", {{"signal", strsignal(sig)}, {"open", s.lost}, {"segments_removed", removed.size()}});
        std::string err;
        (void)write_summary(a.summary_json, s, err);
        std::fprintf(stderr, "\nringflow: second signal: exiting now with %llu message(s) unanswered\n",
                     static_cast<unsigned long long>(s.lost));
        std::_Exit(to_int(s.lost == 0 ? exit_code::ok : exit_code::runtime));
      });
  // The sigwait thread uses `eng` and `log`: it ends before they do on every way out of here.
  struct finish_first {
    signal_watcher& w;
    ~finish_first() { w.finish(); }
  } signals_end{signals};

  if (!start_serving(eng, cfg, log, http)) {
    if (http) http->stop();
    eng.stop();
    signals.finish();
    return to_int(exit_code::runtime);
  }

  if (!a.cluster_dir.empty() && !a.member.empty()) {  // `cluster up` waits for this
    const std::string ready = a.cluster_dir + "/" + a.member + ".ready";
    if (std::FILE* f = std::fopen(ready.c_str(), "w")) {
      std::fprintf(f, "%ld\n", static_cast<long>(getpid()));
      std::fclose(f);
    }
  }
  const double duration = a.duration >= 0 ? a.duration : topo.duration_s;
  const bool tty = isatty(STDOUT_FILENO) == 1;
  // Both on one terminal: log records clear the status line first (it is redrawn each second).
  if (tty && cfg.log.file.empty() && isatty(STDERR_FILENO) == 1) log.set_status_line(true);
  eng.start_load();
  control_loop(eng, topo, a, log, signals, duration, tty);
  if (tty) std::printf("\n");
  const int sig = signals.stop_signal();
  const std::string gave_up = eng.gave_up();
  if (!gave_up.empty()) {
    log.audit("gave up",
              {{"supervisor", gave_up}, {"action", "stop the topology; open messages are answered stopped"}});
    std::fprintf(stderr, "ringflow: supervisor '%s' gave up (restart intensity exceeded): stopping\n", gave_up.c_str());
  } else {
    log.info("program", sig ? "stopping on a signal: draining" : "duration reached: draining",
             {{"signal", sig ? strsignal(sig) : ""}});
    eng.drain();  // intake stops; open messages are answered
  }
  if (http) http->stop();
  eng.stop();  // graph, supervisors (reverse order), ladder, runtime
  const run_summary s = eng.summary(true);
  nlohmann::json logged = s.to_json();
  logged.erase("failed_sequences");  // the file has them; one log record stays small
  log.info("program", "summary", logged);
  if (tty) print_summary_table(s, stdout);
  std::string err;
  const bool written = write_summary(a.summary_json, s, err);
  if (!written) log.error("program", err);
  log.audit("stop", {{"ok", s.ok()}, {"lost", s.lost}, {"gave_up", s.to_json()["gave_up"]}});
  signals.finish();
  return to_int(s.ok() && written ? exit_code::ok : exit_code::runtime);
}

}  // namespace ringflow::program

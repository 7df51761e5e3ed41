// ringflow — the runtime program: run supervised topologies, validate them, list devices.
//
//   ringflow run TOPOLOGY [--duration S] [--http ADDR:PORT|off] [--summary-json FILE] [--trace FILE]
//                         [--backend auto|cpu|cuda|hip|sim] [--config FILE] [--discard-checkpoints]
//   ringflow validate TOPOLOGY
//   ringflow devices [--json]
//   ringflow kernel-host --segment NAME [--standby] [--plugin P --plugin-sha256 H]...
//                                                    (started by the service itself: docs/OPERATIONS.md)
//   ringflow --version
//
// This file is the command line (ringflow::ops::program_main: the `ringflow` executable's main, and
// a user's own ringflow-compatible program's, ringflow/runtime/program.hpp); `run` is run_command.cpp, its signals
// signals.cpp, its summary summary.cpp. Exit codes: program.hpp (exit_code) and docs/OPERATIONS.md.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>

#include "program.hpp"
#include "ringflow/runtime/devices.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/runtime/plugins.hpp"
#include "ringflow/runtime/program.hpp"
#include "ringflow/runtime/utf8.hpp"

namespace ringflow::program {

using namespace ringflow::ops;

int cmd_validate(const std::string& path_arg) {
  const std::string path = valid_utf8(path_arg);  // printed: any byte of the argument shows as valid UTF-8
  std::vector<topology_error> errors;
  std::optional<topology> t = load_topology_with_plugins(path_arg, errors);
  std::vector<config_error> cerr;
  if (t) {  // the topology's own config only: validate is the same on every machine
    program_config cfg;
    if (t->config && t->config.IsMap()) apply_yaml(cfg, t->config, t->file, cerr);
    validate(cfg, cerr);
    if (cerr.empty())
      for (topology_error& e : check_against_config(*t, cfg)) errors.push_back(std::move(e));
    if (!errors.empty()) t.reset();
  }
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
  for (const auto& e : cerr) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!t || !cerr.empty()) {
    std::fprintf(stderr, "%s: %zu problem(s)\n", path.c_str(), errors.size() + cerr.size());
    return to_int(exit_code::bad_input);
  }
  const std::vector<loaded_plugin> loaded = loaded_plugins();
  for (const plugin_ref& p : t->plugins)
    for (const loaded_plugin& l : loaded)
      if (l.sha256 == p.sha256) {
        auto list = [](const std::vector<std::string>& v) {
          std::string s;
          for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
          return s.empty() ? std::string("-") : s;
        };
        std::printf("%s: plugin %s: %s, %s, ringflow %s, flatbuffers %s; kernels: %s; messages: %s; functions: %s%s\n",
                    path.c_str(), valid_utf8(p.path).c_str(), l.name.c_str(), l.sha256.c_str(),
                    l.ringflow_version.c_str(), l.flatbuffers_version.c_str(), list(l.kernels).c_str(),
                    list(l.messages).c_str(), list(l.functions).c_str(),
                    l.gpu_backends.empty() ? "" : ("; device tables: " + list(l.gpu_backends)).c_str());
      }
  std::size_t rings = 0;
  for (const auto& n : t->nodes) rings += n.kind == node_kind::ring ? n.replicas : 0;
  std::printf(
      "%s: ok: topology '%s': %zu nodes (%zu ring actors), %zu edges, %zu supervisors, %zu load generators, "
      "%zu faults\n",
      path.c_str(), valid_utf8(t->name).c_str(), t->nodes.size(), rings, t->edges.size(), t->supervisors.size(),
      t->load.size(), t->faults.size());
  return to_int(exit_code::ok);
}

int cmd_devices(bool json) {
  const std::vector<device_info> d = discover_devices();
  if (json) std::printf("%s\n", to_json(d).dump(2).c_str());
  else std::printf("%s", to_table(d).c_str());
  return to_int(exit_code::ok);
}
}  // namespace ringflow::program

int ringflow::ops::program_main(int argc, char** argv) {
  using namespace ringflow::program;
  // A closed stdout/stderr pipe (`ringflow run ... | head`) must not kill the run: writes to it
  // fail with EPIPE instead, and the log counts them (ringflow_log_write_failures_total).
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"ringflow: actor-model dataflow runtime (supervised topologies of ring kernels)", "ringflow"};
  app.set_version_flag("--version", std::string("ringflow ") + RINGFLOW_VERSION);
  app.require_subcommand(1);

  // CLI::Range lets NaN through (every comparison with it is false): finite first.
  const CLI::Validator finite(
      [](std::string& s) {
        double d = 0;
        std::size_t used = 0;
        try {
          d = std::stod(s, &used);
        } catch (const std::exception&) {
          return std::string("must be a number");
        }
        if (used != s.size() || !std::isfinite(d)) return "must be a finite number, got '" + s + "'";
        return std::string();
      },
      "FINITE");
  ringflow::program::run_args ra;
  CLI::App* run = app.add_subcommand("run", "run a topology file until --duration passes or a signal arrives");
  run->add_option("topology", ra.topology, "topology file (YAML)")->required();
  run->add_option("--duration", ra.duration,
                  "seconds to run (0 = until SIGINT/SIGTERM; default: the topology's duration_s)")
      ->check(finite)
      ->check(CLI::Range(0.0, 1e7));
  run->add_option("--http", ra.http,
                  "HTTP listen address ADDR:PORT, port 0 = any free port, or off (default 127.0.0.1:9750)");
  run->add_option("--summary-json", ra.summary_json, "write the run's summary (JSON) to this file");
  run->add_option("--trace", ra.trace, "write spans (OTLP-JSON lines) to this file");
  run->add_option("--backend", ra.backend, "override every ring node's backend")
      ->check(CLI::IsMember({"auto", "cpu", "cuda", "hip", "sim"}));
  run->add_option("--config", ra.config, "config file (YAML); RINGFLOW_<SECTION>_<KEY> variables override it");
  run->add_flag("--discard-checkpoints", ra.discard_checkpoints,
                "a stateful node's checkpoint of another kernel or state size is moved aside and the node "
                "starts from init (default: the start fails, exit 4)");
  run->add_option("--member", ra.member, "a cluster topology: the member this process runs (its nodes and load)");
  run->add_option("--cluster-dir", ra.cluster_dir,
                  "where members exchange ports assigned at start (set by `ringflow cluster up`)");
  run->add_option("--cluster-listen", ra.cluster_listen,
                  "the host this member listens on instead of its `listen` host (set by `ringflow cluster up` "
                  "for members in network namespaces)");

  ringflow::program::cluster_args ca;
  CLI::App* cluster = app.add_subcommand("cluster", "run a cluster topology's members");
  cluster->require_subcommand(1);
  CLI::App* up = cluster->add_subcommand(
      "up",
      "start every member of a cluster topology as a local process, carry out its member faults, merge the summaries");
  up->add_option("topology", ca.topology, "topology file (YAML) with a 'cluster:' section")->required();
  up->add_option("--duration", ca.duration, "seconds the load runs (default: the topology's duration_s)")
      ->check(finite)
      ->check(CLI::Range(0.0, 1e7));
  up->add_option("--summary-json", ca.summary_json, "write the merged summary (JSON) to this file");
  up->add_option("--dir", ca.dir, "folder for the members' logs, addresses and summaries (default: a new temp folder)");
  up->add_option("--config", ca.config, "config file (YAML) every member reads");

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
  std::vector<std::string> host_plugins, host_plugin_hashes;
  host->add_option("--plugin", host_plugins, "a plugin file the service loaded (repeatable; in the service's order)");
  host->add_option("--plugin-sha256", host_plugin_hashes,
                   "its content hash as the service saw it (sha256:<hex>; one per --plugin)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help/version (rc 0) or the error and a hint
    return rc == 0 ? to_int(exit_code::ok) : to_int(exit_code::usage);
  }
  if (*run) return cmd_run(ra);
  if (*up) return cmd_cluster_up(ca);
  if (*val) return cmd_validate(vpath);
  if (*dev) return cmd_devices(json);
  if (*host) {
    std::string error;
    const int rc = ringflow::ops::run_kernel_host(segment, error, standby, host_plugins, host_plugin_hashes);
    if (!error.empty())
      std::fprintf(stderr, "{\"level\":\"error\",\"component\":\"kernel-host\",\"pid\":%d,\"msg\":%s}\n",
                   static_cast<int>(::getpid()), nlohmann::json(error).dump().c_str());
    return rc;
  }
  return to_int(exit_code::usage);
}

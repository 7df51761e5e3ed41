// ringflow/runtime/config.hpp — the configuration of the `ringflow` program.
//
// Contract
//   * Layers, each applied on top of the previous one (later wins):
//       1 defaults               program_config{}
//       2 topology `config:`     apply_yaml(cfg, topo.config, topology_file, errors)
//       3 config file            load_file(cfg, path, errors)
//       4 environment            apply_env(cfg, process_environment(), errors)
//       5 command-line flags     set_value(cfg, "section.key", value, "flag --name", errors)
//     then validate(cfg, errors) for the checks that span keys. A caller proceeds only when
//     `errors` is empty; every loader records EVERY problem it finds and keeps going, and a value
//     that fails its check leaves the key as it was.
//   * Keys are `section.key` (all_keys() lists them, describe_keys() documents them). In YAML:
//     `section: {key: value}`; in the environment: RINGFLOW_<SECTION>_<KEY> upper-cased
//     (to_env_name). Every layer parses the same text form, so "5", 5 and RINGFLOW_..=5 agree:
//       integer  decimal digits with an optional '-', parsed completely ("12abc", "1e3", "" fail)
//       number   a finite decimal ("2", "0.5", "1e3"), parsed completely
//       choice   one of the listed words (log.level, log.format)
//       listen   "off" or HOST:PORT, port 0..65535, IPv6 host in brackets ("[::1]:9750")
//       string   anything (YAML null = "")
//     Ranges are inclusive and named in the error ("must be an integer in 1 .. 64, got '100'").
//   * Errors say where: "file.yaml:3:5" (1-based line:column of the offending key or value),
//     "env RINGFLOW_HTTP_LISTEN", or the caller's label for a flag ("flag --http"). Unknown
//     sections and keys are errors that list what exists. In the environment only variables
//     whose first token after RINGFLOW_ is a section name (HTTP, LOG, RUNTIME, BREAKER, LADDER,
//     LIMITS, TRACE) are config: other RINGFLOW_* variables (RINGFLOW_STRESS_MESSAGES, ...) belong
//     to tests and tools and are ignored.
//   * Reload (SIGHUP): is_reloadable() names the keys the running program can adopt (log level,
//     breaker, ingress rate, payload limit, trace sampling); the rest need a restart. diff()
//     lists every key whose value differs, with its reloadability; apply_reloadable() adopts the
//     reloadable ones and leaves the others as they run.
//   * The key table lives once in config.cpp: YAML, env, flags, to_json, diff and validate all
//     walk it, so adding a field there adds it everywhere.
// Thread-safety: plain functions over values. process_environment() reads `environ`: do not call it
// while another thread calls setenv().
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringflow {
struct ladder_config;  // ringflow/supervision/fault_ladder.hpp
}  // namespace ringflow

namespace ringflow::ops {

struct config_error {
  std::string where;  // "file.yaml:3:5", "env RINGFLOW_HTTP_LISTEN", "flag --http", "breaker.cooldown_max_ms"
  std::string what;
  std::string str() const;  // "where: what"
};

struct program_config {
  struct http_section {
    std::string listen = "127.0.0.1:9750";  // "off" disables the HTTP endpoints
    std::int64_t max_connections = 256;     // open connections; at the limit the longest idle is evicted
    std::int64_t max_connections_per_peer = 32;
    std::int64_t header_timeout_ms = 5000;  // a request's whole header, from its first byte
    std::int64_t idle_timeout_ms = 30000;   // keep-alive idle, or a reader that takes nothing
    std::int64_t max_header_bytes = 16384;
    bool operator==(const http_section&) const = default;
  } http;
  struct log_section {
    std::string level = "info";   // trace|debug|info|warn|error|off (spdlog's names)
    std::string format = "json";  // json|text
    std::string file;             // "" = stderr
    bool operator==(const log_section&) const = default;
  } log;
  struct runtime_section {
    std::int64_t scheduler_threads = 2;
    std::string wait = "adaptive";     // park | adaptive | spin: every waiting thread's policy (wait_policy.hpp)
    std::string cpus_scheduler;        // CPU list ("0,2-3"; "" = not pinned): CAF's threads (rf-caf-<n>)
    std::string cpus_poller;           // CPU list: the completion poller (rf-poll)
    std::int64_t kernel_threads = -1;  // the kernel pool: -1 = one per allowed CPU, 0 = none (a thread per ring)
    std::int64_t shutdown_timeout_ms = 5000;
    std::int64_t drain_timeout_ms = 5000;
    bool operator==(const runtime_section&) const = default;
  } runtime;
  struct breaker_section {
    std::int64_t failure_threshold = 5;
    std::int64_t window_ms = 30000;
    std::int64_t cooldown_ms = 30000;
    std::int64_t cooldown_max_ms = 300000;
    double backoff = 2.0;
    bool operator==(const breaker_section&) const = default;
  } breaker;
  struct ladder_section {
    std::int64_t hang_timeout_ms = 1000;
    std::int64_t restarts_before_reinit = 3;
    std::int64_t restart_window_ms = 10000;
    std::int64_t probe_window_ms = 1000;
    std::int64_t backoff_initial_us = 1000;
    std::int64_t backoff_max_ms = 1000;
    std::int64_t stop_timeout_ms = 2000;
    bool operator==(const ladder_section&) const = default;
  } ladder;
  struct limits_section {
    double ingress_rate_per_s = 0.0;  // 0 = unlimited
    std::int64_t node_window = 256;   // messages a topology node admits at once
    std::int64_t max_payload_bytes = 1048576;
    // topology size (topology.hpp, topology_limits: the same defaults)
    std::int64_t max_nodes = 100000;
    std::int64_t max_edges = 1000000;
    std::int64_t max_supervisor_depth = 32;
    bool operator==(const limits_section&) const = default;
  } limits;
  struct trace_section {
    std::string file;  // "" = no trace file
    double sample_ratio = 1.0;
    bool operator==(const trace_section&) const = default;
  } trace;
  struct workers_section {                     // kernel-host workers of `host: process` nodes
    std::int64_t heartbeat_timeout_ms = 1000;  // liveness silence that counts as a dead worker
    std::int64_t start_timeout_ms = 5000;      // worker start -> its kernel running
    std::string standby = "on";                // on|off: a pre-started standby worker per ring actor
    bool operator==(const workers_section&) const = default;
  } workers;
  bool operator==(const program_config&) const = default;
};

/// Applies a YAML mapping of sections (a whole config file, or a topology file's `config:` block)
/// on top of `cfg`. `source` names the file in positions. A null node (empty file) is no change.
void apply_yaml(program_config& cfg, const YAML::Node& root, const std::string& source,
                std::vector<config_error>& errors);
/// Reads and applies a config file; an unreadable file or a YAML syntax error is one error (with
/// the syntax error's position).
void load_file(program_config& cfg, const std::string& path, std::vector<config_error>& errors);
/// load_file() on text already read (`source` names it in errors): YAML syntax errors and every
/// key's problems become errors; never throws. Fuzzed (tests/fuzz/ringflow_fuzz_config.cpp).
void load_text(program_config& cfg, const std::string& text, const std::string& source,
               std::vector<config_error>& errors);
/// Applies the RINGFLOW_<SECTION>_<KEY> variables of `env` (name, value), in order.
void apply_env(program_config& cfg, const std::vector<std::pair<std::string, std::string>>& env,
               std::vector<config_error>& errors);
/// The process's environment as (name, value) pairs.
std::vector<std::pair<std::string, std::string>> process_environment();
/// Sets one key from its text form (flags, tests); `where` labels errors.
void set_value(program_config& cfg, const std::string& dotted_key, const std::string& value, const std::string& where,
               std::vector<config_error>& errors);
/// Every key's range again (for configs built in code) plus the checks that span keys
/// (breaker.cooldown_max_ms >= breaker.cooldown_ms). Errors are placed at the dotted key.
void validate(const program_config& cfg, std::vector<config_error>& errors);

/// {"http":{"listen":"..."},"log":{...},...}: every key, typed (numbers as numbers).
nlohmann::json to_json(const program_config& cfg);
/// One key's value in its text form (what set_value accepts); nullopt for an unknown key.
std::optional<std::string> get_value(const program_config& cfg, const std::string& dotted_key);

struct config_change {
  std::string key;  // dotted
  std::string before, after;
  bool reloadable = false;
  bool operator==(const config_change&) const = default;
};
/// The keys whose values differ, in all_keys() order.
std::vector<config_change> diff(const program_config& before, const program_config& after);
/// SIGHUP: copies the reloadable keys of `reloaded` into `running`; returns diff(running, reloaded)
/// as it was before, so the caller can log what it adopted and what waits for a restart.
std::vector<config_change> apply_reloadable(program_config& running, const program_config& reloaded);
bool is_reloadable(const std::string& dotted_key);

/// "http.listen", "log.level", ... in table order.
std::vector<std::string> all_keys();
/// "breaker.cooldown_ms" -> "RINGFLOW_BREAKER_COOLDOWN_MS".
std::string to_env_name(const std::string& dotted_key);

/// One key for documentation and `--help`: type and allowed values in words, default as text.
struct key_info {
  std::string key;
  std::string env;
  std::string type;     // "integer", "number", "choice", "listen", "string"
  std::string allowed;  // "1 .. 64", ">= 0", "trace|debug|info|warn|error|off", "" = anything
  std::string default_value;
  bool reloadable = false;
  std::string help;
};
std::vector<key_info> describe_keys();

/// HTTP listen address split; nullopt for "off" or an invalid one (brackets of an IPv6 host removed).
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<listen_address> parse_listen(std::string_view text);

/// A CPU list ("0,2-3", spaces allowed; "" = none): the CPUs in ascending order, or nullopt when
/// the text is not a list of CPU numbers 0 .. 1023 and ranges.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);

/// The fault ladder's settings (ladder.* and breaker.*); the rest of ladder_config keeps its defaults.
/// (Defined in config_ladder.cpp; include ringflow/supervision/fault_ladder.hpp to call it.)
ringflow::ladder_config to_ladder_config(const program_config& cfg);

}  // namespace ringflow::ops

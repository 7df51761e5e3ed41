// The program config (ringflow/runtime/config.hpp): layers and their precedence, errors with
// positions, the environment's RINGFLOW_ namespace, reload diffs and the ladder mapping.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ringflow/runtime/config.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

using namespace ringflow::ops;
namespace fs = std::filesystem;

namespace {

// A YAML file in the temp directory, removed at scope exit; the name carries the pid so parallel
// ctest runs of this program do not share files.
struct temp_file {
  std::string path;
  temp_file(const std::string& name, const std::string& text) {
    path = (fs::temp_directory_path() / ("ringflow_test_config_" + std::to_string(::getpid()) + "_" + name)).string();
    std::ofstream(path) << text;
  }
  ~temp_file() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
};

std::string dump(const std::vector<config_error>& errors) {
  std::string s;
  for (const auto& e : errors) s += e.str() + "\n";
  return s;
}

// The one error whose `where` is `where` (fails the test when there is none or several).
const config_error& error_at(const std::vector<config_error>& errors, const std::string& where) {
  INFO(dump(errors));
  const auto n = std::count_if(errors.begin(), errors.end(), [&](const config_error& e) { return e.where == where; });
  REQUIRE(n == 1);
  return *std::find_if(errors.begin(), errors.end(), [&](const config_error& e) { return e.where == where; });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

using env_list = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("defaults are the documented values and validate cleanly", "[config]") {
  const program_config c;
  CHECK(c.http.listen == "127.0.0.1:9750");
  CHECK(c.log.level == "info");
  CHECK(c.log.format == "json");
  CHECK(c.log.file.empty());
  CHECK(c.runtime.scheduler_threads == 2);
  CHECK(c.runtime.shutdown_timeout_ms == 5000);
  CHECK(c.runtime.drain_timeout_ms == 5000);
  CHECK(c.breaker.failure_threshold == 5);
  CHECK(c.breaker.window_ms == 30000);
  CHECK(c.breaker.cooldown_ms == 30000);
  CHECK(c.breaker.cooldown_max_ms == 300000);
  CHECK(c.breaker.backoff == 2.0);
  CHECK(c.ladder.hang_timeout_ms == 1000);
  CHECK(c.ladder.restarts_before_reinit == 3);
  CHECK(c.ladder.restart_window_ms == 10000);
  CHECK(c.ladder.probe_window_ms == 1000);
  CHECK(c.ladder.backoff_initial_us == 1000);
  CHECK(c.ladder.backoff_max_ms == 1000);
  CHECK(c.ladder.stop_timeout_ms == 2000);
  CHECK(c.limits.ingress_rate_per_s == 0.0);
  CHECK(c.limits.node_window == 256);
  CHECK(c.limits.max_payload_bytes == 1048576);
  CHECK(c.trace.file.empty());
  CHECK(c.trace.sample_ratio == 1.0);

  std::vector<config_error> errors;
  validate(c, errors);
  CHECK(errors.empty());
  CHECK(c.workers.heartbeat_timeout_ms == 1000);
  CHECK(c.workers.start_timeout_ms == 5000);
  CHECK(c.workers.standby == "on");
  CHECK(c.runtime.wait == "adaptive");
  CHECK(c.runtime.cpus_scheduler.empty());
  CHECK(c.runtime.cpus_poller.empty());
  CHECK(c.runtime.kernel_threads == -1);
  CHECK(c.http.max_connections == 256);
  CHECK(c.http.max_connections_per_peer == 32);
  CHECK(c.http.header_timeout_ms == 5000);
  CHECK(c.http.idle_timeout_ms == 30000);
  CHECK(c.http.max_header_bytes == 16384);
  CHECK(c.limits.max_nodes == 100000);
  CHECK(c.limits.max_edges == 1000000);
  CHECK(c.limits.max_supervisor_depth == 32);
  CHECK(all_keys().size() == 39);
}

// Issue 20, Low findings: numbers that validated and then overflowed or spun.
TEST_CASE("breaker.backoff is bounded and ingress_rate_per_s is 0 or at least 0.001", "[config]") {
  auto errors_for = [](const char* key, const char* value) {
    program_config c;
    std::vector<config_error> errors;
    set_value(c, key, value, "flag --x", errors);
    validate(c, errors);
    return errors;
  };
  // 1e300 validated before and overflowed the breaker's cool-down (4,408 failed probes in 5 s).
  for (const char* bad : {"1e300", "101", "inf", "nan"}) {
    INFO(bad);
    const auto e = errors_for("breaker.backoff", bad);
    REQUIRE(e.size() == 1);
    CHECK(contains(e[0].what, "'breaker.backoff' must be a number in 1 .. 100"));
  }
  CHECK(errors_for("breaker.backoff", "100").empty());
  // 1e-300 validated before and spun the load thread at 100 %.
  for (const char* bad : {"1e-300", "0.0009", "2e9"}) {
    INFO(bad);
    const auto e = errors_for("limits.ingress_rate_per_s", bad);
    REQUIRE(e.size() == 1);
    CHECK(contains(e[0].what, "'limits.ingress_rate_per_s' must be"));
  }
  for (const char* good : {"0", "0.001", "1e9"}) {
    INFO(good);
    CHECK(errors_for("limits.ingress_rate_per_s", good).empty());
  }
  const auto e = errors_for("limits.max_supervisor_depth", "0");
  REQUIRE(e.size() == 1);
  CHECK(contains(e[0].what, "'limits.max_supervisor_depth' must be an integer in 1 .. 1024"));
}

TEST_CASE("a config file sets values, keys it does not name keep their defaults", "[config]") {
  temp_file f("values.yaml",
              "# ringflow config\n"
              "http:\n"
              "  listen: \"0.0.0.0:8080\"\n"
              "log: {level: debug, format: text, file: /var/log/ringflow.log}\n"
              "runtime:\n"
              "  scheduler_threads: 8\n"
              "breaker:\n"
              "  backoff: 1.5\n"
              "  cooldown_max_ms: 60000\n"
              "limits:\n"
              "  ingress_rate_per_s: 2500.5\n"
              "  max_payload_bytes: \"4096\"\n"  // quoted numbers are numbers too: env and flags are text
              "trace:\n"
              "  sample_ratio: 0.25\n"
              "ladder:\n");  // an empty section changes nothing
  program_config c;
  std::vector<config_error> errors;
  load_file(c, f.path, errors);
  INFO(dump(errors));
  REQUIRE(errors.empty());
  CHECK(c.http.listen == "0.0.0.0:8080");
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == "text");
  CHECK(c.log.file == "/var/log/ringflow.log");
  CHECK(c.runtime.scheduler_threads == 8);
  CHECK(c.breaker.backoff == 1.5);
  CHECK(c.breaker.cooldown_max_ms == 60000);
  CHECK(c.limits.ingress_rate_per_s == 2500.5);
  CHECK(c.limits.max_payload_bytes == 4096);
  CHECK(c.trace.sample_ratio == 0.25);
  CHECK(c.runtime.drain_timeout_ms == 5000);
  CHECK(c.breaker.cooldown_ms == 30000);
  CHECK(c.ladder == program_config::ladder_section{});

  SECTION("an empty file is all defaults") {
    temp_file empty("empty.yaml", "# nothing here\n");
    program_config d;
    load_file(d, empty.path, errors);
    CHECK(errors.empty());
    CHECK(d == program_config{});
  }
}

TEST_CASE("precedence: file < environment < flag, on one key set at all three levels", "[config]") {
  temp_file f("precedence.yaml", "breaker:\n  cooldown_ms: 1000\n  window_ms: 4000\n");
  program_config c;
  std::vector<config_error> errors;

  load_file(c, f.path, errors);
  CHECK(c.breaker.cooldown_ms == 1000);

  apply_env(c, {{"RINGFLOW_BREAKER_COOLDOWN_MS", "2000"}, {"RINGFLOW_LOG_LEVEL", "warn"}}, errors);
  CHECK(c.breaker.cooldown_ms == 2000);
  CHECK(c.breaker.window_ms == 4000);  // the file's, untouched by the environment
  CHECK(c.log.level == "warn");

  set_value(c, "breaker.cooldown_ms", "3000", "flag --breaker.cooldown_ms", errors);
  CHECK(c.breaker.cooldown_ms == 3000);
  CHECK(c.log.level == "warn");

  INFO(dump(errors));
  CHECK(errors.empty());
  validate(c, errors);
  CHECK(errors.empty());
}

TEST_CASE("file errors carry file:line:column of the offending key or value", "[config]") {
  program_config c;
  std::vector<config_error> errors;

  SECTION("unknown section: at the section's name, listing the sections") {
    temp_file f("section.yaml", "http:\n  listen: off\nbogus:\n  x: 1\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 1);
    const auto& e = error_at(errors, f.path + ":3:1");
    CHECK(contains(e.what, "unknown section 'bogus'"));
    CHECK(contains(e.what, "http, log, runtime, breaker, ladder, limits, trace, workers"));
    CHECK(c.http.listen == "off");  // the rest of the file still applies
  }
  SECTION("unknown key: at the key, listing the section's keys") {
    temp_file f("key.yaml", "runtime:\n  scheduler_threads: 4\n  shutdown_timeout: 10\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 1);
    const auto& e = error_at(errors, f.path + ":3:3");
    CHECK(contains(e.what, "unknown key 'shutdown_timeout' in section 'runtime'"));
    CHECK(contains(e.what,
                   "scheduler_threads, wait, cpus.scheduler, cpus.poller, kernel_threads, shutdown_timeout_ms, "
                   "drain_timeout_ms"));
    CHECK(c.runtime.scheduler_threads == 4);
  }
  SECTION("wrong type: at the value") {
    temp_file f("type.yaml", "log:\n  level: info\nbreaker:\n  backoff: [1, 2]\n  failure_threshold: many\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 2);
    CHECK(contains(error_at(errors, f.path + ":4:12").what,
                   "'breaker.backoff' must be a number in 1 .. 100, got 'a list'"));
    CHECK(contains(error_at(errors, f.path + ":5:22").what,
                   "'breaker.failure_threshold' must be an integer in 1 .. 1000000, got 'many'"));
    CHECK(c.breaker == program_config::breaker_section{});  // bad values leave the keys as they were
  }
  SECTION("out of range: at the value, naming the range") {
    temp_file f("range.yaml", "runtime:\n    scheduler_threads: 100\ntrace: {sample_ratio: 1.5}\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 2);
    CHECK(contains(error_at(errors, f.path + ":2:24").what,
                   "'runtime.scheduler_threads' must be an integer in 1 .. 64, got '100'"));
    CHECK(contains(error_at(errors, f.path + ":3:23").what,
                   "'trace.sample_ratio' must be a number in 0 .. 1, got '1.5'"));
    CHECK(c.runtime.scheduler_threads == 2);
  }
  SECTION("trailing garbage and exponents in integers: at the value") {
    temp_file f("garbage.yaml", "ladder:\n  hang_timeout_ms: 12abc\n  restarts_before_reinit: 1e3\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 2);
    CHECK(contains(error_at(errors, f.path + ":2:20").what, "got '12abc'"));
    CHECK(contains(error_at(errors, f.path + ":3:27").what, "got '1e3'"));
  }
  SECTION("a bad choice and a bad listen address") {
    temp_file f("choice.yaml", "log:\n  level: loud\nhttp:\n  listen: localhost\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 2);
    CHECK(contains(error_at(errors, f.path + ":2:10").what, "one of trace|debug|info|warn|error|off, got 'loud'"));
    CHECK(contains(error_at(errors, f.path + ":4:11").what, "HOST:PORT"));
  }
  SECTION("a section that is not a mapping, a key given twice, a root that is not a mapping") {
    temp_file f("shape.yaml", "log: debug\nlimits:\n  node_window: 8\n  node_window: 9\n");
    load_file(c, f.path, errors);
    CHECK(contains(error_at(errors, f.path + ":1:6").what, "section 'log' must be a mapping"));
    CHECK(contains(error_at(errors, f.path + ":4:3").what, "given twice"));
    temp_file g("list.yaml", "- http\n- log\n");
    errors.clear();
    load_file(c, g.path, errors);
    CHECK(contains(error_at(errors, g.path + ":1:1").what, "must be a mapping of sections"));
  }
}

TEST_CASE("every problem in a file is reported, not just the first", "[config]") {
  temp_file f("many.yaml",
              "http: {listen: \"1.2.3.4:70000\"}\n"
              "log: {colour: true}\n"
              "tracing: {}\n"
              "limits: {node_window: 0, max_payload_bytes: 63}\n");
  program_config c;
  std::vector<config_error> errors;
  load_file(c, f.path, errors);
  INFO(dump(errors));
  CHECK(errors.size() == 5);
  CHECK(c == program_config{});
}

TEST_CASE("a YAML syntax error reports its position, an unreadable file names the file", "[config]") {
  program_config c;
  std::vector<config_error> errors;
  SECTION("syntax") {
    temp_file f("syntax.yaml", "http:\n  listen: off\nlog:\n  level: [debug\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 1);
    INFO(dump(errors));
    CHECK(errors[0].where.rfind(f.path + ":", 0) == 0);
    CHECK(contains(errors[0].what, "YAML syntax error"));
    // The flow sequence opened on line 4 never closes; yaml-cpp notices at the end of input (line 5).
    const std::string pos = errors[0].where.substr(f.path.size() + 1);
    const int line = std::stoi(pos.substr(0, pos.find(':')));
    CHECK(line >= 4);
    CHECK(line <= 5);
    CHECK(c == program_config{});  // nothing of a file that does not parse is applied
  }
  SECTION("syntax: a bad indentation is placed on its line") {
    temp_file f("indent.yaml", "http:\n  listen: off\n log: 1\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where.rfind(f.path + ":3:", 0) == 0);
  }
  SECTION("missing") {
    const std::string path = (fs::temp_directory_path() / "ringflow_test_config_does_not_exist.yaml").string();
    load_file(c, path, errors);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].where == path);
    CHECK(contains(errors[0].what, "cannot read"));
  }
  SECTION("a directory") {
    load_file(c, fs::temp_directory_path().string(), errors);
    REQUIRE(errors.size() == 1);
    CHECK(contains(errors[0].what, "directory"));
  }
}

TEST_CASE("a topology file's config: block is applied with the topology file's positions", "[config]") {
  const YAML::Node topo = YAML::Load(
      "name: demo\n"
      "config:\n"
      "  breaker:\n"
      "    cooldown_ms: 1500\n"
      "  log:\n"
      "    level: trace\n"
      "  ladder: {hang_ms: 5}\n"
      "nodes: []\n");
  program_config c;
  std::vector<config_error> errors;
  apply_yaml(c, topo["config"], "topology.yaml", errors);
  CHECK(c.breaker.cooldown_ms == 1500);
  CHECK(c.log.level == "trace");
  REQUIRE(errors.size() == 1);
  CHECK(contains(error_at(errors, "topology.yaml:7:12").what, "unknown key 'hang_ms' in section 'ladder'"));
}

TEST_CASE("environment: RINGFLOW_<SECTION>_<KEY>, other RINGFLOW_ variables are not config", "[config]") {
  program_config c;
  std::vector<config_error> errors;
  apply_env(c,
            {{"PATH", "/usr/bin"},
             {"RINGFLOW_FOO", "1"},
             {"RINGFLOW_STRESS_MESSAGES", "100000"},
             {"RINGFLOW_HTTPD_PORT", "1"},  // the token is HTTPD, not HTTP
             {"RINGFLOW_BREAKER_FAILURE_THRESHOLD", "7"},
             {"RINGFLOW_LIMITS_INGRESS_RATE_PER_S", "1e3"},
             {"RINGFLOW_HTTP_LISTEN", "off"},
             {"RINGFLOW_LOG_FILE", ""}},
            errors);
  INFO(dump(errors));
  CHECK(errors.empty());
  CHECK(c.breaker.failure_threshold == 7);
  CHECK(c.limits.ingress_rate_per_s == 1000.0);
  CHECK(c.http.listen == "off");

  apply_env(c,
            {{"RINGFLOW_HTTP_NOPE", "1"},
             {"RINGFLOW_TRACE", "x"},
             {"RINGFLOW_LOG_Level", "debug"},  // names are exact: upper case
             {"RINGFLOW_RUNTIME_SCHEDULER_THREADS", "12abc"}},
            errors);
  REQUIRE(errors.size() == 4);
  CHECK(contains(error_at(errors, "env RINGFLOW_HTTP_NOPE").what, "RINGFLOW_HTTP_LISTEN"));
  CHECK(contains(error_at(errors, "env RINGFLOW_TRACE").what, "RINGFLOW_TRACE_FILE, RINGFLOW_TRACE_SAMPLE_RATIO"));
  error_at(errors, "env RINGFLOW_LOG_Level");
  CHECK(contains(error_at(errors, "env RINGFLOW_RUNTIME_SCHEDULER_THREADS").what, "1 .. 64, got '12abc'"));
  CHECK(c.log.level == "info");
  CHECK(c.runtime.scheduler_threads == 2);
}

TEST_CASE("process_environment reads the process's variables", "[config]") {
  REQUIRE(::setenv("RINGFLOW_LADDER_PROBE_WINDOW_MS", "777", 1) == 0);
  const auto env = process_environment();
  ::unsetenv("RINGFLOW_LADDER_PROBE_WINDOW_MS");
  const std::pair<std::string, std::string> var{"RINGFLOW_LADDER_PROBE_WINDOW_MS", "777"};
  CHECK(std::count(env.begin(), env.end(), var) == 1);
  program_config c;
  std::vector<config_error> errors;
  apply_env(c, env, errors);
  CHECK(c.ladder.probe_window_ms == 777);
}

TEST_CASE("set_value (flags): whole-text parsing, ranges, unknown keys", "[config]") {
  program_config c;
  std::vector<config_error> errors;
  set_value(c, "http.listen", "[::1]:0", "flag --http", errors);
  set_value(c, "breaker.backoff", "3", "flag --backoff", errors);
  set_value(c, "limits.node_window", "1048576", "flag", errors);
  set_value(c, "trace.file", "/tmp/t.jsonl", "flag", errors);
  INFO(dump(errors));
  REQUIRE(errors.empty());
  CHECK(c.http.listen == "[::1]:0");
  CHECK(c.breaker.backoff == 3.0);
  CHECK(c.limits.node_window == 1048576);
  CHECK(c.trace.file == "/tmp/t.jsonl");

  const program_config before = c;
  for (const char* bad : {"", " 5", "5 ", "+5", "0x10", "1.5", "1e3", "12abc", "1048577", "0"})
    set_value(c, "limits.node_window", bad, "flag --node-window", errors);
  for (const char* bad : {"nan", "inf", "-0.1", "1.0.0", "2x"}) set_value(c, "trace.sample_ratio", bad, "flag", errors);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:65536", ":80", "::1:80", "[::1]80", "h:-1", "h:8o", "OFF"})
    set_value(c, "http.listen", bad, "flag --http", errors);
  CHECK(errors.size() == 10 + 5 + 8);
  CHECK(c == before);

  errors.clear();
  set_value(c, "breaker.cooldown", "1", "flag --x", errors);
  set_value(c, "nosuch.key", "1", "flag --y", errors);
  set_value(c, "http", "1", "flag --z", errors);
  REQUIRE(errors.size() == 3);
  CHECK(contains(error_at(errors, "flag --x").what, "section 'breaker' has: failure_threshold, window_ms"));
  CHECK(contains(error_at(errors, "flag --y").what, "http, log, runtime"));
  error_at(errors, "flag --z");
}

TEST_CASE("parse_listen splits host and port", "[config]") {
  auto a = parse_listen("127.0.0.1:9750");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9750);
  a = parse_listen("[::]:65535");
  REQUIRE(a);
  CHECK(a->host == "::");
  CHECK(a->port == 65535);
  CHECK_FALSE(parse_listen("off"));
  CHECK_FALSE(parse_listen("[]:80"));
  CHECK_FALSE(parse_listen("a b:80"));
  // Bytes no resolver takes are refused here, not at the bind (found by ringflow_fuzz_config).
  CHECK_FALSE(parse_listen("127.0.0@.1:80"));
  CHECK_FALSE(parse_listen("host\xff:80"));
  CHECK_FALSE(parse_listen("[::1/8]:80"));
  CHECK(parse_listen("my-host.local:80"));
  CHECK(parse_listen("[fe80::1%eth0]:80"));
}

TEST_CASE("validate: ranges of values set in code and cooldown_max_ms >= cooldown_ms", "[config]") {
  program_config c;
  std::vector<config_error> errors;
  c.breaker.cooldown_ms = 10000;
  c.breaker.cooldown_max_ms = 10000;  // equal is fine
  validate(c, errors);
  CHECK(errors.empty());

  c.breaker.cooldown_max_ms = 9999;
  validate(c, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == "breaker.cooldown_max_ms");
  CHECK(contains(errors[0].what, "must be >= 'breaker.cooldown_ms' (10000), got '9999'"));

  // The loaders accept each key on its own; the cross-key check is validate's.
  errors.clear();
  program_config d;
  set_value(d, "breaker.cooldown_max_ms", "100", "flag", errors);
  CHECK(errors.empty());
  validate(d, errors);
  CHECK(errors.size() == 1);

  errors.clear();
  program_config e;
  e.runtime.scheduler_threads = 0;
  e.log.format = "xml";
  e.trace.sample_ratio = -1;
  validate(e, errors);
  CHECK(errors.size() == 3);
  CHECK(contains(error_at(errors, "runtime.scheduler_threads").what, "got '0'"));
  error_at(errors, "log.format");
  error_at(errors, "trace.sample_ratio");
}

TEST_CASE("diff lists exactly the changed keys and marks reloadability", "[config]") {
  const program_config a;
  CHECK(diff(a, a).empty());

  program_config b = a;
  b.log.level = "debug";
  b.http.listen = "off";
  b.breaker.backoff = 1.5;
  b.limits.node_window = 512;
  const auto changes = diff(a, b);
  REQUIRE(changes.size() == 4);
  // In all_keys() order.
  CHECK(changes[0] == config_change{"http.listen", "127.0.0.1:9750", "off", false});
  CHECK(changes[1] == config_change{"log.level", "info", "debug", true});
  CHECK(changes[2] == config_change{"breaker.backoff", "2", "1.5", true});
  CHECK(changes[3] == config_change{"limits.node_window", "256", "512", false});

  SECTION("apply_reloadable adopts only the reloadable keys") {
    program_config running = a;
    const auto seen = apply_reloadable(running, b);
    CHECK(seen == changes);
    CHECK(running.log.level == "debug");
    CHECK(running.breaker.backoff == 1.5);
    CHECK(running.http.listen == "127.0.0.1:9750");
    CHECK(running.limits.node_window == 256);
    const auto left = diff(running, b);
    REQUIRE(left.size() == 2);
    CHECK_FALSE(left[0].reloadable);
    CHECK_FALSE(left[1].reloadable);
  }
}

TEST_CASE("reloadable keys are the documented ones", "[config]") {
  std::vector<std::string> reloadable;
  for (const auto& k : all_keys())
    if (is_reloadable(k)) reloadable.push_back(k);
  CHECK(reloadable == std::vector<std::string>{"log.level", "breaker.failure_threshold", "breaker.window_ms",
                                               "breaker.cooldown_ms", "breaker.cooldown_max_ms", "breaker.backoff",
                                               "limits.ingress_rate_per_s", "limits.max_payload_bytes",
                                               "trace.sample_ratio"});
  CHECK_FALSE(is_reloadable("nosuch.key"));
}

TEST_CASE("to_ladder_config maps the ladder and breaker sections", "[config]") {
  program_config c;
  c.ladder.hang_timeout_ms = 250;
  c.ladder.restarts_before_reinit = 4;
  c.ladder.restart_window_ms = 6000;
  c.ladder.probe_window_ms = 700;
  c.ladder.backoff_initial_us = 1500;
  c.ladder.backoff_max_ms = 80;
  c.ladder.stop_timeout_ms = 900;
  c.breaker.failure_threshold = 3;
  c.breaker.window_ms = 2000;
  c.breaker.cooldown_ms = 1500;
  c.breaker.cooldown_max_ms = 9000;
  c.breaker.backoff = 3.5;
  const ringflow::ladder_config l = to_ladder_config(c);
  using namespace std::chrono_literals;
  CHECK(l.hang_timeout == 250ms);
  CHECK(l.restarts_before_reinit == 4u);
  CHECK(l.restart_window == 6000ms);
  CHECK(l.probe_window == 700ms);
  CHECK(l.backoff_initial == 1500us);
  CHECK(l.backoff_max == 80ms);
  CHECK(l.stop_timeout == 900ms);
  CHECK(l.breaker.failure_threshold == 3u);
  CHECK(l.breaker.window == 2000ms);
  CHECK(l.breaker.open_for == 1500ms);
  CHECK(l.breaker.max_open_for == 9000ms);
  CHECK(l.breaker.backoff == 3.5);

  // The defaults map to the ladder's own defaults.
  const ringflow::ladder_config d = to_ladder_config(program_config{});
  const ringflow::ladder_config ref;
  CHECK(d.hang_timeout == ref.hang_timeout);
  CHECK(d.restarts_before_reinit == ref.restarts_before_reinit);
  CHECK(d.backoff_initial == ref.backoff_initial);
  CHECK(d.breaker.open_for == ref.breaker.open_for);
  CHECK(d.breaker.max_open_for == ref.breaker.max_open_for);
}

TEST_CASE("to_json has every key, typed, names and descriptions agree with all_keys", "[config]") {
  program_config c;
  c.limits.ingress_rate_per_s = 12.5;
  const nlohmann::json j = to_json(c);
  std::size_t n = 0;
  for (const auto& [section, body] : j.items()) n += body.size();
  const auto keys = all_keys();
  CHECK(n == keys.size());
  for (const auto& k : keys) {
    const auto dot = k.find('.');
    INFO(k);
    REQUIRE(j.contains(k.substr(0, dot)));
    CHECK(j[k.substr(0, dot)].contains(k.substr(dot + 1)));
  }
  CHECK(j["http"]["listen"] == "127.0.0.1:9750");
  CHECK(j["runtime"]["scheduler_threads"].is_number_integer());
  CHECK(j["runtime"]["scheduler_threads"] == 2);
  CHECK(j["limits"]["ingress_rate_per_s"] == 12.5);
  CHECK(j["breaker"]["backoff"].is_number_float());

  CHECK(to_env_name("breaker.cooldown_ms") == "RINGFLOW_BREAKER_COOLDOWN_MS");
  CHECK(to_env_name("http.listen") == "RINGFLOW_HTTP_LISTEN");
  const auto info = describe_keys();
  REQUIRE(info.size() == keys.size());
  for (std::size_t i = 0; i < info.size(); ++i) {
    CHECK(info[i].key == keys[i]);
    CHECK(info[i].env == to_env_name(keys[i]));
    CHECK(info[i].default_value == *get_value(program_config{}, keys[i]));
    CHECK(info[i].reloadable == is_reloadable(keys[i]));
  }
  CHECK(get_value(c, "limits.ingress_rate_per_s") == std::optional<std::string>("12.5"));
  CHECK_FALSE(get_value(c, "nosuch.key"));
}

TEST_CASE("every key round-trips through its text form in every layer", "[config]") {
  // get_value's text is what set_value, the environment and YAML accept, so a dumped config reloads as itself.
  program_config c;
  c.log.level = "error";
  c.breaker.backoff = 1.25;
  c.limits.ingress_rate_per_s = 0.1;
  c.trace.file = "trace: with colon";
  c.runtime.wait = "park";
  c.runtime.cpus_scheduler = "0";
  env_list env;
  for (const auto& k : all_keys()) env.emplace_back(to_env_name(k), *get_value(c, k));
  program_config from_env, from_yaml, from_flags;
  std::vector<config_error> errors;
  apply_env(from_env, env, errors);
  for (const auto& k : all_keys()) set_value(from_flags, k, *get_value(c, k), "flag", errors);
  INFO(dump(errors));
  REQUIRE(errors.empty());
  CHECK(from_env == c);
  CHECK(from_flags == c);
  YAML::Node root;
  for (const auto& k : all_keys()) {
    const auto dot = k.find('.');
    root[k.substr(0, dot)][k.substr(dot + 1)] = *get_value(c, k);
  }
  temp_file f("roundtrip.yaml", YAML::Dump(root));
  load_file(from_yaml, f.path, errors);
  INFO(dump(errors));
  CHECK(errors.empty());
  CHECK(from_yaml == c);
}

TEST_CASE("runtime.wait and runtime.cpus: choices, CPU lists as YAML lists or text, nested or dotted", "[config]") {
  program_config c;
  std::vector<config_error> errors;
  SECTION("nested mapping with lists and ranges") {
    temp_file f("cpus.yaml", "runtime:\n  wait: spin\n  cpus:\n    scheduler: [0, 1]\n    poller: \"2-3, 5\"\n");
    load_file(c, f.path, errors);
    INFO(dump(errors));
    REQUIRE(errors.empty());
    CHECK(c.runtime.wait == "spin");
    CHECK(c.runtime.cpus_scheduler == "0,1");
    CHECK(c.runtime.cpus_poller == "2-3, 5");
    CHECK(parse_cpu_list(c.runtime.cpus_poller) == std::vector<int>{2, 3, 5});
  }
  SECTION("bad values are refused with the key and what it must be") {
    temp_file f("badcpus.yaml", "runtime:\n  wait: sometimes\n  cpus:\n    scheduler: [0, x]\n    pollr: [1]\n");
    load_file(c, f.path, errors);
    REQUIRE(errors.size() == 3);
    CHECK(contains(error_at(errors, f.path + ":2:9").what, "one of park|adaptive|spin"));
    CHECK(contains(error_at(errors, f.path + ":4:16").what, "'runtime.cpus.scheduler' must be a CPU list"));
    CHECK(contains(error_at(errors, f.path + ":5:5").what, "unknown key 'cpus.pollr'"));
    CHECK(c.runtime.wait == "adaptive");
    CHECK(c.runtime.cpus_scheduler.empty());
  }
  SECTION("environment and flags use the dotted key") {
    apply_env(c, {{"RINGFLOW_RUNTIME_CPUS_POLLER", "1"}, {"RINGFLOW_RUNTIME_WAIT", "park"}}, errors);
    set_value(c, "runtime.cpus.scheduler", "0-1", "flag", errors);
    set_value(c, "runtime.cpus.scheduler", "1-0", "flag", errors);  // a reversed range
    REQUIRE(errors.size() == 1);
    CHECK(contains(errors[0].what, "'runtime.cpus.scheduler' must be a CPU list"));
    CHECK(c.runtime.cpus_poller == "1");
    CHECK(c.runtime.cpus_scheduler == "0-1");
    CHECK(c.runtime.wait == "park");
  }
  SECTION("parse_cpu_list") {
    CHECK(parse_cpu_list("") == std::vector<int>{});
    CHECK(parse_cpu_list("3,1,1-2") == std::vector<int>{1, 2, 3});
    CHECK_FALSE(parse_cpu_list("1,"));
    CHECK_FALSE(parse_cpu_list("-1"));
    CHECK_FALSE(parse_cpu_list("1024"));
    CHECK_FALSE(parse_cpu_list("a"));
  }
}

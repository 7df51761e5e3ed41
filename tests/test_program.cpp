// The `ringflow` program as operators use it: spawned as a process, its exit codes, its output,
// its summary JSON, signals. RINGFLOW_PROGRAM is the built binary.
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/program_child.hpp"
#include "support/program_run.hpp"
#include "support/prom_parse.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ringflow::testing::poll_until;
using ringflow::testing::process_gone;
using ringflow::testing::program_child;
using ringflow::testing::segments_of;

namespace {

const std::string program = RINGFLOW_PROGRAM;
const std::string examples = std::string(RINGFLOW_SOURCE_DIR) + "/examples/topologies/";

using ringflow::testing::outcome;
using ringflow::testing::slurp;
using ringflow::testing::temp_dir;
using ringflow::testing::write_file;

outcome run(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  return ringflow::testing::run_program(program, args, env);
}

}  // namespace

TEST_CASE("usage errors exit 2, --help and --version exit 0", "[program]") {
  CHECK(run({}).code == 2);
  CHECK(run({"frobnicate"}).code == 2);
  CHECK(run({"run"}).code == 2);  // the topology is required
  CHECK(run({"run", examples + "pipeline.yaml", "--backend", "tpu"}).code == 2);
  CHECK(run({"run", examples + "pipeline.yaml", "--duration", "-1"}).code == 2);
  CHECK(run({"run", examples + "pipeline.yaml", "--no-such-flag"}).code == 2);
  CHECK(run({"run", examples + "pipeline.yaml", "--http", "nonsense"}).code == 2);  // a bad flag value
  CHECK(run({"kernel-host"}).code == 2);                                            // --segment is required
  const outcome kh = run({"kernel-host", "--segment", "/ringflow-no-such-segment"});
  CHECK(kh.code == 3);  // not a segment: refused, clearly
  CHECK_THAT(kh.err, Catch::Contains("cannot open segment"));
  const outcome v = run({"--version"});
  CHECK(v.code == 0);
  CHECK_THAT(v.out, Catch::Contains("ringflow " RINGFLOW_VERSION));
  for (const char* sub : {"run", "validate", "devices", "kernel-host"}) {
    const outcome h = run({sub, "--help"});
    CHECK(h.code == 0);
    CHECK_THAT(h.out, Catch::Contains(sub));
  }
}

TEST_CASE("validate: 0 for the shipped topologies, 3 with file:line:column for a bad one", "[program]") {
  for (const char* f : {"supervised-demo.yaml", "pipeline.yaml", "fanout.yaml", "stateful-demo.yaml"}) {
    const outcome o = run({"validate", examples + f});
    INFO(o.err);
    CHECK(o.code == 0);
    CHECK_THAT(o.out, Catch::Contains(": ok: topology"));
  }
  const fs::path bad = write_file("bad.yaml",
                                  "name: bad\n"
                                  "nodes:\n"
                                  "  - {name: a, kernel: fft}\n"
                                  "  - {name: b, function: sink, type: Echo, replicas: 2}\n");
  const outcome o = run({"validate", bad.string()});
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains(bad.string() + ":3:23: node 'a': unknown kernel 'fft'"));
  CHECK_THAT(o.err, Catch::Contains(bad.string() + ":4:53: node 'b': 'replicas' is for ring nodes"));
  CHECK(run({"validate", (temp_dir() / "missing.yaml").string()}).code == 3);
  // A bad config block inside the topology is a topology error too.
  const fs::path badcfg =
      write_file("badcfg.yaml", "name: c\nconfig: {breaker: {cooldown: 5}}\nnodes: [{name: a, kernel: echo}]\n");
  const outcome c = run({"validate", badcfg.string()});
  CHECK(c.code == 3);
  CHECK_THAT(c.err, Catch::Contains("cooldown"));
}

TEST_CASE("run: bad topology or config exits 3, an unavailable backend exits 4", "[program]") {
  const fs::path bad = write_file("bad2.yaml", "name: x\nnodes: []\n");
  CHECK(run({"run", bad.string(), "--http", "off"}).code == 3);
  const fs::path cfg = write_file("cfg.yaml", "http: {listen: off}\nlog: {levle: info}\n");
  const outcome c = run({"run", examples + "pipeline.yaml", "--config", cfg.string(), "--duration", "1"});
  CHECK(c.code == 3);
  CHECK_THAT(c.err, Catch::Contains(cfg.string() + ":2:7"));
  const outcome e =
      run({"run", examples + "pipeline.yaml", "--http", "off", "--duration", "1"}, {"RINGFLOW_LOG_LEVLE=info"});
  CHECK(e.code == 3);
  CHECK_THAT(e.err, Catch::Contains("RINGFLOW_LOG_LEVLE"));
  const outcome g = run({"run", examples + "pipeline.yaml", "--http", "off", "--duration", "1", "--backend", "cuda"});
  CHECK(g.code == 4);
  CHECK_THAT(g.err, Catch::Contains("backend 'cuda' is not available"));
  // A ring node pinned to a CPU this process may not use: exit 4, naming the node and the CPU.
  const fs::path pinned =
      write_file("pinned.yaml", "name: p\nnodes: [{name: a, kernel: echo, backend: cpu, cpus: [1023]}]\n");
  const outcome pin = run({"run", pinned.string(), "--http", "off", "--duration", "0.5"});
  CHECK(pin.code == 4);
  CHECK_THAT(pin.err, Catch::Contains("node 'a': cpus: CPU 1023 is not in this process's allowed CPU set"));
  const outcome s =
      run({"run", pinned.string(), "--http", "off", "--duration", "0.5"}, {"RINGFLOW_RUNTIME_CPUS_POLLER=1023"});
  CHECK(s.code == 4);
  CHECK_THAT(s.err, Catch::Contains("completion poller: cpus: CPU 1023"));
}

TEST_CASE("config precedence: file < environment < flag, as the effective config logged at start", "[program]") {
  const fs::path cfg = write_file("prec.yaml",
                                  "http: {listen: off}\nbreaker: {cooldown_ms: 1111, failure_threshold: 7}\n"
                                  "limits: {node_window: 100}\n");
  const fs::path sum = temp_dir() / "prec-summary.json";
  const outcome o = run({"run", examples + "pipeline.yaml", "--config", cfg.string(), "--duration", "0.5",
                         "--summary-json", sum.string()},
                        {"RINGFLOW_BREAKER_COOLDOWN_MS=2222", "RINGFLOW_LIMITS_NODE_WINDOW=200"});
  REQUIRE(o.code == 0);
  nlohmann::json effective;
  std::istringstream lines(o.err);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("component", "") == "config") effective = j["config"];
  }
  REQUIRE(effective.is_object());
  CHECK(effective["breaker"]["failure_threshold"] == 7);  // file
  CHECK(effective["breaker"]["cooldown_ms"] == 2222);     // env over file
  CHECK(effective["limits"]["node_window"] == 200);       // env over file
  CHECK(effective["http"]["listen"] == "off");            // file
  CHECK(effective["ladder"]["hang_timeout_ms"] == 1000);  // default
}

TEST_CASE("the supervised demo runs end to end: restart, reroute and fail-back, nothing lost", "[program][demo]") {
  const fs::path sum = temp_dir() / "demo-summary.json";
  const fs::path trace = temp_dir() / "demo-trace.jsonl";
  const outcome o = run({"run", examples + "supervised-demo.yaml", "--duration", "14", "--http", "127.0.0.1:0",
                         "--summary-json", sum.string(), "--trace", trace.string()});
  INFO(o.err.substr(o.err.size() > 4000 ? o.err.size() - 4000 : 0));
  REQUIRE(o.code == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  for (const char* k :
       {"sent", "replied", "errors", "lost", "duplicated", "faults_injected", "restarts", "reroutes", "failbacks",
        "p50_us", "p99_us", "p999_us", "intended_p50_us", "intended_p99_us", "intended_p999_us"})
    CHECK(s.contains(k));
  CHECK(s["lost"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() > 10000);
  CHECK(s["sent"].get<std::uint64_t>() ==
        s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>() + s["lost"].get<std::uint64_t>());
  CHECK(s["faults_injected"].get<std::uint64_t>() >= 4);
  CHECK(s["restarts"].get<std::uint64_t>() >= 1);
  CHECK(s["reroutes"].get<std::uint64_t>() >= 1);
  CHECK(s["failbacks"].get<std::uint64_t>() >= 1);
  CHECK(s["p50_us"].get<double>() > 0);
  CHECK(s["p99_us"].get<double>() >= s["p50_us"].get<double>());
  // The log has one structured event per fault, restart, reroute and fail-back.
  int faults = 0, restarts = 0, reroutes = 0, failbacks = 0;
  std::istringstream lines(o.err);
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(j.is_object());  // every line of the log is a JSON object
    for (const char* k : {"ts", "level", "component", "msg"}) CHECK(j.contains(k));
    if (j["component"] != "ladder") continue;
    CHECK(j.contains("ring"));
    const std::string ev = j.value("event", "");
    faults += ev == "fault";
    restarts += ev == "restart";
    reroutes += ev == "reroute";
    failbacks += ev == "fail_back";
  }
  CHECK(faults >= 4);
  CHECK(restarts >= 1);
  CHECK(reroutes >= 1);
  CHECK(failbacks >= 1);
  // Spans: OTLP-JSON lines; every kernel span's id came back through the reply slot header.
  std::ifstream tf(trace);
  std::size_t span_lines = 0, hops = 0, carried = 0;
  for (std::string line; std::getline(tf, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    ++span_lines;
    const auto& spans = j["resourceSpans"][0]["scopeSpans"][0]["spans"];
    if (spans.size() != 3) continue;
    ++hops;
    CHECK(spans[1]["parentSpanId"] == spans[0]["spanId"]);      // kernel <- enqueue
    carried += spans[2]["parentSpanId"] == spans[1]["spanId"];  // reply <- kernel, via the slot header
  }
  CHECK(span_lines > 1000);
  CHECK(hops > 1000);
  CHECK(carried == hops);
}

TEST_CASE("SIGTERM during load drains: exit 0, the summary says nothing was lost", "[program][signals]") {
  const fs::path sum = temp_dir() / "term-summary.json";
  const fs::path err = temp_dir() / "term-err";
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    execl(program.c_str(), program.c_str(), "run", (examples + "pipeline.yaml").c_str(), "--duration", "0", "--http",
          "127.0.0.1:0", "--summary-json", sum.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Find the HTTP port in the log, then watch /metrics until load flows.
  int port = 0;
  REQUIRE(poll_until(
      [&] {
        std::istringstream lines(slurp(err));
        for (std::string line; std::getline(lines, line);) {
          const auto j = nlohmann::json::parse(line, nullptr, false);
          if (j.is_object() && j.value("component", "") == "http") port = j.value("port", 0);
        }
        return port != 0;
      },
      60s));
  httplib::Client cli("127.0.0.1", port);
  double replied = 0;
  REQUIRE(poll_until(
      [&] {
        if (auto res = cli.Get("/metrics")) {
          const auto fams = ringflow::testing::parse_prometheus(res->body);
          for (const auto& s : fams.at("ringflow_load_messages_total").samples)
            if (s.labels.at("outcome") == "replied") replied = s.value;
        }
        return replied >= 2000;
      },
      60s));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() >= 2000);
  CHECK(s["sent"].get<std::uint64_t>() == s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>());
  CHECK(s["errors"] == 0);  // drained: every message in flight at the signal was served
  CHECK_THAT(slurp(err), Catch::Contains("\"signal\""));
}

TEST_CASE("devices lists the CPU and the sim device, as a table or JSON", "[program]") {
  const outcome t = run({"devices"});
  CHECK(t.code == 0);
  CHECK_THAT(t.out, Catch::Contains("cpu:0"));
  CHECK_THAT(t.out, Catch::Contains("sim:0"));
  const outcome j = run({"devices", "--json"});
  REQUIRE(j.code == 0);
  const auto d = nlohmann::json::parse(j.out);
  REQUIRE(d.is_array());
  bool cpu = false;
  for (const auto& x : d) cpu = cpu || (x["id"] == "cpu:0" && x["available"] == true);
  CHECK(cpu);
}

TEST_CASE("SIGHUP reloads the config file: safe keys applied, the rest reported, an audit record",
          "[program][signals]") {
  const fs::path cfg = write_file("hup.yaml", "http: {listen: \"off\"}\nbreaker: {failure_threshold: 5}\n");
  program_child c({"run", examples + "pipeline.yaml", "--duration", "0", "--config", cfg.string()}, "hup");
  REQUIRE(c.wait_log([](const nlohmann::json& j) { return j.value("msg", "") == "topology started"; }));
  std::ofstream(cfg) << "http: {listen: \"127.0.0.1:0\"}\nbreaker: {failure_threshold: 9}\nlog: {level: warn}\n";
  kill(c.pid, SIGHUP);
  nlohmann::json audit;
  REQUIRE(c.wait_log([&](const nlohmann::json& j) {
    if (j.value("msg", "") != "config reloaded (SIGHUP)") return false;
    audit = j;
    return true;
  }));
  CHECK(audit["component"] == "audit");
  CHECK(audit["audit"] == true);
  std::set<std::string> changed, restart;
  for (const auto& x : audit["changed"]) changed.insert(x["key"].get<std::string>());
  for (const auto& x : audit["needs_restart"]) restart.insert(x["key"].get<std::string>());
  CHECK(changed == std::set<std::string>{"breaker.failure_threshold", "log.level"});
  CHECK(restart == std::set<std::string>{"http.listen"});
  // A broken file is rejected as a whole; the program keeps running on the config it has.
  std::ofstream(cfg) << "breaker: {failure_threshold: 0}\n";
  kill(c.pid, SIGHUP);
  REQUIRE(c.wait_log([](const nlohmann::json& j) { return j.value("msg", "") == "config reload rejected"; }));
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 0);
}

TEST_CASE("a second SIGTERM exits at once and the summary counts what was still open as lost", "[program][signals]") {
  // The kernel hangs for good (the watchdog would wait a minute) and the drain would wait a
  // minute: only the second signal ends the run.
  const fs::path topo = write_file("stuck.yaml",
                                   "name: stuck\n"
                                   "config: {ladder: {hang_timeout_ms: 60000}, runtime: {drain_timeout_ms: 60000},\n"
                                   "         http: {listen: \"127.0.0.1:0\"}}\n"
                                   "nodes: [{name: echo, kernel: echo, backend: sim}]\n"
                                   "load: [{name: l, target: echo, message: Echo, rate: 1000, max_in_flight: 16}]\n"
                                   "faults: [{node: echo, kind: hang, at_message: 50}]\n");
  const fs::path sum = temp_dir() / "stuck-summary.json";
  program_child c({"run", topo.string(), "--duration", "0", "--summary-json", sum.string()}, "stuck");
  int port = 0;
  REQUIRE(c.wait_log([&](const nlohmann::json& j) {
    port = j.value("component", "") == "http" ? j.value("port", 0) : 0;
    return port != 0;
  }));
  // Wait until the generator's window is full of requests the hung kernel will never answer.
  httplib::Client cli("127.0.0.1", port);
  double open = 0;
  REQUIRE(poll_until(
      [&] {
        if (auto res = cli.Get("/metrics")) {
          const auto families = ringflow::testing::parse_prometheus(res->body);  // keep it alive over the loop
          for (const auto& x : families.at("ringflow_in_flight").samples)
            if (x.labels.at("actor") == "echo") open = x.value;
        }
        return open >= 16;
      },
      60s));
  REQUIRE(open == 16);
  kill(c.pid, SIGTERM);
  REQUIRE(
      c.wait_log([](const nlohmann::json& j) { return j.value("component", "") == "audit" && j.contains("signal"); }));
  const auto t0 = std::chrono::steady_clock::now();
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 4);                                                     // messages were open: a runtime failure
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));  // not the minute-long drain
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 16);
  CHECK(s["sent"].get<std::uint64_t>() ==
        s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>() + s["lost"].get<std::uint64_t>());
}

TEST_CASE("the isolated demo: a kernel-host worker killed and poisoned mid-run, nothing lost",
          "[program][demo][faults]") {
  const fs::path sum = temp_dir() / "isolated-summary.json";
  program_child c(
      {"run", examples + "isolated-demo.yaml", "--duration", "10", "--http", "off", "--summary-json", sum.string()},
      "isolated");
  const int code = c.wait();
  const std::string log = slurp(c.err);
  INFO(log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  REQUIRE(code == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() ==
        s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>() + s["lost"].get<std::uint64_t>());
  CHECK(s["worker_restarts"].get<std::uint64_t>() >= 2);  // after the first SIGKILL and the sticky error
  CHECK(s["faults_injected"].get<std::uint64_t>() >= 3);
  CHECK(s["restarts"].get<std::uint64_t>() >= 1);
  CHECK(s["reinits"].get<std::uint64_t>() >= 1);
  CHECK(s["reroutes"].get<std::uint64_t>() >= 1);
  CHECK(s["failbacks"].get<std::uint64_t>() >= 1);
  CHECK(segments_of(c.pid).empty());  // removed on shutdown
}

TEST_CASE("SIGKILL of the service: its workers exit, the next run reclaims the segments it left", "[program][faults]") {
  program_child c({"run", examples + "isolated-demo.yaml", "--duration", "0", "--http", "127.0.0.1:0"},
                  "killed-service");
  int port = 0;
  REQUIRE(c.wait_log([&](const nlohmann::json& j) {
    port = j.value("component", "") == "http" ? j.value("port", 0) : 0;
    return port != 0;
  }));
  httplib::Client cli("127.0.0.1", port);
  std::vector<pid_t> workers;  // the active worker and its standby
  REQUIRE(poll_until(
      [&] {
        workers.clear();
        if (auto res = cli.Get("/topology")) {
          const nlohmann::json topo = nlohmann::json::parse(res->body, nullptr, false);  // alive over the loop
          if (topo.is_object())
            for (const auto& n : topo["nodes"])
              for (const char* k : {"worker_pids", "standby_pids"})
                if (n.contains(k))
                  for (const auto& p : n[k]) workers.push_back(p.get<pid_t>());
        }
        return workers.size() >= 2;
      },
      30s));
  REQUIRE(workers.size() == 2);
  REQUIRE(segments_of(c.pid).size() == 1);
  kill(c.pid, SIGKILL);
  CHECK(c.wait() == 128 + SIGKILL);
  // The orphaned workers notice their service is gone and exit on their own.
  for (pid_t w : workers) CHECK(poll_until([&] { return process_gone(w); }, 10s));
  const std::vector<std::string> left = segments_of(c.pid);
  REQUIRE(left.size() == 1);  // a crashed service cannot clean up: the next run must
  const outcome next = run({"run", examples + "isolated-demo.yaml", "--duration", "1", "--http", "off"});
  CHECK(next.code == 0);
  CHECK_THAT(next.err, Catch::Contains("reclaimed a stale kernel-host segment"));
  CHECK_THAT(next.err, Catch::Contains(left[0]));
  CHECK(segments_of(c.pid).empty());
}

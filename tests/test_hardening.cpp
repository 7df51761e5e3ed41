// Issue 20's break-it findings, each as a test of the `ringflow` program itself (spawned as a
// process, as an operator or a hostile client meets it). Each test names its finding; each failed
// on the code before the fix (the note of issue 20 says how).
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/runtime/utf8.hpp"
#include "support/program_child.hpp"
#include "support/program_run.hpp"
#include "support/prom_parse.hpp"
#include "support/raw_http.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace ringflow::testing;

namespace {

const std::string program = RINGFLOW_PROGRAM;
const std::string examples = std::string(RINGFLOW_SOURCE_DIR) + "/examples/topologies/";

outcome run(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  return run_program(program, args, env);
}

double metric(int port, const std::string& family, const std::map<std::string, std::string>& labels = {}) {
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get("/metrics");
  if (!res) return -1;
  const auto families = parse_prometheus(res->body);
  const auto f = families.find(family);
  if (f == families.end()) return -1;
  for (const auto& s : f->second.samples) {
    bool match = true;
    for (const auto& [k, v] : labels) match = match && s.labels.count(k) && s.labels.at(k) == v;
    if (match) return s.value;
  }
  return -1;
}

}  // namespace

// H1 at the program: a handful of dripping connections took /health/live down for 12-19 s.
TEST_CASE("H1: the program's /health/live answers while 100 slow clients drip headers", "[program][hardening]") {
  program_child c({"run", examples + "pipeline.yaml", "--duration", "0", "--http", "127.0.0.1:0"}, "h1");
  const int port = http_port(c);
  REQUIRE(port != 0);
  std::vector<int> slow;
  for (int i = 0; i < 100; ++i) {  // 127.0.0.2 .. 127.0.0.101: one connection per peer, under every limit
    const std::string src = "127.0.0." + std::to_string(2 + i);
    const int fd = connect_from(src.c_str(), static_cast<std::uint16_t>(port));
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, "GET /metrics HTTP/1.1\r\n"));
    slow.push_back(fd);
  }
  const auto until = std::chrono::steady_clock::now() + 2s;
  int probes = 0;
  std::chrono::steady_clock::duration worst{};
  while (std::chrono::steady_clock::now() < until) {
    for (int fd : slow) (void)send_all(fd, "X-Drip: 1\r\n");  // a header line each, never the end
    const auto t0 = std::chrono::steady_clock::now();
    const http_answer a =
        request_from("127.0.0.1", static_cast<std::uint16_t>(port), "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
    worst = std::max(worst, std::chrono::steady_clock::now() - t0);
    REQUIRE(a.status == 200);
    ++probes;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(probes >= 10);
  CHECK(worst < 1s);  // (the goal of 100 ms p99 is a benchmark row: BM_HttpLiveUnderSlowClients)
  for (int fd : slow) ::close(fd);
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 0);
}

// M1: a strict json::dump() in the text audit record threw on byte 0xFF (SIGABRT, exit 134).
TEST_CASE("M1: bytes that are not UTF-8 in a path, a config value or a rejected reload never crash",
          "[program][hardening]") {
  // The topology's own path holds 0xFF; text format at level warn writes the audit records raw.
  const fs::path topo = temp_dir() / "topo-\xff.yaml";
  fs::copy_file(examples + "pipeline.yaml", topo, fs::copy_options::overwrite_existing);
  const fs::path cfg = write_file("utf8.yaml", "http: {listen: \"off\"}\nlog: {format: text, level: warn}\n");
  program_child c({"run", topo.string(), "--duration", "0", "--config", cfg.string()}, "utf8");
  REQUIRE(poll_until([&] { return slurp(c.err).find("audit: start") != std::string::npos; }, 30s));
  // A reload the config layer rejects, its error quoting the bad bytes.
  std::ofstream(cfg) << "http: {listen: \"off\"}\nlog: {format: text, level: \"w\xff\xfe\"}\n";
  kill(c.pid, SIGHUP);
  REQUIRE(poll_until([&] { return slurp(c.err).find("config reload rejected") != std::string::npos; }, 30s));
  // An accepted one whose value holds the byte (log.file is a restart key: reported, not applied).
  std::ofstream(cfg) << "http: {listen: \"off\"}\nlog: {format: text, level: warn, file: \"/tmp/x\xff\"}\n";
  kill(c.pid, SIGHUP);
  REQUIRE(poll_until([&] { return slurp(c.err).find("config reloaded (SIGHUP)") != std::string::npos; }, 30s));
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 0);
  const std::string log = slurp(c.err);
  CHECK(ringflow::ops::is_valid_utf8(log));
  CHECK(log.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD where the bytes were
  // validate prints the same path valid too.
  const outcome v = run({"validate", topo.string()});
  CHECK(v.code == 0);
  CHECK(ringflow::ops::is_valid_utf8(v.out));
}

// M2: /dev/shm too small for kernel-host segments: SIGBUS at start (exit 135), a segment leaked.
// A private mount namespace with a 4 MiB /dev/shm (root; CI runs as root).
TEST_CASE("M2: a /dev/shm too small, or too little memory, is exit 4 with the figures", "[program][hardening]") {
  REQUIRE(geteuid() == 0);  // unshare -m and mount need root: this test is not skipped silently
  const fs::path topo = write_file("shm.yaml",
                                   "name: shm\n"
                                   "nodes: [{name: e, kernel: echo, backend: sim, host: process, "
                                   "arena_bytes: 8388608}]\n");
  const fs::path out = temp_dir() / "shm.out";
  const std::string cmd = "unshare -m sh -c 'mount -t tmpfs -o size=4m tmpfs /dev/shm && " + program + " run " +
                          topo.string() + " --duration 0.5 --http off; echo rc=$?; ls -A /dev/shm | wc -l' > " +
                          out.string() + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string o = slurp(out);
  INFO(o);
  CHECK_THAT(o, Catch::Contains("kernel-host segments need 16.5 MiB in /dev/shm, it has 4.0 MiB free"));
  CHECK_THAT(o, Catch::Contains("rc=4\n0\n"));  // exit 4, nothing left in /dev/shm
  // Memory: 16 nodes x 64 replicas x 2 rings x 256 MiB arenas (512 GiB): more than any machine here.
  std::string huge = "name: huge\nnodes:\n";
  for (int i = 0; i < 16; ++i)
    huge +=
        "  - {name: e" + std::to_string(i) + ", kernel: echo, backend: cpu, replicas: 64, arena_bytes: 268435456}\n";
  const fs::path big = write_file("big.yaml", huge);
  const outcome m = run({"run", big.string(), "--duration", "0.5", "--http", "off"});
  CHECK(m.code == 4);
  CHECK_THAT(m.err, Catch::Contains("the topology's rings need 524800.8 MiB of memory, this machine has"));
#if !defined(__SANITIZE_ADDRESS__)  // ASan reserves terabytes of shadow address space: no RLIMIT_AS run
  // An address-space limit (RLIMIT_AS) counts too: one such node against 3 GB.
  const fs::path one = write_file(
      "one.yaml", "name: one\nnodes: [{name: e, kernel: echo, backend: cpu, replicas: 64, arena_bytes: 268435456}]\n");
  const fs::path out2 = temp_dir() / "one.out";
  const std::string cmd2 = "prlimit --as=3000000000 " + program + " run " + one.string() +
                           " --duration 0.5 --http off > " + out2.string() + " 2>&1; echo rc=$? >> " + out2.string();
  REQUIRE(std::system(cmd2.c_str()) == 0);
  const std::string o2 = slurp(out2);
  INFO(o2);
  CHECK_THAT(o2, Catch::Contains("the topology's rings need 32800.0 MiB of memory, this machine has"));
  CHECK_THAT(o2, Catch::Contains("rc=4"));
#endif
  // validate is machine-independent: the same file is valid.
  CHECK(run({"validate", big.string()}).code == 0);
}

// M3: a 40,000-node chain segfaulted in validate and run; 4,000 nested supervisors took 24 s.
TEST_CASE("M3: a 40,000-node chain validates and runs, and size limits exit 3", "[program][hardening]") {
  std::string text = "name: chain\nnodes:\n";
  constexpr int n = 40000;
  for (int i = 0; i < n; ++i) text += "  - {name: n" + std::to_string(i) + ", function: passthrough, type: Echo}\n";
  text += "edges:\n";
  for (int i = 0; i + 1 < n; ++i)
    text += "  - {from: n" + std::to_string(i) + ", to: n" + std::to_string(i + 1) + "}\n";
  text += "load: [{name: l, target: n0, message: Echo, rate: 50, max_in_flight: 4}]\n";
  const fs::path topo = write_file("chain40k.yaml", text);
  const outcome v = run({"validate", topo.string()});
  INFO(v.err);
  CHECK(v.code == 0);
  const fs::path sum = temp_dir() / "chain-summary.json";
  const outcome r = run({"run", topo.string(), "--duration", "1", "--http", "off", "--summary-json", sum.string()});
  INFO(r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
  REQUIRE(r.code == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 0);
  CHECK(s["replied"].get<std::uint64_t>() > 0);
  // Past a limit (the environment's, over the default): exit 3, naming the key.
  const outcome lim =
      run({"run", topo.string(), "--duration", "1", "--http", "off"}, {"RINGFLOW_LIMITS_MAX_NODES=1000"});
  CHECK(lim.code == 3);
  CHECK_THAT(lim.err, Catch::Contains("'nodes' has 40000 entries, past limits.max_nodes (1000)"));
}

// M5: `ringflow run ... 2>&1 | head -2` killed the program with SIGPIPE (exit 141).
TEST_CASE("M5: a closed log pipe: the run goes on, counts the failed writes, drains, exits 0", "[program][hardening]") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const fs::path sum = temp_dir() / "pipe-summary.json";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::freopen("/dev/null", "w", stdout);
    execl(program.c_str(), program.c_str(), "run", (examples + "pipeline.yaml").c_str(), "--duration", "0", "--http",
          "127.0.0.1:0", "--summary-json", sum.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  // Read the log until the HTTP record (its port), as `head` would read its lines, then close.
  std::string buf;
  int port = 0;
  char chunk[4096];
  while (port == 0) {
    const ssize_t got = ::read(fds[0], chunk, sizeof chunk);
    REQUIRE(got > 0);
    buf.append(chunk, static_cast<std::size_t>(got));
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
      const auto j = nlohmann::json::parse(buf.substr(0, nl), nullptr, false);
      if (j.is_object() && j.value("component", "") == "http") port = j.value("port", 0);
    }
  }
  ::close(fds[0]);
  kill(pid, SIGHUP);  // an audit record: written into the closed pipe
  REQUIRE(poll_until([&] { return metric(port, "ringflow_log_write_failures_total") >= 1; }, 30s));
  CHECK(metric(port, "ringflow_ready") == 1);  // still serving
  kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));  // not killed by SIGPIPE
  CHECK(WEXITSTATUS(status) == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() > 0);
}

// Low findings of the program's input: each exit 3 at validate (or 2 for a flag, as every bad flag).
TEST_CASE("Low: payload_bytes past the limits, duplicate keys, a non-finite duration, a full summary disk",
          "[program][hardening]") {
  // payload_bytes the node's limits refuse validated, every message was refused, exit 0.
  const fs::path big = write_file("payload.yaml",
                                  "name: p\nconfig: {limits: {max_payload_bytes: 1024}}\n"
                                  "nodes: [{name: e, kernel: echo, backend: cpu}]\n"
                                  "load: [{name: l, target: e, message: Echo, rate: 10, payload_bytes: 4096}]\n");
  const outcome v = run({"validate", big.string()});
  CHECK(v.code == 3);
  CHECK_THAT(v.err, Catch::Contains(big.string() + ":4:8: load generator 'l': payload_bytes 4096 makes"));
  CHECK_THAT(v.err, Catch::Contains("past limits.max_payload_bytes (1024): every one would be refused"));
  CHECK(run({"run", big.string(), "--http", "off", "--duration", "0.5"}).code == 3);
  const fs::path arena = write_file("arena.yaml",
                                    "name: p\nnodes: [{name: e, kernel: echo, backend: cpu, arena_bytes: 0}]\n"
                                    "load: [{name: l, target: e, message: Echo, rate: 10, payload_bytes: 1000}]\n");
  const outcome a = run({"validate", arena.string()});
  CHECK(a.code == 3);
  CHECK_THAT(a.err, Catch::Contains("larger than node 'e''s rings carry (192 bytes: arena_bytes 0)"));
  // Duplicate keys were accepted (one silently won).
  const fs::path dup = write_file("dup.yaml", "name: d\nnodes: [{name: e, kernel: echo, window: 8, window: 9}]\n");
  const outcome d = run({"validate", dup.string()});
  CHECK(d.code == 3);
  CHECK_THAT(d.err, Catch::Contains(":2:44: key 'window' is given twice in node"));
  // --duration nan passed CLI11's range check (NaN compares false both ways).
  for (const char* bad : {"nan", "inf", "-nan", "1e400"}) {
    const outcome o = run({"run", examples + "pipeline.yaml", "--http", "off", "--duration", bad});
    INFO(bad << ": " << o.err);
    CHECK(o.code == 2);
  }
  // A summary that cannot be written (a full disk) exited 0.
  const outcome f =
      run({"run", examples + "pipeline.yaml", "--http", "off", "--duration", "0.3", "--summary-json", "/dev/full"});
  CHECK(f.code == 4);
  CHECK_THAT(f.err, Catch::Contains("cannot write the summary to '/dev/full': No space left on device"));
  // A breaker.backoff that overflowed the cool-down, an ingress rate that spun a thread.
  const fs::path nums =
      write_file("nums.yaml",
                 "name: n\nconfig: {breaker: {backoff: 1e300}, limits: {ingress_rate_per_s: 1e-300}}\n"
                 "nodes: [{name: e, kernel: echo}]\n");
  const outcome n = run({"validate", nums.string()});
  CHECK(n.code == 3);
  CHECK_THAT(n.err, Catch::Contains("'breaker.backoff' must be a number in 1 .. 100, got '1e300'"));
  CHECK_THAT(n.err, Catch::Contains("'limits.ingress_rate_per_s' must be 0 (no limit) or 0.001 .. 1e9"));
}

// Low: the fast exit of a second SIGTERM leaked the kernel hosts' segments (it skips destructors);
// ringflow_open_messages shows what is open wherever it waits.
TEST_CASE("Low: the second SIGTERM's fast exit removes its segments, and open messages are a gauge",
          "[program][hardening][signals]") {
  const fs::path topo = write_file("stuck-host.yaml",
                                   "name: stuck\n"
                                   "config: {ladder: {hang_timeout_ms: 60000}, runtime: {drain_timeout_ms: 60000},\n"
                                   "         workers: {heartbeat_timeout_ms: 60000}, http: {listen: \"127.0.0.1:0\"}}\n"
                                   "nodes: [{name: echo, kernel: echo, backend: sim, host: process}]\n"
                                   "load: [{name: l, target: echo, message: Echo, rate: 1000, max_in_flight: 16}]\n"
                                   "faults: [{node: echo, kind: hang, at_message: 50}]\n");
  program_child c({"run", topo.string(), "--duration", "0"}, "stuck-host");
  const int port = http_port(c);
  REQUIRE(port != 0);
  REQUIRE(poll_until([&] { return metric(port, "ringflow_open_messages") == 16; }, 60s));
  REQUIRE(segments_of(c.pid).size() == 1);
  kill(c.pid, SIGTERM);
  REQUIRE(
      c.wait_log([](const nlohmann::json& j) { return j.value("component", "") == "audit" && j.contains("signal"); }));
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 4);  // 16 messages were open
  CHECK(segments_of(c.pid).empty());
  CHECK(c.wait_log([](const nlohmann::json& j) {
    return j.value("msg", "") == "fast exit" && j.value("segments_removed", 0) == 1;
  }));
}

namespace {
// The worker and standby pids of node `node` in /topology.
std::pair<std::vector<pid_t>, std::vector<pid_t>> workers_of(int port, const std::string& node) {
  std::pair<std::vector<pid_t>, std::vector<pid_t>> out;
  httplib::Client cli("127.0.0.1", port);
  auto res = cli.Get("/topology");
  if (!res) return out;
  const nlohmann::json t = nlohmann::json::parse(res->body, nullptr, false);
  if (!t.is_object()) return out;
  for (const auto& n : t["nodes"])
    if (n.value("name", "") == node) {
      for (const auto& p : n.value("worker_pids", nlohmann::json::array())) out.first.push_back(p.get<pid_t>());
      for (const auto& p : n.value("standby_pids", nlohmann::json::array())) out.second.push_back(p.get<pid_t>());
    }
  return out;
}
}  // namespace

// M4: a SIGSTOPped standby stalled its node for workers.start_timeout_ms at the next restart (0
// msg/s, /metrics 4.7 s slow): standbys had no heartbeat check.
TEST_CASE("M4: a stopped standby is replaced, and a restart right after does not wait on it",
          "[program][hardening][faults]") {
  // A start timeout of a minute: a restart that waited on the stopped standby would stall that long.
  const fs::path topo = write_file("standby.yaml",
                                   "name: standby\n"
                                   "config: {workers: {start_timeout_ms: 60000, heartbeat_timeout_ms: 500},\n"
                                   "         http: {listen: \"127.0.0.1:0\"}}\n"
                                   "nodes: [{name: echo, kernel: echo, backend: sim, host: process}]\n"
                                   "load: [{name: l, target: echo, message: Echo, rate: 500}]\n");
  const fs::path sum = temp_dir() / "standby-summary.json";
  program_child c({"run", topo.string(), "--duration", "0", "--summary-json", sum.string()}, "standby");
  const int port = http_port(c);
  REQUIRE(port != 0);
  std::pair<std::vector<pid_t>, std::vector<pid_t>> w;
  REQUIRE(poll_until(
      [&] {
        w = workers_of(port, "echo");
        return w.first.size() == 1 && w.second.size() == 1;
      },
      30s));
  // 1. Stopped and left alone: the heartbeat check kills it and starts a new standby.
  const pid_t stopped = w.second[0];
  REQUIRE(kill(stopped, SIGSTOP) == 0);
  CHECK(poll_until([&] { return process_gone(stopped); }, 10s));
  REQUIRE(poll_until(
      [&] {
        w = workers_of(port, "echo");
        return w.second.size() == 1 && w.second[0] != stopped;
      },
      10s));
  // 2. Stopped, then the active worker killed at once (before any heartbeat timeout): the restart
  //    sees the stopped standby and starts a process instead of handing the segment to it.
  const pid_t stopped2 = w.second[0], active = w.first[0];
  REQUIRE(kill(stopped2, SIGSTOP) == 0);
  const double before = metric(port, "ringflow_messages_total", {{"actor", "echo"}, {"outcome", "ok"}});
  REQUIRE(kill(active, SIGKILL) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(poll_until(
      [&] {
        return metric(port, "ringflow_messages_total", {{"actor", "echo"}, {"outcome", "ok"}}) > before + 500;
      },
      20s));
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // not the minute of start_timeout
  CHECK(poll_until([&] { return process_gone(stopped2); }, 10s));
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(sum));
  CHECK(s["lost"] == 0);
  CHECK(s["worker_restarts"].get<std::uint64_t>() >= 1);
}

// Low: the sim `slow` fault slept through a batch of up to 32 requests without a heartbeat, so a
// per-request latency well under the hang timeout was detected as a hang (false restarts).
TEST_CASE("Low: a slow kernel is a hang only when one request takes longer than the hang timeout",
          "[program][hardening][faults]") {
  auto run_slow = [](const std::string& name, int latency_ms) {
    const fs::path topo = write_file(name + ".yaml",
                                     "name: slow\nconfig: {ladder: {hang_timeout_ms: 1000}}\n"
                                     "nodes: [{name: e, kernel: echo, backend: sim}]\n"
                                     "load: [{name: l, target: e, message: Echo, rate: 200, max_in_flight: 64}]\n"
                                     "faults: [{node: e, kind: slow, probability: 1, times: 0, latency_us: " +
                                         std::to_string(latency_ms * 1000) + "}]\n");
    const fs::path sum = temp_dir() / (name + "-summary.json");
    const outcome o = run({"run", topo.string(), "--duration", "4", "--http", "off", "--summary-json", sum.string()});
    INFO(o.err.substr(o.err.size() > 3000 ? o.err.size() - 3000 : 0));
    REQUIRE(fs::exists(sum));
    return nlohmann::json::parse(slurp(sum));
  };
  const nlohmann::json fast = run_slow("slow-200ms", 200);  // 200 ms per request, 64 waiting: 12.8 s of backlog
  CHECK(fast["faults_injected"].get<std::uint64_t>() >= 10);
  CHECK(fast["faults_detected"] == 0);
  CHECK(fast["restarts"] == 0);
  CHECK(fast["lost"] == 0);
  const nlohmann::json hung = run_slow("slow-1500ms", 1500);  // one request longer than the hang timeout
  CHECK(hung["faults_detected"].get<std::uint64_t>() >= 1);
  CHECK(hung["lost"] == 0);
}

// The UTF-8 repair used for every line that leaves the program (utf8.hpp): Unicode's "maximal
// subparts" substitution, one U+FFFD per ill-formed subpart.
TEST_CASE("valid_utf8 keeps valid text and replaces each ill-formed subpart by one U+FFFD", "[hardening][unit]") {
  using ringflow::ops::is_valid_utf8;
  using ringflow::ops::valid_utf8;
  const std::string r = "\xef\xbf\xbd";
  CHECK(valid_utf8("plain ascii") == "plain ascii");
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80");
  CHECK(valid_utf8("a\xff"
                   "b") == "a" + r + "b");
  CHECK(valid_utf8("\xc0\xaf") == r + r);                  // overlong: both bytes ill-formed
  CHECK(valid_utf8("\xed\xa0\x80") == r + r + r);          // a surrogate
  CHECK(valid_utf8("\xf4\x90\x80\x80") == r + r + r + r);  // past U+10FFFF
  CHECK(valid_utf8("\xe2\x80") == r);                      // truncated: one subpart
  CHECK(valid_utf8("\xe2\x80x") == r + "x");
  CHECK(valid_utf8("\xf0\x9f\x98") == r);
  for (const std::string& s : {std::string("\xff\xfe"), std::string("x\x80"), std::string("\xe2\x28\xa1")})
    CHECK(is_valid_utf8(valid_utf8(s)));
}

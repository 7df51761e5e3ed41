// The engine and its HTTP endpoints in process: readiness transitions, /metrics as valid
// exposition with the documented families, /topology, hot reload, HTTP errors, log records.
#include <httplib.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/http.hpp"
#include "ringflow/runtime/log.hpp"
#include "support/gpu_emulator.hpp"
#include "support/prom_parse.hpp"

using namespace ringflow::ops;
using namespace std::chrono_literals;

namespace {

topology parse(const std::string& text) {
  std::vector<topology_error> errors;
  auto t = parse_topology(text, "test.yaml", errors);
  for (const auto& e : errors) INFO(e.str());
  REQUIRE(t);
  return *t;
}

const char* two_stage =
    "name: ops-test\n"
    "nodes:\n"
    "  - {name: in, function: validate, type: Echo}\n"
    "  - {name: echo, kernel: echo, backend: sim, replicas: 2}\n"
    "edges: [{from: in, to: echo}]\n"
    "supervisors: [{name: stage, children: [echo]}]\n"
    "load: [{name: l, target: in, message: Echo, rate: 2000, max_in_flight: 64}]\n";

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 20000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);  // polling a condition another thread makes true
  }
  return f();
}

struct served {
  event_log log;
  engine eng;
  http_server http;
  std::uint16_t port = 0;
  httplib::Client cli;
  served(const std::string& text, const std::string& log_file, program_config cfg = {}, run_options ro = {})
      : log("info", "json", log_file),
        eng(parse(text), cfg, log, std::move(ro)),
        http(http_handlers{[this] { return eng.metrics_text(); }, [this](nlohmann::json& r) { return eng.ready(r); },
                           [this] { return eng.topology_json(); },
                           [this](const std::string& n, int& st) { return eng.state_json(n, st); }}),
        port(http.start("127.0.0.1", 0)),
        cli("127.0.0.1", port) {}
};

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))).string();
}

}  // namespace

TEST_CASE("readiness: 503 while starting, 200 when running, 503 while draining and after stop", "[ops]") {
  served s(two_stage, temp_file("ops-ready.log"));
  auto ready = [&] {
    auto r = s.cli.Get("/health/ready");
    REQUIRE(r);
    return std::make_pair(r->status, nlohmann::json::parse(r->body));
  };
  auto live = s.cli.Get("/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);  // the process serves before the topology is up
  auto [code0, body0] = ready();
  CHECK(code0 == 503);
  CHECK_THAT(body0["reason"].get<std::string>(), Catch::Contains("created"));
  s.eng.start();
  auto [code1, body1] = ready();
  CHECK(code1 == 200);
  CHECK(body1["status"] == "ready");
  s.eng.start_load();
  REQUIRE(eventually([&] { return s.eng.summary().replied > 500; }));
  s.eng.drain();
  auto [code2, body2] = ready();
  CHECK(code2 == 503);
  CHECK_THAT(body2["reason"].get<std::string>(), Catch::Contains("draining"));
  s.eng.stop();
  auto [code3, body3] = ready();
  CHECK(code3 == 503);
  CHECK(s.cli.Get("/health/live")->status == 200);
  const run_summary sum = s.eng.summary();
  CHECK(sum.lost == 0);
  CHECK(sum.sent == sum.replied + sum.errors + sum.lost);
}

TEST_CASE("/metrics is valid exposition 0.0.4 with every documented family", "[ops]") {
  served s(two_stage, temp_file("ops-metrics.log"));
  s.eng.start();
  s.eng.start_load();
  REQUIRE(eventually([&] { return s.eng.summary().replied > 500; }));
  auto r = s.cli.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const auto fams = ringflow::testing::parse_prometheus(r->body);  // throws on any format violation
  for (const char* f : {"ringflow_messages_total", "ringflow_request_duration_seconds", "ringflow_ring_queue_depth",
                        "ringflow_in_flight", "ringflow_faults_total", "ringflow_restarts_total",
                        "ringflow_reroutes_total", "ringflow_failbacks_total", "ringflow_replays_total",
                        "ringflow_breaker_state", "ringflow_device_up", "ringflow_intended_latency_seconds"}) {
    INFO(f);
    REQUIRE(fams.count(f));
    CHECK_FALSE(fams.at(f).help.empty());
  }
  CHECK(fams.at("ringflow_request_duration_seconds").type == "histogram");
  CHECK(fams.at("ringflow_intended_latency_seconds").type == "histogram");
  double intended_count = 0;
  for (const auto& x : fams.at("ringflow_intended_latency_seconds").samples)
    if (x.name == "ringflow_intended_latency_seconds_count") intended_count = x.value;
  CHECK(intended_count > 500);
  // Queue depth per ring kernel, both directions, for each replica.
  std::set<std::string> depth;
  for (const auto& x : fams.at("ringflow_ring_queue_depth").samples)
    depth.insert(x.labels.at("ring") + "/" + x.labels.at("direction"));
  CHECK(depth == std::set<std::string>{"echo.0/request", "echo.0/response", "echo.1/request", "echo.1/response"});
  double ok = 0;
  for (const auto& x : fams.at("ringflow_messages_total").samples)
    if (x.labels.at("actor") == "echo" && x.labels.at("outcome") == "ok") ok = x.value;
  CHECK(ok > 500);
  std::set<std::string> devices;
  for (const auto& x : fams.at("ringflow_device_up").samples) {
    devices.insert(x.labels.at("device"));
    CHECK(x.value == 1);
  }
  CHECK(devices == std::set<std::string>{"sim:echo"});
  s.eng.drain();
  // Every message's intended-time latency includes its push-to-answer time: so do the quantiles of
  // the same set of messages. Compared after the drain: the two recorders are read one after the
  // other, and under load messages answered in between would make the sets differ.
  const run_summary sum = s.eng.summary();
  CHECK(sum.intended_p50_us >= sum.p50_us);
  CHECK(sum.intended_p99_us >= sum.p99_us);
  CHECK(sum.intended_p999_us >= sum.intended_p99_us);
  s.eng.stop();
  // After the stop the exposition is still valid (the runtime is gone).
  CHECK_NOTHROW(ringflow::testing::parse_prometheus(s.cli.Get("/metrics")->body));
}

TEST_CASE("GET /state/<node>: a stateful node's latest snapshot as JSON, 404 for the others, state metrics",
          "[ops][state]") {
  served s(
      "name: state-test\n"
      "nodes:\n"
      "  - {name: in, function: validate, type: Trade}\n"
      "  - {name: vwap, kernel: vwap, backend: sim, state: {snapshot_every: 100, snapshot_ms: 50, verify: true}}\n"
      "  - {name: echo, kernel: echo, backend: sim}\n"
      "edges: [{from: in, to: vwap}]\n"
      "load: [{name: l, target: in, message: Trade, rate: 2000, max_in_flight: 64}]\n",
      temp_file("ops-state.log"));
  s.eng.start();
  auto r = s.cli.Get("/state/vwap");
  REQUIRE(r);
  CHECK(r->status == 200);
  nlohmann::json j = nlohmann::json::parse(r->body);
  CHECK(j["state"].is_null());  // no snapshot yet: the kernel's init()
  CHECK(j["snapshot_age_s"].is_null());
  s.eng.start_load();
  REQUIRE(eventually([&] { return s.eng.summary().replied > 500; }));
  REQUIRE(eventually([&] {
    r = s.cli.Get("/state/vwap");
    j = nlohmann::json::parse(r->body);
    return j["requests_covered"].get<std::uint64_t>() >= 500;
  }));
  CHECK(j["node"] == "vwap");
  CHECK(j["kernel"] == "vwap");
  CHECK(j["state_bytes"] == sizeof(ringflow::demo_kernels::VwapKernel::state));
  CHECK(j["snapshots"].get<std::uint64_t>() >= 5);
  CHECK(j["snapshot_age_s"].get<double>() >= 0);
  // The dump hook: per instrument; every trade covered is in exactly one key.
  CHECK(j["state"]["applied"] == j["requests_covered"]);
  std::uint64_t trades = 0;
  for (const auto& k : j["state"]["keys"]) trades += k["trades"].get<std::uint64_t>();
  CHECK(trades == j["requests_covered"].get<std::uint64_t>());
  // state.verify: every snapshot was checked by a host replay (VwapKernel is deterministic).
  CHECK(j["verify"]["checked"].get<std::uint64_t>() >= 4);
  CHECK(j["verify"]["failures"] == 0);
  CHECK(j["verify"]["last_failure"].is_null());
  for (const char* p : {"/state/echo", "/state/in", "/state/nope"}) {
    INFO(p);
    r = s.cli.Get(p);
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(nlohmann::json::parse(r->body).contains("error"));
  }
  const auto fams = ringflow::testing::parse_prometheus(s.cli.Get("/metrics")->body);
  for (const char* f : {"ringflow_state_bytes", "ringflow_snapshots_total", "ringflow_snapshot_age_seconds",
                        "ringflow_journal_depth", "ringflow_state_verify_failures_total"}) {
    INFO(f);
    REQUIRE(fams.count(f));
    REQUIRE(fams.at(f).samples.size() == 1);  // the stateful ring only
    CHECK(fams.at(f).samples[0].labels.at("ring") == "vwap");
  }
  CHECK(fams.at("ringflow_state_bytes").samples[0].value == sizeof(ringflow::demo_kernels::VwapKernel::state));
  CHECK(fams.at("ringflow_snapshots_total").samples[0].value >= 5);
  CHECK(fams.at("ringflow_state_verify_failures_total").samples[0].value == 0);
  s.eng.drain();
  CHECK(s.eng.summary().lost == 0);
  s.eng.stop();
}

TEST_CASE("/topology shows nodes, edges, the supervisor tree and where each ring actor runs", "[ops]") {
  served s(two_stage, temp_file("ops-topology.log"));
  s.eng.start();
  auto r = s.cli.Get("/topology");
  REQUIRE(r);
  CHECK(r->status == 200);
  const auto j = nlohmann::json::parse(r->body);
  CHECK(j["name"] == "ops-test");
  CHECK(j["phase"] == "running");
  REQUIRE(j["nodes"].size() == 2);
  const auto& echo = j["nodes"][1];
  CHECK(echo["kind"] == "ring");
  CHECK(echo["device"] == "sim:echo");
  REQUIRE(echo["replicas"].size() == 2);
  CHECK(echo["replicas"][0]["runs_on"] == "sim");
  CHECK(echo["replicas"][0]["on_device"] == true);
  CHECK(echo["replicas"][0]["incarnation"]["attached"] == true);
  CHECK(j["edges"][0]["from"] == "in");
  CHECK(j["supervisors"]["name"] == "root");
  CHECK(j["supervisors"]["children"][0]["supervisor"]["name"] == "stage");
  CHECK(j["supervisors"]["children"][0]["supervisor"]["children"].size() == 2);
  CHECK(j["devices"][0]["breaker"] == "closed");
  s.eng.stop();
}

TEST_CASE("HTTP: unknown paths 404, other methods 405, a port in use is an error at start", "[ops]") {
  served s(two_stage, temp_file("ops-http.log"));
  auto nf = s.cli.Get("/nope");
  REQUIRE(nf);
  CHECK(nf->status == 404);
  CHECK_THAT(nf->body, Catch::Contains("no such endpoint"));
  auto na = s.cli.Post("/metrics", "", "text/plain");
  REQUIRE(na);
  CHECK(na->status == 405);
  http_server other(http_handlers{[] { return std::string(); }, [](nlohmann::json&) { return true; },
                                  [] { return nlohmann::json(); }});
  CHECK_THROWS_AS(other.start("127.0.0.1", s.port), std::runtime_error);
}

TEST_CASE("hot reload applies the safe settings, reports what changed, keeps the rest", "[ops]") {
  const std::string log_file = temp_file("ops-reload.log");
  served s(two_stage, log_file);
  s.eng.start();
  program_config next = s.eng.config();
  next.breaker.failure_threshold = 9;
  next.limits.ingress_rate_per_s = 100;
  next.log.level = "warn";
  next.http.listen = "127.0.0.1:1";  // not reloadable
  const auto changes = s.eng.reload(next);
  std::map<std::string, bool> seen;
  for (const auto& c : changes) seen[c.key] = c.reloadable;
  CHECK(seen.size() == 4);
  CHECK(seen.at("breaker.failure_threshold"));
  CHECK(seen.at("limits.ingress_rate_per_s"));
  CHECK(seen.at("log.level"));
  CHECK_FALSE(seen.at("http.listen"));
  CHECK(s.eng.config().breaker.failure_threshold == 9);
  CHECK(s.eng.config().http.listen == "127.0.0.1:9750");  // kept until a restart
  // The ingress rate limit now holds the load (2000/s offered) to 100 msg/s: 50 messages cannot
  // enter in less than ~0.49 s, however fast the machine (a lower bound only: slow CI cannot fail it).
  const auto t0 = std::chrono::steady_clock::now();
  s.eng.start_load();
  REQUIRE(eventually([&] { return s.eng.summary().sent >= 50; }));
  CHECK(std::chrono::steady_clock::now() - t0 >= 450ms);
  s.eng.drain();
  s.eng.stop();
  CHECK(s.eng.summary().lost == 0);
}

TEST_CASE("log records are JSON objects with the fixed keys first", "[ops]") {
  const std::string line = event_log::render_json(log_level::warn, "ladder", "fault echo",
                                                  {{"ring", "echo"}, {"msg", "not me"}, {"trace_id", "ab"}});
  const auto j = nlohmann::json::parse(line);
  CHECK(j["level"] == "warn");
  CHECK(j["component"] == "ladder");
  CHECK(j["msg"] == "fault echo");  // a field cannot replace a fixed key
  CHECK(j["ring"] == "echo");
  CHECK(line.rfind("{\"ts\":", 0) == 0);
  const std::string bad = event_log::render_json(log_level::info, "x", "bytes", {{"detail", std::string("\xff\xfe")}});
  CHECK_NOTHROW(nlohmann::json::parse(bad));  // invalid UTF-8 is replaced, never thrown on
}

TEST_CASE("readiness: 503 naming the ring actor while it has no healthy incarnation, 200 once recovered", "[ops]") {
  // Two crashes in a row (the second on the first request the restarted kernel takes, before it
  // answered anything): the first restart is immediate, the second waits the back-off (3 s here),
  // during which the ring actor has no healthy incarnation.
  program_config cfg;
  cfg.ladder.backoff_initial_us = 3000000;
  cfg.ladder.backoff_max_ms = 3000;
  cfg.ladder.restarts_before_reinit = 100;
  cfg.breaker.failure_threshold = 100;
  served s(
      "name: unready\n"
      "nodes: [{name: echo, kernel: echo, backend: sim}]\n"
      "load: [{name: l, target: echo, message: Echo, rate: 500, max_in_flight: 8}]\n"
      "faults:\n"
      "  - {node: echo, kind: crash, at_message: 20}\n"
      "  - {node: echo, kind: crash, at_message: 21}\n",
      temp_file("ops-unready.log"), cfg);
  s.eng.start();
  s.eng.start_load();
  // The second fault starts the 3 s back-off; from then on the actor is not ready.
  REQUIRE(eventually([&] { return s.eng.summary().faults_detected >= 2; }));
  auto r = s.cli.Get("/health/ready");
  REQUIRE(r);
  CHECK(r->status == 503);
  const nlohmann::json reason = nlohmann::json::parse(r->body);
  CHECK(reason["ring"] == "echo");
  CHECK_THAT(reason["reason"].get<std::string>(), Catch::Contains("no healthy incarnation"));
  REQUIRE(eventually([&] {
    auto x = s.cli.Get("/health/ready");
    return x && x->status == 200;
  }));
  CHECK(s.eng.summary().restarts >= 2);
  s.eng.drain();
  s.eng.stop();
  const run_summary sum = s.eng.summary();
  CHECK(sum.lost == 0);
}

// The engine's GPU wiring, on the emulated GPU device (tests/support/gpu_emulator.hpp: the device
// logic of the CUDA/HIP backends over a host emulator of the runtime — not a GPU).
TEST_CASE("GPU backend: ring nodes share one persistent kernel, faults drive the ladder over it, nothing lost",
          "[ops][gpu]") {
  const char* text =
      "name: gpu-test\n"
      "config: {breaker: {failure_threshold: 3, cooldown_ms: 300}, ladder: {hang_timeout_ms: 250}}\n"
      "nodes:\n"
      "  - {name: in, function: validate, type: Echo}\n"
      "  - {name: echo, kernel: echo, backend: cuda, replicas: 2}\n"
      "  - {name: flaky, kernel: echo, backend: auto}\n"
      "  - {name: out, function: passthrough, type: Echo}\n"
      "edges: [{from: in, to: echo}, {from: echo, to: flaky}, {from: flaky, to: out}]\n"
      "load: [{name: l, target: in, message: Echo, rate: 2000, max_in_flight: 64}]\n"
      "faults: [{node: flaky, kind: crash, at_s: 0.3}]\n";
  ringflow::gpu::emulator::reset_process();
  int opened = 0;
  run_options ro;
  ro.open_gpu = [&](const std::string& backend) -> std::shared_ptr<ringflow::gpu::gpu_device> {
    if (backend != "cuda") return nullptr;
    ++opened;
    ringflow::gpu::gpu_device_options o;
    o.max_rings = 16;
    o.ring_pool_bytes = 8ull << 20;
    o.warps_per_block = 1;
    return ringflow::gpu::make_emulated_device(o);
  };
  served s(text, temp_file("ops-gpu.log"), {}, ro);
  s.eng.start();
  s.eng.start_load();
  REQUIRE(eventually([&] {
    const run_summary x = s.eng.summary();
    return x.restarts >= 1 && x.replied > 2000;
  }));
  CHECK(opened == 1);  // one device (one persistent kernel) for both nodes
  const auto fams = ringflow::testing::parse_prometheus(s.cli.Get("/metrics")->body);
  REQUIRE(fams.count("ringflow_gpu_rings"));
  REQUIRE(fams.at("ringflow_gpu_rings").samples.size() == 1);
  CHECK(fams.at("ringflow_gpu_rings").samples[0].labels.at("device") == "emulated:0");
  CHECK(fams.at("ringflow_gpu_rings").samples[0].value == 3);                     // echo.0, echo.1, flaky
  CHECK(fams.at("ringflow_gpu_kernel_launches_total").samples.at(0).value == 1);  // a ring's crash is not the kernel's
  const auto j = nlohmann::json::parse(s.cli.Get("/topology")->body);
  CHECK(j["nodes"][1]["device"] == "emulated:0");
  CHECK(j["nodes"][2]["device"] == "sim:flaky@emulated:0");  // the fault injector over the GPU
  CHECK(j["nodes"][1]["replicas"][0]["runs_on"] == "emulated");
  s.eng.drain();
  s.eng.stop();
  const run_summary x = s.eng.summary();
  CHECK(x.ok());
  CHECK(x.lost == 0);
  CHECK(x.errors == 0);
  CHECK(x.faults_injected >= 1);
}

TEST_CASE("the summary is a consistent cut while the engine stops: sent = replied + errors + wrong + lost", "[ops]") {
  // A slow kernel keeps ~100 messages open when stop() comes (no drain): the ring actors drain and
  // the graph answers the rest while another thread keeps reading the summary, as the signal thread
  // does on a second SIGTERM. Every read must add up: a read during stop() must not call open
  // messages answered (before the fix it reported lost 0 from the moment stop() began).
  const char* text =
      "name: stop-cut\n"
      "nodes:\n"
      "  - {name: echo, kernel: echo, backend: sim, window: 512}\n"
      "load: [{name: l, target: echo, message: Echo, rate: 20000, max_in_flight: 400}]\n"
      "faults: [{node: echo, kind: slow, probability: 1, times: 0, latency_us: 2000}]\n";
  event_log log("warn", "json", temp_file("ops-stop-cut.log"));
  engine eng(parse(text), {}, log, {});
  eng.start();
  eng.start_load();
  REQUIRE(eventually([&] { return eng.summary().lost >= 100; }));  // `lost` counts what is open now
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> reads{0}, broken{0}, open_seen{0};
  std::thread reader([&] {
    while (!stopped.load()) {
      const run_summary x = eng.summary();
      if (x.sent != x.replied + x.errors + x.wrong + x.lost) broken.fetch_add(1);
      open_seen.store(std::max(open_seen.load(), x.lost));
      reads.fetch_add(1);
    }
  });
  eng.stop();
  stopped.store(true);
  reader.join();
  const run_summary x = eng.summary();
  INFO("reads " << reads.load() << ", broken " << broken.load() << ", sent " << x.sent << ", errors " << x.errors);
  CHECK(reads.load() > 0);
  CHECK(broken.load() == 0);
  CHECK(x.sent == x.replied + x.errors + x.wrong + x.lost);
  CHECK(x.lost == 0);  // every open message was answered (by the kernel's drain, or `stopped`)
}

// bench/ops_bench.cpp — ringflow_bench_ops: what operating ringflow costs on the message path and
// at the scrape endpoint, side by side in one run (docs/BENCHMARKS.md, "Operations").
//
// Benchmarks (base names are a contract):
//   BM_TracedRoundTrip/traced:0   ring_client::call round trips to an echo ring actor whose ring
//                                 core has no trace sink, with untraced messages (the baseline)
//   BM_TracedRoundTrip/traced:1   the same ring actor setup with a trace sink writing OTLP-JSON
//                                 lines (trace_writer, to a file in $TMPDIR) and every message
//                                 traced: the ring core times submit/publish/reply/answer, the
//                                 kernel span id travels in the slot headers, 3 spans per hop
//   BM_MetricsScrape              engine::metrics_text() of a running 2-replica topology under
//                                 load (the /metrics body, without HTTP)
//   BM_HttpLiveUnderSlowClients/slow:N   GET /health/live from 127.0.0.1 on a fresh connection
//                                 (as a kubelet probes) to the program's HTTP server (default
//                                 http.* limits) over a running topology under load, while N slow
//                                 clients on distinct loopback addresses (127.0.0.2, ...) hold
//                                 connections and drip one header line each per second
//                                 (reconnecting when cut off); 1,000 probes, ~150/s.
//                                 Counters: p50/p99/max_us, failed (not 200), held, reconnects
//   BM_ValidateChain/nodes:N      `ringflow validate` of a chain of N CPU nodes (N-1 edges) as a
//                                 child process, per iteration: wall time, and its peak RSS
//                                 (rss_mb, from wait4) — issue 20's goal: 100,000 nodes <= 2 s, <= 500 MB
//   BM_YamlCppLoad/nodes:N        the anchor: YAML::Load (yaml-cpp, what parsed topology files
//                                 before) of the same text in a forked child: time and rss_mb
//                                 (these two rows run first, before any thread exists, so fork is safe)
// Counters: p50_us / p99_us per round trip; spans (spans written per round trip, traced row).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/ringflow.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/http.hpp"
#include "ringflow/runtime/trace.hpp"
#include "support/raw_http.hpp"

using namespace ringflow;
using clk = std::chrono::steady_clock;

namespace {

fb_msg echo_request() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<std::uint8_t> body(32, 7);
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, 1, b.CreateVector(body)));
  return fb_msg(b.GetBufferPointer(), b.GetSize());
}

void report(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return;
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

void BM_TracedRoundTrip(benchmark::State& state) {
  const bool traced = state.range(0) != 0;
  const std::string path = (std::filesystem::temp_directory_path() / "ringflow-bench-trace.jsonl").string();
  std::unique_ptr<ops::trace_writer> tracer;
  ring_actor_options opts;
  if (traced) {
    tracer = std::make_unique<ops::trace_writer>(path);
    ops::trace_writer* t = tracer.get();
    opts.trace = std::make_shared<const ring_trace_sink>([t](const ring_hop_trace& h) { t->hop(h); });
  }
  runtime rt;
  rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo", opts);
  auto client = rt.client("echo");
  fb_msg req = echo_request();
  if (traced) req.trace_hi = 0x0123456789abcdefull, req.trace_lo = 0xfedcba9876543210ull, req.span = 0x1111;
  for (int i = 0; i < 2000; ++i) (void)client->call(req);
  std::vector<double> us;
  us.reserve(1 << 20);
  std::uint64_t errors = 0, n = 0;
  if (tracer) tracer->flush();  // the warm-up's spans are written before the count starts
  const std::uint64_t spans0 = tracer ? tracer->spans() : 0;
  for (auto _ : state) {
    const auto t0 = clk::now();
    call_result r = client->call(req);
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    errors += !r.ok() || r.reply.bytes != req.bytes;
    ++n;
  }
  report(state, us);
  if (tracer) {
    tracer->flush();
    state.counters["spans"] = static_cast<double>(tracer->spans() - spans0) / static_cast<double>(n ? n : 1);
    state.counters["dropped"] = static_cast<double>(tracer->dropped());
  }
  rt.shutdown();
  std::filesystem::remove(path);
  if (errors) state.SkipWithError("error results or replies that differ from the request");
}

// A running 2-replica sim topology under 1,000 msg/s of load (drained and stopped at the end).
struct loaded_topology {
  ops::event_log log{"off", "json", ""};
  ops::engine eng;
  static ops::topology parse() {
    std::vector<ops::topology_error> errors;
    auto topo = ops::parse_topology(
        "name: bench\n"
        "nodes:\n"
        "  - {name: in, function: validate, type: Echo}\n"
        "  - {name: echo, kernel: echo, backend: sim, replicas: 2}\n"
        "edges: [{from: in, to: echo}]\n"
        "load: [{name: l, target: in, message: Echo, rate: 1000}]\n",
        "bench.yaml", errors);
    if (!topo) std::abort();
    return *topo;
  }
  loaded_topology() : eng(parse(), ops::program_config{}, log, {}) {
    eng.start();
    eng.start_load();
  }
  ~loaded_topology() {
    eng.drain();
    eng.stop();
  }
};

void BM_MetricsScrape(benchmark::State& state) {
  loaded_topology t;
  ops::engine& eng = t.eng;
  std::size_t bytes = 0;
  std::vector<double> us;
  for (auto _ : state) {
    const auto t0 = clk::now();
    const std::string text = eng.metrics_text();
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  report(state, us);
  state.counters["bytes"] = static_cast<double>(bytes);
}

void BM_HttpLiveUnderSlowClients(benchmark::State& state) {
  loaded_topology t;
  ops::engine& eng = t.eng;
  ops::http_server http(ops::http_handlers{[&] { return eng.metrics_text(); },
                                           [&](nlohmann::json& r) { return eng.ready(r); },
                                           [&] { return eng.topology_json(); }});
  const std::uint16_t port = http.start("127.0.0.1", 0);
  const int slow = static_cast<int>(state.range(0));
  // A slow client: a request line, then one header line per second. The server cuts each off at
  // http.header_timeout_ms (5 s); like a real attacker, it then reconnects.
  auto open_slow = [port](int i) {
    const std::string src = "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(2 + i % 250);
    const int fd = testing::connect_from(src.c_str(), port);
    if (fd >= 0) testing::send_all(fd, "GET /health/live HTTP/1.1\r\n");
    return fd;
  };
  std::vector<int> fds;
  for (int i = 0; i < slow; ++i) fds.push_back(open_slow(i));
  std::atomic<bool> stop{false};
  std::uint64_t reconnects = 0;
  std::thread drip([&] {
    while (!stop.load()) {
      for (int i = 0; i < slow; ++i) {
        // Readable = the server answered (408) or closed: cut off, so reconnect.
        pollfd p{fds[i], POLLIN, 0};
        const bool cut = fds[i] < 0 || ::poll(&p, 1, 0) != 0;
        if (!cut && testing::send_all(fds[i], "X-Drip: 1\r\n")) continue;
        if (fds[i] >= 0) ::close(fds[i]);
        fds[i] = open_slow(i);
        ++reconnects;
      }
      for (int i = 0; i < 100 && !stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the slow clients are connected
  const std::string probe = "GET /health/live HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
  std::vector<double> us;
  std::uint64_t failed = 0;
  for (auto _ : state) {
    const auto t0 = clk::now();
    const testing::http_answer a = testing::request_from("127.0.0.1", port, probe, std::chrono::milliseconds(5000));
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    if (a.status != 200) ++failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // probes paced (~150/s), not timed
  }
  stop.store(true);
  drip.join();
  report(state, us);
  if (!us.empty()) state.counters["max_us"] = us.back();  // sorted by report()
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["held"] = static_cast<double>(http.stats().open);  // slow connections open at the end
  state.counters["reconnects"] = static_cast<double>(reconnects);
  state.counters["evicted"] = static_cast<double>(http.stats().evicted);
  state.counters["accepted"] = static_cast<double>(http.stats().accepted);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  http.stop();
}

// ---- topology files -------------------------------------------------------------------------------

std::string chain_text(std::size_t n) {
  std::string s = "name: chain\nnodes:\n";
  for (std::size_t i = 0; i < n; ++i)
    s += "  - {name: n" + std::to_string(i) + ", function: passthrough, type: Echo}\n";
  s += "edges:\n";
  for (std::size_t i = 0; i + 1 < n; ++i)
    s += "  - {from: n" + std::to_string(i) + ", to: n" + std::to_string(i + 1) + "}\n";
  return s;
}

std::filesystem::path chain_file(std::size_t n) {
  const auto p = std::filesystem::temp_directory_path() / ("ringflow-bench-chain-" + std::to_string(n) + ".yaml");
  if (!std::filesystem::exists(p)) std::ofstream(p) << chain_text(n);
  return p;
}

// Waits for `pid`: its exit status and peak RSS (MiB).
std::pair<int, double> wait_child(pid_t pid) {
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, static_cast<double>(ru.ru_maxrss) / 1024.0};
}

void BM_ValidateChain(benchmark::State& state) {
  const auto file = chain_file(static_cast<std::size_t>(state.range(0)));
  double rss = 0;
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, STDOUT_FILENO);
      ::execl(RINGFLOW_PROGRAM, RINGFLOW_PROGRAM, "validate", file.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto [code, mb] = wait_child(pid);
    if (code != 0) state.SkipWithError("ringflow validate failed");
    rss = std::max(rss, mb);
  }
  state.counters["rss_mb"] = rss;
}

void BM_YamlCppLoad(benchmark::State& state) {
  const auto file = chain_file(static_cast<std::size_t>(state.range(0)));
  std::ostringstream ss;
  ss << std::ifstream(file).rdbuf();
  const std::string text = ss.str();
  double rss = 0;
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const YAML::Node n = YAML::Load(text);
      ::_exit(n["nodes"].size() == static_cast<std::size_t>(state.range(0)) ? 0 : 1);
    }
    const auto [code, mb] = wait_child(pid);
    if (code != 0) state.SkipWithError("YAML::Load failed");
    rss = std::max(rss, mb);
  }
  state.counters["rss_mb"] = rss;
}

}  // namespace

// First: they fork, and no thread exists yet. The same rows for both (side by side).
void chain_rows(benchmark::internal::Benchmark* b) {
  b->ArgName("nodes")->Arg(10000)->Arg(100000)->UseRealTime()->Iterations(3)->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_ValidateChain)->Apply(chain_rows);
BENCHMARK(BM_YamlCppLoad)->Apply(chain_rows);
BENCHMARK(BM_TracedRoundTrip)
    ->ArgName("traced")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MetricsScrape)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HttpLiveUnderSlowClients)
    ->ArgName("slow")
    ->Arg(0)
    ->Arg(200)
    ->UseRealTime()
    ->Iterations(1000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();

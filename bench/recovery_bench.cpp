// ringflow_bench_recovery — how fast the fault ladder recovers a ring actor on the sim device under
// load, per fault kind, and whether anything is lost or answered twice (docs/BENCHMARKS.md, "Recovery").
//
// Per benchmark BM_Recovery/<kind>: a paced load generator offers ~100k Echo requests/s (2 client
// threads, ring_client submit with callbacks) to one ring actor on a sim device supervised by a
// fault_ladder; `trials` times (default 30) one fault of the kind is injected a few hundred requests
// ahead, and the ladder's `recovered` event gives the recovery time: from detection to the first
// successful reply of the recovered (restarted, reinitialized or rerouted) incarnation. For hangs the
// detection time is measured separately: the ladder's fault event minus the moment the injector
// fired (it follows the configured hang_timeout). After the trials the load stops and every request
// must have exactly one answer: counters `lost` (never answered) and `duplicated` (answered twice).
//
// Counters: recovery_p50_ms, recovery_p99_ms, detect_p99_ms (hangs; 0 otherwise), lost, duplicated,
// trials, achieved_krps (the load actually served), by_restart / by_reinit / by_reroute (which step
// recovered the trials). Configuration in the JSON context. Environment: RINGFLOW_RECOVERY_TRIALS,
// RINGFLOW_RECOVERY_RATE (requests/s).
//
// Kernel hosts (out-of-process ring kernels, runtime/kernel_host.hpp): BM_InProcessRoundTrip vs
// BM_KernelHostRoundTrip — blocking Echo round trips through ring_client::call to a CPU kernel in this
// process vs in a `ringflow kernel-host` worker on shared-memory rings, side by side (goal: <= 1.3x);
// counters p50_us / p99_us / p999_us. BM_KernelHostKillRecovery/<cpu|sim>: under the paced load,
// `trials` times SIGKILL the worker and measure kill -> first successful reply of the restarted
// worker (ring_stats::first_reply_ns); goal p99 <= 50 ms; counters as BM_Recovery plus worker_restarts.
// BM_GpuWorkerTrapRecovery/emulated (built when the tests are: it starts ringflow_test_gpu_worker,
// a worker hosting the emulated GPU): `trials` times a request traps the GPU worker's kernel (its
// process poisoned); trapping request sent -> first reply of the replacement worker; counters as
// BM_KernelHostKillRecovery plus trap_replies_wrong. The GPU goal is p99 <= 100 ms; this measures
// the host side of that path on the emulator, not a GPU.
//
// Stateful (issue 24): BM_StatefulRecovery/<crash|device_lost> — the paced load offers trades to
// the stateful `vwap` kernel (VwapKernel, 776 bytes of state; snapshot_every 1000, journal) on the
// sim device; `trials` times the fault is injected and the recovery measured as BM_Recovery (a new
// incarnation restored from the snapshot and replayed before its first reply). Goal: first reply
// p99 <= 10 ms at 100k msg/s offered. After the load a fresh snapshot must equal the fault-free
// state of every trade answered (counter state_identical 1, else the run errors).
//
// Ladder configuration (deliberate): hang_timeout 20 ms; the breaker threshold and the
// restart->reinit escalation are raised (1000) so that each trial measures the step its fault kind
// maps to on its own — restart for transient / crash / corrupt / hang, reinitialize for sticky /
// OOM, reroute for device_lost (the device is then restored and the ring actor fails back before
// the next trial: breaker open_for 20 ms, probe_window 20 ms).
#include <benchmark/benchmark.h>
#include <flatbuffers/flatbuffers.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/ringflow.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

using namespace ringflow;
using namespace std::chrono_literals;
using sim::fault_kind;
using clk = std::chrono::steady_clock;

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::max(1, std::atoi(v)) : fallback;
}
const int trials_per_kind = env_int("RINGFLOW_RECOVERY_TRIALS", 30);
const int offered_rate = env_int("RINGFLOW_RECOVERY_RATE", 100000);
constexpr int client_threads = 2;
constexpr auto hang_timeout = 20ms;

fb_msg echo(std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, seq));
  return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}
std::uint64_t echo_seq(const fb_msg& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  if (!v.VerifyBuffer<demo::Echo>(nullptr)) return ~0ull;
  return demo::GetEcho(m.bytes.data())->sequence();
}

// Trade `seq` (the same deterministic trades as the state tests: key seq*7 % 32, price, quantity).
fb_msg trade(std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishTradeBuffer(
      b, demo::CreateTrade(b, static_cast<std::uint32_t>((seq * 7) % demo_kernels::vwap_keys),
                           100 + static_cast<std::int64_t>(seq % 13), 1 + static_cast<std::uint32_t>(seq % 9), seq));
  return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}
std::uint64_t vwap_seq(const fb_msg& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  if (!v.VerifyBuffer<demo::VwapReply>(nullptr)) return ~0ull;
  return flatbuffers::GetRoot<demo::VwapReply>(m.bytes.data())->sequence();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// The ladder's events, for the trials to wait on.
struct event_log {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ladder_event> events;
  void add(const ladder_event& e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    }
    cv.notify_all();
  }
  /// Waits for the first event of kind `k` at index >= from; returns its index or -1 on timeout.
  long wait_for(ladder_event::kind k, std::size_t from, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    long found = -1;
    cv.wait_for(lock, limit, [&] {
      for (std::size_t i = from; i < events.size(); ++i)
        if (events[i].what == k) {
          found = static_cast<long>(i);
          return true;
        }
      return false;
    });
    return found;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return events.size();
  }
  ladder_event at(std::size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return events.at(i);
  }
};

// Paced load: `client_threads` threads, each offering rate / threads requests per second in 1 ms
// slices, counting every answer per request (Echo to ring "echo" unless told otherwise).
class load {
 public:
  using make_fn = fb_msg (*)(std::uint64_t);
  using seq_fn = std::uint64_t (*)(const fb_msg&);
  load(runtime& rt, std::size_t capacity, std::string ring = "echo", make_fn make = echo, seq_fn seq = echo_seq)
      : answers_(capacity), ok_ids_(capacity), ring_(std::move(ring)), make_(make), seq_(seq) {
    for (int t = 0; t < client_threads; ++t) threads_.emplace_back([this, &rt] { run(rt); });
  }
  /// Whether request `id` was answered with its own reply.
  bool ok_at(std::uint64_t id) const { return ok_ids_[id].load() != 0; }
  ~load() { stop(); }
  void stop() {
    running_.store(false);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::uint64_t sent() const { return sent_.load(); }
  std::uint64_t lost() const {
    std::uint64_t n = 0;
    for (std::uint64_t i = 0; i < sent_.load(); ++i) n += answers_[i].load() == 0;
    return n;
  }
  std::uint64_t duplicated() const {
    std::uint64_t n = 0;
    for (std::uint64_t i = 0; i < sent_.load(); ++i) n += answers_[i].load() > 1;
    return n;
  }
  std::uint64_t ok() const { return ok_.load(); }
  std::uint64_t errors() const { return errors_.load(); }
  std::uint64_t wrong() const { return wrong_.load(); }
  /// Error replies by code (counter names "errors_<code>"), for codes that occurred.
  void report_errors(benchmark::State& state) const {
    for (std::size_t c = 0; c < by_code_.size(); ++c)
      if (const std::uint64_t n = by_code_[c].load())
        state.counters[std::string("errors_") + to_string(static_cast<errc>(c))] = static_cast<double>(n);
  }

 private:
  void run(runtime& rt) {
    client_options co;
    co.window = 2048;  // a recovery stall of ~10 ms at 50k/s per thread stays inside it
    co.default_timeout = 10000ms;
    ring_client c(rt.ring(ring_), co);
    const int per_ms = std::max(1, offered_rate / client_threads / 1000);
    auto slice = clk::now();
    std::atomic<int> outstanding{0};
    while (running_.load()) {
      for (int i = 0; i < per_ms && running_.load(); ++i) {
        const std::uint64_t id = sent_.fetch_add(1);
        if (id >= answers_.size()) {
          running_.store(false);
          break;
        }
        outstanding.fetch_add(1);
        c.submit(make_(id), [this, id, &outstanding](call_result&& r) {
          answers_[id].fetch_add(1);
          if (!r.ok()) {
            errors_.fetch_add(1);
            by_code_[static_cast<std::uint8_t>(r.code) & 63].fetch_add(1);
          } else if (seq_(r.reply) != id) {
            wrong_.fetch_add(1);
          } else {
            ok_.fetch_add(1);
            ok_ids_[id].store(1);
          }
          outstanding.fetch_sub(1);
        });
      }
      slice += 1ms;
      std::this_thread::sleep_until(slice);
      if (clk::now() - slice > 50ms) slice = clk::now();  // fell behind (recovery): do not burst
    }
    const auto until = clk::now() + 15s;
    while (outstanding.load() != 0 && clk::now() < until) std::this_thread::sleep_for(1ms);
  }

  std::vector<std::atomic<std::uint32_t>> answers_;
  std::vector<std::atomic<std::uint8_t>> ok_ids_;
  const std::string ring_;
  const make_fn make_;
  const seq_fn seq_;
  std::atomic<std::uint64_t> sent_{0}, ok_{0}, errors_{0}, wrong_{0};
  std::array<std::atomic<std::uint64_t>, 64> by_code_{};
  std::atomic<bool> running_{true};
  std::vector<std::thread> threads_;
};

/// The counters both recovery benchmarks report (and their verdict).
void report_recovery(benchmark::State& state, const std::vector<double>& recovery_ms, const load& gen,
                     std::uint64_t timeouts, double secs) {
  state.SetIterationTime(secs);
  state.counters["recovery_p50_ms"] = percentile(recovery_ms, 0.50);
  state.counters["recovery_p99_ms"] = percentile(recovery_ms, 0.99);
  state.counters["recovery_max_ms"] =
      recovery_ms.empty() ? 0 : *std::max_element(recovery_ms.begin(), recovery_ms.end());
  state.counters["lost"] = static_cast<double>(gen.lost());
  state.counters["duplicated"] = static_cast<double>(gen.duplicated());
  state.counters["wrong_replies"] = static_cast<double>(gen.wrong());
  state.counters["error_replies"] = static_cast<double>(gen.errors());
  state.counters["trials"] = static_cast<double>(recovery_ms.size());
  state.counters["trials_unrecovered"] = static_cast<double>(timeouts);
  state.counters["achieved_krps"] = static_cast<double>(gen.ok()) / secs / 1e3;
  gen.report_errors(state);
  if (gen.lost() || gen.duplicated() || gen.wrong() || timeouts)
    state.SkipWithError("lost, duplicated or wrong replies, or a trial that never recovered");
}

/// BM_Recovery's set-up (see the header's ladder configuration): a runtime, a sim device, the
/// ladder with its event log, and the ring actor options of the paced load.
struct sim_rig {
  runtime rt{[] {
    runtime_config rc;
    rc.scheduler_threads = 2;
    return rc;
  }()};
  std::shared_ptr<sim::sim_device> dev;
  std::shared_ptr<event_log> log = std::make_shared<event_log>();
  fault_ladder ladder;
  ring_actor_options opts;
  explicit sim_rig(std::uint64_t seed) : dev(make_device(seed)), ladder(rt, config(log)) {
    opts.window = 4096;
    opts.per_caller_window = 2048;
  }
  /// One trial: `kind` injected 300 requests ahead. Returns the index of the ladder's `recovered`
  /// event after the fault's (-1: none within 5 s), and sets `fault_at` to the fault's (-1: none).
  long inject_and_wait(fault_kind kind, long& fault_at) {
    const std::size_t from = log->size();
    dev->faults().add(sim::fault_rule::at(kind, dev->faults().requests_seen() + 300));
    fault_at = log->wait_for(ladder_event::kind::fault, from, 5000ms);
    return fault_at < 0 ? -1 : log->wait_for(ladder_event::kind::recovered, static_cast<std::size_t>(fault_at), 5000ms);
  }
  static std::shared_ptr<sim::sim_device> make_device(std::uint64_t seed) {
    sim::sim_device_options dopts;
    dopts.id = "sim:0";
    return sim::sim_device::make(dopts, seed);
  }
  static ladder_config config(const std::shared_ptr<event_log>& log) {
    ladder_config cfg;
    cfg.hang_timeout = hang_timeout;
    cfg.breaker.failure_threshold = 1000;
    cfg.restarts_before_reinit = 1000;
    cfg.breaker.open_for = 20ms;
    cfg.probe_window = 20ms;
    cfg.on_event = [log](const ladder_event& e) { log->add(e); };
    return cfg;
  }
};

void BM_Recovery(benchmark::State& state, fault_kind kind) {
  for (auto _ : state) {
    sim_rig rig(2026);
    runtime& rt = rig.rt;
    auto& dev = rig.dev;
    auto& log = rig.log;
    fault_ladder& ladder = rig.ladder;
    ring_actor_options& opts = rig.opts;
    ladder.spawn_ring_actor<demo_kernels::EchoKernel>("echo", dev, opts);

    const auto t0 = clk::now();
    load gen(rt, static_cast<std::size_t>(offered_rate) * 60);
    std::vector<double> recovery_ms, detect_ms;
    std::uint64_t by_restart = 0, by_reinit = 0, by_reroute = 0, timeouts = 0;
    std::this_thread::sleep_for(20ms);  // the load is running
    for (int t = 0; t < trials_per_kind; ++t) {
      long fault_at = -1;
      const long rec_at = rig.inject_and_wait(kind, fault_at);
      if (rec_at < 0) {
        ++timeouts;
        continue;
      }
      recovery_ms.push_back(static_cast<double>(log->at(static_cast<std::size_t>(rec_at)).duration_ns) / 1e6);
      if (kind == fault_kind::hang)
        detect_ms.push_back(
            static_cast<double>(log->at(static_cast<std::size_t>(fault_at)).at_ns - dev->faults().last_fired_ns()) /
            1e6);
      const std::string& backend = log->at(static_cast<std::size_t>(rec_at)).backend;
      bool reinit = false;
      for (std::size_t i = static_cast<std::size_t>(fault_at); i < static_cast<std::size_t>(rec_at); ++i)
        reinit = reinit || log->at(i).what == ladder_event::kind::reinitialize;
      if (backend == "cpu") ++by_reroute;
      else if (reinit) ++by_reinit;
      else ++by_restart;
      if (kind == fault_kind::device_lost) {  // bring the device back and wait for the fail-back
        dev->restore();
        if (log->wait_for(ladder_event::kind::breaker_closed, static_cast<std::size_t>(rec_at), 5000ms) < 0) ++timeouts;
      }
      std::this_thread::sleep_for(10ms);  // settle: the next fault is a first one again
    }
    gen.stop();
    report_recovery(state, recovery_ms, gen, timeouts, std::chrono::duration<double>(clk::now() - t0).count());
    state.counters["detect_p50_ms"] = percentile(detect_ms, 0.50);
    state.counters["detect_p99_ms"] = percentile(detect_ms, 0.99);
    if (std::getenv("RINGFLOW_RECOVERY_VERBOSE"))
      for (double d : detect_ms) std::fprintf(stderr, "detect %.2f ms\n", d);
    state.counters["by_restart"] = static_cast<double>(by_restart);
    state.counters["by_reinit"] = static_cast<double>(by_reinit);
    state.counters["by_reroute"] = static_cast<double>(by_reroute);
  }
}

/// BM_StatefulRecovery (see the header): BM_Recovery's trials on the stateful vwap kernel, then the
/// state compared with the fault-free state of the answered trades.
void BM_StatefulRecovery(benchmark::State& state, fault_kind kind) {
  using demo_kernels::VwapKernel;
  for (auto _ : state) {
    sim_rig rig(2027);
    runtime& rt = rig.rt;
    auto& dev = rig.dev;
    auto& log = rig.log;
    fault_ladder& ladder = rig.ladder;
    ring_actor_options& opts = rig.opts;
    opts.state.state_bytes = state_bytes_of<VwapKernel>;
    opts.state.snapshot_every = 1000;
    opts.state.snapshot_ms = 1000;
    opts.state.journal_max = 16384;
    ladder.spawn_ring_actor<VwapKernel>("vwap", dev, opts, with_state_room<VwapKernel>(cpu_incarnation_options{}));

    const auto t0 = clk::now();
    load gen(rt, static_cast<std::size_t>(offered_rate) * 60, "vwap", trade, vwap_seq);
    std::vector<double> recovery_ms;
    std::uint64_t timeouts = 0;
    std::this_thread::sleep_for(50ms);  // the load is running (and a snapshot was taken)
    for (int t = 0; t < trials_per_kind; ++t) {
      long fault_at = -1;
      const long rec_at = rig.inject_and_wait(kind, fault_at);
      if (rec_at < 0) {
        ++timeouts;
        continue;
      }
      recovery_ms.push_back(static_cast<double>(log->at(static_cast<std::size_t>(rec_at)).duration_ns) / 1e6);
      if (kind == fault_kind::device_lost) {  // the device back, the actor failed back (restored again)
        dev->restore();
        if (log->wait_for(ladder_event::kind::breaker_closed, static_cast<std::size_t>(rec_at), 5000ms) < 0) ++timeouts;
      }
      std::this_thread::sleep_for(20ms);  // settle: the journal grows past a snapshot again
    }
    gen.stop();
    const double secs = std::chrono::duration<double>(clk::now() - t0).count();
    // The state: a fresh snapshot after every answer, against the fault-free one.
    auto core = rt.ring("vwap");
    const std::uint64_t before = core->state()->snapshots;
    core->request_snapshot();
    for (const auto until = clk::now() + 10s; core->state()->snapshots == before && clk::now() < until;)
      std::this_thread::sleep_for(1ms);
    VwapKernel::state want;
    VwapKernel::init(want);
    for (std::uint64_t id = 0; id < gen.sent(); ++id) {
      if (!gen.ok_at(id)) continue;  // an error reply: not applied
      const std::uint32_t key = static_cast<std::uint32_t>((id * 7) % demo_kernels::vwap_keys);
      const auto price = static_cast<std::uint64_t>(100 + id % 13);
      const std::uint64_t qty = 1 + id % 9;
      want.keys[key].trades += 1;
      want.keys[key].volume += qty;
      want.keys[key].notional =
          static_cast<std::int64_t>(static_cast<std::uint64_t>(want.keys[key].notional) + price * qty);
      want.applied += 1;
    }
    const std::vector<std::uint8_t> got = core->state()->bytes;
    const bool identical = got.size() == sizeof want && std::memcmp(got.data(), &want, sizeof want) == 0;
    report_recovery(state, recovery_ms, gen, timeouts, secs);
    state.counters["state_identical"] = identical ? 1 : 0;
    state.counters["state_restores"] = static_cast<double>(core->stats().state_restores);
    state.counters["journal_replayed"] = static_cast<double>(core->stats().journal_replayed);
    if (!identical) state.SkipWithError("the final state differs from the fault-free state of the answered trades");
  }
}

// ---- kernel hosts (out-of-process ring kernels) -----------------------------------------------

// GPU workers on the emulated GPU (the tests' worker program, tests/gpu_worker_main.cpp): its
// trap_once kernel traps on the sequence armed through the fault file when a worker becomes active.
#if defined(RINGFLOW_GPU_WORKER)
#if !defined(RINGFLOW_GPU_WORKER_BACKEND)
#define RINGFLOW_GPU_WORKER_BACKEND "emulated"
#endif
// The worker program: beside this executable when it is there (the GPU bundle's bin/), else the
// build's (RINGFLOW_GPU_WORKER).
std::string gpu_worker_program() {
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof self - 1) > 0) {
    std::string dir(self);
    dir.resize(dir.rfind('/'));
    std::string built(RINGFLOW_GPU_WORKER);
    const std::string beside = dir + built.substr(built.rfind('/'));
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return RINGFLOW_GPU_WORKER;
}
const std::string gpu_fault_file = "/tmp/rfbench-gpu-fault." + std::to_string(::getpid());
void arm_gpu_fault(std::uint64_t seq) {
  const std::string tmp = gpu_fault_file + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  std::fprintf(f, "%llu\n", static_cast<unsigned long long>(seq));
  std::fclose(f);
  std::rename(tmp.c_str(), gpu_fault_file.c_str());
}
#endif
constexpr std::uint64_t trap_base = 0x7a7a7a7a00000000ull;  // far from the load's sequences

process::kernel_host_options host_options(std::string backend) {
  process::kernel_host_options o;
  o.program = RINGFLOW_PROGRAM;
  o.kernels = ringflow::ops::catalog_kernel_lookup();
  o.backend = std::move(backend);
  o.segment_prefix = "rfbench";
#if defined(RINGFLOW_GPU_WORKER)
  if (o.backend == RINGFLOW_GPU_WORKER_BACKEND) {
    o.program = gpu_worker_program();
    o.start_timeout = std::chrono::milliseconds(20000);  // a first CUDA context on a large GPU
    o.worker_args = {"--fault-file", gpu_fault_file};
    o.kernels.find = [](const std::string& n) -> std::optional<process::hosted_kernel> {
      if (n != "echo" && n != "trap_once") return std::nullopt;
      const ops::kernel_info* k = ops::find_kernel("echo");
      return process::hosted_kernel{n, k->request_id, k->reply_id, k->cpu_factory, k->state_bytes};
    };
  }
#endif
  return o;
}

/// One ring actor "echo" on the CPU backend, in process or in a kernel-host worker, supervised.
struct placement_fixture {
  runtime rt;
  std::shared_ptr<process::kernel_host_device> host;
  std::shared_ptr<event_log> log = std::make_shared<event_log>();
  std::unique_ptr<fault_ladder> ladder;
  placement_fixture(bool hosted, const std::string& backend = "cpu") : rt(bench_runtime()) {
    ladder_config cfg;
    cfg.breaker.failure_threshold = 1000;
    cfg.restarts_before_reinit = 1000;
    cfg.on_event = [l = log](const ladder_event& e) { l->add(e); };
    ladder = std::make_unique<fault_ladder>(rt, cfg);
    ring_actor_options opts;
    opts.window = 4096;
    opts.per_caller_window = 2048;
    const ops::kernel_info* k = ops::find_kernel("echo");
    if (hosted) {
      host = process::kernel_host_device::make("host:bench", host_options(backend));
#if defined(RINGFLOW_GPU_WORKER)
      const char* kernel = backend == RINGFLOW_GPU_WORKER_BACKEND ? "trap_once" : "echo";
#else
      const char* kernel = "echo";
#endif
      ladder->spawn_ring_actor("echo", k->request_id, k->reply_id, host, host->factory(kernel), k->cpu_factory({}),
                               opts);
    } else {
      rt.spawn_ring_actor("echo", k->request_id, k->reply_id, k->cpu_factory({}), opts);
    }
  }
  static runtime_config bench_runtime() {
    runtime_config rc;
    rc.scheduler_threads = 2;
    return rc;
  }
};

/// Blocking round trips through the embedding API; p50/p99 of each call in microseconds.
void round_trips(benchmark::State& state, bool hosted) {
  placement_fixture f(hosted);
  ring_client c(f.rt.ring("echo"));
  for (int i = 0; i < 2000; ++i) c.call(echo(static_cast<std::uint64_t>(i)));  // warm: pages, caches, spin state
  std::vector<double> us;
  us.reserve(1 << 20);
  std::uint64_t seq = 0, bad = 0;
  for (auto _ : state) {
    const auto t0 = clk::now();
    const call_result r = c.call(echo(seq));
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    bad += !r.ok() || echo_seq(r.reply) != seq;
    ++seq;
  }
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
  state.counters["p999_us"] = percentile(us, 0.999);
  state.counters["bad_replies"] = static_cast<double>(bad);
  if (bad) state.SkipWithError("a call failed or got the wrong reply");
}
void BM_InProcessRoundTrip(benchmark::State& state) { round_trips(state, false); }
void BM_KernelHostRoundTrip(benchmark::State& state) { round_trips(state, true); }

/// SIGKILL of the worker under paced load -> the first successful reply of its replacement.
void BM_KernelHostKillRecovery(benchmark::State& state, const std::string& backend) {
  for (auto _ : state) {
    placement_fixture f(true, backend);
    const auto t0 = clk::now();
    load gen(f.rt, static_cast<std::size_t>(offered_rate) * 60);
    std::vector<double> recovery_ms;
    std::uint64_t timeouts = 0;
    std::this_thread::sleep_for(20ms);  // the load is running
    auto core = f.rt.ring("echo");
    for (int t = 0; t < trials_per_kind; ++t) {
      const std::size_t from = f.log->size();
      const std::uint64_t attaches = core->stats().attaches;
      const std::uint64_t kill_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch()).count());
      if (f.host->signal_workers(SIGKILL) != 1) {
        ++timeouts;
        continue;
      }
      const long fault_at = f.log->wait_for(ladder_event::kind::fault, from, 5000ms);
      const long rec_at =
          fault_at < 0 ? -1
                       : f.log->wait_for(ladder_event::kind::recovered, static_cast<std::size_t>(fault_at), 5000ms);
      const ring_stats st = core->stats();
      if (rec_at < 0 || st.attaches == attaches || st.first_reply_ns < kill_ns) {
        ++timeouts;
        continue;
      }
      recovery_ms.push_back(static_cast<double>(st.first_reply_ns - kill_ns) / 1e6);
      if (std::getenv("RINGFLOW_RECOVERY_VERBOSE")) {
        std::fprintf(stderr, "kill %d: %.2f ms:", t, recovery_ms.back());
        for (std::size_t i = from; i <= static_cast<std::size_t>(rec_at); ++i) {
          const ladder_event e = f.log->at(i);
          std::fprintf(stderr, " %s@%.2f(%s)", to_string(e.what), static_cast<double>(e.at_ns - kill_ns) / 1e6,
                       e.detail.c_str());
        }
        std::fprintf(stderr, "\n");
      }
      std::this_thread::sleep_for(20ms);  // settle: the next kill is a first fault again
    }
    gen.stop();
    report_recovery(state, recovery_ms, gen, timeouts, std::chrono::duration<double>(clk::now() - t0).count());
    state.counters["worker_restarts"] = static_cast<double>(f.host->worker_restarts());
  }
}

#if defined(RINGFLOW_GPU_RECOVERY_ONLY)
/// The console reporter, counting the runs that ended with an error (Google Benchmark 1.7).
class error_counting_reporter final : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;
  int errors = 0;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.error_occurred) ++errors;
    ConsoleReporter::ReportRuns(runs);
  }
};
#endif

#if defined(RINGFLOW_GPU_WORKER)
/// GPU kernel-host worker (emulated GPU; ringflow_bench_gpu_recovery: CUDA): under the paced load, `trials` times a
/// request traps the worker's kernel, poisoning its process as a sticky error poisons a CUDA context; measured: the
/// trapping request's send -> the first successful reply of the replacement worker (the standby,
/// which serves the replay). Each worker traps on its own armed sequence only, so the replacement
/// serves the trapping request (ring_stats::first_reply_ns after the new attach).
void BM_GpuWorkerTrapRecovery(benchmark::State& state) {
  for (auto _ : state) {
    arm_gpu_fault(trap_base);
    placement_fixture f(true, RINGFLOW_GPU_WORKER_BACKEND);
    const auto t0 = clk::now();
    load gen(f.rt, static_cast<std::size_t>(offered_rate) * 60);
    std::vector<double> recovery_ms;
    std::uint64_t timeouts = 0, wrong = 0;
    std::this_thread::sleep_for(20ms);  // the load is running
    auto core = f.rt.ring("echo");
    ring_client c(core);
    for (int t = 0; t < trials_per_kind; ++t) {
      // The replacement (the standby) reads the fault file when it becomes active: arm it first.
      const auto ready = clk::now() + 5000ms;
      while (f.host->standby_pids().size() != 1 && clk::now() < ready) std::this_thread::sleep_for(1ms);
      // A new standby creates its device context before it waits (a CUDA context takes hundreds of
      // ms): a trial measures a takeover by a ready standby, what the service keeps one for.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::string(RINGFLOW_GPU_WORKER_BACKEND) == "cuda" ? 1500 : 20));
      arm_gpu_fault(trap_base + static_cast<std::uint64_t>(t) + 1);
      const std::size_t from = f.log->size();
      const std::uint64_t attaches = core->stats().attaches;
      const std::uint64_t sent_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch()).count());
      const call_result r = c.call(echo(trap_base + static_cast<std::uint64_t>(t)));
      wrong += !r.ok() || echo_seq(r.reply) != trap_base + static_cast<std::uint64_t>(t);
      const long fault_at = f.log->wait_for(ladder_event::kind::fault, from, 5000ms);
      const long rec_at =
          fault_at < 0 ? -1
                       : f.log->wait_for(ladder_event::kind::recovered, static_cast<std::size_t>(fault_at), 5000ms);
      const ring_stats st = core->stats();
      if (rec_at < 0 || st.attaches == attaches || st.first_reply_ns < sent_ns) {
        ++timeouts;
        continue;
      }
      recovery_ms.push_back(static_cast<double>(st.first_reply_ns - sent_ns) / 1e6);
      std::this_thread::sleep_for(20ms);  // settle: the next trap is a first fault again
    }
    gen.stop();
    report_recovery(state, recovery_ms, gen, timeouts, std::chrono::duration<double>(clk::now() - t0).count());
    state.counters["worker_restarts"] = static_cast<double>(f.host->worker_restarts());
    state.counters["trap_replies_wrong"] = static_cast<double>(wrong);
    if (wrong) state.SkipWithError("a trapping request was not answered with its echo by the replacement worker");
  }
  std::remove(gpu_fault_file.c_str());
}
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#if defined(RINGFLOW_GPU_RECOVERY_ONLY)
  // ringflow_bench_gpu_recovery (the GPU bundle): only the GPU worker benchmark, on CUDA.
  ringflow::gpu::prepare_process();
  const ringflow::gpu::gpu_probe probe = ringflow::gpu::probe_cuda();
  if (!probe.usable) {
    std::fprintf(stderr, "ringflow_bench_gpu_recovery: no usable CUDA device: %s\n", probe.detail.c_str());
    return 77;
  }
  benchmark::RegisterBenchmark("BM_GpuWorkerTrapRecovery/cuda", BM_GpuWorkerTrapRecovery)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("ringflow_gpu", probe.detail);
  benchmark::AddCustomContext("ringflow_trials", std::to_string(trials_per_kind));
  error_counting_reporter reporter(::isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                           : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (reporter.errors) {
    std::fprintf(stderr, "ringflow_bench_gpu_recovery: %d benchmark run(s) ended with an error\n", reporter.errors);
    return 1;
  }
  return 0;
#endif
  for (fault_kind k :
       {fault_kind::transient_error, fault_kind::crash, fault_kind::out_of_memory, fault_kind::sticky_error,
        fault_kind::corrupt_reply, fault_kind::device_lost, fault_kind::hang}) {
    benchmark::RegisterBenchmark((std::string("BM_Recovery/") + sim::to_string(k)).c_str(),
                                 [k](benchmark::State& s) { BM_Recovery(s, k); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (fault_kind k : {fault_kind::crash, fault_kind::device_lost})
    benchmark::RegisterBenchmark((std::string("BM_StatefulRecovery/") + sim::to_string(k)).c_str(),
                                 [k](benchmark::State& s) { BM_StatefulRecovery(s, k); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_InProcessRoundTrip", BM_InProcessRoundTrip)
      ->UseRealTime()
      ->MinTime(2.0)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_KernelHostRoundTrip", BM_KernelHostRoundTrip)
      ->UseRealTime()
      ->MinTime(2.0)
      ->Unit(benchmark::kMicrosecond);
  for (const char* backend : {"cpu", "sim"})
    benchmark::RegisterBenchmark((std::string("BM_KernelHostKillRecovery/") + backend).c_str(),
                                 [b = std::string(backend)](benchmark::State& s) { BM_KernelHostKillRecovery(s, b); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
#if defined(RINGFLOW_GPU_WORKER)
  benchmark::RegisterBenchmark("BM_GpuWorkerTrapRecovery/emulated", BM_GpuWorkerTrapRecovery)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
#endif
  benchmark::AddCustomContext("ringflow_load", std::to_string(offered_rate) + " Echo requests/s offered by " +
                                                   std::to_string(client_threads) + " paced client threads");
  benchmark::AddCustomContext("ringflow_threads",
                              "2 CAF workers (idle), 1 completion poller, 1 sim pump + 1 CPU kernel thread, 1 ladder "
                              "thread, 2 client threads; nothing pinned");
  benchmark::AddCustomContext("ringflow_ladder",
                              "hang_timeout 20 ms, watch 1 ms, breaker threshold 1000 (steps measured "
                              "in isolation), open_for 20 ms, probe_window 20 ms");
  benchmark::AddCustomContext("ringflow_trials", std::to_string(trials_per_kind) + " per fault kind");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// bench/actor_bench.cpp — ringflow_bench_actors: the actor layer against CAF's own request/reply,
// side by side in one binary and one run (docs/BENCHMARKS.md, "Actor layer").
//
// Benchmarks (the base names are a contract; Google Benchmark appends /arg:value and /manual_time):
//   BM_RawCafRequestReply        driver actor -request-> plain CAF echo actor -response-> driver
//                                (no ringflow): the baseline of the ring actor
//   BM_RingActorRequestReply     the same driver -> ring actor (EchoKernel, CPU backend) -> driver
//   BM_EmbedRequestReply         the benchmark thread (not an actor): ring_client::call in a loop
//   BM_ScopedActorRequestReply   the benchmark thread: caf::scoped_actor request(...).receive(...)
//                                to the plain CAF echo actor (CAF's way for a non-actor thread)
//   BM_RawCafThroughput/clients:N    N driver actors, `tput_window` requests in flight each, to
//                                    the plain CAF echo actor
//   BM_RingActorThroughput/clients:N the same against the ring actor
//   BM_EmbedThroughput/clients:N     N threads, one ring_client each, `tput_window` requests in
//                                    flight each via submit(msg, callback); a thread blocks
//                                    (futex) until half its window has come back
// Every request is the same flatc-built ringflow.demo.Echo (32-byte body, 72 bytes); every reply
// is checked byte for byte against it.
//
// Round trips (RTT rows): one iteration = one request/reply. The actor rows run batches of
// `rtt_batch` sequential round trips in a fresh driver actor (each request sent from the previous
// response handler); the driver times the batch and every round trip (steady_clock), the batch
// time is the benchmark's manual time. Embed/scoped rows time each call on the benchmark thread.
// Counters: p50_us / p99_us / p999_us (per round trip), and for diagnosis: cpu_cores (process CPU
// time / wall time while the row ran: how many cores were busy, spinning included), ctx_sw
// (context switches of the whole process per request), poller_share (fraction of ring replies
// the completion poller thread delivered; the rest were consumed by the waiting caller itself).
// Throughput rows: one iteration = `tput_requests` requests split over the clients, `tput_window`
// in flight per client; items_per_second.
//
// Threads (one runtime shared by all rows, created before the first one): `scheduler_threads` CAF
// workers (work stealing: ~100 polls, then 50 us sleeps, then a condition variable), one kernel
// thread (EchoKernel: spin -> yield -> park), one completion poller (spin -> yield -> park), the
// benchmark thread, and in BM_EmbedThroughput N client threads. Nothing is pinned. The JSON
// context records the configuration in effect.
//
// Knobs for experiments (environment; the recorded runs use none of them):
//   BENCH_THREADS=n        CAF scheduler threads (default 2)
//   BENCH_NOPARK=1         kernel and poller never park (spin, then sched_yield forever)
//   BENCH_SPIN / BENCH_YIELD             kernel wait policy spin / yield iterations
//   BENCH_POLLER_SPIN / BENCH_POLLER_YIELD  the poller's
//   BENCH_HELP_US=n        ring_actor_options::help_wait in microseconds (0 = off)
//   BENCH_CLIENT_SPINS=n   client_options::help_spins of the embedding clients
//   BENCH_CAF_AGGR=n       CAF work-stealing.aggressive-poll-attempts (default 100: polls without sleeping)
//   BENCH_CAF_MODERATE=n   CAF work-stealing.moderate-poll-attempts (default 500: polls with a 50 us
//                          sleep between them, which an enqueue does not interrupt; 0 = an idle worker
//                          goes straight to its condition variable, which an enqueue notifies)
//   BENCH_CAF_POLICY=name  CAF scheduler.policy ("stealing" or "sharing")
//   BENCH_EMBED_HELP=1     BM_EmbedThroughput clients consume replies themselves while they wait
//                          (ring_core::poll_replies, as call() does) before blocking
#include <benchmark/benchmark.h>
#include <flatbuffers/flatbuffers.h>
#include <sys/resource.h>

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_echo.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/ringflow.hpp"

namespace {

using clk = std::chrono::steady_clock;
using ringflow::fb_msg;

constexpr std::uint64_t rtt_batch = 2000;       // round trips per driver actor (RTT rows)
constexpr std::uint64_t rtt_warmup = 500;       // unmeasured round trips before each RTT row
constexpr std::uint32_t tput_window = 16;       // requests in flight per client (throughput rows)
constexpr std::uint64_t tput_requests = 16000;  // requests per iteration, split over the clients

// The Echo request of every row: bench_echo.hpp.
using ringflow::bench::echo_request;

long env_num(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtol(v, nullptr, 10) : fallback;
}

// ------------------------------------------------------------------------------ the runtime

struct fixture {
  ringflow::runtime rt;
  ringflow::ring_actor_options ring_opts;
  ringflow::cpu_incarnation_options kernel_opts;
  ringflow::client_options client_opts;
  caf::actor ring;   // the ring actor (EchoKernel)
  caf::actor plain;  // a plain CAF echo actor
  fb_msg request = echo_request();

  fixture() : rt(make_config()) {
    if (std::getenv("BENCH_NOPARK")) kernel_opts.wait.park = false;
    kernel_opts.wait.spin_iterations =
        static_cast<std::uint32_t>(env_num("BENCH_SPIN", kernel_opts.wait.spin_iterations));
    kernel_opts.wait.yield_iterations =
        static_cast<std::uint32_t>(env_num("BENCH_YIELD", kernel_opts.wait.yield_iterations));
    if (std::getenv("BENCH_HELP_US")) ring_opts.help_wait = std::chrono::microseconds(env_num("BENCH_HELP_US", 0));
    client_opts.help_spins = static_cast<std::uint32_t>(env_num("BENCH_CLIENT_SPINS", client_opts.help_spins));
    ring = rt.spawn_ring_actor<ringflow::demo_kernels::EchoKernel>("echo", ring_opts, kernel_opts);
    plain = rt.spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](fb_msg& m) { return m; }}; }, 0);
  }

  static ringflow::runtime_config make_config() {
    ringflow::runtime_config c;
    c.scheduler_threads = static_cast<std::size_t>(env_num("BENCH_THREADS", 2));
    if (std::getenv("BENCH_NOPARK")) c.poller.wait.park = false;
    c.poller.wait.spin_iterations =
        static_cast<std::uint32_t>(env_num("BENCH_POLLER_SPIN", c.poller.wait.spin_iterations));
    c.poller.wait.yield_iterations =
        static_cast<std::uint32_t>(env_num("BENCH_POLLER_YIELD", c.poller.wait.yield_iterations));
    const long aggr = env_num("BENCH_CAF_AGGR", -1);
    const long moderate = env_num("BENCH_CAF_MODERATE", -1);
    const char* policy = std::getenv("BENCH_CAF_POLICY");
    c.configure_caf = [aggr, moderate, policy = std::string(policy ? policy : "")](caf::actor_system_config& cfg) {
      if (aggr >= 0) cfg.set("work-stealing.aggressive-poll-attempts", static_cast<std::size_t>(aggr));
      if (moderate >= 0) cfg.set("work-stealing.moderate-poll-attempts", static_cast<std::size_t>(moderate));
      if (!policy.empty()) cfg.set("scheduler.policy", caf::atom_from_string(policy));
    };
    return c;
  }

  std::string describe() const {
    const auto& k = kernel_opts.wait;
    const auto& p = rt.config().poller.wait;
    auto ladder = [](const ringflow::wait_policy& w) {
      return "spin " + std::to_string(w.spin_iterations) + " / yield " + std::to_string(w.yield_iterations) +
             (w.park ? " / park" : " / never park");
    };
    const long aggr = env_num("BENCH_CAF_AGGR", -1);
    const long moderate = env_num("BENCH_CAF_MODERATE", -1);
    auto num = [](long v) { return v >= 0 ? std::to_string(v) : std::string("default"); };
    const char* policy = std::getenv("BENCH_CAF_POLICY");
    return std::to_string(rt.config().scheduler_threads) + " CAF scheduler threads (" + (policy ? policy : "stealing") +
           ", aggressive polls " + num(aggr) + ", moderate polls " + num(moderate) + "); kernel thread: " + ladder(k) +
           "; poller: " + ladder(p) + "; ring actor help_wait " +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(ring_opts.help_wait).count()) +
           " us; ring_client help_spins " + std::to_string(client_opts.help_spins) + ", help_yields " +
           std::to_string(client_opts.help_yields) + "; nothing pinned";
  }
};

std::unique_ptr<fixture> the_fixture;  // created before the first row, destroyed at the end of main()
fixture& fx() {
  if (!the_fixture) the_fixture = std::make_unique<fixture>();
  return *the_fixture;
}

// ------------------------------------------------------------------------------ measurement

// Round-trip samples (ns) of one row; percentiles after the timed part.
struct samples {
  // Reserved for the row's iterations (+ one batch) before timing: no reallocation in the loop.
  explicit samples(const benchmark::State& state) {
    ns.reserve(static_cast<std::size_t>(std::min<benchmark::IterationCount>(state.max_iterations, 16'000'000)) +
               rtt_batch);
  }
  std::vector<std::uint32_t> ns;
  void add(clk::duration d) {
    ns.push_back(static_cast<std::uint32_t>(
        std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), UINT32_MAX)));
  }
  void report(benchmark::State& state) {
    if (ns.empty()) return;
    auto pct = [&](double p) {
      const std::size_t k =
          std::min(ns.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ns.size() - 1) + 0.5));
      std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(k), ns.end());
      return static_cast<double>(ns[k]) / 1000.0;
    };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p99_us"] = pct(0.99);
    state.counters["p999_us"] = pct(0.999);
  }
};

// Whole-process CPU time and context switches over a row, and the poller's share of replies.
class process_meter {
 public:
  process_meter() : poller_(fx().rt.poller().stats()), wall_(clk::now()) { getrusage(RUSAGE_SELF, &ru_); }
  void report(benchmark::State& state, std::uint64_t round_trips, bool ring_row) const {
    rusage now{};
    getrusage(RUSAGE_SELF, &now);
    auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    const double cpu = secs(now.ru_utime) - secs(ru_.ru_utime) + secs(now.ru_stime) - secs(ru_.ru_stime);
    const double wall = std::chrono::duration<double>(clk::now() - wall_).count();
    state.counters["cpu_cores"] = wall > 0 ? cpu / wall : 0;
    const double sw = static_cast<double>((now.ru_nvcsw - ru_.ru_nvcsw) + (now.ru_nivcsw - ru_.ru_nivcsw));
    if (round_trips) state.counters["ctx_sw"] = sw / static_cast<double>(round_trips);
    if (ring_row && round_trips) {
      const auto p = fx().rt.poller().stats();
      state.counters["poller_share"] =
          static_cast<double>(p.replies - poller_.replies) / static_cast<double>(round_trips);
    }
  }

 private:
  ringflow::poller_stats poller_;
  clk::time_point wall_;
  rusage ru_{};
};

// ------------------------------------------------------------------------------ driver actors

// One driver actor's job: `total` request/reply round trips to `target`, `window` in flight.
struct driver_job {
  caf::actor target;
  fb_msg request;
  std::uint64_t total = 0;
  std::uint32_t window = 1;
  samples* lat = nullptr;  // per round-trip samples (window 1 only), reserved by the owner
  // results, written by the driver before `done`
  std::promise<void> done;
  std::future<void> finished;  // done's future, taken before the driver starts
  clk::duration elapsed{};
  std::uint64_t errors = 0;  // error responses or replies that differ from the request
};

struct driver_state {
  std::shared_ptr<driver_job> job;
  std::uint64_t sent = 0;
  std::uint64_t answered = 0;
  clk::time_point t0;
  static inline const char* name = "bench.driver";
};
using driver_actor = caf::stateful_actor<driver_state>;

void driver_send(driver_actor* self);

void driver_answered(driver_actor* self, clk::time_point sent_at, bool ok) {
  const auto now = clk::now();
  driver_state& st = self->state;
  driver_job& job = *st.job;
  if (job.lat) job.lat->add(now - sent_at);
  if (!ok) ++job.errors;
  if (++st.answered == job.total) {
    job.elapsed = now - st.t0;
    job.done.set_value();
    self->quit();
    return;
  }
  if (st.sent < job.total) driver_send(self);  // the next request, from this response handler
}

void driver_send(driver_actor* self) {
  ++self->state.sent;
  const auto sent_at = clk::now();
  self->request(self->state.job->target, caf::infinite, self->state.job->request)
      .then([self,
             sent_at](fb_msg& reply) { driver_answered(self, sent_at, reply.bytes == self->state.job->request.bytes); },
            [self, sent_at](caf::error&) { driver_answered(self, sent_at, false); });
}

caf::behavior driver(driver_actor* self, std::shared_ptr<driver_job> job) {
  self->state.job = std::move(job);
  self->state.t0 = clk::now();
  const std::uint64_t first = std::min<std::uint64_t>(self->state.job->window, self->state.job->total);
  for (std::uint64_t i = 0; i < first; ++i) driver_send(self);
  return {[](int) {}};  // nothing but responses arrives; the actor quits after the last one
}

std::shared_ptr<driver_job> start_driver(const caf::actor& target, std::uint64_t total, std::uint32_t window,
                                         samples* lat) {
  auto job = std::make_shared<driver_job>();
  job->target = target;
  job->request = fx().request;
  job->total = total;
  job->window = window;
  job->lat = lat;
  job->finished = job->done.get_future();
  fx().rt.system().spawn(driver, job);
  return job;
}

// Runs one job to completion from the calling (non-actor) thread; nullptr if it took over 30 s.
std::shared_ptr<driver_job> run_driver(const caf::actor& target, std::uint64_t total, samples* lat) {
  auto job = start_driver(target, total, 1, lat);
  if (job->finished.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return nullptr;
  return job;
}

// ------------------------------------------------------------------------------ round trips

void actor_rtt(benchmark::State& state, const caf::actor& target, bool ring_row) {
  if (!run_driver(target, rtt_warmup, nullptr)) {
    state.SkipWithError("warm-up batch did not finish within 30 s");
    return;
  }
  samples lat(state);
  std::uint64_t errors = 0, round_trips = 0;
  process_meter meter;
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(rtt_batch))) {
    const auto job = run_driver(target, rtt_batch, &lat);
    if (!job) {
      state.SkipWithError("driver batch did not finish within 30 s");
      return;
    }
    errors += job->errors;
    round_trips += rtt_batch;
    state.SetIterationTime(std::chrono::duration<double>(job->elapsed).count());
  }
  meter.report(state, round_trips, ring_row);
  lat.report(state);
  if (errors) state.SkipWithError("error responses or replies that differ from the request");
}

void BM_RawCafRequestReply(benchmark::State& state) { actor_rtt(state, fx().plain, false); }
void BM_RingActorRequestReply(benchmark::State& state) { actor_rtt(state, fx().ring, true); }

void BM_EmbedRequestReply(benchmark::State& state) {
  auto client = fx().rt.client("echo", fx().client_opts);
  if (!client) {
    state.SkipWithError("no ring actor 'echo'");
    return;
  }
  const fb_msg& req = fx().request;
  for (std::uint64_t i = 0; i < rtt_warmup; ++i) (void)client->call(req);
  samples lat(state);
  std::uint64_t errors = 0, round_trips = 0;
  process_meter meter;
  for (auto _ : state) {
    const auto t = clk::now();
    ringflow::call_result r = client->call(req);
    lat.add(clk::now() - t);
    errors += !r.ok() || r.reply.bytes != req.bytes;
    ++round_trips;
  }
  meter.report(state, round_trips, true);
  lat.report(state);
  if (errors) state.SkipWithError("error results or replies that differ from the request");
}

void BM_ScopedActorRequestReply(benchmark::State& state) {
  caf::scoped_actor self{fx().rt.system()};
  const caf::actor& echo = fx().plain;
  const fb_msg& req = fx().request;
  std::uint64_t errors = 0, round_trips = 0;
  auto one = [&] {
    bool ok = false;
    self->request(echo, caf::infinite, req)
        .receive([&](fb_msg& reply) { ok = reply.bytes == req.bytes; }, [&](caf::error&) {});
    return ok;
  };
  for (std::uint64_t i = 0; i < rtt_warmup; ++i) (void)one();
  samples lat(state);
  process_meter meter;
  for (auto _ : state) {
    const auto t = clk::now();
    const bool ok = one();
    lat.add(clk::now() - t);
    errors += !ok;
    ++round_trips;
  }
  meter.report(state, round_trips, false);
  lat.report(state);
  if (errors) state.SkipWithError("error responses or replies that differ from the request");
}

// ------------------------------------------------------------------------------ throughput

void actor_throughput(benchmark::State& state, const caf::actor& target, bool ring_row) {
  const auto clients = static_cast<std::uint64_t>(state.range(0));
  const std::uint64_t per_client = tput_requests / clients;
  std::uint64_t errors = 0, done = 0;
  process_meter meter;
  for (auto _ : state) {
    const auto t0 = clk::now();
    std::vector<std::shared_ptr<driver_job>> jobs;
    for (std::uint64_t i = 0; i < clients; ++i) jobs.push_back(start_driver(target, per_client, tput_window, nullptr));
    for (auto& j : jobs) {
      if (j->finished.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
        state.SkipWithError("driver did not finish within 30 s");
        return;
      }
      errors += j->errors;
    }
    state.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
    done += clients * per_client;
  }
  meter.report(state, done, ring_row);
  state.SetItemsProcessed(static_cast<std::int64_t>(done));
  if (errors) state.SkipWithError("error responses or replies that differ from the request");
}

void BM_RawCafThroughput(benchmark::State& state) { actor_throughput(state, fx().plain, false); }
void BM_RingActorThroughput(benchmark::State& state) { actor_throughput(state, fx().ring, true); }

// One client thread: `n` requests through its own ring_client, `tput_window` in flight; refills
// when half the window has come back (one wake-up per half window, not per reply). The counters
// live on the heap: a callback still touches them after its decrement lets this thread return.
void embed_client(std::uint64_t n, std::atomic<std::uint64_t>& errors) {
  struct window_state {
    std::atomic<std::uint32_t> in_flight{0};
    std::atomic<std::uint64_t> bad{0};
  };
  ringflow::ring_client client = *fx().rt.client("echo", fx().client_opts);
  const fb_msg& req = fx().request;
  constexpr std::uint32_t low = tput_window / 2;
  auto w = std::make_shared<window_state>();
  static const bool help = std::getenv("BENCH_EMBED_HELP") != nullptr;
  auto wait_until_at_most = [&](std::uint32_t limit) {
    if (help)  // experiment: consume replies on this thread while waiting, as call() does
      for (std::uint32_t i = 0; i < 20000 && w->in_flight.load(std::memory_order_acquire) > limit; ++i)
        if (client.core().poll_replies() == 0) ringflow::cpu_relax();
    for (std::uint32_t v = w->in_flight.load(std::memory_order_acquire); v > limit;
         v = w->in_flight.load(std::memory_order_acquire))
      w->in_flight.wait(v, std::memory_order_acquire);
  };
  std::uint64_t sent = 0;
  while (sent < n) {
    while (sent < n && w->in_flight.load(std::memory_order_relaxed) < tput_window) {
      w->in_flight.fetch_add(1, std::memory_order_relaxed);
      // Overloaded cannot happen here (8 x 16 in flight < the ring actor's window of 256, 16 < the
      // per-caller 64); it would count as an error like any other failed or wrong reply.
      client.submit(req, [w, &req](ringflow::call_result&& r) {
        if (!r.ok() || r.reply.bytes != req.bytes) w->bad.fetch_add(1, std::memory_order_relaxed);
        const std::uint32_t left = w->in_flight.fetch_sub(1, std::memory_order_acq_rel) - 1;
        if (left == low || left == 0) w->in_flight.notify_one();
      });
      ++sent;
    }
    wait_until_at_most(low);
  }
  wait_until_at_most(0);
  errors.fetch_add(w->bad.load(), std::memory_order_relaxed);
}

void BM_EmbedThroughput(benchmark::State& state) {
  const auto clients = static_cast<std::uint64_t>(state.range(0));
  const std::uint64_t per_client = tput_requests / clients;
  std::atomic<std::uint64_t> errors{0};
  std::uint64_t done = 0;
  process_meter meter;
  for (auto _ : state) {
    const auto t0 = clk::now();
    std::vector<std::thread> ts;
    for (std::uint64_t i = 0; i < clients; ++i) ts.emplace_back(embed_client, per_client, std::ref(errors));
    for (auto& t : ts) t.join();
    state.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
    done += clients * per_client;
  }
  meter.report(state, done, true);
  state.SetItemsProcessed(static_cast<std::int64_t>(done));
  if (errors.load()) state.SkipWithError("error results (or overloaded) in the embed throughput row");
}

}  // namespace

BENCHMARK(BM_RawCafRequestReply)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RingActorRequestReply)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmbedRequestReply)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScopedActorRequestReply)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawCafThroughput)
    ->ArgName("clients")
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->MinTime(0.5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RingActorThroughput)
    ->ArgName("clients")
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->MinTime(0.5)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EmbedThroughput)
    ->ArgName("clients")
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->MinTime(0.5)
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("ringflow_threads", fx().describe());
  benchmark::AddCustomContext(
      "ringflow_request", "ringflow.demo.Echo, 32-byte body, " + std::to_string(fx().request.bytes.size()) + " bytes");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  the_fixture.reset();  // the runtime shuts down before static destruction begins
  return 0;
}

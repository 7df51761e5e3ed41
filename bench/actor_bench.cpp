// ringflow_bench_actors: the actor layer against CAF's own request/reply, in one run.
//
//   BM_RawCafRequestReply       driver actor -> plain CAF echo actor -> driver   (no ringflow)
//   BM_RingActorRequestReply    driver actor -> ring actor (EchoKernel, CPU backend) -> driver
//   BM_EmbedRequestReply        non-actor thread: ring_client::call (the embedding path)
//   BM_ScopedActorRequestReply  non-actor thread: caf::scoped_actor request/receive to a CAF echo actor
//   BM_RingActorThroughput/clients:N   N driver actors, one request in flight each
//   BM_EmbedThroughput/clients:N       N threads, ring_client::submit with 16 in flight each
// Round-trip benchmarks report time per round trip and p50_us / p99_us counters from per-request
// samples. Threads: 2 CAF scheduler threads, 1 completion poller, 1 kernel thread (all spin
// briefly, then park), plus the benchmark thread / client threads.
#include <benchmark/benchmark.h>
#include <flatbuffers/flatbuffers.h>

#include <caf/all.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/ringflow.hpp"

using namespace ringflow;
using clk = std::chrono::steady_clock;

namespace {

fb_msg echo_bytes() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<std::uint8_t> body(32, 7);
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, 1, b.CreateVector(body)));
  return fb_msg(b.GetBufferPointer(), b.GetSize());
}

struct fixture {
  runtime rt;
  caf::actor ring;
  caf::actor plain;
  fixture() : rt(make_config()) {
    cpu_incarnation_options kernel;
    if (std::getenv("BENCH_NOPARK")) kernel.wait.park = false;
    if (const char* sp = std::getenv("BENCH_SPIN")) kernel.wait.spin_iterations = std::atoi(sp);
    if (const char* y = std::getenv("BENCH_YIELD")) kernel.wait.yield_iterations = std::atoi(y);
    ring = rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo", {}, kernel);
    plain = rt.spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](fb_msg& m) { return m; }}; }, 0);
  }
  static runtime_config make_config() {
    runtime_config c;
    c.scheduler_threads = 2;
    if (std::getenv("BENCH_NOPARK")) c.poller.wait.park = false;
    if (const char* sp = std::getenv("BENCH_POLLER_SPIN")) c.poller.wait.spin_iterations = std::atoi(sp);
    if (const char* y = std::getenv("BENCH_POLLER_YIELD")) c.poller.wait.yield_iterations = std::atoi(y);
    if (const char* t = std::getenv("BENCH_THREADS")) c.scheduler_threads = std::atoi(t);
    if (const char* a = std::getenv("BENCH_CAF_AGGR")) {
      const std::size_t n = std::strtoull(a, nullptr, 10);
      c.configure_caf = [n](caf::actor_system_config& cfg) { cfg.set("work-stealing.aggressive-poll-attempts", n); };
    }
    if (const char* p = std::getenv("BENCH_CAF_POLICY")) {
      std::string policy = p;
      c.configure_caf = [policy](caf::actor_system_config& cfg) { cfg.set("scheduler.policy", caf::atom_from_string(policy)); };
    }
    return c;
  }
};
std::unique_ptr<fixture> the_fixture;  // created lazily, destroyed at the end of main()
fixture& fx() {
  if (!the_fixture) the_fixture = std::make_unique<fixture>();
  return *the_fixture;
}

void report(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

// One driver actor doing `n` sequential request/reply round trips to `target`.
struct batch_result {
  std::promise<void> done;
  std::vector<double> us;
  double seconds = 0;
  int errors = 0;
};
void drive(caf::actor_system& sys, const caf::actor& target, int n, std::shared_ptr<batch_result> res) {
  sys.spawn(
      [](caf::event_based_actor* self, caf::actor target, int n, std::shared_ptr<batch_result> res) {
        auto left = std::make_shared<int>(n);
        auto start = std::make_shared<clk::time_point>(clk::now());
        auto t0 = std::make_shared<clk::time_point>(clk::now());
        auto step = std::make_shared<std::function<void()>>();
        *step = [=] {
          *start = clk::now();
          self->request(target, caf::infinite, echo_bytes())
              .then(
                  [=](fb_msg&) {
                    res->us.push_back(std::chrono::duration<double, std::micro>(clk::now() - *start).count());
                    if (--*left > 0) return (*step)();
                    res->seconds = std::chrono::duration<double>(clk::now() - *t0).count();
                    *step = nullptr;
                    res->done.set_value();
                  },
                  [=](caf::error&) {
                    ++res->errors;
                    if (--*left > 0) return (*step)();
                    *step = nullptr;
                    res->done.set_value();
                  });
        };
        (*step)();
      },
      target, n, res);
}

void actor_rtt(benchmark::State& state, const caf::actor& target) {
  constexpr int batch = 2000;
  std::vector<double> us;
  while (state.KeepRunningBatch(batch)) {  // one driver batch = `batch` iterations (round trips)
    auto res = std::make_shared<batch_result>();
    res->us.reserve(batch);
    drive(fx().rt.system(), target, batch, res);
    res->done.get_future().wait();
    if (res->errors) state.SkipWithError("error replies");
    state.SetIterationTime(res->seconds);
    us.insert(us.end(), res->us.begin(), res->us.end());
  }
  report(state, us);
}

void BM_RawCafRequestReply(benchmark::State& state) { actor_rtt(state, fx().plain); }
void BM_RingActorRequestReply(benchmark::State& state) { actor_rtt(state, fx().ring); }

void BM_EmbedRequestReply(benchmark::State& state) {
  ring_client c = *fx().rt.client("echo");
  const fb_msg m = echo_bytes();
  std::vector<double> us;
  for (auto _ : state) {
    const auto s = clk::now();
    call_result r = c.call(m);
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - s).count());
    if (!r.ok()) state.SkipWithError("error reply");
  }
  report(state, us);
}

void BM_ScopedActorRequestReply(benchmark::State& state) {
  caf::scoped_actor self{fx().rt.system()};
  const fb_msg m = echo_bytes();
  std::vector<double> us;
  for (auto _ : state) {
    const auto s = clk::now();
    bool ok = false;
    self->request(fx().plain, caf::infinite, m).receive([&](fb_msg&) { ok = true; }, [&](caf::error&) {});
    us.push_back(std::chrono::duration<double, std::micro>(clk::now() - s).count());
    if (!ok) state.SkipWithError("error reply");
  }
  report(state, us);
}

void BM_RingActorThroughput(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  constexpr int per_client = 1000;
  for (auto _ : state) {
    std::vector<std::shared_ptr<batch_result>> rs;
    const auto t0 = clk::now();
    for (int i = 0; i < clients; ++i) {
      rs.push_back(std::make_shared<batch_result>());
      drive(fx().rt.system(), fx().ring, per_client, rs.back());
    }
    for (auto& r : rs) r->done.get_future().wait();
    state.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
  }
  state.SetItemsProcessed(state.iterations() * clients * per_client);
}

void BM_EmbedThroughput(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  constexpr int per_client = 2000, window = 16;
  std::atomic<int> errors{0};
  for (auto _ : state) {
    const auto t0 = clk::now();
    std::vector<std::thread> ts;
    for (int i = 0; i < clients; ++i) {
      ts.emplace_back([&] {
        ring_client c = *fx().rt.client("echo");
        std::atomic<int> in_flight{0}, done{0};
        while (done.load(std::memory_order_acquire) + in_flight.load(std::memory_order_acquire) < per_client) {
          if (in_flight.load(std::memory_order_acquire) >= window) {
            std::this_thread::yield();
            continue;
          }
          in_flight.fetch_add(1);
          c.submit(echo_bytes(), [&](call_result&& r) {
            if (r.ok()) done.fetch_add(1, std::memory_order_relaxed);  // overloaded: sent again
            else if (r.code != errc::overloaded) errors.fetch_add(1), done.fetch_add(1);
            in_flight.fetch_sub(1, std::memory_order_release);
          });
        }
        while (in_flight.load(std::memory_order_acquire) > 0) std::this_thread::yield();
      });
    }
    for (auto& t : ts) t.join();
    state.SetIterationTime(std::chrono::duration<double>(clk::now() - t0).count());
  }
  if (errors.load()) state.SkipWithError("error replies");
  state.SetItemsProcessed(state.iterations() * clients * per_client);
}

}  // namespace

BENCHMARK(BM_RawCafRequestReply)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RingActorRequestReply)->UseManualTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmbedRequestReply)->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScopedActorRequestReply)->MinTime(1.0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RingActorThroughput)->ArgName("clients")->Arg(1)->Arg(2)->Arg(8)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EmbedThroughput)->ArgName("clients")->Arg(1)->Arg(2)->Arg(8)->UseManualTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  the_fixture.reset();  // the runtime shuts down before static destruction begins
  return 0;
}

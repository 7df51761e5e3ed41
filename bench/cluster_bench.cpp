// ringflow_bench_cluster — remote ring actors over CAF 0.17's io middleman against raw CAF remote
// requests between the same two processes, and member loss -> first reply from the fallback
// (docs/BENCHMARKS.md, "Cluster"). Loopback, one machine.
//
// Two processes: this one (member m1: an engine with run_options::cluster_client, and a raw CAF
// actor system with the middleman) and a server child forked at start (member m2: an engine whose
// `echo` ring node runs the echo kernel on the CPU backend, and beside it, in its own actor system
// with the middleman, a published raw CAF actor that returns the fb_msg it gets). Every request is
// an Echo FlatBuffer with a 256-byte body (~300 bytes), the same bytes for both.
//
//   BM_RawCafRemoteRtt/scoped     a thread's blocking request: scoped_actor request(...).receive
//   BM_RawCafRemoteRtt/actor      an event-based actor's request(...).then chain, one at a time
//                                 (its Time column: 1,000 round trips; compare mean_us / p50_us)
//   BM_RingflowRemoteRtt          node_client("echo@m2").call(): outbox, deadline budget, dedupe at
//                                 m2, serve graph, ring actor, reply fenced by epoch
//   BM_RawCafRemoteThroughput     an event-based actor keeping 64 requests open, 20,000 per iteration
//   BM_RingflowRemoteThroughput   node_client submit() with callbacks keeping 64 open, 20,000
//   Counters: mean_us / p50_us / p99_us / p999_us (round trips), msgs_per_s (throughput), bad (failed or
//   wrong replies; any is an error).
//
//   BM_MemberKillFailover         trials (RINGFLOW_CLUSTER_KILLS, default 100) of: m2 as a real
//                                 `ringflow run --member m2` process, m1 connected to it (after
//                                 the first trial: failed back), quiet; SIGKILL m2; then m1 calls
//                                 echo@m2 (fallback: local_cpu) — the time from the kill to that
//                                 first reply (which only the fallback can give: m2 is gone).
//   BM_MemberSilentFailover       the same with SIGSTOP (m2 alive, silent: a partition's view; only
//                                 the heartbeat can tell): kill -> first fallback reply follows
//                                 timeout_ms (200 here). RINGFLOW_CLUSTER_STOPS trials (default 20).
//   (m1's member breaker is set not to open: breaker.failure_threshold 1,000,000, so that every
//   trial fails back and measures the failover, not the breaker's cool-down.)
//   Counters: failover_p50_ms / failover_p99_ms / failover_max_ms, trials, failed (a trial whose
//   call was not answered by its echo), failovers / failbacks (m1's), goal_ms (timeout_ms + 10).
#include <benchmark/benchmark.h>
#include <flatbuffers/flatbuffers.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/log.hpp"

using namespace ringflow;
using namespace ringflow::ops;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
const int kill_trials = env_int("RINGFLOW_CLUSTER_KILLS", 100);
const int stop_trials = env_int("RINGFLOW_CLUSTER_STOPS", 20);
constexpr std::size_t body_bytes = 256;
constexpr std::uint32_t window = 64;
constexpr std::uint64_t batch = 20000;

fb_msg echo(std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<std::uint8_t> body(body_bytes, static_cast<std::uint8_t>(seq));
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, seq, b.CreateVector(body)));
  return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}
std::uint64_t echo_seq(const fb_msg& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  if (!v.VerifyBuffer<demo::Echo>(nullptr)) return ~0ull;
  return demo::GetEcho(m.bytes.data())->sequence();
}
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

topology parse(const std::string& text, const std::string& file) {
  std::vector<topology_error> errors;
  std::optional<topology> t = parse_topology(text, file, errors);
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!t) std::exit(1);
  return *t;
}

// The RTT/throughput pair: m2 serves `echo` (a ring node on the CPU backend).
const char* pair_topology =
    "name: cluster-bench\n"
    "cluster:\n"
    "  members:\n"
    "    - {name: m1, listen: \"127.0.0.1:0\"}\n"
    "    - {name: m2, listen: \"127.0.0.1:0\"}\n"
    "  heartbeat_ms: 100\n"
    "  timeout_ms: 1000\n"
    "nodes:\n"
    "  - {name: echo, kernel: echo, backend: cpu, window: 1024, at: m2}\n";

// The failover runs: m2 is a `ringflow run` process; echo falls back to a CPU copy in m1.
const char* kill_topology =
    "name: cluster-bench-kill\n"
    "cluster:\n"
    "  members:\n"
    "    - {name: m1, listen: \"127.0.0.1:0\"}\n"
    "    - {name: m2, listen: \"127.0.0.1:0\"}\n"
    "  heartbeat_ms: 20\n"
    "  timeout_ms: 200\n"
    "nodes:\n"
    "  - {name: echo, kernel: echo, backend: cpu, window: 1024, at: m2, fallback: local_cpu}\n";
constexpr double kill_timeout_ms = 200;

std::string bench_dir;
pid_t server_pid = -1;
int server_pipe = -1;  // its read end is the server's lifeline: EOF = this process is gone
std::uint16_t raw_port = 0;

// Both members' engine configuration: the wait policy of their waiting threads (RINGFLOW_CLUSTER_WAIT:
// park | adaptive | spin; default adaptive, the program's default).
program_config member_config() {
  program_config c;
  const char* w = std::getenv("RINGFLOW_CLUSTER_WAIT");
  if (w && *w) c.runtime.wait = w;
  return c;
}

void add_types(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  cfg.add_message_type<fb_msg>("ringflow::fb_msg");
}

// The server child: m2 and the raw CAF echo actor, until the parent closes the pipe.
[[noreturn]] void server_main(int lifeline, int ready) {
  {
    caf::actor_system_config cfg;
    add_types(cfg);
    caf::actor_system sys(cfg);
    caf::actor raw = sys.spawn([]() -> caf::behavior { return {[](fb_msg& m) { return std::move(m); }}; });
    caf::expected<std::uint16_t> port = sys.middleman().publish(raw, 0, "127.0.0.1");
    if (!port) std::_Exit(3);
    ops::event_log log("warn", "json", bench_dir + "/m2.log");
    run_options o;
    o.member = "m2";
    o.cluster_dir = bench_dir;
    engine eng(parse(pair_topology, "cluster-bench.yaml"), member_config(), log, o);
    eng.start();
    const std::uint16_t p = *port;
    if (::write(ready, &p, sizeof p) != sizeof p) std::_Exit(3);
    ::close(ready);
    char c;
    while (::read(lifeline, &c, 1) > 0) {}
    eng.stop();
    caf::anon_send_exit(raw, caf::exit_reason::user_shutdown);
  }
  std::_Exit(0);
}

void start_server() {
  int life[2], ready[2];
  if (::pipe(life) != 0 || ::pipe(ready) != 0) std::exit(1);
  server_pid = ::fork();
  if (server_pid < 0) std::exit(1);
  if (server_pid == 0) {
    ::close(life[1]);
    ::close(ready[0]);
    server_main(life[0], ready[1]);
  }
  ::close(life[0]);
  ::close(ready[1]);
  server_pipe = life[1];
  if (::read(ready[0], &raw_port, sizeof raw_port) != sizeof raw_port) {
    std::fprintf(stderr, "ringflow_bench_cluster: the server process did not start (see %s/m2.log)\n",
                 bench_dir.c_str());
    std::exit(1);
  }
  ::close(ready[0]);
}

void stop_server() {
  if (server_pid <= 0) return;
  ::close(server_pipe);
  int status = 0;
  ::waitpid(server_pid, &status, 0);
  server_pid = -1;
}

// This process's side of the pair: m1's engine and a raw CAF system with a proxy of the echo.
struct client_side {
  ops::event_log log{"warn", "json", bench_dir + "/m1.log"};
  std::unique_ptr<engine> eng;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor raw;
  node_client remote;
  client_side() {
    run_options o;
    o.member = "m1";
    o.cluster_dir = bench_dir;
    o.cluster_client = true;
    eng = std::make_unique<engine>(parse(pair_topology, "cluster-bench.yaml"), member_config(), log, o);
    eng->start();
    caf::expected<node_client> c = eng->client("echo@m2", {window * 2, std::chrono::milliseconds(10000)});
    if (!c) std::exit(1);
    remote = *c;
    cfg = std::make_unique<caf::actor_system_config>();
    add_types(*cfg);
    sys = std::make_unique<caf::actor_system>(*cfg);
    caf::expected<caf::actor> h = sys->middleman().remote_actor("127.0.0.1", raw_port);
    if (!h) std::exit(1);
    raw = *h;
  }
  ~client_side() {
    remote = node_client();
    eng->stop();
    raw = caf::actor();
    sys.reset();
  }
};
std::unique_ptr<client_side> the_pair;  // made by the first benchmark that needs it, gone before the server
client_side& pair() {
  if (!the_pair) the_pair = std::make_unique<client_side>();
  return *the_pair;
}

void report_rtt(benchmark::State& state, const std::vector<double>& us, std::uint64_t bad) {
  double sum = 0;
  for (double x : us) sum += x;
  state.counters["mean_us"] = us.empty() ? 0 : sum / static_cast<double>(us.size());
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
  state.counters["p999_us"] = percentile(us, 0.999);
  state.counters["bad"] = static_cast<double>(bad);
  if (bad) state.SkipWithError("a request failed or got the wrong reply");
}

void BM_RawCafRemoteRtt_scoped(benchmark::State& state) {
  client_side& p = pair();
  caf::scoped_actor self{*p.sys};
  std::vector<double> us;
  us.reserve(1 << 20);
  std::uint64_t seq = 0, bad = 0;
  auto one = [&](bool timed) {
    fb_msg m = echo(seq);
    const auto t0 = clk::now();
    self->request(p.raw, std::chrono::seconds(10), std::move(m))
        .receive([&](fb_msg& r) { bad += echo_seq(r) != seq; }, [&](caf::error&) { ++bad; });
    if (timed) us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    ++seq;
  };
  for (int i = 0; i < 2000; ++i) one(false);  // warm
  for (auto _ : state) one(true);
  report_rtt(state, us, bad);
}

// An event-based actor doing `n` sequential requests; the times of each round trip.
struct chain_result {
  std::vector<double> us;
  std::uint64_t bad = 0;
};
chain_result raw_chain(client_side& p, std::uint64_t n) {
  auto out = std::make_shared<chain_result>();
  out->us.reserve(n);
  std::promise<void> done;
  std::future<void> f = done.get_future();
  p.sys->spawn([out, n, &done, target = p.raw](caf::event_based_actor* self) {
    struct step {
      static void go(caf::event_based_actor* self, caf::actor target, std::shared_ptr<chain_result> out,
                     std::uint64_t i, std::uint64_t n, std::promise<void>* done) {
        if (i == n) {
          done->set_value();
          self->quit();
          return;
        }
        const auto t0 = clk::now();
        self->request(target, std::chrono::seconds(10), echo(i))
            .then(
                [=](fb_msg& r) {
                  out->us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
                  out->bad += echo_seq(r) != i;
                  go(self, target, out, i + 1, n, done);
                },
                [=](caf::error&) {
                  ++out->bad;
                  go(self, target, out, i + 1, n, done);
                });
      }
    };
    step::go(self, target, out, 0, n, &done);
  });
  f.wait();
  return std::move(*out);
}

void BM_RawCafRemoteRtt_actor(benchmark::State& state) {
  client_side& p = pair();
  raw_chain(p, 2000);  // warm
  std::vector<double> us;
  std::uint64_t bad = 0;
  for (auto _ : state) {  // one iteration = 1,000 sequential round trips (manual time: their sum)
    chain_result r = raw_chain(p, 1000);
    double total = 0;
    for (double x : r.us) total += x;
    state.SetIterationTime(total / 1e6);
    us.insert(us.end(), r.us.begin(), r.us.end());
    bad += r.bad;
  }
  report_rtt(state, us, bad);
}

void BM_RingflowRemoteRtt(benchmark::State& state) {
  client_side& p = pair();
  std::vector<double> us;
  us.reserve(1 << 20);
  std::uint64_t seq = 0, bad = 0;
  auto one = [&](bool timed) {
    fb_msg m = echo(seq);
    const auto t0 = clk::now();
    const call_result r = p.remote.call(std::move(m));
    if (timed) us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    bad += !r.ok() || echo_seq(r.reply) != seq;
    ++seq;
  };
  for (int i = 0; i < 2000; ++i) one(false);  // warm
  for (auto _ : state) one(true);
  report_rtt(state, us, bad);
}

void BM_RawCafRemoteThroughput(benchmark::State& state) {
  client_side& p = pair();
  std::uint64_t bad = 0, total = 0;
  for (auto _ : state) {
    struct pump {
      std::uint64_t sent = 0, got = 0, bad = 0;
      std::promise<void> done;
    };
    auto st = std::make_shared<pump>();
    std::future<void> f = st->done.get_future();
    p.sys->spawn([st, target = p.raw](caf::event_based_actor* self) {
      struct step {
        static void send(caf::event_based_actor* self, caf::actor target, std::shared_ptr<pump> st) {
          const std::uint64_t seq = st->sent++;
          self->request(target, std::chrono::seconds(10), echo(seq))
              .then(
                  [=](fb_msg& r) {
                    st->bad += echo_seq(r) != seq;
                    next(self, target, st);
                  },
                  [=](caf::error&) {
                    ++st->bad;
                    next(self, target, st);
                  });
        }
        static void next(caf::event_based_actor* self, caf::actor target, std::shared_ptr<pump> st) {
          if (++st->got == batch) {
            st->done.set_value();
            self->quit();
          } else if (st->sent < batch) {
            send(self, target, st);
          }
        }
      };
      for (std::uint32_t i = 0; i < window; ++i) step::send(self, target, st);
    });
    f.wait();
    bad += st->bad;
    total += batch;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.counters["msgs_per_s"] = benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  state.counters["bad"] = static_cast<double>(bad);
  if (bad) state.SkipWithError("a request failed or got the wrong reply");
}

void BM_RingflowRemoteThroughput(benchmark::State& state) {
  client_side& p = pair();
  std::uint64_t bad = 0, total = 0;
  for (auto _ : state) {
    struct pump {
      std::atomic<std::uint64_t> sent{0}, got{0}, bad{0};
      std::promise<void> done;
    };
    auto st = std::make_shared<pump>();
    std::future<void> f = st->done.get_future();
    node_client c = p.remote;
    std::function<void()> send_one;
    send_one = [&c, st, &send_one] {
      const std::uint64_t seq = st->sent.fetch_add(1);
      if (seq >= batch) return;
      c.submit(echo(seq), [st, seq, &send_one](call_result&& r) {
        if (!r.ok() || echo_seq(r.reply) != seq) st->bad.fetch_add(1);
        if (st->got.fetch_add(1) + 1 == batch) {
          st->done.set_value();
          return;
        }
        send_one();
      });
    };
    for (std::uint32_t i = 0; i < window; ++i) send_one();
    f.wait();
    bad += st->bad.load();
    total += batch;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.counters["msgs_per_s"] = benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  state.counters["bad"] = static_cast<double>(bad);
  if (bad) state.SkipWithError("a request failed or got the wrong reply");
}

// ---- member loss ------------------------------------------------------------------------------

pid_t spawn_m2(const std::string& topo_file, const std::string& dir, int trial) {
  std::filesystem::remove(dir + "/m2.ready");
  const std::string log = dir + "/m2-" + std::to_string(trial) + ".log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(RINGFLOW_PROGRAM, RINGFLOW_PROGRAM, "run", topo_file.c_str(), "--member", "m2", "--cluster-dir",
            dir.c_str(), "--http", "off", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  const auto limit = clk::now() + 20s;
  while (clk::now() < limit && !std::filesystem::exists(dir + "/m2.ready")) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return -1;
    std::this_thread::sleep_for(2ms);  // polling for the member's ready file
  }
  return std::filesystem::exists(dir + "/m2.ready") ? pid : -1;
}

void failover_trials(benchmark::State& state, int sig, int trials) {
  const std::string dir = bench_dir + (sig == SIGKILL ? "/kill" : "/stop");
  std::filesystem::create_directories(dir);
  const std::string topo_file = dir + "/cluster-bench-kill.yaml";
  std::ofstream(topo_file) << kill_topology;
  std::vector<double> ms;
  std::uint64_t failed = 0;
  std::uint64_t failovers = 0, failbacks = 0;
  for (auto _ : state) {
    pid_t pid = spawn_m2(topo_file, dir, 0);
    if (pid < 0) {
      state.SkipWithError("m2 (ringflow run --member m2) did not start");
      return;
    }
    ops::event_log log("warn", "json", dir + "/m1.log");
    run_options o;
    o.member = "m1";
    o.cluster_dir = dir;
    o.cluster_client = true;
    program_config cfg = member_config();
    cfg.breaker.failure_threshold = 1000000;  // every trial measures the failover, not the breaker's cool-down
    engine m1(parse(kill_topology, topo_file), cfg, log, o);
    m1.start();
    caf::expected<node_client> c = m1.client("echo@m2", {window, std::chrono::milliseconds(10000)});
    if (!c) {
      state.SkipWithError("no client of echo@m2");
      return;
    }
    double total_s = 0;
    for (int k = 0; k < trials; ++k) {
      // m1 is connected to this incarnation: after the first trial it has failed back.
      const auto limit = clk::now() + 20s;
      while (clk::now() < limit && m1.summary().member_failbacks < static_cast<std::uint64_t>(k))
        std::this_thread::sleep_for(1ms);  // polling m1's counter while it reconnects
      for (int w = 0; w < 20; ++w) c->call(echo(static_cast<std::uint64_t>(w)));  // warm, then quiet
      const auto t0 = clk::now();
      ::kill(pid, sig);
      const call_result r = c->call(echo(1000000 + static_cast<std::uint64_t>(k)));
      const double t = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      if (!r.ok() || echo_seq(r.reply) != 1000000 + static_cast<std::uint64_t>(k)) ++failed;
      ms.push_back(t);
      total_s += t / 1e3;
      if (sig != SIGKILL) ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      if (k + 1 < trials) {
        pid = spawn_m2(topo_file, dir, k + 1);
        if (pid < 0) {
          state.SkipWithError("m2 did not start again");
          break;
        }
      }
    }
    const run_summary s = m1.summary();
    failovers = s.member_failovers;
    failbacks = s.member_failbacks;
    m1.stop();
    state.SetIterationTime(total_s);
  }
  state.counters["failover_p50_ms"] = percentile(ms, 0.50);
  state.counters["failover_p99_ms"] = percentile(ms, 0.99);
  state.counters["failover_max_ms"] = ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end());
  state.counters["trials"] = static_cast<double>(ms.size());
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["failovers"] = static_cast<double>(failovers);
  state.counters["failbacks"] = static_cast<double>(failbacks);
  state.counters["goal_ms"] = kill_timeout_ms + 10;
  if (failed) state.SkipWithError("a trial's call was not answered by its echo");
}
void BM_MemberKillFailover(benchmark::State& state) { failover_trials(state, SIGKILL, kill_trials); }
void BM_MemberSilentFailover(benchmark::State& state) { failover_trials(state, SIGSTOP, stop_trials); }

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

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bench_dir =
      (std::filesystem::temp_directory_path() / ("ringflow-bench-cluster-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(bench_dir);
  ::signal(SIGPIPE, SIG_IGN);
  start_server();  // before any thread of this process: fork() copies only the caller
  benchmark::RegisterBenchmark("BM_RawCafRemoteRtt/scoped", BM_RawCafRemoteRtt_scoped)
      ->UseRealTime()
      ->MinTime(2.0)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_RawCafRemoteRtt/actor", BM_RawCafRemoteRtt_actor)  // time: 1,000 round trips
      ->UseManualTime()
      ->Iterations(8)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_RingflowRemoteRtt", BM_RingflowRemoteRtt)
      ->UseRealTime()
      ->MinTime(2.0)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_RawCafRemoteThroughput", BM_RawCafRemoteThroughput)
      ->UseRealTime()
      ->MinTime(3.0)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_RingflowRemoteThroughput", BM_RingflowRemoteThroughput)
      ->UseRealTime()
      ->MinTime(3.0)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_MemberKillFailover", BM_MemberKillFailover)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_MemberSilentFailover", BM_MemberSilentFailover)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("ringflow_payload", "Echo FlatBuffer, 256-byte body");
  benchmark::AddCustomContext("ringflow_window", std::to_string(window));
  error_counting_reporter reporter(::isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                           : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  the_pair.reset();
  stop_server();
  std::error_code ec;
  std::filesystem::remove_all(bench_dir, ec);
  if (reporter.errors) {
    std::fprintf(stderr, "ringflow_bench_cluster: %d benchmark run(s) ended with an error\n", reporter.errors);
    return 1;
  }
  return 0;
}

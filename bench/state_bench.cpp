// bench/state_bench.cpp — ringflow_bench_state: stateful ring actors (docs/BENCHMARKS.md,
// "Stateful ring actors"), side by side in one run, on a bare ring core (no CAF actors) with a
// CPU incarnation of VwapKernel (776-byte state).
//
// Benchmarks (the base names are a contract; Google Benchmark appends /arg:value and /real_time):
//   BM_StateSnapshot                 request_snapshot() -> the snapshot reply taken by the core
//                                    (the handshake with the running kernel: a control message
//                                    in order with the requests, the state copied and
//                                    checksummed, the reply verified): one per iteration
//   BM_StateRestore                  restart in place + attach: the journal's restore (776 bytes
//                                    + checksum) and its acknowledgement; one per iteration,
//                                    thread restart included
//   BM_StateHandshake<K>/wait:W      (K: VwapKernel, 776 bytes; KibKernel, 1 KiB) the incarnation's side alone (no ring
//   core, no restart): one
//                                    snapshot request and one restore of its bytes through the
//                                    rings of a CPU incarnation whose kernel waits as W (0 park,
//                                    1 adaptive, 2 spin), each answered before the next is sent;
//                                    idle_first:1 sleeps 500 us before each pair (untimed) so the
//                                    kernel has gone idle — parked under park/adaptive;
//                                    one pair per iteration: the goal's "snapshot + restore with
//                                    the handshake with a running or parked kernel"
//   BM_StatefulVerified              BM_StatefulThroughput/snapshot_every:1000 with state.verify:
//                                    the cost of the host replay of every request
//   BM_StatefulThroughput/snapshot_every:N  VwapKernel trades, `window` in flight, one thread
//                                    submitting with callbacks; items = trades. N = 1000 (the
//                                    default) against N = 100,000 (a few snapshots per run; every
//                                    journal record is still freed once, in bigger batches: the
//                                    difference is the snapshots') and N = 1,000,000 (the journal only grows:
//                                    allocation without trimming)
//   BM_StatelessThroughput           the same with EchoKernel (stateless, no journal), 72-byte
//                                    requests: the cost of the journal itself
//   BM_StatefulCheckpointed/every_ms:T  BM_StatefulThroughput (snapshot_every 1000) while a thread
//                                    does what the engine's checkpointer does every T ms: ask for a
//                                    snapshot, wait for it, write it durably (temp + fsync +
//                                    rename + folder fsync, runtime/checkpoint.hpp) into a folder
//                                    under $TMPDIR: the cost of `durability: checkpoint`
//   BM_StatefulDurableReply          the same with `durability: reply`: every reply held until its
//                                    trade is in the group-committed journal (fdatasync per
//                                    commit, runtime/reply_journal.hpp); counters: commits and
//                                    trades per commit
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "ringflow/actors/completion_poller.hpp"
#include "ringflow/actors/ring_core.hpp"
#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/runtime/checkpoint.hpp"
#include "ringflow/runtime/reply_journal.hpp"

namespace {

using namespace ringflow;
using demo_kernels::VwapKernel;

constexpr std::uint32_t window = 256;

cpu_incarnation_options rings() {
  cpu_incarnation_options o;
  o.rings.requests = {.capacity = 1024, .arena_bytes = 64 << 10};
  o.rings.replies = {.capacity = 1024, .arena_bytes = 64 << 10};
  return o;
}

std::vector<std::uint8_t> trade_bytes() {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishTradeBuffer(b, demo::CreateTrade(b, 3, 101, 2, 1));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

std::vector<std::uint8_t> echo_bytes() {
  flatbuffers::FlatBufferBuilder b;
  const std::vector<std::uint8_t> body(32, 7);
  demo::FinishEchoBuffer(b, demo::CreateEchoDirect(b, 1, &body));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

struct bench_core {
  completion_poller poller;
  std::shared_ptr<ring_core> core;
  bench_core(type_id rq, type_id rp, const ring_actor_options& o, const incarnation_factory& make)
      : core(std::make_shared<ring_core>("bench", rq, rp, o, poller)) {
    core->attach(make(&poller.bell()));
  }
  ~bench_core() { core->stop(); }
};

ring_actor_options stateful(std::uint32_t snapshot_every) {
  ring_actor_options o;
  o.window = window;
  o.state.state_bytes = sizeof(VwapKernel::state);
  o.state.snapshot_every = snapshot_every;
  o.state.journal_max = snapshot_every + window + 1024;
  return o;
}

template <class Pred>
bool spin_until(Pred p, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!p())
    if (std::chrono::steady_clock::now() > end) return false;
  return true;
}

void BM_StateSnapshot(benchmark::State& state) {
  bench_core b(msg::Trade::type_id_, msg::VwapReply::type_id_, stateful(1000),
               cpu_incarnation_factory<VwapKernel>(rings()));
  for (auto _ : state) {
    const std::uint64_t before = b.core->stats().snapshots;
    b.core->request_snapshot();
    if (!spin_until([&] { return b.core->stats().snapshots > before; })) {
      state.SkipWithError("no snapshot within 10 s");
      return;
    }
  }
  state.counters["state_bytes"] = sizeof(VwapKernel::state);
}

void BM_StateRestore(benchmark::State& state) {
  bench_core b(msg::Trade::type_id_, msg::VwapReply::type_id_, stateful(1000),
               cpu_incarnation_factory<VwapKernel>(rings()));
  // A state to restore: a snapshot after one trade.
  std::string detail;
  std::atomic<int> done{0};
  completion_target t;
  t.callback = [&](call_result&&) { done.fetch_add(1); };
  if (b.core->submit(fb_msg(trade_bytes()), std::move(t), nullptr, detail) != errc::ok ||
      !spin_until([&] { return done.load() == 1; })) {
    state.SkipWithError("the first trade failed");
    return;
  }
  b.core->request_snapshot();
  if (!spin_until([&] { return b.core->stats().snapshots > 0; })) {
    state.SkipWithError("no snapshot");
    return;
  }
  for (auto _ : state) {
    std::unique_ptr<incarnation> inc = b.core->detach();
    if (!inc || !inc->restart()) {
      state.SkipWithError("restart in place failed");
      return;
    }
    const std::uint64_t restores = b.core->stats().state_restores;
    b.core->attach(std::move(inc));
    // Restored when the journal holds only what came after the restore: its ack was taken.
    if (!spin_until([&] {
          const incarnation_probe p = b.core->probe();
          return b.core->stats().state_restores > restores && p.awaiting_replies == 0 && p.request_depth == 0 &&
                 p.reply_depth == 0;
        })) {
      state.SkipWithError("no restore acknowledgement");
      return;
    }
  }
}

// The run's files, removed at exit.
struct bench_root {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("ringflow-bench-state-" + std::to_string(getpid()));
  ~bench_root() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
} root;

std::filesystem::path bench_dir(const char* name) {
  const std::filesystem::path d = root.path / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

void throughput(benchmark::State& state, ring_actor_options o, const incarnation_factory& make, type_id rq, type_id rp,
                const std::vector<std::uint8_t>& request, std::uint32_t checkpoint_ms = 0) {
  bench_core b(rq, rp, o, make);
  // durability: checkpoint — the checkpointer's loop (engine checkpointer.cpp) on this core.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> written{0}, write_failures{0};
  std::thread checkpointer;
  if (checkpoint_ms) {
    checkpointer = std::thread([&] {
      ops::checkpoint_store store(bench_dir("checkpoints"), "bench");
      std::uint64_t seq = 0;
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(checkpoint_ms));
        const std::uint64_t ticket = b.core->request_snapshot();
        while (!stop.load() && b.core->stats().snapshots < ticket)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // as the checkpointer polls
        std::optional<state_view> v = b.core->state();
        if (!v || v->bytes.empty() || v->snapshots < ticket) continue;
        ops::checkpoint c;
        c.kernel = VwapKernel::name;
        c.state_bytes = sizeof(VwapKernel::state);
        c.sequence = ++seq;
        c.requests_covered = v->requests_covered;
        c.state = std::move(v->bytes);
        (store.write(c).empty() ? written : write_failures).fetch_add(1);
      }
    });
  }
  struct joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~joiner() {
      stop.store(true);
      if (t.joinable()) t.join();
    }
  } join_checkpointer{stop, checkpointer};
  constexpr int per_iteration = 20000;
  std::atomic<int> outstanding{0};
  std::atomic<std::uint64_t> errors{0};
  for (auto _ : state) {
    for (int i = 0; i < per_iteration; ++i) {
      while (outstanding.load(std::memory_order_relaxed) >= static_cast<int>(window)) std::this_thread::yield();
      outstanding.fetch_add(1, std::memory_order_relaxed);
      completion_target t;
      t.callback = [&](call_result&& r) {
        if (!r.ok()) errors.fetch_add(1);
        outstanding.fetch_sub(1, std::memory_order_relaxed);
      };
      std::string detail;
      for (;;) {
        const errc e = b.core->submit(fb_msg(request), std::move(t), nullptr, detail);
        if (e == errc::ok) break;
        if (e != errc::overloaded) {
          state.SkipWithError(("submit: " + detail).c_str());
          return;
        }
        std::this_thread::yield();
      }
    }
    if (!spin_until([&] { return outstanding.load() == 0; })) {
      state.SkipWithError("replies missing");
      return;
    }
  }
  if (errors.load()) state.SkipWithError("error replies");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * per_iteration);
  const ring_stats s = b.core->stats();
  state.counters["snapshots"] = static_cast<double>(s.snapshots);
  if (checkpoint_ms) {
    state.counters["checkpoints"] = static_cast<double>(written.load());
    if (write_failures.load()) state.SkipWithError("checkpoint writes failed");
  }
}

void BM_StatefulThroughput(benchmark::State& state) {
  throughput(state, stateful(static_cast<std::uint32_t>(state.range(0))), cpu_incarnation_factory<VwapKernel>(rings()),
             msg::Trade::type_id_, msg::VwapReply::type_id_, trade_bytes());
}

void BM_StatefulCheckpointed(benchmark::State& state) {
  throughput(state, stateful(1000), cpu_incarnation_factory<VwapKernel>(rings()), msg::Trade::type_id_,
             msg::VwapReply::type_id_, trade_bytes(), static_cast<std::uint32_t>(state.range(0)));
}

void BM_StatefulDurableReply(benchmark::State& state) {
  auto journal = std::make_shared<ops::reply_journal>(bench_dir("journal") / "bench.journal", nullptr);
  if (!journal->open(0, {}).empty()) {
    state.SkipWithError("cannot open the journal");
    return;
  }
  ring_actor_options o = stateful(1000);
  o.state.durable = journal;
  throughput(state, o, cpu_incarnation_factory<VwapKernel>(rings()), msg::Trade::type_id_, msg::VwapReply::type_id_,
             trade_bytes());
  const ops::reply_journal::counters c = journal->stats();
  state.counters["commits"] = static_cast<double>(c.commits);
  state.counters["trades_per_commit"] = c.commits ? static_cast<double>(c.records) / static_cast<double>(c.commits) : 0;
  if (c.failures) state.SkipWithError("journal commits failed");
}

// One message through a bare incarnation's rings (push, notify, wait for its reply): the reply's
// payload, or empty with `ok` false.
struct raw_rings {
  std::unique_ptr<incarnation> inc;
  ring_producer requests;
  ring_consumer replies;
  std::uint64_t corr = 0;
  explicit raw_rings(std::unique_ptr<incarnation> i)
      : inc(std::move(i)), requests(inc->requests(), inc->request_producer_scratch()), replies(inc->replies()) {}
  bool call(type_id type, const std::vector<std::uint8_t>& payload, std::vector<std::uint8_t>& reply) {
    ring_message m{};
    m.header.correlation_id = ++corr;
    m.header.type_id = type;
    m.payload = payload.data();
    m.payload_len = static_cast<std::uint32_t>(payload.size());
    if (requests.try_push(m) != ring_status::ok) return false;
    inc->notify();
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const slot_header* h = nullptr;
    // Yield while waiting: a spinning client that shares a core with the kernel thread it woke
    // would hold that core until the scheduler's time slice ends (~0.4 ms here).
    while (!(h = replies.try_peek())) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::yield();
    }
    const bool ok = h->status == static_cast<std::uint16_t>(status::ok);
    const std::uint8_t* p = replies.payload(h);
    reply.assign(p, p + h->payload_len);
    replies.release();
    return ok;
  }
};

/// A kernel with exactly 1 KiB of state (the goal's size): each trade adds its quantity to one byte.
struct KibKernel {
  using request = msg::Trade;
  using reply = msg::VwapReply;
  static constexpr const char* name = "kib";
  struct state {
    std::uint8_t bytes[1024];
  };
  static void init(state& s) { std::memset(s.bytes, 0, sizeof s.bytes); }
  static status handle(const msg_view& in, reply_writer& out, state& s) {
    const auto t = in.as<msg::Trade>();
    s.bytes[t.key() % sizeof s.bytes] = static_cast<std::uint8_t>(s.bytes[t.key() % sizeof s.bytes] + t.qty());
    fb::builder b = out.table<msg::VwapReply>();
    b.add<std::uint64_t>(msg::VwapReply::fields_::sequence, t.sequence());
    return out.finish(b);
  }
};

template <class K>
void BM_StateHandshake(benchmark::State& state) {
  cpu_incarnation_options o = rings();
  o.own_thread = true;
  o.wait = wait_policy::of(static_cast<wait_mode>(state.range(0)));
  doorbell bell;
  raw_rings r(cpu_incarnation_factory<K>(o)(&bell));
  std::vector<std::uint8_t> snap, ack;
  if (!r.call(msg::Trade::type_id_, trade_bytes(), ack)) {
    state.SkipWithError("the first trade failed");
    return;
  }
  const bool idle_first = state.range(1) != 0;  // let the kernel go idle (park) before each pair
  for (auto _ : state) {
    if (idle_first) std::this_thread::sleep_for(std::chrono::microseconds(500));
    const auto t0 = std::chrono::steady_clock::now();
    if (!r.call(state_snapshot_type, {}, snap) || snap.size() != sizeof(typename K::state) + state_checksum_bytes ||
        !r.call(state_restore_type, snap, ack)) {
      state.SkipWithError("snapshot or restore refused");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.counters["state_bytes"] = sizeof(typename K::state);
}

void BM_StatefulVerified(benchmark::State& state) {
  ring_actor_options o = stateful(1000);
  o.state.verify = true;
  with_kernel_state<VwapKernel>(o);
  throughput(state, o, cpu_incarnation_factory<VwapKernel>(rings()), msg::Trade::type_id_, msg::VwapReply::type_id_,
             trade_bytes());
}

void BM_StatelessThroughput(benchmark::State& state) {
  ring_actor_options o;
  o.window = window;
  throughput(state, o, cpu_incarnation_factory<demo_kernels::EchoKernel>(rings()), msg::Echo::type_id_,
             msg::Echo::type_id_, echo_bytes());
}

}  // namespace

BENCHMARK(BM_StateSnapshot)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StateRestore)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_StateHandshake, VwapKernel)
    ->ArgNames({"wait", "idle_first"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({2, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_StateHandshake, KibKernel)
    ->ArgNames({"wait", "idle_first"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({2, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StatefulVerified)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StatelessThroughput)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StatefulThroughput)
    ->ArgName("snapshot_every")
    ->Arg(1000)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StatefulCheckpointed)->ArgName("every_ms")->Arg(100)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StatefulDurableReply)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();

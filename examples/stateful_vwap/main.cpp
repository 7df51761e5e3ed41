// stateful_vwap: a service that embeds a stateful ring kernel (VwapKernel: running volume-weighted
// prices per instrument) and keeps its state across restarts of the service (docs/EMBEDDING.md
// "Stateful kernels", docs/FAULTS.md "Durable checkpoints").
//
//   1. Resume: read the latest checkpoint of the folder (none on the first run: init()).
//   2. Serve with `durability: reply`: every reply is released only once its trade is in the
//      group-committed journal (ringflow::ops::reply_journal), so a crash of this process loses
//      no trade that was answered.
//   3. Trade: N trades from 4 threads through ring_client, each reply checked against the state.
//   4. The first life ends as if the process died after its last reply: no checkpoint written.
//   5. Restart in the same process: a second runtime resumes — nothing in the checkpoint yet, every
//      trade in the journal, folded into the state — trades on, and this time writes a checkpoint:
//      a snapshot taken after every answered trade (request_snapshot's ticket), written durably
//      (temp + fsync + rename, the previous one kept). The state holds every trade of both lives
//      exactly once.
//
//   ringflow_stateful_vwap [DIR] [TRADES]   (default: a fresh folder under /tmp, 2000 trades)
#include <flatbuffers/flatbuffers.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/ringflow.hpp"
#include "ringflow/runtime/checkpoint.hpp"
#include "ringflow/runtime/reply_journal.hpp"

namespace {

using ringflow::demo_kernels::VwapKernel;
namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "stateful_vwap: FAILED: %s\n", why.c_str());
  std::exit(1);
}

ringflow::fb_msg trade(std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  ringflow::demo::FinishTradeBuffer(
      b, ringflow::demo::CreateTrade(b, static_cast<std::uint32_t>(seq % ringflow::demo_kernels::vwap_keys),
                                     100 + static_cast<std::int64_t>(seq % 7), 1 + seq % 5, seq));
  return ringflow::fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}

VwapKernel::state state_of(const std::vector<std::uint8_t>& bytes) {
  VwapKernel::state s;
  if (bytes.size() != sizeof s) fail("a state of the wrong size");
  std::memcpy(&s, bytes.data(), sizeof s);
  return s;
}

// One life of the service: resume, serve `n` trades (numbers first .. first+n-1), checkpoint.
std::uint64_t run_phase(const fs::path& dir, std::uint64_t first, std::uint64_t n, bool write_checkpoint) {
  ringflow::ops::checkpoint_store store(dir, "vwap");
  if (std::string why = store.prepare(); !why.empty()) fail(why);
  // 1. Resume: the checkpoint, then the journal's trades after it, applied with the kernel's own
  //    handler on this thread (the same code the CPU incarnation runs).
  ringflow::ring_actor_options opts;
  opts.state.snapshot_every = 200;
  std::uint64_t covered = 0, sequence = 0;
  std::vector<std::uint8_t> state(sizeof(VwapKernel::state));
  VwapKernel::init(*reinterpret_cast<VwapKernel::state*>(state.data()));
  const ringflow::ops::checkpoint_store::loaded l = store.load();
  for (const std::string& r : l.refused) std::printf("  refused %s\n", r.c_str());
  if (l.cp) {
    if (l.cp->kernel != VwapKernel::name || l.cp->state_bytes != sizeof(VwapKernel::state))
      fail("the checkpoint is another kernel's");
    state = l.cp->state;
    covered = l.cp->requests_covered;
    sequence = l.cp->sequence;
  }
  const ringflow::ops::journal_contents j = ringflow::ops::read_journal(dir / "vwap.journal");
  std::vector<ringflow::ops::journal_entry> tail;
  for (const ringflow::ops::journal_entry& e : j.entries) {
    if (e.seq <= covered) continue;
    std::vector<std::uint8_t> reply(1024);
    ringflow::reply_writer out(reply.data(), static_cast<std::uint32_t>(reply.size()));
    const ringflow::msg_view in{.type = ringflow::msg::Trade::type_id_,
                                .payload = {e.bytes.data(), static_cast<std::uint32_t>(e.bytes.size())}};
    (void)VwapKernel::handle(in, out, *reinterpret_cast<VwapKernel::state*>(state.data()));
    covered = e.seq;
    tail.push_back(e);
  }
  std::printf("1. resumed: %llu trades in the state (checkpoint %llu, %zu from the journal)\n",
              static_cast<unsigned long long>(covered), static_cast<unsigned long long>(sequence), tail.size());
  opts.state.initial = state;
  opts.state.initial_covered = covered;
  // 2. durability: reply.
  auto journal = std::make_shared<ringflow::ops::reply_journal>(
      dir / "vwap.journal", [](const std::string& why) { std::fprintf(stderr, "  journal: %s\n", why.c_str()); });
  if (std::string why = journal->open(l.cp ? l.cp->requests_covered : 0, tail); !why.empty()) fail(why);
  opts.state.durable = journal;

  ringflow::runtime rt;
  rt.spawn_ring_actor<VwapKernel>("vwap", opts);
  ringflow::ring_client client = *rt.client("vwap");
  // 3. Trade from 4 threads; each reply is the running total of its instrument.
  std::atomic<std::uint64_t> next{first}, ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (std::uint64_t s; (s = next.fetch_add(1)) < first + n;) {
        const ringflow::call_result r = client.call(trade(s));
        if (!r.ok()) fail("trade " + std::to_string(s) + ": " + r.detail);
        const auto* v = ringflow::demo::GetVwapReply(r.reply.bytes.data());
        if (v->sequence() != s || v->trades() == 0) fail("a reply that is not its trade's");
        ok.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  std::printf("3. traded: %llu trades answered (each one durable before its reply)\n",
              static_cast<unsigned long long>(ok.load()));
  // A snapshot holding every answered trade; written durably when this life ends cleanly.
  std::shared_ptr<ringflow::ring_core> core = rt.ring("vwap");
  const std::uint64_t ticket = core->request_snapshot();
  std::optional<ringflow::state_view> v;
  while (!(v = core->state()) || v->snapshots < ticket) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ringflow::ops::checkpoint c;
  c.kernel = VwapKernel::name;
  c.state_bytes = sizeof(VwapKernel::state);
  c.sequence = sequence + 1;
  c.requests_covered = v->requests_covered;
  c.state = v->bytes;
  const VwapKernel::state s = state_of(v->bytes);
  if (write_checkpoint) {
    if (std::string why = store.write(c); !why.empty()) fail(why);
    journal->checkpointed(c.requests_covered);
  }
  std::printf(
      "%s: %llu trades, instrument 0 VWAP %lld ticks over %llu trades\n",
      write_checkpoint ? "5. checkpoint written" : "4. the process dies before its checkpoint; its state",
      static_cast<unsigned long long>(s.applied),
      static_cast<long long>(s.keys[0].volume ? s.keys[0].notional / static_cast<std::int64_t>(s.keys[0].volume) : 0),
      static_cast<unsigned long long>(s.keys[0].trades));
  rt.shutdown();
  journal->stop();
  return s.applied;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir =
      argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / ("ringflow-stateful-vwap-" + std::to_string(getpid()));
  const std::uint64_t n = argc > 2 ? std::stoull(argv[2]) : 2000;
  const bool fresh = argc <= 1;
  std::error_code ec;
  const std::uint64_t before = [&] {
    ringflow::ops::checkpoint_store store(dir, "vwap");
    const auto l = store.load();
    return l.cp ? l.cp->requests_covered : 0;
  }();
  const std::uint64_t a = run_phase(dir, before, n, false);
  std::printf("5. restart: a new runtime resumes from %s\n", dir.c_str());
  const std::uint64_t b = run_phase(dir, before + n, n / 2, true);
  if (a != before + n || b != before + n + n / 2)
    fail("the state holds " + std::to_string(b) + " trades, " + std::to_string(before + n + n / 2) + " were answered");
  std::printf("stateful_vwap: OK (%llu trades, each in the state exactly once)\n", static_cast<unsigned long long>(b));
  if (fresh) fs::remove_all(dir, ec);
  return 0;
}

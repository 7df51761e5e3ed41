// fault_ladder example: ring actors on the `sim` device under load while faults are injected —
// transient errors, a crash, a hang, a corrupt reply, a sticky error, and finally the device is
// lost and comes back. The fault ladder restarts, reinitializes, reroutes to the CPU and fails back
// behind the same ring actors; every request still gets exactly one answer. Prints the ladder's
// structured events (JSON lines, --events) and a summary; exits 1 if any request was lost,
// answered twice, answered wrongly or failed.
//
//   ringflow_fault_ladder [--threads N] [--requests N] [--events]
#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/ringflow.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

using namespace ringflow;
using namespace std::chrono_literals;
using sim::fault_kind;
using sim::fault_rule;

namespace {
std::uint64_t echo_seq(const fb_msg& m) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  if (!v.VerifyBuffer<demo::Echo>(nullptr)) return ~0ull;
  return demo::GetEcho(m.bytes.data())->sequence();
}
fb_msg echo(std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, seq));
  return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ring actors on the sim device, faults injected, nothing lost"};
  int threads = 2;
  int requests = 20000;
  bool events = false;
  app.add_option("--threads", threads, "client threads")->check(CLI::Range(1, 64));
  app.add_option("--requests", requests, "requests per client thread")->check(CLI::Range(100, 10000000));
  app.add_flag("--events", events, "print every ladder event as a JSON line");
  CLI11_PARSE(app, argc, argv);

  runtime rt;
  auto dev = sim::sim_device::make({.id = "sim:0"}, /*seed=*/2026);
  ladder_config cfg;
  cfg.hang_timeout = 100ms;            // a demo: short, so the hang is found quickly
  cfg.breaker.failure_threshold = 10;  // let every planned fault reach the device (default 5)
  cfg.breaker.open_for = 200ms;        // ... and probe the device soon after it is back
  cfg.probe_window = 200ms;
  if (events) cfg.on_event = [](const ladder_event& e) { std::printf("%s\n", e.to_json().c_str()); };
  fault_ladder ladder(rt, cfg);
  ladder.spawn_ring_actor<demo_kernels::EchoKernel>("echo", dev);

  // The faults, by the injector's request count (replays included).
  const std::uint64_t total = static_cast<std::uint64_t>(threads) * requests;
  const fault_kind plan[] = {fault_kind::transient_error, fault_kind::crash,        fault_kind::hang,
                             fault_kind::corrupt_reply,   fault_kind::sticky_error, fault_kind::out_of_memory,
                             fault_kind::device_lost};
  std::uint64_t at = total / 10;
  for (fault_kind k : plan) {
    dev->faults().add(fault_rule::at(k, at));
    at += total / 10;
  }

  std::atomic<std::uint64_t> ok{0}, wrong{0}, failed{0}, twice{0};
  std::vector<std::atomic<std::uint8_t>> answered(total);
  std::vector<std::thread> clients;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      ring_client c = rt.client("echo").value();
      std::atomic<int> outstanding{0};
      for (int i = 0; i < requests; ++i) {
        const std::uint64_t seq = static_cast<std::uint64_t>(t) * requests + i;
        while (outstanding.load() >= 32) std::this_thread::yield();
        outstanding.fetch_add(1);
        c.submit(echo(seq), [&, seq](call_result&& r) {
          if (answered[seq].fetch_add(1) != 0) twice.fetch_add(1);
          if (!r.ok()) failed.fetch_add(1);
          else if (echo_seq(r.reply) != seq) wrong.fetch_add(1);
          else ok.fetch_add(1);
          outstanding.fetch_sub(1);
        });
        // The device comes back once it has been lost for a while (an operator replugs it).
        if (t == 0 && dev->lost() && i % 1000 == 0) dev->restore();
      }
      while (outstanding.load() != 0) std::this_thread::yield();
    });
  }
  for (auto& c : clients) c.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Let the fail-back finish: the breaker probes the restored device, then closes.
  for (int i = 0; i < 300; ++i) {
    const ladder_snapshot s = ladder.snapshot();
    if (s.rings.front().on_device && s.devices.front().breaker == breaker_state::closed) break;
    std::this_thread::sleep_for(10ms);
  }

  std::uint64_t lost = 0;
  for (auto& a : answered) lost += a.load() == 0;
  const ladder_snapshot s = ladder.snapshot();
  const ladder_ring_status& r = s.rings.front();
  std::printf("requests: %llu in %.2f s; ok: %llu, failed: %llu, wrong: %llu, lost: %llu, answered twice: %llu\n",
              static_cast<unsigned long long>(total), secs, static_cast<unsigned long long>(ok.load()),
              static_cast<unsigned long long>(failed.load()), static_cast<unsigned long long>(wrong.load()),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(twice.load()));
  std::printf(
      "faults injected: %llu; ladder: %llu faults (%llu hangs, %llu corrupt replies), %llu restarts, "
      "%llu reinits, %llu reroutes, %llu fail-backs; replayed %llu; now on %s (%s)\n",
      static_cast<unsigned long long>(dev->faults().fired_total()), static_cast<unsigned long long>(r.faults),
      static_cast<unsigned long long>(r.hangs), static_cast<unsigned long long>(r.corrupt_replies),
      static_cast<unsigned long long>(r.restarts), static_cast<unsigned long long>(r.reinits),
      static_cast<unsigned long long>(r.reroutes), static_cast<unsigned long long>(r.fail_backs),
      static_cast<unsigned long long>(rt.ring("echo")->stats().replayed), r.backend.c_str(),
      r.on_device ? "on the device" : "rerouted to the CPU");
  const bool good = lost == 0 && twice == 0 && wrong == 0 && failed == 0 && ok == total;
  std::printf("%s\n", good ? "OK: every request answered exactly once, correctly" : "FAILED");
  return good ? 0 : 1;
}

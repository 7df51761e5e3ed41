// Concurrency stress of the actor layer's lock-free core (ring_core + completion poller + CPU
// incarnations) through the embedding path. No CAF actor system here: Debian's libcaf is not
// instrumented, so TSan cannot see CAF's internal synchronisation and would report its spawns as
// races; without it TSan sees every synchronisation the core relies on. (The actor path runs the
// same core; test_actors.cpp covers it under ASan/UBSan.)
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "actor_test_support.hpp"
#include "support/client_stress.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace ringflow::demo_kernels;
using namespace std::chrono_literals;

namespace {
// A ring core as the runtime builds it, minus CAF.
struct bare_ring {
  completion_poller poller{small_runtime().poller};
  std::shared_ptr<ring_core> core;
  template <class K>
  bare_ring(K*, ring_actor_options opts) {
    core = std::make_shared<ring_core>("echo", K::request::type_id_, K::reply::type_id_, opts, poller);
    core->attach(cpu_incarnation_factory<K>(quick_park())(&poller.bell()));
  }
  ~bare_ring() {
    core->stop();
    core.reset();
  }
};
}  // namespace

TEST_CASE("N client threads x M requests through the embedding API: exactly once, matching", "[actors][tsan]") {
  ring_actor_options opts;
  opts.window = 1024;
  opts.per_caller_window = 64;
  bare_ring ring(static_cast<EchoKernel*>(nullptr), opts);
  auto core = ring.core;
  const int threads = 4;
  const int per_thread =
      std::getenv("RINGFLOW_STRESS_MESSAGES") ? std::atoi(std::getenv("RINGFLOW_STRESS_MESSAGES")) / 400 + 1 : 6000;
  client_stress s;
  s.threads = threads;
  s.per_thread = per_thread;
  s.client = client_options{32, 20000ms};
  s.how = client_stress::mode::mixed;
  s.callback_window = 8;
  s.drain = 30000ms;
  const client_stress_result r = run_client_stress(core, s);
  const std::uint64_t errors = r.errors, mismatched = r.mismatched, once = r.once, other = r.lost + r.duplicated;
  CHECK(errors == 0);
  CHECK(mismatched == 0);
  CHECK(once == static_cast<std::uint64_t>(threads) * per_thread);
  CHECK(other == 0);
  CHECK(core->stats().in_flight == 0);
}

TEST_CASE("swapping the incarnation under load answers every request exactly once", "[actors][tsan]") {
  ring_actor_options opts;
  opts.window = 256;
  opts.per_caller_window = 256;
  bare_ring ring(static_cast<EchoKernel*>(nullptr), opts);
  auto core = ring.core;
  constexpr int threads = 3, per_thread = 3000;
  std::atomic<std::uint64_t> answered{0}, wrong{0}, errors{0};
  std::vector<std::thread> ts;
  std::atomic<bool> go{false};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      ring_client c(core, client_options{32, std::chrono::milliseconds(20000)});
      while (!go.load()) std::this_thread::yield();
      std::vector<std::future<call_result>> inflight;
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t seq = static_cast<std::uint64_t>(t) * 1000000 + i;
        std::future<call_result> f;
        for (;;) {  // back off and retry on overloaded, as a caller should
          f = c.submit(echo_msg(seq));
          if (f.wait_for(0s) != std::future_status::ready) break;
          call_result r = f.get();  // answered at once: refused, or already served
          if (r.code != errc::overloaded) {
            answered.fetch_add(1);
            if (!r.ok()) errors.fetch_add(1);
            break;
          }
          if (!inflight.empty()) {
            call_result d = inflight.front().get();
            inflight.erase(inflight.begin());
            answered.fetch_add(1);
            if (!d.ok()) errors.fetch_add(1);
          } else {
            std::this_thread::yield();
          }
        }
        if (f.valid()) inflight.push_back(std::move(f));
        (void)seq;
      }
      for (auto& f : inflight) {
        call_result r = f.get();
        answered.fetch_add(1);
        if (!r.ok()) errors.fetch_add(1);
      }
    });
  }
  go = true;
  // Swap the kernel incarnation a few times while the clients run.
  int swaps = 0;
  while (answered.load() < threads * per_thread / 2 && swaps < 20) {
    auto old = core->detach();
    REQUIRE(old != nullptr);
    core->attach(cpu_incarnation_factory<EchoKernel>(quick_park())(&ring.poller.bell()));
    ++swaps;
    std::this_thread::yield();
  }
  for (auto& t : ts) t.join();
  CHECK(errors.load() == 0);
  CHECK(wrong.load() == 0);
  CHECK(answered.load() == threads * per_thread);
  const ring_stats st = core->stats();
  CHECK(st.attaches == static_cast<std::uint64_t>(swaps) + 1);
  CHECK(st.replied == static_cast<std::uint64_t>(threads * per_thread));
  CHECK(st.in_flight == 0);
  INFO("swaps " << swaps << " replayed " << st.replayed << " duplicates " << st.duplicates);
  CHECK(swaps >= 1);
}

TEST_CASE("traced requests under load and incarnation swaps: one hop record per answer, spans linked",
          "[actors][tsan]") {
  // The trace sink runs on whichever thread consumed the reply (poller or a helping caller):
  // count in atomics, check after the threads are joined.
  std::atomic<std::uint64_t> hops{0}, unlinked{0}, disordered{0}, untraced{0}, replayed{0};
  ring_actor_options opts;
  opts.window = 256;
  opts.per_caller_window = 64;
  opts.trace = std::make_shared<const ring_trace_sink>([&](const ring_hop_trace& h) {
    hops.fetch_add(1);
    if (h.kernel_span_seen != h.kernel_span || !h.enqueue_span || !h.reply_span || h.parent_span != 0x5150)
      unlinked.fetch_add(1);
    if (!(h.submit_ns <= h.publish_ns && h.publish_ns <= h.reply_ns && h.reply_ns <= h.answered_ns))
      disordered.fetch_add(1);
    if (h.trace_hi == 0 || !h.ring || *h.ring != "echo") untraced.fetch_add(1);
    if (h.replayed) replayed.fetch_add(1);
  });
  bare_ring ring(static_cast<EchoKernel*>(nullptr), opts);
  auto core = ring.core;
  constexpr int threads = 3, per_thread = 2000;
  std::atomic<std::uint64_t> ok{0}, errors{0}, wrong_span{0};
  std::atomic<bool> done_clients{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      ring_client c(core, client_options{32, std::chrono::milliseconds(20000)});
      for (int i = 0; i < per_thread; ++i) {
        fb_msg m = echo_msg(static_cast<std::uint64_t>(t) * 1000000 + i);
        m.trace_hi = 0xabc0 + t, m.trace_lo = static_cast<std::uint64_t>(i) + 1, m.span = 0x5150;
        call_result r = c.call(std::move(m));
        if (!r.ok()) {
          errors.fetch_add(1);
          continue;
        }
        ok.fetch_add(1);
        // The reply carries the trace id and the reply span (the next hop's parent), not the caller's.
        if (r.reply.trace_hi != 0xabc0u + t || r.reply.span == 0x5150 || r.reply.span == 0) wrong_span.fetch_add(1);
      }
    });
  std::thread swapper([&] {
    int swaps = 0;
    while (!done_clients.load() && swaps < 10) {
      auto old = core->detach();
      core->attach(cpu_incarnation_factory<EchoKernel>(quick_park())(&ring.poller.bell()));
      ++swaps;
      std::this_thread::sleep_for(2ms);  // the swap period: let requests flow between swaps
    }
  });
  for (auto& t : ts) t.join();
  done_clients = true;
  swapper.join();
  CHECK(errors.load() == 0);
  CHECK(ok.load() == static_cast<std::uint64_t>(threads) * per_thread);
  CHECK(hops.load() == ok.load());  // one hop record per reply delivered (duplicates are dropped before)
  CHECK(unlinked.load() == 0);
  CHECK(disordered.load() == 0);
  CHECK(untraced.load() == 0);
  CHECK(wrong_span.load() == 0);
}

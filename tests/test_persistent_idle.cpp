// Idle polling of the persistent kernel's workers (persistent.hpp), counted on the host: with
// 1,024 bound idle rings, the host-memory lines the workers read per pass — v1 (every running
// ring's slot polled every pass, ctl words every poll period) against protocol v2's scout (one
// summary line per pass; slots and ctl words only when the marks say so; a sweep every
// sweep_period passes). The count is persistent_args::host_reads, the emulator's accounting; the
// workers are the very code a GPU runs, on std::threads. Label: protocol.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/persistent.hpp"
#include "ringflow/ring_storage.hpp"
#include "test_support.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace std::chrono_literals;

namespace {

using table = kernel_table<demo_kernels::EchoKernel>;

struct idle_kernel {
  std::uint32_t rings, workers;
  bool v2;
  std::vector<persistent_ring> table_entries;
  std::vector<control_block> controls;  // [0]: the kernel's
  std::vector<persistent_endpoint> endpoints;
  std::vector<std::unique_ptr<ring_storage>> storage;
  std::vector<slot_header> staging;  // 64-byte aligned, as v2 images need
  std::vector<std::uint64_t> summary, marks, reads;
  persistent_args args;
  std::vector<std::thread> threads;
  std::uint64_t generation = 0;

  idle_kernel(std::uint32_t n, std::uint32_t w, bool protocol_v2)
      : rings(n), workers(w), v2(protocol_v2), table_entries(n), controls(n + 1), endpoints(n) {
    std::memset(static_cast<void*>(table_entries.data()), 0, sizeof(persistent_ring) * n);
    std::memset(static_cast<void*>(endpoints.data()), 0, sizeof(persistent_endpoint) * n);
    for (auto& c : controls) c.reset(1);
    const std::uint32_t stage = 4096;
    staging.resize(static_cast<std::size_t>(w) * 2 * stage / sizeof(slot_header));
    args.rings = table_entries.data();
    args.endpoints = endpoints.data();
    args.kernel_control = &controls[0];
    args.staging = reinterpret_cast<std::uint8_t*>(staging.data());
    args.staging_bytes = stage;
    args.max_rings = n;
    args.workers = w;
    reads.assign(2 * w, 0);
    args.host_reads = reads.data();
    if (v2) {
      args.group_shift = summary_group_shift(n);
      summary.assign(summary_words(n, args.group_shift), 0);
      marks.assign(summary.size(), 0);
      args.summary = summary.data();
      args.scout_marks = marks.data();
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      ring_config c{4, v2 ? 512u : 256u, 0, 0};
      c.protocol = v2 ? ring_protocol::v2 : ring_protocol::v1;
      storage.push_back(std::make_unique<ring_storage>(c));
      storage.push_back(std::make_unique<ring_storage>(c));
      persistent_ring& r = table_entries[i];
      r.kernel_index = 0;
      r.max_batch = 8;
      r.requests = storage[2 * i]->region().base();
      r.replies = storage[2 * i + 1]->region().base();
      r.control = &controls[1 + i];
      r.request_config = r.reply_config = c;
      store_release(r.ctl, (++generation) << persistent_ctl::generation_shift);
    }
    bump_control();
    for (std::uint32_t k = 0; k < w; ++k)
      threads.emplace_back([this, k] { persistent_worker<table>(args, k, workers); });
  }
  void bump_control() {
    if (v2) std::atomic_ref<std::uint64_t>(summary[0]).fetch_add(1, std::memory_order_release);
  }
  void notify(std::uint32_t entry) {
    if (v2)
      std::atomic_ref<std::uint64_t>(summary[1 + (entry >> args.group_shift)]).fetch_add(1, std::memory_order_release);
  }
  std::uint64_t lines() const {
    std::uint64_t s = 0;
    for (std::uint32_t k = 0; k < workers; ++k) s += load_relaxed(const_cast<std::uint64_t&>(reads[2 * k]));
    return s;
  }
  std::uint64_t passes() const {  // the mean over workers
    std::uint64_t s = 0;
    for (std::uint32_t k = 0; k < workers; ++k) s += load_relaxed(const_cast<std::uint64_t&>(reads[2 * k + 1]));
    return s / workers;
  }
  bool all_running() {
    for (std::uint32_t i = 1; i <= rings; ++i)
      if (controls[i].current_state() != kernel_state::running) return false;
    return true;
  }
  ~idle_kernel() {
    controls[0].request_stop();
    bump_control();
    for (auto& t : threads) t.join();
  }
};

/// The host's end of entry `e`'s v2 rings (credit from the replies, a decoded reply image).
struct host_end {
  ring_producer req;
  ring_consumer rep;
  std::vector<slot_header> image;
  host_end(idle_kernel& k, std::uint32_t e)
      : req(k.storage[2 * e]->region(), nullptr),
        rep(k.storage[2 * e + 1]->region()),
        image(ll::image_bytes(k.storage[2 * e + 1]->region().config().inline_capacity()) / sizeof(slot_header)) {
    req.use_credit_from(k.storage[2 * e + 1]->region());
    (void)rep.set_image_buffer(reinterpret_cast<std::uint8_t*>(image.data()),
                               static_cast<std::uint32_t>(image.size() * sizeof(slot_header)));
  }
  bool push(std::uint64_t corr, const std::vector<std::uint8_t>& p) {
    slot_header h{};
    h.correlation_id = corr;
    h.type_id = msg::Echo::type_id_;
    return req.try_push({h, p.data(), static_cast<std::uint32_t>(p.size())}) == ring_status::ok;
  }
};

struct idle_rate {
  double lines_per_pass;
  std::uint64_t passes;
};

/// Lines per pass over `window`, once every ring runs and `settle` passes went by.
idle_rate measure(idle_kernel& k, std::uint64_t settle, std::chrono::milliseconds window) {
  REQUIRE(eventually([&] { return k.all_running(); }, 20s));
  const std::uint64_t p0 = k.passes();
  REQUIRE(eventually([&] { return k.passes() > p0 + settle; }, 60s));
  const std::uint64_t l1 = k.lines(), p1 = k.passes();
  std::this_thread::sleep_for(window);
  const std::uint64_t l2 = k.lines(), p2 = k.passes();
  REQUIRE(p2 > p1);
  return {static_cast<double>(l2 - l1) / static_cast<double>(p2 - p1), p2 - p1};
}

}  // namespace

TEST_CASE("persistent kernel: with 1,024 idle rings the v2 scout reads <= 1/1,000 of v1's host lines per pass",
          "[persistent][protocol]") {
  constexpr std::uint32_t rings = 1024, workers = 4;
  double v1 = 0, v2 = 0;
  {
    idle_kernel k(rings, workers, false);
    const idle_rate r = measure(k, 64, 1500ms);
    v1 = r.lines_per_pass;
    INFO("v1: " << r.lines_per_pass << " lines/pass over " << r.passes << " passes");
    // Every ring's seq line each pass, plus ctl words every poll period (32): ~1,056.
    CHECK(v1 >= rings);
  }
  {
    idle_kernel k(rings, workers, true);
    // Past the linger of the binds (256 passes), and over at least two sweeps (32,768 passes).
    const idle_rate r = measure(k, 512, 1ms);
    (void)r;
    const std::uint64_t l1 = k.lines(), p1 = k.passes();
    REQUIRE(eventually([&] { return k.passes() > p1 + 2 * 32768; }, 120s));
    const std::uint64_t l2 = k.lines(), p2 = k.passes();
    v2 = static_cast<double>(l2 - l1) / static_cast<double>(p2 - p1);
    INFO("v2: " << v2 << " lines/pass over " << (p2 - p1) << " passes; v1 " << v1);
    CHECK(v2 * 1000.0 <= v1);
    // And the scouted kernel still serves: a request to a cold ring is answered after its notify().
    host_end end(k, 777);
    ring_consumer& host_rep = end.rep;
    const std::vector<std::uint8_t> p = echo_request(5, 8);
    REQUIRE(end.push(4242, p));
    k.notify(777);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return host_rep.try_peek() != nullptr; }, 10s));
    const slot_header* got = host_rep.try_peek();
    CHECK(got->correlation_id == 4242);
    CHECK(got->payload_len == p.size());
    // Much sooner than a sweep: the scout found it (a sweep on this host takes ~0.5-1 s).
    CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
  }
  WARN("idle host lines per pass with 1024 rings: v1 " << v1 << ", v2 " << v2 << " (ratio 1/" << v1 / v2 << ")");
}

TEST_CASE("persistent kernel: the sweep serves a request whose notify() never came (latency, not liveness)",
          "[persistent][protocol]") {
  idle_kernel k(64, 2, true);
  REQUIRE(k.args.sweep_period == 32768);  // the default
  REQUIRE(eventually([&] { return k.all_running(); }, 20s));
  const std::uint64_t p0 = k.passes();
  REQUIRE(eventually([&] { return k.passes() > p0 + 512; }, 60s));  // every ring is cold now
  host_end end(k, 9);
  ring_consumer& host_rep = end.rep;
  REQUIRE(end.push(99, echo_request(1, 8)));
  // No notify(): only a sweep finds it.
  const std::uint64_t pushed_at = k.passes();
  REQUIRE(eventually([&] { return host_rep.try_peek() != nullptr; }, 120s));
  CHECK(host_rep.try_peek()->correlation_id == 99);
  CHECK(k.passes() - pushed_at <= 2 * 32768);
}

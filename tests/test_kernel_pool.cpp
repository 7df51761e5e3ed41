// The CPU kernel pool: many rings on few kernel threads (ringflow/cpu/kernel_pool.hpp).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ringflow/cpu/host_client.hpp"
#include "ringflow/cpu/kernel_pool.hpp"
#include "ringflow/demo_kernels.hpp"
#include "test_support.hpp"

using namespace ringflow;
using namespace ringflow::cpu;
using namespace ringflow::demo_kernels;
using namespace std::chrono_literals;

namespace {

using test::eventually;

std::uint64_t echo_seq(const reply& r) {
  REQUIRE(test::verify<demo::Echo>(r.payload));
  return demo::GetEcho(r.payload.data())->sequence();
}

// Echo after waiting (without a CPU-bound loop) for `slow_us` microseconds.
std::atomic<int> slow_us{200};
struct SlowEcho {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "slow_echo";
  static status handle(const msg_view& in, reply_writer& out) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(slow_us.load());
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

// Echo that blocks inside the handler until the gate opens (a hung handler).
std::atomic<bool> gate_open{true};
std::atomic<int> in_gate{0};
struct GatedEcho {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "gated_echo";
  static status handle(const msg_view& in, reply_writer& out) {
    ++in_gate;
    while (!gate_open.load(std::memory_order_acquire)) std::this_thread::sleep_for(200us);
    --in_gate;
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

pool_config small_pool(std::size_t threads) {
  pool_config c;
  c.threads = threads;
  c.wait = wait_policy::of(wait_mode::park);
  return c;
}

}  // namespace

TEST_CASE("pool: many rings on few threads, every reply once and in order", "[cpu][pool][tsan]") {
  kernel_pool pool(small_pool(2));
  constexpr int kRings = 300, kClients = 3, kPerRing = 40;
  std::vector<std::shared_ptr<pooled_ring>> rings;
  for (int i = 0; i < kRings; ++i)
    rings.push_back(
        pool.attach(bind_kernel<EchoKernel>(), {.requests = {.capacity = 16}, .replies = {.capacity = 16}}, nullptr));
  const pool_stats st = pool.stats();
  CHECK(st.workers == 2);
  CHECK(st.threads == 2);
  CHECK(st.rings == kRings);
  CHECK(st.rings_per_worker == std::vector<std::size_t>{kRings / 2, kRings / 2});
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t)
    clients.emplace_back([&, t] {
      std::vector<std::unique_ptr<host_client>> mine;
      for (int i = t; i < kRings; i += kClients) mine.push_back(std::make_unique<host_client>(*rings[i]));
      // Every ring gets a window of requests before any is awaited: many rings busy at once.
      for (int round = 0; round < kPerRing / 8; ++round) {
        std::vector<std::vector<std::uint64_t>> ids(mine.size());
        for (std::size_t c = 0; c < mine.size(); ++c)
          for (int j = 0; j < 8; ++j) {
            const auto s = mine[c]->submit(msg::Echo::type_id_, test::echo_request(round * 8 + j, 12));
            if (!s.ok()) ++failures;
            ids[c].push_back(s.correlation_id);
          }
        reply r;
        for (std::size_t c = 0; c < mine.size(); ++c)
          for (int j = 0; j < 8; ++j)
            if (!mine[c]->await(ids[c][j], 10s, r) || !r.ok() ||
                demo::GetEcho(r.payload.data())->sequence() != static_cast<std::uint64_t>(round * 8 + j))
              ++failures;
      }
    });
  for (auto& c : clients) c.join();
  CHECK(failures == 0);
  std::uint64_t served = 0;
  for (auto& r : rings) served += r->control().processed_count();
  CHECK(served == static_cast<std::uint64_t>(kRings) * kPerRing);
  for (auto& r : rings) CHECK(r->stop(1s));
}

TEST_CASE("pool: each ring has its own control block, stop and restart, and neighbours keep running",
          "[cpu][pool][tsan]") {
  kernel_pool pool(small_pool(1));
  auto a = pool.attach(bind_kernel<EchoKernel>(), {}, nullptr);
  auto b = pool.attach(bind_kernel<EchoKernel>(), {}, nullptr);
  CHECK(a->control().epoch == 1);
  CHECK(a->control().current_state() == kernel_state::running);
  host_client ca(*a), cb(*b);
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(ca.submit(msg::Echo::type_id_, test::echo_request(i, 8)).correlation_id);
  // Stop drains what is in the ring: every request gets its real reply, none `stopped`.
  CHECK(a->stop(5s));
  CHECK(a->finished());
  CHECK(a->control().current_state() == kernel_state::stopped);
  CHECK(a->control().processed_count() == 100);
  reply r;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(ca.await(ids[i], 1s, r));
    CHECK(r.ok());
    CHECK(echo_seq(r) == static_cast<std::uint64_t>(i));
  }
  // The stopped ring answers `stopped` through its client; the neighbour serves on.
  ca.call(msg::Echo::type_id_, test::echo_request(7, 8), 1s, r);
  CHECK(r.st == status::stopped);
  cb.call(msg::Echo::type_id_, test::echo_request(8, 8), 5s, r);
  REQUIRE(r.ok());
  CHECK(b->control().current_state() == kernel_state::running);
  // Restart: a new epoch on the same rings.
  REQUIRE(a->restart());
  CHECK_FALSE(a->restart());  // running: not finished
  CHECK(a->control().epoch == 2);
  ca.call(msg::Echo::type_id_, test::echo_request(9, 8), 5s, r);
  REQUIRE(r.ok());
  CHECK(echo_seq(r) == 9);
  CHECK(a->stop(1s));
  CHECK(b->stop(1s));
}

TEST_CASE("pool: a busy ring cannot starve the other rings of its thread", "[cpu][pool][tsan]") {
  slow_us = 200;
  kernel_pool pool(small_pool(1));
  auto busy =
      pool.attach(bind_kernel<SlowEcho>(), {.requests = {.capacity = 1024}, .replies = {.capacity = 1024}}, nullptr);
  auto other = pool.attach(bind_kernel<EchoKernel>(), {}, nullptr);
  host_client cbusy(*busy), cother(*other);
  // ~200 ms of work in the busy ring (1000 x 200 us), submitted before the other ring's call.
  for (int i = 0; i < 1000; ++i) REQUIRE(cbusy.submit(msg::Echo::type_id_, test::echo_request(i, 8)).ok());
  reply r;
  cother.call(msg::Echo::type_id_, test::echo_request(1, 8), 10s, r);
  REQUIRE(r.ok());
  // Served between two batches of the busy ring, long before its backlog is done.
  CHECK(ring_observer(busy->chan().requests()).depth() > 500);
  CHECK(busy->stop(10s));
  CHECK(busy->control().processed_count() == 1000);
  CHECK(other->stop(1s));
}

TEST_CASE("pool: a hung handler's neighbours move to a fresh thread and keep being served", "[cpu][pool][tsan]") {
  gate_open = false;
  in_gate = 0;
  pool_config cfg = small_pool(1);
  cfg.stuck_after = 50ms;
  cfg.monitor_every = 10ms;
  kernel_pool pool(cfg);
  auto hung = pool.attach(bind_kernel<GatedEcho>(), {}, nullptr);
  std::vector<std::shared_ptr<pooled_ring>> others;
  for (int i = 0; i < 5; ++i) others.push_back(pool.attach(bind_kernel<EchoKernel>(), {}, nullptr));
  host_client ch(*hung);
  const auto id = ch.submit(msg::Echo::type_id_, test::echo_request(42, 8)).correlation_id;
  REQUIRE(eventually([&] { return in_gate.load() == 1; }));
  const std::uint64_t beat = hung->control().heartbeat_count();
  reply r;
  for (auto& o : others) {
    host_client c(*o);
    c.call(msg::Echo::type_id_, test::echo_request(5, 8), 10s, r);
    REQUIRE(r.ok());
  }
  pool_stats st = pool.stats();
  // (At least: on a loaded machine a preempted batch of the fresh worker may pass stuck_after too.)
  CHECK(st.stuck >= 1);
  CHECK(st.rescued >= 6);                            // every ring homed at the stuck worker, the hung one included
  CHECK(st.workers == 1);                            // rings go to the fresh worker only
  CHECK(st.threads >= 2);                            // the stuck thread is still in the handler
  CHECK(hung->control().heartbeat_count() == beat);  // the hung ring's own heartbeat stopped: the watchdog's cue
  CHECK(others[0]->control().heartbeat_count() > 0);
  // The handler returns: its reply arrives, the retired thread ends, the ring is served on.
  gate_open = true;
  REQUIRE(ch.await(id, 5s, r));
  CHECK(r.ok());
  CHECK(eventually([&] { return pool.stats().threads == 1; }));
  ch.call(msg::Echo::type_id_, test::echo_request(43, 8), 5s, r);
  CHECK(r.ok());
  CHECK(hung->home_index() == 0);
  CHECK(hung->stop(1s));
  for (auto& o : others) CHECK(o->stop(1s));
}

TEST_CASE("pool: a hung ring that is abandoned finishes when its handler returns", "[cpu][pool][tsan]") {
  gate_open = false;
  in_gate = 0;
  pool_config cfg = small_pool(1);
  cfg.stuck_after = 30ms;
  cfg.monitor_every = 10ms;
  kernel_pool pool(cfg);
  auto hung = pool.attach(bind_kernel<GatedEcho>(), {}, nullptr);
  {
    host_client ch(*hung);
    (void)ch.submit(msg::Echo::type_id_, test::echo_request(1, 8));
    REQUIRE(eventually([&] { return in_gate.load() == 1; }));
    hung->request_stop(100ms);      // what abandon() does
    CHECK_FALSE(hung->stop(10ms));  // still in the handler: not finished in time
    CHECK_FALSE(hung->finished());
    gate_open = true;
    CHECK(eventually([&] { return hung->finished(); }));
    CHECK(hung->control().current_state() == kernel_state::stopped);
  }
  CHECK(eventually([&] { return pool.stats().threads == 1; }));
}

TEST_CASE("pool: a client that stops reading faults its ring at stop, not the neighbours", "[cpu][pool][tsan]") {
  kernel_pool pool(small_pool(1));
  auto stuck =
      pool.attach(bind_kernel<EchoKernel>(), {.requests = {.capacity = 64}, .replies = {.capacity = 4}}, nullptr);
  auto fine = pool.attach(bind_kernel<EchoKernel>(), {}, nullptr);
  host_client cs(*stuck), cf(*fine);
  request_options o;
  o.submit_timeout = 1ms;
  for (int i = 0; i < 40; ++i) (void)cs.submit(msg::Echo::type_id_, test::echo_request(i, 4), o);
  REQUIRE(eventually([&] { return ring_observer(stuck->chan().replies()).depth() == 4; }));
  reply r;
  cf.call(msg::Echo::type_id_, test::echo_request(1, 8), 5s, r);  // served while the other is blocked
  REQUIRE(r.ok());
  CHECK_FALSE(stuck->stop(50ms));
  CHECK(stuck->control().current_state() == kernel_state::faulted);
  CHECK(stuck->control().current_error() == kernel_error::reply_stuck);
  CHECK_THAT(std::string(stuck->control().error_detail), Catch::Contains("full"));
  cf.call(msg::Echo::type_id_, test::echo_request(2, 8), 5s, r);
  REQUIRE(r.ok());
  CHECK(fine->stop(1s));
}

TEST_CASE("pool: a drain that outlasts the stop timeout faults the ring, and stop() waits for that",
          "[cpu][pool][tsan]") {
  slow_us = 1000;
  pool_config cfg = small_pool(1);
  cfg.stuck_after = 2000ms;  // 1 ms handlers are slow, not stuck
  kernel_pool pool(cfg);
  auto slow =
      pool.attach(bind_kernel<SlowEcho>(), {.requests = {.capacity = 1024}, .replies = {.capacity = 1024}}, nullptr);
  host_client c(*slow);
  for (int i = 0; i < 1000; ++i) REQUIRE(c.submit(msg::Echo::type_id_, test::echo_request(i, 8)).ok());
  // ~1 s of work, 50 ms to drain it: the drain stops at its first turn past the deadline.
  CHECK_FALSE(slow->stop(50ms));
  CHECK(slow->finished());  // stop() returned because the ring finished, not because it gave up
  CHECK(slow->control().current_state() == kernel_state::faulted);
  CHECK(slow->control().current_error() == kernel_error::reply_stuck);
  CHECK_THAT(std::string(slow->control().error_detail), Catch::Contains("did not finish within the stop timeout"));
  CHECK(slow->control().processed_count() < 1000);
  // Every request still gets exactly one answer: served ones their reply, the rest `stopped`.
  reply r;
  std::uint64_t ok = 0, stopped = 0;
  for (std::uint64_t id = 1; id <= 1000; ++id) {
    REQUIRE(c.await(id, 5s, r));
    (r.ok() ? ok : stopped) += 1;
    if (!r.ok()) CHECK(r.st == status::stopped);
  }
  CHECK(ok == slow->control().processed_count());
  CHECK(ok + stopped == 1000);
}

TEST_CASE("pool: an active ring moves off a hot worker to a cold one", "[cpu][pool][tsan]") {
  slow_us = 500;
  pool_config cfg = small_pool(2);
  cfg.rebalance_every = 50ms;
  kernel_pool pool(cfg);
  // Homes alternate: rings 0 and 2 on worker 0, 1 and 3 on worker 1.
  std::vector<std::shared_ptr<pooled_ring>> rings;
  for (int i = 0; i < 4; ++i) rings.push_back(pool.attach(bind_kernel<SlowEcho>(), {}, nullptr));
  REQUIRE(rings[0]->home_index() == rings[2]->home_index());
  const int hot = rings[0]->home_index();
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> load;
  for (int i : {0, 2})
    load.emplace_back([&, i] {
      host_client c(*rings[i]);
      reply r;
      for (std::uint64_t n = 0; !done.load(); ++n) {
        std::vector<std::uint64_t> ids;
        for (int j = 0; j < 8; ++j)
          ids.push_back(c.submit(msg::Echo::type_id_, test::echo_request(n, 8)).correlation_id);
        for (auto id : ids)
          if (!c.await(id, 10s, r) || !r.ok()) ++failures;
      }
    });
  const bool moved = eventually([&] { return pool.stats().moves > 0; }, 10s);
  done = true;
  for (auto& t : load) t.join();
  CHECK(moved);
  CHECK(failures == 0);
  CHECK((rings[0]->home_index() != hot || rings[2]->home_index() != hot));
  const pool_stats st = pool.stats();
  CHECK(st.rings_per_worker.size() == 2);
  for (auto& r : rings) CHECK(r->stop(5s));
}

TEST_CASE("pool: bad configuration and bindings are rejected", "[cpu][pool]") {
  CHECK_THROWS_AS(kernel_pool(pool_config{.max_batch = 0}), std::invalid_argument);
  pool_config c;
  c.stuck_after = 0ms;
  CHECK_THROWS_AS(kernel_pool(c), std::invalid_argument);
  kernel_pool pool(small_pool(1));
  CHECK_THROWS_AS(pool.attach(kernel_binding{}, {}, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(pool.attach(bind_kernel<EchoKernel>(), {.requests = {.capacity = 3}}, nullptr),
                  std::invalid_argument);
  CHECK(pool.stats().rings == 0);
  CHECK(pool.stats().threads == 1);
  auto r = pool.attach(bind_kernel<EchoKernel>(), {}, nullptr);
  host_client a(*r);
  CHECK_THROWS_AS(host_client(*r), std::logic_error);  // one client per ring
  CHECK(r->stop(1s));
}

TEST_CASE("stress: rings moving between workers under traffic lose nothing and keep order",
          "[cpu][pool][tsan][stress]") {
  pool_config cfg;
  cfg.threads = 2;
  cfg.wait = {.spin_iterations = 200, .yield_iterations = 4, .park = true};
  cfg.rebalance_every = 2ms;
  cfg.monitor_every = 1ms;
  cfg.hot = 0.0;  // move on every look: exercises the hand-over as often as possible
  cfg.cold = 1.0;
  kernel_pool pool(cfg);
  constexpr int kClients = 4, kRingsPerClient = 4;
  const int per_ring = 10000;  // x 16 rings
  std::vector<std::shared_ptr<pooled_ring>> rings;
  for (int i = 0; i < kClients * kRingsPerClient; ++i)
    rings.push_back(
        pool.attach(bind_kernel<EchoKernel>(), {.requests = {.capacity = 32}, .replies = {.capacity = 32}}, nullptr));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t)
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<host_client>> cs;
      for (int i = 0; i < kRingsPerClient; ++i)
        cs.push_back(std::make_unique<host_client>(*rings[t * kRingsPerClient + i], cfg.wait));
      std::vector<std::uint64_t> next(kRingsPerClient, 0);
      reply r;
      for (int n = 0; n < per_ring; n += 8) {
        for (int i = 0; i < kRingsPerClient; ++i) {
          std::vector<std::uint64_t> ids;
          for (int j = 0; j < 8; ++j) {
            const auto s = cs[i]->submit(msg::Echo::type_id_, test::echo_request(n + j, 8 + j));
            if (!s.ok()) ++failures;
            ids.push_back(s.correlation_id);
          }
          for (auto id : ids)
            if (!cs[i]->await(id, 10s, r) || !r.ok() || demo::GetEcho(r.payload.data())->sequence() != next[i]++)
              ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  const pool_stats st = pool.stats();
  INFO("moves " << st.moves);
  CHECK(st.moves > 0);
  std::uint64_t served = 0;
  for (auto& r : rings) served += r->control().processed_count();
  CHECK(served == static_cast<std::uint64_t>(rings.size()) * static_cast<std::uint64_t>((per_ring + 7) / 8 * 8));
  for (auto& r : rings) CHECK(r->stop(1s));
}

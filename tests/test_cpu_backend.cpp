// The CPU backend: a persistent ring kernel on a thread, served through the host client.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/host_client.hpp"
#include "ringflow/demo_kernels.hpp"
#include "test_support.hpp"

using namespace ringflow;
using namespace ringflow::cpu;
using namespace ringflow::demo_kernels;
using namespace std::chrono_literals;

namespace {

// Waits for a condition with a deadline (no sleeping-to-wait for concurrency).
template <class F>
bool eventually(F&& f, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::yield();
  }
  return f();
}

// A kernel whose handler throws on a marker value and otherwise echoes.
struct ThrowingKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "throwing";
  static status handle(const msg_view& in, reply_writer& out) {
    if (in.as<msg::Echo>().sequence() == 666) throw std::runtime_error("boom at 666");
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

// A kernel that waits on a gate before serving: lets tests fill rings deterministically.
std::atomic<bool> gate_open{true};
struct GatedKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "gated";
  static status handle(const msg_view& in, reply_writer& out) {
    while (!gate_open.load(std::memory_order_acquire)) std::this_thread::yield();
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

std::uint64_t echo_seq(const reply& r) {
  REQUIRE(test::verify<demo::Echo>(r.payload));
  return demo::GetEcho(r.payload.data())->sequence();
}

}  // namespace

TEST_CASE("echo, saxpy and score kernels reply correctly through the CPU backend", "[cpu][tsan]") {
  cpu_kernel k;
  auto& echo = k.add_ring<EchoKernel>();
  auto& saxpy = k.add_ring<SaxpyKernel>();
  auto& score = k.add_ring<ScoreKernel>();
  k.start();
  host_client ce(k, echo), cs(k, saxpy), cr(k, score);
  reply r;

  const auto req = test::echo_request(5, 40);
  ce.call(msg::Echo::type_id_, req, 5s, r);
  REQUIRE(r.ok());
  CHECK(r.payload == req);

  cs.call(msg::SaxpyRequest::type_id_, test::saxpy_request(3.0f, {1, 2}, {0.5f, 0.25f}), 5s, r);
  REQUIRE(r.ok());
  REQUIRE(test::verify<demo::SaxpyReply>(r.payload));
  CHECK(demo::GetSaxpyReply(r.payload.data())->y()->Get(0) == 3.5f);
  CHECK(demo::GetSaxpyReply(r.payload.data())->y()->Get(1) == 6.25f);

  cr.call(msg::ScoreRequest::type_id_, test::score_request(77, 10.0, 3, 1, {{1, 0.5f}}), 5s, r);
  REQUIRE(r.ok());
  REQUIRE(test::verify<demo::ScoreReply>(r.payload));
  CHECK(demo::GetScoreReply(r.payload.data())->request_id() == 77);

  CHECK(k.stop() == stop_outcome::stopped);
  CHECK(k.control().current_state() == kernel_state::stopped);
  CHECK(k.control().processed_count() == 3);
}

TEST_CASE("many requests in flight come back, each once, with matching ids", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>({.requests = {.capacity = 64}, .replies = {.capacity = 64}});
  k.start();
  host_client c(k, ch);
  std::vector<std::uint64_t> ids;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const auto s = c.submit(msg::Echo::type_id_, test::echo_request(i, 16));
    REQUIRE(s.ok());
    ids.push_back(s.correlation_id);
  }
  reply r;
  // Await in reverse: replies for other ids are kept until asked for.
  for (std::size_t i = ids.size(); i-- > 0;) {
    REQUIRE(c.await(ids[i], 5s, r));
    REQUIRE(r.ok());
    CHECK(r.correlation_id == ids[i]);
    CHECK(echo_seq(r) == i);
  }
  CHECK(c.pending() == 0);
  CHECK(c.await(ids[0], 1ms, r));  // already returned: unknown now
  CHECK(r.st == status::invalid_argument);
}

TEST_CASE("a handler error becomes an error reply and the kernel keeps serving", "[cpu][tsan]") {
  cpu_kernel k;
  auto& saxpy = k.add_ring<SaxpyKernel>();
  auto& thrower = k.add_ring<ThrowingKernel>();
  k.start();
  host_client cs(k, saxpy), ct(k, thrower);
  reply r;
  cs.call(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1, 2, 3}, {1}), 5s, r);
  CHECK(r.st == status::invalid_argument);
  CHECK(r.detail == "saxpy: x and y differ in length");
  cs.call(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1}, {1}), 5s, r);
  CHECK(r.ok());

  ct.call(msg::Echo::type_id_, test::echo_request(666, 4), 5s, r);
  CHECK(r.st == status::handler_fault);
  CHECK(r.detail == "boom at 666");
  ct.call(msg::Echo::type_id_, test::echo_request(7, 4), 5s, r);
  CHECK(r.ok());
  CHECK(k.control().handler_error_count() == 2);
  CHECK(k.control().current_state() == kernel_state::running);
}

TEST_CASE("bad input gets a clear error: wrong type, oversize, past deadline", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<SaxpyKernel>({.requests = {.capacity = 16, .slot_size = 256, .arena_bytes = 4096}});
  k.start();
  host_client c(k, ch);
  reply r;
  c.call(msg::Echo::type_id_, test::echo_request(1, 8), 5s, r);
  CHECK(r.st == status::wrong_type);
  CHECK(k.control().rejected_count() == 1);

  const auto s = c.submit(msg::SaxpyRequest::type_id_, std::vector<std::uint8_t>(5000, 0));
  CHECK(s.st == status::oversize);
  CHECK_THAT(s.detail, Catch::Contains("5000"));

  request_options late;
  late.deadline = std::chrono::steady_clock::now() - 1ms;
  c.call(msg::SaxpyRequest::type_id_, test::saxpy_request(1, {1}, {1}), 5s, r, late);
  CHECK(r.st == status::deadline_exceeded);
  c.call(msg::SaxpyRequest::type_id_, test::saxpy_request(1, {1}, {1}), 5s, r);
  CHECK(r.ok());  // and the kernel still serves
}

TEST_CASE("trace context travels through the kernel", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>();
  k.start();
  host_client c(k, ch);
  request_options o;
  REQUIRE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", o.trace));
  reply r;
  c.call(msg::Echo::type_id_, test::echo_request(1, 4), 5s, r, o);
  REQUIRE(r.ok());
  CHECK(std::equal(r.trace_id, r.trace_id + 16, o.trace.trace_id));
}

TEST_CASE("stop with messages in flight loses none", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>({.requests = {.capacity = 256}, .replies = {.capacity = 256}});
  k.start();
  host_client c(k, ch);
  std::vector<std::uint64_t> ids;
  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    while (!stopping.load()) std::this_thread::yield();
    (void)k.stop();
  });
  // Keep submitting while the kernel stops; everything accepted must be answered.
  for (std::uint64_t i = 0; i < 5000; ++i) {
    if (i == 300) stopping = true;
    const auto s = c.submit(msg::Echo::type_id_, test::echo_request(i, 8));
    if (s.ok()) {
      ids.push_back(s.correlation_id);
    } else {
      REQUIRE(s.st == status::stopped);
      break;
    }
  }
  // Collect the answers while the stop may still be draining: the drain needs room in the
  // response ring, and only this client makes it (joining first could leave the kernel waiting
  // for room until its stop timeout when all 5000 submissions fit before the drain ended).
  std::size_t ok = 0, stopped = 0, unexpected = 0, missing = 0;
  reply r;
  for (auto id : ids) {
    if (!c.await(id, 5s, r) || r.correlation_id != id) {
      ++missing;
      continue;
    }
    if (r.ok()) ++ok;
    else if (r.st == status::stopped) ++stopped;
    else ++unexpected;
  }
  stopper.join();
  CHECK(missing == 0);
  CHECK(unexpected == 0);
  CHECK(ok + stopped == ids.size());
  CHECK(ok >= 300);
  CHECK(ok == k.control().processed_count());
  CHECK(c.pending() == 0);
  CHECK(k.control().current_state() == kernel_state::stopped);
  // After the stop, new submissions are refused with a clear error.
  CHECK(c.submit(msg::Echo::type_id_, test::echo_request(1, 8)).st == status::stopped);
}

TEST_CASE("the heartbeat advances while the kernel runs", "[cpu][tsan]") {
  cpu_kernel k(kernel_config{.name = "hb", .wait = {.spin_iterations = 100000, .yield_iterations = 0, .park = true}});
  auto& ch = k.add_ring<EchoKernel>();
  k.start();
  host_client c(k, ch);
  const auto before = k.control().heartbeat_count();
  CHECK(eventually([&] { return k.control().heartbeat_count() > before + 10; }));
  reply r;
  c.call(msg::Echo::type_id_, test::echo_request(1, 4), 5s, r);
  REQUIRE(r.ok());
  // The kernel records progress after the pass that published the reply: the client can see the
  // reply first, so wait for it (TSan's slower threads made the plain check flaky).
  CHECK(eventually([&] { return k.control().last_progress_beat() > 0; }));
  CHECK(k.control().last_progress_beat() <= k.control().heartbeat_count());
}

TEST_CASE("an idle kernel parks (no busy CPU) and a request wakes it", "[cpu][tsan]") {
  cpu_kernel k(kernel_config{.name = "parker", .wait = {.spin_iterations = 50, .yield_iterations = 2, .park = true}});
  auto& ch = k.add_ring<EchoKernel>();
  k.start();
  host_client c(k, ch, {.spin_iterations = 50, .yield_iterations = 2, .park = true});
  REQUIRE(eventually([&] { return k.stats().parked; }));
  // Parked means not running: the pass counter stands still while nothing arrives.
  const auto s1 = k.stats();
  // Watch for any pass for 50 ms (a spinning kernel would make ~10^5 in that time): none may come.
  CHECK_FALSE(eventually([&] { return k.stats().passes != s1.passes; }, 50ms));
  const auto s2 = k.stats();
  CHECK(s2.parked);
  CHECK(s2.passes == s1.passes);
  CHECK(s2.parks == s1.parks);

  reply r;
  c.call(msg::Echo::type_id_, test::echo_request(3, 4), 5s, r);
  REQUIRE(r.ok());
  // The wake-up is counted before the pass that serves the request, the pass itself only after the
  // reply is published: the caller can see its reply first (TSan made that race visible).
  CHECK(k.stats().wakeups >= s2.wakeups + 1);
  CHECK(eventually([&] { return k.stats().passes > s2.passes; }));
  // And it parks again afterwards.
  CHECK(eventually([&] { return k.stats().parked; }));
}

TEST_CASE("a full request ring gives overloaded after the submit timeout, and loses nothing", "[cpu][tsan]") {
  gate_open = false;
  cpu_kernel k;
  auto& ch = k.add_ring<GatedKernel>({.requests = {.capacity = 8}, .replies = {.capacity = 8}});
  k.start();
  host_client c(k, ch);
  std::vector<std::uint64_t> ids;
  request_options quick;
  quick.submit_timeout = 20ms;
  submit_result s;
  for (int i = 0; i < 100; ++i) {
    s = c.submit(msg::Echo::type_id_, test::echo_request(i, 4), quick);
    if (!s.ok()) break;
    ids.push_back(s.correlation_id);
  }
  CHECK(s.st == status::overloaded);
  CHECK_THAT(s.detail, Catch::Contains("full"));
  CHECK(ids.size() >= 8);
  CHECK(ids.size() <= 8 + 1);  // the ring plus the one request inside the handler
  gate_open = true;
  reply r;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    REQUIRE(c.await(ids[i], 5s, r));
    CHECK(r.ok());
    CHECK(echo_seq(r) == i);
  }
}

TEST_CASE("a client that stops reading replies cannot wedge stop(): it faults with a reason", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>({.requests = {.capacity = 64}, .replies = {.capacity = 4, .head_batch = 1}});
  k.start();
  {
    host_client c(k, ch);
    request_options o;
    o.submit_timeout = 1ms;
    for (int i = 0; i < 40; ++i) c.submit(msg::Echo::type_id_, test::echo_request(i, 4), o);
    // Never awaits: the response ring (4) fills, the kernel blocks.
    REQUIRE(eventually([&] { return ring_observer(ch.replies()).depth() == 4; }));
  }
  CHECK(k.stop(50ms) == stop_outcome::faulted);
  CHECK(k.control().current_error() == kernel_error::reply_stuck);
  CHECK_THAT(std::string(k.control().error_detail), Catch::Contains("full"));
}

TEST_CASE("a stopped kernel restarts on the same rings with a new epoch", "[cpu][tsan]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>();
  k.start();
  host_client c(k, ch);
  reply r;
  c.call(msg::Echo::type_id_, test::echo_request(1, 4), 5s, r);
  REQUIRE(r.ok());
  CHECK(k.control().epoch == 1);
  REQUIRE(k.stop() == stop_outcome::stopped);
  CHECK(k.stop() == stop_outcome::already_stopped);
  k.start();
  CHECK(k.control().epoch == 2);
  c.call(msg::Echo::type_id_, test::echo_request(2, 4), 5s, r);
  REQUIRE(r.ok());
  CHECK(echo_seq(r) == 2);
  CHECK_THROWS_AS(k.start(), std::logic_error);
  CHECK_THROWS_AS(k.add_ring<EchoKernel>(), std::logic_error);
}

TEST_CASE("one channel has one client", "[cpu]") {
  cpu_kernel k;
  auto& ch = k.add_ring<EchoKernel>();
  host_client a(k, ch);
  CHECK_THROWS_AS(host_client(k, ch), std::logic_error);
}

TEST_CASE("bad ring options are rejected when the ring is added", "[cpu]") {
  cpu_kernel k;
  CHECK_THROWS_AS(k.add_ring<EchoKernel>({.requests = {.capacity = 3}}), std::invalid_argument);
  CHECK_THROWS_AS(cpu_kernel(kernel_config{.max_batch = 0}), std::invalid_argument);
}

TEST_CASE("stress: several client threads on rings of one kernel thread", "[cpu][tsan][stress]") {
  cpu_kernel k(kernel_config{.name = "shared", .wait = {.spin_iterations = 200, .yield_iterations = 4, .park = true}});
  constexpr int kClients = 3;
  std::vector<channel*> chans;
  for (int i = 0; i < kClients; ++i)
    chans.push_back(&k.add_ring<EchoKernel>({.requests = {.capacity = 32}, .replies = {.capacity = 32}}));
  k.start();
  std::atomic<int> failures{0};
  constexpr int kPerClient = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      host_client c(k, *chans[t], {.spin_iterations = 200, .yield_iterations = 4, .park = true});
      reply r;
      std::vector<std::uint64_t> window;
      std::uint64_t next_expected = 0;
      for (std::uint64_t i = 0; i < kPerClient; ++i) {
        const auto s = c.submit(msg::Echo::type_id_, test::echo_request(i, 8 + i % 32));
        if (!s.ok()) {
          ++failures;
          return;
        }
        window.push_back(s.correlation_id);
        if (window.size() == 16 || i + 1 == kPerClient) {
          for (auto id : window) {
            if (!c.await(id, 10s, r) || !r.ok() || demo::GetEcho(r.payload.data())->sequence() != next_expected++) {
              ++failures;
              return;
            }
          }
          window.clear();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(k.control().processed_count() == static_cast<std::uint64_t>(kClients) * kPerClient);
  CHECK(k.stop() == stop_outcome::stopped);
}

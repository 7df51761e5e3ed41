// The actor layer: ring actors, embedding clients, typed errors, backpressure, deadlines, the
// registry, incarnation swaps with replay, and runtime shutdown.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <future>
#include <set>
#include <thread>

#include "actor_test_support.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace ringflow::demo_kernels;
using namespace std::chrono_literals;

namespace {

// Sends `m` to `a` from a scoped actor and returns the reply or the error.
struct actor_answer {
  fb_msg reply;
  caf::error error;
};
actor_answer ask(caf::actor_system& sys, const caf::actor& a, fb_msg m) {
  caf::scoped_actor self{sys};
  actor_answer out;
  self->request(a, caf::infinite, std::move(m))
      .receive([&](fb_msg& r) { out.reply = std::move(r); }, [&](caf::error& e) { out.error = std::move(e); });
  return out;
}

}  // namespace

TEST_CASE("fb_msg is registered with CAF and survives serialization", "[actors][unit]") {
  runtime rt{small_runtime()};
  // CAF 0.17 delivers an unregistered type as an empty message to remote nodes: the name lookup
  // fails for a type that was never registered.
  CHECK(rt.system().types().portable_name(0, &typeid(fb_msg)) == "ringflow::fb_msg");
  CHECK(rt.system().types().portable_name(0, &typeid(std::vector<fb_msg>)) == "std::vector<ringflow::fb_msg>");
  struct never_registered {};
  CHECK(rt.system().types().portable_name(0, &typeid(never_registered)) == "???");  // CAF's name for a miss

  fb_msg m = echo_msg(7, 100);
  m.deadline_ns = 123456789;
  m.trace_hi = 0x0102030405060708ull;
  m.trace_lo = 42;
  m.span = 99;
  std::vector<char> buf;
  caf::binary_serializer sink{rt.system(), buf};
  REQUIRE(!sink(m));
  fb_msg back;
  caf::binary_deserializer source{rt.system(), buf};
  REQUIRE(!source(back));
  CHECK(back == m);

  // The error category renders.
  CHECK(rt.system().render(make_error(errc::overloaded, "window full")).find("overloaded") != std::string::npos);
}

TEST_CASE("a ring actor answers requests from actors and from embedding clients", "[actors][unit]") {
  runtime rt{small_runtime()};
  caf::actor echo = rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  for (std::uint64_t i = 0; i < 20; ++i) {
    fb_msg m = echo_msg(i, 8 + i);
    m.trace_hi = 0xabcdef;
    m.span = i;
    auto a = ask(rt.system(), echo, m);
    REQUIRE(!a.error);
    CHECK(a.reply.bytes == m.bytes);  // not an empty message: the bytes made the round trip
    CHECK(echo_seq(a.reply) == i);
    CHECK(a.reply.trace_hi == 0xabcdef);  // trace context comes back with the reply
    CHECK(a.reply.span == i);
  }
  auto client = rt.client("echo");
  REQUIRE(client);
  for (std::uint64_t i = 0; i < 20; ++i) {
    call_result r = client->call(echo_msg(100 + i));
    REQUIRE(r.ok());
    CHECK(echo_seq(r.reply) == 100 + i);
  }
  std::future<call_result> f = client->submit(echo_msg(555));
  CHECK(echo_seq(f.get().reply) == 555);
  std::promise<call_result> p;
  client->submit(echo_msg(556), [&](call_result&& r) { p.set_value(std::move(r)); });
  CHECK(echo_seq(p.get_future().get().reply) == 556);

  // Saxpy through the same machinery: a real computation, checked.
  rt.spawn_ring_actor<SaxpyKernel>("saxpy", {}, quick_park());
  auto sx = rt.client("saxpy");
  call_result r = sx->call(fb_msg(saxpy_request(2.0f, {1, 2, 3}, {10, 20, 30})));
  REQUIRE(r.ok());
  const auto* reply = demo::GetSaxpyReply(r.reply.bytes.data());
  REQUIRE(reply->y()->size() == 3);
  CHECK(reply->y()->Get(0) == 12.0f);
  CHECK(reply->y()->Get(2) == 36.0f);
  const ring_stats st = rt.ring("echo")->stats();
  CHECK(st.replied == 42);
  CHECK(st.in_flight == 0);
}

TEST_CASE("bad requests get clear typed errors and the actor keeps serving", "[actors][unit]") {
  runtime rt{small_runtime()};
  caf::actor echo = rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  auto client = rt.client("echo");

  SECTION("wrong request type") {
    auto a = ask(rt.system(), echo, fb_msg(saxpy_request(1, {1}, {1})));
    CHECK(code_of(a.error) == errc::wrong_type);
    CHECK(detail_of(a.error).find("'ECHO'") != std::string::npos);
    CHECK(detail_of(a.error).find("'SXPQ'") != std::string::npos);
    CHECK(client->call(fb_msg(saxpy_request(1, {1}, {1}))).code == errc::wrong_type);
  }
  SECTION("malformed payload") {
    std::vector<std::uint8_t> bad = echo_request(1, 32);
    bad[0] = 0xf0;  // root offset points outside the buffer
    auto a = ask(rt.system(), echo, fb_msg(bad));
    CHECK(code_of(a.error) == errc::malformed);
    CHECK(client->call(fb_msg(std::vector<std::uint8_t>{1, 2, 3})).code == errc::wrong_type);  // too short for a type
  }
  SECTION("oversize payload") {
    call_result r = client->call(echo_msg(1, 1 << 20));
    CHECK(r.code == errc::oversize);
    CHECK(r.detail.find("limit") != std::string::npos);
  }
  SECTION("unknown name") {
    auto c = rt.client("nope");
    REQUIRE(!c);
    CHECK(code_of(c.error()) == errc::unknown_name);
    CHECK(detail_of(c.error()).find("'nope'") != std::string::npos);
    auto l = rt.registry().lookup("nope");
    CHECK(code_of(l.error()) == errc::unknown_name);
  }
  // Whatever went wrong, the actor still serves.
  auto a = ask(rt.system(), echo, echo_msg(77));
  REQUIRE(!a.error);
  CHECK(echo_seq(a.reply) == 77);
  CHECK(rt.ring("echo")->stats().in_flight == 0);
}

TEST_CASE("over the window a caller gets overloaded at once, nothing is lost", "[actors][unit]") {
  GatedEchoKernel::gate_closed = true;
  runtime rt{small_runtime()};
  ring_actor_options opts;
  opts.window = 16;
  opts.per_caller_window = 8;
  rt.spawn_ring_actor<GatedEchoKernel>("gated", opts, quick_park());
  auto core = rt.ring("gated");
  ring_client c1(core), c2(core), c3(core);
  std::vector<std::future<call_result>> ok;
  for (int i = 0; i < 8; ++i) ok.push_back(c1.submit(echo_msg(i)));
  // Per caller: the 9th request of c1 is refused at once.
  call_result over = c1.submit(echo_msg(8)).get();
  CHECK(over.code == errc::overloaded);
  CHECK(over.detail.find("per-caller") != std::string::npos);
  for (int i = 0; i < 8; ++i) ok.push_back(c2.submit(echo_msg(100 + i)));
  // Per actor: the window (16) is full, c3 has nothing in flight and is refused too.
  call_result full = c3.submit(echo_msg(200)).get();
  CHECK(full.code == errc::overloaded);
  CHECK(full.detail.find("window") != std::string::npos);
  CHECK(core->stats().overloaded == 2);
  GatedEchoKernel::gate_closed = false;
  std::set<std::uint64_t> seqs;
  for (auto& f : ok) {
    call_result r = f.get();
    REQUIRE(r.ok());
    seqs.insert(echo_seq(r.reply));
  }
  CHECK(seqs.size() == 16);            // every accepted request answered, once
  CHECK(c3.call(echo_msg(300)).ok());  // room again
}

TEST_CASE("a request past its deadline gets timeout exactly once, the late reply is dropped", "[actors][unit]") {
  GatedEchoKernel::gate_closed = true;
  runtime rt{small_runtime()};
  caf::actor a = rt.spawn_ring_actor<GatedEchoKernel>("gated", {}, quick_park());
  auto client = rt.client("gated");
  std::atomic<int> answers{0};
  std::promise<call_result> p;
  fb_msg m = echo_msg(1);
  m.with_timeout(20ms);
  client->submit(std::move(m), [&](call_result&& r) {
    if (answers.fetch_add(1) == 0) p.set_value(std::move(r));
  });
  call_result r = p.get_future().get();
  CHECK(r.code == errc::timeout);
  // Through the actor too.
  fb_msg m2 = echo_msg(2);
  m2.with_timeout(20ms);
  auto ans = ask(rt.system(), a, m2);
  CHECK(code_of(ans.error) == errc::timeout);
  GatedEchoKernel::gate_closed = false;
  auto core = rt.ring("gated");
  // The kernel serves both eventually; their replies find no live request and are dropped.
  REQUIRE(wait_until([&] { return core->stats().duplicates == 2; }));
  CHECK(answers.load() == 1);
  CHECK(core->stats().timeouts == 2);
  CHECK(core->stats().in_flight == 0);
}

TEST_CASE("the registry: lookup errors, taken names, atomic replace", "[actors][unit]") {
  runtime rt{small_runtime()};
  caf::actor e1 = rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  CHECK_THROWS_AS(rt.spawn_ring_actor<EchoKernel>("echo"), std::invalid_argument);
  caf::actor e2 = rt.spawn_ring_actor<EchoKernel>("echo2", {}, quick_park());
  CHECK(code_of(rt.registry().add("echo", e2)) == errc::name_taken);
  REQUIRE(rt.registry().lookup("echo"));
  CHECK(*rt.registry().lookup("echo") == e1);

  // Readers never see the name missing while it is replaced back and forth.
  rt.registry().replace("svc", e1);  // before the reader starts: from now on the name always exists
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> misses{0}, seen{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto l = rt.registry().lookup("svc");
      if (!l) misses.fetch_add(1);
      else if (*l != e1 && *l != e2) misses.fetch_add(1);
      seen.fetch_add(1);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    auto prev = rt.registry().replace("svc", i % 2 ? e1 : e2);
    CHECK((prev.actor == e1 || prev.actor == e2));
  }
  REQUIRE(wait_until([&] { return seen.load() > 100; }));
  done = true;
  reader.join();
  // The reader started after the first replace: every lookup found one of the two actors.
  CHECK(misses.load() == 0);
}

TEST_CASE("many actors x many requests through a ring actor: each answered once, matching", "[actors][unit]") {
  runtime rt{small_runtime()};
  ring_actor_options opts;
  opts.window = 512;
  caf::actor echo = rt.spawn_ring_actor<EchoKernel>("echo", opts, quick_park());
  constexpr int actors = 6, per_actor = 2000, window = 16;
  struct tally {
    std::atomic<int> ok{0}, bad{0}, done{0};
    std::promise<void> all;
  };
  auto t = std::make_shared<tally>();
  for (int a = 0; a < actors; ++a) {
    rt.system().spawn(
        [](caf::event_based_actor* self, caf::actor target, std::shared_ptr<tally> t, int id) {
          // Keeps `window` requests in flight; each reply must carry its own request's sequence.
          auto sent = std::make_shared<int>(0);
          auto recv = std::make_shared<int>(0);
          auto send_one = std::make_shared<std::function<void()>>();
          *send_one = [=] {
            const std::uint64_t seq = static_cast<std::uint64_t>(id) * 1000000 + (*sent)++;
            self->request(target, caf::infinite, echo_msg(seq))
                .then(
                    [=](fb_msg& r) {
                      (echo_seq(r) == seq ? t->ok : t->bad)++;
                      if (++*recv == per_actor) {
                        if (++t->done == actors) t->all.set_value();
                        *send_one = nullptr;  // break the self-reference
                      } else if (*sent < per_actor) {
                        (*send_one)();
                      }
                    },
                    [=](caf::error&) {
                      t->bad++;
                      if (++*recv == per_actor && ++t->done == actors) t->all.set_value();
                    });
          };
          for (int i = 0; i < window; ++i) (*send_one)();
        },
        echo, t, a);
  }
  REQUIRE(t->all.get_future().wait_for(60s) == std::future_status::ready);
  CHECK(t->ok.load() == actors * per_actor);
  CHECK(t->bad.load() == 0);
  CHECK(rt.ring("echo")->stats().replied == static_cast<std::uint64_t>(actors * per_actor));
}

TEST_CASE("detach of a stuck kernel and attach of a fresh one replays the unanswered requests", "[actors][unit]") {
  GatedEchoKernel::gate_closed = true;
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<GatedEchoKernel>("svc", {}, quick_park());
  auto core = rt.ring("svc");
  ring_client c(core);
  std::vector<std::future<call_result>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(c.submit(echo_msg(i)));
  REQUIRE(wait_until([&] { return core->stats().staged == 0; }));  // all published into the stuck kernel's ring
  // The kernel is stuck in its handler: abandon it (no drain) and attach a CPU incarnation of a
  // kernel with the same types. Callers notice nothing but latency.
  std::unique_ptr<incarnation> stuck = core->detach_abandon();
  REQUIRE(stuck);
  CHECK(!core->attached());
  core->attach(cpu_incarnation_factory<EchoKernel>(quick_park())(&rt.poller().bell()));
  std::set<std::uint64_t> seqs;
  for (auto& f : fs) {
    call_result r = f.get();
    REQUIRE(r.ok());
    seqs.insert(echo_seq(r.reply));
  }
  CHECK(seqs.size() == 10);
  const ring_stats st = core->stats();
  CHECK(st.replayed == 10);  // in order, from the outbox
  CHECK(st.replied == 10);
  CHECK(st.duplicates == 0);
  GatedEchoKernel::gate_closed = false;  // the abandoned kernel finishes into rings nobody reads
  stuck.reset();
  CHECK(c.call(echo_msg(99)).ok());
}

TEST_CASE("when the ring actor exits, its pending callers get stopped, not silence", "[actors][unit]") {
  GatedEchoKernel::gate_closed = true;
  runtime rt{small_runtime()};
  cpu_incarnation_options small = quick_park();
  small.rings.requests.capacity = 4;  // most requests wait in staging
  caf::actor a = rt.spawn_ring_actor<GatedEchoKernel>("svc", {}, small);
  auto core = rt.ring("svc");
  ring_client c(core);
  std::vector<std::future<call_result>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(c.submit(echo_msg(i)));
  REQUIRE(wait_until([&] { return core->in_flight() == 20; }));
  std::thread opener([&] {  // let the kernel drain its ring once the stop began
    wait_until([&] { return core->stopping(); });
    GatedEchoKernel::gate_closed = false;
  });
  caf::anon_send_exit(a, caf::exit_reason::kill);
  int ok = 0, stopped = 0, other = 0;
  for (auto& f : fs) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    call_result r = f.get();
    (r.ok() ? ok : r.code == errc::stopped ? stopped : other)++;
  }
  opener.join();
  CHECK(ok + stopped == 20);
  CHECK(stopped >= 10);
  CHECK(other == 0);
  CHECK(c.call(echo_msg(1)).code == errc::stopped);
}

TEST_CASE("ring_client::poll completes pipelined requests on the calling thread", "[actors][unit]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  ring_client c = *rt.client("echo");
  std::atomic<int> done{0}, finished{0};
  for (int i = 0; i < 32; ++i)
    c.submit(echo_msg(i), [&, i](call_result&& r) {
      if (r.ok() && echo_seq(r.reply) == static_cast<std::uint64_t>(i)) ++done;
      finished.fetch_add(1, std::memory_order_release);
    });
  REQUIRE(wait_until([&] {
    c.poll();
    return finished.load(std::memory_order_acquire) == 32;
  }));
  CHECK(done.load() == 32);
  CHECK(c.in_flight() == 0);
}

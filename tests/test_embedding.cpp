// The embedding API's contract for kernel authors (issue "Kernel authors and embedders"): typed
// clients, one deadline rule, and the regressions (a) call() inside a completion, (d) a reply of
// the wrong type, (e) a wrong inline_max_. Each regression case fails on the code before the fix.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <future>

#include "actor_test_support.hpp"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/ringflow.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace ringflow::demo_kernels;
using namespace std::chrono_literals;

namespace {

// Declares Echo -> Echo but replies with a SaxpyReply: a kernel bug the caller must see at once.
struct WrongReplyKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "wrong_reply";
  static status handle(const msg_view&, reply_writer& out) {
    fb::builder b = out.table<msg::SaxpyReply>();
    return out.finish(b);
  }
};

// A descriptor whose inline_max_ is too small for the fields the handler writes.
struct TightScoreReply : msg::ScoreReply {
  static constexpr const char* name_ = "test.TightScoreReply";
  static constexpr std::uint32_t inline_max_ = 8;
};
struct TightKernel {
  using request = msg::ScoreRequest;
  using reply = msg::ScoreReply;
  static constexpr const char* name = "tight";
  static status handle(const msg_view&, reply_writer& out) {
    fb::builder b = out.table<TightScoreReply>();
    TightScoreReply::add_request_id(b, 1);
    TightScoreReply::add_score(b, 0.5f);
    TightScoreReply::add_price(b, 2.0);
    return out.finish(b);
  }
};

template <class Clock = std::chrono::steady_clock>
double ms_since(typename Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

TEST_CASE("call() inside a submit() callback returns would_deadlock, every other caller is still served",
          "[actors][embedding]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  rt.spawn_ring_actor<EchoKernel>("other", {}, quick_park());
  ring_client c = *rt.client("echo");
  ring_client other = *rt.client("other");
  CHECK_FALSE(ring_core::runs_completions());

  std::promise<std::pair<errc, errc>> nested;  // (outer answer, nested call's answer)
  c.submit(echo_msg(1), [&](call_result&& r) {
    const call_result inner = other.call(echo_msg(2), 1s);  // would wait for the poller: this thread
    nested.set_value({r.code, inner.code});
  });
  auto f = nested.get_future();
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  const auto [outer, inner] = f.get();
  CHECK(outer == errc::ok);
  CHECK(inner == errc::would_deadlock);
  CHECK(std::string(to_string(errc::would_deadlock)) == "would_deadlock");

  // The poller was not wedged: futures, callbacks and a 10 ms deadline on every ring actor answer.
  std::future<call_result> fut = other.submit(echo_msg(3));
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get().ok());
  fb_msg quick = echo_msg(4);
  quick.with_timeout(10ms);
  std::promise<errc> cb;
  c.submit(std::move(quick), [&](call_result&& r) { cb.set_value(r.code); });
  auto cbf = cb.get_future();
  REQUIRE(cbf.wait_for(5s) == std::future_status::ready);
  CHECK((cbf.get() == errc::ok));
  CHECK(c.call(echo_msg(5)).ok());
  CHECK_FALSE(ring_core::runs_completions());
}

TEST_CASE("a reply of the wrong type is bad_reply to its caller at once, without a fault ladder",
          "[actors][embedding]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<WrongReplyKernel>("bad", {}, quick_park());
  ring_client c = *rt.client("bad");
  const auto t0 = std::chrono::steady_clock::now();
  const call_result r = c.call(echo_msg(1), 3s);
  CHECK(ms_since(t0) < 2000);
  CHECK(r.code == errc::bad_reply);
  INFO(r.detail);
  CHECK(r.detail.find("'SXPR'") != std::string::npos);  // names what it got...
  CHECK(r.detail.find("'ECHO'") != std::string::npos);  // ...and what the kernel declared
  const ring_stats st = rt.ring("bad")->stats();
  CHECK(st.corrupt_replies == 1);
  CHECK(st.timeouts == 0);
}

TEST_CASE("a descriptor's wrong inline_max_ is reported with its name and the bytes it needed", "[actors][embedding]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<TightKernel>("tight", {}, quick_park());
  const call_result r = rt.client("tight")->call(fb_msg(score_request(7, 10.0, 2, 1, {})));
  CHECK(r.code == errc::internal);
  INFO(r.detail);
  CHECK(r.detail.find("test.TightScoreReply") != std::string::npos);
  CHECK(r.detail.find("inline fields need 24 bytes") != std::string::npos);  // u64 + f32 + pad + f64
  CHECK(r.detail.find("reserves 8") != std::string::npos);
}

TEST_CASE("deadlines: one default, a passed deadline is refused at submit, call(msg, timeout)", "[actors][embedding]") {
  GatedEchoKernel::gate_closed = true;
  runtime rt{small_runtime()};
  ring_actor_options opts;
  opts.default_timeout = 50ms;
  rt.spawn_ring_actor<GatedEchoKernel>("slow", opts, quick_park());
  rt.spawn_ring_actor<EchoKernel>("echo", {}, quick_park());
  ring_client c = *rt.client("slow");

  SECTION("a client without its own default uses the ring actor's") {
    const auto t0 = std::chrono::steady_clock::now();
    const call_result r = c.call(echo_msg(1));
    CHECK(r.code == errc::timeout);
    CHECK(ms_since(t0) < 2000);  // the ring actor's 50 ms, not a client default of seconds
  }
  SECTION("a client's own default applies to requests without a deadline") {
    ring_client own = *rt.client("slow", client_options{64, 20ms});
    CHECK(own.call(echo_msg(2)).code == errc::timeout);
  }
  SECTION("call(msg, timeout) sets the deadline") {
    ring_client e = *rt.client("echo");
    CHECK(e.call(echo_msg(3), 2s).ok());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(c.call(echo_msg(4), 30ms).code == errc::timeout);
    CHECK(ms_since(t0) < 2000);
  }
  SECTION("a deadline already past is answered timeout at submit and never enqueued") {
    ring_client e = *rt.client("echo");
    const ring_stats before = rt.ring("echo")->stats();
    fb_msg late = echo_msg(5);
    late.deadline_ns = steady_now() - 1000000;  // 1 ms ago
    const call_result r = e.call(std::move(late));
    CHECK(r.code == errc::timeout);
    CHECK(r.detail.find("before it was submitted") != std::string::npos);
    const ring_stats after = rt.ring("echo")->stats();
    CHECK(after.submitted == before.submitted);
    CHECK(after.rejected == before.rejected + 1);
    fb_msg late2 = echo_msg(6);
    late2.deadline_ns = 1;  // long past
    CHECK(e.submit(std::move(late2)).get().code == errc::timeout);
  }
  GatedEchoKernel::gate_closed = false;
}

TEST_CASE("typed_client: requests as flatc builder, portable writer or bytes, typed replies and errors",
          "[actors][embedding]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<ScoreKernel>("score", {}, quick_park());
  auto tc = rt.client_for<ScoreKernel>("score");
  REQUIRE(tc);
  typed_client<ScoreKernel>& q = *tc;

  // The reference answer: the same request through the untyped client.
  const std::vector<std::uint8_t> req = score_request(42, 100.0, 3, 2, {{1, 0.5f}, {7, -0.25f}});
  const call_result ref = q.untyped().call(fb_msg(req));
  REQUIRE(ref.ok());
  const auto want = view_of<msg::ScoreReply>(ref.reply.view());

  SECTION("bytes") {
    const auto r = q.call(req, 2s);
    REQUIRE(r);
    CHECK(r.reply().request_id() == 42);
    CHECK(r.reply().price() == want.price());
    CHECK(r.message.bytes == ref.reply.bytes);
  }
  SECTION("flatc's FlatBufferBuilder, the client finishes with the identifier") {
    const auto r = q.call([](flatbuffers::FlatBufferBuilder& b) {
      const demo::Quote quote(100.0, 3, 2);
      std::vector<demo::Feature> fs{demo::Feature(1, 0.5f), demo::Feature(7, -0.25f)};
      return demo::CreateScoreRequest(b, 42, &quote, b.CreateVectorOfStructs(fs));
    });
    REQUIRE(r);
    CHECK(r.reply().request_id() == 42);
    CHECK(r.reply().score() == want.score());
    CHECK(r.reply().approved() == want.approved());
  }
  SECTION("ringflow's portable writer through the generated descriptor") {
    const auto r = q.call([](fb::builder& b) {
      using R = msg::ScoreRequest;
      R::add_request_id(b, 42);
      R::add_quote(b, msg::Quote{100.0, 3, 2, {}});
      const msg::Feature fs[] = {{1, 0.5f}, {7, -0.25f}};
      R::add_features(b, fs, 2);
    });
    REQUIRE(r);
    CHECK(r.reply().price() == want.price());
  }
  SECTION("submit: future and callback") {
    auto f = q.submit(req);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(f.get().reply().request_id() == 42);
    std::promise<std::uint64_t> p;
    q.submit(req, [&](typed_result<msg::ScoreReply>&& r) { p.set_value(r ? r.reply().request_id() : 0); });
    CHECK(p.get_future().get() == 42);
  }
  SECTION("typed errors") {
    const auto wrong = q.call(echo_request(1, 8));  // an Echo: refused before it is sent
    CHECK(wrong.code == errc::wrong_type);
    CHECK(wrong.detail.find("ringflow.demo.ScoreRequest") != std::string::npos);
    CHECK_FALSE(wrong.reply().table_.valid());
    const auto unfinished = q.call([](flatbuffers::FlatBufferBuilder&) {});
    CHECK(unfinished.code == errc::invalid_argument);
    const auto twice = q.call([](fb::builder& b) {
      msg::ScoreRequest::add_request_id(b, 1);
      msg::ScoreRequest::add_request_id(b, 2);
    });
    CHECK(twice.code == errc::invalid_argument);
    auto mismatched = rt.client_for<SaxpyKernel>("score");
    REQUIRE_FALSE(mismatched);
    CHECK(code_of(mismatched.error()) == errc::wrong_type);
    CHECK(code_of(rt.client_for<ScoreKernel>("nobody").error()) == errc::unknown_name);
    CHECK_THROWS_AS(typed_client<EchoKernel>(*rt.client("score")), std::invalid_argument);
  }
}

TEST_CASE("a stateful kernel through the runtime: spawn_ring_actor sizes its state, swap_incarnation keeps it",
          "[actors][embedding][state]") {
  runtime rt{small_runtime()};
  rt.spawn_ring_actor<VwapKernel>("vwap", {}, quick_park());  // default rings: arenas added for the state
  ring_client c = *rt.client("vwap");
  auto trade = [](std::uint32_t key, std::int64_t price, std::uint32_t qty) {
    flatbuffers::FlatBufferBuilder b;
    demo::FinishTradeBuffer(b, demo::CreateTrade(b, key, price, qty, 0));
    return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
  };
  for (int i = 0; i < 10; ++i) REQUIRE(c.call(trade(1, 100, 2), 3s).ok());
  std::unique_ptr<incarnation> old = rt.swap_incarnation("vwap");  // a fresh incarnation: restored, replayed
  REQUIRE(old);
  const call_result r = c.call(trade(1, 130, 2), 3s);
  REQUIRE(r.ok());
  const auto* v = flatbuffers::GetRoot<demo::VwapReply>(r.reply.bytes.data());
  CHECK(v->trades() == 11);  // the ten before the swap are in the new incarnation's state
  CHECK(v->volume() == 22);
  CHECK(v->notional() == 10 * 200 + 260);
  std::shared_ptr<ring_core> core = rt.ring("vwap");
  CHECK(core->options().state.state_bytes == sizeof(VwapKernel::state));
  core->request_snapshot();
  REQUIRE(wait_until([&] { return core->state()->snapshots > 0 && core->state()->requests_covered == 11; }));
  VwapKernel::state s;
  std::memcpy(&s, core->state()->bytes.data(), sizeof s);
  CHECK(s.applied == 11);
  CHECK(core->stats().state_restores == 2);
}

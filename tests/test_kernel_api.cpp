// The kernel-author API: serve_one() with demo and test kernels, driven on one thread.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/error_generated.h"
#include "ringflow/ring_storage.hpp"
#include "test_support.hpp"

using namespace ringflow;
using namespace ringflow::demo_kernels;

namespace {

struct rings {
  ringflow::ring_storage req, rep;
  ring_producer client_out;
  ring_consumer kernel_in;
  ring_producer kernel_out;
  ring_consumer client_in;
  explicit rings(ring_config rq = {}, ring_config rp = {})
      : req(rq),
        rep(rp),
        client_out(req.region(), req.producer_scratch()),
        kernel_in(req.region()),
        kernel_out(rep.region(), rep.producer_scratch()),
        client_in(rep.region()) {}

  void push(type_id t, const std::vector<std::uint8_t>& payload, std::uint64_t id, std::uint64_t deadline = 0) {
    ring_message m{};
    m.header.type_id = t;
    m.header.correlation_id = id;
    m.header.deadline_ns = deadline;
    m.header.trace_id[0] = 0xAB;
    m.header.span_id[7] = 0xCD;
    m.payload = payload.data();
    m.payload_len = static_cast<std::uint32_t>(payload.size());
    REQUIRE(client_out.try_push(m) == ring_status::ok);
  }
  struct got {
    slot_header h;
    std::vector<std::uint8_t> payload;
  };
  got pop() {
    const slot_header* h = client_in.try_peek();
    REQUIRE(h);
    got g{*h, {}};
    const auto* p = client_in.payload(h);
    g.payload.assign(p, p + h->payload_len);
    client_in.release();
    return g;
  }
};

std::string error_detail(const std::vector<std::uint8_t>& p) {
  REQUIRE(test::verify<wire::ErrorReply>(p));
  const auto* e = wire::GetErrorReply(p.data());
  return e->detail() ? e->detail()->str() : "";
}

// A test kernel whose handler fails on odd payload sizes.
struct PickyKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "picky";
  static status handle(const msg_view& in, reply_writer& out) {
    if (in.payload.size % 2) return out.fail(status::invalid_argument, "picky: odd size");
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

}  // namespace

TEST_CASE("saxpy computes a*x+y into a verifiable SaxpyReply", "[kernel]") {
  rings r;
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(2.0f, {1, 2, 3}, {10, 20, 30}), 7);
  serve_tally t;
  REQUIRE(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(t.served == 1);
  const auto g = r.pop();
  CHECK(g.h.status == 0);
  CHECK(g.h.correlation_id == 7);
  CHECK(g.h.type_id == msg::SaxpyReply::type_id_);
  CHECK(g.h.trace_id[0] == 0xAB);  // trace context carried through the kernel
  CHECK(g.h.span_id[7] == 0xCD);
  REQUIRE(test::verify<demo::SaxpyReply>(g.payload));
  const auto* y = demo::GetSaxpyReply(g.payload.data())->y();
  REQUIRE(y->size() == 3);
  CHECK(y->Get(0) == 12.0f);
  CHECK(y->Get(1) == 24.0f);
  CHECK(y->Get(2) == 36.0f);
  CHECK(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::idle);
}

TEST_CASE("large saxpy replies go through the response arena", "[kernel][arena]") {
  ring_config rp;
  rp.arena_bytes = 1 << 16;
  rings r({.capacity = 8, .slot_size = 256, .arena_bytes = 1 << 16, .head_batch = 0}, rp);
  std::vector<float> x(2000), y(2000);
  for (int i = 0; i < 2000; ++i) x[i] = static_cast<float>(i), y[i] = 1.0f;
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(0.5f, x, y), 1);
  serve_tally t;
  REQUIRE(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  const auto g = r.pop();
  CHECK(g.h.status == 0);
  CHECK((g.h.flags & slot_flags::arena) != 0);
  REQUIRE(test::verify<demo::SaxpyReply>(g.payload));
  const auto* out = demo::GetSaxpyReply(g.payload.data())->y();
  REQUIRE(out->size() == 2000);
  for (int i = 0; i < 2000; ++i) REQUIRE(out->Get(i) == 0.5f * static_cast<float>(i) + 1.0f);
}

TEST_CASE("a reply larger than the response ring can carry is a reply_too_large error", "[kernel]") {
  rings r({.capacity = 8, .slot_size = 256, .arena_bytes = 1 << 16, .head_batch = 0}, {});  // replies: no arena
  std::vector<float> x(1000, 1.0f);
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, x, x), 3);
  serve_tally t;
  REQUIRE(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(t.rejected == 1);
  const auto g = r.pop();
  CHECK(static_cast<status>(g.h.status) == status::reply_too_large);
  CHECK(g.h.type_id == msg::ErrorReply::type_id_);
  CHECK((g.h.flags & slot_flags::error_reply) != 0);
  CHECK_THAT(error_detail(g.payload), Catch::Contains("arena"));
}

TEST_CASE("a request of the wrong type is rejected with an error reply, and serving goes on", "[kernel]") {
  rings r;
  r.push(msg::Echo::type_id_, test::echo_request(1, 8), 1);
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1}, {1}), 2);
  serve_tally t;
  REQUIRE(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  REQUIRE(serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(t.rejected == 1);
  const auto bad = r.pop();
  CHECK(static_cast<status>(bad.h.status) == status::wrong_type);
  CHECK(bad.h.correlation_id == 1);
  CHECK_THAT(error_detail(bad.payload), Catch::Contains("type"));
  const auto good = r.pop();
  CHECK(good.h.status == 0);
  CHECK(good.h.correlation_id == 2);
}

TEST_CASE("a handler error becomes an error reply with its detail", "[kernel]") {
  rings r;
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1, 2}, {1}), 4);  // x, y lengths differ
  r.push(msg::SaxpyRequest::type_id_, std::vector<std::uint8_t>(16, 0xFF), 5);     // not a table
  serve_tally t;
  (void)serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t);
  (void)serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, 0, t);
  CHECK(t.handler_errors == 2);
  const auto a = r.pop();
  CHECK(static_cast<status>(a.h.status) == status::invalid_argument);
  CHECK(error_detail(a.payload) == "saxpy: x and y differ in length");
  const auto b = r.pop();
  CHECK(static_cast<status>(b.h.status) == status::malformed);
  // Custom kernels work the same way.
  r.push(msg::Echo::type_id_, std::vector<std::uint8_t>(3, 1), 6);
  (void)serve_one<PickyKernel>(r.kernel_in, r.kernel_out, 0, t);
  CHECK(error_detail(r.pop().payload) == "picky: odd size");
}

TEST_CASE("past-deadline requests get deadline_exceeded without running the handler", "[kernel]") {
  rings r;
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1}, {1}), 1, /*deadline*/ 100);
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1}, {1}), 2, /*deadline*/ 1000);
  serve_tally t;
  (void)serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, /*now*/ 500, t);
  (void)serve_one<SaxpyKernel>(r.kernel_in, r.kernel_out, /*now*/ 500, t);
  CHECK(static_cast<status>(r.pop().h.status) == status::deadline_exceeded);
  CHECK(r.pop().h.status == 0);
}

TEST_CASE("a full response ring blocks serving without consuming the request", "[kernel]") {
  rings r({}, {.capacity = 2, .slot_size = 256, .arena_bytes = 0, .head_batch = 1});
  for (std::uint64_t i = 0; i < 3; ++i) r.push(msg::Echo::type_id_, test::echo_request(i, 4), i);
  serve_tally t;
  CHECK(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::blocked);
  CHECK(r.pop().h.correlation_id == 0);
  r.client_in.publish();
  CHECK(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  CHECK(r.pop().h.correlation_id == 1);
  CHECK(r.pop().h.correlation_id == 2);
  CHECK(t.served == 3);
}

TEST_CASE("tiny reply slots without an arena still carry an error reply (no endless block)", "[kernel]") {
  // 128-byte slots: 64 bytes of payload room, less than a full ErrorReply with detail.
  rings r({}, {.capacity = 4, .slot_size = 128, .arena_bytes = 0, .head_batch = 0});
  r.push(msg::SaxpyRequest::type_id_, test::saxpy_request(1.0f, {1}, {1}), 1);
  serve_tally t;
  REQUIRE(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t) == serve_result::served);
  const auto g = r.pop();
  CHECK(static_cast<status>(g.h.status) == status::wrong_type);
  REQUIRE(test::verify<wire::ErrorReply>(g.payload));
  CHECK(wire::GetErrorReply(g.payload.data())->code() == static_cast<std::uint16_t>(status::wrong_type));
}

TEST_CASE("echo replies byte for byte", "[kernel]") {
  rings r;
  const auto req = test::echo_request(42, 100);
  r.push(msg::Echo::type_id_, req, 9);
  serve_tally t;
  (void)serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t);
  const auto g = r.pop();
  CHECK(g.payload == req);
  CHECK(g.h.type_id == msg::Echo::type_id_);
}

TEST_CASE("the score model prices, scores and decides", "[kernel][score]") {
  rings r;
  // Tier 3, strongly positive features -> high score, approved, discount 0.06 + 0.1 * score.
  std::vector<demo::Feature> strong;
  for (std::uint32_t id = 0; id < 64; ++id)
    if (ScoreKernel::weight(id) > 0.5f) strong.emplace_back(id, 10.0f);
  REQUIRE_FALSE(strong.empty());
  r.push(msg::ScoreRequest::type_id_, test::score_request(1, 100.0, 10, 3, strong), 1);
  // No features: score = squash(-0.25) = 0.4; tier 0 -> discount 0.04.
  r.push(msg::ScoreRequest::type_id_, test::score_request(2, 50.0, 2, 0, {}), 2);
  // Quantity 0 -> not approved, reason 2.
  r.push(msg::ScoreRequest::type_id_, test::score_request(3, 50.0, 0, 0, {}), 3);
  serve_tally t;
  for (int i = 0; i < 3; ++i) (void)serve_one<ScoreKernel>(r.kernel_in, r.kernel_out, 0, t);
  const auto a = r.pop();
  REQUIRE(test::verify<demo::ScoreReply>(a.payload));
  const auto* ra = demo::GetScoreReply(a.payload.data());
  CHECK(ra->request_id() == 1);
  CHECK(ra->score() > 0.9f);
  CHECK(ra->approved());
  CHECK(ra->reason() == 0);
  CHECK(ra->price() == Approx(1000.0 * (1.0 - (0.06 + 0.1 * static_cast<double>(ra->score())))));
  const auto b = r.pop();
  const auto* rb = demo::GetScoreReply(b.payload.data());
  CHECK(rb->score() == Approx(0.4f));
  CHECK(rb->approved());
  CHECK(rb->price() == Approx(100.0 * (1.0 - 0.1 * 0.4)));
  const auto c = r.pop();
  const auto* rc = demo::GetScoreReply(c.payload.data());
  CHECK_FALSE(rc->approved());
  CHECK(rc->reason() == 2);
  CHECK(rc->price() == 0.0);
}

TEST_CASE("a request header whose payload lies outside its ring is answered malformed, never read", "[kernel]") {
  for (const bool staged : {false, true}) {
    INFO("staged: " << staged);
    rings r({8, 256, 1024, 0}, {8, 256, 1024, 0});
    r.push(msg::Echo::type_id_, test::echo_request(1, 8), 1);
    r.push(msg::Echo::type_id_, test::echo_request(2, 8), 2);
    r.push(msg::Echo::type_id_, test::echo_request(3, 8), 3);
    // What a stray write (or a faulty peer) could leave in the headers: an arena payload past the
    // arena's end, and an inline length past the slot.
    slot_header* first = r.req.region().slot(0);
    first->flags = slot_flags::arena;
    first->arena_offset = 1000;
    first->payload_len = 64;
    r.req.region().slot(1)->payload_len = 4096;
    alignas(16) std::uint8_t req_buf[512], rep_buf[512];
    const serve_staging staging{req_buf, sizeof req_buf, rep_buf, sizeof rep_buf};
    serve_tally t;
    for (int i = 0; i < 3; ++i)
      REQUIRE(serve_one<EchoKernel>(r.kernel_in, r.kernel_out, 0, t, staged ? &staging : nullptr) ==
              serve_result::served);
    for (std::uint64_t id : {1u, 2u}) {
      const auto g = r.pop();
      CHECK(g.h.correlation_id == id);
      CHECK(g.h.status == static_cast<std::uint16_t>(status::malformed));
      CHECK(error_detail(g.payload) == "request payload lies outside its ring");
    }
    const auto ok = r.pop();  // the kernel goes on serving
    CHECK(ok.h.status == 0);
    CHECK(ok.payload == test::echo_request(3, 8));
    CHECK(t.rejected == 2);
  }
}

TEST_CASE("staged serving (device backends) replies exactly as in-place serving", "[kernel]") {
  rings a({8, 256, 4096, 0}, {8, 256, 4096, 0}), b({8, 256, 4096, 0}, {8, 256, 4096, 0});
  alignas(16) std::uint8_t req_buf[4096 + 256], rep_buf[4096];
  const serve_staging staging{req_buf, sizeof req_buf, rep_buf, sizeof rep_buf};
  const std::vector<std::vector<std::uint8_t>> payloads = {test::echo_request(1, 10), test::echo_request(2, 1500),
                                                           test::saxpy_request(2.0f, {1, 2, 3}, {4, 5, 6})};
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const type_id t = i < 2 ? msg::Echo::type_id_ : msg::SaxpyRequest::type_id_;
    a.push(t, payloads[i], i);
    b.push(t, payloads[i], i);
    serve_tally ta, tb;
    REQUIRE(serve_one<EchoKernel>(a.kernel_in, a.kernel_out, 0, ta) == serve_result::served);
    REQUIRE(serve_one<EchoKernel>(b.kernel_in, b.kernel_out, 0, tb, &staging) == serve_result::served);
    const auto ga = a.pop(), gb = b.pop();
    CHECK(std::memcmp(&ga.h, &gb.h, sizeof(slot_header)) == 0);  // every header byte, seq included
    CHECK(ga.payload == gb.payload);
  }
}

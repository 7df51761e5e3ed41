// Ingress validation: every typed rejection, and the accepted path.
#include <flatbuffers/flatbuffers.h>
#include <catch2/catch.hpp>

#include <vector>

#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ingress.hpp"
#include "ringflow/messages.hpp"

using namespace ringflow;

namespace {

std::vector<std::uint8_t> saxpy_payload(std::size_t n = 4) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<float> x(n, 1.0f), y(n, 2.0f);
  auto xo = b.CreateVector(x);
  auto yo = b.CreateVector(y);
  demo::FinishSaxpyRequestBuffer(b, demo::CreateSaxpyRequest(b, 3.0f, xo, yo));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

envelope_fields saxpy_envelope(const std::vector<std::uint8_t>& payload) {
  envelope_fields f;
  f.type = msg::SaxpyRequest::type_id_;
  f.correlation_id = 9;
  f.sequence = 3;
  f.tenant = "acme";
  f.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  f.payload = payload;
  return f;
}

ingress_result check(const std::vector<std::uint8_t>& bytes, const ingress_limits& limits = {},
                     std::uint64_t now = 1'000'000) {
  return validate_ingress(bytes, payload_registry::demo(), limits, now);
}

}  // namespace

TEST_CASE("a valid envelope passes ingress with all fields", "[ingress]") {
  const auto payload = saxpy_payload();
  const auto bytes = encode_envelope(saxpy_envelope(payload));
  const auto r = check(bytes);
  REQUIRE(r);
  CHECK(r.detail.empty());
  CHECK(r.message.type == msg::SaxpyRequest::type_id_);
  CHECK(r.message.correlation_id == 9);
  CHECK(r.message.sequence == 3);
  CHECK(r.message.tenant == "acme");
  CHECK(r.message.schema_version == 1);
  REQUIRE(r.message.trace.valid);
  CHECK(format_traceparent(r.message.trace) == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(r.message.payload.size == payload.size());
  CHECK(std::equal(payload.begin(), payload.end(), r.message.payload.data));
  // The payload is readable in place with the portable view.
  CHECK(ringflow::view_of<msg::SaxpyRequest>(r.message.payload).a() == 3.0f);
}

TEST_CASE("malformed envelopes are rejected as malformed_envelope", "[ingress]") {
  const auto payload = saxpy_payload();
  auto bytes = encode_envelope(saxpy_envelope(payload));
  SECTION("empty input") { CHECK(check({}).error == ingress_errc::malformed_envelope); }
  SECTION("wrong identifier") {
    bytes[4] = 'X';
    const auto r = check(bytes);
    CHECK(r.error == ingress_errc::malformed_envelope);
    CHECK_THAT(r.detail, Catch::Contains("RFEV"));
  }
  SECTION("truncated") {
    bytes.resize(bytes.size() / 2);
    CHECK(check(bytes).error == ingress_errc::malformed_envelope);
  }
  SECTION("root offset out of range") {
    bytes[0] = 0xFF;
    bytes[1] = 0xFF;
    CHECK(check(bytes).error == ingress_errc::malformed_envelope);
  }
  SECTION("garbage") {
    std::vector<std::uint8_t> g(64, 0xAB);
    g[4] = 'R', g[5] = 'F', g[6] = 'E', g[7] = 'V';
    CHECK(check(g).error == ingress_errc::malformed_envelope);
  }
}

TEST_CASE("unknown payload types are rejected as unknown_type", "[ingress]") {
  const auto payload = saxpy_payload();
  auto f = saxpy_envelope(payload);
  f.type = type_id_of("NOPE");
  const auto r = check(encode_envelope(f));
  CHECK(r.error == ingress_errc::unknown_type);
  CHECK_THAT(r.detail, Catch::Contains("NOPE"));
}

TEST_CASE("payload problems are typed", "[ingress]") {
  SECTION("payload identifier differs from the envelope type") {
    const auto payload = saxpy_payload();
    auto f = saxpy_envelope(payload);
    f.type = msg::ScoreRequest::type_id_;
    CHECK(check(encode_envelope(f)).error == ingress_errc::type_mismatch);
  }
  SECTION("payload absent") {
    const std::vector<std::uint8_t> none;
    CHECK(check(encode_envelope(saxpy_envelope(none))).error == ingress_errc::malformed_payload);
  }
  SECTION("payload fails its schema's verifier") {
    // Make x's element count huge: find the u32 count 4 followed by 1.0f (0x3f800000).
    auto bad = saxpy_payload();
    bool corrupted = false;
    for (std::size_t i = 8; i + 8 <= bad.size() && !corrupted; ++i) {
      if (bad[i] == 4 && bad[i + 1] == 0 && bad[i + 2] == 0 && bad[i + 3] == 0 && bad[i + 6] == 0x80 &&
          bad[i + 7] == 0x3f) {
        bad[i + 3] = 0x7F;
        corrupted = true;
      }
    }
    REQUIRE(corrupted);
    const auto r = check(encode_envelope(saxpy_envelope(bad)));
    CHECK(r.error == ingress_errc::malformed_payload);
    CHECK_THAT(r.detail, Catch::Contains("SaxpyRequest"));
  }
}

TEST_CASE("size limits give oversize", "[ingress]") {
  const auto payload = saxpy_payload(1000);
  const auto bytes = encode_envelope(saxpy_envelope(payload));
  ingress_limits small;
  small.max_envelope_bytes = 1024;
  CHECK(check(bytes, small).error == ingress_errc::oversize);
  ingress_limits payload_limit;
  payload_limit.max_payload_bytes = 512;
  const auto r = check(bytes, payload_limit);
  CHECK(r.error == ingress_errc::oversize);
  CHECK_THAT(r.detail, Catch::Contains("payload"));
}

TEST_CASE("schema versions outside the supported range are rejected", "[ingress]") {
  const auto payload = saxpy_payload();
  auto f = saxpy_envelope(payload);
  f.schema_version = 2;
  CHECK(check(encode_envelope(f)).error == ingress_errc::unsupported_schema_version);
  f.schema_version = 0;
  CHECK(check(encode_envelope(f)).error == ingress_errc::unsupported_schema_version);
  ingress_limits newer;
  newer.max_schema_version = 2;
  f.schema_version = 2;
  CHECK(check(encode_envelope(f), newer));
}

TEST_CASE("deadlines in the past are rejected, no deadline never is", "[ingress]") {
  const auto payload = saxpy_payload();
  auto f = saxpy_envelope(payload);
  f.deadline_ns = 500;
  CHECK(check(encode_envelope(f), {}, 1000).error == ingress_errc::deadline_passed);
  CHECK(check(encode_envelope(f), {}, 500).error == ingress_errc::deadline_passed);
  CHECK(check(encode_envelope(f), {}, 499));
  f.deadline_ns = 0;
  CHECK(check(encode_envelope(f), {}, ~0ull));
}

TEST_CASE("the verifier's depth and table limits are applied", "[ingress]") {
  const auto payload = saxpy_payload();
  const auto bytes = encode_envelope(saxpy_envelope(payload));
  // The envelope is one table at depth 1 and so is each demo payload: limits of 1 pass, 0 fail.
  ingress_limits one;
  one.max_tables = 1;
  one.max_depth = 1;
  CHECK(check(bytes, one));
  ingress_limits no_tables;
  no_tables.max_tables = 0;
  CHECK(check(bytes, no_tables).error == ingress_errc::malformed_envelope);
  ingress_limits no_depth;
  no_depth.max_depth = 0;
  CHECK(check(bytes, no_depth).error == ingress_errc::malformed_envelope);
}

TEST_CASE("error codes have a category and messages", "[ingress]") {
  const std::error_code ec = ingress_errc::unknown_type;
  CHECK(ec.category().name() == std::string("ringflow.ingress"));
  CHECK(ec.message() == "unknown message type");
}

TEST_CASE("traceparent parsing follows W3C trace-context", "[ingress][trace]") {
  trace_context t;
  CHECK(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t));
  CHECK(t.valid);
  CHECK(t.trace_id[0] == 0x4b);
  CHECK(t.span_id[7] == 0xb7);
  CHECK(t.flags == 1);
  CHECK_FALSE(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", t));    // zero trace id
  CHECK_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", t));    // zero parent
  CHECK_FALSE(parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t));    // version ff
  CHECK_FALSE(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", t));    // uppercase
  CHECK_FALSE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", t));  // v00 + extra
  CHECK(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", t));   // newer version
  CHECK_FALSE(parse_traceparent("garbage", t));
  CHECK_FALSE(t.valid);

  // A malformed traceparent is ignored, not an ingress error.
  const auto payload = saxpy_payload();
  auto f = saxpy_envelope(payload);
  f.traceparent = "not-a-traceparent";
  const auto r = check(encode_envelope(f));
  REQUIRE(r);
  CHECK_FALSE(r.message.trace.valid);
}

TEST_CASE("the registry rejects duplicates and lists the demo types", "[ingress]") {
  payload_registry r;
  r.add(1, "a", [](flatbuffers::Verifier&) { return true; });
  CHECK_THROWS_AS(r.add(1, "b", [](flatbuffers::Verifier&) { return true; }), std::invalid_argument);
  CHECK_THROWS_AS(r.add(2, "c", nullptr), std::invalid_argument);
  CHECK(payload_registry::demo().find(msg::ScoreRequest::type_id_) != nullptr);
  CHECK(payload_registry::demo().find(msg::Echo::type_id_)->name == "ringflow.demo.Echo");
  CHECK(payload_registry::demo().find(msg::Trade::type_id_)->name == "ringflow.demo.Trade");
  CHECK(payload_registry::demo().find(msg::VwapReply::type_id_) != nullptr);
  CHECK(payload_registry::demo().entries().size() == 8);  // echo, saxpy x2, score x2, trade, vwap reply, error
}

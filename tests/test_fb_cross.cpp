// Bit-compatibility of ringflow's portable view/writer with flatc-generated code, both ways,
// across every schema in messages/schemas, with randomized values and absent (default) fields.
#include <flatbuffers/flatbuffers.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ringflow/fb_writer.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/envelope_generated.h"
#include "ringflow/generated/error_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/messages.hpp"

using namespace ringflow;
namespace gen = ringflow::demo;
namespace wire = ringflow::wire;

// ---- descriptors mirror the generated code (a schema edit not mirrored in messages.hpp fails here)
#define FIELD_MATCHES(Gen, Desc, VT, F) static_assert(Gen::VT == 4 + 2 * msg::Desc::fields_::F)
FIELD_MATCHES(wire::Envelope, Envelope, VT_SCHEMA_VERSION, schema_version);
FIELD_MATCHES(wire::Envelope, Envelope, VT_TYPE_ID, type_id);
FIELD_MATCHES(wire::Envelope, Envelope, VT_CORRELATION_ID, correlation_id);
FIELD_MATCHES(wire::Envelope, Envelope, VT_SEQUENCE, sequence);
FIELD_MATCHES(wire::Envelope, Envelope, VT_TENANT, tenant);
FIELD_MATCHES(wire::Envelope, Envelope, VT_DEADLINE_NS, deadline_ns);
FIELD_MATCHES(wire::Envelope, Envelope, VT_TRACEPARENT, traceparent);
FIELD_MATCHES(wire::Envelope, Envelope, VT_FLAGS, flags);
FIELD_MATCHES(wire::Envelope, Envelope, VT_PAYLOAD, payload);
FIELD_MATCHES(wire::ErrorReply, ErrorReply, VT_CODE, code);
FIELD_MATCHES(wire::ErrorReply, ErrorReply, VT_DETAIL, detail);
FIELD_MATCHES(gen::Echo, Echo, VT_SEQUENCE, sequence);
FIELD_MATCHES(gen::Echo, Echo, VT_BODY, body);
FIELD_MATCHES(gen::Echo, Echo, VT_NOTE, note);
FIELD_MATCHES(gen::SaxpyRequest, SaxpyRequest, VT_A, a);
FIELD_MATCHES(gen::SaxpyRequest, SaxpyRequest, VT_X, x);
FIELD_MATCHES(gen::SaxpyRequest, SaxpyRequest, VT_Y, y);
FIELD_MATCHES(gen::SaxpyReply, SaxpyReply, VT_Y, y);
FIELD_MATCHES(gen::ScoreRequest, ScoreRequest, VT_REQUEST_ID, request_id);
FIELD_MATCHES(gen::ScoreRequest, ScoreRequest, VT_QUOTE, quote);
FIELD_MATCHES(gen::ScoreRequest, ScoreRequest, VT_FEATURES, features);
FIELD_MATCHES(gen::ScoreRequest, ScoreRequest, VT_MAX_DISCOUNT, max_discount);
FIELD_MATCHES(gen::ScoreRequest, ScoreRequest, VT_SYMBOL, symbol);
FIELD_MATCHES(gen::ScoreReply, ScoreReply, VT_REQUEST_ID, request_id);
FIELD_MATCHES(gen::ScoreReply, ScoreReply, VT_SCORE, score);
FIELD_MATCHES(gen::ScoreReply, ScoreReply, VT_PRICE, price);
FIELD_MATCHES(gen::ScoreReply, ScoreReply, VT_APPROVED, approved);
FIELD_MATCHES(gen::ScoreReply, ScoreReply, VT_REASON, reason);
static_assert(sizeof(gen::Quote) == sizeof(msg::Quote) && alignof(gen::Quote) == alignof(msg::Quote));
static_assert(sizeof(gen::Feature) == sizeof(msg::Feature));

namespace {

type_id id_of(const char* ident) {
  type_id t = 0;
  std::memcpy(&t, ident, 4);
  return t;
}

struct rng {
  std::mt19937_64 gen;
  explicit rng(std::uint64_t seed) : gen(seed) {}
  bool coin(double p = 0.5) { return std::bernoulli_distribution(p)(gen); }
  std::uint64_t u64() { return gen(); }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(gen() % n); }
  float f() { return std::uniform_real_distribution<float>(-1e6f, 1e6f)(gen); }
  double d() { return std::uniform_real_distribution<double>(-1e12, 1e12)(gen); }
  std::string str(std::uint32_t max) {
    std::string s(below(max + 1), ' ');
    for (auto& c : s) c = static_cast<char>('a' + below(26));
    return s;
  }
};

template <class Root>
bool verifies(const std::vector<std::uint8_t>& buf, const char* ident) {
  flatbuffers::Verifier v(buf.data(), buf.size());
  return v.VerifyBuffer<Root>(ident);
}

std::vector<std::uint8_t> finish_copy(flatbuffers::FlatBufferBuilder& b) {
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// 8-aligned scratch so writer output is aligned like ring slots.
struct out_buffer {
  alignas(8) std::uint8_t bytes[8192];
  std::vector<std::uint8_t> take(std::uint32_t n) const { return {bytes, bytes + n}; }
};

constexpr int kRounds = 300;

}  // namespace

TEST_CASE("type ids are the schemas' file identifiers", "[fb][cross]") {
  CHECK(msg::Envelope::type_id_ == id_of(wire::EnvelopeIdentifier()));
  CHECK(msg::ErrorReply::type_id_ == id_of(wire::ErrorReplyIdentifier()));
  CHECK(msg::Echo::type_id_ == id_of(gen::EchoIdentifier()));
  CHECK(msg::SaxpyRequest::type_id_ == id_of(gen::SaxpyRequestIdentifier()));
  CHECK(msg::SaxpyReply::type_id_ == id_of(gen::SaxpyReplyIdentifier()));
  CHECK(msg::ScoreRequest::type_id_ == id_of(gen::ScoreRequestIdentifier()));
  CHECK(msg::ScoreReply::type_id_ == id_of(gen::ScoreReplyIdentifier()));
  // Defaults match: an empty SaxpyRequest reads a == 1.0 through both.
  flatbuffers::FlatBufferBuilder b;
  gen::SaxpyRequestBuilder sb(b);
  b.Finish(sb.Finish());
  CHECK(flatbuffers::GetRoot<gen::SaxpyRequest>(b.GetBufferPointer())->a() == msg::SaxpyRequest::defaults_::a);
}

TEST_CASE("view reads flatc-built ScoreRequest with random and absent fields", "[fb][cross]") {
  rng r(GENERATE(1u, 2u, 3u));
  for (int round = 0; round < kRounds; ++round) {
    flatbuffers::FlatBufferBuilder b;
    const bool has_features = r.coin(0.7), has_symbol = r.coin(0.5), has_quote = r.coin(0.8);
    const bool has_id = r.coin(0.8), has_disc = r.coin(0.5);
    std::vector<gen::Feature> feats;
    for (std::uint32_t i = 0, n = r.below(20); i < n; ++i) feats.emplace_back(r.below(1000), r.f());
    const std::string symbol = r.str(12);
    const gen::Quote quote(r.d(), static_cast<std::uint32_t>(r.u64()), static_cast<std::uint8_t>(r.below(256)));
    const std::uint64_t id = r.u64();
    const float disc = r.f();
    auto fo = has_features ? b.CreateVectorOfStructs(feats) : 0;
    auto so = has_symbol ? b.CreateString(symbol) : 0;
    gen::ScoreRequestBuilder sb(b);
    if (has_id) sb.add_request_id(id);
    if (has_quote) sb.add_quote(&quote);
    if (has_features) sb.add_features(fo);
    if (has_disc) sb.add_max_discount(disc);
    if (has_symbol) sb.add_symbol(so);
    gen::FinishScoreRequestBuffer(b, sb.Finish());
    const auto buf = finish_copy(b);
    REQUIRE(verifies<gen::ScoreRequest>(buf, gen::ScoreRequestIdentifier()));
    const auto* g = gen::GetScoreRequest(buf.data());

    const fb::bytes_view bv{buf.data(), static_cast<std::uint32_t>(buf.size())};
    REQUIRE(fb::identifier(bv) == msg::ScoreRequest::type_id_);
    const auto v = ringflow::view_of<msg::ScoreRequest>(bv);
    REQUIRE(v.table_.valid());
    CHECK(v.request_id() == g->request_id());
    CHECK(v.max_discount() == g->max_discount());
    msg::Quote q{};
    REQUIRE(v.quote(q) == (g->quote() != nullptr));
    if (g->quote()) {
      CHECK(q.base_price == g->quote()->base_price());
      CHECK(q.quantity == g->quote()->quantity());
      CHECK(q.tier == g->quote()->tier());
      const auto sv = v.table_.get_struct_view(msg::ScoreRequest::fields_::quote, sizeof(msg::Quote));
      CHECK(sv.get<double>(0) == g->quote()->base_price());
      CHECK(sv.get<std::uint32_t>(8) == g->quote()->quantity());
    }
    const auto vf = v.features();
    const std::uint32_t gn = g->features() ? g->features()->size() : 0;
    REQUIRE(vf.size() == gn);
    for (std::uint32_t i = 0; i < gn; ++i) {
      CHECK(vf[i].id == g->features()->Get(i)->id());
      CHECK(vf[i].value == g->features()->Get(i)->value());
    }
    const auto s = v.symbol();
    if (g->symbol()) CHECK(std::string(s.data, s.size) == g->symbol()->str());
    else CHECK(s.empty());
  }
}

TEST_CASE("view reads flatc-built Echo, SaxpyRequest, SaxpyReply, ScoreReply, ErrorReply", "[fb][cross]") {
  rng r(GENERATE(11u, 12u));
  for (int round = 0; round < kRounds; ++round) {
    {  // Echo
      flatbuffers::FlatBufferBuilder b;
      std::vector<std::uint8_t> body(r.below(300));
      for (auto& x : body) x = static_cast<std::uint8_t>(r.below(256));
      const bool hb = r.coin(0.7), hn = r.coin(0.5), hs = r.coin(0.7);
      auto bo = hb ? b.CreateVector(body) : 0;
      auto no = hn ? b.CreateString(r.str(30)) : 0;
      gen::EchoBuilder eb(b);
      const std::uint64_t seq = r.u64();
      if (hs) eb.add_sequence(seq);
      if (hb) eb.add_body(bo);
      if (hn) eb.add_note(no);
      gen::FinishEchoBuffer(b, eb.Finish());
      const auto buf = finish_copy(b);
      REQUIRE(verifies<gen::Echo>(buf, gen::EchoIdentifier()));
      const auto* g = gen::GetEcho(buf.data());
      const auto v = ringflow::view_of<msg::Echo>({buf.data(), static_cast<std::uint32_t>(buf.size())});
      CHECK(v.sequence() == g->sequence());
      REQUIRE(v.body().size == (g->body() ? g->body()->size() : 0u));
      for (std::uint32_t i = 0; i < v.body().size; ++i) CHECK(v.body().data[i] == g->body()->Get(i));
      CHECK(std::string(v.note().data ? v.note().data : "", v.note().size) == (g->note() ? g->note()->str() : ""));
    }
    {  // SaxpyRequest (a may be absent -> default 1.0)
      flatbuffers::FlatBufferBuilder b;
      std::vector<float> x(r.below(64)), y(r.below(64));
      for (auto& e : x) e = r.f();
      for (auto& e : y) e = r.f();
      const bool ha = r.coin(0.6), hx = r.coin(0.8), hy = r.coin(0.8);
      auto xo = hx ? b.CreateVector(x) : 0;
      auto yo = hy ? b.CreateVector(y) : 0;
      gen::SaxpyRequestBuilder sb(b);
      const float a = r.f();
      if (ha) sb.add_a(a);
      if (hx) sb.add_x(xo);
      if (hy) sb.add_y(yo);
      gen::FinishSaxpyRequestBuffer(b, sb.Finish());
      const auto buf = finish_copy(b);
      const auto* g = gen::GetSaxpyRequest(buf.data());
      const auto v = ringflow::view_of<msg::SaxpyRequest>({buf.data(), static_cast<std::uint32_t>(buf.size())});
      CHECK(v.a() == g->a());
      REQUIRE(v.x().size() == (g->x() ? g->x()->size() : 0u));
      REQUIRE(v.y().size() == (g->y() ? g->y()->size() : 0u));
      for (std::uint32_t i = 0; i < v.x().size(); ++i) CHECK(v.x()[i] == g->x()->Get(i));
      for (std::uint32_t i = 0; i < v.y().size(); ++i) CHECK(v.y()[i] == g->y()->Get(i));
    }
    {  // ScoreReply: absent approved -> false, bool read as byte
      flatbuffers::FlatBufferBuilder b;
      gen::ScoreReplyBuilder sb(b);
      const std::uint64_t id = r.u64();
      const float score = r.f();
      const double price = r.d();
      const bool ap = r.coin();
      const auto reason = static_cast<std::uint16_t>(r.below(65536));
      if (r.coin(0.8)) sb.add_request_id(id);
      if (r.coin(0.8)) sb.add_score(score);
      if (r.coin(0.8)) sb.add_price(price);
      if (r.coin(0.8)) sb.add_approved(ap);
      if (r.coin(0.8)) sb.add_reason(reason);
      gen::FinishScoreReplyBuffer(b, sb.Finish());
      const auto buf = finish_copy(b);
      const auto* g = gen::GetScoreReply(buf.data());
      const auto v = ringflow::view_of<msg::ScoreReply>({buf.data(), static_cast<std::uint32_t>(buf.size())});
      CHECK(v.request_id() == g->request_id());
      CHECK(v.score() == g->score());
      CHECK(v.price() == g->price());
      CHECK(v.approved() == g->approved());
      CHECK(v.reason() == g->reason());
    }
    {  // ErrorReply
      flatbuffers::FlatBufferBuilder b;
      const std::string d = r.str(80);
      auto dofs = b.CreateString(d);
      wire::ErrorReplyBuilder eb(b);
      const auto code = static_cast<std::uint16_t>(1 + r.below(11));
      eb.add_code(code);
      eb.add_detail(dofs);
      wire::FinishErrorReplyBuffer(b, eb.Finish());
      const auto buf = finish_copy(b);
      const auto v = ringflow::view_of<msg::ErrorReply>({buf.data(), static_cast<std::uint32_t>(buf.size())});
      CHECK(v.code() == code);
      CHECK(std::string(v.detail().data, v.detail().size) == d);
    }
  }
}

TEST_CASE("view reads a flatc-built Envelope and its nested payload", "[fb][cross]") {
  flatbuffers::FlatBufferBuilder pb;
  auto x = pb.CreateVector(std::vector<float>{1, 2, 3});
  auto y = pb.CreateVector(std::vector<float>{4, 5, 6});
  gen::FinishSaxpyRequestBuffer(pb, gen::CreateSaxpyRequest(pb, 2.0f, x, y));
  flatbuffers::FlatBufferBuilder b;
  auto tenant = b.CreateString("acme");
  auto tp = b.CreateString("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto payload = b.CreateVector(pb.GetBufferPointer(), pb.GetSize());
  wire::FinishEnvelopeBuffer(
      b, wire::CreateEnvelope(b, 1, msg::SaxpyRequest::type_id_, 42, 7, tenant, 123456789, tp, 5, payload));
  const auto buf = finish_copy(b);
  const auto env = ringflow::view_of<msg::Envelope>({buf.data(), static_cast<std::uint32_t>(buf.size())});
  CHECK(env.schema_version() == 1);
  CHECK(env.type_id() == msg::SaxpyRequest::type_id_);
  CHECK(env.correlation_id() == 42);
  CHECK(env.sequence() == 7);
  CHECK(env.tenant().equals("acme", 4));
  CHECK(env.deadline_ns() == 123456789);
  CHECK(env.traceparent().size == 55);
  CHECK(env.flags() == 5);
  const auto inner = ringflow::view_of<msg::SaxpyRequest>(env.payload());
  CHECK(inner.a() == 2.0f);
  REQUIRE(inner.x().size() == 3);
  CHECK(inner.x()[2] == 3.0f);
  CHECK(inner.y()[0] == 4.0f);
}

TEST_CASE("writer output verifies and reads back through generated code", "[fb][cross]") {
  rng r(GENERATE(21u, 22u, 23u));
  out_buffer out;
  for (int round = 0; round < kRounds; ++round) {
    {  // ScoreReply: scalars incl. bool and double, random presence
      fb::builder b(out.bytes, sizeof out.bytes);
      REQUIRE(b.begin(msg::ScoreReply::type_id_, msg::ScoreReply::num_fields_, msg::ScoreReply::inline_max_));
      const bool hi = r.coin(0.7), hs = r.coin(0.7), hp = r.coin(0.7), ha = r.coin(0.7), hr = r.coin(0.7);
      const std::uint64_t id = r.u64();
      const float score = r.f();
      const double price = r.d();
      const bool ap = r.coin();
      const auto reason = static_cast<std::uint16_t>(r.below(65536));
      // Fields in random order: layout must not depend on it.
      int order[5] = {0, 1, 2, 3, 4};
      std::shuffle(order, order + 5, r.gen);
      for (int f : order) {
        if (f == 0 && hi) REQUIRE(b.add<std::uint64_t>(msg::ScoreReply::fields_::request_id, id));
        if (f == 1 && hs) REQUIRE(b.add<float>(msg::ScoreReply::fields_::score, score));
        if (f == 2 && hp) REQUIRE(b.add<double>(msg::ScoreReply::fields_::price, price));
        if (f == 3 && ha) REQUIRE(b.add<bool>(msg::ScoreReply::fields_::approved, ap));
        if (f == 4 && hr) REQUIRE(b.add<std::uint16_t>(msg::ScoreReply::fields_::reason, reason));
      }
      const std::uint32_t n = b.finish();
      REQUIRE(n > 0);
      const auto buf = out.take(n);
      REQUIRE(verifies<gen::ScoreReply>(buf, gen::ScoreReplyIdentifier()));
      const auto* g = gen::GetScoreReply(buf.data());
      CHECK(g->request_id() == (hi ? id : 0));
      CHECK(g->score() == (hs ? score : 0.0f));
      CHECK(g->price() == (hp ? price : 0.0));
      CHECK(g->approved() == (ha ? ap : false));
      CHECK(g->reason() == (hr ? reason : 0));
    }
    {  // ScoreRequest: struct field, vector of structs, string, default float
      fb::builder b(out.bytes, sizeof out.bytes);
      REQUIRE(b.begin(msg::ScoreRequest::type_id_, msg::ScoreRequest::num_fields_, msg::ScoreRequest::inline_max_));
      msg::Quote q{r.d(), static_cast<std::uint32_t>(r.u64()), static_cast<std::uint8_t>(r.below(256)), {}};
      std::vector<msg::Feature> feats(r.below(30));
      for (auto& f : feats) f = {r.below(1000), r.f()};
      const std::string sym = r.str(20);
      const bool hq = r.coin(0.8), hf = r.coin(0.8), hs = r.coin(0.6), hd = r.coin(0.5);
      const float disc = r.f();
      if (hs)
        REQUIRE(b.add_string(msg::ScoreRequest::fields_::symbol, sym.data(), static_cast<std::uint32_t>(sym.size())));
      if (hf)
        REQUIRE(b.add_vector<msg::Feature>(msg::ScoreRequest::fields_::features, feats.data(),
                                           static_cast<std::uint32_t>(feats.size())));
      if (hq) REQUIRE(b.add<msg::Quote>(msg::ScoreRequest::fields_::quote, q));
      if (hd) REQUIRE(b.add<float>(msg::ScoreRequest::fields_::max_discount, disc));
      REQUIRE(b.add<std::uint64_t>(msg::ScoreRequest::fields_::request_id, 99));
      const std::uint32_t n = b.finish();
      REQUIRE(n > 0);
      const auto buf = out.take(n);
      REQUIRE(verifies<gen::ScoreRequest>(buf, gen::ScoreRequestIdentifier()));
      const auto* g = gen::GetScoreRequest(buf.data());
      CHECK(g->request_id() == 99);
      CHECK(g->max_discount() == (hd ? disc : 0.25f));
      REQUIRE((g->quote() != nullptr) == hq);
      if (hq) {
        CHECK(g->quote()->base_price() == q.base_price);
        CHECK(g->quote()->quantity() == q.quantity);
        CHECK(g->quote()->tier() == q.tier);
      }
      REQUIRE((g->features() != nullptr) == hf);
      if (hf) {
        REQUIRE(g->features()->size() == feats.size());
        for (std::size_t i = 0; i < feats.size(); ++i) {
          CHECK(g->features()->Get(static_cast<flatbuffers::uoffset_t>(i))->id() == feats[i].id);
          CHECK(g->features()->Get(static_cast<flatbuffers::uoffset_t>(i))->value() == feats[i].value);
        }
      }
      if (hs) CHECK(g->symbol()->str() == sym);
      else CHECK(g->symbol() == nullptr);
    }
    {  // SaxpyRequest/Reply, Echo (bytes + string), ErrorReply
      std::vector<float> x(r.below(100));
      for (auto& e : x) e = r.f();
      fb::builder b(out.bytes, sizeof out.bytes);
      REQUIRE(b.begin(msg::SaxpyReply::type_id_, msg::SaxpyReply::num_fields_, msg::SaxpyReply::inline_max_));
      auto yo = b.add_vector<float>(msg::SaxpyReply::fields_::y, static_cast<std::uint32_t>(x.size()));
      REQUIRE(yo);
      for (std::uint32_t i = 0; i < x.size(); ++i) yo.set(i, x[i]);
      auto buf = out.take(b.finish());
      REQUIRE(verifies<gen::SaxpyReply>(buf, gen::SaxpyReplyIdentifier()));
      const auto* gy = gen::GetSaxpyReply(buf.data())->y();
      REQUIRE(gy->size() == x.size());
      for (std::uint32_t i = 0; i < x.size(); ++i) CHECK(gy->Get(i) == x[i]);

      fb::builder e(out.bytes, sizeof out.bytes);
      REQUIRE(e.begin(msg::Echo::type_id_, msg::Echo::num_fields_, msg::Echo::inline_max_));
      std::vector<std::uint8_t> body(r.below(200));
      for (auto& c : body) c = static_cast<std::uint8_t>(r.below(256));
      const std::string note = r.str(40);
      REQUIRE(e.add_bytes(msg::Echo::fields_::body, body.data(), static_cast<std::uint32_t>(body.size())));
      REQUIRE(e.add_string(msg::Echo::fields_::note, note.data(), static_cast<std::uint32_t>(note.size())));
      REQUIRE(e.add<std::uint64_t>(msg::Echo::fields_::sequence, 5));
      buf = out.take(e.finish());
      REQUIRE(verifies<gen::Echo>(buf, gen::EchoIdentifier()));
      const auto* ge = gen::GetEcho(buf.data());
      CHECK(ge->sequence() == 5);
      CHECK(std::vector<std::uint8_t>(ge->body()->begin(), ge->body()->end()) == body);
      CHECK(ge->note()->str() == note);
    }
  }
}

TEST_CASE("writer builds a verifiable Envelope with a nested payload", "[fb][cross]") {
  out_buffer inner, outer;
  fb::builder p(inner.bytes, sizeof inner.bytes);
  REQUIRE(p.begin(msg::SaxpyRequest::type_id_, msg::SaxpyRequest::num_fields_, msg::SaxpyRequest::inline_max_));
  const float xs[] = {1, 2}, ys[] = {3, 4};
  REQUIRE(p.add_vector<float>(msg::SaxpyRequest::fields_::x, xs, 2));
  REQUIRE(p.add_vector<float>(msg::SaxpyRequest::fields_::y, ys, 2));
  const std::uint32_t pn = p.finish();
  fb::builder e(outer.bytes, sizeof outer.bytes);
  REQUIRE(e.begin(msg::Envelope::type_id_, msg::Envelope::num_fields_, msg::Envelope::inline_max_));
  REQUIRE(e.add<std::uint32_t>(msg::Envelope::fields_::type_id, msg::SaxpyRequest::type_id_));
  REQUIRE(e.add<std::uint64_t>(msg::Envelope::fields_::correlation_id, 77));
  REQUIRE(e.add_string(msg::Envelope::fields_::tenant, "t1", 2));
  REQUIRE(e.add_bytes(msg::Envelope::fields_::payload, inner.bytes, pn));
  const auto buf = outer.take(e.finish());
  REQUIRE(verifies<wire::Envelope>(buf, wire::EnvelopeIdentifier()));
  const auto* g = wire::GetEnvelope(buf.data());
  CHECK(g->correlation_id() == 77);
  CHECK(g->schema_version() == 1);  // absent -> default
  CHECK(g->tenant()->str() == "t1");
  flatbuffers::Verifier pv(g->payload()->data(), g->payload()->size());
  REQUIRE(gen::VerifySaxpyRequestBuffer(pv));
  CHECK(gen::GetSaxpyRequest(g->payload()->data())->a() == 1.0f);
  CHECK(gen::GetSaxpyRequest(g->payload()->data())->y()->Get(1) == 4.0f);
}

TEST_CASE("writer reports misuse and overflow instead of writing past its buffer", "[fb][writer]") {
  alignas(8) std::uint8_t buf[96];
  SECTION("buffer too small for the vector") {
    fb::builder b(buf, sizeof buf);
    REQUIRE(b.begin(msg::SaxpyReply::type_id_, 1, msg::SaxpyReply::inline_max_));
    auto v = b.add_vector<float>(0, 100);
    CHECK_FALSE(v);
    CHECK_FALSE(b.ok());
    CHECK(b.finish() == 0);
  }
  SECTION("field id out of range") {
    fb::builder b(buf, sizeof buf);
    REQUIRE(b.begin(0, 2, 16));
    CHECK_FALSE(b.add<std::uint32_t>(2, 1));
    CHECK(b.finish() == 0);
  }
  SECTION("field added twice") {
    fb::builder b(buf, sizeof buf);
    REQUIRE(b.begin(0, 2, 16));
    CHECK(b.add<std::uint32_t>(0, 1));
    CHECK_FALSE(b.add<std::uint32_t>(0, 2));
    CHECK(b.finish() == 0);
  }
  SECTION("inline area exhausted") {
    fb::builder b(buf, sizeof buf);
    REQUIRE(b.begin(0, 3, 8 + 7));  // room for one aligned u64 (8 bytes + up to 7 of padding)
    CHECK(b.add<std::uint64_t>(0, 1));
    CHECK_FALSE(b.add<std::uint64_t>(1, 2));
    CHECK(b.finish() == 0);
  }
  SECTION("too many fields / null buffer") {
    fb::builder b(buf, sizeof buf);
    CHECK_FALSE(b.begin(0, fb::builder::max_fields + 1, 8));
    fb::builder n(nullptr, 0);
    CHECK_FALSE(n.begin(0, 1, 8));
  }
  SECTION("finish twice") {
    fb::builder b(buf, sizeof buf);
    REQUIRE(b.begin(0, 1, 8));
    CHECK(b.finish() > 0);
    CHECK(b.finish() == 0);
  }
}

TEST_CASE("view never reads outside its buffer on truncated or corrupted bytes", "[fb][view]") {
  // Build a valid ScoreRequest, then read every truncation and many single-byte corruptions,
  // each copied into an exactly-sized heap buffer (ASan flags any overread).
  flatbuffers::FlatBufferBuilder b;
  std::vector<gen::Feature> feats{{1, 0.5f}, {2, -1.5f}, {3, 2.0f}};
  auto fo = b.CreateVectorOfStructs(feats);
  auto so = b.CreateString("XYZ");
  gen::Quote q(10.0, 3, 2);
  gen::FinishScoreRequestBuffer(b, gen::CreateScoreRequest(b, 5, &q, fo, 0.2f, so));
  const auto good = finish_copy(b);
  // Every byte range the view hands out must lie inside the buffer (ASan additionally catches
  // any read past the exactly-sized heap copy).
  std::size_t ranges_checked = 0;
  bool all_inside = true;
  auto read_all = [&](const std::vector<std::uint8_t>& bytes) {
    auto heap = std::make_unique<std::uint8_t[]>(bytes.size() ? bytes.size() : 1);
    if (!bytes.empty()) std::memcpy(heap.get(), bytes.data(), bytes.size());
    const std::uint8_t* lo = heap.get();
    const std::uint8_t* hi = lo + bytes.size();
    auto inside = [&](const void* p, std::uint64_t n) {
      ++ranges_checked;
      const auto* b = static_cast<const std::uint8_t*>(p);
      all_inside = all_inside && (n == 0 || (b >= lo && b <= hi && n <= static_cast<std::uint64_t>(hi - b)));
    };
    const fb::bytes_view bv{heap.get(), static_cast<std::uint32_t>(bytes.size())};
    const auto v = ringflow::view_of<msg::ScoreRequest>(bv);
    double sink = static_cast<double>(v.request_id()) + v.max_discount();
    msg::Quote qq{};
    if (v.quote(qq)) sink += qq.base_price;
    const auto f = v.features();
    inside(f.data(), static_cast<std::uint64_t>(f.size()) * sizeof(msg::Feature));
    for (std::uint32_t i = 0; i < f.size(); ++i) sink += f[i].value;
    const auto s = v.symbol();
    inside(s.data, s.size);
    for (std::uint32_t i = 0; i < s.size; ++i) sink += s.data[i];
    for (fb::field_id id = 0; id < 40; ++id) {
      sink += static_cast<double>(v.table_.get<std::uint64_t>(id, 0) & 1);
      const auto nested = v.table_.nested(id);
      inside(nested.data, nested.size);
      const auto str = v.table_.string(id);
      inside(str.data, str.size);
      sink += v.table_.table(id).valid();
    }
    return sink;
  };
  for (std::size_t len = 0; len <= good.size(); ++len)
    read_all(std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)));
  rng r(99);
  for (int i = 0; i < 5000; ++i) {
    auto bad = good;
    for (int k = 0, n = 1 + static_cast<int>(r.below(4)); k < n; ++k)
      bad[r.below(static_cast<std::uint32_t>(bad.size()))] = static_cast<std::uint8_t>(r.below(256));
    read_all(bad);
  }
  // A truncated buffer reads as absent rather than as garbage.
  const std::vector<std::uint8_t> tiny(good.begin(), good.begin() + 6);
  CHECK_FALSE(fb::root({tiny.data(), 6}).valid());
  CHECK(fb::identifier({tiny.data(), 6}) == 0);
  CHECK(ranges_checked > 0);
  CHECK(all_inside);
}

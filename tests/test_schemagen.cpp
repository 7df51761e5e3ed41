// ringflow_schemagen's descriptors against flatc's generated code, for a schema whose field names
// (id, name, field, table) would clash with hand-written descriptor members: what the portable
// writer builds, flatc's Verifier accepts and its accessors read; what flatc builds, the
// descriptor reads; ids, defaults, inline bytes and type ids are the schema's.
#include <catch2/catch.hpp>

#include <vector>

#include "rftest/naming_generated.h"
#include "rftest/naming_ringflow.hpp"
#include "ringflow/kernel.hpp"

using namespace ringflow;
using D = rftest::rf::Naming;

TEST_CASE("generated descriptor: metadata from the schema, names that clash by hand work", "[fb][schemagen]") {
  STATIC_REQUIRE(D::type_id_ == type_id_of("NAMG"));
  STATIC_REQUIRE(rftest::rf::Child::type_id_ == type_id_of("CHLD"));  // ringflow_id attribute
  STATIC_REQUIRE(D::num_fields_ == 14);
  STATIC_REQUIRE(D::fields_::id == 0);
  STATIC_REQUIRE(D::fields_::table == 3);
  STATIC_REQUIRE(D::fields_::last == 13);
  // flatc's vtable offsets agree with the field ids.
  STATIC_REQUIRE(rftest::Naming::VT_ID == 4 + 2 * D::fields_::id);
  STATIC_REQUIRE(rftest::Naming::VT_CHILD == 4 + 2 * D::fields_::child);
  STATIC_REQUIRE(rftest::Naming::VT_LAST == 4 + 2 * D::fields_::last);
  STATIC_REQUIRE(sizeof(rftest::rf::Point) == sizeof(rftest::Point));
  STATIC_REQUIRE(static_cast<int>(rftest::rf::Colour::Blue) == 200);
  CHECK(std::string(D::name_) == "rftest.Naming");

  // Defaults when absent: an empty table.
  flatbuffers::FlatBufferBuilder fb;
  rftest::FinishNamingBuffer(fb, rftest::NamingBuilder(fb).Finish());
  const D empty = view_of<D>({fb.GetBufferPointer(), fb.GetSize()});
  REQUIRE(empty.table_.valid());
  CHECK(empty.id() == 7);
  CHECK(empty.field() == -3);
  CHECK(empty.table() == 11);
  CHECK(empty.colour() == rftest::rf::Colour::Green);
  CHECK(empty.ratio() == 0.25);
  CHECK(empty.flag());
  CHECK(empty.name().empty());
  CHECK_FALSE(empty.child().table_.valid());
}

TEST_CASE("generated descriptor: portable writer -> flatc reader, flatc writer -> descriptor reader",
          "[fb][schemagen]") {
  SECTION("written with the descriptor's add_<field>") {
    alignas(8) std::uint8_t buf[512];
    fb::builder b(buf, sizeof buf);
    REQUIRE(D::begin_(b));
    REQUIRE(D::add_id(b, 42));
    REQUIRE(D::add_name(b, "ada", 3));
    REQUIRE(D::add_field(b, 9));
    REQUIRE(D::add_table(b, -5));
    REQUIRE(D::add_colour(b, rftest::rf::Colour::Blue));
    REQUIRE(D::add_ratio(b, 1.5));
    REQUIRE(D::add_flag(b, false));
    REQUIRE(D::add_at(b, rftest::rf::Point{1.0f, 2.0f, 3, {}}));
    const rftest::rf::Point pts[] = {{4.0f, 5.0f, 6, {}}, {7.0f, 8.0f, 9, {}}};
    REQUIRE(D::add_points(b, pts, 2));
    auto s = D::add_samples(b, 3);
    REQUIRE(s);
    for (std::uint32_t i = 0; i < 3; ++i) s.set(i, 0.5f * i);
    const std::uint8_t raw[] = {1, 2, 3, 4, 5};
    REQUIRE(D::add_raw(b, raw, 5));
    REQUIRE(D::add_last(b, -1));
    const std::uint32_t n = b.finish();
    REQUIRE(n > 0);
    flatbuffers::Verifier v(buf, n);
    REQUIRE(rftest::VerifyNamingBuffer(v));
    const rftest::Naming* g = rftest::GetNaming(buf);
    CHECK(g->id() == 42);
    CHECK(g->name()->str() == "ada");
    CHECK(g->field() == 9);
    CHECK(g->table() == -5);
    CHECK(g->colour() == rftest::Colour::Blue);
    CHECK(g->ratio() == 1.5);
    CHECK_FALSE(g->flag());
    CHECK(g->at()->y() == 2.0f);
    CHECK(g->at()->tag() == 3);
    REQUIRE(g->points()->size() == 2);
    CHECK(g->points()->Get(1)->x() == 7.0f);
    CHECK(g->samples()->Get(2) == 1.0f);
    CHECK(g->raw()->size() == 5);
    CHECK(g->last() == -1);
    // The inline area was exactly large enough for the root's fields (inline_max_ is an upper bound).
    CHECK(b.inline_demand() <= D::inline_max_);
  }
  SECTION("written by flatc") {
    flatbuffers::FlatBufferBuilder fb;
    const rftest::Point at(1.0f, 2.0f, 3);
    std::vector<rftest::Point> pts{rftest::Point(4.0f, 5.0f, 6)};
    std::vector<float> samples{0.5f, 1.5f};
    std::vector<std::uint8_t> raw{9, 8, 7};
    auto child = rftest::CreateChildDirect(fb, "kid");
    rftest::FinishNamingBuffer(fb, rftest::CreateNamingDirect(fb, 99, "bob", 1, 2, rftest::Colour::Red, 3.5, false, &at,
                                                              &pts, &samples, &raw, child, 123));
    const D d = view_of<D>({fb.GetBufferPointer(), fb.GetSize()});
    CHECK(d.id() == 99);
    CHECK(d.name().equals("bob", 3));
    CHECK(d.field() == 1);
    CHECK(d.table() == 2);
    CHECK(d.colour() == rftest::rf::Colour::Red);
    CHECK(d.ratio() == 3.5);
    CHECK_FALSE(d.flag());
    rftest::rf::Point p{};
    REQUIRE(d.at(p));
    CHECK(p.y == 2.0f);
    CHECK(d.points()[0].tag == 6);
    CHECK(d.samples()[1] == 1.5f);
    CHECK(d.raw().size == 3);
    CHECK(d.child().note().equals("kid", 3));
    CHECK(d.last() == 123);
  }
}

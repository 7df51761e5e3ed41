// ringflow/messages.hpp — portable descriptors of ringflow's wire and demo schemas.
//
// Contract: one descriptor per FlatBuffers table in messages/schemas: its type id (the schema's
// file identifier), qualified name, field ids, defaults, the inline bytes a writer must reserve,
// and typed RINGFLOW_HD accessors over a fb::table_view. flatc's generated C++ cannot run on a
// device; these can. tests/test_fb_cross.cpp checks every field id and default against the
// generated code, so a schema edit that is not mirrored here fails the build's tests.
// Struct mirrors (Quote, Feature) have flatc's exact layout (static_asserts below).
//
// Thread-safety: immutable values.
#pragma once

#include <cstdint>

#include "ringflow/fb_view.hpp"

namespace ringflow::msg {

// ---------------------------------------------------------------- wire (process edge)

/// ringflow.wire.Envelope (envelope.fbs, "RFEV").
struct Envelope {
  static constexpr type_id id = type_id_of("RFEV");
  static constexpr const char* name = "ringflow.wire.Envelope";
  static constexpr fb::field_id num_fields = 9;
  struct field {
    static constexpr fb::field_id schema_version = 0, type_id = 1, correlation_id = 2, sequence = 3, tenant = 4,
                                  deadline_ns = 5, traceparent = 6, flags = 7, payload = 8;
  };
  static constexpr std::uint32_t inline_max = (2 + 1) + (4 + 3) + (8 + 7) * 3 + (4 + 3) * 5;

  fb::table_view table;
  RINGFLOW_HD std::uint16_t schema_version() const { return table.get<std::uint16_t>(field::schema_version, 1); }
  RINGFLOW_HD ringflow::type_id type() const { return table.get<std::uint32_t>(field::type_id, 0); }
  RINGFLOW_HD std::uint64_t correlation_id() const { return table.get<std::uint64_t>(field::correlation_id, 0); }
  RINGFLOW_HD std::uint64_t sequence() const { return table.get<std::uint64_t>(field::sequence, 0); }
  RINGFLOW_HD fb::string_view tenant() const { return table.string(field::tenant); }
  RINGFLOW_HD std::uint64_t deadline_ns() const { return table.get<std::uint64_t>(field::deadline_ns, 0); }
  RINGFLOW_HD fb::string_view traceparent() const { return table.string(field::traceparent); }
  RINGFLOW_HD std::uint32_t flags() const { return table.get<std::uint32_t>(field::flags, 0); }
  RINGFLOW_HD fb::bytes_view payload() const { return table.nested(field::payload); }
};

/// ringflow.wire.ErrorReply (error.fbs, "RFER").
struct ErrorReply {
  static constexpr type_id id = type_id_of("RFER");
  static constexpr const char* name = "ringflow.wire.ErrorReply";
  static constexpr fb::field_id num_fields = 2;
  struct field {
    static constexpr fb::field_id code = 0, detail = 1;
  };
  static constexpr std::uint32_t inline_max = (2 + 1) + (4 + 3);

  fb::table_view table;
  RINGFLOW_HD std::uint16_t code() const { return table.get<std::uint16_t>(field::code, 0); }
  RINGFLOW_HD fb::string_view detail() const { return table.string(field::detail); }
};

// ---------------------------------------------------------------- demo payloads

/// ringflow.demo.Echo (demo/echo.fbs, "ECHO"): request and reply.
struct Echo {
  static constexpr type_id id = type_id_of("ECHO");
  static constexpr const char* name = "ringflow.demo.Echo";
  static constexpr fb::field_id num_fields = 3;
  struct field {
    static constexpr fb::field_id sequence = 0, body = 1, note = 2;
  };
  static constexpr std::uint32_t inline_max = (8 + 7) + (4 + 3) * 2;

  fb::table_view table;
  RINGFLOW_HD std::uint64_t sequence() const { return table.get<std::uint64_t>(field::sequence, 0); }
  RINGFLOW_HD fb::vector_view<std::uint8_t> body() const { return table.vector<std::uint8_t>(field::body); }
  RINGFLOW_HD fb::string_view note() const { return table.string(field::note); }
};

/// ringflow.demo.SaxpyRequest (demo/saxpy_request.fbs, "SXPQ").
struct SaxpyRequest {
  static constexpr type_id id = type_id_of("SXPQ");
  static constexpr const char* name = "ringflow.demo.SaxpyRequest";
  static constexpr fb::field_id num_fields = 3;
  struct field {
    static constexpr fb::field_id a = 0, x = 1, y = 2;
  };
  static constexpr float a_default = 1.0f;
  static constexpr std::uint32_t inline_max = (4 + 3) * 3;

  fb::table_view table;
  RINGFLOW_HD float a() const { return table.get<float>(field::a, a_default); }
  RINGFLOW_HD fb::vector_view<float> x() const { return table.vector<float>(field::x); }
  RINGFLOW_HD fb::vector_view<float> y() const { return table.vector<float>(field::y); }
};

/// ringflow.demo.SaxpyReply (demo/saxpy_reply.fbs, "SXPR").
struct SaxpyReply {
  static constexpr type_id id = type_id_of("SXPR");
  static constexpr const char* name = "ringflow.demo.SaxpyReply";
  static constexpr fb::field_id num_fields = 1;
  struct field {
    static constexpr fb::field_id y = 0;
  };
  static constexpr std::uint32_t inline_max = 4 + 3;

  fb::table_view table;
  RINGFLOW_HD fb::vector_view<float> y() const { return table.vector<float>(field::y); }
};

/// ringflow.demo.Quote (struct, 16 bytes, align 8).
struct alignas(8) Quote {
  double base_price;
  std::uint32_t quantity;
  std::uint8_t tier;
  std::uint8_t padding0[3];
};
static_assert(sizeof(Quote) == 16 && alignof(Quote) == 8, "flatc layout of ringflow.demo.Quote");

/// ringflow.demo.Feature (struct, 8 bytes, align 4).
struct alignas(4) Feature {
  std::uint32_t id;
  float value;
};
static_assert(sizeof(Feature) == 8 && alignof(Feature) == 4, "flatc layout of ringflow.demo.Feature");

/// ringflow.demo.ScoreRequest (demo/score_request.fbs, "SCRQ").
struct ScoreRequest {
  static constexpr type_id id = type_id_of("SCRQ");
  static constexpr const char* name = "ringflow.demo.ScoreRequest";
  static constexpr fb::field_id num_fields = 5;
  struct field {
    static constexpr fb::field_id request_id = 0, quote = 1, features = 2, max_discount = 3, symbol = 4;
  };
  static constexpr float max_discount_default = 0.25f;
  static constexpr std::uint32_t inline_max = (8 + 7) + (16 + 7) + (4 + 3) * 3;

  fb::table_view table;
  RINGFLOW_HD std::uint64_t request_id() const { return table.get<std::uint64_t>(field::request_id, 0); }
  RINGFLOW_HD bool quote(Quote& out) const { return table.get_struct(field::quote, out); }
  RINGFLOW_HD fb::vector_view<Feature> features() const { return table.vector<Feature>(field::features); }
  RINGFLOW_HD float max_discount() const { return table.get<float>(field::max_discount, max_discount_default); }
  RINGFLOW_HD fb::string_view symbol() const { return table.string(field::symbol); }
};

/// ringflow.demo.ScoreReply (demo/score_reply.fbs, "SCRR").
struct ScoreReply {
  static constexpr type_id id = type_id_of("SCRR");
  static constexpr const char* name = "ringflow.demo.ScoreReply";
  static constexpr fb::field_id num_fields = 5;
  struct field {
    static constexpr fb::field_id request_id = 0, score = 1, price = 2, approved = 3, reason = 4;
  };
  static constexpr std::uint32_t inline_max = (8 + 7) + (4 + 3) + (8 + 7) + (1 + 0) + (2 + 1);

  fb::table_view table;
  RINGFLOW_HD std::uint64_t request_id() const { return table.get<std::uint64_t>(field::request_id, 0); }
  RINGFLOW_HD float score() const { return table.get<float>(field::score, 0.0f); }
  RINGFLOW_HD double price() const { return table.get<double>(field::price, 0.0); }
  RINGFLOW_HD bool approved() const { return table.get<bool>(field::approved, false); }
  RINGFLOW_HD std::uint16_t reason() const { return table.get<std::uint16_t>(field::reason, 0); }
};

/// Typed view of a buffer's root table.
template <class Descriptor>
RINGFLOW_HD inline Descriptor view_of(fb::bytes_view buf) {
  return Descriptor{fb::root(buf)};
}

}  // namespace ringflow::msg

// tests/fuzz/fuzz_common.hpp — shared helpers of the libFuzzer targets (tests/fuzz/*.cpp).
//
// - RF_CHECK: an always-on assertion (the fuzz build is RelWithDebInfo, so assert() is gone) that
//   aborts, which libFuzzer records as a crash with the input that caused it.
// - owned_copy: the fuzzer input in an exactly-sized heap block, so ASan reports any read past it.
// - in_range: explicit "this pointer range lies inside the input" checks (ASan only sees reads that
//   land in a redzone; a wild offset could land in another live allocation).
// - same_*: differential checks of the portable view (messages.hpp) against the flatc-generated
//   accessors on a buffer that passed flatbuffers::Verifier (fb_view.hpp promises equal values).
//   Pointers are compared as offsets from each side's buffer start, so the generated side may read
//   an aligned copy of the bytes the view reads in place.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "ringflow/fb_view.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/envelope_generated.h"
#include "ringflow/generated/error_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/messages.hpp"

#define RF_CHECK(cond)                                                                       \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace ringflow::fuzz {

/// The fuzzer input copied into a heap block of exactly `size` bytes (new[] is 16-byte aligned,
/// like ring slots and arenas; a 0-byte input still gets a unique non-null pointer).
struct owned_copy {
  std::unique_ptr<std::uint8_t[]> bytes;
  std::uint32_t size = 0;
  owned_copy(const std::uint8_t* data, std::size_t n)
      : bytes(new std::uint8_t[n ? n : 1]), size(static_cast<std::uint32_t>(n)) {
    if (n) std::memcpy(bytes.get(), data, n);
  }
  const std::uint8_t* data() const { return bytes.get(); }
  fb::bytes_view view() const { return {bytes.get(), size}; }
};

/// A copy of [p, p+n) at an 8-aligned address, for the flatc-generated accessors (which, unlike
/// the view, load scalars and structs in place and so need the alignment the Verifier checked
/// relative to the buffer start).
struct aligned_copy {
  std::unique_ptr<std::uint64_t[]> words;
  std::uint32_t size = 0;
  aligned_copy(const std::uint8_t* p, std::uint32_t n) : words(new std::uint64_t[(n + 7) / 8 + 1]), size(n) {
    if (n) std::memcpy(words.get(), p, n);
  }
  const std::uint8_t* data() const { return reinterpret_cast<const std::uint8_t*>(words.get()); }
};

/// Where the input lies; every pointer a view hands out must stay inside it.
struct bounds {
  const std::uint8_t* lo;
  const std::uint8_t* hi;
  bool holds(const void* p, std::uint64_t n) const {
    const auto* b = static_cast<const std::uint8_t*>(p);
    if (n == 0) return p == nullptr || (b >= lo && b <= hi);
    return b != nullptr && b >= lo && b <= hi && n <= static_cast<std::uint64_t>(hi - b);
  }
};

/// Hash step that wraps on purpose (exempt from -fsanitize=unsigned-integer-overflow).
__attribute__((no_sanitize("unsigned-integer-overflow"))) inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  return h * 131 + v;
}

/// Defeats dead-code elimination of reads whose value is otherwise unused.
inline volatile std::uint64_t sink = 0;
template <class T>
inline void consume(const T& v) {
  std::uint64_t h = 0;
  std::memcpy(&h, &v, sizeof(T) < sizeof(h) ? sizeof(T) : sizeof(h));
  sink = mix(sink, h);
}

/// memcmp that accepts null pointers when n == 0 (memcmp's arguments must never be null).
inline bool equal_bytes(const void* a, const void* b, std::size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

template <class T>
inline bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// Offsets of a view pointer and a generated pointer from their buffers' starts.
struct bases {
  const std::uint8_t* view;
  const std::uint8_t* gen;
  bool same(const void* v, const void* g) const {
    return static_cast<const std::uint8_t*>(v) - view == static_cast<const std::uint8_t*>(g) - gen;
  }
};

template <class T>
inline void same_vector(const bases& b, fb::vector_view<T> v, const flatbuffers::Vector<T>* g) {
  if (!g) {
    RF_CHECK(v.size() == 0);
    return;
  }
  RF_CHECK(v.size() == g->size());
  if (v.size()) RF_CHECK(b.same(v.data(), g->Data()));
  for (std::uint32_t i = 0; i < v.size(); ++i) RF_CHECK(same_bits(v[i], g->Get(i)));
}

inline void same_string(const bases& b, fb::string_view v, const flatbuffers::String* g) {
  if (!g) {
    RF_CHECK(v.size == 0);
    return;
  }
  RF_CHECK(v.size == g->size());
  if (v.size) {
    RF_CHECK(b.same(v.data, g->c_str()));
    RF_CHECK(equal_bytes(v.data, g->c_str(), v.size));
  }
}

inline void same_bytes(const bases& b, fb::bytes_view v, const flatbuffers::Vector<std::uint8_t>* g) {
  if (!g) {
    RF_CHECK(v.size == 0);
    return;
  }
  RF_CHECK(v.size == g->size());
  if (v.size) {
    RF_CHECK(b.same(v.data, g->data()));
    RF_CHECK(equal_bytes(v.data, g->data(), v.size));
  }
}

inline void same(const bases& b, const msg::Envelope& v, const wire::Envelope& g) {
  RF_CHECK(v.schema_version() == g.schema_version());
  RF_CHECK(v.type_id() == g.type_id());
  RF_CHECK(v.correlation_id() == g.correlation_id());
  RF_CHECK(v.sequence() == g.sequence());
  same_string(b, v.tenant(), g.tenant());
  RF_CHECK(v.deadline_ns() == g.deadline_ns());
  same_string(b, v.traceparent(), g.traceparent());
  RF_CHECK(v.flags() == g.flags());
  same_bytes(b, v.payload(), g.payload());
}

inline void same(const bases& b, const msg::ErrorReply& v, const wire::ErrorReply& g) {
  RF_CHECK(v.code() == g.code());
  same_string(b, v.detail(), g.detail());
}

inline void same(const bases& b, const msg::Echo& v, const demo::Echo& g) {
  RF_CHECK(v.sequence() == g.sequence());
  same_bytes(b, v.body(), g.body());
  same_string(b, v.note(), g.note());
}

inline void same(const bases& b, const msg::SaxpyRequest& v, const demo::SaxpyRequest& g) {
  RF_CHECK(same_bits(v.a(), g.a()));
  same_vector(b, v.x(), g.x());
  same_vector(b, v.y(), g.y());
}

inline void same(const bases& b, const msg::SaxpyReply& v, const demo::SaxpyReply& g) { same_vector(b, v.y(), g.y()); }

inline void same(const bases& b, const msg::ScoreRequest& v, const demo::ScoreRequest& g) {
  RF_CHECK(v.request_id() == g.request_id());
  msg::Quote q{};
  const bool has_quote = v.quote(q);
  RF_CHECK(has_quote == (g.quote() != nullptr));
  if (has_quote) {
    RF_CHECK(same_bits(q.base_price, g.quote()->base_price()));
    RF_CHECK(q.quantity == g.quote()->quantity());
    RF_CHECK(q.tier == g.quote()->tier());
  }
  const auto vf = v.features();
  const auto* gf = g.features();
  RF_CHECK(vf.size() == (gf ? gf->size() : 0u));
  if (gf && vf.size()) RF_CHECK(b.same(vf.data(), gf->Data()));
  for (std::uint32_t i = 0; i < vf.size(); ++i) {
    RF_CHECK(vf[i].id == gf->Get(i)->id());
    RF_CHECK(same_bits(vf[i].value, gf->Get(i)->value()));
  }
  RF_CHECK(same_bits(v.max_discount(), g.max_discount()));
  same_string(b, v.symbol(), g.symbol());
}

inline void same(const bases& b, const msg::ScoreReply& v, const demo::ScoreReply& g) {
  (void)b;
  RF_CHECK(v.request_id() == g.request_id());
  RF_CHECK(same_bits(v.score(), g.score()));
  RF_CHECK(same_bits(v.price(), g.price()));
  RF_CHECK(v.approved() == g.approved());
  RF_CHECK(v.reason() == g.reason());
}

/// Reads every field of a typed view (every vector element, every string byte), checking that
/// each pointer stays inside `in`. Works on any bytes (verified or not).
inline void walk(const bounds& in, fb::string_view s) {
  RF_CHECK(in.holds(s.data, s.size));
  std::uint64_t h = 0;
  for (std::uint32_t i = 0; i < s.size; ++i) h = mix(h, static_cast<unsigned char>(s.data[i]));
  consume(h);
  RF_CHECK(s.equals(s.data, s.size));
  RF_CHECK(!s.equals(s.data, s.size + 1));  // a length mismatch compares no bytes
}

template <class T>
inline void walk(const bounds& in, fb::vector_view<T> v) {
  RF_CHECK(in.holds(v.data(), static_cast<std::uint64_t>(v.size()) * sizeof(T)));
  for (std::uint32_t i = 0; i < v.size(); ++i) consume(v[i]);
  // Out-of-range indices read as T{} and touch no memory.
  const T past = v[v.size()];
  const T far = v[0xFFFFFFFFu];
  RF_CHECK(same_bits(past, T{}) || v.size() == 0xFFFFFFFFu);
  RF_CHECK(same_bits(far, T{}));
}

inline void walk(const bounds& in, fb::bytes_view v) {
  RF_CHECK(in.holds(v.data, v.size));
  std::uint64_t h = 0;
  for (std::uint32_t i = 0; i < v.size; ++i) h = mix(h, v.data[i]);
  consume(h);
}

inline void walk(const bounds& in, const msg::Envelope& v) {
  consume(v.schema_version());
  consume(v.type_id());
  consume(v.correlation_id());
  consume(v.sequence());
  walk(in, v.tenant());
  consume(v.deadline_ns());
  walk(in, v.traceparent());
  consume(v.flags());
  walk(in, v.payload());
}
inline void walk(const bounds& in, const msg::ErrorReply& v) {
  consume(v.code());
  walk(in, v.detail());
}
inline void walk(const bounds& in, const msg::Echo& v) {
  consume(v.sequence());
  walk(in, v.body());
  walk(in, v.note());
}
inline void walk(const bounds& in, const msg::SaxpyRequest& v) {
  consume(v.a());
  walk(in, v.x());
  walk(in, v.y());
}
inline void walk(const bounds& in, const msg::SaxpyReply& v) { walk(in, v.y()); }
inline void walk(const bounds& in, const msg::ScoreRequest& v) {
  consume(v.request_id());
  msg::Quote q{};
  if (v.quote(q)) {
    consume(q.base_price);
    consume(q.quantity);
    consume(q.tier);
  }
  walk(in, v.features());
  consume(v.max_discount());
  walk(in, v.symbol());
}
inline void walk(const bounds& in, const msg::ScoreReply& v) {
  (void)in;
  consume(v.request_id());
  consume(v.score());
  consume(v.price());
  consume(v.approved());
  consume(v.reason());
}

/// Walks `buf` as a payload of type `type` (a demo type id, or the envelope/error ids); returns
/// false for an unknown type.
inline bool walk_typed(const bounds& in, type_id type, fb::bytes_view buf) {
  switch (type) {
    case msg::Envelope::type_id_: walk(in, ringflow::view_of<msg::Envelope>(buf)); return true;
    case msg::ErrorReply::type_id_: walk(in, ringflow::view_of<msg::ErrorReply>(buf)); return true;
    case msg::Echo::type_id_: walk(in, ringflow::view_of<msg::Echo>(buf)); return true;
    case msg::SaxpyRequest::type_id_: walk(in, ringflow::view_of<msg::SaxpyRequest>(buf)); return true;
    case msg::SaxpyReply::type_id_: walk(in, ringflow::view_of<msg::SaxpyReply>(buf)); return true;
    case msg::ScoreRequest::type_id_: walk(in, ringflow::view_of<msg::ScoreRequest>(buf)); return true;
    case msg::ScoreReply::type_id_: walk(in, ringflow::view_of<msg::ScoreReply>(buf)); return true;
    default: return false;
  }
}

/// If `buf` passes the generated Verifier of root type G (identifier not checked), compares the
/// view D with the generated accessors (on an aligned copy). Returns whether it verified.
template <class D, class G>
inline bool verify_and_compare(fb::bytes_view buf) {
  if (buf.size == 0) return false;
  const aligned_copy copy(buf.data, buf.size);
  flatbuffers::Verifier v(copy.data(), copy.size);
  if (!v.VerifyBuffer<G>(nullptr)) return false;
  const bases b{buf.data, copy.data()};
  same(b, ringflow::view_of<D>(buf), *flatbuffers::GetRoot<G>(copy.data()));
  return true;
}

/// verify_and_compare for the schema whose descriptor has id `type`; false if unknown or invalid.
inline bool verify_and_compare_typed(type_id type, fb::bytes_view buf) {
  switch (type) {
    case msg::Envelope::type_id_: return verify_and_compare<msg::Envelope, wire::Envelope>(buf);
    case msg::ErrorReply::type_id_: return verify_and_compare<msg::ErrorReply, wire::ErrorReply>(buf);
    case msg::Echo::type_id_: return verify_and_compare<msg::Echo, demo::Echo>(buf);
    case msg::SaxpyRequest::type_id_: return verify_and_compare<msg::SaxpyRequest, demo::SaxpyRequest>(buf);
    case msg::SaxpyReply::type_id_: return verify_and_compare<msg::SaxpyReply, demo::SaxpyReply>(buf);
    case msg::ScoreRequest::type_id_: return verify_and_compare<msg::ScoreRequest, demo::ScoreRequest>(buf);
    case msg::ScoreReply::type_id_: return verify_and_compare<msg::ScoreReply, demo::ScoreReply>(buf);
    default: return false;
  }
}

inline constexpr type_id all_types[] = {
    msg::Envelope::type_id_,   msg::ErrorReply::type_id_,   msg::Echo::type_id_,      msg::SaxpyRequest::type_id_,
    msg::SaxpyReply::type_id_, msg::ScoreRequest::type_id_, msg::ScoreReply::type_id_};

}  // namespace ringflow::fuzz

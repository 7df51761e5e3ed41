// ringflow_fuzz_writer_roundtrip: the input drives ringflow::fb::builder (fb_writer.hpp).
//
// Mode "generic" (first byte odd): a table with input-chosen capacity, identifier, field count,
// inline reserve and a sequence of adds (scalars, structs, vectors of scalars/structs written
// immediately or later in place, strings, byte vectors), including misuse (unknown or repeated
// field ids, oversized vectors). Checked:
//   - begin() succeeds exactly when the documented limits allow it; a misused add fails and latches;
//     with room to spare (inline reserve and capacity above a worst-case bound) no add fails;
//   - writes stay inside the buffer (ASan: exactly-sized heap block) and below the returned size;
//   - output bytes do not depend on the buffer's previous contents (deterministic padding);
//   - a finished buffer passes flatbuffers::Verifier, checked with the flatc verifier primitives
//     (Table::VerifyField/VerifyOffset, Verifier::VerifyVector/VerifyString) for the recorded field
//     types -- what generated Verify() does -- and every field reads back as written through both
//     the view and flatbuffers::Table accessors; absent fields read as absent.
// Mode "schema" (first byte even): one of the six payload tables (Echo, SaxpyRequest/Reply,
// ScoreRequest/Reply, ErrorReply), built with its descriptor's num_fields/inline_max in
// input-chosen field order and subset; with enough capacity it must finish, pass the generated
// Verify<X>Buffer and read back through the generated accessors (and the typed view). Each payload
// is then wrapped into an Envelope built by fb::builder (all nine fields, input order) and by
// encode_envelope, and both must pass validate_ingress with the same fields (or fail with exactly
// unsupported_schema_version / deadline_passed when the input chose such values).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "ringflow/fb_writer.hpp"
#include "ringflow/ingress.hpp"

namespace {

using namespace ringflow;
using fb::byte;
using flatbuffers::voffset_t;

constexpr std::uint64_t kNow = 1'700'000'000'000'000'000ull;

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }
voffset_t slot_of(fb::field_id id) { return static_cast<voffset_t>(4 + 2 * id); }

/// An exactly-sized, 16-byte aligned heap buffer prefilled with `fill`.
struct heap_buffer {
  std::unique_ptr<std::uint8_t[]> bytes;
  std::uint32_t cap;
  heap_buffer(std::uint32_t n, std::uint8_t fill) : bytes(new std::uint8_t[n ? n : 1]), cap(n) {
    std::memset(bytes.get(), fill, n);
  }
  std::uint8_t* data() { return bytes.get(); }
};

// =============================================================================== generic mode

enum class kind : std::uint8_t {
  u8,
  i8,
  u16,
  i16,
  u32,
  i32,
  u64,
  i64,
  f32,
  f64,
  boolean,
  quote,
  feature,  // inline
  vec_u8,
  vec_u16,
  vec_u32,
  vec_u64,
  vec_f32,
  vec_f64,
  vec_bool,
  vec_feature,
  vec_quote,  // vectors
  str,
  bytes,
  count_
};

template <class T>
struct tag {
  using type = T;
};

/// Calls f(tag<T>) with the element / value type of an inline or vector kind.
template <class F>
decltype(auto) dispatch(kind k, F&& f) {
  switch (k) {
    case kind::u8:
    case kind::vec_u8:
    case kind::bytes:
    case kind::str: return f(tag<std::uint8_t>{});
    case kind::i8: return f(tag<std::int8_t>{});
    case kind::u16:
    case kind::vec_u16: return f(tag<std::uint16_t>{});
    case kind::i16: return f(tag<std::int16_t>{});
    case kind::u32:
    case kind::vec_u32: return f(tag<std::uint32_t>{});
    case kind::i32: return f(tag<std::int32_t>{});
    case kind::u64:
    case kind::vec_u64: return f(tag<std::uint64_t>{});
    case kind::i64: return f(tag<std::int64_t>{});
    case kind::f32:
    case kind::vec_f32: return f(tag<float>{});
    case kind::f64:
    case kind::vec_f64: return f(tag<double>{});
    case kind::boolean:
    case kind::vec_bool: return f(tag<bool>{});
    case kind::quote:
    case kind::vec_quote: return f(tag<msg::Quote>{});
    case kind::feature:
    case kind::vec_feature: return f(tag<msg::Feature>{});
    case kind::count_: break;
  }
  std::abort();
}

bool is_inline(kind k) { return k <= kind::feature; }
bool is_vector(kind k) { return k >= kind::vec_u8 && k <= kind::vec_quote; }

/// Wire size of one value / element.
std::uint32_t elem_size(kind k) {
  return dispatch(k, [](auto t) { return static_cast<std::uint32_t>(sizeof(typename decltype(t)::type)); });
}
/// Alignment the builder uses: inline min(alignof, 8); vector elements max(4, alignof);
/// strings 4; byte vectors 8.
std::uint32_t align_of(kind k) {
  if (k == kind::str) return 4;
  if (k == kind::bytes) return 8;
  const std::uint32_t a =
      dispatch(k, [](auto t) { return static_cast<std::uint32_t>(alignof(typename decltype(t)::type)); });
  return is_inline(k) ? std::min<std::uint32_t>(a, 8) : std::max<std::uint32_t>(a, 4);
}

struct op {
  kind k = kind::u8;
  fb::field_id id = 0;
  std::uint32_t count = 0;          // elements (vectors), bytes (strings, byte vectors)
  std::vector<std::uint8_t> value;  // raw little-endian value / element bytes (bool: 0 or 1)
  bool via_pointer = false;         // add_vector(id, src, n) instead of add_vector + set()
  bool deferred = false;            // elements written in place after all fields were added
  bool huge = false;                // count far beyond any capacity (must fail, never written)
};

struct plan {
  std::uint32_t cap = 0;
  type_id ident = 0;
  std::uint16_t num_fields = 0;
  std::uint32_t inline_reserve = 0;
  std::vector<op> ops;
};

plan decode(FuzzedDataProvider& in) {
  plan p;
  p.cap = in.ConsumeIntegralInRange<std::uint32_t>(0, 6000);
  if (in.ConsumeBool()) p.ident = in.ConsumeIntegral<std::uint32_t>() | 1u;
  p.num_fields = in.ConsumeIntegralInRange<std::uint16_t>(0, 70);
  p.inline_reserve =
      in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint32_t>(0, 600) : in.ConsumeIntegral<std::uint32_t>();
  const int n_ops = in.ConsumeIntegralInRange<int>(0, 40);
  for (int i = 0; i < n_ops && in.remaining_bytes() > 0; ++i) {
    op o;
    o.k = static_cast<kind>(in.ConsumeIntegralInRange<int>(0, static_cast<int>(kind::count_) - 1));
    o.id = in.ConsumeIntegralInRange<fb::field_id>(0, static_cast<fb::field_id>(p.num_fields + 1));
    const std::uint32_t es = elem_size(o.k);
    if (is_inline(o.k)) {
      o.count = 1;
    } else if (in.ConsumeIntegralInRange<int>(0, 31) == 0) {
      o.huge = true;
      o.count = in.ConsumeIntegralInRange<std::uint32_t>(0x00100000u, 0xFFFFFFFFu);
    } else {
      o.count = in.ConsumeIntegralInRange<std::uint32_t>(0, 300);
    }
    if (!o.huge) {
      o.value = in.ConsumeBytes<std::uint8_t>(static_cast<std::size_t>(o.count) * es);
      o.value.resize(static_cast<std::size_t>(o.count) * es, 0);
      if (o.k == kind::boolean || o.k == kind::vec_bool)
        for (auto& b : o.value) b = b & 1;
    }
    o.via_pointer = is_vector(o.k) && in.ConsumeBool();
    o.deferred = is_vector(o.k) && !o.via_pointer && in.ConsumeBool();
    p.ops.push_back(std::move(o));
  }
  return p;
}

template <class T>
T value_at(const op& o, std::uint32_t i) {
  T v;
  std::memcpy(&v, o.value.data() + static_cast<std::size_t>(i) * sizeof(T), sizeof(T));
  return v;
}

template <class T>
void fill(byte* elems, const op& o) {
  fb::vector_out<T> out(elems, o.count);
  for (std::uint32_t i = 0; i < o.count; ++i) out.set(i, value_at<T>(o, i));
  out.set(o.count, T{});  // out of range: ignored
}

/// Applies one op; returns the builder's verdict. Deferred vectors are queued in `later`.
bool apply(fb::builder& b, const op& o, std::vector<std::pair<byte*, const op*>>& later) {
  if (o.k == kind::str) return b.add_string(o.id, reinterpret_cast<const char*>(o.value.data()), o.count);
  if (o.k == kind::bytes)
    return o.huge ? b.add_bytes(o.id, nullptr, o.count) : b.add_bytes(o.id, o.value.data(), o.count);
  return dispatch(o.k, [&](auto t) -> bool {
    using T = typename decltype(t)::type;
    if (is_inline(o.k)) return b.add<T>(o.id, value_at<T>(o, 0));
    if (o.via_pointer && !o.huge) {
      std::unique_ptr<T[]> src(new T[o.count ? o.count : 1]);  // not std::vector: vector<bool>
      for (std::uint32_t i = 0; i < o.count; ++i) src[i] = value_at<T>(o, i);
      return b.add_vector<T>(o.id, src.get(), o.count);
    }
    fb::vector_out<T> out = b.add_vector<T>(o.id, o.count);
    RF_CHECK(out.valid() == static_cast<bool>(out));
    if (!out) return false;
    RF_CHECK(out.size() == o.count);
    RF_CHECK(!o.huge);
    if (o.deferred) later.emplace_back(out.data(), &o);
    else fill<T>(out.data(), o);
    return true;
  });
}

struct outcome {
  bool began = false;
  std::vector<bool> op_ok;
  std::uint32_t size = 0;
};

/// Builds `p` into a fresh buffer prefilled with `fill_byte`, checking the builder's verdicts
/// against the model. Returns the outcome; `buf` holds the result.
outcome build(const plan& p, heap_buffer& buf) {
  outcome r;
  fb::builder b(buf.data(), buf.cap);
  r.began = b.begin(p.ident, p.num_fields, p.inline_reserve);

  const std::uint64_t header = p.ident ? 8 : 4;
  const std::uint64_t table = align_up(header + 4 + 2ull * p.num_fields, 4);
  const std::uint64_t table_end = table + 4 + p.inline_reserve;
  const bool begin_ok =
      p.num_fields <= fb::builder::max_fields && 4ull + p.inline_reserve <= 0xFFFF && table_end <= buf.cap;
  RF_CHECK(r.began == begin_ok);

  bool latched = !r.began;
  std::vector<bool> used(p.num_fields, false);
  std::uint64_t inline_need = 0, tail_need = table_end;
  std::vector<std::pair<byte*, const op*>> later;
  for (const op& o : p.ops) {
    const bool ok = apply(b, o, later);
    r.op_ok.push_back(ok);
    if (latched) {
      RF_CHECK(!ok);
      continue;
    }
    if (o.id >= p.num_fields || used[o.id]) {
      RF_CHECK(!ok);  // unknown or repeated field id
      latched = true;
      continue;
    }
    const std::uint64_t es = elem_size(o.k), al = align_of(o.k);
    if (is_inline(o.k)) {
      inline_need += es + al - 1;
    } else {
      const std::uint64_t bytes = o.count * es + (o.k == kind::str ? 1 : 0);
      inline_need += 4 + 3;
      tail_need += al - 1 + 4 + bytes;
      if (4 + bytes > buf.cap) RF_CHECK(!ok);  // cannot fit at all
    }
    if (inline_need <= p.inline_reserve && tail_need <= buf.cap) RF_CHECK(ok);  // room to spare
    if (!ok) {
      latched = true;
      RF_CHECK(!b.ok());
    } else {
      used[o.id] = true;
      RF_CHECK(b.ok());
    }
  }
  for (const auto& pending : later)  // (no structured bindings: clang 14 cannot capture them)
    dispatch(pending.second->k, [&](auto t) { fill<typename decltype(t)::type>(pending.first, *pending.second); });

  r.size = b.finish();
  if (latched) {
    RF_CHECK(r.size == 0);
    RF_CHECK(!b.ok());
    return r;
  }
  RF_CHECK(r.size > 0 && r.size <= buf.cap);
  RF_CHECK(b.ok() && b.size() == r.size);
  // After finish(): further adds fail and write nothing; a second finish() returns 0.
  const std::vector<std::uint8_t> snapshot(buf.data(), buf.data() + buf.cap);
  RF_CHECK(!b.add<std::uint32_t>(0, 0xDEADBEEFu));
  RF_CHECK(!b.add_string(0, "x", 1));
  RF_CHECK(b.finish() == 0);
  RF_CHECK(fuzz::equal_bytes(snapshot.data(), buf.data(), buf.cap));
  return r;
}

// flatc-style verification of the generic table, from the recorded field types.
const std::vector<const op*>* g_fields = nullptr;

struct generic_table : private flatbuffers::Table {
  using flatbuffers::Table::CheckField;
  using flatbuffers::Table::GetField;
  using flatbuffers::Table::GetPointer;
  using flatbuffers::Table::GetStruct;

  bool Verify(flatbuffers::Verifier& v) const {
    if (!VerifyTableStart(v)) return false;
    for (const op* o : *g_fields) {
      const voffset_t slot = slot_of(o->id);
      bool ok = true;
      switch (o->k) {
        case kind::u8:
        case kind::boolean: ok = VerifyField<std::uint8_t>(v, slot, 1); break;
        case kind::i8: ok = VerifyField<std::int8_t>(v, slot, 1); break;
        case kind::u16: ok = VerifyField<std::uint16_t>(v, slot, 2); break;
        case kind::i16: ok = VerifyField<std::int16_t>(v, slot, 2); break;
        case kind::u32: ok = VerifyField<std::uint32_t>(v, slot, 4); break;
        case kind::i32: ok = VerifyField<std::int32_t>(v, slot, 4); break;
        case kind::u64: ok = VerifyField<std::uint64_t>(v, slot, 8); break;
        case kind::i64: ok = VerifyField<std::int64_t>(v, slot, 8); break;
        case kind::f32: ok = VerifyField<float>(v, slot, 4); break;
        case kind::f64: ok = VerifyField<double>(v, slot, 8); break;
        case kind::quote: ok = VerifyField<demo::Quote>(v, slot, 8); break;
        case kind::feature: ok = VerifyField<demo::Feature>(v, slot, 4); break;
        case kind::vec_u8:
        case kind::vec_bool:
        case kind::bytes:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<std::uint8_t>*>(slot));
          break;
        case kind::vec_u16:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<std::uint16_t>*>(slot));
          break;
        case kind::vec_u32:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<std::uint32_t>*>(slot));
          break;
        case kind::vec_u64:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<std::uint64_t>*>(slot));
          break;
        case kind::vec_f32:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<float>*>(slot));
          break;
        case kind::vec_f64:
          ok = VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<double>*>(slot));
          break;
        case kind::vec_feature:
          ok = VerifyOffset(v, slot) &&
               v.VerifyVector(GetPointer<const flatbuffers::Vector<const demo::Feature*>*>(slot));
          break;
        case kind::vec_quote:
          ok =
              VerifyOffset(v, slot) && v.VerifyVector(GetPointer<const flatbuffers::Vector<const demo::Quote*>*>(slot));
          break;
        case kind::str:
          ok = VerifyOffset(v, slot) && v.VerifyString(GetPointer<const flatbuffers::String*>(slot));
          break;
        case kind::count_: std::abort();
      }
      if (!ok) return false;
    }
    return v.EndTable();
  }
};

void same_quote(const msg::Quote& a, const demo::Quote& g) {
  RF_CHECK(fuzz::same_bits(a.base_price, g.base_price()));
  RF_CHECK(a.quantity == g.quantity());
  RF_CHECK(a.tier == g.tier());
}
void same_feature(const msg::Feature& a, const demo::Feature& g) {
  RF_CHECK(a.id == g.id());
  RF_CHECK(fuzz::same_bits(a.value, g.value()));
}

/// Field `o` read back through the view and through flatbuffers::Table equals what was written.
void check_field(const fb::table_view& t, const generic_table& g, const op& o) {
  const voffset_t slot = slot_of(o.id);
  RF_CHECK(t.has(o.id));
  RF_CHECK(g.CheckField(slot));
  if (o.k == kind::str) {
    const fb::string_view s = t.string(o.id);
    RF_CHECK(s.size == o.count && fuzz::equal_bytes(s.data, o.value.data(), o.count));
    const auto* gs = g.GetPointer<const flatbuffers::String*>(slot);
    RF_CHECK(gs && gs->size() == o.count && gs->c_str() == s.data && gs->c_str()[o.count] == '\0');
    return;
  }
  if (o.k == kind::bytes) {
    const fb::bytes_view n = t.nested(o.id);
    RF_CHECK(n.size == o.count && fuzz::equal_bytes(n.data, o.value.data(), o.count));
    RF_CHECK(reinterpret_cast<std::uintptr_t>(n.data) % 8 == 0);  // 8-aligned for nested buffers
    const auto* gv = g.GetPointer<const flatbuffers::Vector<std::uint8_t>*>(slot);
    RF_CHECK(gv && gv->size() == o.count && gv->data() == n.data);
    return;
  }
  dispatch(o.k, [&](auto tg) {
    using T = typename decltype(tg)::type;
    if (is_inline(o.k)) {
      const T want = value_at<T>(o, 0);
      if constexpr (std::is_same_v<T, msg::Quote>) {
        msg::Quote q{};
        RF_CHECK(t.get_struct(o.id, q) && fuzz::same_bits(q, want));
        const auto* gq = g.GetStruct<const demo::Quote*>(slot);
        RF_CHECK(gq != nullptr);
        same_quote(want, *gq);
      } else if constexpr (std::is_same_v<T, msg::Feature>) {
        msg::Feature f{};
        RF_CHECK(t.get_struct(o.id, f) && fuzz::same_bits(f, want));
        const auto* gf = g.GetStruct<const demo::Feature*>(slot);
        RF_CHECK(gf != nullptr);
        same_feature(want, *gf);
      } else if constexpr (std::is_same_v<T, bool>) {
        RF_CHECK(t.get<bool>(o.id, !want) == want);
        RF_CHECK(g.GetField<std::uint8_t>(slot, 7) == (want ? 1 : 0));
      } else {
        RF_CHECK(fuzz::same_bits(t.get<T>(o.id, T{}), want));
        RF_CHECK(fuzz::same_bits(g.GetField<T>(slot, T{}), want));
      }
      return;
    }
    const fb::vector_view<T> v = t.vector<T>(o.id);
    RF_CHECK(v.size() == o.count);
    if (o.count) RF_CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % align_of(o.k) == 0);
    for (std::uint32_t i = 0; i < o.count; ++i) RF_CHECK(fuzz::same_bits(v[i], value_at<T>(o, i)));
    if constexpr (std::is_same_v<T, msg::Quote>) {
      const auto* gv = g.GetPointer<const flatbuffers::Vector<const demo::Quote*>*>(slot);
      RF_CHECK(gv && gv->size() == o.count);
      for (std::uint32_t i = 0; i < o.count; ++i) same_quote(value_at<T>(o, i), *gv->Get(i));
    } else if constexpr (std::is_same_v<T, msg::Feature>) {
      const auto* gv = g.GetPointer<const flatbuffers::Vector<const demo::Feature*>*>(slot);
      RF_CHECK(gv && gv->size() == o.count);
      for (std::uint32_t i = 0; i < o.count; ++i) same_feature(value_at<T>(o, i), *gv->Get(i));
    } else if constexpr (std::is_same_v<T, bool>) {
      const auto* gv = g.GetPointer<const flatbuffers::Vector<std::uint8_t>*>(slot);
      RF_CHECK(gv && gv->size() == o.count);
      for (std::uint32_t i = 0; i < o.count; ++i) RF_CHECK(gv->Get(i) == (value_at<T>(o, i) ? 1 : 0));
    } else {
      const auto* gv = g.GetPointer<const flatbuffers::Vector<T>*>(slot);
      RF_CHECK(gv && gv->size() == o.count);
      for (std::uint32_t i = 0; i < o.count; ++i) RF_CHECK(fuzz::same_bits(gv->Get(i), value_at<T>(o, i)));
    }
  });
}

void fuzz_generic(FuzzedDataProvider& in) {
  const plan p = decode(in);
  heap_buffer a(p.cap, 0x00), b(p.cap, 0xA5);
  const outcome ra = build(p, a);
  const outcome rb = build(p, b);
  RF_CHECK(ra.began == rb.began && ra.op_ok == rb.op_ok && ra.size == rb.size);
  if (!ra.size) return;
  const std::uint32_t size = ra.size;
  // Deterministic: same bytes whatever the buffer held before; nothing written past `size`.
  RF_CHECK(fuzz::equal_bytes(a.data(), b.data(), size));
  for (std::uint32_t i = size; i < p.cap; ++i) RF_CHECK(a.data()[i] == 0x00 && b.data()[i] == 0xA5);

  std::vector<const op*> fields;  // the ops that added a field (all of them: nothing failed)
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    RF_CHECK(ra.op_ok[i]);
    fields.push_back(&p.ops[i]);
  }
  if (p.ident) RF_CHECK(fb::identifier(fb::bytes_view{a.data(), size}) == p.ident);

  g_fields = &fields;
  flatbuffers::Verifier v(a.data(), size);
  RF_CHECK(v.VerifyBuffer<generic_table>(nullptr));
  g_fields = nullptr;

  const fb::table_view t = fb::root(fb::bytes_view{a.data(), size});
  RF_CHECK(t.valid());
  const auto& g = *flatbuffers::GetRoot<generic_table>(a.data());
  std::vector<bool> present(p.num_fields + 2u, false);
  for (const op* o : fields) {
    check_field(t, g, *o);
    present[o->id] = true;
  }
  for (fb::field_id id = 0; id < present.size(); ++id)
    if (!present[id]) {
      RF_CHECK(!t.has(id));
      RF_CHECK(t.get<std::uint32_t>(id, 77) == 77);
      RF_CHECK(t.vector<std::uint8_t>(id).empty() && t.string(id).empty() && !t.table(id).valid());
    }
}

// =============================================================================== schema mode

/// A field of a schema table: how to add it and how much room it needs in the worst case.
struct field_step {
  std::function<bool(fb::builder&)> add;
  std::uint32_t tail_bytes = 0;  // counted fields: alignment + u32 count + bytes (+ NUL)
};

std::uint32_t counted_need(std::uint32_t bytes, std::uint32_t align) { return align - 1 + 4 + bytes; }

/// Builds a table of descriptor D from `steps` (in input order, input subset) into a buffer of
/// input-chosen capacity; returns the finished bytes (empty if the builder ran out of room, which
/// is only allowed below the worst-case bound).
template <class D>
std::vector<std::uint8_t> build_schema(FuzzedDataProvider& in, std::vector<field_step> steps,
                                       std::vector<bool>& added) {
  const std::size_t n = steps.size();
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[in.ConsumeIntegralInRange<std::size_t>(0, i - 1)]);
  added.assign(n, false);
  std::vector<bool> wanted(n);
  std::uint64_t bound = align_up(8 + 4 + 2ull * D::num_fields_, 4) + 4 + D::inline_max_;
  for (std::size_t i = 0; i < n; ++i) {
    wanted[i] = in.ConsumeIntegralInRange<int>(0, 7) != 0;
    if (wanted[i]) bound += steps[i].tail_bytes;
  }
  const std::uint32_t cap = in.ConsumeIntegralInRange<int>(0, 3) != 0
                                ? static_cast<std::uint32_t>(bound) + in.ConsumeIntegralInRange<std::uint32_t>(0, 16)
                                : in.ConsumeIntegralInRange<std::uint32_t>(0, static_cast<std::uint32_t>(bound));
  heap_buffer buf(cap, 0xEE);
  fb::builder b(buf.data(), cap);
  bool ok = b.begin(D::type_id_, D::num_fields_, D::inline_max_);
  for (std::size_t i : order) {
    if (!wanted[i] || !ok) continue;
    ok = steps[i].add(b);
    added[i] = ok;
  }
  const std::uint32_t size = b.finish();
  if (cap >= bound) RF_CHECK(size != 0);  // D::inline_max_ and the bound always suffice
  if (!size) return {};
  RF_CHECK(size <= cap);
  return {buf.data(), buf.data() + size};
}

/// Flatc-generated verification of a buffer (copied to an aligned block) with identifier.
template <class G>
const G* verified(const std::vector<std::uint8_t>& bytes, fuzz::aligned_copy& copy, const char* ident) {
  copy = fuzz::aligned_copy(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  flatbuffers::Verifier v(copy.data(), copy.size);
  RF_CHECK(v.VerifyBuffer<G>(ident));
  return flatbuffers::GetRoot<G>(copy.data());
}

std::string consume_text(FuzzedDataProvider& in, std::size_t max) { return in.ConsumeRandomLengthString(max); }

template <class T>
std::vector<T> consume_pod_vector(FuzzedDataProvider& in, std::size_t max) {
  const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, max);
  std::vector<T> v(n);
  const std::vector<std::uint8_t> raw = in.ConsumeBytes<std::uint8_t>(n * sizeof(T));
  if (!raw.empty()) std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

void check_ingress(FuzzedDataProvider& in, type_id type, const std::vector<std::uint8_t>& payload);

void schema_echo(FuzzedDataProvider& in) {
  using D = msg::Echo;
  const auto seq = in.ConsumeIntegral<std::uint64_t>();
  const auto body = consume_pod_vector<std::uint8_t>(in, 300);
  const std::string note = consume_text(in, 64);
  std::vector<bool> added;
  const auto bytes = build_schema<D>(
      in,
      {{[&](fb::builder& b) { return b.add<std::uint64_t>(D::fields_::sequence, seq); }, 0},
       {[&](fb::builder& b) {
          return b.add_vector<std::uint8_t>(D::fields_::body, body.data(), static_cast<std::uint32_t>(body.size()));
        },
        counted_need(static_cast<std::uint32_t>(body.size()), 4)},
       {[&](fb::builder& b) {
          return b.add_string(D::fields_::note, note.data(), static_cast<std::uint32_t>(note.size()));
        },
        counted_need(static_cast<std::uint32_t>(note.size()) + 1, 4)}},
      added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<demo::Echo>(bytes, copy, demo::EchoIdentifier());
  RF_CHECK(g->sequence() == (added[0] ? seq : 0));
  RF_CHECK((g->body() != nullptr) == added[1]);
  if (added[1]) RF_CHECK(g->body()->size() == body.size() && std::equal(body.begin(), body.end(), g->body()->begin()));
  RF_CHECK((g->note() != nullptr) == added[2]);
  if (added[2]) RF_CHECK(g->note()->str() == note);
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

void schema_saxpy_request(FuzzedDataProvider& in) {
  using D = msg::SaxpyRequest;
  const float a = in.ConsumeFloatingPoint<float>();
  const auto x = consume_pod_vector<float>(in, 100);
  const auto y = consume_pod_vector<float>(in, 100);
  std::vector<bool> added;
  const auto bytes =
      build_schema<D>(in,
                      {{[&](fb::builder& b) { return b.add<float>(D::fields_::a, a); }, 0},
                       {[&](fb::builder& b) {
                          return b.add_vector<float>(D::fields_::x, x.data(), static_cast<std::uint32_t>(x.size()));
                        },
                        counted_need(static_cast<std::uint32_t>(x.size() * 4), 4)},
                       {[&](fb::builder& b) {
                          return b.add_vector<float>(D::fields_::y, y.data(), static_cast<std::uint32_t>(y.size()));
                        },
                        counted_need(static_cast<std::uint32_t>(y.size() * 4), 4)}},
                      added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<demo::SaxpyRequest>(bytes, copy, demo::SaxpyRequestIdentifier());
  RF_CHECK(fuzz::same_bits(g->a(), added[0] ? a : D::defaults_::a));
  const auto same_floats = [](const flatbuffers::Vector<float>* gv, const std::vector<float>& want) {
    RF_CHECK(gv && gv->size() == want.size());
    for (std::uint32_t i = 0; i < want.size(); ++i) RF_CHECK(fuzz::same_bits(gv->Get(i), want[i]));
  };
  RF_CHECK((g->x() != nullptr) == added[1]);
  if (added[1]) same_floats(g->x(), x);
  RF_CHECK((g->y() != nullptr) == added[2]);
  if (added[2]) same_floats(g->y(), y);
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

void schema_saxpy_reply(FuzzedDataProvider& in) {
  using D = msg::SaxpyReply;
  const auto y = consume_pod_vector<float>(in, 200);
  // Written in place, element by element, after the table is laid out (as a kernel does).
  std::vector<bool> added;
  const auto bytes = build_schema<D>(in,
                                     {{[&](fb::builder& b) {
                                         auto out =
                                             b.add_vector<float>(D::fields_::y, static_cast<std::uint32_t>(y.size()));
                                         if (!out) return false;
                                         for (std::uint32_t i = static_cast<std::uint32_t>(y.size()); i > 0; --i)
                                           out.set(i - 1, y[i - 1]);
                                         return true;
                                       },
                                       counted_need(static_cast<std::uint32_t>(y.size() * 4), 4)}},
                                     added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<demo::SaxpyReply>(bytes, copy, demo::SaxpyReplyIdentifier());
  RF_CHECK((g->y() != nullptr) == added[0]);
  if (added[0]) {
    RF_CHECK(g->y()->size() == y.size());
    for (std::uint32_t i = 0; i < y.size(); ++i) RF_CHECK(fuzz::same_bits(g->y()->Get(i), y[i]));
  }
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

void schema_score_request(FuzzedDataProvider& in) {
  using D = msg::ScoreRequest;
  const auto request_id = in.ConsumeIntegral<std::uint64_t>();
  msg::Quote quote{};
  quote.base_price = in.ConsumeFloatingPoint<double>();
  quote.quantity = in.ConsumeIntegral<std::uint32_t>();
  quote.tier = in.ConsumeIntegral<std::uint8_t>();
  const auto features = consume_pod_vector<msg::Feature>(in, 64);
  const float max_discount = in.ConsumeFloatingPoint<float>();
  const std::string symbol = consume_text(in, 32);
  std::vector<bool> added;
  const auto bytes = build_schema<D>(
      in,
      {{[&](fb::builder& b) { return b.add<std::uint64_t>(D::fields_::request_id, request_id); }, 0},
       {[&](fb::builder& b) { return b.add<msg::Quote>(D::fields_::quote, quote); }, 0},
       {[&](fb::builder& b) {
          return b.add_vector<msg::Feature>(D::fields_::features, features.data(),
                                            static_cast<std::uint32_t>(features.size()));
        },
        counted_need(static_cast<std::uint32_t>(features.size() * sizeof(msg::Feature)), 4)},
       {[&](fb::builder& b) { return b.add<float>(D::fields_::max_discount, max_discount); }, 0},
       {[&](fb::builder& b) {
          return b.add_string(D::fields_::symbol, symbol.data(), static_cast<std::uint32_t>(symbol.size()));
        },
        counted_need(static_cast<std::uint32_t>(symbol.size()) + 1, 4)}},
      added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<demo::ScoreRequest>(bytes, copy, demo::ScoreRequestIdentifier());
  RF_CHECK(g->request_id() == (added[0] ? request_id : 0));
  RF_CHECK((g->quote() != nullptr) == added[1]);
  if (added[1]) same_quote(quote, *g->quote());
  RF_CHECK((g->features() != nullptr) == added[2]);
  if (added[2]) {
    RF_CHECK(g->features()->size() == features.size());
    for (std::uint32_t i = 0; i < features.size(); ++i) same_feature(features[i], *g->features()->Get(i));
  }
  RF_CHECK(fuzz::same_bits(g->max_discount(), added[3] ? max_discount : D::defaults_::max_discount));
  RF_CHECK((g->symbol() != nullptr) == added[4]);
  if (added[4]) RF_CHECK(g->symbol()->str() == symbol);
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

void schema_score_reply(FuzzedDataProvider& in) {
  using D = msg::ScoreReply;
  const auto request_id = in.ConsumeIntegral<std::uint64_t>();
  const float score = in.ConsumeFloatingPoint<float>();
  const double price = in.ConsumeFloatingPoint<double>();
  const bool approved = in.ConsumeBool();
  const auto reason = in.ConsumeIntegral<std::uint16_t>();
  std::vector<bool> added;
  const auto bytes =
      build_schema<D>(in,
                      {{[&](fb::builder& b) { return b.add<std::uint64_t>(D::fields_::request_id, request_id); }, 0},
                       {[&](fb::builder& b) { return b.add<float>(D::fields_::score, score); }, 0},
                       {[&](fb::builder& b) { return b.add<double>(D::fields_::price, price); }, 0},
                       {[&](fb::builder& b) { return b.add<bool>(D::fields_::approved, approved); }, 0},
                       {[&](fb::builder& b) { return b.add<std::uint16_t>(D::fields_::reason, reason); }, 0}},
                      added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<demo::ScoreReply>(bytes, copy, demo::ScoreReplyIdentifier());
  RF_CHECK(g->request_id() == (added[0] ? request_id : 0));
  RF_CHECK(fuzz::same_bits(g->score(), added[1] ? score : 0.0f));
  RF_CHECK(fuzz::same_bits(g->price(), added[2] ? price : 0.0));
  RF_CHECK(g->approved() == (added[3] && approved));
  RF_CHECK(g->reason() == (added[4] ? reason : 0));
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

void schema_error_reply(FuzzedDataProvider& in) {
  using D = msg::ErrorReply;
  const auto code = in.ConsumeIntegral<std::uint16_t>();
  const std::string detail = consume_text(in, 128);
  std::vector<bool> added;
  const auto bytes = build_schema<D>(in,
                                     {{[&](fb::builder& b) { return b.add<std::uint16_t>(D::fields_::code, code); }, 0},
                                      {[&](fb::builder& b) {
                                         return b.add_string(D::fields_::detail, detail.data(),
                                                             static_cast<std::uint32_t>(detail.size()));
                                       },
                                       counted_need(static_cast<std::uint32_t>(detail.size()) + 1, 4)}},
                                     added);
  if (bytes.empty()) return;
  fuzz::aligned_copy copy(nullptr, 0);
  const auto* g = verified<wire::ErrorReply>(bytes, copy, wire::ErrorReplyIdentifier());
  RF_CHECK(g->code() == (added[0] ? code : 0));
  RF_CHECK((g->detail() != nullptr) == added[1]);
  if (added[1]) RF_CHECK(g->detail()->str() == detail);
  RF_CHECK(fuzz::verify_and_compare_typed(D::type_id_, fb::bytes_view{copy.data(), copy.size}));
  check_ingress(in, D::type_id_, bytes);
}

struct envelope_values {
  std::uint16_t schema_version = 1;
  std::uint64_t correlation_id = 0, sequence = 0, deadline_ns = 0;
  std::uint32_t flags = 0;
  std::string tenant, traceparent;
};

envelope_values consume_envelope_values(FuzzedDataProvider& in) {
  envelope_values e;
  e.schema_version = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? in.ConsumeIntegral<std::uint16_t>() : 1;
  e.correlation_id = in.ConsumeIntegral<std::uint64_t>();
  e.sequence = in.ConsumeIntegral<std::uint64_t>();
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: e.deadline_ns = 0; break;
    case 1: e.deadline_ns = kNow + 1 + in.ConsumeIntegralInRange<std::uint64_t>(0, 1ull << 50); break;
    default: e.deadline_ns = in.ConsumeIntegral<std::uint64_t>(); break;
  }
  e.flags = in.ConsumeIntegral<std::uint32_t>();
  e.tenant = consume_text(in, 24);
  if (in.ConsumeBool()) {
    trace_context ctx;
    for (auto& b : ctx.trace_id) b = in.ConsumeIntegral<std::uint8_t>();
    for (auto& b : ctx.span_id) b = in.ConsumeIntegral<std::uint8_t>();
    ctx.trace_id[15] |= 1;
    ctx.span_id[7] |= 1;
    ctx.flags = in.ConsumeIntegral<std::uint8_t>();
    e.traceparent = format_traceparent(ctx);
  } else {
    e.traceparent = consume_text(in, 60);
  }
  return e;
}

void check_validated(const ingress_result& r, const envelope_values& e, type_id type,
                     const std::vector<std::uint8_t>& payload, bool tenant_present) {
  const std::uint16_t version = e.schema_version;
  if (version == 0 || version > envelope_schema_version) {
    RF_CHECK(r.error == ingress_errc::unsupported_schema_version);
    return;
  }
  if (e.deadline_ns != 0 && e.deadline_ns <= kNow) {
    RF_CHECK(r.error == ingress_errc::deadline_passed);
    return;
  }
  RF_CHECK(r);
  const validated_message& m = r.message;
  RF_CHECK(m.type == type && m.schema_version == version);
  RF_CHECK(m.correlation_id == e.correlation_id && m.sequence == e.sequence);
  RF_CHECK(m.deadline_ns == e.deadline_ns && m.flags == e.flags);
  RF_CHECK(m.tenant == (tenant_present ? std::string_view(e.tenant) : std::string_view()));
  RF_CHECK(m.payload.size == payload.size());
  RF_CHECK(fuzz::equal_bytes(m.payload.data, payload.data(), payload.size()));
  trace_context expect;
  RF_CHECK(m.trace.valid == parse_traceparent(e.traceparent, expect));
  if (m.trace.valid)
    RF_CHECK(std::memcmp(&m.trace.trace_id, &expect.trace_id, 16) == 0 && m.trace.flags == expect.flags);
}

/// Wraps `payload` into envelopes (fb::builder and encode_envelope); both must pass ingress.
void check_ingress(FuzzedDataProvider& in, type_id type, const std::vector<std::uint8_t>& payload) {
  using E = msg::Envelope;
  const envelope_values e = consume_envelope_values(in);
  const bool write_version = e.schema_version != 1 || in.ConsumeBool();  // default is 1
  std::vector<bool> added;
  const auto tenant_size = static_cast<std::uint32_t>(e.tenant.size());
  const auto tp_size = static_cast<std::uint32_t>(e.traceparent.size());
  const auto payload_size = static_cast<std::uint32_t>(payload.size());
  const bool tenant_present = !e.tenant.empty() && in.ConsumeBool();
  std::vector<field_step> steps = {
      {[&](fb::builder& b) {
         return !write_version || b.add<std::uint16_t>(E::fields_::schema_version, e.schema_version);
       },
       0},
      {[&](fb::builder& b) { return b.add<std::uint32_t>(E::fields_::type_id, type); }, 0},
      {[&](fb::builder& b) { return b.add<std::uint64_t>(E::fields_::correlation_id, e.correlation_id); }, 0},
      {[&](fb::builder& b) { return b.add<std::uint64_t>(E::fields_::sequence, e.sequence); }, 0},
      {[&](fb::builder& b) {
         return !tenant_present || b.add_string(E::fields_::tenant, e.tenant.data(), tenant_size);
       },
       counted_need(tenant_size + 1, 4)},
      {[&](fb::builder& b) { return b.add<std::uint64_t>(E::fields_::deadline_ns, e.deadline_ns); }, 0},
      {[&](fb::builder& b) { return b.add_string(E::fields_::traceparent, e.traceparent.data(), tp_size); },
       counted_need(tp_size + 1, 4)},
      {[&](fb::builder& b) { return b.add<std::uint32_t>(E::fields_::flags, e.flags); }, 0},
      {[&](fb::builder& b) { return b.add_bytes(E::fields_::payload, payload.data(), payload_size); },
       counted_need(payload_size, 8)},
  };
  // All fields are required for the expectation below: build with room to spare and no subset.
  std::vector<std::size_t> order(steps.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (std::size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[in.ConsumeIntegralInRange<std::size_t>(0, i - 1)]);
  std::uint64_t bound = align_up(8 + 4 + 2ull * E::num_fields_, 4) + 4 + E::inline_max_;
  for (const auto& s : steps) bound += s.tail_bytes;
  heap_buffer buf(static_cast<std::uint32_t>(bound), 0x5A);
  fb::builder b(buf.data(), buf.cap);
  RF_CHECK(b.begin(E::type_id_, E::num_fields_, E::inline_max_));
  for (std::size_t i : order) RF_CHECK(steps[i].add(b));
  const std::uint32_t size = b.finish();
  RF_CHECK(size != 0);

  const payload_registry& registry = payload_registry::demo();
  const ingress_result r = validate_ingress({buf.data(), size}, registry, ingress_limits{}, kNow);
  check_validated(r, e, type, payload, tenant_present);
  if (r) RF_CHECK(fuzz::verify_and_compare_typed(E::type_id_, fb::bytes_view{buf.data(), size}));

  // The same message through encode_envelope (flatc's builder).
  envelope_fields f;
  f.schema_version = e.schema_version;
  f.type = type;
  f.correlation_id = e.correlation_id;
  f.sequence = e.sequence;
  if (tenant_present) f.tenant = e.tenant;
  f.deadline_ns = e.deadline_ns;
  f.traceparent = e.traceparent;
  f.flags = e.flags;
  f.payload = payload;
  const std::vector<std::uint8_t> encoded = encode_envelope(f);
  const fuzz::aligned_copy enc(encoded.data(), static_cast<std::uint32_t>(encoded.size()));
  const ingress_result r2 = validate_ingress({enc.data(), enc.size}, registry, ingress_limits{}, kNow);
  // encode_envelope omits an empty traceparent; the builder above wrote it (empty string): both
  // parse as "untraced".
  check_validated(r2, e, type, payload, tenant_present);
  if (r2) RF_CHECK(reinterpret_cast<std::uintptr_t>(r2.message.payload.data) % 8 == 0);
}

void fuzz_schema(FuzzedDataProvider& in, std::uint8_t which) {
  switch (which % 6) {
    case 0: schema_echo(in); break;
    case 1: schema_saxpy_request(in); break;
    case 2: schema_saxpy_reply(in); break;
    case 3: schema_score_request(in); break;
    case 4: schema_score_reply(in); break;
    case 5: schema_error_reply(in); break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65536) return -1;
  FuzzedDataProvider in(data, size);
  const auto mode = in.ConsumeIntegral<std::uint8_t>();
  if (mode & 1) fuzz_generic(in);
  else fuzz_schema(in, static_cast<std::uint8_t>(mode >> 1));
  return 0;
}

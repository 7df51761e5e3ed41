// ringflow_fuzz_view: the input is a raw (untrusted, unverified) FlatBuffer. Every accessor of
// ringflow/fb_view.hpp and every descriptor of ringflow/messages.hpp reads it; none may read
// outside the input (ASan: the input lives in an exactly-sized heap block; plus explicit pointer
// range checks). Where the bytes pass a flatc-generated Verifier, the typed views must return the
// same values as the generated accessors (fb_view.hpp's contract).
#include <array>
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

namespace {

using namespace ringflow;
using fuzz::bounds;
using fuzz::consume;

// Odd-sized trivially-copyable "structs" for get_struct / vector<T>.
struct three {
  std::uint8_t b[3];
};
struct big {
  std::uint8_t b[40];
};

template <class T>
void probe_vector(const bounds& in, const fb::table_view& t, fb::field_id id) {
  const fb::vector_view<T> v = t.vector<T>(id);
  RF_CHECK(in.holds(v.data(), static_cast<std::uint64_t>(v.size()) * sizeof(T)));
  if (v.size()) {
    consume(v[0]);
    consume(v[v.size() - 1]);
    consume(v[v.size() / 2]);
  }
  const T past = v[v.size()];
  RF_CHECK(fuzz::same_bits(past, T{}));
  const T far = v[0xFFFFFFFFu];
  RF_CHECK(fuzz::same_bits(far, T{}));
}

template <class T>
void probe_scalar(const fb::table_view& t, fb::field_id id) {
  const T d{};
  consume(t.get<T>(id, d));
  if (!t.has(id)) RF_CHECK(fuzz::same_bits(t.get<T>(id, d), d));
}

template <class S>
void probe_struct(const fb::table_view& t, fb::field_id id) {
  S s{};
  if (t.get_struct(id, s)) consume(s);
  else RF_CHECK(fuzz::same_bits(s, S{}));  // untouched when absent
}

void probe_struct_view(const bounds& in, const fb::table_view& t, fb::field_id id, std::uint32_t size) {
  const fb::struct_view sv = t.get_struct_view(id, size);
  if (!sv.valid()) {
    RF_CHECK(sv.get<std::uint64_t>(0) == 0);
    return;
  }
  // Offsets at both ends of the struct and far past it.
  const std::uint32_t offs[] = {0, size > 8 ? size - 8 : 0, size - 1, size, 0xFFFFFFF9u};
  for (std::uint32_t off : offs) {
    consume(sv.get<std::uint8_t>(off));
    consume(sv.get<std::uint64_t>(off));
  }
  (void)in;
}

void walk_table(const bounds& in, const fb::table_view& t, int depth, int& budget);

// `buf` (the input, a prefix of it, or a nested buffer inside it) must lie in `outer`; everything
// read through it must lie in `buf` itself.
void walk_bytes(const bounds& outer, fb::bytes_view buf, int depth, int& budget) {
  RF_CHECK(outer.holds(buf.data, buf.size));
  const bounds in{buf.data, buf.data + buf.size};
  consume(fb::identifier(buf));
  const fb::table_view r = fb::root(buf);
  if (r.valid()) walk_table(in, r, depth, budget);
  // The typed descriptors over this (sub)buffer, whatever its identifier says.
  for (type_id type : fuzz::all_types) fuzz::walk_typed(in, type, buf);
}

void walk_table(const bounds& in, const fb::table_view& t, int depth, int& budget) {
  if (--budget < 0) return;
  RF_CHECK(t.valid());
  const fb::bytes_view buf = t.buffer();
  RF_CHECK(in.holds(buf.data, buf.size));
  RF_CHECK(buf.contains(t.position(), 4));
  for (fb::field_id id = 0; id <= 40; ++id) {
    const std::uint16_t off = t.field_offset(id);
    RF_CHECK(t.has(id) == (off != 0));
    probe_scalar<std::uint8_t>(t, id);
    probe_scalar<std::int8_t>(t, id);
    probe_scalar<std::uint16_t>(t, id);
    probe_scalar<std::int16_t>(t, id);
    probe_scalar<std::uint32_t>(t, id);
    probe_scalar<std::int32_t>(t, id);
    probe_scalar<std::uint64_t>(t, id);
    probe_scalar<std::int64_t>(t, id);
    probe_scalar<float>(t, id);
    probe_scalar<double>(t, id);
    probe_scalar<bool>(t, id);
    probe_struct<msg::Quote>(t, id);
    probe_struct<msg::Feature>(t, id);
    probe_struct<three>(t, id);
    probe_struct<big>(t, id);
    for (std::uint32_t size : {1u, 16u, 0xFFFFu, 0xFFFFFFFFu}) probe_struct_view(in, t, id, size);
    probe_vector<std::uint8_t>(in, t, id);
    probe_vector<std::uint16_t>(in, t, id);
    probe_vector<std::uint32_t>(in, t, id);
    probe_vector<std::uint64_t>(in, t, id);
    probe_vector<float>(in, t, id);
    probe_vector<double>(in, t, id);
    probe_vector<bool>(in, t, id);
    probe_vector<msg::Feature>(in, t, id);
    probe_vector<msg::Quote>(in, t, id);
    probe_vector<three>(in, t, id);
    probe_vector<big>(in, t, id);
    const fb::string_view s = t.string(id);
    RF_CHECK(in.holds(s.data, s.size));
    if (s.size) consume(s.data[0] ^ s.data[s.size - 1]);
    const fb::bytes_view nested = t.nested(id);
    RF_CHECK(in.holds(nested.data, nested.size));
    if (depth < 3 && nested.size) walk_bytes(in, nested, depth + 1, budget);
    const fb::table_view sub = t.table(id);
    if (sub.valid()) {
      RF_CHECK(sub.buffer().data == buf.data && sub.buffer().size == buf.size);
      if (depth < 3) walk_table(in, sub, depth + 1, budget);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return -1;
  const fuzz::owned_copy in(data, size);
  const bounds all{in.data(), in.data() + in.size};
  const fb::bytes_view buf = in.view();

  int budget = 12;
  walk_bytes(all, buf, 0, budget);

  // Tables at arbitrary positions (the first bytes, the ends, and far beyond them).
  for (std::uint64_t pos = 1; pos < 32 && pos <= buf.size; pos += 3) {
    const fb::table_view t(buf, pos);
    int b = 1;
    if (t.valid()) walk_table(all, t, 3, b);
  }
  const std::uint64_t end = buf.size;
  for (std::uint64_t pos : {end, end >= 1 ? end - 1 : ~std::uint64_t{0}, end >= 4 ? end - 4 : end + 1,
                            std::uint64_t{0xFFFFFFFFu}, std::uint64_t{0x100000000ull}, ~std::uint64_t{0}}) {
    const fb::table_view t(buf, pos);
    int b = 1;
    if (t.valid()) walk_table(all, t, 3, b);
  }

  // Truncated prefixes and a shifted window: views must respect the size they are given even
  // when the bytes after it are readable.
  if (buf.size > 0) {
    for (std::uint32_t cut : {buf.size / 2, buf.size - 1}) {
      int b = 4;
      walk_bytes(all, fb::bytes_view{buf.data, cut}, 2, b);
    }
  }

  // Differential: where a generated Verifier accepts the bytes, view == generated accessors.
  for (type_id type : fuzz::all_types) fuzz::verify_and_compare_typed(type, buf);
  // The same for an envelope's payload, as its own buffer.
  const fb::bytes_view payload = ringflow::view_of<msg::Envelope>(buf).payload();
  if (payload.size) {
    const type_id declared = ringflow::view_of<msg::Envelope>(buf).type_id();
    if (!fuzz::verify_and_compare_typed(declared, payload))
      for (type_id type : fuzz::all_types) fuzz::verify_and_compare_typed(type, payload);
  }
  return 0;
}

// ringflow/fb_view.hpp — a portable read view of the FlatBuffers binary format.
//
// Contract: reads root tables, vtable fields with defaults, scalars, structs, vectors (of scalars
// and structs), strings, sub-tables and nested buffers exactly as flatc-generated code does, on
// host and device (RINGFLOW_HD; compiles under g++, clang, nvcc and hipcc; no allocation, no
// exceptions). On a buffer that passed flatbuffers::Verifier it returns the same values as the
// generated accessors. On *any* bytes it never reads outside [data, data+size): every offset is
// bounds-checked with 64-bit arithmetic, and what does not fit reads as absent (default value,
// empty vector, empty string, invalid table). It is not a verifier: run ingress validation on
// untrusted bytes before trusting their content.
//
// Format notes (FlatBuffers 2.0.x, little-endian):
//   buffer  := u32 root_offset, [4-byte file identifier], ...
//   table   := i32 soffset (vtable = table - soffset), inline fields
//   vtable  := u16 vtable_bytes, u16 table_bytes, u16 field_offset[n] (0 = absent)
//   vector  := u32 count, elements;  string := u32 length, bytes, '\0'
//   offsets to tables/vectors/strings are u32 relative to the offset field, always forward.
//
// Thread-safety: views are immutable values; any number of threads may read one buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ringflow/portable.hpp"

namespace ringflow {

/// A message type id: the payload schema's 4-byte file identifier read as a little-endian u32.
using type_id = std::uint32_t;

/// type_id of a 4-character identifier, e.g. type_id_of("SXPQ").
RINGFLOW_HD constexpr type_id type_id_of(const char (&id)[5]) {
  return static_cast<type_id>(static_cast<unsigned char>(id[0])) |
         static_cast<type_id>(static_cast<unsigned char>(id[1])) << 8 |
         static_cast<type_id>(static_cast<unsigned char>(id[2])) << 16 |
         static_cast<type_id>(static_cast<unsigned char>(id[3])) << 24;
}

namespace fb {

using byte = std::uint8_t;
/// A field's id: its position in the schema (0 for the first field). vtable slot = 4 + 2 * id.
using field_id = std::uint16_t;

namespace detail {

template <std::size_t N>
struct uint_of_size;
template <>
struct uint_of_size<1> {
  using type = std::uint8_t;
};
template <>
struct uint_of_size<2> {
  using type = std::uint16_t;
};
template <>
struct uint_of_size<4> {
  using type = std::uint32_t;
};
template <>
struct uint_of_size<8> {
  using type = std::uint64_t;
};

/// Little-endian load without alignment or aliasing assumptions. Arithmetic types are assembled
/// byte by byte (one plain load on little-endian targets after optimisation); bool reads a byte;
/// structs are copied byte for byte (flatc structs are trivially copyable with explicit padding).
template <class T>
RINGFLOW_HD inline T load(const byte* p) {
  static_assert(std::is_trivially_copyable_v<T>, "view reads trivially copyable types only");
  if constexpr (std::is_same_v<T, bool>) {
    return p[0] != 0;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    using U = typename uint_of_size<sizeof(T)>::type;
    U u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
    return __builtin_bit_cast(T, u);
  } else {
    T out;
    auto* dst = reinterpret_cast<byte*>(&out);
    for (std::size_t i = 0; i < sizeof(T); ++i) dst[i] = p[i];
    return out;
  }
}

/// Little-endian store, the mirror of load().
template <class T>
RINGFLOW_HD inline void store(byte* p, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  if constexpr (std::is_same_v<T, bool>) {
    p[0] = v ? 1 : 0;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    using U = typename uint_of_size<sizeof(T)>::type;
    U u = __builtin_bit_cast(U, v);
    for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<byte>(u >> (8 * i));
  } else {
    const auto* src = reinterpret_cast<const byte*>(&v);
    for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = src[i];
  }
}

/// Element size in the wire format (bool is one byte).
template <class T>
RINGFLOW_HD constexpr std::uint32_t wire_size() {
  return static_cast<std::uint32_t>(sizeof(T));
}

}  // namespace detail

/// A byte range. The unit every other view is built on.
struct bytes_view {
  const byte* data = nullptr;
  std::uint32_t size = 0;

  RINGFLOW_HD bool empty() const { return size == 0; }
  /// True when [off, off+len) lies inside the range (64-bit arithmetic, no overflow).
  RINGFLOW_HD bool contains(std::uint64_t off, std::uint64_t len) const { return off <= size && len <= size - off; }
};

/// A vector of scalars or structs; out-of-range reads return T{} (never touch memory).
template <class T>
class vector_view {
 public:
  vector_view() = default;  // implicitly __host__ __device__
  RINGFLOW_HD vector_view(const byte* elems, std::uint32_t count) : elems_(elems), count_(count) {}
  RINGFLOW_HD std::uint32_t size() const { return count_; }
  RINGFLOW_HD bool empty() const { return count_ == 0; }
  RINGFLOW_HD T operator[](std::uint32_t i) const {
    return i < count_ ? detail::load<T>(elems_ + static_cast<std::uint64_t>(i) * sizeof(T)) : T{};
  }
  /// Raw element bytes (count * sizeof(T)); elements may be unaligned in memory.
  RINGFLOW_HD const byte* data() const { return elems_; }

 private:
  const byte* elems_ = nullptr;
  std::uint32_t count_ = 0;
};

/// A FlatBuffers string: length-counted bytes (the view does not require the trailing NUL).
struct string_view {
  const char* data = nullptr;
  std::uint32_t size = 0;
  RINGFLOW_HD bool empty() const { return size == 0; }
  RINGFLOW_HD bool equals(const char* s, std::uint32_t n) const {
    if (n != size) return false;
    for (std::uint32_t i = 0; i < n; ++i)
      if (data[i] != s[i]) return false;
    return true;
  }
};

/// A struct stored inline (in a table or vector): typed reads at byte offsets within it.
class struct_view {
 public:
  struct_view() = default;  // implicitly __host__ __device__
  RINGFLOW_HD struct_view(const byte* p, std::uint32_t size) : p_(p), size_(size) {}
  RINGFLOW_HD bool valid() const { return p_ != nullptr; }
  template <class T>
  RINGFLOW_HD T get(std::uint32_t offset) const {
    return (p_ && offset <= size_ && sizeof(T) <= size_ - offset) ? detail::load<T>(p_ + offset) : T{};
  }

 private:
  const byte* p_ = nullptr;
  std::uint32_t size_ = 0;
};

class table_view;
RINGFLOW_HD inline table_view root(bytes_view buf);

/// A table inside a buffer. Default-constructed (or from bad offsets) it is invalid and every
/// field reads as absent.
class table_view {
 public:
  table_view() = default;  // implicitly __host__ __device__

  /// The table at byte `pos` of `buf`; invalid unless its soffset and vtable lie inside `buf`.
  RINGFLOW_HD table_view(bytes_view buf, std::uint64_t pos) {
    if (!buf.contains(pos, 4)) return;
    const auto soff = detail::load<std::int32_t>(buf.data + pos);
    const std::int64_t vt = static_cast<std::int64_t>(pos) - soff;
    if (vt < 0 || !buf.contains(static_cast<std::uint64_t>(vt), 4)) return;
    const auto vt_bytes = detail::load<std::uint16_t>(buf.data + vt);
    if (vt_bytes < 4 || !buf.contains(static_cast<std::uint64_t>(vt), vt_bytes)) return;
    buf_ = buf;
    pos_ = static_cast<std::uint32_t>(pos);
    vt_ = static_cast<std::uint32_t>(vt);
    vt_bytes_ = vt_bytes;
  }

  RINGFLOW_HD bool valid() const { return buf_.data != nullptr; }
  RINGFLOW_HD bytes_view buffer() const { return buf_; }
  RINGFLOW_HD std::uint32_t position() const { return pos_; }

  /// The field's inline offset from the table start, or 0 when absent (as in flatc's GetOptionalFieldOffset).
  RINGFLOW_HD std::uint16_t field_offset(field_id id) const {
    const std::uint32_t slot = 4u + 2u * id;
    if (!valid() || slot + 2u > vt_bytes_) return 0;
    return detail::load<std::uint16_t>(buf_.data + vt_ + slot);
  }
  RINGFLOW_HD bool has(field_id id) const { return field_offset(id) != 0; }

  /// Scalar field (integers, floats, bool, enums) or its default when absent.
  template <class T>
  RINGFLOW_HD T get(field_id id, T default_value) const {
    const std::uint64_t at = field_at(id, detail::wire_size<T>());
    return at ? detail::load<T>(buf_.data + at) : default_value;
  }

  /// Struct field copied into a trivially-copyable mirror type S (flatc layout); false when absent.
  template <class S>
  RINGFLOW_HD bool get_struct(field_id id, S& out) const {
    const std::uint64_t at = field_at(id, sizeof(S));
    if (!at) return false;
    out = detail::load<S>(buf_.data + at);
    return true;
  }
  /// Struct field as a struct_view of `size` bytes (invalid when absent).
  RINGFLOW_HD struct_view get_struct_view(field_id id, std::uint32_t size) const {
    const std::uint64_t at = field_at(id, size);
    return at ? struct_view(buf_.data + at, size) : struct_view();
  }

  /// Vector of scalars or structs (T = element mirror type); empty when absent or out of bounds.
  template <class T>
  RINGFLOW_HD vector_view<T> vector(field_id id) const {
    std::uint64_t at = 0;
    std::uint32_t n = 0;
    if (!counted(id, sizeof(T), at, n)) return {};
    return vector_view<T>(buf_.data + at, n);
  }

  /// String field; empty when absent or out of bounds.
  RINGFLOW_HD string_view string(field_id id) const {
    std::uint64_t at = 0;
    std::uint32_t n = 0;
    if (!counted(id, 1, at, n)) return {};
    return {reinterpret_cast<const char*>(buf_.data + at), n};
  }

  /// Sub-table field; invalid when absent or out of bounds.
  RINGFLOW_HD table_view table(field_id id) const {
    std::uint64_t target = 0;
    if (!deref(id, target)) return {};
    return table_view(buf_, target);
  }

  /// A [ubyte] field holding a nested FlatBuffer, as bytes (use fb::root() on it).
  RINGFLOW_HD bytes_view nested(field_id id) const {
    std::uint64_t at = 0;
    std::uint32_t n = 0;
    if (!counted(id, 1, at, n)) return {};
    return {buf_.data + at, n};
  }

 private:
  // Absolute position of a `width`-byte inline field, or 0 when absent/out of bounds.
  // (0 is never a valid field position: the root offset occupies bytes 0..3.)
  RINGFLOW_HD std::uint64_t field_at(field_id id, std::uint64_t width) const {
    const std::uint16_t off = field_offset(id);
    if (off == 0) return 0;
    const std::uint64_t at = static_cast<std::uint64_t>(pos_) + off;
    return buf_.contains(at, width) ? at : 0;
  }
  // Follows a uoffset field to its target.
  RINGFLOW_HD bool deref(field_id id, std::uint64_t& target) const {
    const std::uint64_t at = field_at(id, 4);
    if (!at) return false;
    target = at + detail::load<std::uint32_t>(buf_.data + at);
    return buf_.contains(target, 4);
  }
  // Follows a uoffset to a length-prefixed run of n * elem_size bytes; `at` = first element.
  RINGFLOW_HD bool counted(field_id id, std::uint64_t elem_size, std::uint64_t& at, std::uint32_t& n) const {
    std::uint64_t target = 0;
    if (!deref(id, target)) return false;
    n = detail::load<std::uint32_t>(buf_.data + target);
    at = target + 4;
    return buf_.contains(at, static_cast<std::uint64_t>(n) * elem_size);
  }

  bytes_view buf_{};
  std::uint32_t pos_ = 0;
  std::uint32_t vt_ = 0;
  std::uint16_t vt_bytes_ = 0;
};

/// The root table of a buffer (invalid if the buffer is too small or the offsets are bad).
RINGFLOW_HD inline table_view root(bytes_view buf) {
  if (!buf.contains(0, 4)) return {};
  return table_view(buf, detail::load<std::uint32_t>(buf.data));
}

/// The buffer's file identifier as a type_id, or 0 when the buffer is shorter than 8 bytes.
RINGFLOW_HD inline type_id identifier(bytes_view buf) {
  return buf.contains(0, 8) ? detail::load<std::uint32_t>(buf.data + 4) : 0;
}

}  // namespace fb

/// Typed view of a buffer's root table through a descriptor (e.g. view_of<msg::SaxpyRequest>(b)).
template <class Descriptor>
RINGFLOW_HD inline Descriptor view_of(fb::bytes_view buf) {
  return Descriptor{fb::root(buf)};
}

}  // namespace ringflow

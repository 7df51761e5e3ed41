// ringflow/fb_writer.hpp — builds one FlatBuffers root table into a fixed buffer, on host or device.
//
// Contract: the output is a valid FlatBuffer (flatbuffers::Verifier accepts it, generated accessors
// read it) holding one root table with scalar, struct, vector (of scalars/structs), string and
// [ubyte] fields, plus an optional file identifier. No allocation, no exceptions: any misuse or
// overflow (buffer too small, field id out of range, inline area exhausted, field added twice)
// latches an error, later calls do nothing, and finish() returns 0.
//
// Layout (front to back, unlike flatc's back-to-front builder, so vector elements can be written
// in place by a kernel while it computes them):
//   [u32 root offset][identifier?][vtable][pad][table: i32 soffset | inline fields…][vectors…]
// The vtable precedes the table (positive soffset, as flatc allows); uoffsets point forward to the
// vectors. Every field is aligned to its size relative to the buffer start; the buffer itself must
// be 8-byte aligned in memory for aligned access by readers (ring slots and arenas are).
//
// Thread-safety: one builder per thread; it owns nothing.
#pragma once

#include <cstdint>

#include "ringflow/fb_view.hpp"

namespace ringflow::fb {

/// A vector reserved in the output; set() writes elements in place (little-endian).
template <class T>
class vector_out {
 public:
  vector_out() = default;  // implicitly __host__ __device__
  RINGFLOW_HD vector_out(byte* elems, std::uint32_t count) : elems_(elems), count_(count) {}
  RINGFLOW_HD explicit operator bool() const { return elems_ != nullptr; }
  RINGFLOW_HD bool valid() const { return elems_ != nullptr; }
  RINGFLOW_HD std::uint32_t size() const { return count_; }
  RINGFLOW_HD void set(std::uint32_t i, const T& v) {
    if (i < count_) detail::store<T>(elems_ + static_cast<std::uint64_t>(i) * sizeof(T), v);
  }
  RINGFLOW_HD byte* data() { return elems_; }

 private:
  byte* elems_ = nullptr;
  std::uint32_t count_ = 0;
};

/// Why a builder failed (the first error; later calls do nothing).
enum class build_error : std::uint8_t {
  none = 0,
  no_room,      // the buffer is too small (or the result would exceed FlatBuffers' 2 GiB limit)
  inline_full,  // the inline fields need more than begin()'s inline_reserve (a wrong inline_max_)
  bad_field,    // a field id >= num_fields, or a field added twice
  misuse,       // no begin(), begin() twice, or a call after finish()
};

class builder {
 public:
  /// Largest number of fields a table may declare (vtable entries).
  static constexpr std::uint16_t max_fields = 64;
  /// Largest buffer flatbuffers::Verifier accepts (FLATBUFFERS_MAX_BUFFER_SIZE - 1).
  static constexpr std::uint64_t max_buffer_bytes = 0x7FFFFFFEull;

  RINGFLOW_HD builder(byte* buf, std::uint32_t capacity) : buf_(buf), cap_(capacity) {}

  /// Starts the root table. `identifier` 0 = none. `num_fields` = highest field id + 1.
  /// `inline_reserve` = bytes reserved for inline fields (scalars, structs, 4-byte offsets),
  /// including alignment padding; schema descriptors provide it (Descriptor::inline_max_).
  RINGFLOW_HD bool begin(type_id identifier, std::uint16_t num_fields, std::uint32_t inline_reserve) {
    if (started_ || !buf_) return fail(build_error::misuse);
    if (num_fields > max_fields) return fail(build_error::bad_field);
    started_ = true;
    num_fields_ = num_fields;
    std::uint64_t p = identifier ? 8 : 4;
    vt_ = static_cast<std::uint32_t>(p);
    const std::uint32_t vt_bytes = 4u + 2u * num_fields;
    p += vt_bytes;
    p = align_up(p, 4);
    table_ = static_cast<std::uint32_t>(p);
    const std::uint64_t table_end = p + 4 + inline_reserve;
    if (table_end > 0xFFFFu + static_cast<std::uint64_t>(table_) || !fits(0, table_end))
      return fail(build_error::no_room);
    // Zero the header, vtable and reserved inline area: absent fields read as 0 offsets, padding
    // is deterministic (same bytes for the same field values on every backend).
    for (std::uint64_t i = 0; i < table_end; ++i) buf_[i] = 0;
    if (identifier) detail::store<std::uint32_t>(buf_ + 4, identifier);
    detail::store<std::uint32_t>(buf_, table_);
    detail::store<std::uint16_t>(buf_ + vt_, static_cast<std::uint16_t>(vt_bytes));
    detail::store<std::int32_t>(buf_ + table_, static_cast<std::int32_t>(table_ - vt_));
    inline_ = table_ + 4;
    inline_end_ = static_cast<std::uint32_t>(table_end);
    tail_ = inline_end_;
    return true;
  }

  /// Scalar (integer, float, bool, enum) or struct field, written inline.
  template <class T>
  RINGFLOW_HD bool add(field_id id, const T& value) {
    const std::uint32_t at = inline_slot(id, detail::wire_size<T>(), alignof(T) < 8 ? alignof(T) : 8);
    if (!at) return false;
    detail::store<T>(buf_ + at, value);
    return true;
  }

  /// Reserves a vector of `count` elements and returns a handle to write them in place.
  /// Elements are aligned to max(4, alignof(T)); an invalid handle means the builder failed.
  template <class T>
  RINGFLOW_HD vector_out<T> add_vector(field_id id, std::uint32_t count) {
    byte* elems = reserve_counted(id, count, sizeof(T), alignof(T) > 4 ? alignof(T) : 4, 0);
    return elems ? vector_out<T>(elems, count) : vector_out<T>();
  }

  /// Vector copied from `n` elements at `src`.
  template <class T>
  RINGFLOW_HD bool add_vector(field_id id, const T* src, std::uint32_t n) {
    auto out = add_vector<T>(id, n);
    if (!out) return false;
    for (std::uint32_t i = 0; i < n; ++i) out.set(i, src[i]);
    return true;
  }

  /// [ubyte] vector (e.g. a nested FlatBuffer) copied from `src`; 8-aligned so a nested buffer
  /// can be read in place with aligned access.
  RINGFLOW_HD bool add_bytes(field_id id, const byte* src, std::uint32_t n) {
    byte* dst = reserve_counted(id, n, 1, 8, 0);
    if (!dst) return false;
    for (std::uint32_t i = 0; i < n; ++i) dst[i] = src[i];
    return true;
  }

  /// String field (length-counted, NUL-terminated as the format requires).
  RINGFLOW_HD bool add_string(field_id id, const char* s, std::uint32_t n) {
    byte* dst = reserve_counted(id, n, 1, 4, 1);
    if (!dst) return false;
    for (std::uint32_t i = 0; i < n; ++i) dst[i] = static_cast<byte>(s[i]);
    dst[n] = 0;
    return true;
  }

  /// Completes the table; returns the buffer's size in bytes, or 0 on any earlier error.
  RINGFLOW_HD std::uint32_t finish() {
    if (!ok_ || !started_ || finished_) return fail(build_error::misuse), 0;
    finished_ = true;
    detail::store<std::uint16_t>(buf_ + vt_ + 2, static_cast<std::uint16_t>(inline_ - table_));
    return tail_;
  }

  RINGFLOW_HD bool ok() const { return ok_; }
  /// The first error (none while ok()).
  RINGFLOW_HD build_error error() const { return error_; }
  /// Inline bytes the fields added so far need (including alignment padding), also past an
  /// inline_full error: what inline_max_ should at least have been.
  RINGFLOW_HD std::uint32_t inline_demand() const { return demand_; }
  /// The inline bytes begin() reserved.
  RINGFLOW_HD std::uint32_t inline_reserved() const { return inline_end_ > table_ ? inline_end_ - table_ - 4 : 0; }
  /// Bytes used so far (the final size after finish()).
  RINGFLOW_HD std::uint32_t size() const { return tail_; }

 private:
  RINGFLOW_HD static std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }
  RINGFLOW_HD bool fits(std::uint64_t off, std::uint64_t len) const { return off <= cap_ && len <= cap_ - off; }
  RINGFLOW_HD bool fail(build_error why) {
    if (ok_) error_ = why;
    ok_ = false;
    return false;
  }

  // Claims an inline slot for field `id`; returns its absolute position or 0 (and fails).
  RINGFLOW_HD std::uint32_t inline_slot(field_id id, std::uint32_t width, std::uint32_t align) {
    if (error_ == build_error::inline_full && started_ && !finished_) {  // keep measuring the demand
      demand_ = static_cast<std::uint32_t>(align_up(demand_, align) + width);
      return 0;
    }
    if (!ok_) return 0;
    if (!started_ || finished_) return fail(build_error::misuse), 0;
    if (id >= num_fields_) return fail(build_error::bad_field), 0;
    const std::uint32_t entry = vt_ + 4u + 2u * id;
    if (detail::load<std::uint16_t>(buf_ + entry) != 0) return fail(build_error::bad_field), 0;  // added twice
    const std::uint64_t at = align_up(inline_, align);
    // The demand is measured from the table start (alignment is relative to the buffer start,
    // which is where the table's inline area begins too, up to a multiple of 4).
    demand_ = static_cast<std::uint32_t>(at + width - (table_ + 4));
    if (at + width > inline_end_) return fail(build_error::inline_full), 0;
    detail::store<std::uint16_t>(buf_ + entry, static_cast<std::uint16_t>(at - table_));
    inline_ = static_cast<std::uint32_t>(at + width);
    return static_cast<std::uint32_t>(at);
  }

  // Reserves u32 count + count*elem_size (+ extra) bytes after the table, elements aligned to
  // `align`, and points field `id` at it. Returns the first element (or nullptr and fails).
  RINGFLOW_HD byte* reserve_counted(field_id id, std::uint32_t count, std::uint32_t elem_size, std::uint32_t align,
                                    std::uint32_t extra) {
    const std::uint32_t field = inline_slot(id, 4, 4);
    if (!field) return nullptr;
    // Position the u32 count so that the elements after it are `align`-aligned.
    std::uint64_t len_pos = align_up(static_cast<std::uint64_t>(tail_) + 4, align) - 4;
    const std::uint64_t bytes = static_cast<std::uint64_t>(count) * elem_size + extra;
    // FlatBuffers caps a buffer below 2^31 - 1 bytes (FLATBUFFERS_MAX_BUFFER_SIZE): stay verifiable.
    if (!fits(len_pos, 4 + bytes) || len_pos + 4 + bytes > max_buffer_bytes) return fail(build_error::no_room), nullptr;
    for (std::uint64_t i = tail_; i < len_pos; ++i) buf_[i] = 0;  // deterministic padding
    detail::store<std::uint32_t>(buf_ + len_pos, count);
    detail::store<std::uint32_t>(buf_ + field, static_cast<std::uint32_t>(len_pos - field));
    tail_ = static_cast<std::uint32_t>(len_pos + 4 + bytes);
    return buf_ + len_pos + 4;
  }

  byte* buf_;
  std::uint32_t cap_;
  std::uint32_t vt_ = 0;
  std::uint32_t table_ = 0;
  std::uint32_t inline_ = 0;
  std::uint32_t inline_end_ = 0;
  std::uint32_t tail_ = 0;
  std::uint16_t num_fields_ = 0;
  std::uint32_t demand_ = 0;
  build_error error_ = build_error::none;
  bool ok_ = true;
  bool started_ = false;
  bool finished_ = false;
};

}  // namespace ringflow::fb

// ringflow/actors/fb_msg.hpp — the FlatBuffer message type actors exchange (registered with CAF).
//
// Contract: `bytes` is one finished FlatBuffer carrying a file identifier (its type id, bytes
// 4..8, see messages/); `deadline_ns` is an absolute steady-clock time (0 = none; the ring actor
// applies its default timeout); the W3C trace ids travel with the request into the ring slot and
// come back on the reply. The type is registered with CAF's type system by ringflow::runtime
// ("ringflow::fb_msg"), so it serializes (for remote actors) and is never delivered as an empty
// message. Thread-safety: a value type.
#pragma once

#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ringflow/fb_view.hpp"

namespace ringflow {

struct fb_msg {
  std::vector<std::uint8_t> bytes;
  std::uint64_t deadline_ns = 0;  // steady clock ns (ringflow::steady_deadline); 0 = default timeout
  std::uint64_t trace_hi = 0;     // W3C trace id, bytes 0..7 (big-endian order kept as bytes)
  std::uint64_t trace_lo = 0;     // W3C trace id, bytes 8..15
  std::uint64_t span = 0;         // W3C parent span id

  fb_msg() = default;
  explicit fb_msg(std::vector<std::uint8_t> b) : bytes(std::move(b)) {}
  fb_msg(const std::uint8_t* data, std::size_t size) : bytes(data, data + size) {}

  /// The payload's file identifier (0 if the buffer is too short to have one).
  type_id type() const noexcept {
    if (bytes.size() < 8) return 0;
    return static_cast<type_id>(bytes[4]) | (static_cast<type_id>(bytes[5]) << 8) |
           (static_cast<type_id>(bytes[6]) << 16) | (static_cast<type_id>(bytes[7]) << 24);
  }
  std::span<const std::uint8_t> span_view() const noexcept { return {bytes.data(), bytes.size()}; }
  fb::bytes_view view() const noexcept { return {bytes.data(), static_cast<std::uint32_t>(bytes.size())}; }

  /// Sets the deadline `timeout` from now.
  fb_msg& with_timeout(std::chrono::nanoseconds timeout) noexcept {
    deadline_ns = static_cast<std::uint64_t>((std::chrono::steady_clock::now().time_since_epoch() + timeout) /
                                             std::chrono::nanoseconds(1));
    return *this;
  }
  void set_trace(const std::uint8_t (&trace_id)[16], const std::uint8_t (&span_id)[8]) noexcept {
    std::memcpy(&trace_hi, trace_id, 8);
    std::memcpy(&trace_lo, trace_id + 8, 8);
    std::memcpy(&span, span_id, 8);
  }
  void get_trace(std::uint8_t (&trace_id)[16], std::uint8_t (&span_id)[8]) const noexcept {
    std::memcpy(trace_id, &trace_hi, 8);
    std::memcpy(trace_id + 8, &trace_lo, 8);
    std::memcpy(span_id, &span, 8);
  }
  friend bool operator==(const fb_msg&, const fb_msg&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fb_msg& x) {
  return f(caf::meta::type_name("ringflow::fb_msg"), x.bytes, x.deadline_ns, x.trace_hi, x.trace_lo, x.span);
}

/// Steady-clock ns now (the time base of fb_msg::deadline_ns and slot_header::deadline_ns).
inline std::uint64_t steady_now() noexcept {
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1));
}

}  // namespace ringflow

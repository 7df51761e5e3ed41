// ringflow/ingress.hpp — validation of untrusted bytes at the process edge.
//
// Contract: validate_ingress() takes bytes from outside the process (a serialized
// ringflow.wire.Envelope), and either returns a validated_message whose views point into those
// bytes, or a typed error (ingress_errc, as std::error_code) with a human-readable detail. It never
// crashes, never reads outside the input and never allocates on the success path. Checks, in order:
//   1. size limits (oversize)                      4. payload type is registered (unknown_type)
//   2. envelope identifier + flatbuffers::Verifier  5. payload size, identifier == type id, Verifier
//      with depth/table limits (malformed)            (oversize, malformed_payload, type_mismatch)
//   3. schema_version in [1, max] (unsupported…)   6. deadline not passed (deadline_passed)
// A malformed W3C traceparent is ignored (trace.valid == false), as the W3C spec requires;
// it is not an error.
//
// Thread-safety: payload_registry is immutable after construction and may be shared; the
// functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ringflow/fb_view.hpp"

namespace flatbuffers {
class Verifier;
}

namespace ringflow {

enum class ingress_errc {
  ok = 0,
  oversize = 1,                    // envelope or payload larger than the configured limit
  malformed_envelope = 2,          // not a verifiable ringflow.wire.Envelope
  unsupported_schema_version = 3,  // schema_version outside [1, max_schema_version]
  unknown_type = 4,                // no payload schema registered for type_id
  malformed_payload = 5,           // payload absent or fails its schema's Verifier
  type_mismatch = 6,               // payload's file identifier differs from the envelope's type_id
  deadline_passed = 7,             // deadline_ns set and not after `now`
};

const std::error_category& ingress_category() noexcept;
std::error_code make_error_code(ingress_errc e) noexcept;

/// Highest envelope schema_version this build understands.
inline constexpr std::uint16_t envelope_schema_version = 1;

struct ingress_limits {
  std::uint32_t max_envelope_bytes = 1u << 20;  // 1 MiB (clamped to FlatBuffers' 2^31 - 2)
  std::uint32_t max_payload_bytes = 1u << 20;
  std::uint32_t max_depth = 16;       // FlatBuffers nesting depth (Verifier)
  std::uint32_t max_tables = 100000;  // tables visited per Verifier run
  std::uint16_t max_schema_version = envelope_schema_version;
};

/// W3C trace context (https://www.w3.org/TR/trace-context/), binary form.
struct trace_context {
  std::uint8_t trace_id[16] = {};
  std::uint8_t span_id[8] = {};  // the traceparent's parent-id
  std::uint8_t flags = 0;
  bool valid = false;
};

/// Parses "00-<32 hex>-<16 hex>-<2 hex>"; false (and `out.valid == false`) on any deviation,
/// including all-zero ids and version ff.
bool parse_traceparent(std::string_view text, trace_context& out) noexcept;
/// Formats a valid context back to its 55-character text form.
std::string format_traceparent(const trace_context& ctx);

/// Payload schemas accepted at ingress: type id -> name + Verifier of the generated root type.
class payload_registry {
 public:
  using verify_fn = bool (*)(flatbuffers::Verifier&);
  struct entry {
    type_id id;
    std::string name;
    verify_fn verify;
  };

  /// Registers a payload schema; throws std::invalid_argument on a duplicate id or null verifier.
  void add(type_id id, std::string name, verify_fn verify);
  const entry* find(type_id id) const noexcept;
  const std::vector<entry>& entries() const noexcept { return entries_; }

  /// ringflow's demo payloads (Echo, SaxpyRequest/Reply, ScoreRequest/Reply) and ErrorReply.
  static const payload_registry& demo();

 private:
  std::vector<entry> entries_;
};

/// A message that passed ingress; views point into the caller's bytes.
/// Alignment: `payload` is a [ubyte] vector inside the envelope, guaranteed only 4-byte aligned
/// (encode_envelope() aligns it to 8; other FlatBuffers builders need not). Read it in place only
/// through the portable view (fb_view.hpp reads byte-wise); flatc's generated accessors need an
/// 8-aligned copy — which the ring provides: slots and arena allocations are 64-byte aligned.
struct validated_message {
  type_id type = 0;
  std::uint16_t schema_version = 0;
  std::uint64_t correlation_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t deadline_ns = 0;  // Unix epoch ns; 0 = none
  std::uint32_t flags = 0;
  std::string_view tenant;
  trace_context trace;
  fb::bytes_view payload;
};

struct ingress_result {
  std::error_code error;  // empty on success
  std::string detail;     // why, for logs and error replies (empty on success)
  validated_message message;
  explicit operator bool() const noexcept { return !error; }
};

/// Validates an envelope. `now_unix_ns` is the current time for the deadline check (0 skips it).
ingress_result validate_ingress(std::span<const std::uint8_t> bytes, const payload_registry& registry,
                                const ingress_limits& limits, std::uint64_t now_unix_ns);

/// Builds a serialized envelope (for clients, tests, fuzz corpora). Fields as in envelope.fbs.
struct envelope_fields {
  std::uint16_t schema_version = envelope_schema_version;
  type_id type = 0;
  std::uint64_t correlation_id = 0;
  std::uint64_t sequence = 0;
  std::string tenant;
  std::uint64_t deadline_ns = 0;
  std::string traceparent;
  std::uint32_t flags = 0;
  std::span<const std::uint8_t> payload;
};
std::vector<std::uint8_t> encode_envelope(const envelope_fields& f);

/// A type id as its four identifier characters, e.g. "SCRQ" (unprintable bytes as '?').
std::string type_id_text(type_id t);

/// Nanoseconds since the Unix epoch (system clock), the time base of envelope deadlines.
std::uint64_t unix_now_ns() noexcept;

}  // namespace ringflow

template <>
struct std::is_error_code_enum<ringflow::ingress_errc> : std::true_type {};

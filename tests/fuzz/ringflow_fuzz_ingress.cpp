// ringflow_fuzz_ingress: raw bytes into ringflow::validate_ingress (demo registry, default limits).
//
// Invariants checked beyond "no crash, no out-of-bounds read, no UB":
//  - an error has the ingress category, a code in 1..7 and a detail; success has neither;
//  - the deadline check is the only difference between now = 0 (skip) and a fixed `now`;
//  - a validated message agrees with the envelope read through the view (msg::Envelope) and through
//    the flatc-generated accessors; tenant and payload point into the input;
//  - its payload is registered, starts with the type's identifier, passes the type's generated
//    Verifier again, and the typed view of it returns the generated accessors' values.
//  - a traceparent is parsed exactly as parse_traceparent() parses the envelope's string;
//  - tight limits (to reach the oversize / depth / table-count paths) only ever reject more:
//    whatever passes them passes the defaults with the same message, and an oversize rejection
//    names a size that really exceeds the limit.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "fuzz_common.hpp"
#include "ringflow/ingress.hpp"

namespace {

using namespace ringflow;

// A fixed "now" keeps runs reproducible: 2023-11-14T22:13:20Z in Unix nanoseconds.
constexpr std::uint64_t kNow = 1'700'000'000'000'000'000ull;

void check_result_shape(const ingress_result& r) {
  if (r) {
    RF_CHECK(!r.error);
    RF_CHECK(r.detail.empty());
    return;
  }
  RF_CHECK(r.error.category() == ingress_category());
  RF_CHECK(r.error.value() >= 1 && r.error.value() <= 7);
  RF_CHECK(!r.detail.empty());
  RF_CHECK(!r.error.message().empty());
}

void check_message(const fuzz::owned_copy& in, const validated_message& m) {
  const fuzz::bounds all{in.data(), in.data() + in.size};
  const fb::bytes_view buf = in.view();

  // Envelope as the view reads it.
  const auto env = ringflow::view_of<msg::Envelope>(buf);
  RF_CHECK(env.table_.valid());
  RF_CHECK(m.schema_version == env.schema_version());
  RF_CHECK(m.schema_version >= 1 && m.schema_version <= ingress_limits{}.max_schema_version);
  RF_CHECK(m.type == env.type_id());
  RF_CHECK(m.correlation_id == env.correlation_id());
  RF_CHECK(m.sequence == env.sequence());
  RF_CHECK(m.deadline_ns == env.deadline_ns());
  RF_CHECK(m.flags == env.flags());
  const fb::string_view tenant = env.tenant();
  RF_CHECK(m.tenant.size() == tenant.size);
  if (!m.tenant.empty()) RF_CHECK(m.tenant.data() == tenant.data);
  RF_CHECK(all.holds(m.tenant.data(), m.tenant.size()));
  const fb::bytes_view payload = env.payload();
  RF_CHECK(m.payload.data == payload.data && m.payload.size == payload.size);
  RF_CHECK(all.holds(m.payload.data, m.payload.size));

  // Envelope as the generated accessors read it (the input block is 16-byte aligned).
  RF_CHECK(fuzz::verify_and_compare_typed(msg::Envelope::type_id_, buf));

  // Traceparent.
  const fb::string_view tp = env.traceparent();
  trace_context expect;
  const bool parsed = tp.size && parse_traceparent(std::string_view(tp.data, tp.size), expect);
  RF_CHECK(m.trace.valid == parsed);
  if (parsed) {
    RF_CHECK(std::memcmp(m.trace.trace_id, expect.trace_id, sizeof expect.trace_id) == 0);
    RF_CHECK(std::memcmp(m.trace.span_id, expect.span_id, sizeof expect.span_id) == 0);
    RF_CHECK(m.trace.flags == expect.flags);
  }

  // Payload: registered, identified, verifiable, and the typed view equals the generated accessors.
  RF_CHECK(payload_registry::demo().find(m.type) != nullptr);
  RF_CHECK(m.payload.size >= 8);
  RF_CHECK(fb::identifier(m.payload) == m.type);
  const fuzz::bounds pb{m.payload.data, m.payload.data + m.payload.size};
  RF_CHECK(fuzz::walk_typed(pb, m.type, m.payload));
  RF_CHECK(fuzz::verify_and_compare_typed(m.type, m.payload));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return -1;
  const fuzz::owned_copy in(data, size);
  const std::span<const std::uint8_t> bytes(in.data(), in.size);
  const payload_registry& registry = payload_registry::demo();
  const ingress_limits limits{};

  const ingress_result no_clock = validate_ingress(bytes, registry, limits, 0);
  const ingress_result at_now = validate_ingress(bytes, registry, limits, kNow);
  check_result_shape(no_clock);
  check_result_shape(at_now);
  RF_CHECK(no_clock.error != ingress_errc::deadline_passed);

  // Tight limits: stricter, never more permissive.
  ingress_limits tight;
  tight.max_envelope_bytes = 512;
  tight.max_payload_bytes = 128;
  tight.max_depth = 1;
  tight.max_tables = 1;
  const ingress_result strict = validate_ingress(bytes, registry, tight, 0);
  check_result_shape(strict);
  if (strict) {
    RF_CHECK(no_clock);
    RF_CHECK(strict.message.payload.data == no_clock.message.payload.data);
    RF_CHECK(strict.message.payload.size <= tight.max_payload_bytes && size <= tight.max_envelope_bytes);
  } else if (strict.error == ingress_errc::oversize) {
    RF_CHECK(size > tight.max_envelope_bytes || (no_clock && no_clock.message.payload.size > tight.max_payload_bytes) ||
             (!no_clock && no_clock.error != ingress_errc::malformed_envelope));
  }

  if (!no_clock) {
    RF_CHECK(at_now.error == no_clock.error);
    RF_CHECK(at_now.detail == no_clock.detail);
    if (size < 8) RF_CHECK(no_clock.error == ingress_errc::malformed_envelope);
    return 0;
  }
  check_message(in, no_clock.message);
  const std::uint64_t deadline = no_clock.message.deadline_ns;
  if (deadline != 0 && deadline <= kNow) {
    RF_CHECK(at_now.error == ingress_errc::deadline_passed);
  } else {
    RF_CHECK(at_now);
    check_message(in, at_now.message);
  }
  return 0;
}

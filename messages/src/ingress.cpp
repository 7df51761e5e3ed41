// Ingress validation: see ringflow/ingress.hpp for the contract.
#include "ringflow/ingress.hpp"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/envelope_generated.h"
#include "ringflow/generated/error_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/messages.hpp"

namespace ringflow {
namespace {

class ingress_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ringflow.ingress"; }
  std::string message(int ev) const override {
    switch (static_cast<ingress_errc>(ev)) {
      case ingress_errc::ok: return "ok";
      case ingress_errc::oversize: return "message exceeds the size limit";
      case ingress_errc::malformed_envelope: return "malformed envelope";
      case ingress_errc::unsupported_schema_version: return "unsupported envelope schema version";
      case ingress_errc::unknown_type: return "unknown message type";
      case ingress_errc::malformed_payload: return "malformed payload";
      case ingress_errc::type_mismatch: return "payload identifier does not match the envelope type";
      case ingress_errc::deadline_passed: return "deadline passed";
    }
    return "unknown ingress error";
  }
};

ingress_result fail(ingress_errc e, std::string detail) {
  ingress_result r;
  r.error = make_error_code(e);
  r.detail = std::move(detail);
  return r;
}

std::string type_text(type_id t) {
  return type_id_text(t) + " (0x" + [&] {
    static const char* hex = "0123456789abcdef";
    std::string h;
    for (int i = 7; i >= 0; --i) h += hex[(t >> (4 * i)) & 0xF];
    return h;
  }() + ")";
}

template <class Root>
bool verify_root(flatbuffers::Verifier& v) {
  return v.VerifyBuffer<Root>(nullptr);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // W3C requires lowercase hex
}

bool parse_hex(std::string_view s, std::uint8_t* out, std::size_t n) {
  if (s.size() != 2 * n) return false;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    any = any || out[i] != 0;
  }
  return any;
}

}  // namespace

const std::error_category& ingress_category() noexcept {
  static const ingress_category_impl category;
  return category;
}

std::error_code make_error_code(ingress_errc e) noexcept { return {static_cast<int>(e), ingress_category()}; }

bool parse_traceparent(std::string_view text, trace_context& out) noexcept {
  out = trace_context{};
  // version "00": exactly 55 chars. Future versions may append fields after "-": accept the prefix.
  if (text.size() < 55 || text[2] != '-' || text[35] != '-' || text[52] != '-') return false;
  std::uint8_t version = 0;
  if (hex_value(text[0]) < 0 || hex_value(text[1]) < 0) return false;
  version = static_cast<std::uint8_t>(hex_value(text[0]) << 4 | hex_value(text[1]));
  if (version == 0xFF || (version == 0 && text.size() != 55)) return false;
  if (text.size() > 55 && text[55] != '-') return false;
  trace_context ctx;
  if (!parse_hex(text.substr(3, 32), ctx.trace_id, 16)) return false;
  if (!parse_hex(text.substr(36, 16), ctx.span_id, 8)) return false;
  std::uint8_t flags[1] = {};
  const int fh = hex_value(text[53]), fl = hex_value(text[54]);
  if (fh < 0 || fl < 0) return false;
  flags[0] = static_cast<std::uint8_t>(fh << 4 | fl);
  ctx.flags = flags[0];
  ctx.valid = true;
  out = ctx;
  return true;
}

std::string format_traceparent(const trace_context& ctx) {
  static const char* hex = "0123456789abcdef";
  std::string s = "00-";
  for (auto b : ctx.trace_id) {
    s += hex[b >> 4];
    s += hex[b & 0xF];
  }
  s += '-';
  for (auto b : ctx.span_id) {
    s += hex[b >> 4];
    s += hex[b & 0xF];
  }
  s += '-';
  s += hex[ctx.flags >> 4];
  s += hex[ctx.flags & 0xF];
  return s;
}

void payload_registry::add(type_id id, std::string name, verify_fn verify) {
  if (!verify) throw std::invalid_argument("payload_registry: null verifier for " + name);
  if (find(id)) throw std::invalid_argument("payload_registry: duplicate type id " + type_text(id));
  entries_.push_back({id, std::move(name), verify});
}

const payload_registry::entry* payload_registry::find(type_id id) const noexcept {
  for (const auto& e : entries_)
    if (e.id == id) return &e;
  return nullptr;
}

const payload_registry& payload_registry::demo() {
  static const payload_registry registry = [] {
    payload_registry r;
    r.add(msg::Echo::type_id_, msg::Echo::name_, &verify_root<demo::Echo>);
    r.add(msg::SaxpyRequest::type_id_, msg::SaxpyRequest::name_, &verify_root<demo::SaxpyRequest>);
    r.add(msg::SaxpyReply::type_id_, msg::SaxpyReply::name_, &verify_root<demo::SaxpyReply>);
    r.add(msg::ScoreRequest::type_id_, msg::ScoreRequest::name_, &verify_root<demo::ScoreRequest>);
    r.add(msg::ScoreReply::type_id_, msg::ScoreReply::name_, &verify_root<demo::ScoreReply>);
    r.add(msg::Trade::type_id_, msg::Trade::name_, &verify_root<demo::Trade>);
    r.add(msg::VwapReply::type_id_, msg::VwapReply::name_, &verify_root<demo::VwapReply>);
    r.add(msg::ErrorReply::type_id_, msg::ErrorReply::name_, &verify_root<wire::ErrorReply>);
    return r;
  }();
  return registry;
}

ingress_result validate_ingress(std::span<const std::uint8_t> bytes, const payload_registry& registry,
                                const ingress_limits& limits, std::uint64_t now_unix_ns) {
  // flatbuffers::Verifier requires size < FLATBUFFERS_MAX_BUFFER_SIZE: clamp a larger limit.
  const std::size_t max_envelope = std::min<std::size_t>(limits.max_envelope_bytes, FLATBUFFERS_MAX_BUFFER_SIZE - 1);
  if (bytes.size() > max_envelope)
    return fail(ingress_errc::oversize, "envelope of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                                            std::to_string(max_envelope));
  if (bytes.size() < 8 || !flatbuffers::BufferHasIdentifier(bytes.data(), wire::EnvelopeIdentifier()))
    return fail(ingress_errc::malformed_envelope, "not a ringflow envelope (missing identifier RFEV)");
  {
    flatbuffers::Verifier v(bytes.data(), bytes.size(), limits.max_depth, limits.max_tables);
    if (!wire::VerifyEnvelopeBuffer(v))
      return fail(ingress_errc::malformed_envelope,
                  "envelope of " + std::to_string(bytes.size()) + " bytes failed FlatBuffers verification");
  }
  const auto* env = wire::GetEnvelope(bytes.data());
  const std::uint16_t version = env->schema_version();
  if (version == 0 || version > limits.max_schema_version)
    return fail(ingress_errc::unsupported_schema_version, "envelope schema_version " + std::to_string(version) +
                                                              " (supported: 1.." +
                                                              std::to_string(limits.max_schema_version) + ")");
  const type_id type = env->type_id();
  const auto* entry = registry.find(type);
  if (!entry) return fail(ingress_errc::unknown_type, "no payload schema registered for type " + type_text(type));
  const auto* payload = env->payload();
  if (!payload || payload->size() == 0) return fail(ingress_errc::malformed_payload, entry->name + ": empty payload");
  if (payload->size() > limits.max_payload_bytes)
    return fail(ingress_errc::oversize, entry->name + ": payload of " + std::to_string(payload->size()) +
                                            " bytes exceeds the limit of " + std::to_string(limits.max_payload_bytes));
  const fb::bytes_view pv{payload->data(), payload->size()};
  if (pv.size < 8)
    return fail(ingress_errc::malformed_payload, entry->name + ": payload shorter than a FlatBuffer header");
  if (fb::identifier(pv) != type)
    return fail(ingress_errc::type_mismatch,
                "envelope type " + type_text(type) + " but payload identifier " + type_text(fb::identifier(pv)));
  {
    flatbuffers::Verifier v(pv.data, pv.size, limits.max_depth, limits.max_tables);
    if (!entry->verify(v))
      return fail(ingress_errc::malformed_payload, entry->name + ": payload failed FlatBuffers verification");
  }
  const std::uint64_t deadline = env->deadline_ns();
  if (deadline != 0 && now_unix_ns != 0 && deadline <= now_unix_ns)
    return fail(ingress_errc::deadline_passed,
                "deadline passed " + std::to_string(now_unix_ns - deadline) + " ns before ingress");

  ingress_result r;
  auto& m = r.message;
  m.type = type;
  m.schema_version = version;
  m.correlation_id = env->correlation_id();
  m.sequence = env->sequence();
  m.deadline_ns = deadline;
  m.flags = env->flags();
  if (const auto* t = env->tenant()) m.tenant = std::string_view(t->c_str(), t->size());
  if (const auto* tp = env->traceparent()) parse_traceparent(std::string_view(tp->c_str(), tp->size()), m.trace);
  m.payload = pv;
  return r;
}

std::vector<std::uint8_t> encode_envelope(const envelope_fields& f) {
  flatbuffers::FlatBufferBuilder b(256 + f.payload.size());
  const auto tenant = f.tenant.empty() ? 0 : b.CreateString(f.tenant).o;
  const auto trace = f.traceparent.empty() ? 0 : b.CreateString(f.traceparent).o;
  // 8-byte alignment lets the nested payload be read in place with aligned loads.
  b.ForceVectorAlignment(f.payload.size(), 1, 8);
  const auto payload = b.CreateVector(f.payload.data(), f.payload.size());
  wire::EnvelopeBuilder eb(b);
  eb.add_schema_version(f.schema_version);
  eb.add_type_id(f.type);
  eb.add_correlation_id(f.correlation_id);
  eb.add_sequence(f.sequence);
  if (tenant) eb.add_tenant(flatbuffers::Offset<flatbuffers::String>(tenant));
  eb.add_deadline_ns(f.deadline_ns);
  if (trace) eb.add_traceparent(flatbuffers::Offset<flatbuffers::String>(trace));
  eb.add_flags(f.flags);
  eb.add_payload(payload);
  b.Finish(eb.Finish(), wire::EnvelopeIdentifier());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

std::string type_id_text(type_id t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((t >> (8 * i)) & 0xFF);
    s += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  return s;
}

std::uint64_t unix_now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace ringflow

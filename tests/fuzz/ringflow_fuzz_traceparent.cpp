// ringflow_fuzz_traceparent: the input as a W3C traceparent string (it arrives inside envelopes).
// parse_traceparent() must never read past the text; what it accepts must round-trip through
// format_traceparent(), and it must honour the W3C rules it documents (version ff and all-zero ids
// rejected, lowercase hex only, version 00 exactly 55 characters).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "ringflow/ingress.hpp"

namespace {

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow;
  if (size > 4096) return -1;
  const fuzz::owned_copy in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size);

  trace_context ctx;
  ctx.valid = true;  // must be reset on failure
  const bool ok = parse_traceparent(text, ctx);
  RF_CHECK(ok == ctx.valid);
  if (!ok) return 0;

  // What was accepted obeys the grammar.
  RF_CHECK(text.size() >= 55);
  RF_CHECK(text[2] == '-' && text[35] == '-' && text[52] == '-');
  for (std::size_t i : {0, 1, 53, 54}) RF_CHECK(lower_hex(text[i]));
  for (std::size_t i = 3; i < 35; ++i) RF_CHECK(lower_hex(text[i]));
  for (std::size_t i = 36; i < 52; ++i) RF_CHECK(lower_hex(text[i]));
  RF_CHECK(text.substr(0, 2) != "ff");
  if (text.substr(0, 2) == "00") RF_CHECK(text.size() == 55);
  else if (text.size() > 55) RF_CHECK(text[55] == '-');
  RF_CHECK(!all_zero(ctx.trace_id, sizeof ctx.trace_id));
  RF_CHECK(!all_zero(ctx.span_id, sizeof ctx.span_id));

  // Round trip: format writes version 00 and the same ids and flags.
  const std::string formatted = format_traceparent(ctx);
  RF_CHECK(formatted.size() == 55);
  RF_CHECK(formatted.substr(0, 3) == "00-");
  RF_CHECK(std::string_view(formatted).substr(3, 52) == text.substr(3, 52));
  trace_context again;
  RF_CHECK(parse_traceparent(formatted, again));
  RF_CHECK(std::memcmp(again.trace_id, ctx.trace_id, sizeof ctx.trace_id) == 0);
  RF_CHECK(std::memcmp(again.span_id, ctx.span_id, sizeof ctx.span_id) == 0);
  RF_CHECK(again.flags == ctx.flags);
  return 0;
}

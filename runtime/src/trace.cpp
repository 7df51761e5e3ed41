// OTLP-JSON span lines: see ringflow/runtime/trace.hpp.
#include "ringflow/runtime/trace.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ringflow::ops {
namespace {

constexpr int kind_internal = 1, kind_server = 2, kind_producer = 4, kind_consumer = 5;  // OTLP SpanKind
constexpr int status_ok = 1, status_error = 2;                                            // OTLP StatusCode

nlohmann::json attr(const char* key, const std::string& v) { return {{"key", key}, {"value", {{"stringValue", v}}}}; }
nlohmann::json attr(const char* key, bool v) { return {{"key", key}, {"value", {{"boolValue", v}}}}; }
nlohmann::json attr_int(const char* key, std::uint64_t v) {
  return {{"key", key}, {"value", {{"intValue", std::to_string(v)}}}};  // int64 as a string (proto3 JSON)
}

}  // namespace

std::string trace_writer::hex(const void* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * n, '0');
  const auto* b = static_cast<const std::uint8_t*>(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[b[i] >> 4];
    s[2 * i + 1] = digits[b[i] & 15];
  }
  return s;
}

trace_writer::trace_writer(const std::string& path) {
  f_ = std::fopen(path.c_str(), "w");
  if (!f_) throw std::runtime_error("cannot open trace file '" + path + "' for writing");
  const auto sys = std::chrono::system_clock::now().time_since_epoch();
  const auto st = std::chrono::steady_clock::now().time_since_epoch();
  offset_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(sys).count() -
               std::chrono::duration_cast<std::chrono::nanoseconds>(st).count();
}

trace_writer::~trace_writer() {
  std::lock_guard<std::mutex> lock(mu_);
  if (f_) std::fclose(f_);
}

std::string trace_writer::unix_ns(std::uint64_t steady_ns) const {
  return std::to_string(static_cast<std::uint64_t>(static_cast<std::int64_t>(steady_ns) + offset_ns_));
}

void trace_writer::line(const std::string& spans_json, std::uint64_t count) {
  // The envelope is fixed text; only the spans vary.
  std::string out =
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ringflow"}}]},)"
      R"("scopeSpans":[{"scope":{"name":"ringflow","version":")" RINGFLOW_VERSION R"("},"spans":)" + spans_json +
      "}]}]}\n";
  std::lock_guard<std::mutex> lock(mu_);
  if (std::fwrite(out.data(), 1, out.size(), f_) != out.size()) errors_.fetch_add(1, std::memory_order_relaxed);
  else spans_.fetch_add(count, std::memory_order_relaxed);
}

void trace_writer::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (f_ && std::fflush(f_) != 0) errors_.fetch_add(1, std::memory_order_relaxed);
}

void trace_writer::ingress(std::uint64_t trace_hi, std::uint64_t trace_lo, std::uint64_t span,
                           const std::string& generator, const std::string& target, std::uint64_t seq,
                           std::uint64_t start_ns, std::uint64_t end_ns, bool ok, const std::string& error) {
  std::uint64_t tid[2] = {trace_hi, trace_lo};
  nlohmann::json s = {{"traceId", hex(tid, 16)},
                      {"spanId", hex(&span, 8)},
                      {"name", "ingress " + target},
                      {"kind", kind_server},
                      {"startTimeUnixNano", unix_ns(start_ns)},
                      {"endTimeUnixNano", unix_ns(end_ns)},
                      {"attributes", {attr("ringflow.generator", generator), attr("ringflow.node", target),
                                      attr_int("ringflow.sequence", seq)}},
                      {"status", ok ? nlohmann::json{{"code", status_ok}}
                                    : nlohmann::json{{"code", status_error}, {"message", error}}}};
  line(nlohmann::json::array({s}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 1);
}

void trace_writer::hop(const ring_hop_trace& h) {
  std::uint64_t tid[2] = {h.trace_hi, h.trace_lo};
  const std::string trace_id = hex(tid, 16);
  const std::string ring = h.ring ? *h.ring : std::string();
  const bool carried = h.kernel_span_seen == h.kernel_span;
  auto span = [&](const char* name, std::uint64_t id, std::uint64_t parent, int kind, std::uint64_t a, std::uint64_t b) {
    nlohmann::json s = {{"traceId", trace_id},
                        {"spanId", hex(&id, 8)},
                        {"name", std::string(name) + " " + ring},
                        {"kind", kind},
                        {"startTimeUnixNano", unix_ns(a)},
                        {"endTimeUnixNano", unix_ns(b < a ? a : b)},
                        {"attributes", {attr("ringflow.ring", ring), attr("ringflow.replayed", h.replayed),
                                        attr("ringflow.context_carried", carried)}},
                        {"status", h.code == errc::ok ? nlohmann::json{{"code", status_ok}}
                                                      : nlohmann::json{{"code", status_error},
                                                                       {"message", to_string(h.code)}}}};
    if (parent) s["parentSpanId"] = hex(&parent, 8);
    return s;
  };
  nlohmann::json spans = nlohmann::json::array(
      {span("enqueue", h.enqueue_span, h.parent_span, kind_producer, h.submit_ns, h.publish_ns),
       span("kernel", h.kernel_span, h.enqueue_span, kind_consumer, h.publish_ns, h.reply_ns),
       span("reply", h.reply_span, h.kernel_span_seen, kind_internal, h.reply_ns, h.answered_ns)});
  line(spans.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 3);
}

}  // namespace ringflow::ops

// OTLP-JSON span lines: see ringflow/runtime/trace.hpp.
#include "ringflow/runtime/trace.hpp"
#include "ringflow/wait_policy.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ringflow::ops {
namespace {

constexpr int kind_internal = 1, kind_server = 2, kind_producer = 4, kind_consumer = 5;  // OTLP SpanKind
constexpr int status_ok = 1, status_error = 2;                                           // OTLP StatusCode

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

trace_writer::trace_writer(const std::string& path, std::size_t max_pending) : max_pending_(max_pending) {
  f_ = std::fopen(path.c_str(), "w");
  if (!f_) throw std::runtime_error("cannot open trace file '" + path + "' for writing");
  const auto sys = std::chrono::system_clock::now().time_since_epoch();
  const auto st = std::chrono::steady_clock::now().time_since_epoch();
  offset_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(sys).count() -
               std::chrono::duration_cast<std::chrono::nanoseconds>(st).count();
  thread_ = std::thread([this] {
    name_this_thread("rf-trace");
    run();
  });
}

trace_writer::~trace_writer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();  // writes what is pending first
  std::fclose(f_);
}

std::string trace_writer::unix_ns(std::uint64_t steady_ns) const {
  return std::to_string(static_cast<std::uint64_t>(static_cast<std::int64_t>(steady_ns) + offset_ns_));
}

void trace_writer::push(record&& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.size() >= max_pending_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  pending_.push_back(std::move(r));
}

void trace_writer::ingress(std::uint64_t trace_hi, std::uint64_t trace_lo, std::uint64_t span,
                           const std::string& generator, const std::string& target, std::uint64_t seq,
                           std::uint64_t start_ns, std::uint64_t end_ns, bool ok, const std::string& error) {
  push(ingress_rec{trace_hi, trace_lo, span, seq, start_ns, end_ns, ok, generator, target, error});
}

void trace_writer::hop(const ring_hop_trace& h) {
  hop_rec r{h, h.ring ? *h.ring : std::string()};
  r.h.ring = nullptr;
  push(std::move(r));
}

void trace_writer::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t ticket = ++flush_requested_;
  cv_.notify_all();
  done_cv_.wait(lock, [&] { return flushed_ >= ticket || stop_; });
}

void trace_writer::run() {
  std::vector<record> batch;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // The writer's period: batches amortise formatting and I/O; flush() and stop cut it short.
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_ || flush_requested_ > flushed_; });
    const bool stopping = stop_;
    const std::uint64_t ticket = flush_requested_;
    batch.swap(pending_);
    lock.unlock();
    write_batch(batch);
    batch.clear();
    if (ticket > flushed_ || stopping)
      if (std::fflush(f_) != 0) errors_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
    flushed_ = std::max(flushed_, ticket);
    done_cv_.notify_all();
    if (stopping && pending_.empty()) return;
  }
}

void trace_writer::write_batch(std::vector<record>& batch) {
  std::string out;
  for (const record& r : batch) {
    std::uint64_t count = 0;
    if (const auto* h = std::get_if<hop_rec>(&r)) {
      out += format(*h);
      count = 3;
    } else {
      out += format(std::get<ingress_rec>(r));
      count = 1;
    }
    spans_.fetch_add(count, std::memory_order_relaxed);
  }
  if (!out.empty() && std::fwrite(out.data(), 1, out.size(), f_) != out.size())
    errors_.fetch_add(1, std::memory_order_relaxed);
}

namespace {
std::string envelope(const std::string& spans_json) {
  return R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ringflow"}}]},)"
         R"("scopeSpans":[{"scope":{"name":"ringflow","version":")" RINGFLOW_VERSION R"("},"spans":)" +
         spans_json + "}]}]}\n";
}
}  // namespace

std::string trace_writer::format(const ingress_rec& r) const {
  std::uint64_t tid[2] = {r.trace_hi, r.trace_lo};
  nlohmann::json s = {{"traceId", hex(tid, 16)},
                      {"spanId", hex(&r.span, 8)},
                      {"name", "ingress " + r.target},
                      {"kind", kind_server},
                      {"startTimeUnixNano", unix_ns(r.start_ns)},
                      {"endTimeUnixNano", unix_ns(r.end_ns)},
                      {"attributes",
                       {attr("ringflow.generator", r.generator), attr("ringflow.node", r.target),
                        attr_int("ringflow.sequence", r.seq)}},
                      {"status", r.ok ? nlohmann::json{{"code", status_ok}}
                                      : nlohmann::json{{"code", status_error}, {"message", r.error}}}};
  return envelope(nlohmann::json::array({s}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string trace_writer::format(const hop_rec& r) const {
  const ring_hop_trace& h = r.h;
  std::uint64_t tid[2] = {h.trace_hi, h.trace_lo};
  const std::string trace_id = hex(tid, 16);
  const std::string& ring = r.ring;
  const bool carried = h.kernel_span_seen == h.kernel_span;
  auto span = [&](const char* name, std::uint64_t id, std::uint64_t parent, int kind, std::uint64_t a,
                  std::uint64_t b) {
    nlohmann::json s = {
        {"traceId", trace_id},
        {"spanId", hex(&id, 8)},
        {"name", std::string(name) + " " + ring},
        {"kind", kind},
        {"startTimeUnixNano", unix_ns(a)},
        {"endTimeUnixNano", unix_ns(b < a ? a : b)},
        {"attributes",
         {attr("ringflow.ring", ring), attr("ringflow.replayed", h.replayed),
          attr("ringflow.context_carried", carried)}},
        {"status", h.code == errc::ok ? nlohmann::json{{"code", status_ok}}
                                      : nlohmann::json{{"code", status_error}, {"message", to_string(h.code)}}}};
    if (parent) s["parentSpanId"] = hex(&parent, 8);
    return s;
  };
  nlohmann::json spans = nlohmann::json::array(
      {span("enqueue", h.enqueue_span, h.parent_span, kind_producer, h.submit_ns, h.publish_ns),
       span("kernel", h.kernel_span, h.enqueue_span, kind_consumer, h.publish_ns, h.reply_ns),
       span("reply", h.reply_span, h.kernel_span_seen, kind_internal, h.reply_ns, h.answered_ns)});
  return envelope(spans.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace ringflow::ops

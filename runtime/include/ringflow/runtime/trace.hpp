// ringflow/runtime/trace.hpp — spans as OTLP-JSON lines (`ringflow run --trace FILE`).
//
// Contract
//   * Each line is one OTLP/JSON ExportTraceServiceRequest ({"resourceSpans":[...]}, service.name
//     "ringflow") holding the spans of one event: an `ingress` span (a load generator's message,
//     push -> answer; SERVER kind, the trace's root), or the three spans of one hop through a ring
//     kernel (ring_hop_trace): `enqueue` (submit -> published into the request ring; PRODUCER,
//     parent: the caller's span), `kernel` (published -> reply harvested; CONSUMER, parent:
//     enqueue; its id is what the request slot's header carried to the kernel) and `reply`
//     (harvested -> answer delivered; parent: the span id the reply slot's header brought back).
//     So parent/child links cross the host<->kernel hop through the slot headers; attribute
//     `ringflow.context_carried` says whether the kernel returned the context intact.
//   * IDs are lowercase hex (traceId 32, spanId 16) as the OTLP JSON mapping requires; times are
//     unix nanoseconds as decimal strings, converted from the steady clock with one offset taken
//     at construction (so spans never go backwards within a run).
//   * Lines are buffered and flushed at least once a second by the writer's caller (flush()) and
//     at destruction; a write error is counted, never thrown from the hot path.
// Thread-safety: all members from any thread (one mutex around the file).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "ringflow/actors/ring_core.hpp"

namespace ringflow::ops {

class trace_writer {
 public:
  /// Opens (truncates) `path`; throws std::runtime_error if it cannot.
  explicit trace_writer(const std::string& path);
  ~trace_writer();
  trace_writer(const trace_writer&) = delete;
  trace_writer& operator=(const trace_writer&) = delete;

  /// A load generator's message: the trace's root span.
  void ingress(std::uint64_t trace_hi, std::uint64_t trace_lo, std::uint64_t span, const std::string& generator,
               const std::string& target, std::uint64_t seq, std::uint64_t start_ns, std::uint64_t end_ns, bool ok,
               const std::string& error);
  /// One hop through a ring kernel.
  void hop(const ring_hop_trace& h);
  void flush();

  std::uint64_t spans() const noexcept { return spans_.load(std::memory_order_relaxed); }
  std::uint64_t write_errors() const noexcept { return errors_.load(std::memory_order_relaxed); }

  /// Lowercase hex of `n` bytes in memory order (W3C / OTLP ids).
  static std::string hex(const void* bytes, std::size_t n);

 private:
  void line(const std::string& spans_json, std::uint64_t count);
  std::string unix_ns(std::uint64_t steady_ns) const;

  std::mutex mu_;
  std::FILE* f_ = nullptr;
  std::int64_t offset_ns_ = 0;  // unix - steady
  std::atomic<std::uint64_t> spans_{0}, errors_{0};
};

}  // namespace ringflow::ops

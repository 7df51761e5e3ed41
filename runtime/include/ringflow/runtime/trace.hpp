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
//   * The hot path only records: hop() and ingress() copy the raw ids and times into a pending
//     batch under a mutex (no formatting, no I/O); one writer thread formats the JSON and writes
//     it every 20 ms (and at flush() and destruction). At most `max_pending` records wait; beyond
//     that new ones are dropped and counted (dropped()) rather than slowing the message path or
//     growing without bound. A write error is counted, never thrown.
// Thread-safety: all members from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "ringflow/actors/ring_core.hpp"

namespace ringflow::ops {

class trace_writer {
 public:
  /// Opens (truncates) `path`; throws std::runtime_error if it cannot.
  explicit trace_writer(const std::string& path, std::size_t max_pending = 1u << 20);
  ~trace_writer();
  trace_writer(const trace_writer&) = delete;
  trace_writer& operator=(const trace_writer&) = delete;

  /// A load generator's message: the trace's root span.
  void ingress(std::uint64_t trace_hi, std::uint64_t trace_lo, std::uint64_t span, const std::string& generator,
               const std::string& target, std::uint64_t seq, std::uint64_t start_ns, std::uint64_t end_ns, bool ok,
               const std::string& error);
  /// One hop through a ring kernel.
  void hop(const ring_hop_trace& h);
  /// Writes everything recorded so far and flushes the file (returns when it is written).
  void flush();

  std::uint64_t spans() const noexcept { return spans_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  std::uint64_t write_errors() const noexcept { return errors_.load(std::memory_order_relaxed); }

  /// Lowercase hex of `n` bytes in memory order (W3C / OTLP ids).
  static std::string hex(const void* bytes, std::size_t n);

 private:
  struct ingress_rec {
    std::uint64_t trace_hi, trace_lo, span, seq, start_ns, end_ns;
    bool ok;
    std::string generator, target, error;
  };
  struct hop_rec {
    ring_hop_trace h;
    std::string ring;  // copied: the ring core (owner of h.ring) may be gone before the writer runs
  };
  using record = std::variant<hop_rec, ingress_rec>;
  void push(record&& r);
  void run();
  void write_batch(std::vector<record>& batch);  // writer thread only
  std::string format(const hop_rec& r) const;
  std::string format(const ingress_rec& r) const;
  std::string unix_ns(std::uint64_t steady_ns) const;

  std::FILE* f_ = nullptr;      // writer thread (and the destructor after it ended)
  std::int64_t offset_ns_ = 0;  // unix - steady
  std::size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<record> pending_;                      // mu_
  std::uint64_t flush_requested_ = 0, flushed_ = 0;  // mu_
  bool stop_ = false;                                // mu_
  std::atomic<std::uint64_t> spans_{0}, errors_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace ringflow::ops

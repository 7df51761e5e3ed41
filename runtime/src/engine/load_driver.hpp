// The load driver (internal to the engine): the topology's load generators, their pacing, the
// ingress rate limit, and the accounting every summary and metric reads.
//
// Contract
//   * One thread per generator: the i-th message is due at start + i/rate (no catch-up burst), at
//     most max_in_flight open at once, and every message passes the shared token bucket
//     (limits.ingress_rate_per_s over all generators; 0 = unlimited). A message over
//     limits.max_payload_bytes is refused at ingress: counted sent and an `oversize` error.
//   * Accounting: `sent` at push, then exactly one of `replied` (every terminal output carries the
//     sequence number sent, when its type has one, and passes its type's check, when it has one:
//     a plugin kernel's check_reply), `wrong`, `errors` (a typed error answer), or —
//     never answered — `lost`; an answer for a push not open is `duplicated`. A push moves between
//     `open` and one outcome inside its generator's lock, so counts() (which holds every
//     generator's lock) always sees sent = replied + errors + wrong + lost.
//   * A failed message is logged (warn, with its trace id when traced): the first 100, then one in
//     1000. Traced messages (trace.sample_ratio) get an ingress span.
//   * token_bucket is a plain state machine with time passed in (no threads, no clock).
// Thread-safety: start/stop from the engine's controlling thread; counts(), open_total(),
// latency(), errors_by_code() and configure() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ringflow/actors/graph.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/prometheus.hpp"
#include "ringflow/runtime/topology.hpp"
#include "ringflow/runtime/trace.hpp"

namespace ringflow::ops::engine_parts {

/// A token bucket: `rate` tokens per second, a burst of at most 10 ms worth (at least 1).
class token_bucket {
 public:
  using clock = std::chrono::steady_clock;
  void set_rate(double per_s, clock::time_point now);
  /// Takes a token if one is there: zero; else how long until one will be (0 rate: always zero).
  [[nodiscard]] std::chrono::nanoseconds take(clock::time_point now);

 private:
  [[nodiscard]] double burst() const { return std::max(1.0, rate_ / 100.0); }
  double rate_ = 0;
  double tokens_ = 0;
  clock::time_point last_{};
};

/// The load counters at one instant (a consistent cut).
struct load_counts {
  std::uint64_t sent = 0, replied = 0, errors = 0, duplicated = 0, wrong = 0, open = 0;
};

class load_driver {
 public:
  explicit load_driver(event_log& log) : log_(log) {}
  ~load_driver() { stop(); }
  load_driver(const load_driver&) = delete;
  load_driver& operator=(const load_driver&) = delete;

  /// The reloadable settings (limits.ingress_rate_per_s, limits.max_payload_bytes, trace.sample_ratio).
  void configure(double ingress_rate_per_s, std::int64_t max_payload_bytes, double sample_ratio);
  /// Starts one thread per generator pushing into `graph`; `tracer` may be null.
  void start(const std::vector<load_spec>& specs, std::shared_ptr<running_graph> graph, trace_writer* tracer,
             std::uint64_t load_start_ns);
  /// Stops the generators and joins their threads (idempotent). Open pushes stay open.
  void stop();
  [[nodiscard]] bool finished() const;
  [[nodiscard]] std::uint64_t open_total() const;
  [[nodiscard]] load_counts counts() const;
  /// sent / replied / errors now, without the generators' locks (the live status line); `open` is
  /// the open count, not a consistent cut.
  [[nodiscard]] load_counts totals() const noexcept;
  /// Push -> answer of every answered message.
  [[nodiscard]] const latency_recorder& latency() const noexcept { return latency_; }
  /// Intended send time -> answer (the i-th message of a generator is due at start + i/rate):
  /// what a paced client sees, including the time a message waited to be sent (no coordinated
  /// omission); the same values as a histogram for /metrics.
  [[nodiscard]] const latency_recorder& intended_latency() const noexcept { return intended_; }
  [[nodiscard]] histogram_snapshot intended_histogram() const { return intended_hist_.snapshot(); }
  [[nodiscard]] std::map<std::string, std::uint64_t> errors_by_code() const;
  /// The messages answered with an error, in answer order: {generator, sequence, code}, the first
  /// `failed_sequences_max` (the summary's `failed_sequences`), and how many more there were.
  static constexpr std::size_t failed_sequences_max = 100000;
  [[nodiscard]] nlohmann::json failed_sequences(std::uint64_t& dropped) const;

 private:
  struct generator {
    load_spec spec;
    const message_info* msg = nullptr;
    std::thread thread;
    std::atomic<bool> finished{false};
    std::mutex mu;
    struct open_push {
      std::uint64_t push_ns = 0, due_ns = 0;  // steady ns: pushed, and when it was due
    };
    std::unordered_map<std::uint64_t, open_push> open;
    std::atomic<std::uint32_t> open_count{0};
  };
  void run(generator& g);
  bool pace(generator& g, std::chrono::steady_clock::time_point due);
  bool acquire_token();
  /// A message refused before it entered (oversize; a load hook that failed): sent, and an error `code`.
  void refuse(generator& g, std::uint64_t seq, const std::string& code, const std::string& why);
  void answer(generator& g, std::uint64_t seq, graph_result&& r, std::uint64_t trace_hi, std::uint64_t trace_lo,
              std::uint64_t span);
  void count_error(const std::string& generator, std::uint64_t seq, const std::string& code);
  void log_failure(const generator& g, std::uint64_t seq, const std::string& error, std::uint64_t trace_hi,
                   std::uint64_t trace_lo);

  event_log& log_;
  std::shared_ptr<running_graph> graph_;
  trace_writer* tracer_ = nullptr;
  std::uint64_t load_start_ns_ = 0;
  std::vector<std::unique_ptr<generator>> gens_;
  std::atomic<bool> stop_{false};
  std::mutex bucket_mu_;
  token_bucket bucket_;  // (bucket_mu_)
  std::atomic<double> sample_ratio_{1.0};
  std::atomic<std::int64_t> max_payload_{1 << 20};
  std::atomic<std::uint64_t> sent_{0}, replied_{0}, errors_{0}, duplicated_{0}, wrong_{0}, failures_logged_{0};
  mutable std::mutex err_mu_;
  std::map<std::string, std::uint64_t> errors_by_code_;  // (err_mu_)
  nlohmann::json failed_ = nlohmann::json::array();      // (err_mu_)
  std::uint64_t failed_dropped_ = 0;                     // (err_mu_)
  latency_recorder latency_;
  latency_recorder intended_;
  histogram intended_hist_;
};

}  // namespace ringflow::ops::engine_parts

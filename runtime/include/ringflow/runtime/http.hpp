// ringflow/runtime/http.hpp — the program's HTTP endpoints: metrics, health, topology.
//
// Contract
//   * GET /metrics        Prometheus text format 0.0.4 (content type prometheus.hpp's)
//   * GET /health/live    200 {"status":"live"} while the process serves HTTP at all
//   * GET /health/ready   200 {"status":"ready"}, or 503 with a JSON reason (starting, draining,
//                         stopped, or a ring actor without a healthy incarnation)
//   * GET /topology       200 JSON: nodes, edges, supervisors, devices, where each ring actor runs
//   * HEAD on those paths: the GET answer's status and headers without the body. Any other method
//     on them: 405 with `Allow: GET, HEAD` and a JSON error. Any other path: 404 with a JSON
//     error listing the endpoints. A handler that throws answers 500 with the message (and the
//     server keeps serving). Malformed requests: 400/413/431/501/505 with a JSON error, then
//     the connection is closed.
//   * HTTP/1.1 keep-alive; pipelined requests are answered in order, one at a time.
//   * start() binds before it returns (port 0 = any free port; the bound port is returned), so a
//     port in use is an error at start, not a silent thread failure; stop() is idempotent.
//   * Hostile clients (http_limits, config keys http.*): one event-loop thread owns every
//     connection, so a slow client costs a socket and a buffer, never a thread. A request's
//     header must be complete within header_timeout from its first byte (from the accept for a
//     connection's first request): a client dripping one line at a time is cut off with 408
//     when that total deadline passes. A keep-alive connection with no request, or a reader that
//     takes no bytes of its answer, is closed after idle_timeout. Headers above
//     max_header_bytes get 431, bodies above max_body_bytes 413. A peer address holding
//     max_connections_per_peer connections gets 429 for the next one. At max_connections the
//     server evicts the connection that has been idle or reading its request longest (never one
//     whose answer is being computed or written), so a well-behaved new request (a probe) is
//     served; when no connection can be evicted, the new one gets 503.
//   * /health/live is answered on the event loop; /metrics, /health/ready and /topology run on
//     one worker thread (rf-http-w), so a slow render cannot delay a liveness probe.
// Thread-safety: the handlers run on the worker thread, one at a time. stats() may be called from
// any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace ringflow::ops {

struct http_handlers {
  std::function<std::string()> metrics;
  std::function<bool(nlohmann::json& reason)> ready;
  std::function<nlohmann::json()> topology;
  /// GET /state/<node>: a stateful node's latest snapshot as JSON; `status` 200, or 404 (unknown
  /// or stateless node: the body says which). Empty: every /state/ path is 404.
  std::function<nlohmann::json(const std::string& node, int& status)> state;
};

struct http_limits {
  std::size_t max_connections = 256;               // open connections in total (http.max_connections)
  std::size_t max_connections_per_peer = 32;       // from one peer address (http.max_connections_per_peer)
  std::chrono::milliseconds header_timeout{5000};  // a request's whole header (http.header_timeout_ms)
  std::chrono::milliseconds idle_timeout{30000};   // keep-alive idle / a stalled reader (http.idle_timeout_ms)
  std::size_t max_header_bytes = 16384;            // request line + fields (http.max_header_bytes)
  std::size_t max_body_bytes = 65536;              // a request body (the endpoints take none)
};

struct http_stats {
  std::uint64_t accepted = 0;         // connections accepted
  std::uint64_t open = 0;             // connections open now
  std::uint64_t requests = 0;         // requests answered (any status)
  std::uint64_t evicted = 0;          // closed to make room at max_connections
  std::uint64_t refused_peer = 0;     // 429: the peer held max_connections_per_peer
  std::uint64_t refused_full = 0;     // 503: at max_connections with nothing to evict
  std::uint64_t header_timeouts = 0;  // 408: the header was not complete within header_timeout
  std::uint64_t idle_timeouts = 0;    // closed after idle_timeout
  std::uint64_t bad_requests = 0;     // 400/413/431/501/505
};

class http_server {
 public:
  explicit http_server(http_handlers h, http_limits limits = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds `host:port` and serves from a thread. Throws std::runtime_error if it cannot bind.
  std::uint16_t start(const std::string& host, std::uint16_t port);
  void stop();
  http_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ringflow::ops

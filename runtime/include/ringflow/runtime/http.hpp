// ringflow/runtime/http.hpp — the program's HTTP endpoints (cpp-httplib): metrics, health, topology.
//
// Contract
//   * GET /metrics        Prometheus text format 0.0.4 (content type prometheus.hpp's)
//   * GET /health/live    200 {"status":"live"} while the process serves HTTP at all
//   * GET /health/ready   200 {"status":"ready"}, or 503 with a JSON reason (starting, draining,
//                         stopped, or a ring actor without a healthy incarnation)
//   * GET /topology       200 JSON: nodes, edges, supervisors, devices, where each ring actor runs
//   * anything else: 404 (unknown path) or 405 (not GET), with a JSON error; a handler that throws
//     answers 500 with the message (and the server keeps serving).
//   * start() binds before it returns (port 0 = any free port; the bound port is returned), so a
//     port in use is an error at start, not a silent thread failure; stop() is idempotent.
// Thread-safety: handlers run on the server's worker threads: they must be thread-safe.
#pragma once

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
};

class http_server {
 public:
  explicit http_server(http_handlers h);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds `host:port` and serves from a thread. Throws std::runtime_error if it cannot bind.
  std::uint16_t start(const std::string& host, std::uint16_t port);
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ringflow::ops

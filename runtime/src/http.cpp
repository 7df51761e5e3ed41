// HTTP endpoints: see ringflow/runtime/http.hpp.
#include "ringflow/runtime/http.hpp"

#include <httplib.h>

#include <stdexcept>
#include <thread>

#include "ringflow/runtime/prometheus.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::ops {

struct http_server::impl {
  http_handlers h;
  httplib::Server server;
  std::thread thread;
  bool started = false;
};

namespace {
void json_reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
}
}  // namespace

http_server::http_server(http_handlers h) : impl_(std::make_unique<impl>()) {
  impl_->h = std::move(h);
  httplib::Server& s = impl_->server;
  http_handlers& hs = impl_->h;
  // cpp-httplib sets SO_REUSEPORT by default: a second ringflow on the same port would then bind
  // too and share the traffic silently. SO_REUSEADDR only: a port in use is an error at start.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.Get("/metrics", [&hs](const httplib::Request&, httplib::Response& res) {
    res.set_content(hs.metrics(), exposition_content_type);
  });
  s.Get("/health/live", [](const httplib::Request&, httplib::Response& res) {
    json_reply(res, 200, {{"status", "live"}});
  });
  s.Get("/health/ready", [&hs](const httplib::Request&, httplib::Response& res) {
    nlohmann::json why;
    const bool ok = hs.ready(why);
    json_reply(res, ok ? 200 : 503, why);
  });
  s.Get("/topology", [&hs](const httplib::Request&, httplib::Response& res) { json_reply(res, 200, hs.topology()); });
  // Other methods on known paths, and unknown paths.
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    json_reply(res, 405, {{"error", "method " + req.method + " not allowed; use GET"}});
  };
  for (const char* p : {"/metrics", "/health/live", "/health/ready", "/topology"}) {
    s.Post(p, not_allowed);
    s.Put(p, not_allowed);
    s.Delete(p, not_allowed);
  }
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404)
      json_reply(res, 404,
                 {{"error", "no such endpoint: " + req.path},
                  {"endpoints", {"/metrics", "/health/live", "/health/ready", "/topology"}}});
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {}
    json_reply(res, 500, {{"error", what}});
  });
}

http_server::~http_server() { stop(); }

std::uint16_t http_server::start(const std::string& host, std::uint16_t port) {
  httplib::Server& s = impl_->server;
  int bound = port;
  if (port == 0) {
    bound = s.bind_to_any_port(host);
    if (bound <= 0) throw std::runtime_error("cannot bind an HTTP port on " + host);
  } else if (!s.bind_to_port(host, port)) {
    throw std::runtime_error("cannot bind HTTP to " + host + ":" + std::to_string(port) +
                             " (in use, or not an address here)");
  }
  impl_->started = true;
  impl_->thread = std::thread([&s] {
    name_this_thread("rf-http");
    s.listen_after_bind();
  });
  // stop() only interrupts a server that is running: wait for it (bounded), so an early stop()
  // cannot leave the listen loop (and the join) hanging.
  for (int i = 0; i < 2000 && !s.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return static_cast<std::uint16_t>(bound);
}

void http_server::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ringflow::ops

// The HTTP server's routing and answers: see http_route.hpp.
#include "http_route.hpp"

#include <exception>

#include "ringflow/runtime/prometheus.hpp"

namespace ringflow::ops::http {

const char* const endpoints[5] = {"/metrics", "/health/live", "/health/ready", "/topology", "/state/<node>"};

response json_response(int status, const nlohmann::json& body) {
  response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

response error_response(int status, const std::string& what) { return json_response(status, {{"error", what}}); }

std::string serialize(const response& r, bool keep_alive, bool head) {
  std::string out;
  out.reserve(160 + (head ? 0 : r.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nServer: ringflow\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\nCache-Control: no-store\r\n";
  if (r.allow) out += "Allow: GET, HEAD\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head) out += r.body;
  return out;
}

endpoint endpoint_of(const std::string& path) {
  if (path == "/metrics") return endpoint::metrics;
  if (path == "/health/live") return endpoint::live;
  if (path == "/health/ready") return endpoint::ready;
  if (path == "/topology") return endpoint::topology;
  if (path.size() > 7 && path.compare(0, 7, "/state/") == 0) return endpoint::state;
  return endpoint::none;
}

routed route(const request& rq) {
  routed out;
  out.head = rq.method == "HEAD";
  const endpoint ep = endpoint_of(rq.path);
  if (ep == endpoint::none) {
    out.r = json_response(404, {{"error", "no such endpoint: " + rq.path},
                                {"endpoints", {endpoints[0], endpoints[1], endpoints[2], endpoints[3], endpoints[4]}}});
  } else if (rq.method != "GET" && !out.head) {
    out.r = error_response(405, "method " + rq.method + " not allowed; use GET");
    out.r.allow = true;
    out.head = false;
  } else if (ep == endpoint::live) {
    out.r = json_response(200, {{"status", "live"}});
  } else {
    out.now = false;
    out.ep = ep;
    if (ep == endpoint::state) out.arg = rq.path.substr(7);
  }
  return out;
}

response answer(endpoint ep, const std::string& arg, const http_handlers& h) {
  try {
    switch (ep) {
      case endpoint::metrics: {
        response r;
        r.body = h.metrics();
        r.content_type = exposition_content_type;
        return r;
      }
      case endpoint::ready: {
        nlohmann::json why;
        const bool ok = h.ready(why);
        return json_response(ok ? 200 : 503, why);
      }
      case endpoint::topology: return json_response(200, h.topology());
      case endpoint::state: {
        if (!h.state) return error_response(404, "no stateful node named '" + arg + "'");
        int status = 200;
        nlohmann::json body = h.state(arg, status);
        return json_response(status, body);
      }
      default: return error_response(500, "internal: unexpected endpoint on the worker");
    }
  } catch (const std::exception& e) {
    return error_response(500, e.what());
  } catch (...) {
    return error_response(500, "unknown error");
  }
}

exchange serve(std::string_view in, const http_handlers& h, std::size_t max_header_bytes, std::size_t max_body_bytes) {
  exchange x;
  while (!x.closed && x.consumed < in.size()) {
    const parse_result p = parse_request(in.substr(x.consumed), max_header_bytes, max_body_bytes);
    if (p.status == parse_status::incomplete) break;
    if (p.status == parse_status::error) {
      x.answers.push_back({p.code, false});
      x.out += serialize(error_response(p.code, p.error), false, false);
      x.consumed = in.size();
      x.closed = true;
      break;
    }
    x.consumed += p.req.consumed;
    const routed r = route(p.req);
    const response a = r.now ? r.r : answer(r.ep, r.arg, h);
    x.answers.push_back({a.status, r.head});
    x.out += serialize(a, p.req.keep_alive, r.head);
    x.closed = !p.req.keep_alive;
  }
  return x;
}

}  // namespace ringflow::ops::http

// The HTTP server's routing and answers (internal, no sockets): what http.cpp's event loop does
// with each parsed request, as pure functions, so the whole request path is fuzzed
// (tests/fuzz/ringflow_fuzz_http.cpp) and tested without a network.
//
// Contract
//   * route(req): an answer now (404 for an unknown path with the endpoint list, 405 with
//     `Allow: GET, HEAD` for another method on a known path, 200 for /health/live), or the
//     endpoint whose handler must run (on the worker thread in the server).
//   * answer(ep, arg, handlers): the handler's answer; one that throws is a 500 with its message.
//     /state/<node> (arg = node): 404 without a handler.
//   * serialize(resp, keep_alive, head): the wire bytes (HEAD: without the body).
//   * serve(bytes, handlers, max_header, max_body): every complete request in `bytes`, in order,
//     parsed, routed, answered and serialized exactly as the server would; a malformed request is
//     answered with its error and ends the exchange (the server then closes the connection), as
//     does `Connection: close`. `consumed` says how many bytes the answered requests took.
// Thread-safety: pure functions; the handlers are called on the caller's thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "http_parse.hpp"
#include "ringflow/runtime/http.hpp"

namespace ringflow::ops::http {

extern const char* const endpoints[5];

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  bool allow = false;  // add "Allow: GET, HEAD" (405)
};

response json_response(int status, const nlohmann::json& body);
response error_response(int status, const std::string& what);
std::string serialize(const response& r, bool keep_alive, bool head);

enum class endpoint { none, metrics, live, ready, topology, state };
endpoint endpoint_of(const std::string& path);

struct routed {
  bool now = true;  // `r` is the answer; else the handler of `ep` must run
  response r;
  endpoint ep = endpoint::none;
  std::string arg;    // /state/<node>: the node
  bool head = false;  // a HEAD request: answer without the body
};
routed route(const request& rq);
response answer(endpoint ep, const std::string& arg, const http_handlers& h);

struct exchange {
  struct answered_request {
    int status = 0;
    bool head = false;  // sent without its body
  };
  std::string out;  // the answers' bytes, in order
  std::vector<answered_request> answers;
  std::size_t consumed = 0;
  bool closed = false;  // a malformed request or `Connection: close` ended it
};
exchange serve(std::string_view in, const http_handlers& h, std::size_t max_header_bytes, std::size_t max_body_bytes);

}  // namespace ringflow::ops::http

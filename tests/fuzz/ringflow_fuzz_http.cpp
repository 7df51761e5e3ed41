// ringflow_fuzz_http: the input as the bytes a client sent to the HTTP server — the request parser
// (runtime/src/http_parse.cpp) and then the whole request path without sockets: routing, the
// handlers and the answers' bytes (runtime/src/http_route.cpp, what the server's loop runs).
// parse_request() must never read past the bytes, must answer only the documented error codes,
// and what it accepts must obey the grammar: the request is consumed exactly (the same answer
// with more bytes after it, and `consumed` within the input), the method is a token, the path
// starts with '/' (or is "*"), the header and body fit the limits. serve() must answer with
// documented statuses only, each answer a well-formed, self-delimiting HTTP/1.1 response (status
// line, Content-Length equal to the body sent, no body for HEAD), a 405 carrying `Allow`, and
// stop at a malformed request or `Connection: close`. The handlers are stubs whose behaviour the
// input's last byte picks: answer, not ready (503), or throw (500).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "http_parse.hpp"
#include "http_route.hpp"

namespace {

using namespace ringflow::ops;

// One answer of `out` at `at`: its status, and where the next one starts (npos: malformed).
std::size_t next_answer(std::string_view out, std::size_t at, bool head, int& status, bool& allow) {
  const std::size_t end = out.find("\r\n\r\n", at);
  if (end == std::string_view::npos || out.substr(at, 9) != "HTTP/1.1 ") return std::string_view::npos;
  const std::string_view header = out.substr(at, end - at);
  status = std::atoi(std::string(header.substr(9, 3)).c_str());
  allow = header.find("\r\nAllow: GET, HEAD") != std::string_view::npos;
  const std::size_t cl = header.find("\r\nContent-Length: ");
  if (cl == std::string_view::npos) return std::string_view::npos;
  const std::size_t length = std::strtoull(std::string(header.substr(cl + 18)).c_str(), nullptr, 10);
  return end + 4 + (head ? 0 : length);
}

void check_serve(std::string_view text, std::size_t max_header, std::size_t max_body) {
  const unsigned mode = text.empty() ? 0 : static_cast<unsigned char>(text.back()) % 3;
  http_handlers h;
  h.metrics = [mode]() -> std::string {
    if (mode == 2) throw std::runtime_error("metrics failed");
    return "ringflow_up 1\n";
  };
  h.ready = [mode](nlohmann::json& why) {
    why = {{"status", mode == 0 ? "ready" : "not ready"}};
    return mode == 0;
  };
  h.topology = [mode]() -> nlohmann::json {
    if (mode == 2) throw std::runtime_error("topology failed");
    return {{"name", "fuzz"}};
  };
  const http::exchange x = http::serve(text, h, max_header, max_body);
  RF_CHECK(x.consumed <= text.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < x.answers.size(); ++i) {
    const auto& a = x.answers[i];
    static constexpr int documented[] = {200, 400, 404, 405, 413, 431, 500, 501, 503, 505};
    RF_CHECK(std::find(std::begin(documented), std::end(documented), a.status) != std::end(documented));
    RF_CHECK(a.status != 500 || mode == 2);
    RF_CHECK(a.status != 503 || mode != 0);
    int status = 0;
    bool allow = false;
    at = next_answer(x.out, at, a.head, status, allow);
    RF_CHECK(at != std::string_view::npos && at <= x.out.size());
    RF_CHECK(status == a.status);
    RF_CHECK(allow == (status == 405));
    // Only the last answer may end the exchange.
    if (a.status >= 400 && a.status != 404 && a.status != 405 && a.status != 500 && a.status != 503)
      RF_CHECK(i + 1 == x.answers.size() && x.closed);
  }
  RF_CHECK(at == x.out.size());  // nothing but the answers
  if (!x.closed)
    RF_CHECK(http::parse_request(text.substr(x.consumed), max_header, max_body).status ==
                 http::parse_status::incomplete ||
             x.consumed == text.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow::ops::http;
  if (size > 1 << 16) return -1;
  const ringflow::fuzz::owned_copy in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size);
  constexpr std::size_t max_header = 2048, max_body = 512;

  const parse_result r = parse_request(text, max_header, max_body);
  switch (r.status) {
    case parse_status::incomplete: RF_CHECK(text.size() <= max_header + max_body); break;
    case parse_status::error:
      RF_CHECK(r.code == 400 || r.code == 413 || r.code == 431 || r.code == 501 || r.code == 505);
      RF_CHECK(!r.error.empty());
      break;
    case parse_status::complete: {
      RF_CHECK(r.req.consumed > 0 && r.req.consumed <= text.size());
      RF_CHECK(r.req.body_bytes <= max_body);
      RF_CHECK(r.req.consumed - r.req.body_bytes <= max_header);
      RF_CHECK(!r.req.method.empty());
      RF_CHECK(!r.req.path.empty() && (r.req.path[0] == '/' || r.req.path == "*"));
      RF_CHECK(r.req.path.find_first_of("?# ") == std::string::npos);
      RF_CHECK(r.req.minor == 0 || r.req.minor == 1);
      // The request is self-delimiting: exactly its bytes give the same answer, and so do its
      // bytes followed by anything.
      const parse_result exact = parse_request(text.substr(0, r.req.consumed), max_header, max_body);
      RF_CHECK(exact.status == parse_status::complete && exact.req.consumed == r.req.consumed &&
               exact.req.path == r.req.path && exact.req.method == r.req.method &&
               exact.req.keep_alive == r.req.keep_alive);
      // And one byte less is never complete.
      RF_CHECK(parse_request(text.substr(0, r.req.consumed - 1), max_header, max_body).status !=
               parse_status::complete);
      break;
    }
  }
  check_serve(text, max_header, max_body);
  return 0;
}

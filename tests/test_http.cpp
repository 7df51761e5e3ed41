// The HTTP server against hostile and unusual clients (issue 20, H1): slow and dripping clients,
// connection limits and eviction, size limits, malformed requests, pipelining, HEAD/405, slow
// handlers. Raw sockets from distinct loopback source addresses (127.0.0.x), handlers that need
// no engine. Plain C++ threads: also run under TSan.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http_parse.hpp"
#include "http_route.hpp"
#include "ringflow/runtime/http.hpp"
#include "support/raw_http.hpp"

using namespace ringflow::ops;
using namespace ringflow::testing;
using namespace std::chrono_literals;

namespace {

http_handlers plain_handlers() {
  return http_handlers{[] { return std::string("# metrics body\n"); },
                       [](nlohmann::json& r) {
                         r = {{"status", "ready"}};
                         return true;
                       },
                       [] {
                         return nlohmann::json{{"name", "topology body"}};
                       }};
}

const std::string live_req = "GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string live_close = "GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

std::string source(int i) {  // 127.0.0.2 .. 127.0.<k>.x: distinct peers
  return "127.0." + std::to_string(1 + i / 250) + "." + std::to_string(2 + i % 250);
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(2ms);  // polling a condition the server's thread makes true
  }
  return f();
}

// Connections from distinct addresses that send a request line and then one header line at a
// time, every `every`, until stopped (the H1 attack).
struct drippers {
  std::vector<int> fds;
  std::atomic<bool> stop{false};
  std::thread t;
  drippers(std::uint16_t port, int n, std::chrono::milliseconds every) {
    for (int i = 0; i < n; ++i) {
      const int fd = connect_from(source(i).c_str(), port);
      REQUIRE(fd >= 0);
      send_all(fd, "GET /health/live HTTP/1.1\r\n");
      fds.push_back(fd);
    }
    t = std::thread([this, every] {
      while (!stop.load()) {
        for (int fd : fds) send_all(fd, "X-Drip: 1\r\n");  // fails quietly once evicted
        for (auto slept = 0ms; slept < every && !stop.load(); slept += 10ms) std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~drippers() {
    stop.store(true);
    t.join();
    for (int fd : fds) ::close(fd);
  }
};

}  // namespace

TEST_CASE("HTTP: /health/live answers from 127.0.0.1 while 200 dripping clients hold connections", "[http]") {
  http_server s(plain_handlers());
  const std::uint16_t port = s.start("127.0.0.1", 0);
  drippers d(port, 200, 1000ms);
  REQUIRE(eventually([&] { return s.stats().open >= 200; }));
  // Probes for 1.5 s (the drippers send a line each second meanwhile), each on a fresh
  // connection as a kubelet makes them: every one answered (the old thread-per-connection server
  // answered none of them until a held thread timed out).
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  int probes = 0;
  while (std::chrono::steady_clock::now() < until || probes < 20) {
    const http_answer a = request_from("127.0.0.1", port, live_close, 2000ms);
    REQUIRE(a.status == 200);
    CHECK(a.body == "{\"status\":\"live\"}\n");
    ++probes;
    std::this_thread::sleep_for(20ms);  // probe pacing, not a wait for a condition
  }
  CHECK(s.stats().open >= 200);  // the slow clients are still held: nobody had to be evicted
  CHECK(s.stats().evicted == 0);
}

TEST_CASE("HTTP: at max_connections the longest idle or dripping connection is evicted for a probe", "[http]") {
  http_limits lim;
  lim.max_connections = 50;
  http_server s(plain_handlers(), lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  drippers d(port, 200, 500ms);  // 4x the limit
  REQUIRE(eventually([&] { return s.stats().accepted >= 200; }));
  CHECK(s.stats().open <= 50);
  CHECK(s.stats().evicted >= 150);
  for (int i = 0; i < 10; ++i) {
    const http_answer a = request_from("127.0.0.1", port, live_close, 2000ms);
    REQUIRE(a.status == 200);
  }
  CHECK(s.stats().refused_full == 0);
}

TEST_CASE("HTTP: a client dripping header lines is cut off with 408 when header_timeout_ms passes", "[http]") {
  http_limits lim;
  lim.header_timeout = 300ms;
  http_server s(plain_handlers(), lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int fd = connect_from("127.0.0.7", port);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, "GET /health/live HTTP/1.1\r\n"));
  // One line every 50 ms for up to 3 s: each line is progress, but the deadline is total.
  const auto t0 = std::chrono::steady_clock::now();
  std::string got;
  bool closed = false;
  for (int i = 0; i < 60 && !closed; ++i) {
    send_all(fd, "X-Drip: 1\r\n");
    closed = closed_within(fd, 50ms, &got) || !got.empty();
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  REQUIRE(closed);
  CHECK(took < 2500ms);  // well before the drip would have ended (3 s)
  if (!got.empty()) CHECK(got.compare(0, 12, "HTTP/1.1 408") == 0);
  CHECK(s.stats().header_timeouts == 1);
}

TEST_CASE("HTTP: a silent connection is closed at header_timeout_ms, an idle keep-alive one at idle_timeout_ms",
          "[http]") {
  http_limits lim;
  lim.header_timeout = 200ms;
  lim.idle_timeout = 300ms;
  http_server s(plain_handlers(), lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int silent = connect_from("127.0.0.8", port);
  REQUIRE(silent >= 0);
  CHECK(closed_within(silent, 5000ms));
  ::close(silent);
  CHECK(s.stats().header_timeouts == 1);

  const int keep = connect_from("127.0.0.8", port);
  REQUIRE(keep >= 0);
  std::string rest;
  REQUIRE(send_all(keep, live_req));
  CHECK(read_response(keep, rest, 2000ms).status == 200);
  REQUIRE(send_all(keep, live_req));  // still open: keep-alive
  CHECK(read_response(keep, rest, 2000ms).status == 200);
  CHECK(closed_within(keep, 5000ms));
  ::close(keep);
  CHECK(s.stats().idle_timeouts == 1);
}

TEST_CASE("HTTP: a peer at max_connections_per_peer gets 429, other peers are served", "[http]") {
  http_limits lim;
  lim.max_connections_per_peer = 3;
  http_server s(plain_handlers(), lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_from("127.0.0.9", port));
  REQUIRE(eventually([&] { return s.stats().open == 3; }));
  const http_answer refused = request_from("127.0.0.9", port, live_close, 2000ms);
  CHECK(refused.status == 429);
  CHECK(request_from("127.0.0.10", port, live_close, 2000ms).status == 200);
  CHECK(s.stats().refused_peer == 1);
  ::close(held[0]);  // a slot of that peer frees up
  REQUIRE(eventually([&] { return s.stats().open == 2; }));
  CHECK(request_from("127.0.0.9", port, live_close, 2000ms).status == 200);
  for (int fd : held) ::close(fd);
}

TEST_CASE("HTTP: oversize headers 431, oversize bodies 413, malformed 400, HTTP/2.0 505, chunked 501", "[http]") {
  http_limits lim;
  lim.max_header_bytes = 1024;
  http_server s(plain_handlers(), lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  auto status_of = [&](const std::string& wire) { return request_from("127.0.0.11", port, wire, 2000ms).status; };
  CHECK(status_of("GET /health/live HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n") == 431);
  CHECK(status_of("GET /health/live HTTP/1.1\r\nX-Big: " + std::string(5000, 'a')) == 431);  // never ends
  CHECK(status_of("GET /health/live HTTP/1.1\r\nContent-Length: 100000\r\n\r\n") == 413);
  CHECK(status_of("GET /health/live HTTP/1.1\r\nContent-Length: 12x\r\n\r\n") == 400);
  CHECK(status_of("GET /health/live HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
  CHECK(status_of("GARBAGE\r\n\r\n") == 400);
  CHECK(status_of("GET  /health/live HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET health HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("GET /health/live HTTP/2.0\r\n\r\n") == 505);
  CHECK(status_of("POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 501);
  CHECK(status_of(std::string("GET /\x01 HTTP/1.1\r\n\r\n")) == 400);
  CHECK(status_of("GET /health/live HTTP/1.1\r\n folded\r\n\r\n") == 400);
  CHECK(s.stats().bad_requests == 12);
  CHECK(request_from("127.0.0.11", port, live_close, 2000ms).status == 200);  // and it keeps serving
}

TEST_CASE("HTTP: pipelined requests are answered in order on one connection", "[http]") {
  http_server s(plain_handlers());
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int fd = connect_from("127.0.0.12", port);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd,
                   "GET /topology HTTP/1.1\r\n\r\n"
                   "GET /health/live HTTP/1.1\r\n\r\n"
                   "GET /metrics?x=1 HTTP/1.1\r\n\r\n"
                   "GET /nope HTTP/1.1\r\n\r\n"
                   "GET /health/ready HTTP/1.1\r\nConnection: close\r\n\r\n"));
  std::string rest;
  const http_answer a1 = read_response(fd, rest, 2000ms), a2 = read_response(fd, rest, 2000ms),
                    a3 = read_response(fd, rest, 2000ms), a4 = read_response(fd, rest, 2000ms),
                    a5 = read_response(fd, rest, 2000ms);
  CHECK(a1.status == 200);
  CHECK_THAT(a1.body, Catch::Contains("topology body"));
  CHECK(a2.status == 200);
  CHECK_THAT(a2.body, Catch::Contains("live"));
  CHECK(a3.status == 200);
  CHECK(a3.body == "# metrics body\n");
  CHECK_THAT(a3.head, Catch::Contains("Content-Type: text/plain; version=0.0.4"));
  CHECK(a4.status == 404);
  CHECK_THAT(a4.body, Catch::Contains("no such endpoint: /nope"));
  CHECK(a5.status == 200);
  CHECK_THAT(a5.body, Catch::Contains("ready"));
  CHECK(closed_within(fd, 2000ms));  // Connection: close honoured after the last answer
  ::close(fd);
}

TEST_CASE("HTTP: HEAD answers headers only, other methods on an endpoint 405 with Allow, unknown paths 404", "[http]") {
  http_server s(plain_handlers());
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int fd = connect_from("127.0.0.13", port);
  REQUIRE(fd >= 0);
  std::string rest;
  REQUIRE(send_all(fd, "HEAD /health/live HTTP/1.1\r\n\r\nGET /health/live HTTP/1.1\r\n\r\n"));
  // The HEAD answer says Content-Length 18 but carries no body: the next bytes are the GET answer.
  REQUIRE(read_until(fd, rest, 2000ms, [](const std::string& b) {
    return b.find("HTTP/1.1 200", 1) != std::string::npos && response_length(b.substr(b.find("HTTP/1.1 200", 1)));
  }));
  const std::size_t second = rest.find("HTTP/1.1 200", 1);
  CHECK(rest.substr(0, second).find("Content-Length: 18\r\n") != std::string::npos);
  CHECK(rest.substr(0, second).size() == rest.substr(0, second).find("\r\n\r\n") + 4);  // no body
  ::close(fd);
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    const http_answer a =
        request_from("127.0.0.13", port, std::string(m) + " /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 2000ms);
    INFO(m);
    CHECK(a.status == 405);
    CHECK_THAT(a.head, Catch::Contains("Allow: GET, HEAD"));
    CHECK_THAT(a.body, Catch::Contains("not allowed"));
  }
  CHECK(request_from("127.0.0.13", port, "OPTIONS * HTTP/1.1\r\nConnection: close\r\n\r\n", 2000ms).status == 404);
  CHECK(request_from("127.0.0.13", port, "GET /metricsx HTTP/1.0\r\n\r\n", 2000ms).status == 404);
}

TEST_CASE("HTTP: a slow /metrics does not delay /health/live, a throwing handler answers 500", "[http]") {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  http_handlers h = plain_handlers();
  h.metrics = [&] {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return release; });
    return std::string("# slow\n");
  };
  h.topology = []() -> nlohmann::json { throw std::runtime_error("topology broke"); };
  http_server s(h);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int slow = connect_from("127.0.0.14", port);
  REQUIRE(send_all(slow, "GET /metrics HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 5; ++i) CHECK(request_from("127.0.0.1", port, live_close, 2000ms).status == 200);
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  std::string rest;
  const http_answer m = read_response(slow, rest, 2000ms);
  CHECK(m.status == 200);
  CHECK(m.body == "# slow\n");
  ::close(slow);
  const http_answer t = request_from("127.0.0.14", port, "GET /topology HTTP/1.1\r\n\r\n", 2000ms);
  CHECK(t.status == 500);
  CHECK_THAT(t.body, Catch::Contains("topology broke"));
  CHECK(request_from("127.0.0.14", port, live_close, 2000ms).status == 200);
}

TEST_CASE("HTTP: a client that reads none of a large answer is closed after idle_timeout_ms", "[http]") {
  http_limits lim;
  lim.idle_timeout = 300ms;
  http_handlers h = plain_handlers();
  h.metrics = [] { return std::string(32 << 20, 'm'); };  // far more than the socket buffers hold
  http_server s(h, lim);
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int fd = connect_from("127.0.0.15", port);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  REQUIRE(send_all(fd, "GET /metrics HTTP/1.1\r\n\r\n"));
  CHECK(eventually([&] { return s.stats().idle_timeouts == 1; }));
  CHECK(eventually([&] { return s.stats().open == 0; }));
  ::close(fd);
}

TEST_CASE("HTTP: a request followed by a half-close is answered", "[http]") {
  http_server s(plain_handlers());
  const std::uint16_t port = s.start("127.0.0.1", 0);
  const int fd = connect_from("127.0.0.16", port);
  REQUIRE(send_all(fd, live_req));
  ::shutdown(fd, SHUT_WR);
  std::string rest;
  CHECK(read_response(fd, rest, 2000ms).status == 200);
  CHECK(closed_within(fd, 2000ms));
  ::close(fd);
}

TEST_CASE("HTTP parser: line endings, forms of the target, limits", "[http]") {
  using namespace ringflow::ops::http;
  auto parse = [](std::string_view s) { return parse_request(s, 1024, 100); };
  parse_result r = parse("\r\n\nGET /a/b?q=1#f HTTP/1.0\nConnection: keep-alive\n\nGET");
  REQUIRE(r.status == parse_status::complete);
  CHECK(r.req.method == "GET");
  CHECK(r.req.path == "/a/b");
  CHECK(r.req.minor == 0);
  CHECK(r.req.keep_alive);
  CHECK(r.req.consumed == std::string_view("\r\n\nGET /a/b?q=1#f HTTP/1.0\nConnection: keep-alive\n\n").size());
  r = parse("GET http://host:9750/metrics HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n");
  REQUIRE(r.status == parse_status::complete);
  CHECK(r.req.path == "/metrics");
  CHECK_FALSE(r.req.keep_alive);
  CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc").status == parse_status::incomplete);
  r = parse("GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET");
  REQUIRE(r.status == parse_status::complete);
  CHECK(r.req.body_bytes == 5);
  CHECK(parse("GET /x HTTP/1.1\r\nHost: a").status == parse_status::incomplete);
  CHECK(parse("GET /x HTTP/1.1\r\n\r").status == parse_status::incomplete);
  CHECK(parse("\r").status == parse_status::incomplete);
  CHECK(parse("").status == parse_status::incomplete);
  std::string many = "GET /x HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "a:b\r\n";
  CHECK(parse_request(many + "\r\n", 4096, 0).code == 431);
  CHECK(parse("GET /x HTTP/1.1\r\nbad name: v\r\n\r\n").code == 400);
  CHECK(parse("GET /x HTTP/1.1\r\n: v\r\n\r\n").code == 400);
  CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n").code == 413);
  CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n").code == 400);
  CHECK(parse("GET /\xff HTTP/1.1\r\n\r\n").code == 400);
  CHECK(parse("GET /x HTTP/1.1 extra\r\n\r\n").code == 400);
  CHECK(parse("GET /x HTTP/3.0\r\n\r\n").code == 505);
  CHECK(parse("GET /x http/1.1\r\n\r\n").code == 400);
  CHECK(parse(std::string(2000, '\n')).code == 431);
  CHECK(parse("\rX").code == 400);
}

TEST_CASE("HTTP request path without sockets: pipelined answers in order, HEAD bodiless, 405, 500, and a malformed end",
          "[http]") {
  using namespace ringflow::ops;
  http_handlers h;
  h.metrics = [] { return std::string("ringflow_up 1\n"); };
  h.ready = [](nlohmann::json& why) {
    why = {{"status", "not ready"}};
    return false;
  };
  h.topology = []() -> nlohmann::json { throw std::runtime_error("no topology"); };
  const std::string in =
      "GET /health/live HTTP/1.1\r\n\r\n"
      "HEAD /metrics HTTP/1.1\r\n\r\n"
      "POST /topology HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"
      "GET /health/ready HTTP/1.1\r\n\r\n"
      "GET /topology HTTP/1.1\r\n\r\n"
      "GET /nope HTTP/1.1\r\n\r\n"
      "GET / HTTP/2.0\r\n\r\n"
      "GET /health/live HTTP/1.1\r\n\r\n";  // after the malformed one: never answered
  const http::exchange x = http::serve(in, h, 4096, 64);
  std::vector<int> statuses;
  for (const auto& a : x.answers) statuses.push_back(a.status);
  CHECK(statuses == std::vector<int>{200, 200, 405, 503, 500, 404, 505});
  CHECK(x.closed);
  CHECK(x.answers[1].head);
  // The HEAD answer: Content-Length of the body it does not carry, then the next answer.
  const std::size_t head_at = x.out.find("HTTP/1.1 200", 10);
  REQUIRE(head_at != std::string::npos);
  const std::size_t next = x.out.find("\r\n\r\n", head_at) + 4;
  CHECK(x.out.compare(next, 12, "HTTP/1.1 405") == 0);
  CHECK(x.out.find("Allow: GET, HEAD") != std::string::npos);
  CHECK(x.out.find("no topology") != std::string::npos);
  CHECK(x.out.find("Connection: close") != std::string::npos);
  // Connection: close ends the exchange too; an incomplete request waits.
  CHECK(http::serve("GET /health/live HTTP/1.1\r\nConnection: close\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", h, 4096, 64)
            .answers.size() == 1);
  const http::exchange partial = http::serve("GET /health/live HTTP/1.1\r\n\r\nGET /met", h, 4096, 64);
  CHECK(partial.answers.size() == 1);
  CHECK_FALSE(partial.closed);
  CHECK(partial.consumed == std::string("GET /health/live HTTP/1.1\r\n\r\n").size());
}

// Raw TCP clients for the HTTP server's tests: connections from a chosen loopback source address
// (127.0.0.2, 127.0.0.3, ... are all this host's on Linux), partial and pipelined requests, and
// reads with a deadline. Header-only, blocking sockets with poll() deadlines.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ringflow::testing {

/// A connected TCP socket to 127.0.0.1:port from `source` (any port); -1 on failure. From
/// "127.0.0.1" it does not bind first: bind() to port 0 scans the ephemeral range past every
/// TIME_WAIT socket (milliseconds of CPU after a few thousand probes), connect() picks cheaply.
inline int connect_from(const char* source, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (std::strcmp(source, "127.0.0.1") == 0) {
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) return fd;
    ::close(fd);
    return -1;
  }
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  const int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Sends all of `s` (no SIGPIPE); false when the peer is gone.
inline bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Appends what arrives to `buf` until `done(buf)` or EOF or the deadline. Returns false on EOF
/// or timeout before `done`.
template <class Done>
bool read_until(int fd, std::string& buf, std::chrono::milliseconds limit, Done done, bool* eof = nullptr) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done(buf)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char tmp[65536];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      if (eof) *eof = true;
      return done(buf);
    }
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return true;
}

/// The length of the first complete HTTP response in `buf` (headers + Content-Length body), or 0.
inline std::size_t response_length(std::string_view buf) {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  std::size_t length = 0;
  const std::string_view head = buf.substr(0, end);
  for (std::size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    const std::string_view line = head.substr(at + 2, head.find("\r\n", at + 2) - at - 2);
    if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0)
      length = std::stoul(std::string(line.substr(15)));
  }
  return buf.size() >= end + 4 + length ? end + 4 + length : 0;
}

struct http_answer {
  int status = 0;  // 0: no complete answer
  std::string head, body;
};

/// Reads one response from `fd` (what follows it stays in `rest`).
inline http_answer read_response(int fd, std::string& rest, std::chrono::milliseconds limit) {
  http_answer a;
  if (!read_until(fd, rest, limit, [](const std::string& b) { return response_length(b) != 0; })) return a;
  const std::size_t n = response_length(rest);
  const std::size_t end = rest.find("\r\n\r\n");
  a.head = rest.substr(0, end);
  a.body = rest.substr(end + 4, n - end - 4);
  if (a.head.size() > 12 && a.head.compare(0, 9, "HTTP/1.1 ") == 0) a.status = std::stoi(a.head.substr(9, 3));
  rest.erase(0, n);
  return a;
}

/// One request on a fresh connection from `source`; the answer (status 0 when none came within
/// `limit`).
inline http_answer request_from(const char* source, std::uint16_t port, const std::string& wire,
                                std::chrono::milliseconds limit) {
  const int fd = connect_from(source, port);
  if (fd < 0) return {};
  std::string rest;
  http_answer a = send_all(fd, wire) ? read_response(fd, rest, limit) : http_answer{};
  ::close(fd);
  return a;
}

/// True when the server closes `fd` within `limit` (EOF or reset); what arrived before is in `got`.
inline bool closed_within(int fd, std::chrono::milliseconds limit, std::string* got = nullptr) {
  std::string buf;
  bool eof = false;
  read_until(
      fd, buf, limit, [](const std::string&) { return false; }, &eof);
  if (got) *got = buf;
  return eof;
}

}  // namespace ringflow::testing

// HTTP endpoints: see ringflow/runtime/http.hpp. An epoll event loop (rf-http) owns the listening
// socket and every connection; requests that call into the engine run on one worker thread
// (rf-http-w) and come back through an eventfd. Why not a library: docs/OPERATIONS.md
// ("Limits and hostile input").
#include "ringflow/runtime/http.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_parse.hpp"
#include "http_route.hpp"
#include "ringflow/runtime/prometheus.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::ops {

// Named (not anonymous): http_server::impl holds these types.
namespace http {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

std::string peer_of(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) inet_ntop(AF_INET, &a6.sin6_addr.s6_addr[12], buf, sizeof buf);
    else inet_ntop(AF_INET6, &a6.sin6_addr, buf, sizeof buf);
  }
  return buf;
}

constexpr std::size_t out_high_water = 64 * 1024;  // answer the next pipelined request below this

}  // namespace http

using namespace http;

struct http_server::impl {
  http_handlers h;
  http_limits lim;
  int listen_fd = -1, epoll_fd = -1, wake_fd = -1;
  std::thread loop, worker;
  bool started = false;
  std::atomic<bool> stopping{false};

  // Stats: written by the loop, read by stats() from any thread.
  struct counters {
    std::atomic<std::uint64_t> accepted{0}, open{0}, requests{0}, evicted{0}, refused_peer{0}, refused_full{0},
        header_timeouts{0}, idle_timeouts{0}, bad_requests{0};
  } st;

  // ---- the worker: jobs in, answers out (both under `mu`), the loop woken through wake_fd.
  struct job {
    std::uint64_t conn;
    endpoint ep;
    std::string arg;
  };
  struct done {
    std::uint64_t conn;
    response r;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<job> jobs;
  std::deque<done> answers;

  // ---- connections (loop thread only)
  struct conn {
    int fd = -1;
    std::uint64_t id = 0;
    std::string peer;
    std::string in, out;
    std::size_t out_off = 0;
    bool busy = false;          // a request is on the worker
    bool busy_head = false;     // ... and it was HEAD
    bool busy_keep = true;      // ... and keeps the connection
    bool close_after = false;   // close once `out` is written
    bool peer_eof = false;      // the client shut its side down
    bool served_any = false;    // a request was answered on it
    time_point phase_start;     // accept, or when the last answer was queued: idle/reading since
    time_point first_byte;      // the current request's first byte (the header deadline's start)
    time_point write_progress;  // last time bytes of `out` left
    std::uint32_t events = 0;   // the epoll interest registered
  };
  std::unordered_map<std::uint64_t, conn> conns;
  std::unordered_map<int, std::uint64_t> by_fd;
  std::unordered_map<std::string, std::size_t> per_peer;
  std::uint64_t next_id = 1;
  time_point accept_paused_until{};
  bool accept_paused = false;

  static constexpr std::uint64_t listen_tag = 0, wake_tag = ~std::uint64_t{0};

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void worker_main() {
    name_this_thread("rf-http-w");
    std::unique_lock lk(mu);
    while (true) {
      cv.wait(lk, [&] { return stopping.load() || !jobs.empty(); });
      if (stopping.load()) return;
      const job j = jobs.front();
      jobs.pop_front();
      lk.unlock();
      response r = answer(j.ep, j.arg, h);
      lk.lock();
      answers.push_back({j.conn, std::move(r)});
      wake();
    }
  }

  // ---- the loop
  void set_interest(conn& c) {
    std::uint32_t ev = 0;
    const bool reading =
        !c.busy && !c.close_after && !c.peer_eof && c.in.size() < lim.max_header_bytes + lim.max_body_bytes + 1;
    if (reading) ev |= EPOLLIN;
    if (c.out_off < c.out.size()) ev |= EPOLLOUT;
    if (ev == c.events) return;
    epoll_event e{};
    e.events = ev;
    e.data.u64 = c.id;
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &e);
    c.events = ev;
  }

  void close_conn(std::uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    conn& c = it->second;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    by_fd.erase(c.fd);
    if (auto p = per_peer.find(c.peer); p != per_peer.end() && --p->second == 0) per_peer.erase(p);
    conns.erase(it);
    st.open.fetch_sub(1, std::memory_order_relaxed);
  }

  // Writes what it can of `out`; closes the connection when it is done and should close, or on
  // an error. Returns false when the connection is gone.
  bool flush(conn& c, time_point now) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        c.write_progress = now;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(c.id);  // EPIPE, ECONNRESET, ...
      return false;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
      if (c.close_after) {
        close_conn(c.id);
        return false;
      }
    }
    return true;
  }

  void queue_answer(conn& c, const response& r, bool keep_alive, bool head, time_point now) {
    if (c.out.empty()) c.write_progress = now;
    c.out += serialize(r, keep_alive, head);
    st.requests.fetch_add(1, std::memory_order_relaxed);
    c.served_any = true;
    c.phase_start = now;
    if (!keep_alive) c.close_after = true;
  }

  // Answers every complete request in `in`, in order, while nothing is on the worker and the
  // pending output is small. Returns false when the connection is gone.
  bool process(conn& c, time_point now) {
    while (!c.busy && !c.close_after && c.out.size() - c.out_off < out_high_water && !c.in.empty()) {
      http::parse_result p = http::parse_request(c.in, lim.max_header_bytes, lim.max_body_bytes);
      if (p.status == http::parse_status::incomplete) break;
      if (p.status == http::parse_status::error) {
        st.bad_requests.fetch_add(1, std::memory_order_relaxed);
        c.in.clear();
        queue_answer(c, error_response(p.code, p.error), false, false, now);
        break;
      }
      c.in.erase(0, p.req.consumed);
      const http::request& rq = p.req;
      const routed rt = route(rq);
      if (rt.now) {
        queue_answer(c, rt.r, rq.keep_alive, rt.head, now);
      } else {
        c.busy = true;
        c.busy_head = rt.head;
        c.busy_keep = rq.keep_alive;
        {
          std::lock_guard lk(mu);
          jobs.push_back({c.id, rt.ep, rt.arg});
        }
        cv.notify_one();
      }
      if (!c.in.empty()) c.first_byte = now;  // a pipelined request: its deadline starts now
    }
    if (!flush(c, now)) return false;
    if (c.peer_eof && !c.busy && c.out.empty()) {  // nothing more will come, nothing left to send
      close_conn(c.id);
      return false;
    }
    set_interest(c);
    return true;
  }

  void on_readable(conn& c, time_point now) {
    char buf[16384];
    const std::size_t cap = lim.max_header_bytes + lim.max_body_bytes + 1;
    while (c.in.size() < cap) {
      const ssize_t n = ::recv(c.fd, buf, std::min(sizeof buf, cap - c.in.size()), 0);
      if (n > 0) {
        if (c.in.empty()) c.first_byte = c.served_any ? now : c.phase_start;
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        c.peer_eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c.id);
      return;
    }
    process(c, now);
  }

  // The connection to give up at max_connections: idle or still reading its request, the
  // longest in that phase. 0 when every connection is busy or writing.
  std::uint64_t eviction_candidate() const {
    std::uint64_t best = 0;
    time_point oldest = time_point::max();
    for (const auto& [id, c] : conns) {
      if (c.busy || c.out_off < c.out.size()) continue;
      const time_point since = c.in.empty() ? c.phase_start : c.first_byte;
      if (since < oldest) {
        oldest = since;
        best = id;
      }
    }
    return best;
  }

  // Best effort: a short answer on a socket we are about to close (never blocks).
  static void refuse(int fd, int status, const std::string& why) {
    const std::string wire = serialize(error_response(status, why), false, false);
    [[maybe_unused]] const ssize_t n = ::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
  }

  void on_accept(time_point now) {
    while (true) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: make room if a connection can go, else stop accepting a moment.
          if (const std::uint64_t victim = eviction_candidate()) {
            st.evicted.fetch_add(1, std::memory_order_relaxed);
            close_conn(victim);
            continue;
          }
          pause_accept(now + std::chrono::milliseconds(100));
        }
        return;  // EAGAIN: nothing more to accept
      }
      st.accepted.fetch_add(1, std::memory_order_relaxed);
      const std::string peer = peer_of(addr);
      if (const auto held = per_peer.find(peer);
          held != per_peer.end() && held->second >= lim.max_connections_per_peer) {
        st.refused_peer.fetch_add(1, std::memory_order_relaxed);
        refuse(fd, 429, "too many connections from " + peer);
        continue;
      }
      if (conns.size() >= lim.max_connections) {
        const std::uint64_t victim = eviction_candidate();
        if (!victim) {
          st.refused_full.fetch_add(1, std::memory_order_relaxed);
          refuse(fd, 503, "connection limit reached");
          continue;
        }
        st.evicted.fetch_add(1, std::memory_order_relaxed);
        close_conn(victim);
      }
      const std::uint64_t id = next_id++;
      conn& c = conns[id];
      c.fd = fd;
      c.id = id;
      c.peer = peer;
      c.phase_start = c.first_byte = c.write_progress = now;
      ++per_peer[peer];
      by_fd[fd] = id;
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = id;
      c.events = EPOLLIN;
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &e);
      st.open.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void pause_accept(time_point until) {
    if (!accept_paused) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
    accept_paused = true;
    accept_paused_until = until;
  }

  void resume_accept() {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = listen_tag;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &e);
    accept_paused = false;
  }

  void on_answers(time_point now) {
    std::uint64_t drained;
    [[maybe_unused]] const ssize_t n = ::read(wake_fd, &drained, sizeof drained);
    std::deque<done> ready;
    {
      std::lock_guard lk(mu);
      ready.swap(answers);
    }
    for (done& d : ready) {
      auto it = conns.find(d.conn);
      if (it == conns.end()) continue;  // closed while its answer was computed
      conn& c = it->second;
      c.busy = false;
      queue_answer(c, d.r, c.busy_keep, c.busy_head, now);
      process(c, now);
    }
  }

  // Enforces the deadlines; returns the time until the next one (for epoll_wait).
  int sweep(time_point now) {
    time_point next = now + std::chrono::seconds(1);
    if (accept_paused) {
      if (now >= accept_paused_until) resume_accept();
      else next = std::min(next, accept_paused_until);
    }
    std::vector<std::pair<std::uint64_t, bool>> expired;  // id, header timeout (else idle)
    for (auto& [id, c] : conns) {
      if (c.busy) continue;
      time_point due;
      bool header = false;
      if (c.out_off < c.out.size()) {
        due = c.write_progress + lim.idle_timeout;  // a reader that takes nothing
      } else if (!c.in.empty() || !c.served_any) {
        due = (c.in.empty() ? c.phase_start : c.first_byte) + lim.header_timeout;
        header = true;
      } else {
        due = c.phase_start + lim.idle_timeout;  // keep-alive, waiting for the next request
      }
      if (due <= now) expired.emplace_back(id, header);
      else next = std::min(next, due);
    }
    for (auto [id, header] : expired) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      if (header) {
        st.header_timeouts.fetch_add(1, std::memory_order_relaxed);
        conn& c = it->second;
        const std::string wire = serialize(
            error_response(408, "the request header was not complete within http.header_timeout_ms"), false, false);
        [[maybe_unused]] const ssize_t n = ::send(c.fd, wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      } else {
        st.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      }
      close_conn(id);
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return static_cast<int>(std::max<long long>(ms, 1));
  }

  void loop_main() {
    name_this_thread("rf-http");
    epoll_event events[64];
    int timeout_ms = 0;
    while (!stopping.load(std::memory_order_acquire)) {
      const int n = epoll_wait(epoll_fd, events, 64, timeout_ms);
      const time_point now = clock_type::now();
      for (int i = 0; i < n; ++i) {
        const std::uint64_t tag = events[i].data.u64;
        if (tag == listen_tag) {
          on_accept(now);
        } else if (tag == wake_tag) {
          if (stopping.load(std::memory_order_acquire)) break;
          on_answers(now);
        } else {
          auto it = conns.find(tag);
          if (it == conns.end()) continue;
          conn& c = it->second;
          if (events[i].events & (EPOLLERR | EPOLLHUP)) {
            close_conn(tag);
            continue;
          }
          if ((events[i].events & EPOLLOUT) && !flush(c, now)) continue;
          if (events[i].events & EPOLLIN) on_readable(c, now);
          else process(c, now);  // written down below the high-water mark: the next pipelined request
        }
      }
      timeout_ms = sweep(clock_type::now());
    }
    std::vector<std::uint64_t> ids;
    for (const auto& [id, c] : conns) ids.push_back(id);
    for (std::uint64_t id : ids) close_conn(id);
  }
};

http_server::http_server(http_handlers h, http_limits limits) : impl_(std::make_unique<impl>()) {
  impl_->h = std::move(h);
  impl_->lim = limits;
  if (impl_->lim.max_connections == 0) impl_->lim.max_connections = 1;
  if (impl_->lim.max_connections_per_peer == 0) impl_->lim.max_connections_per_peer = 1;
}

http_server::~http_server() {
  stop();
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
  if (impl_->epoll_fd >= 0) ::close(impl_->epoll_fd);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

std::uint16_t http_server::start(const std::string& host, std::uint16_t port) {
  impl& m = *impl_;
  if (m.started) throw std::runtime_error("the HTTP server is already started");
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  if (const int rc = getaddrinfo(h.empty() ? nullptr : h.c_str(), port_text.c_str(), &hints, &res); rc != 0)
    throw std::runtime_error("cannot bind HTTP to " + host + ":" + port_text + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR only (not SO_REUSEPORT): a second ringflow on the same port is an error at
    // start, never a silent share of the traffic.
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) break;
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw std::runtime_error("cannot bind HTTP to " + host + ":" + port_text + " (" + last_error +
                             "; in use, or not an address here)");
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const std::uint16_t bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(bound).sin6_port
                                        : reinterpret_cast<const sockaddr_in&>(bound).sin_port);
  m.listen_fd = fd;
  m.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  m.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.epoll_fd < 0 || m.wake_fd < 0)
    throw std::runtime_error(std::string("HTTP event loop: ") + std::strerror(errno));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = impl::listen_tag;
  epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, fd, &e);
  e.data.u64 = impl::wake_tag;
  epoll_ctl(m.epoll_fd, EPOLL_CTL_ADD, m.wake_fd, &e);
  m.started = true;
  m.worker = std::thread([&m] { m.worker_main(); });
  m.loop = std::thread([&m] { m.loop_main(); });
  return bound_port;
}

void http_server::stop() {
  impl& m = *impl_;
  if (!m.started) return;
  m.started = false;
  {
    std::lock_guard lk(m.mu);
    m.stopping.store(true, std::memory_order_release);
  }
  m.cv.notify_all();
  m.wake();
  if (m.loop.joinable()) m.loop.join();
  if (m.worker.joinable()) m.worker.join();
}

http_stats http_server::stats() const {
  const impl::counters& c = impl_->st;
  http_stats s;
  s.accepted = c.accepted.load(std::memory_order_relaxed);
  s.open = c.open.load(std::memory_order_relaxed);
  s.requests = c.requests.load(std::memory_order_relaxed);
  s.evicted = c.evicted.load(std::memory_order_relaxed);
  s.refused_peer = c.refused_peer.load(std::memory_order_relaxed);
  s.refused_full = c.refused_full.load(std::memory_order_relaxed);
  s.header_timeouts = c.header_timeouts.load(std::memory_order_relaxed);
  s.idle_timeouts = c.idle_timeouts.load(std::memory_order_relaxed);
  s.bad_requests = c.bad_requests.load(std::memory_order_relaxed);
  return s;
}

}  // namespace ringflow::ops

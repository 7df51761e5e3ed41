// ringflow/actors/typed_client.hpp — a ring_client that speaks one kernel's types.
//
//   auto quotes = rt.client_for<QuoteKernel>("quotes").value();   // or typed_client<K>(ring_client)
//   auto r = quotes.call([&](flatbuffers::FlatBufferBuilder& b) {  // flatc's builder...
//     return trial::CreateOrder(b, 42, b.CreateString("XYZ"));     // ...returns the root offset
//   }, 20ms);
//   if (r) use(r.reply().price());                 // the reply descriptor (K::reply) over r.message
//   else log(to_string(r.code), r.detail);          // a typed error (errc), never an exception
//
// Contract
//   * The request can be given as bytes (one finished FlatBuffer), as an fb_msg, as a callable that
//     fills a flatbuffers::FlatBufferBuilder (return the root table's Offset and the client
//     finishes the buffer with the request type's identifier; return void and finish it yourself),
//     or as a callable that adds fields to ringflow's portable fb::builder (the root table of
//     K::request is begun and finished for you; the buffer grows until it fits, up to 16 MiB).
//   * `timeout` 0 means the client's default (client_options::default_timeout, itself defaulting
//     to the ring actor's; docs/EMBEDDING.md "Deadlines"). A deadline that has passed at submit is
//     answered errc::timeout at once, never enqueued.
//   * Each request is answered exactly once: typed_result with code ok and the reply, or a code.
//     A request of the wrong type is errc::wrong_type before it is sent; a reply that is not
//     K::reply is errc::bad_reply.
// Thread-safety: as ring_client (share it or make one per thread). The result owns its bytes;
// the descriptor from reply() is valid while the result lives.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <chrono>
#include <concepts>
#include <cstring>
#include <future>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ringflow/actors/ring_client.hpp"
#include "ringflow/fb_writer.hpp"
#include "ringflow/ingress.hpp"

namespace ringflow {

/// The answer to a typed request: the code, the detail, and the reply buffer when ok.
template <class Reply>
struct typed_result {
  errc code = errc::ok;
  std::string detail;
  fb_msg message;  // the reply FlatBuffer (empty unless ok)

  bool ok() const noexcept { return code == errc::ok; }
  explicit operator bool() const noexcept { return ok(); }
  /// The reply through its descriptor (an invalid view when !ok()).
  Reply reply() const { return view_of<Reply>(message.view()); }

  static typed_result from(call_result&& r) {
    typed_result t;
    t.code = r.code;
    t.detail = std::move(r.detail);
    t.message = std::move(r.reply);
    return t;
  }
};

template <class K>
class typed_client {
 public:
  using request = typename K::request;
  using reply = typename K::reply;
  using result = typed_result<reply>;
  static_assert(request::type_id_ != 0, "the kernel's request table needs a type id (file_identifier or ringflow_id)");

  typed_client() = default;
  /// Wraps a client of a ring actor that serves K's types; std::invalid_argument otherwise.
  explicit typed_client(ring_client c) : client_(std::move(c)) {
    if (!client_.valid()) throw std::invalid_argument("typed_client: no ring actor");
    const ring_core& core = client_.core();
    if (core.request_type() != request::type_id_ || core.reply_type() != reply::type_id_)
      throw std::invalid_argument("typed_client<" + std::string(K::name) + ">: ring actor '" + core.name() +
                                  "' serves '" + type_id_text(core.request_type()) + "' -> '" +
                                  type_id_text(core.reply_type()) + "', the kernel '" +
                                  type_id_text(request::type_id_) + "' -> '" + type_id_text(reply::type_id_) + "'");
  }

  bool valid() const noexcept { return client_.valid(); }
  ring_client& untyped() noexcept { return client_; }

  /// Sends a request and waits for its answer.
  template <class Req>
  result call(Req&& req, std::chrono::nanoseconds timeout = {}) {
    fb_msg m;
    if (auto err = make(std::forward<Req>(req), m)) return *err;
    return result::from(client_.call(std::move(m), timeout));
  }
  /// Sends a request; the future holds the answer.
  template <class Req>
  std::future<result> submit(Req&& req, std::chrono::nanoseconds timeout = {}) {
    auto p = std::make_shared<std::promise<result>>();
    std::future<result> f = p->get_future();
    submit(
        std::forward<Req>(req), [p](result&& r) { p->set_value(std::move(r)); }, timeout);
    return f;
  }
  /// Sends a request; `on_done` runs exactly once with the answer (see ring_client::submit).
  template <class Req, class F>
  requires std::invocable<F&, result&&>
  void submit(Req&& req, F on_done, std::chrono::nanoseconds timeout = {}) {
    fb_msg m;
    if (auto err = make(std::forward<Req>(req), m)) {
      on_done(std::move(*err));
      return;
    }
    if (timeout.count() > 0) m.with_timeout(timeout);
    client_.submit(std::move(m),
                   [cb = std::move(on_done)](call_result&& r) mutable { cb(result::from(std::move(r))); });
  }

  /// The request buffer a call would send (for tests and for callers that batch).
  template <class Req>
  static std::optional<result> make(Req&& req, fb_msg& out) {
    using R = std::remove_cvref_t<Req>;
    if constexpr (std::is_same_v<R, fb_msg>) {
      out = std::forward<Req>(req);
    } else if constexpr (std::is_convertible_v<const R&, std::span<const std::uint8_t>>) {
      const std::span<const std::uint8_t> s = req;
      out = fb_msg(s.data(), s.size());
    } else if constexpr (std::is_invocable_v<R&, flatbuffers::FlatBufferBuilder&>) {
      flatbuffers::FlatBufferBuilder b(256);
      using ret = std::invoke_result_t<R&, flatbuffers::FlatBufferBuilder&>;
      if constexpr (std::is_void_v<ret>) {
        req(b);
      } else {
        char ident[5];
        const type_id t = request::type_id_;
        std::memcpy(ident, &t, 4);  // little-endian: the identifier's characters in order
        ident[4] = 0;
        b.Finish(req(b), ident);
      }
      if (b.GetSize() == 0) return error(errc::invalid_argument, "the builder callback did not finish a buffer");
      out = fb_msg(b.GetBufferPointer(), b.GetSize());
    } else if constexpr (std::is_invocable_v<R&, fb::builder&>) {
      for (std::uint32_t cap = 256;; cap *= 2) {
        std::vector<std::uint8_t> buf(cap);
        fb::builder w(buf.data(), cap);
        request::begin_(w);
        req(w);
        if (const std::uint32_t n = w.finish()) {
          buf.resize(n);
          out = fb_msg(std::move(buf));
          break;
        }
        if (cap >= (16u << 20))
          return error(errc::invalid_argument, std::string("the request does not build as ") + request::name_ +
                                                   " within 16 MiB (a field added twice or out of range?)");
      }
    } else {
      static_assert(sizeof(R) == 0,
                    "typed_client: pass bytes, an fb_msg, a callable taking flatbuffers::FlatBufferBuilder&, or a "
                    "callable taking ringflow::fb::builder&");
    }
    if (out.type() != request::type_id_)
      return error(errc::wrong_type, std::string("kernel '") + K::name + "' takes " + request::name_ + " ('" +
                                         type_id_text(request::type_id_) + "'), the request is '" +
                                         type_id_text(out.type()) + "'");
    return std::nullopt;
  }

 private:
  static std::optional<result> error(errc e, std::string detail) {
    result r;
    r.code = e;
    r.detail = std::move(detail);
    return r;
  }
  ring_client client_;
};

}  // namespace ringflow

// ringflow/kernel.hpp — the kernel-author API: what a ring kernel is and how one request is served.
//
// A ring kernel is a type with
//     using request = <descriptor>;   // ringflow/messages.hpp-style: ::id, ::num_fields, ::inline_max
//     using reply   = <descriptor>;
//     static constexpr const char* name = "saxpy";
//     RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out);
// and optionally
//     RINGFLOW_HD static std::uint32_t reply_capacity(const ringflow::msg_view& in);
// (bytes the reply may need; default: the ring's inline slot room). The same handler is compiled
// by every backend (CPU thread loop, CUDA and HIP persistent kernels).
//
// A *stateful* kernel owns fixed-size state that its handler reads and changes:
//     using state = S;                                   // trivially copyable, fixed size
//     RINGFLOW_HD static void init(S& s);                // a fresh incarnation's state
//     RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out, S& s);
// The backend keeps one S per incarnation and passes it to serve_one(). Two reserved request
// types reach the state itself, in order with the kernel's requests (the ring actor sends them):
// state_snapshot_type (reply: the state's bytes then their state_checksum(), 8 bytes little-
// endian, typed state_snapshot_type) and state_restore_type (payload: the same — or none for
// init(); a wrong size or checksum is malformed and changes nothing; reply: empty, typed
// state_restore_type). A stateless kernel answers both wrong_type. The handler must be
// deterministic: the same requests from the same state give the same state and replies.
//
// Contract of serve_one(): takes the next request from a ring, checks its type against the
// kernel's declared request type, runs the handler, and publishes exactly one reply (the handler's
// reply, or an ErrorReply with the status and a detail) into the response ring, carrying the
// request's correlation id and trace context. A handler error becomes an error reply for that
// request; the kernel keeps serving. If the response ring is full, nothing is consumed (the
// request is served later): no message is dropped, nothing blocks inside serve_one().
// Handlers must be deterministic per message: after a fault a request may be replayed and served
// twice; the host deduplicates replies by correlation id.
//
// Thread-safety: serve_one() runs on the ring's consumer thread (which is also the response
// ring's producer).
#pragma once

#include <concepts>
#include <cstdint>
#include <type_traits>

#include "ringflow/fb_writer.hpp"
#include "ringflow/messages.hpp"
#include "ringflow/ring.hpp"

namespace ringflow {

/// Per-request outcome, carried in slot_header::status and ErrorReply::code.
enum class [[nodiscard]] status : std::uint16_t{
    ok = 0,
    invalid_argument = 1,   // the handler rejected the request's content
    malformed = 2,          // the request is not readable as the declared type
    wrong_type = 3,         // request type differs from the kernel's declared request type
    reply_too_large = 4,    // the reply did not fit its capacity / the ring's arena
    handler_fault = 5,      // the handler threw (CPU) or failed internally
    deadline_exceeded = 6,  // the request's deadline passed before it was served
    stopped = 7,            // the kernel stopped before serving the request
    oversize = 8,           // the request is larger than the ring can carry
    unavailable = 9,        // no kernel incarnation can serve the request now
    internal = 10,
    overloaded = 11,  // no room now (ring full / in-flight limit): back off and retry
};

RINGFLOW_HD constexpr const char* to_string(status s) {
  switch (s) {
    case status::ok: return "ok";
    case status::invalid_argument: return "invalid_argument";
    case status::malformed: return "malformed";
    case status::wrong_type: return "wrong_type";
    case status::reply_too_large: return "reply_too_large";
    case status::handler_fault: return "handler_fault";
    case status::deadline_exceeded: return "deadline_exceeded";
    case status::stopped: return "stopped";
    case status::oversize: return "oversize";
    case status::unavailable: return "unavailable";
    case status::internal: return "internal";
    case status::overloaded: return "overloaded";
  }
  return "unknown";
}

/// The request as a handler sees it.
struct msg_view {
  type_id type = 0;
  std::uint64_t correlation_id = 0;
  std::uint64_t deadline_ns = 0;
  const std::uint8_t* trace_id = nullptr;  // 16 bytes
  const std::uint8_t* span_id = nullptr;   // 8 bytes
  fb::bytes_view payload;

  RINGFLOW_HD fb::table_view root() const { return fb::root(payload); }
  /// Typed view through a descriptor (e.g. in.as<msg::SaxpyRequest>().x()).
  template <class Descriptor>
  RINGFLOW_HD Descriptor as() const {
    return Descriptor{root()};
  }
};

/// Where a handler writes its reply: a fixed buffer in the response ring (zero copy).
class reply_writer {
 public:
  RINGFLOW_HD reply_writer(std::uint8_t* buf, std::uint32_t capacity) : buf_(buf), cap_(capacity) {}

  /// Starts the reply as the root table of Descriptor (identifier, field count, inline room).
  /// Add fields to the returned builder, then `return out.finish(b);`.
  template <class Descriptor>
  RINGFLOW_HD fb::builder table() {
    fb::builder b(buf_, cap_);
    b.begin(Descriptor::type_id_, Descriptor::num_fields_, Descriptor::inline_max_);
    type_ = Descriptor::type_id_;
    table_name_ = Descriptor::name_;
    return b;
  }
  /// Completes a table reply: ok; reply_too_large if the builder ran out of room; internal when
  /// the descriptor's inline_max_ is too small (the detail names the descriptor and the bytes its
  /// fields needed) or a field was misused (id out of range, added twice).
  RINGFLOW_HD status finish(fb::builder& b) {
    len_ = b.finish();
    if (len_) return status::ok;
    switch (b.error()) {
      case fb::build_error::inline_full: {
        detail_text t(detail_buf_);
        t.add(table_name_ ? table_name_ : "reply").add(": its inline fields need ").add(b.inline_demand());
        t.add(" bytes, the descriptor reserves ").add(b.inline_reserved()).add(" (inline_max_)");
        return fail(status::internal, detail_buf_);
      }
      case fb::build_error::bad_field: {
        detail_text t(detail_buf_);
        t.add(table_name_ ? table_name_ : "reply").add(": a field id out of range or a field added twice");
        return fail(status::internal, detail_buf_);
      }
      default: return fail(status::reply_too_large, "reply does not fit its capacity");
    }
  }
  /// A reply copied verbatim (e.g. echo): `n` bytes of type `t`.
  RINGFLOW_HD status copy(type_id t, const std::uint8_t* src, std::uint32_t n) {
    if (n > cap_) return fail(status::reply_too_large, "reply does not fit its capacity");
    for (std::uint32_t i = 0; i < n; ++i) buf_[i] = src[i];
    type_ = t;
    len_ = n;
    return status::ok;
  }
  /// Appends `n` bytes to a copy()'d reply.
  RINGFLOW_HD status append(const std::uint8_t* src, std::uint32_t n) {
    if (n > cap_ - len_) return fail(status::reply_too_large, "reply does not fit its capacity");
    for (std::uint32_t i = 0; i < n; ++i) buf_[len_ + i] = src[i];
    len_ += n;
    return status::ok;
  }
  /// Records why the request failed (a string that outlives the handler: a literal) and returns `s`.
  RINGFLOW_HD status fail(status s, const char* detail) {
    detail_ = detail;
    return s;
  }

  RINGFLOW_HD std::uint32_t capacity() const { return cap_; }
  RINGFLOW_HD std::uint32_t size() const { return len_; }
  RINGFLOW_HD type_id type() const { return type_; }
  RINGFLOW_HD const char* detail() const { return detail_; }
  RINGFLOW_HD std::uint8_t* data() { return buf_; }

 private:
  // A bounded, NUL-terminated text builder that runs on devices too (no printf).
  struct detail_text {
    char* out;
    std::uint32_t n = 0;
    static constexpr std::uint32_t cap = 95;
    RINGFLOW_HD explicit detail_text(char* o) : out(o) { out[0] = 0; }
    RINGFLOW_HD detail_text& add(const char* s) {
      while (s && *s && n < cap) out[n++] = *s++;
      out[n] = 0;
      return *this;
    }
    RINGFLOW_HD detail_text& add(std::uint32_t v) {
      char d[10];
      std::uint32_t k = 0;
      do d[k++] = static_cast<char>('0' + v % 10), v /= 10;
      while (v && k < 10);
      while (k && n < cap) out[n++] = d[--k];
      out[n] = 0;
      return *this;
    }
  };

  std::uint8_t* buf_;
  std::uint32_t cap_;
  std::uint32_t len_ = 0;
  type_id type_ = 0;
  const char* detail_ = nullptr;
  const char* table_name_ = nullptr;
  char detail_buf_[96];  // written only by finish() before detail_ points at it
};

/// A kernel with state (see the header): `state`, init(state&), handle(in, out, state&).
template <class K>
concept stateful_kernel = requires {
  typename K::state;
}
&&std::is_trivially_copyable_v<typename K::state>&& requires(const msg_view& in, reply_writer& out,
                                                             typename K::state& s) {
  {K::init(s)};
  { K::handle(in, out, s) } -> std::same_as<status>;
};

template <class K>
concept ring_kernel = K::request::type_id_ != 0 && requires {
  { K::request::type_id_ } -> std::convertible_to<type_id>;
  { K::reply::type_id_ } -> std::convertible_to<type_id>;
  { K::name } -> std::convertible_to<const char*>;
}
&&(stateful_kernel<K> || requires(const msg_view& in, reply_writer& out) {
  { K::handle(in, out) } -> std::same_as<status>;
});

/// Reserved request types of a stateful kernel's state (see the header). "RF" identifiers are
/// ringflow's own (RFER: ErrorReply).
inline constexpr type_id state_snapshot_type = type_id_of("RFSS");
inline constexpr type_id state_restore_type = type_id_of("RFSR");

/// Bytes of K's state (0: stateless).
template <class K>
inline constexpr std::uint32_t state_bytes_of = 0;
template <stateful_kernel K>
inline constexpr std::uint32_t state_bytes_of<K> = static_cast<std::uint32_t>(sizeof(typename K::state));
/// Bytes after the state in snapshots and restores: its checksum.
inline constexpr std::uint32_t state_checksum_bytes = 8;

/// FNV-1a (64-bit) of `n` bytes: the checksum a snapshot and a restore carry after the state.
RINGFLOW_HD inline std::uint64_t state_checksum(const std::uint8_t* p, std::uint32_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::uint32_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
/// True when `n` bytes are a state of n - 8 bytes followed by its checksum.
RINGFLOW_HD inline bool state_intact(const std::uint8_t* p, std::uint32_t n) {
  if (n < state_checksum_bytes) return false;
  const std::uint64_t h = state_checksum(p, n - state_checksum_bytes);
  for (std::uint32_t i = 0; i < state_checksum_bytes; ++i)
    if (p[n - state_checksum_bytes + i] != static_cast<std::uint8_t>(h >> (8 * i))) return false;
  return true;
}

template <class K>
concept has_reply_capacity = requires(const msg_view& in) {
  { K::reply_capacity(in) } -> std::convertible_to<std::uint32_t>;
};

/// Bytes an ErrorReply needs at most (table + a detail of up to 95 characters).
inline constexpr std::uint32_t error_reply_capacity = 192;

/// Writes an ErrorReply {code, detail} into `buf`; returns its size (0 only if even the code
/// alone does not fit). A detail that does not fit is shortened (ultimately dropped).
RINGFLOW_HD inline std::uint32_t write_error_reply(std::uint8_t* buf, std::uint32_t cap, status code,
                                                   const char* detail) {
  std::uint32_t n = 0;
  while (detail && detail[n] && n < 95) ++n;
  for (;;) {
    fb::builder b(buf, cap);
    b.begin(msg::ErrorReply::type_id_, msg::ErrorReply::num_fields_, msg::ErrorReply::inline_max_);
    b.add<std::uint16_t>(msg::ErrorReply::fields_::code, static_cast<std::uint16_t>(code));
    if (n) b.add_string(msg::ErrorReply::fields_::detail, detail, n);
    const std::uint32_t len = b.finish();
    if (len || n == 0) return len;
    n = n > 16 ? n / 2 : 0;
  }
}

enum class [[nodiscard]] serve_result : std::uint8_t{
    idle,     // no request waiting
    served,   // one request consumed, one reply published
    blocked,  // a request waits but the response ring is full: retry after the host drains it
};

/// Counts of what serve_one() did, for the control block.
struct serve_tally {
  std::uint64_t served = 0;
  std::uint64_t handler_errors = 0;
  std::uint64_t rejected = 0;
};

/// Scratch a device backend may give serve_one() so that the kernel touches the rings (host
/// memory across PCIe) in bursts instead of byte by byte: the request's whole slot is copied into
/// `request` in 16-byte chunks (one burst of independent loads, not one PCIe round trip per field
/// the handler reads) — and an arena payload after it, when `request_bytes` holds slot and
/// payload — and the handler writes its reply into `reply`, copied into the response ring in
/// 16-byte chunks (posted writes). Both buffers 16-byte aligned, sizes multiples of 16;
/// `request_bytes` >= the request ring's slot_size to be used (otherwise the request is read in
/// place); a reply claim larger than `reply_bytes` is written in place.
struct serve_staging {
  std::uint8_t* request = nullptr;
  std::uint32_t request_bytes = 0;
  std::uint8_t* reply = nullptr;
  std::uint32_t reply_bytes = 0;
};

/// Copies n bytes rounded up to 16 in 16-byte chunks (both sides 16-byte aligned, both with room
/// for the rounded size). Each chunk is an independent 16-byte load + store.
RINGFLOW_HD inline void copy_chunks16(void* dst, const void* src, std::uint32_t n) {
  struct alignas(16) chunk {
    std::uint32_t w[4];
  };
  auto* d = static_cast<chunk*>(dst);
  const auto* s = static_cast<const chunk*>(src);
  const std::uint32_t chunks = (n + 15) / 16;
  for (std::uint32_t i = 0; i < chunks; ++i) d[i] = s[i];
}

/// What serve_one() (and a lane of a batch, persistent.hpp) decided about a request before any
/// reply is claimed: the handler's view, an early rejection, the reply bytes to claim.
struct request_plan {
  enum : std::uint8_t { handler = 0, snapshot = 1, restore = 2 };
  msg_view in;
  status early = status::ok;
  const char* early_detail = nullptr;
  std::uint32_t want = 0;
  std::uint8_t action = handler;  // a stateful kernel's state requests: snapshot / restore
};

/// A stateful kernel's snapshot / restore request (kernel.hpp's header): the action and the
/// checks (the state fits the response ring; a restore carries the state's size or nothing).
template <class K>
RINGFLOW_HD void plan_state_request(request_plan& p, std::uint32_t max_reply) {
  if constexpr (stateful_kernel<K>) {
    constexpr std::uint32_t bytes = state_bytes_of<K> + state_checksum_bytes;
    if (p.in.type == state_snapshot_type) {
      p.action = request_plan::snapshot;
      p.want = bytes;
      if (bytes > max_reply) {
        p.early = status::reply_too_large;
        p.early_detail = "the kernel's state does not fit the response ring (give it an arena)";
      }
    } else {
      p.action = request_plan::restore;
      p.want = 0;
      if (p.in.payload.size != 0 && p.in.payload.size != bytes) {
        p.early = status::malformed;
        p.early_detail = "state restore: payload size differs from the kernel's state size";
      }
    }
  } else {
    (void)p;
    (void)max_reply;
  }
}

/// Fills `p.in` from the request header `req` and its payload and decides the early checks (type,
/// deadline, reply capacity) and the claim size. `payload_ok` false: the header's payload lies
/// outside its ring (answered malformed; the payload is never read).
template <class K>
RINGFLOW_HD void plan_request(request_plan& p, const slot_header* req, fb::bytes_view payload, bool payload_ok,
                              const ring_producer& replies, std::uint64_t now_ns) {
  msg_view& in = p.in;
  in.type = req->type_id;
  in.correlation_id = req->correlation_id;
  in.deadline_ns = req->deadline_ns;
  in.trace_id = req->trace_id;
  in.span_id = req->span_id;
  in.payload = payload;
  p.early = status::ok;
  p.early_detail = nullptr;
  p.action = request_plan::handler;
  // An early rejection claims room for a full ErrorReply, but never more than the response ring
  // can carry (tiny slots without an arena get a shortened detail).
  const std::uint32_t max_reply = replies.max_payload();
  const std::uint32_t error_room = error_reply_capacity < max_reply ? error_reply_capacity : max_reply;
  p.want = replies.inline_capacity();
  if (!payload_ok) {
    p.early = status::malformed;
    p.early_detail = "request payload lies outside its ring";
  } else if (stateful_kernel<K> && (in.type == state_snapshot_type || in.type == state_restore_type)) {
    plan_state_request<K>(p, max_reply);
  } else if (in.type != K::request::type_id_) {
    p.early = status::wrong_type;
    p.early_detail = "request type differs from the kernel's request type";
  } else if (now_ns != 0 && in.deadline_ns != 0 && now_ns > in.deadline_ns) {
    p.early = status::deadline_exceeded;
    p.early_detail = "deadline passed before the kernel served the request";
  } else if constexpr (has_reply_capacity<K>) {
    p.want = K::reply_capacity(in);
    if (p.want > max_reply) {
      p.early = status::reply_too_large;
      p.early_detail = "reply would exceed the response ring's arena";
    }
  }
  // Replies are claimed at the size the kernel asked for (inline by default). Only an early
  // error claims error room; a handler that fails in a small claim gets a shortened detail.
  if (p.early != status::ok) p.want = error_room;
}

/// Runs K's handler on a planned request — for a stateful kernel, on its state `state` (a
/// K::state), or the state request itself (snapshot, restore).
template <class K>
RINGFLOW_HD status run_handler(const request_plan& p, reply_writer& out, void* state) {
  if constexpr (stateful_kernel<K>) {
    using S = typename K::state;
    if (!state) return out.fail(status::internal, "stateful kernel served without its state (backend keeps none)");
    S& s = *static_cast<S*>(state);
    if (p.action == request_plan::snapshot) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(&s);
      const std::uint64_t h = state_checksum(b, sizeof(S));
      std::uint8_t tail[state_checksum_bytes];
      for (std::uint32_t i = 0; i < state_checksum_bytes; ++i) tail[i] = static_cast<std::uint8_t>(h >> (8 * i));
      const status st = out.copy(state_snapshot_type, b, sizeof(S));
      return st == status::ok ? out.append(tail, state_checksum_bytes) : st;
    }
    if (p.action == request_plan::restore) {
      if (p.in.payload.size == 0) {
        K::init(s);
      } else if (!state_intact(p.in.payload.data, p.in.payload.size)) {
        return out.fail(status::malformed, "state restore: the checksum does not match the state");
      } else {
        auto* d = reinterpret_cast<std::uint8_t*>(&s);
        for (std::uint32_t i = 0; i < sizeof(S); ++i) d[i] = p.in.payload.data[i];
      }
      return out.copy(state_restore_type, nullptr, 0);
    }
    return K::handle(p.in, out, s);
  } else {
    (void)state;
    return K::handle(p.in, out);
  }
}

/// Runs the handler for a planned request into `claim` (or writes the early error) and composes
/// the reply header in `hdr` (every field but seq and correlation_id); returns the payload length.
/// `staged` (a device's reply staging, 16-byte chunks) is where the handler writes when not null.
/// `state`: a stateful kernel's state (run_handler).
template <class K>
RINGFLOW_HD std::uint32_t answer_request(const request_plan& p, const ring_claim& claim, std::uint8_t* staged,
                                         serve_tally& tally, slot_header& hdr, void* state = nullptr) {
  status st = p.early;
  const char* detail = p.early_detail;
  std::uint32_t len = 0;
  type_id reply_type = 0;
  // The writer outlives the handler: its detail may point into the writer's own text buffer.
  reply_writer out(staged ? staged : claim.payload, claim.capacity);
  if (st == status::ok) {
    st = run_handler<K>(p, out, state);
    if (st == status::ok) {
      len = out.size();
      reply_type = out.type();
      if (staged) copy_chunks16(claim.payload, staged, len);
    } else {
      detail = out.detail() ? out.detail() : to_string(st);
    }
  }
  hdr = slot_header{};
  hdr.deadline_ns = p.in.deadline_ns;
  for (int i = 0; i < 16; ++i) hdr.trace_id[i] = p.in.trace_id[i];
  for (int i = 0; i < 8; ++i) hdr.span_id[i] = p.in.span_id[i];
  hdr.status = static_cast<std::uint16_t>(st);
  hdr.flags = claim.flags;
  hdr.arena_offset = claim.arena_offset;
  if (st != status::ok) {
    len = write_error_reply(claim.payload, claim.capacity, st, detail);
    reply_type = msg::ErrorReply::type_id_;
    hdr.flags = static_cast<std::uint16_t>(hdr.flags | slot_flags::error_reply);
    if (p.early != status::ok) ++tally.rejected;
    else ++tally.handler_errors;
  }
  hdr.type_id = reply_type;
  hdr.payload_len = len;
  ++tally.served;
  return len;
}

/// Serves the next request of `requests` with kernel K, replying into `replies`.
/// `now_ns`: the current time on the clock of slot_header::deadline_ns, or 0 to skip deadline
/// checks (device backends, whose clocks differ from the host's). `staging`: see serve_staging
/// (nullptr: read and write the rings in place, as the CPU backend does). `state`: a stateful
/// kernel's state (a K::state the backend keeps per incarnation); ignored for stateless kernels.
template <class K>
RINGFLOW_HD serve_result serve_one(ring_consumer& requests, ring_producer& replies, std::uint64_t now_ns,
                                   serve_tally& tally, const serve_staging* staging = nullptr, void* state = nullptr) {
  const slot_header* req = requests.try_peek();
  if (!req) return serve_result::idle;
  // No room for any reply: leave the request where it is (and touch nothing more of it).
  if (replies.free_slots() == 0) return serve_result::blocked;

  const ring_region& rq = requests.region();
  const std::uint32_t slot_size = rq.config().slot_size;
  fb::bytes_view payload;
  // A header whose payload would lie outside its ring (a stray write, a faulty peer) is answered
  // as malformed; the payload is never read.
  bool payload_ok = true;
  // Protocol v2: try_peek() already decoded the slot into the consumer's image (local memory).
  const bool decoded = rq.config().is_v2();
  if (decoded || (staging && staging->request && staging->request_bytes >= slot_size)) {
    if (!decoded) {
      copy_chunks16(staging->request, req, slot_size);
      req = reinterpret_cast<const slot_header*>(staging->request);
    }
    payload_ok = rq.payload_in_bounds(*req);
    if (payload_ok && (req->flags & slot_flags::arena)) {
      payload = requests.payload_view(req);
      // Arena offsets are 64-byte aligned; a payload that fits after the slot is staged too.
      if (staging && staging->request &&
          static_cast<std::uint64_t>(slot_size) + payload.size + 15 <= staging->request_bytes) {
        copy_chunks16(staging->request + slot_size, payload.data, payload.size);
        payload = {staging->request + slot_size, payload.size};
      }
    } else if (payload_ok) {
      payload = {reinterpret_cast<const std::uint8_t*>(req) + sizeof(slot_header), req->payload_len};
    }
  } else {
    payload_ok = rq.payload_in_bounds(*req);
    if (payload_ok) payload = requests.payload_view(req);
  }

  request_plan plan;
  plan_request<K>(plan, req, payload, payload_ok, replies, now_ns);

  ring_claim claim;
  // Only `full` can occur here (want <= max_payload): the host must drain replies first.
  if (replies.try_claim(plan.want, claim) != ring_status::ok) return serve_result::blocked;

  // A v2 inline claim is local memory already (the producer's claim buffer): written in place.
  const bool staged = staging && staging->reply && !claim.local && claim.capacity <= staging->reply_bytes;
  slot_header hdr;
  const std::uint32_t len = answer_request<K>(plan, claim, staged ? staging->reply : nullptr, tally, hdr, state);
  // The reply header is written in three 16-byte chunks after the correlation id (bytes 16..63;
  // `seq`, bytes 0..7, is commit()'s release): a device writes it across PCIe as a few wide
  // stores instead of ~30 narrow ones.
  slot_header* h = claim.header;
  h->correlation_id = plan.in.correlation_id;
  copy_chunks16(reinterpret_cast<std::uint8_t*>(h) + 16, reinterpret_cast<const std::uint8_t*>(&hdr) + 16,
                sizeof(slot_header) - 16);
  replies.commit(claim, len);
  requests.release();
  return serve_result::served;
}

}  // namespace ringflow

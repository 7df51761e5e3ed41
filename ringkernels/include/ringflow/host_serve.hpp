// ringflow/host_serve.hpp — serving a ring kernel on a host thread: serve_one() (kernel.hpp) with a
// handler that may throw. Host code only (exceptions); the CPU backend and kernel plugins both use
// it, so a plugin's kernels behave exactly as compiled-in ones.
//
// Contract
//   * host_serve_fn is the one signature a host thread calls to serve one request of a ring:
//     serve_one() over K with a guard that turns an exception from K::handle into an error reply
//     (status::handler_fault carrying the exception's message, cut to the control block's detail
//     size) — the kernel keeps serving.
//   * host_serve<K> is a plain function: its address can be kept (the CPU backend's channels) or
//     cross a plugin boundary (ringflow/plugin.hpp) — each binary instantiates its own copy, with
//     its own thread-local detail buffer; nothing is shared.
// Thread-safety: host_serve runs on the ring's consumer thread, as serve_one().
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/kernel.hpp"

namespace ringflow {

using host_serve_fn = serve_result (*)(ring_consumer&, ring_producer&, std::uint64_t now_ns, serve_tally&);
/// The same for a stateful kernel: `state` is the incarnation's K::state (kernel.hpp).
using host_serve_state_fn = serve_result (*)(ring_consumer&, ring_producer&, std::uint64_t now_ns, serve_tally&,
                                             void* state);

namespace detail {
/// Copies an exception message into thread-local storage that outlives the catch block.
inline const char* remember_detail(const char* what) noexcept {
  thread_local char buf[control_block::detail_bytes];
  std::strncpy(buf, what ? what : "", sizeof buf - 1);
  buf[sizeof buf - 1] = 0;
  return buf;
}

// Runs f(), turning a thrown exception into a handler_fault error reply.
template <class F>
status guard(reply_writer& out, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return out.fail(status::handler_fault, remember_detail(e.what()));
  } catch (...) {
    return out.fail(status::handler_fault, "handler threw a non-standard exception");
  }
}

// K with a handler that turns a thrown exception into a handler_fault error reply.
template <class K>
struct guarded_base {
  using request = typename K::request;
  using reply = typename K::reply;
  static constexpr const char* name = K::name;
  static std::uint32_t reply_capacity(const msg_view& in) requires has_reply_capacity<K> {
    return K::reply_capacity(in);
  }
};
template <class K>
struct guarded : guarded_base<K> {
  static status handle(const msg_view& in, reply_writer& out) {
    return guard(out, [&] { return K::handle(in, out); });
  }
};
template <stateful_kernel K>
struct guarded<K> : guarded_base<K> {
  using state = typename K::state;
  static void init(state& s) { K::init(s); }
  static status handle(const msg_view& in, reply_writer& out, state& s) {
    return guard(out, [&] { return K::handle(in, out, s); });
  }
};
}  // namespace detail

/// Serves one request of kernel K on a host thread (see the contract).
template <ring_kernel K>
serve_result host_serve(ring_consumer& rq, ring_producer& rp, std::uint64_t now_ns, serve_tally& t) {
  return serve_one<detail::guarded<K>>(rq, rp, now_ns, t);
}
/// Serves one request of a stateful kernel K on its state (a K::state).
template <stateful_kernel K>
serve_result host_serve_state(ring_consumer& rq, ring_producer& rp, std::uint64_t now_ns, serve_tally& t, void* state) {
  return serve_one<detail::guarded<K>>(rq, rp, now_ns, t, nullptr, state);
}
/// Initializes a K::state at `state` (K::init).
template <stateful_kernel K>
void host_init_state(void* state) {
  K::init(*static_cast<typename K::state*>(state));
}
/// Applies one request (`size` bytes of K's request type) to a K::state at `state` on the host, as
/// a CPU incarnation serves it: a throw is a handler fault (whatever the handler changed stays);
/// the reply is not kept. The ring actor's state.verify and the checkpointer's journal replay use it.
template <stateful_kernel K>
void host_apply_state(void* state, const std::uint8_t* request, std::uint32_t size) {
  thread_local std::vector<std::uint8_t> scratch(std::size_t{1} << 20);
  static constexpr std::uint8_t zero_ids[16] = {};
  request_plan p;
  p.in.type = K::request::type_id_;
  p.in.trace_id = zero_ids;
  p.in.span_id = zero_ids;
  p.in.payload = fb::bytes_view{request, size};
  reply_writer out(scratch.data(), static_cast<std::uint32_t>(scratch.size()));
  (void)detail::guard(out, [&] { return run_handler<K>(p, out, state); });
}

}  // namespace ringflow

// ringflow/persistent.hpp — one persistent kernel hosting many logical ring actors (the GPU
// backends' device loop), host and device portable.
//
// Contract
//   * A persistent kernel serves a *ring table*: `max_rings` entries (persistent_ring) in memory
//     both sides reach (pinned mapped host memory on a GPU). Each entry binds one logical ring
//     actor: a request ring, a response ring, the kernel of the kernel table that serves it, and
//     the ring's own control_block (state, heartbeat, progress, errors of that ring actor).
//     The kernel itself has one more control_block (the whole kernel: stop flag, running, beat).
//   * Workers: the kernel runs `workers` independent workers (one per warp on a GPU: lane 0 serves,
//     the other lanes only keep the warp resident); worker w serves entries w, w + workers, ...
//     Each pass it polls the next slot sequence word of each of its running rings (one read across
//     PCIe says whether a message is there), serves up to the entry's max_batch requests per ring,
//     and backs off exponentially (ringflow::backoff: __nanosleep / s_sleep) when a pass found no
//     work — up to backoff_max_ns, or unbound_backoff_max_ns while it has no running ring. Every `poll_period` passes
//     it reads each of its entries' control word (binding and stop requests) and publishes each running ring's
//     heartbeat and counters (stores only: no read-modify-write crosses PCIe, no read of host memory on the hot path
//     except seq words).
//   * Entry control word `ctl` (host writes, kernel reads): generation << 2 | abandon << 1 | stop.
//     Bind: the host fills the entry and the ring's control block (reset: state `starting`), then
//     store-releases ctl = generation << 2 with a new generation. The worker that sees a new
//     generation (acquire) validates the rings (magic, geometry equal to the entry's pinned copy,
//     kernel index inside the table) — `faulted` / bad_ring if not — builds its endpoints (in the
//     worker's private memory: device memory on a GPU) and sets `running`.
//     Stop (stop bit): the worker sets `draining`, serves what is in the request ring (at most one
//     ring capacity: a producer that keeps pushing cannot keep it alive), publishes, and sets
//     `stopped` (release: every reply is visible first). A drain blocked on a full response ring
//     waits (polling) until the host reads replies; the abandon bit ends it at once with
//     `faulted` / reply_stuck. After `stopped` / `faulted` the entry is idle until the next
//     generation; the host may then reuse the entry and its rings.
//     Kernel stop (the kernel control block's stop flag): every running ring drains as above, and
//     each worker returns once all of its entries are idle; the host sees the kernel end (stream
//     query) and sets the kernel's state. A worker never sets the kernel `stopped` itself.
//   * Faults the device cannot report itself (a trap, an illegal address: the whole grid dies) are
//     the host's to record: it marks every bound ring's control block faulted (sticky flag when the
//     context is poisoned) once the kernel is gone — the single-writer rule holds because nothing
//     runs on the device any more.
//   * Deadlines are not checked in the kernel (device clocks differ from the host's steady clock);
//     the ring actor's deadlines and timeouts still apply on the host.
//   * Kernel table: kernel_table<K1, K2, ...> dispatches by index with serve_one<K> (type check,
//     handler, exactly one reply per request). Its order is the entries' kernel_index.
//   * Kernel state (stateful kernels, kernel.hpp): entry i's state is `states + i * state_stride`
//     (persistent_args; worker-private memory: device memory on a GPU, never read by the host).
//     Each bind init()s it — a new generation is a new incarnation, whose ring actor then restores
//     its snapshot through the rings (state_restore_type) before any request. A stateful kernel's
//     entry without state room (no `states`, or a stride below its state) faults at bind
//     (bad_ring). The handler runs on one request of an entry at a time (the serial path).
//
//   * Scout (optional: persistent_args::summary, set by a device whose rings are protocol v2): the
//     host keeps a few wake-up words in mapped memory — word 0, the control generation, bumped
//     after every ctl write and the kernel stop request; word 1 + g, the push count of entry
//     group g (entries g << group_shift ...), bumped by the incarnation's notify() after it
//     published requests. Worker 0, the scout, reads those words each pass (one 128-byte line
//     for up to 960 groups) and copies what moved to device memory (scout_marks). Workers then
//     read host memory only for what the marks say: a ring's slots while its group moved within
//     linger_passes (or it served within them); ctl words and the kernel stop flag on the pass
//     after the control generation moved. Every sweep_period passes a sweep looks at the first
//     unit (v1: the seq word) of every cold running ring's next slot, and at the kernel's stop
//     flag: a notify() (or a control bump) that was never made costs latency, never liveness. Heartbeats and counters
//     are still published every poll_period passes (writes). Without a summary, every running ring is polled every pass
//     (as above).
//   * Host reads (persistent_args::host_reads, the emulator's accounting; null on a GPU): per
//     worker, the 128-byte host-memory lines it read and the passes it made.
//
// Thread-safety: each entry has one host writer (the backend's controlling thread) and one device
// worker; each ring has one producer and one consumer as ring.hpp describes.
#pragma once

#include <cstdint>

#include "ringflow/control_block.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/ring.hpp"

namespace ringflow {

/// Bits of persistent_ring::ctl (below the generation).
namespace persistent_ctl {
inline constexpr std::uint64_t stop = 1u << 0;
inline constexpr std::uint64_t abandon = 1u << 1;
inline constexpr unsigned generation_shift = 2;
RINGFLOW_HD constexpr std::uint64_t generation(std::uint64_t ctl) { return ctl >> generation_shift; }
}  // namespace persistent_ctl

/// One ring table entry (host writes, kernel reads); 128-byte aligned so entries share no line.
struct persistent_ring {
  alignas(128) std::uint64_t ctl;  // see persistent_ctl; written last (release) when binding
  std::uint32_t kernel_index;      // index into the kernel table
  std::uint32_t max_batch;         // requests served per pass before the worker moves on
  byte* requests;                  // device addresses of the two ring regions
  byte* replies;
  control_block* control;        // device address of the ring's control block
  std::uint64_t* reply_scratch;  // the reply producer's arena bookkeeping (device memory) or null
  ring_config request_config;    // pinned geometry: the worker never reads it from the rings
  ring_config reply_config;
};
static_assert(sizeof(persistent_ring) == 128);

/// A worker's private state for one entry (device memory on a GPU; never read by the host).
struct persistent_endpoint {
  enum : std::uint32_t { idle = 0, running = 1, draining = 2 };
  std::uint64_t seen_generation;
  std::uint32_t phase;
  std::uint32_t kernel_index;
  std::uint32_t max_batch;
  std::uint32_t drain_budget;  // requests left to serve while draining
  control_block* control;
  ring_consumer requests;
  ring_producer replies;
  // Published to the ring's control block with plain stores every poll period.
  std::uint64_t heartbeat;
  std::uint64_t last_progress;
  std::uint64_t processed;
  std::uint64_t handler_errors;
  std::uint64_t rejected;
  // Scout mode: the group mark last seen and the pass until which the ring counts as hot.
  std::uint64_t seen_mark;
  std::uint64_t hot_until;
  // Protocol v2 batches: requests the last batch served (the next one polls up to twice as many).
  std::uint32_t batch_hint;
  // A stateful kernel's state (persistent_args::states' slice of this entry), else null.
  void* state;
};

/// Words of the scout's summary for `max_rings` entries in groups of 1 << group_shift.
RINGFLOW_HD inline std::uint32_t summary_words(std::uint32_t max_rings, std::uint32_t group_shift) {
  return 1 + ((max_rings + (1u << group_shift) - 1) >> group_shift);
}
/// The smallest group shift (>= 6) whose summary fits one 128-byte line (16 words), if any does
/// for max_rings <= 15 << 16; larger tables take more lines.
RINGFLOW_HD inline std::uint32_t summary_group_shift(std::uint32_t max_rings) {
  std::uint32_t shift = 6;
  while (shift < 16 && summary_words(max_rings, shift) > 16) ++shift;
  return shift;
}

/// Everything a worker needs (passed by value to the kernel launch).
struct persistent_args {
  persistent_ring* rings = nullptr;          // the table (host-mapped on a GPU)
  persistent_endpoint* endpoints = nullptr;  // one per entry (worker-private memory)
  control_block* kernel_control = nullptr;   // the whole kernel's control block
  std::uint8_t* staging = nullptr;           // per worker: staging_bytes for requests + as many for replies
  std::uint32_t staging_bytes = 0;           // multiple of 16; 0 = no staging (rings read in place)
  std::uint32_t max_rings = 0;
  std::uint32_t workers = 1;                     // workers the host sized staging for; others leave at once
  std::uint32_t poll_period = 32;                // passes between control-word checks / heartbeats
  std::uint32_t backoff_max_ns = 2048;           // idle back-off ceiling while the worker has running rings
  std::uint32_t unbound_backoff_max_ns = 65536;  // ... while it has none (it only watches for bindings)
  // Scout (see the contract): null summary = every running ring polled every pass.
  std::uint64_t* summary = nullptr;      // host-written: summary_words(max_rings, group_shift) words
  std::uint64_t* scout_marks = nullptr;  // worker-private (device memory): as many words, zeroed at launch
  std::uint32_t group_shift = 6;
  std::uint32_t linger_passes = 256;    // a ring stays hot this many passes after its group moved / it served
  std::uint32_t sweep_period = 32768;   // passes between full sweeps (power of two)
  std::uint64_t* host_reads = nullptr;  // accounting (emulator): per worker {lines read, passes}
  // Protocol v2 batches: lanes that serve consecutive requests of a ring together (at most
  // max_batch_lanes, and as many decoded slots as staging holds); 0 or 1 = one request at a time.
  std::uint32_t batch_lanes = 32;
  // Stateful kernels' state (see the contract): max_rings slices of state_stride bytes (a multiple
  // of 64, at least the table's max_state_bytes), 64-byte aligned; null when no kernel keeps state.
  std::uint8_t* states = nullptr;
  std::uint32_t state_stride = 0;
};

namespace detail {
template <class K>
inline constexpr std::uint32_t state_align_of = 1;
template <stateful_kernel K>
inline constexpr std::uint32_t state_align_of<K> = static_cast<std::uint32_t>(alignof(typename K::state));
RINGFLOW_HD constexpr std::uint32_t larger(std::uint32_t a, std::uint32_t b) { return a > b ? a : b; }
template <std::uint32_t... V>
RINGFLOW_HD constexpr std::uint32_t max_of() {
  std::uint32_t m = 0;
  ((m = larger(m, V)), ...);
  return m;
}
}  // namespace detail

/// The kernels one persistent kernel can serve, by index.
template <ring_kernel... Ks>
struct kernel_table {
  static constexpr std::uint32_t size = sizeof...(Ks);
  static_assert(size > 0, "a kernel table needs at least one kernel");
  /// The largest state of the table's kernels (0: none keeps state): each entry's state room.
  static constexpr std::uint32_t max_state_bytes = detail::max_of<state_bytes_of<Ks>...>();
  static_assert(detail::max_of<detail::state_align_of<Ks>...>() <= 64,
                "a kernel's state may need at most 64-byte alignment (its state room is 64-byte aligned)");

  /// `state`: the entry's state (persistent_endpoint::state; ignored for stateless kernels).
  RINGFLOW_HD static serve_result serve(std::uint32_t index, ring_consumer& rq, ring_producer& rp, serve_tally& t,
                                        const serve_staging* staging, void* state = nullptr) {
    return serve_at<0, Ks...>(index, rq, rp, t, staging, state);
  }
  /// Bytes of the state of the kernel at `index` (0: stateless), host and device.
  RINGFLOW_HD static std::uint32_t state_bytes(std::uint32_t index) {
    std::uint32_t n = 0;
    visit(index, [&]<class K>() { n = state_bytes_of<K>; });
    return n;
  }
  /// K::init() on `state` for the stateful kernel at `index` (nothing for a stateless one).
  RINGFLOW_HD static void init_state(std::uint32_t index, void* state) {
    visit(index, [&]<class K>() {
      if constexpr (stateful_kernel<K>) K::init(*static_cast<typename K::state*>(state));
    });
  }
  /// Calls f.template operator()<K>() for the kernel at `index` (validated when the ring binds).
  template <class F>
  RINGFLOW_HD static void visit(std::uint32_t index, F&& f) {
    visit_at<0, Ks...>(index, f);
  }
  /// Host-side description (names and message types by index).
  static const char* name(std::uint32_t i) {
    constexpr const char* names[] = {Ks::name...};
    return i < size ? names[i] : nullptr;
  }
  static type_id request_type(std::uint32_t i) {
    constexpr type_id ids[] = {Ks::request::type_id_...};
    return i < size ? ids[i] : 0;
  }
  static type_id reply_type(std::uint32_t i) {
    constexpr type_id ids[] = {Ks::reply::type_id_...};
    return i < size ? ids[i] : 0;
  }

 private:
  template <std::uint32_t I, class K, class... Rest>
  RINGFLOW_HD static serve_result serve_at(std::uint32_t index, ring_consumer& rq, ring_producer& rp, serve_tally& t,
                                           const serve_staging* staging, void* state) {
    if (index == I) return serve_one<K>(rq, rp, 0, t, staging, state);
    if constexpr (sizeof...(Rest) > 0) {
      return serve_at<I + 1, Rest...>(index, rq, rp, t, staging, state);
    } else {
      return serve_result::idle;  // unreachable: the index is validated when the ring binds
    }
  }
  template <std::uint32_t I, class K, class... Rest, class F>
  RINGFLOW_HD static void visit_at(std::uint32_t index, F& f) {
    if (index == I) {
      f.template operator()<K>();
    } else if constexpr (sizeof...(Rest) > 0) {
      visit_at<I + 1, Rest...>(index, f);
    }
  }
};

/// Most lanes a batch has (a warp).
inline constexpr std::uint32_t max_batch_lanes = 32;

/// A batch: up to `n` consecutive requests of the endpoint's ring, lane l taking the l-th; lane
/// l decodes into staging->request + l * image_stride and composes its reply in staging->reply +
/// l * claim_stride. `quit` ends a warp's helper lanes (persistent_kernel.cuh).
struct batch_job {
  persistent_endpoint* endpoint = nullptr;
  serve_staging staging;  // by value: a warp's lanes cannot read lane 0's local memory
  std::uint32_t n = 0;
  std::uint32_t image_stride = 0;
  std::uint32_t claim_stride = 0;
  std::uint32_t quit = 0;
};

/// What a batch did: `served` requests (the ready prefix, lanes 0..served-1) replied to;
/// `next_ready`: the request after them is there but not for a batch (an arena payload or reply,
/// or an error reply larger than the inline room) — the serial path takes it.
struct batch_outcome {
  std::uint32_t served = 0;
  bool next_ready = false;
  std::uint32_t handler_errors = 0;
  std::uint32_t rejected = 0;
};

/// The lanes a worker serves a protocol v2 batch with, one thread taking each lane's part in
/// turn, phase by phase: the host (the emulator runs the very batch code a warp runs) and devices
/// whose waves run in lock step (HIP). A CUDA warp's lanes (persistent_kernel.cuh: warp_lanes)
/// run the same phases at once. Interface of a Lanes type: `width` (lanes a batch may use),
/// local<T> (one T per lane), each(n, f) (f(lane) for lanes < n), ballot(n, pred) (bit l set
/// when lane l < n says true), sync() (every lane's part done), run<Table>(job) (the batch).
struct sequential_lanes {
  std::uint32_t width = 1;
  template <class T>
  struct local {
    T v[max_batch_lanes];
    RINGFLOW_HD T& operator[](std::uint32_t lane) { return v[lane]; }
  };
  template <class F>
  RINGFLOW_HD void each(std::uint32_t n, F&& f) {
    for (std::uint32_t l = 0; l < n; ++l) f(l);
  }
  template <class F>
  RINGFLOW_HD std::uint32_t ballot(std::uint32_t n, F&& pred) {
    std::uint32_t m = 0;
    for (std::uint32_t l = 0; l < n; ++l)
      if (pred(l)) m |= 1u << l;
    return m;
  }
  RINGFLOW_HD void sync() {}
  template <class Table>
  RINGFLOW_HD batch_outcome run(const batch_job& job);  // detail::serve_batch (below)
};

namespace detail {

RINGFLOW_HD inline void publish_ring_counters(persistent_endpoint& e) {
  e.control->publish_counters(e.heartbeat, e.last_progress, e.processed, e.handler_errors, e.rejected);
  // Protocol v2: the request head and the reply tail are for observers only (queue depths); they
  // go out here, once per poll period, not per message.
  if (e.requests.region().config().is_v2()) {
    e.requests.publish();
    e.replies.publish_tail();
  }
}

/// Binds entry `r` to endpoint `e` (a new generation was seen). `state`: the entry's state room
/// (state_stride bytes) or null. False: the entry is unusable.
template <class Table>
RINGFLOW_HD bool bind_entry(const persistent_ring& r, persistent_endpoint& e, const serve_staging* staging,
                            std::uint8_t* state = nullptr, std::uint32_t state_stride = 0) {
  e.control = r.control;
  e.kernel_index = r.kernel_index;
  e.max_batch = r.max_batch ? r.max_batch : 1;
  e.heartbeat = e.last_progress = e.processed = e.handler_errors = e.rejected = 0;
  e.batch_hint = 0;
  e.state = nullptr;
  const ring_region rq(r.requests, r.request_config), rp(r.replies, r.reply_config);
  if (r.kernel_index >= Table::size) {
    e.control->fault(kernel_error::bad_ring, 0, "ring table entry names a kernel outside the kernel table");
    return false;
  }
  if (const std::uint32_t sb = Table::state_bytes(r.kernel_index); sb != 0) {
    if (!state || state_stride < sb) {
      e.control->fault(kernel_error::bad_ring, 0, "stateful kernel bound without state room (persistent_args::states)");
      return false;
    }
    e.state = state;
    Table::init_state(r.kernel_index, state);  // a new incarnation: its ring actor restores the snapshot next
  }
  if (!r.request_config.valid() || !r.reply_config.valid() || !rq.valid() || !rp.valid() || !rq.config_intact() ||
      !rp.config_intact()) {
    e.control->fault(kernel_error::bad_ring, 0, "ring region failed validation (magic or geometry)");
    return false;
  }
  const bool v2 = r.request_config.is_v2();
  if (v2 != r.reply_config.is_v2() || (v2 && r.request_config.capacity != r.reply_config.capacity)) {
    e.control->fault(kernel_error::bad_ring, 0, "protocol v2 rings must pair up (both v2, equal capacities)");
    return false;
  }
  e.requests = ring_consumer(rq, v2);
  e.replies = ring_producer(rp, r.reply_scratch);
  if (v2) {
    // The request image and the reply claim live in the worker's staging (device memory).
    if (!staging || !e.requests.set_image_buffer(staging->request, staging->request_bytes) ||
        !e.replies.set_claim_buffer(staging->reply, staging->reply_bytes)) {
      e.control->fault(kernel_error::bad_ring, 0, "protocol v2 rings need 64-byte aligned worker staging of a slot");
      return false;
    }
    e.replies.assume_credit();
    e.replies.set_lazy_tail(true);
    if (e.requests.position() != e.replies.position()) {
      e.control->fault(kernel_error::bad_ring, 0, "protocol v2 rings out of step (request head != reply tail)");
      return false;
    }
  }
  e.control->set_state(kernel_state::running);
  return true;
}

/// Host lines serve_one() calls read (the emulator's accounting): each poll that found nothing
/// (v1: the seq word's line; v2: the 16-unit burst, two lines) and each request served, at its
/// minimum (v1: the seq line plus the staged slot; v2: its burst).
RINGFLOW_HD inline std::uint64_t poll_lines(const persistent_endpoint& e, std::uint32_t served, serve_result r) {
  const ring_config c = e.requests.region().config();
  const std::uint64_t empty = c.is_v2() ? 2 : 1;
  const std::uint64_t per_request = c.is_v2() ? 2 : 1 + (c.slot_size + 127) / 128;
  return served * per_request + (r == serve_result::served ? 0 : empty);
}

/// One lane's look at its request of a batch (phase 1) and what it did (phase 2).
struct batch_lane {
  enum : std::uint8_t { absent = 0, serial = 1, eligible = 2 };  // serial: there, but for the serial path
  enum : std::uint8_t { replied = 0, handler_error = 1, rejected = 2 };
  std::uint8_t state = absent;
  std::uint8_t outcome = replied;
  request_plan plan;
};

/// Phase 1 of lane `l`: decode request head + l into the lane's image and plan it. A batch takes
/// inline requests whose reply (or error reply) fits the reply slot's inline room; the rest go
/// to serve_one(), which stages arena payloads and claims arena replies.
template <class K>
RINGFLOW_HD void plan_lane(const batch_job& job, std::uint32_t l, batch_lane& out) {
  if constexpr (stateful_kernel<K>) {
    // One state, so one request at a time (lanes would race on it): the serial path.
    const slot_header* req = job.endpoint->requests.peek_ahead(l, job.staging.request + l * job.image_stride);
    out.state = req ? batch_lane::serial : batch_lane::absent;
    return;
  }
  persistent_endpoint& e = *job.endpoint;
  byte* image = job.staging.request + static_cast<std::uint64_t>(l) * job.image_stride;
  const slot_header* req = e.requests.peek_ahead(l, image);
  if (!req) {
    out.state = batch_lane::absent;
    return;
  }
  const bool payload_ok = e.requests.region().payload_in_bounds(*req);
  if (payload_ok && (req->flags & slot_flags::arena)) {
    out.state = batch_lane::serial;
    return;
  }
  fb::bytes_view payload;
  if (payload_ok) payload = {reinterpret_cast<const std::uint8_t*>(req) + sizeof(slot_header), req->payload_len};
  plan_request<K>(out.plan, req, payload, payload_ok, e.replies, 0);
  out.state = out.plan.want <= e.replies.inline_capacity() ? batch_lane::eligible : batch_lane::serial;
}

/// Phase 2 of lane `l` (inside the ready prefix): the handler, then the reply's units into reply
/// slot tail + l (lane-local composition, no fence: each unit publishes itself).
template <class K>
RINGFLOW_HD void serve_lane(const batch_job& job, std::uint32_t l, batch_lane& lane) {
  persistent_endpoint& e = *job.endpoint;
  byte* buf = job.staging.reply + static_cast<std::uint64_t>(l) * job.claim_stride;
  const ring_claim claim{
      reinterpret_cast<slot_header*>(buf), buf + sizeof(slot_header), e.replies.inline_capacity(), 0, 0, true};
  serve_tally t;
  slot_header hdr;
  const std::uint32_t len = answer_request<K>(lane.plan, claim, nullptr, t, hdr);
  hdr.correlation_id = lane.plan.in.correlation_id;
  e.replies.commit_ahead(l, hdr, claim.payload, len);
  lane.outcome = t.rejected ? batch_lane::rejected : t.handler_errors ? batch_lane::handler_error : batch_lane::replied;
}

/// Lanes (from 0) before the first clear bit of `mask`.
RINGFLOW_HD inline std::uint32_t ready_prefix(std::uint32_t mask) {
  std::uint32_t n = 0;
  while (n < 32 && (mask >> n) & 1u) ++n;
  return n;
}
RINGFLOW_HD inline std::uint32_t popcount32(std::uint32_t m) {
  std::uint32_t n = 0;
  for (; m; m &= m - 1) ++n;
  return n;
}

/// One batch (see batch_job): every lane polls and decodes its slot, a ballot finds the ready
/// prefix, the prefix's lanes run their handlers and write their replies, ballots count the
/// errors. Moves no cursor: the caller (the worker's lane 0) advances both rings past `served`.
template <class Table, class Lanes>
RINGFLOW_HD batch_outcome serve_batch(Lanes& lanes, const batch_job& job) {
  typename Lanes::template local<batch_lane> lane;
  const std::uint32_t kernel = job.endpoint->kernel_index;
  lanes.each(job.n, [&](std::uint32_t l) { Table::visit(kernel, [&]<class K>() { plan_lane<K>(job, l, lane[l]); }); });
  const std::uint32_t there = lanes.ballot(job.n, [&](std::uint32_t l) { return lane[l].state != batch_lane::absent; });
  const std::uint32_t ok = lanes.ballot(job.n, [&](std::uint32_t l) { return lane[l].state == batch_lane::eligible; });
  batch_outcome o;
  o.served = ready_prefix(there & ok);
  o.next_ready = o.served < job.n && ((there >> o.served) & 1u);
  lanes.each(o.served,
             [&](std::uint32_t l) { Table::visit(kernel, [&]<class K>() { serve_lane<K>(job, l, lane[l]); }); });
  o.handler_errors =
      popcount32(lanes.ballot(o.served, [&](std::uint32_t l) { return lane[l].outcome == batch_lane::handler_error; }));
  o.rejected =
      popcount32(lanes.ballot(o.served, [&](std::uint32_t l) { return lane[l].outcome == batch_lane::rejected; }));
  lanes.sync();
  return o;
}

/// Lanes a batch of endpoint `e` may use with `staging` (0: no batches, one request at a time).
template <class Lanes>
RINGFLOW_HD std::uint32_t batch_width(const persistent_endpoint& e, const serve_staging* staging, const Lanes& lanes,
                                      std::uint32_t& image_stride, std::uint32_t& claim_stride) {
  const ring_config c = e.requests.region().config();
  if (!c.is_v2() || !staging || lanes.width < 2) return 0;
  image_stride = ll::image_bytes(c.inline_capacity());
  claim_stride = ll::image_bytes(e.replies.inline_capacity());
  std::uint32_t w = lanes.width < max_batch_lanes ? lanes.width : max_batch_lanes;
  if (c.capacity < w) w = c.capacity;  // a lane past the ring's capacity would find nothing
  if (staging->request_bytes / image_stride < w) w = staging->request_bytes / image_stride;
  if (staging->reply_bytes / claim_stride < w) w = staging->reply_bytes / claim_stride;
  return w >= 2 ? w : 0;
}

/// Serves up to `limit` requests of a running or draining ring. Returns what the last call said;
/// `lines` gets the host lines it read (the emulator's accounting, see poll_lines). Protocol v2
/// rings are served in batches of the worker's lanes where its staging allows.
template <class Table, class Lanes>
RINGFLOW_HD serve_result serve_ring(persistent_endpoint& e, std::uint32_t limit, std::uint32_t& served,
                                    const serve_staging* staging, Lanes& lanes, std::uint64_t& lines) {
  serve_tally tally;
  serve_result r = serve_result::idle;
  batch_job job{&e, staging ? *staging : serve_staging{}, 0, 0, 0, 0};
  const std::uint32_t width = batch_width(e, staging, lanes, job.image_stride, job.claim_stride);
  lines = 0;
  served = 0;
  while (served < limit) {
    if (width) {
      // Width grows like a slow start (1, 2, 4, ... lanes) and falls back to what the last batch
      // found: every lane of a batch reads its slot (a burst, two lines), so an empty ring costs
      // one lane's burst, not a warp's.
      std::uint32_t n = e.batch_hint ? 2 * e.batch_hint : 1;
      if (n > width) n = width;
      job.n = limit - served < n ? limit - served : n;
      const batch_outcome o = lanes.template run<Table>(job);
      e.batch_hint = o.served;
      lines += 2ull * job.n;
      if (o.served) {
        e.requests.release_bulk(o.served);
        e.replies.advance(o.served);
        served += o.served;
        tally.served += o.served;
        tally.handler_errors += o.handler_errors;
        tally.rejected += o.rejected;
        r = serve_result::served;
        if (o.served == job.n) continue;
      }
      if (!o.next_ready) {
        r = serve_result::idle;
        break;
      }
    }
    // One at a time: no batches, or the next request needs the serial path (arena, large error).
    r = Table::serve(e.kernel_index, e.requests, e.replies, tally, staging, e.state);
    lines += poll_lines(e, r == serve_result::served ? 1 : 0, r);
    if (r != serve_result::served) break;
    ++served;
  }
  if (tally.served) {
    e.processed += tally.served;
    e.handler_errors += tally.handler_errors;
    e.rejected += tally.rejected;
    e.last_progress = e.heartbeat;
  }
  return r;
}

}  // namespace detail

template <class Table>
RINGFLOW_HD batch_outcome sequential_lanes::run(const batch_job& job) {
  return detail::serve_batch<Table>(*this, job);
}

/// The worker loop of a persistent kernel (see the contract above). Returns when the kernel's
/// stop flag is set and every entry of this worker is idle.
template <class Table, class Lanes>
RINGFLOW_HD void persistent_worker(const persistent_args& a, std::uint32_t worker, std::uint32_t workers,
                                   Lanes& lanes) {
  if (worker == 0) a.kernel_control->set_state(kernel_state::running);
  serve_staging staging_buf;
  const serve_staging* staging = nullptr;
  if (a.staging && a.staging_bytes) {
    std::uint8_t* base = a.staging + static_cast<std::uint64_t>(worker) * 2 * a.staging_bytes;
    staging_buf = {base, a.staging_bytes, base + a.staging_bytes, a.staging_bytes};
    staging = &staging_buf;
  }
  const std::uint32_t period = a.poll_period ? a.poll_period : 1;
  backoff bo;
  bo.max_ns = a.backoff_max_ns;
  std::uint64_t pass = 0;
  bool stopping = false;
  const bool scouted = a.summary && a.scout_marks;
  const std::uint32_t words = scouted ? summary_words(a.max_rings, a.group_shift) : 0;
  const std::uint64_t sweep_mask = (a.sweep_period ? a.sweep_period : 1) - 1;
  std::uint64_t seen_control = 0;
  std::uint64_t* reads = a.host_reads ? a.host_reads + 2 * static_cast<std::uint64_t>(worker) : nullptr;
  const std::uint32_t ring_lines = 1;  // a ctl word, the stop flag, a v1 seq poll: one line each
  // Accounting with a single writer per word (relaxed: the test reads snapshots while we run).
  auto count = [reads](std::uint32_t k, std::uint64_t n) {
    if (reads) store_relaxed(reads[k], load_relaxed(reads[k]) + n);
  };
  for (;;) {
    const bool beat = pass % period == 0;  // heartbeats and counters (writes only)
    const bool sweep = scouted && (pass & sweep_mask) == 0;
    ++pass;
    count(1, 1);
    bool control_moved = false;
    if (scouted) {
      // The chain that makes a mark trustworthy: the host writes ctl / a request's units, then
      // bumps a summary word (release); the scout sees the bump (relaxed load + acquire fence),
      // store-releases the mark; a worker that sees the mark moved (relaxed + acquire fence)
      // therefore sees the ctl word / the units. The fences run only when something moved.
      if (worker == 0) {  // the scout: the summary line(s), what moved copied to device memory
        for (std::uint32_t w = 0; w < words; ++w) {
          const std::uint64_t v = load_relaxed(a.summary[w]);
          if (v != load_relaxed(a.scout_marks[w])) {
            ll_acquire_fence();
            store_release(a.scout_marks[w], v);
          }
        }
        count(0, (words * 8 + 127) / 128);
      }
      const std::uint64_t c = load_relaxed(a.scout_marks[0]);
      if (c != seen_control) {
        ll_acquire_fence();
        seen_control = c;
        control_moved = true;
      }
    }
    // Reads of control words: every poll period without a scout; with one, only when the control
    // generation moved (every ctl write and the kernel stop request bump it).
    bool check = scouted ? control_moved : beat;
    if (check || sweep) {  // (sweeps also look at the kernel's stop flag: one line per worker)
      stopping = stopping || a.kernel_control->stop_is_requested();
      count(0, ring_lines);
    }
    check = check || (scouted && stopping);  // stopping: every entry drains (and is looked at)
    if (beat && worker == 0) a.kernel_control->publish_counters(pass, pass, 0, 0, 0);
    bool work = false;
    bool busy = false;  // some entry of this worker is running or draining
    for (std::uint32_t i = worker; i < a.max_rings; i += workers) {
      persistent_endpoint& e = a.endpoints[i];
      if (check) {
        // Acquire: pairs with the host's release of ctl; the entry and the rings' formatting
        // written before it are visible.
        const std::uint64_t ctl = load_acquire(a.rings[i].ctl);
        count(0, ring_lines);
        const std::uint64_t gen = persistent_ctl::generation(ctl);
        if (gen != 0 && gen != e.seen_generation) {
          e.seen_generation = gen;
          std::uint8_t* room = a.states ? a.states + static_cast<std::uint64_t>(i) * a.state_stride : nullptr;
          e.phase = detail::bind_entry<Table>(a.rings[i], e, staging, room, a.state_stride)
                        ? persistent_endpoint::running
                        : persistent_endpoint::idle;
          e.hot_until = pass + a.linger_passes;  // requests pushed before the bind was seen
        }
        if (e.phase != persistent_endpoint::idle && gen == e.seen_generation) {
          if (ctl & persistent_ctl::abandon) {
            e.requests.publish();
            detail::publish_ring_counters(e);
            e.control->fault(kernel_error::reply_stuck, 0, "stop: abandoned while draining (response ring full)");
            e.phase = persistent_endpoint::idle;
            continue;
          }
          if (e.phase == persistent_endpoint::running && ((ctl & persistent_ctl::stop) || stopping)) {
            e.phase = persistent_endpoint::draining;
            e.drain_budget = e.requests.region().config().capacity;
            e.control->set_state(kernel_state::draining);
          }
        }
      }
      if (beat && e.phase != persistent_endpoint::idle) {
        ++e.heartbeat;
        detail::publish_ring_counters(e);
      }
      if (e.phase == persistent_endpoint::idle) continue;
      busy = true;
      if (e.phase == persistent_endpoint::running) {
        if (scouted) {  // a cold ring's slots are not read (its group's mark did not move)
          const std::uint64_t m = load_relaxed(a.scout_marks[1 + (i >> a.group_shift)]);
          if (m != e.seen_mark) {
            ll_acquire_fence();  // see the chain above: the units announced are visible
            e.seen_mark = m;
            e.hot_until = pass + a.linger_passes;
          }
          if (pass > e.hot_until) {
            if (!sweep) continue;
            // The sweep (a notify() that was never made): one look at the next slot's first unit.
            count(0, ring_lines);
            if (!e.requests.probe()) continue;
            e.hot_until = pass + a.linger_passes;
          }
        }
        std::uint32_t served = 0;
        // A blocked ring (full response ring) serves nothing now: `served` says so; the next pass retries.
        std::uint64_t lines = 0;
        (void)detail::serve_ring<Table>(e, e.max_batch, served, staging, lanes, lines);
        count(0, lines);
        if (served) e.hot_until = pass + a.linger_passes;
        work = work || served > 0;
        continue;
      }
      // draining
      std::uint32_t served = 0;
      std::uint64_t lines = 0;
      const serve_result r = detail::serve_ring<Table>(e, e.drain_budget, served, staging, lanes, lines);
      count(0, lines);
      e.drain_budget -= served;
      work = work || served > 0;
      if (r == serve_result::blocked) continue;  // the host must read replies; abandon ends it
      if (r == serve_result::idle || e.drain_budget == 0) {
        e.requests.publish();
        detail::publish_ring_counters(e);
        e.control->set_state(kernel_state::stopped);  // release: every reply above is visible first
        e.phase = persistent_endpoint::idle;
      }
    }
    if (stopping && !busy) return;
    // A worker without running rings backs off further: it only has to notice a binding (within
    // poll_period passes), and hundreds of such workers polling the table would load PCIe.
    bo.max_ns = busy ? a.backoff_max_ns : a.unbound_backoff_max_ns;
    if (work) bo.reset();
    else bo.pause();
  }
}

/// The worker loop with sequential lanes: a.batch_lanes of them (the host, the emulator, HIP).
template <class Table>
RINGFLOW_HD void persistent_worker(const persistent_args& a, std::uint32_t worker, std::uint32_t workers) {
  sequential_lanes lanes;
  lanes.width = a.batch_lanes;
  persistent_worker<Table>(a, worker, workers, lanes);
}

/// A worker whose lanes are threads of their own (a CUDA warp: persistent_kernel.cuh's
/// warp_lanes; the emulator's threaded lanes, tests/support/threaded_lanes.hpp). The leader lane
/// runs the worker loop, whose lanes.run() hands each batch to every lane (send) and serves its
/// own part; the other lanes receive() batches and serve their parts until finish() (the leader's
/// loop returned) sends them a job with `quit` set. Beyond sequential_lanes' interface a
/// cooperative Lanes type has leader(), receive() and finish(); every lane of it calls each
/// ballot() and sync() of a batch (serve_batch calls them unconditionally).
template <class Table, class Lanes>
RINGFLOW_HD void cooperative_worker(const persistent_args& a, std::uint32_t worker, std::uint32_t workers,
                                    Lanes& lanes) {
  if (lanes.leader()) {
    persistent_worker<Table>(a, worker, workers, lanes);
    lanes.finish();
    return;
  }
  for (;;) {
    const batch_job job = lanes.receive();
    if (job.quit) return;
    detail::serve_batch<Table>(lanes, job);
  }
}

}  // namespace ringflow

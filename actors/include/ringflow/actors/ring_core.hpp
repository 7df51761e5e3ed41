// ringflow/actors/ring_core.hpp — the engine behind a ring actor: outbox, staging, publisher.
//
// Contract
//   * Every request — from an actor through the ring actor's mailbox, or from any thread through
//     the embedding API (ring_client) — enters submit(): type and payload checks, an outbox entry
//     with a correlation id, then the staging queue (moodycamel::ConcurrentQueue, many producers).
//     Whoever finds the publisher role free drains the staging queue into the SPSC request ring in
//     bulk (combining: no dedicated thread, no lock; a submitter that finds the role taken leaves
//     its request to the holder, which re-checks before it lets go). The completion poller
//     consumes replies, matches them to outbox entries by correlation id and completes them.
//   * Exactly-once completion: each entry completes once — by its reply, its deadline (errc::timeout,
//     found by the poller's sweep), or stop (errc::stopped) — decided by one compare-exchange on
//     the entry's live correlation id. A reply whose id is not live (already timed out, or a
//     replayed request served twice) is dropped and counted as a duplicate.
//   * Backpressure: the outbox has `window` entries (the per-ring-actor in-flight limit) and each
//     caller has its own limit; beyond either, submit() fails at once with errc::overloaded
//     (nothing is queued, nothing is dropped silently; the caller backs off and retries).
//   * The core is stable across kernel incarnations: detach() stops publishing, stops the kernel
//     (it drains), harvests its last replies and hands it back; attach() installs a new one and
//     replays every request that was published but not answered, in submission order. Requests
//     submitted meanwhile wait in staging (their deadlines still run).
//   * stop(): refuses new requests (errc::stopped), detaches, and completes whatever is left with
//     errc::stopped. Nothing is left without an answer.
// Thread-safety: submit() and stats() from any thread; attach/detach/stop serialised by an
// internal mutex (call them from one controlling thread at a time). Completion callbacks run on
// the completion poller's thread, on a thread helping in poll_replies() (ring_client::call, or
// a ring actor in latency mode: then on a CAF worker), or on
// the thread calling stop(): keep them short and non-blocking.
#pragma once

#include <caf/actor_control_block.hpp>
#include <caf/fwd.hpp>
#include <caf/message_id.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/actors/errors.hpp"
#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/host_serve.hpp"
#include "ringflow/incarnation.hpp"

namespace ringflow {

class payload_registry;
class completion_poller;

/// The answer to one request, as the embedding API sees it.
struct call_result {
  errc code = errc::ok;
  fb_msg reply;        // the reply FlatBuffer when code == ok
  std::string detail;  // why, when code != ok
  bool ok() const noexcept { return code == errc::ok; }
};

/// In-flight accounting of one caller (an actor, or one ring_client).
struct caller_credit {
  std::atomic<std::uint32_t> in_flight{0};
};

/// Where a request's answer goes.
struct completion_target {
  // actor caller: respond to (sender, request id) exactly as a CAF response would
  caf::strong_actor_ptr sender;
  caf::message_id request_id;
  // embedding caller: a callback run with the result
  std::function<void(call_result&&)> callback;
};

/// One traced request's hop through a ring kernel (ring_actor_options::trace). Span ids are the
/// W3C 8-byte ids held as u64 (bytes in memory order, as fb_msg::span). The host makes the
/// enqueue and kernel span ids; the kernel span id travels to the kernel in the request slot's
/// header and comes back in the reply slot's header (`kernel_span_seen`), and the reply span is
/// parented to what came back, so the link crosses the host<->kernel hop for real: a kernel that
/// drops the context shows up as kernel_span_seen != kernel_span.
struct ring_hop_trace {
  const std::string* ring = nullptr;         // the ring actor's name
  std::uint64_t trace_hi = 0, trace_lo = 0;  // the trace id (the request's)
  std::uint64_t parent_span = 0;             // the request's span (the caller's)
  std::uint64_t enqueue_span = 0;            // submit -> published into the request ring (parent: parent_span)
  std::uint64_t kernel_span = 0;             // published -> reply harvested (parent: enqueue_span)
  std::uint64_t kernel_span_seen = 0;        // the span id in the reply slot's header
  std::uint64_t reply_span = 0;              // reply harvested -> answer delivered (parent: kernel_span_seen)
  std::uint64_t submit_ns = 0, publish_ns = 0, reply_ns = 0, answered_ns = 0;  // steady clock
  errc code = errc::ok;                                                        // ok, or the kernel's error reply
  bool replayed = false;  // published more than once (a replay after a fault)
};
using ring_trace_sink = std::function<void(const ring_hop_trace&)>;

class reply_durability;
struct state_handover;
namespace detail {
struct verify_job;  // state_journal.hpp (internal)
}

struct ring_actor_options {
  std::uint32_t window = 256;            // in-flight limit of the ring actor (rounded up to a power of two)
  std::uint32_t per_caller_window = 64;  // in-flight limit of each caller
  /// Deadline of requests that carry none (a ring_client may set its own: client_options).
  std::chrono::milliseconds default_timeout{10000};
  /// Payload verification: types found here are checked with their FlatBuffers Verifier before
  /// they enter the ring; other types get a structural check only. nullptr = the demo registry.
  const payload_registry* verify = nullptr;
  std::chrono::milliseconds stop_timeout{2000};  // how long a kernel may take to drain at detach/stop
  /// Latency mode of the ring actor: when its mailbox holds nothing else, the actor waits up to
  /// this long for a request's reply on its own CAF worker, consuming replies itself, so the
  /// response goes to the caller through that worker's local queue instead of a cross-thread
  /// wake-up (~50-150 us on small VMs). A new message ends the wait at once. 0 disables.
  std::chrono::nanoseconds help_wait{100000};
  /// Replies are checked before they reach a caller: the reply type (the kernel's, or an
  /// ErrorReply) and the FlatBuffers Verifier of that type (`verify`; a structural root-table
  /// check for unknown types). A reply that fails is not delivered and ring_stats::corrupt_replies
  /// counts it. Unsupervised, its caller gets errc::bad_reply at once (naming the type it got and
  /// the one expected). Under a fault ladder (ring_core::hold_bad_replies) the request is kept
  /// instead: the ladder replaces the unsound incarnation and the request is replayed into the
  /// new one, so the caller gets a sound reply (or its deadline). false: trust the kernel (type
  /// check only).
  bool verify_replies = true;
  /// Tracing: requests that carry a trace id (fb_msg::trace_hi/lo) are timed at submit, publish,
  /// reply and answer, and `trace` gets one ring_hop_trace per reply (on the thread that consumed
  /// it: keep it short). The reply's fb_msg carries the trace id and the reply span, so the next
  /// hop parents to it. Empty: the context is only carried through the slot headers, untimed.
  std::shared_ptr<const ring_trace_sink> trace;
  /// A stateful kernel (kernel.hpp; docs/KERNELS.md "Stateful kernels"): `state_bytes` of its
  /// state (0: stateless, the rest is ignored). The core keeps the latest snapshot of the state
  /// and a journal of the requests published since; every incarnation it attaches is restored
  /// and replayed, so each request's effect is in the state exactly once. A snapshot is taken
  /// every `snapshot_every` requests (>= 1), and `snapshot_ms` after the previous one when
  /// requests were published since (0: by count only). The journal holds at most about `journal_max`
  /// messages (>= snapshot_every + window): while full, nothing more is published (requests
  /// wait, then callers get errc::overloaded) — never dropped. Incarnations must carry the state
  /// both ways (request and reply rings with arenas of state_bytes or more).
  struct state_options {
    std::uint32_t state_bytes = 0;
    std::uint32_t snapshot_every = 1000;
    std::uint32_t snapshot_ms = 1000;
    std::uint32_t journal_max = 16384;
    /// Resume (a durable checkpoint, runtime/checkpoint.hpp): the state to restore into the first
    /// incarnation instead of the kernel's init() (exactly state_bytes, or empty: init), and the
    /// requests whose effect it holds (state_view::requests_covered counts on from there).
    std::vector<std::uint8_t> initial;
    std::uint64_t initial_covered = 0;
    /// `durability: reply` (runtime/checkpoint.hpp reply_journal): every request applied for the
    /// first time is handed over with its apply sequence (initial_covered + 1, + 2, ... in the
    /// order the kernel applied them) and its reply is released only when the sink says so.
    /// nullptr: replies go out at once.
    std::shared_ptr<reply_durability> durable;
    /// The state of a stopped predecessor (ring_core::handover()): wins over `initial`. Set by
    /// runtime::spawn_ring_actor when a stateful ring actor is spawned under the name of a stopped
    /// one with the same state size (an OTP restart after the actor itself crashed).
    std::shared_ptr<const state_handover> from;
    /// Debug (topology `state.verify: true`; docs/KERNELS.md "state.verify"): every new snapshot
    /// is checked on the host. The previous snapshot (or init()) gets every request the kernel
    /// applied in between, in order, through `host_apply` (the kernel's CPU handler:
    /// host_apply_state<K>); the result must be byte-identical to the new snapshot. A difference
    /// — a non-deterministic handler, or a backend whose results differ from the CPU's — is
    /// counted (ring_stats::state_verify_failures) and described (state_view::verify_failure); the
    /// snapshot is still taken. Costs one host replay of every request. Needs host_init and
    /// host_apply (runtime::spawn_ring_actor<K> and the topology fill them).
    bool verify = false;
    std::function<void(std::uint8_t* state)> host_init;
    std::function<void(std::uint8_t* state, const std::uint8_t* request, std::uint32_t size)> host_apply;
  } state;
};

/// `opts` for kernel K: a stateful K's state size and its host handler (state.verify's replay);
/// nothing for a stateless K.
template <ring_kernel K>
void with_kernel_state(ring_actor_options& opts) {
  if constexpr (stateful_kernel<K>) {
    opts.state.state_bytes = state_bytes_of<K>;
    if (!opts.state.host_init) opts.state.host_init = [](std::uint8_t* s) { host_init_state<K>(s); };
    if (!opts.state.host_apply)
      opts.state.host_apply = [](std::uint8_t* s, const std::uint8_t* r, std::uint32_t n) {
        host_apply_state<K>(s, r, n);
      };
  }
}

/// Where a stateful ring actor's replies wait until their requests' effects are durable
/// (ring_actor_options::state::durable).
class reply_durability {
 public:
  virtual ~reply_durability() = default;
  /// The `seq`-th request applied (1-based over the node's life, gap-free), its bytes, and the
  /// release of its reply: release(true) once the effect is durable, release(false) when it could
  /// not be made durable (the caller gets errc::unavailable). Called on the reply consumer's thread:
  /// it must not block on I/O; release may run on any thread, exactly once.
  virtual void hold(std::uint64_t seq, const std::vector<std::uint8_t>& request,
                    std::function<void(bool durable)> release) = 0;
  /// Returns once every reply handed over so far has been released.
  virtual void flush() = 0;
};

/// What a stopped stateful ring actor leaves its successor: the latest snapshot (the state's bytes
/// and checksum; empty: init), the requests it holds, the requests applied for the first time so
/// far, and the requests applied since the snapshot (their bytes, in order). A successor restores
/// the snapshot and replays those (replies dropped: they were answered), so every answered
/// request's effect is in its state exactly once. Requests the predecessor did not apply were
/// answered `stopped` by its stop() and are not in it.
struct state_handover {
  std::vector<std::uint8_t> snapshot;
  std::uint64_t covered = 0, applied = 0;
  std::vector<std::vector<std::uint8_t>> since;
};

/// Counters (relaxed; monotonic) for tests, metrics and supervision.
struct ring_stats {
  std::uint64_t submitted = 0;      // accepted into the outbox
  std::uint64_t replied = 0;        // completed with a successful reply
  std::uint64_t error_replies = 0;  // completed with a kernel error reply
  std::uint64_t rejected = 0;       // refused at submit (type, payload, size, stopped, unavailable)
  std::uint64_t overloaded = 0;     // refused at submit: window full
  std::uint64_t timeouts = 0;       // completed by the deadline sweep
  std::uint64_t stopped = 0;        // completed by stop()
  std::uint64_t duplicates = 0;     // replies dropped because their request was already answered
  std::uint64_t replayed = 0;       // requests re-published into a new incarnation
  std::uint64_t attaches = 0;
  std::uint64_t detaches = 0;
  std::uint64_t corrupt_replies = 0;  // replies that failed verification (not delivered)
  std::uint64_t last_attach_ns = 0;   // steady ns of the latest attach()
  std::uint64_t first_reply_ns = 0;   // steady ns of the first successful reply after it (0: none yet)
  std::uint32_t in_flight = 0;        // outbox entries in use now
  std::uint32_t staged = 0;           // requests waiting for the publisher now
  // Stateful kernels (ring_actor_options::state; 0 for stateless ones):
  std::uint64_t snapshots = 0;              // snapshots of the state received
  std::uint64_t state_restores = 0;         // incarnations restored (snapshot, or init) and replayed
  std::uint64_t journal_replayed = 0;       // replies of replayed requests already answered (dropped)
  std::uint32_t journal_depth = 0;          // messages in the journal now
  std::uint64_t snapshot_ns = 0;            // steady ns when the latest snapshot arrived (0: none)
  std::uint64_t state_verified = 0;         // state.verify: snapshots checked by a host replay
  std::uint64_t state_verify_failures = 0;  // ... whose replay differed (a non-deterministic handler)
};

/// The latest snapshot of a stateful ring actor's state (ring_core::state()).
struct state_view {
  std::vector<std::uint8_t> bytes;     // empty: no snapshot yet (the state is the kernel's init())
  std::uint64_t snapshots = 0;         // snapshots received so far
  std::uint64_t requests_covered = 0;  // requests whose effect `bytes` holds
  std::uint64_t snapshot_ns = 0;       // steady ns when it arrived (0: none)
  /// state.verify: the latest difference found (empty: none), e.g. "requests 1001..2000 replayed
  /// on the host from the previous snapshot give digest ..., the kernel's snapshot ...".
  std::string verify_failure;
};

/// What the attached incarnation looks like right now (for the watchdog and metrics).
struct incarnation_probe {
  bool attached = false;
  std::string backend;  // "cpu", "sim", ...
  kernel_state state = kernel_state::idle;
  kernel_error error = kernel_error::none;
  std::uint32_t error_flags = 0;
  std::string error_detail;  // when error != none
  std::uint64_t epoch = 0;
  std::uint64_t heartbeat = 0;
  std::uint64_t request_depth = 0;  // requests in its ring (may lag by one head batch)
  std::uint64_t reply_depth = 0;    // replies in its reply ring not yet consumed
  /// A stateful kernel: messages it took from its ring whose replies have not come (0 for a
  /// stateless one). With request_depth 0 and no heartbeat, a kernel that holds one is hung: a
  /// full journal keeps the request ring empty, so request_depth alone cannot tell.
  std::uint64_t awaiting_replies = 0;
  const incarnation* identity = nullptr;  // which incarnation (compare only; never dereference)
};

class ring_core : public std::enable_shared_from_this<ring_core>, public reply_sink {
 public:
  /// `request_type`/`reply_type`: the kernel's declared types (every incarnation must match).
  ring_core(std::string name, type_id request_type, type_id reply_type, ring_actor_options opts,
            completion_poller& poller);
  ~ring_core();
  ring_core(const ring_core&) = delete;
  ring_core& operator=(const ring_core&) = delete;

  const std::string& name() const noexcept { return name_; }
  type_id request_type() const noexcept { return request_type_; }
  type_id reply_type() const noexcept { return reply_type_; }
  const ring_actor_options& options() const noexcept { return opts_; }

  /// Submits a request (`caller` null: a fresh credit, i.e. no per-caller limit beyond one call's
  /// window). On success returns errc::ok and the answer arrives later through `target` (moved
  /// from); otherwise returns the error (with `detail`) and leaves `target` as it was.
  errc submit(fb_msg&& request, completion_target&& target, std::shared_ptr<caller_credit> caller, std::string& detail,
              std::uint64_t* correlation_id = nullptr);
  /// True once request `correlation_id` (from submit) has been answered.
  bool answered(std::uint64_t correlation_id) const noexcept;

  /// Installs a new incarnation (none may be attached) and replays unanswered requests into it.
  /// Throws std::invalid_argument if its kernel types differ from the core's.
  void attach(std::unique_ptr<incarnation> inc);
  /// Stops publishing, stops the kernel (drain, `opts.stop_timeout`), takes its last replies, and
  /// returns it (nullptr if none was attached). Unanswered requests stay in the outbox.
  std::unique_ptr<incarnation> detach();
  /// Detach and destroy without waiting for a drain (a hung or lost kernel).
  std::unique_ptr<incarnation> detach_abandon();
  bool attached() const noexcept { return attached_.load(std::memory_order_acquire); }
  /// The attached incarnation's backend name ("" when detached).
  std::string backend() const;
  /// A consistent look at the attached incarnation's control block and request ring.
  incarnation_probe probe() const;
  /// Refuse new requests, detach, answer everything left with errc::stopped. Idempotent.
  void stop();
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  /// Stateful kernels, after stop() has returned: what a successor takes over (nullopt: stateless,
  /// or not stopped).
  std::shared_ptr<const state_handover> handover() const;

  ring_stats stats() const noexcept;
  /// Stateful kernels: the latest snapshot (nullopt for a stateless kernel).
  std::optional<state_view> state() const;
  /// Stateful kernels: take a snapshot now (it goes into the ring after any snapshot already on
  /// its way). Returns the count of state_view::snapshots / ring_stats::snapshots that, once
  /// reached, includes a snapshot taken after this call, so holding every request answered before
  /// it. No effect on a stateless kernel (returns 0).
  std::uint64_t request_snapshot();
  /// Requests in flight (outbox entries in use).
  std::uint32_t in_flight() const noexcept;

  // ---- called by the completion poller thread (poll_replies also by helping callers) ---------
  /// Consumes available replies and completes their requests; returns how many it consumed
  /// (0 also when another thread holds the reply side right now). Any thread may call it.
  std::uint32_t poll_replies();
  /// poll_replies() from a CAF worker: responses to actors are enqueued with `ctx` (the worker's
  /// execution unit), so they run on that worker without a wake-up.
  std::uint32_t poll_replies_from(caf::execution_unit* ctx);
  /// reply_sink: the attached kernel's own thread consumes its replies right after publishing
  /// them (a CPU incarnation; attach() installs the core as its sink when the core is owned by a
  /// shared_ptr). True when none are left.
  bool take_replies() noexcept override;
  /// Completes expired requests with errc::timeout; returns the earliest remaining deadline (0 none).
  std::uint64_t sweep_deadlines(std::uint64_t now_ns);
  /// Publishes what waits in staging (the poller's retry when the ring was full).
  void publish_pending();
  bool has_staged() const noexcept;
  /// True while the calling thread runs a completion callback or trace sink (on the poller, on a
  /// thread helping in call() or poll(), on a CAF worker in latency mode, or in stop()). A
  /// blocking wait for a reply there could wedge every ring actor: ring_client::call refuses it.
  static bool runs_completions() noexcept;
  /// true: a bad reply leaves its request unanswered for replay (set by the fault ladder while it
  /// supervises this core); false (default): the caller gets errc::bad_reply at once.
  void hold_bad_replies(bool hold) noexcept { hold_bad_replies_.store(hold, std::memory_order_relaxed); }

 private:
  struct impl;
  std::unique_ptr<incarnation> detach_impl(bool drain);
  void unref(std::uint32_t idx);
  std::uint64_t hop_span(std::uint64_t id, std::uint64_t which) const noexcept;
  bool claim(std::uint64_t id);
  void answer(std::uint64_t id, call_result&& result);
  static void deliver(completion_target& target, call_result&& result);
  bool drain_staging();
  bool drain_journal(bool& pushed);
  bool push_snapshot(bool& pushed);
  std::uint32_t consume_replies(std::uint32_t max);
  void verify_snapshot(const detail::verify_job& job);

  std::string name_;
  type_id request_type_;
  type_id reply_type_;
  ring_actor_options opts_;
  completion_poller& poller_;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> attached_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};  // stop() has finished (a concurrent stop() waits for it)
  std::atomic<bool> hold_bad_replies_{false};
  mutable std::mutex control_mu_;  // attach / detach / stop / sweep
};

}  // namespace ringflow

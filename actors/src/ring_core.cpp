// The ring actor's engine: see ringflow/actors/ring_core.hpp for the contract.
//
// Entry life cycle (one outbox entry per request in flight; `window` entries in all):
//   free list --pop--> filled by the submitter, refs = 2 (outbox + staging), live_id := id (release)
//   staging ref: dropped by the publisher once it pushed the request into the ring (published =
//                true) or found it already answered;
//   outbox ref:  dropped by whoever wins the compare-exchange live_id: id -> 0 (the reply, the
//                deadline sweep, or stop) after delivering the answer;
//   refs == 0 -> the entry is cleared and pushed back on the free list (its window credit returns).
// The payload bytes stay in the entry until refs == 0, so the publisher may still copy them while
// a timeout answers the caller, and attach() can replay them.
#include "ringflow/actors/ring_core.hpp"

#include <flatbuffers/flatbuffers.h>
#include <sched.h>

#include <concurrentqueue.h>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <thread>

#include <caf/mailbox_element.hpp>

#include "ringflow/actors/completion_poller.hpp"
#include "ringflow/ingress.hpp"
#include "ringflow/messages.hpp"
#include "ringflow/portable.hpp"
#include "state_journal.hpp"

namespace ringflow {

namespace {

// The CAF execution unit of a worker that is consuming replies itself (poll_replies_from).
thread_local caf::execution_unit* delivery_context = nullptr;

// > 0 while this thread runs a completion callback or a trace sink: a blocking call() here could
// wait for a reply that only this thread (the poller, or a helper holding a core's reply side) can
// deliver, so ring_client::call refuses it with errc::would_deadlock.
thread_local unsigned completion_depth = 0;
struct in_completion {
  in_completion() noexcept { ++completion_depth; }
  ~in_completion() { --completion_depth; }
  in_completion(const in_completion&) = delete;
  in_completion& operator=(const in_completion&) = delete;
};

std::uint32_t round_up_pow2(std::uint32_t v) {
  std::uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

std::string type_name(type_id t) { return "'" + type_id_text(t) + "'"; }

// Structural check of a FlatBuffer whose schema the core does not know: the root table and its
// vtable lie inside the buffer.
bool root_table_ok(const std::uint8_t* data, std::size_t size) {
  if (size < 8 || size > FLATBUFFERS_MAX_BUFFER_SIZE) return false;
  const flatbuffers::uoffset_t root = flatbuffers::ReadScalar<flatbuffers::uoffset_t>(data);
  if (root % 4 != 0 || static_cast<std::size_t>(root) + 4 > size) return false;
  flatbuffers::Verifier v(data, size);
  const auto* t = reinterpret_cast<const flatbuffers::Table*>(data + root);
  return t->VerifyTableStart(v) && v.EndTable();
}

// A buffer of type `t`: its schema's Verifier when `registry` knows it, else the root-table check.
bool payload_ok(const payload_registry& registry, type_id t, const std::uint8_t* data, std::size_t size) {
  if (const payload_registry::entry* schema = registry.find(t)) {
    flatbuffers::Verifier v(data, size);
    return schema->verify(v);
  }
  return root_table_ok(data, size);
}

}  // namespace

struct ring_core::impl {
  struct entry {
    std::atomic<std::uint64_t> live_id{0};  // the correlation id while unanswered, else 0
    std::atomic<std::uint32_t> refs{0};
    std::atomic<std::uint64_t> deadline{0};    // steady ns
    std::atomic<bool> published{false};        // in the current incarnation's request ring
    std::uint32_t gen = 0;                     // bumped per allocation (owner of the free entry only)
    std::uint64_t seq = 0;                     // submission order
    std::uint64_t submit_ns = 0;               // traced requests: when submitted (before live_id's release)
    std::atomic<std::uint64_t> publish_ns{0};  // traced requests: last publish (a replay republishes)
    fb_msg request;
    completion_target target;
    std::shared_ptr<caller_credit> caller;
  };

  // The staging queue starts with room for one window (at most 1024): a small ring actor stays small.
  explicit impl(std::uint32_t window)
      : entries(window), next(window), mask(window - 1), staging(std::min<std::uint32_t>(window, 1024)) {
    for (std::uint32_t i = window; i-- > 0;) push_free(i);
  }

  // ---- free list: a Treiber stack of indices, ABA-tagged head (tag << 32 | index + 1) -------
  void push_free(std::uint32_t i) {
    std::uint64_t h = free_head.load(std::memory_order_relaxed);
    for (;;) {
      next[i].store(static_cast<std::uint32_t>(h & 0xffffffffu), std::memory_order_relaxed);
      const std::uint64_t n = (((h >> 32) + 1) << 32) | (i + 1);
      // Release: the entry's cleared state is visible to the thread that pops it.
      if (free_head.compare_exchange_weak(h, n, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }
  bool pop_free(std::uint32_t& out) {
    std::uint64_t h = free_head.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t top = static_cast<std::uint32_t>(h & 0xffffffffu);
      if (top == 0) return false;
      const std::uint32_t nxt = next[top - 1].load(std::memory_order_relaxed);
      const std::uint64_t n = (((h >> 32) + 1) << 32) | nxt;
      // Acquire: pairs with push_free's release (the entry was cleared before it was pushed).
      if (free_head.compare_exchange_weak(h, n, std::memory_order_acquire, std::memory_order_acquire)) {
        out = top - 1;
        return true;
      }
    }
  }

  std::vector<entry> entries;
  std::vector<std::atomic<std::uint32_t>> next;
  std::uint32_t mask;
  alignas(64) std::atomic<std::uint64_t> free_head{0};
  alignas(64) std::atomic<std::uint32_t> in_flight{0};
  std::atomic<std::uint64_t> seq{0};

  // ---- staging: many producers -> the publisher -------------------------------------------
  moodycamel::ConcurrentQueue<std::uint64_t> staging;
  alignas(64) std::atomic<std::int64_t> staged{0};  // staging + carry
  alignas(64) std::atomic<bool> publishing{true};   // the publisher role (held while detached)
  // Owned by the publisher role:
  std::deque<std::uint64_t> carry;  // dequeued, waiting for ring room (or replayed)
  ring_producer producer;
  std::atomic<std::uint32_t> max_payload{0};  // of the attached ring (0 = none attached yet)

  // ---- replies: the poller (or detach) while holding poll_busy ------------------------------
  alignas(64) std::atomic<bool> poll_busy{false};
  ring_consumer consumer;
  std::vector<slot_header> reply_image;  // protocol v2: the consumer's decoded reply (64-byte aligned)

  std::unique_ptr<incarnation> inc;  // changed only with both roles held

  // Stateful kernels: the latest snapshot and the journal since (state_journal.hpp).
  std::unique_ptr<detail::state_journal> journal;
  // state.verify: checks run and failed, and the latest failure (verify_mu).
  std::atomic<std::uint64_t> verified{0}, verify_failures{0};
  mutable std::mutex verify_mu;
  std::string verify_failure;

  // ---- stats --------------------------------------------------------------------------------
  std::atomic<std::uint64_t> submitted{0}, replied{0}, error_replies{0}, rejected{0}, overloaded{0}, timeouts{0},
      stopped{0}, duplicates{0}, replayed{0}, attaches{0}, detaches{0}, corrupt_replies{0}, journal_replayed{0};
  std::atomic<std::uint64_t> last_attach_ns{0};
  std::atomic<std::uint64_t> first_reply_ns{0};  // 0 until the first successful reply after attach
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

namespace {
void acquire_flag(std::atomic<bool>& f) {
  std::uint32_t spins = 0;
  while (f.exchange(true, std::memory_order_acquire)) {
    if (++spins < 64) cpu_relax();
    else sched_yield();
  }
}
}  // namespace

ring_core::ring_core(std::string name, type_id request_type, type_id reply_type, ring_actor_options opts,
                     completion_poller& poller)
    : name_(std::move(name)), request_type_(request_type), reply_type_(reply_type), opts_(opts), poller_(poller) {
  if (opts_.window == 0 || opts_.window > (1u << 20))
    throw std::invalid_argument("ring actor '" + name_ + "': window must be in [1, 2^20]");
  if (opts_.per_caller_window == 0)
    throw std::invalid_argument("ring actor '" + name_ + "': per_caller_window must be >= 1");
  opts_.window = round_up_pow2(opts_.window);
  if (!opts_.verify) opts_.verify = &payload_registry::demo();
  const ring_actor_options::state_options& so = opts_.state;
  if (so.state_bytes) {
    if (so.snapshot_every == 0)
      throw std::invalid_argument("ring actor '" + name_ + "': state.snapshot_every must be >= 1");
    if (static_cast<std::uint64_t>(so.journal_max) < static_cast<std::uint64_t>(so.snapshot_every) + opts_.window)
      throw std::invalid_argument("ring actor '" + name_ + "': state.journal_max (" + std::to_string(so.journal_max) +
                                  ") must be at least snapshot_every + window (" +
                                  std::to_string(so.snapshot_every + opts_.window) + ")");
    if (so.verify && (!so.host_init || !so.host_apply))
      throw std::invalid_argument("ring actor '" + name_ +
                                  "': state.verify needs the kernel's host handler (state.host_init, state.host_apply; "
                                  "runtime::spawn_ring_actor<K> fills them)");
    if (!so.initial.empty() && so.initial.size() != so.state_bytes)
      throw std::invalid_argument("ring actor '" + name_ + "': state.initial holds " +
                                  std::to_string(so.initial.size()) + " bytes, the kernel's state " +
                                  std::to_string(so.state_bytes));
  }
  impl_ = std::make_unique<impl>(opts_.window);
  if (so.state_bytes)
    impl_->journal = std::make_unique<detail::state_journal>(so.state_bytes, so.snapshot_every, so.journal_max,
                                                             std::uint64_t{so.snapshot_ms} * 1000000u, so.initial,
                                                             so.initial_covered, so.from.get(), so.verify);
  poller_.add(this);
}

ring_core::~ring_core() {
  stop();
  poller_.remove(this);
}

std::uint32_t ring_core::in_flight() const noexcept { return impl_->in_flight.load(std::memory_order_relaxed); }
bool ring_core::has_staged() const noexcept {
  // A stateful kernel's journal replay waits for ring room too (it holds no staging count).
  // So does a snapshot asked for while another thread held the publisher role (request_snapshot()).
  return impl_->staged.load(std::memory_order_relaxed) > 0 ||
         (impl_->journal && (impl_->journal->replay_pending() || impl_->journal->snapshot_wanted()));
}

ring_stats ring_core::stats() const noexcept {
  const impl& m = *impl_;
  ring_stats s;
  s.submitted = m.submitted.load(std::memory_order_relaxed);
  s.replied = m.replied.load(std::memory_order_relaxed);
  s.error_replies = m.error_replies.load(std::memory_order_relaxed);
  s.rejected = m.rejected.load(std::memory_order_relaxed);
  s.overloaded = m.overloaded.load(std::memory_order_relaxed);
  s.timeouts = m.timeouts.load(std::memory_order_relaxed);
  s.stopped = m.stopped.load(std::memory_order_relaxed);
  s.duplicates = m.duplicates.load(std::memory_order_relaxed);
  s.replayed = m.replayed.load(std::memory_order_relaxed);
  s.attaches = m.attaches.load(std::memory_order_relaxed);
  s.detaches = m.detaches.load(std::memory_order_relaxed);
  s.corrupt_replies = m.corrupt_replies.load(std::memory_order_relaxed);
  s.last_attach_ns = m.last_attach_ns.load(std::memory_order_relaxed);
  s.first_reply_ns = m.first_reply_ns.load(std::memory_order_relaxed);
  s.in_flight = m.in_flight.load(std::memory_order_relaxed);
  const std::int64_t st = m.staged.load(std::memory_order_relaxed);
  s.staged = st > 0 ? static_cast<std::uint32_t>(st) : 0;
  s.journal_replayed = m.journal_replayed.load(std::memory_order_relaxed);
  if (m.journal) {
    const detail::state_journal::view v = m.journal->read(false);
    s.snapshots = v.snapshots;
    s.state_restores = v.restores;
    s.journal_depth = v.depth;
    s.snapshot_ns = v.snapshot_ns;
    s.state_verified = m.verified.load(std::memory_order_relaxed);
    s.state_verify_failures = m.verify_failures.load(std::memory_order_relaxed);
  }
  return s;
}

std::optional<state_view> ring_core::state() const {
  if (!impl_->journal) return std::nullopt;
  detail::state_journal::view v = impl_->journal->read();
  state_view out{std::move(v.snapshot), v.snapshots, v.requests_covered, v.snapshot_ns, {}};
  std::lock_guard<std::mutex> lock(impl_->verify_mu);
  out.verify_failure = impl_->verify_failure;
  return out;
}

std::uint64_t ring_core::request_snapshot() {
  if (!impl_->journal) return 0;
  const std::uint64_t ticket = impl_->journal->request_snapshot();
  publish_pending();
  return ticket;
}

// ---- entry ownership ----------------------------------------------------------------------

// Drops one reference; the last one clears the entry and returns it (and its window credit).
void ring_core::unref(std::uint32_t idx) {
  impl& m = *impl_;
  impl::entry& e = m.entries[idx];
  // acq_rel: every use of the entry by the other reference holder happens-before the clearing.
  if (e.refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  e.request = fb_msg{};
  e.target = completion_target{};
  e.caller.reset();
  e.published.store(false, std::memory_order_relaxed);
  m.push_free(idx);
  m.in_flight.fetch_sub(1, std::memory_order_relaxed);
}

// Span ids of a traced request's hop (1 enqueue, 2 kernel, 3 reply): unique per request and core,
// never zero (W3C: an all-zero span id is invalid), the same again when the request is replayed.
std::uint64_t ring_core::hop_span(std::uint64_t id, std::uint64_t which) const noexcept {
  std::uint64_t z = id * 4 + which + reinterpret_cast<std::uintptr_t>(this) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;  // splitmix64's finaliser
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z ? z : 1;
}

// Wins the right to answer request `id` (exactly once across reply, sweep and stop).
bool ring_core::claim(std::uint64_t id) {
  impl::entry& e = impl_->entries[id & impl_->mask];
  std::uint64_t expected = id;
  // acq_rel: acquire pairs with the submitter's release of live_id (the entry's fields are
  // visible); release orders our later clearing after it for other claimers (who then fail).
  return e.live_id.compare_exchange_strong(expected, 0, std::memory_order_acq_rel, std::memory_order_relaxed);
}

// Delivers the answer of a claimed entry, returns the caller's credit and the outbox reference.
void ring_core::answer(std::uint64_t id, call_result&& result) {
  const std::uint32_t idx = static_cast<std::uint32_t>(id & impl_->mask);
  impl::entry& e = impl_->entries[idx];
  completion_target target = std::move(e.target);
  if (e.caller) e.caller->in_flight.fetch_sub(1, std::memory_order_relaxed);
  unref(idx);  // the caller may resubmit from inside the callback: free the credit first
  deliver(target, std::move(result));
}

bool ring_core::runs_completions() noexcept { return completion_depth > 0; }

void ring_core::deliver(completion_target& target, call_result&& result) {
  if (target.callback) {
    const in_completion mark;
    target.callback(std::move(result));
    return;
  }
  if (!target.sender || !target.request_id.is_request()) return;  // a `send`: nobody waits
  const caf::message_id rid = target.request_id.response_id();
  if (result.ok())
    target.sender->enqueue(caf::make_mailbox_element(nullptr, rid, {}, std::move(result.reply)), delivery_context);
  else
    target.sender->enqueue(
        caf::make_mailbox_element(nullptr, rid, {}, make_error(result.code, std::move(result.detail))),
        delivery_context);
}

// ---- submit -------------------------------------------------------------------------------------

bool ring_core::answered(std::uint64_t id) const noexcept {
  return impl_->entries[id & impl_->mask].live_id.load(std::memory_order_acquire) != id;
}

errc ring_core::submit(fb_msg&& request, completion_target&& target, std::shared_ptr<caller_credit> caller,
                       std::string& detail, std::uint64_t* correlation_id) {
  impl& m = *impl_;
  auto reject = [&](errc e, std::string why) {
    impl::bump(e == errc::overloaded ? m.overloaded : m.rejected);
    detail = std::move(why);
    return e;
  };
  if (stopping_.load(std::memory_order_acquire)) return reject(errc::stopped, "ring actor '" + name_ + "' is stopped");
  const type_id t = request.type();
  if (t != request_type_)
    return reject(errc::wrong_type,
                  "ring actor '" + name_ + "' accepts " + type_name(request_type_) + ", got " +
                      (request.bytes.size() < 8 ? std::string("a buffer too short to carry a type") : type_name(t)));
  const std::uint32_t limit = m.max_payload.load(std::memory_order_relaxed);
  if (limit && request.bytes.size() > limit)
    return reject(errc::oversize, "request of " + std::to_string(request.bytes.size()) + " bytes exceeds the ring's " +
                                      std::to_string(limit) + "-byte limit");
  if (!payload_ok(*opts_.verify, t, request.bytes.data(), request.bytes.size())) {
    const payload_registry::entry* schema = opts_.verify->find(t);
    return reject(errc::malformed, schema ? "request fails the " + schema->name + " verifier"
                                          : std::string("request is not a well-formed FlatBuffer"));
  }
  // A deadline that has passed already: answered now, never enqueued (docs/FAULTS.md "Deadlines").
  if (request.deadline_ns != 0) {
    const std::uint64_t now = steady_now();
    if (request.deadline_ns <= now)
      return reject(errc::timeout, "the request's deadline passed " +
                                       std::to_string((now - request.deadline_ns) / 1000) +
                                       " us before it was submitted to ring actor '" + name_ + "'");
  }
  if (!caller) caller = std::make_shared<caller_credit>();
  if (caller->in_flight.fetch_add(1, std::memory_order_relaxed) >= opts_.per_caller_window) {
    caller->in_flight.fetch_sub(1, std::memory_order_relaxed);
    return reject(errc::overloaded, "caller has " + std::to_string(opts_.per_caller_window) +
                                        " requests in flight at ring actor '" + name_ + "' (its per-caller window)");
  }
  std::uint32_t idx = 0;
  if (!m.pop_free(idx)) {
    caller->in_flight.fetch_sub(1, std::memory_order_relaxed);
    return reject(errc::overloaded, "ring actor '" + name_ + "' has " + std::to_string(opts_.window) +
                                        " requests in flight (its window)");
  }
  const bool first_in_flight = m.in_flight.fetch_add(1, std::memory_order_seq_cst) == 0;
  impl::entry& e = m.entries[idx];
  if (++e.gen == 0) e.gen = 1;
  const std::uint64_t id = (static_cast<std::uint64_t>(e.gen) << 32) | idx;
  e.seq = m.seq.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t deadline = request.deadline_ns;
  if (deadline == 0) deadline = steady_now() + static_cast<std::uint64_t>(opts_.default_timeout.count()) * 1000000ull;
  e.deadline.store(deadline, std::memory_order_relaxed);
  e.submit_ns = (opts_.trace && (request.trace_hi | request.trace_lo)) ? steady_now() : 0;
  e.request = std::move(request);
  e.target = std::move(target);
  e.caller = std::move(caller);
  e.refs.store(2, std::memory_order_relaxed);
  // seq_cst: publishes the entry (release) and orders it before the stopping_ re-check below
  // (against stop(): either we see stopping_, or its sweep sees this id).
  e.live_id.store(id, std::memory_order_seq_cst);
  impl::bump(m.submitted);
  if (stopping_.load(std::memory_order_seq_cst) && claim(id)) {
    // stop() began and did not see this entry: answer here, through the return value, and hand
    // the target back untouched, as every other refusal does.
    target = std::move(e.target);
    e.target = completion_target{};
    e.caller->in_flight.fetch_sub(1, std::memory_order_relaxed);
    e.refs.fetch_sub(1, std::memory_order_relaxed);  // the staging ref: never staged
    unref(idx);
    return reject(errc::stopped, "ring actor '" + name_ + "' is stopped");
  }
  if (correlation_id) *correlation_id = id;
  m.staging.enqueue(id);
  m.staged.fetch_add(1, std::memory_order_seq_cst);
  publish_pending();
  // The poller parks without a timeout when nothing is in flight: wake it for the deadline sweep.
  if (first_in_flight) poller_.bell().ring();
  return errc::ok;
}

// ---- publisher ----------------------------------------------------------------------------------

void ring_core::publish_pending() {
  impl& m = *impl_;
  for (;;) {
    if (m.publishing.exchange(true, std::memory_order_seq_cst)) return;  // the holder re-checks for us
    const bool ring_full = !drain_staging();
    m.publishing.store(false, std::memory_order_seq_cst);
    // A submitter that found the role taken after our last dequeue has counted its request by
    // now (its increment precedes its exchange); re-check so it is not stranded. A full ring is
    // retried by the poller once the kernel makes room.
    // A snapshot asked for meanwhile (request_snapshot() found the role taken) is re-checked too.
    if (ring_full) return;
    if (m.staged.load(std::memory_order_seq_cst) <= 0 &&
        !(m.journal && m.journal->snapshot_wanted() && m.journal->snapshot_due()))
      return;
  }
}

// Moves carry + staging into the request ring (publisher role held, incarnation attached).
// Returns false if the ring filled up before everything was moved.
bool ring_core::drain_staging() {
  impl& m = *impl_;
  constexpr std::uint32_t batch_max = 32;
  ring_message batch[batch_max];
  std::uint64_t ids[batch_max];
  bool pushed_any = false;
  bool full = false;
  // A stateful kernel: the journal's replay (restore, then the journaled requests) goes first.
  if (m.journal && !drain_journal(pushed_any)) full = true;
  while (!full) {
    if (m.journal && m.journal->full()) {  // backpressure until a snapshot makes room
      // An incarnation that cannot take a trusted snapshot never will: it is unsound (the
      // counter tells supervision to replace it, and the replacement replays the journal).
      if (m.journal->stuck()) impl::bump(m.corrupt_replies);
      (void)push_snapshot(pushed_any);
      full = true;
      break;
    }
    std::uint32_t n = 0;
    std::uint64_t got[batch_max];
    std::size_t ng = 0;
    while (ng < batch_max && !m.carry.empty()) {
      got[ng++] = m.carry.front();
      m.carry.pop_front();
    }
    if (ng < batch_max) ng += m.staging.try_dequeue_bulk(got + ng, batch_max - ng);
    if (ng == 0) break;
    for (std::size_t i = 0; i < ng; ++i) {
      const std::uint64_t id = got[i];
      const std::uint32_t idx = static_cast<std::uint32_t>(id & m.mask);
      impl::entry& e = m.entries[idx];
      if (e.live_id.load(std::memory_order_acquire) != id) {  // answered already (timeout, stop)
        m.staged.fetch_sub(1, std::memory_order_relaxed);
        unref(idx);
        continue;
      }
      ring_message& rm = batch[n];
      rm.header = slot_header{};
      rm.header.correlation_id = id;
      rm.header.deadline_ns = e.deadline.load(std::memory_order_relaxed);
      rm.header.type_id = request_type_;
      if (e.published.load(std::memory_order_relaxed)) rm.header.flags = slot_flags::replayed;  // a replay
      e.request.get_trace(rm.header.trace_id, rm.header.span_id);
      if (e.submit_ns) {  // traced: the kernel span's id goes to the kernel in the slot header
        const std::uint64_t kernel_span = hop_span(id, 2);
        std::memcpy(rm.header.span_id, &kernel_span, 8);
        e.publish_ns.store(steady_now(), std::memory_order_relaxed);
      }
      rm.payload = e.request.bytes.data();
      rm.payload_len = static_cast<std::uint32_t>(e.request.bytes.size());
      ids[n++] = id;
    }
    std::uint32_t done = 0;
    while (done < n) {
      ring_status st = ring_status::ok;
      std::uint32_t k = 0;
      if (!m.journal) {
        k = m.producer.try_push_bulk(batch + done, n - done, &st);
      } else {
        // Journaled one by one, before each push: its reply may come at once.
        for (; done + k < n; ++k) {
          const ring_message& rm = batch[done + k];
          m.journal->publishing(ids[done + k], rm.header.deadline_ns, static_cast<const std::uint8_t*>(rm.payload),
                                rm.payload_len);
          st = m.producer.try_push(rm);
          if (st != ring_status::ok) {
            m.journal->retract_last();
            break;
          }
        }
      }
      for (std::uint32_t i = done; i < done + k; ++i) {
        impl::entry& e = m.entries[ids[i] & m.mask];
        e.published.store(true, std::memory_order_relaxed);
        m.staged.fetch_sub(1, std::memory_order_relaxed);
        unref(static_cast<std::uint32_t>(ids[i] & m.mask));
      }
      done += k;
      pushed_any = pushed_any || k > 0;
      if (done == n) break;
      if (st == ring_status::oversize) {  // larger than this incarnation's ring: cannot ever fit
        const std::uint64_t id = ids[done];
        const std::uint32_t max = m.producer.max_payload();
        if (claim(id)) {
          impl::bump(m.rejected);
          answer(id,
                 call_result{
                     errc::oversize, {}, "request exceeds the attached ring's " + std::to_string(max) + "-byte limit"});
        }
        m.staged.fetch_sub(1, std::memory_order_relaxed);
        unref(static_cast<std::uint32_t>(id & m.mask));
        ++done;
        continue;
      }
      // Full: keep the rest, in order, at the front of the carry list.
      for (std::uint32_t i = n; i-- > done;) m.carry.push_front(ids[i]);
      full = true;
      break;
    }
    if (!full && m.journal && !push_snapshot(pushed_any)) full = true;
  }
  if (!full && m.journal && !push_snapshot(pushed_any)) full = true;
  if (pushed_any) m.inc->notify();
  return !full;
}

// A snapshot request when one is due (publisher role held). False: the ring is full.
bool ring_core::push_snapshot(bool& pushed) {
  impl& m = *impl_;
  if (!m.journal->snapshot_due()) return true;
  ring_message sm;
  sm.header = slot_header{};
  sm.header.correlation_id = m.journal->next_control_id();
  sm.header.type_id = state_snapshot_type;
  sm.payload = nullptr;
  sm.payload_len = 0;
  m.journal->publishing_snapshot(sm.header.correlation_id);
  if (m.producer.try_push(sm) != ring_status::ok) {
    m.journal->retract_last();
    return false;
  }
  pushed = true;
  return true;
}

// The journal's replay into a new incarnation (publisher role held): the restore, then every
// journaled request in order. False: the ring filled up first (the rest goes on later).
bool ring_core::drain_journal(bool& pushed) {
  impl& m = *impl_;
  while (std::optional<detail::state_journal::replay_item> it = m.journal->next_replay()) {
    ring_message rm;
    rm.header = slot_header{};
    rm.header.correlation_id = it->id;
    rm.header.deadline_ns = it->deadline;
    rm.header.type_id = it->type ? it->type : request_type_;
    if (!it->type) {
      rm.header.flags = slot_flags::replayed;
      impl::entry& e = m.entries[it->id & m.mask];
      if (e.live_id.load(std::memory_order_acquire) == it->id) {
        // Still unanswered: the caller waits for this reply (its deadline is the entry's).
        e.request.get_trace(rm.header.trace_id, rm.header.span_id);
        if (!it->replay_of_applied) rm.header.deadline_ns = e.deadline.load(std::memory_order_relaxed);
      }
    }
    rm.payload = it->bytes.data();
    rm.payload_len = static_cast<std::uint32_t>(it->bytes.size());
    m.journal->replaying_one();
    const ring_status st = m.producer.try_push(rm);
    if (st == ring_status::ok) {
      pushed = true;
      continue;
    }
    m.journal->unreplay();
    if (st == ring_status::full) return false;
    // Oversize: this incarnation's rings are smaller than the one the request went through
    // (attach() refuses rings too small for the state). It can never be applied here.
    m.journal->drop_next_replay();
    const std::uint64_t id = it->id;
    if (!it->type && claim(id)) {
      impl::bump(m.rejected);
      answer(id, call_result{errc::oversize,
                             {},
                             "request exceeds the attached ring's " + std::to_string(m.producer.max_payload()) +
                                 "-byte limit"});
    }
  }
  return true;
}

// ---- completions (poller thread) ---------------------------------------------------------------

std::uint32_t ring_core::poll_replies() {
  impl& m = *impl_;
  if (!attached_.load(std::memory_order_acquire)) return 0;
  if (m.poll_busy.exchange(true, std::memory_order_acquire)) return 0;  // detach owns the rings
  std::uint32_t n = 0;
  if (attached_.load(std::memory_order_acquire)) n = consume_replies(256);
  m.poll_busy.store(false, std::memory_order_release);
  return n;
}

bool ring_core::take_replies() noexcept {
  impl& m = *impl_;
  if (!attached_.load(std::memory_order_acquire)) return false;
  if (m.poll_busy.exchange(true, std::memory_order_acquire)) return false;  // the poller, a helper or detach
  bool empty = false;
  try {
    if (attached_.load(std::memory_order_acquire)) {
      (void)consume_replies(256);
      empty = m.consumer.try_peek() == nullptr;
    }
  } catch (...) {  // a completion callback threw (or memory ran out): the poller takes over
    empty = false;
  }
  m.poll_busy.store(false, std::memory_order_release);
  return empty;
}

std::uint32_t ring_core::poll_replies_from(caf::execution_unit* ctx) {
  delivery_context = ctx;
  const std::uint32_t n = poll_replies();
  delivery_context = nullptr;
  return n;
}

// Consumes up to `max` replies (the reply-consumer role is held).
// state.verify (ring_actor_options::state): the previous snapshot replayed on the host must give the
// new one. Runs on the reply consumer's thread, outside the journal's lock.
void ring_core::verify_snapshot(const detail::verify_job& job) {
  const ring_actor_options::state_options& so = opts_.state;
  std::vector<std::uint8_t> s(so.state_bytes);
  if (job.from.empty()) so.host_init(s.data());
  else s = job.from;
  for (const std::vector<std::uint8_t>& r : job.requests)
    so.host_apply(s.data(), r.data(), static_cast<std::uint32_t>(r.size()));
  impl::bump(impl_->verified);
  if (s == job.want) return;
  impl::bump(impl_->verify_failures);
  char digests[96];
  std::snprintf(digests, sizeof digests, "digest %016llx, the kernel's snapshot %016llx",
                static_cast<unsigned long long>(state_checksum(s.data(), so.state_bytes)),
                static_cast<unsigned long long>(state_checksum(job.want.data(), so.state_bytes)));
  std::string why = "requests " + std::to_string(job.first) + ".." + std::to_string(job.last) +
                    " applied on the host to the previous snapshot give " + digests +
                    ": the handler is not deterministic (or this backend computes differently from the CPU)";
  std::lock_guard<std::mutex> lock(impl_->verify_mu);
  impl_->verify_failure = std::move(why);
}

std::uint32_t ring_core::consume_replies(std::uint32_t max) {
  impl& m = *impl_;
  std::uint32_t n = 0;
  while (n < max) {
    const slot_header* shared_h = m.consumer.try_peek();
    if (!shared_h) break;
    ++n;
    // Read the header once into our own copy: the producer may be another process (a kernel
    // host) that is not trusted, so every decision below uses values it can no longer change.
    const slot_header hdr = *shared_h;
    const slot_header* h = &hdr;
    const std::uint64_t id = h->correlation_id;
    const bool in_bounds = m.consumer.region().payload_in_bounds(hdr);
    // The payload is copied out before it is verified (the peer cannot change what was checked).
    std::vector<std::uint8_t> bytes;
    if (in_bounds) {
      const std::uint8_t* src = (hdr.flags & slot_flags::arena)
                                    ? m.consumer.region().arena() + hdr.arena_offset
                                    : reinterpret_cast<const std::uint8_t*>(shared_h) + sizeof(slot_header);
      bytes.assign(src, src + hdr.payload_len);
    }
    if (m.journal && detail::state_journal::is_control_id(id)) {
      // A reply to the core's own state request (snapshot, restore): for the journal only.
      detail::journal_reply jr = m.journal->on_reply(id, hdr.status, hdr.type_id, bytes, in_bounds);
      m.consumer.release();
      if (jr.restore_failed) impl::bump(m.corrupt_replies);  // its state is wrong: it must be replaced
      if (jr.verify) verify_snapshot(*jr.verify);
      continue;
    }
    const fb::bytes_view p{bytes.data(), static_cast<std::uint32_t>(bytes.size())};
    const bool ok_reply = h->status == static_cast<std::uint16_t>(status::ok);
    const type_id want = ok_reply ? reply_type_ : msg::ErrorReply::type_id_;
    const bool sound =
        in_bounds && h->type_id == want && (!opts_.verify_replies || payload_ok(*opts_.verify, want, p.data, p.size));
    detail::journal_reply jr;
    if (m.journal) jr = m.journal->on_reply(id, hdr.status, hdr.type_id, bytes, sound);
    if (!sound || jr.unsound) {
      // Not a reply the caller can use. The counter tells supervision's watchdog the incarnation
      // is unsound; a supervised core keeps the request for replay into its replacement, an
      // unsupervised one answers errc::bad_reply now (nobody would replace the kernel).
      impl::bump(m.corrupt_replies);
      std::string why = !in_bounds   ? std::string("its header points outside the reply ring")
                        : jr.unsound ? std::string("its incarnation failed to restore the kernel's state")
                        : h->type_id != want
                            ? "its type is " + type_name(h->type_id) + ", the kernel's reply type is " + type_name(want)
                            : "it fails the " + type_name(want) + " verifier";
      m.consumer.release();
      if (!hold_bad_replies_.load(std::memory_order_relaxed) && claim(id)) {
        impl::bump(m.error_replies);
        answer(id, call_result{errc::bad_reply, {}, "ring actor '" + name_ + "' got a bad reply: " + std::move(why)});
      }
      continue;
    }
    if (!claim(id)) {
      // Answered already: a replay's reply (a stateful kernel re-applies its journal), or a late one.
      impl::bump(jr.replay_of_applied ? m.journal_replayed : m.duplicates);
      m.consumer.release();
      continue;
    }
    call_result r;
    r.code = from_status(static_cast<status>(h->status));
    ring_hop_trace hop;
    const impl::entry& e = m.entries[id & m.mask];
    const bool traced = e.submit_ns != 0;  // claimed: the entry is ours until answer()
    if (traced) {
      hop.ring = &name_;
      hop.trace_hi = e.request.trace_hi;
      hop.trace_lo = e.request.trace_lo;
      hop.parent_span = e.request.span;
      hop.enqueue_span = hop_span(id, 1);
      hop.kernel_span = hop_span(id, 2);
      std::memcpy(&hop.kernel_span_seen, h->span_id, 8);
      hop.reply_span = hop_span(id, 3);
      hop.submit_ns = e.submit_ns;
      hop.publish_ns = e.publish_ns.load(std::memory_order_relaxed);
      hop.reply_ns = steady_now();
      hop.code = r.code;
      hop.replayed = (h->flags & slot_flags::replayed) != 0;
    }
    if (r.code == errc::ok) {
      r.reply.bytes = std::move(bytes);
      r.reply.set_trace(h->trace_id, h->span_id);
      if (traced) std::memcpy(&r.reply.span, &hop.reply_span, 8);  // the next hop's parent
      impl::bump(m.replied);
      if (m.first_reply_ns.load(std::memory_order_relaxed) == 0)
        m.first_reply_ns.store(steady_now(), std::memory_order_relaxed);
    } else {
      const fb::string_view d = ringflow::view_of<msg::ErrorReply>(p).detail();
      r.detail.assign(d.data ? d.data : "", d.size);
      if (r.detail.empty()) r.detail = to_string(r.code);
      impl::bump(m.error_replies);
    }
    m.consumer.release();
    if (jr.applied_seq && opts_.state.durable) {
      // durability: reply — the caller hears of it once the effect is durable (or that it is not).
      opts_.state.durable->hold(jr.applied_seq, e.request.bytes,
                                [this, id, res = std::make_shared<call_result>(std::move(r))](bool durable) {
                                  if (!durable)
                                    *res = call_result{errc::unavailable,
                                                       {},
                                                       "ring actor '" + name_ +
                                                           "': the request was applied but its effect could not be "
                                                           "made durable (the journal write failed)"};
                                  answer(id, std::move(*res));
                                });
    } else {
      answer(id, std::move(r));
    }
    if (traced) {
      hop.answered_ns = steady_now();
      const in_completion mark;
      (*opts_.trace)(hop);
    }
  }
  return n;
}

std::uint64_t ring_core::sweep_deadlines(std::uint64_t now_ns) {
  impl& m = *impl_;
  std::unique_lock<std::mutex> lock(control_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return 0;  // attach/detach/stop in progress: sweep next time
  std::uint64_t earliest = 0;
  for (std::uint32_t i = 0; i <= m.mask; ++i) {
    impl::entry& e = m.entries[i];
    const std::uint64_t id = e.live_id.load(std::memory_order_acquire);
    if (id == 0) continue;
    const std::uint64_t d = e.deadline.load(std::memory_order_relaxed);
    if (d > now_ns) {
      if (earliest == 0 || d < earliest) earliest = d;
      continue;
    }
    if (!claim(id)) continue;
    impl::bump(m.timeouts);
    answer(id,
           call_result{errc::timeout, {}, "no reply from ring actor '" + name_ + "' before the request's deadline"});
  }
  return earliest;
}

// ---- incarnations --------------------------------------------------------------------------------

void ring_core::attach(std::unique_ptr<incarnation> inc) {
  if (!inc) throw std::invalid_argument("ring actor '" + name_ + "': attach(nullptr)");
  if (inc->request_type() != request_type_ || inc->reply_type() != reply_type_)
    throw std::invalid_argument("ring actor '" + name_ + "': incarnation of kernel '" + inc->kernel_name() +
                                "' has types " + type_name(inc->request_type()) + " -> " +
                                type_name(inc->reply_type()) + ", the actor " + type_name(request_type_) + " -> " +
                                type_name(reply_type_));
  if (inc->requests().config().is_v2() &&
      (!inc->replies().config().is_v2() || inc->replies().config().capacity != inc->requests().config().capacity))
    throw std::invalid_argument("ring actor '" + name_ + "': incarnation of kernel '" + inc->kernel_name() +
                                "' has protocol v2 request ring without a paired v2 response ring of equal capacity");
  if (const std::uint32_t sb = opts_.state.state_bytes; sb != 0 || inc->state_bytes() != 0) {
    if (inc->state_bytes() != sb)
      throw std::invalid_argument("ring actor '" + name_ + "': incarnation of kernel '" + inc->kernel_name() +
                                  "' on backend '" + inc->backend() + "' keeps " + std::to_string(inc->state_bytes()) +
                                  " bytes of kernel state, the actor " + std::to_string(sb) +
                                  (inc->state_bytes() == 0 ? " (this backend keeps no kernel state)" : ""));
    const std::uint32_t wire = sb + state_checksum_bytes;  // a snapshot or restore: the state, its checksum
    auto carries = [&](const ring_config& c) { return c.inline_capacity() >= wire || c.arena_bytes >= wire; };
    if (!carries(inc->requests().config()) || !carries(inc->replies().config()))
      throw std::invalid_argument("ring actor '" + name_ + "': the rings of kernel '" + inc->kernel_name() +
                                  "' cannot carry its " + std::to_string(sb) + "-byte state (snapshots and restores: " +
                                  std::to_string(wire) + " bytes): give both rings an arena of at least that");
  }
  std::lock_guard<std::mutex> lock(control_mu_);
  impl& m = *impl_;
  if (m.inc) throw std::logic_error("ring actor '" + name_ + "': attach while an incarnation is attached");
  if (stopping_.load(std::memory_order_acquire)) throw std::logic_error("ring actor '" + name_ + "' is stopped");
  // Both roles are ours: the publisher role is held while detached, and the poller skips a
  // detached core (attached_ is false).
  m.inc = std::move(inc);
  m.producer = ring_producer(m.inc->requests(), m.inc->request_producer_scratch());
  m.consumer = ring_consumer(m.inc->replies());
  if (m.inc->requests().config().is_v2()) {
    // Protocol v2 (a device ring): free request slots are counted from the replies this core
    // consumed, and replies are decoded into our own image of a slot.
    const ring_config rc = m.inc->replies().config();
    m.producer.use_credit_from(m.inc->replies());
    m.reply_image.assign(ll::image_bytes(rc.inline_capacity()) / sizeof(slot_header), slot_header{});
    (void)m.consumer.set_image_buffer(reinterpret_cast<std::uint8_t*>(m.reply_image.data()),
                                      static_cast<std::uint32_t>(m.reply_image.size() * sizeof(slot_header)));
  }
  m.max_payload.store(m.producer.max_payload(), std::memory_order_relaxed);
  // Replay: every request published into an earlier incarnation and not answered, oldest first,
  // ahead of anything that waited in carry/staging meanwhile. A stateful kernel: its journal
  // (restore, then every request since the snapshot, answered or not) is published first
  // (drain_journal); it holds every unanswered published request (the others below: none).
  std::vector<std::uint64_t> journaled;
  if (m.journal) {
    journaled = m.journal->rebuild(m.journal->next_control_id());
    std::sort(journaled.begin(), journaled.end());
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> replay;  // (seq, id)
  for (std::uint32_t i = 0; i <= m.mask; ++i) {
    impl::entry& e = m.entries[i];
    const std::uint64_t id = e.live_id.load(std::memory_order_acquire);
    if (id != 0 && e.published.load(std::memory_order_relaxed) &&
        !std::binary_search(journaled.begin(), journaled.end(), id))
      replay.emplace_back(e.seq, id);
  }
  std::sort(replay.begin(), replay.end());
  for (auto it = replay.rbegin(); it != replay.rend(); ++it) {
    impl::entry& e = m.entries[it->second & m.mask];
    e.refs.fetch_add(1, std::memory_order_relaxed);  // a staging reference again (entry is live: outbox ref held)
    m.carry.push_front(it->second);
  }
  m.staged.fetch_add(static_cast<std::int64_t>(replay.size()), std::memory_order_seq_cst);
  impl::bump(m.replayed, replay.size() + journaled.size());
  impl::bump(m.attaches);
  m.first_reply_ns.store(0, std::memory_order_relaxed);
  m.last_attach_ns.store(steady_now(), std::memory_order_relaxed);
  attached_.store(true, std::memory_order_release);
  m.inc->set_reply_sink(weak_from_this());  // empty when the core is not owned by a shared_ptr
  m.publishing.store(false, std::memory_order_seq_cst);
  publish_pending();
  poller_.bell().ring();
}

std::unique_ptr<incarnation> ring_core::detach() { return detach_impl(true); }
std::unique_ptr<incarnation> ring_core::detach_abandon() { return detach_impl(false); }

std::unique_ptr<incarnation> ring_core::detach_impl(bool drain) {
  std::lock_guard<std::mutex> lock(control_mu_);
  impl& m = *impl_;
  if (!m.inc) return nullptr;
  acquire_flag(m.publishing);  // 1. no more publishing (held until the next attach)
  m.inc->set_reply_sink({});   // the kernel completes no more callers itself (one in progress may finish)
  // 2. The kernel serves what is in its ring; the poller keeps consuming replies meanwhile.
  if (drain) m.inc->stop(opts_.stop_timeout);
  // 3. Take the reply side from the poller and harvest what the stopped kernel published.
  attached_.store(false, std::memory_order_release);
  acquire_flag(m.poll_busy);
  if (m.inc->finished()) consume_replies(~0u);
  m.consumer.publish();
  m.poll_busy.store(false, std::memory_order_release);
  // Entries of requests the kernel never answered stay live with published == true: replayed
  // by the next attach().
  m.producer = ring_producer();
  m.consumer = ring_consumer();
  impl::bump(m.detaches);
  return std::move(m.inc);
}

std::string ring_core::backend() const {
  std::lock_guard<std::mutex> lock(control_mu_);
  return impl_->inc ? impl_->inc->backend() : "";
}

incarnation_probe ring_core::probe() const {
  std::lock_guard<std::mutex> lock(control_mu_);
  incarnation_probe p;
  incarnation* inc = impl_->inc.get();
  if (!inc) return p;
  control_block& cb = inc->control();
  p.attached = true;
  p.backend = inc->backend();
  p.state = cb.current_state();
  p.error = cb.current_error();  // acquire: flags and detail below are the fault's
  if (p.error != kernel_error::none) {
    p.error_flags = load_relaxed(cb.error_flags);
    p.error_detail.assign(cb.error_detail, strnlen(cb.error_detail, control_block::detail_bytes));
  }
  p.epoch = load_relaxed(cb.epoch);
  p.heartbeat = cb.heartbeat_count();
  p.request_depth = ring_observer(inc->requests()).depth();
  p.reply_depth = ring_observer(inc->replies()).depth();
  if (impl_->journal) {
    const std::uint64_t awaiting = impl_->journal->awaiting();
    p.awaiting_replies = awaiting > p.request_depth + p.reply_depth ? awaiting - p.request_depth - p.reply_depth : 0;
  }
  p.identity = inc;
  return p;
}

std::shared_ptr<const state_handover> ring_core::handover() const {
  if (!impl_->journal || !stopped_.load(std::memory_order_acquire)) return nullptr;
  return std::make_shared<const state_handover>(impl_->journal->handover());
}

void ring_core::stop() {
  if (stopping_.exchange(true, std::memory_order_seq_cst)) {
    // Another thread stops it. A stateful core's successor takes over its journal (handover()):
    // return once the stop is complete, so no reply is taken after that.
    if (impl_->journal)
      while (!stopped_.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    return;
  }
  std::unique_ptr<incarnation> inc = detach();  // drains the kernel: served requests get replies
  inc.reset();
  // durability: reply — replies waiting for their journal commit are released (or failed) first.
  if (opts_.state.durable) opts_.state.durable->flush();
  std::lock_guard<std::mutex> lock(control_mu_);
  impl& m = *impl_;
  for (std::uint32_t i = 0; i <= m.mask; ++i) {
    const std::uint64_t id = m.entries[i].live_id.load(std::memory_order_acquire);
    if (id == 0 || !claim(id)) continue;
    impl::bump(m.stopped);
    answer(id, call_result{errc::stopped, {}, "ring actor '" + name_ + "' stopped before serving the request"});
  }
  // Drop the staging references of whatever never reached a ring (publisher role is ours).
  auto drop = [&](std::uint64_t id) {
    m.staged.fetch_sub(1, std::memory_order_relaxed);
    unref(static_cast<std::uint32_t>(id & m.mask));
  };
  while (!m.carry.empty()) {
    drop(m.carry.front());
    m.carry.pop_front();
  }
  std::uint64_t id = 0;
  while (m.staged.load(std::memory_order_seq_cst) > 0) {
    if (m.staging.try_dequeue(id)) drop(id);
    else sched_yield();  // a submitter between its enqueue and its count: it is about to finish
  }
  stopped_.store(true, std::memory_order_release);
}

}  // namespace ringflow

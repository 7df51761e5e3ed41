// The state journal of a stateful ring actor (ring_core; docs/KERNELS.md "Stateful kernels").
//
// A stateful kernel applies its requests to its incarnation's state in the order the ring actor
// publishes them. The journal keeps, in that order, every message published since the latest
// snapshot: the requests (their bytes, so they can be applied again) and the state requests the
// core injects (a restore first in every incarnation, a snapshot every `snapshot_every`
// requests). Replies come back in the same order, so the reply consumer walks the journal with a
// cursor and learns each request's outcome: applied, or not (deadline_exceeded: the only early
// rejection that depends on time). A snapshot's reply carries the state after every message
// before it: it becomes the latest snapshot and the journal forgets what it covers.
//
// A new incarnation (restart, reinitialize, reroute, fail-back, a new worker) gets: a restore of
// the latest snapshot (none yet: init), then every journaled request again, in order — applied
// ones with no deadline (they must be applied again, whatever the time), the others with their
// own — then what was never published. Replies of requests already answered find their entry
// claimed and are dropped (counted as journal replays). So each request's effect is in the state
// exactly once, given a deterministic handler.
//
// Thread-safety: one mutex. The publisher role appends, the reply consumer walks and trims,
// attach() rebuilds (both roles held).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/kernel.hpp"

namespace ringflow::detail {

struct journal_record {
  enum kind_t : std::uint8_t { request = 0, snapshot = 1, restore = 2 };
  enum outcome_t : std::uint8_t { pending = 0, applied = 1, not_applied = 2 };
  std::uint64_t id = 0;  // correlation id (state requests: a control id, bits 32..63 zero)
  std::uint64_t deadline = 0;
  std::vector<std::uint8_t> bytes;  // the request's payload (restore: the state)
  kind_t kind = request;
  outcome_t outcome = pending;
  bool replay_of_applied = false;  // published again after it was applied in an earlier incarnation
};

/// state.verify: a new snapshot to check on the host (ring_core runs it outside the journal's lock):
/// `from` (the previous snapshot's state; empty: init()) with `requests` applied in order must give
/// `want`; they cover the requests `first` .. `last` (as requests_covered counts them).
struct verify_job {
  std::vector<std::uint8_t> from, want;
  std::vector<std::vector<std::uint8_t>> requests;
  std::uint64_t first = 0, last = 0;
};

/// What a reply was, for the reply consumer.
struct journal_reply {
  bool control = false;         // a reply to a state request: not for any caller
  bool restore_failed = false;  // the incarnation's state is not the snapshot: it must not serve
  bool unsound = false;         // a request's reply from an incarnation whose restore failed
  bool replay_of_applied = false;
  /// A request applied for the first time: its apply sequence (initial_covered + n); 0 otherwise.
  std::uint64_t applied_seq = 0;
  /// A snapshot taken with verify on: the check to run.
  std::optional<verify_job> verify;
};

class state_journal {
 public:
  state_journal(std::uint32_t state_bytes, std::uint32_t snapshot_every, std::uint32_t journal_max,
                std::uint64_t snapshot_interval_ns, const std::vector<std::uint8_t>& initial = {},
                std::uint64_t initial_covered = 0, const state_handover* from = nullptr, bool verify = false);
  /// What a successor takes over (ring_core::handover()).
  state_handover handover() const;

  /// Control ids never collide with a request's (those have a generation >= 1 in bits 32..63).
  static bool is_control_id(std::uint64_t id) noexcept { return (id >> 32) == 0; }

  // ---- publisher ---------------------------------------------------------------------------
  /// Requests cannot be published now: the journal is full (a snapshot reply will make room).
  bool full() const;
  /// True once per incarnation when the journal is full and this incarnation's snapshots cannot
  /// be trusted (a bad or missing reply, a failed restore): only a new incarnation makes room.
  bool stuck();
  /// Messages in the current incarnation's ring or kernel whose replies have not come.
  std::uint64_t awaiting() const;
  /// The next message to publish before anything new (a rebuilt journal after attach), or none.
  /// `deadline` as the replay wants it; replayed_one() once it is in the ring.
  struct replay_item {
    std::uint64_t id, deadline;
    type_id type;  // 0: the kernel's request type
    std::vector<std::uint8_t> bytes;
    bool replay_of_applied;
  };
  std::optional<replay_item> next_replay() const;
  /// Records of a rebuilt journal not yet in the ring (lock-free: the poller's retry check).
  bool replay_pending() const noexcept { return replay_pending_.load(std::memory_order_acquire); }
  /// A snapshot was asked for (request_snapshot(), or a failed one) and not yet published
  /// (lock-free: the poller's retry check; snapshot_due() decides whether it can go now).
  bool snapshot_wanted() const noexcept { return wanted_flag_.load(std::memory_order_acquire); }
  /// The item next_replay() gave goes into the ring (called before the push: its reply may come
  /// at once); unreplay() when the push failed.
  void replaying_one();
  void unreplay();
  void drop_next_replay();  // the next item can never go into this incarnation's ring
  /// A request goes into the ring (called before the push); retract_last() when the push failed.
  void publishing(std::uint64_t id, std::uint64_t deadline, const std::uint8_t* data, std::size_t size);
  /// A snapshot request is due: snapshot_every requests since the last one, or the interval
  /// passed with requests since it, or request_snapshot(), or the journal is full.
  bool snapshot_due() const;
  /// The snapshot request `id` goes into the ring (before the push; retract_last() on failure).
  void publishing_snapshot(std::uint64_t id);
  void retract_last();
  /// Returns the snapshot count (view::snapshots) that, once reached, includes a snapshot taken
  /// after this call.
  std::uint64_t request_snapshot();
  std::uint64_t next_control_id();

  // ---- reply consumer ----------------------------------------------------------------------
  /// Reply `id` arrived (status, type, payload as read); `sound`: it passed the core's checks.
  journal_reply on_reply(std::uint64_t id, std::uint16_t st, type_id type, const std::vector<std::uint8_t>& payload,
                         bool sound);

  // ---- attach ------------------------------------------------------------------------------
  /// Rebuilds the journal for a new incarnation: restore(latest snapshot), then the requests
  /// (see the header). Returns the ids of the requests it will publish again.
  std::vector<std::uint64_t> rebuild(std::uint64_t restore_id);

  // ---- reading -----------------------------------------------------------------------------
  struct view {
    std::vector<std::uint8_t> snapshot;  // empty: none yet (the state is init())
    std::uint64_t snapshots = 0;         // snapshots taken (replies received)
    std::uint64_t requests_covered = 0;  // requests whose effect the snapshot holds
    std::uint64_t snapshot_ns = 0;       // steady ns when it arrived (0: none)
    std::uint32_t depth = 0;             // records in the journal now
    std::uint64_t restores = 0;          // incarnations restored
  };
  /// `with_snapshot` false: the counters only (no copy of the state).
  view read(bool with_snapshot = true) const;
  std::uint32_t state_bytes() const noexcept { return state_bytes_; }

 private:
  const std::uint32_t state_bytes_, snapshot_every_, journal_max_;
  const std::uint64_t interval_ns_;       // 0: no time-based snapshots
  const bool verify_;                     // state.verify: snapshots come with a verify_job
  std::uint64_t last_snapshot_sent_ = 0;  // steady ns of the latest snapshot request
  mutable std::mutex mu_;
  std::deque<journal_record> records_;  // publish order since the latest snapshot
  std::size_t cursor_ = 0;              // the record the next reply answers
  std::size_t replay_ = 0;              // records below this are in the current incarnation's ring
  std::uint32_t since_snapshot_ = 0;    // requests published since the last snapshot request
  bool snapshot_wanted_ = false;
  std::uint32_t since_before_snapshot_ = 0;  // for retract_last() of a snapshot request
  bool tainted_ = false;  // a bad or missing reply in this incarnation: its snapshots are not trusted
  bool unsound_ = false;  // its restore failed: none of its replies may reach a caller
  bool stuck_reported_ = false;
  std::uint32_t snapshots_in_flight_ = 0;    // snapshot requests in the current ring, no reply yet
  std::atomic<bool> replay_pending_{false};  // replay_ < records_.size() after a rebuild
  std::atomic<bool> wanted_flag_{false};     // snapshot_wanted_, readable without the lock
  void want_snapshot(bool w) {
    snapshot_wanted_ = w;
    wanted_flag_.store(w, std::memory_order_release);
  }
  void note_replay() { replay_pending_.store(replay_ < records_.size(), std::memory_order_release); }
  std::uint64_t control_ = 0;
  std::vector<std::uint8_t> snapshot_;
  std::uint64_t snapshots_ = 0, covered_ = 0, snapshot_ns_ = 0, restores_ = 0;
  std::uint64_t applied_ = 0;  // requests applied for the first time (from initial_covered)
};

}  // namespace ringflow::detail

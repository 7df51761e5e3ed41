// The state journal of a stateful ring actor: see state_journal.hpp.
#include "state_journal.hpp"

#include "ringflow/actors/fb_msg.hpp"

namespace ringflow::detail {

state_journal::state_journal(std::uint32_t state_bytes, std::uint32_t snapshot_every, std::uint32_t journal_max,
                             std::uint64_t snapshot_interval_ns, const std::vector<std::uint8_t>& initial,
                             std::uint64_t initial_covered, const state_handover* from, bool verify)
    : state_bytes_(state_bytes),
      snapshot_every_(snapshot_every),
      journal_max_(journal_max),
      interval_ns_(snapshot_interval_ns),
      verify_(verify),
      covered_(initial_covered),
      applied_(initial_covered) {
  if (from) {
    // A predecessor's state: its snapshot, and what it applied since, replayed as applied (their
    // replies dropped). Their ids are out of reach of this core's outbox: generation 0xffffffff
    // is far beyond what a new core's entries reach (and is no control id).
    snapshot_ = from->snapshot;
    covered_ = from->covered;
    applied_ = from->applied;
    std::uint64_t k = 0;
    for (const std::vector<std::uint8_t>& b : from->since) {
      journal_record r;
      r.id = (0xffffffffull << 32) | k++;
      r.bytes = b;
      r.outcome = journal_record::applied;
      records_.push_back(std::move(r));
    }
    replay_ = records_.size();
    return;
  }
  if (initial.empty()) return;
  // A resumed state (a durable checkpoint): the first incarnation's restore carries it, with the
  // checksum a snapshot reply would have.
  snapshot_ = initial;
  const std::uint64_t h = state_checksum(initial.data(), static_cast<std::uint32_t>(initial.size()));
  for (std::uint32_t i = 0; i < state_checksum_bytes; ++i) snapshot_.push_back(static_cast<std::uint8_t>(h >> (8 * i)));
}

bool state_journal::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.size() >= journal_max_;
}

std::optional<state_journal::replay_item> state_journal::next_replay() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (replay_ >= records_.size()) return std::nullopt;
  const journal_record& r = records_[replay_];
  replay_item it;
  it.id = r.id;
  // An applied request must be applied again whatever the time: no deadline (the kernel's only
  // time-dependent rejection). One never applied keeps its own.
  it.deadline = r.replay_of_applied ? 0 : r.deadline;
  it.type = r.kind == journal_record::restore ? state_restore_type : 0;
  it.bytes = r.bytes;
  it.replay_of_applied = r.replay_of_applied;
  return it;
}

void state_journal::replaying_one() {
  std::lock_guard<std::mutex> lock(mu_);
  if (replay_ < records_.size()) ++replay_;
  note_replay();
}

void state_journal::unreplay() {
  std::lock_guard<std::mutex> lock(mu_);
  if (replay_ > cursor_) --replay_;
  note_replay();
}

void state_journal::drop_next_replay() {
  std::lock_guard<std::mutex> lock(mu_);
  if (replay_ < records_.size()) records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(replay_));
  note_replay();
}

void state_journal::retract_last() {
  std::lock_guard<std::mutex> lock(mu_);
  if (records_.size() <= cursor_) return;  // (never: the last record's push failed, no reply can name it)
  if (records_.back().kind == journal_record::snapshot) {
    since_snapshot_ = since_before_snapshot_;
    want_snapshot(true);
    if (snapshots_in_flight_ > 0) --snapshots_in_flight_;
  } else if (since_snapshot_ > 0) {
    --since_snapshot_;
  }
  records_.pop_back();
  replay_ = records_.size();
}

void state_journal::publishing(std::uint64_t id, std::uint64_t deadline, const std::uint8_t* data, std::size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  journal_record r;
  r.id = id;
  r.deadline = deadline;
  r.bytes.assign(data, data + size);
  records_.push_back(std::move(r));
  replay_ = records_.size();
  ++since_snapshot_;
}

bool state_journal::snapshot_due() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (tainted_ || unsound_ || replay_ != records_.size()) return false;
  if (since_snapshot_ >= snapshot_every_) return true;
  if (interval_ns_ && since_snapshot_ > 0 && snapshots_in_flight_ == 0 &&
      steady_now() - last_snapshot_sent_ >= interval_ns_)
    return true;
  // Asked for, or the journal is full (only a snapshot makes room: one failed on the way, say),
  // and none is on its way.
  return snapshots_in_flight_ == 0 && (snapshot_wanted_ || records_.size() >= journal_max_);
}

void state_journal::publishing_snapshot(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  since_before_snapshot_ = since_snapshot_;
  ++snapshots_in_flight_;
  last_snapshot_sent_ = steady_now();
  journal_record r;
  r.id = id;
  r.kind = journal_record::snapshot;
  records_.push_back(std::move(r));
  replay_ = records_.size();
  since_snapshot_ = 0;
  want_snapshot(false);
}

std::uint64_t state_journal::request_snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  want_snapshot(true);
  // Snapshots on their way were asked for before: ours goes after them (snapshot_due()).
  return snapshots_ + snapshots_in_flight_ + 1;
}

std::uint64_t state_journal::next_control_id() {
  std::lock_guard<std::mutex> lock(mu_);
  control_ = (control_ + 1) & 0xffffffffull;
  if (control_ == 0) control_ = 1;
  return control_;
}

journal_reply state_journal::on_reply(std::uint64_t id, std::uint16_t st, type_id type,
                                      const std::vector<std::uint8_t>& payload, bool sound) {
  std::lock_guard<std::mutex> lock(mu_);
  journal_reply out;
  out.control = is_control_id(id);
  std::size_t i = cursor_;
  while (i < replay_ && records_[i].id != id) ++i;
  if (i >= replay_) return out;  // not a message of this journal (a stray reply): nothing learnt
  // Records skipped have no reply from this incarnation: their outcome is unknown, so no later
  // snapshot of it may stand for them.
  if (i > cursor_) tainted_ = true;
  cursor_ = i + 1;
  journal_record& r = records_[i];
  out.replay_of_applied = r.replay_of_applied;
  switch (r.kind) {
    case journal_record::request:
      if (!sound) {
        tainted_ = true;  // applied or not: unknown; the record stays for the next incarnation
      } else if (!unsound_) {
        r.outcome = st == static_cast<std::uint16_t>(status::deadline_exceeded) ? journal_record::not_applied
                                                                                : journal_record::applied;
        if (r.outcome == journal_record::applied && !r.replay_of_applied) out.applied_seq = ++applied_;
      }
      out.unsound = unsound_;
      return out;
    case journal_record::restore:
      if (!sound || st != static_cast<std::uint16_t>(status::ok) || type != state_restore_type) {
        unsound_ = true;
        out.restore_failed = true;
      }
      return out;
    case journal_record::snapshot:
      if (snapshots_in_flight_ > 0) --snapshots_in_flight_;
      break;
  }
  // The state and its checksum (a reply corrupted on the way is not a snapshot).
  if (tainted_ || unsound_ || !sound || st != static_cast<std::uint16_t>(status::ok) || type != state_snapshot_type ||
      payload.size() != state_bytes_ + state_checksum_bytes ||
      !state_intact(payload.data(), static_cast<std::uint32_t>(payload.size()))) {
    want_snapshot(true);  // failed (an error reply, a reply damaged on the way): another soon
    return out;
  }
  // The state after every message before this one: the journal forgets them.
  if (verify_) {
    // The previous snapshot (this journal's base: every restore since restored it) and what this
    // incarnation applied on top of it, in order, must give the new one.
    verify_job job;
    if (!snapshot_.empty()) job.from.assign(snapshot_.begin(), snapshot_.begin() + state_bytes_);
    job.want.assign(payload.begin(), payload.begin() + state_bytes_);
    for (std::size_t k = 0; k < i; ++k)
      if (records_[k].kind == journal_record::request && records_[k].outcome == journal_record::applied)
        job.requests.push_back(records_[k].bytes);
    job.first = covered_ + 1;
    job.last = covered_ + job.requests.size();
    out.verify = std::move(job);
  }
  snapshot_ = payload;
  ++snapshots_;
  snapshot_ns_ = steady_now();
  for (std::size_t k = 0; k < i; ++k)
    if (records_[k].kind == journal_record::request && records_[k].outcome == journal_record::applied) ++covered_;
  records_.erase(records_.begin(), records_.begin() + static_cast<std::ptrdiff_t>(i + 1));
  cursor_ -= i + 1;
  replay_ -= i + 1;
  return out;
}

std::vector<std::uint64_t> state_journal::rebuild(std::uint64_t restore_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::deque<journal_record> next;
  journal_record restore;
  restore.id = restore_id;
  restore.kind = journal_record::restore;
  restore.bytes = snapshot_;  // empty: the kernel's init()
  next.push_back(std::move(restore));
  std::vector<std::uint64_t> ids;
  std::uint32_t requests = 0;
  for (journal_record& r : records_) {
    if (r.kind != journal_record::request || r.outcome == journal_record::not_applied) continue;
    journal_record c = std::move(r);
    c.replay_of_applied = c.replay_of_applied || c.outcome == journal_record::applied;
    c.outcome = journal_record::pending;
    ids.push_back(c.id);
    next.push_back(std::move(c));
    ++requests;
  }
  records_ = std::move(next);
  cursor_ = 0;
  replay_ = 0;
  note_replay();
  since_snapshot_ = requests;
  tainted_ = false;
  unsound_ = false;
  stuck_reported_ = false;
  snapshots_in_flight_ = 0;
  ++restores_;
  return ids;
}

std::uint64_t state_journal::awaiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return replay_ - cursor_;
}

bool state_journal::stuck() {
  std::lock_guard<std::mutex> lock(mu_);
  if (records_.size() < journal_max_ || !(tainted_ || unsound_) || stuck_reported_) return false;
  stuck_reported_ = true;
  return true;
}

state_handover state_journal::handover() const {
  std::lock_guard<std::mutex> lock(mu_);
  state_handover h;
  h.snapshot = snapshot_;
  h.covered = covered_;
  h.applied = applied_;
  // Applied: answered in this incarnation, or in an earlier one (a replay whose reply had not come
  // when the kernel was abandoned). The others were never applied: stop() answers them `stopped`.
  for (const journal_record& r : records_)
    if (r.kind == journal_record::request && (r.outcome == journal_record::applied || r.replay_of_applied))
      h.since.push_back(r.bytes);
  return h;
}

state_journal::view state_journal::read(bool with_snapshot) const {
  std::lock_guard<std::mutex> lock(mu_);
  view v;
  if (with_snapshot && !snapshot_.empty()) v.snapshot.assign(snapshot_.begin(), snapshot_.begin() + state_bytes_);
  v.snapshots = snapshots_;
  v.requests_covered = covered_;
  v.snapshot_ns = snapshot_ns_;
  v.depth = static_cast<std::uint32_t>(records_.size());
  v.restores = restores_;
  return v;
}

}  // namespace ringflow::detail

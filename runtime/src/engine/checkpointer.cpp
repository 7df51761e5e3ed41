// The checkpointer: see checkpointer.hpp.
#include "checkpointer.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ringflow/runtime/engine.hpp"

namespace ringflow::ops::engine_parts {

namespace {

std::uint64_t unix_ms_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

constexpr std::uint64_t ms_ns = 1000000u;

}  // namespace

void checkpointer::resume(const node_spec& n, const std::string& ring, const kernel_info& k, bool discard,
                          ring_actor_options::state_options& into, const std::string& who, std::uint32_t wait_ms) {
  auto c = std::make_unique<node_ckpt>(checkpoint_store(n.checkpoint_path, ring));
  node_ckpt& ck = *c;
  ck.node = n.name;
  ck.ring = ring;
  ck.kernel = k.name;
  ck.state_bytes = k.state_bytes;
  ck.info = &k;
  ck.every_ms = n.checkpoint_every_ms;
  if (std::string why = ck.store.prepare(); !why.empty()) throw engine_error("node '" + n.name + "': " + why);
  // One writer per state: taken before anything is read, held until the final checkpoint.
  std::string why = ck.owner.acquire(ck.store.dir(), ring, who);
  if (!why.empty() && wait_ms > 0) {
    // Held by the member that took the node over: ask for it back and wait (it hands it back
    // with a last checkpoint, then releases the lock).
    const std::filesystem::path want = ck.store.dir() / (ring + ".want");
    { std::ofstream(want) << who << "\n"; }
    log_.info("checkpoint", "node " + n.name + ": its state is held by another member; asked for it back",
              {{"node", n.name}, {"holder", why}, {"wait_ms", wait_ms}});
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!(why = ck.owner.acquire(ck.store.dir(), ring, who)).empty() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::error_code ec;  // fresh while this member waits (a stale one is ignored: standby_hooks)
      std::filesystem::last_write_time(want, std::filesystem::file_time_type::clock::now(), ec);
    }
    if (why.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      wants_.push_back(want);  // removed once this member serves again (clear_wants)
    } else {
      std::error_code ec;
      std::filesystem::remove(want, ec);
      why += " (not handed back within " + std::to_string(wait_ms) + " ms)";
    }
  }
  if (!why.empty()) throw engine_error("node '" + n.name + "': " + why);
  checkpoint_store::loaded l = ck.store.load();
  for (const std::string& r : l.refused)
    log_.warn("checkpoint", "node " + n.name + ": a checkpoint file is unusable (torn or corrupt): " + r,
              {{"node", n.name}, {"refused", r}});
  auto refuse_or_discard = [&](const std::string& what) {
    if (!discard) throw engine_error(what + " (start with --discard-checkpoints to start from init)");
    std::string err;
    std::vector<std::string> moved = ck.store.discard(err);
    if (err.empty()) discard_journal(ck, moved, err);  // its requests follow the discarded state
    if (!err.empty()) throw engine_error("node '" + n.name + "': cannot discard its checkpoints: " + err);
    log_.audit("checkpoints discarded (--discard-checkpoints)", {{"node", n.name}, {"why", what}, {"moved_to", moved}});
    l.cp.reset();
  };
  if (l.cp && (l.cp->kernel != k.name || l.cp->state_bytes != k.state_bytes))
    refuse_or_discard("node '" + n.name + "': the checkpoint " + l.from.string() + " holds kernel '" + l.cp->kernel +
                      "' with " + std::to_string(l.cp->state_bytes) + " bytes of state, the node runs '" + k.name +
                      "' with " + std::to_string(k.state_bytes));
  else if (!l.cp && !l.refused.empty())
    refuse_or_discard("node '" + n.name + "': no checkpoint file in " + ck.store.dir().string() +
                      " is usable, so its state is unknown");
  std::vector<std::uint8_t> state;
  std::uint64_t covered = 0;
  if (l.cp) {
    state = std::move(l.cp->state);
    covered = l.cp->requests_covered;
    ck.sequence = l.cp->sequence;
    log_.info("checkpoint", "node " + n.name + " resumes from its checkpoint",
              {{"node", n.name},
               {"file", l.from.string()},
               {"sequence", l.cp->sequence},
               {"requests_covered", covered},
               {"written_unix_ms", l.cp->written_unix_ms}});
  } else {
    log_.info("checkpoint", "node " + n.name + " has no checkpoint yet: it starts from the kernel's init()",
              {{"node", n.name}, {"dir", ck.store.dir().string()}});
  }
  if (n.durability == "reply") fold_journal(ck, k, discard, state, covered);
  ck.written_covered = covered;
  into.initial = std::move(state);
  into.initial_covered = covered;
  into.durable = ck.journal;
  std::lock_guard<std::mutex> lock(mu_);
  ck.due_ns = steady_now() + ck.every_ms * ms_ns;
  nodes_.push_back(std::move(c));
}

void checkpointer::clear_wants() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::filesystem::path& w : wants_) {
    std::error_code ec;
    std::filesystem::remove(w, ec);
  }
  wants_.clear();
}

bool checkpointer::wanted_back(const std::string& ring) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& n : nodes_)
    if (n->ring == ring) {
      std::error_code ec;
      return std::filesystem::exists(n->store.dir() / (ring + ".want"), ec);
    }
  return false;
}

void checkpointer::hand_back(const std::string& ring, const std::shared_ptr<ring_core>& core) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->ring == ring; });
  if (it == nodes_.end()) return;
  node_ckpt& n = **it;
  final_one(n, core);
  if (n.journal) n.journal->stop();
  n.owner.release();
  log_.info("checkpoint", "node " + n.node + ": handed back (last checkpoint written, lock released)",
            {{"node", n.node}, {"requests_covered", n.written_covered}});
  nodes_.erase(it);
}

void checkpointer::discard_journal(const node_ckpt& ck, std::vector<std::string>& moved, std::string& err) {
  const std::filesystem::path file = ck.store.dir() / (ck.ring + ".journal");
  std::filesystem::path to = file;
  to += ".discarded";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return;
  std::filesystem::rename(file, to, ec);
  if (ec) err = "rename " + file.string() + ": " + ec.message();
  else moved.push_back(to.string());
}

// durability: reply — the requests the journal holds after the checkpoint go into the state (the
// kernel's handler on the host, in their order), and the journal is opened on.
void checkpointer::fold_journal(node_ckpt& ck, const kernel_info& k, bool discard, std::vector<std::uint8_t>& state,
                                std::uint64_t& covered) {
  if (!k.apply_state || !k.init_state)
    throw engine_error("node '" + ck.node + "': kernel '" + k.name +
                       "' cannot be applied on the host (durability: reply)");
  std::filesystem::path file = ck.store.dir() / (ck.ring + ".journal");
  journal_contents j = read_journal(file);
  if (j.present && !j.note.empty())
    log_.warn("checkpoint",
              "node " + ck.node + ": the journal ends early (a torn tail is what a crash leaves): " + j.note,
              {{"node", ck.node}, {"file", file.string()}, {"note", j.note}});
  const std::uint64_t checkpoint_covered = covered;
  std::vector<journal_entry> tail;
  if (j.present && j.base > covered && !j.entries.empty()) {
    const std::string what = "node '" + ck.node + "': its journal starts after request " + std::to_string(j.base) +
                             ", its checkpoint holds " + std::to_string(covered) + " (requests between are lost)";
    if (!discard) throw engine_error(what + " (start with --discard-checkpoints to go on without them)");
    std::vector<std::string> moved;
    std::string err;
    discard_journal(ck, moved, err);
    if (!err.empty()) throw engine_error("node '" + ck.node + "': cannot discard its journal: " + err);
    log_.audit("journal discarded (--discard-checkpoints)", {{"node", ck.node}, {"why", what}, {"moved_to", moved}});
  } else {
    if (state.empty()) {
      state.assign(k.state_bytes, 0);
      k.init_state(state.data());
    }
    for (journal_entry& e : j.entries) {
      if (e.seq <= covered) continue;  // in the checkpoint already
      k.apply_state(state.data(), e.bytes.data(), static_cast<std::uint32_t>(e.bytes.size()));
      covered = e.seq;
      tail.push_back(std::move(e));
    }
    if (!tail.empty())
      log_.info("checkpoint", "node " + ck.node + ": folded its journal into the checkpoint's state",
                {{"node", ck.node}, {"from", checkpoint_covered + 1}, {"to", covered}});
  }
  node_ckpt* self = &ck;
  ck.journal = std::make_shared<reply_journal>(file, [this, self](const std::string& why) {
    const std::uint64_t f = self->failures.fetch_add(1, std::memory_order_relaxed) + 1;
    log_.error(
        "checkpoint",
        "node " + self->node + ": a journal commit failed: the replies waiting for it answer unavailable: " + why,
        {{"node", self->node}, {"error", why}, {"failures", f}});
  });
  if (std::string why = ck.journal->open(checkpoint_covered, std::move(tail)); !why.empty())
    throw engine_error("node '" + ck.node + "': cannot open its journal: " + why);
}

void checkpointer::start(core_lookup lookup) {
  if ((nodes_.empty() && !takeovers_) || thread_.joinable()) return;
  std::lock_guard<std::mutex> lock(mu_);  // a takeover may add a node meanwhile (resume)
  lookup_ = std::move(lookup);
  const std::uint64_t now = steady_now();
  for (auto& n : nodes_) n->due_ns = now + n->every_ms * ms_ns;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void checkpointer::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(2));
    if (stop_) break;
    const std::uint64_t now = steady_now();
    for (auto& n : nodes_)
      if (std::shared_ptr<ring_core> core = lookup_(n->ring)) (void)step(*n, core, now, false);
  }
}

bool checkpointer::step(node_ckpt& n, const std::shared_ptr<ring_core>& core, std::uint64_t now, bool force) {
  if (core.get() != n.core) {  // a new ring actor (an OTP restart): ask it afresh
    n.core = core.get();
    n.asked = false;
  }
  if (!n.asked) {
    if (!force && now < n.due_ns) return false;
    n.asked_at = core->request_snapshot();
    n.asked_ns = now;
    n.asked = true;
    return false;
  }
  // The counters first (no copy of the state) until the snapshot asked for has come.
  std::optional<state_view> v;
  if (core->stats().snapshots < n.asked_at || !(v = core->state()) || v->snapshots < n.asked_at) {
    // Not yet. A snapshot that never comes (a faulted kernel the ladder is replacing) is asked
    // for again after a period.
    if (now - n.asked_ns > std::max<std::uint64_t>(n.every_ms, 1000) * ms_ns) n.asked = false;
    return false;
  }
  if (!v->bytes.empty()) write(n, *v);
  n.asked = false;
  n.due_ns = now + n.every_ms * ms_ns;
  return true;
}

void checkpointer::write(node_ckpt& n, const state_view& v) {
  if (n.written_any && v.requests_covered == n.written_covered) return;  // nothing new since
  checkpoint c;
  c.kernel = n.kernel;
  c.state_bytes = n.state_bytes;
  c.sequence = n.sequence + 1;
  c.requests_covered = v.requests_covered;
  c.written_unix_ms = unix_ms_now();
  c.state = v.bytes;
  if (std::string why = n.store.write(c); !why.empty()) {
    const std::uint64_t f = n.failures.fetch_add(1, std::memory_order_relaxed) + 1;
    log_.error("checkpoint", "node " + n.node + ": writing a checkpoint failed (the previous one stays valid): " + why,
               {{"node", n.node}, {"error", why}, {"failures", f}, {"sequence", c.sequence}});
    return;
  }
  n.sequence = c.sequence;
  n.written_covered = v.requests_covered;
  if (n.journal) n.journal->checkpointed(v.requests_covered);  // the journal may forget what it holds
  n.written_any = true;
  n.writes.fetch_add(1, std::memory_order_relaxed);
  n.last_unix_ms.store(c.written_unix_ms, std::memory_order_relaxed);
  log_.write(log_level::debug, "checkpoint", "node " + n.node + ": checkpoint written",
             {{"node", n.node}, {"sequence", c.sequence}, {"requests_covered", c.requests_covered}});
}

void checkpointer::final_one(node_ckpt& n, const std::shared_ptr<ring_core>& core) {
  if (core) core->stop();  // stopped by its actor's end already, or now (a stateful stop waits for it)
  const std::shared_ptr<const state_handover> h = core ? core->handover() : nullptr;
  if (!h || !n.info || !n.info->apply_state || !n.info->init_state) {
    log_.warn("checkpoint", "node " + n.node + ": no final checkpoint (its ring actor did not stop cleanly)",
              {{"node", n.node}});
    return;
  }
  state_view v;
  v.bytes.assign(n.state_bytes, 0);
  if (h->snapshot.size() >= n.state_bytes) std::copy_n(h->snapshot.begin(), n.state_bytes, v.bytes.begin());
  else n.info->init_state(v.bytes.data());
  for (const std::vector<std::uint8_t>& r : h->since)
    n.info->apply_state(v.bytes.data(), r.data(), static_cast<std::uint32_t>(r.size()));
  v.requests_covered = h->covered + h->since.size();
  write(n, v);
}

void checkpointer::final_checkpoint(const core_lookup& stopped_core) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& n : nodes_) final_one(*n, stopped_core(n->ring));
  // Nothing more is written: another incarnation may take the nodes now.
  for (auto& n : nodes_) {
    if (n->journal) n->journal->stop();
    n->owner.release();
  }
}

void checkpointer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<checkpoint_view> checkpointer::views() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<checkpoint_view> out;
  for (const auto& n : nodes_)
    out.push_back({n->ring, n->writes.load(std::memory_order_relaxed), n->failures.load(std::memory_order_relaxed),
                   n->last_unix_ms.load(std::memory_order_relaxed)});
  return out;
}

}  // namespace ringflow::ops::engine_parts

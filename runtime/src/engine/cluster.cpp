// Cluster (part of the engine): see cluster.hpp.
#include "cluster.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include "ringflow/actors/errors.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/prometheus.hpp"

namespace ringflow::ops::engine_parts {

namespace {

using hello_atom = caf::atom_constant<caf::atom("rf_hello")>;
using welcome_atom = caf::atom_constant<caf::atom("rf_welcome")>;
using refuse_atom = caf::atom_constant<caf::atom("rf_refuse")>;
using ping_atom = caf::atom_constant<caf::atom("rf_ping")>;
using pong_atom = caf::atom_constant<caf::atom("rf_pong")>;
using req_atom = caf::atom_constant<caf::atom("rf_req")>;
using rep_atom = caf::atom_constant<caf::atom("rf_rep")>;
using connected_atom = caf::atom_constant<caf::atom("rf_conn")>;
using tick_atom = caf::atom_constant<caf::atom("rf_tick")>;
using req_batch_atom = caf::atom_constant<caf::atom("rf_reqs")>;
using rep_batch_atom = caf::atom_constant<caf::atom("rf_reps")>;
using flush_atom = caf::atom_constant<caf::atom("rf_flush")>;

constexpr std::size_t dedupe_window = 65536;
constexpr std::uint64_t default_budget_ns = 10'000'000'000ull;  // a request without a deadline: 10 s

std::uint64_t fresh_epoch() {
  std::random_device rd;
  const auto wall = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const std::uint64_t e = wall ^ (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return e ? e : 1;
}

graph_result error_result(errc code, std::string detail) {
  graph_result r;
  r.code = code;
  r.detail = std::move(detail);
  return r;
}

bool write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << text;
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

namespace {
// The link whose replies this thread is delivering (its link actor's handler): requests that the
// replies' callbacks send to the same member wait in its `pending` and leave as one batch when the
// handler ends, instead of one middleman message each.
thread_local cluster_member::peer* batching_for = nullptr;
}  // namespace

// ---- a link to one member (the calling side) ---------------------------------------------------

struct outbox_entry {
  const node_spec* node = nullptr;
  fb_msg msg;  // kept for a replay (its deadline absolute, this host's clock)
  std::function<void(graph_result)> done;
  std::uint64_t epoch = 0;  // the incarnation it was sent to
  std::uint64_t expire_ns = 0;
};

struct cluster_member::peer {
  cluster_member* owner = nullptr;
  const member_spec* spec = nullptr;
  caf::actor link;  // the local link actor (sender of every request, receiver of the replies)

  mutable std::mutex mu;  // everything below
  caf::actor remote;      // the member's actor (a middleman proxy) once its hello completed
  caf::actor candidate;   // connected, hello sent, no welcome yet
  std::uint64_t candidate_since_ns = 0;
  bool up = false, was_lost = false, ever_up = false;
  bool refused = false;  // its last hello was refused (a start fails at once on it)
  // The breaker (member_breaker_settings): recent losses, open until, the probe's grace period.
  std::deque<std::uint64_t> losses_at;
  std::uint64_t open_until_ns = 0, probe_until_ns = 0;
  std::uint64_t cooldown_ms = 0;  // the last cool-down (0: none yet)
  std::uint64_t epoch = 0;        // the remote incarnation
  std::string last_error = "not connected yet";
  std::unordered_map<std::uint64_t, outbox_entry> outbox;
  std::vector<remote_req> pending;   // sent by reply callbacks in the link actor: flushed as one batch
  std::vector<outbox_entry> parked;  // for this member while it is not up (its fallback said "moved")
  std::uint64_t next_corr = 1;
  std::uint64_t last_pong_ns = 0;
  std::uint64_t last_ping_ns = 0;
  std::uint64_t next_attempt_ns = 0;
  peer_stats st;

  event_log& log() const { return owner->log_; }
  void count_failback() const { owner->failbacks_.fetch_add(1, std::memory_order_relaxed); }

  /// Sends `m` of node `n` to the member; false (nothing taken) when its link is not up.
  bool submit(const node_spec& n, fb_msg& m, std::function<void(graph_result)>& done) {
    const std::uint64_t now = steady_now();
    std::uint64_t corr = 0, ep = 0;
    std::int64_t budget = 0;
    caf::actor to;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!up) return false;
      corr = next_corr++;
      ep = epoch;
      to = remote;
      const std::uint64_t deadline = m.deadline_ns ? m.deadline_ns : now + default_budget_ns;
      budget = deadline > now ? static_cast<std::int64_t>(deadline - now) : 1;
      outbox_entry e;
      e.node = &n;
      e.msg = m;
      e.done = std::move(done);
      e.epoch = ep;
      e.expire_ns = deadline + std::uint64_t{owner->topo_.cluster.timeout_ms} * 1'000'000ull;
      outbox.emplace(corr, std::move(e));
      ++st.requests;
      st.bytes_sent += m.bytes.size();
    }
    fb_msg wire = std::move(m);
    wire.deadline_ns = 0;        // clocks differ between machines: the budget crosses instead
    if (batching_for == this) {  // in the link actor's reply handler: leaves with the others (flush)
      std::lock_guard<std::mutex> lock(mu);
      if (up && epoch == ep) {
        pending.push_back(remote_req{corr, n.name, budget, std::move(wire)});
        return true;
      }
      // Lost in between: the entry went to the fallback with the outbox (lose()).
      return true;
    }
    caf::send_as(link, to, req_atom::value, owner->epoch_, corr, n.name, budget, std::move(wire));
    return true;
  }

  /// The link actor, after a reply handler: the requests its callbacks sent to this member, in
  /// one middleman message (one alone goes as a plain rf_req).
  void flush(caf::event_based_actor* self) {
    std::vector<remote_req> batch;
    caf::actor to;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (pending.empty() || !up) return;
      batch.swap(pending);
      to = remote;
    }
    if (batch.size() == 1) {
      remote_req& r = batch.front();
      self->send(to, req_atom::value, owner->epoch_, r.corr, std::move(r.node), r.budget_ns, std::move(r.msg));
    } else {
      self->send(to, req_batch_atom::value, owner->epoch_, std::move(batch));
    }
  }

  /// A request for one of this member's nodes that waits until it is up (then sent), or answered
  /// `timeout` at its deadline.
  void park(const node_spec& n, fb_msg m, std::function<void(graph_result)> done) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!up) {
          outbox_entry e;
          e.node = &n;
          e.expire_ns = m.deadline_ns ? m.deadline_ns : steady_now() + default_budget_ns;
          e.msg = std::move(m);
          e.done = std::move(done);
          parked.push_back(std::move(e));
          return;
        }
      }
      if (submit(n, m, done)) return;  // up now (or lost again in between: park)
    }
  }
  /// The member is up again: its parked requests go to it (if it is lost again meanwhile, to the
  /// node's fallback).
  void send_parked(std::vector<outbox_entry> q) {
    for (outbox_entry& e : q)
      if (!submit(*e.node, e.msg, e.done))
        owner->fallback(*e.node, std::move(e.msg), std::move(e.done), "it was lost again at once");
  }

  void on_reply(std::uint64_t corr, std::uint64_t from_epoch, std::uint8_t code, std::string detail,
                std::vector<fb_msg> outs) {
    std::function<void(graph_result)> done;
    const node_spec* node = nullptr;
    fb_msg request;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = outbox.find(corr);
      if (it == outbox.end()) {
        ++st.stale;  // answered already (by a fallback, a timeout or the stop)
        return;
      }
      if (it->second.epoch != from_epoch) {
        ++st.fenced;  // another incarnation's answer: never delivered
        return;
      }
      done = std::move(it->second.done);
      node = it->second.node;
      if (code == moved_code) request = std::move(it->second.msg);
      outbox.erase(it);
      for (const fb_msg& o : outs) st.bytes_received += o.bytes.size();
    }
    if (code == moved_code) {  // a stateful node this fallback handed back: to its home member
      owner->to_home(*node, std::move(request), std::move(done));
      return;
    }
    graph_result r;
    r.code = static_cast<errc>(code);
    r.detail = std::move(detail);
    if (r.code == errc::ok) r.outputs = std::move(outs);
    done(std::move(r));
  }

  /// The member is lost: its outbox goes to each node's fallback.
  void lose(const std::string& why) {
    std::unordered_map<std::uint64_t, outbox_entry> taken;
    bool breaker_opened = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!up) return;
      up = false;
      was_lost = true;
      remote = caf::actor();
      epoch = 0;
      last_error = why;
      taken.swap(outbox);
      pending.clear();  // their entries are in the outbox: replayed at the fallback
      ++st.losses;
      const std::uint64_t now = steady_now();
      next_attempt_ns = now;
      const member_breaker_settings& b = owner->breaker_;
      losses_at.push_back(now);
      while (!losses_at.empty() && now - losses_at.front() > b.window_ms * 1'000'000ull) losses_at.pop_front();
      const bool failed_probe = now < probe_until_ns;
      if (failed_probe || losses_at.size() >= b.failure_threshold) {
        cooldown_ms =
            failed_probe && cooldown_ms
                ? std::min<std::uint64_t>(b.cooldown_max_ms,
                                          static_cast<std::uint64_t>(static_cast<double>(cooldown_ms) * b.backoff))
                : b.cooldown_ms;
        open_until_ns = now + cooldown_ms * 1'000'000ull;
        next_attempt_ns = open_until_ns;  // the connector does not dial it before
        probe_until_ns = 0;
        losses_at.clear();
        st.breaker_open = true;
        ++st.breaker_opens;
        breaker_opened = true;
      }
    }
    if (breaker_opened)
      owner->log_.warn("cluster", "member " + spec->name + "'s breaker opened: it is not dialled during its cool-down",
                       {{"member", spec->name}, {"cooldown_ms", cooldown_ms}});
    owner->failovers_.fetch_add(1, std::memory_order_relaxed);
    owner->log_.warn("cluster", "member " + spec->name + " lost: its nodes go to their fallbacks",
                     {{"member", spec->name}, {"reason", why}, {"replayed", taken.size()}});
    for (auto& [corr, e] : taken) {
      if (e.node->stateful) {
        // In doubt: it may have been applied (and be in the state its fallback resumes from), so it
        // is never sent again; the caller hears so (docs/OPERATIONS.md "Stateful nodes").
        e.done(error_result(errc::unavailable, "node '" + e.node->name + "': member '" + spec->name +
                                                   "' was lost with the request in flight (" + why +
                                                   "): it may or may not have been applied"));
        continue;
      }
      owner->fallback(*e.node, std::move(e.msg), std::move(e.done), why);
    }
  }

  /// Deadline sweep and the heartbeat (the link actor's tick).
  void tick(caf::event_based_actor* self) {
    const std::uint64_t now = steady_now();
    const std::uint64_t timeout_ns = std::uint64_t{owner->topo_.cluster.timeout_ms} * 1'000'000ull;
    std::vector<std::function<void(graph_result)>> expired;
    bool silent = false, handshake_stuck = false;
    caf::actor ping_to;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto it = outbox.begin(); it != outbox.end();) {
        if (it->second.expire_ns < now) {
          expired.push_back(std::move(it->second.done));
          it = outbox.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = parked.begin(); it != parked.end();) {
        if (it->expire_ns < now) {
          expired.push_back(std::move(it->done));
          it = parked.erase(it);
        } else {
          ++it;
        }
      }
      if (up) {
        silent = now - last_pong_ns > timeout_ns;
        if (now - last_ping_ns >= std::uint64_t{owner->topo_.cluster.heartbeat_ms} * 1'000'000ull) {
          ping_to = remote;  // a ping every heartbeat_ms; the silence is checked every tick
          last_ping_ns = now;
        }
      } else if (candidate && now - candidate_since_ns > timeout_ns) {
        handshake_stuck = true;
        candidate = caf::actor();
        last_error = "no answer to the hello within " + std::to_string(owner->topo_.cluster.timeout_ms) + " ms";
        next_attempt_ns = now;
      }
    }
    (void)handshake_stuck;
    for (auto& d : expired)
      d(error_result(errc::timeout, "no answer from member '" + spec->name + "' before the request's deadline"));
    if (silent) {
      lose("no answer to a heartbeat for " + std::to_string(owner->topo_.cluster.timeout_ms) + " ms (timeout_ms)");
      return;
    }
    if (ping_to) self->send(ping_to, ping_atom::value, now);
  }
};

// ---- the published member actor (the serving side) ----------------------------------------------

struct cluster_member::member_core {
  std::string self, cluster;
  std::uint64_t epoch = 0;
  std::set<std::string> members;
  std::string signature;  // the topology's (cluster_member::signature_of): a hello must carry the same
  std::shared_ptr<running_graph> serve;
  event_log* log = nullptr;

  struct origin {
    caf::actor reply_to;  // the origin's link actor (a proxy)
    std::uint64_t epoch = 0;
  };
  struct key {
    std::string member;
    std::uint64_t epoch = 0, corr = 0;
  };
  struct answer {
    std::uint64_t corr = 0;  // 0: an empty slot
    bool done = false;
    remote_rep reply;  // kept for a duplicate (re-sent, not served again)
  };
  /// The dedupe window of one origin incarnation: the last dedupe_window correlation ids it sent
  /// (a link numbers its requests 1, 2, ...), slot corr % dedupe_window. No hashing, no allocation
  /// per request; a new epoch of the origin starts a new window.
  struct window {
    std::uint64_t epoch = 0, newest = 0;
    std::vector<answer> slots;
    answer* find(std::uint64_t corr) {
      answer& a = slots[corr % slots.size()];
      return a.corr == corr ? &a : nullptr;
    }
  };

  std::mutex mu;                                         // everything below
  std::map<std::string, origin> origins;                 // by member name (the latest hello)
  std::map<caf::actor_addr, std::string> authenticated;  // link actor -> member name
  std::map<std::string, window> windows;                 // the dedupe windows, by origin member
  /// Answers not sent yet, by origin member: the member actor sends them as one batch (flush).
  struct outgoing {
    std::uint64_t epoch = 0;      // the origin incarnation they answer
    std::uint64_t in_flight = 0;  // its requests being served
    std::vector<remote_rep> reps;
  };
  std::map<std::string, outgoing> unsent;
  caf::actor_addr actor;  // the member actor (its flush)
  std::uint64_t served = 0, deduped = 0, unauthenticated = 0, refused = 0, fenced = 0;
  std::uint64_t unauth_logged = 0;

  /// A stateful standby's life here (standby_hooks): dormant -> taking_over -> active ->
  /// handing_back -> dormant. Requests that come while it is being taken over wait, in order.
  struct queued {
    key k;
    std::int64_t budget_ns = 0;
    fb_msg msg;
  };
  struct standby {
    enum class phase { dormant, taking_over, active, handing_back } at = phase::dormant;
    std::vector<queued> queue;
    std::uint64_t in_flight = 0;       // pushed to the serve graph, not answered yet
    std::uint64_t retry_after_ns = 0;  // a refused takeover's verdict holds until then
    std::uint8_t verdict = 0;          // moved_code or errc::node_unreachable
    std::string why;                   // the refused takeover's reason
    std::uint64_t handed_back_ns = 0;  // 0: never
    std::uint64_t refusal_logged_ns = 0;
  };
  std::map<std::string, standby> standbys;
  standby_hooks hooks;
  std::uint64_t handed_back_window_ns = 0;  // after a hand-back, a held lock means "moved"
  std::mutex workers_mu;
  std::map<std::string, std::thread> workers;  // each standby's last takeover (joined at the next, or by stop)

  std::string origin_of(const caf::strong_actor_ptr& sender) {
    if (!sender) return {};
    auto it = authenticated.find(caf::actor_cast<caf::actor_addr>(sender));
    return it == authenticated.end() ? std::string() : it->second;
  }
  void drop_unauthenticated(const char* what) {
    ++unauthenticated;
    if (unauth_logged++ < 10 || unauth_logged % 1000 == 0)
      log->warn("cluster", std::string("dropped a ") + what + " from a peer without a completed hello",
                {{"member", self}, {"dropped", unauthenticated}});
  }
  /// The link actor of origin `member` while incarnation `epoch` is its latest (none: gone).
  caf::actor reply_to(const std::string& member, std::uint64_t epoch) const {
    auto it = origins.find(member);
    return it == origins.end() || it->second.epoch != epoch ? caf::actor() : it->second.reply_to;
  }
  static void send_one(const caf::actor& to, remote_rep r) {
    caf::anon_send(to, rep_atom::value, r.corr, r.epoch, r.code, std::move(r.detail), std::move(r.outs));
  }
  /// A duplicate's stored answer, again.
  void resend(const key& k, const answer& a) {
    if (caf::actor to = reply_to(k.member, k.epoch)) send_one(to, a.reply);
  }
  /// The origin's unsent answers (a new incarnation of the origin starts afresh: the old one's
  /// answers have nobody to go to).
  outgoing& unsent_to(const std::string& member, std::uint64_t epoch) {
    outgoing& o = unsent[member];
    if (o.epoch != epoch) o = outgoing{epoch, 0, {}};
    return o;
  }
  /// A served request's answer (under mu). The last one the origin waits for is sent at once with
  /// the unsent ones (true: the caller flushes, after the lock); otherwise it joins the unsent
  /// batch, and the first of a batch asks the member actor to flush it (answers completing
  /// meanwhile go with it: one middleman message under load, no extra hop at low load).
  bool answer_later(const key& k, remote_rep r) {
    outgoing& o = unsent_to(k.member, k.epoch);
    o.reps.push_back(std::move(r));
    if (o.in_flight > 0) --o.in_flight;
    if (o.in_flight == 0) return true;
    if (o.reps.size() == 1)
      if (caf::actor self = caf::actor_cast<caf::actor>(actor)) caf::anon_send(self, flush_atom::value, k.member);
    return false;
  }
  /// The member actor: every unsent answer to `member`, in one message (one alone as a plain rf_rep).
  void flush(const std::string& member) {
    caf::actor to;
    std::vector<remote_rep> reps;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = unsent.find(member);
      if (it == unsent.end() || it->second.reps.empty()) return;
      reps.swap(it->second.reps);
      to = reply_to(member, it->second.epoch);
    }
    if (!to) return;
    if (reps.size() == 1) send_one(to, std::move(reps.front()));
    else caf::anon_send(to, rep_batch_atom::value, std::move(reps));
  }
};

namespace {

using core_ptr = std::shared_ptr<cluster_member::member_core>;

/// A served request's answer: stored in its dedupe slot and sent (answer_later).
void complete(const core_ptr& c, const cluster_member::member_core::key& k, std::uint8_t code, std::string detail,
              std::vector<fb_msg> outs) {
  using core = cluster_member::member_core;
  remote_rep rep{k.corr, c->epoch, code, std::move(detail), std::move(outs)};
  bool now = false;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    auto it = c->windows.find(k.member);
    if (it != c->windows.end() && it->second.epoch == k.epoch)
      if (core::answer* slot = it->second.find(k.corr)) {
        slot->done = true;
        slot->reply = rep;
      }
    now = c->answer_later(k, std::move(rep));
  }
  if (now) c->flush(k.member);
}

/// Through the serve graph (`standby`: counted in the node's standby in_flight).
void push_serve(const core_ptr& c, const cluster_member::member_core::key& k, const std::string& node,
                std::int64_t budget_ns, fb_msg m, bool standby) {
  using core = cluster_member::member_core;
  m.deadline_ns = steady_now() + static_cast<std::uint64_t>(std::max<std::int64_t>(budget_ns, 1));
  std::weak_ptr<core> weak = c;
  c->serve->push(node, std::move(m), [weak, k, node, standby](graph_result r) {
    core_ptr cc = weak.lock();
    if (!cc) return;
    if (standby) {
      std::lock_guard<std::mutex> lock(cc->mu);
      auto it = cc->standbys.find(node);
      if (it != cc->standbys.end() && it->second.in_flight > 0) --it->second.in_flight;
    }
    complete(cc, k, static_cast<std::uint8_t>(r.code), std::move(r.detail), std::move(r.outputs));
  });
}

/// A takeover of standby `node` (its own thread: files and a ring actor's start), then the
/// requests that waited for it, in order.
void take_over(const core_ptr& c, const std::string& node) {
  using sb = cluster_member::member_core::standby;
  const std::string why = c->hooks.take_over ? c->hooks.take_over(node) : "no takeover here";
  std::uint8_t verdict = static_cast<std::uint8_t>(errc::node_unreachable);
  if (!why.empty()) {
    std::lock_guard<std::mutex> lock(c->mu);
    sb& s = c->standbys[node];
    const bool asked = (c->hooks.wanted_back && c->hooks.wanted_back(node)) ||
                       (s.handed_back_ns && steady_now() - s.handed_back_ns < c->handed_back_window_ns);
    if (asked) verdict = moved_code;  // its home member has it (or is about to): the caller goes there
    // Retried at most every 50 ms while the home member holds it (a partition): logged every 5 s.
    const std::uint64_t now = steady_now();
    if (now - s.refusal_logged_ns > 5'000'000'000ull || !s.refusal_logged_ns) {
      s.refusal_logged_ns = now;
      c->log->warn("cluster", "member " + c->self + " did not take node " + node + " over: " + why,
                   {{"node", node}, {"moved", asked}});
    }
  }
  const std::string detail = verdict == moved_code
                                 ? "node '" + node + "' went back to its home member"
                                 : "node '" + node + "': its home member is unreachable and member '" + c->self +
                                       "' cannot take it over: " + why;
  for (;;) {
    std::vector<cluster_member::member_core::queued> q;
    {
      std::lock_guard<std::mutex> lock(c->mu);
      sb& s = c->standbys[node];
      q.swap(s.queue);
      if (q.empty()) {
        s.at = why.empty() ? sb::phase::active : sb::phase::dormant;
        if (!why.empty()) {
          s.verdict = verdict;
          s.why = detail;
          s.retry_after_ns = steady_now() + 50'000'000ull;  // not one takeover attempt per request
        }
        return;
      }
      if (why.empty()) s.in_flight += q.size();
    }
    for (auto& x : q) {
      if (why.empty()) push_serve(c, x.k, node, x.budget_ns, std::move(x.msg), true);
      else complete(c, x.k, verdict, detail, {});
    }
  }
}

/// One request from authenticated origin `from`: fenced by its epoch, deduped in its window, then
/// served through the serve graph (a stateful standby: taken over first, see standby_hooks).
void serve_request(const core_ptr& c, const std::string& from, std::uint64_t origin_epoch, std::uint64_t corr,
                   const std::string& node, std::int64_t budget_ns, fb_msg m) {
  using core = cluster_member::member_core;
  using sb = core::standby;
  core::key k;
  enum class act { serve, serve_standby, wait, start_takeover, answer } what = act::serve;
  std::uint8_t code = 0;
  std::string detail;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    if (c->origins[from].epoch != origin_epoch) {
      ++c->fenced;  // sent by an earlier incarnation of that member
      return;
    }
    k.member = from;
    k.epoch = origin_epoch;
    k.corr = corr;
    core::window& w = c->windows[k.member];
    if (w.epoch != origin_epoch || w.slots.empty()) {
      w.epoch = origin_epoch;
      w.newest = 0;
      w.slots.assign(dedupe_window, core::answer{});
    }
    // Older than the window (its answer may be forgotten) or seen: never served twice.
    if (corr == 0 || (w.newest >= dedupe_window && corr <= w.newest - dedupe_window)) {
      ++c->deduped;
      return;
    }
    if (core::answer* seen = w.find(corr)) {
      ++c->deduped;
      if (seen->done) c->resend(k, *seen);
      return;
    }
    w.slots[corr % dedupe_window] = core::answer{corr, false, {}};
    w.newest = std::max(w.newest, corr);
    ++c->unsent_to(from, origin_epoch).in_flight;
    ++c->served;
    if (auto it = c->standbys.find(node); it != c->standbys.end()) {
      sb& s = it->second;
      switch (s.at) {
        case sb::phase::active:
          ++s.in_flight;
          what = act::serve_standby;
          break;
        case sb::phase::handing_back:
          what = act::answer;
          code = moved_code;
          detail = "node '" + node + "' is going back to its home member";
          break;
        case sb::phase::dormant:
          if (steady_now() < s.retry_after_ns) {
            what = act::answer;
            code = s.verdict;
            detail = s.why;
            break;
          }
          if (c->hooks.wanted_back && c->hooks.wanted_back(node)) {  // its home member is taking it back
            what = act::answer;
            code = moved_code;
            detail = "node '" + node + "' is going back to its home member";
            break;
          }
          s.at = sb::phase::taking_over;
          what = act::start_takeover;
          [[fallthrough]];
        case sb::phase::taking_over:
          if (what != act::start_takeover) what = act::wait;
          s.queue.push_back(core::queued{k, budget_ns, std::move(m)});
          break;
      }
    }
  }
  switch (what) {
    case act::answer: complete(c, k, code, std::move(detail), {}); return;
    case act::wait: return;
    case act::start_takeover: {
      // One takeover per standby at a time (the phase says so): the previous one has returned.
      std::lock_guard<std::mutex> lock(c->workers_mu);
      std::thread& t = c->workers[node];
      if (t.joinable()) t.join();
      t = std::thread([c, node] { take_over(c, node); });
      return;
    }
    case act::serve:
    case act::serve_standby: push_serve(c, k, node, budget_ns, std::move(m), what == act::serve_standby); return;
  }
}

caf::behavior member_actor(caf::event_based_actor* self, std::shared_ptr<cluster_member::member_core> c) {
  return {
      [=](hello_atom, const std::string& cluster, const std::string& from, std::uint64_t epoch,
          const std::string& signature) {
        caf::actor sender = caf::actor_cast<caf::actor>(self->current_sender());
        if (!sender) return;
        std::lock_guard<std::mutex> lock(c->mu);
        std::string why;
        if (cluster != c->cluster) why = "it belongs to cluster '" + cluster + "', this is '" + c->cluster + "'";
        else if (!c->members.count(from)) why = "'" + from + "' is not a member of this cluster";
        else if (from == c->self) why = "it says it is this member ('" + from + "')";
        else if (signature != c->signature)
          why = "its topology differs from this member's (signature " + signature + ", here " + c->signature +
                "): every member must run the same nodes, kernels, message types and placement";
        if (!why.empty()) {
          ++c->refused;
          c->log->error("cluster", "refused a peer's hello: " + why, {{"member", c->self}, {"peer", from}});
          self->send(sender, refuse_atom::value, "member '" + c->self + "' refused the hello: " + why);
          return;
        }
        auto& o = c->origins[from];
        if (o.reply_to) c->authenticated.erase(o.reply_to.address());
        o.reply_to = sender;
        o.epoch = epoch;
        c->authenticated[sender.address()] = from;
        c->log->info("cluster", "peer " + from + " joined (hello)", {{"member", c->self}, {"peer", from}});
        self->send(sender, welcome_atom::value, c->self, c->epoch);
      },
      [=](ping_atom, std::uint64_t t) {
        std::lock_guard<std::mutex> lock(c->mu);
        if (c->origin_of(self->current_sender()).empty()) return c->drop_unauthenticated("ping");
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), pong_atom::value, t);
      },
      [=](req_atom, std::uint64_t origin_epoch, std::uint64_t corr, std::string& node, std::int64_t budget_ns,
          fb_msg& m) {
        std::string from;
        {
          std::lock_guard<std::mutex> lock(c->mu);
          from = c->origin_of(self->current_sender());
          if (from.empty()) return c->drop_unauthenticated("request");
        }
        serve_request(c, from, origin_epoch, corr, node, budget_ns, std::move(m));
      },
      [=](req_batch_atom, std::uint64_t origin_epoch, std::vector<remote_req>& batch) {
        std::string from;
        {
          std::lock_guard<std::mutex> lock(c->mu);
          from = c->origin_of(self->current_sender());
          if (from.empty()) return c->drop_unauthenticated("request batch");
        }
        for (remote_req& r : batch) serve_request(c, from, origin_epoch, r.corr, r.node, r.budget_ns, std::move(r.msg));
      },
      [=](flush_atom, const std::string& member) { c->flush(member); },
  };
}

caf::behavior link_actor(caf::event_based_actor* self, std::shared_ptr<cluster_member::peer> p, std::string cluster,
                         std::string me, std::uint64_t my_epoch, std::uint32_t heartbeat_ms, std::string signature) {
  self->set_down_handler([=](caf::down_msg& dm) {
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->candidate && p->candidate.address() == dm.source) {
        p->candidate = caf::actor();
        p->last_error = "the connection dropped during the hello";
        return;
      }
      if (!p->up || p->remote.address() != dm.source) return;
    }
    p->lose("the connection dropped (" + to_string(dm.reason) + ")");
  });
  // The tick: pings every heartbeat_ms, but the silence and the deadlines are checked every
  // tick_ms, so a silent member is lost within timeout_ms + tick_ms (not + heartbeat_ms).
  const auto tick_every = std::chrono::milliseconds(std::clamp<std::uint32_t>(heartbeat_ms, 1, 5));
  self->delayed_send(self, tick_every, tick_atom::value);
  return {
      [=](connected_atom, caf::actor remote) {
        {
          std::lock_guard<std::mutex> lock(p->mu);
          p->candidate = remote;
          p->candidate_since_ns = steady_now();
        }
        self->monitor(remote);
        self->send(remote, hello_atom::value, cluster, me, my_epoch, signature);
      },
      [=](welcome_atom, const std::string& name, std::uint64_t epoch) {
        bool back = false;
        std::vector<outbox_entry> parked;
        {
          std::lock_guard<std::mutex> lock(p->mu);
          caf::actor sender = caf::actor_cast<caf::actor>(self->current_sender());
          if (!p->candidate || sender != p->candidate) return;
          if (name != p->spec->name) {
            p->last_error = "the member at its address says it is '" + name + "'";
            p->candidate = caf::actor();
            p->log().error("cluster", "refused a peer: wrongly named", {{"expected", p->spec->name}, {"got", name}});
            return;
          }
          p->remote = std::move(p->candidate);
          p->candidate = caf::actor();
          p->epoch = epoch;
          p->up = true;
          p->refused = false;
          p->last_pong_ns = steady_now();
          back = p->was_lost;
          p->was_lost = false;
          if (p->ever_up) ++p->st.reconnects;
          p->ever_up = true;
          if (back) ++p->st.failbacks;
          if (p->st.breaker_open) {  // the probe after the cool-down succeeded
            p->st.breaker_open = false;
            p->probe_until_ns = steady_now() + p->cooldown_ms * 1'000'000ull;
          }
          parked.swap(p->parked);
        }
        if (!parked.empty()) p->send_parked(std::move(parked));
        if (back) p->count_failback();
        p->log().info("cluster",
                      back ? "member " + p->spec->name + " is back: its nodes fail back"
                           : "member " + p->spec->name + " connected",
                      {{"member", p->spec->name}, {"epoch", std::to_string(epoch)}});
      },
      [=](refuse_atom, const std::string& why) {
        std::lock_guard<std::mutex> lock(p->mu);
        p->candidate = caf::actor();
        p->last_error = why;
        p->refused = true;
        p->log().error("cluster", why, {{"member", p->spec->name}});
      },
      [=](pong_atom, std::uint64_t t) {
        std::lock_guard<std::mutex> lock(p->mu);
        const std::uint64_t now = steady_now();
        p->last_pong_ns = now;
        p->st.rtt_us = static_cast<double>(now - t) / 1000.0;
      },
      [=](rep_atom, std::uint64_t corr, std::uint64_t epoch, std::uint8_t code, std::string& detail,
          std::vector<fb_msg>& outs) {
        batching_for = p.get();
        p->on_reply(corr, epoch, code, std::move(detail), std::move(outs));
        batching_for = nullptr;
        p->flush(self);
      },
      [=](rep_batch_atom, std::vector<remote_rep>& reps) {
        batching_for = p.get();
        for (remote_rep& r : reps) p->on_reply(r.corr, r.epoch, r.code, std::move(r.detail), std::move(r.outs));
        batching_for = nullptr;
        p->flush(self);
      },
      [=](tick_atom) {
        p->tick(self);
        self->delayed_send(self, tick_every, tick_atom::value);
      },
  };
}

}  // namespace

// ---- cluster_member ------------------------------------------------------------------------------

cluster_member::cluster_member(const topology& t, std::string self, std::string dir, event_log& log, bool calls)
    : topo_(t), self_(std::move(self)), dir_(std::move(dir)), log_(log), epoch_(fresh_epoch()), calls_(calls) {}

cluster_member::~cluster_member() { stop(); }

std::string cluster_member::signature_of(const topology& t) {
  std::string text = t.name + "\n";
  for (const member_spec& m : t.cluster.members) text += "member " + m.name + "\n";
  for (const node_spec& n : t.nodes) {
    const message_info* in = find_message(n.in_type);
    const message_info* out = find_message(n.out_type);
    text += "node " + n.name + " at " + n.at + " " +
            (n.kind == node_kind::ring ? "kernel " + n.kernel : "function " + n.function) + " " + n.in_type + "/" +
            std::to_string(in ? in->id : 0) + " -> " + n.out_type + "/" + std::to_string(out ? out->id : 0) +
            " fallback " + n.fallback + "\n";
  }
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (const unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void cluster_member::configure(caf::actor_system_config& cfg, const cluster_spec& c) {
  cfg.load<caf::io::middleman>();
  cfg.add_message_type<remote_req>("ringflow::remote_req");  // also std::vector<ringflow::remote_req>
  cfg.add_message_type<remote_rep>("ringflow::remote_rep");
  cfg.set("middleman.heartbeat-interval", caf::timespan(std::chrono::milliseconds(c.heartbeat_ms)));
  cfg.set("middleman.connection-timeout", caf::timespan(std::chrono::milliseconds(c.timeout_ms)));
  if (c.tls) {
    cfg.load<caf::openssl::manager>();
    cfg.set("openssl.certificate", c.tls_cert);
    cfg.set("openssl.key", c.tls_key);
    cfg.set("openssl.cafile", c.tls_ca);
  }
}

std::string cluster_member::check_tls(const cluster_spec& c) {
  if (!c.tls) return {};
  auto open = [](const std::string& path, const char* what, std::FILE*& f) -> std::string {
    f = std::fopen(path.c_str(), "r");
    return f ? std::string() : std::string("cluster.tls.") + what + ": cannot read " + path;
  };
  std::FILE* f = nullptr;
  if (std::string e = open(c.tls_ca, "ca", f); !e.empty()) return e;
  X509* ca = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!ca) return "cluster.tls.ca: " + c.tls_ca + " holds no PEM certificate";
  if (std::string e = open(c.tls_cert, "cert", f); !e.empty()) return X509_free(ca), e;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) return X509_free(ca), "cluster.tls.cert: " + c.tls_cert + " holds no PEM certificate";
  if (std::string e = open(c.tls_key, "key", f); !e.empty()) return X509_free(ca), X509_free(cert), e;
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  std::string why;
  if (!key) why = "cluster.tls.key: " + c.tls_key + " holds no PEM private key (or it is encrypted)";
  else if (X509_check_private_key(cert, key) != 1)
    why = "cluster.tls: the key " + c.tls_key + " does not belong to the certificate " + c.tls_cert;
  else if (EVP_PKEY* ca_key = X509_get0_pubkey(ca); !ca_key || X509_verify(cert, ca_key) != 1)
    why = "cluster.tls: the certificate " + c.tls_cert + " is not signed by the cluster CA " + c.tls_ca;
  if (key) EVP_PKEY_free(key);
  X509_free(cert);
  X509_free(ca);
  return why;
}

cluster_member::peer* cluster_member::peer_of(const std::string& member) const {
  auto it = peers_.find(member);
  return it == peers_.end() ? nullptr : it->second.get();
}

void cluster_member::start(caf::actor_system& sys, std::shared_ptr<running_graph> serve) {
  sys_ = &sys;
  serve_ = std::move(serve);
  const cluster_spec& cs = topo_.cluster;
  const member_spec* me = cs.member(self_);
  if (!me) throw engine_error("--member " + self_ + ": not a member of this cluster");
  core_ = std::make_shared<member_core>();
  core_->self = self_;
  core_->cluster = topo_.name;
  core_->epoch = epoch_;
  core_->serve = serve_;
  core_->log = &log_;
  for (const member_spec& m : cs.members) core_->members.insert(m.name);
  core_->signature = signature_of(topo_);
  core_->hooks = standby_;
  for (const std::string& node : standby_.nodes) core_->standbys[node];
  core_->handed_back_window_ns = (std::uint64_t{cs.start_timeout_ms} + 1000) * 1'000'000ull;
  member_actor_ = sys.spawn(member_actor, core_);
  core_->actor = member_actor_.address();
  const std::string host = listen_host_.empty() ? me->host : listen_host_;
  caf::expected<std::uint16_t> port = cs.tls ? caf::openssl::publish(member_actor_, me->port, host.c_str(), true)
                                             : sys.middleman().publish(member_actor_, me->port, host.c_str(), true);
  if (!port)
    throw engine_error("member " + self_ + ": cannot listen on " + host + ":" + std::to_string(me->port) + ": " +
                       sys.render(port.error()));
  port_ = *port;
  if (!dir_.empty()) {
    const std::string path = dir_ + "/" + self_ + ".addr";
    if (!write_atomically(path, host + ":" + std::to_string(port_) + " " + std::to_string(epoch_) + "\n"))
      throw engine_error("member " + self_ + ": cannot write its address to " + path);
  }
  log_.info("cluster", "member " + self_ + " listening",
            {{"member", self_},
             {"listen", host + ":" + std::to_string(port_)},
             {"epoch", std::to_string(epoch_)},
             {"tls", cs.tls}});
  // The members this one calls: those of every node it does not run, and their fallbacks.
  std::set<std::string> needed;
  for (const node_spec& n : topo_.nodes) {
    if (!calls_) break;
    if (n.at != self_) needed.insert(n.at);
    if (!n.fallback.empty() && n.fallback != "local_cpu" && n.fallback != self_) needed.insert(n.fallback);
  }
  for (const std::string& name : needed) {
    auto p = std::make_shared<peer>();
    p->owner = this;
    p->spec = cs.member(name);
    p->st.name = name;
    p->link = sys.spawn(link_actor, p, topo_.name, self_, epoch_, cs.heartbeat_ms, signature_of(topo_));
    peers_[name] = std::move(p);
  }
  connector_ = std::thread([this] { connector_loop(); });
  if (!standby_.nodes.empty()) standby_thread_ = std::thread([this] { standby_loop(); });
  // Wait for every peer's hello (bounded): a member unreachable at start is an error.
  const auto limit = std::chrono::steady_clock::now() + std::chrono::milliseconds(cs.start_timeout_ms);
  for (;;) {
    std::vector<std::string> missing;
    for (auto& [name, p] : peers_) {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->refused)  // a refused hello does not get better by waiting: fail the start now
        throw engine_error("member " + self_ + ": refused at start by " + name + " (" + p->spec->listen +
                           "): " + p->last_error);
      if (!p->up) missing.push_back(name + " (" + p->spec->listen + "): " + p->last_error);
    }
    if (missing.empty()) return;
    if (std::chrono::steady_clock::now() >= limit) {
      std::string all;
      for (const std::string& m : missing) all += (all.empty() ? "" : "; ") + m;
      throw engine_error("member " + self_ + ": unreachable at start after " + std::to_string(cs.start_timeout_ms) +
                         " ms (cluster.start_timeout_ms): " + all);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Dials every peer that is not up (the first time, and after a loss) every heartbeat_ms.
void cluster_member::connector_loop() {
  const cluster_spec& cs = topo_.cluster;
  const std::uint64_t period_ns = std::uint64_t{cs.heartbeat_ms} * 1'000'000ull;
  while (!stopping_.load(std::memory_order_acquire)) {
    for (auto& [name, p] : peers_) {
      const std::uint64_t now = steady_now();
      {
        std::lock_guard<std::mutex> lock(p->mu);
        if (p->up || p->candidate || now < p->next_attempt_ns) continue;
        p->next_attempt_ns = now + period_ns;
      }
      std::string host = p->spec->host;
      std::uint16_t port = p->spec->port;
      std::string why;
      // Under `cluster up` (a directory) the published address wins: ports of 0 are assigned at
      // start, and members in network namespaces listen on their namespace's address.
      std::error_code ec;
      const bool published = !dir_.empty() && std::filesystem::exists(dir_ + "/" + name + ".addr", ec);
      if (port == 0 || published) {
        if (dir_.empty()) {
          why = "it listens on port 0, so its address is only known under `ringflow cluster up` (--cluster-dir)";
        } else {
          std::ifstream in(dir_ + "/" + name + ".addr");
          std::string addr;
          if (!(in >> addr)) why = "its address is not published yet (" + dir_ + "/" + name + ".addr)";
          else if (const auto colon = addr.rfind(':'); colon == std::string::npos) why = "bad address file";
          else {
            host = addr.substr(0, colon);
            port = static_cast<std::uint16_t>(std::strtoul(addr.c_str() + colon + 1, nullptr, 10));
          }
        }
      }
      if (why.empty()) {
        caf::expected<caf::actor> r =
            cs.tls ? caf::openssl::remote_actor(*sys_, host, port) : sys_->middleman().remote_actor(host, port);
        if (r) {
          caf::anon_send(p->link, connected_atom::value, std::move(*r));
          std::lock_guard<std::mutex> lock(p->mu);
          p->candidate_since_ns = steady_now();
          continue;
        }
        why = "cannot connect to " + host + ":" + std::to_string(port) + ": " + sys_->render(r.error());
      }
      std::lock_guard<std::mutex> lock(p->mu);
      p->last_error = why;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp<std::uint32_t>(cs.heartbeat_ms / 4, 2, 50)));
  }
}

void cluster_member::fallback(const node_spec& n, fb_msg m, std::function<void(graph_result)> done,
                              const std::string& why) {
  if (n.fallback == "local_cpu" && serve_) {
    serve_->push(n.name, std::move(m), std::move(done));
    return;
  }
  if (!n.fallback.empty() && n.fallback != "local_cpu")
    if (peer* p = peer_of(n.fallback); p && p->submit(n, m, done)) return;
  done(error_result(errc::node_unreachable, "node '" + n.name + "': member '" + n.at + "' is unreachable (" + why +
                                                ")" + (n.fallback.empty() ? "" : " and so is its fallback")));
}

void cluster_member::to_home(const node_spec& n, fb_msg m, std::function<void(graph_result)> done) {
  peer* home = peer_of(n.at);
  if (!home) {
    done(error_result(errc::node_unreachable, "node '" + n.name + "': no link to its member '" + n.at + "'"));
    return;
  }
  home->park(n, std::move(m), std::move(done));
}

// Hands a taken-over stateful node back once its home member asks (standby_hooks): new requests
// are answered "moved" (their callers send them home), the ones being served finish, then the
// engine stops it with a last checkpoint and releases its lock, which the home member waits for.
void cluster_member::standby_loop() {
  using sb = member_core::standby;
  while (!stopping_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (const std::string& node : standby_.nodes) {
      {
        std::lock_guard<std::mutex> lock(core_->mu);
        if (core_->standbys[node].at != sb::phase::active) continue;
      }
      if (!standby_.wanted_back(node)) continue;
      {
        std::lock_guard<std::mutex> lock(core_->mu);
        core_->standbys[node].at = sb::phase::handing_back;
      }
      log_.info("cluster", "node " + node + "'s home member asks for it back: draining it here",
                {{"node", node}, {"member", self_}});
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(core_->mu);
          if (core_->standbys[node].in_flight == 0) break;
        }
        if (std::chrono::steady_clock::now() > until || stopping_.load(std::memory_order_acquire)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      standby_.hand_back(node);
      std::lock_guard<std::mutex> lock(core_->mu);
      sb& s = core_->standbys[node];
      s.at = sb::phase::dormant;
      s.handed_back_ns = steady_now();
      s.retry_after_ns = 0;
    }
  }
}

async_node_fn cluster_member::remote_node(const node_spec& n) {
  const node_spec* spec = &n;
  return [this, spec](fb_msg&& m, std::function<void(graph_result)> done) {
    if (stopping_.load(std::memory_order_acquire)) {
      done(error_result(errc::stopped, "member " + self_ + " is stopping"));
      return;
    }
    peer* home = peer_of(spec->at);
    std::string why = "no link";
    if (home) {
      if (home->submit(*spec, m, done)) return;
      std::lock_guard<std::mutex> lock(home->mu);
      why = home->last_error;
    }
    fallback(*spec, std::move(m), std::move(done), why);
  };
}

void cluster_member::stop() {
  if (stopping_.exchange(true)) return;
  if (connector_.joinable()) connector_.join();
  if (standby_thread_.joinable()) standby_thread_.join();
  if (core_) {  // takeovers under way finish (the engine stops what they started)
    std::map<std::string, std::thread> w;
    {
      std::lock_guard<std::mutex> lock(core_->workers_mu);
      w.swap(core_->workers);
    }
    for (auto& [node, t] : w)
      if (t.joinable()) t.join();
  }
  // The link actors and the member actor are gone before stop() returns (bounded), so that the
  // runtime's shutdown does not find them still running.
  struct latch {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
  };
  auto gone = std::make_shared<latch>();
  auto await_exit = [&gone](const caf::actor& a) {
    if (!a) return;
    {
      std::lock_guard<std::mutex> lock(gone->mu);
      ++gone->left;
    }
    a->attach_functor([gone] {
      std::lock_guard<std::mutex> lock(gone->mu);
      if (--gone->left == 0) gone->cv.notify_all();
    });
  };
  std::vector<std::function<void(graph_result)>> open;
  for (auto& [name, p] : peers_) {
    {
      std::lock_guard<std::mutex> lock(p->mu);
      for (auto& [corr, e] : p->outbox) open.push_back(std::move(e.done));
      p->outbox.clear();
      p->pending.clear();
      for (outbox_entry& e : p->parked) open.push_back(std::move(e.done));
      p->parked.clear();
      p->up = false;
      p->remote = caf::actor();
      p->candidate = caf::actor();
    }
    await_exit(p->link);
    caf::anon_send_exit(p->link, caf::exit_reason::user_shutdown);
  }
  for (auto& d : open) d(error_result(errc::stopped, "member " + self_ + " stopped"));
  if (sys_ && member_actor_) {
    // (CAF 0.17.6's openssl::unpublish does not compile: a TLS port closes with the actor system.)
    if (!topo_.cluster.tls) (void)sys_->middleman().unpublish(member_actor_, port_);
    await_exit(member_actor_);
    caf::anon_send_exit(member_actor_, caf::exit_reason::user_shutdown);
  }
  {
    std::unique_lock<std::mutex> lock(gone->mu);
    gone->cv.wait_for(lock, std::chrono::seconds(5), [&] { return gone->left == 0; });
  }
  if (core_) {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->serve = nullptr;
  }
}

cluster_stats cluster_member::stats() const {
  cluster_stats s;
  s.member = self_;
  s.epoch = epoch_;
  s.member_failovers = failovers_.load(std::memory_order_relaxed);
  s.member_failbacks = failbacks_.load(std::memory_order_relaxed);
  if (core_) {
    std::lock_guard<std::mutex> lock(core_->mu);
    s.served = core_->served;
    s.deduped = core_->deduped;
    s.unauthenticated = core_->unauthenticated;
    s.refused = core_->refused;
    s.fenced_requests = core_->fenced;
  }
  for (const auto& [name, p] : peers_) {
    std::lock_guard<std::mutex> lock(p->mu);
    peer_stats ps = p->st;
    ps.up = p->up;
    ps.in_flight = p->outbox.size();
    s.peers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace ringflow::ops::engine_parts

namespace ringflow::ops::engine_parts {

std::string cluster_metrics_text(const cluster_stats& s) {
  exposition x;
  auto per_peer = [&](const char* name, const char* type, const char* help, auto value) {
    x.family(name, type, help);
    for (const peer_stats& p : s.peers) x.sample({{"member", p.name}}, static_cast<double>(value(p)));
  };
  per_peer("ringflow_member_link_up", "gauge", "1 while the link to the member is up (hello done, heartbeats answered)",
           [](const peer_stats& p) { return p.up ? 1 : 0; });
  per_peer("ringflow_member_rtt_seconds", "gauge", "the last heartbeat's round trip to the member",
           [](const peer_stats& p) { return p.rtt_us / 1e6; });
  per_peer("ringflow_member_requests_total", "counter", "requests sent to the member",
           [](const peer_stats& p) { return p.requests; });
  per_peer("ringflow_member_bytes_sent_total", "counter", "request payload bytes sent to the member",
           [](const peer_stats& p) { return p.bytes_sent; });
  per_peer("ringflow_member_bytes_received_total", "counter", "reply payload bytes received from the member",
           [](const peer_stats& p) { return p.bytes_received; });
  per_peer("ringflow_member_reconnects_total", "counter", "links to the member established again after a loss",
           [](const peer_stats& p) { return p.reconnects; });
  per_peer("ringflow_member_in_flight", "gauge", "requests sent to the member and not answered yet (its outbox)",
           [](const peer_stats& p) { return p.in_flight; });
  per_peer("ringflow_member_failovers_total", "counter",
           "times the member was lost (its nodes went to their fallbacks)",
           [](const peer_stats& p) { return p.losses; });
  per_peer("ringflow_member_failbacks_total", "counter", "times the member came back (its nodes failed back)",
           [](const peer_stats& p) { return p.failbacks; });
  per_peer("ringflow_member_breaker_open", "gauge",
           "1 while the member's breaker is open (lost too often: not dialled, its nodes on their fallbacks)",
           [](const peer_stats& p) { return p.breaker_open ? 1 : 0; });
  per_peer("ringflow_member_breaker_opens_total", "counter", "times the member's breaker opened",
           [](const peer_stats& p) { return p.breaker_opens; });
  per_peer("ringflow_member_fenced_replies_total", "counter",
           "replies from another incarnation of the member than the request went to (dropped)",
           [](const peer_stats& p) { return p.fenced; });
  per_peer("ringflow_member_stale_replies_total", "counter",
           "replies for requests already answered elsewhere (dropped)", [](const peer_stats& p) { return p.stale; });
  auto own = [&](const char* name, const char* help, std::uint64_t v) {
    x.family(name, "counter", help);
    x.sample({{"member", s.member}}, static_cast<double>(v));
  };
  own("ringflow_cluster_served_total", "requests other members sent this one", s.served);
  own("ringflow_cluster_deduplicated_total", "requests received again and not served twice", s.deduped);
  own("ringflow_cluster_unauthenticated_dropped_total", "messages from peers without a completed hello (dropped)",
      s.unauthenticated);
  own("ringflow_cluster_refused_total", "hellos refused (not a member, another cluster)", s.refused);
  own("ringflow_cluster_fenced_requests_total", "requests from an earlier incarnation of their member (dropped)",
      s.fenced_requests);
  return x.text();
}

}  // namespace ringflow::ops::engine_parts

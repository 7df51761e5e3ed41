// OTP-style supervisor trees: see ringflow/supervision/supervisor.hpp.
//
// The supervisor is one event-based actor driving a small state machine. Everything it does to
// its children is a *job* — the initial start, a restart (per strategy), start_child,
// terminate_child, the final shutdown — made of start/stop steps run one at a time. A stop waits
// for the child's down message, a nested supervisor's start waits for its "children started"
// answer; nothing blocks a CAF worker. Events that arrive while a job runs are deferred and
// handled after it, in arrival order (OTP's supervisor is one process and does the same): a crash
// report names the instance (generation) it is about, so one that a job has already dealt with
// (one_for_all restarted it) is ignored, as OTP ignores the EXIT of a pid that is no longer a child.
//
// Monitors, not links. OTP links a supervisor to its children; CAF 0.17's links do not fit: a
// child that dies with exit_reason::kill propagates `kill` over the link, and `kill` cannot be
// trapped, so a killed child would kill its supervisor (Erlang turns it into a trappable
// `killed`); and an actor that receives an exit message unlinks from its sender first, so a child
// stopped by its supervisor sends nothing back. So the supervisor monitors each child (the down
// message reports every end, exactly once) and, when it terminates however it does (killed
// included), a termination hook sends its exit reason to the children still running — what the
// link would have done. Every exit message it receives is therefore a stop request (from its
// parent supervisor, the runtime, supervisor_ref::stop or any actor), handled in order.
#include "ringflow/supervision/supervisor.hpp"

#include <caf/all.hpp>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>

namespace ringflow {

namespace detail {

// What a supervisor actor shares with its refs and its parent. The actor writes, others read.
struct supervisor_shared {
  std::string name;  // set before the actor starts, never changed
  std::mutex mu;
  std::condition_variable cv;
  supervisor_snapshot mirror;                              // rewritten after each change
  std::vector<std::shared_ptr<supervisor_shared>> nested;  // parallel to mirror.children
  bool started = false;                                    // its initial children are up
  bool exited = false;
  caf::error exit_reason;
  std::map<std::uint64_t, child_spec> handover;  // start_child: specs travel here, not in messages
  std::uint64_t next_ticket = 1;
};

}  // namespace detail

namespace {

using detail::supervisor_shared;
using clock = std::chrono::steady_clock;

// Messages carry atoms, strings and integers only (CAF 0.17 needs custom types registered).
using start_child_atom = caf::atom_constant<caf::atom("sv_start")>;
using terminate_child_atom = caf::atom_constant<caf::atom("sv_term")>;
using await_started_atom = caf::atom_constant<caf::atom("sv_await")>;
using retry_atom = caf::atom_constant<caf::atom("sv_retry")>;
using stop_timeout_atom = caf::atom_constant<caf::atom("sv_tmo")>;

// Set while a supervisor runs a child's start function: supervisor_child finds the actor system
// there and reports the supervisor it spawned, so the parent waits for that one's own start.
struct start_context {
  caf::actor_system* system = nullptr;
  caf::actor_id spawned = 0;
  std::shared_ptr<supervisor_shared> spawned_shared;
};
thread_local start_context* current_start = nullptr;

// CAF's `normal` and `user_shutdown` are OTP's normal and shutdown: a transient child stays down.
bool is_shutdown_reason(const caf::error& e) { return !e || e == caf::exit_reason::user_shutdown; }

caf::error check_child(const child_spec& c) {
  if (c.id.empty()) return make_error(errc::invalid_argument, "a child spec needs an id");
  if (!c.start) return make_error(errc::invalid_argument, "child '" + c.id + "' has no start function");
  if (c.shutdown.mode == shutdown_mode::timeout && c.shutdown.limit.count() <= 0)
    return make_error(errc::invalid_argument, "child '" + c.id + "': a shutdown timeout must be > 0");
  return caf::none;
}

caf::error check_spec(const supervisor_spec& s) {
  const std::string who = "supervisor '" + s.name + "': ";
  if (s.flags.period.count() <= 0) return make_error(errc::invalid_argument, who + "the restart period must be > 0");
  if (s.dynamic && (!s.children.empty() || s.flags.strategy != restart_strategy::one_for_one))
    return make_error(errc::invalid_argument, who + "a dynamic supervisor starts empty and is one_for_one");
  for (std::size_t i = 0; i < s.children.size(); ++i) {
    if (auto err = check_child(s.children[i])) return make_error(errc::invalid_argument, who + detail_of(err));
    for (std::size_t j = 0; j < i; ++j)
      if (s.children[j].id == s.children[i].id)
        return make_error(errc::invalid_argument, who + "two children have the id '" + s.children[i].id + "'");
  }
  return caf::none;
}

// A request to a supervisor that has gone away answers errc::stopped.
caf::error from_request(caf::error e, const std::string& name) {
  if (e == caf::sec::request_receiver_down)
    return make_error(errc::stopped, "supervisor '" + name + "' is not running");
  return e;
}

supervisor_snapshot snapshot_of(supervisor_shared& s) {
  supervisor_snapshot out;
  std::vector<std::shared_ptr<supervisor_shared>> nested;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    out = s.mirror;
    nested = s.nested;
  }
  for (std::size_t i = 0; i < nested.size() && i < out.children.size(); ++i)
    if (nested[i]) out.children[i].nested = std::make_shared<const supervisor_snapshot>(snapshot_of(*nested[i]));
  return out;
}

class supervisor_engine : public std::enable_shared_from_this<supervisor_engine> {
 public:
  supervisor_engine(caf::event_based_actor* self, supervisor_spec spec, std::shared_ptr<supervisor_shared> shared)
      : self_(self), name_(spec.name), flags_(spec.flags), dynamic_(spec.dynamic), shared_(std::move(shared)) {
    for (auto& c : spec.children) children_.push_back(child_rec{std::move(c)});
  }

  caf::behavior behavior() {
    auto me = shared_from_this();
    self_->attach_functor([me, from = self_->address()](const caf::error& reason) { me->terminated(from, reason); });
    self_->attach_functor([s = shared_](const caf::error& reason) {
      std::lock_guard<std::mutex> lock(s->mu);
      s->exited = true;
      s->exit_reason = reason;
      s->mirror.running = false;
      s->cv.notify_all();
    });
    self_->set_exit_handler([me](caf::exit_msg& m) { me->on_exit(m); });
    self_->set_down_handler([me](caf::down_msg& m) { me->on_down(m); });
    job init(job_kind::init);
    for (auto& c : children_) init.steps.push_back(step{true, c.spec.id});
    current_ = std::move(init);
    publish();
    drive();
    return {
        [me](start_child_atom, std::uint64_t ticket) { me->on_start_child(ticket); },
        [me](terminate_child_atom, std::string& id) { me->on_terminate_child(std::move(id)); },
        [me](await_started_atom) {
          auto rp = me->self_->make_response_promise();
          if (me->started_) rp.deliver(caf::ok_atom::value);
          else me->start_awaiters_.push_back(std::move(rp));
        },
        [me](retry_atom, std::string& id) {
          me->when_idle([me, id] { me->retry(id); });
          me->drive();
        },
        [me](stop_timeout_atom, std::uint64_t ticket) { me->on_stop_timeout(ticket); },
    };
  }

 private:
  struct child_rec {
    explicit child_rec(child_spec s) : spec(std::move(s)) {}
    child_spec spec;
    caf::actor actor;              // the running instance (also while it is being stopped)
    std::uint64_t generation = 0;  // bumped per start: a deferred crash report names its instance
    std::uint64_t starts = 0;
    std::string last_exit;
    std::shared_ptr<supervisor_shared> nested;  // a nested supervisor's shared state
  };
  struct step {
    bool start;  // else stop
    std::string id;
    bool remove_after_stop = false;
  };
  enum class job_kind { init, restart, start_child, terminate_child, shutdown };
  struct job {
    explicit job(job_kind k) : kind(k) {}
    job_kind kind;
    std::deque<step> steps;
    std::string child;            // start_child / terminate_child: the child it is about
    caf::response_promise reply;  // start_child / terminate_child
    caf::error reason;            // shutdown: what the supervisor exits with
  };
  struct stop_wait {
    std::string id;
    caf::actor_addr addr;
    std::uint64_t ticket;
    bool remove_after;
  };
  struct start_wait {
    std::string id;
    caf::actor_addr addr;
  };

  // ---- the engine: run the current job's steps until one must wait, then take deferred work ----

  void drive() {
    while (!quitting_) {
      if (current_) {
        if (stopping_ || awaiting_) return;
        if (current_->steps.empty()) {
          job done = std::move(*current_);
          current_.reset();
          complete(done);
          continue;
        }
        step s = std::move(current_->steps.front());
        current_->steps.pop_front();
        if (s.start) begin_start(s.id);
        else begin_stop(s.id, s.remove_after_stop);
        continue;
      }
      if (pending_shutdown_) {
        begin_shutdown(std::move(*pending_shutdown_));
        pending_shutdown_.reset();
        continue;
      }
      if (deferred_.empty()) return;
      auto next = std::move(deferred_.front());
      deferred_.pop_front();
      next();  // may set current_; never calls drive()
    }
  }

  // Runs `f` now, or after the job under way. `f` checks quitting_ first: at the end every deferred
  // one runs once more so that waiting requests are answered.
  void when_idle(std::function<void()> f) {
    if (current_ || pending_shutdown_) deferred_.push_back(std::move(f));
    else f();
  }

  void begin_start(const std::string& id) {
    child_rec* c = find(id);
    if (!c || c->actor) return;  // removed meanwhile, or running already
    start_context ctx;
    ctx.system = &self_->system();
    caf::expected<caf::actor> started = make_error(errc::internal, "not started");
    current_start = &ctx;
    try {
      started = c->spec.start();
    } catch (const std::exception& e) {
      started = make_error(errc::internal, std::string("the start function threw: ") + e.what());
    } catch (...) {
      started = make_error(errc::internal, "the start function threw");
    }
    current_start = nullptr;
    if (!started || !*started) {
      start_failed(id, started ? make_error(errc::internal, "the start function returned no actor") : started.error());
      return;
    }
    caf::actor& a = *started;
    c->actor = a;
    ++c->generation;
    ++c->starts;
    const bool nested = ctx.spawned != 0 && ctx.spawned == a.id();
    c->nested = nested ? ctx.spawned_shared : nullptr;
    monitored_.emplace(a.address(), id);
    self_->monitor(a);  // if it is already gone, its down message arrives at once
    publish();
    if (!nested) return;
    // A nested supervisor counts as started once its own children are: ask it (asynchronously).
    const caf::actor_addr addr = a.address();
    awaiting_ = start_wait{id, addr};
    auto me = shared_from_this();
    self_->request(a, caf::infinite, await_started_atom::value)
        .then([me, addr](caf::ok_atom) { me->nested_started(addr, caf::none); },
              [me, addr](caf::error& e) { me->nested_started(addr, e ? e : make_error(errc::internal, "no answer")); });
  }

  void nested_started(const caf::actor_addr& addr, caf::error err) {
    if (!awaiting_ || awaiting_->addr != addr) return;  // its exit came first and was handled
    const std::string id = awaiting_->id;
    awaiting_.reset();
    if (err) {
      if (child_rec* c = find(id)) c->actor = nullptr;  // it exits on its own; its down message is then ignored
      start_failed(id, err);
    }
    publish();
    drive();
  }

  void start_failed(const std::string& id, const caf::error& reason) {
    caf::error why = make_error(errc::child_start_failed,
                                "supervisor '" + name_ + "': child '" + id + "' failed to start: " + render(reason));
    if (child_rec* c = find(id)) c->last_exit = render(reason);
    switch (current_->kind) {
      case job_kind::init:  // OTP: stop the ones started (reverse) and fail the supervisor's start
        current_.reset();
        begin_shutdown(std::move(why));
        return;
      case job_kind::restart:  // OTP's try_again_restart: a new attempt through the mailbox, counted
        current_->steps.clear();
        self_->send(self_, retry_atom::value, id);
        return;
      case job_kind::start_child:
        erase(id);
        current_->reply.deliver(std::move(why));
        current_->steps.clear();
        return;
      case job_kind::terminate_child:
      case job_kind::shutdown: return;  // no starts in these
    }
  }

  void begin_stop(const std::string& id, bool remove_after) {
    child_rec* c = find(id);
    if (!c) return;
    if (!c->actor) {
      if (remove_after) erase(id);
      return;
    }
    stopping_ = stop_wait{id, c->actor.address(), ++stop_ticket_, remove_after};
    switch (c->spec.shutdown.mode) {
      case shutdown_mode::brutal: self_->send_exit(c->actor, caf::exit_reason::kill); break;
      case shutdown_mode::timeout:
        self_->send_exit(c->actor, caf::exit_reason::user_shutdown);
        self_->delayed_send(self_, c->spec.shutdown.limit, stop_timeout_atom::value, stop_ticket_);
        break;
      case shutdown_mode::infinity: self_->send_exit(c->actor, caf::exit_reason::user_shutdown); break;
    }
  }

  void on_stop_timeout(std::uint64_t ticket) {
    if (!stopping_ || stopping_->ticket != ticket) return;  // it exited in time
    if (child_rec* c = find(stopping_->id); c && c->actor) self_->send_exit(c->actor, caf::exit_reason::kill);
  }

  void on_exit(caf::exit_msg& m) {
    if (monitored_.count(m.source)) return;  // a child that linked itself to us: its down message decides
    if ((!current_ || current_->kind != job_kind::shutdown) && !pending_shutdown_) pending_shutdown_ = m.reason;
    drive();
  }

  void on_down(caf::down_msg& m) {
    auto it = monitored_.find(m.source);
    if (it == monitored_.end()) return;
    const std::string id = it->second;
    monitored_.erase(it);
    child_rec* c = find(id);
    if (!c || c->actor.address() != m.source) return;  // an instance already given up on
    c->actor = nullptr;
    c->last_exit = render(m.reason);
    if (stopping_ && stopping_->addr == m.source) {
      const bool remove = stopping_->remove_after;
      stopping_.reset();
      if (remove) erase(id);
    } else if (awaiting_ && awaiting_->addr == m.source) {
      awaiting_.reset();
      start_failed(id, m.reason);
    } else {
      // A crash (or an exit nobody asked for). The child is down now; the decision waits for the
      // job under way, if any — which may restart this child itself (the report is then stale).
      when_idle([this, id, gen = c->generation, reason = m.reason] { child_exited(id, gen, reason); });
    }
    publish();
    drive();
  }

  void child_exited(const std::string& id, std::uint64_t generation, const caf::error& reason) {
    if (quitting_) return;
    child_rec* c = find(id);
    if (!c || c->generation != generation || c->actor) return;
    switch (c->spec.restart) {
      case restart_type::permanent: break;
      case restart_type::transient:
        if (!is_shutdown_reason(reason)) break;
        if (dynamic_) erase(id);  // else it stays, not running (OTP)
        publish();
        return;
      case restart_type::temporary:
        erase(id);
        publish();
        return;
    }
    restart(id, reason);
  }

  void retry(const std::string& id) {
    if (quitting_) return;
    if (child_rec* c = find(id); c && !c->actor)
      restart(id, make_error(errc::child_start_failed, "restart attempt failed"));
  }

  // One restart decision: counted toward the intensity, then the strategy's stop/start steps.
  void restart(const std::string& id, const caf::error& reason) {
    ++restarts_;
    const auto now = clock::now();
    restart_times_.push_back(now);
    while (now - restart_times_.front() >= flags_.period) restart_times_.pop_front();
    if (restart_times_.size() > flags_.intensity) {
      escalated_ = true;
      publish();
      begin_shutdown(make_error(errc::restart_intensity,
                                "supervisor '" + name_ + "' gave up: " + std::to_string(restart_times_.size()) +
                                    " restarts within " + std::to_string(flags_.period.count()) + " ms (intensity " +
                                    std::to_string(flags_.intensity) + "); last: child '" + id + "' exited with " +
                                    render(reason)));
      return;
    }
    std::size_t i = 0;
    while (children_[i].spec.id != id) ++i;
    job j(job_kind::restart);
    j.child = id;
    std::size_t first = i;  // the children it restarts: [first, end), `i` only for one_for_one
    std::size_t last = i + 1;
    if (flags_.strategy == restart_strategy::one_for_all) first = 0, last = children_.size();
    if (flags_.strategy == restart_strategy::rest_for_one) last = children_.size();
    for (std::size_t k = last; k-- > first;)  // stop in reverse; a temporary one is not restarted
      if (k != i)
        j.steps.push_back(step{false, children_[k].spec.id, children_[k].spec.restart == restart_type::temporary});
    for (std::size_t k = first; k < last; ++k) j.steps.push_back(step{true, children_[k].spec.id});
    current_ = std::move(j);
  }

  void begin_shutdown(caf::error reason) {
    job j(job_kind::shutdown);
    j.reason = std::move(reason);
    for (auto it = children_.rbegin(); it != children_.rend(); ++it)
      if (it->actor) j.steps.push_back(step{false, it->spec.id});
    current_ = std::move(j);
  }

  void complete(job& j) {
    switch (j.kind) {
      case job_kind::init:
        started_ = true;
        for (auto& rp : start_awaiters_) rp.deliver(caf::ok_atom::value);
        start_awaiters_.clear();
        {
          std::lock_guard<std::mutex> lock(shared_->mu);
          shared_->started = true;
        }
        shared_->cv.notify_all();
        break;
      case job_kind::restart: break;
      case job_kind::start_child:
        if (j.reply.pending()) {
          child_rec* c = find(j.child);
          if (c && c->actor) j.reply.deliver(c->actor);
          else j.reply.deliver(make_error(errc::child_start_failed, "child '" + j.child + "' exited while starting"));
        }
        break;
      case job_kind::terminate_child: j.reply.deliver(caf::ok_atom::value); break;
      case job_kind::shutdown:  // what still waits is answered by terminated()
        quitting_ = true;
        self_->quit(j.reason);
        break;
    }
    publish();
  }

  // Runs when the actor has ended, however (after its last handler: nothing races with it). Does
  // the links' job (see the top) — the children it still runs get its exit reason — and answers
  // whatever still waits, so no caller of a killed supervisor waits forever.
  void terminated(const caf::actor_addr& from, const caf::error& reason) {
    quitting_ = true;
    const caf::error why = reason ? reason : caf::make_error(caf::exit_reason::user_shutdown);
    for (auto& c : children_)
      if (c.actor) caf::anon_send(c.actor, caf::exit_msg{from, why});  // what anon_send_exit sends, any reason
    const caf::error gone = make_error(errc::stopped, "supervisor '" + name_ + "' ended: " + render(reason));
    if (current_ && current_->reply.pending()) current_->reply.deliver(gone);
    for (auto& rp : start_awaiters_) rp.deliver(reason ? reason : gone);
    for (auto& f : deferred_) f();  // requests answer errc::stopped
    current_.reset();
    start_awaiters_.clear();
    deferred_.clear();
  }

  // ---- requests from supervisor_ref ----

  void on_start_child(std::uint64_t ticket) {
    auto rp = self_->make_response_promise();
    std::optional<child_spec> spec;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (auto it = shared_->handover.find(ticket); it != shared_->handover.end()) {
        spec = std::move(it->second);
        shared_->handover.erase(it);
      }
    }
    when_idle([this, rp, spec = std::move(spec)]() mutable {
      caf::error refused;
      if (quitting_) refused = stopped();
      else if (!spec) refused = make_error(errc::invalid_argument, "no child spec was handed over");
      else if (find(spec->id))
        refused = make_error(errc::name_taken, "supervisor '" + name_ + "' has a child '" + spec->id + "'");
      if (refused) {
        rp.deliver(std::move(refused));
        return;
      }
      job j(job_kind::start_child);
      j.child = spec->id;
      j.reply = std::move(rp);
      j.steps.push_back(step{true, spec->id});
      children_.push_back(child_rec{std::move(*spec)});
      current_ = std::move(j);
    });
    drive();
  }

  void on_terminate_child(std::string id) {
    auto rp = self_->make_response_promise();
    when_idle([this, rp, id]() mutable {
      caf::error refused;
      if (quitting_) refused = stopped();
      else if (!find(id))
        refused = make_error(errc::unknown_name, "supervisor '" + name_ + "' has no child '" + id + "'");
      if (refused) {
        rp.deliver(std::move(refused));
        return;
      }
      job j(job_kind::terminate_child);
      j.child = id;
      j.reply = std::move(rp);
      j.steps.push_back(step{false, id, true});
      current_ = std::move(j);
    });
    drive();
  }

  // ---- helpers ----

  child_rec* find(const std::string& id) {
    for (auto& c : children_)
      if (c.spec.id == id) return &c;
    return nullptr;
  }
  void erase(const std::string& id) {
    std::erase_if(children_, [&](const child_rec& c) { return c.spec.id == id; });
  }
  std::string render(const caf::error& e) const { return e ? self_->system().render(e) : std::string("normal"); }
  caf::error stopped() const { return make_error(errc::stopped, "supervisor '" + name_ + "' is shutting down"); }

  void publish() {
    supervisor_snapshot s;
    s.name = name_;
    s.strategy = flags_.strategy;
    s.intensity = flags_.intensity;
    s.period = flags_.period;
    s.dynamic = dynamic_;
    s.running = started_ && !quitting_;
    s.restarts = restarts_;
    s.escalated = escalated_;
    std::vector<std::shared_ptr<supervisor_shared>> nested;
    for (const auto& c : children_) {
      s.children.push_back({c.spec.id, c.spec.kind, c.spec.restart, static_cast<bool>(c.actor),
                            c.actor ? c.actor.id() : 0, c.starts > 0 ? c.starts - 1 : 0, c.last_exit, nullptr});
      nested.push_back(c.actor ? c.nested : nullptr);
    }
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->mirror = std::move(s);
    shared_->nested = std::move(nested);
  }

  caf::event_based_actor* self_;
  std::string name_;
  supervisor_flags flags_;
  bool dynamic_;
  std::shared_ptr<supervisor_shared> shared_;
  std::vector<child_rec> children_;                   // in start order
  std::map<caf::actor_addr, std::string> monitored_;  // child instances whose down has not arrived
  std::deque<clock::time_point> restart_times_;       // within the period
  std::uint64_t restarts_ = 0;
  bool escalated_ = false;
  bool started_ = false;
  bool quitting_ = false;
  std::vector<caf::response_promise> start_awaiters_;
  std::optional<job> current_;
  std::optional<stop_wait> stopping_;   // the current step waits for this child's exit ...
  std::optional<start_wait> awaiting_;  // ... or for this nested supervisor's start
  std::uint64_t stop_ticket_ = 0;
  std::optional<caf::error> pending_shutdown_;
  std::deque<std::function<void()>> deferred_;
};

caf::behavior supervisor_actor(caf::event_based_actor* self, supervisor_spec spec,
                               std::shared_ptr<supervisor_shared> shared) {
  return std::make_shared<supervisor_engine>(self, std::move(spec), std::move(shared))->behavior();
}

std::shared_ptr<supervisor_shared> make_shared_state(const supervisor_spec& spec) {
  auto s = std::make_shared<supervisor_shared>();
  s->name = spec.name;
  s->mirror.name = spec.name;
  s->mirror.strategy = spec.flags.strategy;
  s->mirror.intensity = spec.flags.intensity;
  s->mirror.period = spec.flags.period;
  s->mirror.dynamic = spec.dynamic;
  return s;
}

}  // namespace

child_spec supervisor_child(std::string id, supervisor_spec spec, restart_type restart) {
  child_spec c;
  c.id = std::move(id);
  c.kind = child_kind::supervisor;
  c.restart = restart;
  c.shutdown = shutdown_spec::infinity();
  c.start = [spec = std::move(spec)]() -> caf::expected<caf::actor> {
    start_context* ctx = current_start;
    if (!ctx) return make_error(errc::invalid_argument, "supervisor_child: only a supervisor can start it");
    if (auto err = check_spec(spec)) return err;
    auto shared = make_shared_state(spec);
    caf::actor a = ctx->system->spawn(supervisor_actor, spec, shared);
    ctx->spawned = a.id();
    ctx->spawned_shared = std::move(shared);
    return a;
  };
  return c;
}

caf::expected<supervisor_ref> start_supervisor(runtime& rt, supervisor_spec spec) {
  if (auto err = check_spec(spec)) return err;
  if (rt.is_shut_down()) return make_error(errc::stopped, "supervisor '" + spec.name + "': the runtime is shut down");
  const std::string name = spec.name;
  auto shared = make_shared_state(spec);
  caf::actor a = rt.system().spawn(supervisor_actor, std::move(spec), shared);
  {
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->started || shared->exited; });
    if (shared->exited) {
      caf::error why =
          shared->exit_reason ? shared->exit_reason : make_error(errc::stopped, "supervisor '" + name + "' exited");
      return why;
    }
  }
  rt.track(a);
  // Runtime shutdown stops the tree in order first (the runtime then exits whatever is left).
  rt.on_shutdown(
      [addr = a.address(), w = std::weak_ptr<supervisor_shared>(shared), limit = rt.config().shutdown_timeout] {
        auto s = w.lock();
        if (!s) return;
        caf::anon_send_exit(addr, caf::exit_reason::user_shutdown);
        std::unique_lock<std::mutex> lock(s->mu);
        s->cv.wait_for(lock, limit, [&] { return s->exited; });
      });
  return supervisor_ref{std::move(a), std::move(shared)};
}

caf::expected<caf::actor> supervisor_ref::start_child(child_spec spec) const {
  if (!shared_) return make_error(errc::stopped, "no supervisor");
  if (auto err = check_child(spec)) return err;
  std::uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    ticket = shared_->next_ticket++;
    shared_->handover.emplace(ticket, std::move(spec));
  }
  caf::expected<caf::actor> out = make_error(errc::stopped, "no answer");
  {
    caf::scoped_actor self{actor_.home_system()};
    self->request(actor_, caf::infinite, start_child_atom::value, ticket)
        .receive([&](caf::actor& a) { out = std::move(a); },
                 [&](caf::error& e) { out = from_request(std::move(e), shared_->name); });
  }
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->handover.erase(ticket);  // if the supervisor never took it
  return out;
}

caf::error supervisor_ref::terminate_child(const std::string& id) const {
  if (!shared_) return make_error(errc::stopped, "no supervisor");
  caf::error out;
  caf::scoped_actor self{actor_.home_system()};
  self->request(actor_, caf::infinite, terminate_child_atom::value, id)
      .receive([&](caf::ok_atom) {}, [&](caf::error& e) { out = from_request(std::move(e), shared_->name); });
  return out;
}

bool supervisor_ref::stop(std::chrono::milliseconds limit) const {
  if (!shared_) return true;
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  return wait_for_exit(limit);
}

supervisor_snapshot supervisor_ref::snapshot() const { return shared_ ? snapshot_of(*shared_) : supervisor_snapshot{}; }

std::optional<caf::error> supervisor_ref::exit_reason() const {
  if (!shared_) return std::nullopt;
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (!shared_->exited) return std::nullopt;
  return shared_->exit_reason;
}

bool supervisor_ref::wait_for_exit(std::chrono::milliseconds limit) const {
  if (!shared_) return true;
  std::unique_lock<std::mutex> lock(shared_->mu);
  return shared_->cv.wait_for(lock, limit, [&] { return shared_->exited; });
}

}  // namespace ringflow

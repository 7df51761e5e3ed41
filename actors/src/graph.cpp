// The graph builder and running graphs: see ringflow/actors/graph.hpp.
#include "ringflow/actors/graph.hpp"

#include <caf/all.hpp>
#include <caf/mailbox_element.hpp>

#include "ringflow/ingress.hpp"

#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace ringflow {

namespace {
std::string describe(const msg_type& t) {
  return (t.name.empty() ? std::string("type") : t.name) + " ('" + type_id_text(t.id) + "')";
}
}  // namespace

// One message's continuation below a node: the node's outputs (or first error) are gathered
// here until every successor's branch has answered (`pending`), then the node's window slot is
// returned and the result moves up to the parent join — or, at the root, to the pusher.
struct flow_join {
  std::atomic<std::size_t> pending{0};
  std::mutex mu;  // outputs / code / detail (branches of a fan-out answer on different threads)
  std::vector<fb_msg> outputs;
  errc code = errc::ok;
  std::string detail;
  std::atomic<std::uint32_t>* owner_in_flight = nullptr;  // the node whose slot this holds
  std::shared_ptr<flow_join> parent;
  std::function<void(graph_result)> done;  // the root only
  flow_join() = default;
  flow_join(const flow_join&) = delete;
  flow_join& operator=(const flow_join&) = delete;
  // A chain of N nodes is a chain of N joins: released one by one here, not by N nested destructors
  // (a 100,000-node chain would overflow the stack).
  ~flow_join() {
    std::shared_ptr<flow_join> p = std::move(parent);
    while (p && p.use_count() == 1) p = std::move(p->parent);  // the last owner: unlink before it dies
  }
};
using join_ptr = std::shared_ptr<flow_join>;

struct running_graph::state : std::enable_shared_from_this<running_graph::state> {
  struct node_rt {
    std::string name;
    msg_type in;
    bool entry = true;
    int kind = 0;                     // graph::node_kind
    caf::actor stage;                 // the node as an actor (node_actor(); actor nodes' requester)
    caf::actor worker;                // ring actor or user behaviour (none for CPU nodes)
    std::string ring_name;            // runtime name of a ring node's actor
    std::shared_ptr<ring_core> core;  // ring nodes
    ring_picker pick;                 // ring routes
    route_observer observe;
    cpu_node_fn fn;       // CPU nodes
    async_node_fn async;  // async nodes
    std::mutex fn_mu;     // one message at a time through fn
    std::vector<node_rt*> next;
    std::atomic<std::uint32_t> in_flight{0};
    // actor nodes: joins waiting for the behaviour's answer, by ticket (the stage actor's message)
    std::mutex park_mu;
    std::unordered_map<std::uint64_t, join_ptr> parked;
    std::uint64_t next_ticket = 1;
  };
  runtime* rt = nullptr;
  std::string name;
  std::uint32_t window = 256;
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::vector<std::unique_ptr<node_rt>> nodes;
  // Open pushes from non-actor threads (answered by their flow, or by stop()).
  std::mutex mu;
  std::unordered_map<std::uint64_t, std::function<void(graph_result)>> open;  // answer callbacks
  std::uint64_t next_ticket = 1;

  void fulfill(std::uint64_t ticket, graph_result r) {
    std::function<void(graph_result)> done;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = open.find(ticket);
      if (it == open.end()) return;  // answered by stop() already
      done = std::move(it->second);
      open.erase(it);
    }
    done(std::move(r));
  }
  node_rt* find(const std::string& n) const {
    for (auto& x : nodes)
      if (x->name == n) return x.get();
    return nullptr;
  }
  void stop(std::chrono::milliseconds timeout);

  // ---- the flow ------------------------------------------------------------------------------
  void run(node_rt* n, fb_msg&& m, const join_ptr& parent);
  void forward(node_rt* n, fb_msg&& out, const join_ptr& j);
  static void fail(const join_ptr& j, errc code, std::string detail);
  static void arrive(const join_ptr& j);
  static join_ptr root(std::function<void(graph_result)> done) {
    auto j = std::make_shared<flow_join>();
    j->pending.store(1, std::memory_order_relaxed);
    j->done = std::move(done);
    return j;
  }
};

namespace {

using node_rt = running_graph::state::node_rt;
using state_ptr = std::shared_ptr<running_graph::state>;

constexpr int kind_ring = 0, kind_route = 1, kind_cpu = 2, kind_actor = 3, kind_async = 4;  // graph::node_kind order

// The error of a CAF answer, as a graph result says it.
std::pair<errc, std::string> error_of(caf::actor_system& sys, const caf::error& e) {
  if (is_ringflow_error(e)) return {code_of(e), detail_of(e)};
  return {code_of(e), sys.render(e)};
}

}  // namespace

// One branch answered: the last one completes the join (returns the node's slot, moves the result
// up). A loop up the chain of parents, not a recursion: a path's length is the topology's.
void running_graph::state::arrive(const join_ptr& first) {
  join_ptr j = first;
  for (;;) {
    if (j->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (j->owner_in_flight) j->owner_in_flight->fetch_sub(1, std::memory_order_relaxed);
    if (!j->parent) {
      graph_result r;
      r.code = j->code;
      r.detail = std::move(j->detail);
      if (r.code == errc::ok) r.outputs = std::move(j->outputs);
      if (j->done) j->done(std::move(r));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(j->parent->mu);
      flow_join& p = *j->parent;
      if (j->code != errc::ok) {
        if (p.code == errc::ok) {
          p.code = j->code;
          p.detail = std::move(j->detail);
        }
      } else {
        for (auto& x : j->outputs) p.outputs.push_back(std::move(x));
      }
    }
    j = j->parent;  // (the old j is released here; its destructor unlinks nothing still owned)
  }
}

void running_graph::state::fail(const join_ptr& j, errc code, std::string detail) {
  {
    std::lock_guard<std::mutex> lock(j->mu);
    if (j->code == errc::ok) {
      j->code = code;
      j->detail = std::move(detail);
    }
  }
  arrive(j);
}

// `out` leaves node `n` (whose slot `j` holds): to every successor, or — a terminal — as an output.
void running_graph::state::forward(node_rt* n, fb_msg&& out, const join_ptr& j) {
  if (n->next.empty()) {
    {
      std::lock_guard<std::mutex> lock(j->mu);
      j->outputs.push_back(std::move(out));
    }
    arrive(j);
    return;
  }
  // j->pending is 1 (the node's own step): it becomes the number of branches.
  if (n->next.size() > 1) j->pending.fetch_add(n->next.size() - 1, std::memory_order_relaxed);
  for (std::size_t i = 0; i + 1 < n->next.size(); ++i) run(n->next[i], fb_msg(out), j);
  run(n->next.back(), std::move(out), j);
}

// Message `m` enters node `n`; its answer goes into `parent` (one pending branch of it). A run of
// CPU nodes with one successor each is a loop here, not a recursion (a chain's length is the
// topology's); fan-out recurses once per branch point.
void running_graph::state::run(node_rt* n, fb_msg&& first, const join_ptr& first_parent) {
  fb_msg m = std::move(first);
  join_ptr parent = first_parent;
  for (;;) {
    if (stopping.load(std::memory_order_acquire)) return fail(parent, errc::stopped, "graph '" + name + "' is stopped");
    if (m.type() != n->in.id)
      return fail(
          parent, errc::wrong_type,
          "graph node '" + n->name + "' accepts " + describe(n->in) + ", got " + describe(msg_type{m.type(), ""}));
    if (n->in_flight.fetch_add(1, std::memory_order_relaxed) >= window) {
      n->in_flight.fetch_sub(1, std::memory_order_relaxed);
      return fail(parent, errc::overloaded,
                  "graph node '" + n->name + "' has " + std::to_string(window) + " messages in flight (its window)");
    }
    auto j = std::make_shared<flow_join>();
    j->pending.store(1, std::memory_order_relaxed);
    j->owner_in_flight = &n->in_flight;
    j->parent = parent;
    switch (n->kind) {
      case kind_cpu: {
        std::optional<fb_msg> out;
        try {
          std::lock_guard<std::mutex> lock(n->fn_mu);
          out = n->fn(m);
        } catch (const std::exception& e) {
          return fail(j, errc::handler_fault, "graph node '" + n->name + "' threw: " + e.what());
        } catch (...) {
          return fail(j, errc::handler_fault, "graph node '" + n->name + "' threw a non-exception");
        }
        if (!out) return arrive(j);  // the node ended this message: an answer with no outputs
        if (n->next.size() != 1) return forward(n, std::move(*out), j);
        n = n->next.front();  // forward() to the one successor, as the next turn of this loop
        m = std::move(*out);
        parent = std::move(j);
        continue;
      }
      case kind_ring:
      case kind_route: {
        std::string why;
        std::shared_ptr<ring_core> core = n->kind == kind_ring ? n->core : n->pick(why);
        const std::uint64_t t0 = n->observe ? steady_now() : 0;
        if (!core) {
          if (n->observe) n->observe(false, t0);
          return fail(j, errc::unavailable, why.empty() ? "graph node '" + n->name + "': no ring actor" : why);
        }
        completion_target target;
        target.callback = [self = shared_from_this(), n, j, t0](call_result&& r) {
          if (n->observe) n->observe(r.ok(), t0);
          if (r.ok()) self->forward(n, std::move(r.reply), j);
          else fail(j, r.code, std::move(r.detail));
        };
        std::string detail;
        // No per-caller credit: the graph is many callers; the node window and the ring actor's window bound it.
        const errc e = core->submit(std::move(m), std::move(target), nullptr, detail);
        if (e != errc::ok) {
          if (n->observe) n->observe(false, t0);
          fail(j, e, std::move(detail));
        }
        return;
      }
      case kind_async: {
        try {
          n->async(std::move(m), [self = shared_from_this(), n, j](graph_result r) {
            if (!r.ok()) return fail(j, r.code, std::move(r.detail));
            if (r.outputs.empty()) return arrive(j);
            self->forward(n, std::move(r.outputs.front()), j);
          });
        } catch (const std::exception& e) {
          fail(j, errc::handler_fault, "graph node '" + n->name + "' threw: " + e.what());
        }
        return;
      }
      default: {  // an actor node: its stage actor requests the behaviour and continues the flow
        std::uint64_t ticket = 0;
        {
          std::lock_guard<std::mutex> lock(n->park_mu);
          ticket = n->next_ticket++;
          n->parked.emplace(ticket, j);
        }
        caf::anon_send(n->stage, ticket, std::move(m));
        return;
      }
    }
  }
}

namespace {

// A node as an actor. `fb_msg` requests (running_graph::node_actor) enter the flow at this node and
// are answered with its outputs; an actor node's stage also takes (ticket, fb_msg) from the flow:
// it requests the user's behaviour and continues the parked join with the answer.
caf::behavior stage_actor(caf::event_based_actor* self, state_ptr st, node_rt* me) {
  return {
      [=](fb_msg& in) -> caf::result<std::vector<fb_msg>> {
        // Answered from whichever thread completes the flow: the response is enqueued to the
        // requester directly (as ring_core answers actors), not through this actor.
        caf::strong_actor_ptr sender = self->current_sender();
        const caf::message_id mid = self->current_message_id();
        st->run(me, std::move(in), running_graph::state::root([sender, mid](graph_result r) {
                  if (!sender || !mid.is_request()) return;  // a `send`: nobody waits
                  const caf::message_id rid = mid.response_id();
                  if (r.ok())
                    sender->enqueue(caf::make_mailbox_element(nullptr, rid, {}, std::move(r.outputs)), nullptr);
                  else
                    sender->enqueue(
                        caf::make_mailbox_element(nullptr, rid, {}, make_error(r.code, std::move(r.detail))), nullptr);
                }));
        return caf::delegated<std::vector<fb_msg>>{};
      },
      [=](std::uint64_t ticket, fb_msg& in) {
        join_ptr j;
        {
          std::lock_guard<std::mutex> lock(me->park_mu);
          auto it = me->parked.find(ticket);
          if (it == me->parked.end()) return;
          j = std::move(it->second);
          me->parked.erase(it);
        }
        self->request(me->worker, caf::infinite, std::move(in))
            .then([st, me, j](fb_msg& out) mutable { st->forward(me, std::move(out), j); },
                  [st, j, self](caf::error& e) mutable {
                    auto [code, detail] = error_of(self->system(), e);
                    // A CAF error (the behaviour exited with the request pending) while the graph
                    // stops is the stop reaching the message first: say so, as stop() does.
                    if (!is_ringflow_error(e) && st->stopping.load(std::memory_order_acquire)) code = errc::stopped;
                    running_graph::state::fail(j, code, std::move(detail));
                  });
      },
  };
}

caf::behavior behavior_host(caf::event_based_actor* self, behavior_factory make) { return make(self); }

}  // namespace

// ---- graph -------------------------------------------------------------------------------------

graph::graph(runtime& rt, std::string name) : rt_(rt), name_(std::move(name)) {}

graph& graph::add(node n) {
  if (build_error_.empty() && n.name.empty()) build_error_ = "graph '" + name_ + "': a node needs a name";
  // Two nodes of one name: found by start()'s index (a search here per node was quadratic).
  nodes_.push_back(std::move(n));
  return *this;
}

graph& graph::cpu_node(const std::string& name, msg_type in, msg_type out, cpu_node_fn fn) {
  if (!fn && build_error_.empty()) build_error_ = "graph '" + name_ + "': CPU node '" + name + "' has no function";
  return add(
      node{.name = name, .kind = node_kind::cpu, .in = std::move(in), .out = std::move(out), .fn = std::move(fn)});
}

graph& graph::ring_route(const std::string& name, msg_type in, msg_type out, ring_picker pick, route_observer observe) {
  if (!pick && build_error_.empty()) build_error_ = "graph '" + name_ + "': ring route '" + name + "' has no picker";
  return add(node{.name = name,
                  .kind = node_kind::route,
                  .in = std::move(in),
                  .out = std::move(out),
                  .pick = std::move(pick),
                  .observe = std::move(observe)});
}

graph& graph::actor_node(const std::string& name, msg_type in, msg_type out, behavior_factory make) {
  if (!make && build_error_.empty()) build_error_ = "graph '" + name_ + "': actor node '" + name + "' has no behaviour";
  return add(node{
      .name = name, .kind = node_kind::actor, .in = std::move(in), .out = std::move(out), .make = std::move(make)});
}

graph& graph::async_node(const std::string& name, msg_type in, msg_type out, async_node_fn fn) {
  if (!fn && build_error_.empty()) build_error_ = "graph '" + name_ + "': async node '" + name + "' has no function";
  return add(
      node{.name = name, .kind = node_kind::async, .in = std::move(in), .out = std::move(out), .async = std::move(fn)});
}

graph& graph::connect(const std::string& from, const std::string& to) {
  edges_.emplace_back(from, to);
  return *this;
}

graph& graph::node_window(std::uint32_t n) {
  if (n == 0 && build_error_.empty()) build_error_ = "graph '" + name_ + "': node_window must be >= 1";
  window_ = n;
  return *this;
}

caf::expected<std::shared_ptr<running_graph>> graph::start() {
  auto invalid = [](std::string why) { return make_error(errc::graph_invalid, std::move(why)); };
  if (!build_error_.empty()) return invalid(build_error_);
  if (nodes_.empty()) return invalid("graph '" + name_ + "' has no nodes");
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (!index.emplace(nodes_[i].name, i).second)
      return invalid("graph '" + name_ + "': two nodes are named '" + nodes_[i].name + "'");
  std::vector<std::vector<std::size_t>> succ(nodes_.size());
  std::vector<std::size_t> indegree(nodes_.size(), 0);
  std::set<std::pair<std::size_t, std::size_t>> seen;
  for (const auto& [from, to] : edges_) {
    auto f = index.find(from), t = index.find(to);
    if (f == index.end()) return invalid("edge '" + from + "' -> '" + to + "': no node named '" + from + "'");
    if (t == index.end()) return invalid("edge '" + from + "' -> '" + to + "': no node named '" + to + "'");
    const node& a = nodes_[f->second];
    const node& b = nodes_[t->second];
    if (a.out.id != b.in.id)
      return invalid("edge '" + from + "' -> '" + to + "': '" + from + "' emits " + describe(a.out) + " but '" + to +
                     "' expects " + describe(b.in));
    if (!seen.insert({f->second, t->second}).second)
      return invalid("edge '" + from + "' -> '" + to + "' is given twice");
    succ[f->second].push_back(t->second);
    ++indegree[t->second];
  }
  // Topological order (Kahn); what is left over lies on a cycle.
  std::vector<std::size_t> order, deg = indegree;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (deg[i] == 0) order.push_back(i);
  for (std::size_t k = 0; k < order.size(); ++k)
    for (std::size_t s : succ[order[k]])
      if (--deg[s] == 0) order.push_back(s);
  if (order.size() != nodes_.size()) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (deg[i] != 0) return invalid("graph '" + name_ + "' has a cycle through node '" + nodes_[i].name + "'");
  }

  auto st = std::make_shared<running_graph::state>();
  st->rt = &rt_;
  st->name = name_;
  st->window = window_;
  for (const node& n : nodes_) {
    auto r = std::make_unique<node_rt>();
    r->name = n.name;
    r->in = n.in;
    r->kind = static_cast<int>(n.kind);
    r->fn = n.fn;
    r->pick = n.pick;
    r->observe = n.observe;
    r->async = n.async;
    st->nodes.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    st->nodes[i]->entry = indegree[i] == 0;
    for (std::size_t s : succ[i]) st->nodes[i]->next.push_back(st->nodes[s].get());
  }
  try {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const node& n = nodes_[i];
      node_rt& r = *st->nodes[i];
      if (n.kind == node_kind::ring) {
        r.ring_name = name_ + "." + n.name;
        r.worker = rt_.spawn_ring_actor(r.ring_name, n.in.id, n.out.id, n.ring_factory, n.ring_opts);
        r.core = rt_.ring(r.ring_name);
      } else if (n.kind == node_kind::actor) {
        r.worker = rt_.spawn(behavior_host, n.make);
      }
      r.stage = rt_.spawn(stage_actor, st, &r);
    }
  } catch (const std::exception& e) {
    st->stop(std::chrono::milliseconds(1000));
    return invalid("graph '" + name_ + "': " + e.what());
  }
  std::weak_ptr<running_graph::state> weak = st;
  rt_.on_shutdown([weak] {
    if (auto s = weak.lock()) s->stop(std::chrono::milliseconds(2000));
  });
  auto g = std::shared_ptr<running_graph>(new running_graph());
  g->name_ = name_;
  g->st_ = std::move(st);
  return g;
}

// ---- running graph -------------------------------------------------------------------------------

running_graph::~running_graph() { stop(); }

std::vector<std::string> running_graph::entries() const {
  std::vector<std::string> out;
  for (auto& n : st_->nodes)
    if (n->entry) out.push_back(n->name);
  return out;
}

caf::expected<caf::actor> running_graph::node_actor(const std::string& name) const {
  const state::node_rt* n = st_->find(name);
  if (!n) return make_error(errc::unknown_name, "graph '" + name_ + "' has no node named '" + name + "'");
  return n->stage;
}

std::future<graph_result> running_graph::push(const std::string& entry, fb_msg m) {
  auto p = std::make_shared<std::promise<graph_result>>();
  std::future<graph_result> f = p->get_future();
  push(entry, std::move(m), [p](graph_result r) { p->set_value(std::move(r)); });
  return f;
}

void running_graph::push(const std::string& entry, fb_msg m, std::function<void(graph_result)> done) {
  const state::node_rt* n = st_->find(entry);
  if (!n || !n->entry) {
    done(graph_result{n ? errc::invalid_argument : errc::unknown_name,
                      {},
                      n ? "node '" + entry + "' of graph '" + name_ + "' is not an entry (it has incoming edges)"
                        : "graph '" + name_ + "' has no node named '" + entry + "'"});
    return;
  }
  std::uint64_t ticket = 0;
  {
    std::unique_lock<std::mutex> lock(st_->mu);
    if (st_->stopping.load(std::memory_order_acquire)) {
      lock.unlock();
      done(graph_result{errc::stopped, {}, "graph '" + name_ + "' is stopped"});
      return;
    }
    ticket = st_->next_ticket++;
    st_->open.emplace(ticket, std::move(done));
  }
  // The entry node runs here, on the pushing thread; the answer comes through the ticket book.
  std::weak_ptr<state> weak = st_;
  st_->run(const_cast<state::node_rt*>(n), std::move(m), state::root([weak, ticket](graph_result r) {
             if (auto s = weak.lock()) s->fulfill(ticket, std::move(r));
           }));
}

std::uint32_t running_graph::in_flight() const noexcept {
  std::uint32_t sum = 0;
  for (auto& n : st_->nodes) sum += n->in_flight.load(std::memory_order_relaxed);
  return sum;
}

void running_graph::stop(std::chrono::milliseconds timeout) { st_->stop(timeout); }
bool running_graph::stopped() const noexcept { return st_->stopped.load(std::memory_order_acquire); }

void running_graph::state::stop(std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu);  // orders against push(): no ticket opens after this
    if (stopping.exchange(true, std::memory_order_acq_rel)) return;
  }
  // Ring nodes answer what they hold (served, or errc::stopped); CPU nodes finish their message.
  for (auto& n : nodes)
    if (n->core) n->core->stop();
  // Wait (bounded) until every node answered what it admitted.
  const auto end = std::chrono::steady_clock::now() + timeout;
  auto busy = [&] {
    for (auto& n : nodes)
      if (n->in_flight.load(std::memory_order_relaxed)) return true;
    std::lock_guard<std::mutex> lock(mu);
    return !open.empty();
  };
  while (busy() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::microseconds(200));
  // Whatever is still open is answered now: stopped, never silence.
  std::unordered_map<std::uint64_t, std::function<void(graph_result)>> left;
  {
    std::lock_guard<std::mutex> lock(mu);
    left.swap(open);
  }
  for (auto& kv : left)
    kv.second(graph_result{errc::stopped, {}, "graph '" + name + "' stopped before the message was answered"});
  for (auto& n : nodes) {
    if (n->stage) caf::anon_send_exit(n->stage, caf::exit_reason::user_shutdown);
    if (n->worker) caf::anon_send_exit(n->worker, caf::exit_reason::user_shutdown);
    if (!n->ring_name.empty()) rt->remove_ring(n->ring_name);
  }
  for (auto& n : nodes) {  // actor nodes' parked messages: their pushes were answered above
    std::lock_guard<std::mutex> lock(n->park_mu);
    n->parked.clear();
  }
  stopped.store(true, std::memory_order_release);
}

}  // namespace ringflow

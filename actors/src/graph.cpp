// The graph builder and running graphs: see ringflow/actors/graph.hpp.
#include "ringflow/actors/graph.hpp"

#include <caf/all.hpp>

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

struct running_graph::state {
  struct node_rt {
    std::string name;
    msg_type in;
    bool entry = true;
    caf::actor stage;
    caf::actor worker;                // ring actor or user behaviour (none for CPU nodes)
    std::string ring_name;            // runtime name of a ring node's actor
    std::shared_ptr<ring_core> core;  // ring nodes
    std::atomic<std::uint32_t> in_flight{0};
  };
  runtime* rt = nullptr;
  std::string name;
  std::uint32_t window = 256;
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::vector<std::unique_ptr<node_rt>> nodes;
  caf::actor gateway;
  // Open pushes from non-actor threads (answered by the gateway, or by stop()).
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
};

namespace {

using node_rt = running_graph::state::node_rt;

// Accumulates the answers of a node's successors for one message.
struct fan_in {
  std::vector<fb_msg> outputs;
  caf::error error;
  std::size_t pending = 0;
};

caf::behavior stage_actor(caf::event_based_actor* self, std::shared_ptr<running_graph::state> st, node_rt* me,
                          std::vector<caf::actor> next, cpu_node_fn fn) {
  using promise_t = caf::typed_response_promise<std::vector<fb_msg>>;
  // Sends `out` to every successor; answers `rp` when all answered (outputs, or the first error).
  auto forward = [self, me, next](fb_msg out, promise_t rp) {
    if (next.empty()) {
      me->in_flight.fetch_sub(1, std::memory_order_relaxed);
      rp.deliver(std::vector<fb_msg>{std::move(out)});
      return;
    }
    auto acc = std::make_shared<fan_in>();
    acc->pending = next.size();
    auto done = [me, acc, rp]() mutable {
      me->in_flight.fetch_sub(1, std::memory_order_relaxed);
      if (acc->error) rp.deliver(acc->error);
      else rp.deliver(std::move(acc->outputs));
    };
    for (const caf::actor& n : next) {
      self->request(n, caf::infinite, out)
          .then(
              [acc, done](std::vector<fb_msg>& r) mutable {
                for (auto& x : r) acc->outputs.push_back(std::move(x));
                if (--acc->pending == 0) done();
              },
              [acc, done](caf::error& e) mutable {
                if (!acc->error) acc->error = std::move(e);
                if (--acc->pending == 0) done();
              });
    }
  };
  return {
      [=](fb_msg& in) -> caf::result<std::vector<fb_msg>> {
        if (st->stopping.load(std::memory_order_acquire))
          return make_error(errc::stopped, "graph '" + st->name + "' is stopped");
        if (in.type() != me->in.id)
          return make_error(errc::wrong_type, "graph node '" + me->name + "' accepts " + describe(me->in) + ", got " +
                                                  describe(msg_type{in.type(), ""}));
        if (me->in_flight.load(std::memory_order_relaxed) >= st->window)
          return make_error(errc::overloaded, "graph node '" + me->name + "' has " + std::to_string(st->window) +
                                                  " messages in flight (its window)");
        me->in_flight.fetch_add(1, std::memory_order_relaxed);
        promise_t rp = self->make_response_promise<std::vector<fb_msg>>();
        if (fn) {
          std::optional<fb_msg> out;
          try {
            out = fn(in);
          } catch (const std::exception& e) {
            me->in_flight.fetch_sub(1, std::memory_order_relaxed);
            rp.deliver(make_error(errc::handler_fault, "graph node '" + me->name + "' threw: " + e.what()));
            return rp;
          }
          if (!out) {  // the node ended this message: an answer with no outputs
            me->in_flight.fetch_sub(1, std::memory_order_relaxed);
            rp.deliver(std::vector<fb_msg>{});
            return rp;
          }
          forward(std::move(*out), rp);
          return rp;
        }
        self->request(me->worker, caf::infinite, std::move(in))
            .then([forward, rp](fb_msg& out) mutable { forward(std::move(out), rp); },
                  [me, rp](caf::error& e) mutable {
                    me->in_flight.fetch_sub(1, std::memory_order_relaxed);
                    rp.deliver(std::move(e));
                  });
        return rp;
      },
  };
}

// Entry for non-actor threads: forwards a push and hands the answer to the ticket book.
caf::behavior gateway_actor(caf::event_based_actor* self, std::shared_ptr<running_graph::state> st) {
  return {
      [=](std::uint64_t ticket, caf::actor& entry, fb_msg& m) {
        self->request(entry, caf::infinite, std::move(m))
            .then(
                [st, ticket](std::vector<fb_msg>& out) {
                  st->fulfill(ticket, graph_result{errc::ok, std::move(out), {}});
                },
                [st, ticket, self](caf::error& e) {
                  std::string detail = is_ringflow_error(e) ? detail_of(e) : self->system().render(e);
                  errc code = code_of(e);
                  // A CAF error (a node actor exited with the request pending) while the graph
                  // stops is the stop reaching the message first: say so, as stop() does.
                  if (!is_ringflow_error(e) && st->stopping.load(std::memory_order_acquire)) code = errc::stopped;
                  st->fulfill(ticket, graph_result{code, {}, std::move(detail)});
                });
      },
  };
}

caf::behavior behavior_host(caf::event_based_actor* self, behavior_factory make) { return make(self); }

}  // namespace

// ---- graph -------------------------------------------------------------------------------------

graph::graph(runtime& rt, std::string name) : rt_(rt), name_(std::move(name)) {}

graph& graph::add(node n) {
  if (build_error_.empty()) {
    if (n.name.empty()) build_error_ = "graph '" + name_ + "': a node needs a name";
    for (const node& x : nodes_)
      if (x.name == n.name) build_error_ = "graph '" + name_ + "': two nodes are named '" + n.name + "'";
  }
  nodes_.push_back(std::move(n));
  return *this;
}

graph& graph::cpu_node(const std::string& name, msg_type in, msg_type out, cpu_node_fn fn) {
  if (!fn && build_error_.empty()) build_error_ = "graph '" + name_ + "': CPU node '" + name + "' has no function";
  return add(
      node{.name = name, .kind = node_kind::cpu, .in = std::move(in), .out = std::move(out), .fn = std::move(fn)});
}

graph& graph::actor_node(const std::string& name, msg_type in, msg_type out, behavior_factory make) {
  if (!make && build_error_.empty()) build_error_ = "graph '" + name_ + "': actor node '" + name + "' has no behaviour";
  return add(node{
      .name = name, .kind = node_kind::actor, .in = std::move(in), .out = std::move(out), .make = std::move(make)});
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
  for (std::size_t i = 0; i < nodes_.size(); ++i) index[nodes_[i].name] = i;
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
    st->nodes.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) st->nodes[i]->entry = indegree[i] == 0;
  try {
    // Workers first, then stages in reverse topological order (each knows its successors).
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
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      const node& n = nodes_[*it];
      node_rt& r = *st->nodes[*it];
      std::vector<caf::actor> next;
      for (std::size_t s : succ[*it]) next.push_back(st->nodes[s]->stage);
      r.stage = rt_.spawn(stage_actor, st, &r, std::move(next), n.kind == node_kind::cpu ? n.fn : cpu_node_fn{});
    }
    st->gateway = rt_.spawn(gateway_actor, st);
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
  caf::anon_send(st_->gateway, ticket, n->stage, std::move(m));
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
  if (gateway) caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
  stopped.store(true, std::memory_order_release);
}

}  // namespace ringflow

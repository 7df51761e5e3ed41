// node_client and engine::client (engine.hpp): a C++ caller of one topology node, local or on
// another cluster member. The step is the node's serve-graph entry (local) or the cluster's
// remote step (the outbox, fencing and fallback live there); this file adds the window, the
// deadline rules and the call_result shape.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "engine_state.hpp"
#include "ringflow/runtime/engine.hpp"

namespace ringflow::ops {

struct node_client::state {
  std::string node, member;
  bool remote = false;
  type_id in_type = 0;
  std::string in_name;
  async_node_fn step;
  options opts;
  std::atomic<std::uint32_t> in_flight{0};
};

const std::string& node_client::node() const { return st_->node; }
const std::string& node_client::member() const { return st_->member; }
bool node_client::remote() const { return st_->remote; }
std::uint32_t node_client::in_flight() const noexcept {
  return st_ ? st_->in_flight.load(std::memory_order_relaxed) : 0;
}

void node_client::submit(fb_msg request, std::function<void(call_result&&)> on_done) {
  auto refuse = [&](errc code, std::string detail) {
    call_result r;
    r.code = code;
    r.detail = std::move(detail);
    on_done(std::move(r));
  };
  if (!st_) return refuse(errc::stopped, "an empty node_client");
  state& s = *st_;
  if (request.type() != s.in_type)
    return refuse(errc::wrong_type, "node '" + s.node + "' takes " + s.in_name + " requests");
  const std::uint64_t now = steady_now();
  if (request.deadline_ns == 0 && s.opts.default_timeout.count() > 0)
    request.deadline_ns =
        now + static_cast<std::uint64_t>(
                  std::chrono::duration_cast<std::chrono::nanoseconds>(s.opts.default_timeout).count());
  if (request.deadline_ns != 0 && request.deadline_ns <= now)
    return refuse(errc::timeout, "the request's deadline had passed before it was sent");
  if (s.in_flight.fetch_add(1, std::memory_order_acq_rel) >= s.opts.window) {
    s.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    return refuse(errc::overloaded, "node_client of '" + s.node + "': its window of " + std::to_string(s.opts.window) +
                                        " requests is full");
  }
  std::shared_ptr<state> keep = st_;
  s.step(std::move(request), [keep, on_done = std::move(on_done)](graph_result g) mutable {
    keep->in_flight.fetch_sub(1, std::memory_order_acq_rel);
    call_result r;
    r.code = g.code;
    r.detail = std::move(g.detail);
    if (g.ok() && !g.outputs.empty()) r.reply = std::move(g.outputs.front());
    on_done(std::move(r));
  });
}

std::future<call_result> node_client::submit(fb_msg request) {
  auto p = std::make_shared<std::promise<call_result>>();
  std::future<call_result> f = p->get_future();
  submit(std::move(request), [p](call_result&& r) { p->set_value(std::move(r)); });
  return f;
}

call_result node_client::call(fb_msg request, std::chrono::nanoseconds timeout) {
  if (timeout.count() > 0) request.deadline_ns = steady_now() + static_cast<std::uint64_t>(timeout.count());
  return submit(std::move(request)).get();
}

caf::expected<node_client> engine::client(const std::string& target, node_client::options opts) const {
  const impl& m = *impl_;
  if (m.phase.load(std::memory_order_acquire) != engine_phase::running)
    return make_error(errc::stopped, "the engine is not running: a client needs a started engine");
  const std::size_t at = target.find('@');
  const std::string node = target.substr(0, at);
  const std::string member = at == std::string::npos ? std::string() : target.substr(at + 1);
  auto it = m.nodes.find(node);
  if (it == m.nodes.end()) return make_error(errc::unknown_name, "no node '" + node + "' in this topology");
  const engine_parts::node_rt& nr = *it->second;
  const node_spec& orig = *m.topo.node(node);  // the placement as written (a standby's spec is a copy)
  if (at != std::string::npos) {
    if (!m.topo.cluster.enabled())
      return make_error(errc::unknown_name, "'" + target + "': this topology has no cluster, so no members");
    if (member != orig.at)
      return make_error(errc::unknown_name,
                        "'" + target + "': node '" + node + "' runs on member '" + orig.at + "', not '" + member + "'");
  }
  const message_info* in = find_message(orig.in_type);
  auto st = std::make_shared<node_client::state>();
  st->node = node;
  st->member = orig.at;
  st->in_type = in ? in->id : 0;
  st->in_name = orig.in_type;
  st->opts = opts;
  if (st->opts.window == 0) st->opts.window = 1;
  if (nr.remote) {
    if (!m.cluster || !m.cluster->calls())
      return make_error(errc::node_unreachable, "node '" + node + "' runs on member '" + orig.at +
                                                    "' and this member opens no links to others: set "
                                                    "run_options::cluster_client (or place a load generator here)");
    st->remote = true;
    st->step = m.cluster->remote_node(orig);
  } else {
    std::shared_ptr<running_graph> serve = m.serve;
    if (!serve) return make_error(errc::stopped, "the engine's serve graph is not running");
    st->step = [serve, node](fb_msg&& msg, std::function<void(graph_result)> done) {
      serve->push(node, std::move(msg), std::move(done));
    };
  }
  return node_client(std::move(st));
}

}  // namespace ringflow::ops

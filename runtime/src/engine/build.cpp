// Build (part of the engine): the ring actors of every node, the fault schedule compiled onto their
// devices, the OTP supervisor tree and the graph. See ringflow/runtime/engine.hpp (start()).
#include <set>

#include "engine_state.hpp"

namespace ringflow::ops {

using namespace engine_parts;

namespace {

restart_strategy strategy_of(const std::string& s) {
  if (s == "one_for_all") return restart_strategy::one_for_all;
  if (s == "rest_for_one") return restart_strategy::rest_for_one;
  return restart_strategy::one_for_one;
}

}  // namespace

// Every node's run-time state; a ring node's placement and one ring_rt per replica.
void engine::impl::build_nodes() {
  const program_config pc = config_copy();
  for (const node_spec& n : topo.nodes) {
    auto nr = std::make_unique<node_rt>();
    nr->spec = &n;
    if (n.kind == node_kind::ring) {
      const kernel_info* k = find_kernel(n.kernel);
      if (std::string why = check_cpu_list(n.cpus); !why.empty())
        throw engine_error("node '" + n.name + "': cpus: " + why);
      nr->where = where.place(n, topo, pc);
      for (std::uint32_t i = 0; i < n.replicas; ++i) {
        auto r = std::make_unique<ring_rt>();
        r->name = n.replicas == 1 ? n.name : n.name + "." + std::to_string(i);
        r->node = nr.get();
        r->kernel = k;
        const cpu_incarnation_options co = rt->with_kernel_pool(cpu_options_for(n, r->name, pc));
        r->on_cpu = k->cpu_factory(co);
        r->on_device = where.device_factory(nr->where, *k, n, co);
        r->opts.verify = &catalog_payloads();  // built-in and plugin types: their Verifiers
        r->opts.window = n.window;
        r->opts.per_caller_window = n.window;
        if (k->state_bytes) {
          r->opts.state.state_bytes = k->state_bytes;
          r->opts.state.snapshot_every = n.snapshot_every;
          r->opts.state.snapshot_ms = n.snapshot_ms;
          r->opts.state.journal_max = n.journal_max;
          r->opts.state.verify = n.state_verify;  // the host replay runs the kernel's CPU handler
          r->opts.state.host_init = k->init_state;
          r->opts.state.host_apply = k->apply_state;
          if (n.checkpoint)  // resume from the node's durable checkpoint (checkpointer.hpp)
            checkpoints.resume(n, r->name, *k, opts.discard_checkpoints, r->opts.state);
        }
        if (tracer) {
          trace_writer* t = tracer.get();
          r->opts.trace = std::make_shared<const ring_trace_sink>([t](const ring_hop_trace& h) { t->hop(h); });
        }
        nr->rings.push_back(r->name);
        ring_to_node[r->name] = nr.get();
        rings.push_back(std::move(r));
      }
    }
    nodes[n.name] = std::move(nr);
  }
  compile_faults();
}

// The fault schedule onto each node's devices (time rules count from start_load()).
void engine::impl::compile_faults() {
  for (const fault_spec& f : topo.faults) {
    node_rt& nr = *nodes.at(f.node);
    if (f.kind == "actor_crash") {  // the graph's route asks it per message (ring_picker_of)
      if (!nr.actor_crashes) nr.actor_crashes = std::make_unique<sim::fault_injector>(0xc7a5 + nodes.size());
      sim::fault_rule rule = rule_of(f);
      if (f.at_s >= 0) rule.after = std::chrono::nanoseconds(static_cast<std::int64_t>(f.at_s * 1e9));
      nr.actor_crashes->add(rule);
      continue;
    }
    if (nr.where.host) {  // the service's part of a kernel host's schedule (tick() sends it)
      if (f.kind == "kill_worker") nr.host_faults.add_kill(f.at_s);
      else if (f.at_s >= 0) nr.host_faults.add_inject(f.at_s, sim::fault_rule::at(*sim::fault_kind_from(f.kind), 1));
      continue;
    }
    sim::fault_rule rule = rule_of(f);
    if (f.at_s >= 0) rule.after = std::chrono::nanoseconds(static_cast<std::int64_t>(f.at_s * 1e9));
    nr.where.sim->faults().add(rule);
    if (f.restore_after_s >= 0) nr.restore.set(f.restore_after_s);
  }
  for (auto& [name, nr] : nodes) nr->host_faults.seal();
}

caf::actor engine::impl::spawn_ring(ring_rt& r) {
  if (r.node->where.ladder_device)
    return ladder->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.node->where.ladder_device,
                                    r.on_device, r.on_cpu, r.opts);
  return rt->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.on_cpu, r.opts);
}

child_spec engine::impl::ring_child(ring_rt& r) {
  child_spec c;
  c.id = r.name;
  c.start = [this, &r]() -> caf::expected<caf::actor> {
    r.starts.fetch_add(1, std::memory_order_relaxed);
    try {
      return spawn_ring(r);
    } catch (const std::exception& e) {
      return make_error(errc::child_start_failed, "ring actor '" + r.name + "': " + e.what());
    }
  };
  c.restart = restart_type::permanent;
  c.shutdown = shutdown_spec::timeout(std::chrono::milliseconds(config_copy().ladder.stop_timeout_ms + 1000));
  return c;
}

std::vector<child_spec> engine::impl::children_of(const std::string& sup) {
  std::vector<child_spec> out;
  for (const supervisor_entry& s : topo.supervisors) {
    if (s.parent != sup) continue;
    supervisor_spec spec;
    spec.name = s.name;
    spec.flags.strategy = strategy_of(s.strategy);
    spec.flags.intensity = s.intensity;
    spec.flags.period = std::chrono::milliseconds(s.period_ms);
    for (const std::string& node : s.children)
      for (auto& r : rings)
        if (r->node->spec->name == node) spec.children.push_back(ring_child(*r));
    for (child_spec& nested : children_of(s.name)) spec.children.push_back(std::move(nested));
    out.push_back(supervisor_child(s.name, std::move(spec)));
  }
  return out;
}

// `root` (one_for_one) holds the topology's supervisors and every ring node none of them claims.
void engine::impl::build_tree() {
  supervisor_spec spec;
  spec.name = "root";
  spec.flags.strategy = restart_strategy::one_for_one;
  spec.flags.intensity = 5;
  spec.flags.period = std::chrono::milliseconds(10000);
  std::set<std::string> claimed;
  for (const supervisor_entry& s : topo.supervisors) claimed.insert(s.children.begin(), s.children.end());
  for (auto& r : rings)
    if (!claimed.count(r->node->spec->name)) spec.children.push_back(ring_child(*r));
  for (child_spec& c : children_of("")) spec.children.push_back(std::move(c));
  if (spec.children.empty()) return;  // CPU nodes only
  caf::expected<supervisor_ref> s = start_supervisor(*rt, std::move(spec));
  if (!s) throw engine_error("the supervisor tree did not start: " + rt->system().render(s.error()));
  root = std::move(*s);
}

// A ring node's route: each message goes straight into one of its ring actors' cores (round
// robin, looked up by name so a ring actor restarted by its supervisor is used at once).
// An actor_crash fault kills the picked ring actor and still routes the message to its core: the
// message is one of the pending callers the crash answers `stopped`.
ring_picker engine::impl::ring_picker_of(node_rt* nr) {
  runtime* r = rt.get();
  return [this, nr, r](std::string& why) -> std::shared_ptr<ring_core> {
    nr->in_flight.fetch_add(1, std::memory_order_relaxed);  // nr->done() (the observer) takes it back
    const std::string& name = nr->rings[nr->rr.fetch_add(1, std::memory_order_relaxed) % nr->rings.size()];
    caf::expected<registry_entry> e = r->registry().entry(name);
    if (!e || !e->core || e->core->stopping()) {
      why = "ring actor '" + name + "' is not running (being restarted?)";
      return nullptr;
    }
    if (nr->actor_crashes && nr->actor_crashes->on_request(name)) crash_actor(*nr, name, e->actor);
    return std::move(e->core);
  };
}

void engine::impl::build_graph() {
  ringflow::graph g(*rt, topo.name);
  g.node_window(static_cast<std::uint32_t>(config_copy().limits.node_window));
  for (const node_spec& n : topo.nodes) {
    node_rt* nr = nodes.at(n.name).get();
    const message_info* in = find_message(n.in_type);
    const message_info* out = find_message(n.out_type);
    const msg_type tin{in->id, in->name}, tout{out->id, out->name};
    if (n.kind == node_kind::ring) {
      g.ring_route(n.name, tin, tout, ring_picker_of(nr), [nr](bool ok, std::uint64_t t0) { nr->done(ok, t0); });
      continue;
    }
    cpu_node_fn fn = find_function(n.function)->make(*in);
    g.cpu_node(n.name, tin, tout, [fn, nr](const fb_msg& m) -> std::optional<fb_msg> {
      const std::uint64_t t0 = steady_now();
      nr->in_flight.fetch_add(1, std::memory_order_relaxed);
      try {
        std::optional<fb_msg> r = fn(m);
        nr->done(true, t0);
        return r;
      } catch (...) {
        nr->done(false, t0);
        throw;
      }
    });
  }
  for (const edge_spec& e : topo.edges) g.connect(e.from, e.to);
  caf::expected<std::shared_ptr<running_graph>> started = g.start();
  if (!started) throw engine_error("the graph did not start: " + rt->system().render(started.error()));
  graph = std::move(*started);
}

}  // namespace ringflow::ops

// Build (part of the engine): the ring actors of every node, the fault schedule compiled onto their
// devices, the OTP supervisor tree and the graph. See ringflow/runtime/engine.hpp (start()).
#include <algorithm>
#include <filesystem>
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

// This member's part of a cluster topology: the faults of its own nodes (member faults are
// `cluster up`'s), its load generators, and the cluster part (started after the graphs).
void engine::impl::join_cluster() {
  if (opts.member.empty())
    throw engine_error(
        "this topology has a 'cluster:' section: run one member with --member NAME, or every member "
        "with `ringflow cluster up`");
  if (!topo.cluster.member(opts.member))
    throw engine_error("--member " + opts.member + ": not a member of this cluster");
  if (std::string why = cluster_member::check_tls(topo.cluster); !why.empty())
    throw engine_error("certificate problem: " + why);
  std::vector<fault_spec> mine;
  for (const fault_spec& f : topo.faults) {
    if (f.on_member()) {
      log.info("cluster",
               "fault " + f.kind + " on member " + f.member +
                   " ignored: only `ringflow cluster up` carries out member faults",
               {{"member", opts.member}});
      continue;
    }
    const node_spec* n = topo.node(f.node);
    if (n && n->at == opts.member) mine.push_back(f);
  }
  topo.faults = std::move(mine);
  std::vector<load_spec> load_here;
  for (const load_spec& l : topo.load)
    if (l.at == opts.member) load_here.push_back(l);
  topo.load = std::move(load_here);
  cluster = std::make_unique<cluster_member>(topo, opts.member, opts.cluster_dir, log,
                                             !topo.load.empty() || opts.cluster_client);
  if (!opts.cluster_listen.empty()) cluster->listen_host(opts.cluster_listen);
  const program_config pc = config_copy();
  member_breaker_settings mb;  // the devices' breaker settings, for members too
  mb.failure_threshold = static_cast<std::uint32_t>(pc.breaker.failure_threshold);
  mb.window_ms = static_cast<std::uint64_t>(pc.breaker.window_ms);
  mb.cooldown_ms = static_cast<std::uint64_t>(pc.breaker.cooldown_ms);
  mb.cooldown_max_ms = static_cast<std::uint64_t>(pc.breaker.cooldown_max_ms);
  mb.backoff = pc.breaker.backoff;
  cluster->breaker(mb);
}

// Every node's run-time state; a ring node's placement and one ring_rt per replica.
void engine::impl::build_nodes() {
  const program_config pc = config_copy();
  for (const node_spec& orig : topo.nodes) {
    auto nr = std::make_unique<node_rt>();
    nr->spec = &orig;
    if (cluster && orig.at != opts.member) {
      nr->remote = true;
      const bool local_standby = orig.fallback == "local_cpu";
      if (!local_standby && orig.fallback != opts.member) {
        nodes[orig.name] = std::move(nr);
        continue;
      }
      nr->standby = true;           // this member serves it while its own member is lost
      nr->dormant = orig.stateful;  // one state: started only when taken over (take_over())
      node_spec copy = orig;
      if (local_standby) {
        copy.backend = "cpu";
        copy.host = "in-process";
        copy.cpus.clear();
      }
      copy.at = opts.member;
      nr->spec = &standby_specs.emplace_back(std::move(copy));
    }
    const node_spec& n = *nr->spec;
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
          // Resume from the node's durable checkpoint (checkpointer.hpp); a dormant standby does
          // at its takeover. The home of a node that can fail over waits for a hand-back.
          const bool can_move = cluster && !orig.fallback.empty() && orig.fallback != "local_cpu";
          if (n.checkpoint && !nr->dormant)
            checkpoints.resume(n, r->name, *k, opts.discard_checkpoints, r->opts.state,
                               opts.member.empty() ? std::string("run") : "member " + opts.member,
                               can_move ? topo.cluster.start_timeout_ms : 0);
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
        if (r->node->spec->name == node && !r->node->dormant) spec.children.push_back(ring_child(*r));
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
    if (!claimed.count(r->node->spec->name) && !r->node->dormant) spec.children.push_back(ring_child(*r));
  for (child_spec& c : children_of("")) spec.children.push_back(std::move(c));
  if (spec.children.empty() && !has_dormant()) return;  // CPU nodes only (a takeover adds a child)
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

namespace {

// A node of another member: its step goes over the cluster's link, counted like a local node's.
async_node_fn counted(async_node_fn step, node_rt* nr) {
  return [step = std::move(step), nr](fb_msg&& m, std::function<void(graph_result)> done) {
    const std::uint64_t t0 = steady_now();
    nr->in_flight.fetch_add(1, std::memory_order_relaxed);
    step(std::move(m), [done = std::move(done), nr, t0](graph_result r) {
      nr->done(r.ok(), t0);
      done(std::move(r));
    });
  };
}

}  // namespace

// A node's local step in graph `g`: its ring actors' route or its CPU function.
void engine::impl::add_local_node(ringflow::graph& g, const node_spec& n, node_rt* nr) {
  const message_info* in = find_message(n.in_type);
  const message_info* out = find_message(n.out_type);
  const msg_type tin{in->id, in->name}, tout{out->id, out->name};
  if (n.kind == node_kind::ring) {
    g.ring_route(n.name, tin, tout, ring_picker_of(nr), [nr](bool ok, std::uint64_t t0) { nr->done(ok, t0); });
    return;
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

// The nodes built here, without edges: one hop each, for engine::client, other members' calls and
// local_cpu fallbacks.
void engine::impl::build_serve_graph() {
  ringflow::graph g(*rt, topo.name + ".serve");
  g.node_window(static_cast<std::uint32_t>(config_copy().limits.node_window));
  std::size_t built = 0;
  for (const node_spec& n : topo.nodes) {
    node_rt* nr = nodes.at(n.name).get();
    if (nr->remote && !nr->standby) continue;
    add_local_node(g, *nr->spec, nr);
    ++built;
  }
  if (built == 0) return;  // this member runs no node: it only calls others
  caf::expected<std::shared_ptr<running_graph>> started = g.start();
  if (!started) throw engine_error("the serve graph did not start: " + rt->system().render(started.error()));
  serve = std::move(*started);
}

void engine::impl::build_graph() {
  ringflow::graph g(*rt, topo.name);
  g.node_window(static_cast<std::uint32_t>(config_copy().limits.node_window));
  for (const node_spec& n : topo.nodes) {
    node_rt* nr = nodes.at(n.name).get();
    if (nr->remote) {
      const message_info* in = find_message(n.in_type);
      const message_info* out = find_message(n.out_type);
      g.async_node(n.name, {in->id, in->name}, {out->id, out->name}, counted(cluster->remote_node(n), nr));
      continue;
    }
    add_local_node(g, n, nr);
  }
  for (const edge_spec& e : topo.edges) g.connect(e.from, e.to);
  caf::expected<std::shared_ptr<running_graph>> started = g.start();
  if (!started) throw engine_error("the graph did not start: " + rt->system().render(started.error()));
  graph = std::move(*started);
}

// ---- stateful standbys: takeover and hand-back ----------------------------------------------------

bool engine::impl::has_dormant() const {
  return std::any_of(nodes.begin(), nodes.end(), [](const auto& kv) { return kv.second->dormant; });
}

std::string engine::impl::take_over(const std::string& node) {
  std::lock_guard<std::mutex> lock(takeover_mu);
  auto it = nodes.find(node);
  if (it == nodes.end() || !it->second->dormant) return "node '" + node + "' has no standby on this member";
  node_rt& nr = *it->second;
  if (nr.taken) return {};
  ring_rt* r = nullptr;
  for (auto& x : rings)
    if (x->node == &nr) r = x.get();
  const node_spec* home = topo.node(node);
  if (!r || !root || !home) return "node '" + node + "': nothing to start here";
  r->opts.state.initial.clear();
  r->opts.state.initial_covered = 0;
  r->opts.state.durable.reset();
  try {  // its lock first (refused while the home member still holds it), then its state from disk
    checkpoints.resume(*nr.spec, r->name, *r->kernel, false, r->opts.state,
                       "member " + opts.member + " (took it over from " + home->at + ")");
  } catch (const std::exception& e) {
    return e.what();
  }
  rt->remove_ring(r->name);  // an earlier takeover's stopped actor: its state is older than the disk's
  caf::expected<caf::actor> a = root->start_child(ring_child(*r));
  if (!a) {
    checkpoints.hand_back(r->name, nullptr);
    return "node '" + node + "': its ring actor did not start: " + rt->system().render(a.error());
  }
  nr.taken = true;
  log.warn("cluster", "took node " + node + " over from member " + home->at + " (its state from its checkpoint folder)",
           {{"node", node}, {"from", home->at}, {"requests_covered", r->opts.state.initial_covered}});
  return {};
}

void engine::impl::hand_back(const std::string& node) {
  std::lock_guard<std::mutex> lock(takeover_mu);
  auto it = nodes.find(node);
  if (it == nodes.end() || !it->second->taken) return;
  node_rt& nr = *it->second;
  for (auto& r : rings) {
    if (r->node != &nr) continue;
    const std::shared_ptr<ring_core> core = rt->ring(r->name);
    if (root) (void)root->terminate_child(r->name);
    checkpoints.hand_back(r->name, core);  // its last checkpoint, its journal closed, its lock released
    rt->remove_ring(r->name);
  }
  nr.taken = false;
  const node_spec* home = topo.node(node);
  log.info("cluster", "handed node " + node + " back to member " + (home ? home->at : std::string("?")),
           {{"node", node}});
}

bool engine::impl::wanted_back(const std::string& node) const {
  auto it = nodes.find(node);
  if (it == nodes.end() || !it->second->dormant) return false;
  const node_spec& n = *it->second->spec;
  // A request of the home member (checkpointer::resume: refreshed while it waits for the lock, removed
  // once it serves); one older than the rest of its start (start_timeout_ms) + 1 s is stale (it died).
  std::error_code ec;
  const std::filesystem::path want = std::filesystem::path(n.checkpoint_path) / (n.name + ".want");
  const auto t = std::filesystem::last_write_time(want, ec);
  if (ec) return false;
  const auto age = std::filesystem::file_time_type::clock::now() - t;
  return age < std::chrono::milliseconds(std::uint64_t{topo.cluster.start_timeout_ms} + 1000);
}

}  // namespace ringflow::ops

// The topology engine's lifecycle: see ringflow/runtime/engine.hpp. The parts it composes are
// placement.cpp (where ring nodes run), fault_schedule.cpp (the faults: section), build.cpp (ring
// actors, supervisor tree, graph), load_driver.cpp (generators and accounting) and exposition.cpp
// (/metrics and /topology over a snapshot taken here).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "engine_state.hpp"
#include "exposition.hpp"
#include "ringflow/process/segment.hpp"
#include "ringflow/runtime/plugins.hpp"

namespace ringflow::ops {

using namespace engine_parts;

const char* to_string(engine_phase p) noexcept {
  switch (p) {
    case engine_phase::created: return "created";
    case engine_phase::starting: return "starting";
    case engine_phase::running: return "running";
    case engine_phase::draining: return "draining";
    case engine_phase::stopped: return "stopped";
  }
  return "unknown";
}

nlohmann::json run_summary::to_json() const {
  return {{"sent", sent},
          {"replied", replied},
          {"errors", errors},
          {"lost", lost},
          {"duplicated", duplicated},
          {"wrong", wrong},
          {"faults_injected", faults_injected},
          {"faults_detected", faults_detected},
          {"restarts", restarts},
          {"reinits", reinits},
          {"reroutes", reroutes},
          {"failbacks", failbacks},
          {"replays", replays},
          {"supervisor_restarts", supervisor_restarts},
          {"spans", spans},
          {"spans_dropped", spans_dropped},
          {"worker_restarts", worker_restarts},
          {"actor_crashes", actor_crashes},
          {"ring_actor_restarts", ring_actor_restarts},
          {"member", member.empty() ? nlohmann::json(nullptr) : nlohmann::json(member)},
          {"member_failovers", member_failovers},
          {"member_failbacks", member_failbacks},
          {"gave_up", gave_up.empty() ? nlohmann::json(nullptr) : nlohmann::json(gave_up)},
          {"p50_us", p50_us},
          {"p99_us", p99_us},
          {"p999_us", p999_us},
          {"max_us", max_us},
          {"intended_p50_us", intended_p50_us},
          {"intended_p99_us", intended_p99_us},
          {"intended_p999_us", intended_p999_us},
          {"duration_s", duration_s},
          {"throughput_per_s", throughput_per_s},
          {"errors_by_code", errors_by_code},
          {"failed_sequences", failed_sequences},
          {"failed_sequences_dropped", failed_sequences_dropped},
          {"ok", ok()}};
}

// ---- ladder events -------------------------------------------------------------------------------------

void engine::impl::on_ladder_event(const ladder_event& e) {
  nlohmann::json f = nlohmann::json::parse(e.to_json(), nullptr, false);
  if (!f.is_object()) f = nlohmann::json::object();
  auto it = ring_to_node.find(e.ring);
  const std::string node = it == ring_to_node.end() ? e.ring : it->second->spec->name;
  f["node"] = node;
  {
    std::lock_guard<std::mutex> lock(tally.mu);
    actor_counters& c = tally.by_node[node];
    switch (e.what) {
      case ladder_event::kind::fault: ++c.faults[e.fault.empty() ? "unknown" : e.fault], ++tally.faults_detected; break;
      case ladder_event::kind::restart: ++c.restarts, ++tally.restarts; break;
      case ladder_event::kind::reinitialize: ++c.reinits, ++tally.reinits; break;
      case ladder_event::kind::reroute: ++c.reroutes, ++tally.reroutes; break;
      case ladder_event::kind::fail_back: ++c.failbacks, ++tally.failbacks; break;
      case ladder_event::kind::recovered: ++c.recoveries, ++tally.recoveries; break;
      default: break;
    }
  }
  const bool bad = e.what == ladder_event::kind::fault || e.what == ladder_event::kind::step_failed ||
                   e.what == ladder_event::kind::breaker_open || e.what == ladder_event::kind::leaked;
  std::string msg = std::string(ringflow::to_string(e.what)) + " " + e.ring;
  if (!e.fault.empty()) msg += " (" + e.fault + ")";
  if (!e.backend.empty() && e.what != ladder_event::kind::fault) msg += " -> " + e.backend;
  log.write(bad ? log_level::warn : log_level::info, "ladder", msg, f);
}

// The timed part of the fault schedule: kernel-host kills and injections (from start_load()), and
// the restore of lost sim devices.
void engine::impl::tick_faults() {
  const std::uint64_t now = steady_now();
  const std::uint64_t load_ns = load_start_ns.load();
  const double since_load = load_ns ? seconds_between(load_ns, now) : -1;
  for (auto& [name, n] : nodes) {
    const auto& host = n->where.host;
    if (!host || since_load < 0) continue;
    for (std::size_t k = n->host_faults.kills_due(since_load); k > 0; --k) {
      const std::vector<pid_t> pids = host->worker_pids();
      const std::size_t killed = host->signal_workers(SIGKILL);
      n->kills.fetch_add(killed, std::memory_order_relaxed);
      log.warn("program", "fault schedule: SIGKILL to the kernel-host workers of node " + name,
               {{"node", name}, {"device", host->id()}, {"pids", pids}, {"killed", killed}});
    }
    for (const sim::fault_rule& r : n->host_faults.injects_due(since_load)) {
      const std::size_t told = host->inject(r);
      log.info("program",
               std::string("fault schedule: ") + sim::to_string(r.kind) +
                   " injected into the kernel-host workers of node " + name,
               {{"node", name}, {"device", host->id()}, {"workers", told}});
    }
  }
  for (auto& [name, n] : nodes) {
    const auto& dev = n->where.sim;
    if (!dev || !n->restore.armed()) continue;
    if (n->restore.due(dev->lost(), now)) {
      dev->restore();
      log.info("program", "device " + dev->id() + " restored (fault schedule: restore_after_s)",
               {{"device", dev->id()}, {"node", name}});
    }
  }
}

void engine::impl::crash_actor(const node_rt& n, const std::string& name, const caf::actor& a) {
  log.warn("program", "fault schedule: ring actor " + name + " crashed (actor_crash)",
           {{"node", n.spec->name}, {"actor", name}});
  caf::anon_send_exit(a, caf::exit_reason::kill);
}

void engine::impl::watch_root() {
  if (!root || phase.load(std::memory_order_acquire) == engine_phase::stopped) return;
  const std::optional<caf::error> why = root->exit_reason();
  if (!why) return;
  {
    std::lock_guard<std::mutex> lock(gave_up_mu);
    if (!gave_up.empty()) return;
    gave_up = root->snapshot().name;
  }
  log.error("supervision",
            "the root supervisor gave up (restart intensity exceeded): the topology stops, open messages are "
            "answered stopped",
            {{"supervisor", root->snapshot().name}, {"reason", *why ? rt->system().render(*why) : "normal"}});
}

// ---- lifecycle -------------------------------------------------------------------------------------------

engine::engine(topology topo, program_config cfg, event_log& log, run_options opts)
    : impl_(std::make_unique<impl>(std::move(topo), std::move(cfg), log, std::move(opts))) {}

engine::~engine() { stop(); }

engine_phase engine::phase() const noexcept { return impl_->phase.load(std::memory_order_acquire); }
const program_config& engine::config() const { return impl_->cfg; }
std::shared_ptr<running_graph> engine::graph() const {
  return impl_->phase.load(std::memory_order_acquire) == engine_phase::stopped ? nullptr : impl_->graph;
}

void engine::start() {
  impl& m = *impl_;
  m.phase.store(engine_phase::starting, std::memory_order_release);
  m.start_ns.store(steady_now());
  const program_config cfg = m.config_copy();
  m.load.configure(cfg.limits.ingress_rate_per_s, cfg.limits.max_payload_bytes, cfg.trace.sample_ratio);
  try {
    const std::string trace_file = m.opts.trace_file.empty() ? cfg.trace.file : m.opts.trace_file;
    if (!trace_file.empty()) m.tracer = std::make_unique<trace_writer>(trace_file);
    runtime_config rc;
    rc.scheduler_threads = static_cast<std::size_t>(cfg.runtime.scheduler_threads);
    rc.poller.wait = wait_policy::of(parse_wait_mode(cfg.runtime.wait).value_or(wait_mode::adaptive));
    rc.kernel_wait = rc.poller.wait;  // ring nodes with another `wait:` get a kernel thread of their own
    rc.kernel_threads = static_cast<int>(cfg.runtime.kernel_threads);
    rc.poller.cpus = parse_cpu_list(cfg.runtime.cpus_poller).value_or(std::vector<int>{});
    rc.scheduler_cpus = parse_cpu_list(cfg.runtime.cpus_scheduler).value_or(std::vector<int>{});
    rc.shutdown_timeout = std::chrono::milliseconds(cfg.runtime.shutdown_timeout_ms);
    if (m.topo.cluster.enabled()) {
      m.join_cluster();  // this member's part of the topology
      const cluster_spec cs = m.topo.cluster;
      rc.configure_caf = [cs](caf::actor_system_config& c) { engine_parts::cluster_member::configure(c, cs); };
    }
    m.rt = std::make_unique<runtime>(rc);
    ladder_config lc = to_ladder_config(cfg);
    lc.on_event = [&m](const ladder_event& e) { m.on_ladder_event(e); };
    m.ladder = std::make_unique<fault_ladder>(*m.rt, lc);
    for (const node_spec& n : m.topo.nodes)
      if (n.host == "process") {  // segments a crashed earlier run left behind
        for (const std::string& seg : process::reclaim_stale_segments())
          m.log.audit("reclaimed a stale kernel-host segment (its service is gone)", {{"segment", seg}});
        break;
      }
    const std::vector<loaded_plugin> loaded = loaded_plugins();
    for (const plugin_ref& p : m.topo.plugins)  // plugins are code: every one is audited
      for (const loaded_plugin& l : loaded)
        if (l.sha256 == p.sha256)
          m.log.audit("plugin loaded", {{"path", p.resolved},
                                        {"sha256", l.sha256},
                                        {"plugin", l.name},
                                        {"ringflow", l.ringflow_version},
                                        {"flatbuffers", l.flatbuffers_version},
                                        {"kernels", l.kernels},
                                        {"messages", l.messages},
                                        {"functions", l.functions},
                                        {"gpu_tables", l.gpu_backends}});
    m.build_nodes();
    m.build_tree();
    m.build_graph();
    m.build_serve_graph();  // engine::client's local nodes, other members' calls, local_cpu fallbacks
    if (m.cluster && m.has_dormant()) {
      m.checkpoints.expect_takeovers();
      engine_parts::standby_hooks h;
      impl* mp = &m;
      h.take_over = [mp](const std::string& node) { return mp->take_over(node); };
      h.hand_back = [mp](const std::string& node) { mp->hand_back(node); };
      h.wanted_back = [mp](const std::string& node) { return mp->wanted_back(node); };
      for (const auto& [name, nr] : m.nodes)
        if (nr->dormant) h.nodes.insert(name);
      m.cluster->standbys(std::move(h));
    }
    if (m.cluster) m.cluster->start(m.rt->system(), m.serve);
    m.checkpoints.clear_wants();  // this member serves its nodes again: the one that held them may forget them
    runtime* rt = m.rt.get();
    m.checkpoints.start([rt](const std::string& ring) -> std::shared_ptr<ring_core> {
      caf::expected<registry_entry> e = rt->registry().entry(ring);
      return e && e->core && !e->core->stopping() ? e->core : nullptr;
    });
  } catch (const std::exception& e) {
    m.checkpoints.clear_wants();
    stop();
    throw engine_error(e.what());
  }
  m.phase.store(engine_phase::running, std::memory_order_release);
  nlohmann::json f = {{"topology", m.topo.name},
                      {"nodes", m.topo.nodes.size()},
                      {"ring_actors", m.rings.size()},
                      {"edges", m.topo.edges.size()},
                      {"supervisors", m.topo.supervisors.size()}};
  m.log.info("program", "topology started", f);
}

void engine::start_load() {
  impl& m = *impl_;
  m.load_start_ns.store(steady_now());
  for (auto& [name, n] : m.nodes)
    if (n->where.sim) n->where.sim->faults().arm();  // time-triggered faults count from here
  for (auto& [name, n] : m.nodes)
    if (n->actor_crashes) n->actor_crashes->arm();
  m.load.start(m.topo.load, m.graph, m.tracer.get(), m.load_start_ns.load());
}

bool engine::load_finished() const { return impl_->load.finished(); }

void engine::tick() {
  impl_->tick_faults();
  impl_->watch_root();
  impl_->tick_verify();
}

void engine::impl::tick_verify() {
  if (!runtime_live()) return;
  for (auto& r : rings) {
    if (!r->opts.state.verify) continue;
    const std::shared_ptr<ring_core> core = rt->ring(r->name);
    if (!core) continue;
    const std::uint64_t failures = core->stats().state_verify_failures;
    if (failures <= r->verify_failures_logged) continue;
    r->verify_failures_logged = failures;
    const std::optional<state_view> v = core->state();
    log.error("state", "node " + r->name + ": state.verify: " + (v ? v->verify_failure : std::string()),
              {{"node", r->name}, {"failures", failures}});
  }
}

std::string engine::gave_up() const {
  std::lock_guard<std::mutex> lock(impl_->gave_up_mu);
  return impl_->gave_up;
}

void engine::drain() {
  impl& m = *impl_;
  if (m.phase.load() != engine_phase::running) return;
  m.phase.store(engine_phase::draining, std::memory_order_release);
  m.load.stop();
  const auto limit =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(m.config_copy().runtime.drain_timeout_ms);
  while (m.load.open_total() != 0 && std::chrono::steady_clock::now() < limit) {
    tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling the open count while answers arrive
  }
  const std::uint64_t left = m.load.open_total();
  m.log.write(left ? log_level::warn : log_level::info, "program",
              left ? "drain timed out; the graph answers the rest (stopped)" : "drained: every message answered",
              {{"open", left}});
}

void engine::stop() {
  impl& m = *impl_;
  if (m.phase.exchange(engine_phase::stopped) == engine_phase::stopped) return;
  m.load.stop();
  m.checkpoints.stop();
  if (m.cluster) m.cluster->stop();  // remote requests still open: answered errc::stopped
  if (m.graph) m.graph->stop();      // answers whatever is still open (errc::stopped)
  if (m.serve) m.serve->stop();
  if (m.root) m.root->stop();
  if (m.ladder) m.ladder->stop();
  if (m.rt) {  // the stateful nodes' last checkpoints: everything their stopped ring actors answered
    runtime* rt = m.rt.get();
    m.checkpoints.final_checkpoint([rt](const std::string& ring) { return rt->ring(ring); });
  }
  m.lost_final.store(m.load.counts().open);
  m.end_ns.store(steady_now());
  std::uint64_t replays = 0;
  if (m.rt)  // the ring cores go with the runtime: keep what the summary reads from them
    for (const auto& r : m.rings)
      if (auto core = m.rt->ring(r->name)) replays += core->stats().replayed;
  m.replays_final.store(replays);
  m.finals.store(true, std::memory_order_release);  // after the finals: summary() may use them now
  if (m.rt) m.rt->shutdown();
  // Kernel hosts the ladder had to leak (a worker that did not finish within its stop wait): their
  // segments are unlinked here, so a run never leaves one in /dev/shm (ringflow_chaos checks).
  for (auto& [name, n] : m.nodes)
    if (n->where.host)
      if (const std::vector<std::string> left = n->where.host->unlink_leftovers(); !left.empty())
        m.log.warn("program", "removed the segments of kernel-host incarnations the fault ladder had abandoned",
                   {{"node", name}, {"segments", left}});
  m.where.stop_gpu_kernels();
  if (m.tracer) m.tracer->flush();
}

bool engine::ready(nlohmann::json& reason) const {
  const impl& m = *impl_;
  const engine_phase p = phase();
  if (p != engine_phase::running) {
    reason = {{"status", "not ready"}, {"reason", std::string("the topology is ") + to_string(p)}};
    return false;
  }
  for (const auto& r : m.rings) {
    std::shared_ptr<ring_core> core = m.rt->ring(r->name);
    const incarnation_probe pr = core ? core->probe() : incarnation_probe{};
    if (!pr.attached || pr.error != kernel_error::none) {
      reason = {{"status", "not ready"},
                {"reason", "ring actor '" + r->name + "' has no healthy incarnation"},
                {"ring", r->name},
                {"detail", !core          ? "not running"
                           : !pr.attached ? "no incarnation attached (recovering)"
                                          : ringflow::to_string(pr.error)}};
      return false;
    }
  }
  reason = {{"status", "ready"}};
  return true;
}

live_stats engine::live() const {
  const impl& m = *impl_;
  live_stats s;
  const std::uint64_t load_ns = m.load_start_ns.load(), end = m.end_ns.load();
  s.elapsed_s = seconds_between(load_ns ? load_ns : m.start_ns.load(), end ? end : steady_now());
  const load_counts c = m.load.totals();  // lock-free: the status line, once a second
  s.sent = c.sent;
  s.replied = c.replied;
  s.errors = c.errors;
  s.in_flight = c.open;
  {
    std::lock_guard<std::mutex> lock(m.tally.mu);
    s.faults = m.tally.faults_detected;
    s.recoveries = m.tally.recoveries;
  }
  s.p50_us = m.load.latency().quantile_us(0.5);
  s.p99_us = m.load.latency().quantile_us(0.99);
  return s;
}

run_summary engine::summary(bool with_failures) const {
  const impl& m = *impl_;
  run_summary s;
  // `finals` before the cut: once stop() has published them nothing is answered any more, so the
  // cut that follows agrees with them; before, the cut's own open count is what is lost so far.
  const bool finals = m.finals.load(std::memory_order_acquire);  // pairs with stop()'s release
  const load_counts c = m.load.counts();                         // a consistent cut of the accounting
  s.sent = c.sent;
  s.replied = c.replied;
  s.errors = c.errors;
  s.duplicated = c.duplicated;
  s.wrong = c.wrong;
  s.lost = finals ? m.lost_final.load() : c.open;
  for (const auto& [name, n] : m.nodes) {
    if (n->where.sim) s.faults_injected += n->where.sim->faults().fired_total();
    if (n->actor_crashes) s.actor_crashes += n->actor_crashes->fired_total();
    if (n->where.host) {
      s.faults_injected += n->where.host->faults_fired() + n->kills.load(std::memory_order_relaxed);
      s.worker_restarts += n->where.host->worker_restarts();
    }
  }
  {
    std::lock_guard<std::mutex> lock(m.tally.mu);
    s.faults_detected = m.tally.faults_detected;
    s.restarts = m.tally.restarts;
    s.reinits = m.tally.reinits;
    s.reroutes = m.tally.reroutes;
    s.failbacks = m.tally.failbacks;
  }
  if (finals) s.replays = m.replays_final.load();
  else if (m.runtime_live())
    for (const auto& r : m.rings)
      if (auto core = m.rt->ring(r->name)) s.replays += core->stats().replayed;
  if (m.root) s.supervisor_restarts = m.root->snapshot().restarts;
  s.faults_injected += s.actor_crashes;
  for (const auto& r : m.rings) {
    const std::uint64_t n = r->starts.load(std::memory_order_relaxed);
    s.ring_actor_restarts += n > 1 ? n - 1 : 0;
  }
  s.gave_up = gave_up();
  if (m.cluster) {
    const engine_parts::cluster_stats cs = m.cluster->stats();
    s.member = cs.member;
    s.member_failovers = cs.member_failovers;
    s.member_failbacks = cs.member_failbacks;
  }
  s.spans = m.tracer ? m.tracer->spans() : 0;
  s.spans_dropped = m.tracer ? m.tracer->dropped() : 0;
  const latency_recorder& lat = m.load.latency();
  s.p50_us = lat.quantile_us(0.5);
  s.p99_us = lat.quantile_us(0.99);
  s.p999_us = lat.quantile_us(0.999);
  s.max_us = static_cast<double>(lat.max_ns()) / 1000.0;
  const latency_recorder& intended = m.load.intended_latency();
  s.intended_p50_us = intended.quantile_us(0.5);
  s.intended_p99_us = intended.quantile_us(0.99);
  s.intended_p999_us = intended.quantile_us(0.999);
  const std::uint64_t load_ns = m.load_start_ns.load(), end = m.end_ns.load();
  s.duration_s = seconds_between(load_ns ? load_ns : m.start_ns.load(), end ? end : steady_now());
  s.throughput_per_s = s.duration_s > 0 ? static_cast<double>(s.replied) / s.duration_s : 0;
  for (const auto& [code, n] : m.load.errors_by_code()) s.errors_by_code[code] = n;
  if (with_failures) s.failed_sequences = m.load.failed_sequences(s.failed_sequences_dropped);
  return s;
}

std::vector<config_change> engine::reload(const program_config& next) {
  impl& m = *impl_;
  std::vector<config_change> changes;
  program_config now;
  {
    std::lock_guard<std::mutex> lock(m.cfg_mu);
    changes = apply_reloadable(m.cfg, next);
    now = m.cfg;
  }
  m.log.set_level(now.log.level);
  if (m.ladder) m.ladder->set_breaker_config(to_ladder_config(now).breaker);
  m.load.configure(now.limits.ingress_rate_per_s, now.limits.max_payload_bytes, now.trace.sample_ratio);
  return changes;
}

// ---- exposition ----------------------------------------------------------------------------------------------

node_view engine::impl::view_of(const node_rt& n, const ladder_snapshot& ls) const {
  const impl& m = *this;
  node_view v;
  v.spec = n.spec;
  v.ok = n.ok.load();
  v.failed = n.failed.load();
  v.in_flight = n.in_flight.load();
  v.duration = n.duration.snapshot();
  if (n.spec->kind != node_kind::ring) return v;
  v.backend_preference = m.where.backend_of(*n.spec);
  if (n.where.ladder_device) v.device_id = n.where.ladder_device->id();
  if (const auto& h = n.where.host)
    v.host = host_view{h->id(), h->worker_pids(), h->standby_pids(), h->worker_restarts()};
  if (n.where.sim && (n.where.sim->lost() || n.where.sim->poisoned())) v.devices_down.push_back(n.where.sim->id());
  if (n.where.gpu && n.where.gpu->poisoned()) v.devices_down.push_back(n.where.gpu->id());
  for (const std::string& name : n.rings) {
    ring_view r;
    r.name = name;
    if (m.runtime_live())
      if (auto core = m.rt->ring(name)) {
        r.running = true;
        r.probe = core->probe();
        const ring_stats st = core->stats();
        r.in_flight = st.in_flight;
        r.replayed = st.replayed;
        if (core->options().state.state_bytes) {
          r.state_bytes = core->options().state.state_bytes;
          r.snapshots = st.snapshots;
          r.journal_depth = st.journal_depth;
          r.snapshot_ns = st.snapshot_ns;
          r.verify = core->options().state.verify;
          r.verified = st.state_verified;
          r.verify_failures = st.state_verify_failures;
        }
      }
    for (const auto& st : ls.rings)
      if (st.name == name) r.ladder = st;
    v.rings.push_back(std::move(r));
  }
  return v;
}

engine_snapshot engine::impl::snapshot(const engine& e, bool with_summary) const {
  const impl& m = *this;
  engine_snapshot s;
  s.topo = &m.topo;
  s.phase = e.phase();
  s.runtime_live = m.runtime_live();
  s.ladder = m.ladder && s.runtime_live ? m.ladder->snapshot() : ladder_snapshot{};
  for (const node_spec& n : m.topo.nodes) s.nodes.push_back(view_of(*m.nodes.at(n.name), s.ladder));
  {
    std::lock_guard<std::mutex> lock(m.tally.mu);
    s.counters = m.tally.by_node;
  }
  if (m.root) s.supervisors = m.root->snapshot();
  s.intended = m.load.intended_histogram();
  s.open_messages = m.load.open_total();
  s.log_write_failures = m.log.write_failures();
  s.checkpoints = m.checkpoints.views();
  for (const auto& [backend, d] : m.where.gpus())
    if (d) s.gpus.push_back(gpu_view{d->id(), d->kernel_launches(), d->bound_rings()});
  if (!with_summary) return s;
  s.summary = e.summary();
  nlohmann::json why;
  s.ready = e.ready(why);
  return s;
}

std::string engine::metrics_text() const {
  std::string text = engine_parts::metrics_text(impl_->snapshot(*this, true));
  if (impl_->cluster) text += engine_parts::cluster_metrics_text(impl_->cluster->stats());
  return text;
}

std::uint16_t engine::cluster_port() const { return impl_->cluster ? impl_->cluster->port() : 0; }

nlohmann::json engine::topology_json() const { return engine_parts::topology_json(impl_->snapshot(*this, false)); }

nlohmann::json engine::state_json(const std::string& node, int& status) const {
  const impl& m = *impl_;
  status = 404;
  const engine_parts::ring_rt* r = nullptr;
  for (const auto& x : m.rings)
    if (x->name == node) r = x.get();
  if (!r) {
    for (const node_spec& n : m.topo.nodes)
      if (n.name == node) return {{"error", "node '" + node + "' is a CPU node: it keeps no state"}};
    return {{"error", "no ring node named '" + node + "'"}};
  }
  if (!r->kernel || r->kernel->state_bytes == 0)
    return {{"error", "node '" + node + "' keeps no state (kernel '" + (r->kernel ? r->kernel->name : "") + "')"}};
  const std::shared_ptr<ring_core> core = m.rt ? m.rt->ring(r->name) : nullptr;
  const std::optional<state_view> v = core ? core->state() : std::nullopt;
  if (!v) return {{"error", "node '" + node + "' is not running"}};
  status = 200;
  nlohmann::json j{{"node", node},
                   {"kernel", r->kernel->name},
                   {"state_bytes", r->kernel->state_bytes},
                   {"snapshots", v->snapshots},
                   {"requests_covered", v->requests_covered}};
  j["snapshot_age_s"] = v->snapshot_ns ? nlohmann::json(static_cast<double>(steady_now() - v->snapshot_ns) / 1e9)
                                       : nlohmann::json(nullptr);
  if (core->options().state.verify) {
    const ring_stats st = core->stats();
    j["verify"] = {
        {"checked", st.state_verified},
        {"failures", st.state_verify_failures},
        {"last_failure", v->verify_failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->verify_failure)}};
  }
  if (v->bytes.empty()) {
    j["state"] = nullptr;  // no snapshot yet: the kernel's init()
  } else if (r->kernel->dump_state) {
    std::string text = r->kernel->dump_state(v->bytes.data());
    constexpr std::size_t limit = 1u << 20;
    if (text.size() > limit) j["state_error"] = "the kernel's dump is larger than 1 MiB";
    else j["state"] = nlohmann::json::parse(text, nullptr, false);
  } else {
    static const char* hex = "0123456789abcdef";
    std::string h;
    const std::size_t n = std::min<std::size_t>(v->bytes.size(), 512u << 10);
    h.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) h += hex[v->bytes[i] >> 4], h += hex[v->bytes[i] & 15];
    j["state_hex"] = h;
  }
  return j;
}

}  // namespace ringflow::ops

// /metrics and /topology over a snapshot: see exposition.hpp.
#include "exposition.hpp"

#include <algorithm>
#include <functional>

namespace ringflow::ops::engine_parts {

namespace {

// The metrics list nodes in name order (as the engine's node map always has).
std::vector<const node_view*> by_name(const engine_snapshot& s) {
  std::vector<const node_view*> out;
  for (const node_view& n : s.nodes) out.push_back(&n);
  std::sort(out.begin(), out.end(),
            [](const node_view* a, const node_view* b) { return a->spec->name < b->spec->name; });
  return out;
}

double node_in_flight(const engine_snapshot& s, const node_view& n) {
  double v = static_cast<double>(std::max<std::int64_t>(0, n.in_flight));
  if (s.runtime_live && !n.rings.empty()) {
    v = 0;
    for (const ring_view& r : n.rings)
      if (r.running) v += static_cast<double>(r.in_flight);
  }
  return v;
}

void node_families(exposition& x, const engine_snapshot& s, const std::vector<const node_view*>& nodes) {
  x.family("ringflow_messages_total", "counter", "Messages a node finished, by outcome (ok: answered; error: failed)");
  for (const node_view* n : nodes) {
    x.sample({{"actor", n->spec->name}, {"outcome", "ok"}}, static_cast<double>(n->ok));
    x.sample({{"actor", n->spec->name}, {"outcome", "error"}}, static_cast<double>(n->failed));
  }
  x.family("ringflow_request_duration_seconds", "histogram",
           "Time a node took per message (a ring node: to its ring actor's answer)");
  for (const node_view* n : nodes) x.histogram_sample({{"actor", n->spec->name}}, n->duration);
  x.family("ringflow_intended_latency_seconds", "histogram",
           "Load generators: intended send time (start + i/rate) to answer, so waiting to be sent counts too");
  if (!s.intended.counts.empty()) x.histogram_sample({}, s.intended);
  x.family("ringflow_in_flight", "gauge", "Messages inside a node now (a ring node: its ring actors' outboxes)");
  for (const node_view* n : nodes) x.sample({{"actor", n->spec->name}}, node_in_flight(s, *n));
  x.family("ringflow_ring_queue_depth", "gauge",
           "Slots in use in a ring kernel's rings (direction: request = waiting for the kernel, response = replies "
           "not yet consumed)");
  if (s.runtime_live)
    for (const node_view& n : s.nodes)  // ring actors in build order
      for (const ring_view& r : n.rings) {
        x.sample({{"ring", r.name}, {"direction", "request"}}, static_cast<double>(r.probe.request_depth));
        x.sample({{"ring", r.name}, {"direction", "response"}}, static_cast<double>(r.probe.reply_depth));
      }
}

void ladder_families(exposition& x, const engine_snapshot& s, const std::vector<const node_view*>& nodes) {
  x.family("ringflow_faults_total", "counter", "Device faults the fault ladder detected, by kind");
  for (const auto& [name, c] : s.counters)
    for (const auto& [kind, v] : c.faults) x.sample({{"actor", name}, {"kind", kind}}, static_cast<double>(v));
  auto per_actor = [&](const char* fam, const char* help, std::uint64_t actor_counters::*field) {
    x.family(fam, "counter", help);
    for (const node_view* n : nodes)
      if (!n->rings.empty()) {
        auto it = s.counters.find(n->spec->name);
        x.sample({{"actor", n->spec->name}}, it == s.counters.end() ? 0.0 : static_cast<double>(it->second.*field));
      }
  };
  per_actor("ringflow_restarts_total", "Kernel restarts by the fault ladder (step 1, and after a reinit)",
            &actor_counters::restarts);
  per_actor("ringflow_reinits_total", "Device reinitializations the ladder took for a ring actor (step 2)",
            &actor_counters::reinits);
  per_actor("ringflow_reroutes_total", "Moves of a ring actor to its CPU incarnation (step 3)",
            &actor_counters::reroutes);
  per_actor("ringflow_failbacks_total", "Moves of a rerouted ring actor back to its device",
            &actor_counters::failbacks);
  x.family("ringflow_replays_total", "counter", "Requests re-published into a new incarnation after a fault");
  for (const node_view* n : nodes) {
    if (n->rings.empty()) continue;
    double v = 0;
    if (s.runtime_live)
      for (const ring_view& r : n->rings)
        if (r.running) v += static_cast<double>(r.replayed);
    x.sample({{"actor", n->spec->name}}, v);
  }
  // Stateful kernels' ring actors (docs/KERNELS.md "Stateful kernels"): only those.
  auto stateful = [&](const char* fam, const char* type, const char* help, auto value) {
    x.family(fam, type, help);
    if (!s.runtime_live) return;
    for (const node_view* n : nodes)
      for (const ring_view& r : n->rings)
        if (r.running && r.state_bytes) x.sample({{"ring", r.name}}, value(r));
  };
  stateful("ringflow_state_bytes", "gauge", "Bytes of a stateful kernel's state",
           [](const ring_view& r) { return static_cast<double>(r.state_bytes); });
  stateful("ringflow_snapshots_total", "counter", "Snapshots of a stateful kernel's state the ring actor took",
           [](const ring_view& r) { return static_cast<double>(r.snapshots); });
  x.family("ringflow_snapshot_age_seconds", "gauge",
           "Age of the latest snapshot of a stateful kernel's state (no sample before the first one)");
  if (s.runtime_live) {
    const std::uint64_t now = steady_now();
    for (const node_view* n : nodes)
      for (const ring_view& r : n->rings)
        if (r.running && r.state_bytes && r.snapshot_ns)
          x.sample({{"ring", r.name}}, now > r.snapshot_ns ? static_cast<double>(now - r.snapshot_ns) / 1e9 : 0.0);
  }
  stateful("ringflow_journal_depth", "gauge",
           "Messages in a stateful ring actor's journal (published since the latest snapshot)",
           [](const ring_view& r) { return static_cast<double>(r.journal_depth); });
  // state.verify (debug): only the nodes that asked for it.
  x.family("ringflow_state_verify_failures_total", "counter",
           "Snapshots of a stateful kernel whose host replay differed (state.verify: a non-deterministic handler)");
  if (s.runtime_live)
    for (const node_view* n : nodes)
      for (const ring_view& r : n->rings)
        if (r.running && r.verify) x.sample({{"ring", r.name}}, static_cast<double>(r.verify_failures));
  // Durable checkpoints (`checkpoint:`): every checkpointed ring actor, from the start.
  x.family("ringflow_checkpoints_total", "counter", "Durable checkpoints of a stateful node written in this run");
  for (const checkpoint_view& c : s.checkpoints) x.sample({{"ring", c.ring}}, static_cast<double>(c.writes));
  x.family("ringflow_checkpoint_failures_total", "counter",
           "Durable checkpoints of a stateful node that could not be written (ENOSPC, EIO, ...)");
  for (const checkpoint_view& c : s.checkpoints) x.sample({{"ring", c.ring}}, static_cast<double>(c.failures));
  x.family("ringflow_supervisor_restarts_total", "counter", "Restarts decided by an OTP supervisor (root included)");
  if (s.supervisors) {
    std::function<void(const supervisor_snapshot&)> walk = [&](const supervisor_snapshot& n) {
      x.sample({{"supervisor", n.name}}, static_cast<double>(n.restarts));
      for (const auto& c : n.children)
        if (c.nested) walk(*c.nested);
    };
    walk(*s.supervisors);
  }
}

void device_families(exposition& x, const engine_snapshot& s, const std::vector<const node_view*>& nodes) {
  x.family("ringflow_breaker_state", "gauge", "Circuit breaker of a device: 0 closed, 1 half-open, 2 open");
  for (const auto& d : s.ladder.devices)
    x.sample({{"device", d.id}}, d.breaker == breaker_state::closed      ? 0.0
                                 : d.breaker == breaker_state::half_open ? 1.0
                                                                         : 2.0);
  x.family("ringflow_device_up", "gauge", "1 when a device takes work (present and its breaker not open), else 0");
  for (const auto& d : s.ladder.devices) {
    bool up = d.breaker != breaker_state::open;
    for (const node_view* n : nodes)
      if (std::find(n->devices_down.begin(), n->devices_down.end(), d.id) != n->devices_down.end()) up = false;
    x.sample({{"device", d.id}}, up ? 1.0 : 0.0);
  }
  x.family("ringflow_worker_restarts_total", "counter",
           "Kernel-host workers started to replace one that died, was killed or faulted (host: process nodes)");
  for (const node_view* n : nodes)
    if (n->host) x.sample({{"device", n->host->id}}, static_cast<double>(n->host->restarts));
  x.family("ringflow_workers", "gauge", "Kernel-host worker processes alive now (host: process nodes)");
  for (const node_view* n : nodes)
    if (n->host) x.sample({{"device", n->host->id}}, static_cast<double>(n->host->workers.size()));
  x.family("ringflow_gpu_kernel_launches_total", "counter",
           "Launches of a GPU device's persistent kernel: 1, plus one per relaunch after a kernel fault");
  for (const gpu_view& g : s.gpus) x.sample({{"device", g.id}}, static_cast<double>(g.launches));
  x.family("ringflow_gpu_rings", "gauge", "Ring actors bound to a GPU device's persistent kernel now");
  for (const gpu_view& g : s.gpus) x.sample({{"device", g.id}}, static_cast<double>(g.rings));
}

void load_families(exposition& x, const engine_snapshot& s) {
  x.family("ringflow_load_messages_total", "counter",
           "Load generator accounting: sent, replied, errors, lost (not answered yet), duplicated, wrong");
  x.sample({{"outcome", "sent"}}, static_cast<double>(s.summary.sent));
  x.sample({{"outcome", "replied"}}, static_cast<double>(s.summary.replied));
  x.sample({{"outcome", "errors"}}, static_cast<double>(s.summary.errors));
  x.sample({{"outcome", "duplicated"}}, static_cast<double>(s.summary.duplicated));
  x.sample({{"outcome", "wrong"}}, static_cast<double>(s.summary.wrong));
  x.family("ringflow_open_messages", "gauge",
           "Messages pushed into the topology and not yet answered, wherever they wait (mailboxes, windows, "
           "rings, kernels): the backlog under overload");
  x.sample({}, static_cast<double>(s.open_messages));
  x.family("ringflow_ready", "gauge", "1 when /health/ready answers 200");
  x.sample({}, s.ready ? 1.0 : 0.0);
  x.family("ringflow_log_write_failures_total", "counter",
           "Log records that could not be written (a closed log pipe, a full disk); the run goes on");
  x.sample({}, static_cast<double>(s.log_write_failures));
}

nlohmann::json replica_json(const ring_view& r) {
  nlohmann::json rj = {{"ring", r.name}};
  if (r.running) {
    const incarnation_probe& p = r.probe;
    rj["runs_on"] = p.attached ? p.backend : "";
    rj["incarnation"] = {{"attached", p.attached},
                         {"epoch", p.epoch},
                         {"state", ringflow::to_string(p.state)},
                         {"error", ringflow::to_string(p.error)},
                         {"heartbeat", p.heartbeat},
                         {"request_depth", p.request_depth},
                         {"reply_depth", p.reply_depth}};
  }
  if (r.ladder) {
    rj["on_device"] = r.ladder->on_device;
    rj["ladder_phase"] = r.ladder->phase;
  }
  return rj;
}

nlohmann::json node_json(const node_view& nv) {
  const node_spec& n = *nv.spec;
  nlohmann::json o = {{"name", n.name},
                      {"kind", n.kind == node_kind::ring ? "ring" : "cpu"},
                      {"input", n.in_type},
                      {"output", n.out_type}};
  if (n.kind == node_kind::cpu) {
    o["function"] = n.function;
    return o;
  }
  o["kernel"] = n.kernel;
  o["backend_preference"] = nv.backend_preference;
  o["device"] = nv.device_id;
  o["host"] = n.host;
  if (nv.host) {
    o["worker_pids"] = nv.host->workers;
    o["standby_pids"] = nv.host->standbys;
    o["worker_restarts"] = nv.host->restarts;
  }
  nlohmann::json reps = nlohmann::json::array();
  for (const ring_view& r : nv.rings) reps.push_back(replica_json(r));
  o["replicas"] = std::move(reps);
  return o;
}

nlohmann::json supervisor_json(const supervisor_snapshot& s) {
  nlohmann::json o = {{"name", s.name},           {"strategy", ringflow::to_string(s.strategy)},
                      {"intensity", s.intensity}, {"period_ms", s.period.count()},
                      {"running", s.running},     {"restarts", s.restarts},
                      {"escalated", s.escalated}};
  o["children"] = nlohmann::json::array();
  for (const auto& c : s.children) {
    nlohmann::json cj = {{"id", c.id},
                         {"kind", ringflow::to_string(c.kind)},
                         {"running", c.running},
                         {"restarts", c.restarts},
                         {"last_exit", c.last_exit}};
    if (c.nested) cj["supervisor"] = supervisor_json(*c.nested);
    o["children"].push_back(std::move(cj));
  }
  return o;
}

}  // namespace

std::string metrics_text(const engine_snapshot& s) {
  exposition x;
  const std::vector<const node_view*> nodes = by_name(s);
  node_families(x, s, nodes);
  ladder_families(x, s, nodes);
  device_families(x, s, nodes);
  load_families(x, s);
  return x.text();
}

nlohmann::json topology_json(const engine_snapshot& s) {
  nlohmann::json j;
  j["name"] = s.topo->name;
  j["file"] = s.topo->file;
  j["phase"] = to_string(s.phase);
  nlohmann::json nodes = nlohmann::json::array();
  for (const node_view& n : s.nodes) nodes.push_back(node_json(n));
  j["nodes"] = std::move(nodes);
  j["edges"] = nlohmann::json::array();
  for (const auto& e : s.topo->edges) j["edges"].push_back({{"from", e.from}, {"to", e.to}});
  j["supervisors"] = s.supervisors ? supervisor_json(*s.supervisors) : nlohmann::json(nullptr);
  j["devices"] = nlohmann::json::array();
  for (const auto& d : s.ladder.devices)
    j["devices"].push_back({{"id", d.id},
                            {"backend", d.backend},
                            {"breaker", ringflow::to_string(d.breaker)},
                            {"recent_failures", d.recent_failures},
                            {"breaker_opens", d.breaker_opens},
                            {"reinits", d.reinits}});
  j["load"] = nlohmann::json::array();
  for (const auto& l : s.topo->load)
    j["load"].push_back({{"name", l.name}, {"target", l.target}, {"message", l.message}, {"rate", l.rate}});
  return j;
}

}  // namespace ringflow::ops::engine_parts

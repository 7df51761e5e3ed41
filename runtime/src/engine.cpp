// The topology engine: see ringflow/runtime/engine.hpp.
#include "ringflow/runtime/engine.hpp"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "ringflow/actors/graph.hpp"
#include "ringflow/actors/runtime.hpp"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/runtime/prometheus.hpp"
#include "ringflow/runtime/trace.hpp"
#include "ringflow/sim/sim_device.hpp"
#include "ringflow/supervision/fault_ladder.hpp"
#include "ringflow/supervision/supervisor.hpp"

namespace ringflow::ops {

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
          {"p50_us", p50_us},
          {"p99_us", p99_us},
          {"p999_us", p999_us},
          {"max_us", max_us},
          {"duration_s", duration_s},
          {"throughput_per_s", throughput_per_s},
          {"errors_by_code", errors_by_code},
          {"ok", ok()}};
}

namespace {

using clock = std::chrono::steady_clock;

double seconds_between(std::uint64_t a_ns, std::uint64_t b_ns) {
  return b_ns > a_ns ? static_cast<double>(b_ns - a_ns) / 1e9 : 0.0;
}

restart_strategy strategy_of(const std::string& s) {
  if (s == "one_for_all") return restart_strategy::one_for_all;
  if (s == "rest_for_one") return restart_strategy::rest_for_one;
  return restart_strategy::one_for_one;
}

// A token bucket shared by every load generator (limits.ingress_rate_per_s; 0 = unlimited).
class rate_limiter {
 public:
  void set_rate(double per_s) {
    std::lock_guard<std::mutex> lock(mu_);
    rate_ = per_s;
    tokens_ = std::min(tokens_, burst());
  }
  /// Waits until one message may enter (or `stop` is set); false if stopped.
  bool acquire(const std::atomic<bool>& stop) {
    for (;;) {
      std::chrono::nanoseconds wait{0};
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (rate_ <= 0) return true;
        const auto now = clock::now();
        tokens_ = std::min(burst(), tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
        last_ = now;
        if (tokens_ >= 1.0) {
          tokens_ -= 1.0;
          return true;
        }
        wait = std::chrono::nanoseconds(static_cast<std::int64_t>((1.0 - tokens_) / rate_ * 1e9));
      }
      if (stop.load(std::memory_order_acquire)) return false;
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(10)));  // pacing
    }
  }

 private:
  double burst() const { return std::max(1.0, rate_ / 100.0); }  // at most 10 ms worth at once
  std::mutex mu_;
  double rate_ = 0;
  double tokens_ = 0;
  clock::time_point last_ = clock::now();
};

}  // namespace

// ---- state ------------------------------------------------------------------------------------------

struct engine::impl {
  struct node_rt {
    const node_spec* spec = nullptr;
    std::vector<std::string> rings;  // ring actors of a ring node (one per replica)
    std::shared_ptr<sim::sim_device> dev;  // ring nodes on a device
    std::shared_ptr<kernel_host_device> host;  // host: process nodes (their workers are the device)
    std::shared_ptr<gpu::gpu_device> gpu;      // ring nodes on a GPU (behind `dev` when faults are scheduled)
    std::vector<double> kills_at;              // kill_worker schedule (s since load start), tick() only
    std::vector<std::pair<double, sim::fault_rule>> injects_at;  // timed sim faults of a host node
    std::size_t next_kill = 0, next_inject = 0;                  // tick() only
    std::atomic<std::uint64_t> kills{0};       // workers SIGKILLed by the schedule
    std::atomic<std::uint64_t> rr{0};
    histogram duration;
    std::atomic<std::uint64_t> ok{0}, failed{0};
    std::atomic<std::int64_t> in_flight{0};
    double restore_after_s = -1;          // device_lost faults: restore this long after the loss
    std::uint64_t lost_since_ns = 0;      // tick() thread only
    void done(bool good, std::uint64_t t0) {
      duration.observe(seconds_between(t0, steady_now()));
      (good ? ok : failed).fetch_add(1, std::memory_order_relaxed);
      in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
  };
  struct ring_rt {
    std::string name;
    node_rt* node = nullptr;
    const kernel_info* kernel = nullptr;
    incarnation_factory on_device, on_cpu;
    ring_actor_options opts;
  };
  struct actor_counters {  // monotonic, from ladder events (a ladder record resets on an OTP restart)
    std::map<std::string, std::uint64_t> faults;  // by kind
    std::uint64_t restarts = 0, reinits = 0, reroutes = 0, failbacks = 0, recoveries = 0;
  };
  struct generator {
    load_spec spec;
    const message_info* msg = nullptr;
    std::thread thread;
    std::atomic<bool> finished{false};
    std::mutex mu;
    std::unordered_map<std::uint64_t, std::uint64_t> open;  // seq -> push time (ns)
    std::atomic<std::uint32_t> open_count{0};
  };

  topology topo;
  program_config cfg;
  mutable std::mutex cfg_mu;  // cfg (reload vs readers)
  event_log& log;
  run_options opts;
  std::atomic<engine_phase> phase{engine_phase::created};

  std::unique_ptr<runtime> rt;
  std::unique_ptr<fault_ladder> ladder;
  std::unique_ptr<trace_writer> tracer;
  std::atomic<double> sample_ratio{1.0};
  std::atomic<std::int64_t> max_payload{1 << 20};
  std::map<std::string, std::unique_ptr<node_rt>> nodes;
  std::vector<std::unique_ptr<ring_rt>> rings;
  std::map<std::string, node_rt*> ring_to_node;
  std::optional<supervisor_ref> root;
  std::shared_ptr<running_graph> graph;

  mutable std::mutex ev_mu;
  std::map<std::string, actor_counters> counters;  // by node
  std::uint64_t faults_detected = 0, restarts = 0, reinits = 0, reroutes = 0, failbacks = 0, recoveries = 0;

  // load and accounting
  std::vector<std::unique_ptr<generator>> gens;
  std::atomic<bool> stop_load{false};
  rate_limiter limiter;
  std::atomic<std::uint64_t> sent{0}, replied{0}, errors{0}, duplicated{0}, wrong{0}, failures_logged{0};
  mutable std::mutex err_mu;
  std::map<std::string, std::uint64_t> errors_by_code;
  latency_recorder latency;
  std::uint64_t start_ns = 0, load_start_ns = 0, end_ns = 0;
  std::uint64_t lost_final = 0, replays_final = 0;

  impl(topology t, program_config c, event_log& l, run_options o)
      : topo(std::move(t)), cfg(std::move(c)), log(l), opts(std::move(o)) {}

  program_config config_copy() const {
    std::lock_guard<std::mutex> lock(cfg_mu);
    return cfg;
  }

  // ---- building ---------------------------------------------------------------------------------

  // GPU devices, opened once per run and shared by every node of that backend (one persistent
  // kernel per device hosts all their ring actors); nullptr with the reason when unusable.
  std::map<std::string, std::shared_ptr<gpu::gpu_device>> gpus;
  std::map<std::string, std::string> gpu_why;
  std::shared_ptr<gpu::gpu_device> gpu_device_for(const std::string& backend, std::string& why) {
    if (auto it = gpus.find(backend); it != gpus.end()) {
      why = gpu_why[backend];
      return it->second;
    }
    std::shared_ptr<gpu::gpu_device> d;
    try {
      if (opts.open_gpu) {
        d = opts.open_gpu(backend);
      } else {
#if defined(RINGFLOW_HAVE_CUDA_BACKEND)
        if (backend == "cuda") d = gpu::make_cuda_device();
#endif
#if defined(RINGFLOW_HAVE_HIP_BACKEND)
        if (backend == "hip") d = gpu::make_hip_device();
#endif
      }
      if (!d) why = "ringflow was built without the " + backend + " backend (no " + (backend == "cuda" ? "nvcc" : "hipcc") + " at build time)";
    } catch (const std::exception& e) {
      why = e.what();
    }
    gpus[backend] = d;
    gpu_why[backend] = why;
    if (d)
      log.info("program", "device " + d->id() + " (" + d->info().name + ", " + d->info().arch + "): one persistent kernel, " +
                              std::to_string(d->workers()) + " workers",
               {{"device", d->id()}});
    return d;
  }

  std::string backend_of(const node_spec& n) const {
    return opts.backend_override.empty() ? n.backend : opts.backend_override;
  }

  void on_ladder_event(const ladder_event& e) {
    nlohmann::json f = nlohmann::json::parse(e.to_json(), nullptr, false);
    if (!f.is_object()) f = nlohmann::json::object();
    auto it = ring_to_node.find(e.ring);
    const std::string node = it == ring_to_node.end() ? e.ring : it->second->spec->name;
    f["node"] = node;
    {
      std::lock_guard<std::mutex> lock(ev_mu);
      actor_counters& c = counters[node];
      switch (e.what) {
        case ladder_event::kind::fault: ++c.faults[e.fault.empty() ? "unknown" : e.fault], ++faults_detected; break;
        case ladder_event::kind::restart: ++c.restarts, ++restarts; break;
        case ladder_event::kind::reinitialize: ++c.reinits, ++reinits; break;
        case ladder_event::kind::reroute: ++c.reroutes, ++reroutes; break;
        case ladder_event::kind::fail_back: ++c.failbacks, ++failbacks; break;
        case ladder_event::kind::recovered: ++c.recoveries, ++recoveries; break;
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

  void build_nodes() {
    bool gpu_note = false;
    for (const node_spec& n : topo.nodes) {
      auto nr = std::make_unique<node_rt>();
      nr->spec = &n;
      if (n.kind == node_kind::ring) {
        const kernel_info* k = find_kernel(n.kernel);
        std::string backend = backend_of(n);
        bool faulted = false;  // sim faults scheduled (not kill_worker): the node needs a fault injector
        for (const fault_spec& f : topo.faults) faulted = faulted || (f.node == n.name && f.kind != "kill_worker");
        const bool hosted = n.host == "process";
        if (backend == "auto") {
          // A GPU when one is usable (not for kernel hosts: their workers run cpu or sim), else sim.
          std::string why_cuda, why_hip;
          if (!hosted && gpu_device_for("cuda", why_cuda)) {
            backend = "cuda";
          } else if (!hosted && gpu_device_for("hip", why_hip)) {
            backend = "hip";
          } else {
            if (!gpu_note && !hosted)
              log.info("program", "backend auto: no usable GPU (cuda: " + why_cuda + "; hip: " + why_hip +
                                      "); ring nodes run on the sim device (the CPU kernel behind the fault injector)");
            gpu_note = gpu_note || !hosted;
            backend = "sim";
          }
        }
        if (backend == "cuda" || backend == "hip") {
          std::string why;
          nr->gpu = gpu_device_for(backend, why);
          if (!nr->gpu)
            throw engine_error("node '" + n.name + "': backend '" + backend + "' is not available: " + why +
                               " (ringflow devices lists what this machine has); use auto, sim or cpu");
        }
        if (hosted) {
          kernel_host_options ho;
          ho.program = opts.kernel_host_program;
          const program_config pc = config_copy();
          ho.heartbeat_timeout = std::chrono::milliseconds(pc.workers.heartbeat_timeout_ms);
          ho.start_timeout = std::chrono::milliseconds(pc.workers.start_timeout_ms);
          ho.standby = pc.workers.standby == "on";
          ho.backend = backend == "sim" || faulted ? "sim" : "cpu";
          for (const fault_spec& f : topo.faults)  // message and probability rules: every worker starts with them
            if (f.node == n.name && f.kind != "kill_worker" && f.at_s < 0) ho.standing_faults.push_back(rule_of(f));
          nr->host = kernel_host_device::make("host:" + n.name, ho);
        } else if (backend == "sim" || faulted) {
          sim::sim_device_options o;
          o.id = nr->gpu ? "sim:" + n.name + "@" + nr->gpu->id() : "sim:" + n.name;  // faults injected over the GPU
          nr->dev = sim::sim_device::make(o, std::hash<std::string>{}(n.name));
        }
        for (std::uint32_t i = 0; i < n.replicas; ++i) {
          auto r = std::make_unique<ring_rt>();
          r->name = n.replicas == 1 ? n.name : n.name + "." + std::to_string(i);
          r->node = nr.get();
          r->kernel = k;
          cpu_incarnation_options co;
          co.rings.requests.arena_bytes = co.rings.replies.arena_bytes = n.arena_bytes;
          r->on_cpu = k->cpu_factory(co);
          if (nr->gpu) {
            gpu::gpu_ring_options go;
            go.requests.arena_bytes = go.replies.arena_bytes = n.arena_bytes;
            r->on_device = nr->gpu->factory(k->name, go);
            if (nr->dev) r->on_device = nr->dev->wrap(r->on_device);  // the injector over the GPU's incarnations
          } else if (nr->dev) {
            r->on_device = k->sim_factory(*nr->dev, co);
          }
          if (nr->host) r->on_device = nr->host->factory(k->name, co);
          r->opts.window = n.window;
          r->opts.per_caller_window = n.window;
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
    // The fault schedule: rules of each node's device (time rules count from start_load()).
    for (const fault_spec& f : topo.faults) {
      node_rt& nr = *nodes.at(f.node);
      if (nr.host) {  // the service's part of a kernel host's schedule (tick() sends it)
        if (f.kind == "kill_worker") nr.kills_at.push_back(f.at_s);
        else if (f.at_s >= 0) nr.injects_at.emplace_back(f.at_s, sim::fault_rule::at(*sim::fault_kind_from(f.kind), 1));
        continue;
      }
      sim::fault_rule rule = rule_of(f);
      if (f.at_s >= 0) rule.after = std::chrono::nanoseconds(static_cast<std::int64_t>(f.at_s * 1e9));
      nr.dev->faults().add(rule);
      if (f.restore_after_s >= 0) nr.restore_after_s = f.restore_after_s;
    }
    for (auto& [name, nr] : nodes) {
      std::sort(nr->kills_at.begin(), nr->kills_at.end());
      std::stable_sort(nr->injects_at.begin(), nr->injects_at.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
  }

  static sim::fault_rule rule_of(const fault_spec& f) {
    sim::fault_rule rule;
    rule.kind = *sim::fault_kind_from(f.kind);
    rule.at_message = f.at_message;
    rule.probability = f.probability;
    rule.times = f.times;
    rule.latency = std::chrono::microseconds(f.latency_us);
    return rule;
  }

  caf::actor spawn_ring(ring_rt& r) {
    if (r.node->host)
      return ladder->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.node->host, r.on_device,
                                      r.on_cpu, r.opts);
    if (r.node->dev)
      return ladder->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.node->dev, r.on_device,
                                      r.on_cpu, r.opts);
    if (r.node->gpu)
      return ladder->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.node->gpu, r.on_device,
                                      r.on_cpu, r.opts);
    return rt->spawn_ring_actor(r.name, r.kernel->request_id, r.kernel->reply_id, r.on_cpu, r.opts);
  }

  child_spec ring_child(ring_rt& r) {
    child_spec c;
    c.id = r.name;
    c.start = [this, &r]() -> caf::expected<caf::actor> {
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

  std::vector<child_spec> children_of(const std::string& sup) {
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

  void build_tree() {
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

  // A ring node's graph actor: forwards each message to one of its ring actors (round robin,
  // looked up by name so a ring actor restarted by its supervisor is used at once).
  behavior_factory ring_forwarder(node_rt* nr) {
    runtime* r = rt.get();
    return [nr, r](caf::event_based_actor* self) -> caf::behavior {
      return {
          [=](fb_msg& m) -> caf::result<fb_msg> {
            const std::uint64_t t0 = steady_now();
            nr->in_flight.fetch_add(1, std::memory_order_relaxed);
            const std::string& name = nr->rings[nr->rr.fetch_add(1, std::memory_order_relaxed) % nr->rings.size()];
            caf::expected<caf::actor> target = r->registry().lookup(name);
            if (!target) {
              nr->done(false, t0);
              return make_error(errc::unavailable, "ring actor '" + name + "' is not running (being restarted?)");
            }
            auto rp = self->make_response_promise<fb_msg>();
            self->request(*target, caf::infinite, std::move(m))
                .then(
                    [nr, t0, rp](fb_msg& out) mutable {
                      nr->done(true, t0);
                      rp.deliver(std::move(out));
                    },
                    [nr, t0, rp](caf::error& e) mutable {
                      nr->done(false, t0);
                      rp.deliver(std::move(e));
                    });
            return rp;
          },
      };
    };
  }

  void build_graph() {
    ringflow::graph g(*rt, topo.name);
    g.node_window(static_cast<std::uint32_t>(config_copy().limits.node_window));
    for (const node_spec& n : topo.nodes) {
      node_rt* nr = nodes.at(n.name).get();
      const message_info* in = find_message(n.in_type);
      const message_info* out = find_message(n.out_type);
      const msg_type tin{in->id, in->name}, tout{out->id, out->name};
      if (n.kind == node_kind::ring) {
        g.actor_node(n.name, tin, tout, ring_forwarder(nr));
      } else {
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
    }
    for (const edge_spec& e : topo.edges) g.connect(e.from, e.to);
    caf::expected<std::shared_ptr<running_graph>> started = g.start();
    if (!started) throw engine_error("the graph did not start: " + rt->system().render(started.error()));
    graph = std::move(*started);
  }

  // ---- load -------------------------------------------------------------------------------------

  // Accounting is consistent under the generators' locks: a push moves from `open` to exactly
  // one outcome counter inside its generator's lock (and enters `open` with `sent` likewise), so
  // summary() — which holds every generator's lock — always sees sent = replied + errors + wrong
  // + lost, even while answers arrive or the process exits on a second signal.
  void answer(generator& g, std::uint64_t seq, graph_result&& r, std::uint64_t trace_hi, std::uint64_t trace_lo,
              std::uint64_t span) {
    const std::uint64_t now = steady_now();
    // The outcome first (it needs no lock): every terminal output must carry the sequence sent.
    std::string error;
    bool right = r.ok();
    if (r.ok()) {
      for (const fb_msg& out : r.outputs) {
        const message_info* t = find_message(out.type());
        if (!t) right = false;
        else if (t->sequence_of)
          if (const std::optional<std::uint64_t> s = t->sequence_of(out); s && *s != seq) right = false;
      }
      if (!right) error = "wrong answer: an output carries another sequence number";
    } else {
      error = std::string(ringflow::to_string(r.code)) + ": " + r.detail;
    }
    std::uint64_t t0 = 0;
    {
      std::lock_guard<std::mutex> lock(g.mu);
      auto it = g.open.find(seq);
      if (it == g.open.end()) {  // answered before: the exactly-once promise is broken
        duplicated.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      t0 = it->second;
      g.open.erase(it);
      if (r.ok()) (right ? replied : wrong).fetch_add(1, std::memory_order_relaxed);
      else errors.fetch_add(1, std::memory_order_relaxed);
    }
    g.open_count.fetch_sub(1, std::memory_order_release);
    latency.record(now > t0 ? now - t0 : 0);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lock(err_mu);
      ++errors_by_code[ringflow::to_string(r.code)];
    }
    if (!error.empty()) log_failure(g, seq, error, trace_hi, trace_lo);
    if (tracer && (trace_hi | trace_lo))
      tracer->ingress(trace_hi, trace_lo, span, g.spec.name, g.spec.target, seq, t0, now, error.empty(), error);
  }

  // One warn record per failed message, with its trace id when it was traced; after the first
  // 100, one in 1000 (a storm of identical errors must not drown the log).
  void log_failure(const generator& g, std::uint64_t seq, const std::string& error, std::uint64_t trace_hi,
                   std::uint64_t trace_lo) {
    const std::uint64_t n = failures_logged.fetch_add(1, std::memory_order_relaxed);
    if (n >= 100 && n % 1000 != 0) return;
    nlohmann::json f = {{"generator", g.spec.name}, {"node", g.spec.target}, {"sequence", seq}, {"error", error},
                        {"failures_so_far", n + 1}};
    if (trace_hi | trace_lo) {
      std::uint64_t id[2] = {trace_hi, trace_lo};
      f["trace_id"] = trace_writer::hex(id, 16);
    }
    log.warn("load", "message failed", f);
  }

  void run_generator(generator& g) {
    const load_spec& s = g.spec;
    std::mt19937_64 rng(std::hash<std::string>{}(s.name) ^ load_start_ns);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    const auto begin = clock::now() + std::chrono::nanoseconds(static_cast<std::int64_t>(s.start_s * 1e9));
    const auto end = s.duration_s > 0 ? begin + std::chrono::nanoseconds(static_cast<std::int64_t>(s.duration_s * 1e9))
                                      : clock::time_point::max();
    const double period_ns = 1e9 / s.rate;
    std::uint64_t seq = 0;
    while (!stop_load.load(std::memory_order_acquire)) {
      // Pacing: the i-th message is due at begin + i/rate (no catch-up burst beyond the window).
      const auto due = begin + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(seq) * period_ns));
      if (due >= end) break;
      const auto now = clock::now();
      if (due > now) {
        std::this_thread::sleep_for(std::min<clock::duration>(due - now, std::chrono::milliseconds(20)));  // pacing
        continue;
      }
      if (g.open_count.load(std::memory_order_acquire) >= s.max_in_flight) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));  // the window is full: wait for answers
        continue;
      }
      if (!limiter.acquire(stop_load)) break;
      fb_msg m = g.msg->make(seq, s.payload_bytes);
      if (static_cast<std::int64_t>(m.bytes.size()) > max_payload.load(std::memory_order_relaxed)) {
        {
          std::lock_guard<std::mutex> lock(g.mu);  // refused at ingress (input validation): sent, and an error
          sent.fetch_add(1, std::memory_order_relaxed);
          errors.fetch_add(1, std::memory_order_relaxed);
        }
        {
          std::lock_guard<std::mutex> lock(err_mu);
          ++errors_by_code[ringflow::to_string(errc::oversize)];
        }
        log_failure(g, seq, "oversize: the message exceeds limits.max_payload_bytes", 0, 0);
        ++seq;
        continue;
      }
      std::uint64_t th = 0, tl = 0, span = 0;
      if (tracer && coin(rng) < sample_ratio.load(std::memory_order_relaxed)) {
        th = rng() | 1, tl = rng(), span = rng() | 1;
        m.trace_hi = th, m.trace_lo = tl, m.span = span;
      }
      {
        std::lock_guard<std::mutex> lock(g.mu);
        g.open.emplace(seq, steady_now());
        sent.fetch_add(1, std::memory_order_relaxed);
      }
      g.open_count.fetch_add(1, std::memory_order_acq_rel);
      const std::uint64_t my = seq++;
      graph->push(s.target, std::move(m),
                  [this, &g, my, th, tl, span](graph_result r) { answer(g, my, std::move(r), th, tl, span); });
    }
    g.finished.store(true, std::memory_order_release);
  }

  std::uint64_t open_total() const {
    std::uint64_t n = 0;
    for (const auto& g : gens) n += g->open_count.load(std::memory_order_acquire);
    return n;
  }
};

// ---- engine -------------------------------------------------------------------------------------------

engine::engine(topology topo, program_config cfg, event_log& log, run_options opts)
    : impl_(std::make_unique<impl>(std::move(topo), std::move(cfg), log, std::move(opts))) {}

engine::~engine() { stop(); }

engine_phase engine::phase() const noexcept { return impl_->phase.load(std::memory_order_acquire); }
const program_config& engine::config() const { return impl_->cfg; }

void engine::start() {
  impl& m = *impl_;
  m.phase.store(engine_phase::starting, std::memory_order_release);
  m.start_ns = steady_now();
  const program_config cfg = m.config_copy();
  m.sample_ratio.store(cfg.trace.sample_ratio);
  m.max_payload.store(cfg.limits.max_payload_bytes);
  m.limiter.set_rate(cfg.limits.ingress_rate_per_s);
  try {
    const std::string trace_file = m.opts.trace_file.empty() ? cfg.trace.file : m.opts.trace_file;
    if (!trace_file.empty()) m.tracer = std::make_unique<trace_writer>(trace_file);
    runtime_config rc;
    rc.scheduler_threads = static_cast<std::size_t>(cfg.runtime.scheduler_threads);
    rc.shutdown_timeout = std::chrono::milliseconds(cfg.runtime.shutdown_timeout_ms);
    m.rt = std::make_unique<runtime>(rc);
    ladder_config lc = to_ladder_config(cfg);
    lc.on_event = [&m](const ladder_event& e) { m.on_ladder_event(e); };
    m.ladder = std::make_unique<fault_ladder>(*m.rt, lc);
    for (const node_spec& n : m.topo.nodes)
      if (n.host == "process") {  // segments a crashed earlier run left behind
        for (const std::string& seg : reclaim_stale_segments())
          m.log.audit("reclaimed a stale kernel-host segment (its service is gone)", {{"segment", seg}});
        break;
      }
    m.build_nodes();
    m.build_tree();
    m.build_graph();
  } catch (const std::exception& e) {
    stop();
    throw engine_error(e.what());
  }
  m.phase.store(engine_phase::running, std::memory_order_release);
  nlohmann::json f = {{"topology", m.topo.name}, {"nodes", m.topo.nodes.size()}, {"ring_actors", m.rings.size()},
                      {"edges", m.topo.edges.size()}, {"supervisors", m.topo.supervisors.size()}};
  m.log.info("program", "topology started", f);
}

void engine::start_load() {
  impl& m = *impl_;
  m.load_start_ns = steady_now();
  for (auto& [name, n] : m.nodes)
    if (n->dev) n->dev->faults().arm();  // time-triggered faults count from here
  for (const load_spec& s : m.topo.load) {
    auto g = std::make_unique<impl::generator>();
    g->spec = s;
    g->msg = find_message(s.message);
    m.gens.push_back(std::move(g));
  }
  for (auto& g : m.gens) {
    impl::generator* p = g.get();
    g->thread = std::thread([&m, p] { m.run_generator(*p); });
  }
}

bool engine::load_finished() const {
  for (const auto& g : impl_->gens)
    if (!g->finished.load(std::memory_order_acquire)) return false;
  return true;
}

void engine::tick() {
  impl& m = *impl_;
  const std::uint64_t now = steady_now();
  const double since_load = m.load_start_ns ? seconds_between(m.load_start_ns, now) : -1;
  for (auto& [name, n] : m.nodes) {
    if (!n->host || since_load < 0) continue;
    for (; n->next_kill < n->kills_at.size() && n->kills_at[n->next_kill] <= since_load; ++n->next_kill) {
      const std::vector<pid_t> pids = n->host->worker_pids();
      const std::size_t killed = n->host->signal_workers(SIGKILL);
      n->kills.fetch_add(killed, std::memory_order_relaxed);
      m.log.warn("program", "fault schedule: SIGKILL to the kernel-host workers of node " + name,
                 {{"node", name}, {"device", n->host->id()}, {"pids", pids}, {"killed", killed}});
    }
    for (; n->next_inject < n->injects_at.size() && n->injects_at[n->next_inject].first <= since_load; ++n->next_inject) {
      const sim::fault_rule& r = n->injects_at[n->next_inject].second;
      const std::size_t told = n->host->inject(r);
      m.log.info("program", std::string("fault schedule: ") + sim::to_string(r.kind) + " injected into the kernel-host workers of node " + name,
                 {{"node", name}, {"device", n->host->id()}, {"workers", told}});
    }
  }
  for (auto& [name, n] : m.nodes) {
    if (!n->dev || n->restore_after_s < 0) continue;
    if (!n->dev->lost()) {
      n->lost_since_ns = 0;
      continue;
    }
    if (n->lost_since_ns == 0) n->lost_since_ns = now;
    if (seconds_between(n->lost_since_ns, now) >= n->restore_after_s) {
      n->dev->restore();
      n->lost_since_ns = 0;
      m.log.info("program", "device " + n->dev->id() + " restored (fault schedule: restore_after_s)",
                 {{"device", n->dev->id()}, {"node", name}});
    }
  }
}

void engine::drain() {
  impl& m = *impl_;
  if (m.phase.load() != engine_phase::running) return;
  m.phase.store(engine_phase::draining, std::memory_order_release);
  m.stop_load.store(true, std::memory_order_release);
  for (auto& g : m.gens)
    if (g->thread.joinable()) g->thread.join();
  const auto limit = clock::now() + std::chrono::milliseconds(m.config_copy().runtime.drain_timeout_ms);
  while (m.open_total() != 0 && clock::now() < limit) {
    tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling the open count while answers arrive
  }
  const std::uint64_t left = m.open_total();
  m.log.write(left ? log_level::warn : log_level::info, "program",
              left ? "drain timed out; the graph answers the rest (stopped)" : "drained: every message answered",
              {{"open", left}});
}

void engine::stop() {
  impl& m = *impl_;
  if (m.phase.exchange(engine_phase::stopped) == engine_phase::stopped) return;
  m.stop_load.store(true, std::memory_order_release);
  for (auto& g : m.gens)
    if (g->thread.joinable()) g->thread.join();
  if (m.graph) m.graph->stop();  // answers whatever is still open (errc::stopped)
  if (m.root) m.root->stop();
  if (m.ladder) m.ladder->stop();
  std::uint64_t lost = 0;
  for (auto& g : m.gens) {
    std::lock_guard<std::mutex> lock(g->mu);
    lost += g->open.size();
  }
  m.lost_final = lost;
  m.end_ns = steady_now();
  if (m.rt)  // the ring cores go with the runtime: keep what the summary reads from them
    for (const auto& r : m.rings)
      if (auto core = m.rt->ring(r->name)) m.replays_final += core->stats().replayed;
  if (m.rt) m.rt->shutdown();
  for (const auto& [backend, dev] : m.gpus)  // the ring actors are gone: stop each device's kernel
    if (dev && !dev->stop_kernel())
      m.log.write(log_level::error, "program", "device " + dev->id() + ": " + dev->last_error(), {{"device", dev->id()}});
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
                {"detail", !core ? "not running" : !pr.attached ? "no incarnation attached (recovering)"
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
  const std::uint64_t from = m.load_start_ns ? m.load_start_ns : m.start_ns;
  s.elapsed_s = seconds_between(from, m.end_ns ? m.end_ns : steady_now());
  s.sent = m.sent.load();
  s.replied = m.replied.load();
  s.errors = m.errors.load();
  s.in_flight = m.open_total();
  {
    std::lock_guard<std::mutex> lock(m.ev_mu);
    s.faults = m.faults_detected;
    s.recoveries = m.recoveries;
  }
  s.p50_us = m.latency.quantile_us(0.5);
  s.p99_us = m.latency.quantile_us(0.99);
  return s;
}

run_summary engine::summary() const {
  const impl& m = *impl_;
  run_summary s;
  {
    // Every generator's lock (in one order; answer() takes only its own): a consistent cut.
    std::vector<std::unique_lock<std::mutex>> locks;
    for (const auto& g : m.gens) locks.emplace_back(g->mu);
    s.sent = m.sent.load();
    s.replied = m.replied.load();
    s.errors = m.errors.load();
    s.duplicated = m.duplicated.load();
    s.wrong = m.wrong.load();
    if (m.phase.load() == engine_phase::stopped) {
      s.lost = m.lost_final;
    } else {
      for (const auto& g : m.gens) s.lost += g->open.size();
    }
  }
  for (const auto& [name, n] : m.nodes) {
    if (n->dev) s.faults_injected += n->dev->faults().fired_total();
    if (n->host) {
      s.faults_injected += n->host->faults_fired() + n->kills.load(std::memory_order_relaxed);
      s.worker_restarts += n->host->worker_restarts();
    }
  }
  {
    std::lock_guard<std::mutex> lock(m.ev_mu);
    s.faults_detected = m.faults_detected;
    s.restarts = m.restarts;
    s.reinits = m.reinits;
    s.reroutes = m.reroutes;
    s.failbacks = m.failbacks;
  }
  if (m.phase.load() == engine_phase::stopped) s.replays = m.replays_final;
  else if (m.rt && !m.rt->is_shut_down())
    for (const auto& r : m.rings)
      if (auto core = m.rt->ring(r->name)) s.replays += core->stats().replayed;
  if (m.root) s.supervisor_restarts = m.root->snapshot().restarts;
  s.spans = m.tracer ? m.tracer->spans() : 0;
  s.spans_dropped = m.tracer ? m.tracer->dropped() : 0;
  s.p50_us = m.latency.quantile_us(0.5);
  s.p99_us = m.latency.quantile_us(0.99);
  s.p999_us = m.latency.quantile_us(0.999);
  s.max_us = static_cast<double>(m.latency.max_ns()) / 1000.0;
  const std::uint64_t from = m.load_start_ns ? m.load_start_ns : m.start_ns;
  s.duration_s = seconds_between(from, m.end_ns ? m.end_ns : steady_now());
  s.throughput_per_s = s.duration_s > 0 ? static_cast<double>(s.replied) / s.duration_s : 0;
  {
    std::lock_guard<std::mutex> lock(m.err_mu);
    for (const auto& [code, n] : m.errors_by_code) s.errors_by_code[code] = n;
  }
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
  m.limiter.set_rate(now.limits.ingress_rate_per_s);
  m.sample_ratio.store(now.trace.sample_ratio);
  m.max_payload.store(now.limits.max_payload_bytes);
  return changes;
}

// ---- /metrics -------------------------------------------------------------------------------------------

std::string engine::metrics_text() const {
  const impl& m = *impl_;
  exposition x;
  const bool live_rt = m.rt && !m.rt->is_shut_down();

  x.family("ringflow_messages_total", "counter", "Messages a node finished, by outcome (ok: answered; error: failed)");
  for (const auto& [name, n] : m.nodes) {
    x.sample({{"actor", name}, {"outcome", "ok"}}, static_cast<double>(n->ok.load()));
    x.sample({{"actor", name}, {"outcome", "error"}}, static_cast<double>(n->failed.load()));
  }
  x.family("ringflow_request_duration_seconds", "histogram",
           "Time a node took per message (a ring node: to its ring actor's answer)");
  for (const auto& [name, n] : m.nodes) x.histogram_sample({{"actor", name}}, n->duration.snapshot());
  x.family("ringflow_in_flight", "gauge", "Messages inside a node now (a ring node: its ring actors' outboxes)");
  for (const auto& [name, n] : m.nodes) {
    double v = static_cast<double>(std::max<std::int64_t>(0, n->in_flight.load()));
    if (live_rt && !n->rings.empty()) {
      v = 0;
      for (const auto& r : n->rings)
        if (auto core = m.rt->ring(r)) v += core->stats().in_flight;
    }
    x.sample({{"actor", name}}, v);
  }
  x.family("ringflow_ring_queue_depth", "gauge",
           "Slots in use in a ring kernel's rings (direction: request = waiting for the kernel, response = replies "
           "not yet consumed)");
  if (live_rt)
    for (const auto& r : m.rings) {
      const auto core = m.rt->ring(r->name);
      const incarnation_probe p = core ? core->probe() : incarnation_probe{};
      x.sample({{"ring", r->name}, {"direction", "request"}}, static_cast<double>(p.request_depth));
      x.sample({{"ring", r->name}, {"direction", "response"}}, static_cast<double>(p.reply_depth));
    }
  {
    std::lock_guard<std::mutex> lock(m.ev_mu);
    x.family("ringflow_faults_total", "counter", "Device faults the fault ladder detected, by kind");
    for (const auto& [name, c] : m.counters)
      for (const auto& [kind, v] : c.faults) x.sample({{"actor", name}, {"kind", kind}}, static_cast<double>(v));
    auto per_actor = [&](const char* fam, const char* help, std::uint64_t impl::actor_counters::*field) {
      x.family(fam, "counter", help);
      for (const auto& [name, n] : m.nodes)
        if (!n->rings.empty()) {
          auto it = m.counters.find(name);
          x.sample({{"actor", name}}, it == m.counters.end() ? 0.0 : static_cast<double>(it->second.*field));
        }
    };
    per_actor("ringflow_restarts_total", "Kernel restarts by the fault ladder (step 1, and after a reinit)",
              &impl::actor_counters::restarts);
    per_actor("ringflow_reinits_total", "Device reinitializations the ladder took for a ring actor (step 2)",
              &impl::actor_counters::reinits);
    per_actor("ringflow_reroutes_total", "Moves of a ring actor to its CPU incarnation (step 3)",
              &impl::actor_counters::reroutes);
    per_actor("ringflow_failbacks_total", "Moves of a rerouted ring actor back to its device",
              &impl::actor_counters::failbacks);
  }
  x.family("ringflow_replays_total", "counter", "Requests re-published into a new incarnation after a fault");
  for (const auto& [name, n] : m.nodes) {
    if (n->rings.empty()) continue;
    double v = 0;
    if (live_rt)
      for (const auto& r : n->rings)
        if (auto core = m.rt->ring(r)) v += core->stats().replayed;
    x.sample({{"actor", name}}, v);
  }
  x.family("ringflow_supervisor_restarts_total", "counter", "Restarts decided by an OTP supervisor (root included)");
  if (m.root) {
    const supervisor_snapshot s = m.root->snapshot();
    std::function<void(const supervisor_snapshot&)> walk = [&](const supervisor_snapshot& n) {
      x.sample({{"supervisor", n.name}}, static_cast<double>(n.restarts));
      for (const auto& c : n.children)
        if (c.nested) walk(*c.nested);
    };
    walk(s);
  }
  const ladder_snapshot ls = m.ladder && live_rt ? m.ladder->snapshot() : ladder_snapshot{};
  x.family("ringflow_breaker_state", "gauge", "Circuit breaker of a device: 0 closed, 1 half-open, 2 open");
  for (const auto& d : ls.devices)
    x.sample({{"device", d.id}}, d.breaker == breaker_state::closed ? 0.0 : d.breaker == breaker_state::half_open ? 1.0 : 2.0);
  x.family("ringflow_device_up", "gauge", "1 when a device takes work (present and its breaker not open), else 0");
  for (const auto& d : ls.devices) {
    bool up = d.breaker != breaker_state::open;
    for (const auto& [name, n] : m.nodes)
      if ((n->dev && n->dev->id() == d.id && (n->dev->lost() || n->dev->poisoned())) ||
          (n->gpu && n->gpu->id() == d.id && n->gpu->poisoned()))
        up = false;
    x.sample({{"device", d.id}}, up ? 1.0 : 0.0);
  }
  x.family("ringflow_worker_restarts_total", "counter",
           "Kernel-host workers started to replace one that died, was killed or faulted (host: process nodes)");
  for (const auto& [name, n] : m.nodes)
    if (n->host) x.sample({{"device", n->host->id()}}, static_cast<double>(n->host->worker_restarts()));
  x.family("ringflow_workers", "gauge", "Kernel-host worker processes alive now (host: process nodes)");
  for (const auto& [name, n] : m.nodes)
    if (n->host) x.sample({{"device", n->host->id()}}, static_cast<double>(n->host->worker_pids().size()));
  x.family("ringflow_gpu_kernel_launches_total", "counter",
           "Launches of a GPU device's persistent kernel: 1, plus one per relaunch after a kernel fault");
  for (const auto& [backend, d] : m.gpus)
    if (d) x.sample({{"device", d->id()}}, static_cast<double>(d->kernel_launches()));
  x.family("ringflow_gpu_rings", "gauge", "Ring actors bound to a GPU device's persistent kernel now");
  for (const auto& [backend, d] : m.gpus)
    if (d) x.sample({{"device", d->id()}}, static_cast<double>(d->bound_rings()));
  const run_summary s = summary();
  x.family("ringflow_load_messages_total", "counter",
           "Load generator accounting: sent, replied, errors, lost (not answered yet), duplicated, wrong");
  x.sample({{"outcome", "sent"}}, static_cast<double>(s.sent));
  x.sample({{"outcome", "replied"}}, static_cast<double>(s.replied));
  x.sample({{"outcome", "errors"}}, static_cast<double>(s.errors));
  x.sample({{"outcome", "duplicated"}}, static_cast<double>(s.duplicated));
  x.sample({{"outcome", "wrong"}}, static_cast<double>(s.wrong));
  x.family("ringflow_ready", "gauge", "1 when /health/ready answers 200");
  nlohmann::json why;
  x.sample({}, ready(why) ? 1.0 : 0.0);
  return x.text();
}

// ---- /topology --------------------------------------------------------------------------------------------

nlohmann::json engine::topology_json() const {
  const impl& m = *impl_;
  const bool live_rt = m.rt && !m.rt->is_shut_down();
  const ladder_snapshot ls = m.ladder && live_rt ? m.ladder->snapshot() : ladder_snapshot{};
  nlohmann::json j;
  j["name"] = m.topo.name;
  j["file"] = m.topo.file;
  j["phase"] = to_string(phase());
  nlohmann::json nodes = nlohmann::json::array();
  for (const node_spec& n : m.topo.nodes) {
    const auto& nr = *m.nodes.at(n.name);
    nlohmann::json o = {{"name", n.name}, {"kind", n.kind == node_kind::ring ? "ring" : "cpu"},
                        {"input", n.in_type}, {"output", n.out_type}};
    if (n.kind == node_kind::cpu) {
      o["function"] = n.function;
    } else {
      o["kernel"] = n.kernel;
      o["backend_preference"] = m.backend_of(n);
      o["device"] = nr.host ? nr.host->id() : nr.dev ? nr.dev->id() : nr.gpu ? nr.gpu->id() : "cpu";
      o["host"] = n.host;
      if (nr.host) {
        o["worker_pids"] = nr.host->worker_pids();
        o["standby_pids"] = nr.host->standby_pids();
        o["worker_restarts"] = nr.host->worker_restarts();
      }
      nlohmann::json reps = nlohmann::json::array();
      for (const std::string& r : nr.rings) {
        nlohmann::json rj = {{"ring", r}};
        if (live_rt)
          if (auto core = m.rt->ring(r)) {
            const incarnation_probe p = core->probe();
            rj["runs_on"] = p.attached ? p.backend : "";
            rj["incarnation"] = {{"attached", p.attached},     {"epoch", p.epoch},
                                 {"state", ringflow::to_string(p.state)}, {"error", ringflow::to_string(p.error)},
                                 {"heartbeat", p.heartbeat},   {"request_depth", p.request_depth},
                                 {"reply_depth", p.reply_depth}};
          }
        for (const auto& st : ls.rings)
          if (st.name == r) {
            rj["on_device"] = st.on_device;
            rj["ladder_phase"] = st.phase;
          }
        reps.push_back(std::move(rj));
      }
      o["replicas"] = std::move(reps);
    }
    nodes.push_back(std::move(o));
  }
  j["nodes"] = std::move(nodes);
  j["edges"] = nlohmann::json::array();
  for (const auto& e : m.topo.edges) j["edges"].push_back({{"from", e.from}, {"to", e.to}});
  std::function<nlohmann::json(const supervisor_snapshot&)> sup = [&](const supervisor_snapshot& s) {
    nlohmann::json o = {{"name", s.name}, {"strategy", ringflow::to_string(s.strategy)}, {"intensity", s.intensity},
                        {"period_ms", s.period.count()}, {"running", s.running}, {"restarts", s.restarts},
                        {"escalated", s.escalated}};
    o["children"] = nlohmann::json::array();
    for (const auto& c : s.children) {
      nlohmann::json cj = {{"id", c.id}, {"kind", ringflow::to_string(c.kind)}, {"running", c.running},
                           {"restarts", c.restarts}, {"last_exit", c.last_exit}};
      if (c.nested) cj["supervisor"] = sup(*c.nested);
      o["children"].push_back(std::move(cj));
    }
    return o;
  };
  j["supervisors"] = m.root ? sup(m.root->snapshot()) : nlohmann::json(nullptr);
  j["devices"] = nlohmann::json::array();
  for (const auto& d : ls.devices)
    j["devices"].push_back({{"id", d.id}, {"backend", d.backend}, {"breaker", ringflow::to_string(d.breaker)},
                            {"recent_failures", d.recent_failures}, {"breaker_opens", d.breaker_opens},
                            {"reinits", d.reinits}});
  j["load"] = nlohmann::json::array();
  for (const auto& l : m.topo.load)
    j["load"].push_back({{"name", l.name}, {"target", l.target}, {"message", l.message}, {"rate", l.rate}});
  return j;
}

}  // namespace ringflow::ops

// The engine's state (internal): what a run holds per node and per ring actor, and the engine's
// implementation object that composes the parts — placement, fault schedule, build, load driver,
// exposition — each in a file named for its job (docs/ARCHITECTURE.md "The engine").
// Thread-safety: built by the controlling thread in start(); after that node_rt's atomics and the
// ladder counters (ev_mu) are shared with the graph's actors, the ladder and the HTTP handlers.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "checkpointer.hpp"
#include "cluster.hpp"
#include "fault_schedule.hpp"
#include "load_driver.hpp"
#include "placement.hpp"
#include "ringflow/actors/graph.hpp"
#include "ringflow/actors/runtime.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/prometheus.hpp"
#include "ringflow/runtime/trace.hpp"
#include "ringflow/supervision/fault_ladder.hpp"
#include "ringflow/supervision/supervisor.hpp"

namespace ringflow::ops::engine_parts {

[[nodiscard]] inline double seconds_between(std::uint64_t a_ns, std::uint64_t b_ns) {
  return b_ns > a_ns ? static_cast<double>(b_ns - a_ns) / 1e9 : 0.0;
}

/// One topology node at run time.
struct node_rt {
  const node_spec* spec = nullptr;
  /// Cluster topologies: a node of another member is `remote` here (a graph step over its link;
  /// nothing built), unless this member is its fallback: then it is also built here as a
  /// `standby` (served through the serve graph only). Without a cluster every node is local.
  bool remote = false, standby = false;
  /// A stateful node's standby (`fallback:` this member): its ring actor starts only when this
  /// member takes the node over (its home lost; take_over()) and stops when it hands it back.
  bool dormant = false;
  bool taken = false;               // taken over now (under impl::takeover_mu)
  std::vector<std::string> rings;   // ring actors of a ring node (one per replica)
  node_placement where;             // ring nodes: the devices behind them
  host_fault_schedule host_faults;  // kernel-host nodes: kill_worker and timed faults (tick() only)
  restore_timer restore;            // device_lost faults (tick() only)
  /// actor_crash faults (null: none): asked once per message routed to a running ring actor of the
  /// node (the sim's triggers: the k-th message, from a time on, a probability; `times` each).
  std::unique_ptr<sim::fault_injector> actor_crashes;
  std::atomic<std::uint64_t> kills{0};  // workers SIGKILLed by the schedule
  std::atomic<std::uint64_t> rr{0};     // round robin over the replicas
  histogram duration;
  std::atomic<std::uint64_t> ok{0}, failed{0};
  std::atomic<std::int64_t> in_flight{0};
  void done(bool good, std::uint64_t t0) {
    duration.observe(seconds_between(t0, steady_now()));
    (good ? ok : failed).fetch_add(1, std::memory_order_relaxed);
    in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
};

/// One ring actor (a replica of a ring node).
struct ring_rt {
  std::string name;
  node_rt* node = nullptr;
  const kernel_info* kernel = nullptr;
  incarnation_factory on_device, on_cpu;
  ring_actor_options opts;
  /// Times its supervisor started it (the child's start function ran); starts - 1 = OTP restarts,
  /// whichever supervisor in the tree decided them.
  std::atomic<std::uint64_t> starts{0};
  std::uint64_t verify_failures_logged = 0;  // state.verify: failures already logged (tick's thread)
};

struct engine_snapshot;
struct node_view;

/// Monotonic per node, from ladder events (a ladder record resets on an OTP restart).
struct actor_counters {
  std::map<std::string, std::uint64_t> faults;  // by kind
  std::uint64_t restarts = 0, reinits = 0, reroutes = 0, failbacks = 0, recoveries = 0;
};

/// The ladder's events, counted per node and in total (ev_mu).
struct ladder_tally {
  mutable std::mutex mu;
  std::map<std::string, actor_counters> by_node;
  std::uint64_t faults_detected = 0, restarts = 0, reinits = 0, reroutes = 0, failbacks = 0, recoveries = 0;
};

}  // namespace ringflow::ops::engine_parts

namespace ringflow::ops {

struct engine::impl {
  topology topo;
  program_config cfg;
  mutable std::mutex cfg_mu;  // cfg (reload vs readers)
  event_log& log;
  run_options opts;
  std::atomic<engine_phase> phase{engine_phase::created};

  std::unique_ptr<runtime> rt;
  std::unique_ptr<fault_ladder> ladder;
  std::unique_ptr<trace_writer> tracer;
  engine_parts::placement where;
  std::map<std::string, std::unique_ptr<engine_parts::node_rt>> nodes;
  std::vector<std::unique_ptr<engine_parts::ring_rt>> rings;
  std::map<std::string, engine_parts::node_rt*> ring_to_node;
  std::optional<supervisor_ref> root;
  std::shared_ptr<running_graph> graph;
  engine_parts::ladder_tally tally;
  engine_parts::load_driver load;
  engine_parts::checkpointer checkpoints;  // the stateful nodes' durable checkpoints (`checkpoint:`)
  // Cluster topologies (`cluster:`): this member, its standby copies of other members' nodes
  // (local_cpu fallbacks: on the CPU, in-process), and the serve graph (the nodes built here, no
  // edges: what other members call, and where a local_cpu fallback runs).
  std::unique_ptr<engine_parts::cluster_member> cluster;
  std::deque<node_spec> standby_specs;
  std::shared_ptr<running_graph> serve;
  // Written by the controlling thread, read by the HTTP handlers and the signal thread.
  std::atomic<std::uint64_t> start_ns{0}, load_start_ns{0}, end_ns{0};
  // What stop() keeps for the summary once the ring cores are gone; valid once `finals` is set
  // (release, after them): until then the summary counts what is open now.
  std::atomic<std::uint64_t> lost_final{0}, replays_final{0};
  std::atomic<bool> finals{false};
  // The supervisor whose give-up ended the run ("" while none has): set by tick(), read anywhere.
  mutable std::mutex gave_up_mu;
  std::string gave_up;

  impl(topology t, program_config c, event_log& l, run_options o)
      : topo(std::move(t)),
        cfg(std::move(c)),
        log(l),
        opts(std::move(o)),
        where(log, opts),
        load(log),
        checkpoints(log) {}

  program_config config_copy() const {
    std::lock_guard<std::mutex> lock(cfg_mu);
    return cfg;
  }
  [[nodiscard]] bool runtime_live() const { return rt && !rt->is_shut_down(); }

  // build.cpp
  /// A cluster topology: keeps this member's faults and load generators, makes the cluster part.
  void join_cluster();
  void build_serve_graph();
  void build_nodes();
  void compile_faults();
  void build_tree();
  void build_graph();
  void add_local_node(ringflow::graph& g, const node_spec& n, engine_parts::node_rt* nr);
  caf::actor spawn_ring(engine_parts::ring_rt& r);
  child_spec ring_child(engine_parts::ring_rt& r);
  std::vector<child_spec> children_of(const std::string& sup);
  // Stateful standbys (build.cpp; cluster.hpp standby_hooks): "" once node `node` runs here from
  // its checkpoint folder (its lock taken), else why not; hand_back() stops it with a last
  // checkpoint and releases the lock; wanted_back(): its home member asks for it.
  std::mutex takeover_mu;
  std::string take_over(const std::string& node);
  void hand_back(const std::string& node);
  [[nodiscard]] bool wanted_back(const std::string& node) const;
  [[nodiscard]] bool has_dormant() const;
  ring_picker ring_picker_of(engine_parts::node_rt* nr);
  // engine.cpp
  void on_ladder_event(const ladder_event& e);
  void tick_verify();  // state.verify: a log line for each new failure
  void tick_faults();
  /// tick(): the root supervisor exited on its own (intensity exceeded): record who gave up.
  void watch_root();
  /// Kills the ring actor `name` (an actor_crash fault); its pending callers get errc::stopped.
  void crash_actor(const engine_parts::node_rt& n, const std::string& name, const caf::actor& a);
  /// For /metrics (`with_summary`: the load accounting and readiness too) and /topology.
  [[nodiscard]] engine_parts::engine_snapshot snapshot(const engine& e, bool with_summary) const;
  [[nodiscard]] engine_parts::node_view view_of(const engine_parts::node_rt& n, const ladder_snapshot& ls) const;
};

}  // namespace ringflow::ops

// Exposition (internal to the engine): /metrics (Prometheus text 0.0.4) and /topology (JSON) as
// free functions over a read-only snapshot of a run. The engine takes the snapshot (engine.cpp:
// probes of the ring cores, the ladder's and supervisors' snapshots, the summary); rendering reads
// nothing else, so what one scrape shows is one snapshot and the renderers are testable alone.
// Metric names, labels and JSON keys are interfaces (docs/OPERATIONS.md): keep them exactly.
// Thread-safety: pure functions of their argument.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine_state.hpp"

namespace ringflow::ops::engine_parts {

struct ring_view {
  std::string name;
  bool running = false;  // the runtime is live and has this ring actor's core
  incarnation_probe probe;
  std::uint64_t in_flight = 0, replayed = 0;
  // A stateful kernel's ring actor (state_bytes > 0):
  std::uint32_t state_bytes = 0, journal_depth = 0;
  std::uint64_t snapshots = 0, snapshot_ns = 0;
  bool verify = false;  // state.verify: the counts below
  std::uint64_t verified = 0, verify_failures = 0;
  std::optional<ladder_ring_status> ladder;  // when the ladder supervises it
};

struct host_view {
  std::string id;
  std::vector<pid_t> workers, standbys;
  std::uint64_t restarts = 0;
};

struct node_view {
  const node_spec* spec = nullptr;
  std::string backend_preference;
  std::string device_id = "cpu";  // the ladder's device, "cpu" when none
  std::uint64_t ok = 0, failed = 0;
  std::int64_t in_flight = 0;  // the node's own count (CPU nodes; ring nodes when the runtime is gone)
  histogram_snapshot duration;
  std::vector<ring_view> rings;
  std::optional<host_view> host;
  std::vector<std::string> devices_down;  // devices this node's backend reports unusable (lost, poisoned)
};

struct gpu_view {
  std::string id;
  std::uint64_t launches = 0, rings = 0;
};

struct engine_snapshot {
  const topology* topo = nullptr;
  engine_phase phase = engine_phase::created;
  bool runtime_live = false;
  std::vector<node_view> nodes;                    // topology order
  std::map<std::string, actor_counters> counters;  // ladder events by node
  std::optional<supervisor_snapshot> supervisors;
  ladder_snapshot ladder;
  std::vector<gpu_view> gpus;
  std::vector<checkpoint_view> checkpoints;  // the checkpointed stateful nodes
  histogram_snapshot intended;               // the load generators' intended-send-time latency
  run_summary summary;
  bool ready = false;
  std::uint64_t open_messages = 0;       // pushed by the load generators, not answered yet
  std::uint64_t log_write_failures = 0;  // event_log::write_failures()
};

[[nodiscard]] std::string metrics_text(const engine_snapshot& s);
[[nodiscard]] nlohmann::json topology_json(const engine_snapshot& s);

}  // namespace ringflow::ops::engine_parts

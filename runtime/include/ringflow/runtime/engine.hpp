// ringflow/runtime/engine.hpp — runs a topology: devices, fault ladder, supervisor tree, graph, load.
//
// Contract
//   * start() builds, in order: a runtime (CAF scheduler threads from the config); one device per
//     ring node that does not run plainly on the CPU (a `sim` device "sim:<node>": the CPU kernel
//     behind the fault injector; the faults of the topology are its rules); the fault ladder (the
//     config's ladder and breaker sections) supervising every ring actor placed on a device; an
//     OTP supervisor tree — `root` (one_for_one) holding the topology's supervisors and every
//     ring node no supervisor claims — whose children are the ring actors (one per replica:
//     "<node>" or "<node>.<i>"); and the graph: CPU nodes run their catalog function, ring nodes
//     forward to their ring actors (round robin over replicas, looked up by name per message, so an
//     OTP restart is picked up at once). Failure to build throws engine_error; what was started is
//     stopped again.
//   * Backends: `cpu` runs the kernel on the CPU backend (a device only when faults target the
//     node); `sim` the sim device; `auto` the best device present — cuda, else hip, else sim, with
//     one log line giving each GPU backend's reason; `cuda`/`hip` that are unusable here fail with
//     engine_error (the driver's reason) rather than silently running elsewhere. All nodes on a GPU
//     share its one persistent kernel; a node with sim faults runs behind the sim decorator over it.
//   * The implementation is in parts, each a file in runtime/src/engine/ named for its job:
//     placement (backend choice, one device per node), fault_schedule (compile + tick), build
//     (ring actors, supervisor tree, graph), load_driver (generators, rate limit, accounting),
//     exposition (metrics text and topology JSON over a snapshot); engine.cpp keeps the lifecycle.
//   * start_load() starts one thread per load generator: paced to its rate (and to
//     limits.ingress_rate_per_s over all generators), at most max_in_flight pushes open. Each
//     push is answered exactly once by the graph; the engine counts it independently: `sent` at
//     push, then `replied` (every terminal output carries the sequence number that was sent, when
//     its type has one — else `wrong`), `errors` (a typed error answer) or, if it never came,
//     `lost`; an answer for a push not open is `duplicated`. So sent = replied + errors + lost.
//   * drain(): stops the generators, waits (drain_timeout_ms) until every open push is answered;
//     stop(): stops the graph (anything still open is answered errc::stopped), the supervisor
//     tree (children in reverse order), the fault ladder and the runtime. Both idempotent.
//   * ready(): phase running and every ring actor has an attached incarnation without a fault.
//   * actor_crash faults kill a ring actor when the node's route picks it (the message goes on to its
//     core, which answers it `stopped`); its OTP supervisor restarts it. When the root supervisor
//     gives up, gave_up() names it and summary().ok() is false.
//   * reload(): applies the reloadable settings (log level, breaker, ingress rate, trace sample
//     ratio, max payload) and returns what changed.
// Thread-safety: start/start_load/drain/stop from one controlling thread; everything else (the
// HTTP handlers, the status line) from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "ringflow/actors/graph.hpp"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/runtime/config.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/topology.hpp"

namespace ringflow::ops {

struct engine_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class engine_phase { created, starting, running, draining, stopped };
const char* to_string(engine_phase p) noexcept;

struct run_options {
  std::string backend_override;  // "" or auto|cpu|sim|cuda|hip: replaces every ring node's preference
  std::string trace_file;        // "" = no spans written
  /// The `ringflow` executable started as kernel-host workers for `host: process` nodes
  /// ("" = this process's own executable: right inside the ringflow program).
  std::string kernel_host_program;
  /// How a GPU backend ("cuda" / "hip") is opened, once per run; it throws gpu::gpu_unavailable
  /// (the reason) or returns nullptr (no such backend). Empty: the GPU backends of this build
  /// (gpu::make_cuda_device / make_hip_device). Tests put the emulated GPU device here.
  std::function<std::shared_ptr<gpu::gpu_device>(const std::string& backend)> open_gpu;
  /// A stateful node's checkpoint of another kernel or state size: move it aside and start from
  /// init (logged) instead of failing the start (`ringflow run --discard-checkpoints`).
  bool discard_checkpoints = false;
  /// A cluster topology (`cluster:`): the member this process runs (`ringflow run --member`), and
  /// the folder where `ringflow cluster up` exchanges the members' assigned ports ("" = none).
  std::string member;
  std::string cluster_dir;
  /// The host this member listens on instead of its `listen` host ("" = as written; `ringflow run
  /// --cluster-listen`, which `cluster up` sets for members it runs in network namespaces).
  std::string cluster_listen;
  /// This member calls the others although no load generator is placed on it: an embedding
  /// service that pushes into graph() or uses client() (a member without either only serves).
  bool cluster_client = false;
};

/// The counters of a run (`--summary-json` writes to_json()).
struct run_summary {
  std::uint64_t sent = 0, replied = 0, errors = 0, lost = 0, duplicated = 0, wrong = 0;
  std::uint64_t faults_injected = 0, faults_detected = 0, restarts = 0, reinits = 0, reroutes = 0, failbacks = 0;
  std::uint64_t replays = 0, supervisor_restarts = 0, spans = 0, spans_dropped = 0;
  std::uint64_t worker_restarts = 0;      // kernel-host workers started to replace one that died or was killed
  std::uint64_t actor_crashes = 0;        // ring actors killed by actor_crash faults (also in faults_injected)
  std::uint64_t ring_actor_restarts = 0;  // OTP restarts of ring actors, by any supervisor in the tree
  /// Cluster topologies: this member's name ("" = none), the times a member it calls was lost
  /// (its nodes went to their fallbacks) and came back (they failed back).
  std::string member;
  std::uint64_t member_failovers = 0, member_failbacks = 0;
  /// The supervisor whose give-up (restart intensity exceeded) ended the run: "root"; "" = none
  /// (JSON null).
  std::string gave_up;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;  // push -> answer
  /// Intended send time -> answer (load_driver: paced clients' view, no coordinated omission).
  double intended_p50_us = 0, intended_p99_us = 0, intended_p999_us = 0;
  double duration_s = 0, throughput_per_s = 0;
  nlohmann::json errors_by_code = nlohmann::json::object();
  /// The load messages answered with an error: [{generator, sequence, code}], at most 100,000 (the
  /// rest counted in failed_sequences_dropped). Which trades a stateful node never applied.
  nlohmann::json failed_sequences = nlohmann::json::array();
  std::uint64_t failed_sequences_dropped = 0;
  bool ok() const noexcept { return lost == 0 && duplicated == 0 && wrong == 0 && gave_up.empty(); }
  nlohmann::json to_json() const;
};

/// A caller of one topology node, from C++ (engine::client): the embedding API of a cluster.
///   * call() / submit() send a request to the node and answer it exactly once: the node's reply
///     (call_result::reply; empty when the node ended the message there), a typed error, or
///     errc::timeout / errc::stopped. A node placed on another member is reached over the
///     cluster's link with the guarantees of remote graph steps (outbox keyed by correlation id,
///     deadline budget, dedupe at the member, epoch fencing, replay to the node's fallback when its
///     member is lost, errc::node_unreachable at once when it has none).
///   * Its in-flight window (`window`): a request over it fails at once with errc::overloaded.
///   * A request without a deadline gets `default_timeout` from now when that is > 0 (else the
///     runtime's default). A deadline already past is answered errc::timeout at once.
///   * call() blocks its thread until the answer: do not call it inside a submit() callback.
/// Thread-safety: any thread; a client may be shared (its window is then shared). The engine
/// outlives its clients: after engine::stop() every request is answered errc::stopped.
class node_client {
 public:
  struct options {
    std::uint32_t window = 64;
    std::chrono::milliseconds default_timeout{0};
  };
  node_client() = default;
  [[nodiscard]] bool valid() const noexcept { return st_ != nullptr; }
  /// The node, and the member it runs on ("" without a cluster).
  [[nodiscard]] const std::string& node() const;
  [[nodiscard]] const std::string& member() const;
  /// True when the node runs on another member (its requests cross the cluster's link).
  [[nodiscard]] bool remote() const;
  [[nodiscard]] std::uint32_t in_flight() const noexcept;
  /// `timeout` > 0 sets the deadline that far from now (replacing the request's own).
  call_result call(fb_msg request, std::chrono::nanoseconds timeout = {});
  std::future<call_result> submit(fb_msg request);
  /// `on_done` runs exactly once: at once on this thread for a request refused outright
  /// (overloaded, timeout, wrong type), else on the thread that answers (a CAF worker).
  void submit(fb_msg request, std::function<void(call_result&&)> on_done);

  struct state;  // runtime/src/engine/node_client.cpp
  explicit node_client(std::shared_ptr<state> st) : st_(std::move(st)) {}

 private:
  std::shared_ptr<state> st_;
};

/// What the live status line shows.
struct live_stats {
  double elapsed_s = 0;
  std::uint64_t sent = 0, replied = 0, errors = 0, in_flight = 0;
  std::uint64_t faults = 0, recoveries = 0;
  double p50_us = 0, p99_us = 0;
};

class engine {
 public:
  engine(topology topo, program_config cfg, event_log& log, run_options opts);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  void start();
  void start_load();
  /// Runs housekeeping (device restores of device_lost faults, the kill_worker and timed faults of
  /// kernel-host nodes); call every ~50 ms.
  void tick();
  /// The supervisor that gave up, ending the run ("" = none): the root supervisor exited because a
  /// child failed more often than its intensity allows (escalation climbed to it). tick() finds it;
  /// the caller then stops (no drain: nothing runs to answer the open messages but the stop).
  [[nodiscard]] std::string gave_up() const;
  /// True once every load generator has finished its duration (none, if there are none).
  bool load_finished() const;
  void drain();
  void stop();

  engine_phase phase() const noexcept;
  /// Ready for traffic? When not, `reason` says why (JSON for /health/ready).
  bool ready(nlohmann::json& reason) const;
  [[nodiscard]] std::string metrics_text() const;
  [[nodiscard]] nlohmann::json topology_json() const;
  /// GET /state/<node>: a stateful node's latest snapshot (docs/OPERATIONS.md "State");
  /// `status` 200, or 404 for an unknown or stateless node.
  [[nodiscard]] nlohmann::json state_json(const std::string& node, int& status) const;
  [[nodiscard]] live_stats live() const;
  /// `with_failures`: also run_summary::failed_sequences (the program's final summary; a copy of
  /// up to 100,000 records, so not for every /metrics scrape).
  [[nodiscard]] run_summary summary(bool with_failures = false) const;
  std::vector<config_change> reload(const program_config& next);
  const program_config& config() const;
  /// The running graph (after start(); nullptr before and after stop()): an embedding service
  /// pushes its own messages into the topology here (running_graph::push), beside or instead of
  /// the `load:` generators. Those pushes are not counted in the summary.
  [[nodiscard]] std::shared_ptr<running_graph> graph() const;
  /// A cluster member's port (after start(); 0 = not a cluster member).
  [[nodiscard]] std::uint16_t cluster_port() const;
  /// A client of topology node `target` (after start()): "node", or "node@member" in a cluster
  /// topology (e.g. "score@m2"; the member must be the one the topology places the node on; a
  /// plain "node" means wherever it is placed). errc::unknown_name for an unknown node or the
  /// wrong member, errc::stopped when the engine does not run, errc::node_unreachable for a node
  /// on another member when this member opens no links (it drives no load and
  /// run_options::cluster_client is false). docs/EMBEDDING.md "Join a cluster".
  [[nodiscard]] caf::expected<node_client> client(const std::string& target, node_client::options opts = {}) const;

  /// The implementation (runtime/src/engine/engine_state.hpp).
  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace ringflow::ops

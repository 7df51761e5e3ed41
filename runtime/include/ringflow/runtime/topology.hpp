// ringflow/runtime/topology.hpp — topology files (YAML): nodes, edges, supervisors, load, faults.
//
// Contract
//   * parse_topology() reads the whole file and validates it against the catalog (catalog.hpp);
//     it reports EVERY problem it finds, each as "file:line:column: what is wrong", and returns
//     a topology only when there is none. Checked: YAML syntax; unknown keys at every level;
//     missing keys; types and ranges of numbers; duplicate or malformed names; unknown kernels,
//     CPU functions, message types, backends, strategies and fault kinds; edges to unknown
//     nodes, self-loops, an edge whose output type differs from the input type it feeds (both
//     named), cycles (the graph is a DAG); supervisors whose children are not ring nodes, that
//     claim a node twice, or whose parents form a cycle; load aimed at a node that has incoming
//     edges or takes another message type; faults on nodes that are not ring nodes, with no or
//     several triggers.
//   * `plugins:` names kernel plugins (ringflow/plugin.hpp): shared libraries whose kernels,
//     message types and functions the rest of the file may use like the built-ins. The parser
//     resolves each path against the topology file's folder and hands the list to the caller's
//     plugin_loader (ops::topology_plugin_loader() loads them: runtime/plugins.hpp); the names it
//     reports back are what the file is validated against. A file may use only the built-ins and
//     the plugins it names. No loader (the fuzz target) and a `plugins:` key is an error.
//   * The `config:` block has the program config's schema (config.hpp); it is kept as YAML and
//     applied by the program (it sits between the defaults and the config file).
//   * Schema (docs/OPERATIONS.md has the full reference):
//       name: demo                       # required
//       plugins: [build/libquote_plugin.so]  # optional: kernel plugins (paths relative to this file)
//       description: "..."               # optional
//       duration_s: 20                   # optional default for `ringflow run --duration` (0 = until signalled)
//       config: { breaker: {cooldown_ms: 1500} }
//       nodes:                           # required, at least one
//         - {name: echo, kernel: echo, backend: auto, replicas: 1, window: 256, arena_bytes: 1048576,
//            ring_slots: 1024, host: in-process}            # or host: process (each ring actor's kernel in a
//            kernel-host worker)
//         - {name: check, function: validate, type: Echo}                         # CPU node
//       edges: [{from: check, to: echo}]
//       supervisors:
//         - {name: stage, strategy: one_for_one, intensity: 3, period_ms: 5000, children: [echo], parent: root}
//       load:
//         - {name: clients, target: check, message: Echo, rate: 2000, duration_s: 0, payload_bytes: 64,
//            max_in_flight: 128, start_s: 0}
//       faults:
//         - {node: echo, kind: crash, at_s: 3}           # or at_message: N, or probability: p
//         - {node: echo, kind: device_lost, at_s: 8, restore_after_s: 3}
//         - {node: echo, kind: kill_worker, at_s: 5}    # host: process nodes: SIGKILL their workers
//         - {kind: member_kill, member: m2, at_s: 4, restore_after_s: 3}   # cluster members (`cluster up`)
//       cluster:                         # optional: a multi-member topology (docs/OPERATIONS.md "Clusters")
//         members: [{name: m1, listen: "127.0.0.1:0"}, {name: m2, listen: "127.0.0.1:0"}]
//         tls: {ca: ca.pem, cert: m.pem, key: m.key}   # optional; paths relative to this file
//         heartbeat_ms: 100
//         timeout_ms: 1000
//       (nodes and load generators then take `at: <member>`, default the first member; nodes also
//        `fallback: local_cpu | <member>`)
// Thread-safety: plain functions over values.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ringflow::ops {

struct source_pos {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

struct topology_error {
  std::string file;
  source_pos pos;
  std::string what;
  std::string str() const;  // "file:line:column: what"
};

enum class node_kind { ring, cpu };

struct node_spec {
  std::string name;
  source_pos pos;
  node_kind kind = node_kind::ring;
  // ring nodes
  std::string kernel;
  std::string backend = "auto";     // auto | cpu | sim | cuda | hip
  std::string host = "in-process";  // in-process | process (a supervised kernel-host worker per ring actor)
  std::uint32_t replicas = 1;
  std::uint32_t window = 256;            // the ring actors' in-flight window
  std::uint32_t arena_bytes = 1u << 20;  // each ring's arena for payloads beyond a slot (multiple of 64)
  std::uint32_t ring_slots = 0;          // slots of each ring (power of two; 0 = the backend's default:
                                         // 1024 on the CPU, 256 on a GPU; 32 = the small ring actor)
  std::string wait;                      // park | adaptive | spin; "" = the config's runtime.wait
  std::vector<int> cpus;                 // CPUs of its kernel threads (empty: not pinned)
  // A stateful kernel's node (`state:`; ring_actor_options::state, docs/TOPOLOGY.md):
  bool stateful = false;  // its kernel keeps state
  std::uint32_t snapshot_every = 1000;
  std::uint32_t snapshot_ms = 1000;
  std::uint32_t journal_max = 16384;
  bool state_verify = false;  // `state.verify: true`: every snapshot checked by a host replay (debug)
  // Its durable checkpoints (`checkpoint:`; runtime/checkpoint.hpp, docs/FAULTS.md "Durable checkpoints"):
  bool checkpoint = false;
  std::string checkpoint_dir;   // as written
  std::string checkpoint_path;  // resolved against the topology file's folder
  std::uint32_t checkpoint_every_ms = 1000;
  std::string durability = "checkpoint";  // checkpoint | reply
  // Cluster placement (`cluster:` topologies): the member that runs it ("" = no cluster) and where
  // its callers send it when that member is lost: "" (nowhere: errc::node_unreachable),
  // "local_cpu" (an in-process CPU incarnation at each calling member) or another member's name.
  std::string at;
  std::string fallback;
  // CPU nodes
  std::string function;
  // both: message types (a CPU node's input and output are its `type`)
  std::string in_type, out_type;
};

struct edge_spec {
  std::string from, to;
  source_pos pos;
};

struct supervisor_entry {
  std::string name;
  source_pos pos;
  std::string strategy = "one_for_one";  // one_for_one | one_for_all | rest_for_one
  std::uint32_t intensity = 3;
  std::uint32_t period_ms = 5000;
  std::vector<std::string> children;  // ring nodes
  std::string parent;                 // "" = the root supervisor
};

struct load_spec {
  std::string name;
  source_pos pos;
  std::string target;
  std::string message;
  double rate = 1000;     // messages per second
  double duration_s = 0;  // 0 = as long as the run
  double start_s = 0;     // delay after start
  std::uint32_t payload_bytes = 64;
  std::uint32_t max_in_flight = 128;
  std::string at;  // the member that runs it (cluster topologies; "" = no cluster)
};

struct fault_spec {
  std::string node;    // node faults
  std::string member;  // member_kill / member_partition (cluster topologies)
  source_pos pos;
  std::string kind;                 // sim::fault_kind name, kill_worker (host: process nodes) or actor_crash
  double at_s = -1;                 // time trigger (since the run started); <0 = unused
  std::uint64_t at_message = 0;     // the node device's k-th request; 0 = unused
  double probability = 0;           // per request; 0 = unused
  std::uint32_t times = 1;          // 0 = unlimited (random rules)
  std::uint32_t latency_us = 1000;  // slow
  double restore_after_s = -1;      // device_lost / member_kill / member_partition: undone this long after
  /// A fault of a cluster member (carried out by `ringflow cluster up`), not of a node.
  [[nodiscard]] bool on_member() const noexcept { return kind == "member_kill" || kind == "member_partition"; }
  /// A fault of the node's device (the sim's kinds): not kill_worker (the service kills the worker
  /// processes) nor actor_crash (the ring actor itself is killed; its supervisor restarts it).
  [[nodiscard]] bool on_device() const noexcept {
    return kind != "kill_worker" && kind != "actor_crash" && !on_member();
  }
};

/// One member of a cluster: a `ringflow` process.
struct member_spec {
  std::string name;
  source_pos pos;
  std::string listen;      // "HOST:PORT" as written
  std::string host;        // parsed
  std::uint16_t port = 0;  // 0 = assigned at start (`cluster up` exchanges it)
  /// `shares:` folders (absolute, resolved against the file's folder) this member reads and writes
  /// as the same files as the other members listing them (a shared volume; every member on one
  /// machine): a stateful node fails over only to a member sharing its checkpoint folder.
  std::vector<std::string> shares;
  /// A folder of `shares` holds `path` (absolute or relative to the working folder).
  [[nodiscard]] bool shares_folder(const std::string& path) const;
};

/// A topology's `cluster:` section.
struct cluster_spec {
  std::vector<member_spec> members;  // empty: not a cluster topology
  source_pos pos;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key;   // resolved against the topology file's folder
  std::uint32_t heartbeat_ms = 100;        // a member pings each peer it calls this often
  std::uint32_t timeout_ms = 1000;         // no answer to a ping for this long: the peer is lost
  std::uint32_t start_timeout_ms = 15000;  // at start, how long a member waits for the peers it calls
  [[nodiscard]] bool enabled() const noexcept { return !members.empty(); }
  const member_spec* member(const std::string& n) const;
};

/// A plugin a topology names.
struct plugin_ref {
  std::string path;      // as written in the file
  std::string resolved;  // against the topology file's folder (absolute when the file's was)
  source_pos pos;
  std::string sha256;  // the loaded file's content hash (filled by the loader)
};

/// The names a topology may use (built-ins + its plugins'): what the parser checks against.
struct catalog_view {
  struct kernel {
    std::string name, request, reply;
    bool stateful = false;
  };
  std::vector<kernel> kernels;
  std::vector<std::string> messages;
  std::vector<std::string> loadable;  // message types with load generator hooks (may be a `load:` message)
  std::vector<std::string> functions;

  /// ringflow's built-in kernels, message types and functions (catalog_names.hpp).
  static catalog_view builtin();
  const kernel* find_kernel(const std::string& n) const;
  bool has_message(const std::string& n) const;
  bool is_loadable(const std::string& n) const;
  bool has_function(const std::string& n) const;
};

/// Loads the plugins a topology names and adds their names to `names` (which holds the
/// built-ins); fills each ref's sha256. False with every problem in `errors` (then nothing of any
/// of them is loaded).
using plugin_loader =
    std::function<bool(std::vector<plugin_ref>& plugins, catalog_view& names, std::vector<topology_error>& errors)>;

/// Size limits of a topology file: the config keys limits.max_nodes, limits.max_edges and
/// limits.max_supervisor_depth (docs/OPERATIONS.md, "Limits and hostile input"). A limit given by
/// the caller (the config file or the environment of `run`) wins over the topology's own
/// `config: {limits: ...}` block, which wins over the default. A file past a limit is refused with
/// an error naming the limit, the file's figure and the key (before its parts are validated).
struct topology_limits {
  static constexpr std::int64_t default_max_nodes = 100000;
  static constexpr std::int64_t default_max_edges = 1000000;
  static constexpr std::int64_t default_max_supervisor_depth = 32;
  std::optional<std::int64_t> max_nodes, max_edges, max_supervisor_depth;  // nullopt: the file's or the default
};

struct topology {
  std::string file;
  std::vector<plugin_ref> plugins;
  std::string name;
  std::string description;
  double duration_s = 0;
  YAML::Node config;  // may be null
  source_pos config_pos;
  std::vector<node_spec> nodes;
  std::vector<edge_spec> edges;
  std::vector<supervisor_entry> supervisors;
  std::vector<load_spec> load;
  std::vector<fault_spec> faults;
  cluster_spec cluster;

  /// Members that host load generators (they drive the graph; they cannot be killed).
  std::vector<std::string> driving_members() const;

  /// The node named `n` (nullptr: none). Constant time once reindex() has run over the current
  /// `nodes` (parse_topology does); a linear search otherwise (nodes changed since).
  const node_spec* node(const std::string& n) const;
  /// Nodes without incoming edges (where load may enter), in file order.
  std::vector<std::string> entries() const;
  /// Rebuilds node()'s index; call after changing `nodes`.
  void reindex();

 private:
  std::unordered_map<std::string, std::size_t> index_;
};

/// Parses and validates `text` (named `file` in errors). nullopt when `errors` is not empty.
/// `plugins` loads a `plugins:` list (none: such a list is an error).
std::optional<topology> parse_topology(const std::string& text, const std::string& file,
                                       std::vector<topology_error>& errors, const plugin_loader& plugins = {},
                                       const topology_limits& limits = {});
/// Reads `path` (an unreadable file is one error) and parses it.
std::optional<topology> load_topology(const std::string& path, std::vector<topology_error>& errors,
                                      const plugin_loader& plugins = {}, const topology_limits& limits = {});

}  // namespace ringflow::ops

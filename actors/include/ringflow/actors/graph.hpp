// ringflow/actors/graph.hpp — custom actor graphs in C++: CPU nodes and ring nodes joined by typed edges.
//
// Contract
//   * Nodes: ring nodes (a ring kernel K on a backend: input K::request, output K::reply; or a
//     ring route: a ring actor picked per message, e.g. among replicas), CPU nodes (a plain C++
//     callable fb_msg -> optional<fb_msg>; nullopt ends the message there), and actor nodes (a CAF
//     behaviour answering an fb_msg request with an fb_msg). Every node declares its input and
//     output message types.
//   * Edges connect a node's output to another node's input. start() checks the whole graph:
//     unknown node names, an edge whose output type differs from the input type (the error names
//     both ends and both types), duplicate names and cycles are errc::graph_invalid errors.
//     Fan-out (an output to several nodes), fan-in (several edges into one node) and pipelines.
//   * A message pushed into an entry node (a node without incoming edges) flows through the graph
//     along every edge; its answer is every output that reached a terminal node (a node without
//     outgoing edges), or the first error any branch met. So each push is answered exactly once,
//     and backpressure propagates: each node admits at most `node_window` messages at once (until
//     everything below it answered) and refuses more with errc::overloaded, which travels back to
//     the pusher (ring nodes add their ring actors' windows).
//   * Where a message runs (the path has no hop that does not pay, docs/ARCHITECTURE.md "Message
//     path"): a push runs its entry node on the pushing thread; a ring node submits straight into
//     its ring actor's core (no mailbox), and its reply continues on the thread that completed it
//     (the completion poller, or a thread helping in call()): the next CPU node runs there, the
//     next ring node is submitted to from there, the answer is delivered from there. A CPU node's
//     function therefore runs on whichever thread brings its input, one message at a time (a
//     per-node lock); keep it short and non-blocking (it runs inside a completion: a blocking
//     ring_client::call() there returns errc::would_deadlock). Actor nodes run in their actors.
//   * stop(): new pushes get errc::stopped; ring nodes stop (requests they had not served are
//     answered errc::stopped); the call waits (bounded) for in-flight messages to be answered,
//     answers any push still open with errc::stopped, and exits the node actors. The runtime's
//     shutdown stops running graphs first.
// Thread-safety: build a graph from one thread; running_graph::push/entry/stop from any thread.
#pragma once

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/actors/runtime.hpp"

namespace ringflow {

/// A message type as the graph checks it: the file identifier and a readable name.
struct msg_type {
  type_id id = 0;
  std::string name;
  template <class Descriptor>
  static msg_type of() {
    return {Descriptor::type_id_, Descriptor::name_};
  }
};

/// Where a ring node's kernel should run. Only the CPU backend exists so far; `any` picks the
/// best available (the GPU backends join with their own issue).
enum class backend_preference { any, cpu };

struct ring_node_options {
  ring_actor_options actor{};
  cpu_incarnation_options cpu{};
  backend_preference backend = backend_preference::any;
};

using cpu_node_fn = std::function<std::optional<fb_msg>(const fb_msg&)>;

/// A ring route's choice of ring actor for one message: its core, or nullptr (the message is
/// answered errc::unavailable with `why`).
using ring_picker = std::function<std::shared_ptr<ring_core>(std::string& why)>;
/// Told when a ring route's request is answered (`ok`: a reply; `start_ns`: steady ns at submit).
using route_observer = std::function<void(bool ok, std::uint64_t start_ns)>;
using behavior_factory = std::function<caf::behavior(caf::event_based_actor*)>;
struct graph_result;
/// An asynchronous node's step (async_node): answer `done` exactly once, from any thread, with the
/// node's output (graph_result::outputs holds 0 messages — the node ended the message there — or 1)
/// or an error. The cluster's remote nodes are such nodes (their member answers over the network).
using async_node_fn = std::function<void(fb_msg&& in, std::function<void(graph_result)> done)>;

/// The answer to one push: every terminal output, or the first error.
struct graph_result {
  errc code = errc::ok;
  std::vector<fb_msg> outputs;
  std::string detail;
  bool ok() const noexcept { return code == errc::ok; }
};

class running_graph;

class graph {
 public:
  graph(runtime& rt, std::string name);

  /// A ring actor serving kernel K (registered in the runtime as "<graph>.<node>").
  template <ring_kernel K>
  graph& ring_node(const std::string& name, ring_node_options opts = {}) {
    return add(node{.name = name,
                    .kind = node_kind::ring,
                    .in = msg_type::of<typename K::request>(),
                    .out = msg_type::of<typename K::reply>(),
                    .ring_factory = cpu_incarnation_factory<K>(rt_.with_kernel_pool(opts.cpu)),
                    .ring_opts = opts.actor});
  }
  /// A ring node whose ring actor is chosen per message by `pick` (replicas, a ring actor a
  /// supervisor restarts under the same name); `observe` (may be empty) is told each answer.
  graph& ring_route(const std::string& name, msg_type in, msg_type out, ring_picker pick, route_observer observe = {});
  /// A CPU node running `fn` (on the thread that brings its input, one message at a time).
  graph& cpu_node(const std::string& name, msg_type in, msg_type out, cpu_node_fn fn);
  template <class In, class Out>
  graph& cpu_node(const std::string& name, cpu_node_fn fn) {
    return cpu_node(name, msg_type::of<In>(), msg_type::of<Out>(), std::move(fn));
  }
  /// A CAF behaviour that answers an fb_msg request (input type `in`) with an fb_msg (`out`).
  graph& actor_node(const std::string& name, msg_type in, msg_type out, behavior_factory make);
  /// A node whose step `fn` answers asynchronously (see async_node_fn); its output continues the
  /// flow on the thread that answers.
  graph& async_node(const std::string& name, msg_type in, msg_type out, async_node_fn fn);
  /// An edge from `from`'s output to `to`'s input.
  graph& connect(const std::string& from, const std::string& to);
  /// Messages a node admits at once (default 256); more are refused with errc::overloaded.
  graph& node_window(std::uint32_t n);

  /// Checks the graph and starts every node; errc::graph_invalid (with what is wrong) otherwise.
  caf::expected<std::shared_ptr<running_graph>> start();

 private:
  enum class node_kind { ring, route, cpu, actor, async };
  struct node {  // built with designated initializers; every member has a default
    std::string name{};
    node_kind kind = node_kind::cpu;
    msg_type in{}, out{};
    cpu_node_fn fn{};
    behavior_factory make{};
    incarnation_factory ring_factory{};
    ring_actor_options ring_opts{};
    ring_picker pick{};
    route_observer observe{};
    async_node_fn async{};
  };
  graph& add(node n);
  friend class running_graph;

  runtime& rt_;
  std::string name_;
  std::vector<node> nodes_;
  std::vector<std::pair<std::string, std::string>> edges_;
  std::uint32_t window_ = 256;
  std::string build_error_;  // first error found while adding (reported by start())
};

class running_graph {
 public:
  ~running_graph();
  const std::string& name() const noexcept { return name_; }
  /// Entry nodes (no incoming edges), in the order they were added.
  std::vector<std::string> entries() const;
  /// The actor of node `name` (to request from other actors: fb_msg -> std::vector<fb_msg>).
  caf::expected<caf::actor> node_actor(const std::string& name) const;
  /// Pushes `m` into entry node `entry`; the future holds the answer (never left unanswered).
  std::future<graph_result> push(const std::string& entry, fb_msg m);
  /// The same, answering through `done` (called exactly once: on the thread that answers, e.g. a
  /// CAF worker or the one calling stop(), or at once on this thread for a push refused outright).
  /// Keep it short and non-blocking.
  void push(const std::string& entry, fb_msg m, std::function<void(graph_result)> done);
  /// Messages inside the graph now (sum over nodes).
  std::uint32_t in_flight() const noexcept;
  /// See the contract. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  bool stopped() const noexcept;

  struct state;  // shared with the node actors
 private:
  friend class graph;
  running_graph() = default;
  std::string name_;
  std::shared_ptr<state> st_;
};

}  // namespace ringflow

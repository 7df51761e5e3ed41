// Cluster (part of the engine): one member of a multi-member topology, over CAF 0.17's io
// middleman (libcaf_io; TLS through libcaf_openssl). docs/OPERATIONS.md "Clusters".
//
// Contract
//   * start() publishes this member's actor on its `listen` address (port 0: the OS picks one; it
//     is written to <cluster_dir>/<member>.addr with this incarnation's epoch, where `cluster up`'s
//     members find each other), then connects to every peer whose nodes this member's graph calls
//     (or that is one of their fallbacks) and completes the application-level hello with each,
//     within cluster.start_timeout_ms; a peer it cannot reach or that refuses it is an
//     engine_error naming the member, its address and why (the program exits 4).
//   * The hello: a link sends (cluster name, its member name, its epoch, the topology's
//     signature); the member actor accepts a name of the topology's members only, and only with
//     the same signature (both run the same nodes, types and placement: the remote edges' types are
//     checked at start), and only from a peer whose hello completed does it
//     take requests and pings; anything else is dropped and counted (`unauthenticated`). The
//     caller checks that the member answering at an address has the name it expects.
//   * remote_node(n) is a graph step for a node placed on another member: the request goes into
//     the link's outbox (keyed by a correlation id), crosses the middleman with its remaining
//     deadline budget, and the member serves it through its `serve` graph (its own nodes, no
//     edges: one hop per node). Each request is answered exactly once: by the reply (matched by
//     correlation id and fenced by the epoch of the incarnation it was sent to), or — when the
//     member is lost — by the node's fallback (the outbox replayed there: local_cpu = this
//     member's standby CPU node, or another member), or with errc::node_unreachable at once when
//     it has none. Replies for entries no longer in the outbox (already answered elsewhere) or
//     from another incarnation are dropped and counted (`stale`, `fenced`), never delivered.
//   * The receiver dedupes by (origin member, origin epoch, correlation id) within a window of
//     the last 65,536 correlation ids of each origin incarnation (a ring of slots, corr % 65,536):
//     a request seen before is not served again (its stored answer is re-sent when it has one),
//     and neither is one older than the window (both counted `deduped`).
//   * Liveness (the failure detector): a link pings its member every heartbeat_ms and checks every
//     min(heartbeat_ms, 5) ms; no pong for timeout_ms, or the middleman's proxy going down (the
//     connection dropped), is a member loss (a silent member: within timeout_ms + 5 ms).
//     A lost member is dialled again every heartbeat_ms; a completed hello is the probe: its nodes
//     fail back (new requests go to it again; requests already at the fallback finish there).
//     A member lost too often opens its breaker (member_breaker_settings): not dialled until the
//     cool-down ends.
// Thread-safety: start/stop from the engine's controlling thread; remote_node's steps from any
// thread (graph flows); stats from any thread.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/meta/type_name.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/actors/graph.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/topology.hpp"

namespace ringflow::ops::engine_parts {

/// The wire protocol's batches (registered by configure()): one request of a batch (rf_reqs) —
/// what a single rf_req carries after the origin's epoch.
struct remote_req {
  std::uint64_t corr = 0;
  std::string node;
  std::int64_t budget_ns = 0;
  fb_msg msg;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_req& x) {
  return f(caf::meta::type_name("ringflow::remote_req"), x.corr, x.node, x.budget_ns, x.msg);
}

/// One answer of a batch (rf_reps): what a single rf_rep carries.
struct remote_rep {
  std::uint64_t corr = 0, epoch = 0;
  std::uint8_t code = 0;
  std::string detail;
  std::vector<fb_msg> outs;
};
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_rep& x) {
  return f(caf::meta::type_name("ringflow::remote_rep"), x.corr, x.epoch, x.code, x.detail, x.outs);
}

/// One peer link's counters (metrics, /topology, the summary).
struct peer_stats {
  std::string name;
  bool up = false;
  double rtt_us = 0;  // the last ping's round trip
  std::uint64_t requests = 0, bytes_sent = 0, bytes_received = 0, reconnects = 0, in_flight = 0;
  std::uint64_t losses = 0, failbacks = 0, fenced = 0, stale = 0;
  bool breaker_open = false;  // lost too often: not dialled until its cool-down ends
  std::uint64_t breaker_opens = 0;
};

/// A member's circuit breaker (the `breaker:` settings of devices, read at start): failure_threshold
/// losses within window_ms open it for cooldown_ms — the member is not dialled, its nodes stay on
/// their fallbacks — then a hello is the probe; lost again within a cool-down after that probe,
/// it opens for the cool-down times backoff (at most cooldown_max_ms).
struct member_breaker_settings {
  std::uint32_t failure_threshold = 5;
  std::uint64_t window_ms = 30000, cooldown_ms = 30000, cooldown_max_ms = 300000;
  double backoff = 2.0;
};

struct cluster_stats {
  std::string member;
  std::uint64_t epoch = 0;
  std::uint64_t member_failovers = 0, member_failbacks = 0;
  std::uint64_t served = 0, deduped = 0, unauthenticated = 0, refused = 0, fenced_requests = 0;
  std::vector<peer_stats> peers;
};

/// The engine's side of this member's stateful standbys (nodes whose `fallback:` is this member):
/// a standby is dormant until a request for it comes (its home member lost by the caller), then
/// take_over() runs it here from its checkpoint folder — refused while the home member still holds
/// its lock (a partition: the caller gets node_unreachable); once wanted_back() (the home member
/// started again and asks for it), the member drains it, answers newer requests "moved" (the caller
/// parks them for the home member) and hand_back() stops it with a last checkpoint.
struct standby_hooks {
  std::function<std::string(const std::string& node)> take_over;  // "" or why not (blocking)
  std::function<void(const std::string& node)> hand_back;         // blocking
  std::function<bool(const std::string& node)> wanted_back;
  std::set<std::string> nodes;
};

/// The answer code (on the wire only) of a request for a node this member handed back to its
/// home member: the caller sends it there instead (never delivered to a graph).
inline constexpr std::uint8_t moved_code = 255;

class cluster_member {
 public:
  /// `self`: this member's name; `dir`: where members' addresses are exchanged ("" = none: every
  /// peer this member calls needs a fixed port); `calls`: this member calls others (it drives load
  /// or embeds a client) — a member that only serves opens no links of its own.
  cluster_member(const topology& t, std::string self, std::string dir, event_log& log, bool calls);
  ~cluster_member();
  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;

  /// The CAF settings a member's actor system needs (the middleman, TLS, its heartbeat).
  static void configure(caf::actor_system_config& cfg, const cluster_spec& c);
  /// Checks the TLS files (readable, a certificate and a key that belong together); the reason
  /// when not ("" = fine, or no TLS).
  static std::string check_tls(const cluster_spec& c);
  /// The topology's signature (16 hex digits: a hash of its name, members, and every node's name,
  /// placement, kernel or function, message types with their file identifiers, and fallback).
  /// A hello carries it; a member refuses a peer whose topology differs.
  static std::string signature_of(const topology& t);

  /// Listen on `host` instead of the topology's `listen` host (`ringflow run --cluster-listen`:
  /// `cluster up` puts members in network namespaces). Before start().
  void listen_host(std::string host) { listen_host_ = std::move(host); }
  /// This member's stateful standbys (before start()).
  void standbys(standby_hooks h) { standby_ = std::move(h); }
  /// The members' breaker (before start()).
  void breaker(const member_breaker_settings& b) { breaker_ = b; }
  /// `serve`: this member's own nodes (and standby copies) as a graph without edges.
  /// `local_fallback`: the serve graph again, for nodes with `fallback: local_cpu`.
  void start(caf::actor_system& sys, std::shared_ptr<running_graph> serve);
  /// The graph step of node `n` (placed on another member).
  async_node_fn remote_node(const node_spec& n);
  /// Answers every open remote request errc::stopped, closes the links, unpublishes. Idempotent.
  void stop();

  [[nodiscard]] cluster_stats stats() const;
  [[nodiscard]] const std::string& name() const noexcept { return self_; }
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// This member opens links to the members it calls (it drives load or embeds a client).
  [[nodiscard]] bool calls() const noexcept { return calls_; }

  struct peer;         // a link to one member (cluster.cpp)
  struct member_core;  // the published actor's state (cluster.cpp)

 private:
  peer* peer_of(const std::string& member) const;
  /// Where node `n`'s request goes when its member cannot take it: its fallback, or
  /// errc::node_unreachable (`why`: what happened to the member).
  void fallback(const node_spec& n, fb_msg m, std::function<void(graph_result)> done, const std::string& why);
  void connector_loop();
  void standby_loop();
  /// A caller's request that the node's fallback answered `moved`: to its home member, parked
  /// there until it is up again (bounded by the request's deadline).
  void to_home(const node_spec& n, fb_msg m, std::function<void(graph_result)> done);

  const topology& topo_;
  std::string self_, dir_, listen_host_;
  member_breaker_settings breaker_;
  event_log& log_;
  std::uint64_t epoch_ = 0;
  bool calls_ = true;
  std::uint16_t port_ = 0;
  caf::actor_system* sys_ = nullptr;
  std::shared_ptr<member_core> core_;
  caf::actor member_actor_;
  std::map<std::string, std::shared_ptr<peer>> peers_;  // the members this one calls (fixed after start)
  std::shared_ptr<running_graph> serve_;
  std::atomic<bool> stopping_{false};
  std::thread connector_;
  standby_hooks standby_;
  std::thread standby_thread_;
  std::atomic<std::uint64_t> failovers_{0}, failbacks_{0};
};

/// The per-member metrics (Prometheus text; docs/OPERATIONS.md "Clusters").
std::string cluster_metrics_text(const cluster_stats& s);

}  // namespace ringflow::ops::engine_parts

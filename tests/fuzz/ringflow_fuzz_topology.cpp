// Fuzz target: topology files (YAML from operators: untrusted bytes). parse_topology() must never
// crash, hang or leak on any input, must report every rejection with a message, and a topology it
// accepts must hold its invariants (every edge joins known nodes, ring nodes have kernel types,
// load targets exist, cluster placement names known members).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "ringflow/runtime/topology.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow::ops;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<topology_error> errors;
  const std::optional<topology> t = parse_topology(text, "fuzz.yaml", errors);
  RF_CHECK(t.has_value() == errors.empty());
  for (const auto& e : errors) RF_CHECK(!e.what.empty() && !e.str().empty());
  if (!t) return 0;
  RF_CHECK(!t->nodes.empty() && !t->name.empty());
  for (const auto& n : t->nodes) RF_CHECK(!n.in_type.empty() && !n.out_type.empty());
  for (const auto& e : t->edges) {
    RF_CHECK(t->node(e.from) && t->node(e.to));
    RF_CHECK(t->node(e.from)->out_type == t->node(e.to)->in_type);
  }
  for (const auto& l : t->load) RF_CHECK(t->node(l.target) != nullptr && l.rate > 0);
  for (const auto& f : t->faults) {
    if (f.on_member()) {  // member faults name a member of the cluster that hosts no load generator
      RF_CHECK(t->cluster.enabled() && t->cluster.member(f.member) != nullptr);
      for (const auto& l : t->load) RF_CHECK(l.at != f.member);
    } else {
      RF_CHECK(t->node(f.node) && t->node(f.node)->kind == node_kind::ring);
    }
  }
  // Cluster placement: every node and load generator runs on a known member (none without a
  // cluster), fallbacks are local_cpu or another known member, and member addresses are unique.
  for (const auto& n : t->nodes) {
    RF_CHECK(t->cluster.enabled() ? t->cluster.member(n.at) != nullptr : n.at.empty());
    RF_CHECK(n.fallback.empty() || n.fallback == "local_cpu" ||
             (t->cluster.member(n.fallback) != nullptr && n.fallback != n.at));
    // A stateful node fails over only to a member, with durability: reply, both members sharing
    // its checkpoint folder.
    if (n.stateful && !n.fallback.empty()) {
      RF_CHECK(n.fallback != "local_cpu" && n.checkpoint && n.durability == "reply");
      RF_CHECK(t->cluster.member(n.at)->shares_folder(n.checkpoint_path));
      RF_CHECK(t->cluster.member(n.fallback)->shares_folder(n.checkpoint_path));
    }
  }
  for (const auto& l : t->load) RF_CHECK(t->cluster.enabled() ? t->cluster.member(l.at) != nullptr : l.at.empty());
  for (std::size_t i = 0; i < t->cluster.members.size(); ++i) {
    for (std::size_t j = i + 1; j < t->cluster.members.size(); ++j) {
      const auto& a = t->cluster.members[i];
      const auto& b = t->cluster.members[j];
      RF_CHECK(a.name != b.name);
      RF_CHECK(a.port == 0 || a.host != b.host || a.port != b.port);
    }
  }
  return 0;
}

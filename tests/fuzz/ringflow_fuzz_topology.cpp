// Fuzz target: topology files (YAML from operators: untrusted bytes). parse_topology() must never
// crash, hang or leak on any input, must report every rejection with a message, and a topology it
// accepts must hold its invariants (every edge joins known nodes, ring nodes have kernel types,
// load targets exist).
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
  for (const auto& f : t->faults) RF_CHECK(t->node(f.node) && t->node(f.node)->kind == node_kind::ring);
  return 0;
}
